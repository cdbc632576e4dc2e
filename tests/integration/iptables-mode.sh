#!/bin/bash
# The iptables mode with real packets, in network namespaces created here:
# every service kind reaches every ready backend, session affinity sticks,
# readiness and endpoint changes take effect, services without endpoints
# refuse, externalTrafficPolicy Local keeps the client address,
# loadBalancerSourceRanges filter, UDP and IPv6 work, chain names are
# upstream's, foreign rules survive syncs and --cleanup, a restart keeps
# established connections, and --dry-run output is valid restore input.
. "$(dirname "$0")/lib.sh"
kp_require_root
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
command -v socat >/dev/null || kp_skip "needs socat"
command -v curl >/dev/null || kp_skip "needs curl"

kp_topology 4
for p in pod1 pod2 pod3 pod4; do kp_backend $p 8080; done
kp_backend pod1 5353 udp
kp_backend pod2 5353 udp

# Hairpin mode on the bridge ports, as kubelet's --hairpin-mode=hairpin-veth
# sets it (with br_netfilter loaded, a pod reaching itself through a
# ClusterIP is bridged back out of the port it came in on).
for dev in $(ip -n "$KP_NODE" -o link show master kbr0 | awk -F': ' '{print $2}' | cut -d@ -f1); do
	ip -n "$KP_NODE" link set dev "$dev" type bridge_slave hairpin on
done

# IPv6 on the same wires: node fd00:10:244::1, pods fd00:10:244::1N.
ip -n "$KP_NODE" addr add fd00:10:244::1/64 dev kbr0 nodad
ip -n "$KP_NODE" route add fd00:10:96::/112 dev kbr0
kp_node sysctl -qw net.ipv6.conf.all.forwarding=1
for i in 1 2; do
	ns="${KP_ID}-pod$i"
	ip -n "$ns" addr add "fd00:10:244::1$i/64" dev eth0 nodad
	ip -n "$ns" route add default via fd00:10:244::1
	ip netns exec "$ns" socat TCP6-LISTEN:8086,reuseaddr,fork \
		SYSTEM:"$KP_TMP/answer pod$i tcp" >/dev/null 2>&1 &
	KP_PIDS="$KP_PIDS $!"
done
# An echo server for the long-lived connection.
ip netns exec "${KP_ID}-pod4" socat TCP4-LISTEN:9000,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
KP_PIDS="$KP_PIDS $!"

OUT="${KP_ID}-out"
M="$KP_TMP/manifests"
mkdir -p "$M"

# slice NAME SERVICE PORTNAME PORT PROTO "ip:ready:node ..." [IPv6]
slice() {
	local name=$1 svc=$2 pname=$3 port=$4 proto=$5 eps=$6 fam=${7:-IPv4} e ip ready node
	cat <<Y
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name, namespace: default, labels: {kubernetes.io/service-name: $svc}}
addressType: $fam
ports: [{name: $pname, protocol: $proto, port: $port}]
endpoints:
Y
	for e in $eps; do
		ip=${e%%;*}; e=${e#*;}; ready=${e%%;*}; node=${e#*;}
		echo "  - {addresses: [\"$ip\"], conditions: {ready: $ready}, nodeName: $node}"
	done
}

write_manifests() {
	cat >"$M/web.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: ClusterIP
  clusterIP: 10.0.0.10
  externalIPs: [192.168.99.10]
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
$(slice web-1 web http 8080 TCP "10.244.0.11;true;demo-node 10.244.0.12;${WEB2_READY:-true};other-node")
Y
	cat >"$M/np.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.0.0.11
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30080}]
$(slice np-1 np http 8080 TCP "${NP_EPS:-10.244.0.11;true;demo-node 10.244.0.12;true;demo-node}")
Y
	cat >"$M/local.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.0.0.12
  externalTrafficPolicy: Local
  healthCheckNodePort: 30300
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30081}]
status:
  loadBalancer: {ingress: [{ip: 203.0.113.10}]}
