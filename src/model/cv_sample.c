/* cv_sample.c -- the [data] normalisation a model carries, and generation
 * from the prior.  Invariant: a model's output is in model space
 * ((transform(x) - mean) / std per channel); only cv_norm_to_physical and
 * cv_norm_to_model cross between the two. */
#include "model/cv_sample.h"
#include "graph/cv_plan.h"
#include "runtime/cv_rng.h"
#include "model/cv_ckpt.h"

#include <sys/stat.h>

#include <math.h>
#include <string.h>

cv_status cv_norm_from_dataset(const cv_dataset *ds, cv_norm *n) {
    memset(n, 0, sizeof *n);
    n->n_chan = cv_dataset_n_chan(ds);
    if (n->n_chan > CV_MAX_CHAN) return cv_error(CV_ERR_FORMAT, "%s: %d channels, at most %d", cv_dataset_path(ds), n->n_chan, CV_MAX_CHAN);
    for (int c = 0; c < n->n_chan; c++) {
        snprintf(n->name[c], sizeof n->name[c], "%s", cv_dataset_chan_name(ds, c));
        snprintf(n->units[c], sizeof n->units[c], "%s", cv_dataset_chan_units(ds, c));
        snprintf(n->transform[c], sizeof n->transform[c], "%s", cv_dataset_chan_transform(ds, c));
        n->mean[c] = cv_dataset_norm_mean(ds, c);
        n->std[c] = cv_dataset_norm_std(ds, c);
        if (!(n->std[c] > 0) || !isfinite(n->mean[c]))
            return cv_error(CV_ERR_FORMAT, "%s: channel %d (%s): normalisation mean %g, std %g", cv_dataset_path(ds), c, n->name[c], n->mean[c], n->std[c]);
        if (strcmp(n->transform[c], "log10") && strcmp(n->transform[c], "none"))
            return cv_error(CV_ERR_FORMAT, "%s: channel %d: unknown transform '%s'", cv_dataset_path(ds), c, n->transform[c]);
    }
    return CV_OK;
}

static void join(char *out, size_t size, int n, const char *(*get)(const cv_norm *, int), const cv_norm *nm) {
    size_t len = strlen(out);
    for (int c = 0; c < n; c++) len += (size_t)snprintf(out + len, size - len, "%s%s", c ? "," : "", get(nm, c));
}
static const char *g_name(const cv_norm *n, int c)  { return n->name[c]; }
static const char *g_tr(const cv_norm *n, int c)    { return n->transform[c]; }

void cv_norm_to_cfg(const cv_norm *n, char *buf, size_t size) {
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, size - len, "\n[data]\nchannels = ");
    join(buf, size, n->n_chan, g_name, n);
    len = strlen(buf);
    len += (size_t)snprintf(buf + len, size - len, "\ntransforms = ");
    join(buf, size, n->n_chan, g_tr, n);
    len = strlen(buf);
    for (int c = 0; c < n->n_chan; c++) {
        len += (size_t)snprintf(buf + len, size - len, "\nmean_%s = %.17g\nstd_%s = %.17g", n->name[c], n->mean[c], n->name[c], n->std[c]);
        if (n->units[c][0]) len += (size_t)snprintf(buf + len, size - len, "\nunits_%s = %s", n->name[c], n->units[c]);
    }
    snprintf(buf + len, size - len, "\n");
}

static int split_list(const char *s, char out[][32], int max) {
    int n = 0;
    while (*s && n < max) {
        size_t k = strcspn(s, ",");
        if (k >= 32) k = 31;
        memcpy(out[n], s, k);
        out[n][k] = '\0';
        n++;
        s += strcspn(s, ",");
        if (*s == ',') s++;
    }
    return n;
}

