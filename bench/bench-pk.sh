#!/bin/sh
# bench-pk.sh -- P(k) throughput of cosmovae's device path against a plain
# CPU implementation of the same convention (numpy rfft2 plus binning) on
# the same maps, in one run: maps/s of each and the ratio (target >= 5 on
# a GPU), and the largest difference of the mean spectra.  M maps of
# 3 x 256^2: $CV_BENCH_PK_MAPS (default 1000).  Without python3 + numpy
# (Debian: python3-numpy) the baseline is reported as not installed.
set -eu
LC_ALL=C
export LC_ALL
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
m=${CV_BENCH_PK_MAPS:-1000}
n=256
tmp=$(mktemp -d "${TMPDIR:-.}/bench-pk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

"$top_builddir/bench/bench-pk" --maps "$m" --size "$n" --dump "$tmp/maps.f32" --csv "$tmp/c.csv" | tee "$tmp/ours.txt"

py=
for cand in ${PYTHON:-} $(IFS=:; for dir in $PATH; do [ -x "$dir/python3" ] && echo "$dir/python3"; done; true); do
    if "$cand" -c 'import numpy' >/dev/null 2>&1; then py=$cand; break; fi
done
if [ -z "$py" ]; then
    echo "baseline: NOT INSTALLED -- the numpy P(k) baseline needs python3 with numpy"
    echo "          (Debian: apt-get install python3-numpy); no comparison made"
    exit 0
fi
"$py" "$top_srcdir/bench/bench-pk.py" "$tmp/maps.f32" "$m" "$n" "$tmp/c.csv" | tee "$tmp/np.txt"
ours=$(sed -n 's/^cosmovae P(k) .* s, \([0-9.]*\) maps\/s$/\1/p' "$tmp/ours.txt")
base=$(sed -n 's/^numpy .* s, \([0-9.]*\) maps\/s$/\1/p' "$tmp/np.txt")
awk -v o="$ours" -v b="$base" 'BEGIN {
    printf "P(k) throughput: cosmovae %.1f maps/s, numpy %.1f maps/s: %.2fx (target >= 5x)\n", o, b, o / b }'
