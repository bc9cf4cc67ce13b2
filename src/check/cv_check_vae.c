/* cv_check_vae.c -- the vae family checks: reference backward vs finite differences, device vs reference
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "runtime/cv_rng.h"
#include "check/cv_check_elem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks: reference backward vs finite differences ------------------------------------ */

static void fd_reparam(cvt_fd *f) {
    cv_reparam_ref_fwd(f->in[0], f->in[1], f->out[0], (int64_t)f->n_in[0], f->u[0], f->u[1], (uint64_t)f->d[0], f->p[0]);
}
static void fd_gausskl(cvt_fd *f) {
    cv_gausskl_ref_fwd(f->in[0], f->in[1], f->in[2], f->in[3], f->out[0], (int64_t)f->n_in[0]);
}
/* inputs: mu, logs; x (data) rides in d-less slot p: kept in out0-free field below */
typedef struct { cvt_fd f; double *x; } nll_fd;
static void fd_gaussnll(cvt_fd *f) {
    nll_fd *nf = (nll_fd *)f;
    cv_gaussnll_ref_fwd(nf->x, f->in[0], f->in[1], f->out[0], (int64_t)f->n_in[0], f->p[0]);
}

static double *arr(double **keep, int *nk, size_t n, uint64_t seed, double lo, double hi) {
    double *a = cvt_zeros(n);
    if (a && seed) cv_chk_rand_d(a, n, seed, lo, hi);
    keep[(*nk)++] = a;
    return a;
}

static int all_ok(double **keep, int nk) {
    for (int i = 0; i < nk; i++) if (!keep[i]) return 0;
    return 1;
}

static void free_all(double **keep, int nk) { for (int i = 0; i < nk; i++) free(keep[i]); }

static void grad_reparam(cv_check *c) {
    double *keep[8];
    int nk = 0;
    size_t n = 41;
    cvt_fd f;
    memset(&f, 0, sizeof f);
    f.fwd = fd_reparam; f.u[0] = 1234; f.u[1] = 5; f.d[0] = 1000; f.p[0] = 0.8;   /* d[0]: index0 */
    f.n_in[0] = f.n_in[1] = n;
    f.in[0] = arr(keep, &nk, n, 1, -2, 2);
    f.in[1] = arr(keep, &nk, n, 2, -2, 1);
    f.n_out[0] = n; f.out[0] = arr(keep, &nk, n, 0, 0, 0); f.gout[0] = arr(keep, &nk, n, 3, -1, 1);
    double *dmu = arr(keep, &nk, n, 0, 0, 0), *dls = arr(keep, &nk, n, 0, 0, 0);
    if (!all_ok(keep, nk)) { CV_CHECK_OK(0, "reparam gradcheck: out of memory"); goto done; }
    cv_reparam_ref_bwd(f.in[1], f.gout[0], dmu, dls, (int64_t)n, f.u[0], f.u[1], (uint64_t)f.d[0], f.p[0]);
    double e0 = cvt_fd_err(&f, 0, dmu, 1e-3, 11), e1 = cvt_fd_err(&f, 1, dls, 1e-4, 12);
    CV_CHECK_OK(e0 < 1e-8 && e1 < 1e-7, "reparam t=0.8 index0=1000 ref bwd (same seed/stream eps) vs finite differences: "
                "rel err dmu %.2e, dlogs %.2e", e0, e1);
done:
    free_all(keep, nk);
}

