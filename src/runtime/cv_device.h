/* cv_device.h -- OpenCL platform/device/context/queue, program build and
 * binary cache, kernel table, typed kernel-argument builder, launches,
 * per-kernel profiling.
 *
 * All device state hangs off one cv_ctx.  A cv_ctx is not thread-safe: use
 * it from one thread at a time.  Every kernel in cl/ is built when the
 * context is created (fail fast, full build log in cv_last_error()); the
 * compiled binaries are cached per device (key: sources, options, device,
 * driver) so a second run does not recompile. */
#ifndef CV_DEVICE_H
#define CV_DEVICE_H

#include "runtime/cv.h"
#include "runtime/cv_tune.h"
#include <CL/cl.h>

typedef struct cv_ctx cv_ctx;

typedef struct cv_ctx_opts {
    const char *device;     /* "SUBSTR", "SUBSTR:IDX" or "IDX" over all devices;
                               NULL: $CV_DEVICE, else the first GPU, else the first device */
    const char *cl_dir;     /* read <cl_dir>/<file> instead of embedded sources; NULL: $CV_CL_DIR */
    const char *cache_dir;  /* program binary cache; NULL: $CV_CACHE_DIR, else
                               $XDG_CACHE_HOME/cosmovae, else ~/.cache/cosmovae */
    int         no_cache;   /* 1: never read or write the binary cache ($CV_NO_CACHE=1 too) */
    int         profile;    /* 1: time every launch ($CV_PROFILE=1 too) */
    const char *build_opts; /* extra OpenCL build options, appended */
    const cv_tune *tune;    /* kernel parameters to use as they are (cosmovae-info --tune
                               measures candidates so); NULL: the device table, overridden
                               by the device's wisdom file (cv_tune.h) */
    int         no_wisdom;  /* 1: ignore the wisdom file ($CV_NO_WISDOM=1 too) */
} cv_ctx_opts;

cv_ctx_opts cv_ctx_opts_default(void);

/* Create a context on the selected device and build all kernels.
 * Caller frees with cv_ctx_free.  On failure *out is NULL and
 * cv_last_error() says why (device list for an unknown device, the build
 * log for a build failure, which Debian package provides a platform). */
cv_status cv_ctx_new(const cv_ctx_opts *opts, cv_ctx **out);
void      cv_ctx_free(cv_ctx *ctx);              /* NULL is a no-op */

cl_context       cv_ctx_context(const cv_ctx *ctx);
cl_command_queue cv_ctx_queue(const cv_ctx *ctx);
cl_device_id     cv_ctx_device(const cv_ctx *ctx);
const char      *cv_ctx_device_name(const cv_ctx *ctx);   /* borrowed */
const char      *cv_ctx_vendor(const cv_ctx *ctx);        /* borrowed */
int              cv_ctx_from_cache(const cv_ctx *ctx);    /* 1 if programs came from the cache */
size_t           cv_ctx_max_alloc(const cv_ctx *ctx);     /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
size_t           cv_ctx_global_mem(const cv_ctx *ctx);    /* CL_DEVICE_GLOBAL_MEM_SIZE */
size_t           cv_ctx_align(const cv_ctx *ctx);         /* base address alignment, bytes */
size_t           cv_ctx_max_wg(const cv_ctx *ctx);        /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
int              cv_ctx_is_gpu(const cv_ctx *ctx);
int              cv_ctx_compute_units(const cv_ctx *ctx); /* CL_DEVICE_MAX_COMPUTE_UNITS */
const char      *cv_ctx_driver(const cv_ctx *ctx);        /* CL_DRIVER_VERSION; borrowed */
uint64_t         cv_ctx_device_type(const cv_ctx *ctx);   /* CL_DEVICE_TYPE_* bits */
/* The kernel parameters in force (table, or wisdom, or opts->tune);
 * borrowed, valid until cv_ctx_free.  Their build options are part of
 * every program's build (and so of the program cache key). */
const cv_tune   *cv_ctx_tune(const cv_ctx *ctx);
/* Replace the run-time parameters (rules, channel block of the 1x1
 * kernels, work-group sizes, caches: everything but the build options) of
 * a live context, e.g. to measure candidates without rebuilding.  t must
 * give the same build options as the context's; CV_ERR_ARG otherwise. */
cv_status        cv_ctx_set_tune(cv_ctx *ctx, const cv_tune *t);

/* The kernel named `name` (e.g. "cvk_gelu_fwd"); borrowed, valid until
 * cv_ctx_free.  CV_ERR_ARG if no program defines it. */
