/* test-probe.c -- the latent-file format (write, read back bit-equal,
 * rejection of files without params or split, bad split values, an
 * atomic writer) and the linear probe: R^2 ~ 1 on exactly linear data
 * (A parameters linear in log), R^2 ~ 0 on noise, R^2 itself, least
 * squares, and the errors for an empty split and bad parameters; the
 * bootstrap over test simulations (whole simulations drawn, seeded,
 * single-valued resamples left out, the count of test simulations); the
 * closed form skipped for D >= the train maps or D above the limit, and
 * D = 20,000 run within a bounded address space.
 *
 * Also a fixture maker for tests/cli-results.sh:
 *   test-probe --make-latent PATH N D [KIND]
 * writes N maps of D-dim latents whose six CAMELS-named parameters are
 * partly linear in the latents (KIND: ok (default), noparams, nosplit,
 * novalid). */
#include "tap.h"
#include "analysis/cv_latent.h"
#include "analysis/cv_probe.h"
#include "model/cv_sample.h"

#include <math.h>
#include <netcdf.h>
#include <sys/resource.h>
#include <unistd.h>

static char dir[256];

/* N(0, 1) from (seed, stream, i): Box-Muller on two splitmix64 draws. */
static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static float normal(uint64_t seed, uint64_t stream, uint64_t i) {
    uint64_t a = mix(seed ^ mix(stream ^ mix(2 * i))), b = mix(seed ^ mix(stream ^ mix(2 * i + 1)));
    double u = ((a >> 11) + 0.5) * 0x1.0p-53, v = (b >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2 * log(u)) * cos(2 * 3.141592653589793 * v));
}

/* n maps, D dims, params Omega_m, A_SN1, sigma_8; split 60/20/20 by sim
 * (5 maps a sim).  linear: targets exactly affine in z (A_SN1 in log10);
 * else independent noise. */
static cv_latent *make(int64_t n, int D, int linear, uint64_t seed) {
    cv_latent *lat = NULL;
    if (cv_latent_new(n, D, 3, &lat) != CV_OK) return NULL;
    snprintf(lat->param_name[0], CV_LATENT_NAME_MAX, "Omega_m");
    snprintf(lat->param_name[1], CV_LATENT_NAME_MAX, "A_SN1");
    snprintf(lat->param_name[2], CV_LATENT_NAME_MAX, "sigma_8");
    for (int64_t i = 0; i < n; i++) {
        double s[3] = { 0, 0, 0 };
        for (int d = 0; d < D; d++) {
            float z = normal(seed, 1, (uint64_t)(i * D + d));
            lat->z[i * D + d] = z;
            s[0] += z * (0.3 + 0.1 * d);
            s[1] += z * (d % 3 - 1) * 0.2;
            s[2] += z * cos(d);
        }
        if (!linear)
            for (int p = 0; p < 3; p++) s[p] = normal(seed, 2, (uint64_t)(3 * i + p));
        lat->params[i * 3 + 0] = 0.3 + 0.02 * s[0];
        lat->params[i * 3 + 1] = pow(10, 0.1 * s[1]);
        lat->params[i * 3 + 2] = 0.8 + 0.01 * s[2];
        lat->sim[i] = (int32_t)(i / 5);
        int64_t r = lat->sim[i] % 10;
        lat->split[i] = (int8_t)(r < 6 ? 0 : r < 8 ? 1 : 2);
    }
    snprintf(lat->source, sizeof lat->source, "test");
    return lat;
}

/* latent(map = 40, dim = 7) stored as double, split only if sp != NULL. */
static void hand_file(const char *path, const float *z, const signed char *sp) {
    int ncid, dm, dd, vz, vs;
    nc_create(path, NC_NETCDF4 | NC_CLOBBER, &ncid);
    nc_def_dim(ncid, "map", 40, &dm);
    nc_def_dim(ncid, "dim", 7, &dd);
    int dz[2] = { dm, dd };
    nc_def_var(ncid, "latent", NC_DOUBLE, 2, dz, &vz);
    if (sp) nc_def_var(ncid, "split", NC_BYTE, 1, &dm, &vs);
    nc_enddef(ncid);
    double zd[40 * 7];
    for (int i = 0; i < 40 * 7; i++) zd[i] = z[i];
    nc_put_var_double(ncid, vz, zd);
    if (sp) nc_put_var_schar(ncid, vs, sp);
    nc_close(ncid);
}

