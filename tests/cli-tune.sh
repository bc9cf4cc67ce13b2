#!/bin/sh
# cli-tune.sh -- cosmovae-info --tune: measures on the device, writes the
# wisdom file into the cache directory, and later runs load it (the listing
# shows it); a corrupt wisdom file is ignored with a warning naming the
# file, never an error; usage errors.
. "$(dirname "$0")/setup.sh"
bin=$top_builddir/src/cosmovae-info
export CV_CACHE_DIR="$tmp/cache"
unset CV_NO_WISDOM || true

"$bin" --help | grep -q -- '--tune' || fail "--help lacks --tune"
set +e; "$bin" --quick 2> "$tmp/err"; st=$?; set -e
[ "$st" -eq 2 ] || fail "--quick without --tune exited $st, expected 2"
grep -q -- '--tune' "$tmp/err" || fail "usage message"

# before: the table
"$bin" > "$tmp/list0"
grep -q 'tuning: *table entry' "$tmp/list0" || { cat "$tmp/list0" >&2; fail "listing lacks the table entry"; }

# --tune --quick: measurements, a wisdom file, the proof that a new context loads it
"$bin" --tune --quick > "$tmp/tune" 2> "$tmp/tune.err" || { cat "$tmp/tune.err" >&2; fail "--tune failed"; }
grep -q 'forward' "$tmp/tune" && grep -q 'choice' "$tmp/tune" || fail "--tune printed no measurements"
w=$(ls "$tmp"/cache/wisdom-*.txt 2>/dev/null | head -1)
[ -n "$w" ] || fail "no wisdom file in the cache directory"
head -1 "$w" | grep -q '^cosmovae-wisdom 1$' || fail "wisdom header"
grep -q '^conv_rule = any \* 0 0 0 ' "$w" || fail "wisdom lacks the catch-all rule"
grep -q 'loads it' "$tmp/tune" || fail "a new context does not load the wisdom"
ls "$tmp"/cache | grep -q 'tmp' && fail "a temporary file was left behind"

# later runs: the listing names the wisdom file
"$bin" > "$tmp/list1"
grep -q "tuning: *wisdom $w" "$tmp/list1" || { cat "$tmp/list1" >&2; fail "listing does not show the wisdom"; }
"$bin" --kernels > /dev/null 2> "$tmp/err" || fail "--kernels with wisdom"
[ -s "$tmp/err" ] && { cat "$tmp/err" >&2; fail "valid wisdom produced a warning"; }

# -o: written elsewhere, the cache's untouched
"$bin" --tune --quick -o "$tmp/other.txt" > /dev/null 2>&1 || fail "--tune -o"
head -1 "$tmp/other.txt" | grep -q '^cosmovae-wisdom 1$' || fail "-o file"

# a corrupt wisdom file: ignored with a warning naming the file and line; exit 0
printf 'cosmovae-wisdom 1\ndevice = %s\nconv_v = 7\n' "$(sed -n 's/^device = //p' "$w")" > "$w"
"$bin" --kernels > /dev/null 2> "$tmp/err" || fail "a corrupt wisdom file made --kernels fail"
grep -q "warning: $w:3: conv_v = 7" "$tmp/err" || { cat "$tmp/err" >&2; fail "corrupt wisdom warning"; }
"$bin" > "$tmp/list2"
grep -q "wisdom ignored: $w:3" "$tmp/list2" || { cat "$tmp/list2" >&2; fail "listing does not report the ignored wisdom"; }
echo "cli-tune: all checks passed"
