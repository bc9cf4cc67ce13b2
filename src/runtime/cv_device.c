/* cv_device.c -- OpenCL runtime: device selection, program build with a
 * per-device binary cache, kernel table, argument builder, launches and
 * profiling.
 *
 * Invariant: the cv_ctx owns every OpenCL object it hands out (context,
 * queue, programs, kernels, scratch); callers borrow them and never release
 * them.  cv_ctx_free releases everything in reverse order of creation. */
#include "runtime/cv_device.h"
#include "runtime/cv_cl_sources.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CV_MAX_PROGRAMS 64
#define CV_MAX_KERNELS  512
#define CV_PROF_CAP     8192

/* nwg: work-groups of the launch, 0 when the implementation chose the local size */
typedef struct cv_prof_ev { cl_event ev; int kidx; size_t nwg; } cv_prof_ev;

struct cv_ctx {
    cl_platform_id   platform;
    cl_device_id     device;
    cl_context       context;
    cl_command_queue queue;
    char             dev_name[256], vendor[256], driver[128], plat_name[256], plat_ver[256];
    cl_device_type   dev_type;
    size_t           max_alloc, global_mem, align, max_wg;
    cl_uint          compute_units;
    cv_tune          tune;
    int              n_prog;
    cl_program       prog[CV_MAX_PROGRAMS];
    int              n_kern, n_label;         /* labels: non-kernel timings (CLBlast, clFFT) */
    cl_kernel        kern[CV_MAX_KERNELS];
    char             kname[CV_MAX_KERNELS][64];
    int              from_cache;
    cl_mem           scratch;
    size_t           scratch_size;
    /* profiling */
    int              profile;
    cv_prof_ev      *pev;
    int              n_pev;
    double           ktime_ns[CV_MAX_KERNELS];
    long             kcalls[CV_MAX_KERNELS];
    double           kthin_ns[CV_MAX_KERNELS];  /* time in launches of fewer work-groups than compute units */
    double           kwg[CV_MAX_KERNELS];       /* work-groups summed over launches with a given local size */
    long             kwg_calls[CV_MAX_KERNELS];
    /* the device idle between consecutive commands: gaps < 50 us (the
     * implementation's cost per command), up to 1 ms, longer (the host late) */
    cl_ulong         last_end;
    double           gap_ns[3];
    long             gap_n[3];
};

/* ------------------------------------------------------------------ errors */

const char *cv_cl_errname(cl_int e) {
    switch (e) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
    E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
    E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
    E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
    E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
    E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
    E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
    E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL_UNKNOWN_ERROR";
    }
}

cv_status cv_cl_check(cl_int err, const char *expr, const char *file, int line) {
    if (err == CL_SUCCESS) return CV_OK;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES)
        return cv_error(CV_ERR_DEVMEM, "%s:%d: %s returned %s (%d): the device ran out of memory or resources",
                        file, line, expr, cv_cl_errname(err), (int)err);
    return cv_error(CV_ERR_CL, "%s:%d: %s returned %s (%d)", file, line, expr, cv_cl_errname(err), (int)err);
}

static const char *no_platform_advice =
    "no OpenCL platform found: install an OpenCL driver (ICD).  On a CPU-only machine:\n"
    "  apt-get install pocl-opencl-icd\n"
    "on GPUs, the vendor's driver (NVIDIA: the driver's libnvidia-opencl with\n"
    "/etc/OpenCL/vendors/nvidia.icd; AMD: rocm-opencl-icd or mesa-opencl-icd; Intel:\n"
    "intel-opencl-icd).  `clinfo -l` should list at least one device.";

/* ---------------------------------------------------------------- devices */

typedef struct cv_devref { cl_platform_id p; cl_device_id d; char pname[256], dname[256], vendor[256]; cl_device_type type; } cv_devref;

static void size_str(char *buf, size_t n, double bytes) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (bytes >= 1024 && i < 4) { bytes /= 1024; i++; }
    snprintf(buf, n, i ? "%.2f %s" : "%.0f %s", bytes, u[i]);
}

/* All devices of all platforms, in platform order.  *out is malloc'ed. */
static cv_status enum_devices(cv_devref **out, int *n_out) {
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    *out = NULL; *n_out = 0;
    if (e == -1001 || np == 0) return cv_error(CV_ERR_NOPLATFORM, "%s", no_platform_advice);
    if (e != CL_SUCCESS) return CV_CL(e);
    cl_platform_id plats[16];
    if (np > 16) np = 16;
    if (clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) return cv_error(CV_ERR_NOPLATFORM, "%s", no_platform_advice);
    cv_devref *v = NULL;
    int n = 0;
    for (cl_uint i = 0; i < np; i++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id *ds = malloc(nd * sizeof *ds);
        cv_devref *nv = realloc(v, (size_t)(n + nd) * sizeof *v);
        if (!ds || !nv) { free(ds); free(nv ? nv : v); return cv_error(CV_ERR_NOMEM, "out of memory listing devices"); }
        v = nv;
        clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, nd, ds, NULL);
        for (cl_uint j = 0; j < nd; j++) {
            cv_devref *r = &v[n++];
            memset(r, 0, sizeof *r);
            r->p = plats[i]; r->d = ds[j];
            clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof r->pname - 1, r->pname, NULL);
            clGetDeviceInfo(ds[j], CL_DEVICE_NAME, sizeof r->dname - 1, r->dname, NULL);
            clGetDeviceInfo(ds[j], CL_DEVICE_VENDOR, sizeof r->vendor - 1, r->vendor, NULL);
            clGetDeviceInfo(ds[j], CL_DEVICE_TYPE, sizeof r->type, &r->type, NULL);
        }
        free(ds);
    }
    if (n == 0) { free(v); return cv_error(CV_ERR_NOPLATFORM, "%s", no_platform_advice); }
    *out = v; *n_out = n;
    return CV_OK;
}

