/* cv_mapfig.c -- map figures through PLplot's pngcairo driver: images with
 * plimagefr, colour maps with plscmap1l, colour bars with plcolorbar.
 * Invariant: PLplot keeps global state, so a figure is begun and ended
 * within one call (plinit .. plend1) and the stream is our own (plmkstrm). */
#include "cv_mapfig.h"
#include "cv_cli.h"

#include <math.h>
#include <plplot.h>
#include <string.h>

/* colour maps as (position, r, g, b) control points */
typedef struct cmap { int n; double pos[6], r[6], g[6], b[6]; } cmap;

static const cmap cmap_gas = { 5, { 0, .25, .5, .75, 1 },        /* inferno-like: dark -> red -> yellow */
                               { .00, .34, .73, .98, .99 }, { .00, .06, .21, .55, 1.0 }, { .02, .43, .33, .04, .64 } };
static const cmap cmap_hi  = { 5, { 0, .25, .5, .75, 1 },        /* viridis-like */
                               { .27, .23, .13, .37, .99 }, { .00, .32, .57, .79, .91 }, { .33, .55, .55, .38, .14 } };
static const cmap cmap_b   = { 5, { 0, .25, .5, .75, 1 },        /* magma-like blue -> pink -> white */
                               { .00, .23, .55, .87, .99 }, { .00, .06, .16, .33, .99 }, { .02, .44, .51, .44, .75 } };

static const cmap *cmap_for(const char *field) {
    if (!strcmp(field, "HI")) return &cmap_hi;
    if (!strcmp(field, "B")) return &cmap_b;
    return &cmap_gas;
}

