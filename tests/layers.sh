#!/bin/sh
# layers.sh -- the folders of src/ are layers: a file may include headers
# of its own folder and of the folders below it, never of one above.  The
# order is written once, here (doc/architecture.md explains it):
LAYERS="runtime ops graph dataset model analysis check prog"
# Every project include names its folder ("runtime/cv_device.h"); a bare
# name, an unknown folder or a folder not in LAYERS fails too, so a new
# folder has to be placed in the order before it can be used.
# The script checks itself first on a made-up tree that breaks each rule.
set -u
srcdir=${top_srcdir:-.}/src

rank() {   # rank of a folder in LAYERS, or nothing
    r=0
    for l in $LAYERS; do
        [ "$l" = "$1" ] && { echo $r; return; }
        r=$((r + 1))
    done
}

# check TREE: print one line per violation; exit status 1 if any
check() {
    tree=$1 bad=0
    for dir in "$tree"/*/; do
        d=$(basename "$dir")
        rd=$(rank "$d")
        if [ -z "$rd" ]; then
            echo "src/$d/: a folder that is not in the layer order (tests/layers.sh LAYERS)"; bad=1; continue
        fi
        for f in "$dir"*.c "$dir"*.h; do
            [ -f "$f" ] || continue
            case $f in */cv_cl_sources.c) continue;; esac   # generated
            # '#include "x"' lines with their numbers
            out=$(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
                sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1 \2/') || true
            [ -n "$out" ] || continue
            while read -r line inc; do
                case $inc in
                config.h|../../cl/*) continue;;            # configure's header; kernel sources
                */*) ;;
                *) echo "src/$d/$(basename "$f"):$line: #include \"$inc\" names no folder"; bad=1; continue;;
                esac
                to=${inc%%/*}
                rt=$(rank "$to")
                if [ -z "$rt" ]; then
                    echo "src/$d/$(basename "$f"):$line: #include \"$inc\": no layer '$to'"; bad=1
                elif [ "$rt" -gt "$rd" ]; then
                    echo "src/$d/$(basename "$f"):$line: #include \"$inc\": $d may not include from $to, a layer above it"; bad=1
                fi
            done <<EOT
$out
EOT
        done
    done
    return $bad
}

# 1. self-check on a made-up tree: one good include, and one of each fault
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/runtime" "$tmp/model" "$tmp/stray"
printf '#include "runtime/a.h"\n#include "config.h"\n' > "$tmp/model/ok.c"
printf '#include "model/m.h"\n' > "$tmp/runtime/up.c"
printf '#include "a.h"\n' > "$tmp/runtime/bare.h"
printf '#include "nowhere/x.h"\n' > "$tmp/model/unknown.c"
: > "$tmp/stray/s.c"
got=$(check "$tmp")
n=$(printf '%s\n' "$got" | grep -c .)
fail=0
for want in "runtime/up.c:1: #include \"model/m.h\": runtime may not include from model" \
            "runtime/bare.h:1: #include \"a.h\" names no folder" \
            "model/unknown.c:1: #include \"nowhere/x.h\": no layer 'nowhere'" \
            "src/stray/: a folder that is not in the layer order"; do
    printf '%s\n' "$got" | grep -qF "$want" || { echo "FAIL: self-check missed: $want"; fail=1; }
done
[ "$n" -eq 4 ] || { echo "FAIL: self-check: $n reports on the made-up tree, 4 expected:"; printf '%s\n' "$got"; fail=1; }
[ $fail -eq 0 ] && echo "ok: the checker finds each fault of a made-up tree and passes its good include"

# 2. the real tree
[ -d "$srcdir/runtime" ] || { echo "FAIL: no $srcdir/runtime"; exit 1; }
nf=$(ls "$srcdir"/*/*.[ch] | wc -l)
if check "$srcdir"; then
    echo "ok: $nf files in $(echo $LAYERS | wc -w) layers ($LAYERS): no include from a layer above"
else
    echo "FAIL: includes against the layer order (above)"; fail=1
fi
# no source file may sit in src/ itself: every file belongs to a layer
loose=$(ls "$srcdir"/*.[ch] 2>/dev/null | grep -v 'cv_cl_sources\.c$' || true)
if [ -n "$loose" ]; then echo "FAIL: files in src/ outside every layer: $loose"; fail=1
else echo "ok: no source file outside the layer folders"; fi
exit $fail