cv_status cv_ctx_kernel(cv_ctx *ctx, const char *name, cl_kernel *out);
int       cv_ctx_n_kernels(const cv_ctx *ctx);
const char *cv_ctx_kernel_name(const cv_ctx *ctx, int i);

/* Device buffer of nbytes, zeroed if zero != 0.  `what` names the
 * allocation in errors ("activations (1.20 GiB): exceeds ...").
 * Caller releases with clReleaseMemObject. */
cv_status cv_ctx_alloc(cv_ctx *ctx, const char *what, size_t nbytes, int zero, cl_mem *out);

/* A scratch buffer owned by the context, grown to at least nbytes.  Plans
 * reserve their worst case up front, so no growth happens in a step.
 * Borrowed; invalidated by the next call that grows it. */
cv_status cv_ctx_scratch(cv_ctx *ctx, size_t nbytes, cl_mem *out);

/* Wait for the queue to drain. */
cv_status cv_ctx_finish(cv_ctx *ctx);

/* ---- typed kernel arguments and launches --------------------------------
 *     cv_kargs ka = cv_kargs_begin(ctx, "cvk_gelu_fwd");
 *     cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off); cv_karg_i32(&ka, n);
 *     CV_TRY(cv_launch1(&ka, n, 256));
 * The builder counts indices itself and keeps the first error. */
typedef struct cv_kargs {
    cv_ctx     *ctx;
    cl_kernel   k;
    const char *name;
    cl_uint     i;
    cv_status   st;
} cv_kargs;

cv_kargs cv_kargs_begin(cv_ctx *ctx, const char *kernel_name);
void cv_karg_mem(cv_kargs *ka, cl_mem m);
void cv_karg_u64(cv_kargs *ka, uint64_t v);
void cv_karg_i32(cv_kargs *ka, int32_t v);
void cv_karg_i64(cv_kargs *ka, int64_t v);
void cv_karg_u32(cv_kargs *ka, uint32_t v);
void cv_karg_f32(cv_kargs *ka, float v);
void cv_karg_local(cv_kargs *ka, size_t nbytes);

/* Enqueue with `dims` global sizes rounded up to the local sizes (lsize may
 * be NULL to let the driver choose).  Kernels must bounds-check. */
cv_status cv_launch(cv_kargs *ka, cl_uint dims, const size_t *gsize, const size_t *lsize);
cv_status cv_launch1(cv_kargs *ka, size_t n, size_t local);   /* 1-D helper */

/* ---- errors ------------------------------------------------------------- */
const char *cv_cl_errname(cl_int err);
/* Record an OpenCL failure (symbolic name, expression, file:line) and
 * return CV_ERR_CL, or CV_OK when err == CL_SUCCESS. */
cv_status cv_cl_check(cl_int err, const char *expr, const char *file, int line);
#define CV_CL(expr) cv_cl_check((expr), #expr, __FILE__, __LINE__)

/* ---- profiling ---------------------------------------------------------- */
/* With profiling on, each launch's event is kept; cv_ctx_profile_report
 * waits for them and prints a per-kernel table (calls, total ms, mean us,
 * share, work-groups per call and the share of the kernel's time in
 * launches of fewer work-groups than compute units, "-" where the local
 * size was the implementation's) sorted by time, and the device time
 * between profiled commands by length of gap.  Transfers and the inner
 * passes of library calls (clFFT, CLBlast: one event each) are not
 * profiled, so a gap is time no profiled command ran, not necessarily an
 * idle device.  cv_ctx_profile_reset clears the counters. */
int  cv_ctx_profiling(const cv_ctx *ctx);
void cv_ctx_profile_report(cv_ctx *ctx, FILE *f);
void cv_ctx_profile_reset(cv_ctx *ctx);
/* Account an event from a library call (CLBlast, clFFT) under `label`; takes
 * ownership of ev (released here).  Pass the event only when
 * cv_ctx_profiling(ctx), e.g. `cl_event ev = NULL, *evp = cv_ctx_profiling(ctx) ? &ev : NULL;`. */
void cv_ctx_profile_event(cv_ctx *ctx, const char *label, cl_event ev);

/* ---- listing ------------------------------------------------------------ */
/* Print every platform and device with the properties that matter.
 * Returns CV_ERR_NOPLATFORM (with advice) if there is none. */
cv_status cv_device_list(FILE *f, int verbose);
/* The device a --device SPEC selects, as cv_ctx_new would pick it (no
 * context made): its name, platform and type into name[n].
 * CV_ERR_NODEVICE with the list of devices when nothing matches. */
cv_status cv_device_resolve(const char *spec, char *name, size_t n);

#endif
