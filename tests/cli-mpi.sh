#!/bin/sh
# cli-mpi.sh -- data-parallel training under mpirun on the tiny fixture:
# 2 ranks x 2 maps (and 4 x 1) give the parameters of 1 rank x 4 maps, with
# bucketed and with blocking gradient allreduce; rank 0 alone writes the
# run directory; a run resumes with another number of ranks; a batch that
# does not split, a rank without a device, ranks that disagree and a rank
# that dies end the whole job with a message naming the rank, and leave
# the last checkpoint intact.  Run by `make check` when configure found Open MPI.
. "$(dirname "$0")/setup.sh"
bin=$top_builddir/src/cosmovae-train
data=$top_srcdir/data/tiny-16.nc
cfg=$top_srcdir/tests/data/tiny16.cfg
export CV_CACHE_DIR="$tmp/cache"

command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun (Debian package openmpi-bin)"; exit 77; }
command -v ncdump >/dev/null 2>&1 || { echo "SKIP: no ncdump (Debian package netcdf-bin)"; exit 77; }
asroot=
[ "$(id -u)" != 0 ] || asroot=--allow-run-as-root
# every process of this test carries CV_TEST_TAG, so that the test can find
# (and signal) its own ranks and no other process
CV_TEST_TAG=$tmp; export CV_TEST_TAG
mpi() {   # mpi NP ARGS...: cosmovae-train on NP ranks, never longer than 3 minutes
    np=$1; shift
    timeout 180 mpirun $asroot --oversubscribe -x CV_CACHE_DIR -x CV_TEST_TAG -np "$np" "$bin" "$@"
}
train() { "$bin" "$data" --config "$cfg" --seed 3 -q "$@"; }

# the parameters (the checkpoint's root group) as one number per line
params() {
    ncdump -p 9,17 "$1" | awk '/^data:/ { d = 1; next } /group:/ { exit } d' | tr ',;=' '   ' |
        tr -s ' \t' '\n\n' | grep -E '^-?[0-9.]+([eE][-+]?[0-9]+)?$' || true
}
# same_params A.nc B.nc WHAT: equal to float tolerance (1e-4; a wrong noise
# row, scale or missing sum moves them by 1e-2 to 1e-1)
same_params() {
    params "$1" > "$tmp/pa"; params "$2" > "$tmp/pb"
    na=$(wc -l < "$tmp/pa"); nb=$(wc -l < "$tmp/pb")
    [ "$na" -gt 1000 ] && [ "$na" -eq "$nb" ] || fail "$3: $na and $nb parameters"
    paste "$tmp/pa" "$tmp/pb" | awk -v what="$3" '
        { d = $1 - $2; if (d < 0) d = -d; if (d > m) { m = d; at = NR } }
        END { printf "%s: max |difference| %.3g over %d parameters\n", what, m, NR;
              if (m > 1e-4) { printf "FAIL: %s: parameter %d differs by %.3g\n", what, at, m; exit 1 } }' >&2 ||
        exit 1
}
# same_losses A.csv B.csv WHAT: the logged losses agree to 1e-5 relative
same_losses() {
    [ "$(wc -l < "$1")" -eq "$(wc -l < "$2")" ] || fail "$3: train.csv has $(wc -l < "$1") and $(wc -l < "$2") lines"
    paste -d, "$1" "$2" | awk -F, -v n="$(head -1 "$1" | tr ',' '\n' | wc -l)" -v what="$3" '
        NR > 1 { a = $3; b = $(n + 3); d = a - b; if (d < 0) d = -d;
                 if (d > 1e-5 * (a < 0 ? -a : a)) { printf "FAIL: %s: step %s loss %s vs %s\n", what, $1, a, b; exit 1 } }' >&2 ||
        exit 1
}
expect_fail() {   # expect_fail PATTERN... -- CMD...: non-zero exit, every pattern in the output
    pats=
    while [ "$1" != -- ]; do pats="$pats
$1"; shift; done
    shift
    set +e; "$@" >"$tmp/out" 2>&1; got=$?; set -e
    [ "$got" -ne 0 ] || { cat "$tmp/out" >&2; fail "$* succeeded"; }
    [ "$got" -ne 124 ] || { cat "$tmp/out" >&2; fail "$*: the job hung"; }
    echo "$pats" | while IFS= read -r p; do
        [ -z "$p" ] || grep -q -- "$p" "$tmp/out" || { cat "$tmp/out" >&2; fail "$*: no '$p' in the output"; }
    done
}

