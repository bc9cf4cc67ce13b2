/* bench-pk.c -- power-spectrum throughput of the device path (cv_pk:
 * delta kernel, batched clFFT, binning kernel, host transfers included)
 * on M maps of 3 fields at N x N (default 1000 maps at 256^2, the paper's
 * size), and of the plain-C double reference on a few maps.  bench-pk.sh
 * runs the numpy baseline on the same maps (--dump) in the same run and
 * compares the mean spectra (--csv).  Invariant: the maps are a pure
 * function of (M, N), so every run sees the same input. */
#include "prog/cv_cli.h"
#include "analysis/cv_pk.h"

#include <math.h>
#include <string.h>

static const char usage[] =
    "Usage: bench-pk [OPTIONS]\n"
    "Time the power spectra of M maps of 3 fields (6 spectra a map) on the OpenCL\n"
    "device, and the plain-C reference on a few maps; print maps/s.\n"
    "\n"
    "  --maps M       maps (default $CV_BENCH_PK_MAPS, else 1000)\n"
    "  --size N       map side (default 256)\n"
    "  --batch B      maps per clFFT call (default: by device memory)\n"
    "  --ref-maps R   maps for the reference timing (default 2; 0 to skip)\n"
    "  --dump FILE    write the maps (float32, M x 3 x N x N, host byte order)\n"
    "  --csv FILE     write the mean spectra (spectrum,k,mean)\n"
    "  --device SPEC  OpenCL device\n"
    "  --profile      print the per-kernel time table\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n";

static uint32_t hash(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
    return x;
}

/* Lognormal-like maps: channel c = exp(a_c * (waves + noise)), waves shared
 * between channels so that cross-spectra are non-trivial. */
static void generate(float *maps, long M, int N) {
    const float tp = 6.2831853f / N;
    for (long m = 0; m < M; m++)
        for (int c = 0; c < 3; c++) {
            float *p = maps + ((size_t)m * 3 + c) * N * N;
            float a = 0.5f + 0.4f * c, ph = 0.37f * (float)m;
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) {
                    float w = sinf(tp * (3 * x + y) + ph) + 0.5f * cosf(tp * (x - 5 * y) - ph) + 0.25f * sinf(tp * 17 * (x + y));
                    float u = (float)(hash((uint32_t)(((m * 3 + c) * N + y) * N + x)) >> 8) * (1.0f / 16777216.0f) - 0.5f;
                    p[(size_t)y * N + x] = expf(a * (w + (0.6f + 0.3f * c) * u) + 2.3f * (c + 1));
                }
        }
}

int main(int argc, char **argv) {
    long M = 1000, N = 256, batch = 0, R = 2;
    int profile = 0;
    const char *env = getenv("CV_BENCH_PK_MAPS"), *dump = NULL, *csv = NULL, *device = NULL;
    cv_cli_init("bench-pk", usage);
    if (env && *env) M = atol(env);
    for (int i = 1; i < argc; i++) {
        if (cv_cli_opt_long(argc, argv, &i, "--maps", 1, 1000000, &M)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--size", 8, 4096, &N)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 4096, &batch)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--ref-maps", 0, 1000, &R)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--dump", &dump)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--csv", &csv)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (cv_cli_common(argv[i])) ;
        else cv_cli_usage_error("unrecognized option '%s'", argv[i]);
    }
    if (M < 1) cv_cli_usage_error("CV_BENCH_PK_MAPS: %ld maps", M);
    size_t per = 3 * (size_t)N * N;
    float *maps = malloc((size_t)M * per * sizeof *maps);
    if (!maps) { fprintf(stderr, "bench-pk: out of memory for %ld maps\n", M); return 1; }
    generate(maps, M, (int)N);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(maps, sizeof *maps, (size_t)M * per, f) != (size_t)M * per || fclose(f) != 0) {
            fprintf(stderr, "bench-pk: %s: cannot write\n", dump);
            return 1;
        }
    }
    cv_ctx *ctx = NULL;
    cv_ctx_opts co = cv_ctx_opts_default();
    co.device = device;
    co.profile = profile;
    cv_status st = cv_ctx_new(&co, &ctx);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    cv_pk_opts o = cv_pk_opts_default();
    o.n_chan = 3; o.batch = (int)batch;
    cv_pk *pk = NULL;
    if ((st = cv_pk_new(ctx, (int)N, 25.0, &o, &pk)) != CV_OK) cv_cli_fail(st, NULL);
    const cv_pk_geom *g = cv_pk_geometry(pk);
    int S = cv_pk_n_spec(3), NS = g->n_shell, B = cv_pk_batch(pk);
    float *out = malloc((size_t)M * S * NS * sizeof *out);
    if (!out) { fprintf(stderr, "bench-pk: out of memory\n"); return 1; }
    /* warm-up: one batch (first launches compile and allocate lazily on some drivers) */
    if ((st = cv_pk_compute(pk, maps, M < B ? M : B, out)) != CV_OK) cv_cli_fail(st, NULL);
    if (profile) cv_ctx_profile_reset(ctx);
    double t0 = cv_now();
    if ((st = cv_pk_compute(pk, maps, M, out)) != CV_OK) cv_cli_fail(st, NULL);
    double el = cv_now() - t0;
    if (profile) cv_ctx_profile_report(ctx, stdout);
    cv_pk_stats stats;
    cv_pk_stats_init(&stats, S, NS);
    cv_pk_stats_add(&stats, out, M);
    printf("cosmovae P(k) on %s: %ld maps of 3 x %ld^2 (6 spectra each, batch %d): %.3f s, %.1f maps/s\n", cv_ctx_device_name(ctx), M,
           N, B, el, M / el);
    if (R > 0) {
        long r = R < M ? R : M;
        double *ref = malloc((size_t)r * S * NS * sizeof *ref);
        double t1 = cv_now();
        if (!ref || (st = cv_pk_compute_ref(g, 3, CV_PK_DELTA_LOG10, maps, r, ref)) != CV_OK) cv_cli_fail(st, NULL);
        double er = cv_now() - t1, e = 0;
        /* error relative to the spectrum's scale sqrt(P_aa P_bb) per shell */
        for (long m = 0; m < r; m++)
            for (int s = 0; s < S; s++) {
                int a, b;
                cv_pk_spec_pair(3, s, &a, &b);
                for (int k = 0; k < NS; k++) {
                    size_t i = ((size_t)m * S + s) * NS + k;
                    double sc = sqrt(ref[((size_t)m * S + a) * NS + k] * ref[((size_t)m * S + b) * NS + k]);
                    e = fmax(e, fabs(out[i] - ref[i]) / fmax(sc, 1e-300));
                }
            }
        printf("plain-C reference (double DFT): %ld maps: %.3f s, %.2f maps/s; device vs reference: max error %.2e of "
               "sqrt(P_aa P_bb)\n", r, er, r / er, e);
        free(ref);
    }
    if (csv) {
        FILE *f = fopen(csv, "w");
        if (!f) { fprintf(stderr, "bench-pk: %s: cannot write\n", csv); return 1; }
        const char *names[3] = { "c0", "c1", "c2" };
        char nm[64];
        fprintf(f, "spectrum,k,mean\n");
        for (int s = 0; s < S; s++)
            for (int k = 0; k < NS; k++)
                fprintf(f, "%s,%.9g,%.9g\n", cv_pk_spec_name(3, s, names, nm, sizeof nm), g->k[k], stats.mean[s * NS + k]);
        fclose(f);
    }
    cv_pk_stats_free(&stats);
    cv_pk_free(pk);
    cv_ctx_free(ctx);
    free(out); free(maps);
    return 0;
}
