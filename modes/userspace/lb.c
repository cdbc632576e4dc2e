/* Userspace mode, pure logic: round robin with ClientIP affinity, the
 * proxy port range syntax, deadline queues and sockaddr conversion. No
 * I/O here, so the unit tests can drive it directly. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/util.h"
#include "us.h"

/* ---- port range -------------------------------------------------------- */

static int parse_port(const char *s, const char *end, unsigned long *out)
{
	char *e;
	unsigned long v;

	if (s == end || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &e, 10);
	if (errno || e != end || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

int port_range_parse(const char *s, struct port_range *out, char **err)
{
	const char *sep;
	unsigned long a, b;

	out->lo = 0;
	out->n = 0;
	if (!s || !*s)
		return 0;
	sep = strpbrk(s, "-+");
	if (!sep) {
		if (parse_port(s, s + strlen(s), &a) < 0)
			goto bad;
		b = a;
	} else {
		if (parse_port(s, sep, &a) < 0 || parse_port(sep + 1, sep + strlen(sep), &b) < 0)
			goto bad;
		if (*sep == '+') {
			if (a + b > 65535)
				goto bad;
			b = a + b;
		}
	}
	if (a == 0 && b == 0)
		return 0;   /* "0" and "0-0": any port */
	if (a == 0 || b < a)
		goto bad;
	out->lo = (uint16_t)a;
	out->n = (uint32_t)(b - a + 1);
	return 0;
bad:
	if (err)
		*err = xasprintf("--proxy-port-range/portRange: \"%s\" is not a valid port range "
				 "(A-B or A+OFFSET, 1..65535)", s);
	return -EINVAL;
}

/* ---- deadline queue ----------------------------------------------------- */

void dq_init(struct dqueue *q)
{
	dlist_init(&q->head);
	q->n = 0;
}

bool dq_add(struct dqueue *q, struct dq_node *node, unsigned long long deadline)
{
	struct dlist *pos;

	if (node->queued)
		dq_del(q, node);
	node->deadline = deadline;
	for (pos = q->head.prev; pos != &q->head; pos = pos->prev) {
		const struct dq_node *o = us_container_of(pos, struct dq_node, link);

		if (o->deadline <= deadline)
			break;
	}
	dlist_insert_after(pos, &node->link);
	node->queued = true;
	q->n++;
	return pos == &q->head;
}

void dq_del(struct dqueue *q, struct dq_node *node)
{
	if (!node->queued)
		return;
	dlist_unlink(&node->link);
	node->queued = false;
	q->n--;
}

struct dq_node *dq_first(const struct dqueue *q)
{
	if (dlist_empty(&q->head))
		return NULL;
	return us_container_of(q->head.next, struct dq_node, link);
}

struct dq_node *dq_pop_expired(struct dqueue *q, unsigned long long now)
{
	struct dq_node *n = dq_first(q);

	if (!n || n->deadline > now)
		return NULL;
	dq_del(q, n);
	return n;
}

/* ---- sockaddr ------------------------------------------------------------ */

socklen_t us_sockaddr(const struct addr *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, ip->bytes, 16);
		return sizeof(*s6);
	}
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip->bytes, 4);
		return sizeof(*s4);
	}
}

