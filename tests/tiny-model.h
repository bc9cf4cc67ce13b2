/* tiny-model.h -- the tiny VDVAE of the whole-model tests (8x8 maps, two
 * encoder stages, three decoder stages, 3x3 convolutions that become 1x1
 * at 2x2) and its reference-path loss, for cv_chk_fd_check. */
#ifndef CV_TINY_MODEL_H
#define CV_TINY_MODEL_H

#include "cv_plan.h"
#include "cv_model.h"

static const char tiny_cfg[] =
    "[model]\nsize = 8\nchannels = 3\nwidth = 8\nbottleneck = 4\nzdim = 2\n"
    "enc_res = 8,4\nenc_blocks = 1,1\ndec_res = 2,4,8\ndec_blocks = 1,1,1\n"
    "bias_max_res = 8\nlogsigma_floor = -5\n";

typedef struct world {
    cv_model   *m;
    cv_graph   *g;
    cv_model_io io;
    cv_refplan *ref;
    double    **rp, **rdp;      /* per-parameter double arrays */
    int64_t     nf;
    uint64_t    seed, step;
} world;

/* The batch-mean loss of the reference path at w's weights, seed and step. */
static inline double ref_loss(void *u) {
    world *w = u;
    cv_refplan_forward(w->ref, w->rp, w->seed, w->step);
    const double *l = cv_refplan_value(w->ref, w->io.loss);
    double s = 0;
    for (int64_t i = 0; i < cv_graph_batch(w->g); i++) s += l[i];
    return s / (double)cv_graph_batch(w->g);
}

#endif
