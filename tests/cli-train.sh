#!/bin/sh
# cli-train.sh -- the model programs end to end on the tiny fixture:
# cosmovae-train (run directory, resume equals an uninterrupted run,
# Ctrl-C writes a checkpoint), cosmovae-encode, cosmovae-sample, and their
# answers to bad input (exit codes, messages naming the culprit, no output
# left behind).
. "$(dirname "$0")/setup.sh"
bin=$top_builddir/src
data=$top_srcdir/data/tiny-16.nc
cfg=$top_srcdir/tests/data/tiny16.cfg
export CV_CACHE_DIR="$tmp/cache"
expect_status() {   # expect_status CODE PATTERN CMD...
    code=$1; pat=$2; shift 2
    set +e; "$@" >"$tmp/out" 2>"$tmp/err"; got=$?; set -e
    [ "$got" -eq "$code" ] || { cat "$tmp/err" >&2; fail "$* exited $got, expected $code"; }
    [ -z "$pat" ] || grep -q -- "$pat" "$tmp/err" || { cat "$tmp/err" >&2; fail "$*: no '$pat' in the message"; }
}

# --help / --version
for p in cosmovae-train cosmovae-encode cosmovae-sample; do
    "$bin/$p" --help | grep -q Usage || fail "$p --help"
    "$bin/$p" --version | grep -q cosmovae || fail "$p --version"
done

# a short run
"$bin/cosmovae-train" "$data" --config "$cfg" --steps 6 --seed 3 -o "$tmp/run" -q
for f in checkpoint.nc config.ini train.csv valid.csv samples.png; do
    [ -s "$tmp/run/$f" ] || fail "run directory lacks $f"
done
[ "$(wc -l < "$tmp/run/train.csv")" -eq 7 ] || fail "train.csv should have a header and 6 rows"
head -1 "$tmp/run/train.csv" | grep -q '^step,epoch,loss,recon,kl,gnorm,skipped' || fail "train.csv header"
if command -v ncdump >/dev/null 2>&1; then
    ncdump -h "$tmp/run/checkpoint.nc" | grep -q 'cv_format = "cosmovae-checkpoint"' || fail "checkpoint format attribute"
    ncdump -h "$tmp/run/checkpoint.nc" | grep -q 'float enc.in.w' || fail "checkpoint holds named parameters"
fi
grep -q '^\[data\]' "$tmp/run/config.ini" || fail "config.ini carries the data normalisation"

# resume equals an uninterrupted run
"$bin/cosmovae-train" "$data" --config "$cfg" --steps 3 --seed 3 -o "$tmp/half" -q
"$bin/cosmovae-train" "$data" --steps 6 --resume -o "$tmp/half" -q
cut -d, -f1-8 "$tmp/run/train.csv" > "$tmp/a.csv"
cut -d, -f1-8 "$tmp/half/train.csv" > "$tmp/b.csv"
cmp -s "$tmp/a.csv" "$tmp/b.csv" || { diff "$tmp/a.csv" "$tmp/b.csv" >&2; fail "resumed run's losses differ"; }
if command -v ncdump >/dev/null 2>&1; then
    ncdump -p 9,17 "$tmp/run/checkpoint.nc" | sed 1d > "$tmp/a.cdl"
    ncdump -p 9,17 "$tmp/half/checkpoint.nc" | sed 1d > "$tmp/b.cdl"
    cmp -s "$tmp/a.cdl" "$tmp/b.cdl" || fail "resumed run's checkpoint differs from the uninterrupted one"
fi

# Ctrl-C: a checkpoint and status 130, and the run resumes from it
"$bin/cosmovae-train" "$data" --config "$cfg" --steps 100000 -o "$tmp/int" -q --checkpoint-every 1000000 &
pid=$!
i=0
while [ ! -s "$tmp/int/train.csv" ] || [ "$(wc -l < "$tmp/int/train.csv")" -lt 3 ]; do
    sleep 0.2; i=$((i + 1)); [ $i -lt 600 ] || { kill $pid; fail "training made no progress"; }
done
kill -INT $pid
set +e; wait $pid; st=$?; set -e
[ "$st" -eq 130 ] || fail "interrupted run exited $st, expected 130"
[ -s "$tmp/int/checkpoint.nc" ] || fail "no checkpoint after Ctrl-C"
"$bin/cosmovae-train" "$data" --resume --steps 3 -o "$tmp/int" -q 2>/dev/null || true
[ -s "$tmp/int/checkpoint.nc" ] || fail "resume after Ctrl-C"

