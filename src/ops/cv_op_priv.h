/* cv_op_priv.h -- small helpers shared by the op families' launchers
 * (private to src/ops and the optimizers; not part of the library API). */
#ifndef CV_OP_PRIV_H
#define CV_OP_PRIV_H

#include "runtime/cv_tune.h"
#include "ops/cv_ops.h"

/* A gradient (or optional tensor) is present. */
static inline int cv_op_has(const cv_tensor *t) { return t && t->buf; }

/* Work-group size of the flat kernels: the device's tuning (0 lets the
 * driver choose), never above what the device allows. */
static inline size_t cv_op_flat_wg(cv_ctx *ctx) {
    size_t w = (size_t)cv_ctx_tune(ctx)->elem_wg;
    while (w > 1 && w > cv_ctx_max_wg(ctx)) w >>= 1;
    return w;
}

/* Work-items along dimension 0 of a flat kernel over n elements: each
 * runs CV_ELEMS over the tuning's elem_chunk consecutive elements
 * (cl/cv_common.clh). */
static inline size_t cv_op_flat_items(cv_ctx *ctx, int64_t n) {
    const int64_t c = cv_ctx_tune(ctx)->elem_chunk;
    return (size_t)((n + c - 1) / c);
}

/* Work-group size for cv_op_flat_items work-items: the flat one for one
 * element per work-item; 1 for runs of elements, so that even a few runs
 * spread over every compute unit (PoCL serialises a work-group). */
static inline size_t cv_op_flat_local(cv_ctx *ctx, size_t items) {
    size_t w = cv_ctx_tune(ctx)->elem_chunk > 1 ? 1 : cv_op_flat_wg(ctx);
    if (w > items) { while (w > 1 && w / 2 >= items) w /= 2; }
    return w;
}

/* A flat launch over n elements. */
static inline cv_status cv_op_flat_launch(cv_ctx *ctx, cv_kargs *ka, int64_t n) {
    size_t items = cv_op_flat_items(ctx, n);
    return cv_launch1(ka, items, cv_op_flat_local(ctx, items));
}

/* A 2-D launch over (elements of a plane, plane): runs of the plane's HW
 * elements along dimension 0. */
static inline cv_status cv_op_plane_launch(cv_ctx *ctx, cv_kargs *ka, int64_t HW, int64_t planes) {
    size_t items = cv_op_flat_items(ctx, HW), wg = cv_op_flat_local(ctx, items);
    size_t gs[2] = { items, (size_t)planes }, ls[2] = { wg, 1 };
    return cv_launch(ka, 2, gs, wg ? ls : NULL);
}

/* CV_ERR_SHAPE naming the op and both operands unless a and b have one shape. */
static inline cv_status cv_op_same_shape(const char *op, const char *na, const cv_tensor *a, const char *nb,
                                         const cv_tensor *b) {
    char sa[80], sb[80];
    if (cv_shape_eq(a->shape, b->shape)) return CV_OK;
    return cv_error(CV_ERR_SHAPE, "%s: %s is %s but %s is %s", op, na, cv_shape_str(a->shape, sa, sizeof sa),
                    nb, cv_shape_str(b->shape, sb, sizeof sb));
}

#endif
