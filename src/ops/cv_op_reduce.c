/* cv_op_reduce.c -- reductions: per-sample sum (a mean is a scaled sum),
 * sum of squares (the global gradient norm), per-channel sums (bias and
 * gain gradients).  Plain-C references in double, device launchers over
 * cl/reduce.cl, and the `reduce` family checks.
 * Invariant: the device reductions are deterministic two-stage trees (no
 * atomics): the same input on the same device gives the same bits.  Their
 * partial sums live in cv_ctx_scratch (cv_reduce_scratch_bytes). */
#include "cv_ops.h"
#include "ops/cv_op_priv.h"
#include "cv_op_elem_check.h"

#include <math.h>
#include <string.h>

#define RED_WG    256     /* = CV_RED_WG in cl/reduce.cl */
#define RED_CHUNK 4096    /* elements per stage-1 work-group before G grows */
#define RED_GMAX  1024    /* stage-1 work-groups per segment at most */


static int64_t red_groups(int64_t L) {
    int64_t G = (L + RED_CHUNK - 1) / RED_CHUNK;
    return G < 1 ? 1 : G > RED_GMAX ? RED_GMAX : G;
}

size_t cv_reduce_scratch_bytes(int64_t S, int64_t L) {
    return (size_t)(S * red_groups(L)) * sizeof(float);
}

static size_t red_wg(cv_ctx *ctx) {
    size_t w = RED_WG;
    while (w > 1 && w > cv_ctx_max_wg(ctx)) w >>= 1;
    return w;
}

/* out[s * ostride] (=, or += with acc) scale * sum over segment s of
 * x (or x*y, x^2 by mode); segments as described in cl/reduce.cl. */
static cv_status reduce(cv_ctx *ctx, const char *op, const cv_tensor *x, const cv_tensor *y, int mode, int64_t S,
                        int64_t L, int64_t inner, int64_t row_stride, int64_t seg_stride, const cv_tensor *out,
                        int64_t ostride, float scale, int acc) {
    if (S == 0) return CV_OK;
    if (L == 0) {
        if (acc) return CV_OK;
        if (ostride != 1) return cv_error(CV_ERR_ARG, "%s: empty strided reduction", op);
        cv_tensor o = *out;
        o.shape[0] = S; o.shape[1] = o.shape[2] = o.shape[3] = 1;
        return cv_tensor_fill(ctx, &o, 0.0f);
    }
    int64_t G = red_groups(L);
    cl_mem part;
    cv_status st = cv_ctx_scratch(ctx, cv_reduce_scratch_bytes(S, L), &part);
    if (st != CV_OK) return st;
    if (part == x->buf || (y && part == y->buf) || part == out->buf)
        return cv_error(CV_ERR_ARG, "%s: an input or output lives in the context scratch buffer, which the "
                        "reduction uses for its partial sums", op);
    size_t wg = red_wg(ctx);
    int run = cv_ctx_tune(ctx)->elem_chunk > 1;            /* CPU devices: contiguous runs */
    cv_kargs ka = cv_kargs_begin(ctx, run ? "cvk_reduce_part_run" : "cvk_reduce_part");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, y ? y->buf : x->buf); cv_karg_u64(&ka, y ? y->off : x->off);
    cv_karg_i32(&ka, mode);
    cv_karg_i64(&ka, L); cv_karg_i64(&ka, inner); cv_karg_i64(&ka, row_stride); cv_karg_i64(&ka, seg_stride);
    cv_karg_mem(&ka, part); cv_karg_u64(&ka, 0);
    size_t g1[2] = { (size_t)G * (run ? 1 : wg), (size_t)S }, l1[2] = { run ? 1 : wg, 1 };
    if ((st = cv_launch(&ka, 2, g1, l1)) != CV_OK) return st;
    ka = cv_kargs_begin(ctx, "cvk_reduce_final");
    cv_karg_mem(&ka, part); cv_karg_u64(&ka, 0);
    cv_karg_i32(&ka, (int32_t)G);
    cv_karg_mem(&ka, out->buf); cv_karg_u64(&ka, out->off);
    cv_karg_i64(&ka, ostride);
    cv_karg_f32(&ka, scale);
    cv_karg_i32(&ka, acc ? 1 : 0);
    size_t g2 = (size_t)S * wg;
    return cv_launch1(&ka, g2, wg);
}

/* ---- per-sample sum ---------------------------------------------------------- */

