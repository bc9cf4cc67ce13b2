/* cv_tune_measure.c -- `cosmovae-info --tune`: time the candidate kernel
 * parameters on the device at VDVAE shapes and pick the fastest (see
 * cv_tune_measure.h).  It builds a trainer to score whole steps, so it
 * sits with the programs, above the model, and not in the runtime that
 * holds the table and the wisdom files.
 * Invariant: allocates and builds on the device, leaves nothing behind. */
#include "prog/cv_tune_measure.h"
#include "runtime/cv_device.h"
#include "ops/cv_ops.h"
#include "model/cv_train.h"

#include <math.h>
#include <string.h>
#include <time.h>


static double tune_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A VDVAE convolution to time: batch, channels, kernel, square map size. */
typedef struct tune_shape { int64_t N, Ci, Co; int k, S; } tune_shape;

static const tune_shape shapes_small[] = {              /* the small preset: W = 32, bottleneck 8, batch 4 */
    { 4, 32, 8, 1, 64 }, { 4, 8, 8, 3, 64 }, { 4, 8, 32, 1, 64 },
    { 4, 32, 8, 1, 32 }, { 4, 8, 8, 3, 32 }, { 4, 8, 32, 1, 32 },
    { 4, 32, 8, 1, 16 }, { 4, 8, 8, 3, 16 }, { 4, 8, 32, 1, 16 },
    { 4, 32, 8, 1, 8 },  { 4, 8, 8, 3, 8 },  { 4, 8, 32, 1, 8 },
};
static const tune_shape shapes_paper[] = {              /* the paper preset: W = 128, bottleneck 32 (one map) */
    { 1, 128, 32, 1, 128 }, { 1, 32, 32, 3, 128 }, { 1, 32, 128, 1, 128 },
    { 1, 128, 32, 1, 64 },  { 1, 32, 32, 3, 64 },  { 1, 32, 128, 1, 64 },
};

/* Device buffers for the largest shape. */
typedef struct tune_bufs { cl_mem x, dx, y, dy, w, dw, b, db; } tune_bufs;

static void bufs_free(tune_bufs *b) {
    cl_mem *m[] = { &b->x, &b->dx, &b->y, &b->dy, &b->w, &b->dw, &b->b, &b->db };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) if (*m[i]) { clReleaseMemObject(*m[i]); *m[i] = NULL; }
}

static cv_status bufs_new(cv_ctx *ctx, size_t act, size_t wts, tune_bufs *b) {
    cv_status st = CV_OK;
    memset(b, 0, sizeof *b);
    CV_TRY(cv_ctx_alloc(ctx, "tuning x", act * sizeof(float), 1, &b->x));
    CV_TRY(cv_ctx_alloc(ctx, "tuning dx", act * sizeof(float), 1, &b->dx));
    CV_TRY(cv_ctx_alloc(ctx, "tuning y", act * sizeof(float), 1, &b->y));
    CV_TRY(cv_ctx_alloc(ctx, "tuning dy", act * sizeof(float), 1, &b->dy));
    CV_TRY(cv_ctx_alloc(ctx, "tuning w", wts * sizeof(float), 1, &b->w));
    CV_TRY(cv_ctx_alloc(ctx, "tuning dw", wts * sizeof(float), 1, &b->dw));
    CV_TRY(cv_ctx_alloc(ctx, "tuning b", 1024 * sizeof(float), 1, &b->b));
    CV_TRY(cv_ctx_alloc(ctx, "tuning db", 1024 * sizeof(float), 1, &b->db));
    {   /* values in GELU's curved range, not zeros */
        cv_tensor t = { b->x, 0, { 1, 1, 1, (int64_t)act } };
        CV_TRY(cv_fill_fwd(ctx, &t, 0.37f));
        t.buf = b->dy; CV_TRY(cv_fill_fwd(ctx, &t, -0.11f));
        t.buf = b->w; t.shape[3] = (int64_t)wts; CV_TRY(cv_fill_fwd(ctx, &t, 0.05f));
        CV_TRY(cv_ctx_finish(ctx));
    }
    return CV_OK;
fail:
    bufs_free(b);
    return st;
}

