/* test-data-import.c -- cosmovae-import and cosmovae-mkfields as a user
 * runs them: the CMD-format fixture round-trips bit-exactly, map -> sim and
 * params mapping, splits by simulation, train-only statistics,
 * mass-conserving downsampling, --first/--fields/--split, the .npy route
 * giving the same dataset as writing it directly, and every kind of bad
 * input failing with exit 1, a message naming the file (and map), and no
 * output file left behind. */
#include "tap.h"
#include "dataset/cv_data.h"
#include "dataset/cv_npy.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

static char work[512], bindir[512], errtxt[8192];

static const char *srcdir(void) {
    const char *s = getenv("top_srcdir");
    return s && *s ? s : CV_SRCDIR;
}

/* Run a shell command in the work directory; stderr into errtxt. */
static int sh(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int sh(const char *fmt, ...) {
    char cmd[8192], args[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s ; } >/dev/null 2>stderr.txt", work, args);
    int r = system(cmd);
    char p[1024];
    snprintf(p, sizeof p, "%.500s/stderr.txt", work);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(errtxt, 1, sizeof errtxt - 1, f) : 0;
    errtxt[n] = '\0';
    if (n && errtxt[n - 1] == '\n') errtxt[n - 1] = '\0';
    if (f) fclose(f);
    remove(p);
    return WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

/* Does anything named out.nc* exist in the work directory? */
static int out_left(const char *base) {
    DIR *d = opendir(work);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, base, strlen(base))) n++;
    if (d) closedir(d);
    return n;
}

static void wpath(char *b, size_t n, const char *rel) { snprintf(b, n, "%.500s/%.500s", work, rel); }

static const char *fields[3] = { "Mgas", "HI", "B" };

/* Read a whole npy file of the fixture layout. */
static float *npy_all(const char *path, int64_t *n, int64_t *item) {
    cv_npy *f = NULL;
    if (cv_npy_open(path, &f) != CV_OK) return NULL;
    *n = cv_npy_hdr(f)->shape[0];
    *item = cv_npy_item_elems(f);
    float *x = malloc((size_t)(*n * *item) * 4);
    if (x && cv_npy_read(f, 0, *n, x) != CV_OK) { free(x); x = NULL; }
    cv_npy_close(f);
    return x;
}

static int npy_put(const char *path, const float *x, int64_t n, int64_t h, int64_t w) {
    int64_t shp[3] = { n, h, w };
    cv_npy_out *o = NULL;
    int ok = cv_npy_out_new(path, 3, shp, &o) == CV_OK && cv_npy_out_write(o, x, n * h * w) == CV_OK && cv_npy_out_finish(o) == CV_OK;
    cv_npy_out_free(o);
    return ok;
}

/* Patch `from` to `to` (same length) in the first 256 bytes of a file. */
static void patch(const char *path, const char *from, const char *to) {
    FILE *f = fopen(path, "r+b");
    char b[256];
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    for (size_t i = 0; i + strlen(from) <= n; i++)
        if (!memcmp(b + i, from, strlen(from))) {
            fseek(f, (long)i, SEEK_SET);
            fwrite(to, 1, strlen(to), f);
            break;
        }
    if (f) fclose(f);
}