static void grad_gausskl(cv_check *c) {
    double *keep[12];
    int nk = 0;
    size_t n = 37;
    static const char *const names[4] = { "mq", "lsq", "mp", "lsp" };
    cvt_fd f;
    memset(&f, 0, sizeof f);
    f.fwd = fd_gausskl;
    for (int k = 0; k < 4; k++) {
        f.n_in[k] = n;
        f.in[k] = arr(keep, &nk, n, 20 + (uint64_t)k, (k & 1) ? -1.5 : -2, (k & 1) ? 1.0 : 2);
    }
    f.n_out[0] = n; f.out[0] = arr(keep, &nk, n, 0, 0, 0); f.gout[0] = arr(keep, &nk, n, 25, -1, 1);
    double *g[4];
    for (int k = 0; k < 4; k++) g[k] = arr(keep, &nk, n, 0, 0, 0);
    if (!all_ok(keep, nk)) { CV_CHECK_OK(0, "gausskl gradcheck: out of memory"); goto done; }
    cv_gausskl_ref_bwd(f.in[0], f.in[1], f.in[2], f.in[3], f.gout[0], g[0], g[1], g[2], g[3], (int64_t)n);
    for (int k = 0; k < 4; k++) {
        double e = cvt_fd_err(&f, k, g[k], 1e-4, 30 + (uint64_t)k);
        CV_CHECK_OK(e < 1e-7, "gausskl ref bwd d%s vs finite differences (n=%zu): rel err %.2e", names[k], n, e);
    }
    /* KL(q||q) = 0 and KL >= 0 */
    {
        double kl[37], mx = 0, mn = INFINITY;
        cv_gausskl_ref_fwd(f.in[0], f.in[1], f.in[0], f.in[1], kl, (int64_t)n);
        for (size_t i = 0; i < n; i++) if (fabs(kl[i]) > mx) mx = fabs(kl[i]);
        cv_gausskl_ref_fwd(f.in[0], f.in[1], f.in[2], f.in[3], kl, (int64_t)n);
        for (size_t i = 0; i < n; i++) if (kl[i] < mn) mn = kl[i];
        CV_CHECK_OK(mx < 1e-15 && mn >= 0, "gausskl ref: KL(q||q) = 0 (max |.| %.1e), KL >= 0 (min %.3g)", mx, mn);
    }
done:
    free_all(keep, nk);
}

/* logs in [lo, hi) kept at least `gap` away from the floor. */
static void grad_gaussnll(cv_check *c, const char *what, double lo, double hi, double floor, int expect_zero) {
    double *keep[10];
    int nk = 0;
    size_t n = 43;
    const double gap = 0.02;
    nll_fd nf;
    memset(&nf, 0, sizeof nf);
    cvt_fd *f = &nf.f;
    f->fwd = fd_gaussnll; f->p[0] = floor;
    nf.x = arr(keep, &nk, n, 40, -2, 2);
    f->n_in[0] = f->n_in[1] = n;
    f->in[0] = arr(keep, &nk, n, 41, -2, 2);
    f->in[1] = arr(keep, &nk, n, 42, lo, hi);
    f->n_out[0] = n; f->out[0] = arr(keep, &nk, n, 0, 0, 0); f->gout[0] = arr(keep, &nk, n, 43, -1, 1);
    double *dmu = arr(keep, &nk, n, 0, 0, 0), *dls = arr(keep, &nk, n, 0, 0, 0);
    if (!all_ok(keep, nk)) { CV_CHECK_OK(0, "gaussnll gradcheck: out of memory"); goto done; }
    int below = 0;
    for (size_t i = 0; i < n; i++) {
        double *l = &f->in[1][i];
        if (fabs(*l - floor) < gap) *l = *l < floor ? floor - gap : floor + gap;
        if (*l < floor) below++;
    }
    cv_gaussnll_ref_bwd(nf.x, f->in[0], f->in[1], f->gout[0], dmu, dls, (int64_t)n, floor);
    double e0 = cvt_fd_err(f, 0, dmu, 1e-4, 50), e1 = cvt_fd_err(f, 1, dls, 1e-4, 51);
    int zeros = 1;
    for (size_t i = 0; i < n; i++) if (f->in[1][i] < floor && dls[i] != 0) zeros = 0;
    CV_CHECK_OK(e0 < 1e-7 && e1 < 1e-7 && zeros && (!expect_zero || below == (int)n),
                "gaussnll ref bwd %s (floor %g, %d of %zu below): rel err dmu %.2e, dlogs %.2e, dlogs = 0 below: %s",
                what, floor, below, n, e0, e1, zeros ? "yes" : "NO");
done:
    free_all(keep, nk);
}

