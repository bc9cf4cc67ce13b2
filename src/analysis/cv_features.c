/* cv_features.c -- classical summary statistics per map (see
 * cv_features.h): binned log auto-spectra, cross-correlation coefficients
 * and pixel moments of the transformed fields.  The spectra come from
 * cv_pk (device) or its double reference; everything after them is host
 * code shared by both paths, so the two can only differ by the spectra's
 * rounding.  Invariant: bin edges depend only on (N, n_bins). */
#include "analysis/cv_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cv_features {
    cv_pk     *pk;          /* NULL for a reference-only object */
    cv_pk_geom *geom;       /* owned when pk is NULL */
    int        n, n_chan, n_bins, dim, log10;
    int32_t   *bin_of;      /* (n_shell) */
    int32_t   *edge;        /* (n_bins + 1) shell-index edges */
    float     *spec;        /* (batch, n_spec, n_shell) scratch */
    int        batch;
};

/* Edges in shell index, log-spaced from 1 to N/2 + 1 (exclusive), each at
 * least one above the last; returns the number of bins. */
static int bin_edges(int n, int n_bins, int32_t *edge) {
    int top = n / 2 + 1, nb = 0;
    edge[0] = 1;
    for (int i = 1; i <= n_bins; i++) {
        int e = (int)lround(exp((double)i / n_bins * log((double)top)));
        if (e <= edge[nb]) e = edge[nb] + 1;
        if (i == n_bins || e > top) e = top;
        if (e <= edge[nb]) break;
        edge[++nb] = e;
        if (e == top) break;
    }
    return nb;
}

int cv_features_bins(const cv_pk_geom *g, int n_bins, int32_t *bin_of) {
    int32_t edge[257];
    if (n_bins > 256) n_bins = 256;
    int nb = bin_edges(g->n, n_bins, edge);
    for (int s = 0; s < g->n_shell; s++) {
        bin_of[s] = -1;
        for (int b = 0; b < nb; b++)
            if (g->shell[s] >= edge[b] && g->shell[s] < edge[b + 1]) bin_of[s] = b;
    }
    return nb;
}

int cv_features_dim(int n_chan, int n_bins) {
    return cv_pk_n_spec(n_chan) * n_bins + CV_FEATURES_N_MOMENTS * n_chan;
}

const char *cv_features_name(const cv_pk_geom *g, int n_bins, int n_chan, const char *const *chan_names, int i,
                             char *buf, size_t n) {
    int32_t edge[257];
    if (n_bins > 256) n_bins = 256;
    int nb = bin_edges(g->n, n_bins, edge);
    double kf = 2 * 3.14159265358979323846 / g->box;
    int S = cv_pk_n_spec(n_chan);
    char sn[96];
    if (i < S * nb) {
        int s = i / nb, b = i % nb;
        cv_pk_spec_name(n_chan, s, chan_names, sn, sizeof sn);
        snprintf(buf, n, "%s %s k%.2f-%.2f", s < n_chan ? "logP" : "r", sn, kf * edge[b], kf * edge[b + 1]);
    } else {
        static const char *const mom[CV_FEATURES_N_MOMENTS] = { "mean", "std", "skew", "kurt" };
        int j = i - S * nb;
        snprintf(buf, n, "%s %s", mom[j % CV_FEATURES_N_MOMENTS], chan_names[j / CV_FEATURES_N_MOMENTS]);
    }
    return buf;
}

