/* cosmovae-pk -- auto-power spectra of every field and cross-power spectra
 * of every pair of fields for one or two sets of maps (e.g. real test maps
 * and generated maps): mean and standard deviation over maps per k shell,
 * a CSV table, a figure like the paper's Figure 3, and the largest k up to
 * which the two means agree.  Spectra are computed on the OpenCL device
 * (cv_pk: clFFT), in the Pylians Pk_plane convention.
 * Invariant: both output files are written under temporary names and
 * renamed only when both are complete. */
#include "prog/cv_cli.h"
#include "dataset/cv_data.h"
#include "analysis/cv_pk.h"
#include "analysis/cv_plot.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "Usage: cosmovae-pk [OPTION]... A.nc [B.nc] -o DIR\n"
    "Power spectra of one or two sets of maps (cosmovae datasets): the auto-spectrum\n"
    "of every field and the cross-spectrum of every pair of fields, mean and standard\n"
    "deviation over maps per k shell (Pylians Pk_plane/XPk_plane convention, FFTs\n"
    "with clFFT on the OpenCL device).  With two sets, reports per spectrum the\n"
    "largest k up to which the two means agree within the tolerance.\n"
    "\n"
    "  -o, --output DIR   output directory (created if needed): pk.csv, pk.png\n"
    "      --delta MODE   the field of a map x: log10 (default: log10 x minus its\n"
    "                     mean), overdensity (x / mean - 1) or linear (x - mean)\n"
    "      --split S      maps of A to use: train, valid, test or all (default: the\n"
    "                     test split if A has test maps, as the paper compares,\n"
    "                     else all maps)\n"
    "      --split-b S    maps of B to use (default: likewise for B; generated\n"
    "                     samples from cosmovae-sample are all test maps)\n"
    "      --max-maps N   use at most the first N selected maps of each set\n"
    "      --tol X        relative tolerance of the agreement scale (default 0.1)\n"
    "      --label-a TXT  legend of A (default 'real'); --label-b TXT (default\n"
    "                     'generated')\n"
    "      --batch N      maps per FFT batch (default: by device memory)\n"
    "      --device SPEC  OpenCL device: index, or name substring[:index]\n"
    "  -q, --quiet        no progress output\n"
    "      --help         display this help and exit\n"
    "      --version      output version information and exit\n"
    "\n"
    "pk.csv has a header row and one row per (spectrum, shell):\n"
    "  spectrum,k,nmodes,mean_a,std_a[,mean_b,std_b]\n"
    "with spectrum names like Mgas, HI, B, Mgas-HI; k in h/Mpc, P in (Mpc/h)^2.\n"
    "\n"
    "The summary on standard output names the split used for each set.\n"
    "\n"
    "Example: cosmovae-pk data.nc samples/samples.nc -o pk/\n";

typedef struct map_set {
    const char  *path;
    cv_dataset  *ds;
    int          split;       /* CV_SPLIT_ALL, 0..2, or SPLIT_AUTO until resolved */
    int          chosen;      /* split given by an option (not the default) */
    int64_t      n;           /* maps used */
    cv_pk_stats  stats;
} map_set;

/* The default split: the test split when the file has test maps (the
 * comparison the paper makes), else every map. */
#define SPLIT_AUTO (-2)

static int parse_split(const char *opt, const char *s) {
    if (!strcmp(s, "all")) return CV_SPLIT_ALL;
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, cv_split_name(i))) return i;
    cv_cli_usage_error("%s: '%s' is not train, valid, test or all", opt, s);
}

