/* test-model.c -- whole-model checks, llm.c test_gpt2 style but failing
 * loudly: a tiny VDVAE (8x8 maps, two encoder stages, three decoder stages,
 * 3x3 convolutions that become 1x1 at 2x2) run on the device and on the
 * double-precision reference path with the same noise.
 *   1. forward losses and every parameter gradient agree;
 *   2. device gradients of a whole encoder block and a whole top-down block
 *      match central finite differences of the reference loss;
 *   3. K RMSprop steps on both paths give the same losses step by step;
 *   4. the loss falls when training on a fixed batch; a skip threshold
 *      at the device's gradient norm is decided once, by the device;
 *   5. save + resume gives bit-identical parameters to an uninterrupted run;
 *   6. with an EMA, validation uses the EMA weights and leaves training
 *      bit-identical;
 *   7. a top prior fitted to posterior moments, and the sampler drawing
 *      the top group from it. */
#include "tap.h"
#include "tiny-model.h"
#include "graph/cv_plan.h"
#include "model/cv_train.h"
#include "model/cv_ckpt.h"
#include "model/cv_sample.h"
#include "runtime/cv_rng.h"
#include "dataset/cv_data.h"

#include <dirent.h>
#include <math.h>
#include <netcdf.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

/* a smooth, periodic, channel-correlated batch */
/* The bytes of a file (malloc'd; *n its size), or NULL. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long len;
    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)len + 1)) && fread(b, 1, (size_t)len, f) == (size_t)len) *n = (size_t)len;
    else { free(b); b = NULL; }
    if (f) fclose(f);
    return b;
}

static void make_batch(float *x, int64_t N, int C, int S, uint64_t seed) {
    const double pi = 3.14159265358979323846;
    for (int64_t n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < S; i++)
                for (int j = 0; j < S; j++) {
                    double ph = 0.37 * (double)(seed + n) + 0.9 * ch;
                    x[((n * C + ch) * S + i) * S + j] = (float)(0.8 * sin(2 * pi * i / S + ph) * cos(2 * pi * j / S - ph)
                                                                + 0.3 * ch - 0.2 + 0.1 * sin(3.0 * i * j + n));
                }
}

/* A trainer from the weights pf with a zero optimizer state. */
static cv_status start_trainer(cv_ctx *ctx, cv_model *m, const cv_train_opts *to, const float *pf, cv_trainer **tr) {
    cv_status st = cv_trainer_new(ctx, m, to, tr);
    if (st == CV_OK) st = cv_model_upload(m, CV_ARENA_PARAMS, pf);
    if (st == CV_OK) st = cv_arena_zero(cv_model_arena(m, CV_ARENA_OPT1), ctx);
    if (st == CV_OK) st = cv_arena_zero(cv_model_arena(m, CV_ARENA_OPT2), ctx);
    return st;
}