static void test_latent_file(void) {
    char path[320];
    snprintf(path, sizeof path, "%s/lat.nc", dir);
    cv_latent *a = make(40, 7, 1, 3), *b = NULL;
    cv_status st = cv_latent_write(path, a, "test-probe");
    CV_CHECK_OK(st == CV_OK, "latent file written: %s", st == CV_OK ? path : cv_last_error());
    st = cv_latent_read(path, CV_LATENT_NEED_PARAMS | CV_LATENT_NEED_SPLIT | CV_LATENT_NEED_SIM, &b);
    int eq = st == CV_OK && b->n_map == 40 && b->n_dim == 7 && b->n_param == 3 &&
             !memcmp(a->z, b->z, 40 * 7 * sizeof *a->z) && !memcmp(a->params, b->params, 40 * 3 * sizeof *a->params) &&
             !memcmp(a->sim, b->sim, 40 * sizeof *a->sim) && !memcmp(a->split, b->split, 40) &&
             !strcmp(b->param_name[1], "A_SN1") && !strcmp(b->source, "test");
    CV_CHECK_OK(eq, "latent file read back bit-equal (latent, params, names, sim, split, source)");
    cv_latent_free(b);

    /* files without params, written by hand with NetCDF */
    char p2[320];
    snprintf(p2, sizeof p2, "%s/noparams.nc", dir);
    signed char sp[40];
    for (int i = 0; i < 40; i++) sp[i] = (signed char)(i % 3);
    sp[13] = 5;
    hand_file(p2, a->z, sp);
    b = NULL;
    st = cv_latent_read(p2, CV_LATENT_NEED_PARAMS, &b);
    CV_CHECK_OK(st == CV_ERR_FORMAT && !b && strstr(cv_last_error(), "params") && strstr(cv_last_error(), "noparams.nc"),
                "a file without params is an error naming file and variable: %s", cv_last_error());
    st = cv_latent_read(p2, 0, &b);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "map 13"), "a split value of 5 is an error naming the map: %s",
                cv_last_error());
    hand_file(p2, a->z, NULL);
    st = cv_latent_read(p2, 0, &b);
    int ok = st == CV_OK && b->n_param == 0 && !b->params && !b->split && b->z[5] == a->z[5];
    cv_latent_free(b);
    b = NULL;
    CV_CHECK_OK(ok, "latent stored as double, no params, no split: read when not needed");
    st = cv_latent_read(p2, CV_LATENT_NEED_SPLIT, &b);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "split"), "... and an error when the split is needed: %s", cv_last_error());
    snprintf(p2, sizeof p2, "%s/missing.nc", dir);
    st = cv_latent_read(p2, 0, &b);
    CV_CHECK_OK(st == CV_ERR_IO && strstr(cv_last_error(), "missing.nc"), "a missing file: %s", cv_last_error());

    /* atomic writer: a bad split leaves nothing behind */
    snprintf(p2, sizeof p2, "%s/bad.nc", dir);
    a->split[3] = 7;
    st = cv_latent_write(p2, a, NULL);
    CV_CHECK_OK(st == CV_ERR_ARG && access(p2, F_OK) != 0, "writing split 7 fails and leaves no file: %s", cv_last_error());
    cv_latent_free(a);
    remove(path);
    snprintf(p2, sizeof p2, "%s/noparams.nc", dir);
    remove(p2);
}

