/* cosmovae-train -- train the VDVAE on a field dataset.
 *
 *   cosmovae-train [DATA.nc] [-o RUN_DIR] [--preset small|paper] [--config FILE] ...
 *
 * Writes RUN_DIR/checkpoint.nc (weights, optimizer state, RNG position,
 * step, config), RUN_DIR/config.ini, RUN_DIR/train.csv (one row per step),
 * RUN_DIR/valid.csv (one row per epoch) and RUN_DIR/samples.png.
 * Everything that can be wrong with the input is checked before the first
 * step.  Ctrl-C writes a checkpoint and exits with status 130.
 *
 * Under mpirun (cv_mpi.h, doc/scaling.md) the ranks share every global
 * batch; rank 0 alone writes the run directory and prints progress; the
 * ranks agree on when to stop; a fatal error on any rank ends the job
 * with a message naming the rank. */
#include "prog/cv_cli.h"
#include "dataset/cv_loader.h"
#include "model/cv_ckpt.h"
#include "analysis/cv_mapfig.h"
#include "model/cv_mpi.h"
#include "model/cv_sample.h"
#include "model/cv_train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
    "Usage: cosmovae-train [OPTION]... [DATA.nc]\n"
    "Train the Very Deep VAE on a cosmovae dataset (default: the bundled 64x64\n"
    "synthetic CAMELS-like set) and write a run directory.\n"
    "\n"
    "  -o, --output DIR          run directory (default: cosmovae-run)\n"
    "      --preset NAME         small (64x64, W=32) or paper (256x256, W=128); default small\n"
    "      --config FILE         INI file with [model] and [train] keys, over the preset\n"
    "      --set SEC.KEY=VALUE   override one configuration key (repeatable)\n"
    "      --recipe NAME         a named set of [train] keys: paper (the paper's\n"
    "                            RMSprop 2e-5, momentum 0.9, weight decay 1e-4,\n"
    "                            batch 4, as the defaults), budget (the best\n"
    "                            measured for minutes of CPU, with 2 free nats and\n"
    "                            the layout key [model] latent_skip_top; doc/science.md)\n"
    "                            or budget-v1 (budget before those two);\n"
    "                            --config, --set and the options below may add\n"
    "                            keys but not contradict it\n"
    "      --epochs N            stop after N epochs in total\n"
    "      --steps N             stop after N optimizer steps in total\n"
    "      --time-limit SECONDS  stop (with a checkpoint) after this much wall time\n"
    "      --batch N             maps per step (default 4)\n"
    "      --lr X                learning rate (default 2e-5, RMSprop as in the paper)\n"
    "      --ema X               keep an exponential moving average of the weights (e.g. 0.999)\n"
    "      --seed N              seed of initialisation, batches and noise (default 1)\n"
    "      --resume              continue the run in DIR from its checkpoint\n"
    "      --checkpoint-every N  also write a checkpoint every N steps (default 200)\n"
    "      --stop-file FILE      stop as after SIGTERM (checkpoint, exit 130) once FILE\n"
    "                            exists; rank 0 looks once a second (the Slurm recipes)\n"
    "      --no-augment          do not apply the 8 dihedral augmentations\n"
    "      --device SPEC         OpenCL device: index, or name substring[:index]\n"
    "      --profile             print a per-kernel time table at the end\n"
    "      --check-every N       with mpirun: compare the ranks' parameters every N\n"
    "                            steps and at the end (default 100; 0: only at the end)\n"
    "      --bucket-mb X         with mpirun: reduce gradients in buckets of X MiB\n"
    "                            while the backward pass runs (default 1 on a GPU;\n"
    "                            0, the default on a CPU: one allreduce after it)\n"
    "  -q, --quiet               no progress output\n"
    "      --help                display this help and exit\n"
    "      --version             output version information and exit\n"
    "\n"
    "Without --epochs, --steps or --time-limit the run is a short demonstration:\n"
    "at most 3 minutes.  Exit status: 0 done, 1 failure, 2 usage error,\n"
    "130 interrupted by SIGINT, SIGTERM, SIGUSR1 or --stop-file (a checkpoint was\n"
    "written; continue with --resume).  Under mpirun use --stop-file: a signal to\n"
    "mpirun does not reach the ranks as one.\n"
    "\n"
    "Data-parallel training: `mpirun -np R cosmovae-train ...` runs R ranks, one\n"
    "OpenCL device each (node-local rank modulo the GPUs of the node, unless\n"
    "--device or CV_DEVICE is given); --batch is the global batch, split evenly\n"
    "over the ranks (it must be a multiple of R).  Rank 0 writes the run\n"
    "directory; --resume may use a different number of ranks.\n";

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

/* MPI: a rank that fails ends the whole job (no rank waits for it). */
static cv_mpi *comm;
static void end_job(int status) { cv_mpi_abort(comm, status); }

/* A failure that every rank detected together (a collective check, or
 * options that are the same everywhere): rank 0 alone reports it, and all
 * ranks exit with `status` (1 failure, 2 usage). */
static _Noreturn void fail_together(int status) {
    if (cv_mpi_rank(comm) == 0) {
        fprintf(stderr, "cosmovae-train: %s\n", cv_last_error());
        if (status == 2) fprintf(stderr, "Try 'cosmovae-train --help' for more information.\n");
    }
    cv_mpi_finalize(comm);
    exit(status);
}

static void path_join(char *buf, size_t n, const char *dir, const char *file) {
    snprintf(buf, n, "%s/%s", dir, file);
}

