/* Userspace mode pure logic: port ranges, round robin + ClientIP
 * affinity, deadline queues, the UDP association table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <unistd.h>

#include "modes/userspace/us.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/util.h"

static void test_port_range(void **state)
{
	struct port_range r;
	char *err = NULL;

	assert_int_equal(port_range_parse("", &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(port_range_parse(NULL, &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(port_range_parse("0", &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(port_range_parse("0-0", &r, NULL), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(port_range_parse("30000-32767", &r, NULL), 0);
	assert_int_equal(r.lo, 30000);
	assert_int_equal(r.n, 2768);
	assert_int_equal(port_range_parse("30000+2767", &r, NULL), 0);
	assert_int_equal(r.lo, 30000);
	assert_int_equal(r.n, 2768);
	assert_int_equal(port_range_parse("8080", &r, NULL), 0);
	assert_int_equal(r.lo, 8080);
	assert_int_equal(r.n, 1);
	assert_int_equal(port_range_parse("65535-65535", &r, NULL), 0);
	assert_int_equal(r.n, 1);

	static const char *const bad[] = { "abc", "10-", "-10", "20-10", "1-65536", "65000+1000",
					   "0-10", "10-20x", " 10-20", "10--20", "+5", "70000" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(port_range_parse(bad[i], &r, &err), -EINVAL);
		assert_non_null(err);
		assert_non_null(strstr(err, bad[i]));
		free_and_null(&err);
	}
}

static struct lb_ep ep(const char *ip, uint16_t port)
{
	struct lb_ep e = { .port = port };

	assert_int_equal(addr_parse(ip, &e.ip), 0);
	return e;
}

static int which(const struct lb_ep *eps, size_t n, const struct lb_ep *e)
{
	for (size_t i = 0; i < n; i++)
		if (addr_equal(&eps[i].ip, &e->ip) && eps[i].port == e->port)
			return (int)i;
	return -1;
}

static void test_round_robin(void **state)
{
	struct lb lb;
	struct lb_ep eps[3] = { ep("10.1.0.1", 80), ep("10.1.0.2", 80), ep("10.1.0.3", 8080) };
	struct lb_ep got;
	int hits[3] = { 0 };

	lb_init(&lb, false, 0);
	assert_int_equal(lb_pick(&lb, NULL, 0, false, &got), -ENOENT);
	assert_true(lb_set(&lb, eps, 3, true));
	/* The same set in another order is no change. */
	{
		struct lb_ep rev[3] = { eps[2], eps[1], eps[0] };

		assert_false(lb_set(&lb, rev, 3, true));
	}
	for (int i = 0; i < 30; i++) {
		int w;

		assert_int_equal(lb_pick(&lb, NULL, 0, false, &got), 0);
		w = which(eps, 3, &got);
		assert_true(w >= 0);
		hits[w]++;
	}
	/* Round robin: every endpoint exactly 10 times. */
	assert_int_equal(hits[0], 10);
	assert_int_equal(hits[1], 10);
	assert_int_equal(hits[2], 10);

	/* Removing an endpoint: it is never picked again. */
	assert_true(lb_set(&lb, eps, 2, false));
	for (int i = 0; i < 10; i++) {
		assert_int_equal(lb_pick(&lb, NULL, 0, false, &got), 0);
		assert_int_not_equal(which(eps, 3, &got), 2);
	}
	assert_true(lb_set(&lb, NULL, 0, false));
	assert_int_equal(lb_pick(&lb, NULL, 0, false, &got), -ENOENT);
	lb_fini(&lb);
}

