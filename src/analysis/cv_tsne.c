/* cv_tsne.c -- Barnes-Hut and exact t-SNE to two dimensions, following
 * scikit-learn 1.2 step for step (see cv_tsne.h), and trustworthiness.
 * Invariant: the gradient is 4 * (attraction - repulsion / Z) in both
 * methods, with the same P and the same descent, so the two can only
 * differ by the Barnes-Hut approximation of the repulsion.
 *
 * Written here rather than borrowed: no packaged C library (Debian) offers
 * Barnes-Hut t-SNE; the heavy kNN distance products go through CBLAS.
 * Threads are plain POSIX threads over contiguous ranges of points. */
#include "analysis/cv_tsne.h"
#include "runtime/cv_rng.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

cv_tsne_opts cv_tsne_opts_default(void) {
    cv_tsne_opts o;
    o.perplexity = 30; o.early_exag = 12; o.exag_iters = 250; o.max_iter = 1000;
    o.learning_rate = 0; o.theta = 0.5; o.method = CV_TSNE_AUTO; o.exact_max = 500;
    o.init = CV_TSNE_INIT_PCA; o.n_iter_without_progress = 300; o.min_grad_norm = 1e-7;
    o.seed = 1; o.n_threads = 0;
    return o;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int n_threads_of(int want) {
    if (want > 0) return want > 64 ? 64 : want;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* ---- a parallel for over [0, n) -------------------------------------------- */

typedef void (*range_fn)(void *ctx, int64_t lo, int64_t hi, int tid);
typedef struct { range_fn fn; void *ctx; int64_t lo, hi; int tid; } range_job;

static void *range_main(void *p) {
    range_job *j = p;
    j->fn(j->ctx, j->lo, j->hi, j->tid);
    return NULL;
}

/* Runs fn on T contiguous ranges (the calling thread takes the first);
 * falls back to fewer threads if one cannot be created. */
static void parallel_for(int T, int64_t n, range_fn fn, void *ctx) {
    if (T > n) T = n > 0 ? (int)n : 1;
    range_job job[64];
    pthread_t th[64];
    int started[64] = { 0 };
    for (int t = 0; t < T; t++) {
        job[t].fn = fn; job[t].ctx = ctx; job[t].tid = t;
        job[t].lo = n * t / T; job[t].hi = n * (t + 1) / T;
    }
    for (int t = 1; t < T; t++) started[t] = pthread_create(&th[t], NULL, range_main, &job[t]) == 0;
    fn(ctx, job[0].lo, job[0].hi, 0);
    for (int t = 1; t < T; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else fn(ctx, job[t].lo, job[t].hi, t);
    }
}

/* ---- exact k nearest neighbours ----------------------------------------------- */

/* max-heap of (d, i) of size k: h[0] is the largest kept distance */
static void heap_sift(float *hd, int32_t *hi, int k, int r) {
    for (;;) {
        int l = 2 * r + 1, m = r;
        if (l < k && hd[l] > hd[m]) m = l;
        if (l + 1 < k && hd[l + 1] > hd[m]) m = l + 1;
        if (m == r) return;
        float td = hd[r]; hd[r] = hd[m]; hd[m] = td;
        int32_t ti = hi[r]; hi[r] = hi[m]; hi[m] = ti;
        r = m;
    }
}

/* k smallest of d[0..n) except `self`, ascending into (od, oi); among
 * equal distances the lower index wins. */
static void select_k(const float *d, int64_t n, int64_t self, int k, float *od, int32_t *oi) {
    int m = 0;
    int64_t j = 0;
    for (; j < n && m < k; j++) {
        if (j == self) continue;
        od[m] = d[j]; oi[m] = (int32_t)j; m++;
    }
    for (int r = k / 2 - 1; r >= 0; r--) heap_sift(od, oi, k, r);
    for (; j < n; j++) {
        if (j == self || !(d[j] < od[0])) continue;
        od[0] = d[j]; oi[0] = (int32_t)j;
        heap_sift(od, oi, k, 0);
    }
    for (int e = k - 1; e > 0; e--) {          /* heap sort: ascending */
        float td = od[0]; od[0] = od[e]; od[e] = td;
        int32_t ti = oi[0]; oi[0] = oi[e]; oi[e] = ti;
        heap_sift(od, oi, e, 0);
    }
}

typedef struct knn_job {
    const float *X, *norm, *dist;  /* dist: (rows, n) block */
    int64_t n, row0;
    int D, k;
    int32_t *idx;
    float *d2;
} knn_job;

static void knn_rows(void *p, int64_t lo, int64_t hi, int tid) {
    knn_job *j = p;
    (void)tid;
    float *row = malloc((size_t)j->n * sizeof *row), *od = malloc((size_t)j->k * sizeof *od);
    CV_ASSERT(row && od);
    for (int64_t r = lo; r < hi; r++) {
        int64_t i = j->row0 + r;
        const float *dot = j->dist + r * j->n;
        for (int64_t l = 0; l < j->n; l++) {
            float v = j->norm[i] + j->norm[l] - 2 * dot[l];
            row[l] = v > 0 ? v : 0;
        }
        select_k(row, j->n, i, j->k, od, j->idx + i * j->k);
        if (j->d2) {
            /* exact squared distances of the chosen ones, in double */
            for (int q = 0; q < j->k; q++) {
                const float *a = j->X + i * j->D, *b = j->X + (int64_t)j->idx[i * j->k + q] * j->D;
                double s = 0;
                for (int d = 0; d < j->D; d++) s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
                j->d2[i * j->k + q] = (float)s;
            }
        }
    }
    free(row); free(od);
}

#define KNN_BLOCK 512

cv_status cv_tsne_knn(const float *X, int64_t n, int D, int k, int32_t *idx, float *d2, int n_threads) {
    if (k < 1 || k >= n) return cv_error(CV_ERR_ARG, "nearest neighbours: k = %d for %lld points", k, (long long)n);
    int B = n < KNN_BLOCK ? (int)n : KNN_BLOCK;
    float *norm = malloc((size_t)n * sizeof *norm), *dist = malloc((size_t)B * n * sizeof *dist);
    if (!norm || !dist) { free(norm); free(dist); return cv_error(CV_ERR_NOMEM, "nearest neighbours of %lld points", (long long)n); }
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)X[i * D + d] * X[i * D + d];
        norm[i] = (float)s;
    }
    int T = n_threads_of(n_threads);
    for (int64_t r0 = 0; r0 < n; r0 += B) {
        int rows = (int)(n - r0 < B ? n - r0 : B);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)n, D, 1.0f, X + r0 * D, D, X, D, 0.0f, dist, (int)n);
        knn_job j = { X, norm, dist, n, r0, D, k, idx, d2 };
        parallel_for(T, rows, knn_rows, &j);
    }
    free(norm); free(dist);
    return CV_OK;
}

