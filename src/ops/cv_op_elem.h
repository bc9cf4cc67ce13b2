/* cv_op_elem.h -- elementwise, resampling, channel and VAE ops, reductions,
 * optimizers.  Implemented in src/ops/cv_op_elem.c, cv_op_vae.c,
 * cv_op_reduce.c, cv_optim.c with kernels in cl/elem.cl, cl/vae.cl,
 * cl/reduce.cl, cl/optim.cl.  Every *_bwd accumulates (+=); NULL (or
 * buf == NULL) gradients are skipped.  Shapes are NCHW. */
#ifndef CV_OP_ELEM_H
#define CV_OP_ELEM_H

#include "runtime/cv_tensor.h"

/* GELU, exact erf form: y = x/2 (1 + erf(x/sqrt2)). */
double    cv_gelu_ref(double x);
double    cv_gelu_ref_grad(double x);
void      cv_gelu_ref_fwd(const double *x, double *y, int64_t n);
void      cv_gelu_ref_bwd(const double *x, const double *dy, double *dx, int64_t n);
cv_status cv_gelu_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y);
cv_status cv_gelu_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *dy, const cv_tensor *dx);

/* y[i] = v for every element (cvk_fill of cl/util.cl: on PoCL it runs on
 * every core, where clEnqueueFillBuffer runs on one host thread).  The
 * checks compare it with a host fill. */
cv_status cv_fill_fwd(cv_ctx *ctx, const cv_tensor *y, float v);

/* y = a + b (same shapes); da += dy, db += dy. */
void      cv_add_ref_fwd(const double *a, const double *b, double *y, int64_t n);
void      cv_add_ref_bwd(const double *dy, double *da, double *db, int64_t n);
cv_status cv_add_fwd(cv_ctx *ctx, const cv_tensor *a, const cv_tensor *b, const cv_tensor *y);
cv_status cv_add_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *da, const cv_tensor *db);
/* The same, writing (=) instead of adding where set has a bit (1 da, 2 db):
 * a plan passes that for the gradients this call writes first, and zeroes
 * only the others.  The *_bwd_ex functions below follow that pattern. */
cv_status cv_add_bwd_ex(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *da, const cv_tensor *db, int set);

/* y = s x; dx += s dy. */
void      cv_scale_ref_fwd(const double *x, double *y, int64_t n, double s);
void      cv_scale_ref_bwd(const double *dy, double *dx, int64_t n, double s);
cv_status cv_scale_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, float s);
cv_status cv_scale_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, float s);

/* Average pooling by k (H, W divisible by k): x (N,C,H,W) -> y (N,C,H/k,W/k). */
void      cv_avgpool_ref_fwd(const double *x, double *y, int64_t N, int64_t C, int64_t H, int64_t W, int k);
void      cv_avgpool_ref_bwd(const double *dy, double *dx, int64_t N, int64_t C, int64_t H, int64_t W, int k);
cv_status cv_avgpool_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int k);
cv_status cv_avgpool_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int k);

/* Nearest upsampling by k: x (N,C,H,W) -> y (N,C,kH,kW); with accumulate, y += up(x). */
void      cv_upsample_ref_fwd(const double *x, double *y, int64_t N, int64_t C, int64_t H, int64_t W, int k, int accumulate);
void      cv_upsample_ref_bwd(const double *dy, double *dx, int64_t N, int64_t C, int64_t H, int64_t W, int k);
cv_status cv_upsample_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int k, int accumulate);
cv_status cv_upsample_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int k);

/* Periodic padding by p (1 <= p, any H, W >= 1): x (N,C,H,W) -> y (N,C,H+2p,W+2p),
 * y[h][w] = x[(h-p) mod H][(w-p) mod W]; dx += the sum over the copies. */
void      cv_wrappad_ref_fwd(const double *x, double *y, int64_t N, int64_t C, int64_t H, int64_t W, int p);
void      cv_wrappad_ref_bwd(const double *dy, double *dx, int64_t N, int64_t C, int64_t H, int64_t W, int p);
cv_status cv_wrappad_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int p);
cv_status cv_wrappad_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int p);

/* Crop by p (H, W > 2p): x (N,C,H,W) -> y (N,C,H-2p,W-2p), y[h][w] = x[h+p][w+p];
 * dx[h+p][w+p] += dy[h][w]. */
void      cv_crop_ref_fwd(const double *x, double *y, int64_t N, int64_t C, int64_t H, int64_t W, int p);
void      cv_crop_ref_bwd(const double *dy, double *dx, int64_t N, int64_t C, int64_t H, int64_t W, int p);
cv_status cv_crop_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int p);
cv_status cv_crop_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int p);

