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
# Each size runs ROUNDS times (default 3, -r N), the daemon and the restore
# alternating so that both see the same machine; the table prints the
# median and the range of each figure, and the ratio per round.
#
# Usage: bench/iptables-sync.sh [-r ROUNDS] [BUILD_DIR] [SIZES...]
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
if [ "${1:-}" = -r ]; then rounds=$2; shift 2; fi
build=${1:-$top/_build}; shift || true
sizes=${*:-1000 5000 10000}
bin="$build/kube-proxy"
[ -x "$bin" ] || { echo "no kube-proxy at $bin (build first)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }

tmp=$(mktemp -d /tmp/kp-bench.XXXXXX)
ns="kpbench$$"
cleanup() { ip netns del "$ns" 2>/dev/null; ip netns del "${ns}r" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# wait_lines FILE PATTERN N: wait (up to 60 s) until FILE has N lines matching PATTERN.
wait_lines() {
	local f=$1 pat=$2 n=$3 i
	for i in $(seq 600); do
		[ "$(grep -c -- "$pat" "$f" 2>/dev/null || true)" -ge "$n" ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# settle: a deleted namespace's tables are freed by a kernel worker after
# "ip netns del" returns (about a second for 10k services); wait for the
# machine to go quiet so that the next measurement does not share the
# CPUs with that cleanup. Polls /proc/loadavg's running count.
settle() {
	local i
	sleep 0.5
	for i in $(seq 50); do
		[ "$(awk '{split($4, a, "/"); print a[1]}' /proc/loadavg)" -le 1 ] && break
		sleep 0.1
	done
	sleep 0.5
}

# median VALUES...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# range VALUES...: "min-max".
range() { printf '%s\n' "$@" | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
# summary FORMAT VALUES...: the median in FORMAT, then "(min-max)".
summary() { local fmt=$1; shift; printf "$fmt (%s)" "$(median "$@")" "$(range "$@")"; }

# One daemon run: prints "FULL INC RSS_MB".
daemon_round() {
	local n=$1 m=$2 log=$3 state=$4 pid full inc rss before
	rm -rf "$state" "$log"
	python3 "$top/bench/gen-manifests.py" --bump "$m" 10 0
	ip netns add "$ns"
	ip netns exec "$ns" "$bin" --manifest-dir="$m" --service-cluster-ip-range=10.96.0.0/12 \
		--cluster-cidr=10.128.0.0/9 --state-dir="$state" --log-file="$log" -v 2 \
		--metrics-bind-address= --healthz-bind-address= >/dev/null 2>&1 &
	pid=$!
	wait_lines "$log" "Initial sync" 1 || { echo "no initial sync for $n" >&2; tail "$log" >&2; kill $pid; return 1; }
	full=$(sed -n 's/.*Initial sync.* in \([0-9.]*\)s.*/\1/p' "$log" | tail -1)
	before=$(grep -c "partial sync in" "$log")
	python3 "$top/bench/gen-manifests.py" --bump "$m" 10 1
	wait_lines "$log" "partial sync in" $((before + 1)) || { echo "no incremental sync" >&2; kill $pid; return 1; }
	inc=$(grep "partial sync in" "$log" | tail -1 | sed -n 's/.* in \([0-9.]*\)s.*/\1/p')
	rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$pid/status)
	kill $pid; wait $pid 2>/dev/null
	ip netns del "$ns"
	settle
	echo "$full $inc $rss"
}

# One iptables-legacy-restore of FILE into an empty namespace: prints seconds.
restore_round() {
	local s e
	ip netns add "${ns}r"
	s=$(date +%s.%N)
	ip netns exec "${ns}r" iptables-legacy-restore <"$1" || echo "restore failed" >&2
	e=$(date +%s.%N)
	ip netns del "${ns}r"
	settle
	echo "$e - $s" | bc -l
}

echo "$rounds round(s) per size, daemon and restore alternating; median (min-max), seconds"
printf '%-9s %20s %20s %20s %20s %12s\n' services full_sync one_endpoint restore restore/full peak_rss_MB
for n in $sizes; do
	m="$tmp/m$n"
	python3 "$top/bench/gen-manifests.py" "$m" "$n" 10
	"$bin" --manifest-dir="$m" --service-cluster-ip-range=10.96.0.0/12 --cluster-cidr=10.128.0.0/9 \
		--state-dir="$tmp/drystate$n" --dry-run 2>/dev/null |
		sed -n '/^# .*IPv4/,/^# .*IPv6/p' >"$tmp/rules$n"
	fulls=() incs=() rests=() ratios=() rss=0
	for r in $(seq "$rounds"); do
		read -r f i k < <(daemon_round "$n" "$m" "$tmp/log$n" "$tmp/state$n") || exit 1
		[ -n "$f" ] || exit 1
		x=$(restore_round "$tmp/rules$n")
		fulls+=("$f") incs+=("$i") rests+=("$x") ratios+=("$(echo "$x / $f" | bc -l)")
		rss=$k
	done
	printf '%-9s %20s %20s %20s %20s %12s\n' "$n" \
		"$(summary %.3f "${fulls[@]}")" "$(summary %.3f "${incs[@]}")" \
		"$(summary %.3f "${rests[@]}")" "$(summary %.2f "${ratios[@]}")" "$rss"
	rm -rf "$m"
done
