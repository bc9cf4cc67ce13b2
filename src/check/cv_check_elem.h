/* cv_check_elem.h -- private helpers for the checks of the elem, vae,
 * reduce and optim families (src/check/cv_check_elem.c, cv_check_vae.c,
 * cv_check_reduce.c, cv_check_optim.c): a test buffer that keeps a float copy,
 * a double copy (what the reference sees: exactly the device's inputs) and
 * a guard-banded device tensor, and a per-case context that carries the
 * first error and the state of every guard band checked.
 *
 * Usage:
 *     cvt t; cvt_begin(&t, c, ctx);
 *     cvt_buf x = {0}, y = {0};
 *     cvt_new(&t, &x, 2, 3, 5, 7, 11, -2, 2);   (seed 0: zeros)
 *     cvt_new(&t, &y, 2, 3, 5, 7, 0, 0, 0);
 *     if (t.st == CV_OK) t.st = cv_gelu_fwd(ctx, &x.dev.t, &y.dev.t);
 *     double e = cvt_cmp(&t, &y, yref, "gelu y");
 *     CV_CHECK_OK(cvt_ok(&t) && e < 1e-10, ...);
 *     cvt_free(&x); cvt_free(&y);
 * With ctx == NULL the buffers are host-only (gradient checks). */
#ifndef CV_CHECK_ELEM_H
#define CV_CHECK_ELEM_H

#include "check/cv_check.h"

#include <math.h>
#include <string.h>

typedef struct cvt {
    cv_check *c;
    cv_ctx   *ctx;
    cv_status st;       /* first failure of the case */
    int       guards;   /* 1 while every guard band checked is intact */
    int       reported;
} cvt;

typedef struct cvt_buf {
    int64_t    shape[4];
    size_t     n;
    float     *f;       /* (n) host float copy */
    double    *d;       /* (n) the same values in double */
    cv_chk_dev dev;     /* device copy inside guard bands (ctx != NULL) */
} cvt_buf;

static inline void cvt_begin(cvt *t, cv_check *c, cv_ctx *ctx) {
    t->c = c; t->ctx = ctx; t->st = CV_OK; t->guards = 1; t->reported = 0;
}

/* Fill with uniform values in [lo, hi) from `seed` (0: zeros) and upload. */
static inline void cvt_new(cvt *t, cvt_buf *b, int64_t n, int64_t c, int64_t h, int64_t w,
                           uint64_t seed, double lo, double hi) {
    memset(b, 0, sizeof *b);
    b->shape[0] = n; b->shape[1] = c; b->shape[2] = h; b->shape[3] = w;
    b->n = (size_t)(n * c * h * w);
    if (t->st != CV_OK) return;
    b->f = calloc(b->n ? b->n : 1, sizeof *b->f);
    b->d = calloc(b->n ? b->n : 1, sizeof *b->d);
    if (!b->f || !b->d) { t->st = cv_error(CV_ERR_NOMEM, "test buffer of %zu floats", b->n); return; }
    if (seed) cv_chk_rand(b->f, b->n, seed, (float)lo, (float)hi);
    cv_chk_f2d(b->f, b->d, b->n);
    if (t->ctx) t->st = cv_chk_dev_new(t->ctx, &b->dev, n, c, h, w, b->f);
}

/* Replace the contents by v[] (rounded to float) on host and device. */
static inline void cvt_set(cvt *t, cvt_buf *b, const double *v) {
    if (t->st != CV_OK) return;
    for (size_t i = 0; i < b->n; i++) { b->f[i] = (float)v[i]; b->d[i] = b->f[i]; }
    if (t->ctx) t->st = cv_tensor_upload(t->ctx, &b->dev.t, b->f);
}

static inline void cvt_free(cvt_buf *b) {
    free(b->f); free(b->d);
    if (b->dev.mem) cv_chk_dev_free(&b->dev);
    memset(b, 0, sizeof *b);
}

/* The tensor view of b, or NULL when b was never created. */
static inline const cv_tensor *cvt_t(cvt_buf *b) { return b->dev.mem ? &b->dev.t : NULL; }

/* Check b's guard bands (records a failure in t->guards). */
static inline void cvt_guards(cvt *t, cvt_buf *b) {
    if (t->st != CV_OK || !t->ctx || !b->dev.mem) return;
    if (!cv_chk_dev_guards_ok(t->c, t->ctx, &b->dev)) t->guards = 0;
}

/* Download b into b->f, check its guards and return the NMSE against ref
 * (+inf when anything failed). */
static inline double cvt_cmp(cvt *t, cvt_buf *b, const double *ref, const char *what) {
    if (t->st != CV_OK) return INFINITY;
    t->st = cv_chk_dev_get(t->ctx, &b->dev, b->f);
    if (t->st != CV_OK) return INFINITY;
    cvt_guards(t, b);
    return cv_chk_nmse(t->c, what, b->f, ref, b->n, 5);
}

/* 1 if the case ran without error and every guard band was intact; prints
 * the error detail once. */
static inline int cvt_ok(cvt *t) {
    if (t->st != CV_OK && !t->reported) {
        cv_check_diag(t->c, "error: %s: %s", cv_strerror(t->st), cv_last_error());
        t->reported = 1;
    }
    return t->st == CV_OK && t->guards;
}

static inline const char *cvt_shape(const cvt_buf *b, char *s, size_t n) { return cv_shape_str(b->shape, s, n); }

/* A zero-filled double array of n (the caller frees); NULL on failure. */
static inline double *cvt_zeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* ---- finite differences on reference ops --------------------------------
 * A cvt_fd holds an op's inputs and outputs in double; fwd() recomputes
 * the outputs from the inputs.  The loss is L = sum_k gout[k] . out[k]
 * with random upstream gradients gout (never sum(y)).  Outputs start from
 * out0[k] (for ops that accumulate into their output) or zero. */
typedef struct cvt_fd {
    void   (*fwd)(struct cvt_fd *f);
    double  *in[4];   size_t n_in[4];
    double  *out[4];  double *gout[4]; const double *out0[4]; size_t n_out[4];
    int64_t  d[8];    /* op dimensions */
    double   p[4];    /* op scalars */
    uint64_t u[2];    /* seed, stream */
} cvt_fd;

static inline double cvt_fd_loss(void *user) {
    cvt_fd *f = user;
    double L = 0;
    for (int k = 0; k < 4; k++)
        if (f->out[k]) {
            if (f->out0[k]) memcpy(f->out[k], f->out0[k], f->n_out[k] * sizeof(double));
            else memset(f->out[k], 0, f->n_out[k] * sizeof(double));
        }
    f->fwd(f);
    for (int k = 0; k < 4; k++)
        if (f->out[k]) for (size_t i = 0; i < f->n_out[k]; i++) L += f->gout[k][i] * f->out[k][i];
    return L;
}

/* Relative error of grad against central differences of L in input k. */
static inline double cvt_fd_err(cvt_fd *f, int k, const double *grad, double eps, uint64_t seed) {
    return cv_chk_fd_check(cvt_fd_loss, f, f->in[k], f->n_in[k], grad, eps, 2000, seed);
}

#endif
