/* cv_train.h -- one training run of a cv_model on a device: the training
 * graph and plan, RMSprop (or Adam) over the parameter arenas, gradient
 * clipping and adaptive skipping, optional weight EMA, and checkpoints.
 *
 * A step is: upload batch, zero parameter gradients, forward, backward,
 * squared global gradient norm (device), optimizer (which reads the norm
 * on the device to clip or skip, and writes its skip decision to a device
 * word), EMA (which follows that decision), and ONE blocking read of the
 * step statistics, the decision among them: the host counts the skips the
 * device made.  Nothing is allocated inside a step.
 *
 * Determinism: the noise of step s is (seed, s); the batch order comes
 * from the loader's seed; the skip threshold from the saved norm history.
 * So the same seed on the same device gives the same run, and resuming
 * from a checkpoint continues it bit-identically.
 *
 * Data parallelism (opts.mpi with R > 1 ranks, cv_mpi.h): `batch` stays the
 * global batch B (B % R == 0); each rank computes its B/R rows of every
 * global batch, with the noise of their global rows, and the gradients
 * are summed over the ranks before the norm and the update, so R ranks
 * follow the single-process run up to float rounding.  Step statistics
 * are global batch means on every rank. */
#ifndef CV_TRAIN_H
#define CV_TRAIN_H

#include "model/cv_model.h"
#include "model/cv_mpi.h"
#include "graph/cv_plan.h"
#include "ops/cv_op_elem.h"

typedef struct cv_train_opts {
    int      batch;          /* 4 */
    int      optimizer;      /* 0 RMSprop (default), 1 Adam */
    cv_rmsprop_opts rms;     /* paper: lr 2e-5, momentum 0.9, wd 1e-4 */
    cv_adam_opts    adam;
    float    grad_clip;      /* clip the global norm to this (<= 0: off); 200 */
    float    skip_factor;    /* skip when norm > factor * median of recent norms (<= 0: only non-finite); 10 */
    int      skip_warmup;    /* steps before adaptive skipping starts; 50 */
    float    ema;            /* EMA decay of the weights, 0 = off */
    /* the KL's weight in the gradient (issue 11; all 0 in the paper's recipe):
     * beta = min(1, (step + 1) / kl_warmup) on every group's KL (0: 1 from
     * the start); free bits (Kingma et al. 2016): a group whose batch-mean
     * KL is below free_bits x its dimensions (nats) gets no KL gradient in
     * that step, so the encoder may use it freely up to that much.  The
     * statistics always report the true KL; the loss optimised is
     * recon + sum_g w_g KL_g.  lr_warmup: lr x min(1, (step + 1) / lr_warmup);
     * lr_decay_steps: then a cosine to lr_min_frac x lr at that step (0: flat).
     * kl_weight: the KL of the groups at resolution kl_weight_min_res or
     * more enters the gradient times this (1: the ELBO; > 1 makes
     * information dearer in the high-resolution groups than at the top). */
    int      kl_warmup;
    float    free_bits;
    int      free_bits_max_res;   /* free bits only for groups of this resolution or less (0: every group) */
    float    kl_weight;
    int      kl_weight_min_res;   /* 0: every group */
    int      lr_warmup;
    int      lr_decay_steps;
    float    lr_min_frac;
    char     recipe[32];     /* the recipe the keys came from ("" none: the defaults are the paper's) */
    uint64_t seed;
    cv_mpi  *mpi;            /* data-parallel ranks (borrowed); NULL: one process */
    size_t   bucket_bytes;   /* gradient allreduce buckets; 0: one blocking allreduce */
} cv_train_opts;

cv_train_opts cv_train_opts_default(void);
/* Read [train] from cfg into o (keys: batch, optimizer, lr, alpha, eps,
 * weight_decay, momentum, beta1, beta2, grad_clip, skip_factor,
 * skip_warmup, ema, seed, kl_warmup, free_bits, free_bits_max_res, kl_weight, kl_weight_min_res,
 * lr_warmup, lr_decay_steps,
 * lr_min_frac).  The decay factors alpha, momentum, beta1,
 * beta2 and ema must lie in [0, 1) as floats: CV_ERR_FORMAT naming the
 * key, the value and its origin otherwise. */
cv_status cv_train_opts_read(cv_cfg *cfg, cv_train_opts *o);

