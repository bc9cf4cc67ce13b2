/* cv_train.c -- the training step, optimizer wiring, skipping and
 * checkpoints (see cv_train.h).
 * Invariant: one blocking device read per step (the statistics); the
 * gradient norm reaches the optimizer through device memory.  With several
 * MPI ranks the gradients also travel through the host once per step, to
 * be summed (cv_gradsync), and the statistics are summed over the ranks. */
#include "model/cv_train.h"
#include "model/cv_ckpt.h"
#include "ops/cv_op_model.h"

#include <math.h>
#include <string.h>

#define HIST 256

struct cv_trainer {
    cv_ctx       *ctx;
    cv_model     *m;
    cv_train_opts o;
    cv_graph     *g;
    cv_model_io   io;
    cv_plan      *plan;
    float        *stats;
    int64_t       step, skipped;
    float         hist[HIST];         /* recent accepted gradient norms (ring) */
    int           n_hist;
    float         fixed_thr;          /* > 0: the skip threshold, in place of the adaptive one */
    int64_t       n_chunks;
    cv_tensor     chunk[CV_ARENA_COUNT][CV_ARENA_MAX_CHUNKS];
    cl_mem        stash[CV_ARENA_MAX_CHUNKS]; /* with EMA: the training weights during an eval */
    int           local;              /* rows of the global batch computed here */
    int64_t       row0;               /* the first of them */
    size_t        row_floats;         /* C x H x W */
    cv_gradsync  *sync;               /* several ranks only */
};

cv_train_opts cv_train_opts_default(void) {
    cv_train_opts o;
    memset(&o, 0, sizeof o);
    o.batch = 4;
    o.rms = cv_rmsprop_opts_default();
    o.adam = cv_adam_opts_default();
    o.grad_clip = 200.0f;
    o.skip_factor = 10.0f;
    o.skip_warmup = 50;
    o.ema = 0.0f;
    o.seed = 1;
    o.lr_min_frac = 0.1f;
    o.kl_weight = 1.0f;
    return o;
}

/* ---- recipes: named sets of [train] keys ---- */

#define T(k, v) { "train", k, v }
#define BUDGET_BASE T("optimizer", "adam"), T("lr", "5e-4"), T("weight_decay", "0"), T("batch", "4"), \
    T("ema", "0.999"), T("skip_factor", "-1"), T("free_bits_max_res", "4"), \
    T("kl_weight", "1"), T("kl_warmup", "0"), T("lr_warmup", "0"), T("lr_decay_steps", "0")
static const cv_recipe recipes[] = {
    { "paper", "the paper's: RMSprop lr 2e-5, momentum 0.9, weight decay 1e-4, batch 4, no EMA, "
               "the KL at full weight from the first step",
      { T("optimizer", "rmsprop"), T("lr", "2e-5"), T("alpha", "0.99"), T("eps", "1e-8"),
        T("momentum", "0.9"), T("weight_decay", "1e-4"), T("batch", "4"), T("ema", "0"),
        T("kl_warmup", "0"), T("free_bits", "0"), T("kl_weight", "1"), T("lr_warmup", "0"),
        T("lr_decay_steps", "0"), { NULL, NULL, NULL } } },
    { "budget", "the best measured for a CPU budget of minutes (doc/science.md): budget-v1 with 2 free nats "
                "per dimension for the 4x4 group and no latent group in the highest-resolution decoder stage "
                "([model] latent_skip_top = 1)",
      { BUDGET_BASE, T("free_bits", "2"), { "model", "latent_skip_top", "1" }, { NULL, NULL, NULL } } },
    { "budget-v1", "the budget recipe of 2026-12-02: Adam lr 5e-4 without weight decay, EMA 0.999, no "
                   "adaptive skipping (the clip at 200 stays), 1 free nat per dimension for the 4x4 group",
      { BUDGET_BASE, T("free_bits", "1"), { NULL, NULL, NULL } } },
};
#undef BUDGET_BASE
#undef T

const cv_recipe *cv_train_recipe(const char *name) {
    for (size_t i = 0; i < sizeof recipes / sizeof *recipes; i++)
        if (!strcmp(recipes[i].name, name)) return &recipes[i];
    return NULL;
}