static void test_roundtrip(void) {
    char fix[1024], p[2048];
    snprintf(fix, sizeof fix, "%.1000s/data/cmd-npy-16", srcdir());
    int rc = sh("%s/cosmovae-import -q '%s' -o imp.nc", bindir, fix);
    CV_CHECK_OK(rc == 0, "import the CMD-format fixture (exit %d) %s", rc, errtxt);
    wpath(p, sizeof p, "imp.nc");
    cv_dataset *ds = NULL;
    if (rc || cv_dataset_open(p, &ds) != CV_OK) return;
    const int64_t M = cv_dataset_n_maps(ds);
    const int H = cv_dataset_height(ds);
    const size_t hw = (size_t)H * H;
    float *got = malloc((size_t)M * 3 * hw * 4);
    cv_dataset_read(ds, 0, M, got);
    int exact = cv_dataset_n_chan(ds) == 3;
    for (int ch = 0; ch < 3 && exact; ch++) {
        char np[2048];
        snprintf(np, sizeof np, "%.1000s/Maps_%s_IllustrisTNG_LH_z=0.00.npy", fix, fields[ch]);
        int64_t n, item;
        float *x = npy_all(np, &n, &item);
        exact = x && n == M && item == (int64_t)hw && !strcmp(cv_dataset_chan_name(ds, ch), fields[ch]);
        for (int64_t m = 0; exact && m < M; m++) exact = !memcmp(x + m * hw, got + ((size_t)m * 3 + ch) * hw, hw * 4);
        free(x);
    }
    CV_CHECK_OK(exact, "import: every map of every field bit-exact in fields(map, channel, y, x)");
    snprintf(p, sizeof p, "%.1000s/params_LH_IllustrisTNG.txt", fix);
    int64_t nr = 0;
    double *pr = NULL;
    cv_data_read_params(p, 6, &nr, &pr);
    int map_ok = pr && nr * 15 == M;
    for (int64_t m = 0; map_ok && m < M; m++) {
        map_ok = cv_dataset_sim(ds, m) == m / 15;
        for (int k = 0; k < 6; k++) map_ok &= cv_dataset_param(ds, m, k) == pr[(m / 15) * 6 + k];
    }
    CV_CHECK_OK(map_ok, "import: map i -> simulation i/15 and its parameter row");
    CV_CHECK_OK(strstr(cv_dataset_attr(ds, "history"), "cosmovae-import") && strstr(cv_dataset_attr(ds, "source"), "CMD") &&
                    cv_dataset_box_size(ds) == 25.0,
                "import: history, source and box size recorded");
    /* the same maps written directly by mkfields (the fixture's command with -o) */
    rc = sh("%s/cosmovae-mkfields -q -o direct.nc --sims 2 --size 16 --seed 3", bindir);
    wpath(p, sizeof p, "direct.nc");
    cv_dataset *dd = NULL;
    int same = rc == 0 && cv_dataset_open(p, &dd) == CV_OK && cv_dataset_n_maps(dd) == M;
    if (same) {
        float *g2 = malloc((size_t)M * 3 * hw * 4);
        cv_dataset_read(dd, 0, M, g2);
        same = !memcmp(got, g2, (size_t)M * 3 * hw * 4) && !memcmp(cv_dataset_params(dd), cv_dataset_params(ds), (size_t)M * 6 * 8);
        free(g2);
    }
    CV_CHECK_OK(same, "mkfields --npy then import == mkfields -o: same maps and parameters");
    cv_dataset_free(dd);
    free(pr);
    free(got);
    cv_dataset_free(ds);
    remove(p);
    wpath(p, sizeof p, "imp.nc");
    remove(p);
}

