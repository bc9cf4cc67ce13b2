/* cosmovae-probe -- the paper's linear test of the latent codes: one dense
 * layer without activation, trained with Adam (lr 0.0025, 200 epochs) on
 * the train split, the epoch chosen on the valid split, R^2 per parameter
 * on the test split; the closed-form least-squares R^2 beside it (when D
 * allows), each with a bootstrap over the test simulations.  Reads any
 * latent file (cv_latent.h); prints a table and writes a CSV.
 * Invariant: the CSV appears only complete (temporary name, then rename). */
#include "prog/cv_cli.h"
#include "analysis/cv_features.h"
#include "analysis/cv_latent.h"
#include "analysis/cv_probe.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static const char *usage_text =
    "Usage: cosmovae-probe [OPTION]... LATENTS.nc -o PROBE.csv\n"
    "Linear probe of latent codes: one dense layer without activation, latent ->\n"
    "simulation parameters, trained with Adam on the train split; the weights of\n"
    "the epoch with the lowest valid loss are scored by R^2 per parameter on the\n"
    "test split.  Latents and targets are standardised with train statistics; the\n"
    "parameters named A_* (log-uniform priors) are regressed in log10 unless\n"
    "--linear.  Beside it: the closed-form least squares, unless D >= the train\n"
    "maps (singular) or D > --lstsq-max-dim; and a ridge regression whose\n"
    "strength (alpha = 1e-4 .. 1e3 in half decades, times the train maps) is\n"
    "chosen per parameter on the valid split, unless D > --lstsq-max-dim.  Each\n"
    "R^2 comes with a bootstrap over the test simulations (all maps of a drawn\n"
    "simulation together): its 68% interval (and, in the CSV, its standard\n"
    "deviation).\n"
    "Fewer than 10 test simulations draw a warning: R^2 then means little.\n"
    "\n"
    "  -o, --output FILE  CSV to write: param,r2,r2_lstsq,r2_sd,r2_lo68,r2_hi68,\n"
    "                     r2_lstsq_sd,r2_lstsq_lo68,r2_lstsq_hi68 (NaN: not\n"
    "                     computed); with --baseline also base_r2,\n"
    "                     base_r2_lstsq,base_r2_lo68,base_r2_hi68; then\n"
    "                     r2_ridge,r2_ridge_lo68,r2_ridge_hi68,ridge_alpha\n"
    "                     (and base_ the same with --baseline)\n"
    "      --epochs N     training epochs (default 200)\n"
    "      --lr X         Adam learning rate (default 0.0025)\n"
    "      --batch N      minibatch size (default 32)\n"
    "      --seed N       weight init, shuffling and bootstrap (default 1)\n"
    "      --boot N       bootstrap resamples (default 1000; 0: none)\n"
    "      --lstsq-max-dim N  largest D for the closed form (default 4096)\n"
    "      --linear       regress every parameter linearly\n"
    "      --baseline FILE  probe the classical baseline too and print it beside\n"
    "                     the latents: FILE is a cosmovae-features file, or a\n"
    "                     dataset whose features are then computed (on the\n"
    "                     device); its maps must be the latents' maps (same\n"
    "                     count, simulations and splits; same size and box)\n"
    "      --device SPEC  OpenCL device for --baseline DATA.nc\n"
    "  -q, --quiet        no progress output\n"
    "      --help         display this help and exit\n"
    "      --version      output version information and exit\n"
    "\n"
    "The paper (Omega_m, sigma_8, A_SN1, A_AGN1, A_SN2, A_AGN2):\n"
    "R^2 = 0.93, 0.64, 0.72, -0.01, 0.85, 0.20.\n"
    "\n"
    "Example: cosmovae-probe latents.nc -o probe.csv\n"
    "         cosmovae-probe latents.nc --baseline data.nc -o probe.csv\n";

typedef struct prog { cv_progress pr; } prog;

static void on_epoch(void *user, int epoch, double train, double valid) {
    prog *p = user;
    char extra[96];
    snprintf(extra, sizeof extra, "train %.4f valid %.4f", train, valid);
    cv_progress_update(&p->pr, epoch, extra);
}

/* A CSV number; NaN (not computed) as "NaN", which numpy, pandas and R read. */
static void csv_num(FILE *f, double x) {
    if (isnan(x)) fputs(",NaN", f);
    else fprintf(f, ",%.6f", x);
}

