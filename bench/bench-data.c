/* bench-data.c -- field-data throughput: cosmovae-import against simply
 * reading its input (cat to /dev/null, same run, same files) and against
 * copying it (cat into one file: the cost of writing as many bytes as a
 * full-size import writes), and the batch loader's maps/s, each with its
 * peak resident memory.
 *
 * Makes a CMD-format set on the fly (default 4500 maps of 256^2 per field:
 * three .npy files of 1.18 GB, 3.5 GB in all; CV_BENCH_DATA_MAPS changes
 * the count), in a scratch folder under $CV_BENCH_DIR, else $TMPDIR, else
 * the current one, and deletes it at the end.  "Cold" runs first evict the
 * files from the page cache (posix_fadvise DONTNEED after fdatasync), so
 * that both cat and the import read from the disk (or whatever cache lies
 * under it); "warm" runs read from the page cache, CV_BENCH_DATA_REPS
 * rounds (default 3) of cat and both imports, each program's best wall
 * and CPU time kept, so that other work on a shared machine disturbs the
 * comparison less.  Every program runs as a child process; its CPU time
 * (user + system, all threads) and peak RSS come from wait4. */
#define _DEFAULT_SOURCE 1   /* wait4 */
#include "prog/cv_cli.h"
#include "dataset/cv_data.h"
#include "dataset/cv_fields.h"
#include "dataset/cv_loader.h"
#include "dataset/cv_npy.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *fields[3] = { "Mgas", "HI", "B" };
static char dir[1024], files[3][1200];

static double last_cpu;   /* CPU seconds (user + system) of the last run() */

/* Run argv as a child, its output to `out` (NULL: /dev/null); wall
 * seconds and peak RSS (MB). */
