# Shared helpers for integration tests. Source it from a test script:
#   . "$(dirname "$0")/lib.sh"
#   kp_require_root              # skip (77) outside CI, fail in CI
#   kp_topology                  # node namespace + two pod namespaces
#
# Everything happens in network namespaces created here, named
# kp-<test>-<pid>-*, and removed by an EXIT trap. The root namespace's
# iptables, routes and addresses are never touched.

set -u

KP_TEST=${KP_TEST:-$(basename "$0" .sh)}
KP_ID="kp${$}"
KP_NODE="${KP_ID}-node"
KP_NAMESPACES=""
KP_PIDS=""
KP_TMP=$(mktemp -d "/tmp/${KP_TEST}.XXXXXX")
KP_FAILS=0
KP_PASSES=0
: "${KP_BUILDDIR:=$(pwd)}"
: "${KP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
KP_BIN="${KP_BUILDDIR}/kube-proxy"

kp_log() { printf '# %s\n' "$*"; }

kp_skip() {
	if [ "${CI:-}" = "true" ]; then
		echo "FAIL: ${KP_TEST} cannot run in CI: $*" >&2
		exit 1
	fi
	echo "1..0 # SKIP ${KP_TEST}: $*"
	exit 0
}

kp_require_root() {
	[ "$(id -u)" = 0 ] || kp_skip "needs root"
	command -v ip >/dev/null || kp_skip "needs iproute2"
	command -v iptables-legacy >/dev/null || kp_skip "needs iptables-legacy"
	ip netns add "${KP_ID}-probe" 2>/dev/null || kp_skip "cannot create network namespaces"
	ip netns del "${KP_ID}-probe"
}

kp_cleanup() {
	local pid ns
	set +e    # best effort: a caller's `set -e` must not cut the cleanup short
	for pid in $KP_PIDS; do kill "$pid" 2>/dev/null; done
	sleep 0.2
	for pid in $KP_PIDS; do kill -9 "$pid" 2>/dev/null; done
	for ns in $KP_NAMESPACES; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$KP_TMP"
}
trap kp_cleanup EXIT
trap 'exit 130' INT TERM

# kp_ns NAME: create a namespace with loopback up.
kp_ns() {
	ip netns add "$1" || return 1
	KP_NAMESPACES="$KP_NAMESPACES $1"
	ip -n "$1" link set lo up
}

# Run a command inside a namespace.
kp_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
kp_node() { ip netns exec "$KP_NODE" "$@"; }

# kp_topology [POD_COUNT]: a node namespace with bridge kbr0 10.244.0.1/24,
# pods kp..-pod1..N at 10.244.0.11.., a route for the service CIDR on the
# bridge, and an "outside" client namespace at 192.168.77.2 linked to the
# node's 192.168.77.1 (the node's "public" address).
kp_topology() {
	local n=${1:-2} i
	kp_ns "$KP_NODE" || return 1
	kp_node sysctl -qw net.ipv4.ip_forward=1
	kp_node sysctl -qw net.ipv4.conf.all.route_localnet=1
	ip -n "$KP_NODE" link add kbr0 type bridge
	ip -n "$KP_NODE" addr add 10.244.0.1/24 dev kbr0
	ip -n "$KP_NODE" link set kbr0 up
	ip -n "$KP_NODE" route add 10.0.0.0/24 dev kbr0
	for i in $(seq 1 "$n"); do
		kp_add_pod "pod$i" "10.244.0.$((10 + i))"
	done
	kp_ns "${KP_ID}-out"
	ip link add "${KP_ID}o0" netns "$KP_NODE" type veth peer name eth0 netns "${KP_ID}-out"
	ip -n "$KP_NODE" addr add 192.168.77.1/24 dev "${KP_ID}o0"
	ip -n "$KP_NODE" link set "${KP_ID}o0" up
	ip -n "${KP_ID}-out" addr add 192.168.77.2/24 dev eth0
	ip -n "${KP_ID}-out" link set eth0 up
	ip -n "${KP_ID}-out" route add default via 192.168.77.1
}