static cv_tensor view4(cl_mem m, int64_t n, int64_t c, int64_t h, int64_t w) {
    cv_tensor t = { m, 0, { n, c, h, w } };
    return t;
}

/* One op (0 forward, 1 backward-data, 2 backward-weight + bias) of a shape. */
static cv_status run_conv(cv_ctx *ctx, const tune_bufs *b, const tune_shape *s, int op, cv_conv_algo a) {
    cv_tensor x = view4(b->x, s->N, s->Ci, s->S, s->S), dx = view4(b->dx, s->N, s->Ci, s->S, s->S);
    cv_tensor y = view4(b->y, s->N, s->Co, s->S, s->S), dy = view4(b->dy, s->N, s->Co, s->S, s->S);
    cv_tensor w = view4(b->w, s->Co, s->Ci, s->k, s->k), dw = view4(b->dw, s->Co, s->Ci, s->k, s->k);
    cv_tensor bb = view4(b->b, 1, s->Co, 1, 1), db = view4(b->db, 1, s->Co, 1, 1);
    cv_conv2d_params p = { s->k, 1, 0, a };
    if (op == 0) return cv_conv2d_fwd(ctx, &x, &w, &bb, &y, &p);
    if (op == 1) return cv_conv2d_bwd(ctx, &x, &w, &dy, &dx, NULL, NULL, &p);
    return cv_conv2d_bwd(ctx, &x, &w, &dy, NULL, &dw, &db, &p);
}

/* Minimum wall time of reps runs (after one warm-up run, which also
 * compiles the kernels); *out seconds. */
static cv_status time_conv(cv_ctx *ctx, const tune_bufs *b, const tune_shape *s, int op, cv_conv_algo a, int reps,
                           double *out) {
    cv_status st = CV_OK;
    int64_t xs[4] = { s->N, s->Ci, s->S, s->S };
    cv_conv2d_params p = { s->k, 1, 0, a };
    cl_mem scr;
    size_t ws = cv_conv2d_workspace(ctx, xs, s->Co, &p);
    if (ws) CV_TRY(cv_ctx_scratch(ctx, ws, &scr));
    CV_TRY(run_conv(ctx, b, s, op, a));
    CV_TRY(cv_ctx_finish(ctx));
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = tune_now();
        CV_TRY(run_conv(ctx, b, s, op, a));
        CV_TRY(cv_ctx_finish(ctx));
        double t = tune_now() - t0;
        if (t < best) best = t;
    }
    *out = best;
fail:
    return st;
}

static const char *const op_names[3] = { "forward", "backward-data", "backward-weight" };

/* A context and buffers for measuring candidates: rebuilt only when a
 * candidate's build options differ from the live context's, otherwise the
 * candidate's run-time parameters are swapped in (cv_ctx_set_tune). */
typedef struct tune_session {
    const cv_tune_measure_opts *o;
    cv_ctx    *ctx;
    tune_bufs  b;
    size_t     act, wts;
    /* training steps of the small preset (step_scorer), made on demand */
    cv_cfg    *cfg;
    cv_model  *m;
    cv_trainer *tr;
    float     *batch;
} tune_session;

static void session_end(tune_session *ss) {
    cv_trainer_free(ss->tr); ss->tr = NULL;
    cv_model_free(ss->m); ss->m = NULL;
    cv_cfg_free(ss->cfg); ss->cfg = NULL;
    free(ss->batch); ss->batch = NULL;
    bufs_free(&ss->b);
    cv_ctx_free(ss->ctx);
    ss->ctx = NULL;
}

static cv_status session_use(tune_session *ss, const cv_tune *cand) {
    if (ss->ctx && cv_ctx_set_tune(ss->ctx, cand) == CV_OK) return CV_OK;
    cv_error_clear();
    session_end(ss);
    cv_ctx_opts co = cv_ctx_opts_default();
    co.device = ss->o->device; co.cache_dir = ss->o->cache_dir; co.tune = cand;
    cv_status st = cv_ctx_new(&co, &ss->ctx);
    if (st == CV_OK) st = bufs_new(ss->ctx, ss->act, ss->wts, &ss->b);
    if (st != CV_OK) session_end(ss);
    return st;
}

