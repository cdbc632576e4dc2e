#!/bin/bash
# The daemon on a manifest directory, in its own network namespaces:
# start-up log lines, ClusterIP allocation and its persistence, reaction to
# manifests added, edited, broken and removed, signals, and --cleanup.
. "$(dirname "$0")/lib.sh"
kp_require_root
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
kp_topology 3
for p in pod1 pod2 pod3; do kp_backend $p 8080; done

M="$KP_TMP/manifests"
mkdir -p "$M"
cp "$KP_SRCDIR/contrib/examples/web.yaml" "$KP_SRCDIR/contrib/examples/shop.json" "$M/"
ALLOC="$KP_TMP/state/clusterip-allocations"

alloc_of() { awk -v k="$1" '$1 == k {print $2}' "$ALLOC" 2>/dev/null; }
has_alloc() { [ -n "$(alloc_of "$1")" ]; }
no_alloc() { [ -z "$(alloc_of "$1")" ]; }
error_names() { grep '^E' "$KP_TMP/kube-proxy.log" | grep -q -- "$1"; }
# answers NS IP PORT N: the distinct pod names answering N requests.
answers() { for _ in $(seq "$4"); do kp_get "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
nat_has() { kp_node iptables-legacy -t nat -S 2>/dev/null | grep -q -- "$1"; }

# A bad flag is refused before anything is touched.
out=$(kp_node "$KP_BIN" --iptables-masquerade-bit=40 --manifest-dir="$M" --log-file= 2>&1); rc=$?
kp_check "bad flag exits non-zero" [ "$rc" -ne 0 ]
kp_check "bad flag error names the flag" grep -q "masquerade-bit" <<<"$out"
kp_check "bad flag changed no rules" bash -c "! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q KUBE-"

# The metrics port is taken (say, by upstream's kube-proxy during a switch):
# fatal only with --bind-address-hard-fail, as upstream.
kp_node socat TCP4-LISTEN:10249,bind=127.0.0.1,reuseaddr,fork SYSTEM:true >/dev/null 2>&1 &
squatter=$!
KP_PIDS="$KP_PIDS $squatter"
kp_wait_for 3 bash -c "ip netns exec $KP_NODE ss -ltn | grep -q 127.0.0.1:10249"
kp_node timeout 10 "$KP_BIN" --manifest-dir="$M" --state-dir="$KP_TMP/hf" --log-file= \
	--bind-address-hard-fail >"$KP_TMP/hf.out" 2>&1; rc=$?
kp_check "taken metrics port + --bind-address-hard-fail: exits non-zero" [ "$rc" -ne 0 -a "$rc" -ne 124 ]
kp_check "...naming the address" grep -q "127.0.0.1:10249" "$KP_TMP/hf.out"
kp_node timeout -s TERM 3 "$KP_BIN" --manifest-dir="$M" --state-dir="$KP_TMP/hf" --log-file= >"$KP_TMP/hf.out" 2>&1; rc=$?
kp_check "taken metrics port without it: keeps running (until timeout)" [ "$rc" = 124 ]
kp_check "...and says it runs without the servers" grep -q "running without the healthz and metrics servers" "$KP_TMP/hf.out"
kill "$squatter"; wait "$squatter" 2>/dev/null
kp_node "$KP_BIN" --cleanup --log-file= >/dev/null 2>&1

# --dry-run prints rules and touches nothing: no state file, no kernel rules.
kp_node "$KP_BIN" --dry-run --manifest-dir="$M" --state-dir="$KP_TMP/dry" --log-file= >"$KP_TMP/dry.out" 2>/dev/null
kp_check "--dry-run prints the service chains" grep -q -- "-A KUBE-SERVICES .*default/web:http cluster IP" "$KP_TMP/dry.out"
kp_check "--dry-run writes no state" [ ! -e "$KP_TMP/dry" ]
kp_check "--dry-run writes no rules" bash -c "! ip netns exec $KP_NODE iptables-legacy-save | grep -q KUBE-"

kp_start_daemon --manifest-dir="$M" --hostname-override=demo-node --cluster-cidr=10.244.0.0/16 \
	--iptables-min-sync-period=200ms --nodeport-addresses=192.168.77.0/24
kp_check "initial sync happens" kp_wait_for 10 kp_log_has "Initial sync"
kp_check "log: Using iptables Proxier" kp_log_has "Using iptables Proxier"
kp_check "log: service CIDR" kp_log_has "Service CIDR: 10.0.0.0/24"
kp_check "log: cluster CIDR" kp_log_has "Cluster CIDR: 10.244.0.0/16"
kp_check "log: node name" kp_log_has "Node name: demo-node"
kp_check "log: source" kp_log_has "Source: manifest directory $M"
kp_check "log lines are klog-formatted" grep -qE '^I[0-9]{4} [0-9:.]{15} +[0-9]+ [a-z_]+\.c:[0-9]+\] ' "$KP_TMP/kube-proxy.log"

web=$(alloc_of default/web); shop=$(alloc_of default/shop)
kp_check "web got a ClusterIP in 10.0.0.0/24 ($web)" grep -qE '^10\.0\.0\.[0-9]+$' <<<"$web"
kp_check "shop got a different ClusterIP ($shop)" [ -n "$shop" -a "$shop" != "$web" ]
kp_check "ClusterIP reaches both web pods" [ "$(answers "$KP_NODE" "$web" 80 20)" = "pod1 pod2 " ]
kp_check "NodePort from outside reaches shop's pod" [ "$(answers "${KP_ID}-out" 192.168.77.1 30080 3)" = "pod2 " ]

# Added: a new service appears within a second or two.
cat >"$M/api.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  ports: [{name: http, port: 81, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: api, namespace: default}
subsets:
- addresses: [{ip: 10.244.0.13}]
  ports: [{name: http, port: 8080}]
Y
kp_check "added manifest gets a ClusterIP" kp_wait_for 3 has_alloc default/api
api=$(alloc_of default/api)
kp_check "added service reaches pod3" kp_wait_for 3 bash -c "ip netns exec $KP_NODE curl -s --max-time 1 http://$api:81/ | grep -q pod3"

# Edited: web moves to pod3 only.
sed -i 's/10.244.0.11/10.244.0.13/; /10.244.0.12/,+2d' "$M/web.yaml"
kp_check "edited endpoints take effect" kp_wait_for 3 bash -c "[ \"\$(for i in 1 2 3 4 5 6; do ip netns exec $KP_NODE curl -s --max-time 1 http://$web/; done | awk '{print \$1}' | sort -u | tr '\n' ' ')\" = 'pod3 ' ]"

# Broken: the error names the file; the last good content keeps serving.
cp "$M/web.yaml" "$KP_TMP/web.good"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n  namespace: [oops\n' >"$M/web.yaml"
kp_check "broken file is reported by name" kp_wait_for 3 error_names web.yaml
sleep 0.5
kp_check "broken file: web keeps its ClusterIP" [ "$(alloc_of default/web)" = "$web" ]
kp_check "broken file: web keeps being served" [ "$(answers "$KP_NODE" "$web" 80 3)" = "pod3 " ]
kp_check "broken file: other services unaffected" [ "$(answers "$KP_NODE" "$shop" 8000 2)" = "pod2 " ]
cp "$KP_TMP/web.good" "$M/web.yaml"

# Removed: allocation released, rules gone, connection refused.
rm "$M/shop.json"
kp_check "removed service releases its ClusterIP" kp_wait_for 3 no_alloc default/shop
kp_check "removed service's rules are gone" kp_wait_for 3 bash -c "! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q 'default/shop:http'"

# Someone flushes the nat table (mangle's canary survives): the next partial
# sync finds its kept chains gone and falls back to a full sync.
kp_node iptables-legacy -t nat -F
kp_node iptables-legacy -t nat -X
sed -i 's/10.244.0.13/10.244.0.11/' "$M/api.yaml"
kp_check "after a nat flush, the changed service is back" kp_wait_for 5 bash -c "ip netns exec $KP_NODE curl -s --max-time 1 http://$api:81/ | grep -q pod1"
kp_check "after a nat flush, unchanged services are back too" [ "$(answers "$KP_NODE" "$web" 80 3)" = "pod3 " ]

# SIGUSR1 reopens the log after rotation.
mv "$KP_TMP/kube-proxy.log" "$KP_TMP/kube-proxy.log.1"
kill -USR1 "$KP_DAEMON"
kp_check "SIGUSR1 reopens the log file" kp_wait_for 3 grep -q "Reopened the log file" "$KP_TMP/kube-proxy.log"

# SIGTERM: clean exit, rules stay.
kp_stop_daemon
kp_check "SIGTERM exits 0" [ "$KP_DAEMON_RC" = 0 ]
kp_check "rules stay after SIGTERM" nat_has "-A KUBE-SERVICES"

# Restart: same ClusterIPs.
kp_start_daemon --manifest-dir="$M" --hostname-override=demo-node --cluster-cidr=10.244.0.0/16
kp_check "restart syncs again" kp_wait_for 10 kp_log_has "Initial sync"
kp_check "restart keeps web's ClusterIP" [ "$(alloc_of default/web)" = "$web" ]
kp_check "restart keeps api's ClusterIP" [ "$(alloc_of default/api)" = "$api" ]
# Without --nodeport-addresses, NodePorts answer on 127.0.0.1 (route_localnet),
# so the localnet martian filter is installed, as upstream does.
kp_check "localnet firewall in the kernel (upstream's rule)" bash -c \
	"ip netns exec $KP_NODE iptables-legacy -S KUBE-FIREWALL | grep -q -- '! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP'"
kp_check "localnet firewall jumped to from INPUT" bash -c "ip netns exec $KP_NODE iptables-legacy -S INPUT | grep -q -- '-A INPUT -j KUBE-FIREWALL'"
kp_stop_daemon

# --cleanup removes every KUBE- chain and jump, and leaves foreign rules.
kp_node iptables-legacy -t nat -N FOREIGN
kp_node iptables-legacy -t nat -A PREROUTING -j FOREIGN
kp_node "$KP_BIN" --cleanup --log-file= >/dev/null 2>&1
kp_check "--cleanup removes all KUBE- chains" bash -c "! ip netns exec $KP_NODE iptables-legacy-save | grep -q KUBE-"
kp_check "--cleanup keeps foreign chains" nat_has "-A PREROUTING -j FOREIGN"
kp_finish
