/* conv2d.cl -- 2-D convolution kernels (k = 1 or 3, stride 1, zero padding
 * k/2) for src/ops/cv_op_conv.c: the DIRECT algorithm (tiled kernels with
 * local-memory tiles and several outputs per work-item), the helpers of
 * the GEMM algorithm (im2col, col2im, partial-sum reduction) and the bias.
 *
 * Layouts: x (N, Ci, H, W), w (Co, Ci, K, K), b (Co), y (N, Co, H, W),
 * float32, contiguous; every buffer argument is followed by its offset in
 * floats.  "gelu" means the op sees GELU(x) = 0.5 x (1 + erf(x / sqrt 2))
 * instead of x.  Invariant: backward kernels accumulate (+=) into dx and
 * dw; forward kernels overwrite y unless `accumulate` is set.
 *
 * Work-groups of the tiled kernels have a fixed shape (reqd_work_group_size)
 * so that PoCL compiles one work-group function and GPUs can size their
 * register files; the host rounds global sizes up to whole tiles and every
 * kernel starts with a bounds check (whole-group for the tiled kernels,
 * since they contain barriers; per element inside). */

/* ---- tile geometry (host side mirrors these in cv_op_conv.c) ---- */
#define CT_TX  8                  /* work-items across a tile */
#define CT_TY  8                  /* work-items (rows) down a tile */
#define CT_PX  4                  /* consecutive pixels per work-item */
#define CT_TW  (CT_TX * CT_PX)    /* tile width in pixels: 32 */
#define CT_COB3 16                /* output channels per work-group and work-item, k = 3 */
#define CT_COB1 32                /* k = 1: each loaded input feeds only COB FMAs, so more */
#define CT_COBMAX 32              /* (COB 8 -> 16 / 32 halved the PoCL times, bench-conv) */
#define CT_CIB 8                  /* input channels per local-memory slab */
#define CT_LW  (CT_TW + 2)        /* widest halo tile (k = 3) */
#define CT_LH  (CT_TY + 2)

#define WB_CI   8                 /* backward-weight: input channels per group */
#define WB_CO   8                 /* output channels per group */
#define WB_ROWS 4                 /* rows per spatial chunk */
#define WB_COLS 32                /* columns per spatial chunk */

#define CV_SQRT1_2     0.70710678118654752f
#define CV_INV_SQRT2PI 0.39894228040143268f

/* GELU through the normal CDF: GELU(x) = x Phi(x), Phi(x) = erfc(-x/sqrt 2)/2,
 * with erfc from the Chebyshev fit of Numerical Recipes (erfcc: relative
 * error below 1.2e-7 for all arguments, i.e. float accuracy, the same as
 * the built-in erf).  Hand-written because PoCL's erf is a scalar libm
 * call about ten times slower than exp there (bench/bench-conv showed 60 ns
 * per element, dominating every conv with gelu_in); this form vectorises,
 * and evaluating erfc rather than 1 + erf keeps GELU's relative accuracy
 * for negative x (float vs double: below 5e-7 for x > -2, 6e-6 at x = -8;
 * see doc/conv.md). */
float conv_erfc_pos(float z) {                    /* erfc(z), z >= 0 */
    const float t = 1.0f / (1.0f + 0.5f * z);
    /* the polynomial by Estrin's scheme (see CONV_GELU_VEC below) */
    const float t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
    const float q0 = fma(t, 1.00002368f, -1.26551223f), q1 = fma(t, 0.09678418f, 0.37409196f);
    const float q2 = fma(t, 0.27886807f, -0.18628806f), q3 = fma(t, 1.48851587f, -1.13520398f);
    const float q4 = fma(t, 0.17087277f, -0.82215223f);
    const float p = fma(t8, q4, fma(t4, fma(t2, q3, q2), fma(t2, q1, q0)));
    return t * exp(p - z * z);
}

float conv_phi(float x) {                         /* normal CDF */
    const float e = 0.5f * conv_erfc_pos(fabs(x) * CV_SQRT1_2);
    return x >= 0.0f ? 1.0f - e : e;
}

float conv_gelu(float x) {
    return x * conv_phi(x);
}

/* d/dx GELU(x) = Phi(x) + x phi(x) */
float conv_gelu_grad(float x) {
    return conv_phi(x) + x * CV_INV_SQRT2PI * exp(-0.5f * x * x);
}

/* ---- DIRECT forward and backward-data ----------------------------------
 * One body for both: out[n, o, y, x] = sum_{c, kh, kw} wt(o, c, kh, kw) *
 * in[n, c, y + kh - P, x + kw - P].  Forward: in = x (GELU on load when
 * gelu), wt = w[o, c, kh, kw], out = y (+ b, += when accumulate).
 * Forward adds r[n, o, y, x] too when has_r (a residual input).
 * Backward-data: in = dy, wt = w[c, o, K-1-kh, K-1-kw] (the flipped,
 * transposed filter), out = dx += acc * GELU'(xg) (gelu = 1), acc * xg
 * (gelu = 2: xg already holds GELU'(x)) or acc (gelu = 0); with
 * accumulate = 0 the backward writes dx = ... instead (its first writer).
 * The weight element (o, c, t) is w[woff + o*sw_o + c*sw_i + (flip ? KK-1-t : t)].
 * Group (gx, gy, gz): a CT_TW x CT_TY pixel tile of image n = gz / ncob
 * for output channels (gz % ncob) * COB ..; each work-item keeps
 * COB x CT_PX accumulators (float4 across its 4 pixels). */
