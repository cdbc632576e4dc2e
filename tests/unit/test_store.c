#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "src/store.h"
#include "src/util.h"

static struct service *mk_svc(const char *ns, const char *name, const char *ip, int nports)
{
	struct service *s = xcalloc(1, sizeof(*s));

	s->ns = xstrdup(ns);
	s->name = xstrdup(name);
	s->type = SVC_CLUSTER_IP;
	if (ip) {
		addr_parse(ip, &s->cluster_ips[0]);
		s->n_cluster_ips = 1;
	}
	s->affinity_timeout = 10800;
	s->n_ports = (size_t)nports;
	s->ports = xcalloc((size_t)nports, sizeof(*s->ports));
	for (int i = 0; i < nports; i++) {
		s->ports[i].name = xasprintf("p%d", 80 + i);
		s->ports[i].proto = PROTO_TCP;
		s->ports[i].port = (uint16_t)(80 + i);
	}
	return s;
}

/* A slice for service `svc` with endpoints "ip" or "ip!" (not ready) or
 * "ip@node" (on a node). Ports p80->8080, p81->8081. */
static struct endpoint_slice *mk_slice(const char *ns, const char *name, const char *svc,
				       const char *const *eps, size_t n)
{
	struct endpoint_slice *s = xcalloc(1, sizeof(*s));

	s->ns = xstrdup(ns);
	s->name = xstrdup(name);
	s->service_name = xstrdup(svc);
	s->family = AF_INET;
	s->n_ports = 2;
	s->ports = xcalloc(2, sizeof(*s->ports));
	for (int i = 0; i < 2; i++) {
		s->ports[i].name = xasprintf("p%d", 80 + i);
		s->ports[i].proto = PROTO_TCP;
		s->ports[i].port = (uint16_t)(8080 + i);
	}
	s->n_endpoints = n;
	s->endpoints = xcalloc(n, sizeof(*s->endpoints));
	for (size_t i = 0; i < n; i++) {
		char *ip = xstrdup(eps[i]);
		char *at = strchr(ip, '@');
		char *bang = strchr(ip, '!');

		if (at) {
			*at = '\0';
			s->endpoints[i].node_name = xstrdup(at + 1);
		}
		s->endpoints[i].ready = !bang;
		s->endpoints[i].serving = !bang;
		if (bang)
			*bang = '\0';
		assert_int_equal(addr_parse(ip, &s->endpoints[i].addr), 0);
		free(ip);
	}
	return s;
}

static void test_snapshot_basic(void **state)
{
	struct store *st = store_new("node-a");
	static const char *const eps1[] = { "10.1.0.9", "10.1.0.10@node-a" };
	static const char *const eps2[] = { "10.1.0.11!", "10.1.0.9" };
	struct dirty_set d = { 0 };
	struct proxy_state *ps;
	char buf[ADDR_STRLEN];

	store_upsert_service(st, mk_svc("default", "web", "10.0.0.10", 2));
	store_upsert_service(st, mk_svc("default", "api", "10.0.0.11", 1));
	store_upsert_slice(st, mk_slice("default", "web-a", "web", eps1, 2));
	store_upsert_slice(st, mk_slice("default", "web-b", "web", eps2, 2));
	assert_true(store_has_changes(st));
	ps = store_snapshot(st, &d);
	assert_false(store_has_changes(st));
	assert_int_equal(d.n, 2);
	assert_string_equal(d.keys[0], "default/api");
	assert_string_equal(d.keys[1], "default/web");
	assert_int_equal(ps->n_services, 2);
	assert_int_equal(ps->n_ports, 3);
	assert_string_equal(ps->ports[0].spn, "default/api:p80");
	assert_int_equal(ps->ports[0].n_eps, 0);
	assert_string_equal(ps->ports[1].spn, "default/web:p80");
	assert_string_equal(ps->ports[2].spn, "default/web:p81");
	/* 10.1.0.9 appears in both slices: once. String order: .10 < .11 < .9 */
	assert_int_equal(ps->ports[1].n_eps, 3);
	assert_string_equal(addr_str(&ps->ports[1].eps[0].ip, buf), "10.1.0.10");
	assert_true(ps->ports[1].eps[0].is_local);
	assert_int_equal(ps->ports[1].eps[0].port, 8080);
	assert_int_equal(ps->ports[2].eps[0].port, 8081);
	assert_string_equal(addr_str(&ps->ports[1].eps[1].ip, buf), "10.1.0.11");
	assert_false(ps->ports[1].eps[1].ready);
	assert_string_equal(addr_str(&ps->ports[1].eps[2].ip, buf), "10.1.0.9");
	assert_false(ps->ports[1].eps[2].is_local);
	assert_int_equal(ps->n_endpoints, 6);
	proxy_state_free(ps);
	dirty_set_clear(&d);
	store_free(st);
}

