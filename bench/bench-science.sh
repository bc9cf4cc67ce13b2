#!/bin/sh
# bench-science.sh -- does the latent code say more than a power spectrum?
#
# Makes a CMD-like set (1000 simulations x 15 maps of 64^2, 3-D slabs, as
# the paper's 15,000 maps; 67 test simulations),
# trains for a fixed wall-clock budget in segments (each ends with a
# checkpoint; the next resumes it bit-exactly), and after every segment
# encodes the maps and probes the 256-number code (the posterior mean of
# the 4x4 group, as the paper) beside the classical baseline
# (cosmovae-features: binned log P(k), cross-correlations, pixel moments)
# on the same split, and beside both the thumbnail yardstick (the mean of
# each field over 4 x 4 blocks, cosmovae-features --coarse 4: what the
# code says if it is only a coarse picture of the map).  At the end it samples maps from the prior and
# compares their mean auto- and cross-spectra with the test maps', once
# with the learned prior, once with the top group drawn from a Gaussian
# fitted to its aggregate posterior on the train maps (cosmovae-sample
# --top-prior), and once at temperatures per latent resolution calibrated
# to the valid maps' power (cosmovae-sample --calibrate).
#
#   bench/bench-science.sh [--minutes M] [--segments K] [--recipe NAME]
#                          [--sims N] [--gen N] [--out DIR] [-- TRAIN-OPTIONS...]
#
# Defaults: 20 minutes in 4 segments, the paper recipe (none: no --recipe,
# the defaults and TRAIN-OPTIONS alone), 1000 simulations (200: the
# benchmark of before 2026-12-06, 13 test simulations),
# 400 generated maps, DIR = bench-science-RECIPE.  Environment:
# BENCH_SCIENCE_MINUTES, BENCH_SCIENCE_RECIPE, BENCH_SCIENCE_OUT set the
# same (for `make bench`).  TRAIN-OPTIONS go to every fresh cosmovae-train
# (e.g. --set train.free_bits=0.25 for an ablation).
#
# Writes DIR/r2.csv (minutes,param,r2,r2_lo68,r2_hi68,base_r2,base_lo68,
# base_hi68,steps,pool_r2: the last the pooled code of every group),
# DIR/diag.csv (minutes,group,res,numbers,active,kl), DIR/pk-agree.csv (with the
# samples against the train maps, the train maps against the test maps
# as the yardstick, the --top-prior and the --calibrate samples against
# both),
# DIR/probe-thumb.csv (the thumbnail's probe), DIR/summary.md
# and DIR/science.png.  Takes the budget
# plus about 5 minutes.  The results of record are in doc/science.md.
set -eu
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
bin="$top_builddir/src"
minutes=${BENCH_SCIENCE_MINUTES:-20}
segments=4
recipe=${BENCH_SCIENCE_RECIPE:-paper}
sims=1000
gen=400
out=${BENCH_SCIENCE_OUT:-}
die() { echo "bench-science.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) [ $# -ge 2 ] || die "--minutes needs a value"; minutes=$2; shift 2 ;;
    --segments) [ $# -ge 2 ] || die "--segments needs a value"; segments=$2; shift 2 ;;
    --recipe) [ $# -ge 2 ] || die "--recipe needs a value"; recipe=$2; shift 2 ;;
    --sims) [ $# -ge 2 ] || die "--sims needs a value"; sims=$2; shift 2 ;;
    --gen) [ $# -ge 2 ] || die "--gen needs a value"; gen=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (--help)" ;;
    esac
done
case $minutes in ''|*[!0-9.]*) die "--minutes: '$minutes' is not a number" ;; esac
case $segments in ''|*[!0-9]*|0) die "--segments: '$segments' is not a positive integer" ;; esac
case $sims in ''|*[!0-9]*) die "--sims: '$sims' is not an integer" ;; esac
[ "$sims" -ge 30 ] || die "--sims: $sims simulations leave too few test simulations to mean anything (>= 30)"
: "${out:=bench-science-$recipe}"
train_args="$*"
for p in cosmovae-mkfields cosmovae-features cosmovae-train cosmovae-encode cosmovae-probe cosmovae-sample cosmovae-pk; do
    [ -x "$bin/$p" ] || die "$bin/$p: not built (make)"
