/* pk.cl -- power-spectrum kernels (see src/analysis/cv_pk.h for the convention):
 * the per-map delta transform (a level estimate and an elementwise shift),
 * and the shell binning of Re(a conj(b)) over
 * the half-plane output of a batched real-to-complex clFFT transform.
 * Sums are compensated (Kahan) in float. */

/* log10 by exponent extraction and the atanh series of the mantissa
 * (m in [sqrt(1/2), sqrt(2)), |t| <= 0.172, terms to t^11: error a few
 * float ulp), subnormals rescaled; x = 0 gives -Inf, +Inf gives +Inf, and
 * x < 0 or NaN gives NaN, as log10.  Branch-free so that pocl vectorises
 * it; hand-written because pocl's log10 is an order of magnitude slower
 * than the rest of the kernel (on GPUs both are fast). */
static inline float pk_log10(float x) {
    const int sub = x < FLT_MIN;
    const float y = sub ? x * 16777216.0f : x;                 /* 2^24 */
    const int bits = as_int(y);
    int e = ((bits >> 23) & 0xff) - 127 - (sub ? 24 : 0);
    float m = as_float((bits & 0x007fffff) | 0x3f800000);      /* [1, 2) */
    const int hi = m > 1.41421356f;
    m = hi ? 0.5f * m : m;
    e += hi;
    const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    const float p = t * (2.0f + t2 * (0.666666667f + t2 * (0.4f + t2 * (0.285714286f + t2 * (0.222222222f + t2 * 0.181818182f)))));
    const float r = (float)e * 0.301029996f + p * 0.434294482f;
    return x > 0.0f && x <= FLT_MAX ? r : x == 0.0f ? -INFINITY : x == INFINITY ? INFINITY : NAN;
}

/* A rough per-plane level c[plane]: the mean of transform(x) over a
 * strided sample of at most 1024 pixels (one work-item per plane).  It is
 * subtracted before the FFT only to keep float32 rounding small: a
 * constant changes nothing but the DC mode, which is not counted.
 *   mode 0: transform = log10      modes 1, 2: identity */
__kernel void cvk_pk_level(__global const float *x, ulong off, int npix, int n_planes, int mode, __global float *c) {
    const int plane = (int)get_global_id(0);
    if (plane >= n_planes) return;
    __global const float *p = x + off + (long)plane * npix;
    const int step = npix > 1024 ? npix / 1024 : 1;
    float s = 0.0f;
    int n = 0;
    for (int i = 0; i < npix; i += step, n++) s += mode == 0 ? pk_log10(p[i]) : p[i];
    c[plane] = s / (float)n;
}

/* Elementwise, global size (npix, n_planes), c = c[plane]:
 *   mode 0: x = log10(x) - c     mode 1: x = x / c - 1     mode 2: x = x - c
 * (mode 1 keeps values near 1 whatever the units, so |F|^2 stays far from
 * float overflow; the exact mean comes back through the DC mode).  The
 * plane is the second global id: no integer division per element. */
__kernel void cvk_pk_shift(__global float *x, ulong off, int npix, int n_planes, int mode, __global const float *c) {
    const int i = (int)get_global_id(0), plane = (int)get_global_id(1);
    if (i >= npix || plane >= n_planes) return;
    __global float *p = x + off + (long)plane * npix;
    const float v = p[i], l = c[plane];
    p[i] = mode == 0 ? pk_log10(v) - l : mode == 1 ? v / l - 1.0f : v - l;
}

/* out[m, sp, s] = norm[s] * sum over modes j of shell s of Re(A_j conj(B_j)),
 * A, B the planes (map m, channel pairs[2 sp]) and (m, pairs[2 sp + 1]) of
 * f: (n_maps, n_chan, plane) complex interleaved, plane = N (N/2+1).
 * mode 1 (overdensity, x / mean - 1): the planes hold x / c - 1, so the
 * sum is divided by r_a r_b, r = mean / c = 1 + Re F(0) / npix (NaN unless
 * c > 0 and r > 0).
 * Global size (n_shell, n_spec, n_maps). */
