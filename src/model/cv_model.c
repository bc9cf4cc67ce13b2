/* cv_model.c -- VDVAE configuration, parameters and graph building (see
 * cv_model.h).
 *
 * Invariant: the parameter table is fixed when the model is created (a
 * declaring build of the training graph); every later build, in any mode
 * or batch size, finds its parameters by name in that table, so one set of
 * arenas serves training, encoding and sampling graphs alike. */
#include "model/cv_model.h"
#include "runtime/cv_rng.h"

#include <math.h>
#include <string.h>

#define CV_MAX_PARAMS 4096

enum { INIT_CONV, INIT_ZERO, INIT_ONE };

struct cv_model {
    cv_model_cfg cfg;
    int          n_par, declaring;
    char       (*name)[96];
    int64_t    (*shape)[4];
    int         *init;
    float       *scale;
    int64_t     *off;
    int64_t      n_floats;
    cv_ctx      *ctx;
    cv_arena     arena[CV_ARENA_COUNT];
    cv_tensor   *view[CV_ARENA_COUNT];
    float        temp_at[CV_MAX_STAGES];   /* per decoder stage; < 0: the build's temperature */
    int          top_input;                /* SAMPLE: the top group's z is an input (io->z_top) */
};

/* ------------------------------------------------------------- presets */

static const char preset_small[] =
    "[model]\n"
    "size = 64\nchannels = 3\nwidth = 32\nbottleneck = 8\nzdim = 16\n"
    "enc_res = 64,32,16,8\nenc_blocks = 3,3,2,2\n"
    "dec_res = 4,8,16,32,64\ndec_blocks = 1,2,2,3,3\n"
    "bias_max_res = 64\nlogsigma_floor = -5\n";

static const char preset_paper[] =
    "[model]\n"
    "size = 256\nchannels = 3\nwidth = 128\nbottleneck = 32\nzdim = 16\n"
    "enc_res = 256,128,64,32,16,8\nenc_blocks = 3,3,2,2,2,2\n"
    "dec_res = 4,8,16,32,64,128,256\ndec_blocks = 1,2,2,2,2,3,3\n"
    "bias_max_res = 64\nlogsigma_floor = -5\n";

const char *cv_model_preset(const char *name) {
    if (!strcmp(name, "small")) return preset_small;
    if (!strcmp(name, "paper")) return preset_paper;
    return NULL;
}

