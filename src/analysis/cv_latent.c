/* cv_latent.c -- latent-code files in NetCDF-4 (format in cv_latent.h and
 * doc/results.md): allocation, atomic writer, validating reader.
 * Invariant: nothing appears at a writer's path unless the whole file was
 * written and closed; a reader never returns a half-filled cv_latent. */
#include "analysis/cv_latent.h"
#include "runtime/cv_out.h"
#include "dataset/cv_data.h"

#include <math.h>
#include <netcdf.h>
#include <string.h>

void cv_latent_free(cv_latent *lat) {
    if (!lat) return;
    free(lat->z); free(lat->params); free(lat->param_name); free(lat->sim); free(lat->split);
    free(lat);
}

cv_status cv_latent_new(int64_t n_map, int n_dim, int n_param, cv_latent **out) {
    *out = NULL;
    if (n_map < 1 || n_dim < 1 || n_param < 0)
        return cv_error(CV_ERR_ARG, "latent codes: %lld maps x %d dims, %d params", (long long)n_map, n_dim, n_param);
    cv_latent *lat = calloc(1, sizeof *lat);
    if (!lat) return cv_error(CV_ERR_NOMEM, "latent codes");
    lat->n_map = n_map; lat->n_dim = n_dim; lat->n_param = n_param;
    lat->z = calloc((size_t)n_map * n_dim, sizeof *lat->z);
    lat->sim = malloc((size_t)n_map * sizeof *lat->sim);
    lat->split = calloc((size_t)n_map, sizeof *lat->split);
    if (n_param) {
        lat->params = malloc((size_t)n_map * n_param * sizeof *lat->params);
        lat->param_name = calloc(n_param, sizeof *lat->param_name);
    }
    if (!lat->z || !lat->sim || !lat->split || (n_param && (!lat->params || !lat->param_name))) {
        cv_latent_free(lat);
        return cv_error(CV_ERR_NOMEM, "latent codes: %lld maps x %d dims", (long long)n_map, n_dim);
    }
    for (int64_t m = 0; m < n_map; m++) lat->sim[m] = -1;
    for (size_t i = 0; i < (size_t)n_map * n_param; i++) lat->params[i] = NAN;
    for (int p = 0; p < n_param; p++) snprintf(lat->param_name[p], CV_LATENT_NAME_MAX, "param%d", p);
    *out = lat;
    return CV_OK;
}

int64_t cv_latent_split_count(const cv_latent *lat, int s) {
    if (s < 0) return lat->n_map;
    if (!lat->split) return 0;
    int64_t n = 0;
    for (int64_t m = 0; m < lat->n_map; m++) n += lat->split[m] == s;
    return n;
}

/* ---- writer -------------------------------------------------------------- */

#define NC(expr, what) do { int rc_ = (expr); if (rc_ != NC_NOERR) { \
    st = cv_error(CV_ERR_IO, "%s: %s: %s", path, what, nc_strerror(rc_)); goto fail; } } while (0)

cv_status cv_latent_new_for(const cv_dataset *ds, int n_dim, cv_latent **out) {
    int64_t n = cv_dataset_n_maps(ds);
    int np = cv_dataset_n_param(ds);
    cv_status st = cv_latent_new(n, n_dim, np, out);
    if (st != CV_OK) return st;
    cv_latent *lat = *out;
    for (int p = 0; p < np; p++) snprintf(lat->param_name[p], CV_LATENT_NAME_MAX, "%s", cv_dataset_param_name(ds, p));
    for (int64_t k = 0; k < n; k++) {
        for (int p = 0; p < np; p++) lat->params[k * np + p] = cv_dataset_param(ds, k, p);
        lat->sim[k] = cv_dataset_sim(ds, k);
        lat->split[k] = (int8_t)cv_dataset_split(ds, k);
    }
    snprintf(lat->source, sizeof lat->source, "%s", cv_dataset_path(ds));
    lat->map_height = cv_dataset_height(ds);
    lat->map_width = cv_dataset_width(ds);
    lat->box_size = cv_dataset_box_size(ds);
    return CV_OK;
}

static int put_text(int ncid, int var, const char *name, const char *val) {
    return nc_put_att_text(ncid, var, name, strlen(val), val);
}

