/* test-pk.c -- power spectra: the hand-computable test vectors of DESIGN.md
 * (N = 8, L = 25) on the reference and on the device, Parseval (the shell
 * sums reproduce the map variance), linearity, device vs reference on
 * lognormal maps in every delta mode with a partial last batch, the
 * statistics over maps, the agreement scale, and bad values. */
#include "tap.h"
#include "analysis/cv_pk.h"
#include "analysis/cv_plot.h"

#include <math.h>
#include <unistd.h>

#define PI 3.14159265358979323846

static double relerr(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

/* Deterministic roughly Gaussian numbers (sum of four uniforms). */
static void gauss_fill(double *x, size_t n, uint64_t seed) {
    double *u = malloc(4 * n * sizeof *u);
    cv_chk_rand_d(u, 4 * n, seed, -1, 1);
    for (size_t i = 0; i < n; i++) x[i] = (u[4 * i] + u[4 * i + 1] + u[4 * i + 2] + u[4 * i + 3]) * 0.866;
    free(u);
}

/* Lognormal maps (count, C, n, n): a large-scale wave plus noise in log10,
 * around 10 - 3c, channels correlated through a shared component. */
static void lognormal_maps(float *maps, int count, int C, int n, uint64_t seed) {
    size_t np = (size_t)n * n;
    double *g0 = malloc(np * sizeof *g0), *g1 = malloc(np * sizeof *g1);
    for (int m = 0; m < count; m++) {
        gauss_fill(g0, np, seed + 100 * m);
        for (int ch = 0; ch < C; ch++) {
            gauss_fill(g1, np, seed + 100 * m + 1 + ch);
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++) {
                    size_t i = (size_t)y * n + x;
                    double w = sin(2 * PI * (x + 2 * y + m) / n);
                    double l = 10 - 3 * ch + (0.6 + 0.2 * ch) * (0.7 * w + 0.5 * g0[i] + 0.3 * g1[i]);
                    maps[((size_t)m * C + ch) * np + i] = (float)pow(10, l);
                }
        }
    }
    free(g0); free(g1);
}

static int per_spec;          /* binning kernel under test */

static cv_pk *pk_plan(cv_ctx *ctx, int n, double box, int C, int mode, int batch) {
    cv_pk_opts o = cv_pk_opts_default();
    o.n_chan = C; o.mode = mode; o.batch = batch; o.per_spec = per_spec;
    cv_pk *pk = NULL;
    if (cv_pk_new(ctx, n, box, &o, &pk) != CV_OK) cv_check_diag(c, "cv_pk_new: %s", cv_last_error());
    return pk;
}

static void test_geometry(void) {
    cv_pk_geom *g = NULL;
    cv_status st = cv_pk_geom_new(256, 25, &g);
    CV_CHECK_OK(st == CV_OK && g->n_shell == 181 && g->shell[0] == 1 && g->shell[180] == 181,
                "N = 256, L = 25: 181 shells (got %d)", g ? g->n_shell : -1);
    int64_t tot = 0;
    for (int s = 0; g && s < g->n_shell; s++) tot += g->nmodes[s];
    /* one mode per Hermitian pair: (N^2 - 4)/2 pairs + 3 self-conjugate, DC out */
    CV_CHECK_OK(tot == (256 * 256 - 4) / 2 + 3, "N = 256: %lld modes, one per Hermitian pair", (long long)tot);
    cv_pk_geom_free(g);
    g = NULL;
    st = cv_pk_geom_new(7, 25, &g);
    tot = 0;
    for (int s = 0; g && s < g->n_shell; s++) tot += g->nmodes[s];
    CV_CHECK_OK(st == CV_OK && tot == (49 - 1) / 2, "N = 7 (odd): %lld modes, one per Hermitian pair", (long long)tot);
    cv_pk_geom_free(g);
    g = NULL;
    st = cv_pk_geom_new(1, 25, &g);
    CV_CHECK_OK(st == CV_ERR_ARG && !g, "N = 1 is rejected: %s", cv_last_error());
    st = cv_pk_geom_new(8, 0, &g);
    CV_CHECK_OK(st == CV_ERR_ARG && !g, "L = 0 is rejected: %s", cv_last_error());
}

/* DESIGN.md's vectors, x the first index. */
static void design_vectors(double *cosv, double *A, double *B) {
    for (int x = 0; x < 8; x++)
        for (int y = 0; y < 8; y++) {
            cosv[x * 8 + y] = cos(2 * PI * 2 * x / 8);
            A[x * 8 + y] = (((3 * x + 5 * y + x * y) % 7) - 3) / 8.0;
            B[x * 8 + y] = (((2 * x * x + y + 1) % 5) - 2) / 8.0;
        }
}

