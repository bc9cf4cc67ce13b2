#!/bin/sh
# bench-tsne.sh -- cosmovae's t-SNE against scikit-learn's Barnes-Hut t-SNE
# on the same N x 256 latent-like points (N = $CV_BENCH_TSNE_N, default
# 15000: minutes on a small machine), in one run: time of each, and the
# trustworthiness (k = 5) of both embeddings scored by the same C code.
# Without python3 + numpy + scikit-learn (Debian: python3-sklearn) the
# baseline is reported as not installed and the script still succeeds.
set -eu
LC_ALL=C
export LC_ALL
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
n=${CV_BENCH_TSNE_N:-15000}
d=256
tmp=$(mktemp -d "${TMPDIR:-.}/bench-tsne.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

"$top_builddir/bench/bench-tsne" --n "$n" --dim "$d" --dump "$tmp/x.f32" --embed "$tmp/ours.f32" | tee "$tmp/ours.txt"

# The first python3 on PATH (or $PYTHON) that has numpy and scikit-learn.
py=
for cand in ${PYTHON:-} $(IFS=:; for dir in $PATH; do [ -x "$dir/python3" ] && echo "$dir/python3"; done; true); do
    if "$cand" -c 'import numpy, sklearn' >/dev/null 2>&1; then py=$cand; break; fi
done
if [ -z "$py" ]; then
    echo "baseline: NOT INSTALLED -- scikit-learn t-SNE needs python3 with numpy and scikit-learn"
    echo "          (Debian: apt-get install python3-sklearn); no comparison made"
    exit 0
fi
"$py" "$top_srcdir/bench/bench-tsne.py" "$tmp/x.f32" "$n" "$d" "$tmp/sk.f32" | tee "$tmp/sk.txt"
"$top_builddir/bench/bench-tsne" --n "$n" --dim "$d" --trust "$tmp/sk.f32" > "$tmp/skt.txt"
t_ours=$(sed -n 's/.*: \([0-9.]*\) s (kNN.*/\1/p' "$tmp/ours.txt")
tw_ours=$(sed -n 's/.*trustworthiness \([0-9.]*\)$/\1/p' "$tmp/ours.txt")
t_sk=$(sed -n 's/^sklearn .*: \([0-9.]*\) s$/\1/p' "$tmp/sk.txt")
tw_sk=$(sed -n 's/^trustworthiness \([0-9.]*\)$/\1/p' "$tmp/skt.txt")
awk -v n="$n" -v to="$t_ours" -v ts="$t_sk" -v wo="$tw_ours" -v ws="$tw_sk" 'BEGIN {
    printf "t-SNE %d x 256: cosmovae %.1f s, trustworthiness %.4f | scikit-learn %.1f s, trustworthiness %.4f\n", n, to, wo, ts, ws
    printf "speed-up over scikit-learn: %.2fx (target >= 1); trustworthiness difference %+.4f\n", ts / to, wo - ws
}'
