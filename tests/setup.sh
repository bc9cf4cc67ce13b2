# setup.sh -- the preamble of every shell test, sourced as
#     . "$(dirname "$0")/setup.sh"
# Strict mode and the C locale; top_srcdir and top_builddir (set by `make
# check`, else this tree); $tmp, a fresh directory removed on exit (under
# $tmp_parent when the test sets it first, else $TMPDIR or /tmp); and
# fail MESSAGE, which reports on stderr and exits 1.
set -eu
LC_ALL=C; export LC_ALL
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
tmp=$(mktemp -d "${tmp_parent:-${TMPDIR:-/tmp}}/cv-$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