cv_status cv_norm_read(cv_cfg *cfg, cv_norm *n) {
    cv_status st = CV_OK;
    const char *s;
    char tr[CV_MAX_CHAN][32];
    memset(n, 0, sizeof *n);
    if (!cv_cfg_has(cfg, "data", "channels")) return cv_error(CV_ERR_FORMAT, "model configuration has no [data] channels (not a trained model?)");
    CV_TRY(cv_cfg_str(cfg, "data", "channels", "", &s));
    n->n_chan = split_list(s, n->name, CV_MAX_CHAN);
    CV_TRY(cv_cfg_str(cfg, "data", "transforms", "", &s));
    if (split_list(s, tr, CV_MAX_CHAN) != n->n_chan) return cv_error(CV_ERR_FORMAT, "[data] transforms: one per channel expected");
    for (int c = 0; c < n->n_chan; c++) {
        char key[64];
        snprintf(n->transform[c], sizeof n->transform[c], "%s", tr[c]);
        snprintf(key, sizeof key, "mean_%s", n->name[c]);
        CV_TRY(cv_cfg_double(cfg, "data", key, 0, -1e300, 1e300, &n->mean[c]));
        snprintf(key, sizeof key, "std_%s", n->name[c]);
        CV_TRY(cv_cfg_double(cfg, "data", key, 1, 1e-300, 1e300, &n->std[c]));
        snprintf(key, sizeof key, "units_%s", n->name[c]);
        CV_TRY(cv_cfg_str(cfg, "data", key, "", &s));
        snprintf(n->units[c], sizeof n->units[c], "%s", s);
    }
fail:
    return st;
}

cv_status cv_norm_check_dataset(const cv_norm *n, const cv_model_cfg *mc, const cv_dataset *ds) {
    const char *p = cv_dataset_path(ds);
    if (cv_dataset_n_chan(ds) != mc->channels)
        return cv_error(CV_ERR_FORMAT, "%s: %d channels, but the model has %d", p, cv_dataset_n_chan(ds), mc->channels);
    if (cv_dataset_height(ds) != mc->size || cv_dataset_width(ds) != mc->size)
        return cv_error(CV_ERR_FORMAT, "%s: maps are %dx%d, but the model expects %dx%d (another --preset, or cosmovae-import --downsample)",
                        p, cv_dataset_height(ds), cv_dataset_width(ds), mc->size, mc->size);
    if (n) {
        for (int c = 0; c < n->n_chan; c++)
            if (strcmp(n->name[c], cv_dataset_chan_name(ds, c)))
                return cv_error(CV_ERR_FORMAT, "%s: channel %d is '%s', but the model was trained with '%s'", p, c,
                                cv_dataset_chan_name(ds, c), n->name[c]);
    }
    return CV_OK;
}

void cv_norm_to_physical(const cv_norm *n, float *x, int64_t count, int64_t hw) {
    for (int64_t i = 0; i < count; i++)
        for (int c = 0; c < n->n_chan; c++) {
            float *p = x + (i * n->n_chan + c) * hw;
            int lg = !strcmp(n->transform[c], "log10");
            for (int64_t j = 0; j < hw; j++) {
                double v = p[j] * n->std[c] + n->mean[c];
                p[j] = (float)(lg ? pow(10.0, v) : v);
            }
        }
}

void cv_norm_to_model(const cv_norm *n, float *x, int64_t count, int64_t hw) {
    for (int64_t i = 0; i < count; i++)
        for (int c = 0; c < n->n_chan; c++) {
            float *p = x + (i * n->n_chan + c) * hw;
            int lg = !strcmp(n->transform[c], "log10");
            for (int64_t j = 0; j < hw; j++) {
                double v = lg ? log10((double)p[j]) : p[j];
                p[j] = (float)((v - n->mean[c]) / n->std[c]);
            }
        }
}

/* An inference graph and its plan on the model's weights (sampler, encoder). */
static cv_status infer_open(cv_ctx *ctx, cv_model *m, cv_model_mode mode, int batch, float t, int all_groups,
                            cv_graph **g, cv_plan **p, cv_model_io *io) {
    cv_status st = cv_model_build(m, mode, batch, t, all_groups, g, io);
    if (st == CV_OK) st = cv_plan_new(ctx, *g, cv_model_tensors(m, CV_ARENA_PARAMS), NULL, CV_PLAN_NO_BACKWARD, p);
    return st;
}

static void infer_close(cv_graph *g, cv_plan *p) {
    cv_plan_free(p);
    cv_graph_free(g);
}

struct cv_sampler {
    cv_ctx     *ctx;
    cv_model   *m;
    cv_norm     norm;
    cv_graph   *g;
    cv_plan    *p;
    cv_model_io io;
    int         batch, pixel_noise;
    float       t;
    float      *ls;
    const cv_top_prior *top;      /* borrowed; NULL: the model's prior */
    float      *ztop;             /* (batch, top->dim) */
};

