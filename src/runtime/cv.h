/* cv.h -- cosmovae umbrella header: status codes, error helpers, version.
 *
 * Glossary (used in every shape comment): N = batch, C = channels,
 * H, W = spatial (W fastest), L = latent levels, Z = latent channels.
 * Tensors are NCHW float32, contiguous; shapes are int64_t[4] in N,C,H,W order.
 *
 * Error model (netcdf-c style): every fallible library function returns a
 * cv_status (CV_OK = 0, errors negative) and writes results through out
 * parameters.  The specific detail of the last error of the calling thread
 * (file, option, index, OpenCL error name, build log) is in cv_last_error().
 * The library never exits; only main() decides exit codes. */
#ifndef CV_H
#define CV_H

#include "config.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cv_status {
    CV_OK             =   0,
    CV_ERR_NOMEM      =  -1,  /* host allocation failed */
    CV_ERR_CL         =  -2,  /* an OpenCL call failed */
    CV_ERR_BUILD      =  -3,  /* OpenCL program build failed (log attached) */
    CV_ERR_NOPLATFORM =  -4,  /* no OpenCL platform / ICD */
    CV_ERR_NODEVICE   =  -5,  /* requested device not found */
    CV_ERR_DEVMEM     =  -6,  /* device allocation failed or too large */
    CV_ERR_ARG        =  -7,  /* bad argument or option value */
    CV_ERR_SHAPE      =  -8,  /* tensor shapes do not fit */
    CV_ERR_FORMAT     =  -9,  /* bad file contents */
    CV_ERR_IO         = -10,  /* cannot read or write a file */
    CV_ERR_NUMERIC    = -11,  /* NaN/Inf where a finite value is required */
    CV_ERR_INTERRUPT  = -12,  /* stopped by a signal */
} cv_status;

const char *cv_strerror(cv_status st);

/* Detail of the last error recorded on this thread; never NULL. */
const char *cv_last_error(void);
/* Record detail (printf-style) and return st, for `return cv_error(...)`. */
cv_status cv_error(cv_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append more text (e.g. a build log) to the last error. */
void cv_error_append(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void cv_error_clear(void);

#define CV_TRY(expr)                                                  \
    do { cv_status s_ = (expr); if (s_ != CV_OK) { st = s_; goto fail; } } while (0)

/* Programmer errors only (violated preconditions), never user input. */
#define CV_ASSERT(x)                                                            \
    do { if (!(x)) { fprintf(stderr, "%s:%d: CV_ASSERT(%s) failed\n", __FILE__, \
                             __LINE__, #x); abort(); } } while (0)

#define CV_VERSION PACKAGE_VERSION

#include <stdlib.h>

#endif