$(slice local-1 local http 8080 TCP "10.244.0.13;true;demo-node 10.244.0.14;true;other-node")
Y
	cat >"$M/sticky.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.0.0.13
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
$(slice sticky-1 sticky http 8080 TCP "10.244.0.11;true;demo-node 10.244.0.12;true;demo-node 10.244.0.13;true;demo-node")
Y
	cat >"$M/empty.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.0.0.14
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30082}]
Y
	cat >"$M/dns.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: 10.0.0.15
  ports: [{name: dns, protocol: UDP, port: 53, targetPort: 5353}]
$(slice dns-1 dns dns 5353 UDP "10.244.0.11;true;demo-node 10.244.0.12;true;demo-node")
Y
	cat >"$M/fw.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: fw-open, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.0.0.16
  loadBalancerSourceRanges: [192.168.77.0/24]
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30083}]
status:
  loadBalancer: {ingress: [{ip: 203.0.113.20}]}
$(slice fw-open-1 fw-open http 8080 TCP "10.244.0.12;true;demo-node")
---
apiVersion: v1
kind: Service
metadata: {name: fw-closed, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.0.0.17
  loadBalancerSourceRanges: [10.9.9.0/24]
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30084}]
status:
  loadBalancer: {ingress: [{ip: 203.0.113.30}]}
$(slice fw-closed-1 fw-closed http 8080 TCP "10.244.0.12;true;demo-node")
Y
	cat >"$M/policies.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: itp, namespace: default}
spec:
  clusterIP: 10.0.0.21
  internalTrafficPolicy: Local
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
$(slice itp-1 itp http 8080 TCP "10.244.0.11;true;demo-node 10.244.0.12;true;other-node")
---
apiVersion: v1
kind: Service
metadata: {name: itp-none, namespace: default}
spec:
  clusterIP: 10.0.0.22
  internalTrafficPolicy: Local
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
$(slice itp-none-1 itp-none http 8080 TCP "10.244.0.12;true;other-node")
---
apiVersion: v1
kind: Service
metadata: {name: etp-none, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.0.0.23
  externalTrafficPolicy: Local
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30085}]
$(slice etp-none-1 etp-none http 8080 TCP "10.244.0.12;true;other-node")
Y
	cat >"$M/echo.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  clusterIP: 10.0.0.18
  ports: [{name: echo, protocol: TCP, port: 9000}]
$(slice echo-1 echo echo 9000 TCP "10.244.0.14;true;demo-node")
Y
	cat >"$M/dual.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: default}
spec:
  clusterIP: 10.0.0.19
  clusterIPs: [10.0.0.19, "fd00:10:96::19"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8086}]
$(slice dual-4 dual http 8086 TCP "10.244.0.11;true;demo-node")
$(slice dual-6 dual http 8086 TCP "fd00:10:244::11;true;demo-node fd00:10:244::12;true;demo-node" IPv6)
Y
}