/* Spectra of the selected maps of one set, accumulated into set->stats. */
static void run_set(map_set *s, cv_pk *pk, int64_t max_maps, int quiet, const char *what) {
    const cv_pk_geom *g = cv_pk_geometry(pk);
    int C = cv_dataset_n_chan(s->ds), S = cv_pk_n_spec(C), B = cv_pk_batch(pk);
    size_t per = (size_t)C * g->n * g->n;
    int64_t total = cv_dataset_split_count(s->ds, s->split);
    if (max_maps > 0 && total > max_maps) total = max_maps;
    if (total == 0) {
        fprintf(stderr, "%s: %s: the %s split has no maps\n", cv_cli_prog(), s->path, cv_split_name(s->split));
        exit(1);
    }
    float *maps = malloc((size_t)B * per * sizeof *maps), *out = malloc((size_t)B * S * g->n_shell * sizeof *out);
    int64_t *ids = malloc((size_t)B * sizeof *ids);
    if (!maps || !out || !ids) { fprintf(stderr, "%s: out of memory\n", cv_cli_prog()); exit(1); }
    cv_status st = cv_pk_stats_init(&s->stats, S, g->n_shell);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    cv_progress pr;
    cv_progress_begin(&pr, what, "maps", total, quiet);
    int64_t done = 0, n_all = cv_dataset_n_maps(s->ds);
    for (int64_t m = 0; m < n_all && done < total;) {
        int b = 0;
        for (; m < n_all && b < B && done + b < total; m++) {
            if (s->split != CV_SPLIT_ALL && cv_dataset_split(s->ds, m) != s->split) continue;
            if ((st = cv_dataset_read(s->ds, m, 1, maps + (size_t)b * per)) != CV_OK) cv_cli_fail(st, NULL);
            ids[b++] = m;
        }
        if ((st = cv_pk_compute(pk, maps, b, out)) != CV_OK) {
            /* the message names the map within the batch: name it in the file */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", cv_last_error());
            long long local = -1;
            const char *hint = st == CV_ERR_NUMERIC ? " (see --delta)" : "";
            if (sscanf(msg, "map %lld", &local) == 1 && local >= 0 && local < b)
                fprintf(stderr, "%s: %s: map %lld: %s%s\n", cv_cli_prog(), s->path, (long long)ids[local],
                        strchr(msg, ',') ? strchr(msg, ',') + 2 : msg, hint);
            else
                fprintf(stderr, "%s: %s: %s%s\n", cv_cli_prog(), s->path, msg, hint);
            exit(1);
        }
        cv_pk_stats_add(&s->stats, out, b);
        done += b;
        cv_progress_update(&pr, done, NULL);
    }
    cv_progress_end(&pr, done);
    s->n = done;
    free(maps); free(out); free(ids);
}

static void make_dir(const char *dir) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s: cannot create the output directory: %s\n", cv_cli_prog(), dir, strerror(errno));
        exit(1);
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "%s: %s: not a directory\n", cv_cli_prog(), dir);
        exit(1);
    }
}

static cv_status write_csv(const char *tmp, const char *path, const cv_pk_geom *g, int C, const char *const *names, map_set *set,
                           int two) {
    FILE *f = fopen(tmp, "w");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "spectrum,k,nmodes,mean_a,std_a%s\n", two ? ",mean_b,std_b" : "");
    char nm[256];
    for (int sp = 0; sp < cv_pk_n_spec(C); sp++) {
        cv_pk_spec_name(C, sp, names, nm, sizeof nm);
        for (int s = 0; s < g->n_shell; s++) {
            fprintf(f, "%s,%.9g,%lld,%.9g,%.9g", nm, g->k[s], (long long)g->nmodes[s], set[0].stats.mean[sp * g->n_shell + s],
                    cv_pk_stats_std(&set[0].stats, sp, s));
            if (two) fprintf(f, ",%.9g,%.9g", set[1].stats.mean[sp * g->n_shell + s], cv_pk_stats_std(&set[1].stats, sp, s));
            fputc('\n', f);
        }
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return cv_error(CV_ERR_IO, "%s: write error", path);
    return CV_OK;
}

/* Figure 3: cross-spectra in the top row, auto-spectra in the bottom row
 * (one row for a single field). */
