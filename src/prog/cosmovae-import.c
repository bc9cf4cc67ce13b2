/* cosmovae-import -- turn the CAMELS Multifield Dataset (CMD) .npy files
 * and parameter table into a cosmovae dataset (cv_data.h).
 *
 * Streams: maps go through two fixed-size blocks per worker thread (about
 * 1 MB of output each, whatever the file size), so the 3.9 GB LH files
 * import with bounded resident memory.  Every input value is checked
 * before it is written, and nothing appears at the output path unless the
 * whole import succeeded. */
#include "prog/cv_cli.h"
#include "dataset/cv_data.h"
#include "dataset/cv_npy.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char *usage_text =
    "Usage: cosmovae-import CMD_DIR -o OUT.nc [OPTION]...\n"
    "Import CAMELS Multifield Dataset maps (Maps_<field>_<suite>_<set>_z=0.00.npy)\n"
    "and their parameter table (params_<set>_<suite>.txt) into a dataset.\n"
    "Map i belongs to simulation i / 15.\n"
    "\n"
    "  -o, --output FILE     the dataset to write (NetCDF-4)\n"
    "      --fields LIST     comma-separated CMD fields, in channel order\n"
    "                        (default Mgas,HI,B; any of Mgas Vgas T Z HI ne B MgFe\n"
    "                        Mcdm Vcdm Mstar Mtot P)\n"
    "      --suite NAME      simulation suite in the file names (default IllustrisTNG)\n"
    "      --set NAME        simulation set in the file names (default LH)\n"
    "      --params FILE     parameter table (default CMD_DIR/params_<set>_<suite>.txt)\n"
    "      --downsample F    average F x F pixel blocks (mass-conserving; e.g. 4 for\n"
    "                        256^2 -> 64^2); default 1\n"
    "      --split sim|map   how maps are split into train/valid/test (13:1:1):\n"
    "                        whole simulations (default) or single maps\n"
    "      --seed N          seed of the split (default 0)\n"
    "      --first N         import only the first N maps\n"
    "      --linear LIST     fields stored with transform 'none' instead of log10\n"
    "                        (for fields with zeros or negative values)\n"
    "      --deflate N       NetCDF deflate level 0-9 (default 0: CMD maps compress\n"
    "                        by only ~20% at several times the import time)\n"
    "      --threads N       threads that read, check and average (default: the\n"
    "                        online CPUs, at most 8); one more writes\n"
    "  -q, --quiet           no progress output\n"
    "      --help            display this help and exit\n"
    "      --version         output version information and exit\n"
    "\n"
    "Example: cosmovae-import CMD/ --downsample 4 -o cmd-64.nc\n";

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

#define MAX_FIELDS 13

/* Split a comma-separated list into names (validated against CMD's). */
static int parse_fields(const char *opt, const char *list, char names[][CV_DATA_NAME_MAX]) {
    int n = 0;
    const char *s = list;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len >= CV_DATA_NAME_MAX) cv_cli_usage_error("%s: empty or overlong field name in '%s'", opt, list);
        if (n == MAX_FIELDS) cv_cli_usage_error("%s: more than %d fields", opt, MAX_FIELDS);
        memcpy(names[n], s, len);
        names[n][len] = '\0';
        if (!cv_data_field_units(names[n]))
            cv_cli_usage_error("%s: unknown field '%s' (CMD fields: Mgas Vgas T Z HI ne B MgFe Mcdm Vcdm Mstar Mtot P)", opt,
                               names[n]);
        for (int k = 0; k < n; k++)
            if (!strcmp(names[k], names[n])) cv_cli_usage_error("%s: field '%s' given twice", opt, names[n]);
        n++;
        s += len;
        if (*s == ',') s++;
    }
    if (n == 0) cv_cli_usage_error("%s: no fields", opt);
    return n;
}

/* Check one input map (H*W values) before it goes anywhere. */
static cv_status check_map(const cv_npy *f, int64_t map, const float *x, size_t n, int w, int is_log) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        int bad = is_log ? !(v > 0.0f && v <= 3.4028234663852886e38f) : !isfinite(v);
        if (bad)
            return cv_error(CV_ERR_NUMERIC, "%s: map %lld, pixel (y %zu, x %zu): value %g %s", cv_npy_path(f), (long long)map,
                            i / (size_t)w, i % (size_t)w, (double)v,
                            is_log ? "is not positive and finite (log10 is taken; see --linear)" : "is not finite");
    }
    return CV_OK;
}

