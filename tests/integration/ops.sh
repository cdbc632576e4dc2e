#!/bin/bash
# The operational surface with real sockets and real packets, all inside
# network namespaces created here: /healthz and /livez through syncs and a
# stalled sync, /metrics (promtool when installed) with counters moving,
# /proxyMode, /configz, a health-check node port following local
# endpoints, sd_notify messages on a test NOTIFY_SOCKET, and stale UDP
# conntrack entries: first the kernel's behaviour without cleanup (rules
# this test writes itself), then the daemon redirecting the same kind of
# flow when the endpoint is replaced.
. "$(dirname "$0")/lib.sh"
kp_require_root
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
command -v conntrack >/dev/null || kp_skip "needs conntrack(8)"
command -v flock >/dev/null || kp_skip "needs flock(1)"

kp_topology 2
for p in pod1 pod2; do
	kp_backend $p 8080
	kp_backend $p 5353 udp
done

M="$KP_TMP/manifests"
mkdir -p "$M"
NOTIFY="$KP_TMP/notify.sock"
NOTES="$KP_TMP/notify.log"
LOCK="$KP_TMP/xtables.lock"
touch "$LOCK"

# slice NAME SERVICE PORTNAME PORT PROTO "ip:node ip:node ...": an EndpointSlice.
slice() {
	local eps="" e
	for e in $6; do
		eps="$eps
  - addresses: [\"${e%%:*}\"]
    conditions: {ready: true}
    nodeName: ${e##*:}"
	done
	cat <<Y
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $1
  namespace: default
  labels: {kubernetes.io/service-name: $2}
addressType: IPv4
ports: [{name: $3, protocol: $5, port: $4}]
endpoints:$eps
Y
}

# A UDP NodePort service (10.0.0.53:53, external IP 192.168.77.10:53, node
# port 30053 -> :5353) and an eTP Local load
# balancer with health check node port 32100.
cat >"$M/dns.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.0.0.53
  externalIPs: [192.168.77.10]
  ports: [{name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30053}]
Y
cat >"$M/lb.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.0.0.80
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30100}]
Y
write_slice() { slice "$@" >"$M/$1.yaml.tmp" && mv "$M/$1.yaml.tmp" "$M/$1.yaml"; }
write_slice dns-1 dns dns 5353 UDP "10.244.0.11:node1"
write_slice lb-1 lb http 8080 TCP "10.244.0.11:node1"

# udp_from NS SPORT HOST PORT: one datagram from a fixed source port (the
# same 5-tuple every time, so the same conntrack entry); prints the pod.
udp_from() {
	local i a
	for i in 1 2 3; do   # a lost datagram is retried, on the same 5-tuple
		a=$(echo ping | ip netns exec "$1" socat -T 1 - "UDP4:$3:$4,sourceport=$2,reuseaddr" 2>/dev/null | awk '{print $1}')
		[ -n "$a" ] && break
	done
	echo "$a"
}
# The reply source is the second src= of a conntrack line.
ct_reply() {
	kp_node conntrack -L -p udp --orig-dst "$1" --orig-port-dst "$2" 2>/dev/null |
		awk '{n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^src=/) { n++; if (n == 2) { sub("src=", "", $i); print $i } } }' | tail -n 1
}

# ---- 1. control: the kernel keeps a UDP flow on a replaced DNAT target -----
kp_node iptables-legacy -t nat -N OPS-TEST
kp_node iptables-legacy -t nat -A OUTPUT -d 10.0.0.99 -j OPS-TEST
kp_node iptables-legacy -t nat -A OPS-TEST -p udp --dport 53 -j DNAT --to-destination 10.244.0.11:5353
kp_check "control: flow reaches pod1" [ "$(udp_from "$KP_NODE" 40001 10.0.0.99 53)" = pod1 ]
kp_node iptables-legacy -t nat -R OPS-TEST 1 -p udp --dport 53 -j DNAT --to-destination 10.244.0.12:5353
kp_check "control: a new flow goes to pod2" [ "$(udp_from "$KP_NODE" 40009 10.0.0.99 53)" = pod2 ]
kp_check "control: without cleanup the old flow stays on the removed pod1" \
	[ "$(udp_from "$KP_NODE" 40001 10.0.0.99 53)" = pod1 ]
