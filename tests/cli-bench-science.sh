#!/bin/sh
# cli-bench-science.sh -- the science benchmark's script end to end on a
# toy budget (30 simulations of 64^2, 12 s of training, 16 maps sampled
# three ways), so that a change to a program's output or to the script
# cannot break `make bench` unseen: every file it promises, the CSVs'
# columns and rows, the summary's tables.  Not a measurement: the numbers
# of so short a run mean nothing.
. "$(dirname "$0")/setup.sh"
out="$tmp/bs"
top_builddir="$top_builddir" "$top_srcdir/bench/bench-science.sh" --minutes 0.2 --segments 1 --sims 30 --gen 16 \
    --recipe budget --out "$out" > "$tmp/log" 2>&1 || { cat "$tmp/log" >&2; fail "bench-science.sh failed"; }
for f in r2.csv diag.csv pk-agree.csv probe-thumb.csv summary.md samples/samples.nc samples-top/samples.nc \
         samples-cal/samples.nc samples-cal/calibration.csv; do
    [ -s "$out/$f" ] || fail "bench-science.sh wrote no $f"
done
[ "$(head -1 "$out/r2.csv")" = "minutes,param,r2,r2_lo68,r2_hi68,base_r2,base_lo68,base_hi68,steps,pool_r2" ] &&
    [ "$(tail -n +2 "$out/r2.csv" | wc -l)" -eq 6 ] || fail "r2.csv: $(cat "$out/r2.csv")"
awk -F, 'NR > 1 && NF != 16 { bad = 1 } END { exit bad || NR != 7 }' "$out/pk-agree.csv" ||
    fail "pk-agree.csv: 6 spectra of 16 columns expected: $(cat "$out/pk-agree.csv")"
head -1 "$out/pk-agree.csv" | grep -q ',cal_kmax,cal_first_ratio,cal_kmax_vs_train,cal_first_ratio_vs_train$' ||
    fail "pk-agree.csv header: $(head -1 "$out/pk-agree.csv")"
grep -q '^| Omega_m | .* | .* | .* | .* | .* |$' "$out/summary.md" || fail "summary.md: no R^2 row for Omega_m"
grep -q '^| parameter | latent, 0.2 min | baseline | target met | pooled all groups, end | thumbnail 4x4 |$' "$out/summary.md" ||
    fail "summary.md: the R^2 table's header: $(grep '^| parameter' "$out/summary.md")"
grep -q '^| 4 | 1-2 | ' "$out/summary.md" || fail "summary.md: no calibration table"
grep -q '^Device: .*[A-Za-z]' "$out/summary.md" || fail "summary.md: the device is not named"
[ "$(grep -c "^| Mgas-B |" "$out/summary.md")" -eq 3 ] || fail "summary.md: three P(k) tables expected (learned prior, --top-prior, --calibrate)"
echo "ok: bench-science.sh writes every table on a toy budget"