cv_status cv_sampler_new(cv_ctx *ctx, cv_model *m, const cv_norm *norm, int batch, float t, int pixel_noise,
                         const cv_top_prior *top, cv_sampler **out) {
    cv_status st = CV_OK;
    const cv_model_cfg *mc = cv_model_config(m);
    cv_sampler *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) return cv_error(CV_ERR_NOMEM, "out of memory");
    s->ctx = ctx; s->m = m; s->norm = *norm; s->batch = batch < 1 ? 1 : batch; s->t = t; s->pixel_noise = pixel_noise;
    s->top = top;
    cv_model_set_top_input(m, top != NULL);
    st = infer_open(ctx, m, CV_MODEL_SAMPLE, s->batch, t, 0, &s->g, &s->p, &s->io);
    cv_model_set_top_input(m, 0);
    if (st != CV_OK) goto fail;
    if (top) {
        const int64_t *zs = cv_graph_value(s->g, s->io.z_top)->shape;
        if (zs[1] * zs[2] * zs[3] != top->dim) {
            st = cv_error(CV_ERR_ARG, "the fitted top prior has %lld dimensions, the model's top group %lld",
                          (long long)top->dim, (long long)(zs[1] * zs[2] * zs[3]));
            goto fail;
        }
        s->ztop = calloc((size_t)(s->batch * top->dim), sizeof *s->ztop);
        if (!s->ztop) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    }
    if (pixel_noise) {
        s->ls = malloc((size_t)s->batch * mc->channels * mc->size * mc->size * sizeof *s->ls);
        if (!s->ls) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    }
    *out = s;
    return CV_OK;
fail:
    cv_sampler_free(s);
    return st;
}

void cv_sampler_free(cv_sampler *s) {
    if (!s) return;
    infer_close(s->g, s->p);
    free(s->ls);
    free(s->ztop);
    free(s);
}

cv_status cv_sampler_run(cv_sampler *s, uint64_t seed, uint64_t k, int count, float *out) {
    cv_status st = CV_OK;
    const cv_model_cfg *mc = cv_model_config(s->m);
    int64_t msz = (int64_t)mc->channels * mc->size * mc->size;
    CV_ASSERT(count >= 1 && count <= s->batch);
    if (s->top) {         /* rows past count stay 0: their maps are not returned */
        for (int i = 0; i < count; i++)
            cv_top_prior_draw(s->top, seed ^ CV_TOP_PRIOR_STREAM, k * (uint64_t)s->batch + (uint64_t)i, s->ztop + i * s->top->dim);
        CV_TRY(cv_plan_upload(s->p, s->io.z_top, s->ztop));
    }
    CV_TRY(cv_plan_forward(s->p, seed, k));
    cv_tensor mu = cv_plan_value(s->p, s->io.mu);
    mu.shape[0] = count;
    CV_TRY(cv_tensor_download(s->ctx, &mu, out));
    if (s->pixel_noise) {
        cv_tensor lt = cv_plan_value(s->p, s->io.logs);
        lt.shape[0] = count;
        CV_TRY(cv_tensor_download(s->ctx, &lt, s->ls));
        for (int64_t i = 0; i < count * msz; i++) {
            double sg = s->ls[i] > mc->logsig_floor ? s->ls[i] : mc->logsig_floor;
            out[i] += (float)(s->t * exp(sg) * cv_rng_normal(seed ^ 0x5A5A5A5AULL, k * (uint64_t)s->batch + (uint64_t)(i / msz),
                                                             (uint64_t)(i % msz)));
        }
    }
    cv_norm_to_physical(&s->norm, out, count, (int64_t)mc->size * mc->size);
fail:
    return st;
}

cv_status cv_sample_generate(cv_ctx *ctx, cv_model *m, const cv_norm *nrm, int64_t n, float t, uint64_t seed,
                             int batch, int pixel_noise, float *out) {
    const cv_model_cfg *mc = cv_model_config(m);
    int64_t msz = (int64_t)mc->channels * mc->size * mc->size;
    cv_sampler *s = NULL;
    if (batch > n) batch = (int)n;
    cv_status st = cv_sampler_new(ctx, m, nrm, batch, t, pixel_noise, NULL, &s);
    for (int64_t first = 0, k = 0; st == CV_OK && first < n; first += batch, k++)
        st = cv_sampler_run(s, seed, (uint64_t)k, (int)(n - first < batch ? n - first : batch), out + first * msz);
    cv_sampler_free(s);
    return st;
}

