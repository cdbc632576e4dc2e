/* Test driver for the libiptc writer (run by iptc-writer.sh inside
 * throwaway network namespaces, never in the root namespace).
 *
 *   iptc_roundtrip render  4|6 VARIANT           iptables-restore text of the want
 *   iptc_roundtrip apply   4|6 VARIANT           iptc_apply nat + filter, print stats
 *   iptc_roundtrip compare 4|6 VARIANT           kernel entries == our encoding?
 *   iptc_roundtrip remove  4|6 TABLE PREFIX...   iptc_remove_chains
 *   iptc_roundtrip list    4|6 TABLE PREFIX      iptc_list_chains
 *   iptc_roundtrip nfacct  ensure|read NAME      nfacct_ensure / nfacct_read (prints packets)
 *   iptc_roundtrip nfacct  usable                nfacct_match_usable
 *
 * VARIANT "full" uses every rule item and target kind; "v2" is "full"
 * after a partial sync: some chains kept, one changed, one service gone.
 *
 * The driver is linked with --wrap=iptc_commit/ip6tc_commit: with
 * KP_IPTC_RACE=1 in the environment, the first commit of the process is
 * preceded by another writer adding a chain (iptables-legacy -N KP-RACE,
 * bypassing our lock), so the kernel refuses the commit with EAGAIN and
 * the writer must start over. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libiptc/libiptc.h>
#include <libiptc/libip6tc.h>

#include "modes/iptc/encode.h"
#include "modes/iptc/nfacct.h"
#include "modes/iptc/rule.h"
#include "modes/iptc/writer.h"

int __real_iptc_commit(struct xtc_handle *h);
int __wrap_iptc_commit(struct xtc_handle *h);
int __real_ip6tc_commit(struct xtc_handle *h);
int __wrap_ip6tc_commit(struct xtc_handle *h);

static bool raced;

/* Another iptables user changes the table between our init and commit. */
static void race(const char *cmd)
{
	const char *on = getenv("KP_IPTC_RACE");
	char *line;

	if (raced || !on || strcmp(on, "1") != 0)
		return;
	raced = true;
	/* a lock file of its own: ours is held by the writer right now */
	line = xasprintf("XTABLES_LOCKFILE=%s.race %s -t nat -N KP-RACE",
			 getenv("XTABLES_LOCKFILE") ? getenv("XTABLES_LOCKFILE") : "/run/xtables.lock", cmd);
	if (system(line) != 0)
		fprintf(stderr, "race: %s failed\n", line);
	free(line);
}

int __wrap_iptc_commit(struct xtc_handle *h)
{
	race("iptables-legacy");
	return __real_iptc_commit(h);
}

int __wrap_ip6tc_commit(struct xtc_handle *h)
{
	race("ip6tables-legacy");
	return __real_ip6tc_commit(h);
}

static const char *const stale_prefixes[] = { "KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", NULL };

struct fam {
	uint8_t af;
	bool v6;
};

static struct addr A(const struct fam *f, const char *v4, const char *v6)
{
	struct addr a;

	if (addr_parse(f->v6 ? v6 : v4, &a) < 0) {
		fprintf(stderr, "bad address %s\n", f->v6 ? v6 : v4);
		exit(2);
	}
	return a;
}

static struct cidr N(const struct fam *f, const char *v4, const char *v6)
{
	struct cidr c;

	if (cidr_parse(f->v6 ? v6 : v4, false, &c) < 0) {
		fprintf(stderr, "bad cidr %s\n", f->v6 ? v6 : v4);
		exit(2);
	}
	return c;
}

static void sep_chain(struct table_want *t, const struct fam *f, const char *name, const char *svc,
		      enum l4_proto p, const struct addr *ep, uint16_t port, bool affinity)
{
	struct chain *c = table_chain(t, name);
	struct rule *r;

