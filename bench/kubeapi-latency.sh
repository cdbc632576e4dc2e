#!/bin/bash
# API event -> kernel latency and idle cost of the API-server source.
# For each size (default 1000 and 10000 services x 10 endpoints), in network
# namespaces created here: tests/fakeapi (TLS, token) preloaded with the
# services, the daemon in iptables mode watching it; then K new services are
# created through the API one at a time, and each is timed from the API
# request until a TCP connection to its ClusterIP reaches the backend (the
# rule is in the kernel and works). Prints p50/p99/max, then the daemon's
# CPU time while idle-watching (bookmarks every 10 s; the periodic full
# resync is set to 1h so that only the watching is measured) and its peak RSS.
# Not part of `make check`.
#
# Usage: bench/kubeapi-latency.sh [BUILD_DIR] [SIZES...]
#   env: SAMPLES (30), IDLE_S (30), MIN_SYNC (1s, upstream's default)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/_build}; shift || true
sizes=${*:-1000 10000}
SAMPLES=${SAMPLES:-30}
IDLE_S=${IDLE_S:-30}
MIN_SYNC=${MIN_SYNC:-1s}
KP_BUILDDIR=$build
KP_SRCDIR=$top
KP_TEST=kubeapi-latency
[ -x "$build/kube-proxy" ] || { echo "no kube-proxy at $build (build first)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }
. "$top/tests/integration/lib.sh"

. "$top/tests/fakeapi/helpers.sh"

# cpu_ns PID: nanoseconds on CPU, all threads (schedstat is finer than ticks).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }

printf '%-9s %-9s %s\n' services min_sync "latency (API request -> ClusterIP answers), idle CPU, peak RSS"
run=0
for n in $sizes; do
	kp_cleanup 2>/dev/null; KP_NAMESPACES=""; KP_PIDS=""
	run=$((run + 1))   # interface names derive from KP_ID: keep it short
	KP_ID="kl$$r$run"; KP_NODE="${KP_ID}-node"; KP_TMP=$(mktemp -d /tmp/kubeapi-latency.XXXXXX)
	fake_pki "$KP_TMP"
	kp_topology 1
	kp_backend pod1 8080
	FAKE_RUN="ip netns exec $KP_NODE"
	fake_start "$KP_TMP" --token bench --bookmark-seconds 10
	KP_PIDS="$KP_PIDS $FAKE_PID"
	CTL=$FAKE_CTL API=$FAKE_API
	kp_node python3 "$top/bench/kubeapi_latency.py" --ctl "$CTL" preload "$n" 10
	cat >"$KP_TMP/kubeconfig" <<EOF
clusters: [{name: f, cluster: {server: "https://127.0.0.1:$API", certificate-authority: ca.crt}}]
users: [{name: u, user: {token: bench}}]
contexts: [{name: c, context: {cluster: f, user: u}}]
current-context: c
EOF
	kp_start_daemon --kubeconfig="$KP_TMP/kubeconfig" --hostname-override=node-1 \
		--cluster-cidr=10.244.0.0/16 --iptables-min-sync-period="$MIN_SYNC" \
		--iptables-sync-period=1h
	if ! kp_wait_for 300 kp_log_has "Initial sync"; then
		echo "$n: no initial sync"; tail -5 "$KP_TMP/kube-proxy.log"; continue
	fi
	init=$(grep -o 'Initial sync.*' "$KP_TMP/kube-proxy.log" | head -1)
	lat=$(kp_node python3 "$top/bench/kubeapi_latency.py" --ctl "$CTL" measure "$SAMPLES" 10.244.0.11)
	sleep 3
	c0=$(cpu_ns "$KP_DAEMON"); sleep "$IDLE_S"; c1=$(cpu_ns "$KP_DAEMON")
	idle=$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_S" \
		'BEGIN { printf "idle_cpu %.2f ms/min (%.4f%%)", (b - a) / 1e6 * 60 / s, (b - a) / 1e9 / s * 100 }')
	rss=$(awk '/VmHWM/ {printf "peak_rss %.0f MB", $2 / 1024}' "/proc/$KP_DAEMON/status")
	printf '%-9s %-9s %s; %s; %s\n' "$n" "$MIN_SYNC" "$lat" "$idle" "$rss"
	printf '%-9s %-9s (%s)\n' "" "" "$init"
	kp_stop_daemon
done
