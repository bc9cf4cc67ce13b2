/* cv_plot.c -- PLplot figure helpers (see cv_plot.h): colour maps as
 * anchor tables (matplotlib's perceptual maps sampled at 9 points,
 * interpolated linearly in RGB), one PLplot stream per figure with the
 * pngcairo driver writing to a temporary name, panels in subpages.
 * Invariant: every panel function leaves PLplot's colour, line style and
 * width as it found them (cmap0 index 1, solid, width 1). */
#include "analysis/cv_plot.h"
#include "runtime/cv_out.h"

#include <math.h>
#include <plplot/plplot.h>
#include <png.h>
#include <string.h>

/* ---- colour maps ------------------------------------------------------------------- */

typedef struct cmap_def { const char *name; int n; unsigned char rgb[9][3]; } cmap_def;

static const cmap_def cmaps[CV_CMAP_COUNT] = {
    { "viridis", 9, { {68, 1, 84}, {71, 44, 122}, {59, 81, 139}, {44, 113, 142}, {33, 144, 141},
                      {39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37} } },
    { "magma",   9, { {0, 0, 4}, {28, 16, 68}, {79, 18, 123}, {129, 37, 129}, {181, 54, 122},
                      {229, 80, 100}, {251, 135, 97}, {254, 194, 135}, {252, 253, 191} } },
    { "inferno", 9, { {0, 0, 4}, {31, 12, 72}, {85, 15, 109}, {136, 34, 106}, {186, 54, 85},
                      {227, 89, 51}, {249, 140, 10}, {249, 201, 50}, {252, 255, 164} } },
    { "cividis", 5, { {0, 34, 78}, {64, 77, 107}, {124, 123, 120}, {188, 175, 111}, {254, 232, 56} } },
    { "gray",    2, { {0, 0, 0}, {255, 255, 255} } },
    { "coolwarm", 5, { {59, 76, 192}, {141, 176, 254}, {221, 221, 221}, {244, 154, 123}, {180, 4, 38} } },
};

const char *cv_cmap_name(int cmap) { return cmap >= 0 && cmap < CV_CMAP_COUNT ? cmaps[cmap].name : "?"; }

int cv_cmap_parse(const char *name) {
    for (int i = 0; i < CV_CMAP_COUNT; i++)
        if (!strcmp(name, cmaps[i].name)) return i;
    return -1;
}

void cv_cmap_rgb(int cmap, double t, unsigned char rgb[3]) {
    const cmap_def *m = &cmaps[cmap >= 0 && cmap < CV_CMAP_COUNT ? cmap : 0];
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double u = t * (m->n - 1);
    int i = (int)u;
    if (i >= m->n - 1) i = m->n - 2;
    double f = u - i;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)lround(m->rgb[i][c] + f * (m->rgb[i + 1][c] - m->rgb[i][c]));
}

static void set_cmap1(int cmap) {
    PLINT r[256], g[256], b[256];
    for (int i = 0; i < 256; i++) {
        unsigned char c[3];
        cv_cmap_rgb(cmap, i / 255.0, c);
        r[i] = c[0]; g[i] = c[1]; b[i] = c[2];
    }
    plscmap1n(256);
    plscmap1(r, g, b, 256);
}

/* ---- figures ------------------------------------------------------------------------ */

struct cv_plot {
    char    path[4096], tmp[4200];
    PLINT   strm, prev;
    int     width, height, nx, ny;
    int     cell;           /* panels started so far */
    double  text;
    double  cx0, cx1, cy0, cy1;   /* the current cell, normalized page coordinates */
};

static int have_pngcairo(void) {
    enum { MAXDEV = 256 };
    const char *menu[MAXDEV], *dev[MAXDEV];      /* plgDevs fills caller arrays of n entries */
    const char **pm = menu, **pd = dev;
    int n = MAXDEV, ok = 0;
    plgDevs(&pm, &pd, &n);
    for (int i = 0; i < n && i < MAXDEV; i++) ok |= dev[i] && !strcmp(dev[i], "pngcairo");
    return ok;
}

