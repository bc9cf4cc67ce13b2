/* cv_op_conv.c -- 2-D convolution (k = 1 or 3, stride 1, zero padding k/2)
 * and per-channel bias: double references, device launchers for two
 * algorithms, the CLBlast SGEMM wrapper; its checks are in src/check/cv_check_conv.c.
 *
 * Algorithms (kernels in cl/conv2d.cl):
 *   DIRECT  tiled kernels: forward and backward-data share one body (32x8
 *           pixel tiles, 8 output channels x 4 pixels per work-item, input
 *           slabs in local memory); backward-weight reduces over spatial
 *           chunks per (8 ci x 8 co) group, split S ways into partial
 *           blocks in the scratch when that is needed for parallelism.
 *   VEC     pixel-vector kernels for CPU devices: each work-item owns a
 *           vector of V pixels of a row for several output channels,
 *           sums in registers, GELU / GELU' fused on the vectors;
 *           backward-weight one work-item per (input channel[, tap row],
 *           output block), S-way split only when the device needs more
 *           work-items, with the bias gradient and a residual's gradient
 *           taken in the same pass.  V, rows and channel blocks come from
 *           the device's tuning (-D build options, src/runtime/cv_tune.h).
 *   GEMM    im2col into the scratch + CLBlast SGEMM per image: forward
 *           Y[Co, HW] = W[Co, Ci KK] col[Ci KK, HW]; backward-data
 *           dcol = W^T dY then a gathering col2im (+= into dx);
 *           backward-weight dW += dY col^T (beta = 1).  A 1x1 conv without
 *           GELU needs no im2col at all.  Large images are cut into chunks
 *           (several whole images, or rows of one image) so that the column
 *           buffer stays under a budget.
 * The scratch is the context's (cv_ctx_scratch); its layout for GEMM is
 * [CLBlast temporary buffer | column buffer], so CLBlast never allocates
 * either.  Sizes come from cv_conv2d_workspace, which a plan reserves once.
 *
 * Invariants: backward accumulates (+=) into dx, dw, db; forward overwrites
 * y unless p->accumulate; nothing here synchronises with the host. */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"

#include <clblast_c.h>
#include <math.h>
#include <string.h>

/* Mirrors of the tile geometry in cl/conv2d.cl. */
enum { CT_TX = 8, CT_TY = 8, CT_PX = 4, CT_TW = CT_TX * CT_PX, CT_COB3 = 16, CT_COB1 = 32 };
enum { WB_CI = 8, WB_CO = 8, WB_ROWS = 4, WB_COLS = 32 };

#define CONV_COL_BUDGET_DEFAULT ((size_t)16 << 20)   /* floats (64 MiB) per column chunk */
#define CONV_WGRAD_PART_MAX     ((int64_t)4 << 20)   /* floats of backward-weight partials */

static size_t conv_col_budget = CONV_COL_BUDGET_DEFAULT;

void cv_conv2d_set_col_budget(size_t floats) {
    conv_col_budget = floats ? floats : CONV_COL_BUDGET_DEFAULT;
}

/* ---- reference ----------------------------------------------------------- */

static double gelu_d(double x)      { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }
static double gelu_grad_d(double x) { return 0.5 * (1.0 + erf(x * 0.70710678118654752440))
                                             + x * 0.39894228040143267794 * exp(-0.5 * x * x); }

void cv_conv2d_ref_fwd(const double *x /* (N, Ci, H, W) */, const double *w /* (Co, Ci, K, K) */,
                       const double *b /* (Co) or NULL */, double *y /* (N, Co, H, W) */,
                       int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, const cv_conv2d_params *p) {
    const int64_t K = p->k, P = K / 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t oy = 0; oy < H; oy++)
                for (int64_t ox = 0; ox < W; ox++) {
                    double s = b ? b[co] : 0.0;
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t kh = 0; kh < K; kh++)
                            for (int64_t kw = 0; kw < K; kw++) {
                                int64_t iy = oy + kh - P, ix = ox + kw - P;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                double v = x[((n * Ci + ci) * H + iy) * W + ix];
                                if (p->gelu_in) v = gelu_d(v);
                                s += w[((co * Ci + ci) * K + kh) * K + kw] * v;
                            }
                    double *o = &y[((n * Co + co) * H + oy) * W + ox];
                    *o = p->accumulate ? *o + s : s;
                }
}

void cv_conv2d_ref_bwd(const double *x /* (N, Ci, H, W) */, const double *w /* (Co, Ci, K, K) */,
                       const double *dy /* (N, Co, H, W) */,
                       double *dx /* (N, Ci, H, W), += or NULL */, double *dw /* (Co, Ci, K, K), += or NULL */,
                       double *db /* (Co), += or NULL */,
                       int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, const cv_conv2d_params *p) {
    const int64_t K = p->k, P = K / 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t oy = 0; oy < H; oy++)
                for (int64_t ox = 0; ox < W; ox++) {
                    double g = dy[((n * Co + co) * H + oy) * W + ox];
                    if (db) db[co] += g;
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t kh = 0; kh < K; kh++)
                            for (int64_t kw = 0; kw < K; kw++) {
                                int64_t iy = oy + kh - P, ix = ox + kw - P;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                int64_t xi = ((n * Ci + ci) * H + iy) * W + ix;
                                int64_t wi = ((co * Ci + ci) * K + kh) * K + kw;
                                double xv = x[xi];
                                if (dw) dw[wi] += g * (p->gelu_in ? gelu_d(xv) : xv);
                                if (dx) dx[xi] += g * w[wi] * (p->gelu_in ? gelu_grad_d(xv) : 1.0);
                            }
                }
}

void cv_bias_ref_fwd(const double *b /* (C) */, double *y /* (N, C, HW) */, int64_t N, int64_t C, int64_t HW) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) y[(n * C + c) * HW + i] += b[c];
}

void cv_bias_ref_bwd(const double *dy /* (N, C, HW) */, double *db /* (C), += */, int64_t N, int64_t C, int64_t HW) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) db[c] += dy[(n * C + c) * HW + i];
}

/* ---- shapes, algorithm choice, workspace --------------------------------- */

typedef struct conv_geo {
    int64_t N, Ci, H, W, Co, HW;
    int     K, KK;
} conv_geo;

static conv_geo geo_of(const int64_t xs[4], int64_t Co, int k) {
    conv_geo g = { xs[0], xs[1], xs[2], xs[3], Co, xs[2] * xs[3], k, k * k };
    return g;
}

const char *cv_conv_algo_name(cv_conv_algo a) {
    return a == CV_CONV_DIRECT ? "direct" : a == CV_CONV_GEMM ? "gemm" : a == CV_CONV_VEC ? "vec" : "auto";
}

static cv_status check_params(const cv_conv2d_params *p, const char *what) {
    if (!p) return cv_error(CV_ERR_ARG, "%s: no parameters", what);
    if (p->k != 1 && p->k != 3) return cv_error(CV_ERR_ARG, "%s: kernel size k=%d (supported: 1, 3)", what, p->k);
    if ((p->gelu_in != 0 && p->gelu_in != 1) || (p->accumulate != 0 && p->accumulate != 1))
        return cv_error(CV_ERR_ARG, "%s: gelu_in=%d, accumulate=%d (expected 0 or 1)", what, p->gelu_in, p->accumulate);
    if ((int)p->algo < 0 || p->algo >= CV_CONV_ALGO_COUNT)
        return cv_error(CV_ERR_ARG, "%s: algorithm %d out of range", what, (int)p->algo);
    const char *e = getenv("CV_CONV_ALGO");
    if (e && *e && strcmp(e, "direct") && strcmp(e, "gemm") && strcmp(e, "vec") && strcmp(e, "auto"))
        return cv_error(CV_ERR_ARG, "CV_CONV_ALGO='%s': expected direct, gemm, vec or auto", e);
    return CV_OK;
}