void cv_vae_gradcheck(cv_check *c) {
    grad_reparam(c);
    grad_gausskl(c);
    grad_gaussnll(c, "above the floor", -1, 1.5, -3, 0);
    grad_gaussnll(c, "below the floor", -6, -3.5, -3, 1);
    grad_gaussnll(c, "across the floor", -4, -2, -3, 0);
}

/* ---- checks: device vs reference ------------------------------------------------------------ */

#define TOL_ELEM 1e-10

static const char *okstr(int ok) { return ok ? "" : " (FAILED)"; }

/* randn / rand against cv_rng_normal / cv_rng_uniform, bit for bit */
static void dev_rng(cv_check *c, cv_ctx *ctx, int64_t n, uint64_t seed, uint64_t stream, uint64_t i0) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf y, u;
    cvt_new(&t, &y, 1, 1, 1, n, 0, 0, 0);
    cvt_new(&t, &u, 1, 1, 1, n, 0, 0, 0);
    if (t.st == CV_OK) t.st = cv_randn_fwd(ctx, &y.dev.t, seed, stream, i0, 1.0f);
    if (t.st == CV_OK) t.st = cv_rand_fwd(ctx, &u.dev.t, seed, stream, i0);
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &y.dev, y.f);
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &u.dev, u.f);
    cvt_guards(&t, &y); cvt_guards(&t, &u);
    int64_t bad = -1, badu = -1;
    if (t.st == CV_OK)
        for (int64_t i = 0; i < n; i++) {
            float h = cv_rng_normal(seed, stream, i0 + (uint64_t)i), hu = cv_rng_uniform(seed, stream, i0 + (uint64_t)i);
            if (bad < 0 && memcmp(&h, &y.f[i], sizeof h)) bad = i;
            if (badu < 0 && memcmp(&hu, &u.f[i], sizeof hu)) badu = i;
        }
    if (bad >= 0) CV_CHECK_DIAG("randn[%lld]: device %.9g, host %.9g", (long long)bad, y.f[bad],
                                cv_rng_normal(seed, stream, i0 + (uint64_t)bad));
    if (badu >= 0) CV_CHECK_DIAG("rand[%lld]: device %.9g, host %.9g", (long long)badu, u.f[badu],
                                 cv_rng_uniform(seed, stream, i0 + (uint64_t)badu));
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && bad < 0 && badu < 0, "randn and rand n=%lld seed=%llu stream=%llu from index %llu: bit-identical with the host%s",
                (long long)n, (unsigned long long)seed, (unsigned long long)stream, (unsigned long long)i0, okstr(ok));
    cvt_free(&y); cvt_free(&u);
}

