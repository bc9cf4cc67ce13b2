/* test-periodic.c -- the [model] options beyond the paper's: periodic
 * padding (padding = periodic: the maps are periodic boxes, so a 3x3
 * convolution may wrap around) and the decoder layout (latent_max_res).
 *   1. the graph wrappad -> zero-padded conv -> crop is the circular
 *      convolution, written out here independently, and commutes with
 *      cyclic shifts; the zero-padded conv alone is not (the check can
 *      fail);
 *   2. a tiny VDVAE with periodic padding: device loss and every parameter
 *      gradient agree with the reference path, every parameter receives
 *      gradient, a whole top-down block at 4x4 matches finite differences,
 *      and the loss differs from the zero-padded model's;
 *   3. a bad [model] padding value is refused, naming the key;
 *   4. latent_max_res: no latent groups above it, device gradients still
 *      the reference's, a limit below the lowest resolution refused;
 *   5. latent_skip_top = N (the layout as a count of stages, what the
 *      budget recipe sets) gives the same latent_max_res, and is refused
 *      where it leaves no latent group or beside latent_max_res. */
#include "tap.h"
#include "tiny-model.h"

#include <math.h>

enum { N = 2, CI = 3, CO = 4, H = 5, W = 6 };

static void circ_conv(const double *x, const double *w, const double *b, double *y) {
    double g[N * CI * H * W];
    cv_gelu_ref_fwd(x, g, N * CI * H * W);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < CO; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double s = b[o];
                    for (int ci = 0; ci < CI; ci++)
                        for (int a = 0; a < 3; a++)
                            for (int e = 0; e < 3; e++)
                                s += w[((o * CI + ci) * 3 + a) * 3 + e] *
                                     g[((n * CI + ci) * H + (i + a - 1 + H) % H) * W + (j + e - 1 + W) % W];
                    y[((n * CO + o) * H + i) * W + j] = s;
                }
}

/* the reference graph's output for x: with wrap, wrappad-conv-crop; else the conv alone */
static void graph_conv(int wrap, const double *x, double *w, double *b, double *y) {
    static const int64_t ps[2][4] = { { CO, CI, 3, 3 }, { 1, CO, 1, 1 } };
    cv_graph_params gp = { 2, ps };
    cv_graph *g = NULL;
    cv_refplan *r = NULL;
    const int64_t xs[4] = { N, CI, H, W };
    if (cv_graph_new(&gp, N, &g) != CV_OK) { CV_CHECK_DIAG("%s", cv_last_error()); return; }
    int v = cv_graph_input(g, "x", xs), in = v;
    cv_node n;
    if (wrap) {
        memset(&n, 0, sizeof n); n.op = CV_OP_WRAPPAD; snprintf(n.name, sizeof n.name, "wrap");
        n.in[0] = v; n.n_in = 1; n.p.k = 1;
        v = cv_graph_add(g, &n);
    }
    memset(&n, 0, sizeof n); n.op = CV_OP_CONV2D; snprintf(n.name, sizeof n.name, "conv");
    n.in[0] = v; n.n_in = 1; n.par[0] = 0; n.par[1] = 1; n.n_par = 2; n.p.conv.k = 3; n.p.conv.gelu_in = 1;
    v = cv_graph_add(g, &n);
    if (wrap) {
        memset(&n, 0, sizeof n); n.op = CV_OP_CROP; snprintf(n.name, sizeof n.name, "crop");
        n.in[0] = v; n.n_in = 1; n.p.k = 1;
        v = cv_graph_add(g, &n);
    }
    if (v < 0 || cv_refplan_new(g, &r) != CV_OK) { CV_CHECK_DIAG("%s", cv_last_error()); cv_graph_free(g); return; }
    memcpy(cv_refplan_value(r, in), x, sizeof(double) * N * CI * H * W);
    double *params[2] = { w, b };
    cv_refplan_forward(r, params, 1, 0);
    memcpy(y, cv_refplan_value(r, v), sizeof(double) * N * CO * H * W);
    cv_refplan_free(r);
    cv_graph_free(g);
}