/* ---- affinities ---------------------------------------------------------------- */

/* sklearn's _binary_search_perplexity on one row of m squared distances
 * (shifted by their minimum for range; the entropy is shift-invariant). */
static void perplexity_row(const float *d2, int m, double perplexity, double *P) {
    const double target = log(perplexity);
    double dmin = INFINITY;
    for (int j = 0; j < m; j++) dmin = fmin(dmin, d2[j]);
    double beta = 1, lo = -INFINITY, hi = INFINITY;
    for (int step = 0; step < 100; step++) {
        double sum = 0, sd = 0;
        for (int j = 0; j < m; j++) { P[j] = exp(-(d2[j] - dmin) * beta); sum += P[j]; }
        if (sum == 0) sum = 1e-8;
        for (int j = 0; j < m; j++) { P[j] /= sum; sd += (d2[j] - dmin) * P[j]; }
        double H = log(sum) + beta * sd, diff = H - target;
        if (fabs(diff) <= 1e-5) break;
        if (diff > 0) { lo = beta; beta = hi == INFINITY ? beta * 2 : (beta + hi) / 2; }
        else { hi = beta; beta = lo == -INFINITY ? beta / 2 : (beta + lo) / 2; }
    }
}

typedef struct perp_job {
    const float *d2;
    int k;
    double perplexity, *P;
} perp_job;

static void perp_rows(void *p, int64_t lo, int64_t hi, int tid) {
    perp_job *j = p;
    (void)tid;
    for (int64_t i = lo; i < hi; i++) perplexity_row(j->d2 + i * j->k, j->k, j->perplexity, j->P + i * j->k);
}

/* Symmetric sparse P in CSR from the conditional kNN P (n, k). */
typedef struct csr { int64_t *ptr; int32_t *col; double *val; } csr;

static int cmp_col(const void *a, const void *b) {
    const int64_t *x = a, *y = b;      /* packed (col << 32 | slot) */
    return *x < *y ? -1 : *x > *y;
}

