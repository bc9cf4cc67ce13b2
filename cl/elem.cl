/* elem.cl -- elementwise, resampling and channel kernels (src/ops/cv_op_elem.c).
 * One work-item per element (resampling: per element of the smaller
 * tensor, which owns its k x k block of the larger one), so no two
 * work-items write the same address and no atomics are needed.  Every
 * *_bwd kernel accumulates (+=).  Flat index arithmetic is in long:
 * tensors may exceed 2^31 elements; the resampling and channel kernels
 * take 2-D / 3-D ranges instead of dividing per element.  Flat kernels
 * and the first dimension of the channel kernels run CV_ELEMS
 * (cl/cv_common.clh): CV_ELEM_CHUNK elements per work-item. */

#define CV_SQRT1_2  0.70710678118654752440f
#define CV_INV_SQRT_2PI 0.39894228040143267794f

/* y = x/2 (1 + erf(x / sqrt 2)) */
__kernel void cvk_gelu_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, long n) {
    CV_ELEMS(i, n) {
        float v = x[xo + i];
        y[yo + i] = 0.5f * v * (1.0f + erf(v * CV_SQRT1_2));
    }
}

/* dx += dy (Phi(x) + x phi(x)) */
__kernel void cvk_gelu_bwd(__global const float *x, ulong xo, __global const float *dy, ulong dyo,
                           __global float *dx, ulong dxo, long n) {
    CV_ELEMS(i, n) {
        float v = x[xo + i];
        float d = 0.5f * (1.0f + erf(v * CV_SQRT1_2)) + v * CV_INV_SQRT_2PI * exp(-0.5f * v * v);
        dx[dxo + i] += dy[dyo + i] * d;
    }
}

__kernel void cvk_add_fwd(__global const float *a, ulong ao, __global const float *b, ulong bo,
                          __global float *y, ulong yo, long n) {
    CV_ELEMS(i, n) {
        y[yo + i] = a[ao + i] + b[bo + i];
    }
}

/* da += dy (mask & 1), db += dy (mask & 2); mask & 4 (8): da (db) = dy,
 * for the gradient's first writer */
__kernel void cvk_add_bwd(__global const float *dy, ulong dyo, __global float *da, ulong dao,
                          __global float *db, ulong dbo, int mask, long n) {
    CV_ELEMS(i, n) {
        float g = dy[dyo + i];
        if (mask & 1) da[dao + i] = (mask & 4) ? g : da[dao + i] + g;
        if (mask & 2) db[dbo + i] = (mask & 8) ? g : db[dbo + i] + g;
    }
}

__kernel void cvk_scale_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, float s, long n) {
    CV_ELEMS(i, n) {
        y[yo + i] = s * x[xo + i];
    }
}

__kernel void cvk_scale_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo, float s, long n) {
    CV_ELEMS(i, n) {
        dx[dxo + i] += s * dy[dyo + i];
    }
}

/* Resampling: 3-D ranges (x, y, plane) so that no work-item divides; the
 * factor k = 2 of the VDVAE gets straight-line bodies (PoCL vectorises
 * those across work-items), other factors loop. */

/* x (NC, H, W) -> y (NC, H/k, W/k); work-item (wo, ho, nc) */
__kernel void cvk_avgpool_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                              int H, int W, int k, float inv, int NC) {
    const int wo = get_global_id(0), ho = get_global_id(1), nc = get_global_id(2);
    const int Wo = W / k, Ho = H / k;
    if (wo >= Wo || ho >= Ho || nc >= NC) return;
    __global const float *p = x + xo + ((long)nc * H + (long)ho * k) * W + (long)wo * k;
    float s;
    if (k == 2) {
        s = (p[0] + p[1]) + (p[W] + p[W + 1]);
    } else {
        s = 0.0f;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) s += p[(long)a * W + b];
    }
    y[yo + ((long)nc * Ho + ho) * Wo + wo] = s * inv;
}

/* dx (NC, H, W) += inv dy[nc, h/k, w/k]; work-item (wo, ho, nc) of dy
 * writes its k x k block of dx */
__kernel void cvk_avgpool_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                              int H, int W, int k, float inv, int NC) {
    const int wo = get_global_id(0), ho = get_global_id(1), nc = get_global_id(2);
    const int Wo = W / k, Ho = H / k;
    if (wo >= Wo || ho >= Ho || nc >= NC) return;
    const float g = inv * dy[dyo + ((long)nc * Ho + ho) * Wo + wo];
    __global float *p = dx + dxo + ((long)nc * H + (long)ho * k) * W + (long)wo * k;
    if (k == 2) {
        p[0] += g; p[1] += g; p[W] += g; p[W + 1] += g;
    } else {
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) p[(long)a * W + b] += g;
    }
}

/* x (NC, H, W) -> y (NC, kH, kW): y (=, or += with acc) x[nc, h/k, w/k];
 * work-item (w, h, nc) of x writes its k x k block of y */
__kernel void cvk_upsample_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                               int H, int W, int k, int acc, int NC) {
    const int w = get_global_id(0), h = get_global_id(1), nc = get_global_id(2);
    if (w >= W || h >= H || nc >= NC) return;
    const float v = x[xo + ((long)nc * H + h) * W + w];
    const long Wo = (long)W * k;
    __global float *p = y + yo + ((long)nc * H * k + (long)h * k) * Wo + (long)w * k;
    if (k == 2) {
        if (acc) { p[0] += v; p[1] += v; p[Wo] += v; p[Wo + 1] += v; }
        else { p[0] = v; p[1] = v; p[Wo] = v; p[Wo + 1] = v; }
    } else {
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                const long i = a * Wo + b;
                p[i] = acc ? p[i] + v : v;
            }
    }
}

