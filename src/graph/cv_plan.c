/* cv_plan.c -- executing a cv_graph: on the device (arenas laid out once,
 * kernels enqueued in program order, backward in reverse) and on the
 * double-precision reference path (the same dispatch over the plain-C
 * reference ops), so that whole models can be compared step by step.
 *
 * Invariant: every backward accumulates (+=) into value and parameter
 * gradients, except that the first backward to touch a value's gradient
 * writes it (=) where its op allows (set masks: convolutions, add, KL,
 * sum); the plan zeroes every other value gradient just before its first
 * use, the caller zeroes the parameter gradients once per step.  Fan-out
 * (a value read by several nodes) is then correct by construction. */
#include "graph/cv_plan.h"
#include "graph/cv_op_table.h"
#include "ops/cv_op_model.h"

#include <math.h>
#include <string.h>

struct cv_plan {
    cv_ctx         *ctx;
    const cv_graph *g;
    const cv_tensor *params, *grads;
    int             flags;
    int64_t         noise_row0;   /* global row of local row 0 (data parallelism) */
    cv_arena        act, dact, stats;
    cv_tensor      *val, *dval;
    cv_tensor       extra;
    int            *stat_off;     /* per value: offset in the stats arena, or -1 */
    int             n_stats;
    size_t          workspace;
    cv_tensor      *aux;          /* (2 n_nodes) per-node caches from forward to backward (training
                                     plans), aux[2i] and aux[2i + 1]: GELU(x) and GELU'(x) of a
                                     gelu_in conv (tuning keep_gelu 1: the first, 2: both), the
                                     noise product of a reparameterisation; buf NULL if none */
    int            *gelu_reuse;   /* (n_nodes) a gelu_in conv whose GELU and GELU' caches an earlier conv
                                     on the same input (and the same form, vector or scalar) fills:
                                     they share them (keep_gelu 2) */
    int            *kl_sum;       /* (n_nodes) a KL node whose only consumer is a per-sample sum, and
                                     that sum, point at each other: their backward is one kernel
                                     (the KL's gradient is never stored); -1 otherwise.  Their
                                     forward stays two: the flat KL vectorises on CPUs, a fused
                                     reduction does not (3x slower on PoCL) */
    int            *set_mask;     /* (n_nodes) bit k: node i's backward is the first writer of in[k]'s
                                     gradient and writes it (=), so nobody zeroes it */
    int            *zero_start;   /* (n_nodes + 1): CSR of the gradients to zero before node i's backward */
    int            *zero_vals;
    int            *fill_start;   /* (n_nodes + 1): CSR of those zeroings merged into ranges */
    cv_tensor      *fill;         /* the ranges: adjacent gradients in one launch; shape (1, 1, 1, n) */
    int            *fill_val;     /* the value of a range that is a statistic's gradient (one of them is
                                     the loss, filled with the scale), -1 for merged ranges */
    size_t          act_naive, dact_naive;   /* bytes without liveness reuse, for reports */
    float          *gw;           /* (n_nodes) the backward weight of a SUM node's gradient (1: the
                                     loss as built; KL warm-up and free bits change it per step) */
};

/* Whether a conv node's forward runs the VEC kernels (the vector form of
 * GELU) on this device. */
static int conv_vec_form(cv_ctx *ctx, const cv_graph *g, const cv_node *n) {
    return cv_conv2d_algo(ctx, cv_graph_value(g, n->in[0])->shape, cv_graph_value(g, n->out)->shape[1], &n->p.conv,
                          0) == CV_CONV_VEC;
}

/* ---- memory reuse by liveness (gallocr-like) ---------------------------
 * Each tensor lives over an inclusive interval of steps [start, end]; two
 * tensors may share memory when their intervals do not overlap.  First
 * fit in order of start, lowest offset first; returns the peak in floats
 * and sets off[] (floats, aligned). */
typedef struct live { int64_t start, end; size_t size, off; int used; } live;