static cv_status symmetrize(int64_t n, int k, const int32_t *idx, const double *Pc, csr *S) {
    memset(S, 0, sizeof *S);
    int64_t nnz = 2 * n * k;
    int64_t *cnt = calloc(n + 1, sizeof *cnt), *key = NULL;
    int32_t *col = malloc(nnz * sizeof *col);
    double *val = malloc(nnz * sizeof *val);
    if (!cnt || !col || !val) goto nomem;
    for (int64_t i = 0; i < n; i++)
        for (int q = 0; q < k; q++) { cnt[i + 1]++; cnt[idx[i * k + q] + 1]++; }
    for (int64_t i = 0; i < n; i++) cnt[i + 1] += cnt[i];
    int64_t *fill = malloc(n * sizeof *fill);
    if (!fill) goto nomem;
    memcpy(fill, cnt, n * sizeof *fill);
    for (int64_t i = 0; i < n; i++)
        for (int q = 0; q < k; q++) {
            int32_t j = idx[i * k + q];
            double p = Pc[i * k + q];
            col[fill[i]] = j; val[fill[i]++] = p;
            col[fill[j]] = (int32_t)i; val[fill[j]++] = p;
        }
    free(fill);
    /* sort each row by column and merge duplicates (i in j's list and j in i's) */
    int64_t maxrow = 0;
    for (int64_t i = 0; i < n; i++) if (cnt[i + 1] - cnt[i] > maxrow) maxrow = cnt[i + 1] - cnt[i];
    key = malloc((maxrow ? maxrow : 1) * sizeof *key);
    double *tmpv = malloc((maxrow ? maxrow : 1) * sizeof *tmpv);
    S->ptr = calloc(n + 1, sizeof *S->ptr);
    S->col = malloc(nnz * sizeof *S->col);
    S->val = malloc(nnz * sizeof *S->val);
    if (!key || !tmpv || !S->ptr || !S->col || !S->val) { free(tmpv); goto nomem; }
    int64_t w = 0;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t a = cnt[i], m = cnt[i + 1] - a;
        for (int64_t q = 0; q < m; q++) { key[q] = ((int64_t)col[a + q] << 32) | q; tmpv[q] = val[a + q]; }
        qsort(key, m, sizeof *key, cmp_col);
        for (int64_t q = 0; q < m; q++) {
            int32_t c = (int32_t)(key[q] >> 32);
            double v = tmpv[key[q] & 0xffffffff];
            if (w > S->ptr[i] && S->col[w - 1] == c) S->val[w - 1] += v;
            else { S->col[w] = c; S->val[w++] = v; }
            total += v;
        }
        S->ptr[i + 1] = w;
    }
    if (total < DBL_EPSILON) total = DBL_EPSILON;
    for (int64_t q = 0; q < w; q++) S->val[q] /= total;
    free(tmpv); free(key); free(cnt); free(col); free(val);
    return CV_OK;
nomem:
    free(key); free(cnt); free(col); free(val);
    free(S->ptr); free(S->col); free(S->val);
    memset(S, 0, sizeof *S);
    return cv_error(CV_ERR_NOMEM, "t-SNE affinities (%lld points x %d neighbours)", (long long)n, k);
}

/* ---- PCA initialisation ---------------------------------------------------------- */

