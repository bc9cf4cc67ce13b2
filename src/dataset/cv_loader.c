/* cv_loader.c -- batches for training and evaluation (see cv_loader.h):
 * a producer thread fills a ring of `prefetch` batch slots, the caller
 * copies them out in order.
 *
 * Invariant: the contents of the batch at position (epoch, index) are a
 * pure function of (dataset, options, epoch, index) -- the producer
 * computes the epoch's permutation and every augmentation code from the
 * counter-based hash, never from state carried between batches -- so
 * prefetching, restarting the thread and seeking cannot change a bit. */
#include "dataset/cv_loader.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

enum { CV_LOADER_ERRLEN = 1024 };

typedef struct cv_slot {
    float     *data;       /* (B, C, H, W) */
    int64_t   *idx;        /* (B) */
    int       *aug;        /* (B) */
    int        n;
    int64_t    epoch, index;
    cv_status  st;
    char       err[CV_LOADER_ERRLEN];
} cv_slot;

struct cv_loader {
    cv_dataset     *ds;
    cv_loader_opts  o;
    int             C, H, W;
    size_t          map_elems;         /* C*H*W */
    int64_t         M;                 /* maps in the split */
    int64_t        *members;           /* (M) dataset indices of the split, ascending */
    int            *is_log;            /* (C) */
    double         *mean, *std;        /* (C) */

    int64_t         epoch, index;      /* consumer: position of the next batch */

    /* producer state (thread or, with prefetch 0, the caller) */
    int64_t        *perm;              /* (M) order of perm_epoch */
    int64_t         perm_epoch;
    float          *tmp;               /* (B, C, H, W) raw maps read from the file */
    int64_t         p_epoch, p_index;  /* position the producer will make next */

    /* ring */
    int             depth, head, count;
    cv_slot        *q;                 /* (depth) */
    pthread_t       th;
    int             running, stop, failed;
    pthread_mutex_t mu;
    pthread_cond_t  cv_put, cv_get;
};

cv_loader_opts cv_loader_opts_default(void) {
    cv_loader_opts o;
    memset(&o, 0, sizeof o);
    o.split = CV_SPLIT_TRAIN;
    o.batch = 4;
    o.seed = 0;
    o.augment = 0;
    o.normalise = 1;
    o.shuffle = 1;
    o.drop_last = 1;
    o.prefetch = 2;
    return o;
}

int64_t cv_loader_epoch_maps(const cv_loader *l) { return l->M; }
int cv_loader_batch(const cv_loader *l) { return l->o.batch; }
int64_t cv_loader_epoch_batches(const cv_loader *l) {
    return l->o.drop_last ? l->M / l->o.batch : (l->M + l->o.batch - 1) / l->o.batch;
}

void cv_loader_epoch_order(const cv_loader *l, int64_t epoch, int64_t *perm) {
    memcpy(perm, l->members, (size_t)l->M * sizeof(int64_t));
    if (!l->o.shuffle) return;
    /* Fisher-Yates driven by the hash of (seed, epoch, j) */
    uint64_t es = cv_data_hash(l->o.seed, 0x5045524dULL /* "PERM" */, (uint64_t)epoch);
    for (int64_t j = l->M - 1; j > 0; j--) {
        int64_t k = cv_data_below(es, 1, (uint64_t)j, j + 1);
        int64_t t = perm[j]; perm[j] = perm[k]; perm[k] = t;
    }
}

static int aug_code(const cv_loader *l, int64_t epoch, int64_t pos) {
    if (!l->o.augment) return 0;
    return (int)(cv_data_hash(l->o.seed ^ 0x41554721ULL /* "AUG!" */, (uint64_t)epoch, (uint64_t)pos) & 7);
}

static void advance(const cv_loader *l, int64_t *epoch, int64_t *index, int n) {
    *index += n;
    if (l->o.drop_last ? *index + l->o.batch > l->M : *index >= l->M) {
        ++*epoch;
        *index = 0;
    }
}

