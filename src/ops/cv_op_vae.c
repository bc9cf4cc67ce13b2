/* cv_op_vae.c -- the VAE-specific ops: reparameterised sampling with
 * counter-based noise, diagonal-Gaussian KL in log-std form, Gaussian NLL
 * with a floored log-std, and random fills.  Plain-C references in double,
 * device launchers over cl/vae.cl; checks in src/check/cv_check_vae.c.
 * Invariant: the noise of element i is cv_rng_normal(seed, stream,
 * index0 + i) on both paths, bit for bit, so the backward regenerates exactly the eps of
 * the forward and the reference sees the device's eps; every backward
 * accumulates (+=), NULL gradients are skipped. */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "runtime/cv_rng.h"

#include <math.h>
#include <string.h>

#define HALF_LOG_2PI 0.91893853320467274178

/* ---- random fills ------------------------------------------------------------- */

cv_status cv_randn_fwd(cv_ctx *ctx, const cv_tensor *y, uint64_t seed, uint64_t stream, uint64_t index0, float t) {
    int64_t n = cv_tensor_numel(y);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_randn");
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_u64(&ka, seed); cv_karg_u64(&ka, stream); cv_karg_u64(&ka, index0);
    cv_karg_f32(&ka, t);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_rand_fwd(cv_ctx *ctx, const cv_tensor *y, uint64_t seed, uint64_t stream, uint64_t index0) {
    int64_t n = cv_tensor_numel(y);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_rand");
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_u64(&ka, seed); cv_karg_u64(&ka, stream); cv_karg_u64(&ka, index0);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

/* ---- reparameterised sample ------------------------------------------------------ */

void cv_reparam_ref_fwd(const double *mu /* (n) */, const double *logs /* (n) */, double *z /* (n) */, int64_t n,
                        uint64_t seed, uint64_t stream, uint64_t index0, double t) {
    for (int64_t i = 0; i < n; i++)
        z[i] = mu[i] + t * exp(logs[i]) * (double)cv_rng_normal(seed, stream, index0 + (uint64_t)i);
}

void cv_reparam_ref_bwd(const double *logs /* (n) */, const double *dz /* (n) */, double *dmu /* (n), +=, or NULL */,
                        double *dlogs /* (n), +=, or NULL */, int64_t n, uint64_t seed, uint64_t stream, uint64_t index0,
                        double t) {
    for (int64_t i = 0; i < n; i++) {
        if (dmu) dmu[i] += dz[i];
        if (dlogs) dlogs[i] += dz[i] * t * exp(logs[i]) * (double)cv_rng_normal(seed, stream, index0 + (uint64_t)i);
    }
}

cv_status cv_reparam_fwd_ex(cv_ctx *ctx, const cv_tensor *mu, const cv_tensor *logs, const cv_tensor *z,
                            uint64_t seed, uint64_t stream, uint64_t index0, float t, const cv_tensor *se) {
    cv_status st = cv_op_same_shape("reparam", "mu", mu, "logs", logs);
    if (st == CV_OK) st = cv_op_same_shape("reparam", "mu", mu, "z", z);
    if (st == CV_OK && cv_op_has(se)) st = cv_op_same_shape("reparam", "z", z, "noise cache", se);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(mu);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_reparam_fwd");
    cv_karg_mem(&ka, mu->buf); cv_karg_u64(&ka, mu->off);
    cv_karg_mem(&ka, logs->buf); cv_karg_u64(&ka, logs->off);
    cv_karg_mem(&ka, z->buf); cv_karg_u64(&ka, z->off);
    cv_karg_u64(&ka, seed); cv_karg_u64(&ka, stream); cv_karg_u64(&ka, index0);
    cv_karg_f32(&ka, t);
    cv_karg_mem(&ka, cv_op_has(se) ? se->buf : z->buf); cv_karg_u64(&ka, cv_op_has(se) ? se->off : 0);
    cv_karg_i32(&ka, cv_op_has(se));
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_reparam_fwd(cv_ctx *ctx, const cv_tensor *mu, const cv_tensor *logs, const cv_tensor *z, uint64_t seed,
                         uint64_t stream, uint64_t index0, float t) {
    return cv_reparam_fwd_ex(ctx, mu, logs, z, seed, stream, index0, t, NULL);
}

cv_status cv_reparam_bwd_ex(cv_ctx *ctx, const cv_tensor *logs, const cv_tensor *dz, const cv_tensor *dmu,
                            const cv_tensor *dlogs, uint64_t seed, uint64_t stream, uint64_t index0, float t,
                            const cv_tensor *se) {
    int mask = (cv_op_has(dmu) ? 1 : 0) | (cv_op_has(dlogs) ? 2 : 0);
    if (!mask) return CV_OK;
    cv_status st = cv_op_same_shape("reparam backward", "logs", logs, "dz", dz);
    if (st == CV_OK && (mask & 1)) st = cv_op_same_shape("reparam backward", "dz", dz, "dmu", dmu);
    if (st == CV_OK && (mask & 2)) st = cv_op_same_shape("reparam backward", "dz", dz, "dlogs", dlogs);
    if (st == CV_OK && cv_op_has(se)) st = cv_op_same_shape("reparam backward", "dz", dz, "noise cache", se);
    if (st != CV_OK) return st;
    if (cv_op_has(se)) mask |= 4;
    int64_t n = cv_tensor_numel(dz);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_reparam_bwd");
    cv_karg_mem(&ka, logs->buf); cv_karg_u64(&ka, logs->off);
    cv_karg_mem(&ka, dz->buf); cv_karg_u64(&ka, dz->off);
    cv_karg_mem(&ka, (mask & 1) ? dmu->buf : NULL); cv_karg_u64(&ka, (mask & 1) ? dmu->off : 0);
    cv_karg_mem(&ka, (mask & 2) ? dlogs->buf : NULL); cv_karg_u64(&ka, (mask & 2) ? dlogs->off : 0);
    cv_karg_i32(&ka, mask);
    cv_karg_u64(&ka, seed); cv_karg_u64(&ka, stream); cv_karg_u64(&ka, index0);
    cv_karg_f32(&ka, t);
    cv_karg_mem(&ka, cv_op_has(se) ? se->buf : dz->buf); cv_karg_u64(&ka, cv_op_has(se) ? se->off : 0);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_reparam_bwd(cv_ctx *ctx, const cv_tensor *logs, const cv_tensor *dz, const cv_tensor *dmu,
                         const cv_tensor *dlogs, uint64_t seed, uint64_t stream, uint64_t index0, float t) {
    return cv_reparam_bwd_ex(ctx, logs, dz, dmu, dlogs, seed, stream, index0, t, NULL);
}

/* ---- Gaussian KL ------------------------------------------------------------------ */

void cv_gausskl_ref_fwd(const double *mq, const double *lsq, const double *mp, const double *lsp,
                        double *kl /* all (n) */, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double d = mq[i] - mp[i];
        kl[i] = lsp[i] - lsq[i] + (exp(2 * lsq[i]) + d * d) / (2 * exp(2 * lsp[i])) - 0.5;
    }
}

void cv_gausskl_ref_bwd(const double *mq, const double *lsq, const double *mp, const double *lsp, const double *dkl,
                        double *dmq, double *dlsq, double *dmp, double *dlsp /* all (n), +=, or NULL */, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double d = mq[i] - mp[i], vp = exp(2 * lsp[i]), vq = exp(2 * lsq[i]), g = dkl[i];
        if (dmq) dmq[i] += g * d / vp;
        if (dmp) dmp[i] -= g * d / vp;
        if (dlsq) dlsq[i] += g * (vq / vp - 1);
        if (dlsp) dlsp[i] += g * (1 - (vq + d * d) / vp);
    }
}

/* What the two KL backwards share: the gradients wanted (*mask bits 1, 2,
 * 4, 8 for dmq, dlsq, dmp, dlsp; 0: nothing to do) with their first-writer
 * bits (set << 4), and the shape checks of the inputs and gradients. */
static cv_status kl_grads_check(const char *op, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                                const cv_tensor *lsp, const cv_tensor *const gr[4], int set, int *mask) {
    static const char *const gn[4] = { "dmq", "dlsq", "dmp", "dlsp" };
    *mask = 0;
    for (int k = 0; k < 4; k++) if (cv_op_has(gr[k])) *mask |= 1 << k;
    if (!*mask) return CV_OK;
    if (set & ~15) return cv_error(CV_ERR_ARG, "%s: set mask %d (bits 1, 2, 4, 8)", op, set);
    *mask |= (set & *mask) << 4;
    cv_status st = cv_op_same_shape(op, "mq", mq, "lsq", lsq);
    if (st == CV_OK) st = cv_op_same_shape(op, "mq", mq, "mp", mp);
    if (st == CV_OK) st = cv_op_same_shape(op, "mq", mq, "lsp", lsp);
    for (int k = 0; k < 4 && st == CV_OK; k++)
        if (*mask & (1 << k)) st = cv_op_same_shape(op, "mq", mq, gn[k], gr[k]);
    return st;
}

/* The kernels' first four arguments (mq, lsq, mp, lsp). */
static void kl_input_args(cv_kargs *ka, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                          const cv_tensor *lsp) {
    const cv_tensor *in[4] = { mq, lsq, mp, lsp };
    for (int k = 0; k < 4; k++) { cv_karg_mem(ka, in[k]->buf); cv_karg_u64(ka, in[k]->off); }
}

/* The gradient arguments (absent ones as NULL buffers) and the mask. */
static void kl_grad_args(cv_kargs *ka, const cv_tensor *const gr[4], int mask) {
    for (int k = 0; k < 4; k++) {
        cv_karg_mem(ka, (mask & (1 << k)) ? gr[k]->buf : NULL);
        cv_karg_u64(ka, (mask & (1 << k)) ? gr[k]->off : 0);
    }
    cv_karg_i32(ka, mask);
}

cv_status cv_gausskl_fwd(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                         const cv_tensor *lsp, const cv_tensor *kl) {
    cv_status st = cv_op_same_shape("gausskl", "mq", mq, "lsq", lsq);
    if (st == CV_OK) st = cv_op_same_shape("gausskl", "mq", mq, "mp", mp);
    if (st == CV_OK) st = cv_op_same_shape("gausskl", "mq", mq, "lsp", lsp);
    if (st == CV_OK) st = cv_op_same_shape("gausskl", "mq", mq, "kl", kl);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(mq);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gausskl_fwd");
    kl_input_args(&ka, mq, lsq, mp, lsp);
    cv_karg_mem(&ka, kl->buf); cv_karg_u64(&ka, kl->off);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_gausskl_bwd(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                         const cv_tensor *lsp, const cv_tensor *dkl, const cv_tensor *dmq, const cv_tensor *dlsq,
                         const cv_tensor *dmp, const cv_tensor *dlsp) {
    return cv_gausskl_bwd_ex(ctx, mq, lsq, mp, lsp, dkl, dmq, dlsq, dmp, dlsp, 0);
}

cv_status cv_gausskl_bwd_ex(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                            const cv_tensor *lsp, const cv_tensor *dkl, const cv_tensor *dmq, const cv_tensor *dlsq,
                            const cv_tensor *dmp, const cv_tensor *dlsp, int set) {
    const cv_tensor *const gr[4] = { dmq, dlsq, dmp, dlsp };
    int mask;
    cv_status st = kl_grads_check("gausskl backward", mq, lsq, mp, lsp, gr, set, &mask);
    if (st == CV_OK && mask) st = cv_op_same_shape("gausskl backward", "mq", mq, "dkl", dkl);
    if (st != CV_OK || !mask) return st;
    int64_t n = cv_tensor_numel(mq);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gausskl_bwd");
    kl_input_args(&ka, mq, lsq, mp, lsp);
    cv_karg_mem(&ka, dkl->buf); cv_karg_u64(&ka, dkl->off);
    kl_grad_args(&ka, gr, mask);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_gausskl_sum_bwd(cv_ctx *ctx, const cv_tensor *mq, const cv_tensor *lsq, const cv_tensor *mp,
                             const cv_tensor *lsp, const cv_tensor *dy, float sc, const cv_tensor *dmq,
                             const cv_tensor *dlsq, const cv_tensor *dmp, const cv_tensor *dlsp, int set) {
    const cv_tensor *const gr[4] = { dmq, dlsq, dmp, dlsp };
    char sa[80], sb[80];
    int mask;
    cv_status st = kl_grads_check("gausskl sum backward", mq, lsq, mp, lsp, gr, set, &mask);
    if (st == CV_OK && mask && cv_tensor_numel(dy) != mq->shape[0])
        st = cv_error(CV_ERR_SHAPE, "gausskl sum backward: dy is %s for inputs %s (one value per sample expected)",
                      cv_shape_str(dy->shape, sa, sizeof sa), cv_shape_str(mq->shape, sb, sizeof sb));
    if (st != CV_OK || !mask) return st;
    int64_t N = mq->shape[0], M = N ? cv_tensor_numel(mq) / N : 0;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gausskl_sum_bwd");
    kl_input_args(&ka, mq, lsq, mp, lsp);
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_f32(&ka, sc);
    kl_grad_args(&ka, gr, mask);
    cv_karg_i64(&ka, M);
    return cv_op_plane_launch(ctx, &ka, M, N);
}

/* ---- Gaussian NLL with a floored log-std ----------------------------------------------- */

void cv_gaussnll_ref_fwd(const double *x, const double *mu, const double *logs, double *nll /* all (n) */, int64_t n,
                         double floor) {
    for (int64_t i = 0; i < n; i++) {
        double s = logs[i] < floor ? floor : logs[i], d = x[i] - mu[i];
        nll[i] = s + HALF_LOG_2PI + d * d / (2 * exp(2 * s));
    }
}

void cv_gaussnll_ref_bwd(const double *x, const double *mu, const double *logs, const double *dnll,
                         double *dmu, double *dlogs /* (n), +=, or NULL */, int64_t n, double floor) {
    for (int64_t i = 0; i < n; i++) {
        double s = logs[i] < floor ? floor : logs[i], d = x[i] - mu[i], v = exp(2 * s);
        if (dmu) dmu[i] -= dnll[i] * d / v;
        if (dlogs && logs[i] >= floor) dlogs[i] += dnll[i] * (1 - d * d / v);
    }
}

cv_status cv_gaussnll_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *mu, const cv_tensor *logs,
                          const cv_tensor *nll, float floor) {
    cv_status st = cv_op_same_shape("gaussnll", "x", x, "mu", mu);
    if (st == CV_OK) st = cv_op_same_shape("gaussnll", "x", x, "logs", logs);
    if (st == CV_OK) st = cv_op_same_shape("gaussnll", "x", x, "nll", nll);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(x);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gaussnll_fwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, mu->buf); cv_karg_u64(&ka, mu->off);
    cv_karg_mem(&ka, logs->buf); cv_karg_u64(&ka, logs->off);
    cv_karg_mem(&ka, nll->buf); cv_karg_u64(&ka, nll->off);
    cv_karg_f32(&ka, floor);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_gaussnll_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *mu, const cv_tensor *logs,
                          const cv_tensor *dnll, const cv_tensor *dmu, const cv_tensor *dlogs, float floor) {
    int mask = (cv_op_has(dmu) ? 1 : 0) | (cv_op_has(dlogs) ? 2 : 0);
    if (!mask) return CV_OK;
    cv_status st = cv_op_same_shape("gaussnll backward", "x", x, "mu", mu);
    if (st == CV_OK) st = cv_op_same_shape("gaussnll backward", "x", x, "logs", logs);
    if (st == CV_OK) st = cv_op_same_shape("gaussnll backward", "x", x, "dnll", dnll);
    if (st == CV_OK && (mask & 1)) st = cv_op_same_shape("gaussnll backward", "x", x, "dmu", dmu);
    if (st == CV_OK && (mask & 2)) st = cv_op_same_shape("gaussnll backward", "x", x, "dlogs", dlogs);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(x);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gaussnll_bwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, mu->buf); cv_karg_u64(&ka, mu->off);
    cv_karg_mem(&ka, logs->buf); cv_karg_u64(&ka, logs->off);
    cv_karg_mem(&ka, dnll->buf); cv_karg_u64(&ka, dnll->off);
    cv_karg_mem(&ka, (mask & 1) ? dmu->buf : NULL); cv_karg_u64(&ka, (mask & 1) ? dmu->off : 0);
    cv_karg_mem(&ka, (mask & 2) ? dlogs->buf : NULL); cv_karg_u64(&ka, (mask & 2) ? dlogs->off : 0);
    cv_karg_f32(&ka, floor);
    cv_karg_i32(&ka, mask);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

