#!/bin/bash
# Userspace mode benchmark: bulk throughput and connection rate from an
# "outside" namespace to a Service with one backend pod, in the same
# namespace topology as the integration tests and in the same run:
#
#   direct     client -> pod IP (routed by the node, no proxy at all)
#   iptables   kube-proxy --proxy-mode=iptables: kernel DNAT
#   dnat       one hand-written iptables-legacy DNAT rule (kernel path control)
#   userspace  kube-proxy --proxy-mode=userspace (splice relay)
#   us-copy    the same with KUBE_PROXY_USERSPACE_SPLICE=0 (read/write relay)
#   socat      socat TCP-LISTEN,fork -> pod, a plain userspace relay
#
# Prints MB/s (best of REPS transfers of BULK_MB each way), connections/s
# (RATE_S seconds, RATE_THREADS client threads) and the proxy process's
# CPU seconds per GB moved (utime+stime from /proc/PID/stat; socat's
# forked children are counted through the parent's cutime+cstime).
#
# Usage (root): KP_BUILDDIR=/path/to/build bench/userspace-bench.sh
# Use a build without sanitizers for meaningful numbers.
set -u
: "${BULK_MB:=1000}" "${REPS:=3}" "${RATE_S:=5}" "${RATE_THREADS:=4}"
KP_TEST=userspace-bench
. "$(dirname "$0")/../tests/integration/lib.sh"
kp_require_root
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
command -v socat >/dev/null || kp_skip "needs socat"

TOOL="$KP_TMP/us_bench_tool"
cc -O2 -pthread -o "$TOOL" "$KP_SRCDIR/bench/us_bench_tool.c" || exit 1
kp_topology 1
OUT="${KP_ID}-out"
# Two listeners: "direct" uses 9001 so that its connections never share a
# 4-tuple with the DNAT runs' (the client's TCP timestamp offset depends
# on the destination it dialed; a reused tuple in TIME_WAIT with another
# offset fails PAWS and costs a 1 s SYN retransmit).
for port in 9000 9001; do
	ip netns exec "${KP_ID}-pod1" "$TOOL" serve $port >/dev/null 2>&1 &
	KP_PIDS="$KP_PIDS $!"