static cv_status plan_common(int n, double box, int n_chan, const char *const *transforms, int n_bins, cv_features *f) {
    if (n < 4 || n_chan < 1 || !(box > 0))
        return cv_error(CV_ERR_ARG, "features: maps of %d x %d pixels, %d channels, box %g: need >= 4 pixels, >= 1 channel, box > 0",
                        n, n, n_chan, box);
    int nlog = 0;
    for (int c = 0; c < n_chan; c++) {
        const char *t = transforms ? transforms[c] : "log10";
        if (!strcmp(t, "log10")) nlog++;
        else if (strcmp(t, "none"))
            return cv_error(CV_ERR_ARG, "features: channel %d: transform '%s' is not log10 or none", c, t);
    }
    if (nlog != 0 && nlog != n_chan)
        return cv_error(CV_ERR_ARG, "features: channels mix log10 and none transforms; the spectra need one");
    f->n = n;
    f->n_chan = n_chan;
    f->log10 = nlog == n_chan;
    if (n_bins <= 0) n_bins = CV_FEATURES_BINS_DEFAULT;
    const cv_pk_geom *g = f->pk ? cv_pk_geometry(f->pk) : f->geom;
    f->bin_of = malloc((size_t)g->n_shell * sizeof *f->bin_of);
    f->edge = malloc(258 * sizeof *f->edge);
    if (!f->bin_of || !f->edge) return cv_error(CV_ERR_NOMEM, "features: bins");
    f->n_bins = cv_features_bins(g, n_bins, f->bin_of);
    bin_edges(n, n_bins > 256 ? 256 : n_bins, f->edge);
    f->dim = cv_features_dim(n_chan, f->n_bins);
    return CV_OK;
}

cv_status cv_features_new(cv_ctx *ctx, int n, double box, int n_chan, const char *const *transforms, int n_bins,
                          cv_features **out) {
    *out = NULL;
    cv_features *f = calloc(1, sizeof *f);
    if (!f) return cv_error(CV_ERR_NOMEM, "features");
    cv_status st = CV_OK;
    int nlog = 0;
    for (int c = 0; c < n_chan; c++) nlog += !transforms || !strcmp(transforms[c], "log10");
    cv_pk_opts po = cv_pk_opts_default();
    po.n_chan = n_chan;
    po.mode = nlog == n_chan ? CV_PK_DELTA_LOG10 : CV_PK_DELTA_LINEAR;
    if (ctx) {
        if ((st = cv_pk_new(ctx, n, box, &po, &f->pk)) != CV_OK) goto fail;
        f->batch = cv_pk_batch(f->pk);
    } else {
        if ((st = cv_pk_geom_new(n, box, &f->geom)) != CV_OK) goto fail;
        f->batch = 1;
    }
    if ((st = plan_common(n, box, n_chan, transforms, n_bins, f)) != CV_OK) goto fail;
    const cv_pk_geom *g = cv_features_geometry(f);
    f->spec = malloc((size_t)f->batch * cv_pk_n_spec(n_chan) * g->n_shell * sizeof *f->spec);
    if (!f->spec) { st = cv_error(CV_ERR_NOMEM, "features: spectra"); goto fail; }
    *out = f;
    return CV_OK;
fail:
    cv_features_free(f);
    return st;
}

void cv_features_free(cv_features *f) {
    if (!f) return;
    cv_pk_free(f->pk);
    cv_pk_geom_free(f->geom);
    free(f->bin_of);
    free(f->edge);
    free(f->spec);
    free(f);
}

int cv_features_n_dim(const cv_features *f) { return f->dim; }
int cv_features_n_bins(const cv_features *f) { return f->n_bins; }
const cv_pk_geom *cv_features_geometry(const cv_features *f) { return f->pk ? cv_pk_geometry(f->pk) : f->geom; }

/* Moments of one map's transformed channels into mom (C x 4). */
static cv_status moments(const cv_features *f, const float *map, int64_t which, double *mom) {
    size_t np = (size_t)f->n * f->n;
    for (int c = 0; c < f->n_chan; c++) {
        const float *x = map + c * np;
        double s = 0;
        for (size_t i = 0; i < np; i++) {
            double v = x[i];
            if (f->log10) {
                if (!(v > 0) || !isfinite(v))
                    return cv_error(CV_ERR_NUMERIC, "features: map %lld, channel %d, pixel %zu: value %g has no log10",
                                    (long long)which, c, i, v);
                v = log10(v);
            } else if (!isfinite(v))
                return cv_error(CV_ERR_NUMERIC, "features: map %lld, channel %d, pixel %zu: value %g is not finite",
                                (long long)which, c, i, v);
            s += v;
        }
        double mu = s / np, m2 = 0, m3 = 0, m4 = 0;
        for (size_t i = 0; i < np; i++) {
            double d = (f->log10 ? log10(x[i]) : x[i]) - mu, d2 = d * d;
            m2 += d2; m3 += d2 * d; m4 += d2 * d2;
        }
        m2 /= np; m3 /= np; m4 /= np;
        if (!(m2 > 1e-24 * (1 + mu * mu)))   /* rounding of a constant channel: std below 1e-12 */
            return cv_error(CV_ERR_NUMERIC, "features: map %lld, channel %d is constant: no spectrum or shape", (long long)which, c);
        double *o = mom + c * CV_FEATURES_N_MOMENTS;
        o[0] = mu;
        o[1] = sqrt(m2);
        o[2] = m3 / (m2 * sqrt(m2));
        o[3] = m4 / (m2 * m2) - 3;
    }
    return CV_OK;
}

