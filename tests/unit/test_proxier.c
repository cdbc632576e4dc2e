/* Rule generation of the iptables proxier, compared with exact
 * iptables-restore text. The first test reproduces upstream kube-proxy's
 * TestOverallIPTablesRules (pkg/proxy/iptables/proxier_test.go): same
 * services, same endpoints, and upstream's expected output verbatim
 * (with its two nfacct counters present; a variant without them).
 * Output is normalised the way upstream's test sorts it: chains ordered
 * KUBE-NODEPORTS, KUBE-SERVICES, then by name; each chain's rules in their
 * generated order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "modes/iptables/proxier.h"

/* ---- fixtures ------------------------------------------------------------ */

#ifndef MAX_SVCS
#define MAX_SVCS 1100
#define MAX_PORTS 1100
#endif

struct fx {
	struct config cfg;
	struct proxier_env env;
	struct node_info node;
	struct service *svcs[MAX_SVCS];
	size_t n_svcs;
	struct proxy_state ps;
	struct addr host_addrs[8];
};

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

static struct fx *fx_new(void)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	f->cfg.masquerade_bit = 14;
	f->cfg.localhost_nodeports = true;
	f->cfg.detect_local_mode = "ClusterCIDR";
	f->cfg.cluster_cidrs[0] = net("10.0.0.0/8");
	f->cfg.n_cluster_cidrs = 1;
	f->env.node_ip[0] = ip("192.168.0.2");
	f->ps.ports = xcalloc(MAX_PORTS, sizeof(*f->ps.ports));
	f->ps.node = &f->node;
	return f;
}

static void fx_free(struct fx *f)
{
	for (size_t i = 0; i < f->ps.n_ports; i++) {
		free(f->ps.ports[i].key);
		free(f->ps.ports[i].spn);
		free(f->ps.ports[i].eps);
	}
	free(f->ps.ports);
	for (size_t i = 0; i < f->n_svcs; i++)
		service_free(f->svcs[i]);
	free(f);
}

static struct service *svc_new(struct fx *f, const char *ns, const char *name,
			       enum svc_type type, const char *cip)
{
	struct service *s = xcalloc(1, sizeof(*s));

	s->ns = xstrdup(ns);
	s->name = xstrdup(name);
	s->type = type;
	s->cluster_ips[0] = ip(cip);
	s->n_cluster_ips = 1;
	s->affinity_timeout = 10800;
	assert_true(f->n_svcs < MAX_SVCS);
	f->svcs[f->n_svcs++] = s;
	return s;
}

static void svc_port(struct service *s, const char *name, enum l4_proto p, uint16_t port,
		     uint16_t node_port)
{
	struct service_port *sp;

	s->ports = xrealloc(s->ports, (s->n_ports + 1) * sizeof(*s->ports));
	sp = &s->ports[s->n_ports++];
	sp->name = xstrdup(name);
	sp->proto = p;
	sp->port = port;
	sp->node_port = node_port;
}

static void svc_external_ip(struct service *s, const char *a)
{
	s->external_ips = xrealloc(s->external_ips, (s->n_external_ips + 1) * sizeof(struct addr));
	s->external_ips[s->n_external_ips++] = ip(a);
}

static void svc_lb_ip(struct service *s, const char *a)
{
	s->lb_ips = xrealloc(s->lb_ips, (s->n_lb_ips + 1) * sizeof(struct addr));
	s->lb_ips[s->n_lb_ips++] = ip(a);
}

static void svc_source_range(struct service *s, const char *c)
{
	s->lb_source_ranges = xrealloc(s->lb_source_ranges,
				       (s->n_lb_source_ranges + 1) * sizeof(struct cidr));
	s->lb_source_ranges[s->n_lb_source_ranges++] = net(c);
}

/* Adds the snapshot entry for port idx of s; call in spn order, after all
 * of s's fields are set. */
static struct svc_port_info *pi_new(struct fx *f, const struct service *s, size_t idx)
{
	struct svc_port_info *pi;

	assert_true(f->ps.n_ports < MAX_PORTS);
	pi = &f->ps.ports[f->ps.n_ports++];
	pi->key = xasprintf("%s/%s", s->ns, s->name);
	pi->spn = s->ports[idx].name[0] ? xasprintf("%s:%s", pi->key, s->ports[idx].name) :
					  xstrdup(pi->key);
	pi->svc = s;
	pi->port = &s->ports[idx];
	pi->family = s->cluster_ips[0].family;
	pi->proto = s->ports[idx].proto;
	pi->svc_port = s->ports[idx].port;
	pi->node_port = s->ports[idx].node_port;
	pi->cluster_ip = s->cluster_ips[0];
	return pi;
}

enum { READY = 1, LOCAL = 2, TERMINATING = 4, NOT_SERVING = 8 };

static void ep_add(struct svc_port_info *pi, const char *a, uint16_t port, unsigned flags)
{
	struct svc_endpoint *e;

	pi->eps = xrealloc(pi->eps, (pi->n_eps + 1) * sizeof(*pi->eps));
	e = &pi->eps[pi->n_eps++];
	memset(e, 0, sizeof(*e));
	e->ip = ip(a);
	e->port = port;
	e->ready = flags & READY;
	e->serving = (flags & READY) || ((flags & TERMINATING) && !(flags & NOT_SERVING));
	e->terminating = flags & TERMINATING;
	e->is_local = flags & LOCAL;
}

/* ---- normalisation ------------------------------------------------------- */

struct lines {
	char **v;
	size_t n;
};

