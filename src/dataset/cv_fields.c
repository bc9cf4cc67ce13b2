/* cv_fields.c -- the synthetic CMD-like generator (see cv_fields.h).
 *
 * Model of one simulation: a periodic L = 25 Mpc/h box of size^3 cells,
 *   g3     Gaussian, spectrum  P3(k) = a_N * (Om/0.3)^0.3 * Plin(k) * F(k),
 *          F(k) = 1 - a_fb x^2/(1+x^2), x = k/k_fb the feedback suppression
 *          (k_fb falls and a_fb rises with the supernova parameters; A_AGN1
 *          enters a_fb weakly); no k = 0 mode (the box's mean is fixed).
 * Map j of it: g = the mean of g3 through slab j (cv_fields_slab), a 2-D
 *          Gaussian field whose spectrum is P3 seen through the slab's
 *          window and whose map mean varies (the box's k_par modes);
 *          a_N fixes Var g = SIGMA_G^2 at the centre of the prior for this
 *          grid, so statistics do not depend on N.  Then, per pixel:
 *   Mgas   = Mbar exp(g - sg^2/2), sg^2 = Var g for these parameters (so
 *          E Mgas = Mbar whatever the cosmology: Omega_b is fixed).
 *   HI     log10 HI = HI0 + 2 (log10 Mgas - M0) + 0.1 n + spikes, n an
 *          independent smooth unit field, spikes = A_ss (z - z_ss)+ in the
 *          densest pixels (z = g/sg), A_ss lowered by A_AGN2.
 *   B      a mix of voids (log10 B = BV + (2/3)(log10 Mgas - M0)) and
 *          magnetised bubbles (log10 B = BB + 0.5 (...)) weighted by a
 *          sigmoid of the gas smoothed on R_b; the threshold puts a fraction
 *          f_b of the area in bubbles, f_b growing with A_SN2 and A_SN1.
 * Invariant: a map depends only on (size, params, seed, sim, j). */
#include "dataset/cv_fields.h"
#include "dataset/cv_data.h"

#include <math.h>
#include <string.h>

const char *const cv_fields_chan_names[CV_FIELDS_N_CHAN] = { "Mgas", "HI", "B" };

#define CV_PI 3.14159265358979323846

/* Calibration (doc/dataset.md explains each number). */
#define SIGMA_G   1.06      /* ln-space std of the gas at the prior centre (pooled 0.49 dex over the prior) */
#define M0        10.41     /* target mean log10 Mgas */
#define HI0       4.78      /* target mean log10 HI */
#define HI_NOISE  0.10      /* dex of HI not explained by the gas */
#define Z_SS      1.75      /* self-shielding threshold (top 4 % of pixels) */
#define BV        -13.65    /* log10 B in voids */
#define BB        -8.85     /* log10 B in bubbles */
#define F_B0      0.246     /* bubble filling factor at the prior centre */

static const double fid[6] = { 0.3, 0.8, 1.0, 1.0, 1.0, 1.0 };

/* ---- priors and Latin hypercube ------------------------------------------ */

void cv_fields_prior(int p, double *lo, double *hi, int *is_log) {
    static const double L[6] = { 0.1, 0.6, 0.25, 0.25, 0.5, 0.5 };
    static const double H[6] = { 0.5, 1.0, 4.0, 4.0, 2.0, 2.0 };
    *lo = L[p];
    *hi = H[p];
    *is_log = p >= 2;
}

void cv_fields_latin_hypercube(int64_t n_sims, uint64_t seed, double *params) {
    for (int p = 0; p < 6; p++) {
        double lo, hi;
        int lg;
        cv_fields_prior(p, &lo, &hi, &lg);
        uint64_t ps = cv_data_hash(seed, 0x4c48ULL /* "LH" */, (uint64_t)p);
        /* a random permutation of the strata by sorting on hashes would need
         * memory; instead walk a Fisher-Yates over the stratum indices */
        int64_t *perm = malloc((size_t)n_sims * sizeof *perm);
        if (!perm) {   /* tiny fallback: stratified but unshuffled */
            for (int64_t i = 0; i < n_sims; i++) params[i * 6 + p] = NAN;
            continue;
        }
        for (int64_t i = 0; i < n_sims; i++) perm[i] = i;
        for (int64_t i = n_sims - 1; i > 0; i--) {
            int64_t k = cv_data_below(ps, 1, (uint64_t)i, i + 1);
            int64_t t = perm[i]; perm[i] = perm[k]; perm[k] = t;
        }
        for (int64_t i = 0; i < n_sims; i++) {
            double u = (perm[i] + cv_data_uniform(ps, 2, (uint64_t)i)) / (double)n_sims;
            params[i * 6 + p] = lg ? lo * pow(hi / lo, u) : lo + (hi - lo) * u;
        }
        free(perm);
    }
}