/* Create the run directory and prove it is writable, before any work. */
static void prepare_dir(const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        cv_error(CV_ERR_IO, "%s: cannot create the run directory: %s", dir, strerror(errno));
        cv_cli_fail(CV_ERR_IO, NULL);
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.write-test.%ld", dir, (long)getpid());
    FILE *f = fopen(probe, "w");
    if (!f || fclose(f) != 0) {
        cv_error(CV_ERR_IO, "%s: run directory is not writable: %s", dir, strerror(errno));
        cv_cli_fail(CV_ERR_IO, NULL);
    }
    remove(probe);
}

static int write_text_atomic(const char *path, const char *text) {
    char tmp[4300];
    cv_out_tmpname(path, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok) { remove(tmp); return -1; }
    return cv_out_commit(tmp, path) == CV_OK ? 0 : -1;
}

/* Keep the rows of a CSV log whose first field (step or epoch) is < limit. */
static void truncate_log(const char *path, long long limit) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char tmp[4300], line[8192];
    cv_out_tmpname(path, tmp, sizeof tmp);
    FILE *o = fopen(tmp, "w");
    if (!o) { fclose(f); return; }
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first || atoll(line) < limit) fputs(line, o);
        first = 0;
    }
    fclose(f);
    if (fclose(o) == 0) cv_out_commit(tmp, path);
    else remove(tmp);
}

/* The command line (options checked, usage errors exit 2). */
typedef struct train_args {
    const char *out_dir, *preset, *config_file, *device, *data_arg, *stop_file;
    const cv_recipe *recipe;
    const char *sets[64];
    int  n_sets, resume, quiet, profile, augment;
    long epochs, steps, batch, seed, ckpt_every, check_every;
    double time_limit, lr, ema, bucket_mb;
} train_args;

static void parse_args(int argc, char **argv, train_args *out) {
    const char *out_dir = "cosmovae-run", *preset = NULL, *config_file = NULL, *device = NULL, *data_arg = NULL, *stop_file = NULL;
    const cv_recipe *recipe = NULL;
    const char *sets[64];
    int n_sets = 0, resume = 0, quiet = 0, profile = 0, augment = 1;
    long epochs = -1, steps = -1, batch = -1, seed = -1, ckpt_every = 200;
    double time_limit = -1, lr = -1, ema = -1, bucket_mb = -1;
    long check_every = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *s;
        if (cv_cli_opt_str(argc, argv, &i, "--output", &out_dir) || cv_cli_opt_str(argc, argv, &i, "-o", &out_dir)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--preset", &preset)) {
            if (!cv_model_preset(preset)) cv_cli_usage_error("--preset: unknown preset '%s' (small or paper)", preset);
        }
        else if (cv_cli_opt_str(argc, argv, &i, "--config", &config_file)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--recipe", &s)) {
            if (!(recipe = cv_train_recipe(s))) cv_cli_usage_error("--recipe: unknown recipe '%s' (%s)", s, cv_train_recipe_names());
        }
        else if (cv_cli_opt_str(argc, argv, &i, "--set", &s)) {
            if (n_sets == 64) cv_cli_usage_error("--set: too many");
            if (!strchr(s, '.') || !strchr(s, '=')) cv_cli_usage_error("--set: expected SECTION.KEY=VALUE, got '%s'", s);
            sets[n_sets++] = s;
        }
        else if (cv_cli_opt_long(argc, argv, &i, "--epochs", 0, 1000000000L, &epochs)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--steps", 0, 1000000000000L, &steps)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--time-limit", 0, 1e9, &time_limit)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--batch", 1, 4096, &batch)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--lr", 0, 10, &lr)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--ema", 0, 0.999999, &ema)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--seed", 0, 0x7fffffffL, &seed)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--checkpoint-every", 1, 1000000000L, &ckpt_every)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--stop-file", &stop_file)) ;
        else if (cv_cli_opt_str(argc, argv, &i, "--device", &device)) ;
        else if (cv_cli_opt_long(argc, argv, &i, "--check-every", 0, 1000000000L, &check_every)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--bucket-mb", 0, 4096, &bucket_mb)) ;
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (!strcmp(a, "--no-augment")) augment = 0;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (cv_cli_common(a)) ;
        else if (a[0] == '-' && a[1]) cv_cli_usage_error("unrecognized option '%s'", a);
        else if (data_arg) cv_cli_usage_error("one dataset expected, got '%s' and '%s'", data_arg, a);
        else data_arg = a;
    }
    out->out_dir = out_dir; out->preset = preset; out->config_file = config_file; out->device = device;
    out->data_arg = data_arg; out->stop_file = stop_file; out->recipe = recipe;
    memcpy(out->sets, sets, sizeof sets); out->n_sets = n_sets;
    out->resume = resume; out->quiet = quiet; out->profile = profile; out->augment = augment;
    out->epochs = epochs; out->steps = steps; out->batch = batch; out->seed = seed; out->ckpt_every = ckpt_every;
    out->check_every = check_every; out->time_limit = time_limit; out->lr = lr; out->ema = ema; out->bucket_mb = bucket_mb;
}

/* The configuration: the checkpoint's when resuming, else the preset, the
 * recipe's keys, then --config, --set and the options, which may add keys
 * but not contradict the recipe.  *ckpt_cfg: the checkpoint's text (resume). */
