/* cv_data.c -- field-map datasets in NetCDF-4 (format in cv_data.h and
 * doc/dataset.md): reader, atomic writer, dihedral transforms and the
 * search for the bundled data.
 *
 * Invariant: every call into NetCDF-C happens with cv_nc_lock held (the
 * library keeps global state and is not thread-safe), and a writer never
 * leaves anything at its final path unless cv_writer_finish succeeded. */
#include "dataset/cv_data.h"
#include "runtime/cv_out.h"
#include "runtime/cv_rng.h"

#include <errno.h>
#include <math.h>
#include <netcdf.h>
#if defined(CV_HAVE_HDF5)
#include <hdf5.h>
#endif
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t cv_nc_lock = PTHREAD_MUTEX_INITIALIZER;
#define CV_NC_LOCK()   pthread_mutex_lock(&cv_nc_lock)
#define CV_NC_UNLOCK() pthread_mutex_unlock(&cv_nc_lock)

const char *const cv_data_param_names[CV_DATA_N_PARAM] = {
    "Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2",
};

/* CMD field names and units (CMD documentation, CAMELS). */
const char *const cv_data_cmd_fields[13] = {
    "Mgas", "Vgas", "T", "Z", "HI", "ne", "B", "MgFe", "Mcdm", "Vcdm", "Mstar", "Mtot", "P",
};
static const char *const cv_data_cmd_units[13] = {
    "(Msun/h)/(Mpc/h)^2", "km/s", "K", "1", "(Msun/h)/(Mpc/h)^2", "cm^-3", "G", "1",
    "(Msun/h)/(Mpc/h)^2", "km/s", "(Msun/h)/(Mpc/h)^2", "(Msun/h)/(Mpc/h)^2", "h^2 Msun (km/s)^2 / kpc^3",
};

const char *cv_data_field_units(const char *field) {
    for (int i = 0; i < 13; i++)
        if (!strcmp(field, cv_data_cmd_fields[i])) return cv_data_cmd_units[i];
    return NULL;
}

const char *cv_split_name(int split) {
    switch (split) {
    case CV_SPLIT_TRAIN: return "train";
    case CV_SPLIT_VALID: return "valid";
    case CV_SPLIT_TEST:  return "test";
    case CV_SPLIT_ALL:   return "all";
    }
    return "?";
}

/* ---- counter-based hash (shared by the loader, import and mkfields) ----- */

uint64_t cv_data_hash(uint64_t seed, uint64_t stream, uint64_t index) {
    return cv_splitmix64(cv_splitmix64(cv_splitmix64(seed) ^ stream) ^ index);
}

double cv_data_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return ((double)(cv_data_hash(seed, stream, index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

int64_t cv_data_below(uint64_t seed, uint64_t stream, uint64_t index, int64_t n) {
    /* 53-bit uniform scaled to n: bias < n / 2^53, irrelevant for n < 2^31 */
    int64_t k = (int64_t)(cv_data_uniform(seed, stream, index) * (double)n);
    return k < n ? k : n - 1;
}

/* ---- parameter tables and splits ------------------------------------------ */

cv_status cv_data_read_params(const char *path, int n_col, int64_t *n_rows, double **params) {
    cv_status st = CV_OK;
    *n_rows = 0;
    *params = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int64_t n = 0, alloc = 0, lineno = 0;
    double *p = NULL;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) { st = cv_error(CV_ERR_FORMAT, "%s:%lld: binary data in a text table", path, (long long)lineno); goto fail; }
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0') continue;
        if (n == alloc) {
            alloc = alloc ? 2 * alloc : 1024;
            double *np = realloc(p, (size_t)alloc * (size_t)n_col * sizeof *np);
            if (!np) { st = cv_error(CV_ERR_NOMEM, "%s: out of memory", path); goto fail; }
            p = np;
        }
        int k = 0;
        for (;;) {
            while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\r' || *s == '\n') s++;
            if (!*s) break;
            char *end;
            errno = 0;
            double v = strtod(s, &end);
            char *tok_end = end;
            while (*tok_end && *tok_end != ' ' && *tok_end != '\t' && *tok_end != ',' && *tok_end != '\r' && *tok_end != '\n') tok_end++;
            if (end == s || end != tok_end || !isfinite(v)) {
                int w = (int)(tok_end - s);
                st = cv_error(CV_ERR_FORMAT, "%s:%lld: value %d '%.*s' is not a finite number", path, (long long)lineno, k + 1,
                              w > 40 ? 40 : w, s);
                goto fail;
            }
            if (k < n_col) p[n * n_col + k] = v;
            k++;
            s = end;
        }
        if (k != n_col) {
            st = cv_error(CV_ERR_FORMAT, "%s:%lld: %d values, expected %d", path, (long long)lineno, k, n_col);
            goto fail;
        }
        n++;
    }
    if (ferror(f)) { st = cv_error(CV_ERR_IO, "%s: read error", path); goto fail; }
    if (n == 0) { st = cv_error(CV_ERR_FORMAT, "%s: no parameter rows", path); goto fail; }
    free(line);
    fclose(f);
    *n_rows = n;
    *params = p;
    return CV_OK;
fail:
    free(line);
    free(p);
    fclose(f);
    return st;
}

cv_status cv_data_write_params(const char *path, int64_t n_rows, int n_col, const char *const *names, const double *params) {
    char tmp[4096];
    cv_out_tmpname(path, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    fputc('#', f);
    for (int c = 0; c < n_col; c++) fprintf(f, " %s", names ? names[c] : cv_data_param_names[c]);
    fputc('\n', f);
    for (int64_t r = 0; r < n_rows; r++)
        for (int c = 0; c < n_col; c++) fprintf(f, "%.5f%c", params[r * n_col + c], c + 1 < n_col ? ' ' : '\n');
    if (ferror(f) | fclose(f)) { remove(tmp); return cv_error(CV_ERR_IO, "%s: write error", tmp); }
    return cv_out_commit(tmp, path);
}

void cv_data_split_counts(int64_t n, int64_t *n_train, int64_t *n_valid, int64_t *n_test) {
    int64_t v = (n + 7) / 15;           /* round(n / 15) */
    if (n >= 3 && v < 1) v = 1;
    *n_valid = v;
    *n_test = v;
    *n_train = n - 2 * v;
}

void cv_data_split_assign(int64_t n, uint64_t seed, int8_t *split) {
    int64_t nt, nv, ne;
    cv_data_split_counts(n, &nt, &nv, &ne);
    /* nv valid labels, ne test labels, the rest train, then a seeded
     * Fisher-Yates shuffle of the labels */
    for (int64_t i = 0; i < n; i++) split[i] = i < nv ? CV_SPLIT_VALID : i < nv + ne ? CV_SPLIT_TEST : CV_SPLIT_TRAIN;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t k = cv_data_below(seed, 0x53504c54ULL /* "SPLT" */, (uint64_t)i, i + 1);
        int8_t t = split[i]; split[i] = split[k]; split[k] = t;
    }
}

void cv_data_history(int argc, char **argv, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && k + 1 < n; i++) {
        const char *a = argv[i];
        if (i == 0) {
            const char *sl = strrchr(a, '/');
            if (sl) a = sl + 1;
            if (!strncmp(a, "lt-", 3)) a += 3;     /* libtool wrappers */
        }
        int quote = !*a || strpbrk(a, " \t'\"$\\*?;&|<>()") != NULL;
        int w = snprintf(buf + k, n - k, "%s%s%s%s", i ? " " : "", quote ? "'" : "", a, quote ? "'" : "");
        if (w < 0 || (size_t)w >= n - k) break;   /* truncated */
        k += (size_t)w;
    }
}

/* ---- shared helpers ------------------------------------------------------ */

static cv_status nc_err(int rc, const char *path, const char *what) {
    return cv_error(rc == NC_ENOMEM ? CV_ERR_NOMEM : CV_ERR_FORMAT, "%s: %s: %s", path, what, nc_strerror(rc));
}

cv_status cv_data_check_positive(const float *x, size_t n, size_t *bad) {
    for (size_t i = 0; i < n; i++) {
        /* !(x > 0) catches NaN; x <= FLT_MAX catches +inf */
        if (!(x[i] > 0.0f) || !(x[i] <= 3.4028234663852886e38f)) {
            if (bad) *bad = i;
            return CV_ERR_NUMERIC;
        }
    }
    return CV_OK;
}

void cv_data_dihedral(const float *in, float *out, int n_chan, int size, int code) {
    const int tr = code & 4, fx = code & 1, fy = code & 2;
    const size_t plane = (size_t)size * size;
    for (int c = 0; c < n_chan; c++) {
        const float *src = in + c * plane;   /* (S, S) */
        float *dst = out + c * plane;        /* (S, S) */
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                /* out = flip_x?(flip_y?(transpose?(in))) */
                int ty = fy ? size - 1 - y : y, tx = fx ? size - 1 - x : x;
                int sy = tr ? tx : ty, sx = tr ? ty : tx;
                dst[(size_t)y * size + x] = src[(size_t)sy * size + sx];
            }
        }
    }
}

cv_status cv_data_find(const char *name, char *buf, size_t n) {
    const char *env = getenv("CV_DATA_DIR");
    const char *dirs[3];
    char src[4096];
    int nd = 0;
    if (env && *env) dirs[nd++] = env;
    snprintf(src, sizeof src, "%s/data", CV_SRCDIR);
    dirs[nd++] = src;
    dirs[nd++] = CV_PKGDATADIR;
    for (int i = 0; i < nd; i++) {
        snprintf(buf, n, "%s/%s", dirs[i], name);
        if (access(buf, R_OK) == 0) return CV_OK;
    }
    cv_error(CV_ERR_IO, "%s: not found in", name);
    for (int i = 0; i < nd; i++) cv_error_append("%s %s%s", i ? "," : "", dirs[i], i == 0 && env && *env ? " ($CV_DATA_DIR)" : "");
    cv_error_append(" (set CV_DATA_DIR to the folder that holds it)");
    buf[0] = '\0';
    return CV_ERR_IO;
}

