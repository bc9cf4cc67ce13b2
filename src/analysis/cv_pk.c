/* cv_pk.c -- power spectra (see cv_pk.h for the convention): shell
 * geometry, the plain-C double reference (direct separable DFT), the device
 * path (level and shift kernels, batched clFFT R2C, binning kernel), and
 * statistics over maps.  The device path subtracts a rough per-plane level
 * (not the exact mean: any constant only moves the uncounted DC mode) and
 * takes the exact mean, which the overdensity needs, from the DC mode.  Invariant: both paths count exactly the modes listed in the
 * geometry's `of` table, so they can only differ by rounding.
 *
 * The reference is a hand-written DFT rather than FFTW on purpose: it has
 * to be obviously correct (twiddles from an exact (k x mod N) table, double
 * sums) and it only runs on test-sized maps. */
#include "analysis/cv_pk.h"

#include <clFFT.h>
#include <math.h>
#include <string.h>

#define PK_PI 3.14159265358979323846

const char *cv_pk_delta_name(int mode) {
    return mode == CV_PK_DELTA_OVER ? "overdensity" : mode == CV_PK_DELTA_LINEAR ? "linear" : "log10";
}

int cv_pk_delta_parse(const char *s) {
    for (int m = 0; m < 3; m++)
        if (!strcmp(s, cv_pk_delta_name(m))) return m;
    return -1;
}

int cv_pk_n_spec(int n_chan) { return n_chan * (n_chan + 1) / 2; }

void cv_pk_spec_pair(int n_chan, int s, int *a, int *b) {
    CV_ASSERT(s >= 0 && s < cv_pk_n_spec(n_chan));
    *a = *b = 0;
    if (s < n_chan) { *a = *b = s; return; }
    s -= n_chan;
    for (int i = 0; i < n_chan; i++)
        for (int j = i + 1; j < n_chan; j++)
            if (s-- == 0) { *a = i; *b = j; return; }
}

const char *cv_pk_spec_name(int n_chan, int s, const char *const *names, char *buf, size_t n) {
    int a, b;
    cv_pk_spec_pair(n_chan, s, &a, &b);
    if (a == b) snprintf(buf, n, "%s", names[a]);
    else snprintf(buf, n, "%s-%s", names[a], names[b]);
    return buf;
}

/* ---- geometry ------------------------------------------------------------ */

void cv_pk_geom_free(cv_pk_geom *g) {
    if (!g) return;
    free(g->shell); free(g->nmodes); free(g->k); free(g->of); free(g->order); free(g->start);
    free(g);
}