static cv_cfg *configure(const train_args *args, const char *ckpt_path, char **ckpt_cfg_out) {
    const char *preset = args->preset, *config_file = args->config_file;
    const cv_recipe *recipe = args->recipe;
    const char *const *sets = args->sets;
    int n_sets = args->n_sets, resume = args->resume;
    long batch = args->batch, seed = args->seed;
    double lr = args->lr, ema = args->ema;
    cv_status st;
    cv_cfg *cfg = NULL;
    char *ckpt_cfg = NULL;
    cv_ckpt_meta meta;
    if ((st = cv_cfg_new(&cfg)) != CV_OK) cv_cli_fail(st, NULL);
    if (resume) {
        if (access(ckpt_path, R_OK) != 0) {
            cv_error(CV_ERR_IO, "%s: no checkpoint to resume from: %s", ckpt_path, strerror(errno));
            cv_cli_fail(CV_ERR_IO, NULL);
        }
        if (preset || recipe || config_file || n_sets || batch > 0 || lr >= 0 || seed >= 0 || ema >= 0)
            cv_cli_usage_error("--resume continues a run with its own configuration: drop "
                               "--preset/--recipe/--config/--set/--batch/--lr/--seed/--ema");
        if ((st = cv_ckpt_read_config(ckpt_path, &ckpt_cfg, &meta)) != CV_OK) cv_cli_fail(st, NULL);
        if ((st = cv_cfg_parse(cfg, ckpt_cfg, ckpt_path)) != CV_OK) cv_cli_fail(st, NULL);
    } else {
        if ((st = cv_cfg_parse(cfg, cv_model_preset(preset ? preset : "small"), preset ? preset : "small")) != CV_OK) cv_cli_fail(st, NULL);
        char rorigin[64];
        if (recipe) {   /* the recipe's keys, then the user's layers, which may not contradict them */
            snprintf(rorigin, sizeof rorigin, "--recipe %s", recipe->name);
            for (const cv_recipe_kv *kv = recipe->kv; kv->key; kv++)
                if ((st = cv_cfg_set(cfg, kv->section, kv->key, kv->value, rorigin)) != CV_OK) cv_cli_fail(st, NULL);
            if ((st = cv_cfg_set(cfg, "train", "recipe", recipe->name, rorigin)) != CV_OK) cv_cli_fail(st, NULL);
        }
        cv_cfg *user = NULL;     /* the user's layers alone, to find contradictions */
        if ((st = cv_cfg_new(&user)) != CV_OK) cv_cli_fail(st, NULL);
        for (int layer = 0; layer < 2; layer++) {
        cv_cfg *c = layer ? user : cfg;
        if (config_file && (st = cv_cfg_load(c, config_file)) != CV_OK) cv_cli_fail(st, NULL);
        for (int i = 0; i < n_sets; i++) {
            char sec[64], key[64];
            const char *dot = strchr(sets[i], '.'), *eq = strchr(sets[i], '=');
            if (eq < dot || dot - sets[i] >= 64 || eq - dot - 1 >= 64 || eq == dot + 1)
                cv_cli_usage_error("--set: expected SECTION.KEY=VALUE, got '%s'", sets[i]);
            snprintf(sec, sizeof sec, "%.*s", (int)(dot - sets[i]), sets[i]);
            snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
            if ((st = cv_cfg_set(c, sec, key, eq + 1, "--set")) != CV_OK) cv_cli_fail(st, NULL);
        }
        char v[64];
        if (batch > 0) { snprintf(v, sizeof v, "%ld", batch); cv_cfg_set(c, "train", "batch", v, "--batch"); }
        if (lr >= 0)   { snprintf(v, sizeof v, "%.17g", lr); cv_cfg_set(c, "train", "lr", v, "--lr"); }
        if (seed >= 0) { snprintf(v, sizeof v, "%ld", seed); cv_cfg_set(c, "train", "seed", v, "--seed"); }
        if (ema >= 0)  { snprintf(v, sizeof v, "%.17g", ema); cv_cfg_set(c, "train", "ema", v, "--ema"); }
        }
        const char *uv, *uo;
        if (cv_cfg_peek(user, "train", "recipe", &uv, &uo))
            cv_cli_usage_error("%s: [train] recipe = %s: a recipe is chosen with --recipe, which sets its keys", uo, uv);
        for (const cv_recipe_kv *kv = recipe ? recipe->kv : NULL; kv && kv->key; kv++) {
            if (!cv_cfg_peek(user, kv->section, kv->key, &uv, &uo)) continue;
            char *e1, *e2;
            double a = strtod(uv, &e1), b = strtod(kv->value, &e2);
            int same = (*e1 == '\0' && *e2 == '\0' && e1 != uv) ? a == b : !strcmp(uv, kv->value);
            if (!same)
                cv_cli_usage_error("--recipe %s sets [%s] %s = %s, but %s sets it to %s: drop one of them",
                                   recipe->name, kv->section, kv->key, kv->value, uo, uv);
        }
        cv_cfg_free(user);
    }
    *ckpt_cfg_out = ckpt_cfg;
    return cfg;
}

/* End of an epoch: the validation ELBO (with the EMA weights when kept),
 * a line of valid.csv and, when `say`, of stderr. */
static void validate(cv_trainer *tr, cv_loader *vl, float *batchbuf, FILE *vlog, int64_t epoch, int64_t step, int say, int ema) {
    cv_status st;
    double vloss = 0, vrec = 0, vkl = 0;
    int64_t nv = 0;
    for (int64_t b = 0; b < cv_loader_epoch_batches(vl); b++) {
        int nval = 0;
        cv_step_stats vs;
        if ((st = cv_loader_next(vl, batchbuf, NULL, NULL, &nval)) != CV_OK) cv_cli_fail(st, NULL);
        if ((st = cv_trainer_eval(tr, batchbuf, nval, &vs)) != CV_OK) cv_cli_fail(st, NULL);
        vloss += vs.loss * nval; vrec += vs.recon * nval; vkl += vs.kl * nval; nv += nval;
    }
    fprintf(vlog, "%lld,%lld,%.7g,%.7g,%.7g\n", (long long)epoch, (long long)step, vloss / nv, vrec / nv, vkl / nv);
    fflush(vlog);
    if (say)
        fprintf(stderr, "cosmovae-train: epoch %lld: valid loss %.5f nats/dim (recon %.5f, KL %.5f)%s\n",
                (long long)epoch, vloss / nv, vrec / nv, vkl / nv, ema ? ", EMA weights" : "");
}

