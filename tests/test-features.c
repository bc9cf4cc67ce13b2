/* test-features.c -- the classical baseline's features (cv_features):
 * the k-bins (log-spaced, every shell up to Nyquist in exactly one bin,
 * the corners out, fewer bins for small maps), the device path against
 * the reference (spectra from cv_pk_compute_ref) on lognormal maps with a
 * partial last batch, the moments against a direct two-pass computation,
 * the physics of the spectral features (a multiplicative constant leaves
 * log P unchanged, squaring the field adds log10 4, identical channels
 * have r = 1, anticorrelated ones r = -1), and bad values named; the
 * thumbnail yardstick (block means of the transformed fields) against
 * values set per block, its refusals. */
#include "tap.h"
#include "analysis/cv_features.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

/* Lognormal maps (count, 3, n, n): a wave plus noise in log10, channels
 * correlated through a shared component. */
static void maps_fill(float *maps, int count, int n, uint64_t seed) {
    size_t np = (size_t)n * n;
    double *u = malloc(4 * np * sizeof *u);
    for (int m = 0; m < count; m++)
        for (int ch = 0; ch < 3; ch++) {
            cv_chk_rand_d(u, 4 * np, seed + 10 * m + ch, -1, 1);
            for (int y = 0; y < n; y++)
                for (int x = 0; x < n; x++) {
                    size_t i = (size_t)y * n + x;
                    double w = sin(2 * PI * (x + 2 * y + m) / n) + 0.5 * cos(2 * PI * 3 * x / n);
                    double g = (u[4 * i] + u[4 * i + 1]) * (ch == 2 ? 2.0 : 0.3) + u[4 * i + 2] * u[4 * i + 3];
                    maps[((size_t)m * 3 + ch) * np + i] = (float)pow(10, 10 - 3 * ch + (0.5 + 0.2 * ch) * w + 0.4 * g);
                }
        }
    free(u);
}

static void test_bins(void) {
    int ok = 1, nb64 = 0, nb8 = 0;
    for (int n = 8; n <= 128 && ok; n *= 2) {
        cv_pk_geom *g = NULL;
        if (cv_pk_geom_new(n, 25, &g) != CV_OK) { ok = 0; break; }
        int32_t *bin = malloc(g->n_shell * sizeof *bin);
        int nb = cv_features_bins(g, 8, bin), last = -1;
        int64_t *cnt = calloc(nb, sizeof *cnt);
        for (int s = 0; s < g->n_shell; s++) {
            int in = g->shell[s] <= n / 2;
            if (in != (bin[s] >= 0) || (bin[s] >= 0 && bin[s] < last) || bin[s] >= nb) ok = 0;   /* bins monotone in k */
            if (bin[s] >= 0) { cnt[bin[s]]++; last = bin[s]; }
        }
        for (int b = 0; b < nb; b++) if (!cnt[b]) ok = 0;
        if (n == 64) nb64 = nb;
        if (n == 8) nb8 = nb;
        free(cnt); free(bin);
        cv_pk_geom_free(g);
    }
    CV_CHECK_OK(ok && nb64 == 8 && nb8 == 4 && cv_features_dim(3, 8) == 60,
                "bins: every shell up to N/2 in one non-empty bin, corners out; 8 bins at 64^2, %d at 8^2; 60 features", nb8);
}

static double feat_err(const float *a, const double *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - b[i]) / fmax(1, fabs(b[i])));
    return e;
}

