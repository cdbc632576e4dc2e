#!/bin/bash
# The daemon (iptables mode) fed by tests/fakeapi, all inside network
# namespaces created here: no rules before Services and EndpointSlices are
# both listed; creates, updates and deletes made through the server reach
# the packet path; the right rules after every injected fault (dropped
# connections, 410 in both forms, 429, one-byte writes, a relist that must
# synthesize a delete); the old rules stay while the server is down, and the
# daemon catches up when it returns.
. "$(dirname "$0")/lib.sh"
kp_require_root
command -v python3 >/dev/null || kp_skip "needs python3 (tests/fakeapi)"
command -v openssl >/dev/null || kp_skip "needs openssl (test CA)"
command -v socat >/dev/null || kp_skip "needs socat (test backends)"
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
FAKE="$KP_SRCDIR/tests/fakeapi/fakeapi.py"
T=$KP_TMP

kp_topology 2
for p in pod1 pod2; do kp_backend $p 8080; done

# Test CA and server certificate (the daemon authenticates with a token).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.crt" -days 2 \
	-subj /CN=fake-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/server.key" -out "$T/server.csr" \
	-subj /CN=fakeapi 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/server.ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
	-out "$T/server.crt" -days 2 -extfile "$T/server.ext" 2>/dev/null

# start_fake [ARGS...]: the API server on the node's loopback.
start_fake() {
	rm -f "$T/ports"
	kp_node python3 "$FAKE" --cert "$T/server.crt" --key "$T/server.key" --token s3cr3t-tok \
		--ports-file "$T/ports" "$@" >>"$T/fake.log" 2>&1 &
	FAKE_PID=$!
	KP_PIDS="$KP_PIDS $FAKE_PID"
	kp_wait_for 10 test -s "$T/ports"
	read -r API CTL <"$T/ports"
}
P() { kp_node curl -s -f -XPOST "http://127.0.0.1:$CTL/$1" -d "$2" >/dev/null; }
svc() { # svc NAME IP PORT [NODEPORT]
	local type=ClusterIP np=""
	[ -n "${4:-}" ] && { type=NodePort; np=",\"nodePort\":$4"; }
	P apply "{\"resource\":\"services\",\"object\":{\"metadata\":{\"name\":\"$1\",\"namespace\":\"default\"},\"spec\":{\"type\":\"$type\",\"clusterIP\":\"$2\",\"clusterIPs\":[\"$2\"],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":$3$np}]}}}"
}
slice() { # slice NAME SERVICE IP...
	local name=$1 s=$2 eps="" ip
	shift 2
	for ip in "$@"; do eps="$eps${eps:+,}{\"addresses\":[\"$ip\"],\"conditions\":{\"ready\":true}}"; done
	P apply "{\"resource\":\"endpointslices\",\"object\":{\"metadata\":{\"name\":\"$name\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$s\"}},\"addressType\":\"IPv4\",\"endpoints\":[$eps],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}]}}"
}
del() { P delete "{\"resource\":\"$1\",\"namespace\":\"default\",\"name\":\"$2\"}"; }
fault() { P fault "$1"; }
answers() { for _ in $(seq "$4"); do kp_get "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
# serves NS IP PORT EXPECTED: within 10 s, 12 requests are answered by exactly EXPECTED.
is_served() { [ "$(answers "$1" "$2" "$3" 12)" = "$4" ]; }
serves() { kp_wait_for 10 is_served "$@"; }
nat_has() { kp_node iptables-legacy -t nat -S 2>/dev/null | grep -q -- "$1"; }
nat_lacks() { ! nat_has "$1"; }

start_fake
svc web 10.0.0.10 80 30080
slice web-a web 10.244.0.11 10.244.0.12
cat >"$T/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "https://127.0.0.1:$API", certificate-authority: ca.crt}}]
users: [{name: proxy, user: {token: s3cr3t-tok}}]
contexts: [{name: c, context: {cluster: fake, user: proxy}}]
current-context: c
EOF

# Services cannot be listed at first: no rules may be written meanwhile.
fault '{"type":"status","verb":"list","resource":"services","code":500,"count":2}'
kp_start_daemon --kubeconfig="$T/kubeconfig" --hostname-override=node-1 \
	--cluster-cidr=10.244.0.0/16 --iptables-min-sync-period=100ms \
	--nodeport-addresses=192.168.77.0/24
sleep 1
kp_check "before Services are listed: no sync, no KUBE-SVC chains" \
	bash -c "! grep -q 'Initial sync' '$T/kube-proxy.log' && ! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q KUBE-SVC-"
kp_check "list failure logged" kp_log_has "Failed to list \*v1.Service: HTTP 500"
kp_check "initial sync once both lists completed" kp_wait_for 15 kp_log_has "Initial sync"
kp_check "log: source is the API server" kp_log_has "Source: API server https://127.0.0.1:$API"
kp_check "ClusterIP reaches both pods" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "
kp_check "NodePort from outside reaches both pods" serves "${KP_ID}-out" 192.168.77.1 30080 "pod1 pod2 "

# Updates, creates, deletes through the server.
slice web-a web 10.244.0.12
kp_check "slice update: only pod2 remains" serves "$KP_NODE" 10.0.0.10 80 "pod2 "
svc api 10.0.0.20 81
slice api-a api 10.244.0.11
kp_check "new service reachable" serves "$KP_NODE" 10.0.0.20 81 "pod1 "

# Faults, each followed by a change that must arrive.
fault '{"type":"drop_mid_line","count":1}'
slice web-a web 10.244.0.11
kp_check "connection dropped mid-event: change arrives after re-watch" serves "$KP_NODE" 10.0.0.10 80 "pod1 "
fault '{"type":"slow","on":true}'
slice web-a web 10.244.0.11 10.244.0.12
kp_check "one-byte writes: change arrives" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "
fault '{"type":"slow","on":false}'
fault '{"type":"watch_http_410","count":3}'
fault '{"type":"end_watches"}'
slice api-a api 10.244.0.12
kp_check "HTTP 410 + relist: change arrives" serves "$KP_NODE" 10.0.0.20 81 "pod2 "
fault '{"type":"expire_active"}'
slice api-a api 10.244.0.11 10.244.0.12
kp_check "in-stream 410 + relist: change arrives" serves "$KP_NODE" 10.0.0.20 81 "pod1 pod2 "
fault '{"type":"status","verb":"watch","code":429,"retry_after":1,"count":3}'
fault '{"type":"end_watches"}'
slice api-a api 10.244.0.11
kp_check "429 Retry-After: change arrives" serves "$KP_NODE" 10.0.0.20 81 "pod1 "

# Deleted while the daemon could not watch: the relist must synthesize it.
fault '{"type":"refuse","on":true}'
fault '{"type":"end_watches"}'
sleep 0.5
del services api
del endpointslices api-a
P compact '{}'
fault '{"type":"refuse","on":false}'
kp_check "relist diff: deleted service's rules removed" kp_wait_for 15 nat_lacks "default/api:http"
kp_check "relist diff: web untouched" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "

# Server down: rules stay; back up (resourceVersions never go backwards).
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
sleep 3
kp_check "server down: watch failures logged" kp_log_has "Failed to watch"
kp_check "server down: ClusterIP still served" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "
kp_check "server down: NodePort still served" serves "${KP_ID}-out" 192.168.77.1 30080 "pod1 pod2 "
start_fake --port "$API" --initial-rv 100000
svc web 10.0.0.10 80 30080
slice web-a web 10.244.0.12
kp_check "server back: daemon caught up" serves "$KP_NODE" 10.0.0.10 80 "pod2 "
del services web
kp_check "service deleted: its rules are gone" kp_wait_for 10 nat_lacks "default/web:http"

kp_stop_daemon
kp_check "daemon exits cleanly (rc $KP_DAEMON_RC)" [ "$KP_DAEMON_RC" = 0 ]
kp_check "token never logged" bash -c "! grep -q s3cr3t '$T/kube-proxy.log'"
kp_finish