/* The end of a run (rank 0): a figure of generated maps beside real
 * ones, and the diagnosis of the code (KL and active units per group, with
 * the weights encode uses, on the valid maps).  Failures only warn. */
static void final_report(cv_ctx *ctx, cv_model *m, const cv_norm *norm, cv_dataset *ds, const cv_model_cfg *mc,
                         const cv_train_opts *to, const char *png_path, int quiet) {
    cv_status st;
    /* a figure of generated maps beside real ones (rank 0 alone) */
    int n_show = 4;
    size_t msz = (size_t)mc->channels * mc->size * mc->size;
    float *gen = malloc(n_show * msz * sizeof *gen), *real = malloc(n_show * msz * sizeof *real);
    if (to->ema > 0) {
        float *w = malloc((size_t)cv_model_n_floats(m) * sizeof *w);
        if (w && cv_model_download(m, CV_ARENA_EMA, w) == CV_OK) cv_model_upload(m, CV_ARENA_PARAMS, w);
        free(w);
    }
    st = gen && real ? cv_sample_generate(ctx, m, norm, n_show, 1.0f, to->seed, n_show, 0, gen) : CV_ERR_NOMEM;
    if (st == CV_OK) {
        int64_t first_test = 0;
        for (int64_t k = 0; k < cv_dataset_n_maps(ds); k++)
            if (cv_dataset_split(ds, k) == CV_SPLIT_TEST) { first_test = k; break; }
        if (first_test + n_show > cv_dataset_n_maps(ds)) first_test = 0;
        st = cv_dataset_read(ds, first_test, n_show, real);
    }
    if (st == CV_OK) st = cv_plot_real_vs_generated(png_path, norm, mc->size, real, gen, n_show);
    if (st != CV_OK) cv_cli_warn("could not write %s: %s", png_path, cv_last_error());
    else if (!quiet) fprintf(stderr, "cosmovae-train: generated maps: %s\n", png_path);
    free(gen); free(real);
    /* the diagnosis of the code (issue 11): KL and active units per
     * group, with the weights encode uses, on the valid maps */
    cv_latent_diag dg;
    int dsplit = cv_dataset_split_count(ds, CV_SPLIT_VALID) >= 2 ? CV_SPLIT_VALID : CV_SPLIT_ALL;
    if ((st = cv_latent_diag_run(ctx, m, norm, ds, dsplit, 1000, &dg)) != CV_OK)
        cv_cli_warn("could not diagnose the latent code: %s", cv_last_error());
    else
        cv_latent_diag_print(stderr, &dg, "cosmovae-train: ", !quiet);
}

/* What the run is, on stderr: device, data, model size, memory, resumption,
 * and with MPI the ranks and how gradients travel (the gather is
 * collective: every rank calls this). */
static void report_start(cv_ctx *ctx, cv_model *m, cv_trainer *tr, const cv_train_opts *to, cv_dataset *ds,
                         const char *data_path, int64_t n_valid_maps, int64_t step0, int64_t epoch, int resume, int demo,
                         double time_limit, int quiet) {
    if (!quiet) {
        fprintf(stderr, "cosmovae-train: %s on %s; %s: %lld maps (%lld train, %lld valid)\n",
                "VDVAE", cv_ctx_device_name(ctx), data_path, (long long)cv_dataset_n_maps(ds),
                (long long)cv_dataset_split_count(ds, CV_SPLIT_TRAIN), (long long)n_valid_maps);
        fprintf(stderr, "cosmovae-train: %lld parameters, %d latent groups, %.2f GFLOP per step, %.1f MiB of device memory\n",
                (long long)cv_model_n_floats(m), cv_trainer_io(tr)->n_groups, cv_trainer_flops_per_step(tr) * 1e-9,
                (cv_plan_nbytes(cv_trainer_plan(tr)) + (to->ema > 0 ? 6.0 : 4.0) * 4 * cv_model_n_floats(m)) / 1048576.0);
        if (resume) fprintf(stderr, "cosmovae-train: resuming at step %lld (epoch %lld)\n", (long long)step0, (long long)epoch);
        if (demo) fprintf(stderr, "cosmovae-train: demonstration run of at most %.0f s (set --epochs, --steps or --time-limit for more)\n", time_limit);
    }
    if (cv_mpi_size(comm) > 1) {
        int R = cv_mpi_size(comm);
        char *names = malloc((size_t)R * 128);
        cv_gradsync_stats gs0;
        cv_trainer_sync_stats(tr, &gs0);
        if (!names || cv_mpi_gather_str(comm, cv_ctx_device_name(ctx), names) != CV_OK)
            cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
        if (!quiet) {
            fprintf(stderr, "cosmovae-train: data parallel over %d ranks, %d maps each per step; gradients %.2f MiB per step, "
                    "%s\n", R, to->batch / R, gs0.bytes / 1048576.0,
                    to->bucket_bytes ? "reduced in buckets during the backward pass" : "one allreduce after the backward pass");
            for (int r = 1; r < R && r < 64; r++) fprintf(stderr, "cosmovae-train: rank %d on %s\n", r, names + 128 * r);
        }
        free(names);
    }

}