static void test_affinity(void **state)
{
	struct lb lb;
	struct lb_ep eps[3] = { ep("10.1.0.1", 80), ep("10.1.0.2", 80), ep("10.1.0.3", 80) };
	struct addr c1, c2;
	struct lb_ep first, got, other;

	addr_parse("192.168.1.1", &c1);
	addr_parse("192.168.1.2", &c2);
	lb_init(&lb, true, 10);   /* 10 s */
	lb_set(&lb, eps, 3, false);
	assert_int_equal(lb_pick(&lb, &c1, 1000, false, &first), 0);
	/* Sticks, even while other clients rotate the cursor. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(lb_pick(&lb, &c2, 1000 + (unsigned)i * 100, false, &other), 0);
		assert_int_equal(lb_pick(&lb, &c1, 1000 + (unsigned)i * 100, false, &got), 0);
		assert_int_equal(which(eps, 3, &got), which(eps, 3, &first));
	}
	/* A retry after a failed connect moves on (and re-sticks there). */
	assert_int_equal(lb_pick(&lb, &c1, 5000, true, &got), 0);
	assert_int_not_equal(which(eps, 3, &got), which(eps, 3, &first));
	first = got;
	assert_int_equal(lb_pick(&lb, &c1, 5001, false, &got), 0);
	assert_int_equal(which(eps, 3, &got), which(eps, 3, &first));
	/* Expiry: idle > 10 s is forgotten by lb_expire; a fresh pick may
	 * land anywhere, but the entry is recreated for the new choice. */
	lb_expire(&lb, 5001 + 10001);
	assert_int_equal(lb.sticky.len, 0);
	/* Endpoint removal drops stickiness to it. */
	assert_int_equal(lb_pick(&lb, &c1, 20000, false, &first), 0);
	{
		struct lb_ep keep[2];
		size_t n = 0;

		for (int i = 0; i < 3; i++)
			if (which(&first, 1, &eps[i]) < 0)
				keep[n++] = eps[i];
		assert_int_equal(n, 2);
		assert_true(lb_set(&lb, keep, 2, false));
		assert_int_equal(lb_pick(&lb, &c1, 20001, false, &got), 0);
		assert_true(which(keep, 2, &got) >= 0);
	}
	lb_fini(&lb);
}

static void test_usable_endpoints(void **state)
{
	struct svc_endpoint e[3] = { 0 };
	struct svc_port_info pi = { .eps = e, .n_eps = 3 };
	struct lb_ep out[3];

	addr_parse("10.1.0.1", &e[0].ip);
	addr_parse("10.1.0.2", &e[1].ip);
	addr_parse("10.1.0.3", &e[2].ip);
	e[0].ready = e[0].serving = true;
	e[1].serving = e[1].terminating = true;
	e[2].terminating = true;   /* not serving: never used */
	assert_int_equal(lb_usable_endpoints(&pi, out), 1);
	assert_true(addr_equal(&out[0].ip, &e[0].ip));
	/* No ready endpoint: serving+terminating ones. */
	e[0].ready = e[0].serving = false;
	assert_int_equal(lb_usable_endpoints(&pi, out), 1);
	assert_true(addr_equal(&out[0].ip, &e[1].ip));
	e[1].serving = false;
	assert_int_equal(lb_usable_endpoints(&pi, out), 0);
}

struct item {
	struct dq_node n;
	int id;
};

static void test_deadline_queue(void **state)
{
	struct dqueue q;
	struct item it[4] = { { .id = 0 }, { .id = 1 }, { .id = 2 }, { .id = 3 } };
	struct dq_node *n;

	dq_init(&q);
	assert_null(dq_first(&q));
	assert_true(dq_add(&q, &it[0].n, 500));
	assert_false(dq_add(&q, &it[1].n, 750));
	assert_true(dq_add(&q, &it[2].n, 250));   /* new earliest */
	assert_false(dq_add(&q, &it[3].n, 750));  /* ties keep insertion order */
	assert_int_equal(q.n, 4);
	assert_null(dq_pop_expired(&q, 249));
	n = dq_pop_expired(&q, 600);
	assert_int_equal(us_container_of(n, struct item, n)->id, 2);
	n = dq_pop_expired(&q, 600);
	assert_int_equal(us_container_of(n, struct item, n)->id, 0);
	assert_null(dq_pop_expired(&q, 600));
	/* Touch (re-add) moves an entry behind the others. */
	assert_false(dq_add(&q, &it[1].n, 1000));
	n = dq_pop_expired(&q, 2000);
	assert_int_equal(us_container_of(n, struct item, n)->id, 3);
	dq_del(&q, &it[1].n);
	dq_del(&q, &it[1].n);   /* twice is harmless */
	assert_int_equal(q.n, 0);
	assert_null(dq_pop_expired(&q, 5000));
}

