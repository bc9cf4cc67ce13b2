/* cv_probe.c -- linear probe: data preparation (split, standardise, log of
 * the A parameters), one dense layer trained with Adam (Keras' update rule
 * and defaults, lr 0.0025, minibatches of 32 reshuffled each epoch, the
 * weights of the best valid epoch kept), R^2 on the test split, and the
 * closed-form least-squares cross-check (when D allows it), and the
 * bootstrap over test simulations.  Invariant: every statistic used to
 * transform the data comes from the train split only.
 *
 * The Cholesky solve is hand-written (a few lines for a D x D system with
 * D ~ 256) rather than pulling LAPACK in beside CBLAS. */
#include "analysis/cv_probe.h"
#include "runtime/cv_rng.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Uniform in [0, 1) from (seed, stream, i): splitmix64 finalizer of a
 * combined counter; 53 bits. */
static double u01(uint64_t seed, uint64_t stream, uint64_t i) {
    uint64_t z = cv_splitmix64(seed * 0x9E3779B97F4A7C15ULL ^ (stream + 0x632BE59BD9B4E019ULL) * 0xD1B54A32D192ED03ULL ^ i);
    return (double)(z >> 11) * 0x1.0p-53;
}

cv_probe_opts cv_probe_opts_default(void) {
    cv_probe_opts o;
    o.epochs = 200; o.lr = 0.0025; o.batch = 32;
    o.beta1 = 0.9; o.beta2 = 0.999; o.eps = 1e-7;
    o.log_a = 1; o.seed = 1;
    o.n_boot = 1000; o.lstsq_max_dim = 4096;
    return o;
}