typedef struct scorer_args {
    tune_session *ss;
    int reps;
} scorer_args;

typedef cv_status (*tune_scorer)(scorer_args *a, const cv_tune *cand, double *score);

/* A trainer of the small preset (batch 4) on the session's context. */
static cv_status session_trainer(tune_session *ss) {
    cv_status st = CV_OK;
    if (ss->tr) return CV_OK;
    cv_model_cfg mc;
    CV_TRY(cv_cfg_new(&ss->cfg));
    CV_TRY(cv_cfg_parse(ss->cfg, cv_model_preset("small"), "small"));
    CV_TRY(cv_model_cfg_read(ss->cfg, &mc));
    CV_TRY(cv_model_new(&mc, &ss->m));
    CV_TRY(cv_model_to_device(ss->m, ss->ctx, 0));
    cv_train_opts to = cv_train_opts_default();
    CV_TRY(cv_trainer_new(ss->ctx, ss->m, &to, &ss->tr));
    CV_TRY(cv_trainer_init_params(ss->tr));
    size_t n = (size_t)4 * mc.channels * mc.size * mc.size;
    if (!(ss->batch = malloc(n * sizeof *ss->batch))) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (size_t i = 0; i < n; i++) ss->batch[i] = (float)sin(0.013 * (double)i) * 0.9f;
    return CV_OK;
fail:
    session_end(ss);
    return st;
}

/* Training steps of the small preset: what the parameters are for, with
 * the caches, liveness and mix of shapes of a real step (per-op timings
 * of the same candidates did not predict it: a VEC choice 10% faster per
 * op made steps 10% slower).  Minimum over repetitions of two steps. */
static cv_status step_scorer(scorer_args *a, const cv_tune *cand, double *score) {
    cv_status st = session_use(a->ss, cand);
    if (st == CV_OK && a->ss->tr) {              /* run-time change on a live context: rebuild the plan */
        cv_trainer_free(a->ss->tr); a->ss->tr = NULL;
        cv_model_free(a->ss->m); a->ss->m = NULL;
        cv_cfg_free(a->ss->cfg); a->ss->cfg = NULL;
        free(a->ss->batch); a->ss->batch = NULL;
    }
    if (st == CV_OK) st = session_trainer(a->ss);
    cv_step_stats s;
    if (st == CV_OK) st = cv_trainer_step(a->ss->tr, a->ss->batch, &s);      /* warm-up (and kernel builds) */
    *score = 1e30;
    for (int r = 0; st == CV_OK && r < a->reps; r++) {
        double t0 = tune_now();
        for (int k = 0; k < 2 && st == CV_OK; k++) st = cv_trainer_step(a->ss->tr, a->ss->batch, &s);
        double t = tune_now() - t0;
        if (t < *score) *score = t;
    }
    return st;
}

/* Coordinate descent over one field: try each candidate value, keep one
 * that beats the current by more than 3% (measurement noise on a shared
 * host must not flip a choice). */
static cv_status descend(FILE *rep, const char *name, int32_t *field, const int32_t *vals, int nvals, cv_tune *cur,
                         double *cur_score, tune_scorer fn, scorer_args *u) {
    int32_t keep = *field;
    for (int i = 0; i < nvals; i++) {
        if (vals[i] == keep) continue;
        *field = vals[i];
        double s;
        cv_status st = cv_tune_validate(cur);
        if (st != CV_OK) { cv_error_clear(); continue; }
        st = fn(u, cur, &s);
        if (st == CV_ERR_BUILD || st == CV_ERR_DEVMEM || st == CV_ERR_CL) {   /* the device cannot run it: skip */
            if (rep) fprintf(rep, "  %-14s %-6d not usable here: %.120s\n", name, vals[i], cv_last_error());
            cv_error_clear();
            continue;
        }
        if (st != CV_OK) { *field = keep; return st; }
        int better = s < 0.97 * *cur_score;
        if (rep) fprintf(rep, "  %-14s %-6d %10.3f ms%s\n", name, vals[i], s * 1e3, better ? "  (better)" : "");
        if (better) { *cur_score = s; keep = vals[i]; }
    }
    *field = keep;
    return CV_OK;
}

