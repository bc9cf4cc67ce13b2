#!/bin/sh
# cli-results.sh -- the analysis programs end to end: cosmovae-pk on
# synthetic datasets (one and two sets, the CSV's columns and rows, the
# agreement of a set with itself, the figure's size, the default split:
# test where a set has test maps, else all), cosmovae-probe and
# cosmovae-tsne on a latent file made by tests/test-probe --make-latent
# (the table, the CSV, R^2 of Omega_m well above 0, the bootstrap columns
# and interval, the warning for fewer than 10 test simulations, the closed
# form skipped for D = 5000, the embedding files and figure), and bad input: different map sizes or fields, an empty split, a
# latent file without params or split, an empty valid split; the
# classical baseline: cosmovae-features (a latent-format file with the
# maps' geometry), cosmovae-probe --baseline with a features file or a
# dataset (the same numbers), and a baseline of other maps or another size
# refused -- each a
# message naming the file, exit 1, and no output left behind; usage errors
# exit 2; --help and --version exit 0.
tmp_parent=${TMPDIR:-.}
. "$(dirname "$0")/setup.sh"
PATH="$top_builddir/src:$PATH"
export PATH
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# run EXPECTED_STATUS NAME CMD...: stdout+stderr in $tmp/out
run() {
    want=$1; name=$2; shift 2
    set +e
    "$@" > "$tmp/out" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq "$want" ]; then ok "$name (exit $rc)"; else bad "$name: exit $rc, expected $want"; sed 's/^/    /' "$tmp/out"; fi
}
# expect PATTERN NAME: $tmp/out contains PATTERN
expect() {
    if grep -q -- "$1" "$tmp/out"; then ok "$2"; else bad "$2: no '$1' in the output"; sed 's/^/    /' "$tmp/out"; fi
}
# png_size FILE: "W H" from the IHDR chunk
png_size() {
    od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%d %d\n", (($1*256+$2)*256+$3)*256+$4, (($5*256+$6)*256+$7)*256+$8 }'
}
is_png() { [ "$(od -An -c -j1 -N3 "$1" | tr -d ' ')" = PNG ]; }

for p in cosmovae-pk cosmovae-probe cosmovae-tsne cosmovae-features; do
    run 0 "$p --help" "$p" --help
    expect "Usage: $p" "$p --help prints its usage"
    run 0 "$p --version" "$p" --version
    expect "$p (cosmovae)" "$p --version"
    run 2 "$p without arguments" "$p"
    run 2 "$p with an unknown option" "$p" --no-such-option x
done

# ---- power spectra -------------------------------------------------------------
cosmovae-mkfields -q -o "$tmp/a.nc" --sims 2 --size 32 --seed 1
cosmovae-mkfields -q -o "$tmp/b.nc" --sims 2 --size 32 --seed 2
run 0 "cosmovae-pk, two sets" cosmovae-pk -q "$tmp/a.nc" "$tmp/b.nc" -o "$tmp/pk"
expect "largest k where the means agree within 10%" "cosmovae-pk reports the agreement scale"
head -1 "$tmp/pk/pk.csv" | grep -qx 'spectrum,k,nmodes,mean_a,std_a,mean_b,std_b' && ok "pk.csv header" || bad "pk.csv header: $(head -1 "$tmp/pk/pk.csv")"
# N = 32: 22 shells (|k| up to 16 sqrt 2); 6 spectra
rows=$(($(wc -l < "$tmp/pk/pk.csv") - 1))
[ "$rows" -eq $((6 * 22)) ] && ok "pk.csv has 6 spectra x 22 shells" || bad "pk.csv has $rows rows, expected 132"
names=$(cut -d, -f1 "$tmp/pk/pk.csv" | sed 1d | uniq | tr '\n' ' ')
[ "$names" = "Mgas HI B Mgas-HI Mgas-B HI-B " ] && ok "spectrum names: $names" || bad "spectrum names: $names"
awk -F, 'NR > 1 && ($2 <= 0 || $3 < 1 || $5 < 0 || $7 < 0) { bad = 1 } NR > 1 && $1 !~ /-/ && ($4 <= 0 || $6 <= 0) { bad = 1 }
    END { exit bad }' "$tmp/pk/pk.csv" && ok "k > 0, modes >= 1, std >= 0, auto-spectra > 0" || bad "pk.csv values out of range"