cv_status cv_data_default_path(char *buf, size_t n) { return cv_data_find(CV_DATA_DEFAULT_NAME, buf, n); }

/* ---- reader -------------------------------------------------------------- */

typedef char cv_name[CV_DATA_NAME_MAX];

struct cv_dataset {
    char    *path;
    int      ncid, v_fields;
    int64_t  n_maps;
    int      n_chan, h, w, n_param;
    double   box;
    cv_name *chan_name, *chan_units, *chan_tf, *param_name;   /* (n_chan) / (n_param) */
    double  *norm_mean, *norm_std;                             /* (n_chan) */
    double  *params;                                           /* (n_maps, n_param) */
    int32_t *sim;                                              /* (n_maps) */
    int8_t  *split;                                            /* (n_maps) */
    int64_t  split_count[3];
    int      n_attr;
    char   **attr_name, **attr_val;
};

const char *cv_dataset_path(const cv_dataset *ds) { return ds->path; }
int64_t cv_dataset_n_maps(const cv_dataset *ds) { return ds->n_maps; }
int cv_dataset_n_chan(const cv_dataset *ds) { return ds->n_chan; }
int cv_dataset_height(const cv_dataset *ds) { return ds->h; }
int cv_dataset_width(const cv_dataset *ds) { return ds->w; }
double cv_dataset_box_size(const cv_dataset *ds) { return ds->box; }
const char *cv_dataset_chan_name(const cv_dataset *ds, int c) { return ds->chan_name[c]; }
const char *cv_dataset_chan_units(const cv_dataset *ds, int c) { return ds->chan_units[c]; }
const char *cv_dataset_chan_transform(const cv_dataset *ds, int c) { return ds->chan_tf[c]; }
double cv_dataset_norm_mean(const cv_dataset *ds, int c) { return ds->norm_mean[c]; }
double cv_dataset_norm_std(const cv_dataset *ds, int c) { return ds->norm_std[c]; }
int cv_dataset_n_param(const cv_dataset *ds) { return ds->n_param; }
const char *cv_dataset_param_name(const cv_dataset *ds, int p) { return ds->param_name[p]; }
double cv_dataset_param(const cv_dataset *ds, int64_t map, int p) { return ds->params[map * ds->n_param + p]; }
const double *cv_dataset_params(const cv_dataset *ds) { return ds->params; }
int32_t cv_dataset_sim(const cv_dataset *ds, int64_t map) { return ds->sim[map]; }
int cv_dataset_split(const cv_dataset *ds, int64_t map) { return ds->split[map]; }

int64_t cv_dataset_split_count(const cv_dataset *ds, int split) {
    if (split == CV_SPLIT_ALL) return ds->n_maps;
    if (split < 0 || split > 2) return 0;
    return ds->split_count[split];
}

cv_status cv_dataset_select(const cv_dataset *ds, int split, int64_t max_maps, const char *what, int64_t **idx, int64_t *n) {
    int64_t n_all = ds->n_maps, n_sel = 0;
    int64_t *ix = malloc((size_t)(n_all ? n_all : 1) * sizeof *ix);
    *idx = NULL;
    if (!ix) return cv_error(CV_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; k < n_all; k++)
        if (split == CV_SPLIT_ALL || cv_dataset_split(ds, k) == split) ix[n_sel++] = k;
    if (max_maps > 0 && n_sel > max_maps) {
        for (int64_t k = 0; k < max_maps; k++) ix[k] = ix[k * n_sel / max_maps];
        n_sel = max_maps;
    }
    if (n_sel < 2) { free(ix); return cv_error(CV_ERR_ARG, "%s: fewer than 2 maps to %s", cv_dataset_path(ds), what); }
    *idx = ix;
    *n = n_sel;
    return CV_OK;
}

const char *cv_dataset_attr(const cv_dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_attr; i++)
        if (!strcmp(ds->attr_name[i], name)) return ds->attr_val[i];
    return NULL;
}

/* Look up a variable and check its type and dimension ids. */
static cv_status ds_var(cv_dataset *ds, const char *name, nc_type type, int ndims, const int *dimids, int *varid) {
    int rc = nc_inq_varid(ds->ncid, name, varid);
    if (rc != NC_NOERR) return cv_error(CV_ERR_FORMAT, "%s: no variable '%s'", ds->path, name);
    nc_type t;
    int nd, dd[NC_MAX_VAR_DIMS];
    if ((rc = nc_inq_vartype(ds->ncid, *varid, &t)) || (rc = nc_inq_varndims(ds->ncid, *varid, &nd)))
        return nc_err(rc, ds->path, name);
    if (t != type) return cv_error(CV_ERR_FORMAT, "%s: variable '%s' has the wrong type", ds->path, name);
    if (nd != ndims) return cv_error(CV_ERR_FORMAT, "%s: variable '%s' has %d dimensions, expected %d", ds->path, name, nd, ndims);
    if ((rc = nc_inq_vardimid(ds->ncid, *varid, dd))) return nc_err(rc, ds->path, name);
    for (int i = 0; i < nd; i++)
        if (dd[i] != dimids[i]) return cv_error(CV_ERR_FORMAT, "%s: variable '%s' has the wrong dimensions", ds->path, name);
    return CV_OK;
}

static cv_status ds_strings(cv_dataset *ds, const char *name, int dimid, int n, cv_name *out) {
    cv_status st = CV_OK;
    int v, rc;
    char **s = NULL;
    CV_TRY(ds_var(ds, name, NC_STRING, 1, &dimid, &v));
    s = calloc((size_t)n, sizeof *s);
    if (!s) return cv_error(CV_ERR_NOMEM, "%s: out of memory", ds->path);
    if ((rc = nc_get_var_string(ds->ncid, v, s))) { st = nc_err(rc, ds->path, name); goto fail; }
    for (int i = 0; i < n; i++) {
        if (!s[i] || strlen(s[i]) >= CV_DATA_NAME_MAX) {
            st = cv_error(CV_ERR_FORMAT, "%s: %s[%d] is missing or longer than %d bytes", ds->path, name, i, CV_DATA_NAME_MAX - 1);
            nc_free_string((size_t)n, s);
            goto fail;
        }
        snprintf(out[i], CV_DATA_NAME_MAX, "%s", s[i]);
    }
    nc_free_string((size_t)n, s);
fail:
    free(s);
    return st;
}

static cv_status ds_dim(cv_dataset *ds, const char *name, int *dimid, size_t *len, int required) {
    int rc = nc_inq_dimid(ds->ncid, name, dimid);
    if (rc != NC_NOERR) {
        if (!required) { *dimid = -1; *len = 0; return CV_OK; }
        return cv_error(CV_ERR_FORMAT, "%s: no dimension '%s'", ds->path, name);
    }
    if ((rc = nc_inq_dimlen(ds->ncid, *dimid, len))) return nc_err(rc, ds->path, name);
    return CV_OK;
}

