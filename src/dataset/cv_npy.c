/* cv_npy.c -- .npy header parser, streaming float32 reader and writer.
 *
 * Hand-written because no C library for .npy is packaged in Debian and the
 * format is small: a magic string, a version, a length and a Python dict
 * literal.  The parser accepts exactly the dict numpy writes
 * ({'descr': ..., 'fortran_order': ..., 'shape': (...), }) with keys in any
 * order, either quote style and arbitrary spacing, and nothing else.
 *
 * Invariant: cv_npy_parse never reads buf[i] for i >= n and never
 * allocates; every size is checked for overflow before it is used. */
#include "dataset/cv_npy.h"
#include "runtime/cv_out.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- header parser ------------------------------------------------------ */

typedef struct { const unsigned char *p, *end; } cv_npy_lex;

static void lex_ws(cv_npy_lex *x) {
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r')) x->p++;
}

static int lex_char(cv_npy_lex *x, unsigned char ch) {
    lex_ws(x);
    if (x->p < x->end && *x->p == ch) { x->p++; return 1; }
    return 0;
}

/* A quoted string ('...' or "...") without escapes, into out (n bytes). */
static int lex_string(cv_npy_lex *x, char *out, size_t n) {
    lex_ws(x);
    if (x->p >= x->end || (*x->p != '\'' && *x->p != '"')) return 0;
    unsigned char q = *x->p++;
    size_t k = 0;
    while (x->p < x->end && *x->p != q) {
        if (*x->p == '\\' || *x->p < 0x20 || *x->p >= 0x7f) return 0;
        if (k + 1 >= n) return 0;
        out[k++] = (char)*x->p++;
    }
    if (x->p >= x->end) return 0;
    x->p++;
    out[k] = '\0';
    return 1;
}

static int lex_word(cv_npy_lex *x, const char *w) {
    lex_ws(x);
    size_t n = strlen(w);
    if ((size_t)(x->end - x->p) < n || memcmp(x->p, w, n)) return 0;
    const unsigned char *q = x->p + n;
    if (q < x->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
        return 0;
    x->p = q;
    return 1;
}

/* A non-negative decimal integer <= 2^62 (Python may append 'L' in old files). */
static int lex_int(cv_npy_lex *x, int64_t *v) {
    lex_ws(x);
    if (x->p >= x->end || *x->p < '0' || *x->p > '9') return 0;
    int64_t r = 0;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9') {
        if (r > (((int64_t)1 << 62) - 9) / 10) return 0;
        r = r * 10 + (*x->p++ - '0');
    }
    if (x->p < x->end && *x->p == 'L') x->p++;
    *v = r;
    return 1;
}