	r = chain_append(c);
	rule_comment(r, svc);
	rule_src_ip(r, ep, false);
	rule_jump(r, "KUBE-MARK-MASQ");
	r = chain_append(c);
	rule_comment(r, svc);
	rule_proto(r, p);
	if (affinity)
		rule_recent_set(r, name);
	rule_dnat(r, ep, port);
	(void)f;
}

static void build_nat(struct table_want *t, const struct fam *f, bool v2)
{
	struct addr vip1 = A(f, "172.30.0.41", "fd00:30::41");
	struct addr vip2 = A(f, "172.30.0.42", "fd00:30::42");
	struct addr vip3 = A(f, "172.30.0.43", "fd00:30::43");
	struct addr ep[3] = {
		A(f, "10.180.0.1", "fd00:180::1"),
		A(f, "10.180.0.2", "fd00:180::2"),
		A(f, "10.180.0.3", "fd00:180::3"),
	};
	struct cidr cluster = N(f, "10.0.0.0/8", "fd00::/16");
	struct chain *c;
	struct rule *r;
	char name[CHAIN_NAME_MAX], comment[128], buf[ADDR_STRLEN];

	r = table_builtin_rule(t, "PREROUTING");
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");
	rule_jump(table_builtin_rule(t, "PREROUTING"), "KUBE-PORTALS-CONTAINER");
	r = table_builtin_rule(t, "OUTPUT");
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");
	r = table_builtin_rule(t, "POSTROUTING");
	rule_comment(r, "kubernetes postrouting rules");
	rule_jump(r, "KUBE-POSTROUTING");

	c = table_chain(t, "KUBE-SERVICES");
	table_chain(t, "KUBE-NODEPORTS");
	table_chain(t, "KUBE-POSTROUTING");
	table_chain(t, "KUBE-MARK-MASQ");
	c = table_chain(t, "KUBE-SERVICES");
	r = chain_append(c);
	rule_comment(r, "ns1/svc1:p80 cluster IP");
	rule_proto(r, PROTO_TCP);
	rule_dst_ip(r, &vip1, false);
	rule_dport(r, 80);
	rule_jump(r, "KUBE-SVC-AAAAAAAAAAAAAAAA");
	r = chain_append(c);
	rule_comment(r, "ns2/svc2:dns cluster IP");
	rule_proto(r, PROTO_UDP);
	rule_dst_ip(r, &vip2, false);
	rule_dport(r, 53);
	rule_jump(r, "KUBE-SVC-BBBBBBBBBBBBBBBB");
	if (!v2) {
		r = chain_append(c);
		rule_comment(r, "ns3/svc3 cluster IP");
		rule_proto(r, PROTO_SCTP);
		rule_dst_ip(r, &vip3, false);
		rule_dport(r, 3868);
		rule_jump(r, "KUBE-SVC-CCCCCCCCCCCCCCCC");
	}
	r = chain_append(c);
	rule_comment(r, "kubernetes service nodeports; NOTE: this must be the last rule in this chain");
	rule_addrtype_dst_local(r, false);
	rule_jump(r, "KUBE-NODEPORTS");

	r = chain_append(table_chain(t, "KUBE-NODEPORTS"));
	rule_comment(r, "ns1/svc1:p80");
	rule_proto(r, PROTO_TCP);
	rule_dport(r, 30080);
	rule_jump(r, "KUBE-EXT-AAAAAAAAAAAAAAAA");

	c = table_chain(t, "KUBE-EXT-AAAAAAAAAAAAAAAA");
	r = chain_append(c);
	rule_comment(r, "masquerade traffic for ns1/svc1:p80 external destinations");
	rule_jump(r, "KUBE-MARK-MASQ");
	rule_jump(chain_append(c), "KUBE-SVC-AAAAAAAAAAAAAAAA");

	rule_mark_or(chain_append(table_chain(t, "KUBE-MARK-MASQ")), 0x4000);

	c = table_chain(t, "KUBE-POSTROUTING");
	r = chain_append(c);
	rule_mark(r, 0x4000, 0x4000, true);
	rule_target(r, RT_RETURN);
	rule_mark_xor(chain_append(c), 0x4000);
	r = chain_append(c);
	rule_comment(r, "kubernetes service traffic requiring SNAT");
	rule_masquerade(r, true);
	r = chain_append(c);
	rule_out_iface(r, "veth+", true);
	rule_in_iface(r, "eth0", false);
	rule_masquerade(r, false);

	/* Service 1: three endpoints, session affinity. */
	c = table_chain(t, "KUBE-SVC-AAAAAAAAAAAAAAAA");
	c->keep = v2;
	r = chain_append(c);
	rule_comment(r, "ns1/svc1:p80 cluster IP");
	rule_proto(r, PROTO_TCP);
	rule_dst_ip(r, &vip1, false);
	rule_dport(r, 80);
	rule_src(r, &cluster, true);
	rule_jump(r, "KUBE-MARK-MASQ");
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "KUBE-SEP-AAAAAAAAAAAAAAA%d", i);
		snprintf(comment, sizeof(comment), "ns1/svc1:p80 -> %s:8080", addr_str(&ep[i], buf));
		r = chain_append(c);
		rule_comment(r, comment);
		rule_recent_check(r, name, 10800);
		rule_jump(r, name);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "KUBE-SEP-AAAAAAAAAAAAAAA%d", i);
		snprintf(comment, sizeof(comment), "ns1/svc1:p80 -> %s:8080", addr_str(&ep[i], buf));
		r = chain_append(c);
		rule_comment(r, comment);
		if (i < 2)
			rule_statistic(r, 1.0 / (3 - i));
		rule_jump(r, name);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "KUBE-SEP-AAAAAAAAAAAAAAA%d", i);
		sep_chain(t, f, name, "ns1/svc1:p80", PROTO_TCP, &ep[i], 8080, true);
		table_find_chain(t, name)->keep = v2;
	}

	/* Service 2: udp, one endpoint; v2 changes the backend port. */
	c = table_chain(t, "KUBE-SVC-BBBBBBBBBBBBBBBB");
	r = chain_append(c);
	rule_comment(r, "ns2/svc2:dns -> endpoint");
	rule_jump(r, "KUBE-SEP-BBBBBBBBBBBBBBB0");
	sep_chain(t, f, "KUBE-SEP-BBBBBBBBBBBBBBB0", "ns2/svc2:dns", PROTO_UDP, &ep[0], v2 ? 5353 : 53, false);

	/* Service 3: sctp, DNAT without a port; gone in v2. */
	if (!v2) {
		rule_jump(chain_append(table_chain(t, "KUBE-SVC-CCCCCCCCCCCCCCCC")), "KUBE-SEP-CCCCCCCCCCCCCCC0");
		sep_chain(t, f, "KUBE-SEP-CCCCCCCCCCCCCCC0", "ns3/svc3", PROTO_SCTP, &ep[1], 0, false);
	}

	/* Userspace-style portals and assorted matches. */
	c = table_chain(t, "KUBE-PORTALS-CONTAINER");
	r = chain_append(c);
	rule_comment(r, "ns1/svc1:p80");
	rule_proto(r, PROTO_TCP);
	rule_dst_ip(r, &vip1, false);
	rule_dport(r, 80);
	rule_redirect(r, 36000);
	r = chain_append(c);
	rule_proto_only(r, PROTO_UDP);
	rule_dst(r, &cluster, false);
	rule_addrtype_src_local(r, true);
	rule_addrtype_dst_local_limit_in(r);
	rule_ctstate(r, CTSTATE_NEW, false);
	rule_ctstate(r, CTSTATE_RELATED | CTSTATE_ESTABLISHED, true);
	rule_redirect(r, 36001);
	r = chain_append(c);
	rule_addrtype_dst_local(r, true);
	rule_target(r, RT_RETURN);

	/* ipset matches (ipvs mode); sets are created by the test script. */
	c = table_chain(t, "KUBE-IPVS-TEST");
	c->keep = v2;      /* the test deletes it first: keep must recreate it */
	r = chain_append(c);
	rule_comment(r, "Kubernetes service cluster ip + port for masquerade purpose");
	rule_set(r, f->v6 ? "KUBE-TEST-SET6" : "KUBE-TEST-SET", "dst,dst", false);
	rule_set(r, f->v6 ? "KUBE-TEST-3SET6" : "KUBE-TEST-3SET", "dst,dst,src", true);
	rule_jump(r, "KUBE-MARK-MASQ");
	r = chain_append(c);
	rule_comment(r, "counter only");
	rule_nfacct(r, "kp-test-acct");   /* created by the test script */
}