/* ---- linear spectrum --------------------------------------------------- */

#define H0_LITTLE 0.6711
#define OMEGA_B   0.049
#define N_S       0.9624
#define T_CMB     2.7255

/* Eisenstein & Hu (1998) eqs. 26, 28-31: no-wiggle transfer function; k in h/Mpc. */
static double eh_nowiggle(double k, double om) {
    const double h = H0_LITTLE, omh2 = om * h * h, obh2 = OMEGA_B * h * h, fb = OMEGA_B / om;
    const double theta = T_CMB / 2.7;
    const double s = 44.5 * log(9.83 / omh2) / sqrt(1.0 + 10.0 * pow(obh2, 0.75));   /* Mpc */
    const double ag = 1.0 - 0.328 * log(431.0 * omh2) * fb + 0.38 * log(22.3 * omh2) * fb * fb;
    const double ks = k * h * s;
    const double gamma = om * h * (ag + (1.0 - ag) / (1.0 + pow(0.43 * ks, 4.0)));
    const double q = k * theta * theta / gamma;
    const double l0 = log(2.0 * 2.718281828459045 + 1.8 * q), c0 = 14.2 + 731.0 / (1.0 + 62.5 * q);
    return l0 / (l0 + c0 * q * q);
}

static double plin_unnorm(double k, double om) {
    double t = eh_nowiggle(k, om);
    return pow(k, N_S) * t * t;
}

static double tophat(double x) {
    if (x < 1e-3) return 1.0 - x * x / 10.0;
    return 3.0 * (sin(x) - x * cos(x)) / (x * x * x);
}

/* sigma^2(R) of the unnormalised spectrum: (1/2pi^2) int k^3 P W^2 dln k */
static double sigma2_unnorm(double r, double om) {
    const int n = 2000;
    const double lk0 = log(1e-5), lk1 = log(1e3), d = (lk1 - lk0) / n;
    double s = 0;
    for (int i = 0; i <= n; i++) {
        double k = exp(lk0 + i * d), w = tophat(k * r);
        double f = k * k * k * plin_unnorm(k, om) * w * w;
        s += (i == 0 || i == n) ? 0.5 * f : f;
    }
    return s * d / (2.0 * CV_PI * CV_PI);
}

/* normalisation cache: one (omega_m -> amplitude) per thread would be
 * cleaner; the computation is cheap enough to redo per call site */
static double plin_amp(double om, double s8) { return s8 * s8 / sigma2_unnorm(8.0, om); }

double cv_fields_plin(double k, double omega_m, double sigma_8) {
    return plin_amp(omega_m, sigma_8) * plin_unnorm(k, omega_m);
}

double cv_fields_sigma_r(double r, double omega_m, double sigma_8) {
    return sqrt(plin_amp(omega_m, sigma_8) * sigma2_unnorm(r, omega_m));
}

static double p2d_with_amp(double k, double om, double amp, double depth) {
    /* (1/pi) int_0^inf dq P(sqrt(k^2+q^2)) sinc^2(q d/2): trapezoid in ln q
     * from 1e-4 to 1e3 h/Mpc plus the flat piece [0, 1e-4]. */
    const int n = 600;
    const double q0 = 1e-4, lq0 = log(q0), lq1 = log(1e3), d = (lq1 - lq0) / n;
    double s = q0 * amp * plin_unnorm(k > 0 ? k : 1e-6, om);
    double acc = 0;
    for (int i = 0; i <= n; i++) {
        double q = exp(lq0 + i * d), kk = sqrt(k * k + q * q), x = 0.5 * q * depth;
        double sc = x < 1e-6 ? 1.0 : sin(x) / x;
        double f = q * amp * plin_unnorm(kk, om) * sc * sc;
        acc += (i == 0 || i == n) ? 0.5 * f : f;
    }
    return (s + acc * d) / CV_PI;
}