cv_status cv_npy_parse(const unsigned char *buf, size_t n, cv_npy_header *h, size_t *need) {
    static const unsigned char magic[6] = { 0x93, 'N', 'U', 'M', 'P', 'Y' };
    memset(h, 0, sizeof *h);
    if (need) *need = 0;
    if (n < 10 || memcmp(buf, magic, 6)) {
        if (n < 6 || memcmp(buf, magic, 6)) return cv_error(CV_ERR_FORMAT, "not a .npy file (bad magic string)");
        return cv_error(CV_ERR_FORMAT, "truncated .npy header (%zu bytes)", n);
    }
    h->major = buf[6];
    h->minor = buf[7];
    size_t pre, hlen;
    if (h->major == 1) {
        pre = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (h->major == 2 || h->major == 3) {
        if (n < 12) return cv_error(CV_ERR_FORMAT, "truncated .npy header (%zu bytes)", n);
        pre = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return cv_error(CV_ERR_FORMAT, "unsupported .npy format version %d.%d", h->major, h->minor);
    }
    if (hlen > CV_NPY_MAX_HEADER) return cv_error(CV_ERR_FORMAT, ".npy header length %zu is implausibly large", hlen);
    if (hlen == 0) return cv_error(CV_ERR_FORMAT, "empty .npy header");
    if (n < pre + hlen) {
        if (need) *need = pre + hlen;
        return cv_error(CV_ERR_FORMAT, "truncated .npy header (%zu of %zu bytes)", n, pre + hlen);
    }
    h->data_offset = (int64_t)(pre + hlen);
    cv_npy_lex x = { buf + pre, buf + pre + hlen };
    if (buf[pre + hlen - 1] != '\n') return cv_error(CV_ERR_FORMAT, ".npy header does not end with a newline");

    int have_descr = 0, have_fortran = 0, have_shape = 0;
    if (!lex_char(&x, '{')) return cv_error(CV_ERR_FORMAT, ".npy header is not a dictionary");
    for (;;) {
        if (lex_char(&x, '}')) break;
        char key[32];
        if (!lex_string(&x, key, sizeof key)) return cv_error(CV_ERR_FORMAT, ".npy header: expected a quoted key");
        if (!lex_char(&x, ':')) return cv_error(CV_ERR_FORMAT, ".npy header: expected ':' after '%s'", key);
        if (!strcmp(key, "descr")) {
            if (have_descr++) return cv_error(CV_ERR_FORMAT, ".npy header: duplicate key 'descr'");
            if (!lex_string(&x, h->descr, sizeof h->descr))
                return cv_error(CV_ERR_FORMAT, ".npy header: 'descr' is not a simple dtype string (structured arrays are not supported)");
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++) return cv_error(CV_ERR_FORMAT, ".npy header: duplicate key 'fortran_order'");
            if (lex_word(&x, "True")) h->fortran = 1;
            else if (lex_word(&x, "False")) h->fortran = 0;
            else return cv_error(CV_ERR_FORMAT, ".npy header: 'fortran_order' is not True or False");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return cv_error(CV_ERR_FORMAT, ".npy header: duplicate key 'shape'");
            if (!lex_char(&x, '(')) return cv_error(CV_ERR_FORMAT, ".npy header: 'shape' is not a tuple");
            for (;;) {
                if (lex_char(&x, ')')) break;
                if (h->ndim >= CV_NPY_MAX_DIM)
                    return cv_error(CV_ERR_FORMAT, ".npy header: more than %d dimensions", CV_NPY_MAX_DIM);
                if (!lex_int(&x, &h->shape[h->ndim]))
                    return cv_error(CV_ERR_FORMAT, ".npy header: bad dimension %d in 'shape'", h->ndim);
                h->ndim++;
                if (lex_char(&x, ',')) continue;
                if (lex_char(&x, ')')) break;
                return cv_error(CV_ERR_FORMAT, ".npy header: bad 'shape' tuple");
            }
        } else {
            return cv_error(CV_ERR_FORMAT, ".npy header: unexpected key '%s'", key);
        }
        if (lex_char(&x, ',')) continue;
        if (lex_char(&x, '}')) break;
        return cv_error(CV_ERR_FORMAT, ".npy header: expected ',' or '}' after '%s'", key);
    }
    lex_ws(&x);
    if (x.p != x.end) return cv_error(CV_ERR_FORMAT, ".npy header: trailing bytes after the dictionary");
    if (!have_descr || !have_fortran || !have_shape)
        return cv_error(CV_ERR_FORMAT, ".npy header: missing key '%s'",
                        !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    int64_t ne = 1;
    for (int d = 0; d < h->ndim; d++) {
        if (h->shape[d] != 0 && ne > (INT64_MAX / 16) / h->shape[d])
            return cv_error(CV_ERR_FORMAT, ".npy header: array size overflows");
        ne *= h->shape[d];
    }
    h->n_elem = ne;
    return CV_OK;
}

size_t cv_npy_format_header(unsigned char *buf, size_t n, int ndim, const int64_t *shape) {
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < ndim && k < (int)sizeof dict; d++)
        k += snprintf(dict + k, sizeof dict - k, ndim == 1 ? "%lld," : d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < (int)sizeof dict) k += snprintf(dict + k, sizeof dict - k, "), }");
    if (k >= (int)sizeof dict - 66) return 0;
    size_t total = 10 + (size_t)k + 1;
    total = (total + 63) / 64 * 64;
    if (total > n || total - 10 > 65535) return 0;
    static const unsigned char magic[8] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
    memcpy(buf, magic, 8);
    buf[8] = (unsigned char)((total - 10) & 0xff);
    buf[9] = (unsigned char)((total - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)k);
    memset(buf + 10 + k, ' ', total - 10 - (size_t)k - 1);
    buf[total - 1] = '\n';
    return total;
}