# encode: 256 numbers per map, params/sim/split carried over
"$bin/cosmovae-encode" "$tmp/run" "$data" -o "$tmp/lat.nc" -q
if command -v ncdump >/dev/null 2>&1; then
    ncdump -h "$tmp/lat.nc" > "$tmp/lat.cdl"
    grep -q 'dim = 256' "$tmp/lat.cdl" || fail "latent dimension is not 256"
    grep -q 'map = 45' "$tmp/lat.cdl" || fail "latent file has 45 maps"
    grep -q ':map_height = 16' "$tmp/lat.cdl" && grep -q ':map_width = 16' "$tmp/lat.cdl" && grep -q ':box_size = 25' "$tmp/lat.cdl" \
        || fail "latent file does not record the maps' size and box"
    for v in 'float latent(map, dim)' 'double params(map, param)' 'int sim(map)' 'byte split(map)'; do
        grep -q "$v" "$tmp/lat.cdl" || fail "latent file lacks $v"
    done
fi
# the diagnosis of the code: KL and active units per group, on the valid maps
"$bin/cosmovae-encode" "$tmp/run" "$data" -o "$tmp/lat-d.nc" 2> "$tmp/diag"
grep -q 'latent code over 15 maps' "$tmp/diag" && grep -q '^cosmovae-encode:   0      4x4          256 ' "$tmp/diag" \
    && grep -q '<- the code (probed)' "$tmp/diag" && [ "$(grep -c '^cosmovae-encode:   [0-9] ' "$tmp/diag")" -eq 3 ] \
    || { cat "$tmp/diag" >&2; fail "encode: no per-group KL / active-unit table"; }
"$bin/cosmovae-encode" "$tmp/run" "$data" -o "$tmp/lat-nd.nc" --no-diag 2> "$tmp/diag2"
grep -q 'latent code over' "$tmp/diag2" && fail "encode --no-diag still diagnoses"
"$bin/cosmovae-train" "$data" --config "$cfg" --steps 2 --seed 3 -o "$tmp/run-d" 2> "$tmp/diag3"
grep -q '^cosmovae-train: latent code over 15 maps' "$tmp/diag3" || { cat "$tmp/diag3" >&2; fail "train: no diagnosis at the end"; }
# the pooled code: 2 x zdim numbers per group
"$bin/cosmovae-encode" "$tmp/run" "$data" -o "$tmp/lat-pool.nc" --pool --no-diag -q
"$bin/cosmovae-encode" "$tmp/run" "$data" -o "$tmp/lat-poolall.nc" --pool --all-groups --no-diag -q
if command -v ncdump >/dev/null 2>&1; then
    ncdump -h "$tmp/lat-pool.nc" | grep -q 'dim = 32 ;' || fail "--pool: not 32 numbers a map"
    ncdump -h "$tmp/lat-poolall.nc" | grep -q 'dim = 96 ;' || fail "--pool --all-groups: not 3 x 32 numbers a map"
fi
"$bin/cosmovae-encode" "$tmp/run" "$data" -o "$tmp/lat-all.nc" --all-groups -q
[ -s "$tmp/lat-all.nc" ] || fail "--all-groups"

# sample: dataset + figures
"$bin/cosmovae-sample" "$tmp/run" -n 5 --batch 2 -o "$tmp/samples" --real "$data" --png-maps -q
for f in samples.nc maps.png figure2.png png/sample-0004-B.png; do
    [ -s "$tmp/samples/$f" ] || fail "samples lack $f"
done
[ "$(od -An -tx1 -N8 "$tmp/samples/maps.png" | tr -d ' ')" = 89504e470d0a1a0a ] || fail "maps.png is not a PNG"
"$bin/cosmovae-encode" "$tmp/run" "$tmp/samples/samples.nc" -o "$tmp/lat-gen.nc" -q || fail "generated maps do not encode"
# per-resolution temperature: every resolution at T is -t T, bit for bit;
# one resolution changed changes the maps; a resolution without latents
# or a malformed value is a usage error that writes nothing
fields() { ncdump -v fields "$1" | sed -n '/^data:/,$p'; }
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/st" -t 0.5 -q
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/sa" --temperature-at 4=0.5 --temperature-at 8=0.5 --temperature-at 16=0.5 -q
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/s4" -t 0.5 --temperature-at 4=1.5 -q
fields "$tmp/st/samples.nc" > "$tmp/f-t"; fields "$tmp/sa/samples.nc" > "$tmp/f-a"; fields "$tmp/s4/samples.nc" > "$tmp/f-4"
cmp -s "$tmp/f-t" "$tmp/f-a" || fail "--temperature-at 0.5 at every resolution differs from -t 0.5"
! cmp -s "$tmp/f-t" "$tmp/f-4" || fail "--temperature-at 4=1.5 did not change the maps"
expect_status 2 "--temperature-at 3=1: no latent groups at resolution 3: the decoder's are 4, 8, 16" \
    "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --temperature-at 3=1