static void test_change_tracking(void **state)
{
	struct store *st = store_new(NULL);
	static const char *const eps[] = { "10.1.0.1" };
	static const char *const eps2[] = { "10.1.0.2" };
	struct dirty_set d = { 0 };

	store_upsert_service(st, mk_svc("a", "s1", "10.0.0.1", 1));
	store_upsert_service(st, mk_svc("a", "s2", "10.0.0.2", 1));
	store_upsert_slice(st, mk_slice("a", "s1-x", "s1", eps, 1));
	proxy_state_free(store_snapshot(st, &d));
	assert_int_equal(d.n, 2);

	/* Identical updates mark nothing. */
	store_upsert_service(st, mk_svc("a", "s1", "10.0.0.1", 1));
	store_upsert_slice(st, mk_slice("a", "s1-x", "s1", eps, 1));
	assert_false(store_has_changes(st));

	/* An endpoint change marks its service only. */
	store_upsert_slice(st, mk_slice("a", "s1-x", "s1", eps2, 1));
	proxy_state_free(store_snapshot(st, &d));
	assert_int_equal(d.n, 1);
	assert_true(dirty_has(&d, "a/s1"));
	assert_false(dirty_has(&d, "a/s2"));

	/* Deleting a service marks it; deleting something absent does not. */
	store_delete_service(st, "a", "s2");
	store_delete_service(st, "a", "nope");
	store_delete_slice(st, "a", "nope");
	proxy_state_free(store_snapshot(st, &d));
	assert_int_equal(d.n, 1);
	assert_true(dirty_has(&d, "a/s2"));
	assert_int_equal(store_n_services(st), 1);
	assert_int_equal(store_service_changes(st), 3);
	assert_int_equal(store_endpoint_changes(st), 2);

	/* Deleting a slice marks the service it belonged to. */
	store_delete_slice(st, "a", "s1-x");
	proxy_state_free(store_snapshot(st, &d));
	assert_true(dirty_has(&d, "a/s1"));
	assert_int_equal(store_n_slices(st), 0);
	dirty_set_clear(&d);
	store_free(st);
}

static void test_skipped_services(void **state)
{
	struct store *st = store_new(NULL);
	struct service *ext = mk_svc("a", "ext", NULL, 1);
	struct service *headless = mk_svc("a", "hl", NULL, 1);
	struct proxy_state *ps;

	ext->type = SVC_EXTERNAL_NAME;
	headless->headless = true;
	store_upsert_service(st, ext);
	store_upsert_service(st, headless);
	store_upsert_service(st, mk_svc("a", "ok", "10.0.0.3", 1));
	ps = store_snapshot(st, NULL);
	assert_int_equal(ps->n_ports, 1);
	assert_string_equal(ps->ports[0].key, "a/ok");
	/* Without a dirty set, tracking is left alone. */
	assert_true(store_has_changes(st));
	proxy_state_free(ps);
	store_free(st);
}

static void test_slice_moves_between_services(void **state)
{
	struct store *st = store_new(NULL);
	static const char *const eps[] = { "10.1.0.1" };
	struct dirty_set d = { 0 };
	struct proxy_state *ps;

	store_upsert_service(st, mk_svc("a", "s1", "10.0.0.1", 1));
	store_upsert_service(st, mk_svc("a", "s2", "10.0.0.2", 1));
	store_upsert_slice(st, mk_slice("a", "x", "s1", eps, 1));
	proxy_state_free(store_snapshot(st, &d));
	store_upsert_slice(st, mk_slice("a", "x", "s2", eps, 1));
	ps = store_snapshot(st, &d);
	assert_int_equal(d.n, 2);
	assert_int_equal(ps->ports[0].n_eps, 0);
	assert_int_equal(ps->ports[1].n_eps, 1);
	proxy_state_free(ps);
	dirty_set_clear(&d);
	store_free(st);
}