cv_status cv_plot_open(const char *path, int width, int height, int nx, int ny, cv_plot **out) {
    *out = NULL;
    if (width < 16 || height < 16 || width > 20000 || height > 20000 || nx < 1 || ny < 1 || nx > 64 || ny > 64)
        return cv_error(CV_ERR_ARG, "%s: figure of %d x %d pixels with %d x %d panels", path, width, height, nx, ny);
    if (!have_pngcairo())
        return cv_error(CV_ERR_IO, "%s: PLplot has no pngcairo driver (Debian package: plplot-driver-cairo)", path);
    cv_plot *p = calloc(1, sizeof *p);
    if (!p) return cv_error(CV_ERR_NOMEM, "%s: figure", path);
    snprintf(p->path, sizeof p->path, "%s", path);
    cv_out_tmpname(path, p->tmp, sizeof p->tmp);
    FILE *f = fopen(p->tmp, "wb");            /* PLplot would prompt or exit on failure */
    if (!f) {
        free(p);
        return cv_error(CV_ERR_IO, "%s: cannot create the figure file", path);
    }
    fclose(f);
    p->width = width; p->height = height; p->nx = nx; p->ny = ny; p->text = 1;
    plgstrm(&p->prev);
    plmkstrm(&p->strm);
    plsdev("pngcairo");
    plsfnam(p->tmp);
    plspage(0, 0, width, height, 0, 0);
    plscolbg(255, 255, 255);
    plscol0(1, 0, 0, 0);                      /* axes and text in black */
    plinit();
    plfontld(1);
    pladv(0);
    *out = p;
    return CV_OK;
}

static void end_stream(cv_plot *p) {
    plsstrm(p->strm);
    plend1();
    plsstrm(p->prev);
}

cv_status cv_plot_close(cv_plot *p) {
    end_stream(p);
    int w = 0, h = 0;
    cv_status st = cv_plot_png_size(p->tmp, &w, &h);
    if (st == CV_OK && (w != p->width || h != p->height))
        st = cv_error(CV_ERR_IO, "%s: the PNG is %d x %d pixels, not %d x %d", p->path, w, h, p->width, p->height);
    if (st == CV_OK) st = cv_out_commit(p->tmp, p->path);
    else cv_out_abort(p->tmp);
    free(p);
    return st;
}

void cv_plot_abort(cv_plot *p) {
    if (!p) return;
    end_stream(p);
    cv_out_abort(p->tmp);
    free(p);
}

/* Panels are cells of one page, addressed by their own viewports rather
 * than PLplot subpages: plcolorbar places bars right only in the first
 * subpage column. */
void cv_plot_skip(cv_plot *p) { p->cell++; }
void cv_plot_text_scale(cv_plot *p, double s) { p->text = s > 0 ? s : 1; }

static void panel_begin(cv_plot *p) {
    plsstrm(p->strm);
    int i = p->cell++ % (p->nx * p->ny), cx = i % p->nx, cy = i / p->nx;
    p->cx0 = (double)cx / p->nx; p->cx1 = (double)(cx + 1) / p->nx;
    p->cy0 = 1 - (double)(cy + 1) / p->ny; p->cy1 = 1 - (double)cy / p->ny;
    /* characters scaled to the cell size, as subpages would */
    double m = p->nx > p->ny ? p->nx : p->ny;
    plschr(0, p->text * (m > 1 ? 1.1 / sqrt(m) : 1.0));
    plcol0(1);
}

/* Viewport at fractions of the current cell. */
static void cell_vpor(cv_plot *p, double x0, double x1, double y0, double y1) {
    double w = p->cx1 - p->cx0, h = p->cy1 - p->cy0;
    plvpor(p->cx0 + x0 * w, p->cx0 + x1 * w, p->cy0 + y0 * h, p->cy0 + y1 * h);
}

/* The largest viewport of aspect (height / width in pixels) `asp` inside
 * the given fractions of the cell, centred. */
static void cell_vpas(cv_plot *p, double x0, double x1, double y0, double y1, double asp) {
    double W = (x1 - x0) * (p->cx1 - p->cx0) * p->width, H = (y1 - y0) * (p->cy1 - p->cy0) * p->height;
    if (H / W > asp) {
        double dh = (1 - W * asp / H) * (y1 - y0) / 2;
        y0 += dh; y1 -= dh;
    } else {
        double dw = (1 - H / asp / W) * (x1 - x0) / 2;
        x0 += dw; x1 -= dw;
    }
    cell_vpor(p, x0, x1, y0, y1);
}

