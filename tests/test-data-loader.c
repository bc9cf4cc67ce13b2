/* test-data-loader.c -- the batch loader on the tiny fixture: epoch orders
 * are seeded permutations of the split, every row is exactly the
 * normalised map under its dihedral transform, prefetch depth changes no
 * bit, tell/seek resumes bit-identically, the evaluation loader pads its
 * last batch, and read errors reach the caller naming file and map. */
#include "tap.h"
#include "dataset/cv_loader.h"

#include <math.h>
#include <netcdf.h>
#include <unistd.h>

static const char *srcdir(void) {
    const char *s = getenv("top_srcdir");
    return s && *s ? s : CV_SRCDIR;
}

/* What the loader must produce for map m under code k (mirrors its formula). */
static void expected(cv_dataset *ds, int64_t m, int k, float *raw, float *out) {
    const int C = cv_dataset_n_chan(ds), H = cv_dataset_height(ds);
    const size_t plane = (size_t)H * H;
    cv_dataset_read(ds, m, 1, raw);
    for (int ch = 0; ch < C; ch++) {
        const double mu = cv_dataset_norm_mean(ds, ch), is = 1.0 / cv_dataset_norm_std(ds, ch);
        for (size_t i = 0; i < plane; i++) raw[ch * plane + i] = (float)((log10((double)raw[ch * plane + i]) - mu) * is);
    }
    cv_data_dihedral(raw, out, C, H, k);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

typedef struct { float *x; int64_t *idx; int *aug; } run_t;

/* n batches from a fresh loader (after an optional seek). */
static cv_status run(cv_dataset *ds, const cv_loader_opts *o, int n, int64_t se, int64_t si, run_t *r) {
    cv_loader *l = NULL;
    cv_status st = cv_loader_new(ds, o, &l);
    if (st != CV_OK) return st;
    if (se >= 0) st = cv_loader_seek(l, se, si);
    const size_t bs = (size_t)o->batch * cv_dataset_n_chan(ds) * cv_dataset_height(ds) * cv_dataset_width(ds);
    for (int b = 0; b < n && st == CV_OK; b++)
        st = cv_loader_next(l, r->x + b * bs, r->idx + b * o->batch, r->aug + b * o->batch, NULL);
    cv_loader_free(l);
    return st;
}

int main(void) {
    tap_begin();
    char path[2048];
    snprintf(path, sizeof path, "%s/data/tiny-16.nc", srcdir());
    cv_dataset *ds = NULL;
    cv_status st = cv_dataset_open(path, &ds);
    CV_CHECK_OK(st == CV_OK, "open %s", st ? cv_last_error() : "the tiny fixture");
    if (st != CV_OK) return tap_end();
    const int64_t M = cv_dataset_n_maps(ds);
    const int C = cv_dataset_n_chan(ds), H = cv_dataset_height(ds);
    const size_t me = (size_t)C * H * H;
    enum { B = 4, NB = 40 };
    float *raw = malloc(me * sizeof(float)), *want = malloc(me * sizeof(float)), *s1 = malloc(me * 4), *s2 = malloc(me * 4);
    run_t r1 = { malloc(NB * B * me * 4), malloc(NB * B * 8), malloc(NB * B * sizeof(int)) };
    run_t r2 = { malloc(NB * B * me * 4), malloc(NB * B * 8), malloc(NB * B * sizeof(int)) };

    cv_loader_opts o = cv_loader_opts_default();
    o.split = CV_SPLIT_ALL;
    o.batch = B;
    o.seed = 3;
    o.augment = 1;
    o.prefetch = 2;

    /* epoch orders */
    cv_loader *l = NULL, *l2 = NULL;
    st = cv_loader_new(ds, &o, &l);
    CV_CHECK_OK(st == CV_OK && cv_loader_epoch_maps(l) == M && cv_loader_epoch_batches(l) == M / B,
                "loader over all %lld maps: %lld batches per epoch", (long long)M, (long long)(M / B));
    if (st != CV_OK) return tap_end();
    int64_t *e0 = malloc(M * 8), *e1 = malloc(M * 8), *f0 = malloc(M * 8);
    cv_loader_epoch_order(l, 0, e0);
    cv_loader_epoch_order(l, 1, e1);
    cv_loader_opts o2 = o;
    o2.seed = 4;
    cv_loader_new(ds, &o2, &l2);
    cv_loader_epoch_order(l2, 0, f0);
    cv_loader_free(l2);
    l2 = NULL;
    int perm = 1;
    char *seen = calloc(M, 1);
    for (int64_t i = 0; i < M; i++) {
        if (e0[i] < 0 || e0[i] >= M || seen[e0[i]]++) perm = 0;
    }
    CV_CHECK_OK(perm && memcmp(e0, e1, M * 8) && memcmp(e0, f0, M * 8),
                "epoch order: a permutation, new each epoch, other seed other order");
    free(seen);

    /* the first epoch: order, and each row the exact normalised, transformed map */
    int order_ok = 1, rows_ok = 1, codes = 0;
    int64_t idx[B];
    int aug[B], nv = 0;
    float *batch = malloc(B * me * 4);
    for (int64_t b = 0; b < M / B; b++) {
        st = cv_loader_next(l, batch, idx, aug, &nv);
        if (st != CV_OK || nv != B) { order_ok = 0; break; }
        for (int k = 0; k < B; k++) {
            if (idx[k] != e0[b * B + k]) order_ok = 0;
            codes |= 1 << aug[k];
            expected(ds, idx[k], aug[k], raw, want);
            if (memcmp(want, batch + k * me, me * 4)) rows_ok = 0;
        }
    }
    int64_t pe, pi;
    cv_loader_tell(l, &pe, &pi);
    CV_CHECK_OK(order_ok && pe == 1 && pi == 0, "first epoch follows the epoch order, then epoch 1 starts (drop_last)");
    CV_CHECK_OK(rows_ok, "every row is bit-exactly dihedral(normalise(log10(map)))");
    CV_CHECK_OK(codes == 0xff, "all 8 dihedral transforms used (mask %#x)", codes);
    /* augmentation is an exact permutation of the un-augmented map */
    int perm_ok = 1;
    for (int k = 0; k < B; k++) {
        expected(ds, idx[k], 0, raw, want);
        memcpy(s1, want, me * 4);
        memcpy(s2, batch + k * me, me * 4);
        for (int ch = 0; ch < C; ch++) {
            qsort(s1 + ch * H * H, (size_t)H * H, 4, cmp_float);
            qsort(s2 + ch * H * H, (size_t)H * H, 4, cmp_float);
        }
        if (memcmp(s1, s2, me * 4)) perm_ok = 0;
    }
    CV_CHECK_OK(perm_ok, "augmented rows hold exactly the values of the plain map, per channel");
    cv_loader_free(l);
    l = NULL;

    /* prefetch depth changes nothing; same seed same batches across epochs */
    o.prefetch = 0;
    cv_status sa = run(ds, &o, NB, -1, 0, &r1);
    o.prefetch = 5;
    cv_status sb = run(ds, &o, NB, -1, 0, &r2);
    CV_CHECK_OK(sa == CV_OK && sb == CV_OK && !memcmp(r1.x, r2.x, NB * B * me * 4) && !memcmp(r1.idx, r2.idx, NB * B * 8) &&
                    !memcmp(r1.aug, r2.aug, NB * B * sizeof(int)),
                "prefetch 0 and 5: the same %d batches (%d epochs), bit for bit", NB, (int)(NB / (M / B)));

    /* tell/seek: resume in the middle of epoch 2 */
    st = cv_loader_new(ds, &o, &l);
    for (int b = 0; b < 25 && st == CV_OK; b++) st = cv_loader_next(l, batch, NULL, NULL, NULL);
    cv_loader_tell(l, &pe, &pi);
    cv_loader_free(l);
    l = NULL;
    memset(r2.x, 0, NB * B * me * 4);
    o.prefetch = 1;
    sb = run(ds, &o, NB - 25, pe, pi, &r2);
    CV_CHECK_OK(st == CV_OK && sb == CV_OK && pe == 25 / (M / B) && pi == 25 % (M / B) * B && !memcmp(r1.x + 25 * B * me, r2.x, (NB - 25) * B * me * 4) &&
                    !memcmp(r1.idx + 25 * B, r2.idx, (NB - 25) * B * 8),
                "seek to a told position (epoch %lld, index %lld) resumes bit-identically", (long long)pe, (long long)pi);
    st = cv_loader_new(ds, &o, &l);
    cv_status s_bad = st ? st : cv_loader_seek(l, 0, 3);
    cv_status s_bad2 = st ? st : cv_loader_seek(l, 0, M);
    CV_CHECK_OK(s_bad == CV_ERR_ARG && s_bad2 == CV_ERR_ARG, "seek to a position that is not a batch start is refused");
    cv_loader_free(l);
    l = NULL;

    /* evaluation loader on the test split: in order, last batch padded */
    cv_loader_opts oe = cv_loader_opts_default();
    oe.split = CV_SPLIT_TEST;
    oe.batch = B;
    oe.shuffle = 0;
    oe.drop_last = 0;
    oe.augment = 0;
    oe.normalise = 0;
    st = cv_loader_new(ds, &oe, &l);
    const int64_t MT = cv_dataset_split_count(ds, CV_SPLIT_TEST);
    int eval_ok = st == CV_OK && cv_loader_epoch_batches(l) == (MT + B - 1) / B;
    int64_t prev = -1, got = 0;
    for (int64_t b = 0; eval_ok && b < (MT + B - 1) / B; b++) {
        if (cv_loader_next(l, batch, idx, aug, &nv) != CV_OK) { eval_ok = 0; break; }
        for (int k = 0; k < B; k++) {
            if (k < nv) {
                cv_dataset_read(ds, idx[k], 1, raw);
                if (idx[k] <= prev || cv_dataset_split(ds, idx[k]) != CV_SPLIT_TEST || memcmp(raw, batch + k * me, me * 4)) eval_ok = 0;
                prev = idx[k];
                got++;
            } else {
                for (size_t i = 0; i < me; i++) if (batch[k * me + i] != 0.0f) eval_ok = 0;
                if (idx[k] != -1) eval_ok = 0;
            }
        }
    }
    cv_loader_tell(l, &pe, &pi);
    CV_CHECK_OK(eval_ok && got == MT && nv == (int)(MT % B ? MT % B : B) && pe == 1 && pi == 0,
                "test split, no shuffle, no drop: %lld maps in order in physical units, last batch %d rows + zero padding",
                (long long)got, nv);
    cv_loader_free(l);
    l = NULL;

    /* train split only, and a split too small for one batch */
    oe.split = CV_SPLIT_TRAIN;
    oe.drop_last = 1;
    oe.shuffle = 1;
    st = cv_loader_new(ds, &oe, &l);
    int train_ok = st == CV_OK;
    for (int b = 0; train_ok && b < 10; b++) {
        if (cv_loader_next(l, batch, idx, NULL, NULL) != CV_OK) train_ok = 0;
        for (int k = 0; k < B; k++) train_ok &= cv_dataset_split(ds, idx[k]) == CV_SPLIT_TRAIN;
    }
    CV_CHECK_OK(train_ok, "train loader returns train maps only");
    cv_loader_free(l);
    l = NULL;
    oe.batch = (int)MT + 1;
    oe.split = CV_SPLIT_TEST;
    st = cv_loader_new(ds, &oe, &l);
    CV_CHECK_OK(st == CV_ERR_ARG && l == NULL && strstr(cv_last_error(), "test"), "a batch larger than the split is refused: %s",
                cv_last_error());

    /* a value that log10 cannot take, written behind the writer's back */
    char bad[2048];
    const char *t = getenv("TMPDIR");
    snprintf(bad, sizeof bad, "%s/test-data-loader.%ld.nc", t && *t ? t : ".", (long)getpid());
    {
        FILE *fi = fopen(path, "rb"), *fo = fopen(bad, "wb");
        char buf[65536];
        size_t n;
        while (fi && fo && (n = fread(buf, 1, sizeof buf, fi)) > 0) fwrite(buf, 1, n, fo);
        if (fi) fclose(fi);
        if (fo) fclose(fo);
    }
    int ncid, v;
    float zero = 0.0f;
    size_t start[4] = { 7, 1, 2, 3 }, cnt[4] = { 1, 1, 1, 1 };
    int rc = nc_open(bad, NC_WRITE, &ncid);
    if (!rc) rc = nc_inq_varid(ncid, "fields", &v);
    if (!rc) rc = nc_put_vara_float(ncid, v, start, cnt, &zero);
    if (!rc) rc = nc_close(ncid);
    cv_dataset *dbad = NULL;
    st = rc ? CV_ERR_IO : cv_dataset_open(bad, &dbad);
    cv_loader_opts ob = cv_loader_opts_default();
    ob.split = CV_SPLIT_ALL;
    ob.shuffle = 0;
    ob.batch = 4;
    ob.prefetch = 2;
    if (st == CV_OK) st = cv_loader_new(dbad, &ob, &l);
    cv_status e1s = CV_OK, e2s = CV_OK;
    char msg[1024] = "";
    if (st == CV_OK) {
        cv_loader_next(l, batch, NULL, NULL, NULL);                 /* maps 0-3 */
        e1s = cv_loader_next(l, batch, NULL, NULL, NULL);           /* maps 4-7: map 7 bad */
        snprintf(msg, sizeof msg, "%s", cv_last_error());
        cv_loader_tell(l, &pe, &pi);
        e2s = cv_loader_next(l, batch, NULL, NULL, NULL);           /* retried: still bad */
    }
    CV_CHECK_OK(st == CV_OK && e1s == CV_ERR_NUMERIC && e2s == CV_ERR_NUMERIC && strstr(msg, "map 7") && strstr(msg, bad) &&
                    strstr(msg, "y 2, x 3") && pe == 0 && pi == 4,
                "a zero in map 7: the batch call fails naming file, map and pixel, position kept: %s", msg);
    cv_loader_free(l);
    cv_dataset_free(dbad);
    remove(bad);

    free(e0); free(e1); free(f0); free(batch); free(raw); free(want); free(s1); free(s2);
    free(r1.x); free(r1.idx); free(r1.aug); free(r2.x); free(r2.idx); free(r2.aug);
    cv_dataset_free(ds);
    return tap_end();
}