static int present(const cv_tensor *t) { return t && t->buf; }

/* Shapes of one conv: x (N, Ci, H, W), w (Co, Ci, k, k), y or dy (N, Co, H, W). */
static cv_status check_shapes(const char *what, const cv_tensor *x, const cv_tensor *w, const cv_tensor *y,
                              const cv_conv2d_params *p) {
    char a[64], b[64], c[64];
    if (!present(x) || !present(w) || !present(y)) return cv_error(CV_ERR_ARG, "%s: missing input, weight or output tensor", what);
    const int64_t *xs = x->shape, *ws = w->shape, *ys = y->shape;
    for (int i = 0; i < 4; i++)
        if (xs[i] <= 0 || xs[i] > INT32_MAX || ys[i] <= 0 || ys[i] > INT32_MAX)
            return cv_error(CV_ERR_SHAPE, "%s: empty or oversized tensor x %s, y %s", what,
                            cv_shape_str(xs, a, sizeof a), cv_shape_str(ys, b, sizeof b));
    if (ws[0] != ys[1] || ws[1] != xs[1] || ws[2] != p->k || ws[3] != p->k || ys[0] != xs[0] || ys[2] != xs[2] || ys[3] != xs[3])
        return cv_error(CV_ERR_SHAPE, "%s: x %s, w %s, y %s do not fit (expected w = (Co, Ci, %d, %d), y = (N, Co, H, W))",
                        what, cv_shape_str(xs, a, sizeof a), cv_shape_str(ws, b, sizeof b), cv_shape_str(ys, c, sizeof c),
                        p->k, p->k);
    return CV_OK;
}

/* Whether the VEC kernels cover a shape: the vector width must divide the
 * rows (3x3) or the planes (1x1). */
static int vec_fits(cv_ctx *ctx, const int64_t xs[4], int k) {
    int64_t V = cv_ctx_tune(ctx)->conv_v;
    return k == 1 ? (xs[2] * xs[3]) % V == 0 : xs[3] % V == 0;
}

/* AUTO: the device's tuning rules (cv_ctx_tune: built-in table, or the
 * wisdom of cosmovae-info --tune; doc/conv.md and doc/tuning.md have the
 * measurements behind the table). */
cv_conv_algo cv_conv2d_algo(cv_ctx *ctx, const int64_t xshape[4], int64_t Co, const cv_conv2d_params *p, int bwd) {
    int k = p ? p->k : 3;
    cv_conv_algo a;
    const char *e = getenv("CV_CONV_ALGO");
    if (p && p->algo != CV_CONV_AUTO && p->algo < CV_CONV_ALGO_COUNT) a = p->algo;
    else if (e && !strcmp(e, "direct")) a = CV_CONV_DIRECT;
    else if (e && !strcmp(e, "gemm")) a = CV_CONV_GEMM;
    else if (e && !strcmp(e, "vec")) a = CV_CONV_VEC;
    else a = (cv_conv_algo)cv_tune_conv_algo(cv_ctx_tune(ctx), bwd, k, xshape[2] * xshape[3], xshape[1] * k * k, Co);
    if (a == CV_CONV_VEC && !vec_fits(ctx, xshape, k)) a = CV_CONV_DIRECT;
    return a;
}

/* Number of spatial splits of the direct backward-weight reduction. */
static int64_t wgrad_splits(cv_ctx *ctx, const conv_geo *g) {
    int64_t groups = ((g->Ci + WB_CI - 1) / WB_CI) * ((g->Co + WB_CO - 1) / WB_CO);
    int64_t T = g->N * ((g->H + WB_ROWS - 1) / WB_ROWS) * ((g->W + WB_COLS - 1) / WB_COLS);
    int64_t target = (int64_t)cv_ctx_tune(ctx)->wgrad_groups * cv_ctx_compute_units(ctx);   /* work-groups wanted */
    int64_t S = target / groups, nw = g->Co * g->Ci * g->KK;
    if (S > T) S = T;
    if (S * nw > CONV_WGRAD_PART_MAX) S = CONV_WGRAD_PART_MAX / nw;
    return S < 1 ? 1 : S;
}

/* GEMM chunking: nb images of nr rows each; col_floats for one chunk. */
typedef struct conv_chunk {
    int     need_col;     /* 0 for k = 1 without GELU */
    int64_t nb, nr;
    size_t  col_floats;
} conv_chunk;

static conv_chunk gemm_chunk(const conv_geo *g, int gelu) {
    conv_chunk c = { g->K != 1 || gelu, g->N, g->H, 0 };
    if (!c.need_col) return c;
    size_t B = conv_col_budget, row = (size_t)(g->Ci * g->KK * g->W), img = row * (size_t)g->H;
    if ((size_t)g->N * img <= B)   { c.nb = g->N; c.nr = g->H; }
    else if (img <= B)             { c.nb = (int64_t)(B / img); c.nr = g->H; }
    else                           { c.nb = 1; c.nr = (int64_t)(B / row); if (c.nr < 1) c.nr = 1; }
    c.col_floats = (size_t)c.nb * (size_t)c.nr * row;
    return c;
}

static const char *clblast_name(CLBlastStatusCode s) {
    switch (s) {
    case CLBlastSuccess: return "CLBlastSuccess";
    case CLBlastOpenCLCompilerNotAvailable: return "CLBlastOpenCLCompilerNotAvailable";
    case CLBlastTempBufferAllocFailure: return "CLBlastTempBufferAllocFailure";
    case CLBlastOpenCLOutOfResources: return "CLBlastOpenCLOutOfResources";
    case CLBlastOpenCLOutOfHostMemory: return "CLBlastOpenCLOutOfHostMemory";
    case CLBlastOpenCLBuildProgramFailure: return "CLBlastOpenCLBuildProgramFailure";
    case CLBlastInvalidValue: return "CLBlastInvalidValue";
    case CLBlastInvalidCommandQueue: return "CLBlastInvalidCommandQueue";
    case CLBlastInvalidMemObject: return "CLBlastInvalidMemObject";
    case CLBlastInvalidBinary: return "CLBlastInvalidBinary";
    case CLBlastInvalidBuildOptions: return "CLBlastInvalidBuildOptions";
    case CLBlastInvalidProgram: return "CLBlastInvalidProgram";
    case CLBlastInvalidProgramExecutable: return "CLBlastInvalidProgramExecutable";
    case CLBlastInvalidKernelName: return "CLBlastInvalidKernelName";
    case CLBlastInvalidKernelDefinition: return "CLBlastInvalidKernelDefinition";
    case CLBlastInvalidKernel: return "CLBlastInvalidKernel";
    case CLBlastInvalidArgIndex: return "CLBlastInvalidArgIndex";
    case CLBlastInvalidArgValue: return "CLBlastInvalidArgValue";
    case CLBlastInvalidArgSize: return "CLBlastInvalidArgSize";
    case CLBlastInvalidKernelArgs: return "CLBlastInvalidKernelArgs";
    case CLBlastInvalidLocalNumDimensions: return "CLBlastInvalidLocalNumDimensions";
    case CLBlastInvalidLocalThreadsTotal: return "CLBlastInvalidLocalThreadsTotal";
    case CLBlastInvalidLocalThreadsDim: return "CLBlastInvalidLocalThreadsDim";
    case CLBlastInvalidGlobalOffset: return "CLBlastInvalidGlobalOffset";
    case CLBlastInvalidEventWaitList: return "CLBlastInvalidEventWaitList";
    case CLBlastInvalidEvent: return "CLBlastInvalidEvent";
    case CLBlastInvalidOperation: return "CLBlastInvalidOperation";
    case CLBlastInvalidBufferSize: return "CLBlastInvalidBufferSize";
    case CLBlastInvalidGlobalWorkSize: return "CLBlastInvalidGlobalWorkSize";
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return "unknown CLBlast status";
    }
}

