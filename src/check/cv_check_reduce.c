/* cv_check_reduce.c -- the reduce family checks: reference vs finite differences, device vs reference
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "check/cv_check_elem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks: reference ------------------------------------------------------------- */

static void fd_sum(cvt_fd *f) { cv_sum_ref_fwd(f->in[0], f->out[0], f->d[0], f->d[1], f->p[0], (int)f->d[2]); }

void cv_reduce_gradcheck(cv_check *c) {
    for (int acc = 0; acc < 2; acc++) {
        int64_t N = 3, M = 17;
        double *x = cvt_zeros(N * M), *y = cvt_zeros(N), *g = cvt_zeros(N), *y0 = cvt_zeros(N), *dx = cvt_zeros(N * M);
        if (!x || !y || !g || !y0 || !dx) { CV_CHECK_OK(0, "sum gradcheck: out of memory"); goto next; }
        cv_chk_rand_d(x, N * M, 1 + acc, -2, 2);
        cv_chk_rand_d(g, N, 3 + acc, -1, 1);
        cv_chk_rand_d(y0, N, 5 + acc, -1, 1);
        cvt_fd f;
        memset(&f, 0, sizeof f);
        f.fwd = fd_sum; f.d[0] = N; f.d[1] = M; f.d[2] = acc; f.p[0] = 1.0 / M;
        f.in[0] = x; f.n_in[0] = (size_t)(N * M);
        f.out[0] = y; f.gout[0] = g; f.n_out[0] = (size_t)N; f.out0[0] = acc ? y0 : NULL;
        cv_sum_ref_bwd(g, dx, N, M, 1.0 / M);
        double e = cvt_fd_err(&f, 0, dx, 1e-3, 7);
        CV_CHECK_OK(e < 1e-8, "sum (mean, s=1/M)%s ref bwd vs finite differences, N=%lld M=%lld: rel err %.2e",
                    acc ? " accumulate" : "", (long long)N, (long long)M, e);
    next:
        free(x); free(y); free(g); free(y0); free(dx);
    }

    /* sumsq of integers has an exact value: x_i = (i mod 7) - 3 sums to 4 per
     * full period of 7 (9+4+1+0+1+4+9 = 28). */
    {
        int64_t n = 7 * 1001 + 3;           /* + (-3)^2 + (-2)^2 + (-1)^2 = 14 */
        double *x = cvt_zeros(n);
        if (x) for (int64_t i = 0; i < n; i++) x[i] = (double)(i % 7) - 3;
        double r = x ? cv_sumsq_ref(x, n) : -1;
        CV_CHECK_OK(r == 28.0 * 1001 + 14, "sumsq ref of (i mod 7) - 3, n=%lld: %.17g (exact %d)", (long long)n, r,
                    28 * 1001 + 14);
        free(x);
    }

    /* chansum ref against the affine backward's independent dg, db loops */
    {
        int64_t N = 2, C = 5, HW = 13;
        size_t n = (size_t)(N * C * HW);
        double *x = cvt_zeros(n), *dy = cvt_zeros(n), *g = cvt_zeros(C), *dg = cvt_zeros(C), *db = cvt_zeros(C),
               *cg = cvt_zeros(C), *cb = cvt_zeros(C);
        if (x && dy && g && dg && db && cg && cb) {
            cv_chk_rand_d(x, n, 11, -2, 2);
            cv_chk_rand_d(dy, n, 12, -1, 1);
            cv_chk_rand_d(g, C, 13, -1, 1);
            cv_affine_ref_bwd(x, g, dy, NULL, dg, db, N, C, HW);
            cv_chansum_ref(dy, x, cg, N, C, HW, 1.0, 0);
            cv_chansum_ref(dy, NULL, cb, N, C, HW, 1.0, 0);
            double e1 = cv_chk_relerr(cg, dg, C), e2 = cv_chk_relerr(cb, db, C);
            CV_CHECK_OK(e1 < 1e-14 && e2 < 1e-14, "chansum ref = affine ref dg, db: rel err %.2e, %.2e", e1, e2);
        } else CV_CHECK_OK(0, "chansum ref: out of memory");
        free(x); free(dy); free(g); free(dg); free(db); free(cg); free(cb);
    }
}

/* ---- checks: device ------------------------------------------------------------------ */

#define TOL_SQ  1e-12     /* sums of squares: no cancellation, observed ~1e-15 */
#define TOL_RED 1e-10     /* signed sums may cancel: observed up to 1e-13; a lost element costs > 1e-5 */

static const char *okstr(int ok) { return ok ? "" : " (FAILED)"; }

