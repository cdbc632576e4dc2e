#!/bin/sh
# The libiptc writer against the real kernel, in throwaway namespaces:
#  1. binary encoding: the want rendered as text and loaded by
#     iptables-legacy-restore (namespace A) and the same want applied with
#     iptc_apply (namespace B) must save identically, and A's kernel entries
#     must equal our encoding byte for byte (driver "compare");
#  2. ownership: foreign chains and rules survive apply, re-apply, partial
#     apply and iptc_remove_chains; stale KUBE-SVC-/SEP- chains go;
#  3. partial sync: an identical re-apply rewrites nothing; "keep" chains
#     and unchanged chains are left alone.
# IPv4 and IPv6. Never touches the root namespace.
. "$(dirname "$0")/lib.sh"

kp_require_root
command -v ipset >/dev/null || kp_skip "needs ipset"
command -v ip6tables-legacy-restore >/dev/null || kp_skip "needs ip6tables-legacy"

DRV="$KP_BUILDDIR/tests/integration/iptc_roundtrip"
[ -x "$DRV" ] || { echo "Bail out! $DRV not built"; exit 1; }

# Our own lock file: the test never waits for the machine's other users.
export XTABLES_LOCKFILE="$KP_TMP/xtables.lock"

NSA="${KP_ID}-iptc-a"
NSB="${KP_ID}-iptc-b"
NSC="${KP_ID}-iptc-c"

# save NS FAM: the nat and filter tables as iptables-save prints them,
# without the "#" lines and with counters zeroed.
save() {
	local ns=$1 fam=$2 cmd=iptables-legacy-save
	[ "$fam" = 6 ] && cmd=ip6tables-legacy-save
	for t in nat filter; do
		ip netns exec "$ns" $cmd -t $t
	done | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]$/[0:0]/'
}

ipt() {
	local ns=$1 fam=$2; shift 2
	if [ "$fam" = 6 ]; then ip netns exec "$ns" ip6tables-legacy "$@"; else ip netns exec "$ns" iptables-legacy "$@"; fi
}

restore() {
	local ns=$1 fam=$2 cmd=iptables-legacy-restore
	[ "$fam" = 6 ] && cmd=ip6tables-legacy-restore
	ip netns exec "$ns" $cmd
}

mksets() {
	local ns=$1
	ip netns exec "$ns" ipset create KUBE-TEST-SET hash:ip,port
	ip netns exec "$ns" ipset create KUBE-TEST-3SET hash:ip,port,ip
	ip netns exec "$ns" ipset create KUBE-TEST-SET6 hash:ip,port family inet6
	ip netns exec "$ns" ipset create KUBE-TEST-3SET6 hash:ip,port,ip family inet6
	ip netns exec "$ns" "$DRV" nfacct ensure kp-test-acct >/dev/null
}

# stat_is OUTPUT TABLE KEY VALUE
stat_is() {
	echo "$1" | grep -q "^$2 .*\b$3=$4\b"
}

for ns in "$NSA" "$NSB" "$NSC"; do
	kp_ns "$ns" || { echo "Bail out! cannot create $ns"; exit 1; }
	mksets "$ns"
done
kp_check "nfacct: a new counter reads 0 packets and ensuring it again is no error" \
	eval '[ "$(ip netns exec "$NSA" "$DRV" nfacct read kp-test-acct)" = 0 ] &&
		ip netns exec "$NSA" "$DRV" nfacct ensure kp-test-acct >/dev/null'
kp_check "nfacct: the kernel reports the nfacct match in the revision we encode" \
	eval '[ "$(ip netns exec "$NSA" "$DRV" nfacct usable)" = usable ]'
kp_check "nfacct: reading a counter that does not exist fails" \
	eval '! ip netns exec "$NSA" "$DRV" nfacct read kp-no-such-counter >/dev/null 2>&1'