static void build_filter(struct table_want *t, const struct fam *f, bool v2)
{
	struct addr vip2 = A(f, "172.30.0.42", "fd00:30::42");
	struct addr ext = A(f, "192.0.2.10", "2001:db8::10");
	struct chain *c;
	struct rule *r;

	r = table_builtin_rule(t, "INPUT");
	rule_ctstate(r, CTSTATE_NEW, false);
	rule_comment(r, "kubernetes externally-visible service portals");
	rule_jump(r, "KUBE-EXTERNAL-SERVICES");
	r = table_builtin_rule(t, "INPUT");
	rule_comment(r, "kubernetes health check service ports");
	rule_jump(r, "KUBE-NODEPORTS");
	r = table_builtin_rule(t, "FORWARD");
	rule_comment(r, "kubernetes forwarding rules");
	rule_jump(r, "KUBE-FORWARD");
	r = table_builtin_rule(t, "FORWARD");
	rule_ctstate(r, CTSTATE_NEW, false);
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");
	r = table_builtin_rule(t, "OUTPUT");
	rule_ctstate(r, CTSTATE_NEW, false);
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");

	c = table_chain(t, "KUBE-SERVICES");
	r = chain_append(c);
	rule_comment(r, "ns2/svc2:p80 has no endpoints");
	rule_proto(r, PROTO_TCP);
	rule_dst_ip(r, &vip2, false);
	rule_dport(r, 80);
	rule_target(r, RT_REJECT);
	/* the localnet firewall's conntrack states, DNAT included */
	{
		struct cidr lo;

		cidr_parse(f->v6 ? "::1/128" : "127.0.0.0/8", false, &lo);
		r = chain_append(c);
		rule_comment(r, "block incoming localnet connections");
		rule_dst(r, &lo, false);
		rule_src(r, &lo, true);
		rule_ctstate(r, CTSTATE_RELATED | CTSTATE_ESTABLISHED | CTSTATE_DNAT, true);
		rule_target(r, RT_DROP);
	}

	c = table_chain(t, "KUBE-EXTERNAL-SERVICES");
	r = chain_append(c);
	rule_comment(r, "ns2/svc2:p80 has no endpoints");
	rule_proto(r, PROTO_TCP);
	rule_dst_ip(r, &ext, false);
	rule_dport(r, 80);
	rule_target(r, RT_REJECT);
	r = chain_append(c);
	rule_comment(r, "ns2/svc2:p80 has no endpoints");
	rule_addrtype_dst_local(r, false);
	rule_proto(r, PROTO_SCTP);
	rule_dport(r, 30000);
	rule_target(r, RT_REJECT);

	c = table_chain(t, "KUBE-NODEPORTS");
	r = chain_append(c);
	rule_comment(r, "ns2/svc2:p80 health check node port");
	rule_proto(r, PROTO_TCP);
	rule_dport(r, 30001);
	rule_target(r, RT_ACCEPT);

	c = table_chain(t, "KUBE-FORWARD");
	r = chain_append(c);
	rule_ctstate(r, CTSTATE_INVALID, false);
	rule_target(r, RT_DROP);
	r = chain_append(c);
	rule_comment(r, "kubernetes forwarding rules");
	rule_mark(r, 0x4000, 0x4000, false);
	rule_target(r, RT_ACCEPT);
	r = chain_append(c);
	rule_comment(r, "kubernetes forwarding conntrack rule");
	rule_ctstate(r, CTSTATE_RELATED | CTSTATE_ESTABLISHED, false);
	rule_target(r, RT_ACCEPT);
	r = chain_append(c);
	rule_mark(r, 0x1, 0xffffffffu, false);
	rule_in_iface(r, "kube-ipvs0", true);
	rule_target(r, RT_DROP);

	table_chain(t, "KUBE-PROXY-FIREWALL");
	(void)v2;
}

