/* cv_optim.c -- RMSprop and Adam with PyTorch semantics (torch.optim.RMSprop
 * centered=False, torch.optim.Adam with L2 weight decay), as flat kernels
 * over a parameter arena chunk (cl/optim.cl), their plain-C references; their checks are in
 * src/check/cv_check_optim.c (run by tests/test-optim.c).
 * Invariant: clipping and skipping are decided on the device from the
 * squared global gradient norm in a device scalar (cv_sumsq_fwd), so a
 * step never waits for the host; a skipped step changes nothing but the
 * optional flag stat[1], which is the decision the EMA and the host use.
 * The skip compares two floats the host knows (the squared norm and the
 * squared threshold), so cv_optim_decide_ref reproduces it exactly. */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"

#include <float.h>
#include <math.h>
#include <string.h>

cv_rmsprop_opts cv_rmsprop_opts_default(void) {
    cv_rmsprop_opts o = { 2e-5f, 0.99f, 1e-8f, 1e-4f, 0.9f };
    return o;
}

cv_adam_opts cv_adam_opts_default(void) {
    cv_adam_opts o = { 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f };
    return o;
}

/* ---- references ------------------------------------------------------------- */

float cv_optim_skip2(float skip) {
    if (!(skip > 0)) return 0.0f;
    float s2 = (float)((double)skip * (double)skip);
    return s2 > 0 ? s2 : FLT_TRUE_MIN;
}

int cv_optim_decide_ref(float norm2, float clip, float skip, double *scale) {
    float skip2 = cv_optim_skip2(skip);
    *scale = 1.0;
    if (!isfinite(norm2) || (skip2 > 0 && norm2 > skip2)) return 1;
    /* the kernel's clipping test is in float: gnorm = sqrt(norm2) there */
    float gnorm = sqrtf(norm2);
    if (clip > 0 && gnorm > clip) *scale = (double)clip / sqrt((double)norm2);
    return 0;
}

void cv_rmsprop_ref(double *p /* (n) */, const double *g /* (n) */, double *v /* (n) */,
                    double *buf /* (n), unused when momentum = 0 */, int64_t n, const cv_rmsprop_opts *o, double scale) {
    for (int64_t i = 0; i < n; i++) {
        double gi = scale * g[i] + (double)o->weight_decay * p[i];
        v[i] = (double)o->alpha * v[i] + (1.0 - (double)o->alpha) * gi * gi;
        double u = gi / (sqrt(v[i]) + (double)o->eps);
        if (o->momentum > 0) {
            buf[i] = (double)o->momentum * buf[i] + u;
            p[i] -= (double)o->lr * buf[i];
        } else {
            p[i] -= (double)o->lr * u;
        }
    }
}

void cv_adam_ref(double *p /* (n) */, const double *g /* (n) */, double *m /* (n) */, double *v /* (n) */, int64_t n,
                 const cv_adam_opts *o, int64_t t, double scale) {
    double b1 = o->beta1, b2 = o->beta2;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        double gi = scale * g[i] + (double)o->weight_decay * p[i];
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        p[i] -= (double)o->lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + (double)o->eps);
    }
}

/* ---- device ------------------------------------------------------------------- */

static cv_status flat_check(const char *op, const cv_tensor *p, const char *name, const cv_tensor *t) {
    char sa[80], sb[80];
    if (cv_tensor_numel(t) == cv_tensor_numel(p)) return CV_OK;
    return cv_error(CV_ERR_SHAPE, "%s: p is %s but %s is %s (equal element counts needed)", op,
                    cv_shape_str(p->shape, sa, sizeof sa), name, cv_shape_str(t->shape, sb, sizeof sb));
}

static cv_status stat_check(const char *op, const cv_tensor *stat) {
    char sa[80];
    if (cv_op_has(stat) && cv_tensor_numel(stat) >= 1) return CV_OK;
    return cv_error(CV_ERR_SHAPE, "%s: stat is %s, needs at least one element (the squared gradient norm)", op,
                    stat ? cv_shape_str(stat->shape, sa, sizeof sa) : "NULL");
}

