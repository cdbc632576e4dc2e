/* Userspace mode, UDP: one association per client (address, port, and
 * the local address its datagram reached), each with its own socket
 * connected to one endpoint. Replies leave through the proxy port's
 * socket with the source address set (IP_PKTINFO) to the address the
 * client's datagram had after REDIRECT/DNAT, so conntrack's reverse NAT
 * turns it back into the service address the client used. An
 * association ends after --udp-timeout without traffic either way. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "../../src/log.h"
#include "../../src/loop.h"
#include "../../src/util.h"
#include "us.h"

#define UDP_BUF 65536
#define DGRAMS_PER_WAKEUP 64

/* ---- association table ------------------------------------------------ */

static uint32_t assoc_hash(const struct addr *client, uint16_t port, const struct addr *local)
{
	uint32_t h = 2166136261u;
	size_t n = addr_len(client);

	for (size_t i = 0; i < n; i++)
		h = (h ^ client->bytes[i]) * 16777619u;
	h = (h ^ (port & 0xff)) * 16777619u;
	h = (h ^ (port >> 8)) * 16777619u;
	n = addr_len(local);
	for (size_t i = 0; i < n; i++)
		h = (h ^ local->bytes[i]) * 16777619u;
	return h;
}

void udp_table_init(struct udp_table *t)
{
	t->nbuckets = 64;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	t->n = 0;
}

void udp_table_fini(struct udp_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->n = 0;
}

struct udp_assoc *udp_table_find(const struct udp_table *t, const struct addr *client,
				 uint16_t client_port, const struct addr *local)
{
	struct udp_assoc *a;

	if (!t->nbuckets)
		return NULL;
	a = t->buckets[assoc_hash(client, client_port, local) & (t->nbuckets - 1)];
	for (; a; a = a->hnext)
		if (a->client_port == client_port && addr_equal(&a->client, client) &&
		    addr_equal(&a->local, local))
			return a;
	return NULL;
}