static const double PA[3]  = { 0.920281179775, 1.04524889691, 0.553558020999 };
static const double PB[3]  = { 0.0512720361564, 0.411961846069, 0.52011804296 };
static const double PAB[3] = { -0.00449417340468, -0.0138785071656, -0.12128076161 };
static const double KS[3]  = { 0.30337902367, 0.584371612912, 0.83117282065 };

/* Check one set of spectra of the cosine vector. */
static void check_cos(const char *path, const cv_pk_geom *g, const double *p, double tol) {
    int ok = g->shell[1] == 2 && g->nmodes[1] == 8 && relerr(p[1], 19.53125) < tol && relerr(g->k[1], 0.5843716129) < 1e-9;
    double other = 0;
    for (int s = 0; s < g->n_shell; s++) if (s != 1) other = fmax(other, fabs(p[s]));
    CV_CHECK_OK(ok && other < tol * 19.53125, "%s: cos(2 pi 2x/8): shell 2 P = %.10g (19.53125), 8 modes, k = %.10f; other shells max |P| %.2e",
                path, p[1], g->k[1], other);
}

static void check_ab(const char *path, const double *pa, const double *pb, const double *pab, const cv_pk_geom *g, double tol) {
    double e = 0, ek = 0;
    for (int s = 0; s < 3; s++) {
        e = fmax(e, fmax(relerr(pa[s], PA[s]), relerr(pb[s], PB[s])));
        e = fmax(e, relerr(pab[s], PAB[s]));
        ek = fmax(ek, relerr(g->k[s], KS[s]));
    }
    CV_CHECK_OK(e < tol && ek < 1e-9, "%s: DESIGN.md A, B and cross A-B, shells 1-3: max rel err %.2e (k %.2e)", path, e, ek);
}

static void test_design_ref(void) {
    double cosv[64], A[64], B[64], p[16], pa[16], pb[16], pab[16];
    cv_pk_geom *g = NULL;
    cv_pk_geom_new(8, 25, &g);
    design_vectors(cosv, A, B);
    cv_pk_ref(g, cosv, NULL, p);
    check_cos("reference", g, p, 1e-12);
    cv_pk_ref(g, A, NULL, pa);
    cv_pk_ref(g, B, NULL, pb);
    cv_pk_ref(g, A, B, pab);
    check_ab("reference", pa, pb, pab, g, 1e-10);
    /* cross of a field with itself is its auto-spectrum */
    cv_pk_ref(g, A, A, p);
    double e = 0;
    for (int s = 0; s < g->n_shell; s++) e = fmax(e, relerr(p[s], pa[s]));
    CV_CHECK_OK(e < 1e-14, "reference: P_AA (cross path) == P_A: %.2e", e);
    cv_pk_geom_free(g);
}

static void test_design_dev(cv_ctx *ctx) {
    double cosv[64], A[64], B[64];
    float maps[3 * 64], out[16 * 6];
    double p[16], pa[16], pb[16], pab[16];
    design_vectors(cosv, A, B);
    cv_pk *pk = pk_plan(ctx, 8, 25, 1, CV_PK_DELTA_LINEAR, 0);
    if (!pk) { CV_CHECK_OK(0, "device plan N = 8"); return; }
    const cv_pk_geom *g = cv_pk_geometry(pk);
    for (int i = 0; i < 64; i++) maps[i] = (float)cosv[i];
    cv_status st = cv_pk_compute(pk, maps, 1, out);
    for (int s = 0; s < g->n_shell; s++) p[s] = out[s];
    if (st == CV_OK) check_cos(per_spec ? "device, per-spectrum binning" : "device, one-pass binning", g, p, 1e-6);
    else CV_CHECK_OK(0, "device cos: %s", cv_last_error());
    cv_pk_free(pk);

    pk = pk_plan(ctx, 8, 25, 2, CV_PK_DELTA_LINEAR, 0);
    g = NULL;                                     /* freed with the first plan */
    for (int i = 0; i < 64; i++) { maps[i] = (float)A[i]; maps[64 + i] = (float)B[i]; }
    st = pk ? cv_pk_compute(pk, maps, 1, out) : CV_ERR_ARG;
    if (st == CV_OK) {
        int ns = cv_pk_geometry(pk)->n_shell;
        for (int s = 0; s < ns; s++) { pa[s] = out[s]; pb[s] = out[ns + s]; pab[s] = out[2 * ns + s]; }
        check_ab(per_spec ? "device, per-spectrum binning" : "device, one-pass binning", pa, pb, pab, cv_pk_geometry(pk), 1e-6);
    } else CV_CHECK_OK(0, "device A, B: %s", cv_last_error());
    cv_pk_free(pk);
}