kp_check "control: conntrack -L shows the stale entry (reply from 10.244.0.11)" \
	[ "$(kp_node conntrack -L -p udp --orig-dst 10.0.0.99 --orig-port-src 40001 2>/dev/null | grep -c 'src=10.244.0.11')" = 1 ]
kp_node iptables-legacy -t nat -D OUTPUT -d 10.0.0.99 -j OPS-TEST
kp_node iptables-legacy -t nat -F OPS-TEST
kp_node iptables-legacy -t nat -X OPS-TEST
kp_node conntrack -F >/dev/null 2>&1

# ---- 2. the daemon, with a test NOTIFY_SOCKET and its own xtables lock --------
socat -u "UNIX-RECV:$NOTIFY" "OPEN:$NOTES,creat,append" >/dev/null 2>&1 &
KP_PIDS="$KP_PIDS $!"
kp_wait_for 3 test -S "$NOTIFY"
export NOTIFY_SOCKET="$NOTIFY" WATCHDOG_USEC=2000000 XTABLES_LOCKFILE="$LOCK"
kp_start_daemon --manifest-dir="$M" --hostname-override=node1 --cluster-cidr=10.244.0.0/16 \
	--iptables-min-sync-period=200ms --iptables-sync-period=2s \
	--service-cluster-ip-range=10.0.0.0/24,fd00:10::/112 \
	--healthz-bind-address=0.0.0.0:10256 --metrics-bind-address=127.0.0.1:10249 -v 2
unset NOTIFY_SOCKET WATCHDOG_USEC XTABLES_LOCKFILE
kp_check "initial sync happens" kp_wait_for 10 kp_log_has "Initial sync"

