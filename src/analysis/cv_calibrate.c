/* cv_calibrate.c -- prior temperatures per latent resolution matched to the
 * reference maps' power (cv_calibrate.h).
 * Invariant: on an error the model's temperatures are what they were. */
#include "analysis/cv_calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cv_calib_opts cv_calib_opts_default(void) {
    cv_calib_opts o;
    memset(&o, 0, sizeof o);
    o.n_gen = 256; o.n_ref = 2000; o.batch = 16; o.seed = 1; o.iters = 5; o.tol = 0.01; o.objective = CV_CALIB_BANDS; o.t_lo = 0.05; o.t_hi = 20.0;
    return o;
}

typedef struct calib {
    cv_ctx *ctx;
    cv_model *m;
    const cv_norm *norm;
    const cv_calib_opts *o;
    cv_pk *pk;
    int C, S, n_spec, n_shell;
    float *maps, *spec;        /* (chunk, C, S, S), (chunk, n_spec, n_shell) */
    int64_t chunk;
    double *ref, *gen;         /* mean spectra (n_spec, n_shell) */
} calib;

/* Mean spectra of `count` maps in c->maps into out, accumulated by stats. */
static cv_status add_spectra(calib *c, int64_t count, cv_pk_stats *stats) {
    cv_status st = cv_pk_compute(c->pk, c->maps, count, c->spec);
    if (st == CV_OK) cv_pk_stats_add(stats, c->spec, count);
    return st;
}

static cv_status ref_mean(calib *c, cv_dataset *ds, int split) {
    int64_t have = cv_dataset_split_count(ds, split);
    if (have < 2)
        return cv_error(CV_ERR_ARG, "%s: the %s split has %lld maps: at least 2 are needed as the reference", cv_dataset_path(ds),
                        split == CV_SPLIT_VALID ? "valid" : split == CV_SPLIT_TRAIN ? "train" :
                        split == CV_SPLIT_TEST ? "test" : "whole (every map)", (long long)have);
    int64_t *idx = NULL, n = 0;
    cv_status st = cv_dataset_select(ds, split, c->o->n_ref, "calibrate against", &idx, &n);
    if (st != CV_OK) return st;
    cv_pk_stats stats;
    if ((st = cv_pk_stats_init(&stats, c->n_spec, c->n_shell)) != CV_OK) { free(idx); return st; }
    size_t msz = (size_t)c->C * c->S * c->S;
    int64_t in_chunk = 0;
    for (int64_t j = 0; j < n && st == CV_OK; j++) {
        if ((st = cv_dataset_read(ds, idx[j], 1, c->maps + in_chunk * msz)) != CV_OK) break;
        if (++in_chunk == c->chunk || j == n - 1) { st = add_spectra(c, in_chunk, &stats); in_chunk = 0; }
    }
    if (st == CV_OK) memcpy(c->ref, stats.mean, (size_t)c->n_spec * c->n_shell * sizeof *c->ref);
    cv_pk_stats_free(&stats);
    free(idx);
    return st;
}

/* Mean spectra of o->n_gen maps drawn with the model's present temperatures. */
static cv_status gen_mean(calib *c) {
    const cv_calib_opts *o = c->o;
    cv_sampler *s = NULL;
    int batch = (int)(o->batch < o->n_gen ? o->batch : o->n_gen);
    cv_status st = cv_sampler_new(c->ctx, c->m, c->norm, batch, 1.0f, o->pixel_noise, o->top, &s);
    if (st != CV_OK) return st;
    cv_pk_stats stats;
    if ((st = cv_pk_stats_init(&stats, c->n_spec, c->n_shell)) != CV_OK) { cv_sampler_free(s); return st; }
    size_t msz = (size_t)c->C * c->S * c->S;
    for (int64_t first = 0; first < o->n_gen && st == CV_OK;) {
        /* fill a chunk of whole batches (batch k always draws noise (seed, k)) */
        int64_t in_chunk = 0;
        while (st == CV_OK && first < o->n_gen && in_chunk + batch <= c->chunk) {
            int cnt = (int)(o->n_gen - first < batch ? o->n_gen - first : batch);
            st = cv_sampler_run(s, o->seed, (uint64_t)(first / batch), cnt, c->maps + in_chunk * msz);
            first += cnt;
            in_chunk += cnt;
        }
        if (st == CV_OK) st = add_spectra(c, in_chunk, &stats);
    }
    if (st == CV_OK) memcpy(c->gen, stats.mean, (size_t)c->n_spec * c->n_shell * sizeof *c->gen);
    cv_pk_stats_free(&stats);
    cv_sampler_free(s);
    return st;
}

