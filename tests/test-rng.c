/* test-rng.c -- the counter-based RNG (src/runtime/cv_rng.c, cl/cv_rng.clh):
 * Philox4x32-10 known answers; host and device bit-identical over about a
 * million indices across seeds, streams and the index high word, and on
 * edge words of the Box-Muller transform; accuracy against a double
 * Box-Muller of the same bits; the normal's mean, variance, excess
 * kurtosis and Kolmogorov-Smirnov distance to N(0,1); the uniform inside
 * (0,1) and uniform; no correlation between streams, seeds, neighbouring
 * indices, or the uniform and normal of one index.
 * Statistical bounds are five standard errors (KS: the 0.1% critical
 * value); with fixed seeds the outcome is deterministic. */
#include "tap.h"
#include "runtime/cv_rng.h"
#include "ops/cv_ops.h"

#include <math.h>

#define NSTAT 1000000

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double phi_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

/* sqrt(n) * max |F_n - F| for sorted x */
static double ks_stat(double *x, size_t n, double (*cdf)(double)) {
    qsort(x, n, sizeof *x, cmp_double);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double f = cdf(x[i]);
        d = fmax(d, fmax(fabs((double)(i + 1) / n - f), fabs(f - (double)i / n)));
    }
    return d * sqrt((double)n);
}

static double u_cdf(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

static double corr(const double *a, const double *b, size_t n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
    ma /= n; mb /= n;
    for (size_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

/* The exact transform of the same bits, in double. */
static double normal_words_exact(uint32_t r0, uint32_t r1) {
    double v = (2.0 * r0 + 1.0) * ldexp(1.0, -33);
    uint32_t o = r1 >> 29, t = (r1 >> 5) & 0xFFFFFFu;
    double th = (o + t / 16777216.0) * (3.14159265358979323846 / 4);
    return sqrt(-2 * log(v)) * cos(th);
}

static void test_philox(void) {
    static const uint32_t kat[3][8] = {
        /* counter in, counter out; keys below */
        { 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 },
        { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd },
        { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 },
    };
    static const uint32_t keys[3][2] = { { 0, 0 }, { 0xffffffff, 0xffffffff }, { 0xa4093822, 0x299f31d0 } };
    for (int k = 0; k < 3; k++) {
        uint32_t ctr[4] = { kat[k][0], kat[k][1], kat[k][2], kat[k][3] };
        cv_philox4x32(ctr, keys[k]);
        int ok = ctr[0] == kat[k][4] && ctr[1] == kat[k][5] && ctr[2] == kat[k][6] && ctr[3] == kat[k][7];
        CV_CHECK_OK(ok, "philox4x32-10 known answer %d (Random123): %08x %08x %08x %08x", k, ctr[0], ctr[1], ctr[2], ctr[3]);
    }
}

/* Device fills against the host, bit for bit. */
static void test_bits(cv_ctx *ctx) {
    static const struct { uint64_t seed, stream, i0; int64_t n; } cs[] = {
        { 0, 0, 0, 262144 },
        { 1, 0, 0, 262144 },
        { 0, 1, 0, 262144 },
        { 0x123456789abcdefULL, 0x200000005ULL, 0xffff0000ULL, 262144 },   /* index crosses 2^32 */
    };
    for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
        int64_t n = cs[k].n;
        cv_chk_dev y = { 0 }, u = { 0 };
        float *hy = malloc((size_t)n * sizeof *hy), *hu = malloc((size_t)n * sizeof *hu);
        cv_status st = hy && hu ? CV_OK : CV_ERR_NOMEM;
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &y, 1, 1, 1, n, NULL);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &u, 1, 1, 1, n, NULL);
        if (st == CV_OK) st = cv_randn_fwd(ctx, &y.t, cs[k].seed, cs[k].stream, cs[k].i0, 1.0f);
        if (st == CV_OK) st = cv_rand_fwd(ctx, &u.t, cs[k].seed, cs[k].stream, cs[k].i0);
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &y, hy);
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &u, hu);
        int64_t bad = -1;
        for (int64_t i = 0; st == CV_OK && i < n && bad < 0; i++) {
            float a = cv_rng_normal(cs[k].seed, cs[k].stream, cs[k].i0 + (uint64_t)i);
            float b = cv_rng_uniform(cs[k].seed, cs[k].stream, cs[k].i0 + (uint64_t)i);
            if (memcmp(&a, &hy[i], sizeof a) || memcmp(&b, &hu[i], sizeof b)) {
                bad = i;
                cv_check_diag(c, "index %llu: device normal %a uniform %a, host %a %a",
                              (unsigned long long)(cs[k].i0 + (uint64_t)i), hy[i], hu[i], a, b);
            }
        }
        int guards = st == CV_OK && cv_chk_dev_guards_ok(c, ctx, &y) && cv_chk_dev_guards_ok(c, ctx, &u);
        if (st != CV_OK) cv_check_diag(c, "%s", cv_last_error());
        CV_CHECK_OK(st == CV_OK && bad < 0 && guards,
                    "device normal and uniform bit-identical with the host: %lld indices from %llu, seed %#llx, stream %#llx",
                    (long long)n, (unsigned long long)cs[k].i0, (unsigned long long)cs[k].seed,
                    (unsigned long long)cs[k].stream);
        cv_chk_dev_free(&y); cv_chk_dev_free(&u);
        free(hy); free(hu);
    }
}