cv_status cv_model_cfg_read(cv_cfg *c, cv_model_cfg *o) {
    cv_status st = CV_OK;
    long v, a[CV_MAX_STAGES], b[CV_MAX_STAGES];
    int na, nb;
    double d;
    memset(o, 0, sizeof *o);
    CV_TRY(cv_cfg_int(c, "model", "size", 64, 4, 4096, &v));        o->size = (int)v;
    CV_TRY(cv_cfg_int(c, "model", "channels", 3, 1, 16, &v));       o->channels = (int)v;
    CV_TRY(cv_cfg_int(c, "model", "width", 32, 2, 1024, &v));       o->width = (int)v;
    CV_TRY(cv_cfg_int(c, "model", "bottleneck", o->width / 4, 1, 1024, &v)); o->bottleneck = (int)v;
    CV_TRY(cv_cfg_int(c, "model", "zdim", 16, 1, 256, &v));         o->zdim = (int)v;
    CV_TRY(cv_cfg_int(c, "model", "bias_max_res", 64, 0, 4096, &v)); o->bias_max_res = (int)v;
    CV_TRY(cv_cfg_double(c, "model", "logsigma_floor", -5, -20, 5, &d)); o->logsig_floor = (float)d;
    const char *pad;
    CV_TRY(cv_cfg_str(c, "model", "padding", "zero", &pad));
    if (!strcmp(pad, "periodic")) o->periodic = 1;
    else if (strcmp(pad, "zero")) return cv_error(CV_ERR_FORMAT, "[model] padding = '%s': expected zero or periodic", pad);
    const char *pv, *po;
    if (!o->periodic && cv_cfg_peek(c, "model", "padding_max_res", &pv, &po))
        return cv_error(CV_ERR_FORMAT, "%s: [model] padding_max_res = %s needs padding = periodic", po, pv);
    CV_TRY(cv_cfg_int(c, "model", "padding_max_res", 4096, 1, 4096, &v)); o->periodic_max_res = (int)v;
    CV_TRY(cv_cfg_int(c, "model", "latent_max_res", 4096, 1, 4096, &v)); o->latent_max_res = (int)v;
    CV_TRY(cv_cfg_ints(c, "model", "enc_res", "64,32,16,8", a, CV_MAX_STAGES, &na));
    CV_TRY(cv_cfg_ints(c, "model", "enc_blocks", "3,3,2,2", b, CV_MAX_STAGES, &nb));
    if (na != nb || na == 0) return cv_error(CV_ERR_FORMAT, "[model] enc_res and enc_blocks must list the same number (>= 1) of stages");
    o->n_enc = na;
    for (int i = 0; i < na; i++) { o->enc_res[i] = (int)a[i]; o->enc_blocks[i] = (int)b[i]; }
    CV_TRY(cv_cfg_ints(c, "model", "dec_res", "4,8,16,32,64", a, CV_MAX_STAGES, &na));
    CV_TRY(cv_cfg_ints(c, "model", "dec_blocks", "1,2,2,3,3", b, CV_MAX_STAGES, &nb));
    if (na != nb || na == 0) return cv_error(CV_ERR_FORMAT, "[model] dec_res and dec_blocks must list the same number (>= 1) of stages");
    o->n_dec = na;
    for (int i = 0; i < na; i++) { o->dec_res[i] = (int)a[i]; o->dec_blocks[i] = (int)b[i]; }
    /* validation */
    if (o->enc_res[0] != o->size) return cv_error(CV_ERR_FORMAT, "[model] enc_res must start at size (%d), not %d", o->size, o->enc_res[0]);
    for (int i = 0; i < o->n_enc; i++) {
        if (o->enc_blocks[i] < 0 || o->enc_blocks[i] > 64) return cv_error(CV_ERR_FORMAT, "[model] enc_blocks[%d] = %d", i, o->enc_blocks[i]);
        if (i && o->enc_res[i] * 2 != o->enc_res[i - 1]) return cv_error(CV_ERR_FORMAT, "[model] enc_res must halve at each stage (%d after %d)", o->enc_res[i], o->enc_res[i - 1]);
        if (o->enc_res[i] % 2) return cv_error(CV_ERR_FORMAT, "[model] enc_res %d is odd: cannot pool", o->enc_res[i]);
    }
    int lowest = o->enc_res[o->n_enc - 1] / 2;
    if (o->dec_res[0] != lowest) return cv_error(CV_ERR_FORMAT, "[model] dec_res must start at the encoder's lowest resolution %d, not %d", lowest, o->dec_res[0]);
    int groups = 0;
    for (int i = 0; i < o->n_dec; i++) {
        if (o->dec_blocks[i] < 1 || o->dec_blocks[i] > 16) return cv_error(CV_ERR_FORMAT, "[model] dec_blocks[%d] = %d (1..16)", i, o->dec_blocks[i]);
        if (i && o->dec_res[i] != 2 * o->dec_res[i - 1]) return cv_error(CV_ERR_FORMAT, "[model] dec_res must double at each stage (%d after %d)", o->dec_res[i], o->dec_res[i - 1]);
        groups += o->dec_blocks[i];
    }
    if (o->dec_res[o->n_dec - 1] != o->size) return cv_error(CV_ERR_FORMAT, "[model] dec_res must end at size %d", o->size);
    if (groups > CV_MAX_GROUPS) return cv_error(CV_ERR_FORMAT, "[model] %d top-down blocks: at most %d", groups, CV_MAX_GROUPS);
    /* latent_skip_top = N: the N highest-resolution stages without latents,
     * the same layout whatever the map size (a recipe may set it) */
    if (cv_cfg_peek(c, "model", "latent_skip_top", &pv, &po)) {
        const char *lv, *lo;
        CV_TRY(cv_cfg_int(c, "model", "latent_skip_top", 0, 0, CV_MAX_STAGES, &v));
        if (cv_cfg_peek(c, "model", "latent_max_res", &lv, &lo))
            return cv_error(CV_ERR_FORMAT, "%s: [model] latent_skip_top = %s and %s: latent_max_res = %s say the same "
                            "thing two ways: set one", po, pv, lo, lv);
        if (v >= o->n_dec)
            return cv_error(CV_ERR_FORMAT, "%s: [model] latent_skip_top = %ld: the decoder has %d stages, so no latent "
                            "group would be left", po, v, o->n_dec);
        o->latent_max_res = o->dec_res[o->n_dec - 1 - v];
    }
    if (o->latent_max_res < o->dec_res[0])
        return cv_error(CV_ERR_FORMAT, "[model] latent_max_res %d is below the lowest resolution %d: no latent group would be left",
                        o->latent_max_res, o->dec_res[0]);
    if (o->dec_res[0] > o->bias_max_res) return cv_error(CV_ERR_FORMAT, "[model] bias_max_res %d below the lowest resolution %d", o->bias_max_res, o->dec_res[0]);
    return CV_OK;
fail:
    return st;
}

