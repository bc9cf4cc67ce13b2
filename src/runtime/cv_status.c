/* cv_status.c -- status codes, thread-local last-error detail.
 * Invariant: cv_error() always returns its status argument unchanged, so
 * `return cv_error(CV_ERR_FORMAT, "%s: ...", path);` both records and returns. */
#include "runtime/cv.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char cv_err_buf[16384];

const char *cv_strerror(cv_status st) {
    switch (st) {
    case CV_OK:             return "success";
    case CV_ERR_NOMEM:      return "out of host memory";
    case CV_ERR_CL:         return "OpenCL error";
    case CV_ERR_BUILD:      return "OpenCL program build failed";
    case CV_ERR_NOPLATFORM: return "no OpenCL platform";
    case CV_ERR_NODEVICE:   return "OpenCL device not found";
    case CV_ERR_DEVMEM:     return "device memory allocation failed";
    case CV_ERR_ARG:        return "invalid argument";
    case CV_ERR_SHAPE:      return "tensor shape mismatch";
    case CV_ERR_FORMAT:     return "bad file format";
    case CV_ERR_IO:         return "input/output error";
    case CV_ERR_NUMERIC:    return "non-finite value";
    case CV_ERR_INTERRUPT:  return "interrupted";
    }
    return "unknown error";
}

const char *cv_last_error(void) {
    return cv_err_buf[0] ? cv_err_buf : "no detail recorded";
}

void cv_error_clear(void) { cv_err_buf[0] = '\0'; }

cv_status cv_error(cv_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cv_err_buf, sizeof cv_err_buf, fmt, ap);
    va_end(ap);
    return st;
}

void cv_error_append(const char *fmt, ...) {
    size_t n = strlen(cv_err_buf);
    if (n + 1 >= sizeof cv_err_buf) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cv_err_buf + n, sizeof cv_err_buf - n, fmt, ap);
    va_end(ap);
}