static void shift(const double *x, double *y, int C, int di, int dj) {
    for (int n = 0; n < N; n++)
        for (int c0 = 0; c0 < C; c0++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    y[((n * C + c0) * H + (i + di) % H) * W + (j + dj) % W] = x[((n * C + c0) * H + i) * W + j];
}

static void check_circular(void) {
    double x[N * CI * H * W], xs[N * CI * H * W], w[CO * CI * 9], b[CO];
    double y[N * CO * H * W], yc[N * CO * H * W], ys[N * CO * H * W], yss[N * CO * H * W], yz[N * CO * H * W];
    cv_chk_rand_d(x, N * CI * H * W, 5, -2, 2);
    cv_chk_rand_d(w, CO * CI * 9, 6, -0.5, 0.5);
    cv_chk_rand_d(b, CO, 7, -0.5, 0.5);
    graph_conv(1, x, w, b, y);
    circ_conv(x, w, b, yc);
    double e = cv_chk_nmse_d(y, yc, N * CO * H * W);
    CV_CHECK_OK(e < 1e-28, "wrappad -> conv 3x3 -> crop is the circular convolution (%dx%dx%dx%d): nmse %.2e", N, CI, H, W, e);
    shift(x, xs, CI, 2, 5);
    graph_conv(1, xs, w, b, ys);
    shift(y, yss, CO, 2, 5);
    e = cv_chk_nmse_d(ys, yss, N * CO * H * W);
    CV_CHECK_OK(e < 1e-28, "the periodic conv commutes with a cyclic shift by (2, 5): nmse %.2e", e);
    graph_conv(0, x, w, b, yz);
    e = cv_chk_nmse_d(yz, yc, N * CO * H * W);
    CV_CHECK_OK(e > 1e-3, "the zero-padded conv is not circular (nmse %.2e against the circular one)", e);
}

static const char *latent_max;   /* [model] latent_max_res of the next tiny_model*, or NULL */

static cv_status tiny_model_at(const char *padding, const char *max_res, cv_model **m) {
    cv_cfg *cfg = NULL;
    cv_model_cfg mc;
    cv_status st = cv_cfg_new(&cfg);
    if (st == CV_OK) st = cv_cfg_parse(cfg, tiny_cfg, "tiny");
    if (st == CV_OK) st = cv_cfg_set(cfg, "model", "padding", padding, "test");
    if (st == CV_OK && max_res) st = cv_cfg_set(cfg, "model", "padding_max_res", max_res, "test");
    if (st == CV_OK && latent_max) st = cv_cfg_set(cfg, "model", "latent_max_res", latent_max, "test");
    if (st == CV_OK) st = cv_model_cfg_read(cfg, &mc);
    if (st == CV_OK) st = cv_model_new(&mc, m);
    cv_cfg_free(cfg);
    return st;
}

static cv_status tiny_model(const char *padding, cv_model **m) { return tiny_model_at(padding, NULL, m); }

/* The reference loss of the zero-padded tiny model at the same weights and batch. */
static double zero_padded_loss(const float *x, const double *pd) {
    cv_model *m = NULL;
    world z;
    memset(&z, 0, sizeof z);
    z.seed = 7; z.step = 3;
    double L = NAN;
    if (tiny_model("zero", &m) == CV_OK && cv_model_build(m, CV_MODEL_TRAIN, N, 1.0f, 0, &z.g, &z.io) == CV_OK &&
        cv_refplan_new(z.g, &z.ref) == CV_OK) {
        int np = cv_model_n_params(m);
        z.rp = malloc(np * sizeof *z.rp);
        for (int k = 0; z.rp && k < np; k++) z.rp[k] = (double *)pd + cv_model_param_offset(m, k);
        for (int64_t i = 0; i < N * 3 * 64; i++) cv_refplan_value(z.ref, z.io.x)[i] = x[i];
        if (z.rp) L = ref_loss(&z);
        free(z.rp);
    }
    cv_refplan_free(z.ref);
    cv_graph_free(z.g);
    cv_model_free(m);
    return L;
}

static void check_model(cv_ctx *ctx) {
    world w;
    memset(&w, 0, sizeof w);
    w.seed = 7; w.step = 3;
    cv_status st = tiny_model("periodic", &w.m);
    if (st == CV_OK) st = cv_model_to_device(w.m, ctx, 0);
    if (st == CV_OK) st = cv_model_build(w.m, CV_MODEL_TRAIN, N, 1.0f, 0, &w.g, &w.io);
    int wraps = 0;
    for (int i = 0; st == CV_OK && i < cv_graph_n_nodes(w.g); i++) wraps += cv_graph_node(w.g, i)->op == CV_OP_WRAPPAD;
    CV_CHECK_OK(st == CV_OK && wraps > 0, "tiny model with periodic padding: %d nodes, %d circular 3x3 convolutions%s%s",
                st == CV_OK ? cv_graph_n_nodes(w.g) : 0, wraps, st == CV_OK ? "" : ": ", st == CV_OK ? "" : cv_last_error());
    if (st != CV_OK) { cv_model_free(w.m); return; }
    int64_t nf = cv_model_n_floats(w.m);
    int np = cv_model_n_params(w.m);
    float *pf = malloc(nf * sizeof *pf), *gf = malloc(nf * sizeof *gf), x[N * 3 * 64];
    double *pd = malloc(nf * sizeof *pd), *gd = calloc(nf, sizeof *gd);
    w.rp = malloc(np * sizeof *w.rp); w.rdp = malloc(np * sizeof *w.rdp);
    cv_model_init_host(w.m, 11, pf);
    for (int64_t i = 0; i < nf; i++) if (pf[i] == 0.0f) pf[i] = 0.05f * (float)sin(1.3 * i);
    cv_chk_f2d(pf, pd, nf);
    for (int k = 0; k < np; k++) { w.rp[k] = pd + cv_model_param_offset(w.m, k); w.rdp[k] = gd + cv_model_param_offset(w.m, k); }
    cv_chk_rand(x, N * 3 * 64, 21, -1.5f, 1.5f);

    double Ldev = NAN, Lref = NAN;
    st = tiny_dev_and_ref(c, ctx, &w, pf, x, gf, &Ldev, &Lref);
    CV_CHECK_OK(st == CV_OK && fabs(Ldev - Lref) < 1e-5 * (1 + fabs(Lref)), "periodic: loss device %.8f, reference %.8f",
                Ldev, Lref);
    double e = st == CV_OK ? cv_chk_nmse(c, "dparams", gf, gd, nf, 5) : INFINITY;
    CV_CHECK_OK(e < 1e-8, "periodic: all %lld parameter gradients, device vs reference: nmse %.2e", (long long)nf, e);
    int zero_grads = 0;
    for (int k = 0; k < np; k++) {
        const int64_t *s = cv_model_param_shape(w.m, k);
        double a = 0;
        for (int64_t i = 0; i < s[0] * s[1] * s[2] * s[3]; i++) a += fabs(w.rdp[k][i]);
        if (a == 0) { zero_grads++; CV_CHECK_DIAG("parameter %s has an all-zero gradient", cv_model_param_name(w.m, k)); }
    }
    CV_CHECK_OK(zero_grads == 0, "periodic: every parameter tensor receives gradient");

    double maxerr = 0;
    int n_checked = 0;
    for (int k = 0; k < np && st == CV_OK; k++) {
        if (strncmp(cv_model_param_name(w.m, k), "dec.r4.b0.", 10)) continue;
        const int64_t *s = cv_model_param_shape(w.m, k);
        int64_t n = s[0] * s[1] * s[2] * s[3];
        double *dev = malloc(n * sizeof *dev);
        cv_chk_f2d(gf + cv_model_param_offset(w.m, k), dev, n);
        double r = cv_chk_fd_check(ref_loss, &w, w.rp[k], n, dev, 1e-4, 24, 300 + k);
        if (r > maxerr) maxerr = r;
        n_checked++;
        free(dev);
    }
    CV_CHECK_OK(n_checked > 0 && maxerr < 2e-3,
                "periodic: device gradients of the 4x4 top-down block (%d tensors) vs finite differences: rel err %.2e",
                n_checked, maxerr);
    double Lz = zero_padded_loss(x, pd);
    CV_CHECK_OK(isfinite(Lz) && fabs(Lz - Lref) > 1e-6 * (1 + fabs(Lref)),
                "the padding key takes effect: loss periodic %.8f, zero-padded %.8f", Lref, Lz);
    cv_refplan_free(w.ref);
    free(pf); free(gf); free(pd); free(gd); free(w.rp); free(w.rdp);
    cv_graph_free(w.g);
    cv_model_free(w.m);
}

static void check_bad_key(void) {
    cv_model *m = NULL;
    cv_status st = tiny_model("mirror", &m);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "[model] padding") && strstr(cv_last_error(), "mirror"),
                "[model] padding = mirror refused: %s", cv_last_error());
    cv_model_free(m); m = NULL;
    st = tiny_model_at("zero", "16", &m);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "padding_max_res = 16 needs padding = periodic"),
                "padding_max_res without periodic padding refused: %s", cv_last_error());
    cv_model_free(m);
}

