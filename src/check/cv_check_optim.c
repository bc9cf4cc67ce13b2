/* cv_check_optim.c -- the optim family checks: references against closed forms, device steps against the C loop
 * (moved out of the library: linked only by the tests and
 * `cosmovae-info --self-test`, through src/check/libcvcheck.a). */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"
#include "check/cv_check_elem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- checks: references against closed forms ------------------------------------ */

void cv_optim_gradcheck(cv_check *c) {
    enum { n = 9 };
    double g[n], p[n], p0[n], v[n], m[n], buf[n];
    cv_chk_rand_d(g, n, 1, -3, 3);
    cv_chk_rand_d(p0, n, 2, -1, 1);

    /* Adam, first step, wd 0: m/bc1 = g, v/bc2 = g^2, so dp = -lr g / (|g| + eps) */
    cv_adam_opts ao = cv_adam_opts_default();
    memcpy(p, p0, sizeof p); memset(m, 0, sizeof m); memset(v, 0, sizeof v);
    cv_adam_ref(p, g, m, v, n, &ao, 1, 1.0);
    double e = 0;
    for (int i = 0; i < n; i++) e = fmax(e, fabs((p[i] - p0[i]) + ao.lr * g[i] / (fabs(g[i]) + ao.eps)));
    CV_CHECK_OK(e < 1e-12, "adam ref, step 1: dp = -lr g / (|g| + eps) (max dev %.1e)", e);

    /* Adam, second step with the same gradient and wd: closed form */
    ao.weight_decay = 0.1f;
    memcpy(p, p0, sizeof p); memset(m, 0, sizeof m); memset(v, 0, sizeof v);
    cv_adam_ref(p, g, m, v, n, &ao, 1, 0.5);
    double e2 = 0;
    {
        double q[n], mm[n], vv[n];
        memcpy(q, p, sizeof q); memcpy(mm, m, sizeof mm); memcpy(vv, v, sizeof vv);
        cv_adam_ref(p, g, m, v, n, &ao, 2, 0.5);
        double b1 = ao.beta1, b2 = ao.beta2, wd = ao.weight_decay;
        for (int i = 0; i < n; i++) {
            double gi = 0.5 * g[i] + wd * q[i];
            double mi = b1 * mm[i] + (1 - b1) * gi, vi = b2 * vv[i] + (1 - b2) * gi * gi;
            double want = q[i] - ao.lr * (mi / (1 - b1 * b1)) / (sqrt(vi / (1 - b2 * b2)) + ao.eps);
            e2 = fmax(e2, fabs(p[i] - want));
        }
    }
    CV_CHECK_OK(e2 < 1e-15, "adam ref, step 2 with scale 0.5 and wd 0.1: bias-corrected closed form (max dev %.1e)", e2);

    /* RMSprop, momentum 0, first step: v = (1-a) g^2, dp = -lr g / (sqrt(1-a) |g| + eps) */
    cv_rmsprop_opts ro = cv_rmsprop_opts_default();
    ro.momentum = 0; ro.weight_decay = 0;
    memcpy(p, p0, sizeof p); memset(v, 0, sizeof v);
    cv_rmsprop_ref(p, g, v, NULL, n, &ro, 1.0);
    double e3 = 0;
    for (int i = 0; i < n; i++)
        e3 = fmax(e3, fabs((p[i] - p0[i]) + ro.lr * g[i] / (sqrt(1 - (double)ro.alpha) * fabs(g[i]) + ro.eps)));
    CV_CHECK_OK(e3 < 1e-15, "rmsprop ref, momentum 0, step 1: closed form (max dev %.1e)", e3);

    /* RMSprop with momentum: two steps, buf = m u1 + u2 */
    ro = cv_rmsprop_opts_default();
    ro.lr = 0.01f;
    memcpy(p, p0, sizeof p); memset(v, 0, sizeof v); memset(buf, 0, sizeof buf);
    cv_rmsprop_ref(p, g, v, buf, n, &ro, 1.0);
    double q[n], u1[n];
    for (int i = 0; i < n; i++) u1[i] = buf[i];
    memcpy(q, p, sizeof q);
    double vv[n];
    memcpy(vv, v, sizeof vv);
    cv_rmsprop_ref(p, g, v, buf, n, &ro, 1.0);
    double e4 = 0;
    for (int i = 0; i < n; i++) {
        double gi = g[i] + (double)ro.weight_decay * q[i];
        double vi = (double)ro.alpha * vv[i] + (1 - (double)ro.alpha) * gi * gi;
        double b = (double)ro.momentum * u1[i] + gi / (sqrt(vi) + (double)ro.eps);
        e4 = fmax(e4, fabs(p[i] - (q[i] - (double)ro.lr * b)));
    }
    CV_CHECK_OK(e4 < 1e-15, "rmsprop ref, momentum 0.9, wd: step 2 closed form (max dev %.1e)", e4);

    cv_rmsprop_opts d = cv_rmsprop_opts_default();
    cv_adam_opts a = cv_adam_opts_default();
    CV_CHECK_OK(d.lr == 2e-5f && d.alpha == 0.99f && d.eps == 1e-8f && d.weight_decay == 1e-4f && d.momentum == 0.9f
                && a.lr == 1e-3f && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f && a.weight_decay == 0.0f,
                "optimizer defaults: RMSprop as the paper (lr 2e-5, momentum 0.9, wd 1e-4), Adam as PyTorch");
}