static int run(char *const argv[], const char *out, double *wall, double *rss_mb) {
    double t0 = cv_now();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return -1;
    *wall = cv_now() - t0;
    *rss_mb = ru.ru_maxrss / 1024.0;
    last_cpu = ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void evict(void) {
    for (int c = 0; c < 3; c++) {
        int fd = open(files[c], O_RDONLY);
        if (fd < 0) continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Child mode: loader throughput over `secs` seconds. */
static int loader_main(const char *path, int batch, int prefetch, double secs) {
    cv_dataset *ds = NULL;
    cv_loader *l = NULL;
    if (cv_dataset_open(path, &ds) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
    cv_loader_opts o = cv_loader_opts_default();
    o.batch = batch;
    o.augment = 1;
    o.prefetch = prefetch;
    o.seed = 1;
    if (cv_loader_new(ds, &o, &l) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
    size_t bs = (size_t)batch * cv_dataset_n_chan(ds) * cv_dataset_height(ds) * cv_dataset_width(ds);
    float *b = malloc(bs * sizeof(float));
    long n = 0;
    double t0 = cv_now(), t;
    do {
        if (cv_loader_next(l, b, NULL, NULL, NULL) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
        n++;
        t = cv_now() - t0;
    } while (t < secs);
    fprintf(stderr, "%.1f\n", n * batch / t);
    free(b);
    cv_loader_free(l);
    cv_dataset_free(ds);
    return 0;
}

static double loader_rate(const char *self, const char *path, int batch, int prefetch, double *rss) {
    char bs[16], ps[16], err[64];
    snprintf(bs, sizeof bs, "%d", batch);
    snprintf(ps, sizeof ps, "%d", prefetch);
    int p[2];
    if (pipe(p)) return -1;
    double t0 = cv_now();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        execl(self, self, "--loader", path, bs, ps, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    ssize_t n = read(p[0], err, sizeof err - 1);
    close(p[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    (void)t0;
    *rss = ru.ru_maxrss / 1024.0;
    err[n > 0 ? n : 0] = '\0';
    return WIFEXITED(status) && !WEXITSTATUS(status) ? atof(err) : -1;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--loader")) return loader_main(argv[2], atoi(argv[3]), atoi(argv[4]), 3.0);
    const char *e = getenv("CV_BENCH_DATA_MAPS");
    int64_t n_maps = e ? atoll(e) : 4500;
    const char *er = getenv("CV_BENCH_DATA_REPS");
    int reps = er ? atoi(er) : 3;
    if (reps < 1) reps = 1;
    n_maps = (n_maps + 14) / 15 * 15;
    const int S = 256;
    const char *base = getenv("CV_BENCH_DIR");
    if (!base || !*base) base = getenv("TMPDIR");
    if (!base || !*base) base = ".";
    snprintf(dir, sizeof dir, "%.900s/bench-data.XXXXXX", base);
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    const char *bd = getenv("top_builddir");
    char import[1200], self[1200];
    snprintf(import, sizeof import, "%.1000s/src/cosmovae-import", bd && *bd ? bd : ".");
    snprintf(self, sizeof self, "%.1100s", argv[0]);

    /* 15 distinct 256^2 maps, repeated with a per-simulation scale */
    double t0 = cv_now();
    cv_fields *g = NULL;
    float *maps = malloc((size_t)15 * 3 * S * S * sizeof(float)), *tmp = malloc((size_t)S * S * sizeof(float));
    double prm[6] = { 0.3, 0.8, 1, 1, 1, 1 };
    if (!maps || !tmp || cv_fields_new(S, &g) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
    for (int j = 0; j < 15; j++) cv_fields_map(g, prm, 1, 0, j, maps + (size_t)j * 3 * S * S);
    cv_fields_free(g);
    int64_t shp[3] = { n_maps, S, S };
    for (int c = 0; c < 3; c++) {
        snprintf(files[c], sizeof files[c], "%s/Maps_%s_IllustrisTNG_LH_z=0.00.npy", dir, fields[c]);
        cv_npy_out *o = NULL;
        if (cv_npy_out_new(files[c], 3, shp, &o) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
        for (int64_t m = 0; m < n_maps; m++) {
            const float *src = maps + ((size_t)(m % 15) * 3 + c) * S * S;
            float f = 1.0f + 0.001f * (float)(m / 15);
            for (int i = 0; i < S * S; i++) tmp[i] = src[i] * f;
            if (cv_npy_out_write(o, tmp, (int64_t)S * S) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
        }
        if (cv_npy_out_finish(o) != CV_OK) { fprintf(stderr, "%s\n", cv_last_error()); return 1; }
        cv_npy_out_free(o);
    }
    free(maps);
    free(tmp);
    int64_t n_sims = n_maps / 15;
    double *params = malloc((size_t)n_sims * 6 * sizeof(double));
    cv_fields_latin_hypercube(n_sims, 1, params);
    char pp[1200];
    snprintf(pp, sizeof pp, "%s/params_LH_IllustrisTNG.txt", dir);
    cv_data_write_params(pp, n_sims, 6, NULL, params);
    free(params);
    const double gb = 3.0 * (double)n_maps * S * S * 4 / 1e9;
    printf("bench-data: %lld maps of %dx%d x 3 fields = %.2f GB of .npy, made in %.1f s\n", (long long)n_maps, S, S, gb, cv_now() - t0);

    char out64[1200], out256[1200], outcp[1200];
    snprintf(out64, sizeof out64, "%s/out64.nc", dir);
    snprintf(out256, sizeof out256, "%s/out256.nc", dir);
    snprintf(outcp, sizeof outcp, "%s/copy.bin", dir);
    char *cat[] = { "cat", files[0], files[1], files[2], NULL };
    char *imp64[] = { import, "-q", dir, "-o", out64, "--downsample", "4", NULL };
    char *imp256[] = { import, "-q", dir, "-o", out256, NULL };
    printf("%-40s %8s %6s %9s %9s %8s %8s %8s\n", "", "wall s", "CPU s", "maps/s", "MB/s in", "vs cat", "CPU/cat", "peak MB");
    double la[3] = { 0, 0, 0 };
    if (getloadavg(la, 3) > 0) printf("(load average %.1f on %ld CPUs: other work shares the machine)\n", la[0], sysconf(_SC_NPROCESSORS_ONLN));
    for (int warm = 0; warm < 2; warm++) {
        /* per program (cat, copy, import 64^2, import 256^2): best wall and
         * CPU time over the rounds, highest RSS.  Cold: one round, cat
         * before and after the others, the faster cat the baseline.  Each
         * program's output is removed before it runs (a fresh file, as a
         * user's first import) and, cold, after. */
        enum { NP = 4 };
        double w[NP], cpu[NP], rss[NP];
        for (int v = 0; v < NP; v++) { w[v] = cpu[v] = 1e30; rss[v] = 0; }
        const char *tag = warm ? "warm" : "cold";
        const int rounds = warm ? reps : 1;
        char *const *prog[NP] = { cat, cat, imp64, imp256 };
        const char *outs[NP] = { NULL, outcp, out64, out256 };
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < (warm ? NP : NP + 1); k++) {
                const int v = k == NP ? 0 : k;
                double wt, rm;
                if (!warm) evict();
                if (outs[v]) remove(outs[v]);
                int rc = run(prog[v], v == 1 ? outcp : NULL, &wt, &rm);
                if (rc) { printf("%s failed (exit %d)\n", v > 1 ? "cosmovae-import" : "cat", rc); return 1; }
                if (wt < w[v]) w[v] = wt;
                if (last_cpu < cpu[v]) cpu[v] = last_cpu;
                if (rm > rss[v]) rss[v] = rm;
                if (!warm && outs[v]) remove(outs[v]);
            }
        remove(outcp);
        static const char *what[NP] = { "cat to /dev/null", "copy (cat into a file)", "import --downsample 4 (64^2)",
                                        "import 256^2 (no downsampling)" };
        for (int v = 0; v < NP; v++)
            printf("%s: %-34s %8.2f %6.2f %9.0f %9.0f %8.2f %8.2f %8.1f\n", tag, what[v], w[v], cpu[v], n_maps / w[v],
                   gb * 1e3 / w[v], w[0] / w[v], cpu[0] / cpu[v], rss[v]);
        printf("%s: import 256^2 vs copy: %.2f (wall), %.2f (CPU)\n", tag, w[1] / w[3], cpu[1] / cpu[3]);
    }
    printf("(vs cat: cat's wall time over the program's; CPU/cat: the same for CPU time;\n"
           " warm: best of %d rounds; the imports run --threads at its default)\n", reps);
    /* the loader: what cosmovae-train asks of it */
    struct { const char *path, *what; int batch, prefetch; } lc[] = {
        { out64, "loader 64^2, batch 4, prefetch 2", 4, 2 },
        { out64, "loader 64^2, batch 4, no prefetch", 4, 0 },
        { out256, "loader 256^2, batch 4, prefetch 2", 4, 2 },
    };
    printf("(augment, log10 + normalise, shuffle; train split; 3 s each)\n");
    for (size_t i = 0; i < sizeof lc / sizeof *lc; i++) {
        double rss = 0;
        double rate = loader_rate(self, lc[i].path, lc[i].batch, lc[i].prefetch, &rss);
        printf("%-40s %8s %6s %9.0f %9s %8s %8.1f\n", lc[i].what, "", "", rate, "", "", rss);
    }
    printf("(the small model trains at about 70 maps/s at best here)\n");
    remove(out64);
    remove(out256);
    for (int c = 0; c < 3; c++) remove(files[c]);
    remove(pp);
    rmdir(dir);
    return 0;
}