static void lines_push(struct lines *l, const char *s, size_t n)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrndup(s, n);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int chain_rank(const char *name)
{
	if (strcmp(name, "KUBE-NODEPORTS") == 0)
		return 0;
	if (strcmp(name, "KUBE-SERVICES") == 0)
		return 1;
	return 2;
}

static int cmp_chain(const void *pa, const void *pb)
{
	const char *a = *(char *const *)pa, *b = *(char *const *)pb;
	int ra = chain_rank(a), rb = chain_rank(b);

	return ra != rb ? ra - rb : strcmp(a, b);
}

/* First word after "-A " of a rule line, copied into buf. */
static const char *rule_chain(const char *line, char *buf, size_t n)
{
	const char *p = line + 3, *e = strchr(p, ' ');
	size_t len = e ? (size_t)(e - p) : strlen(p);

	snprintf(buf, n, "%.*s", (int)len, p);
	return buf;
}

/* Reorders iptables-restore text as upstream's sortIPTablesRules does and
 * drops the -A lines of built-in chains. Caller frees. */
static char *normalize(const char *text)
{
	struct strbuf out;
	const char *p = text;

	sb_init(&out);
	while (*p) {
		struct lines chains = { 0 }, rules = { 0 };
		const char *nl;

		/* one table: "*name" ... "COMMIT" */
		nl = strchr(p, '\n');
		assert_non_null(nl);
		if (*p == '#') {
			p = nl + 1;
			continue;
		}
		assert_true(*p == '*');
		sb_add(&out, p, (size_t)(nl - p + 1));
		p = nl + 1;
		while (strncmp(p, "COMMIT\n", 7) != 0) {
			nl = strchr(p, '\n');
			assert_non_null(nl);
			if (*p == ':')
				lines_push(&chains, p + 1, (size_t)(strchr(p, ' ') - p - 1));
			else
				lines_push(&rules, p, (size_t)(nl - p));
			p = nl + 1;
		}
		p += 7;
		qsort(chains.v, chains.n, sizeof(char *), cmp_chain);
		for (size_t i = 0; i < chains.n; i++)
			sb_printf(&out, ":%s - [0:0]\n", chains.v[i]);
		for (size_t i = 0; i < chains.n; i++) {
			for (size_t j = 0; j < rules.n; j++) {
				char buf[64];

				if (strcmp(rule_chain(rules.v[j], buf, sizeof(buf)), chains.v[i]) == 0)
					sb_printf(&out, "%s\n", rules.v[j]);
			}
		}
		sb_puts(&out, "COMMIT\n");
		lines_free(&chains);
		lines_free(&rules);
	}
	return sb_steal(&out);
}

/* Builds one family's tables for f, renders filter then nat. */
static char *build_text(struct fx *f, uint8_t family, const struct dirty_set *changed,
			struct proxier_counts *counts)
{
	struct table_want nat, filter;
	struct strbuf sb;

	table_want_init(&nat, "nat", family);
	table_want_init(&filter, "filter", family);
	proxier_build(&f->cfg, &f->env, &f->ps, family, changed, &nat, &filter, counts);
	sb_init(&sb);
	table_render(&filter, &sb);
	table_render(&nat, &sb);
	table_want_free(&nat);
	table_want_free(&filter);
	return sb_steal(&sb);
}

static void check_rules(struct fx *f, uint8_t family, const char *want)
{
	char *text = build_text(f, family, NULL, NULL);
	char *got = normalize(text);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "---- got:\n%s---- raw:\n%s", got, text);
	assert_string_equal(got, want);
	free(got);
	free(text);
}

/* True if line (without "\n") is one of text's lines. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

#define assert_line(text, line) do { \
		if (!has_line(text, line)) \
			fprintf(stderr, "missing line: %s\nin:\n%s", line, text); \
		assert_true(has_line(text, line)); \
	} while (0)
#define assert_no_line(text, line) assert_false(has_line(text, line))

/* ---- upstream's TestOverallIPTablesRules --------------------------------- */

static void overall_fixture(struct fx *f)
{
	struct service *s;
	struct svc_port_info *pi;

	/* ClusterIP */
	s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.1", 80, READY);

	/* LoadBalancer, externalTrafficPolicy Local, no local endpoint */
	s = svc_new(f, "ns2", "svc2", SVC_LOAD_BALANCER, "172.30.0.42");
	svc_port(s, "p80", PROTO_TCP, 80, 3001);
	svc_lb_ip(s, "1.2.3.4");
	svc_external_ip(s, "192.168.99.22");
	s->etp_local = true;
	s->health_check_node_port = 30000;
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.2", 80, READY);

	/* NodePort */
	s = svc_new(f, "ns3", "svc3", SVC_NODE_PORT, "172.30.0.43");
	svc_port(s, "p80", PROTO_TCP, 80, 3003);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.3", 80, READY);

	/* external IP (type NodePort without a node port) */
	s = svc_new(f, "ns4", "svc4", SVC_NODE_PORT, "172.30.0.44");
	svc_external_ip(s, "192.168.99.33");
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.4", 80, READY);
	ep_add(pi, "10.180.0.5", 80, READY | LOCAL);

	/* LoadBalancer, Cluster policy, source ranges, session affinity */
	s = svc_new(f, "ns5", "svc5", SVC_LOAD_BALANCER, "172.30.0.45");
	svc_port(s, "p80", PROTO_TCP, 80, 3002);
	svc_lb_ip(s, "5.6.7.8");
	s->health_check_node_port = 30000;
	svc_source_range(s, "203.0.113.0/25");
	s->affinity_client_ip = true;
	s->affinity_timeout = 10800;
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.3", 80, READY);

	/* ClusterIP without endpoints */
	s = svc_new(f, "ns6", "svc6", SVC_CLUSTER_IP, "172.30.0.46");
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi_new(f, s, 0);
}

