/* cv_data.h -- field-map datasets: the NetCDF-4 file format, a reader and
 * an atomic writer.  The format is documented in doc/dataset.md:
 *
 *   fields(map, channel, y, x)  float32, physical units (no transform baked
 *                               in), chunked one map per chunk, deflate+shuffle
 *   params(map, param)          double (Omega_m, sigma_8, A_SN1, A_AGN1,
 *                               A_SN2, A_AGN2 for CAMELS LH)
 *   param(param)                string, the parameter names
 *   sim(map)                    int, the simulation index (map i of CMD
 *                               belongs to simulation i / 15)
 *   split(map)                  byte, 0 = train, 1 = valid, 2 = test
 *   channel(channel)            string, the field names (Mgas, HI, B, ...)
 *   channel_units(channel)      string
 *   channel_transform(channel)  string, what the model applies ("log10")
 *   norm_mean(channel), norm_std(channel)
 *                               double: mean and std of transform(field)
 *                               over the train split only
 *   global attributes: cv_format = "cosmovae-dataset", cv_format_version,
 *                      box_size (Mpc/h), source, history (the command).
 *
 * Thread safety: the NetCDF-C library is not thread-safe, so every NetCDF
 * call made through this module holds one process-wide lock; different
 * datasets (and a loader's prefetch thread next to its caller) may be used
 * from different threads.  One cv_dataset may be read from several threads
 * at once; a cv_writer belongs to one thread at a time. */
#ifndef CV_DATA_H
#define CV_DATA_H

#include "runtime/cv.h"

enum cv_split {
    CV_SPLIT_ALL   = -1,      /* loader: every map, whatever its split */
    CV_SPLIT_TRAIN =  0,
    CV_SPLIT_VALID =  1,
    CV_SPLIT_TEST  =  2,
};
const char *cv_split_name(int split);  /* "train", "valid", "test", "all" */

#define CV_DATA_FORMAT          "cosmovae-dataset"
#define CV_DATA_FORMAT_VERSION  1
#define CV_DATA_MAPS_PER_SIM    15      /* CMD: map i belongs to sim i / 15 */
#define CV_DATA_BOX_SIZE        25.0    /* Mpc/h, CAMELS */
#define CV_DATA_N_PARAM         6
#define CV_DATA_NAME_MAX        64      /* names, units, transforms: bytes incl. NUL */
/* The CAMELS LH parameter names, in file order. */
extern const char *const cv_data_param_names[CV_DATA_N_PARAM];

/* The 13 CMD fields and their units ("Mgas" -> "(Msun/h)/(Mpc/h)^2").
 * Returns NULL for an unknown field. */
const char *cv_data_field_units(const char *field);
extern const char *const cv_data_cmd_fields[13];

/* ---- reader ---------------------------------------------------------- */

typedef struct cv_dataset cv_dataset;

/* Open a dataset and read its metadata (everything except the fields)
 * into memory; O(maps * params) bytes.  Checks the format attribute,
 * dimensions, variable types and shapes and that every split value is
 * 0..2; errors name the file (and the variable or map index). */
cv_status cv_dataset_open(const char *path, cv_dataset **out);
void      cv_dataset_free(cv_dataset *ds);            /* NULL is a no-op */

const char *cv_dataset_path(const cv_dataset *ds);
int64_t cv_dataset_n_maps(const cv_dataset *ds);
int     cv_dataset_n_chan(const cv_dataset *ds);
int     cv_dataset_height(const cv_dataset *ds);       /* H (y) */
int     cv_dataset_width(const cv_dataset *ds);        /* W (x) */
double  cv_dataset_box_size(const cv_dataset *ds);     /* Mpc/h */

/* Per channel c in [0, n_chan). Strings live as long as the dataset. */
const char *cv_dataset_chan_name(const cv_dataset *ds, int c);
const char *cv_dataset_chan_units(const cv_dataset *ds, int c);
const char *cv_dataset_chan_transform(const cv_dataset *ds, int c);  /* "log10" or "none" */
double      cv_dataset_norm_mean(const cv_dataset *ds, int c);
double      cv_dataset_norm_std(const cv_dataset *ds, int c);

int         cv_dataset_n_param(const cv_dataset *ds);
const char *cv_dataset_param_name(const cv_dataset *ds, int p);
double      cv_dataset_param(const cv_dataset *ds, int64_t map, int p);
const double *cv_dataset_params(const cv_dataset *ds);   /* (n_maps, n_param) */
int32_t     cv_dataset_sim(const cv_dataset *ds, int64_t map);
int         cv_dataset_split(const cv_dataset *ds, int64_t map);
int64_t     cv_dataset_split_count(const cv_dataset *ds, int split);  /* CV_SPLIT_ALL: n_maps */
/* The indices of the maps of split `split` (CV_SPLIT_ALL: every map), at
 * most max_maps of them evenly spaced (0: no limit), into *idx (malloc'd,
 * caller frees) and *n.  CV_ERR_ARG naming the file and `what` (the task,
 * "fit the top prior") when fewer than 2 maps are left. */
