/* bench-train.c -- training throughput of the VDVAE presets on the present
 * device: maps/s at batch 4, the per-kernel time breakdown, device memory,
 * and model FLOP utilisation against the best SGEMM rate measured on the
 * same device in the same run (CLBlast), and on a CPU device also against
 * the host's best SGEMM (OpenBLAS through CBLAS, the same cores), the
 * ceiling worth measuring a CPU against (issue 14).  bench-train.sh puts
 * it beside the PyTorch baseline.
 *
 *   bench-train [--preset small|paper] [--seconds S] [--min-steps N] [--batch B]
 *               [--no-profile] [--no-sgemm] [--keep-gelu K] [--memory-only]
 * --no-profile runs the queue without profiling (as cosmovae-train does)
 * and prints no per-kernel table; --no-sgemm skips the SGEMM peak;
 * --keep-gelu overrides the tuning's GELU caches (0: the GPU rows' plan,
 * the least memory); --memory-only prints the device memory and stops.
 * Prints "cosmovae PRESET maps_per_s=X ..." lines for the wrapper. */
#include "prog/cv_cli.h"
#include "runtime/cv_rng.h"
#include "model/cv_train.h"
#include "ops/cv_op_conv.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* Process CPU time (all threads, the OpenCL runtime's included): the rate
 * per CPU second stays put on a shared host where wall-clock rates move
 * with the load. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_peak(cv_ctx *ctx, int *best_n) {
    double best = 0;
    for (int n = 512; n <= 2048; n *= 2) {
        cl_mem a, b, c;
        size_t bytes = (size_t)n * n * sizeof(float);
        if (cv_ctx_alloc(ctx, "A", bytes, 1, &a) != CV_OK) break;
        if (cv_ctx_alloc(ctx, "B", bytes, 1, &b) != CV_OK) { clReleaseMemObject(a); break; }
        if (cv_ctx_alloc(ctx, "C", bytes, 1, &c) != CV_OK) { clReleaseMemObject(a); clReleaseMemObject(b); break; }
        cv_sgemm(ctx, 0, 0, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n);
        cv_ctx_finish(ctx);
        int reps = n <= 512 ? 8 : n <= 1024 ? 3 : 1;
        double t0 = cv_now();
        for (int r = 0; r < reps; r++) cv_sgemm(ctx, 0, 0, n, n, n, 1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n);
        cv_ctx_finish(ctx);
        double gf = 2.0 * n * n * (double)n * reps / (cv_now() - t0) * 1e-9;
        if (gf > best) { best = gf; *best_n = n; }
        clReleaseMemObject(a); clReleaseMemObject(b); clReleaseMemObject(c);
    }
    return best;
}

/* The host's best SGEMM (OpenBLAS, its own threads on every core). */
static double host_sgemm_peak(int *best_n) {
    double best = 0;
    for (int n = 512; n <= 2048; n *= 2) {
        size_t e = (size_t)n * n;
        float *a = malloc(e * sizeof *a), *b = malloc(e * sizeof *b), *c = malloc(e * sizeof *c);
        if (!a || !b || !c) { free(a); free(b); free(c); break; }
        for (size_t i = 0; i < e; i++) { a[i] = (float)((i * 7919) % 1000) * 1e-3f; b[i] = (float)((i * 104729) % 1000) * 1e-3f; }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        int reps = n <= 512 ? 8 : n <= 1024 ? 3 : 1;
        double t0 = cv_now();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double gf = 2.0 * n * n * (double)n * reps / (cv_now() - t0) * 1e-9;
        if (gf > best) { best = gf; *best_n = n; }
        free(a); free(b); free(c);
    }
    return best;
}

