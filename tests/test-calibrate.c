/* test-calibrate.c -- sampling temperatures calibrated to reference power
 * (cv_calibrate.h), on the tiny VDVAE of the whole-model tests with its
 * initial weights (latent groups at 2x2, 4x4 and 8x8; shells 1, 2, 3-4):
 *   1. reference maps drawn at known temperatures (1.6, 0.6, 1.3) with
 *      other noise: the calibration finds them again and matches every
 *      band's power, and leaves them set on the model;
 *   2. a reference without valid maps is refused, naming the split, and
 *      the model's temperatures are what they were. */
#include "tap.h"
#include "tiny-model.h"
#include "analysis/cv_calibrate.h"
#include "dataset/cv_data.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

enum { NREF = 1024, BATCH = 64 };
static const int res[3] = { 2, 4, 8 };

/* A dataset of n maps (physical units) in one split. */
static cv_status write_maps(const char *path, const float *maps, int64_t n, int split) {
    const char *names[3] = { "Mgas", "HI", "B" }, *tr[3] = { "none", "none", "none" };
    cv_writer_opts wo = cv_writer_opts_default();
    wo.n_maps = n; wo.n_chan = 3; wo.height = 8; wo.width = 8;
    wo.chan_names = names; wo.chan_transforms = tr; wo.n_param = 0;
    int8_t *sp = malloc((size_t)n);
    int32_t *sim = malloc((size_t)n * sizeof *sim);
    for (int64_t i = 0; i < n; i++) { sp[i] = (int8_t)split; sim[i] = (int32_t)i; }
    cv_writer *w = NULL;
    cv_status st = cv_writer_new(path, &wo, &w);
    if (st == CV_OK) st = cv_writer_write(w, 0, n, maps);
    if (st == CV_OK) st = cv_writer_set_sim(w, 0, n, sim);
    if (st == CV_OK) st = cv_writer_set_split(w, 0, n, sp);
    if (st == CV_OK) st = cv_writer_finish(w);
    cv_writer_free(w);
    free(sp); free(sim);
    return st;
}

