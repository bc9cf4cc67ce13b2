/* cosmovae-info -- list OpenCL platforms and devices (with the kernel
 * parameters each would use: table entry or tuning wisdom), run the
 * self-test of every kernel against its reference, show the kernel table,
 * and tune the kernel parameters for a device (--tune: measure, write the
 * wisdom file that later runs load). */
#include "check/cv_check.h"
#include "prog/cv_cli.h"
#include "runtime/cv_device.h"
#include "prog/cv_tune_measure.h"

#include <string.h>

static const char *usage_text =
    "Usage: cosmovae-info [OPTION]...\n"
    "List OpenCL platforms and devices; check every kernel on a device.\n"
    "\n"
    "  -l, --list         list every platform and device (default)\n"
    "  -v, --verbose      with --list: also print device extensions\n"
    "  -t, --self-test    run every op on the device and compare with its\n"
    "                     plain-C reference (exit 1 on any mismatch)\n"
    "  -k, --kernels      list the kernels built for the device\n"
    "      --tune         measure kernel parameters on the device (VDVAE shapes:\n"
    "                     convolution algorithms, vector and block sizes, work-\n"
    "                     groups; about a minute) and write them as wisdom, which\n"
    "                     later runs on that device load (the listing shows it)\n"
    "      --quick        with --tune: fewer shapes and candidates (seconds); with\n"
    "                     --self-test: the subset for a strict simulator such as\n"
    "                     Oclgrind (every kernel and code path, small sizes)\n"
    "  -o, --output FILE  with --tune: write the wisdom here instead of the cache\n"
    "                     directory's wisdom-<device>.txt\n"
    "      --profile      with --self-test: print a per-kernel time table\n"
    "      --device SPEC  OpenCL device: index, or name substring[:index]\n"
    "                     (default: $CV_DEVICE, else the first GPU, else device 0)\n"
    "  -q, --quiet        with --self-test: print only the summary\n"
    "      --help         display this help and exit\n"
    "      --version      output version information and exit\n"
    "\n"
    "Environment: CV_DEVICE (device), CV_CL_DIR (load kernels from this directory),\n"
    "CV_CACHE_DIR (compiled programs and tuning wisdom; default ~/.cache/cosmovae),\n"
    "CV_NO_CACHE=1, CV_NO_WISDOM=1 (use the built-in table), CV_PROFILE=1.\n";

/* --tune: measure, write the wisdom atomically, check that a new context
 * on the device reads it back. */
static int run_tune(const char *device, int quick, const char *output) {
    cv_tune_measure_opts mo = { device, NULL, quick, stdout };
    cv_tune best;
    char dev[256], drv[128], summary[256], path[1200];
    cv_status st = cv_tune_measure(&mo, &best, dev, sizeof dev, drv, sizeof drv, summary, sizeof summary);
    if (st == CV_ERR_NODEVICE) cv_cli_usage_error("%s", cv_last_error());
    if (st != CV_OK) cv_cli_fail(st, NULL);
    if (output) snprintf(path, sizeof path, "%s", output);
    else cv_tune_wisdom_path(NULL, dev, path, sizeof path);
    if (!path[0]) cv_cli_fail(cv_error(CV_ERR_IO, "no cache directory for the wisdom: set CV_CACHE_DIR or HOME, or use -o FILE"), NULL);
    if ((st = cv_tune_write(path, dev, drv, &best, summary)) != CV_OK) cv_cli_fail(st, NULL);
    printf("chosen:\n");
    cv_tune_print(stdout, &best);
    printf("wrote %s (%s)\n", path, summary);
    if (!output) {                      /* the proof: a new context on the device uses it */
        cv_ctx *ctx = cv_cli_ctx(device);
        const cv_tune *t = cv_ctx_tune(ctx);
        int used = strstr(t->source, path) != NULL;
        printf("a new context on %s %s\n", cv_ctx_device_name(ctx),
               used ? "loads it: later runs use these parameters" : "does NOT load it");
        if (t->warning[0]) printf("warning: %s\n", t->warning);
        cv_ctx_free(ctx);
        if (!used) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int list = 0, verbose = 0, self_test = 0, kernels = 0, profile = 0, quiet = 0, tune = 0, quick = 0;
    const char *device = NULL, *output = NULL;
    cv_cli_init("cosmovae-info", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-l") || !strcmp(a, "--list")) list = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) verbose = 1;
        else if (!strcmp(a, "-t") || !strcmp(a, "--self-test")) self_test = 1;
        else if (!strcmp(a, "-k") || !strcmp(a, "--kernels")) kernels = 1;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--tune")) tune = 1;
        else if (!strcmp(a, "--quick")) quick = 1;
        else if (cv_cli_opt_str(argc, argv, &i, "-o", &output) || cv_cli_opt_str(argc, argv, &i, "--output", &output)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (cv_cli_common(a)) ;
        else cv_cli_usage_error("unrecognized option '%s'", a);
    }
    if (output && !tune) cv_cli_usage_error("--output goes with --tune");
    if (quick && !tune && !self_test) cv_cli_usage_error("--quick goes with --tune or --self-test");
    if (tune) return run_tune(device, quick, output);
    if (!self_test && !kernels) list = 1;
    if (device) {                       /* as in the other programs: no match is a usage error */
        char name[600];
        cv_status st = cv_device_resolve(device, name, sizeof name);
        if (st == CV_ERR_NODEVICE) cv_cli_usage_error("--device: %s", cv_last_error());
        if (st != CV_OK) cv_cli_fail(st, NULL);
        if (list) printf("--device '%s' selects: %s\n", device, name);
    }
    if (list) {
        cv_status st = cv_device_list(stdout, verbose);
        if (st != CV_OK) cv_cli_fail(st, NULL);
    }
    if (!self_test && !kernels) return 0;

    cv_ctx *ctx = cv_cli_ctx_profiled(device, profile);
    if (kernels) {
        printf("%d kernels built for %s%s:\n", cv_ctx_n_kernels(ctx), cv_ctx_device_name(ctx),
               cv_ctx_from_cache(ctx) ? " (from the program cache)" : "");
        for (int i = 0; i < cv_ctx_n_kernels(ctx); i++) printf("  %s\n", cv_ctx_kernel_name(ctx, i));
    }
    int fails = 0;
    if (self_test) {
        FILE *out = quiet ? fopen("/dev/null", "w") : stdout;
        cv_check chk = { out ? out : stdout, 0, 0, quick };
        fprintf(stderr, "cosmovae-info: self-test on %s\n", cv_ctx_device_name(ctx));
        for (int i = 0; i < cv_check_n_families; i++) cv_check_families[i].dev(&chk, ctx);
        if (out && out != stdout) fclose(out);
        printf("self-test on %s: %d checks, %d passed, %d failed\n", cv_ctx_device_name(ctx), chk.n,
               chk.n - chk.n_fail, chk.n_fail);
        if (profile) cv_ctx_profile_report(ctx, stdout);
        fails = chk.n_fail;
    }
    cv_ctx_free(ctx);
    return fails ? 1 : 0;
}