/* train.csv and valid.csv, appended to (resume) with a header when new;
 * rank 0 alone writes them, the others write to /dev/null. */
static void open_logs(int rank0, const char *log_path, const char *valid_path, const char *out_dir, cv_trainer *tr,
                      FILE **log_out, FILE **vlog_out) {
    FILE *log = fopen(rank0 ? log_path : "/dev/null", "a"), *vlog = fopen(rank0 ? valid_path : "/dev/null", "a");
    if (!log || !vlog) cv_cli_fail(cv_error(CV_ERR_IO, "%s: cannot write the logs: %s", out_dir, strerror(errno)), NULL);
    if (ftell(log) == 0) {
        fprintf(log, "step,epoch,loss,recon,kl,gnorm,skipped,skip_threshold,maps_per_s");
        for (int gi = 0; gi < cv_trainer_io(tr)->n_groups; gi++)
            fprintf(log, ",kl_%d_r%d", gi, cv_trainer_io(tr)->group_res[gi]);
        fprintf(log, "\n");
    }
    if (ftell(vlog) == 0) fprintf(vlog, "epoch,step,valid_loss,valid_recon,valid_kl\n");

    *log_out = log; *vlog_out = vlog;
}

/* The full configuration, as stored with the run: the checkpoint's when
 * resuming, else every key in force without any [data] of the user's (the
 * dataset defines it) and with the dataset's normalisation.  Caller frees. */
static char *full_config(const cv_cfg *cfg, const char *ckpt_cfg, const cv_norm *norm, int resume) {
    char *cfg_text = cv_cfg_dump(cfg);
    size_t full_cap = (cfg_text ? strlen(cfg_text) : 0) + 8192;
    char *full_cfg = malloc(full_cap);
    if (!cfg_text || !full_cfg) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    if (resume) snprintf(full_cfg, full_cap, "%s", ckpt_cfg);
    else {
        snprintf(full_cfg, full_cap, "%s", cfg_text);
        char *d = strstr(full_cfg, "[data]");
        if (d) *d = '\0';
        cv_norm_to_cfg(norm, full_cfg, full_cap);
    }
    free(cfg_text);
    return full_cfg;
}

/* The run's account on stderr: steps, skips, rate, and with MPI the
 * allreduce time per step. */
static void report_end(cv_trainer *tr, const cv_train_opts *to, double el, int64_t step0, const char *ckpt_path, int quiet) {
    if (!quiet)
        fprintf(stderr, "cosmovae-train: %lld steps (%lld skipped) in %.1f s, %.1f maps/s; checkpoint %s\n",
                (long long)(cv_trainer_steps(tr) - step0), (long long)cv_trainer_skipped(tr), el,
                (cv_trainer_steps(tr) - step0) * to->batch / (el > 0 ? el : 1), ckpt_path);
    cv_gradsync_stats gs;
    if (!quiet && cv_trainer_sync_stats(tr, &gs) && gs.steps > 0) {
        fprintf(stderr, "cosmovae-train: %d ranks: %.2f ms per step; gradient allreduce of %.2f MiB: %.3f ms per step %s\n",
                cv_mpi_size(comm), 1e3 * el / (double)(cv_trainer_steps(tr) - step0), gs.bytes / 1048576.0,
                1e3 * gs.reduce_s / (double)gs.steps, to->bucket_bytes ? "not hidden by the backward pass" : "after the backward pass");
        if (to->bucket_bytes)
            fprintf(stderr, "cosmovae-train: %d bucket%s of about %.3g MiB\n", gs.n_buckets, gs.n_buckets > 1 ? "s" : "",
                    to->bucket_bytes / 1048576.0);
    }
}

/* The training loop: steps until the target, the time limit, a signal or
 * the stop file (the ranks stop together), logging every step, validating
 * at the end of every epoch, checkpointing every ckpt_every steps.
 * Returns 130 when interrupted, else 0; *t0 the time it began. */
typedef struct train_loop_args {
    cv_trainer *tr;
    cv_loader  *ld, *vl;
    float      *batchbuf;
    FILE       *log, *vlog;
    const cv_train_opts *to;
    int64_t     target, step0;
    long        check_every, ckpt_every;
    double      time_limit;
    const char *stop_file, *ckpt_path, *full_cfg;
    int         quiet, rank0;
} train_loop_args;

