/* bench-mpi.c -- the communication side of data-parallel training, run
 * under mpirun: parameter count and gradient bytes per step of the small
 * and paper presets (host only, no device), and the time of summing that
 * many floats over the ranks as cosmovae-train does it -- one blocking
 * MPI_Allreduce(MPI_IN_PLACE, MPI_FLOAT, MPI_SUM), and the same in buckets
 * of MPI_Iallreduce -- with the algorithm bandwidth (bytes / time) and the
 * bus bandwidth (2 (R - 1) / R x bytes / time, the ring's traffic per
 * link) that doc/scaling.md's model takes as input.
 *
 *   mpirun -np R bench-mpi [--reps N] [--bucket-mb X]
 * Rank 0 prints one "allreduce PRESET ..." line per preset. */
#include "prog/cv_cli.h"
#include "model/cv_model.h"

#include <mpi.h>
#include <string.h>

static const char *usage_text =
    "Usage: mpirun -np R bench-mpi [--reps N] [--bucket-mb X]\n"
    "Time the gradient allreduce of the small and paper presets over R ranks.\n";

static int64_t preset_params(const char *name) {
    cv_cfg *cfg = NULL;
    cv_model_cfg mc;
    cv_model *m = NULL;
    int64_t n = -1;
    if (cv_cfg_new(&cfg) == CV_OK && cv_cfg_parse(cfg, cv_model_preset(name), name) == CV_OK &&
        cv_model_cfg_read(cfg, &mc) == CV_OK && cv_model_new(&mc, &m) == CV_OK)
        n = cv_model_n_floats(m);
    cv_model_free(m);
    cv_cfg_free(cfg);
    return n;
}

int main(int argc, char **argv) {
    long reps = 20;
    double bucket_mb = 1;
    cv_cli_init("bench-mpi", usage_text);
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int i = 1; i < argc; i++) {
        if (cv_cli_opt_long(argc, argv, &i, "--reps", 1, 100000, &reps)) ;
        else if (cv_cli_opt_double(argc, argv, &i, "--bucket-mb", 0.001, 4096, &bucket_mb)) ;
        else if (cv_cli_common(argv[i])) ;
        else cv_cli_usage_error("unrecognized option '%s'", argv[i]);
    }
    static const char *presets[] = { "small", "paper" };
    for (int p = 0; p < 2; p++) {
        int64_t n = preset_params(presets[p]);
        if (n <= 0) {
            if (rank == 0) fprintf(stderr, "bench-mpi: preset %s: %s\n", presets[p], cv_last_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        float *buf = malloc((size_t)n * sizeof *buf);
        int nb = (int)((double)n * 4 / (bucket_mb * 1048576.0)) + 1;
        MPI_Request *req = malloc((size_t)nb * sizeof *req);
        if (!buf || !req) MPI_Abort(MPI_COMM_WORLD, 1);
        for (int64_t i = 0; i < n; i++) buf[i] = (float)(i % 7) * 1e-3f;
        double t_block = 0, t_bucket = 0;
        for (int r = -2; r < reps; r++) {          /* two untimed warm-up rounds */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t1 = MPI_Wtime();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = MPI_Wtime();
            int64_t per = (n + nb - 1) / nb;
            for (int b = 0; b < nb; b++) {
                int64_t o = (int64_t)b * per, k = o + per > n ? n - o : per;
                MPI_Iallreduce(MPI_IN_PLACE, buf + o, (int)(k > 0 ? k : 0), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req[b]);
            }
            MPI_Waitall(nb, req, MPI_STATUSES_IGNORE);
            double t3 = MPI_Wtime();
            if (r >= 0) { t_block += t1 - t0; t_bucket += t3 - t2; }
        }
        double tb = t_block / reps, tk = t_bucket / reps;
        MPI_Allreduce(MPI_IN_PLACE, &tb, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &tk, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        double bytes = 4.0 * (double)n, bus = 2.0 * (size - 1) / size;
        if (rank == 0)
            printf("allreduce %s ranks=%d params=%lld bytes=%.0f blocking_ms=%.3f algbw_GBps=%.2f busbw_GBps=%.2f "
                   "buckets=%d bucketed_ms=%.3f\n", presets[p], size, (long long)n, bytes, 1e3 * tb, bytes / tb * 1e-9,
                   bus * bytes / tb * 1e-9, nb, 1e3 * tk);
        free(buf);
        free(req);
    }
    MPI_Finalize();
    return 0;
}
