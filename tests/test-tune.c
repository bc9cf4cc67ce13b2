/* test-tune.c -- per-device tuning (src/runtime/cv_tune.c): the device table as a
 * pure function of name, vendor and type (the GTX 1080 Ti with and without
 * the "NVIDIA " prefix, generic vendors, CPUs, unknown devices); wisdom
 * files written and read back, overriding the table field by field;
 * corrupt wisdom rejected with the file and line named and the table left
 * in force; a context loading the present device's wisdom (and warning,
 * not failing, on a corrupt one); build options in the program cache key;
 * the training plan's GELU cache giving the same bits as none. */
#include "tap.h"
#include "runtime/cv_tune.h"
#include "model/cv_train.h"
#include "ops/cv_ops.h"

#include <dirent.h>
#include <math.h>
#include <unistd.h>

static char tmpdir[256];

/* Remove a directory of plain files. */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    char p[1024];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* ---- the table ------------------------------------------------------------ */

static void test_table(void) {
    static const struct { const char *name, *vendor; uint64_t type; const char *entry; } rows[] = {
        { "GeForce GTX 1080 Ti", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, "GeForce GTX 1080 Ti" },
        { "NVIDIA GeForce GTX 1080 Ti", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, "GeForce GTX 1080 Ti" },
        { "nvidia geforce gtx 1080 ti", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, "GeForce GTX 1080 Ti" },
        { "NVIDIA GeForce GTX 1080", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, "NVIDIA GPU" },
        { "NVIDIA GeForce RTX 3090", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, "NVIDIA GPU" },
        { "gfx1030", "Advanced Micro Devices, Inc.", CL_DEVICE_TYPE_GPU, "AMD GPU" },
        { "Radeon RX 580", "AMD", CL_DEVICE_TYPE_GPU, "AMD GPU" },
        { "Intel(R) UHD Graphics 630", "Intel(R) Corporation", CL_DEVICE_TYPE_GPU, "Intel GPU" },
        { "Intel(R) Core(TM) i7-8700 CPU", "Intel(R) Corporation", CL_DEVICE_TYPE_CPU, "CPU" },
        { "pthread-skylake-avx512-AMD EPYC", "AuthenticAMD", CL_DEVICE_TYPE_CPU, "CPU (AVX-512)" },
        { "pthread-haswell-Intel(R) Xeon(R)", "GenuineIntel", CL_DEVICE_TYPE_CPU, "CPU" },
        { "Mali-G78", "ARM", CL_DEVICE_TYPE_GPU, "other GPU" },
        { "xilinx_u250", "Xilinx", CL_DEVICE_TYPE_ACCELERATOR, "other device" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        cv_tune t;
        cv_tune_table(rows[i].name, rows[i].vendor, rows[i].type, &t);
        cv_status st = cv_tune_validate(&t);
        CV_CHECK_OK(!strcmp(t.entry, rows[i].entry) && st == CV_OK, "table: '%s' (%s) -> \"%s\" (expected \"%s\")%s",
                    rows[i].name, rows[i].vendor, t.entry, rows[i].entry, st == CV_OK ? "" : ", INVALID");
    }
    /* the two spellings of the 1080 Ti get the same parameters */
    cv_tune a, b;
    cv_tune_table("GeForce GTX 1080 Ti", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, &a);
    cv_tune_table("NVIDIA GeForce GTX 1080 Ti", "NVIDIA Corporation", CL_DEVICE_TYPE_GPU, &b);
    CV_CHECK_OK(cv_tune_same_params(&a, &b), "table: the GTX 1080 Ti with and without \"NVIDIA \" gets the same parameters");
    /* what the rows say: GPUs send large maps to CLBlast and small ones to DIRECT, never VEC; CPUs take VEC */
    int gpu_big = cv_tune_conv_algo(&a, 0, 3, 64 * 64, 32 * 9, 32), gpu_small = cv_tune_conv_algo(&a, 0, 3, 8 * 8, 32 * 9, 32);
    cv_tune cpu;
    cv_tune_table("pthread-skylake-avx512-AMD EPYC", "AuthenticAMD", CL_DEVICE_TYPE_CPU, &cpu);
    int cpu_any = cv_tune_conv_algo(&cpu, 2, 1, 64 * 64, 32, 8);
    CV_CHECK_OK(gpu_big == CV_TUNE_GEMM && gpu_small == CV_TUNE_DIRECT && cpu_any == CV_TUNE_VEC && cpu.conv_v == 16,
                "table rules: 1080 Ti 64x64 3x3 -> gemm (%d), 8x8 -> direct (%d); CPU -> vec (%d), V %d", gpu_big,
                gpu_small, cpu_any, cpu.conv_v);
    char opts[256];
    cv_tune_build_opts(&cpu, opts, sizeof opts);
    CV_CHECK_OK(strstr(opts, "-DCV_CONV_V=16") && strstr(opts, "-DCV_CONV_R3="), "build options: %s", opts);
    char p1[1200];
    cv_tune_wisdom_path("/some/dir", "NVIDIA GeForce GTX 1080 Ti", p1, sizeof p1);
    CV_CHECK_OK(!strcmp(p1, "/some/dir/wisdom-NVIDIA_GeForce_GTX_1080_Ti.txt"), "wisdom path sanitised: %s", p1);
}

/* ---- wisdom files ----------------------------------------------------------- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) CV_CHECK_DIAG("cannot write %s", path);
}

static void test_wisdom_files(void) {
    const char *dev = "Test Device 9000";
    char path[1200];
    cv_tune_wisdom_path(tmpdir, dev, path, sizeof path);
    cv_tune table, w, r;
    cv_tune_table(dev, "ACME", CL_DEVICE_TYPE_CPU, &table);

    /* write then read back: every field overrides the table's */
    w = table;
    w.conv_v = 8; w.conv_cob1 = 32; w.conv_r3 = 2; w.conv_cob3 = 16; w.conv_wcob1 = 8; w.conv_wcob3 = 4; w.conv_wcib1 = 3;
    w.elem_chunk = 1024; w.vec_wg = 16; w.wgrad_groups = 2; w.keep_gelu = 0; w.direct_pre_gelu = 0; w.elem_wg = 64;
    cv_tune_rule rules[3] = { { 0, 3, 1024, 16, 16, CV_TUNE_GEMM }, { 2, 1, 0, 0, 0, CV_TUNE_VEC },
                              { -1, 0, 0, 0, 0, CV_TUNE_DIRECT } };
    w.n_rules = 3;
    memcpy(w.rules, rules, sizeof rules);
    cv_status st = cv_tune_write(path, dev, "driver 1.2.3", &w, "a test\nof two lines");
    r = table;
    cv_status st2 = st == CV_OK ? cv_tune_read(path, dev, &r) : st;
    CV_CHECK_OK(st == CV_OK && st2 == CV_OK && cv_tune_same_params(&r, &w) && strstr(r.source, path),
                "wisdom written and read back: every field overrides the table (source '%s')", r.source);
    if (st != CV_OK || st2 != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    DIR *d = opendir(tmpdir);
    int leftovers = 0;
    for (struct dirent *e; d && (e = readdir(d));) if (strstr(e->d_name, ".tmp")) leftovers++;
    if (d) closedir(d);
    CV_CHECK_OK(leftovers == 0, "atomic write leaves no temporary file behind (%d)", leftovers);

    /* a partial file: only its keys change */
    write_text(path, "cosmovae-wisdom 1\n# hand-written\ndevice = Test Device 9000\nconv_v = 4\n\n");
    r = table;
    st = cv_tune_read(path, dev, &r);
    cv_tune want = table;
    want.conv_v = 4;
    CV_CHECK_OK(st == CV_OK && cv_tune_same_params(&r, &want), "partial wisdom: conv_v = 4 overrides, the rest stays the table's");

    /* missing: CV_ERR_IO and nothing changed */
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/no-such-wisdom.txt", tmpdir);
    r = table;
    st = cv_tune_read(missing, dev, &r);
    CV_CHECK_OK(st == CV_ERR_IO && cv_tune_same_params(&r, &table), "missing wisdom: CV_ERR_IO, table unchanged");

    /* corrupt files: CV_ERR_FORMAT naming the file (and line), table unchanged */
    static const struct { const char *text, *needle, *what; } bad[] = {
        { "this is not wisdom\n", ":1: not a cosmovae wisdom file", "wrong header" },
        { "", "empty", "empty file" },
        { "cosmovae-wisdom 1\ndevice = Test Device 9000\nconv_vv = 8\n", ":3: unknown key 'conv_vv'", "unknown key" },
        { "cosmovae-wisdom 1\ndevice = Test Device 9000\nconv_v = 5\n", "conv_v = 5", "value out of range" },
        { "cosmovae-wisdom 1\ndevice = Test Device 9000\nelem_wg = many\n", ":3: elem_wg = 'many'", "not a number" },
        { "cosmovae-wisdom 1\ndevice = Another Device\nconv_v = 8\n", ":2: wisdom for 'Another Device'", "another device" },
        { "cosmovae-wisdom 1\nconv_v = 8\n", "no 'device = ...' line", "no device line" },
        { "cosmovae-wisdom 1\ndevice = Test Device 9000\nconv_rule = sideways 3 0 0 0 vec\n", ":3: conv_rule 'sideways",
          "bad rule" },
        { "cosmovae-wisdom 1\ndevice = Test Device 9000\nconv_rule = fwd 3 1024 0 0 vec\n", "must match every convolution",
          "rules without a catch-all" },
        { "cosmovae-wisdom 1\ndevice = Test Device 9000\nkeep_gelu\n", ":3: expected 'key = value'", "no '='" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(path, bad[i].text);
        r = table;
        st = cv_tune_read(path, dev, &r);
        const char *msg = cv_last_error();
        CV_CHECK_OK(st == CV_ERR_FORMAT && strstr(msg, path) && strstr(msg, bad[i].needle) && cv_tune_same_params(&r, &table),
                    "corrupt wisdom (%s): rejected, table kept: %s", bad[i].what, msg);
    }
    remove(path);
}

/* ---- a context on the present device ------------------------------------------ */

static int count_bins(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".bin")) n++;
    }
    if (d) closedir(d);
    return n;
}

