#!/bin/sh
# cli-slurm.sh -- the CPU-node Slurm recipe run locally, as its batch
# shell would run it, on 2 ranks: a new run starts; SIGUSR1 to the batch
# shell (Slurm's --signal=B:USR1@T) makes every rank write a checkpoint
# and the job requeue itself (here: a command that records it); the
# requeued job resumes and finishes at the step target; bad settings are
# refused with a message naming the variable, before mpirun starts.
# Run by `make check` when configure found Open MPI.
. "$(dirname "$0")/setup.sh"
export CV_CACHE_DIR="$tmp/cache"
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun (Debian package openmpi-bin)"; exit 77; }
asroot=
[ "$(id -u)" != 0 ] || asroot=--allow-run-as-root

COSMOVAE_JOB=$top_srcdir/tools/slurm/cosmovae-job
COSMOVAE_DATA=$top_srcdir/data/tiny-16.nc
COSMOVAE_RUN=$tmp/run
COSMOVAE_NEW="--config $top_srcdir/tests/data/tiny16.cfg --seed 3 --batch 4 -q"
COSMOVAE_STOP="--steps 400 -q"
COSMOVAE_RANKS=2 COSMOVAE_THREADS=1
COSMOVAE_MPIRUN_ARGS="$asroot --oversubscribe -x CV_CACHE_DIR"
COSMOVAE_TRAIN=$top_builddir/src/cosmovae-train
COSMOVAE_REQUEUE="touch $tmp/requeued"
export COSMOVAE_JOB COSMOVAE_DATA COSMOVAE_RUN COSMOVAE_NEW COSMOVAE_STOP COSMOVAE_RANKS COSMOVAE_THREADS \
    COSMOVAE_MPIRUN_ARGS COSMOVAE_TRAIN COSMOVAE_REQUEUE
job=$top_srcdir/tools/slurm/cosmovae-cpu.sbatch
steps() { tail -n 1 "$COSMOVAE_RUN/train.csv" | cut -d, -f1; }

# 1. a new run, stopped by the signal Slurm sends before the time limit
sh "$job" > "$tmp/log1" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
    [ -s "$COSMOVAE_RUN/train.csv" ] && [ "$(wc -l < "$COSMOVAE_RUN/train.csv")" -gt 20 ] && break
    kill -0 $pid 2>/dev/null || { cat "$tmp/log1" >&2; fail "the job ended before the signal"; }
    sleep 0.2; i=$((i + 1))
done
[ $i -lt 600 ] || { kill -USR1 $pid; fail "the 2-rank job made no progress"; }
kill -USR1 $pid               # the job's shell, as Slurm's B: does
( sleep 120; kill -KILL $pid 2>/dev/null ) &
watchdog=$!
rc=0; wait $pid || rc=$?
kill $watchdog 2>/dev/null || true
cat "$tmp/log1" >&2
[ "$rc" = 130 ] || fail "after SIGUSR1 the job exited $rc, not 130"
grep -q "new run $COSMOVAE_RUN on 2 ranks x 1 threads" "$tmp/log1" || fail "the job did not start a new run on 2 ranks"
grep -q "stop requested" "$tmp/log1" || fail "the job did not report the signal"
[ -e "$tmp/requeued" ] || fail "the job did not requeue itself"
[ -s "$COSMOVAE_RUN/checkpoint.nc" ] || fail "no checkpoint after the signal"
s1=$(steps)
[ "$s1" -gt 0 ] && [ "$s1" -lt 400 ] || fail "stopped at step $s1 (expected 0 < step < 400)"
echo "stopped by SIGUSR1 at step $s1, checkpoint written, requeued" >&2

# 2. the requeued job resumes and reaches the target
rm -f "$tmp/requeued"
rc=0; timeout 300 sh "$job" > "$tmp/log2" 2>&1 || rc=$?
cat "$tmp/log2" >&2
[ "$rc" = 0 ] || fail "the resumed job exited $rc"
grep -q "has a checkpoint: resuming on 2 ranks" "$tmp/log2" || fail "the requeued job did not resume"
[ "$(steps)" = 400 ] || fail "the resumed job ended at step $(steps), not 400"
[ ! -e "$tmp/requeued" ] || fail "a finished job requeued itself"
ls "$COSMOVAE_RUN"/train.csv.* "$COSMOVAE_RUN"/*.tmp 2>/dev/null && fail "temporary files left in the run"
echo "resumed at step $s1, finished at 400" >&2

# 3. bad settings: a message naming the variable, exit 2, mpirun never started
for bad in "COSMOVAE_DATA=" "COSMOVAE_DATA=$tmp/none.nc" "COSMOVAE_RANKS=two" "COSMOVAE_THREADS=0" "COSMOVAE_BIND=cores"; do
    var=${bad%%=*}
    rc=0; env "$bad" COSMOVAE_MPIRUN=false sh "$job" > "$tmp/bad" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "$var" "$tmp/bad" || { cat "$tmp/bad" >&2; fail "$bad: exit $rc, expected 2 and a message naming $var"; }
done
echo "bad settings refused" >&2