static const char *type_str(cl_device_type t) {
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

/* The kernel parameters a context on this device would use: its table
 * entry, and its wisdom file when there is one (or why it is ignored). */
static void list_tune(FILE *f, const cv_devref *r) {
    cv_tune t;
    char path[1200];
    cv_tune_table(r->dname, r->vendor, (uint64_t)r->type, &t);
    cv_tune_wisdom_path(NULL, r->dname, path, sizeof path);
    cv_status st = path[0] ? cv_tune_read(path, r->dname, &t) : CV_ERR_IO;
    const char *nw = getenv("CV_NO_WISDOM");
    if (nw && !strcmp(nw, "1")) fprintf(f, "  tuning:            table entry \"%s\" (CV_NO_WISDOM=1)\n", t.entry);
    else if (st == CV_OK) fprintf(f, "  tuning:            wisdom %s (table entry \"%s\")\n", path, t.entry);
    else if (st == CV_ERR_FORMAT) {
        fprintf(f, "  tuning:            table entry \"%s\"; wisdom ignored: %s\n", t.entry, cv_last_error());
        cv_error_clear();
    } else fprintf(f, "  tuning:            table entry \"%s\" (no wisdom %s: run cosmovae-info --tune)\n", t.entry,
                   path[0] ? path : "file, no cache directory");
    fprintf(f, "  kernel parameters: V %d, 1x1 %d / 3x3 %dx%d channels per work-item, %d algorithm rules\n", t.conv_v,
            t.conv_cob1, t.conv_cob3, t.conv_r3, t.n_rules);
}

cv_status cv_device_list(FILE *f, int verbose) {
    cv_devref *v; int n;
    cv_status st = enum_devices(&v, &n);
    if (st != CV_OK) return st;
    for (int i = 0; i < n; i++) {
        cl_device_id d = v[i].d;
        cl_uint cu = 0, clk = 0; cl_ulong gmem = 0, lmem = 0, maxalloc = 0; size_t wg = 0;
        char ver[256] = "", drv[128] = "", cver[128] = "", pver[256] = "";
        clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
        clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof clk, &clk, NULL);
        clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
        clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
        clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
        clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
        clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof ver - 1, ver, NULL);
        clGetDeviceInfo(d, CL_DRIVER_VERSION, sizeof drv - 1, drv, NULL);
        clGetDeviceInfo(d, CL_DEVICE_OPENCL_C_VERSION, sizeof cver - 1, cver, NULL);
        clGetPlatformInfo(v[i].p, CL_PLATFORM_VERSION, sizeof pver - 1, pver, NULL);
        char g[32], l[32], a[32];
        size_str(g, sizeof g, (double)gmem); size_str(l, sizeof l, (double)lmem); size_str(a, sizeof a, (double)maxalloc);
        fprintf(f, "device %d: %s  [%s]\n", i, v[i].dname, type_str(v[i].type));
        fprintf(f, "  platform:          %s (%s)\n", v[i].pname, pver);
        fprintf(f, "  vendor:            %s\n", v[i].vendor);
        fprintf(f, "  version:           %s; %s; driver %s\n", ver, cver, drv);
        fprintf(f, "  compute units:     %u at %u MHz\n", cu, clk);
        fprintf(f, "  global memory:     %s (largest allocation %s)\n", g, a);
        fprintf(f, "  local memory:      %s\n", l);
        fprintf(f, "  max work-group:    %zu\n", wg);
        fprintf(f, "  select with:       --device %d   or   CV_DEVICE='%s'\n", i, v[i].dname);
        list_tune(f, &v[i]);
        if (verbose) {
            size_t ne = 0;
            clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ne);
            char *ext = malloc(ne + 1);
            if (ext) {
                clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ne, ext, NULL);
                ext[ne] = '\0';
                fprintf(f, "  extensions:        %s\n", ext);
                free(ext);
            }
        }
    }
    free(v);
    return CV_OK;
}

static int ci_contains(const char *hay, const char *needle) {
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == nl) return 1;
    }
    return nl == 0;
}

