/* vae.cl -- reparameterised sampling, Gaussian KL and NLL, random fills
 * (src/ops/cv_op_vae.c).  The noise comes from cl/cv_rng.clh, bit-identical
 * with the host's cv_rng_normal, so device and reference paths draw the
 * same eps.  CV_ELEMS per work-item (cl/cv_common.clh); backward kernels accumulate (+=)
 * into the gradients selected by `mask` (bit per gradient; the others may
 * be NULL buffers). */

/* y[i] = t * cv_rng_normal(seed, stream, i0 + i) */
__kernel void cvk_randn(__global float *y, ulong yo, ulong seed, ulong stream, ulong i0, float t, long n) {
    CV_ELEMS(i, n) {
        float e = cv_rng_normal(seed, stream, i0 + (ulong)i);
        y[yo + i] = t * e;
    }
}

/* y[i] = cv_rng_uniform(seed, stream, i0 + i), in (0, 1) */
__kernel void cvk_rand(__global float *y, ulong yo, ulong seed, ulong stream, ulong i0, long n) {
    CV_ELEMS(i, n) {
        y[yo + i] = cv_rng_uniform(seed, stream, i0 + (ulong)i);
    }
}

/* Test hook: y[i] = the Box-Muller transform of the words (a0 + s0 i,
 * a1 + s1 i) mod 2^32, to compare edge words with the host. */
__kernel void cvk_rng_normal_words(__global float *y, ulong yo, uint a0, uint s0, uint a1, uint s1, long n) {
    CV_ELEMS(i, n) {
        y[yo + i] = cv_rngc_normal_words(a0 + s0 * (uint)i, a1 + s1 * (uint)i);
    }
}

/* z = mu + (t exp(logs)) eps, eps of element i = cv_rng_normal(seed, stream, i0 + i);
 * with has_se also se[i] = (t exp(logs)) eps, the product the backward needs */
__kernel void cvk_reparam_fwd(__global const float *mu, ulong muo, __global const float *logs, ulong lo,
                              __global float *z, ulong zo, ulong seed, ulong stream, ulong i0, float t,
                              __global float *se, ulong seo, int has_se, long n) {
    CV_ELEMS(i, n) {
        float e = cv_rng_normal(seed, stream, i0 + (ulong)i);
        float s = (t * exp(logs[lo + i])) * e;
        z[zo + i] = mu[muo + i] + s;
        if (has_se) se[seo + i] = s;
    }
}

/* dmu += dz (mask & 1); dlogs += dz t exp(logs) eps (mask & 2), the product
 * read from se (mask & 4: kept by the forward) or drawn again */
__kernel void cvk_reparam_bwd(__global const float *logs, ulong lo, __global const float *dz, ulong dzo,
                              __global float *dmu, ulong dmuo, __global float *dlogs, ulong dlo,
                              int mask, ulong seed, ulong stream, ulong i0, float t,
                              __global const float *se, ulong seo, long n) {
    CV_ELEMS(i, n) {
        float g = dz[dzo + i];
        if (mask & 1) dmu[dmuo + i] += g;
        if (mask & 2) {
            float s;
            if (mask & 4) s = se[seo + i];
            else s = (t * exp(logs[lo + i])) * cv_rng_normal(seed, stream, i0 + (ulong)i);
            dlogs[dlo + i] += g * s;
        }
    }
}

/* kl = lsp - lsq + (exp(2 lsq) + (mq - mp)^2) / (2 exp(2 lsp)) - 1/2, written
 * with exp(-2 lsp) and exp(2 (lsq - lsp)) so that no division is needed. */
__kernel void cvk_gausskl_fwd(__global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                              __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                              __global float *kl, ulong klo, long n) {
    CV_ELEMS(i, n) {
        float a = lsq[lsqo + i], b = lsp[lspo + i], d = mq[mqo + i] - mp[mpo + i];
        kl[klo + i] = b - a + 0.5f * (exp(2.0f * (a - b)) + d * d * exp(-2.0f * b)) - 0.5f;
    }
}

/* dmq += g d e^-2lsp (1), dlsq += g (r - 1) (2), dmp -= g d e^-2lsp (4),
 * dlsp += g (1 - r - d^2 e^-2lsp) (8); r = exp(2 (lsq - lsp)), d = mq - mp.
 * mask bits 16, 32, 64, 128: the same gradients written (=), not added,
 * by their first writer.  One body for T = float and float8 (LD, ST load
 * and store a T at a pointer). */
#define CV_KL_GRAD(T, LD, ST, i, G)                                                                 \
    do {                                                                                            \
        const T a_ = LD(lsq + lsqo + (i)), b_ = LD(lsp + lspo + (i));                               \
        const T d_ = LD(mq + mqo + (i)) - LD(mp + mpo + (i)), g_ = (G);                             \
        const T ip_ = exp(-2.0f * b_), r_ = exp(2.0f * (a_ - b_)), gm_ = g_ * d_ * ip_;             \
        const T gl_ = g_ * (r_ - 1.0f), gs_ = g_ * (1.0f - r_ - d_ * d_ * ip_);                     \
        if (mask & 1) ST((mask & 16) ? gm_ : LD(dmq + dmqo + (i)) + gm_, dmq + dmqo + (i));         \
        if (mask & 2) ST((mask & 32) ? gl_ : LD(dlsq + dlsqo + (i)) + gl_, dlsq + dlsqo + (i));     \
        if (mask & 4) ST((mask & 64) ? -gm_ : LD(dmp + dmpo + (i)) - gm_, dmp + dmpo + (i));        \
        if (mask & 8) ST((mask & 128) ? gs_ : LD(dlsp + dlspo + (i)) + gs_, dlsp + dlspo + (i));    \
    } while (0)