/* Channel concat: a (N,Ca,H,W), b (N,Cb,H,W) -> y (N,Ca+Cb,H,W). */
void      cv_concat_ref_fwd(const double *a, const double *b, double *y, int64_t N, int64_t Ca, int64_t Cb, int64_t HW);
void      cv_concat_ref_bwd(const double *dy, double *da, double *db, int64_t N, int64_t Ca, int64_t Cb, int64_t HW);
cv_status cv_concat_fwd(cv_ctx *ctx, const cv_tensor *a, const cv_tensor *b, const cv_tensor *y);
cv_status cv_concat_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *da, const cv_tensor *db);

/* Channel slice: y = x[:, c0 : c0+Cy] (x (N,C,H,W), y (N,Cy,H,W)); dx[:, c0:c0+Cy] += dy. */
void      cv_slice_ref_fwd(const double *x, double *y, int64_t N, int64_t C, int64_t HW, int64_t c0, int64_t Cy);
void      cv_slice_ref_bwd(const double *dy, double *dx, int64_t N, int64_t C, int64_t HW, int64_t c0, int64_t Cy);
cv_status cv_slice_fwd(cv_ctx *ctx, const cv_tensor *x, int64_t c0, const cv_tensor *y);
cv_status cv_slice_bwd(cv_ctx *ctx, const cv_tensor *dy, int64_t c0, const cv_tensor *dx);

/* Per-channel affine: y = g[c] x + b[c]; dx, dg, db +=. */
void      cv_affine_ref_fwd(const double *x, const double *g, const double *b, double *y, int64_t N, int64_t C, int64_t HW);
void      cv_affine_ref_bwd(const double *x, const double *g, const double *dy, double *dx, double *dg, double *db,
                            int64_t N, int64_t C, int64_t HW);
cv_status cv_affine_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *g, const cv_tensor *b, const cv_tensor *y);
cv_status cv_affine_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *g, const cv_tensor *dy,
                        const cv_tensor *dx, const cv_tensor *dg, const cv_tensor *db);

/* Reparameterised sample z = mu + t exp(logs) eps, eps = cv_rng_normal(seed,
 * stream, index0 + i) for element i of z (t: temperature, 1 in training).
 * index0 numbers the elements as part of a larger tensor: a data-parallel
 * rank whose batch starts at global row r0 passes r0 x (elements per row),
 * so a row draws the same noise whichever rank computes it (0 otherwise).
 * Backward regenerates eps: dmu += dz, dlogs += dz t exp(logs) eps. */
void      cv_reparam_ref_fwd(const double *mu, const double *logs, double *z, int64_t n, uint64_t seed, uint64_t stream,
                             uint64_t index0, double t);
void      cv_reparam_ref_bwd(const double *logs, const double *dz, double *dmu, double *dlogs, int64_t n,
                             uint64_t seed, uint64_t stream, uint64_t index0, double t);
cv_status cv_reparam_fwd(cv_ctx *ctx, const cv_tensor *mu, const cv_tensor *logs, const cv_tensor *z,
                         uint64_t seed, uint64_t stream, uint64_t index0, float t);
cv_status cv_reparam_bwd(cv_ctx *ctx, const cv_tensor *logs, const cv_tensor *dz, const cv_tensor *dmu,
                         const cv_tensor *dlogs, uint64_t seed, uint64_t stream, uint64_t index0, float t);
/* The same with a noise cache se (shape of z; NULL: none): the forward
 * also stores se = t exp(logs) eps, and the backward reads it instead of
 * drawing eps again (bit-identical results: the same product).  A plan
 * keeps se from the forward to the backward of a training step. */
cv_status cv_reparam_fwd_ex(cv_ctx *ctx, const cv_tensor *mu, const cv_tensor *logs, const cv_tensor *z,
                            uint64_t seed, uint64_t stream, uint64_t index0, float t, const cv_tensor *se);
cv_status cv_reparam_bwd_ex(cv_ctx *ctx, const cv_tensor *logs, const cv_tensor *dz, const cv_tensor *dmu,
                            const cv_tensor *dlogs, uint64_t seed, uint64_t stream, uint64_t index0, float t,
                            const cv_tensor *se);

/* Diagonal-Gaussian KL(q||p), log-std form, elementwise:
 * kl = lsp - lsq + (exp(2 lsq) + (mq - mp)^2) / (2 exp(2 lsp)) - 1/2. */
