/* cv_check_conv.c -- the conv family checks: reference backward vs finite differences, every algorithm on the device vs the reference
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "check/cv_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks -------------------------------------------------------------- */

typedef struct conv_fd {
    double *x, *w, *b, *y, *g;
    int64_t N, Ci, H, W, Co;
    cv_conv2d_params p;
} conv_fd;

static double conv_loss(void *u) {
    conv_fd *f = u;
    int64_t ny = f->N * f->Co * f->H * f->W;
    double L = 0;
    cv_conv2d_ref_fwd(f->x, f->w, f->b, f->y, f->N, f->Ci, f->H, f->W, f->Co, &f->p);
    for (int64_t i = 0; i < ny; i++) L += f->g[i] * f->y[i];
    return L;
}

typedef struct bias_fd { double *b, *y, *g; int64_t N, C, HW; } bias_fd;

static double bias_loss(void *u) {
    bias_fd *f = u;
    int64_t ny = f->N * f->C * f->HW;
    double L = 0;
    memset(f->y, 0, (size_t)ny * sizeof *f->y);
    cv_bias_ref_fwd(f->b, f->y, f->N, f->C, f->HW);
    for (int64_t i = 0; i < ny; i++) L += f->g[i] * f->y[i];
    return L;
}

void cv_conv_gradcheck(cv_check *c) {
    const int64_t N = 2, Ci = 3, Co = 4, H = 5, W = 4;
    const int64_t nx = N * Ci * H * W, ny = N * Co * H * W, nwmax = Co * Ci * 9;
    double *x = malloc(nx * sizeof *x), *dx = malloc(nx * sizeof *dx);
    double *w = malloc(nwmax * sizeof *w), *dw = malloc(nwmax * sizeof *dw);
    double *b = malloc(Co * sizeof *b), *db = malloc(Co * sizeof *db);
    double *y = malloc(ny * sizeof *y), *g = malloc(ny * sizeof *g);
    if (!x || !dx || !w || !dw || !b || !db || !y || !g) {
        CV_CHECK_OK(0, "conv2d gradcheck: out of memory");
        goto done;
    }
    for (int k = 1; k <= 3; k += 2)
        for (int gelu = 0; gelu <= 1; gelu++) {
            int64_t nw = Co * Ci * k * k;
            uint64_t seed = 100 + 10 * (uint64_t)k + (uint64_t)gelu;
            cv_conv2d_params p = { k, gelu, 0, CV_CONV_AUTO };
            cv_chk_rand_d(x, nx, seed, -2, 2);
            cv_chk_rand_d(w, nw, seed + 1, -1, 1);
            cv_chk_rand_d(b, Co, seed + 2, -1, 1);
            cv_chk_rand_d(g, ny, seed + 3, -1, 1);
            memset(dx, 0, nx * sizeof *dx);
            memset(dw, 0, nw * sizeof *dw);
            memset(db, 0, Co * sizeof *db);
            cv_conv2d_ref_bwd(x, w, g, dx, dw, db, N, Ci, H, W, Co, &p);
            conv_fd f = { x, w, b, y, g, N, Ci, H, W, Co, p };
            double ex = cv_chk_fd_check(conv_loss, &f, x, (size_t)nx, dx, 1e-4, 2000, seed + 4);
            double ew = cv_chk_fd_check(conv_loss, &f, w, (size_t)nw, dw, 1e-4, 2000, seed + 5);
            double eb = cv_chk_fd_check(conv_loss, &f, b, (size_t)Co, db, 1e-4, 2000, seed + 6);
            CV_CHECK_OK(ex < 1e-6, "conv2d ref dx vs finite differences, k=%d gelu=%d %lldx%lldx%lldx%lld -> Co=%lld: rel err %.2e",
                        k, gelu, (long long)N, (long long)Ci, (long long)H, (long long)W, (long long)Co, ex);
            CV_CHECK_OK(ew < 1e-6, "conv2d ref dw vs finite differences, k=%d gelu=%d: rel err %.2e", k, gelu, ew);
            CV_CHECK_OK(eb < 1e-6, "conv2d ref db vs finite differences, k=%d gelu=%d: rel err %.2e", k, gelu, eb);
        }
    {
        cv_chk_rand_d(b, Co, 7, -1, 1);
        cv_chk_rand_d(g, ny, 8, -1, 1);
        memset(db, 0, Co * sizeof *db);
        cv_bias_ref_bwd(g, db, N, Co, H * W);
        bias_fd f = { b, y, g, N, Co, H * W };
        double e = cv_chk_fd_check(bias_loss, &f, b, (size_t)Co, db, 1e-4, 2000, 9);
        CV_CHECK_OK(e < 1e-6, "bias ref db vs finite differences, %lldx%lldx%lldx%lld: rel err %.2e",
                    (long long)N, (long long)Co, (long long)H, (long long)W, e);
    }
done:
    free(x); free(dx); free(w); free(dw); free(b); free(db); free(y); free(g);
}