static void test_options(void) {
    char p[2048];
    int rc = sh("%s/cosmovae-mkfields -q --npy set20 --sims 20 --size 16 --seed 8", bindir);
    CV_CHECK_OK(rc == 0, "mkfields --npy: a 20-simulation set (%s)", errtxt);
    rc = sh("%s/cosmovae-import -q set20 -o s.nc --seed 4", bindir);
    wpath(p, sizeof p, "s.nc");
    cv_dataset *ds = NULL;
    if (rc || cv_dataset_open(p, &ds) != CV_OK) { CV_CHECK_OK(0, "import set20: %s", errtxt); return; }
    const int64_t M = cv_dataset_n_maps(ds);
    int split_of[20], one_split = 1, cnt[3] = { 0 };
    for (int s = 0; s < 20; s++) split_of[s] = -1;
    for (int64_t m = 0; m < M; m++) {
        int s = cv_dataset_sim(ds, m);
        if (split_of[s] < 0) { split_of[s] = cv_dataset_split(ds, m); cnt[split_of[s]]++; }
        else if (split_of[s] != cv_dataset_split(ds, m)) one_split = 0;
    }
    CV_CHECK_OK(one_split && cnt[0] == 18 && cnt[1] == 1 && cnt[2] == 1,
                "split by simulation: no simulation in two splits; 18/1/1 simulations");
    /* statistics from the train maps only */
    int64_t n, item;
    int stats_ok = 1;
    for (int ch = 0; ch < 3; ch++) {
        char np[2048];
        snprintf(np, sizeof np, "set20/Maps_%s_IllustrisTNG_LH_z=0.00.npy", fields[ch]);
        wpath(p, sizeof p, np);
        float *x = npy_all(p, &n, &item);
        double s = 0, s2 = 0, a = 0;
        int64_t k = 0;
        for (int64_t m = 0; x && m < n; m++)
            for (int64_t i = 0; i < item; i++) {
                double l = log10((double)x[m * item + i]);
                a += l;
                if (cv_dataset_split(ds, m) != CV_SPLIT_TRAIN) continue;
                s += l; s2 += l * l; k++;
            }
        double mu = s / k, sd = sqrt(s2 / k - mu * mu);
        if (!x || fabs(cv_dataset_norm_mean(ds, ch) - mu) > 1e-9 * fabs(mu) || fabs(cv_dataset_norm_std(ds, ch) - sd) > 1e-7 * sd ||
            cv_dataset_norm_mean(ds, ch) == a / (double)(n * item))
            stats_ok = 0;
        free(x);
    }
    CV_CHECK_OK(stats_ok, "normalisation mean/std equal those of the train maps, recomputed from the .npy files");
    float *full = malloc((size_t)M * 3 * 256 * 4);
    cv_dataset_read(ds, 0, M, full);
    cv_dataset_free(ds);
    ds = NULL;

    /* downsampling by 4: block means, map means conserved */
    rc = sh("%s/cosmovae-import -q set20 -o d.nc --downsample 4", bindir);
    wpath(p, sizeof p, "d.nc");
    int ds_ok = rc == 0 && cv_dataset_open(p, &ds) == CV_OK && cv_dataset_height(ds) == 4 && cv_dataset_width(ds) == 4;
    double worst = 0;
    if (ds_ok) {
        float *sm = malloc((size_t)M * 3 * 16 * 4);
        cv_dataset_read(ds, 0, M, sm);
        for (int64_t mc = 0; mc < M * 3; mc++) {
            double big = 0, small = 0;
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++) {
                    double b = 0;
                    for (int dy = 0; dy < 4; dy++)
                        for (int dx = 0; dx < 4; dx++) b += full[mc * 256 + (4 * y + dy) * 16 + 4 * x + dx];
                    if ((float)(b / 16) != sm[mc * 16 + y * 4 + x]) ds_ok = 0;
                    big += b;
                    small += sm[mc * 16 + y * 4 + x];
                }
            worst = fmax(worst, fabs(small / 16 - big / 256) / (big / 256));
        }
        free(sm);
    }
    CV_CHECK_OK(ds_ok && worst < 1e-6, "--downsample 4: 16^2 -> 4^2 block means; map means conserved (rel. err %.1e)", worst);
    cv_dataset_free(ds);
    ds = NULL;
    remove(p);

    /* the worker pipeline: 300 maps are 5 blocks of at most 64 maps; with 1,
     * 2 and 3 workers (slots reused, blocks finished out of order) the same
     * maps and statistics, at 16^2 and downsampled to 8^2 */
    int same = 1;
    for (int d = 1; d <= 2; d++) {
        float *ref = NULL;
        double ref_norm[6] = { 0 };
        for (int t = 1; t <= 3; t++) {
            rc = sh("%s/cosmovae-import -q set20 -o t.nc --threads %d --downsample %d", bindir, t, d);
            wpath(p, sizeof p, "t.nc");
            cv_dataset *dt = NULL;
            if (rc || cv_dataset_open(p, &dt) != CV_OK || cv_dataset_n_maps(dt) != M) { same = 0; cv_dataset_free(dt); break; }
            const size_t nf = (size_t)M * 3 * (16 / d) * (16 / d);
            float *g = malloc(nf * 4);
            cv_dataset_read(dt, 0, M, g);
            double nm[6];
            for (int ch = 0; ch < 3; ch++) { nm[ch] = cv_dataset_norm_mean(dt, ch); nm[3 + ch] = cv_dataset_norm_std(dt, ch); }
            if (!ref) { ref = g; memcpy(ref_norm, nm, sizeof nm); }
            else { same &= !memcmp(ref, g, nf * 4) && !memcmp(ref_norm, nm, sizeof nm); free(g); }
            if (d == 1 && t == 1) same &= !memcmp(ref, full, nf * 4);
            cv_dataset_free(dt);
            remove(p);
        }
        free(ref);
    }
    CV_CHECK_OK(same, "--threads 1, 2, 3: the same maps and statistics, 16^2 and --downsample 2");

    /* --first, --fields, --split map */
    rc = sh("%s/cosmovae-import -q set20 -o f.nc --first 20 --fields HI,Mgas --split map", bindir);
    wpath(p, sizeof p, "f.nc");
    int opt_ok = rc == 0 && cv_dataset_open(p, &ds) == CV_OK && cv_dataset_n_maps(ds) == 20 && cv_dataset_n_chan(ds) == 2 &&
                 !strcmp(cv_dataset_chan_name(ds, 0), "HI") && !strcmp(cv_dataset_chan_name(ds, 1), "Mgas") &&
                 cv_dataset_sim(ds, 19) == 1 && cv_dataset_split_count(ds, CV_SPLIT_VALID) == 1 &&
                 cv_dataset_split_count(ds, CV_SPLIT_TEST) == 1 && cv_dataset_split_count(ds, CV_SPLIT_TRAIN) == 18;
    if (opt_ok) {
        float *g = malloc(20 * 2 * 256 * 4);
        cv_dataset_read(ds, 0, 20, g);
        for (int m = 0; m < 20; m++)
            opt_ok &= !memcmp(g + (m * 2 + 0) * 256, full + (m * 3 + 1) * 256, 1024) &&
                      !memcmp(g + (m * 2 + 1) * 256, full + (m * 3 + 0) * 256, 1024);
        free(g);
    }
    CV_CHECK_OK(opt_ok, "--first 20 --fields HI,Mgas --split map: 20 maps, channels in the order given, 18/1/1 maps");
    cv_dataset_free(ds);
    remove(p);
    free(full);
    wpath(p, sizeof p, "s.nc");
    remove(p);
}

