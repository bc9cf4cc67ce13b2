/* cosmovae-tsne -- t-SNE of latent codes (the paper's Figure 1): the 2-D
 * embedding as NetCDF (the latent-file format with dim = 2, parameters,
 * sim and split carried over) and CSV, and a PNG with one panel per
 * parameter, points coloured by the parameter's value with a colour bar.
 * Invariant: the three outputs are renamed into place only when all three
 * are complete. */
#include "prog/cv_cli.h"
#include "analysis/cv_latent.h"
#include "analysis/cv_plot.h"
#include "analysis/cv_tsne.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "Usage: cosmovae-tsne [OPTION]... LATENTS.nc -o DIR\n"
    "t-SNE of latent codes to two dimensions (Barnes-Hut, or exact for small sets),\n"
    "as scikit-learn computes it by default.  Writes DIR/tsne.nc (the embedding in\n"
    "the latent-file format, dim = 2, with params, sim and split), DIR/tsne.csv and\n"
    "DIR/tsne.png (one panel per parameter, points coloured by its value; A_*\n"
    "parameters on a log10 colour scale).\n"
    "\n"
    "  -o, --output DIR    output directory (created if needed)\n"
    "      --perplexity X  perplexity (default 30)\n"
    "      --iter N        iterations, 250 of them exaggerated (default 1000)\n"
    "      --theta X       Barnes-Hut angle (default 0.5)\n"
    "      --method M      auto (exact up to 500 points), bh or exact (default auto)\n"
    "      --init I        pca or random (default pca)\n"
    "      --seed N        seed of the random init (default 1)\n"
    "      --threads N     threads (default: online CPUs)\n"
    "      --split S       embed only the maps of split train, valid or test\n"
    "                      (default all)\n"
    "      --max-maps N    embed at most N maps, evenly spaced over the file\n"
    "      --trust         also compute the trustworthiness (k = 5) and print it\n"
    "      --cmap NAME     colour map: viridis (default), magma, inferno, cividis,\n"
    "                      gray, coolwarm\n"
    "  -q, --quiet         no progress output\n"
    "      --help          display this help and exit\n"
    "      --version       output version information and exit\n"
    "\n"
    "Example: cosmovae-tsne latents.nc -o tsne/\n";

typedef struct prog { cv_progress pr; } prog;

static int on_iter(void *user, int iter, int max_iter, double kl) {
    prog *p = user;
    char extra[64];
    snprintf(extra, sizeof extra, "KL %.4f", kl);
    (void)max_iter;
    cv_progress_update(&p->pr, iter, extra);
    return 0;
}

/* PLplot text for known parameter names. */
static const char *pretty(const char *name) {
    static const char *const map[][2] = {
        { "Omega_m", "#gW#dm#u" }, { "sigma_8", "#gs#d8#u" }, { "A_SN1", "A#dSN1#u" },
        { "A_AGN1", "A#dAGN1#u" }, { "A_SN2", "A#dSN2#u" }, { "A_AGN2", "A#dAGN2#u" },
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(name, map[i][0])) return map[i][1];
    return name;
}

static void fail_msg(const char *what, const char *path) {
    fprintf(stderr, "cosmovae-tsne: %s: %s: %s\n", path, what, strerror(errno));
    exit(1);
}

/* The command line, checked: usage errors exit 2. */
typedef struct tsne_args {
    const char  *out_dir, *in, *split_s;
    long         max_maps;
    double       perp;
    int          quiet, trust, split, cmap;
    cv_tsne_opts o;
} tsne_args;