static int parse_fam(const char *s, struct fam *f)
{
	if (strcmp(s, "4") == 0)
		*f = (struct fam){ .af = AF_INET, .v6 = false };
	else if (strcmp(s, "6") == 0)
		*f = (struct fam){ .af = AF_INET6, .v6 = true };
	else
		return -1;
	return 0;
}

static void hexdump(const char *what, const void *p, size_t n)
{
	const uint8_t *b = p;

	fprintf(stderr, "  %s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n    ", b[i]);
	fputc('\n', stderr);
}

/* Compares the kernel's entries of chain `name` (rules, or only the first
 * n_top for a built-in chain) with our encoding. Returns mismatches. */
static int compare_chain(struct xtc_handle *h, const struct fam *f, struct rule_encoder *enc,
			 const struct chain *c, bool builtin)
{
	const void *e = f->v6 ? (const void *)ip6tc_first_rule(c->name, h)
			      : (const void *)iptc_first_rule(c->name, h);
	int bad = 0;
	size_t i;

	for (i = 0; e && i < c->n_rules; i++) {
		const char *tgt = f->v6 ? ip6tc_get_target(e, h) : iptc_get_target(e, h);
		const void *mine;
		size_t len;
		char *err = NULL;
		size_t theirs = f->v6 ? ((const struct ip6t_entry *)e)->next_offset
				      : ((const struct ipt_entry *)e)->next_offset;

		if (rule_encode(enc, &c->rules[i], &mine, &len, &err) < 0) {
			fprintf(stderr, "%s rule %zu: encode: %s\n", c->name, i + 1, err);
			free(err);
			return bad + 1;
		}
		if (!rule_entry_equal(f->af, mine, e, tgt)) {
			fprintf(stderr, "MISMATCH %s rule %zu (kernel target %s)\n", c->name, i + 1, tgt);
			hexdump("ours", mine, len);
			hexdump("kernel", e, theirs);
			bad++;
		}
		e = f->v6 ? (const void *)ip6tc_next_rule(e, h) : (const void *)iptc_next_rule(e, h);
	}
	if (i < c->n_rules || (e && !builtin)) {
		fprintf(stderr, "MISMATCH %s: rule count differs (want %zu)\n", c->name, c->n_rules);
		bad++;
	}
	return bad;
}