static cv_status select_device(const char *spec, cv_devref *out) {
    cv_devref *v; int n;
    cv_status st = enum_devices(&v, &n);
    if (st != CV_OK) return st;
    int pick = -1;
    if (!spec || !*spec) {
        for (int i = 0; i < n && pick < 0; i++) if (v[i].type & CL_DEVICE_TYPE_GPU) pick = i;
        if (pick < 0) pick = 0;
    } else {
        char sub[256]; long idx = 0;
        const char *colon = strrchr(spec, ':');
        char *end;
        long whole = strtol(spec, &end, 10);
        if (*end == '\0' && end != spec) {               /* "IDX" */
            if (whole >= 0 && whole < n) pick = (int)whole;
        } else {
            if (colon) {
                idx = strtol(colon + 1, &end, 10);
                if (*end != '\0' || end == colon + 1) { colon = NULL; idx = 0; }
            }
            size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
            if (len >= sizeof sub) len = sizeof sub - 1;
            memcpy(sub, spec, len); sub[len] = '\0';
            long k = 0;
            for (int i = 0; i < n; i++) {
                if (ci_contains(v[i].pname, sub) || ci_contains(v[i].dname, sub) || ci_contains(v[i].vendor, sub)) {
                    if (k == idx) { pick = i; break; }
                    k++;
                }
            }
        }
    }
    if (pick < 0) {
        cv_error(CV_ERR_NODEVICE, "no OpenCL device matches '%s'; the devices are:", spec);
        for (int i = 0; i < n; i++)
            cv_error_append("\n  %d: %s  (platform %s, %s)", i, v[i].dname, v[i].pname, type_str(v[i].type));
        cv_error_append("\nselect one by index (--device 1) or by name substring with an optional index (--device pocl:0)");
        free(v);
        return CV_ERR_NODEVICE;
    }
    *out = v[pick];
    free(v);
    return CV_OK;
}

cv_status cv_device_resolve(const char *spec, char *name, size_t n) {
    cv_devref d;
    cv_status st = select_device(spec, &d);
    if (st == CV_OK && name && n) snprintf(name, n, "%s (platform %s, %s)", d.dname, d.pname, type_str(d.type));
    return st;
}

/* ---------------------------------------------------------------- programs */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ULL; }
    return h;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static cv_status build_log_error(cv_ctx *ctx, cl_program p, const char *file, cl_int e) {
    size_t n = 0;
    clGetProgramBuildInfo(p, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = malloc(n + 1);
    if (log) {
        clGetProgramBuildInfo(p, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL);
        log[n] = '\0';
    }
    cv_error(CV_ERR_BUILD, "building %s for %s failed (%s); build log:\n%s", file, ctx->dev_name,
             cv_cl_errname(e), log ? log : "(no log)");
    free(log);
    return CV_ERR_BUILD;
}

/* Build one program from the headers plus source `si`; use the cache. */
static cv_status build_program(cv_ctx *ctx, const cv_ctx_opts *o, int si, const char *opts, cl_program *out) {
    cv_status st = CV_OK;
    const cv_cl_source *src = &cv_cl_sources[si];
    const char *cl_dir = o->cl_dir ? o->cl_dir : getenv("CV_CL_DIR");
    int n_lines = 0;
    for (int i = 0; i < cv_cl_n_sources; i++) {
        size_t fl = strlen(cv_cl_sources[i].file);
        if (i == si || (fl > 4 && !strcmp(cv_cl_sources[i].file + fl - 4, ".clh"))) n_lines += cv_cl_sources[i].n_lines;
    }
    const char **lines = calloc((size_t)n_lines + 1, sizeof *lines);
    char *disk[CV_MAX_PROGRAMS] = {0};
    int n_disk = 0, k = 0;
    if (!lines) return cv_error(CV_ERR_NOMEM, "out of memory building %s", src->file);
    for (int i = 0; i < cv_cl_n_sources; i++) {
        size_t fl = strlen(cv_cl_sources[i].file);
        int is_hdr = fl > 4 && !strcmp(cv_cl_sources[i].file + fl - 4, ".clh");
        if (!(i == si || is_hdr)) continue;
        if (cl_dir && *cl_dir) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", cl_dir, cv_cl_sources[i].file);
            char *t = read_text(path);
            if (!t) { st = cv_error(CV_ERR_IO, "%s: cannot read kernel source (CV_CL_DIR=%s): %s", path, cl_dir, strerror(errno)); goto fail; }
            char *hdr = malloc(strlen(t) + 64);
            if (!hdr) { free(t); st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
            sprintf(hdr, "#line 1 \"%s\"\n%s\n", cv_cl_sources[i].file, t);
            free(t);
            disk[n_disk++] = hdr;
            lines[k++] = hdr;
        } else {
            for (int j = 0; j < cv_cl_sources[i].n_lines; j++) lines[k++] = cv_cl_sources[i].lines[j];
        }
    }
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < k; i++) h = fnv1a(h, lines[i], strlen(lines[i]));
    h = fnv1a(h, opts, strlen(opts));
    h = fnv1a(h, ctx->dev_name, strlen(ctx->dev_name));
    h = fnv1a(h, ctx->driver, strlen(ctx->driver));
    h = fnv1a(h, ctx->plat_ver, strlen(ctx->plat_ver));

    char dir[1024], path[1200];
    int use_cache = !o->no_cache && !(getenv("CV_NO_CACHE") && !strcmp(getenv("CV_NO_CACHE"), "1"));
    cv_cache_dir(o->cache_dir, dir, sizeof dir);
    if (!dir[0]) use_cache = 0;
    snprintf(path, sizeof path, "%s/%s-%016llx.bin", dir, src->file, (unsigned long long)h);

    cl_int e;
    cl_program p = NULL;
    if (use_cache) {
        FILE *f = fopen(path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            unsigned char *bin = n > 0 ? malloc((size_t)n) : NULL;
            if (bin && fread(bin, 1, (size_t)n, f) == (size_t)n) {
                size_t len = (size_t)n;
                cl_int bst;
                const unsigned char *bp = bin;
                p = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &len, &bp, &bst, &e);
                if (p && (e != CL_SUCCESS || bst != CL_SUCCESS || clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL) != CL_SUCCESS)) {
                    clReleaseProgram(p);
                    p = NULL;
                }
            }
            free(bin);
            fclose(f);
        }
    }
    if (p) { ctx->from_cache++; *out = p; goto done; }

    p = clCreateProgramWithSource(ctx->context, (cl_uint)k, lines, NULL, &e);
    if (!p) { st = CV_CL(e); goto fail; }
    e = clBuildProgram(p, 1, &ctx->device, opts, NULL, NULL);
    if (e != CL_SUCCESS) { st = build_log_error(ctx, p, src->file, e); clReleaseProgram(p); goto fail; }
    *out = p;
    if (use_cache && cv_mkdir_p(dir) == 0) {
        size_t len = 0;
        if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) == CL_SUCCESS && len > 0) {
            unsigned char *bin = malloc(len);
            if (bin && clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS) {
                char tmp[1300];
                snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
                FILE *f = fopen(tmp, "wb");
                if (f) {
                    int ok = fwrite(bin, 1, len, f) == len;
                    ok = (fclose(f) == 0) && ok;
                    if (!ok || rename(tmp, path) != 0) remove(tmp);   /* the cache is best effort */
                }
            }
            free(bin);
        }
    }
