/* cv_graph.c -- graph building with shape inference.
 * Invariant: node i reads only values produced by nodes < i, so program
 * order is a valid forward order and its reverse a valid backward order. */
#include "graph/cv_graph.h"

#include <string.h>

struct cv_graph {
    cv_graph_params pars;
    int64_t   batch;
    cv_node  *nodes;
    int       n_nodes, cap_nodes;
    cv_value *vals;
    int       n_vals, cap_vals;
};

static const char *op_names[CV_OP_COUNT] = {
    "input", "conv2d", "gelu", "add", "scale", "avgpool", "upsample", "concat",
    "slice", "affine", "reparam", "gausskl", "gaussnll", "sum", "bcast", "wrappad", "crop",
};
_Static_assert(sizeof op_names / sizeof op_names[0] == CV_OP_COUNT, "one name per op");

const char *cv_op_name(cv_op op) { return op >= 0 && op < CV_OP_COUNT ? op_names[op] : "?"; }

cv_status cv_graph_new(const cv_graph_params *pars, int64_t batch, cv_graph **out) {
    cv_graph *g = calloc(1, sizeof *g);
    if (!g) return cv_error(CV_ERR_NOMEM, "out of memory building a graph");
    if (pars) g->pars = *pars;
    g->batch = batch;
    *out = g;
    return CV_OK;
}

void cv_graph_free(cv_graph *g) {
    if (!g) return;
    free(g->nodes);
    free(g->vals);
    free(g);
}

int             cv_graph_n_nodes(const cv_graph *g)        { return g->n_nodes; }
int             cv_graph_n_values(const cv_graph *g)       { return g->n_vals; }
const cv_node  *cv_graph_node(const cv_graph *g, int i)    { return &g->nodes[i]; }
const cv_value *cv_graph_value(const cv_graph *g, int i)   { return &g->vals[i]; }
const cv_graph_params *cv_graph_pars(const cv_graph *g)    { return &g->pars; }
int64_t         cv_graph_batch(const cv_graph *g)          { return g->batch; }
void cv_graph_mark_stat(cv_graph *g, int v)                { CV_ASSERT(v >= 0 && v < g->n_vals); g->vals[v].stat = 1; }
void cv_graph_mark_output(cv_graph *g, int v)              { CV_ASSERT(v >= 0 && v < g->n_vals); g->vals[v].output = 1; }

static int push_value(cv_graph *g, const int64_t shape[4], int node, int needs_grad) {
    if (g->n_vals == g->cap_vals) {
        int cap = g->cap_vals ? 2 * g->cap_vals : 256;
        cv_value *v = realloc(g->vals, (size_t)cap * sizeof *v);
        if (!v) return cv_error(CV_ERR_NOMEM, "out of memory building a graph");
        g->vals = v; g->cap_vals = cap;
    }
    cv_value *v = &g->vals[g->n_vals];
    memset(v, 0, sizeof *v);
    memcpy(v->shape, shape, sizeof v->shape);
    v->node = node;
    v->needs_grad = needs_grad;
    return g->n_vals++;
}

static int push_node(cv_graph *g, const cv_node *n) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 256;
        cv_node *v = realloc(g->nodes, (size_t)cap * sizeof *v);
        if (!v) return cv_error(CV_ERR_NOMEM, "out of memory building a graph");
        g->nodes = v; g->cap_nodes = cap;
    }
    g->nodes[g->n_nodes] = *n;
    return g->n_nodes++;
}

int cv_graph_input(cv_graph *g, const char *name, const int64_t shape[4]) {
    cv_node n;
    memset(&n, 0, sizeof n);
    n.op = CV_OP_INPUT;
    snprintf(n.name, sizeof n.name, "%s", name);
    int id = push_node(g, &n);
    if (id < 0) return id;
    int v = push_value(g, shape, id, 0);
    if (v < 0) return v;
    g->nodes[id].out = v;
    return v;
}

#define SH(v) (g->vals[v].shape)

static cv_status shape_err(const cv_node *n, const char *what, const int64_t a[4], const int64_t b[4]) {
    char s1[64], s2[64];
    return cv_error(CV_ERR_SHAPE, "node '%s' (%s): %s: %s vs %s", n->name, cv_op_name(n->op), what,
                    cv_shape_str(a, s1, sizeof s1), b ? cv_shape_str(b, s2, sizeof s2) : "-");
}

