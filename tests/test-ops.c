/* test-ops.c -- every device op, forward and backward, against its plain-C
 * reference on awkward shapes, inside guard bands.  Optional argument: a
 * family name. */
#include "tap.h"

int main(int argc, char **argv) {
    tap_begin();
    cv_ctx *ctx = tap_ctx();
    for (int i = 0; i < cv_check_n_families; i++) {
        if (argc > 1 && strcmp(argv[1], cv_check_families[i].name)) continue;
        cv_check_diag(c, "family %s", cv_check_families[i].name);
        cv_check_families[i].dev(c, ctx);
    }
    cv_ctx_free(ctx);
    return tap_end();
}
