/* reduce.cl -- deterministic two-stage reductions (src/ops/cv_op_reduce.c).
 *
 * A reduction has S segments; segment s is L elements laid out as rows of
 * `inner` contiguous floats, row r at s*seg_stride + r*row_stride (a
 * per-sample sum is one row per segment, a per-channel sum over (N, HW) is
 * N rows of HW).  Stage 1 (cvk_reduce_part): G work-groups per segment,
 * each work-item strides through the segment with a Kahan-compensated
 * float sum, then a fixed local tree gives one partial per group.  Stage 2
 * (cvk_reduce_final): one work-group per segment sums its G partials the
 * same way.  No atomics: for a given G and work-group size the order of
 * every addition is fixed, so results are bit-reproducible run to run.
 * CPU devices run stage 1 as cvk_reduce_part_run (contiguous parts,
 * vector lanes), the same G partials in another order of addition.
 * Work-groups must be a power of two <= CV_RED_WG. */

#define CV_RED_WG 256

#define CV_KAHAN_ADD_T(T, sum, comp, v) do { T t_ = (v) - (comp), u_ = (sum) + t_; \
        (comp) = (u_ - (sum)) - t_; (sum) = u_; } while (0)
#define CV_KAHAN_ADD(sum, comp, v) CV_KAHAN_ADD_T(float, sum, comp, v)

/* Local tree over buf[0..wg); the result ends in buf[0]. */
#define CV_LOCAL_TREE(buf, lid, wg) do { barrier(CLK_LOCAL_MEM_FENCE); \
        for (int h_ = (wg) / 2; h_ > 0; h_ >>= 1) { \
            if ((lid) < h_) (buf)[lid] += (buf)[(lid) + h_]; \
            barrier(CLK_LOCAL_MEM_FENCE); } } while (0)

/* mode 0: sum x; 1: sum x^2; 2: sum x*y (y in the layout of x).
 * Global size (G * wg, S); part[po + s*G + g] = partial sum. */
__kernel void cvk_reduce_part(__global const float *x, ulong xo, __global const float *y, ulong yo, int mode,
                              long L, long inner, long row_stride, long seg_stride,
                              __global float *part, ulong po) {
    __local float buf[CV_RED_WG];
    long g = get_group_id(0), G = get_num_groups(0), s = get_group_id(1);
    int lid = (int)get_local_id(0), wg = (int)get_local_size(0);
    float sum = 0.0f, comp = 0.0f;
    long base = s * seg_stride;
    if (inner >= L) {                              /* one row: contiguous */
        __global const float *px = x + xo + base;
        __global const float *py = y + yo + base;
        for (long i = g * wg + lid; i < L; i += G * wg) {
            float v = px[i];
            if (mode == 1) v = v * v;
            else if (mode == 2) v = v * py[i];
            CV_KAHAN_ADD(sum, comp, v);
        }
    } else {
        for (long i = g * wg + lid; i < L; i += G * wg) {
            long a = base + (i / inner) * row_stride + i % inner;
            float v = x[xo + a];
            if (mode == 1) v = v * v;
            else if (mode == 2) v = v * y[yo + a];
            CV_KAHAN_ADD(sum, comp, v);
        }
    }
    buf[lid] = sum;
    CV_LOCAL_TREE(buf, lid, wg);
    if (lid == 0) part[po + s * G + g] = buf[0];
}

/* Stage 1 for CPU devices (elem_chunk > 1), the same contract with
 * work-groups of one: work-item (g, s) sums the g-th of G contiguous
 * parts of segment s (rows split where they end) on eight float lanes,
 * each Kahan-compensated, and writes part[po + s*G + g].  The strided
 * form of cvk_reduce_part (one element per work-item and step, a serial
 * Kahan chain, a barrier tree) ran at 16 cycles an element on PoCL. */
__kernel void cvk_reduce_part_run(__global const float *x, ulong xo, __global const float *y, ulong yo, int mode,
                                  long L, long inner, long row_stride, long seg_stride,
                                  __global float *part, ulong po) {
    const long g = get_global_id(0), G = get_global_size(0), s = get_global_id(1);
    const long a = L * g / G, b = L * (g + 1) / G;
    float8 s8 = (float8)(0.0f), c8 = (float8)(0.0f);
    float sum = 0.0f, comp = 0.0f;
    for (long i = a; i < b;) {
        const long r = i / inner, k = i - r * inner, run = min(inner - k, b - i);
        const long at = s * seg_stride + r * row_stride + k;
        __global const float *px = x + xo + at, *py = y + yo + at;
        long j = 0;
        for (; j + 8 <= run; j += 8) {
            float8 v = vload8(0, px + j);
            if (mode == 1) v = v * v;
            else if (mode == 2) v = v * vload8(0, py + j);
            CV_KAHAN_ADD_T(float8, s8, c8, v);
        }
        for (; j < run; j++) {
            float v = px[j];
            if (mode == 1) v = v * v;
            else if (mode == 2) v = v * py[j];
            CV_KAHAN_ADD(sum, comp, v);
        }
        i += run;
    }
    const float8 t8 = s8 - c8;
    const float4 t4 = t8.lo + t8.hi;
    part[po + s * G + g] = ((t4.s0 + t4.s1) + (t4.s2 + t4.s3)) + (sum - comp);
}

/* One work-group per segment s: out[oo + s*ostride] (=, or += with acc)
 * scale * sum of part[po + s*G .. + G). */
__kernel void cvk_reduce_final(__global const float *part, ulong po, int G, __global float *out, ulong oo,
                               long ostride, float scale, int acc) {
    __local float buf[CV_RED_WG];
    long s = get_group_id(0);
    int lid = (int)get_local_id(0), wg = (int)get_local_size(0);
    float sum = 0.0f, comp = 0.0f;
    for (int j = lid; j < G; j += wg) CV_KAHAN_ADD(sum, comp, part[po + s * G + j]);
    buf[lid] = sum;
    CV_LOCAL_TREE(buf, lid, wg);
    if (lid == 0) {
        float r = scale * buf[0];
        long a = oo + s * ostride;
        out[a] = acc ? out[a] + r : r;
    }
}

/* Backward of the per-sample sum: dx[i] += s dy[n] (dx = with set, for
 * dx's first writer); work-item (i, n), i < M. */
__kernel void cvk_sum_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo, long M, float s,
                          int set) {
    const long i = CV_GID0, n = get_global_id(1);
    if (i >= M) return;
    const float v = s * dy[dyo + n];
    __global float *d = dx + dxo + n * M + i;
    *d = set ? v : *d + v;
}