/* Infer the output shape of n; CV_ERR_SHAPE naming the node otherwise. */
static cv_status infer(const cv_graph *g, const cv_node *n, int64_t y[4]) {
    static const int n_in[CV_OP_COUNT]  = { 0, 1, 1, 2, 1, 1, 1, 2, 1, 1, 2, 4, 3, 1, 0, 1, 1 };
    static const int n_par[CV_OP_COUNT] = { 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0 };
    int extra = (n->op == CV_OP_CONV2D || n->op == CV_OP_UPSAMPLE) ? 1 : 0;  /* optional residual */
    int no_bias = n->op == CV_OP_CONV2D && n->n_par == 1;                     /* optional conv bias */
    if (n->n_in < n_in[n->op] || n->n_in > n_in[n->op] + extra || (n->n_par != n_par[n->op] && !no_bias))
        return cv_error(CV_ERR_ARG, "node '%s' (%s): %d inputs and %d parameters", n->name, cv_op_name(n->op), n->n_in, n->n_par);
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] < 0 || n->in[i] >= g->n_vals)
            return cv_error(CV_ERR_ARG, "node '%s': input %d refers to value %d, not made yet", n->name, i, n->in[i]);
    for (int i = 0; i < n->n_par; i++)
        if (n->par[i] < 0 || n->par[i] >= g->pars.n)
            return cv_error(CV_ERR_ARG, "node '%s': parameter %d out of range", n->name, n->par[i]);
    const int64_t *x = n->n_in ? SH(n->in[0]) : NULL;
    memcpy(y, x ? x : (const int64_t[4]){ 0, 0, 0, 0 }, 4 * sizeof *y);
    switch (n->op) {
    case CV_OP_INPUT: case CV_OP_COUNT: break;
    case CV_OP_CONV2D: {
        const int64_t *w = g->pars.shape[n->par[0]], *b = no_bias ? w : g->pars.shape[n->par[1]];
        if (n->p.conv.k != 1 && n->p.conv.k != 3) return cv_error(CV_ERR_ARG, "node '%s': kernel size %d", n->name, n->p.conv.k);
        if (w[1] != x[1] || w[2] != n->p.conv.k || w[3] != n->p.conv.k) return shape_err(n, "weight vs input", w, x);
        if (!no_bias && b[0] * b[1] * b[2] * b[3] != w[0]) return shape_err(n, "bias vs weight", b, w);
        y[1] = w[0];
        if (n->n_in == 2 && !cv_shape_eq(SH(n->in[1]), y)) return shape_err(n, "residual vs output", SH(n->in[1]), y);
        break;
    }
    case CV_OP_GELU: case CV_OP_SCALE: break;
    case CV_OP_ADD:
        if (!cv_shape_eq(x, SH(n->in[1]))) return shape_err(n, "operands", x, SH(n->in[1]));
        break;
    case CV_OP_AVGPOOL:
        if (n->p.k < 1 || x[2] % n->p.k || x[3] % n->p.k) return shape_err(n, "pooling factor does not divide", x, NULL);
        y[2] = x[2] / n->p.k; y[3] = x[3] / n->p.k;
        break;
    case CV_OP_UPSAMPLE:
        if (n->p.k < 1) return shape_err(n, "factor", x, NULL);
        y[2] = x[2] * n->p.k; y[3] = x[3] * n->p.k;
        if (n->n_in == 2 && !cv_shape_eq(SH(n->in[1]), y)) return shape_err(n, "residual vs output", SH(n->in[1]), y);
        break;
    case CV_OP_CONCAT: {
        const int64_t *b = SH(n->in[1]);
        if (x[0] != b[0] || x[2] != b[2] || x[3] != b[3]) return shape_err(n, "operands", x, b);
        y[1] = x[1] + b[1];
        break;
    }
    case CV_OP_SLICE:
        if (n->p.slice.c0 < 0 || n->p.slice.n < 1 || n->p.slice.c0 + n->p.slice.n > x[1])
            return shape_err(n, "channel slice out of range", x, NULL);
        y[1] = n->p.slice.n;
        break;
    case CV_OP_AFFINE: {
        const int64_t *gs = g->pars.shape[n->par[0]];
        if (gs[0] * gs[1] * gs[2] * gs[3] != x[1]) return shape_err(n, "gain vs channels", gs, x);
        break;
    }
    case CV_OP_REPARAM:
        if (!cv_shape_eq(x, SH(n->in[1]))) return shape_err(n, "mu vs logsigma", x, SH(n->in[1]));
        break;
    case CV_OP_GAUSSKL:
        for (int i = 1; i < 4; i++) if (!cv_shape_eq(x, SH(n->in[i]))) return shape_err(n, "operands", x, SH(n->in[i]));
        break;
    case CV_OP_GAUSSNLL:
        for (int i = 1; i < 3; i++) if (!cv_shape_eq(x, SH(n->in[i]))) return shape_err(n, "data vs prediction", x, SH(n->in[i]));
        break;
    case CV_OP_SUM:
        y[1] = y[2] = y[3] = 1;
        break;
    case CV_OP_WRAPPAD:
        if (n->p.k < 1) return shape_err(n, "padding width", x, NULL);
        y[2] = x[2] + 2 * n->p.k; y[3] = x[3] + 2 * n->p.k;
        break;
    case CV_OP_CROP:
        if (n->p.k < 1 || x[2] <= 2 * n->p.k || x[3] <= 2 * n->p.k) return shape_err(n, "crop wider than the map", x, NULL);
        y[2] = x[2] - 2 * n->p.k; y[3] = x[3] - 2 * n->p.k;
        break;
    case CV_OP_BCAST:
        return CV_OK;   /* shape set by the caller (batch) and checked in cv_graph_add */
    }
    return CV_OK;
}

int cv_graph_add(cv_graph *g, const cv_node *proto) {
    int64_t y[4] = { 0, 0, 0, 0 };
    cv_status st = infer(g, proto, y);
    if (st != CV_OK) return st;
    if (proto->op == CV_OP_BCAST) {
        const int64_t *t = g->pars.shape[proto->par[0]];
        if (t[0] != 1) return cv_error(CV_ERR_SHAPE, "node '%s': broadcast parameter must have N = 1", proto->name);
        y[0] = g->batch; y[1] = t[1]; y[2] = t[2]; y[3] = t[3];
    }
    int needs = proto->n_par > 0;
    for (int i = 0; i < proto->n_in; i++) needs |= g->vals[proto->in[i]].needs_grad;
    int id = push_node(g, proto);
    if (id < 0) return id;
    int v = push_value(g, y, id, needs);
    if (v < 0) return v;
    g->nodes[id].out = v;
    return v;
}

double cv_graph_flops(const cv_graph *g) {
    double f = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const cv_node *n = &g->nodes[i];
        if (n->op != CV_OP_CONV2D) continue;
        const int64_t *y = g->vals[n->out].shape, *w = g->pars.shape[n->par[0]];
        f += 2.0 * (double)y[0] * y[1] * y[2] * y[3] * w[1] * w[2] * w[3];
    }
    return f;
}