static void colorbar(double vmin, double vmax, const char *label) {
    PLFLT w, h, v[2] = { vmin, vmax };
    const PLFLT *values[1] = { v };
    PLINT n_values[1] = { 2 }, label_opts[1] = { PL_COLORBAR_LABEL_RIGHT }, sub[1] = { 0 };
    PLFLT ticks[1] = { 0 };
    const char *labels[1] = { label ? label : "" };
    const char *axis[1] = { "bcvtm" };
    plcolorbar(&w, &h, PL_COLORBAR_GRADIENT | PL_COLORBAR_CAP_NONE, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT,
               0.03, 0.0, 0.04, 1.0, 0, 1, 1, 0, 0, 0, 0, label ? 1 : 0, label_opts, labels, 1, axis, ticks, sub, n_values, values);
}

static void finite_range(const float *x, int64_t n, double *lo, double *hi) {
    *lo = INFINITY; *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) { *lo = fmin(*lo, x[i]); *hi = fmax(*hi, x[i]); }
    if (!isfinite(*lo)) { *lo = 0; *hi = 1; }
    if (*hi == *lo) { *lo -= 0.5; *hi += 0.5; }
}

cv_status cv_plot_image(cv_plot *p, const float *img, int h, int w, double vmin, double vmax, int cmap, const char *title,
                        const char *cbar_label) {
    if (h < 1 || w < 1) return cv_error(CV_ERR_ARG, "image panel of %d x %d pixels", h, w);
    if (vmin == vmax) finite_range(img, (int64_t)h * w, &vmin, &vmax);
    if (!(vmax > vmin)) return cv_error(CV_ERR_ARG, "image panel '%s': range [%g, %g]", title ? title : "", vmin, vmax);
    PLFLT **grid = NULL;
    plAlloc2dGrid(&grid, w, h);
    if (!grid) return cv_error(CV_ERR_NOMEM, "image panel of %d x %d pixels", h, w);
    for (int x = 0; x < w; x++)
        for (int y = 0; y < h; y++) {
            float v = img[(size_t)(h - 1 - y) * w + x];               /* row 0 at the top */
            grid[x][y] = isfinite(v) ? fmin(fmax(v, vmin), vmax) : vmin;
        }
    panel_begin(p);
    set_cmap1(cmap);
    cell_vpas(p, 0.04, 0.66, 0.05, 0.88, (double)h / w);
    plwind(0, w, 0, h);
    plimagefr((const PLFLT *const *)grid, w, h, 0, w, 0, h, vmin, vmax, vmin, vmax, NULL, NULL);
    plbox("bc", 0, 0, "bc", 0, 0);
    if (title) plmtex("t", 1.3, 0.5, 0.5, title);
    colorbar(vmin, vmax, cbar_label);
    plFree2dGrid(grid, w, h);
    return CV_OK;
}

cv_status cv_plot_scatter(cv_plot *p, const float *x, const float *y, const double *c, int64_t n, double cmin, double cmax,
                          int cmap, const char *title, const char *xlabel, const char *ylabel, const char *cbar_label) {
    if (n < 1) return cv_error(CV_ERR_ARG, "scatter panel '%s' without points", title ? title : "");
    double x0, x1, y0, y1;
    finite_range(x, n, &x0, &x1);
    finite_range(y, n, &y0, &y1);
    if (cmin == cmax) {
        cmin = INFINITY; cmax = -INFINITY;
        for (int64_t i = 0; i < n; i++) if (isfinite(c[i])) { cmin = fmin(cmin, c[i]); cmax = fmax(cmax, c[i]); }
        if (!isfinite(cmin)) { cmin = 0; cmax = 1; }
        if (cmax == cmin) { cmin -= 0.5; cmax += 0.5; }
    }
    double px = 0.04 * (x1 - x0), py = 0.04 * (y1 - y0);
    panel_begin(p);
    set_cmap1(cmap);
    cell_vpor(p, 0.17, 0.70, 0.13, 0.88);
    plwind(x0 - px, x1 + px, y0 - py, y1 + py);
    plbox("bcnst", 0, 0, "bcnstv", 0, 0);
    pllab(xlabel ? xlabel : "", ylabel ? ylabel : "", "");
    if (title) plmtex("t", 1.3, 0.5, 0.5, title);
    plssym(0, 0.5);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || !isfinite(c[i])) continue;
        PLFLT xi = x[i], yi = y[i];
        plcol1((c[i] - cmin) / (cmax - cmin));
        plpoin(1, &xi, &yi, 17);
    }
    plssym(0, 1);
    plcol0(1);
    colorbar(cmin, cmax, cbar_label);
    return CV_OK;
}

