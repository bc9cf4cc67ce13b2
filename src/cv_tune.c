/* cv_tune.c -- the per-device parameter table, wisdom files (read,
 * validate, write atomically) and build options (see cv_tune.h and
 * doc/tuning.md).
 *
 * Invariant: a cv_tune is always complete and valid: the table fills every
 * field, and wisdom is applied only after the whole file parsed and
 * validated, so a bad file leaves the table's values untouched. */
#include "cv_tune.h"
#include "cv_device.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HW32 (32 * 32)

/* ---- the table ----------------------------------------------------------- */

typedef struct tune_row {
    const char *entry;
    const char *name;         /* substring of the device name, or NULL */
    const char *vendor;       /* substring of the vendor, or NULL */
    uint64_t    type;         /* CL_DEVICE_TYPE_* bits that must be set, or 0 */
    int32_t     v, cob1, r3, cob3, wcob1, wcob3, wcib1, vec_wg, wgrad_groups, keep_gelu, pre_gelu, elem_wg, ech;
    int         n_rules;
    cv_tune_rule rules[4];
} tune_row;

/* GPUs: CLBlast (tuned per device; it knows the GTX 1080 Ti by name and
 * falls back to the architecture) for maps of at least min_hw with
 * enough channels, the tiled DIRECT kernels for the small maps of the
 * low-resolution stages, where a GEMM per image is launch-bound.  CPUs:
 * the VEC kernels everywhere they apply (bench/bench-conv, doc/conv.md);
 * the launchers fall back to DIRECT for rows narrower than the vector.
 * The CPU rows' blocks were chosen on training steps of the small preset
 * (PoCL, 2-core AVX-512 host): 1x1 backward-weight 3 input x 8 output
 * channels per work-item gave 10-20% more maps per CPU-second than 1 x 16.
 * AVX2 has half the vector registers: its 3x3 blocks are 2 rows x 4
 * channels (backward-weight 4 channels), where 4 x 8 spilled; the 3x3
 * kernel ran 15-25% faster in small-preset steps on a 2-core EPYC.  1x1
 * blocks of 8 output channels: with the GELU caches (keep_gelu 2) and
 * the 1x1 kernel's weight pointers walked per input channel, the 1x1
 * convolutions of a small-preset step take 28 against 38 ms with blocks
 * of 16 (whose 16 accumulators spill AVX2's registers), and a paper step
 * the same time (20.7-22.1 s either way).  Before those changes 8 made the
 * paper step 10% slower. */
#define GPU_RULES(min_hw) 2, { { -1, 0, (min_hw), 16, 16, CV_TUNE_GEMM }, { -1, 0, 0, 0, 0, CV_TUNE_DIRECT } }
#define CPU_RULES 1, { { -1, 0, 0, 0, 0, CV_TUNE_VEC } }

static const tune_row tune_rows[] = {
    /* entry                  name                   vendor    type                  V  C1 R3 COB3 W1 W3 I1 vwg wgr kg  pre  ewg ech */
    { "GeForce GTX 1080 Ti", "GeForce GTX 1080 Ti", NULL,     CL_DEVICE_TYPE_GPU,   4, 8, 2, 8,  8, 8, 1, 64, 32, 0,    0, 256, 1, GPU_RULES(HW32) },
    { "NVIDIA GPU",          NULL,                  "NVIDIA", CL_DEVICE_TYPE_GPU,   4, 8, 2, 8,  8, 8, 1, 64, 32, 0,    0, 256, 1, GPU_RULES(64 * 64) },
    { "AMD GPU",             NULL,                  "Advanced Micro Devices", CL_DEVICE_TYPE_GPU,
                                                                                    4, 8, 2, 8,  8, 8, 1, 64, 32, 0,    0, 256, 1, GPU_RULES(64 * 64) },
    { "AMD GPU",             NULL,                  "AMD",    CL_DEVICE_TYPE_GPU,   4, 8, 2, 8,  8, 8, 1, 64, 32, 0,    0, 256, 1, GPU_RULES(64 * 64) },
    { "Intel GPU",           NULL,                  "Intel",  CL_DEVICE_TYPE_GPU,   4, 8, 2, 8,  8, 8, 1, 32, 16, 0,    0, 128, 1, GPU_RULES(128 * 128) },
    { "CPU (AVX-512)",       "avx512",              NULL,     CL_DEVICE_TYPE_CPU,  16, 16, 4, 8,  8, 8, 3,  4,  4, 2, 4096, 256, 256, CPU_RULES },
    { "CPU",                 NULL,                  NULL,     CL_DEVICE_TYPE_CPU,   8,  8, 2, 4,  8, 4, 3,  4,  4, 2, 4096, 256, 256, CPU_RULES },
    { "other GPU",           NULL,                  NULL,     CL_DEVICE_TYPE_GPU,   4, 8, 2, 8,  8, 8, 1, 32, 16, 0,    0,  64, 1, GPU_RULES(64 * 64) },
    { "other device",        NULL,                  NULL,     0,                    4, 8, 2, 8,  8, 8, 1,  4,  4, 0,    0,  64, 1,
      1, { { -1, 0, 0, 0, 0, CV_TUNE_DIRECT } } },
};

static int ci_contains(const char *hay, const char *needle) {
    size_t nl = strlen(needle);
    if (!hay) return 0;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == nl) return 1;
    }
    return nl == 0;
}

static void fill_row(const tune_row *r, cv_tune *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->entry, sizeof out->entry, "%s", r->entry);
    snprintf(out->source, sizeof out->source, "built-in table");
    out->conv_v = r->v; out->conv_cob1 = r->cob1; out->conv_r3 = r->r3; out->conv_cob3 = r->cob3;
    out->conv_wcob1 = r->wcob1; out->conv_wcob3 = r->wcob3; out->conv_wcib1 = r->wcib1;
    out->vec_wg = r->vec_wg; out->wgrad_groups = r->wgrad_groups; out->keep_gelu = r->keep_gelu;
    out->direct_pre_gelu = r->pre_gelu; out->elem_wg = r->elem_wg; out->elem_chunk = r->ech;
    out->n_rules = r->n_rules;
    memcpy(out->rules, r->rules, (size_t)r->n_rules * sizeof *r->rules);
}

