/* cv_op_priv.h -- small helpers shared by the op families' launchers
 * (private to src/ops and the optimizers; not part of the library API). */
#ifndef CV_OP_PRIV_H
#define CV_OP_PRIV_H

#include "cv_tune.h"
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

/* CV_ERR_SHAPE naming the op and both operands unless a and b have one shape. */
static inline cv_status cv_op_same_shape(const char *op, const char *na, const cv_tensor *a, const char *nb,
                                         const cv_tensor *b) {
    char sa[80], sb[80];
    if (cv_shape_eq(a->shape, b->shape)) return CV_OK;
    return cv_error(CV_ERR_SHAPE, "%s: %s is %s but %s is %s", op, na, cv_shape_str(a->shape, sa, sizeof sa),
                    nb, cv_shape_str(b->shape, sb, sizeof sb));
}

#endif