static void test_r2_lstsq(void) {
    double y[4] = { 1, 2, 3, 4 }, yh[4] = { 1, 2, 3, 4 }, ym[4] = { 2.5, 2.5, 2.5, 2.5 }, y2[4] = { 2, 1, 4, 3 };
    double r1 = cv_probe_r2(y, yh, 4, 1, 0), r0 = cv_probe_r2(y, ym, 4, 1, 0), rh = cv_probe_r2(y, y2, 4, 1, 0);
    CV_CHECK_OK(r1 == 1 && r0 == 0 && fabs(rh - 0.2) < 1e-15, "R^2: perfect 1, mean 0, swapped pairs 0.2 (got %g %g %g)", r1, r0, rh);
    /* one value 15 times (one test simulation), whose mean rounds: 0, not a huge negative number */
    double yc[15], yp[15];
    for (int i = 0; i < 15; i++) { yc[i] = 0.1 * 3; yp[i] = 0.3 + 0.01 * i; }
    double rc = cv_probe_r2(yc, yp, 15, 1, 0), rp = cv_probe_r2(yc, yc, 15, 1, 0);
    CV_CHECK_OK(rc == 0 && rp == 1, "R^2 of a single value: %g for a miss, %g for a perfect prediction", rc, rp);
    /* X (5, 2), Y = X [2, -1]^T exactly */
    double X[10] = { 1, 0, 0, 1, 1, 1, -1, 2, 3, -2 }, Y[5], W[2], ridge;
    for (int i = 0; i < 5; i++) Y[i] = 2 * X[2 * i] - X[2 * i + 1];
    cv_status st = cv_probe_lstsq(X, Y, 5, 2, 1, W, &ridge);
    CV_CHECK_OK(st == CV_OK && fabs(W[0] - 2) < 1e-12 && fabs(W[1] + 1) < 1e-12 && ridge == 0, "least squares recovers W = (2, -1)");
    /* rank-deficient: duplicate column -> a ridge, still a solution */
    double Xd[10];
    for (int i = 0; i < 5; i++) Xd[2 * i] = Xd[2 * i + 1] = X[2 * i];
    for (int i = 0; i < 5; i++) Y[i] = 2 * X[2 * i];
    st = cv_probe_lstsq(Xd, Y, 5, 2, 1, W, &ridge);
    CV_CHECK_OK(st == CV_OK && ridge > 0 && fabs(W[0] + W[1] - 2) < 1e-6, "rank-deficient X: ridge %g, w1 + w2 = %g", ridge, W[0] + W[1]);
}

/* Ridge: the normal equations (X^T X + lambda I) W = X^T Y hold; a tiny
 * lambda is least squares; on a problem with few maps per dimension and
 * noisy targets, the probe's valid-chosen ridge beats least squares on the
 * test split and picks a strong alpha, and on exact data a weak one. */