/* The three GEMM shapes of a conv chunk, for the temporary-buffer query:
 * forward (m = Co, n = np, k = Ci KK), backward-data (m = Ci KK, n = np,
 * k = Co, A transposed), backward-weight (m = Co, n = Ci KK, k = np, B
 * transposed).  Offsets of 1 ask for the worst case (unaligned views). */
static cv_status gemm_temp_bytes(cv_ctx *ctx, const conv_geo *g, const conv_chunk *c, size_t *out) {
    cl_command_queue q = cv_ctx_queue(ctx);
    size_t np = (size_t)(c->nr * g->W), cikk = (size_t)(g->Ci * g->KK), co = (size_t)g->Co, hw = (size_t)g->HW;
    size_t ldcol = c->need_col ? np : hw;
    struct { CLBlastTranspose ta, tb; size_t m, n, k, lda, ldb, ldc; } s[3] = {
        { CLBlastTransposeNo,  CLBlastTransposeNo,  co,   np,   cikk, cikk, ldcol, hw },
        { CLBlastTransposeYes, CLBlastTransposeNo,  cikk, np,   co,   cikk, hw,    ldcol },
        { CLBlastTransposeNo,  CLBlastTransposeYes, co,   cikk, np,   hw,   ldcol, cikk },
    };
    *out = 0;
    for (int i = 0; i < 3; i++) {
        size_t t = 0;
        CLBlastStatusCode r = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, s[i].ta, s[i].tb, s[i].m, s[i].n, s[i].k,
                                                         1, s[i].lda, 1, s[i].ldb, 1, s[i].ldc, &q, &t);
        if (r != CLBlastSuccess)
            return cv_error(CV_ERR_CL, "CLBlastSGemmTempBufferSize (m=%zu n=%zu k=%zu) on %s: %s (%d)",
                            s[i].m, s[i].n, s[i].k, cv_ctx_device_name(ctx), clblast_name(r), (int)r);
        if (t > *out) *out = t;
    }
    return CV_OK;
}

typedef struct gemm_ws {
    conv_chunk chunk;
    size_t     temp_bytes;    /* CLBlast temporary buffer at scratch offset 0 */
    size_t     col_off;       /* floats: column buffer after it, aligned */
    size_t     bytes;         /* total */
} gemm_ws;

static cv_status gemm_workspace(cv_ctx *ctx, const conv_geo *g, int gelu, gemm_ws *ws) {
    ws->chunk = gemm_chunk(g, gelu);
    cv_status st = gemm_temp_bytes(ctx, g, &ws->chunk, &ws->temp_bytes);
    if (st != CV_OK) return st;
    size_t al = cv_ctx_align(ctx) < 64 ? 64 : cv_ctx_align(ctx);
    size_t t = (ws->temp_bytes + al - 1) / al * al;
    ws->col_off = t / sizeof(float);
    ws->bytes = t + ws->chunk.col_floats * sizeof(float);
    return CV_OK;
}

/* DIRECT scratch: [GELU(x) or GELU'(x) | backward-weight partials].  On CPU
 * devices (tuning direct_pre_gelu: from that many pixels per plane on)
 * GELU(x) (forward, backward-weight) and GELU'(x) (backward-data) are
 * taken once into the scratch by a flat kernel that PoCL vectorises;
 * evaluated inside the tiled kernels (per output-channel block and halo,
 * or in the scalar epilogue) they cost more than the convolution itself
 * there (bench/bench-conv).  GPUs, and small planes, fuse them, saving the
 * memory, a pass and a launch. */
typedef struct direct_ws {
    int     pre_gelu;
    int64_t S;            /* backward-weight splits */
    size_t  part_off;     /* floats */
    size_t  bytes;
} direct_ws;

static direct_ws direct_workspace(cv_ctx *ctx, const conv_geo *g, int gelu, int op) {
    int64_t pg = cv_ctx_tune(ctx)->direct_pre_gelu;
    direct_ws d = { gelu && pg > 0 && g->HW >= pg, 1, 0, 0 };
    size_t al = (cv_ctx_align(ctx) < 64 ? 64 : cv_ctx_align(ctx)) / sizeof(float);
    size_t act = d.pre_gelu ? (size_t)(g->N * g->Ci * g->HW) : 0;
    d.part_off = (act + al - 1) / al * al;
    if (op == 2) d.S = wgrad_splits(ctx, g);
    d.bytes = (d.part_off + (d.S > 1 ? (size_t)(d.S * g->Co * g->Ci * g->KK) : 0)) * sizeof(float);
    if (!d.pre_gelu && d.S == 1) d.bytes = 0;
    return d;
}

/* VEC backward-weight: S-way split over the pixels (1x1) or rows (3x3)
 * when the work-items of one pass would not give every compute unit the
 * tuning's share; partial blocks of Co*Ci*KK + Co floats in the scratch. */
typedef struct vec_ws {
    int64_t items;        /* work-items of one pass, bias item included */
    int64_t S;
    size_t  bytes;
} vec_ws;

static int64_t vec_wcob(cv_ctx *ctx, int K) {
    return K == 1 ? cv_ctx_tune(ctx)->conv_wcob1 : cv_ctx_tune(ctx)->conv_wcob3;
}

static vec_ws vec_workspace(cv_ctx *ctx, const conv_geo *g) {
    vec_ws v;
    int64_t nob = (g->Co + vec_wcob(ctx, g->K) - 1) / vec_wcob(ctx, g->K);
    int64_t cib = cv_ctx_tune(ctx)->conv_wcib1;
    v.items = (g->K == 1 ? (g->Ci + cib - 1) / cib + 1 : 3 * g->Ci + 1) * nob;
    int64_t want = (int64_t)cv_ctx_tune(ctx)->wgrad_groups * cv_ctx_compute_units(ctx);
    int64_t most = g->K == 1 ? g->N * g->HW / cv_ctx_tune(ctx)->conv_v : g->N * g->H;   /* parts of >= 1 row / vector */
    v.S = (want + v.items - 1) / v.items;
    if (v.S > most) v.S = most;
    if (v.S * (g->Co * g->Ci * g->KK + g->Co) > CONV_WGRAD_PART_MAX) v.S = CONV_WGRAD_PART_MAX / (g->Co * g->Ci * g->KK + g->Co);
    if (v.S < 1) v.S = 1;
    v.bytes = v.S > 1 ? (size_t)(v.S * (g->Co * g->Ci * g->KK + g->Co)) * sizeof(float) : 0;
    return v;
}

