/* cv_mpi.c -- the MPI communicator, device choice per rank, gradient
 * averaging in buckets overlapped with the backward pass, and replica
 * checks (see cv_mpi.h and doc/scaling.md).
 *
 * Invariant: every rank makes the same MPI calls in the same order -- the
 * buckets are issued in an order fixed by the graph, never by timing -- so
 * non-blocking collectives match up and the summed gradient is identical
 * on every rank.  Without CV_HAVE_MPI, or outside an MPI launcher, every
 * function is the single-process identity and no MPI call is made. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE              /* sched_getaffinity: the cores a rank is bound to */
#endif
#include "model/cv_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#endif

#ifdef CV_HAVE_MPI
#include <mpi.h>
#endif

#define MAX_BUCKETS 4096
#define NAME_LEN 128

struct cv_mpi {
    int started;          /* MPI_Init was called here */
    int rank, size, local_rank, local_size;
#ifdef CV_HAVE_MPI
    MPI_Comm world;
#endif
};

int cv_mpi_built(void) {
#ifdef CV_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* Started by a launcher?  Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE;
 * PMIx (srun --mpi=pmix, prterun) PMIX_RANK; PMI-1/2 launchers PMI_RANK. */
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

cv_status cv_mpi_init(int *argc, char ***argv, cv_mpi **out) {
    cv_mpi *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) return cv_error(CV_ERR_NOMEM, "out of memory");
    c->size = c->local_size = 1;
#ifdef CV_HAVE_MPI
    if (launched()) {
        int inited = 0;
        MPI_Initialized(&inited);
        if (!inited) {
            if (MPI_Init(argc, argv) != MPI_SUCCESS) { free(c); return cv_error(CV_ERR_IO, "MPI_Init failed"); }
            c->started = 1;
        }
        c->world = MPI_COMM_WORLD;
        MPI_Comm_rank(c->world, &c->rank);
        MPI_Comm_size(c->world, &c->size);
        MPI_Comm node;
        if (MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
            MPI_Comm_rank(node, &c->local_rank);
            MPI_Comm_size(node, &c->local_size);
            MPI_Comm_free(&node);
        }
    }
#else
    (void)argc; (void)argv;
    /* started by mpirun on several ranks, but unable to talk to them: each
     * process would train alone and write the same files */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (launched() && n && atoi(n) > 1) {
        free(c);
        return cv_error(CV_ERR_ARG, "started as one of %d MPI ranks, but built without MPI "
                        "(install libopenmpi-dev and run configure again)", atoi(n));
    }
#endif
    *out = c;
    return CV_OK;
}

void cv_mpi_finalize(cv_mpi *c) {
    if (!c) return;
#ifdef CV_HAVE_MPI
    if (c->started) MPI_Finalize();
#endif
    free(c);
}

void cv_mpi_abort(cv_mpi *c, int code) {
#ifdef CV_HAVE_MPI
    if (c && c->size > 1) MPI_Abort(c->world, code);
    if (c && c->started) { MPI_Finalize(); c->started = 0; }
#else
    (void)c; (void)code;
#endif
}

int cv_mpi_rank(const cv_mpi *c)       { return c ? c->rank : 0; }
int cv_mpi_size(const cv_mpi *c)       { return c ? c->size : 1; }
int cv_mpi_local_rank(const cv_mpi *c) { return c ? c->local_rank : 0; }
int cv_mpi_local_size(const cv_mpi *c) { return c ? c->local_size : 1; }

/* Devices in cv_device's order (platforms, then each platform's devices). */
void cv_mpi_device_spec(const cv_mpi *c, char *spec, size_t n) {
    cl_uint np = 0;
    int total = 0, n_gpu = 0, gpu_index[256];
    spec[0] = '\0';
    if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0) return;
    cl_platform_id plats[32];
    if (np > 32) np = 32;
    clGetPlatformIDs(np, plats, NULL);
    for (cl_uint i = 0; i < np; i++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id ds[64];
        if (nd > 64) nd = 64;
        clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, nd, ds, NULL);
        for (cl_uint j = 0; j < nd; j++, total++) {
            cl_device_type t = 0;
            clGetDeviceInfo(ds[j], CL_DEVICE_TYPE, sizeof t, &t, NULL);
            if ((t & CL_DEVICE_TYPE_GPU) && n_gpu < 256) gpu_index[n_gpu++] = total;
        }
    }
    if (total == 0) return;
    int lr = cv_mpi_local_rank(c);
    snprintf(spec, n, "%d", n_gpu ? gpu_index[lr % n_gpu] : lr % total);
}

