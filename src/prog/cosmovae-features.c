/* cosmovae-features -- the classical baseline of every latent probe: per
 * map, binned log auto-spectra, cross-correlation coefficients and pixel
 * moments of the transformed fields (cv_features.h), written as a latent
 * file, so that cosmovae-probe (and --baseline) reads them as it reads the
 * codes of a model; with --coarse R, the thumbnail yardstick instead (the
 * block means of each transformed field, cv_features_coarse).
 * Invariant: the output appears only complete (cv_latent_write). */
#include "prog/cv_cli.h"
#include "analysis/cv_features.h"

#include <string.h>

static const char *usage_text =
    "Usage: cosmovae-features [OPTION]... DATA.nc -o FEATURES.nc\n"
    "Classical summary statistics of every map of DATA.nc, the yardstick of the\n"
    "latent codes: per map, log10 of the auto-power spectrum of each channel in\n"
    "log-spaced k-bins (fundamental mode to Nyquist), the cross-correlation\n"
    "coefficient P_ab / sqrt(P_aa P_bb) of each channel pair in the same bins,\n"
    "and the mean, standard deviation, skewness and excess kurtosis of each\n"
    "transformed (log10) field.  3 channels, 8 bins: 60 numbers per map.  The\n"
    "output is a latent file (params, sim and split of the dataset carried\n"
    "over): probe it with cosmovae-probe, or pass it (or DATA.nc itself) as\n"
    "cosmovae-probe --baseline.\n"
    "\n"
    "With --coarse R it writes the thumbnail yardstick instead: the mean of each\n"
    "transformed field over R x R equal blocks (3 channels, R = 4: 48 numbers),\n"
    "what a code laid out on R x R positions says if it is only a coarse picture\n"
    "of the map (the paper's code is the 4x4 group's).\n"
    "\n"
    "  -o, --output FILE   features file to write (NetCDF; required)\n"
    "      --bins N        k-bins per spectrum (default 8; fewer when the map\n"
    "                      has fewer shells)\n"
    "      --coarse R      the thumbnail: block means on R x R blocks (R divides\n"
    "                      the map size; not with --bins)\n"
    "      --names         list the features in order and exit (no output)\n"
    "      --device SPEC   OpenCL device: index, or name substring[:index]\n"
    "  -q, --quiet         no progress output\n"
    "      --help          display this help and exit\n"
    "      --version       output version information and exit\n"
    "\n"
    "Example: cosmovae-features data.nc -o features.nc\n"
    "         cosmovae-probe latents.nc --baseline features.nc -o probe.csv\n"
    "         cosmovae-features data.nc --coarse 4 -o thumb.nc\n";

typedef struct prog { cv_progress pr; } prog;
static void on_chunk(void *user, int64_t done) { cv_progress_update(&((prog *)user)->pr, done, NULL); }

/* Write lat to out (whole or not at all) and say so. */
static void write_out(int argc, char **argv, const char *out, const cv_latent *lat, int quiet) {
    char history[4096];
    cv_cli_history(argc, argv, history, sizeof history);
    cv_status st = cv_latent_write(out, lat, history);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    if (!quiet)
        fprintf(stderr, "cosmovae-features: %lld maps -> %s (%d numbers each: %s)\n", (long long)lat->n_map, out, lat->n_dim,
                lat->model);
}