static void test_ridge(void) {
    enum { n = 40, D = 6 };
    double X[n * D], Y[n], W[D], Wl[D], G[D * D] = { 0 }, B[D] = { 0 }, ridge;
    for (int i = 0; i < n * D; i++) X[i] = normal(5, 1, (uint64_t)i);
    for (int i = 0; i < n; i++) { Y[i] = normal(5, 2, (uint64_t)i); for (int d = 0; d < D; d++) Y[i] += (d - 2) * X[i * D + d]; }
    cv_status st = cv_probe_ridge(X, Y, n, D, 1, 7.5, W);
    for (int i = 0; i < n; i++)
        for (int a = 0; a < D; a++) { B[a] += X[i * D + a] * Y[i]; for (int e = 0; e < D; e++) G[a * D + e] += X[i * D + a] * X[i * D + e]; }
    double res = 0;
    for (int a = 0; a < D; a++) {
        double t = 7.5 * W[a] - B[a];
        for (int e = 0; e < D; e++) t += G[a * D + e] * W[e];
        res = fmax(res, fabs(t));
    }
    CV_CHECK_OK(st == CV_OK && res < 1e-10, "ridge lambda 7.5: (X^T X + lambda I) W = X^T Y to %.1e", res);
    cv_status sl = cv_probe_lstsq(X, Y, n, D, 1, Wl, &ridge);
    st = cv_probe_ridge(X, Y, n, D, 1, 1e-12, W);
    double dw = 0;
    for (int d = 0; d < D; d++) dw = fmax(dw, fabs(W[d] - Wl[d]));
    CV_CHECK_OK(st == CV_OK && sl == CV_OK && dw < 1e-9, "ridge lambda 1e-12 is least squares (max |dW| %.1e)", dw);
    st = cv_probe_ridge(X, Y, n, D, 1, 0, W);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "lambda"), "ridge lambda 0 refused: %s", cv_last_error());

    /* 300 maps of 60 simulations, 150 dimensions, one informative: least
     * squares overfits the 180 train maps, the ridge does not */
    cv_probe_opts o = cv_probe_opts_default();
    o.epochs = 5; o.n_boot = 0;
    cv_latent *lat = make(300, 150, 0, 31);
    for (int64_t i = 0; i < lat->n_map; i++)
        for (int p = 0; p < 3; p++) lat->params[i * 3 + p] = p == 1 ? pow(10, 0.1 * lat->z[i * 150] + 0.05 * normal(31, 3, (uint64_t)i))
                                                                    : 0.5 + 0.05 * lat->z[i * 150 + p] + 0.01 * normal(31, 4 + p, (uint64_t)i);
    cv_probe_result r;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    int ok = st == CV_OK && r.has_ridge && r.has_lstsq;
    double worst_gain = INFINITY, min_alpha = INFINITY;
    for (int p = 0; ok && p < 3; p++) { worst_gain = fmin(worst_gain, r.r2_ridge[p] - r.r2_lstsq[p]); min_alpha = fmin(min_alpha, r.ridge_alpha[p]); }
    CV_CHECK_OK(ok && worst_gain > 0.05 && min_alpha >= 0.01,
                "180 train maps, D = 150: ridge beats least squares by >= %.3f in R^2 (Omega_m %.3f vs %.3f), alpha >= %g",
                worst_gain, ok ? r.r2_ridge[0] : NAN, ok ? r.r2_lstsq[0] : NAN, min_alpha);
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);
    lat = make(2000, 8, 1, 11);                    /* exact: the weakest strength wins */
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    double max_alpha = 0, min_r2 = 1;
    for (int p = 0; st == CV_OK && p < 3; p++) { max_alpha = fmax(max_alpha, r.ridge_alpha[p]); min_r2 = fmin(min_r2, r.r2_ridge[p]); }
    CV_CHECK_OK(st == CV_OK && max_alpha <= 1e-3 && min_r2 > 0.9999,
                "exact linear data: ridge alpha <= %g, R^2 min %.6f", max_alpha, min_r2);
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);
}