/* A 1x1 VEC conv against the reference: the context's kernels work with
 * its (wisdom) parameters. */
static double vec_conv_err(cv_ctx *ctx) {
    enum { N = 2, Ci = 5, Co = 3, H = 4, W = 8, nx = N * Ci * H * W, ny = N * Co * H * W };
    float hx[nx], hw[Ci * Co], hy[ny];
    double dx[nx], dw[Ci * Co], dy[ny];
    cv_chk_rand(hx, nx, 1, -2, 2); cv_chk_rand(hw, Ci * Co, 2, -1, 1);
    cv_chk_f2d(hx, dx, nx); cv_chk_f2d(hw, dw, Ci * Co);
    cv_conv2d_params p = { 1, 1, 0, CV_CONV_VEC };
    cv_conv2d_ref_fwd(dx, dw, NULL, dy, N, Ci, H, W, Co, &p);
    cv_chk_dev x = { 0 }, w = { 0 }, y = { 0 };
    double e = INFINITY;
    if (cv_chk_dev_new(ctx, &x, N, Ci, H, W, hx) == CV_OK && cv_chk_dev_new(ctx, &w, Co, Ci, 1, 1, hw) == CV_OK &&
        cv_chk_dev_new(ctx, &y, N, Co, H, W, NULL) == CV_OK && cv_conv2d_fwd(ctx, &x.t, &w.t, NULL, &y.t, &p) == CV_OK &&
        cv_chk_dev_get(ctx, &y, hy) == CV_OK)
        e = cv_chk_nmse(c, "vec conv y", hy, dy, (size_t)ny, 3);
    cv_chk_dev_free(&x); cv_chk_dev_free(&w); cv_chk_dev_free(&y);
    return e;
}

