/* cv_check.h -- op checks shared by `make check` and `cosmovae-info
 * --self-test`: TAP-style reporting, deterministic fills, NMSE comparisons,
 * guard-banded device buffers, central finite differences, and the table
 * of op families whose device ops are checked against their references.
 *
 * Comparisons: NMSE = sum (a-b)^2 / sum a^2 (ggml's), with NaN/Inf
 * equality; the first mismatches are printed with their index.
 * Guard bands: cv_chk_dev tensors sit between two 256-float bands filled with
 * a NaN pattern; cv_chk_dev_guards_ok() says whether a kernel wrote outside. */
#ifndef CV_CHECK_H
#define CV_CHECK_H

#include "runtime/cv_tensor.h"

/* A running tally; lines go to `out` as TAP ("ok 3 - conv2d fwd ..."). */
typedef struct cv_check {
    FILE *out;
    int   n, n_fail;
    int   quick;   /* 1: the subset for a strict simulator (Oclgrind, tests/oclgrind.sh): every
                      kernel and code path a tuning row can select, once, on small sizes; the
                      families say what they leave out */
} cv_check;

void cv_check_ok(cv_check *c, int cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void cv_check_diag(cv_check *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Shorthand used by the family check functions (need a `cv_check *c`). */
#define CV_CHECK_OK(...)   cv_check_ok(c, __VA_ARGS__)
#define CV_CHECK_DIAG(...) cv_check_diag(c, __VA_ARGS__)

/* One row per op family: `grad` checks every reference backward against
 * finite differences (no device); `dev` checks every device op, forward
 * and backward, against its reference on awkward shapes, inside guard
 * bands.  Each reports one line per case.  Defined in
 * src/check/cv_check_<family>.c; the table is in cv_check.c. */
typedef struct cv_check_family {
    const char *name;
    void (*grad)(cv_check *c);
    void (*dev)(cv_check *c, cv_ctx *ctx);
} cv_check_family;

#define CV_FAMILY(name) void cv_##name##_gradcheck(cv_check *c); void cv_##name##_devcheck(cv_check *c, cv_ctx *ctx);
#include "check/cv_check_families.h"
#undef CV_FAMILY

/* The conv cases whose forward takes GELU and GELU' in a flat pass, for
 * contexts built with other flat chunks (tests/test-tune). */
void cv_conv_cache_devcheck(cv_check *c, cv_ctx *ctx);

extern const cv_check_family cv_check_families[];
extern const int             cv_check_n_families;

/* Deterministic fills (xorshift-based, independent of libc). */
void   cv_chk_rand(float *x, size_t n, uint64_t seed, float lo, float hi);
void   cv_chk_rand_d(double *x, size_t n, uint64_t seed, double lo, double hi);
void   cv_chk_f2d(const float *x, double *y, size_t n);
void   cv_chk_d2f(const double *x, float *y, size_t n);

/* NMSE of `got` against reference `ref` (double); non-finite mismatches
 * make it +inf.  Prints the first `show` mismatches above tol_abs. */
double cv_chk_nmse(cv_check *c, const char *what, const float *got, const double *ref, size_t n, int show);
/* Same, double vs double. */
double cv_chk_nmse_d(const double *got, const double *ref, size_t n);
/* Max relative error max|a-b| / max(max|a|+|b|, tiny), as ggml's grad check. */
double cv_chk_relerr(const double *a, const double *b, size_t n);

/* Device tensor with guard bands. */
typedef struct cv_chk_dev {
    cv_tensor t;
    cl_mem    mem;
    size_t    n;
} cv_chk_dev;

#define CV_CHK_GUARD 256
cv_status cv_chk_dev_new(cv_ctx *ctx, cv_chk_dev *d, int64_t n, int64_t c, int64_t h, int64_t w, const float *init);
cv_status cv_chk_dev_get(cv_ctx *ctx, const cv_chk_dev *d, float *host);
int       cv_chk_dev_guards_ok(cv_check *c, cv_ctx *ctx, const cv_chk_dev *d);
void      cv_chk_dev_free(cv_chk_dev *d);

/* Central finite-difference gradient check.  `loss(p, user)` must compute
 * L = sum g * y in double for the current parameters p[0..n).  The
 * analytic gradient `grad` is compared at up to `nmax` sampled coordinates
 * (all if n <= nmax), using step eps; coordinates where the 4-point and
 * 2-point estimates disagree by more than `kink_tol` (relative) are skipped
 * as kinks.  Returns the relative error max|a-n| / max(|a|+|n|). */
double cv_chk_fd_check(double (*loss)(void *user), void *user, double *p, size_t n,
                    const double *grad, double eps, size_t nmax, uint64_t seed);

#endif