static cv_status pca_init(const float *X, int64_t n, int D, double *Y) {
    double *mean = calloc(D, sizeof *mean), *C = malloc((size_t)D * D * sizeof *C), *Q = malloc(2 * (size_t)D * sizeof *Q);
    double *Z = malloc(2 * (size_t)D * sizeof *Z);
    double *Xd = malloc((size_t)KNN_BLOCK * D * sizeof *Xd);
    if (!mean || !C || !Q || !Z || !Xd) {
        free(mean); free(C); free(Q); free(Z); free(Xd);
        return cv_error(CV_ERR_NOMEM, "t-SNE PCA initialisation");
    }
    for (int64_t i = 0; i < n; i++)
        for (int d = 0; d < D; d++) mean[d] += X[i * D + d];
    for (int d = 0; d < D; d++) mean[d] /= n;
    /* covariance (lower) by blocks, in double */
    memset(C, 0, (size_t)D * D * sizeof *C);
    for (int64_t r0 = 0; r0 < n; r0 += KNN_BLOCK) {
        int rows = (int)(n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK);
        for (int r = 0; r < rows; r++)
            for (int d = 0; d < D; d++) Xd[(size_t)r * D + d] = X[(r0 + r) * D + d] - mean[d];
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, D, rows, 1.0, Xd, D, 1.0, C, D);
    }
    free(Xd);
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++) C[(size_t)i * D + j] = C[(size_t)j * D + i];
    /* subspace iteration for the top two eigenvectors */
    for (int d = 0; d < D; d++) { Q[2 * d] = 1.0 + 0.1 * sin(d + 1.0); Q[2 * d + 1] = cos(3.0 * d + 0.5); }
    for (int it = 0; it < 300; it++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, 2, D, 1.0, C, D, Q, 2, 0.0, Z, 2);
        double a = 0, b = 0, ab = 0;
        for (int d = 0; d < D; d++) a += Z[2 * d] * Z[2 * d];
        a = sqrt(a);
        if (!(a > 0)) break;                               /* constant data: keep Q */
        for (int d = 0; d < D; d++) Z[2 * d] /= a;
        for (int d = 0; d < D; d++) ab += Z[2 * d] * Z[2 * d + 1];
        for (int d = 0; d < D; d++) Z[2 * d + 1] -= ab * Z[2 * d];
        for (int d = 0; d < D; d++) b += Z[2 * d + 1] * Z[2 * d + 1];
        b = sqrt(b);
        if (!(b > 0)) { for (int d = 0; d < D; d++) Q[2 * d] = Z[2 * d]; break; }
        for (int d = 0; d < D; d++) Z[2 * d + 1] /= b;
        memcpy(Q, Z, 2 * (size_t)D * sizeof *Q);
    }
    double s0 = 0, m0 = 0;
    for (int64_t i = 0; i < n; i++) {
        double y0 = 0, y1 = 0;
        for (int d = 0; d < D; d++) {
            double x = X[i * D + d] - mean[d];
            y0 += x * Q[2 * d]; y1 += x * Q[2 * d + 1];
        }
        Y[2 * i] = y0; Y[2 * i + 1] = y1;
        m0 += y0;
    }
    m0 /= n;
    for (int64_t i = 0; i < n; i++) s0 += (Y[2 * i] - m0) * (Y[2 * i] - m0);
    s0 = sqrt(s0 / n);
    double scale = s0 > 0 ? 1e-4 / s0 : 1;
    for (int64_t i = 0; i < 2 * n; i++) Y[i] *= scale;
    free(mean); free(C); free(Q); free(Z);
    return CV_OK;
}

/* ---- quadtree -------------------------------------------------------------------- */

#define QT_MAX_DEPTH 50

typedef struct qt_node {
    double cx, cy;          /* centre of mass (sums while building) */
    double x0, y0, w;       /* lower-left corner, width */
    int32_t n;              /* points below */
    int32_t child;          /* first of 4 children; -1 for a leaf */
    int32_t pt;             /* leaf: a point, -1 if empty */
    int32_t depth;
} qt_node;

typedef struct qtree { qt_node *node; int32_t n_node, cap; } qtree;

static int qt_new_node(qtree *t, double x0, double y0, double w, int depth) {
    if (t->n_node == t->cap) {
        int32_t cap = t->cap ? 2 * t->cap : 1024;
        qt_node *p = realloc(t->node, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->node = p; t->cap = cap;
    }
    qt_node *q = &t->node[t->n_node];
    q->cx = q->cy = 0; q->x0 = x0; q->y0 = y0; q->w = w;
    q->n = 0; q->child = -1; q->pt = -1; q->depth = depth;
    return t->n_node++;
}

static int quadrant(const qt_node *q, double x, double y) {
    double h = q->w / 2;
    return (x >= q->x0 + h) + 2 * (y >= q->y0 + h);
}

static cv_status qt_build(qtree *t, const double *Y, int64_t n) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        xmin = fmin(xmin, Y[2 * i]); xmax = fmax(xmax, Y[2 * i]);
        ymin = fmin(ymin, Y[2 * i + 1]); ymax = fmax(ymax, Y[2 * i + 1]);
    }
    double w = fmax(xmax - xmin, ymax - ymin);
    w = w > 0 ? w * (1 + 1e-6) : 1e-12;
    t->n_node = 0;
    if (qt_new_node(t, xmin - 1e-3 * w, ymin - 1e-3 * w, w * 1.002, 0) < 0) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        double x = Y[2 * i], y = Y[2 * i + 1];
        int32_t k = 0;
        for (;;) {
            qt_node *q = &t->node[k];
            q->n++; q->cx += x; q->cy += y;
            if (q->child >= 0) { k = q->child + quadrant(q, x, y); continue; }
            if (q->pt < 0) { q->pt = (int32_t)i; break; }
            int32_t j = q->pt;
            if ((Y[2 * j] == x && Y[2 * j + 1] == y) || q->depth >= QT_MAX_DEPTH) break;   /* duplicate */
            /* split: children first (the array may move), then move the old content down */
            double x0 = q->x0, y0 = q->y0, h = q->w / 2;
            int depth = q->depth + 1, c0 = t->n_node;
            for (int c = 0; c < 4; c++)
                if (qt_new_node(t, x0 + (c & 1) * h, y0 + (c >> 1) * h, h, depth) < 0) goto nomem;
            q = &t->node[k];
            q->child = c0;
            q->pt = -1;
            int32_t old = q->n - 1;
            qt_node *cj = &t->node[c0 + quadrant(q, Y[2 * j], Y[2 * j + 1])];
            cj->n = old; cj->cx = old * Y[2 * j]; cj->cy = old * Y[2 * j + 1]; cj->pt = j;
            k = c0 + quadrant(q, x, y);            /* the loop adds the new point there */
        }
    }
    for (int32_t k = 0; k < t->n_node; k++)
        if (t->node[k].n > 0) { t->node[k].cx /= t->node[k].n; t->node[k].cy /= t->node[k].n; }
    return CV_OK;