static void test_probe(void) {
    cv_probe_opts o = cv_probe_opts_default();
    o.epochs = 40;
    cv_probe_result r;
    cv_latent *lat = make(2000, 8, 1, 11);
    cv_status st = cv_probe_run(lat, &o, &r, NULL, NULL);
    if (st != CV_OK) cv_check_diag(c, "%s", cv_last_error());
    double mn = 1, mnl = 1;
    for (int p = 0; st == CV_OK && p < 3; p++) { mn = fmin(mn, r.r2[p]); mnl = fmin(mnl, r.r2_lstsq[p]); }
    CV_CHECK_OK(st == CV_OK && r.is_log[1] && !r.is_log[0] && mn > 0.995 && mnl > 1 - 1e-9,
                "linear data (A_SN1 linear in log): R^2 Adam min %.5f, least squares min %.12f, best epoch %d", mn, mnl,
                st == CV_OK ? r.best_epoch : -1);
    CV_CHECK_OK(st == CV_OK && r.n_train == 1200 && r.n_valid == 400 && r.n_test == 400, "splits 1200/400/400");
    if (st == CV_OK) cv_probe_result_free(&r);
    /* the same in linear targets: A_SN1 is no longer exactly linear */
    o.log_a = 0;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_OK && !r.is_log[1] && r.r2_lstsq[1] < 1 - 1e-6 && r.r2_lstsq[1] > 0.9,
                "linear targets: A_SN1 R^2 %.6f (< 1: the log was doing the work)", st == CV_OK ? r.r2_lstsq[1] : NAN);
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);

    o = cv_probe_opts_default();
    o.epochs = 20;
    lat = make(2000, 8, 0, 12);
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    double mx = 0, mxl = 0;
    for (int p = 0; st == CV_OK && p < 3; p++) { mx = fmax(mx, fabs(r.r2[p])); mxl = fmax(mxl, fabs(r.r2_lstsq[p])); }
    CV_CHECK_OK(st == CV_OK && mx < 0.05 && mxl < 0.05, "noise targets: max |R^2| Adam %.4f, least squares %.4f", mx, mxl);
    if (st == CV_OK) cv_probe_result_free(&r);

    /* errors */
    for (int64_t i = 0; i < lat->n_map; i++) if (lat->split[i] == 1) lat->split[i] = 0;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "valid split is empty"), "empty valid split: %s", cv_last_error());
    lat->params[7 * 3 + 1] = -1;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "map 7") && strstr(cv_last_error(), "A_SN1"),
                "A_SN1 <= 0 cannot be taken in log: %s", cv_last_error());
    lat->params[7 * 3 + 1] = NAN;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "not finite"), "NaN parameter: %s", cv_last_error());
    cv_latent_free(lat);
    /* one value over the train split (one train simulation), whose mean rounds */
    lat = make(300, 4, 1, 14);
    for (int64_t i = 0; i < lat->n_map; i++) if (lat->split[i] == 0) lat->params[i * 3 + 2] = 0.1 * 3;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "sigma_8 is constant over the train split"),
                "a parameter with one value over the train split: %s", cv_last_error());
    cv_latent_free(lat);
}

