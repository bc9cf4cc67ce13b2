/* cosmovae-mkfields -- synthetic CMD-like datasets (cv_fields.h): a NetCDF
 * dataset (-o), CMD-format .npy files plus a parameter table (--npy DIR),
 * or both.  Streams one simulation (15 maps) at a time, so memory does not
 * grow with --sims.  Invariant: same options and seed, same bytes. */
#include "prog/cv_cli.h"
#include "dataset/cv_data.h"
#include "dataset/cv_fields.h"
#include "dataset/cv_npy.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>

static const char *usage_text =
    "Usage: cosmovae-mkfields -o OUT.nc --sims N --size PIXELS --seed N [OPTION]...\n"
    "   or: cosmovae-mkfields --npy DIR --sims N --size PIXELS --seed N [OPTION]...\n"
    "Make a synthetic CAMELS-like multifield dataset (Mgas, HI, B): one 3-D\n"
    "Gaussian box per simulation with an Omega_m- and sigma_8-dependent spectrum,\n"
    "15 maps per simulation projected through 5 slabs along each axis (map means\n"
    "keep their cosmic variance), lognormal gas, HI and B derived from the gas\n"
    "with feedback dependence, parameters from a\n"
    "Latin hypercube over the CAMELS LH priors (or --params FILE).\n"
    "\n"
    "  -o, --output FILE     write a dataset (NetCDF-4)\n"
    "      --npy DIR         write CMD-format Maps_<field>_IllustrisTNG_LH_z=0.00.npy\n"
    "                        files and params_LH_IllustrisTNG.txt into DIR\n"
    "      --sims N          number of simulations (default: the rows of --params,\n"
    "                        else 40)\n"
    "      --size PIXELS     map size, a power of two from 8 to 512 (default 64)\n"
    "      --seed N          random seed (default 0)\n"
    "      --params FILE     parameters (rows of Omega_m sigma_8 A_SN1 A_AGN1 A_SN2\n"
    "                        A_AGN2, as the CAMELS params_LH_*.txt) instead of a\n"
    "                        Latin hypercube; the first --sims rows are used\n"
    "      --maps-per-sim N  maps per simulation, 1..15 (default 15, as CMD:\n"
    "                        5 slabs along each of the 3 axes of one box)\n"
    "      --deflate N       NetCDF deflate level 0-9 (default 1)\n"
    "  -q, --quiet           no progress output\n"
    "      --help            display this help and exit\n"
    "      --version         output version information and exit\n"
    "\n"
    "The dataset is split by simulation (13:1:1 train/valid/test, seeded by --seed).\n"
    "Example: cosmovae-mkfields -o data/cmdsynth-64.nc --sims 40 --size 64 --seed 1\n";

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

