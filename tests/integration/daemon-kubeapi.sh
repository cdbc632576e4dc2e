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
T=$KP_TMP
. "$KP_SRCDIR/tests/fakeapi/helpers.sh"
FAKE_RUN="ip netns exec $KP_NODE"

kp_topology 2
for p in pod1 pod2; do kp_backend $p 8080; done
fake_pki "$T"   # the daemon authenticates with a token

# start_fake [ARGS...]: the API server on the node's loopback.
start_fake() {
	fake_start "$T" --token s3cr3t-tok "$@"
	KP_PIDS="$KP_PIDS $FAKE_PID"
	API=$FAKE_API CTL=$FAKE_CTL
}
answers() { for _ in $(seq "$4"); do kp_get "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
# serves NS IP PORT EXPECTED: within 10 s, 12 requests are answered by exactly EXPECTED.
is_served() { [ "$(answers "$1" "$2" "$3" 12)" = "$4" ]; }
serves() { kp_wait_for 10 is_served "$@"; }
nat_has() { kp_node iptables-legacy -t nat -S 2>/dev/null | grep -q -- "$1"; }
nat_lacks() { ! nat_has "$1"; }

start_fake
fake_svc web 10.0.0.10 80 30080
fake_slice web-a web 10.244.0.11 10.244.0.12
cat >"$T/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "https://127.0.0.1:$API", certificate-authority: ca.crt}}]
users: [{name: proxy, user: {token: s3cr3t-tok}}]
contexts: [{name: c, context: {cluster: fake, user: proxy}}]
current-context: c
EOF

# Services cannot be listed at first: no rules may be written meanwhile.
fake_fault '{"type":"status","verb":"list","resource":"services","code":500,"count":2}'
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
fake_slice web-a web 10.244.0.12
kp_check "slice update: only pod2 remains" serves "$KP_NODE" 10.0.0.10 80 "pod2 "
fake_svc api 10.0.0.20 81
fake_slice api-a api 10.244.0.11
kp_check "new service reachable" serves "$KP_NODE" 10.0.0.20 81 "pod1 "
# node_json EXTRA-METADATA EXTRA-SPEC: our Node, in zone-a, as the fake's apply body.
node_json() {
	echo "{\"resource\":\"nodes\",\"object\":{\"metadata\":{\"name\":\"node-1\",\"labels\":{\"topology.kubernetes.io/zone\":\"zone-a\"}$1},\"spec\":{\"podCIDR\":\"10.244.0.0/24\"$2}}}"
}
# Topology-aware routing: our node is in zone-a and every endpoint carries
# zone hints, so cluster traffic goes only to the one hinted for zone-a.
fake_post apply "$(node_json "" "")"
fake_svc topo 10.0.0.30 83
fake_post apply '{"resource":"endpointslices","object":{"metadata":{"name":"topo-a","namespace":"default","labels":{"kubernetes.io/service-name":"topo"}},"addressType":"IPv4","endpoints":[{"addresses":["10.244.0.11"],"conditions":{"ready":true},"zone":"zone-a","hints":{"forZones":[{"name":"zone-a"}]}},{"addresses":["10.244.0.12"],"conditions":{"ready":true},"zone":"zone-b","hints":{"forZones":[{"name":"zone-b"}]}}],"ports":[{"name":"http","protocol":"TCP","port":8080}]}}'
kp_check "topology hints: only the endpoint hinted for our zone" serves "$KP_NODE" 10.0.0.30 83 "pod1 "
fake_post apply '{"resource":"endpointslices","object":{"metadata":{"name":"topo-a","namespace":"default","labels":{"kubernetes.io/service-name":"topo"}},"addressType":"IPv4","endpoints":[{"addresses":["10.244.0.11"],"conditions":{"ready":true},"zone":"zone-a"},{"addresses":["10.244.0.12"],"conditions":{"ready":true},"zone":"zone-b","hints":{"forZones":[{"name":"zone-b"}]}}],"ports":[{"name":"http","protocol":"TCP","port":8080}]}}'
kp_check "topology hints: one endpoint without hints turns them off" serves "$KP_NODE" 10.0.0.30 83 "pod1 pod2 "

# A node on its way out (cluster autoscaler taint, then deletionTimestamp):
# /healthz says 503 with nodeEligible false so load balancers drain it,
# /livez stays 200, the rules stay, and no sync is spent on it.
hz() { kp_node curl -s -o "$T/hz.body" -w '%{http_code}' "http://127.0.0.1:10256$1"; }
hz_is() { [ "$(hz "$1")" = "$2" ]; }
kp_check "healthy node: /healthz 200" kp_wait_for 5 hz_is /healthz 200
syncs() { kp_node curl -s http://127.0.0.1:10249/metrics | awk '$1 == "kubeproxy_sync_proxy_rules_duration_seconds_count" {print $2}'; }
syncs0=$(syncs)
fake_post apply "$(node_json "" ',"taints":[{"key":"ToBeDeletedByClusterAutoscaler","value":"1700000000","effect":"NoSchedule"}]')"
kp_check "autoscaler taint: /healthz 503" kp_wait_for 5 hz_is /healthz 503
kp_check "...with nodeEligible false" grep -q '"nodeEligible": false' "$T/hz.body"
kp_check "...while /livez stays 200" hz_is /livez 200
kp_check "...the change is logged" kp_log_has "Node node-1 is being removed"
kp_check "...services are still served" serves "$KP_NODE" 10.0.0.10 80 "pod2 "
sleep 0.5
kp_check "...and a taint-only Node update costs no sync ($syncs0 syncs before, $(syncs) after)" \
	eval '[ -n "$syncs0" ] && [ "$(syncs)" = "$syncs0" ]'
fake_post apply "$(node_json "" "")"
kp_check "taint removed: /healthz 200 again" kp_wait_for 5 hz_is /healthz 200
fake_post apply "$(node_json ',"deletionTimestamp":"2026-11-27T10:00:00Z"' "")"
kp_check "deletionTimestamp: /healthz 503" kp_wait_for 5 hz_is /healthz 503
fake_post apply "$(node_json "" "")"
kp_check "...and 200 when it is gone again" kp_wait_for 5 hz_is /healthz 200

# The API server owns ClusterIPs: no allocation, only a warning for one
# outside --service-cluster-ip-range (default 10.0.0.0/24).
fake_svc odd 10.1.0.5 82
kp_check "ClusterIP outside the service range is warned about" \
	kp_wait_for 5 kp_log_has "Service default/odd: ClusterIP 10.1.0.5 is outside --service-cluster-ip-range 10.0.0.0/24"
kp_check "no ClusterIP allocation with an API server" [ ! -e "$KP_TMP/state/clusterip-allocations" ]

# Faults, each followed by a change that must arrive.
fake_fault '{"type":"drop_mid_line","count":1}'
fake_slice web-a web 10.244.0.11
kp_check "connection dropped mid-event: change arrives after re-watch" serves "$KP_NODE" 10.0.0.10 80 "pod1 "
fake_fault '{"type":"slow","on":true}'
fake_slice web-a web 10.244.0.11 10.244.0.12
kp_check "one-byte writes: change arrives" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "
fake_fault '{"type":"slow","on":false}'
fake_fault '{"type":"watch_http_410","count":3}'
fake_fault '{"type":"end_watches"}'
fake_slice api-a api 10.244.0.12
kp_check "HTTP 410 + relist: change arrives" serves "$KP_NODE" 10.0.0.20 81 "pod2 "
fake_fault '{"type":"expire_active"}'
fake_slice api-a api 10.244.0.11 10.244.0.12
kp_check "in-stream 410 + relist: change arrives" serves "$KP_NODE" 10.0.0.20 81 "pod1 pod2 "
fake_fault '{"type":"status","verb":"watch","code":429,"retry_after":1,"count":3}'
fake_fault '{"type":"end_watches"}'
fake_slice api-a api 10.244.0.11
kp_check "429 Retry-After: change arrives" serves "$KP_NODE" 10.0.0.20 81 "pod1 "

# Deleted while the daemon could not watch: the relist must synthesize it.
fake_fault '{"type":"refuse","on":true}'
fake_fault '{"type":"end_watches"}'
sleep 0.5
fake_del services api
fake_del endpointslices api-a
fake_post compact '{}'
fake_fault '{"type":"refuse","on":false}'
kp_check "relist diff: deleted service's rules removed" kp_wait_for 15 nat_lacks "default/api:http"
kp_check "relist diff: web untouched" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "

# Server down: rules stay; back up (resourceVersions never go backwards).
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
sleep 3
kp_check "server down: watch failures logged" kp_log_has "Failed to watch"
kp_check "server down: ClusterIP still served" serves "$KP_NODE" 10.0.0.10 80 "pod1 pod2 "
kp_check "server down: NodePort still served" serves "${KP_ID}-out" 192.168.77.1 30080 "pod1 pod2 "
start_fake --port "$API" --initial-rv 100000
fake_svc web 10.0.0.10 80 30080
fake_slice web-a web 10.244.0.12
kp_check "server back: daemon caught up" serves "$KP_NODE" 10.0.0.10 80 "pod2 "
fake_del services web
kp_check "service deleted: its rules are gone" kp_wait_for 10 nat_lacks "default/web:http"

kp_stop_daemon
kp_check "daemon exits cleanly (rc $KP_DAEMON_RC)" [ "$KP_DAEMON_RC" = 0 ]
kp_check "token never logged" bash -c "! grep -q s3cr3t '$T/kube-proxy.log'"
kp_finish