# kp_add_pod NAME IP: a pod namespace on the node's bridge.
kp_add_pod() {
	local name=$1 ip=$2 ns="${KP_ID}-$1" idx
	idx=$(echo "$KP_NAMESPACES" | wc -w)
	kp_ns "$ns"
	ip link add "${KP_ID}v${idx}" netns "$KP_NODE" type veth peer name eth0 netns "$ns"
	ip -n "$KP_NODE" link set "${KP_ID}v${idx}" master kbr0 up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via 10.244.0.1
}

# kp_backend POD PORT [udp]: a server in the pod namespace that answers
# every TCP connection (or UDP datagram) with the pod's name and the
# client's address: "pod1 from 10.244.0.1". Works for curl too (HTTP/1.0).
kp_backend() {
	local pod=$1 port=$2 proto=${3:-tcp} ns="${KP_ID}-$1"
	if [ ! -x "$KP_TMP/answer" ]; then
		cat >"$KP_TMP/answer" <<'EOS'
#!/bin/sh
# $1 = pod name, $2 = tcp|udp; socat sets SOCAT_PEERADDR.
if [ "$2" = tcp ]; then
	printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'
fi
printf '%s from %s\n' "$1" "$SOCAT_PEERADDR"
EOS
		chmod +x "$KP_TMP/answer"
	fi
	if [ "$proto" = udp ]; then
		ip netns exec "$ns" socat "UDP4-RECVFROM:$port,reuseaddr,fork" \
			SYSTEM:"$KP_TMP/answer $pod udp" >/dev/null 2>&1 &
	else
		ip netns exec "$ns" socat "TCP4-LISTEN:$port,reuseaddr,fork" \
			SYSTEM:"$KP_TMP/answer $pod tcp" >/dev/null 2>&1 &
	fi
	KP_PIDS="$KP_PIDS $!"
}

# kp_get NS HOST PORT: one TCP request, prints the answer's body line.
kp_get() {
	ip netns exec "$1" curl -s --max-time 3 "http://$2:$3/" 2>/dev/null
}

# kp_udp NS HOST PORT: one UDP exchange.
kp_udp() {
	echo ping | ip netns exec "$1" socat -T 2 - "UDP4:$2:$3" 2>/dev/null
}

# kp_start_daemon ARGS...: kube-proxy in the node namespace, log in $KP_TMP.
kp_start_daemon() {
	ip netns exec "$KP_NODE" "$KP_BIN" --log-file="$KP_TMP/kube-proxy.log" \
		--state-dir="$KP_TMP/state" "$@" >"$KP_TMP/daemon.out" 2>&1 &
	KP_DAEMON=$!
	KP_PIDS="$KP_PIDS $KP_DAEMON"
}

kp_stop_daemon() {
	kill -TERM "$KP_DAEMON" 2>/dev/null
	wait "$KP_DAEMON" 2>/dev/null
	KP_DAEMON_RC=$?
}

# kp_wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
kp_wait_for() {
	local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
	while ! "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

kp_log_has() { grep -q -- "$1" "$KP_TMP/kube-proxy.log"; }

kp_ok() { KP_PASSES=$((KP_PASSES + 1)); echo "ok - $*"; }
kp_fail() { KP_FAILS=$((KP_FAILS + 1)); echo "not ok - $*"; }
# kp_check DESCRIPTION CMD...: one assertion.
kp_check() { local d=$1; shift; if "$@"; then kp_ok "$d"; else kp_fail "$d"; fi; }

kp_finish() {
	echo "1..$((KP_PASSES + KP_FAILS))"
	echo "# ${KP_TEST}: ${KP_PASSES} passed, ${KP_FAILS} failed"
	if [ "$KP_FAILS" -gt 0 ]; then
		echo "# --- daemon log tail ---"
		tail -n 40 "$KP_TMP/kube-proxy.log" 2>/dev/null | sed 's/^/# /'
		tail -n 20 "$KP_TMP/daemon.out" 2>/dev/null | sed 's/^/# /'
		exit 1
	fi
	exit 0
}