void      cv_gausskl_ref_fwd(const double *mq, const double *lsq, const double *mp, const double *lsp, double *kl, int64_t n);
void      cv_gausskl_ref_bwd(const double *mq, const double *lsq, const double *mp, const double *lsp, const double *dkl,
                             double *dmq, double *dlsq, double *dmp, double *dlsp, int64_t n);
cv_status cv_gausskl_fwd(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                         const cv_tensor *lsp, const cv_tensor *kl);
cv_status cv_gausskl_bwd(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                         const cv_tensor *lsp, const cv_tensor *dkl, const cv_tensor *dmq, const cv_tensor *dlsq,
                         const cv_tensor *dmp, const cv_tensor *dlsp);
/* set bits 1, 2, 4, 8: dmq, dlsq, dmp, dlsp written (=), not added */
cv_status cv_gausskl_bwd_ex(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                            const cv_tensor *lsp, const cv_tensor *dkl, const cv_tensor *dmq, const cv_tensor *dlsq,
                            const cv_tensor *dmp, const cv_tensor *dlsp, int set);

/* The backward of the KL summed per sample, y[n] = s sum_i kl[n, i]
 * (cv_sum_fwd of cv_gausskl_fwd), from dy (N): the gradients of the KL's
 * inputs with dkl = s dy[n] broadcast, written where set has a bit as in
 * cv_gausskl_bwd_ex, and neither dkl nor a sum backward needed.  A plan
 * fuses a KL whose only consumer is a sum so. */
cv_status cv_gausskl_sum_bwd(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                             const cv_tensor *lsp, const cv_tensor *dy, float s, const cv_tensor *dmq,
                             const cv_tensor *dlsq, const cv_tensor *dmp, const cv_tensor *dlsp, int set);

/* Gaussian negative log-likelihood with a floored log-std, elementwise:
 * s = max(logs, floor); nll = s + log(2 pi)/2 + (x - mu)^2 / (2 exp(2 s)).
 * Backward: dmu, dlogs += (dlogs zero where logs < floor); x is data. */
void      cv_gaussnll_ref_fwd(const double *x, const double *mu, const double *logs, double *nll, int64_t n, double floor);
void      cv_gaussnll_ref_bwd(const double *x, const double *mu, const double *logs, const double *dnll,
                              double *dmu, double *dlogs, int64_t n, double floor);
cv_status cv_gaussnll_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *mu, const cv_tensor *logs,
                          const cv_tensor *nll, float floor);
cv_status cv_gaussnll_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *mu, const cv_tensor *logs,
                          const cv_tensor *dnll, const cv_tensor *dmu, const cv_tensor *dlogs, float floor);

/* Per-sample sum: x (N,C,H,W) -> y (N,1,1,1), y[n] = s sum x[n]; with
 * accumulate, y += .  Backward dx[n,...] += s dy[n].  A mean is s = 1/CHW. */
void      cv_sum_ref_fwd(const double *x, double *y, int64_t N, int64_t M, double s, int accumulate);
void      cv_sum_ref_bwd(const double *dy, double *dx, int64_t N, int64_t M, double s);
cv_status cv_sum_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, float s, int accumulate);
cv_status cv_sum_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, float s);
cv_status cv_sum_bwd_ex(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, float s, int set);

/* Sum of squares of a flat array (e.g. a gradient arena chunk) into y[0]
 * (= or += with accumulate); deterministic two-stage reduction. */
double    cv_sumsq_ref(const double *x, int64_t n);
cv_status cv_sumsq_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int accumulate);

/* Per-channel sum over (N, H, W): out[c] (=, or += with accumulate)
 * s * sum x[n,c,h,w] (* w[n,c,h,w] when w is given, same shape as x);
 * out has C elements.  The backward of a per-channel bias (db += sum dy)
 * and gain (dg += sum x dy). */
void      cv_chansum_ref(const double *x, const double *w, double *out, int64_t N, int64_t C, int64_t HW,
                         double s, int accumulate);
cv_status cv_chansum_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *out,
                         float s, int accumulate);

/* Workspace of the reductions above (cv_sum_fwd, cv_sumsq_fwd,
 * cv_chansum_fwd, and so cv_affine_bwd): they take their partial sums
 * from cv_ctx_scratch, cv_reduce_scratch_bytes(S, L) bytes for S results
 * of L elements each (sum: S = N, L = C*H*W; sumsq: S = 1, L = n;
 * chansum: S = C, L = N*H*W); at most 4 KiB per result.  A plan reserves
 * the maximum with cv_ctx_scratch up front so that no op grows it; inputs
 * and outputs must not live in the scratch buffer. */
