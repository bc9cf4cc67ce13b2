/* cv_out.c -- atomic output files (see cv_out.h).
 * Invariant: a file appears under its name complete or not at all. */
#include "runtime/cv_out.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void cv_out_tmpname(const char *path, char *buf, size_t n) {
    snprintf(buf, n, "%s.tmp.%ld", path, (long)getpid());
}

cv_status cv_out_commit(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return cv_error(CV_ERR_IO, "%s: cannot rename from %s: %s", path, tmp, strerror(e));
    }
    return CV_OK;
}

void cv_out_abort(const char *tmp) { remove(tmp); }