void cv_sum_ref_fwd(const double *x /* (N, M) */, double *y /* (N), = or += */, int64_t N, int64_t M, double s,
                    int accumulate) {
    for (int64_t n = 0; n < N; n++) {
        double a = 0;
        for (int64_t i = 0; i < M; i++) a += x[n * M + i];
        y[n] = (accumulate ? y[n] : 0.0) + s * a;
    }
}

void cv_sum_ref_bwd(const double *dy /* (N) */, double *dx /* (N, M), += */, int64_t N, int64_t M, double s) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < M; i++) dx[n * M + i] += s * dy[n];
}

static cv_status sum_check(const char *op, const cv_tensor *x, const char *ny, const cv_tensor *y) {
    char sa[80], sb[80];
    if (cv_tensor_numel(y) != x->shape[0])
        return cv_error(CV_ERR_SHAPE, "%s: x is %s but %s is %s (one value per sample expected)", op,
                        cv_shape_str(x->shape, sa, sizeof sa), ny, cv_shape_str(y->shape, sb, sizeof sb));
    return CV_OK;
}

cv_status cv_sum_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, float s, int accumulate) {
    cv_status st = sum_check("sum", x, "y", y);
    if (st != CV_OK) return st;
    int64_t N = x->shape[0], M = N ? cv_tensor_numel(x) / N : 0;
    return reduce(ctx, "sum", x, NULL, 0, N, M, M, 0, M, y, 1, s, accumulate);
}

cv_status cv_sum_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, float s) {
    return cv_sum_bwd_ex(ctx, dy, dx, s, 0);
}

cv_status cv_sum_bwd_ex(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, float s, int set) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = sum_check("sum backward", dx, "dy", dy);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(dx), M = dx->shape[0] ? n / dx->shape[0] : 0;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_sum_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_i64(&ka, M); cv_karg_f32(&ka, s); cv_karg_i32(&ka, set ? 1 : 0);
    size_t wg = red_wg(ctx), gs[2] = { (size_t)M, (size_t)(M ? n / M : 0) }, ls[2] = { wg, 1 };
    while (ls[0] > 1 && ls[0] / 2 >= (size_t)M) ls[0] /= 2;
    return cv_launch(&ka, 2, gs, ls);
}

/* ---- sum of squares ------------------------------------------------------------ */

double cv_sumsq_ref(const double *x /* (n) */, int64_t n) {
    double a = 0;
    for (int64_t i = 0; i < n; i++) a += x[i] * x[i];
    return a;
}

cv_status cv_sumsq_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int accumulate) {
    char sa[80];
    if (cv_tensor_numel(y) < 1)
        return cv_error(CV_ERR_SHAPE, "sumsq: y is %s, needs at least one element", cv_shape_str(y->shape, sa, sizeof sa));
    int64_t n = cv_tensor_numel(x);
    return reduce(ctx, "sumsq", x, NULL, 1, 1, n, n, 0, 0, y, 1, 1.0f, accumulate);
}

/* ---- per-channel sums ------------------------------------------------------------ */

void cv_chansum_ref(const double *x /* (N,C,HW) */, const double *w /* (N,C,HW) or NULL */, double *out /* (C) */,
                    int64_t N, int64_t C, int64_t HW, double s, int accumulate) {
    for (int64_t c = 0; c < C; c++) {
        double a = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t j = (n * C + c) * HW + i;
                a += w ? x[j] * w[j] : x[j];
            }
        out[c] = (accumulate ? out[c] : 0.0) + s * a;
    }
}

cv_status cv_chansum_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *out, float s,
                         int accumulate) {
    char sa[80], sb[80];
    if (cv_op_has(w) && !cv_shape_eq(x->shape, w->shape))
        return cv_error(CV_ERR_SHAPE, "chansum: x is %s but w is %s", cv_shape_str(x->shape, sa, sizeof sa),
                        cv_shape_str(w->shape, sb, sizeof sb));
    if (cv_tensor_numel(out) != x->shape[1])
        return cv_error(CV_ERR_SHAPE, "chansum: x is %s but out is %s (one value per channel expected)",
                        cv_shape_str(x->shape, sa, sizeof sa), cv_shape_str(out->shape, sb, sizeof sb));
    int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    return reduce(ctx, "chansum", x, cv_op_has(w) ? w : NULL, cv_op_has(w) ? 2 : 0, C, N * HW, HW, C * HW, HW, out, 1, s,
                  accumulate);
}

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
