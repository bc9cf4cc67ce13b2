/* cv_graph.h -- a host-side graph of op nodes, built once per model and
 * batch shape.
 *
 * Values are tensors (NCHW) produced by nodes; parameters belong to the
 * model (cv_model) and are referred to by index.  Nodes are appended in
 * program order, which is the topological order: a node may only read
 * values made by earlier nodes (asserted).  Shapes are inferred and checked
 * when a node is added, so a bad architecture fails while building, with
 * the node's name, never during execution. */
#ifndef CV_GRAPH_H
#define CV_GRAPH_H

#include "ops/cv_ops.h"

typedef enum cv_op {
    CV_OP_INPUT,      /* data: uploaded by the caller */
    CV_OP_CONV2D,     /* in: x [, residual r]; par: w, b.  y = conv(act(x)) + b [+ r] */
    CV_OP_GELU,       /* in: x */
    CV_OP_ADD,        /* in: a, b */
    CV_OP_SCALE,      /* in: x; p.s */
    CV_OP_AVGPOOL,    /* in: x; p.k */
    CV_OP_UPSAMPLE,   /* in: x [, residual r]; p.k.  y = up(x) [+ r] */
    CV_OP_CONCAT,     /* in: a, b (channels) */
    CV_OP_SLICE,      /* in: x; p.slice channels [c0, c0 + C) */
    CV_OP_AFFINE,     /* in: x; par: gain, bias (per channel) */
    CV_OP_REPARAM,    /* in: mu, logs; p.rep.  z = mu + t exp(logs) eps */
    CV_OP_GAUSSKL,    /* in: mq, lsq, mp, lsp */
    CV_OP_GAUSSNLL,   /* in: x (data), mu, logs; p.floor */
    CV_OP_SUM,        /* in: x; p.s.  per-sample scaled sum -> (N,1,1,1) */
    CV_OP_BCAST,      /* par: t (1,C,H,W) -> (N,C,H,W), learned starting tensors */
    CV_OP_WRAPPAD,    /* in: x; p.k.  periodic padding by k on every side */
    CV_OP_CROP,       /* in: x; p.k.  the interior without k on every side */
    CV_OP_COUNT
} cv_op;

/* The op's name ("conv2d"), "?" outside the enum; the rest of what an op is
 * lives in its descriptor (graph/cv_op_table.h). */
const char *cv_op_name(cv_op op);

typedef struct cv_node {
    cv_op   op;
    char    name[96];
    int     in[4], n_in;      /* value ids */
    int     par[2], n_par;    /* model parameter ids */
    int     out;              /* value id */
    union {
        cv_conv2d_params conv;
        int              k;
        struct { int64_t c0, n; } slice;
        float            s;
        float            floor;
        struct { uint32_t group; float t; } rep;   /* noise stream = step * 4096 + group */
    } p;
} cv_node;

typedef struct cv_value {
    int64_t shape[4];
    int     node;             /* producing node */
    int     stat;             /* 1: a small per-sample statistic read back each step */
    int     output;           /* 1: read by the caller after forward (kept alive) */
    int     needs_grad;
} cv_value;

/* Parameter shapes come from the model; the graph only needs them for
 * shape inference. */
typedef struct cv_graph_params {
    int            n;
    const int64_t (*shape)[4];
} cv_graph_params;

typedef struct cv_graph cv_graph;

/* A graph for batch size `batch` (used by broadcasts). Caller frees. */
cv_status cv_graph_new(const cv_graph_params *pars, int64_t batch, cv_graph **out);
void      cv_graph_free(cv_graph *g);

/* Add an input of the given shape; returns its value id (>= 0) or a
 * negative cv_status. */
int cv_graph_input(cv_graph *g, const char *name, const int64_t shape[4]);
/* Add a node; ins/pars copied; shape inferred.  Returns the output value
 * id, or a negative cv_status with the node's name in cv_last_error(). */
int cv_graph_add(cv_graph *g, const cv_node *proto);
/* Mark a value as a per-step statistic (loss, recon, KL per group...). */
void cv_graph_mark_stat(cv_graph *g, int value);
/* Mark a value the caller reads after forward, so that an inference plan
 * that reuses memory by liveness keeps it. */
void cv_graph_mark_output(cv_graph *g, int value);

int             cv_graph_n_nodes(const cv_graph *g);
int             cv_graph_n_values(const cv_graph *g);
const cv_node  *cv_graph_node(const cv_graph *g, int i);
const cv_value *cv_graph_value(const cv_graph *g, int i);
const cv_graph_params *cv_graph_pars(const cv_graph *g);
int64_t         cv_graph_batch(const cv_graph *g);
/* Forward FLOPs of the graph (multiply-add = 2). */
double cv_graph_flops(const cv_graph *g);

#endif
