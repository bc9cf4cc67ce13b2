/* cv_mapfig.c -- map figures (generated and real maps) drawn through
 * cv_plot's image panels: log10 of each field, a colour map per field, and
 * the colour range shared down each column so that rows compare.
 * Invariant: values outside the shared range are clamped to it, so no
 * pixel is ever left undrawn. */
#include "analysis/cv_mapfig.h"
#include "analysis/cv_plot.h"

#include <math.h>
#include <string.h>

static int cmap_for(const char *field) {
    if (!strcmp(field, "HI")) return CV_CMAP_VIRIDIS;
    if (!strcmp(field, "B")) return CV_CMAP_MAGMA;
    return CV_CMAP_INFERNO;
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

cv_status cv_mapfig_write(const char *path, const char *title, int n_rows, const char *const *row_labels,
                          const cv_norm *norm, int size, const float *const *rows) {
    int C = norm->n_chan;
    int64_t hw = (int64_t)size * size;
    float *maps = malloc((size_t)(n_rows * C) * hw * sizeof *maps);
    float *col = malloc((size_t)n_rows * hw * sizeof *col);
    cv_plot_panel *pan = calloc((size_t)(n_rows * C), sizeof *pan);
    char (*titles)[128] = calloc((size_t)(n_rows * C), sizeof *titles);
    char (*cbar)[96] = calloc((size_t)C, sizeof *cbar);
    cv_status st = CV_OK;
    if (!maps || !col || !pan || !titles || !cbar) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto done; }
    (void)title;
    for (int c = 0; c < C; c++) {
        int lg = !strcmp(norm->transform[c], "log10");
        int64_t nv = 0;
        for (int r = 0; r < n_rows; r++) {
            float *dst = maps + ((int64_t)r * C + c) * hw;
            for (int64_t i = 0; i < hw; i++) {
                double v = rows[r][c * hw + i];
                v = lg ? (v > 0 ? log10(v) : NAN) : v;
                dst[i] = (float)v;
                if (isfinite(v)) col[nv++] = (float)v;
            }
        }
        double lo = 0, hi = 1;
        if (nv) {
            qsort(col, (size_t)nv, sizeof *col, cmp_f);
            lo = col[(int64_t)(0.005 * (nv - 1))];
            hi = col[(int64_t)(0.995 * (nv - 1))];
        }
        if (!(hi > lo)) hi = lo + 1;
        snprintf(cbar[c], sizeof cbar[c], "%s%s", lg ? "log#d10#u " : "", norm->name[c]);
        for (int r = 0; r < n_rows; r++) {
            float *dst = maps + ((int64_t)r * C + c) * hw;
            for (int64_t i = 0; i < hw; i++) dst[i] = !isfinite(dst[i]) || dst[i] < lo ? (float)lo : dst[i] > hi ? (float)hi : dst[i];
            cv_plot_panel *p = &pan[r * C + c];
            snprintf(titles[r * C + c], sizeof titles[0], "%s%s%s", row_labels && row_labels[r] ? row_labels[r] : "",
                     row_labels && row_labels[r] ? ": " : "", norm->name[c]);
            p->title = titles[r * C + c];
            p->cbar_label = cbar[c];
            p->cmap = cmap_for(norm->name[c]);
            p->vmin = lo;
            p->vmax = hi;
        }
    }
    st = cv_plot_maps_png(path, maps, n_rows, C, size, size, pan, 300);
done:
    free(maps); free(col); free(pan); free(titles); free(cbar);
    return st;
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
