/* cv_op_elem.c -- elementwise, resampling and channel ops of the VDVAE:
 * GELU (exact erf), add, scale, average pooling, nearest upsampling,
 * channel concat and slice, per-channel affine.  Plain-C references in
 * double, device launchers over cl/elem.cl; checks in src/check/cv_check_elem.c.
 * Invariant: every backward accumulates (+=) into its gradients, and a
 * NULL gradient (or a view with buf == NULL) is skipped. */
#include "ops/cv_ops.h"
#include "ops/cv_op_priv.h"

#include <math.h>
#include <string.h>

#define CV_PI 3.14159265358979323846

cv_status cv_fill_fwd(cv_ctx *ctx, const cv_tensor *y, float v) {
    int64_t n = cv_tensor_numel(y);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_fill");          /* cl/util.cl */
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i64(&ka, n); cv_karg_f32(&ka, v);
    return cv_op_flat_launch(ctx, &ka, n);
}


static cv_status want_shape(const char *op, const char *name, const cv_tensor *t, int64_t n, int64_t c, int64_t h,
                            int64_t w) {
    char sa[80], sb[80];
    int64_t s[4] = { n, c, h, w };
    if (cv_shape_eq(t->shape, s)) return CV_OK;
    return cv_error(CV_ERR_SHAPE, "%s: %s is %s, expected %s", op, name, cv_shape_str(t->shape, sa, sizeof sa),
                    cv_shape_str(s, sb, sizeof sb));
}

/* ---- GELU --------------------------------------------------------------- */

double cv_gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

double cv_gelu_ref_grad(double x) {
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * CV_PI);
}

void cv_gelu_ref_fwd(const double *x /* (n) */, double *y /* (n) */, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cv_gelu_ref(x[i]);
}

void cv_gelu_ref_bwd(const double *x /* (n) */, const double *dy /* (n) */, double *dx /* (n), += */, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * cv_gelu_ref_grad(x[i]);
}

cv_status cv_gelu_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y) {
    cv_status st = cv_op_same_shape("gelu", "x", x, "y", y);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(x);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gelu_fwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_gelu_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *dy, const cv_tensor *dx) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = cv_op_same_shape("gelu backward", "x", x, "dy", dy);
    if (st == CV_OK) st = cv_op_same_shape("gelu backward", "x", x, "dx", dx);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(x);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_gelu_bwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

/* ---- add, scale ----------------------------------------------------------- */

void cv_add_ref_fwd(const double *a /* (n) */, const double *b /* (n) */, double *y /* (n) */, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void cv_add_ref_bwd(const double *dy /* (n) */, double *da /* (n), +=, or NULL */, double *db /* (n), +=, or NULL */,
                    int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (da) da[i] += dy[i];
        if (db) db[i] += dy[i];
    }
}

cv_status cv_add_fwd(cv_ctx *ctx, const cv_tensor *a, const cv_tensor *b, const cv_tensor *y) {
    cv_status st = cv_op_same_shape("add", "a", a, "b", b);
    if (st == CV_OK) st = cv_op_same_shape("add", "a", a, "y", y);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(a);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_add_fwd");
    cv_karg_mem(&ka, a->buf); cv_karg_u64(&ka, a->off);
    cv_karg_mem(&ka, b->buf); cv_karg_u64(&ka, b->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_add_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *da, const cv_tensor *db) {
    return cv_add_bwd_ex(ctx, dy, da, db, 0);
}

cv_status cv_add_bwd_ex(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *da, const cv_tensor *db, int set) {
    int mask = (cv_op_has(da) ? 1 : 0) | (cv_op_has(db) ? 2 : 0);
    mask |= (set & mask) << 2;
    if (!mask) return CV_OK;
    cv_status st = CV_OK;
    if (mask & 1) st = cv_op_same_shape("add backward", "dy", dy, "da", da);
    if (set & ~3) st = cv_error(CV_ERR_ARG, "add backward: set mask %d (bits 1: da, 2: db)", set);
    if (st == CV_OK && (mask & 2)) st = cv_op_same_shape("add backward", "dy", dy, "db", db);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(dy);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_add_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, (mask & 1) ? da->buf : NULL); cv_karg_u64(&ka, (mask & 1) ? da->off : 0);
    cv_karg_mem(&ka, (mask & 2) ? db->buf : NULL); cv_karg_u64(&ka, (mask & 2) ? db->off : 0);
    cv_karg_i32(&ka, mask);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

void cv_scale_ref_fwd(const double *x /* (n) */, double *y /* (n) */, int64_t n, double s) {
    for (int64_t i = 0; i < n; i++) y[i] = s * x[i];
}

void cv_scale_ref_bwd(const double *dy /* (n) */, double *dx /* (n), += */, int64_t n, double s) {
    for (int64_t i = 0; i < n; i++) dx[i] += s * dy[i];
}

cv_status cv_scale_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, float s) {
    cv_status st = cv_op_same_shape("scale", "x", x, "y", y);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(x);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_scale_fwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_f32(&ka, s);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

cv_status cv_scale_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, float s) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = cv_op_same_shape("scale backward", "dy", dy, "dx", dx);
    if (st != CV_OK) return st;
    int64_t n = cv_tensor_numel(dy);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_scale_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_f32(&ka, s);
    cv_karg_i64(&ka, n);
    return cv_op_flat_launch(ctx, &ka, n);
}

