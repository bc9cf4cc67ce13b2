/* cv_op_conv.h -- 2-D convolution (k = 1 or 3, stride 1, zero padding k/2)
 * and bias.  Implemented in src/ops/cv_op_conv.c, kernels in cl/conv2d.cl.
 *
 * Shapes: x (N, Ci, H, W), w (Co, Ci, k, k), b (Co), y (N, Co, H, W).
 * Options:
 *   gelu_in    the op sees GELU(x) instead of x (exact erf GELU), so the
 *              VDVAE's "GELU -> conv" needs no stored GELU output: forward
 *              applies it on load, backward-data multiplies by GELU'(x),
 *              backward-weight recomputes it.
 *   accumulate forward adds into y (y += conv) instead of overwriting; the
 *              residual add of a block is then free.
 * Backward accumulates into dx, dw, db (any may be NULL).
 * Algorithms (choose by measurement per device, cv_conv2d_algo): direct
 * tiled kernels, im2col + CLBlast SGEMM (1x1 needs no im2col), or the
 * pixel-vector kernels for CPU devices (VEC). */
#ifndef CV_OP_CONV_H
#define CV_OP_CONV_H

#include "runtime/cv_tensor.h"

typedef enum cv_conv_algo {
    CV_CONV_AUTO = 0,     /* from the device table / tuning wisdom */
    CV_CONV_DIRECT,       /* hand-written tiled kernels */
    CV_CONV_GEMM,         /* (im2col +) CLBlast SGEMM */
    CV_CONV_VEC,          /* pixel-vector kernels (CPU devices); shapes whose rows (3x3) or
                             planes (1x1) the vector width does not divide run DIRECT */
    CV_CONV_ALGO_COUNT
} cv_conv_algo;
/* "direct", "gemm", "vec" or "auto" (messages, check names). */
const char *cv_conv_algo_name(cv_conv_algo a);

typedef struct cv_conv2d_params {
    int          k;           /* 1 or 3 */
    int          gelu_in;     /* 0/1 */
    int          accumulate;  /* 0/1 */
    cv_conv_algo algo;        /* CV_CONV_AUTO by default */
} cv_conv2d_params;

/* Reference, double: y (=, or += when accumulate) = conv(act(x), w) + b. */
void cv_conv2d_ref_fwd(const double *x, const double *w, const double *b, double *y,
                       int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, const cv_conv2d_params *p);
/* dx, dw, db += ...; any may be NULL. */
void cv_conv2d_ref_bwd(const double *x, const double *w, const double *dy,
                       double *dx, double *dw, double *db,
                       int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, const cv_conv2d_params *p);

/* Device scratch bytes the op needs for these shapes, forward and backward
 * together (GEMM: CLBlast's temporary buffer + one column chunk; DIRECT:
 * backward-weight partial sums), for the algorithms cv_conv2d_algo picks;
 * a plan reserves the maximum with cv_ctx_scratch up front.  The ops take
 * the scratch with cv_ctx_scratch (which grows it if a caller did not). */
size_t cv_conv2d_workspace(cv_ctx *ctx, const int64_t xshape[4], int64_t Co, const cv_conv2d_params *p);

/* Enqueue the forward / backward conv (no host synchronisation).  b may be
 * NULL (no bias); b has Co values (any shape).  Scratch contents are
 * clobbered.  Errors: CV_ERR_ARG / CV_ERR_SHAPE naming the bad option or
 * shapes, CV_ERR_CL / CV_ERR_DEVMEM naming the kernel or CLBlast call. */
cv_status cv_conv2d_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *b,
                        const cv_tensor *y, const cv_conv2d_params *p);
cv_status cv_conv2d_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *dy,
                        const cv_tensor *dx, const cv_tensor *dw, const cv_tensor *db,
                        const cv_conv2d_params *p);