size_t cv_conv2d_workspace(cv_ctx *ctx, const int64_t xshape[4], int64_t Co, const cv_conv2d_params *p) {
    conv_geo g = geo_of(xshape, Co, p->k);
    size_t need = 0;
    int uses_gemm = 0;
    for (int op = 0; op < 3; op++) {
        cv_conv_algo a = cv_conv2d_algo(ctx, xshape, Co, p, op);
        if (a == CV_CONV_GEMM) uses_gemm = 1;
        else if (a == CV_CONV_VEC) {
            size_t b = op == 2 ? vec_workspace(ctx, &g).bytes : 0;
            if (b > need) need = b;
        } else {
            size_t b = direct_workspace(ctx, &g, p->gelu_in, op).bytes;
            if (b > need) need = b;
        }
    }
    if (uses_gemm) {
        gemm_ws ws;
        /* a failed query shows up again, with its message, in the op itself */
        if (gemm_workspace(ctx, &g, p->gelu_in, &ws) == CV_OK && ws.bytes > need) need = ws.bytes;
    }
    return need;
}

/* ---- SGEMM --------------------------------------------------------------- */

static cv_status sgemm_tmp(cv_ctx *ctx, const char *what, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                           float alpha, cl_mem a, size_t a_off, int64_t lda, cl_mem b, size_t b_off, int64_t ldb,
                           float beta, cl_mem c, size_t c_off, int64_t ldc, cl_mem temp) {
    if (m <= 0 || n <= 0 || k <= 0 || lda <= 0 || ldb <= 0 || ldc <= 0)
        return cv_error(CV_ERR_ARG, "%s: SGEMM with m=%lld n=%lld k=%lld lda=%lld ldb=%lld ldc=%lld", what,
                        (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldb, (long long)ldc);
    cl_command_queue q = cv_ctx_queue(ctx);
    cl_event ev = NULL, *evp = cv_ctx_profiling(ctx) ? &ev : NULL;
    CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode r = temp
        ? CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, (size_t)m, (size_t)n, (size_t)k, alpha,
                                     a, a_off, (size_t)lda, b, b_off, (size_t)ldb, beta, c, c_off, (size_t)ldc, &q, evp, temp)
        : CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, (size_t)m, (size_t)n, (size_t)k, alpha,
                       a, a_off, (size_t)lda, b, b_off, (size_t)ldb, beta, c, c_off, (size_t)ldc, &q, evp);
    if (r != CLBlastSuccess) {
        cv_status st = r == CLBlastTempBufferAllocFailure || r == CLBlastOpenCLOutOfResources ? CV_ERR_DEVMEM : CV_ERR_CL;
        return cv_error(st, "%s: CLBlastSgemm%s (row-major, %s x %s, m=%lld n=%lld k=%lld, lda=%lld ldb=%lld ldc=%lld, "
                        "offsets %zu/%zu/%zu) on %s: %s (%d)", what, temp ? "WithTempBuffer" : "",
                        trans_a ? "A^T" : "A", trans_b ? "B^T" : "B", (long long)m, (long long)n, (long long)k,
                        (long long)lda, (long long)ldb, (long long)ldc, a_off, b_off, c_off,
                        cv_ctx_device_name(ctx), clblast_name(r), (int)r);
    }
    if (ev) cv_ctx_profile_event(ctx, "clblast_sgemm", ev);
    return CV_OK;
}

cv_status cv_sgemm(cv_ctx *ctx, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   cl_mem a, size_t a_off, int64_t lda, cl_mem b, size_t b_off, int64_t ldb, float beta,
                   cl_mem c, size_t c_off, int64_t ldc) {
    return sgemm_tmp(ctx, "cv_sgemm", trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb,
                     beta, c, c_off, ldc, NULL);
}

/* ---- bias ---------------------------------------------------------------- */

/* y = (set ? 0 : y) + (b ? b[c] : 0) + (r ? r : 0) over (N, C, HW) */
static cv_status bias_launch(cv_ctx *ctx, const cv_tensor *b, const cv_tensor *r, const cv_tensor *y, int set) {
    int64_t N = y->shape[0], C = y->shape[1], HW = y->shape[2] * y->shape[3];
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_conv2d_bias_fwd");
    cv_karg_mem(&ka, present(b) ? b->buf : y->buf); cv_karg_u64(&ka, present(b) ? b->off : 0);
    cv_karg_i32(&ka, present(b));
    cv_karg_mem(&ka, present(r) ? r->buf : y->buf); cv_karg_u64(&ka, present(r) ? r->off : 0);
    cv_karg_i32(&ka, present(r));
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i32(&ka, (int32_t)C); cv_karg_i64(&ka, HW); cv_karg_i64(&ka, N * C * HW); cv_karg_i32(&ka, set);
    return cv_launch1(&ka, (size_t)(N * C * HW), 256);
}

/* db += sum dy per channel (db may be absent), dr += dy (dr may be absent) */
static cv_status bias_bwd_launch(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *db, const cv_tensor *dr,
                                 int set_dr) {
    int64_t N = dy->shape[0], C = dy->shape[1], HW = dy->shape[2] * dy->shape[3];
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_conv2d_bias_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, present(db) ? db->buf : dy->buf); cv_karg_u64(&ka, present(db) ? db->off : 0);
    cv_karg_i32(&ka, present(db));
    cv_karg_mem(&ka, present(dr) ? dr->buf : dy->buf); cv_karg_u64(&ka, present(dr) ? dr->off : 0);
    cv_karg_i32(&ka, present(dr) ? (set_dr ? 2 : 1) : 0);
    cv_karg_i32(&ka, (int32_t)N); cv_karg_i32(&ka, (int32_t)C); cv_karg_i64(&ka, HW);
    return cv_launch1(&ka, (size_t)C * 64, 64);
}

cv_status cv_bias_fwd(cv_ctx *ctx, const cv_tensor *b, const cv_tensor *y) {
    if (!present(b) || !present(y)) return cv_error(CV_ERR_ARG, "bias: missing bias or output tensor");
    if (cv_tensor_numel(b) != y->shape[1]) {
        char s[64];
        return cv_error(CV_ERR_SHAPE, "bias: %lld values for y %s (expected one per channel)",
                        (long long)cv_tensor_numel(b), cv_shape_str(y->shape, s, sizeof s));
    }
    return bias_launch(ctx, b, NULL, y, 0);
}

cv_status cv_bias_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *db) {
    if (!present(db)) return CV_OK;
    if (!present(dy)) return cv_error(CV_ERR_ARG, "bias backward: missing dy");
    int64_t C = dy->shape[1];
    if (cv_tensor_numel(db) != C) {
        char s[64];
        return cv_error(CV_ERR_SHAPE, "bias backward: db has %lld values for dy %s (expected one per channel)",
                        (long long)cv_tensor_numel(db), cv_shape_str(dy->shape, s, sizeof s));
    }
    return bias_bwd_launch(ctx, dy, db, NULL, 0);
}

/* ---- DIRECT -------------------------------------------------------------- */

/* Forward (bwd = 0: in = x, out = y) or backward-data (bwd = 1: in = dy,
 * out = dx, xg = x for GELU'). */