/* ---- average pooling, nearest upsampling ---------------------------------- */

void cv_avgpool_ref_fwd(const double *x /* (N,C,H,W) */, double *y /* (N,C,H/k,W/k) */, int64_t N, int64_t C,
                        int64_t H, int64_t W, int k) {
    int64_t Ho = H / k, Wo = W / k;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < Ho; i++)
            for (int64_t j = 0; j < Wo; j++) {
                double s = 0;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) s += x[(nc * H + i * k + a) * W + j * k + b];
                y[(nc * Ho + i) * Wo + j] = s / ((double)k * k);
            }
}

void cv_avgpool_ref_bwd(const double *dy /* (N,C,H/k,W/k) */, double *dx /* (N,C,H,W), += */, int64_t N, int64_t C,
                        int64_t H, int64_t W, int k) {
    int64_t Ho = H / k, Wo = W / k;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++)
                dx[(nc * H + h) * W + w] += dy[(nc * Ho + h / k) * Wo + w / k] / ((double)k * k);
}

static cv_status pool_check(const char *op, const cv_tensor *big, const char *nbig, const cv_tensor *small,
                            const char *nsmall, int k) {
    char sa[80];
    if (k < 1) return cv_error(CV_ERR_ARG, "%s: factor k = %d must be >= 1", op, k);
    if (big->shape[2] % k || big->shape[3] % k)
        return cv_error(CV_ERR_SHAPE, "%s: %s is %s, whose H and W are not multiples of k = %d", op, nbig,
                        cv_shape_str(big->shape, sa, sizeof sa), k);
    return want_shape(op, nsmall, small, big->shape[0], big->shape[1], big->shape[2] / k, big->shape[3] / k);
}

static cv_status pool_check_up(const char *op, const cv_tensor *small, const char *nsmall, const cv_tensor *big,
                               const char *nbig, int k) {
    if (k < 1) return cv_error(CV_ERR_ARG, "%s: factor k = %d must be >= 1", op, k);
    (void)nsmall;
    return want_shape(op, nbig, big, small->shape[0], small->shape[1], small->shape[2] * k, small->shape[3] * k);
}

/* Resampling launch over (w, h, plane) of the smaller tensor (int32 sizes). */
static cv_status resample_launch(cv_kargs *ka, const int64_t small[4]) {
    size_t gs[3] = { (size_t)small[3], (size_t)small[2], (size_t)(small[0] * small[1]) };
    return cv_launch(ka, 3, gs, NULL);
}

static cv_status int32_sizes(const char *op, const cv_tensor *big) {
    char sa[80];
    if (big->shape[2] > INT32_MAX || big->shape[3] > INT32_MAX || big->shape[0] * big->shape[1] > INT32_MAX)
        return cv_error(CV_ERR_SHAPE, "%s: %s is too large (planes and their count must fit 32 bits)", op,
                        cv_shape_str(big->shape, sa, sizeof sa));
    return CV_OK;
}