int main(int argc, char **argv) {
    const char *preset = "small";
    double seconds = 20;
    long min_steps = 3, batch = 4;
    long keep_gelu = -1;
    int profile = 1, sgemm = 1, memory_only = 0;
    cv_cli_init("bench-train", "Usage: bench-train [--preset small|paper] [--seconds S] [--min-steps N] [--batch B]\n"
                               "                   [--no-profile] [--no-sgemm] [--keep-gelu 0|1|2] [--memory-only]\n");
    for (int i = 1; i < argc; i++) {
        if (cv_cli_opt_str(argc, argv, &i, "--preset", &preset)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--seconds", 0, 1e6, &seconds)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--min-steps", 1, 100000, &min_steps)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 1024, &batch)) ;
        else if (!strcmp(argv[i], "--no-profile")) profile = 0;
        else if (!strcmp(argv[i], "--no-sgemm")) sgemm = 0;
        else if (cv_cli_opt_long(argc, argv, &i, "--keep-gelu", 0, 2, &keep_gelu)) ;
        else if (!strcmp(argv[i], "--memory-only")) memory_only = 1;
        else if (cv_cli_common(argv[i])) ;
        else cv_cli_usage_error("unrecognized argument '%s'", argv[i]);
    }
    if (!cv_model_preset(preset)) cv_cli_usage_error("--preset: unknown preset '%s'", preset);
    cv_status st;
    cv_ctx *ctx = NULL;
    cv_ctx_opts co = cv_ctx_opts_default();
    co.profile = profile;
    if ((st = cv_ctx_new(&co, &ctx)) != CV_OK) cv_cli_fail(st, NULL);
    if (keep_gelu >= 0) {
        cv_tune t = *cv_ctx_tune(ctx);
        t.keep_gelu = (int32_t)keep_gelu;
        if ((st = cv_ctx_set_tune(ctx, &t)) != CV_OK) cv_cli_fail(st, NULL);
    }
    cv_cfg *cfg = NULL;
    cv_model_cfg mc;
    cv_model *m = NULL;
    cv_trainer *tr = NULL;
    if ((st = cv_cfg_new(&cfg)) != CV_OK || (st = cv_cfg_parse(cfg, cv_model_preset(preset), preset)) != CV_OK ||
        (st = cv_model_cfg_read(cfg, &mc)) != CV_OK) cv_cli_fail(st, NULL);
    cv_train_opts to = cv_train_opts_default();
    to.batch = (int)batch;
    if ((st = cv_model_new(&mc, &m)) != CV_OK || (st = cv_model_to_device(m, ctx, 0)) != CV_OK ||
        (st = cv_trainer_new(ctx, m, &to, &tr)) != CV_OK || (st = cv_trainer_init_params(tr)) != CV_OK)
        cv_cli_fail(st, NULL);
    size_t n = (size_t)batch * mc.channels * mc.size * mc.size;
    float *x = malloc(n * sizeof *x);
    if (!x) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    for (size_t i = 0; i < n; i++) x[i] = cv_rng_normal(1, 2, i);

    double plan_b = (double)cv_plan_nbytes(cv_trainer_plan(tr));
    double model_b = 4.0 * 4.0 * (double)cv_model_n_floats(m);
    double flops = cv_trainer_flops_per_step(tr);
    printf("== %s preset on %s: %lld parameters, batch %ld, %.2f GFLOP per step (forward + backward, convolutions)\n",
           preset, cv_ctx_device_name(ctx), (long long)cv_model_n_floats(m), batch, flops * 1e-9);
    printf("   device memory: %.1f MiB = activations, gradients, stats and workspace %.1f MiB + parameters, gradients, optimizer state %.1f MiB\n",
           (plan_b + model_b) / 1048576.0, plan_b / 1048576.0, model_b / 1048576.0);
    fflush(stdout);
    if (memory_only) {
        printf("cosmovae %s keep_gelu=%d mem_mib=%.1f\n", preset, cv_ctx_tune(ctx)->keep_gelu,
               (plan_b + model_b) / 1048576.0);
        goto done;
    }

    cv_step_stats s;
    if ((st = cv_trainer_step(tr, x, &s)) != CV_OK) cv_cli_fail(st, NULL);   /* warm-up */
    if (profile) cv_ctx_profile_reset(ctx);
    long steps = 0;
    double t0 = cv_now(), c0 = cpu_now();
    while (steps < min_steps || cv_now() - t0 < seconds) {
        if ((st = cv_trainer_step(tr, x, &s)) != CV_OK) cv_cli_fail(st, NULL);
        steps++;
        if (cv_now() - t0 > 10 * seconds + 60) break;
    }
    double dt = cv_now() - t0, dc = cpu_now() - c0;
    double mps = steps * batch / dt, gfs = flops * steps / dt * 1e-9;
    printf("   %ld steps in %.2f s: %.2f maps/s, %.2f model GFLOP/s (loss %.4f)\n", steps, dt, mps, gfs, s.loss);
    printf("   process CPU time %.2f s (%.2f CPUs busy): %.2f maps per CPU-second\n", dc, dc / dt, steps * batch / dc);
    if (profile) {
        printf("   per-kernel time over those steps:\n");
        cv_ctx_profile_report(ctx, stdout);
    }
    int nb = 0;
    double peak = sgemm ? sgemm_peak(ctx, &nb) : 0;
    if (sgemm) printf("   best SGEMM on the device (CLBlast, %dx%dx%d): %.2f GFLOP/s; model FLOP utilisation %.1f%%\n",
           nb, nb, nb, peak, peak > 0 ? 100.0 * gfs / peak : 0.0);
    int hn = 0;
    double hpeak = sgemm && (cv_ctx_device_type(ctx) & CL_DEVICE_TYPE_CPU) ? host_sgemm_peak(&hn) : 0;
    if (hpeak > 0)
        printf("   best SGEMM on the host's cores (OpenBLAS, %dx%dx%d): %.2f GFLOP/s; model FLOP utilisation %.1f%%\n",
               hn, hn, hn, hpeak, 100.0 * gfs / hpeak);
    printf("cosmovae %s maps_per_s=%.3f gflops=%.3f sgemm_peak=%.3f mem_mib=%.1f maps_per_cpu_s=%.3f host_sgemm_peak=%.3f cpus_busy=%.2f\n",
           preset, mps, gfs, peak, (plan_b + model_b) / 1048576.0, steps * batch / dc, hpeak, dc / dt);
done:
    free(x);
    cv_trainer_free(tr);
    cv_model_free(m);
    cv_cfg_free(cfg);
    cv_ctx_free(ctx);
    return 0;
}