int main(int argc, char **argv) {
    const char *out = NULL, *npy_dir = NULL, *params_file = NULL;
    long n_sims = -1, size = 64, seed = 0, per = CV_DATA_MAPS_PER_SIM, deflate = 1;
    int quiet = 0;
    cv_cli_init("cosmovae-mkfields", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_opt_str(argc, argv, &i, "-o", &out)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--output", &out)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--npy", &npy_dir)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--params", &params_file)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--sims", 1, 100000000L, &n_sims)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--size", 8, 512, &size)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--seed", 0, LONG_MAX, &seed)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--maps-per-sim", 1, 15, &per)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--deflate", 0, 9, &deflate)) ;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-') cv_cli_usage_error("unrecognized option '%s'", a);
        else cv_cli_usage_error("unexpected argument '%s' (the output is given with -o)", a);
    }
    if (!out && !npy_dir) cv_cli_usage_error("no output: give -o FILE.nc and/or --npy DIR");
    if (size & (size - 1)) cv_cli_usage_error("--size: %ld is not a power of two", size);

    cv_status st = CV_OK;
    double *params = NULL;
    int64_t n_rows = 0;
    if (params_file) {
        st = cv_data_read_params(params_file, CV_DATA_N_PARAM, &n_rows, &params);
        if (st != CV_OK) cv_cli_fail(st, NULL);
        if (n_sims < 0) n_sims = (long)n_rows;
        if (n_sims > n_rows)
            cv_cli_usage_error("--sims %ld: %s has only %lld rows", n_sims, params_file, (long long)n_rows);
        for (int64_t r = 0; r < n_sims; r++)
            for (int p = 0; p < CV_DATA_N_PARAM; p++) {
                double v = params[r * CV_DATA_N_PARAM + p];
                if (!(v > 0) || v > 10) {
                    cv_error(CV_ERR_FORMAT, "%s: row %lld: %s = %g is outside (0, 10]", params_file, (long long)r + 1,
                             cv_data_param_names[p], v);
                    cv_cli_fail(CV_ERR_FORMAT, NULL);
                }
            }
    } else {
        if (n_sims < 0) n_sims = 40;
        params = malloc((size_t)n_sims * CV_DATA_N_PARAM * sizeof *params);
        if (!params) { cv_error(CV_ERR_NOMEM, "out of memory"); cv_cli_fail(CV_ERR_NOMEM, NULL); }
        cv_fields_latin_hypercube(n_sims, (uint64_t)seed, params);
        /* CAMELS tables carry 5 decimals: round so that the .npy route
         * (parameters through the text table) gives identical datasets */
        for (int64_t i = 0; i < (int64_t)n_sims * CV_DATA_N_PARAM; i++) {
            char b[64];
            snprintf(b, sizeof b, "%.5f", params[i]);
            params[i] = strtod(b, NULL);
        }
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    const int64_t n_maps = (int64_t)n_sims * per;
    const size_t nn = (size_t)size * size;
    char history[4096];
    cv_data_history(argc, argv, history, sizeof history);
    cv_fields *gen = NULL;
    cv_writer *w = NULL;
    cv_npy_out *npy[CV_FIELDS_N_CHAN] = { NULL };
    float *maps = NULL;
    int8_t *split_sim = NULL, *split = NULL;
    int32_t *sim = NULL;
    double *mp = NULL;
    CV_TRY(cv_fields_new((int)size, &gen));
    maps = malloc((size_t)per * CV_FIELDS_N_CHAN * nn * sizeof(float));
    split_sim = malloc((size_t)n_sims);
    split = malloc((size_t)per);
    sim = malloc((size_t)per * sizeof(int32_t));
    mp = malloc((size_t)per * CV_DATA_N_PARAM * sizeof(double));
    if (!maps || !split_sim || !split || !sim || !mp) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    cv_data_split_assign(n_sims, (uint64_t)seed, split_sim);

    if (out) {
        cv_writer_opts o = cv_writer_opts_default();
        o.n_maps = n_maps;
        o.n_chan = CV_FIELDS_N_CHAN;
        o.height = o.width = (int)size;
        o.chan_names = cv_fields_chan_names;
        o.deflate = (int)deflate;
        char src[256];
        snprintf(src, sizeof src, "cosmovae-mkfields %s: synthetic CAMELS-like maps (not simulation data)", CV_VERSION);
        o.source = src;
        o.history = history;
        CV_TRY(cv_writer_new(out, &o, &w));
        char sb[32];
        snprintf(sb, sizeof sb, "%ld", seed);
        CV_TRY(cv_writer_set_attr(w, "seed", sb));
        CV_TRY(cv_writer_set_attr(w, "params_source", params_file ? params_file : "latin hypercube over the CAMELS LH priors"));
    }
    if (npy_dir) {
        if (mkdir(npy_dir, 0777) != 0 && errno != EEXIST) {
            st = cv_error(CV_ERR_IO, "%s: cannot create directory: %s", npy_dir, strerror(errno));
            goto fail;
        }
        int64_t shape[3] = { n_maps, size, size };
        for (int c = 0; c < CV_FIELDS_N_CHAN; c++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/Maps_%s_IllustrisTNG_LH_z=0.00.npy", npy_dir, cv_fields_chan_names[c]);
            CV_TRY(cv_npy_out_new(path, 3, shape, &npy[c]));
        }
    }

    cv_progress prog;
    cv_progress_begin(&prog, "generating", "maps", n_maps, quiet);
    for (int64_t s = 0; s < n_sims; s++) {
        if (interrupted) { st = cv_error(CV_ERR_INTERRUPT, "interrupted at simulation %lld", (long long)s); goto fail; }
        const double *p = params + s * CV_DATA_N_PARAM;
        for (int j = 0; j < per; j++) {
            CV_TRY(cv_fields_map(gen, p, (uint64_t)seed, s, j, maps + (size_t)j * CV_FIELDS_N_CHAN * nn));
            split[j] = split_sim[s];
            sim[j] = (int32_t)s;
            memcpy(mp + (size_t)j * CV_DATA_N_PARAM, p, CV_DATA_N_PARAM * sizeof(double));
        }
        const int64_t first = s * per;
        if (w) {
            CV_TRY(cv_writer_write(w, first, per, maps));
            CV_TRY(cv_writer_set_params(w, first, per, mp));
            CV_TRY(cv_writer_set_sim(w, first, per, sim));
            CV_TRY(cv_writer_set_split(w, first, per, split));
        }
        for (int c = 0; npy_dir && c < CV_FIELDS_N_CHAN; c++)
            for (int j = 0; j < per; j++)
                CV_TRY(cv_npy_out_write(npy[c], maps + ((size_t)j * CV_FIELDS_N_CHAN + c) * nn, (int64_t)nn));
        cv_progress_update(&prog, first + per, NULL);
    }
    cv_progress_end(&prog, n_maps);
    if (w) CV_TRY(cv_writer_finish(w));
    if (npy_dir) {
        for (int c = 0; c < CV_FIELDS_N_CHAN; c++) CV_TRY(cv_npy_out_finish(npy[c]));
        char path[4096];
        snprintf(path, sizeof path, "%s/params_LH_IllustrisTNG.txt", npy_dir);
        CV_TRY(cv_data_write_params(path, n_sims, CV_DATA_N_PARAM, NULL, params));
    }
fail:
    cv_writer_free(w);
    for (int c = 0; c < CV_FIELDS_N_CHAN; c++) cv_npy_out_free(npy[c]);
    cv_fields_free(gen);
    free(maps); free(split_sim); free(split); free(sim); free(mp); free(params);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    return 0;
}