/* A fresh copy of set20 as bad/, with one thing broken by `breaker`. */
static void fresh_bad(void) { sh("rm -rf bad && cp -r set20 bad"); }

static void expect_fail(const char *what, const char *needle1, const char *needle2, const char *extra) {
    int rc = sh("%s/cosmovae-import -q bad -o out.nc %s", bindir, extra ? extra : "");
    int named = strstr(errtxt, needle1) && (!needle2 || strstr(errtxt, needle2)) && !strncmp(errtxt, "cosmovae-import: ", 17);
    CV_CHECK_OK(rc == 1 && named && out_left("out.nc") == 0, "bad input, %s: exit %d, no output; %s", what, rc, errtxt);
}

static void test_bad_inputs(void) {
    char p[2048];
    const char *mg = "bad/Maps_Mgas_IllustrisTNG_LH_z=0.00.npy", *hi = "bad/Maps_HI_IllustrisTNG_LH_z=0.00.npy",
               *bf = "bad/Maps_B_IllustrisTNG_LH_z=0.00.npy", *pt = "bad/params_LH_IllustrisTNG.txt";
    fresh_bad();
    sh("truncate -s -100 %s", mg);
    expect_fail("truncated .npy", mg, "truncated", NULL);
    fresh_bad();
    wpath(p, sizeof p, hi);
    patch(p, "NUMPY", "NUMPX");
    expect_fail("bad magic", hi, "magic", NULL);
    fresh_bad();
    wpath(p, sizeof p, bf);
    patch(p, "<f4", "<f8");
    expect_fail("float64 dtype", bf, "float32", NULL);
    fresh_bad();
    wpath(p, sizeof p, mg);
    patch(p, "False", "True ");
    expect_fail("Fortran order", mg, "Fortran", NULL);
    fresh_bad();
    wpath(p, sizeof p, mg);
    patch(p, "'shape': (", "'shape': [");
    expect_fail("corrupt header", mg, "shape", NULL);

    /* shapes that disagree between fields */
    sh("%s/cosmovae-mkfields -q --npy set1 --sims 1 --size 16 --seed 8 && %s/cosmovae-mkfields -q --npy set8 --sims 20 --size 8 --seed 8",
       bindir, bindir);
    fresh_bad();
    sh("cp set1/Maps_HI_IllustrisTNG_LH_z=0.00.npy %s", hi);
    expect_fail("map counts disagree", hi, "disagrees", NULL);
    fresh_bad();
    sh("cp set8/Maps_B_IllustrisTNG_LH_z=0.00.npy %s", bf);
    expect_fail("map sizes disagree", bf, "disagrees", NULL);

    /* parameter tables */
    fresh_bad();
    sh("sed -i '$d' %s", pt);
    expect_fail("params rows != maps / 15", "params_LH_IllustrisTNG.txt", "19 rows", NULL);
    fresh_bad();
    sh("sed -i '3s/^[0-9.]*/0.3x/' %s", pt);
    expect_fail("non-numeric params", "params_LH_IllustrisTNG.txt:3", "0.3x", NULL);

    /* values log10 cannot take */
    int64_t n, item;
    wpath(p, sizeof p, "set20/Maps_Mgas_IllustrisTNG_LH_z=0.00.npy");
    float *x = npy_all(p, &n, &item);
    fresh_bad();
    if (x) {
        x[17 * item + 5] = -1.0f;
        wpath(p, sizeof p, mg);
        npy_put(p, x, n, 16, 16);
    }
    expect_fail("a negative Mgas in map 17", "map 17", mg, NULL);
    fresh_bad();
    if (x) {
        x[17 * item + 5] = 1e10f;
        x[3 * item + 40] = 0.0f;
        wpath(p, sizeof p, bf);
        npy_put(p, x, n, 16, 16);
    }
    expect_fail("a zero B in map 3", "map 3,", bf, NULL);
    fresh_bad();
    if (x) {
        x[3 * item + 40] = NAN;
        wpath(p, sizeof p, hi);
        npy_put(p, x, n, 16, 16);
    }
    expect_fail("a NaN HI in map 3", "map 3,", hi, NULL);
    expect_fail("a NaN HI in map 3, --downsample 2", "map 3,", hi, "--downsample 2");
    fresh_bad();
    if (x) {
        x[3 * item + 40] = 1e10f;
        x[250 * item + 255] = INFINITY;
        wpath(p, sizeof p, hi);
        npy_put(p, x, n, 16, 16);
    }
    expect_fail("an infinite HI in map 250 (block 3), 3 workers", "map 250,", hi, "--threads 3");
    expect_fail("an infinite HI in map 250, --downsample 4", "map 250,", hi, "--downsample 4 --threads 2");
    fresh_bad();
    if (x) {
        for (int f = 0; f < 3; f++) {
            char q[256];
            snprintf(q, sizeof q, "bad/Maps_%s_IllustrisTNG_LH_z=0.00.npy", fields[f]);
            wpath(p, sizeof p, q);
            npy_put(p, x, 29, 16, 16);
        }
    }
    expect_fail("29 maps, not a multiple of 15", mg, "multiple of 15", NULL);
    free(x);
    fresh_bad();
    sh("rm %s", bf);
    expect_fail("a missing field file", bf, "cannot open", NULL);
    fresh_bad();
    expect_fail("--downsample 3 of 16^2 maps", "--downsample 3", "16 x 16", "--downsample 3");

    /* usage errors: exit 2 */
    int r1 = sh("%s/cosmovae-import -o out.nc", bindir);
    int r2 = sh("%s/cosmovae-import bad -o out.nc --fields Mgas,Xyz", bindir);
    int named = strstr(errtxt, "Xyz") != NULL;
    int r3 = sh("%s/cosmovae-import bad -o out.nc --split half", bindir);
    int r4 = sh("%s/cosmovae-import bad", bindir);
    int r5 = sh("%s/cosmovae-import bad -o out.nc --threads 0", bindir);
    CV_CHECK_OK(r1 == 2 && r2 == 2 && named && r3 == 2 && r4 == 2 && r5 == 2 && out_left("out.nc") == 0,
                "import usage errors exit 2 (no input, unknown field, bad --split, no -o, --threads 0)");
    sh("rm -rf bad set1 set8");
}