int main(void) {
    tap_begin();
    cv_ctx *ctx = tap_ctx();
    cv_cfg *cfg = NULL;
    cv_model_cfg mc;
    cv_model *m = NULL;
    if (cv_cfg_new(&cfg) != CV_OK || cv_cfg_parse(cfg, tiny_cfg, "tiny") != CV_OK || cv_model_cfg_read(cfg, &mc) != CV_OK ||
        cv_model_new(&mc, &m) != CV_OK || cv_model_to_device(m, ctx, 0) != CV_OK) {
        printf("Bail out! tiny model: %s\n", cv_last_error());
        return 99;
    }
    int64_t nf = cv_model_n_floats(m);
    float *pf = malloc((size_t)nf * sizeof *pf);
    cv_model_init_host(m, 11, pf);
    for (int64_t i = 0; i < nf; i++) if (pf[i] == 0.0f) pf[i] = 0.05f * (float)sin(1.3 * i);
    cv_status st = cv_model_upload(m, CV_ARENA_PARAMS, pf);
    cv_norm nrm;
    memset(&nrm, 0, sizeof nrm);
    nrm.n_chan = 3;
    for (int ch = 0; ch < 3; ch++) {
        snprintf(nrm.name[ch], sizeof nrm.name[ch], "%s", ch == 0 ? "Mgas" : ch == 1 ? "HI" : "B");
        snprintf(nrm.transform[ch], sizeof nrm.transform[ch], "none");
        nrm.std[ch] = 1;
    }

    /* 1. the reference at known temperatures, other noise (seed 77) */
    const double want[3] = { 1.6, 0.6, 1.3 };
    int64_t msz = 3 * 8 * 8;
    float *maps = malloc((size_t)(NREF * msz) * sizeof *maps);
    for (int k = 0; k < 3 && st == CV_OK; k++) st = cv_model_set_temperature_at(m, res[k], (float)want[k]);
    cv_sampler *smp = NULL;
    if (st == CV_OK) st = cv_sampler_new(ctx, m, &nrm, BATCH, 1.0f, 0, NULL, &smp);
    for (int b = 0; b < NREF / BATCH && st == CV_OK; b++) st = cv_sampler_run(smp, 77, (uint64_t)b, BATCH, maps + b * BATCH * msz);
    cv_sampler_free(smp);
    char dir[] = "./test-calibrate.XXXXXX", ref[64], none[64];
    if (!mkdtemp(dir)) { printf("Bail out! mkdtemp\n"); return 99; }
    snprintf(ref, sizeof ref, "%s/ref.nc", dir);
    snprintf(none, sizeof none, "%s/train-only.nc", dir);
    if (st == CV_OK) st = write_maps(ref, maps, NREF, CV_SPLIT_VALID);
    if (st == CV_OK) st = write_maps(none, maps, 64, CV_SPLIT_TRAIN);
    if (st != CV_OK) { printf("Bail out! reference maps: %s\n", cv_last_error()); return 99; }
    for (int k = 0; k < 3; k++) cv_model_unset_temperature_at(m, res[k]);

    cv_dataset *ds = NULL;
    st = cv_dataset_open(ref, &ds);
    cv_calib_opts o = cv_calib_opts_default();
    o.n_gen = NREF; o.batch = BATCH; o.seed = 1; o.iters = 8; o.tol = 0.003;
    cv_calib_row rows[CV_MAX_STAGES];
    int n = 0;
    if (st == CV_OK) st = cv_calibrate_temperatures(ctx, m, &nrm, ds, CV_SPLIT_VALID, &o, rows, &n, NULL, NULL);
    if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    int bands_ok = st == CV_OK && n == 3;
    double terr = 0, perr = 0, before = 0;
    for (int k = 0; k < n && bands_ok; k++) {
        bands_ok &= rows[k].res == res[k] && !rows[k].at_bound &&
                    rows[k].shell_lo == (k == 0 ? 1 : k == 1 ? 2 : 3) && rows[k].shell_hi == (k == 0 ? 1 : k == 1 ? 2 : 4) &&
                    fabs(cv_model_temperature_at(m, res[k]) - rows[k].t) < 1e-5 * rows[k].t;
        terr = fmax(terr, fabs(rows[k].t / want[k] - 1));
        perr = fmax(perr, fabs(log(rows[k].ratio_after)));
        before = fmax(before, fabs(log(rows[k].ratio_before)));
        CV_CHECK_DIAG("res %d, shells %d-%d: T %.3f (drawn at %.2f), P ratio %.3f -> %.4f", rows[k].res, rows[k].shell_lo,
                      rows[k].shell_hi, rows[k].t, want[k], rows[k].ratio_before, rows[k].ratio_after);
    }
    CV_CHECK_OK(bands_ok && before > 0.1 && perr < 0.01 && terr < 0.15,
                "temperatures found again within %.0f%% (< 15%%), every band's power within %.1f%% (< 1%%; %.0f%% at T = 1), "
                "set on the model", 100 * terr, 100 * perr, 100 * (exp(before) - 1));
    cv_dataset_free(ds);

    /* 2. no valid maps: refused, the temperatures kept */
    cv_model_set_temperature_at(m, 4, 0.9f);
    cv_model_unset_temperature_at(m, 2);
    cv_model_unset_temperature_at(m, 8);
    st = cv_dataset_open(none, &ds);
    if (st == CV_OK) st = cv_calibrate_temperatures(ctx, m, &nrm, ds, CV_SPLIT_VALID, &o, rows, &n, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "valid split has 0 maps") && n == 0 &&
                    cv_model_temperature_at(m, 4) == 0.9f && cv_model_temperature_at(m, 2) < 0 && cv_model_temperature_at(m, 8) < 0,
                "a reference without valid maps refused (%s), the model's temperatures kept", cv_last_error());
    cv_dataset_free(ds);

    unlink(ref); unlink(none); rmdir(dir);
    free(maps); free(pf);
    cv_model_free(m);
    cv_cfg_free(cfg);
    cv_ctx_free(ctx);
    return tap_end();
}
