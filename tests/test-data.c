/* test-data.c -- the field-data library without an OpenCL device: .npy
 * header parser and reader, dataset writer/reader round trip and its
 * errors, train-only normalisation, parameter tables, splits, dihedral
 * maps, and the synthetic generator (spectrum, determinism, statistics,
 * sigma_8 visible in the low-k power). */
#include "tap.h"
#include "dataset/cv_data.h"
#include "dataset/cv_fields.h"
#include "dataset/cv_npy.h"

#include <dirent.h>
#include <math.h>
#include <unistd.h>

static char tmpdir[1024];

static const char *srcdir(void) {
    const char *s = getenv("top_srcdir");
    return s && *s ? s : CV_SRCDIR;
}

static void tpath(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static int dir_entries(void) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(b, 1, n, f); fclose(f); }
}

/* A .npy header with a given dict text (v1), into buf; returns its length. */
static size_t mk_header(unsigned char *buf, const char *dict) {
    size_t k = strlen(dict), total = (10 + k + 1 + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((total - 10) & 0xff);
    buf[9] = (unsigned char)((total - 10) >> 8);
    memcpy(buf + 10, dict, k);
    memset(buf + 10 + k, ' ', total - 11 - k);
    buf[total - 1] = '\n';
    return total;
}

static int parse_ok(const char *dict, cv_npy_header *h) {
    unsigned char b[512];
    size_t n = mk_header(b, dict);
    return cv_npy_parse(b, n, h, NULL) == CV_OK;
}

static void test_npy_parser(void) {
    cv_npy_header h;
    CV_CHECK_OK(parse_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (15000, 256, 256), }", &h) && h.ndim == 3 &&
                    h.shape[0] == 15000 && h.shape[2] == 256 && !h.fortran && !strcmp(h.descr, "<f4") &&
                    h.n_elem == 15000LL * 256 * 256 && h.data_offset % 64 == 0,
                "npy: numpy's header parses");
    CV_CHECK_OK(parse_ok("{\"shape\":(7,),\"fortran_order\":True,\"descr\":\"<f8\"}", &h) && h.ndim == 1 && h.shape[0] == 7 &&
                    h.fortran && !strcmp(h.descr, "<f8"),
                "npy: any key order, double quotes, no spaces");
    CV_CHECK_OK(parse_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &h) && h.ndim == 0 && h.n_elem == 1,
                "npy: zero-dimensional shape");
    static const char *bad[] = {
        "{'descr': '<f4', 'fortran_order': False}",                               /* no shape */
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",      /* structured */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9)}",
        "['descr', '<f4']",
    };
    int nbad = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (parse_ok(bad[i], &h)) CV_CHECK_DIAG("accepted: %s", bad[i]);
        else nbad++;
    }
    CV_CHECK_OK(nbad == (int)(sizeof bad / sizeof *bad), "npy: %d malformed dictionaries rejected", nbad);

    unsigned char b[512];
    size_t n = mk_header(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
    cv_status st = cv_npy_parse((const unsigned char *)"\x93NUMPX\x01\x00\x10\x00", 10, &h, NULL);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "magic"), "npy: bad magic: %s", cv_last_error());
    size_t need = 0;
    st = cv_npy_parse(b, 40, &h, &need);
    CV_CHECK_OK(st == CV_ERR_FORMAT && need == n && strstr(cv_last_error(), "truncated"), "npy: truncated header asks for %zu bytes", need);
    b[6] = 9;
    CV_CHECK_OK(cv_npy_parse(b, n, &h, NULL) == CV_ERR_FORMAT && strstr(cv_last_error(), "version"), "npy: unknown version rejected");
    /* version 2 (4-byte length) */
    unsigned char b2[520];
    memcpy(b2, "\x93NUMPY\x02\x00", 8);
    const char *d2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t k2 = strlen(d2), t2 = (12 + k2 + 1 + 63) / 64 * 64;
    b2[8] = (unsigned char)(t2 - 12); b2[9] = 0; b2[10] = 0; b2[11] = 0;
    memcpy(b2 + 12, d2, k2);
    memset(b2 + 12 + k2, ' ', t2 - 13 - k2);
    b2[t2 - 1] = '\n';
    CV_CHECK_OK(cv_npy_parse(b2, t2, &h, NULL) == CV_OK && h.major == 2 && h.data_offset == (int64_t)t2 && h.n_elem == 6,
                "npy: version 2.0 header");
    /* our writer's header reads back */
    int64_t shp[3] = { 45, 16, 16 };
    n = cv_npy_format_header(b, sizeof b, 3, shp);
    CV_CHECK_OK(n % 64 == 0 && cv_npy_parse(b, n, &h, NULL) == CV_OK && h.ndim == 3 && h.shape[0] == 45 && h.shape[1] == 16,
                "npy: formatted header parses back (%zu bytes)", n);
}

static void test_npy_files(void) {
    char p[2048];
    cv_npy *f = NULL;
    /* writer -> reader round trip, streamed in pieces */
    float x[5 * 6];
    for (int i = 0; i < 30; i++) x[i] = (float)(i * 0.37 - 3);
    int64_t shp[3] = { 5, 2, 3 };
    cv_npy_out *o = NULL;
    tpath(p, sizeof p, "a.npy");
    cv_status st = cv_npy_out_new(p, 3, shp, &o);
    if (st == CV_OK) st = cv_npy_out_write(o, x, 7);
    if (st == CV_OK) st = cv_npy_out_write(o, x + 7, 23);
    int no_file_yet = access(p, F_OK) != 0;
    if (st == CV_OK) st = cv_npy_out_finish(o);
    cv_npy_out_free(o);
    float y[30] = { 0 };
    cv_status st2 = cv_npy_open(p, &f);
    if (st2 == CV_OK) st2 = cv_npy_read(f, 1, 3, y + 6);
    CV_CHECK_OK(st == CV_OK && no_file_yet && st2 == CV_OK && cv_npy_item_elems(f) == 6 && !memcmp(y + 6, x + 6, 18 * 4),
                "npy: write in pieces, read items 1..3 back bit-exactly");
    st = cv_npy_read(f, 4, 2, y);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), p), "npy: read past the end is an error naming the file");
    cv_npy_close(f);
    f = NULL;

    /* an unfinished writer leaves nothing */
    int before = dir_entries();
    tpath(p, sizeof p, "b.npy");
    st = cv_npy_out_new(p, 3, shp, &o);
    if (st == CV_OK) cv_npy_out_write(o, x, 10);
    st2 = cv_npy_out_finish(o);
    cv_npy_out_free(o);
    CV_CHECK_OK(st == CV_OK && st2 != CV_OK && dir_entries() == before, "npy: short write fails and leaves no file");

    /* bad files: each rejected with the file name and the reason */
    struct { const char *dict; int extra; const char *name, *why; } cases[] = {
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", -4, "trunc.npy", "truncated" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 8, "trail.npy", "trailing" },
        { "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 24, "f8.npy", "float32" },
        { "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 0, "be.npy", "little-endian" },
        { "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 0, "fortran.npy", "Fortran" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, }", 0, "syntax.npy", "shape" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned char b[512 + 64];
        size_t n = mk_header(b, cases[i].dict);
        size_t data = 24 + (size_t)(cases[i].extra > 0 ? cases[i].extra : 0) - (size_t)(cases[i].extra < 0 ? -cases[i].extra : 0);
        if (cases[i].extra == 24) data = 48;      /* <f8: 6 doubles, still the wrong dtype */
        memset(b + n, 0x3f, data);
        tpath(p, sizeof p, cases[i].name);
        write_bytes(p, b, n + data);
        st = cv_npy_open(p, &f);
        CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), p) && strstr(cv_last_error(), cases[i].why),
                    "npy: %s rejected: %s", cases[i].name, cv_last_error());
        cv_npy_close(f);
        f = NULL;
        remove(p);
    }
    tpath(p, sizeof p, "magic.npy");
    write_bytes(p, "GIF89a not numpy at all, long enough to hold a header", 52);
    st = cv_npy_open(p, &f);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "magic"), "npy: bad magic: %s", cv_last_error());
    remove(p);
    tpath(p, sizeof p, "missing.npy");
    st = cv_npy_open(p, &f);
    CV_CHECK_OK(st == CV_ERR_IO && strstr(cv_last_error(), "missing.npy"), "npy: missing file named");
    tpath(p, sizeof p, "a.npy");
    remove(p);
}

