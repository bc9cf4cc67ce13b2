/* cosmovae-sample -- new maps from the prior of a trained model.
 *
 *   cosmovae-sample RUN -n 100 -o DIR [--temperature T] [--real DATA.nc] [--top-prior DATA.nc]
 *                   [--calibrate DATA.nc]
 *
 * Writes DIR/samples.nc (a cosmovae dataset in physical units: the
 * normalisation and log10 undone), DIR/maps.png (the first maps, each field
 * in its own colour map), DIR/figure2.png with --real (generated maps
 * above real test maps, the paper's Figure 2) and, with --png-maps, one
 * 16-bit grayscale PNG per map and field (log10 values, range in tEXt);
 * with --calibrate, DIR/calibration.csv (the temperature chosen per latent
 * resolution, cv_calibrate.h). */
#include "prog/cv_cli.h"
#include "analysis/cv_io_png.h"
#include "analysis/cv_mapfig.h"
#include "model/cv_sample.h"
#include "analysis/cv_calibrate.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "Usage: cosmovae-sample [OPTION]... RUN -o DIR\n"
    "Generate new maps from the prior of the trained model in RUN (a run directory\n"
    "or a checkpoint file).\n"
    "\n"
    "  -o, --output DIR      output directory (required): samples.nc, maps.png\n"
    "  -n, --count N         number of maps (default 16)\n"
    "  -t, --temperature T   prior temperature (default 1)\n"
    "      --temperature-at RES=T  prior temperature T for the latent groups at\n"
    "                        resolution RES (e.g. 4=1.2); repeatable; the others\n"
    "                        keep --temperature\n"
    "      --top-prior DATA.nc  draw the top (lowest-resolution) group from a\n"
    "                        Gaussian fitted to its aggregate posterior on the\n"
    "                        train split of DATA.nc (every map if it has none)\n"
    "                        instead of the learned prior; -t and --temperature-at\n"
    "                        still set the other groups\n"
    "      --top-prior-maps N  fit on at most N maps, evenly spaced (default 4000)\n"
    "      --calibrate DATA.nc  choose the temperature of each latent resolution so\n"
    "                        that generated maps have the mean power of the valid\n"
    "                        maps of DATA.nc in the shells that resolution draws\n"
    "                        (all resolutions together); DIR/calibration.csv;\n"
    "                        not with -t or --temperature-at\n"
    "      --calibrate-maps N  generated maps per trial (default 256)\n"
    "      --calibrate-fit F  bands (default): each resolution's band of shells at\n"
    "                        the valid maps' mean power; shells: least squares over\n"
    "                        every shell of the bands and every field\n"
    "      --pixel-noise     draw x from p(x|z) instead of taking its mean\n"
    "      --real DATA.nc    also draw figure2.png: generated maps above real test maps\n"
    "      --png-maps        also write png/sample-NNNN-FIELD.png, 16-bit gray log10 maps\n"
    "      --no-ema          use the raw weights even if the run kept an EMA\n"
    "      --seed N          noise seed (default 1)\n"
    "      --batch N         maps per device pass (default 16)\n"
    "      --device SPEC     OpenCL device: index, or name substring[:index]\n"
    "  -q, --quiet           no progress output\n"
    "      --help            display this help and exit\n"
    "      --version         output version information and exit\n";

/* The command line; usage errors exit 2. */
typedef struct sample_args {
    const char *run, *out, *device, *real, *top, *calib;
    long        n, seed, batch, top_maps, calib_maps;
    int         temp_set, calib_fit;
    double      temp;
    int         quiet, noise, ema, png_maps, n_at;
    int         at_res[CV_MAX_STAGES];
    double      at_t[CV_MAX_STAGES];
} sample_args;