done
M="$KP_TMP/manifests"
mkdir -p "$M"
cat >"$M/bench.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec:
  clusterIP: 10.0.0.90
  ports: [{name: tcp, protocol: TCP, port: 9000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, namespace: default, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{name: tcp, protocol: TCP, port: 9000}]
endpoints:
- addresses: ["10.244.0.11"]
  conditions: {ready: true}
Y
BYTES=$((BULK_MB * 1000000))
TICK=$(getconf CLK_TCK)

cpu_of() {  # PID -> clock ticks (utime+stime+cutime+cstime)
	awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0
}
# bulk HOST PORT DIR -> best MB/s over REPS
bulk() {
	local best=0 i r
	for i in $(seq "$REPS"); do
		r=$(ip netns exec "$OUT" "$TOOL" bulk "$1" "$2" "$3" "$BYTES") || { echo 0; return; }
		best=$(echo "$r" | awk -v b="$best" '{v = $1 / $2 / 1e6; print (v > b ? v : b)}')
	done
	printf '%.0f' "$best"
}
rate() {
	ip netns exec "$OUT" "$TOOL" rate "$1" "$2" "$RATE_S" "$RATE_THREADS" |
		awk '{printf "%.0f %d", $1 / $2, $3}'
}
declare -A UP DOWN RATE FAIL CPU
# measure NAME HOST PORT [PID]
measure() {
	local name=$1 host=$2 port=$3 pid=${4:-} c0 c1 r
	[ -n "$pid" ] && c0=$(cpu_of "$pid")
	UP[$name]=$(bulk "$host" "$port" up)
	DOWN[$name]=$(bulk "$host" "$port" down)
	if [ -n "$pid" ]; then
		c1=$(cpu_of "$pid")
		CPU[$name]=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" -v g="$BYTES" -v r="$REPS" \
			'BEGIN { printf "%.3f", (b - a) / t / (g * r * 2 / 1e9) }')
	else
		CPU[$name]=""
	fi
	r=$(rate "$host" "$port")
	RATE[$name]=${r% *}
	FAIL[$name]=${r#* }
	kp_log "$name: up ${UP[$name]} MB/s, down ${DOWN[$name]} MB/s, ${RATE[$name]} conn/s (${FAIL[$name]} failed)"
}
daemon() {  # MODE [env...]
	local mode=$1; shift
	env "$@" ip netns exec "$KP_NODE" "$KP_BIN" --log-file="$KP_TMP/kp-$mode.log" \
		--state-dir="$KP_TMP/state" --proxy-mode="$mode" --manifest-dir="$M" \
		--hostname-override=bench-node >/dev/null 2>&1 &
	KP_DAEMON=$!
	KP_PIDS="$KP_PIDS $KP_DAEMON"
	kp_wait_for 10 grep -q "Initial sync" "$KP_TMP/kp-$mode.log" || { echo "daemon ($mode) did not sync" >&2; exit 1; }
	kp_wait_for 5 ip netns exec "$OUT" "$TOOL" rate 10.0.0.90 9000 0.1 1 >/dev/null
}
stop_daemon() {
	kill -TERM "$KP_DAEMON"; wait "$KP_DAEMON" 2>/dev/null
	ip netns exec "$KP_NODE" "$KP_BIN" --cleanup --log-file= >/dev/null 2>&1
}

kp_log "bulk: best of $REPS x $BULK_MB MB each way; rate: $RATE_S s, $RATE_THREADS threads; $(nproc) CPUs"
measure direct 10.244.0.11 9001

# Kernel path, twice: the daemon's iptables mode, and one hand-written
# DNAT rule (the bare minimum kernel NAT path, as a control).
daemon iptables
if ip netns exec "$KP_NODE" iptables-legacy -t nat -S | grep -q 'DNAT.*10.244.0.11:9000'; then
	measure iptables 10.0.0.90 9000
else
	echo "# the iptables mode did not program the service; no iptables row" >&2
fi
stop_daemon
ip netns exec "$KP_NODE" iptables-legacy -t nat -A PREROUTING -d 10.0.0.90 -p tcp --dport 9000 \
	-j DNAT --to-destination 10.244.0.11:9000
kp_wait_for 5 ip netns exec "$OUT" "$TOOL" rate 10.0.0.90 9000 0.1 1 >/dev/null
measure dnat 10.0.0.90 9000
ip netns exec "$KP_NODE" iptables-legacy -t nat -F PREROUTING

daemon userspace
measure userspace 10.0.0.90 9000 "$KP_DAEMON"
stop_daemon
daemon userspace KUBE_PROXY_USERSPACE_SPLICE=0
measure us-copy 10.0.0.90 9000 "$KP_DAEMON"
stop_daemon

ip netns exec "$KP_NODE" socat TCP4-LISTEN:7000,reuseaddr,fork,backlog=4096 TCP4:10.244.0.11:9000 >/dev/null 2>&1 &
SOCAT=$!
KP_PIDS="$KP_PIDS $SOCAT"
kp_wait_for 5 ip netns exec "$OUT" "$TOOL" rate 192.168.77.1 7000 0.1 1 >/dev/null
measure socat 192.168.77.1 7000 "$SOCAT"
kill "$SOCAT"

echo
echo "iptables = kube-proxy --proxy-mode=iptables (kernel DNAT); dnat = one hand-written iptables-legacy DNAT rule"
printf '%-10s %10s %10s %10s %12s\n' path "up MB/s" "down MB/s" "conn/s" "CPU s/GB"
for n in direct iptables dnat userspace us-copy socat; do
	[ -n "${UP[$n]:-}" ] || continue
	printf '%-10s %10s %10s %10s %12s\n' "$n" "${UP[$n]}" "${DOWN[$n]}" "${RATE[$n]}" \
		"${CPU[$n]:--}"
done
ratio() { echo "$1 $2" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }'; }
echo
echo "userspace / socat:    up $(ratio "${UP[userspace]}" "${UP[socat]}"), down $(ratio "${DOWN[userspace]}" "${DOWN[socat]}"), conn/s $(ratio "${RATE[userspace]}" "${RATE[socat]}")"
echo "userspace / iptables: up $(ratio "${UP[userspace]}" "${UP[iptables]}"), down $(ratio "${DOWN[userspace]}" "${DOWN[iptables]}"), conn/s $(ratio "${RATE[userspace]}" "${RATE[iptables]}")"
echo "userspace / dnat:     up $(ratio "${UP[userspace]}" "${UP[dnat]}"), down $(ratio "${DOWN[userspace]}" "${DOWN[dnat]}"), conn/s $(ratio "${RATE[userspace]}" "${RATE[dnat]}")"
echo "userspace / us-copy:  up $(ratio "${UP[userspace]}" "${UP[us-copy]}"), down $(ratio "${DOWN[userspace]}" "${DOWN[us-copy]}")"