static void test_mkfields_cli(void) {
    int r_help = sh("%s/cosmovae-mkfields --help | grep -q -- --sims", bindir);
    int r_ver = sh("%s/cosmovae-mkfields --version | grep -q cosmovae", bindir);
    int r_imp = sh("%s/cosmovae-import --help | grep -q -- --downsample", bindir);
    CV_CHECK_OK(r_help == 0 && r_ver == 0 && r_imp == 0, "--help and --version");
    int r1 = sh("%s/cosmovae-mkfields --sims 2", bindir);
    int r2 = sh("%s/cosmovae-mkfields -o m.nc --size 30", bindir);
    int r3 = sh("%s/cosmovae-mkfields -o m.nc --sims 0", bindir);
    int r4 = sh("%s/cosmovae-mkfields -o m.nc --bogus", bindir);
    CV_CHECK_OK(r1 == 2 && r2 == 2 && r3 == 2 && r4 == 2 && out_left("m.nc") == 0,
                "mkfields usage errors exit 2 (no output, size not a power of two, --sims 0, unknown option)");
    sh("printf '0.3 0.8 1 1 1 1\\n0.3 0.8 -1 1 1 1\\n' > neg.txt");
    int r5 = sh("%s/cosmovae-mkfields -q -o m.nc --params neg.txt --size 8", bindir);
    CV_CHECK_OK(r5 == 1 && strstr(errtxt, "neg.txt") && strstr(errtxt, "A_SN1") && out_left("m.nc") == 0,
                "mkfields: a bad parameter row fails naming file and parameter: %s", errtxt);
    int r6 = sh("%s/cosmovae-mkfields -q -o a.nc --sims 2 --size 16 --seed 5 && mkdir -p again && cd again && "
                "%s/cosmovae-mkfields -q -o a.nc --sims 2 --size 16 --seed 5 && cmp -s a.nc ../a.nc",
                bindir, bindir);
    int r7 = sh("%s/cosmovae-mkfields -q -o b.nc --sims 2 --size 16 --seed 6 && cmp -s a.nc b.nc", bindir);
    CV_CHECK_OK(r6 == 0 && r7 == 1, "mkfields: same seed same bytes, other seed other bytes");
    int r8 = sh("%s/cosmovae-mkfields -q -o p.nc --params '%s/data/params_LH_IllustrisTNG.txt' --sims 3 --size 8", bindir, srcdir());
    char p[2048];
    wpath(p, sizeof p, "p.nc");
    cv_dataset *ds = NULL;
    int pr_ok = r8 == 0 && cv_dataset_open(p, &ds) == CV_OK && cv_dataset_n_maps(ds) == 45 && cv_dataset_param(ds, 44, 0) == 0.4282 &&
                cv_dataset_param(ds, 0, 1) == 0.979;
    CV_CHECK_OK(pr_ok, "mkfields --params: the real table's first rows, 15 maps each");
    cv_dataset_free(ds);
    sh("rm -rf again a.nc b.nc p.nc neg.txt");
}

int main(void) {
    tap_begin();
    const char *t = getenv("TMPDIR"), *b = getenv("top_builddir");
    snprintf(work, sizeof work, "%.400s/test-data-import.XXXXXX", t && *t ? t : ".");
    if (!mkdtemp(work)) { perror("mkdtemp"); return 99; }
    if (work[0] != '/') {
        char cwd[256];
        if (getcwd(cwd, sizeof cwd)) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%.250s/%.250s", cwd, work);
            snprintf(work, sizeof work, "%s", tmp);
        }
    }
    if (b && *b) snprintf(bindir, sizeof bindir, "%.400s/src", b);
    else if (!getcwd(bindir, sizeof bindir - 8) || !strcat(bindir, "/src")) return 99;
    test_roundtrip();
    test_options();
    test_bad_inputs();
    test_mkfields_cli();
    sh("rm -rf set20");
    rmdir(work);
    return tap_end();
}