/* ------------------------------------------------------------- building */

typedef struct bld {
    cv_model     *m;
    cv_graph     *g;
    cv_model_mode mode;
    float         temp;
    int           all_groups;
    int64_t       N;
    cv_status     st;
} bld;

static int param(bld *b, const char *name, int64_t o, int64_t i, int64_t kh, int64_t kw, int init, float scale) {
    cv_model *m = b->m;
    for (int k = 0; k < m->n_par; k++) if (!strcmp(m->name[k], name)) return k;
    if (!m->declaring) { b->st = cv_error(CV_ERR_ARG, "model has no parameter '%s'", name); return -1; }
    if (m->n_par == CV_MAX_PARAMS) { b->st = cv_error(CV_ERR_ARG, "too many parameters"); return -1; }
    int k = m->n_par++;
    snprintf(m->name[k], sizeof m->name[k], "%s", name);
    m->shape[k][0] = o; m->shape[k][1] = i; m->shape[k][2] = kh; m->shape[k][3] = kw;
    m->init[k] = init;
    m->scale[k] = scale;
    m->off[k] = m->n_floats;
    m->n_floats += o * i * kh * kw;
    return k;
}

static int add(bld *b, cv_node *n) {
    if (b->st != CV_OK) return -1;
    for (int i = 0; i < n->n_in; i++) if (n->in[i] < 0) return -1;
    int v = cv_graph_add(b->g, n);
    if (v < 0) { b->st = (cv_status)v; return -1; }
    return v;
}

static cv_node node(cv_op op, const char *name) {
    cv_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    snprintf(n.name, sizeof n.name, "%s", name);
    return n;
}

static int op2(bld *b, cv_op op, const char *name, int x, int y);

static int conv_ex(bld *b, const char *name, int x, int cin, int cout, int k, int gelu_in, int resid, int init,
                   float scale, int bias) {
    char pn[110];
    cv_node n = node(CV_OP_CONV2D, name);
    snprintf(pn, sizeof pn, "%s.w", name);
    n.par[0] = param(b, pn, cout, cin, k, k, init, scale);
    n.n_par = 1;
    if (bias) {
        snprintf(pn, sizeof pn, "%s.b", name);
        n.par[1] = param(b, pn, 1, cout, 1, 1, INIT_ZERO, 0);
        n.n_par = 2;
    }
    if (n.par[0] < 0 || (bias && n.par[1] < 0)) return -1;
    n.p.conv.k = k;
    n.p.conv.gelu_in = gelu_in;
    if (k == 3 && b->m->cfg.periodic && x >= 0 && cv_graph_value(b->g, x)->shape[2] <= b->m->cfg.periodic_max_res) {
        /* circular: the zero-padded convolution of the periodically padded
         * map, cropped (GELU commutes with the copy; the crop drops every
         * output that saw a zero) */
        cv_node wn = node(CV_OP_WRAPPAD, name), cn = node(CV_OP_CROP, name);
        snprintf(wn.name, sizeof wn.name, "%s.wrap", name);
        wn.in[0] = x; wn.n_in = 1; wn.p.k = 1;
        n.in[0] = add(b, &wn); n.n_in = 1;
        snprintf(cn.name, sizeof cn.name, "%s.crop", name);
        cn.in[0] = add(b, &n); cn.n_in = 1; cn.p.k = 1;
        int y = add(b, &cn);
        char rn[96];
        snprintf(rn, sizeof rn, "%.80s.res", name);
        return resid >= 0 ? op2(b, CV_OP_ADD, rn, y, resid) : y;
    }
    n.in[0] = x; n.n_in = 1;
    if (resid >= 0) { n.in[1] = resid; n.n_in = 2; }
    return add(b, &n);
}