static const char overall_expected[] =
	"*filter\n"
	":KUBE-NODEPORTS - [0:0]\n"
	":KUBE-SERVICES - [0:0]\n"
	":KUBE-EXTERNAL-SERVICES - [0:0]\n"
	":KUBE-FIREWALL - [0:0]\n"
	":KUBE-FORWARD - [0:0]\n"
	":KUBE-PROXY-FIREWALL - [0:0]\n"
	"-A KUBE-NODEPORTS -m comment --comment \"ns2/svc2:p80 health check node port\" -m tcp -p tcp --dport 30000 -j ACCEPT\n"
	"-A KUBE-SERVICES -m comment --comment \"ns6/svc6:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT\n"
	"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP\n"
	"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP\n"
	"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns2/svc2:p80 has no local endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP\n"
	"-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
	"-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP\n"
	"-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n"
	"-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
	"-A KUBE-PROXY-FIREWALL -m comment --comment \"ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP\n"
	"COMMIT\n"
	"*nat\n"
	":KUBE-NODEPORTS - [0:0]\n"
	":KUBE-SERVICES - [0:0]\n"
	":KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]\n"
	":KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]\n"
	":KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]\n"
	":KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]\n"
	":KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]\n"
	":KUBE-MARK-MASQ - [0:0]\n"
	":KUBE-POSTROUTING - [0:0]\n"
	":KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]\n"
	":KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]\n"
	":KUBE-SEP-OYPFS5VJICHGATKP - [0:0]\n"
	":KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]\n"
	":KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]\n"
	":KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]\n"
	":KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]\n"
	":KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]\n"
	":KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]\n"
	":KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]\n"
	":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n"
	"-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3001 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3003 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-X27LE4BHSL4DOUIK\n"
	"-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK\n"
	"-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3002 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n"
	"-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n"
	"-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
	"-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 external IP\" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 loadbalancer IP\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-SERVICES -m comment --comment \"ns3/svc3:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK\n"
	"-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK\n"
	"-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 external IP\" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK\n"
	"-A KUBE-SERVICES -m comment --comment \"ns5/svc5:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C\n"
	"-A KUBE-SERVICES -m comment --comment \"ns5/svc5:p80 loadbalancer IP\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C\n"
	"-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n"
	"-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment \"masquerade traffic for ns4/svc4:p80 external destinations\" -j KUBE-MARK-MASQ\n"
	"-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK\n"
	"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"pod traffic for ns2/svc2:p80 external destinations\" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"masquerade LOCAL traffic for ns2/svc2:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n"
	"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"route LOCAL traffic for ns2/svc2:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
	"-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment \"masquerade traffic for ns5/svc5:p80 external destinations\" -j KUBE-MARK-MASQ\n"
	"-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C\n"
	"-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment \"masquerade traffic for ns3/svc3:p80 external destinations\" -j KUBE-MARK-MASQ\n"
	"-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK\n"
	"-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 loadbalancer IP\" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C\n"
	"-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment \"other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL\"\n"
	"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
	"-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
	"-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
	"-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n"
	"-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80\n"
	"-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80\n"
	"-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80\n"
	"-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80\n"
	"-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80\n"
	"-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80\n"
	"-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 -> 10.180.0.4:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC\n"
	"-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment \"ns4/svc4:p80 -> 10.180.0.5:80\" -j KUBE-SEP-C6EBXVWJJZMIWKLZ\n"
	"-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -j KUBE-SEP-RS4RBKLTHTF2IUXJ\n"
	"-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 -> 10.180.0.3:80\" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN\n"
	"-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment \"ns5/svc5:p80 -> 10.180.0.3:80\" -j KUBE-SEP-I77PXRDZVX7PMWMN\n"
	"-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment \"ns3/svc3:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment \"ns3/svc3:p80 -> 10.180.0.3:80\" -j KUBE-SEP-OYPFS5VJICHGATKP\n"
	"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ\n"
	"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ\n"
	"COMMIT\n";

/* Upstream's test runs with both nfacct counters present. */
static void test_overall_upstream(void **state)
{
	struct fx *f = fx_new();

	(void)state;
	f->env.nfacct_ct_invalid = f->env.nfacct_localhost_np = true;
	overall_fixture(f);
	check_rules(f, AF_INET, overall_expected);
	fx_free(f);
}

/* Without the counters (no nfnetlink_acct): the same rules minus the
 * localhost NodePort counting rules and the nfacct match. */
static void test_overall_without_nfacct(void **state)
{
	static const char invalid_acct[] = " -m nfacct --nfacct-name ct_state_invalid_dropped_pkts";
	struct fx *f = fx_new();
	struct strbuf want;
	const char *line = overall_expected;

	(void)state;
	sb_init(&want);
	while (*line) {
		const char *nl = strchr(line, '\n'), *acct = strstr(line, invalid_acct);

		if (acct && acct < nl) {
			sb_add(&want, line, (size_t)(acct - line));
			sb_add(&want, acct + strlen(invalid_acct), (size_t)(nl + 1 - acct - strlen(invalid_acct)));
		} else if (!strstr(line, "localhost_nps_accepted_pkts") ||
			   strstr(line, "localhost_nps_accepted_pkts") > nl) {
			sb_add(&want, line, (size_t)(nl + 1 - line));
		}
		line = nl + 1;
	}
	overall_fixture(f);
	check_rules(f, AF_INET, sb_cstr(&want));
	sb_free(&want);
	fx_free(f);
}

