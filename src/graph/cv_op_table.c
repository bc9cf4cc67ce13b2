/* cv_op_table.c -- the op descriptor table (see cv_op_table.h): per op,
 * shape inference, scratch, and the adapters from a node to its family's
 * launchers (ops/cv_op_*.h) and references.
 * Invariant: an adapter does exactly what the node's op means and nothing
 * about plans: the plans hand it views (cv_op_exec, cv_op_ref). */
#include "graph/cv_op_table.h"
#include "ops/cv_op_model.h"

#include <string.h>

static cv_status shape_err(const cv_node *n, const char *what, const int64_t a[4], const int64_t b[4]) {
    char s1[64], s2[64];
    return cv_error(CV_ERR_SHAPE, "node '%s' (%s): %s: %s vs %s", n->name, cv_op_name(n->op), what,
                    cv_shape_str(a, s1, sizeof s1), b ? cv_shape_str(b, s2, sizeof s2) : "-");
}

/* ---- shape inference (y starts as a copy of the first input's shape) ---- */

static cv_status same_shape(const cv_op_shape *s, int64_t y[4]) { (void)s; (void)y; return CV_OK; }

static cv_status conv_infer(const cv_op_shape *s, int64_t y[4]) {
    const cv_node *n = s->n;
    const int64_t *x = s->x[0], *w = s->par[0];
    int no_bias = n->n_par == 1;
    if (n->p.conv.k != 1 && n->p.conv.k != 3) return cv_error(CV_ERR_ARG, "node '%s': kernel size %d", n->name, n->p.conv.k);
    if (w[1] != x[1] || w[2] != n->p.conv.k || w[3] != n->p.conv.k) return shape_err(n, "weight vs input", w, x);
    if (!no_bias) {
        const int64_t *b = s->par[1];
        if (b[0] * b[1] * b[2] * b[3] != w[0]) return shape_err(n, "bias vs weight", b, w);
    }
    y[1] = w[0];
    if (n->n_in == 2 && !cv_shape_eq(s->x[1], y)) return shape_err(n, "residual vs output", s->x[1], y);
    return CV_OK;
}

static cv_status all_same(const cv_op_shape *s, const char *what) {   /* every input shaped as the first */
    for (int i = 1; i < s->n->n_in; i++)
        if (!cv_shape_eq(s->x[0], s->x[i])) return shape_err(s->n, what, s->x[0], s->x[i]);
    return CV_OK;
}
static cv_status operands_infer(const cv_op_shape *s, int64_t y[4]) { (void)y; return all_same(s, "operands"); }
static cv_status reparam_infer(const cv_op_shape *s, int64_t y[4])  { (void)y; return all_same(s, "mu vs logsigma"); }
static cv_status gaussnll_infer(const cv_op_shape *s, int64_t y[4]) { (void)y; return all_same(s, "data vs prediction"); }

static cv_status avgpool_infer(const cv_op_shape *s, int64_t y[4]) {
    const cv_node *n = s->n;
    const int64_t *x = s->x[0];
    if (n->p.k < 1 || x[2] % n->p.k || x[3] % n->p.k) return shape_err(n, "pooling factor does not divide", x, NULL);
    y[2] = x[2] / n->p.k; y[3] = x[3] / n->p.k;
    return CV_OK;
}

static cv_status upsample_infer(const cv_op_shape *s, int64_t y[4]) {
    const cv_node *n = s->n;
    const int64_t *x = s->x[0];
    if (n->p.k < 1) return shape_err(n, "factor", x, NULL);
    y[2] = x[2] * n->p.k; y[3] = x[3] * n->p.k;
    if (n->n_in == 2 && !cv_shape_eq(s->x[1], y)) return shape_err(n, "residual vs output", s->x[1], y);
    return CV_OK;
}

static cv_status concat_infer(const cv_op_shape *s, int64_t y[4]) {
    const int64_t *x = s->x[0], *b = s->x[1];
    if (x[0] != b[0] || x[2] != b[2] || x[3] != b[3]) return shape_err(s->n, "operands", x, b);
    y[1] = x[1] + b[1];
    return CV_OK;
}