# the first shell of N = 32, L = 25: 4 modes at k = 2 pi / 25
awk -F, 'NR == 2 { exit !($3 == 4 && $2 > 0.2513 && $2 < 0.2514 * 1.21) }' "$tmp/pk/pk.csv" && ok "first shell: 4 modes at k ~ 2 pi / L" || bad "first shell: $(sed -n 2p "$tmp/pk/pk.csv")"
is_png "$tmp/pk/pk.png" && [ "$(png_size "$tmp/pk/pk.png")" = "1260 720" ] && ok "pk.png is a 1260 x 720 PNG" || bad "pk.png: $(png_size "$tmp/pk/pk.png")"
run 0 "cosmovae-pk, a set against itself" cosmovae-pk -q "$tmp/a.nc" "$tmp/a.nc" -o "$tmp/pk-self"
[ "$(grep -c '(all shells)' "$tmp/out")" -eq 6 ] && ok "a set agrees with itself at every shell" || bad "self-agreement"
run 0 "cosmovae-pk, one set, overdensity" cosmovae-pk -q --delta overdensity "$tmp/a.nc" -o "$tmp/pk1"
head -1 "$tmp/pk1/pk.csv" | grep -qx 'spectrum,k,nmodes,mean_a,std_a' && ok "one set: no _b columns" || bad "one-set header"
cmp -s "$tmp/pk/pk.csv" "$tmp/pk1/pk.csv" && bad "overdensity spectra equal log10 spectra" || ok "--delta changes the spectra"
# the default split: the test split of a set that has one (4 simulations:
# 15 test maps of 60), every map of a set without (2 simulations); --split
# all gives every map; the summary names the split of each set
cosmovae-mkfields -q -o "$tmp/f4.nc" --sims 4 --size 32 --seed 5
run 0 "cosmovae-pk, default split" cosmovae-pk -q "$tmp/f4.nc" "$tmp/b.nc" -o "$tmp/pk-def"
expect "A: .*f4.nc, 15 maps (test split, the default)" "default: A's test split"
expect "B: .*b.nc, 30 maps (all maps, the default: no test split)" "default: every map of a B without test maps"
run 0 "cosmovae-pk, --split test" cosmovae-pk -q --split test --split-b all "$tmp/f4.nc" "$tmp/b.nc" -o "$tmp/pk-test"
expect "A: .*f4.nc, 15 maps (test split)" "--split test named"
cmp -s "$tmp/pk-def/pk.csv" "$tmp/pk-test/pk.csv" && ok "the default equals --split test --split-b all" || bad "default split spectra differ from --split test"
run 0 "cosmovae-pk, --split all" cosmovae-pk -q --split all "$tmp/f4.nc" -o "$tmp/pk-all"
expect "A: .*f4.nc, 60 maps (all maps)" "--split all gives every map"
run 0 "cosmovae-pk, --split-b default on a set with test maps" cosmovae-pk -q --split all "$tmp/b.nc" "$tmp/f4.nc" -o "$tmp/pk-b"
expect "B: .*f4.nc, 15 maps (test split, the default)" "default: B's test split"

cosmovae-mkfields -q -o "$tmp/s16.nc" --sims 2 --size 16 --seed 4
cosmovae-mkfields -q -o "$tmp/one.nc" --sims 1 --size 32 --seed 3
cosmovae-import -q "$top_srcdir/data/cmd-npy-16" --fields Mgas,HI -o "$tmp/two.nc"
run 1 "cosmovae-pk, different map sizes" cosmovae-pk -q "$tmp/a.nc" "$tmp/s16.nc" -o "$tmp/bad1"
expect "a.nc and .*s16.nc: different map sizes (32 x 32 and 16 x 16)" "... names both files and sizes"
run 1 "cosmovae-pk, different fields" cosmovae-pk -q "$tmp/two.nc" "$tmp/s16.nc" -o "$tmp/bad2"
expect "different fields (Mgas,HI and Mgas,HI,B)" "... names the fields"
run 1 "cosmovae-pk, an empty split" cosmovae-pk -q --split test "$tmp/one.nc" -o "$tmp/bad3"
expect "one.nc: the test split has no maps" "... names the file and split"
run 2 "cosmovae-pk, a bad --delta" cosmovae-pk --delta log "$tmp/a.nc" -o "$tmp/bad4"
run 1 "cosmovae-pk, a missing file" cosmovae-pk -q "$tmp/none.nc" -o "$tmp/bad5"
expect "none.nc" "... names the file"
for d in bad1 bad2 bad3 bad4 bad5; do
    [ ! -e "$tmp/$d/pk.csv" ] && [ ! -e "$tmp/$d/pk.png" ] || bad "$d: output left behind"