static cv_status write_png(const char *tmp_dir_png, const cv_pk_geom *g, int C, const char *const *names, map_set *set, int two,
                           const char *label_a, const char *label_b) {
    cv_status st = CV_OK;
    int S = cv_pk_n_spec(C), n_cross = S - C, cols = C > n_cross ? C : n_cross, rows = n_cross ? 2 : 1;
    int NS = g->n_shell;
    double *buf = malloc((size_t)6 * NS * sizeof *buf);
    if (!buf) return cv_error(CV_ERR_NOMEM, "figure");
    cv_plot *p = NULL;
    CV_TRY(cv_plot_open(tmp_dir_png, 420 * cols, 360 * rows, cols, rows, &p));
    for (int r = 0; r < rows; r++)
        for (int col = 0; col < cols; col++) {
            int sp = rows == 2 && r == 0 ? C + col : col;       /* top: cross, bottom: auto */
            if ((rows == 2 && r == 0 && col >= n_cross) || (!(rows == 2 && r == 0) && col >= C)) { cv_plot_skip(p); continue; }
            /* a spectrum negative everywhere (anti-correlated fields) is drawn as -P */
            double sign = 1;
            int any_pos = 0;
            for (int s = 0; s < NS; s++) any_pos |= set[0].stats.mean[sp * NS + s] > 0;
            if (!any_pos) sign = -1;
            cv_plot_series ser[2];
            for (int k = 0; k < 1 + two; k++) {
                double *y = buf + (3 * k) * NS, *lo = buf + (3 * k + 1) * NS, *hi = buf + (3 * k + 2) * NS;
                for (int s = 0; s < NS; s++) {
                    double m = sign * set[k].stats.mean[sp * NS + s], sd = cv_pk_stats_std(&set[k].stats, sp, s);
                    y[s] = m; lo[s] = m - sd; hi[s] = m + sd;
                }
                ser[k].x = g->k; ser[k].y = y; ser[k].lo = lo; ser[k].hi = hi; ser[k].n = NS;
                if (k == 0) { ser[k].rgb[0] = 31; ser[k].rgb[1] = 119; ser[k].rgb[2] = 180; ser[k].dashed = 1; ser[k].label = label_a; }
                else { ser[k].rgb[0] = 214; ser[k].rgb[1] = 39; ser[k].rgb[2] = 40; ser[k].dashed = 0; ser[k].label = label_b; }
            }
            char title[300], nm[256];
            cv_pk_spec_name(C, sp, names, nm, sizeof nm);
            snprintf(title, sizeof title, "%s%s", sign < 0 ? "-P: " : "", nm);
            st = cv_plot_loglog(p, ser, 1 + two, title, "k [h/Mpc]", sp < C ? "P(k) [(Mpc/h)#u2#d]" : "P#dXY#u(k) [(Mpc/h)#u2#d]");
            if (st != CV_OK) {
                /* nothing positive to draw: leave the panel empty, say why */
                cv_cli_warn("%s: spectrum %s has no positive values; its panel is empty", tmp_dir_png, nm);
                st = CV_OK;
            }
        }
    st = cv_plot_close(p);
    p = NULL;
fail:
    if (p) cv_plot_abort(p);
    free(buf);
    return st;
}