/* Make the batch at (epoch, index) into data/idx/aug; returns rows filled. */
static cv_status produce(cv_loader *l, int64_t epoch, int64_t index, float *data, int64_t *idx, int *aug, int *n_out) {
    cv_status st = CV_OK;
    const int B = l->o.batch;
    const size_t me = l->map_elems, plane = (size_t)l->H * l->W;
    int n = (int)(l->M - index < B ? l->M - index : B);
    if (l->perm_epoch != epoch) {
        cv_loader_epoch_order(l, epoch, l->perm);
        l->perm_epoch = epoch;
    }
    for (int r = 0; r < n; r++) {
        idx[r] = l->perm[index + r];
        aug[r] = aug_code(l, epoch, index + r);
    }
    /* read runs of consecutive map indices with one call each */
    for (int r = 0; r < n;) {
        int k = 1;
        while (r + k < n && idx[r + k] == idx[r] + k) k++;
        CV_TRY(cv_dataset_read(l->ds, idx[r], k, l->tmp + (size_t)r * me));
        r += k;
    }
    for (int r = 0; r < n; r++) {
        float *src = l->tmp + (size_t)r * me;   /* (C, H, W) */
        float *dst = data + (size_t)r * me;     /* (C, H, W) */
        if (aug[r]) cv_data_dihedral(src, dst, l->C, l->H, aug[r]);
        else memcpy(dst, src, me * sizeof(float));
        if (!l->o.normalise) continue;
        for (int c = 0; c < l->C; c++) {
            float *x = dst + (size_t)c * plane;
            const double mu = l->mean[c], is = 1.0 / l->std[c];
            if (l->is_log[c]) {
                size_t bad;
                if (cv_data_check_positive(x, plane, &bad) != CV_OK) {
                    /* report the pixel in the file's orientation */
                    const float *raw = src + (size_t)c * plane;
                    cv_data_check_positive(raw, plane, &bad);
                    st = cv_error(CV_ERR_NUMERIC, "%s: map %lld, channel %s, pixel (y %zu, x %zu): value %g cannot take log10",
                                  cv_dataset_path(l->ds), (long long)idx[r], cv_dataset_chan_name(l->ds, c),
                                  bad / (size_t)l->W, bad % (size_t)l->W, (double)raw[bad]);
                    goto fail;
                }
                for (size_t i = 0; i < plane; i++) x[i] = (float)((log10((double)x[i]) - mu) * is);
            } else {
                for (size_t i = 0; i < plane; i++) x[i] = (float)(((double)x[i] - mu) * is);
            }
        }
    }
    if (n < B) {
        memset(data + (size_t)n * me, 0, (size_t)(B - n) * me * sizeof(float));
        for (int r = n; r < B; r++) { idx[r] = -1; aug[r] = 0; }
    }
    *n_out = n;
    return CV_OK;
fail:
    return st;
}

static void *producer_main(void *arg) {
    cv_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        while (!l->stop && l->count == l->depth) pthread_cond_wait(&l->cv_put, &l->mu);
        if (l->stop) break;
        cv_slot *s = &l->q[(l->head + l->count) % l->depth];
        int64_t e = l->p_epoch, i = l->p_index;
        pthread_mutex_unlock(&l->mu);

        int n = 0;
        cv_status st = produce(l, e, i, s->data, s->idx, s->aug, &n);
        if (st != CV_OK) snprintf(s->err, sizeof s->err, "%s", cv_last_error());

        pthread_mutex_lock(&l->mu);
        if (l->stop) break;
        s->st = st;
        s->n = n;
        s->epoch = e;
        s->index = i;
        l->count++;
        pthread_cond_signal(&l->cv_get);
        if (st != CV_OK) { l->failed = 1; break; }
        advance(l, &l->p_epoch, &l->p_index, n);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_thread(cv_loader *l) {
    if (!l->running) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_put);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->th, NULL);
    l->running = 0;
}