/* Edge words through the device's transform: small and large r0 (all
 * exponent branches, v -> 0 and v -> 1, the sqrt(1/2) switch), and angles
 * across octant boundaries and the 2^32 wrap. */
static const struct { uint32_t a0, s0, a1, s1; const char *what; } edges[] = {
    { 0, 1, 0x1fffff00u, 1, "r0 = 0.. (v -> 0), angle across octant 0|1" },
    { 0xffffffffu, 0xffffffffu, 0xffffff00u, 1, "r0 = 2^32-1.. (v -> 1), angle across the 2^32 wrap" },
    { 3037000000u, 1, 0x7fffff00u, 1, "r0 around sqrt(1/2) 2^32, angle across octant 3|4" },
    { 1, 0x10001u, 0, 0x20000u, "r0 and angle striding the whole range" },
};

static void test_edges(cv_ctx *ctx) {
    const int64_t n = 65536;
    for (size_t k = 0; k < sizeof edges / sizeof *edges; k++) {
        cv_chk_dev y = { 0 };
        float *h = malloc((size_t)n * sizeof *h);
        cv_status st = h ? cv_chk_dev_new(ctx, &y, 1, 1, 1, n, NULL) : CV_ERR_NOMEM;
        if (st == CV_OK) {
            cv_kargs ka = cv_kargs_begin(ctx, "cvk_rng_normal_words");
            cv_karg_mem(&ka, y.t.buf); cv_karg_u64(&ka, y.t.off);
            cv_karg_u32(&ka, edges[k].a0); cv_karg_u32(&ka, edges[k].s0);
            cv_karg_u32(&ka, edges[k].a1); cv_karg_u32(&ka, edges[k].s1);
            cv_karg_i64(&ka, n);
            st = cv_launch1(&ka, (size_t)n, 256);
        }
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &y, h);
        int64_t bad = -1;
        double err = 0;
        for (int64_t i = 0; st == CV_OK && i < n; i++) {
            uint32_t r0 = edges[k].a0 + edges[k].s0 * (uint32_t)i, r1 = edges[k].a1 + edges[k].s1 * (uint32_t)i;
            float z = cv_rng_normal_words(r0, r1);
            if (bad < 0 && memcmp(&z, &h[i], sizeof z)) {
                bad = i;
                cv_check_diag(c, "words %08x %08x: device %a, host %a", r0, r1, h[i], z);
            }
            double ze = normal_words_exact(r0, r1);
            err = fmax(err, fabs(z - ze) / fmax(1.0, fabs(ze)));
        }
        if (st != CV_OK) cv_check_diag(c, "%s", cv_last_error());
        CV_CHECK_OK(st == CV_OK && bad < 0 && err < 1e-6,
                    "edge words, %s: device bit-identical, error vs double Box-Muller %.1e", edges[k].what, err);
        cv_chk_dev_free(&y);
        free(h);
    }
}

