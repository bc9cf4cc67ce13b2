/* cv_op_table.h -- one descriptor per graph op (cv_op): its name, arity,
 * shape inference, scratch need, device forward and backward, plain-C
 * reference forward and backward, and the check family that covers it.
 * cv_graph.c and cv_plan.c dispatch through the table and switch on no op.
 *
 * Adding an op: its kernel in cl/<family>.cl, its launchers and reference
 * in src/ops/cv_op_<family>.c, one enum value in cv_graph.h and one row
 * in cv_op_table.c (the _Static_assert there fails until the row exists),
 * its checks in src/check/cv_check_<family>.c.  doc/model.md has a worked
 * example.
 *
 * The adapters see a node through cv_op_exec (device) or cv_op_ref (plain
 * C), which the plans fill: views of the inputs, the output, parameters,
 * their gradients and the forward-to-backward caches, so that no adapter
 * needs the plan's internals. */
#ifndef CV_OP_TABLE_H
#define CV_OP_TABLE_H

#include "graph/cv_graph.h"

/* The shapes a node's inference sees. */
typedef struct cv_op_shape {
    const cv_node *n;
    const int64_t *x[4];      /* input shapes (n->n_in of them) */
    const int64_t *par[2];    /* parameter shapes (n->n_par of them) */
    int64_t        batch;     /* the graph's batch size */
} cv_op_shape;

/* One node on the device. */
typedef struct cv_op_exec {
    cv_ctx          *ctx;
    const cv_node   *n;
    const cv_tensor *x[4];      /* inputs */
    const cv_tensor *dx[4];     /* their gradients; NULL where an input has none */
    const cv_tensor *y, *dy;    /* output, and its gradient (backward) */
    const cv_tensor *par[2];    /* parameters */
    const cv_tensor *dpar[2];   /* their gradients (backward) */
    const cv_tensor *aux[2];    /* forward-to-backward caches; NULL where none */
    int              gelu_reuse;  /* aux[] are filled by an earlier conv on the same input */
    int              set_mask;    /* bit k: write (=) input k's gradient instead of adding */
    uint64_t         seed, stream, index0;   /* noise (CV_OPF_NOISE) */
    float            gw;          /* backward weight of a sum's gradient */
    int              fused;       /* a KL and the sum that is its only consumer: one backward */
    const cv_tensor *fused_dy;    /* for that KL: the sum's gradient ... */
    float            fused_scale; /* ... and its scale (sum's s x its weight) */
} cv_op_exec;

/* One node in plain C (double). */
typedef struct cv_op_ref {
    const cv_node  *n;
    const double   *x[4];       /* inputs */
    double         *dx[4];      /* their gradients (backward; accumulated) */
    double         *y;          /* output (forward) */
    const double   *dy;         /* its gradient (backward) */
    const int64_t  *xs[4];      /* input shapes */
    const int64_t  *ys;         /* output shape */
    const double   *par[2];     /* parameters */
    double         *dpar[2];    /* their gradients */
    uint64_t        seed, stream, index0;
    double          gw;
} cv_op_ref;

enum {
    CV_OPF_NOISE = 1,   /* reads the noise stream (seed, stream, index0) */
    CV_OPF_SETS  = 2,   /* its backward can write (=) a first gradient: set_mask */
    CV_OPF_AUX_Y = 4    /* keeps one output-shaped cache from forward to backward */
};

typedef struct cv_op_desc {
    const char *name;
    int         n_in, n_in_opt;     /* inputs: required, and how many more may follow (a residual) */
    int         n_par, n_par_opt;   /* parameters: all, and how many of the last may be left out */
    unsigned    flags;              /* CV_OPF_* */
    const char *family;             /* the check family (src/check/) that covers its kernels */
    /* output shape; CV_ERR_SHAPE or CV_ERR_ARG naming the node (arity and
     * indices are checked before) */
    cv_status (*infer)(const cv_op_shape *s, int64_t y[4]);
    size_t    (*scratch)(cv_ctx *ctx, const cv_op_shape *s);   /* context scratch bytes; NULL: none */
    cv_status (*fwd)(const cv_op_exec *e);      /* NULL: nothing to run (an input) */
    cv_status (*bwd)(const cv_op_exec *e);
    void      (*ref_fwd)(const cv_op_ref *r);
    void      (*ref_bwd)(const cv_op_ref *r);
} cv_op_desc;

extern const cv_op_desc cv_op_descs[CV_OP_COUNT];

/* The descriptor of op, or NULL outside the enum. */
const cv_op_desc *cv_op_desc_of(cv_op op);

#endif