static int conv(bld *b, const char *name, int x, int cin, int cout, int k, int gelu_in, int resid, int init, float scale) {
    return conv_ex(b, name, x, cin, cout, k, gelu_in, resid, init, scale, 1);
}

static int op2(bld *b, cv_op op, const char *name, int x, int y) {
    cv_node n = node(op, name);
    n.in[0] = x; n.in[1] = y; n.n_in = 2;
    return add(b, &n);
}

static int slice(bld *b, const char *name, int x, int64_t c0, int64_t cn) {
    cv_node n = node(CV_OP_SLICE, name);
    n.in[0] = x; n.n_in = 1;
    n.p.slice.c0 = c0; n.p.slice.n = cn;
    return add(b, &n);
}

static int sum(bld *b, const char *name, int x, float s) {
    cv_node n = node(CV_OP_SUM, name);
    n.in[0] = x; n.n_in = 1;
    n.p.s = s;
    return add(b, &n);
}

/* GELU-1x1-GELU-kxk-GELU-kxk-GELU-1x1 on the channel concatenation of
 * x[0..nx), its last 1x1 split into outputs out[j] of couts[j] channels
 * (out j adds resid[j] when >= 0): the function and initialisation of one
 * block on the concatenation followed by slices, without storing the
 * concatenation or copying the slices.  The first 1x1 is one conv per
 * input, summed through the residual input, the bias on the first (".c1",
 * ".c1e"); the outputs are ".c4.<outname[j]>", or ".c4" for a NULL name.
 * The last convs' init is scaled by last_scale (0: zero-initialised). */
static void block_split(bld *b, const char *name, const int *x, const int *cin, int nx, int mid, int res,
                        const char *const *outname, const int *couts, const int *resid, int nout, float last_scale,
                        int *out) {
    char nm[112];
    int k = res > 2 ? 3 : 1, ctot = 0, h = -1;
    for (int i = 0; i < nx; i++) ctot += cin[i];
    for (int i = 0; i < nx; i++) {          /* init bound 1/sqrt(ctot), as for the concatenation */
        snprintf(nm, sizeof nm, i ? "%s.c1e" : "%s.c1", name);
        h = conv_ex(b, nm, x[i], cin[i], mid, 1, 1, h, INIT_CONV, (float)sqrt((double)cin[i] / ctot), i == 0);
    }
    snprintf(nm, sizeof nm, "%s.c2", name);
    h = conv(b, nm, h, mid, mid, k, 1, -1, INIT_CONV, 1);
    snprintf(nm, sizeof nm, "%s.c3", name);
    h = conv(b, nm, h, mid, mid, k, 1, -1, INIT_CONV, 1);
    for (int j = 0; j < nout; j++) {
        if (outname[j]) snprintf(nm, sizeof nm, "%s.c4.%s", name, outname[j]);
        else snprintf(nm, sizeof nm, "%s.c4", name);
        out[j] = conv(b, nm, h, mid, couts[j], 1, 1, resid[j], last_scale == 0 ? INIT_ZERO : INIT_CONV, last_scale);
    }
}

/* One block on x; residual: adds x. */
static int block(bld *b, const char *name, int x, int cin, int mid, int cout, int res, int residual, float last_scale) {
    static const char *const whole[1] = { NULL };
    int r = residual ? x : -1, out = -1;
    block_split(b, name, &x, &cin, 1, mid, res, whole, &cout, &r, 1, last_scale, &out);
    return out;
}