cv_status cv_tune_measure(const cv_tune_measure_opts *o, cv_tune *best, char *device, size_t device_n,
                          char *driver, size_t driver_n, char *summary, size_t summary_n) {
    cv_status st = CV_OK;
    cv_ctx *ctx = NULL;
    tune_bufs b;
    tune_session ss;
    memset(&b, 0, sizeof b);
    memset(&ss, 0, sizeof ss);
    FILE *rep = o->report;
    double t_start = tune_now();
    tune_shape sh[sizeof shapes_small / sizeof *shapes_small + sizeof shapes_paper / sizeof *shapes_paper];
    int ns = 0;
    for (size_t i = 0; i < sizeof shapes_small / sizeof *shapes_small; i++)
        if (!o->quick || shapes_small[i].S == 64 || shapes_small[i].S == 16) sh[ns++] = shapes_small[i];
    if (!o->quick)
        for (size_t i = 0; i < sizeof shapes_paper / sizeof *shapes_paper; i++) sh[ns++] = shapes_paper[i];
    size_t act = 0, wts = 0;
    for (int i = 0; i < ns; i++) {
        size_t a = (size_t)(sh[i].N * (sh[i].Ci > sh[i].Co ? sh[i].Ci : sh[i].Co) * sh[i].S * sh[i].S);
        size_t w = (size_t)(sh[i].Ci * sh[i].Co * sh[i].k * sh[i].k);
        if (a > act) act = a;
        if (w > wts) wts = w;
    }
    int reps = o->quick ? 3 : 5;           /* minimum over repetitions: a shared host's noise is one-sided */
    unsigned char won_vec[sizeof sh / sizeof *sh * 3];
    memset(won_vec, 0, sizeof won_vec);
    cv_conv_algo win[sizeof sh / sizeof *sh][3];

    /* the starting point: the table entry, no wisdom */
    cv_ctx_opts co = cv_ctx_opts_default();
    co.device = o->device; co.cache_dir = o->cache_dir; co.no_wisdom = 1;
    CV_TRY(cv_ctx_new(&co, &ctx));
    cv_tune cur = *cv_ctx_tune(ctx);
    snprintf(device, device_n, "%s", cv_ctx_device_name(ctx));
    snprintf(driver, driver_n, "%s", cv_ctx_driver(ctx));
    if (rep) {
        fprintf(rep, "tuning %s (table entry \"%s\", %d compute units)%s\n", device, cur.entry,
                cv_ctx_compute_units(ctx), o->quick ? ", quick" : "");
        fprintf(rep, "convolution algorithms, GELU on the input, min of %d runs (ms):\n", reps);
        fprintf(rep, "  %-30s %-16s %9s %9s %9s  choice\n", "shape", "op", "direct", "gemm", "vec");
    }
    CV_TRY(bufs_new(ctx, act, wts, &b));

    /* 1. the algorithm per shape and op; an algorithm more than 3x slower
     * than the winner on an earlier shape of the same op and kernel size is
     * not timed again (CLBlast on a CPU, say), unless nothing else runs */
    unsigned char pruned[3][2][3];
    memset(pruned, 0, sizeof pruned);
    for (int i = 0; i < ns; i++) {
        for (int op = 0; op < 3; op++) {
            double t[3] = { -1, -1, -1 };
            cv_conv_algo algos[3] = { CV_CONV_DIRECT, CV_CONV_GEMM, CV_CONV_VEC };
            int64_t xs[4] = { sh[i].N, sh[i].Ci, sh[i].S, sh[i].S };
            int bi = -1, fits[3], n_try = 0;
            for (int a = 0; a < 3; a++) {
                cv_conv2d_params p = { sh[i].k, 1, 0, algos[a] };
                fits[a] = cv_conv2d_algo(ctx, xs, sh[i].Co, &p, op) == algos[a];   /* VEC may not fit */
                n_try += fits[a] && !pruned[op][sh[i].k == 3][a];
            }
            for (int a = 0; a < 3; a++) {
                if (!fits[a]) continue;
                if (n_try > 0 && pruned[op][sh[i].k == 3][a]) continue;      /* pruned, unless nothing else runs */
                st = time_conv(ctx, &b, &sh[i], op, algos[a], reps, &t[a]);
                if (st == CV_ERR_DEVMEM || st == CV_ERR_CL) {             /* e.g. CLBlast cannot run it here */
                    if (rep) fprintf(rep, "  (%s %s: %.100s)\n", algos[a] == CV_CONV_GEMM ? "gemm" : "kernel",
                                     op_names[op], cv_last_error());
                    cv_error_clear();
                    st = CV_OK;
                    t[a] = -1;
                    continue;
                }
                if (st != CV_OK) goto fail;
                if (bi < 0 || t[a] < t[bi]) bi = a;
            }
            if (bi < 0) { st = cv_error(CV_ERR_CL, "tuning: no convolution algorithm runs on %s", device); goto fail; }
            win[i][op] = algos[bi];
            for (int a = 0; a < 3; a++) if (t[a] > 3 * t[bi]) pruned[op][sh[i].k == 3][a] = 1;
            if (algos[bi] == CV_CONV_VEC) won_vec[i * 3 + op] = 1;
            if (rep) {
                char s[64], c3[3][16];
                snprintf(s, sizeof s, "%lldx%lldx%dx%d %dx%d ->%lld", (long long)sh[i].N, (long long)sh[i].Ci, sh[i].S,
                         sh[i].S, sh[i].k, sh[i].k, (long long)sh[i].Co);
                for (int a = 0; a < 3; a++) {
                    if (t[a] < 0) snprintf(c3[a], sizeof c3[a], "-");
                    else snprintf(c3[a], sizeof c3[a], "%.3f", t[a] * 1e3);
                }
                fprintf(rep, "  %-30s %-16s %9s %9s %9s  %s\n", s, op_names[op], c3[0], c3[1], c3[2],
                        cv_tune_algo_name((int)algos[bi]));
            }
        }
    }
    bufs_free(&b);
    cv_ctx_free(ctx);
    ctx = NULL;
    if (rep) fprintf(rep, "  (%.0f s)\n", tune_now() - t_start);

    /* 2. rules: per op and kernel size, map sizes from the largest down;
     * a rule where the winner changes, the smallest size's winner for the
     * rest; then one catch-all */
    {
        int n = 0;
        for (int op = 0; op < 3; op++)
            for (int k = 1; k <= 3; k += 2) {
                int64_t sizes[16];
                int nsz = 0;
                for (int i = 0; i < ns; i++) {
                    if (sh[i].k != k) continue;
                    int64_t hw = (int64_t)sh[i].S * sh[i].S, dup = 0;
                    for (int j = 0; j < nsz; j++) dup |= sizes[j] == hw;
                    if (!dup && nsz < 16) sizes[nsz++] = hw;
                }
                for (int a = 1; a < nsz; a++)              /* descending */
                    for (int j = a; j > 0 && sizes[j] > sizes[j - 1]; j--) { int64_t x = sizes[j]; sizes[j] = sizes[j - 1]; sizes[j - 1] = x; }
                int last = -1;
                for (int j = 0; j < nsz; j++) {
                    /* the winner at this size: the most common over the shapes of that size */
                    int votes[4] = { 0 };
                    for (int i = 0; i < ns; i++)
                        if (sh[i].k == k && (int64_t)sh[i].S * sh[i].S == sizes[j]) votes[win[i][op]]++;
                    int w = CV_CONV_DIRECT;
                    for (int a = 1; a < 4; a++) if (votes[a] > votes[w]) w = a;
                    int64_t min_hw = j == nsz - 1 ? 0 : sizes[j];
                    if (w == last && n > 0) { cur.rules[n - 1].min_hw = min_hw; continue; }
                    if (n == CV_TUNE_MAX_RULES - 1) break;
                    cv_tune_rule r = { op, k, min_hw, 0, 0, w };
                    cur.rules[n++] = r;
                    last = w;
                }
            }
        cv_tune_rule any = { -1, 0, 0, 0, 0, CV_TUNE_DIRECT };
        cur.rules[n++] = any;
        cur.n_rules = n;
    }

    /* 3. the VEC kernels' parameters, where VEC won anything; build
     * options first (each a program of its own), then run-time ones */
    int any_vec = 0;
    for (int i = 0; i < ns * 3; i++) any_vec |= won_vec[i];
    ss.o = o; ss.act = act; ss.wts = wts;
    scorer_args sa = { &ss, reps };
    if (any_vec) {
        double s0;
        CV_TRY(step_scorer(&sa, &cur, &s0));
        if (rep) fprintf(rep, "vec kernel parameters, one at a time (two training steps of the small preset, ms):\n"
                              "  %-14s %-6s %10.3f ms\n", "(start)", "", s0 * 1e3);
        static const int32_t v_vals[] = { 8, 16, 4 }, cob1_vals[] = { 8, 16, 32 }, r3_vals[] = { 2, 4, 1, 6 };
        static const int32_t cob3_vals[] = { 8, 16, 4 }, wcob1_vals[] = { 16, 32, 8 }, wcob3_vals[] = { 8, 4 };
        static const int32_t vwg_vals[] = { 1, 4, 16, 64 }, keep_vals[] = { 0, 1, 2 };
        if (!o->quick) {                   /* quick: no rebuilds, run-time parameters only */
            CV_TRY(descend(rep, "conv_v", &cur.conv_v, v_vals, 3, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_r3", &cur.conv_r3, r3_vals, 4, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_cob3", &cur.conv_cob3, cob3_vals, 3, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_wcob1", &cur.conv_wcob1, wcob1_vals, 3, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_wcob3", &cur.conv_wcob3, wcob3_vals, 2, &cur, &s0, step_scorer, &sa));
            static const int32_t wcib1_vals[] = { 1, 2, 3 };
            CV_TRY(descend(rep, "conv_wcib1", &cur.conv_wcib1, wcib1_vals, 3, &cur, &s0, step_scorer, &sa));
            static const int32_t ech_vals[] = { 256, 64, 1024, 4096 };
            CV_TRY(descend(rep, "elem_chunk", &cur.elem_chunk, ech_vals, 4, &cur, &s0, step_scorer, &sa));
            CV_TRY(step_scorer(&sa, &cur, &s0));   /* back on the best build; run-time parameters now */
        }
        CV_TRY(descend(rep, "conv_cob1", &cur.conv_cob1, cob1_vals, 3, &cur, &s0, step_scorer, &sa));
        CV_TRY(descend(rep, "vec_wg", &cur.vec_wg, vwg_vals, 4, &cur, &s0, step_scorer, &sa));
        CV_TRY(descend(rep, "keep_gelu", &cur.keep_gelu, keep_vals, 3, &cur, &s0, step_scorer, &sa));
        if (rep) fprintf(rep, "  (%.0f s)\n", tune_now() - t_start);
    }

    /* 4. backward-weight parallelism and flat work-groups (run-time),
     * on training steps too */
    {
        double s0;
        CV_TRY(step_scorer(&sa, &cur, &s0));
        if (rep) fprintf(rep, "backward-weight groups per compute unit and flat work-groups (two training steps, ms):\n"
                              "  %-14s %-6s %10.3f ms\n", "(start)", "", s0 * 1e3);
        static const int32_t wg_vals[] = { 1, 2, 4, 8, 16, 32, 64 };
        CV_TRY(descend(rep, "wgrad_groups", &cur.wgrad_groups, wg_vals, o->quick ? 4 : 7, &cur, &s0, step_scorer, &sa));
        static const int32_t ew_vals[] = { 0, 64, 128, 256, 512, 1024 };
        CV_TRY(descend(rep, "elem_wg", &cur.elem_wg, ew_vals, 6, &cur, &s0, step_scorer, &sa));
    }
    session_end(&ss);

    snprintf(cur.source, sizeof cur.source, "measured");
    cur.warning[0] = '\0';
    CV_TRY(cv_tune_validate(&cur));
    *best = cur;
    snprintf(summary, summary_n, "measured%s in %.0f s: %d shapes x 3 ops, %d conv rules%s", o->quick ? " (quick)" : "",
             tune_now() - t_start, ns, cur.n_rules, any_vec ? ", vec parameters" : "");
fail:
    session_end(&ss);
    bufs_free(&b);
    cv_ctx_free(ctx);
    return st;
}