cv_status cv_model_load(const char *path, cv_ctx *ctx, int prefer_ema, cv_model **out, cv_norm *norm) {
    cv_status st = CV_OK;
    char file[4200];
    struct stat sb;
    char *text = NULL;
    cv_cfg *cfg = NULL;
    cv_model *m = NULL;
    float *w = NULL;
    cv_ckpt_meta meta;
    cv_model_cfg mc;
    *out = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(file, sizeof file, "%s/checkpoint.nc", path);
    else snprintf(file, sizeof file, "%s", path);
    CV_TRY(cv_ckpt_read_config(file, &text, &meta));
    CV_TRY(cv_cfg_new(&cfg));
    CV_TRY(cv_cfg_parse(cfg, text, file));
    CV_TRY(cv_model_cfg_read(cfg, &mc));
    CV_TRY(cv_norm_read(cfg, norm));
    if (norm->n_chan != mc.channels)
        { st = cv_error(CV_ERR_FORMAT, "%s: [data] lists %d channels, [model] has %d", file, norm->n_chan, mc.channels); goto fail; }
    CV_TRY(cv_model_new(&mc, &m));
    CV_TRY(cv_model_to_device(m, ctx, 0));
    w = malloc((size_t)cv_model_n_floats(m) * sizeof *w);
    if (!w) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    CV_TRY(cv_ckpt_read(file, m, prefer_ema && cv_ckpt_has(file, "ema") ? "ema" : "params", w));
    CV_TRY(cv_model_upload(m, CV_ARENA_PARAMS, w));
    *out = m;
    m = NULL;
fail:
    free(w);
    free(text);
    cv_cfg_free(cfg);
    cv_model_free(m);
    return st;
}

struct cv_encoder {
    cv_ctx     *ctx;
    cv_model   *m;
    cv_norm     norm;
    cv_graph   *g;
    cv_plan    *p;
    cv_model_io io;
    int         batch, all_groups;
    int64_t     dim;
    float      *buf;
    float      *stats;      /* the plan's statistics (cv_encoder_kl), on first use */
};

cv_status cv_encoder_new(cv_ctx *ctx, cv_model *m, const cv_norm *norm, int batch, int all_groups, cv_encoder **out) {
    cv_status st = CV_OK;
    cv_encoder *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e) return cv_error(CV_ERR_NOMEM, "out of memory");
    e->ctx = ctx; e->m = m; e->norm = *norm; e->batch = batch; e->all_groups = all_groups;
    CV_TRY(infer_open(ctx, m, CV_MODEL_ENCODE, batch, 0.0f, all_groups, &e->g, &e->p, &e->io));
    for (int g = 0; g < e->io.n_groups; g++) {
        const int64_t *s = cv_graph_value(e->g, e->io.mq[g])->shape;
        e->dim += s[1] * s[2] * s[3];
    }
    const cv_model_cfg *mc = cv_model_config(m);
    e->buf = malloc((size_t)batch * mc->channels * mc->size * mc->size * sizeof *e->buf);
    if (!e->buf) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    *out = e;
    return CV_OK;
fail:
    cv_encoder_free(e);
    return st;
}

void cv_encoder_free(cv_encoder *e) {
    if (!e) return;
    infer_close(e->g, e->p);
    free(e->buf);
    free(e->stats);
    free(e);
}

int64_t cv_encoder_dim(const cv_encoder *e) { return e->dim; }
int     cv_encoder_n_groups(const cv_encoder *e) { return e->io.n_groups; }
int     cv_encoder_group_res(const cv_encoder *e, int g) { return e->io.group_res[g]; }
int64_t cv_encoder_group_dim(const cv_encoder *e, int g) {
    const int64_t *s = cv_graph_value(e->g, e->io.mq[g])->shape;
    return s[1] * s[2] * s[3];
}

cv_status cv_encoder_kl(cv_encoder *e, int count, double *kl) {
    if (!e->all_groups || e->io.n_groups < 1)
        return cv_error(CV_ERR_ARG, "encoder: the KL needs an all-groups encoder");
    if (!e->stats && !(e->stats = malloc((size_t)cv_plan_n_stats(e->p) * sizeof *e->stats)))
        return cv_error(CV_ERR_NOMEM, "out of memory");
    float *st = e->stats;            /* kept: the diagnosis reads it every batch */
    cv_status s = cv_plan_read_stats(e->p, st);
    const cv_model_cfg *mc = cv_model_config(e->m);
    double per = (double)mc->channels * mc->size * mc->size;     /* the KL stat is nats per dim */
    for (int i = 0; s == CV_OK && i < count; i++)
        for (int g = 0; g < e->io.n_groups; g++) kl[i * e->io.n_groups + g] = st[cv_plan_stat_offset(e->p, e->io.kl[g]) + i] * per;
    return s;
}

