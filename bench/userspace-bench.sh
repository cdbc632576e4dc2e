#!/bin/bash
# Userspace mode benchmark: bulk throughput and connection rate from an
# "outside" namespace to a Service with one backend pod, in the same
# namespace topology as the integration tests and in the same run:
#
#   direct     client -> pod IP (routed by the node, no proxy at all)
#   dnat       one hand-written iptables-legacy DNAT rule: the kernel path
#   userspace  kube-proxy --proxy-mode=userspace (splice relay)
#   socat      socat TCP-LISTEN,fork -> pod, a plain userspace relay
#   iptables   kube-proxy --proxy-mode=iptables: kernel DNAT (own phase)
#   us-copy    userspace with KUBE_PROXY_USERSPACE_SPLICE=0 (own phase)
#
# The first four run side by side (different addresses/ports) and are
# measured in interleaved rounds, so a busy neighbour on a shared machine
# hits them alike; the last two need their own daemon and run afterwards.
# Prints MB/s (best of REPS transfers of BULK_MB each way), connections/s
# (best of REPS runs of RATE_S seconds, RATE_THREADS client threads) and
# the proxy process's CPU seconds per GB moved (utime+stime from
# /proc/PID/stat, summed over its own transfers; socat's forked children
# are counted through the parent's cutime+cstime).
#
# Usage (root): KP_BUILDDIR=/path/to/build bench/userspace-bench.sh
# Use a build without sanitizers for meaningful numbers.
set -u
: "${BULK_MB:=1000}" "${REPS:=5}" "${RATE_S:=2}" "${RATE_THREADS:=4}"
KP_TEST=userspace-bench
KP_SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
. "$KP_SRCDIR/tests/integration/lib.sh"
kp_require_root
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
command -v socat >/dev/null || kp_skip "needs socat"