void cv_tune_table(const char *name, const char *vendor, uint64_t type, cv_tune *out) {
    const tune_row *r = &tune_rows[sizeof tune_rows / sizeof *tune_rows - 1];
    for (size_t i = 0; i < sizeof tune_rows / sizeof *tune_rows; i++) {
        const tune_row *c = &tune_rows[i];
        if (c->name && !ci_contains(name, c->name)) continue;
        if (c->vendor && !ci_contains(vendor, c->vendor)) continue;
        if (c->type && !(type & c->type)) continue;
        r = c;
        break;
    }
    fill_row(r, out);
}

int cv_tune_same_params(const cv_tune *a, const cv_tune *b) {
    return a->conv_v == b->conv_v && a->conv_cob1 == b->conv_cob1 && a->conv_r3 == b->conv_r3 &&
           a->conv_cob3 == b->conv_cob3 && a->conv_wcob1 == b->conv_wcob1 && a->conv_wcob3 == b->conv_wcob3 &&
           a->conv_wcib1 == b->conv_wcib1 && a->elem_chunk == b->elem_chunk && a->vec_wg == b->vec_wg &&
           a->wgrad_groups == b->wgrad_groups && a->keep_gelu == b->keep_gelu &&
           a->direct_pre_gelu == b->direct_pre_gelu && a->elem_wg == b->elem_wg && a->n_rules == b->n_rules &&
           !memcmp(a->rules, b->rules, (size_t)a->n_rules * sizeof *a->rules);
}

int cv_tune_table_row(int i, cv_tune *out) {
    if (i < 0 || (size_t)i >= sizeof tune_rows / sizeof *tune_rows) return 0;
    fill_row(&tune_rows[i], out);
    return 1;
}

/* ---- validation, build options, printing --------------------------------- */

static const char *algo_str(int a) {
    return a == CV_TUNE_DIRECT ? "direct" : a == CV_TUNE_GEMM ? "gemm" : a == CV_TUNE_VEC ? "vec" : "?";
}

static const char *op_str(int op) {
    return op == 0 ? "fwd" : op == 1 ? "data" : op == 2 ? "weight" : "any";
}

/* Every field but the rules. */
static cv_status validate_scalars(const cv_tune *t) {
    if (t->conv_v != 4 && t->conv_v != 8 && t->conv_v != 16)
        return cv_error(CV_ERR_FORMAT, "conv_v = %d: expected 4, 8 or 16", t->conv_v);
    if (t->conv_cob1 != 8 && t->conv_cob1 != 16 && t->conv_cob1 != 32)
        return cv_error(CV_ERR_FORMAT, "conv_cob1 = %d: expected 8, 16 or 32", t->conv_cob1);
    if (t->conv_r3 < 1 || t->conv_r3 > 6) return cv_error(CV_ERR_FORMAT, "conv_r3 = %d: expected 1..6", t->conv_r3);
    if (t->conv_cob3 < 1 || t->conv_cob3 > 16) return cv_error(CV_ERR_FORMAT, "conv_cob3 = %d: expected 1..16", t->conv_cob3);
    if (t->conv_wcob1 < 1 || t->conv_wcob1 > 32) return cv_error(CV_ERR_FORMAT, "conv_wcob1 = %d: expected 1..32", t->conv_wcob1);
    if (t->conv_wcob3 < 1 || t->conv_wcob3 > 16) return cv_error(CV_ERR_FORMAT, "conv_wcob3 = %d: expected 1..16", t->conv_wcob3);
    if (t->conv_wcib1 < 1 || t->conv_wcib1 > 4) return cv_error(CV_ERR_FORMAT, "conv_wcib1 = %d: expected 1..4", t->conv_wcib1);
    if (t->elem_chunk < 1 || t->elem_chunk > 65536)
        return cv_error(CV_ERR_FORMAT, "elem_chunk = %d: expected 1..65536", t->elem_chunk);
    if (t->vec_wg < 1 || t->vec_wg > 256) return cv_error(CV_ERR_FORMAT, "vec_wg = %d: expected 1..256", t->vec_wg);
    if (t->wgrad_groups < 1 || t->wgrad_groups > 4096)
        return cv_error(CV_ERR_FORMAT, "wgrad_groups = %d: expected 1..4096", t->wgrad_groups);
    if (t->keep_gelu < 0 || t->keep_gelu > 2) return cv_error(CV_ERR_FORMAT, "keep_gelu = %d: expected 0, 1 or 2", t->keep_gelu);
    if (t->direct_pre_gelu < 0) return cv_error(CV_ERR_FORMAT, "direct_pre_gelu = %d: expected >= 0", t->direct_pre_gelu);
    if (t->elem_wg < 0 || t->elem_wg > 4096 || (t->elem_wg & (t->elem_wg - 1)))
        return cv_error(CV_ERR_FORMAT, "elem_wg = %d: expected 0 or a power of two up to 4096", t->elem_wg);
    return CV_OK;
}

cv_status cv_tune_validate(const cv_tune *t) {
    cv_status st = validate_scalars(t);
    if (st != CV_OK) return st;
    if (t->n_rules < 1 || t->n_rules > CV_TUNE_MAX_RULES)
        return cv_error(CV_ERR_FORMAT, "%d conv_rule lines: expected 1..%d", t->n_rules, CV_TUNE_MAX_RULES);
    for (int i = 0; i < t->n_rules; i++) {
        const cv_tune_rule *r = &t->rules[i];
        if (r->op < -1 || r->op > 2 || (r->k != 0 && r->k != 1 && r->k != 3) || r->min_hw < 0 || r->min_cikk < 0 ||
            r->min_co < 0 || r->algo < CV_TUNE_DIRECT || r->algo > CV_TUNE_VEC)
            return cv_error(CV_ERR_FORMAT, "conv_rule %d is out of range", i + 1);
    }
    const cv_tune_rule *last = &t->rules[t->n_rules - 1];
    if (last->op != -1 || last->k != 0 || last->min_hw || last->min_cikk || last->min_co)
        return cv_error(CV_ERR_FORMAT, "the last conv_rule must match every convolution (any 0 0 0 0 ALGO)");
    return CV_OK;
}