/* The flat kernels' device checks (cl/cv_common.clh CV_ELEMS) on a
 * context built with the given elements per work-item. */
static void flat_checks(cv_ctx *ctx) {
    cv_check_diag(c, "flat kernels with %d element(s) per work-item:", cv_ctx_tune(ctx)->elem_chunk);
    cv_util_devcheck(c, ctx);
    cv_bcast_devcheck(c, ctx);
    cv_elem_devcheck(c, ctx);
    cv_vae_devcheck(c, ctx);
    cv_optim_devcheck(c, ctx);
    cv_reduce_devcheck(c, ctx);           /* chunk > 1: the CPU form of stage 1 */
    cv_conv_cache_devcheck(c, ctx);
}

static void test_context(void) {
    char cache[512], path[1200];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    setenv("CV_CACHE_DIR", cache, 1);
    unsetenv("CV_NO_WISDOM");
    cv_ctx *ctx = NULL;
    cv_ctx_opts o = cv_ctx_opts_default();
    cv_status st = cv_ctx_new(&o, &ctx);
    if (st != CV_OK) { CV_CHECK_OK(0, "context: %s", cv_last_error()); return; }
    char dev[256];
    snprintf(dev, sizeof dev, "%s", cv_ctx_device_name(ctx));
    cv_tune table = *cv_ctx_tune(ctx);
    int bins0 = count_bins(cache);
    CV_CHECK_OK(!strcmp(table.source, "built-in table") && !table.warning[0],
                "no wisdom: the context uses the table entry \"%s\" (%s)", table.entry, table.source);
    cv_ctx_free(ctx);
    ctx = NULL;

    /* wisdom for this device, with another vector width: loaded, built, correct */
    cv_tune_wisdom_path(NULL, dev, path, sizeof path);
    cv_tune w = table;
    w.conv_v = table.conv_v == 8 ? 16 : 8;
    w.elem_wg = 64;
    w.elem_chunk = 7;                     /* runs that divide no tensor size */
    st = cv_tune_write(path, dev, "", &w, NULL);
    if (st == CV_OK) st = cv_ctx_new(&o, &ctx);
    CV_CHECK_OK(st == CV_OK && cv_ctx_tune(ctx)->conv_v == w.conv_v && cv_ctx_tune(ctx)->elem_wg == 64 &&
                strstr(cv_ctx_tune(ctx)->source, path),
                "wisdom %s: a new context loads it (V %d, source %s)", path, ctx ? cv_ctx_tune(ctx)->conv_v : 0,
                ctx ? cv_ctx_tune(ctx)->source : cv_last_error());
    int bins1 = count_bins(cache);
    CV_CHECK_OK(bins1 > bins0, "its build options are in the program cache key: %d cached programs, then %d", bins0, bins1);
    if (ctx) {
        double e = vec_conv_err(ctx);
        CV_CHECK_OK(e < 1e-9, "a VEC conv with V = %d from the wisdom matches the reference: nmse %.2e", w.conv_v, e);
        CV_CHECK_OK(cv_ctx_tune(ctx)->elem_chunk == 7, "elem_chunk %d from the wisdom", cv_ctx_tune(ctx)->elem_chunk);
        flat_checks(ctx);
    }
    cv_ctx_free(ctx);
    ctx = NULL;

    /* one element per work-item, as on GPUs */
    w.elem_chunk = 1;
    st = cv_tune_write(path, dev, "", &w, NULL);
    if (st == CV_OK) st = cv_ctx_new(&o, &ctx);
    CV_CHECK_OK(st == CV_OK && cv_ctx_tune(ctx)->elem_chunk == 1, "wisdom with elem_chunk = 1: %s",
                st == CV_OK ? "loaded" : cv_last_error());
    if (st == CV_OK) flat_checks(ctx);
    cv_ctx_free(ctx);
    ctx = NULL;

    /* CV_NO_WISDOM=1: the table */
    setenv("CV_NO_WISDOM", "1", 1);
    st = cv_ctx_new(&o, &ctx);
    CV_CHECK_OK(st == CV_OK && cv_tune_same_params(cv_ctx_tune(ctx), &table), "CV_NO_WISDOM=1: the table, wisdom ignored");
    cv_ctx_free(ctx);
    ctx = NULL;
    unsetenv("CV_NO_WISDOM");

    /* corrupt wisdom: the context still comes up, on the table, with a warning naming the file */
    write_text(path, "cosmovae-wisdom 1\ndevice = whatever\nconv_v = 8\n");
    st = cv_ctx_new(&o, &ctx);
    CV_CHECK_OK(st == CV_OK && cv_tune_same_params(cv_ctx_tune(ctx), &table) && strstr(cv_ctx_tune(ctx)->warning, path) &&
                strstr(cv_ctx_tune(ctx)->warning, ":2:"),
                "corrupt wisdom: the context uses the table and warns: %s", ctx ? cv_ctx_tune(ctx)->warning : cv_last_error());
    cv_ctx_free(ctx);
    ctx = NULL;

    /* cv_ctx_set_tune: run-time fields only */
    st = cv_ctx_new(&o, &ctx);
    if (st == CV_OK) {
        cv_tune t2 = *cv_ctx_tune(ctx);
        t2.elem_wg = 128;
        cv_status s1 = cv_ctx_set_tune(ctx, &t2);
        t2.conv_v = t2.conv_v == 8 ? 16 : 8;
        cv_status s2 = cv_ctx_set_tune(ctx, &t2);
        CV_CHECK_OK(s1 == CV_OK && cv_ctx_tune(ctx)->elem_wg == 128 && s2 == CV_ERR_ARG,
                    "cv_ctx_set_tune: a run-time field changes; a build option is refused: %s", cv_last_error());
    }
    cv_ctx_free(ctx);
    remove(path);
    unsetenv("CV_CACHE_DIR");
}

