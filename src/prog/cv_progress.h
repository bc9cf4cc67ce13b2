/* cv_progress.h -- a progress line with rate and ETA for long work (the
 * programs' training, import, t-SNE...), and a monotonic clock. */
#ifndef CV_PROGRESS_H
#define CV_PROGRESS_H

#include "runtime/cv.h"

/* Progress on stderr: a bar with rate and ETA on a terminal, a line every
 * few seconds otherwise; nothing when quiet. */
typedef struct cv_progress {
    const char *what;       /* "training", "importing" */
    const char *unit;       /* "maps" */
    int64_t     total;
    double      t0, t_last;
    double      limit;      /* wall-time budget in seconds (0: none); caps the ETA */
    int         tty, quiet;
    int         shown;      /* lines printed so far */
} cv_progress;
void cv_progress_begin(cv_progress *p, const char *what, const char *unit, int64_t total, int quiet);
void cv_progress_update(cv_progress *p, int64_t done, const char *extra);
void cv_progress_end(cv_progress *p, int64_t done);
double cv_now(void);       /* monotonic seconds */

#endif