cv_status cv_model_build(cv_model *m, cv_model_mode mode, int64_t N, float temperature, int all_groups,
                         cv_graph **out, cv_model_io *io) {
    const cv_model_cfg *c = &m->cfg;
    bld b = { m, NULL, mode, temperature, all_groups, N, CV_OK };
    cv_graph_params gp = { m->declaring ? CV_MAX_PARAMS : m->n_par, (const int64_t (*)[4])m->shape };
    cv_status st = cv_graph_new(&gp, N, &b.g);
    if (st != CV_OK) return st;
    memset(io, 0, sizeof *io);
    io->x = io->loss = io->recon = io->mu = io->logs = io->z_top = io->lsq_top = -1;
    const int W = c->width, B = c->bottleneck, Z = c->zdim, C = c->channels, S = c->size;
    int n_enc_blocks = 0, n_dec_blocks = 0;
    for (int i = 0; i < c->n_enc; i++) n_enc_blocks += c->enc_blocks[i];
    for (int i = 0; i < c->n_dec; i++) n_dec_blocks += c->dec_blocks[i];
    float enc_scale = (float)sqrt(1.0 / (n_enc_blocks > 0 ? n_enc_blocks : 1));
    float dec_scale = (float)sqrt(1.0 / n_dec_blocks);
    char nm[96];
    int acts[32];                 /* encoder activation per log2(res) */
    for (int i = 0; i < 32; i++) acts[i] = -1;
    int need_enc = mode != CV_MODEL_SAMPLE;

    if (need_enc) {
        int64_t xs[4] = { N, C, S, S };
        io->x = cv_graph_input(b.g, "x", xs);
        if (io->x < 0) { st = (cv_status)io->x; goto fail; }
        int h = conv(&b, "enc.in", io->x, C, W, 3, 0, -1, INIT_CONV, 1);
        for (int s = 0; s < c->n_enc; s++) {
            int r = c->enc_res[s];
            for (int k = 0; k < c->enc_blocks[s]; k++) {
                snprintf(nm, sizeof nm, "enc.r%d.b%d", r, k);
                h = block(&b, nm, h, W, B, W, r, 1, enc_scale);
            }
            acts[(int)log2(r)] = h;
            snprintf(nm, sizeof nm, "enc.r%d.pool", r);
            cv_node n = node(CV_OP_AVGPOOL, nm);
            n.in[0] = h; n.n_in = 1; n.p.k = 2;
            h = add(&b, &n);
        }
        acts[(int)log2(c->enc_res[c->n_enc - 1] / 2)] = h;
    }

    int state = -1, group = 0, loss = -1, stop = 0;
    for (int s = 0; s < c->n_dec && !stop && b.st == CV_OK; s++) {
        int r = c->dec_res[s];
        int bias = -1;
        if (r <= c->bias_max_res) {
            snprintf(nm, sizeof nm, "dec.r%d.start", r);
            cv_node n = node(CV_OP_BCAST, nm);
            n.par[0] = param(&b, nm, 1, W, r, r, INIT_ZERO, 0);
            n.n_par = 1;
            if (n.par[0] < 0) goto fail_b;
            bias = add(&b, &n);
        }
        if (s == 0) {
            state = bias;
        } else {
            snprintf(nm, sizeof nm, "dec.r%d.up", r);
            cv_node n = node(CV_OP_UPSAMPLE, nm);
            n.in[0] = state; n.n_in = 1; n.p.k = 2;
            if (bias >= 0) { n.in[1] = bias; n.n_in = 2; }
            state = add(&b, &n);
        }
        int enc = need_enc ? acts[(int)log2(r)] : -1;
        if (r > c->latent_max_res) {      /* deterministic blocks: the residual block alone */
            for (int k = 0; k < c->dec_blocks[s] && b.st == CV_OK; k++) {
                snprintf(nm, sizeof nm, "dec.r%d.b%d.res", r, k);
                state = block(&b, nm, state, W, B, W, r, 1, dec_scale);
            }
            continue;
        }
        for (int k = 0; k < c->dec_blocks[s] && b.st == CV_OK; k++, group++) {
            char pre[64];
            snprintf(pre, sizeof pre, "dec.r%d.b%d", r, k);
            io->group_res[group] = r;
            int mq = -1, lsq = -1;
            if (need_enc) {               /* posterior of concat(state, enc) -> (mu_q, log sigma_q) */
                static const char *const qn[2] = { "mq", "lsq" };
                const int qx[2] = { state, enc }, qc[2] = { W, W }, qo[2] = { Z, Z }, qr[2] = { -1, -1 };
                int q[2];
                snprintf(nm, sizeof nm, "%s.post", pre);
                block_split(&b, nm, qx, qc, 2, B, r, qn, qo, qr, 2, 1, q);
                mq = q[0]; lsq = q[1];
                io->mq[group] = mq;
                if (mq >= 0) cv_graph_mark_output(b.g, mq);
                if (mode == CV_MODEL_ENCODE && group == 0) {
                    io->lsq_top = lsq;
                    if (lsq >= 0) cv_graph_mark_output(b.g, lsq);
                }
                if (mode == CV_MODEL_ENCODE && !all_groups) {
                    io->n_groups = 1;
                    stop = 1;
                    break;
                }
            }
            /* prior of state -> (mu_p, log sigma_p, dx), state += dx */
            static const char *const pn[3] = { "mp", "lsp", "xpp" };
            const int po[3] = { Z, Z, W }, prs[3] = { -1, -1, state };
            int pr[3];
            snprintf(nm, sizeof nm, "%s.prior", pre);
            block_split(&b, nm, &state, &W, 1, B, r, pn, po, prs, 3, 0, pr);
            int mp = pr[0], lsp = pr[1];
            state = pr[2];
            snprintf(nm, sizeof nm, "%s.z", pre);
            cv_node n = node(CV_OP_REPARAM, nm);
            n.n_in = 2;
            n.p.rep.group = (uint32_t)group;
            if (mode == CV_MODEL_SAMPLE && group == 0 && m->top_input) {   /* z = the given value (t = 0) */
                snprintf(nm, sizeof nm, "%s.zgiven", pre);
                int64_t zs[4] = { N, Z, r, r };
                io->z_top = cv_graph_input(b.g, nm, zs);
                if (io->z_top < 0) { b.st = (cv_status)io->z_top; goto fail_b; }
                n.in[0] = io->z_top; n.in[1] = lsp;
                n.p.rep.t = 0.0f;
            } else if (mode == CV_MODEL_SAMPLE) {
                n.in[0] = mp; n.in[1] = lsp;
                n.p.rep.t = m->temp_at[s] >= 0 ? m->temp_at[s] : temperature;
            }
            else { n.in[0] = mq; n.in[1] = lsq; n.p.rep.t = mode == CV_MODEL_TRAIN ? 1.0f : 0.0f; }
            int z = add(&b, &n);
            /* KL: a loss term in training; a statistic of the all-groups
             * encoder (along the posterior-mean path), for the diagnosis */
            if (mode == CV_MODEL_TRAIN || (mode == CV_MODEL_ENCODE && all_groups)) {
                snprintf(nm, sizeof nm, "%s.kl", pre);
                cv_node kn = node(CV_OP_GAUSSKL, nm);
                kn.in[0] = mq; kn.in[1] = lsq; kn.in[2] = mp; kn.in[3] = lsp; kn.n_in = 4;
                int kl = add(&b, &kn);
                snprintf(nm, sizeof nm, "%s.klsum", pre);
                io->kl[group] = sum(&b, nm, kl, 1.0f / (float)(C * S * S));
                if (io->kl[group] >= 0) cv_graph_mark_stat(b.g, io->kl[group]);
            }
            snprintf(nm, sizeof nm, "%s.zproj", pre);
            state = conv(&b, nm, z, Z, W, 1, 0, state, INIT_CONV, dec_scale);
            snprintf(nm, sizeof nm, "%s.res", pre);
            state = block(&b, nm, state, W, B, W, r, 1, dec_scale);
        }
        if (!stop) io->n_groups = group;
    }

    if (!stop && b.st == CV_OK) {
        cv_node n = node(CV_OP_AFFINE, "out.affine");
        n.in[0] = state; n.n_in = 1;
        n.par[0] = param(&b, "out.gain", 1, W, 1, 1, INIT_ONE, 0);
        n.par[1] = param(&b, "out.bias", 1, W, 1, 1, INIT_ZERO, 0);
        n.n_par = 2;
        int a = n.par[0] >= 0 && n.par[1] >= 0 ? add(&b, &n) : -1;
        int o = conv(&b, "out.conv", a, W, 2 * C, 1, 0, -1, INIT_CONV, 1);
        io->mu = slice(&b, "out.mu", o, 0, C);
        io->logs = slice(&b, "out.logsigma", o, C, C);
        if (io->mu >= 0) cv_graph_mark_output(b.g, io->mu);
        if (io->logs >= 0) cv_graph_mark_output(b.g, io->logs);
        if (mode == CV_MODEL_TRAIN) {
            cv_node nl = node(CV_OP_GAUSSNLL, "out.nll");
            nl.in[0] = io->x; nl.in[1] = io->mu; nl.in[2] = io->logs; nl.n_in = 3;
            nl.p.floor = c->logsig_floor;
            int nll = add(&b, &nl);
            io->recon = sum(&b, "out.recon", nll, 1.0f / (float)(C * S * S));
            if (io->recon >= 0) cv_graph_mark_stat(b.g, io->recon);
            loss = io->recon;
            for (int gi = 0; gi < io->n_groups; gi++) {
                snprintf(nm, sizeof nm, "loss.%d", gi);
                loss = op2(&b, CV_OP_ADD, nm, loss, io->kl[gi]);
            }
            io->loss = loss;
            if (loss >= 0) cv_graph_mark_stat(b.g, loss);
        }
    }
fail_b:
    if (b.st != CV_OK) { st = b.st; goto fail; }
    *out = b.g;
    return CV_OK;
fail:
    cv_graph_free(b.g);
    *out = NULL;
    return st;
}

