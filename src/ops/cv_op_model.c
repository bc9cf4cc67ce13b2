/* cv_op_model.c -- broadcast (learned starting tensors) and weight EMA:
 * references and launchers (checks: src/check/cv_check_bcast.c).
 * Invariant: backward accumulates into dt. */
#include "ops/cv_op_model.h"
#include "ops/cv_op_priv.h"

#include <math.h>
#include <string.h>

void cv_bcast_ref_fwd(const double *t /* (M) */, double *y /* (N, M) */, int64_t N, int64_t M) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) y[n * M + m] = t[m];
}

void cv_bcast_ref_bwd(const double *dy /* (N, M) */, double *dt /* (M), += */, int64_t N, int64_t M) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) dt[m] += dy[n * M + m];
}

void cv_ema_ref(double *ema, const double *p, int64_t n, double d) {
    for (int64_t i = 0; i < n; i++) ema[i] = d * ema[i] + (1 - d) * p[i];
}

cv_status cv_bcast_fwd(cv_ctx *ctx, const cv_tensor *t, const cv_tensor *y) {
    int64_t M = cv_tensor_numel(t), N = y->shape[0];
    if (N * M != cv_tensor_numel(y) || t->shape[0] != 1) {
        char a[64], b[64];
        return cv_error(CV_ERR_SHAPE, "bcast: %s into %s", cv_shape_str(t->shape, a, sizeof a), cv_shape_str(y->shape, b, sizeof b));
    }
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_bcast_fwd");
    cv_karg_mem(&ka, t->buf); cv_karg_u64(&ka, t->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i64(&ka, N); cv_karg_i64(&ka, M);
    return cv_op_flat_launch(ctx, &ka, N * M);
}

cv_status cv_bcast_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dt) {
    if (!dt || !dt->buf) return CV_OK;
    int64_t M = cv_tensor_numel(dt), N = dy->shape[0];
    if (N * M != cv_tensor_numel(dy)) return cv_error(CV_ERR_SHAPE, "bcast backward: sizes");
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_bcast_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dt->buf); cv_karg_u64(&ka, dt->off);
    cv_karg_i64(&ka, N); cv_karg_i64(&ka, M);
    return cv_op_flat_launch(ctx, &ka, M);
}

cv_status cv_ema_step(cv_ctx *ctx, const cv_tensor *ema, const cv_tensor *p, float d, const cv_tensor *skipped) {
    int64_t n = cv_tensor_numel(p);
    if (n != cv_tensor_numel(ema)) return cv_error(CV_ERR_SHAPE, "ema: sizes differ");
    if (!skipped || !skipped->buf || cv_tensor_numel(skipped) < 1) return cv_error(CV_ERR_SHAPE, "ema: no skip flag");
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_ema");
    cv_karg_mem(&ka, ema->buf); cv_karg_u64(&ka, ema->off);
    cv_karg_mem(&ka, p->buf); cv_karg_u64(&ka, p->off);
    cv_karg_i64(&ka, n); cv_karg_f32(&ka, d);
    cv_karg_mem(&ka, skipped->buf); cv_karg_u64(&ka, skipped->off);
    return cv_op_flat_launch(ctx, &ka, n);
}