const cv_recipe *cv_train_recipe_at(int i) {
    return i >= 0 && (size_t)i < sizeof recipes / sizeof *recipes ? &recipes[i] : NULL;
}

const char *cv_train_recipe_names(void) {
    static char names[256];
    if (!*names) {
        size_t n = sizeof recipes / sizeof *recipes, len = 0;
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                                    recipes[i].name);
    }
    return names;
}

/* A decay factor of [train] in [0, 1); why: what 1 would do, for the message. */
static cv_status read_fraction(cv_cfg *c, const char *key, float def, const char *why, float *out) {
    cv_status st = cv_cfg_fraction(c, "train", key, def, out);
    if (st == CV_ERR_FORMAT && strstr(cv_last_error(), "out of range")) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cv_last_error());
        return cv_error(st, "%s (%s)", msg, why);
    }
    return st;
}

cv_status cv_train_opts_read(cv_cfg *c, cv_train_opts *o) {
    cv_status st = CV_OK;
    long v;
    double d;
    const char *s;
    *o = cv_train_opts_default();
    CV_TRY(cv_cfg_int(c, "train", "batch", 4, 1, 4096, &v)); o->batch = (int)v;
    CV_TRY(cv_cfg_str(c, "train", "optimizer", "rmsprop", &s));
    if (!strcmp(s, "rmsprop")) o->optimizer = 0;
    else if (!strcmp(s, "adam")) o->optimizer = 1;
    else return cv_error(CV_ERR_FORMAT, "[train] optimizer = '%s': expected rmsprop or adam", s);
    CV_TRY(cv_cfg_double(c, "train", "lr", 2e-5, 0, 10, &d)); o->rms.lr = (float)d; o->adam.lr = (float)d;
    CV_TRY(read_fraction(c, "alpha", o->rms.alpha, "at 1 the average of squared gradients stays 0", &o->rms.alpha));
    CV_TRY(cv_cfg_double(c, "train", "eps", o->rms.eps, 0, 1, &d)); o->rms.eps = (float)d; o->adam.eps = (float)d;
    CV_TRY(cv_cfg_double(c, "train", "weight_decay", 1e-4, 0, 1, &d)); o->rms.weight_decay = (float)d; o->adam.weight_decay = (float)d;
    CV_TRY(read_fraction(c, "momentum", 0.9f, "at 1 the momentum buffer never forgets a step", &o->rms.momentum));
    CV_TRY(read_fraction(c, "beta1", o->adam.beta1, "at 1 Adam's bias correction 1 - beta1^t is 0", &o->adam.beta1));
    CV_TRY(read_fraction(c, "beta2", o->adam.beta2, "at 1 Adam's bias correction 1 - beta2^t is 0", &o->adam.beta2));
    CV_TRY(cv_cfg_double(c, "train", "grad_clip", o->grad_clip, -1, 1e30, &d)); o->grad_clip = (float)d;
    CV_TRY(cv_cfg_double(c, "train", "skip_factor", o->skip_factor, -1, 1e30, &d)); o->skip_factor = (float)d;
    CV_TRY(cv_cfg_int(c, "train", "skip_warmup", o->skip_warmup, 0, 1000000, &v)); o->skip_warmup = (int)v;
    CV_TRY(read_fraction(c, "ema", 0.0f, "at 1 the average keeps the initial weights; 0 turns it off", &o->ema));
    CV_TRY(cv_cfg_int(c, "train", "seed", 1, 0, 0x7fffffffL, &v)); o->seed = (uint64_t)v;
    CV_TRY(cv_cfg_str(c, "train", "recipe", "", &s));
    if (*s && !cv_train_recipe(s))
        return cv_error(CV_ERR_FORMAT, "[train] recipe = '%s': no such recipe (%s)", s, cv_train_recipe_names());
    snprintf(o->recipe, sizeof o->recipe, "%s", s);
    CV_TRY(cv_cfg_int(c, "train", "kl_warmup", 0, 0, 100000000L, &v)); o->kl_warmup = (int)v;
    CV_TRY(cv_cfg_double(c, "train", "free_bits", 0, 0, 100, &d)); o->free_bits = (float)d;
    CV_TRY(cv_cfg_int(c, "train", "free_bits_max_res", 0, 0, 65536, &v)); o->free_bits_max_res = (int)v;
    CV_TRY(cv_cfg_double(c, "train", "kl_weight", 1, 0, 1000, &d)); o->kl_weight = (float)d;
    CV_TRY(cv_cfg_int(c, "train", "kl_weight_min_res", 0, 0, 65536, &v)); o->kl_weight_min_res = (int)v;
    CV_TRY(cv_cfg_int(c, "train", "lr_warmup", 0, 0, 100000000L, &v)); o->lr_warmup = (int)v;
    CV_TRY(cv_cfg_int(c, "train", "lr_decay_steps", 0, 0, 1000000000L, &v)); o->lr_decay_steps = (int)v;
    CV_TRY(cv_cfg_double(c, "train", "lr_min_frac", 0.1, 0, 1, &d)); o->lr_min_frac = (float)d;
fail:
    return st;
}