static cv_status start_thread(cv_loader *l) {
    l->stop = 0;
    l->failed = 0;
    l->head = l->count = 0;
    l->p_epoch = l->epoch;
    l->p_index = l->index;
    if (l->depth == 0) return CV_OK;
    if (pthread_create(&l->th, NULL, producer_main, l) != 0)
        return cv_error(CV_ERR_NOMEM, "%s: cannot start the prefetch thread", cv_dataset_path(l->ds));
    l->running = 1;
    return CV_OK;
}

cv_status cv_loader_new(cv_dataset *ds, const cv_loader_opts *o, cv_loader **out) {
    cv_status st = CV_OK;
    *out = NULL;
    cv_loader_opts d = cv_loader_opts_default();
    if (!o) o = &d;
    const char *path = cv_dataset_path(ds);
    if (o->batch < 1 || o->prefetch < 0 || o->prefetch > 1024 || o->split < CV_SPLIT_ALL || o->split > CV_SPLIT_TEST)
        return cv_error(CV_ERR_ARG, "%s: loader: bad batch %d, prefetch %d or split %d", path, o->batch, o->prefetch, o->split);
    int64_t M = cv_dataset_split_count(ds, o->split);
    if (M < 1) return cv_error(CV_ERR_ARG, "%s: the %s split holds no maps", path, cv_split_name(o->split));
    if (o->drop_last && M < o->batch)
        return cv_error(CV_ERR_ARG, "%s: the %s split holds %lld maps, fewer than one batch of %d", path,
                        cv_split_name(o->split), (long long)M, o->batch);
    if (o->augment && cv_dataset_height(ds) != cv_dataset_width(ds))
        return cv_error(CV_ERR_ARG, "%s: dihedral augmentation needs square maps (%d x %d)", path, cv_dataset_height(ds),
                        cv_dataset_width(ds));
    cv_loader *l = calloc(1, sizeof *l);
    if (!l) return cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
    l->ds = ds;
    l->o = *o;
    l->C = cv_dataset_n_chan(ds);
    l->H = cv_dataset_height(ds);
    l->W = cv_dataset_width(ds);
    l->map_elems = (size_t)l->C * l->H * l->W;
    l->M = M;
    l->perm_epoch = -1;
    l->depth = o->prefetch;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_put, NULL);
    pthread_cond_init(&l->cv_get, NULL);
    const size_t bs = (size_t)o->batch * l->map_elems;
    l->members = malloc((size_t)M * sizeof(int64_t));
    l->perm = malloc((size_t)M * sizeof(int64_t));
    l->is_log = calloc((size_t)l->C, sizeof(int));
    l->mean = calloc((size_t)l->C, sizeof(double));
    l->std = calloc((size_t)l->C, sizeof(double));
    l->tmp = malloc(bs * sizeof(float));
    l->q = calloc((size_t)(l->depth ? l->depth : 1), sizeof(cv_slot));
    if (!l->members || !l->perm || !l->is_log || !l->mean || !l->std || !l->tmp || !l->q) goto nomem;
    for (int i = 0; i < l->depth; i++) {
        l->q[i].data = malloc(bs * sizeof(float));
        l->q[i].idx = malloc((size_t)o->batch * sizeof(int64_t));
        l->q[i].aug = malloc((size_t)o->batch * sizeof(int));
        if (!l->q[i].data || !l->q[i].idx || !l->q[i].aug) goto nomem;
    }
    int64_t k = 0;
    for (int64_t m = 0; m < cv_dataset_n_maps(ds); m++)
        if (o->split == CV_SPLIT_ALL || cv_dataset_split(ds, m) == o->split) l->members[k++] = m;
    for (int c = 0; c < l->C; c++) {
        l->is_log[c] = !strcmp(cv_dataset_chan_transform(ds, c), "log10");
        l->mean[c] = cv_dataset_norm_mean(ds, c);
        l->std[c] = cv_dataset_norm_std(ds, c);
    }
    CV_TRY(start_thread(l));
    *out = l;
    return CV_OK;