/* index0: the element numbering's start (a data-parallel rank's row offset x elements per row) */
static void dev_reparam(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, float temp, uint64_t i0) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf mu, ls, z, dz, dmu, dls, zero, z1, z2, se, dmu2, dls2;
    char s[80];
    const uint64_t seed = 0x5eed0000ULL + (uint64_t)C, stream = 3;
    cvt_new(&t, &mu, N, C, H, W, 101, -2, 2);
    cvt_new(&t, &ls, N, C, H, W, 102, -3, 1);
    cvt_new(&t, &z, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dz, N, C, H, W, 103, -1, 1);
    cvt_new(&t, &dmu, N, C, H, W, 104, -1, 1);
    cvt_new(&t, &dls, N, C, H, W, 105, -1, 1);
    cvt_new(&t, &zero, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &z1, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &z2, N, C, H, W, 0, 0, 0);             /* the noise-cache path */
    cvt_new(&t, &se, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dmu2, N, C, H, W, 104, -1, 1);
    cvt_new(&t, &dls2, N, C, H, W, 105, -1, 1);
    size_t n = mu.n;
    double *zr = cvt_zeros(n), *dmur = cvt_zeros(n), *dlsr = cvt_zeros(n);
    if (t.st == CV_OK && (!zr || !dmur || !dlsr)) t.st = cv_error(CV_ERR_NOMEM, "reparam check");
    if (t.st == CV_OK) {
        cv_reparam_ref_fwd(mu.d, ls.d, zr, (int64_t)n, seed, stream, i0, temp);
        memcpy(dmur, dmu.d, n * sizeof *dmur); memcpy(dlsr, dls.d, n * sizeof *dlsr);
        cv_reparam_ref_bwd(ls.d, dz.d, dmur, dlsr, (int64_t)n, seed, stream, i0, temp);
        t.st = cv_reparam_fwd(ctx, &mu.dev.t, &ls.dev.t, &z.dev.t, seed, stream, i0, temp);
    }
    if (t.st == CV_OK) t.st = cv_reparam_bwd(ctx, &ls.dev.t, &dz.dev.t, &dmu.dev.t, &dls.dev.t, seed, stream, i0, temp);
    /* logs = 0, t = 1: z = mu + eps exactly, so the device's eps must be the host's */
    if (t.st == CV_OK) t.st = cv_reparam_fwd(ctx, &mu.dev.t, &zero.dev.t, &z1.dev.t, seed, stream, i0, 1.0f);
    /* with the noise cache: the same bits as drawing eps again */
    if (t.st == CV_OK) t.st = cv_reparam_fwd_ex(ctx, &mu.dev.t, &ls.dev.t, &z2.dev.t, seed, stream, i0, temp, &se.dev.t);
    if (t.st == CV_OK) t.st = cv_reparam_bwd_ex(ctx, &ls.dev.t, &dz.dev.t, &dmu2.dev.t, &dls2.dev.t, seed ^ 1, stream + 1,
                                                i0 + 1, temp, &se.dev.t);   /* wrong noise args: se must win */
    size_t same = n;
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &z.dev, z.f);
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &z2.dev, z2.f);
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &dls.dev, dls.f);
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &dls2.dev, dls2.f);
    if (t.st == CV_OK)
        for (size_t i = 0; i < n; i++)
            if (memcmp(&z.f[i], &z2.f[i], sizeof(float)) || memcmp(&dls.f[i], &dls2.f[i], sizeof(float))) { same = i; break; }
    if (same < n) CV_CHECK_DIAG("reparam with the noise cache, element %zu: z %.9g vs %.9g, dlogs %.9g vs %.9g", same,
                                z2.f[same], z.f[same], dls2.f[same], dls.f[same]);
    double e1 = cvt_cmp(&t, &z, zr, "reparam z"), e2 = cvt_cmp(&t, &dmu, dmur, "reparam dmu");
    double e3 = cvt_cmp(&t, &dls, dlsr, "reparam dlogs");
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &z1.dev, z1.f);
    size_t bad = n;
    if (t.st == CV_OK)
        for (size_t i = 0; i < n; i++) {
            float want = mu.f[i] + cv_rng_normal(seed, stream, i0 + i);
            if (memcmp(&want, &z1.f[i], sizeof want)) { bad = i; break; }
        }
    if (bad < n) CV_CHECK_DIAG("reparam z[%zu] with logs 0: device %.9g, host mu + eps %.9g", bad, z1.f[bad],
                               mu.f[bad] + cv_rng_normal(seed, stream, i0 + bad));
    cvt_guards(&t, &mu); cvt_guards(&t, &ls); cvt_guards(&t, &dz); cvt_guards(&t, &zero); cvt_guards(&t, &z1);
    int ok = cvt_ok(&t);
    cvt_shape(&mu, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "reparam fwd %s t=%g index0=%llu: nmse %.2e%s", s, temp, (unsigned long long)i0,
                e1, okstr(ok));
    CV_CHECK_OK(ok && bad == n, "reparam fwd %s logs=0 t=1 index0=%llu: z == mu + cv_rng_normal bit for bit%s", s,
                (unsigned long long)i0, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM && e3 < TOL_ELEM, "reparam bwd %s t=%g index0=%llu: nmse dmu %.2e dlogs %.2e%s", s,
                temp, (unsigned long long)i0, e2, e3, okstr(ok));
    CV_CHECK_OK(ok && same == n, "reparam %s with the noise cache: z and dlogs bit-identical with drawing again%s", s,
                okstr(ok));
    free(zr); free(dmur); free(dlsr);
    cvt_free(&mu); cvt_free(&ls); cvt_free(&z); cvt_free(&dz); cvt_free(&dmu); cvt_free(&dls);
    cvt_free(&zero); cvt_free(&z1); cvt_free(&z2); cvt_free(&se); cvt_free(&dmu2); cvt_free(&dls2);
}

