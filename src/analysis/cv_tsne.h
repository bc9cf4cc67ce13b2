/* cv_tsne.h -- t-SNE to two dimensions (van der Maaten 2014), as
 * scikit-learn's sklearn.manifold.TSNE (1.2) computes it by default:
 *
 *   affinities  exact k nearest neighbours, k = min(N - 1, 3 perplexity + 1),
 *               squared Euclidean distances; per-point Gaussian bandwidth by
 *               binary search on the perplexity (tolerance 1e-5 in entropy,
 *               100 steps); P = (P_cond + P_cond^T) / sum;
 *   init        PCA: the first two principal components, scaled so that
 *               the first has standard deviation 1e-4 (or random N(0, 1e-4));
 *   gradient    Barnes-Hut with a quadtree (angle theta = 0.5, sklearn's
 *               summary rule max_width^2 / d^2 < theta^2, self excluded), or
 *               exact O(N^2) for small N;
 *   descent     early exaggeration 12 for 250 iterations with momentum 0.5,
 *               then momentum 0.8 up to 1000 iterations; per-coordinate gains
 *               (+0.2 / x0.8, floor 0.01); learning rate max(N / 12 / 4, 50);
 *               stop after 300 checks-without-progress iterations (checked
 *               every 50) or a gradient norm below 1e-7.
 *
 * Threads: the kNN distances go through CBLAS (OpenBLAS threads); the
 * perplexity search and both gradient halves are split over n_threads
 * POSIX threads.  cv_tsne_run is reentrant (no global state).
 *
 * cv_tsne_trustworthiness is sklearn.manifold.trustworthiness (Euclidean):
 * 1 - 2 / (N k (2N - 3k - 1)) * sum_i sum_{j in U_i} (r(i, j) - k), U_i the
 * embedding's k nearest neighbours of i that are not among its k nearest in
 * the input, r(i, j) the rank of j among i's input-space neighbours. */
#ifndef CV_TSNE_H
#define CV_TSNE_H

#include "runtime/cv.h"

enum cv_tsne_method { CV_TSNE_AUTO = 0, CV_TSNE_BH = 1, CV_TSNE_EXACT = 2 };
enum cv_tsne_init   { CV_TSNE_INIT_PCA = 0, CV_TSNE_INIT_RANDOM = 1 };

typedef struct cv_tsne_opts {
    double   perplexity;      /* 30 */
    double   early_exag;      /* 12 */
    int      exag_iters;      /* 250 */
    int      max_iter;        /* 1000 (total, exaggeration included) */
    double   learning_rate;   /* 0: auto, max(N / early_exag / 4, 50) */
    double   theta;           /* 0.5: Barnes-Hut angle */
    int      method;          /* CV_TSNE_AUTO: exact when N <= exact_max */
    int      exact_max;       /* 500 */
    int      init;            /* CV_TSNE_INIT_PCA */
    int      n_iter_without_progress;  /* 300 */
    double   min_grad_norm;   /* 1e-7 */
    uint64_t seed;            /* random init only; 1 */
    int      n_threads;       /* 0: online CPUs, at most 64 */
} cv_tsne_opts;
cv_tsne_opts cv_tsne_opts_default(void);

typedef struct cv_tsne_info {
    int    method;            /* CV_TSNE_BH or CV_TSNE_EXACT, as run */
    int    n_iter;            /* iterations done */
    double kl;                /* KL divergence at the last check */
    int    n_neighbors;       /* k of the affinities */
    double t_knn, t_affinity, t_descent;   /* seconds */
} cv_tsne_info;

/* Called every 50 iterations (and at the end) with the KL divergence;
 * return non-zero to stop early (CV_ERR_INTERRUPT). */
typedef int (*cv_tsne_progress)(void *user, int iter, int max_iter, double kl);

/* Embed X (n, D) into Y (n, 2).  n >= 2, perplexity in (0, n - 1)
 * (CV_ERR_ARG otherwise, naming the value).  info may be NULL. */
cv_status cv_tsne_run(const float *X /* (n, D) */, int64_t n, int D, const cv_tsne_opts *o, float *Y /* (n, 2) */,
                      cv_tsne_info *info, cv_tsne_progress progress, void *user);

/* Trustworthiness of Y (n, d_out) as an embedding of X (n, D), k
 * neighbours (sklearn's default 5), 1 <= k < n / 2.  Memory O(n * 1024). */
cv_status cv_tsne_trustworthiness(const float *X /* (n, D) */, int64_t n, int D, const float *Y /* (n, d_out) */,
                                  int d_out, int k, double *out);

/* The k nearest neighbours (Euclidean, self excluded) of every row of X
 * (n, D): idx (n, k) ascending by distance, d2 (n, k) squared distances
 * (may be NULL).  Exact, by blocked CBLAS products and partial selection. */
cv_status cv_tsne_knn(const float *X /* (n, D) */, int64_t n, int D, int k, int32_t *idx /* (n, k) */,
                      float *d2 /* (n, k) or NULL */, int n_threads);

#endif