static void parse_args(int argc, char **argv, tsne_args *out) {
    const char *out_dir = NULL, *in = NULL, *method = "auto", *init = "pca", *split_s = "all", *cmap_s = "viridis";
    long iters = 1000, seed = 1, threads = 0, max_maps = 0;
    double perp = 30, theta = 0.5;
    int quiet = 0, trust = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) cv_cli_usage_error("option '-o' requires a value");
            out_dir = argv[++i];
        } else if (cv_cli_opt_str(argc, argv, &i, "--output", &out_dir)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--perplexity", 1e-3, 1e6, &perp)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--iter", 1, 1000000, &iters)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--theta", 0, 10, &theta)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--method", &method)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--init", &init)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--seed", 0, 2147483647L, &seed)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--threads", 1, 64, &threads)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--split", &split_s)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--max-maps", 2, 1L << 40, &max_maps)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--cmap", &cmap_s)) ;
        else if (!strcmp(a, "--trust")) trust = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (in) cv_cli_usage_error("one latent file only (got '%s' and '%s')", in, a);
        else in = a;
    }
    if (!in) cv_cli_usage_error("no input: give a latent file");
    if (!out_dir) cv_cli_usage_error("no output directory: use -o DIR");
    cv_tsne_opts o = cv_tsne_opts_default();
    if (!strcmp(method, "auto")) o.method = CV_TSNE_AUTO;
    else if (!strcmp(method, "bh")) o.method = CV_TSNE_BH;
    else if (!strcmp(method, "exact")) o.method = CV_TSNE_EXACT;
    else cv_cli_usage_error("--method: '%s' is not auto, bh or exact", method);
    if (!strcmp(init, "pca")) o.init = CV_TSNE_INIT_PCA;
    else if (!strcmp(init, "random")) o.init = CV_TSNE_INIT_RANDOM;
    else cv_cli_usage_error("--init: '%s' is not pca or random", init);
    int split = -1;
    if (!strcmp(split_s, "train")) split = 0;
    else if (!strcmp(split_s, "valid")) split = 1;
    else if (!strcmp(split_s, "test")) split = 2;
    else if (strcmp(split_s, "all")) cv_cli_usage_error("--split: '%s' is not train, valid, test or all", split_s);
    int cmap = cv_cmap_parse(cmap_s);
    if (cmap < 0) cv_cli_usage_error("--cmap: unknown colour map '%s'", cmap_s);
    o.perplexity = perp; o.max_iter = (int)iters; o.theta = theta; o.seed = (uint64_t)seed; o.n_threads = (int)threads;
    if (o.exag_iters > o.max_iter) o.exag_iters = o.max_iter;
    out->out_dir = out_dir; out->in = in; out->split_s = split_s; out->max_maps = max_maps; out->perp = perp;
    out->quiet = quiet; out->trust = trust; out->split = split; out->cmap = cmap; out->o = o;
}