H="http://127.0.0.1:10256"
MET="http://127.0.0.1:10249"
code() { kp_node curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-3}" "$1"; }
body() { kp_node curl -s --max-time "${2:-3}" "$1"; }
metric() { body "$MET/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

kp_check "sd_notify: READY=1 after the first sync" kp_wait_for 3 grep -q "READY=1" "$NOTES"
kp_check "sd_notify: STATUS= with counts" kp_wait_for 3 grep -q "STATUS=.*2 services" "$NOTES"
kp_check "sd_notify: WATCHDOG=1 pings" kp_wait_for 3 grep -q "WATCHDOG=1" "$NOTES"

hz=$(body "$H/healthz")
kp_check "/healthz 200" [ "$(code "$H/healthz")" = 200 ]
kp_check "/healthz body has upstream's fields" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert set(j) == {"lastUpdated", "currentTime", "nodeEligible"}, j
assert j["nodeEligible"] is True and " m=+" in j["currentTime"]' "$hz"
kp_check "/healthz is application/json" bash -c "ip netns exec $KP_NODE curl -sI --max-time 3 $H/healthz | grep -qi '^Content-Type: application/json'"
kp_check "/livez 200" [ "$(code "$H/livez")" = 200 ]
kp_check "healthz port: other paths 404" [ "$(code "$H/metrics")" = 404 ]
kp_check "healthz is reachable from outside the node" \
	[ "$(ip netns exec "${KP_ID}-out" curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://192.168.77.1:10256/healthz)" = 200 ]
kp_check "metrics bound to 127.0.0.1 only" \
	[ "$(ip netns exec "${KP_ID}-out" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://192.168.77.1:10249/metrics)" = 000 ]
kp_check "/proxyMode says iptables" [ "$(body "$MET/proxyMode")" = iptables ]
kp_check "/configz holds the configuration" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
c = j["kubeproxy.config.k8s.io"]
assert isinstance(c, dict) and c, j' "$(body "$MET/configz")"
kp_check "metrics port /healthz says ok" [ "$(body "$MET/healthz")" = ok ]

body "$MET/metrics" >"$KP_TMP/metrics.1"
for n in kubeproxy_sync_proxy_rules_duration_seconds_bucket kubeproxy_sync_full_proxy_rules_duration_seconds_count \
	kubeproxy_sync_partial_proxy_rules_duration_seconds_count kubeproxy_sync_proxy_rules_last_timestamp_seconds \
	'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}' kubeproxy_sync_proxy_rules_iptables_restore_failures_total \
	kubeproxy_sync_proxy_rules_endpoint_changes_total kubeproxy_sync_proxy_rules_service_changes_total \
	kubeproxy_network_programming_duration_seconds_count process_cpu_seconds_total \
	process_resident_memory_bytes process_open_fds process_start_time_seconds 'kubeproxy_proxy_healthz_total{code="200"}'; do
	kp_check "/metrics has $n" grep -qF "$n" "$KP_TMP/metrics.1"
done
if command -v promtool >/dev/null; then
	promtool check metrics <"$KP_TMP/metrics.1" >"$KP_TMP/promtool.out" 2>&1
	kp_check "promtool parses /metrics (lint remarks only on upstream's own names)" \
		bash -c "! grep -v -e '^kubeproxy_sync_proxy_rules_iptables_total non-counter' \
			-e '^kubeproxy_sync_proxy_rules_no_local_endpoints_total non-counter' '$KP_TMP/promtool.out' | grep -q ."
else
	kp_log "promtool not installed: /metrics syntax is checked by the unit test's parser"
fi
kp_check "iptables rule gauge counts nat rules" [ "$(metric 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}')" -gt 5 ]

# ---- 3. counters move with changes -----------------------------------------
ep0=$(metric kubeproxy_sync_proxy_rules_endpoint_changes_total)
n0=$(metric kubeproxy_sync_proxy_rules_duration_seconds_count)
np0=$(metric kubeproxy_network_programming_duration_seconds_count)
write_slice lb-1 lb http 8080 TCP "10.244.0.11:node1 10.244.0.12:node2"
kp_check "endpoint change counter moves" kp_wait_for 5 bash -c \
	"[ \"\$(ip netns exec $KP_NODE curl -s $MET/metrics | awk '\$1 == \"kubeproxy_sync_proxy_rules_endpoint_changes_total\" {print \$2}')\" -gt $ep0 ]"
kp_check "sync histogram count moves" kp_wait_for 5 bash -c \
	"[ \"\$(ip netns exec $KP_NODE curl -s $MET/metrics | awk '\$1 == \"kubeproxy_sync_proxy_rules_duration_seconds_count\" {print \$2}')\" -gt $n0 ]"
kp_check "network programming latency observed" kp_wait_for 5 bash -c \
	"[ \"\$(ip netns exec $KP_NODE curl -s $MET/metrics | awk '\$1 == \"kubeproxy_network_programming_duration_seconds_count\" {print \$2}')\" -gt $np0 ]"

# ---- 4. health-check node port follows local endpoints -----------------------
HC="http://192.168.77.1:32100/"
hc_code() { ip netns exec "${KP_ID}-out" curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$HC"; }
hc_is() { [ "$(hc_code)" = "$1" ]; }
kp_check "health check node port: 200 with a local endpoint" kp_wait_for 5 hc_is 200
hcb=$(ip netns exec "${KP_ID}-out" curl -s --max-time 3 "$HC")
kp_check "health check body is upstream's" python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j == {"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 1, "serviceProxyHealthy": True}, j' "$hcb"
write_slice lb-1 lb http 8080 TCP "10.244.0.11:node2 10.244.0.12:node2"
kp_check "health check node port: 503 when the endpoints move away" kp_wait_for 5 bash -c \
	"[ \"\$(ip netns exec ${KP_ID}-out curl -s -o /dev/null -w '%{http_code}' --max-time 3 $HC)\" = 503 ]"
kp_check "health check body: 0 local endpoints" bash -c \
	"ip netns exec ${KP_ID}-out curl -s --max-time 3 $HC | grep -q '\"localEndpoints\": 0'"
write_slice lb-1 lb http 8080 TCP "10.244.0.11:node1 10.244.0.12:node1"
kp_check "health check node port: 200 again, 2 local endpoints" kp_wait_for 5 bash -c \
	"ip netns exec ${KP_ID}-out curl -s --max-time 3 $HC | grep -q '\"localEndpoints\": 2'"
cat >"$M/lb.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.0.0.80
  externalTrafficPolicy: Cluster
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30100}]
Y
kp_check "health check node port closes with externalTrafficPolicy Cluster" kp_wait_for 5 hc_is 000

# ---- 5. stale UDP conntrack entries are deleted ------------------------------
OUT="${KP_ID}-out"
# The external IP is on the outside link's subnet: send it to the node.
ip -n "$OUT" route add 192.168.77.10/32 via 192.168.77.1
kp_check "UDP flow to the ClusterIP reaches pod1" [ "$(udp_from "$KP_NODE" 40002 10.0.0.53 53)" = pod1 ]
kp_check "UDP flow to the NodePort reaches pod1" [ "$(udp_from "$OUT" 40003 192.168.77.1 30053)" = pod1 ]
kp_check "UDP flow to the external IP reaches pod1" [ "$(udp_from "$OUT" 40004 192.168.77.10 53)" = pod1 ]
kp_check "conntrack: the ClusterIP flow's reply comes from pod1" [ "$(ct_reply 10.0.0.53 53)" = 10.244.0.11 ]
kp_check "conntrack: the NodePort flow's reply comes from pod1" [ "$(ct_reply 192.168.77.1 30053)" = 10.244.0.11 ]
write_slice dns-1 dns dns 5353 UDP "10.244.0.12:node1"
same_flow_on() { [ "$(udp_from "$1" "$2" "$3" "$4")" = "$5" ]; }
kp_check "after the endpoint change the ClusterIP flow is redirected to pod2" \
	kp_wait_for 5 same_flow_on "$KP_NODE" 40002 10.0.0.53 53 pod2
kp_check "... and the NodePort flow" same_flow_on "$OUT" 40003 192.168.77.1 30053 pod2
kp_check "... and the external IP flow" same_flow_on "$OUT" 40004 192.168.77.10 53 pod2
kp_check "conntrack: the ClusterIP flow's reply now comes from pod2" [ "$(ct_reply 10.0.0.53 53)" = 10.244.0.12 ]
kp_check "conntrack: no entry left with a reply from pod1" \
	bash -c "! ip netns exec $KP_NODE conntrack -L -p udp 2>/dev/null | grep -q 'src=10.244.0.11 .*sport=5353'"
kp_check "log: stale entries deleted" kp_log_has "stale UDP conntrack entries"

# The same over IPv6: pods get fd00:244::1x, the service fd00:10::53.
ip -n "$KP_NODE" -6 addr add fd00:244::1/64 dev kbr0 nodad
ip -n "$KP_NODE" -6 route add fd00:10::/112 dev kbr0
for i in 1 2; do
	ip -n "${KP_ID}-pod$i" -6 addr add "fd00:244::1$i/64" dev eth0 nodad
	ip -n "${KP_ID}-pod$i" -6 route add default via fd00:244::1
	ip netns exec "${KP_ID}-pod$i" socat "UDP6-RECVFROM:5353,reuseaddr,fork" \
		SYSTEM:"$KP_TMP/answer pod$i udp" >/dev/null 2>&1 &
	KP_PIDS="$KP_PIDS $!"
done
cat >"$M/dns6.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: dns6, namespace: default}
spec:
  clusterIP: fd00:10::53
  clusterIPs: ["fd00:10::53"]
  ipFamilies: [IPv6]
  ports: [{name: dns, protocol: UDP, port: 53, targetPort: 5353}]
Y
slice6() {
	cat <<Y
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns6-1, namespace: default, labels: {kubernetes.io/service-name: dns6}}
addressType: IPv6
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: [{addresses: ["$1"], conditions: {ready: true}, nodeName: node1}]
Y
}
slice6 fd00:244::11 >"$M/dns6-1.yaml.tmp" && mv "$M/dns6-1.yaml.tmp" "$M/dns6-1.yaml"
udp6_from() {
	local i a
	for i in 1 2 3; do
		a=$(echo ping | ip netns exec "$KP_NODE" socat -T 1 - "UDP6:[$2]:$3,sourceport=$1,reuseaddr" 2>/dev/null | awk '{print $1}')
		[ -n "$a" ] && break
	done
	echo "$a"
}
flow6_on() { [ "$(udp6_from 40005 fd00:10::53 53)" = "$1" ]; }
kp_check "IPv6: UDP flow to the ClusterIP reaches pod1" kp_wait_for 5 flow6_on pod1
slice6 fd00:244::12 >"$M/dns6-1.yaml.tmp" && mv "$M/dns6-1.yaml.tmp" "$M/dns6-1.yaml"
kp_check "IPv6: after the endpoint change the same flow is redirected to pod2" kp_wait_for 5 flow6_on pod2
kp_check "IPv6: conntrack holds no entry with a reply from pod1" \
	bash -c "! ip netns exec $KP_NODE conntrack -L -f ipv6 -p udp 2>/dev/null | grep -q 'src=fd00:244::11 '"