cv_status cv_rmsprop_step(cv_ctx *ctx, const cv_tensor *p, const cv_tensor *g, const cv_tensor *v,
                          const cv_tensor *buf, const cv_rmsprop_opts *o, const cv_tensor *stat, float clip, float skip) {
    int mom = o->momentum > 0;
    cv_status st = flat_check("rmsprop", p, "g", g);
    if (st == CV_OK) st = flat_check("rmsprop", p, "v", v);
    if (st == CV_OK && mom) {
        if (!cv_op_has(buf)) st = cv_error(CV_ERR_ARG, "rmsprop: momentum %g needs a momentum buffer", (double)o->momentum);
        else st = flat_check("rmsprop", p, "buf", buf);
    }
    if (st == CV_OK) st = stat_check("rmsprop", stat);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(p);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_rmsprop");
    cv_karg_mem(&ka, p->buf); cv_karg_u64(&ka, p->off);
    cv_karg_mem(&ka, g->buf); cv_karg_u64(&ka, g->off);
    cv_karg_mem(&ka, v->buf); cv_karg_u64(&ka, v->off);
    cv_karg_mem(&ka, mom ? buf->buf : NULL); cv_karg_u64(&ka, mom ? buf->off : 0);
    cv_karg_f32(&ka, o->lr); cv_karg_f32(&ka, o->alpha); cv_karg_f32(&ka, o->eps);
    cv_karg_f32(&ka, o->weight_decay); cv_karg_f32(&ka, mom ? o->momentum : 0.0f);
    cv_karg_mem(&ka, stat->buf); cv_karg_u64(&ka, stat->off);
    cv_karg_f32(&ka, clip); cv_karg_f32(&ka, cv_optim_skip2(skip));
    cv_karg_i32(&ka, cv_tensor_numel(stat) >= 2 ? 2 : 1);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_adam_step(cv_ctx *ctx, const cv_tensor *p, const cv_tensor *g, const cv_tensor *m, const cv_tensor *v,
                       const cv_adam_opts *o, int64_t t, const cv_tensor *stat, float clip, float skip) {
    if (t < 1) return cv_error(CV_ERR_ARG, "adam: step t = %lld, must be >= 1 (bias correction)", (long long)t);
    cv_status st = flat_check("adam", p, "g", g);
    if (st == CV_OK) st = flat_check("adam", p, "m", m);
    if (st == CV_OK) st = flat_check("adam", p, "v", v);
    if (st == CV_OK) st = stat_check("adam", stat);
    if (st != CV_OK) return st;
    double bc1 = 1.0 - pow((double)o->beta1, (double)t), bc2 = 1.0 - pow((double)o->beta2, (double)t);
    int64_t n = cv_tensor_numel(p);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_adam");
    cv_karg_mem(&ka, p->buf); cv_karg_u64(&ka, p->off);
    cv_karg_mem(&ka, g->buf); cv_karg_u64(&ka, g->off);
    cv_karg_mem(&ka, m->buf); cv_karg_u64(&ka, m->off);
    cv_karg_mem(&ka, v->buf); cv_karg_u64(&ka, v->off);
    cv_karg_f32(&ka, (float)((double)o->lr / bc1)); cv_karg_f32(&ka, (float)(1.0 / sqrt(bc2)));
    cv_karg_f32(&ka, o->beta1); cv_karg_f32(&ka, o->beta2); cv_karg_f32(&ka, o->eps);
    cv_karg_f32(&ka, o->weight_decay);
    cv_karg_mem(&ka, stat->buf); cv_karg_u64(&ka, stat->off);
    cv_karg_f32(&ka, clip); cv_karg_f32(&ka, cv_optim_skip2(skip));
    cv_karg_i32(&ka, cv_tensor_numel(stat) >= 2 ? 2 : 1);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

