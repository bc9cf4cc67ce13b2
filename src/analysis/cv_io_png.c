/* cv_io_png.c -- 16-bit grayscale PNG maps through libpng.  The simplified
 * API (png_image_write_to_file) has no text chunks, so the writer uses the
 * classic API for tEXt; reading uses the classic API too.
 * Invariant: the file at `path` appears only complete (tmp + rename). */
#include "analysis/cv_io_png.h"
#include "runtime/cv_out.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>

cv_status cv_png_write_gray16(const char *path, const float *img, int h, int w, double lo, double hi,
                              const char *field, const char *transform) {
    char tmp[4200];
    cv_out_tmpname(path, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "wb");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot create", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep row = malloc((size_t)w * 2);
    if (!png || !info || !row) {
        png_destroy_write_struct(&png, &info);
        free(row); fclose(f); remove(tmp);
        return cv_error(CV_ERR_NOMEM, "out of memory writing %s", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row); fclose(f); remove(tmp);
        return cv_error(CV_ERR_IO, "%s: libpng failed while writing", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    char slo[64], shi[64];
    snprintf(slo, sizeof slo, "%.17g", lo);
    snprintf(shi, sizeof shi, "%.17g", hi);
    png_text text[4];
    memset(text, 0, sizeof text);
    text[0].compression = text[1].compression = text[2].compression = text[3].compression = PNG_TEXT_COMPRESSION_NONE;
    text[0].key = (png_charp)"cosmovae:lo";        text[0].text = slo;
    text[1].key = (png_charp)"cosmovae:hi";        text[1].text = shi;
    text[2].key = (png_charp)"cosmovae:field";     text[2].text = (png_charp)(field ? field : "");
    text[3].key = (png_charp)"cosmovae:transform"; text[3].text = (png_charp)(transform ? transform : "none");
    png_set_text(png, info, text, 4);
    png_write_info(png, info);
    double scale = hi > lo ? 65535.0 / (hi - lo) : 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double v = img[(size_t)y * w + x];
            double q = isfinite(v) ? (v - lo) * scale : 0;
            unsigned u = q <= 0 ? 0 : q >= 65535 ? 65535 : (unsigned)(q + 0.5);
            row[2 * x] = (png_byte)(u >> 8);
            row[2 * x + 1] = (png_byte)(u & 255);
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0) { remove(tmp); return cv_error(CV_ERR_IO, "%s: write error", path); }
    return cv_out_commit(tmp, path);
}

cv_status cv_png_read_gray16(const char *path, float *img, int *h, int *w, double *lo, double *hi) {
    FILE *f = fopen(path, "rb");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot open", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep row = NULL;
    if (!png || !info) { png_destroy_read_struct(&png, &info, NULL); fclose(f); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(row); fclose(f);
        return cv_error(CV_ERR_FORMAT, "%s: not a readable PNG", path);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    int W = (int)png_get_image_width(png, info), H = (int)png_get_image_height(png, info);
    if (png_get_bit_depth(png, info) != 16 || png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY ||
        (*h > 0 && *h != H) || (*w > 0 && *w != W)) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return cv_error(CV_ERR_FORMAT, "%s: expected a 16-bit gray %dx%d image, found %dx%d", path, *w, *h, W, H);
    }
    *lo = 0; *hi = 65535;
    png_textp text;
    int nt = 0;
    if (png_get_text(png, info, &text, &nt) > 0)
        for (int i = 0; i < nt; i++) {
            if (!strcmp(text[i].key, "cosmovae:lo")) *lo = atof(text[i].text);
            if (!strcmp(text[i].key, "cosmovae:hi")) *hi = atof(text[i].text);
        }
    row = malloc((size_t)W * 2);
    if (!row) { png_destroy_read_struct(&png, &info, NULL); fclose(f); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    for (int y = 0; y < H; y++) {
        png_read_row(png, row, NULL);
        for (int x = 0; x < W; x++)
            img[(size_t)y * W + x] = (float)(*lo + (*hi - *lo) * ((row[2 * x] << 8) | row[2 * x + 1]) / 65535.0);
    }
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(row);
    fclose(f);
    *h = H; *w = W;
    return CV_OK;
}
