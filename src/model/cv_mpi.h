/* cv_mpi.h -- data-parallel training over MPI: the communicator, the
 * device each rank takes, gradient averaging from one flat host buffer
 * (bucketed, overlapped with the backward pass), replica checksums.
 *
 * MPI is optional at build time (configure --without-mpi, or no Open MPI):
 * then, and whenever a program was not started by an MPI launcher, the
 * communicator is a single process of size 1 and no MPI call is ever made,
 * so single-process programs behave exactly as they do without MPI.
 *
 * Data parallelism (see doc/scaling.md): every rank runs the same seeded
 * loader, so all ranks see the same global batch of B maps; rank r of R
 * computes rows [r B/R, (r + 1) B/R) with the backward scale 1/B, and the
 * gradients are SUMMED over the ranks, which gives the single-process
 * gradient of the whole batch.  Then every rank applies the same update to
 * the same parameters.
 *
 * Errors: MPI's default handler (errors are fatal to the job) is kept, so
 * no rank can wait forever for a dead one; the library itself never exits
 * or prints.  A communicator is used by one thread. */
#ifndef CV_MPI_H
#define CV_MPI_H

#include "model/cv_model.h"

typedef struct cv_mpi cv_mpi;

/* 1 if this build has MPI. */
int       cv_mpi_built(void);
/* Start MPI (MPI_Init) if this process was started by an MPI launcher
 * (Open MPI's mpirun, PMIx or PMI environment), otherwise make a
 * single-process communicator.  argc/argv are MPI_Init's (may be NULL).
 * Caller ends with cv_mpi_finalize. */
cv_status cv_mpi_init(int *argc, char ***argv, cv_mpi **out);
/* MPI_Finalize if MPI was started; frees c.  NULL is a no-op. */
void      cv_mpi_finalize(cv_mpi *c);
/* End the whole job now with `code` (MPI_Abort) when more than one rank
 * runs; otherwise return (the caller exits). */
void      cv_mpi_abort(cv_mpi *c, int code);

/* NULL means a single process: rank 0 of 1. */
int cv_mpi_rank(const cv_mpi *c);
int cv_mpi_size(const cv_mpi *c);
int cv_mpi_local_rank(const cv_mpi *c);     /* rank among the ranks of this node */
int cv_mpi_local_size(const cv_mpi *c);

/* The OpenCL device of this rank, as a cv_ctx_opts.device string ("IDX"
 * over all devices): node-local rank modulo the number of GPUs (or of all
 * devices when there is no GPU).  Empty when nothing was found (the
 * context then reports the missing device). */
void      cv_mpi_device_spec(const cv_mpi *c, char *spec, size_t n);

/* For a CPU device running `threads` threads per rank (its compute units;
 * PoCL: POCL_MAX_PTHREAD_COUNT, else every core): 1 when this node's ranks
 * ask for more threads than it has cores (ranks x threads > online cores),
 * or when this rank is bound to fewer cores than its threads; msg (may be
 * NULL) then says so and what to set.  0 otherwise. */
int       cv_mpi_cpu_oversubscribed(const cv_mpi *c, int threads, char *msg, size_t n);

/* In-place sums over the ranks (no-ops for one rank). */
cv_status cv_mpi_sum_f32(cv_mpi *c, float *buf, size_t n);
cv_status cv_mpi_sum_f64(cv_mpi *c, double *buf, int n);
/* The largest of the ranks' values of v, on every rank (e.g. a stop flag). */
int       cv_mpi_max(cv_mpi *c, int v);
/* Every rank must hold the same value v (e.g. a step count or a parameter
 * count).  Otherwise CV_ERR_ARG on every rank, naming `what` and each
 * rank's value. */
cv_status cv_mpi_check_same(cv_mpi *c, int64_t v, const char *what);
/* Gather a short string (< 128 bytes) from every rank to rank 0:
 * out (size x 128) is filled on rank 0 only. */
cv_status cv_mpi_gather_str(cv_mpi *c, const char *s, char *out);

/* 64-bit hash of n bytes (FNV-1a over 8-byte words), continuing h. */
uint64_t  cv_hash64(const void *p, size_t n, uint64_t h);

/* ---- gradient averaging ------------------------------------------------
 * The gradient arena is copied into one flat host buffer (its chunks end to
 * end), summed over the ranks with MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT,
 * MPI_SUM), and written back; the host buffer is allocated once.
 *
 * bucket_bytes > 0: buckets of about that size, in the order the backward
 * pass finishes them (the last layers first).  The read of a bucket is
 * enqueued as soon as the last node that writes it has been enqueued
 * (cv_gradsync_node_done as the plan's backward hook), and its
 * MPI_Iallreduce starts as soon as the read completes, while the device
 * is still computing the earlier layers.  bucket_bytes == 0: one blocking
 * MPI_Allreduce of the whole buffer after the backward pass. */
typedef struct cv_gradsync cv_gradsync;

typedef struct cv_gradsync_stats {
    int64_t steps;          /* reductions done */
    double  bytes;          /* per step: 4 x floats of the gradient arena */
    int     n_buckets;
    double  reduce_s;       /* total communication time not hidden by the backward
                               pass: blocking: in MPI_Allreduce (after the backward);
                               bucketed: from the completion of the last bucket's read
                               to the end of the last reduction.  Either includes
                               waiting for slower ranks. */
} cv_gradsync_stats;

/* m must be on the device; g is the training graph whose backward fills the
 * gradients.  c must outlive the result. */
cv_status cv_gradsync_new(cv_mpi *c, cv_ctx *ctx, cv_model *m, const cv_graph *g, size_t bucket_bytes,
                          cv_gradsync **out);
void      cv_gradsync_free(cv_gradsync *s);
int       cv_gradsync_bucketed(const cv_gradsync *s);
/* Per step, after the parameter gradients were zeroed: cv_gradsync_begin,
 * then the backward (with cv_gradsync_node_done as its hook when
 * bucketed), then cv_gradsync_end; after it the queue holds the writes of
 * the summed gradients, so kernels enqueued later see them. */
cv_status cv_gradsync_begin(cv_gradsync *s);
cv_status cv_gradsync_node_done(void *s, int node);
cv_status cv_gradsync_end(cv_gradsync *s);
void      cv_gradsync_get_stats(const cv_gradsync *s, cv_gradsync_stats *out);
/* Replica check: hash the parameter arena and compare across the ranks.
 * A mismatch is CV_ERR_NUMERIC on every rank, naming the ranks whose
 * parameters differ from rank 0's and the step. */
cv_status cv_gradsync_check_params(cv_gradsync *s, int64_t step);

#endif
