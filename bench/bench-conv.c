/* bench-conv.c -- speed of the convolution ops per algorithm at VDVAE
 * shapes, and of CLBlast SGEMM against the host's CBLAS (OpenBLAS), in one
 * run so that the ratios compare like with like.
 *
 * Conv rows: 1x1 and 3x3, forward, backward-data (dx only) and
 * backward-weight (dw only), gelu_in on (as in every VDVAE block), for the
 * DIRECT, GEMM and VEC algorithms, at W = 32 on 64x64 maps (the `small` preset,
 * bottleneck W/4 = 8) and W = 128 on 256x256 maps (the `paper` preset,
 * bottleneck 32), batch 4.  GFLOP/s counts 2 N Co Ci k^2 H W per op.
 * Each measurement: one warm-up call per algorithm, then `reps` calls of
 * each, interleaved (direct, gemm, direct, ...) and each followed by
 * clFinish; medians of wall-clock and of process CPU time are reported.
 * The CPU-time ratio is the one to trust on a shared host.  Invariant: the
 * numbers are ratios measured in the same process; nothing here asserts a
 * speed. */
#include "prog/cv_cli.h"
#include "ops/cv_ops.h"

#include <cblas.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "Usage: bench-conv [OPTIONS]\n"
    "Time conv2d (direct vs CLBlast GEMM) at VDVAE shapes and CLBlast SGEMM vs\n"
    "OpenBLAS, and print GFLOP/s tables (median of several runs).\n"
    "\n"
    "  --device SPEC   OpenCL device (SUBSTR, SUBSTR:IDX or IDX; default $CV_DEVICE)\n"
    "  --reps N        timed repetitions (default 5; the 256x256 shapes and\n"
    "                  SGEMM 2048 use at most 2)\n"
    "  --quick         64x64 shapes and SGEMM up to 1024 only\n"
    "  --only WHAT     'conv' or 'sgemm'\n"
    "  --shape I       only conv shape I (0-based row of the table)\n"
    "  --profile       print the per-kernel time table at the end\n"
    "  --gelu 0|1      gelu_in of the convs (default 1, as in VDVAE blocks)\n"
    "  -h, --help      show this help and exit\n"
    "  -V, --version   show the version and exit\n";

typedef struct bench_shape {
    const char *what;
    int64_t     N, Ci, Co, H, W;
    int         k, big;
} bench_shape;