/* One device case: shapes and options, which gradients are wanted
 * (1 dx, 2 dw, 4 db), a column budget (0: default) to force chunking, and
 * a residual input (forward y = conv + b + r, backward dr += dy). */
typedef struct conv_case {
    int64_t N, Ci, Co, H, W;
    int     k, gelu, acc, bias, grads;
    size_t  budget;
    int     res;      /* a residual input */
    int     keep;     /* the forward stores GELU(x) for the backward (xa); 2: and GELU'(x) (xd); 3: as 2,
                         then a second forward reads them (cached) while x holds NaN */
    int     set;      /* the backward writes dx and dr (=) instead of += */
} conv_case;

enum { CONV_NT = 12 };   /* x, w, b, y, dy, dx, dw, db, r, dr, xa, xd */

static void conv_dev_case(cv_check *c, cv_ctx *ctx, const conv_case *cs, cv_conv_algo algo, uint64_t seed) {
    const int64_t N = cs->N, Ci = cs->Ci, Co = cs->Co, H = cs->H, W = cs->W, K = cs->k;
    const int64_t n[CONV_NT] = { N * Ci * H * W, Co * Ci * K * K, Co, N * Co * H * W, N * Co * H * W,
                                 N * Ci * H * W, Co * Ci * K * K, Co, N * Co * H * W, N * Co * H * W, N * Ci * H * W,
                                 N * Ci * H * W };
    const int64_t shp[CONV_NT][4] = { { N, Ci, H, W }, { Co, Ci, K, K }, { 1, Co, 1, 1 }, { N, Co, H, W },
                                      { N, Co, H, W }, { N, Ci, H, W }, { Co, Ci, K, K }, { 1, Co, 1, 1 },
                                      { N, Co, H, W }, { N, Co, H, W }, { N, Ci, H, W }, { N, Ci, H, W } };
    const double lo[CONV_NT] = { -3, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };   /* ranges are [lo, -lo] */
    double *ref[CONV_NT] = { 0 };
    float *hf[CONV_NT] = { 0 };
    cv_chk_dev d[CONV_NT];
    cv_status st = CV_OK;
    double e[CONV_NT];
    char desc[192];
    memset(d, 0, sizeof d);
    for (int i = 0; i < CONV_NT; i++) e[i] = INFINITY;
    cv_conv_algo ran = cv_conv2d_algo(ctx, shp[0], Co, &(cv_conv2d_params){ cs->k, cs->gelu, cs->acc, algo }, 0);
    snprintf(desc, sizeof desc, "%s%s N=%lld Ci=%lld Co=%lld %lldx%lld k=%d gelu=%d acc=%d bias=%d%s%s%s%s",
             cv_conv_algo_name(algo), ran != algo ? " (as direct)" : "", (long long)N, (long long)Ci, (long long)Co,
             (long long)H, (long long)W, cs->k, cs->gelu, cs->acc, cs->bias, cs->budget ? " chunked" : "",
             cs->res ? " residual" : "",
             cs->keep == 3 ? " gelu-caches reused" : cs->keep == 2 ? " gelu-caches" : cs->keep ? " gelu-cache" : "",
             cs->set ? " set" : "");
    for (int i = 0; i < CONV_NT; i++) {
        ref[i] = malloc((size_t)n[i] * sizeof **ref);
        hf[i] = malloc((size_t)n[i] * sizeof **hf);
        if (!ref[i] || !hf[i]) { st = cv_error(CV_ERR_NOMEM, "test buffers"); goto fail; }
        double hi = i == 1 ? 1.0 / sqrt((double)(Ci * K * K)) : -lo[i];   /* w ~ fan-in scaled */
        cv_chk_rand(hf[i], (size_t)n[i], seed * 16 + (uint64_t)i, (float)-hi, (float)hi);
        cv_chk_f2d(hf[i], ref[i], (size_t)n[i]);
        CV_TRY(cv_chk_dev_new(ctx, &d[i], shp[i][0], shp[i][1], shp[i][2], shp[i][3], hf[i]));
    }
    cv_conv2d_params p = { cs->k, cs->gelu, cs->acc, algo };
    cv_conv2d_set_col_budget(cs->budget);
    {
        /* poison the scratch: nothing may read what it did not write */
        size_t ws = cv_conv2d_workspace(ctx, d[0].t.shape, Co, &p);
        if (ws) {
            cl_mem scr;
            float nan = NAN;
            CV_TRY(cv_ctx_scratch(ctx, ws, &scr));
            CV_TRY(CV_CL(clEnqueueFillBuffer(cv_ctx_queue(ctx), scr, &nan, sizeof nan, 0, ws / 4 * 4, 0, NULL, NULL)));
        }
    }
    {
        cv_conv2d_params pr = p;
        if (cs->res) {                                /* y = r, then y += conv */
            memcpy(ref[3], ref[8], (size_t)n[3] * sizeof **ref);
            pr.accumulate = 1;
        }
        cv_conv2d_ref_fwd(ref[0], ref[1], cs->bias ? ref[2] : NULL, ref[3], N, Ci, H, W, Co, &pr);
        if (cs->set) {
            memset(ref[5], 0, (size_t)n[5] * sizeof **ref);
            memset(ref[9], 0, (size_t)n[9] * sizeof **ref);
        }
        if (cs->res) for (int64_t i = 0; i < n[9]; i++) ref[9][i] += ref[4][i];
        if (cs->keep && cs->gelu)                     /* xa = GELU(x) after the forward */
            for (int64_t i = 0; i < n[10]; i++) ref[10][i] = 0.5 * ref[0][i] * erfc(-ref[0][i] * 0.70710678118654752440);
        if (cs->keep >= 2 && cs->gelu)                /* xd = GELU'(x) */
            for (int64_t i = 0; i < n[11]; i++)
                ref[11][i] = 0.5 * erfc(-ref[0][i] * 0.70710678118654752440) +
                             ref[0][i] * exp(-0.5 * ref[0][i] * ref[0][i]) * 0.39894228040143268;
    }
    cv_conv2d_ref_bwd(ref[0], ref[1], ref[4], cs->grads & 1 ? ref[5] : NULL, cs->grads & 2 ? ref[6] : NULL,
                      cs->grads & 4 ? ref[7] : NULL, N, Ci, H, W, Co, &p);
    /* set = 1: the backward writes dx and dr (=) as their first writer; the
     * reference then starts them from zero */
    cv_conv2d_aux aux = { cs->res ? &d[8].t : NULL, cs->res ? &d[9].t : NULL, cs->keep ? &d[10].t : NULL,
                          cs->set, cs->set, cs->keep >= 2 ? &d[11].t : NULL, 0 };
    CV_TRY(cv_conv2d_fwd_ex(ctx, &d[0].t, &d[1].t, cs->bias ? &d[2].t : NULL, &d[3].t, &p, &aux));
    const size_t xb = (size_t)n[0] * sizeof(float);
    cl_command_queue q = cv_ctx_queue(ctx);
    if (cs->keep == 3) {          /* again from the caches alone: x NaN meanwhile, restored after the backward */
        float *nan = malloc(xb);
        if (!nan) { st = cv_error(CV_ERR_NOMEM, "test buffers"); goto fail; }
        for (int64_t i = 0; i < n[0]; i++) nan[i] = NAN;
        st = CV_CL(clEnqueueWriteBuffer(q, d[0].t.buf, CL_TRUE, d[0].t.off * sizeof(float), xb, nan, 0, NULL, NULL));
        free(nan);
        if (st != CV_OK) goto fail;
        aux.cached = 1;
        CV_TRY(cv_conv2d_fwd_ex(ctx, &d[0].t, &d[1].t, cs->bias ? &d[2].t : NULL, &d[3].t, &p, &aux));
    }
    CV_TRY(cv_conv2d_bwd_ex(ctx, &d[0].t, &d[1].t, &d[4].t, cs->grads & 1 ? &d[5].t : NULL,
                            cs->grads & 2 ? &d[6].t : NULL, cs->grads & 4 ? &d[7].t : NULL, &p, &aux));
    if (cs->keep == 3)
        CV_TRY(CV_CL(clEnqueueWriteBuffer(q, d[0].t.buf, CL_TRUE, d[0].t.off * sizeof(float), xb, hf[0], 0, NULL,
                                          NULL)));
    for (int i = 0; i < CONV_NT; i++) {           /* inputs too: they must be untouched */
        CV_TRY(cv_chk_dev_get(ctx, &d[i], hf[i]));
        static const char *nm[CONV_NT] = { "x", "w", "b", "y", "dy", "dx", "dw", "db", "r", "dr", "xa", "xd" };
        e[i] = cv_chk_nmse(c, nm[i], hf[i], ref[i], (size_t)n[i], 4);
    }
fail:
    cv_conv2d_set_col_budget(0);
    if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    int guards = 1;
    for (int i = 0; i < CONV_NT; i++) {
        if (st == CV_OK && d[i].mem && !cv_chk_dev_guards_ok(c, ctx, &d[i])) guards = 0;
        cv_chk_dev_free(&d[i]);
        free(ref[i]); free(hf[i]);
    }
    const double tol = 1e-9;
    int inputs = e[0] == 0 && e[1] == 0 && e[2] == 0 && e[4] == 0 && e[8] == 0;
    CV_CHECK_OK(st == CV_OK && e[3] < tol && guards && inputs, "conv2d fwd %s: nmse %.2e, guards %s%s", desc, e[3],
                guards ? "intact" : "BROKEN", inputs ? "" : ", INPUTS CHANGED");
    CV_CHECK_OK(st == CV_OK && e[5] < tol && e[6] < tol && e[7] < tol && e[9] < tol && e[10] < tol && e[11] < tol &&
                inputs && guards,
                "conv2d bwd %s grads=%s%s%s: nmse dx %.2e dw %.2e db %.2e dr %.2e xa %.2e xd %.2e", desc,
                cs->grads & 1 ? "x" : "", cs->grads & 2 ? "w" : "", cs->grads & 4 ? "b" : "", e[5], e[6], e[7], e[9],
                e[10], e[11]);
}