# 1 rank x 4 maps, the reference
train --batch 4 --steps 6 -o "$tmp/one"

# 2 ranks x 2 maps: small buckets (several, overlapped with the backward pass)
mpi 2 "$data" --config "$cfg" --seed 3 -q --batch 4 --steps 6 --bucket-mb 0.004 --check-every 2 -o "$tmp/two"
same_params "$tmp/one/checkpoint.nc" "$tmp/two/checkpoint.nc" "2 ranks x 2 vs 1 x 4 (bucketed)"
same_losses "$tmp/one/train.csv" "$tmp/two/train.csv" "2 ranks x 2 vs 1 x 4"
# rank 0 alone wrote: one header and 6 rows, and nothing else in the directory
[ "$(wc -l < "$tmp/two/train.csv")" -eq 7 ] || fail "train.csv of 2 ranks has $(wc -l < "$tmp/two/train.csv") lines, expected 7"
[ "$(ls -A "$tmp/two" | tr '\n' ' ')" = "checkpoint.nc config.ini samples.png train.csv valid.csv " ] ||
    fail "the run directory of 2 ranks holds: $(ls -A "$tmp/two" | tr '\n' ' ')"
same_losses "$tmp/one/valid.csv" "$tmp/two/valid.csv" "validation on 2 ranks vs 1"

# 4 ranks x 1 map, one blocking allreduce after the backward pass
mpi 4 "$data" --config "$cfg" --seed 3 -q --batch 4 --steps 6 --bucket-mb 0 -o "$tmp/four"
same_params "$tmp/one/checkpoint.nc" "$tmp/four/checkpoint.nc" "4 ranks x 1 vs 1 x 4 (blocking)"

# resume with a different number of ranks: 2 then 1, and 1 then 2
mpi 2 "$data" --config "$cfg" --seed 3 -q --batch 4 --steps 3 -o "$tmp/half"
"$bin" "$data" --resume --steps 6 -q -o "$tmp/half"
same_params "$tmp/one/checkpoint.nc" "$tmp/half/checkpoint.nc" "3 steps on 2 ranks, 3 on 1"
same_losses "$tmp/one/train.csv" "$tmp/half/train.csv" "3 steps on 2 ranks, 3 on 1"
train --batch 4 --steps 3 -o "$tmp/half2"
mpi 2 "$data" --resume --steps 6 -q -o "$tmp/half2"
same_params "$tmp/one/checkpoint.nc" "$tmp/half2/checkpoint.nc" "3 steps on 1 rank, 3 on 2"
same_losses "$tmp/one/train.csv" "$tmp/half2/train.csv" "3 steps on 1 rank, 3 on 2"

# a batch that does not split evenly: a usage error, nothing written
expect_fail "batch" "3 ranks" -- mpi 3 "$data" --config "$cfg" --batch 4 --steps 2 -o "$tmp/bad"
[ ! -e "$tmp/bad/checkpoint.nc" ] || fail "a failed start left a checkpoint"

# rank 1 cannot find its device: the job ends, naming the rank and why
expect_fail "rank 1 of 2" "nosuchdevice" -- timeout 180 mpirun $asroot --oversubscribe -x CV_CACHE_DIR \
    -np 1 "$bin" "$data" --config "$cfg" --steps 2 -q -o "$tmp/nodev" : \
    -np 1 "$bin" "$data" --config "$cfg" --steps 2 -q -o "$tmp/nodev" --device nosuchdevice
[ ! -e "$tmp/nodev/checkpoint.nc" ] || fail "a failed start left a checkpoint"

# ranks that disagree: another option on rank 1; and checkpoints with the
# same configuration, step and position but other parameters (trained
# with and without augmentation) -- the replica check names rank 1
expect_fail "disagree on the configuration" "rank 1 has" -- timeout 180 mpirun $asroot --oversubscribe -x CV_CACHE_DIR \
    -np 1 "$bin" "$data" --config "$cfg" --steps 2 -q -o "$tmp/cfg" : \
    -np 1 "$bin" "$data" --config "$cfg" --steps 2 -q -o "$tmp/cfg" --lr 2e-3
