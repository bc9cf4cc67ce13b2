/* optim.cl -- RMSprop and Adam steps, flat over a parameter arena chunk
 * (src/ops/cv_optim.c).  Clipping and skipping read the squared global
 * gradient norm from the device scalar stat[so] (written by cvk_reduce_*),
 * so a step needs no host round trip.  A skipped step leaves parameters
 * and optimizer state untouched; with nstat >= 2, work-item 0 records
 * stat[so + 1] = 1 (skipped) or 0: the one decision, which the EMA
 * (cvk_ema) follows and the host reads with the loss. */

/* scale = min(1, clip / gnorm) (clip <= 0: 1); returns 0 to skip.  The
 * skip compares the squared norm with skip2, the squared threshold the
 * host rounded to a float (<= 0: never), so no device square root takes
 * part in it and cv_optim_decide_ref reproduces it bit for bit.  Called
 * once per work-item, before its run of elements. */
static int cv_optim_scale(__global float *stat, ulong so, float clip, float skip2, int nstat, float *scale) {
    float n2 = stat[so], gnorm = sqrt(n2);
    int skipped = !isfinite(n2) || (skip2 > 0.0f && n2 > skip2);
    *scale = clip > 0.0f && gnorm > clip ? clip / gnorm : 1.0f;
    if (get_global_id(0) == 0 && nstat >= 2) stat[so + 1] = skipped ? 1.0f : 0.0f;
    return !skipped;
}

/* g = scale grad + wd p; v = alpha v + (1-alpha) g^2;
 * momentum > 0: buf = momentum buf + g / (sqrt v + eps), p -= lr buf;
 * else p -= lr g / (sqrt v + eps) */
__kernel void cvk_rmsprop(__global float *p, ulong po, __global const float *gr, ulong go,
                          __global float *v, ulong vo, __global float *buf, ulong bo,
                          float lr, float alpha, float eps, float wd, float mom,
                          __global float *stat, ulong so, float clip, float skip2, int nstat, long n) {
    float scale;
    if (!cv_optim_scale(stat, so, clip, skip2, nstat, &scale)) return;
    CV_ELEMS(i, n) {
        float pi = p[po + i];
        float g = scale * gr[go + i] + wd * pi;
        float vi = alpha * v[vo + i] + (1.0f - alpha) * g * g;
        v[vo + i] = vi;
        float u = g / (sqrt(vi) + eps);
        if (mom > 0.0f) {
            float b = mom * buf[bo + i] + u;
            buf[bo + i] = b;
            p[po + i] = pi - lr * b;
        } else {
            p[po + i] = pi - lr * u;
        }
    }
}

/* g = scale grad + wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= step m / (sqrt(v) ibc2 + eps), step = lr / (1 - b1^t),
 * ibc2 = 1 / sqrt(1 - b2^t) (both from the host, which knows t). */
__kernel void cvk_adam(__global float *p, ulong po, __global const float *gr, ulong go,
                       __global float *m, ulong mo, __global float *v, ulong vo,
                       float step, float ibc2, float b1, float b2, float eps, float wd,
                       __global float *stat, ulong so, float clip, float skip2, int nstat, long n) {
    float scale;
    if (!cv_optim_scale(stat, so, clip, skip2, nstat, &scale)) return;
    CV_ELEMS(i, n) {
        float pi = p[po + i];
        float g = scale * gr[go + i] + wd * pi;
        float mi = b1 * m[mo + i] + (1.0f - b1) * g;
        float vi = b2 * v[vo + i] + (1.0f - b2) * g * g;
        m[mo + i] = mi;
        v[vo + i] = vi;
        p[po + i] = pi - step * mi / (sqrt(vi) * ibc2 + eps);
    }
}