cv_status cv_pk_geom_new(int n, double box, cv_pk_geom **out) {
    cv_status st = CV_OK;
    *out = NULL;
    if (n < 2 || n > 1 << 15) return cv_error(CV_ERR_ARG, "power spectrum: map size %d is out of range [2, 32768]", n);
    if (!(box > 0) || !isfinite(box)) return cv_error(CV_ERR_ARG, "power spectrum: box size %g is not positive", box);
    int nh = n / 2 + 1, smax = (int)ceil(sqrt(2.0) * (n / 2)) + 2;
    int64_t nm = (int64_t)n * nh;
    int32_t *map = NULL;            /* integer shell -> output shell */
    int64_t *cnt = NULL;
    double *ksum = NULL;
    cv_pk_geom *g = calloc(1, sizeof *g);
    if (!g) return cv_error(CV_ERR_NOMEM, "power spectrum geometry");
    g->n = n; g->box = box; g->n_half = nh;
    g->of = malloc(nm * sizeof *g->of);
    map = malloc((smax + 1) * sizeof *map);
    cnt = calloc(smax + 1, sizeof *cnt);
    ksum = calloc(smax + 1, sizeof *ksum);
    if (!g->of || !map || !cnt || !ksum) { st = cv_error(CV_ERR_NOMEM, "power spectrum geometry (N = %d)", n); goto fail; }
    int has_nyq = n % 2 == 0;
    for (int ix = 0; ix < n; ix++) {
        int kx = ix <= n / 2 ? ix : ix - n;
        for (int ky = 0; ky < nh; ky++) {
            int64_t m = (int64_t)ix * nh + ky;
            g->of[m] = -1;
            if ((ky == 0 || (has_nyq && ky == n / 2)) && kx < 0) continue;
            double kk = sqrt((double)kx * kx + (double)ky * ky);
            int s = (int)kk;
            if (s == 0) continue;                          /* DC */
            CV_ASSERT(s <= smax);
            g->of[m] = s;                                  /* integer shell for now */
            cnt[s]++;
            ksum[s] += kk;
        }
    }
    int ns = 0;
    for (int s = 1; s <= smax; s++) map[s] = cnt[s] ? ns++ : -1;
    g->n_shell = ns;
    g->shell = malloc(ns * sizeof *g->shell);
    g->nmodes = malloc(ns * sizeof *g->nmodes);
    g->k = malloc(ns * sizeof *g->k);
    g->start = calloc(ns + 1, sizeof *g->start);
    if (!g->shell || !g->nmodes || !g->k || !g->start) { st = cv_error(CV_ERR_NOMEM, "power spectrum geometry"); goto fail; }
    double kf = 2 * PK_PI / box;
    int64_t tot = 0;
    for (int s = 1; s <= smax; s++) {
        if (map[s] < 0) continue;
        int o = map[s];
        g->shell[o] = s;
        g->nmodes[o] = cnt[s];
        g->k[o] = ksum[s] / cnt[s] * kf;
        g->start[o] = (int32_t)tot;
        tot += cnt[s];
    }
    g->start[ns] = (int32_t)tot;
    g->order = malloc((tot ? tot : 1) * sizeof *g->order);
    if (!g->order) { st = cv_error(CV_ERR_NOMEM, "power spectrum geometry"); goto fail; }
    memset(cnt, 0, (smax + 1) * sizeof *cnt);
    for (int64_t m = 0; m < nm; m++) {
        if (g->of[m] < 0) continue;
        int o = map[g->of[m]];
        g->of[m] = o;
        g->order[g->start[o] + cnt[o]++] = (int32_t)m;
    }
    free(map); free(cnt); free(ksum);
    *out = g;
    return CV_OK;
fail:
    free(map); free(cnt); free(ksum);
    cv_pk_geom_free(g);
    return st;
}

/* ---- reference ----------------------------------------------------------- */

cv_status cv_pk_delta_ref(const float *map /* (N, N) */, int n, int mode, double *delta /* (N, N) */) {
    size_t np = (size_t)n * n;
    double sum = 0;
    for (size_t i = 0; i < np; i++) {
        double v = map[i];
        if (!isfinite(v) || (mode == CV_PK_DELTA_LOG10 && !(v > 0)))
            return cv_error(CV_ERR_NUMERIC, "pixel %zu (y %zu, x %zu) is %g: the %s field needs finite values%s", i,
                            i / n, i % n, v, cv_pk_delta_name(mode), mode == CV_PK_DELTA_LOG10 ? " > 0" : "");
        delta[i] = mode == CV_PK_DELTA_LOG10 ? log10(v) : v;
        sum += delta[i];
    }
    double mean = sum / np;
    if (mode == CV_PK_DELTA_OVER && !(mean > 0))
        return cv_error(CV_ERR_NUMERIC, "map mean is %g: the overdensity x/mean - 1 needs a positive mean", mean);
    for (size_t i = 0; i < np; i++) delta[i] = mode == CV_PK_DELTA_OVER ? delta[i] / mean - 1 : delta[i] - mean;
    return CV_OK;
}

/* Half-plane DFT: F (N, N/2+1) complex (re, im interleaved) of x (N, N).
 * Rows first (second index -> ky), then columns (first index -> kx).
 * tw: (N) complex exp(-2 pi i j / N); g: (N, N/2+1) complex scratch. */