/* Features of one map from its spectra (n_spec, n_shell) and moments. */
static void assemble(const cv_features *f, const cv_pk_geom *g, const double *spec, const double *mom, double *out) {
    int C = f->n_chan, S = cv_pk_n_spec(C), NB = f->n_bins;
    double pb[(8 * 9 / 2) * 256];   /* (S, NB); S <= 36 checked by the callers */
    double wsum[256];
    memset(pb, 0, sizeof pb);
    memset(wsum, 0, sizeof wsum);
    for (int sh = 0; sh < g->n_shell; sh++) {
        int b = f->bin_of[sh];
        if (b < 0) continue;
        double w = (double)g->nmodes[sh];
        wsum[b] += w;
        for (int s = 0; s < S; s++) pb[s * NB + b] += w * spec[s * g->n_shell + sh];
    }
    for (int s = 0; s < S; s++)
        for (int b = 0; b < NB; b++) pb[s * NB + b] /= wsum[b] > 0 ? wsum[b] : 1;
    for (int s = 0; s < S; s++) {
        int a, c;
        cv_pk_spec_pair(C, s, &a, &c);
        for (int b = 0; b < NB; b++) {
            double v = pb[s * NB + b];
            if (a == c) out[s * NB + b] = log10(v > 1e-300 ? v : 1e-300);
            else {
                double d = sqrt(pb[a * NB + b] * pb[c * NB + b]);
                out[s * NB + b] = d > 0 ? v / d : 0;
            }
        }
    }
    memcpy(out + S * NB, mom, (size_t)C * CV_FEATURES_N_MOMENTS * sizeof *mom);
}

static cv_status check_chan(const cv_features *f) {
    if (f->n_chan > 8) return cv_error(CV_ERR_ARG, "features: %d channels: at most 8", f->n_chan);
    return CV_OK;
}

cv_status cv_features_compute(cv_features *f, const float *maps, int64_t count, float *out) {
    cv_status st = check_chan(f);
    if (st != CV_OK) return st;
    if (!f->pk) return cv_error(CV_ERR_ARG, "features: no device plan (made without a context)");
    const cv_pk_geom *g = cv_pk_geometry(f->pk);
    int S = cv_pk_n_spec(f->n_chan), NS = g->n_shell;
    size_t msz = (size_t)f->n_chan * f->n * f->n;
    double *spec = malloc(((size_t)S * NS + (size_t)f->batch * 8 * CV_FEATURES_N_MOMENTS + f->dim) * sizeof *spec);
    if (!spec) return cv_error(CV_ERR_NOMEM, "features: spectra");
    double *mom = spec + (size_t)S * NS, *feat = mom + (size_t)f->batch * 8 * CV_FEATURES_N_MOMENTS;
    for (int64_t m0 = 0; m0 < count && st == CV_OK; m0 += f->batch) {
        int b = (int)(count - m0 < f->batch ? count - m0 : f->batch);
        for (int i = 0; i < b && st == CV_OK; i++)   /* moments first: they name a bad pixel */
            st = moments(f, maps + (m0 + i) * msz, m0 + i, mom + (size_t)i * f->n_chan * CV_FEATURES_N_MOMENTS);
        if (st == CV_OK) st = cv_pk_compute(f->pk, maps + m0 * msz, b, f->spec);
        for (int i = 0; i < b && st == CV_OK; i++) {
            for (int k = 0; k < S * NS; k++) spec[k] = f->spec[(size_t)i * S * NS + k];
            assemble(f, g, spec, mom + (size_t)i * f->n_chan * CV_FEATURES_N_MOMENTS, feat);
            for (int k = 0; k < f->dim; k++) out[(m0 + i) * f->dim + k] = (float)feat[k];
        }
    }
    free(spec);
    return st;
}