cv_status cv_encoder_top_logs(cv_encoder *e, int count, float *out) {
    if (e->io.lsq_top < 0) return cv_error(CV_ERR_ARG, "encoder: no posterior log sigma of the top group");
    cv_tensor t = cv_plan_value(e->p, e->io.lsq_top);
    t.shape[0] = count;
    return cv_tensor_download(e->ctx, &t, out);
}

/* The maps of split `split` of ds (CV_SPLIT_ALL: all), at most max_maps
 * of them evenly spaced (every simulation's share; 0: no limit): *idx
 * (malloc'd) and *n.  CV_ERR_ARG naming the file and `what` for fewer
 * than 2. */
cv_status cv_latent_diag_run(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ds, int split, int64_t max_maps,
                             cv_latent_diag *d) {
    cv_status st = CV_OK;
    memset(d, 0, sizeof *d);
    int64_t *idx = NULL, n_sel;
    enum { BATCH = 8 };
    cv_encoder *e = NULL;
    float *maps = NULL, *z = NULL;
    double *mean = NULL, *m2 = NULL, *kl = NULL;
    CV_TRY(cv_dataset_select(ds, split, max_maps, "diagnose the code", &idx, &n_sel));
    CV_TRY(cv_encoder_new(ctx, m, norm, BATCH, 1, &e));
    const cv_model_cfg *mc = cv_model_config(m);
    size_t msz = (size_t)mc->channels * mc->size * mc->size;
    int64_t D = cv_encoder_dim(e);
    int G = cv_encoder_n_groups(e);
    maps = malloc(BATCH * msz * sizeof *maps);
    z = malloc((size_t)BATCH * D * sizeof *z);
    mean = calloc((size_t)D, sizeof *mean);
    m2 = calloc((size_t)D, sizeof *m2);
    kl = malloc((size_t)BATCH * G * sizeof *kl);
    if (!maps || !z || !mean || !m2 || !kl) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    d->n_groups = G;
    for (int64_t i0 = 0; i0 < n_sel; i0 += BATCH) {
        int cnt = (int)(n_sel - i0 < BATCH ? n_sel - i0 : BATCH);
        for (int i = 0; i < cnt; i++) CV_TRY(cv_dataset_read(ds, idx[i0 + i], 1, maps + i * msz));
        CV_TRY(cv_encoder_run(e, maps, cnt, z));
        CV_TRY(cv_encoder_kl(e, cnt, kl));
        for (int i = 0; i < cnt; i++) {         /* Welford per dimension */
            double w = 1.0 / (double)(i0 + i + 1);
            for (int64_t j = 0; j < D; j++) {
                double x = z[i * D + j], dl = x - mean[j];
                mean[j] += dl * w;
                m2[j] += dl * (x - mean[j]);
            }
            for (int g = 0; g < G; g++) d->kl[g] += kl[i * G + g] / (double)n_sel;
        }
    }
    d->n_maps = n_sel;
    int64_t off = 0;
    for (int g = 0; g < G; g++) {
        d->res[g] = cv_encoder_group_res(e, g);
        d->dim[g] = cv_encoder_group_dim(e, g);
        for (int64_t j = 0; j < d->dim[g]; j++) d->active[g] += m2[off + j] / (double)n_sel > CV_ACTIVE_VAR;
        off += d->dim[g];
    }
fail:
    free(idx); free(maps); free(z); free(mean); free(m2); free(kl);
    cv_encoder_free(e);
    return st;
}

/* ---- a fitted prior for the top group ---------------------------------------- */

void cv_top_prior_free(cv_top_prior *p) {
    if (!p) return;
    free(p->mean);
    free(p->chol);
    memset(p, 0, sizeof *p);
}