/* Parseval: var(delta) = (2/L^2) sum_s n_s P_s - sum over the 3
 * self-conjugate Nyquist modes of |F|^2 / N^4 (DC is zero). */
static double parseval_var(const cv_pk_geom *g, const double *p, const double *d) {
    int n = g->n;
    double L = g->box, sum = 0, f[3] = { 0, 0, 0 };
    for (int s = 0; s < g->n_shell; s++) sum += g->nmodes[s] * p[s];
    for (int x = 0; x < n; x++)
        for (int y = 0; y < n; y++) {
            double v = d[x * n + y];
            f[0] += (x % 2 ? -v : v);
            f[1] += (y % 2 ? -v : v);
            f[2] += ((x + y) % 2 ? -v : v);
        }
    double n4 = (double)n * n * n * n;
    return 2 * sum / (L * L) - (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]) / n4;
}

static void test_parseval(cv_ctx *ctx) {
    enum { N = 64 };
    float *maps = malloc(N * N * sizeof *maps), *out = NULL;
    double *d = malloc(N * N * sizeof *d), *p = NULL;
    lognormal_maps(maps, 1, 1, N, 7);
    cv_pk_geom *g = NULL;
    cv_pk_geom_new(N, 25, &g);
    p = malloc(g->n_shell * sizeof *p);
    out = malloc(g->n_shell * sizeof *out);
    cv_pk_delta_ref(maps, N, CV_PK_DELTA_LOG10, d);
    double var = 0;
    for (int i = 0; i < N * N; i++) var += d[i] * d[i];
    var /= N * N;
    cv_pk_ref(g, d, NULL, p);
    double vr = parseval_var(g, p, d);
    CV_CHECK_OK(relerr(vr, var) < 1e-10, "reference Parseval, N = %d: shells give %.12g, map variance %.12g", N, vr, var);
    cv_pk *pk = pk_plan(ctx, N, 25, 1, CV_PK_DELTA_LOG10, 0);
    if (pk && cv_pk_compute(pk, maps, 1, out) == CV_OK) {
        for (int s = 0; s < g->n_shell; s++) p[s] = out[s];
        double vd = parseval_var(g, p, d);
        CV_CHECK_OK(relerr(vd, var) < 1e-6, "device Parseval, N = %d: shells give %.9g, map variance %.9g (rel %.1e)", N, vd, var,
                    relerr(vd, var));
    } else CV_CHECK_OK(0, "device Parseval: %s", cv_last_error());
    /* linearity: P(3 delta) = 9 P(delta) */
    for (int i = 0; i < N * N; i++) d[i] *= 3;
    double *p3 = malloc(g->n_shell * sizeof *p3), e = 0;
    cv_pk_ref(g, d, NULL, p3);
    for (int i = 0; i < N * N; i++) d[i] /= 3;
    cv_pk_ref(g, d, NULL, p);
    for (int s = 0; s < g->n_shell; s++) e = fmax(e, relerr(p3[s], 9 * p[s]));
    CV_CHECK_OK(e < 1e-12, "reference linearity P(3 delta) = 9 P(delta): %.2e", e);
    free(p3);
    cv_pk_free(pk);
    cv_pk_geom_free(g);
    free(maps); free(out); free(d); free(p);
}

/* Device against reference: 5 maps, 3 channels, batch 2 (a partial last
 * batch), every delta mode, N = 48 (radix 3) and 32. */
