/* tap.h -- TAP driver glue for the C tests: a cv_check on stdout, and the
 * device policy.  With no OpenCL device a test FAILS (exit 99): a test run
 * must never go green by skipping.  CV_SKIP_NO_DEVICE=1 turns that into a
 * TAP skip, for a developer's machine without any OpenCL driver. */
#ifndef CV_TAP_H
#define CV_TAP_H

#include "check/cv_check.h"
#include <string.h>

static cv_check tap = { NULL, 0, 0, 0 };
static cv_check *const c = &tap;

static inline void tap_begin(void) { tap.out = stdout; }

static inline cv_ctx *tap_ctx(void) {
    cv_ctx *ctx = NULL;
    cv_ctx_opts o = cv_ctx_opts_default();
    cv_status st = cv_ctx_new(&o, &ctx);
    if (st == CV_OK) {
        cv_check_diag(&tap, "device: %s (%s)%s", cv_ctx_device_name(ctx), cv_ctx_vendor(ctx),
                      cv_ctx_from_cache(ctx) ? ", programs from cache" : "");
        return ctx;
    }
    const char *skip = getenv("CV_SKIP_NO_DEVICE");
    if ((st == CV_ERR_NOPLATFORM || st == CV_ERR_NODEVICE) && skip && !strcmp(skip, "1")) {
        printf("1..0 # SKIP no OpenCL device (CV_SKIP_NO_DEVICE=1)\n");
        exit(0);
    }
    printf("Bail out! no usable OpenCL device: %s\n", cv_strerror(st));
    fprintf(stderr, "%s\n(set CV_SKIP_NO_DEVICE=1 to skip device tests on a machine without OpenCL)\n", cv_last_error());
    exit(99);
}

static inline int tap_end(void) {
    printf("1..%d\n", tap.n);
    if (tap.n_fail) printf("# %d of %d failed\n", tap.n_fail, tap.n);
    return tap.n_fail ? 1 : 0;
}

#endif
