/* cv_ckpt.h -- training checkpoints in NetCDF-4.
 *
 * One file, written under a temporary name and renamed into place, so a
 * crash or a full disk never leaves a torn checkpoint and the previous one
 * survives.  (STYLE.md suggests llm.c's separate model and state files; one
 * file with a group makes the pair atomic.)  Layout:
 *   global attributes: cv_format = "cosmovae-checkpoint", cv_format_version = 2,
 *     config (full INI text), step, epoch, epoch_index, seed, skipped, n_floats
 *   one float variable per parameter, named by path (enc.r64.b0.c1.w), with
 *     its real dimensions;
 *   group "state": the optimizer arenas (opt1, opt2) and, when used, "ema",
 *     each as variables of the same names; variable gnorm_history.
 * Inspect with `ncdump -h run/checkpoint.nc`. */
#ifndef CV_CKPT_H
#define CV_CKPT_H

#include "model/cv_model.h"

typedef struct cv_ckpt_meta {
    int64_t  step, epoch, epoch_index, skipped;
    uint64_t seed;
    int      n_hist;          /* entries of gnorm history (<= 256) */
    float    hist[256];
} cv_ckpt_meta;

/* flat arrays (n_floats each); opt1/opt2/ema may be NULL (not stored). */
cv_status cv_ckpt_write(const char *path, const cv_model *m, const char *config_text, const cv_ckpt_meta *meta,
                        const float *params, const float *opt1, const float *opt2, const float *ema);

/* Read the config text of a checkpoint (caller frees) and its meta. */
cv_status cv_ckpt_read_config(const char *path, char **config_text, cv_ckpt_meta *meta);
/* Read arrays for model m (which must match: names and shapes are checked,
 * naming the first mismatch).  which: "params", "opt1", "opt2", "ema";
 * CV_ERR_FORMAT if absent. */
cv_status cv_ckpt_read(const char *path, const cv_model *m, const char *which, float *flat);
int       cv_ckpt_has(const char *path, const char *which);

#endif