/* "0.912 [0.899, 0.925]" (the 68 % interval), or the value alone without
 * a bootstrap.  The standard deviation goes to the CSV only: with few test
 * simulations a resample whose simulations have close parameter values
 * has a huge negative R^2, and the standard deviation follows such tails. */
static void cell(char *buf, size_t n, int have, double r2, double lo, double hi) {
    if (!have) snprintf(buf, n, "%s", "skipped");
    else if (isnan(lo)) snprintf(buf, n, "%.3f", r2);
    else snprintf(buf, n, "%.3f [%.3f, %.3f]", r2, lo, hi);
}

/* The baseline: a features (latent-format) file, or a dataset whose
 * features are computed here. */
static cv_latent *load_baseline(const char *path, const char *device, int quiet) {
    char fmt[64];
    cv_status st = cv_latent_file_format(path, fmt, sizeof fmt);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    cv_latent *b = NULL;
    if (strcmp(fmt, CV_DATA_FORMAT)) {
        if ((st = cv_latent_read(path, CV_LATENT_NEED_PARAMS | CV_LATENT_NEED_SPLIT, &b)) != CV_OK) cv_cli_fail(st, NULL);
        return b;
    }
    cv_dataset *ds = NULL;
    if ((st = cv_dataset_open(path, &ds)) != CV_OK) cv_cli_fail(st, NULL);
    cv_ctx *ctx = cv_cli_ctx(device);
    cv_progress pr;
    cv_progress_begin(&pr, "baseline features", "maps", cv_dataset_n_maps(ds), quiet);
    st = cv_features_dataset(ctx, ds, 0, &b, NULL, NULL);
    cv_progress_end(&pr, cv_dataset_n_maps(ds));
    if (st != CV_OK) cv_cli_fail(st, NULL);
    cv_ctx_free(ctx);
    cv_dataset_free(ds);
    return b;
}

/* The baseline must describe the latents' maps: same geometry (when both
 * files know it), count, simulations, splits and parameters. */
static void check_baseline(const char *in, const cv_latent *lat, const char *bpath, const cv_latent *b) {
    if (lat->map_height && b->map_height && (lat->map_height != b->map_height || lat->map_width != b->map_width))
        cv_cli_fail(cv_error(CV_ERR_ARG, "--baseline %s: maps of %d x %d pixels, but %s codes maps of %d x %d (the training data's): "
                             "compute the baseline on the same maps", bpath, b->map_height, b->map_width, in, lat->map_height,
                             lat->map_width), NULL);
    if (lat->box_size > 0 && b->box_size > 0 && fabs(lat->box_size / b->box_size - 1) > 1e-9)
        cv_cli_fail(cv_error(CV_ERR_ARG, "--baseline %s: box of %g Mpc/h, but %s codes maps of a %g Mpc/h box: compute the "
                             "baseline on the same maps", bpath, b->box_size, in, lat->box_size), NULL);
    if (b->n_map != lat->n_map)
        cv_cli_fail(cv_error(CV_ERR_ARG, "--baseline %s: %lld maps, but %s has %lld: the baseline must describe the same maps",
                             bpath, (long long)b->n_map, in, (long long)lat->n_map), NULL);
    if (b->n_param != lat->n_param)
        cv_cli_fail(cv_error(CV_ERR_ARG, "--baseline %s: %d parameters, %s has %d", bpath, b->n_param, in, lat->n_param), NULL);
    for (int64_t m = 0; m < lat->n_map; m++) {
        int same = b->split[m] == lat->split[m] && (!b->sim || !lat->sim || b->sim[m] == lat->sim[m]);
        for (int q = 0; q < lat->n_param && same; q++)
            same = b->params[m * lat->n_param + q] == lat->params[m * lat->n_param + q];
        if (!same)
            cv_cli_fail(cv_error(CV_ERR_ARG, "--baseline %s: map %lld has another simulation, split or parameters than in %s: "
                                 "the baseline must describe the same maps in the same order", bpath, (long long)m, in), NULL);
    }
}