/* ---- the GELU cache of a training plan ------------------------------------------ */

static const char tiny_cfg[] =
    "[model]\nsize = 16\nchannels = 3\nwidth = 16\nbottleneck = 4\nzdim = 2\n"
    "enc_res = 16,8\nenc_blocks = 1,1\ndec_res = 4,8,16\ndec_blocks = 1,1,1\n"
    "bias_max_res = 16\nlogsigma_floor = -5\n";

/* Losses of three steps with the table's parameters but keep_gelu forced. */
static cv_status train3(int keep, double loss[3]) {
    cv_status st = CV_OK;
    cv_ctx *ctx = NULL;
    cv_cfg *cfg = NULL;
    cv_model *m = NULL;
    cv_trainer *tr = NULL;
    float *x = NULL;
    cv_ctx_opts o = cv_ctx_opts_default();
    cv_tune t;
    CV_TRY(cv_ctx_new(&o, &ctx));
    t = *cv_ctx_tune(ctx);
    t.keep_gelu = keep;
    CV_TRY(cv_ctx_set_tune(ctx, &t));
    cv_model_cfg mc;
    CV_TRY(cv_cfg_new(&cfg));
    CV_TRY(cv_cfg_parse(cfg, tiny_cfg, "tiny"));
    CV_TRY(cv_model_cfg_read(cfg, &mc));
    CV_TRY(cv_model_new(&mc, &m));
    CV_TRY(cv_model_to_device(m, ctx, 0));
    cv_train_opts to = cv_train_opts_default();
    to.rms.lr = 1e-3f;
    CV_TRY(cv_trainer_new(ctx, m, &to, &tr));
    CV_TRY(cv_trainer_init_params(tr));
    x = malloc(4 * 3 * 16 * 16 * sizeof *x);
    if (!x) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < 4 * 3 * 16 * 16; i++) x[i] = (float)sin(0.37 * i) * 0.8f;
    for (int s = 0; s < 3; s++) {
        cv_step_stats ss;
        CV_TRY(cv_trainer_step(tr, x, &ss));
        loss[s] = ss.loss;
    }