static cv_status slice_infer(const cv_op_shape *s, int64_t y[4]) {
    const cv_node *n = s->n;
    if (n->p.slice.c0 < 0 || n->p.slice.n < 1 || n->p.slice.c0 + n->p.slice.n > s->x[0][1])
        return shape_err(n, "channel slice out of range", s->x[0], NULL);
    y[1] = n->p.slice.n;
    return CV_OK;
}

static cv_status affine_infer(const cv_op_shape *s, int64_t y[4]) {
    (void)y;
    const int64_t *gs = s->par[0];
    if (gs[0] * gs[1] * gs[2] * gs[3] != s->x[0][1]) return shape_err(s->n, "gain vs channels", gs, s->x[0]);
    return CV_OK;
}

static cv_status sum_infer(const cv_op_shape *s, int64_t y[4]) { (void)s; y[1] = y[2] = y[3] = 1; return CV_OK; }

static cv_status bcast_infer(const cv_op_shape *s, int64_t y[4]) {
    const int64_t *t = s->par[0];
    if (t[0] != 1) return cv_error(CV_ERR_SHAPE, "node '%s': broadcast parameter must have N = 1", s->n->name);
    y[0] = s->batch; y[1] = t[1]; y[2] = t[2]; y[3] = t[3];
    return CV_OK;
}

static cv_status wrappad_infer(const cv_op_shape *s, int64_t y[4]) {
    const cv_node *n = s->n;
    const int64_t *x = s->x[0];
    if (n->p.k < 1) return shape_err(n, "padding width", x, NULL);
    y[2] = x[2] + 2 * n->p.k; y[3] = x[3] + 2 * n->p.k;
    return CV_OK;
}

static cv_status crop_infer(const cv_op_shape *s, int64_t y[4]) {
    const cv_node *n = s->n;
    const int64_t *x = s->x[0];
    if (n->p.k < 1 || x[2] <= 2 * n->p.k || x[3] <= 2 * n->p.k) return shape_err(n, "crop wider than the map", x, NULL);
    y[2] = x[2] - 2 * n->p.k; y[3] = x[3] - 2 * n->p.k;
    return CV_OK;
}

/* ---- scratch ------------------------------------------------------------- */

static size_t conv_scratch(cv_ctx *ctx, const cv_op_shape *s) {
    cv_conv2d_params cp = s->n->p.conv;
    if (s->n->n_in == 2) cp.accumulate = 1;
    return cv_conv2d_workspace(ctx, s->x[0], s->par[0][0], &cp);
}
static size_t sum_scratch(cv_ctx *ctx, const cv_op_shape *s) {
    (void)ctx;
    const int64_t *x = s->x[0];
    return cv_reduce_scratch_bytes(x[0], x[1] * x[2] * x[3]);
}
static size_t affine_scratch(cv_ctx *ctx, const cv_op_shape *s) {   /* backward: per-channel sums */
    (void)ctx;
    const int64_t *x = s->x[0];
    return cv_reduce_scratch_bytes(x[1], x[0] * x[2] * x[3]);
}

/* ---- device -------------------------------------------------------------- */

#define N  (e->n)
#define CT (e->ctx)

