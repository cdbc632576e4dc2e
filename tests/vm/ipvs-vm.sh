#!/bin/bash
# The ipvs mode for real: boots the stock Debian cloud kernel (IPVS as
# modules) under qemu with a busybox initramfs holding the daemon, and runs
# tests/vm/ipvs-scenario.sh inside; its TAP lines come back over the serial
# console. Also checks, on this machine, that the probe refuses a kernel
# without IPVS with a useful message (in a throwaway network namespace).
# Skips outside CI when qemu, root or the kernel package are missing; fails
# in CI.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
: "${KP_BUILDDIR:=$(pwd)}"
KP_BIN=${KP_BIN:-$KP_BUILDDIR/kube-proxy}
. "$HERE/vm-lib.sh"

skip() {
	if [ "${CI:-}" = "true" ]; then
		echo "FAIL: ipvs-vm cannot run in CI: $*" >&2
		echo "1..1"
		echo "not ok 1 - ipvs-vm: $*"
		exit 1
	fi
	echo "1..0 # SKIP ipvs-vm: $*"
	exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root"
command -v qemu-system-x86_64 >/dev/null || skip "needs qemu-system-x86_64 (package qemu-system-x86)"
[ -x /bin/busybox ] || skip "needs /bin/busybox (package busybox-static)"
command -v ipvsadm >/dev/null || skip "needs ipvsadm"
command -v cpio >/dev/null || skip "needs cpio"
[ -x "$KP_BIN" ] || skip "no kube-proxy binary at $KP_BIN"
vm_fetch_kernel || skip "cannot fetch linux-image-cloud-amd64 (apt-get download)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kp-ipvs-vm.XXXXXX")
NS="kp-ipvs-$$"
cleanup() { ip netns del "$NS" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

N=0
host_tap() { N=$((N + 1)); echo "$1 $N - $2"; }

# Host kernel: is IPVS absent here? Then the probe must say so.
if ! grep -q ip_vs /proc/modules 2>/dev/null && [ ! -d /sys/module/ip_vs ] && ip netns add "$NS" 2>/dev/null; then
	mkdir -p "$WORK/m"
	out=$(ip netns exec "$NS" "$KP_BIN" --proxy-mode=ipvs --manifest-dir="$WORK/m" --log-file= \
		--state-dir="$WORK/state" --healthz-bind-address= --metrics-bind-address= 2>&1 </dev/null)
	rc=$?
	if [ $rc -ne 0 ] && grep -q "modprobe" <<<"$out" && grep -q "ip_vs" <<<"$out"; then
		host_tap ok "without IPVS the daemon exits non-zero naming ip_vs and modprobe"
	else
		host_tap "not ok" "without IPVS the daemon exits non-zero naming ip_vs and modprobe (rc=$rc)"
		sed 's/^/#   /' <<<"$out" | head -5
	fi
	ip netns del "$NS"
fi

vm_build_initramfs "$WORK/initrd.gz" "$HERE/ipvs-scenario.sh" "$KP_BIN" /usr/sbin/kube-proxy ||
	skip "cannot build the initramfs"
t0=$(date +%s)
vm_run "$WORK/initrd.gz" "$WORK/console.log"
rc=$?
echo "# vm: qemu exited $rc after $(($(date +%s) - t0)) s"

# Renumber the guest's TAP lines after the host's.
tr -d '\r' <"$WORK/console.log" | awk -v base="$N" '
	/^ok [0-9]+ / || /^not ok [0-9]+ / {
		notok = ($1 == "not"); n++
		sub(/^(not )?ok [0-9]+ /, "")
		printf "%s %d %s\n", notok ? "not ok" : "ok", base + n, $0
		next
	}
	/^# / { print; next }
	/^1\.\.[0-9]+/ { plan = 1; next }
	END { printf "1..%d\n", base + n; if (!plan) { print "not ok " base + n + 1 " - the scenario did not finish"; } }
' >"$WORK/tap"
# a missing plan means the guest died: add the failure before the plan line
if grep -q "the scenario did not finish" "$WORK/tap"; then
	grep -v '^1\.\.' "$WORK/tap" | grep -v "did not finish"
	cnt=$(grep -cE '^(not )?ok ' "$WORK/tap")
	echo "not ok $cnt - the scenario did not finish (console tail below)"
	tail -30 "$WORK/console.log" | sed 's/^/#   /'
	echo "1..$cnt"
	exit 1
fi
cat "$WORK/tap"