cv_status cv_top_prior_from_moments(const float *mu, const float *logs, int64_t n, int64_t D, cv_top_prior *p) {
    memset(p, 0, sizeof *p);
    if (n < 2 || D < 1) return cv_error(CV_ERR_ARG, "top prior: %lld maps of %lld numbers: need 2 or more maps",
                                        (long long)n, (long long)D);
    double *mean = calloc((size_t)D, sizeof *mean), *c = calloc((size_t)(D * D), sizeof *c);
    if (!mean || !c) { free(mean); free(c); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < D; j++) mean[j] += mu[i * D + j] / (double)n;
    double *d = malloc((size_t)D * sizeof *d);
    if (!d) { free(mean); free(c); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    for (int64_t i = 0; i < n; i++) {     /* lower triangle of the scatter, then the mean variance */
        for (int64_t j = 0; j < D; j++) d[j] = mu[i * D + j] - mean[j];
        for (int64_t a = 0; a < D; a++)
            for (int64_t b = 0; b <= a; b++) c[a * D + b] += d[a] * d[b];
        for (int64_t j = 0; j < D; j++) c[j * D + j] += exp(2.0 * (double)logs[i * D + j]);
    }
    free(d);
    for (int64_t a = 0; a < D; a++)
        for (int64_t b = 0; b <= a; b++) c[a * D + b] /= (double)n;
    for (int64_t j = 0; j < D; j++) {     /* Cholesky in place (lower) */
        double v = c[j * D + j];
        for (int64_t k = 0; k < j; k++) v -= c[j * D + k] * c[j * D + k];
        if (!(v > 0) || !isfinite(v)) {
            free(mean); free(c);
            return cv_error(CV_ERR_NUMERIC, "top prior: the covariance of %lld maps is not positive definite at "
                            "dimension %lld (a non-finite posterior?)", (long long)n, (long long)j);
        }
        double l = sqrt(v);
        c[j * D + j] = l;
        for (int64_t i = j + 1; i < D; i++) {
            double w = c[i * D + j];
            for (int64_t k = 0; k < j; k++) w -= c[i * D + k] * c[j * D + k];
            c[i * D + j] = w / l;
        }
        for (int64_t k = j + 1; k < D; k++) c[j * D + k] = 0;
    }
    p->dim = D; p->n_maps = n; p->mean = mean; p->chol = c;
    return CV_OK;
}

void cv_top_prior_draw(const cv_top_prior *p, uint64_t seed, uint64_t map, float *z) {
    const int64_t D = p->dim;
    for (int64_t j = 0; j < D; j++) z[j] = cv_rng_normal(seed, map, (uint64_t)j);
    for (int64_t a = D - 1; a >= 0; a--) {      /* in place from the last row: z[b <= a] still holds eps_b */
        double v = p->mean[a];
        for (int64_t b = 0; b <= a; b++) v += p->chol[a * D + b] * z[b];
        z[a] = (float)v;
    }
}

cv_status cv_top_prior_fit(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ds, int split, int64_t max_maps,
                           cv_top_prior *p) {
    cv_status st = CV_OK;
    memset(p, 0, sizeof *p);
    int64_t *idx = NULL, n_sel;
    enum { BATCH = 8 };
    cv_encoder *e = NULL;
    float *maps = NULL, *mu = NULL, *ls = NULL;
    CV_TRY(cv_dataset_select(ds, split, max_maps, "fit the top prior", &idx, &n_sel));
    CV_TRY(cv_encoder_new(ctx, m, norm, BATCH, 0, &e));
    const cv_model_cfg *mc = cv_model_config(m);
    size_t msz = (size_t)mc->channels * mc->size * mc->size;
    int64_t D = cv_encoder_dim(e);
    maps = malloc(BATCH * msz * sizeof *maps);
    mu = malloc((size_t)(n_sel * D) * sizeof *mu);
    ls = malloc((size_t)(n_sel * D) * sizeof *ls);
    if (!maps || !mu || !ls) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (int64_t i0 = 0; i0 < n_sel; i0 += BATCH) {
        int cnt = (int)(n_sel - i0 < BATCH ? n_sel - i0 : BATCH);
        for (int i = 0; i < cnt; i++) CV_TRY(cv_dataset_read(ds, idx[i0 + i], 1, maps + i * msz));
        CV_TRY(cv_encoder_run(e, maps, cnt, mu + i0 * D));
        CV_TRY(cv_encoder_top_logs(e, cnt, ls + i0 * D));
    }
    st = cv_top_prior_from_moments(mu, ls, n_sel, D, p);
fail:
    free(idx); free(maps); free(mu); free(ls);
    cv_encoder_free(e);
    return st;
}

void cv_latent_pool(const float *z, int64_t n, int n_groups, const int64_t *dims, int zdim, float *out) {
    int64_t din = 0;
    for (int g = 0; g < n_groups; g++) din += dims[g];
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z + i * din;
        float *oi = out + i * 2 * zdim * n_groups;
        for (int g = 0; g < n_groups; g++) {
            int64_t sp = dims[g] / zdim;
            for (int c = 0; c < zdim; c++) {
                double m = 0, q = 0;
                for (int64_t k = 0; k < sp; k++) m += zi[c * sp + k];
                m /= (double)sp;
                for (int64_t k = 0; k < sp; k++) q += (zi[c * sp + k] - m) * (zi[c * sp + k] - m);
                oi[g * 2 * zdim + c] = (float)m;
                oi[g * 2 * zdim + zdim + c] = (float)sqrt(q / (double)sp);
            }
            zi += dims[g];
        }
    }
}