done
ok "no output left by failed runs"

# ---- linear probe ----------------------------------------------------------------
mk="$top_builddir/tests/test-probe"
"$mk" --make-latent "$tmp/lat.nc" 1500 16
run 0 "cosmovae-probe" cosmovae-probe -q --epochs 60 "$tmp/lat.nc" -o "$tmp/probe.csv"
expect "R^2 (probe)" "the table is printed"
head -1 "$tmp/probe.csv" | grep -qx 'param,r2,r2_lstsq,r2_sd,r2_lo68,r2_hi68,r2_lstsq_sd,r2_lstsq_lo68,r2_lstsq_hi68,r2_ridge,r2_ridge_lo68,r2_ridge_hi68,ridge_alpha' \
    && ok "probe.csv header: the old columns first, then the bootstrap's, then the ridge's" || bad "probe.csv header: $(head -1 "$tmp/probe.csv")"
# 1500 maps of 15 a simulation: 6 test simulations, too few: a warning
expect "warning: .*lat.nc: the test split holds only 6 simulations (90 maps): R^2 is dominated by" "a warning for 6 test simulations"
expect "bootstrap over the 6 test simulations, 1000 resamples" "the bootstrap is described"
expect "Omega_m *linear *0\.[0-9]* \[0\.[0-9]*, [01]\.[0-9]*\]" "R^2 printed with its 68% interval"
awk -F, 'NR > 1 && !($4 > 0 && $5 <= $6 && $6 <= 1 && $7 > 0 && $8 <= $9 && $9 <= 1) { bad = 1 } END { exit bad }' "$tmp/probe.csv" \
    && ok "probe.csv: sd > 0 and lo68 <= hi68 <= 1 for both fits" || bad "probe.csv bootstrap columns: $(cat "$tmp/probe.csv")"
run 0 "cosmovae-probe --boot 0" cosmovae-probe -q --epochs 5 --boot 0 "$tmp/lat.nc" -o "$tmp/probe-nb.csv"
awk -F, 'NR > 1 && !($4 == "NaN" && $6 == "NaN" && $9 == "NaN" && $2 != "NaN") { bad = 1 } END { exit bad }' "$tmp/probe-nb.csv" \
    && ok "--boot 0: the bootstrap columns are NaN" || bad "--boot 0: $(cat "$tmp/probe-nb.csv")"
"$mk" --make-latent "$tmp/lat2400.nc" 2400 8
run 0 "cosmovae-probe, 10 test simulations" cosmovae-probe -q --epochs 5 "$tmp/lat2400.nc" -o "$tmp/probe10.csv"
expect "bootstrap over the 10 test simulations" "10 test simulations counted"
grep -q "warning" "$tmp/out" && bad "a warning for 10 test simulations: $(grep warning "$tmp/out")" || ok "no warning for 10 test simulations"
# an --all-groups-like file: D = 5000 over 600 maps, no closed form
"$mk" --make-latent "$tmp/lat-wide.nc" 600 5000
run 0 "cosmovae-probe, D = 5000" cosmovae-probe -q --epochs 3 "$tmp/lat-wide.nc" -o "$tmp/probe-wide.csv"
expect "closed form skipped: D = 5000 >= 540 train maps" "the closed form is skipped, and why"
expect "warning: .*lat-wide.nc: the test split holds only 2 simulations (30 maps)" "a warning for 2 test simulations"
expect "Omega_m *linear .* skipped" "the table says skipped"
awk -F, 'NR > 1 && !($3 == "NaN" && $7 == "NaN" && $2 != "NaN" && $5 != "NaN") { bad = 1 } END { exit bad || NR != 7 }' "$tmp/probe-wide.csv" \
    && ok "probe.csv: closed-form columns NaN, the probe's numbers present" || bad "wide probe.csv: $(cat "$tmp/probe-wide.csv")"
