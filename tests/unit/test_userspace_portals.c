/* Userspace mode portal rules: upstream's chains and rule shapes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "modes/userspace/us.h"
#include "src/util.h"

static char *render(const struct table_want *t)
{
	struct strbuf sb;

	sb_init(&sb);
	table_render(t, &sb);
	return sb_steal(&sb);
}

static void mk_port(struct us_port *p, const char *spn, enum l4_proto proto, const char *vip,
		    uint16_t port, uint16_t node_port, uint16_t proxy_port)
{
	memset(p, 0, sizeof(*p));
	p->spn = (char *)spn;
	p->family = AF_INET;
	p->proto = proto;
	addr_parse(vip, &p->cluster_ip);
	p->svc_port = port;
	p->node_port = node_port;
	p->proxy_port = proxy_port;
}

static void test_clusterip_nodeport_external(void **state)
{
	struct table_want nat, filter;
	struct us_port p;
	struct addr host, ext[1], any = { .family = AF_INET };
	char *n, *f;

	addr_parse("192.168.77.1", &host);
	addr_parse("203.0.113.7", &ext[0]);
	mk_port(&p, "ns1/web:http", PROTO_TCP, "10.0.0.10", 80, 30080, 40001);
	p.ext_ips = ext;
	p.n_ext_ips = 1;
	table_want_init(&nat, "nat", AF_INET);
	table_want_init(&filter, "filter", AF_INET);
	portals_skeleton(&nat, &filter);
	portals_add_port(&nat, &filter, &p, true, &any, &host);
	n = render(&nat);
	f = render(&filter);
	assert_string_equal(n,
		"*nat\n"
		":KUBE-PORTALS-CONTAINER - [0:0]\n"
		":KUBE-PORTALS-HOST - [0:0]\n"
		":KUBE-NODEPORT-CONTAINER - [0:0]\n"
		":KUBE-NODEPORT-HOST - [0:0]\n"
		"-A PREROUTING -m comment --comment \"handle ClusterIPs; NOTE: this must be before the NodePort rules\" -j KUBE-PORTALS-CONTAINER\n"
		"-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment \"handle service NodePorts; NOTE: this must be the last rule in the chain\" -j KUBE-NODEPORT-CONTAINER\n"
		"-A OUTPUT -m comment --comment \"handle ClusterIPs; NOTE: this must be before the NodePort rules\" -j KUBE-PORTALS-HOST\n"
		"-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment \"handle service NodePorts; NOTE: this must be the last rule in the chain\" -j KUBE-NODEPORT-HOST\n"
		"-A KUBE-PORTALS-CONTAINER -m comment --comment ns1/web:http -m tcp -p tcp -d 10.0.0.10 --dport 80 -j REDIRECT --to-ports 40001\n"
		"-A KUBE-PORTALS-CONTAINER -m comment --comment ns1/web:http -m tcp -p tcp -d 203.0.113.7 --dport 80 -j REDIRECT --to-ports 40001\n"
		"-A KUBE-PORTALS-HOST -m comment --comment ns1/web:http -m tcp -p tcp -d 10.0.0.10 --dport 80 -j DNAT --to-destination 192.168.77.1:40001\n"
		"-A KUBE-PORTALS-HOST -m comment --comment ns1/web:http -m tcp -p tcp -d 203.0.113.7 --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 192.168.77.1:40001\n"
		"-A KUBE-NODEPORT-CONTAINER -m comment --comment ns1/web:http -m tcp -p tcp --dport 30080 -j REDIRECT --to-ports 40001\n"
		"-A KUBE-NODEPORT-HOST -m comment --comment ns1/web:http -m tcp -p tcp --dport 30080 -j DNAT --to-destination 192.168.77.1:40001\n"
		"COMMIT\n");
	assert_string_equal(f,
		"*filter\n"
		":KUBE-NODEPORT-NON-LOCAL - [0:0]\n"
		"-A INPUT -m comment --comment \"Ensure that non-local NodePort traffic can flow\" -j KUBE-NODEPORT-NON-LOCAL\n"
		"-A KUBE-NODEPORT-NON-LOCAL -m comment --comment ns1/web:http -m tcp -p tcp --dport 40001 -m conntrack --ctstate NEW -j ACCEPT\n"
		"COMMIT\n");
	free(n);
	free(f);
	table_want_free(&nat);
	table_want_free(&filter);
}

static void test_bind_address_and_no_host_ip(void **state)
{
	struct table_want nat, filter;
	struct us_port p;
	struct addr bind, lbip[1];
	char *n;

	addr_parse("192.168.77.1", &bind);
	addr_parse("198.51.100.9", &lbip[0]);
	mk_port(&p, "ns2/dns:dns", PROTO_UDP, "10.0.0.53", 53, 0, 40002);
	p.lb_ips = lbip;
	p.n_lb_ips = 1;
	table_want_init(&nat, "nat", AF_INET);
	table_want_init(&filter, "filter", AF_INET);
	/* Specific bind address: DNAT to it instead of REDIRECT; no host IP:
	 * no host portals. */
	portals_add_port(&nat, &filter, &p, false, &bind, NULL);
	n = render(&nat);
	assert_string_equal(n,
		"*nat\n"
		":KUBE-PORTALS-CONTAINER - [0:0]\n"
		"-A KUBE-PORTALS-CONTAINER -m comment --comment ns2/dns:dns -m udp -p udp -d 10.0.0.53 --dport 53 -j DNAT --to-destination 192.168.77.1:40002\n"
		"-A KUBE-PORTALS-CONTAINER -m comment --comment ns2/dns:dns -m udp -p udp -d 198.51.100.9 --dport 53 -j DNAT --to-destination 192.168.77.1:40002\n"
		"COMMIT\n");
	assert_int_equal(filter.n_chains, 0);
	free(n);
	table_want_free(&nat);
	table_want_free(&filter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clusterip_nodeport_external),
		cmocka_unit_test(test_bind_address_and_no_host_ip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