double cv_fields_p2d(double k, double omega_m, double sigma_8, double depth) {
    return p2d_with_amp(k, omega_m, plin_amp(omega_m, sigma_8), depth);
}

/* ---- FFT ----------------------------------------------------------------- */

static void fft1(double *re_im /* (n, 2) strided */, size_t stride, int n, int sign, const double *tw /* (n/2, 2) */) {
    /* bit reversal */
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double *a = re_im + 2 * stride * (size_t)i, *b = re_im + 2 * stride * (size_t)j;
            double t0 = a[0], t1 = a[1];
            a[0] = b[0]; a[1] = b[1];
            b[0] = t0; b[1] = t1;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        int half = len >> 1, step = n / len;
        for (int i = 0; i < n; i += len) {
            for (int k = 0; k < half; k++) {
                double wr = tw[2 * k * step], wi = sign * tw[2 * k * step + 1];
                double *a = re_im + 2 * stride * (size_t)(i + k), *b = re_im + 2 * stride * (size_t)(i + k + half);
                double xr = b[0] * wr - b[1] * wi, xi = b[0] * wi + b[1] * wr;
                b[0] = a[0] - xr; b[1] = a[1] - xi;
                a[0] += xr; a[1] += xi;
            }
        }
    }
}

static void twiddles(double *tw /* (n/2, 2) */, int n) {
    for (int k = 0; k < n / 2; k++) {
        tw[2 * k] = cos(2.0 * CV_PI * k / n);
        tw[2 * k + 1] = -sin(2.0 * CV_PI * k / n);   /* forward: exp(-2 pi i k/n) */
    }
}

/* Blocked transpose of an n x n complex array: dst = src^T. */
static void transpose(const double *src /* (n, n, 2) */, double *dst /* (n, n, 2) */, int n) {
    enum { T = 16 };
    for (int y0 = 0; y0 < n; y0 += T)
        for (int x0 = 0; x0 < n; x0 += T)
            for (int y = y0; y < y0 + T && y < n; y++)
                for (int x = x0; x < x0 + T && x < n; x++) {
                    dst[2 * ((size_t)x * n + y)] = src[2 * ((size_t)y * n + x)];
                    dst[2 * ((size_t)x * n + y) + 1] = src[2 * ((size_t)y * n + x) + 1];
                }
}

/* Rows, transpose, rows, transpose back: every 1D pass is contiguous. */
static void fft2_tw(double *data /* (n, n, 2) */, int n, int sign, const double *tw, double *scratch /* (n, n, 2) */) {
    for (int y = 0; y < n; y++) fft1(data + 2 * (size_t)y * n, 1, n, sign, tw);
    transpose(data, scratch, n);
    for (int y = 0; y < n; y++) fft1(scratch + 2 * (size_t)y * n, 1, n, sign, tw);
    transpose(scratch, data, n);
}

void cv_fields_fft2(double *data, int n, int sign) {
    double *tw = malloc((size_t)n * sizeof *tw);
    double *scratch = malloc(2 * (size_t)n * n * sizeof *scratch);
    if (tw && scratch) {
        twiddles(tw, n);
        fft2_tw(data, n, sign, tw, scratch);
    }
    free(tw);
    free(scratch);
}

/* ---- generator ---------------------------------------------------------- */

#define R_U 0.5           /* Mpc/h: smoothing of the HI noise field */

