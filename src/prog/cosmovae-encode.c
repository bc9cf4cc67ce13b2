/* cosmovae-encode -- latent codes of every map of a dataset.
 *
 *   cosmovae-encode RUN_DIR DATA.nc -o latents.nc [--all-groups]
 *
 * The code of a map is the posterior mean of the lowest-resolution latent
 * group (4x4x16 = 256 numbers for both presets), as in the paper's
 * section 3; --all-groups concatenates the posterior means of every group.
 * The latent file carries params, sim and split over from the dataset. */
#include "prog/cv_cli.h"
#include "analysis/cv_latent.h"
#include "model/cv_sample.h"

#include <string.h>

static const char *usage_text =
    "Usage: cosmovae-encode [OPTION]... RUN DATA.nc -o LATENTS.nc\n"
    "Encode every map of DATA.nc with the trained model in RUN (a run directory\n"
    "or a checkpoint file) and write the latent codes with the maps' parameters,\n"
    "simulations and splits.\n"
    "\n"
    "  -o, --output FILE   latent file to write (NetCDF; required)\n"
    "      --all-groups    every latent group's posterior mean, not only the top one\n"
    "      --no-ema        use the raw weights even if the run kept an EMA\n"
    "      --pool          a translation-invariant code instead: per group and\n"
    "                      latent channel, the spatial mean and standard\n"
    "                      deviation of the posterior mean (2 x 16 numbers for\n"
    "                      the 4x4 group; with --all-groups, for every group)\n"
    "      --no-diag       skip the diagnosis of the code: per latent group, the\n"
    "                      KL (nats per map) and the active units (dimensions\n"
    "                      whose posterior mean varies over maps, variance >\n"
    "                      0.01) over up to 1000 valid (else test) maps, and a\n"
    "                      warning when the probed group is collapsed\n"
    "      --batch N       maps per device pass (default 16)\n"
    "      --device SPEC   OpenCL device: index, or name substring[:index]\n"
    "  -q, --quiet         no progress output\n"
    "      --help          display this help and exit\n"
    "      --version       output version information and exit\n";

int main(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *out = NULL, *device = NULL;
    int all_groups = 0, quiet = 0, ema = 1, no_diag = 0, pool = 0;
    long batch = 16;
    cv_cli_init("cosmovae-encode", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cv_cli_opt_str(argc, argv, &i, "--output", &out) || cv_cli_opt_str(argc, argv, &i, "-o", &out)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 4096, &batch)) ;
        else if (!strcmp(a, "--all-groups")) all_groups = 1;
        else if (!strcmp(a, "--no-ema")) ema = 0;
        else if (!strcmp(a, "--no-diag")) no_diag = 1;
        else if (!strcmp(a, "--pool")) pool = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (!run) run = a;
        else if (!data) data = a;
        else cv_cli_usage_error("unexpected argument '%s'", a);
    }
    if (!run || !data) cv_cli_usage_error("a run directory (or checkpoint) and a dataset are required");
    if (!out) cv_cli_usage_error("no output file given (-o LATENTS.nc)");

    cv_status st;
    cv_dataset *ds = NULL;
    if ((st = cv_dataset_open(data, &ds)) != CV_OK) cv_cli_fail(st, NULL);
    cv_ctx *ctx = cv_cli_ctx(device);
    cv_model *m = NULL;
    cv_norm norm;
    if ((st = cv_model_load(run, ctx, ema, &m, &norm)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_norm_check_dataset(&norm, cv_model_config(m), ds)) != CV_OK) cv_cli_fail(st, NULL);
    int64_t n = cv_dataset_n_maps(ds);
    if (batch > n) batch = n;
    cv_encoder *enc = NULL;
    if ((st = cv_encoder_new(ctx, m, &norm, (int)batch, all_groups, &enc)) != CV_OK) cv_cli_fail(st, NULL);
    int64_t dim = cv_encoder_dim(enc), zdim_in = dim;
    int n_pool = all_groups ? cv_encoder_n_groups(enc) : 1;
    int64_t pdims[CV_MAX_GROUPS];
    for (int g = 0; g < n_pool; g++) pdims[g] = cv_encoder_group_dim(enc, g);
    if (pool) dim = 2 * (int64_t)cv_model_config(m)->zdim * n_pool;
    cv_latent *lat = NULL;
    if ((st = cv_latent_new_for(ds, (int)dim, &lat)) != CV_OK) cv_cli_fail(st, NULL);
    snprintf(lat->model, sizeof lat->model, "%s (%s%s)", run, pool ? "spatial mean and std per channel of the " : "",
             all_groups ? "posterior means, all groups" : "posterior mean, top group");
    float *zbuf = pool ? malloc((size_t)batch * zdim_in * sizeof *zbuf) : NULL;
    if (pool && !zbuf) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    const cv_model_cfg *mc = cv_model_config(m);
    size_t msz = (size_t)mc->channels * mc->size * mc->size;
    float *maps = malloc((size_t)batch * msz * sizeof *maps);
    if (!maps) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    cv_progress prog;
    cv_progress_begin(&prog, "encoding", "maps", n, quiet);
    for (int64_t first = 0; first < n; first += batch) {
        int cnt = (int)(n - first < batch ? n - first : batch);
        if ((st = cv_dataset_read(ds, first, cnt, maps)) != CV_OK) cv_cli_fail(st, NULL);
        st = cv_encoder_run(enc, maps, cnt, pool ? zbuf : lat->z + first * dim);
        if (st == CV_OK && pool) cv_latent_pool(zbuf, cnt, n_pool, pdims, cv_model_config(m)->zdim, lat->z + first * dim);
        if (st != CV_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", cv_last_error());
            cv_cli_fail(cv_error(st, "%s: maps %lld..%lld: %s", data, (long long)first, (long long)(first + cnt - 1), msg), NULL);
        }
        cv_progress_update(&prog, first + cnt, NULL);
    }
    cv_progress_end(&prog, n);
    char history[4096];
    cv_cli_history(argc, argv, history, sizeof history);
    if ((st = cv_latent_write(out, lat, history)) != CV_OK) cv_cli_fail(st, NULL);
    if (!quiet) fprintf(stderr, "cosmovae-encode: %lld maps -> %s (%lld numbers each)\n", (long long)n, out, (long long)dim);
    if (!no_diag) {   /* KL and active units per group (issue 11) */
        cv_latent_diag dg;
        int dsplit = cv_dataset_split_count(ds, CV_SPLIT_VALID) >= 2 ? CV_SPLIT_VALID
                   : cv_dataset_split_count(ds, CV_SPLIT_TEST) >= 2 ? CV_SPLIT_TEST : CV_SPLIT_ALL;
        if ((st = cv_latent_diag_run(ctx, m, &norm, ds, dsplit, 1000, &dg)) != CV_OK)
            cv_cli_warn("warning: could not diagnose the latent code: %s", cv_last_error());
        else
            cv_latent_diag_print(stderr, &dg, "cosmovae-encode: ", !quiet);
    }
    free(maps);
    free(zbuf);
    cv_latent_free(lat);
    cv_encoder_free(enc);
    cv_model_free(m);
    cv_ctx_free(ctx);
    cv_dataset_free(ds);
    return 0;
}
