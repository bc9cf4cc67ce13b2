/* cv_check_pk.c -- the pk family checks: the reference against designed spectra, the device path against the reference
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "analysis/cv_pk.h"
#include "check/cv_check.h"

#include <math.h>

#define PK_PI 3.14159265358979323846
#include <stdlib.h>
#include <string.h>

/* ---- self-checks (cosmovae-info --self-test, tests/test-ops) ------------- */

#include "check/cv_check.h"

/* DESIGN.md's vectors at N = 8, x the first index: A, B (2, 8, 8). */
static void pk_design_ab(float *ab) {
    for (int x = 0; x < 8; x++)
        for (int y = 0; y < 8; y++) {
            ab[x * 8 + y] = (float)((((3 * x + 5 * y + x * y) % 7) - 3) / 8.0);
            ab[64 + x * 8 + y] = (float)((((2 * x * x + y + 1) % 5) - 2) / 8.0);
        }
}
static const double pk_design_p[3][3] = {
    { 0.920281179775, 1.04524889691, 0.553558020999 },          /* A */
    { 0.0512720361564, 0.411961846069, 0.52011804296 },        /* B */
    { -0.00449417340468, -0.0138785071656, -0.12128076161 },   /* A-B */
};

/* P(k) has no backward: the "grad" check is the reference against the
 * hand-computable spectra of DESIGN.md. */
void cv_pk_gradcheck(cv_check *c) {
    float ab[128];
    double *p = malloc(3 * 16 * sizeof *p);
    cv_pk_geom *g = NULL;
    pk_design_ab(ab);
    if (!p || cv_pk_geom_new(8, 25, &g) != CV_OK || cv_pk_compute_ref(g, 2, CV_PK_DELTA_LINEAR, ab, 1, p) != CV_OK) {
        CV_CHECK_OK(0, "pk reference: %s", cv_last_error());
    } else {
        double e = 0;
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 3; k++) e = fmax(e, fabs(p[s * g->n_shell + k] - pk_design_p[s][k]) / fabs(pk_design_p[s][k]));
        CV_CHECK_OK(e < 1e-10, "pk reference: DESIGN.md A, B, A-B at N = 8, L = 25: max rel err %.2e", e);
    }
    cv_pk_geom_free(g);
    free(p);
}

/* The device path against the reference: DESIGN.md's vectors (1e-6), then
 * random lognormal maps (3 fields, 5 maps in batches of 2) in every delta
 * mode at N = 48 and 32, both binning kernels; error relative to
 * sqrt(P_aa P_bb) per shell. */
void cv_pk_devcheck(cv_check *c, cv_ctx *ctx) {
    float ab[128], outd[3 * 16];
    pk_design_ab(ab);
    cv_pk_opts o = cv_pk_opts_default();
    o.n_chan = 2; o.mode = CV_PK_DELTA_LINEAR;
    cv_pk *pk = NULL;
    cv_status st = cv_pk_new(ctx, 8, 25, &o, &pk);
    if (st == CV_OK) st = cv_pk_compute(pk, ab, 1, outd);
    if (st != CV_OK) CV_CHECK_OK(0, "pk device, N = 8: %s", cv_last_error());
    else {
        double e = 0;
        int ns = cv_pk_geometry(pk)->n_shell;
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 3; k++) e = fmax(e, fabs(outd[s * ns + k] - pk_design_p[s][k]) / fabs(pk_design_p[s][k]));
        CV_CHECK_OK(e < 1e-6, "pk device: DESIGN.md A, B, A-B at N = 8, L = 25: max rel err %.2e", e);
    }
    cv_pk_free(pk);
    static const int sizes[3] = { 48, 32, 32 };
    for (int mode = 0; mode < 3; mode++)
        for (int per_spec = 0; per_spec < 2; per_spec++) {
            enum { M = 5, C = 3 };
            int n = sizes[mode];
            size_t np = (size_t)n * n, nall = (size_t)M * C * np;
            float *maps = malloc(nall * sizeof *maps), *u = malloc(nall * sizeof *u), *out = NULL;
            double *ref = NULL;
            cv_chk_rand(u, nall, 900 + 10 * mode, -1, 1);
            for (size_t i = 0; i < nall; i++) {
                size_t ch = i / np % C, x = i % n, y = i / n % n;
                double w = sin(2 * PK_PI * (x + 2.0 * y) / n) + 0.5 * u[i];
                maps[i] = (float)(mode == CV_PK_DELTA_LINEAR ? w : pow(10, 4 + 3.0 * ch + (0.5 + 0.3 * ch) * w));
            }
            o = cv_pk_opts_default();
            o.n_chan = C; o.mode = mode; o.batch = 2; o.per_spec = per_spec;
            pk = NULL;
            st = cv_pk_new(ctx, n, 25, &o, &pk);
            int S = cv_pk_n_spec(C), NS = st == CV_OK ? cv_pk_geometry(pk)->n_shell : 0;
            out = malloc((size_t)M * S * (NS ? NS : 1) * sizeof *out);
            ref = malloc((size_t)M * S * (NS ? NS : 1) * sizeof *ref);
            if (st == CV_OK) st = cv_pk_compute(pk, maps, M, out);
            if (st == CV_OK) st = cv_pk_compute_ref(cv_pk_geometry(pk), C, mode, maps, M, ref);
            double e = 0;
            for (int m = 0; st == CV_OK && m < M; m++)
                for (int sp = 0; sp < S; sp++) {
                    int a, b;
                    cv_pk_spec_pair(C, sp, &a, &b);
                    for (int k = 0; k < NS; k++) {
                        size_t i = ((size_t)m * S + sp) * NS + k;
                        double sc = sqrt(ref[((size_t)m * S + a) * NS + k] * ref[((size_t)m * S + b) * NS + k]);
                        e = fmax(e, fabs(out[i] - ref[i]) / sc);
                    }
                }
            /* float32 FFT noise reaches ~1e-5 of sqrt(P_aa P_bb) in one-mode
               corner shells; structural errors are O(1) */
            CV_CHECK_OK(st == CV_OK && e < 1e-4, "pk device vs reference, N = %d, %d maps x %d fields, %s delta, %s binning: "
                        "max err %.2e of sqrt(P_aa P_bb)%s%s", n, M, C, cv_pk_delta_name(mode),
                        per_spec ? "per-spectrum" : "one-pass", e, st == CV_OK ? "" : ": ", st == CV_OK ? "" : cv_last_error());
            cv_pk_free(pk);
            free(maps); free(u); free(out); free(ref);
        }
}