/* The pipeline.  Block b (maps [b K, b K + k)) belongs to worker b % nw
 * and passes through that worker's slot (b / nw) % 2.  A worker reads each
 * map of each field with one pread and works on it while it is still in
 * the cache: with F > 1 it block-averages and checks it from a one-map
 * scratch into the slot's (K, C, H/F, W/F) maps; with F = 1 the read lands
 * in the slot in the dataset's (K, C, H, W) layout.  It then computes the
 * writer's sums of the block (the log10 statistics), so that the main
 * thread only writes: the blocks in order, whatever the workers' timing,
 * so that the file's layout is always the same.  (Memory-mapping the input
 * instead, to save the copy, measured no faster: the page faults cost what
 * the copy did.) */
typedef struct slot {
    float    *out;        /* (K, C ho wo + 1): maps with room for a checksum */
    double   *sums;       /* (K, C, 2) */
    int       ready;      /* 1: filled (or failed), 0: free */
    cv_status st;         /* status of the fill */
    char      err[2048];
} slot;

struct pipeline;
typedef struct worker {
    struct pipeline *p;
    int          id, running;
    float       *scratch; /* (H, W), F > 1 */
    slot         s[2];
    pthread_t    th;
} worker;

typedef struct pipeline {
    cv_npy         **npy;      /* (C) */
    const int       *is_log;   /* (C) */
    const cv_writer *w;
    int              C, down, H, W, nw;
    int64_t          n_maps, K;
    worker          *wk;       /* (nw) */
    int              stop;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
} pipeline;

/* Read, check, average and sum block b into sl. */
static cv_status fill_block(const pipeline *p, worker *wk, int64_t b, slot *sl) {
    cv_status st = CV_OK;
    const int C = p->C, F = p->down;
    const size_t hw = (size_t)p->H * p->W, hwo = hw / ((size_t)F * F), stride = (size_t)C * hwo + 1;
    const int64_t first = b * p->K, k = p->n_maps - first < p->K ? p->n_maps - first : p->K;
    for (int64_t m = 0; m < k; m++) {
        float *x = sl->out + (size_t)m * stride;   /* (C, ho, wo), then the checksum */
        for (int c = 0; c < C; c++) {
            if (F == 1) {
                CV_TRY(cv_npy_read(p->npy[c], first + m, 1, x + (size_t)c * hw));
            } else {
                CV_TRY(cv_npy_read(p->npy[c], first + m, 1, wk->scratch));
                if (cv_data_block_mean(wk->scratch, x + (size_t)c * hwo, p->H, p->W, F, p->is_log[c]))
                    CV_TRY(check_map(p->npy[c], first + m, wk->scratch, hw, p->W, p->is_log[c]));
            }
        }
        /* the writer's checks, sums and checksum of this map; on a bad
         * value, find it again to name the input file */
        st = cv_writer_sums_padded(p->w, first + m, 1, x, sl->sums + (size_t)m * C * 2);
        if (st == CV_ERR_NUMERIC && F == 1)
            for (int c = 0; c < C; c++) CV_TRY(check_map(p->npy[c], first + m, x + (size_t)c * hw, hw, p->W, p->is_log[c]));
        CV_TRY(st);
    }
fail:
    return st;
}

