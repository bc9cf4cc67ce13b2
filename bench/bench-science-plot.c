/* bench-science-plot.c -- the figure of bench-science.sh: R^2 per
 * parameter against training time, the latent code beside the classical
 * baseline; the probed group's active units against time; and the ratio
 * of generated to real mean power spectra, auto and cross, with the 10%
 * band.  Reads the CSVs the script writes (and cosmovae-pk's pk.csv);
 * plots through the project's PLplot layer. */
#include "prog/cv_cli.h"
#include "analysis/cv_plot.h"

#include <math.h>
#include <string.h>

static const char usage[] =
    "Usage: bench-science-plot R2.csv DIAG.csv PK.csv -o FIG.png\n"
    "R2.csv: minutes,param,r2,r2_lo68,r2_hi68,base_r2,base_lo68,base_hi68[,steps,pool_r2]\n"
    "DIAG.csv: minutes,group,res,numbers,active,kl\n"
    "PK.csv: cosmovae-pk's pk.csv of real (A) and generated (B) maps\n";

enum { MAXR = 4096, MAXP = 6, MAXS = 6, MAXK = 512 };

typedef struct { char name[32]; double t[64], r[64], lo[64], hi[64], b[64], blo[64], bhi[64], pool[64]; int n; } param_rows;

static FILE *open_csv(const char *path, char *line, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "bench-science-plot: %s: cannot open\n", path); exit(1); }
    if (!fgets(line, (int)n, f)) { fprintf(stderr, "bench-science-plot: %s: empty\n", path); exit(1); }
    return f;
}

static double num(const char *s) { return strcmp(s, "nan") && strcmp(s, "NaN") ? strtod(s, NULL) : NAN; }

