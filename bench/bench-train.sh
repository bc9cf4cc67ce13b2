#!/bin/sh
# bench-train.sh -- training throughput of cosmovae against PyTorch on the
# CPU, same model, batch and optimizer, in the same run.  The paper preset
# is slow on a CPU: it runs a single timed step unless BENCH_PAPER_SECONDS
# says otherwise (BENCH_PAPER=0 leaves it out).
set -eu
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
threads=${BENCH_TORCH_THREADS:-$(nproc 2>/dev/null || echo 2)}
"$top_builddir/bench/bench-train" --preset small --seconds "${BENCH_SMALL_SECONDS:-30}" | tee -a "$out"
if [ "${BENCH_PAPER:-1}" != 0 ]; then
    "$top_builddir/bench/bench-train" --preset paper --seconds "${BENCH_PAPER_SECONDS:-0}" --min-steps 1 | tee -a "$out"
    # The memory the GPU rows' plan takes (no GELU caches): the CPU rows
    # trade memory for speed where the device has it (doc/model.md).
    echo "== paper preset without the GELU caches (keep_gelu 0, as on GPUs):"
    "$top_builddir/bench/bench-train" --preset paper --keep-gelu 0 --memory-only --no-profile | grep 'device memory'
fi
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for preset in small paper; do
    [ "$preset" = paper ] && [ "${BENCH_PAPER:-1}" = 0 ] && continue
    steps=20; [ "$preset" = paper ] && steps=1
    # Some hosts set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE to work around old
    # OpenBLAS builds; they slow PyTorch's CPU kernels several times over
    # (16 vs 4 maps/s measured here), so the baseline runs without them.
    if env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$top_srcdir/bench/bench-train-torch.py" "$preset" "$steps" "$threads" >> "$out" 2>/dev/null; then
        grep "^torch $preset" "$out"
    else
        echo "torch $preset: PyTorch baseline not available (apt-get install python3-torch)"
    fi
done
awk 'function val(line, key,   i, a) { for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] == key) return a[2] } return 0 }
     /^cosmovae /{c[$2]=val($0, "maps_per_s"); cc[$2]=val($0, "maps_per_cpu_s"); g[$2]=val($0, "gflops");
                  hs[$2]=val($0, "host_sgemm_peak"); cb[$2]=val($0, "cpus_busy")
                  if (hs[$2] > 0)
                      printf("== %s: %.2f CPUs busy; model %.1f GFLOP/s against the host OpenBLAS SGEMM %.1f GFLOP/s: %.1f%%\n",
                             $2, cb[$2], g[$2], hs[$2], 100 * g[$2] / hs[$2]) }
     /^torch /{t[$2]=val($0, "maps_per_s"); tc[$2]=val($0, "maps_per_cpu_s")}
     END { for (p in c) if (p in t && t[p] > 0) {
               printf("== %s: cosmovae %.2f maps/s vs PyTorch %.2f maps/s: ratio %.2fx\n", p, c[p], t[p], c[p] / t[p])
               if (cc[p] > 0 && tc[p] > 0)
                   printf("== %s: per CPU-second (steadier on a shared host): cosmovae %.2f vs PyTorch %.2f maps: ratio %.2fx\n",
                          p, cc[p], tc[p], cc[p] / tc[p]) } }' "$out"
