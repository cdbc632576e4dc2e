#!/bin/bash
# --proxy-mode=userspace with real packets, in network namespaces made
# here: ClusterIP, NodePort and externalIP over TCP and UDP from the node
# and from an outside namespace; IPv6 ClusterIP; session affinity; 100 MB both ways
# (sha256); half-close; a refusing endpoint is skipped; established
# connections survive endpoint removal; a removed service closes its
# listener and portals; the per-port connection cap; fd exhaustion;
# --dry-run and --cleanup.
. "$(dirname "$0")/lib.sh"
kp_require_root
[ -x "$KP_BIN" ] || kp_skip "no kube-proxy binary at $KP_BIN"
command -v socat >/dev/null || kp_skip "needs socat"
command -v curl >/dev/null || kp_skip "needs curl"

kp_topology 3
OUT="${KP_ID}-out"
for p in pod1 pod2 pod3; do
	kp_backend $p 8080
	kp_backend $p 5353 udp
done
P1="${KP_ID}-pod1" P2="${KP_ID}-pod2" P3="${KP_ID}-pod3"
bg() { "$@" >/dev/null 2>&1 & KP_PIDS="$KP_PIDS $!"; }
# pod1: upload sink (9000), download source (9001), half-close counter
# (9002: answers with the byte count after the client's EOF); echo on
# pod2 and pod3 (9003).
head -c 100000000 /dev/urandom >"$KP_TMP/blob"
bg ip netns exec "$P1" socat -u TCP4-LISTEN:9000,reuseaddr OPEN:"$KP_TMP/up",creat,trunc
bg ip netns exec "$P1" socat -U TCP4-LISTEN:9001,reuseaddr,fork OPEN:"$KP_TMP/blob",rdonly
bg ip netns exec "$P1" socat TCP4-LISTEN:9002,reuseaddr,fork SYSTEM:"wc -c"
bg ip netns exec "$P2" socat TCP4-LISTEN:9003,reuseaddr,fork EXEC:cat
bg ip netns exec "$P3" socat TCP4-LISTEN:9003,reuseaddr,fork EXEC:cat

M="$KP_TMP/manifests"
mkdir -p "$M"
# slice NAME SVC PORTNAME PROTO PORT IP...
slice() {
	local name=$1 svc=$2 pn=$3 proto=$4 port=$5 ip
	shift 5
	printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n'
	printf 'metadata: {name: %s, namespace: default, labels: {kubernetes.io/service-name: %s}}\n' "$name" "$svc"
	printf 'addressType: IPv4\nports: [{name: %s, protocol: %s, port: %s}]\nendpoints:\n' "$pn" "$proto" "$port"
	for ip in "$@"; do
		printf -- '- addresses: ["%s"]\n  conditions: {ready: true}\n  nodeName: demo-node\n' "$ip"
	done
}
cat >"$M/web.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.0.0.10
  externalIPs: [192.168.77.1, 203.0.113.10]
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.0.0.53
  externalIPs: [203.0.113.10]
  ports: [{name: dns, protocol: UDP, port: 53, targetPort: 5353, nodePort: 30053}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.0.0.20
  sessionAffinity: ClientIP
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: bulk, namespace: default}
spec:
  clusterIP: 10.0.0.30
  ports:
  - {name: up, protocol: TCP, port: 9000}
  - {name: down, protocol: TCP, port: 9001}
  - {name: half, protocol: TCP, port: 9002}
---
apiVersion: v1
kind: Service
metadata: {name: refuse, namespace: default}
spec:
  clusterIP: 10.0.0.40
  ports: [{name: http, protocol: TCP, port: 80}]
Y
{
	slice web-1 web http TCP 8080 10.244.0.11 10.244.0.12 10.244.0.13
	slice dns-1 dns dns UDP 5353 10.244.0.11 10.244.0.12 10.244.0.13
	slice sticky-1 sticky http TCP 8080 10.244.0.11 10.244.0.12 10.244.0.13
	slice bulk-up bulk up TCP 9000 10.244.0.11
	slice bulk-down bulk down TCP 9001 10.244.0.11
	slice bulk-half bulk half TCP 9002 10.244.0.11
	# pod2 has nothing on 8099: connections there are refused.
	slice refuse-ok refuse http TCP 8080 10.244.0.11
	slice refuse-bad refuse http TCP 8099 10.244.0.12
} >>"$M/web.yaml"
echo_svc() {
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  clusterIP: 10.0.0.60
  ports: [{name: echo, protocol: TCP, port: 7}]
Y
	slice echo-1 echo echo TCP 9003 "$@"
}
echo_svc 10.244.0.13 >"$M/echo.yaml"