static cv_status conv_fwd(const cv_op_exec *e) {      /* a second input is a residual: y = conv + b + in[1], one pass */
    cv_conv2d_aux a = { N->n_in == 2 ? e->x[1] : NULL, NULL, e->aux[0], 0, 0, e->aux[1], e->gelu_reuse };
    return cv_conv2d_fwd_ex(CT, e->x[0], e->par[0], N->n_par > 1 ? e->par[1] : NULL, e->y, &N->p.conv, &a);
}
static cv_status conv_bwd(const cv_op_exec *e) {      /* the residual's gradient (d1 += dy) rides with the bias gradient */
    cv_conv2d_aux a = { NULL, N->n_in == 2 ? e->dx[1] : NULL, e->aux[0], e->set_mask & 1, (e->set_mask >> 1) & 1,
                        e->aux[1], 0 };
    return cv_conv2d_bwd_ex(CT, e->x[0], e->par[0], e->dy, e->dx[0], e->dpar[0], N->n_par > 1 ? e->dpar[1] : NULL,
                            &N->p.conv, &a);
}
static cv_status gelu_fwd(const cv_op_exec *e)     { return cv_gelu_fwd(CT, e->x[0], e->y); }
static cv_status gelu_bwd(const cv_op_exec *e)     { return e->dx[0] ? cv_gelu_bwd(CT, e->x[0], e->dy, e->dx[0]) : CV_OK; }
static cv_status add_fwd(const cv_op_exec *e)      { return cv_add_fwd(CT, e->x[0], e->x[1], e->y); }
static cv_status add_bwd(const cv_op_exec *e)      { return cv_add_bwd_ex(CT, e->dy, e->dx[0], e->dx[1], e->set_mask); }
static cv_status scale_fwd(const cv_op_exec *e)    { return cv_scale_fwd(CT, e->x[0], e->y, N->p.s); }
static cv_status scale_bwd(const cv_op_exec *e)    { return e->dx[0] ? cv_scale_bwd(CT, e->dy, e->dx[0], N->p.s) : CV_OK; }
static cv_status avgpool_fwd(const cv_op_exec *e)  { return cv_avgpool_fwd(CT, e->x[0], e->y, N->p.k); }
static cv_status avgpool_bwd(const cv_op_exec *e)  { return e->dx[0] ? cv_avgpool_bwd(CT, e->dy, e->dx[0], N->p.k) : CV_OK; }
static cv_status upsample_fwd(const cv_op_exec *e) {
    if (N->n_in == 2) { cv_status st = cv_copy_fwd(CT, e->x[1], e->y); if (st != CV_OK) return st; return cv_upsample_fwd(CT, e->x[0], e->y, N->p.k, 1); }
    return cv_upsample_fwd(CT, e->x[0], e->y, N->p.k, 0);
}
static cv_status upsample_bwd(const cv_op_exec *e) {
    if (N->n_in == 2 && e->dx[1]) { cv_status st = cv_copy_bwd(CT, e->dy, e->dx[1]); if (st != CV_OK) return st; }
    return e->dx[0] ? cv_upsample_bwd(CT, e->dy, e->dx[0], N->p.k) : CV_OK;
}
static cv_status concat_fwd(const cv_op_exec *e)   { return cv_concat_fwd(CT, e->x[0], e->x[1], e->y); }
static cv_status concat_bwd(const cv_op_exec *e)   { return cv_concat_bwd(CT, e->dy, e->dx[0], e->dx[1]); }
static cv_status slice_fwd(const cv_op_exec *e)    { return cv_slice_fwd(CT, e->x[0], N->p.slice.c0, e->y); }
static cv_status slice_bwd(const cv_op_exec *e)    { return e->dx[0] ? cv_slice_bwd(CT, e->dy, N->p.slice.c0, e->dx[0]) : CV_OK; }
static cv_status affine_fwd(const cv_op_exec *e)   { return cv_affine_fwd(CT, e->x[0], e->par[0], e->par[1], e->y); }
static cv_status affine_bwd(const cv_op_exec *e)   { return cv_affine_bwd(CT, e->x[0], e->par[0], e->dy, e->dx[0], e->dpar[0], e->dpar[1]); }
static cv_status reparam_fwd(const cv_op_exec *e) {
    return cv_reparam_fwd_ex(CT, e->x[0], e->x[1], e->y, e->seed, e->stream, e->index0, N->p.rep.t, e->aux[0]);
}
static cv_status reparam_bwd(const cv_op_exec *e) {
    return cv_reparam_bwd_ex(CT, e->x[1], e->dy, e->dx[0], e->dx[1], e->seed, e->stream, e->index0, N->p.rep.t, e->aux[0]);
}
static cv_status gausskl_fwd(const cv_op_exec *e)  { return cv_gausskl_fwd(CT, e->x[0], e->x[1], e->x[2], e->x[3], e->y); }
static cv_status gausskl_bwd(const cv_op_exec *e) {
    if (e->fused)      /* from the sum's gradient, per sample */
        return cv_gausskl_sum_bwd(CT, e->x[0], e->x[1], e->x[2], e->x[3], e->fused_dy, e->fused_scale, e->dx[0], e->dx[1],
                                  e->dx[2], e->dx[3], e->set_mask);
    return cv_gausskl_bwd_ex(CT, e->x[0], e->x[1], e->x[2], e->x[3], e->dy, e->dx[0], e->dx[1], e->dx[2], e->dx[3],
                             e->set_mask);
}
static cv_status gaussnll_fwd(const cv_op_exec *e) { return cv_gaussnll_fwd(CT, e->x[0], e->x[1], e->x[2], e->y, N->p.floor); }
static cv_status gaussnll_bwd(const cv_op_exec *e) { return cv_gaussnll_bwd(CT, e->x[0], e->x[1], e->x[2], e->dy, e->dx[1], e->dx[2], N->p.floor); }
static cv_status sum_fwd(const cv_op_exec *e)      { return cv_sum_fwd(CT, e->x[0], e->y, N->p.s, 0); }
static cv_status sum_bwd(const cv_op_exec *e) {    /* a fused KL takes the gradient itself */
    return e->dx[0] && !e->fused ? cv_sum_bwd_ex(CT, e->dy, e->dx[0], N->p.s * e->gw, e->set_mask & 1) : CV_OK;
}
static cv_status bcast_fwd(const cv_op_exec *e)    { return cv_bcast_fwd(CT, e->par[0], e->y); }
static cv_status bcast_bwd(const cv_op_exec *e)    { return cv_bcast_bwd(CT, e->dy, e->dpar[0]); }
static cv_status wrappad_fwd(const cv_op_exec *e)  { return cv_wrappad_fwd(CT, e->x[0], e->y, N->p.k); }
static cv_status wrappad_bwd(const cv_op_exec *e)  { return e->dx[0] ? cv_wrappad_bwd(CT, e->dy, e->dx[0], N->p.k) : CV_OK; }
static cv_status crop_fwd(const cv_op_exec *e)     { return cv_crop_fwd(CT, e->x[0], e->y, N->p.k); }
static cv_status crop_bwd(const cv_op_exec *e)     { return e->dx[0] ? cv_crop_bwd(CT, e->dy, e->dx[0], N->p.k) : CV_OK; }

