/* cv_op_reduce.c -- reductions: per-sample sum (a mean is a scaled sum),
 * sum of squares (the global gradient norm), per-channel sums (bias and
 * gain gradients).  Plain-C references in double, device launchers over
 * cl/reduce.cl; checks in src/check/cv_check_reduce.c.
 * Invariant: the device reductions are deterministic two-stage trees (no
 * atomics): the same input on the same device gives the same bits.  Their
 * partial sums live in cv_ctx_scratch (cv_reduce_scratch_bytes). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"

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

