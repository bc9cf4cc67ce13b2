/* cv_progress.c -- the progress line of long work (see cv_progress.h).
 * Invariant: writes to stderr only, never more often than the throttle. */
#include "prog/cv_progress.h"
#include "prog/cv_cli.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
        fprintf(stderr, "%s: %s: %lld%s %s, %.1f %s/s, %s elapsed, ETA %s %s\n", cv_cli_prog(), p->what, (long long)done, of,
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