cv_status cv_features_compute_ref(const cv_features *f, const float *maps, int64_t count, double *out) {
    cv_status st = check_chan(f);
    if (st != CV_OK) return st;
    const cv_pk_geom *g = cv_features_geometry(f);
    int S = cv_pk_n_spec(f->n_chan), NS = g->n_shell;
    size_t msz = (size_t)f->n_chan * f->n * f->n;
    double *spec = malloc((size_t)S * NS * sizeof *spec), mom[8 * CV_FEATURES_N_MOMENTS];
    if (!spec) return cv_error(CV_ERR_NOMEM, "features: spectra");
    for (int64_t m = 0; m < count && st == CV_OK; m++) {
        if ((st = moments(f, maps + m * msz, m, mom)) != CV_OK) break;
        if ((st = cv_pk_compute_ref(g, f->n_chan, f->log10 ? CV_PK_DELTA_LOG10 : CV_PK_DELTA_LINEAR, maps + m * msz, 1, spec)) != CV_OK)
            break;
        assemble(f, g, spec, mom, out + m * f->dim);
    }
    free(spec);
    return st;
}

/* Every map of ds in chunks through fn(fctx, maps, count, out) into lat->z
 * (lat->n_dim numbers a map), an error naming the file and first map of
 * the chunk. */
typedef cv_status (*chunk_fn)(void *fctx, const float *maps, int64_t count, float *out);
static cv_status over_chunks(cv_dataset *ds, cv_latent *lat, int64_t chunk, chunk_fn fn, void *fctx,
                             void (*progress)(void *user, int64_t done), void *user) {
    int64_t n = cv_dataset_n_maps(ds);
    size_t msz = (size_t)cv_dataset_n_chan(ds) * cv_dataset_height(ds) * cv_dataset_width(ds);
    float *maps = malloc((size_t)chunk * msz * sizeof *maps);
    if (!maps) return cv_error(CV_ERR_NOMEM, "%s: maps", cv_dataset_path(ds));
    cv_status st = CV_OK;
    for (int64_t m0 = 0; m0 < n && st == CV_OK; m0 += chunk) {
        int64_t b = n - m0 < chunk ? n - m0 : chunk;
        if ((st = cv_dataset_read(ds, m0, b, maps)) != CV_OK) break;
        if ((st = fn(fctx, maps, b, lat->z + m0 * lat->n_dim)) != CV_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", cv_last_error());
            st = cv_error(st, "%s: maps from %lld: %s", cv_dataset_path(ds), (long long)m0, msg);
            break;
        }
        if (progress) progress(user, m0 + b);
    }
    free(maps);
    return st;
}

static cv_status features_chunk(void *f, const float *maps, int64_t count, float *out) {
    return cv_features_compute(f, maps, count, out);
}

cv_status cv_features_dataset(cv_ctx *ctx, cv_dataset *ds, int n_bins, cv_latent **out,
                              void (*progress)(void *user, int64_t done), void *user) {
    *out = NULL;
    int C = cv_dataset_n_chan(ds), H = cv_dataset_height(ds), W = cv_dataset_width(ds);
    if (H != W) return cv_error(CV_ERR_ARG, "%s: maps of %d x %d: the spectra need square maps", cv_dataset_path(ds), H, W);
    const char *tr[8];
    if (C > 8) return cv_error(CV_ERR_ARG, "%s: %d channels: features take at most 8", cv_dataset_path(ds), C);
    for (int c = 0; c < C; c++) tr[c] = cv_dataset_chan_transform(ds, c);
    cv_features *f = NULL;
    cv_status st = cv_features_new(ctx, H, cv_dataset_box_size(ds), C, tr, n_bins, &f);
    if (st != CV_OK) return st;
    cv_latent *lat = NULL;
    if ((st = cv_latent_new_for(ds, f->dim, &lat)) != CV_OK) goto done;
    snprintf(lat->model, sizeof lat->model,
             "classical: log10 P (%d auto x %d k-bins), r (%d cross x %d), mean/std/skew/kurt of %s (%d channels)",
             C, f->n_bins, cv_pk_n_spec(C) - C, f->n_bins, f->log10 ? "log10 fields" : "fields", C);
    st = over_chunks(ds, lat, 64, features_chunk, f, progress, user);
done:
    cv_features_free(f);
    if (st != CV_OK) cv_latent_free(lat);
    else *out = lat;
    return st;
}