int main(void) {
    cv_hdf5_no_atexit();          /* as the programs do: the full-disk case below */
    tap_begin();
    cv_ctx *ctx = tap_ctx();
    cv_status st;
    cv_cfg *cfg;
    cv_model_cfg mc;
    world w;
    memset(&w, 0, sizeof w);
    w.seed = 7; w.step = 3;
    if (cv_cfg_new(&cfg) != CV_OK || cv_cfg_parse(cfg, tiny_cfg, "tiny") != CV_OK || cv_model_cfg_read(cfg, &mc) != CV_OK ||
        cv_model_new(&mc, &w.m) != CV_OK || cv_model_to_device(w.m, ctx, 0) != CV_OK) {
        printf("Bail out! tiny model: %s\n", cv_last_error());
        return 99;
    }
    const int64_t N = 2;
    st = cv_model_build(w.m, CV_MODEL_TRAIN, N, 1.0f, 0, &w.g, &w.io);
    CV_CHECK_OK(st == CV_OK, "tiny model graph: %d nodes, %d parameter tensors, %lld parameters, %d latent groups",
                cv_graph_n_nodes(w.g), cv_model_n_params(w.m), (long long)cv_model_n_floats(w.m), w.io.n_groups);
    w.nf = cv_model_n_floats(w.m);
    int np = cv_model_n_params(w.m);
    float *pf = malloc(w.nf * sizeof *pf), *gf = malloc(w.nf * sizeof *gf);
    double *pd = malloc(w.nf * sizeof *pd), *gd = calloc(w.nf, sizeof *gd);
    w.rp = malloc(np * sizeof *w.rp); w.rdp = malloc(np * sizeof *w.rdp);
    cv_model_init_host(w.m, 11, pf);
    /* make the zero-initialised prior outputs and starts non-trivial so every path carries gradient */
    for (int64_t i = 0; i < w.nf; i++) if (pf[i] == 0.0f) pf[i] = 0.05f * (float)sin(1.3 * i);
    cv_chk_f2d(pf, pd, w.nf);
    for (int k = 0; k < np; k++) { w.rp[k] = pd + cv_model_param_offset(w.m, k); w.rdp[k] = gd + cv_model_param_offset(w.m, k); }
    int64_t xn = N * 3 * 8 * 8;
    size_t xn_bytes = (size_t)xn * sizeof(float);
    float *x = malloc(xn * sizeof *x);
    make_batch(x, N, 3, 8, 1);
    cv_refplan_new(w.g, &w.ref);
    for (int64_t i = 0; i < xn; i++) cv_refplan_value(w.ref, w.io.x)[i] = x[i];

    /* 1. device forward/backward vs reference */
    cv_plan *p = NULL;
    st = cv_plan_new(ctx, w.g, cv_model_tensors(w.m, CV_ARENA_PARAMS), cv_model_tensors(w.m, CV_ARENA_GRADS), 0, &p);
    if (st == CV_OK) st = cv_model_upload(w.m, CV_ARENA_PARAMS, pf);
    if (st == CV_OK) st = cv_arena_zero(cv_model_arena(w.m, CV_ARENA_GRADS), ctx);
    if (st == CV_OK) st = cv_plan_upload(p, w.io.x, x);
    if (st == CV_OK) st = cv_plan_forward(p, w.seed, w.step);
    if (st == CV_OK) st = cv_plan_backward(p, w.io.loss, 1.0f / N, w.seed, w.step);
    float *stats = malloc(cv_plan_n_stats(p) * sizeof *stats);
    if (st == CV_OK) st = cv_plan_read_stats(p, stats);
    if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_GRADS, gf);
    if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    double Lref = ref_loss(&w);
    cv_refplan_backward(w.ref, w.rp, w.rdp, w.io.loss, 1.0 / N, w.seed, w.step);
    double Ldev = 0;
    for (int64_t i = 0; i < N; i++) Ldev += stats[cv_plan_stat_offset(p, w.io.loss) + i] / N;
    CV_CHECK_OK(st == CV_OK && fabs(Ldev - Lref) < 1e-5 * (1 + fabs(Lref)),
                "loss: device %.8f, reference %.8f", Ldev, Lref);
    double e = st == CV_OK ? cv_chk_nmse(c, "dparams", gf, gd, w.nf, 5) : INFINITY;
    CV_CHECK_OK(e < 1e-8, "all %lld parameter gradients, device vs reference: nmse %.2e", (long long)w.nf, e);
    int zero_grads = 0;
    for (int k = 0; k < np; k++) {
        const int64_t *s = cv_model_param_shape(w.m, k);
        double a = 0;
        for (int64_t i = 0; i < s[0] * s[1] * s[2] * s[3]; i++) a += fabs(w.rdp[k][i]);
        if (a == 0) { zero_grads++; CV_CHECK_DIAG("parameter %s has an all-zero gradient", cv_model_param_name(w.m, k)); }
    }
    CV_CHECK_OK(zero_grads == 0, "every parameter tensor receives gradient");

    /* 2. finite differences through the reference path, for a whole
     *    encoder block and a whole top-down block */
    const char *blocks[] = { "enc.r4.b0.", "dec.r4.b0." };
    for (int b = 0; b < 2; b++) {
        double maxerr = 0;
        int n_checked = 0;
        for (int k = 0; k < np; k++) {
            if (strncmp(cv_model_param_name(w.m, k), blocks[b], strlen(blocks[b]))) continue;
            const int64_t *s = cv_model_param_shape(w.m, k);
            int64_t n = s[0] * s[1] * s[2] * s[3];
            double *dev = malloc(n * sizeof *dev);
            cv_chk_f2d(gf + cv_model_param_offset(w.m, k), dev, n);
            double r = cv_chk_fd_check(ref_loss, &w, w.rp[k], n, dev, 1e-4, 24, 100 + k);
            if (r > maxerr) maxerr = r;
            n_checked++;
            free(dev);
        }
        CV_CHECK_OK(n_checked > 0 && maxerr < 2e-3, "device gradients of the whole block %s* (%d tensors) vs finite differences: rel err %.2e",
                    blocks[b], n_checked, maxerr);
    }

    /* 3. K RMSprop steps on both paths */
    {
        const int K = 5;
        cv_train_opts to = cv_train_opts_default();
        to.batch = (int)N; to.seed = w.seed;
        to.rms.lr = 1e-3f; to.grad_clip = 0; to.skip_factor = 0;
        cv_trainer *tr = NULL;
        st = start_trainer(ctx, w.m, &to, pf, &tr);
        double *v = calloc(w.nf, sizeof *v), *buf = calloc(w.nf, sizeof *buf);
        cv_chk_f2d(pf, pd, w.nf);
        double worst = 0;
        for (int k = 0; k < K && st == CV_OK; k++) {
            cv_step_stats s;
            st = cv_trainer_step(tr, x, &s);
            w.step = (uint64_t)k;
            double lr = ref_loss(&w);
            memset(gd, 0, w.nf * sizeof *gd);
            cv_refplan_backward(w.ref, w.rp, w.rdp, w.io.loss, 1.0 / N, w.seed, w.step);
            cv_rmsprop_ref(pd, gd, v, buf, w.nf, &to.rms, 1.0);
            double rel = fabs(s.loss - lr) / (1 + fabs(lr));
            if (rel > worst) worst = rel;
            CV_CHECK_DIAG("step %d: device loss %.7f, reference %.7f", k, s.loss, lr);
        }
        CV_CHECK_OK(st == CV_OK && worst < 1e-4, "%d RMSprop steps: device and reference losses agree (worst rel diff %.2e)", K, worst);
        free(v); free(buf);
        cv_trainer_free(tr);
    }

    /* 3b. KL warm-up, free bits, a KL weight for the highest resolution
     *     and lr warm-up: the same steps on the reference path, with the
     *     weights the trainer must choose */
    {
        const int K = 5;
        cv_train_opts to = cv_train_opts_default();
        to.batch = (int)N; to.seed = w.seed;
        to.rms.lr = 1e-3f; to.grad_clip = 0; to.skip_factor = 0;
        to.kl_warmup = 4; to.lr_warmup = 3;
        to.kl_weight = 1.5f;
        for (int g = 0; g < w.io.n_groups; g++)
            if (w.io.group_res[g] > to.kl_weight_min_res) to.kl_weight_min_res = w.io.group_res[g];
        cv_chk_f2d(pf, pd, w.nf);
        w.step = 0;
        ref_loss(&w);
        double lo = INFINITY, hi = 0, per = 3.0 * 8 * 8;   /* per-dimension KL of each group at the start */
        int64_t gdim[CV_MAX_GROUPS];
        for (int g = 0; g < w.io.n_groups; g++) {
            const int64_t *sh = cv_graph_value(w.g, w.io.mq[g])->shape;
            gdim[g] = sh[1] * sh[2] * sh[3];
            const double *k = cv_refplan_value(w.ref, w.io.kl[g]);
            double kd = (k[0] + k[1]) / 2 * per / (double)gdim[g];
            lo = fmin(lo, kd); hi = fmax(hi, kd);
        }
        to.free_bits = (float)sqrt(lo * hi);          /* some groups under it, some over */
        cv_trainer *tr = NULL;
        st = start_trainer(ctx, w.m, &to, pf, &tr);
        double *v = calloc(w.nf, sizeof *v), *buf = calloc(w.nf, sizeof *buf);
        double worst = 0;
        int wrong_w = 0, n_free = 0, n_paid = 0, n_heavy = 0;
        for (int k = 0; k < K && st == CV_OK; k++) {
            cv_step_stats s;
            st = cv_trainer_step(tr, x, &s);
            w.step = (uint64_t)k;
            double lr = ref_loss(&w);
            double beta = k < 4 ? (k + 1) / 4.0 : 1.0;
            for (int g = 0; g < w.io.n_groups; g++) {
                const double *kl = cv_refplan_value(w.ref, w.io.kl[g]);
                double heavy = w.io.group_res[g] >= to.kl_weight_min_res ? to.kl_weight : 1.0;
                double want = (kl[0] + kl[1]) / 2 * per < to.free_bits * gdim[g] ? 0.0 : beta * heavy;
                n_free += want == 0; n_paid += want != 0; n_heavy += want != 0 && heavy != 1.0;
                if (fabs(s.kl_weight[g] - want) > 1e-12) {
                    wrong_w++;
                    CV_CHECK_DIAG("step %d group %d: KL weight %g, want %g", k, g, s.kl_weight[g], want);
                }
                cv_refplan_set_grad_weight(w.ref, w.io.kl[g], want);
            }
            memset(gd, 0, w.nf * sizeof *gd);
            cv_refplan_backward(w.ref, w.rp, w.rdp, w.io.loss, 1.0 / N, w.seed, w.step);
            cv_rmsprop_opts ro = to.rms;
            ro.lr = (float)(to.rms.lr * (k < 3 ? (k + 1) / 3.0 : 1.0));
            if (fabs(s.lr - ro.lr) > 1e-12) { wrong_w++; CV_CHECK_DIAG("step %d: lr %g, want %g", k, s.lr, ro.lr); }
            cv_rmsprop_ref(pd, gd, v, buf, w.nf, &ro, 1.0);
            double rel = fabs(s.loss - lr) / (1 + fabs(lr));
            if (rel > worst) worst = rel;
        }
        for (int g = 0; g < w.io.n_groups; g++) cv_refplan_set_grad_weight(w.ref, w.io.kl[g], 1.0);
        CV_CHECK_OK(st == CV_OK && wrong_w == 0 && n_free > 0 && n_paid > 0 && n_heavy > 0 && worst < 1e-4,
                    "%d steps with KL warm-up, free bits (%.3g nats/dim: %d group-steps free, %d paid, %d at KL weight %g "
                    "for %dx%d) and lr warm-up follow the reference (worst rel loss diff %.2e)", K, to.free_bits, n_free,
                    n_paid, n_heavy, to.kl_weight, to.kl_weight_min_res, to.kl_weight_min_res, worst);
        free(v); free(buf);
        cv_trainer_free(tr);
    }

    /* 4. the loss falls on a fixed batch */
    {
        cv_train_opts to = cv_train_opts_default();
        to.batch = (int)N; to.seed = 3; to.optimizer = 1; to.adam.lr = 3e-3f; to.adam.weight_decay = 0;
        cv_trainer *tr = NULL;
        double first = NAN, last = NAN;
        st = cv_trainer_new(ctx, w.m, &to, &tr);
        if (st == CV_OK) st = cv_trainer_init_params(tr);
        for (int k = 0; k < 60 && st == CV_OK; k++) {
            cv_step_stats s;
            st = cv_trainer_step(tr, x, &s);
            if (k == 0) first = s.loss;
            last = s.loss;
        }
        CV_CHECK_OK(st == CV_OK && last < first - 0.3, "training on a fixed batch: loss %.4f -> %.4f nats/dim after 60 Adam steps", first, last);
        /* a NaN in the data: the update is skipped and counted, the weights stay, training goes on */
        float *p0 = malloc(w.nf * sizeof *p0), *p1 = malloc(w.nf * sizeof *p1), *xnan = malloc(xn_bytes);
        memcpy(xnan, x, xn_bytes);
        xnan[5] = NAN;
        cv_step_stats s;
        int64_t skipped0 = cv_trainer_skipped(tr);
        if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_PARAMS, p0);
        if (st == CV_OK) st = cv_trainer_step(tr, xnan, &s);
        if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_PARAMS, p1);
        int skipped_ok = st == CV_OK && s.skipped && cv_trainer_skipped(tr) == skipped0 + 1 && !memcmp(p0, p1, w.nf * sizeof *p0);
        if (st == CV_OK) st = cv_trainer_step(tr, x, &s);
        CV_CHECK_OK(skipped_ok && st == CV_OK && !s.skipped && isfinite(s.loss),
                    "a NaN batch: update skipped and counted, weights unchanged, the next step trains (loss %.4f)", s.loss);
        free(p0); free(p1); free(xnan);
        cv_trainer_free(tr);
    }

    /* 4b. the skip decision at the threshold: a fixed threshold at the
     *     device's own gradient norm and one float either side; the flag
     *     the host reports and counts is what the device did to the
     *     weights, and what the reference decides from the squared norm */
    {
        cv_train_opts to = cv_train_opts_default();
        to.batch = (int)N; to.seed = 9; to.rms.lr = 1e-3f;
        cv_trainer *tr = NULL;
        cv_step_stats s;
        float *p0 = malloc(w.nf * sizeof *p0), *p1 = malloc(w.nf * sizeof *p1);
        st = cv_trainer_new(ctx, w.m, &to, &tr);
        if (st == CV_OK) st = cv_trainer_init_params(tr);
        if (st == CV_OK) st = cv_trainer_step(tr, x, &s);
        float n2 = (float)(s.gnorm * s.gnorm);          /* the device's float, exactly */
        float t0 = (float)s.gnorm, thr[3] = { nextafterf(t0, 0.0f), t0, nextafterf(t0, INFINITY) };
        int agree = st == CV_OK, n_skip = 0, n_step = 0;
        for (int k = 0; k < 3 && st == CV_OK; k++) {
            st = cv_trainer_init_params(tr);            /* the same weights, step 0 again */
            cv_trainer_set_skip_threshold(tr, thr[k]);
            if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_PARAMS, p0);
            if (st == CV_OK) st = cv_trainer_step(tr, x, &s);
            if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_PARAMS, p1);
            double scale;
            int want = cv_optim_decide_ref(n2, to.grad_clip, thr[k], &scale);
            int moved = memcmp(p0, p1, w.nf * sizeof *p0) != 0;
            int ok = st == CV_OK && (float)(s.gnorm * s.gnorm) == n2 && s.skip_threshold == (double)thr[k] &&
                     s.skipped == want && moved == !want && cv_trainer_skipped(tr) == want;
            CV_CHECK_DIAG("threshold %a, norm %.17g (squared %a): device %s the weights, host flag %d, count %lld, "
                          "reference %d", (double)thr[k], s.gnorm, (double)n2, moved ? "moved" : "kept", s.skipped,
                          (long long)cv_trainer_skipped(tr), want);
            agree &= ok;
            n_skip += want; n_step += !want;
        }
        cv_trainer_set_skip_threshold(tr, 0);
        CV_CHECK_OK(agree && n_skip >= 1 && n_step >= 1,
                    "a skip threshold at the device's gradient norm and a float either side: the host's flag and count "
                    "are the device's decision (%d skipped, %d stepped)", n_skip, n_step);
        free(p0); free(p1);
        cv_trainer_free(tr);
    }

    /* 5. resume equals an uninterrupted run (bit-identical parameters) */
    {
        char dir[] = "/tmp/cv-test-resumeXXXXXX", path[256];
        if (!mkdtemp(dir)) { perror("mkdtemp"); return 99; }
        snprintf(path, sizeof path, "%s/checkpoint.nc", dir);
        cv_train_opts to = cv_train_opts_default();
        to.batch = (int)N; to.seed = 5; to.rms.lr = 1e-3f; to.skip_warmup = 2;
        float *xb = malloc(xn * sizeof *xb), *p1 = malloc(w.nf * sizeof *p1), *p2 = malloc(w.nf * sizeof *p2);
        cv_trainer *tr = NULL;
        cv_step_stats s;
        int64_t ep, ix;
        st = cv_trainer_new(ctx, w.m, &to, &tr);
        if (st == CV_OK) st = cv_trainer_init_params(tr);
        for (int k = 0; k < 8 && st == CV_OK; k++) {
            make_batch(xb, N, 3, 8, (uint64_t)k);
            st = cv_trainer_step(tr, xb, &s);
        }
        if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_PARAMS, p1);
        cv_trainer_free(tr);
        tr = NULL;
        /* interrupted at 4, resumed in a fresh trainer */
        st = cv_trainer_new(ctx, w.m, &to, &tr);
        if (st == CV_OK) st = cv_trainer_init_params(tr);
        for (int k = 0; k < 4 && st == CV_OK; k++) {
            make_batch(xb, N, 3, 8, (uint64_t)k);
            st = cv_trainer_step(tr, xb, &s);
        }
        if (st == CV_OK) st = cv_trainer_save(tr, path, tiny_cfg, 0, 4);
        cv_trainer_free(tr);
        tr = NULL;
        /* scramble the device state to prove load restores everything */
        if (st == CV_OK) st = cv_arena_zero(cv_model_arena(w.m, CV_ARENA_OPT1), ctx);
        if (st == CV_OK) st = cv_arena_zero(cv_model_arena(w.m, CV_ARENA_PARAMS), ctx);
        if (st == CV_OK) st = cv_trainer_new(ctx, w.m, &to, &tr);
        if (st == CV_OK) st = cv_trainer_load(tr, path, &ep, &ix);
        for (int k = 4; k < 8 && st == CV_OK; k++) {
            make_batch(xb, N, 3, 8, (uint64_t)k);
            st = cv_trainer_step(tr, xb, &s);
        }
        if (st == CV_OK) st = cv_model_download(w.m, CV_ARENA_PARAMS, p2);
        if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
        CV_CHECK_OK(st == CV_OK && ix == 4 && cv_trainer_steps(tr) == 8 && !memcmp(p1, p2, w.nf * sizeof *p1),
                    "save at step 4 + resume gives parameters bit-identical to 8 uninterrupted steps");
        /* a checkpoint of another architecture is rejected with the parameter named */
        cv_model_cfg mc2 = mc;
        mc2.width = 6;
        cv_model *m2 = NULL;
        if (cv_model_new(&mc2, &m2) == CV_OK) {
            float *tmp = malloc(cv_model_n_floats(m2) * sizeof *tmp);
            cv_status s2 = cv_ckpt_read(path, m2, "params", tmp);
            CV_CHECK_OK(s2 == CV_ERR_FORMAT && strstr(cv_last_error(), "does not match"), "mismatched checkpoint rejected: %s", cv_last_error());
            free(tmp);
            cv_model_free(m2);
        }
        /* a full disk while writing the next checkpoint (a file-size limit, so
         * that writes fail with EFBIG): the save fails, the previous
         * checkpoint keeps its bytes, no temporary file is left */
        {
            size_t n0 = 0, n1 = 0;
            char *before = slurp(path, &n0);
            struct rlimit old, lim;
            int limited = getrlimit(RLIMIT_FSIZE, &old) == 0;
            lim = old;
            lim.rlim_cur = 4096;
            void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
            limited = limited && setrlimit(RLIMIT_FSIZE, &lim) == 0;
            cv_status sf = limited ? cv_trainer_save(tr, path, tiny_cfg, 0, 8) : CV_OK;
            if (limited) setrlimit(RLIMIT_FSIZE, &old);
            signal(SIGXFSZ, old_xfsz);
            char *after = slurp(path, &n1);
            int entries = 0;
            DIR *dd = opendir(dir);
            for (struct dirent *de; dd && (de = readdir(dd));) entries += de->d_name[0] != '.';
            if (dd) closedir(dd);
            CV_CHECK_OK(limited && sf != CV_OK && before && after && n0 == n1 && !memcmp(before, after, n0) &&
                        entries == 1,
                        "a checkpoint save that runs out of space fails (%s), the previous checkpoint is intact "
                        "(%zu bytes), %d file(s) in the run directory", cv_last_error(), n1, entries);
            free(before); free(after);
        }
        /* a checkpoint of format version 1 (the unsplit top-down blocks) is refused with a message */
        int nc = -1, one = 1, edited = nc_open(path, NC_WRITE, &nc) == NC_NOERR && nc_redef(nc) == NC_NOERR &&
                                        nc_put_att_int(nc, NC_GLOBAL, "cv_format_version", NC_INT, 1, &one) == NC_NOERR;
        if (nc >= 0) nc_close(nc);
        {
            float *tmp = malloc(w.nf * sizeof *tmp);
            cv_status s3 = edited && tmp ? cv_ckpt_read(path, w.m, "params", tmp) : CV_ERR_ARG;
            CV_CHECK_OK(edited && s3 == CV_ERR_FORMAT && strstr(cv_last_error(), "format version 1") &&
                        strstr(cv_last_error(), "train again"), "version-1 checkpoint refused: %s", cv_last_error());
            free(tmp);
        }
        cv_trainer_free(tr);
        unlink(path);
        rmdir(dir);
        free(xb); free(p1); free(p2);
    }

    /* 6. with an EMA, validation is measured with the EMA weights (what
     *    encode and sample load) and leaves training bit-identical */
    {
        cv_model *me = NULL;
        cv_train_opts to = cv_train_opts_default();
        to.batch = (int)N; to.seed = 4; to.rms.lr = 1e-3f; to.ema = 0.9f;
        cv_train_opts to0 = to;
        to0.ema = 0;
        int64_t nf = w.nf;
        float *xv = malloc(xn_bytes), *xb = malloc(xn_bytes);
        float *pa = malloc(nf * sizeof *pa), *ea = malloc(nf * sizeof *ea), *oa = malloc(nf * sizeof *oa);
        float *pb = malloc(nf * sizeof *pb), *eb = malloc(nf * sizeof *eb), *ob = malloc(nf * sizeof *ob);
        float *pmid = malloc(nf * sizeof *pmid), *pafter = malloc(nf * sizeof *pafter);
        cv_trainer *tr = NULL, *t0 = NULL;
        cv_step_stats s, sv_ema, sv_ref, sv_raw;
        make_batch(xv, N, 3, 8, 40);
        st = cv_model_new(&mc, &me);
        if (st == CV_OK) st = cv_model_to_device(me, ctx, 1);
        /* run A: 3 steps, a validation pass, 3 steps */
        if (st == CV_OK) st = cv_trainer_new(ctx, me, &to, &tr);
        if (st == CV_OK) st = cv_trainer_init_params(tr);
        for (int k = 0; k < 3 && st == CV_OK; k++) { make_batch(xb, N, 3, 8, (uint64_t)k + 20); st = cv_trainer_step(tr, xb, &s); }
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_PARAMS, pmid);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_EMA, ea);
        if (st == CV_OK) st = cv_trainer_eval(tr, xv, (int)N - 1, &sv_ema);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_PARAMS, pafter);
        int restored = st == CV_OK && !memcmp(pmid, pafter, nf * sizeof *pmid);
        int differ = memcmp(pmid, ea, nf * sizeof *ea) != 0;
        for (int k = 3; k < 6 && st == CV_OK; k++) { make_batch(xb, N, 3, 8, (uint64_t)k + 20); st = cv_trainer_step(tr, xb, &s); }
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_PARAMS, pa);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_EMA, ea + 0);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_OPT1, oa);
        cv_trainer_free(tr);
        tr = NULL;
        /* the same evaluation by a trainer without EMA, the EMA weights
         * (then the raw weights) uploaded as its parameters */
        float *e3 = malloc(nf * sizeof *e3);
        if (st == CV_OK) st = cv_trainer_new(ctx, me, &to, &tr);
        if (st == CV_OK) st = cv_trainer_init_params(tr);
        for (int k = 0; k < 3 && st == CV_OK; k++) { make_batch(xb, N, 3, 8, (uint64_t)k + 20); st = cv_trainer_step(tr, xb, &s); }
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_EMA, e3);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_PARAMS, pb);
        int same3 = st == CV_OK && !memcmp(pb, pmid, nf * sizeof *pb);     /* run B at step 3 is run A at step 3 */
        if (st == CV_OK) st = cv_trainer_new(ctx, me, &to0, &t0);
        if (st == CV_OK) st = cv_model_upload(me, CV_ARENA_PARAMS, e3);
        if (st == CV_OK) st = cv_trainer_eval(t0, xv, (int)N - 1, &sv_ref);
        if (st == CV_OK) st = cv_model_upload(me, CV_ARENA_PARAMS, pb);
        if (st == CV_OK) st = cv_trainer_eval(t0, xv, (int)N - 1, &sv_raw);
        cv_trainer_free(t0);
        /* run B goes on: the same 6 steps as run A without its validation
         * pass (its step-3 parameters put back after t0's evaluations) */
        for (int k = 3; k < 6 && st == CV_OK; k++) { make_batch(xb, N, 3, 8, (uint64_t)k + 20); st = cv_trainer_step(tr, xb, &s); }
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_PARAMS, pb);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_EMA, eb);
        if (st == CV_OK) st = cv_model_download(me, CV_ARENA_OPT1, ob);
        if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
        CV_CHECK_OK(st == CV_OK && differ && sv_ema.loss == sv_ref.loss && sv_ema.recon == sv_ref.recon &&
                    sv_ema.kl == sv_ref.kl && sv_ema.loss != sv_raw.loss,
                    "ema 0.9: the validation loss %.9f is the one of the EMA weights as parameters (%.9f), "
                    "not of the training weights (%.9f)", sv_ema.loss, sv_ref.loss, sv_raw.loss);
        CV_CHECK_OK(restored && same3 && !memcmp(pa, pb, nf * sizeof *pa) && !memcmp(ea, eb, nf * sizeof *ea) &&
                    !memcmp(oa, ob, nf * sizeof *oa),
                    "the training weights come back bit for bit after validation, and 3 more steps give weights, "
                    "EMA and optimizer state bit-identical to a run without the validation pass");
        cv_trainer_free(tr);
        cv_model_free(me);
        free(xv); free(xb); free(pa); free(ea); free(oa); free(pb); free(eb); free(ob); free(pmid); free(pafter); free(e3);
    }

    /* 7. a fitted top prior: its moments and Cholesky factor, its draws,
     *    and the sampler's graph taking the top group's z as given (the
     *    device against the reference path on the same z and noise) */
    {
        enum { TN = 40, TD = 5 };
        float tmu[TN * TD], tls[TN * TD];
        for (int i = 0; i < TN; i++)
            for (int j = 0; j < TD; j++) {
                tmu[i * TD + j] = (float)(sin(1.7 * i + j) + 0.3 * j + (j > 0 ? 0.5 * sin(1.7 * i + j - 1) : 0));
                tls[i * TD + j] = (float)(-1.0 - 0.1 * j + 0.2 * cos(0.9 * i));
            }
        cv_top_prior tp;
        st = cv_top_prior_from_moments(tmu, tls, TN, TD, &tp);
        double worst_m = 0, worst_c = 0, worst_z = 0;
        for (int a = 0; st == CV_OK && a < TD; a++) {
            double ma = 0;
            for (int i = 0; i < TN; i++) ma += tmu[i * TD + a] / (double)TN;
            worst_m = fmax(worst_m, fabs(ma - tp.mean[a]));
            if (fabs(ma - tp.mean[a]) > 1e-12) CV_CHECK_DIAG("mean %d: %.17g, want %.17g", a, tp.mean[a], ma);
            for (int b = 0; b < TD; b++) {
                double mb = 0, cab = 0, llt = 0;
                for (int i = 0; i < TN; i++) mb += tmu[i * TD + b] / (double)TN;
                for (int i = 0; i < TN; i++) cab += (tmu[i * TD + a] - ma) * (tmu[i * TD + b] - mb) / (double)TN;
                if (a == b) for (int i = 0; i < TN; i++) cab += exp(2.0 * tls[i * TD + a]) / (double)TN;
                for (int k = 0; k < TD; k++) llt += tp.chol[a * TD + k] * tp.chol[b * TD + k];
                worst_c = fmax(worst_c, fabs(llt - cab));
                if (b > a && tp.chol[a * TD + b] != 0) worst_c = INFINITY;
            }
        }
        float zd[TD];
        if (st == CV_OK) cv_top_prior_draw(&tp, 9, 3, zd);
        for (int a = 0; st == CV_OK && a < TD; a++) {
            double v = tp.mean[a];
            for (int b = 0; b <= a; b++) v += tp.chol[a * TD + b] * cv_rng_normal(9, 3, (uint64_t)b);
            worst_z = fmax(worst_z, fabs(v - zd[a]));
        }
        CV_CHECK_OK(st == CV_OK && worst_m < 1e-12 && worst_c < 1e-12 && worst_z < 1e-5,
                    "top prior of %d maps x %d: mean (err %.1e), L L^T = scatter + mean variance (err %.1e), "
                    "draw = mean + L eps (err %.1e)", TN, TD, worst_m, worst_c, worst_z);
        cv_top_prior_free(&tp);
        float one[2] = { 0.1f, 0.2f }, lone[2] = { 0, 0 };
        st = cv_top_prior_from_moments(one, lone, 1, 2, &tp);
        CV_CHECK_OK(st == CV_ERR_ARG, "a top prior from one map is refused: %s", cv_last_error());

        /* the sampler on the tiny model: z_top = mean (L = 0) */
        cv_graph *gs = NULL;
        cv_model_io ios;
        cv_refplan *rs = NULL;
        cv_sampler *smp = NULL;
        cv_norm nrm;
        memset(&nrm, 0, sizeof nrm);
        nrm.n_chan = 3;
        for (int ch = 0; ch < 3; ch++) { snprintf(nrm.transform[ch], sizeof nrm.transform[ch], "none"); nrm.std[ch] = 1; }
        const int64_t SN = 2;
        cv_model_set_top_input(w.m, 1);
        st = cv_model_build(w.m, CV_MODEL_SAMPLE, SN, 1.0f, 0, &gs, &ios);
        cv_model_set_top_input(w.m, 0);
        const int64_t *zs = st == CV_OK ? cv_graph_value(gs, ios.z_top)->shape : NULL;
        int64_t zd_n = zs ? zs[1] * zs[2] * zs[3] : 0, on = SN * 3 * 8 * 8;
        cv_top_prior fixed = { zd_n, 2, calloc((size_t)zd_n, sizeof(double)), calloc((size_t)(zd_n * zd_n), sizeof(double)) };
        float *out = malloc(on * sizeof *out), *out2 = malloc(on * sizeof *out2);
        for (int64_t j = 0; j < zd_n; j++) fixed.mean[j] = 0.7 * sin(2.1 * j) + 0.2;
        cv_chk_f2d(pf, pd, w.nf);         /* section 3 stepped the reference weights */
        if (st == CV_OK) st = cv_refplan_new(gs, &rs);
        if (st == CV_OK) st = cv_model_upload(w.m, CV_ARENA_PARAMS, pf);
        if (st == CV_OK) st = cv_sampler_new(ctx, w.m, &nrm, (int)SN, 1.0f, 0, &fixed, &smp);
        if (st == CV_OK) st = cv_sampler_run(smp, 5, 0, (int)SN, out);
        double e7 = INFINITY, dz = 0;
        if (st == CV_OK) {
            for (int64_t i = 0; i < SN; i++)
                for (int64_t j = 0; j < zd_n; j++) cv_refplan_value(rs, ios.z_top)[i * zd_n + j] = (float)fixed.mean[j];
            cv_refplan_forward(rs, w.rp, 5, 0);
            e7 = cv_chk_nmse(c, "top-given sample", out, cv_refplan_value(rs, ios.mu), on, 5);
            for (int64_t j = 0; j < zd_n; j++) fixed.mean[j] += 1.0;      /* another top z changes the maps */
            st = cv_sampler_run(smp, 5, 0, (int)SN, out2);
            for (int64_t i = 0; i < on; i++) dz = fmax(dz, fabs(out2[i] - out[i]));
        }
        if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
        CV_CHECK_OK(st == CV_OK && e7 < 1e-8 && dz > 1e-3,
                    "a sampler with a given top z (%lld numbers) matches the reference path on that z (nmse %.2e), "
                    "and another top z moves the maps (by up to %.3g)", (long long)zd_n, e7, dz);
        cv_sampler_free(smp);
        cv_refplan_free(rs);
        cv_graph_free(gs);
        free(fixed.mean); free(fixed.chol); free(out); free(out2);
    }

    cv_plan_free(p);
    cv_refplan_free(w.ref);
    cv_graph_free(w.g);
    cv_model_free(w.m);
    cv_cfg_free(cfg);
    free(pf); free(gf); free(pd); free(gd); free(w.rp); free(w.rdp); free(x); free(stats);
    cv_ctx_free(ctx);
    return tap_end();
}