/* log(P_gen / P_ref) of every auto-spectrum at every shell with index in
 * [lo, hi] into out (NULL: count only; a shell without power gives 0);
 * returns how many. */
static int log_ratios(const calib *c, int lo, int hi, double *out) {
    const cv_pk_geom *g = cv_pk_geometry(c->pk);
    int i = 0;
    for (int sp = 0; sp < c->n_spec; sp++) {
        int a, b;
        cv_pk_spec_pair(c->C, sp, &a, &b);
        if (a != b) continue;
        for (int k = 0; k < c->n_shell; k++) {
            if (g->shell[k] < lo || g->shell[k] > hi) continue;
            double r = c->ref[sp * c->n_shell + k], q = c->gen[sp * c->n_shell + k];
            if (out) out[i] = r > 0 && q > 0 ? log(q / r) : 0;
            i++;
        }
    }
    return i;
}

/* Their mean over a band, every shell counted once (mode weights would let
 * the many modes of a band's last shells outvote its first). */
static double band_log_ratio(const calib *c, int lo, int hi, double *scratch) {
    int n = log_ratios(c, lo, hi, scratch);
    double s = 0;
    for (int i = 0; i < n; i++) s += scratch[i];
    return n ? s / n : 0;
}

/* Set exp(x[b]) at every band's resolution, draw, and F[b] = the band's
 * mean log ratio; R the residuals the method drives to zero (F itself, or
 * every auto-spectrum's log ratio at every calibrated shell), with room for
 * the log ratios of all the bands' shells (the bands' scratch). */
typedef struct bands {
    calib *c;
    int n, res[CV_MAX_STAGES], lo[CV_MAX_STAGES], hi[CV_MAX_STAGES];
    int n_res;                 /* residuals */
    int done, total;
    void (*progress)(void *user, int done, int total);
    void *user;
} bands;

/* The residuals of the fit: the band means, or every shell of the bands. */
static int n_residuals(const bands *bd) {
    return bd->c->o->objective == CV_CALIB_SHELLS ? log_ratios(bd->c, bd->lo[0], bd->hi[bd->n - 1], NULL) : bd->n;
}

static cv_status eval_bands(bands *bd, const double *x, double *F, double *R) {
    cv_status st = CV_OK;
    for (int b = 0; b < bd->n && st == CV_OK; b++) st = cv_model_set_temperature_at(bd->c->m, bd->res[b], (float)exp(x[b]));
    if (st == CV_OK && (st = gen_mean(bd->c)) != CV_OK) {
        char msg[1024], ts[256] = "";
        snprintf(msg, sizeof msg, "%s", cv_last_error());
        for (int b = 0; b < bd->n; b++) {
            size_t l = strlen(ts);
            snprintf(ts + l, sizeof ts - l, "%s%dx%d at %.3g", b ? ", " : "", bd->res[b], bd->res[b], exp(x[b]));
        }
        return cv_error(st, "calibration: the trial with %s: %s", ts, msg);
    }
    for (int b = 0; b < bd->n; b++) F[b] = band_log_ratio(bd->c, bd->lo[b], bd->hi[b], R);
    if (bd->c->o->objective == CV_CALIB_SHELLS) log_ratios(bd->c, bd->lo[0], bd->hi[bd->n - 1], R);
    else memcpy(R, F, (size_t)bd->n * sizeof *R);
    bd->done++;
    if (bd->progress) bd->progress(bd->user, bd->done < bd->total ? bd->done : bd->total, bd->total);
    return st;
}

/* Solve A d = r (n x n, row-major, overwritten) by Gaussian elimination
 * with partial pivoting; 0 when A is singular.  Hand-written: n <= 10, and
 * the library's LAPACK is not a dependency of the build. */
static int solve(int n, double *A, double *r, double *d) {
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++) if (fabs(A[i * n + k]) > fabs(A[p * n + k])) p = i;
        if (!(fabs(A[p * n + k]) > 1e-12)) return 0;
        if (p != k) {
            for (int j = 0; j < n; j++) { double t = A[k * n + j]; A[k * n + j] = A[p * n + j]; A[p * n + j] = t; }
            double t = r[k]; r[k] = r[p]; r[p] = t;
        }
        for (int i = k + 1; i < n; i++) {
            double f = A[i * n + k] / A[k * n + k];
            for (int j = k; j < n; j++) A[i * n + j] -= f * A[k * n + j];
            r[i] -= f * r[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        double v = r[k];
        for (int j = k + 1; j < n; j++) v -= A[k * n + j] * d[j];
        d[k] = v / A[k * n + k];
    }
    return 1;
}