nomem:
    st = cv_error(CV_ERR_NOMEM, "%s: out of memory for the loader (batch %d, prefetch %d)", path, o->batch, o->prefetch);
fail:
    cv_loader_free(l);
    return st;
}

void cv_loader_free(cv_loader *l) {
    if (!l) return;
    stop_thread(l);
    if (l->q)
        for (int i = 0; i < l->depth; i++) { free(l->q[i].data); free(l->q[i].idx); free(l->q[i].aug); }
    free(l->q);
    free(l->members); free(l->perm); free(l->is_log); free(l->mean); free(l->std); free(l->tmp);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_put);
    pthread_cond_destroy(&l->cv_get);
    free(l);
}

cv_status cv_loader_next(cv_loader *l, float *batch, int64_t *map_index, int *aug, int *n_valid) {
    const int B = l->o.batch;
    int n = 0;
    if (l->depth == 0) {
        int64_t idx_local[64];
        int aug_local[64];
        int64_t *ip = map_index;
        int *ap = aug;
        int64_t *ibuf = NULL;
        int *abuf = NULL;
        if (!ip) { ip = B <= 64 ? idx_local : (ibuf = malloc((size_t)B * sizeof *ibuf)); }
        if (!ap) { ap = B <= 64 ? aug_local : (abuf = malloc((size_t)B * sizeof *abuf)); }
        cv_status st = (ip && ap) ? produce(l, l->epoch, l->index, batch, ip, ap, &n)
                                  : cv_error(CV_ERR_NOMEM, "%s: out of memory", cv_dataset_path(l->ds));
        free(ibuf);
        free(abuf);
        if (st != CV_OK) return st;
    } else {
        pthread_mutex_lock(&l->mu);
        while (l->count == 0) pthread_cond_wait(&l->cv_get, &l->mu);
        cv_slot *s = &l->q[l->head];
        CV_ASSERT(s->epoch == l->epoch && s->index == l->index);
        if (s->st != CV_OK) {
            cv_status st = s->st;
            char msg[CV_LOADER_ERRLEN];
            snprintf(msg, sizeof msg, "%s", s->err);
            pthread_mutex_unlock(&l->mu);
            stop_thread(l);
            cv_status st2 = start_thread(l);      /* a later call retries from here */
            (void)st2;
            return cv_error(st, "%s", msg);
        }
        n = s->n;
        memcpy(batch, s->data, (size_t)B * l->map_elems * sizeof(float));
        if (map_index) memcpy(map_index, s->idx, (size_t)B * sizeof(int64_t));
        if (aug) memcpy(aug, s->aug, (size_t)B * sizeof(int));
        l->head = (l->head + 1) % l->depth;
        l->count--;
        pthread_cond_signal(&l->cv_put);
        pthread_mutex_unlock(&l->mu);
    }
    if (n_valid) *n_valid = n;
    advance(l, &l->epoch, &l->index, n);
    return CV_OK;
}

void cv_loader_tell(const cv_loader *l, int64_t *epoch, int64_t *index) {
    if (epoch) *epoch = l->epoch;
    if (index) *index = l->index;
}

cv_status cv_loader_seek(cv_loader *l, int64_t epoch, int64_t index) {
    const int B = l->o.batch;
    if (epoch < 0 || index < 0 || index >= l->M || index % B || (l->o.drop_last && index + B > l->M))
        return cv_error(CV_ERR_ARG, "%s: loader position (epoch %lld, index %lld) is not the start of a batch of %d in a split of %lld maps",
                        cv_dataset_path(l->ds), (long long)epoch, (long long)index, B, (long long)l->M);
    stop_thread(l);
    l->epoch = epoch;
    l->index = index;
    return start_thread(l);
}
