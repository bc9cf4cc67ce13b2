/* test-tsne.c -- t-SNE and trustworthiness: exact kNN against brute force,
 * trustworthiness against a direct full-sort implementation and its fixed
 * points (identity 1, random ~0.5), well-separated Gaussian clusters kept
 * apart by both the exact and the Barnes-Hut method (neighbours in the
 * embedding from the same cluster, clusters farther apart than wide), and
 * bad arguments. */
#include "tap.h"
#include "analysis/cv_tsne.h"

#include <math.h>

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double normal(uint64_t seed, uint64_t i) {
    uint64_t a = mix(seed ^ mix(2 * i)), b = mix(seed ^ mix(2 * i + 1));
    double u = ((a >> 11) + 0.5) * 0x1.0p-53, v = (b >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u)) * cos(2 * 3.141592653589793 * v);
}

/* n points in D dims: cluster c = i % K, centre 10 * e_c (+ noise 1). */
static void clusters(float *X, int n, int D, int K, uint64_t seed) {
    for (int i = 0; i < n; i++)
        for (int d = 0; d < D; d++) X[i * D + d] = (float)((d == i % K ? 10.0 : 0.0) + normal(seed, (uint64_t)(i * D + d)));
}

static double d2of(const float *a, const float *b, int D) {
    double s = 0;
    for (int d = 0; d < D; d++) s += ((double)a[d] - b[d]) * ((double)a[d] - b[d]);
    return s;
}

/* sklearn's definition by full ranking, O(n^2 log n) */
static double trust_direct(const float *X, int n, int D, const float *Y, int dy, int k) {
    double pen = 0;
    int *rank = malloc(n * sizeof *rank), *ord = malloc(n * sizeof *ord);
    double *dx = malloc(n * sizeof *dx), *de = malloc(n * sizeof *de);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) { dx[j] = j == i ? INFINITY : d2of(X + i * D, X + j * D, D); de[j] = j == i ? INFINITY : d2of(Y + i * dy, Y + j * dy, dy); }
        /* rank[j] = 1 + number of l closer than j in X (stable by index) */
        for (int j = 0; j < n; j++) {
            int r = 1;
            for (int l = 0; l < n; l++) if (l != j && (dx[l] < dx[j] || (dx[l] == dx[j] && l < j))) r++;
            rank[j] = r;
        }
        /* k nearest in the embedding */
        for (int j = 0; j < n; j++) ord[j] = j;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < n; b++)
                if (de[ord[b]] < de[ord[a]] || (de[ord[b]] == de[ord[a]] && ord[b] < ord[a])) { int t = ord[a]; ord[a] = ord[b]; ord[b] = t; }
        for (int a = 0; a < k; a++) if (rank[ord[a]] > k) pen += rank[ord[a]] - k;
    }
    free(rank); free(ord); free(dx); free(de);
    return 1 - pen * 2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0));
}

static void test_knn_trust(void) {
    enum { N = 300, D = 7, K = 9 };
    float *X = malloc(N * D * sizeof *X), *Y = malloc(N * 2 * sizeof *Y), *d2 = malloc(N * K * sizeof *d2);
    int32_t *idx = malloc(N * K * sizeof *idx);
    for (int i = 0; i < N * D; i++) X[i] = (float)normal(5, i);
    cv_status st = cv_tsne_knn(X, N, D, K, idx, d2, 2);
    int bad = st != CV_OK;
    for (int i = 0; !bad && i < N; i++) {
        /* brute force: the K-th smallest distance must equal ours */
        double *all = malloc(N * sizeof *all);
        int m = 0;
        for (int j = 0; j < N; j++) if (j != i) all[m++] = d2of(X + i * D, X + j * D, D);
        for (int a = 0; a < K; a++)
            for (int b = a + 1; b < m; b++) if (all[b] < all[a]) { double t = all[a]; all[a] = all[b]; all[b] = t; }
        for (int a = 0; a < K; a++) {
            if (idx[i * K + a] == i || fabs(d2[i * K + a] - all[a]) > 1e-4 * all[a]) bad = 1;
            if (a && d2[i * K + a] < d2[i * K + a - 1]) bad = 1;
        }
        free(all);
    }
    CV_CHECK_OK(!bad, "exact kNN (%d points, k = %d) = brute force, ascending, self excluded", N, K);

    for (int i = 0; i < N; i++) { Y[2 * i] = X[i * D]; Y[2 * i + 1] = X[i * D + 1]; }
    float *X2 = malloc(N * 2 * sizeof *X2);
    memcpy(X2, Y, N * 2 * sizeof *X2);
    double t = 0;
    st = cv_tsne_trustworthiness(X2, N, 2, Y, 2, 5, &t);
    CV_CHECK_OK(st == CV_OK && t == 1.0, "trustworthiness of the identity embedding = 1 (got %.6f)", t);
    double tc = 0, td = trust_direct(X, N, D, Y, 2, 5);
    st = cv_tsne_trustworthiness(X, N, D, Y, 2, 5, &tc);
    CV_CHECK_OK(st == CV_OK && fabs(tc - td) < 1e-12, "trustworthiness of a 2-D projection = direct full-rank definition: %.9f vs %.9f", tc, td);
    for (int i = 0; i < N * 2; i++) Y[i] = (float)normal(99, i);
    st = cv_tsne_trustworthiness(X, N, D, Y, 2, 5, &tc);
    td = trust_direct(X, N, D, Y, 2, 5);
    CV_CHECK_OK(st == CV_OK && fabs(tc - td) < 1e-12 && fabs(tc - 0.5) < 0.05, "random embedding: %.4f (~0.5, direct %.4f)", tc, td);
    st = cv_tsne_trustworthiness(X, N, D, Y, 2, 150, &tc);
    CV_CHECK_OK(st == CV_ERR_ARG, "k >= n/2 is rejected: %s", cv_last_error());
    free(X); free(Y); free(d2); free(idx); free(X2);
}

