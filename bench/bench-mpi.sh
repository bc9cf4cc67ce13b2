#!/bin/sh
# bench-mpi.sh -- data-parallel training on this machine, and the cluster
# model of doc/scaling.md.
#
#  1. bench-mpi on 2 ranks: parameters and gradient bytes of the small and
#     paper presets, and the time of their allreduce (blocking, bucketed).
#  2. cosmovae-train on the small preset (bundled 64x64 dataset, global
#     batch 4) with 1 rank, and with 2 ranks with the allreduce blocking
#     after the backward pass and bucketed during it: time per step and the
#     allreduce time not hidden by the backward pass.  Each configuration
#     runs BENCH_MPI_REPEAT times (default 2, interleaved) and keeps its
#     fastest run, since this machine is shared; ratios are against the
#     1-rank run of the same invocation.  The ranks share this machine's
#     cores and its one OpenCL device.
#  3. The scaling model for the paper preset on 8, 32 and 128 GPUs over
#     10 GbE, 25 GbE and 100 Gb InfiniBand, from the measured parameter
#     count and the paper's 26 minutes per epoch (13,000 maps, batch 4) on
#     a GTX 1080 Ti.
# BENCH_MPI_STEPS (default 8) sets the timed steps of each training run.
set -eu
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
bin=$top_builddir/src/cosmovae-train
steps=${BENCH_MPI_STEPS:-8}
repeat=${BENCH_MPI_REPEAT:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
asroot=
[ "$(id -u)" != 0 ] || asroot=--allow-run-as-root
command -v mpirun >/dev/null 2>&1 || { echo "bench-mpi: no mpirun (Debian package openmpi-bin)"; exit 0; }

timeout 600 mpirun $asroot --oversubscribe -np 2 "$top_builddir/bench/bench-mpi" --reps 20 | tee "$tmp/allreduce"

# run LABEL NP ARGS...: one training run; appends
# "train LABEL ranks=NP ms_per_step=... allreduce_ms=..." to the summary
run() {
    label=$1; np=$2; shift 2
    if [ "$np" = 1 ]; then
        "$bin" --preset small --batch 4 --steps "$steps" --no-augment -o "$tmp/$label" "$@" 2>"$tmp/$label.err"
    else
        timeout 1800 mpirun $asroot --oversubscribe -np "$np" "$bin" --preset small --batch 4 --steps "$steps" \
            --no-augment -o "$tmp/$label" "$@" 2>"$tmp/$label.err"
    fi
    awk -v label="$label" -v np="$np" '
        / steps \(.*skipped\) in / { for (i = 1; i <= NF; i++) if ($i == "in") { t = $(i + 1); n = $2 } }
        /gradient allreduce of/    { for (i = 1; i <= NF; i++) if ($i == "MiB:") ar = $(i + 1) }
        END { printf "train %s ranks=%d ms_per_step=%.1f allreduce_ms=%s\n", label, np, 1e3 * t / n, ar == "" ? "0" : ar }' \
        "$tmp/$label.err" >> "$tmp/summary"
}
k=0
while [ $k -lt "$repeat" ]; do
    run one 1
    run two-blocking 2 --bucket-mb 0
    run two-bucketed 2 --bucket-mb 0.25
    k=$((k + 1))
done
# the fastest run of each configuration
awk '{ split($4, a, "="); if (!($2 in best) || a[2] < best[$2]) { best[$2] = a[2]; line[$2] = $0 } }
     END { print line["one"]; print line["two-blocking"]; print line["two-bucketed"] }' "$tmp/summary" | tee "$tmp/best"
awk '/^train one /  { split($4, a, "="); base = a[2] }
     /^train two-/ { split($4, a, "="); split($5, b, "=");
                     printf "== %s: %.1f ms per step = %.2fx the 1-rank step (2 ranks x 2 maps vs 1 x 4); allreduce not hidden: %.2f ms per step (%.1f%% of the step)\n",
                            $2, a[2], a[2] / base, b[2], 100 * b[2] / a[2] }' "$tmp/best"

# The scaling model (doc/scaling.md).  Per step and GPU: compute Tc from the
# paper's 26 min per epoch of 13,000 maps at batch 4 (the backward pass is
# 2/3 of it); gradient bytes G = 4 x parameters; device<->host copies at
# 12 GB/s (PCIe 3 x16) each way; ring allreduce of n bytes over R ranks:
# 2 (R-1)/R n / bw + 2 (R-1) alpha.  Without overlap: T = Tc + 2 G / pcie +
# ring(G).  With buckets of 1 MiB (k of them): what does not fit under the
# backward pass, plus the last bucket's reduction and copies, plus the
# write-back: T = Tc + max(k ring(G/k) - Tbwd, 0) + ring(G/k) + (G/k + G) / pcie.
# For 4 maps per GPU (global batch 4R, as the paper's batch per device) and
# 1 map per GPU (Tc / 4, assuming the step time scales with the batch).
awk '/^allreduce paper / { for (i = 1; i <= NF; i++) if ($i ~ /^params=/) { split($i, a, "="); print a[2] } }' \
    "$tmp/allreduce" > "$tmp/params"
for mpg in 4 1; do
awk -v P="$(cat "$tmp/params")" -v maps_per_gpu=$mpg 'function ring(n, R, bw, al) { return 2 * (R - 1) / R * n / bw + 2 * (R - 1) * al }
    BEGIN {
        G = 4 * P; Tc = 26 * 60 / (13000 / 4) * maps_per_gpu / 4; Tb = Tc * 2 / 3; pcie = 12e9; b = 1048576
        k = int((G + b - 1) / b)
        net[1] = "10 GbE"; bw[1] = 1.15e9; al[1] = 30e-6
        net[2] = "25 GbE"; bw[2] = 2.9e9;  al[2] = 20e-6
        net[3] = "100 Gb InfiniBand"; bw[3] = 11.5e9; al[3] = 3e-6
        split("8 32 128", Rs, " ")
        printf "== scaling model, paper preset: %d parameters, %.2f MB of gradients per step, compute %.0f ms per step (%d maps per GPU)\n", P, G / 1e6, 1e3 * Tc, maps_per_gpu
        printf "== %-18s %5s %12s %12s %12s %12s\n", "interconnect", "GPUs", "allreduce ms", "eff. plain", "eff. overlap", "speed-up"
        for (n = 1; n <= 3; n++) for (j = 1; j <= 3; j++) {
            R = Rs[j]; t = ring(G, R, bw[n], al[n])
            plain = Tc / (Tc + 2 * G / pcie + t)
            over = k * ring(G / k, R, bw[n], al[n]) - Tb; if (over < 0) over = 0
            over = Tc / (Tc + over + ring(G / k, R, bw[n], al[n]) + (G / k + G) / pcie)
            printf "== %-18s %5d %12.2f %11.1f%% %11.1f%% %11.1fx\n", net[n], R, 1e3 * t, 100 * plain, 100 * over, R * over
        }
    }'
done
