/* cv_cli.h -- what every cosmovae program shares on its command line:
 * --help/--version, option parsing with values checked and named in
 * errors, exit codes (0 ok, 1 failure, 2 usage), `program: file: what`
 * messages, a progress line with rate and ETA, and atomic output files.
 *
 * This is the program side of the library: these functions may exit (the
 * rest of libcosmovae never does). */
#ifndef CV_CLI_H
#define CV_CLI_H

#include "cv.h"

void cv_cli_init(const char *prog, const char *usage);
const char *cv_cli_prog(void);
/* --help / --version: print and exit 0.  Returns 0 if `a` is neither. */
int  cv_cli_common(const char *a);
/* "prog: message\nTry 'prog --help' for more information." and exit 2. */
_Noreturn void cv_cli_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* "prog: [what: ]cv_last_error()" and exit 1. */
_Noreturn void cv_cli_fail(cv_status st, const char *what);
/* Run hook(status) in cv_cli_usage_error and cv_cli_fail after the message
 * and before exit(status) -- e.g. an MPI program ends the whole job there,
 * so that no other rank waits for this one.  NULL: none. */
void cv_cli_set_exit_hook(void (*hook)(int status));
/* "prog: message" to stderr (no exit). */
void cv_cli_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Match `name` (e.g. "--epochs") at argv[*i] as "--epochs N" or
 * "--epochs=N"; on a match store the value, advance *i and return 1.
 * A missing or malformed value is a usage error naming the option. */
int cv_cli_opt_str(int argc, char **argv, int *i, const char *name, const char **val);
int cv_cli_opt_long(int argc, char **argv, int *i, const char *name, long lo, long hi, long *val);
int cv_cli_opt_double(int argc, char **argv, int *i, const char *name, double lo, double hi, double *val);

/* Progress on stderr: a bar with rate and ETA on a terminal, a line every
 * few seconds otherwise; nothing when quiet. */
typedef struct cv_progress {
    const char *what;       /* "training", "importing" */
    const char *unit;       /* "maps" */
    int64_t     total;
    double      t0, t_last;
    double      limit;      /* wall-time budget in seconds (0: none); caps the ETA */
    int         tty, quiet;
    int         shown;      /* lines printed so far */
} cv_progress;
void cv_progress_begin(cv_progress *p, const char *what, const char *unit, int64_t total, int quiet);
void cv_progress_update(cv_progress *p, int64_t done, const char *extra);
void cv_progress_end(cv_progress *p, int64_t done);
double cv_now(void);       /* monotonic seconds */

/* The command line as one string (for a file's `history` attribute). */
void cv_cli_history(int argc, char **argv, char *buf, size_t n);

/* An OpenCL context on `device` (NULL: $CV_DEVICE or the default); an
 * unknown device is a usage error listing the devices (exit 2), any other
 * failure exits 1.  cv_cli_ctx_profiled also times every kernel. */
struct cv_ctx;
struct cv_ctx *cv_cli_ctx(const char *device);
struct cv_ctx *cv_cli_ctx_profiled(const char *device, int profile);

/* Atomic output: write to "<path>.tmp.<pid>", then rename on success.
 * cv_out_tmpname fills buf with the temporary name. */
void      cv_out_tmpname(const char *path, char *buf, size_t n);
cv_status cv_out_commit(const char *tmp, const char *path);   /* rename */
void      cv_out_abort(const char *tmp);                      /* remove */

#endif
