/* cv_cli.c -- command-line conventions shared by every program (see
 * cv_cli.h).  Invariant: only these functions and main() exit. */
#include "cv_cli.h"
#include "cv_data.h"
#include "cv_device.h"

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

double cv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void cv_progress_begin(cv_progress *p, const char *what, const char *unit, int64_t total, int quiet) {
    memset(p, 0, sizeof *p);
    p->what = what; p->unit = unit; p->total = total; p->quiet = quiet;
    p->tty = isatty(2);
    p->t0 = p->t_last = cv_now();
}

static void fmt_time(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(b, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, n, "%02ld:%02ld", t / 60, t % 60);
}

void cv_progress_update(cv_progress *p, int64_t done, const char *extra) {
    if (p->quiet) return;
    double now = cv_now();
    /* throttled (on a pipe: a first line after a second, then every 10 s); the last always shows */
    double every = p->tty ? 0.25 : p->shown ? 10.0 : 1.0;
    if (now - p->t_last < every && (p->total <= 0 || done < p->total)) return;
    p->shown++;
    p->t_last = now;
    double el = now - p->t0, rate = el > 0 ? done / el : 0;
    double eta = (p->total > 0 && rate > 0) ? (p->total - done) / rate : NAN;
    if (p->limit > 0 && (!isfinite(eta) || eta > p->limit - el)) eta = p->limit - el > 0 ? p->limit - el : 0;
    char e1[32], e2[32];
    fmt_time(e1, sizeof e1, el); fmt_time(e2, sizeof e2, eta);
    if (p->tty && p->total > 0) {
        int w = 30, f = (int)(w * (double)done / p->total);
        char bar[64];
        for (int k = 0; k < w; k++) bar[k] = k < f ? '#' : '.';
        bar[w] = '\0';
        fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.1f %s/s  %s elapsed, ETA %s  %s\033[K", p->what, bar,
                (long long)done, (long long)p->total, p->unit, rate, p->unit, e1, e2, extra ? extra : "");
    } else if (p->tty) {
        fprintf(stderr, "\r%s %lld %s  %.1f %s/s  %s elapsed, ETA %s  %s\033[K", p->what, (long long)done, p->unit, rate,
                p->unit, e1, e2, extra ? extra : "");
    } else {
        char of[32] = "";
        if (p->total > 0) snprintf(of, sizeof of, "/%lld", (long long)p->total);   /* no total (a time limit): the count */
        fprintf(stderr, "%s: %s: %lld%s %s, %.1f %s/s, %s elapsed, ETA %s %s\n", cli_prog, p->what, (long long)done, of,
                p->unit, rate, p->unit, e1, e2, extra ? extra : "");
    }
}

void cv_progress_end(cv_progress *p, int64_t done) {
    if (p->quiet) return;
    p->t_last = 0;
    if (p->tty) {
        cv_progress_update(p, done, NULL);
        fputc('\n', stderr);
    }
}

void cv_out_tmpname(const char *path, char *buf, size_t n) {
    snprintf(buf, n, "%s.tmp.%ld", path, (long)getpid());
}

cv_status cv_out_commit(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return cv_error(CV_ERR_IO, "%s: cannot rename from %s: %s", path, tmp, strerror(e));
    }
    return CV_OK;
}

void cv_out_abort(const char *tmp) { remove(tmp); }

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