/* ---- checks: device steps against the C loop ------------------------------------- */

#define TOL_OPT 1e-10

static const char *okstr(int ok) { return ok ? "" : " (FAILED)"; }

/* kind 0 RMSprop, 1 Adam.  K steps with a fresh gradient each step; stat
 * from cv_sumsq_fwd of the gradient (the training pipeline).  clip_frac > 0
 * clips at that fraction of each step's norm.  Compares p and the state. */
static void dev_steps(cv_check *c, cv_ctx *ctx, int kind, int64_t n, int K, float mom, float wd, float clip_frac,
                      const char *what) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf p, g, s1, s2, stat;
    cvt_new(&t, &p, 1, 1, 1, n, 201, -1, 1);
    cvt_new(&t, &g, 1, 1, 1, n, 0, 0, 0);
    cvt_new(&t, &s1, 1, 1, 1, n, 0, 0, 0);                   /* v (RMSprop) or m (Adam) */
    cvt_new(&t, &s2, 1, 1, 1, n, 0, 0, 0);                   /* buf (RMSprop) or v (Adam) */
    cvt_new(&t, &stat, 1, 1, 1, 2, 0, 0, 0);
    double *pr = cvt_zeros((size_t)n), *r1 = cvt_zeros((size_t)n), *r2 = cvt_zeros((size_t)n), *gd = cvt_zeros((size_t)n);
    if (t.st == CV_OK && (!pr || !r1 || !r2 || !gd)) t.st = cv_error(CV_ERR_NOMEM, "optimizer check");
    if (t.st == CV_OK) memcpy(pr, p.d, (size_t)n * sizeof *pr);
    cv_rmsprop_opts ro = cv_rmsprop_opts_default();
    ro.lr = 1e-2f; ro.momentum = mom; ro.weight_decay = wd;
    cv_adam_opts ao = cv_adam_opts_default();
    ao.lr = 1e-2f; ao.weight_decay = wd;
    cv_tensor st1 = stat.dev.t;
    st1.shape[3] = 1;
    double worst_scale = 1;
    for (int k = 1; k <= K && t.st == CV_OK; k++) {
        cv_chk_rand_d(gd, (size_t)n, 300 + (uint64_t)k, -1, 1);
        gd[k % n] *= 50;                                      /* an outlier that Adam/RMSprop normalise */
        cvt_set(&t, &g, gd);
        if (t.st == CV_OK) t.st = cv_sumsq_fwd(ctx, &g.dev.t, &st1, 0);
        float st0 = 0;
        if (t.st == CV_OK) t.st = cv_tensor_download(ctx, &st1, &st0);    /* the test's own round trip */
        double gn = sqrt((double)st0), clip = clip_frac > 0 ? clip_frac * gn : 0, scale = 1.0;
        if (cv_optim_decide_ref(st0, (float)clip, 0.0f, &scale)) t.st = cv_error(CV_ERR_NUMERIC, "optimizer check: the reference skips");
        if (scale < worst_scale) worst_scale = scale;
        if (kind == 0) {
            cv_rmsprop_ref(pr, g.d, r1, r2, n, &ro, scale);
            if (t.st == CV_OK)
                t.st = cv_rmsprop_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, mom > 0 ? &s2.dev.t : NULL, &ro, &stat.dev.t,
                                       (float)clip, 0.0f);
        } else {
            cv_adam_ref(pr, g.d, r1, r2, n, &ao, k, scale);
            if (t.st == CV_OK)
                t.st = cv_adam_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ao, k, &stat.dev.t, (float)clip, 0.0f);
        }
    }
    double e1 = cvt_cmp(&t, &p, pr, "p"), e2 = cvt_cmp(&t, &s1, r1, kind ? "m" : "v");
    double e3 = (kind == 1 || mom > 0) ? cvt_cmp(&t, &s2, r2, kind ? "v" : "buf") : 0;
    double flag = -1;
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &stat.dev, stat.f);
    if (t.st == CV_OK) flag = stat.f[1];
    cvt_guards(&t, &stat);
    cvt_guards(&t, &g);
    int ok = cvt_ok(&t);
    CV_CHECK_OK(ok && e1 < TOL_OPT && e2 < TOL_OPT && e3 < TOL_OPT && flag == 0.0,
                "%s n=%lld, %d steps%s: nmse p %.2e, %s %.2e, %s %.2e, skip flag %g%s", what, (long long)n, K,
                clip_frac > 0 ? " (clipped)" : "", e1, kind ? "m" : "v", e2, kind ? "v" : "buf", e3, flag, okstr(ok));
    if (clip_frac > 0) CV_CHECK_OK(worst_scale < 0.9, "%s: clipping was active (scale %.3f)", what, worst_scale);
    free(pr); free(r1); free(r2); free(gd);
    cvt_free(&p); cvt_free(&g); cvt_free(&s1); cvt_free(&s2); cvt_free(&stat);
}