static int train_loop(const train_loop_args *L, double *t0_out) {
    cv_status st;
    cv_progress prog;
    cv_progress_begin(&prog, "training", "steps", L->target == INT64_MAX ? 0 : L->target - L->step0, L->quiet);
    if (L->time_limit > 0) prog.limit = L->time_limit;
    double t0 = cv_now(), t_rate = t0, last_skip_warn = -1, stop_checked = -1;
    int64_t rate_steps = 0, last_ckpt = cv_trainer_steps(L->tr);
    double ema_loss = NAN;
    int rc = 0;
    cv_step_stats s;
    while (cv_trainer_steps(L->tr) < L->target) {
        /* the ranks stop together: 2 interrupted, 1 out of time */
        if (L->stop_file && L->rank0 && !interrupted && cv_now() - stop_checked >= 1.0) {
            stop_checked = cv_now();
            if (access(L->stop_file, F_OK) == 0) {
                interrupted = 1;
                if (!L->quiet) fprintf(stderr, "cosmovae-train: %s exists: stopping with a checkpoint\n", L->stop_file);
            }
        }
        int stop = cv_mpi_max(comm, interrupted ? 2 : L->time_limit >= 0 && cv_now() - t0 >= L->time_limit ? 1 : 0);
        if (stop == 2) { rc = 130; break; }
        if (stop == 1) break;
        int64_t e0, i0;
        cv_loader_tell(L->ld, &e0, &i0);
        if ((st = cv_loader_next(L->ld, L->batchbuf, NULL, NULL, NULL)) != CV_OK) cv_cli_fail(st, NULL);
        if ((st = cv_trainer_step(L->tr, L->batchbuf, &s)) != CV_OK) cv_cli_fail(st, NULL);
        int64_t step = cv_trainer_steps(L->tr);
        rate_steps++;
        double now = cv_now(), rate = rate_steps * L->to->batch / (now - t_rate > 1e-9 ? now - t_rate : 1e-9);
        fprintf(L->log, "%lld,%lld,%.7g,%.7g,%.7g,%.7g,%d,%.7g,%.4g", (long long)step, (long long)e0, s.loss, s.recon, s.kl,
                s.gnorm, s.skipped, s.skip_threshold, rate);
        for (int gi = 0; gi < s.n_groups; gi++) fprintf(L->log, ",%.6g", s.kl_group[gi]);
        fprintf(L->log, "\n");
        if (isfinite(s.loss)) ema_loss = isnan(ema_loss) ? s.loss : 0.95 * ema_loss + 0.05 * s.loss;
        char extra[160];
        snprintf(extra, sizeof extra, "loss %.4f (recon %.4f, KL %.4f) |g| %.3g skipped %lld", ema_loss,
                 s.recon, s.kl, s.gnorm, (long long)cv_trainer_skipped(L->tr));
        cv_progress_update(&prog, step - L->step0, extra);
        /* a climbing skip rate means the threshold or the learning rate is wrong */
        if (L->rank0 && step >= 100 && cv_trainer_skipped(L->tr) * 10 > step && now - last_skip_warn > 60) {
            cv_cli_warn("warning: %lld of %lld updates skipped (gradient norm non-finite or above %.3g); "
                        "consider a lower --lr or [train] skip_factor", (long long)cv_trainer_skipped(L->tr), (long long)step, s.skip_threshold);
            last_skip_warn = now;
        }
        int64_t e1, i1;
        cv_loader_tell(L->ld, &e1, &i1);
        if (e1 != e0 && L->vl)
            validate(L->tr, L->vl, L->batchbuf, L->vlog, e1, step, !L->quiet && !prog.tty, L->to->ema > 0);
        if (L->check_every > 0 && step % L->check_every == 0 && (st = cv_trainer_check_replicas(L->tr)) != CV_OK) fail_together(1);
        if (step - last_ckpt >= L->ckpt_every) {
            fflush(L->log);
            if (L->rank0 && (st = cv_trainer_save(L->tr, L->ckpt_path, L->full_cfg, e1, i1)) != CV_OK) cv_cli_fail(st, NULL);
            last_ckpt = step;
        }
    }
    cv_progress_end(&prog, cv_trainer_steps(L->tr) - L->step0);
    *t0_out = t0;
    return rc;
}

/* The dataset (DATA.nc or the bundled one), checked against a resumed
 * run's normalisation and the model, its normalisation, and at least one
 * batch of train maps. */
static void open_data(const char *data_arg, const cv_norm *have_norm, const cv_model_cfg *mc, int batch,
                      char *data_path, size_t data_path_n, cv_dataset **ds, cv_norm *norm) {
    cv_status st;
    if (data_arg) snprintf(data_path, data_path_n, "%s", data_arg);
    else if ((st = cv_data_default_path(data_path, data_path_n)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_dataset_open(data_path, ds)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_norm_check_dataset(have_norm, mc, *ds)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_norm_from_dataset(*ds, norm)) != CV_OK) cv_cli_fail(st, NULL);
    if (cv_dataset_split_count(*ds, CV_SPLIT_TRAIN) < batch)
        cv_cli_fail(cv_error(CV_ERR_FORMAT, "%s: the train split has %lld maps, fewer than one batch of %d", data_path,
                             (long long)cv_dataset_split_count(*ds, CV_SPLIT_TRAIN), batch), NULL);
}

/* The train loader, at the data position (epoch, index), and the valid
 * loader (in order, every map, no augmentation) when there are valid maps. */
static void open_loaders(cv_dataset *ds, const cv_train_opts *to, int augment, int64_t epoch, int64_t index,
                         cv_loader **ld, cv_loader **vl) {
    cv_status st;
    *ld = *vl = NULL;
    cv_loader_opts lo = cv_loader_opts_default();
    lo.split = CV_SPLIT_TRAIN; lo.batch = to->batch; lo.seed = to->seed; lo.augment = augment;
    if ((st = cv_loader_new(ds, &lo, ld)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_loader_seek(*ld, epoch, index)) != CV_OK) cv_cli_fail(st, NULL);
    if (cv_dataset_split_count(ds, CV_SPLIT_VALID) > 0) {
        cv_loader_opts vo = cv_loader_opts_default();
        vo.split = CV_SPLIT_VALID; vo.batch = to->batch; vo.shuffle = 0; vo.drop_last = 0; vo.augment = 0;
        if ((st = cv_loader_new(ds, &vo, vl)) != CV_OK) cv_cli_fail(st, NULL);
    }
}

/* The OpenCL context: --device, else $CV_DEVICE, else with MPI one device
 * per node-local rank; on a CPU device, a warning when the ranks' threads
 * oversubscribe the cores. */
