#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cluster_ip),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_probabilities),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_many_chains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