void cv_tune_build_opts(const cv_tune *t, char *buf, size_t n) {
    snprintf(buf, n, "-DCV_CONV_V=%d -DCV_CONV_R3=%d -DCV_CONV_COB3=%d -DCV_CONV_WCOB1=%d -DCV_CONV_WCOB3=%d "
             "-DCV_CONV_WCIB1=%d -DCV_ELEM_CHUNK=%d", t->conv_v, t->conv_r3, t->conv_cob3, t->conv_wcob1, t->conv_wcob3,
             t->conv_wcib1, t->elem_chunk);
}

int cv_tune_conv_algo(const cv_tune *t, int op, int k, int64_t hw, int64_t cikk, int64_t co) {
    for (int i = 0; i < t->n_rules; i++) {
        const cv_tune_rule *r = &t->rules[i];
        if ((r->op >= 0 && r->op != op) || (r->k && r->k != k)) continue;
        if (hw >= r->min_hw && cikk >= r->min_cikk && co >= r->min_co) return r->algo;
    }
    return CV_TUNE_DIRECT;
}

void cv_tune_print(FILE *f, const cv_tune *t) {
    fprintf(f, "  tuning:            %s (table entry \"%s\")\n", t->source, t->entry);
    if (t->warning[0]) fprintf(f, "  tuning warning:    %s\n", t->warning);
    fprintf(f, "  vec kernels:       V %d; channels per work-item 1x1 %d, 3x3 %d (x %d rows); backward-weight %dx%d (1x1) / %d (3x3)\n",
            t->conv_v, t->conv_cob1, t->conv_cob3, t->conv_r3, t->conv_wcib1, t->conv_wcob1, t->conv_wcob3);
    fprintf(f, "  flat kernels:      %d element%s per work-item\n", t->elem_chunk, t->elem_chunk == 1 ? "" : "s");
    fprintf(f, "  launches:          vec work-groups %d, backward-weight %d groups per compute unit, flat work-groups %d%s,\n"
            "                     DIRECT GELU pass from %d pixels%s; kept for the backward: %s\n", t->vec_wg,
            t->wgrad_groups, t->elem_wg, t->elem_wg ? "" : " (driver's choice)", t->direct_pre_gelu,
            t->direct_pre_gelu ? "" : " (never)",
            t->keep_gelu == 2 ? "GELU(x) and GELU'(x)" : t->keep_gelu ? "GELU(x)" : "nothing");
    for (int i = 0; i < t->n_rules; i++) {
        const cv_tune_rule *r = &t->rules[i];
        char lab[32];
        snprintf(lab, sizeof lab, "conv rule %d:", i + 1);
        fprintf(f, "  %-19s%-6s k=%s H*W>=%-6lld Ci*k*k>=%-4lld Co>=%-4lld -> %s\n", lab, op_str(r->op),
                r->k ? (r->k == 1 ? "1" : "3") : "*", (long long)r->min_hw, (long long)r->min_cikk,
                (long long)r->min_co, algo_str(r->algo));
    }
}

/* ---- wisdom files -------------------------------------------------------- */

void cv_cache_dir(const char *dir, char *buf, size_t n) {
    const char *e;
    if (dir && *dir) snprintf(buf, n, "%s", dir);
    else if ((e = getenv("CV_CACHE_DIR")) && *e) snprintf(buf, n, "%s", e);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e) snprintf(buf, n, "%s/cosmovae", e);
    else if ((e = getenv("HOME")) && *e) snprintf(buf, n, "%s/.cache/cosmovae", e);
    else buf[0] = '\0';
}

int cv_mkdir_p(const char *path) {
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') { *p = '\0'; if (mkdir(buf, 0755) && errno != EEXIST) return -1; *p = '/'; }
    }
    return (mkdir(buf, 0755) && errno != EEXIST) ? -1 : 0;
}

