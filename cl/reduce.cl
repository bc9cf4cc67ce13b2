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
 * Work-groups must be a power of two <= CV_RED_WG. */

#define CV_RED_WG 256

#define CV_KAHAN_ADD(sum, comp, v) do { float t_ = (v) - (comp), u_ = (sum) + t_; \
        (comp) = (u_ - (sum)) - t_; (sum) = u_; } while (0)

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
