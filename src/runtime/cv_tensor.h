/* cv_tensor.h -- non-owning tensor views and one-block arenas.
 *
 * A cv_tensor is a view {buf, off, shape}: float32, NCHW, contiguous, `off`
 * counted in floats from the start of buf.  Views are never freed; the
 * arena (or whoever created buf) owns the memory.  Kernels receive the
 * offset as a ulong argument (no sub-buffers, so no alignment rules).
 *
 * A cv_arena lays out many tensors in as few cl_mem blocks as the device's
 * largest allocation allows (llm.c's one block per role, split into chunks
 * as ggml's gallocr does): reserve every tensor first, then commit once. */
#ifndef CV_TENSOR_H
#define CV_TENSOR_H

#include "runtime/cv_device.h"

typedef struct cv_tensor {
    cl_mem  buf;        /* borrowed */
    size_t  off;        /* in floats */
    int64_t shape[4];   /* N, C, H, W */
} cv_tensor;

int64_t cv_tensor_numel(const cv_tensor *t);
size_t  cv_tensor_nbytes(const cv_tensor *t);
/* A view of the same memory with another shape of equal numel. */
cv_tensor cv_tensor_reshape(const cv_tensor *t, int64_t n, int64_t c, int64_t h, int64_t w);
/* Blocking copies between host (caller-owned, numel floats) and device. */
cv_status cv_tensor_upload(cv_ctx *ctx, const cv_tensor *t, const float *host);
cv_status cv_tensor_download(cv_ctx *ctx, const cv_tensor *t, float *host);
/* Enqueue a fill with a constant (no host sync). */
cv_status cv_tensor_fill(cv_ctx *ctx, const cv_tensor *t, float v);
/* "4x32x64x64" */
const char *cv_shape_str(const int64_t shape[4], char *buf, size_t n);
int cv_shape_eq(const int64_t a[4], const int64_t b[4]);
int64_t cv_shape_numel(const int64_t s[4]);   /* elements of an NCHW shape */

#define CV_ARENA_MAX_CHUNKS 64

typedef struct cv_arena_slot { int chunk; size_t off; } cv_arena_slot;  /* off in floats */

typedef struct cv_arena {
    const char *what;                       /* "activations", names errors */
    int         n_chunk;
    cl_mem      buf[CV_ARENA_MAX_CHUNKS];
    size_t      used[CV_ARENA_MAX_CHUNKS];  /* floats */
    size_t      chunk_floats;               /* chunk capacity, floats */
    size_t      align_floats;
    int         committed;
} cv_arena;

/* Prepare an empty arena for ctx's device (no device memory yet). */
void      cv_arena_init(cv_arena *a, cv_ctx *ctx, const char *what);
/* Reserve n floats; the slot becomes usable after cv_arena_commit. */
cv_status cv_arena_reserve(cv_arena *a, size_t n, cv_arena_slot *slot);
/* Allocate the reserved chunks, zero-filled. */
cv_status cv_arena_commit(cv_arena *a, cv_ctx *ctx);
cv_tensor cv_arena_view(const cv_arena *a, cv_arena_slot s, const int64_t shape[4]);
size_t    cv_arena_nbytes(const cv_arena *a);
/* Zero every chunk (enqueued). */
cv_status cv_arena_zero(cv_arena *a, cv_ctx *ctx);
void      cv_arena_release(cv_arena *a);    /* back to the empty state */

#endif