done
plot="$top_builddir/bench/bench-science-plot"
mkdir -p "$out"
data="$out/data.nc" feat="$out/features.nc" run="$out/run"
stamp="sims=$sims size=64 seed=7"
if [ ! -s "$data" ] || [ "$(cat "$out/data.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== making the data set: $sims simulations x 15 maps of 64^2 (3-D slabs)"
    "$bin/cosmovae-mkfields" -o "$data" --sims "$sims" --size 64 --seed 7 -q
    rm -f "$feat" "$out/thumb.nc"
    echo "$stamp" > "$out/data.stamp"
fi
[ -s "$feat" ] || "$bin/cosmovae-features" "$data" -o "$feat" -q
thumb="$out/thumb.nc"
[ -s "$thumb" ] && [ "$thumb" -nt "$data" ] || "$bin/cosmovae-features" "$data" --coarse 4 -o "$thumb" -q
seg_s=$(awk -v m="$minutes" -v k="$segments" 'BEGIN { printf "%.0f", m * 60 / k }')
rm -rf "$run" "$out"/ckpt-*.nc "$out"/lat-*.nc "$out"/pool-*.nc "$out"/probe-*.csv "$out"/diag-*.txt
# the thumbnail's probe (after the rm above: its name is a probe-*.csv)
"$bin/cosmovae-probe" "$thumb" -o "$out/probe-thumb.csv" -q > "$out/probe-thumb.txt"
echo "minutes,param,r2,r2_lo68,r2_hi68,base_r2,base_lo68,base_hi68,steps,pool_r2" > "$out/r2.csv"
echo "minutes,group,res,numbers,active,kl" > "$out/diag.csv"
echo "== recipe $recipe, $minutes minutes of training in $segments segments of $seg_s s"
s=1
while [ "$s" -le "$segments" ]; do
    if [ "$s" = 1 ]; then
        # --recipe none: the defaults and TRAIN-OPTIONS alone (ablations)
        if [ "$recipe" = none ]; then set -- "$@"; else set -- --recipe "$recipe" "$@"; fi
        "$bin/cosmovae-train" "$data" -o "$run" --time-limit "$seg_s" -q "$@" 2> "$out/train-1.log" \
            || { cat "$out/train-1.log" >&2; exit 1; }
    else
        "$bin/cosmovae-train" "$data" -o "$run" --resume --time-limit "$seg_s" -q 2> "$out/train-$s.log" \
            || { cat "$out/train-$s.log" >&2; exit 1; }
    fi
    t=$(awk -v m="$minutes" -v k="$segments" -v s="$s" 'BEGIN { printf "%g", m * s / k }')
    steps=$(tail -n 1 "$run/train.csv" | cut -d, -f1)
    cp "$run/checkpoint.nc" "$out/ckpt-$s.nc"
    "$bin/cosmovae-encode" "$run" "$data" -o "$out/lat-$s.nc" 2> "$out/diag-$s.txt"
    "$bin/cosmovae-probe" "$out/lat-$s.nc" --baseline "$feat" -o "$out/probe-$s.csv" -q > "$out/probe-$s.txt"
    # beside it, not in its place: the pooled code of every group (spatial
    # mean and std per latent channel, cosmovae-encode --pool --all-groups)
    "$bin/cosmovae-encode" "$run" "$data" -o "$out/pool-$s.nc" --pool --all-groups --no-diag -q
    "$bin/cosmovae-probe" "$out/pool-$s.nc" -o "$out/probe-pool-$s.csv" -q > "$out/probe-pool-$s.txt"
    awk -F, 'NR == FNR { if (FNR == 1) { for (i = 1; i <= NF; i++) q[$i] = i } else pool[$q["param"]] = $q["r2"]; next }
        FNR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        { printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", t, $c["param"], $c["r2"], $c["r2_lo68"], $c["r2_hi68"],
                 $c["base_r2"], $c["base_r2_lo68"], $c["base_r2_hi68"], steps, pool[$c["param"]] }' t="$t" steps="$steps" \
        "$out/probe-pool-$s.csv" "$out/probe-$s.csv" >> "$out/r2.csv"
    # the diagnosis table of cosmovae-encode: group, res, numbers, active (pct), KL
    awk -v t="$t" '$1 == "cosmovae-encode:" && $2 ~ /^[0-9]+$/ && $3 ~ /x/ {
        kl = ""; for (i = 6; i <= NF; i++) if ($i ~ /%\)$/) { kl = $(i + 1); break }
        printf "%s,%s,%s,%s,%s,%s\n", t, $2, $3, $4, $5, kl }' "$out/diag-$s.txt" >> "$out/diag.csv"
    awk -F, -v t="$t" '$1 == t && $2 == 0 { printf "   %s min (%s steps): probed group %s of %s active, KL %s nats/map\n", t, s, $5, $4, $6 }' \
        s="$steps" "$out/diag.csv"
    awk -F, -v t="$t" '$1 == t { printf "     %-7s latent R2 %6.3f [%6.3f, %6.3f]   baseline %6.3f   pooled all groups %6.3f\n", $2, $3, $4, $5, $6, $10 }' "$out/r2.csv"
    s=$((s + 1))