# ---- 6. a stalled sync makes /healthz and /livez 503, then 200 again ---------
flock "$LOCK" sleep 30 &
HOLDER=$!
KP_PIDS="$KP_PIDS $HOLDER"
sleep 0.2
write_slice dns-1 dns dns 5353 UDP "10.244.0.11:node1 10.244.0.12:node1"
kp_check "stalled sync: /healthz turns 503" kp_wait_for 25 bash -c \
	"[ \"\$(ip netns exec $KP_NODE curl -s -o /dev/null -w '%{http_code}' --max-time 12 $H/healthz)\" = 503 ]"
kp_check "stalled sync: /livez 503 too" [ "$(code "$H/livez" 12)" = 503 ]
kp_check "stalled sync: failures counted" bash -c \
	"[ \"\$(ip netns exec $KP_NODE curl -s --max-time 12 $MET/metrics | awk '\$1 == \"kubeproxy_sync_proxy_rules_iptables_restore_failures_total\" {print \$2}')\" -gt 0 ]"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null
kp_check "after the stall: /healthz 200 again" kp_wait_for 20 bash -c \
	"[ \"\$(ip netns exec $KP_NODE curl -s -o /dev/null -w '%{http_code}' --max-time 12 $H/healthz)\" = 200 ]"
kp_check "after the stall: 503 answers were counted" bash -c \
	"ip netns exec $KP_NODE curl -s --max-time 3 $MET/metrics | grep -q 'kubeproxy_proxy_healthz_total{code=\"503\"}'"

