/* cv_npy.h -- NumPy .npy files (format versions 1.0, 2.0, 3.0), as the
 * CAMELS Multifield Dataset ships them: a streaming reader for
 * little-endian float32 C-order arrays of any size, and a streaming writer.
 *
 * The header parser is separate (cv_npy_parse) so that it can be fuzzed on
 * arbitrary bytes; it never reads past `n`, never allocates, and rejects
 * anything it does not fully understand. */
#ifndef CV_NPY_H
#define CV_NPY_H

#include "runtime/cv.h"

#define CV_NPY_MAX_DIM     8
#define CV_NPY_MAX_HEADER  (1 << 20)    /* we refuse larger headers */

typedef struct cv_npy_header {
    int     major, minor;               /* format version */
    char    descr[16];                  /* dtype descr as written, e.g. "<f4" */
    int     fortran;                    /* fortran_order */
    int     ndim;
    int64_t shape[CV_NPY_MAX_DIM];
    int64_t data_offset;                /* bytes before the array data */
    int64_t n_elem;                     /* product of shape (1 for ndim 0) */
} cv_npy_header;

/* Parse a header from the first n bytes of a file.  Returns CV_OK, or
 * CV_ERR_FORMAT with a message (without a file name) in cv_last_error().
 * If the buffer is too short for the declared header length the message
 * says so and *need (if not NULL) gets the number of bytes required. */
cv_status cv_npy_parse(const unsigned char *buf, size_t n, cv_npy_header *h, size_t *need);

/* ---- reader: float32 arrays, streamed along the first axis ------------ */

typedef struct cv_npy cv_npy;

/* Open and validate: dtype must be little-endian float32 ("<f4"), C order,
 * at least one dimension, and the file size must equal data_offset +
 * 4 * n_elem (a truncated file is an error naming both sizes). */
cv_status cv_npy_open(const char *path, cv_npy **out);
void      cv_npy_close(cv_npy *f);                 /* NULL is a no-op */
const cv_npy_header *cv_npy_hdr(const cv_npy *f);
const char *cv_npy_path(const cv_npy *f);
/* Elements per item of the first axis (e.g. 256*256 for (N,256,256)). */
int64_t   cv_npy_item_elems(const cv_npy *f);
/* Read items [first, first+count) of the first axis: out (count, ...) floats.
 * Not thread-safe for one cv_npy (it uses one file position). */
cv_status cv_npy_read(cv_npy *f, int64_t first, int64_t count, float *out);

/* ---- writer: little-endian float32, C order, format 1.0 -------------- */

typedef struct cv_npy_out cv_npy_out;

/* Write under a temporary name; nothing appears at path until
 * cv_npy_out_finish has written exactly n_elem values. */
cv_status cv_npy_out_new(const char *path, int ndim, const int64_t *shape, cv_npy_out **out);
cv_status cv_npy_out_write(cv_npy_out *o, const float *x, int64_t n);
cv_status cv_npy_out_finish(cv_npy_out *o);
void      cv_npy_out_free(cv_npy_out *o);          /* unfinished: removes the temporary */

/* Format a header for (ndim, shape) float32 into buf (at most 128*k bytes,
 * total length a multiple of 64); returns its length or 0 if buf is too small. */
size_t cv_npy_format_header(unsigned char *buf, size_t n, int ndim, const int64_t *shape);

#endif
