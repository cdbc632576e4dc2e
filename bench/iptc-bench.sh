#!/bin/sh
# Runs bench/iptc_bench in a throwaway network namespace (it rewrites the
# nat table there). Usage: bench/iptc-bench.sh [BUILDDIR] [iptc_bench args]
# Default: 1000 5000 10000 services x 10 endpoints, IPv4.
set -eu
BUILDDIR=${1:-.}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- 1000 5000 10000
BIN="$BUILDDIR/bench/iptc_bench"
[ -x "$BIN" ] || { echo "no $BIN (run make in $BUILDDIR)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
NS="kp-iptc-bench-$$"
ip netns add "$NS"
trap 'ip netns del "$NS"' EXIT
# A private lock file, so neither side waits for the host's iptables users.
export XTABLES_LOCKFILE="${TMPDIR:-/tmp}/iptc-bench-$$.lock"
ip netns exec "$NS" "$BIN" "$@"
rm -f "$XTABLES_LOCKFILE"
