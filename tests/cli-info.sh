#!/bin/sh
# cli-info.sh -- cosmovae-info: device listing, device selection errors, the
# kernel table, and the message when no OpenCL platform is installed.
. "$(dirname "$0")/setup.sh"
bin=$top_builddir/src/cosmovae-info
export CV_CACHE_DIR="$tmp/cache"

"$bin" --help | grep -q -- '--self-test' || fail "--help"
"$bin" --version | grep -q 'cosmovae' || fail "--version"
"$bin" > "$tmp/list"
grep -q '^device 0:' "$tmp/list" || fail "no device listed"
for k in 'compute units' 'global memory' 'local memory' 'max work-group'; do
    grep -q "$k" "$tmp/list" || fail "listing lacks '$k'"
done
"$bin" -v | grep -q 'extensions' || fail "-v lacks extensions"

# the kernel table, built once, then from the program cache
"$bin" --kernels > "$tmp/k1"
grep -q 'cvk_conv2d' "$tmp/k1" || fail "kernel table lacks the convolutions"
grep -q 'from the program cache' "$tmp/k1" && fail "first run claims the cache"
"$bin" --kernels | grep -q 'from the program cache' || fail "second run did not use the program cache"
ls "$tmp/cache" | grep -q '\.bin$' || fail "no cached program binaries"

# an unknown device: usage error (2) listing the devices
set +e; "$bin" --kernels --device no-such-device-xyz 2> "$tmp/err"; st=$?; set -e
[ "$st" -eq 2 ] || fail "unknown device exited $st, expected 2"
grep -q 'no-such-device-xyz' "$tmp/err" && grep -q '  0: ' "$tmp/err" || { cat "$tmp/err" >&2; fail "unknown device message"; }
# ... in the listing too (it used to list every device and exit 0), with nothing on stdout
set +e; "$bin" --device no-such-device-xyz > "$tmp/out" 2> "$tmp/err"; st=$?; set -e
[ "$st" -eq 2 ] || fail "listing with an unknown device exited $st, expected 2"
grep -q 'no-such-device-xyz' "$tmp/err" && grep -q '  0: ' "$tmp/err" || { cat "$tmp/err" >&2; fail "listing: unknown device message"; }
[ -s "$tmp/out" ] && fail "listing with an unknown device wrote to stdout"
# a device that matches: the listing says which one it selects
"$bin" --device 0 > "$tmp/sel"
grep -q "^--device '0' selects: " "$tmp/sel" && grep -q '^device 0:' "$tmp/sel" || { cat "$tmp/sel" >&2; fail "--device 0 listing"; }

# no OpenCL platform at all: a clear message naming the package to install
mkdir "$tmp/novendors"
set +e; OCL_ICD_VENDORS="$tmp/novendors" OPENCL_VENDOR_PATH="$tmp/novendors" "$bin" 2> "$tmp/err"; st=$?; set -e
[ "$st" -eq 1 ] || fail "no platform exited $st, expected 1"
grep -q 'pocl-opencl-icd' "$tmp/err" || { cat "$tmp/err" >&2; fail "no-platform message does not name pocl-opencl-icd"; }

# a kernel that does not build: the build log, exit 1
mkdir "$tmp/cl"
cp "$top_srcdir"/cl/*.cl "$top_srcdir"/cl/*.clh "$tmp/cl/"
echo '__kernel void cvk_broken(__global float *x) { x[0] = no_such_symbol; }' >> "$tmp/cl/util.cl"
set +e; CV_CL_DIR="$tmp/cl" CV_NO_CACHE=1 "$bin" --kernels 2> "$tmp/err"; st=$?; set -e
[ "$st" -eq 1 ] || fail "build failure exited $st, expected 1"
grep -q 'util.cl' "$tmp/err" && grep -q 'no_such_symbol' "$tmp/err" || { cat "$tmp/err" >&2; fail "build log missing"; }
echo "cli-info: all checks passed"
