/* cv_tune_measure.h -- measuring the tuning parameters on the device
 * (`cosmovae-info --tune`); the table and the wisdom files it writes are
 * runtime/cv_tune.h's. */
#ifndef CV_TUNE_MEASURE_H
#define CV_TUNE_MEASURE_H

#include "runtime/cv_tune.h"

#include <stdio.h>

typedef struct cv_tune_measure_opts {
    const char *device;     /* as cv_ctx_opts.device */
    const char *cache_dir;  /* as cv_ctx_opts.cache_dir (program cache) */
    int         quick;      /* 1: the small preset's shapes at 64 and 16 only, three repetitions, and
                               only run-time parameters (no candidate programs to build) */
    FILE       *report;     /* the table of measurements and choices (NULL: none) */
} cv_tune_measure_opts;

/* Time the candidates on the device at VDVAE shapes, starting from its
 * table entry: the convolution algorithm per op, kernel size and map size
 * (DIRECT, GEMM, VEC), then the VEC kernels' vector, channel and row
 * blocks and work-group size (one parameter at a time, each candidate
 * built as its own program: they are build options), then the backward-
 * weight parallelism and the flat kernels' work-group size.  Every time is
 * the minimum over repetitions (steady on a shared host).  On success
 * *best holds the choice (entry kept, source "measured"), device / driver
 * the device's name and driver version, and summary a one-line account for
 * the wisdom file's comment.  Seconds to a minute; allocates and builds
 * on the device, leaves nothing behind. */
cv_status cv_tune_measure(const cv_tune_measure_opts *o, cv_tune *best, char *device, size_t device_n,
                          char *driver, size_t driver_n, char *summary, size_t summary_n);

#endif