/* ---- byte order --------------------------------------------------------- */

static int host_is_big_endian(void) {
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 0;
}

static void swap4(void *p, size_t n) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t = b[0]; b[0] = b[3]; b[3] = t;
        t = b[1]; b[1] = b[2]; b[2] = t;
    }
}

/* ---- reader ------------------------------------------------------------- */

struct cv_npy {
    int            fd;
    char          *path;
    cv_npy_header  h;
    int64_t        item;      /* elements per first-axis item */
};

const cv_npy_header *cv_npy_hdr(const cv_npy *f) { return &f->h; }
const char *cv_npy_path(const cv_npy *f) { return f->path; }
int64_t cv_npy_item_elems(const cv_npy *f) { return f->item; }

static cv_status read_full(int fd, void *buf, size_t n, int64_t off, const char *path, size_t *got) {
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, (off_t)(off + (int64_t)done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return cv_error(CV_ERR_IO, "%s: read error: %s", path, strerror(errno));
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    if (got) *got = done;
    else if (done < n) return cv_error(CV_ERR_FORMAT, "%s: unexpected end of file", path);
    return CV_OK;
}

cv_status cv_npy_open(const char *path, cv_npy **out) {
    cv_status st = CV_OK;
    unsigned char *hb = NULL;
    cv_npy *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f) return cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
    f->fd = -1;
    f->path = strdup(path);
    if (!f->path) { st = cv_error(CV_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0) { st = cv_error(CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); goto fail; }
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) { st = cv_error(CV_ERR_IO, "%s: %s", path, strerror(errno)); goto fail; }
    if (!S_ISREG(sb.st_mode)) { st = cv_error(CV_ERR_IO, "%s: not a regular file", path); goto fail; }
    size_t n = 4096, got = 0, need = 0;
    for (;;) {
        unsigned char *nb = realloc(hb, n);
        if (!nb) { st = cv_error(CV_ERR_NOMEM, "%s: out of memory", path); goto fail; }
        hb = nb;
        CV_TRY(read_full(f->fd, hb, n, 0, path, &got));
        st = cv_npy_parse(hb, got, &f->h, &need);
        if (st == CV_OK) break;
        if (need > n && got == n) { n = need; continue; }   /* header longer than the first read */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cv_last_error());
        st = cv_error(st, "%s: %s", path, msg);
        goto fail;
    }
    const cv_npy_header *h = &f->h;
    if (strcmp(h->descr, "<f4") && !(strcmp(h->descr, "=f4") == 0 && !host_is_big_endian())) {
        st = cv_error(CV_ERR_FORMAT, "%s: dtype '%s' is not little-endian float32 ('<f4')", path, h->descr);
        goto fail;
    }
    if (h->fortran) {
        st = cv_error(CV_ERR_FORMAT, "%s: array is in Fortran order; only C order is supported", path);
        goto fail;
    }
    if (h->ndim < 1) { st = cv_error(CV_ERR_FORMAT, "%s: array has no dimensions", path); goto fail; }
    f->item = 1;
    for (int d = 1; d < h->ndim; d++) f->item *= h->shape[d];
    int64_t want = h->data_offset + 4 * h->n_elem;
    if ((int64_t)sb.st_size != want) {
        st = cv_error(CV_ERR_FORMAT, "%s: file is %lld bytes but its header declares %lld (%s)", path,
                      (long long)sb.st_size, (long long)want, (int64_t)sb.st_size < want ? "truncated" : "trailing data");
        goto fail;
    }
#if defined(POSIX_FADV_SEQUENTIAL)
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    free(hb);
    *out = f;
    return CV_OK;
fail:
    free(hb);
    cv_npy_close(f);
    return st;
}

void cv_npy_close(cv_npy *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f);
}