static void dft_half(int n, const double *x, const double *tw, double *g, double *F) {
    int nh = n / 2 + 1;
    for (int ix = 0; ix < n; ix++)
        for (int ky = 0; ky < nh; ky++) {
            double re = 0, im = 0;
            for (int y = 0; y < n; y++) {
                int j = (int)(((int64_t)ky * y) % n);
                re += x[(size_t)ix * n + y] * tw[2 * j];
                im += x[(size_t)ix * n + y] * tw[2 * j + 1];
            }
            g[2 * ((size_t)ix * nh + ky)] = re;
            g[2 * ((size_t)ix * nh + ky) + 1] = im;
        }
    for (int kx = 0; kx < n; kx++)
        for (int ky = 0; ky < nh; ky++) {
            double re = 0, im = 0;
            for (int ix = 0; ix < n; ix++) {
                int j = (int)(((int64_t)kx * ix) % n);
                double ar = g[2 * ((size_t)ix * nh + ky)], ai = g[2 * ((size_t)ix * nh + ky) + 1];
                re += ar * tw[2 * j] - ai * tw[2 * j + 1];
                im += ar * tw[2 * j + 1] + ai * tw[2 * j];
            }
            F[2 * ((size_t)kx * nh + ky)] = re;
            F[2 * ((size_t)kx * nh + ky) + 1] = im;
        }
}

static double *twiddles(int n) {
    double *tw = malloc(2 * (size_t)n * sizeof *tw);
    if (!tw) return NULL;
    for (int j = 0; j < n; j++) {
        tw[2 * j] = cos(2 * PK_PI * j / n);
        tw[2 * j + 1] = -sin(2 * PK_PI * j / n);
    }
    return tw;
}

/* P from two half-plane transforms. */
static void bin_ref(const cv_pk_geom *g, const double *Fa, const double *Fb, double *pk) {
    double norm = g->box / ((double)g->n * g->n);
    norm *= norm;
    for (int s = 0; s < g->n_shell; s++) {
        double sum = 0;
        for (int32_t j = g->start[s]; j < g->start[s + 1]; j++) {
            size_t q = 2 * (size_t)g->order[j];
            sum += Fa[q] * Fb[q] + Fa[q + 1] * Fb[q + 1];
        }
        pk[s] = sum / g->nmodes[s] * norm;
    }
}

void cv_pk_ref(const cv_pk_geom *g, const double *a, const double *b, double *pk) {
    int n = g->n;
    size_t nc = 2 * (size_t)n * g->n_half;
    double *tw = twiddles(n), *scr = malloc(nc * sizeof *scr), *Fa = malloc(nc * sizeof *Fa);
    double *Fb = b ? malloc(nc * sizeof *Fb) : Fa;
    CV_ASSERT(tw && scr && Fa && Fb);            /* test-sized maps only */
    dft_half(n, a, tw, scr, Fa);
    if (b) dft_half(n, b, tw, scr, Fb);
    bin_ref(g, Fa, Fb, pk);
    if (b) free(Fb);
    free(tw); free(scr); free(Fa);
}

cv_status cv_pk_compute_ref(const cv_pk_geom *g, int n_chan, int mode, const float *maps, int64_t count, double *out) {
    cv_status st = CV_OK;
    int n = g->n, ns = cv_pk_n_spec(n_chan);
    size_t np = (size_t)n * n, nc = 2 * (size_t)n * g->n_half;
    double *tw = twiddles(n), *scr = malloc(nc * sizeof *scr), *d = malloc(np * sizeof *d);
    double *F = malloc(nc * n_chan * sizeof *F);
    if (!tw || !scr || !d || !F) { st = cv_error(CV_ERR_NOMEM, "power spectrum reference (N = %d)", n); goto fail; }
    for (int64_t m = 0; m < count; m++) {
        for (int c = 0; c < n_chan; c++) {
            st = cv_pk_delta_ref(maps + ((size_t)m * n_chan + c) * np, n, mode, d);
            if (st != CV_OK) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", cv_last_error());
                st = cv_error(st, "map %lld, channel %d: %s", (long long)m, c, msg);
                goto fail;
            }
            dft_half(n, d, tw, scr, F + c * nc);
        }
        for (int s = 0; s < ns; s++) {
            int a, b;
            cv_pk_spec_pair(n_chan, s, &a, &b);
            bin_ref(g, F + a * nc, F + b * nc, out + ((size_t)m * ns + s) * g->n_shell);
        }
    }
fail:
    free(tw); free(scr); free(d); free(F);
    return st;
}

/* ---- device path --------------------------------------------------------- */

