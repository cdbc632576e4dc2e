# Helpers to boot a stock Debian kernel (linux-image-cloud-amd64, which has
# IPVS, ipset and netfilter as modules) under qemu-system-x86_64 with a
# busybox initramfs, run a scenario script inside and collect its TAP lines
# from the serial console. Sourced by tests/vm/*.sh and bench/ipvs-bench.sh.
#
# Environment:
#   KP_VM_CACHE   where the downloaded kernel is cached (default
#                 /var/cache/kube-proxy-vm)
#   KP_VM_MEM     guest memory in MiB (default 1024)
#   KP_VM_TIMEOUT seconds before the guest is killed (default 600)

KP_VM_CACHE=${KP_VM_CACHE:-/var/cache/kube-proxy-vm}
KP_VM_MEM=${KP_VM_MEM:-1024}
KP_VM_TIMEOUT=${KP_VM_TIMEOUT:-600}

# Modules loaded at boot, with their dependencies (resolved on the host).
VM_MODULES="dummy veth nf_conntrack nf_nat
ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_sh ip_vs_dh
ip_vs_sed ip_vs_nq ip_vs_mh
ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet
ip_set_hash_net ip_set_bitmap_port xt_set
ip_tables iptable_nat iptable_filter iptable_mangle ip6_tables ip6table_nat ip6table_filter
ip6table_mangle x_tables xt_tcpudp xt_comment xt_mark xt_MASQUERADE xt_addrtype
xt_conntrack xt_nat xt_multiport xt_statistic xt_recent xt_physdev ipt_REJECT ip6t_REJECT
xt_sctp xt_ipvs nf_conntrack_netlink"

vm_log() { echo "# vm: $*" >&2; }

# Prints the kernel package name that linux-image-cloud-amd64 depends on.
vm_kernel_pkg() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}

# Downloads (once) and extracts the kernel; sets VM_KVER, VM_KROOT.
vm_fetch_kernel() {
	local deb pkg
	mkdir -p "$KP_VM_CACHE" || return 1
	deb=$(ls "$KP_VM_CACHE"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -1)
	if [ -z "$deb" ]; then
		pkg=$(vm_kernel_pkg)
		if [ -z "$pkg" ]; then
			apt-get update -qq >/dev/null 2>&1
			pkg=$(vm_kernel_pkg)
		fi
		[ -n "$pkg" ] || { vm_log "cannot resolve linux-image-cloud-amd64"; return 1; }
		vm_log "downloading $pkg into $KP_VM_CACHE"
		(cd "$KP_VM_CACHE" && apt-get download "$pkg" >/dev/null 2>&1) || {
			vm_log "apt-get download $pkg failed"; return 1; }
		deb=$(ls "$KP_VM_CACHE"/linux-image-*-cloud-amd64_*.deb | sort -V | tail -1)
	fi
	VM_KROOT="$KP_VM_CACHE/root-$(basename "$deb" .deb)"
	if [ ! -d "$VM_KROOT/lib/modules" ]; then
		rm -rf "$VM_KROOT.tmp"
		mkdir -p "$VM_KROOT.tmp"
		dpkg-deb -x "$deb" "$VM_KROOT.tmp" || return 1
		rm -rf "$VM_KROOT"
		mv "$VM_KROOT.tmp" "$VM_KROOT"
	fi
	VM_KVER=$(ls "$VM_KROOT/lib/modules" | head -1)
	[ -f "$VM_KROOT/lib/modules/$VM_KVER/modules.dep" ] || depmod -b "$VM_KROOT" "$VM_KVER" || return 1
	VM_KERNEL="$VM_KROOT/boot/vmlinuz-$VM_KVER"
	[ -f "$VM_KERNEL" ]
}

# Copies a binary and the shared libraries it needs into the stage dir.
vm_copy_bin() {
	local stage=$1 bin=$2 lib
	[ -e "$bin" ] || { vm_log "missing $bin"; return 1; }
	mkdir -p "$stage$(dirname "$bin")"
	cp -L "$bin" "$stage$bin"
	for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
		[ -e "$stage$lib" ] && continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done
}

