/* util.cl -- copies and fills that clEnqueue* cannot express. */

/* dst[doff + i] = src[soff + i] for i < n */
__kernel void cvk_copy(__global const float *src, ulong soff, __global float *dst, ulong doff, long n) {
    CV_ELEMS(i, n) {
        dst[doff + i] = src[soff + i];
    }
}

/* x[off + i] = v for i < n (used to poison guard bands in tests) */
__kernel void cvk_fill(__global float *x, ulong off, long n, float v) {
    CV_ELEMS(i, n) {
        x[off + i] = v;
    }
}

/* dx[dxoff + i] += dy[dyoff + i] for i < n: backward of copy, and the
 * accumulate-into-gradient primitive. */
__kernel void cvk_copy_bwd(__global const float *dy, ulong dyoff, __global float *dx, ulong dxoff, long n) {
    CV_ELEMS(i, n) {
        dx[dxoff + i] += dy[dyoff + i];
    }
}