/* The built-in chain jumps, in upstream's order. */
static void test_builtin_jumps(void **state)
{
	struct fx *f = fx_new();
	char *text;

	(void)state;
	text = build_text(f, AF_INET, NULL, NULL);
	/* The localnet firewall (route_localnet is on for localhost NodePorts)
	 * comes first in INPUT and OUTPUT, then upstream's jumps. */
	assert_non_null(strstr(text,
		"-A INPUT -j KUBE-FIREWALL\n"
		"-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n"
		"-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n"
		"-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n"));
	assert_non_null(strstr(text,
		"-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n"
		"-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
		"-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
		"-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n"));
	assert_non_null(strstr(text,
		"-A OUTPUT -j KUBE-FIREWALL\n"
		"-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n"
		"-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"));
	assert_non_null(strstr(text,
		"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
		"-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
		"-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n"));
	free(text);
	fx_free(f);
}

/* ---- IPv6 ----------------------------------------------------------------- */

static void test_ipv6(void **state)
{
	struct fx *f = fx_new();
	struct service *s;
	struct svc_port_info *pi;
	static const char want[] =
		"*filter\n"
		":KUBE-NODEPORTS - [0:0]\n"
		":KUBE-SERVICES - [0:0]\n"
		":KUBE-EXTERNAL-SERVICES - [0:0]\n"
		":KUBE-FORWARD - [0:0]\n"
		":KUBE-PROXY-FIREWALL - [0:0]\n"
		"-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
		"-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n"
		"-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
		"COMMIT\n"
		"*nat\n"
		":KUBE-NODEPORTS - [0:0]\n"
		":KUBE-SERVICES - [0:0]\n"
		":KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]\n"
		":KUBE-MARK-MASQ - [0:0]\n"
		":KUBE-POSTROUTING - [0:0]\n"
		":KUBE-SEP-APSFVWOCYOGIDJM2 - [0:0]\n"
		":KUBE-SEP-OGYCNMB4EMRUSJ6N - [0:0]\n"
		":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]\n"
		"-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O\n"
		"-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d fd00:172:30::41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
		"-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d ::1 -j KUBE-NODEPORTS\n"
		"-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment \"masquerade traffic for ns1/svc1:p80 external destinations\" -j KUBE-MARK-MASQ\n"
		"-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O\n"
		"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
		"-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
		"-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
		"-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n"
		"-A KUBE-SEP-APSFVWOCYOGIDJM2 -m comment --comment ns1/svc1:p80 -s fd00:10:180::2:1 -j KUBE-MARK-MASQ\n"
		"-A KUBE-SEP-APSFVWOCYOGIDJM2 -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [fd00:10:180::2:1]:80\n"
		"-A KUBE-SEP-OGYCNMB4EMRUSJ6N -m comment --comment ns1/svc1:p80 -s fd00:10:180::1 -j KUBE-MARK-MASQ\n"
		"-A KUBE-SEP-OGYCNMB4EMRUSJ6N -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [fd00:10:180::1]:80\n"
		"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d fd00:172:30::41 --dport 80 ! -s fd00:10::/64 -j KUBE-MARK-MASQ\n"
		"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> [fd00:10:180::1]:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-OGYCNMB4EMRUSJ6N\n"
		"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> [fd00:10:180::2:1]:80\" -j KUBE-SEP-APSFVWOCYOGIDJM2\n"
		"COMMIT\n";

	(void)state;
	f->cfg.cluster_cidrs[1] = net("fd00:10::/64");
	f->cfg.n_cluster_cidrs = 2;
	s = svc_new(f, "ns1", "svc1", SVC_NODE_PORT, "fd00:172:30::41");
	svc_port(s, "p80", PROTO_TCP, 80, 3001);
	pi = pi_new(f, s, 0);
	ep_add(pi, "fd00:10:180::1", 80, READY);
	ep_add(pi, "fd00:10:180::2:1", 80, READY | LOCAL);
	check_rules(f, AF_INET6, want);
	fx_free(f);
}

/* A family's build ignores the other family's services. */
static void test_family_split(void **state)
{
	struct fx *f = fx_new();
	struct service *s;
	char *v4, *v6;

	(void)state;
	s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	ep_add(pi_new(f, s, 0), "10.180.0.1", 80, READY);
	s = svc_new(f, "ns1", "svc2", SVC_CLUSTER_IP, "fd00:172:30::42");
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	ep_add(pi_new(f, s, 0), "fd00:10:180::1", 80, READY);
	v4 = build_text(f, AF_INET, NULL, NULL);
	v6 = build_text(f, AF_INET6, NULL, NULL);
	assert_non_null(strstr(v4, "172.30.0.41"));
	assert_null(strstr(v4, "fd00"));
	assert_non_null(strstr(v6, "fd00:172:30::42"));
	assert_null(strstr(v6, "172.30.0.41"));
	/* no IPv6 cluster CIDR: no "! -s" masquerade rule in the v6 SVC chain */
	assert_null(strstr(v6, "! -s "));
	assert_non_null(strstr(v4, "! -s 10.0.0.0/8 -j KUBE-MARK-MASQ"));
	assert_line(v6, "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL ! -d ::1 -j KUBE-NODEPORTS");
	free(v4);
	free(v6);
	fx_free(f);
}

/* ---- options ---------------------------------------------------------------- */

static struct fx *one_service(enum l4_proto proto)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	struct svc_port_info *pi;

	svc_port(s, "p80", proto, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.1", 80, READY);
	return f;
}