# answers NS IP PORT N: the distinct pod names answering N requests.
answers() { for _ in $(seq "$4"); do kp_get "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
answers6() {
	for _ in $(seq "$4"); do
		ip netns exec "$1" curl -s -g --max-time 3 "http://[$2]:$3/" 2>/dev/null
	done | awk '{print $1}' | sort -u | tr '\n' ' '
}
udp_answers() { for _ in $(seq "$4"); do kp_udp "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
nat_save() { kp_node iptables-legacy-save -t nat 2>/dev/null; }
# upstream's chain hash: base32(sha256(s))[:16]
hash16() { printf '%s' "$1" | sha256sum | cut -d' ' -f1 | perl -ne 'print pack("H*", $_)' | base32 -w0 | cut -c1-16; }

# Foreign rules and chains that must survive everything.
kp_node iptables-legacy -t nat -N FOREIGN
kp_node iptables-legacy -t nat -A FOREIGN -s 198.51.100.7 -j RETURN
kp_node iptables-legacy -t nat -A PREROUTING -j FOREIGN
kp_node iptables-legacy -t filter -A INPUT -s 198.51.100.7 -j ACCEPT
foreign_ok() {
	nat_save | grep -q -- "-A PREROUTING -j FOREIGN" &&
	nat_save | grep -q -- "-A FOREIGN -s 198.51.100.7/32 -j RETURN" &&
	kp_node iptables-legacy-save -t filter | grep -q -- "-A INPUT -s 198.51.100.7/32 -j ACCEPT"
}

write_manifests
ARGS=(--manifest-dir="$M" --hostname-override=demo-node
	--cluster-cidr=10.244.0.0/16,fd00:10:244::/64
	--service-cluster-ip-range=10.0.0.0/24,fd00:10:96::/112
	--iptables-min-sync-period=100ms --proxy-mode=iptables)

# --dry-run: valid input for iptables-legacy-restore, touches nothing.
kp_node "$KP_BIN" "${ARGS[@]}" --dry-run --log-file= --state-dir="$KP_TMP/dry-state" >"$KP_TMP/dry.txt" 2>"$KP_TMP/dry.err"
kp_check "--dry-run exits 0" [ $? = 0 ]
kp_check "--dry-run changed nothing" bash -c "! ip netns exec $KP_NODE iptables-legacy-save | grep -q KUBE-"
kp_check "--dry-run IPv4 part passes iptables-legacy-restore --test" \
	bash -c "sed -n '/^# .*IPv4/,/^# .*IPv6/p' $KP_TMP/dry.txt | ip netns exec $KP_NODE iptables-legacy-restore --test"
kp_check "--dry-run IPv6 part passes ip6tables-legacy-restore --test" \
	bash -c "sed -n '/^# .*IPv6/,\$p' $KP_TMP/dry.txt | ip netns exec $KP_NODE ip6tables-legacy-restore --test"
kp_check "--dry-run shows the web service" grep -q '"default/web:http cluster IP" -m tcp -p tcp -d 10.0.0.10 --dport 80' "$KP_TMP/dry.txt"

# Another proxy's chain on the nf_tables side is reported at start.
NFT=false
if command -v iptables-nft >/dev/null && kp_node iptables-nft -t nat -N KUBE-SERVICES 2>/dev/null; then
	NFT=true
fi

kp_start_daemon "${ARGS[@]}"
if $NFT; then
	kp_check "warns about KUBE-SERVICES in the nf_tables backend" kp_wait_for 5 kp_log_has "exists in the nf_tables backend"
	kp_node iptables-nft -t nat -X KUBE-SERVICES
fi
kp_check "daemon syncs" kp_wait_for 10 bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S KUBE-SERVICES | grep -q default/web"

SVC_WEB="KUBE-SVC-$(hash16 default/web:httptcp)"
kp_check "chain name is upstream's ($SVC_WEB)" bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S $SVC_WEB >/dev/null 2>&1"
kp_check "SEP chain name is upstream's" bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S KUBE-SEP-$(hash16 default/web:httptcp10.244.0.11:8080) >/dev/null 2>&1"
kp_check "jump from PREROUTING is first" bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S PREROUTING | sed -n 2p | grep -q 'kubernetes service portals'"

# ClusterIP, from the node and from a pod; every ready backend answers.
kp_check "ClusterIP from node reaches pod1 and pod2" [ "$(answers "$KP_NODE" 10.0.0.10 80 24)" = "pod1 pod2 " ]
kp_check "ClusterIP from a pod reaches pod1 and pod2" [ "$(answers "${KP_ID}-pod3" 10.0.0.10 80 24)" = "pod1 pod2 " ]
kp_check "hairpin: pod1 reaches itself through the ClusterIP" bash -c "[ \"\$(for i in \$(seq 24); do ip netns exec ${KP_ID}-pod1 curl -s --max-time 3 http://10.0.0.10/; done | grep -c '^pod1 from 10.244.0.1$')\" -gt 0 ]"
kp_check "externalIP from outside reaches pod1 and pod2" [ "$(answers "$OUT" 192.168.99.10 80 24)" = "pod1 pod2 " ]
kp_check "NodePort from outside reaches pod1 and pod2" [ "$(answers "$OUT" 192.168.77.1 30080 24)" = "pod1 pod2 " ]
kp_check "NodePort from outside is masqueraded (Cluster policy)" kp_wait_for 10 bash -c "ip netns exec $OUT curl -s --max-time 3 http://192.168.77.1:30080/ | grep -q 'from 10.244.0.1$'"
kp_check "NodePort on localhost from the node" [ "$(answers "$KP_NODE" 127.0.0.1 30080 12)" = "pod1 pod2 " ]

# Upstream's nfacct counters: created at start, matched by the rules,
# published as metrics.
metric() {  # NAME -> value at /metrics, or nothing
	kp_node curl -s --max-time 3 http://127.0.0.1:10249/metrics | awk -v n="$1" '$1 == n {print $2}'
}
kp_check "KUBE-NODEPORTS counts localhost NodePort packets (nfacct) before the jump" bash -c \
	"ip netns exec $KP_NODE iptables-legacy -t nat -S KUBE-NODEPORTS | grep -Eq -- '-d 127.0.0.0/8 .*--dport 30080 -m nfacct --nfacct-name +localhost_nps_accepted_pkts -j KUBE-EXT-'"
kp_check "KUBE-FORWARD counts its INVALID drops (nfacct)" bash -c \
	"ip netns exec $KP_NODE iptables-legacy -S KUBE-FORWARD | grep -Eq -- '--ctstate INVALID -m nfacct --nfacct-name +ct_state_invalid_dropped_pkts -j DROP'"
kp_check "no nfacct rules in IPv6 NodePorts (upstream counts IPv4 localhost only)" bash -c \
	"! ip netns exec $KP_NODE ip6tables-legacy -t nat -S KUBE-NODEPORTS | grep -q nfacct"
lh=$(metric kubeproxy_iptables_localhost_nodeports_accepted_packets_total)
kp_check "localhost NodePort packets show in kubeproxy_iptables_localhost_nodeports_accepted_packets_total ($lh)" \
	[ "${lh:-0}" -gt 0 ]
inv0=$(metric kubeproxy_iptables_ct_state_invalid_dropped_packets_total)
kp_node sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
ip netns exec "$OUT" python3 "$KP_SRCDIR/tests/integration/lone-ack.py" 192.168.77.2 10.244.0.11 8080 5
kp_node sysctl -qw net.netfilter.nf_conntrack_tcp_loose=1
inv1=$(metric kubeproxy_iptables_ct_state_invalid_dropped_packets_total)
kp_check "5 stray ACKs forwarded to a pod are dropped as INVALID and counted ($inv0 -> $inv1)" \
	eval '[ -n "$inv0" ] && [ "$((inv1 - inv0))" = 5 ]'

# externalTrafficPolicy Local: only the local endpoint, client address kept.
# Single requests below are retried for a while: one curl missed its 3 s
# deadline once in CI (not reproduced in 3 local runs; a likely cause is a
# 4-tuple still in TIME_WAIT at the pod from an earlier check, whose
# different timestamp offset makes PAWS drop the SYN until retransmits).
kp_check "eTP Local NodePort reaches only the local pod3" [ "$(answers "$OUT" 192.168.77.1 30081 12)" = "pod3 " ]
kp_check "eTP Local NodePort keeps the client address" kp_wait_for 10 bash -c "ip netns exec $OUT curl -s --max-time 3 http://192.168.77.1:30081/ | grep -q '^pod3 from 192.168.77.2$'"
kp_check "eTP Local LB IP keeps the client address" kp_wait_for 10 bash -c "ip netns exec $OUT curl -s --max-time 3 http://203.0.113.10/ | grep -q '^pod3 from 192.168.77.2$'"
kp_check "eTP Local ClusterIP still reaches every endpoint" [ "$(answers "$KP_NODE" 10.0.0.12 80 24)" = "pod3 pod4 " ]

# internalTrafficPolicy Local; Local policies without local endpoints DROP.
kp_check "iTP Local ClusterIP reaches only the local pod1" [ "$(answers "$KP_NODE" 10.0.0.21 80 12)" = "pod1 " ]
kp_check "iTP Local without local endpoints drops (no answer)" bash -c "! ip netns exec $KP_NODE curl -s --max-time 2 http://10.0.0.22/"
kp_check "...by a DROP rule in filter KUBE-SERVICES" bash -c "ip netns exec $KP_NODE iptables-legacy -S KUBE-SERVICES | grep -q 'default/itp-none:http has no local endpoints.* -j DROP'"
kp_check "eTP Local without local endpoints drops outside clients" bash -c "! ip netns exec $OUT curl -s --max-time 2 http://192.168.77.1:30085/"
kp_check "eTP Local without local endpoints still serves the node itself" [ "$(answers "$KP_NODE" 192.168.77.1 30085 3)" = "pod2 " ]

# loadBalancerSourceRanges
kp_check "LB source range admits the outside client" [ "$(answers "$OUT" 203.0.113.20 80 3)" = "pod2 " ]
kp_check "LB source range drops other clients" bash -c "! ip netns exec $OUT curl -s --max-time 2 http://203.0.113.30/"
kp_check "...by KUBE-PROXY-FIREWALL" bash -c "ip netns exec $KP_NODE iptables-legacy -S KUBE-PROXY-FIREWALL | grep -q 'default/fw-closed:http traffic not accepted by KUBE-FW-'"
kp_check "NodePort bypasses the source ranges (as upstream)" [ "$(answers "$OUT" 192.168.77.1 30084 2)" = "pod2 " ]

# Session affinity
kp_check "ClientIP affinity keeps one backend" bash -c "[ \"\$(for i in \$(seq 15); do ip netns exec $KP_NODE curl -s --max-time 3 http://10.0.0.13/; done | awk '{print \$1}' | sort -u | wc -l)\" = 1 ]"

# No endpoints: refused at once (REJECT), not a timeout.
t0=$(date +%s%N)
kp_node curl -s --max-time 5 http://10.0.0.14/ >/dev/null 2>&1; rc=$?
t1=$(date +%s%N)
kp_check "no endpoints: ClusterIP connection refused (curl rc $rc)" [ "$rc" = 7 ]
kp_check "no endpoints: refused within a second" [ $(( (t1 - t0) / 1000000 )) -lt 1000 ]
ip netns exec "$OUT" curl -s --max-time 5 http://192.168.77.1:30082/ >/dev/null 2>&1; rc=$?
kp_check "no endpoints: NodePort from outside refused (curl rc $rc)" [ "$rc" = 7 ]

# UDP
kp_check "UDP ClusterIP reaches pod1 and pod2" [ "$(udp_answers "$KP_NODE" 10.0.0.15 53 16)" = "pod1 pod2 " ]

# IPv6 (dual-stack service)
kp_check "IPv6 ClusterIP reaches both IPv6 endpoints" [ "$(answers6 "$KP_NODE" fd00:10:96::19 80 16)" = "pod1 pod2 " ]
kp_check "IPv4 side of the dual-stack service" [ "$(answers "$KP_NODE" 10.0.0.19 80 4)" = "pod1 " ]
kp_check "IPv6 chains use upstream's [ip]:port hash" bash -c "ip netns exec $KP_NODE ip6tables-legacy -t nat -S KUBE-SEP-$(hash16 'default/dual:httptcp[fd00:10:244::11]:8086') >/dev/null 2>&1"

kp_check "foreign rules survive syncs" foreign_ok

# A long-lived connection through a ClusterIP, kept across changes and a restart.
ip netns exec "$KP_NODE" bash -c "exec 3<>/dev/tcp/10.0.0.18/9000 || exit 1
	echo one >&3; read -r -t 3 l <&3; echo \"\$l\" >$KP_TMP/conn1
	while [ ! -e $KP_TMP/go ]; do sleep 0.1; done
	echo two >&3; read -r -t 3 l <&3; echo \"\$l\" >$KP_TMP/conn2" &
CONN=$!
kp_check "long-lived connection established" kp_wait_for 5 grep -q one "$KP_TMP/conn1"

# Readiness change: pod2 not ready -> only pod1.
WEB2_READY=false NP_EPS="10.244.0.11;true;demo-node" write_manifests
kp_check "unready endpoint stops receiving (ClusterIP)" kp_wait_for 5 bash -c "[ \"\$(for i in \$(seq 12); do ip netns exec $KP_NODE curl -s --max-time 2 http://10.0.0.10/; done | awk '{print \$1}' | sort -u | tr '\n' ' ')\" = 'pod1 ' ]"
kp_check "removed endpoint stops receiving (NodePort)" kp_wait_for 5 bash -c "[ \"\$(for i in \$(seq 12); do ip netns exec $OUT curl -s --max-time 2 http://192.168.77.1:30080/; done | awk '{print \$1}' | sort -u | tr '\n' ' ')\" = 'pod1 ' ]"
kp_check "removed endpoint's SEP chain is deleted" kp_wait_for 5 bash -c "! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q 'KUBE-SEP-$(hash16 default/np:httptcp10.244.0.12:8080)'"

# Restart: the established connection survives.
kp_stop_daemon
kp_check "SIGTERM exits 0" [ "$KP_DAEMON_RC" = 0 ]
kp_start_daemon "${ARGS[@]}"
kp_check "restarted daemon syncs" kp_wait_for 10 bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S KUBE-SERVICES | grep -q default/echo"
sleep 0.5
touch "$KP_TMP/go"
wait "$CONN"
kp_check "established connection survives a restart" grep -q two "$KP_TMP/conn2"
kp_check "service still works after restart" [ "$(answers "$KP_NODE" 10.0.0.10 80 6)" = "pod1 " ]

# Tables flushed behind our back: the next (partial) sync finds the
# canary gone and rewrites everything.
kp_node iptables-legacy -t mangle -F
kp_node iptables-legacy -t mangle -X
kp_node iptables-legacy -t nat -F KUBE-SERVICES
cat >"$M/extra.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: extra, namespace: default}
spec:
  clusterIP: 10.0.0.20
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
$(slice extra-1 extra http 8080 TCP "10.244.0.13;true;demo-node")
Y
kp_check "flushed tables are restored after the canary vanished" kp_wait_for 5 bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S KUBE-SERVICES | grep -q default/web"
kp_check "...and the log says why" kp_log_has "KUBE-PROXY-CANARY is gone"
kp_check "service works after the flush" [ "$(answers "$KP_NODE" 10.0.0.10 80 4)" = "pod1 " ]
kp_stop_daemon
kp_check "foreign rules survive restarts" foreign_ok

# Local traffic detection by bridge interface, then --masquerade-all.
src_seen() { ip netns exec "${KP_ID}-pod3" curl -s --max-time 3 http://10.0.0.10/ | awk '{print $3}'; }
kp_start_daemon "${ARGS[@]}" --detect-local-mode=BridgeInterface --pod-bridge-interface=kbr0
kp_check "BridgeInterface: masquerade rule matches ! -i kbr0" kp_wait_for 10 bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S $SVC_WEB | grep -q -- '! -i kbr0 .*-j KUBE-MARK-MASQ'"
kp_check "BridgeInterface: pod source address kept" [ "$(src_seen)" = 10.244.0.13 ]
kp_stop_daemon
kp_start_daemon "${ARGS[@]}" --masquerade-all
kp_check "masquerade-all: unconditional masquerade rule" kp_wait_for 10 bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S $SVC_WEB | grep -q -- '-A $SVC_WEB -d 10.0.0.10/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ'"
seen=$(src_seen)
kp_check "masquerade-all: pod traffic is masqueraded (seen: $seen)" [ "$seen" = 10.244.0.1 ]
kp_stop_daemon

# --cleanup removes every KUBE- chain (both families) and nothing else.
kp_node "$KP_BIN" --cleanup --log-file= --state-dir="$KP_TMP/state" >/dev/null 2>&1
kp_check "--cleanup exits 0" [ $? = 0 ]
kp_check "--cleanup leaves no KUBE- chain (IPv4)" bash -c "! ip netns exec $KP_NODE iptables-legacy-save | grep -q KUBE-"
kp_check "--cleanup leaves no KUBE- chain (IPv6)" bash -c "! ip netns exec $KP_NODE ip6tables-legacy-save | grep -q KUBE-"
kp_check "--cleanup keeps foreign rules" foreign_ok
kp_finish
