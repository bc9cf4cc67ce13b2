/* cv_plot.h -- figures as PNG files through PLplot's cairo driver
 * ("pngcairo"): a page of panels (a grid of subpages), colour maps, image
 * panels with their own colour map and colour bar, scatter panels with
 * points coloured by a value and a colour bar, and log-log line plots with
 * +-1 sigma bands.  PLplot draws every axis, label, tick and colour bar.
 *
 * Lifecycle: cv_plot_open -> panels in row-major order -> cv_plot_close,
 * which renames the finished PNG onto its path (nothing is left at the
 * path on failure: cv_plot_abort).  PLplot keeps global state: use one
 * figure at a time, from one thread.  PLplot ends the process on an
 * internal fatal error; cv_plot_open checks beforehand what can be
 * checked (the driver is there, the file can be created). */
#ifndef CV_PLOT_H
#define CV_PLOT_H

#include "runtime/cv.h"

/* ---- colour maps ------------------------------------------------------------ */

enum cv_cmap {
    CV_CMAP_VIRIDIS = 0, CV_CMAP_MAGMA, CV_CMAP_INFERNO, CV_CMAP_CIVIDIS, CV_CMAP_GRAY,
    CV_CMAP_COOLWARM, CV_CMAP_COUNT
};
const char *cv_cmap_name(int cmap);          /* "viridis", ... */
int         cv_cmap_parse(const char *name); /* -1 if unknown */
/* RGB (0..255) at t in [0, 1] (clamped). */
void        cv_cmap_rgb(int cmap, double t, unsigned char rgb[3]);

/* ---- figures ------------------------------------------------------------------ */

typedef struct cv_plot cv_plot;

/* A width x height pixel PNG at `path` with nx columns and ny rows of
 * panels.  Caller ends it with cv_plot_close (or cv_plot_abort). */
cv_status cv_plot_open(const char *path, int width, int height, int nx, int ny, cv_plot **out);
/* Finish the PNG and rename it onto its path; frees p either way. */
cv_status cv_plot_close(cv_plot *p);
void      cv_plot_abort(cv_plot *p);       /* NULL is a no-op; removes the temporary file */
/* Skip to the next panel without drawing (an empty cell of the grid). */
void      cv_plot_skip(cv_plot *p);
/* Text size scale for the following panels (1 = PLplot's default). */
void      cv_plot_text_scale(cv_plot *p, double s);

/* Image panel: img (h, w) row-major, row 0 drawn at the top, mapped
 * linearly from [vmin, vmax] (vmin == vmax: the data range) through cmap,
 * with a colour bar labelled `cbar_label` on the right.  Non-finite pixels
 * are drawn at vmin. */
cv_status cv_plot_image(cv_plot *p, const float *img /* (h, w) */, int h, int w, double vmin, double vmax, int cmap,
                        const char *title, const char *cbar_label);

/* Scatter panel: points (x[i], y[i]) coloured by c[i] through cmap on
 * [cmin, cmax] (equal: the data range), with a colour bar. */
cv_status cv_plot_scatter(cv_plot *p, const float *x, const float *y, const double *c, int64_t n, double cmin, double cmax,
                          int cmap, const char *title, const char *xlabel, const char *ylabel, const char *cbar_label);

/* One curve of a line plot, with an optional band [lo, hi]. */
typedef struct cv_plot_series {
    const double *x, *y;      /* (n) */
    const double *lo, *hi;    /* (n) band, or NULL */
    int           n;
    unsigned char rgb[3];
    int           dashed;     /* 0 solid, 1 dashed */
    const char   *label;      /* legend text, or NULL for none */
} cv_plot_series;

/* Log-log panel of the series (points with x or y <= 0 are left out; the
 * band's lower edge is floored at the panel's bottom), legend bottom left.
 * Axis ranges cover every curve and upper band edge, and lower band edges
 * down to a decade under their curve. */
cv_status cv_plot_loglog(cv_plot *p, const cv_plot_series *s, int n_series, const char *title, const char *xlabel,
                         const char *ylabel);
/* Linear panel of the series (non-finite points left out; a lone point is
 * drawn as a marker), y over [ymin, ymax] when ymin < ymax (curves and
 * bands clipped to it), else the data's range; legend bottom right. */
cv_status cv_plot_lines(cv_plot *p, const cv_plot_series *s, int n_series, const char *title, const char *xlabel,
                        const char *ylabel, double ymin, double ymax);

/* ---- a grid of maps (for generated-map figures) --------------------------------- */

typedef struct cv_plot_panel {
    const char *title;        /* over the panel */
    const char *cbar_label;   /* beside its colour bar */
    int         cmap;
    double      vmin, vmax;   /* equal: the panel's data range */
} cv_plot_panel;

/* One PNG with rows x cols image panels: maps (rows * cols, h, w),
 * panels (rows * cols), each drawn by cv_plot_image; panel_px is the
 * pixel width of one panel (its height follows the map's aspect). */
cv_status cv_plot_maps_png(const char *path, const float *maps, int rows, int cols, int h, int w,
                           const cv_plot_panel *panels, int panel_px);

/* ---- checks ------------------------------------------------------------------------ */

/* Width and height of a PNG file (libpng); CV_ERR_FORMAT if it does not decode. */
cv_status cv_plot_png_size(const char *path, int *width, int *height);

#endif