/* ---------------------------------------------------------------- model */

cv_status cv_model_set_temperature_at(cv_model *m, int res, float t) {
    if (!(t >= 0) || !isfinite(t)) return cv_error(CV_ERR_ARG, "temperature %g at %dx%d: must be finite and >= 0", t, res, res);
    char list[128] = "";
    for (int s = 0; s < m->cfg.n_dec; s++) {
        if (m->cfg.dec_res[s] == res) { m->temp_at[s] = t; return CV_OK; }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%d", s ? ", " : "", m->cfg.dec_res[s]);
    }
    return cv_error(CV_ERR_ARG, "no latent groups at resolution %d: the decoder's are %s", res, list);
}

float cv_model_temperature_at(const cv_model *m, int res) {
    for (int s = 0; s < m->cfg.n_dec; s++)
        if (m->cfg.dec_res[s] == res) return m->temp_at[s];
    return -1;
}

void cv_model_unset_temperature_at(cv_model *m, int res) {
    for (int s = 0; s < m->cfg.n_dec; s++)
        if (m->cfg.dec_res[s] == res) m->temp_at[s] = -1;
}

void cv_model_set_top_input(cv_model *m, int on) { m->top_input = on != 0; }

cv_status cv_model_new(const cv_model_cfg *cfg, cv_model **out) {
    cv_status st = CV_OK;
    cv_model *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m) return cv_error(CV_ERR_NOMEM, "out of memory");
    m->cfg = *cfg;
    for (int s = 0; s < CV_MAX_STAGES; s++) m->temp_at[s] = -1;
    m->name = calloc(CV_MAX_PARAMS, sizeof *m->name);
    m->shape = calloc(CV_MAX_PARAMS, sizeof *m->shape);
    m->init = calloc(CV_MAX_PARAMS, sizeof *m->init);
    m->scale = calloc(CV_MAX_PARAMS, sizeof *m->scale);
    m->off = calloc(CV_MAX_PARAMS, sizeof *m->off);
    if (!m->name || !m->shape || !m->init || !m->scale || !m->off) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    m->declaring = 1;
    cv_graph *g = NULL;
    cv_model_io io;
    st = cv_model_build(m, CV_MODEL_TRAIN, 1, 1.0f, 0, &g, &io);
    m->declaring = 0;
    cv_graph_free(g);
    if (st != CV_OK) goto fail;
    *out = m;
    return CV_OK;