fail:
    free(x);
    cv_trainer_free(tr);
    cv_model_free(m);
    cv_cfg_free(cfg);
    cv_ctx_free(ctx);
    return st;
}

static void test_gelu_cache(void) {
    double a[3] = { 0 }, b[3] = { 1 }, k2[3] = { 2 };
    cv_status st = train3(0, a);
    if (st == CV_OK) st = train3(1, b);
    if (st == CV_OK) st = train3(2, k2);
    if (st != CV_OK) CV_CHECK_DIAG("%s", cv_last_error());
    CV_CHECK_OK(st == CV_OK && !memcmp(a, b, sizeof a) && a[2] != a[0],
                "training with the GELU cache (keep_gelu = 1) gives the bits of none: losses %.9g %.9g %.9g", b[0], b[1],
                b[2]);
    CV_CHECK_OK(st == CV_OK && !memcmp(a, k2, sizeof a),
                "training with the GELU and GELU' caches (keep_gelu = 2) gives the bits of none: losses %.9g %.9g %.9g",
                k2[0], k2[1], k2[2]);
}

int main(void) {
    tap_begin();
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test-tune.XXXXXX", t && *t ? t : ".");
    if (!mkdtemp(tmpdir)) { printf("Bail out! cannot create a temporary directory\n"); return 99; }
    cv_ctx *ctx = tap_ctx();             /* the device policy: no device is a failure */
    cv_ctx_free(ctx);
    test_table();
    test_wisdom_files();
    test_context();
    test_gelu_cache();
    char sub[512];
    snprintf(sub, sizeof sub, "%s/cache", tmpdir);
    remove_dir(sub);
    remove_dir(tmpdir);
    return tap_end();
}