# IPv6: the node's bridge and pod1 get addresses; a v6-only service.
ip -n "$KP_NODE" -6 addr add fd00:244::1/64 dev kbr0 nodad
ip -n "$P1" -6 addr add fd00:244::11/64 dev eth0 nodad
ip -n "$P1" -6 route add default via fd00:244::1
ip -n "$KP_NODE" -6 route add fd00:10::/120 dev kbr0
kp_node sysctl -qw net.ipv6.conf.all.forwarding=1
bg ip netns exec "$P1" socat TCP6-LISTEN:8080,ipv6only=1,reuseaddr,fork SYSTEM:"echo v6pod"
bg ip netns exec "$P1" socat UDP6-RECVFROM:5353,ipv6only=1,reuseaddr,fork SYSTEM:"echo v6udp"
{
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: web6, namespace: default}
spec:
  clusterIP: fd00:10::10
  ipFamilies: [IPv6]
  ports: [{name: http, protocol: TCP, port: 80}, {name: dns, protocol: UDP, port: 53}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web6-1, namespace: default, labels: {kubernetes.io/service-name: web6}}
addressType: IPv6
ports: [{name: http, protocol: TCP, port: 8080}, {name: dns, protocol: UDP, port: 5353}]
endpoints:
- addresses: ["fd00:244::11"]
  conditions: {ready: true}
Y
} >"$M/v6.yaml"
RANGE=--service-cluster-ip-range=10.0.0.0/24,fd00:10::/120
dns2_svc() {
	cat <<'Y'
apiVersion: v1
kind: Service
metadata: {name: dns2, namespace: default}
spec:
  clusterIP: 10.0.0.54
  ports: [{name: dns, protocol: UDP, port: 53}]
Y
	slice dns2-1 dns2 dns UDP 5353 10.244.0.11
}
dns2_svc >"$M/dns2.yaml"

# --dry-run prints the portals without touching anything.
dry=$(kp_node "$KP_BIN" --proxy-mode=userspace --dry-run --manifest-dir="$M" --log-file= \
	--state-dir="$KP_TMP/state" --hostname-override=demo-node "$RANGE" 2>/dev/null)
kp_check "dry-run: REDIRECT portal for the ClusterIP" \
	grep -qE -- '-A KUBE-PORTALS-CONTAINER -m comment --comment default/web:http -m tcp -p tcp -d 10.0.0.10 --dport 80 -j REDIRECT --to-ports [0-9]+' <<<"$dry"
kp_check "dry-run: DNAT host portal" \
	grep -qE -- '-A KUBE-PORTALS-HOST .* -d 10.0.0.10 --dport 80 -j DNAT --to-destination [0-9.]+:[0-9]+' <<<"$dry"
kp_check "dry-run: one comment line per listener" [ "$(grep -c '^# listener' <<<"$dry")" = 11 ]
kp_check "dry-run changed no rules" bash -c "! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q KUBE-"

# A foreign rule that must survive syncs and --cleanup.
kp_node iptables-legacy -t nat -N FOREIGN
kp_node iptables-legacy -t nat -A PREROUTING -p tcp --dport 1 -j FOREIGN

kp_start_daemon --proxy-mode=userspace --v=2 --manifest-dir="$M" --hostname-override=demo-node \
	--iptables-min-sync-period=200ms --proxy-port-range=40000-40099 "$RANGE"
kp_check "initial sync happens" kp_wait_for 10 kp_log_has "Initial sync"
kp_check "log: Using userspace Proxier" kp_log_has "Using userspace Proxier"
kp_check "log: proxying line per service port" kp_log_has 'Proxying for service "default/web:http" on TCP port 400'

nat=$(kp_node iptables-legacy -t nat -S)
kp_check "nat PREROUTING jumps to KUBE-PORTALS-CONTAINER" grep -q -- '-A PREROUTING .*-j KUBE-PORTALS-CONTAINER' <<<"$nat"
kp_check "nat OUTPUT jumps to KUBE-PORTALS-HOST" grep -q -- '-A OUTPUT .*-j KUBE-PORTALS-HOST' <<<"$nat"
kp_check "nat PREROUTING jumps to KUBE-NODEPORT-CONTAINER" grep -q -- '-A PREROUTING .*--dst-type LOCAL.*-j KUBE-NODEPORT-CONTAINER' <<<"$nat"
kp_check "REDIRECT rule in the proxy port range" \
	grep -qE -- '-A KUBE-PORTALS-CONTAINER -d 10.0.0.10/32 -p tcp .*--dport 80 -j REDIRECT --to-ports 400[0-9][0-9]' <<<"$nat"
