#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "src/http.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/util.h"

struct fixture {
	struct loop *loop;
	struct http_server *srv;
	int handled;
};

static void handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct fixture *f = arg;

	f->handled++;
	if (strcmp(req->path, "/hello") == 0) {
		sb_printf(&resp->body, "hello %s q=%s", req->method, req->query);
	} else if (strcmp(req->path, "/big") == 0) {
		sb_grow(&resp->body, 4 << 20);
		memset(resp->body.buf, 'x', 4 << 20);
		resp->body.len = 4 << 20;
	} else {
		resp->status = 404;
		sb_puts(&resp->body, "nope");
	}
}

static void quit_cb(struct loop *l, struct loop_timer *t, void *arg)
{
	loop_quit(l);
}

/* Runs the loop for ms milliseconds. */
static void spin(struct loop *l, unsigned ms)
{
	struct loop_timer *t = loop_timer_new(l, quit_cb, NULL);

	loop_timer_arm(t, ms);
	loop_run(l);
	loop_timer_free(t);
}

static struct fixture *setup_with(const struct http_limits *lim)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->loop = loop_new();
	f->srv = http_server_new(f->loop, "test", -1, lim, handler, f);
	return f;
}

static int setup(void **state)
{
	static const struct http_limits lim = {
		.max_conns = 4, .max_head = 512, .head_timeout_ms = 300,
		.idle_timeout_ms = 300, .write_timeout_ms = 300,
	};

	log_set_stderr(0);
	*state = setup_with(&lim);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_server_free(f->srv);
	loop_free(f->loop);
	free(f);
	return 0;
}

/* A connected pair: the server end is adopted, the client end returned. */
static int connect_pair(struct fixture *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(http_server_adopt(f->srv, sv[0]), 0);
	return sv[1];
}