[ ! -e "$tmp/cfg/checkpoint.nc" ] || fail "a failed start left a checkpoint"
train --batch 4 --steps 2 -o "$tmp/augA"
train --batch 4 --steps 2 -o "$tmp/augB" --no-augment
expect_fail "after step 2 the parameters of 1 rank differ from rank 0's: rank 1" -- \
    timeout 180 mpirun $asroot --oversubscribe -x CV_CACHE_DIR \
    -np 1 "$bin" "$data" --resume --steps 4 -q -o "$tmp/augA" : -np 1 "$bin" "$data" --resume --steps 4 -q -o "$tmp/augB"

# a rank that dies: the job ends with a message naming it, the last
# checkpoint stays intact and a run resumes from it
mpi 2 "$data" --config "$cfg" --seed 3 -q --steps 1000000 --checkpoint-every 2 -o "$tmp/die" >"$tmp/die.out" 2>&1 &
job=$!
i=0
while [ ! -s "$tmp/die/checkpoint.nc" ] || [ "$(wc -l < "$tmp/die/train.csv" 2>/dev/null || echo 0)" -lt 6 ]; do
    sleep 0.2; i=$((i + 1))
    [ $i -lt 600 ] || { kill $job; fail "the 2-rank run made no progress"; }
done
victim=
for d in /proc/[0-9]*; do
    c=; { read -r c < "$d/comm"; } 2>/dev/null || true
    [ "$c" = cosmovae-train ] || continue
    env=$({ tr '\0' '\n' < "$d/environ"; } 2>/dev/null || true)
    if echo "$env" | grep -qx "CV_TEST_TAG=$tmp" && echo "$env" | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
        victim=${d#/proc/}
    fi
done
[ -n "$victim" ] || { kill $job; fail "cannot find rank 1"; }
kill -KILL "$victim"
set +e; wait $job; st=$?; set -e
[ "$st" -ne 0 ] || fail "the job went on after rank 1 died"
[ "$st" -ne 124 ] || fail "the job hung after rank 1 died"
grep -q "rank 1" "$tmp/die.out" || { cat "$tmp/die.out" >&2; fail "no message naming rank 1"; }
ncdump -h "$tmp/die/checkpoint.nc" | grep -q 'cv_format = "cosmovae-checkpoint"' || fail "the checkpoint was damaged"
step=$(ncdump -h "$tmp/die/checkpoint.nc" | sed -n 's/^[[:space:]]*:step = \([0-9]*\).*/\1/p')
[ -n "$step" ] && [ "$step" -ge 2 ] || fail "checkpoint step '$step'"
"$bin" "$data" --resume --steps $((step + 1)) -q -o "$tmp/die" || fail "no resume from the checkpoint left by the dead job"

# ranks x CPU-device threads beyond the cores: one warning that says what
# to set; none with one thread per rank (this machine's cores split)
cores=$(getconf _NPROCESSORS_ONLN)
threads=$cores
POCL_MAX_PTHREAD_COUNT=$threads timeout 180 mpirun $asroot --oversubscribe --bind-to none -x CV_CACHE_DIR \
    -x CV_TEST_TAG -x POCL_MAX_PTHREAD_COUNT -np 2 "$bin" "$data" --config "$cfg" --seed 3 -q --steps 1 \
    -o "$tmp/over" 2> "$tmp/over.err" || { cat "$tmp/over.err" >&2; fail "2 ranks x $threads threads did not train"; }
grep -q "2 ranks on this node x $threads threads .* > $cores cores: the ranks oversubscribe the cores; set POCL_MAX_PTHREAD_COUNT" \
    "$tmp/over.err" || { cat "$tmp/over.err" >&2; fail "no oversubscription warning for 2 ranks x $threads threads"; }
[ "$(grep -c 'oversubscribe the cores' "$tmp/over.err")" -eq 1 ] || fail "the oversubscription warning is not printed once"
POCL_MAX_PTHREAD_COUNT=1 timeout 180 mpirun $asroot --oversubscribe --bind-to none -x CV_CACHE_DIR \
    -x CV_TEST_TAG -x POCL_MAX_PTHREAD_COUNT -np 2 "$bin" "$data" --config "$cfg" --seed 3 -q --steps 1 \
    -o "$tmp/fit" 2> "$tmp/fit.err" || { cat "$tmp/fit.err" >&2; fail "2 ranks x 1 thread did not train"; }
grep -q "oversubscribe\|bound to" "$tmp/fit.err" && { cat "$tmp/fit.err" >&2; fail "a warning for 2 ranks x 1 thread"; }

echo "cli-mpi: all checks passed"