static void parse_args(int argc, char **argv, sample_args *o) {
    const char *spec = NULL;
    memset(o, 0, sizeof *o);
    o->n = 16; o->seed = 1; o->batch = 16; o->temp = 1.0; o->ema = 1; o->top_maps = 4000; o->calib_maps = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cv_cli_opt_str(argc, argv, &i, "--output", &o->out) || cv_cli_opt_str(argc, argv, &i, "-o", &o->out)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--count", 1, 10000000L, &o->n) || cv_cli_opt_long(argc, argv, &i, "-n", 1, 10000000L, &o->n)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--temperature", 0, 100, &o->temp) || cv_cli_opt_double(argc, argv, &i, "-t", 0, 100, &o->temp)) o->temp_set = 1;
        else if (cv_cli_opt_str(argc, argv, &i, "--temperature-at", &spec)) {
            char tail;
            if (o->n_at == CV_MAX_STAGES) cv_cli_usage_error("--temperature-at: at most %d resolutions", CV_MAX_STAGES);
            if (sscanf(spec, "%d=%lf%c", &o->at_res[o->n_at], &o->at_t[o->n_at], &tail) != 2 || o->at_res[o->n_at] < 1 ||
                !(o->at_t[o->n_at] >= 0 && o->at_t[o->n_at] <= 100))
                cv_cli_usage_error("--temperature-at '%s': expected RES=T, RES a resolution, 0 <= T <= 100 (e.g. 4=1.2)", spec);
            o->n_at++;
        }
        else if (cv_cli_opt_long(argc, argv, &i, "--seed", 0, 0x7fffffffL, &o->seed)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 4096, &o->batch)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--real", &o->real)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--top-prior", &o->top)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--top-prior-maps", 2, 100000000L, &o->top_maps)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--calibrate", &o->calib)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--calibrate-maps", 2, 1000000L, &o->calib_maps)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--calibrate-fit", &spec)) {
            if (!strcmp(spec, "bands")) o->calib_fit = CV_CALIB_BANDS;
            else if (!strcmp(spec, "shells")) o->calib_fit = CV_CALIB_SHELLS;
            else cv_cli_usage_error("--calibrate-fit '%s': expected bands or shells", spec);
        }
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &o->device)) ;
        else if (!strcmp(a, "--pixel-noise")) o->noise = 1;
        else if (!strcmp(a, "--png-maps")) o->png_maps = 1;
        else if (!strcmp(a, "--no-ema")) o->ema = 0;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (!o->run) o->run = a;
        else cv_cli_usage_error("unexpected argument '%s'", a);
    }
    if (!o->run) cv_cli_usage_error("a run directory (or checkpoint) is required");
    if (!o->out) cv_cli_usage_error("no output directory given (-o DIR)");
    if (o->calib && (o->temp_set || o->n_at))
        cv_cli_usage_error("--calibrate chooses the temperatures: give it without %s", o->temp_set ? "-t/--temperature" : "--temperature-at");
}

typedef struct trials { cv_progress pr; int done; } trials;
static void on_trial(void *user, int done, int total) {
    trials *t = user;
    t->pr.total = total;
    t->done = done;
    cv_progress_update(&t->pr, done, NULL);
}

/* --calibrate: temperatures per latent resolution against the valid maps
 * of o->calib, set on the model; the rows for calibration.csv. */
static int calibrate(const sample_args *o, cv_ctx *ctx, cv_model *m, const cv_norm *norm, const cv_top_prior *top,
                     cv_calib_row *rows) {
    cv_status st;
    cv_dataset *cds = NULL;
    if ((st = cv_dataset_open(o->calib, &cds)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_norm_check_dataset(norm, cv_model_config(m), cds)) != CV_OK) cv_cli_fail(st, NULL);
    cv_calib_opts co = cv_calib_opts_default();
    co.n_gen = o->calib_maps; co.seed = (uint64_t)o->seed ^ CV_CALIB_STREAM;   /* not the noise of the maps written */ co.batch = (int)o->batch; co.pixel_noise = o->noise; co.top = top;
    co.objective = o->calib_fit;
    int n_rows = 0;
    trials tr = { .done = 0 };
    cv_progress_begin(&tr.pr, "calibrating temperatures", "trials", 0, o->quiet);
    st = cv_calibrate_temperatures(ctx, m, norm, cds, CV_SPLIT_VALID, &co, rows, &n_rows, on_trial, &tr);
    cv_progress_end(&tr.pr, tr.done);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    if (!o->quiet) {
        double kf = 2 * 3.14159265358979323846 / cv_dataset_box_size(cds);
        fprintf(stderr, "cosmovae-sample: temperatures calibrated on the valid maps of %s (%ld generated maps a trial):\n",
                o->calib, o->calib_maps);
        fprintf(stderr, "  res    shells   k (h/Mpc)      T     P_gen/P_valid at T = 1 -> at T\n");
        for (int i = 0; i < n_rows; i++)
            fprintf(stderr, "  %-5d %3d-%-3d  %5.2f-%-5.2f  %6.3f   %6.3f -> %6.3f%s\n", rows[i].res, rows[i].shell_lo,
                    rows[i].shell_hi, rows[i].shell_lo * kf, (rows[i].shell_hi + 1) * kf, rows[i].t, rows[i].ratio_before,
                    rows[i].ratio_after, rows[i].at_bound ? "  (at the bound of the bracket)" : "");
    }
    cv_dataset_free(cds);
    return n_rows;
}

