#!/bin/bash
# Builds kube-proxy and runs it on the bundled example (contrib/examples)
# inside throwaway network namespaces: a "node" namespace running the
# daemon, two "pod" namespaces running tiny servers, and an "outside"
# client. Shows the log, the NAT rules, and requests answered through the
# ClusterIP and the NodePort. Nothing outside those namespaces is changed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh contrib/install-deps.sh
if [ ! -x _build/kube-proxy ] || [ -n "$(find src modes kubeapi -newer _build/kube-proxy -name '*.[ch]' | head -1)" ]; then
	[ -x configure ] || autoreconf -fi
	mkdir -p _build
	(cd _build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" -s kube-proxy)
fi

export KP_TEST=demo KP_BUILDDIR="$top/_build" KP_SRCDIR="$top"
. tests/integration/lib.sh
kp_require_root
kp_topology 2
kp_backend pod1 8080
kp_backend pod2 8080

echo "== Starting kube-proxy in namespace $KP_NODE on contrib/examples"
kp_start_daemon --manifest-dir="$top/contrib/examples" --hostname-override=demo-node \
	--cluster-cidr=10.244.0.0/16 --nodeport-addresses=192.168.77.0/24
if ! kp_wait_for 10 grep -q "Initial sync" "$KP_TMP/kube-proxy.log"; then
	echo "kube-proxy did not sync; its output:"; cat "$KP_TMP/daemon.out"; exit 1
fi
echo; echo "== Log ($KP_TMP/kube-proxy.log)"
cat "$KP_TMP/kube-proxy.log"
echo; echo "== ClusterIPs allocated from 10.0.0.0/24 (state file)"
cat "$KP_TMP/state/clusterip-allocations"
web_ip=$(awk '$1 == "default/web" {print $2}' "$KP_TMP/state/clusterip-allocations")
echo; echo "== iptables-legacy -t nat -S (in the node namespace)"
kp_node iptables-legacy -t nat -S | grep -E 'KUBE-(SERVICES|SVC|SEP|NODEPORTS|EXT)' | head -40
echo; echo "== curl http://$web_ip/ from the node, four times (ClusterIP -> pods)"
for _ in 1 2 3 4; do kp_get "$KP_NODE" "$web_ip" 80; done
echo; echo "== curl http://192.168.77.1:30080/ from the outside namespace (NodePort -> pod2)"
kp_get "${KP_ID}-out" 192.168.77.1 30080
kp_stop_daemon
echo; echo "Demo done; namespaces are removed on exit. Rules stay in place after SIGTERM, as upstream; 'kube-proxy --cleanup' removes them."
