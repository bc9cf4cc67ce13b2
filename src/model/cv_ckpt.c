/* cv_ckpt.c -- NetCDF-4 checkpoints (see cv_ckpt.h).
 * Invariant: the file at `path` is only ever replaced by rename(2) of a
 * complete, closed temporary file. */
#include "model/cv_ckpt.h"
#include "runtime/cv_out.h"

#include <netcdf.h>
#include <string.h>
#include <unistd.h>

/* 2: the split top-down convolutions (post.c1e, post.c4.mq, ...; doc/model.md) */
#define CKPT_VERSION 2

#define NC(call) do { int e_ = (call); if (e_ != NC_NOERR) { \
        st = cv_error(CV_ERR_IO, "%s: %s (%s)", path, nc_strerror(e_), #call); goto fail; } } while (0)

static int dim_for(int ncid, int64_t size, int *dimid) {
    char name[32];
    snprintf(name, sizeof name, "n%lld", (long long)size);
    if (nc_inq_dimid(ncid, name, dimid) == NC_NOERR) return NC_NOERR;
    return nc_def_dim(ncid, name, (size_t)size, dimid);
}

static cv_status def_vars(const char *path, int ncid, const cv_model *m, int *varids) {
    cv_status st = CV_OK;
    for (int k = 0; k < cv_model_n_params(m); k++) {
        const int64_t *s = cv_model_param_shape(m, k);
        int dims[4];
        for (int d = 0; d < 4; d++) NC(dim_for(ncid, s[d], &dims[d]));
        NC(nc_def_var(ncid, cv_model_param_name(m, k), NC_FLOAT, 4, dims, &varids[k]));
    }
fail:
    return st;
}

static cv_status put_vars(const char *path, int ncid, const cv_model *m, const int *varids, const float *flat) {
    cv_status st = CV_OK;
    for (int k = 0; k < cv_model_n_params(m); k++)
        NC(nc_put_var_float(ncid, varids[k], flat + cv_model_param_offset(m, k)));
fail:
    return st;
}

cv_status cv_ckpt_write(const char *path, const cv_model *m, const char *config_text, const cv_ckpt_meta *meta,
                        const float *params, const float *opt1, const float *opt2, const float *ema) {
    cv_status st = CV_OK;
    char tmp[4200];
    int ncid = -1, gid = -1, np = cv_model_n_params(m);
    int *v0 = malloc(4 * (size_t)np * sizeof *v0);
    if (!v0) return cv_error(CV_ERR_NOMEM, "out of memory");
    cv_out_tmpname(path, tmp, sizeof tmp);
    const char *real = path;
    path = tmp;
    NC(nc_create(tmp, NC_NETCDF4 | NC_CLOBBER, &ncid));
    NC(nc_put_att_text(ncid, NC_GLOBAL, "cv_format", 19, "cosmovae-checkpoint"));
    int ver = CKPT_VERSION;
    NC(nc_put_att_int(ncid, NC_GLOBAL, "cv_format_version", NC_INT, 1, &ver));
    NC(nc_put_att_text(ncid, NC_GLOBAL, "config", strlen(config_text), config_text));
    long long vals[5] = { meta->step, meta->epoch, meta->epoch_index, meta->skipped, (long long)cv_model_n_floats(m) };
    const char *names[5] = { "step", "epoch", "epoch_index", "skipped", "n_floats" };
    for (int i = 0; i < 5; i++) NC(nc_put_att_longlong(ncid, NC_GLOBAL, names[i], NC_INT64, 1, &vals[i]));
    unsigned long long seed = meta->seed;
    NC(nc_put_att_ulonglong(ncid, NC_GLOBAL, "seed", NC_UINT64, 1, &seed));
    CV_TRY(def_vars(path, ncid, m, v0));
    if (opt1 || opt2 || ema) {
        NC(nc_def_grp(ncid, "state", &gid));
        if (opt1) { int g; NC(nc_def_grp(gid, "opt1", &g)); CV_TRY(def_vars(path, g, m, v0 + np)); }
        if (opt2) { int g; NC(nc_def_grp(gid, "opt2", &g)); CV_TRY(def_vars(path, g, m, v0 + 2 * np)); }
        if (ema)  { int g; NC(nc_def_grp(gid, "ema", &g));  CV_TRY(def_vars(path, g, m, v0 + 3 * np)); }
        int hd, hv;
        NC(nc_def_dim(gid, "history", (size_t)(meta->n_hist > 0 ? meta->n_hist : 1), &hd));
        NC(nc_def_var(gid, "gnorm_history", NC_FLOAT, 1, &hd, &hv));
        NC(nc_put_att_int(gid, hv, "count", NC_INT, 1, &meta->n_hist));
    }
    NC(nc_enddef(ncid));
    CV_TRY(put_vars(path, ncid, m, v0, params));
    if (gid >= 0) {
        int g;
        if (opt1) { NC(nc_inq_grp_ncid(gid, "opt1", &g)); CV_TRY(put_vars(path, g, m, v0 + np, opt1)); }
        if (opt2) { NC(nc_inq_grp_ncid(gid, "opt2", &g)); CV_TRY(put_vars(path, g, m, v0 + 2 * np, opt2)); }
        if (ema)  { NC(nc_inq_grp_ncid(gid, "ema", &g));  CV_TRY(put_vars(path, g, m, v0 + 3 * np, ema)); }
        int hv;
        float one = 0;
        NC(nc_inq_varid(gid, "gnorm_history", &hv));
        NC(nc_put_var_float(gid, hv, meta->n_hist > 0 ? meta->hist : &one));
    }
    int e = nc_close(ncid);
    ncid = -1;
    if (e != NC_NOERR) { st = cv_error(CV_ERR_IO, "%s: %s (closing)", tmp, nc_strerror(e)); goto fail; }
    free(v0);
    return cv_out_commit(tmp, real);
fail:
    if (ncid >= 0) nc_close(ncid);
    cv_out_abort(tmp);
    free(v0);
    return st;
}

static cv_status open_ckpt(const char *path, int *ncid) {
    int e = nc_open(path, NC_NOWRITE, ncid);
    if (e != NC_NOERR) return cv_error(CV_ERR_IO, "%s: cannot open checkpoint: %s", path, nc_strerror(e));
    size_t len = 0;
    char fmt[64] = "";
    if (nc_inq_attlen(*ncid, NC_GLOBAL, "cv_format", &len) != NC_NOERR || len >= sizeof fmt ||
        nc_get_att_text(*ncid, NC_GLOBAL, "cv_format", fmt) != NC_NOERR || strncmp(fmt, "cosmovae-checkpoint", len)) {
        nc_close(*ncid);
        return cv_error(CV_ERR_FORMAT, "%s: not a cosmovae checkpoint (no cv_format = \"cosmovae-checkpoint\")", path);
    }
    int ver = 0;
    if (nc_get_att_int(*ncid, NC_GLOBAL, "cv_format_version", &ver) != NC_NOERR || ver != CKPT_VERSION) {
        nc_close(*ncid);
        if (ver == 1)
            return cv_error(CV_ERR_FORMAT, "%s: checkpoint format version 1, from a cosmovae whose top-down blocks "
                            "had other parameters (before the split posterior and prior convolutions); this "
                            "program reads version %d: train again", path, CKPT_VERSION);
        return cv_error(CV_ERR_FORMAT, "%s: checkpoint format version %d, this program reads version %d", path, ver,
                        CKPT_VERSION);
    }
    return CV_OK;
}

cv_status cv_ckpt_read_config(const char *path, char **config_text, cv_ckpt_meta *meta) {
    cv_status st = CV_OK;
    int ncid;
    *config_text = NULL;
    memset(meta, 0, sizeof *meta);
    st = open_ckpt(path, &ncid);
    if (st != CV_OK) return st;
    size_t len = 0;
    NC(nc_inq_attlen(ncid, NC_GLOBAL, "config", &len));
    *config_text = malloc(len + 1);
    if (!*config_text) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    NC(nc_get_att_text(ncid, NC_GLOBAL, "config", *config_text));
    (*config_text)[len] = '\0';
    long long v;
    NC(nc_get_att_longlong(ncid, NC_GLOBAL, "step", &v));        meta->step = v;
    NC(nc_get_att_longlong(ncid, NC_GLOBAL, "epoch", &v));       meta->epoch = v;
    NC(nc_get_att_longlong(ncid, NC_GLOBAL, "epoch_index", &v)); meta->epoch_index = v;
    NC(nc_get_att_longlong(ncid, NC_GLOBAL, "skipped", &v));     meta->skipped = v;
    unsigned long long seed;
    NC(nc_get_att_ulonglong(ncid, NC_GLOBAL, "seed", &seed));    meta->seed = seed;
    int gid, hv;
    if (nc_inq_grp_ncid(ncid, "state", &gid) == NC_NOERR && nc_inq_varid(gid, "gnorm_history", &hv) == NC_NOERR) {
        int cnt = 0;
        NC(nc_get_att_int(gid, hv, "count", &cnt));
        if (cnt < 0 || cnt > 256) { st = cv_error(CV_ERR_FORMAT, "%s: bad gnorm_history count %d", path, cnt); goto fail; }
        meta->n_hist = cnt;
        if (cnt > 0) NC(nc_get_var_float(gid, hv, meta->hist));
    }
    nc_close(ncid);
    return CV_OK;
fail:
    nc_close(ncid);
    free(*config_text);
    *config_text = NULL;
    return st;
}

static int group_of(int ncid, const char *which, int *gid) {
    if (!strcmp(which, "params")) { *gid = ncid; return 1; }
    int sg;
    if (nc_inq_grp_ncid(ncid, "state", &sg) != NC_NOERR) return 0;
    return nc_inq_grp_ncid(sg, which, gid) == NC_NOERR;
}

int cv_ckpt_has(const char *path, const char *which) {
    int ncid, gid;
    if (open_ckpt(path, &ncid) != CV_OK) return 0;
    int ok = group_of(ncid, which, &gid);
    nc_close(ncid);
    return ok;
}

cv_status cv_ckpt_read(const char *path, const cv_model *m, const char *which, float *flat) {
    cv_status st = CV_OK;
    int ncid, gid;
    st = open_ckpt(path, &ncid);
    if (st != CV_OK) return st;
    if (!group_of(ncid, which, &gid)) { st = cv_error(CV_ERR_FORMAT, "%s: checkpoint has no '%s' state", path, which); goto fail; }
    for (int k = 0; k < cv_model_n_params(m); k++) {
        const char *name = cv_model_param_name(m, k);
        const int64_t *s = cv_model_param_shape(m, k);
        int vid, nd, dims[NC_MAX_VAR_DIMS];
        nc_type t;
        if (nc_inq_varid(gid, name, &vid) != NC_NOERR) {
            st = cv_error(CV_ERR_FORMAT, "%s: checkpoint does not match the model: no parameter '%s' (in %s)", path, name, which);
            goto fail;
        }
        NC(nc_inq_var(gid, vid, NULL, &t, &nd, dims, NULL));
        if (t != NC_FLOAT || nd != 4) { st = cv_error(CV_ERR_FORMAT, "%s: parameter '%s' is not a 4-D float", path, name); goto fail; }
        for (int d = 0; d < 4; d++) {
            size_t len;
            NC(nc_inq_dimlen(gid, dims[d], &len));
            if ((int64_t)len != s[d]) {
                st = cv_error(CV_ERR_FORMAT, "%s: checkpoint does not match the model: '%s' dimension %d is %zu, the model has %lld",
                              path, name, d, len, (long long)s[d]);
                goto fail;
            }
        }
        NC(nc_get_var_float(gid, vid, flat + cv_model_param_offset(m, k)));
    }
    nc_close(ncid);
    return CV_OK;
fail:
    nc_close(ncid);
    return st;
}
