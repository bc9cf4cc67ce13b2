/* cv_tune.h -- per-device kernel parameters ("tuning"), FFTW-style:
 * a built-in table keyed by device name, vendor and type gives every
 * device a sensible starting point, and a wisdom file written by
 * `cosmovae-info --tune` (measured on the device) overrides it.
 *
 * Where the parameters go: the vector and blocking sizes of the VEC
 * convolution kernels become -D build options (cv_tune_build_opts), so
 * they are part of the program cache key; the rest are read by the
 * launchers at run time (cv_ctx_tune): the convolution algorithm rules,
 * the backward-weight parallelism, whether DIRECT takes GELU in a
 * separate pass, the work-group size of the flat elementwise kernels.
 *
 * Wisdom files: $CV_CACHE_DIR (else $XDG_CACHE_HOME/cosmovae, else
 * ~/.cache/cosmovae) / wisdom-<device name, sanitised>.txt; plain text,
 * `key = value` lines after a `cosmovae-wisdom 1` header, every key
 * optional (a missing key keeps the table's value).  A wisdom file that
 * cannot be parsed, names another device or holds a value out of range
 * is ignored as a whole: the context warns once on stderr, naming the file
 * and line, and uses the table (a stale cache must never stop a run;
 * rerunning `cosmovae-info --tune` rewrites it).  See doc/tuning.md. */
#ifndef CV_TUNE_H
#define CV_TUNE_H

#include "runtime/cv.h"

#define CV_TUNE_MAX_RULES 48

/* Convolution algorithms as cv_conv_algo (src/ops/cv_op_conv.h) numbers them. */
enum { CV_TUNE_DIRECT = 1, CV_TUNE_GEMM = 2, CV_TUNE_VEC = 3 };

/* One rule of the convolution AUTO choice; the first that matches wins:
 * op (-1 any, 0 forward, 1 backward-data, 2 backward-weight), kernel size
 * (0 any), and lower bounds on H*W, Ci*k*k and Co. */
typedef struct cv_tune_rule {
    int32_t op, k;
    int64_t min_hw, min_cikk, min_co;
    int32_t algo;                  /* CV_TUNE_DIRECT, _GEMM or _VEC */
} cv_tune_rule;

typedef struct cv_tune {
    char    entry[64];             /* the table entry that matched, e.g. "GeForce GTX 1080 Ti" */
    char    source[1100];          /* "built-in table", or the wisdom file it came from */
    char    warning[1400];         /* why a wisdom file was ignored; "" if none */
    /* VEC convolution kernels (build options) */
    int32_t conv_v;                /* CV_CONV_V: pixels per work-item vector, 4, 8 or 16 */
    int32_t conv_cob1;             /* output channels per work-item, 1x1 forward/backward-data: 8, 16 or 32 */
    int32_t conv_r3;               /* CV_CONV_R3: rows per work-item, 3x3 forward/backward-data, 1..6 */
    int32_t conv_cob3;             /* CV_CONV_COB3: output channels per work-item, 3x3, 1..16 */
    int32_t conv_wcob1;            /* CV_CONV_WCOB1: output channels, 1x1 backward-weight, 1..32 */
    int32_t conv_wcob3;            /* CV_CONV_WCOB3: output channels, 3x3 backward-weight, 1..16 */
    int32_t conv_wcib1;            /* CV_CONV_WCIB1: input channels, 1x1 backward-weight, 1..4 */
    int32_t elem_chunk;            /* CV_ELEM_CHUNK: elements per work-item of the flat kernels, 1..65536 */
    /* run-time parameters */
    int32_t vec_wg;                /* VEC forward / backward-data work-group size (pixel vectors), 1..256 */
    int32_t wgrad_groups;          /* backward-weight: work-groups wanted per compute unit (DIRECT, VEC) */
    int32_t keep_gelu;             /* training plans keep, per gelu_in conv, GELU(x) for its backward-weight
                                      pass (1), and GELU'(x) for its backward-data pass (2), or nothing (0) */
    int32_t direct_pre_gelu;       /* DIRECT: GELU / GELU' in a separate flat pass (1) or in the tiles (0) */
    int32_t elem_wg;               /* work-group size of the flat kernels; 0 lets the driver choose */
    int32_t n_rules;
    cv_tune_rule rules[CV_TUNE_MAX_RULES];
} cv_tune;

/* The built-in table: a pure function of the device's name, vendor and
 * type (CL_DEVICE_TYPE_* bits), no device needed.  Matching is a
 * case-insensitive substring search over the name, so "GeForce GTX 1080
 * Ti" matches drivers that report it with or without an "NVIDIA " prefix;
 * then generic NVIDIA, AMD and Intel GPUs by vendor, then CPUs (PoCL and
 * vendor CPU runtimes), then a safe default.  out->entry names the row. */
void cv_tune_table(const char *name, const char *vendor, uint64_t type, cv_tune *out);

/* Row i (from 0) of the built-in table as cv_tune_table gives it, for
 * running every row's parameters on the present device (tests/test-rows);
 * 0 past the last row. */
int cv_tune_table_row(int i, cv_tune *out);

/* 1 if a and b hold the same kernel parameters (entry, source and warning
 * aside). */
int cv_tune_same_params(const cv_tune *a, const cv_tune *b);

/* Check every field's range; CV_ERR_FORMAT naming the field otherwise. */
cv_status cv_tune_validate(const cv_tune *t);

/* "-DCV_CONV_V=16 -DCV_CONV_R3=4 ..." for the OpenCL build. */
void cv_tune_build_opts(const cv_tune *t, char *buf, size_t n);

/* The cache directory (program binaries, wisdom): dir if not NULL or "",
 * else $CV_CACHE_DIR, $XDG_CACHE_HOME/cosmovae, ~/.cache/cosmovae; buf is
 * "" when there is none ($HOME unset). */
void cv_cache_dir(const char *dir, char *buf, size_t n);

/* mkdir -p: 0, or -1 with errno. */
int cv_mkdir_p(const char *path);

/* The wisdom file of a device: <dir>/wisdom-<name>.txt with every
 * character of the name outside [A-Za-z0-9._-] replaced by '_'.  dir NULL
 * means the default cache directory (see above); buf is "" when there is
 * none ($HOME unset). */
void cv_tune_wisdom_path(const char *dir, const char *device_name, char *buf, size_t n);

/* Read wisdom for device_name from path over *t (which holds the table's
 * values).  CV_OK: applied (t->source = path).  CV_ERR_IO: no such file
 * (t untouched).  CV_ERR_FORMAT: unusable, with "path:line: what" in
 * cv_last_error(); t is untouched then. */
cv_status cv_tune_read(const char *path, const char *device_name, cv_tune *t);

/* Write t as wisdom for the device, atomically (temporary file in the same
 * directory, then rename; the directory is created).  `note` (may be
 * NULL) goes into a comment line, e.g. the measurement summary. */
cv_status cv_tune_write(const char *path, const char *device_name, const char *driver, const cv_tune *t,
                        const char *note);

/* Human-readable listing of t (for cosmovae-info). */
void cv_tune_print(FILE *f, const cv_tune *t);

/* The algorithm the rules pick for one convolution (CV_TUNE_*). */
int cv_tune_conv_algo(const cv_tune *t, int op, int k, int64_t hw, int64_t cikk, int64_t co);
/* "direct", "gemm", "vec" for CV_TUNE_DIRECT, _GEMM, _VEC ("?" otherwise). */
const char *cv_tune_algo_name(int algo);


#endif
