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

#include "modes/mode.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/obs.h"
#include "src/runner.h"
#include "src/store.h"
#include "src/util.h"

/* A mode that programs nothing: obs only needs a runner to read stats from. */
static int fake_sync(struct mode_ctx *ctx, const struct proxy_state *ps,
		     const struct dirty_set *changed, bool full, struct sync_stats *stats)
{
	return 0;
}

static const struct proxy_mode fake_mode = { .name = "iptables", .sync = fake_sync };

struct fx {
	struct loop *loop;
	struct store *store;
	struct mode_ctx ctx;
	struct runner *runner;
	struct config cfg;
	uint16_t hport, mport;
};

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

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	log_set_stderr(0);
	f->loop = loop_new();
	f->store = store_new("node1");
	f->runner = runner_new(f->loop, f->store, &fake_mode, &f->ctx, 0, 30000);
	config_defaults(&f->cfg);
	/* Unit tests run in the machine's namespace: never touch its sysctls
	 * or this process's OOM score. */
	f->cfg.conntrack_max_per_core = 0;
	f->cfg.conntrack_tcp_established_s = 0;
	f->cfg.conntrack_tcp_close_wait_s = 0;
	f->cfg.conntrack_udp_timeout_s = 0;
	f->cfg.conntrack_udp_stream_timeout_s = 0;
	f->cfg.oom_score_adj = 0;
	f->cfg.oom_score_adj_set = false;
	f->hport = free_port();
	f->mport = free_port();
	free(f->cfg.healthz_bind_address);
	free(f->cfg.metrics_bind_address);
	f->cfg.healthz_bind_address = xasprintf("127.0.0.1:%u", f->hport);
	f->cfg.metrics_bind_address = xasprintf("127.0.0.1:%u", f->mport);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	runner_free(f->runner);
	store_free(f->store);
	config_free(&f->cfg);
	loop_free(f->loop);
	free(f);
	return 0;
}

static void quit_cb(struct loop *l, struct loop_timer *t, void *arg)
{
	loop_quit(l);
}

/* GET path on 127.0.0.1:port through the loop; NULL when refused. */
static char *get(struct fx *f, uint16_t port, const char *path)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct loop_timer *t = loop_timer_new(f->loop, quit_cb, NULL);
	char *req = xasprintf("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	struct strbuf sb;
	char buf[8192];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		free(req);
		loop_timer_free(t);
		return NULL;
	}
	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	free(req);
	loop_timer_arm(t, 60);
	loop_run(f->loop);
	loop_timer_free(t);
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

static void test_servers(void **state)
{
	struct fx *f = *state;
	char *err = NULL, *r;
	struct obs *o = obs_start(f->loop, &f->cfg, "iptables", f->runner, f->store, &err);
	struct runner_stats st = { .last_duration_s = 0.002, .last_full = true };
	struct proxy_state ps = { 0 };

	assert_non_null(o);
	r = get(f, f->hport, "/healthz");
	assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(r, "\"nodeEligible\": true"));
	free(r);
	r = get(f, f->mport, "/proxyMode");
	assert_true(str_has_suffix(r, "\r\n\r\niptables"));
	free(r);
	r = get(f, f->mport, "/configz");
	assert_non_null(strstr(r, "{\"kubeproxy.config.k8s.io\":{"));
	assert_non_null(strstr(r, "\"mode\":\"iptables\""));
	free(r);
	r = get(f, f->mport, "/healthz");
	assert_true(str_has_suffix(r, "\r\n\r\nok"));
	free(r);
	r = get(f, f->mport, "/nothing");
	assert_true(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
	free(r);

	/* A recorded sync shows up in /metrics, and so does the probe above. */
	obs_on_sync(o, &ps, true, &st, wall_time() - 0.5);
	r = get(f, f->mport, "/metrics");
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(r, "\nkubeproxy_sync_full_proxy_rules_duration_seconds_count 1\n"));
	assert_non_null(strstr(r, "\nkubeproxy_sync_partial_proxy_rules_duration_seconds_count 0\n"));
	assert_non_null(strstr(r, "\nkubeproxy_network_programming_duration_seconds_count 1\n"));
	assert_non_null(strstr(r, "\nkubeproxy_proxy_healthz_total{code=\"200\"} 1\n"));
	free(r);
	assert_true(obs_healthy(o));
	obs_stop(o);
	/* Stopped: nothing listens any more. */
	assert_null(get(f, f->hport, "/healthz"));
}

static void test_disabled_and_errors(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	struct obs *o;
	int squat;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	/* "" and port 0 disable the servers. */
	free(f->cfg.healthz_bind_address);
	free(f->cfg.metrics_bind_address);
	f->cfg.healthz_bind_address = xstrdup("");
	f->cfg.metrics_bind_address = xasprintf("127.0.0.1:0");
	o = obs_start(f->loop, &f->cfg, "iptables", f->runner, f->store, &err);
	assert_non_null(o);
	assert_null(get(f, f->hport, "/healthz"));
	obs_stop(o);

	/* A taken port: refused, and the message names the flag. */
	squat = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_port = htons(f->mport);
	assert_int_equal(bind(squat, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(squat, 1), 0);
	free(f->cfg.metrics_bind_address);
	f->cfg.metrics_bind_address = xasprintf("127.0.0.1:%u", f->mport);
	o = obs_start(f->loop, &f->cfg, "iptables", f->runner, f->store, &err);
	assert_null(o);
	assert_non_null(err);
	assert_non_null(strstr(err, "--metrics-bind-address"));
	free(err);
	err = NULL;
	close(squat);

	/* A malformed address: refused too. */
	free(f->cfg.metrics_bind_address);
	f->cfg.metrics_bind_address = xstrdup("localhost:x");
	assert_null(obs_start(f->loop, &f->cfg, "iptables", f->runner, f->store, &err));
	assert_non_null(strstr(err, "localhost:x"));
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_servers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_and_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