/* ---- datasets ----------------------------------------------------------- */

enum { NM = 30, NC = 3, S = 8 };

static float map_val(int m, int ch, int i) {
    /* positive, distinct, valid and test maps far from the train ones */
    double base = ch == 0 ? 1e10 : ch == 1 ? 1e4 : 1e-12;
    double v = base * (1.0 + 0.5 * sin(0.7 * i + 1.3 * m + ch)) * (1.0 + 0.01 * m);
    if (m % 15 >= 10) v *= 1000.0;    /* marks maps that will not be train */
    return (float)v;
}

/* deflate 0 and padded: maps 20..29 through cv_writer_sums_padded and
 * cv_writer_write_padded; *direct: what the writer did */
static cv_status write_dataset_opts(const char *path, float *maps, int8_t *split, double *params, int deflate, int direct,
                                    int padded, int *was_direct) {
    cv_status st = CV_OK;
    static const char *names[NC] = { "Mgas", "HI", "B" };
    cv_writer_opts o = cv_writer_opts_default();
    o.deflate = deflate;
    o.direct = direct;
    o.n_maps = NM;
    o.n_chan = NC;
    o.height = o.width = S;
    o.chan_names = names;
    o.source = "test";
    o.history = "test-data";
    cv_writer *w = NULL;
    CV_TRY(cv_writer_new(path, &o, &w));
    for (int m = 0; m < NM; m++) split[m] = m % 15 >= 10 ? (m % 15 >= 13 ? CV_SPLIT_TEST : CV_SPLIT_VALID) : CV_SPLIT_TRAIN;
    for (int m = 0; m < NM; m++)
        for (int p = 0; p < 6; p++) params[m * 6 + p] = 0.1 * (m / 15) + p;
    if (was_direct) *was_direct = cv_writer_direct(w);
    /* out of order blocks; the first in two steps (sums, then write) */
    double sums[10 * NC * 2];
    if (padded) {
        static float pad[10 * (NC * S * S + 1)];
        for (int m = 0; m < 10; m++) memcpy(pad + m * (NC * S * S + 1), maps + (20 + m) * NC * S * S, NC * S * S * sizeof(float));
        CV_TRY(cv_writer_sums_padded(w, 20, 10, pad, sums));
        CV_TRY(cv_writer_write_padded(w, 20, 10, pad, sums));
    } else {
        CV_TRY(cv_writer_sums(w, 20, 10, maps + 20 * NC * S * S, sums));
        CV_TRY(cv_writer_write_sums(w, 20, 10, maps + 20 * NC * S * S, sums));
    }
    CV_TRY(cv_writer_write(w, 0, 20, maps));
    if (cv_writer_write_sums(w, 25, 1, maps + 25 * NC * S * S, sums) != CV_ERR_ARG || !strstr(cv_last_error(), "twice")) {
        st = cv_error(CV_ERR_ARG, "a map written twice through cv_writer_write_sums was accepted");
        goto fail;
    }
    CV_TRY(cv_writer_set_split(w, 0, NM, split));
    CV_TRY(cv_writer_set_params(w, 0, NM, params));
    CV_TRY(cv_writer_set_attr(w, "extra", "replaced below"));
    CV_TRY(cv_writer_set_attr(w, "extra", "value"));
    CV_TRY(cv_writer_finish(w));
fail:
    cv_writer_free(w);
    return st;
}

static void fill_maps(float *maps /* (NM, NC, S, S) */) {
    for (int m = 0; m < NM; m++)
        for (int ch = 0; ch < NC; ch++)
            for (int i = 0; i < S * S; i++) maps[(m * NC + ch) * S * S + i] = map_val(m, ch, i);
}

static cv_status write_dataset(const char *path, float *maps, int8_t *split, double *params) {
    return write_dataset_opts(path, maps, split, params, 1, 1, 0, NULL);
}

static int read_file(const char *path, unsigned char **b, size_t *n) {
    FILE *f = fopen(path, "rb");
    *b = NULL;
    *n = 0;
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *b = malloc(len > 0 ? (size_t)len : 1);
    *n = *b ? fread(*b, 1, (size_t)len, f) : 0;
    fclose(f);
    return *b && *n == (size_t)len;
}

/* Uncompressed datasets: chunks handed to HDF5 directly with their
 * Fletcher-32 (and through cv_writer_write_padded) hold what NetCDF's
 * filter path writes; the bytes are the same from run to run; a corrupted
 * chunk is still caught by its checksum and named. */
static void test_direct(void) {
    char p0[2048], p1[2048], p2[2048], pc[2048];
    static float maps[NM * NC * S * S], b0[NM * NC * S * S], b1[NM * NC * S * S];
    int8_t split[NM];
    double params[NM * 6];
    fill_maps(maps);
    tpath(p0, sizeof p0, "nc0.nc");
    tpath(p1, sizeof p1, "dir1.nc");
    tpath(p2, sizeof p2, "dir2.nc");
    tpath(pc, sizeof pc, "dirbad.nc");
    int d0 = -1, d1 = -1, d2 = -1;
    cv_status st = write_dataset_opts(p0, maps, split, params, 0, 0, 1, &d0);
    if (st == CV_OK) st = write_dataset_opts(p1, maps, split, params, 0, 1, 1, &d1);
    if (st == CV_OK) st = write_dataset_opts(p2, maps, split, params, 0, 1, 1, &d2);
    CV_CHECK_OK(st == CV_OK, "direct: written with and without direct chunk writes (%s)", st ? cv_last_error() : "ok");
    if (st != CV_OK) return;
#if defined(CV_HAVE_HDF5)
    CV_CHECK_OK(d0 == 0 && d1 == 1 && d2 == 1, "direct: used with deflate 0 when asked for (HDF5 build)");
#else
    CV_CHECK_OK(d0 == 0 && d1 == 0, "direct: never used without HDF5 at build time");
#endif
    cv_dataset *a = NULL, *b = NULL;
    int same = cv_dataset_open(p0, &a) == CV_OK && cv_dataset_open(p1, &b) == CV_OK &&
               cv_dataset_read(a, 0, NM, b0) == CV_OK && cv_dataset_read(b, 0, NM, b1) == CV_OK &&
               !memcmp(b0, maps, sizeof maps) && !memcmp(b1, maps, sizeof maps);
    for (int ch = 0; same && ch < NC; ch++)
        same = cv_dataset_norm_mean(a, ch) == cv_dataset_norm_mean(b, ch) && cv_dataset_norm_std(a, ch) == cv_dataset_norm_std(b, ch);
    for (int m = 0; same && m < NM; m++)
        same = cv_dataset_split(a, m) == cv_dataset_split(b, m) && cv_dataset_param(a, m, 3) == cv_dataset_param(b, m, 3);
    cv_dataset_free(a);
    cv_dataset_free(b);
    CV_CHECK_OK(same, "direct: maps (bit-exact), statistics, splits and params as through NetCDF");
    unsigned char *f1 = NULL, *f2 = NULL;
    size_t n1 = 0, n2 = 0;
    int ok = read_file(p1, &f1, &n1) && read_file(p2, &f2, &n2) && n1 == n2 && !memcmp(f1, f2, n1);
    CV_CHECK_OK(ok, "direct: the same maps and options give the same file bytes");
    /* corrupt one value of map 7's chunk: find the map's bytes in the file */
    int64_t bad = -1;
    if (ok) {
        const unsigned char *want = (const unsigned char *)(maps + 7 * NC * S * S + 5);
        for (size_t i = 0; i + 16 <= n1; i++)
            if (!memcmp(f1 + i, want, 16)) { f1[i + 1] ^= 0x40; bad = (int64_t)i; break; }
        write_bytes(pc, f1, n1);
    }
    cv_dataset *dc = NULL;
    int caught = 0;
    if (bad >= 0 && cv_dataset_open(pc, &dc) == CV_OK) {
        caught = cv_dataset_read(dc, 0, 7, b0) == CV_OK && cv_dataset_read(dc, 8, NM - 8, b0) == CV_OK &&
                 cv_dataset_read(dc, 0, NM, b0) != CV_OK && strstr(cv_last_error(), "map 7") && strstr(cv_last_error(), "dirbad.nc");
        cv_dataset_free(dc);
    }
    CV_CHECK_OK(caught, "direct: a corrupted chunk fails its checksum, the error names the file and map 7: %s",
                caught ? cv_last_error() : "not caught");
    free(f1);
    free(f2);
    remove(p0); remove(p1); remove(p2); remove(pc);
}

