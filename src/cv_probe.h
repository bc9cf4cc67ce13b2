/* cv_probe.h -- the linear probe of the paper (section 3): one dense layer
 * without activation, latent -> parameters, trained with Adam on the train
 * split, the epoch chosen on the valid split, scored by R^2 per parameter
 * on the test split; and the closed-form least-squares fit beside it.
 *
 * Data handling: latents are standardised with the train split's mean and
 * standard deviation per dimension (an affine change of the inputs, which
 * a dense layer absorbs: it changes the optimisation, not the model
 * class); targets are standardised likewise, after log10 for the
 * parameters whose prior is log-uniform (names starting with "A_") unless
 * linear targets are asked for.  R^2 = 1 - SS_res / SS_tot on the test
 * split in the (log-)target space, as sklearn.metrics.r2_score.
 *
 * The library part is pure computation on host arrays: thread-safe for
 * distinct inputs; matrix products go through CBLAS. */
#ifndef CV_PROBE_H
#define CV_PROBE_H

#include "cv_latent.h"

typedef struct cv_probe_opts {
    int      epochs;          /* 200 (the paper) */
    double   lr;              /* 0.0025 (the paper) */
    int      batch;           /* 32 (Keras' default) */
    double   beta1, beta2;    /* Adam: 0.9, 0.999 */
    double   eps;             /* Adam: 1e-7 (Keras) */
    int      log_a;           /* 1: log10 targets for "A_*" parameters */
    uint64_t seed;            /* weight init and shuffling; 1 */
} cv_probe_opts;
cv_probe_opts cv_probe_opts_default(void);

typedef struct cv_probe_result {
    int      n_param;
    int64_t  n_train, n_valid, n_test;
    int      best_epoch;      /* 1-based epoch whose weights were kept */
    double   best_valid_mse;  /* standardised targets */
    double  *r2;              /* (n_param) Adam probe, test split */
    double  *r2_lstsq;        /* (n_param) closed-form least squares, test split */
    int     *is_log;          /* (n_param) 1 if regressed in log10 */
    double   ridge;           /* ridge added to make X^T X positive definite (0 normally) */
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

/* R^2 of prediction yhat against y for column p of (n, P) arrays. */
double cv_probe_r2(const double *y, const double *yhat, int64_t n, int P, int p);

/* Least squares without intercept (inputs centred by the caller):
 * W = argmin |X W - Y|^2, X (n, D), Y (n, P) -> W (D, P), by Cholesky of
 * X^T X.  If X^T X is not positive definite a ridge of 1e-10 (then x100
 * each try) times its mean diagonal is added; *ridge reports it. */
cv_status cv_probe_lstsq(const double *X, const double *Y, int64_t n, int D, int P, double *W, double *ridge);

#endif