static cv_status ds_open_locked(cv_dataset *ds) {
    cv_status st = CV_OK;
    int rc;
    if ((rc = nc_open(ds->path, NC_NOWRITE, &ds->ncid))) {
        ds->ncid = -1;
        if (rc == NC_ENOTNC || rc == NC_EHDFERR || rc == NC_ENOTBUILT || rc == NC_EINVAL)
            return cv_error(CV_ERR_FORMAT, "%s: not a readable NetCDF file (truncated or corrupt?): %s", ds->path, nc_strerror(rc));
        return cv_error(CV_ERR_IO, "%s: cannot open: %s", ds->path, nc_strerror(rc));
    }
    /* format tag */
    size_t alen = 0;
    nc_type at;
    char tag[64] = "";
    if (nc_inq_att(ds->ncid, NC_GLOBAL, "cv_format", &at, &alen) || at != NC_CHAR || alen >= sizeof tag)
        return cv_error(CV_ERR_FORMAT, "%s: not a cosmovae dataset (no cv_format attribute)", ds->path);
    nc_get_att_text(ds->ncid, NC_GLOBAL, "cv_format", tag);
    tag[alen] = '\0';
    if (strcmp(tag, CV_DATA_FORMAT))
        return cv_error(CV_ERR_FORMAT, "%s: cv_format is '%s', expected '%s'", ds->path, tag, CV_DATA_FORMAT);
    int ver = 0;
    if (nc_get_att_int(ds->ncid, NC_GLOBAL, "cv_format_version", &ver) || ver < 1)
        return cv_error(CV_ERR_FORMAT, "%s: missing or bad cv_format_version", ds->path);
    if (ver > CV_DATA_FORMAT_VERSION)
        return cv_error(CV_ERR_FORMAT, "%s: dataset format version %d is newer than this program reads (%d)", ds->path, ver,
                        CV_DATA_FORMAT_VERSION);
    if (nc_get_att_double(ds->ncid, NC_GLOBAL, "box_size", &ds->box) || !(ds->box > 0) || !isfinite(ds->box))
        return cv_error(CV_ERR_FORMAT, "%s: missing or bad box_size attribute", ds->path);

    int d_map, d_chan, d_y, d_x, d_param;
    size_t n_map, n_chan, n_y, n_x, n_param;
    CV_TRY(ds_dim(ds, "map", &d_map, &n_map, 1));
    CV_TRY(ds_dim(ds, "channel", &d_chan, &n_chan, 1));
    CV_TRY(ds_dim(ds, "y", &d_y, &n_y, 1));
    CV_TRY(ds_dim(ds, "x", &d_x, &n_x, 1));
    CV_TRY(ds_dim(ds, "param", &d_param, &n_param, 0));
    if (n_map < 1 || n_chan < 1 || n_y < 1 || n_x < 1 || n_chan > 64 || n_y > 65536 || n_x > 65536 || n_param > 64)
        return cv_error(CV_ERR_FORMAT, "%s: bad dimensions (map %zu, channel %zu, y %zu, x %zu, param %zu)", ds->path, n_map,
                        n_chan, n_y, n_x, n_param);
    ds->n_maps = (int64_t)n_map;
    ds->n_chan = (int)n_chan;
    ds->h = (int)n_y;
    ds->w = (int)n_x;
    ds->n_param = (int)n_param;

    int dims4[4] = { d_map, d_chan, d_y, d_x };
    CV_TRY(ds_var(ds, "fields", NC_FLOAT, 4, dims4, &ds->v_fields));
    size_t chunk_bytes = n_chan * n_y * n_x * 4;
    nc_set_var_chunk_cache(ds->ncid, ds->v_fields, 4 * chunk_bytes + (1 << 20), 1009, 0.75f);

    ds->chan_name = calloc(n_chan, sizeof(cv_name));
    ds->chan_units = calloc(n_chan, sizeof(cv_name));
    ds->chan_tf = calloc(n_chan, sizeof(cv_name));
    ds->param_name = calloc(n_param + 1, sizeof(cv_name));
    ds->norm_mean = calloc(n_chan, sizeof(double));
    ds->norm_std = calloc(n_chan, sizeof(double));
    ds->params = calloc(n_map * (n_param ? n_param : 1), sizeof(double));
    ds->sim = calloc(n_map, sizeof(int32_t));
    ds->split = calloc(n_map, 1);
    if (!ds->chan_name || !ds->chan_units || !ds->chan_tf || !ds->param_name || !ds->norm_mean || !ds->norm_std ||
        !ds->params || !ds->sim || !ds->split)
        return cv_error(CV_ERR_NOMEM, "%s: out of memory for the metadata", ds->path);

    CV_TRY(ds_strings(ds, "channel", d_chan, (int)n_chan, ds->chan_name));
    CV_TRY(ds_strings(ds, "channel_units", d_chan, (int)n_chan, ds->chan_units));
    CV_TRY(ds_strings(ds, "channel_transform", d_chan, (int)n_chan, ds->chan_tf));
    for (int c = 0; c < ds->n_chan; c++)
        if (strcmp(ds->chan_tf[c], "log10") && strcmp(ds->chan_tf[c], "none"))
            return cv_error(CV_ERR_FORMAT, "%s: channel_transform[%d] = '%s' (known: log10, none)", ds->path, c, ds->chan_tf[c]);
    int v;
    CV_TRY(ds_var(ds, "norm_mean", NC_DOUBLE, 1, &d_chan, &v));
    if ((rc = nc_get_var_double(ds->ncid, v, ds->norm_mean))) return nc_err(rc, ds->path, "norm_mean");
    CV_TRY(ds_var(ds, "norm_std", NC_DOUBLE, 1, &d_chan, &v));
    if ((rc = nc_get_var_double(ds->ncid, v, ds->norm_std))) return nc_err(rc, ds->path, "norm_std");
    for (int c = 0; c < ds->n_chan; c++)
        if (!isfinite(ds->norm_mean[c]) || !(ds->norm_std[c] > 0) || !isfinite(ds->norm_std[c]))
            return cv_error(CV_ERR_FORMAT, "%s: channel %d (%s): bad normalisation mean %g std %g", ds->path, c,
                            ds->chan_name[c], ds->norm_mean[c], ds->norm_std[c]);
    if (n_param) {
        CV_TRY(ds_strings(ds, "param", d_param, (int)n_param, ds->param_name));
        int d2[2] = { d_map, d_param };
        CV_TRY(ds_var(ds, "params", NC_DOUBLE, 2, d2, &v));
        if ((rc = nc_get_var_double(ds->ncid, v, ds->params))) return nc_err(rc, ds->path, "params");
    }
    CV_TRY(ds_var(ds, "sim", NC_INT, 1, &d_map, &v));
    if ((rc = nc_get_var_int(ds->ncid, v, ds->sim))) return nc_err(rc, ds->path, "sim");
    CV_TRY(ds_var(ds, "split", NC_BYTE, 1, &d_map, &v));
    if ((rc = nc_get_var_schar(ds->ncid, v, (signed char *)ds->split))) return nc_err(rc, ds->path, "split");
    for (int64_t m = 0; m < ds->n_maps; m++) {
        if (ds->split[m] < 0 || ds->split[m] > 2)
            return cv_error(CV_ERR_FORMAT, "%s: map %lld: split value %d is not 0 (train), 1 (valid) or 2 (test)", ds->path,
                            (long long)m, ds->split[m]);
        ds->split_count[ds->split[m]]++;
    }

    /* global text attributes */
    int natt = 0;
    nc_inq_natts(ds->ncid, &natt);
    ds->attr_name = calloc((size_t)natt + 1, sizeof(char *));
    ds->attr_val = calloc((size_t)natt + 1, sizeof(char *));
    if (!ds->attr_name || !ds->attr_val) return cv_error(CV_ERR_NOMEM, "%s: out of memory", ds->path);
    for (int i = 0; i < natt; i++) {
        char an[NC_MAX_NAME + 1];
        if (nc_inq_attname(ds->ncid, NC_GLOBAL, i, an) || nc_inq_att(ds->ncid, NC_GLOBAL, an, &at, &alen) || at != NC_CHAR)
            continue;
        char *val = malloc(alen + 1);
        char *nm = strdup(an);
        if (!val || !nm) { free(val); free(nm); return cv_error(CV_ERR_NOMEM, "%s: out of memory", ds->path); }
        nc_get_att_text(ds->ncid, NC_GLOBAL, an, val);
        val[alen] = '\0';
        ds->attr_name[ds->n_attr] = nm;
        ds->attr_val[ds->n_attr++] = val;
    }
    return CV_OK;
fail:
    return st;
}

cv_status cv_dataset_open(const char *path, cv_dataset **out) {
    *out = NULL;
    cv_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
    ds->ncid = -1;
    ds->path = strdup(path);
    if (!ds->path) { free(ds); return cv_error(CV_ERR_NOMEM, "%s: out of memory", path); }
    CV_NC_LOCK();
    cv_status st = ds_open_locked(ds);
    CV_NC_UNLOCK();
    if (st != CV_OK) { cv_dataset_free(ds); return st; }
    *out = ds;
    return CV_OK;
}

void cv_dataset_free(cv_dataset *ds) {
    if (!ds) return;
    if (ds->ncid >= 0) { CV_NC_LOCK(); nc_close(ds->ncid); CV_NC_UNLOCK(); }
    for (int i = 0; i < ds->n_attr; i++) { free(ds->attr_name[i]); free(ds->attr_val[i]); }
    free(ds->attr_name); free(ds->attr_val);
    free(ds->chan_name); free(ds->chan_units); free(ds->chan_tf); free(ds->param_name);
    free(ds->norm_mean); free(ds->norm_std); free(ds->params); free(ds->sim); free(ds->split);
    free(ds->path);
    free(ds);
}

cv_status cv_dataset_read(cv_dataset *ds, int64_t first, int64_t count, float *out) {
    if (first < 0 || count < 0 || first + count > ds->n_maps)
        return cv_error(CV_ERR_ARG, "%s: maps %lld..%lld out of range (%lld maps)", ds->path, (long long)first,
                        (long long)(first + count - 1), (long long)ds->n_maps);
    if (count == 0) return CV_OK;
    size_t start[4] = { (size_t)first, 0, 0, 0 };
    size_t cnt[4] = { (size_t)count, (size_t)ds->n_chan, (size_t)ds->h, (size_t)ds->w };
    CV_NC_LOCK();
    int rc = nc_get_vara_float(ds->ncid, ds->v_fields, start, cnt, out);
    if (rc != NC_NOERR && count > 1) {
        /* find the first bad map, so that the message can name it */
        size_t per = (size_t)ds->n_chan * ds->h * ds->w;
        cnt[0] = 1;
        for (int64_t m = 0; m < count; m++) {
            start[0] = (size_t)(first + m);
            int r2 = nc_get_vara_float(ds->ncid, ds->v_fields, start, cnt, out + per * m);
            if (r2 != NC_NOERR) { rc = r2; first += m; break; }
        }
    }
    CV_NC_UNLOCK();
    if (rc != NC_NOERR)
        return cv_error(CV_ERR_FORMAT, "%s: map %lld: cannot read fields: %s", ds->path, (long long)first, nc_strerror(rc));
    return CV_OK;
}

/* ---- writer -------------------------------------------------------------- */

/* ---- vectorised kernels: log10 sums, block means ------------------------ *
 *
 * Written once with the GNU C vector extensions (GCC >= 10, clang), which
 * compile to SSE2 on any x86-64 and to NEON on aarch64; on x86-64 Linux
 * GCC also builds an AVX2 clone chosen at run time (target_clones).  Other
 * compilers (or CV_NO_VEC defined) get plain C loops that emulate the
 * vector lanes.  Every build does the same operations in the same order
 * without contracting a*b+c into an FMA (GCC does not under -std=c11), so
 * the results, and the files made from them, are the same bits on every
 * CPU.  Hand-written because no packaged library offers a vectorised,
 * accurate sum of logarithms or a block mean that validates its input in
 * the same pass. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(__has_builtin) && !defined(CV_NO_VEC)
#if __has_builtin(__builtin_convertvector)
#define CV_VEC 1
#endif
#endif
#if defined(CV_VEC) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(CV_NO_CLONES)
#define CV_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CV_CLONES
#endif

#if defined(CV_VEC)
typedef float    cv_v4f __attribute__((vector_size(16)));
typedef double   cv_v4d __attribute__((vector_size(32)));
typedef int32_t  cv_v4i __attribute__((vector_size(16)));
typedef uint32_t cv_v4u __attribute__((vector_size(16)));
typedef uint32_t cv_v8u __attribute__((vector_size(32)));
static inline cv_v4u vld4u(const float *p) { cv_v4u v; memcpy(&v, p, sizeof v); return v; }
static inline cv_v4f vld4f(const float *p) { cv_v4f v; memcpy(&v, p, sizeof v); return v; }
#endif

/* log10(2), and sqrt(1/2) as float bits */
#define CV_LOG10_2 0.301029995663981195214
#define CV_SQRTH   0x3f3504f3u

