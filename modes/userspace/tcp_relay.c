/* Userspace mode, TCP: accept on the proxy port, pick an endpoint,
 * connect without blocking (EINPROGRESS + EPOLLOUT, a deadline per
 * attempt, the next endpoint on failure), then relay both directions.
 *
 * Each direction moves data src -> pipe -> dst with splice() (no copy
 * through user memory), or through a 64 KiB buffer when no pipe could be
 * had. A direction drains what it holds before it reads again, so a slow
 * receiver stops the sender (we stop reading; the kernel's windows do
 * the rest). EOF on one side becomes shutdown(SHUT_WR) on the other; the
 * connection ends when both directions have ended, or at the first
 * error (then both peers get a reset). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/log.h"
#include "../../src/loop.h"
#include "../../src/util.h"
#include "us.h"

/* <linux/netfilter_ipv4.h> clashes with <netinet/in.h>; the value is ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif

#define BUF_SIZE (64 * 1024)
#define PIPE_SIZE (1024 * 1024)  /* the default pipe-max-size; else 256 KiB */
#define ROUNDS 32
#define ACCEPTS_PER_WAKEUP 64

/* Per attempt, as upstream's endpointDialTimeout. */
static const unsigned connect_timeout_ms[US_CONNECT_ATTEMPTS] = { 250, 500, 1000, 2000 };

enum conn_state { C_CONNECTING, C_RELAYING };

struct dir {
	int pipe[2];          /* -1/-1 in buffer mode */
	char *buf;
	size_t pending;       /* bytes read from src not yet written to dst */
	size_t off;           /* buffer mode: start of pending */
	bool eof;             /* src sent FIN */
	bool shut;            /* dst got SHUT_WR */
	unsigned long long bytes;
};

struct tcp_conn;

struct side {
	struct tcp_conn *c;
	int fd;
	uint32_t ev;          /* events registered */
	bool watched;
};

struct tcp_conn {
	struct dlist link;    /* in ctx->conns */
	struct us_port *port;
	struct us_ctx *ctx;
	struct side cl, be;
	struct dir c2b, b2c;
	struct dq_node dl;    /* connect deadline */
	unsigned attempt;
	struct addr client_ip;
	uint16_t client_port;
	struct lb_ep ep;
	enum conn_state state;
	size_t pipe_cap;
};

static void side_cb(struct loop *l, int fd, uint32_t events, void *arg);

