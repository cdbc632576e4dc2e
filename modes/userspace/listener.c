/* Userspace mode: one listening socket per service port (the "proxy
 * port"), taken from --proxy-port-range or chosen by the kernel. */
#include <errno.h>
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

#define PAUSE_MS 100

bool us_port_log_ok(struct us_port *p, unsigned long long *last)
{
	unsigned long long now = now_ms();

	if (*last && now - *last < 10000)
		return false;
	*last = now;
	return true;
}

static bool range_test(const struct us_ctx *ctx, uint32_t off)
{
	return ctx->range_used[off / 8] & (1u << (off % 8));
}

static void range_mark(struct us_ctx *ctx, uint32_t off, bool used)
{
	if (used)
		ctx->range_used[off / 8] |= (uint8_t)(1u << (off % 8));
	else
		ctx->range_used[off / 8] &= (uint8_t)~(1u << (off % 8));
}

void us_range_release(struct us_ctx *ctx, uint16_t port)
{
	if (!ctx->range.n || port < ctx->range.lo || (uint32_t)(port - ctx->range.lo) >= ctx->range.n)
		return;
	range_mark(ctx, (uint32_t)(port - ctx->range.lo), false);
}

/* Binds a fresh socket of p's kind to port (0 = any). Returns the fd or
 * -errno. */
static int bind_one(struct us_ctx *ctx, const struct us_port *p, uint16_t port)
{
	int type = p->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	struct sockaddr_storage ss;
	struct addr any = { .family = p->family };
	const struct addr *ip = &any;
	socklen_t len;
	int fd, one = 1, err;

	if (!ctx->bind_any && ctx->bind_ip.family == p->family)
		ip = &ctx->bind_ip;
	fd = socket(p->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (p->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	len = us_sockaddr(ip, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail;
	if (type == SOCK_STREAM) {
		/* Accepted sockets inherit it: one call here, none per connection. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (listen(fd, SOMAXCONN) < 0)
			goto fail;
	}
	if (type == SOCK_DGRAM && (err = udp_listener_setup(fd, p->family)) < 0) {
		close(fd);
		return err;
	}
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* Allocates a proxy port for p and binds it. Returns the fd or -errno. */
static int bind_proxy_port(struct us_ctx *ctx, struct us_port *p)
{
	int fd = -EADDRINUSE;

	if (!ctx->range.n) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct addr ip;

		fd = bind_one(ctx, p, 0);
		if (fd < 0)
			return fd;
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
		us_from_sockaddr(&ss, &ip, &p->proxy_port);
		return fd;
	}
	/* Walk the range from the cursor, skipping ports we already hold and
	 * ports someone else bound. */
	for (uint32_t i = 0; i < ctx->range.n; i++) {
		uint32_t off = (ctx->range_cursor + i) % ctx->range.n;
		uint16_t port = (uint16_t)(ctx->range.lo + off);

		if (range_test(ctx, off))
			continue;
		fd = bind_one(ctx, p, port);
		if (fd == -EADDRINUSE || fd == -EACCES)
			continue;
		if (fd < 0)
			return fd;
		range_mark(ctx, off, true);
		ctx->range_cursor = (off + 1) % ctx->range.n;
		p->proxy_port = port;
		return fd;
	}
	return -EADDRINUSE;
}

int us_port_open(struct us_ctx *ctx, struct us_port *p)
{
	char buf[US_EPSTRLEN];
	int fd, err;

	fd = bind_proxy_port(ctx, p);
	if (fd < 0) {
		if (ctx->range.n && fd == -EADDRINUSE)
			log_error("Failed to allocate proxy port for service \"%s\": the port range %u-%u is exhausted",
				  p->spn, ctx->range.lo, (unsigned)(ctx->range.lo + ctx->range.n - 1));
		else
			log_error("Failed to start proxy for \"%s\": %s", p->spn, strerror(-fd));
		return fd;
	}
	p->fd = fd;
	err = loop_add_fd(ctx->loop, fd, EPOLLIN,
			  p->proto == PROTO_UDP ? udp_on_client : tcp_on_accept, p);
	if (err < 0) {
		log_error("Failed to start proxy for \"%s\": epoll: %s", p->spn, strerror(-err));
		close(fd);
		p->fd = -1;
		us_range_release(ctx, p->proxy_port);
		return err;
	}
	/* Upstream's phrase. */
	log_info("Proxying for service \"%s\" on %s port %u (portal %s)", p->spn,
		 proto_upper(p->proto), p->proxy_port, us_ep_str(&p->cluster_ip, p->svc_port, buf));
	return 0;
}

void us_resume_paused(struct loop *l, struct loop_timer *t, void *arg)
{
	struct us_ctx *ctx = arg;
	size_t it = 0;
	const char *k;
	void *v;

	while (strmap_next(&ctx->ports, &it, &k, &v)) {
		struct us_port *p = v;

		if (p->paused && p->fd >= 0)
			loop_mod_fd(l, p->fd, EPOLLIN);
		p->paused = false;
	}
}

void us_port_pause(struct us_port *p)
{
	if (p->fd < 0)
		return;
	/* The timer exists since init: no fd is needed now, when there are none. */
	loop_mod_fd(p->ctx->loop, p->fd, 0);
	p->paused = true;
	if (!loop_timer_armed(p->ctx->resume_timer))
		loop_timer_arm(p->ctx->resume_timer, PAUSE_MS);
}

void us_port_close(struct us_port *p)
{
	if (p->closed)
		return;
	p->closed = true;
	if (p->proto == PROTO_UDP)
		udp_close_all(p);
	if (p->fd >= 0) {
		loop_del_fd(p->ctx->loop, p->fd);
		close(p->fd);
		p->fd = -1;
		us_range_release(p->ctx, p->proxy_port);
		log_info("Stopped proxying for service \"%s\" (%s port %u, %zu connections still open)",
			 p->spn, proto_upper(p->proto), p->proxy_port, p->n_conns);
	}
	us_port_put(p);
}

void us_port_put(struct us_port *p)
{
	if (--p->refs > 0)
		return;
	lb_fini(&p->lb);
	udp_table_fini(&p->udp);
	free(p->key);
	free(p->spn);
	free(p->ext_ips);
	free(p->lb_ips);
	free(p);
}