static void test_bootstrap(void) {
    /* 2 simulations of 4 maps each, a parameter constant within each: the
     * only resamples with an R^2 hold both simulations once, whose R^2 is
     * that of the whole set, so sd = 0 and the interval is that R^2; a
     * bootstrap of maps instead of simulations would spread it */
    enum { n = 8, P = 2 };
    double y[n * P], yh[n * P], sd[P], lo[P], hi[P];
    int64_t group[n];
    for (int i = 0; i < n; i++) {
        group[i] = i / 4;
        y[i * P] = group[i] ? 1.0 : -1.0;
        y[i * P + 1] = group[i] ? 0.3 : 0.5;
        yh[i * P] = y[i * P] + 0.1 * sin(3.0 * i);
        yh[i * P + 1] = 0.4 + 0.05 * cos(1.7 * i);
    }
    int used = -1;
    cv_status st = cv_probe_bootstrap(y, yh, n, P, group, 2, 1000, 5, sd, lo, hi, &used);
    double full0 = cv_probe_r2(y, yh, n, P, 0), full1 = cv_probe_r2(y, yh, n, P, 1);
    CV_CHECK_OK(st == CV_OK && used > 400 && used < 600 && fabs(sd[0]) < 1e-12 && fabs(lo[0] - full0) < 1e-12 &&
                fabs(hi[0] - full0) < 1e-12 && fabs(lo[1] - full1) < 1e-12 && fabs(hi[1] - full1) < 1e-12,
                "bootstrap of 2 simulations: %d of 1000 resamples usable (the others drew one simulation twice), "
                "sd %.1e, interval [%.6f, %.6f] = the full R^2 %.6f", used, sd[0], lo[0], hi[0], full0);

    /* 12 simulations, 3 maps each: seeded (the same seed, the same answer;
     * another seed, another answer), sd > 0, lo <= R^2 of the full set <= hi
     * here, and n_boot 0 gives NaN */
    enum { m = 36 };
    double y2[m], yh2[m], a[3][3];
    int64_t g2[m];
    for (int i = 0; i < m; i++) {
        g2[i] = i / 3;
        y2[i] = 0.1 * (double)(g2[i] * 7 % 12);
        yh2[i] = y2[i] + 0.15 * sin(2.3 * i + 1);
    }
    int u1 = 0, u2 = 0, u3 = 0;
    st = cv_probe_bootstrap(y2, yh2, m, 1, g2, 12, 1000, 1, &a[0][0], &a[0][1], &a[0][2], &u1);
    if (st == CV_OK) st = cv_probe_bootstrap(y2, yh2, m, 1, g2, 12, 1000, 1, &a[1][0], &a[1][1], &a[1][2], &u2);
    if (st == CV_OK) st = cv_probe_bootstrap(y2, yh2, m, 1, g2, 12, 1000, 2, &a[2][0], &a[2][1], &a[2][2], &u3);
    double full = cv_probe_r2(y2, yh2, m, 1, 0);
    CV_CHECK_OK(st == CV_OK && u1 == 1000 && !memcmp(a[0], a[1], sizeof a[0]) && memcmp(a[0], a[2], sizeof a[0]) &&
                a[0][0] > 0.005 && a[0][1] <= full && full <= a[0][2] && a[0][1] < a[0][2],
                "bootstrap of 12 simulations: R^2 %.4f, sd %.4f, 68%% interval [%.4f, %.4f]; seed 1 twice the same, "
                "seed 2 sd %.4f", full, a[0][0], a[0][1], a[0][2], a[2][0]);
    st = cv_probe_bootstrap(y2, yh2, m, 1, g2, 12, 0, 1, &a[0][0], &a[0][1], &a[0][2], &u1);
    CV_CHECK_OK(st == CV_OK && u1 == 0 && isnan(a[0][0]) && isnan(a[0][1]) && isnan(a[0][2]), "no resamples: NaN");

    /* in the probe: the number of test simulations, and both fits' intervals */
    cv_probe_opts o = cv_probe_opts_default();
    o.epochs = 10;
    cv_latent *lat = make(2000, 8, 1, 13);      /* 5 maps a sim: 400 sims, 80 of them test */
    cv_probe_result r;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    int ok = st == CV_OK && r.n_test_sims == 80 && !r.boot_by_map && r.n_boot == 1000 && r.n_boot_used == 1000;
    for (int p = 0; ok && p < 3; p++)
        ok = r.r2_sd[p] > 0 && r.r2_lo[p] < r.r2_hi[p] && r.r2_lstsq_sd[p] >= 0 && r.r2_lstsq_lo[p] <= r.r2_lstsq_hi[p] &&
             r.r2_lstsq_hi[p] <= 1 + 1e-12;
    CV_CHECK_OK(ok, "probe: 80 test simulations counted, 1000 resamples, intervals for the probe and the closed form "
                "(Omega_m: probe sd %.2e, [%.6f, %.6f]; the exact closed form sd %.1e)", st == CV_OK ? r.r2_sd[0] : NAN,
                st == CV_OK ? r.r2_lo[0] : NAN, st == CV_OK ? r.r2_hi[0] : NAN, st == CV_OK ? r.r2_lstsq_sd[0] : NAN);
    if (st == CV_OK) cv_probe_result_free(&r);
    /* the same maps as 3 test simulations */
    int64_t k = 0;
    for (int64_t i = 0; i < lat->n_map; i++) if (lat->split[i] == 2) lat->sim[i] = 1000 + (int32_t)(k++ % 3);
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_OK && r.n_test_sims == 3 && r.n_test_sims < CV_PROBE_FEW_SIMS, "3 test simulations counted: %lld",
                st == CV_OK ? (long long)r.n_test_sims : -1LL);
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);
}

