/* cv_probe.h -- the linear probe of the paper (section 3): one dense layer
 * without activation, latent -> parameters, trained with Adam on the train
 * split, the epoch chosen on the valid split, scored by R^2 per parameter
 * on the test split; and the closed-form least-squares fit and a ridge
 * regression (its strength chosen on the valid split) beside it.
 *
 * Data handling: latents are standardised with the train split's mean and
 * standard deviation per dimension (an affine change of the inputs, which
 * a dense layer absorbs: it changes the optimisation, not the model
 * class); targets are standardised likewise, after log10 for the
 * parameters whose prior is log-uniform (names starting with "A_") unless
 * linear targets are asked for.  R^2 = 1 - SS_res / SS_tot on the test
 * split in the (log-)target space, as sklearn.metrics.r2_score.
 *
 * Uncertainty: the test split is resampled by simulation (all maps of a
 * drawn simulation together, with replacement; maps stand for themselves
 * when the file has no sim variable) and R^2 recomputed with the fitted
 * weights; the standard deviation and the 68 % interval (15.87th and
 * 84.13th percentiles) of the resampled R^2 are reported, for the probe and
 * for the closed form.  A resample in which some parameter takes a single
 * value (the same simulation drawn every time) has no R^2 and is left out.
 *
 * The closed form needs the D x D normal equations: it is computed only
 * when D is below the number of train maps (else X^T X is singular: the
 * fit would interpolate the train split) and at most lstsq_max_dim (4096:
 * 2 x 128 MiB and a Cholesky of ~2e10 flops); otherwise it is skipped,
 * its R^2 are NaN and lstsq_note says why.  The rest needs about 8 bytes
 * x maps x D beside the latent file (a few thousand maps of D ~ 20,000:
 * ~0.5 GiB).
 *
 * The library part is pure computation on host arrays: thread-safe for
 * distinct inputs; matrix products go through CBLAS. */
#ifndef CV_PROBE_H
#define CV_PROBE_H

#include "analysis/cv_latent.h"

typedef struct cv_probe_opts {
    int      epochs;          /* 200 (the paper) */
    double   lr;              /* 0.0025 (the paper) */
    int      batch;           /* 32 (Keras' default) */
    double   beta1, beta2;    /* Adam: 0.9, 0.999 */
    double   eps;             /* Adam: 1e-7 (Keras) */
    int      log_a;           /* 1: log10 targets for "A_*" parameters */
    uint64_t seed;            /* weight init, shuffling and the bootstrap; 1 */
    int      n_boot;          /* bootstrap resamples of the test simulations; 1000 (0: none) */
    int      lstsq_max_dim;   /* the closed form only for D <= this (and D < train maps); 4096 */
} cv_probe_opts;

/* The ridge strengths tried: alpha = 10^(ALPHA_LO + k/2), k < N_ALPHA
 * (1e-4 .. 1e3), lambda = alpha x train maps on standardised latents. */
#define CV_PROBE_ALPHA_LO (-4.0)
#define CV_PROBE_N_ALPHA  15

/* Fewer test simulations than this and R^2 means little (a warning). */
#define CV_PROBE_FEW_SIMS 10
cv_probe_opts cv_probe_opts_default(void);

typedef struct cv_probe_result {
    int      n_param;
    int64_t  n_train, n_valid, n_test;
    int      best_epoch;      /* 1-based epoch whose weights were kept */
    double   best_valid_mse;  /* standardised targets */
    double  *r2;              /* (n_param) Adam probe, test split */
    double  *r2_lstsq;        /* (n_param) closed-form least squares, test split; NaN if skipped */
    int     *is_log;          /* (n_param) 1 if regressed in log10 */
    double   ridge;           /* ridge added to make X^T X positive definite (0 normally) */
    int      has_lstsq;       /* 0: the closed form was skipped, lstsq_note says why */
    char     lstsq_note[160];
    int64_t  n_test_sims;     /* simulations in the test split (maps, if boot_by_map) */
    int      boot_by_map;     /* the file has no sim variable: maps were resampled */
    int      n_boot, n_boot_used;  /* resamples drawn, and those with an R^2 */
    /* (n_param) each: bootstrap standard deviation and 68 % interval; NaN
     * without a bootstrap (n_boot 0, fewer than 2 usable resamples) */
    double  *r2_sd, *r2_lo, *r2_hi;
    double  *r2_lstsq_sd, *r2_lstsq_lo, *r2_lstsq_hi;
    /* ridge regression, the strength chosen per parameter on the valid
     * split (has_ridge 0 and NaN when D > lstsq_max_dim) */
    int      has_ridge;
    double  *r2_ridge, *ridge_alpha;          /* (n_param): test R^2; alpha = lambda / train maps */
    double  *r2_ridge_sd, *r2_ridge_lo, *r2_ridge_hi;
} cv_probe_result;
void cv_probe_result_free(cv_probe_result *r);

/* Called after each epoch with the mean train loss and the valid loss
 * (MSE of standardised targets); may be NULL. */
typedef void (*cv_probe_progress)(void *user, int epoch, double train_mse, double valid_mse);

/* Run the probe on a latent file's contents (needs params and split).
 * Errors: an empty train, valid or test split (named), a non-finite
 * parameter (map and name), a parameter <= 0 that is to be taken in log,
 * a parameter constant over the train split.  res is filled on success;
 * free with cv_probe_result_free. */
cv_status cv_probe_run(const cv_latent *lat, const cv_probe_opts *o, cv_probe_result *res,
                       cv_probe_progress progress, void *user);

/* ---- building blocks (exposed for tests) --------------------------------- */

/* R^2 of prediction yhat against y for column p of (n, P) arrays; when y
 * takes a single value, 1 for a perfect prediction and 0 otherwise
 * (sklearn's convention). */
double cv_probe_r2(const double *y, const double *yhat, int64_t n, int P, int p);

/* Bootstrap of R^2 over groups: n_boot resamples of the n_group groups
 * with replacement (seeded: resample b, draw j from (seed, b, j)), every
 * map i of a drawn group (group[i] in [0, n_group)) taken together; R^2 of
 * column p of y (n, P) against yhat on the resampled maps.  Resamples in
 * which some column of y is constant are left out (*n_used counts the
 * others).  sd, lo, hi (P each): standard deviation (ddof 1) and the
 * 15.87th / 84.13th percentiles of the usable R^2; NaN if fewer than 2. */
cv_status cv_probe_bootstrap(const double *y, const double *yhat, int64_t n, int P, const int64_t *group, int64_t n_group,
                             int n_boot, uint64_t seed, double *sd, double *lo, double *hi, int *n_used);

/* Least squares without intercept (inputs centred by the caller):
 * W = argmin |X W - Y|^2, X (n, D), Y (n, P) -> W (D, P), by Cholesky of
 * X^T X.  If X^T X is not positive definite a ridge of 1e-10 (then x100
 * each try) times its mean diagonal is added; *ridge reports it. */
cv_status cv_probe_lstsq(const double *X, const double *Y, int64_t n, int D, int P, double *W, double *ridge);

/* Ridge regression without intercept: W = (X^T X + lambda I)^-1 X^T Y,
 * lambda > 0. */
cv_status cv_probe_ridge(const double *X, const double *Y, int64_t n, int D, int P, double lambda, double *W);

#endif