/* A skipped step (non-finite norm, or norm above `skip`) leaves p and the
 * state bit-identical and sets stat[1] = 1; the next good step clears it. */
static void dev_skip(cv_check *c, cv_ctx *ctx, int kind, float bad_norm2, const char *why) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf p, g, s1, s2, stat;
    const int64_t n = 1001;
    cvt_new(&t, &p, 1, 1, 1, n, 211, -1, 1);
    cvt_new(&t, &g, 1, 1, 1, n, 212, -1, 1);
    cvt_new(&t, &s1, 1, 1, 1, n, 213, 0, 1);
    cvt_new(&t, &s2, 1, 1, 1, n, 214, 0, 1);
    cvt_new(&t, &stat, 1, 1, 1, 2, 0, 0, 0);
    double sv[2] = { bad_norm2, 0 };
    cvt_set(&t, &stat, sv);
    cv_rmsprop_opts ro = cv_rmsprop_opts_default();
    cv_adam_opts ao = cv_adam_opts_default();
    const float skip = 10.0f;
    if (t.st == CV_OK)
        t.st = kind == 0 ? cv_rmsprop_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ro, &stat.dev.t, 1.0f, skip)
                         : cv_adam_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ao, 3, &stat.dev.t, 1.0f, skip);
    float *before[3] = { p.f, s1.f, s2.f };
    cvt_buf *bufs[3] = { &p, &s1, &s2 };
    int same = t.st == CV_OK;
    for (int k = 0; k < 3 && t.st == CV_OK; k++) {
        float *now = malloc((size_t)n * sizeof *now);
        if (!now) { t.st = cv_error(CV_ERR_NOMEM, "skip check"); break; }
        t.st = cv_chk_dev_get(ctx, &bufs[k]->dev, now);
        if (t.st == CV_OK && memcmp(now, before[k], (size_t)n * sizeof *now)) same = 0;
        cvt_guards(&t, bufs[k]);
        free(now);
    }
    float fl[2] = { 0, 0 };
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &stat.dev, fl);
    float flag_skipped = fl[1];
    /* a good step now: norm 1 */
    sv[0] = 1.0;
    cvt_set(&t, &stat, sv);
    if (t.st == CV_OK)
        t.st = kind == 0 ? cv_rmsprop_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ro, &stat.dev.t, 1.0f, skip)
                         : cv_adam_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ao, 3, &stat.dev.t, 1.0f, skip);
    float *now = malloc((size_t)n * sizeof *now);
    int moved = 0;
    if (t.st == CV_OK && !now) t.st = cv_error(CV_ERR_NOMEM, "skip check");
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &p.dev, now);
    if (t.st == CV_OK) moved = memcmp(now, p.f, (size_t)n * sizeof *now) != 0;
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &stat.dev, fl);
    free(now);
    cvt_guards(&t, &stat); cvt_guards(&t, &g);
    int ok = cvt_ok(&t);
    double scale;
    int ref_skip = cv_optim_decide_ref(bad_norm2, 1.0f, skip, &scale), ref_next = cv_optim_decide_ref(1.0f, 1.0f, skip, &scale);
    CV_CHECK_OK(ok && same && flag_skipped == 1.0f && moved && fl[1] == 0.0f && ref_skip == 1 && ref_next == 0,
                "%s step skipped when %s: p and state unchanged %s, flag %g; next step moves p %s, flag %g; "
                "the reference decides %d then %d%s",
                kind ? "adam" : "rmsprop", why, same ? "yes" : "NO", flag_skipped, moved ? "yes" : "NO", fl[1], ref_skip,
                ref_next, okstr(ok));
    cvt_free(&p); cvt_free(&g); cvt_free(&s1); cvt_free(&s2); cvt_free(&stat);
}