/* log10 of a positive normal float from its bits u: x = 2^e m with m in
 * [sqrt(1/2), sqrt(2)) (integer operations, exact), and
 * log10 m = 2 atanh(s) / ln 10 = s P(s^2) with s = (m - 1) / (m + 1),
 * |s| < 0.1716, P the Taylor series to s^8 (truncation below 3e-10 of
 * log10 m), in float: eight lanes a step for one division; then
 * log10 x = e log10(2) + log10 m in double, where it is summed.  log10 m
 * (|log10 m| < 0.151) is within 2e-7 of it relative, 3e-8 absolute, and the
 * rounding errors average out in the sums: the mean and standard deviation
 * of the log10 of a map are within 1e-10 relative of libm's (tests).  Every
 * path does exactly these operations, lane by lane, so that the sums are
 * the same bits on every CPU. */
#define CV_LOG_P(z)                                                                                      \
    (0.868588964f + (z) * (0.289529655f + (z) * (0.173717793f + (z) * (0.124084138f + (z) * 0.0965098849f))))

#if defined(CV_VEC)
typedef float   cv_v8f __attribute__((vector_size(32)));
typedef int32_t cv_v8i __attribute__((vector_size(32)));
typedef double  cv_v8d __attribute__((vector_size(64)));   /* mean4_row8 */
/* log10 on eight lanes (u: float bits), added to s[0] (lanes 0-3) and
 * s[1] (4-7) and its square to q[0], q[1] (two halves: GCC keeps 256-bit
 * vectors in registers, not 512-bit ones) */
static inline void log10_acc(cv_v8u u, cv_v4d *s, cv_v4d *q) {
    const cv_v8i t = (cv_v8i)(u - CV_SQRTH), e = t >> 23;
    const cv_v8f m = (cv_v8f)(((cv_v8u)t & 0x7fffffu) + CV_SQRTH);
    const cv_v8f sf = (m - 1.0f) / (m + 1.0f), z = sf * sf, f = sf * CV_LOG_P(z);
    const cv_v8d l8 = __builtin_convertvector(e, cv_v8d) * CV_LOG10_2 + __builtin_convertvector(f, cv_v8d);
    for (int h = 0; h < 2; h++) {
        cv_v4d l;
        memcpy(&l, (const char *)&l8 + 32 * h, sizeof l);
        s[h] += l;
        q[h] += l * l;
    }
}
#else
static inline double log10_bits(uint32_t u) {
    const int32_t t = (int32_t)(u - CV_SQRTH);
    const int32_t e = t >> 23;                               /* arithmetic shift, as the vector code */
    const uint32_t mb = ((uint32_t)t & 0x7fffffu) + CV_SQRTH;
    float m;
    memcpy(&m, &mb, 4);
    const float sf = (m - 1.0f) / (m + 1.0f), z = sf * sf, f = sf * CV_LOG_P(z);
    return (double)e * CV_LOG10_2 + (double)f;
}
#endif

CV_CLONES
cv_status cv_data_log10_sums(const float *x /* (n) */, size_t n, double *sum, double *sumsq) {
    uint32_t bad = 0, sub = 0;
    double s, q;
    /* eight floats a step, one accumulator per lane; the tail is padded
     * with 1.0f, whose log10 is exactly 0 */
#if defined(CV_VEC)
    cv_v4d sv[2] = { { 0, 0, 0, 0 }, { 0, 0, 0, 0 } }, qv[2] = { { 0, 0, 0, 0 }, { 0, 0, 0, 0 } };
    cv_v8u vbad = { 0, 0, 0, 0, 0, 0, 0, 0 }, vsub = vbad;
#else
    double sl[8] = { 0 }, ql[8] = { 0 };
#endif
    float pad[8];
    for (size_t i = 0; i < n; i += 8) {
        const float *p = x + i;
        if (n - i < 8) {
            for (size_t k = 0; k < 8; k++) pad[k] = i + k < n ? x[i + k] : 1.0f;
            p = pad;
        }
#if defined(CV_VEC)
        cv_v8u u;
        memcpy(&u, p, sizeof u);
        vbad |= (u - 1u) >= 0x7f7fffffu;   /* negative, zero, inf, NaN */
        vsub |= (u - 1u) < 0x7fffffu;      /* subnormal */
        log10_acc(u, sv, qv);
#else
        for (int k = 0; k < 8; k++) {
            uint32_t u;
            memcpy(&u, &p[k], 4);
            bad |= (u - 1u) >= 0x7f7fffffu;
            sub |= (u - 1u) < 0x7fffffu;
            const double l = log10_bits(u);
            sl[k] += l;
            ql[k] += l * l;
        }
#endif
    }
#if defined(CV_VEC)
    double sl[8], ql[8];
    for (int k = 0; k < 8; k++) { sl[k] = sv[k / 4][k % 4]; ql[k] = qv[k / 4][k % 4]; bad |= vbad[k]; sub |= vsub[k]; }
#endif
    s = ((sl[0] + sl[4]) + (sl[1] + sl[5])) + ((sl[2] + sl[6]) + (sl[3] + sl[7]));
    q = ((ql[0] + ql[4]) + (ql[1] + ql[5])) + ((ql[2] + ql[6]) + (ql[3] + ql[7]));
    if (bad) return CV_ERR_NUMERIC;
    if (sub) {   /* subnormal values (never seen in CMD): libm */
        s = q = 0;
        for (size_t i = 0; i < n; i++) {
            double l = log10((double)x[i]);
            s += l;
            q += l * l;
        }
    }
    *sum = s;
    *sumsq = q;
    return CV_OK;
}

/* The validity test of one value from its bits, branch-free for both
 * transforms: u << sh minus a is at least b exactly for the unusable
 * values (log10: negative, zero, inf or NaN; none: inf or NaN). */
typedef struct cv_badtest { uint32_t sh, a, b; } cv_badtest;
static inline cv_badtest badtest(int is_log) {
    cv_badtest t = { is_log ? 0u : 1u, is_log ? 1u : 0u, is_log ? 0x7f7fffffu : 0xff000000u };
    return t;
}

#if defined(CV_VEC)
/* F = 4, one output row: r (4, w) -> o (wo); the same sums in the same
 * order as the general path.  The values are tested only for > 0 (is_log;
 * a constant where inlined): an infinity or NaN makes its block's mean
 * infinite or NaN, which the caller tests on the outputs.  Returns 1 when
 * some value is not > 0. */
static inline int mean4_row(const float *r, size_t w, float *o, int wo, int is_log) {
    const cv_v4f zero = { 0, 0, 0, 0 };
    cv_v4i ok = { -1, -1, -1, -1 };
    for (int x = 0; x < wo; x++) {
        const cv_v4f a = vld4f(r + 4 * (size_t)x), b = vld4f(r + w + 4 * (size_t)x), c = vld4f(r + 2 * w + 4 * (size_t)x),
                     d = vld4f(r + 3 * w + 4 * (size_t)x);
        if (is_log) ok &= ((a > zero) & (b > zero)) & ((c > zero) & (d > zero));
        const cv_v4d acc = ((__builtin_convertvector(a, cv_v4d) + __builtin_convertvector(b, cv_v4d)) +
                            __builtin_convertvector(c, cv_v4d)) + __builtin_convertvector(d, cv_v4d);
        o[x] = (float)(((acc[0] + acc[1]) + (acc[2] + acc[3])) * (1.0 / 16));
    }
    return !(ok[0] & ok[1] & ok[2] & ok[3]);
}
#endif

#if defined(CV_VEC) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(CV_NO_CLONES)
#define CV_AVX2_ROW 1
/* mean4_row, two outputs a step on 256-bit vectors (wo even): the same
 * operations lane by lane.  GCC splits these types well only with AVX2. */
__attribute__((target("avx2"))) static int mean4_row8(const float *r, size_t w, float *o, int wo, int is_log) {
    const cv_v8f zero = { 0, 0, 0, 0, 0, 0, 0, 0 };
    cv_v8i ok = { -1, -1, -1, -1, -1, -1, -1, -1 };
    for (int x = 0; x < wo; x += 2) {
        cv_v8f a, b, c, d;
        memcpy(&a, r + 4 * (size_t)x, sizeof a);
        memcpy(&b, r + w + 4 * (size_t)x, sizeof b);
        memcpy(&c, r + 2 * w + 4 * (size_t)x, sizeof c);
        memcpy(&d, r + 3 * w + 4 * (size_t)x, sizeof d);
        if (is_log) ok &= ((a > zero) & (b > zero)) & ((c > zero) & (d > zero));
        const cv_v8d acc = ((__builtin_convertvector(a, cv_v8d) + __builtin_convertvector(b, cv_v8d)) +
                            __builtin_convertvector(c, cv_v8d)) + __builtin_convertvector(d, cv_v8d);
        o[x] = (float)(((acc[0] + acc[1]) + (acc[2] + acc[3])) * (1.0 / 16));
        o[x + 1] = (float)(((acc[4] + acc[5]) + (acc[6] + acc[7])) * (1.0 / 16));
    }
    int all = -1;
    for (int k = 0; k < 8; k++) all &= ok[k];
    return !all;
}
#endif