/* padding_max_res: only the 3x3 convolutions at or below it wrap */
static void check_max_res(void) {
    int wraps[2] = { -1, -1 }, bad = 0;
    const char *res[2] = { "4", "8" };
    for (int t = 0; t < 2; t++) {
        cv_model *m = NULL;
        cv_graph *g = NULL;
        cv_model_io io;
        if (tiny_model_at("periodic", res[t], &m) == CV_OK && cv_model_build(m, CV_MODEL_TRAIN, 1, 1.0f, 0, &g, &io) == CV_OK) {
            wraps[t] = 0;
            for (int i = 0; i < cv_graph_n_nodes(g); i++) {
                const cv_node *n = cv_graph_node(g, i);
                if (n->op != CV_OP_WRAPPAD) continue;
                wraps[t]++;
                bad += cv_graph_value(g, n->in[0])->shape[2] > atoi(res[t]);
            }
        }
        cv_graph_free(g);
        cv_model_free(m);
    }
    CV_CHECK_OK(wraps[0] > 0 && wraps[1] > wraps[0] && wraps[1] == 17 && !bad,
                "padding_max_res: %d circular convolutions up to 4x4, %d up to 8x8 (all), none above the limit",
                wraps[0], wraps[1]);
}

static void check_layout(cv_ctx *ctx) {
    world w;
    memset(&w, 0, sizeof w);
    w.seed = 7; w.step = 3;
    latent_max = "4";
    cv_status st = tiny_model("zero", &w.m);
    if (st == CV_OK) st = cv_model_to_device(w.m, ctx, 0);
    if (st == CV_OK) st = cv_model_build(w.m, CV_MODEL_TRAIN, N, 1.0f, 0, &w.g, &w.io);
    int ok = st == CV_OK && w.io.n_groups == 2 && w.io.group_res[0] == 2 && w.io.group_res[1] == 4;
    CV_CHECK_OK(ok, "latent_max_res = 4: %d latent groups (2x2, 4x4), the 8x8 block deterministic%s%s",
                st == CV_OK ? w.io.n_groups : -1, st == CV_OK ? "" : ": ", st == CV_OK ? "" : cv_last_error());
    if (ok) {
        int64_t nf = cv_model_n_floats(w.m);
        int np = cv_model_n_params(w.m);
        float *pf = malloc(nf * sizeof *pf), *gf = malloc(nf * sizeof *gf), x[N * 3 * 64];
        double *pd = malloc(nf * sizeof *pd), *gd = calloc(nf, sizeof *gd), Ldev, Lref;
        w.rp = malloc(np * sizeof *w.rp); w.rdp = malloc(np * sizeof *w.rdp);
        cv_model_init_host(w.m, 12, pf);
        for (int64_t i = 0; i < nf; i++) if (pf[i] == 0.0f) pf[i] = 0.05f * (float)sin(0.7 * i);
        cv_chk_f2d(pf, pd, nf);
        for (int k = 0; k < np; k++) { w.rp[k] = pd + cv_model_param_offset(w.m, k); w.rdp[k] = gd + cv_model_param_offset(w.m, k); }
        cv_chk_rand(x, N * 3 * 64, 23, -1.5f, 1.5f);
        st = tiny_dev_and_ref(c, ctx, &w, pf, x, gf, &Ldev, &Lref);
        double e = st == CV_OK ? cv_chk_nmse(c, "dparams", gf, gd, nf, 5) : INFINITY;
        CV_CHECK_OK(e < 1e-8, "latent_max_res = 4: all %lld parameter gradients, device vs reference: nmse %.2e",
                    (long long)nf, e);
        cv_refplan_free(w.ref);
        free(pf); free(gf); free(pd); free(gd); free(w.rp); free(w.rdp);
    }
    cv_graph_free(w.g);
    cv_model_free(w.m);
    cv_model *m = NULL;
    latent_max = "1";
    st = tiny_model("zero", &m);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "latent_max_res 1 is below the lowest resolution 2"),
                "latent_max_res below the lowest resolution refused: %s", cv_last_error());
    cv_model_free(m);
    latent_max = NULL;
}