static void bias_dev_case(cv_check *c, cv_ctx *ctx, int64_t N, int64_t C, int64_t H, int64_t W, uint64_t seed) {
    const int64_t ny = N * C * H * W;
    float *b = malloc(C * sizeof *b), *db = malloc(C * sizeof *db), *y = malloc(ny * sizeof *y), *dy = malloc(ny * sizeof *dy);
    double *bd = malloc(C * sizeof *bd), *dbd = malloc(C * sizeof *dbd), *yd = malloc(ny * sizeof *yd), *dyd = malloc(ny * sizeof *dyd);
    cv_chk_dev B = { 0 }, DB = { 0 }, Y = { 0 }, DY = { 0 };
    cv_status st = CV_OK;
    double e1 = INFINITY, e2 = INFINITY;
    int guards = 0;
    if (!b || !db || !y || !dy || !bd || !dbd || !yd || !dyd) { st = cv_error(CV_ERR_NOMEM, "test buffers"); goto fail; }
    cv_chk_rand(b, C, seed, -1, 1); cv_chk_rand(db, C, seed + 1, -1, 1);
    cv_chk_rand(y, ny, seed + 2, -1, 1); cv_chk_rand(dy, ny, seed + 3, -1, 1);
    cv_chk_f2d(b, bd, C); cv_chk_f2d(db, dbd, C); cv_chk_f2d(y, yd, ny); cv_chk_f2d(dy, dyd, ny);
    cv_bias_ref_fwd(bd, yd, N, C, H * W);
    cv_bias_ref_bwd(dyd, dbd, N, C, H * W);
    CV_TRY(cv_chk_dev_new(ctx, &B, 1, C, 1, 1, b));
    CV_TRY(cv_chk_dev_new(ctx, &DB, 1, C, 1, 1, db));
    CV_TRY(cv_chk_dev_new(ctx, &Y, N, C, H, W, y));
    CV_TRY(cv_chk_dev_new(ctx, &DY, N, C, H, W, dy));
    CV_TRY(cv_bias_fwd(ctx, &B.t, &Y.t));
    CV_TRY(cv_bias_bwd(ctx, &DY.t, &DB.t));
    CV_TRY(cv_chk_dev_get(ctx, &Y, y));
    CV_TRY(cv_chk_dev_get(ctx, &DB, db));
    e1 = cv_chk_nmse(c, "bias y", y, yd, ny, 4);
    e2 = cv_chk_nmse(c, "bias db", db, dbd, C, 4);
    guards = cv_chk_dev_guards_ok(c, ctx, &B) && cv_chk_dev_guards_ok(c, ctx, &DB) &&
             cv_chk_dev_guards_ok(c, ctx, &Y) && cv_chk_dev_guards_ok(c, ctx, &DY);
fail:
    if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    CV_CHECK_OK(st == CV_OK && e1 < 1e-12 && guards, "bias fwd %lldx%lldx%lldx%lld: nmse %.2e, guards %s",
                (long long)N, (long long)C, (long long)H, (long long)W, e1, guards ? "intact" : "BROKEN");
    CV_CHECK_OK(st == CV_OK && e2 < 1e-9 && guards, "bias bwd %lldx%lldx%lldx%lld (db += sum dy): nmse %.2e",
                (long long)N, (long long)C, (long long)H, (long long)W, e2);
    cv_chk_dev_free(&B); cv_chk_dev_free(&DB); cv_chk_dev_free(&Y); cv_chk_dev_free(&DY);
    free(b); free(db); free(y); free(dy); free(bd); free(dbd); free(yd); free(dyd);
}