cv_status cv_trainer_new(cv_ctx *ctx, cv_model *m, const cv_train_opts *o, cv_trainer **out) {
    cv_status st = CV_OK;
    cv_trainer *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return cv_error(CV_ERR_NOMEM, "out of memory");
    t->ctx = ctx; t->m = m; t->o = *o;
    int ranks = cv_mpi_size(o->mpi);
    if (o->batch % ranks) {
        st = cv_error(CV_ERR_ARG, "the batch of %d maps cannot be split over %d ranks: use a batch that is a multiple of %d",
                      o->batch, ranks, ranks);
        goto fail;
    }
    t->local = o->batch / ranks;
    t->row0 = (int64_t)cv_mpi_rank(o->mpi) * t->local;
    t->row_floats = (size_t)cv_model_config(m)->channels * (size_t)cv_model_config(m)->size * (size_t)cv_model_config(m)->size;
    CV_TRY(cv_model_build(m, CV_MODEL_TRAIN, t->local, 1.0f, 0, &t->g, &t->io));
    CV_TRY(cv_plan_new(ctx, t->g, cv_model_tensors(m, CV_ARENA_PARAMS), cv_model_tensors(m, CV_ARENA_GRADS), 0, &t->plan));
    cv_plan_set_noise_row(t->plan, t->row0);
    if (ranks > 1) CV_TRY(cv_gradsync_new(o->mpi, ctx, m, t->g, o->bucket_bytes, &t->sync));
    t->stats = malloc((size_t)cv_plan_n_stats(t->plan) * sizeof *t->stats);
    if (!t->stats) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    /* whole-chunk views for the flat optimizer kernels */
    cv_arena *pa = cv_model_arena(m, CV_ARENA_PARAMS);
    t->n_chunks = pa->n_chunk;
    for (int a = 0; a < CV_ARENA_COUNT; a++) {
        if (a == CV_ARENA_EMA && o->ema <= 0) continue;
        cv_arena *ar = cv_model_arena(m, a);
        if (!ar->committed) { st = cv_error(CV_ERR_ARG, "model arena %d is not on the device", a); goto fail; }
        for (int c = 0; c < ar->n_chunk; c++) {
            cv_tensor *v = &t->chunk[a][c];
            v->buf = ar->buf[c];
            v->off = 0;
            v->shape[0] = v->shape[1] = v->shape[2] = 1;
            v->shape[3] = (int64_t)ar->used[c];
        }
    }
    /* with EMA, evaluation swaps the EMA weights in: room for the training
     * weights meanwhile, allocated now so that no eval allocates */
    if (o->ema > 0)
        for (int c = 0; c < t->n_chunks; c++) {
            if (cv_model_arena(m, CV_ARENA_EMA)->used[c] != pa->used[c]) {
                st = cv_error(CV_ERR_ARG, "model arenas: the EMA chunk %d differs from the parameters' chunk", c);
                goto fail;
            }
            CV_TRY(cv_ctx_alloc(ctx, "training weights during validation", pa->used[c] * sizeof(float), 0, &t->stash[c]));
        }
    /* the gradient-norm reduction's workspace, reserved now so that no step allocates */
    for (int c = 0; c < t->n_chunks; c++) {
        cl_mem mem;
        size_t need = cv_reduce_scratch_bytes(1, t->chunk[CV_ARENA_GRADS][c].shape[3]);
        CV_TRY(cv_ctx_scratch(ctx, need, &mem));
    }
    *out = t;
    return CV_OK;
fail:
    cv_trainer_free(t);
    return st;
}