# Builds an initramfs: vm_build_initramfs OUT.cpio.gz SCENARIO [FILE DEST]...
# SCENARIO runs as /scenario.sh inside the guest after the modules are
# loaded; extra FILE DEST pairs are copied in (binaries get their libraries).
vm_build_initramfs() {
	local out=$1 scenario=$2 stage m f dest
	shift 2
	stage=$(mktemp -d "${TMPDIR:-/tmp}/kp-vm-stage.XXXXXX")
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,var/run,var/lib,lib/modules}
	cp /bin/busybox "$stage/bin/busybox"
	# modules and their dependency closure, in load order
	: >"$stage/modules.load"
	for m in $VM_MODULES; do
		modprobe -d "$VM_KROOT" -S "$VM_KVER" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++' | while read -r f; do
		dest=${f#"$VM_KROOT"}
		mkdir -p "$stage$(dirname "$dest")"
		cp "$f" "$stage$dest"
		echo "$dest" >>"$stage/modules.load"
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		cp "$VM_KROOT/lib/modules/$VM_KVER/$f" "$stage/lib/modules/$VM_KVER/" 2>/dev/null
	done
	depmod -b "$stage" "$VM_KVER" 2>/dev/null
	# userland: iproute2, ipvsadm, ipset, iptables-legacy with its extensions
	vm_copy_bin "$stage" /usr/sbin/ipvsadm || return 1
	vm_copy_bin "$stage" /usr/sbin/ipset || return 1
	vm_copy_bin "$stage" /bin/ip && mkdir -p "$stage/usr/sbin" && cp -L /bin/ip "$stage/usr/sbin/ip"
	vm_copy_bin "$stage" /usr/sbin/xtables-legacy-multi || return 1
	for f in iptables-legacy iptables-legacy-save iptables-legacy-restore \
		ip6tables-legacy ip6tables-legacy-save ip6tables-legacy-restore; do
		ln -sf xtables-legacy-multi "$stage/usr/sbin/$f"
	done
	if [ -d /usr/lib/x86_64-linux-gnu/xtables ]; then
		mkdir -p "$stage/usr/lib/x86_64-linux-gnu"
		cp -a /usr/lib/x86_64-linux-gnu/xtables "$stage/usr/lib/x86_64-linux-gnu/"
		for f in /usr/lib/x86_64-linux-gnu/xtables/*.so; do vm_copy_bin "$stage" "$f" >/dev/null; done
	fi
	while [ $# -ge 2 ]; do
		if [ -x "$1" ] && file -L "$1" 2>/dev/null | grep -q ELF; then
			vm_copy_bin "$stage" "$1" || return 1
			[ "$1" = "$2" ] || { mkdir -p "$stage$(dirname "$2")"; cp -L "$1" "$stage$2"; }
		else
			mkdir -p "$stage$(dirname "$2")"
			cp -a "$1" "$stage$2"
		fi
		shift 2
	done
	# libipset resolves "tcp"/"udp" with getprotobyname()
	if [ -f /etc/protocols ]; then
		cp /etc/protocols "$stage/etc/protocols"
	else
		printf 'ip 0 IP\nicmp 1 ICMP\ntcp 6 TCP\nudp 17 UDP\nipv6-icmp 58 IPv6-ICMP\nsctp 132 SCTP\n' >"$stage/etc/protocols"
	fi
	cp "$scenario" "$stage/scenario.sh"
	cat >"$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mkdir -p /run/netns /var/run/netns /var/log /var/lib/kube-proxy
echo "127.0.0.1 localhost" >/etc/hosts
for m in $(cat /modules.load); do insmod "$m" 2>/dev/null; done
ip link set lo up
echo "# vm: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu"
sh /scenario.sh 2>&1
echo "# vm: scenario exited $?"
sync
poweroff -f
INIT
	chmod +x "$stage/init" "$stage/scenario.sh"
	(cd "$stage" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$out" || return 1
	rm -rf "$stage"
}

# Boots the initramfs; the serial console goes to LOG. Returns qemu's status.
vm_run() {
	local initrd=$1 log=$2 append=${3:-}
	timeout "$KP_VM_TIMEOUT" qemu-system-x86_64 -machine q35 -accel tcg,thread=multi \
		-cpu max -smp 2 -m "$KP_VM_MEM" -nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$VM_KERNEL" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=1 $append" </dev/null >"$log" 2>&1
}