cv_status cv_avgpool_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int k) {
    cv_status st = pool_check("avgpool", x, "x", y, "y", k);
    if (st == CV_OK) st = int32_sizes("avgpool", x);
    if (st != CV_OK) return st;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_avgpool_fwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i32(&ka, (int32_t)x->shape[2]); cv_karg_i32(&ka, (int32_t)x->shape[3]);
    cv_karg_i32(&ka, k); cv_karg_f32(&ka, (float)(1.0 / ((double)k * k)));
    cv_karg_i32(&ka, (int32_t)(x->shape[0] * x->shape[1]));
    return resample_launch(&ka, y->shape);
}

cv_status cv_avgpool_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int k) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = pool_check("avgpool backward", dx, "dx", dy, "dy", k);
    if (st == CV_OK) st = int32_sizes("avgpool backward", dx);
    if (st != CV_OK) return st;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_avgpool_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_i32(&ka, (int32_t)dx->shape[2]); cv_karg_i32(&ka, (int32_t)dx->shape[3]);
    cv_karg_i32(&ka, k); cv_karg_f32(&ka, (float)(1.0 / ((double)k * k)));
    cv_karg_i32(&ka, (int32_t)(dx->shape[0] * dx->shape[1]));
    return resample_launch(&ka, dy->shape);
}

/* ---- periodic padding and cropping (circular convolutions) ---------------- */

static int64_t wrap_i(int64_t i, int64_t n) { int64_t r = i % n; return r < 0 ? r + n : r; }

void cv_wrappad_ref_fwd(const double *x /* (N,C,H,W) */, double *y /* (N,C,H+2p,W+2p) */, int64_t N, int64_t C,
                        int64_t H, int64_t W, int p) {
    int64_t Ho = H + 2 * p, Wo = W + 2 * p;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t h = 0; h < Ho; h++)
            for (int64_t w = 0; w < Wo; w++)
                y[(nc * Ho + h) * Wo + w] = x[(nc * H + wrap_i(h - p, H)) * W + wrap_i(w - p, W)];
}

void cv_wrappad_ref_bwd(const double *dy /* (N,C,H+2p,W+2p) */, double *dx /* (N,C,H,W), += */, int64_t N, int64_t C,
                        int64_t H, int64_t W, int p) {
    int64_t Ho = H + 2 * p, Wo = W + 2 * p;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t h = 0; h < Ho; h++)
            for (int64_t w = 0; w < Wo; w++)
                dx[(nc * H + wrap_i(h - p, H)) * W + wrap_i(w - p, W)] += dy[(nc * Ho + h) * Wo + w];
}

void cv_crop_ref_fwd(const double *x /* (N,C,H,W) */, double *y /* (N,C,H-2p,W-2p) */, int64_t N, int64_t C,
                     int64_t H, int64_t W, int p) {
    int64_t Ho = H - 2 * p, Wo = W - 2 * p;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t h = 0; h < Ho; h++)
            for (int64_t w = 0; w < Wo; w++) y[(nc * Ho + h) * Wo + w] = x[(nc * H + h + p) * W + w + p];
}

void cv_crop_ref_bwd(const double *dy /* (N,C,H-2p,W-2p) */, double *dx /* (N,C,H,W), += */, int64_t N, int64_t C,
                     int64_t H, int64_t W, int p) {
    int64_t Ho = H - 2 * p, Wo = W - 2 * p;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t h = 0; h < Ho; h++)
            for (int64_t w = 0; w < Wo; w++) dx[(nc * H + h + p) * W + w + p] += dy[(nc * Ho + h) * Wo + w];
}

/* Shapes of a pad or crop by p: big is small grown by p on every side. */
static cv_status pad_check(const char *op, const cv_tensor *small, const char *nsmall, const cv_tensor *big,
                           const char *nbig, int p) {
    char sa[80];
    if (p < 1) return cv_error(CV_ERR_ARG, "%s: width p = %d must be >= 1", op, p);
    if (small->shape[2] < 1 || small->shape[3] < 1)
        return cv_error(CV_ERR_SHAPE, "%s: %s is %s, an empty map", op, nsmall, cv_shape_str(small->shape, sa, sizeof sa));
    return want_shape(op, nbig, big, small->shape[0], small->shape[1], small->shape[2] + 2 * p, small->shape[3] + 2 * p);
}