struct cv_fields {
    int     n;
    double *tw;          /* (n/2, 2) */
    double *kmag;        /* (n, n) |k| in h/Mpc */
    int    *kneg;        /* (n, n) flat index of -k */
    double *wu;          /* (n, n) HI-noise filter, 0 at k = 0 */
    double *z;           /* (n, n, 2): g2 + i w, then its transform */
    double *s2;          /* (n, n, 2): s + i u */
    double *g2;          /* (n, n): the map's Gaussian gas field */
    double *scratch;     /* (n, n, 2) for the FFT transposes */
    double *box;         /* (n, n, n, 2): the simulation's 3-D field g3 (real parts) */
    double *fej;         /* (n) slab window |W(k_par)|^2, mean over the 5 slab widths */
    double  a_n;         /* amplitude so that Var g2 = SIGMA_G^2 at the prior centre */
    double  var_u;       /* Var u */
    /* per-parameter state, recomputed when the parameters change */
    double  last[6];
    int     have_last;
    int     nk;
    double  lk0, dlk;
    double *lnp;         /* (nk) ln(P3(k) F(k)) without a_n, on a ln k grid */
    double  var_g1, var_s1;  /* Var g2 and Var s without a_n */
    double *ws;          /* (n, n) the bubble smoothing filter */
    double  r_b;
    /* the simulation whose box is held */
    int      have_box;
    uint64_t box_seed;
    int64_t  box_sim;
    double   box_par[6];
};

static double inv_norm_cdf(double p) {
    /* Acklam's rational approximation, |rel err| < 1.2e-9 */
    static const double a[6] = { -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00 };
    static const double b[5] = { -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01, -1.328068155288572e+01 };
    static const double c[6] = { -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549671485592244e+00, 4.374664141464968e+00, 2.938163982698783e+00 };
    static const double d[4] = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00 };
    if (p <= 0) return -INFINITY;
    if (p >= 1) return INFINITY;
    if (p < 0.02425) {
        double q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - 0.02425) return -inv_norm_cdf(1 - p);
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/* Feedback suppression of the gas spectrum. */
static double feedback(double k, const double *p) {
    const double wind = pow(p[2], 0.6) * pow(p[4], 0.4);             /* SN strength, 1 at the centre */
    const double k_fb = 5.0 / sqrt(wind);                            /* h/Mpc */
    const double a_fb = 0.45 + 0.15 * tanh(0.8 * log(wind)) + 0.02 * log(p[3]);
    const double x2 = (k / k_fb) * (k / k_fb);
    return 1.0 - a_fb * x2 / (1.0 + x2);
}

static double pk_interp(const cv_fields *f, double k) {
    double lk = (log(k) - f->lk0) / f->dlk;
    int j = (int)lk;
    double t = lk - j;
    if (j < 0) { j = 0; t = 0; }
    if (j >= f->nk - 1) { j = f->nk - 2; t = 1; }
    return exp(f->lnp[j] * (1 - t) + f->lnp[j + 1] * t);
}

void cv_fields_slab(int n, int j, int *axis, int *lo, int *hi) {
    *axis = j / CV_FIELDS_N_SLAB;
    *lo = (j % CV_FIELDS_N_SLAB) * n / CV_FIELDS_N_SLAB;
    *hi = (j % CV_FIELDS_N_SLAB + 1) * n / CV_FIELDS_N_SLAB;
}

static int wrap(int i, int n) { return i <= n / 2 ? i : i - n; }

/* The spectrum of parameters p (once per simulation): the 3-D spectrum
 * f->lnp, and Var g2 and Var s (per unit a_n) as sums over the box's
 * modes of P3 |W_slab(k_par)|^2 (ws(k_perp)^2) / L^3. */