static void test_dataset(void) {
    char p[2048], q[2048];
    static float maps[NM * NC * S * S], back[NM * NC * S * S];
    int8_t split[NM];
    double params[NM * 6];
    fill_maps(maps);
    tpath(p, sizeof p, "d.nc");
    cv_status st = write_dataset(p, maps, split, params);
    CV_CHECK_OK(st == CV_OK, "dataset: written (%s)", st ? cv_last_error() : "ok");
    cv_dataset *ds = NULL;
    st = cv_dataset_open(p, &ds);
    CV_CHECK_OK(st == CV_OK, "dataset: opens (%s)", st ? cv_last_error() : "ok");
    if (st != CV_OK) return;
    CV_CHECK_OK(cv_dataset_n_maps(ds) == NM && cv_dataset_n_chan(ds) == NC && cv_dataset_height(ds) == S &&
                    cv_dataset_width(ds) == S && cv_dataset_box_size(ds) == 25.0 && cv_dataset_n_param(ds) == 6,
                "dataset: dimensions and box size");
    CV_CHECK_OK(!strcmp(cv_dataset_chan_name(ds, 1), "HI") && !strcmp(cv_dataset_chan_units(ds, 2), "G") &&
                    !strcmp(cv_dataset_chan_transform(ds, 0), "log10") && !strcmp(cv_dataset_param_name(ds, 5), "A_AGN2") &&
                    !strcmp(cv_dataset_attr(ds, "history"), "test-data") && !strcmp(cv_dataset_attr(ds, "extra"), "value"),
                "dataset: names, units, transforms, attributes");
    int meta = 1;
    for (int m = 0; m < NM; m++) {
        meta &= cv_dataset_sim(ds, m) == m / 15 && cv_dataset_split(ds, m) == split[m];
        for (int k = 0; k < 6; k++) meta &= cv_dataset_param(ds, m, k) == params[m * 6 + k];
    }
    CV_CHECK_OK(meta && cv_dataset_split_count(ds, CV_SPLIT_TRAIN) == 20 && cv_dataset_split_count(ds, CV_SPLIT_VALID) == 6 &&
                    cv_dataset_split_count(ds, CV_SPLIT_TEST) == 4,
                "dataset: params, sim (default map / 15) and split read back");
    st = cv_dataset_read(ds, 0, NM, back);
    CV_CHECK_OK(st == CV_OK && !memcmp(maps, back, sizeof maps), "dataset: all maps read back bit-exactly");
    memset(back, 0, sizeof back);
    st = cv_dataset_read(ds, 17, 3, back);
    CV_CHECK_OK(st == CV_OK && !memcmp(maps + 17 * NC * S * S, back, 3 * NC * S * S * 4), "dataset: a range read back");
    st = cv_dataset_read(ds, 28, 3, back);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "d.nc"), "dataset: out-of-range read is an error");

    /* normalisation: train maps only, in double */
    int norm_ok = 1;
    for (int ch = 0; ch < NC; ch++) {
        double s = 0, s2 = 0, a = 0;
        int64_t n = 0, na = 0;
        for (int m = 0; m < NM; m++)
            for (int i = 0; i < S * S; i++) {
                double l = log10((double)maps[(m * NC + ch) * S * S + i]);
                a += l; na++;
                if (split[m] != CV_SPLIT_TRAIN) continue;
                s += l; s2 += l * l; n++;
            }
        double mu = s / n, sd = sqrt(s2 / n - mu * mu), mua = a / na;
        double gm = cv_dataset_norm_mean(ds, ch), gs = cv_dataset_norm_std(ds, ch);
        if (fabs(gm - mu) > 1e-9 * fabs(mu) || fabs(gs - sd) > 1e-7 * sd || fabs(gm - mua) < 0.1) {
            norm_ok = 0;
            CV_CHECK_DIAG("channel %d: file %.12g +- %.12g, train %.12g +- %.12g, all maps %.12g", ch, gm, gs, mu, sd, mua);
        }
    }
    CV_CHECK_OK(norm_ok, "dataset: norm_mean/norm_std are the train split's (and differ from all maps')");
    cv_dataset_free(ds);

    /* writer errors: no output left behind */
    int before = dir_entries();
    tpath(q, sizeof q, "bad.nc");
    static const char *names[1] = { "Mgas" };
    cv_writer_opts o = cv_writer_opts_default();
    o.n_maps = 3; o.n_chan = 1; o.height = o.width = 4; o.chan_names = names;
    cv_writer *w = NULL;
    float z[3 * 16];
    for (int i = 0; i < 48; i++) z[i] = 1.0f + i;
    z[16 + 5] = 0.0f;
    st = cv_writer_new(q, &o, &w);
    cv_status st2 = st ? st : cv_writer_write(w, 0, 3, z);
    int msg = st2 == CV_ERR_NUMERIC && strstr(cv_last_error(), "map 1") && strstr(cv_last_error(), "y 1, x 1");
    cv_writer_free(w);
    CV_CHECK_OK(st == CV_OK && msg && dir_entries() == before, "writer: zero under log10 names map and pixel, leaves nothing");
    z[21] = NAN;
    st = cv_writer_new(q, &o, &w);
    st2 = st ? st : cv_writer_write(w, 0, 3, z);
    msg = st2 == CV_ERR_NUMERIC && strstr(cv_last_error(), "map 1");
    double zs[3 * 2];
    st2 = st ? st : cv_writer_sums(w, 0, 3, z, zs);
    msg &= st2 == CV_ERR_NUMERIC && strstr(cv_last_error(), "map 1") && strstr(cv_last_error(), "y 1, x 1");
    cv_writer_free(w);
    CV_CHECK_OK(msg && dir_entries() == before, "writer: NaN rejected (also by cv_writer_sums, naming map and pixel)");
    z[21] = 2.0f;
    st = cv_writer_new(q, &o, &w);
    st2 = st ? st : cv_writer_write(w, 0, 2, z);
    cv_status st3 = st2 ? st2 : cv_writer_finish(w);
    msg = st3 == CV_ERR_ARG && strstr(cv_last_error(), "map 2");
    cv_writer_free(w);
    CV_CHECK_OK(st2 == CV_OK && msg && dir_entries() == before, "writer: a map never written fails finish, leaves nothing");

    /* reader errors */
    tpath(q, sizeof q, "nonexistent.nc");
    st = cv_dataset_open(q, &ds);
    CV_CHECK_OK(st != CV_OK && ds == NULL && strstr(cv_last_error(), "nonexistent.nc"), "open: missing file named: %s", cv_last_error());
    FILE *f = fopen(p, "rb");
    static unsigned char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    tpath(q, sizeof q, "half.nc");
    write_bytes(q, buf, n / 2);
    st = cv_dataset_open(q, &ds);
    cv_status st_read = CV_OK;
    if (st == CV_OK) { st_read = cv_dataset_read(ds, 0, NM, back); cv_dataset_free(ds); ds = NULL; }
    CV_CHECK_OK((st != CV_OK || st_read != CV_OK) && strstr(cv_last_error(), "half.nc"),
                "open: truncated file is an error naming it: %s", cv_last_error());
    /* corrupt the middle of the data: the checksum catches it at that map */
    memcpy(buf + n / 2, "CORRUPTCORRUPTCORRUPT", 21);
    tpath(q, sizeof q, "corrupt.nc");
    write_bytes(q, buf, n);
    st = cv_dataset_open(q, &ds);
    int64_t bad = -1;
    if (st == CV_OK) {
        for (int m = 0; m < NM && bad < 0; m++)
            if (cv_dataset_read(ds, m, 1, back) != CV_OK) bad = m;
        if (bad >= 0) {
            char want[64];
            snprintf(want, sizeof want, "map %lld", (long long)bad);
            cv_dataset_read(ds, 0, NM, back);
            CV_CHECK_OK(strstr(cv_last_error(), want) && strstr(cv_last_error(), "corrupt.nc"),
                        "read: corrupted chunk found, error names file and map: %s", cv_last_error());
        } else {
            CV_CHECK_OK(0, "read: corruption in the data went unnoticed");
        }
        cv_dataset_free(ds);
        ds = NULL;
    } else {
        CV_CHECK_OK(strstr(cv_last_error(), "corrupt.nc") != NULL, "open: corrupted file rejected: %s", cv_last_error());
    }
    tpath(q, sizeof q, "text.nc");
    write_bytes(q, "this is not netcdf\n", 19);
    st = cv_dataset_open(q, &ds);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "text.nc"), "open: non-NetCDF file rejected: %s", cv_last_error());
    remove(q);
    tpath(q, sizeof q, "half.nc"); remove(q);
    tpath(q, sizeof q, "corrupt.nc"); remove(q);
}

