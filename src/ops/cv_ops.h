/* cv_ops.h -- every op's plain-C reference and device launcher.
 *
 * Conventions (all families):
 *   - cv_<op>_ref_fwd / cv_<op>_ref_bwd: naive loops over double arrays,
 *     written to be obviously correct; shapes passed explicitly.
 *   - cv_<op>_fwd / cv_<op>_bwd: enqueue OpenCL kernels on cv_tensor views
 *     (float32); no host synchronisation, no allocation.
 *   - Every backward ACCUMULATES (+=) into dx / dw / db; a NULL gradient
 *     pointer (or a view with buf == NULL) means "not needed".
 *   - Forward writes (=) its output unless it has an accumulate option.
 * Each family lives in src/ops/cv_op_<family>.c with kernels in
 * cl/<family>.cl, and registers its checks in src/check/cv_check_families.h. */
#ifndef CV_OPS_H
#define CV_OPS_H

#include "runtime/cv_tensor.h"
#include "ops/cv_op_conv.h"
#include "ops/cv_op_elem.h"

/* ---- util: copy (y = x; dx += dy) ---------------------------------------- */
void      cv_copy_ref_fwd(const double *x, double *y, int64_t n);
void      cv_copy_ref_bwd(const double *dy, double *dx, int64_t n);
cv_status cv_copy_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y);
cv_status cv_copy_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx);

#endif