static int compare_table(const struct table_want *t, const struct fam *f)
{
	struct xtc_handle *h = f->v6 ? ip6tc_init(t->table) : iptc_init(t->table);
	struct rule_encoder enc;
	int bad = 0;
	size_t rules = 0;

	if (!h) {
		fprintf(stderr, "init %s: %s\n", t->table, f->v6 ? ip6tc_strerror(errno) : iptc_strerror(errno));
		return 1;
	}
	rule_encoder_init(&enc, f->af);
	for (size_t i = 0; i < t->n_builtin; i++)
		bad += compare_chain(h, f, &enc, &t->builtin_jumps[i], true);
	for (size_t i = 0; i < t->n_chains; i++) {
		bad += compare_chain(h, f, &enc, &t->chains[i], false);
		rules += t->chains[i].n_rules;
	}
	rule_encoder_fini(&enc);
	if (f->v6)
		ip6tc_free(h);
	else
		iptc_free(h);
	printf("%s: compared %zu chains, %zu rules, %d mismatches\n", t->table, t->n_chains, rules, bad);
	return bad;
}

static void build(struct table_want *nat, struct table_want *filter, const struct fam *f, const char *variant)
{
	bool v2 = strcmp(variant, "v2") == 0;

	if (!v2 && strcmp(variant, "full") != 0) {
		fprintf(stderr, "unknown variant %s\n", variant);
		exit(2);
	}
	table_want_init(nat, "nat", f->af);
	table_want_init(filter, "filter", f->af);
	build_nat(nat, f, v2);
	build_filter(filter, f, v2);
}

