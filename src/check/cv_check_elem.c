/* cv_check_elem.c -- the elem family checks: reference backward vs finite differences, device vs reference
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "check/cv_check_elem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks: reference backward vs finite differences ----------------------- */

static void fd_gelu(cvt_fd *f)     { cv_gelu_ref_fwd(f->in[0], f->out[0], (int64_t)f->n_in[0]); }
static void fd_add(cvt_fd *f)      { cv_add_ref_fwd(f->in[0], f->in[1], f->out[0], (int64_t)f->n_in[0]); }
static void fd_scale(cvt_fd *f)    { cv_scale_ref_fwd(f->in[0], f->out[0], (int64_t)f->n_in[0], f->p[0]); }
static void fd_avgpool(cvt_fd *f)  { cv_avgpool_ref_fwd(f->in[0], f->out[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void fd_upsample(cvt_fd *f) { cv_upsample_ref_fwd(f->in[0], f->out[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4], (int)f->d[5]); }
static void fd_wrappad(cvt_fd *f)  { cv_wrappad_ref_fwd(f->in[0], f->out[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void fd_crop(cvt_fd *f)     { cv_crop_ref_fwd(f->in[0], f->out[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void fd_concat(cvt_fd *f)   { cv_concat_ref_fwd(f->in[0], f->in[1], f->out[0], f->d[0], f->d[1], f->d[2], f->d[3]); }
static void fd_slice(cvt_fd *f)    { cv_slice_ref_fwd(f->in[0], f->out[0], f->d[0], f->d[1], f->d[2], f->d[3], f->d[4]); }
static void fd_affine(cvt_fd *f)   { cv_affine_ref_fwd(f->in[0], f->in[1], f->in[2], f->out[0], f->d[0], f->d[1], f->d[2]); }

/* Run the reference backward `bwd` (which fills grads[k] for each input k,
 * starting from zero) and compare each against finite differences. */
typedef void (*bwd_fn)(cvt_fd *f, double **grads);

static void fd_case(cv_check *c, const char *name, cvt_fd *f, int n_in, const char *const *in_names,
                    bwd_fn bwd, double eps, double tol) {
    double *grads[4] = { 0 };
    int ok = 1;
    for (int k = 0; k < n_in; k++) if (!(grads[k] = cvt_zeros(f->n_in[k]))) ok = 0;
    for (int k = 0; k < 4; k++) if (f->out[k] && !(f->gout[k])) ok = 0;
    if (!ok) { CV_CHECK_OK(0, "%s: out of memory", name); goto done; }
    bwd(f, grads);
    for (int k = 0; k < n_in; k++) {
        double e = cvt_fd_err(f, k, grads[k], eps, 100 + (uint64_t)k);
        CV_CHECK_OK(e < tol, "%s ref bwd d%s vs finite differences (%zu values): rel err %.2e", name, in_names[k],
                    f->n_in[k], e);
    }
done:
    for (int k = 0; k < n_in; k++) free(grads[k]);
}

static void bwd_gelu(cvt_fd *f, double **g)    { cv_gelu_ref_bwd(f->in[0], f->gout[0], g[0], (int64_t)f->n_in[0]); }
static void bwd_add(cvt_fd *f, double **g)     { cv_add_ref_bwd(f->gout[0], g[0], g[1], (int64_t)f->n_in[0]); }
static void bwd_scale(cvt_fd *f, double **g)   { cv_scale_ref_bwd(f->gout[0], g[0], (int64_t)f->n_in[0], f->p[0]); }
static void bwd_avgpool(cvt_fd *f, double **g) { cv_avgpool_ref_bwd(f->gout[0], g[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void bwd_upsample(cvt_fd *f, double **g){ cv_upsample_ref_bwd(f->gout[0], g[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void bwd_wrappad(cvt_fd *f, double **g) { cv_wrappad_ref_bwd(f->gout[0], g[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void bwd_crop(cvt_fd *f, double **g)    { cv_crop_ref_bwd(f->gout[0], g[0], f->d[0], f->d[1], f->d[2], f->d[3], (int)f->d[4]); }
static void bwd_concat(cvt_fd *f, double **g)  { cv_concat_ref_bwd(f->gout[0], g[0], g[1], f->d[0], f->d[1], f->d[2], f->d[3]); }
static void bwd_slice(cvt_fd *f, double **g)   { cv_slice_ref_bwd(f->gout[0], g[0], f->d[0], f->d[1], f->d[2], f->d[3], f->d[4]); }
static void bwd_affine(cvt_fd *f, double **g)  { cv_affine_ref_bwd(f->in[0], f->in[1], f->gout[0], g[0], g[1], g[2], f->d[0], f->d[1], f->d[2]); }

/* Host arrays of one fd case: inputs uniform in [lo, hi), outputs with random
 * upstream gradients in [-1, 1). */
typedef struct fd_mem { double *p[16]; int n; } fd_mem;
static double *fd_arr(fd_mem *m, size_t n, uint64_t seed, double lo, double hi) {
    double *a = cvt_zeros(n);
    if (a && seed) cv_chk_rand_d(a, n, seed, lo, hi);
    if (m->n < 16) m->p[m->n++] = a;
    return a;
}
static void fd_mem_free(fd_mem *m) { for (int i = 0; i < m->n; i++) free(m->p[i]); m->n = 0; }

static void fd_out(fd_mem *m, cvt_fd *f, int k, size_t n, uint64_t seed) {
    f->n_out[k] = n;
    f->out[k] = fd_arr(m, n, 0, 0, 0);
    f->gout[k] = fd_arr(m, n, seed, -1, 1);
}

void cv_elem_gradcheck(cv_check *c) {
    static const char *const x1[] = { "x" }, *const ab[] = { "a", "b" }, *const xgb[] = { "x", "g", "b" };
    fd_mem m = { { 0 }, 0 };
    cvt_fd f;

    /* gelu over [-5, 5]: the tails and the curved middle */
    memset(&f, 0, sizeof f); f.fwd = fd_gelu;
    f.n_in[0] = 61; f.in[0] = fd_arr(&m, 61, 1, -5, 5); fd_out(&m, &f, 0, 61, 2);
    fd_case(c, "gelu n=61", &f, 1, x1, bwd_gelu, 1e-3, 1e-7);
    fd_mem_free(&m);

    memset(&f, 0, sizeof f); f.fwd = fd_add;
    f.n_in[0] = f.n_in[1] = 45; f.in[0] = fd_arr(&m, 45, 3, -2, 2); f.in[1] = fd_arr(&m, 45, 4, -2, 2);
    fd_out(&m, &f, 0, 45, 5);
    fd_case(c, "add n=45", &f, 2, ab, bwd_add, 1e-3, 1e-8);
    fd_mem_free(&m);

    memset(&f, 0, sizeof f); f.fwd = fd_scale; f.p[0] = -1.7;
    f.n_in[0] = 33; f.in[0] = fd_arr(&m, 33, 6, -2, 2); fd_out(&m, &f, 0, 33, 7);
    fd_case(c, "scale s=-1.7 n=33", &f, 1, x1, bwd_scale, 1e-3, 1e-8);
    fd_mem_free(&m);

    static const int64_t pools[][5] = { { 2, 3, 6, 4, 2 }, { 1, 2, 6, 9, 3 } };
    for (int t = 0; t < 2; t++) {
        const int64_t *d = pools[t];
        char name[96];
        size_t nx = (size_t)(d[0] * d[1] * d[2] * d[3]), ny = nx / (size_t)(d[4] * d[4]);
        memset(&f, 0, sizeof f); f.fwd = fd_avgpool; memcpy(f.d, d, sizeof pools[0]);
        f.n_in[0] = nx; f.in[0] = fd_arr(&m, nx, 10 + t, -2, 2); fd_out(&m, &f, 0, ny, 20 + t);
        snprintf(name, sizeof name, "avgpool k=%d %lldx%lldx%lldx%lld", (int)d[4], (long long)d[0], (long long)d[1],
                 (long long)d[2], (long long)d[3]);
        fd_case(c, name, &f, 1, x1, bwd_avgpool, 1e-3, 1e-8);
        fd_mem_free(&m);
    }

    /* periodic padding (a map smaller than the pad: every copy wraps more
     * than once) and cropping; d = N, C, H, W of the input, p */
    static const int64_t pads[][5] = { { 2, 3, 4, 5, 1 }, { 1, 2, 1, 2, 3 }, { 1, 2, 7, 6, 2 } };
    for (int t = 0; t < 3; t++) {
        const int64_t *d = pads[t];
        char name[96];
        size_t nx = (size_t)(d[0] * d[1] * d[2] * d[3]), ny = (size_t)(d[0] * d[1] * (d[2] + 2 * d[4]) * (d[3] + 2 * d[4]));
        memset(&f, 0, sizeof f); f.fwd = fd_wrappad; memcpy(f.d, d, sizeof pads[0]);
        f.n_in[0] = nx; f.in[0] = fd_arr(&m, nx, 60 + t, -2, 2); fd_out(&m, &f, 0, ny, 70 + t);
        snprintf(name, sizeof name, "wrappad p=%d %lldx%lldx%lldx%lld", (int)d[4], (long long)d[0], (long long)d[1],
                 (long long)d[2], (long long)d[3]);
        fd_case(c, name, &f, 1, x1, bwd_wrappad, 1e-3, 1e-8);
        fd_mem_free(&m);
        int64_t dc[5] = { d[0], d[1], d[2] + 2 * d[4], d[3] + 2 * d[4], d[4] };   /* crop back to d */
        memset(&f, 0, sizeof f); f.fwd = fd_crop; memcpy(f.d, dc, sizeof dc);
        f.n_in[0] = ny; f.in[0] = fd_arr(&m, ny, 80 + t, -2, 2); fd_out(&m, &f, 0, nx, 90 + t);
        snprintf(name, sizeof name, "crop p=%d %lldx%lldx%lldx%lld", (int)dc[4], (long long)dc[0], (long long)dc[1],
                 (long long)dc[2], (long long)dc[3]);
        fd_case(c, name, &f, 1, x1, bwd_crop, 1e-3, 1e-8);
        fd_mem_free(&m);
    }

    static const int64_t ups[][6] = { { 2, 3, 3, 5, 2, 0 }, { 1, 2, 2, 3, 3, 1 } };
    for (int t = 0; t < 2; t++) {
        const int64_t *d = ups[t];
        char name[96];
        size_t nx = (size_t)(d[0] * d[1] * d[2] * d[3]), ny = nx * (size_t)(d[4] * d[4]);
        memset(&f, 0, sizeof f); f.fwd = fd_upsample; memcpy(f.d, d, sizeof ups[0]);
        f.n_in[0] = nx; f.in[0] = fd_arr(&m, nx, 30 + t, -2, 2); fd_out(&m, &f, 0, ny, 40 + t);
        if (d[5]) f.out0[0] = fd_arr(&m, ny, 50 + t, -1, 1);     /* accumulate onto a non-zero y */
        snprintf(name, sizeof name, "upsample k=%d%s %lldx%lldx%lldx%lld", (int)d[4], d[5] ? " accumulate" : "",
                 (long long)d[0], (long long)d[1], (long long)d[2], (long long)d[3]);
        fd_case(c, name, &f, 1, x1, bwd_upsample, 1e-3, 1e-8);
        fd_mem_free(&m);
    }

    /* concat (N=2, Ca=3, Cb=2, HW=6) */
    memset(&f, 0, sizeof f); f.fwd = fd_concat; f.d[0] = 2; f.d[1] = 3; f.d[2] = 2; f.d[3] = 6;
    f.n_in[0] = 36; f.n_in[1] = 24; f.in[0] = fd_arr(&m, 36, 60, -2, 2); f.in[1] = fd_arr(&m, 24, 61, -2, 2);
    fd_out(&m, &f, 0, 60, 62);
    fd_case(c, "concat 2x3 + 2x2 (HW=6)", &f, 2, ab, bwd_concat, 1e-3, 1e-8);
    fd_mem_free(&m);

    /* slice x (2, 5, 9) channels 1..3 */
    memset(&f, 0, sizeof f); f.fwd = fd_slice; f.d[0] = 2; f.d[1] = 5; f.d[2] = 9; f.d[3] = 1; f.d[4] = 3;
    f.n_in[0] = 90; f.in[0] = fd_arr(&m, 90, 70, -2, 2); fd_out(&m, &f, 0, 54, 71);
    fd_case(c, "slice 2x5x3x3 [1:4]", &f, 1, x1, bwd_slice, 1e-3, 1e-8);
    fd_mem_free(&m);

    /* affine (N=2, C=3, HW=20), all of x, g, b */
    memset(&f, 0, sizeof f); f.fwd = fd_affine; f.d[0] = 2; f.d[1] = 3; f.d[2] = 20;
    f.n_in[0] = 120; f.n_in[1] = 3; f.n_in[2] = 3;
    f.in[0] = fd_arr(&m, 120, 80, -2, 2); f.in[1] = fd_arr(&m, 3, 81, -2, 2); f.in[2] = fd_arr(&m, 3, 82, -2, 2);
    fd_out(&m, &f, 0, 120, 83);
    fd_case(c, "affine 2x3x4x5", &f, 3, xgb, bwd_affine, 1e-3, 1e-8);
    fd_mem_free(&m);
}

/* ---- checks: device vs reference -------------------------------------------- */

#define TOL_ELEM 1e-10
#define TOL_RED  1e-9

static const char *okstr(int ok) { return ok ? "" : " (FAILED)"; }

static void dev_gelu(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, y, dy, dx;
    char s[80];
    cvt_new(&t, &x, N, C, H, W, 11 + C, -5, 5);
    cvt_new(&t, &y, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dy, N, C, H, W, 12 + C, -1, 1);
    cvt_new(&t, &dx, N, C, H, W, 13 + C, -1, 1);
    double *yr = cvt_zeros(x.n), *dxr = cvt_zeros(x.n);
    if (t.st == CV_OK && (!yr || !dxr)) t.st = cv_error(CV_ERR_NOMEM, "gelu check");
    if (t.st == CV_OK) {
        cv_gelu_ref_fwd(x.d, yr, (int64_t)x.n);
        memcpy(dxr, dx.d, x.n * sizeof *dxr);
        cv_gelu_ref_bwd(x.d, dy.d, dxr, (int64_t)x.n);
        t.st = cv_gelu_fwd(ctx, &x.dev.t, &y.dev.t);
    }
    if (t.st == CV_OK) t.st = cv_gelu_bwd(ctx, &x.dev.t, &dy.dev.t, &dx.dev.t);
    double e1 = cvt_cmp(&t, &y, yr, "gelu y"), e2 = cvt_cmp(&t, &dx, dxr, "gelu dx");
    cvt_guards(&t, &x); cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "gelu fwd %s: nmse %.2e%s", cvt_shape(&x, s, sizeof s), e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM, "gelu bwd %s (dx += onto non-zero): nmse %.2e%s", s, e2, okstr(ok));
    free(yr); free(dxr);
    cvt_free(&x); cvt_free(&y); cvt_free(&dy); cvt_free(&dx);
}

/* set: bits 1, 2 write da, db (=) as their first writer */
static void dev_add_scale(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, float sc, int set) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf a, b, y, dy, da, db, z, dz;
    char s[80];
    cvt_new(&t, &a, N, C, H, W, 21, -2, 2);
    cvt_new(&t, &b, N, C, H, W, 22, -2, 2);
    cvt_new(&t, &y, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dy, N, C, H, W, 23, -1, 1);
    cvt_new(&t, &da, N, C, H, W, 24, -1, 1);
    cvt_new(&t, &db, N, C, H, W, 25, -1, 1);
    cvt_new(&t, &z, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dz, N, C, H, W, 26, -1, 1);
    size_t n = a.n;
    double *yr = cvt_zeros(n), *dar = cvt_zeros(n), *dbr = cvt_zeros(n), *zr = cvt_zeros(n), *dzr = cvt_zeros(n);
    if (t.st == CV_OK && (!yr || !dar || !dbr || !zr || !dzr)) t.st = cv_error(CV_ERR_NOMEM, "add check");
    if (t.st == CV_OK) {
        cv_add_ref_fwd(a.d, b.d, yr, (int64_t)n);
        if (!(set & 1)) memcpy(dar, da.d, n * sizeof *dar);
        if (!(set & 2)) memcpy(dbr, db.d, n * sizeof *dbr);
        cv_add_ref_bwd(dy.d, dar, dbr, (int64_t)n);
        cv_scale_ref_fwd(a.d, zr, (int64_t)n, sc);
        memcpy(dzr, dz.d, n * sizeof *dzr);
        cv_scale_ref_bwd(dy.d, dzr, (int64_t)n, sc);
        t.st = cv_add_fwd(ctx, &a.dev.t, &b.dev.t, &y.dev.t);
    }
    if (t.st == CV_OK) t.st = cv_add_bwd_ex(ctx, &dy.dev.t, &da.dev.t, &db.dev.t, set);
    if (t.st == CV_OK) t.st = cv_scale_fwd(ctx, &a.dev.t, &z.dev.t, sc);
    if (t.st == CV_OK) t.st = cv_scale_bwd(ctx, &dy.dev.t, &dz.dev.t, sc);
    double e1 = cvt_cmp(&t, &y, yr, "add y"), e2 = cvt_cmp(&t, &da, dar, "add da"), e3 = cvt_cmp(&t, &db, dbr, "add db");
    double e4 = cvt_cmp(&t, &z, zr, "scale y"), e5 = cvt_cmp(&t, &dz, dzr, "scale dx");
    cvt_guards(&t, &a); cvt_guards(&t, &b); cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    cvt_shape(&a, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "add fwd %s: nmse %.2e%s", s, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM && e3 < TOL_ELEM, "add bwd %s%s%s: nmse da %.2e db %.2e%s", s,
                (set & 1) ? " da=" : "", (set & 2) ? " db=" : "", e2, e3, okstr(ok));
    CV_CHECK_OK(ok && e4 < TOL_ELEM, "scale fwd %s s=%g: nmse %.2e%s", s, sc, e4, okstr(ok));
    CV_CHECK_OK(ok && e5 < TOL_ELEM, "scale bwd %s s=%g: nmse %.2e%s", s, sc, e5, okstr(ok));
    free(yr); free(dar); free(dbr); free(zr); free(dzr);
    cvt_free(&a); cvt_free(&b); cvt_free(&y); cvt_free(&dy); cvt_free(&da); cvt_free(&db); cvt_free(&z); cvt_free(&dz);
}

/* avgpool x (N,C,H,W) -> (H/k, W/k) and upsample of that back to (H, W) */
static void dev_pool(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, int k, int acc) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, y, dy, dx, u, du;
    char s[80];
    int64_t h = H / k, w = W / k;
    cvt_new(&t, &x, N, C, H, W, 31, -2, 2);
    cvt_new(&t, &y, N, C, h, w, 0, 0, 0);
    cvt_new(&t, &dy, N, C, h, w, 32, -1, 1);
    cvt_new(&t, &dx, N, C, H, W, 33, -1, 1);
    cvt_new(&t, &u, N, C, H, W, acc ? 34 : 0, -1, 1);     /* upsample of y into u (+= when acc) */
    cvt_new(&t, &du, N, C, h, w, 35, -1, 1);              /* upsample backward of dx into du */
    double *yr = cvt_zeros(y.n), *dxr = cvt_zeros(x.n), *ur = cvt_zeros(x.n), *dur = cvt_zeros(y.n);
    if (t.st == CV_OK && (!yr || !dxr || !ur || !dur)) t.st = cv_error(CV_ERR_NOMEM, "pool check");
    if (t.st == CV_OK) {
        cv_avgpool_ref_fwd(x.d, yr, N, C, H, W, k);
        memcpy(dxr, dx.d, x.n * sizeof *dxr);
        cv_avgpool_ref_bwd(dy.d, dxr, N, C, H, W, k);
        memcpy(ur, u.d, x.n * sizeof *ur);
        /* the device upsamples its own (float) pooled y; give the reference
         * the same values by rounding yr to float */
        double *yf = cvt_zeros(y.n);
        if (!yf) t.st = cv_error(CV_ERR_NOMEM, "pool check");
        else {
            for (size_t i = 0; i < y.n; i++) yf[i] = (float)yr[i];
            cv_upsample_ref_fwd(yf, ur, N, C, h, w, k, acc);
            free(yf);
        }
        memcpy(dur, du.d, y.n * sizeof *dur);
        /* dx after the avgpool backward is the upstream gradient of the upsample */
        double *dxf = cvt_zeros(x.n);
        if (!dxf) t.st = cv_error(CV_ERR_NOMEM, "pool check");
        else {
            for (size_t i = 0; i < x.n; i++) dxf[i] = (float)dxr[i];
            cv_upsample_ref_bwd(dxf, dur, N, C, h, w, k);
            free(dxf);
        }
    }
    if (t.st == CV_OK) t.st = cv_avgpool_fwd(ctx, &x.dev.t, &y.dev.t, k);
    if (t.st == CV_OK) t.st = cv_avgpool_bwd(ctx, &dy.dev.t, &dx.dev.t, k);
    if (t.st == CV_OK) t.st = cv_upsample_fwd(ctx, &y.dev.t, &u.dev.t, k, acc);
    if (t.st == CV_OK) t.st = cv_upsample_bwd(ctx, &dx.dev.t, &du.dev.t, k);
    double e1 = cvt_cmp(&t, &y, yr, "avgpool y"), e2 = cvt_cmp(&t, &dx, dxr, "avgpool dx");
    double e3 = cvt_cmp(&t, &u, ur, "upsample y"), e4 = cvt_cmp(&t, &du, dur, "upsample dx");
    cvt_guards(&t, &x); cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    cvt_shape(&x, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "avgpool fwd k=%d %s: nmse %.2e%s", k, s, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM, "avgpool bwd k=%d %s: nmse %.2e%s", k, s, e2, okstr(ok));
    CV_CHECK_OK(ok && e3 < TOL_ELEM, "upsample fwd k=%d%s to %s: nmse %.2e%s", k, acc ? " accumulate" : "", s, e3,
                okstr(ok));
    CV_CHECK_OK(ok && e4 < TOL_ELEM, "upsample bwd k=%d from %s: nmse %.2e%s", k, s, e4, okstr(ok));
    free(yr); free(dxr); free(ur); free(dur);
    cvt_free(&x); cvt_free(&y); cvt_free(&dy); cvt_free(&dx); cvt_free(&u); cvt_free(&du);
}

/* wrappad x (N,C,H,W) by p, and crop of the padded map back to (H, W):
 * the crop of the pad is the identity, checked too */
static void dev_pad(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, int p) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, y, dy, dx, z, dz;
    char s[80];
    int64_t Hp = H + 2 * p, Wp = W + 2 * p;
    cvt_new(&t, &x, N, C, H, W, 131, -2, 2);
    cvt_new(&t, &y, N, C, Hp, Wp, 0, 0, 0);
    cvt_new(&t, &dy, N, C, Hp, Wp, 132, -1, 1);
    cvt_new(&t, &dx, N, C, H, W, 133, -1, 1);       /* += onto random values */
    cvt_new(&t, &z, N, C, H, W, 0, 0, 0);           /* crop of y */
    cvt_new(&t, &dz, N, C, Hp, Wp, 134, -1, 1);     /* crop backward of dx into dz (+=) */
    double *yr = cvt_zeros(y.n), *dxr = cvt_zeros(x.n), *zr = cvt_zeros(x.n), *dzr = cvt_zeros(y.n), *yf = cvt_zeros(y.n);
    if (t.st == CV_OK && (!yr || !dxr || !zr || !dzr || !yf)) t.st = cv_error(CV_ERR_NOMEM, "pad check");
    if (t.st == CV_OK) {
        cv_wrappad_ref_fwd(x.d, yr, N, C, H, W, p);
        memcpy(dxr, dx.d, x.n * sizeof *dxr);
        cv_wrappad_ref_bwd(dy.d, dxr, N, C, H, W, p);
        for (size_t i = 0; i < y.n; i++) yf[i] = (float)yr[i];
        cv_crop_ref_fwd(yf, zr, N, C, Hp, Wp, p);
        memcpy(dzr, dz.d, y.n * sizeof *dzr);
        double *dxf = cvt_zeros(x.n);
        if (!dxf) t.st = cv_error(CV_ERR_NOMEM, "pad check");
        else {
            for (size_t i = 0; i < x.n; i++) dxf[i] = (float)dxr[i];
            cv_crop_ref_bwd(dxf, dzr, N, C, Hp, Wp, p);
            free(dxf);
        }
    }
    if (t.st == CV_OK) t.st = cv_wrappad_fwd(ctx, &x.dev.t, &y.dev.t, p);
    if (t.st == CV_OK) t.st = cv_wrappad_bwd(ctx, &dy.dev.t, &dx.dev.t, p);
    if (t.st == CV_OK) t.st = cv_crop_fwd(ctx, &y.dev.t, &z.dev.t, p);
    if (t.st == CV_OK) t.st = cv_crop_bwd(ctx, &dx.dev.t, &dz.dev.t, p);
    double e1 = cvt_cmp(&t, &y, yr, "wrappad y"), e2 = cvt_cmp(&t, &dx, dxr, "wrappad dx");
    double e3 = cvt_cmp(&t, &z, zr, "crop y"), e4 = cvt_cmp(&t, &dz, dzr, "crop dx");
    double e5 = cvt_cmp(&t, &z, x.d, "crop of wrappad");
    cvt_guards(&t, &x); cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    cvt_shape(&x, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "wrappad fwd p=%d %s: nmse %.2e%s", p, s, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM, "wrappad bwd p=%d %s: nmse %.2e%s", p, s, e2, okstr(ok));
    CV_CHECK_OK(ok && e3 < TOL_ELEM, "crop fwd p=%d to %s: nmse %.2e%s", p, s, e3, okstr(ok));
    CV_CHECK_OK(ok && e4 < TOL_ELEM, "crop bwd p=%d from %s: nmse %.2e%s", p, s, e4, okstr(ok));
    CV_CHECK_OK(ok && e5 == 0, "crop p=%d of wrappad p=%d is the identity on %s: nmse %.2e%s", p, p, s, e5, okstr(ok));
    free(yr); free(dxr); free(zr); free(dzr); free(yf);
    cvt_free(&x); cvt_free(&y); cvt_free(&dy); cvt_free(&dx); cvt_free(&z); cvt_free(&dz);
}

/* concat a (N,Ca,H,W), b (N,Cb,H,W); slice channels c0..c0+Cy of the result */
static void dev_concat_slice(cv_check *c, cv_ctx *ctx, int64_t N, int64_t Ca, int64_t Cb, int64_t H, int64_t W,
                             int64_t c0, int64_t Cy) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf a, b, y, dy, da, db, z, dz, dyz;
    int64_t C = Ca + Cb, HW = H * W;
    cvt_new(&t, &a, N, Ca, H, W, 41, -2, 2);
    cvt_new(&t, &b, N, Cb, H, W, 42, -2, 2);
    cvt_new(&t, &y, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dy, N, C, H, W, 43, -1, 1);
    cvt_new(&t, &da, N, Ca, H, W, 44, -1, 1);
    cvt_new(&t, &db, N, Cb, H, W, 45, -1, 1);
    cvt_new(&t, &z, N, Cy, H, W, 0, 0, 0);
    cvt_new(&t, &dz, N, Cy, H, W, 46, -1, 1);
    cvt_new(&t, &dyz, N, C, H, W, 47, -1, 1);       /* slice backward target */
    double *yr = cvt_zeros(y.n), *dar = cvt_zeros(a.n), *dbr = cvt_zeros(b.n), *zr = cvt_zeros(z.n),
           *dyzr = cvt_zeros(y.n);
    if (t.st == CV_OK && (!yr || !dar || !dbr || !zr || !dyzr)) t.st = cv_error(CV_ERR_NOMEM, "concat check");
    if (t.st == CV_OK) {
        cv_concat_ref_fwd(a.d, b.d, yr, N, Ca, Cb, HW);
        memcpy(dar, da.d, a.n * sizeof *dar); memcpy(dbr, db.d, b.n * sizeof *dbr);
        cv_concat_ref_bwd(dy.d, dar, dbr, N, Ca, Cb, HW);
        cv_slice_ref_fwd(yr, zr, N, C, HW, c0, Cy);
        memcpy(dyzr, dyz.d, y.n * sizeof *dyzr);
        cv_slice_ref_bwd(dz.d, dyzr, N, C, HW, c0, Cy);
        t.st = cv_concat_fwd(ctx, &a.dev.t, &b.dev.t, &y.dev.t);
    }
    if (t.st == CV_OK) t.st = cv_concat_bwd(ctx, &dy.dev.t, &da.dev.t, &db.dev.t);
    if (t.st == CV_OK) t.st = cv_slice_fwd(ctx, &y.dev.t, c0, &z.dev.t);
    if (t.st == CV_OK) t.st = cv_slice_bwd(ctx, &dz.dev.t, c0, &dyz.dev.t);
    double e1 = cvt_cmp(&t, &y, yr, "concat y"), e2 = cvt_cmp(&t, &da, dar, "concat da");
    double e3 = cvt_cmp(&t, &db, dbr, "concat db"), e4 = cvt_cmp(&t, &z, zr, "slice y");
    double e5 = cvt_cmp(&t, &dyz, dyzr, "slice dx");
    cvt_guards(&t, &a); cvt_guards(&t, &b); cvt_guards(&t, &dy); cvt_guards(&t, &dz);
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "concat fwd N=%lld Ca=%lld Cb=%lld %lldx%lld: nmse %.2e%s", (long long)N,
                (long long)Ca, (long long)Cb, (long long)H, (long long)W, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM && e3 < TOL_ELEM, "concat bwd: nmse da %.2e db %.2e%s", e2, e3, okstr(ok));
    CV_CHECK_OK(ok && e4 < TOL_ELEM, "slice fwd C=%lld [%lld:%lld]: nmse %.2e%s", (long long)C, (long long)c0,
                (long long)(c0 + Cy), e4, okstr(ok));
    CV_CHECK_OK(ok && e5 < TOL_ELEM, "slice bwd: nmse %.2e%s", e5, okstr(ok));
    free(yr); free(dar); free(dbr); free(zr); free(dyzr);
    cvt_free(&a); cvt_free(&b); cvt_free(&y); cvt_free(&dy); cvt_free(&da); cvt_free(&db);
    cvt_free(&z); cvt_free(&dz); cvt_free(&dyz);
}

static void dev_affine(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf x, g, b, y, dy, dx, dg, db;
    char s[80];
    int64_t HW = H * W;
    cvt_new(&t, &x, N, C, H, W, 51, -2, 2);
    cvt_new(&t, &g, 1, C, 1, 1, 52, -2, 2);
    cvt_new(&t, &b, 1, C, 1, 1, 53, -2, 2);
    cvt_new(&t, &y, N, C, H, W, 0, 0, 0);
    cvt_new(&t, &dy, N, C, H, W, 54, -1, 1);
    cvt_new(&t, &dx, N, C, H, W, 55, -1, 1);
    cvt_new(&t, &dg, 1, C, 1, 1, 56, -1, 1);
    cvt_new(&t, &db, 1, C, 1, 1, 57, -1, 1);
    double *yr = cvt_zeros(x.n), *dxr = cvt_zeros(x.n), *dgr = cvt_zeros(g.n), *dbr = cvt_zeros(g.n);
    if (t.st == CV_OK && (!yr || !dxr || !dgr || !dbr)) t.st = cv_error(CV_ERR_NOMEM, "affine check");
    if (t.st == CV_OK) {
        cv_affine_ref_fwd(x.d, g.d, b.d, yr, N, C, HW);
        memcpy(dxr, dx.d, x.n * sizeof *dxr); memcpy(dgr, dg.d, g.n * sizeof *dgr); memcpy(dbr, db.d, g.n * sizeof *dbr);
        cv_affine_ref_bwd(x.d, g.d, dy.d, dxr, dgr, dbr, N, C, HW);
        t.st = cv_affine_fwd(ctx, &x.dev.t, &g.dev.t, &b.dev.t, &y.dev.t);
    }
    if (t.st == CV_OK) t.st = cv_affine_bwd(ctx, &x.dev.t, &g.dev.t, &dy.dev.t, &dx.dev.t, &dg.dev.t, &db.dev.t);
    double e1 = cvt_cmp(&t, &y, yr, "affine y"), e2 = cvt_cmp(&t, &dx, dxr, "affine dx");
    double e3 = cvt_cmp(&t, &dg, dgr, "affine dg"), e4 = cvt_cmp(&t, &db, dbr, "affine db");
    cvt_guards(&t, &x); cvt_guards(&t, &g); cvt_guards(&t, &b); cvt_guards(&t, &dy);
    int ok = cvt_ok(&t);
    cvt_shape(&x, s, sizeof s);
    CV_CHECK_OK(ok && e1 < TOL_ELEM, "affine fwd %s: nmse %.2e%s", s, e1, okstr(ok));
    CV_CHECK_OK(ok && e2 < TOL_ELEM && e3 < TOL_RED && e4 < TOL_RED, "affine bwd %s: nmse dx %.2e dg %.2e db %.2e%s",
                s, e2, e3, e4, okstr(ok));
    free(yr); free(dxr); free(dgr); free(dbr);
    cvt_free(&x); cvt_free(&g); cvt_free(&b); cvt_free(&y); cvt_free(&dy); cvt_free(&dx); cvt_free(&dg); cvt_free(&db);
}

/* Bad shapes are CV_ERR_SHAPE naming both shapes; NULL gradients are skipped
 * (the other gradient of the pair is still accumulated). */
static void dev_contracts(cv_check *c, cv_ctx *ctx) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf a, b, dy, db, p;
    cvt_new(&t, &a, 2, 3, 5, 5, 61, -1, 1);
    cvt_new(&t, &b, 2, 3, 5, 6, 62, -1, 1);
    cvt_new(&t, &dy, 2, 3, 5, 5, 63, -1, 1);
    cvt_new(&t, &db, 2, 3, 5, 5, 64, -1, 1);
    cvt_new(&t, &p, 2, 3, 2, 2, 0, 0, 0);
    if (!cvt_ok(&t)) { CV_CHECK_OK(0, "elem contracts: setup failed"); goto done; }
    cv_status st = cv_add_fwd(ctx, &a.dev.t, &b.dev.t, &a.dev.t);
    const char *msg = cv_last_error();
    CV_CHECK_OK(st == CV_ERR_SHAPE && strstr(msg, "2x3x5x5") && strstr(msg, "2x3x5x6"),
                "add with mismatched shapes: CV_ERR_SHAPE naming both (%s)", msg);
    st = cv_avgpool_fwd(ctx, &a.dev.t, &p.dev.t, 2);
    msg = cv_last_error();
    CV_CHECK_OK(st == CV_ERR_SHAPE && strstr(msg, "2x3x5x5"), "avgpool of odd H by 2: CV_ERR_SHAPE (%s)", msg);
    st = cv_concat_fwd(ctx, &a.dev.t, &b.dev.t, &dy.dev.t);
    msg = cv_last_error();
    CV_CHECK_OK(st == CV_ERR_SHAPE && strstr(msg, "2x3x5x5") && strstr(msg, "2x3x5x6"),
                "concat with mismatched H, W: CV_ERR_SHAPE naming both (%s)", msg);
    /* NULL da: only db += dy */
    cv_tensor none = { NULL, 0, { 0, 0, 0, 0 } };
    double *ref = cvt_zeros(db.n);
    st = ref ? cv_add_bwd(ctx, &dy.dev.t, &none, &db.dev.t) : CV_ERR_NOMEM;
    if (st == CV_OK) st = cv_add_bwd(ctx, &dy.dev.t, NULL, NULL);
    if (st == CV_OK) st = cv_gelu_bwd(ctx, &a.dev.t, &dy.dev.t, NULL);
    t.st = st;
    if (ref) for (size_t i = 0; i < db.n; i++) ref[i] = db.d[i] + dy.d[i];
    double e = cvt_cmp(&t, &db, ref, "add db (da NULL)");
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e < TOL_ELEM, "add bwd with da NULL accumulates db only; all-NULL backward is a no-op: nmse %.2e%s",
                e, okstr(ok));
    free(ref);
done:
    cvt_free(&a); cvt_free(&b); cvt_free(&dy); cvt_free(&db); cvt_free(&p);
}

/* cv_fill_fwd against a host fill, odd sizes and offsets, guards intact */
static void dev_fill(cv_check *c, cv_ctx *ctx, int64_t n, float v) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf y;
    cvt_new(&t, &y, 1, 1, 1, n, 91, -1, 1);
    double *ref = cvt_zeros(y.n);
    if (t.st == CV_OK && !ref) t.st = cv_error(CV_ERR_NOMEM, "fill check");
    if (t.st == CV_OK) {
        for (size_t i = 0; i < y.n; i++) ref[i] = v;
        t.st = cv_fill_fwd(ctx, &y.dev.t, v);
    }
    double e = cvt_cmp(&t, &y, ref, "fill y");
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e == 0, "fill %lld elements with %g: nmse %.2e%s", (long long)n, v, e, okstr(ok));
    free(ref);
    cvt_free(&y);
}

void cv_elem_devcheck(cv_check *c, cv_ctx *ctx) {
    dev_fill(c, ctx, 1, 0.0f);
    dev_fill(c, ctx, 1000003, -2.5f);
    dev_gelu(c, ctx, 1, 3, 5, 7);
    dev_gelu(c, ctx, 2, 17, 9, 11);
    dev_gelu(c, ctx, 3, 33, 13, 1);
    dev_add_scale(c, ctx, 1, 5, 7, 3, 0.37f, 0);
    dev_add_scale(c, ctx, 2, 33, 9, 9, -1.25f, 0);
    dev_add_scale(c, ctx, 2, 8, 4, 4, 0.5f, 3);
    dev_add_scale(c, ctx, 1, 3, 5, 5, 2.0f, 2);
    dev_pool(c, ctx, 1, 3, 6, 10, 2, 0);
    dev_pad(c, ctx, 2, 3, 4, 4, 1);      /* the 4x4 top of the small preset */
    dev_pad(c, ctx, 1, 5, 9, 13, 1);
    dev_pad(c, ctx, 3, 2, 1, 2, 3);      /* pad wider than the map */
    dev_pool(c, ctx, 2, 17, 14, 6, 2, 1);
    dev_pool(c, ctx, 1, 5, 12, 8, 4, 1);
    dev_pool(c, ctx, 3, 33, 9, 15, 3, 0);
    dev_concat_slice(c, ctx, 1, 3, 5, 5, 7, 2, 5);
    dev_concat_slice(c, ctx, 2, 17, 33, 3, 3, 16, 17);
    dev_affine(c, ctx, 1, 3, 5, 7);
    dev_affine(c, ctx, 2, 33, 9, 11);
    dev_affine(c, ctx, 4, 5, 17, 17);
    dev_contracts(c, ctx);
}