static bool use_splice(void)
{
	static int cached = -1;

	if (cached < 0) {
		const char *e = getenv("KUBE_PROXY_USERSPACE_SPLICE");

		cached = !(e && strcmp(e, "0") == 0);
	}
	return cached;
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Gives an empty pipe back to the pool (short connections would
 * otherwise pay pipe2 + F_SETPIPE_SZ twice each), or closes it. */
static void dir_fini(struct us_ctx *ctx, struct dir *d)
{
	if (d->pipe[0] >= 0) {
		/* pending counts exactly what sits in the pipe. */
		if (!d->pending && ctx->n_pipe_pool < ARRAY_SIZE(ctx->pipe_pool)) {
			ctx->pipe_pool[ctx->n_pipe_pool][0] = d->pipe[0];
			ctx->pipe_pool[ctx->n_pipe_pool][1] = d->pipe[1];
			ctx->n_pipe_pool++;
		} else {
			close(d->pipe[0]);
			close(d->pipe[1]);
		}
	}
	d->pipe[0] = d->pipe[1] = -1;
	free_and_null(&d->buf);
}

static void unwatch(struct tcp_conn *c, struct side *s)
{
	if (s->watched) {
		loop_del_fd(c->ctx->loop, s->fd);
		s->watched = false;
	}
}

static void conn_free(struct tcp_conn *c, bool rst)
{
	struct us_port *p = c->port;
	char cb[US_EPSTRLEN], eb[US_EPSTRLEN];

	log_v(4, "Closed connection %s -> %s for \"%s\": %llu bytes up, %llu down%s",
	      us_ep_str(&c->client_ip, c->client_port, cb), us_ep_str(&c->ep.ip, c->ep.port, eb),
	      p->spn, c->c2b.bytes, c->b2c.bytes, rst ? " (reset)" : "");
	dq_del(&c->ctx->connect_q, &c->dl);
	dlist_unlink(&c->link);
	unwatch(c, &c->cl);
	unwatch(c, &c->be);
	if (rst)
		close_rst(c->cl.fd);
	else
		close(c->cl.fd);
	if (c->be.fd >= 0) {
		if (rst)
			close_rst(c->be.fd);
		else
			close(c->be.fd);
	}
	dir_fini(c->ctx, &c->c2b);
	dir_fini(c->ctx, &c->b2c);
	p->n_conns--;
	free(c);
	us_port_put(p);
}

void us_rearm(struct us_ctx *ctx, struct dqueue *q, struct loop_timer *t, unsigned long long *armed)
{
	struct dq_node *first = dq_first(q);
	unsigned long long now;

	if (!first) {
		if (*armed) {
			loop_timer_disarm(t);
			*armed = 0;
		}
		return;
	}
	/* Armed for an earlier (or the same) instant: it fires, we look again. */
	if (*armed && *armed <= first->deadline)
		return;
	now = now_ms();
	loop_timer_arm(t, first->deadline > now ? first->deadline - now : 0);
	*armed = first->deadline;
}

static int dir_setup(struct tcp_conn *c, struct dir *d)
{
	struct us_ctx *ctx = c->ctx;

	d->pipe[0] = d->pipe[1] = -1;
	if (use_splice() && ctx->n_pipe_pool) {
		ctx->n_pipe_pool--;
		d->pipe[0] = ctx->pipe_pool[ctx->n_pipe_pool][0];
		d->pipe[1] = ctx->pipe_pool[ctx->n_pipe_pool][1];
		c->pipe_cap = ctx->pipe_cap;
		return 0;
	}
	if (use_splice() && pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == 0) {
		int sz;

		if (fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
			fcntl(d->pipe[1], F_SETPIPE_SZ, 256 * 1024);
		sz = fcntl(d->pipe[1], F_GETPIPE_SZ);
		c->pipe_cap = sz > 0 ? (size_t)sz : 65536;
		/* Every pipe gets the same size, pooled ones included. */
		ctx->pipe_cap = c->pipe_cap;
		return 0;
	}
	d->pipe[0] = d->pipe[1] = -1;
	d->buf = xmalloc(BUF_SIZE);
	return 0;
}

/* Moves what it can from src to dst. Returns bytes moved (plus one for a
 * propagated EOF), or -errno on a hard error. */
static long long pump(struct tcp_conn *c, struct dir *d, int src, int dst)
{
	long long progress = 0;
	ssize_t n;

	for (int round = 0; round < ROUNDS; round++) {
		if (d->pending) {
			if (d->pipe[0] >= 0)
				n = splice(d->pipe[0], NULL, dst, NULL, d->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			else
				n = send(dst, d->buf + d->off, d->pending, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				if (errno == EINTR)
					continue;
				return -errno;
			}
			d->pending -= (size_t)n;
			d->off += (size_t)n;
			d->bytes += (unsigned long long)n;
			progress += n;
			if (d->pending)
				continue;
			d->off = 0;
		}
		if (d->eof)
			break;
		if (d->pipe[1] >= 0)
			n = splice(src, NULL, d->pipe[1], NULL, c->pipe_cap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		else
			n = recv(src, d->buf, BUF_SIZE, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			d->eof = true;
			continue;   /* nothing pending: falls to the shutdown below */
		}
		d->pending = (size_t)n;
		progress += n;
	}
	if (d->eof && !d->pending && !d->shut) {
		shutdown(dst, SHUT_WR);
		d->shut = true;
		progress++;
	}
	return progress;
}

static uint32_t want_events(const struct dir *rd, const struct dir *wr)
{
	uint32_t ev = 0;

	if (!rd->eof && !rd->pending)
		ev |= EPOLLIN;
	if (wr->pending)
		ev |= EPOLLOUT;
	return ev;
}

static void update_side(struct tcp_conn *c, struct side *s, uint32_t want, uint32_t events)
{
	if (!s->watched)
		return;
	/* Nothing more to do with a hung-up fd: stop watching it, or
	 * level-triggered HUP would wake us forever. */
	if (!want && (events & (EPOLLHUP | EPOLLERR))) {
		unwatch(c, s);
		return;
	}
	if (want != s->ev && loop_mod_fd(c->ctx->loop, s->fd, want) == 0)
		s->ev = want;
}

static int sock_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return errno;
	return e;
}

static void relay(struct tcp_conn *c, struct side *from, uint32_t events)
{
	long long a, b;

	if ((events & EPOLLERR) && sock_error(from->fd)) {
		conn_free(c, true);
		return;
	}
	a = pump(c, &c->c2b, c->cl.fd, c->be.fd);
	b = pump(c, &c->b2c, c->be.fd, c->cl.fd);
	if (a < 0 || b < 0) {
		log_v(4, "Relay error for \"%s\": %s", c->port->spn, strerror((int)-(a < 0 ? a : b)));
		conn_free(c, true);
		return;
	}
	if (c->c2b.shut && c->b2c.shut) {
		conn_free(c, false);
		return;
	}
	update_side(c, &c->cl, want_events(&c->c2b, &c->b2c), from == &c->cl ? events : 0);
	update_side(c, &c->be, want_events(&c->b2c, &c->c2b), from == &c->be ? events : 0);
}

static void start_relay(struct tcp_conn *c)
{
	struct loop *l = c->ctx->loop;
	int err;

	dq_del(&c->ctx->connect_q, &c->dl);
	c->state = C_RELAYING;
	dir_setup(c, &c->c2b);
	dir_setup(c, &c->b2c);
	if (c->be.watched)
		err = loop_mod_fd(l, c->be.fd, EPOLLIN);
	else
		err = loop_add_fd(l, c->be.fd, EPOLLIN, side_cb, &c->be);
	c->be.watched = err == 0;
	c->be.ev = EPOLLIN;
	if (err == 0)
		err = loop_add_fd(l, c->cl.fd, EPOLLIN, side_cb, &c->cl);
	if (err < 0) {
		log_warn("Cannot relay for \"%s\": epoll: %s", c->port->spn, strerror(-err));
		conn_free(c, true);
		return;
	}
	c->cl.watched = true;
	c->cl.ev = EPOLLIN;
	relay(c, &c->cl, 0);
}

static void try_connect(struct tcp_conn *c)
{
	struct us_port *p = c->port;
	struct us_ctx *ctx = c->ctx;
	char eb[US_EPSTRLEN];

	while (c->attempt < US_CONNECT_ATTEMPTS) {
		struct sockaddr_storage ss;
		socklen_t len;
		int fd;

		if (lb_pick(&p->lb, &c->client_ip, now_ms(), c->attempt > 0, &c->ep) < 0) {
			if (us_port_log_ok(p, &p->last_err_log_ms))
				log_warn("Couldn't find an endpoint for \"%s\": no endpoints; closing connection", p->spn);
			conn_free(c, true);
			return;
		}
		c->attempt++;
		fd = socket(c->ep.ip.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			if (us_port_log_ok(p, &p->last_err_log_ms))
				log_error("Cannot open a socket to an endpoint of \"%s\": %s", p->spn, strerror(errno));
			conn_free(c, true);
			return;
		}
		set_nodelay(fd);
		c->be.fd = fd;
		len = us_sockaddr(&c->ep.ip, c->ep.port, &ss);
		if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
			start_relay(c);
			return;
		}
		if (errno == EINPROGRESS) {
			int err = loop_add_fd(ctx->loop, fd, EPOLLOUT, side_cb, &c->be);

			if (err == 0) {
				c->be.watched = true;
				c->be.ev = EPOLLOUT;
				c->state = C_CONNECTING;
				dq_add(&ctx->connect_q, &c->dl, now_ms() + connect_timeout_ms[c->attempt - 1]);
				us_rearm(ctx, &ctx->connect_q, ctx->connect_timer, &ctx->connect_armed);
				return;
			}
			errno = -err;
		}
		log_v(2, "Failed to connect to endpoint %s of \"%s\": %s; trying the next one",
		      us_ep_str(&c->ep.ip, c->ep.port, eb), p->spn, strerror(errno));
		close(fd);
		c->be.fd = -1;
	}
	if (us_port_log_ok(p, &p->last_err_log_ms))
		log_warn("Failed to connect to an endpoint of \"%s\" after %u attempts; closing connection",
			 p->spn, c->attempt);
	conn_free(c, true);
}

/* The current attempt failed (refused, unreachable, timed out). */
static void attempt_failed(struct tcp_conn *c, int err)
{
	char eb[US_EPSTRLEN];

	log_v(2, "Dial to endpoint %s of \"%s\" failed: %s; trying the next one",
	      us_ep_str(&c->ep.ip, c->ep.port, eb), c->port->spn, strerror(err));
	dq_del(&c->ctx->connect_q, &c->dl);
	unwatch(c, &c->be);
	close(c->be.fd);
	c->be.fd = -1;
	try_connect(c);
}

static void side_cb(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct side *s = arg;
	struct tcp_conn *c = s->c;

	if (c->state == C_CONNECTING) {
		int err = sock_error(fd);

		if (err)
			attempt_failed(c, err);
		else if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			start_relay(c);
		return;
	}
	relay(c, s, events);
}

void tcp_connect_timer(struct loop *l, struct loop_timer *t, void *arg)
{
	struct us_ctx *ctx = arg;
	struct dq_node *n;
	unsigned long long now = now_ms();

	ctx->connect_armed = 0;
	while ((n = dq_pop_expired(&ctx->connect_q, now)))
		attempt_failed(us_container_of(n, struct tcp_conn, dl), ETIMEDOUT);
	us_rearm(ctx, &ctx->connect_q, ctx->connect_timer, &ctx->connect_armed);
}

/* accept() ran out of file descriptors: take the spare one back to accept
 * and drop the waiting client (it gets a reset instead of hanging), then
 * pause this listener briefly so the loop does not spin. */
static void fd_exhausted(struct us_port *p, int lfd, int err)
{
	struct us_ctx *ctx = p->ctx;

	if (ctx->reserve_fd >= 0) {
		int fd;

		close(ctx->reserve_fd);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close_rst(fd);
		ctx->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (us_port_log_ok(p, &p->last_err_log_ms))
		log_error("Accept on proxy port %u for \"%s\" failed: %s; dropping the connection and pausing accepts for a moment",
			  p->proxy_port, p->spn, strerror(err));
	us_port_pause(p);
}

static void log_accept(const struct tcp_conn *c, int fd)
{
	struct sockaddr_storage od;
	socklen_t len = sizeof(od);
	char cb[US_EPSTRLEN], ob[US_EPSTRLEN] = "?";

	/* REDIRECT/DNAT rewrote the destination; conntrack knows the one
	 * the client used. */
	if (c->client_ip.family == AF_INET &&
	    getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &od, &len) == 0) {
		struct addr ip;
		uint16_t port;

		us_from_sockaddr(&od, &ip, &port);
		us_ep_str(&ip, port, ob);
	}
	log_info("Accepted connection from %s to %s for \"%s\" (proxy port %u)",
		 us_ep_str(&c->client_ip, c->client_port, cb), ob, c->port->spn, c->port->proxy_port);
}

void tcp_on_accept(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct us_port *p = arg;
	struct us_ctx *ctx = p->ctx;

	for (int i = 0; i < ACCEPTS_PER_WAKEUP && !p->closed; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct tcp_conn *c;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				fd_exhausted(p, lfd, errno);
				return;
			}
			if (us_port_log_ok(p, &p->last_err_log_ms))
				log_error("Accept on proxy port %u for \"%s\" failed: %s", p->proxy_port, p->spn,
					  strerror(errno));
			return;
		}
		if (p->n_conns >= ctx->max_conns) {
			p->refused_cap++;
			if (us_port_log_ok(p, &p->last_cap_log_ms))
				log_warn("Service \"%s\" reached its limit of %zu concurrent connections; refusing new ones (%llu refused so far)",
					 p->spn, ctx->max_conns, p->refused_cap);
			close_rst(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->port = p;
		c->ctx = ctx;
		c->cl = (struct side){ .c = c, .fd = fd };
		c->be = (struct side){ .c = c, .fd = -1 };
		c->c2b.pipe[0] = c->c2b.pipe[1] = c->b2c.pipe[0] = c->b2c.pipe[1] = -1;
		us_from_sockaddr(&ss, &c->client_ip, &c->client_port);
		dlist_insert_after(&ctx->conns, &c->link);
		p->refs++;
		p->n_conns++;
		p->accepted++;   /* TCP_NODELAY comes from the listener */
		if (log_verbosity() >= 4)
			log_accept(c, fd);
		try_connect(c);
	}
}

void tcp_close_all(struct us_ctx *ctx)
{
	while (!dlist_empty(&ctx->conns))
		conn_free(us_container_of(ctx->conns.next, struct tcp_conn, link), false);
	while (ctx->n_pipe_pool) {
		ctx->n_pipe_pool--;
		close(ctx->pipe_pool[ctx->n_pipe_pool][0]);
		close(ctx->pipe_pool[ctx->n_pipe_pool][1]);
	}
}
