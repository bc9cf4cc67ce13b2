#!/bin/sh
# man.sh -- every program has a manual page (doc/man/PROG.1, installed by
# `make install`), and the page says what the program's --help says now.
# With help2man (tools/bootstrap installs it) the page is made again and
# must equal the shipped one but for its date line; without it, every
# long option of --help must appear in the page.
. "$(dirname "$0")/setup.sh"
# the programs: bin_PROGRAMS of mk/prog.am, so that a new program without a page fails
progs=$(sed -n '/^bin_PROGRAMS/,/[^\\]$/p' "$top_srcdir/mk/prog.am" | grep -o 'src/cosmovae-[a-z]*' | sed 's|src/||')
fail=0
[ "$(echo $progs | wc -w)" -ge 10 ] || { echo "FAIL: found only '$progs' in mk/prog.am's bin_PROGRAMS"; fail=1; }
for p in $progs; do
    grep -q "doc/man/$p.1" "$top_srcdir/mk/man.am" || { echo "FAIL: mk/man.am does not install doc/man/$p.1"; fail=1; }
done
for p in $progs; do
    page=$top_srcdir/doc/man/$p.1 bin=$top_builddir/src/$p
    [ -s "$page" ] || { echo "FAIL: no manual page $page (run make man)"; fail=1; continue; }
    if command -v help2man >/dev/null 2>&1; then
        sh "$top_srcdir/tools/mkman" "$bin" "$tmp/$p.1"
        if grep -v '^\.TH ' "$page" > "$tmp/a" && grep -v '^\.TH ' "$tmp/$p.1" > "$tmp/b" && cmp -s "$tmp/a" "$tmp/b"; then
            echo "ok: $p.1 is what help2man makes of $p --help"
        else
            echo "FAIL: doc/man/$p.1 differs from $p --help (run make man):"; diff "$tmp/a" "$tmp/b" | head -10; fail=1
        fi
    else
        miss=$("$bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | while read -r o; do
            grep -q -- "$(printf '%s' "$o" | sed 's/-/\\\\-/g')" "$page" || echo "$o"; done)
        if [ -z "$miss" ]; then echo "ok: $p.1 names every option of $p --help (no help2man: not made again)"
        else echo "FAIL: doc/man/$p.1 lacks $(echo $miss)"; fail=1; fi
    fi
    grep -q '^\.SH NAME' "$page" && grep -q "^$p \\\\- " "$page" || { echo "FAIL: $p.1 has no NAME line"; fail=1; }
done
exit $fail
