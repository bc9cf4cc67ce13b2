/* test-ref-grad.c -- every op family's reference backward against central
 * finite differences in double precision, with a random upstream gradient
 * (L = sum g*y, never sum(y)).  Optional argument: a family name. */
#include "tap.h"

int main(int argc, char **argv) {
    tap_begin();
    for (int i = 0; i < cv_check_n_families; i++) {
        if (argc > 1 && strcmp(argv[1], cv_check_families[i].name)) continue;
        cv_check_diag(c, "family %s", cv_check_families[i].name);
        cv_check_families[i].grad(c);
    }
    return tap_end();
}