int cv_mpi_cpu_oversubscribed(const cv_mpi *c, int threads, char *msg, size_t n) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN), bound = cores;
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) bound = CPU_COUNT(&set);
#endif
    int ranks = cv_mpi_local_size(c);
    if (msg && n) msg[0] = '\0';
    if (cores < 1 || threads < 1) return 0;
    int per = cores / ranks > 0 ? (int)(cores / ranks) : 1;
    if (bound < cores && threads > bound) {
        if (msg) snprintf(msg, n, "this rank is bound to %ld of the node's %ld cores but its CPU device runs %d "
                          "threads: set POCL_MAX_PTHREAD_COUNT=%ld (doc/scaling.md)", bound, cores, threads, bound);
        return 1;
    }
    if (bound == cores && (long)ranks * threads > cores) {
        if (msg) snprintf(msg, n, "%d rank%s on this node x %d threads of the CPU device = %ld > %ld cores: the ranks "
                          "oversubscribe the cores; set POCL_MAX_PTHREAD_COUNT=%d (cores / ranks; doc/scaling.md)",
                          ranks, ranks == 1 ? "" : "s", threads, (long)ranks * threads, cores, per);
        return 1;
    }
    return 0;
}

cv_status cv_mpi_sum_f32(cv_mpi *c, float *buf, size_t n) {
#ifdef CV_HAVE_MPI
    if (cv_mpi_size(c) > 1)
        for (size_t o = 0; o < n;) {          /* MPI counts are int */
            int k = n - o > (size_t)1 << 30 ? 1 << 30 : (int)(n - o);
            MPI_Allreduce(MPI_IN_PLACE, buf + o, k, MPI_FLOAT, MPI_SUM, c->world);
            o += (size_t)k;
        }
#else
    (void)c; (void)buf; (void)n;
#endif
    return CV_OK;
}

cv_status cv_mpi_sum_f64(cv_mpi *c, double *buf, int n) {
#ifdef CV_HAVE_MPI
    if (cv_mpi_size(c) > 1) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, c->world);
#else
    (void)c; (void)buf; (void)n;
#endif
    return CV_OK;
}

int cv_mpi_max(cv_mpi *c, int v) {
#ifdef CV_HAVE_MPI
    if (cv_mpi_size(c) > 1) MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, c->world);
#else
    (void)c;
#endif
    return v;
}

/* All ranks' values of v, or NULL for one rank; the caller frees. */
static int64_t *gather_all(cv_mpi *c, int64_t v) {
#ifdef CV_HAVE_MPI
    if (cv_mpi_size(c) < 2) return NULL;
    int64_t *all = malloc((size_t)c->size * sizeof *all);
    long long mine = (long long)v, *tmp = malloc((size_t)c->size * sizeof *tmp);
    if (!all || !tmp) { free(all); free(tmp); return NULL; }
    MPI_Allgather(&mine, 1, MPI_LONG_LONG, tmp, 1, MPI_LONG_LONG, c->world);
    for (int r = 0; r < c->size; r++) all[r] = (int64_t)tmp[r];
    free(tmp);
    return all;
#else
    (void)c; (void)v;
    return NULL;
#endif
}

cv_status cv_mpi_check_same(cv_mpi *c, int64_t v, const char *what) {
    int n = cv_mpi_size(c);
    if (n < 2) return CV_OK;
    int64_t *all = gather_all(c, v);
    if (!all) return cv_error(CV_ERR_NOMEM, "out of memory");
    int same = 1;
    for (int r = 1; r < n; r++) same &= all[r] == all[0];
    cv_status st = CV_OK;
    if (!same) {
        st = cv_error(CV_ERR_ARG, "the ranks disagree on %s:", what);
        for (int r = 0; r < n && r < 64; r++) cv_error_append(" rank %d has %lld;", r, (long long)all[r]);
        cv_error_append(" every rank must read the same files and options");
    }
    free(all);
    return st;
}

cv_status cv_mpi_gather_str(cv_mpi *c, const char *s, char *out) {
    char mine[NAME_LEN];
    snprintf(mine, sizeof mine, "%s", s);
#ifdef CV_HAVE_MPI
    if (cv_mpi_size(c) > 1) {
        MPI_Gather(mine, NAME_LEN, MPI_CHAR, out, NAME_LEN, MPI_CHAR, 0, c->world);
        return CV_OK;
    }
#else
    (void)c;
#endif
    memcpy(out, mine, NAME_LEN);
    return CV_OK;
}