void cv_tune_wisdom_path(const char *dir, const char *device_name, char *buf, size_t n) {
    char d[1024];
    cv_cache_dir(dir, d, sizeof d);
    if (!d[0]) { buf[0] = '\0'; return; }
    char s[256];
    size_t k = 0;
    for (const char *p = device_name; *p && k + 1 < sizeof s; p++)
        s[k++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_') ? *p : '_';
    s[k] = '\0';
    snprintf(buf, n, "%s/wisdom-%s.txt", d, s);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *trim(end) || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_algo(const char *s) {
    return !strcmp(s, "direct") ? CV_TUNE_DIRECT : !strcmp(s, "gemm") ? CV_TUNE_GEMM : !strcmp(s, "vec") ? CV_TUNE_VEC : 0;
}

/* "OP K MIN_HW MIN_CIKK MIN_CO ALGO", OP = any|fwd|data|weight, K = *|1|3 */
static int parse_rule(char *s, cv_tune_rule *r) {
    char op[16], k[8], algo[16];
    long long hw, cikk, co;
    char extra;
    if (sscanf(s, "%15s %7s %lld %lld %lld %15s %c", op, k, &hw, &cikk, &co, algo, &extra) != 6) return 0;
    r->op = !strcmp(op, "any") ? -1 : !strcmp(op, "fwd") ? 0 : !strcmp(op, "data") ? 1 : !strcmp(op, "weight") ? 2 : -2;
    r->k = !strcmp(k, "*") ? 0 : !strcmp(k, "1") ? 1 : !strcmp(k, "3") ? 3 : -1;
    r->min_hw = hw; r->min_cikk = cikk; r->min_co = co;
    r->algo = parse_algo(algo);
    return r->op != -2 && r->k != -1 && r->algo != 0 && hw >= 0 && cikk >= 0 && co >= 0;
}

cv_status cv_tune_read(const char *path, const char *device_name, cv_tune *t) {
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? CV_ERR_IO : cv_error(CV_ERR_FORMAT, "%s: cannot read: %s", path, strerror(errno));
    cv_tune w = *t;
    char line[1024];
    int ln = 0, header = 0, rules = 0, device_ok = 0;
    cv_status st = CV_OK;
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) { st = cv_error(CV_ERR_FORMAT, "%s:%d: line too long", path, ln); break; }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        if (!header) {
            if (strcmp(s, "cosmovae-wisdom 1")) {
                st = cv_error(CV_ERR_FORMAT, "%s:%d: not a cosmovae wisdom file (expected the header 'cosmovae-wisdom 1')", path, ln);
                break;
            }
            header = 1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) { st = cv_error(CV_ERR_FORMAT, "%s:%d: expected 'key = value'", path, ln); break; }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        int64_t v = 0;
        int32_t *field = NULL;
        int64_t lo = 0, hi = 0;
        if (!strcmp(key, "device")) {
            if (strcmp(val, device_name)) {
                st = cv_error(CV_ERR_FORMAT, "%s:%d: wisdom for '%s', not for this device '%s'", path, ln, val, device_name);
                break;
            }
            device_ok = 1;
            continue;
        }
        if (!strcmp(key, "driver") || !strcmp(key, "entry") || !strcmp(key, "measured")) continue;   /* informative */
        if (!strcmp(key, "conv_rule")) {
            if (!rules) w.n_rules = 0;        /* the file's rules replace the table's */
            rules = 1;
            if (w.n_rules == CV_TUNE_MAX_RULES) {
                st = cv_error(CV_ERR_FORMAT, "%s:%d: more than %d conv_rule lines", path, ln, CV_TUNE_MAX_RULES);
                break;
            }
            if (!parse_rule(val, &w.rules[w.n_rules])) {
                st = cv_error(CV_ERR_FORMAT, "%s:%d: conv_rule '%s': expected 'OP K MIN_HW MIN_CIKK MIN_CO ALGO' "
                              "(OP any|fwd|data|weight, K *|1|3, ALGO direct|gemm|vec)", path, ln, val);
                break;
            }
            w.n_rules++;
            continue;
        }
        if (!strcmp(key, "conv_v")) { field = &w.conv_v; lo = 4; hi = 16; }
        else if (!strcmp(key, "conv_cob1")) { field = &w.conv_cob1; lo = 8; hi = 32; }
        else if (!strcmp(key, "conv_r3")) { field = &w.conv_r3; lo = 1; hi = 6; }
        else if (!strcmp(key, "conv_cob3")) { field = &w.conv_cob3; lo = 1; hi = 16; }
        else if (!strcmp(key, "conv_wcob1")) { field = &w.conv_wcob1; lo = 1; hi = 32; }
        else if (!strcmp(key, "conv_wcob3")) { field = &w.conv_wcob3; lo = 1; hi = 16; }
        else if (!strcmp(key, "conv_wcib1")) { field = &w.conv_wcib1; lo = 1; hi = 4; }
        else if (!strcmp(key, "elem_chunk")) { field = &w.elem_chunk; lo = 1; hi = 65536; }
        else if (!strcmp(key, "vec_wg")) { field = &w.vec_wg; lo = 1; hi = 256; }
        else if (!strcmp(key, "wgrad_groups")) { field = &w.wgrad_groups; lo = 1; hi = 4096; }
        else if (!strcmp(key, "keep_gelu")) { field = &w.keep_gelu; lo = 0; hi = 2; }
        else if (!strcmp(key, "direct_pre_gelu")) { field = &w.direct_pre_gelu; lo = 0; hi = INT32_MAX; }
        else if (!strcmp(key, "elem_wg")) { field = &w.elem_wg; lo = 0; hi = 4096; }
        else { st = cv_error(CV_ERR_FORMAT, "%s:%d: unknown key '%s'", path, ln, key); break; }
        if (!parse_i64(val, lo, hi, &v)) {
            st = cv_error(CV_ERR_FORMAT, "%s:%d: %s = '%s': expected an integer in %lld..%lld", path, ln, key, val,
                          (long long)lo, (long long)hi);
            break;
        }
        *field = (int32_t)v;
        if (validate_scalars(&w) != CV_OK) {          /* e.g. conv_v = 7: name the line */
            char msg[256];
            snprintf(msg, sizeof msg, "%s", cv_last_error());
            st = cv_error(CV_ERR_FORMAT, "%s:%d: %s", path, ln, msg);
            break;
        }
    }
    if (st == CV_OK && ferror(f)) st = cv_error(CV_ERR_FORMAT, "%s: read error", path);
    fclose(f);
    if (st != CV_OK) return st;
    if (!header) return cv_error(CV_ERR_FORMAT, "%s: empty (no 'cosmovae-wisdom 1' header)", path);
    if (!device_ok) return cv_error(CV_ERR_FORMAT, "%s: no 'device = ...' line", path);
    if ((st = cv_tune_validate(&w)) != CV_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cv_last_error());
        return cv_error(CV_ERR_FORMAT, "%s: %s", path, msg);
    }
    snprintf(w.source, sizeof w.source, "wisdom %s", path);
    w.warning[0] = '\0';
    *t = w;
    return CV_OK;
}

