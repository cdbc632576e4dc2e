/* kube-ipvs0 and local addresses through libnl-route-3. */
#include "config.h"

#include "dummy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include "util.h"

struct kp_dummy {
	struct nl_sock *sk;
	int ifindex;
};

static int lookup(struct kp_dummy *d)
{
	struct rtnl_link *link = NULL;
	int rc = rtnl_link_get_kernel(d->sk, 0, KP_DUMMY_NAME, &link);

	if (rc < 0) {
		d->ifindex = 0;
		return rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV ? 0 : -EIO;
	}
	d->ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return 0;
}

int kp_dummy_open(struct kp_dummy **out, int create)
{
	struct kp_dummy *d = xcalloc(1, sizeof(*d));
	int rc;

	d->sk = nl_socket_alloc();
	if (!d->sk) {
		free(d);
		return -ENOMEM;
	}
	if (nl_connect(d->sk, NETLINK_ROUTE) < 0) {
		rc = -EIO;
		goto fail;
	}
	nl_socket_set_buffer_size(d->sk, 1 << 20, 1 << 20);
	rc = lookup(d);
	if (rc < 0)
		goto fail;
	if (!d->ifindex && create) {
		struct rtnl_link *link = rtnl_link_alloc();

		rtnl_link_set_name(link, KP_DUMMY_NAME);
		rtnl_link_set_type(link, "dummy");
		rc = rtnl_link_add(d->sk, link, NLM_F_CREATE);
		rtnl_link_put(link);
		if (rc < 0 && rc != -NLE_EXIST) {
			rc = -EIO;
			goto fail;
		}
		rc = lookup(d);
		if (rc < 0 || !d->ifindex) {
			rc = rc < 0 ? rc : -ENODEV;
			goto fail;
		}
	}
	*out = d;
	return 0;
fail:
	nl_socket_free(d->sk);
	free(d);
	return rc;
}

void kp_dummy_close(struct kp_dummy *d)
{
	if (!d)
		return;
	nl_socket_free(d->sk);
	free(d);
}

int kp_dummy_ifindex(const struct kp_dummy *d)
{
	return d->ifindex;
}

static void to_addr(struct nl_addr *na, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)nl_addr_get_family(na);
	memcpy(a->bytes, nl_addr_get_binary_addr(na), a->family == AF_INET6 ? 16 : 4);
}

struct walk {
	int ifindex;            /* only this link; 0 = all but exclude */
	int exclude;
	uint8_t family;         /* 0 = both */
	struct addr *v;
	size_t n, cap;
};

static void walk_one(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *ra = (struct rtnl_addr *)obj;
	struct walk *w = arg;
	struct nl_addr *local = rtnl_addr_get_local(ra);
	int fam = rtnl_addr_get_family(ra);

	if (!local || (fam != AF_INET && fam != AF_INET6))
		return;
	if (w->family && fam != w->family)
		return;
	if (w->ifindex && rtnl_addr_get_ifindex(ra) != w->ifindex)
		return;
	if (w->exclude && rtnl_addr_get_ifindex(ra) == w->exclude)
		return;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
	}
	to_addr(local, &w->v[w->n++]);
}

static int walk_addrs(struct kp_dummy *d, struct walk *w)
{
	struct nl_cache *cache = NULL;

	if (rtnl_addr_alloc_cache(d->sk, &cache) < 0)
		return -EIO;
	nl_cache_foreach(cache, walk_one, w);
	nl_cache_free(cache);
	return 0;
}

int kp_dummy_list(struct kp_dummy *d, struct addr **out, size_t *n)
{
	struct walk w = { .ifindex = d->ifindex };
	int rc;

	*out = NULL;
	*n = 0;
	if (!d->ifindex)
		return 0;
	rc = walk_addrs(d, &w);
	if (rc < 0) {
		free(w.v);
		return rc;
	}
	*out = w.v;
	*n = w.n;
	return 0;
}

static struct rtnl_addr *mk_addr(struct kp_dummy *d, const struct addr *a)
{
	struct rtnl_addr *ra = rtnl_addr_alloc();
	struct nl_addr *na;

	if (!ra)
		return NULL;
	na = nl_addr_build(a->family, a->bytes, addr_len(a));
	if (!na) {
		rtnl_addr_put(ra);
		return NULL;
	}
	nl_addr_set_prefixlen(na, a->family == AF_INET6 ? 128 : 32);
	rtnl_addr_set_ifindex(ra, d->ifindex);
	rtnl_addr_set_family(ra, a->family);
	rtnl_addr_set_local(ra, na);
	rtnl_addr_set_prefixlen(ra, a->family == AF_INET6 ? 128 : 32);
	nl_addr_put(na);
	return ra;
}

/* Adds (or deletes) n addresses: the requests are concatenated into few
 * sendmsg calls without ACK except the last one; errors arrive with the
 * sequence number. EEXIST on add and EADDRNOTAVAIL/ENOENT on delete are
 * success. 0 or -errno. */
