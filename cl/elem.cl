/* elem.cl -- elementwise, resampling and channel kernels (src/ops/cv_op_elem.c).
 * One work-item per output element (per input element for the backward
 * passes that gather), so no two work-items write the same address and no
 * atomics are needed.  Every *_bwd kernel accumulates (+=).  Index
 * arithmetic is in long: tensors may exceed 2^31 elements. */

#define CV_SQRT1_2  0.70710678118654752440f
#define CV_INV_SQRT_2PI 0.39894228040143267794f

/* y = x/2 (1 + erf(x / sqrt 2)) */
__kernel void cvk_gelu_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float v = x[xo + i];
    y[yo + i] = 0.5f * v * (1.0f + erf(v * CV_SQRT1_2));
}

/* dx += dy (Phi(x) + x phi(x)) */
__kernel void cvk_gelu_bwd(__global const float *x, ulong xo, __global const float *dy, ulong dyo,
                           __global float *dx, ulong dxo, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float v = x[xo + i];
    float d = 0.5f * (1.0f + erf(v * CV_SQRT1_2)) + v * CV_INV_SQRT_2PI * exp(-0.5f * v * v);
    dx[dxo + i] += dy[dyo + i] * d;
}

__kernel void cvk_add_fwd(__global const float *a, ulong ao, __global const float *b, ulong bo,
                          __global float *y, ulong yo, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    y[yo + i] = a[ao + i] + b[bo + i];
}

/* da += dy (mask & 1), db += dy (mask & 2) */
__kernel void cvk_add_bwd(__global const float *dy, ulong dyo, __global float *da, ulong dao,
                          __global float *db, ulong dbo, int mask, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    float g = dy[dyo + i];
    if (mask & 1) da[dao + i] += g;
    if (mask & 2) db[dbo + i] += g;
}

__kernel void cvk_scale_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, float s, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    y[yo + i] = s * x[xo + i];
}

__kernel void cvk_scale_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo, float s, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    dx[dxo + i] += s * dy[dyo + i];
}

/* x (NC, H, W) -> y (NC, H/k, W/k); one work-item per y element */
__kernel void cvk_avgpool_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                              long H, long W, int k, float inv, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long Wo = W / k, Ho = H / k;
    long wo = i % Wo, t = i / Wo, ho = t % Ho, nc = t / Ho;
    __global const float *p = x + xo + (nc * H + ho * k) * W + wo * k;
    float s = 0.0f;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) s += p[a * W + b];
    y[yo + i] = s * inv;
}

/* dx (NC, H, W) += inv dy[nc, h/k, w/k]; one work-item per dx element */
__kernel void cvk_avgpool_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                              long H, long W, int k, float inv, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long w = i % W, t = i / W, h = t % H, nc = t / H;
    dx[dxo + i] += inv * dy[dyo + (nc * (H / k) + h / k) * (W / k) + w / k];
}

/* x (NC, H, W) -> y (NC, kH, kW): y (=, or += with acc) x[nc, h/k, w/k] */
__kernel void cvk_upsample_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                               long H, long W, int k, int acc, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long Wo = W * k, Ho = H * k;
    long wo = i % Wo, t = i / Wo, ho = t % Ho, nc = t / Ho;
    float v = x[xo + (nc * H + ho / k) * W + wo / k];
    if (acc) y[yo + i] += v;
    else y[yo + i] = v;
}

/* dx (NC, H, W) += sum of the k x k block of dy (NC, kH, kW) */
__kernel void cvk_upsample_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                               long H, long W, int k, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long w = i % W, t = i / W, h = t % H, nc = t / H;
    long Wo = W * k;
    __global const float *p = dy + dyo + (nc * H * k + h * k) * Wo + w * k;
    float s = 0.0f;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) s += p[a * Wo + b];
    dx[dxo + i] += s;
}

/* y (N, Ca+Cb, HW) = [a (N, Ca, HW), b (N, Cb, HW)] */
__kernel void cvk_concat_fwd(__global const float *a, ulong ao, __global const float *b, ulong bo,
                             __global float *y, ulong yo, long Ca, long Cb, long HW, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long per = (Ca + Cb) * HW, nn = i / per, r = i % per;
    y[yo + i] = r < Ca * HW ? a[ao + nn * Ca * HW + r] : b[bo + nn * Cb * HW + (r - Ca * HW)];
}

/* da += dy[:, :Ca] (mask & 1), db += dy[:, Ca:] (mask & 2) */
__kernel void cvk_concat_bwd(__global const float *dy, ulong dyo, __global float *da, ulong dao,
                             __global float *db, ulong dbo, long Ca, long Cb, long HW, int mask, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long per = (Ca + Cb) * HW, nn = i / per, r = i % per;
    if (r < Ca * HW) { if (mask & 1) da[dao + nn * Ca * HW + r] += dy[dyo + i]; }
    else if (mask & 2) db[dbo + nn * Cb * HW + (r - Ca * HW)] += dy[dyo + i];
}

/* y (N, Cy, HW) = x[:, c0 : c0+Cy] of x (N, C, HW) */
__kernel void cvk_slice_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                            long C, long HW, long c0, long Cy, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long per = Cy * HW, nn = i / per, r = i % per;
    y[yo + i] = x[xo + nn * C * HW + c0 * HW + r];
}

__kernel void cvk_slice_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                            long C, long HW, long c0, long Cy, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long per = Cy * HW, nn = i / per, r = i % per;
    dx[dxo + nn * C * HW + c0 * HW + r] += dy[dyo + i];
}

/* y = g[c] x + b[c], x (N, C, HW) */
__kernel void cvk_affine_fwd(__global const float *x, ulong xo, __global const float *g, ulong go,
                             __global const float *b, ulong bo, __global float *y, ulong yo,
                             long C, long HW, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long c = (i / HW) % C;
    y[yo + i] = g[go + c] * x[xo + i] + b[bo + c];
}

/* dx += g[c] dy (dg, db come from the per-channel reduction in reduce.cl) */
__kernel void cvk_affine_bwd(__global const float *g, ulong go, __global const float *dy, ulong dyo,
                             __global float *dx, ulong dxo, long C, long HW, long n) {
    long i = CV_GID0;
    if (i >= n) return;
    long c = (i / HW) % C;
    dx[dxo + i] += g[go + c] * dy[dyo + i];
}