uint64_t cv_hash64(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 1099511628211ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* ------------------------------------------------------- gradient sums */

typedef struct bucket {
    int    chunk;
    size_t off, n;        /* floats within the chunk */
    size_t flat;          /* position in the flat host buffer */
    int    ready;         /* its gradients are final once the backward of this node is enqueued */
} bucket;

struct cv_gradsync {
    cv_mpi   *c;
    cv_ctx   *ctx;
    cv_model *m;
    cv_arena *grads, *params;
    float    *flat;                   /* (n_flat) the one host buffer */
    size_t    n_flat, chunk_base[CV_ARENA_MAX_CHUNKS];
    int       bucketed, n_bucket;
    bucket   *b;                      /* (n_bucket), in issue order: ready descending */
    cl_event *ev;                     /* (n_bucket) read events of this step */
    int       n_issued;
#ifdef CV_HAVE_MPI
    MPI_Request *req;                 /* (n_bucket) */
#endif
    cv_gradsync_stats st;
};

#ifdef CV_HAVE_MPI
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

static int cmp_bucket(const void *x, const void *y) {
    const bucket *a = x, *b = y;
    if (a->ready != b->ready) return a->ready > b->ready ? -1 : 1;    /* finished first, first */
    if (a->chunk != b->chunk) return a->chunk > b->chunk ? -1 : 1;
    return (a->off < b->off) - (a->off > b->off);
}

typedef struct pinfo { int chunk; size_t off, n; int final; } pinfo;

static int cmp_pinfo(const void *x, const void *y) {
    const pinfo *a = x, *b = y;
    if (a->chunk != b->chunk) return a->chunk < b->chunk ? -1 : 1;
    return (a->off > b->off) - (a->off < b->off);
}

/* Cut each chunk into buckets of about bf floats from its end (the
 * parameters of the last layers, whose gradients are final first). */
static cv_status make_buckets(cv_gradsync *s, const cv_graph *g, size_t bf) {
    cv_status st = CV_OK;
    int np = cv_model_n_params(s->m), nn = cv_graph_n_nodes(g);
    const cv_tensor *v = cv_model_tensors(s->m, CV_ARENA_GRADS);
    pinfo *p = malloc((size_t)np * sizeof *p);
    s->b = malloc(MAX_BUCKETS * sizeof *s->b);
    if (!p || !s->b) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (int k = 0; k < np; k++) {
        p[k].chunk = -1;
        for (int c = 0; c < s->grads->n_chunk; c++) if (s->grads->buf[c] == v[k].buf) p[k].chunk = c;
        if (p[k].chunk < 0) { st = cv_error(CV_ERR_ARG, "parameter %d: gradient outside the gradient arena", k); goto fail; }
        p[k].off = (size_t)v[k].off;
        p[k].n = (size_t)cv_tensor_numel(&v[k]);
        p[k].final = nn;     /* never written: final from the start */
    }
    for (int i = 0; i < nn; i++) {
        const cv_node *nd = cv_graph_node(g, i);
        for (int j = 0; j < nd->n_par; j++)
            if (nd->par[j] >= 0 && nd->par[j] < np && i < p[nd->par[j]].final) p[nd->par[j]].final = i;
    }
    qsort(p, (size_t)np, sizeof *p, cmp_pinfo);
    s->n_bucket = 0;
    for (int c = 0; c < s->grads->n_chunk; c++) {
        size_t end = s->grads->used[c];
        int ready = nn, k = np - 1;
        while (k >= 0 && p[k].chunk > c) k--;
        while (end > 0) {
            size_t start = end;
            ready = nn;
            /* take parameters from the end until the bucket is full */
            while (k >= 0 && p[k].chunk == c && (end - start < bf || start == end)) {
                start = p[k].off;
                if (p[k].final < ready) ready = p[k].final;
                k--;
            }
            if (k < 0 || p[k].chunk != c) start = 0;     /* the rest of the chunk */
            if (s->n_bucket == MAX_BUCKETS) { st = cv_error(CV_ERR_ARG, "too many gradient buckets: raise the bucket size"); goto fail; }
            bucket *b = &s->b[s->n_bucket++];
            b->chunk = c; b->off = start; b->n = end - start; b->flat = s->chunk_base[c] + start; b->ready = ready;
            end = start;
        }
    }
    qsort(s->b, (size_t)s->n_bucket, sizeof *s->b, cmp_bucket);
fail:
    free(p);
    return st;
}

cv_status cv_gradsync_new(cv_mpi *c, cv_ctx *ctx, cv_model *m, const cv_graph *g, size_t bucket_bytes,
                          cv_gradsync **out) {
    cv_status st = CV_OK;
    cv_gradsync *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) return cv_error(CV_ERR_NOMEM, "out of memory");
    s->c = c; s->ctx = ctx; s->m = m;
    s->grads = cv_model_arena(m, CV_ARENA_GRADS);
    s->params = cv_model_arena(m, CV_ARENA_PARAMS);
    if (!s->grads->committed || !s->params->committed) { st = cv_error(CV_ERR_ARG, "gradient sync: the model is not on the device"); goto fail; }
    for (int k = 0; k < s->grads->n_chunk; k++) {
        s->chunk_base[k] = s->n_flat;
        s->n_flat += s->grads->used[k];
        if (s->params->used[k] != s->grads->used[k]) { st = cv_error(CV_ERR_ARG, "gradient sync: parameter and gradient arenas differ"); goto fail; }
    }
    s->flat = malloc((s->n_flat ? s->n_flat : 1) * sizeof *s->flat);
    if (!s->flat) { st = cv_error(CV_ERR_NOMEM, "out of memory for the %.1f MiB gradient buffer", s->n_flat * 4.0 / 1048576); goto fail; }
    s->bucketed = bucket_bytes > 0;
    if (s->bucketed) {
        size_t bf = bucket_bytes / sizeof(float);
        CV_TRY(make_buckets(s, g, bf ? bf : 1));
        s->ev = calloc((size_t)s->n_bucket, sizeof *s->ev);
        if (!s->ev) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
#ifdef CV_HAVE_MPI
        s->req = malloc((size_t)s->n_bucket * sizeof *s->req);
        if (!s->req) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
#endif
    } else {
        s->n_bucket = 1;
    }
    s->st.n_buckets = s->n_bucket;
    s->st.bytes = 4.0 * (double)s->n_flat;
    *out = s;
    return CV_OK;
fail:
    cv_gradsync_free(s);
    return st;
}