static void *worker_main(void *arg) {
    worker *wk = arg;
    pipeline *p = wk->p;
    const int64_t nb = (p->n_maps + p->K - 1) / p->K;
    for (int64_t b = wk->id; b < nb; b += p->nw) {
        slot *sl = &wk->s[(b / p->nw) & 1];
        pthread_mutex_lock(&p->mu);
        while (sl->ready && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) return NULL;
        cv_status st = fill_block(p, wk, b, sl);
        pthread_mutex_lock(&p->mu);
        if (st != CV_OK) snprintf(sl->err, sizeof sl->err, "%s", cv_last_error());
        sl->st = st;
        sl->ready = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (st != CV_OK) return NULL;
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *fields_opt = "Mgas,HI,B", *suite = "IllustrisTNG", *set = "LH";
    const char *params_file = NULL, *split_opt = "sim", *linear_opt = NULL;
    long down = 1, seed = 0, first_n = -1, deflate = 0, threads = 0;
    int quiet = 0;
    cv_cli_init("cosmovae-import", usage_text);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_opt_str(argc, argv, &i, "-o", &out)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--output", &out)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--fields", &fields_opt)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--suite", &suite)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--set", &set)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--params", &params_file)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--split", &split_opt)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--linear", &linear_opt)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--downsample", 1, 4096, &down)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--seed", 0, LONG_MAX, &seed)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--first", 1, LONG_MAX, &first_n)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--deflate", 0, 9, &deflate)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--threads", 1, 64, &threads)) ;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (dir) cv_cli_usage_error("more than one input directory ('%s' and '%s')", dir, a);
        else dir = a;
    }
    if (!dir) cv_cli_usage_error("no CMD directory given");
    if (!out) cv_cli_usage_error("no output file given (-o FILE.nc)");
    int by_sim;
    if (!strcmp(split_opt, "sim")) by_sim = 1;
    else if (!strcmp(split_opt, "map")) by_sim = 0;
    else cv_cli_usage_error("--split: '%s' is neither 'sim' nor 'map'", split_opt);

    char names[MAX_FIELDS][CV_DATA_NAME_MAX], lin[MAX_FIELDS][CV_DATA_NAME_MAX];
    const int C = parse_fields("--fields", fields_opt, names);
    int n_lin = linear_opt ? parse_fields("--linear", linear_opt, lin) : 0;
    const char *chan_names[MAX_FIELDS], *chan_tf[MAX_FIELDS];
    int is_log[MAX_FIELDS];
    for (int c = 0; c < C; c++) {
        chan_names[c] = names[c];
        is_log[c] = 1;
        for (int k = 0; k < n_lin; k++)
            if (!strcmp(lin[k], names[c])) is_log[c] = 0;
        chan_tf[c] = is_log[c] ? "log10" : "none";
    }
    for (int k = 0; k < n_lin; k++) {
        int found = 0;
        for (int c = 0; c < C; c++) found |= !strcmp(lin[k], names[c]);
        if (!found) cv_cli_usage_error("--linear: field '%s' is not among --fields", lin[k]);
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    cv_status st = CV_OK;
    cv_npy *npy[MAX_FIELDS] = { NULL };
    cv_writer *w = NULL;
    double *params = NULL, *mp = NULL;
    pipeline pl;
    memset(&pl, 0, sizeof pl);
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.cv, NULL);
    int8_t *split = NULL;
    int32_t *simv = NULL;
    char path[4096], ppath[4096];

    /* open and cross-check the inputs */
    for (int c = 0; c < C; c++) {
        snprintf(path, sizeof path, "%s/Maps_%s_%s_%s_z=0.00.npy", dir, names[c], suite, set);
        CV_TRY(cv_npy_open(path, &npy[c]));
        const cv_npy_header *h = cv_npy_hdr(npy[c]);
        if (h->ndim != 3) {
            st = cv_error(CV_ERR_FORMAT, "%s: array has %d dimensions, expected 3 (maps, y, x)", path, h->ndim);
            goto fail;
        }
        const cv_npy_header *h0 = cv_npy_hdr(npy[0]);
        if (c > 0 && (h->shape[0] != h0->shape[0] || h->shape[1] != h0->shape[1] || h->shape[2] != h0->shape[2])) {
            st = cv_error(CV_ERR_FORMAT, "%s: shape (%lld, %lld, %lld) disagrees with %s (%lld, %lld, %lld)", path,
                          (long long)h->shape[0], (long long)h->shape[1], (long long)h->shape[2], cv_npy_path(npy[0]),
                          (long long)h0->shape[0], (long long)h0->shape[1], (long long)h0->shape[2]);
            goto fail;
        }
    }
    const cv_npy_header *h0 = cv_npy_hdr(npy[0]);
    const int64_t n_file = h0->shape[0];
    const int H = (int)h0->shape[1], W = (int)h0->shape[2];
    if (n_file < 1 || H < 1 || W < 1 || h0->shape[1] > 65536 || h0->shape[2] > 65536) {
        st = cv_error(CV_ERR_FORMAT, "%s: unusable shape (%lld, %d, %d)", cv_npy_path(npy[0]), (long long)n_file, H, W);
        goto fail;
    }
    if (n_file % CV_DATA_MAPS_PER_SIM) {
        st = cv_error(CV_ERR_FORMAT, "%s: %lld maps is not a multiple of %d (maps per simulation)", cv_npy_path(npy[0]),
                      (long long)n_file, CV_DATA_MAPS_PER_SIM);
        goto fail;
    }
    if (H % down || W % down) {
        st = cv_error(CV_ERR_ARG, "--downsample %ld does not divide the %d x %d maps of %s", down, H, W, cv_npy_path(npy[0]));
        goto fail;
    }
    if (params_file) snprintf(ppath, sizeof ppath, "%s", params_file);
    else snprintf(ppath, sizeof ppath, "%s/params_%s_%s.txt", dir, set, suite);
    int64_t n_rows = 0;
    CV_TRY(cv_data_read_params(ppath, CV_DATA_N_PARAM, &n_rows, &params));
    if (n_rows * CV_DATA_MAPS_PER_SIM != n_file) {
        st = cv_error(CV_ERR_FORMAT, "%s: %lld rows, but %s holds %lld maps = %lld simulations of %d maps", ppath,
                      (long long)n_rows, cv_npy_path(npy[0]), (long long)n_file, (long long)(n_file / CV_DATA_MAPS_PER_SIM),
                      CV_DATA_MAPS_PER_SIM);
        goto fail;
    }

    const int64_t n_maps = first_n > 0 && first_n < n_file ? first_n : n_file;
    const int64_t n_sims = (n_maps + CV_DATA_MAPS_PER_SIM - 1) / CV_DATA_MAPS_PER_SIM;
    const int ho = H / (int)down, wo = W / (int)down;
    const size_t hw = (size_t)H * W, hwo = (size_t)ho * wo;

    /* splits */
    split = malloc((size_t)n_maps);
    simv = malloc((size_t)n_maps * sizeof *simv);
    if (!split || !simv) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    if (by_sim) {
        int8_t *ss = malloc((size_t)n_sims);
        if (!ss) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
        cv_data_split_assign(n_sims, (uint64_t)seed, ss);
        for (int64_t m = 0; m < n_maps; m++) split[m] = ss[m / CV_DATA_MAPS_PER_SIM];
        free(ss);
    } else {
        cv_data_split_assign(n_maps, (uint64_t)seed, split);
    }
    for (int64_t m = 0; m < n_maps; m++) simv[m] = (int32_t)(m / CV_DATA_MAPS_PER_SIM);

    /* the writer */
    char history[4096], source[4096 + 256];
    cv_data_history(argc, argv, history, sizeof history);
    snprintf(source, sizeof source, "CAMELS Multifield Dataset (CMD), suite %s, set %s, z = 0.00%s", suite, set,
             down > 1 ? ", block-averaged" : "");
    cv_writer_opts o = cv_writer_opts_default();
    o.n_maps = n_maps;
    o.n_chan = C;
    o.height = ho;
    o.width = wo;
    o.chan_names = chan_names;
    o.chan_transforms = chan_tf;
    o.source = source;
    o.history = history;
    o.deflate = (int)deflate;
    CV_TRY(cv_writer_new(out, &o, &w));
    if (down > 1) {
        char b[32];
        snprintf(b, sizeof b, "%ld", down);
        CV_TRY(cv_writer_set_attr(w, "downsample", b));
    }
    CV_TRY(cv_writer_set_attr(w, "split_by", by_sim ? "simulation" : "map"));
    {
        char b[32];
        snprintf(b, sizeof b, "%ld", seed);
        CV_TRY(cv_writer_set_attr(w, "split_seed", b));
    }
    mp = malloc((size_t)n_maps * CV_DATA_N_PARAM * sizeof *mp);
    if (!mp) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    for (int64_t m = 0; m < n_maps; m++)
        memcpy(mp + m * CV_DATA_N_PARAM, params + (m / CV_DATA_MAPS_PER_SIM) * CV_DATA_N_PARAM, CV_DATA_N_PARAM * sizeof(double));
    CV_TRY(cv_writer_set_params(w, 0, n_maps, mp));
    CV_TRY(cv_writer_set_sim(w, 0, n_maps, simv));
    CV_TRY(cv_writer_set_split(w, 0, n_maps, split));

    /* stream the maps: blocks of about 1 MB of output (at least one map, at
     * most 64), two per worker; workers: the online CPUs (at most 8), fewer
     * when maps are so large that their blocks would pass 64 MB */
    int64_t K = (int64_t)((1u << 20) / (hwo * sizeof(float) * (size_t)C));
    if (K < 1) K = 1;
    if (K > 64) K = 64;
    if (K > n_maps) K = n_maps;
    const size_t slot_floats = (size_t)K * (C * hwo + 1), scratch_floats = down > 1 ? hw : 0;
    const int64_t nb = (n_maps + K - 1) / K;
    long nw = threads;
    if (nw < 1) {
        nw = sysconf(_SC_NPROCESSORS_ONLN);
        if (nw < 1) nw = 1;
        if (nw > 8) nw = 8;
        const size_t per = (2 * slot_floats + scratch_floats) * sizeof(float);
        if ((size_t)nw * per > ((size_t)64 << 20)) nw = (long)(((size_t)64 << 20) / per);
        if (nw < 1) nw = 1;
    }
    if (nw > nb) nw = (long)nb;
    pl.npy = npy;
    pl.is_log = is_log;
    pl.w = w;
    pl.C = C;
    pl.down = (int)down;
    pl.H = H;
    pl.W = W;
    pl.n_maps = n_maps;
    pl.K = K;
    pl.wk = calloc((size_t)nw, sizeof *pl.wk);
    if (!pl.wk) { st = cv_error(CV_ERR_NOMEM, "out of memory"); goto fail; }
    pl.nw = (int)nw;
    for (int i = 0; i < pl.nw; i++) {
        worker *wk = &pl.wk[i];
        wk->p = &pl;
        wk->id = i;
        if (scratch_floats) wk->scratch = malloc(scratch_floats * sizeof(float));
        for (int j = 0; j < 2; j++) {
            wk->s[j].out = malloc(slot_floats * sizeof(float));
            wk->s[j].sums = malloc((size_t)K * C * 2 * sizeof(double));
        }
        if ((scratch_floats && !wk->scratch) || !wk->s[0].out || !wk->s[1].out || !wk->s[0].sums || !wk->s[1].sums) {
            st = cv_error(CV_ERR_NOMEM, "out of memory for %lld-map blocks", (long long)K);
            goto fail;
        }
    }
    for (int i = 0; i < pl.nw; i++) {
        if (pthread_create(&pl.wk[i].th, NULL, worker_main, &pl.wk[i]) != 0) {
            st = cv_error(CV_ERR_NOMEM, "cannot start a worker thread");
            goto fail;
        }
        pl.wk[i].running = 1;
    }

    cv_progress prog;
    cv_progress_begin(&prog, "importing", "maps", n_maps, quiet);
    for (int64_t b = 0; b < nb; b++) {
        const int64_t first = b * K, k = n_maps - first < K ? n_maps - first : K;
        if (interrupted) { st = cv_error(CV_ERR_INTERRUPT, "%s: interrupted at map %lld", out, (long long)first); goto fail; }
        slot *sl = &pl.wk[b % pl.nw].s[(b / pl.nw) & 1];
        pthread_mutex_lock(&pl.mu);
        while (!sl->ready) pthread_cond_wait(&pl.cv, &pl.mu);
        cv_status rst = sl->st;
        pthread_mutex_unlock(&pl.mu);
        if (rst != CV_OK) { st = cv_error(rst, "%s", sl->err); goto fail; }
        CV_TRY(cv_writer_write_padded(w, first, k, sl->out, sl->sums));
        pthread_mutex_lock(&pl.mu);
        sl->ready = 0;
        pthread_cond_broadcast(&pl.cv);
        pthread_mutex_unlock(&pl.mu);
        cv_progress_update(&prog, first + k, NULL);
    }
    cv_progress_end(&prog, n_maps);
    CV_TRY(cv_writer_finish(w));
fail:
    pthread_mutex_lock(&pl.mu);
    pl.stop = 1;
    pthread_cond_broadcast(&pl.cv);
    pthread_mutex_unlock(&pl.mu);
    for (int i = 0; i < pl.nw; i++) {
        worker *wk = &pl.wk[i];
        if (wk->running) pthread_join(wk->th, NULL);
        free(wk->scratch);
        for (int j = 0; j < 2; j++) { free(wk->s[j].out); free(wk->s[j].sums); }
    }
    free(pl.wk);
    pthread_mutex_destroy(&pl.mu);
    pthread_cond_destroy(&pl.cv);
    cv_writer_free(w);
    for (int c = 0; c < C; c++) cv_npy_close(npy[c]);
    free(params); free(mp); free(split); free(simv);
    if (st != CV_OK) cv_cli_fail(st, NULL);
    return 0;
}