/* The current virtual memory size in bytes (Linux), or 0. */
static size_t vm_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) { if (fscanf(f, "%lu", &pages) != 1) pages = 0; fclose(f); }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void test_large_dim(void) {
    cv_probe_opts o = cv_probe_opts_default();
    o.epochs = 3;
    cv_probe_result r;
    /* D = 600 >= 360 train maps: singular normal equations, no closed form */
    cv_latent *lat = make(600, 600, 1, 21);
    cv_status st = cv_probe_run(lat, &o, &r, NULL, NULL);
    int ok = st == CV_OK && !r.has_lstsq && strstr(r.lstsq_note, "D = 600 >= 360 train maps") && isfinite(r.r2[0]) &&
             isfinite(r.r2_lo[0]);
    for (int p = 0; ok && p < 3; p++) ok = isnan(r.r2_lstsq[p]) && isnan(r.r2_lstsq_sd[p]) && isnan(r.r2_lstsq_lo[p]);
    CV_CHECK_OK(ok, "D = 600, 360 train maps: %s; closed-form R^2 NaN, the probe's finite",
                st == CV_OK ? r.lstsq_note : cv_last_error());
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);
    /* D = 16 below the train maps, but above a limit of 8 */
    lat = make(600, 16, 1, 22);
    o.lstsq_max_dim = 8;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_OK && !r.has_lstsq && strstr(r.lstsq_note, "D = 16 > 8") && isnan(r.r2_lstsq[1]),
                "D = 16 over a limit of 8: %s", st == CV_OK ? r.lstsq_note : cv_last_error());
    if (st == CV_OK) cv_probe_result_free(&r);
    o.lstsq_max_dim = 16;
    st = cv_probe_run(lat, &o, &r, NULL, NULL);
    CV_CHECK_OK(st == CV_OK && r.has_lstsq && !r.lstsq_note[0] && r.r2_lstsq[1] > 0.999, "D = 16 at a limit of 16: closed form R^2 %.6f",
                st == CV_OK ? r.r2_lstsq[1] : NAN);
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);

    /* D = 20,000 over 300 maps (an --all-groups file): the D x D normal
     * equations would need 3.2 GB per copy; with the address space limited
     * to 1 GiB above the present size (the data: 72 MiB; room for the BLAS
     * threads' buffers) it runs */
    lat = make(300, 20000, 0, 23);
    struct rlimit old, lim;
    size_t now = vm_bytes();
    int limited = lat && now > 0 && getrlimit(RLIMIT_AS, &old) == 0;
    lim = old;
    lim.rlim_cur = (rlim_t)(now + ((size_t)1024 << 20));
    if (limited && old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur) lim.rlim_cur = old.rlim_cur;
    limited = limited && setrlimit(RLIMIT_AS, &lim) == 0;
    o = cv_probe_opts_default();
    o.epochs = 2;
    st = lat ? cv_probe_run(lat, &o, &r, NULL, NULL) : CV_ERR_NOMEM;
    if (limited) setrlimit(RLIMIT_AS, &old);
    if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    CV_CHECK_OK(limited && st == CV_OK && !r.has_lstsq && strstr(r.lstsq_note, "D = 20000 >= 180 train maps") &&
                isfinite(r.r2[0]) && r.n_test_sims == 12,
                "D = 20000, 300 maps, in %zu MiB more address space: probe R^2 finite, %s", (size_t)1024,
                st == CV_OK ? r.lstsq_note : "failed");
    if (st == CV_OK) cv_probe_result_free(&r);
    cv_latent_free(lat);
}

/* The CLI fixture: 6 parameters with the CAMELS names and priors; latent
 * dims 0..5 carry them (with noise, the A_AGN ones weakly), the rest is
 * noise. */