TOOL="$KP_TMP/us_bench_tool"
cc -O2 -pthread -o "$TOOL" "$KP_SRCDIR/bench/us_bench_tool.c" || exit 1
kp_topology 1
OUT="${KP_ID}-out"
# Three listeners: the client's paths to the pod must never share a
# 4-tuple at the pod (the client's TCP timestamp offset depends on the
# address it dialed; a reused tuple in TIME_WAIT with another offset fails
# PAWS and costs a 1 s SYN retransmit). direct -> 9001, dnat -> 9002,
# iptables -> 9000 (userspace and socat reach 9000 from the node's address).
for port in 9000 9001 9002; do
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
busy_ticks() {  # the whole machine's non-idle clock ticks (every CPU; user..softirq, steal)
	awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
declare -A HOST PORT PID UP DOWN RATE FAIL TICKS MOVED BUSY
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
# one NAME: one upload, one download and one rate run for NAME.
one() {
	local n=$1 c0 b0 r
	c0=$(cpu_of "${PID[$n]:-0}")
	b0=$(busy_ticks)
	for dir in up down; do
		r=$(ip netns exec "$OUT" "$TOOL" bulk "${HOST[$n]}" "${PORT[$n]}" $dir "$BYTES") || r="1 1e9"
		r=$(awk '{printf "%.0f", $1 / $2 / 1e6}' <<<"$r")
		if [ $dir = up ]; then UP[$n]=$(max "${UP[$n]:-0}" "$r"); else DOWN[$n]=$(max "${DOWN[$n]:-0}" "$r"); fi
	done
	BUSY[$n]=$(( ${BUSY[$n]:-0} + $(busy_ticks) - b0 ))
	if [ -n "${PID[$n]:-}" ]; then
		TICKS[$n]=$(( ${TICKS[$n]:-0} + $(cpu_of "${PID[$n]}") - c0 ))
		MOVED[$n]=$(( ${MOVED[$n]:-0} + 2 * BYTES ))
	fi
	r=$(ip netns exec "$OUT" "$TOOL" rate "${HOST[$n]}" "${PORT[$n]}" "$RATE_S" "$RATE_THREADS" |
		awk '{printf "%.0f %d", $1 / $2, $3}')
	RATE[$n]=$(max "${RATE[$n]:-0}" "${r% *}")
	FAIL[$n]=$(( ${FAIL[$n]:-0} + ${r#* } ))
}
rounds() {  # NAME... : REPS interleaved rounds
	local i n
	for i in $(seq "$REPS"); do
		for n in "$@"; do one "$n"; done
		kp_log "round $i/$REPS done"
	done
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

kp_log "bulk: best of $REPS x $BULK_MB MB each way; rate: best of $REPS x $RATE_S s, $RATE_THREADS threads; $(nproc) CPUs"

# Phase 1, side by side: direct (pod port 9001), dnat (10.0.0.91, a
# foreign rule the daemon leaves alone), userspace (10.0.0.90), socat.
daemon userspace
US_PID=$KP_DAEMON
ip netns exec "$KP_NODE" iptables-legacy -t nat -A PREROUTING -d 10.0.0.91 -p tcp --dport 9000 \
	-j DNAT --to-destination 10.244.0.11:9002
ip netns exec "$KP_NODE" socat TCP4-LISTEN:7000,reuseaddr,fork,backlog=4096 TCP4:10.244.0.11:9000 >/dev/null 2>&1 &
SOCAT=$!
KP_PIDS="$KP_PIDS $SOCAT"
kp_wait_for 5 ip netns exec "$OUT" "$TOOL" rate 192.168.77.1 7000 0.1 1 >/dev/null
kp_wait_for 5 ip netns exec "$OUT" "$TOOL" rate 10.0.0.91 9000 0.1 1 >/dev/null
HOST[direct]=10.244.0.11; PORT[direct]=9001
HOST[dnat]=10.0.0.91; PORT[dnat]=9000
HOST[userspace]=10.0.0.90; PORT[userspace]=9000; PID[userspace]=$US_PID
HOST[socat]=192.168.77.1; PORT[socat]=7000; PID[socat]=$SOCAT
rounds direct dnat userspace socat
kill "$SOCAT"
stop_daemon
ip netns exec "$KP_NODE" iptables-legacy -t nat -F PREROUTING

# Phase 2: the daemon's iptables mode, then userspace without splice.
daemon iptables
if ip netns exec "$KP_NODE" iptables-legacy -t nat -S | grep -q 'DNAT.*10.244.0.11:9000'; then
	HOST[iptables]=10.0.0.90; PORT[iptables]=9000
	rounds iptables
else
	echo "# the iptables mode did not program the service; no iptables row" >&2
fi
stop_daemon
daemon userspace KUBE_PROXY_USERSPACE_SPLICE=0
HOST[us-copy]=10.0.0.90; PORT[us-copy]=9000; PID[us-copy]=$KP_DAEMON
rounds us-copy
stop_daemon

echo
echo "dnat = one hand-written iptables-legacy DNAT rule; iptables = kube-proxy --proxy-mode=iptables"
echo "(direct, dnat, userspace, socat: interleaved rounds; iptables, us-copy: measured afterwards)"
echo "CPU s/GB: the proxy process's own; machine: every CPU's busy time during the bulk transfers"
echo "(client, server, relay and the kernel's packet path all run on these $(nproc) CPUs)"
printf '%-10s %10s %10s %10s %12s %14s\n' path "up MB/s" "down MB/s" "conn/s" "CPU s/GB" "machine s/GB"
for n in direct dnat userspace socat iptables us-copy; do
	[ -n "${UP[$n]:-}" ] || continue
	cpu=-
	[ -n "${MOVED[$n]:-}" ] && cpu=$(awk -v t="${TICKS[$n]}" -v k="$TICK" -v b="${MOVED[$n]}" \
		'BEGIN { printf "%.3f", t / k / (b / 1e9) }')
	mach=$(awk -v t="${BUSY[$n]}" -v k="$TICK" -v b="$((REPS * 2 * BYTES))" 'BEGIN { printf "%.3f", t / k / (b / 1e9) }')
	printf '%-10s %10s %10s %10s %12s %14s\n' "$n" "${UP[$n]}" "${DOWN[$n]}" "${RATE[$n]}" "$cpu" "$mach"
	[ "${FAIL[$n]:-0}" = 0 ] || echo "  ($n: ${FAIL[$n]} failed connections)"
done
ratio() { echo "${1:-0} ${2:-0}" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }'; }
echo
for ref in socat dnat iptables direct; do
	[ -n "${UP[$ref]:-}" ] || continue
	printf 'userspace / %-9s up %s, down %s, conn/s %s\n' "$ref:" "$(ratio "${UP[userspace]}" "${UP[$ref]}")" \
		"$(ratio "${DOWN[userspace]}" "${DOWN[$ref]}")" "$(ratio "${RATE[userspace]}" "${RATE[$ref]}")"
done
printf 'userspace / %-9s up %s, down %s, conn/s %s\n' "us-copy:" "$(ratio "${UP[userspace]}" "${UP[us-copy]}")" \
	"$(ratio "${DOWN[userspace]}" "${DOWN[us-copy]}")" "$(ratio "${RATE[userspace]}" "${RATE[us-copy]}")"