void cv_trainer_free(cv_trainer *t) {
    if (!t) return;
    cv_gradsync_free(t->sync);
    for (int c = 0; c < CV_ARENA_MAX_CHUNKS; c++) if (t->stash[c]) clReleaseMemObject(t->stash[c]);
    cv_plan_free(t->plan);
    cv_graph_free(t->g);
    free(t->stats);
    free(t);
}

int64_t cv_trainer_steps(const cv_trainer *t)   { return t->step; }
int64_t cv_trainer_skipped(const cv_trainer *t) { return t->skipped; }
void    cv_trainer_set_steps(cv_trainer *t, int64_t s) { t->step = s; }
void    cv_trainer_set_skip_threshold(cv_trainer *t, float thr) { t->fixed_thr = thr > 0 ? thr : 0.0f; }
const cv_graph *cv_trainer_graph(const cv_trainer *t) { return t->g; }
const cv_plan  *cv_trainer_plan(const cv_trainer *t)  { return t->plan; }
const cv_model_io *cv_trainer_io(const cv_trainer *t) { return &t->io; }
double  cv_trainer_flops_per_step(const cv_trainer *t) { return 3.0 * cv_graph_flops(t->g); }

cv_status cv_trainer_check_replicas(cv_trainer *t) {
    return t->sync ? cv_gradsync_check_params(t->sync, t->step) : CV_OK;
}

int cv_trainer_sync_stats(const cv_trainer *t, cv_gradsync_stats *out) {
    memset(out, 0, sizeof *out);
    if (!t->sync) return 0;
    cv_gradsync_get_stats(t->sync, out);
    return 1;
}