"$mk" --make-latent "$tmp/lat-one.nc" 300 8
run 0 "cosmovae-probe, one test simulation" cosmovae-probe -q --epochs 3 "$tmp/lat-one.nc" -o "$tmp/probe-one.csv"
expect "warning: .*lat-one.nc: the test split holds only 1 simulation (15 maps): R^2 compares maps of one simulation" \
    "a warning for 1 test simulation"
expect "no uncertainty: 0 of 1000 bootstrap resamples" "no interval from one simulation"
awk -F, 'NR > 1 && !(($2 == "0.000000" || $2 == "1.000000") && $4 == "NaN") { bad = 1 } END { exit bad }' "$tmp/probe-one.csv" \
    && ok "one test simulation: R^2 0 by convention (not a huge negative number), no interval" || bad "one simulation: $(cat "$tmp/probe-one.csv")"
run 0 "cosmovae-probe, a closed-form limit" cosmovae-probe -q --epochs 3 --lstsq-max-dim 8 "$tmp/lat.nc" -o "$tmp/probe-lim.csv"
expect "closed form skipped: D = 16 > 8" "--lstsq-max-dim"
[ "$(sed 1d "$tmp/probe.csv" | cut -d, -f1 | tr '\n' ' ')" = "Omega_m sigma_8 A_SN1 A_AGN1 A_SN2 A_AGN2 " ] && ok "six parameters" || bad "probe.csv parameters"
awk -F, '$1 == "Omega_m" { exit !($2 > 0.8 && $3 > 0.8 && $2 - $3 < 0.05 && $3 - $2 < 0.05) }' "$tmp/probe.csv" \
    && ok "Omega_m: probe and least-squares R^2 > 0.8 and within 0.05" || bad "Omega_m R^2: $(grep Omega_m "$tmp/probe.csv")"
grep -q 'A_SN1 *log10' "$tmp/out" && ok "A parameters in log10 by default" || bad "A_SN1 target"
run 0 "cosmovae-probe --linear" cosmovae-probe -q --linear --epochs 5 "$tmp/lat.nc" -o "$tmp/probe-lin.csv"
grep -q 'A_SN1 *linear' "$tmp/out" && ok "--linear regresses A linearly" || bad "--linear"
for kind in noparams nosplit novalid; do "$mk" --make-latent "$tmp/$kind.nc" 300 8 "$kind"; done
run 1 "cosmovae-probe, no params" cosmovae-probe -q "$tmp/noparams.nc" -o "$tmp/p1.csv"
expect "noparams.nc: no variable params(map, param)" "... names the file and variable"
run 1 "cosmovae-probe, no split" cosmovae-probe -q "$tmp/nosplit.nc" -o "$tmp/p2.csv"
expect "nosplit.nc: no variable split(map)" "... names the file and variable"
run 1 "cosmovae-probe, an empty valid split" cosmovae-probe -q "$tmp/novalid.nc" -o "$tmp/p3.csv"
expect "novalid.nc: the valid split is empty" "... names the file and split"
[ ! -e "$tmp/p1.csv" ] && [ ! -e "$tmp/p2.csv" ] && [ ! -e "$tmp/p3.csv" ] && ok "no probe.csv left by failed runs" || bad "output left behind"