done
echo "== sampling $gen maps; P(k) against the test maps"
"$bin/cosmovae-sample" "$run" -o "$out/samples" -n "$gen" -q --real "$data"
"$bin/cosmovae-pk" "$data" "$out/samples/samples.nc" -o "$out/pk" -q > "$out/pk.txt"
cat "$out/pk.txt"
# beside it: the samples against the train maps (the distribution the
# model learned), and the yardstick of the target: the train maps
# themselves against the test maps (a generator as good as the data)
"$bin/cosmovae-pk" "$data" "$out/samples/samples.nc" --split train -o "$out/pk-train" -q > "$out/pk-train.txt"
"$bin/cosmovae-pk" "$data" "$data" --split test --split-b train -o "$out/pk-yard" -q > "$out/pk-yard.txt"
agree() {   # agree PK.TXT PK.CSV: spectrum,kmax (0: not at the first shell),first-shell ratio B/A
    awk -F, 'NR == FNR { if (FNR > 1 && !($1 in r)) r[$1] = $6 / $4; next }
        $2 == "k" && $3 == "<=" { printf "%s,%s,%.3f\n", $1, $4, r[$1] }
        /no agreement at the first shell/ { printf "%s,0,%.3f\n", $1, r[$1] }' "$2" FS=' ' "$1"
}
agree "$out/pk.txt" "$out/pk/pk.csv" > "$out/pk-a.tmp"
agree "$out/pk-train.txt" "$out/pk-train/pk.csv" > "$out/pk-b.tmp"
agree "$out/pk-yard.txt" "$out/pk-yard/pk.csv" > "$out/pk-c.tmp"
echo "== the same number of maps with the top group from its aggregate posterior on the train maps (--top-prior)"
"$bin/cosmovae-sample" "$run" -o "$out/samples-top" -n "$gen" -q --top-prior "$data"
"$bin/cosmovae-pk" "$data" "$out/samples-top/samples.nc" -o "$out/pk-top" -q > "$out/pk-top.txt"
"$bin/cosmovae-pk" "$data" "$out/samples-top/samples.nc" --split train -o "$out/pk-top-train" -q > "$out/pk-top-train.txt"
agree "$out/pk-top.txt" "$out/pk-top/pk.csv" > "$out/pk-d.tmp"
agree "$out/pk-top-train.txt" "$out/pk-top-train/pk.csv" > "$out/pk-e.tmp"
echo "== the same number of maps at temperatures calibrated to the valid maps' power (--calibrate)"
"$bin/cosmovae-sample" "$run" -o "$out/samples-cal" -n "$gen" -q --calibrate "$data"
"$bin/cosmovae-pk" "$data" "$out/samples-cal/samples.nc" -o "$out/pk-cal" -q > "$out/pk-cal.txt"
"$bin/cosmovae-pk" "$data" "$out/samples-cal/samples.nc" --split train -o "$out/pk-cal-train" -q > "$out/pk-cal-train.txt"
agree "$out/pk-cal.txt" "$out/pk-cal/pk.csv" > "$out/pk-f.tmp"
agree "$out/pk-cal-train.txt" "$out/pk-cal-train/pk.csv" > "$out/pk-g.tmp"
cat "$out/pk-cal.txt"
echo "spectrum,kmax_agree,first_shell_agrees,first_shell_ratio,kmax_vs_train,first_ratio_vs_train,yard_kmax,yard_first_ratio,top_kmax,top_first_ratio,top_kmax_vs_train,top_first_ratio_vs_train,cal_kmax,cal_first_ratio,cal_kmax_vs_train,cal_first_ratio_vs_train" \
    > "$out/pk-agree.csv"
