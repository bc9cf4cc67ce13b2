/* cv_pk.h -- auto- and cross-power spectra of square periodic maps, in the
 * Pylians Pk_plane / XPk_plane convention (MAS none) of DESIGN.md:
 *
 *   delta-hat = unnormalised forward FFT of the field delta;
 *   modes kx in (-N/2, N/2], ky in [0, N/2]; on the ky = 0 and ky = N/2
 *   rows only kx >= 0 is kept (one mode per Hermitian pair);
 *   shell index int(|k| / kF), kF = 2 pi / L; the DC shell is dropped;
 *   k(shell) = mean |k| of its modes times kF (h/Mpc);
 *   P(shell) = mean over its modes of Re(a-hat conj(b-hat)) * (L / N^2)^2.
 *
 * The field delta of a map x is, by default, log10(x) minus its mean over
 * the map (CV_PK_DELTA_LOG10), or x / mean(x) - 1 (CV_PK_DELTA_OVER), or
 * x minus its mean (CV_PK_DELTA_LINEAR).  Subtracting the mean changes only
 * the dropped DC mode; it is done for float32 accuracy of the FFT.
 *
 * Two paths compute the same thing: a plain-C reference in double (a
 * direct separable DFT, obviously correct, O(N^3) per map) and the device
 * path (cv_pk object: level and shift kernels, a batched clFFT
 * real-to-complex transform, a shell-binning kernel).  FFTW's lifecycle: cv_pk_new plans
 * and allocates once for one map size, channel count and batch;
 * cv_pk_compute executes any number of times with no allocation.
 *
 * Spectra of a map with C channels are numbered auto first, then cross in
 * (a, b) order with a < b: for (Mgas, HI, B) that is Mgas, HI, B, Mgas-HI,
 * Mgas-B, HI-B.  Thread safety: a cv_pk is used from one thread at a time
 * (it shares its context's queue); cv_pk_new/_free are not thread-safe
 * (clFFT's process-wide setup is reference counted here). */
#ifndef CV_PK_H
#define CV_PK_H

#include "runtime/cv_device.h"

enum cv_pk_delta {
    CV_PK_DELTA_LOG10 = 0,   /* log10(x) - mean over the map (default) */
    CV_PK_DELTA_OVER  = 1,   /* x / mean(x) - 1 */
    CV_PK_DELTA_LINEAR = 2,  /* x - mean(x): the map is already a field */
};
const char *cv_pk_delta_name(int mode);          /* "log10", "overdensity", "linear" */
/* The mode named s, or -1. */
int         cv_pk_delta_parse(const char *s);

/* ---- shell geometry ------------------------------------------------------
 * Read-only after cv_pk_geom_new; caller frees with cv_pk_geom_free.
 * A half-plane mode is addressed as m = ix * (N/2 + 1) + ky, ix in [0, N)
 * the row of the first index (kx = ix <= N/2 ? ix : ix - N), the layout of
 * an R2C transform along the second index. */
typedef struct cv_pk_geom {
    int      n;          /* map side N */
    double   box;        /* L, Mpc/h */
    int      n_half;     /* N/2 + 1 */
    int      n_shell;    /* non-empty shells, DC excluded */
    int32_t *shell;      /* (n_shell) integer shell index int(|k|/kF), >= 1 */
    int64_t *nmodes;     /* (n_shell) modes per shell */
    double  *k;          /* (n_shell) mean |k| of the shell, h/Mpc */
    int32_t *of;         /* (N, N/2+1) output shell of each mode, -1 if not counted */
    int32_t *order;      /* (n_counted) counted modes, sorted by shell */
    int32_t *start;      /* (n_shell + 1) shell s owns order[start[s] .. start[s+1]) */
} cv_pk_geom;

/* n >= 2, box > 0 (CV_ERR_ARG otherwise). */
cv_status cv_pk_geom_new(int n, double box, cv_pk_geom **out);
void      cv_pk_geom_free(cv_pk_geom *g);                   /* NULL is a no-op */

/* Number of spectra for C channels: C (C + 1) / 2. */
int  cv_pk_n_spec(int n_chan);
/* Channels (a, b) of spectrum s (a == b for the auto-spectra). */
void cv_pk_spec_pair(int n_chan, int s, int *a, int *b);
/* "Mgas", "Mgas-HI": the spectrum's name from channel names, into buf. */
const char *cv_pk_spec_name(int n_chan, int s, const char *const *chan_names, char *buf, size_t n);