/* Extra tensors of one conv call; any may be NULL (or the struct itself):
 *   r   forward: a residual input (N, Co, H, W): y = conv + b + r, replacing
 *       a copy of r into y and an accumulating conv (r may be y itself,
 *       which is accumulate);
 *   dr  backward: the residual's gradient, dr += dy, in the same pass as
 *       db where the algorithm allows;
 *   xa  (N, Ci, H, W), gelu_in only: the forward stores GELU(x) there and
 *       the backward-weight pass reads it instead of evaluating GELU again
 *       (a training plan keeps it from the forward to the backward where
 *       the tuning says so: CPU devices, where GELU costs more than the
 *       convolution; the backward must see the forward's xa untouched);
 *   xd  (N, Ci, H, W), gelu_in with xa only: the forward takes GELU(x) into
 *       xa and GELU'(x) into xd in one flat pass (one erf for both) and
 *       convolves xa, so no convolution evaluates GELU; the backward-data
 *       pass multiplies by xd instead of evaluating GELU'(x) (tuning
 *       keep_gelu = 2: the convolutions' GELU' was their largest cost);
 *   cached  with xa and xd: they already hold GELU(x) and GELU'(x) (an
 *       earlier conv on the same x filled them): the forward reads them
 *       and never x;
 *   set_dx, set_dr  1: the backward writes dx (dr) = ... instead of +=,
 *       for a plan that knows this call is the gradient's first writer and
 *       so need not zero it first. */
typedef struct cv_conv2d_aux {
    const cv_tensor *r, *dr, *xa;
    int              set_dx, set_dr;
    const cv_tensor *xd;
    int              cached;
} cv_conv2d_aux;

cv_status cv_conv2d_fwd_ex(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *b,
                           const cv_tensor *y, const cv_conv2d_params *p, const cv_conv2d_aux *aux);
cv_status cv_conv2d_bwd_ex(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *dy,
                           const cv_tensor *dx, const cv_tensor *dw, const cv_tensor *db,
                           const cv_conv2d_params *p, const cv_conv2d_aux *aux);

/* Per-channel bias alone: y[n,c,:,:] += b[c]; backward db += sum dy. */
void      cv_bias_ref_fwd(const double *b, double *y, int64_t N, int64_t C, int64_t HW);
void      cv_bias_ref_bwd(const double *dy, double *db, int64_t N, int64_t C, int64_t HW);
cv_status cv_bias_fwd(cv_ctx *ctx, const cv_tensor *b, const cv_tensor *y);
cv_status cv_bias_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *db);

/* SGEMM through CLBlast on ctx's queue, row-major: C = alpha A B + beta C,
 * A (m x k) or its transpose, B (k x n) or its transpose; offsets in floats.
 * CLBlast may allocate its own temporary buffer here (the conv ops pass it
 * one from the scratch instead).  Errors name the call, shape and status. */
cv_status cv_sgemm(cv_ctx *ctx, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   cl_mem a, size_t a_off, int64_t lda, cl_mem b, size_t b_off, int64_t ldb, float beta,
                   cl_mem c, size_t c_off, int64_t ldc);

/* Which algorithm p->algo resolves to on this device for this shape:
 * an explicit p->algo wins; AUTO follows $CV_CONV_ALGO (direct | gemm |
 * vec | auto; any other value makes the ops fail with CV_ERR_ARG), then the
 * device's tuning rules (cv_ctx_tune: table or wisdom, src/runtime/cv_tune.h).
 * VEC resolves to DIRECT for shapes it does not cover.
 * bwd: 0 forward, 1 backward-data, 2 backward-weight. */
cv_conv_algo cv_conv2d_algo(cv_ctx *ctx, const int64_t xshape[4], int64_t Co, const cv_conv2d_params *p, int bwd);

/* For tests and benchmarks: cap the GEMM column buffer at `floats` per
 * chunk (the default, 0, is 16 Mi floats), which cuts large images into
 * chunks of whole images or of rows.  Process-wide, not thread-safe; the
 * workspace of a plan must be computed under the same cap. */
void cv_conv2d_set_col_budget(size_t floats);

#endif