static void test_usable_endpoints(void **state)
{
	struct svc_endpoint eps[4] = { 0 };
	struct svc_port_info pi = { .eps = eps, .n_eps = 4 };
	size_t idx[4];

	/* 0: ready remote, 1: ready local, 2: terminating+serving local,
	 * 3: terminating, not serving */
	eps[0].ready = eps[0].serving = true;
	eps[1].ready = eps[1].serving = eps[1].is_local = true;
	eps[2].serving = eps[2].terminating = eps[2].is_local = true;
	eps[3].terminating = true;
	assert_int_equal(svc_usable_endpoints(&pi, false, idx), 2);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 1);
	assert_int_equal(svc_usable_endpoints(&pi, true, idx), 1);
	assert_int_equal(idx[0], 1);
	/* No local ready endpoint: the local serving+terminating one. */
	eps[1].ready = false;
	assert_int_equal(svc_usable_endpoints(&pi, true, idx), 1);
	assert_int_equal(idx[0], 2);
	/* Cluster-wide there is still a ready one: terminating ones are out. */
	assert_int_equal(svc_usable_endpoints(&pi, false, idx), 1);
	assert_int_equal(idx[0], 0);
	eps[0].ready = false;
	assert_int_equal(svc_usable_endpoints(&pi, false, idx), 1);
	assert_int_equal(idx[0], 2);
	eps[2].serving = false;
	assert_int_equal(svc_usable_endpoints(&pi, false, idx), 0);
}

static void hint(struct endpoint *e, const char *zone)
{
	e->hint_zones = xrealloc(e->hint_zones, (e->n_hint_zones + 1) * sizeof(char *));
	e->hint_zones[e->n_hint_zones++] = xstrdup(zone);
}

/* Upstream's canUseTopology, decided in the snapshot. */
static void test_topology(void **state)
{
	struct store *st = store_new("node-a");
	static const char *const eps[] = { "10.1.0.1", "10.1.0.2", "10.1.0.3!" };
	struct endpoint_slice *sl = mk_slice("ns", "web-x", "web", eps, 3);
	struct node_info *node = xcalloc(1, sizeof(*node));
	struct dirty_set seen = { 0 };
	struct proxy_state *ps;
	size_t idx[3];

	hint(&sl->endpoints[0], "zone-a");
	hint(&sl->endpoints[1], "zone-b");      /* the unready .3 has no hints: fine */
	store_upsert_service(st, mk_svc("ns", "web", "10.0.0.9", 1));
	store_upsert_slice(st, sl);

	/* No node zone yet: no topology. */
	ps = store_snapshot(st, NULL);
	assert_false(ps->ports[0].topology);
	proxy_state_free(ps);

	node->name = xstrdup("node-a");
	node->zone = xstrdup("zone-a");
	store_set_node(st, node);
	ps = store_snapshot(st, NULL);
	assert_true(ps->ports[0].topology);
	assert_true(ps->ports[0].eps[0].zone_hinted);
	assert_false(ps->ports[0].eps[1].zone_hinted);
	assert_int_equal(svc_usable_endpoints(&ps->ports[0], false, idx), 1);
	assert_int_equal(idx[0], 0);
	proxy_state_free(ps);

	/* A ready endpoint without hints turns topology off. */
	sl = mk_slice("ns", "web-x", "web", eps, 3);
	hint(&sl->endpoints[0], "zone-a");
	store_upsert_slice(st, sl);
	ps = store_snapshot(st, NULL);
	assert_false(ps->ports[0].topology);
	assert_int_equal(svc_usable_endpoints(&ps->ports[0], false, idx), 2);
	proxy_state_free(ps);

	/* No endpoint hinted for our zone: off too. */
	sl = mk_slice("ns", "web-x", "web", eps, 3);
	hint(&sl->endpoints[0], "zone-c");
	hint(&sl->endpoints[1], "zone-b");
	store_upsert_slice(st, sl);
	ps = store_snapshot(st, NULL);
	assert_false(ps->ports[0].topology);
	proxy_state_free(ps);

	/* A Node update that keeps zone and pod CIDRs (a taint, a status
	 * heartbeat) marks nothing dirty; a new zone marks every service. */
	ps = store_snapshot(st, &seen);    /* takes the pending changes */
	dirty_set_clear(&seen);
	proxy_state_free(ps);
	assert_false(store_has_changes(st));
	node = xcalloc(1, sizeof(*node));
	node->name = xstrdup("node-a");
	node->zone = xstrdup("zone-a");
	node->terminating = true;
	store_set_node(st, node);
	assert_false(store_has_changes(st));
	assert_true(store_node(st)->terminating);
	node = xcalloc(1, sizeof(*node));
	node->name = xstrdup("node-a");
	node->zone = xstrdup("zone-b");
	store_set_node(st, node);
	assert_true(store_has_changes(st));
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_basic),
		cmocka_unit_test(test_change_tracking),
		cmocka_unit_test(test_skipped_services),
		cmocka_unit_test(test_slice_moves_between_services),
		cmocka_unit_test(test_usable_endpoints),
		cmocka_unit_test(test_topology),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
