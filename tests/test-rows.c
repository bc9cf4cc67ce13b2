/* test-rows.c -- every row of the built-in tuning table run on the present
 * device (issue 13): a GPU row's parameters (vector width 4, the DIRECT
 * and CLBlast GEMM rules, work-groups of 64 to 256) compile and give the
 * references' results here, on a CPU, rather than first on a user's GPU.
 *
 * For each distinct parameter set of the table (rows with the same
 * parameters, e.g. the AMD GPU rows, run once and are named together), a
 * context is made with exactly those parameters (cv_ctx_opts.tune), and
 *   1. every op family's device checks run on it (the self-test's), and
 *   2. one training pass of a tiny VDVAE at 16x16 (so that the 8- and
 *      16-wide vector kernels apply, and the plan's GELU caches and AUTO
 *      rules of the row are used) gives the reference path's loss and
 *      parameter gradients.
 * A row that fails to build or run is a failure naming the row.
 *
 * Usage: test-rows [--quick] [--row NAME]... [--family NAME]... [--no-model]
 *   --quick    the families' subset for a strict simulator (cv_check.quick)
 *   --row      only the row whose entry is NAME (repeatable)
 *   --family   only these op families (repeatable; default every one)
 *   --no-model skip the tiny-model pass
 * tests/oclgrind.sh runs it under Oclgrind. */
#include "tap.h"
#include "runtime/cv_tune.h"
#include "tiny-model.h"

#include <math.h>

enum { BATCH = 2, SIZE = 16 };

static const char rows_cfg[] =
    "[model]\nsize = 16\nchannels = 3\nwidth = 8\nbottleneck = 4\nzdim = 2\n"
    "enc_res = 16,8\nenc_blocks = 1,1\ndec_res = 4,8,16\ndec_blocks = 1,1,1\n"
    "bias_max_res = 16\nlogsigma_floor = -5\n";

/* The tiny model's training pass on ctx against the reference path. */
static void model_pass(cv_ctx *ctx, const char *row) {
    world w;
    memset(&w, 0, sizeof w);
    w.seed = 5; w.step = 2;
    cv_cfg *cfg = NULL;
    cv_model_cfg mc;
    float *pf = NULL, *gf = NULL, *x = NULL;
    double *pd = NULL, *gd = NULL, Ldev = NAN, Lref = NAN, e = INFINITY;
    const int64_t nx = (int64_t)BATCH * 3 * SIZE * SIZE;
    cv_status st = cv_cfg_new(&cfg);
    if (st == CV_OK) st = cv_cfg_parse(cfg, rows_cfg, "rows");
    if (st == CV_OK) st = cv_model_cfg_read(cfg, &mc);
    if (st == CV_OK) st = cv_model_new(&mc, &w.m);
    if (st == CV_OK) st = cv_model_to_device(w.m, ctx, 0);
    if (st == CV_OK) st = cv_model_build(w.m, CV_MODEL_TRAIN, BATCH, 1.0f, 0, &w.g, &w.io);
    if (st == CV_OK) {
        int64_t nf = cv_model_n_floats(w.m);
        int np = cv_model_n_params(w.m);
        pf = malloc(nf * sizeof *pf); gf = malloc(nf * sizeof *gf); x = malloc(nx * sizeof *x);
        pd = malloc(nf * sizeof *pd); gd = calloc(nf, sizeof *gd);
        w.rp = malloc(np * sizeof *w.rp); w.rdp = malloc(np * sizeof *w.rdp);
        if (!pf || !gf || !x || !pd || !gd || !w.rp || !w.rdp) st = cv_error(CV_ERR_NOMEM, "model buffers");
        if (st == CV_OK) {
            cv_model_init_host(w.m, 13, pf);
            for (int64_t i = 0; i < nf; i++) if (pf[i] == 0.0f) pf[i] = 0.05f * (float)sin(0.9 * i);
            cv_chk_f2d(pf, pd, nf);
            for (int k = 0; k < np; k++) {
                w.rp[k] = pd + cv_model_param_offset(w.m, k);
                w.rdp[k] = gd + cv_model_param_offset(w.m, k);
            }
            cv_chk_rand(x, nx, 29, -1.5f, 1.5f);
            st = tiny_dev_and_ref(c, ctx, &w, pf, x, gf, &Ldev, &Lref);
            if (st == CV_OK) e = cv_chk_nmse(c, "dparams", gf, gd, nf, 5);
        }
    } else CV_CHECK_DIAG("%s", cv_last_error());
    CV_CHECK_OK(st == CV_OK && fabs(Ldev - Lref) < 1e-5 * (1 + fabs(Lref)) && e < 1e-8,
                "row %s: tiny VDVAE 16x16 training pass, loss device %.8f reference %.8f, gradients nmse %.2e", row,
                Ldev, Lref, e);
    cv_refplan_free(w.ref);
    cv_graph_free(w.g);
    cv_model_free(w.m);
    cv_cfg_free(cfg);
    free(pf); free(gf); free(x); free(pd); free(gd); free(w.rp); free(w.rdp);
}