static cv_status direct_tile(cv_ctx *ctx, int bwd, const conv_geo *g, const cv_tensor *in, const cv_tensor *w,
                             const cv_tensor *b, const cv_tensor *r, const cv_tensor *out, const cv_tensor *xg,
                             int gelu, int accumulate) {
    int64_t Cin = bwd ? g->Co : g->Ci, Cout = bwd ? g->Ci : g->Co;
    int64_t cob = g->K == 3 ? CT_COB3 : CT_COB1, ncob = (Cout + cob - 1) / cob;
    static const char *names[2][2] = { { "cvk_conv2d_fwd_k1", "cvk_conv2d_fwd_k3" },
                                       { "cvk_conv2d_bwd_data_k1", "cvk_conv2d_bwd_data_k3" } };
    cv_kargs ka = cv_kargs_begin(ctx, names[bwd][g->K == 3]);
    cv_karg_mem(&ka, in->buf); cv_karg_u64(&ka, in->off);
    cv_karg_mem(&ka, w->buf); cv_karg_u64(&ka, w->off);
    cv_karg_i64(&ka, bwd ? g->KK : g->Ci * g->KK);              /* sw_o */
    cv_karg_i64(&ka, bwd ? g->Ci * g->KK : g->KK);              /* sw_i */
    cv_karg_i32(&ka, bwd);                                      /* flip */
    cv_karg_mem(&ka, present(b) ? b->buf : w->buf); cv_karg_u64(&ka, present(b) ? b->off : 0);
    cv_karg_i32(&ka, present(b));
    cv_karg_mem(&ka, present(r) ? r->buf : w->buf); cv_karg_u64(&ka, present(r) ? r->off : 0);
    cv_karg_i32(&ka, present(r));
    cv_karg_mem(&ka, out->buf); cv_karg_u64(&ka, out->off);
    cv_karg_mem(&ka, xg ? xg->buf : in->buf); cv_karg_u64(&ka, xg ? xg->off : 0);
    cv_karg_i32(&ka, (int32_t)g->N); cv_karg_i32(&ka, (int32_t)Cin); cv_karg_i32(&ka, (int32_t)Cout);
    cv_karg_i32(&ka, (int32_t)g->H); cv_karg_i32(&ka, (int32_t)g->W);
    cv_karg_i32(&ka, gelu); cv_karg_i32(&ka, accumulate);
    size_t gs[3] = { (size_t)((g->W + CT_TW - 1) / CT_TW) * CT_TX, (size_t)((g->H + CT_TY - 1) / CT_TY) * CT_TY,
                     (size_t)(g->N * ncob) };
    size_t ls[3] = { CT_TX, CT_TY, 1 };
    return cv_launch(&ka, 3, gs, ls);
}

/* out = GELU(x), or GELU'(x) when deriv */
static cv_status gelu_launch(cv_ctx *ctx, const cv_tensor *x, cl_mem out, size_t ooff, int deriv) {
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_conv2d_gelu");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, out); cv_karg_u64(&ka, ooff);
    cv_karg_i64(&ka, cv_tensor_numel(x)); cv_karg_i32(&ka, deriv);
    return cv_op_flat_launch(ctx, &ka, cv_tensor_numel(x));
}

static cv_status direct_fwd(cv_ctx *ctx, const conv_geo *g, const cv_tensor *x, const cv_tensor *w, const cv_tensor *b,
                            const cv_tensor *r, const cv_tensor *y, int gelu, int accumulate) {
    cv_status st = CV_OK;
    direct_ws d = direct_workspace(ctx, g, gelu, 0);
    if (d.pre_gelu) {
        cl_mem scr;
        CV_TRY(cv_ctx_scratch(ctx, d.bytes, &scr));
        CV_TRY(gelu_launch(ctx, x, scr, 0, 0));
        cv_tensor a = *x;
        a.buf = scr; a.off = 0;
        CV_TRY(direct_tile(ctx, 0, g, &a, w, b, r, y, NULL, 0, accumulate));
    } else {
        CV_TRY(direct_tile(ctx, 0, g, x, w, b, r, y, NULL, gelu, accumulate));
    }
fail:
    return st;
}

/* dx += conv^T(dy, w) * GELU'(x) (dx = with set); xd: GELU'(x) already
 * there (the plan's cache), else evaluated here */
static cv_status direct_bwd_data(cv_ctx *ctx, const conv_geo *g, const cv_tensor *x, const cv_tensor *xd,
                                 const cv_tensor *w, const cv_tensor *dy, const cv_tensor *dx, int gelu, int set) {
    cv_status st = CV_OK;
    direct_ws d = direct_workspace(ctx, g, gelu, 1);
    if (xd) {
        CV_TRY(direct_tile(ctx, 1, g, dy, w, NULL, NULL, dx, xd, 2, !set));         /* 2: xg holds GELU'(x) */
    } else if (d.pre_gelu) {
        cl_mem scr;
        CV_TRY(cv_ctx_scratch(ctx, d.bytes, &scr));
        CV_TRY(gelu_launch(ctx, x, scr, 0, 1));
        cv_tensor gp = *x;
        gp.buf = scr; gp.off = 0;
        CV_TRY(direct_tile(ctx, 1, g, dy, w, NULL, NULL, dx, &gp, 2, !set));   /* 2: xg holds GELU'(x) */
    } else {
        CV_TRY(direct_tile(ctx, 1, g, dy, w, NULL, NULL, dx, x, gelu, !set));
    }
fail:
    return st;
}

static cv_status direct_wgrad(cv_ctx *ctx, const conv_geo *g, const cv_tensor *x, const cv_tensor *dy,
                              const cv_tensor *dw, int gelu) {
    cv_status st = CV_OK;
    direct_ws d = direct_workspace(ctx, g, gelu, 2);
    int64_t S = d.S, nw = g->Co * g->Ci * g->KK;
    cl_mem scr = NULL;
    cv_tensor a = *x;
    if (d.bytes) CV_TRY(cv_ctx_scratch(ctx, d.bytes, &scr));
    if (d.pre_gelu) {
        CV_TRY(gelu_launch(ctx, x, scr, 0, 0));
        a.buf = scr; a.off = 0;
        gelu = 0;
    }
    cv_kargs ka = cv_kargs_begin(ctx, g->K == 3 ? "cvk_conv2d_bwd_weight_k3" : "cvk_conv2d_bwd_weight_k1");
    cv_karg_mem(&ka, a.buf); cv_karg_u64(&ka, a.off);
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, S > 1 ? scr : dw->buf); cv_karg_u64(&ka, S > 1 ? d.part_off : dw->off);
    cv_karg_i32(&ka, (int32_t)g->N); cv_karg_i32(&ka, (int32_t)g->Ci); cv_karg_i32(&ka, (int32_t)g->H);
    cv_karg_i32(&ka, (int32_t)g->W); cv_karg_i32(&ka, (int32_t)g->Co); cv_karg_i32(&ka, gelu);
    cv_karg_i32(&ka, (int32_t)S);
    size_t gs[3] = { (size_t)((g->Ci + WB_CI - 1) / WB_CI) * WB_CI, (size_t)((g->Co + WB_CO - 1) / WB_CO) * WB_CO, (size_t)S };
    size_t ls[3] = { WB_CI, WB_CO, 1 };
    CV_TRY(cv_launch(&ka, 3, gs, ls));
    if (S > 1) {
        cv_kargs kr = cv_kargs_begin(ctx, "cvk_conv2d_reduce");
        cv_karg_mem(&kr, scr); cv_karg_u64(&kr, d.part_off);
        cv_karg_mem(&kr, dw->buf); cv_karg_u64(&kr, dw->off);
        cv_karg_i64(&kr, nw); cv_karg_i32(&kr, (int32_t)S);
        CV_TRY(cv_launch1(&kr, (size_t)nw, 64));
    }