int main(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *device = NULL;
    long bins = CV_FEATURES_BINS_DEFAULT, coarse = 0;
    int quiet = 0, names = 0, bins_set = 0;
    cv_cli_init("cosmovae-features", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cv_cli_opt_str(argc, argv, &i, "--output", &out) || cv_cli_opt_str(argc, argv, &i, "-o", &out)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--bins", 1, 256, &bins)) bins_set = 1;
        else if (cv_cli_opt_long(argc, argv, &i, "--coarse", 1, 4096, &coarse)) ;
        else if (!strcmp(a, "--names")) names = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (!data) data = a;
        else cv_cli_usage_error("one dataset only (got '%s' and '%s')", data, a);
    }
    if (!data) cv_cli_usage_error("no input: give a dataset");
    if (!out && !names) cv_cli_usage_error("no output file given (-o FEATURES.nc)");
    if (coarse && bins_set) cv_cli_usage_error("--coarse and --bins: the thumbnail has no k-bins; give one of them");

    cv_status st;
    cv_dataset *ds = NULL;
    if ((st = cv_dataset_open(data, &ds)) != CV_OK) cv_cli_fail(st, NULL);
    if (coarse) {
        int C = cv_dataset_n_chan(ds), H = cv_dataset_height(ds), W = cv_dataset_width(ds);
        if (H % coarse || W % coarse)
            cv_cli_fail(cv_error(CV_ERR_ARG, "--coarse %ld: maps of %s are %d x %d, which do not split into %ld x %ld equal blocks",
                                 coarse, data, H, W, coarse, coarse), NULL);
        if (names) {
            const char *cn[64];
            for (int c = 0; c < C && c < 64; c++) cn[c] = cv_dataset_chan_name(ds, c);
            char buf[160];
            for (int i = 0; i < C * (int)(coarse * coarse); i++)
                printf("%d %s\n", i, cv_features_coarse_name(C < 64 ? C : 64, cn, (int)coarse, i, buf, sizeof buf));
            cv_dataset_free(ds);
            return 0;
        }
        prog p;
        cv_progress_begin(&p.pr, "thumbnails", "maps", cv_dataset_n_maps(ds), quiet);
        cv_latent *lat = NULL;
        st = cv_features_coarse_dataset(ds, (int)coarse, &lat, on_chunk, &p);
        cv_progress_end(&p.pr, cv_dataset_n_maps(ds));
        if (st != CV_OK) cv_cli_fail(st, NULL);
        write_out(argc, argv, out, lat, quiet);
        cv_latent_free(lat);
        cv_dataset_free(ds);
        return 0;
    }
    if (names) {
        int C = cv_dataset_n_chan(ds), n = cv_dataset_height(ds);
        if (C > 8 || n != cv_dataset_width(ds) || n < 4)
            cv_cli_fail(cv_error(CV_ERR_ARG, "%s: %d channels of %d x %d: features need square maps of >= 4 pixels, <= 8 channels",
                                 data, C, n, cv_dataset_width(ds)), NULL);
        cv_pk_geom *g = NULL;
        if ((st = cv_pk_geom_new(n, cv_dataset_box_size(ds), &g)) != CV_OK) cv_cli_fail(st, data);
        const char *cn[8];
        for (int c = 0; c < C; c++) cn[c] = cv_dataset_chan_name(ds, c);
        int32_t *bin_of = malloc((size_t)g->n_shell * sizeof *bin_of);
        if (!bin_of) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
        int nb = cv_features_bins(g, (int)bins, bin_of);
        int D = cv_features_dim(C, nb);
        char buf[160];
        for (int i = 0; i < D; i++) printf("%d %s\n", i, cv_features_name(g, nb, C, cn, i, buf, sizeof buf));
        free(bin_of);
        cv_pk_geom_free(g);
        cv_dataset_free(ds);
        return 0;
    }
    cv_ctx *ctx = cv_cli_ctx(device);
    prog p;
    cv_progress_begin(&p.pr, "classical features", "maps", cv_dataset_n_maps(ds), quiet);
    cv_latent *lat = NULL;
    st = cv_features_dataset(ctx, ds, (int)bins, &lat, on_chunk, &p);
    cv_progress_end(&p.pr, cv_dataset_n_maps(ds));
    if (st != CV_OK) cv_cli_fail(st, NULL);
    write_out(argc, argv, out, lat, quiet);
    cv_latent_free(lat);
    cv_ctx_free(ctx);
    cv_dataset_free(ds);
    return 0;
}