int cv_latent_diag_collapsed(const cv_latent_diag *d) { return d->n_groups > 0 && 2 * d->active[0] < d->dim[0]; }

void cv_latent_diag_print(FILE *f, const cv_latent_diag *d, const char *prefix, int table) {
    if (table) fprintf(f, "%slatent code over %lld maps (posterior means; active: variance over maps > %g):\n", prefix,
            (long long)d->n_maps, CV_ACTIVE_VAR);
    if (table) fprintf(f, "%s  %-6s %-6s %9s %16s %s\n", prefix, "group", "res", "numbers", "active", "KL nats/map");
    for (int g = 0; table && g < d->n_groups; g++) {
        char res[24];
        snprintf(res, sizeof res, "%dx%d", d->res[g], d->res[g]);
        fprintf(f, "%s  %-6d %-6s %9lld %8lld (%3.0f%%) %11.1f%s\n", prefix, g, res, (long long)d->dim[g],
                (long long)d->active[g], 100.0 * d->active[g] / (double)d->dim[g], d->kl[g],
                g == 0 ? "   <- the code (probed)" : "");
    }
    if (cv_latent_diag_collapsed(d))
        fprintf(f, "%swarning: the probed group (%dx%d, %lld numbers) is collapsed: %lld of %lld dimensions active, "
                "KL %.1f nats per map: its code says little about the maps (doc/science.md)\n", prefix, d->res[0], d->res[0],
                (long long)d->dim[0], (long long)d->active[0], (long long)d->dim[0], d->kl[0]);
}

cv_status cv_encoder_run(cv_encoder *e, const float *maps, int count, float *out) {
    cv_status st = CV_OK;
    const cv_model_cfg *mc = cv_model_config(e->m);
    int64_t msz = (int64_t)mc->channels * mc->size * mc->size;
    CV_ASSERT(count >= 1 && count <= e->batch);
    memcpy(e->buf, maps, (size_t)(count * msz) * sizeof *e->buf);
    memset(e->buf + count * msz, 0, (size_t)((e->batch - count) * msz) * sizeof *e->buf);
    cv_norm_to_model(&e->norm, e->buf, count, (int64_t)mc->size * mc->size);
    for (int64_t i = 0; i < count * msz; i++)
        if (!isfinite(e->buf[i]))
            return cv_error(CV_ERR_NUMERIC, "map %lld of the batch: value %lld is not positive and finite, cannot take log10",
                            (long long)(i / msz), (long long)(i % msz));
    CV_TRY(cv_plan_upload(e->p, e->io.x, e->buf));
    CV_TRY(cv_plan_forward(e->p, 0, 0));
    int64_t off = 0;
    float *tmp = NULL;
    for (int g = 0; g < e->io.n_groups; g++) {
        cv_tensor t = cv_plan_value(e->p, e->io.mq[g]);
        int64_t per = t.shape[1] * t.shape[2] * t.shape[3];
        t.shape[0] = count;
        tmp = malloc((size_t)(count * per) * sizeof *tmp);
        if (!tmp) return cv_error(CV_ERR_NOMEM, "out of memory");
        st = cv_tensor_download(e->ctx, &t, tmp);
        if (st == CV_OK)
            for (int i = 0; i < count; i++) memcpy(out + i * e->dim + off, tmp + i * per, (size_t)per * sizeof *tmp);
        free(tmp);
        if (st != CV_OK) return st;
        off += per;
    }
fail:
    return st;
}