static size_t pack_live(live *v, int n, size_t align) {
    int *order = malloc((size_t)n * sizeof *order), *act = malloc((size_t)n * sizeof *act);
    size_t peak = 0;
    int n_act = 0;
    if (!order || !act) { free(order); free(act); return (size_t)-1; }
    int m = 0;
    for (int i = 0; i < n; i++) if (v[i].used) order[m++] = i;
    for (int i = 1; i < m; i++) {               /* insertion sort by start, then larger first */
        int x = order[i], j = i;
        while (j > 0 && (v[order[j - 1]].start > v[x].start ||
                         (v[order[j - 1]].start == v[x].start && v[order[j - 1]].size < v[x].size))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    for (int k = 0; k < m; k++) {
        live *t = &v[order[k]];
        size_t need = (t->size + align - 1) / align * align;
        if (!need) need = align;
        int w = 0;                               /* drop blocks that ended before t starts */
        for (int i = 0; i < n_act; i++) if (v[act[i]].end >= t->start) act[w++] = act[i];
        n_act = w;
        for (int i = 1; i < n_act; i++) {        /* active blocks by offset */
            int x = act[i], j = i;
            while (j > 0 && v[act[j - 1]].off > v[x].off) { act[j] = act[j - 1]; j--; }
            act[j] = x;
        }
        size_t off = 0;
        for (int i = 0; i < n_act; i++) {
            const live *b = &v[act[i]];
            if (b->off >= off + need) break;     /* the gap before b fits */
            size_t bend = b->off + (b->size + align - 1) / align * align;
            if (bend > off) off = bend;
        }
        t->off = off;
        if (off + need > peak) peak = off + need;
        act[n_act++] = order[k];
    }
    free(order);
    free(act);
    return peak;
}

static cv_tensor none_tensor(void) {
    cv_tensor t;
    memset(&t, 0, sizeof t);
    return t;
}

/* The largest scratch any node needs (im2col, GELU buffers, reductions). */
static size_t plan_workspace(cv_ctx *ctx, const cv_graph *g) {
    size_t ws = 0;
    for (int i = 0; i < cv_graph_n_nodes(g); i++) {
        const cv_node *n = cv_graph_node(g, i);
        const cv_op_desc *d = cv_op_desc_of(n->op);
        if (!d->scratch) continue;
        cv_op_shape sh = { n, { NULL }, { NULL }, cv_graph_batch(g) };
        for (int k = 0; k < n->n_in; k++) sh.x[k] = cv_graph_value(g, n->in[k])->shape;
        for (int k = 0; k < n->n_par; k++) sh.par[k] = cv_graph_pars(g)->shape[n->par[k]];
        size_t s = d->scratch(ctx, &sh);
        if (s > ws) ws = s;
    }
    return ws;
}

/* The input slot whose gradient node n's backward can write (=) instead
 * of adding to, when n is the first backward to touch value v (its last
 * consumer): the ops with a *_bwd_ex set mask, for an input that appears
 * once, on a node whose output has a gradient (so its backward runs).
 * -1 otherwise: then v is zeroed before n's backward. */
static int first_writer_slot(const cv_graph *g, const cv_node *n, int v) {
    int slot = -1, uses = 0;
    for (int k = 0; k < n->n_in; k++) if (n->in[k] == v) { slot = k; uses++; }
    if (uses != 1 || !cv_graph_value(g, n->out)->needs_grad) return -1;
    return cv_op_desc_of(n->op)->flags & CV_OPF_SETS ? slot : -1;
}

/* Merge the gradients zeroed before each node's backward into as few
 * ranges as the arena layout allows (same buffer, each starting where the
 * previous one's aligned footprint ends: padding is never another
 * tensor's), so that a step launches one fill per range.  Statistics
 * (the loss is one; it is known only at cv_plan_backward) stay single. */
static int cmp_view(const void *a, const void *b) {
    const cv_tensor *x = a, *y = b;
    if (x->buf != y->buf) return (uintptr_t)x->buf < (uintptr_t)y->buf ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

static cv_status plan_fills(cv_plan *p, int nn, size_t align) {
    int nz = p->zero_start[nn];
    p->fill_start = calloc((size_t)nn + 1, sizeof *p->fill_start);
    p->fill = calloc((size_t)nz + 1, sizeof *p->fill);
    p->fill_val = calloc((size_t)nz + 1, sizeof *p->fill_val);
    cv_tensor *tmp = calloc((size_t)nz + 1, sizeof *tmp);
    if (!p->fill_start || !p->fill || !p->fill_val || !tmp) { free(tmp); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    int nf = 0;
    for (int i = 0; i < nn; i++) {
        p->fill_start[i] = nf;
        int m = 0;
        for (int k = p->zero_start[i]; k < p->zero_start[i + 1]; k++) {
            int v = p->zero_vals[k];
            if (cv_graph_value(p->g, v)->stat) {           /* statistics (the loss among them): one range each */
                p->fill[nf] = p->dval[v];
                p->fill_val[nf++] = v;
                continue;
            }
            tmp[m] = p->dval[v];
            tmp[m].shape[0] = tmp[m].shape[1] = tmp[m].shape[2] = 1;
            tmp[m++].shape[3] = cv_tensor_numel(&p->dval[v]);
        }
        qsort(tmp, (size_t)m, sizeof *tmp, cmp_view);
        for (int k = 0; k < m; k++) {
            cv_tensor *last = nf > p->fill_start[i] && p->fill_val[nf - 1] < 0 ? &p->fill[nf - 1] : NULL;
            size_t end = last ? last->off + ((size_t)last->shape[3] + align - 1) / align * align : 0;
            if (last && last->buf == tmp[k].buf && end == tmp[k].off) {
                last->shape[3] = (int64_t)(tmp[k].off - last->off) + tmp[k].shape[3];
            } else {
                p->fill[nf] = tmp[k];
                p->fill_val[nf++] = -1;
            }
        }
    }
    p->fill_start[nn] = nf;
    free(tmp);
    return CV_OK;
}

cv_status cv_plan_new(cv_ctx *ctx, const cv_graph *g, const cv_tensor *params, const cv_tensor *grads,
                      int flags, cv_plan **out) {
    cv_status st = CV_OK;
    int nv = cv_graph_n_values(g);
    cv_plan *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return cv_error(CV_ERR_NOMEM, "out of memory creating a plan");
    p->ctx = ctx; p->g = g; p->params = params; p->grads = grads; p->flags = flags;
    cv_arena_init(&p->act, ctx, "activations");
    cv_arena_init(&p->dact, ctx, "activation gradients");
    cv_arena_init(&p->stats, ctx, "step statistics");
    p->val = calloc((size_t)nv, sizeof *p->val);
    p->dval = calloc((size_t)nv, sizeof *p->dval);
    p->aux = calloc(2 * (size_t)cv_graph_n_nodes(g) + 1, sizeof *p->aux);
    p->gelu_reuse = calloc((size_t)cv_graph_n_nodes(g) + 1, sizeof *p->gelu_reuse);
    p->stat_off = malloc((size_t)nv * sizeof *p->stat_off);
    p->gw = malloc(((size_t)cv_graph_n_nodes(g) + 1) * sizeof *p->gw);
    for (int i = 0; p->gw && i < cv_graph_n_nodes(g); i++) p->gw[i] = 1.0f;
    cv_arena_slot *sv = calloc((size_t)nv, sizeof *sv), *sd = calloc((size_t)nv, sizeof *sd);
    live *la = NULL, *ld = NULL;
    cv_arena_slot *sx = calloc(2 * (size_t)cv_graph_n_nodes(g) + 1, sizeof *sx);
    if (!p->val || !p->dval || !p->aux || !p->gelu_reuse || !p->stat_off || !p->gw || !sv || !sd || !sx) {
        free(sx);
        st = cv_error(CV_ERR_NOMEM, "out of memory creating a plan");
        goto fail;
    }
    int backward = !(flags & CV_PLAN_NO_BACKWARD);
    if (backward && !grads) { st = cv_error(CV_ERR_ARG, "a training plan needs parameter gradients"); goto fail; }

    /* stats: contiguous in one small arena so one read returns them all */
    size_t stat_total = 0;
    for (int v = 0; v < nv; v++) {
        const cv_value *val = cv_graph_value(g, v);
        p->stat_off[v] = -1;
        if (!val->stat) continue;
        p->stat_off[v] = (int)stat_total;
        stat_total += (size_t)(val->shape[0] * val->shape[1] * val->shape[2] * val->shape[3]);
    }
    p->n_stats = (int)stat_total + CV_PLAN_N_EXTRA;
    cv_arena_slot stat_slot;
    CV_TRY(cv_arena_reserve(&p->stats, (size_t)p->n_stats, &stat_slot));
    /* Lifetimes.  Forward (inference plans): a value lives from its
     * producer to its last consumer (to the end for outputs and inputs).
     * Backward (training plans): a value's gradient lives from its first
     * use in reverse order (its last consumer's backward) to its
     * producer's backward; it is zeroed just before that first use. */
    int nn = cv_graph_n_nodes(g);
    la = calloc((size_t)nv, sizeof *la);
    ld = calloc((size_t)nv, sizeof *ld);
    int *last_cons = malloc((size_t)nv * sizeof *last_cons);
    p->zero_start = calloc((size_t)nn + 1, sizeof *p->zero_start);
    p->set_mask = calloc((size_t)nn + 1, sizeof *p->set_mask);
    p->kl_sum = malloc(((size_t)nn + 1) * sizeof *p->kl_sum);
    p->zero_vals = malloc(((size_t)nv + 1) * sizeof *p->zero_vals);
    if (!la || !ld || !last_cons || !p->zero_start || !p->zero_vals || !p->set_mask || !p->kl_sum) { free(last_cons); st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (int v = 0; v < nv; v++) last_cons[v] = -1;
    for (int i = 0; i < nn; i++) {
        const cv_node *n = cv_graph_node(g, i);
        for (int k = 0; k < n->n_in; k++) if (i > last_cons[n->in[k]]) last_cons[n->in[k]] = i;
    }
    /* KL -> per-sample sum pairs (the KL read by nothing else) */
    for (int i = 0; i < nn; i++) p->kl_sum[i] = -1;
    for (int i = 0; i < nn; i++) {
        const cv_node *n = cv_graph_node(g, i);
        if (n->op != CV_OP_SUM) continue;
        const cv_value *kv = cv_graph_value(g, n->in[0]);
        if (kv->output || kv->stat || cv_graph_node(g, kv->node)->op != CV_OP_GAUSSKL) continue;
        int uses = 0;
        for (int j = 0; j < nn; j++) {
            const cv_node *m = cv_graph_node(g, j);
            for (int k = 0; k < m->n_in; k++) uses += m->in[k] == n->in[0];
        }
        if (uses != 1) continue;
        p->kl_sum[i] = kv->node;
        p->kl_sum[kv->node] = i;
    }
    for (int v = 0; v < nv; v++) {
        const cv_value *val = cv_graph_value(g, v);
        size_t n = (size_t)(val->shape[0] * val->shape[1] * val->shape[2] * val->shape[3]);
        int prod = val->node;
        int is_input = cv_graph_node(g, prod)->op == CV_OP_INPUT;
        la[v].used = !val->stat;
        la[v].size = n;
        la[v].start = is_input ? 0 : prod;
        la[v].end = (val->output || is_input || last_cons[v] < 0) ? nn : last_cons[v];
        if (backward && val->needs_grad) {
            ld[v].used = 1;
            ld[v].size = n;
            int first = last_cons[v] >= 0 ? last_cons[v] : prod;
            ld[v].start = nn - 1 - first;
            ld[v].end = nn - 1 - prod;
            if (p->kl_sum[prod] >= 0 && cv_graph_node(g, prod)->op == CV_OP_SUM)
                ld[v].end = nn - 1 - p->kl_sum[prod];       /* the fused KL backward reads it later */
            int slot = last_cons[v] >= 0 ? first_writer_slot(g, cv_graph_node(g, first), v) : -1;
            if (slot >= 0) p->set_mask[first] |= 1 << slot;    /* written there: no zeroing */
            else p->zero_start[first + 1]++;
        }
        if (la[v].used) p->act_naive += n * sizeof(float);
        if (ld[v].used) p->dact_naive += n * sizeof(float);
    }
    for (int i = 0; i < nn; i++) p->zero_start[i + 1] += p->zero_start[i];
    {
        int *fill = calloc((size_t)nn, sizeof *fill);
        if (!fill) { free(last_cons); st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
        for (int v = 0; v < nv; v++) {
            if (!ld[v].used) continue;
            if (last_cons[v] >= 0 && first_writer_slot(g, cv_graph_node(g, last_cons[v]), v) >= 0) continue;
            int first = last_cons[v] >= 0 ? last_cons[v] : cv_graph_value(g, v)->node;
            p->zero_vals[p->zero_start[first] + fill[first]++] = v;
        }
        free(fill);
    }
    free(last_cons);
    /* Inference plans share activation memory by liveness; training plans
     * keep every activation for backward.  Gradients share by liveness.
     * If the packed peak exceeds one chunk, fall back to one slot each. */
    size_t align = p->act.align_floats;
    cv_arena_slot base;
    int pack_act = !backward && pack_live(la, nv, align) <= p->act.chunk_floats;
    int pack_grad = backward && pack_live(ld, nv, align) <= p->dact.chunk_floats;
    if (pack_act) {
        CV_TRY(cv_arena_reserve(&p->act, pack_live(la, nv, align), &base));
        for (int v = 0; v < nv; v++) if (la[v].used) { sv[v] = base; sv[v].off += la[v].off; }
    } else {
        for (int v = 0; v < nv; v++) if (la[v].used) CV_TRY(cv_arena_reserve(&p->act, la[v].size, &sv[v]));
    }
    if (pack_grad) {
        CV_TRY(cv_arena_reserve(&p->dact, pack_live(ld, nv, align), &base));
        for (int v = 0; v < nv; v++) if (ld[v].used) { sd[v] = base; sd[v].off += ld[v].off; }
    } else if (backward) {
        for (int v = 0; v < nv; v++) if (ld[v].used) CV_TRY(cv_arena_reserve(&p->dact, ld[v].size, &sd[v]));
    }
    free(la); la = NULL;
    free(ld); ld = NULL;
    /* forward-to-backward caches, kept over the whole step like the activations */
    int keep_gelu = backward ? cv_ctx_tune(ctx)->keep_gelu : 0;
    if (keep_gelu) {
        /* the GELU caches trade memory for speed: never at the price of
         * not fitting (the paper preset needs 11.3 GiB with both caches, 5.1
         * without); with less room, GELU(x) only, or none.  Level 2 shares
         * its caches between the convolutions on one input, level 1 does not */
        double extra = 0, extra_all = 0;
        for (int i = 0; i < nn; i++) {
            const cv_node *n = cv_graph_node(g, i);
            if (n->op != CV_OP_CONV2D || !n->p.conv.gelu_in) continue;
            int seen = 0;
            for (int j = 0; j < i && !seen; j++) {
                const cv_node *m = cv_graph_node(g, j);
                seen = m->op == CV_OP_CONV2D && m->p.conv.gelu_in && m->in[0] == n->in[0];
            }
            const int64_t *sh = cv_graph_value(g, n->in[0])->shape;
            double bytes = 4.0 * (double)(sh[0] * sh[1] * sh[2] * sh[3]);
            extra_all += bytes;
            if (!seen) extra += bytes;
        }
        double base_bytes = (double)cv_arena_nbytes(&p->act) + (double)cv_arena_nbytes(&p->dact);
        if (keep_gelu == 2 && base_bytes + 2 * extra > 0.8 * (double)cv_ctx_global_mem(ctx)) keep_gelu = 1;
        if (keep_gelu == 1 && base_bytes + extra_all > 0.8 * (double)cv_ctx_global_mem(ctx)) keep_gelu = 0;
    }
    for (int i = 0; backward && i < nn; i++) {
        const cv_node *n = cv_graph_node(g, i);
        const int64_t *sh = NULL;
        int ncache = 1;
        if (n->op == CV_OP_CONV2D && n->p.conv.gelu_in && keep_gelu) {
            sh = cv_graph_value(g, n->in[0])->shape;
            ncache = keep_gelu;
        }
        if (cv_op_desc_of(n->op)->flags & CV_OPF_AUX_Y) sh = cv_graph_value(g, n->out)->shape;
        int from = -1;                      /* keep_gelu 2: the earlier conv that fills the same caches */
        if (sh && ncache == 2) {
            int vec = conv_vec_form(ctx, g, n);
            for (int j = 0; j < i && from < 0; j++) {
                const cv_node *m = cv_graph_node(g, j);
                if (m->op == CV_OP_CONV2D && m->p.conv.gelu_in && m->in[0] == n->in[0] && !p->gelu_reuse[j] &&
                    conv_vec_form(ctx, g, m) == vec)
                    from = j;
            }
            p->gelu_reuse[i] = from >= 0;
        }
        for (int k = 0; sh && k < ncache; k++) {
            cv_tensor *a = &p->aux[2 * i + k];
            if (from >= 0) sx[2 * i + k] = sx[2 * from + k];
            else CV_TRY(cv_arena_reserve(&p->act, (size_t)(sh[0] * sh[1] * sh[2] * sh[3]), &sx[2 * i + k]));
            a->shape[0] = sh[0]; a->shape[1] = sh[1]; a->shape[2] = sh[2]; a->shape[3] = sh[3];
            a->buf = (cl_mem)1;             /* marks "reserved"; the view comes after the commit */
        }
    }
    CV_TRY(cv_arena_commit(&p->act, ctx));
    for (int i = 0; i < 2 * nn; i++)
        if (p->aux[i].buf) p->aux[i] = cv_arena_view(&p->act, sx[i], p->aux[i].shape);
    if (backward) CV_TRY(cv_arena_commit(&p->dact, ctx));
    CV_TRY(cv_arena_commit(&p->stats, ctx));
    for (int v = 0; v < nv; v++) {
        const cv_value *val = cv_graph_value(g, v);
        if (val->stat) {
            cv_arena_slot s = stat_slot;
            s.off += (size_t)p->stat_off[v];
            p->val[v] = cv_arena_view(&p->stats, s, val->shape);
        } else {
            p->val[v] = cv_arena_view(&p->act, sv[v], val->shape);
        }
        p->dval[v] = (backward && val->needs_grad) ? cv_arena_view(&p->dact, sd[v], val->shape) : none_tensor();
    }
    {
        cv_arena_slot s = stat_slot;
        s.off += stat_total;
        int64_t sh[4] = { 1, 1, 1, CV_PLAN_N_EXTRA };
        p->extra = cv_arena_view(&p->stats, s, sh);
    }
    if (backward) CV_TRY(plan_fills(p, nn, p->act.align_floats));
    p->workspace = plan_workspace(ctx, g);
    if (p->workspace) {
        cl_mem m;
        CV_TRY(cv_ctx_scratch(ctx, p->workspace, &m));
    }
    free(sv); free(sd); free(sx);
    *out = p;
    return CV_OK;
fail:
    free(sv); free(sd); free(sx); free(la); free(ld);
    cv_plan_free(p);
    return st;
}

void cv_plan_free(cv_plan *p) {
    if (!p) return;
    cv_arena_release(&p->act);
    cv_arena_release(&p->dact);
    cv_arena_release(&p->stats);
    free(p->val); free(p->dval); free(p->aux); free(p->gelu_reuse); free(p->stat_off); free(p->gw);
    free(p->zero_start); free(p->zero_vals); free(p->set_mask); free(p->kl_sum);
    free(p->fill_start); free(p->fill); free(p->fill_val);
    free(p);
}

cv_tensor cv_plan_value(const cv_plan *p, int v) { return p->val[v]; }
cv_tensor cv_plan_grad(const cv_plan *p, int v)  { return p->dval[v]; }
cv_tensor cv_plan_extra(const cv_plan *p)        { return p->extra; }
int       cv_plan_n_stats(const cv_plan *p)      { return p->n_stats; }
int       cv_plan_stat_offset(const cv_plan *p, int v) { return p->stat_off[v]; }
size_t    cv_plan_nbytes(const cv_plan *p) {
    return cv_arena_nbytes(&p->act) + cv_arena_nbytes(&p->dact) + cv_arena_nbytes(&p->stats) + p->workspace;
}

cv_status cv_plan_upload(cv_plan *p, int v, const float *host) {
    const cv_tensor *t = &p->val[v];
    return CV_CL(clEnqueueWriteBuffer(cv_ctx_queue(p->ctx), t->buf, CL_FALSE, t->off * sizeof(float),
                                      cv_tensor_nbytes(t), host, 0, NULL, NULL));
}

cv_status cv_plan_read_stats(cv_plan *p, float *out) {
    return CV_CL(clEnqueueReadBuffer(cv_ctx_queue(p->ctx), p->stats.buf[0], CL_TRUE, 0,
                                     (size_t)p->n_stats * sizeof(float), out, 0, NULL, NULL));
}

static uint64_t stream_of(const cv_node *n, uint64_t step) { return step * 4096u + n->p.rep.group; }

/* Noise index of a value's first element (reference path): global row
 * offset x elements per row, as noise_index0 on the device. */
static uint64_t index0_of(int64_t row0, const int64_t shape[4]) {
    return (uint64_t)row0 * (uint64_t)(shape[1] * shape[2] * shape[3]);
}

void cv_plan_set_noise_row(cv_plan *p, int64_t row0) { p->noise_row0 = row0; }

/* The SUM node that produces value v, or -1. */
static int sum_node(const cv_graph *g, int v) {
    if (v < 0 || v >= cv_graph_n_values(g)) return -1;
    int k = cv_graph_value(g, v)->node;
    return k >= 0 && cv_graph_node(g, k)->op == CV_OP_SUM ? k : -1;
}

cv_status cv_plan_set_grad_weight(cv_plan *p, int v, float w) {
    int k = sum_node(p->g, v);
    if (k < 0) return cv_error(CV_ERR_ARG, "plan: value %d is not the output of a sum: no gradient weight", v);
    if (!isfinite(w)) return cv_error(CV_ERR_ARG, "plan: gradient weight %g of value %d is not finite", w, v);
    p->gw[k] = w;
    return CV_OK;
}

/* First noise index of a reparam node's output: global row offset x elements per row. */
static uint64_t noise_index0(const cv_plan *p, const cv_node *n) {
    const int64_t *s = p->val[n->out].shape;
    return (uint64_t)p->noise_row0 * (uint64_t)(s[1] * s[2] * s[3]);
}

/* The node's forward-to-backward cache k (0, 1), or NULL. */
static const cv_tensor *aux_k(const cv_plan *p, int i, int k) { return p->aux[2 * i + k].buf ? &p->aux[2 * i + k] : NULL; }

/* A gradient view only if the value needs one. */
static const cv_tensor *gv(const cv_plan *p, int v) { return p->dval[v].buf ? &p->dval[v] : NULL; }

/* The views node i's forward sees. */
static void exec_fwd_of(const cv_plan *p, int i, const cv_node *n, uint64_t seed, uint64_t step, cv_op_exec *e) {
    memset(e, 0, sizeof *e);
    e->ctx = p->ctx; e->n = n;
    for (int k = 0; k < n->n_in; k++) e->x[k] = &p->val[n->in[k]];
    for (int k = 0; k < n->n_par; k++) e->par[k] = &p->params[n->par[k]];
    e->y = &p->val[n->out];
    e->aux[0] = aux_k(p, i, 0); e->aux[1] = aux_k(p, i, 1);
    e->gelu_reuse = p->gelu_reuse[i];
    if (cv_op_desc_of(n->op)->flags & CV_OPF_NOISE) {
        e->seed = seed; e->stream = stream_of(n, step); e->index0 = noise_index0(p, n);
    }
}

/* ... and its backward: the gradients, what to write (=), the fusions. */
static void exec_bwd_of(const cv_plan *p, int i, const cv_node *n, uint64_t seed, uint64_t step, cv_op_exec *e) {
    exec_fwd_of(p, i, n, seed, step, e);
    e->gelu_reuse = 0;
    for (int k = 0; k < n->n_in; k++) e->dx[k] = gv(p, n->in[k]);
    for (int k = 0; k < n->n_par; k++) e->dpar[k] = &p->grads[n->par[k]];
    e->dy = &p->dval[n->out];
    e->set_mask = p->set_mask[i];
    e->gw = p->gw[i];
    int partner = p->kl_sum[i];
    e->fused = partner >= 0;
    if (partner >= 0 && cv_graph_node(p->g, partner)->op == CV_OP_SUM) {   /* a KL: the sum's gradient */
        const cv_node *s = cv_graph_node(p->g, partner);
        e->fused_dy = &p->dval[s->out];
        e->fused_scale = s->p.s * p->gw[partner];
    }
}

static cv_status node_fwd(cv_plan *p, int i, const cv_node *n, uint64_t seed, uint64_t step) {
    const cv_op_desc *d = cv_op_desc_of(n->op);
    if (!d->fwd) return CV_OK;
    cv_op_exec e;
    exec_fwd_of(p, i, n, seed, step, &e);
    return d->fwd(&e);
}

static cv_status node_bwd(cv_plan *p, int i, const cv_node *n, uint64_t seed, uint64_t step) {
    const cv_op_desc *d = cv_op_desc_of(n->op);
    if (!p->dval[n->out].buf || !d->bwd) return CV_OK;
    cv_op_exec e;
    exec_bwd_of(p, i, n, seed, step, &e);
    return d->bwd(&e);
}

static cv_status node_error(const cv_node *n, const char *dir, cv_status st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cv_last_error());
    return cv_error(st, "%s of node '%s' (%s): %s", dir, n->name, cv_op_name(n->op), msg);
}

cv_status cv_plan_forward(cv_plan *p, uint64_t seed, uint64_t step) {
    for (int i = 0; i < cv_graph_n_nodes(p->g); i++) {
        const cv_node *n = cv_graph_node(p->g, i);
        cv_status st = node_fwd(p, i, n, seed, step);
        if (st != CV_OK) return node_error(n, "forward", st);
    }
    return CV_OK;
}

cv_status cv_plan_backward(cv_plan *p, int loss_value, float scale, uint64_t seed, uint64_t step) {
    return cv_plan_backward_hooked(p, loss_value, scale, seed, step, NULL, NULL);
}

cv_status cv_plan_backward_hooked(cv_plan *p, int loss_value, float scale, uint64_t seed, uint64_t step,
                                  cv_plan_node_hook hook, void *user) {
    if (p->flags & CV_PLAN_NO_BACKWARD) return cv_error(CV_ERR_ARG, "backward on an inference-only plan");
    if (!p->dval[loss_value].buf) return cv_error(CV_ERR_ARG, "the loss does not depend on any parameter");
    cv_status st = CV_OK;
    for (int i = cv_graph_n_nodes(p->g) - 1; i >= 0; i--) {
        const cv_node *n = cv_graph_node(p->g, i);
        for (int k = p->fill_start[i]; k < p->fill_start[i + 1]; k++) {
            st = cv_fill_fwd(p->ctx, &p->fill[k], p->fill_val[k] == loss_value ? scale : 0.0f);
            if (st != CV_OK) return st;
        }
        st = node_bwd(p, i, n, seed, step);
        if (st != CV_OK) return node_error(n, "backward", st);
        if (hook && (st = hook(user, i)) != CV_OK) return st;
    }
    return CV_OK;
}


/* ------------------------------------------------------------ reference */

struct cv_refplan {
    const cv_graph *g;
    double **val, **dval;
    int64_t row0;
    double  *gw;        /* as cv_plan's */
};

void cv_refplan_set_noise_row(cv_refplan *r, int64_t row0) { r->row0 = row0; }


cv_status cv_refplan_new(const cv_graph *g, cv_refplan **out) {
    int nv = cv_graph_n_values(g);
    cv_refplan *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r) return cv_error(CV_ERR_NOMEM, "out of memory");
    r->g = g;
    r->val = calloc((size_t)nv, sizeof *r->val);
    r->dval = calloc((size_t)nv, sizeof *r->dval);
    r->gw = malloc(((size_t)cv_graph_n_nodes(g) + 1) * sizeof *r->gw);
    for (int i = 0; r->gw && i < cv_graph_n_nodes(g); i++) r->gw[i] = 1.0;
    if (!r->val || !r->dval || !r->gw) { cv_refplan_free(r); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    for (int v = 0; v < nv; v++) {
        size_t n = (size_t)cv_shape_numel(cv_graph_value(g, v)->shape);
        r->val[v] = calloc(n ? n : 1, sizeof(double));
        r->dval[v] = calloc(n ? n : 1, sizeof(double));
        if (!r->val[v] || !r->dval[v]) { cv_refplan_free(r); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    }
    *out = r;
    return CV_OK;
}

void cv_refplan_free(cv_refplan *r) {
    if (!r) return;
    int nv = cv_graph_n_values(r->g);
    for (int v = 0; v < nv; v++) {
        if (r->val) free(r->val[v]);
        if (r->dval) free(r->dval[v]);
    }
    free(r->val); free(r->dval); free(r->gw);
    free(r);
}

double *cv_refplan_value(cv_refplan *r, int v) { return r->val[v]; }
double *cv_refplan_grad(cv_refplan *r, int v)  { return r->dval[v]; }

cv_status cv_refplan_set_grad_weight(cv_refplan *r, int v, double w) {
    int k = sum_node(r->g, v);
    if (k < 0) return cv_error(CV_ERR_ARG, "plan: value %d is not the output of a sum: no gradient weight", v);
    r->gw[k] = w;
    return CV_OK;
}

#define SHP(v) (cv_graph_value(g, (v))->shape)

/* The views node i's reference sees (forward: y; backward: dy and the gradients). */
static void ref_of(const cv_refplan *r, double *const *params, double *const *dparams, int i, const cv_node *n,
                   uint64_t seed, uint64_t step, cv_op_ref *o) {
    const cv_graph *g = r->g;
    memset(o, 0, sizeof *o);
    o->n = n;
    o->ys = SHP(n->out);
    for (int k = 0; k < n->n_in; k++) {
        o->x[k] = r->val[n->in[k]];
        o->dx[k] = r->dval[n->in[k]];
        o->xs[k] = SHP(n->in[k]);
    }
    if (n->n_in == 0) o->xs[0] = o->ys;
    for (int k = 0; k < n->n_par; k++) {
        o->par[k] = params[n->par[k]];
        o->dpar[k] = dparams ? dparams[n->par[k]] : NULL;
    }
    o->y = r->val[n->out];
    o->dy = r->dval[n->out];
    if (cv_op_desc_of(n->op)->flags & CV_OPF_NOISE) {
        o->seed = seed; o->stream = stream_of(n, step); o->index0 = index0_of(r->row0, o->ys);
    }
    o->gw = r->gw[i];
}

void cv_refplan_forward(cv_refplan *r, double *const *params, uint64_t seed, uint64_t step) {
    const cv_graph *g = r->g;
    for (int i = 0; i < cv_graph_n_nodes(g); i++) {
        const cv_node *n = cv_graph_node(g, i);
        const cv_op_desc *d = cv_op_desc_of(n->op);
        if (!d->ref_fwd) continue;
        cv_op_ref o;
        ref_of(r, params, NULL, i, n, seed, step, &o);
        d->ref_fwd(&o);
    }
}

void cv_refplan_backward(cv_refplan *r, double *const *params, double *const *dparams,
                         int loss_value, double scale, uint64_t seed, uint64_t step) {
    const cv_graph *g = r->g;
    for (int v = 0; v < cv_graph_n_values(g); v++) memset(r->dval[v], 0, (size_t)cv_shape_numel(SHP(v)) * sizeof(double));
    for (int64_t i = 0; i < cv_shape_numel(SHP(loss_value)); i++) r->dval[loss_value][i] = scale;
    for (int i = cv_graph_n_nodes(g) - 1; i >= 0; i--) {
        const cv_node *n = cv_graph_node(g, i);
        const cv_op_desc *d = cv_op_desc_of(n->op);
        if (!d->ref_bwd) continue;
        cv_op_ref o;
        ref_of(r, params, dparams, i, n, seed, step, &o);
        d->ref_bwd(&o);
    }
}