cv_status cv_tune_write(const char *path, const char *device_name, const char *driver, const cv_tune *t,
                        const char *note) {
    cv_status st = cv_tune_validate(t);
    if (st != CV_OK) return st;
    char dir[1100], tmp[1200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) { *slash = '\0'; if (cv_mkdir_p(dir)) return cv_error(CV_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno)); }
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "cosmovae-wisdom 1\n# Kernel parameters measured by cosmovae-info --tune; see doc/tuning.md.\n");
    if (note && *note) {
        fprintf(f, "# ");
        for (const char *p = note; *p; p++) {
            if (*p == '\n') fputs("\n# ", f);
            else fputc(*p, f);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "device = %s\n", device_name);
    if (driver && *driver) fprintf(f, "driver = %s\n", driver);
    fprintf(f, "entry = %s\n", t->entry);
    fprintf(f, "conv_v = %d\nconv_cob1 = %d\nconv_r3 = %d\nconv_cob3 = %d\nconv_wcob1 = %d\nconv_wcob3 = %d\n"
            "conv_wcib1 = %d\nelem_chunk = %d\n", t->conv_v, t->conv_cob1, t->conv_r3, t->conv_cob3, t->conv_wcob1,
            t->conv_wcob3, t->conv_wcib1, t->elem_chunk);
    fprintf(f, "vec_wg = %d\nwgrad_groups = %d\nkeep_gelu = %d\ndirect_pre_gelu = %d\nelem_wg = %d\n", t->vec_wg,
            t->wgrad_groups, t->keep_gelu, t->direct_pre_gelu, t->elem_wg);
    for (int i = 0; i < t->n_rules; i++) {
        const cv_tune_rule *r = &t->rules[i];
        fprintf(f, "conv_rule = %s %s %lld %lld %lld %s\n", op_str(r->op), r->k ? (r->k == 1 ? "1" : "3") : "*",
                (long long)r->min_hw, (long long)r->min_cikk, (long long)r->min_co, algo_str(r->algo));
    }
    int ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return cv_error(CV_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return CV_OK;
}

/* ---- measuring ------------------------------------------------------------ */

#include "ops/cv_ops.h"
#include "cv_train.h"
#include <math.h>
#include <time.h>

static double tune_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A VDVAE convolution to time: batch, channels, kernel, square map size. */
typedef struct tune_shape { int64_t N, Ci, Co; int k, S; } tune_shape;

static const tune_shape shapes_small[] = {              /* the small preset: W = 32, bottleneck 8, batch 4 */
    { 4, 32, 8, 1, 64 }, { 4, 8, 8, 3, 64 }, { 4, 8, 32, 1, 64 },
    { 4, 32, 8, 1, 32 }, { 4, 8, 8, 3, 32 }, { 4, 8, 32, 1, 32 },
    { 4, 32, 8, 1, 16 }, { 4, 8, 8, 3, 16 }, { 4, 8, 32, 1, 16 },
    { 4, 32, 8, 1, 8 },  { 4, 8, 8, 3, 8 },  { 4, 8, 32, 1, 8 },
};
static const tune_shape shapes_paper[] = {              /* the paper preset: W = 128, bottleneck 32 (one map) */
    { 1, 128, 32, 1, 128 }, { 1, 32, 32, 3, 128 }, { 1, 32, 128, 1, 128 },
    { 1, 128, 32, 1, 64 },  { 1, 32, 32, 3, 64 },  { 1, 32, 128, 1, 64 },
};

/* Device buffers for the largest shape. */
typedef struct tune_bufs { cl_mem x, dx, y, dy, w, dw, b, db; } tune_bufs;

static void bufs_free(tune_bufs *b) {
    cl_mem *m[] = { &b->x, &b->dx, &b->y, &b->dy, &b->w, &b->dw, &b->b, &b->db };
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) if (*m[i]) { clReleaseMemObject(*m[i]); *m[i] = NULL; }
}

static cv_status bufs_new(cv_ctx *ctx, size_t act, size_t wts, tune_bufs *b) {
    cv_status st = CV_OK;
    memset(b, 0, sizeof *b);
    CV_TRY(cv_ctx_alloc(ctx, "tuning x", act * sizeof(float), 1, &b->x));
    CV_TRY(cv_ctx_alloc(ctx, "tuning dx", act * sizeof(float), 1, &b->dx));
    CV_TRY(cv_ctx_alloc(ctx, "tuning y", act * sizeof(float), 1, &b->y));
    CV_TRY(cv_ctx_alloc(ctx, "tuning dy", act * sizeof(float), 1, &b->dy));
    CV_TRY(cv_ctx_alloc(ctx, "tuning w", wts * sizeof(float), 1, &b->w));
    CV_TRY(cv_ctx_alloc(ctx, "tuning dw", wts * sizeof(float), 1, &b->dw));
    CV_TRY(cv_ctx_alloc(ctx, "tuning b", 1024 * sizeof(float), 1, &b->b));
    CV_TRY(cv_ctx_alloc(ctx, "tuning db", 1024 * sizeof(float), 1, &b->db));
    {   /* values in GELU's curved range, not zeros */
        cv_tensor t = { b->x, 0, { 1, 1, 1, (int64_t)act } };
        CV_TRY(cv_fill_fwd(ctx, &t, 0.37f));
        t.buf = b->dy; CV_TRY(cv_fill_fwd(ctx, &t, -0.11f));
        t.buf = b->w; t.shape[3] = (int64_t)wts; CV_TRY(cv_fill_fwd(ctx, &t, 0.05f));
        CV_TRY(cv_ctx_finish(ctx));
    }
    return CV_OK;
fail:
    bufs_free(b);
    return st;
}

static cv_tensor view4(cl_mem m, int64_t n, int64_t c, int64_t h, int64_t w) {
    cv_tensor t = { m, 0, { n, c, h, w } };
    return t;
}

/* One op (0 forward, 1 backward-data, 2 backward-weight + bias) of a shape. */
static cv_status run_conv(cv_ctx *ctx, const tune_bufs *b, const tune_shape *s, int op, cv_conv_algo a) {
    cv_tensor x = view4(b->x, s->N, s->Ci, s->S, s->S), dx = view4(b->dx, s->N, s->Ci, s->S, s->S);
    cv_tensor y = view4(b->y, s->N, s->Co, s->S, s->S), dy = view4(b->dy, s->N, s->Co, s->S, s->S);
    cv_tensor w = view4(b->w, s->Co, s->Ci, s->k, s->k), dw = view4(b->dw, s->Co, s->Ci, s->k, s->k);
    cv_tensor bb = view4(b->b, 1, s->Co, 1, 1), db = view4(b->db, 1, s->Co, 1, 1);
    cv_conv2d_params p = { s->k, 1, 0, a };
    if (op == 0) return cv_conv2d_fwd(ctx, &x, &w, &bb, &y, &p);
    if (op == 1) return cv_conv2d_bwd(ctx, &x, &w, &dy, &dx, NULL, NULL, &p);
    return cv_conv2d_bwd(ctx, &x, &w, &dy, NULL, &dw, &db, &p);
}

/* Minimum wall time of reps runs (after one warm-up run, which also
 * compiles the kernels); *out seconds. */
static cv_status time_conv(cv_ctx *ctx, const tune_bufs *b, const tune_shape *s, int op, cv_conv_algo a, int reps,
                           double *out) {
    cv_status st = CV_OK;
    int64_t xs[4] = { s->N, s->Ci, s->S, s->S };
    cv_conv2d_params p = { s->k, 1, 0, a };
    cl_mem scr;
    size_t ws = cv_conv2d_workspace(ctx, xs, s->Co, &p);
    if (ws) CV_TRY(cv_ctx_scratch(ctx, ws, &scr));
    CV_TRY(run_conv(ctx, b, s, op, a));
    CV_TRY(cv_ctx_finish(ctx));
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = tune_now();
        CV_TRY(run_conv(ctx, b, s, op, a));
        CV_TRY(cv_ctx_finish(ctx));
        double t = tune_now() - t0;
        if (t < best) best = t;
    }
    *out = best;
