/* cv_tune.c -- the per-device parameter table, wisdom files (read,
 * validate, write atomically) and build options (see cv_tune.h and
 * doc/tuning.md).
 *
 * Invariant: a cv_tune is always complete and valid: the table fills every
 * field, and wisdom is applied only after the whole file parsed and
 * validated, so a bad file leaves the table's values untouched. */
#include "runtime/cv_tune.h"
#include "runtime/cv_device.h"

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

const char *cv_tune_algo_name(int a) {
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
                (long long)r->min_co, cv_tune_algo_name(r->algo));
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
                (long long)r->min_hw, (long long)r->min_cikk, (long long)r->min_co, cv_tune_algo_name(r->algo));
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