cv_status   cv_dataset_select(const cv_dataset *ds, int split, int64_t max_maps, const char *what, int64_t **idx, int64_t *n);
/* A global text attribute ("source", "history", ...), or NULL. */
const char *cv_dataset_attr(const cv_dataset *ds, const char *name);

/* Read maps [first, first+count) in physical units.
 *   out: (count, C, H, W) float32, caller-owned.
 * Errors (range, NetCDF read/decompression failure) name the file and the
 * first map index involved.  Safe to call from several threads. */
cv_status cv_dataset_read(cv_dataset *ds, int64_t first, int64_t count, float *out);

/* ---- writer ---------------------------------------------------------- */

typedef struct cv_writer cv_writer;

typedef struct cv_writer_opts {
    int64_t n_maps;                     /* required, > 0 */
    int     n_chan, height, width;      /* required, > 0 */
    const char *const *chan_names;      /* (n_chan) required */
    const char *const *chan_units;      /* (n_chan) NULL: cv_data_field_units(name) or "" */
    const char *const *chan_transforms; /* (n_chan) NULL: all "log10" */
    int     n_param;                    /* default CV_DATA_N_PARAM; 0 allowed */
    const char *const *param_names;     /* (n_param) NULL: cv_data_param_names */
    double  box_size;                   /* default CV_DATA_BOX_SIZE */
    const char *source;                 /* global attribute; default "" */
    const char *history;                /* the command that made the file; default "" */
    int     deflate;                    /* 0..9, default 1 (with shuffle) */
    int     direct;                     /* default 1: with deflate 0, hand each map's
                                           chunk and checksum to HDF5 directly (the
                                           same bytes, much faster); 0: through NetCDF */
} cv_writer_opts;
cv_writer_opts cv_writer_opts_default(void);

/* Create the file under a temporary name next to `path` (see cv_out_tmpname).
 * Nothing appears at `path` until cv_writer_finish succeeds; cv_writer_free
 * of an unfinished writer removes the temporary file.
 * Defaults until set: params NaN, sim = map / 15, split = train. */
cv_status cv_writer_new(const char *path, const cv_writer_opts *o, cv_writer **out);

/* Write maps [first, first+count): maps (count, C, H, W), physical units.
 * For every "log10" channel each value must be finite and > 0 (else
 * CV_ERR_NUMERIC naming map, channel and pixel).  Also accumulates the
 * per-map sums for the normalisation statistics.  Any order; each map once. */
cv_status cv_writer_write(cv_writer *w, int64_t first, int64_t count, const float *maps);
/* cv_writer_write in two steps, so that the checks and sums of some maps
 * can run in other threads while the writer's thread writes others:
 * cv_writer_sums validates maps (count, C, H, W) as cv_writer_write does
 * and puts the per-map sums into sums (count, C, 2); it changes nothing and
 * may run in any thread, several at once, while the writer is open.
 * cv_writer_write_sums then writes those maps with those sums (which must
 * come from cv_writer_sums of the same maps and map indices). */
cv_status cv_writer_sums(const cv_writer *w, int64_t first, int64_t count, const float *maps, double *sums);
cv_status cv_writer_write_sums(cv_writer *w, int64_t first, int64_t count, const float *maps, const double *sums);
/* The same two steps without a copy, for a pipeline: maps (count, C H W + 1),
 * each map followed by one float of room.  cv_writer_sums_padded (any
 * thread) also puts there the map's chunk checksum when the writer hands
 * chunks to HDF5 directly; cv_writer_write_padded (the writer's thread)
 * then writes each map and checksum as one chunk. */
cv_status cv_writer_sums_padded(const cv_writer *w, int64_t first, int64_t count, float *maps, double *sums);
cv_status cv_writer_write_padded(cv_writer *w, int64_t first, int64_t count, const float *maps, const double *sums);
/* 1 when the writer hands chunks to HDF5 directly (opts.direct, deflate 0
 * and a build with HDF5), 0 when they go through NetCDF. */
int cv_writer_direct(const cv_writer *w);

/* Called before any NetCDF or HDF5 use (cv_cli_init does): HDF5 must not
 * close files at process exit.  After a write that failed for lack of
 * space (a checkpoint on a full disk), NetCDF cannot close its file and
 * leaves it in HDF5's table, where HDF5's exit handler crashed (this
 * library closes every file it opens itself). */
void cv_hdf5_no_atexit(void);
cv_status cv_writer_set_params(cv_writer *w, int64_t first, int64_t count,
                               const double *params /* (count, n_param) */);
cv_status cv_writer_set_sim(cv_writer *w, int64_t first, int64_t count, const int32_t *sim /* (count) */);
cv_status cv_writer_set_split(cv_writer *w, int64_t first, int64_t count, const int8_t *split /* (count) */);
/* Extra global text attribute (e.g. "seed", "model"); setting a name again
 * replaces its value.  Kept in memory and written by cv_writer_finish. */