cv_status cv_npy_read(cv_npy *f, int64_t first, int64_t count, float *out) {
    if (first < 0 || count < 0 || first + count > f->h.shape[0])
        return cv_error(CV_ERR_ARG, "%s: items %lld..%lld out of range (%lld items)", f->path, (long long)first,
                        (long long)(first + count - 1), (long long)f->h.shape[0]);
    size_t nb = (size_t)(count * f->item) * 4;
    int64_t off = f->h.data_offset + first * f->item * 4;
    size_t got = 0;
    cv_status st = read_full(f->fd, out, nb, off, f->path, &got);
    if (st != CV_OK) return st;
    if (got < nb)
        return cv_error(CV_ERR_FORMAT, "%s: map %lld: unexpected end of file", f->path,
                        (long long)(first + (int64_t)(got / 4 / (size_t)f->item)));
    if (host_is_big_endian()) swap4(out, nb / 4);
    return CV_OK;
}

/* ---- writer ------------------------------------------------------------- */

struct cv_npy_out {
    FILE    *f;
    char    *path;
    char     tmp[4096];
    int64_t  n_elem, done;
    int      finished;
};

cv_status cv_npy_out_new(const char *path, int ndim, const int64_t *shape, cv_npy_out **out) {
    cv_status st = CV_OK;
    *out = NULL;
    cv_npy_out *o = calloc(1, sizeof *o);
    if (!o) return cv_error(CV_ERR_NOMEM, "%s: out of memory", path);
    o->path = strdup(path);
    if (!o->path) { st = cv_error(CV_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    if (ndim < 1 || ndim > CV_NPY_MAX_DIM) { st = cv_error(CV_ERR_ARG, "%s: %d dimensions", path, ndim); goto fail; }
    o->n_elem = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) { st = cv_error(CV_ERR_ARG, "%s: negative dimension", path); goto fail; }
        o->n_elem *= shape[d];
    }
    unsigned char hb[1024];
    size_t hl = cv_npy_format_header(hb, sizeof hb, ndim, shape);
    if (!hl) { st = cv_error(CV_ERR_ARG, "%s: cannot format the header", path); goto fail; }
    cv_out_tmpname(path, o->tmp, sizeof o->tmp);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) { st = cv_error(CV_ERR_IO, "%s: cannot create: %s", o->tmp, strerror(errno)); o->tmp[0] = 0; goto fail; }
    if (fwrite(hb, 1, hl, o->f) != hl) { st = cv_error(CV_ERR_IO, "%s: write error: %s", o->tmp, strerror(errno)); goto fail; }
    *out = o;
    return CV_OK;
fail:
    cv_npy_out_free(o);
    return st;
}

cv_status cv_npy_out_write(cv_npy_out *o, const float *x, int64_t n) {
    if (o->done + n > o->n_elem)
        return cv_error(CV_ERR_ARG, "%s: %lld values written, the shape holds %lld", o->path,
                        (long long)(o->done + n), (long long)o->n_elem);
    if (host_is_big_endian()) {
        float tmp[1024];
        for (int64_t i = 0; i < n; i += 1024) {
            size_t k = (size_t)(n - i < 1024 ? n - i : 1024);
            memcpy(tmp, x + i, k * 4);
            swap4(tmp, k);
            if (fwrite(tmp, 4, k, o->f) != k) return cv_error(CV_ERR_IO, "%s: write error: %s", o->tmp, strerror(errno));
        }
    } else if (fwrite(x, 4, (size_t)n, o->f) != (size_t)n) {
        return cv_error(CV_ERR_IO, "%s: write error: %s", o->tmp, strerror(errno));
    }
    o->done += n;
    return CV_OK;
}

cv_status cv_npy_out_finish(cv_npy_out *o) {
    if (o->done != o->n_elem)
        return cv_error(CV_ERR_ARG, "%s: only %lld of %lld values written", o->path, (long long)o->done, (long long)o->n_elem);
    FILE *f = o->f;
    o->f = NULL;
    if (fclose(f) != 0) return cv_error(CV_ERR_IO, "%s: write error: %s", o->tmp, strerror(errno));
    cv_status st = cv_out_commit(o->tmp, o->path);
    if (st == CV_OK) { o->finished = 1; o->tmp[0] = '\0'; }
    return st;
}

void cv_npy_out_free(cv_npy_out *o) {
    if (!o) return;
    if (o->f) fclose(o->f);
    if (!o->finished && o->tmp[0]) cv_out_abort(o->tmp);
    free(o->path);
    free(o);
}