# ---- classical baseline: cosmovae-features, cosmovae-probe --baseline ---------------
tiny="$tmp/s16.nc"
cosmovae-mkfields -q -o "$tiny" --sims 20 --size 16 --seed 3
run 0 "cosmovae-features" cosmovae-features -q "$tiny" -o "$tmp/feat.nc"
nf=$(cosmovae-features --names "$tiny" | wc -l)
if command -v ncdump >/dev/null 2>&1; then
    ncdump -h "$tmp/feat.nc" > "$tmp/feat.cdl"
    grep -q "dim = $nf ;" "$tmp/feat.cdl" && grep -q 'cv_format = "cosmovae-latent"' "$tmp/feat.cdl" \
        && grep -q 'map_height = 16' "$tmp/feat.cdl" && grep -q 'box_size = 25' "$tmp/feat.cdl" && grep -q 'classical: log10 P' "$tmp/feat.cdl" \
        && ok "features file: a latent file of $nf numbers per map with the maps' geometry" || bad "features file: $(cat "$tmp/feat.cdl")"
fi
cosmovae-features --names "$tiny" | grep -q '^0 logP Mgas k0.25-' && ok "--names lists the features" || bad "--names"
run 0 "cosmovae-features --coarse 4" cosmovae-features -q "$tiny" --coarse 4 -o "$tmp/thumb.nc"
[ "$(cosmovae-features --names --coarse 4 "$tiny" | wc -l)" -eq 48 ] && cosmovae-features --names --coarse 4 "$tiny" | sed -n 48p | grep -q '^47 B block 3,3$' \
    && ok "--coarse 4 --names: 48 numbers, the last 'B block 3,3'" || bad "--coarse --names: $(cosmovae-features --names --coarse 4 "$tiny" | tail -1)"
if command -v ncdump >/dev/null 2>&1; then
    ncdump -h "$tmp/thumb.nc" | grep -q 'dim = 48 ;' && ncdump -h "$tmp/thumb.nc" | grep -q 'thumbnail: mean of each' \
        && ok "thumbnail file: a latent file of 48 numbers per map" || bad "thumb.nc: $(ncdump -h "$tmp/thumb.nc")"
fi
run 1 "--coarse 3 on maps of 16" cosmovae-features -q "$tiny" --coarse 3 -o "$tmp/thumb3.nc"
expect "--coarse 3: maps of .*s16.nc are 16 x 16, which do not split into 3 x 3 equal blocks" "... names the option, file and sizes"
run 2 "--coarse with --bins" cosmovae-features -q "$tiny" --coarse 4 --bins 4 -o "$tmp/thumb4.nc"
expect "--coarse and --bins" "... names both options"
[ ! -e "$tmp/thumb3.nc" ] && [ ! -e "$tmp/thumb4.nc" ] && ok "no thumbnail left by refused runs" || bad "thumbnail left behind"
run 0 "cosmovae-probe --baseline FEATURES" cosmovae-probe -q --epochs 20 --boot 20 "$tmp/feat.nc" --baseline "$tmp/feat.nc" -o "$tmp/pb.csv"
expect "R^2 baseline (probe)" "the baseline column is printed"
head -1 "$tmp/pb.csv" | grep -q ',base_r2,base_r2_lstsq,base_r2_lo68,base_r2_hi68,r2_ridge,r2_ridge_lo68,r2_ridge_hi68,ridge_alpha,base_r2_ridge,base_r2_ridge_lo68,base_r2_ridge_hi68,base_ridge_alpha$' && ok "probe.csv: baseline columns" || bad "pb.csv header: $(head -1 "$tmp/pb.csv")"
awk -F, 'NR > 1 && ($2 != $10 || $3 != $11) { bad = 1 } END { exit bad || NR != 7 }' "$tmp/pb.csv" \
    && ok "the same features as latents and baseline: the same R^2" || bad "pb.csv: $(cat "$tmp/pb.csv")"