static void test_dev_vs_ref(cv_ctx *ctx, int n, int mode) {
    enum { M = 5, C = 3 };
    size_t np = (size_t)n * n;
    float *maps = malloc(M * C * np * sizeof *maps);
    lognormal_maps(maps, M, C, n, 1000 + n + mode);
    if (mode == CV_PK_DELTA_LINEAR)
        for (size_t i = 0; i < M * C * np; i++) maps[i] = (float)log10(maps[i]);
    cv_pk *pk = pk_plan(ctx, n, 25, C, mode, 2);
    if (!pk) { CV_CHECK_OK(0, "device plan N = %d", n); free(maps); return; }
    const cv_pk_geom *g = cv_pk_geometry(pk);
    int S = cv_pk_n_spec(C);
    size_t no = (size_t)M * S * g->n_shell;
    float *out = malloc(no * sizeof *out);
    double *ref = malloc(no * sizeof *ref);
    cv_status st = cv_pk_compute(pk, maps, M, out);
    cv_status sr = cv_pk_compute_ref(g, C, mode, maps, M, ref);
    /* error relative to the spectrum's scale sqrt(P_aa P_bb) per shell */
    double e = 0;
    for (int m = 0; st == CV_OK && sr == CV_OK && m < M; m++)
        for (int sp = 0; sp < S; sp++) {
            int a, b;
            cv_pk_spec_pair(C, sp, &a, &b);
            for (int s = 0; s < g->n_shell; s++) {
                double pa = ref[((size_t)m * S + a) * g->n_shell + s], pb = ref[((size_t)m * S + b) * g->n_shell + s];
                size_t i = ((size_t)m * S + sp) * g->n_shell + s;
                e = fmax(e, fabs(out[i] - ref[i]) / sqrt(pa * pb));
            }
        }
    CV_CHECK_OK(st == CV_OK && sr == CV_OK && e < 2e-5, "device vs reference, N = %d, %d maps x %d channels, batch 2, %s delta, "
                "%s binning: max err %.2e of sqrt(P_aa P_bb)", n, M, C, cv_pk_delta_name(mode),
                per_spec ? "per-spectrum" : "one-pass", e);
    if (st != CV_OK || sr != CV_OK) cv_check_diag(c, "%s", cv_last_error());
    free(maps); free(out); free(ref);
    cv_pk_free(pk);
}

static void test_bad_values(cv_ctx *ctx) {
    enum { N = 16, M = 3 };
    float maps[M * 2 * N * N];
    float out[M * 3 * 64];
    lognormal_maps(maps, M, 2, N, 5);
    maps[(2 * 2 + 1) * N * N + 17] = 0;           /* map 2, channel 1 */
    cv_pk *pk = pk_plan(ctx, N, 25, 2, CV_PK_DELTA_LOG10, 2);
    cv_status st = pk ? cv_pk_compute(pk, maps, M, out) : CV_ERR_ARG;
    CV_CHECK_OK(st == CV_ERR_NUMERIC && strstr(cv_last_error(), "map 2"), "device: a zero pixel under log10 is an error naming the map: %s",
                cv_last_error());
    cv_pk_geom *g = NULL;
    cv_pk_geom_new(N, 25, &g);
    double *ref = malloc((size_t)M * 3 * g->n_shell * sizeof *ref);
    st = cv_pk_compute_ref(g, 2, CV_PK_DELTA_LOG10, maps, M, ref);
    CV_CHECK_OK(st == CV_ERR_NUMERIC && strstr(cv_last_error(), "map 2, channel 1") && strstr(cv_last_error(), "pixel 17"),
                "reference: the same, naming map, channel and pixel: %s", cv_last_error());
    free(ref);
    cv_pk_geom_free(g);
    cv_pk_free(pk);
    cv_pk_opts o = cv_pk_opts_default();
    o.mode = 7;
    pk = NULL;
    st = cv_pk_new(ctx, 8, 25, &o, &pk);
    CV_CHECK_OK(st == CV_ERR_ARG && !pk, "unknown delta mode is rejected: %s", cv_last_error());
    CV_CHECK_OK(cv_pk_delta_parse("overdensity") == CV_PK_DELTA_OVER && cv_pk_delta_parse("log") == -1, "delta mode names parse");
}

static void test_stats(void) {
    enum { M = 6, S = 2, K = 3 };
    float x[M * S * K];
    double xd[M * S * K];
    cv_chk_rand(x, M * S * K, 77, 1e3f, 2e3f);
    cv_chk_f2d(x, xd, M * S * K);
    cv_pk_stats st;
    cv_pk_stats_init(&st, S, K);
    cv_pk_stats_add(&st, x, 2);
    cv_pk_stats_add(&st, x + 2 * S * K, M - 2);
    double e = 0;
    for (int i = 0; i < S * K; i++) {
        double mu = 0, v = 0;
        for (int m = 0; m < M; m++) mu += xd[m * S * K + i];
        mu /= M;
        for (int m = 0; m < M; m++) v += (xd[m * S * K + i] - mu) * (xd[m * S * K + i] - mu);
        e = fmax(e, relerr(st.mean[i], mu));
        e = fmax(e, relerr(cv_pk_stats_std(&st, i / K, i % K), sqrt(v / M)));
    }
    CV_CHECK_OK(st.count == M && e < 1e-12, "statistics over maps (two adds) = two-pass mean and std: %.2e", e);
    cv_pk_stats_free(&st);

    double k[5] = { 1, 2, 3, 4, 5 }, a[5] = { 10, 10, 10, -10, 10 }, b[5] = { 10.5, 9.2, 10.9, -10.5, 20 };
    double km = cv_pk_agree_kmax(k, a, b, 5, 0.1);
    b[0] = 12;
    double k0 = cv_pk_agree_kmax(k, a, b, 5, 0.1);
    CV_CHECK_OK(km == 4 && k0 == 0, "agreement scale within 10%%: k = %g (4), first shell off: %g (0)", km, k0);
}

