/* cv_fields.h -- synthetic CMD-like maps (Mgas, HI, B) for tests, demos
 * and benchmarks, as DESIGN.md describes: an Eisenstein-Hu no-wiggle
 * linear spectrum normalised to sigma_8, projected through a 5 Mpc/h slab,
 * a Gaussian field with that spectrum (feedback-suppressed at small
 * scales) made lognormal for Mgas; HI ~ Mgas^2 with self-shielded spikes;
 * a bimodal B with magnetised bubbles whose filling factor grows with the
 * wind strength.  Calibrated so that log10 statistics over the LH prior
 * match the real ones (Mgas 10.41 +- 0.49, HI 4.78 +- 1.01,
 * B -12.47 +- 2.04) at every map size; see doc/dataset.md.
 *
 * As in CMD, the 15 maps of a simulation are slices of ONE 3-D realisation
 * (a Gaussian box of size^3 cells, 25 Mpc/h, its mean fixed): map j is
 * the projection through slab j % 5 (width size/5 cells, about 5 Mpc/h)
 * along axis j / 5 (0: z, 1: y, 2: x).  The box's large-scale modes make
 * map means and low-k power vary from map to map (cosmic variance); no
 * map statistic is a deterministic function of the parameters.
 *
 * Every map is a pure function of (size, params, seed, sim, j): same seed,
 * same bytes, in any order and on any thread. */
#ifndef CV_FIELDS_H
#define CV_FIELDS_H

#include "runtime/cv.h"

#define CV_FIELDS_N_CHAN 3
#define CV_FIELDS_N_SLAB 5                      /* slabs per axis */
#define CV_FIELDS_N_MAPS (3 * CV_FIELDS_N_SLAB) /* maps per simulation */
extern const char *const cv_fields_chan_names[CV_FIELDS_N_CHAN];   /* Mgas, HI, B */

/* The CAMELS LH priors of parameter p (cv_data_param_names order):
 * [lo, hi], log-uniform if *is_log. */
void cv_fields_prior(int p, double *lo, double *hi, int *is_log);
/* Latin hypercube over the priors: params (n_sims, 6); each parameter's
 * n_sims strata are each hit once. */
void cv_fields_latin_hypercube(int64_t n_sims, uint64_t seed, double *params);

/* Linear matter power spectrum (Mpc/h)^3 at z = 0 for wavenumber k (h/Mpc):
 * Eisenstein & Hu (1998) no-wiggle transfer function, h = 0.6711,
 * Omega_b = 0.049, n_s = 0.9624, normalised to sigma_8 (top hat 8 Mpc/h). */
double cv_fields_plin(double k, double omega_m, double sigma_8);
/* sigma(R) of that spectrum (top hat of radius R Mpc/h). */
double cv_fields_sigma_r(double r, double omega_m, double sigma_8);
/* The spectrum projected through a slab of depth d (Mpc/h), (Mpc/h)^2:
 * P2(k) = (1/pi) int_0^inf dq P(sqrt(k^2 + q^2)) sinc^2(q d / 2). */
double cv_fields_p2d(double k, double omega_m, double sigma_8, double depth);

/* A generator for size x size maps of a box of CV_DATA_BOX_SIZE Mpc/h.
 * size: a power of two, 8..512.  A generator holds FFT tables, scratch
 * memory and the box of the last simulation asked for (16 size^3 bytes:
 * 4 MiB at 64, 256 MiB at 256): one per thread; ask for the maps of a
 * simulation together. */
typedef struct cv_fields cv_fields;
cv_status cv_fields_new(int size, cv_fields **out);
void      cv_fields_free(cv_fields *f);      /* NULL is a no-op */

/* Slab j (0..14) of a size^3 box: the axis projected along (0 z, 1 y,
 * 2 x) and the cells [lo, hi) along it. */
void cv_fields_slab(int size, int j, int *axis, int *lo, int *hi);

/* Map j (0..14) of simulation `sim`, parameters params (6):
 *   out: (3, size, size) float32 -- Mgas, HI ((Msun/h)/(Mpc/h)^2), B (G);
 * all values finite and > 0.  log10 Mgas = c(params) + g2 / ln 10 exactly,
 * g2 the slab mean of the box's Gaussian field.  CV_ERR_ARG if a parameter
 * is outside (0, 10] or not finite, or j is outside 0..14. */
cv_status cv_fields_map(cv_fields *f, const double *params, uint64_t seed, int64_t sim, int j, float *out);

/* In-place 2D complex FFT of an n x n array (n a power of two) of
 * interleaved (re, im) doubles: data (n, n, 2).  sign -1 forward, +1
 * inverse (unnormalised).  Hand-written (radix 2): the generator needs a
 * host FFT of small power-of-two grids, and the project's FFT library,
 * clFFT, runs on OpenCL devices only. */
void cv_fields_fft2(double *data, int n, int sign);

#endif