# (a spectrum missing from one comparison gives two empty fields, not one)
awk -F, 'function v(a, s) { return (s in a) ? a[s] : "," }
    FILENAME ~ /pk-b\.tmp$/ { b[$1] = $2 "," $3; next } FILENAME ~ /pk-c\.tmp$/ { c[$1] = $2 "," $3; next }
    FILENAME ~ /pk-d\.tmp$/ { d[$1] = $2 "," $3; next } FILENAME ~ /pk-e\.tmp$/ { e[$1] = $2 "," $3; next }
    FILENAME ~ /pk-f\.tmp$/ { f[$1] = $2 "," $3; next } FILENAME ~ /pk-g\.tmp$/ { g[$1] = $2 "," $3; next }
    { ok = $2 > 0; printf "%s,%s,%d,%s,%s,%s,%s,%s,%s,%s\n", $1, $2, ok, $3, v(b, $1), v(c, $1), v(d, $1), v(e, $1),
                   v(f, $1), v(g, $1) }' \
    "$out/pk-b.tmp" "$out/pk-c.tmp" "$out/pk-d.tmp" "$out/pk-e.tmp" "$out/pk-f.tmp" "$out/pk-g.tmp" "$out/pk-a.tmp" \
    >> "$out/pk-agree.csv"
rm -f "$out"/pk-[abcdefg].tmp
if [ -x "$plot" ]; then
    "$plot" "$out/r2.csv" "$out/diag.csv" "$out/pk/pk.csv" -o "$out/science.png"
else
    echo "bench-science.sh: $plot not built (make bench builds it): no figure" >&2
