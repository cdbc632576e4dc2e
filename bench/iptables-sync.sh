#!/bin/bash
# iptables mode sync benchmark. For each size (default 1000 5000 10000
# services x 10 endpoints) in a fresh network namespace:
#   - full sync time of the daemon (its own measurement, "Initial sync ... in Xs")
#   - one-endpoint incremental sync time (one EndpointSlice rewritten)
#   - peak RSS of the daemon (VmHWM)
#   - iptables-legacy-restore of our own --dry-run output of the same state,
#     into an empty namespace, timed in the same run
# and prints the ratio restore / full sync. Not part of `make check`.
#
# Usage: bench/iptables-sync.sh [BUILD_DIR] [SIZES...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/_build}; shift || true
sizes=${*:-1000 5000 10000}
bin="$build/kube-proxy"
[ -x "$bin" ] || { echo "no kube-proxy at $bin (build first)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }

tmp=$(mktemp -d /tmp/kp-bench.XXXXXX)
ns="kpbench$$"
cleanup() { ip netns del "$ns" 2>/dev/null; ip netns del "${ns}r" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# last_sync_line FILE N: wait until the log has N "Synced"/"Initial sync" lines.
wait_lines() {
	local f=$1 pat=$2 n=$3 i
	for i in $(seq 600); do
		[ "$(grep -c -- "$pat" "$f" 2>/dev/null || true)" -ge "$n" ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

printf '%-9s %12s %12s %12s %12s %10s\n' services full_sync_s one_ep_s restore_s restore/full peak_rss_MB
for n in $sizes; do
	m="$tmp/m$n"; log="$tmp/log$n"
	python3 "$top/bench/gen-manifests.py" "$m" "$n" 10
	ip netns add "$ns"; ip netns add "${ns}r"
	ip netns exec "$ns" "$bin" --manifest-dir="$m" --service-cluster-ip-range=10.96.0.0/12 \
		--cluster-cidr=10.128.0.0/9 --state-dir="$tmp/state$n" --log-file="$log" -v 2 \
		--metrics-bind-address= --healthz-bind-address= >/dev/null 2>&1 &
	pid=$!
	wait_lines "$log" "Initial sync" 1 || { echo "no initial sync for $n"; tail "$log"; kill $pid; exit 1; }
	full=$(sed -n 's/.*Initial sync.* in \([0-9.]*\)s.*/\1/p' "$log" | tail -1)
	before=$(grep -c "partial sync in" "$log")
	python3 "$top/bench/gen-manifests.py" --bump "$m" 10 1
	wait_lines "$log" "partial sync in" $((before + 1)) || { echo "no incremental sync"; kill $pid; exit 1; }
	inc=$(grep "partial sync in" "$log" | tail -1 | sed -n 's/.* in \([0-9.]*\)s.*/\1/p')
	rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$pid/status)
	kill $pid; wait $pid 2>/dev/null
	"$bin" --manifest-dir="$m" --service-cluster-ip-range=10.96.0.0/12 --cluster-cidr=10.128.0.0/9 \
		--state-dir="$tmp/drystate$n" --dry-run 2>/dev/null |
		sed -n '/^# .*IPv4/,/^# .*IPv6/p' >"$tmp/rules$n"
	s=$(date +%s.%N)
	ip netns exec "${ns}r" iptables-legacy-restore <"$tmp/rules$n" || echo "restore failed"
	e=$(date +%s.%N)
	rest=$(echo "$e - $s" | bc -l)
	printf '%-9s %12.3f %12.3f %12.3f %12.2f %10s\n' "$n" "$full" "$inc" "$rest" "$(echo "$rest / $full" | bc -l)" "$rss"
	ip netns del "$ns"; ip netns del "${ns}r"
	rm -rf "$m"
done
