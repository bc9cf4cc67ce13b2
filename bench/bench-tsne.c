/* bench-tsne.c -- time of cosmovae's Barnes-Hut t-SNE on latent-like data
 * (N x 256, 15 maps per simulation scattered around a smooth 6-parameter
 * manifold, as the encoder's latents are), and its trustworthiness; also
 * the trustworthiness of an embedding made elsewhere (scikit-learn's, in
 * bench-tsne.sh) on the same input, so that both are scored by one
 * implementation.  Invariant: the input is a pure function of N, D and
 * the seed, so two runs see the same points. */
#include "prog/cv_cli.h"
#include "analysis/cv_tsne.h"

#include <math.h>
#include <string.h>

static const char usage[] =
    "Usage: bench-tsne [OPTIONS]\n"
    "Time t-SNE (Barnes-Hut, perplexity 30, 1000 iterations) on N x D latent-like\n"
    "points and print the time and the trustworthiness (k = 5).\n"
    "\n"
    "  --n N          points (default $CV_BENCH_TSNE_N, else 15000)\n"
    "  --dim D        dimensions (default 256)\n"
    "  --threads T    threads (default: online CPUs)\n"
    "  --dump FILE    write the input points (float32, N x D, little-endian host order)\n"
    "  --embed FILE   write the embedding (float32, N x 2)\n"
    "  --trust FILE   do not run t-SNE: score the embedding in FILE (float32, N x 2)\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and exit\n";

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double unif(uint64_t s, uint64_t i) { return (mix(s ^ mix(i)) >> 11) * 0x1.0p-53; }
static double normal(uint64_t s, uint64_t i) {
    double u = unif(s, 2 * i) + 0x1.0p-54, v = unif(s, 2 * i + 1);
    return sqrt(-2 * log(u)) * cos(2 * 3.141592653589793 * v);
}

/* X (n, D): sim s = i / 15 has parameters theta in [0,1]^6; 24 smooth
 * features of theta mixed into D dims by a fixed random matrix, plus
 * per-map noise. */
static void generate(float *X, int64_t n, int D) {
    enum { P = 6, F = 24 };
    double *A = malloc((size_t)D * F * sizeof *A);
    for (int64_t i = 0; i < (int64_t)D * F; i++) A[i] = normal(7, i) / sqrt(F);
    for (int64_t i = 0; i < n; i++) {
        int64_t s = i / 15;
        double th[P], f[F];
        for (int p = 0; p < P; p++) th[p] = unif(11, (uint64_t)(s * P + p));
        for (int p = 0; p < P; p++) {
            f[p] = 2 * th[p];
            f[P + p] = sin(2 * 3.141592653589793 * th[p]);
            f[2 * P + p] = cos(3.141592653589793 * th[p]);
            f[3 * P + p] = th[p] * th[(p + 1) % P] * 3;
        }
        for (int d = 0; d < D; d++) {
            double v = 0;
            for (int q = 0; q < F; q++) v += A[(size_t)d * F + q] * f[q];
            X[i * D + d] = (float)(v + 1.0 * normal(13, (uint64_t)(i * D + d)));
        }
    }
    free(A);
}

static int write_raw(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t w = fwrite(x, sizeof *x, n, f);
    return (fclose(f) == 0) & (w == n);
}

static int progress(void *user, int iter, int max_iter, double kl) {
    (void)user;
    if (iter % 250 == 0) fprintf(stderr, "bench-tsne: iteration %d/%d, KL %.4f\n", iter, max_iter, kl);
    return 0;
}

int main(int argc, char **argv) {
    long n = 15000, D = 256, threads = 0;
    const char *env = getenv("CV_BENCH_TSNE_N"), *dump = NULL, *embed = NULL, *trust = NULL;
    cv_cli_init("bench-tsne", usage);
    if (env && *env) n = atol(env);
    for (int i = 1; i < argc; i++) {
        if (cv_cli_opt_long(argc, argv, &i, "--n", 100, 10000000, &n)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--dim", 1, 65536, &D)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--threads", 1, 64, &threads)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--dump", &dump)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--embed", &embed)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--trust", &trust)) ;
        else if (cv_cli_common(argv[i])) ;
        else cv_cli_usage_error("unrecognized option '%s'", argv[i]);
    }
    if (n < 100) cv_cli_usage_error("CV_BENCH_TSNE_N: %ld points is too few (at least 100)", n);
    float *X = malloc((size_t)n * D * sizeof *X), *Y = malloc((size_t)n * 2 * sizeof *Y);
    if (!X || !Y) { fprintf(stderr, "bench-tsne: out of memory\n"); return 1; }
    generate(X, n, (int)D);
    if (dump && !write_raw(dump, X, (size_t)n * D)) { fprintf(stderr, "bench-tsne: %s: cannot write\n", dump); return 1; }
    double t;
    cv_status st;
    if (trust) {
        FILE *f = fopen(trust, "rb");
        size_t got = f ? fread(Y, sizeof *Y, (size_t)n * 2 + 1, f) : 0;
        if (f) fclose(f);
        if (got != (size_t)n * 2) { fprintf(stderr, "bench-tsne: %s: expected %ld x 2 float32 values\n", trust, n); return 1; }
        if ((st = cv_tsne_trustworthiness(X, n, (int)D, Y, 2, 5, &t)) != CV_OK) cv_cli_fail(st, NULL);
        printf("trustworthiness %.4f\n", t);
        return 0;
    }
    cv_tsne_opts o = cv_tsne_opts_default();
    o.method = CV_TSNE_BH;
    o.n_threads = (int)threads;
    cv_tsne_info info;
    double t0 = cv_now();
    st = cv_tsne_run(X, n, (int)D, &o, Y, &info, progress, NULL);
    double el = cv_now() - t0;
    if (st != CV_OK) cv_cli_fail(st, NULL);
    if (embed && !write_raw(embed, Y, (size_t)n * 2)) { fprintf(stderr, "bench-tsne: %s: cannot write\n", embed); return 1; }
    if ((st = cv_tsne_trustworthiness(X, n, (int)D, Y, 2, 5, &t)) != CV_OK) cv_cli_fail(st, NULL);
    printf("cosmovae t-SNE: %ld x %ld: %.2f s (kNN %.2f s, affinities %.2f s, descent %.2f s, %d iterations), "
           "KL %.4f, trustworthiness %.4f\n", n, D, el, info.t_knn, info.t_affinity, info.t_descent, info.n_iter, info.kl, t);
    free(X); free(Y);
    return 0;
}