static double max_abs(const double *v, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

static double rms(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i] * v[i];
    return n ? sqrt(s / n) : 0;
}

/* Gauss-Newton on x = log T: every band depends on every temperature (a
 * finer group's noise also moves the coarser shells), so the resolutions
 * are solved together, the Jacobian of the residuals by forward
 * differences; with as many residuals as temperatures (the band means)
 * this is Newton's method. */
static cv_status newton(bands *bd, const cv_calib_opts *o, cv_calib_row *rows) {
    enum { M = CV_MAX_STAGES };
    int n = bd->n, nr = bd->n_res;
    double x[M] = {0}, F[M], best_x[M] = {0}, best_F[M], Fk[M], xk[M], d[M], g[M], A[M * M];
    /* R and Rk also serve eval_bands as scratch for every band's log ratios */
    int nall = log_ratios(bd->c, bd->lo[0], bd->hi[n - 1], NULL);
    if (nall < nr) nall = nr;
    double *R = malloc((size_t)nall * 2 * sizeof *R), *Rk = R + nall, *J = malloc((size_t)nr * n * sizeof *J);
    double best = INFINITY, h = 0.1, xlo = log(o->t_lo), xhi = log(o->t_hi);
    if (!R || !J) { free(R); free(J); return cv_error(CV_ERR_NOMEM, "calibration: residuals"); }
    cv_status st = CV_OK;
    for (int it = 0; it <= o->iters && st == CV_OK; it++) {
        if ((st = eval_bands(bd, x, F, R)) != CV_OK) break;
        if (it == 0) for (int b = 0; b < n; b++) rows[b].ratio_before = exp(F[b]);
        if (rms(R, nr) < best) { best = rms(R, nr); memcpy(best_x, x, sizeof x); memcpy(best_F, F, sizeof F); }
        if (it == o->iters || (o->objective != CV_CALIB_SHELLS && max_abs(F, n) < o->tol)) break;
        for (int k = 0; k < n && st == CV_OK; k++) {
            memcpy(xk, x, sizeof x);
            double hk = x[k] + h <= xhi ? h : -h;     /* a backward difference at the upper bound */
            xk[k] += hk;
            if ((st = eval_bands(bd, xk, Fk, Rk)) != CV_OK) break;
            for (int i = 0; i < nr; i++) J[i * n + k] = (Rk[i] - R[i]) / hk;
        }
        if (st != CV_OK) break;
        for (int a = 0; a < n; a++) {               /* J^T J d = -J^T R */
            g[a] = 0;
            for (int i = 0; i < nr; i++) g[a] -= J[i * n + a] * R[i];
            for (int b = 0; b < n; b++) {
                double v = 0;
                for (int i = 0; i < nr; i++) v += J[i * n + a] * J[i * n + b];
                A[a * n + b] = v;
            }
        }
        if (!solve(n, A, g, d)) break;       /* a temperature that moves nothing: keep the best so far */
        double dm = max_abs(d, n);
        for (int b = 0; b < n; b++) {
            x[b] += dm > 0.7 ? d[b] * 0.7 / dm : d[b];     /* damped: at most a factor 2 a step */
            x[b] = fmin(fmax(x[b], xlo), xhi);
        }
    }
    free(R); free(J);
    if (st != CV_OK) return st;
    for (int b = 0; b < n && st == CV_OK; b++) {
        rows[b].t = exp(best_x[b]);
        rows[b].ratio_after = exp(best_F[b]);
        rows[b].at_bound = best_x[b] <= xlo + 1e-9 || best_x[b] >= xhi - 1e-9;
        st = cv_model_set_temperature_at(bd->c->m, bd->res[b], (float)rows[b].t);
    }
    return st;
}

