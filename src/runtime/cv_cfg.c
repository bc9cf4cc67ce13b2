/* cv_cfg.c -- strict INI configuration (see cv_cfg.h).
 * Invariant: an entry is "used" once any getter has read it; lookups
 * return the LAST definition of a (section, key), and redefinitions
 * mark the earlier ones used so only genuinely unknown keys are errors. */
#include "runtime/cv_cfg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>

typedef struct cv_cfg_entry {
    char sec[64], key[64], val[256], origin[256];
    int  used;
} cv_cfg_entry;

struct cv_cfg {
    cv_cfg_entry *e;
    int n, cap;
};

cv_status cv_cfg_new(cv_cfg **out) {
    *out = calloc(1, sizeof **out);
    return *out ? CV_OK : cv_error(CV_ERR_NOMEM, "out of memory");
}

void cv_cfg_free(cv_cfg *c) {
    if (!c) return;
    free(c->e);
    free(c);
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

cv_status cv_cfg_set(cv_cfg *c, const char *sec, const char *key, const char *val, const char *origin) {
    if (strlen(sec) >= 64 || strlen(key) >= 64 || strlen(val) >= 256)
        return cv_error(CV_ERR_FORMAT, "%s: entry [%s] %s is too long", origin, sec, key);
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].sec, sec) && !strcmp(c->e[i].key, key)) c->e[i].used = 1;   /* overridden */
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        cv_cfg_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (!e) return cv_error(CV_ERR_NOMEM, "out of memory");
        c->e = e; c->cap = cap;
    }
    cv_cfg_entry *e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->sec, sizeof e->sec, "%s", sec);
    snprintf(e->key, sizeof e->key, "%s", key);
    snprintf(e->val, sizeof e->val, "%s", val);
    snprintf(e->origin, sizeof e->origin, "%s", origin);
    return CV_OK;
}

cv_status cv_cfg_parse(cv_cfg *c, const char *text, const char *name) {
    char sec[64] = "";
    int line = 0;
    const char *p = text;
    while (*p) {
        char buf[1024];
        size_t n = strcspn(p, "\n");
        line++;
        if (n >= sizeof buf) return cv_error(CV_ERR_FORMAT, "%s:%d: line too long", name, line);
        memcpy(buf, p, n);
        buf[n] = '\0';
        p += n + (p[n] == '\n');
        char *s = buf;
        char *cm = strpbrk(s, ";#");
        if (cm) *cm = '\0';
        s = trim(s);
        if (!*s) continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e || e[1] != '\0') return cv_error(CV_ERR_FORMAT, "%s:%d: malformed section header '%s'", name, line, s);
            *e = '\0';
            char *t = trim(s + 1);
            if (!*t || strlen(t) >= sizeof sec) return cv_error(CV_ERR_FORMAT, "%s:%d: bad section name", name, line);
            snprintf(sec, sizeof sec, "%s", t);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return cv_error(CV_ERR_FORMAT, "%s:%d: expected 'key = value', got '%s'", name, line, s);
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        if (!*k) return cv_error(CV_ERR_FORMAT, "%s:%d: empty key", name, line);
        if (!*sec) return cv_error(CV_ERR_FORMAT, "%s:%d: key '%s' outside any [section]", name, line, k);
        char origin[300];
        snprintf(origin, sizeof origin, "%s:%d", name, line);
        cv_status st = cv_cfg_set(c, sec, k, v, origin);
        if (st != CV_OK) return st;
    }
    return CV_OK;
}

cv_status cv_cfg_load(cv_cfg *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return cv_error(CV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    if (!buf) { fclose(f); return cv_error(CV_ERR_NOMEM, "out of memory"); }
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return cv_error(CV_ERR_IO, "%s: read error", path); }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) { free(buf); return cv_error(CV_ERR_FORMAT, "%s: not a text file", path); }
    cv_status st = cv_cfg_parse(c, buf, path);
    free(buf);
    return st;
}

static cv_cfg_entry *find(cv_cfg *c, const char *sec, const char *key) {
    for (int i = c->n - 1; i >= 0; i--)
        if (!strcmp(c->e[i].sec, sec) && !strcmp(c->e[i].key, key)) return &c->e[i];
    return NULL;
}

int cv_cfg_has(const cv_cfg *c, const char *sec, const char *key) {
    return find((cv_cfg *)c, sec, key) != NULL;
}

int cv_cfg_peek(const cv_cfg *c, const char *sec, const char *key, const char **value, const char **origin) {
    const cv_cfg_entry *e = find((cv_cfg *)c, sec, key);
    if (e && value) *value = e->val;
    if (e && origin) *origin = e->origin;
    return e != NULL;
}

cv_status cv_cfg_str(cv_cfg *c, const char *sec, const char *key, const char *def, const char **out) {
    cv_cfg_entry *e = find(c, sec, key);
    if (!e) { *out = def; return CV_OK; }
    e->used = 1;
    *out = e->val;
    return CV_OK;
}