static void spectrum(cv_fields *f, const double *p) {
    if (f->have_last && !memcmp(f->last, p, sizeof f->last)) return;
    const double amp = plin_amp(p[0], p[1]) * pow(p[0] / 0.3, 0.3);
    for (int i = 0; i < f->nk; i++) {
        double k = exp(f->lk0 + i * f->dlk);
        f->lnp[i] = log(amp * plin_unnorm(k, p[0]) * feedback(k, p));
    }
    memcpy(f->last, p, sizeof f->last);
    f->have_last = 1;
    const int n = f->n;
    const size_t nn = (size_t)n * n;
    const double L = CV_DATA_BOX_SIZE, kf = 2.0 * CV_PI / L;
    f->r_b = 0.6 * pow(p[4], 0.3);                                   /* Mpc/h */
    for (size_t i = 0; i < nn; i++) f->ws[i] = exp(-0.5 * f->kmag[i] * f->kmag[i] * f->r_b * f->r_b);
    double v = 0, vs = 0;
    for (int c = 0; c < n; c++) {                   /* k_par index */
        int kc = wrap(c, n);
        for (size_t i = 0; i < nn; i++) {           /* k_perp */
            if (!c && !i) continue;                 /* the box's mean is fixed: no 3-D DC mode */
            double kp = f->kmag[i], kz = kf * kc, k = sqrt(kp * kp + kz * kz);
            double pk = pk_interp(f, k) * f->fej[c];
            v += pk;
            vs += pk * f->ws[i] * f->ws[i];
        }
    }
    f->var_g1 = v / (L * L * L);
    f->var_s1 = vs / (L * L * L);
}

void cv_fields_free(cv_fields *f) {
    if (!f) return;
    free(f->tw); free(f->kmag); free(f->kneg); free(f->wu); free(f->z); free(f->s2); free(f->g2);
    free(f->scratch); free(f->lnp); free(f->ws); free(f->box); free(f->fej);
    free(f);
}

cv_status cv_fields_new(int size, cv_fields **out) {
    *out = NULL;
    if (size < 8 || size > 512 || (size & (size - 1)))
        return cv_error(CV_ERR_ARG, "map size %d is not a power of two in [8, 512]", size);
    cv_fields *f = calloc(1, sizeof *f);
    if (!f) return cv_error(CV_ERR_NOMEM, "out of memory");
    const size_t nn = (size_t)size * size, n3 = nn * (size_t)size;
    f->n = size;
    f->nk = 256;
    f->tw = malloc((size_t)size * sizeof(double));
    f->kmag = malloc(nn * sizeof(double));
    f->kneg = malloc(nn * sizeof(int));
    f->wu = malloc(nn * sizeof(double));
    f->ws = malloc(nn * sizeof(double));
    f->z = malloc(2 * nn * sizeof(double));
    f->s2 = malloc(2 * nn * sizeof(double));
    f->g2 = malloc(nn * sizeof(double));
    f->scratch = malloc(2 * nn * sizeof(double));
    f->box = malloc(2 * n3 * sizeof(double));
    f->fej = calloc((size_t)size, sizeof(double));
    f->lnp = calloc((size_t)f->nk, sizeof(double));
    if (!f->tw || !f->kmag || !f->kneg || !f->wu || !f->ws || !f->z || !f->s2 || !f->g2 || !f->scratch || !f->box || !f->fej || !f->lnp) {
        cv_fields_free(f);
        return cv_error(CV_ERR_NOMEM, "out of memory for %d^3 boxes (%.0f MiB)", size,
                        2.0 * (double)n3 * sizeof(double) / 1048576.0);
    }
    twiddles(f->tw, size);
    const double kf = 2.0 * CV_PI / CV_DATA_BOX_SIZE;
    f->var_u = 0;
    for (int y = 0; y < size; y++) {
        int ky = wrap(y, size);
        for (int x = 0; x < size; x++) {
            int kx = wrap(x, size);
            size_t i = (size_t)y * size + x;
            double k = kf * sqrt((double)(kx * kx + ky * ky));
            f->kmag[i] = k;
            f->kneg[i] = ((size - y) % size) * size + (size - x) % size;
            f->wu[i] = i ? exp(-0.5 * k * k * R_U * R_U) : 0;
            f->var_u += f->wu[i] * f->wu[i];        /* Var u = sum_k wu^2 (filter applied with 1/n) */
        }
    }
    /* |W(k)|^2 of the mean over m cells, sin^2(m t/2) / (m sin(t/2))^2,
     * averaged over the widths of the 5 slabs */
    for (int s = 0; s < CV_FIELDS_N_SLAB; s++) {
        int axis, lo, hi;
        cv_fields_slab(size, s, &axis, &lo, &hi);
        int m = hi - lo;
        for (int c = 0; c < size; c++) {
            double t = 2.0 * CV_PI * c / size, w;
            if (!c) w = 1.0;
            else {
                double num = sin(0.5 * m * t), den = m * sin(0.5 * t);
                w = num * num / (den * den);
            }
            f->fej[c] += w / CV_FIELDS_N_SLAB;
        }
    }
    f->lk0 = log(0.5 * kf);
    f->dlk = (log(kf * size) - f->lk0) / (f->nk - 1);   /* the box's largest |k| is sqrt(3) kf n / 2 */
    f->a_n = 1.0;
    spectrum(f, fid);
    f->a_n = SIGMA_G * SIGMA_G / f->var_g1;
    *out = f;
    return CV_OK;
}