fi
# pk_table COL: the agreement table of the samples whose four columns of
# pk-agree.csv start at COL (kmax, first ratio, and both against the train maps)
pk_table() {
    echo "| spectrum | agree up to k (h/Mpc) | P_gen / P_test, first shell | target k >= 5 from the first shell | against the train maps: k, ratio |"
    echo "|---|---|---|---|---|"
    awk -F, -v c="$1" 'function k(x) { return x > 0 ? x : "not at the first shell" }
             NR > 1 { ok = ($c > 0 && $c >= 5) ? "yes" : "no"
                     printf "| %s | %s | %s | %s | %s, %s |\n", $1, k($c), $(c + 1), ok, k($(c + 2)), $(c + 3) }' "$out/pk-agree.csv"
}
# the summary, with the issue's targets checked
{
    echo "# Science benchmark: recipe \`$recipe\`, $minutes minutes"
    echo
    echo "Data: $sims simulations x 15 maps of 64^2 (cosmovae-mkfields --seed 7), the test split."
    echo "Device: $("$bin/cosmovae-info" 2>/dev/null | awk '/^[Dd]evice 0:/ { sub(/^[Dd]evice 0: */, ""); print; exit }')"
    echo "Training: $(tail -n 1 "$run/train.csv" | cut -d, -f1) steps."
    echo
    echo "## Test R^2 of the linear probe (dense layer), 68% bootstrap over test simulations"
    echo
    awk -F, 'NR == FNR { if (FNR == 1) { for (i = 1; i <= NF; i++) q[$i] = i } else th[$q["param"]] = $q["r2"]; next }
             FNR > 1 { if (!($1 in seen)) { seen[$1] = 1; T[++nt] = $1 } if (!($2 in pseen)) { pseen[$2] = 1; P[++np] = $2 }
                      v[$1, $2] = sprintf("%.3f [%.2f, %.2f]", $3, $4, $5); b[$2] = $6; bl[$2] = $7; bh[$2] = $8; last[$2] = $3
                      pool[$2] = $10 }
        END { printf "| parameter |"; for (i = 1; i <= nt; i++) printf " latent, %s min |", T[i]; printf " baseline | target met | pooled all groups, end | thumbnail 4x4 |\n"
              printf "|---|"; for (i = 1; i <= nt; i++) printf "---|"; printf "---|---|---|---|\n"
              for (j = 1; j <= np; j++) { p = P[j]; printf "| %s |", p; for (i = 1; i <= nt; i++) printf " %s |", v[T[i], p]
                  need = b[p] > 0.2; ok = (!need || last[p] >= b[p]) && (p != "Omega_m" || last[p] >= 0.8)
                  msg = ok ? "yes" : sprintf("no (%+.3f)", (p == "Omega_m" && 0.8 > b[p] ? 0.8 : b[p]) - last[p])
                  if (!need && p != "Omega_m") msg = "(baseline <= 0.2)"
                  printf " %.3f [%.2f, %.2f] | %s | %.3f | %.3f |\n", b[p], bl[p], bh[p], msg, pool[p], th[p] } }' \
        "$out/probe-thumb.csv" "$out/r2.csv"
    echo
    echo "Target: latent >= baseline where the baseline exceeds 0.2, and Omega_m >= 0.8 (\"no (x)\": short by x)."
    echo "The code is the paper's (4x4 group, 256 numbers); the last column, beside it, probes the pooled code of every"
    echo "group (cosmovae-encode --pool --all-groups: spatial mean and std of each latent channel); the thumbnail,"
    echo "the mean of each transformed field over 4 x 4 blocks (48 numbers), is what a code that were only a coarse"
    echo "picture of the map would give."
    echo
    echo "## The latent code after $minutes minutes (cosmovae-encode's diagnosis, valid maps)"
    echo
    echo "| group | res | numbers | active | KL (nats/map) |"
    echo "|---|---|---|---|---|"
    awk -F, -v t="$(tail -n 1 "$out/diag.csv" | cut -d, -f1)" '$1 == t { printf "| %s | %s | %s | %s (%.0f%%) | %s |\n", $2, $3, $4, $5, 100 * $5 / $4, $6 }' "$out/diag.csv"
    echo
    echo "## Generated ($gen maps) against test maps: mean P(k) within 10%"
    echo
    echo "| spectrum | agree up to k (h/Mpc) | P_gen / P_test, first shell | target k >= 5 from the first shell | against the train maps: k, ratio | yardstick: train maps against test maps: k, ratio |"
    echo "|---|---|---|---|---|---|"
    awk -F, 'function k(x) { return x > 0 ? x : "not at the first shell" }
             NR > 1 { ok = ($3 && $2 >= 5) ? "yes" : "no"
                     printf "| %s | %s | %s | %s | %s, %s | %s, %s |\n", $1, k($2), $4, ok, k($5), $6, k($7), $8 }' "$out/pk-agree.csv"
    echo
    echo "The yardstick: the mean P(k) of the train maps against that of the test maps.  When even the data"
    echo "miss the test maps by more than 10%, the test split's few simulations are what the target measures."
    echo
    echo "With the 4x4 group drawn from a Gaussian fitted to its aggregate posterior on the train maps"
    echo "(cosmovae-sample --top-prior; the other groups from their learned conditional priors):"
    echo
    pk_table 9
    echo
    echo "With the temperature of each latent resolution calibrated so that the samples' mean power matches the"
    echo "valid maps' in the shells that resolution draws (cosmovae-sample --calibrate; the test maps are not used):"
    echo
    echo "| res | shells | temperature | P_gen / P_valid at T = 1 | calibrated |"
    echo "|---|---|---|---|---|"
    awk -F, 'NR > 1 { printf "| %s | %s-%s | %.3f%s | %.3f | %.3f |\n", $1, $2, $3, $4, $7 == 1 ? " (at the bound)" : "", $5, $6 }' \
        "$out/samples-cal/calibration.csv"
    echo
    pk_table 13
    echo
    echo "Figure: science.png.  Made by: bench/bench-science.sh --minutes $minutes --segments $segments --recipe $recipe${train_args:+ -- $train_args}"
} > "$out/summary.md"
echo "== wrote $out/summary.md, $out/r2.csv, $out/diag.csv, $out/pk-agree.csv${plot:+, $out/science.png}"
cat "$out/summary.md"
