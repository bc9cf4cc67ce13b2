/* test-ops.c -- every device op, forward and backward, against its plain-C
 * reference on awkward shapes, inside guard bands.  The checks are found
 * through the op table: every graph op's descriptor must be complete and
 * name a check family, whose device checks then run (once per family, in
 * table order); the families of kernels that are not graph ops (copy,
 * optimizers, power spectra) run after.  Optional argument: a family name. */
#include "tap.h"
#include "graph/cv_op_table.h"

static int family_index(const char *name) {
    for (int i = 0; name && i < cv_check_n_families; i++)
        if (!strcmp(cv_check_families[i].name, name)) return i;
    return -1;
}

int main(int argc, char **argv) {
    tap_begin();
    int ran[64] = { 0 }, order[64], n_order = 0;
    CV_CHECK_OK(cv_check_n_families <= 64, "%d check families", cv_check_n_families);
    for (int op = 0; op < CV_OP_COUNT; op++) {
        const cv_op_desc *d = cv_op_desc_of((cv_op)op);
        int f = family_index(d->family), dup = 0;
        for (int j = 0; j < op && d->name; j++) dup |= cv_op_descs[j].name && !strcmp(cv_op_descs[j].name, d->name);
        int ok = d->name && !dup && d->infer && d->n_in_opt >= 0 && d->n_par_opt >= 0 && d->n_par_opt <= d->n_par &&
                 (op == CV_OP_INPUT || (d->fwd && d->bwd && d->ref_fwd && d->ref_bwd && f >= 0));
        CV_CHECK_OK(ok, "op %d (%s): descriptor complete (name, arity, shape, device and reference forward and backward), "
                    "checks in family %s", op, d->name ? d->name : "no name", d->family ? d->family : "-");
        if (f >= 0 && !ran[f]) { ran[f] = 1; order[n_order++] = f; }
    }
    CV_CHECK_OK(cv_op_desc_of(CV_OP_COUNT) == NULL && !strcmp(cv_op_name(CV_OP_COUNT), "?"), "no descriptor outside the enum");
    for (int i = 0; i < cv_check_n_families; i++)
        if (!ran[i]) order[n_order++] = i;              /* kernels that are not graph ops */
    cv_ctx *ctx = tap_ctx();
    for (int k = 0; k < n_order; k++) {
        const cv_check_family *fam = &cv_check_families[order[k]];
        if (argc > 1 && strcmp(argv[1], fam->name)) continue;
        cv_check_diag(c, "family %s%s", fam->name, ran[order[k]] ? "" : " (not a graph op)");
        fam->dev(c, ctx);
    }
    cv_ctx_free(ctx);
    return tap_end();
}