static const bench_shape shapes[] = {
    { "small 1x1 W->W/4", 4,  32,   8,  64,  64, 1, 0 },
    { "small 3x3 W/4",    4,   8,   8,  64,  64, 3, 0 },
    { "small 1x1 W/4->W", 4,   8,  32,  64,  64, 1, 0 },
    { "small 3x3 W",      4,  32,  32,  64,  64, 3, 0 },
    { "paper 1x1 W->W/4", 4, 128,  32, 256, 256, 1, 1 },
    { "paper 3x3 W/4",    4,  32,  32, 256, 256, 3, 1 },
    { "paper 1x1 W/4->W", 4,  32, 128, 256, 256, 1, 1 },
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

typedef struct conv_bufs { cv_tensor x, w, b, y, dy, dx, dw; } conv_bufs;

/* One op (0 fwd, 1 bwd-data, 2 bwd-weight) with one algorithm. */
static cv_status run_op(cv_ctx *ctx, int op, const conv_bufs *t, const cv_conv2d_params *p) {
    if (op == 0) return cv_conv2d_fwd(ctx, &t->x, &t->w, &t->b, &t->y, p);
    if (op == 1) return cv_conv2d_bwd(ctx, &t->x, &t->w, &t->dy, &t->dx, NULL, NULL, p);
    return cv_conv2d_bwd(ctx, &t->x, &t->w, &t->dy, NULL, &t->dw, NULL, p);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Times the three algorithms on one op, interleaved (direct, gemm, vec,
 * direct, ...) so that all see the same machine load; medians of wall and
 * process CPU time (the CPU time is robust against other processes on a
 * shared host).  VEC runs DIRECT where its vector does not fit the rows. */
static void time_algos(cv_ctx *ctx, int op, const conv_bufs *t, int k, int gelu, int reps, double wall[3], double cpu[3]) {
    static const cv_conv_algo algos[3] = { CV_CONV_DIRECT, CV_CONV_GEMM, CV_CONV_VEC };
    double ws[3][64], cs[3][64];
    cv_status st;
    for (int r = -1; r < reps; r++)                       /* r = -1: warm-up */
        for (int a = 0; a < 3; a++) {
            cv_conv2d_params p = { k, gelu, 0, algos[a] };
            double t0 = cv_now(), c0 = cpu_now();
            if ((st = run_op(ctx, op, t, &p)) != CV_OK || (st = cv_ctx_finish(ctx)) != CV_OK) cv_cli_fail(st, NULL);
            if (r >= 0) { ws[a][r] = cv_now() - t0; cs[a][r] = cpu_now() - c0; }
        }
    for (int a = 0; a < 3; a++) { wall[a] = median(ws[a], reps); cpu[a] = median(cs[a], reps); }
}

static cl_mem alloc_rand(cv_ctx *ctx, const char *what, size_t n, uint64_t seed, float amp) {
    cl_mem m;
    cv_status st = cv_ctx_alloc(ctx, what, n * sizeof(float), 0, &m);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    float *h = malloc(n * sizeof *h);
    if (!h) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        h[i] = amp * (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    st = CV_CL(clEnqueueWriteBuffer(cv_ctx_queue(ctx), m, CL_TRUE, 0, n * sizeof(float), h, 0, NULL, NULL));
    free(h);
    if (st != CV_OK) cv_cli_fail(st, what);
    return m;
}

static cv_tensor view(cl_mem m, int64_t a, int64_t b, int64_t c, int64_t d) {
    cv_tensor t = { m, 0, { a, b, c, d } };
    return t;
}

#define N_SHAPES (sizeof shapes / sizeof *shapes)

static void bench_conv(cv_ctx *ctx, int reps, int quick, long only_shape, int gelu) {
    size_t ws_direct[N_SHAPES] = { 0 }, ws_gemm[N_SHAPES] = { 0 };
    int done[N_SHAPES] = { 0 };
    static const char *opname[3] = { "fwd", "bwd-data", "bwd-weight" };
    printf("conv2d, gelu_in=%d, GFLOP/s (median ms), 2*N*Co*Ci*k*k*H*W flops per op\n", gelu);
    printf("speed-up over direct of gemm and of vec: wall = by wall-clock time, cpu = by process CPU time\n");
    printf("%-17s %-16s %-10s %18s %18s %18s %6s %6s %6s %6s %6s\n", "shape", "NxCi->Co HxW", "op", "direct", "gemm", "vec",
           "g wall", "g cpu", "v wall", "v cpu", "auto");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const bench_shape *b = &shapes[s];
        if ((quick && b->big) || (only_shape >= 0 && (size_t)only_shape != s)) continue;
        int r = b->big ? (reps > 2 ? 2 : reps) : reps;
        size_t nx = (size_t)(b->N * b->Ci * b->H * b->W), ny = (size_t)(b->N * b->Co * b->H * b->W);
        size_t nw = (size_t)(b->Co * b->Ci * b->k * b->k);
        conv_bufs t;
        t.x  = view(alloc_rand(ctx, "x", nx, 1, 2.0f), b->N, b->Ci, b->H, b->W);
        t.w  = view(alloc_rand(ctx, "w", nw, 2, 0.1f), b->Co, b->Ci, b->k, b->k);
        t.b  = view(alloc_rand(ctx, "b", (size_t)b->Co, 3, 0.1f), 1, b->Co, 1, 1);
        t.y  = view(alloc_rand(ctx, "y", ny, 4, 1.0f), b->N, b->Co, b->H, b->W);
        t.dy = view(alloc_rand(ctx, "dy", ny, 5, 1.0f), b->N, b->Co, b->H, b->W);
        t.dx = view(alloc_rand(ctx, "dx", nx, 6, 1.0f), b->N, b->Ci, b->H, b->W);
        t.dw = view(alloc_rand(ctx, "dw", nw, 7, 1.0f), b->Co, b->Ci, b->k, b->k);
        /* reserve the scratch once, as a plan does */
        size_t ws = 0, wsa[3];
        for (int a = CV_CONV_DIRECT; a <= CV_CONV_VEC; a++) {
            cv_conv2d_params p = { b->k, gelu, 0, (cv_conv_algo)a };
            wsa[a - CV_CONV_DIRECT] = cv_conv2d_workspace(ctx, t.x.shape, b->Co, &p);
            if (wsa[a - CV_CONV_DIRECT] > ws) ws = wsa[a - CV_CONV_DIRECT];
        }
        ws_direct[s] = wsa[0];
        ws_gemm[s] = wsa[1];
        cl_mem scr;
        cv_status st;
        if (ws && (st = cv_ctx_scratch(ctx, ws, &scr)) != CV_OK) cv_cli_fail(st, NULL);
        double flop = 2.0 * (double)b->N * (double)b->Co * (double)b->Ci * b->k * b->k * (double)b->H * (double)b->W;
        char dims[40];
        snprintf(dims, sizeof dims, "%lldx%lld->%lld %lld", (long long)b->N, (long long)b->Ci, (long long)b->Co, (long long)b->H);
        for (int op = 0; op < 3; op++) {
            double tm[3], cpu[3];
            time_algos(ctx, op, &t, b->k, gelu, r, tm, cpu);
            cv_conv2d_params pa = { b->k, gelu, 0, CV_CONV_AUTO };
            cv_conv_algo au = cv_conv2d_algo(ctx, t.x.shape, b->Co, &pa, op);
            char c[3][32];
            for (int a = 0; a < 3; a++) snprintf(c[a], sizeof c[a], "%7.2f (%7.2f)", flop / tm[a] * 1e-9, tm[a] * 1e3);
            printf("%-17s %-16s %-10s %18s %18s %18s %6.2f %6.2f %6.2f %6.2f %6s\n", b->what, dims, opname[op], c[0], c[1],
                   c[2], tm[0] / tm[1], cpu[0] / cpu[1], tm[0] / tm[2], cpu[0] / cpu[2],
                   au == CV_CONV_GEMM ? "gemm" : au == CV_CONV_VEC ? "vec" : "direct");
            fflush(stdout);
        }
        done[s] = 1;
        clReleaseMemObject(t.x.buf); clReleaseMemObject(t.w.buf); clReleaseMemObject(t.b.buf);
        clReleaseMemObject(t.y.buf); clReleaseMemObject(t.dy.buf); clReleaseMemObject(t.dx.buf);
        clReleaseMemObject(t.dw.buf);
    }
    printf("\nscratch workspace (cv_conv2d_workspace, forward + backward), MiB\n");
    printf("%-17s %10s %10s\n", "shape", "direct", "gemm");
    for (size_t s = 0; s < N_SHAPES; s++)
        if (done[s]) printf("%-17s %10.2f %10.2f\n", shapes[s].what, ws_direct[s] / 1048576.0, ws_gemm[s] / 1048576.0);
}

static void bench_sgemm(cv_ctx *ctx, int reps, int quick) {
    static const int sizes[] = { 512, 1024, 2048 };
    printf("\nSGEMM C = A B (row-major, square), GFLOP/s (median ms)\n");
    printf("%-6s %20s %20s %16s\n", "n", "CLBlast", "OpenBLAS", "CLBlast/OpenBLAS");
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int n = sizes[s];
        if (quick && n > 1024) continue;
        int r = n >= 2048 ? (reps > 2 ? 2 : reps) : reps;
        size_t nn = (size_t)n * (size_t)n;
        cl_mem A = alloc_rand(ctx, "A", nn, 11, 1.0f), B = alloc_rand(ctx, "B", nn, 12, 1.0f), C = alloc_rand(ctx, "C", nn, 13, 1.0f);
        float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
        if (!a || !b || !c) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
        for (size_t i = 0; i < nn; i++) { a[i] = (float)((i * 7) % 13) / 13.0f - 0.5f; b[i] = (float)((i * 5) % 11) / 11.0f - 0.5f; c[i] = 0; }
        double tcl[64], tbl[64];
        cv_status st;
        for (int k = -1; k < r; k++) {          /* k = -1: warm-up (CLBlast compiles its kernels) */
            double t0 = cv_now();
            if ((st = cv_sgemm(ctx, 0, 0, n, n, n, 1.0f, A, 0, n, B, 0, n, 0.0f, C, 0, n)) != CV_OK ||
                (st = cv_ctx_finish(ctx)) != CV_OK)
                cv_cli_fail(st, NULL);
            if (k >= 0) tcl[k] = cv_now() - t0;
            t0 = cv_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            if (k >= 0) tbl[k] = cv_now() - t0;
        }
        double mc = median(tcl, r), mb = median(tbl, r), flop = 2.0 * n * (double)n * n;
        char c0[32], c1[32];
        snprintf(c0, sizeof c0, "%8.2f (%7.2f)", flop / mc * 1e-9, mc * 1e3);
        snprintf(c1, sizeof c1, "%8.2f (%7.2f)", flop / mb * 1e-9, mb * 1e3);
        printf("%-6d %20s %20s %16.3f\n", n, c0, c1, mb / mc);
        fflush(stdout);
        clReleaseMemObject(A); clReleaseMemObject(B); clReleaseMemObject(C);
        free(a); free(b); free(c);
    }
}

int main(int argc, char **argv) {
    cv_cli_init("bench-conv", usage);
    const char *device = NULL, *only = NULL;
    long reps = 5;
    int quick = 0, profile = 0;
    long only_shape = -1, gelu = 1;
    for (int i = 1; i < argc; i++) {
        if (cv_cli_common(argv[i])) continue;
        if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) continue;
        if (cv_cli_opt_long(argc, argv, &i, "--reps", 1, 64, &reps)) continue;
        if (cv_cli_opt_str(argc, argv, &i, "--only", &only)) {
            if (strcmp(only, "conv") && strcmp(only, "sgemm")) cv_cli_usage_error("--only: '%s' is not 'conv' or 'sgemm'", only);
            continue;
        }
        if (cv_cli_opt_long(argc, argv, &i, "--shape", 0, (long)(sizeof shapes / sizeof *shapes) - 1, &only_shape)) continue;
        if (cv_cli_opt_long(argc, argv, &i, "--gelu", 0, 1, &gelu)) continue;
        if (!strcmp(argv[i], "--quick")) { quick = 1; continue; }
        if (!strcmp(argv[i], "--profile")) { profile = 1; continue; }
        cv_cli_usage_error("unknown argument '%s'", argv[i]);
    }
    cv_ctx_opts o = cv_ctx_opts_default();
    o.device = device;
    o.profile = profile;
    cv_ctx *ctx;
    cv_status st = cv_ctx_new(&o, &ctx);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    printf("device: %s (%s), %s\n", cv_ctx_device_name(ctx), cv_ctx_vendor(ctx), cv_ctx_is_gpu(ctx) ? "GPU" : "not a GPU");
    double t0 = cv_now();
    if (!only || !strcmp(only, "conv")) bench_conv(ctx, (int)reps, quick, only_shape, (int)gelu);
    if (!only || !strcmp(only, "sgemm")) bench_sgemm(ctx, (int)reps, quick);
    printf("\ntotal %.1f s\n", cv_now() - t0);
    if (profile) cv_ctx_profile_report(ctx, stdout);
    cv_ctx_free(ctx);
    return 0;
}
