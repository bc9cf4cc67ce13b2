/* cv_op_util.c -- copy, the smallest op: the template every family follows
 * (shape check, reference fwd/bwd, launchers; gradcheck and devcheck
 * in src/check/cv_check_util.c).
 * Invariant: backward accumulates into dx. */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"

#include <math.h>
#include <string.h>

/* ---- reference ---------------------------------------------------------- */

void cv_copy_ref_fwd(const double *x /* (n) */, double *y /* (n) */, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i];
}

void cv_copy_ref_bwd(const double *dy /* (n) */, double *dx /* (n), += */, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
}

/* ---- device ------------------------------------------------------------- */

cv_status cv_copy_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y) {
    int64_t n = cv_tensor_numel(x);
    if (n != cv_tensor_numel(y)) return cv_error(CV_ERR_SHAPE, "copy: %lld elements into %lld", (long long)n, (long long)cv_tensor_numel(y));
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_copy");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_copy_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx) {
    if (!dx || !dx->buf) return CV_OK;
    int64_t n = cv_tensor_numel(dy);
    if (n != cv_tensor_numel(dx)) return cv_error(CV_ERR_SHAPE, "copy backward: %lld elements into %lld", (long long)n, (long long)cv_tensor_numel(dx));
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_copy_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