nomem:
    return cv_error(CV_ERR_NOMEM, "t-SNE quadtree");
}

/* ---- gradients -------------------------------------------------------------------- */

typedef struct grad_job {
    int64_t n;
    const double *Y;
    const qtree *t;
    double theta2;
    const csr *P;
    double *neg, *pos;          /* (n, 2) */
    double sumq[64];            /* per thread */
    double kl[64];              /* per thread, when asked */
    double zsum;                /* for the KL of the positive half */
    int want_kl;
    const double *Pfull;        /* exact: (n, n) */
} grad_job;

static void bh_negative(void *p, int64_t lo, int64_t hi, int tid) {
    grad_job *g = p;
    const qt_node *nd = g->t->node;
    int32_t stack[4 * QT_MAX_DEPTH + 8];
    double sq = 0;
    for (int64_t i = lo; i < hi; i++) {
        double px = g->Y[2 * i], py = g->Y[2 * i + 1], fx = 0, fy = 0;
        int sp = 0;
        stack[sp++] = 0;
        while (sp) {
            const qt_node *q = &nd[stack[--sp]];
            if (q->n == 0) continue;
            double dx = px - q->cx, dy = py - q->cy, d2 = dx * dx + dy * dy;
            if (q->child < 0 || q->w * q->w < g->theta2 * d2) {
                if (q->child < 0 && d2 == 0) continue;    /* the point itself (and exact duplicates) */
                double qz = 1 / (1 + d2), m = q->n * qz;
                sq += m;
                m *= qz;
                fx += m * dx; fy += m * dy;
            } else {
                int32_t c = q->child;
                stack[sp++] = c; stack[sp++] = c + 1; stack[sp++] = c + 2; stack[sp++] = c + 3;
            }
        }
        g->neg[2 * i] = fx; g->neg[2 * i + 1] = fy;
    }
    g->sumq[tid] = sq;
}

static void bh_positive(void *p, int64_t lo, int64_t hi, int tid) {
    grad_job *g = p;
    const csr *P = g->P;
    double kl = 0;
    for (int64_t i = lo; i < hi; i++) {
        double px = g->Y[2 * i], py = g->Y[2 * i + 1], fx = 0, fy = 0;
        for (int64_t q = P->ptr[i]; q < P->ptr[i + 1]; q++) {
            int32_t j = P->col[q];
            double dx = px - g->Y[2 * j], dy = py - g->Y[2 * j + 1];
            double w = 1 / (1 + dx * dx + dy * dy), pij = P->val[q], m = pij * w;
            fx += m * dx; fy += m * dy;
            if (g->want_kl) kl += pij * log(fmax(pij, FLT_MIN) / fmax(w / g->zsum, FLT_MIN));
        }
        g->pos[2 * i] = fx; g->pos[2 * i + 1] = fy;
    }
    g->kl[tid] = kl;
}

/* exact: pass 1 (want_kl < 0) sums Z; pass 2 the gradient into pos and KL */
static void exact_rows(void *p, int64_t lo, int64_t hi, int tid) {
    grad_job *g = p;
    int64_t n = g->n;
    double z = 0, kl = 0;
    for (int64_t i = lo; i < hi; i++) {
        double px = g->Y[2 * i], py = g->Y[2 * i + 1], fx = 0, fy = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double dx = px - g->Y[2 * j], dy = py - g->Y[2 * j + 1], w = 1 / (1 + dx * dx + dy * dy);
            if (g->want_kl < 0) { z += w; continue; }
            double pij = g->Pfull[i * n + j], qij = fmax(w / g->zsum, DBL_EPSILON), m = (pij - qij) * w;
            fx += m * dx; fy += m * dy;
            if (g->want_kl) kl += pij * log(pij / qij);
        }
        if (g->want_kl >= 0) { g->pos[2 * i] = fx; g->pos[2 * i + 1] = fy; }
    }
    g->sumq[tid] = z;
    g->kl[tid] = kl;
}