static void test_stats(void) {
    double *z = malloc(NSTAT * sizeof *z), *z2 = malloc(NSTAT * sizeof *z2), *u = malloc(NSTAT * sizeof *u);
    if (!z || !z2 || !u) { CV_CHECK_OK(0, "statistics: out of memory"); goto done; }
    const uint64_t seed = 20261128;
    double m1 = 0, m2 = 0, m4 = 0, zmax = 0, err = 0;
    for (size_t i = 0; i < NSTAT; i++) {
        z[i] = cv_rng_normal(seed, 0, i);
        m1 += z[i];
        zmax = fmax(zmax, fabs(z[i]));
        uint32_t r[4] = { (uint32_t)i, 0, 0, 0 }, key[2] = { (uint32_t)seed, 0 };
        cv_philox4x32(r, key);
        double ze = normal_words_exact(r[0], r[1]);
        err = fmax(err, fabs(z[i] - ze) / fmax(1.0, fabs(ze)));
    }
    m1 /= NSTAT;
    for (size_t i = 0; i < NSTAT; i++) { double d = z[i] - m1; m2 += d * d; m4 += d * d * d * d; }
    m2 /= NSTAT; m4 /= NSTAT;
    double kurt = m4 / (m2 * m2) - 3, se = 1 / sqrt((double)NSTAT);
    CV_CHECK_OK(err < 1e-6, "normal vs double Box-Muller of the same Philox words, 1e6 indices: max error %.1e", err);
    CV_CHECK_OK(fabs(m1) < 5 * se, "normal mean %.5f (|.| < %.4f)", m1, 5 * se);
    CV_CHECK_OK(fabs(m2 - 1) < 5 * sqrt(2.0) * se, "normal variance %.5f (|. - 1| < %.4f)", m2, 5 * sqrt(2.0) * se);
    CV_CHECK_OK(fabs(kurt) < 5 * sqrt(24.0) * se, "normal excess kurtosis %.4f (|.| < %.4f)", kurt, 5 * sqrt(24.0) * se);
    CV_CHECK_OK(zmax > 4.5 && zmax <= 6.8, "normal tails: max |z| over 1e6 = %.3f (expected about 5, at most 6.8)", zmax);

    /* correlations: streams, seeds, neighbours, uniform vs normal of an index */
    for (size_t i = 0; i < NSTAT; i++) { z2[i] = cv_rng_normal(seed, 1, i); u[i] = cv_rng_uniform(seed, 0, i); }
    double r_stream = corr(z, z2, NSTAT);
    for (size_t i = 0; i < NSTAT; i++) z2[i] = cv_rng_normal(seed + 1, 0, i);
    double r_seed = corr(z, z2, NSTAT);
    double r_lag = corr(z, z + 1, NSTAT - 1);
    double r_uz = corr(u, z, NSTAT);
    double lim = 5 * se;
    CV_CHECK_OK(fabs(r_stream) < lim, "streams 0 and 1 uncorrelated: r = %.5f (|r| < %.4f)", r_stream, lim);
    CV_CHECK_OK(fabs(r_seed) < lim, "seeds s and s+1 uncorrelated: r = %.5f", r_seed);
    CV_CHECK_OK(fabs(r_lag) < lim, "neighbouring indices uncorrelated: r = %.5f", r_lag);
    CV_CHECK_OK(fabs(r_uz) < lim, "uniform and normal of one index uncorrelated: r = %.5f", r_uz);
    /* |z| against u too: Box-Muller's radius and the uniform must not share bits */
    for (size_t i = 0; i < NSTAT; i++) z2[i] = fabs(z[i]);
    double r_uabs = corr(u, z2, NSTAT);
    CV_CHECK_OK(fabs(r_uabs) < lim, "uniform and |normal| of one index uncorrelated: r = %.5f", r_uabs);

    /* uniform: inside (0, 1), moments, KS */
    double umin = 1, umax = 0, um = 0, uv = 0;
    for (size_t i = 0; i < NSTAT; i++) { umin = fmin(umin, u[i]); umax = fmax(umax, u[i]); um += u[i]; }
    um /= NSTAT;
    for (size_t i = 0; i < NSTAT; i++) uv += (u[i] - um) * (u[i] - um);
    uv /= NSTAT;
    float w0 = cv_rng_uniform_word(0), w1 = cv_rng_uniform_word(0xffffffffu);
    CV_CHECK_OK(umin > 0 && umax < 1 && w0 == 0x1p-24f && w1 == 1 - 0x1p-24f,
                "uniform in (0,1): 1e6 draws in [%.3g, 1 - %.3g]; extreme words give 2^-24 and 1 - 2^-24", umin, 1 - umax);
    CV_CHECK_OK(fabs(um - 0.5) < 5 * sqrt(1 / 12.0) * se && fabs(uv - 1 / 12.0) < 5 * sqrt(1 / 180.0) * se,
                "uniform mean %.5f, variance %.5f (1/12 = %.5f)", um, uv, 1 / 12.0);
    double ksu = ks_stat(u, NSTAT, u_cdf);
    CV_CHECK_OK(ksu < 1.95, "uniform Kolmogorov-Smirnov sqrt(n) D = %.3f (< 1.95, p = 0.001)", ksu);
    double ks = ks_stat(z, NSTAT, phi_cdf);
    CV_CHECK_OK(ks < 1.95, "normal Kolmogorov-Smirnov against N(0,1): sqrt(n) D = %.3f (< 1.95, p = 0.001)", ks);
    /* the test can fail: a visibly wrong normal (scaled by 1.02) is rejected */
    for (size_t i = 0; i < NSTAT; i++) z[i] *= 1.02;
    double ksbad = ks_stat(z, NSTAT, phi_cdf);
    CV_CHECK_OK(ksbad > 1.95, "KS rejects N(0, 1.02^2): sqrt(n) D = %.3f", ksbad);
done:
    free(z); free(z2); free(u);
}

int main(void) {
    tap_begin();
    cv_ctx *ctx = tap_ctx();
    test_philox();
    test_bits(ctx);
    test_edges(ctx);
    test_stats();
    cv_ctx_free(ctx);
    return tap_end();
}