static int listed(const char *s, const char *const *list, int n) {
    if (n == 0) return 1;
    for (int i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *rows[32], *fams[32];
    int n_rows = 0, n_fams = 0, model = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--row") && i + 1 < argc && n_rows < 32) rows[n_rows++] = argv[++i];
        else if (!strcmp(argv[i], "--family") && i + 1 < argc && n_fams < 32) fams[n_fams++] = argv[++i];
        else if (!strcmp(argv[i], "--no-model")) model = 0;
        else if (!strcmp(argv[i], "--quick")) c->quick = 1;
        else { fprintf(stderr, "test-rows: unknown argument '%s' (--quick, --row NAME, --family NAME, --no-model)\n", argv[i]); return 99; }
    }
    for (int i = 0; i < n_fams; i++) {
        int known = 0;
        for (int f = 0; f < cv_check_n_families; f++) known |= !strcmp(fams[i], cv_check_families[f].name);
        if (!known) { fprintf(stderr, "test-rows: --family %s: no such op family\n", fams[i]); return 99; }
    }
    static cv_tune t[64];
    int n = 0, n_run = 0;
    while (n < 64 && cv_tune_table_row(n, &t[n])) n++;
    for (int i = 0; i < n_rows; i++) {
        int known = 0;
        for (int j = 0; j < n; j++) known |= !strcmp(rows[i], t[j].entry);
        if (!known) { fprintf(stderr, "test-rows: --row %s: no such table entry\n", rows[i]); return 99; }
    }
    tap_begin();
    cv_ctx_free(tap_ctx());              /* the device policy: no device is a failure */
    for (int i = 0; i < n; i++) {
        int first = 1;
        for (int j = 0; j < i; j++) first &= !(cv_tune_same_params(&t[i], &t[j]) && listed(t[j].entry, rows, n_rows));
        if (!first || !listed(t[i].entry, rows, n_rows)) continue;
        char names[512];
        snprintf(names, sizeof names, "\"%.63s\"", t[i].entry);
        for (int j = i + 1; j < n; j++)
            if (cv_tune_same_params(&t[i], &t[j]) && strcmp(t[i].entry, t[j].entry) && !strstr(names, t[j].entry))
                snprintf(names + strlen(names), sizeof names - strlen(names), ", \"%.63s\"", t[j].entry);
        char opts[512];
        cv_tune_build_opts(&t[i], opts, sizeof opts);
        CV_CHECK_DIAG("row %s: %s; vec_wg %d, wgrad_groups %d, keep_gelu %d, pre_gelu %d, elem_wg %d, %d rules", names,
                      opts, t[i].vec_wg, t[i].wgrad_groups, t[i].keep_gelu, t[i].direct_pre_gelu, t[i].elem_wg,
                      t[i].n_rules);
        cv_ctx_opts o = cv_ctx_opts_default();
        o.tune = &t[i];
        cv_ctx *ctx = NULL;
        cv_status st = cv_ctx_new(&o, &ctx);
        CV_CHECK_OK(st == CV_OK, "row %s: a context builds every kernel with its parameters%s%s", names,
                    st == CV_OK ? "" : ": ", st == CV_OK ? "" : cv_last_error());
        n_run++;
        if (st != CV_OK) continue;
        int before = c->n_fail, checks = c->n;
        for (int f = 0; f < cv_check_n_families; f++)
            if (listed(cv_check_families[f].name, fams, n_fams)) cv_check_families[f].dev(c, ctx);
        if (model) model_pass(ctx, names);
        CV_CHECK_DIAG("row %s: %d checks, %d failed", names, c->n - checks, c->n_fail - before);
        cv_ctx_free(ctx);
    }
    CV_CHECK_OK(n_run > 0, "%d distinct parameter sets of the %d table rows run", n_run, n);
    return tap_end();
}