static cv_status pad_launch(cv_ctx *ctx, const char *kernel, const cv_tensor *from, const cv_tensor *to,
                            const cv_tensor *x_shape, int p, const cv_tensor *range) {
    cv_kargs ka = cv_kargs_begin(ctx, kernel);
    cv_karg_mem(&ka, from->buf); cv_karg_u64(&ka, from->off);
    cv_karg_mem(&ka, to->buf); cv_karg_u64(&ka, to->off);
    cv_karg_i32(&ka, (int32_t)x_shape->shape[2]); cv_karg_i32(&ka, (int32_t)x_shape->shape[3]);
    cv_karg_i32(&ka, p); cv_karg_i32(&ka, (int32_t)(x_shape->shape[0] * x_shape->shape[1]));
    return resample_launch(&ka, range->shape);
}

cv_status cv_wrappad_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int p) {
    cv_status st = pad_check("wrappad", x, "x", y, "y", p);
    if (st == CV_OK) st = int32_sizes("wrappad", y);
    return st != CV_OK ? st : pad_launch(ctx, "cvk_wrappad_fwd", x, y, x, p, y);
}

cv_status cv_wrappad_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int p) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = pad_check("wrappad backward", dx, "dx", dy, "dy", p);
    if (st == CV_OK) st = int32_sizes("wrappad backward", dy);
    return st != CV_OK ? st : pad_launch(ctx, "cvk_wrappad_bwd", dy, dx, dx, p, dx);
}

cv_status cv_crop_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int p) {
    cv_status st = pad_check("crop", y, "y", x, "x", p);
    if (st == CV_OK) st = int32_sizes("crop", x);
    return st != CV_OK ? st : pad_launch(ctx, "cvk_crop_fwd", x, y, x, p, y);
}

cv_status cv_crop_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int p) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = pad_check("crop backward", dy, "dy", dx, "dx", p);
    if (st == CV_OK) st = int32_sizes("crop backward", dx);
    return st != CV_OK ? st : pad_launch(ctx, "cvk_crop_bwd", dy, dx, dx, p, dy);
}

void cv_upsample_ref_fwd(const double *x /* (N,C,H,W) */, double *y /* (N,C,kH,kW), = or += */, int64_t N,
                         int64_t C, int64_t H, int64_t W, int k, int accumulate) {
    int64_t Ho = H * k, Wo = W * k;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < Ho; i++)
            for (int64_t j = 0; j < Wo; j++) {
                double v = x[(nc * H + i / k) * W + j / k];
                double *py = &y[(nc * Ho + i) * Wo + j];
                *py = accumulate ? *py + v : v;
            }
}

void cv_upsample_ref_bwd(const double *dy /* (N,C,kH,kW) */, double *dx /* (N,C,H,W), += */, int64_t N, int64_t C,
                         int64_t H, int64_t W, int k) {
    int64_t Ho = H * k, Wo = W * k;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < Ho; i++)
            for (int64_t j = 0; j < Wo; j++) dx[(nc * H + i / k) * W + j / k] += dy[(nc * Ho + i) * Wo + j];
}

cv_status cv_upsample_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *y, int k, int accumulate) {
    cv_status st = pool_check_up("upsample", x, "x", y, "y", k);
    if (st == CV_OK) st = int32_sizes("upsample", y);
    if (st != CV_OK) return st;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_upsample_fwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i32(&ka, (int32_t)x->shape[2]); cv_karg_i32(&ka, (int32_t)x->shape[3]);
    cv_karg_i32(&ka, k); cv_karg_i32(&ka, accumulate ? 1 : 0);
    cv_karg_i32(&ka, (int32_t)(x->shape[0] * x->shape[1]));
    return resample_launch(&ka, x->shape);
}