/* ---- dihedral ------------------------------------------------------------ */

/* Block means against a plain double loop, over the vectorised (F = 2 with
 * an even output width, multiples of 4) and plain (other F) paths; values
 * whose block sums are exact in double, so that any summation order gives
 * the same bits. */
static int block_mean_ref_ok(int h, int w, int f, uint64_t seed, int wide) {
    const int ho = h / f, wo = w / f;
    float *in = malloc((size_t)h * w * 4), *out = malloc((size_t)ho * wo * 4);
    for (int i = 0; i < h * w; i++) {
        double u = cv_data_uniform(seed, 1, (uint64_t)i);
        in[i] = wide ? (float)(1e-14 * pow(10.0, 6.0 * u)) : (float)(1.0 + u);   /* 6 decades: sums of 64 exact */
    }
    int ok = cv_data_block_mean(in, out, h, w, f, 1) == 0;
    const double inv = 1.0 / ((double)f * f);
    for (int y = 0; y < ho && ok; y++)
        for (int x = 0; x < wo && ok; x++) {
            double s = 0;
            for (int dy = 0; dy < f; dy++)
                for (int dx = 0; dx < f; dx++) s += in[(y * f + dy) * w + x * f + dx];
            ok = out[y * wo + x] == (float)(s * inv);
        }
    free(in);
    free(out);
    return ok;
}

/* Does cv_data_block_mean flag value v at pixel i of an (h, w) map? */
static int block_mean_flags(int h, int w, int f, int is_log, int i, float v) {
    float *in = malloc((size_t)h * w * 4), *out = malloc((size_t)(h / f) * (w / f) * 4);
    for (int k = 0; k < h * w; k++) in[k] = 1.0f + (float)(k % 7);
    in[i] = v;
    int r = cv_data_block_mean(in, out, h, w, f, is_log);
    free(in);
    free(out);
    return r;
}

/* HDF5's Fletcher-32 (H5_checksum_fletcher32 in H5checksum.c), as written
 * there: big-endian 16-bit words, end-around carry every 360 words. */
