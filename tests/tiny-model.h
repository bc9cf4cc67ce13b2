/* tiny-model.h -- the tiny VDVAE of the whole-model tests (8x8 maps, two
 * encoder stages, three decoder stages, 3x3 convolutions that become 1x1
 * at 2x2), its reference-path loss for cv_chk_fd_check, and one training
 * pass on the device and the reference path, to compare. */
#ifndef CV_TINY_MODEL_H
#define CV_TINY_MODEL_H

#include "check/cv_check.h"
#include "graph/cv_plan.h"
#include "model/cv_model.h"

#include <stdlib.h>

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

/* One training forward and backward of w's graph on the device (weights
 * pf, batch x; gradients into gf, the batch-mean loss into *Ldev) and on
 * the reference path (w->ref made here, gradients into w->rdp, *Lref).
 * Errors are reported as a diagnostic on c. */
static inline cv_status tiny_dev_and_ref(cv_check *chk, cv_ctx *ctx, world *w, const float *pf, const float *x, float *gf, double *Ldev, double *Lref) {
    cv_plan *p = NULL;
    float *stats = NULL;
    const int64_t *xs = cv_graph_value(w->g, w->io.x)->shape, N = xs[0];
    cv_status st = cv_refplan_new(w->g, &w->ref);
    for (int64_t i = 0; st == CV_OK && i < N * xs[1] * xs[2] * xs[3]; i++) cv_refplan_value(w->ref, w->io.x)[i] = x[i];
    if (st == CV_OK) st = cv_plan_new(ctx, w->g, cv_model_tensors(w->m, CV_ARENA_PARAMS), cv_model_tensors(w->m, CV_ARENA_GRADS), 0, &p);
    if (st == CV_OK) st = cv_model_upload(w->m, CV_ARENA_PARAMS, pf);
    if (st == CV_OK) st = cv_arena_zero(cv_model_arena(w->m, CV_ARENA_GRADS), ctx);
    if (st == CV_OK) st = cv_plan_upload(p, w->io.x, x);
    if (st == CV_OK) st = cv_plan_forward(p, w->seed, w->step);
    if (st == CV_OK) st = cv_plan_backward(p, w->io.loss, 1.0f / N, w->seed, w->step);
    if (st == CV_OK && !(stats = malloc(cv_plan_n_stats(p) * sizeof *stats))) st = cv_error(CV_ERR_NOMEM, "stats");
    if (st == CV_OK) st = cv_plan_read_stats(p, stats);
    if (st == CV_OK) st = cv_model_download(w->m, CV_ARENA_GRADS, gf);
    if (st == CV_OK) {
        *Ldev = 0;
        for (int i = 0; i < N; i++) *Ldev += stats[cv_plan_stat_offset(p, w->io.loss) + i] / N;
        *Lref = ref_loss(w);
        cv_refplan_backward(w->ref, w->rp, w->rdp, w->io.loss, 1.0 / N, w->seed, w->step);
    } else cv_check_diag(chk, "%s", cv_last_error());
    free(stats);
    cv_plan_free(p);
    return st;
}

#endif