expect_status 2 "--temperature-at '4'" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --temperature-at 4
expect_status 2 "--temperature-at '4=-1'" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --temperature-at 4=-1
[ ! -e "$tmp/sbad" ] || fail "a refused --temperature-at left an output directory"
# a top prior fitted to the aggregate posterior of the data's train split:
# reported, reproducible, not the learned prior's maps; the top
# resolution's temperature beside it, or maps of another size, refused
# with nothing written
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/stp" --top-prior "$data" 2> "$tmp/stp.err"
grep -q "4x4 group from its aggregate posterior on [0-9]* train maps" "$tmp/stp.err" ||
    { cat "$tmp/stp.err" >&2; fail "--top-prior: the fit is not reported"; }
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/stp2" --top-prior "$data" --top-prior-maps 1000 -q
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/s1" -q
fields "$tmp/stp/samples.nc" > "$tmp/f-tp"; fields "$tmp/stp2/samples.nc" > "$tmp/f-tp2"; fields "$tmp/s1/samples.nc" > "$tmp/f-1"
cmp -s "$tmp/f-tp" "$tmp/f-tp2" || fail "--top-prior: the same seed gave other maps"
! cmp -s "$tmp/f-tp" "$tmp/f-1" || fail "--top-prior: the maps are the learned prior's"
expect_status 2 "--temperature-at 4=1.*drawn from --top-prior" \
    "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --top-prior "$data" --temperature-at 4=1
expect_status 1 "16x16\|64x64" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --top-prior "$top_srcdir/data/cmdsynth-64.nc"
expect_status 2 "--top-prior-maps" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --top-prior "$data" --top-prior-maps 1
[ ! -e "$tmp/sbad" ] || fail "a refused --top-prior left an output directory"
# temperatures calibrated to the valid maps' power: one row per latent
# resolution in calibration.csv, the same maps again from the same
# command; beside -t, on maps of another size or with too few maps a
# trial: refused, nothing written
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/sc" --calibrate "$data" --calibrate-maps 32 2> "$tmp/sc.err" ||
    { cat "$tmp/sc.err" >&2; fail "--calibrate failed"; }
grep -q "temperatures calibrated on the valid maps of" "$tmp/sc.err" || { cat "$tmp/sc.err" >&2; fail "--calibrate: not reported"; }
[ "$(head -1 "$tmp/sc/calibration.csv")" = "res,shell_lo,shell_hi,temperature,ratio_before,ratio_after,at_bound" ] &&
    [ "$(cut -d, -f1 "$tmp/sc/calibration.csv" | tail -n +2 | tr '\n' ' ')" = "4 8 16 " ] ||
    fail "calibration.csv: $(cat "$tmp/sc/calibration.csv")"
"$bin/cosmovae-sample" "$tmp/run" -n 3 -o "$tmp/sc2" --calibrate "$data" --calibrate-maps 32 -q
fields "$tmp/sc/samples.nc" > "$tmp/f-c"; fields "$tmp/sc2/samples.nc" > "$tmp/f-c2"
cmp -s "$tmp/f-c" "$tmp/f-c2" || fail "--calibrate: the same command gave other maps"
expect_status 2 "--calibrate chooses the temperatures" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --calibrate "$data" -t 0.8
expect_status 1 "16x16\|64x64" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --calibrate "$top_srcdir/data/cmdsynth-64.nc"
expect_status 2 "--calibrate-maps" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --calibrate "$data" --calibrate-maps 1
expect_status 2 "--calibrate-fit .sideways.: expected bands or shells" "$bin/cosmovae-sample" "$tmp/run" -n 2 -o "$tmp/sbad" --calibrate "$data" --calibrate-fit sideways
[ ! -e "$tmp/sbad" ] || fail "a refused --calibrate left an output directory"