/* mask: which of dmq, dlsq, dmp, dlsp are given */
static void dev_gausskl(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, int mask, int set) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf in[4], kl, dkl, g[4];
    char s[80];
    static const char *const gn[4] = { "kl dmq", "kl dlsq", "kl dmp", "kl dlsp" };
    for (int k = 0; k < 4; k++) cvt_new(&t, &in[k], N, C, H, W, 110 + (uint64_t)k, (k & 1) ? -2 : -2, (k & 1) ? 1 : 2);
    cvt_new(&t, &kl, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dkl, N, C, H, W, 115, -1, 1);
    for (int k = 0; k < 4; k++) {
        if (mask & (1 << k)) cvt_new(&t, &g[k], N, C, H, W, 116 + (uint64_t)k, -1, 1);
        else memset(&g[k], 0, sizeof g[k]);
    }
    size_t n = kl.n;
    double *klr = cvt_zeros(n), *gr[4] = { 0 };
    int mem = klr != NULL;
    for (int k = 0; k < 4; k++)
        if (mask & (1 << k)) {
            gr[k] = cvt_zeros(n);
            if (!gr[k]) mem = 0;
            else if (g[k].d && !(set & (1 << k))) memcpy(gr[k], g[k].d, n * sizeof(double));   /* set: from 0 */
        }
    if (t.st == CV_OK && !mem) t.st = cv_error(CV_ERR_NOMEM, "gausskl check");
    if (t.st == CV_OK) {
        cv_gausskl_ref_fwd(in[0].d, in[1].d, in[2].d, in[3].d, klr, (int64_t)n);
        cv_gausskl_ref_bwd(in[0].d, in[1].d, in[2].d, in[3].d, dkl.d, gr[0], gr[1], gr[2], gr[3], (int64_t)n);
        t.st = cv_gausskl_fwd(ctx, &in[0].dev.t, &in[1].dev.t, &in[2].dev.t, &in[3].dev.t, &kl.dev.t);
    }
    if (t.st == CV_OK)
        t.st = cv_gausskl_bwd_ex(ctx, &in[0].dev.t, &in[1].dev.t, &in[2].dev.t, &in[3].dev.t, &dkl.dev.t, cvt_t(&g[0]),
                                 cvt_t(&g[1]), cvt_t(&g[2]), cvt_t(&g[3]), set);
    double e1 = cvt_cmp(&t, &kl, klr, "kl"), eg = 0;
    for (int k = 0; k < 4; k++)
        if (mask & (1 << k)) { double e = cvt_cmp(&t, &g[k], gr[k], gn[k]); if (!(e <= eg)) eg = e; }
    for (int k = 0; k < 4; k++) cvt_guards(&t, &in[k]);
    cvt_guards(&t, &dkl);
    int ok = cvt_ok(&t);
    cvt_shape(&kl, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "gausskl fwd %s: nmse %.2e%s", s, e1, okstr(ok));
    CV_CHECK_OK(ok && eg < TOL_ELEM, "gausskl bwd %s gradients %s%s%s%s%s: worst nmse %.2e%s", s,
                (mask & 1) ? "dmq " : "", (mask & 2) ? "dlsq " : "", (mask & 4) ? "dmp " : "", (mask & 8) ? "dlsp" : "",
                set ? " (written, not added)" : "", eg, okstr(ok));
    free(klr);
    for (int k = 0; k < 4; k++) { free(gr[k]); cvt_free(&in[k]); cvt_free(&g[k]); }
    cvt_free(&kl); cvt_free(&dkl);
}

/* The backward of KL + per-sample sum in one kernel against the reference
 * (dkl = s dy broadcast; added or written by set). */
