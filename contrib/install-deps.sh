#!/bin/sh
# Installs what a fresh Debian 12 machine lacks to build, run and test
# kube-proxy. Idempotent: installs only missing packages.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config
libiptc-dev libip4tc-dev libip6tc-dev libipset-dev
libnl-3-dev libnl-genl-3-dev libnl-route-3-dev
libcurl4-openssl-dev libjansson-dev libyaml-dev libcmocka-dev
libnetfilter-conntrack-dev
iptables ipset iproute2 conntrack curl socat procps kmod
python3 openssl valgrind groff-base man-db logrotate
qemu-system-x86 busybox-static ipvsadm cpio nghttp2-proxy bc"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "Installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The API-server tests drive the real kubectl against the fake API server.
# Debian 12 ships an old client as kubernetes-client; a newer kubectl
# already on the machine is kept.
if ! command -v kubectl >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi
