/* cv_features.h -- the classical summary statistics of a map, the
 * yardstick every latent probe is read against (issue 11, doc/science.md).
 *
 * Per map of C channels, with delta the transformed field of each channel
 * (log10 of the value for "log10" channels, the value itself otherwise):
 *
 *   1. log10 of the binned auto-power spectrum of every channel
 *      (C x n_bins numbers);
 *   2. the cross-correlation coefficient r_ab = P_ab / sqrt(P_aa P_bb) of
 *      every channel pair a < b in the same bins (C (C-1)/2 x n_bins);
 *   3. the mean, standard deviation, skewness and excess kurtosis of delta
 *      over the map's pixels, per channel (C x 4).
 *
 * in that order (spectra in cv_pk's order: auto first, then cross (a, b)).
 * For 3 channels and 8 bins: 24 + 24 + 12 = 60 numbers.
 *
 * The spectra are cv_pk's (Pylians convention, log10 - mean delta); the
 * bins group cv_pk's shells by shell index with logarithmically spaced
 * edges from the fundamental mode to the Nyquist shell N/2 (shells in the
 * corners beyond N/2 are left out: they are incomplete rings); a bin's
 * power is the mode-weighted mean over its shells.  With fewer shells than
 * bins every shell is its own bin.
 *
 * Two paths compute the same numbers: cv_features_compute (spectra on the
 * device via cv_pk) and cv_features_compute_ref (the plain-C double
 * reference of cv_pk); the statistics of 2 and 3 are host code shared by
 * both.  A cv_features is used from one thread at a time. */
#ifndef CV_FEATURES_H
#define CV_FEATURES_H
#include "dataset/cv_data.h"
#include "analysis/cv_latent.h"
#include "analysis/cv_pk.h"

#define CV_FEATURES_N_MOMENTS 4
#define CV_FEATURES_BINS_DEFAULT 8

/* The bins of a geometry: bin_of (n_shell) receives each shell's bin or -1
 * (left out).  Returns the number of bins (<= n_bins, >= 1). */
int cv_features_bins(const cv_pk_geom *g, int n_bins, int32_t *bin_of);

/* Numbers per map for C channels and B bins (the B actually used). */
int cv_features_dim(int n_chan, int n_bins);

/* The name of feature i ("logP Mgas k0.25-0.50", "r Mgas-HI k...",
 * "skew B"), into buf. */
const char *cv_features_name(const cv_pk_geom *g, int n_bins, int n_chan, const char *const *chan_names, int i,
                             char *buf, size_t n);

typedef struct cv_features cv_features;

/* Plan for maps of side n, box `box` Mpc/h, n_chan channels whose
 * transforms are given (NULL: all log10; all "log10" or all "none", the
 * spectra need one mode), n_bins (<= 0: the default).  Borrows ctx. */
cv_status cv_features_new(cv_ctx *ctx, int n, double box, int n_chan, const char *const *transforms, int n_bins,
                          cv_features **out);
void      cv_features_free(cv_features *f);             /* NULL is a no-op */
int       cv_features_n_dim(const cv_features *f);
int       cv_features_n_bins(const cv_features *f);     /* bins used */
const cv_pk_geom *cv_features_geometry(const cv_features *f);

/* Features of `count` maps (physical units).  out: (count, dim).
 * CV_ERR_NUMERIC names the map (0-based, within the call) when a value
 * cannot be transformed (log of a value <= 0) or a channel is constant. */
cv_status cv_features_compute(cv_features *f, const float *maps /* (count, C, N, N) */, int64_t count, float *out);

/* The same with cv_pk's double reference for the spectra (tests). */
cv_status cv_features_compute_ref(const cv_features *f, const float *maps, int64_t count, double *out);

/* Every map of a dataset (square maps only), read in chunks: a latent
 * file (cv_latent.h) whose codes are the features, with params, sim, split
 * and geometry carried over and the model attribute describing the
 * features.  progress(user, maps_done) after each chunk; may be NULL. */
cv_status cv_features_dataset(cv_ctx *ctx, cv_dataset *ds, int n_bins, cv_latent **out,
                              void (*progress)(void *user, int64_t done), void *user);
/* The thumbnail yardstick of a code laid out on R x R positions (the paper's
 * code, the 4x4 group's posterior mean, is 16 channels on 4 x 4): per map,
 * the mean of each transformed field (log10 where `log10_chan[c]`) over
 * each of R x R equal blocks, C x R x R numbers, channel-major, block rows
 * then columns.  A code that a linear probe reads no better than this says
 * no more than a coarse picture of the map does.  H and W must be multiples
 * of R.  Host code, double sums.  CV_ERR_NUMERIC names the map (within the
 * call), channel and pixel of a value without a log10 or not finite. */
cv_status cv_features_coarse(const float *maps /* (count, C, H, W) */, int64_t count, int C, int H, int W,
                             const int *log10_chan, int r, float *out /* (count, C r r) */);
/* The name of thumbnail number i ("Mgas block 1,2"), into buf. */
const char *cv_features_coarse_name(int n_chan, const char *const *chan_names, int r, int i, char *buf, size_t n);

/* cv_features_coarse of every map of a dataset, as cv_features_dataset. */
cv_status cv_features_coarse_dataset(cv_dataset *ds, int r, cv_latent **out,
                                     void (*progress)(void *user, int64_t done), void *user);
#endif