for fam in 4 6; do
	"$DRV" render $fam full >"$KP_TMP/full$fam.txt"
	"$DRV" render $fam v2 >"$KP_TMP/v2$fam.txt"

	# 1. encoding: restore in A, apply in B, compare.
	kp_check "v$fam: iptables-legacy-restore loads the rendered want" \
		restore "$NSA" $fam <"$KP_TMP/full$fam.txt"
	out=$(ip netns exec "$NSB" "$DRV" apply $fam full 2>&1)
	kp_check "v$fam: iptc_apply on empty tables succeeds" test $? = 0
	echo "$out" | sed 's/^/# /'
	save "$NSA" $fam >"$KP_TMP/a$fam.save"
	save "$NSB" $fam >"$KP_TMP/b$fam.save"
	if diff -u "$KP_TMP/a$fam.save" "$KP_TMP/b$fam.save" >"$KP_TMP/diff$fam"; then
		kp_ok "v$fam: iptables-save of restore and of iptc_apply are identical ($(wc -l <"$KP_TMP/a$fam.save") lines)"
	else
		kp_fail "v$fam: iptables-save differs between restore and iptc_apply"
		sed 's/^/# /' "$KP_TMP/diff$fam"
	fi
	kp_check "v$fam: kernel entries loaded by restore equal our encoding byte for byte" \
		ip netns exec "$NSA" "$DRV" compare $fam full
	kp_check "v$fam: kernel entries written by iptc_apply equal our encoding" \
		ip netns exec "$NSB" "$DRV" compare $fam full

	out=$(ip netns exec "$NSB" "$DRV" apply $fam full 2>&1)
	echo "$out" | sed 's/^/# /'
	kp_check "v$fam: identical re-apply rewrites no chain" \
		eval 'stat_is "$out" nat rewritten 0 && stat_is "$out" filter rewritten 0 &&
		      stat_is "$out" nat created 0 && stat_is "$out" nat deleted 0'
	save "$NSB" $fam >"$KP_TMP/b$fam.save2"
	kp_check "v$fam: identical re-apply leaves the tables as they were" \
		diff -q "$KP_TMP/b$fam.save" "$KP_TMP/b$fam.save2"

	# A commit that loses a race with another iptables user (EAGAIN) is
	# redone from iptc_init; the other user's chain survives.
	for t in nat filter; do ipt "$NSA" $fam -t $t -F; ipt "$NSA" $fam -t $t -X; done
	out=$(KP_IPTC_RACE=1 ip netns exec "$NSA" "$DRV" apply $fam full 2>&1)
	echo "$out" | sed 's/^/# /'
	kp_check "v$fam: a commit that races another writer is retried (2 attempts)" \
		eval 'stat_is "$out" nat attempts 2 && stat_is "$out" filter attempts 1'
	kp_check "v$fam: the racing writer's chain survives the retry" \
		eval 'save "$NSA" $fam | grep -qx ":KP-RACE - \[0:0\]"'
	kp_check "v$fam: kernel entries equal the want after the retried apply" \
		ip netns exec "$NSA" "$DRV" compare $fam full
	ipt "$NSA" $fam -t nat -X KP-RACE

	# The xtables lock: a short holder is waited for, a long one is not.
	if [ $fam = 4 ] && command -v flock >/dev/null; then
		flock "$XTABLES_LOCKFILE" sleep 1 &
		sleep 0.2
		out=$(ip netns exec "$NSA" "$DRV" apply $fam full 2>&1)
		kp_check "v$fam: apply waits for a short xtables lock holder" test $? = 0
		wait
		flock "$XTABLES_LOCKFILE" sleep 8 &
		sleep 0.2
		t0=$(date +%s)
		out=$(ip netns exec "$NSA" "$DRV" apply $fam full 2>&1)
		rc=$?
		t1=$(date +%s)
		echo "$out" | sed 's/^/# /'
		kp_check "v$fam: apply gives up after ~5 s when the xtables lock stays taken" \
			eval '[ $rc != 0 ] && [ $((t1 - t0)) -ge 4 ] && [ $((t1 - t0)) -le 7 ] &&
			      echo "$out" | grep -q "holding the xtables lock"'
		wait
	fi

	# 2. foreign chains and rules in C, then apply / re-apply / partial / remove.
	ipt "$NSC" $fam -t nat -N FOREIGN
	ipt "$NSC" $fam -t nat -A FOREIGN -j RETURN
	ipt "$NSC" $fam -t nat -A PREROUTING -j FOREIGN
	ipt "$NSC" $fam -t filter -A INPUT -p tcp --dport 22 -j ACCEPT
	ipt "$NSC" $fam -t filter -N KUBE-FIREWALL
	ipt "$NSC" $fam -t filter -A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP
	ipt "$NSC" $fam -t filter -I INPUT -j KUBE-FIREWALL
	ipt "$NSC" $fam -t nat -N KUBE-SEP-STALE0000000000
	ipt "$NSC" $fam -t nat -N KUBE-SVC-STALE0000000000
	ipt "$NSC" $fam -t nat -A KUBE-SVC-STALE0000000000 -j KUBE-SEP-STALE0000000000
	ipt "$NSC" $fam -t nat -A PREROUTING -j KUBE-SVC-STALE0000000000
	# an old copy of our portal jump, lower down: must be replaced, not doubled
	ipt "$NSC" $fam -t nat -N KUBE-SERVICES
	ipt "$NSC" $fam -t nat -A PREROUTING -m comment --comment "old portals" -j KUBE-SERVICES

	foreign_ok() {
		local s
		s=$(save "$NSC" $fam)
		echo "$s" | grep -qx -- '-A PREROUTING -j FOREIGN' &&
		echo "$s" | grep -qx -- '-A FOREIGN -j RETURN' &&
		echo "$s" | grep -q -- '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT' &&
		echo "$s" | grep -qx -- '-A INPUT -j KUBE-FIREWALL' &&
		echo "$s" | grep -q -- '-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP'
	}
	out=$(ip netns exec "$NSC" "$DRV" apply $fam full 2>&1)
	kp_check "v$fam: apply next to foreign rules succeeds" test $? = 0
	echo "$out" | sed 's/^/# /'
	kp_check "v$fam: foreign chains and rules survive apply" foreign_ok
	kp_check "v$fam: stale KUBE-SVC-/KUBE-SEP- chains are deleted" \
		eval '! save "$NSC" $fam | grep -q STALE && stat_is "$out" nat deleted 2'
	prerouting_ok() {
		save "$NSC" $fam | grep '^-A PREROUTING' >"$KP_TMP/pre"
		printf '%s\n' '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' \
			'-A PREROUTING -j KUBE-PORTALS-CONTAINER' '-A PREROUTING -j FOREIGN' | diff - "$KP_TMP/pre"
	}
	kp_check "v$fam: old and stale jumps gone, ours on top of PREROUTING, foreign below" prerouting_ok
	kp_check "v$fam: kernel entries equal the want after apply next to foreign rules" \
		ip netns exec "$NSC" "$DRV" compare $fam full

	out=$(ip netns exec "$NSC" "$DRV" apply $fam full 2>&1)
	echo "$out" | sed 's/^/# /'
	kp_check "v$fam: re-apply next to foreign rules rewrites nothing" \
		eval 'stat_is "$out" nat rewritten 0 && stat_is "$out" filter rewritten 0'
	kp_check "v$fam: foreign chains and rules survive re-apply" foreign_ok

	# a "keep" chain that went missing must be recreated in full
	ipt "$NSC" $fam -t nat -F KUBE-IPVS-TEST
	ipt "$NSC" $fam -t nat -X KUBE-IPVS-TEST
	out=$(ip netns exec "$NSC" "$DRV" apply $fam v2 2>&1)
	echo "$out" | sed 's/^/# /'
	# v2: KUBE-SERVICES loses a line, KUBE-SEP-BBB..0 changes port, svc3
	# (SVC + SEP) is gone, svc1's SVC and SEP chains and KUBE-IPVS-TEST
	# are "keep".
	kp_check "v$fam: partial apply rewrites 2 chains, deletes 2, recreates the missing keep chain" \
		eval 'stat_is "$out" nat rewritten 2 && stat_is "$out" nat deleted 2 &&
		      stat_is "$out" nat created 1 && stat_is "$out" filter rewritten 0'
	kp_check "v$fam: kernel entries equal the v2 want after the partial apply" \
		ip netns exec "$NSC" "$DRV" compare $fam v2
	kp_check "v$fam: foreign chains and rules survive the partial apply" foreign_ok
	# The result must be what a full restore of v2 gives (A, flushed first).
	for t in nat filter; do ipt "$NSA" $fam -t $t -F; ipt "$NSA" $fam -t $t -X; done
	restore "$NSA" $fam <"$KP_TMP/v2$fam.txt"
	ours_only() { save "$1" $fam | grep KUBE | grep -v KUBE-FIREWALL; }
	ours_only "$NSA" >"$KP_TMP/a$fam.v2"
	ours_only "$NSC" >"$KP_TMP/c$fam.v2"
	kp_check "v$fam: partial apply result matches a full restore of v2" \
		diff "$KP_TMP/a$fam.v2" "$KP_TMP/c$fam.v2"

	kp_check "v$fam: iptc_list_chains finds our chains" \
		eval '[ "$(ip netns exec "$NSC" "$DRV" list $fam nat KUBE-SEP- | wc -l)" = 4 ]'
	kp_check "v$fam: iptc_remove_chains nat succeeds" \
		ip netns exec "$NSC" "$DRV" remove $fam nat KUBE-SERVICES KUBE-SVC- KUBE-SEP- KUBE-EXT- \
			KUBE-NODEPORTS KUBE-POSTROUTING KUBE-MARK-MASQ KUBE-PORTALS- KUBE-IPVS-TEST
	kp_check "v$fam: iptc_remove_chains filter succeeds" \
		ip netns exec "$NSC" "$DRV" remove $fam filter KUBE-SERVICES KUBE-EXTERNAL-SERVICES \
			KUBE-NODEPORTS KUBE-FORWARD KUBE-PROXY-FIREWALL
	kp_check "v$fam: nothing of ours is left after remove" \
		eval '! save "$NSC" $fam | grep KUBE | grep -v KUBE-FIREWALL | grep -q .'
	kp_check "v$fam: foreign chains and rules survive iptc_remove_chains" foreign_ok
	kp_check "v$fam: remove on a table without our chains is a no-op" \
		ip netns exec "$NSC" "$DRV" remove $fam mangle KUBE-
	# Clean C for the other family's run.
	for t in nat filter; do ipt "$NSC" $fam -t $t -F; ipt "$NSC" $fam -t $t -X; done
done

kp_finish