void cv_probe_result_free(cv_probe_result *r) {
    free(r->r2); free(r->r2_lstsq); free(r->is_log);
    free(r->r2_sd); free(r->r2_lo); free(r->r2_hi);
    free(r->r2_lstsq_sd); free(r->r2_lstsq_lo); free(r->r2_lstsq_hi);
    free(r->r2_ridge); free(r->ridge_alpha); free(r->r2_ridge_sd); free(r->r2_ridge_lo); free(r->r2_ridge_hi);
    r->r2 = r->r2_lstsq = NULL;
    r->is_log = NULL;
    r->r2_sd = r->r2_lo = r->r2_hi = r->r2_lstsq_sd = r->r2_lstsq_lo = r->r2_lstsq_hi = NULL;
    r->r2_ridge = r->ridge_alpha = r->r2_ridge_sd = r->r2_ridge_lo = r->r2_ridge_hi = NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted v[0..n), linear between order statistics. */
static double quantile(const double *v, int n, double q) {
    double h = q * (n - 1);
    int i = (int)floor(h);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (h - i) * (v[i + 1] - v[i]);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The bootstrap's stream: apart from the weights (0) and the epochs' shuffles (1..epochs). */
#define BOOT_STREAM (UINT64_C(0x424f4f54) << 32)

cv_status cv_probe_bootstrap(const double *y, const double *yhat, int64_t n, int P, const int64_t *group, int64_t n_group,
                             int n_boot, uint64_t seed, double *sd, double *lo, double *hi, int *n_used) {
    cv_status st = CV_OK;
    for (int p = 0; p < P; p++) sd[p] = lo[p] = hi[p] = NAN;
    *n_used = 0;
    if (n_boot < 1 || n_group < 1 || n < 1) return CV_OK;
    /* the maps of each group, contiguous: start[g] .. start[g + 1] in member */
    int64_t *start = calloc((size_t)n_group + 1, sizeof *start), *member = malloc((size_t)n * sizeof *member);
    int64_t *fill = calloc((size_t)n_group, sizeof *fill), *pick = NULL, biggest = 0;
    double *r2 = malloc((size_t)n_boot * P * sizeof *r2), *col = malloc((size_t)n_boot * sizeof *col);
    if (!start || !member || !fill || !r2 || !col) { st = cv_error(CV_ERR_NOMEM, "bootstrap"); goto fail; }
    for (int64_t i = 0; i < n; i++) {
        if (group[i] < 0 || group[i] >= n_group) { st = cv_error(CV_ERR_ARG, "bootstrap: map %lld has group %lld", (long long)i, (long long)group[i]); goto fail; }
        start[group[i] + 1]++;
    }
    for (int64_t g = 0; g < n_group; g++) {
        if (start[g + 1] > biggest) biggest = start[g + 1];
        start[g + 1] += start[g];
    }
    for (int64_t i = 0; i < n; i++) member[start[group[i]] + fill[group[i]]++] = i;
    pick = malloc((size_t)(n_group * biggest) * sizeof *pick);
    if (!pick) { st = cv_error(CV_ERR_NOMEM, "bootstrap"); goto fail; }
    int used = 0;
    for (int b = 0; b < n_boot; b++) {
        int64_t m = 0;
        for (int64_t j = 0; j < n_group; j++) {
            int64_t g = (int64_t)(u01(seed, BOOT_STREAM + (uint64_t)b, (uint64_t)j) * (double)n_group);
            if (g >= n_group) g = n_group - 1;
            for (int64_t k = start[g]; k < start[g + 1]; k++) pick[m++] = member[k];
        }
        int ok = 1;
        for (int p = 0; p < P && ok; p++) {
            double mean = 0, ss_res = 0, ss_tot = 0, y0 = y[pick[0] * P + p];
            int spread = 0;
            for (int64_t k = 0; k < m; k++) {
                double yi = y[pick[k] * P + p];
                mean += yi;
                spread |= yi != y0;
            }
            if (!spread) { ok = 0; break; }            /* one value: R^2 is undefined */
            mean /= (double)m;
            for (int64_t k = 0; k < m; k++) {
                double yi = y[pick[k] * P + p], d = yi - yhat[pick[k] * P + p], t = yi - mean;
                ss_res += d * d;
                ss_tot += t * t;
            }
            r2[(size_t)used * P + p] = 1 - ss_res / ss_tot;
        }
        used += ok;
    }
    *n_used = used;
    if (used >= 2)
        for (int p = 0; p < P; p++) {
            double mean = 0, var = 0;
            for (int b = 0; b < used; b++) { col[b] = r2[(size_t)b * P + p]; mean += col[b]; }
            mean /= used;
            for (int b = 0; b < used; b++) var += (col[b] - mean) * (col[b] - mean);
            sd[p] = sqrt(var / (used - 1));
            qsort(col, (size_t)used, sizeof *col, cmp_double);
            lo[p] = quantile(col, used, 0.158655254);
            hi[p] = quantile(col, used, 0.841344746);
        }
fail:
    free(start); free(member); free(fill); free(pick); free(r2); free(col);
    return st;
}

double cv_probe_r2(const double *y, const double *yhat, int64_t n, int P, int p) {
    double mean = 0, ss_res = 0, ss_tot = 0;
    int spread = 0;
    for (int64_t i = 0; i < n; i++) {
        mean += y[i * P + p];
        spread |= y[i * P + p] != y[p];
    }
    mean /= n;
    for (int64_t i = 0; i < n; i++) {
        double d = y[i * P + p] - yhat[i * P + p], t = y[i * P + p] - mean;
        ss_res += d * d;
        ss_tot += t * t;
    }
    /* a single value (one test simulation): its rounded mean would leave a
     * tiny SS_tot and a huge negative R^2; sklearn's convention instead */
    if (!spread || ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
    return 1 - ss_res / ss_tot;
}

/* In-place Cholesky of the lower triangle of A (D, D); 0 if not PD. */
static int cholesky(double *A, int D) {
    for (int j = 0; j < D; j++) {
        double s = A[(size_t)j * D + j];
        for (int k = 0; k < j; k++) s -= A[(size_t)j * D + k] * A[(size_t)j * D + k];
        if (!(s > 0)) return 0;
        double l = sqrt(s);
        A[(size_t)j * D + j] = l;
        for (int i = j + 1; i < D; i++) {
            double t = A[(size_t)i * D + j];
            for (int k = 0; k < j; k++) t -= A[(size_t)i * D + k] * A[(size_t)j * D + k];
            A[(size_t)i * D + j] = t / l;
        }
    }
    return 1;
}

static void predict(const double *X, int64_t n, int D, int P, const double *W, const double *b, double *Yhat);

/* G = X^T X (lower triangle), B = X^T Y */
static void normal_eq(const double *X, const double *Y, int64_t n, int D, int P, double *G, double *B) {
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, D, (int)n, 1.0, X, D, 0.0, G, D);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, P, (int)n, 1.0, X, D, Y, P, 0.0, B, P);
}

/* W = (G + lam I)^-1 B by Cholesky into L (D x D scratch); 0 if not PD. */
static int solve_ridge(const double *G, const double *B, int D, int P, double lam, double *L, double *W) {
    memcpy(L, G, (size_t)D * D * sizeof *L);
    for (int i = 0; i < D; i++) L[(size_t)i * D + i] += lam;
    if (!cholesky(L, D)) return 0;
    for (int p = 0; p < P; p++) {            /* L L^T W = B, column by column */
        for (int i = 0; i < D; i++) {
            double t = B[(size_t)i * P + p];
            for (int k = 0; k < i; k++) t -= L[(size_t)i * D + k] * W[(size_t)k * P + p];
            W[(size_t)i * P + p] = t / L[(size_t)i * D + i];
        }
        for (int i = D - 1; i >= 0; i--) {
            double t = W[(size_t)i * P + p];
            for (int k = i + 1; k < D; k++) t -= L[(size_t)k * D + i] * W[(size_t)k * P + p];
            W[(size_t)i * P + p] = t / L[(size_t)i * D + i];
        }
    }
    return 1;
}

/* Least squares from the normal equations G, B: a ridge of 1e-10 (then
 * x100 each try) times G's mean diagonal when G is not positive definite. */
static cv_status lstsq_gram(const double *G, const double *B, int D, int P, double *L, double *W, double *ridge) {
    double diag = 0;
    for (int i = 0; i < D; i++) diag += G[(size_t)i * D + i];
    diag = diag > 0 ? diag / D : 1;
    double lam = 0;
    for (int tries = 0; !solve_ridge(G, B, D, P, lam, L, W); tries++) {
        if (tries > 12) return cv_error(CV_ERR_NUMERIC, "least squares: X^T X is not positive definite even with a ridge of %g", lam);
        lam = lam == 0 ? 1e-10 * diag : lam * 100;
    }
    *ridge = lam;
    return CV_OK;
}

/* The normal equations X^T X (G) and X^T Y (B) in new arrays, with the
 * factor's workspace L; what names the caller in the out-of-memory error.
 * The caller frees all three, also on failure. */
static cv_status normal_eq_new(const double *X, const double *Y, int64_t n, int D, int P, const char *what,
                               double **G, double **L, double **B) {
    size_t dd = (size_t)D * D;
    *G = malloc(dd * sizeof **G); *L = malloc(dd * sizeof **L); *B = malloc((size_t)D * P * sizeof **B);
    if (!*G || !*L || !*B) return cv_error(CV_ERR_NOMEM, "%s (%d dims)", what, D);
    normal_eq(X, Y, n, D, P, *G, *B);
    return CV_OK;
}

cv_status cv_probe_lstsq(const double *X, const double *Y, int64_t n, int D, int P, double *W, double *ridge) {
    double *G = NULL, *L = NULL, *B = NULL;
    cv_status st = normal_eq_new(X, Y, n, D, P, "least squares", &G, &L, &B);
    if (st == CV_OK) st = lstsq_gram(G, B, D, P, L, W, ridge);
    free(G); free(L); free(B);
    return st;
}

cv_status cv_probe_ridge(const double *X, const double *Y, int64_t n, int D, int P, double lambda, double *W) {
    if (!(lambda > 0) || !isfinite(lambda)) return cv_error(CV_ERR_ARG, "ridge: lambda = %g must be finite and > 0", lambda);
    double *G = NULL, *L = NULL, *B = NULL;
    cv_status st = normal_eq_new(X, Y, n, D, P, "ridge", &G, &L, &B);
    if (st == CV_OK && !solve_ridge(G, B, D, P, lambda, L, W))
        st = cv_error(CV_ERR_NUMERIC, "ridge: X^T X + %g I is not positive definite", lambda);
    free(G); free(L); free(B);
    return st;
}

/* The ridge path from the train split's normal equations G, B (X
 * standardised: X^T X has nt on its diagonal, so alpha = lambda / nt is
 * the strength relative to the data; L: D x D scratch); per parameter,
 * the alpha of the lowest valid MSE; Wr (D, P) its weights, column by
 * column. */
static cv_status ridge_path(const double *G, const double *B, double *L, int64_t nt, const double *Xv, const double *Yv,
                            int64_t nv, int D, int P, double *Wr, double *alpha) {
    size_t dp = (size_t)D * P;
    double *W = malloc(dp * sizeof *W), *Yh = malloc((size_t)nv * P * sizeof *Yh), *best = malloc((size_t)P * sizeof *best);
    double *zero = calloc((size_t)P, sizeof *zero);
    cv_status st = CV_OK;
    if (!W || !Yh || !best || !zero) { st = cv_error(CV_ERR_NOMEM, "ridge path (%d dims)", D); goto done; }
    for (int p = 0; p < P; p++) best[p] = INFINITY;
    for (int k = 0; k < CV_PROBE_N_ALPHA; k++) {
        double a = pow(10.0, CV_PROBE_ALPHA_LO + 0.5 * k);
        if (!solve_ridge(G, B, D, P, a * (double)nt, L, W)) continue;
        predict(Xv, nv, D, P, W, zero, Yh);
        for (int p = 0; p < P; p++) {
            double e = 0;
            for (int64_t i = 0; i < nv; i++) e += (Yh[i * P + p] - Yv[i * P + p]) * (Yh[i * P + p] - Yv[i * P + p]);
            if (e < best[p]) {
                best[p] = e;
                alpha[p] = a;
                for (int d = 0; d < D; d++) Wr[(size_t)d * P + p] = W[(size_t)d * P + p];
            }
        }
    }
    for (int p = 0; p < P; p++)
        if (!isfinite(best[p])) { st = cv_error(CV_ERR_NUMERIC, "ridge: no strength gave a finite valid error"); break; }
done:
    free(W); free(Yh); free(best); free(zero);
    return st;
}

/* ---- the probe ----------------------------------------------------------- */

typedef struct split_data {
    int64_t n;
    double *X;      /* (n, D) standardised */
    double *Y;      /* (n, P) standardised targets */
} split_data;

/* Yhat (n, P) = X (n, D) W (D, P) + b */
static void predict(const double *X, int64_t n, int D, int P, const double *W, const double *b, double *Yhat) {
    for (int64_t i = 0; i < n; i++)
        for (int p = 0; p < P; p++) Yhat[i * P + p] = b[p];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, P, D, 1.0, X, D, W, P, 1.0, Yhat, P);
}