void us_from_sockaddr(const struct sockaddr_storage *ss, struct addr *ip, uint16_t *port)
{
	memset(ip, 0, sizeof(*ip));
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		/* A v4-mapped peer on a v6 socket is a v4 client. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			ip->family = AF_INET;
			memcpy(ip->bytes, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			ip->family = AF_INET6;
			memcpy(ip->bytes, &s6->sin6_addr, 16);
		}
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		ip->family = AF_INET;
		memcpy(ip->bytes, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	}
}

const char *us_ep_str(const struct addr *ip, uint16_t port, char *buf)
{
	char a[ADDR_STRLEN];

	addr_str(ip, a);
	if (ip->family == AF_INET6)
		snprintf(buf, US_EPSTRLEN, "[%s]:%u", a, port);
	else
		snprintf(buf, US_EPSTRLEN, "%s:%u", a, port);
	return buf;
}

/* ---- load balancer ----------------------------------------------------- */

void lb_init(struct lb *lb, bool affinity, uint32_t timeout_s)
{
	memset(lb, 0, sizeof(*lb));
	lb->affinity = affinity;
	lb->ttl_ms = (unsigned long long)(timeout_s ? timeout_s : 10800) * 1000ULL;
	strmap_init(&lb->sticky);
}

static void sticky_clear(struct lb *lb, bool (*drop)(const struct lb *, const struct lb_sticky *, unsigned long long),
			 unsigned long long now)
{
	const char *k;
	void *v;
	size_t it = 0, n = 0;
	char **dead = NULL;

	while (strmap_next(&lb->sticky, &it, &k, &v)) {
		if (drop(lb, v, now)) {
			dead = xrealloc(dead, (n + 1) * sizeof(*dead));
			dead[n++] = xstrdup(k);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(strmap_del(&lb->sticky, dead[i]));
		free(dead[i]);
	}
	free(dead);
}

static bool drop_all(const struct lb *lb, const struct lb_sticky *s, unsigned long long now)
{
	return true;
}

void lb_fini(struct lb *lb)
{
	sticky_clear(lb, drop_all, 0);
	strmap_free(&lb->sticky);
	free(lb->eps);
	lb->eps = NULL;
	lb->n_eps = 0;
}

static bool ep_equal(const struct lb_ep *a, const struct lb_ep *b)
{
	return a->port == b->port && addr_equal(&a->ip, &b->ip);
}

static bool lb_has(const struct lb *lb, const struct lb_ep *ep)
{
	for (size_t i = 0; i < lb->n_eps; i++)
		if (ep_equal(&lb->eps[i], ep))
			return true;
	return false;
}

static bool drop_gone(const struct lb *lb, const struct lb_sticky *s, unsigned long long now)
{
	return !lb_has(lb, &s->ep);
}

static bool drop_stale(const struct lb *lb, const struct lb_sticky *s, unsigned long long now)
{
	return now - s->last_ms > lb->ttl_ms || !lb_has(lb, &s->ep);
}

bool lb_set(struct lb *lb, const struct lb_ep *eps, size_t n, bool shuffle)
{
	bool same = n == lb->n_eps;

	/* Same set in any order counts as unchanged. */
	for (size_t i = 0; same && i < n; i++)
		same = lb_has(lb, &eps[i]);
	if (same)
		return false;
	free(lb->eps);
	lb->eps = n ? xmalloc(n * sizeof(*lb->eps)) : NULL;
	if (n)
		memcpy(lb->eps, eps, n * sizeof(*lb->eps));
	lb->n_eps = n;
	/* Shuffle so that every node does not send its first connection to
	 * the same endpoint (upstream does the same). */
	for (size_t i = n; shuffle && i > 1; i--) {
		size_t j = (size_t)random() % i;
		struct lb_ep tmp = lb->eps[i - 1];

		lb->eps[i - 1] = lb->eps[j];
		lb->eps[j] = tmp;
	}
	lb->next = 0;
	sticky_clear(lb, drop_gone, 0);
	return true;
}

size_t lb_usable_endpoints(const struct svc_port_info *pi, struct lb_ep *out)
{
	size_t *idx = xmalloc((pi->n_eps ? pi->n_eps : 1) * sizeof(*idx));
	size_t n = svc_usable_endpoints(pi, false, idx);

	for (size_t i = 0; i < n; i++)
		out[i] = (struct lb_ep){ pi->eps[idx[i]].ip, pi->eps[idx[i]].port };
	free(idx);
	return n;
}

int lb_pick(struct lb *lb, const struct addr *client, unsigned long long now,
	    bool reset_affinity, struct lb_ep *out)
{
	char key[ADDR_STRLEN];
	struct lb_sticky *s = NULL;

	if (!lb->n_eps)
		return -ENOENT;
	if (lb->affinity && client) {
		addr_str(client, key);
		s = strmap_get(&lb->sticky, key);
		if (s && !reset_affinity && now - s->last_ms <= lb->ttl_ms && lb_has(lb, &s->ep)) {
			s->last_ms = now;
			*out = s->ep;
			return 0;
		}
	}
	if (lb->next >= lb->n_eps)
		lb->next = 0;
	*out = lb->eps[lb->next++];
	if (lb->affinity && client) {
		if (!s) {
			s = xcalloc(1, sizeof(*s));
			strmap_put(&lb->sticky, key, s);
		}
		s->ep = *out;
		s->last_ms = now;
	}
	return 0;
}

void lb_expire(struct lb *lb, unsigned long long now)
{
	if (lb->affinity)
		sticky_clear(lb, drop_stale, now);
}