int main(int argc, char **argv) {
    cv_cli_init("cosmovae-tsne", usage_text);
    tsne_args args;
    parse_args(argc, argv, &args);
    const char *out_dir = args.out_dir, *in = args.in, *split_s = args.split_s;
    long max_maps = args.max_maps;
    double perp = args.perp;
    int quiet = args.quiet, trust = args.trust, split = args.split, cmap = args.cmap;
    cv_tsne_opts o = args.o;

    cv_latent *lat = NULL;
    cv_status st = cv_latent_read(in, CV_LATENT_NEED_PARAMS | (split >= 0 ? CV_LATENT_NEED_SPLIT : 0), &lat);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    /* the selected maps */
    int64_t n_sel = cv_latent_split_count(lat, split);
    if (n_sel == 0) { fprintf(stderr, "cosmovae-tsne: %s: the %s split has no maps\n", in, split_s); return 1; }
    int64_t n = max_maps > 0 && n_sel > max_maps ? max_maps : n_sel;
    if (n < 2) { fprintf(stderr, "cosmovae-tsne: %s: %lld map(s) selected; t-SNE needs at least 2\n", in, (long long)n); return 1; }
    int D = lat->n_dim, P = lat->n_param;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    float *X = malloc((size_t)n * D * sizeof *X), *Y = malloc((size_t)n * 2 * sizeof *Y);
    if (!ids || !X || !Y) { fprintf(stderr, "cosmovae-tsne: out of memory\n"); return 1; }
    int64_t *sel = malloc((size_t)n_sel * sizeof *sel);
    if (!sel) { fprintf(stderr, "cosmovae-tsne: out of memory\n"); return 1; }
    for (int64_t m = 0, r = 0; m < lat->n_map; m++)
        if (split < 0 || lat->split[m] == split) sel[r++] = m;
    for (int64_t k = 0; k < n; k++) {           /* evenly spaced over the selection */
        ids[k] = sel[k * n_sel / n];
        memcpy(X + k * D, lat->z + ids[k] * D, D * sizeof *X);
    }
    free(sel);
    if (!(perp < n - 1)) {
        fprintf(stderr, "cosmovae-tsne: %s: perplexity %g needs more than %g maps (%lld selected); lower --perplexity\n", in, perp,
                perp + 1, (long long)n);
        return 1;
    }
    struct stat sb;
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) fail_msg("cannot create the output directory", out_dir);
    if (stat(out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) { fprintf(stderr, "cosmovae-tsne: %s: not a directory\n", out_dir); return 1; }

    prog pg;
    cv_progress_begin(&pg.pr, "t-SNE", "iterations", o.max_iter, quiet);
    cv_tsne_info info;
    double t0 = cv_now();
    st = cv_tsne_run(X, n, D, &o, Y, &info, on_iter, &pg);
    cv_progress_end(&pg.pr, info.n_iter);
    double el = cv_now() - t0;
    if (st != CV_OK) cv_cli_fail(st, in);
    double tw = NAN;
    if (trust && n >= 12) {
        if ((st = cv_tsne_trustworthiness(X, n, D, Y, 2, 5, &tw)) != CV_OK) cv_cli_fail(st, NULL);
    }

    /* outputs under temporary names */
    char nc[4096], csv[4096], png[4096], tnc[4200], tcsv[4200], tpng[4200];
    snprintf(nc, sizeof nc, "%s/tsne.nc", out_dir);
    snprintf(csv, sizeof csv, "%s/tsne.csv", out_dir);
    snprintf(png, sizeof png, "%s/tsne.png", out_dir);
    cv_out_tmpname(nc, tnc, sizeof tnc);
    cv_out_tmpname(csv, tcsv, sizeof tcsv);
    cv_out_tmpname(png, tpng, sizeof tpng);
    cv_latent *emb = NULL;
    if ((st = cv_latent_new(n, 2, P, &emb)) != CV_OK) cv_cli_fail(st, NULL);
    for (int64_t k = 0; k < n; k++) {
        int64_t m = ids[k];
        emb->z[2 * k] = Y[2 * k]; emb->z[2 * k + 1] = Y[2 * k + 1];
        for (int q = 0; q < P; q++) emb->params[k * P + q] = lat->params[m * P + q];
        emb->sim[k] = lat->sim ? lat->sim[m] : -1;
        emb->split[k] = lat->split ? lat->split[m] : 0;
    }
    for (int q = 0; q < P; q++) memcpy(emb->param_name[q], lat->param_name[q], CV_LATENT_NAME_MAX);
    snprintf(emb->source, sizeof emb->source, "%.255s", in);
    snprintf(emb->model, sizeof emb->model, "t-SNE, perplexity %g, %d iterations", perp, info.n_iter);
    char history[4096];
    cv_cli_history(argc, argv, history, sizeof history);
    if ((st = cv_latent_write(tnc, emb, history)) != CV_OK) cv_cli_fail(st, NULL);

    FILE *f = fopen(tcsv, "w");
    if (!f) { cv_out_abort(tnc); fail_msg("cannot create", csv); }
    fprintf(f, "map,x,y,sim,split");
    for (int q = 0; q < P; q++) fprintf(f, ",%s", lat->param_name[q]);
    fputc('\n', f);
    for (int64_t k = 0; k < n; k++) {
        fprintf(f, "%lld,%.6g,%.6g,%d,%d", (long long)ids[k], Y[2 * k], Y[2 * k + 1], emb->sim[k], emb->split[k]);
        for (int q = 0; q < P; q++) fprintf(f, ",%.9g", emb->params[k * P + q]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { cv_out_abort(tnc); cv_out_abort(tcsv); fprintf(stderr, "cosmovae-tsne: %s: write error\n", csv); return 1; }

    int cols = P < 3 ? P : 3, rows = (P + 2) / 3;
    cv_plot *fig = NULL;
    double *c = malloc((size_t)n * sizeof *c);
    float *yx = malloc((size_t)n * sizeof *yx), *yy = malloc((size_t)n * sizeof *yy);
    if (!c || !yx || !yy) { fprintf(stderr, "cosmovae-tsne: out of memory\n"); return 1; }
    for (int64_t k = 0; k < n; k++) { yx[k] = Y[2 * k]; yy[k] = Y[2 * k + 1]; }
    st = cv_plot_open(tpng, 460 * cols, 400 * rows, cols, rows, &fig);
    for (int q = 0; st == CV_OK && q < P; q++) {
        int logc = !strncmp(lat->param_name[q], "A_", 2);
        for (int64_t k = 0; k < n; k++) {
            double v = emb->params[k * P + q];
            c[k] = logc ? (v > 0 ? log10(v) : NAN) : v;
        }
        char lab[160];
        snprintf(lab, sizeof lab, logc ? "log#d10#u %s" : "%s", pretty(lat->param_name[q]));
        st = cv_plot_scatter(fig, yx, yy, c, n, 0, 0, cmap, pretty(lat->param_name[q]), "t-SNE 1", "t-SNE 2", lab);
    }
    if (st == CV_OK) st = cv_plot_close(fig);
    else cv_plot_abort(fig);
    if (st != CV_OK) { cv_out_abort(tnc); cv_out_abort(tcsv); cv_cli_fail(st, png); }
    if ((st = cv_out_commit(tnc, nc)) != CV_OK || (st = cv_out_commit(tcsv, csv)) != CV_OK || (st = cv_out_commit(tpng, png)) != CV_OK)
        cv_cli_fail(st, NULL);

    printf("t-SNE of %s: %lld maps x %d dims -> 2 (%s, perplexity %g, %d neighbours), %d iterations, KL %.4f, %.1f s\n", in,
           (long long)n, D, info.method == CV_TSNE_EXACT ? "exact" : "Barnes-Hut", perp, info.n_neighbors, info.n_iter, info.kl, el);
    if (trust) {
        if (isfinite(tw)) printf("trustworthiness (k = 5): %.4f\n", tw);
        else printf("trustworthiness: too few maps (needs at least 12)\n");
    }
    printf("wrote %s, %s and %s\n", nc, csv, png);
    free(c); free(yx); free(yy); free(ids); free(X); free(Y);
    cv_latent_free(emb);
    cv_latent_free(lat);
    return 0;
}