cv_status cv_calibrate_temperatures(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ref, int split,
                                    const cv_calib_opts *o, cv_calib_row *rows, int *n_rows,
                                    void (*progress)(void *user, int done, int total), void *user) {
    const cv_model_cfg *mc = cv_model_config(m);
    *n_rows = 0;
    if (o->n_gen < 2 || o->iters < 0 || !(o->tol > 0) || !(o->t_lo > 0) || !(o->t_hi > 1) || !(o->t_lo < 1))
        return cv_error(CV_ERR_ARG, "calibration: n_gen %lld >= 2, iters %d >= 0, tol %g > 0 and t_lo %g < 1 < t_hi %g "
                        "are needed", (long long)o->n_gen, o->iters, o->tol, o->t_lo, o->t_hi);
    /* the latent resolutions, coarsest first, and their bands of shells */
    int res[CV_MAX_STAGES], nr = 0;
    for (int s = 0; s < mc->n_dec; s++) {
        int r = mc->dec_res[s], dup = 0;
        for (int k = 0; k < nr; k++) dup |= res[k] == r;
        if (!dup && r <= mc->latent_max_res) res[nr++] = r;
    }
    float prev[CV_MAX_STAGES];
    for (int k = 0; k < nr; k++) prev[k] = cv_model_temperature_at(m, res[k]);

    calib c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx; c.m = m; c.norm = norm; c.o = o;
    c.C = mc->channels; c.S = mc->size; c.chunk = o->batch > 64 ? o->batch : 64;
    int all_log = 1, any_log = 0;
    for (int ch = 0; ch < c.C; ch++) {
        int lg = !strcmp(norm->transform[ch], "log10");
        all_log &= lg;
        any_log |= lg;
    }
    if (any_log && !all_log)     /* cosmovae-pk's spectra need one mode too */
        return cv_error(CV_ERR_ARG, "calibration: the channels mix log10 and other transforms; the spectra need one");
    cv_pk_opts po = cv_pk_opts_default();
    po.n_chan = c.C;
    po.mode = all_log ? CV_PK_DELTA_LOG10 : CV_PK_DELTA_LINEAR;
    cv_status st = cv_pk_new(ctx, c.S, cv_dataset_box_size(ref), &po, &c.pk);
    if (st != CV_OK) return st;
    c.n_spec = cv_pk_n_spec(c.C);
    c.n_shell = cv_pk_geometry(c.pk)->n_shell;
    c.maps = malloc((size_t)c.chunk * c.C * c.S * c.S * sizeof *c.maps);
    c.spec = malloc((size_t)c.chunk * c.n_spec * c.n_shell * sizeof *c.spec);
    c.ref = malloc((size_t)c.n_spec * c.n_shell * sizeof *c.ref);
    c.gen = malloc((size_t)c.n_spec * c.n_shell * sizeof *c.gen);
    if (o->batch < 1) st = cv_error(CV_ERR_ARG, "calibration: batch %d < 1", o->batch);
    else if (!c.maps || !c.spec || !c.ref || !c.gen) st = cv_error(CV_ERR_NOMEM, "calibration: out of memory");
    if (st == CV_OK) st = ref_mean(&c, ref, split);

    bands bd;
    memset(&bd, 0, sizeof bd);
    bd.c = &c; bd.progress = progress; bd.user = user;
    for (int k = 0, lo = 1; k < nr; k++) {
        int hi = res[k] / 2 < c.S / 2 ? res[k] / 2 : c.S / 2;
        if (!(o->top && res[k] == mc->dec_res[0])) {   /* a fitted top prior is not tempered */
            cv_calib_row *row = &rows[bd.n];
            memset(row, 0, sizeof *row);
            row->res = bd.res[bd.n] = res[k];
            row->shell_lo = bd.lo[bd.n] = lo;
            row->shell_hi = bd.hi[bd.n] = hi;
            bd.n++;
        }
        lo = hi + 1;
    }
    bd.total = 1 + o->iters * (bd.n + 1);
    if (bd.n) bd.n_res = n_residuals(&bd);
    if (st == CV_OK && bd.n) st = newton(&bd, o, rows);
    if (st == CV_OK) *n_rows = bd.n;
    if (progress && st == CV_OK) progress(user, bd.total, bd.total);
    if (st != CV_OK) {
        for (int k = 0; k < nr; k++)
            if (prev[k] >= 0) cv_model_set_temperature_at(m, res[k], prev[k]);
            else cv_model_unset_temperature_at(m, res[k]);
        *n_rows = 0;
    }
    free(c.maps); free(c.spec); free(c.ref); free(c.gen);
    cv_pk_free(c.pk);
    return st;
}