static cv_ctx *open_device(const char *device, int profile) {
    cv_ctx_opts co = cv_ctx_opts_default();
    char rank_device[32] = "";
    if (!device && !getenv("CV_DEVICE") && cv_mpi_size(comm) > 1) {
        cv_mpi_device_spec(comm, rank_device, sizeof rank_device);
        if (rank_device[0]) device = rank_device;
    }
    co.device = device;
    co.profile = profile;
    cv_ctx *ctx = NULL;
    cv_status st = cv_ctx_new(&co, &ctx);
    if (st == CV_ERR_NODEVICE) cv_cli_usage_error("--device: %s", cv_last_error());
    if (st != CV_OK) cv_cli_fail(st, NULL);
    if (cv_ctx_device_type(ctx) & CL_DEVICE_TYPE_CPU) {   /* every rank checks; node-local rank 0 tells */
        char why[512];
        if (cv_mpi_cpu_oversubscribed(comm, cv_ctx_compute_units(ctx), why, sizeof why) && cv_mpi_local_rank(comm) == 0)
            fprintf(stderr, "cosmovae-train: warning: %s\n", why);
    }
    return ctx;
}

/* Where the run starts: the checkpoint's step, parameters and data
 * position (the logs cut after them) when resuming, else initialised
 * parameters and fresh logs. */
static void start_state(cv_trainer *tr, int resume, int rank0, const char *ckpt_path, const char *log_path,
                        const char *valid_path, int64_t *epoch, int64_t *index) {
    cv_status st;
    *epoch = *index = 0;
    if (resume) {
        if ((st = cv_trainer_load(tr, ckpt_path, epoch, index)) != CV_OK) cv_cli_fail(st, NULL);
        if (rank0) truncate_log(log_path, (long long)cv_trainer_steps(tr) + 1);
        if (rank0) truncate_log(valid_path, (long long)*epoch + 1);
    } else {
        if ((st = cv_trainer_init_params(tr)) != CV_OK) cv_cli_fail(st, NULL);
        if (rank0) remove(log_path);
        if (rank0) remove(valid_path);
    }
}