__kernel void cvk_pk_bin(__global const float *f, ulong foff,
                         __global const int *order, __global const int *start,
                         __global const float *norm, __global const int *pairs,
                         int n_chan, int n_shell, int n_spec, int n_maps, long plane,
                         int mode, __global const float *c, int npix,
                         __global float *out, ulong ooff) {
    const int s = (int)get_global_id(0), sp = (int)get_global_id(1), m = (int)get_global_id(2);
    if (s >= n_shell || sp >= n_spec || m >= n_maps) return;
    const int pa = m * n_chan + pairs[2 * sp], pb = m * n_chan + pairs[2 * sp + 1];
    __global const float *A = f + foff + 2 * (long)pa * plane;
    __global const float *B = f + foff + 2 * (long)pb * plane;
    float sum = 0.0f, comp = 0.0f;
    const int j1 = start[s + 1];
    for (int j = start[s]; j < j1; j++) {
        const long q = 2 * (long)order[j];
        float v = A[q] * B[q] + A[q + 1] * B[q + 1];
        float y = v - comp, t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    float scale = norm[s];
    if (mode == 1) {
        const float ra = 1.0f + A[0] / (float)npix, rb = 1.0f + B[0] / (float)npix;
        scale = c[pa] > 0.0f && c[pb] > 0.0f && ra > 0.0f && rb > 0.0f ? scale / (ra * rb) : NAN;
    }
    out[ooff + ((long)m * n_spec + sp) * n_shell + s] = sum * scale;
}

/* Every spectrum of a map at once, for n_chan <= PK_MAXC: each mode's C
 * values are loaded once for all C (C + 1) / 2 products (the per-spectrum
 * kernel above loads them C + 1 times).  Same output, order and scaling as
 * cvk_pk_bin; modes are summed two at a time into blocks of 32, blocks
 * into the total (float; the error grows as 32 + n/32, not n).
 * Global size (n_shell, n_maps). */
#define PK_MAXC 8
__kernel void cvk_pk_bin_all(__global const float *f, ulong foff,
                             __global const int *order, __global const int *start,
                             __global const float *norm,
                             int n_chan, int n_shell, int n_maps, long plane,
                             int mode, __global const float *c, int npix,
                             __global float *out, ulong ooff) {
    const int s = (int)get_global_id(0), m = (int)get_global_id(1);
    if (s >= n_shell || m >= n_maps) return;
    const int n_spec = n_chan * (n_chan + 1) / 2;
    __global const float *base = f + foff + 2 * (long)m * n_chan * plane;
    float acc[PK_MAXC * (PK_MAXC + 1) / 2], blk[PK_MAXC * (PK_MAXC + 1) / 2];
    for (int k = 0; k < n_spec; k++) acc[k] = blk[k] = 0.0f;
    const int j0 = start[s], j1 = start[s + 1];
    for (int j = j0; j < j1; j += 2) {
        if (((j - j0) & 31) == 0)                     /* two-level sum: blocks of 32 modes */
            for (int k = 0; k < n_spec; k++) { acc[k] += blk[k]; blk[k] = 0.0f; }
        const int two = j + 1 < j1;
        const long q = 2 * (long)order[j], r = two ? 2 * (long)order[j + 1] : q;
        float re[PK_MAXC], im[PK_MAXC], re2[PK_MAXC], im2[PK_MAXC];
        for (int a = 0; a < n_chan; a++) {
            __global const float *P = base + 2 * a * plane;
            re[a] = P[q]; im[a] = P[q + 1];
            re2[a] = two ? P[r] : 0.0f; im2[a] = two ? P[r + 1] : 0.0f;
        }
        int k = 0;
        for (int a = 0; a < n_chan; a++, k++)
            blk[k] += (re[a] * re[a] + im[a] * im[a]) + (re2[a] * re2[a] + im2[a] * im2[a]);
        for (int a = 0; a < n_chan; a++)
            for (int b = a + 1; b < n_chan; b++, k++)
                blk[k] += (re[a] * re[b] + im[a] * im[b]) + (re2[a] * re2[b] + im2[a] * im2[b]);
    }
    for (int k = 0; k < n_spec; k++) acc[k] += blk[k];
    float ratio[PK_MAXC];
    for (int a = 0; a < n_chan; a++) {
        const int pa = m * n_chan + a;
        const float r0 = 1.0f + base[2 * a * plane] / (float)npix;
        ratio[a] = mode != 1 ? 1.0f : c[pa] > 0.0f && r0 > 0.0f ? r0 : NAN;
    }
    int k = 0;
    __global float *o = out + ooff + (long)m * n_spec * n_shell + s;
    for (int a = 0; a < n_chan; a++, k++) o[(long)k * n_shell] = acc[k] * (norm[s] / (ratio[a] * ratio[a]));
    for (int a = 0; a < n_chan; a++)
        for (int b = a + 1; b < n_chan; b++, k++) o[(long)k * n_shell] = acc[k] * (norm[s] / (ratio[a] * ratio[b]));
}
