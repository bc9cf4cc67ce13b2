/* cv_loader.h -- training batches from a cv_dataset: one split, seeded
 * per-epoch shuffling, the 8 dihedral augmentations, log10 + per-channel
 * normalisation from the file, and a background prefetch thread.
 *
 * Determinism: everything a batch contains is a function of (seed, epoch,
 * index within the epoch) only -- the order of an epoch is a Fisher-Yates
 * shuffle driven by the counter-based RNG keyed on (seed, epoch), the
 * augmentation of the map at position i of epoch e is drawn from
 * (seed, e, i) -- never of timing or prefetch depth.  So the same seed
 * gives the same batches, and cv_loader_seek() to a position saved with
 * cv_loader_tell() resumes a run bit-identically.
 *
 * Epochs: a training loader (drop_last = 1) delivers floor(M / B) full
 * batches per epoch of M maps and then moves on to the next epoch; an
 * evaluation loader (drop_last = 0, shuffle = 0) delivers ceil(M / B)
 * batches, the last one partial (*n_valid < B), then the next epoch.
 * Memory: (prefetch + 2) batches of B*C*H*W floats plus a permutation of
 * the split's map indices, whatever the dataset size. */
#ifndef CV_LOADER_H
#define CV_LOADER_H

#include "dataset/cv_data.h"

typedef struct cv_loader cv_loader;

typedef struct cv_loader_opts {
    int      split;      /* CV_SPLIT_TRAIN (default), _VALID, _TEST or CV_SPLIT_ALL */
    int      batch;      /* B, default 4 */
    uint64_t seed;       /* default 0 */
    int      augment;    /* 1: a random one of the 8 dihedral transforms per map (default 0) */
    int      normalise;  /* 1: (transform(x) - norm_mean) / norm_std per channel (default 1) */
    int      shuffle;    /* 1: new seeded order every epoch (default 1) */
    int      drop_last;  /* 1: only full batches (default 1) */
    int      prefetch;   /* batches read ahead by the background thread; 0 = none (default 2) */
} cv_loader_opts;
cv_loader_opts cv_loader_opts_default(void);

/* The dataset must outlive the loader.  Fails (CV_ERR_ARG) if the split
 * holds no maps, or fewer than B with drop_last, or augment is asked of
 * non-square maps. */
cv_status cv_loader_new(cv_dataset *ds, const cv_loader_opts *o, cv_loader **out);
void      cv_loader_free(cv_loader *l);                 /* stops the thread; NULL no-op */

/* The next batch.
 *   batch:     (B, C, H, W) float32, caller-owned; rows >= *n_valid are zero
 *   map_index: (B) dataset map indices, -1 for rows >= *n_valid; may be NULL
 *   aug:       (B) dihedral code 0..7 applied to each row (see
 *              cv_data_dihedral); may be NULL
 *   n_valid:   rows filled (B except for the last batch without drop_last);
 *              may be NULL
 * A read error (naming file and map) is reported by the call that would
 * have returned the batch; the position is then unchanged. */
cv_status cv_loader_next(cv_loader *l, float *batch, int64_t *map_index, int *aug, int *n_valid);

/* Position of the NEXT batch to be returned: epoch (from 0) and index =
 * maps of that epoch already delivered. */
void      cv_loader_tell(const cv_loader *l, int64_t *epoch, int64_t *index);
/* Resume at a position returned by cv_loader_tell (drops what was
 * prefetched).  index must be < cv_loader_epoch_maps and a multiple of B. */
cv_status cv_loader_seek(cv_loader *l, int64_t epoch, int64_t index);

int64_t cv_loader_epoch_maps(const cv_loader *l);     /* maps of the split */
int64_t cv_loader_epoch_batches(const cv_loader *l);  /* batches per epoch */
int     cv_loader_batch(const cv_loader *l);          /* B */

/* The order of maps (dataset indices) in epoch e: perm (epoch_maps). */
void    cv_loader_epoch_order(const cv_loader *l, int64_t epoch, int64_t *perm);

#endif
