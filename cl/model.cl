/* model.cl -- broadcast of learned starting tensors; EMA of the weights. */

/* y[n*M + m] = t[m] */
__kernel void cvk_bcast_fwd(__global const float *t, ulong toff, __global float *y, ulong yoff, long N, long M) {
    CV_ELEMS(i, N * M) {
        y[yoff + i] = t[toff + i % M];
    }
}

/* dt[m] += sum_n dy[n*M + m]  (one work-item per m: no atomics, deterministic) */
__kernel void cvk_bcast_bwd(__global const float *dy, ulong dyoff, __global float *dt, ulong dtoff, long N, long M) {
    CV_ELEMS(m, M) {
        float s = 0.0f;
        for (long n = 0; n < N; n++) s += dy[dyoff + n * M + m];
        dt[dtoff + m] += s;
    }
}

/* ema = d ema + (1 - d) p, unless the optimizer skipped this step: it
 * wrote flag[foff] = 1 then (0 otherwise), and the EMA follows that one
 * decision instead of making its own. */
__kernel void cvk_ema(__global float *ema, ulong eoff, __global const float *p, ulong poff, long n, float d,
                      __global const float *flag, ulong foff) {
    if (flag[foff] != 0.0f) return;
    CV_ELEMS(i, n) {
        ema[eoff + i] = d * ema[eoff + i] + (1.0f - d) * p[poff + i];
    }
}
