/* vae.cl -- reparameterised sampling, Gaussian KL and NLL, random fills
 * (src/ops/cv_op_vae.c).  The noise comes from cl/cv_rng.clh, bit-identical
 * with the host's cv_rng_normal, so device and reference paths draw the
 * same eps.  One work-item per element; backward kernels accumulate (+=)
 * into the gradients selected by `mask` (bit per gradient; the others may
 * be NULL buffers). */

/* y[i] = t * cv_rng_normal(seed, stream, i0 + i) */
__kernel void cvk_randn(__global float *y, ulong yo, ulong seed, ulong stream, ulong i0, float t, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float e = cv_rng_normal(seed, stream, i0 + (ulong)i);
    y[yo + i] = t * e;
}

/* y[i] = cv_rng_uniform(seed, stream, i0 + i), in (0, 1) */
__kernel void cvk_rand(__global float *y, ulong yo, ulong seed, ulong stream, ulong i0, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    y[yo + i] = cv_rng_uniform(seed, stream, i0 + (ulong)i);
}

/* Test hook: y[i] = the Box-Muller transform of the words (a0 + s0 i,
 * a1 + s1 i) mod 2^32, to compare edge words with the host. */
__kernel void cvk_rng_normal_words(__global float *y, ulong yo, uint a0, uint s0, uint a1, uint s1, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    y[yo + i] = cv_rngc_normal_words(a0 + s0 * (uint)i, a1 + s1 * (uint)i);
}

/* z = mu + (t exp(logs)) eps, eps of element i = cv_rng_normal(seed, stream, i0 + i);
 * with has_se also se[i] = (t exp(logs)) eps, the product the backward needs */
__kernel void cvk_reparam_fwd(__global const float *mu, ulong muo, __global const float *logs, ulong lo,
                              __global float *z, ulong zo, ulong seed, ulong stream, ulong i0, float t,
                              __global float *se, ulong seo, int has_se, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float e = cv_rng_normal(seed, stream, i0 + (ulong)i);
    float s = (t * exp(logs[lo + i])) * e;
    z[zo + i] = mu[muo + i] + s;
    if (has_se) se[seo + i] = s;
}

/* dmu += dz (mask & 1); dlogs += dz t exp(logs) eps (mask & 2), the product
 * read from se (mask & 4: kept by the forward) or drawn again */
__kernel void cvk_reparam_bwd(__global const float *logs, ulong lo, __global const float *dz, ulong dzo,
                              __global float *dmu, ulong dmuo, __global float *dlogs, ulong dlo,
                              int mask, ulong seed, ulong stream, ulong i0, float t,
                              __global const float *se, ulong seo, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float g = dz[dzo + i];
    if (mask & 1) dmu[dmuo + i] += g;
    if (mask & 2) {
        float s;
        if (mask & 4) s = se[seo + i];
        else s = (t * exp(logs[lo + i])) * cv_rng_normal(seed, stream, i0 + (ulong)i);
        dlogs[dlo + i] += g * s;
    }
}

/* kl = lsp - lsq + (exp(2 lsq) + (mq - mp)^2) / (2 exp(2 lsp)) - 1/2, written
 * with exp(-2 lsp) and exp(2 (lsq - lsp)) so that no division is needed. */
__kernel void cvk_gausskl_fwd(__global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                              __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                              __global float *kl, ulong klo, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float a = lsq[lsqo + i], b = lsp[lspo + i], d = mq[mqo + i] - mp[mpo + i];
    kl[klo + i] = b - a + 0.5f * (exp(2.0f * (a - b)) + d * d * exp(-2.0f * b)) - 0.5f;
}

/* dmq += g d e^-2lsp (1), dlsq += g (r - 1) (2), dmp -= g d e^-2lsp (4),
 * dlsp += g (1 - r - d^2 e^-2lsp) (8); r = exp(2 (lsq - lsp)), d = mq - mp.
 * mask bits 16, 32, 64, 128: the same gradients written (=), not added,
 * by their first writer. */