cv_status cv_trainer_init_params(cv_trainer *t) {
    cv_status st = CV_OK;
    int64_t n = cv_model_n_floats(t->m);
    float *flat = malloc((size_t)n * sizeof *flat);
    if (!flat) return cv_error(CV_ERR_NOMEM, "out of memory");
    cv_model_init_host(t->m, t->o.seed, flat);
    CV_TRY(cv_model_upload(t->m, CV_ARENA_PARAMS, flat));
    if (t->o.ema > 0) CV_TRY(cv_model_upload(t->m, CV_ARENA_EMA, flat));
    CV_TRY(cv_arena_zero(cv_model_arena(t->m, CV_ARENA_OPT1), t->ctx));
    CV_TRY(cv_arena_zero(cv_model_arena(t->m, CV_ARENA_OPT2), t->ctx));
    t->step = 0; t->skipped = 0; t->n_hist = 0;
fail:
    free(flat);
    return st;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Skip threshold from the recent accepted norms: factor x median. */
static float skip_threshold(const cv_trainer *t) {
    if (t->fixed_thr > 0) return t->fixed_thr;
    if (t->o.skip_factor <= 0 || t->step < t->o.skip_warmup || t->n_hist < 8) return 0.0f;
    float tmp[HIST];
    int n = t->n_hist < HIST ? t->n_hist : HIST;
    memcpy(tmp, t->hist, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_float);
    return t->o.skip_factor * tmp[n / 2];
}

/* Means over the first n_valid rows of the global batch: this rank adds
 * its rows among them, the ranks add their sums. */
static cv_status fill_stats(cv_trainer *t, int n_valid, cv_step_stats *s) {
    const cv_plan *p = t->plan;
    memset(s, 0, sizeof *s);
    double inv = 1.0 / n_valid;
    int64_t mine = n_valid - t->row0;
    mine = mine < 0 ? 0 : mine > t->local ? t->local : mine;
    for (int i = 0; i < (int)mine; i++) {
        s->loss += t->stats[cv_plan_stat_offset(p, t->io.loss) + i] * inv;
        s->recon += t->stats[cv_plan_stat_offset(p, t->io.recon) + i] * inv;
        for (int gi = 0; gi < t->io.n_groups; gi++)
            s->kl_group[gi] += t->stats[cv_plan_stat_offset(p, t->io.kl[gi]) + i] * inv;
    }
    s->n_groups = t->io.n_groups;
    if (t->sync) {
        double sum[2 + CV_MAX_GROUPS];
        sum[0] = s->loss; sum[1] = s->recon;
        memcpy(sum + 2, s->kl_group, (size_t)t->io.n_groups * sizeof *sum);
        cv_status st = cv_mpi_sum_f64(t->o.mpi, sum, 2 + t->io.n_groups);
        if (st != CV_OK) return st;
        s->loss = sum[0]; s->recon = sum[1];
        memcpy(s->kl_group, sum + 2, (size_t)t->io.n_groups * sizeof *sum);
    }
    for (int gi = 0; gi < t->io.n_groups; gi++) s->kl += s->kl_group[gi];
    return CV_OK;
}

/* This step's learning-rate factor: linear warm-up, then an optional cosine. */
static double lr_factor(const cv_train_opts *o, int64_t step) {
    double f = 1.0;
    if (o->lr_warmup > 0 && step < o->lr_warmup) f = (double)(step + 1) / o->lr_warmup;
    else if (o->lr_decay_steps > o->lr_warmup) {
        double u = (double)(step - o->lr_warmup) / (double)(o->lr_decay_steps - o->lr_warmup);
        u = u > 1 ? 1 : u;
        f = o->lr_min_frac + (1 - o->lr_min_frac) * 0.5 * (1 + cos(3.14159265358979323846 * u));
    }
    return f;
}

/* The weight of each group's KL in this step's gradient: the warm-up's
 * beta, times kl_weight for the groups at kl_weight_min_res or above, and
 * 0 for a group under its free bits in this batch (which takes a read of
 * the forward's statistics, summed over the ranks). */
static cv_status set_kl_weights(cv_trainer *t, double *w) {
    cv_status st = CV_OK;
    const cv_train_opts *o = &t->o;
    double beta = o->kl_warmup > 0 && t->step < o->kl_warmup ? (double)(t->step + 1) / o->kl_warmup : 1.0;
    for (int g = 0; g < t->io.n_groups; g++)
        w[g] = t->io.group_res[g] >= o->kl_weight_min_res ? beta * o->kl_weight : beta;
    if (o->free_bits > 0) {
        cv_step_stats fw;
        CV_TRY(cv_plan_read_stats(t->plan, t->stats));
        CV_TRY(fill_stats(t, o->batch, &fw));
        const cv_model_cfg *mc = cv_model_config(t->m);
        double per = (double)mc->channels * mc->size * mc->size;      /* the stat is nats per pixel value */
        for (int g = 0; g < t->io.n_groups; g++) {
            const int64_t *sh = cv_graph_value(t->g, t->io.mq[g])->shape;
            double dim = (double)(sh[1] * sh[2] * sh[3]);
            if ((o->free_bits_max_res <= 0 || t->io.group_res[g] <= o->free_bits_max_res) && fw.kl_group[g] * per < o->free_bits * dim)
                w[g] = 0.0;
        }
    }
    for (int g = 0; g < t->io.n_groups; g++) CV_TRY(cv_plan_set_grad_weight(t->plan, t->io.kl[g], (float)w[g]));
fail:
    return st;
}

cv_status cv_trainer_step(cv_trainer *t, const float *batch, cv_step_stats *s) {
    cv_status st = CV_OK;
    cv_ctx *ctx = t->ctx;
    /* extra[0]: the squared gradient norm; extra[1]: the optimizer's skip
     * decision, which the EMA follows and the statistics read brings back */
    cv_tensor extra = cv_plan_extra(t->plan);
    cv_tensor gn = extra, dec = extra, flag = extra;
    gn.shape[3] = 1;
    dec.shape[3] = 2;
    flag.off += 1;
    flag.shape[3] = 1;
    float thr = skip_threshold(t);
    CV_TRY(cv_plan_upload(t->plan, t->io.x, batch + (size_t)t->row0 * t->row_floats));
    CV_TRY(cv_arena_zero(cv_model_arena(t->m, CV_ARENA_GRADS), ctx));
    CV_TRY(cv_plan_forward(t->plan, t->o.seed, (uint64_t)t->step));
    double klw[CV_MAX_GROUPS];
    CV_TRY(set_kl_weights(t, klw));
    double lrf = lr_factor(&t->o, t->step);
    cv_rmsprop_opts rms = t->o.rms;
    cv_adam_opts adam = t->o.adam;
    rms.lr = (float)(rms.lr * lrf);
    adam.lr = (float)(adam.lr * lrf);
    if (t->sync) {      /* scale 1/B on every rank, then the sum over the ranks */
        CV_TRY(cv_gradsync_begin(t->sync));
        CV_TRY(cv_plan_backward_hooked(t->plan, t->io.loss, 1.0f / (float)t->o.batch, t->o.seed, (uint64_t)t->step,
                                       cv_gradsync_bucketed(t->sync) ? cv_gradsync_node_done : NULL, t->sync));
        CV_TRY(cv_gradsync_end(t->sync));
    } else {
        CV_TRY(cv_plan_backward(t->plan, t->io.loss, 1.0f / (float)t->o.batch, t->o.seed, (uint64_t)t->step));
    }
    for (int c = 0; c < t->n_chunks; c++) CV_TRY(cv_sumsq_fwd(ctx, &t->chunk[CV_ARENA_GRADS][c], &gn, c > 0));
    for (int c = 0; c < t->n_chunks; c++) {
        if (t->o.optimizer == 0)
            CV_TRY(cv_rmsprop_step(ctx, &t->chunk[CV_ARENA_PARAMS][c], &t->chunk[CV_ARENA_GRADS][c],
                                   &t->chunk[CV_ARENA_OPT1][c], &t->chunk[CV_ARENA_OPT2][c], &rms, &dec,
                                   t->o.grad_clip, thr));
        else
            CV_TRY(cv_adam_step(ctx, &t->chunk[CV_ARENA_PARAMS][c], &t->chunk[CV_ARENA_GRADS][c],
                                &t->chunk[CV_ARENA_OPT1][c], &t->chunk[CV_ARENA_OPT2][c], &adam,
                                t->step - t->skipped + 1, &dec, t->o.grad_clip, thr));
        if (t->o.ema > 0)
            CV_TRY(cv_ema_step(ctx, &t->chunk[CV_ARENA_EMA][c], &t->chunk[CV_ARENA_PARAMS][c], t->o.ema, &flag));
    }
    CV_TRY(cv_plan_read_stats(t->plan, t->stats));
    CV_TRY(fill_stats(t, t->o.batch, s));
    memcpy(s->kl_weight, klw, (size_t)t->io.n_groups * sizeof *klw);
    s->lr = t->o.optimizer == 0 ? rms.lr : adam.lr;
    const float *ex = t->stats + cv_plan_n_stats(t->plan) - CV_PLAN_N_EXTRA;
    s->gnorm = sqrt((double)ex[0]);
    s->skip_threshold = thr;
    s->skipped = ex[1] != 0.0f;         /* the device's decision, not a second one made here */
    if (s->skipped) t->skipped++;
    else t->hist[t->n_hist++ % HIST] = (float)s->gnorm;
    t->step++;
fail:
    return st;
}

/* Copy whole parameter chunks (enqueued; bit-exact). */
static cv_status copy_chunks(cv_trainer *t, cl_mem *to, int to_arena, cl_mem *from, int from_arena) {
    cl_command_queue q = cv_ctx_queue(t->ctx);
    for (int c = 0; c < t->n_chunks; c++) {
        cl_mem src = from ? from[c] : t->chunk[from_arena][c].buf, dst = to ? to[c] : t->chunk[to_arena][c].buf;
        size_t bytes = (size_t)t->chunk[CV_ARENA_PARAMS][c].shape[3] * sizeof(float);
        cv_status st = CV_CL(clEnqueueCopyBuffer(q, src, dst, 0, 0, bytes, 0, NULL, NULL));
        if (st != CV_OK) return st;
    }
    return CV_OK;
}

cv_status cv_trainer_eval(cv_trainer *t, const float *batch, int n_valid, cv_step_stats *s) {
    cv_status st = CV_OK;
    int swapped = 0;
    /* validation noise from a stream disjoint from every training step */
    uint64_t stream_step = UINT64_C(1) << 40;
    if (t->o.ema > 0) {      /* the weights encode and sample use: the EMA */
        CV_TRY(copy_chunks(t, t->stash, 0, NULL, CV_ARENA_PARAMS));
        swapped = 1;
        CV_TRY(copy_chunks(t, NULL, CV_ARENA_PARAMS, NULL, CV_ARENA_EMA));
    }
    CV_TRY(cv_plan_upload(t->plan, t->io.x, batch + (size_t)t->row0 * t->row_floats));
    CV_TRY(cv_plan_forward(t->plan, t->o.seed, stream_step));
    CV_TRY(cv_plan_read_stats(t->plan, t->stats));
    CV_TRY(fill_stats(t, n_valid, s));
fail:
    if (swapped) {           /* the training weights back, bit for bit, whatever happened */
        cv_status st2 = copy_chunks(t, NULL, CV_ARENA_PARAMS, t->stash, 0);
        if (st == CV_OK) st = st2;
    }
    return st;
}

cv_status cv_trainer_save(cv_trainer *t, const char *path, const char *config_text, int64_t epoch, int64_t index) {
    cv_status st = CV_OK;
    int64_t n = cv_model_n_floats(t->m);
    int with_ema = t->o.ema > 0;
    float *buf = malloc((size_t)n * (with_ema ? 4 : 3) * sizeof *buf);
    if (!buf) return cv_error(CV_ERR_NOMEM, "out of memory");
    CV_TRY(cv_model_download(t->m, CV_ARENA_PARAMS, buf));
    CV_TRY(cv_model_download(t->m, CV_ARENA_OPT1, buf + n));
    CV_TRY(cv_model_download(t->m, CV_ARENA_OPT2, buf + 2 * n));
    if (with_ema) CV_TRY(cv_model_download(t->m, CV_ARENA_EMA, buf + 3 * n));
    cv_ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.step = t->step; meta.epoch = epoch; meta.epoch_index = index; meta.skipped = t->skipped;
    meta.seed = t->o.seed;
    /* history in chronological order */
    int nh = t->n_hist < HIST ? t->n_hist : HIST;
    for (int i = 0; i < nh; i++) meta.hist[i] = t->hist[(t->n_hist - nh + i) % HIST];
    meta.n_hist = nh;
    st = cv_ckpt_write(path, t->m, config_text, &meta, buf, buf + n, buf + 2 * n, with_ema ? buf + 3 * n : NULL);
fail:
    free(buf);
    return st;
}

cv_status cv_trainer_load(cv_trainer *t, const char *path, int64_t *epoch, int64_t *index) {
    cv_status st = CV_OK;
    char *cfg = NULL;
    cv_ckpt_meta meta;
    int64_t n = cv_model_n_floats(t->m);
    float *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) return cv_error(CV_ERR_NOMEM, "out of memory");
    CV_TRY(cv_ckpt_read_config(path, &cfg, &meta));
    CV_TRY(cv_ckpt_read(path, t->m, "params", buf));
    CV_TRY(cv_model_upload(t->m, CV_ARENA_PARAMS, buf));
    CV_TRY(cv_ckpt_read(path, t->m, "opt1", buf));
    CV_TRY(cv_model_upload(t->m, CV_ARENA_OPT1, buf));
    CV_TRY(cv_ckpt_read(path, t->m, "opt2", buf));
    CV_TRY(cv_model_upload(t->m, CV_ARENA_OPT2, buf));
    if (t->o.ema > 0) {
        if (cv_ckpt_has(path, "ema")) CV_TRY(cv_ckpt_read(path, t->m, "ema", buf));
        else CV_TRY(cv_ckpt_read(path, t->m, "params", buf));
        CV_TRY(cv_model_upload(t->m, CV_ARENA_EMA, buf));
    }
    t->step = meta.step;
    t->skipped = meta.skipped;
    t->n_hist = meta.n_hist;
    memcpy(t->hist, meta.hist, (size_t)meta.n_hist * sizeof *t->hist);
    *epoch = meta.epoch;
    *index = meta.epoch_index;
fail:
    free(cfg);
    free(buf);
    return st;
}