/* ---- the run ---------------------------------------------------------------------- */

cv_status cv_tsne_run(const float *X, int64_t n, int D, const cv_tsne_opts *opts, float *Yout, cv_tsne_info *info,
                      cv_tsne_progress progress, void *user) {
    cv_status st = CV_OK;
    cv_tsne_opts o = opts ? *opts : cv_tsne_opts_default();
    cv_tsne_info inf;
    memset(&inf, 0, sizeof inf);
    if (n < 2 || D < 1) return cv_error(CV_ERR_ARG, "t-SNE: %lld points of dimension %d (need at least 2 points)", (long long)n, D);
    if (n > INT32_MAX / 2) return cv_error(CV_ERR_ARG, "t-SNE: %lld points is too many", (long long)n);
    if (!(o.perplexity > 0) || !(o.perplexity < n - 1))
        return cv_error(CV_ERR_ARG, "t-SNE: perplexity %g must be in (0, %lld) for %lld points", o.perplexity, (long long)(n - 1), (long long)n);
    if (o.max_iter < 1 || o.exag_iters < 0 || !(o.theta >= 0) || !(o.early_exag > 0))
        return cv_error(CV_ERR_ARG, "t-SNE: bad options (max_iter %d, exaggeration %g for %d iterations, theta %g)", o.max_iter,
                        o.early_exag, o.exag_iters, o.theta);
    int method = o.method == CV_TSNE_AUTO ? (n <= o.exact_max ? CV_TSNE_EXACT : CV_TSNE_BH) : o.method;
    if (method == CV_TSNE_EXACT && n > 20000)
        return cv_error(CV_ERR_ARG, "t-SNE: the exact method needs n^2 memory; %lld points is too many (use Barnes-Hut)", (long long)n);
    for (int64_t i = 0; i < n * D; i++)
        if (!isfinite(X[i])) return cv_error(CV_ERR_NUMERIC, "t-SNE: input point %lld, dim %lld is not finite", (long long)(i / D), (long long)(i % D));
    int T = n_threads_of(o.n_threads);
    double lr = o.learning_rate > 0 ? o.learning_rate : fmax(n / o.early_exag / 4, 50);
    inf.method = method;

    int k = method == CV_TSNE_EXACT ? (int)(n - 1) : (int)fmin((double)(n - 1), floor(3 * o.perplexity + 1));
    inf.n_neighbors = k;
    int32_t *idx = NULL;
    float *d2 = NULL;
    double *Pc = NULL, *Pfull = NULL, *Y = NULL, *upd = NULL, *gains = NULL, *grad = NULL, *neg = NULL, *pos = NULL;
    csr P;
    memset(&P, 0, sizeof P);
    qtree tree = { NULL, 0, 0 };
    grad_job gj;
    memset(&gj, 0, sizeof gj);

    double t0 = now();
    if (method == CV_TSNE_BH) {
        idx = malloc((size_t)n * k * sizeof *idx);
        d2 = malloc((size_t)n * k * sizeof *d2);
        Pc = malloc((size_t)n * k * sizeof *Pc);
        if (!idx || !d2 || !Pc) { st = cv_error(CV_ERR_NOMEM, "t-SNE: neighbours of %lld points", (long long)n); goto fail; }
        CV_TRY(cv_tsne_knn(X, n, D, k, idx, d2, T));
        inf.t_knn = now() - t0;
        perp_job pj = { d2, k, o.perplexity, Pc };
        parallel_for(T, n, perp_rows, &pj);
        CV_TRY(symmetrize(n, k, idx, Pc, &P));
    } else {
        /* full squared distances and conditional P over all other points */
        Pfull = malloc((size_t)n * n * sizeof *Pfull);
        d2 = malloc((size_t)n * (n - 1) * sizeof *d2);
        Pc = malloc((size_t)(n - 1) * sizeof *Pc);
        if (!Pfull || !d2 || !Pc) { st = cv_error(CV_ERR_NOMEM, "t-SNE: exact affinities of %lld points", (long long)n); goto fail; }
        for (int64_t i = 0; i < n; i++) {
            int64_t q = 0;
            for (int64_t j = 0; j < n; j++) {
                if (j == i) continue;
                double s = 0;
                for (int d = 0; d < D; d++) s += ((double)X[i * D + d] - X[j * D + d]) * ((double)X[i * D + d] - X[j * D + d]);
                d2[i * (n - 1) + q++] = (float)s;
            }
        }
        inf.t_knn = now() - t0;
        for (int64_t i = 0; i < n; i++) {
            perplexity_row(d2 + i * (n - 1), (int)(n - 1), o.perplexity, Pc);
            int64_t q = 0;
            for (int64_t j = 0; j < n; j++) Pfull[i * n + j] = j == i ? 0 : Pc[q++];
        }
        double tot = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) {
                double s = Pfull[i * n + j] + Pfull[j * n + i];
                Pfull[i * n + j] = Pfull[j * n + i] = s;
                tot += 2 * s;
            }
        tot = fmax(tot, DBL_EPSILON);
        for (int64_t i = 0; i < n * n; i++) Pfull[i] = fmax(Pfull[i] / tot, DBL_EPSILON);
        for (int64_t i = 0; i < n; i++) Pfull[i * n + i] = 0;
    }
    inf.t_affinity = now() - t0 - inf.t_knn;

    Y = malloc(2 * (size_t)n * sizeof *Y);
    upd = calloc(2 * (size_t)n, sizeof *upd);
    gains = malloc(2 * (size_t)n * sizeof *gains);
    grad = malloc(2 * (size_t)n * sizeof *grad);
    neg = malloc(2 * (size_t)n * sizeof *neg);
    pos = malloc(2 * (size_t)n * sizeof *pos);
    if (!Y || !upd || !gains || !grad || !neg || !pos) { st = cv_error(CV_ERR_NOMEM, "t-SNE embedding"); goto fail; }
    if (o.init == CV_TSNE_INIT_PCA) CV_TRY(pca_init(X, n, D, Y));
    else
        for (int64_t i = 0; i < 2 * n; i++) {
            /* Box-Muller on a splitmix64 stream */
            uint64_t x = o.seed * 0x9E3779B97F4A7C15ULL + 2 * (uint64_t)i + 1;
            uint64_t a = cv_splitmix64_mix(x), b = cv_splitmix64(x);
            double u = ((a >> 11) + 0.5) * 0x1.0p-53, v = (b >> 11) * 0x1.0p-53;
            Y[i] = 1e-4 * sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
        }

    /* exaggeration scales P in place, as sklearn does */
    double exag = o.early_exag;
    if (method == CV_TSNE_BH) for (int64_t q = 0; q < P.ptr[n]; q++) P.val[q] *= exag;
    else for (int64_t i = 0; i < n * n; i++) Pfull[i] *= exag;

    gj.n = n; gj.Y = Y; gj.t = &tree; gj.theta2 = o.theta * o.theta; gj.P = &P; gj.neg = neg; gj.pos = pos; gj.Pfull = Pfull;
    double t1 = now();
    int it = 0, stage_end = o.exag_iters < o.max_iter ? o.exag_iters : o.max_iter;
    double momentum = 0.5, kl = NAN;
    int without = 250;               /* sklearn's exploration stage: never stops early */
    for (int stage = 0; stage < 2; stage++) {
        if (stage == 1) {
            if (method == CV_TSNE_BH) for (int64_t q = 0; q < P.ptr[n]; q++) P.val[q] /= exag;
            else for (int64_t i = 0; i < n * n; i++) Pfull[i] /= exag;
            stage_end = o.max_iter;
            momentum = 0.8;
            without = o.n_iter_without_progress;
            for (int64_t i = 0; i < 2 * n; i++) { upd[i] = 0; gains[i] = 1; }
        } else
            for (int64_t i = 0; i < 2 * n; i++) gains[i] = 1;
        double best = DBL_MAX;
        int best_it = it;
        for (; it < stage_end; it++) {
            int check = (it + 1) % 50 == 0, want_kl = check || it == stage_end - 1;
            double Z = 0, klsum = 0;
            if (method == CV_TSNE_BH) {
                CV_TRY(qt_build(&tree, Y, n));
                parallel_for(T, n, bh_negative, &gj);
                for (int t = 0; t < T; t++) Z += gj.sumq[t];
                gj.zsum = Z > 0 ? Z : DBL_MIN;
                gj.want_kl = want_kl;
                parallel_for(T, n, bh_positive, &gj);
                for (int t = 0; t < T; t++) klsum += want_kl ? gj.kl[t] : 0;
                for (int64_t i = 0; i < 2 * n; i++) grad[i] = 4 * (pos[i] - neg[i] / gj.zsum);
            } else {
                gj.want_kl = -1;
                parallel_for(T, n, exact_rows, &gj);
                for (int t = 0; t < T; t++) Z += gj.sumq[t];
                gj.zsum = Z > 0 ? Z : DBL_MIN;
                gj.want_kl = want_kl;
                parallel_for(T, n, exact_rows, &gj);
                for (int t = 0; t < T; t++) klsum += want_kl ? gj.kl[t] : 0;
                for (int64_t i = 0; i < 2 * n; i++) grad[i] = 4 * pos[i];
            }
            if (want_kl) kl = klsum;
            double gnorm = 0;
            for (int64_t i = 0; i < 2 * n; i++) {
                if (upd[i] * grad[i] < 0) gains[i] += 0.2;
                else gains[i] *= 0.8;
                if (gains[i] < 0.01) gains[i] = 0.01;
                grad[i] *= gains[i];
                upd[i] = momentum * upd[i] - lr * grad[i];
                Y[i] += upd[i];
                gnorm += grad[i] * grad[i];
            }
            if (!isfinite(gnorm)) { st = cv_error(CV_ERR_NUMERIC, "t-SNE: the gradient is not finite at iteration %d", it + 1); goto fail; }
            if (check) {
                if (progress && progress(user, it + 1, o.max_iter, kl)) {
                    st = cv_error(CV_ERR_INTERRUPT, "t-SNE: stopped at iteration %d", it + 1);
                    goto fail;
                }
                if (kl < best) { best = kl; best_it = it; }
                else if (it - best_it > without) { it++; break; }
                if (sqrt(gnorm) <= o.min_grad_norm) { it++; break; }
            }
        }
        if (stage == 0 && stage_end >= o.max_iter) break;
    }
    inf.n_iter = it;
    inf.kl = kl;
    inf.t_descent = now() - t1;
    for (int64_t i = 0; i < 2 * n; i++) Yout[i] = (float)Y[i];
    if (info) *info = inf;