struct cv_pk {
    cv_ctx        *ctx;
    cv_pk_geom    *g;
    cv_pk_opts     o;
    int            n_spec;
    clfftPlanHandle plan;
    int            fft_setup, have_plan;
    cl_mem         in, fft, tmp, out;    /* (B, C, N, N), (B, C, N, N/2+1) complex, clFFT tmp, (B, S, n_shell) */
    cl_mem         order, start, norm, pairs, level;    /* level: (B * C) per-plane offsets */
    float         *host_out;             /* (B, S, n_shell) */
};

static int fft_users;                    /* clfftSetup reference count */

static const char *fft_errname(clfftStatus s) {
    switch ((int)s) {
    case CLFFT_BUGCHECK:                 return "CLFFT_BUGCHECK";
    case CLFFT_NOTIMPLEMENTED:           return "CLFFT_NOTIMPLEMENTED (size not supported: use factors 2, 3, 5, 7, 11, 13)";
    case CLFFT_TRANSPOSED_NOTIMPLEMENTED:return "CLFFT_TRANSPOSED_NOTIMPLEMENTED";
    case CLFFT_FILE_NOT_FOUND:           return "CLFFT_FILE_NOT_FOUND";
    case CLFFT_FILE_CREATE_FAILURE:      return "CLFFT_FILE_CREATE_FAILURE";
    case CLFFT_VERSION_MISMATCH:         return "CLFFT_VERSION_MISMATCH";
    case CLFFT_INVALID_PLAN:             return "CLFFT_INVALID_PLAN";
    case CLFFT_DEVICE_NO_DOUBLE:         return "CLFFT_DEVICE_NO_DOUBLE";
    case CLFFT_DEVICE_MISMATCH:          return "CLFFT_DEVICE_MISMATCH";
    default:                             return cv_cl_errname((cl_int)s);
    }
}