/* A squared norm at the threshold, or one float step either side of it:
 * the device's flag, what it did to p, and cv_optim_decide_ref agree. */
static void dev_edge(cv_check *c, cv_ctx *ctx, int kind, float skip, int side) {
    cvt t; cvt_begin(&t, c, ctx);
    cvt_buf p, g, s1, s2, stat;
    const int64_t n = 777;
    float skip2 = cv_optim_skip2(skip);
    float norm2 = side < 0 ? nextafterf(skip2, 0.0f) : side > 0 ? nextafterf(skip2, INFINITY) : skip2;
    cvt_new(&t, &p, 1, 1, 1, n, 221, -1, 1);
    cvt_new(&t, &g, 1, 1, 1, n, 222, -1, 1);
    cvt_new(&t, &s1, 1, 1, 1, n, 223, 0, 1);
    cvt_new(&t, &s2, 1, 1, 1, n, 224, 0, 1);
    cvt_new(&t, &stat, 1, 1, 1, 2, 0, 0, 0);
    double sv[2] = { norm2, 0.5 };
    cvt_set(&t, &stat, sv);
    cv_rmsprop_opts ro = cv_rmsprop_opts_default();
    cv_adam_opts ao = cv_adam_opts_default();
    ro.lr = ao.lr = 1e-2f;
    if (t.st == CV_OK)
        t.st = kind == 0 ? cv_rmsprop_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ro, &stat.dev.t, 0.0f, skip)
                         : cv_adam_step(ctx, &p.dev.t, &g.dev.t, &s1.dev.t, &s2.dev.t, &ao, 2, &stat.dev.t, 0.0f, skip);
    float *now = malloc((size_t)n * sizeof *now), fl[2] = { -1, -1 };
    int moved = -1;
    if (t.st == CV_OK && !now) t.st = cv_error(CV_ERR_NOMEM, "skip check");
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &p.dev, now);
    if (t.st == CV_OK) moved = memcmp(now, p.f, (size_t)n * sizeof *now) != 0;
    if (t.st == CV_OK) t.st = cv_chk_dev_get(ctx, &stat.dev, fl);
    free(now);
    cvt_guards(&t, &stat); cvt_guards(&t, &p);
    int ok = cvt_ok(&t);
    double scale;
    int want = cv_optim_decide_ref(norm2, 0.0f, skip, &scale);
    CV_CHECK_OK(ok && want == (side > 0) && fl[1] == (float)want && moved == !want,
                "%s, squared norm %a %s the squared threshold %a (skip %g): reference %s, device flag %g, p %s%s",
                kind ? "adam" : "rmsprop", (double)norm2, side < 0 ? "just below" : side > 0 ? "just above" : "equal to",
                (double)skip2, (double)skip, want ? "skips" : "steps", fl[1], moved ? "moved" : "unchanged", okstr(ok));
    cvt_free(&p); cvt_free(&g); cvt_free(&s1); cvt_free(&s2); cvt_free(&stat);
}

void cv_optim_devcheck(cv_check *c, cv_ctx *ctx) {
    dev_steps(c, ctx, 0, 3001, 5, 0.9f, 1e-4f, 0, "rmsprop momentum 0.9 wd 1e-4");
    dev_steps(c, ctx, 0, 257, 4, 0.0f, 0.0f, 0, "rmsprop momentum 0 (no buffer)");
    dev_steps(c, ctx, 0, 1000, 4, 0.9f, 1e-4f, 0.3f, "rmsprop clip");
    dev_steps(c, ctx, 1, 3001, 6, 0, 0.01f, 0, "adam wd 0.01 (bias correction)");
    dev_steps(c, ctx, 1, 33, 3, 0, 0.0f, 0.5f, "adam clip");
    dev_skip(c, ctx, 0, NAN, "the norm is NaN");
    dev_skip(c, ctx, 0, 400.0f, "the norm 20 > skip 10");
    dev_skip(c, ctx, 1, INFINITY, "the norm is infinite");
    dev_skip(c, ctx, 1, 400.0f, "the norm 20 > skip 10");
    for (int side = -1; side <= 1; side++) {
        dev_edge(c, ctx, 0, 10.0f, side);
        dev_edge(c, ctx, 1, 0.1f, side);          /* 0.1f^2 is not a float: rounded once, on the host */
        dev_edge(c, ctx, 0, 3.3e4f, side);
    }
}