/* Bad arguments come back as errors that say what is wrong. */
static void conv_arg_checks(cv_check *c, cv_ctx *ctx) {
    cv_tensor x = { (cl_mem)1, 0, { 2, 3, 5, 5 } }, w = { (cl_mem)1, 0, { 4, 3, 3, 3 } }, y = { (cl_mem)1, 0, { 2, 4, 5, 5 } };
    cv_conv2d_params p = { 2, 0, 0, CV_CONV_DIRECT };
    cv_status st = cv_conv2d_fwd(ctx, &x, &w, NULL, &y, &p);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "k=2"), "conv2d rejects k=2: %s", cv_last_error());
    p.k = 3;
    y.shape[1] = 5;
    st = cv_conv2d_fwd(ctx, &x, &w, NULL, &y, &p);
    CV_CHECK_OK(st == CV_ERR_SHAPE && strstr(cv_last_error(), "2x5x5x5"), "conv2d rejects Co mismatch: %s", cv_last_error());
    y.shape[1] = 4;

    /* CV_CONV_ALGO: a bad value is an error naming it; restored afterwards */
    const char *old = getenv("CV_CONV_ALGO");
    char *saved = old ? malloc(strlen(old) + 1) : NULL;
    if (saved) strcpy(saved, old);
    setenv("CV_CONV_ALGO", "fastest", 1);
    st = cv_conv2d_fwd(ctx, &x, &w, NULL, &y, &p);
    int bad_env = st == CV_ERR_ARG && strstr(cv_last_error(), "CV_CONV_ALGO='fastest'");
    CV_CHECK_OK(bad_env, "conv2d rejects CV_CONV_ALGO=fastest: %s", cv_last_error());
    setenv("CV_CONV_ALGO", "gemm", 1);
    cv_conv2d_params pa = { 3, 0, 0, CV_CONV_AUTO };
    int env_gemm = cv_conv2d_algo(ctx, x.shape, 4, &pa, 0) == CV_CONV_GEMM;
    setenv("CV_CONV_ALGO", "direct", 1);
    int env_direct = cv_conv2d_algo(ctx, x.shape, 4, &pa, 2) == CV_CONV_DIRECT;
    pa.algo = CV_CONV_GEMM;
    int explicit_wins = cv_conv2d_algo(ctx, x.shape, 4, &pa, 1) == CV_CONV_GEMM;
    if (saved) setenv("CV_CONV_ALGO", saved, 1); else unsetenv("CV_CONV_ALGO");
    free(saved);
    pa.algo = CV_CONV_AUTO;
    int resolved = 1;
    for (int op = 0; op < 3; op++) {
        cv_conv_algo a = cv_conv2d_algo(ctx, x.shape, 4, &pa, op);
        if (a != CV_CONV_DIRECT && a != CV_CONV_GEMM) resolved = 0;
    }
    CV_CHECK_OK(env_gemm && env_direct && explicit_wins && resolved,
                "conv2d algorithm choice: CV_CONV_ALGO honoured %s, explicit algo wins %s, AUTO resolves %s",
                env_gemm && env_direct ? "yes" : "NO", explicit_wins ? "yes" : "NO", resolved ? "yes" : "NO");
}