static void write_calibration(const sample_args *o, const cv_calib_row *rows, int n) {
    char path[8500], tmp[8600];
    snprintf(path, sizeof path, "%s/calibration.csv", o->out);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) cv_cli_fail(cv_error(CV_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno)), NULL);
    fprintf(f, "res,shell_lo,shell_hi,temperature,ratio_before,ratio_after,at_bound\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%d,%d,%.6g,%.6g,%.6g,%d\n", rows[i].res, rows[i].shell_lo, rows[i].shell_hi, rows[i].t,
                rows[i].ratio_before, rows[i].ratio_after, rows[i].at_bound);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        cv_cli_fail(cv_error(CV_ERR_IO, "%s: cannot write: %s", path, strerror(e)), NULL);
    }
}

/* samples.nc: a dataset of the generated maps (the test split, one
 * "simulation" per map), with the model's normalisation. */
static void write_dataset(int argc, char **argv, const sample_args *o, const cv_norm *norm, int C, int S, const float *maps) {
    cv_status st;
    long n = o->n;
    char path[8500], history[4096];
    cv_cli_history(argc, argv, history, sizeof history);
    snprintf(path, sizeof path, "%s/samples.nc", o->out);
    const char *names[CV_MAX_CHAN], *units[CV_MAX_CHAN], *tr[CV_MAX_CHAN];
    for (int c = 0; c < C; c++) { names[c] = norm->name[c]; units[c] = norm->units[c]; tr[c] = norm->transform[c]; }
    cv_writer_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.n_maps = n; wo.n_chan = C; wo.height = S; wo.width = S;
    wo.chan_names = names; wo.chan_units = units; wo.chan_transforms = tr;
    wo.n_param = 0;
    wo.box_size = CV_DATA_BOX_SIZE;
    wo.source = o->run;
    wo.history = history;
    wo.deflate = 1;
    cv_writer *w = NULL;
    int32_t *sim = malloc((size_t)n * sizeof *sim);
    int8_t *split = malloc((size_t)n);
    if (!sim || !split) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    for (int64_t i = 0; i < n; i++) { sim[i] = (int32_t)i; split[i] = CV_SPLIT_TEST; }
    if ((st = cv_writer_new(path, &wo, &w)) != CV_OK ||
        (st = cv_writer_write(w, 0, n, maps)) != CV_OK ||
        (st = cv_writer_set_sim(w, 0, n, sim)) != CV_OK ||
        (st = cv_writer_set_split(w, 0, n, split)) != CV_OK ||
        (st = cv_writer_set_norm(w, norm->mean, norm->std)) != CV_OK ||
        (st = cv_writer_finish(w)) != CV_OK) {
        cv_writer_free(w);
        cv_cli_fail(st, NULL);
    }
    cv_writer_free(w);
    free(sim); free(split);
}