kp_check "filter KUBE-NODEPORT-NON-LOCAL accepts the NodePort's proxy port" \
	bash -c "ip netns exec $KP_NODE iptables-legacy -S KUBE-NODEPORT-NON-LOCAL | grep -q 'ACCEPT'"
kp_check "foreign rule kept" grep -q -- '-A PREROUTING -p tcp -m tcp --dport 1 -j FOREIGN' <<<"$nat"

# answers NS IP PORT N: the distinct pod names answering N requests.
answers() { for _ in $(seq "$4"); do kp_get "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
uanswers() { for _ in $(seq "$4"); do kp_udp "$1" "$2" "$3"; done | awk '{print $1}' | sort -u | tr '\n' ' '; }
ALL="pod1 pod2 pod3 "

kp_check "TCP ClusterIP from the node reaches every pod" [ "$(answers "$KP_NODE" 10.0.0.10 80 12)" = "$ALL" ]
kp_check "TCP ClusterIP from outside reaches every pod" [ "$(answers "$OUT" 10.0.0.10 80 12)" = "$ALL" ]
kp_check "TCP ClusterIP from a pod reaches every pod" [ "$(answers "$P1" 10.0.0.10 80 12)" = "$ALL" ]
kp_check "TCP NodePort from outside reaches every pod" [ "$(answers "$OUT" 192.168.77.1 30080 12)" = "$ALL" ]
kp_check "TCP NodePort from the node reaches every pod" [ "$(answers "$KP_NODE" 192.168.77.1 30080 12)" = "$ALL" ]
kp_check "TCP NodePort via 127.0.0.1 on the node" [ "$(answers "$KP_NODE" 127.0.0.1 30080 12)" = "$ALL" ]
kp_check "TCP externalIP (node address) from outside" [ "$(answers "$OUT" 192.168.77.1 80 12)" = "$ALL" ]
kp_check "TCP externalIP (node address) from the node" [ "$(answers "$KP_NODE" 192.168.77.1 80 12)" = "$ALL" ]
kp_check "TCP externalIP (routed to the node) from outside" [ "$(answers "$OUT" 203.0.113.10 80 12)" = "$ALL" ]

kp_check "UDP ClusterIP from the node reaches every pod" [ "$(uanswers "$KP_NODE" 10.0.0.53 53 12)" = "$ALL" ]
kp_check "UDP ClusterIP from outside reaches every pod" [ "$(uanswers "$OUT" 10.0.0.53 53 12)" = "$ALL" ]
kp_check "UDP NodePort from outside reaches every pod" [ "$(uanswers "$OUT" 192.168.77.1 30053 12)" = "$ALL" ]
kp_check "UDP NodePort from the node reaches every pod" [ "$(uanswers "$KP_NODE" 192.168.77.1 30053 12)" = "$ALL" ]
kp_check "UDP externalIP from outside reaches every pod" [ "$(uanswers "$OUT" 203.0.113.10 53 12)" = "$ALL" ]
# socat's UDP client is a connected socket: an answer from any other
# address than the service's would never arrive.
kp_check "UDP reply comes from the service address" \
	bash -c "echo x | ip netns exec $KP_NODE socat -T 2 - UDP4:10.0.0.53:53,sourceport=5555 | grep -q 'from'"
kp_node bash -c 'echo x | socat -T 2 - UDP4:10.0.0.53:53 >/dev/null' &
sleep 0.1
kp_check "UDP association socket exists while in use" \
	bash -c "[ \$(ip netns exec $KP_NODE ss -uan | grep -c ':5353 ') -ge 1 ]"
kp_check "UDP associations expire after --udp-timeout" \
	kp_wait_for 3 bash -c "[ \$(ip netns exec $KP_NODE ss -uan | grep -c ':5353 ') -eq 0 ]"

kp_check "IPv6: ip6tables REDIRECT portal" \
	bash -c "ip netns exec $KP_NODE ip6tables-legacy -t nat -S KUBE-PORTALS-CONTAINER | grep -q 'fd00:10::10/128.*REDIRECT'"
kp_check "IPv6 TCP ClusterIP from the node" bash -c "[ \"\$(ip netns exec $KP_NODE socat -T2 - 'TCP6:[fd00:10::10]:80' </dev/null)\" = v6pod ]"
kp_check "IPv6 TCP ClusterIP from a pod" bash -c "[ \"\$(ip netns exec $P1 socat -T2 - 'TCP6:[fd00:10::10]:80' </dev/null)\" = v6pod ]"
kp_check "IPv6 UDP ClusterIP from the node" bash -c "[ \"\$(echo x | ip netns exec $KP_NODE socat -T2 - 'UDP6:[fd00:10::10]:53')\" = v6udp ]"

n=$(answers "$KP_NODE" 10.0.0.20 80 10); o=$(answers "$OUT" 10.0.0.20 80 10)
kp_check "ClientIP affinity: node sticks to one pod ($n)" [ "$(wc -w <<<"$n")" = 1 ]
kp_check "ClientIP affinity: outside client sticks to one pod ($o)" [ "$(wc -w <<<"$o")" = 1 ]

want=$(sha256sum <"$KP_TMP/blob" | cut -d' ' -f1)
t0=$(date +%s.%N)
kp_node socat -u OPEN:"$KP_TMP/blob",rdonly TCP4:10.0.0.30:9000
t1=$(date +%s.%N)
kp_wait_for 5 bash -c "[ \$(stat -c %s $KP_TMP/up) = 100000000 ]"
kp_check "100 MB upload arrives intact" [ "$(sha256sum <"$KP_TMP/up" | cut -d' ' -f1)" = "$want" ]
kp_log "upload: $(echo "100 / ($t1 - $t0)" | bc -l | cut -c1-6) MB/s"
got=$(kp_in "$OUT" socat -u TCP4:10.0.0.30:9001 STDOUT | sha256sum | cut -d' ' -f1)
kp_check "100 MB download (to outside) arrives intact" [ "$got" = "$want" ]

kp_check "half-close: the backend sees our EOF and still answers" \
	bash -c "[ \"\$(printf hello | ip netns exec $KP_NODE socat -t 5 - TCP4:10.0.0.30:9002 | tr -d ' ')\" = 5 ]"

r=$(for _ in $(seq 10); do kp_get "$KP_NODE" 10.0.0.40 80; done | grep -c pod1)
kp_check "a refusing endpoint is skipped (10/10 answered: $r)" [ "$r" = 10 ]

# A long-lived connection to echo (pod3), then pod3 leaves the service.
cat >"$KP_TMP/longconn.sh" <<'EOS'
exec 3<>/dev/tcp/10.0.0.60/7 || exit 1
echo first >&3; read -r -t 3 l <&3; echo "$l" >"$1/r1"
for _ in $(seq 100); do [ -e "$1/go" ] && break; sleep 0.1; done
echo second >&3; read -r -t 3 l <&3; echo "$l" >"$1/r2"
EOS
kp_node bash "$KP_TMP/longconn.sh" "$KP_TMP" &
LC=$!
kp_wait_for 5 test -s "$KP_TMP/r1"
kp_check "long-lived connection works" grep -qx first "$KP_TMP/r1"
echo_svc 10.244.0.12 >"$M/echo.yaml.tmp" && mv "$M/echo.yaml.tmp" "$M/echo.yaml"
sleep 2   # min sync period + inotify
touch "$KP_TMP/go"
wait $LC
kp_check "established connection survives removal of its endpoint" grep -qx second "$KP_TMP/r2"
kp_node bash -c 'exec 3<>/dev/tcp/10.0.0.60/7; sleep 1' &
W=$!
sleep 0.5
kp_check "new connections go to the remaining endpoint (pod2)" \
	bash -c "ip netns exec $P2 ss -Htn state established '( sport = :9003 )' | grep -q ."
kp_check "and not to the removed one (pod3)" \
	bash -c "! ip netns exec $P3 ss -Htn state established '( sport = :9003 )' | grep -q ."
wait $W

# Removing a service closes its listener and portals.
port=$(kp_node iptables-legacy -t nat -S KUBE-PORTALS-CONTAINER | awk '/default\/echo:echo/ {print $NF; exit}')
rm "$M/echo.yaml"
kp_check "removed service: portal rules gone" kp_wait_for 5 bash -c "! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q default/echo"
kp_check "removed service: listener closed (port $port)" bash -c "! ip netns exec $KP_NODE ss -tln | grep -q ':$port '"
kp_check "removed service: log line" kp_log_has 'Stopping service "default/echo:echo"'

# A removed UDP service takes its conntrack entries along: a client that
# keeps its source port is not stuck on the closed proxy port when the
# service comes back.
q7777() { echo x | ip netns exec "$OUT" socat -T 2 - UDP4:10.0.0.54:53,sourceport=7777 2>/dev/null; }
q7777_ok() { q7777 | grep -q pod1; }
ct7777() { ip netns exec "$KP_NODE" conntrack -L -p udp --orig-port-src 7777 2>/dev/null | grep -c 7777; }
kp_check "UDP dns2 answers from source port 7777" q7777_ok
kp_check "its conntrack entry exists" [ "$(ct7777)" -ge 1 ]
rm "$M/dns2.yaml"
kp_wait_for 5 bash -c "! ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q default/dns2"
sleep 0.3
kp_check "removed UDP service: conntrack entry cleared" [ "$(ct7777)" = 0 ]
kp_check "removed UDP service: log line" kp_log_has 'Cleared 1 UDP conntrack entries of "default/dns2:dns"'
dns2_svc >"$M/dns2.yaml.tmp" && mv "$M/dns2.yaml.tmp" "$M/dns2.yaml"
kp_wait_for 5 bash -c "ip netns exec $KP_NODE iptables-legacy -t nat -S | grep -q default/dns2"
kp_check "recreated UDP service answers the same client port" q7777_ok

kp_stop_daemon
kp_check "daemon exits cleanly on SIGTERM" [ "$KP_DAEMON_RC" = 0 ]

# The per-port connection cap, with a cap of 2.
KUBE_PROXY_USERSPACE_MAX_CONNS=2 kp_start_daemon --proxy-mode=userspace --manifest-dir="$M" \
	--hostname-override=demo-node --iptables-min-sync-period=200ms "$RANGE"
kp_wait_for 10 kp_log_has "at most 2 connections"
cat >"$KP_TMP/hold.sh" <<'EOS'
exec 3<>/dev/tcp/10.0.0.10/80 || exit 1
sleep 4
EOS
kp_node bash "$KP_TMP/hold.sh" & H1=$!
kp_node bash "$KP_TMP/hold.sh" & H2=$!
sleep 0.5
kp_check "connection cap: a third connection is refused" bash -c "! ip netns exec $KP_NODE curl -s --max-time 2 http://10.0.0.10/ | grep -q pod"
kp_check "connection cap: clear log line" kp_log_has 'reached its limit of 2 concurrent connections'
wait $H1 $H2
# The relays notice both ends closing on their next loop turn: poll briefly.
kp_check "connection cap: room again once they close" kp_wait_for 5 bash -c "ip netns exec $KP_NODE curl -s --max-time 2 http://10.0.0.10/ | grep -q pod"
kp_stop_daemon

# File descriptor exhaustion: a daemon limited to 48 fds, 30 held
# connections (each needs up to 6). It must log, refuse what it cannot
# carry, keep running, and serve again once they are gone.
ip netns exec "$KP_NODE" prlimit --nofile=48:48 "$KP_BIN" --log-file="$KP_TMP/fd.log" \
	--state-dir="$KP_TMP/state" --proxy-mode=userspace --manifest-dir="$M" \
	--hostname-override=demo-node "$RANGE" >"$KP_TMP/fd.out" 2>&1 &
KP_DAEMON=$!; KP_PIDS="$KP_PIDS $KP_DAEMON"
kp_wait_for 10 grep -q "Initial sync" "$KP_TMP/fd.log"
HP=""
for _ in $(seq 30); do kp_node bash "$KP_TMP/hold.sh" 2>/dev/null & HP="$HP $!"; done
sleep 1
kp_check "fd exhaustion: daemon still running" kill -0 "$KP_DAEMON"
kp_check "fd exhaustion: logged" grep -qE 'failed: Too many open files|Cannot open a socket to an endpoint' "$KP_TMP/fd.log"
wait $HP
kp_check "fd exhaustion: serves again afterwards" [ "$(answers "$KP_NODE" 10.0.0.10 80 6)" = "$ALL" ]
kp_stop_daemon
kp_check "fd exhaustion: clean exit" [ "$KP_DAEMON_RC" = 0 ]

kp_node "$KP_BIN" --proxy-mode=userspace --cleanup --log-file= >/dev/null 2>&1
nat=$(kp_node iptables-legacy -t nat -S); filter=$(kp_node iptables-legacy -S)
kp_check "--cleanup removes the portal chains" bash -c "! grep -qE 'KUBE-PORTALS|KUBE-NODEPORT-' <<<'$nat$filter'"
kp_check "--cleanup keeps the foreign rule" grep -q -- '-j FOREIGN' <<<"$nat"
# The kernel-DNAT stale-UDP cleaner would cut live relays: off in this mode.
kp_check "no stale-UDP conntrack cleanup in userspace mode" bash -c "! grep -q 'stale UDP conntrack' '$KP_TMP/kube-proxy.log'"

kp_finish