/* A coordinate on a log (lg) or linear axis, and whether it can be drawn. */
static int drawable(double v, int lg) { return lg ? v > 0 && isfinite(v) : isfinite(v); }
static double axis_t(double v, int lg) { return lg ? log10(v) : v; }

/* Line panel: log-log (lg 1) or linear (lg 0, y range [ylo, yhi] when
 * ylo < yhi); legend at `legend_pos`. */
static cv_status lines_panel(cv_plot *p, const cv_plot_series *s, int n_series, const char *title, const char *xlabel,
                             const char *ylabel, int lg, double ylo, double yhi, PLINT legend_pos) {
    if (n_series < 1 || n_series > 6) return cv_error(CV_ERR_ARG, "line panel with %d series (1..6)", n_series);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int nmax = 0;
    for (int k = 0; k < n_series; k++) {
        if (s[k].n > nmax) nmax = s[k].n;
        for (int i = 0; i < s[k].n; i++) {
            if (!drawable(s[k].x[i], lg)) continue;
            /* the range covers curves and upper band edges; on log axes a
               lower edge more than a decade under its curve is cut at the bottom */
            double v[3] = { s[k].y[i], s[k].lo ? (lg ? fmax(s[k].lo[i], 0.1 * s[k].y[i]) : s[k].lo[i]) : NAN,
                            s[k].hi ? s[k].hi[i] : NAN };
            for (int j = 0; j < 3; j++)
                if (drawable(v[j], lg)) {
                    y0 = fmin(y0, v[j]); y1 = fmax(y1, v[j]);
                    x0 = fmin(x0, s[k].x[i]); x1 = fmax(x1, s[k].x[i]);
                }
        }
    }
    if (!isfinite(x0) || !isfinite(y0))
        return cv_error(CV_ERR_ARG, "line panel '%s': no %svalues to draw", title ? title : "", lg ? "positive " : "finite ");
    double lx0 = axis_t(x0, lg), lx1 = axis_t(x1, lg), ly0 = axis_t(y0, lg), ly1 = axis_t(y1, lg);
    if (!lg && ylo < yhi) { ly0 = ylo; ly1 = yhi; }
    if (lx1 - lx0 < 1e-6) { lx0 -= 0.5; lx1 += 0.5; }
    if (ly1 - ly0 < 1e-6) { ly0 -= 0.5; ly1 += 0.5; }
    double padx = 0.02 * (lx1 - lx0), pady = 0.05 * (ly1 - ly0);
    lx0 -= padx; lx1 += padx; ly0 -= pady; ly1 += pady;
    PLFLT *px = malloc(2 * (size_t)nmax * sizeof *px), *py = malloc(2 * (size_t)nmax * sizeof *py);
    if (!px || !py) { free(px); free(py); return cv_error(CV_ERR_NOMEM, "line panel"); }
    panel_begin(p);
    cell_vpor(p, 0.20, 0.96, 0.17, 0.86);
    plwind(lx0, lx1, ly0, ly1);
    if (lg) plbox("bclnst", 0, 0, "bclnstv", 0, 0);
    else plbox("bcnst", 0, 0, "bcnstv", 0, 0);
    pllab(xlabel ? xlabel : "", ylabel ? ylabel : "", "");
    if (title) plmtex("t", 1.3, 0.5, 0.5, title);
    /* bands first, translucent, over each run of valid points */
    for (int k = 0; k < n_series; k++) {
        if (!s[k].lo || !s[k].hi) continue;
        plscol0a(2 + k, s[k].rgb[0], s[k].rgb[1], s[k].rgb[2], 0.25);
        plcol0(2 + k);
        for (int i = 0; i < s[k].n;) {
            int m = 0;
            while (i < s[k].n && drawable(s[k].x[i], lg) && drawable(s[k].hi[i], lg)) {
                px[m] = axis_t(s[k].x[i], lg);
                py[m] = fmin(axis_t(s[k].hi[i], lg), ly1);
                m++; i++;
            }
            for (int j = m - 1; j >= 0; j--) {
                double lo = s[k].lo[i - m + j];
                px[2 * m - 1 - j] = px[j];
                py[2 * m - 1 - j] = drawable(lo, lg) ? fmax(axis_t(lo, lg), ly0) : ly0;
            }
            if (m >= 2) plfill(2 * m, px, py);
            if (m == 0) i++;
        }
    }
    PLINT opt[6], colors[6], styles[6], nl = 0;
    PLFLT widths[6];
    const char *texts[6];
    for (int k = 0; k < n_series; k++) {
        plscol0a(8 + k, s[k].rgb[0], s[k].rgb[1], s[k].rgb[2], 1.0);
        plcol0(8 + k);
        pllsty(s[k].dashed ? 3 : 1);
        plwidth(2);
        for (int i = 0; i < s[k].n;) {
            int m = 0;
            while (i < s[k].n && drawable(s[k].x[i], lg) && drawable(s[k].y[i], lg)) {
                px[m] = axis_t(s[k].x[i], lg);
                py[m] = fmax(fmin(axis_t(s[k].y[i], lg), ly1), ly0);
                m++; i++;
            }
            if (m >= 2) plline(m, px, py);
            else if (m == 1) plpoin(1, px, py, 17);
            if (m == 0) i++;
        }
        if (s[k].label) {
            opt[nl] = PL_LEGEND_LINE; colors[nl] = 8 + k; styles[nl] = s[k].dashed ? 3 : 1; widths[nl] = 2;
            texts[nl] = s[k].label; nl++;
        }
    }
    pllsty(1);
    plwidth(1);
    plcol0(1);
    if (nl) {
        PLFLT lw, lh;
        PLINT tcol[6] = { 1, 1, 1, 1, 1, 1 };
        pllegend(&lw, &lh, 0, legend_pos | PL_POSITION_INSIDE, 0.03, 0.03, 0.12, 0, 1, 1, 0, 0, nl,
                 opt, 0.5, 0.7, 1.5, 0, tcol, texts, NULL, NULL, NULL, NULL, colors, styles, widths, NULL, NULL, NULL, NULL);
    }
    free(px); free(py);
    return CV_OK;
}