cv_status cv_latent_write(const char *path, const cv_latent *lat, const char *history) {
    cv_status st = CV_OK;
    char tmp[4096];
    int ncid = -1;
    const char **names = NULL;
    if (!lat->z || !lat->sim || !lat->split || (lat->n_param && (!lat->params || !lat->param_name)))
        return cv_error(CV_ERR_ARG, "%s: latent codes: an array is not set", path);
    for (int64_t m = 0; m < lat->n_map; m++)
        if (lat->split[m] < 0 || lat->split[m] > 2)
            return cv_error(CV_ERR_ARG, "%s: map %lld: split %d is not 0 (train), 1 (valid) or 2 (test)", path, (long long)m,
                            lat->split[m]);
    cv_out_tmpname(path, tmp, sizeof tmp);
    int rc = nc_create(tmp, NC_NETCDF4 | NC_CLOBBER, &ncid);
    if (rc != NC_NOERR) return cv_error(CV_ERR_IO, "%s: cannot create: %s", path, nc_strerror(rc));
    int d_map, d_dim, d_param = -1, v_z, v_par = -1, v_name = -1, v_sim, v_split;
    NC(nc_def_dim(ncid, "map", (size_t)lat->n_map, &d_map), "map");
    NC(nc_def_dim(ncid, "dim", (size_t)lat->n_dim, &d_dim), "dim");
    int dz[2] = { d_map, d_dim };
    NC(nc_def_var(ncid, "latent", NC_FLOAT, 2, dz, &v_z), "latent");
    NC(put_text(ncid, v_z, "long_name", "latent code of each map"), "latent");
    if (lat->n_param) {
        NC(nc_def_dim(ncid, "param", (size_t)lat->n_param, &d_param), "param");
        int dp[2] = { d_map, d_param };
        NC(nc_def_var(ncid, "params", NC_DOUBLE, 2, dp, &v_par), "params");
        NC(put_text(ncid, v_par, "long_name", "simulation parameters of each map"), "params");
        NC(nc_def_var(ncid, "param", NC_STRING, 1, &d_param, &v_name), "param");
        NC(put_text(ncid, v_name, "long_name", "parameter names"), "param");
    }
    NC(nc_def_var(ncid, "sim", NC_INT, 1, &d_map, &v_sim), "sim");
    NC(put_text(ncid, v_sim, "long_name", "simulation index"), "sim");
    NC(nc_def_var(ncid, "split", NC_BYTE, 1, &d_map, &v_split), "split");
    NC(put_text(ncid, v_split, "long_name", "0 = train, 1 = valid, 2 = test"), "split");
    static const signed char flags[3] = { 0, 1, 2 };
    NC(nc_put_att_schar(ncid, v_split, "flag_values", NC_BYTE, 3, flags), "split");
    NC(put_text(ncid, v_split, "flag_meanings", "train valid test"), "split");
    NC(put_text(ncid, NC_GLOBAL, "cv_format", CV_LATENT_FORMAT), "cv_format");
    int ver = CV_LATENT_FORMAT_VERSION;
    NC(nc_put_att_int(ncid, NC_GLOBAL, "cv_format_version", NC_INT, 1, &ver), "cv_format_version");
    NC(put_text(ncid, NC_GLOBAL, "source", lat->source), "source");
    NC(put_text(ncid, NC_GLOBAL, "model", lat->model), "model");
    NC(put_text(ncid, NC_GLOBAL, "history", history ? history : ""), "history");
    if (lat->map_height > 0 && lat->map_width > 0) {
        NC(nc_put_att_int(ncid, NC_GLOBAL, "map_height", NC_INT, 1, &lat->map_height), "map_height");
        NC(nc_put_att_int(ncid, NC_GLOBAL, "map_width", NC_INT, 1, &lat->map_width), "map_width");
    }
    if (lat->box_size > 0) NC(nc_put_att_double(ncid, NC_GLOBAL, "box_size", NC_DOUBLE, 1, &lat->box_size), "box_size");
    NC(nc_enddef(ncid), "define mode");
    NC(nc_put_var_float(ncid, v_z, lat->z), "latent");
    if (lat->n_param) {
        names = malloc(lat->n_param * sizeof *names);
        if (!names) { st = cv_error(CV_ERR_NOMEM, "%s: parameter names", path); goto fail; }
        for (int p = 0; p < lat->n_param; p++) names[p] = lat->param_name[p];
        NC(nc_put_var_double(ncid, v_par, lat->params), "params");
        NC(nc_put_var_string(ncid, v_name, names), "param");
    }
    NC(nc_put_var_int(ncid, v_sim, lat->sim), "sim");
    NC(nc_put_var_schar(ncid, v_split, (const signed char *)lat->split), "split");
    rc = nc_close(ncid);
    ncid = -1;
    if (rc != NC_NOERR) { st = cv_error(CV_ERR_IO, "%s: closing: %s", path, nc_strerror(rc)); goto fail; }
    free(names);
    return cv_out_commit(tmp, path);
fail:
    free(names);
    if (ncid >= 0) nc_close(ncid);
    cv_out_abort(tmp);
    return st;
}

/* ---- reader -------------------------------------------------------------- */