static void test_dev_vs_ref(cv_ctx *ctx) {
    enum { N = 32, COUNT = 70 };   /* cv_pk batches 64: a partial last batch */
    float *maps = malloc((size_t)COUNT * 3 * N * N * sizeof *maps);
    maps_fill(maps, COUNT, N, 5);
    cv_features *f = NULL;
    cv_status st = cv_features_new(ctx, N, 25, 3, NULL, 8, &f);
    CV_CHECK_OK(st == CV_OK, "cv_features_new 32^2, 3 channels: %s", st == CV_OK ? "" : cv_last_error());
    if (st != CV_OK) { free(maps); return; }
    int D = cv_features_n_dim(f);
    float *a = malloc((size_t)COUNT * D * sizeof *a);
    double *b = malloc((size_t)COUNT * D * sizeof *b);
    cv_status s1 = cv_features_compute(f, maps, COUNT, a), s2 = cv_features_compute_ref(f, maps, COUNT, b);
    double e = s1 == CV_OK && s2 == CV_OK ? feat_err(a, b, (size_t)COUNT * D) : INFINITY;
    CV_CHECK_OK(e < 2e-5, "device features match the reference over %d maps: max rel err %.2e", COUNT, e);

    /* moments against a direct two-pass computation, map 3 channel 1 */
    const float *x = maps + ((size_t)3 * 3 + 1) * N * N;
    double mu = 0, m2 = 0, m3 = 0, m4 = 0;
    for (int i = 0; i < N * N; i++) mu += log10(x[i]) / (N * N);
    for (int i = 0; i < N * N; i++) {
        double d = log10(x[i]) - mu;
        m2 += d * d / (N * N); m3 += d * d * d / (N * N); m4 += d * d * d * d / (N * N);
    }
    const double want[4] = { mu, sqrt(m2), m3 / pow(m2, 1.5), m4 / (m2 * m2) - 3 };
    const double *got = b + (size_t)3 * D + 6 * cv_features_n_bins(f) + 4;
    double me = 0;
    for (int k = 0; k < 4; k++) me = fmax(me, fabs(got[k] - want[k]));
    CV_CHECK_OK(me < 1e-10, "moments (mean, std, skew, kurt) of log10 HI match a direct computation (err %.1e; %.3f %.3f %.3f %.3f)",
                me, got[0], got[1], got[2], got[3]);

    /* physics: scale channel 0 by 7 (log P unchanged), square channel 1 in
     * log10 (log P + log10 4), channel 2 = channel 0 (r(Mgas, B) = 1) */
    size_t np = (size_t)N * N;
    float *m = malloc(3 * np * sizeof *m);
    for (size_t i = 0; i < np; i++) {
        m[i] = maps[i] * 7;
        m[np + i] = (float)pow(10, 2 * log10(maps[np + i]) - 4);
        m[2 * np + i] = maps[i];
    }
    double *c2 = malloc(D * sizeof *c2);
    cv_features_compute_ref(f, m, 1, c2);
    int nb = cv_features_n_bins(f);
    double e0 = 0, e1 = 0, e2 = 0;
    for (int k = 0; k < nb; k++) {
        e0 = fmax(e0, fabs(c2[k] - b[k]));
        e1 = fmax(e1, fabs(c2[nb + k] - (b[nb + k] + log10(4))));
        e2 = fmax(e2, fabs(c2[4 * nb + k] - 1));     /* spectrum 4: Mgas-B */
    }
    CV_CHECK_OK(e0 < 1e-5 && e1 < 1e-6 && e2 < 1e-12,
                "log P is blind to a constant factor (%.1e), grows by log10 4 when log10 x doubles (%.1e); identical channels r = 1 (%.1e)",
                e0, e1, e2);
    for (size_t i = 0; i < np; i++) m[2 * np + i] = (float)(1e20 / m[i]);
    cv_features_compute_ref(f, m, 1, c2);
    double e3 = 0;
    for (int k = 0; k < nb; k++) e3 = fmax(e3, fabs(c2[4 * nb + k] + 1));
    CV_CHECK_OK(e3 < 1e-6, "a channel and its inverse: r = -1 in every bin (%.1e)", e3);

    /* bad values */
    m[5] = 0;
    st = cv_features_compute(f, m, 1, a);
    CV_CHECK_OK(st == CV_ERR_NUMERIC && strstr(cv_last_error(), "pixel 5"), "a value 0 is refused, the pixel named: %s", cv_last_error());
    for (size_t i = 0; i < np; i++) m[np + i] = 3;
    m[5] = 1;
    st = cv_features_compute(f, m, 1, a);
    CV_CHECK_OK(st == CV_ERR_NUMERIC && strstr(cv_last_error(), "constant"), "a constant channel is refused (status %d): %s", (int)st, cv_last_error());
    const char *tr[3] = { "log10", "none", "log10" };
    cv_features *f2 = NULL;
    st = cv_features_new(ctx, N, 25, 3, tr, 8, &f2);
    CV_CHECK_OK(st == CV_ERR_ARG && f2 == NULL, "mixed log10 and none transforms refused: %s", cv_last_error());
    free(c2); free(m); free(a); free(b); free(maps);
    cv_features_free(f);
}

/* Two channels of 8 x 12 on 4 x 4 blocks of 2 x 3: channel 0 (log10)
 * holds 10^(block index + a pixel's offset within the block, mean 0), so
 * its block means are the block indices; channel 1 (none) the pixel
 * index, whose block mean is the index at the block's centre. */
static void test_coarse(void) {
    enum { H = 8, W = 12, R = 4 };
    float maps[2 * 2 * H * W], out[2 * 2 * R * R];
    const int lg[2] = { 1, 0 };
    const double off[2][3] = { { -0.5, 0.25, 0.25 }, { 0.5, -0.25, -0.25 } };   /* sum 0 over a 2 x 3 block */
    for (int m = 0; m < 2; m++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int b = (y / 2) * R + x / 3;
                maps[((m * 2 + 0) * H + y) * W + x] = (float)pow(10.0, b + m + off[y % 2][x % 3]);
                maps[((m * 2 + 1) * H + y) * W + x] = (float)(y * W + x + 100 * m);
            }
    cv_status st = cv_features_coarse(maps, 2, 2, H, W, lg, R, out);
    double e0 = 0, e1 = 0;
    for (int m = 0; m < 2; m++)
        for (int b = 0; b < R * R; b++) {
            int by = b / R, bx = b % R;
            e0 = fmax(e0, fabs(out[(m * 2 + 0) * R * R + b] - (b + m)));
            double centre = (2 * by + 0.5) * W + (3 * bx + 1) + 100 * m;
            e1 = fmax(e1, fabs(out[(m * 2 + 1) * R * R + b] - centre) / centre);
        }
    CV_CHECK_OK(st == CV_OK && e0 < 1e-5 && e1 < 1e-6,
                "thumbnail: block means of log10 and of plain fields, channel-major (errors %.1e, %.1e)", e0, e1);
    char buf[64];
    const char *names[2] = { "Mgas", "B" };
    CV_CHECK_OK(!strcmp(cv_features_coarse_name(2, names, R, 16 + 6, buf, sizeof buf), "B block 1,2"),
                "thumbnail number 22 of 2 x 4 x 4 is named 'B block 1,2': %s", buf);
    st = cv_features_coarse(maps, 2, 2, H, W, lg, 5, out);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "5 x 5"), "blocks that do not divide the map refused: %s", cv_last_error());
    maps[(1 * 2 + 0) * H * W + 13] = 0;
    st = cv_features_coarse(maps, 2, 2, H, W, lg, R, out);
    CV_CHECK_OK(st == CV_ERR_NUMERIC && strstr(cv_last_error(), "map 1, channel 0, pixel 13"),
                "a value 0 under log10 refused, map, channel and pixel named: %s", cv_last_error());
}

int main(void) {
    tap_begin();
    test_bins();
    test_coarse();
    cv_ctx *ctx = tap_ctx();
    test_dev_vs_ref(ctx);
    cv_ctx_free(ctx);
    return tap_end();
}
