/* pk.cl -- power-spectrum kernels (see src/cv_pk.h for the convention):
 * the per-map delta transform, and the shell binning of Re(a conj(b)) over
 * the half-plane output of a batched real-to-complex clFFT transform.
 * Sums are compensated (Kahan) in float. */

/* One work-group per plane of npix floats, in place; the work-group size
 * is a power of two and `scratch` holds one float per work-item.
 *   mode 0: x = log10(x) - mean(log10 x)      mode 1: x = x / mean(x) - 1
 *   mode 2: x = x - mean(x)
 * A value <= 0 under mode 0 gives NaN or -Inf, which the host detects in
 * the spectra. */
__kernel void cvk_pk_delta(__global float *x, ulong off, int npix, int mode, __local float *scratch) {
    const long plane = (long)get_group_id(0);
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    __global float *p = x + off + plane * (long)npix;
    float s = 0.0f, comp = 0.0f;
    for (int i = lid; i < npix; i += lsz) {
        float v = p[i];
        if (mode == 0) { v = log10(v); p[i] = v; }
        float y = v - comp, t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = lsz / 2; h > 0; h >>= 1) {
        if (lid < h) scratch[lid] += scratch[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float mean = scratch[0] / (float)npix;
    if (mode == 1 && !(mean > 0.0f)) mean = NAN;     /* the host reports it */
    for (int i = lid; i < npix; i += lsz) {
        float v = p[i];
        p[i] = mode == 1 ? v / mean - 1.0f : v - mean;
    }
}

/* out[m, sp, s] = norm[s] * sum over modes j of shell s of Re(A_j conj(B_j)),
 * A, B the planes (map m, channel pairs[2 sp]) and (m, pairs[2 sp + 1]) of
 * f: (n_maps, n_chan, plane) complex interleaved, plane = N (N/2+1).
 * Global size (n_shell, n_spec, n_maps). */
__kernel void cvk_pk_bin(__global const float *f, ulong foff,
                         __global const int *order, __global const int *start,
                         __global const float *norm, __global const int *pairs,
                         int n_chan, int n_shell, int n_spec, int n_maps, long plane,
                         __global float *out, ulong ooff) {
    const int s = (int)get_global_id(0), sp = (int)get_global_id(1), m = (int)get_global_id(2);
    if (s >= n_shell || sp >= n_spec || m >= n_maps) return;
    __global const float *A = f + foff + 2 * ((long)m * n_chan + pairs[2 * sp]) * plane;
    __global const float *B = f + foff + 2 * ((long)m * n_chan + pairs[2 * sp + 1]) * plane;
    float sum = 0.0f, comp = 0.0f;
    const int j1 = start[s + 1];
    for (int j = start[s]; j < j1; j++) {
        const long q = 2 * (long)order[j];
        float v = A[q] * B[q] + A[q + 1] * B[q + 1];
        float y = v - comp, t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    out[ooff + ((long)m * n_spec + sp) * n_shell + s] = sum * norm[s];
}