static double mse(const double *Y, const double *Yhat, int64_t n, int P) {
    double s = 0;
    for (int64_t i = 0; i < n * P; i++) s += (Y[i] - Yhat[i]) * (Y[i] - Yhat[i]);
    return s / ((double)n * P);
}

cv_status cv_probe_run(const cv_latent *lat, const cv_probe_opts *opts, cv_probe_result *res, cv_probe_progress progress,
                       void *user) {
    cv_status st = CV_OK;
    cv_probe_opts o = opts ? *opts : cv_probe_opts_default();
    memset(res, 0, sizeof *res);
    const int D = lat->n_dim, P = lat->n_param;
    static const char *const split_names[3] = { "train", "valid", "test" };
    split_data sd[3];
    memset(sd, 0, sizeof sd);
    double *xm = NULL, *xs = NULL, *ym = NULL, *ys = NULL, *W = NULL, *b = NULL, *Wbest = NULL, *bbest = NULL;
    double *m = NULL, *v = NULL, *Xb = NULL, *Yb = NULL, *Gb = NULL, *dW = NULL, *Yhat = NULL, *Wls = NULL, *Yls = NULL, *Wr = NULL, *Yr = NULL, *Gn = NULL, *Ln = NULL, *Bn = NULL;
    int64_t *idx = NULL, *tgroup = NULL, *usims = NULL;
    if (!lat->params || P < 1) return cv_error(CV_ERR_FORMAT, "the latent codes carry no simulation parameters");
    if (!lat->split) return cv_error(CV_ERR_FORMAT, "the latent codes carry no train/valid/test split");
    if (o.epochs < 1 || o.batch < 1 || !(o.lr > 0)) return cv_error(CV_ERR_ARG, "probe: epochs, batch and lr must be positive");
    res->n_param = P;
    res->r2 = calloc(P, sizeof *res->r2);
    res->r2_lstsq = calloc(P, sizeof *res->r2_lstsq);
    res->is_log = calloc(P, sizeof *res->is_log);
    double **unc[11] = { &res->r2_sd, &res->r2_lo, &res->r2_hi, &res->r2_lstsq_sd, &res->r2_lstsq_lo, &res->r2_lstsq_hi,
                         &res->r2_ridge, &res->ridge_alpha, &res->r2_ridge_sd, &res->r2_ridge_lo, &res->r2_ridge_hi };
    int unc_ok = 1;
    for (int k = 0; k < 11; k++) unc_ok &= (*unc[k] = malloc(P * sizeof **unc[k])) != NULL;
    if (!res->r2 || !res->r2_lstsq || !res->is_log || !unc_ok) { st = cv_error(CV_ERR_NOMEM, "probe"); goto fail; }
    for (int k = 0; k < 11; k++)
        for (int p = 0; p < P; p++) (*unc[k])[p] = NAN;
    for (int p = 0; p < P; p++) res->is_log[p] = o.log_a && !strncmp(lat->param_name[p], "A_", 2);

    /* validate the targets of every map that takes part */
    for (int64_t i = 0; i < lat->n_map; i++)
        for (int p = 0; p < P; p++) {
            double y = lat->params[i * P + p];
            if (!isfinite(y)) { st = cv_error(CV_ERR_FORMAT, "params: map %lld, %s is %g (not finite)", (long long)i, lat->param_name[p], y); goto fail; }
            if (res->is_log[p] && !(y > 0)) {
                st = cv_error(CV_ERR_FORMAT, "params: map %lld, %s = %g cannot be taken in log (use linear targets)", (long long)i,
                              lat->param_name[p], y);
                goto fail;
            }
        }
    for (int s = 0; s < 3; s++) {
        sd[s].n = cv_latent_split_count(lat, s);
        if (sd[s].n == 0) { st = cv_error(CV_ERR_FORMAT, "the %s split is empty", split_names[s]); goto fail; }
        sd[s].X = malloc((size_t)sd[s].n * D * sizeof *sd[s].X);
        sd[s].Y = malloc((size_t)sd[s].n * P * sizeof *sd[s].Y);
        if (!sd[s].X || !sd[s].Y) { st = cv_error(CV_ERR_NOMEM, "probe: %s split", split_names[s]); goto fail; }
        int64_t k = 0;
        for (int64_t i = 0; i < lat->n_map; i++) {
            if (lat->split[i] != s) continue;
            for (int d = 0; d < D; d++) sd[s].X[k * D + d] = lat->z[i * D + d];
            for (int p = 0; p < P; p++) {
                double y = lat->params[i * P + p];
                sd[s].Y[k * P + p] = res->is_log[p] ? log10(y) : y;
            }
            k++;
        }
    }
    res->n_train = sd[0].n; res->n_valid = sd[1].n; res->n_test = sd[2].n;

    /* the test maps' simulations, numbered 0 .. n_test_sims - 1 (each map
     * its own when the file has no sim variable) */
    tgroup = malloc((size_t)sd[2].n * sizeof *tgroup);
    usims = malloc((size_t)sd[2].n * sizeof *usims);
    if (!tgroup || !usims) { st = cv_error(CV_ERR_NOMEM, "probe"); goto fail; }
    res->boot_by_map = !lat->sim;
    {
        int64_t k = 0;
        for (int64_t i = 0; i < lat->n_map; i++)
            if (lat->split[i] == 2) { usims[k] = lat->sim ? lat->sim[i] : k; tgroup[k] = usims[k]; k++; }
        qsort(usims, (size_t)k, sizeof *usims, cmp_i64);
        int64_t u = 0;
        for (int64_t j = 0; j < k; j++) if (j == 0 || usims[j] != usims[u - 1]) usims[u++] = usims[j];
        for (int64_t j = 0; j < k; j++) {
            const int64_t *f = bsearch(&tgroup[j], usims, (size_t)u, sizeof *usims, cmp_i64);
            tgroup[j] = f - usims;
        }
        res->n_test_sims = u;
    }

    /* standardise with train statistics */
    xm = calloc(D, sizeof *xm); xs = calloc(D, sizeof *xs); ym = calloc(P, sizeof *ym); ys = calloc(P, sizeof *ys);
    if (!xm || !xs || !ym || !ys) { st = cv_error(CV_ERR_NOMEM, "probe"); goto fail; }
    const int64_t nt = sd[0].n;
    for (int64_t i = 0; i < nt; i++) {
        for (int d = 0; d < D; d++) xm[d] += sd[0].X[i * D + d];
        for (int p = 0; p < P; p++) ym[p] += sd[0].Y[i * P + p];
    }
    for (int d = 0; d < D; d++) xm[d] /= nt;
    for (int p = 0; p < P; p++) ym[p] /= nt;
    for (int64_t i = 0; i < nt; i++) {
        for (int d = 0; d < D; d++) xs[d] += (sd[0].X[i * D + d] - xm[d]) * (sd[0].X[i * D + d] - xm[d]);
        for (int p = 0; p < P; p++) ys[p] += (sd[0].Y[i * P + p] - ym[p]) * (sd[0].Y[i * P + p] - ym[p]);
    }
    for (int d = 0; d < D; d++) xs[d] = xs[d] > 0 ? sqrt(xs[d] / nt) : 1;     /* a constant dim stays 0 */
    for (int p = 0; p < P; p++) {
        /* exactly: one value repeated leaves a rounding-sized variance */
        int spread = 0;
        for (int64_t i = 1; i < nt && !spread; i++) spread = sd[0].Y[i * P + p] != sd[0].Y[p];
        if (!spread || !(ys[p] > 0)) {
            st = cv_error(CV_ERR_FORMAT, "params: %s is constant over the train split", lat->param_name[p]);
            goto fail;
        }
        ys[p] = sqrt(ys[p] / nt);
    }
    for (int s = 0; s < 3; s++)
        for (int64_t i = 0; i < sd[s].n; i++) {
            for (int d = 0; d < D; d++) sd[s].X[i * D + d] = (sd[s].X[i * D + d] - xm[d]) / xs[d];
            for (int p = 0; p < P; p++) sd[s].Y[i * P + p] = (sd[s].Y[i * P + p] - ym[p]) / ys[p];
        }

    /* closed form on the train split (X is centred, so the intercept is 0) */
    int64_t nmax = sd[0].n > sd[1].n ? sd[0].n : sd[1].n;
    if (sd[2].n > nmax) nmax = sd[2].n;
    size_t dp = (size_t)D * P;
    Wls = calloc(dp, sizeof *Wls); Yhat = malloc((size_t)nmax * P * sizeof *Yhat); Yls = malloc((size_t)sd[2].n * P * sizeof *Yls);
    W = malloc(dp * sizeof *W); b = calloc(P, sizeof *b); Wbest = malloc(dp * sizeof *Wbest); bbest = calloc(P, sizeof *bbest);
    m = calloc(dp + P, sizeof *m); v = calloc(dp + P, sizeof *v); dW = malloc((dp + P) * sizeof *dW);
    Xb = malloc((size_t)o.batch * D * sizeof *Xb); Yb = malloc((size_t)o.batch * P * sizeof *Yb); Gb = malloc((size_t)o.batch * P * sizeof *Gb);
    idx = malloc((size_t)nt * sizeof *idx);
    if (!Wls || !Yhat || !Yls || !W || !b || !Wbest || !bbest || !m || !v || !dW || !Xb || !Yb || !Gb || !idx) {
        st = cv_error(CV_ERR_NOMEM, "probe");
        goto fail;
    }
    if (D >= nt)
        snprintf(res->lstsq_note, sizeof res->lstsq_note,
                 "closed form skipped: D = %d >= %lld train maps (X^T X is singular: the fit would interpolate the train split)",
                 D, (long long)nt);
    else if (D > o.lstsq_max_dim)
        snprintf(res->lstsq_note, sizeof res->lstsq_note,
                 "closed form skipped: D = %d > %d (the D x D normal equations would take %.3g MiB)", D, o.lstsq_max_dim,
                 2.0 * D * D * sizeof(double) / 1048576.0);
    if (D <= o.lstsq_max_dim)      /* the train split's normal equations, for least squares and the ridge */
        CV_TRY(normal_eq_new(sd[0].X, sd[0].Y, nt, D, P, "probe: normal equations", &Gn, &Ln, &Bn));
    if (D < nt && D <= o.lstsq_max_dim) {
        CV_TRY(lstsq_gram(Gn, Bn, D, P, Ln, Wls, &res->ridge));
        predict(sd[2].X, sd[2].n, D, P, Wls, b, Yls);      /* b is still all zero */
        for (int p = 0; p < P; p++) res->r2_lstsq[p] = cv_probe_r2(sd[2].Y, Yls, sd[2].n, P, p);
        res->has_lstsq = 1;
    }
    if (!res->has_lstsq)
        for (int p = 0; p < P; p++) res->r2_lstsq[p] = NAN;
    /* ridge, its strength per parameter chosen on the valid split (any D
     * up to the closed form's limit: the ridge makes X^T X definite) */
    if (D <= o.lstsq_max_dim) {
        Wr = malloc(dp * sizeof *Wr); Yr = malloc((size_t)sd[2].n * P * sizeof *Yr);
        if (!Wr || !Yr) { st = cv_error(CV_ERR_NOMEM, "probe"); goto fail; }
        CV_TRY(ridge_path(Gn, Bn, Ln, nt, sd[1].X, sd[1].Y, sd[1].n, D, P, Wr, res->ridge_alpha));
        predict(sd[2].X, sd[2].n, D, P, Wr, b, Yr);          /* b is still all zero */
        for (int p = 0; p < P; p++) res->r2_ridge[p] = cv_probe_r2(sd[2].Y, Yr, sd[2].n, P, p);
        res->has_ridge = 1;
    }

    /* Adam: Glorot-uniform weights, zero bias (Keras' Dense defaults) */
    double lim = sqrt(6.0 / (D + P));
    for (size_t i = 0; i < dp; i++) W[i] = lim * (2.0 * u01(o.seed, 0, i) - 1.0);
    memcpy(Wbest, W, dp * sizeof *W);
    for (int64_t i = 0; i < nt; i++) idx[i] = i;
    double best = INFINITY;
    int64_t t = 0;
    for (int ep = 1; ep <= o.epochs; ep++) {
        for (int64_t i = nt - 1; i > 0; i--) {           /* Fisher-Yates, a fresh order each epoch */
            int64_t j = (int64_t)(u01(o.seed, (uint64_t)ep, (uint64_t)i) * (double)(i + 1));
            if (j > i) j = i;
            int64_t tmp = idx[i]; idx[i] = idx[j]; idx[j] = tmp;
        }
        double train_sum = 0;
        for (int64_t s0 = 0; s0 < nt; s0 += o.batch) {
            int B = (int)(nt - s0 < o.batch ? nt - s0 : o.batch);
            for (int r = 0; r < B; r++) {
                memcpy(Xb + (size_t)r * D, sd[0].X + idx[s0 + r] * D, D * sizeof *Xb);
                memcpy(Yb + (size_t)r * P, sd[0].Y + idx[s0 + r] * P, P * sizeof *Yb);
            }
            predict(Xb, B, D, P, W, b, Gb);
            double *db = dW + dp;
            for (int p = 0; p < P; p++) db[p] = 0;
            for (int r = 0; r < B; r++)
                for (int p = 0; p < P; p++) {
                    double e = Gb[r * P + p] - Yb[r * P + p];
                    train_sum += e * e;
                    Gb[r * P + p] = 2 * e / ((double)B * P);
                    db[p] += Gb[r * P + p];
                }
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, P, B, 1.0, Xb, D, Gb, P, 0.0, dW, P);
            t++;
            double lr_t = o.lr * sqrt(1 - pow(o.beta2, (double)t)) / (1 - pow(o.beta1, (double)t));
            for (size_t i = 0; i < dp + P; i++) {
                double g = dW[i];
                m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
                v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
                double step = lr_t * m[i] / (sqrt(v[i]) + o.eps);
                if (i < dp) W[i] -= step;
                else b[i - dp] -= step;
            }
        }
        predict(sd[1].X, sd[1].n, D, P, W, b, Yhat);
        double vm = mse(sd[1].Y, Yhat, sd[1].n, P), tm = train_sum / ((double)nt * P);
        if (!isfinite(vm)) { st = cv_error(CV_ERR_NUMERIC, "probe: the valid loss is not finite at epoch %d (lower the learning rate)", ep); goto fail; }
        if (vm < best) {
            best = vm;
            res->best_epoch = ep;
            memcpy(Wbest, W, dp * sizeof *W);
            memcpy(bbest, b, P * sizeof *b);
        }
        if (progress) progress(user, ep, tm, vm);
    }
    res->best_valid_mse = best;
    predict(sd[2].X, sd[2].n, D, P, Wbest, bbest, Yhat);
    for (int p = 0; p < P; p++) res->r2[p] = cv_probe_r2(sd[2].Y, Yhat, sd[2].n, P, p);

    /* the uncertainty: the same resamples of the test simulations for both fits */
    res->n_boot = o.n_boot > 0 ? o.n_boot : 0;
    CV_TRY(cv_probe_bootstrap(sd[2].Y, Yhat, sd[2].n, P, tgroup, res->n_test_sims, res->n_boot, o.seed, res->r2_sd, res->r2_lo,
                              res->r2_hi, &res->n_boot_used));
    if (res->has_lstsq) {
        int used;
        CV_TRY(cv_probe_bootstrap(sd[2].Y, Yls, sd[2].n, P, tgroup, res->n_test_sims, res->n_boot, o.seed, res->r2_lstsq_sd,
                                  res->r2_lstsq_lo, res->r2_lstsq_hi, &used));
    }
    if (res->has_ridge) {
        int used;
        CV_TRY(cv_probe_bootstrap(sd[2].Y, Yr, sd[2].n, P, tgroup, res->n_test_sims, res->n_boot, o.seed, res->r2_ridge_sd,
                                  res->r2_ridge_lo, res->r2_ridge_hi, &used));
    }

fail:
    for (int s = 0; s < 3; s++) { free(sd[s].X); free(sd[s].Y); }
    free(xm); free(xs); free(ym); free(ys); free(W); free(b); free(Wbest); free(bbest);
    free(m); free(v); free(dW); free(Xb); free(Yb); free(Gb); free(Yhat); free(Wls); free(Yls); free(idx);
    free(Wr); free(Yr); free(Gn); free(Ln); free(Bn);
    free(tgroup); free(usims);
    if (st != CV_OK) cv_probe_result_free(res);
    return st;
}
