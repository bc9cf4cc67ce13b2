/* cv_latent.h -- latent-code files (NetCDF-4), as written by the encoder
 * and read by the linear probe and t-SNE.  The format (doc/results.md):
 *
 *   latent(map, dim)    float32, one latent vector per map
 *   params(map, param)  double, the map's simulation parameters
 *   param(param)        string, the parameter names (Omega_m, sigma_8, ...)
 *   sim(map)            int, the simulation index
 *   split(map)          byte, 0 = train, 1 = valid, 2 = test
 *   global attributes:  cv_format = "cosmovae-latent", cv_format_version = 1,
 *                       source (the dataset), model (what made the codes),
 *                       history (the command); map_height, map_width
 *                       (pixels) and box_size (Mpc/h) of the maps when
 *                       known (optional).
 *
 * params, param, sim and split carry the dataset's variables of the same
 * names and meanings over, map for map.  A reader accepts any file of this
 * form whatever made it: the latent may be stored as any numeric type, and
 * every variable other than latent is optional unless the caller needs it
 * (CV_LATENT_NEED_*).
 *
 * Thread safety: NetCDF-C is not thread-safe; do not call these while
 * another thread makes NetCDF calls (e.g. a running cv_loader). */
#ifndef CV_LATENT_H
#define CV_LATENT_H

#include "runtime/cv.h"

#define CV_LATENT_FORMAT         "cosmovae-latent"
#define CV_LATENT_FORMAT_VERSION 1
#define CV_LATENT_NAME_MAX       64          /* parameter names, bytes incl. NUL */

/* An in-memory latent file.  Fill it (after cv_latent_new) to write one;
 * cv_latent_read returns one.  Caller frees with cv_latent_free. */
typedef struct cv_latent {
    int64_t  n_map;
    int      n_dim;
    int      n_param;                        /* 0 when the file has no params */
    float   *z;                              /* (n_map, n_dim) */
    double  *params;                         /* (n_map, n_param), NULL if none */
    char   (*param_name)[CV_LATENT_NAME_MAX];/* (n_param) */
    int32_t *sim;                            /* (n_map), NULL if none */
    int8_t  *split;                          /* (n_map), NULL if none */
    char     source[256], model[256];        /* global attributes, "" if none */
    /* The maps the codes describe (global attributes map_height, map_width,
     * box_size): 0 when unknown (files written before they were recorded,
     * or by other tools).  A baseline is only compared with codes of maps
     * of the same geometry. */
    int      map_height, map_width;
    double   box_size;                       /* Mpc/h */
} cv_latent;

/* Allocate every array (z zeroed, params NaN, names "param<i>", sim = -1,
 * split = 0); n_param may be 0.  Caller frees with cv_latent_free. */
cv_status cv_latent_new(int64_t n_map, int n_dim, int n_param, cv_latent **out);
void      cv_latent_free(cv_latent *lat);                     /* NULL is a no-op */
/* cv_latent_new for every map of a dataset, with its params, parameter
 * names, sim, split, map geometry and source (the dataset's path) set;
 * z zeroed, model "". */
struct cv_dataset;
cv_status cv_latent_new_for(const struct cv_dataset *ds, int n_dim, cv_latent **out);

/* Write atomically (temporary name, renamed on success; nothing is left
 * at `path` on failure).  Every array must be set (params may be absent
 * when n_param is 0); split values must be 0..2.  `history` may be NULL. */
cv_status cv_latent_write(const char *path, const cv_latent *lat, const char *history);

enum {
    CV_LATENT_NEED_PARAMS = 1,               /* params(map, param) */
    CV_LATENT_NEED_SPLIT  = 2,               /* split(map) */
    CV_LATENT_NEED_SIM    = 4,               /* sim(map) */
};
/* Read a latent file.  Errors name the file and the variable: a missing
 * latent (or a needed variable), a wrong shape, a non-finite latent value
 * (with map and dim), a split value outside 0..2 (with the map).  Missing
 * parameter names become "param<i>". */
cv_status cv_latent_read(const char *path, int need, cv_latent **out);

/* The cv_format global attribute of a NetCDF file into buf ("" when it has
 * none): tells a latent file from a dataset.  CV_ERR_IO naming the file
 * when it cannot be opened. */
cv_status cv_latent_file_format(const char *path, char *buf, size_t n);
/* Maps in split s (0..2), or all for s < 0. */
int64_t cv_latent_split_count(const cv_latent *lat, int s);

#endif
