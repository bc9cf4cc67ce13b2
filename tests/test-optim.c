/* test-optim.c -- RMSprop and Adam: the references against closed forms,
 * and the device steps against the C loop over several steps (momentum,
 * weight decay, Adam's bias correction), with clipping read from the
 * device norm and skipping on a NaN/Inf norm or a norm above the
 * threshold (parameters and state bit-identical, skip flag set), and a
 * squared norm at the threshold or one float either side of it, where the
 * device's flag, its update and the reference decision must agree.  The
 * checks live in src/check/cv_check_optim.c (family `optim`, so `cosmovae-info
 * --self-test` runs them too). */
#include "tap.h"

int main(void) {
    tap_begin();
    cv_ctx *ctx = tap_ctx();
    cv_optim_gradcheck(c);
    cv_optim_devcheck(c, ctx);
    cv_ctx_free(ctx);
    return tap_end();
}