# bad input
expect_status 2 "steps" "$bin/cosmovae-train" "$data" --steps abc -o "$tmp/x"
expect_status 2 "unrecognized" "$bin/cosmovae-train" --frobnicate
expect_status 2 "preset" "$bin/cosmovae-train" --preset huge -o "$tmp/x"
# decay factors must lie in [0, 1), as the float the device uses: a clear
# message naming the key and the value, exit 1 like every bad [train] value
# (a bad --ema option is a usage error), and no run directory
for kv in ema=1 alpha=1 momentum=1.0 beta1=1 beta2=1 ema=-0.5 momentum=1.5; do
    key=${kv%%=*}; val=${kv#*=}
    expect_status 1 "\[train\] $key = .* is out of range \[0, 1)" \
        "$bin/cosmovae-train" "$data" --config "$cfg" --set "train.$kv" --steps 1 -o "$tmp/frac"
    grep -q -- "--set: \[train\] $key = $val" "$tmp/err" || grep -q -- "--set: \[train\] $key = $(printf %g "$val")" "$tmp/err" ||
        { cat "$tmp/err" >&2; fail "train.$kv: the message does not name the value"; }
    [ ! -e "$tmp/frac" ] || fail "train.$kv: a refused configuration left $tmp/frac"
done
expect_status 1 "beta2 = 0.9999999999 is 1 in single precision" \
    "$bin/cosmovae-train" "$data" --config "$cfg" --set train.beta2=0.9999999999 --steps 1 -o "$tmp/frac"
{ cat "$cfg"; printf '\n[train]\nema = 1\n'; } > "$tmp/ema1.cfg"
expect_status 1 "ema1.cfg.*\[train\] ema = 1 is out of range" "$bin/cosmovae-train" "$data" --config "$tmp/ema1.cfg" -o "$tmp/frac"
expect_status 2 "--ema" "$bin/cosmovae-train" "$data" --config "$cfg" --ema 1 -o "$tmp/frac"
[ ! -e "$tmp/frac" ] || fail "a refused decay factor left a run directory"
printf '[model]\nsize = 16\nwidht = 8\n' > "$tmp/bad.cfg"
expect_status 1 "widht" "$bin/cosmovae-train" "$data" --config "$tmp/bad.cfg" -o "$tmp/x"
expect_status 1 "16x16" "$bin/cosmovae-train" "$data" -o "$tmp/x"          # small preset wants 64x64
[ ! -e "$tmp/x/checkpoint.nc" ] || fail "a failed start left a checkpoint"
mkdir "$tmp/ro"; chmod 555 "$tmp/ro"
if [ "$(id -u)" != 0 ]; then
    expect_status 1 "writable" "$bin/cosmovae-train" "$data" --config "$cfg" -o "$tmp/ro/run"
fi
expect_status 1 "no such\|cannot open\|No such" "$bin/cosmovae-train" "$tmp/missing.nc" --config "$cfg" -o "$tmp/x"
expect_status 1 "checkpoint" "$bin/cosmovae-train" --resume -o "$tmp/nothing"
expect_status 1 "16x16\|64x64" "$bin/cosmovae-encode" "$tmp/run" "$top_srcdir/data/cmdsynth-64.nc" -o "$tmp/y.nc"
[ ! -e "$tmp/y.nc" ] || fail "a failed encode left output"
expect_status 2 "-o" "$bin/cosmovae-sample" "$tmp/run"
expect_status 1 "checkpoint" "$bin/cosmovae-sample" "$tmp/nothing" -o "$tmp/s2"
# recipes: paper is the defaults exactly (every loss, every KL, every
# gradient norm; only the timing column may differ), recorded in the run's
# configuration; budget's KL warm-up and free bits act; bad names and
# contradictions refused with nothing written
grep -v '^lr\|^\[train\]' "$cfg" > "$tmp/nolr.cfg"
"$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --steps 8 --seed 3 -o "$tmp/rdef" -q 2>/dev/null
"$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --steps 8 --seed 3 -o "$tmp/rpap" -q --recipe paper 2>/dev/null
cut -d, -f1-8,10- "$tmp/rdef/train.csv" > "$tmp/rdef.csv"
cut -d, -f1-8,10- "$tmp/rpap/train.csv" > "$tmp/rpap.csv"
cmp -s "$tmp/rdef.csv" "$tmp/rpap.csv" || fail "--recipe paper does not train as the defaults do"
grep -q '^recipe = paper' "$tmp/rpap/config.ini" || fail "the run's configuration does not record the recipe"
grep -q '^recipe' "$tmp/rdef/config.ini" && fail "a run without --recipe records one"
"$bin/cosmovae-train" "$data" --resume --steps 10 -o "$tmp/rpap" -q 2>/dev/null || fail "resume of a run with a recipe"
"$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --steps 8 --seed 3 -o "$tmp/rbud" -q --recipe budget 2>/dev/null
grep -q '^optimizer = adam' "$tmp/rbud/config.ini" && grep -q '^recipe = budget' "$tmp/rbud/config.ini" \
    || fail "--recipe budget: its keys are not in the configuration"
cut -d, -f1-8,10- "$tmp/rbud/train.csv" > "$tmp/rbud.csv"
cmp -s "$tmp/rdef.csv" "$tmp/rbud.csv" && fail "--recipe budget trains as the defaults do"
# budget sets the decoder layout ([model] latent_skip_top) and 2 free
# nats; budget-v1 is the same [train] keys with 1 and without the layout,
# so budget-v1 plus those two keys trains exactly as budget does
grep -q '^latent_skip_top = 1' "$tmp/rbud/config.ini" || fail "--recipe budget: [model] latent_skip_top not in the configuration"
"$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --steps 8 --seed 3 -o "$tmp/rbv1" -q --recipe budget-v1 2>/dev/null
grep -q '^latent_skip_top' "$tmp/rbv1/config.ini" && fail "--recipe budget-v1 sets the decoder layout"
grep -q '^recipe = budget-v1' "$tmp/rbv1/config.ini" || fail "--recipe budget-v1 not recorded"
"$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --steps 8 --seed 3 -o "$tmp/rbv1l" -q \
    --set train.optimizer=adam --set train.lr=5e-4 --set train.weight_decay=0 --set train.batch=4 --set train.ema=0.999 \
    --set train.skip_factor=-1 --set train.free_bits=2 --set train.free_bits_max_res=4 --set model.latent_skip_top=1 \
    2>/dev/null
cut -d, -f1-8,10- "$tmp/rbv1l/train.csv" > "$tmp/rbv1l.csv"
cmp -s "$tmp/rbud.csv" "$tmp/rbv1l.csv" || fail "budget's keys spelled out do not train as budget does"
"$bin/cosmovae-train" "$data" --resume --steps 10 -o "$tmp/rbud" -q 2>/dev/null || fail "resume of a budget run"
expect_status 2 "recipe budget sets \[model\] latent_skip_top = 1, but --set sets it to 0" \
    "$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --recipe budget --set model.latent_skip_top=0 -o "$tmp/rx"
expect_status 1 "latent_skip_top = 1 and --set: latent_max_res = 8 say the same thing two ways" \
    "$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --recipe budget --set model.latent_max_res=8 -o "$tmp/rx"
expect_status 2 "unknown recipe 'fast' (paper, budget or budget-v1)" "$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --recipe fast -o "$tmp/rx"
expect_status 2 "recipe budget sets \[train\] lr = 5e-4, but --lr sets it to 0.01" \
    "$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --recipe budget --lr 0.01 -o "$tmp/rx"
expect_status 2 "recipe paper sets \[train\] lr = 2e-5, but .*tiny16.cfg:[0-9]* sets it to 1e-3" \
    "$bin/cosmovae-train" "$data" --config "$cfg" --recipe paper -o "$tmp/rx"
expect_status 2 "free_bits = 2, but --set sets it to 0.5" \
    "$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --recipe budget --set train.free_bits=0.5 -o "$tmp/rx"
expect_status 2 "a recipe is chosen with --recipe" "$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --set train.recipe=paper -o "$tmp/rx"
expect_status 2 "drop.*--recipe" "$bin/cosmovae-train" --resume -o "$tmp/rpap" --recipe paper
[ ! -e "$tmp/rx" ] || fail "a refused recipe left a run directory"
"$bin/cosmovae-train" "$data" --config "$tmp/nolr.cfg" --recipe paper --lr 2e-5 --steps 1 -o "$tmp/rsame" -q 2>/dev/null \
    || fail "an option equal to the recipe's value is refused"
# a run from before recipes (no recipe key in its configuration) resumes
"$bin/cosmovae-train" "$data" --resume --steps 10 -o "$tmp/rdef" -q 2>/dev/null || fail "resume of a run without a recipe"
# a time limit without a step target: progress every 10 s on a pipe, not every step
"$bin/cosmovae-train" "$data" --config "$cfg" --time-limit 3 -o "$tmp/rt" 2> "$tmp/prog"
n=$(grep -c 'training: [0-9]* steps' "$tmp/prog" || true)
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || { head -5 "$tmp/prog" >&2; fail "$n progress lines in 3 s on a pipe"; }
grep -q 'training: [0-9]*/0 steps' "$tmp/prog" && fail "progress shows a total of 0 steps"
echo "cli-train: all checks passed"