fail:
    return st;
}

static const char *const op_names[3] = { "forward", "backward-data", "backward-weight" };

/* A context and buffers for measuring candidates: rebuilt only when a
 * candidate's build options differ from the live context's, otherwise the
 * candidate's run-time parameters are swapped in (cv_ctx_set_tune). */
typedef struct tune_session {
    const cv_tune_measure_opts *o;
    cv_ctx    *ctx;
    tune_bufs  b;
    size_t     act, wts;
    /* training steps of the small preset (step_scorer), made on demand */
    cv_cfg    *cfg;
    cv_model  *m;
    cv_trainer *tr;
    float     *batch;
} tune_session;

static void session_end(tune_session *ss) {
    cv_trainer_free(ss->tr); ss->tr = NULL;
    cv_model_free(ss->m); ss->m = NULL;
    cv_cfg_free(ss->cfg); ss->cfg = NULL;
    free(ss->batch); ss->batch = NULL;
    bufs_free(&ss->b);
    cv_ctx_free(ss->ctx);
    ss->ctx = NULL;
}

static cv_status session_use(tune_session *ss, const cv_tune *cand) {
    if (ss->ctx && cv_ctx_set_tune(ss->ctx, cand) == CV_OK) return CV_OK;
    cv_error_clear();
    session_end(ss);
    cv_ctx_opts co = cv_ctx_opts_default();
    co.device = ss->o->device; co.cache_dir = ss->o->cache_dir; co.tune = cand;
    cv_status st = cv_ctx_new(&co, &ss->ctx);
    if (st == CV_OK) st = bufs_new(ss->ctx, ss->act, ss->wts, &ss->b);
    if (st != CV_OK) session_end(ss);
    return st;
}

typedef struct scorer_args {
    tune_session *ss;
    int reps;
} scorer_args;

typedef cv_status (*tune_scorer)(scorer_args *a, const cv_tune *cand, double *score);

/* A trainer of the small preset (batch 4) on the session's context. */
static cv_status session_trainer(tune_session *ss) {
    cv_status st = CV_OK;
    if (ss->tr) return CV_OK;
    cv_model_cfg mc;
    CV_TRY(cv_cfg_new(&ss->cfg));
    CV_TRY(cv_cfg_parse(ss->cfg, cv_model_preset("small"), "small"));
    CV_TRY(cv_model_cfg_read(ss->cfg, &mc));
    CV_TRY(cv_model_new(&mc, &ss->m));
    CV_TRY(cv_model_to_device(ss->m, ss->ctx, 0));
    cv_train_opts to = cv_train_opts_default();
    CV_TRY(cv_trainer_new(ss->ctx, ss->m, &to, &ss->tr));
    CV_TRY(cv_trainer_init_params(ss->tr));
    size_t n = (size_t)4 * mc.channels * mc.size * mc.size;
    if (!(ss->batch = malloc(n * sizeof *ss->batch))) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (size_t i = 0; i < n; i++) ss->batch[i] = (float)sin(0.013 * (double)i) * 0.9f;
    return CV_OK;
fail:
    session_end(ss);
    return st;
}

/* Training steps of the small preset: what the parameters are for, with
 * the caches, liveness and mix of shapes of a real step (per-op timings
 * of the same candidates did not predict it: a VEC choice 10% faster per
 * op made steps 10% slower).  Minimum over repetitions of two steps. */
static cv_status step_scorer(scorer_args *a, const cv_tune *cand, double *score) {
    cv_status st = session_use(a->ss, cand);
    if (st == CV_OK && a->ss->tr) {              /* run-time change on a live context: rebuild the plan */
        cv_trainer_free(a->ss->tr); a->ss->tr = NULL;
        cv_model_free(a->ss->m); a->ss->m = NULL;
        cv_cfg_free(a->ss->cfg); a->ss->cfg = NULL;
        free(a->ss->batch); a->ss->batch = NULL;
    }
    if (st == CV_OK) st = session_trainer(a->ss);
    cv_step_stats s;
    if (st == CV_OK) st = cv_trainer_step(a->ss->tr, a->ss->batch, &s);      /* warm-up (and kernel builds) */
    *score = 1e30;
    for (int r = 0; st == CV_OK && r < a->reps; r++) {
        double t0 = tune_now();
        for (int k = 0; k < 2 && st == CV_OK; k++) st = cv_trainer_step(a->ss->tr, a->ss->batch, &s);
        double t = tune_now() - t0;
        if (t < *score) *score = t;
    }
    return st;
}

/* Coordinate descent over one field: try each candidate value, keep one
 * that beats the current by more than 3% (measurement noise on a shared
 * host must not flip a choice). */
static cv_status descend(FILE *rep, const char *name, int32_t *field, const int32_t *vals, int nvals, cv_tune *cur,
                         double *cur_score, tune_scorer fn, scorer_args *u) {
    int32_t keep = *field;
    for (int i = 0; i < nvals; i++) {
        if (vals[i] == keep) continue;
        *field = vals[i];
        double s;
        cv_status st = cv_tune_validate(cur);
        if (st != CV_OK) { cv_error_clear(); continue; }
        st = fn(u, cur, &s);
        if (st == CV_ERR_BUILD || st == CV_ERR_DEVMEM || st == CV_ERR_CL) {   /* the device cannot run it: skip */
            if (rep) fprintf(rep, "  %-14s %-6d not usable here: %.120s\n", name, vals[i], cv_last_error());
            cv_error_clear();
            continue;
        }
        if (st != CV_OK) { *field = keep; return st; }
        int better = s < 0.97 * *cur_score;
        if (rep) fprintf(rep, "  %-14s %-6d %10.3f ms%s\n", name, vals[i], s * 1e3, better ? "  (better)" : "");
        if (better) { *cur_score = s; keep = vals[i]; }
    }
    *field = keep;
    return CV_OK;
}