/* png/sample-NNNN-FIELD.png: every map of every field, 16-bit grey. */
static void write_pngs(const sample_args *o, const cv_norm *norm, int C, int S, const float *maps) {
    cv_status st;
    long n = o->n;
    int64_t msz = (int64_t)C * S * S;
    char path[8500];
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/png", o->out);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) cv_cli_fail(cv_error(CV_ERR_IO, "%s: cannot create: %s", dir, strerror(errno)), NULL);
    float *img = malloc((size_t)S * S * sizeof *img);
    if (!img) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            int lg = !strcmp(norm->transform[c], "log10");
            const float *src = maps + i * msz + (int64_t)c * S * S;
            for (int64_t j = 0; j < (int64_t)S * S; j++) img[j] = lg ? (float)log10(src[j]) : src[j];
            /* a fixed range per field: the model's normalisation +- 5 sigma */
            double lo = norm->mean[c] - 5 * norm->std[c], hi = norm->mean[c] + 5 * norm->std[c];
            snprintf(path, sizeof path, "%s/sample-%04lld-%s.png", dir, (long long)i, norm->name[c]);
            if ((st = cv_png_write_gray16(path, img, S, S, lo, hi, norm->name[c], norm->transform[c])) != CV_OK) cv_cli_fail(st, NULL);
        }
    free(img);
}