cv_status cv_upsample_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *dx, int k) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = pool_check_up("upsample backward", dx, "dx", dy, "dy", k);
    if (st == CV_OK) st = int32_sizes("upsample backward", dy);
    if (st != CV_OK) return st;
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_upsample_bwd");
    cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
    cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
    cv_karg_i32(&ka, (int32_t)dx->shape[2]); cv_karg_i32(&ka, (int32_t)dx->shape[3]);
    cv_karg_i32(&ka, k);
    cv_karg_i32(&ka, (int32_t)(dx->shape[0] * dx->shape[1]));
    return resample_launch(&ka, dx->shape);
}

/* ---- channel concat and slice --------------------------------------------- */

void cv_concat_ref_fwd(const double *a /* (N,Ca,HW) */, const double *b /* (N,Cb,HW) */, double *y /* (N,Ca+Cb,HW) */,
                       int64_t N, int64_t Ca, int64_t Cb, int64_t HW) {
    for (int64_t n = 0; n < N; n++) {
        for (int64_t i = 0; i < Ca * HW; i++) y[n * (Ca + Cb) * HW + i] = a[n * Ca * HW + i];
        for (int64_t i = 0; i < Cb * HW; i++) y[n * (Ca + Cb) * HW + Ca * HW + i] = b[n * Cb * HW + i];
    }
}

void cv_concat_ref_bwd(const double *dy /* (N,Ca+Cb,HW) */, double *da /* (N,Ca,HW), +=, or NULL */,
                       double *db /* (N,Cb,HW), +=, or NULL */, int64_t N, int64_t Ca, int64_t Cb, int64_t HW) {
    for (int64_t n = 0; n < N; n++) {
        if (da) for (int64_t i = 0; i < Ca * HW; i++) da[n * Ca * HW + i] += dy[n * (Ca + Cb) * HW + i];
        if (db) for (int64_t i = 0; i < Cb * HW; i++) db[n * Cb * HW + i] += dy[n * (Ca + Cb) * HW + Ca * HW + i];
    }
}

static cv_status concat_check(const char *op, const cv_tensor *a, const cv_tensor *b, const cv_tensor *y) {
    char sa[80], sb[80];
    if (a->shape[0] != b->shape[0] || a->shape[2] != b->shape[2] || a->shape[3] != b->shape[3])
        return cv_error(CV_ERR_SHAPE, "%s: a is %s but b is %s (N, H, W must agree)", op,
                        cv_shape_str(a->shape, sa, sizeof sa), cv_shape_str(b->shape, sb, sizeof sb));
    return want_shape(op, "y", y, a->shape[0], a->shape[1] + b->shape[1], a->shape[2], a->shape[3]);
}

/* y[n, yc0 : yc0 + Cb] (=, or += with acc) x[n, xc0 : xc0 + Cb], channels of
 * (N, Cx, HW) and (N, Cy, HW) tensors: one 2-D launch (elements, n). */
static cv_status chan_copy(cv_ctx *ctx, const cv_tensor *x, int64_t xc0, const cv_tensor *y, int64_t yc0, int64_t Cb,
                           int acc) {
    int64_t HW = x->shape[2] * x->shape[3], N = x->shape[0];
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_chan_copy");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off + (uint64_t)(xc0 * HW)); cv_karg_i64(&ka, x->shape[1] * HW);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off + (uint64_t)(yc0 * HW)); cv_karg_i64(&ka, y->shape[1] * HW);
    cv_karg_i64(&ka, Cb * HW); cv_karg_i32(&ka, acc);
    return cv_op_plane_launch(ctx, &ka, Cb * HW, N);
}

cv_status cv_concat_fwd(cv_ctx *ctx, const cv_tensor *a, const cv_tensor *b, const cv_tensor *y) {
    cv_status st = concat_check("concat", a, b, y);
    if (st == CV_OK) st = chan_copy(ctx, a, 0, y, 0, a->shape[1], 0);
    if (st == CV_OK) st = chan_copy(ctx, b, 0, y, a->shape[1], b->shape[1], 0);
    return st;
}

