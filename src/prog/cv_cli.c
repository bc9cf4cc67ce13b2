/* cv_cli.c -- command-line conventions shared by every program (see
 * cv_cli.h).  Invariant: only these functions and main() exit. */
#include "prog/cv_cli.h"
#include "dataset/cv_data.h"
#include "runtime/cv_device.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *cli_prog = "cosmovae";
static const char *cli_usage = "";
static void (*cli_exit_hook)(int status);

void cv_cli_set_exit_hook(void (*hook)(int status)) { cli_exit_hook = hook; }

void cv_cli_init(const char *prog, const char *usage) {
    cli_prog = prog;
    cli_usage = usage;
    cv_hdf5_no_atexit();
}
const char *cv_cli_prog(void) { return cli_prog; }

int cv_cli_common(const char *a) {
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        fputs(cli_usage, stdout);
        printf("\nReport bugs with the output of `cosmovae-info -v`.\n");
        exit(0);
    }
    if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
        printf("%s (cosmovae) %s\n", cli_prog, CV_VERSION);
        exit(0);
    }
    return 0;
}

void cv_cli_usage_error(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", cli_prog);
    if (cli_exit_hook) cli_exit_hook(2);
    exit(2);
}

void cv_cli_fail(cv_status st, const char *what) {
    if (what) fprintf(stderr, "%s: %s: %s\n", cli_prog, what, cv_last_error());
    else fprintf(stderr, "%s: %s\n", cli_prog, cv_last_error());
    (void)st;
    if (cli_exit_hook) cli_exit_hook(1);
    exit(1);
}

void cv_cli_warn(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

int cv_cli_opt_str(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return 0;
    if (a[n] == '=') { *val = a + n + 1; return 1; }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) cv_cli_usage_error("option '%s' requires a value", name);
    *val = argv[++*i];
    return 1;
}

int cv_cli_opt_long(int argc, char **argv, int *i, const char *name, long lo, long hi, long *val) {
    const char *s;
    if (!cv_cli_opt_str(argc, argv, i, name, &s)) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) cv_cli_usage_error("%s: '%s' is not an integer", name, s);
    if (v < lo || v > hi) cv_cli_usage_error("%s: %ld is out of range [%ld, %ld]", name, v, lo, hi);
    *val = v;
    return 1;
}

int cv_cli_opt_double(int argc, char **argv, int *i, const char *name, double lo, double hi, double *val) {
    const char *s;
    if (!cv_cli_opt_str(argc, argv, i, name, &s)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) cv_cli_usage_error("%s: '%s' is not a finite number", name, s);
    if (v < lo || v > hi) cv_cli_usage_error("%s: %g is out of range [%g, %g]", name, v, lo, hi);
    *val = v;
    return 1;
}



void cv_cli_history(int argc, char **argv, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < argc && len + 1 < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? " " : "", argv[i]);
}

cv_ctx *cv_cli_ctx_profiled(const char *device, int profile) {
    cv_ctx *ctx = NULL;
    cv_ctx_opts o = cv_ctx_opts_default();
    o.device = device;
    o.profile = profile;
    cv_status st = cv_ctx_new(&o, &ctx);
    if (st == CV_ERR_NODEVICE) cv_cli_usage_error("--device: %s", cv_last_error());
    if (st != CV_OK) cv_cli_fail(st, NULL);
    return ctx;
}

cv_ctx *cv_cli_ctx(const char *device) { return cv_cli_ctx_profiled(device, 0); }