done:
fail:
    for (int i = 0; i < n_disk; i++) free(disk[i]);
    free(lines);
    return st;
}

static cv_status collect_kernels(cv_ctx *ctx, cl_program p) {
    cl_uint nk = 0;
    cl_int e = clCreateKernelsInProgram(p, 0, NULL, &nk);
    if (e != CL_SUCCESS) return CV_CL(e);
    if (nk == 0) return CV_OK;
    if (ctx->n_kern + (int)nk > CV_MAX_KERNELS) return cv_error(CV_ERR_ARG, "too many kernels (raise CV_MAX_KERNELS)");
    e = clCreateKernelsInProgram(p, nk, ctx->kern + ctx->n_kern, NULL);
    if (e != CL_SUCCESS) return CV_CL(e);
    for (cl_uint i = 0; i < nk; i++) {
        int j = ctx->n_kern + (int)i;
        ctx->kname[j][0] = '\0';
        clGetKernelInfo(ctx->kern[j], CL_KERNEL_FUNCTION_NAME, sizeof ctx->kname[j] - 1, ctx->kname[j], NULL);
    }
    ctx->n_kern += (int)nk;
    return CV_OK;
}

/* ---------------------------------------------------------------- context */

cv_ctx_opts cv_ctx_opts_default(void) {
    cv_ctx_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

/* The kernel parameters: opts->tune as given, else the table entry of the
 * device overridden by its wisdom file.  A wisdom file that cannot be used
 * is ignored with one warning on stderr (it is a cache: it must never stop
 * a run), and the reason is kept in tune.warning for cosmovae-info. */
static cv_status choose_tune(cv_ctx *ctx, const cv_ctx_opts *o) {
    if (o->tune) {
        cv_status st = cv_tune_validate(o->tune);
        if (st != CV_OK) return st;
        ctx->tune = *o->tune;
        return CV_OK;
    }
    cv_tune_table(ctx->dev_name, ctx->vendor, (uint64_t)ctx->dev_type, &ctx->tune);
    const char *nw = getenv("CV_NO_WISDOM");
    if (o->no_wisdom || (nw && !strcmp(nw, "1"))) return CV_OK;
    char path[1200];
    cv_tune_wisdom_path(o->cache_dir, ctx->dev_name, path, sizeof path);
    if (!path[0]) return CV_OK;
    cv_status st = cv_tune_read(path, ctx->dev_name, &ctx->tune);
    if (st == CV_ERR_FORMAT) {
        snprintf(ctx->tune.warning, sizeof ctx->tune.warning, "%s; ignored, using the built-in table "
                 "(rerun cosmovae-info --tune to rewrite it)", cv_last_error());
        fprintf(stderr, "cosmovae: warning: %s\n", ctx->tune.warning);
        cv_error_clear();
    }
    return CV_OK;
}

cv_status cv_ctx_new(const cv_ctx_opts *opts_in, cv_ctx **out) {
    cv_status st = CV_OK;
    cv_ctx_opts o = opts_in ? *opts_in : cv_ctx_opts_default();
    cv_ctx *ctx = calloc(1, sizeof *ctx);
    *out = NULL;
    if (!ctx) return cv_error(CV_ERR_NOMEM, "out of memory creating the OpenCL context");
    const char *spec = o.device ? o.device : getenv("CV_DEVICE");
    cv_devref r;
    CV_TRY(select_device(spec, &r));
    ctx->platform = r.p;
    ctx->device = r.d;
    ctx->dev_type = r.type;
    snprintf(ctx->dev_name, sizeof ctx->dev_name, "%s", r.dname);
    snprintf(ctx->vendor, sizeof ctx->vendor, "%s", r.vendor);
    snprintf(ctx->plat_name, sizeof ctx->plat_name, "%s", r.pname);
    clGetDeviceInfo(r.d, CL_DRIVER_VERSION, sizeof ctx->driver - 1, ctx->driver, NULL);
    clGetPlatformInfo(r.p, CL_PLATFORM_VERSION, sizeof ctx->plat_ver - 1, ctx->plat_ver, NULL);
    cl_ulong v64 = 0; cl_uint v32 = 0;
    clGetDeviceInfo(r.d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof v64, &v64, NULL); ctx->max_alloc = (size_t)v64;
    clGetDeviceInfo(r.d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof v64, &v64, NULL); ctx->global_mem = (size_t)v64;
    clGetDeviceInfo(r.d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof v32, &v32, NULL); ctx->align = v32 >= 8 ? v32 / 8 : 4;
    clGetDeviceInfo(r.d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof ctx->max_wg, &ctx->max_wg, NULL);
    clGetDeviceInfo(r.d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof ctx->compute_units, &ctx->compute_units, NULL);
    if (ctx->compute_units < 1) ctx->compute_units = 1;
    CV_TRY(choose_tune(ctx, &o));

    cl_int e;
    cl_context_properties props[] = { CL_CONTEXT_PLATFORM, (cl_context_properties)r.p, 0 };
    ctx->context = clCreateContext(props, 1, &r.d, NULL, NULL, &e);
    if (!ctx->context) { st = CV_CL(e); goto fail; }
    const char *penv = getenv("CV_PROFILE");
    ctx->profile = o.profile || (penv && !strcmp(penv, "1"));
    ctx->queue = clCreateCommandQueue(ctx->context, r.d, ctx->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &e);
    if (!ctx->queue) { st = CV_CL(e); goto fail; }
    if (ctx->profile) {
        ctx->pev = malloc(CV_PROF_CAP * sizeof *ctx->pev);
        if (!ctx->pev) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    }

    char bopts[1024], topts[256];
    cv_tune_build_opts(&ctx->tune, topts, sizeof topts);
    snprintf(bopts, sizeof bopts, "-cl-std=CL1.2 -DCV_CL=1 %s %s", topts, o.build_opts ? o.build_opts : "");
    for (int i = 0; i < cv_cl_n_sources; i++) {
        size_t fl = strlen(cv_cl_sources[i].file);
        if (fl > 4 && !strcmp(cv_cl_sources[i].file + fl - 4, ".clh")) continue;
        if (ctx->n_prog >= CV_MAX_PROGRAMS) { st = cv_error(CV_ERR_ARG, "too many programs"); goto fail; }
        CV_TRY(build_program(ctx, &o, i, bopts, &ctx->prog[ctx->n_prog]));
        ctx->n_prog++;
        CV_TRY(collect_kernels(ctx, ctx->prog[ctx->n_prog - 1]));
    }
    *out = ctx;
    return CV_OK;
fail:
    cv_ctx_free(ctx);
    return st;
}

void cv_ctx_free(cv_ctx *ctx) {
    if (!ctx) return;
    if (ctx->queue) clFinish(ctx->queue);
    for (int i = 0; i < ctx->n_pev; i++) clReleaseEvent(ctx->pev[i].ev);
    free(ctx->pev);
    if (ctx->scratch) clReleaseMemObject(ctx->scratch);
    for (int i = ctx->n_kern - 1; i >= 0; i--) clReleaseKernel(ctx->kern[i]);
    for (int i = ctx->n_prog - 1; i >= 0; i--) clReleaseProgram(ctx->prog[i]);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    free(ctx);
}

cl_context       cv_ctx_context(const cv_ctx *c)     { return c->context; }
cl_command_queue cv_ctx_queue(const cv_ctx *c)       { return c->queue; }
cl_device_id     cv_ctx_device(const cv_ctx *c)      { return c->device; }
const char      *cv_ctx_device_name(const cv_ctx *c) { return c->dev_name; }
const char      *cv_ctx_vendor(const cv_ctx *c)      { return c->vendor; }
int              cv_ctx_from_cache(const cv_ctx *c)  { return c->from_cache == c->n_prog && c->n_prog > 0; }
size_t           cv_ctx_max_alloc(const cv_ctx *c)   { return c->max_alloc; }
size_t           cv_ctx_global_mem(const cv_ctx *c)  { return c->global_mem; }
size_t           cv_ctx_align(const cv_ctx *c)       { return c->align; }
size_t           cv_ctx_max_wg(const cv_ctx *c)      { return c->max_wg; }
int              cv_ctx_is_gpu(const cv_ctx *c)      { return (c->dev_type & CL_DEVICE_TYPE_GPU) != 0; }
int              cv_ctx_compute_units(const cv_ctx *c) { return (int)c->compute_units; }
const char      *cv_ctx_driver(const cv_ctx *c)      { return c->driver; }
uint64_t         cv_ctx_device_type(const cv_ctx *c) { return (uint64_t)c->dev_type; }
const cv_tune   *cv_ctx_tune(const cv_ctx *c)        { return &c->tune; }

cv_status cv_ctx_set_tune(cv_ctx *ctx, const cv_tune *t) {
    char a[256], b[256];
    cv_status st = cv_tune_validate(t);
    if (st != CV_OK) return st;
    cv_tune_build_opts(&ctx->tune, a, sizeof a);
    cv_tune_build_opts(t, b, sizeof b);
    if (strcmp(a, b)) return cv_error(CV_ERR_ARG, "kernel parameters '%s' need other programs than '%s'", b, a);
    ctx->tune = *t;
    return CV_OK;
}
int              cv_ctx_n_kernels(const cv_ctx *c)   { return c->n_kern; }
const char      *cv_ctx_kernel_name(const cv_ctx *c, int i) { return c->kname[i]; }

static int kernel_index(const cv_ctx *ctx, const char *name) {
    for (int i = 0; i < ctx->n_kern; i++) if (!strcmp(ctx->kname[i], name)) return i;
    return -1;
}

cv_status cv_ctx_kernel(cv_ctx *ctx, const char *name, cl_kernel *out) {
    int i = kernel_index(ctx, name);
    if (i < 0) return cv_error(CV_ERR_ARG, "no OpenCL kernel named '%s' in cl/*.cl", name);
    *out = ctx->kern[i];
    return CV_OK;
}

cv_status cv_ctx_alloc(cv_ctx *ctx, const char *what, size_t nbytes, int zero, cl_mem *out) {
    char a[32], b[32];
    *out = NULL;
    if (nbytes == 0) nbytes = 16;
    size_str(a, sizeof a, (double)nbytes);
    if (nbytes > ctx->max_alloc) {
        size_str(b, sizeof b, (double)ctx->max_alloc);
        return cv_error(CV_ERR_DEVMEM, "allocating %s (%s) on %s: larger than the device's largest single allocation (%s)",
                        what, a, ctx->dev_name, b);
    }
    if (nbytes > ctx->global_mem) {
        size_str(b, sizeof b, (double)ctx->global_mem);
        return cv_error(CV_ERR_DEVMEM, "allocating %s (%s) on %s: larger than the device memory (%s)", what, a, ctx->dev_name, b);
    }
    cl_int e;
    cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, nbytes, NULL, &e);
    if (!m) return cv_error(CV_ERR_DEVMEM, "allocating %s (%s) on %s failed: %s", what, a, ctx->dev_name, cv_cl_errname(e));
    if (zero) {
        /* Touch the memory now so that a lazily-allocating driver reports
         * exhaustion here, naming the allocation, not in a later kernel. */
        float z[16] = { 0 };
        size_t np = nbytes % 64 ? sizeof(float) : sizeof z;
        e = clEnqueueFillBuffer(ctx->queue, m, z, np, 0, nbytes & ~(np - 1), 0, NULL, NULL);
        if (e == CL_SUCCESS) e = clFinish(ctx->queue);
        if (e != CL_SUCCESS) {
            clReleaseMemObject(m);
            return cv_error(CV_ERR_DEVMEM, "allocating %s (%s) on %s failed: %s", what, a, ctx->dev_name, cv_cl_errname(e));
        }
    }
    *out = m;
    return CV_OK;
}