static void send_all(int fd, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads what is available; *eof tells whether the peer closed. */
static char *recv_avail(int fd, bool *eof)
{
	struct strbuf sb;
	char buf[65536];

	sb_init(&sb);
	*eof = false;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			sb_add(&sb, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			*eof = true;
		break;
	}
	return sb_steal(&sb);
}

static void test_parse_bind(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char *err = NULL;
	char buf[64];

	assert_int_equal(http_parse_bind("--x", "0.0.0.0:10256", 1, &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 10256);
	assert_int_equal(http_parse_bind("--x", "[::1]:99", 1, &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, sizeof(buf));
	assert_string_equal(buf, "::1");
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 99);
	assert_int_equal(http_parse_bind("--x", ":8080", 1, &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	/* A bare IP takes the default port; a bare IPv6 too. */
	assert_int_equal(http_parse_bind("--x", "127.0.0.1", 10249, &ss, &len, &err), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 10249);
	assert_int_equal(http_parse_bind("--x", "fd00::5", 10249, &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	/* Disabled. */
	assert_int_equal(http_parse_bind("--x", "", 1, &ss, &len, &err), 1);
	assert_int_equal(http_parse_bind("--x", "0.0.0.0:0", 1, &ss, &len, &err), 1);
	/* Bad. */
	assert_int_equal(http_parse_bind("--metrics-bind-address", "1.2.3.4:99999", 1, &ss, &len, &err), -EINVAL);
	assert_non_null(strstr(err, "--metrics-bind-address"));
	assert_non_null(strstr(err, "1.2.3.4:99999"));
	free(err);
	err = NULL;
	assert_int_equal(http_parse_bind("--x", "nohost:80", 1, &ss, &len, &err), -EINVAL);
	free(err);
	err = NULL;
	assert_int_equal(http_parse_bind("--x", "[::1", 1, &ss, &len, &err), -EINVAL);
	free(err);
	err = NULL;
	assert_int_equal(http_parse_bind("--x", "1.2.3.4:", 1, &ss, &len, &err), -EINVAL);
	free(err);
}

static void test_get_keepalive_pipelined(void **state)
{
	struct fixture *f = *state;
	int c = connect_pair(f);
	bool eof;
	char *out;

	/* Two requests in one write: both answered, in order, connection kept. */
	send_all(c, "GET /hello?a=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_false(eof);
	assert_int_equal(f->handled, 2);
	assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(out, "Content-Length: 15\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nhello GET q=a=1HTTP/1.1 404 Not Found\r\n"));
	assert_null(strstr(out, "Connection: close"));
	assert_true(str_has_suffix(out, "\r\n\r\nnope"));
	free(out);
	assert_int_equal(http_server_conns(f->srv), 1);

	/* Split across writes, bare LF line ends, HEAD: headers only. */
	send_all(c, "HEAD /hello HTTP/1.1\n");
	spin(f->loop, 20);
	out = recv_avail(c, &eof);
	assert_string_equal(out, "");
	free(out);
	send_all(c, "Host: x\nConnection: close\n\n");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_true(eof);
	assert_non_null(strstr(out, "Content-Length: 13\r\n"));
	assert_non_null(strstr(out, "Connection: close\r\n"));
	assert_true(str_has_suffix(out, "\r\n\r\n"));
	free(out);
	close(c);
	spin(f->loop, 20);
	assert_int_equal(http_server_conns(f->srv), 0);
}

static void test_http10(void **state)
{
	struct fixture *f = *state;
	int c = connect_pair(f);
	bool eof;
	char *out;

	/* HTTP/1.0 needs no Host and closes unless asked to keep alive. */
	send_all(c, "GET /hello HTTP/1.0\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_true(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0);
	assert_true(eof);
	free(out);
	close(c);

	c = connect_pair(f);
	send_all(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_false(eof);
	assert_non_null(strstr(out, "Connection: keep-alive\r\n"));
	free(out);
	close(c);
}

static void expect_status(struct fixture *f, const char *req, const char *status_line)
{
	int c = connect_pair(f);
	int before = f->handled;
	bool eof;
	char *out;

	send_all(c, req);
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	if (strncmp(out, status_line, strlen(status_line)) != 0)
		fail_msg("request %s: got \"%.40s\", want \"%s\"", req, out, status_line);
	assert_true(eof);   /* errors close the connection */
	assert_non_null(strstr(out, "Connection: close\r\n"));
	assert_int_equal(f->handled, before);  /* the handler never saw it */
	free(out);
	close(c);
	spin(f->loop, 10);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;

	expect_status(f, "GET /hello HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");          /* no Host */
	expect_status(f, "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 ");
	expect_status(f, "GET /hello\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "G(T /hello HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET hello HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET /hello HTTP/1.1\r\nHost x\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET /hello HTTP/1.1\r\nBad Name: x\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 ");
	expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		      "HTTP/1.1 400 ");
}

static void test_body_closes(void **state)
{
	struct fixture *f = *state;
	int c = connect_pair(f);
	bool eof;
	char *out;

	/* A request with a body is answered, then the connection closes. */
	send_all(c, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(out, "Connection: close\r\n"));
	assert_true(eof);
	free(out);
	close(c);
}

static void test_limits_head_size(void **state)
{
	struct fixture *f = *state;
	char big[2048];
	int c;
	bool eof;
	char *out;

	/* Headers past max_head (512): 431. */
	c = connect_pair(f);
	send_all(c, "GET /hello HTTP/1.1\r\nHost: x\r\n");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memcpy(big, "X-Long: ", 8);
	if (send(c, big, strlen(big), MSG_NOSIGNAL) < 0)
		fail_msg("send: %s", strerror(errno));
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_true(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
	free(out);
	close(c);

	/* A request line alone past max_head: 414. */
	c = connect_pair(f);
	big[0] = 'G';
	big[1] = 'E';
	big[2] = 'T';
	big[3] = ' ';
	big[4] = '/';
	if (send(c, big, strlen(big), MSG_NOSIGNAL) < 0)
		fail_msg("send: %s", strerror(errno));
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_true(strncmp(out, "HTTP/1.1 414 ", 13) == 0);
	free(out);
	close(c);
	spin(f->loop, 10);
	assert_int_equal(f->handled, 0);
}

static void test_slowloris(void **state)
{
	struct fixture *f = *state;
	int c = connect_pair(f);
	bool eof = false;
	char *out;

	/* Trickle a byte every 50 ms: the head deadline (300 ms) is absolute. */
	send_all(c, "GET /hello HTTP/1.1\r\n");
	for (int i = 0; i < 10 && !eof; i++) {
		send(c, "X", 1, MSG_NOSIGNAL);
		spin(f->loop, 50);
		out = recv_avail(c, &eof);
		if (*out) {
			assert_true(strncmp(out, "HTTP/1.1 408 ", 13) == 0);
			free(out);
			break;
		}
		free(out);
	}
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	free(out);
	assert_true(eof);
	assert_int_equal(f->handled, 0);
	close(c);
	spin(f->loop, 10);
	assert_int_equal(http_server_conns(f->srv), 0);
}

static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	int c = connect_pair(f), silent = connect_pair(f);
	bool eof;
	char *out;

	send_all(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_false(eof);
	free(out);
	assert_int_equal(http_server_conns(f->srv), 2);
	spin(f->loop, 400);
	/* Idle keep-alive and never-spoke connections are both gone. */
	out = recv_avail(c, &eof);
	assert_true(eof);
	free(out);
	out = recv_avail(silent, &eof);
	assert_true(eof);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(http_server_conns(f->srv), 0);
	close(c);
	close(silent);
}

static void test_slow_reader(void **state)
{
	struct fixture *f = *state;
	int c = connect_pair(f);
	bool eof;
	char *out;

	/* 4 MiB response to a client that does not read: dropped after the
	 * write timeout instead of holding memory forever. */
	send_all(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 100);
	assert_int_equal(http_server_conns(f->srv), 1);
	spin(f->loop, 400);
	assert_int_equal(http_server_conns(f->srv), 0);
	out = recv_avail(c, &eof);
	assert_true(strlen(out) < (4u << 20));
	free(out);
	close(c);
}

static void test_max_conns_adopt(void **state)
{
	struct fixture *f = *state;
	int cs[4], sv[2];

	for (int i = 0; i < 4; i++) {
		cs[i] = connect_pair(f);
		send_all(cs[i], "GET /hel");   /* busy: half a request */
	}
	spin(f->loop, 20);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(http_server_adopt(f->srv, sv[0]), -EMFILE);
	close(sv[0]);
	close(sv[1]);
	for (int i = 0; i < 4; i++)
		close(cs[i]);
	spin(f->loop, 20);
	assert_int_equal(http_server_conns(f->srv), 0);
}

static void test_listener_max_conns(void **state)
{
	static const struct http_limits lim = { .max_conns = 2, .head_timeout_ms = 2000 };
	struct fixture *f = setup_with(&lim);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int lfd, cs[3];
	bool eof;
	char *out;

	lfd = http_listen((struct sockaddr *)&sin, sizeof(sin));
	assert_true(lfd >= 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	http_server_free(f->srv);
	f->srv = http_server_new(f->loop, "test", lfd, &lim, handler, f);
	for (int i = 0; i < 3; i++) {
		cs[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(cs[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
		spin(f->loop, 30);
	}
	/* The third is told 503 and closed; the first two still work. */
	out = recv_avail(cs[2], &eof);
	assert_true(strncmp(out, "HTTP/1.1 503 ", 13) == 0);
	assert_true(eof);
	free(out);
	send_all(cs[0], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(cs[0], &eof);
	assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(out);
	/* Now cs[0] is an idle keep-alive connection: a newcomer evicts it. */
	close(cs[2]);
	cs[2] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cs[2], (struct sockaddr *)&sin, sizeof(sin)), 0);
	spin(f->loop, 30);
	send_all(cs[2], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(cs[2], &eof);
	assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(out);
	out = recv_avail(cs[0], &eof);
	assert_true(eof);
	free(out);
	for (int i = 0; i < 3; i++)
		close(cs[i]);
	teardown((void **)&f);
}

static void test_evict_slow(void **state)
{
	static const struct http_limits lim = { .max_conns = 2, .head_timeout_ms = 5000 };
	struct fixture *f = setup_with(&lim);
	int a, b, c;
	bool eof;
	char *out;

	a = connect_pair(f);
	send_all(a, "GET /hel");
	spin(f->loop, 600);
	b = connect_pair(f);
	send_all(b, "GET /hel");
	spin(f->loop, 500);
	/* a has waited over a second for its request: it makes room; b is
	 * younger and stays. */
	c = connect_pair(f);
	send_all(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(c, &eof);
	assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(out);
	out = recv_avail(a, &eof);
	assert_true(eof);
	free(out);
	out = recv_avail(b, &eof);
	assert_false(eof);
	free(out);
	send_all(b, "lo HTTP/1.1\r\nHost: x\r\n\r\n");
	spin(f->loop, 50);
	out = recv_avail(b, &eof);
	assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(out);
	close(a);
	close(b);
	close(c);
	teardown((void **)&f);
}

static void test_listen_wildcard_dual_stack(void **state)
{
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	struct sockaddr_storage ss;
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(ss);
	int fd = http_listen((struct sockaddr *)&any, sizeof(any)), c, s;
	uint16_t port;

	assert_true(fd >= 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 six = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		/* IPv6 loopback, if configured here, is accepted too. */
		six.sin6_port = htons(port);
		c = socket(AF_INET6, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&six, sizeof(six)) == 0) {
			s = accept(fd, NULL, NULL);
			assert_true(s >= 0);
			close(s);
		}
		close(c);
	} else {
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	/* IPv4 always works. */
	lo.sin_port = htons(port);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&lo, sizeof(lo)), 0);
	s = accept(fd, NULL, NULL);
	assert_true(s >= 0);
	close(s);
	close(c);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bind),
		cmocka_unit_test_setup_teardown(test_get_keepalive_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_head_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slowloris, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_conns_adopt, setup, teardown),
		cmocka_unit_test(test_listener_max_conns),
		cmocka_unit_test(test_listen_wildcard_dual_stack),
		cmocka_unit_test(test_evict_slow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