/* Variable `name` with dimensions exactly dims[0..nd) (by id); -1 if absent. */
static cv_status find_var(const char *path, int ncid, const char *name, int nd, const int *dims, int *var) {
    *var = -1;
    int v, n, d[NC_MAX_VAR_DIMS];
    if (nc_inq_varid(ncid, name, &v) != NC_NOERR) return CV_OK;
    nc_inq_varndims(ncid, v, &n);
    nc_inq_vardimid(ncid, v, d);
    int ok = n == nd;
    for (int i = 0; ok && i < nd; i++) ok = d[i] == dims[i];
    if (!ok) {
        char want[512] = "", got[512] = "", dn[NC_MAX_NAME + 1];
        for (int i = 0; i < nd; i++) {
            nc_inq_dimname(ncid, dims[i], dn);
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%.40s", i ? ", " : "", dn);
        }
        for (int i = 0; i < n && i < 8; i++) {
            nc_inq_dimname(ncid, d[i], dn);
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.40s", i ? ", " : "", dn);
        }
        return cv_error(CV_ERR_FORMAT, "%s: variable '%s' has dimensions (%s), expected (%s)", path, name, got, want);
    }
    *var = v;
    return CV_OK;
}

static void get_text_att(int ncid, const char *name, char *buf, size_t n) {
    size_t len;
    buf[0] = '\0';
    nc_type t;
    if (nc_inq_att(ncid, NC_GLOBAL, name, &t, &len) != NC_NOERR || t != NC_CHAR) return;
    char *s = malloc(len + 1);
    if (!s) return;
    if (nc_get_att_text(ncid, NC_GLOBAL, name, s) == NC_NOERR) {
        s[len] = '\0';
        snprintf(buf, n, "%s", s);
    }
    free(s);
}

cv_status cv_latent_file_format(const char *path, char *buf, size_t n) {
    int ncid;
    buf[0] = '\0';
    int rc = nc_open(path, NC_NOWRITE, &ncid);
    if (rc != NC_NOERR) return cv_error(CV_ERR_IO, "%s: cannot open: %s", path, nc_strerror(rc));
    get_text_att(ncid, "cv_format", buf, n);
    nc_close(ncid);
    return CV_OK;
}