/* The 3-D Gaussian field of simulation `sim`: white noise, filtered with
 * sqrt(a_n P3 / L^3) / n^(3/2) in Fourier space, into the real parts of
 * f->box, (z, y, x) with x fastest.  Each 1-D pass of the 3-D FFT is the
 * radix-2 fft1 on a strided line. */
static void make_box(cv_fields *f, const double *p, uint64_t seed, int64_t sim) {
    if (f->have_box && f->box_seed == seed && f->box_sim == sim && !memcmp(f->box_par, p, sizeof f->box_par)) return;
    const int n = f->n;
    const size_t nn = (size_t)n * n, n3 = nn * (size_t)n;
    const uint64_t stream = ((uint64_t)sim << 8) | 0xffu;   /* maps use j = 0..14 */
    double *b = f->box;
    for (size_t i = 0; i < n3; i += 2) {            /* n^3 is even: two normals per pair of cells */
        double u1 = cv_data_uniform(seed, stream, i), u2 = cv_data_uniform(seed, stream, i + 1);
        double r = sqrt(-2.0 * log(u1));
        b[2 * i] = r * cos(2.0 * CV_PI * u2);
        b[2 * i + 2] = r * sin(2.0 * CV_PI * u2);
        b[2 * i + 1] = b[2 * i + 3] = 0;
    }
    for (int sign = -1; sign <= 1; sign += 2) {
        for (size_t l = 0; l < nn; l++) fft1(b + 2 * l * n, 1, n, sign, f->tw);                  /* x */
        for (int zz = 0; zz < n; zz++)
            for (int x = 0; x < n; x++) fft1(b + 2 * ((size_t)zz * nn + x), (size_t)n, n, sign, f->tw);  /* y */
        for (size_t l = 0; l < nn; l++) fft1(b + 2 * l, nn, n, sign, f->tw);                       /* z */
        if (sign > 0) break;
        const double L = CV_DATA_BOX_SIZE, kf = 2.0 * CV_PI / L;
        const double norm = f->a_n / (L * L * L) / (double)n3;
        for (int c = 0; c < n; c++) {
            double kz = kf * wrap(c, n);
            for (size_t i = 0; i < nn; i++) {
                size_t q = (size_t)c * nn + i;
                double kp = f->kmag[i], k = sqrt(kp * kp + kz * kz);
                double a = (c || i) ? sqrt(norm * pk_interp(f, k)) : 0.0;
                b[2 * q] *= a;
                b[2 * q + 1] *= a;
            }
        }
    }
    f->have_box = 1;
    f->box_seed = seed;
    f->box_sim = sim;
    memcpy(f->box_par, p, sizeof f->box_par);
}