/* dx (NC, H, W) += sum of the k x k block of dy (NC, kH, kW); work-item (w, h, nc) */
__kernel void cvk_upsample_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                               int H, int W, int k, int NC) {
    const int w = get_global_id(0), h = get_global_id(1), nc = get_global_id(2);
    if (w >= W || h >= H || nc >= NC) return;
    const long Wo = (long)W * k;
    __global const float *p = dy + dyo + ((long)nc * H * k + (long)h * k) * Wo + (long)w * k;
    float s;
    if (k == 2) {
        s = (p[0] + p[1]) + (p[Wo] + p[Wo + 1]);
    } else {
        s = 0.0f;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) s += p[a * Wo + b];
    }
    dx[dxo + ((long)nc * H + h) * W + w] += s;
}

/* Periodic padding by p: x (NC, H, W) -> y (NC, H+2p, W+2p),
 * y[h][w] = x[(h-p) mod H][(w-p) mod W]; work-item (w, h, nc) of y.  With
 * a crop of p after a zero-padded convolution it makes the convolution
 * circular, as the periodic boxes of the maps are. */
int cv_wrap(int i, int n) { const int r = i % n; return r < 0 ? r + n : r; }

__kernel void cvk_wrappad_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                              int H, int W, int p, int NC) {
    const int w = get_global_id(0), h = get_global_id(1), nc = get_global_id(2);
    const int Ho = H + 2 * p, Wo = W + 2 * p;
    if (w >= Wo || h >= Ho || nc >= NC) return;
    y[yo + ((long)nc * Ho + h) * Wo + w] = x[xo + ((long)nc * H + cv_wrap(h - p, H)) * W + cv_wrap(w - p, W)];
}

/* dx (NC, H, W) += the sum of dy over the padded positions that copy
 * x[h][w]: rows h + p + m H and columns w + p + l W inside the padded map;
 * work-item (w, h, nc) of dx (a gather: no two work-items write one value) */
__kernel void cvk_wrappad_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                              int H, int W, int p, int NC) {
    const int w = get_global_id(0), h = get_global_id(1), nc = get_global_id(2);
    if (w >= W || h >= H || nc >= NC) return;
    const int Ho = H + 2 * p, Wo = W + 2 * p;
    __global const float *d = dy + dyo + (long)nc * Ho * Wo;
    float s = 0.0f;
    for (int a = h + p - ((h + p) / H) * H; a < Ho; a += H)
        for (int b = w + p - ((w + p) / W) * W; b < Wo; b += W) s += d[(long)a * Wo + b];
    dx[dxo + ((long)nc * H + h) * W + w] += s;
}

/* Crop by p: x (NC, H, W) -> y (NC, H-2p, W-2p), y[h][w] = x[h+p][w+p];
 * work-item (w, h, nc) of y */
__kernel void cvk_crop_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                           int H, int W, int p, int NC) {
    const int w = get_global_id(0), h = get_global_id(1), nc = get_global_id(2);
    const int Ho = H - 2 * p, Wo = W - 2 * p;
    if (w >= Wo || h >= Ho || nc >= NC) return;
    y[yo + ((long)nc * Ho + h) * Wo + w] = x[xo + ((long)nc * H + h + p) * W + w + p];
}

/* dx[h+p][w+p] += dy[h][w]; work-item (w, h, nc) of dy */
__kernel void cvk_crop_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                           int H, int W, int p, int NC) {
    const int w = get_global_id(0), h = get_global_id(1), nc = get_global_id(2);
    const int Ho = H - 2 * p, Wo = W - 2 * p;
    if (w >= Wo || h >= Ho || nc >= NC) return;
    dx[dxo + ((long)nc * H + h + p) * W + w + p] += dy[dyo + ((long)nc * Ho + h) * Wo + w];
}

/* Channel blocks (concat, slice): y[yo + n*ys + i] (=, or += with acc)
 * x[xo + n*xs + i] for i < L, n < N, work-item (i, n); the offsets carry
 * the first channel of the block times H*W, the strides are C*H*W of each
 * side.  No division per element. */
__kernel void cvk_chan_copy(__global const float *x, ulong xo, long xs, __global float *y, ulong yo, long ys,
                            long L, int acc) {
    const long n = get_global_id(1);
    __global const float *s = x + xo + n * xs;
    __global float *d = y + yo + n * ys;
    if (acc) CV_ELEMS(i, L) d[i] += s[i];
    else CV_ELEMS(i, L) d[i] = s[i];
}

/* y = g[c] x + b[c], x (N, C, HW); work-item (i, n*C + c) */
__kernel void cvk_affine_fwd(__global const float *x, ulong xo, __global const float *g, ulong go,
                             __global const float *b, ulong bo, __global float *y, ulong yo,
                             int C, long HW, int NC) {
    const int nc = get_global_id(1);
    if (nc >= NC) return;
    const float gc = g[go + nc % C], bc = b[bo + nc % C];
    const long at = (long)nc * HW;
    CV_ELEMS(i, HW) y[yo + at + i] = gc * x[xo + at + i] + bc;
}

/* dx += g[c] dy (dg, db come from the per-channel reduction in reduce.cl) */
__kernel void cvk_affine_bwd(__global const float *g, ulong go, __global const float *dy, ulong dyo,
                             __global float *dx, ulong dxo, int C, long HW, int NC) {
    const int nc = get_global_id(1);
    if (nc >= NC) return;
    const float gc = g[go + nc % C];
    const long at = (long)nc * HW;
    CV_ELEMS(i, HW) dx[dxo + at + i] += gc * dy[dyo + at + i];
}