fail:
    cv_model_free(m);
    return st;
}

void cv_model_free(cv_model *m) {
    if (!m) return;
    for (int a = 0; a < CV_ARENA_COUNT; a++) { cv_arena_release(&m->arena[a]); free(m->view[a]); }
    free(m->name); free(m->shape); free(m->init); free(m->scale); free(m->off);
    free(m);
}

const cv_model_cfg *cv_model_config(const cv_model *m)       { return &m->cfg; }
int            cv_model_n_params(const cv_model *m)          { return m->n_par; }
const char    *cv_model_param_name(const cv_model *m, int i) { return m->name[i]; }
const int64_t *cv_model_param_shape(const cv_model *m, int i) { return m->shape[i]; }
int64_t        cv_model_n_floats(const cv_model *m)          { return m->n_floats; }
int64_t        cv_model_param_offset(const cv_model *m, int i) { return m->off[i]; }

void cv_model_init_host(const cv_model *m, uint64_t seed, float *flat) {
    for (int k = 0; k < m->n_par; k++) {
        const int64_t *s = m->shape[k];
        int64_t n = s[0] * s[1] * s[2] * s[3], fan_in = s[1] * s[2] * s[3];
        float *p = flat + m->off[k];
        double bound = m->scale[k] / sqrt((double)fan_in);   /* PyTorch's default conv init, scaled */
        for (int64_t i = 0; i < n; i++) {
            switch (m->init[k]) {
            case INIT_ZERO: p[i] = 0.0f; break;
            case INIT_ONE:  p[i] = 1.0f; break;
            default:
                p[i] = (float)(bound * (2.0 * cv_rng_uniform(seed, 0x100000000ULL + (uint64_t)k, (uint64_t)i) - 1.0));
            }
        }
    }
}

