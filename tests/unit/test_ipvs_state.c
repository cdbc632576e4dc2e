/* The ipvs mode's desired state as --dry-run prints it (virtual servers in
 * `ipvsadm -Sn` form, ipset entries, iptables rules), from a store, without
 * touching the kernel. Only ClusterIP/externalIP services: NodePort
 * services would depend on this machine's addresses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "modes/mode.h"
#include "src/config.h"
#include "src/store.h"
#include "src/util.h"

extern const struct proxy_mode ipvs_mode;

static struct service *mk_svc(const char *name, const char *ip)
{
	struct service *s = xcalloc(1, sizeof(*s));

	s->ns = xstrdup("ns");
	s->name = xstrdup(name);
	s->type = SVC_CLUSTER_IP;
	assert_int_equal(addr_parse(ip, &s->cluster_ips[0]), 0);
	s->n_cluster_ips = 1;
	s->affinity_timeout = 10800;
	s->n_ports = 1;
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->ports[0].name = xstrdup("p80");
	s->ports[0].proto = PROTO_TCP;
	s->ports[0].port = 80;
	return s;
}

/* Endpoints: "ip" ready, "ip!" not ready, "ip~" serving+terminating,
 * "ip@node" on node. Port p80 -> 8080. */
static struct endpoint_slice *mk_slice(const char *svc, const char *const *eps, size_t n)
{
	struct endpoint_slice *s = xcalloc(1, sizeof(*s));

	s->ns = xstrdup("ns");
	s->name = xasprintf("%s-1", svc);
	s->service_name = xstrdup(svc);
	s->family = AF_INET;
	s->n_ports = 1;
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->ports[0].name = xstrdup("p80");
	s->ports[0].proto = PROTO_TCP;
	s->ports[0].port = 8080;
	s->n_endpoints = n;
	s->endpoints = xcalloc(n, sizeof(*s->endpoints));
	for (size_t i = 0; i < n; i++) {
		char *ip = xstrdup(eps[i]);
		char *at = strchr(ip, '@');

		if (at) {
			*at = '\0';
			s->endpoints[i].node_name = xstrdup(at + 1);
		}
		s->endpoints[i].ready = s->endpoints[i].serving = true;
		if (strchr(ip, '!')) {
			*strchr(ip, '!') = '\0';
			s->endpoints[i].ready = s->endpoints[i].serving = false;
		}
		if (strchr(ip, '~')) {
			*strchr(ip, '~') = '\0';
			s->endpoints[i].ready = false;
			s->endpoints[i].terminating = true;
		}
		assert_int_equal(addr_parse(ip, &s->endpoints[i].addr), 0);
		free(ip);
	}
	return s;
}

struct fx {
	struct config cfg;
	struct store *st;
	char *out;
};

static char *dump(struct fx *f)
{
	struct proxy_state *ps = store_snapshot(f->st, NULL);
	size_t len = 0;
	FILE *mem;

	free(f->out);
	mem = open_memstream(&f->out, &len);
	assert_int_equal(ipvs_mode.dump(&f->cfg, ps, mem), 0);
	fclose(mem);
	proxy_state_free(ps);
	return f->out;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	static const char *const web[] = { "10.244.1.2@n1", "10.244.2.2@n2", "10.244.3.2!" };
	static const char *const old[] = { "10.244.4.2~", "10.244.5.2!" };
	struct service *s;

	config_defaults(&f->cfg);
	assert_int_equal(cidr_parse("10.244.0.0/16", false, &f->cfg.cluster_cidrs[0]), 0);
	f->cfg.n_cluster_cidrs = 1;
	f->st = store_new("n1");
	s = mk_svc("web", "10.0.0.10");
	s->external_ips = xcalloc(1, sizeof(*s->external_ips));
	addr_parse("192.0.2.10", &s->external_ips[0]);
	s->n_external_ips = 1;
	store_upsert_service(f->st, s);
	store_upsert_slice(f->st, mk_slice("web", web, 3));
	s = mk_svc("sticky", "10.0.0.11");
	s->affinity_client_ip = true;
	s->affinity_timeout = 600;
	store_upsert_service(f->st, s);
	store_upsert_slice(f->st, mk_slice("sticky", web, 2));
	s = mk_svc("local", "10.0.0.12");
	s->itp_local = true;
	store_upsert_service(f->st, s);
	store_upsert_slice(f->st, mk_slice("local", web, 3));
	store_upsert_service(f->st, mk_svc("old", "10.0.0.13"));
	store_upsert_slice(f->st, mk_slice("old", old, 2));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->st);
	config_free(&f->cfg);
	free(f->out);
	free(f);
	return 0;
}

