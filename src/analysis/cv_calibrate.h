/* cv_calibrate.h -- prior temperatures per latent resolution chosen so that
 * generated maps have the reference maps' power (issue 11, doc/science.md).
 *
 * A hierarchical VAE draws the modes of a map at the resolution of the
 * group that places them: a group on r x r positions sets the shells
 * int(|k| / kF) in (r/4, r/2] (the 4x4 group the first two, the 8x8 group
 * shells 3-4, ...); the shells above the finest latent resolution's r/2
 * are drawn by the deterministic decoder and are not calibrated.  When a prior is narrower or wider than the
 * aggregate posterior it stands for, the generated maps lack or exceed the
 * power of those shells.  cv_calibrate_temperatures chooses the
 * temperature T_r of each group so that, in every band, the mean over the
 * auto-spectra of every channel and over the band's shells (each shell
 * once) of log(P_gen / P_ref) is zero.  Every band depends on every
 * temperature (a finer group's noise moves the coarser shells too: one
 * band at a time, coarsest first, does not converge), so the bands are
 * solved together by Newton's method on log T (the Jacobian by forward
 * differences, steps damped to a factor 2, T kept in [t_lo, t_hi]), with
 * the same noise at every trial (common random numbers: the objective is
 * then a smooth function of T).  The reference is the
 * mean spectrum of the maps of one split (the valid split: the test split
 * stays for the comparison), in cosmovae-pk's convention (log10 fields
 * when every channel is log10, the fields as they are when none is; mixed
 * transforms are refused).  The temperatures are left set on the model
 * (cv_model_set_temperature_at), so sampling graphs built afterwards use
 * them.  With a fitted top prior the top group is not tempered.
 *
 * Invariant: the model's temperatures are set only when the calibration
 * succeeds; on an error they are restored to what they were before.
 * Host orchestration; the sampling and the spectra run on the device. */
#ifndef CV_CALIBRATE_H
#define CV_CALIBRATE_H
#include "model/cv_sample.h"
#include "analysis/cv_pk.h"

/* What the temperatures are fitted to. */
enum cv_calib_objective {
    CV_CALIB_BANDS = 0,     /* every band's mean log ratio zero (as many equations as temperatures) */
    CV_CALIB_SHELLS = 1,    /* least squares of the log ratio of every auto-spectrum at every shell
                               of the bands: the shape within a band counts too */
};

#define CV_CALIB_STREAM 0xca11b4a7eULL

typedef struct cv_calib_opts {
    int64_t n_gen;          /* generated maps per trial (default 256) */
    int64_t n_ref;          /* at most this many reference maps, evenly spaced (default 2000) */
    int     batch;          /* maps per sampler pass (default 16) */
    uint64_t seed;          /* noise of every trial (default 1); cosmovae-sample passes its
                               --seed ^ CV_CALIB_STREAM, so that the maps it writes are not the
                               trials' */
    int     iters;          /* Newton steps (default 5; each costs 1 + bands trials) */
    double  tol;            /* bands: stop when every band's |mean log ratio| is below (default 0.01) */
    int     objective;      /* enum cv_calib_objective (default CV_CALIB_BANDS) */
    double  t_lo, t_hi;     /* temperature bracket (default 0.05, 20) */
    int     pixel_noise;    /* as cv_sampler_new */
    const cv_top_prior *top;/* as cv_sampler_new; the top group is then not calibrated */
} cv_calib_opts;
cv_calib_opts cv_calib_opts_default(void);

/* One calibrated resolution. */
typedef struct cv_calib_row {
    int    res;             /* latent resolution r */
    int    shell_lo, shell_hi;  /* its band of shell indices, inclusive */
    double t;               /* the temperature chosen */
    double ratio_before;    /* exp(mean log P_gen / P_ref) over the band, every T = 1 */
    double ratio_after;     /* ... with every temperature chosen (the best trial: the least rms residual) */
    int    at_bound;        /* 1: t is a bound of [t_lo, t_hi] */
} cv_calib_row;

/* Calibrate the latent resolutions of m against the maps of split `split`
 * of ref (physical units, the model's channels and size: check with
 * cv_norm_check_dataset first).  rows: room for CV_MAX_STAGES; *n_rows the
 * resolutions calibrated.  progress(user, done, total) after each trial
 * (may be NULL).  CV_ERR_ARG when the split has fewer than 2 maps. */
cv_status cv_calibrate_temperatures(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ref, int split,
                                    const cv_calib_opts *o, cv_calib_row *rows, int *n_rows,
                                    void (*progress)(void *user, int done, int total), void *user);
#endif