/* set: the backward writes dx (=), its first writer */
static void dev_sum(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, int acc, int set) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, y, dy, dx;
    char s[80];
    int64_t M = C * H * W;
    float sc = (float)(1.0 / (double)M);
    cvt_new(&t, &x, N, C, H, W, 71 + C, -2, 2);
    cvt_new(&t, &y, N, 1, 1, 1, acc ? 72 : 0, -1, 1);
    cvt_new(&t, &dy, N, 1, 1, 1, 73, -1, 1);
    cvt_new(&t, &dx, N, C, H, W, 74, -1, 1);
    double *yr = cvt_zeros((size_t)N), *dxr = cvt_zeros(x.n);
    if (t.st == CV_OK && (!yr || !dxr)) t.st = cv_error(CV_ERR_NOMEM, "sum check");
    if (t.st == CV_OK) {
        memcpy(yr, y.d, (size_t)N * sizeof *yr);
        cv_sum_ref_fwd(x.d, yr, N, M, sc, acc);
        if (!set) memcpy(dxr, dx.d, x.n * sizeof *dxr);
        cv_sum_ref_bwd(dy.d, dxr, N, M, sc);
        t.st = cv_sum_fwd(ctx, &x.dev.t, &y.dev.t, sc, acc);
    }
    if (t.st == CV_OK) t.st = cv_sum_bwd_ex(ctx, &dy.dev.t, &dx.dev.t, sc, set);
    double e1 = cvt_cmp(&t, &y, yr, "sum y"), e2 = cvt_cmp(&t, &dx, dxr, "sum dx");
    cvt_guards(&t, &x); cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    cvt_shape(&x, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_RED, "sum fwd (mean)%s %s: nmse %.2e%s", acc ? " accumulate" : "", s, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < 1e-10, "sum bwd %s%s: nmse %.2e%s", s, set ? " (written, not added)" : "", e2, okstr(ok));
    free(yr); free(dxr);
    cvt_free(&x); cvt_free(&y); cvt_free(&dy); cvt_free(&dx);
}

/* sumsq of n values; with acc onto 5.  Run twice: the bits must repeat. */
static void dev_sumsq(cv_check *c, cv_ctx *ctx, int64_t n, int acc) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, y;
    cvt_new(&t, &x, 1, 1, 1, n, 81 + (uint64_t)n, -1, 1);
    cvt_new(&t, &y, 1, 1, 1, 2, 0, 0, 0);
    double yr[2] = { acc ? 5.0 : 0.0, 0.0 }, y0[2] = { 5.0, 0.0 };
    cv_tensor y1 = y.dev.t;
    y1.shape[3] = 1;
    if (acc) cvt_set(&t, &y, y0);
    yr[0] += cv_sumsq_ref(x.d, n);
    if (t.st == CV_OK) t.st = cv_sumsq_fwd(ctx, &x.dev.t, &y1, acc);
    double e1 = cvt_cmp(&t, &y, yr, "sumsq");
    float first = y.f ? y.f[0] : 0;
    if (acc) cvt_set(&t, &y, y0);
    if (t.st == CV_OK) t.st = cv_sumsq_fwd(ctx, &x.dev.t, &y1, acc);
    double e2 = cvt_cmp(&t, &y, yr, "sumsq again");
    int same = y.f && memcmp(&first, &y.f[0], sizeof first) == 0;
    cvt_guards(&t, &x);
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e1 < TOL_SQ && e2 < TOL_SQ && same,
                "sumsq%s n=%lld: nmse %.2e, rerun bit-identical: %s, y[1] untouched%s", acc ? " accumulate" : "",
                (long long)n, e1, same ? "yes" : "NO", okstr(ok));
    cvt_free(&x); cvt_free(&y);
}

static void dev_chansum(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, int with_w, int acc) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, w, o;
    char s[80];
    cvt_new(&t, &x, N, C, H, W, 91 + C, -2, 2);
    if (with_w) cvt_new(&t, &w, N, C, H, W, 92, -1, 1);
    else memset(&w, 0, sizeof w);
    cvt_new(&t, &o, 1, C, 1, 1, acc ? 93 : 0, -1, 1);
    double *orf = cvt_zeros((size_t)C);
    if (t.st == CV_OK && !orf) t.st = cv_error(CV_ERR_NOMEM, "chansum check");
    if (t.st == CV_OK) {
        memcpy(orf, o.d, (size_t)C * sizeof *orf);
        cv_chansum_ref(x.d, with_w ? w.d : NULL, orf, N, C, H * W, 0.5, acc);
        t.st = cv_chansum_fwd(ctx, &x.dev.t, cvt_t(&w), &o.dev.t, 0.5f, acc);
    }
    double e = cvt_cmp(&t, &o, orf, "chansum");
    cvt_guards(&t, &x); cvt_guards(&t, &w);
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e < TOL_RED, "chansum%s%s %s: nmse %.2e%s", with_w ? " of x*w" : "", acc ? " accumulate" : "",
                cvt_shape(&x, s, sizeof s), e, okstr(ok));
    free(orf);
    cvt_free(&x); cvt_free(&w); cvt_free(&o);
}

void cv_reduce_devcheck(cv_check *c, cv_ctx *ctx) {
    dev_sum(c, ctx, 1, 3, 5, 7, 0, 0);
    dev_sum(c, ctx, 2, 17, 9, 11, 1, 0);
    dev_sum(c, ctx, 4, 3, 64, 65, 0, 0);
    dev_sum(c, ctx, 5, 1, 1, 1, 1, 0);
    dev_sum(c, ctx, 3, 16, 8, 8, 0, 1);
    static const int64_t ns[] = { 1, 255, 256, 257, 4097, 1000003 };
    /* quick: not the million-element sizes (the work-group count's cap is
     * reached at 3e7 only; 60 s under Oclgrind) */
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        if (!c->quick || ns[i] < 100000) dev_sumsq(c, ctx, ns[i], (int)(i & 1));
    if (!c->quick) dev_sumsq(c, ctx, 30000001, 1);          /* tens of millions: G hits its cap */
    dev_chansum(c, ctx, 1, 3, 5, 7, 0, 0);
    dev_chansum(c, ctx, 2, 33, 9, 11, 1, 1);
    dev_chansum(c, ctx, 4, 5, 64, 64, 1, 0);
    size_t b = cv_reduce_scratch_bytes(1, 30000001);
    CV_CHECK_OK(b > 0 && b <= 4096, "reduction workspace for 3e7 elements: %zu bytes (<= 4 KiB)", b);
}