int main(int argc, char **argv) {
    cv_cli_init("cosmovae-train", usage_text);
    /* MPI first (it may edit argv), unless only help or the version is asked */
    int info_only = 0;
    for (int i = 1; i < argc; i++)
        info_only |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || !strcmp(argv[i], "--version") || !strcmp(argv[i], "-V");
    if (!info_only) {
        cv_status mst = cv_mpi_init(&argc, &argv, &comm);
        if (mst != CV_OK) cv_cli_fail(mst, NULL);
        cv_cli_set_exit_hook(end_job);
    }
    static char prog_name[64];
    if (cv_mpi_size(comm) > 1) {
        snprintf(prog_name, sizeof prog_name, "cosmovae-train (rank %d of %d)", cv_mpi_rank(comm), cv_mpi_size(comm));
        cv_cli_init(prog_name, usage_text);
    }
    int rank0 = cv_mpi_rank(comm) == 0;
    train_args args;
    parse_args(argc, argv, &args);
    const char *out_dir = args.out_dir, *device = args.device, *data_arg = args.data_arg, *stop_file = args.stop_file;
    int resume = args.resume, quiet = args.quiet, profile = args.profile, augment = args.augment;
    long epochs = args.epochs, steps = args.steps, ckpt_every = args.ckpt_every, check_every = args.check_every;
    double time_limit = args.time_limit, bucket_mb = args.bucket_mb;
    if (!rank0) quiet = 1;
    int demo = epochs < 0 && steps < 0 && time_limit < 0;
    if (demo) time_limit = 180;

    char ckpt_path[4200], log_path[4200], valid_path[4200], cfg_path[4200], png_path[4200];
    path_join(ckpt_path, sizeof ckpt_path, out_dir, "checkpoint.nc");
    path_join(log_path, sizeof log_path, out_dir, "train.csv");
    path_join(valid_path, sizeof valid_path, out_dir, "valid.csv");
    path_join(cfg_path, sizeof cfg_path, out_dir, "config.ini");
    path_join(png_path, sizeof png_path, out_dir, "samples.png");

    /* ---- configuration ---- */
    cv_status st;
    char *ckpt_cfg = NULL;
    cv_cfg *cfg = configure(&args, ckpt_path, &ckpt_cfg);
    cv_model_cfg mc;
    cv_train_opts to;
    /* read every section before judging, so that a misspelt key (which
     * explains a bad value better than the value does) is reported first */
    char msg[2048] = "";
    cv_status st_model = cv_model_cfg_read(cfg, &mc);
    if (st_model != CV_OK) snprintf(msg, sizeof msg, "%s", cv_last_error());
    cv_status st_train = cv_train_opts_read(cfg, &to);
    if (st_train != CV_OK && st_model == CV_OK) snprintf(msg, sizeof msg, "%s", cv_last_error());
    if (st_model != CV_OK || st_train != CV_OK) {
        if (cv_cfg_check_unused(cfg) != CV_OK) cv_cli_fail(CV_ERR_FORMAT, NULL);
        cv_cli_fail(cv_error(CV_ERR_FORMAT, "%s", msg), NULL);
    }
    if (to.batch % cv_mpi_size(comm)) {
        cv_error(CV_ERR_ARG, "--batch: the global batch of %d maps cannot be split evenly over %d ranks; use a multiple of %d",
                 to.batch, cv_mpi_size(comm), cv_mpi_size(comm));
        fail_together(2);
    }
    to.mpi = comm;
    cv_norm ckpt_norm, *have_norm = NULL;
    if (resume) {
        if ((st = cv_norm_read(cfg, &ckpt_norm)) != CV_OK) cv_cli_fail(st, ckpt_path);
        have_norm = &ckpt_norm;
    }
    if ((st = cv_cfg_check_unused(cfg)) != CV_OK) cv_cli_fail(st, NULL);

    /* ---- data ---- */
    char data_path[4096];
    cv_dataset *ds = NULL;
    cv_norm norm;
    open_data(data_arg, have_norm, &mc, to.batch, data_path, sizeof data_path, &ds, &norm);

    char *full_cfg = full_config(cfg, ckpt_cfg, &norm, resume);
    if (rank0) prepare_dir(out_dir);

    /* ---- device, model, trainer, loaders ---- */
    cv_ctx *ctx = open_device(device, profile);
    cv_model *m = NULL;
    cv_trainer *tr = NULL;
    /* a CPU device computes on the cores that would progress the
     * communication: nothing to overlap there (bench/bench-mpi.sh); the
     * ranks must agree, as they make the same MPI calls */
    if (bucket_mb < 0) bucket_mb = cv_mpi_max(comm, !cv_ctx_is_gpu(ctx)) ? 0 : 1;
    to.bucket_bytes = (size_t)(bucket_mb * 1048576.0);
    if (cv_mpi_check_same(comm, (int64_t)to.bucket_bytes, "--bucket-mb") != CV_OK) fail_together(2);
    if ((st = cv_model_new(&mc, &m)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_model_to_device(m, ctx, to.ema > 0)) != CV_OK) cv_cli_fail(st, NULL);
    if ((st = cv_trainer_new(ctx, m, &to, &tr)) != CV_OK) cv_cli_fail(st, NULL);
    int64_t epoch = 0, index = 0;
    start_state(tr, resume, rank0, ckpt_path, log_path, valid_path, &epoch, &index);
    if (rank0 && write_text_atomic(cfg_path, full_cfg) != 0) cv_cli_fail(cv_error(CV_ERR_IO, "%s: cannot write", cfg_path), NULL);
    /* every rank has the same configuration and starts from the same step,
     * position and parameters */
    if (cv_mpi_check_same(comm, (int64_t)(cv_hash64(full_cfg, strlen(full_cfg), 0) >> 1),
                          "the configuration (a hash of the options, --config, --set and the dataset's normalisation)") != CV_OK ||
        cv_mpi_check_same(comm, cv_trainer_steps(tr), "the starting step") != CV_OK ||
        cv_mpi_check_same(comm, epoch * 1000000007LL + index, "the data position") != CV_OK ||
        cv_trainer_check_replicas(tr) != CV_OK)
        fail_together(1);

    cv_loader *ld = NULL, *vl = NULL;
    open_loaders(ds, &to, augment, epoch, index, &ld, &vl);
    int64_t n_valid_maps = cv_dataset_split_count(ds, CV_SPLIT_VALID);

    int64_t per_epoch = cv_loader_epoch_batches(ld);
    int64_t step0 = cv_trainer_steps(tr);
    int64_t target = steps >= 0 ? steps : INT64_MAX;
    if (epochs >= 0 && epochs * per_epoch < target) target = epochs * per_epoch;
    if (demo && 100 * per_epoch < target) target = 100 * per_epoch;
    report_start(ctx, m, tr, &to, ds, data_path, n_valid_maps, step0, epoch, resume, demo, time_limit, quiet);

    size_t bsz = (size_t)to.batch * mc.channels * mc.size * mc.size;
    float *batchbuf = malloc(bsz * sizeof *batchbuf);
    if (!batchbuf) cv_cli_fail(cv_error(CV_ERR_NOMEM, "out of memory"), NULL);
    FILE *log = NULL, *vlog = NULL;
    open_logs(rank0, log_path, valid_path, out_dir, tr, &log, &vlog);

    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    signal(SIGUSR1, on_sigint);   /* a third way to ask for a checkpoint and a stop (batch systems send it) */
    train_loop_args L = { tr, ld, vl, batchbuf, log, vlog, &to, target, step0, check_every, ckpt_every, time_limit,
                          stop_file, ckpt_path, full_cfg, quiet, rank0 };
    double t0;
    int rc = train_loop(&L, &t0);
    fclose(log);
    fclose(vlog);
    int64_t e1, i1;
    cv_loader_tell(ld, &e1, &i1);
    if ((st = cv_trainer_check_replicas(tr)) != CV_OK) fail_together(1);
    if (rank0 && (st = cv_trainer_save(tr, ckpt_path, full_cfg, e1, i1)) != CV_OK) cv_cli_fail(st, NULL);
    report_end(tr, &to, cv_now() - t0, step0, ckpt_path, quiet);
    if (rank0 && rc == 130) {
        fprintf(stderr, "cosmovae-train: interrupted at step %lld; checkpoint written; continue with --resume\n",
                (long long)cv_trainer_steps(tr));
    } else if (rank0) {
        final_report(ctx, m, &norm, ds, &mc, &to, png_path, quiet);
    }
    if (profile) cv_ctx_profile_report(ctx, stderr);
    free(batchbuf);
    cv_loader_free(ld);
    cv_loader_free(vl);
    cv_trainer_free(tr);
    cv_model_free(m);
    cv_ctx_free(ctx);
    cv_dataset_free(ds);
    free(full_cfg); free(ckpt_cfg);
    cv_cfg_free(cfg);
    cv_mpi_finalize(comm);
    return rc;
}