static void dev_gausskl_sum(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, int set) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf in[4], dy, g[4];
    char s[80];
    const double sc = 1.0 / (double)(C * H * W);
    for (int k = 0; k < 4; k++) cvt_new(&t, &in[k], N, C, H, W, 130 + (uint64_t)k, -2, (k & 1) ? 1 : 2);
    cvt_new(&t, &dy, N, 1, 1, 1, 136, -1, 1);
    for (int k = 0; k < 4; k++) cvt_new(&t, &g[k], N, C, H, W, 137 + (uint64_t)k, -1, 1);
    size_t n = in[0].n;
    int64_t M = C * H * W;
    double *dkl = cvt_zeros(n), *gr[4] = { 0 };
    int mem = dkl != NULL;
    for (int k = 0; k < 4; k++) if (!(gr[k] = cvt_zeros(n))) mem = 0;
    if (t.st == CV_OK && !mem) t.st = cv_error(CV_ERR_NOMEM, "gausskl sum check");
    if (t.st == CV_OK) {
        cv_sum_ref_bwd(dy.d, dkl, N, M, sc);
        for (int k = 0; k < 4; k++) if (!(set & (1 << k))) memcpy(gr[k], g[k].d, n * sizeof(double));
        cv_gausskl_ref_bwd(in[0].d, in[1].d, in[2].d, in[3].d, dkl, gr[0], gr[1], gr[2], gr[3], (int64_t)n);
        t.st = cv_gausskl_sum_bwd(ctx, &in[0].dev.t, &in[1].dev.t, &in[2].dev.t, &in[3].dev.t, &dy.dev.t, (float)sc,
                                  &g[0].dev.t, &g[1].dev.t, &g[2].dev.t, &g[3].dev.t, set);
    }
    double eg = 0;
    for (int k = 0; k < 4; k++) { double e = cvt_cmp(&t, &g[k], gr[k], "kl sum grad"); if (!(e <= eg)) eg = e; }
    for (int k = 0; k < 4; k++) cvt_guards(&t, &in[k]);
    cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    cvt_shape(&in[0], s, sizeof s);
    CV_CHECK_OK(ok && eg < TOL_ELEM, "gausskl + per-sample sum, backward in one kernel, %s%s: worst nmse %.2e%s", s,
                set ? " (written, not added)" : "", eg, okstr(ok));
    free(dkl);
    for (int k = 0; k < 4; k++) { free(gr[k]); cvt_free(&in[k]); cvt_free(&g[k]); }
    cvt_free(&dy);
}

static void dev_gaussnll(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, float floor) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, mu, ls, nll, dnll, dmu, dls;
    char s[80];
    cvt_new(&t, &x, N, C, H, W, 121, -2, 2);
    cvt_new(&t, &mu, N, C, H, W, 122, -2, 2);
    cvt_new(&t, &ls, N, C, H, W, 123, floor - 2, floor + 2);     /* half below the floor */
    cvt_new(&t, &nll, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dnll, N, C, H, W, 124, -1, 1);
    cvt_new(&t, &dmu, N, C, H, W, 125, -1, 1);
    cvt_new(&t, &dls, N, C, H, W, 126, -1, 1);
    size_t n = x.n;
    double *nr = cvt_zeros(n), *dmur = cvt_zeros(n), *dlsr = cvt_zeros(n);
    if (t.st == CV_OK && (!nr || !dmur || !dlsr)) t.st = cv_error(CV_ERR_NOMEM, "gaussnll check");
    if (t.st == CV_OK) {
        cv_gaussnll_ref_fwd(x.d, mu.d, ls.d, nr, (int64_t)n, floor);
        memcpy(dmur, dmu.d, n * sizeof *dmur); memcpy(dlsr, dls.d, n * sizeof *dlsr);
        cv_gaussnll_ref_bwd(x.d, mu.d, ls.d, dnll.d, dmur, dlsr, (int64_t)n, floor);
        t.st = cv_gaussnll_fwd(ctx, &x.dev.t, &mu.dev.t, &ls.dev.t, &nll.dev.t, floor);
    }
    if (t.st == CV_OK)
        t.st = cv_gaussnll_bwd(ctx, &x.dev.t, &mu.dev.t, &ls.dev.t, &dnll.dev.t, &dmu.dev.t, &dls.dev.t, floor);
    double e1 = cvt_cmp(&t, &nll, nr, "nll"), e2 = cvt_cmp(&t, &dmu, dmur, "nll dmu"), e3 = cvt_cmp(&t, &dls, dlsr, "nll dlogs");
    cvt_guards(&t, &x); cvt_guards(&t, &mu); cvt_guards(&t, &ls); cvt_guards(&t, &dnll);
    int ok = cvt_ok(&t);
    cvt_shape(&x, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "gaussnll fwd %s floor %g: nmse %.2e%s", s, floor, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM && e3 < TOL_ELEM, "gaussnll bwd %s floor %g: nmse dmu %.2e dlogs %.2e%s", s, floor,
                e2, e3, okstr(ok));
    free(nr); free(dmur); free(dlsr);
    cvt_free(&x); cvt_free(&mu); cvt_free(&ls); cvt_free(&nll); cvt_free(&dnll); cvt_free(&dmu); cvt_free(&dls);
}