/* [model] latent_skip_top = N, the layout as a count of stages (what a
 * recipe sets): the same latent_max_res, and refused where it leaves no
 * latent group or where latent_max_res says it too. */
static cv_status layout_cfg(const char *skip_top, const char *max_res, cv_model_cfg *mc) {
    cv_cfg *cfg = NULL;
    cv_status st = cv_cfg_new(&cfg);
    if (st == CV_OK) st = cv_cfg_parse(cfg, tiny_cfg, "tiny");
    if (st == CV_OK && skip_top) st = cv_cfg_set(cfg, "model", "latent_skip_top", skip_top, "test");
    if (st == CV_OK && max_res) st = cv_cfg_set(cfg, "model", "latent_max_res", max_res, "test");
    if (st == CV_OK) st = cv_model_cfg_read(cfg, mc);
    cv_cfg_free(cfg);
    return st;
}

static void check_skip_top(void) {
    cv_model_cfg mc;
    cv_status st = layout_cfg("1", NULL, &mc);
    CV_CHECK_OK(st == CV_OK && mc.latent_max_res == 4, "latent_skip_top = 1 on stages 2,4,8: latent_max_res %d (4)",
                st == CV_OK ? mc.latent_max_res : -1);
    st = layout_cfg("2", NULL, &mc);
    CV_CHECK_OK(st == CV_OK && mc.latent_max_res == 2, "latent_skip_top = 2: latent_max_res %d (2)",
                st == CV_OK ? mc.latent_max_res : -1);
    st = layout_cfg("0", NULL, &mc);
    CV_CHECK_OK(st == CV_OK && mc.latent_max_res >= 8, "latent_skip_top = 0: every stage keeps its latents (%d)",
                st == CV_OK ? mc.latent_max_res : -1);
    st = layout_cfg("3", NULL, &mc);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "latent_skip_top = 3: the decoder has 3 stages"),
                "latent_skip_top as many as the stages refused: %s", cv_last_error());
    st = layout_cfg("1", "4", &mc);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "say the same thing two ways"),
                "latent_skip_top with latent_max_res refused: %s", cv_last_error());
}

int main(void) {
    tap_begin();
    cv_ctx *ctx = tap_ctx();
    check_circular();
    check_model(ctx);
    check_bad_key();
    check_max_res();
    check_layout(ctx);
    check_skip_top();
    cv_ctx_free(ctx);
    return tap_end();
}