static void test_masquerade_all(void **state)
{
	struct fx *f = one_service(PROTO_TCP);
	char *t;

	(void)state;
	f->cfg.masquerade_all = true;
	f->env.random_fully = true;
	f->cfg.masquerade_bit = 5;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ");
	assert_line(t, "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully");
	assert_line(t, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x20");
	assert_line(t, "-A KUBE-POSTROUTING -m mark ! --mark 0x20/0x20 -j RETURN");
	assert_line(t, "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x20/0x20 -j ACCEPT");
	free(t);
	fx_free(f);
}

static void test_detect_local_modes(void **state)
{
	struct fx *f = one_service(PROTO_TCP);
	char *t;

	(void)state;
	/* NodeCIDR: the node's pod CIDR */
	f->cfg.detect_local_mode = "NodeCIDR";
	f->node.pod_cidrs[0] = net("10.0.1.0/24");
	f->node.n_pod_cidrs = 1;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.1.0/24 -j KUBE-MARK-MASQ");
	free(t);

	f->cfg.detect_local_mode = "BridgeInterface";
	f->cfg.bridge_interface = "cbr0";
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -i cbr0 -j KUBE-MARK-MASQ");
	free(t);

	f->cfg.detect_local_mode = "InterfaceNamePrefix";
	f->cfg.interface_name_prefix = "veth";
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -i veth+ -j KUBE-MARK-MASQ");
	free(t);

	/* ClusterCIDR without a cluster CIDR: no detector, no masquerade rule */
	f->cfg.detect_local_mode = "ClusterCIDR";
	f->cfg.n_cluster_cidrs = 0;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_null(strstr(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\""));
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ");
	free(t);
	fx_free(f);
}

static void test_protocols(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns2", "svc2", SVC_CLUSTER_IP, "172.30.0.42");
	char *t;

	(void)state;
	svc_port(s, "dns-sctp", PROTO_SCTP, 53, 0);
	svc_port(s, "dns-udp", PROTO_UDP, 53, 0);
	ep_add(pi_new(f, s, 0), "10.180.0.1", 53, READY);
	ep_add(pi_new(f, s, 1), "10.180.0.1", 53, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:dns-udp cluster IP\" -m udp -p udp -d 172.30.0.42 --dport 53 -j KUBE-SVC-56EGM3ZB4YILLRBZ");
	assert_line(t, "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:dns-sctp cluster IP\" -m sctp -p sctp -d 172.30.0.42 --dport 53 -j KUBE-SVC-L76IW5RJFPV7YBZO");
	assert_line(t, "-A KUBE-SEP-7PIHC2I6DEQ4LZME -m comment --comment ns2/svc2:dns-udp -m udp -p udp -j DNAT --to-destination 10.180.0.1:53");
	assert_line(t, "-A KUBE-SEP-5BVYUR2PKHQSNHD4 -m comment --comment ns2/svc2:dns-sctp -m sctp -p sctp -j DNAT --to-destination 10.180.0.1:53");
	free(t);
	fx_free(f);
}

/* 1/(n-i) with %0.10f, the last endpoint without a probability; endpoints
 * in upstream's string order ("10.180.0.10" before "10.180.0.9"). */
static void test_probabilities(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	struct svc_port_info *pi;
	char *t, *a, *b, *c;

	(void)state;
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.10", 80, READY);
	ep_add(pi, "10.180.0.2", 80, READY);
	ep_add(pi, "10.180.0.9", 80, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	a = strstr(t, "\"ns1/svc1:p80 -> 10.180.0.10:80\" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-");
	b = strstr(t, "\"ns1/svc1:p80 -> 10.180.0.2:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-");
	c = strstr(t, "\"ns1/svc1:p80 -> 10.180.0.9:80\" -j KUBE-SEP-");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b && b < c);
	free(t);
	fx_free(f);
}

/* Terminating endpoints are used only when no endpoint is ready. */
static void test_terminating_fallback(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	struct svc_port_info *pi;
	char *t;

	(void)state;
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.1", 80, TERMINATING);               /* serving, terminating */
	ep_add(pi, "10.180.0.2", 80, TERMINATING | NOT_SERVING); /* not usable */
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ");
	assert_null(strstr(t, "10.180.0.2"));
	free(t);

	ep_add(pi, "10.180.0.3", 80, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_null(strstr(t, "10.180.0.1"));
	assert_non_null(strstr(t, "\"ns1/svc1:p80 -> 10.180.0.3:80\" -j KUBE-SEP-"));
	free(t);

	/* nothing usable at all: REJECT in filter, no nat chains */
	pi->n_eps = 2;
	pi->eps[0].serving = false;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT");
	assert_null(strstr(t, "KUBE-SVC-"));
	assert_null(strstr(t, "KUBE-SEP-"));
	free(t);
	fx_free(f);
}

/* Topology-aware routing (decided by the store, pi->topology): cluster
 * traffic goes only to the ready endpoints hinted for our zone; Local
 * policies ignore hints. */
static void test_topology_hints(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	struct svc_port_info *pi;
	char *t;

	(void)state;
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.1", 80, READY);
	ep_add(pi, "10.180.0.2", 80, READY);
	pi->eps[0].has_hints = pi->eps[1].has_hints = true;
	pi->eps[1].zone_hinted = true;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, "\"ns1/svc1:p80 -> 10.180.0.1:80\""));  /* topology off */
	free(t);
	pi->topology = true;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_null(strstr(t, "\"ns1/svc1:p80 -> 10.180.0.1:80\""));
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.2:80\" -j KUBE-SEP-LXVODXWDISEETFEF");
	free(t);
	fx_free(f);
}