/* The device cases; caches_only: those with the GELU and GELU' caches (the
 * flat pass cvk_conv2d_gelu_both), for contexts of other flat chunks. */
static void conv_dev_cases(cv_check *c, cv_ctx *ctx, int caches_only) {
    const size_t img = 5 * 9 * 9 * 7, rows4 = 17 * 9 * 7 * 4;
    static const conv_case cases[] = {
        /*  N  Ci  Co   H   W  k gelu acc bias grads budget res keep set */
        { 1,  3,  5,  5,  7, 3, 0, 0, 1, 7, 0, 0, 0, 0 },
        { 3, 17, 33,  9,  3, 3, 1, 1, 1, 7, 0, 0, 0, 0 },
        { 3, 33, 17,  5,  7, 1, 1, 0, 1, 7, 0, 0, 0, 0 },
        { 1,  5,  3,  9,  3, 1, 0, 1, 0, 7, 0, 0, 0, 0 },
        { 1,  5,  3,  4,  9, 3, 1, 0, 1, 7, 0, 0, 0, 0 },          /* one spatial chunk: unsplit weight gradient */
        { 1,  3, 17, 13, 37, 3, 0, 1, 0, 1, 0, 0, 0, 0 },          /* several tiles across; dx only */
        { 3,  5, 17,  9,  3, 1, 0, 0, 1, 6, 0, 0, 0, 0 },          /* 1x1 plain GEMM path; no dx */
        { 3,  5,  3,  9,  7, 3, 1, 1, 1, 7, 2 * img, 0, 0, 0 },    /* columns of 2 images at a time */
        { 2, 17,  5,  9,  7, 3, 0, 0, 1, 7, rows4, 0, 0, 0 },      /* 4 rows at a time (4, 4, 1) */
        { 2, 32, 32, 16, 16, 3, 1, 0, 1, 7, 0, 0, 0, 0 },          /* VDVAE-sized 3x3 */
        { 2, 32,  8, 16, 16, 1, 1, 1, 1, 7, 0, 0, 0, 0 },          /* VDVAE bottleneck 1x1 */
        /* vector-aligned shapes (rows of 16 and 32, planes of 16k): the VEC kernels */
        { 3,  5, 17,  9, 16, 3, 1, 0, 1, 7, 0, 1, 0, 0 },          /* rows not a multiple of R; 3 channel blocks */
        { 2,  3, 10,  5, 32, 3, 1, 0, 1, 7, 0, 0, 0, 0 },          /* two vectors per row: neighbours across them */
        { 2,  7, 33,  6,  8, 1, 1, 0, 1, 7, 0, 1, 0, 0 },          /* 1x1, Co > 32: two blocks of 32 */
        { 1, 33, 12,  4,  4, 1, 0, 1, 0, 7, 0, 0, 0, 0 },          /* 1x1, Co 12 (block of 16), accumulate */
        { 2,  1,  3,  8, 16, 1, 1, 0, 1, 7, 0, 1, 0, 0 },          /* few work-items: split weight gradient */
        { 2,  1,  5,  7, 16, 3, 1, 0, 1, 6, 0, 1, 0, 0 },          /* the same for 3x3; no dx */
        { 2,  8, 32, 16, 16, 1, 1, 0, 1, 5, 0, 1, 0, 0 },          /* VDVAE 1x1 W/4 -> W with the residual; no dw */
        /* the GELU cache (xa): written by the forward, read by the backward-weight pass */
        { 2, 32,  8, 16, 16, 1, 1, 0, 1, 7, 0, 0, 1, 0 },
        { 3,  5, 17,  9, 16, 3, 1, 0, 1, 7, 0, 1, 1, 0 },
        { 2,  6,  7,  5,  7, 3, 1, 1, 1, 7, 0, 0, 1, 0 },          /* not vector-aligned: a separate GELU pass */
        { 2,  3,  4,  4,  6, 1, 0, 0, 1, 7, 0, 0, 1, 0 },          /* gelu_in = 0: no cache, xa untouched */
        /* GELU and GELU' caches (xa, xd): one flat pass in the forward, read by both backward passes */
        { 2, 32,  8, 16, 16, 1, 1, 0, 1, 7, 0, 0, 2, 0 },
        { 3,  5, 17,  9, 16, 3, 1, 0, 1, 7, 0, 1, 2, 0 },          /* 3x3, residual, 3 channel blocks */
        { 2,  6,  7,  5,  7, 3, 1, 1, 1, 7, 0, 0, 2, 0 },          /* not vector-aligned; 210 elements (tail) */
        { 2,  8, 32, 16, 16, 1, 1, 0, 1, 5, 0, 1, 2, 1 },          /* set; no dw */
        { 2, 17,  5,  9,  7, 3, 1, 0, 1, 7, rows4, 1, 2, 1 },      /* chunked GEMM col2im reads xd */
        { 2,  3,  4,  4,  6, 1, 0, 0, 1, 7, 0, 0, 2, 0 },          /* gelu_in = 0: caches untouched */
        /* caches filled by one forward, read by a second (x NaN meanwhile): training plans share them */
        { 2, 32,  8, 16, 16, 1, 1, 0, 1, 7, 0, 1, 3, 0 },
        { 3,  5, 17,  9, 16, 3, 1, 0, 1, 7, 0, 1, 3, 1 },
        { 2,  6,  7,  5,  7, 3, 1, 0, 1, 7, 0, 0, 3, 0 },          /* not vector-aligned */
        /* the backward as first writer of dx and dr (=): every algorithm, chunked GEMM included */
        { 3,  5, 17,  9, 16, 3, 1, 0, 1, 7, 0, 1, 1, 1 },
        { 2,  7, 33,  6,  8, 1, 1, 0, 1, 7, 0, 1, 0, 1 },
        { 2, 17,  5,  9,  7, 3, 1, 0, 1, 7, rows4, 1, 0, 1 },
        { 2,  8, 32, 16, 16, 1, 1, 0, 1, 5, 0, 1, 0, 1 },
    };
    /* quick (a strict simulator): per algorithm, the cases that reach its
     * code paths -- DIRECT all but the two VDVAE-sized ones (several tiles,
     * 1x1 and 3x3, GELU in the tiles or a separate pass, the caches, set
     * and accumulate, few work-items); GEMM (CLBlast)
     * 3x3 and 1x1, GELU, accumulation, columns chunked by images and by
     * rows, the GELU caches, the chunked col2im reading GELU' and set mode;
     * VEC every vector-aligned case (blocks of channels, two vectors a row,
     * Co > 32, split weight gradients, residual, the caches and set mode) */
    static const int quick_direct[] = { 0, 1, 2, 3, 4, 5, 6, 11, 13, 14, 15, 16, 20, 21, 24, 27, 29, 30, 32, 33 };
    static const int quick_gemm[] = { 0, 2, 6, 7, 8, 19, 26, 33 };
    static const int quick_vec[] = { 11, 12, 13, 14, 15, 16, 17, 19, 23, 25, 29, 31, 34 };
    for (int a = CV_CONV_DIRECT; a <= CV_CONV_VEC; a++)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            if (caches_only && cases[i].keep < 2) continue;
            if (c->quick) {
                const int *q = a == CV_CONV_DIRECT ? quick_direct : a == CV_CONV_GEMM ? quick_gemm : quick_vec;
                int nq = a == CV_CONV_DIRECT ? (int)(sizeof quick_direct / sizeof *quick_direct)
                       : a == CV_CONV_GEMM   ? (int)(sizeof quick_gemm / sizeof *quick_gemm)
                                             : (int)(sizeof quick_vec / sizeof *quick_vec), in = 0;
                for (int j = 0; j < nq; j++) in |= q[j] == (int)i;
                if (!in) continue;
            }
            conv_dev_case(c, ctx, &cases[i], (cv_conv_algo)a, 1000 + 37 * i + 7 * (size_t)a);
        }
}

void cv_conv_cache_devcheck(cv_check *c, cv_ctx *ctx) { conv_dev_cases(c, ctx, 1); }

void cv_conv_devcheck(cv_check *c, cv_ctx *ctx) {
    conv_dev_cases(c, ctx, 0);
    bias_dev_case(c, ctx, 3, 5, 9, 7, 77);
    bias_dev_case(c, ctx, 1, 33, 16, 16, 78);
    conv_arg_checks(c, ctx);
}
