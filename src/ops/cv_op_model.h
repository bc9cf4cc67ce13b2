/* cv_op_model.h -- small ops the model needs beyond the op families:
 * broadcast of a learned (1,C,H,W) tensor over the batch, and the
 * exponential moving average of the weights. */
#ifndef CV_OP_MODEL_H
#define CV_OP_MODEL_H

#include "runtime/cv_tensor.h"

/* y[n, m] = t[m] for m < M = C*H*W; backward dt[m] += sum_n dy[n, m]. */
void      cv_bcast_ref_fwd(const double *t, double *y, int64_t N, int64_t M);
void      cv_bcast_ref_bwd(const double *dy, double *dt, int64_t N, int64_t M);
cv_status cv_bcast_fwd(cv_ctx *ctx, const cv_tensor *t, const cv_tensor *y);
cv_status cv_bcast_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dt);

/* ema = d ema + (1 - d) p over a flat array, skipped when the optimizer
 * skipped the step: `skipped` is the device flag it wrote (stat[1] of
 * cv_rmsprop_step / cv_adam_step; nonzero: skipped). */
void      cv_ema_ref(double *ema, const double *p, int64_t n, double d);
cv_status cv_ema_step(cv_ctx *ctx, const cv_tensor *ema, const cv_tensor *p, float d,
                      const cv_tensor *skipped);

#endif
