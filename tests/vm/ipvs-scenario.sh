# Runs inside the VM (busybox sh, see vm-lib.sh): the daemon in ipvs mode
# on a manifest directory, backends in pod namespaces, a client namespace.
# Prints TAP on the console. The VM is throwaway: the "node" is its root
# namespace.
IP=/usr/sbin/ip
KP=/usr/sbin/kube-proxy
M=/m
LOG=/var/log/kube-proxy.log
N=0
FAILS=0

ok() { N=$((N + 1)); echo "ok $N - $1"; }
notok() { N=$((N + 1)); FAILS=$((FAILS + 1)); echo "not ok $N - $1"; }
# check DESC CMD...: one TAP line from a command's status
check() { d=$1; shift; if "$@" >/tmp/check.out 2>&1; then ok "$d"; else notok "$d"; sed 's/^/#   /' /tmp/check.out | head -20; fi; }
# wait_for SECONDS CMD...
wait_for() { t=$(($1 * 5)); shift; while [ $t -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; t=$((t - 1)); done; "$@"; }
# get NS IP PORT: the body of one HTTP response (busybox wget, being
# static, crashes resolving names without NSS modules; nc does not resolve)
get() { printf 'GET / HTTP/1.0\r\n\r\n' | $IP netns exec "$1" nc -w 3 "$2" "$3" 2>/dev/null | tail -1; }
# answers NS IP PORT COUNT: distinct first words of COUNT responses
answers() { i=0; while [ $i -lt "$4" ]; do get "$1" "$2" "$3"; i=$((i + 1)); done | awk '{print $1}' | sort -u | tr '\n' ' '; }
ipvs_has() { ipvsadm -Ln | grep -q -- "$1"; }
# answers_are NS URL COUNT EXPECTED
answers_are() { a=$(answers "$1" "$2" "$3" "$4"); echo "got: $a"; [ "$a" = "$5" ]; }
# one_answer NS URL COUNT: every response came from the same pod
one_answer() { a=$(answers "$1" "$2" "$3" "$4"); echo "got: $a"; [ $(echo $a | wc -w) = 1 ]; }
# refused NS IP PORT: connection refused quickly (REJECT), not timing out
refused() { o=$($IP netns exec "$1" nc -w 3 "$2" "$3" </dev/null 2>&1); r=$?; echo "rc=$r $o"; [ $r != 0 ] && echo "$o" | grep -qi refused; }
dest_line() { ipvsadm -Ln -t "$1" 2>/dev/null | grep -- "-> $2"; }

# ---- topology ----
for i in 1 2 3; do
	$IP netns add pod$i
	$IP link add vp$i type veth peer name eth0 netns pod$i
	$IP addr add 10.244.$i.1/24 dev vp$i
	$IP link set vp$i up
	$IP -n pod$i addr add 10.244.$i.2/24 dev eth0
	$IP -n pod$i link set eth0 up
	$IP -n pod$i link set lo up
	$IP -n pod$i route add default via 10.244.$i.1
	mkdir -p /srv/pod$i
	echo "pod$i" >/srv/pod$i/index.html
	$IP netns exec pod$i httpd -p 8080 -h /srv/pod$i
done
$IP netns add client
$IP link add vc type veth peer name eth0 netns client
$IP addr add 192.168.77.1/24 dev vc
$IP link set vc up
$IP -n client addr add 192.168.77.2/24 dev eth0
$IP -n client link set eth0 up
$IP -n client link set lo up
$IP -n client route add default via 192.168.77.1

mkdir -p $M /var/lib/kube-proxy
svc() { # name clusterIP port type extra
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  type: $4
  clusterIP: $2
$5
  ports: [{name: http, protocol: TCP, port: $3$6}]
---
EOF
}
slice() { # name ips...
	n=$1
	shift
	cat <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $n-1, namespace: default, labels: {kubernetes.io/service-name: $n}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
EOF
	for a in "$@"; do echo "  - {addresses: [\"$a\"], conditions: {ready: true}, nodeName: vm-node}"; done
}
{ svc web 10.0.0.10 80 NodePort "" ", nodePort: 30080"; slice web 10.244.1.2 10.244.2.2; } >$M/web.yaml
{ svc sticky 10.0.0.11 80 ClusterIP "  sessionAffinity: ClientIP"; slice sticky 10.244.1.2 10.244.2.2 10.244.3.2; } >$M/sticky.yaml
{ svc drain 10.0.0.12 80 ClusterIP ""; slice drain 10.244.3.2; } >$M/drain.yaml
udp() { # endpoints...
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: 10.0.0.20
  ports: [{name: dns, protocol: UDP, port: 53}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: default, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints:
EOF
	for a in "$@"; do echo "  - {addresses: [\"$a\"]}"; done
}
udp 10.244.1.2 10.244.2.2 >$M/dns.yaml

# foreign virtual servers: one in an excluded range (must survive), one not
ipvsadm -A -t 10.99.0.1:80 -s rr
ipvsadm -A -t 10.98.0.1:80 -s rr

FLAGS="--proxy-mode=ipvs --manifest-dir=$M --hostname-override=vm-node --cluster-cidr=10.244.0.0/16,fd00:10:244::/48
 --service-cluster-ip-range=10.0.0.0/24,fd00:10:96::/112
 --log-file=$LOG --state-dir=/var/lib/kube-proxy --iptables-min-sync-period=200ms --ipvs-min-sync-period=200ms
 --iptables-sync-period=2s --ipvs-sync-period=4s --ipvs-exclude-cidrs=10.99.0.0/16 --ipvs-tcpfin-timeout=5s --v=3
 --healthz-bind-address= --metrics-bind-address="

# ---- dry run ----
$KP $FLAGS --dry-run >/tmp/dry.txt 2>/tmp/dry.err
check "dry-run prints the virtual server in ipvsadm -Sn format" grep -q -- "^-A -t 10.0.0.10:80 -s rr" /tmp/dry.txt
check "dry-run prints real servers" grep -q -- "^-a -t 10.0.0.10:80 -r 10.244.1.2:8080 -m -w 1" /tmp/dry.txt
check "dry-run prints ipset entries" grep -q -- "^add KUBE-CLUSTER-IP 10.0.0.10,tcp:80" /tmp/dry.txt
check "dry-run prints iptables rules" grep -q -- "-A KUBE-SERVICES .*--match-set KUBE-CLUSTER-IP dst,dst" /tmp/dry.txt
check "dry-run touched nothing" sh -c "! ipvsadm -Ln | grep -q 10.0.0.10 && ! $IP link show kube-ipvs0"

# ---- start ----
KUBE_PROXY_IPVS_MAX_GRACE=20 $KP $FLAGS 2>/tmp/kp.stderr &
KPPID=$!
check "daemon logs Using ipvs Proxier" wait_for 20 grep -q "Using ipvs Proxier" $LOG
check "virtual server for the ClusterIP" wait_for 20 ipvs_has "TCP  10.0.0.10:80 rr"
ipvsadm -Ln | sed 's/^/# /'
check "real servers masq weight 1" sh -c "ipvsadm -Ln -t 10.0.0.10:80 | grep -q '10.244.1.2:8080 *Masq *1' && ipvsadm -Ln -t 10.0.0.10:80 | grep -q '10.244.2.2:8080 *Masq *1'"
check "virtual server for the NodePort on the node address" ipvs_has "TCP  192.168.77.1:30080 rr"
check "affinity is persistence with the default timeout" sh -c "ipvsadm -Ln -t 10.0.0.11:80 | grep -q 'persistent 10800'"
check "kube-ipvs0 is a dummy holding the VIPs, kept down" sh -c "$IP -d link show kube-ipvs0 | grep -q dummy && $IP addr show dev kube-ipvs0 | grep -q 'inet 10.0.0.10/32' && ! $IP link show kube-ipvs0 | grep -q ',UP'"
check "ipset KUBE-CLUSTER-IP holds ClusterIP,tcp:port" sh -c "ipset list KUBE-CLUSTER-IP | grep -q '^10.0.0.10,tcp:80$'"
check "ipset KUBE-NODE-PORT-TCP holds the node port" sh -c "ipset list KUBE-NODE-PORT-TCP | grep -q '^30080$'"
check "ipset KUBE-LOOP-BACK holds local endpoints" sh -c "ipset list KUBE-LOOP-BACK | grep -q '^10.244.1.2,tcp:8080,10.244.1.2$'"
check "ipset KUBE-IPVS-IPS holds the VIPs" sh -c "ipset list KUBE-IPVS-IPS | grep -q '^10.0.0.11$'"
check "iptables: masquerade for cluster IPs from outside the cluster CIDR" sh -c "iptables-legacy -t nat -S KUBE-SERVICES | grep -q -- '--match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ'"
check "iptables: node port chain and POSTROUTING masquerade" sh -c "iptables-legacy -t nat -S KUBE-NODE-PORT | grep -q KUBE-NODE-PORT-TCP && iptables-legacy -t nat -S KUBE-POSTROUTING | grep -q MASQUERADE"
check "sysctl net.ipv4.vs.conntrack=1" grep -q 1 /proc/sys/net/ipv4/vs/conntrack
check "--ipvs-tcpfin-timeout set through IPVS_CMD_SET_CONFIG" sh -c "ipvsadm -L --timeout | grep -q 'Timeout (tcp tcpfin udp): [0-9]* 5 '"
check "UDP virtual server with its real servers" sh -c "ipvsadm -Ln -u 10.0.0.20:53 | grep -q '10.244.1.2:5353 *Masq *1' && ipvsadm -Ln -u 10.0.0.20:53 | grep -q '10.244.2.2:5353 *Masq *1'"
check "ipset KUBE-CLUSTER-IP holds the UDP service" sh -c "ipset list KUBE-CLUSTER-IP | grep -q '^10.0.0.20,udp:53$'"
check "excluded foreign virtual server untouched" ipvs_has "10.99.0.1:80"
check "foreign virtual server outside the excluded CIDRs removed (as upstream)" sh -c "ipvsadm -Ln | grep -q 10.0.0.10:80 && ! ipvsadm -Ln | grep -q 10.98.0.1:80"

# ---- real connections ----
check "ClusterIP from the client reaches both web pods" answers_are client 10.0.0.10 80 12 "pod1 pod2 "
node_get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "$1" "$2" | tail -1 | grep pod; }
check "ClusterIP from the node itself" node_get 10.0.0.10 80
check "NodePort from the client reaches both web pods" answers_are client 192.168.77.1 30080 12 "pod1 pod2 "
check "session affinity keeps the client on one pod" one_answer client 10.0.0.11 80 9
check "a port that is not a service port on a VIP is refused, not a timeout" refused client 10.0.0.10 81

# ---- externalTrafficPolicy Local, load balancer IPs, source ranges ----
# pod3 answers /cgi-bin/ip with the address it sees (busybox httpd CGI).
mkdir -p /srv/pod3/cgi-bin
printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "pod3 $REMOTE_ADDR"\n' >/srv/pod3/cgi-bin/ip
chmod +x /srv/pod3/cgi-bin/ip
# get_path NS IP PORT PATH: the last line of one response
get_path() { printf 'GET %s HTTP/1.0\r\n\r\n' "$4" | $IP netns exec "$1" nc -w 3 "$2" "$3" 2>/dev/null | tail -1; }
sees_client() { a=$(get_path client "$1" "$2" /cgi-bin/ip); echo "got: $a"; echo "$a" | grep -q "^pod3 .*192\.168\.77\.2"; }
no_answer() { a=$(get client "$1" "$2"); echo "got: $a"; [ -z "$a" ]; }
lb() { # name clusterIP lbIP nodePort extra-spec-line [endpoint-ip node]...
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: $2
$5
  ports: [{name: http, protocol: TCP, port: 80, nodePort: $4}]
status:
  loadBalancer: {ingress: [{ip: $3}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $1-1, namespace: default, labels: {kubernetes.io/service-name: $1}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
EOF
	shift 5
	while [ $# -ge 2 ]; do
		echo "  - {addresses: [\"$1\"], conditions: {ready: true}, nodeName: $2}"
		shift 2
	done
}
lb local 10.0.0.13 203.0.113.10 30081 "  externalTrafficPolicy: Local" 10.244.3.2 vm-node 10.244.2.2 other-node >$M/local.yaml
lb fwopen 10.0.0.14 203.0.113.11 30082 "  loadBalancerSourceRanges: [192.168.77.2/32]" 10.244.1.2 vm-node >$M/fwopen.yaml
lb fwclosed 10.0.0.15 203.0.113.12 30083 "  loadBalancerSourceRanges: [10.1.2.0/24]" 10.244.1.2 vm-node >$M/fwclosed.yaml
check "LoadBalancer IPs become virtual servers" wait_for 10 sh -c "ipvsadm -Ln | grep -q 203.0.113.10:80 && ipvsadm -Ln | grep -q 203.0.113.12:80"
check "eTP Local: NodePort reaches only the endpoint on this node" answers_are client 192.168.77.1 30081 8 "pod3 "
check "eTP Local: the NodePort backend sees the client's own address" sees_client 192.168.77.1 30081
check "eTP Local: the LoadBalancer IP reaches only the local endpoint" answers_are client 203.0.113.10 80 8 "pod3 "
check "eTP Local: the LoadBalancer IP backend sees the client's own address" sees_client 203.0.113.10 80
check "eTP Local: ClusterIP still reaches both endpoints" answers_are client 10.0.0.13 80 16 "pod2 pod3 "
check "ipset KUBE-LOAD-BALANCER-LOCAL holds the Local LB IP" sh -c "ipset list KUBE-LOAD-BALANCER-LOCAL | grep -q '^203.0.113.10,tcp:80$'"
check "source ranges: a client inside the range reaches the LB IP" answers_are client 203.0.113.11 80 3 "pod1 "
check "source ranges: a client outside the range gets no answer" no_answer 203.0.113.12 80
check "ipset KUBE-LOAD-BALANCER-SOURCE-CIDR holds the allowed range" sh -c "ipset list KUBE-LOAD-BALANCER-SOURCE-CIDR | grep -q '^203.0.113.11,tcp:80,192.168.77.2'"

# ---- IPv6 ----
echo 1 >/proc/sys/net/ipv6/conf/all/forwarding
for i in 1 2; do
	$IP addr add fd00:10:244:$i::1/64 dev vp$i nodad
	$IP -n pod$i addr add fd00:10:244:$i::2/64 dev eth0 nodad
	$IP -n pod$i -6 route add default via fd00:10:244:$i::1
done
$IP addr add fd00:77::1/64 dev vc nodad
$IP -n client addr add fd00:77::2/64 dev eth0 nodad
$IP -n client -6 route add default via fd00:77::1
cat >$M/web6.yaml <<EOF
apiVersion: v1
kind: Service
metadata: {name: web6, namespace: default}
spec:
  clusterIP: fd00:10:96::10
  ipFamilies: [IPv6]
  ports: [{name: http, protocol: TCP, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web6-1, namespace: default, labels: {kubernetes.io/service-name: web6}}
addressType: IPv6
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
  - {addresses: ["fd00:10:244:1::2"], conditions: {ready: true}, nodeName: vm-node}
  - {addresses: ["fd00:10:244:2::2"], conditions: {ready: true}, nodeName: vm-node}
EOF
check "IPv6: the ClusterIP becomes a virtual server with both real servers" wait_for 10 sh -c \
	"ipvsadm -Ln -t [fd00:10:96::10]:80 | grep -q 'fd00:10:244:1::2\]:8080' && ipvsadm -Ln -t [fd00:10:96::10]:80 | grep -q 'fd00:10:244:2::2\]:8080'"
check "IPv6: the VIP is on kube-ipvs0" sh -c "$IP -6 addr show dev kube-ipvs0 | grep -q 'fd00:10:96::10/128'"
check "IPv6: ipset KUBE-6-CLUSTER-IP holds ClusterIP,tcp:port" sh -c "ipset list KUBE-6-CLUSTER-IP | grep -q '^fd00:10:96::10,tcp:80$'"
check "IPv6: the ClusterIP from the client reaches both pods" answers_are client fd00:10:96::10 80 12 "pod1 pod2 "

# ---- drain ----
# hold a connection to pod3 through the drain service, then move it to pod1
mkfifo /tmp/hold
$IP netns exec client sh -c "cat /tmp/hold | nc 10.0.0.12 80 >/dev/null" &
HOLD=$!
exec 7>/tmp/hold
check "held connection is active on pod3" wait_for 10 sh -c "ipvsadm -Ln -t 10.0.0.12:80 | grep -q '10.244.3.2:8080 *Masq *1 *1'"
{ svc drain 10.0.0.12 80 ClusterIP ""; slice drain 10.244.1.2; } >$M/drain.yaml
check "removed endpoint drains: weight 0 while the connection lives" wait_for 10 sh -c "ipvsadm -Ln -t 10.0.0.12:80 | grep -q '10.244.3.2:8080 *Masq *0 *1'"
check "new connections go to the remaining endpoint" answers_are client 10.0.0.12 80 4 "pod1 "
exec 7>&-
kill $HOLD 2>/dev/null
check "drained endpoint is deleted after its connections end (bounded grace)" wait_for 40 sh -c "ipvsadm -Ln -t 10.0.0.12:80 | grep -q 10.244.1.2 && ! ipvsadm -Ln -t 10.0.0.12:80 | grep -q 10.244.3.2"

udp 10.244.1.2 10.244.3.2 >$M/dns.yaml
check "UDP: the new real server appears" wait_for 10 sh -c "ipvsadm -Ln -u 10.0.0.20:53 | grep -q 10.244.3.2:5353"
check "UDP: the removed real server is gone at once (no draining)" sh -c "! ipvsadm -Ln -u 10.0.0.20:53 | grep -q 10.244.2.2:5353"

# ---- repair ----
ipvsadm -D -t 10.0.0.10:80
check "hand-deleted virtual server comes back at the next full sync" wait_for 15 ipvs_has "TCP  10.0.0.10:80 rr"
check "and gets its real servers back" wait_for 5 sh -c "ipvsadm -Ln -t 10.0.0.10:80 | grep -q 10.244.2.2:8080"
ipvsadm -d -t 10.0.0.11:80 -r 10.244.2.2:8080
check "hand-deleted real server comes back" wait_for 15 sh -c "ipvsadm -Ln -t 10.0.0.11:80 | grep -q 10.244.2.2:8080"

# ---- removal ----
rm $M/sticky.yaml
check "removed service: virtual server gone (others stay)" wait_for 10 sh -c "! ipvsadm -Ln | grep -q 10.0.0.11:80 && ipvsadm -Ln | grep -q 10.0.0.10:80"
check "removed service: VIP gone from kube-ipvs0" wait_for 5 sh -c "$IP addr show dev kube-ipvs0 | grep -q 10.0.0.10/ && ! $IP addr show dev kube-ipvs0 | grep -q 10.0.0.11/"
check "removed service: ipset entry gone" sh -c "ipset list KUBE-CLUSTER-IP | grep -q 10.0.0.10 && ! ipset list KUBE-CLUSTER-IP | grep -q 10.0.0.11"

# ---- stop and clean up ----
kill $KPPID
wait $KPPID
check "daemon exits cleanly on SIGTERM (sanitizers quiet)" sh -c "! grep -q 'ERROR: \\(Address\\|Leak\\)Sanitizer\\|runtime error' /tmp/kp.stderr"
$KP --proxy-mode=ipvs --cleanup --ipvs-exclude-cidrs=10.99.0.0/16 --log-file=/tmp/cleanup.log >/tmp/cleanup.out 2>&1
check "--cleanup exits 0" [ $? = 0 ]
check "--cleanup removed our virtual servers" sh -c "! ipvsadm -Ln | grep -q '10.0.0.1[0-5]:80\\|:3008[0-3]\\|203.0.113\\|fd00:10:96'"
check "--cleanup kept the excluded foreign virtual server" ipvs_has "10.99.0.1:80"
check "--cleanup removed kube-ipvs0" sh -c "! $IP link show kube-ipvs0"
check "--cleanup removed our ipsets" sh -c "! ipset list -n | grep -q KUBE-"
check "--cleanup removed our iptables chains" sh -c "! iptables-legacy-save | grep -q KUBE-"
grep -E '^[EW]' $LOG | head -20 | sed 's/^/# log: /'
grep -iE 'error|sanitizer' /tmp/kp.stderr | head -20 | sed 's/^/# stderr: /'

# ---- iptables mode on a kernel without nfacct ----
# This guest has neither nfnetlink_acct nor xt_nfacct: the iptables mode
# must say so and program upstream's rules without the nfacct match.
ILOG=/var/log/kp-iptables.log
$KP --proxy-mode=iptables --manifest-dir=$M --hostname-override=vm-node --cluster-cidr=10.244.0.0/16 \
	--service-cluster-ip-range=10.0.0.0/24,fd00:10:96::/112 --log-file=$ILOG \
	--state-dir=/var/lib/kube-proxy --healthz-bind-address= --metrics-bind-address= 2>/tmp/kpi.stderr &
KPPID=$!
check "iptables mode without nfacct: syncs" wait_for 20 grep -q "Initial sync" $ILOG
check "...logs that the nfacct metrics are unavailable" grep -q "nfacct" $ILOG
check "...writes the INVALID drop without the nfacct match" sh -c \
	"iptables-legacy -S KUBE-FORWARD | grep -q -- '--ctstate INVALID -j DROP' && ! iptables-legacy-save | grep -q nfacct"
check "...and serves the ClusterIP" answers_are client 10.0.0.10 80 12 "pod1 pod2 "
kill $KPPID
wait $KPPID
$KP --proxy-mode=iptables --cleanup --log-file=/tmp/cleanup2.log >/dev/null 2>&1
check "iptables mode: --cleanup leaves no KUBE- rule" sh -c "! iptables-legacy-save | grep -q KUBE-"
grep -E '^[EW]' $ILOG | head -5 | sed 's/^/# iptables log: /'
echo "1..$N"