cv_status cv_fields_map(cv_fields *f, const double *p, uint64_t seed, int64_t sim, int j, float *out) {
    for (int i = 0; i < 6; i++)
        if (!isfinite(p[i]) || p[i] <= 0 || p[i] > 10)
            return cv_error(CV_ERR_ARG, "simulation %lld: parameter %s = %g is outside (0, 10]", (long long)sim,
                            cv_data_param_names[i], p[i]);
    if (j < 0 || j >= CV_FIELDS_N_MAPS)
        return cv_error(CV_ERR_ARG, "simulation %lld: map %d is outside 0..%d", (long long)sim, j, CV_FIELDS_N_MAPS - 1);
    const int n = f->n;
    const size_t nn = (size_t)n * n;
    spectrum(f, p);
    make_box(f, p, seed, sim);
    const double var_g = f->a_n * f->var_g1, sg = sqrt(var_g);
    const uint64_t stream = ((uint64_t)sim << 8) | (uint64_t)j;

    /* bubbles: filling factor from the winds; HI spikes lowered by AGN */
    double f_b = F_B0 * pow(p[4], 0.8) * pow(p[2], 0.2) / 1.065;
    if (f_b < 0.03) f_b = 0.03;
    if (f_b > 0.6) f_b = 0.6;
    const double thr = inv_norm_cdf(1.0 - f_b);
    const double a_ss = 1.0 - 0.25 * log(p[5]) / log(2.0);

    /* g2: the slab's mean of g3 along the map's axis (map rows, columns:
     * axis z -> (y, x), axis y -> (z, x), axis x -> (z, y)); into the real
     * parts of z, white noise for the HI field into the imaginary parts */
    int axis, lo, hi;
    cv_fields_slab(n, j, &axis, &lo, &hi);
    const size_t st[3] = { nn, (size_t)n, 1 };       /* strides of z, y, x in the box */
    const size_t sp = st[axis], sr = st[axis == 0 ? 1 : 0], sc = st[axis == 2 ? 1 : 2];
    const double inv_m = 1.0 / (hi - lo);
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++) {
            double acc = 0;
            for (int q = lo; q < hi; q++) acc += f->box[2 * ((size_t)q * sp + (size_t)r * sr + (size_t)c * sc)];
            f->g2[(size_t)r * n + c] = acc * inv_m;
            f->z[2 * ((size_t)r * n + c)] = acc * inv_m;
        }
    for (size_t i = 0; i < nn; i++) {
        double u1 = cv_data_uniform(seed, stream, 2 * i), u2 = cv_data_uniform(seed, stream, 2 * i + 1);
        f->z[2 * i + 1] = sqrt(-2.0 * log(u1)) * cos(2.0 * CV_PI * u2);
    }
    /* G2 = (Z(k) + conj Z(-k)) / 2, W = (Z(k) - conj Z(-k)) / 2i;
     * scratch = ws G2 / n^2 + i (wu / n) W -> s + i u */
    fft2_tw(f->z, n, -1, f->tw, f->scratch);
    double *s2 = f->s2;
    for (size_t i = 0; i < nn; i++) {
        size_t m = (size_t)f->kneg[i];
        double zr = f->z[2 * i], zi = f->z[2 * i + 1], mr = f->z[2 * m], mi = -f->z[2 * m + 1];
        double gr = 0.5 * (zr + mr), gi = 0.5 * (zi + mi);
        double wr = 0.5 * (zi - mi), wi = -0.5 * (zr - mr);
        double g = f->ws[i] / (double)nn, wu = f->wu[i] / n;
        s2[2 * i] = g * gr - wu * wi;
        s2[2 * i + 1] = g * gi + wu * wr;
    }
    fft2_tw(s2, n, +1, f->tw, f->scratch);

    const double lnmbar = M0 * log(10.0) + 0.5 * SIGMA_G * SIGMA_G;   /* mean log10 Mgas = M0 at the centre */
    const double ss = sqrt(f->a_n * f->var_s1), su = sqrt(f->var_u);
    const double l10 = 1.0 / log(10.0);
    float *mg = out, *hf = out + nn, *bf = out + 2 * nn;   /* (n, n) each */
    for (size_t i = 0; i < nn; i++) {
        double g = f->g2[i], sm = s2[2 * i], u = s2[2 * i + 1];
        double lg = (lnmbar + g - 0.5 * var_g) * l10;                    /* log10 Mgas */
        double zz = g / sg;
        double spike = zz > Z_SS ? a_ss * (zz - Z_SS) : 0;
        double lh = HI0 + 2.0 * (lg - M0) + HI_NOISE * u / su + spike;
        double w = 1.0 / (1.0 + exp(-(sm / ss - thr) / 0.15));
        double lb = (1 - w) * (BV + (2.0 / 3.0) * (lg - M0)) + w * (BB + 0.5 * (lg - M0));
        mg[i] = (float)pow(10.0, lg);
        hf[i] = (float)pow(10.0, lh);
        bf[i] = (float)pow(10.0, lb);
    }
    return CV_OK;
}