fail:
    return st;
}

/* ---- VEC ----------------------------------------------------------------- */

/* Work-group size along the pixel vectors: the tuning's, at most the row
 * of vectors (a NULL local size lets PoCL pack a whole grid into one
 * group, serialising it on one core and overflowing the stack with the
 * work-items' register arrays). */
static size_t vec_local(cv_ctx *ctx, size_t n) {
    size_t w = (size_t)cv_ctx_tune(ctx)->vec_wg;
    while (w > 1 && (w > n || w > cv_ctx_max_wg(ctx))) w >>= 1;
    return w < 1 ? 1 : w;
}

/* Forward (bwd = 0: in = x, out = y) or backward-data (bwd = 1: in = dy,
 * out = dx += ..., xg = x for GELU'). */
static cv_status vec_tile(cv_ctx *ctx, int bwd, const conv_geo *g, const cv_tensor *in, const cv_tensor *w,
                          const cv_tensor *b, const cv_tensor *r, const cv_tensor *out, const cv_tensor *xg,
                          const cv_tensor *xa, int gelu, int accumulate) {
    const cv_tune *t = cv_ctx_tune(ctx);
    int64_t Cin = bwd ? g->Co : g->Ci, Cout = bwd ? g->Ci : g->Co, V = t->conv_v;
    int64_t cob = 0;
    const char *name = "cvk_conv2d_vec3";
    if (g->K == 1) {
        cob = Cout <= 8 ? 8 : Cout <= 16 ? 16 : 32;          /* the smallest block that holds Cout ... */
        if (cob > t->conv_cob1) cob = t->conv_cob1;         /* ... up to the tuning's (register budget) */
        name = cob == 8 ? "cvk_conv2d_vec1_cob8" : cob == 16 ? "cvk_conv2d_vec1_cob16" : "cvk_conv2d_vec1_cob32";
    }
    cv_kargs ka = cv_kargs_begin(ctx, name);
    cv_karg_mem(&ka, in->buf); cv_karg_u64(&ka, in->off);
    cv_karg_mem(&ka, w->buf); cv_karg_u64(&ka, w->off);
    cv_karg_i64(&ka, bwd ? g->KK : g->Ci * g->KK);              /* sw_o */
    cv_karg_i64(&ka, bwd ? g->Ci * g->KK : g->KK);              /* sw_i */
    cv_karg_mem(&ka, present(b) ? b->buf : w->buf); cv_karg_u64(&ka, present(b) ? b->off : 0);
    cv_karg_i32(&ka, present(b));
    cv_karg_mem(&ka, present(r) ? r->buf : w->buf); cv_karg_u64(&ka, present(r) ? r->off : 0);
    cv_karg_i32(&ka, present(r));
    cv_karg_mem(&ka, out->buf); cv_karg_u64(&ka, out->off);
    cv_karg_mem(&ka, xg ? xg->buf : in->buf); cv_karg_u64(&ka, xg ? xg->off : 0);
    cv_karg_mem(&ka, present(xa) ? xa->buf : out->buf); cv_karg_u64(&ka, present(xa) ? xa->off : 0);
    cv_karg_i32(&ka, present(xa));
    if (g->K == 1) {
        cv_karg_i32(&ka, (int32_t)g->N); cv_karg_i32(&ka, (int32_t)Cin); cv_karg_i32(&ka, (int32_t)Cout);
        cv_karg_i64(&ka, g->HW); cv_karg_i32(&ka, gelu); cv_karg_i32(&ka, accumulate); cv_karg_i32(&ka, bwd);
        size_t gs[3] = { (size_t)(g->HW / V), (size_t)((Cout + cob - 1) / cob), (size_t)g->N };
        size_t ls[3] = { vec_local(ctx, gs[0]), 1, 1 };
        return cv_launch(&ka, 3, gs, ls);
    }
    int64_t R = t->conv_r3, ncob = (Cout + t->conv_cob3 - 1) / t->conv_cob3;
    cv_karg_i32(&ka, bwd);                                      /* flip */
    cv_karg_i32(&ka, (int32_t)g->N); cv_karg_i32(&ka, (int32_t)Cin); cv_karg_i32(&ka, (int32_t)Cout);
    cv_karg_i32(&ka, (int32_t)g->H); cv_karg_i32(&ka, (int32_t)g->W);
    cv_karg_i32(&ka, gelu); cv_karg_i32(&ka, accumulate); cv_karg_i32(&ka, bwd);
    size_t gs[3] = { (size_t)(g->W / V), (size_t)((g->H + R - 1) / R), (size_t)(g->N * ncob) };
    size_t ls[3] = { vec_local(ctx, gs[0]), 1, 1 };
    return cv_launch(&ka, 3, gs, ls);
}

/* dw += ..., and in the same pass db += sum dy, dr += dy (either may be
 * absent); dw must be present. */
static cv_status vec_wgrad(cv_ctx *ctx, const conv_geo *g, const cv_tensor *x, const cv_tensor *dy,
                           const cv_tensor *dw, const cv_tensor *db, const cv_tensor *dr, int set_dr, int gelu) {
    cv_status st = CV_OK;
    vec_ws v = vec_workspace(ctx, g);
    int64_t wcob = vec_wcob(ctx, g->K), nob = (g->Co + wcob - 1) / wcob, nw = g->Co * g->Ci * g->KK;
    cl_mem scr = NULL;
    if (v.bytes) CV_TRY(cv_ctx_scratch(ctx, v.bytes, &scr));
    cv_kargs ka = cv_kargs_begin(ctx, g->K == 1 ? "cvk_conv2d_vec1_wgrad" : "cvk_conv2d_vec3_wgrad");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dw->buf); cv_karg_u64(&ka, dw->off);
    cv_karg_mem(&ka, present(db) ? db->buf : dw->buf); cv_karg_u64(&ka, present(db) ? db->off : 0);
    cv_karg_i32(&ka, present(db));
    cv_karg_mem(&ka, present(dr) ? dr->buf : dw->buf); cv_karg_u64(&ka, present(dr) ? dr->off : 0);
    cv_karg_i32(&ka, present(dr) ? (set_dr ? 2 : 1) : 0);
    cv_karg_mem(&ka, scr ? scr : dw->buf); cv_karg_u64(&ka, 0);
    cv_karg_i32(&ka, (int32_t)g->N); cv_karg_i32(&ka, (int32_t)g->Ci); cv_karg_i32(&ka, (int32_t)g->Co);
    if (g->K == 1) cv_karg_i64(&ka, g->HW);
    else { cv_karg_i32(&ka, (int32_t)g->H); cv_karg_i32(&ka, (int32_t)g->W); }
    cv_karg_i32(&ka, gelu); cv_karg_i32(&ka, (int32_t)v.S);
    int64_t cib = cv_ctx_tune(ctx)->conv_wcib1;
    size_t gs[3] = { (size_t)(g->K == 1 ? (g->Ci + cib - 1) / cib + 1 : 3 * g->Ci + 1), (size_t)nob, (size_t)v.S };
    size_t ls[3] = { 1, 1, 1 };
    CV_TRY(cv_launch(&ka, 3, gs, ls));
    if (v.S > 1) {
        cv_kargs kr = cv_kargs_begin(ctx, "cvk_conv2d_vec_reduce");
        cv_karg_mem(&kr, scr); cv_karg_u64(&kr, 0);
        cv_karg_mem(&kr, dw->buf); cv_karg_u64(&kr, dw->off);
        cv_karg_mem(&kr, present(db) ? db->buf : dw->buf); cv_karg_u64(&kr, present(db) ? db->off : 0);
        cv_karg_i32(&kr, present(db));
        cv_karg_i64(&kr, nw); cv_karg_i64(&kr, g->Co); cv_karg_i32(&kr, (int32_t)v.S);
        CV_TRY(cv_launch1(&kr, (size_t)(nw + g->Co), 64));
    }