static void test_internal_traffic_local(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	struct svc_port_info *pi;
	char *t;

	(void)state;
	s->itp_local = true;
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.1", 80, READY | LOCAL);
	ep_add(pi, "10.180.0.2", 80, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVL-XPGD46QRK7WJZT7O");
	assert_line(t, "-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ");
	assert_line(t, "-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -j KUBE-SEP-SXIVWICOYRO3J4NJ");
	/* not externally reachable and internal policy Local: no cluster chain */
	assert_null(strstr(t, "KUBE-SVC-"));
	assert_null(strstr(t, "10.180.0.2"));
	free(t);

	/* no local endpoint: DROP in filter */
	pi->eps[0].is_local = false;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_line(t, "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no local endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j DROP");
	assert_null(strstr(t, "KUBE-SVL-"));
	free(t);
	fx_free(f);
}

/* externalTrafficPolicy Local with a local endpoint: SVL for outside
 * traffic, short-circuit to SVC for pods and the node. */
static void test_external_traffic_local(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns2", "svc2", SVC_LOAD_BALANCER, "172.30.0.42");
	struct svc_port_info *pi;
	char *t;
	static const char ext[] =
		"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"pod traffic for ns2/svc2:p80 external destinations\" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
		"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"masquerade LOCAL traffic for ns2/svc2:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ\n"
		"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment \"route LOCAL traffic for ns2/svc2:p80 external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT\n"
		"-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT\n";

	(void)state;
	s->etp_local = true;
	s->health_check_node_port = 30000;
	svc_port(s, "p80", PROTO_TCP, 80, 3001);
	svc_lb_ip(s, "1.2.3.4");
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.2", 80, READY | LOCAL);
	ep_add(pi, "10.180.0.3", 80, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, ext));
	assert_line(t, "-A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -j KUBE-SEP-RS4RBKLTHTF2IUXJ");
	assert_line(t, "-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.3:80\" -j KUBE-SEP-2GOKER2KF7NAANZN");
	assert_line(t, "-A KUBE-NODEPORTS -m comment --comment \"ns2/svc2:p80 health check node port\" -m tcp -p tcp --dport 30000 -j ACCEPT");
	assert_null(strstr(t, "has no local endpoints"));
	free(t);
	fx_free(f);
}

/* No endpoints at all: REJECT for every address of the service, in
 * filter only (upstream's TestNoEndpointsReject). */
static void test_no_endpoints_reject(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_LOAD_BALANCER, "172.30.0.41");
	char *t;
	static const char want[] =
		"-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT\n"
		"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT\n"
		"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT\n"
		"-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT\n";

	(void)state;
	svc_port(s, "p80", PROTO_TCP, 80, 3001);
	svc_external_ip(s, "192.168.99.11");
	svc_lb_ip(s, "1.2.3.4");
	svc_source_range(s, "203.0.113.0/25");
	s->etp_local = true;
	pi_new(f, s, 0);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, want));
	/* no nat chains of the service, no firewall chain, no NodePort jump */
	assert_null(strstr(t, "XPGD46QRK7WJZT7O"));
	assert_null(strstr(t, "-A KUBE-NODEPORTS"));
	assert_null(strstr(t, "-A KUBE-PROXY-FIREWALL"));
	free(t);
	fx_free(f);
}

/* Session affinity with externalTrafficPolicy Local: affinity rules in both
 * the SVC and the SVL chain, in upstream's order. */
static void test_affinity_local(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns2", "svc2", SVC_NODE_PORT, "172.30.0.42");
	struct svc_port_info *pi;
	char *t;
	static const char svl[] =
		"-A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -m recent --name KUBE-SEP-RS4RBKLTHTF2IUXJ --rcheck --seconds 300 --reap -j KUBE-SEP-RS4RBKLTHTF2IUXJ\n"
		"-A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -j KUBE-SEP-RS4RBKLTHTF2IUXJ\n";
	static const char svc[] =
		"-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -m recent --name KUBE-SEP-RS4RBKLTHTF2IUXJ --rcheck --seconds 300 --reap -j KUBE-SEP-RS4RBKLTHTF2IUXJ\n"
		"-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.3:80\" -m recent --name KUBE-SEP-2GOKER2KF7NAANZN --rcheck --seconds 300 --reap -j KUBE-SEP-2GOKER2KF7NAANZN\n"
		"-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.2:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-RS4RBKLTHTF2IUXJ\n"
		"-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment \"ns2/svc2:p80 -> 10.180.0.3:80\" -j KUBE-SEP-2GOKER2KF7NAANZN\n";

	(void)state;
	s->etp_local = true;
	s->affinity_client_ip = true;
	s->affinity_timeout = 300;
	svc_port(s, "p80", PROTO_TCP, 80, 3001);
	pi = pi_new(f, s, 0);
	ep_add(pi, "10.180.0.2", 80, READY | LOCAL);
	ep_add(pi, "10.180.0.3", 80, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, svl));
	assert_non_null(strstr(t, svc));
	assert_line(t, "-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m recent --name KUBE-SEP-RS4RBKLTHTF2IUXJ --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80");
	free(t);
	fx_free(f);
}