static uint32_t fletcher32_ref(const void *data_, size_t len_) {
    const uint8_t *data = data_;
    size_t len = len_ / 2;
    uint32_t sum1 = 0, sum2 = 0;
    while (len) {
        size_t tlen = len > 360 ? 360 : len;
        len -= tlen;
        do {
            sum1 += (uint32_t)(((uint16_t)data[0]) << 8) | ((uint16_t)data[1]);
            data += 2;
            sum2 += sum1;
        } while (--tlen);
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    if (len_ % 2) {
        sum1 += (uint32_t)(((uint16_t)*data) << 8);
        sum2 += sum1;
        sum1 = (sum1 & 0xffff) + (sum1 >> 16);
        sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    }
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
    return (sum2 << 16) | sum1;
}

static void test_kernels(void) {
    static const int shapes[][3] = { { 16, 16, 4 }, { 12, 24, 4 }, { 8, 20, 4 }, { 8, 40, 8 }, { 6, 12, 2 }, { 6, 10, 2 },
                                     { 9, 12, 3 }, { 10, 15, 5 }, { 12, 12, 12 }, { 4, 4, 1 } };
    int ok = 1;
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (int wide = 0; wide < 2; wide++)
            if (!block_mean_ref_ok(shapes[k][0], shapes[k][1], shapes[k][2], 7 + k, wide)) {
                ok = 0;
                CV_CHECK_DIAG("block mean %dx%d / %d (%s values) differs from the reference", shapes[k][0], shapes[k][1],
                              shapes[k][2], wide ? "6-decade" : "[1, 2)");
            }
    CV_CHECK_OK(ok, "block mean: equals a double loop for F = 1, 2 and 4 (even and odd output width), 3, 5, 8, 12");
    /* every kind of bad value, at the first, a middle and the last pixel,
     * for each path; what each transform accepts */
    static const int paths[][3] = { { 16, 16, 4 }, { 8, 12, 4 }, { 8, 8, 2 }, { 6, 10, 2 }, { 9, 9, 3 }, { 8, 16, 8 } };
    const float bad_log[] = { 0.0f, -0.0f, -1.0f, NAN, INFINITY, -INFINITY };
    const float bad_lin[] = { NAN, INFINITY, -INFINITY };
    const float good_log[] = { 1e-45f /* subnormal */, 3.4028235e38f };
    const float good_lin[] = { 0.0f, -5.0f, -3.4028235e38f };
    int flags = 1;
    for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
        const int h = paths[k][0], w = paths[k][1], f = paths[k][2];
        const int at[3] = { 0, (h / 2) * w + w / 2 + 1, h * w - 1 };
        for (int a = 0; a < 3; a++) {
            for (size_t j = 0; j < sizeof bad_log / sizeof *bad_log; j++) flags &= block_mean_flags(h, w, f, 1, at[a], bad_log[j]) == 1;
            for (size_t j = 0; j < sizeof bad_lin / sizeof *bad_lin; j++) flags &= block_mean_flags(h, w, f, 0, at[a], bad_lin[j]) == 1;
            for (size_t j = 0; j < sizeof good_log / sizeof *good_log; j++) flags &= block_mean_flags(h, w, f, 1, at[a], good_log[j]) == 0;
            for (size_t j = 0; j < sizeof good_lin / sizeof *good_lin; j++) flags &= block_mean_flags(h, w, f, 0, at[a], good_lin[j]) == 0;
        }
    }
    CV_CHECK_OK(flags, "block mean: zero, -0, negative, NaN, +-inf flagged under log10 (NaN, +-inf without), anywhere");

    /* log10 sums against libm, every tail length, exponents over the whole
     * float range, and values next to the reduction's boundaries: each
     * log10 (float polynomial for the mantissa) within 3e-8 of libm's, and
     * the sums, where the rounding errors average out, far closer */
    float *x = malloc(4099 * sizeof *x);
    for (int i = 0; i < 4099; i++) {
        double u = cv_data_uniform(3, 2, (uint64_t)i);
        x[i] = i % 5 == 4 ? nextafterf(i % 2 ? 0.70710678f : 1.41421356f, i % 3 ? 0.0f : 2.0f)
                          : (float)exp((u - 0.5) * 170.0);   /* about 1e-37 .. 1e37 */
    }
    double worst = 0, worst1 = 0;
    int sums_ok = 1;
    for (int i = 0; i < 4099; i++) {
        double s = 0, q = 0, l = log10((double)x[i]);
        if (cv_data_log10_sums(x + i, 1, &s, &q) != CV_OK) { sums_ok = 0; break; }
        worst1 = fmax(worst1, fmax(fabs(s - l), fabs(q - l * l) / (2 * fabs(l) + 1e-300)));
    }
    for (int n = 0; n <= 4099; n += n < 40 ? 1 : 353) {
        double s = -1, q = -1, rs = 0, rq = 0, ra = 0;
        for (int i = 0; i < n; i++) {
            double l = log10((double)x[i]);
            rs += l; rq += l * l; ra += fabs(l);
        }
        if (cv_data_log10_sums(x, (size_t)n, &s, &q) != CV_OK) { sums_ok = 0; break; }
        double e = fmax(fabs(s - rs) / (ra + 1e-300), fabs(q - rq) / (rq + 1e-300));
        if (n == 0) e = (s != 0 || q != 0);
        worst = fmax(worst, e);
    }
    CV_CHECK_OK(sums_ok && worst1 < 3e-8 && worst < 1e-9,
                "log10 sums: each log10 within %.1e of libm's; sums within %.1e (relative to the sum of |log10|), n = 0..4099",
                worst1, worst);
    /* what the statistics see: the mean and std of log10 of lognormal maps
     * as CMD's (and one centred on 1) */
    {
        const size_t nn = 200000;
        const double mus[4] = { 10.41, 4.78, -12.47, 0.0 }, sds[4] = { 0.49, 1.01, 2.04, 0.3 };
        float *y = malloc(nn * sizeof *y);
        double wm = 0, wsd = 0;
        for (int k = 0; k < 4 && y; k++) {
            for (size_t i = 0; i < nn; i++) {
                double u1 = cv_data_uniform(5, (uint64_t)k, 2 * i), u2 = cv_data_uniform(5, (uint64_t)k, 2 * i + 1);
                y[i] = (float)pow(10.0, mus[k] + sds[k] * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
            }
            double s = 0, q = 0, rs = 0, rq = 0;
            if (cv_data_log10_sums(y, nn, &s, &q) != CV_OK) { wm = 1; break; }
            for (size_t i = 0; i < nn; i++) {
                double l = log10((double)y[i]);
                rs += l; rq += l * l;
            }
            const double m = s / nn, rm = rs / nn, sd = sqrt(q / nn - m * m), rsd = sqrt(rq / nn - rm * rm);
            wm = fmax(wm, fabs(m - rm) / fmax(fabs(rm), rsd));
            wsd = fmax(wsd, fabs(sd - rsd) / rsd);
        }
        free(y);
        CV_CHECK_OK(wm < 1e-9 && wsd < 1e-9, "log10 sums: lognormal maps' mean within %.1e, std within %.1e of libm's (relative)",
                    wm, wsd);
    }
    int rej = 1;
    for (int at = 0; at < 19; at++)
        for (size_t j = 0; j < sizeof bad_log / sizeof *bad_log; j++) {
            float y[19];
            double s, q;
            memcpy(y, x, sizeof y);
            y[at] = bad_log[j];
            rej &= cv_data_log10_sums(y, 19, &s, &q) == CV_ERR_NUMERIC;
        }
    CV_CHECK_OK(rej, "log10 sums: zero, -0, negative, NaN, +-inf rejected at any position (vector body and tail)");
    /* subnormal values go to libm, in order */
    float y[11];
    double s, q, rs = 0, rq = 0;
    for (int i = 0; i < 11; i++) {
        y[i] = i == 6 ? 1e-42f : x[i];
        double l = log10((double)y[i]);
        rs += l; rq += l * l;
    }
    CV_CHECK_OK(cv_data_log10_sums(y, 11, &s, &q) == CV_OK && s == rs && q == rq, "log10 sums: a subnormal value is summed exactly as libm's");
    free(x);

    /* Fletcher-32 against a plain copy of HDF5's loop (H5checksum.c), every
     * tail length, long data (several 360-word and 1024-float blocks), all
     * zeros, all ones (sums that are multiples of 65535) and random bits */
    float *fx = malloc(70001 * sizeof *fx);
    int fl_ok = fx != NULL;
    for (int kind = 0; kind < 4 && fl_ok; kind++)
        for (size_t n = 0; n <= 70001; n += n < 40 ? 1 : n < 3000 ? 257 : 16661) {
            for (size_t i = 0; i < n; i++) {
                uint32_t u = kind == 0 ? 0u : kind == 1 ? 0xffffffffu : (uint32_t)cv_data_hash(9, (uint64_t)kind, i);
                if (kind == 3 && (u & 3) == 0) u = 0;
                memcpy(&fx[i], &u, 4);
            }
            if (cv_data_fletcher32(fx, n) != fletcher32_ref(fx, n * 4)) {
                fl_ok = 0;
                CV_CHECK_DIAG("fletcher32: %zu floats of kind %d differ from HDF5's loop", n, kind);
                break;
            }
        }
    free(fx);
    CV_CHECK_OK(fl_ok, "fletcher32: equals HDF5's checksum loop (0..70001 floats; zeros, ones, random bits)");
}

static void test_dihedral(void) {
    enum { D = 5, CC = 2 };
    float in[CC * D * D], out[8][CC * D * D], back[CC * D * D];
    for (int i = 0; i < CC * D * D; i++) in[i] = (float)i;
    int perm_ok = 1, distinct = 1, inverse_ok = 1;
    for (int k = 0; k < 8; k++) {
        cv_data_dihedral(in, out[k], CC, D, k);
        /* exact permutation within each channel */
        for (int ch = 0; ch < CC; ch++) {
            int seen[D * D] = { 0 };
            for (int i = 0; i < D * D; i++) {
                int v = (int)out[k][ch * D * D + i] - ch * D * D;
                if (v < 0 || v >= D * D || seen[v]++) perm_ok = 0;
            }
        }
        for (int j = 0; j < k; j++)
            if (!memcmp(out[j], out[k], sizeof in)) distinct = 0;
        /* inverse: flips are involutions; transpose-then-flip is undone by
         * flip (swapped for the transpose) then transpose */
        int inv = k;
        if (k & 4) inv = 4 | ((k & 1) << 1) | ((k & 2) >> 1);
        cv_data_dihedral(out[k], back, CC, D, inv);
        if (memcmp(back, in, sizeof in)) inverse_ok = 0;
    }
    CV_CHECK_OK(perm_ok && distinct && !memcmp(out[0], in, sizeof in), "dihedral: 8 distinct exact permutations, 0 = identity");
    CV_CHECK_OK(inverse_ok, "dihedral: every transform undone by its inverse");
    /* spot values: transpose, flip x, flip y of a 5x5 */
    CV_CHECK_OK(out[4][1 * D + 2] == in[2 * D + 1] && out[1][0 * D + 0] == in[0 * D + 4] && out[2][0 * D + 0] == in[4 * D + 0],
                "dihedral: code 4 transposes, bit 0 flips x, bit 1 flips y");
}

/* ---- parameter tables and splits ------------------------------------------ */

static void test_params_split(void) {
    char real[2048], p[2048];
    snprintf(real, sizeof real, "%s/data/params_LH_IllustrisTNG.txt", srcdir());
    int64_t n = 0, n2 = 0;
    double *a = NULL, *b = NULL;
    cv_status st = cv_data_read_params(real, 6, &n, &a);
    CV_CHECK_OK(st == CV_OK && n == 1000 && a[0] == 0.309 && a[1] == 0.979 && a[5] == 0.53182,
                "params: the real LH table parses (%lld rows)", (long long)n);
    int in_prior = st == CV_OK;
    for (int64_t r = 0; st == CV_OK && r < n; r++)
        for (int k = 0; k < 6; k++) {
            double lo, hi;
            int lg;
            cv_fields_prior(k, &lo, &hi, &lg);
            if (a[r * 6 + k] < lo * 0.999 || a[r * 6 + k] > hi * 1.001) in_prior = 0;
        }
    CV_CHECK_OK(in_prior, "params: every real value lies inside the documented LH priors");
    /* the same with a '#' header and CRLF line ends */
    FILE *in = fopen(real, "r"), *out = NULL;
    tpath(p, sizeof p, "hdr.txt");
    out = fopen(p, "w");
    if (in && out) {
        char line[512];
        fputs("# Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2\r\n", out);
        while (fgets(line, sizeof line, in)) {
            line[strcspn(line, "\n")] = 0;
            fprintf(out, "%s\r\n", line);
        }
    }
    if (in) fclose(in);
    if (out) fclose(out);
    st = cv_data_read_params(p, 6, &n2, &b);
    CV_CHECK_OK(st == CV_OK && n2 == n && a && !memcmp(a, b, (size_t)n * 6 * sizeof(double)),
                "params: with a # header (and CRLF) the same values");
    free(b); b = NULL;
    tpath(p, sizeof p, "bad.txt");
    write_bytes(p, "0.3 0.8 1 1 1 1\n0.3 0.8 1 abc 1 1\n", 34);
    st = cv_data_read_params(p, 6, &n2, &b);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "bad.txt:2") && strstr(cv_last_error(), "abc"),
                "params: non-numeric value named with file:line: %s", cv_last_error());
    write_bytes(p, "0.3 0.8 1 1 1\n", 14);
    st = cv_data_read_params(p, 6, &n2, &b);
    CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(cv_last_error(), "5 values"), "params: short row rejected: %s", cv_last_error());
    write_bytes(p, "0.3 0.8 1 nan 1 1\n", 18);
    st = cv_data_read_params(p, 6, &n2, &b);
    CV_CHECK_OK(st == CV_ERR_FORMAT, "params: NaN rejected");
    remove(p);
    tpath(p, sizeof p, "rt.txt");
    st = cv_data_write_params(p, n, 6, NULL, a);
    if (st == CV_OK) st = cv_data_read_params(p, 6, &n2, &b);
    CV_CHECK_OK(st == CV_OK && n2 == n && !memcmp(a, b, (size_t)n * 6 * sizeof(double)), "params: write/read round trip of the real table");
    remove(p);
    free(a); free(b);

    int64_t t, v, e;
    cv_data_split_counts(15000, &t, &v, &e);
    int ok1 = t == 13000 && v == 1000 && e == 1000;
    cv_data_split_counts(1000, &t, &v, &e);
    int ok2 = t == 866 && v == 67 && e == 67;
    cv_data_split_counts(3, &t, &v, &e);
    int ok3 = t == 1 && v == 1 && e == 1;
    CV_CHECK_OK(ok1 && ok2 && ok3, "split: 13:1:1 counts (15000 maps, 1000 sims, 3 sims)");
    int8_t s1[1000], s2[1000], s3[1000];
    cv_data_split_assign(1000, 5, s1);
    cv_data_split_assign(1000, 5, s2);
    cv_data_split_assign(1000, 6, s3);
    int cnt[3] = { 0 };
    for (int i = 0; i < 1000; i++) cnt[s1[i]]++;
    CV_CHECK_OK(cnt[0] == 866 && cnt[1] == 67 && cnt[2] == 67 && !memcmp(s1, s2, 1000) && memcmp(s1, s3, 1000),
                "split: assignment has the counts, same seed same split, other seed other split");
}