cv_status cv_model_to_device(cv_model *m, cv_ctx *ctx, int with_ema) {
    static const char *what[CV_ARENA_COUNT] = { "parameters", "parameter gradients", "optimizer state",
                                                "optimizer momentum", "weight EMA" };
    cv_status st = CV_OK;
    cv_arena_slot *slots = malloc((size_t)m->n_par * sizeof *slots);
    if (!slots) return cv_error(CV_ERR_NOMEM, "out of memory");
    m->ctx = ctx;
    for (int a = 0; a < CV_ARENA_COUNT; a++) {
        if (a == CV_ARENA_EMA && !with_ema) continue;
        cv_arena_init(&m->arena[a], ctx, what[a]);
        for (int k = 0; k < m->n_par; k++) {
            const int64_t *s = m->shape[k];
            CV_TRY(cv_arena_reserve(&m->arena[a], (size_t)(s[0] * s[1] * s[2] * s[3]), &slots[k]));
        }
        CV_TRY(cv_arena_commit(&m->arena[a], ctx));
        m->view[a] = calloc((size_t)m->n_par, sizeof *m->view[a]);
        if (!m->view[a]) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
        for (int k = 0; k < m->n_par; k++) m->view[a][k] = cv_arena_view(&m->arena[a], slots[k], m->shape[k]);
    }
fail:
    free(slots);
    return st;
}

const cv_tensor *cv_model_tensors(const cv_model *m, int a) { return m->view[a]; }
cv_arena        *cv_model_arena(cv_model *m, int a)         { return &m->arena[a]; }

cv_status cv_model_upload(cv_model *m, int a, const float *flat) {
    if (!m->view[a]) return cv_error(CV_ERR_ARG, "arena %d not on the device", a);
    for (int k = 0; k < m->n_par; k++) {
        const cv_tensor *t = &m->view[a][k];
        cv_status st = CV_CL(clEnqueueWriteBuffer(cv_ctx_queue(m->ctx), t->buf, CL_FALSE, t->off * sizeof(float),
                                                  cv_tensor_nbytes(t), flat + m->off[k], 0, NULL, NULL));
        if (st != CV_OK) return st;
    }
    return cv_ctx_finish(m->ctx);
}

cv_status cv_model_download(cv_model *m, int a, float *flat) {
    if (!m->view[a]) return cv_error(CV_ERR_ARG, "arena %d not on the device", a);
    for (int k = 0; k < m->n_par; k++) {
        const cv_tensor *t = &m->view[a][k];
        cv_status st = CV_CL(clEnqueueReadBuffer(cv_ctx_queue(m->ctx), t->buf, CL_FALSE, t->off * sizeof(float),
                                                 cv_tensor_nbytes(t), flat + m->off[k], 0, NULL, NULL));
        if (st != CV_OK) return st;
    }
    return cv_ctx_finish(m->ctx);
}