/* Source ranges that contain the node IP also admit the LB IPs as sources. */
static void test_firewall_allows_node(void **state)
{
	struct fx *f = fx_new();
	struct service *s = svc_new(f, "ns1", "svc1", SVC_LOAD_BALANCER, "172.30.0.41");
	char *t;
	static const char fw[] =
		"-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 192.168.0.0/24 -j KUBE-EXT-XPGD46QRK7WJZT7O\n"
		"-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 203.0.113.0/25 -j KUBE-EXT-XPGD46QRK7WJZT7O\n"
		"-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 1.2.3.4 -j KUBE-EXT-XPGD46QRK7WJZT7O\n"
		"-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 5.6.7.8 -j KUBE-EXT-XPGD46QRK7WJZT7O\n"
		"-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment \"other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL\"\n";

	(void)state;
	svc_port(s, "p80", PROTO_TCP, 80, 3001);
	svc_lb_ip(s, "1.2.3.4");
	svc_lb_ip(s, "5.6.7.8");
	svc_source_range(s, "192.168.0.0/24");
	svc_source_range(s, "203.0.113.0/25");
	svc_source_range(s, "fd00::/64");   /* other family: ignored */
	ep_add(pi_new(f, s, 0), "10.180.0.1", 80, READY);
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, fw));
	assert_line(t, "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-FW-XPGD46QRK7WJZT7O");
	assert_line(t, "-A KUBE-PROXY-FIREWALL -m comment --comment \"ns1/svc1:p80 traffic not accepted by KUBE-FW-XPGD46QRK7WJZT7O\" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP");
	free(t);
	fx_free(f);
}

static void test_nodeport_addresses(void **state)
{
	struct fx *f = one_service(PROTO_TCP);
	char *t;
	static const char np[] = "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\"";

	(void)state;
	f->host_addrs[0] = ip("127.0.0.1");
	f->host_addrs[1] = ip("192.168.0.2");
	f->host_addrs[2] = ip("192.168.1.2");
	f->host_addrs[3] = ip("2001:db8::1");
	f->env.host_addrs = f->host_addrs;
	f->env.n_host_addrs = 4;

	/* localhost NodePorts off, all addresses */
	f->cfg.localhost_nodeports = false;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS\n"));
	assert_null(strstr(t, "KUBE-FIREWALL"));  /* no route_localnet, no martian filter */
	free(t);

	/* one CIDR: one rule per matching local address, last in KUBE-SERVICES */
	f->cfg.nodeport_addresses[0] = net("192.168.0.0/24");
	f->cfg.nodeport_addresses[1] = net("2001:db8::/64");
	f->cfg.n_nodeport_addresses = 2;
	t = build_text(f, AF_INET, NULL, NULL);
	{
		char *line = xasprintf("%s -d 192.168.0.2 -j KUBE-NODEPORTS", np);

		assert_line(t, line);
		free(line);
	}
	assert_null(strstr(t, "192.168.1.2"));
	assert_null(strstr(t, "--dst-type LOCAL -j KUBE-NODEPORTS"));
	free(t);
	t = build_text(f, AF_INET6, NULL, NULL);
	assert_non_null(strstr(t, " -d 2001:db8::1 -j KUBE-NODEPORTS\n"));
	free(t);

	/* loopback listed but localhost NodePorts off: skipped */
	f->cfg.nodeport_addresses[0] = net("127.0.0.0/8");
	f->cfg.n_nodeport_addresses = 1;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_null(strstr(t, np));
	free(t);
	f->cfg.localhost_nodeports = true;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, " -d 127.0.0.1 -j KUBE-NODEPORTS\n"));
	free(t);

	/* "primary": the node IP */
	f->cfg.n_nodeport_addresses = 0;
	f->cfg.nodeport_primary = true;
	t = build_text(f, AF_INET, NULL, NULL);
	assert_non_null(strstr(t, " -d 192.168.0.2 -j KUBE-NODEPORTS\n"));
	assert_null(strstr(t, "127.0.0.1"));
	free(t);
	fx_free(f);
}

/* Partial sync: unchanged services' chains are listed with keep and no
 * rules; the shared chains stay complete. */
static void test_partial_sync(void **state)
{
	struct fx *f = fx_new();
	struct table_want nat, filter;
	struct dirty_set changed = { 0 };
	char key[] = "ns1/svc1";
	char *keys[] = { key };
	struct proxier_counts cnt;
	const struct chain *c;

	(void)state;
	overall_fixture(f);
	changed.keys = keys;
	changed.n = 1;
	table_want_init(&nat, "nat", AF_INET);
	table_want_init(&filter, "filter", AF_INET);
	proxier_build(&f->cfg, &f->env, &f->ps, AF_INET, &changed, &nat, &filter, &cnt);
	assert_int_equal(cnt.services, 6);
	assert_int_equal(cnt.kept_services, 5);
	assert_int_equal(cnt.endpoints, 6);
	assert_false(cnt.large_cluster);

	c = table_find_chain(&nat, "KUBE-SVC-XPGD46QRK7WJZT7O");   /* ns1: changed */
	assert_non_null(c);
	assert_false(c->keep);
	assert_int_equal(c->n_rules, 2);
	c = table_find_chain(&nat, "KUBE-SEP-SXIVWICOYRO3J4NJ");
	assert_false(c->keep);
	assert_int_equal(c->n_rules, 2);
	static const char *const kept[] = {
		"KUBE-EXT-4SW47YFZTEDKD3PK", "KUBE-EXT-GNZBNJ2PO5MGZ6GT", "KUBE-EXT-NUKIZ6OKUXPJNT4C",
		"KUBE-EXT-X27LE4BHSL4DOUIK", "KUBE-FW-NUKIZ6OKUXPJNT4C", "KUBE-SEP-C6EBXVWJJZMIWKLZ",
		"KUBE-SEP-I77PXRDZVX7PMWMN", "KUBE-SEP-OYPFS5VJICHGATKP", "KUBE-SEP-RS4RBKLTHTF2IUXJ",
		"KUBE-SEP-UKSFD7AGPMPPLUHC", "KUBE-SVC-4SW47YFZTEDKD3PK", "KUBE-SVC-GNZBNJ2PO5MGZ6GT",
		"KUBE-SVC-NUKIZ6OKUXPJNT4C", "KUBE-SVC-X27LE4BHSL4DOUIK",
	};
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		c = table_find_chain(&nat, kept[i]);
		assert_non_null(c);
		assert_true(c->keep);
		assert_int_equal(c->n_rules, 0);
	}
	/* 4 fixed + 1 changed SVC/SEP pair + 14 kept */
	assert_int_equal(nat.n_chains, 4 + 2 + 14);
	/* the shared chains are complete: 9 service rules + the nodeports rule */
	c = table_find_chain(&nat, "KUBE-SERVICES");
	assert_int_equal(c->n_rules, 10);
	c = table_find_chain(&nat, "KUBE-NODEPORTS");
	assert_int_equal(c->n_rules, 3);
	c = table_find_chain(&filter, "KUBE-EXTERNAL-SERVICES");
	assert_int_equal(c->n_rules, 3);
	table_want_free(&nat);
	table_want_free(&filter);

	/* an empty dirty set keeps every service chain */
	changed.n = 0;
	table_want_init(&nat, "nat", AF_INET);
	table_want_init(&filter, "filter", AF_INET);
	proxier_build(&f->cfg, &f->env, &f->ps, AF_INET, &changed, &nat, &filter, &cnt);
	assert_int_equal(cnt.kept_services, 6);
	for (size_t i = 0; i < nat.n_chains; i++)
		if (strncmp(nat.chains[i].name, "KUBE-SVC-", 9) == 0 ||
		    strncmp(nat.chains[i].name, "KUBE-SEP-", 9) == 0)
			assert_true(nat.chains[i].keep);
	table_want_free(&nat);
	table_want_free(&filter);
	fx_free(f);
}