/* ---- plain-C reference (double) ----------------------------------------- */

/* delta of one map: map (N, N) -> delta (N, N).  CV_ERR_NUMERIC when the
 * log of a value <= 0 (or non-finite) is asked for, or the mean is not
 * positive for CV_PK_DELTA_OVER; the message gives the flat pixel index. */
cv_status cv_pk_delta_ref(const float *map /* (N, N) */, int n, int mode, double *delta /* (N, N) */);

/* Spectrum of the fields a and b as given (no delta transform; b == NULL
 * for the auto-spectrum of a).  pk: (n_shell).  Never fails. */
void cv_pk_ref(const cv_pk_geom *g, const double *a /* (N, N) */, const double *b /* (N, N) or NULL */,
               double *pk /* (n_shell) */);

/* Every spectrum of `count` maps, delta transform included (the reference
 * of cv_pk_compute).  out: (count, n_spec, n_shell). */
cv_status cv_pk_compute_ref(const cv_pk_geom *g, int n_chan, int mode, const float *maps /* (count, C, N, N) */,
                            int64_t count, double *out /* (count, n_spec, n_shell) */);

/* ---- device path --------------------------------------------------------- */

typedef struct cv_pk cv_pk;

typedef struct cv_pk_opts {
    int n_chan;     /* channels per map; default 1 */
    int mode;       /* enum cv_pk_delta; default CV_PK_DELTA_LOG10 */
    int batch;      /* maps per clFFT call; 0 (default): as many as fit in
                       about 256 MiB of device memory, at most 64 */
    int per_spec;   /* binning: 0 (default) all spectra of a map in one pass
                       when n_chan <= 8, else one pass per spectrum; 1 always
                       one pass per spectrum (for tests) */
} cv_pk_opts;
cv_pk_opts cv_pk_opts_default(void);

/* Plan for maps of side n (a size clFFT supports: factors 2, 3, 5, 7, 11,
 * 13) and box size `box`: bake the clFFT plan, allocate the device
 * buffers.  Caller frees with cv_pk_free.  Borrows ctx (must outlive pk). */
cv_status cv_pk_new(cv_ctx *ctx, int n, double box, const cv_pk_opts *o, cv_pk **out);
void      cv_pk_free(cv_pk *pk);                            /* NULL is a no-op */

const cv_pk_geom *cv_pk_geometry(const cv_pk *pk);           /* borrowed */
int               cv_pk_batch(const cv_pk *pk);

/* Every spectrum of `count` maps (physical units; any count, processed in
 * batches).  out: (count, n_spec, n_shell), caller-owned.  A non-finite
 * result (log of a value <= 0, zero mean for the overdensity) is
 * CV_ERR_NUMERIC naming the map (0-based, within this call) and channel. */
cv_status cv_pk_compute(cv_pk *pk, const float *maps /* (count, C, N, N) */, int64_t count,
                        float *out /* (count, n_spec, n_shell) */);

/* ---- statistics over maps ------------------------------------------------ */

/* Per-(spectrum, shell) mean and standard deviation over maps (Welford,
 * double; std with ddof = 0, as numpy.std).  Caller frees with _free. */
typedef struct cv_pk_stats {
    int      n_spec, n_shell;
    int64_t  count;
    double  *mean;      /* (n_spec, n_shell) */
    double  *m2;        /* (n_spec, n_shell) sum of squared deviations */
} cv_pk_stats;
cv_status cv_pk_stats_init(cv_pk_stats *s, int n_spec, int n_shell);
void      cv_pk_stats_add(cv_pk_stats *s, const float *pk /* (count, n_spec, n_shell) */, int64_t count);
double    cv_pk_stats_std(const cv_pk_stats *s, int spec, int shell);
void      cv_pk_stats_free(cv_pk_stats *s);

/* Largest k up to which two mean spectra agree within a relative
 * tolerance: walks shells from the first and stops at the first shell
 * where |b/a - 1| > tol (or a is 0).  Returns the k of the last agreeing
 * shell, 0 if the first shell already disagrees. */
double cv_pk_agree_kmax(const double *k /* (n_shell) */, const double *a /* (n_shell) */,
                        const double *b /* (n_shell) */, int n_shell, double tol);

#endif