/* ---- synthetic fields ----------------------------------------------------- */

/* |DFT|^2 of log10 Mgas (mean removed) summed over the 8 modes with
 * |k| <= sqrt(2) kF (half-plane): a simple low-k power. */
static double lowk_power(const float *m, int n) {
    static const int ks[4][2] = { { 1, 0 }, { 0, 1 }, { 1, 1 }, { 1, -1 } };
    double mean = 0;
    for (int i = 0; i < n * n; i++) mean += log10(m[i]);
    mean /= n * n;
    double p = 0;
    for (int q = 0; q < 4; q++) {
        double re = 0, im = 0;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                double ph = 2 * 3.14159265358979323846 * (ks[q][0] * x + ks[q][1] * y) / n;
                double v = log10(m[y * n + x]) - mean;
                re += v * cos(ph);
                im -= v * sin(ph);
            }
        p += re * re + im * im;
    }
    return p;
}

static void test_fields(void) {
    /* FFT: forward + inverse = n^2 * identity; a cosine lands on two bins */
    enum { N = 16 };
    static double z[N * N * 2], z0[N * N * 2];
    for (int i = 0; i < N * N; i++) { z[2 * i] = sin(0.3 * i) + 0.1 * i; z[2 * i + 1] = cos(0.7 * i); }
    memcpy(z0, z, sizeof z);
    cv_fields_fft2(z, N, -1);
    cv_fields_fft2(z, N, +1);
    double err = 0;
    for (int i = 0; i < 2 * N * N; i++) err = fmax(err, fabs(z[i] / (N * N) - z0[i]));
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) { z[2 * (y * N + x)] = cos(2 * 3.14159265358979323846 * 3 * x / N); z[2 * (y * N + x) + 1] = 0; }
    cv_fields_fft2(z, N, -1);
    int bins = fabs(z[2 * 3] - N * N / 2.0) < 1e-9 && fabs(z[2 * (N - 3)] - N * N / 2.0) < 1e-9;
    double rest = 0;
    for (int i = 0; i < N * N; i++)
        if (i != 3 && i != N - 3) rest += fabs(z[2 * i]) + fabs(z[2 * i + 1]);
    CV_CHECK_OK(err < 1e-12 && bins && rest < 1e-9, "fft: round trip (err %.1e) and a cosine's two bins", err);

    /* spectrum */
    double s8 = cv_fields_sigma_r(8.0, 0.3, 0.8), s8b = cv_fields_sigma_r(8.0, 0.15, 0.65);
    double pa = cv_fields_plin(0.1, 0.3, 0.8), pb = cv_fields_plin(0.1, 0.3, 0.9);
    CV_CHECK_OK(fabs(s8 - 0.8) < 1e-6 && fabs(s8b - 0.65) < 1e-6 && fabs(pb / pa - (0.9 * 0.9) / (0.8 * 0.8)) < 1e-9,
                "spectrum: normalised to sigma_8, P scales as sigma_8^2");
    /* at fixed sigma_8 a larger Omega_m h gives more small-scale power */
    double r_lo = cv_fields_plin(5.0, 0.15, 0.8) / cv_fields_plin(0.05, 0.15, 0.8);
    double r_hi = cv_fields_plin(5.0, 0.45, 0.8) / cv_fields_plin(0.05, 0.45, 0.8);
    double p2 = cv_fields_p2d(1.0, 0.3, 0.8, 5.0), p2f = cv_fields_p2d(1.0, 0.3, 0.8, 10.0);
    CV_CHECK_OK(r_hi > r_lo && p2 > 0 && p2f < p2, "spectrum: Omega_m shapes it; a thicker slab projects less power");

    /* Latin hypercube: one value per stratum per parameter */
    enum { NS = 37 };
    double lh[NS * 6];
    cv_fields_latin_hypercube(NS, 9, lh);
    int strata_ok = 1;
    for (int k = 0; k < 6; k++) {
        double lo, hi;
        int lg, hit[NS] = { 0 };
        cv_fields_prior(k, &lo, &hi, &lg);
        for (int i = 0; i < NS; i++) {
            double u = lg ? log(lh[i * 6 + k] / lo) / log(hi / lo) : (lh[i * 6 + k] - lo) / (hi - lo);
            int s = (int)(u * NS);
            if (s < 0 || s >= NS || hit[s]++) strata_ok = 0;
        }
    }
    CV_CHECK_OK(strata_ok, "latin hypercube: each of %d strata hit once for each parameter", NS);

    /* determinism and positivity */
    cv_fields *g = NULL;
    cv_status st = cv_fields_new(32, &g);
    CV_CHECK_OK(st == CV_OK, "fields: generator for 32^2");
    if (st != CV_OK) return;
    static float a[3 * 32 * 32], b[3 * 32 * 32];
    const double pf[6] = { 0.3, 0.8, 1, 1, 1, 1 };
    cv_fields_map(g, pf, 4, 7, 3, a);
    cv_fields_map(g, lh, 4, 0, 0, b);     /* other parameters in between */
    cv_fields_map(g, pf, 4, 7, 3, b);
    int same = !memcmp(a, b, sizeof a);
    cv_fields_map(g, pf, 4, 7, 4, b);
    CV_CHECK_OK(same && memcmp(a, b, sizeof a) && cv_data_check_positive(a, 3 * 32 * 32, NULL) == CV_OK,
                "fields: same (seed, sim, map) same bytes; next map differs; all values > 0");
    const double bad[6] = { 0.3, 0.8, -1, 1, 1, 1 };
    st = cv_fields_map(g, bad, 4, 7, 3, b);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "A_SN1"), "fields: a bad parameter is named");

    /* log10 statistics over the LH prior match the real ones; HI and B
     * correlate with the gas */
    enum { NSIM = 24, PER = 5 };
    double lhs[NSIM * 6];
    cv_fields_latin_hypercube(NSIM, 11, lhs);
    double s[3] = { 0 }, s2[3] = { 0 }, sx[3] = { 0 }, cnt = 0;
    for (int si = 0; si < NSIM; si++)
        for (int j = 0; j < PER; j++) {
            cv_fields_map(g, lhs + si * 6, 11, si, j, a);
            for (int i = 0; i < 32 * 32; i++) {
                double l[3];
                for (int ch = 0; ch < 3; ch++) { l[ch] = log10(a[ch * 1024 + i]); s[ch] += l[ch]; s2[ch] += l[ch] * l[ch]; }
                sx[1] += l[0] * l[1];
                sx[2] += l[0] * l[2];
                cnt++;
            }
        }
    const double want_m[3] = { 10.41, 4.78, -12.47 }, want_s[3] = { 0.49, 1.01, 2.04 };
    int stats_ok = 1;
    double sd[3], mu[3];
    for (int ch = 0; ch < 3; ch++) {
        mu[ch] = s[ch] / cnt;
        sd[ch] = sqrt(s2[ch] / cnt - mu[ch] * mu[ch]);
        if (fabs(mu[ch] - want_m[ch]) > 0.1 * want_s[ch] + 0.02 || fabs(sd[ch] / want_s[ch] - 1) > 0.12) stats_ok = 0;
    }
    double r_hi_gas = (sx[1] / cnt - mu[0] * mu[1]) / (sd[0] * sd[1]);
    double r_b_gas = (sx[2] / cnt - mu[0] * mu[2]) / (sd[0] * sd[2]);
    CV_CHECK_OK(stats_ok, "fields: log10 Mgas %.2f+-%.2f, HI %.2f+-%.2f, B %.2f+-%.2f (real 10.41+-0.49, 4.78+-1.01, -12.47+-2.04)",
                mu[0], sd[0], mu[1], sd[1], mu[2], sd[2]);
    CV_CHECK_OK(r_hi_gas > 0.8 && r_b_gas > 0.5, "fields: channels correlated (r(Mgas,HI) %.2f, r(Mgas,B) %.2f)", r_hi_gas, r_b_gas);

    /* sigma_8 is recoverable: at fixed other parameters the low-k power of
     * log10 Mgas (mean over 15 maps) grows with sigma_8, close to sigma_8^2 */
    double pw[5];
    int mono = 1;
    for (int k = 0; k < 5; k++) {
        double pp[6] = { 0.3, 0.6 + 0.1 * k, 1, 1, 1, 1 };
        pw[k] = 0;
        for (int j = 0; j < 15; j++) {
            cv_fields_map(g, pp, 21, 0, j, a);      /* same noise: only sigma_8 changes */
            pw[k] += lowk_power(a, 32) / 15;
        }
        if (k && pw[k] <= pw[k - 1]) mono = 0;
    }
    double ratio = pw[4] / pw[0], want = (1.0 / 0.6) * (1.0 / 0.6);
    CV_CHECK_OK(mono && ratio > 0.7 * want && ratio < 1.3 * want,
                "fields: low-k power rises with sigma_8 (0.6 -> 1.0: x%.2f, sigma_8^2 ratio %.2f)", ratio, want);
    /* and across a Latin hypercube, independent noise: rank correlation with sigma_8 */
    enum { NL = 30 };
    double lh2[NL * 6], pl[NL], plc[NL];
    cv_fields_latin_hypercube(NL, 5, lh2);
    for (int si = 0; si < NL; si++) {
        pl[si] = 0;
        for (int j = 0; j < 15; j++) {
            cv_fields_map(g, lh2 + si * 6, 5, si, j, a);
            pl[si] += lowk_power(a, 32);
        }
        /* the same with the Omega_m dependence of the linear spectrum's
         * shape divided out (sigma_8 fixed at 0.8 there) */
        plc[si] = pl[si] / cv_fields_p2d(0.3, lh2[si * 6], 0.8, 5.0);
    }
    double tau[2];
    for (int v = 0; v < 2; v++) {
        const double *x = v ? plc : pl;
        int conc = 0, disc = 0;
        for (int i = 0; i < NL; i++)
            for (int j = i + 1; j < NL; j++) {
                double d = (x[i] - x[j]) * (lh2[i * 6 + 1] - lh2[j * 6 + 1]);
                if (d > 0) conc++; else disc++;
            }
        tau[v] = (double)(conc - disc) / (conc + disc);
    }
    CV_CHECK_OK(tau[0] > 0.3 && tau[1] > 0.5,
                "fields: over %d LH simulations, Kendall tau(low-k power, sigma_8) = %.2f, %.2f at known Omega_m", NL, tau[0], tau[1]);

    /* one 3-D box per simulation: the maps are its slabs.  log10 Mgas is
     * c(params) + g2 / ln 10, g2 the slab mean of the box, so (1) a z-slab
     * map averaged over the cells of an x-slab and an x-slab map averaged
     * over the cells of that z-slab give the same profile along y, and
     * (2) the width-weighted mean over the 5 slabs of an axis is the box
     * mean, the same for the three axes */
    enum { NMAP = CV_FIELDS_N_MAPS };
    static float box[NMAP][3 * 32 * 32];
    for (int j = 0; j < NMAP; j++) cv_fields_map(g, pf, 4, 7, j, box[j]);
    double prof_err = 0, prof_amp = 0;
    for (int sa = 0; sa < CV_FIELDS_N_SLAB; sa++)
        for (int sb = 0; sb < CV_FIELDS_N_SLAB; sb++) {
            int ax, za, zb, xa, xb;
            cv_fields_slab(32, sa, &ax, &za, &zb);
            cv_fields_slab(32, 2 * CV_FIELDS_N_SLAB + sb, &ax, &xa, &xb);
            const float *mz = box[sa], *mx = box[2 * CV_FIELDS_N_SLAB + sb];
            for (int y = 0; y < 32; y++) {
                double qa = 0, qb = 0;
                for (int x = xa; x < xb; x++) qa += log10(mz[y * 32 + x]) / (xb - xa);   /* map (y, x) */
                for (int zc = za; zc < zb; zc++) qb += log10(mx[zc * 32 + y]) / (zb - za);   /* map (z, y) */
                prof_err = fmax(prof_err, fabs(qa - qb));
                prof_amp = fmax(prof_amp, fabs(qa - 10.41));
            }
        }
    double axis_mean[3] = { 0 }, mmean[NMAP], mm = 0, mv = 0;
    for (int j = 0; j < NMAP; j++) {
        int ax, lo, hi;
        cv_fields_slab(32, j, &ax, &lo, &hi);
        mmean[j] = 0;
        for (int i = 0; i < 32 * 32; i++) mmean[j] += log10(box[j][i]) / (32 * 32);
        axis_mean[ax] += mmean[j] * (hi - lo) / 32.0;
        mm += mmean[j] / NMAP;
    }
    for (int j = 0; j < NMAP; j++) mv += (mmean[j] - mm) * (mmean[j] - mm) / (NMAP - 1);
    double axis_err = fmax(fabs(axis_mean[0] - axis_mean[1]), fabs(axis_mean[0] - axis_mean[2]));
    CV_CHECK_OK(prof_err < 2e-5 && prof_amp > 1e-2 && axis_err < 2e-6,
                "fields: the 15 maps are slabs of one box (profiles agree to %.1e of %.2f dex, axis means to %.1e)",
                prof_err, prof_amp, axis_err);
    /* the map mean keeps its cosmic variance: over a Latin hypercube, the
     * scatter of the mean log10 Mgas among the maps of a simulation is a
     * large part of its scatter over all maps, so it does not give the
     * parameters away */
    double within = 0, tot = 0, tm = 0;
    static double means[NSIM][NMAP];
    for (int si = 0; si < NSIM; si++) {
        double sm = 0;
        for (int j = 0; j < NMAP; j++) {
            cv_fields_map(g, lhs + si * 6, 13, si, j, a);
            means[si][j] = 0;
            for (int i = 0; i < 32 * 32; i++) means[si][j] += log10(a[i]) / (32 * 32);
            sm += means[si][j] / NMAP;
            tm += means[si][j] / (NSIM * NMAP);
        }
        for (int j = 0; j < NMAP; j++) within += (means[si][j] - sm) * (means[si][j] - sm) / (NSIM * (NMAP - 1));
    }
    for (int si = 0; si < NSIM; si++)
        for (int j = 0; j < NMAP; j++) tot += (means[si][j] - tm) * (means[si][j] - tm) / (NSIM * NMAP - 1);
    CV_CHECK_OK(sqrt(within) > 0.05 && within > 0.25 * tot,
                "fields: map means vary within a simulation (std %.3f dex within, %.3f over all maps)", sqrt(within), sqrt(tot));
    st = cv_fields_map(g, pf, 4, 7, NMAP, b);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "map 15"), "fields: map 15 of a simulation is refused: %s", cv_last_error());
    cv_fields_free(g);
}