static int make_latent(const char *path, long n, long D, const char *kind) {
    static const char *const names[6] = { "Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2" };
    static const double noise[6] = { 0.2, 0.5, 0.4, 5.0, 0.3, 2.0 };
    int np = strcmp(kind, "noparams") ? 6 : 0;
    cv_latent *lat = NULL;
    if (n < 30 || D < 6 || cv_latent_new(n, (int)D, np, &lat) != CV_OK) { fprintf(stderr, "make-latent: bad arguments\n"); return 2; }
    for (long i = 0; i < n; i++) {
        long sim = i / 15;
        double u[6];
        for (int p = 0; p < 6; p++) u[p] = ((mix((uint64_t)(sim * 6 + p) * 7919 + 1) >> 11) + 0.5) * 0x1.0p-53;
        double par[6] = { 0.1 + 0.4 * u[0], 0.6 + 0.4 * u[1], 0.25 * pow(16, u[2]), 0.25 * pow(16, u[3]),
                          0.5 * pow(4, u[4]), 0.5 * pow(4, u[5]) };
        for (int d = 0; d < D; d++) {
            double z = normal(77, 3, (uint64_t)(i * D + d));
            if (d < 6) z = (2 * u[d] - 1) * 1.7 + noise[d] * z;
            lat->z[i * D + d] = (float)z;
        }
        for (int p = 0; p < np; p++) lat->params[i * np + p] = par[p];
        lat->sim[i] = (int32_t)sim;
        long r = sim % 15;
        lat->split[i] = (int8_t)(r < 13 ? 0 : r == 13 ? 1 : 2);
        if (!strcmp(kind, "novalid") && lat->split[i] == 1) lat->split[i] = 0;
    }
    for (int p = 0; p < np; p++) snprintf(lat->param_name[p], CV_LATENT_NAME_MAX, "%s", names[p]);
    snprintf(lat->source, sizeof lat->source, "test-probe --make-latent");
    cv_status st = CV_OK;
    if (strcmp(kind, "nosplit")) st = cv_latent_write(path, lat, NULL);
    else {
        /* the writer always writes a split: write this one by hand */
        int out, dm, dd, dp, vz, vp, vn, vs;
        if (nc_create(path, NC_NETCDF4 | NC_CLOBBER, &out) != NC_NOERR) st = CV_ERR_IO;
        else {
            nc_def_dim(out, "map", (size_t)n, &dm);
            nc_def_dim(out, "dim", (size_t)D, &dd);
            nc_def_dim(out, "param", 6, &dp);
            int dz[2] = { dm, dd }, dpp[2] = { dm, dp };
            nc_def_var(out, "latent", NC_FLOAT, 2, dz, &vz);
            nc_def_var(out, "params", NC_DOUBLE, 2, dpp, &vp);
            nc_def_var(out, "param", NC_STRING, 1, &dp, &vn);
            nc_def_var(out, "sim", NC_INT, 1, &dm, &vs);
            nc_enddef(out);
            nc_put_var_float(out, vz, lat->z);
            nc_put_var_double(out, vp, lat->params);
            const char *nm[6];
            for (int p = 0; p < 6; p++) nm[p] = lat->param_name[p];
            nc_put_var_string(out, vn, nm);
            nc_put_var_int(out, vs, lat->sim);
            if (nc_close(out) != NC_NOERR) st = CV_ERR_IO;
        }
    }
    cv_latent_free(lat);
    if (st != CV_OK) { fprintf(stderr, "make-latent: %s\n", cv_last_error()); return 1; }
    return 0;
}

/* The pooled code: per group and channel, spatial mean then std (population). */
static void test_pool(void) {
    /* two maps; group 0: 2 channels x 2x2, group 1: 2 channels x 1x1 */
    const float z[2 * 10] = { 1, 2, 3, 4,  5, 5, 5, 5,  7, -1,
                              0, 0, 0, 8,  -2, 2, -2, 2,  3, 3 };
    const int64_t dims[2] = { 8, 2 };
    float out[2 * 8];
    cv_latent_pool(z, 2, 2, dims, 2, out);
    const float want[2 * 8] = { 2.5f, 5, (float)sqrt(1.25), 0,  7, -1, 0, 0,
                                2, 0, (float)sqrt(12.0), 2,  3, 3, 0, 0 };
    double e = 0;
    for (int i = 0; i < 16; i++) e = fmax(e, fabs(out[i] - want[i]));
    CV_CHECK_OK(e < 1e-6, "pooled code: channel means then stds, per group and map (max err %.1e)", e);
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "--make-latent"))
        return make_latent(argv[2], atol(argv[3]), atol(argv[4]), argc > 5 ? argv[5] : "ok");
    tap_begin();
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test-probe.XXXXXX", tmp && *tmp ? tmp : ".");
    if (!mkdtemp(dir)) { printf("Bail out! cannot create a temporary directory\n"); return 99; }
    test_latent_file();
    test_r2_lstsq();
    test_ridge();
    test_probe();
    test_bootstrap();
    test_large_dim();
    test_pool();
    rmdir(dir);
    return tap_end();
}