/* Split a CSV line in place into at most max fields. */
static int fields(char *line, char **f, int max) {
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *out = NULL, *in[3] = { NULL, NULL, NULL };
    int n_in = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--help")) { fputs(usage, stdout); return 0; }
        else if (n_in < 3 && argv[i][0] != '-') in[n_in++] = argv[i];
        else { fputs(usage, stderr); return 2; }
    }
    if (!out || n_in != 3) { fputs(usage, stderr); return 2; }
    char line[4096], *f[16];
    /* R^2 per parameter and time */
    static param_rows P[MAXP];
    int np = 0;
    FILE *fp = open_csv(in[0], line, sizeof line);
    while (fgets(line, sizeof line, fp)) {
        int nf = fields(line, f, 16);
        if (nf < 8) continue;
        int k = 0;
        while (k < np && strcmp(P[k].name, f[1])) k++;
        if (k == np) { if (np == MAXP) continue; snprintf(P[np++].name, sizeof P[0].name, "%s", f[1]); }
        param_rows *r = &P[k];
        if (r->n == 64) continue;
        r->t[r->n] = num(f[0]); r->r[r->n] = num(f[2]); r->lo[r->n] = num(f[3]); r->hi[r->n] = num(f[4]);
        r->b[r->n] = num(f[5]); r->blo[r->n] = num(f[6]); r->bhi[r->n] = num(f[7]);
        r->pool[r->n] = nf >= 10 ? num(f[9]) : NAN;     /* the pooled code of every group, when probed */
        r->n++;
    }
    fclose(fp);
    /* the probed group (group 0) over time */
    double dt[64], da[64];
    int nd = 0;
    fp = open_csv(in[1], line, sizeof line);
    while (fgets(line, sizeof line, fp) && nd < 64) {
        if (fields(line, f, 16) < 6 || strcmp(f[1], "0")) continue;
        dt[nd] = num(f[0]); da[nd] = 100.0 * num(f[4]) / num(f[3]);
        nd++;
    }
    fclose(fp);
    /* P(k) ratios */
    static char sname[MAXS][32];
    static double kk[MAXS][MAXK], ratio[MAXS][MAXK];
    int ns = 0, nk[MAXS] = { 0 };
    fp = open_csv(in[2], line, sizeof line);
    while (fgets(line, sizeof line, fp)) {
        if (fields(line, f, 16) < 7) continue;
        int k = 0;
        while (k < ns && strcmp(sname[k], f[0])) k++;
        if (k == ns) { if (ns == MAXS) continue; snprintf(sname[ns++], sizeof sname[0], "%s", f[0]); }
        if (nk[k] == MAXK) continue;
        double a = num(f[3]), b = num(f[5]);
        kk[k][nk[k]] = num(f[1]);
        /* cross-spectra may change sign: the ratio of the means is still
           what the agreement scale tests */
        ratio[k][nk[k]] = a != 0 ? b / a : NAN;
        nk[k]++;
    }
    fclose(fp);
    if (np == 0 || ns == 0) { fprintf(stderr, "bench-science-plot: nothing to plot\n"); return 1; }

    cv_plot *p = NULL;
    cv_status st = cv_plot_open(out, 1500, 1350, 3, 3, &p);
    if (st != CV_OK) { fprintf(stderr, "bench-science-plot: %s\n", cv_last_error()); return 1; }
    cv_plot_text_scale(p, 1.1);
    const unsigned char blue[3] = { 31, 119, 180 }, orange[3] = { 230, 120, 20 }, gray[3] = { 90, 90, 90 };
    for (int k = 0; k < 6 && st == CV_OK; k++) {
        if (k >= np) { cv_plot_skip(p); continue; }
        param_rows *r = &P[k];
        cv_plot_series s[3] = {
            { r->t, r->r, r->lo, r->hi, r->n, { blue[0], blue[1], blue[2] }, 0, "latent code (4x4 group)" },
            { r->t, r->b, r->blo, r->bhi, r->n, { orange[0], orange[1], orange[2] }, 1, "classical baseline" },
            { r->t, r->pool, NULL, NULL, r->n, { 44, 160, 44 }, 0, "pooled, all groups" },
        };
        int ns3 = isfinite(r->pool[0]) ? 3 : 2;
        char title[64];
        snprintf(title, sizeof title, "%.24s: test R#u2#d (68%% bootstrap)", r->name);
        st = cv_plot_lines(p, s, ns3, title, "training time (minutes)", "R#u2#d", -0.5, 1.0);
    }
    if (st == CV_OK && nd > 0) {
        cv_plot_series s[1] = { { dt, da, NULL, NULL, nd, { blue[0], blue[1], blue[2] }, 0, "active units (%)" } };
        st = cv_plot_lines(p, s, 1, "the probed group: active units", "training time (minutes)", "% of 256 dimensions", 0, 100);
    } else if (st == CV_OK) cv_plot_skip(p);
    for (int part = 0; part < 2 && st == CV_OK; part++) {    /* auto, then cross */
        cv_plot_series s[MAXS];
        int n = 0;
        static const unsigned char col[3][3] = { { 31, 119, 180 }, { 44, 160, 44 }, { 214, 39, 40 } };
        static double band_x[2], lo_y[2] = { 0.9, 0.9 }, hi_y[2] = { 1.1, 1.1 };
        for (int k = 0; k < ns; k++) {
            int cross = strchr(sname[k], '-') != NULL;
            if (cross != part || n == 3) continue;
            s[n] = (cv_plot_series){ kk[k], ratio[k], NULL, NULL, nk[k], { col[n][0], col[n][1], col[n][2] }, 0, sname[k] };
            band_x[0] = kk[k][0]; band_x[1] = kk[k][nk[k] - 1];
            n++;
        }
        if (n == 0) { cv_plot_skip(p); continue; }
        s[n++] = (cv_plot_series){ band_x, (double[]){ 1, 1 }, lo_y, hi_y, 2, { gray[0], gray[1], gray[2] }, 1, "+-10%" };
        st = cv_plot_lines(p, s, n, part ? "cross-spectra: generated / real" : "auto-spectra: generated / real",
                           "k (h/Mpc)", "P#dgen#u / P#dreal#u", 0, 2);
    }
    if (st != CV_OK) { fprintf(stderr, "bench-science-plot: %s\n", cv_last_error()); cv_plot_abort(p); return 1; }
    if ((st = cv_plot_close(p)) != CV_OK) { fprintf(stderr, "bench-science-plot: %s\n", cv_last_error()); return 1; }
    return 0;
}