cv_status cv_concat_bwd(cv_ctx *ctx, const cv_tensor *dy, const cv_tensor *da, const cv_tensor *db) {
    int mask = (cv_op_has(da) ? 1 : 0) | (cv_op_has(db) ? 2 : 0);
    if (!mask) return CV_OK;
    if (mask != 3) {
        /* one side only: its channel count is the dy channels minus... unknown,
         * so take it from the given gradient and infer the other. */
        const cv_tensor *g = (mask & 1) ? da : db;
        char sa[80], sb[80];
        if (g->shape[0] != dy->shape[0] || g->shape[2] != dy->shape[2] || g->shape[3] != dy->shape[3]
            || g->shape[1] > dy->shape[1])
            return cv_error(CV_ERR_SHAPE, "concat backward: dy is %s but %s is %s", cv_shape_str(dy->shape, sa, sizeof sa),
                            (mask & 1) ? "da" : "db", cv_shape_str(g->shape, sb, sizeof sb));
    } else {
        cv_status st = concat_check("concat backward", da, db, dy);
        if (st != CV_OK) return st;
    }
    int64_t C = dy->shape[1];
    int64_t Ca = (mask & 1) ? da->shape[1] : C - db->shape[1];
    cv_status st = CV_OK;
    if (mask & 1) st = chan_copy(ctx, dy, 0, da, 0, Ca, 1);
    if (st == CV_OK && (mask & 2)) st = chan_copy(ctx, dy, Ca, db, 0, C - Ca, 1);
    return st;
}

void cv_slice_ref_fwd(const double *x /* (N,C,HW) */, double *y /* (N,Cy,HW) */, int64_t N, int64_t C, int64_t HW,
                      int64_t c0, int64_t Cy) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < Cy * HW; i++) y[n * Cy * HW + i] = x[n * C * HW + c0 * HW + i];
}

void cv_slice_ref_bwd(const double *dy /* (N,Cy,HW) */, double *dx /* (N,C,HW), += */, int64_t N, int64_t C,
                      int64_t HW, int64_t c0, int64_t Cy) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < Cy * HW; i++) dx[n * C * HW + c0 * HW + i] += dy[n * Cy * HW + i];
}

static cv_status slice_check(const char *op, const cv_tensor *x, const char *nx, int64_t c0, const cv_tensor *y,
                             const char *ny) {
    char sa[80], sb[80];
    if (x->shape[0] != y->shape[0] || x->shape[2] != y->shape[2] || x->shape[3] != y->shape[3]
        || c0 < 0 || c0 + y->shape[1] > x->shape[1])
        return cv_error(CV_ERR_SHAPE, "%s: channels %lld..%lld of %s %s do not fit %s %s", op, (long long)c0,
                        (long long)(c0 + y->shape[1] - 1), nx, cv_shape_str(x->shape, sa, sizeof sa), ny,
                        cv_shape_str(y->shape, sb, sizeof sb));
    return CV_OK;
}

cv_status cv_slice_fwd(cv_ctx *ctx, const cv_tensor *x, int64_t c0, const cv_tensor *y) {
    cv_status st = slice_check("slice", x, "x", c0, y, "y");
    if (st != CV_OK) return st;
    return chan_copy(ctx, x, c0, y, 0, y->shape[1], 0);
}

cv_status cv_slice_bwd(cv_ctx *ctx, const cv_tensor *dy, int64_t c0, const cv_tensor *dx) {
    if (!cv_op_has(dx)) return CV_OK;
    cv_status st = slice_check("slice backward", dx, "dx", c0, dy, "dy");
    if (st != CV_OK) return st;
    return chan_copy(ctx, dy, 0, dx, c0, dy->shape[1], 1);
}

/* ---- per-channel affine ---------------------------------------------------- */

void cv_affine_ref_fwd(const double *x /* (N,C,HW) */, const double *g /* (C) */, const double *b /* (C) */,
                       double *y /* (N,C,HW) */, int64_t N, int64_t C, int64_t HW) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) y[(n * C + c) * HW + i] = g[c] * x[(n * C + c) * HW + i] + b[c];
}

void cv_affine_ref_bwd(const double *x /* (N,C,HW) */, const double *g /* (C) */, const double *dy /* (N,C,HW) */,
                       double *dx /* (N,C,HW), +=, or NULL */, double *dg /* (C), +=, or NULL */,
                       double *db /* (C), +=, or NULL */, int64_t N, int64_t C, int64_t HW) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) {
                int64_t j = (n * C + c) * HW + i;
                if (dx) dx[j] += g[c] * dy[j];
                if (dg) dg[c] += x[j] * dy[j];
                if (db) db[c] += dy[j];
            }
}