static void test_udp_table(void **state)
{
	struct udp_table t;
	struct udp_assoc *a = xcalloc(200, sizeof(*a));
	struct addr local, other_local;

	addr_parse("10.244.0.1", &local);
	addr_parse("192.168.77.1", &other_local);
	udp_table_init(&t);
	for (int i = 0; i < 200; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.244.%d.%d", i / 50, i % 50 + 1);
		addr_parse(ip, &a[i].client);
		a[i].client_port = (uint16_t)(40000 + i % 3);
		a[i].local = local;
		udp_table_insert(&t, &a[i]);
	}
	assert_int_equal(t.n, 200);
	assert_true(t.nbuckets >= 128);   /* grew */
	for (int i = 0; i < 200; i++)
		assert_ptr_equal(udp_table_find(&t, &a[i].client, a[i].client_port, &local), &a[i]);
	/* Same client, other port or other local address: another association. */
	assert_null(udp_table_find(&t, &a[7].client, 1, &local));
	assert_null(udp_table_find(&t, &a[7].client, a[7].client_port, &other_local));
	for (int i = 0; i < 200; i += 2)
		udp_table_remove(&t, &a[i]);
	assert_int_equal(t.n, 100);
	for (int i = 0; i < 200; i++) {
		struct udp_assoc *f = udp_table_find(&t, &a[i].client, a[i].client_port, &local);

		if (i % 2)
			assert_ptr_equal(f, &a[i]);
		else
			assert_null(f);
	}
	udp_table_fini(&t);
	free(a);
}

static void test_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct addr a, b;
	uint16_t port;
	char buf[US_EPSTRLEN];

	addr_parse("fd00::1", &a);
	assert_int_equal(us_sockaddr(&a, 8080, &ss), sizeof(struct sockaddr_in6));
	us_from_sockaddr(&ss, &b, &port);
	assert_true(addr_equal(&a, &b));
	assert_int_equal(port, 8080);
	assert_string_equal(us_ep_str(&a, 8080, buf), "[fd00::1]:8080");
	addr_parse("10.0.0.10", &a);
	assert_int_equal(us_sockaddr(&a, 53, &ss), sizeof(struct sockaddr_in));
	us_from_sockaddr(&ss, &b, &port);
	assert_true(addr_equal(&a, &b));
	assert_string_equal(us_ep_str(&b, port, buf), "10.0.0.10:53");
}

static bool port_free(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	close(fd);
	return ok;
}

static struct us_port *mk_tcp_port(struct us_ctx *ctx, const char *spn)
{
	struct us_port *p = xcalloc(1, sizeof(*p));

	p->ctx = ctx;
	p->spn = xstrdup(spn);
	p->key = xstrdup(spn);
	p->family = AF_INET;
	p->proto = PROTO_TCP;
	p->fd = -1;
	p->refs = 1;
	addr_parse("10.0.0.1", &p->cluster_ip);
	lb_init(&p->lb, false, 0);
	udp_table_init(&p->udp);
	return p;
}

/* Proxy ports come from the range in order, held ports are skipped, a
 * full range fails with EADDRINUSE, a closed port is handed out again. */
static void test_range_allocation(void **state)
{
	struct us_ctx ctx = { 0 };
	struct us_port *a, *b, *c;
	uint16_t lo = 0;
	char spec[32];

	for (uint16_t port = 41000; port < 41400 && !lo; port += 2)
		if (port_free(port) && port_free((uint16_t)(port + 1)))
			lo = port;
	if (!lo)
		skip();
	snprintf(spec, sizeof(spec), "%u+1", lo);
	assert_int_equal(port_range_parse(spec, &ctx.range, NULL), 0);
	assert_int_equal(ctx.range.n, 2);
	ctx.range_used = xcalloc(1, 1);
	ctx.bind_any = true;
	ctx.loop = loop_new();
	strmap_init(&ctx.ports);
	log_set_stderr(0);

	a = mk_tcp_port(&ctx, "t/a:p");
	b = mk_tcp_port(&ctx, "t/b:p");
	c = mk_tcp_port(&ctx, "t/c:p");
	assert_int_equal(us_port_open(&ctx, a), 0);
	assert_int_equal(a->proxy_port, lo);
	assert_int_equal(us_port_open(&ctx, b), 0);
	assert_int_equal(b->proxy_port, lo + 1);
	assert_false(port_free(lo));   /* really bound */
	assert_int_equal(us_port_open(&ctx, c), -EADDRINUSE);
	us_port_close(a);              /* frees a */
	assert_int_equal(us_port_open(&ctx, c), 0);
	assert_int_equal(c->proxy_port, lo);
	us_port_close(b);
	us_port_close(c);
	assert_true(port_free(lo));
	assert_true(port_free((uint16_t)(lo + 1)));
	strmap_free(&ctx.ports);
	free(ctx.range_used);
	loop_free(ctx.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_range),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_affinity),
		cmocka_unit_test(test_usable_endpoints),
		cmocka_unit_test(test_deadline_queue),
		cmocka_unit_test(test_udp_table),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test(test_range_allocation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