#undef CT
#undef N

/* ---- plain-C references (double) --------------------------------------- */

#define N  (r->n)
#define X0 (r->x[0])
#define XS (r->xs[0])
#define NY (cv_shape_numel(r->ys))

static void conv_ref_fwd(const cv_op_ref *r) {
    cv_conv2d_params cp = N->p.conv;
    if (N->n_in == 2) { cv_copy_ref_fwd(r->x[1], r->y, NY); cp.accumulate = 1; }
    cv_conv2d_ref_fwd(X0, r->par[0], N->n_par > 1 ? r->par[1] : NULL, r->y, XS[0], XS[1], XS[2], XS[3], r->ys[1], &cp);
}
static void conv_ref_bwd(const cv_op_ref *r) {
    cv_conv2d_params cp = N->p.conv;
    if (N->n_in == 2) { cv_copy_ref_bwd(r->dy, r->dx[1], NY); cp.accumulate = 1; }
    cv_conv2d_ref_bwd(X0, r->par[0], r->dy, r->dx[0], r->dpar[0], N->n_par > 1 ? r->dpar[1] : NULL,
                      XS[0], XS[1], XS[2], XS[3], r->ys[1], &cp);
}
static void gelu_ref_fwd(const cv_op_ref *r)     { cv_gelu_ref_fwd(X0, r->y, NY); }
static void gelu_ref_bwd(const cv_op_ref *r)     { cv_gelu_ref_bwd(X0, r->dy, r->dx[0], NY); }
static void add_ref_fwd(const cv_op_ref *r)      { cv_add_ref_fwd(X0, r->x[1], r->y, NY); }
static void add_ref_bwd(const cv_op_ref *r)      { cv_add_ref_bwd(r->dy, r->dx[0], r->dx[1], NY); }
static void scale_ref_fwd(const cv_op_ref *r)    { cv_scale_ref_fwd(X0, r->y, NY, N->p.s); }
static void scale_ref_bwd(const cv_op_ref *r)    { cv_scale_ref_bwd(r->dy, r->dx[0], NY, N->p.s); }
static void avgpool_ref_fwd(const cv_op_ref *r)  { cv_avgpool_ref_fwd(X0, r->y, XS[0], XS[1], XS[2], XS[3], N->p.k); }
static void avgpool_ref_bwd(const cv_op_ref *r)  { cv_avgpool_ref_bwd(r->dy, r->dx[0], XS[0], XS[1], XS[2], XS[3], N->p.k); }
static void upsample_ref_fwd(const cv_op_ref *r) {
    if (N->n_in == 2) cv_copy_ref_fwd(r->x[1], r->y, NY);
    cv_upsample_ref_fwd(X0, r->y, XS[0], XS[1], XS[2], XS[3], N->p.k, N->n_in == 2);
}
static void upsample_ref_bwd(const cv_op_ref *r) {
    if (N->n_in == 2) cv_copy_ref_bwd(r->dy, r->dx[1], NY);
    cv_upsample_ref_bwd(r->dy, r->dx[0], XS[0], XS[1], XS[2], XS[3], N->p.k);
}
static void concat_ref_fwd(const cv_op_ref *r)   { cv_concat_ref_fwd(X0, r->x[1], r->y, XS[0], XS[1], r->xs[1][1], XS[2] * XS[3]); }
static void concat_ref_bwd(const cv_op_ref *r)   { cv_concat_ref_bwd(r->dy, r->dx[0], r->dx[1], XS[0], XS[1], r->xs[1][1], XS[2] * XS[3]); }
static void slice_ref_fwd(const cv_op_ref *r)    { cv_slice_ref_fwd(X0, r->y, XS[0], XS[1], XS[2] * XS[3], N->p.slice.c0, N->p.slice.n); }
static void slice_ref_bwd(const cv_op_ref *r)    { cv_slice_ref_bwd(r->dy, r->dx[0], XS[0], XS[1], XS[2] * XS[3], N->p.slice.c0, N->p.slice.n); }
static void affine_ref_fwd(const cv_op_ref *r)   { cv_affine_ref_fwd(X0, r->par[0], r->par[1], r->y, XS[0], XS[1], XS[2] * XS[3]); }
static void affine_ref_bwd(const cv_op_ref *r) {
    cv_affine_ref_bwd(X0, r->par[0], r->dy, r->dx[0], r->dpar[0], r->dpar[1], XS[0], XS[1], XS[2] * XS[3]);
}
static void reparam_ref_fwd(const cv_op_ref *r)  { cv_reparam_ref_fwd(X0, r->x[1], r->y, NY, r->seed, r->stream, r->index0, N->p.rep.t); }
static void reparam_ref_bwd(const cv_op_ref *r) {
    cv_reparam_ref_bwd(r->x[1], r->dy, r->dx[0], r->dx[1], NY, r->seed, r->stream, r->index0, N->p.rep.t);
}
static void gausskl_ref_fwd(const cv_op_ref *r)  { cv_gausskl_ref_fwd(X0, r->x[1], r->x[2], r->x[3], r->y, NY); }
static void gausskl_ref_bwd(const cv_op_ref *r) {
    cv_gausskl_ref_bwd(X0, r->x[1], r->x[2], r->x[3], r->dy, r->dx[0], r->dx[1], r->dx[2], r->dx[3], NY);
}
static void gaussnll_ref_fwd(const cv_op_ref *r) { cv_gaussnll_ref_fwd(X0, r->x[1], r->x[2], r->y, NY, N->p.floor); }
static void gaussnll_ref_bwd(const cv_op_ref *r) { cv_gaussnll_ref_bwd(X0, r->x[1], r->x[2], r->dy, r->dx[1], r->dx[2], NY, N->p.floor); }
static void sum_ref_fwd(const cv_op_ref *r)      { cv_sum_ref_fwd(X0, r->y, XS[0], cv_shape_numel(XS) / XS[0], N->p.s, 0); }
static void sum_ref_bwd(const cv_op_ref *r)      { cv_sum_ref_bwd(r->dy, r->dx[0], XS[0], cv_shape_numel(XS) / XS[0], N->p.s * r->gw); }
static void bcast_ref_fwd(const cv_op_ref *r)    { cv_bcast_ref_fwd(r->par[0], r->y, r->ys[0], r->ys[1] * r->ys[2] * r->ys[3]); }
static void bcast_ref_bwd(const cv_op_ref *r)    { cv_bcast_ref_bwd(r->dy, r->dpar[0], r->ys[0], r->ys[1] * r->ys[2] * r->ys[3]); }
static void wrappad_ref_fwd(const cv_op_ref *r)  { cv_wrappad_ref_fwd(X0, r->y, XS[0], XS[1], XS[2], XS[3], N->p.k); }
static void wrappad_ref_bwd(const cv_op_ref *r)  { cv_wrappad_ref_bwd(r->dy, r->dx[0], XS[0], XS[1], XS[2], XS[3], N->p.k); }
static void crop_ref_fwd(const cv_op_ref *r)     { cv_crop_ref_fwd(X0, r->y, XS[0], XS[1], XS[2], XS[3], N->p.k); }
static void crop_ref_bwd(const cv_op_ref *r)     { cv_crop_ref_bwd(r->dy, r->dx[0], XS[0], XS[1], XS[2], XS[3], N->p.k); }