static cv_status affine_check(const char *op, const cv_tensor *x, const char *ng, const cv_tensor *g) {
    char sa[80], sb[80];
    if (cv_tensor_numel(g) != x->shape[1])
        return cv_error(CV_ERR_SHAPE, "%s: %s is %s but x is %s (%s needs one value per channel)", op, ng,
                        cv_shape_str(g->shape, sa, sizeof sa), cv_shape_str(x->shape, sb, sizeof sb), ng);
    return CV_OK;
}

cv_status cv_affine_fwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *g, const cv_tensor *b, const cv_tensor *y) {
    cv_status st = affine_check("affine", x, "g", g);
    if (st == CV_OK) st = affine_check("affine", x, "b", b);
    if (st == CV_OK) st = cv_op_same_shape("affine", "x", x, "y", y);
    if (st != CV_OK) return st;
    int64_t HW = x->shape[2] * x->shape[3], NC = x->shape[0] * x->shape[1];
    if (NC > INT32_MAX) return cv_error(CV_ERR_SHAPE, "affine: %lld planes (at most 2^31-1)", (long long)NC);
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_affine_fwd");
    cv_karg_mem(&ka, x->buf); cv_karg_u64(&ka, x->off);
    cv_karg_mem(&ka, g->buf); cv_karg_u64(&ka, g->off);
    cv_karg_mem(&ka, b->buf); cv_karg_u64(&ka, b->off);
    cv_karg_mem(&ka, y->buf); cv_karg_u64(&ka, y->off);
    cv_karg_i32(&ka, (int32_t)x->shape[1]); cv_karg_i64(&ka, HW); cv_karg_i32(&ka, (int32_t)NC);
    return cv_op_plane_launch(ctx, &ka, HW, NC);
}

/* dg and db are per-channel reductions (cv_chansum_fwd, cl/reduce.cl): they
 * use cv_ctx_scratch, cv_reduce_scratch_bytes(C, N*H*W) bytes. */
cv_status cv_affine_bwd(cv_ctx *ctx, const cv_tensor *x, const cv_tensor *g, const cv_tensor *dy,
                        const cv_tensor *dx, const cv_tensor *dg, const cv_tensor *db) {
    cv_status st = affine_check("affine backward", x, "g", g);
    if (st == CV_OK) st = cv_op_same_shape("affine backward", "x", x, "dy", dy);
    if (st == CV_OK && cv_op_has(dx)) st = cv_op_same_shape("affine backward", "x", x, "dx", dx);
    if (st == CV_OK && cv_op_has(dg)) st = affine_check("affine backward", x, "dg", dg);
    if (st == CV_OK && cv_op_has(db)) st = affine_check("affine backward", x, "db", db);
    if (st != CV_OK) return st;
    if (cv_op_has(dx)) {
        int64_t HW = x->shape[2] * x->shape[3], NC = x->shape[0] * x->shape[1];
        if (NC > INT32_MAX) return cv_error(CV_ERR_SHAPE, "affine backward: %lld planes (at most 2^31-1)", (long long)NC);
        cv_kargs ka = cv_kargs_begin(ctx, "cvk_affine_bwd");
        cv_karg_mem(&ka, g->buf); cv_karg_u64(&ka, g->off);
        cv_karg_mem(&ka, dy->buf); cv_karg_u64(&ka, dy->off);
        cv_karg_mem(&ka, dx->buf); cv_karg_u64(&ka, dx->off);
        cv_karg_i32(&ka, (int32_t)x->shape[1]); cv_karg_i64(&ka, HW); cv_karg_i32(&ka, (int32_t)NC);
        if ((st = cv_op_plane_launch(ctx, &ka, HW, NC)) != CV_OK) return st;
    }
    if (cv_op_has(dg) && (st = cv_chansum_fwd(ctx, dy, x, dg, 1.0f, 1)) != CV_OK) return st;
    if (cv_op_has(db) && (st = cv_chansum_fwd(ctx, dy, NULL, db, 1.0f, 1)) != CV_OK) return st;
    return CV_OK;
}

