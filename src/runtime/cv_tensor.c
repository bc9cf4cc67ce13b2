/* cv_tensor.c -- tensor views and arenas.
 * Invariant: a view never outlives the arena chunk it points into, and
 * views are never freed individually. */
#include "runtime/cv_tensor.h"

#include <string.h>

int64_t cv_shape_numel(const int64_t s[4]) { return s[0] * s[1] * s[2] * s[3]; }
int64_t cv_tensor_numel(const cv_tensor *t) { return cv_shape_numel(t->shape); }
size_t  cv_tensor_nbytes(const cv_tensor *t) { return (size_t)cv_tensor_numel(t) * sizeof(float); }

cv_tensor cv_tensor_reshape(const cv_tensor *t, int64_t n, int64_t c, int64_t h, int64_t w) {
    CV_ASSERT(n * c * h * w == cv_tensor_numel(t));
    cv_tensor r = *t;
    r.shape[0] = n; r.shape[1] = c; r.shape[2] = h; r.shape[3] = w;
    return r;
}

const char *cv_shape_str(const int64_t s[4], char *buf, size_t n) {
    snprintf(buf, n, "%lldx%lldx%lldx%lld", (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
    return buf;
}

int cv_shape_eq(const int64_t a[4], const int64_t b[4]) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

cv_status cv_tensor_upload(cv_ctx *ctx, const cv_tensor *t, const float *host) {
    if (cv_tensor_numel(t) == 0) return CV_OK;
    return CV_CL(clEnqueueWriteBuffer(cv_ctx_queue(ctx), t->buf, CL_TRUE, t->off * sizeof(float),
                                      cv_tensor_nbytes(t), host, 0, NULL, NULL));
}

cv_status cv_tensor_download(cv_ctx *ctx, const cv_tensor *t, float *host) {
    if (cv_tensor_numel(t) == 0) return CV_OK;
    return CV_CL(clEnqueueReadBuffer(cv_ctx_queue(ctx), t->buf, CL_TRUE, t->off * sizeof(float),
                                     cv_tensor_nbytes(t), host, 0, NULL, NULL));
}

/* The widest pattern (up to 64 bytes) that tiles [off, off + n) floats:
 * drivers fill much faster with wide patterns (PoCL: 2.5x for 64 bytes). */
static size_t fill_pattern(size_t off, size_t n) {
    size_t p = 16;
    while (p > 1 && (off % p || n % p)) p /= 2;
    return p;
}

cv_status cv_tensor_fill(cv_ctx *ctx, const cv_tensor *t, float v) {
    if (cv_tensor_numel(t) == 0) return CV_OK;
    float pat[16];
    for (int i = 0; i < 16; i++) pat[i] = v;
    size_t np = fill_pattern(t->off, (size_t)cv_tensor_numel(t));
    return CV_CL(clEnqueueFillBuffer(cv_ctx_queue(ctx), t->buf, pat, np * sizeof(float), t->off * sizeof(float),
                                     cv_tensor_nbytes(t), 0, NULL, NULL));
}

void cv_arena_init(cv_arena *a, cv_ctx *ctx, const char *what) {
    memset(a, 0, sizeof *a);
    a->what = what;
    a->align_floats = cv_ctx_align(ctx) / sizeof(float);
    if (a->align_floats < 16) a->align_floats = 16;          /* 64-byte lines at least */
    size_t cap = cv_ctx_max_alloc(ctx) / sizeof(float);
    if (cap > ((size_t)1 << 30)) cap = (size_t)1 << 30;      /* 4 GiB chunks at most */
    a->chunk_floats = cap / a->align_floats * a->align_floats;
}

cv_status cv_arena_reserve(cv_arena *a, size_t n, cv_arena_slot *slot) {
    CV_ASSERT(!a->committed);
    size_t need = (n + a->align_floats - 1) / a->align_floats * a->align_floats;
    if (need == 0) need = a->align_floats;
    if (need > a->chunk_floats)
        return cv_error(CV_ERR_DEVMEM, "%s: one tensor of %.2f MiB exceeds the device's largest allocation (%.2f MiB)",
                        a->what, n * 4.0 / 1048576.0, a->chunk_floats * 4.0 / 1048576.0);
    int c = a->n_chunk - 1;
    if (c < 0 || a->used[c] + need > a->chunk_floats) {
        if (a->n_chunk == CV_ARENA_MAX_CHUNKS) return cv_error(CV_ERR_DEVMEM, "%s: too many chunks", a->what);
        c = a->n_chunk++;
        a->used[c] = 0;
    }
    slot->chunk = c;
    slot->off = a->used[c];
    a->used[c] += need;
    return CV_OK;
}

cv_status cv_arena_commit(cv_arena *a, cv_ctx *ctx) {
    CV_ASSERT(!a->committed);
    for (int c = 0; c < a->n_chunk; c++) {
        char what[128];
        if (a->n_chunk > 1) snprintf(what, sizeof what, "%s (chunk %d of %d)", a->what, c + 1, a->n_chunk);
        else snprintf(what, sizeof what, "%s", a->what);
        cv_status st = cv_ctx_alloc(ctx, what, a->used[c] * sizeof(float), 1, &a->buf[c]);
        if (st != CV_OK) { cv_arena_release(a); return st; }
    }
    a->committed = 1;
    return CV_OK;
}

cv_tensor cv_arena_view(const cv_arena *a, cv_arena_slot s, const int64_t shape[4]) {
    CV_ASSERT(a->committed && s.chunk >= 0 && s.chunk < a->n_chunk);
    cv_tensor t;
    t.buf = a->buf[s.chunk];
    t.off = s.off;
    memcpy(t.shape, shape, sizeof t.shape);
    return t;
}

size_t cv_arena_nbytes(const cv_arena *a) {
    size_t n = 0;
    for (int c = 0; c < a->n_chunk; c++) n += a->used[c] * sizeof(float);
    return n;
}

cv_status cv_arena_zero(cv_arena *a, cv_ctx *ctx) {
    float z[16] = { 0 };
    for (int c = 0; c < a->n_chunk; c++) {
        size_t np = fill_pattern(0, a->used[c]);
        cv_status st = CV_CL(clEnqueueFillBuffer(cv_ctx_queue(ctx), a->buf[c], z, np * sizeof(float), 0,
                                                 a->used[c] * sizeof(float), 0, NULL, NULL));
        if (st != CV_OK) return st;
    }
    return CV_OK;
}

void cv_arena_release(cv_arena *a) {
    for (int c = 0; c < a->n_chunk; c++) if (a->buf[c]) clReleaseMemObject(a->buf[c]);
    const char *what = a->what;
    size_t cf = a->chunk_floats, af = a->align_floats;
    memset(a, 0, sizeof *a);
    a->what = what; a->chunk_floats = cf; a->align_floats = af;
}
