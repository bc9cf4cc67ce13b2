/* cv_check.c -- op-check helpers shared by the tests and `cosmovae-info
 * --self-test` (see cv_check.h).  Invariant: nothing here exits; results
 * are tallied in the cv_check and the caller decides. */
#include "check/cv_check.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

void cv_check_ok(cv_check *c, int cond, const char *fmt, ...) {
    va_list ap;
    c->n++;
    if (!cond) c->n_fail++;
    fprintf(c->out, "%s %d - ", cond ? "ok" : "not ok", c->n);
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fprintf(c->out, "\n");
    fflush(c->out);
}

void cv_check_diag(cv_check *c, const char *fmt, ...) {
    va_list ap;
    fprintf(c->out, "# ");
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fprintf(c->out, "\n");
    fflush(c->out);
}

/* ---- the op families (add a row with src/check/cv_check_<family>.c) ---- */
#define CV_FAMILY(name) { #name, cv_##name##_gradcheck, cv_##name##_devcheck },
const cv_check_family cv_check_families[] = {
#include "check/cv_check_families.h"
    { NULL, NULL, NULL }
};
#undef CV_FAMILY
const int cv_check_n_families = (int)(sizeof cv_check_families / sizeof cv_check_families[0]) - 1;

static uint64_t xs(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

void cv_chk_rand_d(double *x, size_t n, uint64_t seed, double lo, double hi) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
    if (!s) s = 1;
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * ((double)(xs(&s) >> 11) / 9007199254740992.0);
}

void cv_chk_rand(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
    if (!s) s = 1;
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * ((double)(xs(&s) >> 11) / 9007199254740992.0));
}

void cv_chk_f2d(const float *x, double *y, size_t n)  { for (size_t i = 0; i < n; i++) y[i] = x[i]; }
void cv_chk_d2f(const double *x, float *y, size_t n)  { for (size_t i = 0; i < n; i++) y[i] = (float)x[i]; }

double cv_chk_nmse(cv_check *c, const char *what, const float *got, const double *ref, size_t n, int show) {
    double num = 0, den = 0, amax = 0;
    int shown = 0, bad = 0;
    for (size_t i = 0; i < n; i++) if (isfinite(ref[i]) && fabs(ref[i]) > amax) amax = fabs(ref[i]);
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        if (isfinite(g) != isfinite(r) || (isnan(g) != isnan(r))) {
            bad = 1;
            if (shown++ < show) cv_check_diag(c, "%s[%zu]: got %.9g, expected %.9g", what, i, g, r);
            continue;
        }
        if (!isfinite(r)) continue;
        num += (g - r) * (g - r);
        den += r * r;
        if (fabs(g - r) > 1e-3 * (amax + 1e-30) && shown++ < show)
            cv_check_diag(c, "%s[%zu]: got %.9g, expected %.9g", what, i, g, r);
    }
    if (bad) return INFINITY;
    return den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
}

double cv_chk_nmse_d(const double *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(ref[i])) return INFINITY;
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return den > 0 ? num / den : (num > 0 ? INFINITY : 0.0);
}

double cv_chk_relerr(const double *a, const double *b, size_t n) {
    double num = 0, den = 1e-300;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = fabs(a[i] - b[i]);
        if (d > num) num = d;
        if (fabs(a[i]) + fabs(b[i]) > den) den = fabs(a[i]) + fabs(b[i]);
    }
    return num / den;
}

static const uint32_t guard_bits = 0x7fc0deadu;

cv_status cv_chk_dev_new(cv_ctx *ctx, cv_chk_dev *d, int64_t n, int64_t c, int64_t h, int64_t w, const float *init) {
    cv_status st;
    memset(d, 0, sizeof *d);
    d->n = (size_t)(n * c * h * w);
    size_t tot = d->n + 2 * CV_CHK_GUARD;
    float *host = malloc(tot * sizeof *host);
    if (!host) return cv_error(CV_ERR_NOMEM, "test buffer");
    float g;
    memcpy(&g, &guard_bits, sizeof g);
    for (size_t i = 0; i < tot; i++) host[i] = g;
    if (init) memcpy(host + CV_CHK_GUARD, init, d->n * sizeof *host);
    else memset(host + CV_CHK_GUARD, 0, d->n * sizeof *host);
    st = cv_ctx_alloc(ctx, "test tensor", tot * sizeof(float), 0, &d->mem);
    if (st == CV_OK)
        st = CV_CL(clEnqueueWriteBuffer(cv_ctx_queue(ctx), d->mem, CL_TRUE, 0, tot * sizeof(float), host, 0, NULL, NULL));
    free(host);
    d->t.buf = d->mem;
    d->t.off = CV_CHK_GUARD;
    d->t.shape[0] = n; d->t.shape[1] = c; d->t.shape[2] = h; d->t.shape[3] = w;
    return st;
}

cv_status cv_chk_dev_get(cv_ctx *ctx, const cv_chk_dev *d, float *host) {
    return cv_tensor_download(ctx, &d->t, host);
}

int cv_chk_dev_guards_ok(cv_check *c, cv_ctx *ctx, const cv_chk_dev *d) {
    uint32_t band[CV_CHK_GUARD];
    for (int side = 0; side < 2; side++) {
        size_t off = side ? (CV_CHK_GUARD + d->n) * sizeof(float) : 0;
        if (clEnqueueReadBuffer(cv_ctx_queue(ctx), d->mem, CL_TRUE, off, sizeof band, band, 0, NULL, NULL) != CL_SUCCESS)
            return 0;
        for (int i = 0; i < CV_CHK_GUARD; i++)
            if (band[i] != guard_bits) {
                cv_check_diag(c, "guard band %s: element %d overwritten (0x%08x)", side ? "after" : "before", i, band[i]);
                return 0;
            }
    }
    return 1;
}

void cv_chk_dev_free(cv_chk_dev *d) {
    if (d->mem) clReleaseMemObject(d->mem);
    memset(d, 0, sizeof *d);
}

double cv_chk_fd_check(double (*loss)(void *user), void *user, double *p, size_t n,
                    const double *grad, double eps, size_t nmax, uint64_t seed) {
    double num = 0, den = 1e-300;
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 77;
    if (!s) s = 1;
    size_t count = n <= nmax ? n : nmax;
    for (size_t k = 0; k < count; k++) {
        size_t i = n <= nmax ? k : (size_t)(xs(&s) % n);
        double p0 = p[i];
        p[i] = p0 + eps;     double lp = loss(user);
        p[i] = p0 - eps;     double lm = loss(user);
        p[i] = p0 + 2 * eps; double lp2 = loss(user);
        p[i] = p0 - 2 * eps; double lm2 = loss(user);
        p[i] = p0;
        double d2 = (lp - lm) / (2 * eps);
        double d4 = (8 * (lp - lm) - (lp2 - lm2)) / (12 * eps);
        /* a kink (relu, abs, floor clamp) within 2 eps: the stencils disagree */
        if (fabs(d2 - d4) > 1e-3 * (fabs(d2) + fabs(d4) + 1e-8)) continue;
        double d = fabs(d4 - grad[i]);
        if (d > num) num = d;
        if (fabs(d4) + fabs(grad[i]) > den) den = fabs(d4) + fabs(grad[i]);
    }
    return num / den;
}
