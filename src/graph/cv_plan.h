/* cv_plan.h -- plan/execute (FFTW style) for a cv_graph on a device, and
 * the same graph on the plain-C double-precision reference path.
 *
 * cv_plan_new infers nothing new (the graph did) but lays out device
 * memory once: an activation arena with every value (all kept for
 * backward, llm.c style), an activation-gradient arena, and a small stats
 * arena holding every value marked as a statistic (loss, recon, KL per
 * group) plus a few extra floats (e.g. the squared gradient norm), so one
 * read-back per step returns them all.  Executing never allocates and
 * never waits for the device except in cv_plan_read_stats.
 *
 * Parameters and their gradients are the model's arenas, passed as
 * resolved views (cv_plan_bind_params).  A plan is not thread-safe. */
#ifndef CV_PLAN_H
#define CV_PLAN_H

#include "graph/cv_graph.h"

typedef struct cv_plan cv_plan;

enum {
    CV_PLAN_NO_BACKWARD = 1,    /* inference only: no gradient arena */
};

#define CV_PLAN_N_EXTRA 8      /* extra stat floats: [0] = squared grad norm */

/* params[i] and grads[i]: views for parameter i of the graph's table
 * (grads may be NULL with CV_PLAN_NO_BACKWARD).  Borrowed; must outlive
 * the plan. */
cv_status cv_plan_new(cv_ctx *ctx, const cv_graph *g, const cv_tensor *params, const cv_tensor *grads,
                      int flags, cv_plan **out);
void      cv_plan_free(cv_plan *p);

cv_tensor cv_plan_value(const cv_plan *p, int value);
cv_tensor cv_plan_grad(const cv_plan *p, int value);
cv_tensor cv_plan_extra(const cv_plan *p);            /* (1,1,1,CV_PLAN_N_EXTRA) in the stats arena */
size_t    cv_plan_nbytes(const cv_plan *p);           /* activations + gradients + stats + workspace */

/* Enqueue a non-blocking upload of `host` into input value v; `host` must
 * stay valid until the next cv_plan_read_stats (or cv_ctx_finish). */
cv_status cv_plan_upload(cv_plan *p, int v, const float *host);
/* Forward; reparameterisation noise uses (seed, stream = step * 4096 + group)
 * and index = element index within the (global) batch tensor. */
cv_status cv_plan_forward(cv_plan *p, uint64_t seed, uint64_t step);
/* Data parallelism: this plan's batch is rows [row0, row0 + N) of a larger
 * global batch; the noise of local row j is that of global row row0 + j, so
 * the noise does not depend on how the batch is split (default 0). */
void      cv_plan_set_noise_row(cv_plan *p, int64_t row0);
/* Zero the activation gradients, set d(loss value) = scale (e.g. 1/N),
 * and run every node's backward in reverse order, accumulating into the
 * parameter gradients (which the caller zeroes). */
cv_status cv_plan_backward(cv_plan *p, int loss_value, float scale, uint64_t seed, uint64_t step);
/* The same, calling hook(user, i) after node i's backward has been enqueued
 * (i runs from the last node down to 0), e.g. to start reading parameter
 * gradients that no earlier node touches while the device goes on.  A hook
 * error stops the backward and is returned. */
typedef cv_status (*cv_plan_node_hook)(void *user, int node);
cv_status cv_plan_backward_hooked(cv_plan *p, int loss_value, float scale, uint64_t seed, uint64_t step,
                                  cv_plan_node_hook hook, void *user);
/* Weight w on the gradient that flows back through the SUM node producing
 * value v (a per-sample reduction such as a latent group's KL): backward
 * treats that sum's scale s as s * w; forward and the statistic keep s.
 * Default 1; may change between steps (KL warm-up, free bits).
 * CV_ERR_ARG if v is not a sum's output or w is not finite. */
cv_status cv_plan_set_grad_weight(cv_plan *p, int value, float w);
/* Blocking read of the stats arena.  stat values appear in order of value
 * id, each with its N floats, followed by the CV_PLAN_N_EXTRA extras;
 * cv_plan_stat_offset gives a value's position.  n = cv_plan_n_stats. */
int       cv_plan_n_stats(const cv_plan *p);
int       cv_plan_stat_offset(const cv_plan *p, int value);
cv_status cv_plan_read_stats(cv_plan *p, float *out);

/* ---- the reference path: the same graph in double on the host ----------
 * values[v] and dvalues[v] are malloc'ed arrays of the value's numel;
 * params[i] / dparams[i] are caller-provided double arrays. */
typedef struct cv_refplan cv_refplan;
cv_status cv_refplan_new(const cv_graph *g, cv_refplan **out);
void      cv_refplan_free(cv_refplan *r);
double   *cv_refplan_value(cv_refplan *r, int v);
double   *cv_refplan_grad(cv_refplan *r, int v);
void      cv_refplan_set_noise_row(cv_refplan *r, int64_t row0);   /* as cv_plan_set_noise_row */
cv_status cv_refplan_set_grad_weight(cv_refplan *r, int value, double w);  /* as cv_plan_set_grad_weight */
void      cv_refplan_forward(cv_refplan *r, double *const *params, uint64_t seed, uint64_t step);
void      cv_refplan_backward(cv_refplan *r, double *const *params, double *const *dparams,
                              int loss_value, double scale, uint64_t seed, uint64_t step);

#endif
