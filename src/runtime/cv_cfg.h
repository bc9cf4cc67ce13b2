/* cv_cfg.h -- darknet-like INI configuration, strict: every key must be
 * consumed by someone, and a key nobody asked for is an error naming the
 * file, line, section and key.
 *
 *   [model]
 *   width = 32          ; comments with ; or #
 *
 * Values are strings; typed getters check and convert them, naming the
 * key in errors.  Later definitions of a key override earlier ones, so a
 * preset text followed by the user's file gives "preset + overrides". */
#ifndef CV_CFG_H
#define CV_CFG_H

#include "runtime/cv.h"

typedef struct cv_cfg cv_cfg;

cv_status cv_cfg_new(cv_cfg **out);
void      cv_cfg_free(cv_cfg *c);
/* Parse text (name = file name for messages) and add its entries. */
cv_status cv_cfg_parse(cv_cfg *c, const char *text, const char *name);
cv_status cv_cfg_load(cv_cfg *c, const char *path);
/* Set one entry, as from "section.key=value" on a command line. */
cv_status cv_cfg_set(cv_cfg *c, const char *section, const char *key, const char *value, const char *origin);

/* Getters: if the key is absent, *out = def and CV_OK.  Marks it used. */
cv_status cv_cfg_str(cv_cfg *c, const char *sec, const char *key, const char *def, const char **out);
cv_status cv_cfg_int(cv_cfg *c, const char *sec, const char *key, long def, long lo, long hi, long *out);
cv_status cv_cfg_double(cv_cfg *c, const char *sec, const char *key, double def, double lo, double hi, double *out);
/* A decay or averaging factor in [0, 1), checked as the float the device
 * uses (0.999999999 is 1 in single precision, and refused). */
cv_status cv_cfg_fraction(cv_cfg *c, const char *sec, const char *key, float def, float *out);
/* Comma-separated integers "3,3,2,2" into out[0..max); *n set. */
cv_status cv_cfg_ints(cv_cfg *c, const char *sec, const char *key, const char *def, long *out, int max, int *n);
int       cv_cfg_has(const cv_cfg *c, const char *sec, const char *key);
/* The last definition's value and origin ("file:line", "--set", ...)
 * without marking it used; 0 if absent. */
int       cv_cfg_peek(const cv_cfg *c, const char *sec, const char *key, const char **value, const char **origin);

/* CV_ERR_FORMAT naming the first entry no getter consumed. */
cv_status cv_cfg_check_unused(const cv_cfg *c);
/* Canonical text of every entry (last definition wins), for checkpoints. */
char     *cv_cfg_dump(const cv_cfg *c);   /* caller frees with free() */

#endif