#define CV_LD1(p) (*(p))
#define CV_ST1(v, p) (*(p) = (v))
#define CV_LD8(p) vload8(0, (p))
#define CV_ST8(v, p) vstore8((v), 0, (p))

/* The KL's gradients over elements [lo, hi): upstream dkl[i] (per_elem)
 * or the constant g0.  Whole blocks of 8 on float8 vectors (the uniform
 * mask branches kept the compiler from vectorising the scalar loop on
 * CPUs), the rest one by one (on GPUs, all of a one-element run). */
void cv_kl_grad_range(long lo, long hi, int per_elem, __global const float *dkl, float g0,
                      __global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                      __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                      __global float *dmq, ulong dmqo, __global float *dlsq, ulong dlsqo,
                      __global float *dmp, ulong dmpo, __global float *dlsp, ulong dlspo, int mask) {
    long i = lo;
    for (; i + 8 <= hi; i += 8)
        CV_KL_GRAD(float8, CV_LD8, CV_ST8, i, per_elem ? vload8(0, dkl + i) : (float8)(g0));
    for (; i < hi; i++)
        CV_KL_GRAD(float, CV_LD1, CV_ST1, i, per_elem ? dkl[i] : g0);
}

__kernel void cvk_gausskl_bwd(__global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                              __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                              __global const float *dkl, ulong dklo,
                              __global float *dmq, ulong dmqo, __global float *dlsq, ulong dlsqo,
                              __global float *dmp, ulong dmpo, __global float *dlsp, ulong dlspo,
                              int mask, long n) {
    CV_ELEM_RUN(lo, hi, n);
    cv_kl_grad_range(lo, hi, 1, dkl + dklo, 0.0f, mq, mqo, lsq, lsqo, mp, mpo, lsp, lspo,
                     dmq, dmqo, dlsq, dlsqo, dmp, dmpo, dlsp, dlspo, mask);
}

/* The backward of kl summed per sample (y[n] = sc sum_i kl[n, i]): as
 * cvk_gausskl_bwd with g = sc dy[n] for every element of sample n, so that
 * neither the KL nor its gradient is stored; work-item (run of i, n), i < M. */
__kernel void cvk_gausskl_sum_bwd(__global const float *mq, ulong mqo, __global const float *lsq, ulong lsqo,
                                  __global const float *mp, ulong mpo, __global const float *lsp, ulong lspo,
                                  __global const float *dy, ulong dyo, float sc,
                                  __global float *dmq, ulong dmqo, __global float *dlsq, ulong dlsqo,
                                  __global float *dmp, ulong dmpo, __global float *dlsp, ulong dlspo,
                                  int mask, long M) {
    const long n = get_global_id(1), i0 = CV_GID0 * CV_ELEM_CHUNK;
    const long lo = n * M + i0, hi = n * M + min(i0 + (long)CV_ELEM_CHUNK, M);
    cv_kl_grad_range(lo, hi, 0, dy, sc * dy[dyo + n], mq, mqo, lsq, lsqo, mp, mpo, lsp, lspo,
                     dmq, dmqo, dlsq, dlsqo, dmp, dmpo, dlsp, dlspo, mask);
}

#define CV_HALF_LOG_2PI 0.91893853320467274178f

/* s = max(logs, floor) (a NaN logs stays NaN); nll = s + log(2 pi)/2 + (x - mu)^2 exp(-2 s) / 2 */
__kernel void cvk_gaussnll_fwd(__global const float *x, ulong xo, __global const float *mu, ulong muo,
                               __global const float *logs, ulong lo, __global float *nll, ulong nllo,
                               float fl, long n) {
    CV_ELEMS(i, n) {
        float ls = logs[lo + i], s = ls < fl ? fl : ls, d = x[xo + i] - mu[muo + i];
        nll[nllo + i] = s + CV_HALF_LOG_2PI + 0.5f * d * d * exp(-2.0f * s);
    }
}

/* dmu += -g d e^-2s (mask & 1); dlogs += g (1 - d^2 e^-2s) where logs >= floor (mask & 2) */
__kernel void cvk_gaussnll_bwd(__global const float *x, ulong xo, __global const float *mu, ulong muo,
                               __global const float *logs, ulong lo, __global const float *dnll, ulong dnllo,
                               __global float *dmu, ulong dmuo, __global float *dlogs, ulong dlo,
                               float fl, int mask, long n) {
    CV_ELEMS(i, n) {
        float ls = logs[lo + i], s = ls < fl ? fl : ls, d = x[xo + i] - mu[muo + i];
        float g = dnll[dnllo + i], ip = exp(-2.0f * s);
        if (mask & 1) dmu[dmuo + i] -= g * d * ip;
        if ((mask & 2) && ls >= fl) dlogs[dlo + i] += g * (1.0f - d * d * ip);
    }
}
