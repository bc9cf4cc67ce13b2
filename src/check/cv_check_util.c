/* cv_check_util.c -- the util family checks (copy): the template every family's checks follow
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "check/cv_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks ------------------------------------------------------------- */

typedef struct { double *x, *y, *g; int64_t n; } copy_fd;

static double copy_loss(void *u) {
    copy_fd *f = u;
    double L = 0;
    cv_copy_ref_fwd(f->x, f->y, f->n);
    for (int64_t i = 0; i < f->n; i++) L += f->g[i] * f->y[i];
    return L;
}

void cv_util_gradcheck(cv_check *c) {
    int64_t n = 37;
    double x[37], y[37], g[37], dx[37];
    cv_chk_rand_d(x, n, 1, -1, 1);
    cv_chk_rand_d(g, n, 2, -1, 1);
    memset(dx, 0, sizeof dx);
    cv_copy_ref_bwd(g, dx, n);
    copy_fd f = { x, y, g, n };
    double e = cv_chk_fd_check(copy_loss, &f, x, (size_t)n, dx, 1e-3, 2000, 3);
    CV_CHECK_OK(e < 1e-6, "copy ref bwd vs finite differences, n=%lld: rel err %.2e", (long long)n, e);
}

void cv_util_devcheck(cv_check *c, cv_ctx *ctx) {
    static const int64_t sizes[] = { 1, 7, 257, 1000 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int64_t n = sizes[s];
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *g = malloc(n * sizeof *g);
        double *xd = malloc(n * sizeof *xd), *yd = malloc(n * sizeof *yd), *gd = malloc(n * sizeof *gd), *dxd = calloc(n, sizeof *dxd);
        float *dx0 = malloc(n * sizeof *dx0);
        cv_chk_dev X = {0}, Y = {0}, G = {0}, DX = {0};
        cv_chk_rand(x, n, 10 + s, -2, 2);
        cv_chk_rand(g, n, 20 + s, -2, 2);
        cv_chk_rand(dx0, n, 30 + s, -2, 2);          /* non-zero dx: checks +=, not = */
        cv_chk_f2d(x, xd, n); cv_chk_f2d(g, gd, n); cv_chk_f2d(dx0, dxd, n);
        cv_copy_ref_fwd(xd, yd, n);
        cv_copy_ref_bwd(gd, dxd, n);
        cv_status st = cv_chk_dev_new(ctx, &X, 1, 1, 1, n, x);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &Y, 1, 1, 1, n, NULL);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &G, 1, 1, 1, n, g);
        if (st == CV_OK) st = cv_chk_dev_new(ctx, &DX, 1, 1, 1, n, dx0);
        if (st == CV_OK) st = cv_copy_fwd(ctx, &X.t, &Y.t);
        if (st == CV_OK) st = cv_copy_bwd(ctx, &G.t, &DX.t);
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &Y, y);
        double e1 = st == CV_OK ? cv_chk_nmse(c, "copy y", y, yd, n, 5) : INFINITY;
        if (st == CV_OK) st = cv_chk_dev_get(ctx, &DX, dx0);
        double e2 = st == CV_OK ? cv_chk_nmse(c, "copy dx", dx0, dxd, n, 5) : INFINITY;
        int guards = st == CV_OK && cv_chk_dev_guards_ok(c, ctx, &Y) && cv_chk_dev_guards_ok(c, ctx, &DX);
        if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
        CV_CHECK_OK(e1 == 0 && guards, "copy fwd n=%lld: nmse %.2e, guards %s", (long long)n, e1, guards ? "intact" : "BROKEN");
        CV_CHECK_OK(e2 < 1e-14 && guards, "copy bwd n=%lld: nmse %.2e", (long long)n, e2);
        cv_chk_dev_free(&X); cv_chk_dev_free(&Y); cv_chk_dev_free(&G); cv_chk_dev_free(&DX);
        free(x); free(y); free(g); free(xd); free(yd); free(gd); free(dxd); free(dx0);
    }
}