static int usage(void)
{
	fprintf(stderr, "usage: iptc_roundtrip render|apply|compare 4|6 full|v2\n"
			"       iptc_roundtrip remove 4|6 TABLE PREFIX...\n"
			"       iptc_roundtrip list 4|6 TABLE PREFIX\n"
			"       iptc_roundtrip nfacct ensure|read NAME\n"
			"       iptc_roundtrip nfacct usable\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct table_want nat, filter;
	struct fam f;
	int ret = 0;

	if (argc == 3 && strcmp(argv[1], "nfacct") == 0 && strcmp(argv[2], "usable") == 0) {
		ret = nfacct_match_usable();
		printf("%s\n", ret == 0 ? "usable" : strerror(-ret));
		return ret == 0 ? 0 : 1;
	}
	if (argc == 4 && strcmp(argv[1], "nfacct") == 0) {
		uint64_t pkts = 0;

		ret = strcmp(argv[2], "ensure") == 0 ? nfacct_ensure(argv[3]) : nfacct_read(argv[3], &pkts);
		if (ret < 0) {
			fprintf(stderr, "nfacct %s %s: %s\n", argv[2], argv[3], strerror(-ret));
			return 1;
		}
		printf("%llu\n", (unsigned long long)pkts);
		return 0;
	}
	if (argc < 4 || parse_fam(argv[2], &f) < 0)
		return usage();
	if (strcmp(argv[1], "remove") == 0) {
		char *err = NULL;

		if (argc < 5)
			return usage();
		ret = iptc_remove_chains(argv[3], f.af, (const char *const *)&argv[4], &err);
		if (ret < 0) {
			fprintf(stderr, "remove: %s\n", err);
			free(err);
			return 1;
		}
		return 0;
	}
	if (strcmp(argv[1], "list") == 0) {
		char **names;
		size_t n;

		if (argc != 5)
			return usage();
		ret = iptc_list_chains(argv[3], f.af, argv[4], &names, &n);
		if (ret < 0) {
			fprintf(stderr, "list: %s\n", strerror(-ret));
			return 1;
		}
		for (size_t i = 0; i < n; i++) {
			printf("%s\n", names[i]);
			free(names[i]);
		}
		free(names);
		return 0;
	}
	if (argc != 4)
		return usage();
	build(&nat, &filter, &f, argv[3]);
	if (strcmp(argv[1], "render") == 0) {
		struct strbuf sb;

		sb_init(&sb);
		table_render(&nat, &sb);
		table_render(&filter, &sb);
		fputs(sb_cstr(&sb), stdout);
		sb_free(&sb);
	} else if (strcmp(argv[1], "apply") == 0) {
		struct table_want *tables[] = { &nat, &filter };

		for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
			struct apply_stats st;
			char *err = NULL;

			if (iptc_apply(tables[i], stale_prefixes, &st, &err) < 0) {
				fprintf(stderr, "apply %s: %s\n", tables[i]->table, err);
				free(err);
				ret = 1;
				break;
			}
			printf("%s created=%lu rewritten=%lu deleted=%lu unchanged=%lu rules=%lu attempts=%u\n",
			       tables[i]->table, st.chains_created, st.chains_rewritten, st.chains_deleted,
			       st.chains_unchanged, st.rules_total, st.commit_attempts);
		}
	} else if (strcmp(argv[1], "compare") == 0) {
		ret = compare_table(&nat, &f) + compare_table(&filter, &f) ? 1 : 0;
	} else {
		ret = usage();
	}
	table_want_free(&nat);
	table_want_free(&filter);
	return ret;
}