/* Figures: a grid of map panels and a log-log panel with bands decode as
 * PNGs of the expected size; an uncreatable path fails and leaves nothing. */
static void test_plots(void) {
    enum { H = 24, W = 32 };
    float *maps = malloc(6 * H * W * sizeof *maps);
    for (int i = 0; i < 6 * H * W; i++) maps[i] = (float)sin(0.1 * i) + (i / (H * W));
    cv_plot_panel pan[6];
    for (int i = 0; i < 6; i++) {
        pan[i].title = "panel"; pan[i].cbar_label = "log#d10#u x"; pan[i].cmap = i % CV_CMAP_COUNT;
        pan[i].vmin = pan[i].vmax = 0;
    }
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/test-pk-maps-%ld.png", tmp && *tmp ? tmp : ".", (long)getpid());
    int w = 0, h = 0;
    cv_status st = cv_plot_maps_png(path, maps, 2, 3, H, W, pan, 200);
    if (st == CV_OK) st = cv_plot_png_size(path, &w, &h);
    CV_CHECK_OK(st == CV_OK && w == 600 && h == 2 * (int)lround(200 * (0.62 / 0.83) * H / W),
                "2 x 3 map panels with colour bars: PNG %d x %d: %s", w, h, st == CV_OK ? "decodes" : cv_last_error());
    remove(path);

    double k[40], P[40], lo[40], hi[40], P2[40];
    for (int i = 0; i < 40; i++) {
        k[i] = 0.25 * (i + 1);
        P[i] = 3 * pow(k[i], -1.7);
        lo[i] = i % 7 == 3 ? -1 : 0.6 * P[i];      /* a non-positive band edge */
        hi[i] = 1.5 * P[i];
        P2[i] = i == 20 ? 0 : 0.9 * P[i];          /* a gap in a curve */
    }
    cv_plot_series s[2] = { { k, P, lo, hi, 40, { 31, 119, 180 }, 1, "real" }, { k, P2, lo, hi, 40, { 214, 39, 40 }, 0, "generated" } };
    cv_plot *p = NULL;
    st = cv_plot_open(path, 640, 400, 2, 1, &p);
    if (st == CV_OK) st = cv_plot_loglog(p, s, 2, "Mgas", "k [h/Mpc]", "P(k)");
    if (st == CV_OK) st = cv_plot_loglog(p, s, 1, "HI", "k [h/Mpc]", "P(k)");
    if (st == CV_OK) st = cv_plot_close(p);
    else cv_plot_abort(p);
    w = h = 0;
    if (st == CV_OK) st = cv_plot_png_size(path, &w, &h);
    CV_CHECK_OK(st == CV_OK && w == 640 && h == 400, "log-log panels with bands, gaps and legends: PNG %d x %d", w, h);
    remove(path);

    snprintf(path, sizeof path, "%s/no-such-dir-%ld/x.png", tmp && *tmp ? tmp : ".", (long)getpid());
    p = NULL;
    st = cv_plot_open(path, 100, 100, 1, 1, &p);
    CV_CHECK_OK(st == CV_ERR_IO && !p, "a figure in a missing directory: %s", cv_last_error());
    snprintf(path, sizeof path, "%s/test-pk-notpng-%ld.png", tmp && *tmp ? tmp : ".", (long)getpid());
    FILE *f = fopen(path, "w");
    if (f) { fputs("not a png", f); fclose(f); }
    st = cv_plot_png_size(path, &w, &h);
    CV_CHECK_OK(st == CV_ERR_FORMAT, "a file that is not a PNG does not decode: %s", cv_last_error());
    remove(path);
    free(maps);
}

int main(void) {
    tap_begin();
    test_geometry();
    test_design_ref();
    test_stats();
    test_plots();
    cv_ctx *ctx = tap_ctx();
    test_parseval(ctx);
    for (per_spec = 0; per_spec < 2; per_spec++) {
        test_design_dev(ctx);
        test_dev_vs_ref(ctx, 48, CV_PK_DELTA_LOG10);
        test_dev_vs_ref(ctx, 32, CV_PK_DELTA_OVER);
        test_dev_vs_ref(ctx, 32, CV_PK_DELTA_LINEAR);
    }
    per_spec = 0;
    test_bad_values(ctx);
    cv_ctx_free(ctx);
    return tap_end();
}