int main(int argc, char **argv) {
    sample_args o;
    cv_cli_init("cosmovae-sample", usage_text);
    parse_args(argc, argv, &o);
    cv_status st;
    cv_dataset *rds = NULL, *tds = NULL;
    if (o.real && (st = cv_dataset_open(o.real, &rds)) != CV_OK) cv_cli_fail(st, NULL);
    if (o.top && (st = cv_dataset_open(o.top, &tds)) != CV_OK) cv_cli_fail(st, NULL);
    cv_ctx *ctx = cv_cli_ctx(o.device);
    cv_model *m = NULL;
    cv_norm norm;
    if ((st = cv_model_load(o.run, ctx, o.ema, &m, &norm)) != CV_OK) cv_cli_fail(st, NULL);
    const cv_model_cfg *mc = cv_model_config(m);
    for (int k = 0; k < o.n_at; k++)
        if (cv_model_set_temperature_at(m, o.at_res[k], (float)o.at_t[k]) != CV_OK)
            cv_cli_usage_error("--temperature-at %d=%g: %s", o.at_res[k], o.at_t[k], cv_last_error());
        else if (o.top && o.at_res[k] == mc->dec_res[0])
            cv_cli_usage_error("--temperature-at %d=%g: the %dx%d group is drawn from --top-prior %s", o.at_res[k], o.at_t[k],
                               o.at_res[k], o.at_res[k], o.top);
    if (rds && (st = cv_norm_check_dataset(&norm, mc, rds)) != CV_OK) cv_cli_fail(st, NULL);
    cv_top_prior top;
    memset(&top, 0, sizeof top);
    if (tds) {
        if ((st = cv_norm_check_dataset(&norm, mc, tds)) != CV_OK) cv_cli_fail(st, NULL);
        int split = cv_dataset_split_count(tds, CV_SPLIT_TRAIN) >= 2 ? CV_SPLIT_TRAIN : CV_SPLIT_ALL;
        if ((st = cv_top_prior_fit(ctx, m, &norm, tds, split, o.top_maps, &top)) != CV_OK) cv_cli_fail(st, NULL);
        double tr = 0, mm = 0;
        for (int64_t j = 0; j < top.dim; j++) {
            for (int64_t b = 0; b <= j; b++) tr += top.chol[j * top.dim + b] * top.chol[j * top.dim + b];
            mm += top.mean[j] * top.mean[j];
        }
        if (!o.quiet)
            fprintf(stderr, "cosmovae-sample: the %dx%d group from its aggregate posterior on %lld %s maps of %s "
                    "(%lld numbers; per number: mean variance %.3g, rms mean %.3g)\n",
                    mc->dec_res[0], mc->dec_res[0], (long long)top.n_maps, split == CV_SPLIT_TRAIN ? "train" : "",
                    o.top, (long long)top.dim, tr / (double)top.dim, sqrt(mm / (double)top.dim));
    }
    cv_calib_row crow[CV_MAX_STAGES];
    int n_crow = o.calib ? calibrate(&o, ctx, m, &norm, tds ? &top : NULL, crow) : 0;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) cv_cli_fail(cv_error(CV_ERR_IO, "%s: cannot create: %s", o.out, strerror(errno)), NULL);
    int S = mc->size, C = mc->channels;
    int64_t msz = (int64_t)C * S * S;
    float *maps = malloc((size_t)(o.n * msz) * sizeof *maps);
    if (!maps) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory: %ld maps", o.n), NULL);
    cv_sampler *smp = NULL;
    if (o.batch > o.n) o.batch = o.n;
    if ((st = cv_sampler_new(ctx, m, &norm, (int)o.batch, (float)o.temp, o.noise, tds ? &top : NULL, &smp)) != CV_OK)
        cv_cli_fail(st, NULL);
    cv_progress prog;
    cv_progress_begin(&prog, "sampling", "maps", o.n, o.quiet);
    for (int64_t first = 0; first < o.n; first += o.batch) {
        int cnt = (int)(o.n - first < o.batch ? o.n - first : o.batch);
        if ((st = cv_sampler_run(smp, (uint64_t)o.seed, (uint64_t)(first / o.batch), cnt, maps + first * msz)) != CV_OK)
            cv_cli_fail(st, NULL);
        cv_progress_update(&prog, first + cnt, NULL);
    }
    cv_sampler_free(smp);
    cv_top_prior_free(&top);
    cv_progress_end(&prog, o.n);
    for (int64_t i = 0; i < o.n * msz; i++)
        if (!isfinite(maps[i])) {
            cv_cli_warn("warning: generated map %lld has non-finite values (field %s); is the model trained?",
                        (long long)(i / msz), norm.name[(i % msz) / ((int64_t)S * S)]);
            break;
        }

    write_dataset(argc, argv, &o, &norm, C, S, maps);
    /* calibration.csv describes these samples: written beside them, and an
     * older one removed when these were not calibrated */
    if (o.calib) write_calibration(&o, crow, n_crow);
    else {
        char cpath[8500];
        snprintf(cpath, sizeof cpath, "%s/calibration.csv", o.out);
        remove(cpath);
    }

    char path[8500];
    /* maps.png: the first few */
    int show = o.n < 8 ? (int)o.n : 8;
    const float *rows[8];
    const char *labels[8];
    char lab[8][32];
    for (int i = 0; i < show; i++) {
        rows[i] = maps + i * msz;
        snprintf(lab[i], sizeof lab[i], "sample %d", i + 1);
        labels[i] = lab[i];
    }
    snprintf(path, sizeof path, "%s/maps.png", o.out);
    if ((st = cv_mapfig_write(path, "generated maps", show, labels, &norm, S, rows)) != CV_OK) cv_cli_fail(st, NULL);

    if (rds) {
        int k = show < 4 ? show : 4;
        float *rm = malloc((size_t)(k * msz) * sizeof *rm);
        int64_t got = 0;
        if (!rm) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
        for (int64_t j = 0; j < cv_dataset_n_maps(rds) && got < k; j++) {
            if (cv_dataset_split(rds, j) != CV_SPLIT_TEST) continue;
            if ((st = cv_dataset_read(rds, j, 1, rm + got * msz)) != CV_OK) cv_cli_fail(st, NULL);
            got++;
        }
        if (got < k) cv_cli_fail(cv_error(CV_ERR_FORMAT, "%s: the test split has %lld maps, %d needed for the figure", o.real, (long long)got, k), NULL);
        snprintf(path, sizeof path, "%s/figure2.png", o.out);
        if ((st = cv_plot_real_vs_generated(path, &norm, S, rm, maps, k)) != CV_OK) cv_cli_fail(st, NULL);
        free(rm);
    }
    if (o.png_maps) write_pngs(&o, &norm, C, S, maps);
    if (!o.quiet) fprintf(stderr, "cosmovae-sample: %ld maps of %dx%d -> %s/samples.nc, %s/maps.png%s\n", o.n, S, S, o.out, o.out,
                        rds ? ", figure2.png" : "");
    free(maps);
    cv_model_free(m);
    cv_ctx_free(ctx);
    cv_dataset_free(rds);
    cv_dataset_free(tds);
    return 0;
}