#undef NY
#undef XS
#undef X0
#undef N

/* ---- the table ----------------------------------------------------------- */

#define DEV(op) .fwd = op##_fwd, .bwd = op##_bwd, .ref_fwd = op##_ref_fwd, .ref_bwd = op##_ref_bwd

/* Unsized, so that an op added at the end of the enum without its row
 * fails the assertion below; a row left out in the middle has no name, and
 * tests/test-ops checks that every row is complete. */
const cv_op_desc cv_op_descs[] = {
    /*                      name        in opt par opt flags                    family */
    [CV_OP_INPUT]    = { "input",     0, 0, 0, 0, 0,                          NULL,     .infer = same_shape },
    [CV_OP_CONV2D]   = { "conv2d",    1, 1, 2, 1, CV_OPF_SETS,                "conv",   .infer = conv_infer,
                         .scratch = conv_scratch, DEV(conv) },
    [CV_OP_GELU]     = { "gelu",      1, 0, 0, 0, 0,                          "elem",   .infer = same_shape, DEV(gelu) },
    [CV_OP_ADD]      = { "add",       2, 0, 0, 0, CV_OPF_SETS,                "elem",   .infer = operands_infer, DEV(add) },
    [CV_OP_SCALE]    = { "scale",     1, 0, 0, 0, 0,                          "elem",   .infer = same_shape, DEV(scale) },
    [CV_OP_AVGPOOL]  = { "avgpool",   1, 0, 0, 0, 0,                          "elem",   .infer = avgpool_infer, DEV(avgpool) },
    [CV_OP_UPSAMPLE] = { "upsample",  1, 1, 0, 0, 0,                          "elem",   .infer = upsample_infer, DEV(upsample) },
    [CV_OP_CONCAT]   = { "concat",    2, 0, 0, 0, 0,                          "elem",   .infer = concat_infer, DEV(concat) },
    [CV_OP_SLICE]    = { "slice",     1, 0, 0, 0, 0,                          "elem",   .infer = slice_infer, DEV(slice) },
    [CV_OP_AFFINE]   = { "affine",    1, 0, 2, 0, 0,                          "elem",   .infer = affine_infer,
                         .scratch = affine_scratch, DEV(affine) },
    [CV_OP_REPARAM]  = { "reparam",   2, 0, 0, 0, CV_OPF_NOISE | CV_OPF_AUX_Y, "vae",    .infer = reparam_infer, DEV(reparam) },
    [CV_OP_GAUSSKL]  = { "gausskl",   4, 0, 0, 0, CV_OPF_SETS,                "vae",    .infer = operands_infer, DEV(gausskl) },
    [CV_OP_GAUSSNLL] = { "gaussnll",  3, 0, 0, 0, 0,                          "vae",    .infer = gaussnll_infer, DEV(gaussnll) },
    [CV_OP_SUM]      = { "sum",       1, 0, 0, 0, CV_OPF_SETS,                "reduce", .infer = sum_infer,
                         .scratch = sum_scratch, DEV(sum) },
    [CV_OP_BCAST]    = { "bcast",     0, 0, 1, 0, 0,                          "bcast",  .infer = bcast_infer, DEV(bcast) },
    [CV_OP_WRAPPAD]  = { "wrappad",   1, 0, 0, 0, 0,                          "elem",   .infer = wrappad_infer, DEV(wrappad) },
    [CV_OP_CROP]     = { "crop",      1, 0, 0, 0, 0,                          "elem",   .infer = crop_infer, DEV(crop) },
};
_Static_assert(sizeof cv_op_descs / sizeof cv_op_descs[0] == CV_OP_COUNT, "one descriptor per op");

const cv_op_desc *cv_op_desc_of(cv_op op) { return op >= 0 && op < CV_OP_COUNT ? &cv_op_descs[op] : NULL; }

const char *cv_op_name(cv_op op) { return op >= 0 && op < CV_OP_COUNT ? cv_op_descs[op].name : "?"; }