static void test_find(void) {
    char p[2048], buf[4096];
    tpath(p, sizeof p, CV_DATA_DEFAULT_NAME);
    write_bytes(p, "x", 1);
    setenv("CV_DATA_DIR", tmpdir, 1);
    cv_status st = cv_data_default_path(buf, sizeof buf);
    CV_CHECK_OK(st == CV_OK && !strcmp(buf, p), "find: $CV_DATA_DIR first (%s)", buf);
    remove(p);
    st = cv_data_default_path(buf, sizeof buf);
    CV_CHECK_OK(st == CV_OK && strstr(buf, "/data/" CV_DATA_DEFAULT_NAME) && access(buf, R_OK) == 0,
                "find: then the source tree's data/ (%s)", buf);
    unsetenv("CV_DATA_DIR");
    st = cv_data_find("no-such-file.nc", buf, sizeof buf);
    CV_CHECK_OK(st == CV_ERR_IO && strstr(cv_last_error(), "no-such-file.nc") && strstr(cv_last_error(), CV_PKGDATADIR) &&
                    strstr(cv_last_error(), "CV_DATA_DIR"),
                "find: a missing file lists the places searched: %s", cv_last_error());
}

int main(void) {
    tap_begin();
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test-data.XXXXXX", t && *t ? t : ".");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 99; }
    test_npy_parser();
    test_npy_files();
    test_dataset();
    test_direct();
    test_kernels();
    test_dihedral();
    test_params_split();
    test_fields();
    test_find();
    char p[2048];
    tpath(p, sizeof p, "d.nc"); remove(p);
    tpath(p, sizeof p, "hdr.txt"); remove(p);
    int left = dir_entries();
    if (left) CV_CHECK_DIAG("%d files left in %s", left, tmpdir);
    rmdir(tmpdir);
    return tap_end();
}
