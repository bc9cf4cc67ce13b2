/* cv_graph.c -- graph building with shape inference (through the op
 * table, cv_op_table.h).
 * Invariant: node i reads only values produced by nodes < i, so program
 * order is a valid forward order and its reverse a valid backward order. */
#include "graph/cv_op_table.h"

#include <string.h>

struct cv_graph {
    cv_graph_params pars;
    int64_t   batch;
    cv_node  *nodes;
    int       n_nodes, cap_nodes;
    cv_value *vals;
    int       n_vals, cap_vals;
};

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

/* Check the node's arity and indices, then infer its output shape through
 * its op's descriptor; CV_ERR_ARG or CV_ERR_SHAPE naming the node. */
static cv_status infer(const cv_graph *g, const cv_node *n, int64_t y[4]) {
    const cv_op_desc *d = cv_op_desc_of(n->op);
    if (!d || !d->infer) return cv_error(CV_ERR_ARG, "node '%s': no op %d", n->name, (int)n->op);
    if (n->n_in < d->n_in || n->n_in > d->n_in + d->n_in_opt || n->n_par < d->n_par - d->n_par_opt || n->n_par > d->n_par)
        return cv_error(CV_ERR_ARG, "node '%s' (%s): %d inputs and %d parameters", n->name, d->name, n->n_in, n->n_par);
    cv_op_shape s = { n, { NULL }, { NULL }, g->batch };
    for (int i = 0; i < n->n_in; i++) {
        if (n->in[i] < 0 || n->in[i] >= g->n_vals)
            return cv_error(CV_ERR_ARG, "node '%s': input %d refers to value %d, not made yet", n->name, i, n->in[i]);
        s.x[i] = SH(n->in[i]);
    }
    for (int i = 0; i < n->n_par; i++) {
        if (n->par[i] < 0 || n->par[i] >= g->pars.n)
            return cv_error(CV_ERR_ARG, "node '%s': parameter %d out of range", n->name, n->par[i]);
        s.par[i] = g->pars.shape[n->par[i]];
    }
    memcpy(y, n->n_in ? s.x[0] : (const int64_t[4]){ 0, 0, 0, 0 }, 4 * sizeof *y);
    return d->infer(&s, y);
}

int cv_graph_add(cv_graph *g, const cv_node *proto) {
    int64_t y[4] = { 0, 0, 0, 0 };
    cv_status st = infer(g, proto, y);
    if (st != CV_OK) return st;
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