cv_status cv_latent_read(const char *path, int need, cv_latent **out) {
    cv_status st = CV_OK;
    cv_latent *lat = NULL;
    char **names = NULL;
    *out = NULL;
    int ncid = -1;
    int rc = nc_open(path, NC_NOWRITE, &ncid);
    if (rc != NC_NOERR) return cv_error(CV_ERR_IO, "%s: cannot open: %s", path, nc_strerror(rc));
    int d_map, d_dim, d_param = -1, v_z, v_par, v_name = -1, v_sim, v_split;
    size_t n_map, n_dim, n_param = 0;
    if (nc_inq_dimid(ncid, "map", &d_map) != NC_NOERR || nc_inq_dimid(ncid, "dim", &d_dim) != NC_NOERR ||
        nc_inq_varid(ncid, "latent", &v_z) != NC_NOERR) {
        st = cv_error(CV_ERR_FORMAT, "%s: not a latent file: no variable latent(map, dim)", path);
        goto fail;
    }
    nc_inq_dimlen(ncid, d_map, &n_map);
    nc_inq_dimlen(ncid, d_dim, &n_dim);
    if (n_map == 0 || n_dim == 0) { st = cv_error(CV_ERR_FORMAT, "%s: latent(map, dim) is empty (%zu x %zu)", path, n_map, n_dim); goto fail; }
    if (n_dim > (1 << 20)) { st = cv_error(CV_ERR_FORMAT, "%s: latent dimension %zu is too large", path, n_dim); goto fail; }
    int dz[2] = { d_map, d_dim };
    CV_TRY(find_var(path, ncid, "latent", 2, dz, &v_z));
    if (nc_inq_dimid(ncid, "param", &d_param) == NC_NOERR) nc_inq_dimlen(ncid, d_param, &n_param);
    else d_param = -1;
    v_par = -1;
    if (d_param >= 0) {
        int dp[2] = { d_map, d_param };
        CV_TRY(find_var(path, ncid, "params", 2, dp, &v_par));
        CV_TRY(find_var(path, ncid, "param", 1, &d_param, &v_name));
    }
    if (v_par < 0) n_param = 0;
    CV_TRY(find_var(path, ncid, "sim", 1, &d_map, &v_sim));
    CV_TRY(find_var(path, ncid, "split", 1, &d_map, &v_split));
    if ((need & CV_LATENT_NEED_PARAMS) && (v_par < 0 || n_param == 0)) {
        st = cv_error(CV_ERR_FORMAT, "%s: no variable params(map, param): the simulation parameters are needed", path);
        goto fail;
    }
    if ((need & CV_LATENT_NEED_SPLIT) && v_split < 0) {
        st = cv_error(CV_ERR_FORMAT, "%s: no variable split(map): the train/valid/test split is needed", path);
        goto fail;
    }
    if ((need & CV_LATENT_NEED_SIM) && v_sim < 0) {
        st = cv_error(CV_ERR_FORMAT, "%s: no variable sim(map): the simulation index is needed", path);
        goto fail;
    }
    CV_TRY(cv_latent_new((int64_t)n_map, (int)n_dim, (int)n_param, &lat));
    if ((rc = nc_get_var_float(ncid, v_z, lat->z)) != NC_NOERR) {
        st = cv_error(CV_ERR_FORMAT, "%s: cannot read latent: %s", path, nc_strerror(rc));
        goto fail;
    }
    for (size_t i = 0; i < n_map * n_dim; i++)
        if (!isfinite(lat->z[i])) {
            st = cv_error(CV_ERR_FORMAT, "%s: latent: map %zu, dim %zu is %g (not finite)", path, i / n_dim, i % n_dim, lat->z[i]);
            goto fail;
        }
    if (n_param) {
        if ((rc = nc_get_var_double(ncid, v_par, lat->params)) != NC_NOERR) {
            st = cv_error(CV_ERR_FORMAT, "%s: cannot read params: %s", path, nc_strerror(rc));
            goto fail;
        }
        nc_type t = NC_NAT;
        if (v_name >= 0) nc_inq_vartype(ncid, v_name, &t);
        if (t == NC_STRING) {
            names = calloc(n_param, sizeof *names);
            if (!names) { st = cv_error(CV_ERR_NOMEM, "%s: parameter names", path); goto fail; }
            if ((rc = nc_get_var_string(ncid, v_name, names)) != NC_NOERR) {
                free(names);
                names = NULL;
                st = cv_error(CV_ERR_FORMAT, "%s: cannot read param: %s", path, nc_strerror(rc));
                goto fail;
            }
            for (size_t p = 0; p < n_param; p++)
                if (names[p] && names[p][0]) snprintf(lat->param_name[p], CV_LATENT_NAME_MAX, "%s", names[p]);
        }
    } else {
        free(lat->params);
        lat->params = NULL;
    }
    if (v_sim >= 0) {
        if ((rc = nc_get_var_int(ncid, v_sim, lat->sim)) != NC_NOERR) {
            st = cv_error(CV_ERR_FORMAT, "%s: cannot read sim: %s", path, nc_strerror(rc));
            goto fail;
        }
    } else {
        free(lat->sim);
        lat->sim = NULL;
    }
    if (v_split >= 0) {
        if ((rc = nc_get_var_schar(ncid, v_split, (signed char *)lat->split)) != NC_NOERR) {
            st = cv_error(CV_ERR_FORMAT, "%s: cannot read split: %s", path, nc_strerror(rc));
            goto fail;
        }
        for (size_t m = 0; m < n_map; m++)
            if (lat->split[m] < 0 || lat->split[m] > 2) {
                st = cv_error(CV_ERR_FORMAT, "%s: split: map %zu has %d, not 0 (train), 1 (valid) or 2 (test)", path, m, lat->split[m]);
                goto fail;
            }
    } else {
        free(lat->split);
        lat->split = NULL;
    }
    get_text_att(ncid, "source", lat->source, sizeof lat->source);
    get_text_att(ncid, "model", lat->model, sizeof lat->model);
    {   /* optional geometry; a malformed attribute reads as unknown */
        int h = 0, w = 0;
        double b = 0;
        size_t len;
        if (nc_inq_attlen(ncid, NC_GLOBAL, "map_height", &len) == NC_NOERR && len == 1 &&
            nc_inq_attlen(ncid, NC_GLOBAL, "map_width", &len) == NC_NOERR && len == 1 &&
            nc_get_att_int(ncid, NC_GLOBAL, "map_height", &h) == NC_NOERR &&
            nc_get_att_int(ncid, NC_GLOBAL, "map_width", &w) == NC_NOERR && h > 0 && w > 0) {
            lat->map_height = h;
            lat->map_width = w;
        }
        if (nc_inq_attlen(ncid, NC_GLOBAL, "box_size", &len) == NC_NOERR && len == 1 &&
            nc_get_att_double(ncid, NC_GLOBAL, "box_size", &b) == NC_NOERR && isfinite(b) && b > 0)
            lat->box_size = b;
    }
    if (names) { nc_free_string(n_param, names); free(names); }
    nc_close(ncid);
    *out = lat;
    return CV_OK;
fail:
    if (names) { nc_free_string(n_param, names); free(names); }
    cv_latent_free(lat);
    if (ncid >= 0) nc_close(ncid);
    return st;
}