CV_CLONES
int cv_data_block_mean(const float *in /* (h, w) */, float *out /* (h/f, w/f) */, int h, int w, int f, int is_log) {
    const int ho = h / f, wo = w / f;
    const double inv = 1.0 / ((double)f * f);
    const cv_badtest bt = badtest(is_log);
    uint32_t bad = 0;
#if defined(CV_VEC)
    if (f == 4) {
        /* the common case, unrolled: a positivity test per value, then
         * a finiteness test per output */
#if defined(CV_AVX2_ROW)
        const int wide = wo % 2 == 0 && __builtin_cpu_supports("avx2");
#endif
        for (int y = 0; y < ho; y++) {
            const float *r = in + (size_t)y * 4 * w;   /* (4, w) */
            float *o = out + (size_t)y * wo;           /* (wo) */
#if defined(CV_AVX2_ROW)
            if (wide) {
                bad |= (uint32_t)(is_log ? mean4_row8(r, (size_t)w, o, wo, 1) : mean4_row8(r, (size_t)w, o, wo, 0));
                continue;
            }
#endif
            bad |= (uint32_t)(is_log ? mean4_row(r, (size_t)w, o, wo, 1) : mean4_row(r, (size_t)w, o, wo, 0));
        }
        for (size_t i = 0; i < (size_t)ho * wo; i++) {
            uint32_t u;
            memcpy(&u, &out[i], 4);
            bad |= (u << 1) >= 0xff000000u;
        }
        return bad != 0;
    }
#endif
    if (f % 4 == 0 || (f == 2 && wo % 2 == 0)) {
        /* column sums of the f rows of a block in four double lanes
         * (lane j: columns j, j + 4, ...), then across the lanes: f = 2
         * gives two outputs per four columns, f = 4k one */
        const int step = f == 2 ? 2 : 1, span = f == 2 ? 4 : f;
#if defined(CV_VEC)
        cv_v4i vbad = { 0, 0, 0, 0 };
#endif
        for (int y = 0; y < ho; y++) {
            const float *r0 = in + (size_t)y * f * w;   /* (f, w) */
            float *o = out + (size_t)y * wo;            /* (wo) */
            for (int x = 0; x < wo; x += step) {
#if defined(CV_VEC)
                cv_v4d acc = { 0, 0, 0, 0 };
#else
                double acc[4] = { 0, 0, 0, 0 };
#endif
                for (int dy = 0; dy < f; dy++) {
                    const float *row = r0 + (size_t)dy * w + (size_t)x * f;   /* (span) */
                    for (int dx = 0; dx < span; dx += 4) {
#if defined(CV_VEC)
                        const cv_v4u u = vld4u(row + dx);
                        vbad |= (u << bt.sh) - bt.a >= bt.b;
                        acc += __builtin_convertvector(vld4f(row + dx), cv_v4d);
#else
                        for (int j = 0; j < 4; j++) {
                            uint32_t u;
                            memcpy(&u, &row[dx + j], 4);
                            bad |= (u << bt.sh) - bt.a >= bt.b;
                            acc[j] += row[dx + j];
                        }
#endif
                    }
                }
                if (f == 2) {
                    o[x] = (float)((acc[0] + acc[1]) * inv);
                    o[x + 1] = (float)((acc[2] + acc[3]) * inv);
                } else {
                    o[x] = (float)(((acc[0] + acc[1]) + (acc[2] + acc[3])) * inv);
                }
            }
        }
#if defined(CV_VEC)
        for (int k = 0; k < 4; k++) bad |= (uint32_t)vbad[k];
#endif
        return bad != 0;
    }
    for (int y = 0; y < ho; y++)
        for (int x = 0; x < wo; x++) {
            double acc = 0;
            for (int dy = 0; dy < f; dy++) {
                const float *row = in + (size_t)(y * f + dy) * w + (size_t)x * f;   /* (f) */
                for (int dx = 0; dx < f; dx++) {
                    uint32_t u;
                    memcpy(&u, &row[dx], 4);
                    bad |= (u << bt.sh) - bt.a >= bt.b;
                    acc += row[dx];
                }
            }
            out[(size_t)y * wo + x] = (float)(acc * inv);
        }
    return bad != 0;
}

/* HDF5's Fletcher-32 checksum of a chunk (H5_checksum_fletcher32, which
 * its filter appends to each chunk, little-endian): over the data as
 * big-endian 16-bit words w_0 .. w_{N-1}, sum1 = sum of w_i and sum2 = sum
 * of (N - i) w_i, each folded into 16 bits by end-around carry, so that
 * either is 0 only for all-zero data and otherwise the residue mod 65535
 * in [1, 65535].  HDF5 folds lazily every 360 words, which gives exactly
 * that; here eight 32-bit lanes of float k = 8 j + l (words 2k and 2k+1,
 * v = w_2k + w_2k+1) sum a = sum of v and t = sum of the running a over
 * blocks of 128 steps (t < 2^32), and 64-bit totals fold mod 65535 after
 * each block: sum1 = sum of v and sum2 = N sum1 - 2 sum of k v - sum of
 * w_2k+1.  Checked against a plain copy of HDF5's loop in the tests, and
 * against HDF5 itself by writing the same file both ways. */
CV_CLONES
uint32_t cv_data_fletcher32(const float *x, size_t n) {
    const uint64_t M = 65535;
    uint64_t s1 = 0, k1 = 0, c1 = 0, any = 0, j0 = 0;
    size_t i = 0;
#if defined(CV_VEC)
    const cv_v8u lane = { 0, 1, 2, 3, 4, 5, 6, 7 };
    for (; i + 8 <= n; j0 += 128) {
        const size_t steps = (n - i) / 8 < 128 ? (n - i) / 8 : 128;
        cv_v8u a = { 0 }, t = a, c = a, o = a;
        for (size_t j = 0; j < steps; j++, i += 8) {
            cv_v8u u;
            memcpy(&u, x + i, sizeof u);
            const cv_v8u lo = ((u >> 8) & 0xff00u) | (u >> 24);
            a += (((u & 0xffu) << 8) | ((u >> 8) & 0xffu)) + lo;
            t += a;
            c += lo;
            o |= u;
        }
        /* sum over the block of j v = (j0 + steps) a - t, per lane */
        for (int l = 0; l < 8; l++) {
            s1 += a[l];
            k1 += 8 * ((j0 + steps) * a[l] - t[l]) + (uint64_t)lane[l] * a[l];
            c1 += c[l];
            any |= o[l];
        }
        s1 %= M;
        k1 %= M;
        c1 %= M;
    }
#endif
    for (; i < n; i++) {   /* the tail (all of it without vectors) */
        uint32_t u;
        memcpy(&u, x + i, 4);
        const uint64_t hi = ((u & 0xffu) << 8) | ((u >> 8) & 0xffu), lo = ((u >> 8) & 0xff00u) | (u >> 24);
        s1 = (s1 + hi + lo) % M;
        k1 = (k1 + (uint64_t)(i % M) * (hi + lo)) % M;
        c1 = (c1 + lo) % M;
        any |= u;
    }
    if (!any) return 0;
    const uint64_t nw = (2 * (uint64_t)n) % M;
    uint64_t s2 = (nw * s1 + 2 * (M - k1) + (M - c1)) % M;
    if (s1 == 0) s1 = M;
    if (s2 == 0) s2 = M;
    return (uint32_t)(s2 << 16 | s1);
}

struct cv_writer {
    char    *path;
    char     tmp[4096];
    int      ncid;              /* -1 when closed */
    int      finished;
    int64_t  n_maps;
    int      n_chan, h, w, n_param;
    int      v_fields, v_params, v_sim, v_split, v_mean, v_std;
    int     *is_log;            /* (n_chan) */
    cv_name *chan_name;         /* (n_chan) */
    double  *params;            /* (n_maps, n_param) */
    int32_t *sim;               /* (n_maps) */
    int8_t  *split;             /* (n_maps) */
    uint8_t *written;           /* (n_maps) */
    double  *sum, *sumsq;       /* (n_maps, n_chan): sums of transform(x) per map */
    double  *norm_mean, *norm_std;  /* (n_chan) */
    int      norm_set;
    int      n_attr;            /* global attributes set before finish, written then */
    char   **attr_name, **attr_val;   /* (n_attr) */
    int      direct;            /* chunks go to HDF5 directly (h5f, h5d open) */
    float   *chunk;             /* (C H W + 1): cv_writer_write's copy of a map, direct */
#if defined(CV_HAVE_HDF5)
    hid_t    h5f, h5d;
#endif
};

cv_writer_opts cv_writer_opts_default(void) {
    cv_writer_opts o;
    memset(&o, 0, sizeof o);
    o.n_param = CV_DATA_N_PARAM;
    o.box_size = CV_DATA_BOX_SIZE;
    o.deflate = 1;
    o.direct = 1;
    return o;
}

static cv_status wr_nc(cv_writer *w, int rc, const char *what) {
    return rc == NC_NOERR ? CV_OK : cv_error(CV_ERR_IO, "%s: %s: %s", w->path, what, nc_strerror(rc));
}

/* Define a string variable over dim; its values are put after nc_enddef. */
static cv_status wr_strings(cv_writer *w, int dim, const char *name, const char *long_name, int *v) {
    cv_status st = CV_OK;
    CV_TRY(wr_nc(w, nc_def_var(w->ncid, name, NC_STRING, 1, &dim, v), name));
    CV_TRY(wr_nc(w, nc_put_att_text(w->ncid, *v, "long_name", strlen(long_name), long_name), name));
fail:
    return st;
}

static cv_status wr_text_att(cv_writer *w, int var, const char *name, const char *val) {
    return wr_nc(w, nc_put_att_text(w->ncid, var, name, strlen(val), val), name);
}

