#!/bin/sh
# cli-data.sh -- the fixtures in data/ are reproducible: run the commands
# written in data/README and compare every file they make with the shipped
# one, byte for byte; the datasets are readable by ncdump (when installed)
# with the documented variables; cv_data_default_path's search order.
tmp_parent=${TMPDIR:-.}
. "$(dirname "$0")/setup.sh"
PATH="$top_builddir/src:$PATH"
export PATH

fail=0
mkdir "$tmp/data"
grep '^\$ cosmovae-' "$top_srcdir/data/README" | sed 's/^\$ //' > "$tmp/commands"
n=$(wc -l < "$tmp/commands")
[ "$n" -ge 3 ] || { echo "data/README: expected at least 3 commands, found $n"; exit 1; }
(cd "$tmp" && while read -r cmd; do
    echo "running: $cmd"
    eval "$cmd" || exit 1
done < commands) || { echo "FAIL: a data/README command failed"; exit 1; }

made=0
for f in $(cd "$tmp" && find data -type f | sort); do
    made=$((made + 1))
    if cmp -s "$tmp/$f" "$top_srcdir/$f"; then
        echo "ok: $f reproduced byte for byte"
    else
        echo "FAIL: $f differs from the shipped copy"
        fail=1
    fi
done
for f in $(cd "$top_srcdir" && find data -type f -name '*.nc' -o -type f -name '*.npy' -path '*cmd-npy*' | sort); do
    [ -f "$tmp/$f" ] || { echo "FAIL: $f is shipped but no data/README command makes it"; fail=1; }
done
echo "$made files made"

if command -v ncdump >/dev/null 2>&1; then
    h=$(ncdump -h "$top_srcdir/data/cmdsynth-64.nc")
    for want in 'map = 600' 'channel = 3' 'y = 64' 'x = 64' 'param = 6' 'float fields(map, channel, y, x)' \
                'double params(map, param)' 'int sim(map)' 'byte split(map)' 'string channel(channel)' \
                'string channel_transform(channel)' 'double norm_mean(channel)' 'double norm_std(channel)' \
                ':box_size = 25.' ':cv_format = "cosmovae-dataset"' ':history = "cosmovae-mkfields'; do
        case $h in
        *"$want"*) ;;
        *) echo "FAIL: ncdump -h lacks '$want'"; fail=1 ;;
        esac
    done
    v=$(ncdump -v param,channel "$top_srcdir/data/cmdsynth-64.nc" | tail -4)
    case $v in
    *'"Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2"'*) ;;
    *) echo "FAIL: parameter names not shown by ncdump: $v"; fail=1 ;;
    esac
    case $v in
    *'"Mgas", "HI", "B"'*) echo "ok: ncdump shows the parameter and channel names" ;;
    *) echo "FAIL: channel names not shown by ncdump: $v"; fail=1 ;;
    esac
    ncdump -s -h "$top_srcdir/data/cmdsynth-64.nc" | grep -q '_ChunkSizes = 1, 3, 64, 64' \
        || { echo "FAIL: fields not chunked one map per chunk"; fail=1; }
else
    echo "ncdump not installed: skipping the ncdump checks"
fi
exit $fail