size_t    cv_reduce_scratch_bytes(int64_t S, int64_t L);

/* ---- random fills (the device side of cv_rng.h) ------------------------
 * y[i] = t * cv_rng_normal(seed, stream, index0 + i), bit-identical with
 * the host for t = 1 (e.g. noise for sampling from the prior); and
 * y[i] = cv_rng_uniform(seed, stream, index0 + i) in (0, 1). */
cv_status cv_randn_fwd(cv_ctx *ctx, const cv_tensor *y, uint64_t seed, uint64_t stream, uint64_t index0, float t);
cv_status cv_rand_fwd(cv_ctx *ctx, const cv_tensor *y, uint64_t seed, uint64_t stream, uint64_t index0);

/* ---- optimizers: flat kernels over a whole parameter arena chunk -------
 * `stat` is a device scalar block: stat[0] = squared global gradient norm
 * (from cv_sumsq_fwd), and the step reads it to clip and to skip without a
 * host round trip: gnorm = sqrt(stat[0]); scale = min(1, clip / gnorm)
 * (clip <= 0: no clipping); if stat[0] is not finite or stat[0] >
 * cv_optim_skip2(skip), the float square of the threshold (skip <= 0:
 * never), the update is skipped (parameters and state unchanged).
 * cv_optim_decide_ref makes the same decision from the same float, bit
 * for bit (no device square root takes part in it).
 * PyTorch semantics (torch.optim.RMSprop, centered=False):
 *   g = scale*grad + wd p; v = alpha v + (1-alpha) g^2;
 *   buf = momentum buf + g / (sqrt(v) + eps); p -= lr buf   (momentum > 0)
 *   p -= lr g / (sqrt(v) + eps)                             (momentum = 0)
 * torch.optim.Adam (L2 weight decay, bias-corrected, step t >= 1):
 *   g = scale*grad + wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * When the stat view holds two or more floats, the step also writes
 * stat[1] = 1 if it skipped, else 0: the one decision, which cv_ema_step
 * follows and the caller reads back with the loss to count skips (a
 * caller that counts t for Adam should not advance it then).
 * The references take the clipping scale directly and never skip;
 * cv_optim_decide_ref gives them the scale and the skip. */
typedef struct cv_rmsprop_opts { float lr, alpha, eps, weight_decay, momentum; } cv_rmsprop_opts;
typedef struct cv_adam_opts    { float lr, beta1, beta2, eps, weight_decay; } cv_adam_opts;
cv_rmsprop_opts cv_rmsprop_opts_default(void);   /* lr 2e-5, alpha 0.99, eps 1e-8, wd 1e-4, momentum 0.9 */
cv_adam_opts    cv_adam_opts_default(void);      /* lr 1e-3, 0.9, 0.999, 1e-8, 0 */

/* The squared threshold the kernels compare the squared norm with: skip^2
 * rounded to a float, at least the smallest positive float (skip > 0), 0
 * for skip <= 0. */
float cv_optim_skip2(float skip);
/* The device's decision from the squared norm it reads: 1 to skip; else 0
 * and *scale = the clipping scale min(1, clip / sqrt(norm2)) (in double,
 * 1 for clip <= 0). */
int   cv_optim_decide_ref(float norm2, float clip, float skip, double *scale);
void cv_rmsprop_ref(double *p, const double *g, double *v, double *buf, int64_t n, const cv_rmsprop_opts *o,
                    double scale);
void cv_adam_ref(double *p, const double *g, double *m, double *v, int64_t n, const cv_adam_opts *o, int64_t t,
                 double scale);
/* p, g, v, buf: views of equal element count (buf may be NULL when
 * momentum = 0); stat: >= 1 float, not written except stat[1] as above.
 * CV_ERR_SHAPE on unequal counts, CV_ERR_ARG for Adam's t < 1. */
cv_status cv_rmsprop_step(cv_ctx *ctx, const cv_tensor *p, const cv_tensor *g, const cv_tensor *v,
                          const cv_tensor *buf, const cv_rmsprop_opts *o, const cv_tensor *stat,
                          float clip, float skip);
cv_status cv_adam_step(cv_ctx *ctx, const cv_tensor *p, const cv_tensor *g, const cv_tensor *m,
                       const cv_tensor *v, const cv_adam_opts *o, int64_t t, const cv_tensor *stat,
                       float clip, float skip);

#endif
