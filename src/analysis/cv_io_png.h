/* cv_io_png.h -- a field map as a 16-bit grayscale PNG (libpng's
 * simplified API), for users who want the generated maps as images to
 * process elsewhere: value v maps linearly from [lo, hi] to 0..65535 and
 * the range and the transform are recorded in tEXt chunks
 * ("cosmovae:lo", "cosmovae:hi", "cosmovae:field", "cosmovae:transform"). */
#ifndef CV_IO_PNG_H
#define CV_IO_PNG_H

#include "runtime/cv.h"

/* img (h, w) row-major; values outside [lo, hi] are clamped; non-finite
 * values are written as 0.  Atomic (temporary name, rename). */
cv_status cv_png_write_gray16(const char *path, const float *img, int h, int w, double lo, double hi,
                              const char *field, const char *transform);
/* Read back: img (h, w) gets lo + (hi - lo) * v / 65535. *h, *w checked against
 * the expected size when > 0 on entry. */
cv_status cv_png_read_gray16(const char *path, float *img, int *h, int *w, double *lo, double *hi);

#endif
