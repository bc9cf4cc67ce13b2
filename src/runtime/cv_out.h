/* cv_out.h -- atomic output: every file the library and the programs write
 * goes to a temporary name first and is renamed only when complete, so a
 * failure or a kill never leaves a half-written file under the real name. */
#ifndef CV_OUT_H
#define CV_OUT_H

#include "runtime/cv.h"

/* Atomic output: write to "<path>.tmp.<pid>", then rename on success.
 * cv_out_tmpname fills buf with the temporary name. */
void      cv_out_tmpname(const char *path, char *buf, size_t n);
cv_status cv_out_commit(const char *tmp, const char *path);   /* rename */
void      cv_out_abort(const char *tmp);                      /* remove */

#endif