/* Direct chunk writes.  NetCDF-4 stores fields as an HDF5 dataset with one
 * chunk per map and the Fletcher-32 filter; NetCDF's nc_put_vara copies a
 * map into HDF5's chunk cache (after filling the new chunk), HDF5's filter
 * copies it again with its byte-wise checksum appended, and only then is it
 * written: about 40 % of a full-size import's CPU time, all in the one
 * thread that may call the library.  Instead the writer opens the same file
 * through HDF5 (which shares NetCDF's open file: one library, one file
 * state), and hands it each map with its checksum appended as the filter
 * would (cv_data_fletcher32, little-endian), with H5Dwrite_chunk: one write
 * call, no copy.  The file holds what NetCDF would have written (the
 * tests compare); only the chunks' places in it differ (here in the order
 * written), and they are the same from run to run.  Used when nothing but
 * the checksum filters the chunks
 * (deflate 0) and the dataset is what NetCDF was asked to make; otherwise,
 * or without HDF5 at build time, the maps go through NetCDF. */
static void wr_direct_close_locked(cv_writer *w) {
#if defined(CV_HAVE_HDF5)
    if (w->h5d >= 0) H5Dclose(w->h5d);
    if (w->h5f >= 0) H5Fclose(w->h5f);
    w->h5d = w->h5f = -1;
#endif
    w->direct = 0;
}