/* Fraction of points whose 5 nearest embedding neighbours share their
 * cluster, and the ratio of the smallest centroid distance to the largest
 * cluster radius. */
static void cluster_quality(const float *Y, int n, int K, double *purity, double *sep) {
    int32_t *idx = malloc((size_t)n * 5 * sizeof *idx);
    cv_tsne_knn(Y, n, 2, 5, idx, NULL, 1);
    int good = 0;
    for (int i = 0; i < n; i++) {
        int ok = 1;
        for (int q = 0; q < 5; q++) ok &= idx[i * 5 + q] % K == i % K;
        good += ok;
    }
    *purity = (double)good / n;
    double cx[16] = { 0 }, cy[16] = { 0 }, rad[16] = { 0 };
    int cnt[16] = { 0 };
    for (int i = 0; i < n; i++) { cx[i % K] += Y[2 * i]; cy[i % K] += Y[2 * i + 1]; cnt[i % K]++; }
    for (int q = 0; q < K; q++) { cx[q] /= cnt[q]; cy[q] /= cnt[q]; }
    for (int i = 0; i < n; i++) rad[i % K] = fmax(rad[i % K], hypot(Y[2 * i] - cx[i % K], Y[2 * i + 1] - cy[i % K]));
    double dmin = INFINITY, rmax = 0;
    for (int a = 0; a < K; a++) {
        rmax = fmax(rmax, rad[a]);
        for (int b = a + 1; b < K; b++) dmin = fmin(dmin, hypot(cx[a] - cx[b], cy[a] - cy[b]));
    }
    *sep = dmin / rmax;
    free(idx);
}

static void test_clusters(int n, int method, const char *name) {
    enum { D = 12, K = 5 };
    float *X = malloc((size_t)n * D * sizeof *X), *Y = malloc((size_t)n * 2 * sizeof *Y);
    clusters(X, n, D, K, 42 + n);
    cv_tsne_opts o = cv_tsne_opts_default();
    o.method = method;
    o.n_threads = 2;
    cv_tsne_info info;
    cv_status st = cv_tsne_run(X, n, D, &o, Y, &info, NULL, NULL);
    double purity = 0, sep = 0, tw = 0;
    if (st == CV_OK) {
        cluster_quality(Y, n, K, &purity, &sep);
        cv_tsne_trustworthiness(X, n, D, Y, 2, 5, &tw);
    } else cv_check_diag(c, "%s", cv_last_error());
    CV_CHECK_OK(st == CV_OK && info.method == method && purity == 1.0 && sep > 1.0,
                "%s t-SNE, %d points in %d Gaussian clusters: neighbours in own cluster %.3f, centroid gap / radius %.2f, "
                "trustworthiness %.4f, KL %.3f after %d iterations", name, n, K, purity, sep, tw, info.kl, info.n_iter);
    free(X); free(Y);
}

static void test_bad(void) {
    float X[10 * 3], Y[20];
    for (int i = 0; i < 30; i++) X[i] = (float)i;
    cv_tsne_opts o = cv_tsne_opts_default();
    cv_status st = cv_tsne_run(X, 10, 3, &o, Y, NULL, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "perplexity 30"), "perplexity 30 for 10 points: %s", cv_last_error());
    o.perplexity = 3;
    X[7] = NAN;
    st = cv_tsne_run(X, 10, 3, &o, Y, NULL, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_NUMERIC && strstr(cv_last_error(), "point 2, dim 1"), "a NaN input: %s", cv_last_error());
    X[7] = 7;
    st = cv_tsne_run(X, 1, 3, &o, Y, NULL, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_ARG, "one point: %s", cv_last_error());
}

int main(void) {
    tap_begin();
    test_knn_trust();
    test_clusters(250, CV_TSNE_EXACT, "exact");
    test_clusters(1000, CV_TSNE_BH, "Barnes-Hut");
    test_bad();
    return tap_end();
}