fail:
    free(idx); free(d2); free(Pc); free(Pfull); free(Y); free(upd); free(gains); free(grad); free(neg); free(pos);
    free(P.ptr); free(P.col); free(P.val); free(tree.node);
    return st;
}

/* ---- trustworthiness --------------------------------------------------------------- */

typedef struct trust_job {
    const float *norm, *dist;
    int64_t n, row0;
    int k;
    const int32_t *emb;     /* (n, k) embedding neighbours */
    double pen[64];
} trust_job;

static void trust_rows(void *p, int64_t lo, int64_t hi, int tid) {
    trust_job *j = p;
    double pen = 0;
    for (int64_t r = lo; r < hi; r++) {
        int64_t i = j->row0 + r;
        const float *dot = j->dist + r * j->n;
        for (int q = 0; q < j->k; q++) {
            int64_t t = j->emb[i * j->k + q];
            float dt = j->norm[i] + j->norm[t] - 2 * dot[t];
            int64_t rank = 1;
            for (int64_t l = 0; l < j->n; l++) {
                if (l == i || l == t) continue;
                float dl = j->norm[i] + j->norm[l] - 2 * dot[l];
                rank += dl < dt || (dl == dt && l < t);
            }
            if (rank > j->k) pen += (double)(rank - j->k);
        }
    }
    j->pen[tid] += pen;
}

