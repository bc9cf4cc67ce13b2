/* cv_model.h -- the VDVAE (Child 2020) for multi-field maps: its
 * configuration (presets `small` and `paper`, or an INI file), parameter
 * table, deterministic initialisation, the parameter/gradient/optimizer
 * arenas, and graph building for training, encoding and sampling.
 *
 * Architecture (DESIGN.md "The model"): residual bottleneck blocks
 * GELU-1x1-GELU-3x3-GELU-3x3-GELU-1x1 (+x), encoder stages ending in 2x
 * average pooling; decoder of top-down blocks (posterior and prior nets,
 * reparameterised z, z projection, residual block), nearest upsampling
 * between stages, learned starting tensors up to bias_max_res; per-pixel,
 * per-field Gaussian output with floored log sigma.  Loss: negative ELBO
 * in nats per data dimension. */
#ifndef CV_MODEL_H
#define CV_MODEL_H

#include "runtime/cv_cfg.h"
#include "graph/cv_graph.h"

#define CV_MAX_STAGES 10
#define CV_MAX_GROUPS 64

typedef struct cv_model_cfg {
    int   size, channels, width, bottleneck, zdim;
    int   n_enc, enc_res[CV_MAX_STAGES], enc_blocks[CV_MAX_STAGES];
    int   n_dec, dec_res[CV_MAX_STAGES], dec_blocks[CV_MAX_STAGES];
    int   bias_max_res;
    int   periodic;       /* [model] padding = periodic: circular 3x3 convolutions (else zero padding) */
    int   periodic_max_res;  /* [model] padding_max_res: ... at resolutions up to this one only */
    int   latent_max_res;    /* [model] latent_max_res: top-down blocks above it carry no latent group */
    float logsig_floor;
} cv_model_cfg;

/* INI text of a preset ("small", "paper"), with [model] and [train]; NULL if unknown. */
const char *cv_model_preset(const char *name);
/* Read and validate [model] from cfg. */
cv_status   cv_model_cfg_read(cv_cfg *cfg, cv_model_cfg *out);

typedef enum cv_model_mode {
    CV_MODEL_TRAIN,      /* x -> loss (negative ELBO per dim), recon, KL per group */
    CV_MODEL_ENCODE,     /* x -> posterior means (top group, or all with z = mean) */
    CV_MODEL_SAMPLE,     /* prior samples at temperature t -> (mu, log sigma) of p(x|z) */
    CV_MODEL_RECON,      /* x -> reconstruction mean with z = posterior means */
} cv_model_mode;

typedef struct cv_model_io {
    int x;                        /* input value (train/encode/recon) */
    int loss, recon;              /* per-sample (N,1,1,1) stats (train) */
    int n_groups;
    int kl[CV_MAX_GROUPS];        /* per-sample KL per latent group, nats per dim (train;
                                     encode with all_groups: along z = posterior means) */
    int mq[CV_MAX_GROUPS];        /* posterior means (encode: top only unless all_groups) */
    int group_res[CV_MAX_GROUPS]; /* resolution of each group */
    int mu, logs;                 /* output distribution (train/sample/recon) */
    int z_top;                    /* sample with cv_model_set_top_input: the top group's z, (N, Z, r, r) */
    int lsq_top;                  /* encode: the top group's posterior log sigma */
} cv_model_io;

typedef struct cv_model cv_model;

cv_status cv_model_new(const cv_model_cfg *cfg, cv_model **out);    /* host only; caller frees */
void      cv_model_free(cv_model *m);
const cv_model_cfg *cv_model_config(const cv_model *m);
/* Sampling graphs built afterwards draw the groups at decoder resolution
 * res with prior temperature t instead of the build's temperature (t >= 0,
 * finite).  CV_ERR_ARG naming the decoder's resolutions when res is not
 * one of them. */
cv_status cv_model_set_temperature_at(cv_model *m, int res, float t);
/* The temperature set at res: >= 0, or -1 when none is set (the build's
 * temperature applies) or res is not a decoder resolution. */
float     cv_model_temperature_at(const cv_model *m, int res);
/* Forget the temperature set at res (the build's applies again). */
void      cv_model_unset_temperature_at(cv_model *m, int res);
/* Sampling graphs built afterwards (on != 0) take the top group's z as an
 * input value, io->z_top, instead of drawing it from the prior: the
 * sampler's fitted top prior (cv_top_prior).  The other groups still draw
 * from their conditional priors. */
void      cv_model_set_top_input(cv_model *m, int on);

int            cv_model_n_params(const cv_model *m);
const char    *cv_model_param_name(const cv_model *m, int i);
const int64_t *cv_model_param_shape(const cv_model *m, int i);
int64_t        cv_model_n_floats(const cv_model *m);      /* total parameter count */
int64_t        cv_model_param_offset(const cv_model *m, int i);   /* in the flat host layout */
/* Deterministic initialisation into a flat host array of n_floats. */
void           cv_model_init_host(const cv_model *m, uint64_t seed, float *flat);

/* Build a graph.  temperature is used by SAMPLE; all_groups by ENCODE.
 * Caller frees the graph. */
cv_status cv_model_build(cv_model *m, cv_model_mode mode, int64_t batch, float temperature, int all_groups,
                         cv_graph **out, cv_model_io *io);

/* ---- device state: params, grads, two optimizer-state arenas, EMA ------ */
enum { CV_ARENA_PARAMS, CV_ARENA_GRADS, CV_ARENA_OPT1, CV_ARENA_OPT2, CV_ARENA_EMA, CV_ARENA_COUNT };
/* Allocate the arenas on ctx (ema only if with_ema); all zero. */
cv_status cv_model_to_device(cv_model *m, cv_ctx *ctx, int with_ema);
const cv_tensor *cv_model_tensors(const cv_model *m, int arena);      /* one view per parameter */
cv_arena        *cv_model_arena(cv_model *m, int arena);
/* Copy a flat host array to / from an arena. */
cv_status cv_model_upload(cv_model *m, int arena, const float *flat);
cv_status cv_model_download(cv_model *m, int arena, float *flat);

#endif