/* Recipes: named sets of configuration keys (cosmovae-train --recipe),
 * mostly [train] keys; a recipe may set [model] keys of the layout too
 * (latent_skip_top), never the sizes a preset chooses.  "paper" is the
 * paper's training exactly (the defaults); "budget" the best measured for
 * a few minutes of CPU (doc/science.md); "budget-v1" the budget recipe as
 * it was before the decoder layout and 2 free nats joined it, so that earlier rows of
 * doc/science.md can be made again.  [train] recipe records the name in
 * a run's configuration, whose keys a resumed run reads, so that a
 * checkpoint keeps its recipe even when a later release changes it. */
typedef struct cv_recipe_kv { const char *section, *key, *value; } cv_recipe_kv;
typedef struct cv_recipe {
    const char  *name, *summary;
    cv_recipe_kv kv[16];     /* NULL-terminated */
} cv_recipe;
const cv_recipe *cv_train_recipe(const char *name);   /* NULL if unknown */
const cv_recipe *cv_train_recipe_at(int i);           /* i-th, NULL past the last */
const char      *cv_train_recipe_names(void);          /* "paper, budget or budget-v1", for messages */

typedef struct cv_trainer cv_trainer;

typedef struct cv_step_stats {
    double loss, recon, kl;          /* batch means, nats per dim */
    double kl_group[CV_MAX_GROUPS];
    double kl_weight[CV_MAX_GROUPS]; /* the weight of each group's KL in this step's gradient */
    double lr;                       /* this step's learning rate */
    int    n_groups;
    double gnorm;                    /* before clipping */
    int    skipped;                  /* this step was skipped (the device's decision) */
    double skip_threshold;
} cv_step_stats;

/* The trainer borrows ctx and model (which must already be on the device). */
cv_status cv_trainer_new(cv_ctx *ctx, cv_model *m, const cv_train_opts *o, cv_trainer **out);
void      cv_trainer_free(cv_trainer *t);
/* Initialise parameters (seeded) and zero the optimizer state. */
cv_status cv_trainer_init_params(cv_trainer *t);
/* One optimizer step on a normalised batch (B, C, H, W) -- the global batch;
 * each rank reads its own rows; host memory must stay valid until the call
 * returns.  With several ranks every rank must call it. */
cv_status cv_trainer_step(cv_trainer *t, const float *batch, cv_step_stats *s);
/* Negative ELBO etc. of a (global) batch whose first n_valid rows count,
 * without updating (no backward).  With an EMA (opts.ema > 0) it is
 * measured with the EMA weights, which encoding and sampling use: they are
 * copied over the parameters for the forward pass (the training weights
 * wait in a device buffer allocated by cv_trainer_new) and the training
 * weights are copied back, bit for bit, so training goes on exactly as
 * without the evaluation.  With several ranks every rank must call it. */
cv_status cv_trainer_eval(cv_trainer *t, const float *batch, int n_valid, cv_step_stats *s);
int64_t   cv_trainer_steps(const cv_trainer *t);
int64_t   cv_trainer_skipped(const cv_trainer *t);
void      cv_trainer_set_steps(cv_trainer *t, int64_t step);
/* thr > 0: every later step skips above this gradient norm instead of the
 * adaptive threshold (for tests and experiments; not saved); 0: adaptive
 * again. */
void      cv_trainer_set_skip_threshold(cv_trainer *t, float thr);
const cv_graph *cv_trainer_graph(const cv_trainer *t);
const cv_plan  *cv_trainer_plan(const cv_trainer *t);
const cv_model_io *cv_trainer_io(const cv_trainer *t);
double    cv_trainer_flops_per_step(const cv_trainer *t);   /* forward + backward, model FLOPs */
/* Several ranks: every rank's parameters must be bit-identical (a checksum
 * compared across the ranks; CV_ERR_NUMERIC naming the ranks otherwise).
 * Collective; CV_OK at once for one process. */
cv_status cv_trainer_check_replicas(cv_trainer *t);
/* Gradient allreduce statistics; 0 if there is a single rank. */
int       cv_trainer_sync_stats(const cv_trainer *t, cv_gradsync_stats *out);

/* Checkpoint: parameters, optimizer state, EMA, meta.  epoch/index are the
 * loader position to resume from. */
cv_status cv_trainer_save(cv_trainer *t, const char *path, const char *config_text, int64_t epoch, int64_t index);
/* Restore everything saved; epoch and index receive the loader position. */
cv_status cv_trainer_load(cv_trainer *t, const char *path, int64_t *epoch, int64_t *index);

#endif