static void set_cmap(const cmap *m) {
    PLFLT pos[6], r[6], g[6], b[6];
    for (int i = 0; i < m->n; i++) { pos[i] = m->pos[i]; r[i] = m->r[i]; g[i] = m->g[i]; b[i] = m->b[i]; }
    plscmap1n(256);
    plscmap1l(1, m->n, pos, r, g, b, NULL);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cv_status cv_mapfig_write(const char *path, const char *title, int n_rows, const char *const *row_labels,
                          const cv_norm *norm, int size, const float *const *rows) {
    int C = norm->n_chan, S = size;
    int64_t hw = (int64_t)S * S;
    char tmp[4200];
    cv_out_tmpname(path, tmp, sizeof tmp);
    PLFLT **img = NULL;
    double *vals = malloc((size_t)n_rows * hw * sizeof *vals);
    plAlloc2dGrid(&img, S, S);
    if (!vals || !img) { free(vals); if (img) plFree2dGrid(img, S, S); return cv_error(CV_ERR_NOMEM, "out of memory"); }

    int cur;
    plgstrm(&cur);
    PLINT strm;
    plmkstrm(&strm);
    plsdev("pngcairo");
    plsfnam(tmp);
    int panel = 230;
    plspage(0, 0, 120 + C * (panel + 110), 60 + n_rows * (panel + 20), 0, 0);
    plscolbg(255, 255, 255);
    plinit();
    plscol0(1, 0, 0, 0);
    plcol0(1);
    pladv(0);
    plvpor(0, 1, 0, 1);
    plwind(0, 1, 0, 1);
    plschr(0, 1.0);
    if (title) plmtex("t", -1.5, 0.5, 0.5, title);
    double top = 1.0 - 60.0 / (60 + n_rows * (panel + 20)), rowh = top / n_rows;
    double colw = (1.0 - 120.0 / (120 + C * (panel + 110))) / C, left = 120.0 / (120 + C * (panel + 110));
    for (int c = 0; c < C; c++) {
        int lg = !strcmp(norm->transform[c], "log10");
        int64_t nv = 0;
        for (int r = 0; r < n_rows; r++)
            for (int64_t i = 0; i < hw; i++) {
                double v = rows[r][c * hw + i];
                v = lg ? (v > 0 ? log10(v) : NAN) : v;
                if (isfinite(v)) vals[nv++] = v;
            }
        double lo = 0, hi = 1;
        if (nv) {
            qsort(vals, (size_t)nv, sizeof *vals, cmp_d);
            lo = vals[(int64_t)(0.005 * (nv - 1))];
            hi = vals[(int64_t)(0.995 * (nv - 1))];
        }
        if (!(hi > lo)) hi = lo + 1;
        set_cmap(cmap_for(norm->name[c]));
        for (int r = 0; r < n_rows; r++) {
            for (int x = 0; x < S; x++)
                for (int y = 0; y < S; y++) {
                    double v = rows[r][c * hw + (int64_t)y * S + x];
                    v = lg ? (v > 0 ? log10(v) : lo) : v;
                    img[x][y] = isfinite(v) ? v : lo;
                }
            double x0 = left + c * colw, y1 = top - r * rowh;
            double pw = colw * panel / (panel + 110.0), ph = rowh * panel / (panel + 20.0);
            plvpor(x0, x0 + pw, y1 - ph, y1);
            plwind(0, S, 0, S);
            plimagefr((PLFLT_MATRIX)img, S, S, 0, S, 0, S, lo, hi, lo, hi, NULL, NULL);
            plcol0(1);
            plbox("bc", 0, 0, "bc", 0, 0);
            if (r == 0) {
                char lab[96];
                snprintf(lab, sizeof lab, "%s%s%s", lg ? "log#d10#u " : "", norm->name[c], "");
                plmtex("t", 0.6, 0.5, 0.5, lab);
            }
            if (c == 0 && row_labels && row_labels[r]) plmtex("l", 1.2, 0.5, 0.5, row_labels[r]);
        }
        /* one colour bar per column, beside the first row */
        plvpor(left + c * colw, left + c * colw + colw * panel / (panel + 110.0), top - rowh * n_rows, top);
        plwind(0, 1, 0, 1);
        PLFLT cw, ch;
        PLINT n_values[1] = { 2 };
        PLFLT vv[2] = { lo, hi };
        const PLFLT *values[1] = { vv };
        const char *axis_opts[1] = { "bcvtm" };
        PLFLT ticks[1] = { 0 };
        PLINT sub_ticks[1] = { 0 };
        PLINT label_opts[1] = { PL_COLORBAR_LABEL_RIGHT };
        char ul[96];
        snprintf(ul, sizeof ul, "%s", norm->units[c]);
        const char *labels[1] = { ul };
        plcolorbar(&cw, &ch, PL_COLORBAR_IMAGE, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.03, 0.0, 0.06,
                   0.9, 0, 1, 1, 0.0, 0.0, 0, 0.0, 0, label_opts, labels,
                   1, axis_opts, ticks, sub_ticks, n_values, values);
    }
    plend1();
    plsstrm(cur);
    plFree2dGrid(img, S, S);
    free(vals);
    FILE *f = fopen(tmp, "rb");
    if (!f) return cv_error(CV_ERR_IO, "%s: PLplot wrote no image (is plplot-driver-cairo installed?)", path);
    fclose(f);
    return cv_out_commit(tmp, path);
}

cv_status cv_plot_real_vs_generated(const char *path, const cv_norm *norm, int size, const float *real,
                                    const float *gen, int n) {
    const float *rows[32];
    const char *labels[32];
    char lab[32][32];
    int64_t msz = (int64_t)norm->n_chan * size * size;
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) {
        rows[i] = gen + i * msz;
        snprintf(lab[i], sizeof lab[i], "generated %d", i + 1);
        labels[i] = lab[i];
        rows[n + i] = real + i * msz;
        snprintf(lab[n + i], sizeof lab[n + i], "real %d", i + 1);
        labels[n + i] = lab[n + i];
    }
    return cv_mapfig_write(path, "generated (top) and real test maps (bottom)", 2 * n, labels, norm, size, rows);
}
