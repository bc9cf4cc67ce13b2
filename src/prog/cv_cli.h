/* cv_cli.h -- what every cosmovae program shares on its command line:
 * --help/--version, option parsing with values checked and named in
 * errors, exit codes (0 ok, 1 failure, 2 usage), `program: file: what`
 * messages, (with cv_progress.h) a progress line with rate and ETA, and
 * (runtime/cv_out.h) atomic output files.
 *
 * This is the program side of the library: these functions may exit (the
 * rest of libcosmovae never does). */
#ifndef CV_CLI_H
#define CV_CLI_H

#include "runtime/cv.h"
#include "runtime/cv_out.h"
#include "prog/cv_progress.h"

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


/* The command line as one string (for a file's `history` attribute). */
void cv_cli_history(int argc, char **argv, char *buf, size_t n);

/* An OpenCL context on `device` (NULL: $CV_DEVICE or the default); an
 * unknown device is a usage error listing the devices (exit 2), any other
 * failure exits 1.  cv_cli_ctx_profiled also times every kernel. */
struct cv_ctx;
struct cv_ctx *cv_cli_ctx(const char *device);
struct cv_ctx *cv_cli_ctx_profiled(const char *device, int profile);


#endif