static void table_grow(struct udp_table *t)
{
	size_t nb = t->nbuckets * 2;
	struct udp_assoc **b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct udp_assoc *a = t->buckets[i], *next;

		for (; a; a = next) {
			size_t j = assoc_hash(&a->client, a->client_port, &a->local) & (nb - 1);

			next = a->hnext;
			a->hnext = b[j];
			b[j] = a;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

void udp_table_insert(struct udp_table *t, struct udp_assoc *a)
{
	size_t i;

	if (!t->nbuckets)
		udp_table_init(t);
	if (t->n >= t->nbuckets)
		table_grow(t);
	i = assoc_hash(&a->client, a->client_port, &a->local) & (t->nbuckets - 1);
	a->hnext = t->buckets[i];
	t->buckets[i] = a;
	t->n++;
}

void udp_table_remove(struct udp_table *t, struct udp_assoc *a)
{
	struct udp_assoc **pp;

	if (!t->nbuckets)
		return;
	pp = &t->buckets[assoc_hash(&a->client, a->client_port, &a->local) & (t->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			a->hnext = NULL;
			t->n--;
			return;
		}
	}
}

/* ---- relaying ------------------------------------------------------------ */

int udp_listener_setup(int fd, uint8_t family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0 ? -errno : 0;
	return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ? -errno : 0;
}

static void assoc_close(struct udp_assoc *a)
{
	struct us_port *p = a->port;
	struct us_ctx *ctx = p->ctx;
	char cb[US_EPSTRLEN], eb[US_EPSTRLEN];

	log_v(4, "UDP association %s -> %s for \"%s\" ended (%llu datagrams in, %llu out)",
	      us_ep_str(&a->client, a->client_port, cb), us_ep_str(&a->ep.ip, a->ep.port, eb),
	      p->spn, a->packets_in, a->packets_out);
	dq_del(&ctx->udp_q, &a->idle);
	udp_table_remove(&p->udp, a);
	if (a->fd >= 0) {
		loop_del_fd(ctx->loop, a->fd);
		close(a->fd);
	}
	p->n_conns--;
	free(a);
}

static void touch(struct udp_assoc *a)
{
	struct us_ctx *ctx = a->port->ctx;

	dq_add(&ctx->udp_q, &a->idle, now_ms() + ctx->udp_timeout_ms);
	us_rearm(ctx, &ctx->udp_q, ctx->udp_timer, &ctx->udp_armed);
}

static void reply(struct udp_assoc *a, const void *data, size_t len)
{
	struct us_port *p = a->port;
	struct sockaddr_storage ss;
	struct iovec iov = { (void *)data, len };
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {
		.msg_name = &ss,
		.msg_namelen = us_sockaddr(&a->client, a->client_port, &ss),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	memset(&cm, 0, sizeof(cm));
	if (!addr_is_unspecified(&a->local)) {
		struct cmsghdr *c = (struct cmsghdr *)cm.buf;

		mh.msg_control = cm.buf;
		if (a->local.family == AF_INET6) {
			struct in6_pktinfo pi = { .ipi6_ifindex = 0 };

			memcpy(&pi.ipi6_addr, a->local.bytes, 16);
			c->cmsg_level = IPPROTO_IPV6;
			c->cmsg_type = IPV6_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		} else {
			struct in_pktinfo pi = { .ipi_ifindex = 0 };

			memcpy(&pi.ipi_spec_dst, a->local.bytes, 4);
			c->cmsg_level = IPPROTO_IP;
			c->cmsg_type = IP_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		}
	}
	if (sendmsg(p->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && us_port_log_ok(p, &p->last_err_log_ms))
			log_warn("Cannot send a UDP reply for \"%s\": %s", p->spn, strerror(errno));
		return;
	}
	a->packets_out++;
}

static void on_backend(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct udp_assoc *a = arg;
	uint8_t *buf = a->port->ctx->udp_buf;

	for (int i = 0; i < DGRAMS_PER_WAKEUP; i++) {
		ssize_t n = recv(fd, buf, UDP_BUF, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			/* ECONNREFUSED (ICMP port unreachable) and friends: let
			 * the next datagram start over, maybe elsewhere. */
			assoc_close(a);
			return;
		}
		reply(a, buf, (size_t)n);
	}
	touch(a);
}

static struct udp_assoc *assoc_new(struct us_port *p, const struct addr *client, uint16_t cport,
				   const struct addr *local)
{
	struct us_ctx *ctx = p->ctx;
	struct udp_assoc *a;
	struct sockaddr_storage ss;
	socklen_t len;
	char cb[US_EPSTRLEN], eb[US_EPSTRLEN];
	struct lb_ep ep;
	int fd, err;

	if (p->n_conns >= ctx->max_conns) {
		p->refused_cap++;
		if (us_port_log_ok(p, &p->last_cap_log_ms))
			log_warn("Service \"%s\" reached its limit of %zu concurrent UDP clients; dropping datagrams from new ones (%llu dropped so far)",
				 p->spn, ctx->max_conns, p->refused_cap);
		return NULL;
	}
	if (lb_pick(&p->lb, client, now_ms(), false, &ep) < 0) {
		if (us_port_log_ok(p, &p->last_err_log_ms))
			log_warn("Couldn't find an endpoint for \"%s\": no endpoints; dropping datagram", p->spn);
		return NULL;
	}
	fd = socket(ep.ip.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (us_port_log_ok(p, &p->last_err_log_ms))
			log_error("Cannot open a UDP socket for \"%s\": %s", p->spn, strerror(errno));
		return NULL;
	}
	len = us_sockaddr(&ep.ip, ep.port, &ss);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (us_port_log_ok(p, &p->last_err_log_ms))
			log_warn("Cannot reach endpoint %s of \"%s\": %s", us_ep_str(&ep.ip, ep.port, eb),
				 p->spn, strerror(errno));
		close(fd);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->client = *client;
	a->client_port = cport;
	a->local = *local;
	a->ep = ep;
	a->fd = fd;
	a->port = p;
	err = loop_add_fd(ctx->loop, fd, EPOLLIN, on_backend, a);
	if (err < 0) {
		log_error("Cannot relay UDP for \"%s\": epoll: %s", p->spn, strerror(-err));
		close(fd);
		free(a);
		return NULL;
	}
	udp_table_insert(&p->udp, a);
	p->n_conns++;
	p->accepted++;
	log_v(4, "New UDP association %s -> %s for \"%s\"", us_ep_str(client, cport, cb),
	      us_ep_str(&ep.ip, ep.port, eb), p->spn);
	return a;
}

static void local_from_cmsg(struct msghdr *mh, uint8_t family, struct addr *local)
{
	memset(local, 0, sizeof(*local));
	local->family = family;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->family = AF_INET;
			memcpy(local->bytes, &pi.ipi_addr, 4);
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->family = AF_INET6;
			memcpy(local->bytes, &pi.ipi6_addr, 16);
		}
	}
}

void udp_on_client(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct us_port *p = arg;
	uint8_t *buf = p->ctx->udp_buf;

	for (int i = 0; i < DGRAMS_PER_WAKEUP && !p->closed; i++) {
		struct sockaddr_storage ss;
		struct iovec iov = { buf, UDP_BUF };
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} cm;
		struct msghdr mh = {
			.msg_name = &ss, .msg_namelen = sizeof(ss),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
		};
		struct addr client, local;
		uint16_t cport;
		struct udp_assoc *a;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			if (us_port_log_ok(p, &p->last_err_log_ms))
				log_warn("UDP receive on proxy port %u for \"%s\" failed: %s", p->proxy_port,
					 p->spn, strerror(errno));
			return;
		}
		us_from_sockaddr(&ss, &client, &cport);
		local_from_cmsg(&mh, p->family, &local);
		a = udp_table_find(&p->udp, &client, cport, &local);
		if (!a && !(a = assoc_new(p, &client, cport, &local)))
			continue;
		if (send(a->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno == ECONNREFUSED) {
				/* An earlier datagram bounced: start over with this one. */
				assoc_close(a);
				if ((a = assoc_new(p, &client, cport, &local)) &&
				    send(a->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
					a->packets_in++;
				if (a)
					touch(a);
			}
			continue;
		}
		a->packets_in++;
		touch(a);
	}
}

void udp_idle_timer(struct loop *l, struct loop_timer *t, void *arg)
{
	struct us_ctx *ctx = arg;
	struct dq_node *n;
	unsigned long long now = now_ms();

	ctx->udp_armed = 0;
	while ((n = dq_pop_expired(&ctx->udp_q, now)))
		assoc_close(us_container_of(n, struct udp_assoc, idle));
	us_rearm(ctx, &ctx->udp_q, ctx->udp_timer, &ctx->udp_armed);
}

void udp_close_all(struct us_port *p)
{
	for (size_t i = 0; i < p->udp.nbuckets; i++)
		while (p->udp.buckets[i])
			assoc_close(p->udp.buckets[i]);
}

/* ---- conntrack entries of a closed UDP service port ------------------ */

struct ct_match {
	uint16_t proxy_port, svc_port, node_port;
	struct nf_conntrack **doomed;
	size_t n;
};

static int ct_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct ct_match *m = data;
	uint16_t rsport, odport;
	struct nf_conntrack *copy;

	if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_UDP)
		return NFCT_CB_CONTINUE;
	/* Ours: the portal rewrote the service port to the proxy port. */
	rsport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
	odport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	if (rsport != m->proxy_port || (odport != m->svc_port && odport != m->node_port))
		return NFCT_CB_CONTINUE;
	copy = nfct_clone(ct);
	if (copy) {
		m->doomed = xrealloc(m->doomed, (m->n + 1) * sizeof(*m->doomed));
		m->doomed[m->n++] = copy;
	}
	return NFCT_CB_CONTINUE;
}

void udp_flush_conntrack(uint8_t family, uint16_t proxy_port, uint16_t svc_port, uint16_t node_port,
			 const char *spn)
{
	struct ct_match m = { proxy_port, svc_port, node_port, NULL, 0 };
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	uint32_t fam = family;
	int deleted = 0;

	if (!h) {
		log_warn("Cannot clear conntrack entries of \"%s\": %s", spn, strerror(errno));
		return;
	}
	nfct_callback_register(h, NFCT_T_ALL, ct_cb, &m);
	if (nfct_query(h, NFCT_Q_DUMP, &fam) < 0)
		log_warn("Cannot list conntrack entries for \"%s\": %s", spn, strerror(errno));
	nfct_callback_unregister(h);
	for (size_t i = 0; i < m.n; i++) {
		if (nfct_query(h, NFCT_Q_DESTROY, m.doomed[i]) == 0)
			deleted++;
		nfct_destroy(m.doomed[i]);
	}
	free(m.doomed);
	nfct_close(h);
	if (deleted)
		log_info("Cleared %d UDP conntrack entries of \"%s\" (proxy port %u)", deleted, spn,
			 proxy_port);
}