static void wr_direct_open_locked(cv_writer *w) {
#if defined(CV_HAVE_HDF5)
    const uint32_t one = 1;
    uint8_t le;
    memcpy(&le, &one, 1);
    if (!le) return;   /* the chunks hold the host's floats: little-endian hosts only */
    w->h5f = H5Fopen(w->tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    if (w->h5f < 0) return;
    int ok = H5Fget_obj_count(w->h5f, H5F_OBJ_FILE) >= 2;   /* NetCDF's open file, shared */
    if (ok) w->h5d = H5Dopen2(w->h5f, "fields", H5P_DEFAULT);
    ok = ok && w->h5d >= 0;
    if (ok) {
        hid_t t = H5Dget_type(w->h5d), pl = H5Dget_create_plist(w->h5d);
        hsize_t cd[4] = { 0 };
        unsigned flags = 0, cdv[4];
        size_t ncd = 4;
        ok = t >= 0 && pl >= 0 && H5Tequal(t, H5T_IEEE_F32LE) > 0 && H5Pget_layout(pl) == H5D_CHUNKED &&
             H5Pget_chunk(pl, 4, cd) == 4 && cd[0] == 1 && cd[1] == (hsize_t)w->n_chan && cd[2] == (hsize_t)w->h &&
             cd[3] == (hsize_t)w->w && H5Pget_nfilters(pl) == 1 &&
             H5Pget_filter2(pl, 0, &flags, &ncd, cdv, 0, NULL, NULL) == H5Z_FILTER_FLETCHER32;
        if (t >= 0) H5Tclose(t);
        if (pl >= 0) H5Pclose(pl);
    }
    w->direct = ok;
    if (!ok) wr_direct_close_locked(w);
#else
    (void)w;
#endif
}

static cv_status wr_create_locked(cv_writer *w, const cv_writer_opts *o) {
    cv_status st = CV_OK;
    int rc = nc_create(w->tmp, NC_NETCDF4 | NC_CLOBBER, &w->ncid);
    if (rc != NC_NOERR) {
        w->ncid = -1;
        w->tmp[0] = '\0';
        return cv_error(CV_ERR_IO, "%s: cannot create: %s", w->path, nc_strerror(rc));
    }
    int d_map, d_chan, d_y, d_x, d_param = -1;
    CV_TRY(wr_nc(w, nc_def_dim(w->ncid, "map", (size_t)o->n_maps, &d_map), "map"));
    CV_TRY(wr_nc(w, nc_def_dim(w->ncid, "channel", (size_t)o->n_chan, &d_chan), "channel"));
    CV_TRY(wr_nc(w, nc_def_dim(w->ncid, "y", (size_t)o->height, &d_y), "y"));
    CV_TRY(wr_nc(w, nc_def_dim(w->ncid, "x", (size_t)o->width, &d_x), "x"));
    if (o->n_param) CV_TRY(wr_nc(w, nc_def_dim(w->ncid, "param", (size_t)o->n_param, &d_param), "param"));

    int dims4[4] = { d_map, d_chan, d_y, d_x };
    size_t chunk[4] = { 1, (size_t)o->n_chan, (size_t)o->height, (size_t)o->width };
    CV_TRY(wr_nc(w, nc_def_var(w->ncid, "fields", NC_FLOAT, 4, dims4, &w->v_fields), "fields"));
    CV_TRY(wr_nc(w, nc_def_var_chunking(w->ncid, w->v_fields, NC_CHUNKED, chunk), "fields chunking"));
    if (o->deflate > 0) CV_TRY(wr_nc(w, nc_def_var_deflate(w->ncid, w->v_fields, 1, 1, o->deflate), "fields deflate"));
    /* a checksum per chunk: a corrupted map is an error naming it, never silent */
    CV_TRY(wr_nc(w, nc_def_var_fletcher32(w->ncid, w->v_fields, NC_FLETCHER32), "fields checksum"));
    size_t cb = chunk[1] * chunk[2] * chunk[3] * 4;
    CV_TRY(wr_nc(w, nc_set_var_chunk_cache(w->ncid, w->v_fields, 4 * cb + (1 << 20), 1009, 1.0f), "fields cache"));
    CV_TRY(wr_text_att(w, w->v_fields, "long_name", "projected field maps, physical units (see channel_units)"));

    if (o->n_param) {
        int d2[2] = { d_map, d_param };
        CV_TRY(wr_nc(w, nc_def_var(w->ncid, "params", NC_DOUBLE, 2, d2, &w->v_params), "params"));
        CV_TRY(wr_text_att(w, w->v_params, "long_name", "simulation parameters (names in 'param')"));
    }
    CV_TRY(wr_nc(w, nc_def_var(w->ncid, "sim", NC_INT, 1, &d_map, &w->v_sim), "sim"));
    CV_TRY(wr_text_att(w, w->v_sim, "long_name", "simulation index"));
    CV_TRY(wr_nc(w, nc_def_var(w->ncid, "split", NC_BYTE, 1, &d_map, &w->v_split), "split"));
    CV_TRY(wr_text_att(w, w->v_split, "long_name", "data split"));
    signed char fv[3] = { 0, 1, 2 };
    CV_TRY(wr_nc(w, nc_put_att_schar(w->ncid, w->v_split, "flag_values", NC_BYTE, 3, fv), "split"));
    CV_TRY(wr_text_att(w, w->v_split, "flag_meanings", "train valid test"));
    CV_TRY(wr_nc(w, nc_def_var(w->ncid, "norm_mean", NC_DOUBLE, 1, &d_chan, &w->v_mean), "norm_mean"));
    CV_TRY(wr_text_att(w, w->v_mean, "long_name", "mean of channel_transform(fields) over the train split"));
    CV_TRY(wr_nc(w, nc_def_var(w->ncid, "norm_std", NC_DOUBLE, 1, &d_chan, &w->v_std), "norm_std"));
    CV_TRY(wr_text_att(w, w->v_std, "long_name", "standard deviation of channel_transform(fields) over the train split"));

    /* global attributes */
    CV_TRY(wr_text_att(w, NC_GLOBAL, "cv_format", CV_DATA_FORMAT));
    int ver = CV_DATA_FORMAT_VERSION;
    CV_TRY(wr_nc(w, nc_put_att_int(w->ncid, NC_GLOBAL, "cv_format_version", NC_INT, 1, &ver), "cv_format_version"));
    CV_TRY(wr_nc(w, nc_put_att_double(w->ncid, NC_GLOBAL, "box_size", NC_DOUBLE, 1, &o->box_size), "box_size"));
    CV_TRY(wr_text_att(w, NC_GLOBAL, "box_size_units", "Mpc/h"));
    CV_TRY(wr_text_att(w, NC_GLOBAL, "source", o->source ? o->source : ""));
    CV_TRY(wr_text_att(w, NC_GLOBAL, "history", o->history ? o->history : ""));
    CV_TRY(wr_text_att(w, NC_GLOBAL, "cosmovae_version", CV_VERSION));

    /* names: written now so that they cannot be forgotten */
    const char *units[64], *tfs[64], *names[64];
    for (int c = 0; c < o->n_chan; c++) {
        names[c] = o->chan_names[c];
        const char *u = o->chan_units ? o->chan_units[c] : cv_data_field_units(o->chan_names[c]);
        units[c] = u ? u : "";
        tfs[c] = o->chan_transforms ? o->chan_transforms[c] : "log10";
    }
    /* one define mode for everything (each nc_enddef rewrites the metadata),
     * then the string values */
    int vs[4];
    CV_TRY(wr_strings(w, d_chan, "channel", "field name", &vs[0]));
    CV_TRY(wr_strings(w, d_chan, "channel_units", "units of the field in 'fields'", &vs[1]));
    CV_TRY(wr_strings(w, d_chan, "channel_transform", "transform applied before normalisation", &vs[2]));
    if (o->n_param) CV_TRY(wr_strings(w, d_param, "param", "parameter name", &vs[3]));
    CV_TRY(wr_nc(w, nc_enddef(w->ncid), "enddef"));
    CV_TRY(wr_nc(w, nc_put_var_string(w->ncid, vs[0], names), "channel"));
    CV_TRY(wr_nc(w, nc_put_var_string(w->ncid, vs[1], units), "channel_units"));
    CV_TRY(wr_nc(w, nc_put_var_string(w->ncid, vs[2], tfs), "channel_transform"));
    if (o->n_param)
        CV_TRY(wr_nc(w, nc_put_var_string(w->ncid, vs[3], (const char **)(o->param_names ? o->param_names : cv_data_param_names)),
                     "param"));
    if (o->direct && o->deflate == 0) wr_direct_open_locked(w);
fail:
    return st;
}

cv_status cv_writer_new(const char *path, const cv_writer_opts *o, cv_writer **out) {
    cv_status st = CV_OK;
    *out = NULL;
    if (o->n_maps < 1 || o->n_chan < 1 || o->n_chan > 64 || o->height < 1 || o->width < 1 || o->n_param < 0 ||
        o->n_param > 64 || !o->chan_names || o->deflate < 0 || o->deflate > 9 || !(o->box_size > 0))
        return cv_error(CV_ERR_ARG, "%s: bad dataset dimensions or options", path);
    if (o->n_param && !o->param_names && o->n_param != CV_DATA_N_PARAM)
        return cv_error(CV_ERR_ARG, "%s: %d parameters need names", path, o->n_param);
    for (int c = 0; c < o->n_chan; c++) {
        const char *tf = o->chan_transforms ? o->chan_transforms[c] : "log10";
        if (!o->chan_names[c] || strlen(o->chan_names[c]) >= CV_DATA_NAME_MAX || (strcmp(tf, "log10") && strcmp(tf, "none")))
            return cv_error(CV_ERR_ARG, "%s: channel %d: bad name or transform", path, c);
    }
    cv_writer *w = calloc(1, sizeof *w);
    if (!w) return cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
    w->ncid = -1;
#if defined(CV_HAVE_HDF5)
    w->h5f = w->h5d = -1;
#endif
    w->n_maps = o->n_maps;
    w->n_chan = o->n_chan;
    w->h = o->height;
    w->w = o->width;
    w->n_param = o->n_param;
    size_t nm = (size_t)o->n_maps;
    w->path = strdup(path);
    w->is_log = calloc((size_t)o->n_chan, sizeof(int));
    w->chan_name = calloc((size_t)o->n_chan, sizeof(cv_name));
    w->params = malloc(nm * (size_t)(o->n_param ? o->n_param : 1) * sizeof(double));
    w->sim = malloc(nm * sizeof(int32_t));
    w->split = calloc(nm, 1);
    w->written = calloc(nm, 1);
    w->sum = calloc(nm * (size_t)o->n_chan, sizeof(double));
    w->sumsq = calloc(nm * (size_t)o->n_chan, sizeof(double));
    w->norm_mean = calloc((size_t)o->n_chan, sizeof(double));
    w->norm_std = calloc((size_t)o->n_chan, sizeof(double));
    if (!w->path || !w->is_log || !w->chan_name || !w->params || !w->sim || !w->split || !w->written || !w->sum ||
        !w->sumsq || !w->norm_mean || !w->norm_std) {
        st = cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int c = 0; c < o->n_chan; c++) {
        w->is_log[c] = !o->chan_transforms || !strcmp(o->chan_transforms[c], "log10");
        snprintf(w->chan_name[c], CV_DATA_NAME_MAX, "%s", o->chan_names[c]);
    }
    for (size_t i = 0; i < nm * (size_t)o->n_param; i++) w->params[i] = NAN;
    for (size_t m = 0; m < nm; m++) w->sim[m] = (int32_t)(m / CV_DATA_MAPS_PER_SIM);
    cv_out_tmpname(path, w->tmp, sizeof w->tmp);
    CV_NC_LOCK();
    st = wr_create_locked(w, o);
    CV_NC_UNLOCK();
    if (st != CV_OK) goto fail;
    if (w->direct && !(w->chunk = malloc(((size_t)w->n_chan * w->h * w->w + 1) * sizeof(float)))) {
        st = cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    *out = w;
    return CV_OK;
fail:
    cv_writer_free(w);
    return st;
}

/* Sums of transform(x) and of its square over channel c of map gm,
 * x (H, W); CV_ERR_NUMERIC naming map, channel and pixel for a value the
 * transform cannot take.  Reads only the writer's fixed shape and names. */
static cv_status wr_chan_sums(const cv_writer *w, int64_t gm, int c, const float *x, double *sum, double *sumsq) {
    const size_t plane = (size_t)w->h * w->w;
    double s = 0, s2 = 0;
    if (w->is_log[c]) {
        size_t bad = 0;
        if (cv_data_log10_sums(x, plane, &s, &s2) != CV_OK) {
            cv_data_check_positive(x, plane, &bad);
            return cv_error(CV_ERR_NUMERIC, "map %lld, channel %s, pixel (y %zu, x %zu): value %g cannot take log10",
                            (long long)gm, w->chan_name[c], bad / (size_t)w->w, bad % (size_t)w->w, (double)x[bad]);
        }
    } else {
        for (size_t i = 0; i < plane; i++) {
            if (!isfinite(x[i]))
                return cv_error(CV_ERR_NUMERIC, "map %lld, channel %s, pixel (y %zu, x %zu): value is not finite",
                                (long long)gm, w->chan_name[c], i / (size_t)w->w, i % (size_t)w->w);
            s += x[i];
            s2 += (double)x[i] * x[i];
        }
    }
    *sum = s;
    *sumsq = s2;
    return CV_OK;
}

/* The checks before maps [first, first+count) are written. */
static cv_status wr_check_range(const cv_writer *w, int64_t first, int64_t count) {
    if (w->ncid < 0) return cv_error(CV_ERR_ARG, "%s: writer is closed", w->path);
    if (first < 0 || count < 0 || first + count > w->n_maps)
        return cv_error(CV_ERR_ARG, "%s: maps %lld..%lld out of range (%lld maps)", w->path, (long long)first,
                        (long long)(first + count - 1), (long long)w->n_maps);
    for (int64_t m = 0; m < count; m++)
        if (w->written[first + m]) return cv_error(CV_ERR_ARG, "%s: map %lld written twice", w->path, (long long)(first + m));
    return CV_OK;
}

/* Map gm's chunk, x (C H W + 1) with its checksum in the last float, into
 * the file (direct writer). */
static cv_status wr_put_chunk(cv_writer *w, int64_t gm, const float *x) {
#if defined(CV_HAVE_HDF5)
    const size_t plane = (size_t)w->n_chan * w->h * w->w;
    hsize_t off[4] = { (hsize_t)gm, 0, 0, 0 };
    CV_NC_LOCK();
    herr_t rc = H5Dwrite_chunk(w->h5d, H5P_DEFAULT, 0, off, (plane + 1) * sizeof(float), x);
    CV_NC_UNLOCK();
    if (rc < 0) return cv_error(CV_ERR_IO, "%s: map %lld: cannot write fields (HDF5 chunk write failed)", w->path, (long long)gm);
    w->written[gm] = 1;
    return CV_OK;
#else
    (void)x;
    return cv_error(CV_ERR_ARG, "%s: map %lld: no direct chunk writes in this build", w->path, (long long)gm);
#endif
}

/* The checksum of chunk x (C H W floats) into the float after it, as the
 * Fletcher-32 filter stores it: little-endian. */
static void wr_seal(size_t plane, float *x) {
    const uint32_t ck = cv_data_fletcher32(x, plane);
    const uint8_t b[4] = { (uint8_t)ck, (uint8_t)(ck >> 8), (uint8_t)(ck >> 16), (uint8_t)(ck >> 24) };
    memcpy(x + plane, b, 4);
}

/* The fields of maps [first, first+count) into the file; marks them written. */
static cv_status wr_put(cv_writer *w, int64_t first, int64_t count, const float *maps) {
    if (w->direct) {
        const size_t plane = (size_t)w->n_chan * w->h * w->w;
        for (int64_t m = 0; m < count; m++) {
            memcpy(w->chunk, maps + (size_t)m * plane, plane * sizeof(float));
            wr_seal(plane, w->chunk);
            cv_status st = wr_put_chunk(w, first + m, w->chunk);
            if (st != CV_OK) return st;
        }
        return CV_OK;
    }
    size_t start[4] = { (size_t)first, 0, 0, 0 };
    size_t cnt[4] = { (size_t)count, (size_t)w->n_chan, (size_t)w->h, (size_t)w->w };
    CV_NC_LOCK();
    int rc = count ? nc_put_vara_float(w->ncid, w->v_fields, start, cnt, maps) : NC_NOERR;
    CV_NC_UNLOCK();
    if (rc != NC_NOERR)
        return cv_error(CV_ERR_IO, "%s: map %lld: cannot write fields: %s", w->path, (long long)first, nc_strerror(rc));
    for (int64_t m = 0; m < count; m++) w->written[first + m] = 1;
    return CV_OK;
}

cv_status cv_writer_write(cv_writer *w, int64_t first, int64_t count, const float *maps) {
    cv_status st = wr_check_range(w, first, count);
    if (st != CV_OK) return st;
    const size_t plane = (size_t)w->h * w->w;
    for (int64_t m = 0; m < count; m++)
        for (int c = 0; c < w->n_chan; c++) {
            const int64_t gm = first + m;
            st = wr_chan_sums(w, gm, c, maps + ((size_t)m * w->n_chan + c) * plane, &w->sum[gm * w->n_chan + c],
                              &w->sumsq[gm * w->n_chan + c]);
            if (st != CV_OK) return st;
        }
    return wr_put(w, first, count, maps);
}

cv_status cv_writer_sums(const cv_writer *w, int64_t first, int64_t count, const float *maps, double *sums) {
    if (first < 0 || count < 0 || first + count > w->n_maps)
        return cv_error(CV_ERR_ARG, "%s: maps %lld..%lld out of range (%lld maps)", w->path, (long long)first,
                        (long long)(first + count - 1), (long long)w->n_maps);
    const size_t plane = (size_t)w->h * w->w;
    for (int64_t m = 0; m < count; m++)
        for (int c = 0; c < w->n_chan; c++) {
            const size_t k = (size_t)m * w->n_chan + c;
            cv_status st = wr_chan_sums(w, first + m, c, maps + k * plane, &sums[2 * k], &sums[2 * k + 1]);
            if (st != CV_OK) return st;
        }
    return CV_OK;
}

/* The per-channel sums of maps [first, first+count), (count, C, 2), kept for finish. */
static void wr_keep_sums(cv_writer *w, int64_t first, int64_t count, const double *sums) {
    for (int64_t m = 0; m < count; m++)
        for (int c = 0; c < w->n_chan; c++) {
            const size_t k = (size_t)m * w->n_chan + c;
            w->sum[(first + m) * w->n_chan + c] = sums[2 * k];
            w->sumsq[(first + m) * w->n_chan + c] = sums[2 * k + 1];
        }
}

cv_status cv_writer_write_sums(cv_writer *w, int64_t first, int64_t count, const float *maps, const double *sums) {
    cv_status st = wr_check_range(w, first, count);
    if (st != CV_OK) return st;
    CV_TRY(wr_put(w, first, count, maps));
    wr_keep_sums(w, first, count, sums);
fail:
    return st;
}

int cv_writer_direct(const cv_writer *w) { return w->direct; }

void cv_hdf5_no_atexit(void) {
#if defined(CV_HAVE_HDF5)
    H5dont_atexit();
#endif
}

cv_status cv_writer_sums_padded(const cv_writer *w, int64_t first, int64_t count, float *maps, double *sums) {
    const size_t plane = (size_t)w->n_chan * w->h * w->w;
    for (int64_t m = 0; m < count; m++) {
        float *x = maps + (size_t)m * (plane + 1);
        cv_status st = cv_writer_sums(w, first + m, 1, x, sums + (size_t)m * w->n_chan * 2);
        if (st != CV_OK) return st;
        if (w->direct) wr_seal(plane, x);
    }
    return CV_OK;
}

cv_status cv_writer_write_padded(cv_writer *w, int64_t first, int64_t count, const float *maps, const double *sums) {
    cv_status st = wr_check_range(w, first, count);
    if (st != CV_OK) return st;
    const size_t plane = (size_t)w->n_chan * w->h * w->w;
    for (int64_t m = 0; m < count; m++) {
        const float *x = maps + (size_t)m * (plane + 1);
        CV_TRY(w->direct ? wr_put_chunk(w, first + m, x) : wr_put(w, first + m, 1, x));
        wr_keep_sums(w, first + m, 1, sums + (size_t)m * w->n_chan * 2);
    }
fail:
    return st;
}

static cv_status wr_range(cv_writer *w, int64_t first, int64_t count, const char *what) {
    if (first < 0 || count < 0 || first + count > w->n_maps)
        return cv_error(CV_ERR_ARG, "%s: %s for maps %lld..%lld out of range (%lld maps)", w->path, what, (long long)first,
                        (long long)(first + count - 1), (long long)w->n_maps);
    return CV_OK;
}

cv_status cv_writer_set_params(cv_writer *w, int64_t first, int64_t count, const double *params) {
    cv_status st = wr_range(w, first, count, "params");
    if (st != CV_OK) return st;
    memcpy(w->params + first * w->n_param, params, (size_t)(count * w->n_param) * sizeof(double));
    return CV_OK;
}

cv_status cv_writer_set_sim(cv_writer *w, int64_t first, int64_t count, const int32_t *sim) {
    cv_status st = wr_range(w, first, count, "sim");
    if (st != CV_OK) return st;
    memcpy(w->sim + first, sim, (size_t)count * sizeof(int32_t));
    return CV_OK;
}

cv_status cv_writer_set_split(cv_writer *w, int64_t first, int64_t count, const int8_t *split) {
    cv_status st = wr_range(w, first, count, "split");
    if (st != CV_OK) return st;
    for (int64_t i = 0; i < count; i++)
        if (split[i] < 0 || split[i] > 2)
            return cv_error(CV_ERR_ARG, "%s: map %lld: split %d is not 0, 1 or 2", w->path, (long long)(first + i), split[i]);
    memcpy(w->split + first, split, (size_t)count);
    return CV_OK;
}

cv_status cv_writer_set_attr(cv_writer *w, const char *name, const char *value) {
    /* kept until finish, which writes them all in one define mode (each
     * redef/enddef rewrites the file's metadata) */
    if (w->ncid < 0) return cv_error(CV_ERR_ARG, "%s: writer is closed", w->path);
    if (!*name || strlen(name) > NC_MAX_NAME) return cv_error(CV_ERR_ARG, "%s: bad attribute name '%s'", w->path, name);
    for (int i = 0; i < w->n_attr; i++)
        if (!strcmp(w->attr_name[i], name)) {
            char *v = strdup(value);
            if (!v) return cv_error(CV_ERR_NOMEM, "%s: out of memory", w->path);
            free(w->attr_val[i]);
            w->attr_val[i] = v;
            return CV_OK;
        }
    char **an = realloc(w->attr_name, (size_t)(w->n_attr + 1) * sizeof *an);
    if (an) w->attr_name = an;
    char **av = realloc(w->attr_val, (size_t)(w->n_attr + 1) * sizeof *av);
    if (av) w->attr_val = av;
    char *n = strdup(name), *v = strdup(value);
    if (!an || !av || !n || !v) { free(n); free(v); return cv_error(CV_ERR_NOMEM, "%s: out of memory", w->path); }
    w->attr_name[w->n_attr] = n;
    w->attr_val[w->n_attr++] = v;
    return CV_OK;
}

cv_status cv_writer_set_norm(cv_writer *w, const double *mean, const double *std) {
    for (int c = 0; c < w->n_chan; c++)
        if (!isfinite(mean[c]) || !(std[c] > 0) || !isfinite(std[c]))
            return cv_error(CV_ERR_ARG, "%s: channel %d: bad normalisation mean %g std %g", w->path, c, mean[c], std[c]);
    memcpy(w->norm_mean, mean, (size_t)w->n_chan * sizeof(double));
    memcpy(w->norm_std, std, (size_t)w->n_chan * sizeof(double));
    w->norm_set = 1;
    return CV_OK;
}

cv_status cv_writer_finish(cv_writer *w) {
    cv_status st = CV_OK;
    if (w->ncid < 0) return cv_error(CV_ERR_ARG, "%s: writer is closed", w->path);
    for (int64_t m = 0; m < w->n_maps; m++)
        if (!w->written[m]) { st = cv_error(CV_ERR_ARG, "%s: map %lld was never written", w->path, (long long)m); goto fail; }
    if (!w->norm_set) {
        int64_t n_train = 0;
        for (int64_t m = 0; m < w->n_maps; m++) n_train += w->split[m] == CV_SPLIT_TRAIN;
        for (int c = 0; c < w->n_chan; c++) {
            double s = 0, s2 = 0;
            int64_t n = 0;
            for (int64_t m = 0; m < w->n_maps; m++) {
                if (n_train && w->split[m] != CV_SPLIT_TRAIN) continue;
                s += w->sum[m * w->n_chan + c];
                s2 += w->sumsq[m * w->n_chan + c];
                n += (int64_t)w->h * w->w;
            }
            double mean = s / n, var = s2 / n - mean * mean;
            w->norm_mean[c] = mean;
            w->norm_std[c] = sqrt(var > 0 ? var : 0);
            if (!(w->norm_std[c] > 0)) w->norm_std[c] = 1.0;   /* constant channel: no scaling */
        }
    }
    CV_NC_LOCK();
    wr_direct_close_locked(w);
    int rc = NC_NOERR;
    const char *bad_attr = NULL;
    if (w->n_attr) {
        rc = nc_redef(w->ncid);
        for (int i = 0; i < w->n_attr && rc == NC_NOERR; i++) {
            rc = nc_put_att_text(w->ncid, NC_GLOBAL, w->attr_name[i], strlen(w->attr_val[i]), w->attr_val[i]);
            if (rc != NC_NOERR) bad_attr = w->attr_name[i];
        }
        int rc2 = nc_enddef(w->ncid);
        if (rc == NC_NOERR) rc = rc2;
    }
    if (w->n_param && rc == NC_NOERR) rc = nc_put_var_double(w->ncid, w->v_params, w->params);
    if (rc == NC_NOERR) rc = nc_put_var_int(w->ncid, w->v_sim, w->sim);
    if (rc == NC_NOERR) rc = nc_put_var_schar(w->ncid, w->v_split, (const signed char *)w->split);
    if (rc == NC_NOERR) rc = nc_put_var_double(w->ncid, w->v_mean, w->norm_mean);
    if (rc == NC_NOERR) rc = nc_put_var_double(w->ncid, w->v_std, w->norm_std);
    int rc2 = nc_close(w->ncid);
    w->ncid = -1;
    CV_NC_UNLOCK();
    if (rc == NC_NOERR) rc = rc2;
    if (rc != NC_NOERR) {
        st = bad_attr ? cv_error(CV_ERR_IO, "%s: attribute %s: %s", w->path, bad_attr, nc_strerror(rc))
                      : cv_error(CV_ERR_IO, "%s: cannot finish: %s", w->path, nc_strerror(rc));
        goto fail;
    }
    CV_TRY(cv_out_commit(w->tmp, w->path));
    w->tmp[0] = '\0';
    w->finished = 1;
    return CV_OK;
fail:
    if (w->ncid >= 0) { CV_NC_LOCK(); wr_direct_close_locked(w); nc_close(w->ncid); CV_NC_UNLOCK(); w->ncid = -1; }
    if (w->tmp[0]) { cv_out_abort(w->tmp); w->tmp[0] = '\0'; }
    return st;
}

void cv_writer_free(cv_writer *w) {
    if (!w) return;
    CV_NC_LOCK();
    wr_direct_close_locked(w);
    if (w->ncid >= 0) nc_close(w->ncid);
    CV_NC_UNLOCK();
    free(w->chunk);
    if (!w->finished && w->tmp[0]) cv_out_abort(w->tmp);
    free(w->path); free(w->is_log); free(w->chan_name); free(w->params); free(w->sim); free(w->split);
    free(w->written); free(w->sum); free(w->sumsq); free(w->norm_mean); free(w->norm_std);
    for (int i = 0; i < w->n_attr; i++) { free(w->attr_name[i]); free(w->attr_val[i]); }
    free(w->attr_name); free(w->attr_val);
    free(w);
}