fail:
    return st;
}

/* xa = GELU(x), xd = GELU'(x) in one flat pass (the cached form of gelu_in),
 * in the form (vector or scalar) of the algorithm that reads them */
static cv_status gelu_both_launch(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *xa, const cv_tensor *xd,
                                  int vform) {
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_conv2d_gelu_both");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, xa->buf); cv_karg_u64(&ka, xa->off);
    cv_karg_mem(&ka, xd->buf); cv_karg_u64(&ka, xd->off);
    cv_karg_i64(&ka, cv_tensor_numel(x)); cv_karg_i32(&ka, vform);
    return cv_op_flat_launch(ctx, &ka, cv_tensor_numel(x));
}

/* ---- GEMM ---------------------------------------------------------------- */

static cv_status im2col_launch(cv_ctx *ctx, const conv_geo *g, const cv_tensor *x, cl_mem col, size_t col_off,
                               int64_t n0, int64_t nb, int64_t r0, int64_t nr, int gelu) {
    int64_t P = g->K / 2;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_conv2d_im2col");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, col); cv_karg_u64(&ka, col_off);
    cv_karg_i32(&ka, (int32_t)g->Ci); cv_karg_i32(&ka, (int32_t)g->H); cv_karg_i32(&ka, (int32_t)g->W);
    cv_karg_i32(&ka, g->K); cv_karg_i32(&ka, (int32_t)n0); cv_karg_i32(&ka, (int32_t)nb);
    cv_karg_i32(&ka, (int32_t)r0); cv_karg_i32(&ka, (int32_t)nr); cv_karg_i32(&ka, gelu);
    size_t gs[2] = { (size_t)(g->W + 2 * P), (size_t)(nb * g->Ci * (nr + 2 * P)) }, ls[2] = { 32, 4 };
    return cv_launch(&ka, 2, gs, ls);
}

static cv_status col2im_launch(cv_ctx *ctx, const conv_geo *g, cl_mem col, size_t col_off, const cv_tensor *dx,
                               const cv_tensor *x, int64_t n0, int64_t nb, int64_t r0, int64_t nr, int gelu) {
    int64_t P = g->K / 2, ylo = r0 - P < 0 ? 0 : r0 - P, yhi = r0 + nr + P > g->H ? g->H : r0 + nr + P;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_conv2d_col2im");
    cv_karg_mem(&ka, col); cv_karg_u64(&ka, col_off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_i32(&ka, (int32_t)g->Ci); cv_karg_i32(&ka, (int32_t)g->H); cv_karg_i32(&ka, (int32_t)g->W);
    cv_karg_i32(&ka, g->K); cv_karg_i32(&ka, (int32_t)n0); cv_karg_i32(&ka, (int32_t)nb);
    cv_karg_i32(&ka, (int32_t)r0); cv_karg_i32(&ka, (int32_t)nr); cv_karg_i32(&ka, gelu);
    return cv_launch1(&ka, (size_t)(nb * g->Ci * (yhi - ylo) * g->W), 256);
}

/* Which pass of the GEMM algorithm. */
enum { PASS_FWD, PASS_DATA, PASS_WEIGHT };

/* Runs one pass over all chunks.  Forward: y (already holding b or y + b)
 * += W col.  Backward-data: dcol = W^T dy, dx += col2im(dcol).
 * Backward-weight: dw += dy col^T. */
static cv_status gemm_pass(cv_ctx *ctx, int pass, const conv_geo *g, const cv_tensor *x, const cv_tensor *w,
                           const cv_tensor *y_or_dy, const cv_tensor *dx_or_dw, int gelu) {
    cv_status st = CV_OK;
    gemm_ws ws;
    cl_mem scr = NULL;
    CV_TRY(gemm_workspace(ctx, g, gelu, &ws));
    CV_TRY(cv_ctx_scratch(ctx, ws.bytes, &scr));
    const conv_chunk *c = &ws.chunk;
    const int64_t cikk = g->Ci * g->KK, HW = g->HW;
    static const char *what[3] = { "conv2d forward", "conv2d backward-data", "conv2d backward-weight" };
    for (int64_t n0 = 0; n0 < g->N; n0 += c->nb) {
        int64_t nb = g->N - n0 < c->nb ? g->N - n0 : c->nb;
        for (int64_t r0 = 0; r0 < g->H; r0 += c->nr) {
            int64_t nr = g->H - r0 < c->nr ? g->H - r0 : c->nr, np = nr * g->W;
            if (c->need_col && pass != PASS_DATA)
                CV_TRY(im2col_launch(ctx, g, x, scr, ws.col_off, n0, nb, r0, nr, gelu));
            for (int64_t i = 0; i < nb; i++) {
                int64_t n = n0 + i;
                size_t colo = ws.col_off + (size_t)(i * cikk * np);
                cl_mem bm = c->need_col ? scr : x->buf;
                size_t bo = c->need_col ? colo : x->off + (size_t)(n * g->Ci * HW + r0 * g->W);
                int64_t ldb = c->need_col ? np : HW;
                size_t yo = y_or_dy->off + (size_t)(n * g->Co * HW + r0 * g->W);
                if (pass == PASS_FWD) {
                    CV_TRY(sgemm_tmp(ctx, what[pass], 0, 0, g->Co, np, cikk, 1.0f, w->buf, w->off, cikk,
                                     bm, bo, ldb, 1.0f, y_or_dy->buf, yo, HW, scr));
                } else if (pass == PASS_WEIGHT) {
                    CV_TRY(sgemm_tmp(ctx, what[pass], 0, 1, g->Co, cikk, np, 1.0f, y_or_dy->buf, yo, HW,
                                     bm, bo, ldb, 1.0f, dx_or_dw->buf, dx_or_dw->off, cikk, scr));
                } else if (!c->need_col) {          /* 1x1 without GELU: dx += W^T dy directly */
                    size_t xo = dx_or_dw->off + (size_t)(n * g->Ci * HW + r0 * g->W);
                    CV_TRY(sgemm_tmp(ctx, what[pass], 1, 0, cikk, np, g->Co, 1.0f, w->buf, w->off, cikk,
                                     y_or_dy->buf, yo, HW, 1.0f, dx_or_dw->buf, xo, HW, scr));
                } else {
                    CV_TRY(sgemm_tmp(ctx, what[pass], 1, 0, cikk, np, g->Co, 1.0f, w->buf, w->off, cikk,
                                     y_or_dy->buf, yo, HW, 0.0f, scr, colo, np, scr));
                }
            }
            if (c->need_col && pass == PASS_DATA)
                CV_TRY(col2im_launch(ctx, g, scr, ws.col_off, dx_or_dw, x, n0, nb, r0, nr, gelu));
        }
    }
fail:
    return st;
}

/* ---- launchers ----------------------------------------------------------- */

cv_status cv_conv2d_fwd_ex(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *b,
                           const cv_tensor *y, const cv_conv2d_params *p, const cv_conv2d_aux *aux) {
    cv_status st = CV_OK;
    const cv_tensor *r = aux ? aux->r : NULL, *xa = aux && p && p->gelu_in ? aux->xa : NULL;
    const cv_tensor *xd = present(xa) ? aux->xd : NULL;
    CV_TRY(check_params(p, "conv2d forward"));
    CV_TRY(check_shapes("conv2d forward", x, w, y, p));
    conv_geo g = geo_of(x->shape, y->shape[1], p->k);
    if (present(b) && cv_tensor_numel(b) != g.Co)
        return cv_error(CV_ERR_SHAPE, "conv2d forward: bias has %lld values for %lld output channels",
                        (long long)cv_tensor_numel(b), (long long)g.Co);
    if (present(r)) CV_TRY(cv_op_same_shape("conv2d forward", "residual", r, "y", y));
    if (present(xa)) CV_TRY(cv_op_same_shape("conv2d forward", "GELU cache", xa, "x", x));
    if (present(xd)) CV_TRY(cv_op_same_shape("conv2d forward", "GELU' cache", xd, "x", x));
    int acc = p->accumulate, gelu = p->gelu_in;
    if (present(r) && r->buf == y->buf && r->off == y->off) { acc = 1; r = NULL; }   /* y += conv */
    cv_conv_algo a = cv_conv2d_algo(ctx, x->shape, g.Co, p, 0);
    if (present(xd)) {                          /* GELU(x) and GELU'(x) into the caches, convolve GELU(x) */
        if (!aux->cached) CV_TRY(gelu_both_launch(ctx, x, xa, xd, a == CV_CONV_VEC));
        x = xa;
        gelu = 0;
        xa = NULL;
    } else if (present(xa) && a != CV_CONV_VEC) {      /* GELU(x) into the cache, then convolve that */
        CV_TRY(gelu_launch(ctx, x, xa->buf, xa->off, 0));
        x = xa;
        gelu = 0;
        xa = NULL;
    }
    if (a == CV_CONV_VEC) {
        CV_TRY(vec_tile(ctx, 0, &g, x, w, b, r, y, NULL, xa, gelu, acc));
    } else if (a == CV_CONV_DIRECT) {
        CV_TRY(direct_fwd(ctx, &g, x, w, b, r, y, gelu, acc));
    } else {
        /* y = b (+ r) (or y + b + r), then y += W col: one pass over y, and a y
         * holding NaN from an earlier step never leaks through beta = 0 */
        if (present(b) || present(r) || !acc) CV_TRY(bias_launch(ctx, b, r, y, !acc));
        CV_TRY(gemm_pass(ctx, PASS_FWD, &g, x, w, y, NULL, gelu));
    }
fail:
    return st;
}

cv_status cv_conv2d_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *b,
                        const cv_tensor *y, const cv_conv2d_params *p) {
    return cv_conv2d_fwd_ex(ctx, x, w, b, y, p, NULL);
}