/* ------------------------------------------------------------ thumbnail */

cv_status cv_features_coarse(const float *maps, int64_t count, int C, int H, int W, const int *log10_chan, int r,
                             float *out) {
    if (r < 1 || H % r || W % r)
        return cv_error(CV_ERR_ARG, "thumbnail: maps of %d x %d do not split into %d x %d equal blocks", H, W, r, r);
    int bh = H / r, bw = W / r, D = C * r * r;
    double *acc = malloc((size_t)r * r * sizeof *acc);
    if (!acc) return cv_error(CV_ERR_NOMEM, "thumbnail: sums");
    for (int64_t m = 0; m < count; m++)
        for (int c = 0; c < C; c++) {
            const float *x = maps + ((size_t)m * C + c) * H * W;
            for (int b = 0; b < r * r; b++) acc[b] = 0;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    double v = x[(size_t)y * W + xx];
                    if (log10_chan[c] && !(v > 0 && isfinite(v))) {
                        free(acc);
                        return cv_error(CV_ERR_NUMERIC, "thumbnail: map %lld, channel %d, pixel %d: value %g has no log10",
                                        (long long)m, c, y * W + xx, v);
                    }
                    if (!isfinite(v)) {
                        free(acc);
                        return cv_error(CV_ERR_NUMERIC, "thumbnail: map %lld, channel %d, pixel %d: value %g is not finite",
                                        (long long)m, c, y * W + xx, v);
                    }
                    acc[(y / bh) * r + xx / bw] += log10_chan[c] ? log10(v) : v;
                }
            for (int b = 0; b < r * r; b++) out[(size_t)m * D + c * r * r + b] = (float)(acc[b] / ((double)bh * bw));
        }
    free(acc);
    return CV_OK;
}

const char *cv_features_coarse_name(int n_chan, const char *const *chan_names, int r, int i, char *buf, size_t n) {
    int c = i / (r * r), b = i % (r * r);
    if (i < 0 || c >= n_chan) snprintf(buf, n, "?");
    else snprintf(buf, n, "%s block %d,%d", chan_names && chan_names[c] ? chan_names[c] : "channel", b / r, b % r);
    return buf;
}

typedef struct coarse_args { int C, H, W; const int *lg; int r; } coarse_args;
static cv_status coarse_chunk(void *p, const float *maps, int64_t count, float *out) {
    const coarse_args *a = p;
    return cv_features_coarse(maps, count, a->C, a->H, a->W, a->lg, a->r, out);
}

cv_status cv_features_coarse_dataset(cv_dataset *ds, int r, cv_latent **out,
                                     void (*progress)(void *user, int64_t done), void *user) {
    *out = NULL;
    int C = cv_dataset_n_chan(ds), H = cv_dataset_height(ds), W = cv_dataset_width(ds);
    if (r < 1 || H % r || W % r)
        return cv_error(CV_ERR_ARG, "%s: maps of %d x %d do not split into %d x %d equal blocks", cv_dataset_path(ds), H, W,
                        r, r);
    int *lg = malloc((size_t)C * sizeof *lg);
    if (!lg) return cv_error(CV_ERR_NOMEM, "thumbnail: channels");
    int any_log = 0;
    for (int c = 0; c < C; c++) any_log |= lg[c] = !strcmp(cv_dataset_chan_transform(ds, c), "log10");
    cv_latent *lat = NULL;
    cv_status st = cv_latent_new_for(ds, C * r * r, &lat);
    if (st != CV_OK) goto done;
    snprintf(lat->model, sizeof lat->model, "thumbnail: mean of each %s over %d x %d blocks (%d channels)",
             any_log ? "transformed (log10) field" : "field", r, r, C);
    coarse_args a = { C, H, W, lg, r };
    st = over_chunks(ds, lat, 256, coarse_chunk, &a, progress, user);
done:
    free(lg);
    if (st != CV_OK) cv_latent_free(lat);
    else *out = lat;
    return st;
}