int main(int argc, char **argv) {
    const char *out_dir = NULL, *delta = "log10", *device = NULL, *label_a = "real", *label_b = "generated";
    const char *inputs[2];
    int n_in = 0, quiet = 0, split_a = SPLIT_AUTO, split_b = SPLIT_AUTO;
    long max_maps = 0, batch = 0;
    double tol = 0.1;
    const char *sv;
    cv_cli_init("cosmovae-pk", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) cv_cli_usage_error("option '-o' requires a value");
            out_dir = argv[++i];
        } else if (cv_cli_opt_str(argc, argv, &i, "--output", &out_dir)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--delta", &delta)) {
            if (cv_pk_delta_parse(delta) < 0) cv_cli_usage_error("--delta: '%s' is not log10, overdensity or linear", delta);
        } else if (cv_cli_opt_str(argc, argv, &i, "--split-b", &sv)) split_b = parse_split("--split-b", sv);
        else if (cv_cli_opt_str(argc, argv, &i, "--split", &sv)) split_a = parse_split("--split", sv);
        else if (cv_cli_opt_long(argc, argv, &i, "--max-maps", 1, 1L << 40, &max_maps)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--tol", 1e-9, 100, &tol)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--label-a", &label_a)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--label-b", &label_b)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 4096, &batch)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else {
            if (n_in == 2) cv_cli_usage_error("at most two sets of maps (got '%s' too)", a);
            inputs[n_in++] = a;
        }
    }
    if (n_in == 0) cv_cli_usage_error("no input: give one or two sets of maps");
    if (!out_dir) cv_cli_usage_error("no output directory: use -o DIR");

    cv_status st;
    map_set set[2];
    memset(set, 0, sizeof set);
    for (int k = 0; k < n_in; k++) {
        set[k].path = inputs[k];
        set[k].split = k == 0 ? split_a : split_b;
        set[k].chosen = set[k].split != SPLIT_AUTO;
        if ((st = cv_dataset_open(inputs[k], &set[k].ds)) != CV_OK) cv_cli_fail(st, NULL);
        if (set[k].split == SPLIT_AUTO)
            set[k].split = cv_dataset_split_count(set[k].ds, CV_SPLIT_TEST) > 0 ? CV_SPLIT_TEST : CV_SPLIT_ALL;
    }
    cv_dataset *A = set[0].ds;
    int C = cv_dataset_n_chan(A), H = cv_dataset_height(A), W = cv_dataset_width(A);
    if (H != W) { fprintf(stderr, "cosmovae-pk: %s: maps are %d x %d; power spectra need square maps\n", inputs[0], H, W); return 1; }
    if (n_in == 2) {
        cv_dataset *B = set[1].ds;
        if (cv_dataset_height(B) != H || cv_dataset_width(B) != W) {
            fprintf(stderr, "cosmovae-pk: %s and %s: different map sizes (%d x %d and %d x %d)\n", inputs[0], inputs[1], H, W,
                    cv_dataset_height(B), cv_dataset_width(B));
            return 1;
        }
        int same = cv_dataset_n_chan(B) == C;
        for (int c = 0; same && c < C; c++) same = !strcmp(cv_dataset_chan_name(A, c), cv_dataset_chan_name(B, c));
        if (!same) {
            char fa[512] = "", fb[512] = "";
            for (int c = 0; c < C; c++) snprintf(fa + strlen(fa), sizeof fa - strlen(fa), "%s%s", c ? "," : "", cv_dataset_chan_name(A, c));
            for (int c = 0; c < cv_dataset_n_chan(B); c++)
                snprintf(fb + strlen(fb), sizeof fb - strlen(fb), "%s%s", c ? "," : "", cv_dataset_chan_name(B, c));
            fprintf(stderr, "cosmovae-pk: %s and %s: different fields (%s and %s)\n", inputs[0], inputs[1], fa, fb);
            return 1;
        }
        if (fabs(cv_dataset_box_size(B) - cv_dataset_box_size(A)) > 1e-9 * cv_dataset_box_size(A)) {
            fprintf(stderr, "cosmovae-pk: %s and %s: different box sizes (%g and %g Mpc/h)\n", inputs[0], inputs[1],
                    cv_dataset_box_size(A), cv_dataset_box_size(B));
            return 1;
        }
    }
    for (int k = 0; k < n_in; k++)
        if (cv_dataset_split_count(set[k].ds, set[k].split) == 0) {
            fprintf(stderr, "cosmovae-pk: %s: the %s split has no maps\n", inputs[k], cv_split_name(set[k].split));
            return 1;
        }
    make_dir(out_dir);

    cv_ctx *ctx = cv_cli_ctx(device);
    cv_pk_opts po = cv_pk_opts_default();
    po.n_chan = C; po.mode = cv_pk_delta_parse(delta); po.batch = (int)batch;
    cv_pk *pk = NULL;
    if ((st = cv_pk_new(ctx, H, cv_dataset_box_size(A), &po, &pk)) != CV_OK) cv_cli_fail(st, inputs[0]);
    double t0 = cv_now();
    for (int k = 0; k < n_in; k++) run_set(&set[k], pk, max_maps, quiet, k == 0 ? "spectra of A" : "spectra of B");
    double el = cv_now() - t0;

    const cv_pk_geom *g = cv_pk_geometry(pk);
    const char **names = malloc(C * sizeof *names);
    for (int c = 0; c < C; c++) names[c] = cv_dataset_chan_name(A, c);
    char csv[4096], png[4096], tcsv[4200], tpng[4200];
    snprintf(csv, sizeof csv, "%s/pk.csv", out_dir);
    snprintf(png, sizeof png, "%s/pk.png", out_dir);
    cv_out_tmpname(csv, tcsv, sizeof tcsv);
    cv_out_tmpname(png, tpng, sizeof tpng);
    if ((st = write_csv(tcsv, csv, g, C, names, set, n_in == 2)) != CV_OK) { cv_out_abort(tcsv); cv_cli_fail(st, NULL); }
    if ((st = write_png(tpng, g, C, names, set, n_in == 2, label_a, label_b)) != CV_OK) { cv_out_abort(tcsv); cv_cli_fail(st, png); }
    if ((st = cv_out_commit(tpng, png)) != CV_OK) { cv_out_abort(tcsv); cv_cli_fail(st, NULL); }
    if ((st = cv_out_commit(tcsv, csv)) != CV_OK) cv_cli_fail(st, NULL);

    printf("cosmovae-pk: %s delta, N = %d, L = %g Mpc/h, %d shells (k = %.3f .. %.3f h/Mpc), %s\n", cv_pk_delta_name(po.mode), H,
           cv_dataset_box_size(A), g->n_shell, g->k[0], g->k[g->n_shell - 1], cv_ctx_device_name(ctx));
    for (int k = 0; k < n_in; k++) {
        const char *why = set[k].chosen ? "" : set[k].split == CV_SPLIT_TEST ? ", the default" : ", the default: no test split";
        if (set[k].split == CV_SPLIT_ALL)
            printf("  %s: %s, %lld maps (all maps%s)\n", k == 0 ? "A" : "B", inputs[k], (long long)set[k].n, why);
        else
            printf("  %s: %s, %lld maps (%s split%s)\n", k == 0 ? "A" : "B", inputs[k], (long long)set[k].n,
                   cv_split_name(set[k].split), why);
    }
    printf("  %.1f maps/s\n", (set[0].n + set[1].n) / (el > 0 ? el : 1e-9));
    if (n_in == 2) {
        printf("largest k where the means agree within %g%%:\n", 100 * tol);
        char nm[256];
        for (int sp = 0; sp < cv_pk_n_spec(C); sp++) {
            double km = cv_pk_agree_kmax(g->k, set[0].stats.mean + sp * g->n_shell, set[1].stats.mean + sp * g->n_shell, g->n_shell, tol);
            cv_pk_spec_name(C, sp, names, nm, sizeof nm);
            if (km > 0) printf("  %-12s k <= %.3f h/Mpc%s\n", nm, km, km >= g->k[g->n_shell - 1] ? " (all shells)" : "");
            else printf("  %-12s no agreement at the first shell (k = %.3f h/Mpc)\n", nm, g->k[0]);
        }
    }
    printf("wrote %s and %s\n", csv, png);
    free(names);
    for (int k = 0; k < n_in; k++) { cv_pk_stats_free(&set[k].stats); cv_dataset_free(set[k].ds); }
    cv_pk_free(pk);
    cv_ctx_free(ctx);
    return 0;
}