cv_status cv_conv2d_bwd_ex(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *dy,
                           const cv_tensor *dx, const cv_tensor *dw, const cv_tensor *db,
                           const cv_conv2d_params *p, const cv_conv2d_aux *aux) {
    cv_status st = CV_OK;
    char s1[64], s2[64];
    const cv_tensor *dr = aux ? aux->dr : NULL, *xa = aux && p && p->gelu_in ? aux->xa : NULL;
    const cv_tensor *xd = present(xa) && present(aux->xd) ? aux->xd : NULL;
    int set_dx = aux && aux->set_dx, set_dr = aux && aux->set_dr;
    CV_TRY(check_params(p, "conv2d backward"));
    CV_TRY(check_shapes("conv2d backward", x, w, dy, p));
    conv_geo g = geo_of(x->shape, dy->shape[1], p->k);
    if (present(dx)) CV_TRY(cv_op_same_shape("conv2d backward", "dx", dx, "x", x));
    if (present(dw) && cv_tensor_numel(dw) != cv_tensor_numel(w))
        return cv_error(CV_ERR_SHAPE, "conv2d backward: dw %s does not match w %s",
                        cv_shape_str(dw->shape, s1, sizeof s1), cv_shape_str(w->shape, s2, sizeof s2));
    if (present(db) && cv_tensor_numel(db) != g.Co)
        return cv_error(CV_ERR_SHAPE, "conv2d backward: db has %lld values for %lld output channels",
                        (long long)cv_tensor_numel(db), (long long)g.Co);
    if (present(dr)) CV_TRY(cv_op_same_shape("conv2d backward", "dr", dr, "dy", dy));
    if (present(xa)) CV_TRY(cv_op_same_shape("conv2d backward", "GELU cache", xa, "x", x));
    if (xd) CV_TRY(cv_op_same_shape("conv2d backward", "GELU' cache", xd, "x", x));
    /* backward-weight sees a(x): the forward's GELU(x) when cached */
    const cv_tensor *xw = present(xa) ? xa : x;
    int gw = present(xa) ? 0 : p->gelu_in;
    cv_conv_algo aw = present(dw) ? cv_conv2d_algo(ctx, x->shape, g.Co, p, 2) : CV_CONV_DIRECT;
    if (aw == CV_CONV_VEC) {
        CV_TRY(vec_wgrad(ctx, &g, xw, dy, dw, db, dr, set_dr, gw));         /* db and dr in the same pass */
    } else {
        if (present(db) || present(dr)) CV_TRY(bias_bwd_launch(ctx, dy, db, dr, set_dr));
        if (present(dw)) {
            if (aw == CV_CONV_DIRECT) CV_TRY(direct_wgrad(ctx, &g, xw, dy, dw, gw));
            else CV_TRY(gemm_pass(ctx, PASS_WEIGHT, &g, xw, w, dy, dw, gw));
        }
    }
    if (present(dx)) {
        /* a'(x): GELU'(x) evaluated (gelu 1), read from xd (2), or none (0) */
        const cv_tensor *xg = xd ? xd : x;
        int gd = xd ? 2 : p->gelu_in;
        cv_conv_algo a = cv_conv2d_algo(ctx, x->shape, g.Co, p, 1);
        if (a == CV_CONV_VEC) CV_TRY(vec_tile(ctx, 1, &g, dy, w, NULL, NULL, dx, xg, NULL, gd, !set_dx));
        else if (a == CV_CONV_DIRECT) CV_TRY(direct_bwd_data(ctx, &g, x, xd, w, dy, dx, p->gelu_in, set_dx));
        else {
            if (set_dx) CV_TRY(cv_fill_fwd(ctx, dx, 0.0f));     /* row chunks overlap in col2im: accumulate */
            CV_TRY(gemm_pass(ctx, PASS_DATA, &g, xg, w, dy, dx, gd));
        }
    }
fail:
    return st;
}

cv_status cv_conv2d_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *w, const cv_tensor *dy,
                        const cv_tensor *dx, const cv_tensor *dw, const cv_tensor *db,
                        const cv_conv2d_params *p) {
    return cv_conv2d_bwd_ex(ctx, x, w, dy, dx, dw, db, p, NULL);
}