cv_status cv_ctx_scratch(cv_ctx *ctx, size_t nbytes, cl_mem *out) {
    if (nbytes > ctx->scratch_size || !ctx->scratch) {
        cl_mem m;
        cv_status st = cv_ctx_alloc(ctx, "scratch workspace", nbytes, 0, &m);
        if (st != CV_OK) return st;
        if (ctx->scratch) { clFinish(ctx->queue); clReleaseMemObject(ctx->scratch); }
        ctx->scratch = m;
        ctx->scratch_size = nbytes;
    }
    *out = ctx->scratch;
    return CV_OK;
}

cv_status cv_ctx_finish(cv_ctx *ctx) { return CV_CL(clFinish(ctx->queue)); }

/* ---------------------------------------------------------------- kernels */

cv_kargs cv_kargs_begin(cv_ctx *ctx, const char *name) {
    cv_kargs ka = { ctx, NULL, name, 0, CV_OK };
    int i = kernel_index(ctx, name);
    if (i < 0) ka.st = cv_error(CV_ERR_ARG, "no OpenCL kernel named '%s' in cl/*.cl", name);
    else ka.k = ctx->kern[i];
    return ka;
}

static void karg(cv_kargs *ka, size_t n, const void *v) {
    if (ka->st != CV_OK) return;
    cl_int e = clSetKernelArg(ka->k, ka->i, n, v);
    if (e != CL_SUCCESS)
        ka->st = cv_error(CV_ERR_CL, "%s: setting argument %u: %s", ka->name, (unsigned)ka->i, cv_cl_errname(e));
    ka->i++;
}
void cv_karg_mem(cv_kargs *ka, cl_mem m)       { karg(ka, sizeof m, &m); }
void cv_karg_u64(cv_kargs *ka, uint64_t v)     { cl_ulong x = v; karg(ka, sizeof x, &x); }
void cv_karg_i32(cv_kargs *ka, int32_t v)      { cl_int x = v; karg(ka, sizeof x, &x); }
void cv_karg_i64(cv_kargs *ka, int64_t v)      { cl_long x = v; karg(ka, sizeof x, &x); }
void cv_karg_u32(cv_kargs *ka, uint32_t v)     { cl_uint x = v; karg(ka, sizeof x, &x); }
void cv_karg_f32(cv_kargs *ka, float v)        { cl_float x = v; karg(ka, sizeof x, &x); }
void cv_karg_local(cv_kargs *ka, size_t n)     { karg(ka, n, NULL); }