void cv_gradsync_free(cv_gradsync *s) {
    if (!s) return;
    if (s->ev) for (int i = 0; i < s->n_bucket; i++) if (s->ev[i]) clReleaseEvent(s->ev[i]);
    free(s->ev);
    free(s->b);
    free(s->flat);
#ifdef CV_HAVE_MPI
    free(s->req);
#endif
    free(s);
}

int  cv_gradsync_bucketed(const cv_gradsync *s) { return s->bucketed; }
void cv_gradsync_get_stats(const cv_gradsync *s, cv_gradsync_stats *out) { *out = s->st; }

cv_status cv_gradsync_begin(cv_gradsync *s) {
    s->n_issued = 0;
    return CV_OK;
}

static cv_status issue_read(cv_gradsync *s, int i) {
    const bucket *b = &s->b[i];
    cl_command_queue q = cv_ctx_queue(s->ctx);
    cv_status st = CV_CL(clEnqueueReadBuffer(q, s->grads->buf[b->chunk], CL_FALSE, b->off * sizeof(float),
                                             b->n * sizeof(float), s->flat + b->flat, 0, NULL, &s->ev[i]));
    if (st == CV_OK) st = CV_CL(clFlush(q));      /* let the device start on it */
    return st;
}

cv_status cv_gradsync_node_done(void *user, int node) {
    cv_gradsync *s = user;
    if (!s->bucketed) return CV_OK;
    while (s->n_issued < s->n_bucket && s->b[s->n_issued].ready >= node) {
        cv_status st = issue_read(s, s->n_issued);
        if (st != CV_OK) return st;
        s->n_issued++;
    }
    return CV_OK;
}

#ifdef CV_HAVE_MPI
/* Wait for a read while letting the started reductions progress (Open
 * MPI's non-blocking collectives move on only inside MPI calls). */
static cv_status wait_read(cv_gradsync *s, int i) {
    for (;;) {
        cl_int es = CL_QUEUED;
        cv_status st = CV_CL(clGetEventInfo(s->ev[i], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof es, &es, NULL));
        if (st != CV_OK) return st;
        if (es < 0) return cv_error(CV_ERR_CL, "reading gradient bucket %d from the device failed (%d)", i, (int)es);
        if (es == CL_COMPLETE) return CV_OK;
        if (i > 0) {
            int done;
            MPI_Testall(i, s->req, &done, MPI_STATUSES_IGNORE);
        }
        struct timespec ts = { 0, 20000 };
        nanosleep(&ts, NULL);
    }
}
#endif