static int change_many(struct kp_dummy *d, const struct addr *v, size_t n, bool add)
{
	struct strbuf out;
	uint32_t seq = 0, last = 0;
	int rc = 0;
	bool done = false;

	if (!n)
		return 0;
	sb_init(&out);
	for (size_t i = 0; i < n; i++) {
		static const char zero[NLMSG_ALIGNTO];
		struct rtnl_addr *ra = mk_addr(d, &v[i]);
		struct nl_msg *msg = NULL;
		struct nlmsghdr *h;

		if (!ra || (add ? rtnl_addr_build_add_request(ra, NLM_F_CREATE | NLM_F_EXCL, &msg)
				: rtnl_addr_build_delete_request(ra, 0, &msg)) < 0) {
			rtnl_addr_put(ra);
			rc = -ENOMEM;
			break;
		}
		rtnl_addr_put(ra);
		h = nlmsg_hdr(msg);
		h->nlmsg_flags |= NLM_F_REQUEST;
		h->nlmsg_flags &= ~NLM_F_ACK;
		if (i == n - 1)
			h->nlmsg_flags |= NLM_F_ACK;
		h->nlmsg_seq = last = ++seq;
		h->nlmsg_pid = nl_socket_get_local_port(d->sk);
		sb_add(&out, (const char *)h, h->nlmsg_len);
		sb_add(&out, zero, NLMSG_ALIGN(h->nlmsg_len) - h->nlmsg_len);
		nlmsg_free(msg);
		if (out.len >= 32768 || i == n - 1) {
			if (nl_sendto(d->sk, out.buf, out.len) < 0) {
				rc = -EIO;
				break;
			}
			sb_reset(&out);
		}
	}
	sb_free(&out);
	if (rc < 0)
		return rc;
	while (!done) {
		struct sockaddr_nl peer;
		unsigned char *buf = NULL;
		struct nlmsghdr *h;
		int len = nl_recv(d->sk, &peer, &buf, NULL);

		if (len <= 0) {
			free(buf);
			return rc ? rc : -EIO;
		}
		for (h = (struct nlmsghdr *)buf; nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
			struct nlmsgerr *e;

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			e = nlmsg_data(h);
			if (h->nlmsg_seq == last)
				done = true;
			if (!e->error || (add && e->error == -EEXIST) ||
			    (!add && (e->error == -EADDRNOTAVAIL || e->error == -ENOENT || e->error == -ENODEV)))
				continue;
			if (!rc)
				rc = e->error;
		}
		free(buf);
	}
	return rc;
}

static int change(struct kp_dummy *d, const struct addr *a, bool add)
{
	return change_many(d, a, 1, add);
}

int kp_dummy_add(struct kp_dummy *d, const struct addr *a)
{
	return change(d, a, true);
}

int kp_dummy_del(struct kp_dummy *d, const struct addr *a)
{
	return change(d, a, false);
}

static int cmp_addr(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

int kp_dummy_sync(struct kp_dummy *d, const struct addr *want, size_t n, size_t *added, size_t *removed)
{
	struct addr *have = NULL, *w, *adds, *dels;
	size_t nh = 0, i = 0, j = 0, na = 0, nd = 0;
	int rc;

	*added = *removed = 0;
	rc = kp_dummy_list(d, &have, &nh);
	if (rc < 0)
		return rc;
	w = xmalloc((n ? n : 1) * sizeof(*w));
	adds = xmalloc((n ? n : 1) * sizeof(*adds));
	dels = xmalloc((nh ? nh : 1) * sizeof(*dels));
	if (n) {
		memcpy(w, want, n * sizeof(*w));
		qsort(w, n, sizeof(*w), cmp_addr);
	}
	if (nh)
		qsort(have, nh, sizeof(*have), cmp_addr);
	while (i < n || j < nh) {
		int c = i == n ? 1 : j == nh ? -1 : addr_cmp(&w[i], &have[j]);

		if (c < 0) {
			if (i == 0 || !addr_equal(&w[i], &w[i - 1]))
				adds[na++] = w[i];
			i++;
		} else if (c > 0) {
			dels[nd++] = have[j++];
		} else {
			/* skip duplicates of this address in want */
			struct addr cur = w[i];

			while (i < n && addr_equal(&w[i], &cur))
				i++;
			j++;
		}
	}
	rc = change_many(d, dels, nd, false);
	if (rc == 0)
		rc = change_many(d, adds, na, true);
	if (rc == 0) {
		*added = na;
		*removed = nd;
	}
	free(adds);
	free(dels);
	free(w);
	free(have);
	return rc;
}

int kp_dummy_delete(struct kp_dummy *d)
{
	struct rtnl_link *link;
	int rc;

	if (!d->ifindex)
		return 0;
	link = rtnl_link_alloc();
	rtnl_link_set_ifindex(link, d->ifindex);
	rc = rtnl_link_delete(d->sk, link);
	rtnl_link_put(link);
	if (rc < 0 && rc != -NLE_OBJ_NOTFOUND && rc != -NLE_NODEV)
		return -EIO;
	d->ifindex = 0;
	return 0;
}

static bool skip_node_addr(const struct addr *a)
{
	if (a->family == AF_INET)
		return a->bytes[0] == 127 || (a->bytes[0] == 169 && a->bytes[1] == 254);
	if (a->bytes[0] == 0xfe && (a->bytes[1] & 0xc0) == 0x80)
		return true;
	for (int i = 0; i < 15; i++)
		if (a->bytes[i])
			return false;
	return a->bytes[15] == 1;   /* ::1 */
}

int kp_node_addrs(struct kp_dummy *d, uint8_t family, const struct cidr *only, size_t n_only,
		  struct addr **out, size_t *n)
{
	struct walk w = { .exclude = d->ifindex, .family = family };
	size_t k = 0;
	int rc = walk_addrs(d, &w);

	if (rc < 0) {
		free(w.v);
		return rc;
	}
	for (size_t i = 0; i < w.n; i++) {
		bool ok = !skip_node_addr(&w.v[i]);

		if (ok && n_only) {
			ok = false;
			for (size_t c = 0; c < n_only; c++)
				if (cidr_contains(&only[c], &w.v[i]))
					ok = true;
		}
		if (ok)
			w.v[k++] = w.v[i];
	}
	if (k)
		qsort(w.v, k, sizeof(*w.v), cmp_addr);
	*out = w.v;
	*n = k;
	return 0;
}