run 0 "cosmovae-probe --baseline DATA.nc (features computed)" cosmovae-probe -q --epochs 20 --boot 20 "$tmp/feat.nc" --baseline "$tiny" -o "$tmp/pb2.csv"
cmp -s "$tmp/pb.csv" "$tmp/pb2.csv" && ok "a dataset as baseline gives the features file's numbers" || bad "pb2.csv differs: $(cat "$tmp/pb2.csv")"
run 1 "--baseline on maps of another size" cosmovae-probe -q --epochs 2 "$tmp/feat.nc" --baseline "$top_srcdir/data/cmdsynth-64.nc" -o "$tmp/pb3.csv"
expect "baseline .*cmdsynth-64.nc: maps of 64 x 64 pixels, but .*feat.nc codes maps of 16 x 16" "... names both files and sizes"
cosmovae-mkfields -q -o "$tmp/other16.nc" --sims 20 --size 16 --seed 9
run 1 "--baseline on other maps" cosmovae-probe -q --epochs 2 "$tmp/feat.nc" --baseline "$tmp/other16.nc" -o "$tmp/pb4.csv"
expect "baseline .*other16.nc: map 0 has another simulation, split or parameters" "... names the map"
run 1 "--baseline: not a NetCDF file" cosmovae-probe -q --epochs 2 "$tmp/feat.nc" --baseline "$tmp/pb.csv" -o "$tmp/pb5.csv"
expect "pb.csv: cannot open" "... names the file"
run 1 "cosmovae-features on a latent file" cosmovae-features -q "$tmp/feat.nc" -o "$tmp/f2.nc"
expect "feat.nc: cv_format is 'cosmovae-latent', expected 'cosmovae-dataset'" "... says what the file is"
[ ! -e "$tmp/pb3.csv" ] && [ ! -e "$tmp/pb4.csv" ] && [ ! -e "$tmp/pb5.csv" ] && [ ! -e "$tmp/f2.nc" ] \
    && ok "no output left by failed baseline runs" || bad "output left behind"

# ---- t-SNE -------------------------------------------------------------------------
"$mk" --make-latent "$tmp/lat600.nc" 600 12
run 0 "cosmovae-tsne" cosmovae-tsne -q --iter 300 --trust "$tmp/lat600.nc" -o "$tmp/tsne"
expect "Barnes-Hut, perplexity 30" "Barnes-Hut for 600 maps"
expect "trustworthiness (k = 5): 0\.[6-9]" "trustworthiness printed and above 0.6"
[ -s "$tmp/tsne/tsne.nc" ] && ok "tsne.nc written" || bad "tsne.nc"
[ "$(($(wc -l < "$tmp/tsne/tsne.csv") - 1))" -eq 600 ] && head -1 "$tmp/tsne/tsne.csv" | grep -q '^map,x,y,sim,split,Omega_m,' \
    && ok "tsne.csv: 600 rows, map,x,y,sim,split,params" || bad "tsne.csv"
is_png "$tmp/tsne/tsne.png" && [ "$(png_size "$tmp/tsne/tsne.png")" = "1380 800" ] && ok "tsne.png is a 1380 x 800 PNG (3 x 2 panels)" || bad "tsne.png: $(png_size "$tmp/tsne/tsne.png")"
if command -v ncdump >/dev/null 2>&1; then
    ncdump -h "$tmp/tsne/tsne.nc" | grep -q 'float latent(map, dim)' && ncdump -h "$tmp/tsne/tsne.nc" | grep -q 'dim = 2' \
        && ok "tsne.nc: latent(map, dim = 2)" || bad "tsne.nc layout"
fi
run 0 "cosmovae-tsne, test split, exact" cosmovae-tsne -q --split test --perplexity 5 --iter 200 "$tmp/lat600.nc" -o "$tmp/tsne-t"
expect "exact" "exact method for a small split"
run 1 "cosmovae-tsne, no params" cosmovae-tsne -q "$tmp/noparams.nc" -o "$tmp/t1"
expect "noparams.nc: no variable params" "... names the file and variable"
run 1 "cosmovae-tsne, split asked of a file without one" cosmovae-tsne -q --split test "$tmp/nosplit.nc" -o "$tmp/t2"
expect "nosplit.nc: no variable split" "... names the file and variable"
run 1 "cosmovae-tsne, perplexity too large" cosmovae-tsne -q --split valid --perplexity 30 "$tmp/lat600.nc" -o "$tmp/t3"
expect "perplexity 30" "... says what to lower"
[ ! -e "$tmp/t1/tsne.png" ] && [ ! -e "$tmp/t3/tsne.nc" ] && ok "no t-SNE output left by failed runs" || bad "output left behind"

[ "$fail" -eq 0 ] && echo "all passed" || echo "some checks failed"
exit "$fail"
