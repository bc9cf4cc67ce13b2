/* cv_sample.h -- using a trained model: the data normalisation a model
 * was trained with (kept in its config as a [data] section), generating
 * maps from the prior, and encoding maps to posterior means. */
#ifndef CV_SAMPLE_H
#define CV_SAMPLE_H

#include "model/cv_model.h"
#include "dataset/cv_data.h"

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

/* Open a trained model: `path` is a run directory (its checkpoint.nc) or
 * a checkpoint file.  Builds the model from the stored configuration,
 * puts it on ctx and uploads the weights (the EMA weights when present
 * and prefer_ema).  *norm receives the data normalisation.  Caller frees
 * *out with cv_model_free. */
cv_status cv_model_load(const char *path, cv_ctx *ctx, int prefer_ema, cv_model **out, cv_norm *norm);

/* Encoding maps to latent codes: the posterior means of the top
 * (lowest-resolution) latent group -- 4x4xZ = 256 numbers for both
 * presets -- or, with all_groups, of every group (z = posterior mean),
 * concatenated in group order, each flattened as (Z, r, r). */
typedef struct cv_encoder cv_encoder;
cv_status cv_encoder_new(cv_ctx *ctx, cv_model *m, const cv_norm *norm, int batch, int all_groups, cv_encoder **out);
void      cv_encoder_free(cv_encoder *e);
int64_t   cv_encoder_dim(const cv_encoder *e);
/* maps: (count <= batch, C, S, S) physical units (not modified);
 * out: (count, dim). */
cv_status cv_encoder_run(cv_encoder *e, const float *maps, int count, float *out);
int       cv_encoder_n_groups(const cv_encoder *e);
/* Group g's resolution and numbers per map (Z r r). */
int       cv_encoder_group_res(const cv_encoder *e, int g);
int64_t   cv_encoder_group_dim(const cv_encoder *e, int g);
/* After cv_encoder_run of an all-groups encoder: the KL of each group,
 * nats per map, of the maps of that run: kl (count, n_groups).  The KL is
 * taken along the posterior-mean path (every z at its posterior mean),
 * which training's sampled path only approximates. */
cv_status cv_encoder_kl(cv_encoder *e, int count, double *kl);
/* After cv_encoder_run: the top group's posterior log sigmas of the maps
 * of that run, out (count, dim of group 0). */
cv_status cv_encoder_top_logs(cv_encoder *e, int count, float *out);

/* ---- diagnosis of the latent code (issue 11) -----------------------------
 * Per group: the mean KL per map and the active units of Burda et al.
 * (2016): dimensions whose posterior mean varies across maps, variance
 * over the maps > CV_ACTIVE_VAR (in the model's latent units, where the
 * prior of an unused dimension is close to N(0, 1)). */
#define CV_ACTIVE_VAR 0.01
typedef struct cv_latent_diag {
    int     n_groups;
    int64_t n_maps;
    int     res[CV_MAX_GROUPS];
    int64_t dim[CV_MAX_GROUPS], active[CV_MAX_GROUPS];
    double  kl[CV_MAX_GROUPS];        /* nats per map */
} cv_latent_diag;
/* Encode the maps of split `split` of ds (CV_SPLIT_ALL: every map; at most
 * max_maps, evenly spaced, 0: no limit) with every group and fill d. */
cv_status cv_latent_diag_run(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ds, int split, int64_t max_maps,
                             cv_latent_diag *d);
/* The probed (top) group counts as collapsed below half its dimensions active. */
int       cv_latent_diag_collapsed(const cv_latent_diag *d);
/* With table, a table of the groups (one line each, every line starting
 * with prefix); whatever table is, a warning line when the top group is
 * collapsed. */
void      cv_latent_diag_print(FILE *f, const cv_latent_diag *d, const char *prefix, int table);

/* A translation-invariant code from posterior means: per group g (of
 * n_groups, dims[g] = zdim x S_g x S_g numbers, channel-major as the
 * encoder writes them), the spatial mean of each of the zdim channels,
 * then their spatial standard deviations: 2 zdim numbers a group.  z is
 * (n, sum dims), out (n, 2 zdim n_groups). */
void      cv_latent_pool(const float *z, int64_t n, int n_groups, const int64_t *dims, int zdim, float *out);

/* Generating maps from the prior at temperature t, in physical units:
 * the mean of p(x|z), or a draw from it with pixel_noise.  A sampler
 * holds a plan for `batch` maps; batch k of a run draws the noise
 * (seed, k), so the maps depend on the seed and the batch size only.
 * Uses the weights in the model's PARAMS arena (upload the EMA weights
 * there first if wanted). */
/* A Gaussian for the top group fitted to its aggregate posterior
 * q(z) = (1/n) sum_i N(mu_i, diag sigma_i^2) over n encoded maps, by
 * moments: mean (1/n) sum mu_i, covariance (1/n) sum (mu_i - mean)
 * (mu_i - mean)^T + diag((1/n) sum sigma_i^2), kept as its Cholesky
 * factor.  Sampling the top group from it instead of the learned prior is
 * the "ex-post density estimation" of Ghosh et al. (2020) (the second
 * stage of Dai & Wipf 2019, with one Gaussian): it corrects a prior that
 * the aggregate posterior has outgrown, where the largest scales of a map
 * are drawn.  The lower groups keep their conditional priors. */
typedef struct cv_top_prior {
    int64_t dim, n_maps;
    double *mean;                 /* (dim) */
    double *chol;                 /* (dim, dim), row-major lower-triangular L, L L^T = covariance */
} cv_top_prior;
/* From n posterior means mu (n, dim) and log sigmas logs (n, dim).
 * CV_ERR_ARG for n < 2, CV_ERR_NUMERIC if the covariance is not positive
 * definite (a non-finite input). */
cv_status cv_top_prior_from_moments(const float *mu, const float *logs, int64_t n, int64_t dim, cv_top_prior *p);
/* Encode the maps of split `split` of ds (CV_SPLIT_ALL: every map; at
 * most max_maps, evenly spaced; 0: no limit) and fit. */
cv_status cv_top_prior_fit(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ds, int split, int64_t max_maps,
                           cv_top_prior *p);
/* z = mean + L eps, eps_j = cv_rng_normal(seed, map, j): a draw for map `map`. */
void      cv_top_prior_draw(const cv_top_prior *p, uint64_t seed, uint64_t map, float *z);
void      cv_top_prior_free(cv_top_prior *p);

typedef struct cv_sampler cv_sampler;
/* top: NULL, the model's prior for every group; else the top group is
 * drawn from it (borrowed: it must outlive the sampler), with noise
 * (seed ^ CV_TOP_PRIOR_STREAM, k batch + i) for map i of batch k. */
#define CV_TOP_PRIOR_STREAM 0x70507250ULL
cv_status cv_sampler_new(cv_ctx *ctx, cv_model *m, const cv_norm *norm, int batch, float t, int pixel_noise,
                         const cv_top_prior *top, cv_sampler **out);
void      cv_sampler_free(cv_sampler *s);
/* Batch k: count (<= batch) maps into out (count, C, S, S). */
cv_status cv_sampler_run(cv_sampler *s, uint64_t seed, uint64_t k, int count, float *out);

/* All n maps in one call (batches of `batch`). */
cv_status cv_sample_generate(cv_ctx *ctx, cv_model *m, const cv_norm *nrm, int64_t n, float t, uint64_t seed,
                             int batch, int pixel_noise, float *out);

#endif