__kernel void cvk_gausskl_bwd(__global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                              __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                              __global const float *dkl, ulong dklo,
                              __global float *dmq, ulong dmqo, __global float *dlsq, ulong dlsqo,
                              __global float *dmp, ulong dmpo, __global float *dlsp, ulong dlspo,
                              int mask, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float a = lsq[lsqo + i], b = lsp[lspo + i], d = mq[mqo + i] - mp[mpo + i];
    float g = dkl[dklo + i], ip = exp(-2.0f * b), r = exp(2.0f * (a - b));
    float gm = g * d * ip;
    if (mask & 1) dmq[dmqo + i] = (mask & 16) ? gm : dmq[dmqo + i] + gm;
    if (mask & 2) dlsq[dlsqo + i] = (mask & 32) ? g * (r - 1.0f) : dlsq[dlsqo + i] + g * (r - 1.0f);
    if (mask & 4) dmp[dmpo + i] = (mask & 64) ? -gm : dmp[dmpo + i] - gm;
    if (mask & 8) dlsp[dlspo + i] = (mask & 128) ? g * (1.0f - r - d * d * ip)
                                                  : dlsp[dlspo + i] + g * (1.0f - r - d * d * ip);
}

/* The backward of kl summed per sample (y[n] = sc sum_i kl[n, i]): as
 * cvk_gausskl_bwd with g = sc dy[n] for every element of sample n, so that
 * neither the KL nor its gradient is stored; work-item (i, n), i < M. */
__kernel void cvk_gausskl_sum_bwd(__global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                                  __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                                  __global const float *dy, ulong dyo, float sc,
                                  __global float *dmq, ulong dmqo, __global float *dlsq, ulong dlsqo,
                                  __global float *dmp, ulong dmpo, __global float *dlsp, ulong dlspo,
                                  int mask, long M) {
    const long i0 = CV_GID0, n = get_global_id(1);
    if (i0 >= M) return;
    const long i = n * M + i0;
    float a = lsq[lsqo + i], b = lsp[lspo + i], d = mq[mqo + i] - mp[mpo + i];
    float g = sc * dy[dyo + n], ip = exp(-2.0f * b), r = exp(2.0f * (a - b));
    float gm = g * d * ip;
    if (mask & 1) dmq[dmqo + i] = (mask & 16) ? gm : dmq[dmqo + i] + gm;
    if (mask & 2) dlsq[dlsqo + i] = (mask & 32) ? g * (r - 1.0f) : dlsq[dlsqo + i] + g * (r - 1.0f);
    if (mask & 4) dmp[dmpo + i] = (mask & 64) ? -gm : dmp[dmpo + i] - gm;
    if (mask & 8) dlsp[dlspo + i] = (mask & 128) ? g * (1.0f - r - d * d * ip)
                                                  : dlsp[dlspo + i] + g * (1.0f - r - d * d * ip);
}

#define CV_HALF_LOG_2PI 0.91893853320467274178f

/* s = max(logs, floor) (a NaN logs stays NaN); nll = s + log(2 pi)/2 + (x - mu)^2 exp(-2 s) / 2 */
__kernel void cvk_gaussnll_fwd(__global const float *x, ulong xo, __global const float *mu, ulong muo,
                               __global const float *logs, ulong lo, __global float *nll, ulong nllo,
                               float fl, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float ls = logs[lo + i], s = ls < fl ? fl : ls, d = x[xo + i] - mu[muo + i];
    nll[nllo + i] = s + CV_HALF_LOG_2PI + 0.5f * d * d * exp(-2.0f * s);
}

/* dmu += -g d e^-2s (mask & 1); dlogs += g (1 - d^2 e^-2s) where logs >= floor (mask & 2) */
__kernel void cvk_gaussnll_bwd(__global const float *x, ulong xo, __global const float *mu, ulong muo,
                               __global const float *logs, ulong lo, __global const float *dnll, ulong dnllo,
                               __global float *dmu, ulong dmuo, __global float *dlogs, ulong dlo,
                               float fl, int mask, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float ls = logs[lo + i], s = ls < fl ? fl : ls, d = x[xo + i] - mu[muo + i];
    float g = dnll[dnllo + i], ip = exp(-2.0f * s);
    if (mask & 1) dmu[dmuo + i] -= g * d * ip;
    if ((mask & 2) && ls >= fl) dlogs[dlo + i] += g * (1.0f - d * d * ip);
}