int main(int argc, char **argv) {
    const char *out = NULL, *in = NULL, *base = NULL, *device = NULL;
    long epochs = 200, batch = 32, seed = 1, n_boot = 1000, lstsq_max = 4096;
    double lr = 0.0025;
    int linear = 0, quiet = 0;
    cv_cli_init("cosmovae-probe", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) cv_cli_usage_error("option '-o' requires a value");
            out = argv[++i];
        } else if (cv_cli_opt_str(argc, argv, &i, "--output", &out)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--epochs", 1, 1000000, &epochs)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 1 << 20, &batch)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--seed", 0, 2147483647L, &seed)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--lr", 1e-12, 10, &lr)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--boot", 0, 1000000, &n_boot)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--lstsq-max-dim", 0, 65536, &lstsq_max)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--baseline", &base)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (!strcmp(a, "--linear")) linear = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (in) cv_cli_usage_error("one latent file only (got '%s' and '%s')", in, a);
        else in = a;
    }
    if (!in) cv_cli_usage_error("no input: give a latent file");
    if (!out) cv_cli_usage_error("no output: use -o PROBE.csv");

    cv_latent *lat = NULL;
    cv_status st = cv_latent_read(in, CV_LATENT_NEED_PARAMS | CV_LATENT_NEED_SPLIT, &lat);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    cv_latent *bl = NULL;
    if (base) {
        bl = load_baseline(base, device, quiet);
        check_baseline(in, lat, base, bl);
    }
    cv_probe_opts o = cv_probe_opts_default();
    o.epochs = (int)epochs; o.batch = (int)batch; o.lr = lr; o.seed = (uint64_t)seed; o.log_a = !linear;
    o.n_boot = (int)n_boot; o.lstsq_max_dim = (int)lstsq_max;
    prog p;
    cv_progress_begin(&p.pr, "training the probe", "epochs", epochs, quiet);
    cv_probe_result r;
    st = cv_probe_run(lat, &o, &r, on_epoch, &p);
    cv_progress_end(&p.pr, epochs);
    if (st != CV_OK) cv_cli_fail(st, in);
    cv_probe_result rb;
    memset(&rb, 0, sizeof rb);
    if (bl) {
        cv_progress_begin(&p.pr, "training the baseline's probe", "epochs", epochs, quiet);
        st = cv_probe_run(bl, &o, &rb, on_epoch, &p);
        cv_progress_end(&p.pr, epochs);
        if (st != CV_OK) cv_cli_fail(st, base);
    }
    if (!r.boot_by_map && r.n_test_sims == 1)
        cv_cli_warn("warning: %s: the test split holds only 1 simulation (%lld maps): R^2 compares maps of one "
                    "simulation and means nothing (where a parameter has one value there, R^2 is 0 by convention); "
                    "test on at least %d simulations", in, (long long)r.n_test, CV_PROBE_FEW_SIMS);
    else if (!r.boot_by_map && r.n_test_sims < CV_PROBE_FEW_SIMS)
        cv_cli_warn("warning: %s: the test split holds only %lld simulations (%lld maps): R^2 is dominated by how far "
                    "apart their parameter values happen to lie, and one simulation can swing it; see the bootstrap interval, "
                    "or test on at least %d simulations", in, (long long)r.n_test_sims, (long long)r.n_test, CV_PROBE_FEW_SIMS);
    if (r.n_boot > 0 && r.n_boot_used < 2)
        cv_cli_warn("warning: %s: no uncertainty: %d of %d bootstrap resamples had more than one value of every parameter",
                    in, r.n_boot_used, r.n_boot);

    char tmp[4200];
    cv_out_tmpname(out, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "cosmovae-probe: %s: cannot create: %s\n", out, strerror(errno)); return 1; }
    /* the first three columns as before; then the bootstrap's */
    fprintf(f, "param,r2,r2_lstsq,r2_sd,r2_lo68,r2_hi68,r2_lstsq_sd,r2_lstsq_lo68,r2_lstsq_hi68%s,"
            "r2_ridge,r2_ridge_lo68,r2_ridge_hi68,ridge_alpha%s\n",
            bl ? ",base_r2,base_r2_lstsq,base_r2_lo68,base_r2_hi68" : "",
            bl ? ",base_r2_ridge,base_r2_ridge_lo68,base_r2_ridge_hi68,base_ridge_alpha" : "");
    for (int q = 0; q < r.n_param; q++) {
        fputs(lat->param_name[q], f);
        double v[8] = { r.r2[q], r.r2_lstsq[q], r.r2_sd[q], r.r2_lo[q], r.r2_hi[q], r.r2_lstsq_sd[q], r.r2_lstsq_lo[q],
                        r.r2_lstsq_hi[q] };
        for (int k = 0; k < 8; k++) csv_num(f, v[k]);
        if (bl) {
            double w[4] = { rb.r2[q], rb.r2_lstsq[q], rb.r2_lo[q], rb.r2_hi[q] };
            for (int k = 0; k < 4; k++) csv_num(f, w[k]);
        }
        double u[4] = { r.r2_ridge[q], r.r2_ridge_lo[q], r.r2_ridge_hi[q], r.ridge_alpha[q] };
        for (int k = 0; k < 4; k++) csv_num(f, u[k]);
        if (bl) {
            double w[4] = { rb.r2_ridge[q], rb.r2_ridge_lo[q], rb.r2_ridge_hi[q], rb.ridge_alpha[q] };
            for (int k = 0; k < 4; k++) csv_num(f, w[k]);
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { cv_out_abort(tmp); fprintf(stderr, "cosmovae-probe: %s: write error\n", out); return 1; }
    if ((st = cv_out_commit(tmp, out)) != CV_OK) cv_cli_fail(st, NULL);

    printf("linear probe of %s: %d-dim latents; %lld train, %lld valid, %lld test maps\n", in, lat->n_dim, (long long)r.n_train,
           (long long)r.n_valid, (long long)r.n_test);
    printf("Adam lr %g, batch %d, %d epochs; best valid epoch %d (valid MSE %.4f, standardised)%s\n", o.lr, o.batch, o.epochs,
           r.best_epoch, r.best_valid_mse, r.ridge > 0 ? "; least squares needed a ridge" : "");
    if (!r.has_lstsq) printf("%s\n", r.lstsq_note);
    if (r.n_boot > 0)
        printf("uncertainty: bootstrap over the %lld test %s, %d resamples (seed %ld, %d with an R^2): "
               "R^2 [68%% interval]; standard deviations in the CSV\n", (long long)r.n_test_sims,
               r.boot_by_map ? "maps (the file has no sim variable)" : r.n_test_sims == 1 ? "simulation" : "simulations",
               r.n_boot, seed, r.n_boot_used);
    if (bl) printf("baseline: %s (%d numbers per map: %s)\n", base, bl->n_dim, bl->model);
    if (r.has_ridge) printf("ridge: strength per parameter chosen on the valid split (alpha in the CSV)\n");
    if (!bl) printf("\n  %-12s %-8s %-28s %-28s %s\n", "parameter", "target", "R^2 (probe)", "R^2 (lstsq)", "R^2 (ridge)");
    else printf("\n  %-12s %-8s %-28s %-28s %-8s %-9s %-8s %s\n", "parameter", "target", "R^2 latent (probe)",
                "R^2 baseline (probe)", "lstsq", "base lstsq", "ridge", "base ridge");
    for (int q = 0; q < r.n_param; q++) {
        char a[96], b[96], e[96];
        cell(a, sizeof a, 1, r.r2[q], r.r2_lo[q], r.r2_hi[q]);
        if (!bl) {
            cell(b, sizeof b, r.has_lstsq, r.r2_lstsq[q], r.r2_lstsq_lo[q], r.r2_lstsq_hi[q]);
            cell(e, sizeof e, r.has_ridge, r.r2_ridge[q], r.r2_ridge_lo[q], r.r2_ridge_hi[q]);
            printf("  %-12s %-8s %-28s %-28s %s\n", lat->param_name[q], r.is_log[q] ? "log10" : "linear", a, b, e);
        } else {
            char c[32], d[32], g[32], h[32];
            cell(b, sizeof b, 1, rb.r2[q], rb.r2_lo[q], rb.r2_hi[q]);
            cell(c, sizeof c, r.has_lstsq, r.r2_lstsq[q], NAN, NAN);
            cell(d, sizeof d, rb.has_lstsq, rb.r2_lstsq[q], NAN, NAN);
            cell(g, sizeof g, r.has_ridge, r.r2_ridge[q], NAN, NAN);
            cell(h, sizeof h, rb.has_ridge, rb.r2_ridge[q], NAN, NAN);
            printf("  %-12s %-8s %-28s %-28s %-8s %-9s %-8s %s%s\n", lat->param_name[q], r.is_log[q] ? "log10" : "linear", a, b,
                   c, d, g, h, rb.r2[q] > 0.2 && r.r2[q] < rb.r2[q] ? "   latent below baseline" : "");
        }
    }
    printf("\nwrote %s\n", out);
    cv_probe_result_free(&r);
    if (bl) cv_probe_result_free(&rb);
    cv_latent_free(bl);
    cv_latent_free(lat);
    return 0;
}