static void dev_vae_contracts(cv_check *c, cv_ctx *ctx) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf a, b;
    cvt_new(&t, &a, 1, 16, 4, 4, 131, -1, 1);
    cvt_new(&t, &b, 1, 16, 4, 5, 132, -1, 1);
    if (!cvt_ok(&t)) { CV_CHECK_OK(0, "vae contracts: setup failed"); goto done; }
    cv_status st = cv_gausskl_fwd(ctx, &a.dev.t, &a.dev.t, &a.dev.t, &b.dev.t, &a.dev.t);
    const char *msg = cv_last_error();
    CV_CHECK_OK(st == CV_ERR_SHAPE && strstr(msg, "1x16x4x4") && strstr(msg, "1x16x4x5"),
                "gausskl with mismatched shapes: CV_ERR_SHAPE naming both (%s)", msg);
    st = cv_reparam_fwd(ctx, &a.dev.t, &b.dev.t, &a.dev.t, 1, 2, 0, 1.0f);
    msg = cv_last_error();
    CV_CHECK_OK(st == CV_ERR_SHAPE && strstr(msg, "1x16x4x4") && strstr(msg, "1x16x4x5"),
                "reparam with mismatched shapes: CV_ERR_SHAPE naming both (%s)", msg);
done:
    cvt_free(&a); cvt_free(&b);
}

void cv_vae_devcheck(cv_check *c, cv_ctx *ctx) {
    dev_rng(c, ctx, 65537, 0, 0, 0);
    dev_rng(c, ctx, 4099, 0xdeadbeefcafeULL, 0x100000007ULL, 0xfffff800ULL);
    dev_reparam(c, ctx, 1, 3, 5, 7, 1.0f, 0);
    dev_reparam(c, ctx, 2, 17, 9, 11, 0.7f, 0);
    dev_reparam(c, ctx, 4, 16, 4, 4, 1.0f, 0);
    dev_reparam(c, ctx, 2, 16, 4, 4, 1.0f, 2 * 16 * 4 * 4);      /* rows 2-3 of a batch of 4 */
    dev_reparam(c, ctx, 1, 3, 5, 7, 0.7f, UINT64_C(0x100000003)); /* index0 across the 32-bit word */
    dev_gausskl(c, ctx, 1, 3, 5, 7, 15, 0);
    dev_gausskl(c, ctx, 2, 33, 8, 9, 15, 0);
    dev_gausskl(c, ctx, 1, 5, 3, 3, 1 | 8, 0);
    dev_gausskl(c, ctx, 2, 16, 8, 8, 15, 15);
    dev_gausskl(c, ctx, 1, 5, 3, 3, 15, 2 | 4);
    dev_gausskl_sum(c, ctx, 1, 3, 5, 7, 0);
    dev_gausskl_sum(c, ctx, 4, 16, 16, 16, 15);
    dev_gausskl_sum(c, ctx, 3, 2, 33, 65, 1 | 8);
    dev_gaussnll(c, ctx, 1, 3, 5, 7, -3.0f);
    dev_gaussnll(c, ctx, 2, 17, 9, 11, -1.0f);
    dev_vae_contracts(c, ctx);
}