cv_status cv_plot_loglog(cv_plot *p, const cv_plot_series *s, int n_series, const char *title, const char *xlabel,
                         const char *ylabel) {
    return lines_panel(p, s, n_series, title, xlabel, ylabel, 1, 0, 0, PL_POSITION_BOTTOM | PL_POSITION_LEFT);
}

cv_status cv_plot_lines(cv_plot *p, const cv_plot_series *s, int n_series, const char *title, const char *xlabel,
                        const char *ylabel, double ymin, double ymax) {
    return lines_panel(p, s, n_series, title, xlabel, ylabel, 0, ymin, ymax, PL_POSITION_BOTTOM | PL_POSITION_RIGHT);
}

cv_status cv_plot_maps_png(const char *path, const float *maps, int rows, int cols, int h, int w, const cv_plot_panel *panels,
                           int panel_px) {
    cv_status st = CV_OK;
    if (rows < 1 || cols < 1 || h < 1 || w < 1 || panel_px < 64)
        return cv_error(CV_ERR_ARG, "%s: %d x %d panels of %d x %d maps, %d pixels a panel", path, rows, cols, h, w, panel_px);
    int ph = (int)lround(panel_px * (0.62 / 0.83) * h / w);
    cv_plot *p = NULL;
    CV_TRY(cv_plot_open(path, cols * panel_px, rows * ph, cols, rows, &p));
    for (int i = 0; i < rows * cols; i++) {
        const cv_plot_panel *q = &panels[i];
        st = cv_plot_image(p, maps + (size_t)i * h * w, h, w, q->vmin, q->vmax, q->cmap, q->title, q->cbar_label);
        if (st != CV_OK) { cv_plot_abort(p); return st; }
    }
    return cv_plot_close(p);
fail:
    return st;
}

cv_status cv_plot_png_size(const char *path, int *width, int *height) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path))
        return cv_error(CV_ERR_FORMAT, "%s: not a PNG: %s", path, im.message);
    im.format = PNG_FORMAT_RGBA;
    size_t n = PNG_IMAGE_SIZE(im);
    void *buf = malloc(n ? n : 1);
    if (!buf) { png_image_free(&im); return cv_error(CV_ERR_NOMEM, "%s: decoding", path); }
    int ok = png_image_finish_read(&im, NULL, buf, 0, NULL);
    free(buf);
    if (!ok) {
        cv_status st = cv_error(CV_ERR_FORMAT, "%s: the PNG does not decode: %s", path, im.message);
        png_image_free(&im);
        return st;
    }
    *width = (int)im.width;
    *height = (int)im.height;
    png_image_free(&im);
    return CV_OK;
}