#define FFT(expr) do { clfftStatus fs_ = (expr); if (fs_ != CLFFT_SUCCESS) { \
    st = cv_error(CV_ERR_CL, "clFFT: %s failed: %s (%s:%d)", #expr, fft_errname(fs_), __FILE__, __LINE__); goto fail; } } while (0)

cv_pk_opts cv_pk_opts_default(void) {
    cv_pk_opts o = { 1, CV_PK_DELTA_LOG10, 0, 0 };
    return o;
}

const cv_pk_geom *cv_pk_geometry(const cv_pk *pk) { return pk->g; }
int cv_pk_batch(const cv_pk *pk) { return pk->o.batch; }

void cv_pk_free(cv_pk *pk) {
    if (!pk) return;
    if (pk->have_plan) clfftDestroyPlan(&pk->plan);
    cl_mem m[] = { pk->in, pk->fft, pk->tmp, pk->out, pk->order, pk->start, pk->norm, pk->pairs, pk->level };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (m[i]) clReleaseMemObject(m[i]);
    if (pk->fft_setup && --fft_users == 0) clfftTeardown();
    cv_pk_geom_free(pk->g);
    free(pk->host_out);
    free(pk);
}

static cv_status upload(cv_ctx *ctx, const char *what, const void *p, size_t nbytes, cl_mem *m) {
    cv_status st = cv_ctx_alloc(ctx, what, nbytes, 0, m);
    if (st != CV_OK) return st;
    return CV_CL(clEnqueueWriteBuffer(cv_ctx_queue(ctx), *m, CL_TRUE, 0, nbytes, p, 0, NULL, NULL));
}

cv_status cv_pk_new(cv_ctx *ctx, int n, double box, const cv_pk_opts *opts, cv_pk **out) {
    cv_status st = CV_OK;
    *out = NULL;
    cv_pk_opts o = opts ? *opts : cv_pk_opts_default();
    if (o.n_chan < 1 || o.n_chan > 64) return cv_error(CV_ERR_ARG, "power spectrum: %d channels (1..64)", o.n_chan);
    if (o.mode < 0 || o.mode > CV_PK_DELTA_LINEAR) return cv_error(CV_ERR_ARG, "power spectrum: unknown delta mode %d", o.mode);
    if (o.batch < 0) return cv_error(CV_ERR_ARG, "power spectrum: batch %d < 0", o.batch);
    cv_pk *pk = calloc(1, sizeof *pk);
    int32_t *pairs = NULL;
    float *norm = NULL;
    if (!pk) return cv_error(CV_ERR_NOMEM, "power spectrum plan");
    pk->ctx = ctx;
    CV_TRY(cv_pk_geom_new(n, box, &pk->g));
    const cv_pk_geom *g = pk->g;
    size_t plane_in = (size_t)n * n * sizeof(float), plane_out = (size_t)n * g->n_half * 2 * sizeof(float);
    size_t per_map = (plane_in + plane_out) * o.n_chan;
    if (o.batch == 0) {
        size_t cap = (size_t)256 << 20, lim = cv_ctx_max_alloc(ctx);
        size_t b = cap / per_map;
        if (b * plane_out * o.n_chan > lim) b = lim / (plane_out * o.n_chan);
        o.batch = b < 1 ? 1 : b > 64 ? 64 : (int)b;
    }
    pk->o = o;
    pk->n_spec = cv_pk_n_spec(o.n_chan);

    /* clFFT: one process-wide setup, one plan for (B*C) planes of N x N. */
    if (fft_users == 0) {
        clfftSetupData sd;
        FFT(clfftInitSetupData(&sd));
        FFT(clfftSetup(&sd));
    }
    fft_users++;
    pk->fft_setup = 1;
    size_t len[2] = { (size_t)n, (size_t)n }, istr[2] = { 1, (size_t)n }, ostr[2] = { 1, (size_t)g->n_half };
    cl_command_queue q = cv_ctx_queue(ctx);
    FFT(clfftCreateDefaultPlan(&pk->plan, cv_ctx_context(ctx), CLFFT_2D, len));
    pk->have_plan = 1;
    FFT(clfftSetPlanPrecision(pk->plan, CLFFT_SINGLE));
    FFT(clfftSetLayout(pk->plan, CLFFT_REAL, CLFFT_HERMITIAN_INTERLEAVED));
    FFT(clfftSetResultLocation(pk->plan, CLFFT_OUTOFPLACE));
    FFT(clfftSetPlanInStride(pk->plan, CLFFT_2D, istr));
    FFT(clfftSetPlanOutStride(pk->plan, CLFFT_2D, ostr));
    FFT(clfftSetPlanDistance(pk->plan, (size_t)n * n, (size_t)n * g->n_half));
    FFT(clfftSetPlanBatchSize(pk->plan, (size_t)o.batch * o.n_chan));
    FFT(clfftBakePlan(pk->plan, 1, &q, NULL, NULL));
    size_t tmp = 0;
    FFT(clfftGetTmpBufSize(pk->plan, &tmp));
    if (tmp) CV_TRY(cv_ctx_alloc(ctx, "power spectrum: clFFT scratch", tmp, 0, &pk->tmp));

    CV_TRY(cv_ctx_alloc(ctx, "power spectrum: maps", plane_in * o.n_chan * o.batch, 0, &pk->in));
    CV_TRY(cv_ctx_alloc(ctx, "power spectrum: transforms", plane_out * o.n_chan * o.batch, 0, &pk->fft));
    CV_TRY(cv_ctx_alloc(ctx, "power spectrum: plane levels", (size_t)o.batch * o.n_chan * sizeof(float), 0, &pk->level));
    size_t nout = (size_t)o.batch * pk->n_spec * g->n_shell;
    CV_TRY(cv_ctx_alloc(ctx, "power spectrum: spectra", nout * sizeof(float), 0, &pk->out));
    pk->host_out = malloc(nout * sizeof *pk->host_out);
    pairs = malloc(2 * pk->n_spec * sizeof *pairs);
    norm = malloc(g->n_shell * sizeof *norm);
    if (!pk->host_out || !pairs || !norm) { st = cv_error(CV_ERR_NOMEM, "power spectrum plan"); goto fail; }
    for (int s = 0; s < pk->n_spec; s++) {
        int a, b;
        cv_pk_spec_pair(o.n_chan, s, &a, &b);
        pairs[2 * s] = a; pairs[2 * s + 1] = b;
    }
    double nn = box / ((double)n * n);
    for (int s = 0; s < g->n_shell; s++) norm[s] = (float)(nn * nn / g->nmodes[s]);
    CV_TRY(upload(ctx, "power spectrum: mode order", g->order, g->start[g->n_shell] * sizeof(int32_t) + sizeof(int32_t), &pk->order));
    CV_TRY(upload(ctx, "power spectrum: shell starts", g->start, (g->n_shell + 1) * sizeof(int32_t), &pk->start));
    CV_TRY(upload(ctx, "power spectrum: shell norms", norm, g->n_shell * sizeof(float), &pk->norm));
    CV_TRY(upload(ctx, "power spectrum: pairs", pairs, 2 * pk->n_spec * sizeof(int32_t), &pk->pairs));
    free(pairs); free(norm);
    *out = pk;
    return CV_OK;
fail:
    free(pairs); free(norm);
    cv_pk_free(pk);
    return st;
}

cv_status cv_pk_compute(cv_pk *pk, const float *maps, int64_t count, float *out) {
    cv_status st = CV_OK;
    const cv_pk_geom *g = pk->g;
    int n = g->n, C = pk->o.n_chan, S = pk->n_spec, NS = g->n_shell;
    size_t np = (size_t)n * n;
    cl_command_queue q = cv_ctx_queue(pk->ctx);
    for (int64_t m0 = 0; m0 < count; m0 += pk->o.batch) {
        int b = (int)(count - m0 < pk->o.batch ? count - m0 : pk->o.batch);
        CV_TRY(CV_CL(clEnqueueWriteBuffer(q, pk->in, CL_FALSE, 0, (size_t)b * C * np * sizeof(float),
                                          maps + (size_t)m0 * C * np, 0, NULL, NULL)));
        cv_kargs ka = cv_kargs_begin(pk->ctx, "cvk_pk_level");
        cv_karg_mem(&ka, pk->in); cv_karg_u64(&ka, 0); cv_karg_i32(&ka, (int32_t)np); cv_karg_i32(&ka, b * C);
        cv_karg_i32(&ka, pk->o.mode); cv_karg_mem(&ka, pk->level);
        CV_TRY(cv_launch1(&ka, (size_t)b * C, 64));
        ka = cv_kargs_begin(pk->ctx, "cvk_pk_shift");
        cv_karg_mem(&ka, pk->in); cv_karg_u64(&ka, 0); cv_karg_i32(&ka, (int32_t)np); cv_karg_i32(&ka, b * C);
        cv_karg_i32(&ka, pk->o.mode); cv_karg_mem(&ka, pk->level);
        size_t gs[2] = { np, (size_t)b * C }, ls[2] = { 256, 1 };
        CV_TRY(cv_launch(&ka, 2, gs, ls));
        /* Planes past b hold stale data; they are transformed but never binned. */
        cl_event ev = NULL, *evp = cv_ctx_profiling(pk->ctx) ? &ev : NULL;
        FFT(clfftEnqueueTransform(pk->plan, CLFFT_FORWARD, 1, &q, 0, NULL, evp, &pk->in, &pk->fft, pk->tmp));
        if (ev) cv_ctx_profile_event(pk->ctx, "clfft_r2c", ev);
        if (C <= 8 && !pk->o.per_spec) {   /* PK_MAXC in cl/pk.cl: all spectra of a map in one pass */
            ka = cv_kargs_begin(pk->ctx, "cvk_pk_bin_all");
            cv_karg_mem(&ka, pk->fft); cv_karg_u64(&ka, 0);
            cv_karg_mem(&ka, pk->order); cv_karg_mem(&ka, pk->start); cv_karg_mem(&ka, pk->norm);
            cv_karg_i32(&ka, C); cv_karg_i32(&ka, NS); cv_karg_i32(&ka, b);
            cv_karg_i64(&ka, (int64_t)n * g->n_half);
            cv_karg_i32(&ka, pk->o.mode); cv_karg_mem(&ka, pk->level); cv_karg_i32(&ka, (int32_t)np);
            cv_karg_mem(&ka, pk->out); cv_karg_u64(&ka, 0);
            size_t gb[2] = { (size_t)NS, (size_t)b }, lb[2] = { 32, 1 };
            CV_TRY(cv_launch(&ka, 2, gb, lb));
        } else {
            ka = cv_kargs_begin(pk->ctx, "cvk_pk_bin");
            cv_karg_mem(&ka, pk->fft); cv_karg_u64(&ka, 0);
            cv_karg_mem(&ka, pk->order); cv_karg_mem(&ka, pk->start); cv_karg_mem(&ka, pk->norm); cv_karg_mem(&ka, pk->pairs);
            cv_karg_i32(&ka, C); cv_karg_i32(&ka, NS); cv_karg_i32(&ka, S); cv_karg_i32(&ka, b);
            cv_karg_i64(&ka, (int64_t)n * g->n_half);
            cv_karg_i32(&ka, pk->o.mode); cv_karg_mem(&ka, pk->level); cv_karg_i32(&ka, (int32_t)np);
            cv_karg_mem(&ka, pk->out); cv_karg_u64(&ka, 0);
            size_t gb[3] = { (size_t)NS, (size_t)S, (size_t)b }, lb[3] = { 32, 1, 1 };
            CV_TRY(cv_launch(&ka, 3, gb, lb));
        }
        float *dst = out + (size_t)m0 * S * NS;
        CV_TRY(CV_CL(clEnqueueReadBuffer(q, pk->out, CL_TRUE, 0, (size_t)b * S * NS * sizeof(float), dst, 0, NULL, NULL)));
        for (size_t i = 0; i < (size_t)b * S * NS; i++) {
            if (isfinite(dst[i])) continue;
            int64_t m = m0 + (int64_t)(i / ((size_t)S * NS));
            int sp = (int)(i / NS % S), a, bb;
            cv_pk_spec_pair(C, sp, &a, &bb);
            return cv_error(CV_ERR_NUMERIC, "map %lld, channel %d: the spectrum is not finite (%s delta: %s)", (long long)m,
                            a, cv_pk_delta_name(pk->o.mode),
                            pk->o.mode == CV_PK_DELTA_LOG10 ? "a value <= 0 or not finite" :
                            pk->o.mode == CV_PK_DELTA_OVER ? "a mean <= 0 or a non-finite value" : "a non-finite value");
        }
    }
    return CV_OK;
fail:
    return st;
}

/* ---- statistics ---------------------------------------------------------- */

cv_status cv_pk_stats_init(cv_pk_stats *s, int n_spec, int n_shell) {
    memset(s, 0, sizeof *s);
    s->n_spec = n_spec; s->n_shell = n_shell;
    s->mean = calloc((size_t)n_spec * n_shell, sizeof *s->mean);
    s->m2 = calloc((size_t)n_spec * n_shell, sizeof *s->m2);
    if (!s->mean || !s->m2) { cv_pk_stats_free(s); return cv_error(CV_ERR_NOMEM, "power spectrum statistics"); }
    return CV_OK;
}

void cv_pk_stats_add(cv_pk_stats *s, const float *pk, int64_t count) {
    size_t n = (size_t)s->n_spec * s->n_shell;
    for (int64_t m = 0; m < count; m++) {
        s->count++;
        for (size_t i = 0; i < n; i++) {
            double x = pk[(size_t)m * n + i], d = x - s->mean[i];
            s->mean[i] += d / s->count;
            s->m2[i] += d * (x - s->mean[i]);
        }
    }
}

double cv_pk_stats_std(const cv_pk_stats *s, int spec, int shell) {
    if (s->count < 1) return NAN;
    double v = s->m2[(size_t)spec * s->n_shell + shell] / s->count;
    return sqrt(v > 0 ? v : 0);
}

void cv_pk_stats_free(cv_pk_stats *s) {
    free(s->mean); free(s->m2);
    s->mean = s->m2 = NULL;
}

double cv_pk_agree_kmax(const double *k, const double *a, const double *b, int n_shell, double tol) {
    double kmax = 0;
    for (int s = 0; s < n_shell; s++) {
        if (!(a[s] != 0) || !(fabs(b[s] - a[s]) <= tol * fabs(a[s]))) break;
        kmax = k[s];
    }
    return kmax;
}

