/* test-device.c -- the OpenCL runtime: device selection and its errors,
 * kernel table, program cache, build-failure logs, allocation errors,
 * arenas, guard bands and profiling. */
#include "tap.h"
#include "runtime/cv_cl_sources.h"
#include "ops/cv_ops.h"

#include <math.h>
#include <unistd.h>

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

/* Write embedded source i to dir (without its leading #line directive). */
static void write_source(const char *dir, int i) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, cv_cl_sources[i].file);
    FILE *f = fopen(path, "w");
    if (!f) return;
    for (int j = 1; j < cv_cl_sources[i].n_lines; j++) fputs(cv_cl_sources[i].lines[j], f);
    fclose(f);
}

int main(void) {
    tap_begin();
    char cache[] = "/tmp/cv-test-cacheXXXXXX";
    if (!mkdtemp(cache)) { perror("mkdtemp"); return 99; }
    setenv("CV_CACHE_DIR", cache, 1);
    cv_ctx *ctx = tap_ctx();

    /* kernel table */
    cl_kernel k;
    CV_CHECK_OK(cv_ctx_kernel(ctx, "cvk_copy", &k) == CV_OK && k, "kernel table has cvk_copy (%d kernels)", cv_ctx_n_kernels(ctx));
    cv_status st = cv_ctx_kernel(ctx, "cvk_no_such_kernel", &k);
    CV_CHECK_OK(st == CV_ERR_ARG && strstr(cv_last_error(), "cvk_no_such_kernel"), "unknown kernel is an error naming it");

    /* second context comes from the binary cache */
    cv_ctx *ctx2 = NULL;
    st = cv_ctx_new(NULL, &ctx2);
    CV_CHECK_OK(st == CV_OK && cv_ctx_from_cache(ctx2), "second context loads every program from the cache");
    cv_ctx_free(ctx2);
    ctx2 = NULL;

    /* unknown device: CV_ERR_NODEVICE with the device list */
    cv_ctx_opts o = cv_ctx_opts_default();
    o.device = "no-such-device-xyz";
    st = cv_ctx_new(&o, &ctx2);
    CV_CHECK_OK(st == CV_ERR_NODEVICE && ctx2 == NULL && strstr(cv_last_error(), "no-such-device-xyz")
                && strstr(cv_last_error(), cv_ctx_device_name(ctx)), "unknown device: error lists the devices");
    o.device = "0";
    st = cv_ctx_new(&o, &ctx2);
    CV_CHECK_OK(st == CV_OK, "device by index 0");
    cv_ctx_free(ctx2);
    ctx2 = NULL;
    o.device = "999";
    st = cv_ctx_new(&o, &ctx2);
    CV_CHECK_OK(st == CV_ERR_NODEVICE, "device index out of range is an error");

    /* build failure: CV_CL_DIR with a broken kernel gives the build log */
    char cldir[] = "/tmp/cv-test-clXXXXXX";
    if (mkdtemp(cldir)) {
        char path[512];
        for (int i = 0; i < cv_cl_n_sources; i++) write_source(cldir, i);
        snprintf(path, sizeof path, "%s/util.cl", cldir);
        write_file(path, "__kernel void cvk_broken(__global float *x) { x[0] = undefined_symbol_q; }\n");
        o = cv_ctx_opts_default();
        o.cl_dir = cldir;
        o.no_cache = 1;
        st = cv_ctx_new(&o, &ctx2);
        CV_CHECK_OK(st == CV_ERR_BUILD && strstr(cv_last_error(), "util.cl") && strstr(cv_last_error(), "undefined_symbol_q"),
                    "build failure reports the file and the build log");
        if (st != CV_ERR_BUILD) cv_ctx_free(ctx2);
        ctx2 = NULL;
        /* the same directory with the good source loads from disk */
        for (int i = 0; i < cv_cl_n_sources; i++)
            if (!strcmp(cv_cl_sources[i].file, "util.cl")) write_source(cldir, i);
        st = cv_ctx_new(&o, &ctx2);
        CV_CHECK_OK(st == CV_OK, "kernels load from CV_CL_DIR");
        cv_ctx_free(ctx2);
        for (int i = 0; i < cv_cl_n_sources; i++) {
            snprintf(path, sizeof path, "%s/%s", cldir, cv_cl_sources[i].file);
            unlink(path);
        }
        rmdir(cldir);
    }

    /* allocation beyond the device: an error naming the allocation and size */
    cl_mem m = NULL;
    st = cv_ctx_alloc(ctx, "giant test tensor", cv_ctx_global_mem(ctx) * 4 + 4096, 0, &m);
    CV_CHECK_OK(st == CV_ERR_DEVMEM && m == NULL && strstr(cv_last_error(), "giant test tensor") && strstr(cv_last_error(), "GiB"),
                "oversized allocation names the allocation and its size: %s", cv_last_error());

    /* arenas: reservation, alignment, views, zeroing */
    cv_arena a;
    cv_arena_init(&a, ctx, "test arena");
    cv_arena_slot s1, s2, s3;
    int ok = cv_arena_reserve(&a, 10, &s1) == CV_OK && cv_arena_reserve(&a, 1000, &s2) == CV_OK && cv_arena_reserve(&a, 3, &s3) == CV_OK;
    ok = ok && s2.off % a.align_floats == 0 && s3.off >= s2.off + 1000 && s2.off >= 10;
    ok = ok && cv_arena_commit(&a, ctx) == CV_OK;
    if (ok) {
        int64_t sh[4] = { 1, 1, 10, 100 };
        cv_tensor t = cv_arena_view(&a, s2, sh);
        float in[1000], out[1000];
        for (int i = 0; i < 1000; i++) in[i] = (float)i * 0.5f;
        ok = cv_tensor_upload(ctx, &t, in) == CV_OK && cv_tensor_download(ctx, &t, out) == CV_OK && !memcmp(in, out, sizeof in);
        ok = ok && cv_arena_zero(&a, ctx) == CV_OK && cv_tensor_download(ctx, &t, out) == CV_OK && out[0] == 0 && out[999] == 0;
    }
    CV_CHECK_OK(ok, "arena: aligned slots, upload/download round trip, zero");
    cv_arena_release(&a);

    /* guard bands catch an out-of-bounds write */
    cv_chk_dev d = {0};
    float init[16] = {0};
    st = cv_chk_dev_new(ctx, &d, 1, 1, 4, 4, init);
    CV_CHECK_OK(st == CV_OK && cv_chk_dev_guards_ok(c, ctx, &d), "guard bands intact after allocation");
    cv_kargs ka = cv_kargs_begin(ctx, "cvk_fill");
    cv_karg_mem(&ka, d.mem); cv_karg_u64(&ka, d.t.off); cv_karg_i64(&ka, 17); cv_karg_f32(&ka, 1.0f);
    st = cv_launch1(&ka, 17, 0);
    cv_check tmp = { .out = fopen("/dev/null", "w") };
    CV_CHECK_OK(st == CV_OK && !cv_chk_dev_guards_ok(&tmp, ctx, &d), "guard bands detect a one-past-the-end write");
    fclose(tmp.out);
    cv_chk_dev_free(&d);

    /* launch errors are statuses with the symbolic name, not aborts */
    ka = cv_kargs_begin(ctx, "cvk_copy");
    cv_karg_mem(&ka, NULL);
    st = cv_launch1(&ka, 4, 0);
    CV_CHECK_OK(st != CV_OK && strstr(cv_last_error(), "CL_INVALID"), "bad launch returns a status: %s", cv_last_error());

    /* profiling: a per-kernel table from events */
    cv_ctx_free(ctx);
    setenv("CV_PROFILE", "1", 1);
    ctx = tap_ctx();
    cv_chk_dev d1 = {0}, d2 = {0};
    st = cv_chk_dev_new(ctx, &d1, 1, 1, 1, 1000, NULL);
    if (st == CV_OK) st = cv_chk_dev_new(ctx, &d2, 1, 1, 1, 1000, NULL);
    for (int i = 0; i < 5 && st == CV_OK; i++) st = cv_copy_fwd(ctx, &d1.t, &d2.t);
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    cv_ctx_profile_report(ctx, f);
    fclose(f);
    CV_CHECK_OK(st == CV_OK && strstr(buf, "cvk_copy") && strstr(buf, "5 "), "profiling table lists cvk_copy with 5 calls");
    /* work-groups per launch: one group of 4 is a "thin" launch wherever
     * the device has more than one compute unit (all its time idles the rest) */
    ka = cv_kargs_begin(ctx, "cvk_fill");
    cv_karg_mem(&ka, d1.mem); cv_karg_u64(&ka, d1.t.off); cv_karg_i64(&ka, 4); cv_karg_f32(&ka, 2.0f);
    if (st == CV_OK) st = cv_launch1(&ka, 4, 4);
    f = fmemopen(buf, sizeof buf - 1, "w");
    cv_ctx_profile_report(ctx, f);
    fclose(f);
    char *row = strstr(buf, "cvk_fill");
    int calls = 0, wg = 0, thin = -1;
    double tot, mean, share;
    if (row) sscanf(row, "cvk_fill %d %lf %lf %lf%% %d %d%%", &calls, &tot, &mean, &share, &wg, &thin);
    int want = cv_ctx_compute_units(ctx) > 1 ? 100 : 0;
    CV_CHECK_OK(st == CV_OK && calls == 1 && wg == 1 && thin == want,
                "profiling counts work-groups per launch: cvk_fill 1 call, %d wg/call, thin %d%% (want %d%%)", wg, thin, want);
    cv_chk_dev_free(&d1); cv_chk_dev_free(&d2);
    cv_ctx_free(ctx);
    unsetenv("CV_PROFILE");

    /* clean the cache directory */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    if (system(cmd) != 0) cv_check_diag(c, "could not remove %s", cache);
    return tap_end();
}