void conv_tile(const int K, const int COB, const int bwd,
               __global const float *in, ulong inoff,
               __global const float *w, ulong woff, long sw_o, long sw_i, int flip,
               __global const float *b, ulong boff, int has_b,
               __global const float *r, ulong roff, int has_r,
               __global float *out, ulong outoff,
               __global const float *xg, ulong xgoff,
               int N, int Cin, int Cout, int H, int W, int gelu, int accumulate,
               __local float *tile /* [CT_CIB][LH][LW] */, __local float *wt /* [COB][CT_CIB][KK] */) {
    const int P = K / 2, KK = K * K;
    const int LW = CT_TW + 2 * P, LH = CT_TY + 2 * P;
    const int ncob = (Cout + COB - 1) / COB;
    const int z = get_group_id(2);
    if (z >= N * ncob) return;                    /* uniform over the group */
    const int n = z / ncob, co0 = (z % ncob) * COB;
    const int lx = get_local_id(0), ly = get_local_id(1), lid = ly * CT_TX + lx;
    const int tx0 = get_group_id(0) * CT_TW, ty0 = get_group_id(1) * CT_TY;
    const long HW = (long)H * W;
    __global const float *inn = in + inoff + (long)n * Cin * HW;

    float4 acc[CT_COBMAX];            /* only [0, COB) is used; COB is a constant
                                         after inlining, so the loops over o unroll
                                         and these stay in registers */
    for (int o = 0; o < COB; o++) acc[o] = (float4)(0.0f);

    for (int ci0 = 0; ci0 < Cin; ci0 += CT_CIB) {
        /* input slab: work-item (lx, ly) fills columns lx*PX .. +PX-1 (and
         * one of the 2P halo columns when lx < 2P) of rows ly, ly + TY, ...;
         * uniform trip counts and no divisions, so that PoCL vectorises it */
        for (int c = 0; c < CT_CIB; c++) {
            const int ci = ci0 + c;
            for (int rr = 0; rr < (CT_LH + CT_TY - 1) / CT_TY; rr++) {
                const int r = ly + rr * CT_TY;
                if (r >= LH) break;
                const int gy = ty0 + r - P;
                const int rowok = ci < Cin && gy >= 0 && gy < H;
                __global const float *src = inn + (long)ci * HW + (long)gy * W;
                __local float *dst = tile + (c * LH + r) * LW;
                for (int j = 0; j <= CT_PX; j++) {
                    const int q = j < CT_PX ? lx * CT_PX + j : CT_TW + lx;
                    if (j == CT_PX && lx >= 2 * P) break;
                    const int gx = tx0 + q - P;
                    float v = 0.0f;
                    if (rowok && gx >= 0 && gx < W) {
                        v = src[gx];
                        if (gelu && !bwd) v = conv_gelu(v);
                    }
                    dst[q] = v;
                }
            }
        }
        for (int i = lid; i < COB * CT_CIB * KK; i += CT_TX * CT_TY) {
            int o = i / (CT_CIB * KK), c = (i / KK) % CT_CIB, t = i % KK;
            float v = 0.0f;
            if (co0 + o < Cout && ci0 + c < Cin)
                v = w[woff + (co0 + o) * sw_o + (ci0 + c) * sw_i + (flip ? KK - 1 - t : t)];
            wt[i] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int cmax = min(CT_CIB, Cin - ci0);
        for (int c = 0; c < cmax; c++) {
            for (int kh = 0; kh < K; kh++) {
                __local const float *row = tile + (c * LH + ly + kh) * LW + lx * CT_PX;
                float r0 = row[0], r1 = row[1], r2 = row[2], r3 = row[3];
                float r4 = K > 1 ? row[4] : 0.0f, r5 = K > 1 ? row[5] : 0.0f;
                float4 v0 = (float4)(r0, r1, r2, r3);
                float4 v1 = (float4)(r1, r2, r3, r4);
                float4 v2 = (float4)(r2, r3, r4, r5);
                __local const float *wr = wt + c * KK + kh * K;
                for (int o = 0; o < COB; o++) {
                    __local const float *wo = wr + o * CT_CIB * KK;
                    acc[o] = fma((float4)(wo[0]), v0, acc[o]);
                    if (K > 1) {
                        acc[o] = fma((float4)(wo[1]), v1, acc[o]);
                        acc[o] = fma((float4)(wo[2]), v2, acc[o]);
                    }
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    const int gy = ty0 + ly;
    if (gy >= H) return;                          /* after the last barrier */
    for (int o = 0; o < COB; o++) {
        const int co = co0 + o;
        if (co >= Cout) break;
        const float bias = has_b ? b[boff + co] : 0.0f;
        float a[CT_PX] = { acc[o].s0, acc[o].s1, acc[o].s2, acc[o].s3 };
        for (int j = 0; j < CT_PX; j++) {
            const int gx = tx0 + lx * CT_PX + j;
            if (gx >= W) break;
            const long idx = ((long)n * Cout + co) * HW + (long)gy * W + gx;
            if (!bwd) {
                float v = a[j] + bias;
                if (has_r) v += r[roff + idx];
                out[outoff + idx] = accumulate ? out[outoff + idx] + v : v;
            } else {
                float v = a[j];
                if (gelu == 1) v *= conv_gelu_grad(xg[xgoff + idx]);
                else if (gelu == 2) v *= xg[xgoff + idx];      /* GELU'(x) precomputed */
                out[outoff + idx] = accumulate ? out[outoff + idx] + v : v;
            }
        }
    }
}

#define CONV_TILE_ARGS                                                                    \
    __global const float *in, ulong inoff,                                                \
    __global const float *w, ulong woff, long sw_o, long sw_i, int flip,                  \
    __global const float *b, ulong boff, int has_b,                                       \
    __global const float *r, ulong roff, int has_r,                                       \
    __global float *out, ulong outoff, __global const float *xg, ulong xgoff,             \
    int N, int Cin, int Cout, int H, int W, int gelu, int accumulate
#define CONV_TILE_PASS in, inoff, w, woff, sw_o, sw_i, flip, b, boff, has_b, r, roff, has_r, \
    out, outoff, xg, xgoff, N, Cin, Cout, H, W, gelu, accumulate

__kernel __attribute__((reqd_work_group_size(CT_TX, CT_TY, 1)))
void cvk_conv2d_fwd_k1(CONV_TILE_ARGS) {
    __local float tile[CT_CIB * CT_TY * CT_TW], wt[CT_COB1 * CT_CIB];
    conv_tile(1, CT_COB1, 0, CONV_TILE_PASS, tile, wt);
}

__kernel __attribute__((reqd_work_group_size(CT_TX, CT_TY, 1)))
void cvk_conv2d_fwd_k3(CONV_TILE_ARGS) {
    __local float tile[CT_CIB * CT_LH * CT_LW], wt[CT_COB3 * CT_CIB * 9];
    conv_tile(3, CT_COB3, 0, CONV_TILE_PASS, tile, wt);
}

__kernel __attribute__((reqd_work_group_size(CT_TX, CT_TY, 1)))
void cvk_conv2d_bwd_data_k1(CONV_TILE_ARGS) {
    __local float tile[CT_CIB * CT_TY * CT_TW], wt[CT_COB1 * CT_CIB];
    conv_tile(1, CT_COB1, 1, CONV_TILE_PASS, tile, wt);
}

__kernel __attribute__((reqd_work_group_size(CT_TX, CT_TY, 1)))
void cvk_conv2d_bwd_data_k3(CONV_TILE_ARGS) {
    __local float tile[CT_CIB * CT_LH * CT_LW], wt[CT_COB3 * CT_CIB * 9];
    conv_tile(3, CT_COB3, 1, CONV_TILE_PASS, tile, wt);
}

/* ---- DIRECT backward-weight --------------------------------------------
 * dw[co, ci, kh, kw] += sum_{n, y, x} dy[n, co, y, x] * a(x[n, ci, y+kh-P, x+kw-P]).
 * Group (gx, gy, gz) = (input-channel block, output-channel block, split s);
 * work-item (i, j) owns (ci0 + i, co0 + j) and its KK taps, as float4
 * partial sums over 4 pixels.  Split s walks the spatial chunks
 * (n, WB_ROWS rows, WB_COLS columns) s, s + S, s + 2S, ...  With S == 1 the
 * result is added into dw; otherwise it is written to partial block s
 * (dst + s * Co*Ci*KK) and cvk_conv2d_reduce adds the S blocks into dw. */
void conv_wgrad(const int K,
                __global const float *x, ulong xoff, __global const float *dy, ulong dyoff,
                __global float *dst, ulong dstoff, int N, int Ci, int H, int W, int Co, int gelu, int S,
                __local float *xt /* [WB_CI][ROWS+2P][COLS+2P] */, __local float *dt /* [WB_CO][ROWS][COLS] */) {
    const int P = K / 2, KK = K * K;
    const int XW = WB_COLS + 2 * P, XH = WB_ROWS + 2 * P;
    const int ci0 = get_group_id(0) * WB_CI, co0 = get_group_id(1) * WB_CO, s = get_group_id(2);
    if (ci0 >= Ci || co0 >= Co || s >= S) return;          /* uniform over the group */
    const int li = get_local_id(0), lj = get_local_id(1), lid = lj * WB_CI + li;
    const long HW = (long)H * W;
    const int nty = (H + WB_ROWS - 1) / WB_ROWS, ntx = (W + WB_COLS - 1) / WB_COLS;
    const int T = N * nty * ntx;

    float4 acc[9];
    for (int t = 0; t < 9; t++) acc[t] = (float4)(0.0f);

    for (int ch = s; ch < T; ch += S) {
        const int n = ch / (nty * ntx), ty0 = (ch / ntx) % nty * WB_ROWS, tx0 = ch % ntx * WB_COLS;
        /* tiles: work-item (li, lj) fills columns li*4 .. li*4+3 (and halo
         * column 32 + li when li < 2P) of rows lj, lj + 8, ... (as conv_tile) */
        for (int c = 0; c < WB_CI; c++) {
            const int ci = ci0 + c, co = co0 + c;
            for (int rr = 0; rr < (WB_ROWS + 2 + WB_CO - 1) / WB_CO; rr++) {
                const int r = lj + rr * WB_CO;
                if (r >= XH) break;
                const int gy = ty0 + r - P;
                const int rowok = ci < Ci && gy >= 0 && gy < H;
                __global const float *src = x + xoff + ((long)n * Ci + ci) * HW + (long)gy * W;
                __local float *dst = xt + (c * XH + r) * XW;
                for (int j = 0; j <= 4; j++) {
                    const int q = j < 4 ? li * 4 + j : WB_COLS + li;
                    if (j == 4 && li >= 2 * P) break;
                    const int gx = tx0 + q - P;
                    float v = 0.0f;
                    if (rowok && gx >= 0 && gx < W) {
                        v = src[gx];
                        if (gelu) v = conv_gelu(v);
                    }
                    dst[q] = v;
                }
                if (r < WB_ROWS) {
                    const int dyy = ty0 + r;
                    const int dok = co < Co && dyy < H;
                    __global const float *ds = dy + dyoff + ((long)n * Co + co) * HW + (long)dyy * W;
                    __local float *dd = dt + (c * WB_ROWS + r) * WB_COLS;
                    for (int j = 0; j < 4; j++) {
                        const int q = li * 4 + j, gx = tx0 + q;
                        dd[q] = dok && gx < W ? ds[gx] : 0.0f;
                    }
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = 0; r < WB_ROWS; r++) {
            for (int q = 0; q < WB_COLS; q += 4) {
                const float4 d = vload4(0, dt + (lj * WB_ROWS + r) * WB_COLS + q);
                for (int kh = 0; kh < K; kh++) {
                    __local const float *row = xt + (li * XH + r + kh) * XW + q;
                    float r0 = row[0], r1 = row[1], r2 = row[2], r3 = row[3];
                    acc[kh * K] = fma(d, (float4)(r0, r1, r2, r3), acc[kh * K]);
                    if (K > 1) {
                        float r4 = row[4], r5 = row[5];
                        acc[kh * K + 1] = fma(d, (float4)(r1, r2, r3, r4), acc[kh * K + 1]);
                        acc[kh * K + 2] = fma(d, (float4)(r2, r3, r4, r5), acc[kh * K + 2]);
                    }
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    const int ci = ci0 + li, co = co0 + lj;
    if (ci >= Ci || co >= Co) return;                     /* after the last barrier */
    const long nw = (long)Co * Ci * KK;
    __global float *o = dst + dstoff + (S > 1 ? s * nw : 0) + ((long)co * Ci + ci) * KK;
    for (int t = 0; t < KK; t++) {
        float v = (acc[t].s0 + acc[t].s1) + (acc[t].s2 + acc[t].s3);
        if (S > 1) o[t] = v; else o[t] += v;
    }
}

#define CONV_WGRAD_ARGS __global const float *x, ulong xoff, __global const float *dy, ulong dyoff, \
    __global float *dst, ulong dstoff, int N, int Ci, int H, int W, int Co, int gelu, int S

__kernel __attribute__((reqd_work_group_size(WB_CI, WB_CO, 1)))
void cvk_conv2d_bwd_weight_k1(CONV_WGRAD_ARGS) {
    __local float xt[WB_CI * WB_ROWS * WB_COLS], dt[WB_CO * WB_ROWS * WB_COLS];
    conv_wgrad(1, x, xoff, dy, dyoff, dst, dstoff, N, Ci, H, W, Co, gelu, S, xt, dt);
}

__kernel __attribute__((reqd_work_group_size(WB_CI, WB_CO, 1)))
void cvk_conv2d_bwd_weight_k3(CONV_WGRAD_ARGS) {
    __local float xt[WB_CI * (WB_ROWS + 2) * (WB_COLS + 2)], dt[WB_CO * WB_ROWS * WB_COLS];
    conv_wgrad(3, x, xoff, dy, dyoff, dst, dstoff, N, Ci, H, W, Co, gelu, S, xt, dt);
}

/* out[i] = GELU(x[i]) (or GELU'(x[i]) when deriv), i < n: taken once into
 * the scratch on CPU devices. */
__kernel void cvk_conv2d_gelu(__global const float *x, ulong xoff, __global float *out, ulong ooff, long n, int deriv) {
    CV_ELEMS(i, n) {
        const float v = x[xoff + i];
        out[ooff + i] = deriv ? conv_gelu_grad(v) : conv_gelu(v);
    }
}

/* dw[i] += sum_{s < S} part[s * n + i], i < n (fixed order: deterministic). */
__kernel void cvk_conv2d_reduce(__global const float *part, ulong poff, __global float *dw, ulong dwoff,
                                long n, int S) {
    long i = CV_GID0;
    if (i >= n) return;
    float v = 0.0f;
    for (int s = 0; s < S; s++) v += part[poff + s * n + i];
    dw[dwoff + i] += v;
}

/* ---- GEMM helpers --------------------------------------------------------
 * A chunk is nb images n0 .. n0+nb-1 and rows r0 .. r0+nr-1 of each; its
 * np = nr * W pixels form the columns of the matrices below.
 *
 * im2col: col[b][(c*KK + t)][p] = a(x[n0+b, c, y + kh - P, x + kw - P]) with
 * p = (y - r0) * W + x, t = kh*K + kw, zero outside the image, a = GELU or
 * identity (K = 1 with gelu is a plain GELU copy).  One work-item per
 * source pixel (iy, ix) of the chunk's halo-extended window, so GELU is
 * evaluated once per pixel (not KK times); it scatters the value to the
 * KK column entries that read it.  Work-item (i, j): ix = i - P,
 * j = (b * Ci + c) * (nr + 2P) + (iy - r0 + P). */
__kernel void cvk_conv2d_im2col(__global const float *x, ulong xoff, __global float *col, ulong coff,
                                int Ci, int H, int W, int K, int n0, int nb, int r0, int nr, int gelu) {
    const int P = K / 2, KK = K * K, WE = W + 2 * P, HE = nr + 2 * P;
    const int i = get_global_id(0), j = get_global_id(1);
    if (i >= WE || j >= nb * Ci * HE) return;
    const int bc = j / HE, iy = r0 - P + (j - bc * HE), ix = i - P;
    const int c = bc % Ci, bb = bc / Ci;
    float v = 0.0f;
    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
        v = x[xoff + ((long)(n0 + bb) * Ci + c) * H * W + (long)iy * W + ix];
        if (gelu) v = conv_gelu(v);
    }
    const long np = (long)nr * W;
    __global float *cb = col + coff + (long)bc * KK * np;
    for (int kh = 0; kh < K; kh++) {
        const int oy = iy - kh + P;
        if (oy < r0 || oy >= r0 + nr) continue;
        for (int kw = 0; kw < K; kw++) {
            const int ox = ix - kw + P;
            if (ox < 0 || ox >= W) continue;
            cb[(kh * K + kw) * np + (long)(oy - r0) * W + ox] = v;
        }
    }
}

/* col2im (gather, no atomics): for dx rows y in [max(0, r0-P), min(H, r0+nr+P)),
 * dx[n0+b, c, y, x] += a'(x) * sum over taps (kh, kw) whose source pixel
 * (oy, ox) = (y + P - kh, x + P - kw) lies in the chunk (r0 <= oy < r0+nr,
 * 0 <= ox < W) of dcol[b][(c*KK + t)][(oy - r0) * W + ox].  Every dcol entry
 * belongs to one chunk, so summing chunk by chunk gives the full col2im. */
__kernel void cvk_conv2d_col2im(__global const float *dcol, ulong coff, __global float *dx, ulong dxoff,
                                __global const float *x, ulong xoff,
                                int Ci, int H, int W, int K, int n0, int nb, int r0, int nr, int gelu) {
    const int P = K / 2, KK = K * K;
    const int ylo = max(0, r0 - P), yhi = min(H, r0 + nr + P), ny = yhi - ylo;
    const long total = (long)nb * Ci * ny * W;
    long i = CV_GID0;
    if (i >= total) return;
    const int ix = (int)(i % W), y = ylo + (int)((i / W) % ny);
    const long bc = i / ((long)ny * W);
    const int c = (int)(bc % Ci), bb = (int)(bc / Ci);
    const long np = (long)nr * W;
    __global const float *dc = dcol + coff + ((long)bb * Ci + c) * KK * np;
    float s = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        const int oy = y + P - kh;
        if (oy < r0 || oy >= r0 + nr) continue;
        for (int kw = 0; kw < K; kw++) {
            const int ox = ix + P - kw;
            if (ox < 0 || ox >= W) continue;
            s += dc[(long)(kh * K + kw) * np + (long)(oy - r0) * W + ox];
        }
    }
    const long idx = ((long)(n0 + bb) * Ci + c) * H * W + (long)y * W + ix;
    if (gelu == 1) s *= conv_gelu_grad(x[xoff + idx]);
    else if (gelu == 2) s *= x[xoff + idx];                 /* x holds GELU'(x) */
    dx[dxoff + idx] += s;
}

/* ---- bias ---------------------------------------------------------------- */

/* y[n, c, :] = (set ? 0 : y[n, c, :]) + (has_b ? b[c] : 0) + (has_r ? r[n, c, :] : 0)
 * over N*C*HW elements: the bias op (set = 0), and the start of the GEMM
 * forward (with its residual input). */
__kernel void cvk_conv2d_bias_fwd(__global const float *b, ulong boff, int has_b, __global const float *r, ulong roff,
                                  int has_r, __global float *y, ulong yoff, int C, long HW, long total, int set) {
    long i = CV_GID0;
    if (i >= total) return;
    float v = has_b ? b[boff + (i / HW) % C] : 0.0f;
    if (has_r) v += r[roff + i];
    y[yoff + i] = set ? v : y[yoff + i] + v;
}

/* db[c] += sum_{n, p} dy[n, c, p] (has_db): one group of 64 per channel,
 * tree reduction in local memory (deterministic); and dr += dy (has_dr = 1,
 * the gradient of a residual input; has_dr = 2: dr = dy) in the same pass. */
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void cvk_conv2d_bias_bwd(__global const float *dy, ulong dyoff, __global float *db, ulong dboff, int has_db,
                         __global float *dr, ulong droff, int has_dr, int N, int C, long HW) {
    __local float red[64];
    const int c = get_group_id(0), l = get_local_id(0);
    if (c >= C) return;                                   /* uniform over the group */
    float s = 0.0f;
    for (int n = 0; n < N; n++) {
        const long o = ((long)n * C + c) * HW;
        __global const float *p = dy + dyoff + o;
        for (long i = l; i < HW; i += 64) {
            const float g = p[i];
            s += g;
            if (has_dr) dr[droff + o + i] = has_dr == 2 ? g : dr[droff + o + i] + g;
        }
    }
    red[l] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = 32; h > 0; h >>= 1) {
        if (l < h) red[l] += red[l + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0 && has_db) db[dboff + c] += red[0];
}

/* ---- VEC: pixel-vector kernels (CPU devices) -----------------------------
 * No local memory and no barriers: each work-item owns V consecutive
 * pixels of one row (V = CV_CONV_V, a float vector) for several output
 * channels and keeps its sums in registers; the weights are uniform
 * scalars.  GELU / GELU' are applied on the vectors as they are loaded
 * (fused: no pass over memory), so the SLEEF exp of PoCL runs V wide.
 * PoCL vectorises work-item loops only around straight-line code, which a
 * convolution is not; explicit vectors along the pixels give it the SIMD
 * width instead.  The host uses these kernels only when the vector width
 * divides the row (3x3) or the plane (1x1); other shapes take the tiled
 * DIRECT kernels.  The loops over the register blocks are unrolled
 * (#pragma unroll): rolled, the compiler keeps the sums in memory.
 * Tunables (-D, from the device table or the tuning
 * wisdom, src/runtime/cv_tune.c): CV_CONV_V (4, 8, 16), CV_CONV_R3 (rows per
 * work-item of the 3x3 kernel, 1..6), CV_CONV_COB3 (its output channels),
 * CV_CONV_WCOB1 / CV_CONV_WCOB3 (output channels per work-item of the
 * backward-weight kernels), CV_CONV_WCIB1 (input channels per work-item
 * of the 1x1 backward-weight kernel). */
#ifndef CV_CONV_V
#define CV_CONV_V 16
#endif
#ifndef CV_CONV_R3
#define CV_CONV_R3 4
#endif
#ifndef CV_CONV_COB3
#define CV_CONV_COB3 8
#endif
#ifndef CV_CONV_WCOB1
#define CV_CONV_WCOB1 16
#endif
#ifndef CV_CONV_WCOB3
#define CV_CONV_WCOB3 8
#endif
#ifndef CV_CONV_WCIB1
#define CV_CONV_WCIB1 1
#endif
#if CV_CONV_R3 < 1 || CV_CONV_R3 > 6
#error "CV_CONV_R3 must be 1..6 (the neighbours of R3 + 2 rows are packed in a float16)"
#endif

/* GELU and GELU' on vectors, for the CPU kernels: GELU(x) = x (1 + erf(x/sqrt 2)) / 2
 * with erf from the rational fit of Eigen and XLA (clamped to |x| <= 4, where
 * erf is +-1 in float; absolute error below 2e-7): no exp, no branch;
 * GELU'(x) = (1 + erf(x/sqrt 2)) / 2 + x phi(x).  About twice as fast as
 * the erfc form of conv_gelu (an exp and a division more) on PoCL; the
 * price is absolute rather than relative accuracy for x < -3 (|GELU| <
 * 4e-3 there), the same as PyTorch's own float GELU (doc/conv.md). */
#define CONV_GELU_VEC(T, sfx)                                                                      \
T conv_erf##sfx(T x) {                                                                             \
    x = clamp(x, (T)(-4.0f), (T)(4.0f));                                                           \
    const T x2 = x * x;                                                                            \
    T p = fma(x2, (T)(-2.72614225801306e-10f), (T)(2.77068142495902e-08f));                        \
    p = fma(x2, p, (T)(-2.10102402082508e-06f));                                                   \
    p = fma(x2, p, (T)(-5.69250639462346e-05f));                                                   \
    p = fma(x2, p, (T)(-7.34990630326855e-04f));                                                   \
    p = fma(x2, p, (T)(-2.95459980854025e-03f));                                                   \
    p = fma(x2, p, (T)(-1.60960333262415e-02f));                                                   \
    T q = fma(x2, (T)(-1.45660718464996e-05f), (T)(-2.13374055278905e-04f));                       \
    q = fma(x2, q, (T)(-1.68282697438203e-03f));                                                   \
    q = fma(x2, q, (T)(-7.37332916720468e-03f));                                                   \
    q = fma(x2, q, (T)(-1.42647390514189e-02f));                                                   \
    return x * p / q;                                                                              \
}                                                                                                  \
T conv_erf1##sfx(T x) { return 1.0f + conv_erf##sfx(x * CV_SQRT1_2); }  /* 2 Phi(x) */             \
T conv_gelu_e##sfx(T x, T e1) { return (0.5f * x) * e1; }       /* e1 = conv_erf1(x) */            \
T conv_gelu_grad_e##sfx(T x, T e1) { return fma(x, CV_INV_SQRT2PI * exp(-0.5f * x * x), 0.5f * e1); } \
T conv_gelu##sfx(T x) { return conv_gelu_e##sfx(x, conv_erf1##sfx(x)); }                           \
T conv_gelu_grad##sfx(T x) { return conv_gelu_grad_e##sfx(x, conv_erf1##sfx(x)); }
CONV_GELU_VEC(float4, _v4)
CONV_GELU_VEC(float8, _v8)
CONV_GELU_VEC(float16, _v16)

#if CV_CONV_V == 4
typedef float4 cvv;
#define CVV_LOAD  vload4
#define CVV_STORE vstore4
#define CVV_GELU  conv_gelu_v4
#define CVV_ERF1  conv_erf1_v4
#define CVV_GELU_E  conv_gelu_e_v4
#define CVV_GELUG_E conv_gelu_grad_e_v4
#define CVV_FIRST(v) ((v).s0)
#define CVV_GELUG conv_gelu_grad_v4
#define CVV_LAST(v) ((v).s3)
#define CVV_SHL(l, v) ((cvv)((l), (v).s012))          /* (l, v0 .. v2) */
#define CVV_SHR(v, r) ((cvv)((v).s123, (r)))          /* (v1 .. v3, r) */
#define CVV_HSUM(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3))
#elif CV_CONV_V == 8
typedef float8 cvv;
#define CVV_LOAD  vload8
#define CVV_STORE vstore8
#define CVV_GELU  conv_gelu_v8
#define CVV_ERF1  conv_erf1_v8
#define CVV_GELU_E  conv_gelu_e_v8
#define CVV_GELUG_E conv_gelu_grad_e_v8
#define CVV_FIRST(v) ((v).s0)
#define CVV_GELUG conv_gelu_grad_v8
#define CVV_LAST(v) ((v).s7)
#define CVV_SHL(l, v) ((cvv)((l), (v).s0123, (v).s456))
#define CVV_SHR(v, r) ((cvv)((v).s1234, (v).s567, (r)))
#define CVV_HSUM(v) ((((v).s0 + (v).s1) + ((v).s2 + (v).s3)) + (((v).s4 + (v).s5) + ((v).s6 + (v).s7)))
#elif CV_CONV_V == 16
typedef float16 cvv;
#define CVV_LOAD  vload16
#define CVV_STORE vstore16
#define CVV_GELU  conv_gelu_v16
#define CVV_ERF1  conv_erf1_v16
#define CVV_GELU_E  conv_gelu_e_v16
#define CVV_GELUG_E conv_gelu_grad_e_v16
#define CVV_FIRST(v) ((v).s0)
#define CVV_GELUG conv_gelu_grad_v16
#define CVV_LAST(v) ((v).sf)
#define CVV_SHL(l, v) ((cvv)((l), (v).s0123, (v).s4567, (v).s89ab, (v).scde))
#define CVV_SHR(v, r) ((cvv)((v).s1234, (v).s5678, (v).s9abc, (v).sdef, (r)))
#define CVV_HSUM(v) conv_hsum16(v)
float conv_hsum16(float16 v) {
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
    return (b.s0 + b.s1) + (b.s2 + b.s3);
}
#else
#error "CV_CONV_V must be 4, 8 or 16"
#endif

/* xa[i] = GELU(x[i]), xd[i] = GELU'(x[i]), i < n, one erf for both: the
 * forward of a conv whose GELU and GELU' a training plan keeps (tuning
 * keep_gelu = 2), so that no convolution evaluates either.  vform 1: the
 * vector form of the VEC kernels, on their vectors (cvv, CV_CONV_V wide;
 * a tail element as a splat vector); 0: the scalar form of DIRECT and
 * GEMM.  Either way the bits are those the convolution would have
 * computed itself. */
__kernel void cvk_conv2d_gelu_both(__global const float *x, ulong xoff, __global float *xa, ulong xaoff,
                                   __global float *xd, ulong xdoff, long n, int vform) {
    CV_ELEM_RUN(i0, i1, n);
    if (!vform) {
        for (long i = i0; i < i1; i++) {
            const float v = x[xoff + i];
            xa[xaoff + i] = conv_gelu(v);
            xd[xdoff + i] = conv_gelu_grad(v);
        }
        return;
    }
    for (long i = i0; i < i1; i += CV_CONV_V) {
        const int full = i + CV_CONV_V <= i1;
        const cvv v = full ? CVV_LOAD(0, x + xoff + i) : (cvv)(x[xoff + i]);
        const cvv e1 = CVV_ERF1(v), a = CVV_GELU_E(v, e1), d = CVV_GELUG_E(v, e1);   /* one erf for both */
        if (full) {
            CVV_STORE(a, 0, xa + xaoff + i);
            CVV_STORE(d, 0, xd + xdoff + i);
        } else {
            xa[xaoff + i] = CVV_FIRST(a);
            xd[xdoff + i] = CVV_FIRST(d);
            i -= CV_CONV_V - 1;                    /* one element at a time in the tail */
        }
    }
}

/* Forward (mode 0) or backward-data (mode 1) of a 1x1 conv, COB output
 * channels per work-item.  Forward: y[n, o, p] = sum_c w[o, c] a(x[n, c, p])
 * + b[o] (+ r[n, o, p] when has_r) (+ y when accumulate).  Backward-data:
 * in = dy, out = dx, wt(o, c) = w[c, o], dx += GELU'(xg) * sum (gelu) or
 * sum (dx = ... with accumulate = 0: the first writer of dx).  Work-item (p, ob, n): pixels p*V .. p*V+V-1 of image n, output
 * channels ob*COB ..; the host guarantees V | H*W.  With has_xa the
 * forward also stores GELU(x) into xa (block 0 does), for the backward-
 * weight pass to read instead of evaluating GELU again. */
#define CONV_VEC_ARGS __global const float *in, ulong inoff, __global const float *w, ulong woff,    \
    long sw_o, long sw_i, __global const float *b, ulong boff, int has_b,                              \
    __global const float *r, ulong roff, int has_r, __global float *out, ulong outoff,                 \
    __global const float *xg, ulong xgoff, __global float *xa, ulong xaoff, int has_xa

/* One kernel per channel block COB (8, 16, 32), a literal in each: the
 * loops over the block must unroll for the sums to stay in registers, and
 * a block size passed as a parameter leaves a rolled copy (and the
 * compiler's "loop not unrolled" warnings) behind. */
#define CONV_VEC1_KERNEL(COB)                                                                     \
__kernel void cvk_conv2d_vec1_cob##COB(CONV_VEC_ARGS, int N, int Cin, int Cout, long HW, int gelu, \
                                       int accumulate, int mode) {                                \
    const long p = get_global_id(0);                                                              \
    const int co0 = (int)get_global_id(1) * COB, n = (int)get_global_id(2);                       \
    if (p * CV_CONV_V >= HW || co0 >= Cout || n >= N) return;                                     \
    __global const float *src = in + inoff + (long)n * Cin * HW;                                  \
    __global const float *wp = w + woff;                                                          \
    cvv acc[COB];                                                                                 \
    _Pragma("unroll")                                                                             \
    for (int o = 0; o < COB; o++) acc[o] = (cvv)(0.0f);                                           \
    const int act = gelu && mode == 0, keep = act && has_xa && co0 == 0;                          \
    const int so = (int)sw_o, si = (int)sw_i, last = (Cout - 1 - co0) * so;                       \
    __global const float *wc = wp + co0 * so;                                                     \
    for (int c = 0; c < Cin; c++, wc += si) {                                                     \
        cvv v = CVV_LOAD(p, src + (long)c * HW);                                                  \
        if (act) v = CVV_GELU(v);                                                                 \
        if (keep) CVV_STORE(v, p, xa + xaoff + ((long)n * Cin + c) * HW);                         \
        _Pragma("unroll")                                                                         \
        for (int o = 0; o < COB; o++)                       /* loads stay in bounds */            \
            acc[o] = fma((cvv)(wc[min(o * so, last)]), v, acc[o]);                                \
    }                                                                                             \
    const long base = (long)n * Cout * HW;                                                        \
    _Pragma("unroll")                                                                             \
    for (int o = 0; o < COB; o++) {                                                               \
        const int co = co0 + o;                                                                   \
        if (co >= Cout) break;                                                                    \
        __global float *d = out + outoff + base + (long)co * HW;                                  \
        cvv v = acc[o];                                                                           \
        if (mode == 0) {                                                                          \
            if (has_b) v += b[boff + co];                                                         \
            if (has_r) v += CVV_LOAD(p, r + roff + base + (long)co * HW);                         \
            if (accumulate) v += CVV_LOAD(p, d);                                                  \
        } else {                                                                                  \
            if (gelu == 1) v *= CVV_GELUG(CVV_LOAD(p, xg + xgoff + base + (long)co * HW));        \
            else if (gelu == 2) v *= CVV_LOAD(p, xg + xgoff + base + (long)co * HW);              \
            if (accumulate) v += CVV_LOAD(p, d);                                                  \
        }                                                                                         \
        CVV_STORE(v, p, d);                                                                       \
    }                                                                                             \
}
CONV_VEC1_KERNEL(8)
CONV_VEC1_KERNEL(16)
CONV_VEC1_KERNEL(32)

/* Forward (mode 0) / backward-data (mode 1) of a 3x3 conv: work-item
 * (s, ry, z) owns pixels s*V .. s*V+V-1 of rows ry*R .. ry*R+R-1 of image
 * n = z / ncob for output channels (z % ncob) * COB3 ..  Per input channel
 * it loads the R+2 rows it needs with their left and right neighbours,
 * applies GELU once to the rows (vectors) and once to the 2(R+2)
 * neighbours (packed in one float16), and forms the shifted rows by
 * swizzles.  Weights: wt(o, c, t) = w[woff + o*sw_o + c*sw_i + (flip ?
 * 8 - t : t)] as in conv_tile.  The host guarantees V | W.  has_xa: the
 * first channel block also stores GELU(x) of its own rows into xa. */
__kernel void cvk_conv2d_vec3(CONV_VEC_ARGS, int flip, int N, int Cin, int Cout, int H, int W, int gelu,
                              int accumulate, int mode) {
    const int R = CV_CONV_R3, COB = CV_CONV_COB3;
    const int ncob = (Cout + COB - 1) / COB;
    const int x0 = (int)get_global_id(0) * CV_CONV_V, y0 = (int)get_global_id(1) * R, z = (int)get_global_id(2);
    if (x0 >= W || y0 >= H || z >= N * ncob) return;
    const int n = z / ncob, co0 = (z % ncob) * COB;
    const long HW = (long)H * W;
    __global const float *src = in + inoff + (long)n * Cin * HW;
    cvv acc[CV_CONV_R3][CV_CONV_COB3];
    #pragma unroll
    for (int j = 0; j < R; j++)
        #pragma unroll
        for (int o = 0; o < COB; o++) acc[j][o] = (cvv)(0.0f);
    const int act = gelu && mode == 0, keep = act && has_xa && co0 == 0;
    for (int c = 0; c < Cin; c++) {
        __global const float *sc = src + (long)c * HW;
        cvv v[CV_CONV_R3 + 2];
        float ed[16];                                 /* left, right neighbour of row r at 2r, 2r+1 */
        #pragma unroll
        for (int k = 0; k < 16; k++) ed[k] = 0.0f;
        #pragma unroll
        for (int rr = 0; rr < R + 2; rr++) {
            const int iy = y0 - 1 + rr;
            v[rr] = (cvv)(0.0f);
            if (iy >= 0 && iy < H) {
                __global const float *row = sc + (long)iy * W + x0;
                v[rr] = CVV_LOAD(0, row);
                if (x0 > 0) ed[2 * rr] = row[-1];
                if (x0 + CV_CONV_V < W) ed[2 * rr + 1] = row[CV_CONV_V];
            }
        }
        if (act) {
            #pragma unroll
            for (int rr = 0; rr < R + 2; rr++) v[rr] = CVV_GELU(v[rr]);
            vstore16(conv_gelu_v16(vload16(0, ed)), 0, ed);   /* GELU(0) = 0: padding stays 0 */
            if (keep)                                          /* own rows only */
                for (int rr = 1; rr <= R; rr++)
                    if (y0 - 1 + rr < H) CVV_STORE(v[rr], 0, xa + xaoff + (long)n * Cin * HW + (long)c * HW + (long)(y0 - 1 + rr) * W + x0);
        }
        #pragma unroll
        for (int rr = 0; rr < R + 2; rr++) {
            const cvv vl = CVV_SHL(ed[2 * rr], v[rr]), vr = CVV_SHR(v[rr], ed[2 * rr + 1]);
            #pragma unroll
            for (int j = 0; j < R; j++) {
                const int kh = rr - j;
                if (kh < 0 || kh > 2) continue;
                #pragma unroll
                for (int o = 0; o < COB; o++) {
                    const int co = min(co0 + o, Cout - 1);
                    __global const float *wq = w + woff + co * sw_o + c * sw_i;
                    const int t0 = kh * 3;
                    const float w0 = wq[flip ? 8 - t0 : t0], w1 = wq[flip ? 7 - t0 : t0 + 1];
                    const float w2 = wq[flip ? 6 - t0 : t0 + 2];
                    acc[j][o] = fma((cvv)(w0), vl, fma((cvv)(w1), v[rr], fma((cvv)(w2), vr, acc[j][o])));
                }
            }
        }
    }
    const long base = (long)n * Cout * HW;
    #pragma unroll
    for (int j = 0; j < R; j++) {
        const int y = y0 + j;
        if (y >= H) break;
        #pragma unroll
        for (int o = 0; o < COB; o++) {
            const int co = co0 + o;
            if (co >= Cout) break;
            const long at = base + (long)co * HW + (long)y * W + x0;
            __global float *d = out + outoff + at;
            cvv a = acc[j][o];
            if (mode == 0) {
                if (has_b) a += b[boff + co];
                if (has_r) a += CVV_LOAD(0, r + roff + at);
                if (accumulate) a += CVV_LOAD(0, d);
            } else {
                if (gelu == 1) a *= CVV_GELUG(CVV_LOAD(0, xg + xgoff + at));
                else if (gelu == 2) a *= CVV_LOAD(0, xg + xgoff + at);      /* GELU'(x) precomputed */
                if (accumulate) a += CVV_LOAD(0, d);
            }
            CVV_STORE(a, 0, d);
        }
    }
}

/* Backward-weight (and bias, and the residual's gradient) of a 1x1 conv.
 * Work-item (cb, ob, s): dw[o, c] for the CIB input channels of block cb
 * (CV_CONV_WCIB1: every dy vector loaded feeds CIB sums, so dy is streamed
 * Ci/CIB times rather than Ci) and the COB output channels of block ob,
 * summed over the s-th of S equal parts of the N*H*W/V pixel vectors.
 * The extra block cb == ceil(Ci/CIB) sums dy itself (a = 1): db[o]
 * (has_db), and adds dy into dr (has_dr = 1, the gradient of a residual
 * input; 2: stores dy, as dr's first writer).  With S == 1 the sums go
 * straight into dw / db (+=), else into partial block s of part (S blocks
 * of Co*Ci + Co floats: dw then db) for cvk_conv2d_vec_reduce.  Each
 * output has one writer: deterministic. */
__kernel void cvk_conv2d_vec1_wgrad(__global const float *x, ulong xoff, __global const float *dy, ulong dyoff,
                                    __global float *dw, ulong dwoff, __global float *db, ulong dboff, int has_db,
                                    __global float *dr, ulong droff, int has_dr, __global float *part, ulong poff,
                                    int N, int Ci, int Co, long HW, int gelu, int S) {
    const int COB = CV_CONV_WCOB1, CIB = CV_CONV_WCIB1;
    const int cb = (int)get_global_id(0), co0 = (int)get_global_id(1) * COB, s = (int)get_global_id(2);
    const int ncb = (Ci + CIB - 1) / CIB, bias = cb == ncb, c0 = cb * CIB;
    if (cb > ncb || (bias && !has_db && !has_dr) || co0 >= Co || s >= S) return;
    const long nv = HW / CV_CONV_V, total = (long)N * nv;
    const long q0 = total * s / S, q1 = total * (s + 1) / S;
    cvv acc[CV_CONV_WCIB1][CV_CONV_WCOB1];
    #pragma unroll
    for (int j = 0; j < CIB; j++) {
        #pragma unroll
        for (int o = 0; o < COB; o++) acc[j][o] = (cvv)(0.0f);
    }
    long n = q0 / nv, p = q0 - n * nv;          /* no division inside the loop */
    for (long q = q0; q < q1; q++, p++) {
        if (p == nv) { p = 0; n++; }
        cvv a[CV_CONV_WCIB1];
        #pragma unroll
        for (int j = 0; j < CIB; j++) {
            a[j] = (cvv)(1.0f);
            if (!bias) {
                a[j] = CVV_LOAD(p, x + xoff + (n * Ci + min(c0 + j, Ci - 1)) * HW);   /* loads stay in bounds */
                if (gelu) a[j] = CVV_GELU(a[j]);
            }
        }
        #pragma unroll
        for (int o = 0; o < COB; o++) {
            const int co = min(co0 + o, Co - 1);
            const long at = (n * Co + co) * HW;
            const cvv d = CVV_LOAD(p, dy + dyoff + at);
            #pragma unroll
            for (int j = 0; j < CIB; j++) acc[j][o] = fma(d, a[j], acc[j][o]);
            if (bias && has_dr && co0 + o < Co)
                CVV_STORE(has_dr == 2 ? d : CVV_LOAD(p, dr + droff + at) + d, p, dr + droff + at);
        }
    }
    if (bias && !has_db) return;
    const long nw = (long)Co * Ci;
    #pragma unroll
    for (int j = 0; j < CIB; j++) {
        const int c = c0 + j;
        if (!bias && c >= Ci) break;
        #pragma unroll
        for (int o = 0; o < COB; o++) {
            const int co = co0 + o;
            if (co >= Co) break;
            const float v = CVV_HSUM(acc[j][o]);
            const long i = bias ? nw + co : (long)co * Ci + c;
            if (S > 1) part[poff + s * (nw + Co) + i] = v;
            else if (bias) db[dboff + co] += v;
            else dw[dwoff + i] += v;
        }
        if (bias) break;                        /* one sum of dy per output channel */
    }
}

/* Backward-weight (and bias, residual gradient) of a 3x3 conv.  Work-item
 * (c*3 + kh, ob, s): dw[o, c, kh, 0..2] for the COB output channels of
 * block ob, over the s-th of S parts of the N*H rows; the row of x it
 * needs (y + kh - 1) is walked in vectors, each GELU'd once, the
 * neighbours of a vector taken from the previous and the next one.  The
 * extra work-item c*3 + kh == 3*Ci sums dy (db) and adds it into dr, as in
 * cvk_conv2d_vec1_wgrad; partial blocks are Co*Ci*9 + Co floats.  The host
 * guarantees V | W. */
__kernel void cvk_conv2d_vec3_wgrad(__global const float *x, ulong xoff, __global const float *dy, ulong dyoff,
                                    __global float *dw, ulong dwoff, __global float *db, ulong dboff, int has_db,
                                    __global float *dr, ulong droff, int has_dr, __global float *part, ulong poff,
                                    int N, int Ci, int Co, int H, int W, int gelu, int S) {
    const int COB = CV_CONV_WCOB3;
    const int ck = (int)get_global_id(0), co0 = (int)get_global_id(1) * COB, s = (int)get_global_id(2);
    const int bias = ck == 3 * Ci, c = ck / 3, kh = ck - 3 * c;
    if (ck > 3 * Ci || (bias && !has_db && !has_dr) || co0 >= Co || s >= S) return;
    const long HW = (long)H * W, rows = (long)N * H;
    const long r0 = rows * s / S, r1 = rows * (s + 1) / S;
    cvv acc[CV_CONV_WCOB3][3];
    #pragma unroll
    for (int o = 0; o < COB; o++) { acc[o][0] = (cvv)(0.0f); acc[o][1] = (cvv)(0.0f); acc[o][2] = (cvv)(0.0f); }
    long n = r0 / H;
    int y = (int)(r0 - n * H) - 1;
    for (long rr = r0; rr < r1; rr++) {
        if (++y == H) { y = 0; n++; }
        const int iy = y + kh - 1;
        if (!bias && (iy < 0 || iy >= H)) continue;
        __global const float *xr = x + xoff + (n * Ci + c) * HW + (long)iy * W;
        cvv cur = (cvv)(1.0f), nxt = (cvv)(0.0f);
        float last = 0.0f;
        if (!bias) {
            cur = CVV_LOAD(0, xr);
            if (gelu) cur = CVV_GELU(cur);
        }
        for (int x0 = 0; x0 < W; x0 += CV_CONV_V) {
            cvv vl = (cvv)(0.0f), vr = (cvv)(0.0f);
            if (!bias) {
                nxt = (cvv)(0.0f);
                if (x0 + CV_CONV_V < W) {
                    nxt = CVV_LOAD(0, xr + x0 + CV_CONV_V);
                    if (gelu) nxt = CVV_GELU(nxt);
                }
                vl = CVV_SHL(last, cur);
                vr = CVV_SHR(cur, nxt.s0);
            }
            #pragma unroll
            for (int o = 0; o < COB; o++) {
                const int co = min(co0 + o, Co - 1);
                const long at = (n * Co + co) * HW + (long)y * W + x0;
                const cvv d = CVV_LOAD(0, dy + dyoff + at);
                acc[o][1] = fma(d, cur, acc[o][1]);
                if (!bias) {
                    acc[o][0] = fma(d, vl, acc[o][0]);
                    acc[o][2] = fma(d, vr, acc[o][2]);
                } else if (has_dr && co0 + o < Co) {
                    CVV_STORE(has_dr == 2 ? d : CVV_LOAD(0, dr + droff + at) + d, 0, dr + droff + at);
                }
            }
            if (!bias) { last = CVV_LAST(cur); cur = nxt; }
        }
    }
    if (bias && !has_db) return;
    const long nw = (long)Co * Ci * 9;
    #pragma unroll
    for (int o = 0; o < COB; o++) {
        const int co = co0 + o;
        if (co >= Co) break;
        #pragma unroll
        for (int t = 0; t < 3; t++) {
            if (bias && t != 1) continue;
            const float v = CVV_HSUM(acc[o][t]);
            const long i = bias ? nw + co : ((long)co * Ci + c) * 9 + kh * 3 + t;
            if (S > 1) part[poff + s * (nw + Co) + i] = v;
            else if (bias) db[dboff + co] += v;
            else dw[dwoff + i] += v;
        }
    }
}

/* dw[i] += sum_s part[s][i] (i < nw), db[i - nw] += sum_s part[s][i]
 * (nw <= i < nw + nb, when has_db), fixed order: deterministic. */
__kernel void cvk_conv2d_vec_reduce(__global const float *part, ulong poff, __global float *dw, ulong dwoff,
                                    __global float *db, ulong dboff, int has_db, long nw, long nb, int S) {
    const long i = CV_GID0;
    if (i >= nw + nb || (i >= nw && !has_db)) return;
    float v = 0.0f;
    for (int s = 0; s < S; s++) v += part[poff + s * (nw + nb) + i];
    if (i < nw) dw[dwoff + i] += v;
    else db[dboff + i - nw] += v;
}