cv_status cv_writer_set_attr(cv_writer *w, const char *name, const char *value);
/* Override the normalisation statistics (e.g. samples of a model trained
 * on another dataset keep that dataset's statistics).  (n_chan) each. */
cv_status cv_writer_set_norm(cv_writer *w, const double *mean, const double *std);

/* Check that every map was written, compute norm_mean/norm_std from the
 * train maps (all maps if there are none), close and rename onto `path`.
 * On failure the temporary file is removed.  The writer must still be
 * freed. */
cv_status cv_writer_finish(cv_writer *w);
void      cv_writer_free(cv_writer *w);            /* NULL is a no-op */

/* ---- helpers --------------------------------------------------------- */

/* Apply one of the 8 dihedral transforms of a square map to each of C
 * channels: code bits 0 = flip x, 1 = flip y, 2 = transpose (applied
 * first).  in and out are (C, S, S) and must not overlap. */
void cv_data_dihedral(const float *in, float *out, int n_chan, int size, int code);

/* Validate values for log10: returns CV_ERR_NUMERIC with the offending
 * flat index in *bad when some value is non-finite or <= 0. */
cv_status cv_data_check_positive(const float *x, size_t n, size_t *bad);

/* Sums of log10(x) and log10(x)^2 over x (n), as the writer accumulates
 * them for norm_mean/norm_std: CV_ERR_NUMERIC (no message) when some value
 * is not positive and finite.  Vectorised, the mantissa's log10 in float:
 * each log10 within 3e-8 of libm's, and the mean and standard deviation
 * made from the sums within about 1e-10 relative of libm's. */
cv_status cv_data_log10_sums(const float *x, size_t n, double *sum, double *sumsq);

/* HDF5's Fletcher-32 checksum of the n floats at x, as its filter stores
 * it after each chunk (little-endian); vectorised. */
uint32_t cv_data_fletcher32(const float *x, size_t n);

/* Block means: out (h/f, w/f) holds the mean of each f x f block of in
 * (h, w), summed in double (exact unless the values of a block span more
 * than ~2^25) and rounded once to float; h and w are multiples of f.
 * In the same pass, checks every input value: returns 1 when some value is
 * unusable (is_log: not positive and finite; else not finite), 0 when all
 * are fine.  Vectorised for f = 2 and multiples of 4. */
int cv_data_block_mean(const float *in, float *out, int h, int w, int f, int is_log);

/* CMD parameter tables (params_<set>_<suite>.txt): whitespace- or
 * comma-separated rows of n_col finite numbers; blank lines and lines
 * starting with '#' (a header) are skipped.  *params (n_rows, n_col) is
 * malloc'ed, the caller frees.  Errors name the file and line. */
cv_status cv_data_read_params(const char *path, int n_col, int64_t *n_rows, double **params);
/* Write such a table atomically, with a "# name ..." header, values with
 * %.5f as CAMELS does (round values first if they must read back exactly). */
cv_status cv_data_write_params(const char *path, int64_t n_rows, int n_col, const char *const *names,
                               const double *params /* (n_rows, n_col) */);

/* Train/valid/test proportions of the paper (13000/1000/1000 of 15000):
 * n_valid = n_test = round(n / 15), at least 1 each once n >= 3, the rest
 * train.  cv_data_split_assign gives each of n items (simulations, or maps)
 * its split, the items of each split chosen by a seeded shuffle. */
void cv_data_split_counts(int64_t n, int64_t *n_train, int64_t *n_valid, int64_t *n_test);
void cv_data_split_assign(int64_t n, uint64_t seed, int8_t *split /* (n) */);

/* The command line as a "history" attribute: the program's base name and
 * its arguments, quoted where needed, into buf (truncated to n). */
void cv_data_history(int argc, char **argv, char *buf, size_t n);

/* Counter-based random numbers shared by the loader, import and mkfields:
 * pure functions of (seed, stream, index), so results never depend on
 * call order or threads (splitmix64 finaliser, chained). */
uint64_t cv_data_hash(uint64_t seed, uint64_t stream, uint64_t index);
double   cv_data_uniform(uint64_t seed, uint64_t stream, uint64_t index);  /* (0, 1) */
int64_t  cv_data_below(uint64_t seed, uint64_t stream, uint64_t index, int64_t n);  /* [0, n) */

/* Locate a file shipped in data/: $CV_DATA_DIR/name, then the source
 * tree's data/name, then the installed pkgdatadir/name.  buf gets the
 * first that exists; CV_ERR_IO listing the places tried otherwise. */
cv_status cv_data_find(const char *name, char *buf, size_t n);
#define CV_DATA_DEFAULT_NAME "cmdsynth-64.nc"
/* The bundled 64x64 dataset that cosmovae-train uses by default. */
cv_status cv_data_default_path(char *buf, size_t n);

#endif
