#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "src/log.h"
#include "src/loop.h"
#include "src/svc_health.h"
#include "src/util.h"

struct fx {
	struct loop *loop;
	struct svc_health *sh;
	bool proxy_ok;
	struct service svc;
	struct service_port ports[2];
	struct svc_endpoint eps[3];
	struct svc_port_info spi[2];
	struct proxy_state ps;
};

static bool proxy_healthy(void *arg)
{
	return ((struct fx *)arg)->proxy_ok;
}

static void quit_cb(struct loop *l, struct loop_timer *t, void *arg)
{
	loop_quit(l);
}

static void spin(struct loop *l, unsigned ms)
{
	struct loop_timer *t = loop_timer_new(l, quit_cb, NULL);

	loop_timer_arm(t, ms);
	loop_run(l);
	loop_timer_free(t);
}

static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static struct svc_endpoint ep(const char *ip, bool ready, bool local)
{
	struct svc_endpoint e = { .port = 80, .ready = ready, .serving = ready, .is_local = local };

	assert_int_equal(addr_parse(ip, &e.ip), 0);
	return e;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	struct addr lo;

	log_set_stderr(0);
	f->loop = loop_new();
	f->proxy_ok = true;
	assert_int_equal(addr_parse("127.0.0.1", &lo), 0);
	f->sh = svc_health_new(f->loop, &lo, 1, proxy_healthy, f);
	f->svc.ns = "ns1";
	f->svc.name = "svc1";
	f->svc.type = SVC_LOAD_BALANCER;
	f->svc.etp_local = true;
	f->svc.health_check_node_port = free_port();
	f->svc.ports = f->ports;
	f->svc.n_ports = 2;
	f->ports[0] = (struct service_port){ .name = "a", .proto = PROTO_TCP, .port = 80 };
	f->ports[1] = (struct service_port){ .name = "b", .proto = PROTO_UDP, .port = 53 };
	/* Ready local (in both ports: one IP), unready local, ready remote. */
	f->eps[0] = ep("10.0.0.1", true, true);
	f->eps[1] = ep("10.0.0.2", false, true);
	f->eps[2] = ep("10.0.0.3", true, false);
	for (int i = 0; i < 2; i++) {
		f->spi[i].key = "ns1/svc1";
		f->spi[i].spn = i ? "ns1/svc1:b" : "ns1/svc1:a";
		f->spi[i].svc = &f->svc;
		f->spi[i].port = &f->ports[i];
		f->spi[i].family = AF_INET;
		f->spi[i].eps = f->eps;
		f->spi[i].n_eps = 3;
	}
	f->ps.ports = f->spi;
	f->ps.n_ports = 2;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	svc_health_free(f->sh);
	loop_free(f->loop);
	free(f);
	return 0;
}

/* GETs / on 127.0.0.1:port through the loop. Returns the raw response, or
 * NULL when the connection is refused. */
static char *probe(struct fx *f, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const char req[] = "GET /anything HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n";
	struct strbuf sb;
	char buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	spin(f->loop, 20);
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0) {
		close(fd);
		return NULL;
	}
	spin(f->loop, 50);
	sb_init(&sb);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n <= 0)
			break;
		sb_add(&sb, buf, (size_t)n);
	}
	close(fd);
	return sb_steal(&sb);
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	return b ? b + 4 : "";
}

static void test_transitions(void **state)
{
	struct fx *f = *state;
	uint16_t port = f->svc.health_check_node_port;
	char *r;

	/* Before any sync: no listener. */
	assert_null(probe(f, port));

	svc_health_sync(f->sh, &f->ps);
	assert_int_equal(svc_health_count(f->sh), 1);
	assert_int_equal(svc_health_local_endpoints(f->sh, "ns1/svc1"), 1);
	r = probe(f, port);
	assert_non_null(r);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(r, "X-Content-Type-Options: nosniff\r\n"));
	assert_string_equal(body_of(r),
			    "{\n\t\"service\": {\n\t\t\"namespace\": \"ns1\",\n\t\t\"name\": \"svc1\"\n\t},\n"
			    "\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}");
	free(r);

	/* The local endpoint becomes unready: 503, 0 endpoints. */
	f->eps[0].ready = false;
	svc_health_sync(f->sh, &f->ps);
	r = probe(f, port);
	assert_true(strncmp(r, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
	assert_non_null(strstr(body_of(r), "\"localEndpoints\": 0,"));
	free(r);

	/* Two local ready endpoints now. */
	f->eps[0].ready = true;
	f->eps[1].ready = true;
	svc_health_sync(f->sh, &f->ps);
	r = probe(f, port);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(body_of(r), "\"localEndpoints\": 2,"));
	free(r);

	/* The proxy is unhealthy: 503 even with endpoints. */
	f->proxy_ok = false;
	r = probe(f, port);
	assert_true(strncmp(r, "HTTP/1.1 503 ", 13) == 0);
	assert_non_null(strstr(body_of(r), "\"serviceProxyHealthy\": false"));
	free(r);
	f->proxy_ok = true;

	/* The service turns to externalTrafficPolicy Cluster: listener gone. */
	f->svc.etp_local = false;
	svc_health_sync(f->sh, &f->ps);
	assert_int_equal(svc_health_count(f->sh), 0);
	assert_int_equal(svc_health_local_endpoints(f->sh, "ns1/svc1"), -1);
	spin(f->loop, 10);
	assert_null(probe(f, port));
}

static void test_port_change_and_retry(void **state)
{
	struct fx *f = *state;
	uint16_t p1 = f->svc.health_check_node_port, p2 = free_port();
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(p2),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int squatter, one = 1;
	char *r;

	svc_health_sync(f->sh, &f->ps);
	r = probe(f, p1);
	assert_non_null(r);
	free(r);

	/* New port, but someone else holds it: logged, no listener, retried. */
	squatter = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(squatter, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(squatter, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(squatter, 1), 0);
	f->svc.health_check_node_port = p2;
	svc_health_sync(f->sh, &f->ps);
	assert_int_equal(svc_health_count(f->sh), 0);
	assert_null(probe(f, p1));
	close(squatter);

	svc_health_sync(f->sh, &f->ps);
	assert_int_equal(svc_health_count(f->sh), 1);
	r = probe(f, p2);
	assert_non_null(r);
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(r);

	/* Service gone from the state entirely. */
	svc_health_sync(f->sh, NULL);
	assert_int_equal(svc_health_count(f->sh), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_change_and_retry, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
