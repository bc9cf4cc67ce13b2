/* cv_check_bcast.c -- the bcast family checks (broadcast and weight EMA)
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_op_model.h"
#include "ops/cv_op_priv.h"
#include "check/cv_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks ------------------------------------------------------------- */

typedef struct { double *t, *y, *g; int64_t N, M; } bc_fd;

static double bc_loss(void *u) {
    bc_fd *f = u;
    double L = 0;
    cv_bcast_ref_fwd(f->t, f->y, f->N, f->M);
    for (int64_t i = 0; i < f->N * f->M; i++) L += f->g[i] * f->y[i];
    return L;
}

void cv_bcast_gradcheck(cv_check *c) {
    int64_t N = 3, M = 2 * 5 * 7;
    double *t = malloc(M * sizeof *t), *y = malloc(N * M * sizeof *y), *g = malloc(N * M * sizeof *g), *dt = calloc(M, sizeof *dt);
    cv_chk_rand_d(t, M, 1, -1, 1);
    cv_chk_rand_d(g, N * M, 2, -1, 1);
    cv_bcast_ref_bwd(g, dt, N, M);
    bc_fd f = { t, y, g, N, M };
    double e = cv_chk_fd_check(bc_loss, &f, t, (size_t)M, dt, 1e-3, 2000, 3);
    CV_CHECK_OK(e < 1e-8, "bcast ref bwd vs finite differences (N=3, 2x5x7): rel err %.2e", e);
    free(t); free(y); free(g); free(dt);
}

void cv_bcast_devcheck(cv_check *c, cv_ctx *ctx) {
    static const int64_t cases[][4] = { { 1, 3, 5, 7 }, { 4, 32, 4, 4 }, { 3, 17, 8, 8 } };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int64_t N = cases[k][0], C = cases[k][1], H = cases[k][2], W = cases[k][3], M = C * H * W;
        float *t = malloc(M * sizeof *t), *y = malloc(N * M * sizeof *y), *g = malloc(N * M * sizeof *g), *dt = malloc(M * sizeof *dt);
        double *td = malloc(M * sizeof *td), *yd = malloc(N * M * sizeof *yd), *gd = malloc(N * M * sizeof *gd), *dtd = malloc(M * sizeof *dtd);
        cv_chk_rand(t, M, 5 + k, -1, 1); cv_chk_rand(g, N * M, 6 + k, -1, 1); cv_chk_rand(dt, M, 7 + k, -1, 1);
        cv_chk_f2d(t, td, M); cv_chk_f2d(g, gd, N * M); cv_chk_f2d(dt, dtd, M);
        cv_bcast_ref_fwd(td, yd, N, M);
        cv_bcast_ref_bwd(gd, dtd, N, M);
        cv_chk_dev T = {0}, Y = {0}, G = {0}, DT = {0};
        cv_status st = cv_chk_dev_new(ctx, &T, 1, C, H, W, t);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &Y, N, C, H, W, NULL);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &G, N, C, H, W, g);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &DT, 1, C, H, W, dt);
        if (st == CV_OK) st = cv_bcast_fwd(ctx, &T.t, &Y.t);
        if (st == CV_OK) st = cv_bcast_bwd(ctx, &G.t, &DT.t);
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &Y, y);
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &DT, dt);
        double e1 = st == CV_OK ? cv_chk_nmse(c, "bcast y", y, yd, N * M, 5) : INFINITY;
        double e2 = st == CV_OK ? cv_chk_nmse(c, "bcast dt", dt, dtd, M, 5) : INFINITY;
        int guards = st == CV_OK && cv_chk_dev_guards_ok(c, ctx, &Y) && cv_chk_dev_guards_ok(c, ctx, &DT);
        if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
        CV_CHECK_OK(e1 == 0 && guards, "bcast fwd %lldx%lldx%lldx%lld: nmse %.2e", (long long)N, (long long)C, (long long)H, (long long)W, e1);
        CV_CHECK_OK(e2 < 1e-12 && guards, "bcast bwd %lldx%lldx%lldx%lld: nmse %.2e", (long long)N, (long long)C, (long long)H, (long long)W, e2);
        cv_chk_dev_free(&T); cv_chk_dev_free(&Y); cv_chk_dev_free(&G); cv_chk_dev_free(&DT);
        free(t); free(y); free(g); free(dt); free(td); free(yd); free(gd); free(dtd);
    }
    /* EMA: applied when the optimizer's flag says 0, skipped when it says 1 */
    int64_t n = 1000;
    float *e = malloc(n * sizeof *e), *p = malloc(n * sizeof *p), *out = malloc(n * sizeof *out);
    double *ed = malloc(n * sizeof *ed), *pd = malloc(n * sizeof *pd);
    cv_chk_rand(e, n, 11, -1, 1); cv_chk_rand(p, n, 12, -1, 1);
    cv_chk_f2d(e, ed, n); cv_chk_f2d(p, pd, n);
    cv_ema_ref(ed, pd, n, 0.999);
    cv_chk_dev E = {0}, Pp = {0}, S = {0};
    float stat[2] = { 0.0f, 1.0f };
    cv_status st = cv_chk_dev_new(ctx, &E, 1, 1, 1, n, e);
    if (st == CV_OK) st = cv_chk_dev_new(ctx, &Pp, 1, 1, 1, n, p);
    if (st == CV_OK) st = cv_chk_dev_new(ctx, &S, 1, 1, 1, 2, stat);
    cv_tensor s0 = S.t, s1 = S.t;
    s0.shape[3] = 1; s1.shape[3] = 1; s1.off += 1;
    if (st == CV_OK) st = cv_ema_step(ctx, &E.t, &Pp.t, 0.999f, &s0);
    if (st == CV_OK) st = cv_chk_dev_get(ctx, &E, out);
    double err = st == CV_OK ? cv_chk_nmse(c, "ema", out, ed, n, 5) : INFINITY;
    CV_CHECK_OK(err < 1e-12 && cv_chk_dev_guards_ok(c, ctx, &E), "ema step vs reference: nmse %.2e", err);
    memcpy(e, out, n * sizeof *e);
    if (st == CV_OK) st = cv_ema_step(ctx, &E.t, &Pp.t, 0.5f, &s1);
    if (st == CV_OK) st = cv_chk_dev_get(ctx, &E, out);
    CV_CHECK_OK(st == CV_OK && !memcmp(e, out, n * sizeof *e), "ema step skipped when the optimizer's flag says skipped");
    cv_chk_dev_free(&E); cv_chk_dev_free(&Pp); cv_chk_dev_free(&S);
    free(e); free(p); free(out); free(ed); free(pd);
}
