/* cv_sample.h -- using a trained model: the data normalisation a model
 * was trained with (kept in its config as a [data] section), generating
 * maps from the prior, and encoding maps to posterior means. */
#ifndef CV_SAMPLE_H
#define CV_SAMPLE_H

#include "cv_model.h"
#include "cv_data.h"

#define CV_MAX_CHAN 16

typedef struct cv_norm {
    int    n_chan;
    char   name[CV_MAX_CHAN][32], units[CV_MAX_CHAN][64], transform[CV_MAX_CHAN][16];
    double mean[CV_MAX_CHAN], std[CV_MAX_CHAN];
} cv_norm;

/* From a dataset's per-channel attributes. */
cv_status cv_norm_from_dataset(const cv_dataset *ds, cv_norm *n);
/* As INI text "[data]\nchannels = ...\n..." (appended to buf). */
void      cv_norm_to_cfg(const cv_norm *n, char *buf, size_t size);
cv_status cv_norm_read(cv_cfg *cfg, cv_norm *n);
/* Check a dataset against a model (channels, names, size); CV_ERR_FORMAT naming both. */
cv_status cv_norm_check_dataset(const cv_norm *n, const cv_model_cfg *mc, const cv_dataset *ds);

/* normalised (model space) <-> physical units, in place, (count, C, H, W). */
void cv_norm_to_physical(const cv_norm *n, float *x, int64_t count, int64_t hw);
void cv_norm_to_model(const cv_norm *n, float *x, int64_t count, int64_t hw);

/* Generate n maps from the prior at temperature t into out (n, C, S, S),
 * physical units (the mean of p(x|z), or a draw from it with pixel_noise).
 * Uses the parameters in the model's PARAMS arena (upload the EMA weights
 * there first if wanted).  batch: maps per device pass. */
cv_status cv_sample_generate(cv_ctx *ctx, cv_model *m, const cv_norm *nrm, int64_t n, float t, uint64_t seed,
                             int batch, int pixel_noise, float *out);

#endif
