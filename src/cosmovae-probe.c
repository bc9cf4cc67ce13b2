/* cosmovae-probe -- the paper's linear test of the latent codes: one dense
 * layer without activation, trained with Adam (lr 0.0025, 200 epochs) on
 * the train split, the epoch chosen on the valid split, R^2 per parameter
 * on the test split; the closed-form least-squares R^2 beside it.  Reads
 * any latent file (cv_latent.h); prints a table and writes a CSV.
 * Invariant: the CSV appears only complete (temporary name, then rename). */
#include "cv_cli.h"
#include "cv_latent.h"
#include "cv_probe.h"

#include <errno.h>
#include <string.h>

static const char *usage_text =
    "Usage: cosmovae-probe [OPTION]... LATENTS.nc -o PROBE.csv\n"
    "Linear probe of latent codes: one dense layer without activation, latent ->\n"
    "simulation parameters, trained with Adam on the train split; the weights of\n"
    "the epoch with the lowest valid loss are scored by R^2 per parameter on the\n"
    "test split.  Latents and targets are standardised with train statistics; the\n"
    "parameters named A_* (log-uniform priors) are regressed in log10 unless\n"
    "--linear.  The closed-form least-squares R^2 is printed beside it.\n"
    "\n"
    "  -o, --output FILE  CSV to write: param,r2,r2_lstsq\n"
    "      --epochs N     training epochs (default 200)\n"
    "      --lr X         Adam learning rate (default 0.0025)\n"
    "      --batch N      minibatch size (default 32)\n"
    "      --seed N       weight init and shuffling (default 1)\n"
    "      --linear       regress every parameter linearly\n"
    "  -q, --quiet        no progress output\n"
    "      --help         display this help and exit\n"
    "      --version      output version information and exit\n"
    "\n"
    "The paper (Omega_m, sigma_8, A_SN1, A_AGN1, A_SN2, A_AGN2):\n"
    "R^2 = 0.93, 0.64, 0.72, -0.01, 0.85, 0.20.\n"
    "\n"
    "Example: cosmovae-probe latents.nc -o probe.csv\n";

typedef struct prog { cv_progress pr; } prog;

static void on_epoch(void *user, int epoch, double train, double valid) {
    prog *p = user;
    char extra[96];
    snprintf(extra, sizeof extra, "train %.4f valid %.4f", train, valid);
    cv_progress_update(&p->pr, epoch, extra);
}

int main(int argc, char **argv) {
    const char *out = NULL, *in = NULL;
    long epochs = 200, batch = 32, seed = 1;
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
    cv_probe_opts o = cv_probe_opts_default();
    o.epochs = (int)epochs; o.batch = (int)batch; o.lr = lr; o.seed = (uint64_t)seed; o.log_a = !linear;
    prog p;
    cv_progress_begin(&p.pr, "training the probe", "epochs", epochs, quiet);
    cv_probe_result r;
    st = cv_probe_run(lat, &o, &r, on_epoch, &p);
    cv_progress_end(&p.pr, epochs);
    if (st != CV_OK) cv_cli_fail(st, in);

    char tmp[4200];
    cv_out_tmpname(out, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "cosmovae-probe: %s: cannot create: %s\n", out, strerror(errno)); return 1; }
    fprintf(f, "param,r2,r2_lstsq\n");
    for (int q = 0; q < r.n_param; q++) fprintf(f, "%s,%.6f,%.6f\n", lat->param_name[q], r.r2[q], r.r2_lstsq[q]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { cv_out_abort(tmp); fprintf(stderr, "cosmovae-probe: %s: write error\n", out); return 1; }
    if ((st = cv_out_commit(tmp, out)) != CV_OK) cv_cli_fail(st, NULL);

    printf("linear probe of %s: %d-dim latents; %lld train, %lld valid, %lld test maps\n", in, lat->n_dim, (long long)r.n_train,
           (long long)r.n_valid, (long long)r.n_test);
    printf("Adam lr %g, batch %d, %d epochs; best valid epoch %d (valid MSE %.4f, standardised)%s\n", o.lr, o.batch, o.epochs,
           r.best_epoch, r.best_valid_mse, r.ridge > 0 ? "; least squares needed a ridge" : "");
    printf("\n  %-12s %-8s %12s %16s\n", "parameter", "target", "R^2 (probe)", "R^2 (lstsq)");
    for (int q = 0; q < r.n_param; q++)
        printf("  %-12s %-8s %12.3f %16.3f\n", lat->param_name[q], r.is_log[q] ? "log10" : "linear", r.r2[q], r.r2_lstsq[q]);
    printf("\nwrote %s\n", out);
    cv_probe_result_free(&r);
    cv_latent_free(lat);
    return 0;
}