cv_status cv_cfg_int(cv_cfg *c, const char *sec, const char *key, long def, long lo, long hi, long *out) {
    cv_cfg_entry *e = find(c, sec, key);
    if (!e) { *out = def; return CV_OK; }
    e->used = 1;
    char *end;
    errno = 0;
    long v = strtol(e->val, &end, 10);
    if (errno || end == e->val || *end) return cv_error(CV_ERR_FORMAT, "%s: [%s] %s = '%s' is not an integer", e->origin, sec, key, e->val);
    if (v < lo || v > hi) return cv_error(CV_ERR_FORMAT, "%s: [%s] %s = %ld is out of range [%ld, %ld]", e->origin, sec, key, v, lo, hi);
    *out = v;
    return CV_OK;
}

cv_status cv_cfg_double(cv_cfg *c, const char *sec, const char *key, double def, double lo, double hi, double *out) {
    cv_cfg_entry *e = find(c, sec, key);
    if (!e) { *out = def; return CV_OK; }
    e->used = 1;
    char *end;
    errno = 0;
    double v = strtod(e->val, &end);
    if (errno || end == e->val || *end || !isfinite(v))
        return cv_error(CV_ERR_FORMAT, "%s: [%s] %s = '%s' is not a finite number", e->origin, sec, key, e->val);
    if (v < lo || v > hi) return cv_error(CV_ERR_FORMAT, "%s: [%s] %s = %g is out of range [%g, %g]", e->origin, sec, key, v, lo, hi);
    *out = v;
    return CV_OK;
}

cv_status cv_cfg_fraction(cv_cfg *c, const char *sec, const char *key, float def, float *out) {
    cv_cfg_entry *e = find(c, sec, key);
    double v;
    if (!e) { *out = def; return CV_OK; }
    cv_status st = cv_cfg_double(c, sec, key, def, -HUGE_VAL, HUGE_VAL, &v);
    if (st != CV_OK) return st;
    if (v < 0 || v >= 1)
        return cv_error(CV_ERR_FORMAT, "%s: [%s] %s = %g is out of range [0, 1)", e->origin, sec, key, v);
    if ((float)v >= 1.0f)
        return cv_error(CV_ERR_FORMAT, "%s: [%s] %s = %s is 1 in single precision: out of range [0, 1)", e->origin, sec,
                        key, e->val);
    *out = (float)v;
    return CV_OK;
}

cv_status cv_cfg_ints(cv_cfg *c, const char *sec, const char *key, const char *def, long *out, int max, int *n) {
    cv_cfg_entry *e = find(c, sec, key);
    const char *s = e ? e->val : def;
    const char *origin = e ? e->origin : "default";
    if (e) e->used = 1;
    *n = 0;
    while (*s) {
        char *end;
        while (isspace((unsigned char)*s)) s++;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s) return cv_error(CV_ERR_FORMAT, "%s: [%s] %s: expected comma-separated integers", origin, sec, key);
        if (*n == max) return cv_error(CV_ERR_FORMAT, "%s: [%s] %s: more than %d values", origin, sec, key, max);
        out[(*n)++] = v;
        s = end;
        while (isspace((unsigned char)*s)) s++;
        if (*s == ',') s++;
        else if (*s) return cv_error(CV_ERR_FORMAT, "%s: [%s] %s: unexpected '%c'", origin, sec, key, *s);
    }
    return CV_OK;
}

cv_status cv_cfg_check_unused(const cv_cfg *c) {
    for (int i = 0; i < c->n; i++)
        if (!c->e[i].used)
            return cv_error(CV_ERR_FORMAT, "%s: unknown key '%s' in section [%s]", c->e[i].origin, c->e[i].key, c->e[i].sec);
    return CV_OK;
}

char *cv_cfg_dump(const cv_cfg *c) {
    size_t cap = 256 + (size_t)c->n * 400, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = '\0';
    const char *cur = NULL;
    /* sections in first-appearance order; last definition of each key */
    for (int i = 0; i < c->n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) if (!strcmp(c->e[j].sec, c->e[i].sec)) { seen = 1; break; }
        if (seen) continue;
        cur = c->e[i].sec;
        len += (size_t)snprintf(s + len, cap - len, "%s[%s]\n", len ? "\n" : "", cur);
        for (int j = 0; j < c->n; j++) {
            if (strcmp(c->e[j].sec, cur)) continue;
            int later = 0;
            for (int k = j + 1; k < c->n; k++)
                if (!strcmp(c->e[k].sec, cur) && !strcmp(c->e[k].key, c->e[j].key)) { later = 1; break; }
            if (!later) len += (size_t)snprintf(s + len, cap - len, "%s = %s\n", c->e[j].key, c->e[j].val);
        }
    }
    return s;
}
