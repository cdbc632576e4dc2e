#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_sctp.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <linux/netfilter_ipv6/ip6t_REJECT.h>

#include "modes/iptc/encode.h"
#include "modes/iptc/rule.h"

static struct addr ip(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static struct cidr net(const char *s)
{
	struct cidr c;

	assert_int_equal(cidr_parse(s, false, &c), 0);
	return c;
}

/* Renders r as a rule of chain and compares with want (without "\n"). */
static void check(const struct rule *r, const char *chain, const char *want)
{
	struct strbuf sb;
	char *line;

	sb_init(&sb);
	rule_render(r, chain, &sb);
	line = xasprintf("%s\n", want);
	assert_string_equal(sb_cstr(&sb), line);
	free(line);
	sb_free(&sb);
}

static void test_cluster_ip(void **state)
{
	struct rule r = { 0 };
	struct addr vip = ip("172.30.0.44");
	struct cidr cl = net("10.0.0.0/8");

	(void)state;
	rule_comment(&r, "ns4/svc4:p80 cluster IP");
	rule_proto(&r, PROTO_TCP);
	rule_dst_ip(&r, &vip, false);
	rule_dport(&r, 80);
	rule_jump(&r, "KUBE-SVC-4SW47YFZTEDKD3PK");
	check(&r, "KUBE-SERVICES",
	      "-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 cluster IP\" -m tcp -p tcp "
	      "-d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "ns4/svc4:p80 cluster IP");
	rule_proto(&r, PROTO_TCP);
	rule_dst_ip(&r, &vip, false);
	rule_dport(&r, 80);
	rule_src(&r, &cl, true);
	rule_jump(&r, "KUBE-MARK-MASQ");
	check(&r, "KUBE-SVC-4SW47YFZTEDKD3PK",
	      "-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 cluster IP\" "
	      "-m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ");
	rule_free(&r);
}

static void test_endpoints(void **state)
{
	struct rule r = { 0 };
	struct addr ep = ip("10.180.0.4");

	(void)state;
	rule_comment(&r, "ns4/svc4:p80 -> 10.180.0.4:80");
	rule_statistic(&r, 1.0 / 2);
	rule_jump(&r, "KUBE-SEP-UKSFD7AGPMPPLUHC");
	check(&r, "KUBE-SVC-4SW47YFZTEDKD3PK",
	      "-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 -> 10.180.0.4:80\" "
	      "-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "ns4/svc4:p80");
	rule_src_ip(&r, &ep, false);
	rule_jump(&r, "KUBE-MARK-MASQ");
	check(&r, "KUBE-SEP-UKSFD7AGPMPPLUHC",
	      "-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "ns4/svc4:p80");
	rule_proto(&r, PROTO_TCP);
	rule_recent_set(&r, "KUBE-SEP-UKSFD7AGPMPPLUHC");
	rule_dnat(&r, &ep, 80);
	check(&r, "KUBE-SEP-UKSFD7AGPMPPLUHC",
	      "-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp "
	      "-m recent --name KUBE-SEP-UKSFD7AGPMPPLUHC --set -j DNAT --to-destination 10.180.0.4:80");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "ns4/svc4:p80 -> 10.180.0.4:80");
	rule_recent_check(&r, "KUBE-SEP-UKSFD7AGPMPPLUHC", 10800);
	rule_jump(&r, "KUBE-SEP-UKSFD7AGPMPPLUHC");
	check(&r, "KUBE-SVC-X",
	      "-A KUBE-SVC-X -m comment --comment \"ns4/svc4:p80 -> 10.180.0.4:80\" -m recent "
	      "--name KUBE-SEP-UKSFD7AGPMPPLUHC --rcheck --seconds 10800 --reap -j KUBE-SEP-UKSFD7AGPMPPLUHC");
	rule_free(&r);
}

static void test_probabilities(void **state)
{
	static const struct { double p; const char *s; } cases[] = {
		{ 1.0 / 3, "0.3333333333" },
		{ 2.0 / 3, "0.6666666667" },
		{ 0.1, "0.1000000000" },
		{ 1.0 / 7, "0.1428571429" },
		{ 1.0, "1.0000000000" },
		{ 1.0 / 1000, "0.0010000000" },
		{ 0.0, "0.0000000000" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct rule r = { 0 };
		char want[128], printed[32];

		snprintf(printed, sizeof(printed), "%0.10f", cases[i].p);
		assert_string_equal(printed, cases[i].s);
		rule_statistic(&r, cases[i].p);
		snprintf(want, sizeof(want), "-A C -m statistic --mode random --probability %s -j RETURN",
			 cases[i].s);
		rule_target(&r, RT_RETURN);
		check(&r, "C", want);
		rule_free(&r);
	}
}

/* The integer conversion agrees with printf's "%0.10f" everywhere the
 * proxier can land (1/k), on short binary fractions j/2^k (where exact
 * ties such as 2^-11 * 1e10 = 4882812.5 live) and on a million
 * pseudo-random doubles. */
static void test_probability_fixed_matches_printf(void **state)
{
	unsigned long long x = 88172645463325252ull;

	(void)state;
	for (int i = 0; i < 1200000 + 64 * 32; i++) {
		double p;
		char printed[32], mine[32];
		unsigned long long f;

		if (i >= 1200000) {
			int k = (i - 1200000) / 32 + 1, j = 2 * ((i - 1200000) % 32) + 1;

			p = ldexp(j, -k);
			if (p > 1)
				continue;
		} else if (i < 200000) {
			p = 1.0 / (i + 1);
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* uniform in [0,1), and every 8th one tiny */
			p = (double)(x >> 11) / 9007199254740992.0;
			if (i % 8 == 0)
				p = ldexp(p, -(int)(x % 60));
		}
		snprintf(printed, sizeof(printed), "%0.10f", p);
		f = rule_probability_fixed(p);
		snprintf(mine, sizeof(mine), "%llu.%010llu", f / 10000000000ull, f % 10000000000ull);
		if (strcmp(printed, mine) != 0)
			fail_msg("p=%a: printf %s, ours %s", p, printed, mine);
	}
	assert_int_equal(rule_probability_fixed(-1), 0);
	assert_int_equal(rule_probability_fixed(2), 10000000000ull);
}

static void test_targets(void **state)
{
	struct rule r = { 0 };
	struct addr v6 = ip("fd00::1");
	struct cidr v6net = net("fd00:10::/64");
	struct cidr v6host = net("fd00::5/128");

	(void)state;
	rule_mark_or(&r, 0x4000);
	check(&r, "KUBE-MARK-MASQ", "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_mark(&r, 0x4000, 0x4000, true);
	rule_target(&r, RT_RETURN);
	check(&r, "KUBE-POSTROUTING", "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_mark_xor(&r, 0x4000);
	check(&r, "KUBE-POSTROUTING", "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "kubernetes service traffic requiring SNAT");
	rule_masquerade(&r, true);
	check(&r, "KUBE-POSTROUTING",
	      "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
	      "-j MASQUERADE --random-fully");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_masquerade(&r, false);
	check(&r, "KUBE-POSTROUTING", "-A KUBE-POSTROUTING -j MASQUERADE");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "ns/svc:p has no endpoints");
	rule_proto(&r, PROTO_UDP);
	rule_dst_ip(&r, &v6, false);
	rule_dport(&r, 53);
	rule_target(&r, RT_REJECT);
	check(&r, "KUBE-SERVICES",
	      "-A KUBE-SERVICES -m comment --comment \"ns/svc:p has no endpoints\" -m udp -p udp "
	      "-d fd00::1 --dport 53 -j REJECT");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_proto(&r, PROTO_SCTP);
	rule_src(&r, &v6net, false);
	rule_dst(&r, &v6host, true);
	rule_dnat(&r, &v6, 8080);
	check(&r, "KUBE-SEP-Y",
	      "-A KUBE-SEP-Y -m sctp -p sctp -s fd00:10::/64 ! -d fd00::5 -j DNAT --to-destination [fd00::1]:8080");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_proto_only(&r, PROTO_TCP);
	rule_redirect(&r, 36000);
	check(&r, "KUBE-PORTALS", "-A KUBE-PORTALS -p tcp -j REDIRECT --to-ports 36000");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_target(&r, RT_DROP);
	check(&r, "KUBE-FW-X", "-A KUBE-FW-X -j DROP");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_target(&r, RT_ACCEPT);
	check(&r, "KUBE-FORWARD", "-A KUBE-FORWARD -j ACCEPT");
	rule_free(&r);
}

static void test_matches(void **state)
{
	struct rule r = { 0 };

	(void)state;
	rule_comment(&r, "kubernetes service nodeports; NOTE: this must be the last rule in this chain");
	rule_addrtype_dst_local(&r, false);
	rule_jump(&r, "KUBE-NODEPORTS");
	check(&r, "KUBE-SERVICES",
	      "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
	      "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_addrtype_src_local(&r, true);
	rule_addrtype_dst_local_limit_in(&r);
	rule_target(&r, RT_RETURN);
	check(&r, "C", "-A C -m addrtype ! --src-type LOCAL -m addrtype --dst-type LOCAL --limit-iface-in -j RETURN");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_ctstate(&r, CTSTATE_NEW, false);
	rule_jump(&r, "KUBE-SERVICES");
	check(&r, "FORWARD", "-A FORWARD -m conntrack --ctstate NEW -j KUBE-SERVICES");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_ctstate(&r, CTSTATE_ESTABLISHED | CTSTATE_RELATED, false);
	rule_ctstate(&r, CTSTATE_INVALID, true);
	rule_target(&r, RT_ACCEPT);
	check(&r, "C", "-A C -m conntrack --ctstate RELATED,ESTABLISHED -m conntrack ! --ctstate INVALID -j ACCEPT");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_mark(&r, 0x1, 0xffffffffu, false);
	rule_in_iface(&r, "eth0", false);
	rule_out_iface(&r, "veth+", true);
	rule_target(&r, RT_ACCEPT);
	check(&r, "C", "-A C -m mark --mark 0x1 -i eth0 ! -o veth+ -j ACCEPT");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "Kubernetes service cluster ip + port for masquerade purpose");
	rule_set(&r, "KUBE-CLUSTER-IP", "dst,dst", false);
	rule_set(&r, "KUBE-LOOP-BACK", "dst,dst,src", true);
	rule_jump(&r, "KUBE-MARK-MASQ");
	check(&r, "KUBE-SERVICES",
	      "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" "
	      "-m set --match-set KUBE-CLUSTER-IP dst,dst -m set ! --match-set KUBE-LOOP-BACK dst,dst,src "
	      "-j KUBE-MARK-MASQ");
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_comment(&r, "say \"hi\" \\o/");
	check(&r, "C", "-A C -m comment --comment \"say \\\"hi\\\" \\\\o/\"");
	rule_free(&r);
}

static void test_table(void **state)
{
	struct table_want t;
	struct strbuf sb;
	struct chain *c;
	struct rule *r;

	(void)state;
	table_want_init(&t, "nat", AF_INET);
	c = table_chain(&t, "KUBE-SERVICES");
	r = chain_append(c);
	rule_comment(r, "x y");
	rule_jump(r, "KUBE-SVC-A");
	c = table_chain(&t, "KUBE-SVC-A");
	rule_target(chain_append(c), RT_RETURN);
	/* Adding an existing chain returns it, rules keep accumulating. */
	c = table_chain(&t, "KUBE-SERVICES");
	rule_jump(chain_append(c), "KUBE-NODEPORTS");
	table_chain(&t, "KUBE-NODEPORTS");
	r = table_builtin_rule(&t, "PREROUTING");
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");
	rule_jump(table_builtin_rule(&t, "OUTPUT"), "KUBE-SERVICES");
	assert_int_equal(t.n_chains, 3);
	assert_int_equal(t.n_builtin, 2);
	assert_ptr_equal(table_find_chain(&t, "KUBE-SVC-A"), &t.chains[1]);
	assert_null(table_find_chain(&t, "KUBE-SVC-B"));

	sb_init(&sb);
	table_render(&t, &sb);
	assert_string_equal(sb_cstr(&sb),
			    "*nat\n"
			    ":KUBE-SERVICES - [0:0]\n"
			    ":KUBE-SVC-A - [0:0]\n"
			    ":KUBE-NODEPORTS - [0:0]\n"
			    "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
			    "-A OUTPUT -j KUBE-SERVICES\n"
			    "-A KUBE-SERVICES -m comment --comment \"x y\" -j KUBE-SVC-A\n"
			    "-A KUBE-SERVICES -j KUBE-NODEPORTS\n"
			    "-A KUBE-SVC-A -j RETURN\n"
			    "COMMIT\n");
	sb_free(&sb);
	table_want_free(&t);
}

static void test_many_chains(void **state)
{
	struct table_want t;
	char name[CHAIN_NAME_MAX];

	(void)state;
	table_want_init(&t, "filter", AF_INET6);
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "KUBE-SEP-%08d", i);
		rule_target(chain_append(table_chain(&t, name)), RT_DROP);
	}
	for (int i = 0; i < 20000; i += 7) {
		struct chain *c;

		snprintf(name, sizeof(name), "KUBE-SEP-%08d", i);
		c = table_chain(&t, name);
		assert_string_equal(c->name, name);
		assert_int_equal(c->n_rules, 1);
		assert_ptr_equal(c, &t.chains[i]);
	}
	assert_int_equal(t.n_chains, 20000);
	table_want_free(&t);
}


/* ---- binary encoding --------------------------------------------------------
 * Expected values are what iptables-legacy 1.8.9 put in the kernel for the
 * same arguments (read back with libiptc on this project's test machine). */

struct walk {
	const uint8_t *e;
	size_t pos, toff, next;
};

static const struct xt_entry_match *next_match(struct walk *w, const char *name, uint8_t rev, size_t size)
{
	const struct xt_entry_match *m = (const void *)(w->e + w->pos);

	assert_true(w->pos < w->toff);
	assert_string_equal(m->u.user.name, name);
	assert_int_equal(m->u.user.revision, rev);
	assert_int_equal(m->u.match_size, size);
	w->pos += m->u.match_size;
	return m;
}

static const struct xt_entry_target *target_of(struct walk *w, const char *name, uint8_t rev, size_t size)
{
	const struct xt_entry_target *t = (const void *)(w->e + w->toff);

	assert_int_equal(w->pos, w->toff);
	assert_string_equal(t->u.user.name, name);
	assert_int_equal(t->u.user.revision, rev);
	assert_int_equal(t->u.target_size, size);
	assert_int_equal(w->toff + size, w->next);
	return t;
}

static struct walk encode4(struct rule_encoder *enc, const struct rule *r)
{
	const void *e;
	size_t len;
	char *err = NULL;
	struct walk w;

	assert_int_equal(rule_encode(enc, r, &e, &len, &err), 0);
	assert_null(err);
	w.e = e;
	w.pos = enc->family == AF_INET6 ? sizeof(struct ip6t_entry) : sizeof(struct ipt_entry);
	if (enc->family == AF_INET6) {
		w.toff = ((const struct ip6t_entry *)e)->target_offset;
		w.next = ((const struct ip6t_entry *)e)->next_offset;
	} else {
		w.toff = ((const struct ipt_entry *)e)->target_offset;
		w.next = ((const struct ipt_entry *)e)->next_offset;
	}
	assert_int_equal(w.next, len);
	return w;
}

static void test_encode_v4_service(void **state)
{
	struct rule_encoder enc;
	struct rule r = { 0 };
	struct addr vip = ip("172.30.0.44");
	struct cidr cl = net("10.0.0.0/8");
	const struct ipt_entry *e;
	const struct xt_entry_match *m;
	const struct xt_tcp *tcp;
	struct walk w;

	(void)state;
	rule_encoder_init(&enc, AF_INET);
	rule_comment(&r, "ns4/svc4:p80 cluster IP");
	rule_proto(&r, PROTO_TCP);
	rule_dst_ip(&r, &vip, false);
	rule_dport(&r, 80);
	rule_src(&r, &cl, true);
	rule_jump(&r, "KUBE-SVC-4SW47YFZTEDKD3PK");
	w = encode4(&enc, &r);
	e = (const void *)w.e;
	assert_int_equal(w.toff, 448);
	assert_int_equal(w.next, 488);
	assert_int_equal(e->ip.src.s_addr, htonl(0x0a000000));
	assert_int_equal(e->ip.smsk.s_addr, htonl(0xff000000));
	assert_int_equal(e->ip.dst.s_addr, htonl(0xac1e002c));
	assert_int_equal(e->ip.dmsk.s_addr, 0xffffffff);
	assert_int_equal(e->ip.proto, 6);
	assert_int_equal(e->ip.flags, 0);
	assert_int_equal(e->ip.invflags, IPT_INV_SRCIP);
	m = next_match(&w, "comment", 0, 288);
	assert_string_equal((const char *)m->data, "ns4/svc4:p80 cluster IP");
	m = next_match(&w, "tcp", 0, 48);
	tcp = (const void *)m->data;
	assert_int_equal(tcp->spts[0], 0);
	assert_int_equal(tcp->spts[1], 0xffff);
	assert_int_equal(tcp->dpts[0], 80);
	assert_int_equal(tcp->dpts[1], 80);
	assert_int_equal(tcp->invflags, 0);
	/* libiptc maps the chain name to a verdict on append */
	target_of(&w, "KUBE-SVC-4SW47YFZTEDKD3PK", 0, 40);
	assert_string_equal(rule_std_target_name(&r), "KUBE-SVC-4SW47YFZTEDKD3PK");
	rule_free(&r);
	rule_encoder_fini(&enc);
}

static void test_encode_matches(void **state)
{
	struct rule_encoder enc;
	struct rule r = { 0 };
	const struct xt_statistic_info *st;
	const struct xt_recent_mtinfo_v1 *rc;
	const struct xt_conntrack_mtinfo3 *ct;
	const struct xt_addrtype_info_v1 *at;
	const struct xt_mark_mtinfo1 *mk;
	const struct xt_sctp_info *sc;
	const struct ipt_entry *e;
	static const uint8_t ones[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct walk w;

	(void)state;
	rule_encoder_init(&enc, AF_INET);
	rule_statistic(&r, 0.5);
	rule_statistic(&r, 1.0 / 3);
	rule_recent_check(&r, "KUBE-SEP-X", 10800);
	rule_recent_set(&r, "KUBE-SEP-X");
	rule_ctstate(&r, CTSTATE_NEW, false);
	rule_ctstate(&r, CTSTATE_RELATED | CTSTATE_ESTABLISHED, true);
	rule_addrtype_src_local(&r, true);
	rule_addrtype_dst_local_limit_in(&r);
	rule_mark(&r, 0x4000, 0x4000, true);
	rule_proto(&r, PROTO_SCTP);
	rule_in_iface(&r, "eth0", false);
	rule_out_iface(&r, "veth+", true);
	rule_target(&r, RT_RETURN);
	w = encode4(&enc, &r);
	e = (const void *)w.e;

	st = (const void *)next_match(&w, "statistic", 0, 56)->data;
	assert_int_equal(st->mode, XT_STATISTIC_MODE_RANDOM);
	assert_int_equal(st->u.random.probability, 0x40000000);
	assert_int_equal(st->u.nth.count, 0x40000000);
	st = (const void *)next_match(&w, "statistic", 0, 56)->data;
	assert_int_equal(st->u.random.probability, 0x2aaaaaab);

	rc = (const void *)next_match(&w, "recent", 1, 264)->data;
	assert_int_equal(rc->seconds, 10800);
	assert_int_equal(rc->check_set, XT_RECENT_CHECK | XT_RECENT_REAP);
	assert_int_equal(rc->side, XT_RECENT_SOURCE);
	assert_string_equal(rc->name, "KUBE-SEP-X");
	assert_memory_equal(&rc->mask, ones, 16);
	rc = (const void *)next_match(&w, "recent", 1, 264)->data;
	assert_int_equal(rc->seconds, 0);
	assert_int_equal(rc->check_set, XT_RECENT_SET);

	ct = (const void *)next_match(&w, "conntrack", 3, 200)->data;
	assert_int_equal(ct->match_flags, XT_CONNTRACK_STATE);
	assert_int_equal(ct->invert_flags, 0);
	assert_int_equal(ct->state_mask, 8);
	ct = (const void *)next_match(&w, "conntrack", 3, 200)->data;
	assert_int_equal(ct->invert_flags, XT_CONNTRACK_STATE);
	assert_int_equal(ct->state_mask, 6);

	at = (const void *)next_match(&w, "addrtype", 1, 40)->data;
	assert_int_equal(at->source, XT_ADDRTYPE_LOCAL);
	assert_int_equal(at->dest, 0);
	assert_int_equal(at->flags, XT_ADDRTYPE_INVERT_SOURCE);
	at = (const void *)next_match(&w, "addrtype", 1, 40)->data;
	assert_int_equal(at->dest, XT_ADDRTYPE_LOCAL);
	assert_int_equal(at->flags, XT_ADDRTYPE_LIMIT_IFACE_IN);

	mk = (const void *)next_match(&w, "mark", 1, 48)->data;
	assert_int_equal(mk->mark, 0x4000);
	assert_int_equal(mk->mask, 0x4000);
	assert_int_equal(mk->invert, 1);

	sc = (const void *)next_match(&w, "sctp", 0, 328)->data;
	assert_int_equal(sc->dpts[0], 0);
	assert_int_equal(sc->dpts[1], 0);
	assert_int_equal(sc->spts[1], 0);
	assert_int_equal(sc->flags, 0);
	for (int i = 0; i < XT_NUM_SCTP_FLAGS; i++)
		assert_int_equal(sc->flag_info[i].chunktype, 0xff);
	assert_int_equal(e->ip.proto, IPPROTO_SCTP);

	assert_string_equal(e->ip.iniface, "eth0");
	assert_string_equal(e->ip.outiface, "veth+");
	assert_int_equal(e->ip.iniface_mask[4], 0xff);
	assert_int_equal(e->ip.iniface_mask[5], 0);
	assert_int_equal(e->ip.outiface_mask[3], 0xff);
	assert_int_equal(e->ip.outiface_mask[4], 0);
	assert_int_equal(e->ip.invflags, IPT_INV_VIA_OUT);

	target_of(&w, "RETURN", 0, 40);
	rule_free(&r);
	rule_encoder_fini(&enc);
}

static void test_encode_targets(void **state)
{
	struct rule_encoder enc4, enc6;
	struct rule r = { 0 };
	struct addr ep4 = ip("10.180.0.4"), ep6 = ip("fd00::1");
	const struct nf_nat_range2 *r2;
	const struct nf_nat_ipv4_multi_range_compat *compat;
	const struct nf_nat_range *rng;
	const struct xt_mark_tginfo2 *mk;
	const struct ip6t_entry *e6;
	struct walk w;

	(void)state;
	rule_encoder_init(&enc4, AF_INET);
	rule_encoder_init(&enc6, AF_INET6);

	rule_proto(&r, PROTO_UDP);
	rule_dnat(&r, &ep4, 80);
	w = encode4(&enc4, &r);
	assert_int_equal(((const struct xt_udp *)next_match(&w, "udp", 0, 48)->data)->dpts[1], 0xffff);
	r2 = (const void *)target_of(&w, "DNAT", 2, 80)->data;
	assert_int_equal(r2->flags, NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
	assert_int_equal(r2->min_addr.ip, htonl(0x0ab40004));
	assert_int_equal(r2->max_addr.ip, htonl(0x0ab40004));
	assert_int_equal(r2->min_proto.all, htons(80));
	assert_int_equal(r2->max_proto.all, htons(80));
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_proto(&r, PROTO_TCP);
	rule_dnat(&r, &ep6, 0);
	w = encode4(&enc6, &r);
	e6 = (const void *)w.e;
	assert_int_equal(e6->ipv6.proto, IPPROTO_TCP);
	assert_int_equal(e6->ipv6.flags, IP6T_F_PROTO);
	next_match(&w, "tcp", 0, 48);
	r2 = (const void *)target_of(&w, "DNAT", 2, 80)->data;
	assert_int_equal(r2->flags, NF_NAT_RANGE_MAP_IPS);
	assert_memory_equal(&r2->min_addr, ep6.bytes, 16);
	assert_int_equal(r2->min_proto.all, 0);
	/* v4 DNAT into a v6 table is refused */
	rule_free(&r);
	memset(&r, 0, sizeof(r));
	rule_dnat(&r, &ep4, 80);
	{
		const void *e;
		size_t len;
		char *err = NULL;

		assert_int_equal(rule_encode(&enc6, &r, &e, &len, &err), -EINVAL);
		assert_non_null(err);
		free(err);
	}
	rule_free(&r);

	memset(&r, 0, sizeof(r));
	rule_mark_or(&r, 0x4000);
	w = encode4(&enc4, &r);
	mk = (const void *)target_of(&w, "MARK", 2, 40)->data;
	assert_int_equal(mk->mark, 0x4000);
	assert_int_equal(mk->mask, 0x4000);
	rule_mark_xor(&r, 0x4000);
	w = encode4(&enc4, &r);
	mk = (const void *)target_of(&w, "MARK", 2, 40)->data;
	assert_int_equal(mk->mark, 0x4000);
	assert_int_equal(mk->mask, 0);

	rule_masquerade(&r, true);
	w = encode4(&enc4, &r);
	compat = (const void *)target_of(&w, "MASQUERADE", 0, 56)->data;
	assert_int_equal(compat->rangesize, 1);
	assert_int_equal(compat->range[0].flags, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
	w = encode4(&enc6, &r);
	rng = (const void *)target_of(&w, "MASQUERADE", 0, 72)->data;
	assert_int_equal(rng->flags, NF_NAT_RANGE_PROTO_RANDOM_FULLY);

	rule_redirect(&r, 3600);
	w = encode4(&enc4, &r);
	compat = (const void *)target_of(&w, "REDIRECT", 0, 56)->data;
	assert_int_equal(compat->range[0].flags, NF_NAT_RANGE_PROTO_SPECIFIED);
	assert_int_equal(compat->range[0].min.all, htons(3600));
	w = encode4(&enc6, &r);
	rng = (const void *)target_of(&w, "REDIRECT", 0, 72)->data;
	assert_int_equal(rng->max_proto.all, htons(3600));

	rule_target(&r, RT_REJECT);
	w = encode4(&enc4, &r);
	assert_int_equal(((const struct ipt_reject_info *)target_of(&w, "REJECT", 0, 40)->data)->with,
			 IPT_ICMP_PORT_UNREACHABLE);
	w = encode4(&enc6, &r);
	assert_int_equal(((const struct ip6t_reject_info *)target_of(&w, "REJECT", 0, 40)->data)->with,
			 IP6T_ICMP6_PORT_UNREACH);

	rule_target(&r, RT_NONE);
	w = encode4(&enc4, &r);
	target_of(&w, "", 0, 40);
	assert_string_equal(rule_std_target_name(&r), "");
	rule_target(&r, RT_DNAT);
	assert_null(rule_std_target_name(&r));

	rule_free(&r);
	rule_encoder_fini(&enc4);
	rule_encoder_fini(&enc6);
}

static void test_entry_equal(void **state)
{
	struct rule_encoder enc;
	struct rule r = { 0 };
	struct addr ep = ip("10.180.0.4");
	uint8_t a[1024], b[1024];
	const void *e;
	size_t len, toff;
	char *err = NULL;

	(void)state;
	rule_encoder_init(&enc, AF_INET);
	rule_comment(&r, "ns/svc:p");
	rule_proto(&r, PROTO_TCP);
	rule_dnat(&r, &ep, 8080);
	assert_int_equal(rule_encode(&enc, &r, &e, &len, &err), 0);
	assert_true(len <= sizeof(a));
	memcpy(a, e, len);
	memcpy(b, e, len);
	toff = ((struct ipt_entry *)a)->target_offset;
	assert_true(rule_entry_equal(AF_INET, a, b, "DNAT"));
	/* counters and comefrom are the kernel's business */
	((struct ipt_entry *)b)->counters.pcnt = 7;
	((struct ipt_entry *)b)->comefrom = 3;
	assert_true(rule_entry_equal(AF_INET, a, b, "DNAT"));
	/* bytes after the NUL of an extension name are not compared */
	memset(((struct xt_entry_match *)(b + sizeof(struct ipt_entry)))->u.user.name + 8, 0xbe, 20);
	assert_true(rule_entry_equal(AF_INET, a, b, "DNAT"));
	/* but the data is */
	b[toff - 1] ^= 1;
	assert_false(rule_entry_equal(AF_INET, a, b, "DNAT"));
	b[toff - 1] ^= 1;
	b[len - 1] ^= 1;
	assert_false(rule_entry_equal(AF_INET, a, b, "DNAT"));
	b[len - 1] ^= 1;
	((struct ipt_entry *)b)->ip.invflags = IPT_INV_DSTIP;
	assert_false(rule_entry_equal(AF_INET, a, b, "DNAT"));
	rule_free(&r);

	/* a jump as libiptc returns it: empty name, verdict, resolved name */
	memset(&r, 0, sizeof(r));
	rule_jump(&r, "KUBE-SEP-X");
	assert_int_equal(rule_encode(&enc, &r, &e, &len, &err), 0);
	memcpy(a, e, len);
	memcpy(b, e, len);
	toff = ((struct ipt_entry *)a)->target_offset;
	memset(((struct xt_entry_target *)(b + toff))->u.user.name, 0, XT_EXTENSION_MAXNAMELEN);
	((struct xt_standard_target *)(b + toff))->verdict = 4096;
	assert_true(rule_entry_equal(AF_INET, a, b, "KUBE-SEP-X"));
	assert_false(rule_entry_equal(AF_INET, a, b, "KUBE-SEP-Y"));
	rule_free(&r);
	rule_encoder_fini(&enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_ip),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_probabilities),
		cmocka_unit_test(test_probability_fixed_matches_printf),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_many_chains),
		cmocka_unit_test(test_encode_v4_service),
		cmocka_unit_test(test_encode_matches),
		cmocka_unit_test(test_encode_targets),
		cmocka_unit_test(test_entry_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