cv_status cv_tsne_trustworthiness(const float *X, int64_t n, int D, const float *Y, int d_out, int k, double *out) {
    if (k < 1 || k >= n / 2.0)
        return cv_error(CV_ERR_ARG, "trustworthiness: %d neighbours must be in [1, %lld / 2)", k, (long long)n);
    int32_t *emb = malloc((size_t)n * k * sizeof *emb);
    float *norm = malloc((size_t)n * sizeof *norm), *dist = malloc((size_t)KNN_BLOCK * n * sizeof *dist);
    if (!emb || !norm || !dist) { free(emb); free(norm); free(dist); return cv_error(CV_ERR_NOMEM, "trustworthiness of %lld points", (long long)n); }
    cv_status st = cv_tsne_knn(Y, n, d_out, k, emb, NULL, 0);
    if (st != CV_OK) { free(emb); free(norm); free(dist); return st; }
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)X[i * D + d] * X[i * D + d];
        norm[i] = (float)s;
    }
    int T = n_threads_of(0);
    trust_job j;
    memset(&j, 0, sizeof j);
    j.norm = norm; j.dist = dist; j.n = n; j.k = k; j.emb = emb;
    for (int64_t r0 = 0; r0 < n; r0 += KNN_BLOCK) {
        int rows = (int)(n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)n, D, 1.0f, X + r0 * D, D, X, D, 0.0f, dist, (int)n);
        j.row0 = r0;
        parallel_for(T, rows, trust_rows, &j);
    }
    double pen = 0;
    for (int t = 0; t < 64; t++) pen += j.pen[t];
    *out = 1 - pen * (2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0)));
    free(emb); free(norm); free(dist);
    return CV_OK;
}
