#!/bin/bash
# ipvs mode sync time, measured inside the same qemu VM as the ipvs test
# (tests/vm/vm-lib.sh): for N services x E endpoints (default 1000 and
# 10000 x 10), the daemon's first (full) sync from an empty kernel, a
# one-endpoint change (partial sync), and `ipvsadm -R` of the very same
# virtual/real servers (saved with `ipvsadm -Sn` from the daemon's result)
# in the same boot. Prints the times and their ratios.
#
#   bench/ipvs-bench.sh [N...]       env: KP_BIN (a non-sanitizer build is
#                                    best), E (endpoints per service)
# Not part of `make check`. Needs root, qemu, busybox-static, ipvsadm, cpio.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
KP_BIN=${KP_BIN:-${KP_BUILDDIR:-$(pwd)}/kube-proxy}
E=${E:-10}
SIZES=${*:-1000 10000}
export KP_VM_MEM=${KP_VM_MEM:-2048}
export KP_VM_TIMEOUT=${KP_VM_TIMEOUT:-1800}
. "$SRC/tests/vm/vm-lib.sh"

[ -x "$KP_BIN" ] || { echo "no kube-proxy at $KP_BIN" >&2; exit 1; }
vm_fetch_kernel
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kp-ipvs-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

extra=()
for n in $SIZES; do
	python3 "$SRC/bench/gen-manifests.py" "$WORK/m$n" "$n" "$E"
	mkdir -p "$WORK/v$n"
	python3 "$SRC/bench/gen-manifests.py" --bump "$WORK/v$n" "$E" 1
	extra+=("$WORK/m$n" "/bench/m$n" "$WORK/v$n/slice-0.json" "/bench/slice-0.v1.$n.json")
done

cat >"$WORK/scenario.sh" <<EOF
SIZES="$SIZES"
EOF
cat >>"$WORK/scenario.sh" <<'EOF'
KP=/usr/sbin/kube-proxy
# ms since boot
ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
# last "Synced ... in X s" of a log, in ms
synced_ms() { cat "$1" 2>/dev/null | grep "Synced ipvs proxy rules" | sed -n "$2p" | sed 's/.* in \([0-9.]*\)s.*/\1/' | awk '{printf "%d\n", $1 * 1000}'; }
nsynced() { cat "$1" 2>/dev/null | grep -c "Synced ipvs proxy rules"; }
wait_synced() { t=0; while [ "$(nsynced "$1")" -lt "$2" ] && [ $t -lt 600 ]; do sleep 0.2; t=$((t + 1)); done
	[ "$(nsynced "$1")" -ge "$2" ] || { echo "# bench: no sync $2 in $1"; tail -5 "$1" | sed 's/^/# /'; }; }
mkdir -p /var/lib/kube-proxy
for n in $SIZES; do
	log=/tmp/kp-$n.log
	M=/bench/m$n
	t0=$(ms)
	$KP --proxy-mode=ipvs --manifest-dir=$M --service-cluster-ip-range=10.96.0.0/12 --log-file=$log \
		--v=2 --iptables-sync-period=1h --ipvs-sync-period=1h --iptables-min-sync-period=0s \
		--healthz-bind-address= --metrics-bind-address= --hostname-override=bench-node 2>/tmp/kp-$n.err &
	pid=$!
	wait_synced $log 1
	t1=$(ms)
	full=$(synced_ms $log 1)
	ipvsadm -Ln >/tmp/ln 2>&1
	head -3 /tmp/ln | sed 's/^/# ln: /'
	nvs=$(grep -c '^TCP' /tmp/ln)
	nrs=$(grep -c -- '->.*Masq' /tmp/ln)
	rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	# one endpoint of one service changes
	cp /bench/slice-0.v1.$n.json $M/.s0 && mv $M/.s0 $M/slice-0.json
	wait_synced $log 2
	part=$(synced_ms $log 2)
	grep "ipvs partial sync\|ipvs full sync" $log | tail -2 | sed 's/^/# /'
	kill $pid; wait $pid
	tail -3 /tmp/kp-$n.err | sed 's/^/# err: /'
	ipvsadm -Sn >/tmp/saved
	lines=$(wc -l </tmp/saved)
	$KP --proxy-mode=ipvs --cleanup --log-file= >/dev/null 2>&1
	ipvsadm -C
	r0=$(ms)
	ipvsadm -R </tmp/saved
	r1=$(ms)
	rest=$((r1 - r0))
	ipvsadm -C
	echo "# bench n=$n: $nvs virtual servers, $nrs real servers ($lines ipvsadm lines); daemon peak RSS ${rss} kB"
	echo "# bench n=$n: daemon full sync ${full} ms (start to synced ${t1}-${t0} = $((t1 - t0)) ms incl. manifest parsing)"
	echo "# bench n=$n: ipvsadm -R of the same state ${rest} ms"
	echo "# bench n=$n: one-endpoint change (partial sync) ${part} ms"
	awk -v n=$n -v f=$full -v r=$rest -v p=$part 'BEGIN {
		printf "RESULT n=%d full_ms=%d ipvsadm_R_ms=%d ratio_full_vs_R=%.2f partial_ms=%d ratio_partial_vs_R=%.4f\n",
			n, f, r, (r ? f / r : 0), p, (r ? p / r : 0) }'
done
EOF

vm_build_initramfs "$WORK/initrd.gz" "$WORK/scenario.sh" "$KP_BIN" /usr/sbin/kube-proxy "${extra[@]}"
vm_run "$WORK/initrd.gz" "$WORK/console.log" || true
tr -d '\r' <"$WORK/console.log" | grep -E '^(# bench|RESULT|# vm|# I|# E|# ln|# err)' || { tail -40 "$WORK/console.log"; exit 1; }