static void prof_drain(cv_ctx *ctx) {
    for (int i = 0; i < ctx->n_pev; i++) {
        cl_ulong t0 = 0, t1 = 0;
        clWaitForEvents(1, &ctx->pev[i].ev);
        clGetEventProfilingInfo(ctx->pev[i].ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        clGetEventProfilingInfo(ctx->pev[i].ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        int k = ctx->pev[i].kidx;
        size_t nwg = ctx->pev[i].nwg;
        ctx->ktime_ns[k] += (double)(t1 - t0);
        ctx->kcalls[k]++;
        if (ctx->last_end && t0 > ctx->last_end) {
            double gap = (double)(t0 - ctx->last_end);
            int b = gap < 50e3 ? 0 : gap < 1e6 ? 1 : 2;
            ctx->gap_ns[b] += gap;
            ctx->gap_n[b]++;
        }
        if (t1 > ctx->last_end) ctx->last_end = t1;
        if (nwg) {
            ctx->kwg[k] += (double)nwg;
            ctx->kwg_calls[k]++;
            if (nwg < ctx->compute_units) ctx->kthin_ns[k] += (double)(t1 - t0);
        }
        clReleaseEvent(ctx->pev[i].ev);
    }
    ctx->n_pev = 0;
}

cv_status cv_launch(cv_kargs *ka, cl_uint dims, const size_t *gsize, const size_t *lsize) {
    if (ka->st != CV_OK) return ka->st;
    size_t g[3];
    for (cl_uint d = 0; d < dims; d++) {
        if (gsize[d] == 0) return CV_OK;          /* nothing to do */
        g[d] = lsize ? (gsize[d] + lsize[d] - 1) / lsize[d] * lsize[d] : gsize[d];
    }
    cv_ctx *ctx = ka->ctx;
    cl_event ev = NULL;
    cl_int e = clEnqueueNDRangeKernel(ctx->queue, ka->k, dims, NULL, g, lsize, 0, NULL, ctx->profile ? &ev : NULL);
    if (e != CL_SUCCESS) {
        cv_status st = cv_error(e == CL_OUT_OF_RESOURCES || e == CL_MEM_OBJECT_ALLOCATION_FAILURE ? CV_ERR_DEVMEM : CV_ERR_CL,
                                "launching %s (global %zu x %zu x %zu, local %zu x %zu x %zu): %s", ka->name,
                                g[0], dims > 1 ? g[1] : 1, dims > 2 ? g[2] : 1,
                                lsize ? lsize[0] : 0, lsize && dims > 1 ? lsize[1] : 0, lsize && dims > 2 ? lsize[2] : 0,
                                cv_cl_errname(e));
        return st;
    }
    if (ev) {
        if (ctx->n_pev == CV_PROF_CAP) prof_drain(ctx);
        ctx->pev[ctx->n_pev].ev = ev;
        ctx->pev[ctx->n_pev].kidx = kernel_index(ctx, ka->name);
        size_t nwg = 0;
        if (lsize) { nwg = 1; for (cl_uint d = 0; d < dims; d++) nwg *= g[d] / lsize[d]; }
        ctx->pev[ctx->n_pev].nwg = nwg;
        ctx->n_pev++;
    }
    return CV_OK;
}

cv_status cv_launch1(cv_kargs *ka, size_t n, size_t local) {
    return cv_launch(ka, 1, &n, local ? &local : NULL);
}

/* -------------------------------------------------------------- profiling */

void cv_ctx_profile_event(cv_ctx *ctx, const char *label, cl_event ev) {
    if (!ev) return;
    if (!ctx->profile) { clReleaseEvent(ev); return; }
    int k = -1;
    for (int i = ctx->n_kern; i < ctx->n_kern + ctx->n_label; i++) if (!strcmp(ctx->kname[i], label)) k = i;
    if (k < 0 && ctx->n_kern + ctx->n_label < CV_MAX_KERNELS) {
        k = ctx->n_kern + ctx->n_label++;
        snprintf(ctx->kname[k], sizeof ctx->kname[k], "%s", label);
    }
    if (k < 0) { clReleaseEvent(ev); return; }
    if (ctx->n_pev == CV_PROF_CAP) prof_drain(ctx);
    ctx->pev[ctx->n_pev].ev = ev;
    ctx->pev[ctx->n_pev].kidx = k;
    ctx->pev[ctx->n_pev].nwg = 0;
    ctx->n_pev++;
}

int cv_ctx_profiling(const cv_ctx *ctx) { return ctx->profile; }

void cv_ctx_profile_reset(cv_ctx *ctx) {
    if (!ctx->profile) return;
    prof_drain(ctx);
    memset(ctx->ktime_ns, 0, sizeof ctx->ktime_ns);
    memset(ctx->kcalls, 0, sizeof ctx->kcalls);
    memset(ctx->kthin_ns, 0, sizeof ctx->kthin_ns);
    memset(ctx->kwg, 0, sizeof ctx->kwg);
    memset(ctx->kwg_calls, 0, sizeof ctx->kwg_calls);
    memset(ctx->gap_ns, 0, sizeof ctx->gap_ns);
    memset(ctx->gap_n, 0, sizeof ctx->gap_n);
    ctx->last_end = 0;
}

void cv_ctx_profile_report(cv_ctx *ctx, FILE *f) {
    if (!ctx->profile) { fprintf(f, "profiling is off (set CV_PROFILE=1 or --profile)\n"); return; }
    prof_drain(ctx);
    int idx[CV_MAX_KERNELS], n = 0;
    double total = 0;
    for (int i = 0; i < ctx->n_kern + ctx->n_label; i++) if (ctx->kcalls[i]) { idx[n++] = i; total += ctx->ktime_ns[i]; }
    for (int i = 1; i < n; i++) {             /* insertion sort, descending time */
        int v = idx[i], j = i;
        while (j > 0 && ctx->ktime_ns[idx[j - 1]] < ctx->ktime_ns[v]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = v;
    }
    /* wg/call: mean work-groups per launch ("-": the implementation chose the local size);
     * thin: the share of the kernel's time in launches of fewer work-groups than the
     * device has compute units, where some of them idle. */
    fprintf(f, "%-34s %10s %12s %12s %7s %9s %6s\n", "kernel", "calls", "total ms", "mean us", "share", "wg/call", "thin");
    double thin = 0;
    for (int i = 0; i < n; i++) {
        int k = idx[i];
        char wg[32] = "-", th[16] = "-";
        if (ctx->kwg_calls[k]) {
            snprintf(wg, sizeof wg, "%.0f", ctx->kwg[k] / (double)ctx->kwg_calls[k]);
            snprintf(th, sizeof th, "%.0f%%", ctx->ktime_ns[k] > 0 ? 100.0 * ctx->kthin_ns[k] / ctx->ktime_ns[k] : 0.0);
        }
        thin += ctx->kthin_ns[k];
        fprintf(f, "%-34s %10ld %12.3f %12.2f %6.1f%% %9s %6s\n", ctx->kname[k], ctx->kcalls[k], ctx->ktime_ns[k] * 1e-6,
                ctx->ktime_ns[k] * 1e-3 / (double)ctx->kcalls[k], total > 0 ? 100.0 * ctx->ktime_ns[k] / total : 0.0,
                wg, th);
    }
    fprintf(f, "%-34s %10s %12.3f   (%.1f%% in launches of fewer than %u work-groups)\n", "total", "", total * 1e-6,
            total > 0 ? 100.0 * thin / total : 0.0, (unsigned)ctx->compute_units);
    double gaps = ctx->gap_ns[0] + ctx->gap_ns[1] + ctx->gap_ns[2];
    if (gaps > 0)
        fprintf(f, "%-34s %10ld %12.3f   (between profiled commands: %.1f%% of kernel + gap time; "
                   "%ld gaps < 50 us: %.3f ms, %ld up to 1 ms: %.3f ms, %ld longer: %.3f ms)\n",
                "idle", ctx->gap_n[0] + ctx->gap_n[1] + ctx->gap_n[2], gaps * 1e-6, 100.0 * gaps / (gaps + total),
                ctx->gap_n[0], ctx->gap_ns[0] * 1e-6, ctx->gap_n[1], ctx->gap_ns[1] * 1e-6, ctx->gap_n[2], ctx->gap_ns[2] * 1e-6);
}