cv_status cv_gradsync_end(cv_gradsync *s) {
    cv_status st = CV_OK;
    cl_command_queue q = cv_ctx_queue(s->ctx);
#ifdef CV_HAVE_MPI
    if (s->bucketed) {
        for (int i = s->n_issued; i < s->n_bucket; i++) CV_TRY(issue_read(s, i));
        s->n_issued = s->n_bucket;
        for (int i = 0; i < s->n_bucket; i++) {
            CV_TRY(wait_read(s, i));
            MPI_Iallreduce(MPI_IN_PLACE, s->flat + s->b[i].flat, (int)s->b[i].n, MPI_FLOAT, MPI_SUM, s->c->world,
                           &s->req[i]);
        }
        double t1 = now_s();
        for (int i = 0; i < s->n_bucket; i++) {
            const bucket *b = &s->b[i];
            MPI_Wait(&s->req[i], MPI_STATUS_IGNORE);
            CV_TRY(CV_CL(clEnqueueWriteBuffer(q, s->grads->buf[b->chunk], CL_FALSE, b->off * sizeof(float),
                                              b->n * sizeof(float), s->flat + b->flat, 0, NULL, NULL)));
        }
        s->st.reduce_s += now_s() - t1;
    } else {
        for (int c = 0; c < s->grads->n_chunk; c++)
            CV_TRY(CV_CL(clEnqueueReadBuffer(q, s->grads->buf[c], CL_FALSE, 0, s->grads->used[c] * sizeof(float),
                                             s->flat + s->chunk_base[c], 0, NULL, NULL)));
        CV_TRY(cv_ctx_finish(s->ctx));
        double t1 = now_s();
        CV_TRY(cv_mpi_sum_f32(s->c, s->flat, s->n_flat));
        s->st.reduce_s += now_s() - t1;
        for (int c = 0; c < s->grads->n_chunk; c++)
            CV_TRY(CV_CL(clEnqueueWriteBuffer(q, s->grads->buf[c], CL_FALSE, 0, s->grads->used[c] * sizeof(float),
                                              s->flat + s->chunk_base[c], 0, NULL, NULL)));
    }
#else
    (void)q;
    st = cv_error(CV_ERR_ARG, "gradient sync: this build has no MPI");
    goto fail;
#endif
    s->st.steps++;
fail:
    if (s->ev)
        for (int i = 0; i < s->n_bucket; i++)
            if (s->ev[i]) { clReleaseEvent(s->ev[i]); s->ev[i] = NULL; }
    return st;
}

cv_status cv_gradsync_check_params(cv_gradsync *s, int64_t step) {
    cv_status st = CV_OK;
    int n = cv_mpi_size(s->c);
    int64_t *all = NULL;
    if (n < 2) return CV_OK;
    cl_command_queue q = cv_ctx_queue(s->ctx);
    for (int c = 0; c < s->params->n_chunk; c++)
        CV_TRY(CV_CL(clEnqueueReadBuffer(q, s->params->buf[c], CL_FALSE, 0, s->params->used[c] * sizeof(float),
                                         s->flat + s->chunk_base[c], 0, NULL, NULL)));
    CV_TRY(cv_ctx_finish(s->ctx));
    uint64_t h = cv_hash64(s->flat, s->n_flat * sizeof(float), 14695981039346656037ULL);
    all = gather_all(s->c, (int64_t)h);
    if (!all) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    int bad = 0;
    for (int r = 1; r < n; r++) bad += all[r] != all[0];
    if (bad) {
        st = cv_error(CV_ERR_NUMERIC, "after step %lld the parameters of %d rank%s differ from rank 0's:", (long long)step,
                      bad, bad > 1 ? "s" : "");
        for (int r = 1, k = 0; r < n && k < 16; r++)
            if (all[r] != all[0]) { cv_error_append(" rank %d", r); k++; }
        cv_error_append(" (parameter checksums %016llx on rank 0", (unsigned long long)all[0]);
        for (int r = 1; r < n; r++)
            if (all[r] != all[0]) { cv_error_append(", %016llx on rank %d", (unsigned long long)all[r], r); break; }
        cv_error_append("); the replicas diverged: different checkpoints read by the ranks, different devices or "
                        "drivers, or a fault");
    }
fail:
    free(all);
    return st;
}
