#!/bin/sh
# cli-data-fuzz.sh -- run the .npy header fuzz target (tools/fuzz-npy.c,
# built without libFuzzer) over the seed corpus in data/fuzz-npy and
# thousands of deterministic mutations of each file.
set -eu
: "${top_srcdir:=.}" "${top_builddir:=.}"
exec "$top_builddir/tools/fuzz-npy" "$top_srcdir"/data/fuzz-npy/*.npy