# ---- 7. robustness: a slow client does not block the others ------------------
ip netns exec "$KP_NODE" socat -u - TCP4:127.0.0.1:10256 < <(printf 'GET /healthz HTTP/1.1\r\n'; sleep 8) >/dev/null 2>&1 &
SLOW=$!
KP_PIDS="$KP_PIDS $SLOW"
sleep 0.3
kp_check "a half-sent request does not block other clients" [ "$(code "$H/healthz")" = 200 ]
# 150 clients that connect and never finish a request: connections stay
# bounded (64 per server) and a probe still gets through once the crowd is
# older than a second.
ip netns exec "$KP_NODE" python3 -c '
import socket, time
held = []
for i in range(150):
    try:
        c = socket.create_connection(("127.0.0.1", 10256), timeout=2)
        if i % 2:
            c.send(b"GET /healthz HTTP/1.1\r\n")
        held.append(c)
    except OSError:
        pass
time.sleep(6)' &
CROWD=$!
KP_PIDS="$KP_PIDS $CROWD"
sleep 1.5
kp_check "a crowd of silent clients does not lock probes out" [ "$(code "$H/healthz")" = 200 ]
kp_check "open descriptors stay bounded under the crowd" [ "$(metric process_open_fds)" -lt 120 ]
kill "$CROWD" 2>/dev/null
big=$(head -c 20000 /dev/zero | tr '\0' a)
kp_check "oversized request head is refused with 431" [ "$(kp_node curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "X-Big: $big" "$H/healthz")" = 431 ]

# ---- 8. stop ---------------------------------------------------------------
kp_stop_daemon
kp_check "daemon exits 0 on SIGTERM" [ "$KP_DAEMON_RC" = 0 ]
kp_check "sd_notify: STOPPING=1 on exit" kp_wait_for 2 grep -q "STOPPING=1" "$NOTES"
kp_finish