/* Over 1000 endpoints: no per-endpoint comments (upstream's large
 * cluster mode). */
static void test_large_cluster(void **state)
{
	struct fx *f = fx_new();
	struct svc_port_info *pi;
	struct service *s;
	struct proxier_counts cnt;
	char *t;

	(void)state;
	s = svc_new(f, "ns1", "svc1", SVC_CLUSTER_IP, "172.30.0.41");
	svc_port(s, "p80", PROTO_TCP, 80, 0);
	pi = pi_new(f, s, 0);
	for (int i = 0; i < 1001; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.180.%d.%d", i / 256, i % 256);
		ep_add(pi, a, 80, READY);
	}
	assert_true(proxier_large_cluster(&f->ps, AF_INET));
	assert_false(proxier_large_cluster(&f->ps, AF_INET6));
	t = build_text(f, AF_INET, NULL, &cnt);
	assert_true(cnt.large_cluster);
	assert_null(strstr(t, " -> "));
	assert_line(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ");
	assert_line(t, "-A KUBE-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1 -j KUBE-MARK-MASQ");
	assert_line(t, "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80");
	assert_null(strstr(t, "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment"));
	assert_non_null(strstr(t, "-A KUBE-SVC-XPGD46QRK7WJZT7O -m statistic --mode random --probability 0.0009990010 -j KUBE-SEP-"));
	free(t);

	pi->n_eps = 1000;
	t = build_text(f, AF_INET, NULL, &cnt);
	assert_false(cnt.large_cluster);
	assert_non_null(strstr(t, "\"ns1/svc1:p80 -> 10.180.0.0:80\" -m statistic --mode random --probability 0.0010000000"));
	free(t);
	fx_free(f);
}

/* --dry-run text: both families, each introduced by its header line. */
static void test_render(void **state)
{
	struct fx *f = fx_new();
	struct strbuf sb;
	const char *t, *v6;

	(void)state;
	overall_fixture(f);
	sb_init(&sb);
	proxier_render(&f->cfg, &f->env, &f->ps, &sb);
	t = sb_cstr(&sb);
	assert_true(strncmp(t, proxier_family_header(AF_INET), strlen(proxier_family_header(AF_INET))) == 0);
	v6 = strstr(t, proxier_family_header(AF_INET6));
	assert_non_null(v6);
	assert_true(v6[-1] == '\n');
	/* v4 part: filter, nat, mangle, each with a canary chain */
	assert_non_null(strstr(t, "*filter\n"));
	assert_non_null(strstr(t, "*mangle\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n"));
	assert_true(strstr(t, "172.30.0.41") < v6);
	assert_null(strstr(v6, "172.30.0.41"));
	assert_non_null(strstr(v6, "*nat\n"));
	assert_non_null(strstr(v6, "! -d ::1 -j KUBE-NODEPORTS\n"));
	{
		/* the v4 part normalises to upstream's expectation (plus canaries) */
		char *v4 = xstrndup(t, (size_t)(v6 - t));
		char *n = normalize(v4);

		assert_non_null(strstr(n, ":KUBE-PROXY-CANARY - [0:0]\n"));
		free(n);
		free(v4);
	}
	sb_free(&sb);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overall_upstream),
		cmocka_unit_test(test_overall_without_nfacct),
		cmocka_unit_test(test_builtin_jumps),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_family_split),
		cmocka_unit_test(test_masquerade_all),
		cmocka_unit_test(test_detect_local_modes),
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_probabilities),
		cmocka_unit_test(test_terminating_fallback),
		cmocka_unit_test(test_topology_hints),
		cmocka_unit_test(test_internal_traffic_local),
		cmocka_unit_test(test_external_traffic_local),
		cmocka_unit_test(test_no_endpoints_reject),
		cmocka_unit_test(test_affinity_local),
		cmocka_unit_test(test_firewall_allows_node),
		cmocka_unit_test(test_nodeport_addresses),
		cmocka_unit_test(test_partial_sync),
		cmocka_unit_test(test_large_cluster),
		cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