static void test_virtual_servers(void **state)
{
	char *o = dump(*state);

	assert_non_null(strstr(o, "-A -t 10.0.0.10:80 -s rr\n"));
	assert_non_null(strstr(o, "-a -t 10.0.0.10:80 -r 10.244.1.2:8080 -m -w 1\n"));
	assert_non_null(strstr(o, "-a -t 10.0.0.10:80 -r 10.244.2.2:8080 -m -w 1\n"));
	/* not ready: not a real server */
	assert_null(strstr(o, "-a -t 10.0.0.10:80 -r 10.244.3.2:8080"));
	/* external IP: its own virtual server with the same real servers */
	assert_non_null(strstr(o, "-A -t 192.0.2.10:80 -s rr\n"));
	assert_non_null(strstr(o, "-a -t 192.0.2.10:80 -r 10.244.2.2:8080 -m -w 1\n"));
}

static void test_affinity_is_persistence(void **state)
{
	char *o = dump(*state);

	assert_non_null(strstr(o, "-A -t 10.0.0.11:80 -s rr -p 600\n"));
	assert_null(strstr(o, "-A -t 10.0.0.10:80 -s rr -p"));
}

static void test_internal_traffic_policy_local(void **state)
{
	char *o = dump(*state);

	assert_non_null(strstr(o, "-a -t 10.0.0.12:80 -r 10.244.1.2:8080 -m -w 1\n"));
	assert_null(strstr(o, "-a -t 10.0.0.12:80 -r 10.244.2.2:8080"));
}

static void test_terminating_fallback(void **state)
{
	char *o = dump(*state);

	/* nothing ready: the serving, terminating endpoint is used */
	assert_non_null(strstr(o, "-a -t 10.0.0.13:80 -r 10.244.4.2:8080 -m -w 1\n"));
	assert_null(strstr(o, "10.244.5.2:8080"));
}

static void test_scheduler_flag(void **state)
{
	struct fx *f = *state;
	char *o;

	free(f->cfg.ipvs_scheduler);
	f->cfg.ipvs_scheduler = xstrdup("wlc");
	o = dump(f);
	assert_non_null(strstr(o, "-A -t 10.0.0.10:80 -s wlc\n"));
}

static void test_ipsets(void **state)
{
	char *o = dump(*state);

	assert_non_null(strstr(o, "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\n"));
	assert_non_null(strstr(o, "add KUBE-CLUSTER-IP 10.0.0.10,tcp:80\n"));
	assert_non_null(strstr(o, "add KUBE-EXTERNAL-IP 192.0.2.10,tcp:80\n"));
	assert_non_null(strstr(o, "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n"));
	/* hairpin entries only for endpoints on this node (n1) */
	assert_non_null(strstr(o, "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2\n"));
	assert_null(strstr(o, "add KUBE-LOOP-BACK 10.244.2.2"));
	assert_non_null(strstr(o, "add KUBE-IPVS-IPS 10.0.0.11\n"));
	assert_non_null(strstr(o, "add KUBE-IPVS-IPS 192.0.2.10\n"));
	/* entries are sorted and unique: the loop-back entry appears once
	 * although three services share the endpoint */
	char *first = strstr(o, "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2\n");
	assert_null(strstr(first + 1, "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2\n"));
}

static void test_iptables_rules(void **state)
{
	struct fx *f = *state;
	char *o = dump(f);

	assert_non_null(strstr(o, "-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" "
				  "-m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ\n"));
	assert_non_null(strstr(o, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"));
	assert_non_null(strstr(o, "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE"));
	assert_non_null(strstr(o, "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT\n"));
	assert_non_null(strstr(o, "-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" "
				  "-m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ\n"));
	assert_non_null(strstr(o, "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT"));
	assert_non_null(strstr(o, "*nat\n"));
	assert_non_null(strstr(o, "*filter\n"));

	/* --masquerade-all: no source condition */
	f->cfg.masquerade_all = true;
	o = dump(f);
	assert_non_null(strstr(o, "-m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ\n"));
	assert_null(strstr(o, "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"));
	/* another mark bit */
	f->cfg.masquerade_bit = 15;
	o = dump(f);
	assert_non_null(strstr(o, "-A KUBE-MARK-MASQ -j MARK --or-mark 0x8000\n"));
}

static void test_removed_service_disappears(void **state)
{
	struct fx *f = *state;
	char *o;

	store_delete_service(f->st, "ns", "sticky");
	o = dump(f);
	assert_null(strstr(o, "10.0.0.11"));
	assert_non_null(strstr(o, "-A -t 10.0.0.10:80 -s rr\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_virtual_servers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_affinity_is_persistence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_internal_traffic_policy_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminating_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scheduler_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iptables_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_service_disappears, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