cv_status cv_tune_measure(const cv_tune_measure_opts *o, cv_tune *best, char *device, size_t device_n,
                          char *driver, size_t driver_n, char *summary, size_t summary_n) {
    cv_status st = CV_OK;
    cv_ctx *ctx = NULL;
    tune_bufs b;
    tune_session ss;
    memset(&b, 0, sizeof b);
    memset(&ss, 0, sizeof ss);
    FILE *rep = o->report;
    double t_start = tune_now();
    tune_shape sh[sizeof shapes_small / sizeof *shapes_small + sizeof shapes_paper / sizeof *shapes_paper];
    int ns = 0;
    for (size_t i = 0; i < sizeof shapes_small / sizeof *shapes_small; i++)
        if (!o->quick || shapes_small[i].S == 64 || shapes_small[i].S == 16) sh[ns++] = shapes_small[i];
    if (!o->quick)
        for (size_t i = 0; i < sizeof shapes_paper / sizeof *shapes_paper; i++) sh[ns++] = shapes_paper[i];
    size_t act = 0, wts = 0;
    for (int i = 0; i < ns; i++) {
        size_t a = (size_t)(sh[i].N * (sh[i].Ci > sh[i].Co ? sh[i].Ci : sh[i].Co) * sh[i].S * sh[i].S);
        size_t w = (size_t)(sh[i].Ci * sh[i].Co * sh[i].k * sh[i].k);
        if (a > act) act = a;
        if (w > wts) wts = w;
    }
    int reps = o->quick ? 3 : 5;           /* minimum over repetitions: a shared host's noise is one-sided */
    unsigned char won_vec[sizeof sh / sizeof *sh * 3];
    memset(won_vec, 0, sizeof won_vec);
    cv_conv_algo win[sizeof sh / sizeof *sh][3];

    /* the starting point: the table entry, no wisdom */
    cv_ctx_opts co = cv_ctx_opts_default();
    co.device = o->device; co.cache_dir = o->cache_dir; co.no_wisdom = 1;
    CV_TRY(cv_ctx_new(&co, &ctx));
    cv_tune cur = *cv_ctx_tune(ctx);
    snprintf(device, device_n, "%s", cv_ctx_device_name(ctx));
    snprintf(driver, driver_n, "%s", cv_ctx_driver(ctx));
    if (rep) {
        fprintf(rep, "tuning %s (table entry \"%s\", %d compute units)%s\n", device, cur.entry,
                cv_ctx_compute_units(ctx), o->quick ? ", quick" : "");
        fprintf(rep, "convolution algorithms, GELU on the input, min of %d runs (ms):\n", reps);
        fprintf(rep, "  %-30s %-16s %9s %9s %9s  choice\n", "shape", "op", "direct", "gemm", "vec");
    }
    CV_TRY(bufs_new(ctx, act, wts, &b));

    /* 1. the algorithm per shape and op; an algorithm more than 3x slower
     * than the winner on an earlier shape of the same op and kernel size is
     * not timed again (CLBlast on a CPU, say), unless nothing else runs */
    unsigned char pruned[3][2][3];
    memset(pruned, 0, sizeof pruned);
    for (int i = 0; i < ns; i++) {
        for (int op = 0; op < 3; op++) {
            double t[3] = { -1, -1, -1 };
            cv_conv_algo algos[3] = { CV_CONV_DIRECT, CV_CONV_GEMM, CV_CONV_VEC };
            int64_t xs[4] = { sh[i].N, sh[i].Ci, sh[i].S, sh[i].S };
            int bi = -1, fits[3], n_try = 0;
            for (int a = 0; a < 3; a++) {
                cv_conv2d_params p = { sh[i].k, 1, 0, algos[a] };
                fits[a] = cv_conv2d_algo(ctx, xs, sh[i].Co, &p, op) == algos[a];   /* VEC may not fit */
                n_try += fits[a] && !pruned[op][sh[i].k == 3][a];
            }
            for (int a = 0; a < 3; a++) {
                if (!fits[a]) continue;
                if (n_try > 0 && pruned[op][sh[i].k == 3][a]) continue;      /* pruned, unless nothing else runs */
                st = time_conv(ctx, &b, &sh[i], op, algos[a], reps, &t[a]);
                if (st == CV_ERR_DEVMEM || st == CV_ERR_CL) {             /* e.g. CLBlast cannot run it here */
                    if (rep) fprintf(rep, "  (%s %s: %.100s)\n", algos[a] == CV_CONV_GEMM ? "gemm" : "kernel",
                                     op_names[op], cv_last_error());
                    cv_error_clear();
                    st = CV_OK;
                    t[a] = -1;
                    continue;
                }
                if (st != CV_OK) goto fail;
                if (bi < 0 || t[a] < t[bi]) bi = a;
            }
            if (bi < 0) { st = cv_error(CV_ERR_CL, "tuning: no convolution algorithm runs on %s", device); goto fail; }
            win[i][op] = algos[bi];
            for (int a = 0; a < 3; a++) if (t[a] > 3 * t[bi]) pruned[op][sh[i].k == 3][a] = 1;
            if (algos[bi] == CV_CONV_VEC) won_vec[i * 3 + op] = 1;
            if (rep) {
                char s[64], c3[3][16];
                snprintf(s, sizeof s, "%lldx%lldx%dx%d %dx%d ->%lld", (long long)sh[i].N, (long long)sh[i].Ci, sh[i].S,
                         sh[i].S, sh[i].k, sh[i].k, (long long)sh[i].Co);
                for (int a = 0; a < 3; a++) {
                    if (t[a] < 0) snprintf(c3[a], sizeof c3[a], "-");
                    else snprintf(c3[a], sizeof c3[a], "%.3f", t[a] * 1e3);
                }
                fprintf(rep, "  %-30s %-16s %9s %9s %9s  %s\n", s, op_names[op], c3[0], c3[1], c3[2],
                        algo_str((int)algos[bi]));
            }
        }
    }
    bufs_free(&b);
    cv_ctx_free(ctx);
    ctx = NULL;
    if (rep) fprintf(rep, "  (%.0f s)\n", tune_now() - t_start);

    /* 2. rules: per op and kernel size, map sizes from the largest down;
     * a rule where the winner changes, the smallest size's winner for the
     * rest; then one catch-all */
    {
        int n = 0;
        for (int op = 0; op < 3; op++)
            for (int k = 1; k <= 3; k += 2) {
                int64_t sizes[16];
                int nsz = 0;
                for (int i = 0; i < ns; i++) {
                    if (sh[i].k != k) continue;
                    int64_t hw = (int64_t)sh[i].S * sh[i].S, dup = 0;
                    for (int j = 0; j < nsz; j++) dup |= sizes[j] == hw;
                    if (!dup && nsz < 16) sizes[nsz++] = hw;
                }
                for (int a = 1; a < nsz; a++)              /* descending */
                    for (int j = a; j > 0 && sizes[j] > sizes[j - 1]; j--) { int64_t x = sizes[j]; sizes[j] = sizes[j - 1]; sizes[j - 1] = x; }
                int last = -1;
                for (int j = 0; j < nsz; j++) {
                    /* the winner at this size: the most common over the shapes of that size */
                    int votes[4] = { 0 };
                    for (int i = 0; i < ns; i++)
                        if (sh[i].k == k && (int64_t)sh[i].S * sh[i].S == sizes[j]) votes[win[i][op]]++;
                    int w = CV_CONV_DIRECT;
                    for (int a = 1; a < 4; a++) if (votes[a] > votes[w]) w = a;
                    int64_t min_hw = j == nsz - 1 ? 0 : sizes[j];
                    if (w == last && n > 0) { cur.rules[n - 1].min_hw = min_hw; continue; }
                    if (n == CV_TUNE_MAX_RULES - 1) break;
                    cv_tune_rule r = { op, k, min_hw, 0, 0, w };
                    cur.rules[n++] = r;
                    last = w;
                }
            }
        cv_tune_rule any = { -1, 0, 0, 0, 0, CV_TUNE_DIRECT };
        cur.rules[n++] = any;
        cur.n_rules = n;
    }

    /* 3. the VEC kernels' parameters, where VEC won anything; build
     * options first (each a program of its own), then run-time ones */
    int any_vec = 0;
    for (int i = 0; i < ns * 3; i++) any_vec |= won_vec[i];
    ss.o = o; ss.act = act; ss.wts = wts;
    scorer_args sa = { &ss, reps };
    if (any_vec) {
        double s0;
        CV_TRY(step_scorer(&sa, &cur, &s0));
        if (rep) fprintf(rep, "vec kernel parameters, one at a time (two training steps of the small preset, ms):\n"
                              "  %-14s %-6s %10.3f ms\n", "(start)", "", s0 * 1e3);
        static const int32_t v_vals[] = { 8, 16, 4 }, cob1_vals[] = { 8, 16, 32 }, r3_vals[] = { 2, 4, 1, 6 };
        static const int32_t cob3_vals[] = { 8, 16, 4 }, wcob1_vals[] = { 16, 32, 8 }, wcob3_vals[] = { 8, 4 };
        static const int32_t vwg_vals[] = { 1, 4, 16, 64 }, keep_vals[] = { 0, 1, 2 };
        if (!o->quick) {                   /* quick: no rebuilds, run-time parameters only */
            CV_TRY(descend(rep, "conv_v", &cur.conv_v, v_vals, 3, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_r3", &cur.conv_r3, r3_vals, 4, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_cob3", &cur.conv_cob3, cob3_vals, 3, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_wcob1", &cur.conv_wcob1, wcob1_vals, 3, &cur, &s0, step_scorer, &sa));
            CV_TRY(descend(rep, "conv_wcob3", &cur.conv_wcob3, wcob3_vals, 2, &cur, &s0, step_scorer, &sa));
            static const int32_t wcib1_vals[] = { 1, 2, 3 };
            CV_TRY(descend(rep, "conv_wcib1", &cur.conv_wcib1, wcib1_vals, 3, &cur, &s0, step_scorer, &sa));
            static const int32_t ech_vals[] = { 256, 64, 1024, 4096 };
            CV_TRY(descend(rep, "elem_chunk", &cur.elem_chunk, ech_vals, 4, &cur, &s0, step_scorer, &sa));
            CV_TRY(step_scorer(&sa, &cur, &s0));   /* back on the best build; run-time parameters now */
        }
        CV_TRY(descend(rep, "conv_cob1", &cur.conv_cob1, cob1_vals, 3, &cur, &s0, step_scorer, &sa));
        CV_TRY(descend(rep, "vec_wg", &cur.vec_wg, vwg_vals, 4, &cur, &s0, step_scorer, &sa));
        CV_TRY(descend(rep, "keep_gelu", &cur.keep_gelu, keep_vals, 3, &cur, &s0, step_scorer, &sa));
        if (rep) fprintf(rep, "  (%.0f s)\n", tune_now() - t_start);
    }

    /* 4. backward-weight parallelism and flat work-groups (run-time),
     * on training steps too */
    {
        double s0;
        CV_TRY(step_scorer(&sa, &cur, &s0));
        if (rep) fprintf(rep, "backward-weight groups per compute unit and flat work-groups (two training steps, ms):\n"
                              "  %-14s %-6s %10.3f ms\n", "(start)", "", s0 * 1e3);
        static const int32_t wg_vals[] = { 1, 2, 4, 8, 16, 32, 64 };
        CV_TRY(descend(rep, "wgrad_groups", &cur.wgrad_groups, wg_vals, o->quick ? 4 : 7, &cur, &s0, step_scorer, &sa));
        static const int32_t ew_vals[] = { 0, 64, 128, 256, 512, 1024 };
        CV_TRY(descend(rep, "elem_wg", &cur.elem_wg, ew_vals, 6, &cur, &s0, step_scorer, &sa));
    }
    session_end(&ss);

    snprintf(cur.source, sizeof cur.source, "measured");
    cur.warning[0] = '\0';
    CV_TRY(cv_tune_validate(&cur));
    *best = cur;
    snprintf(summary, summary_n, "measured%s in %.0f s: %d shapes x 3 ops, %d conv rules%s", o->quick ? " (quick)" : "",
             tune_now() - t_start, ns, cur.n_rules, any_vec ? ", vec parameters" : "");
fail:
    session_end(&ss);
    bufs_free(&b);
    cv_ctx_free(ctx);
    return st;
}
