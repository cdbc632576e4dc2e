#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conntrack.h"
#include "hostaddr.h"
#include "log.h"
#include "util.h"

/* ---- stale UDP entries -------------------------------------------------- */

struct epset {
	struct addr *ips;         /* sorted, distinct */
	size_t n;
};

struct frontend {
	struct addr ip;
	uint16_t port;
	size_t set;               /* index into plan.sets */
};

struct nodeport {
	uint16_t port;
	size_t set;
};

/* What the cleanup compares entries against, built from one proxy_state. */
struct plan {
	struct epset *sets;
	size_t n_sets;
	struct frontend *fes;     /* sorted by ip, port */
	size_t n_fes;
	struct nodeport *nps;     /* sorted by port */
	size_t n_nps;
	struct addr *local;       /* this node's addresses, sorted */
	size_t n_local;
	struct nf_conntrack **doomed;
	size_t n_doomed;
	uint8_t family;           /* of the current dump */
};

struct conntrack_cleaner {
	struct nfct_handle *h;
	char *fingerprint;        /* UDP frontends + endpoints at the last cleanup */
	unsigned long long deleted;
};

struct conntrack_cleaner *conntrack_cleaner_new(char **err)
{
	struct conntrack_cleaner *c;
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);

	if (!h) {
		if (err)
			*err = xasprintf("cannot open a conntrack netlink socket: %s", strerror(errno));
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->h = h;
	return c;
}

void conntrack_cleaner_free(struct conntrack_cleaner *c)
{
	if (!c)
		return;
	nfct_close(c->h);
	free(c->fingerprint);
	free(c);
}

unsigned long long conntrack_cleaner_deleted(const struct conntrack_cleaner *c)
{
	return c->deleted;
}

static int cmp_addr(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

static int cmp_fe(const void *a, const void *b)
{
	const struct frontend *x = a, *y = b;
	int c = addr_cmp(&x->ip, &y->ip);

	return c ? c : (int)x->port - (int)y->port;
}

static int cmp_np(const void *a, const void *b)
{
	return (int)((const struct nodeport *)a)->port - (int)((const struct nodeport *)b)->port;
}

static void add_fe(struct plan *p, const struct addr *ip, uint16_t port, size_t set)
{
	if (!ip->family)
		return;
	p->fes = xrealloc(p->fes, (p->n_fes + 1) * sizeof(*p->fes));
	p->fes[p->n_fes++] = (struct frontend){ .ip = *ip, .port = port, .set = set };
}

/* The service's addresses of one family (external and LB IPs come from the
 * borrowed service, which is valid while ps is). */
static void plan_port(struct plan *p, const struct svc_port_info *sp, struct strbuf *fp)
{
	struct epset set = { 0 };
	size_t idx;
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < sp->n_eps; i++) {
		if (!sp->eps[i].serving)
			continue;
		set.ips = xrealloc(set.ips, (set.n + 1) * sizeof(*set.ips));
		set.ips[set.n++] = sp->eps[i].ip;
	}
	/* A service without serving endpoints needs no cleanup (upstream). */
	if (!set.n) {
		free(set.ips);
		return;
	}
	qsort(set.ips, set.n, sizeof(*set.ips), cmp_addr);
	{
		size_t k = 0;

		for (size_t i = 0; i < set.n; i++)
			if (!k || !addr_equal(&set.ips[k - 1], &set.ips[i]))
				set.ips[k++] = set.ips[i];
		set.n = k;
	}
	idx = p->n_sets;
	p->sets = xrealloc(p->sets, (p->n_sets + 1) * sizeof(*p->sets));
	p->sets[p->n_sets++] = set;

	sb_printf(fp, "%s/%u %s:%u np%u", sp->spn, sp->family, addr_str(&sp->cluster_ip, buf),
		  sp->svc_port, sp->node_port);
	add_fe(p, &sp->cluster_ip, sp->svc_port, idx);
	if (sp->svc) {
		for (size_t i = 0; i < sp->svc->n_external_ips; i++) {
			if (sp->svc->external_ips[i].family != sp->family)
				continue;
			add_fe(p, &sp->svc->external_ips[i], sp->svc_port, idx);
			sb_printf(fp, " x%s", addr_str(&sp->svc->external_ips[i], buf));
		}
		for (size_t i = 0; i < sp->svc->n_lb_ips; i++) {
			if (sp->svc->lb_ips[i].family != sp->family)
				continue;
			add_fe(p, &sp->svc->lb_ips[i], sp->svc_port, idx);
			sb_printf(fp, " l%s", addr_str(&sp->svc->lb_ips[i], buf));
		}
	}
	if (sp->node_port) {
		p->nps = xrealloc(p->nps, (p->n_nps + 1) * sizeof(*p->nps));
		p->nps[p->n_nps++] = (struct nodeport){ .port = sp->node_port, .set = idx };
	}
	sb_puts(fp, " ->");
	for (size_t i = 0; i < set.n; i++)
		sb_printf(fp, " %s", addr_str(&set.ips[i], buf));
	sb_putc(fp, '\n');
}

static void plan_local_addrs(struct plan *p)
{
	long n = host_addresses(&p->local);

	p->n_local = n > 0 ? (size_t)n : 0;
	if (p->n_local)
		qsort(p->local, p->n_local, sizeof(*p->local), cmp_addr);
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n_sets; i++)
		free(p->sets[i].ips);
	free(p->sets);
	free(p->fes);
	free(p->nps);
	free(p->local);
	for (size_t i = 0; i < p->n_doomed; i++)
		nfct_destroy(p->doomed[i]);
	free(p->doomed);
}

static bool set_has(const struct epset *s, const struct addr *a)
{
	return bsearch(a, s->ips, s->n, sizeof(*s->ips), cmp_addr) != NULL;
}

static void get_addr(const struct nf_conntrack *ct, uint8_t family, enum nf_conntrack_attr a4,
		     enum nf_conntrack_attr a6, struct addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = family;
	if (family == AF_INET) {
		uint32_t v = nfct_get_attr_u32(ct, a4);

		memcpy(out->bytes, &v, 4);
	} else {
		const void *v = nfct_get_attr(ct, a6);

		if (v)
			memcpy(out->bytes, v, 16);
	}
}

static int dump_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct plan *p = data;
	struct addr dst, rsrc;
	struct frontend key, *fe;
	bool stale = false;

	if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_UDP)
		return NFCT_CB_CONTINUE;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != p->family)
		return NFCT_CB_CONTINUE;
	get_addr(ct, p->family, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST, &dst);
	get_addr(ct, p->family, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, &rsrc);
	key.ip = dst;
	key.port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	fe = bsearch(&key, p->fes, p->n_fes, sizeof(*p->fes), cmp_fe);
	if (fe && !set_has(&p->sets[fe->set], &rsrc))
		stale = true;
	if (!stale && p->n_nps &&
	    bsearch(&dst, p->local, p->n_local, sizeof(*p->local), cmp_addr)) {
		struct nodeport nk = { .port = key.port }, *np;

		np = bsearch(&nk, p->nps, p->n_nps, sizeof(*p->nps), cmp_np);
		if (np && !set_has(&p->sets[np->set], &rsrc))
			stale = true;
	}
	if (stale) {
		struct nf_conntrack *copy = nfct_clone(ct);

		if (copy) {
			p->doomed = xrealloc(p->doomed, (p->n_doomed + 1) * sizeof(*p->doomed));
			p->doomed[p->n_doomed++] = copy;
		}
	}
	return NFCT_CB_CONTINUE;
}

static int clean_family(struct conntrack_cleaner *c, struct plan *p, uint8_t family)
{
	uint32_t fam = family;
	int deleted = 0;

	p->family = family;
	nfct_callback_register(c->h, NFCT_T_ALL, dump_cb, p);
	if (nfct_query(c->h, NFCT_Q_DUMP, &fam) < 0) {
		int err = -errno;

		nfct_callback_unregister(c->h);
		log_error("Failed to list conntrack entries ipFamily=%s: %s",
			  family == AF_INET ? "IPv4" : "IPv6", strerror(-err));
		return err;
	}
	nfct_callback_unregister(c->h);
	for (size_t i = 0; i < p->n_doomed; i++) {
		if (nfct_query(c->h, NFCT_Q_DESTROY, p->doomed[i]) == 0) {
			deleted++;
		} else if (errno != ENOENT) {
			log_warn("Failed to delete a conntrack entry: %s", strerror(errno));
		}
		nfct_destroy(p->doomed[i]);
	}
	p->n_doomed = 0;
	return deleted;
}

int conntrack_cleaner_sync(struct conntrack_cleaner *c, const struct proxy_state *ps)
{
	struct plan p = { 0 };
	struct strbuf fp;
	bool has4 = false, has6 = false;
	int total = 0, r;

	sb_init(&fp);
	for (size_t i = 0; ps && i < ps->n_ports; i++) {
		const struct svc_port_info *sp = &ps->ports[i];
		size_t before = p.n_sets;

		if (sp->proto != PROTO_UDP)
			continue;
		plan_port(&p, sp, &fp);
		if (p.n_sets > before) {
			has4 |= sp->family == AF_INET;
			has6 |= sp->family == AF_INET6;
		}
	}
	if (c->fingerprint && strcmp(c->fingerprint, sb_cstr(&fp)) == 0) {
		sb_free(&fp);
		plan_free(&p);
		return 0;
	}
	free(c->fingerprint);
	c->fingerprint = sb_steal(&fp);
	if (!p.n_sets) {
		plan_free(&p);
		return 0;
	}
	if (p.n_fes)
		qsort(p.fes, p.n_fes, sizeof(*p.fes), cmp_fe);
	if (p.n_nps) {
		qsort(p.nps, p.n_nps, sizeof(*p.nps), cmp_np);
		plan_local_addrs(&p);
	}
	if (has4) {
		r = clean_family(c, &p, AF_INET);
		if (r < 0)
			goto fail;
		total += r;
	}
	if (has6) {
		r = clean_family(c, &p, AF_INET6);
		if (r < 0)
			goto fail;
		total += r;
	}
	plan_free(&p);
	c->deleted += (unsigned long long)total;
	if (total)
		log_v(2, "Deleted %d stale UDP conntrack entries", total);
	return total;
fail:
	/* Try again at the next sync. */
	free_and_null(&c->fingerprint);
	plan_free(&p);
	return r;
}

/* ---- sysctls ------------------------------------------------------------ */

static int read_int(const char *path, long long *out)
{
	char *buf = NULL, *end;
	size_t len;
	int err = read_file(path, &buf, &len);

	if (err < 0)
		return err;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	if (end == buf || errno) {
		free(buf);
		return -EINVAL;
	}
	free(buf);
	return 0;
}

static int write_int(const char *path, long long v)
{
	char buf[32];
	FILE *f = fopen(path, "w");
	int err = 0;

	if (!f)
		return -errno;
	snprintf(buf, sizeof(buf), "%lld", v);
	if (fputs(buf, f) < 0)
		err = -errno;
	if (fclose(f) != 0 && !err)
		err = -errno;
	return err;
}

/* 1 when written, 0 when already equal, -errno. */
static int set_if_different(const char *root, const char *rel, long long v)
{
	char *path = xasprintf("%s%s", root ? root : "", rel);
	long long cur;
	int err;

	if (read_int(path, &cur) == 0 && cur == v) {
		free(path);
		return 0;
	}
	err = write_int(path, v);
	if (err == 0)
		log_info("Set sysctl entry=\"%s\" value=%lld", rel, v);
	free(path);
	return err < 0 ? err : 1;
}

int conntrack_set_sysctls(const struct config *cfg, const char *root, char **err)
{
	static const char nf[] = "/proc/sys/net/netfilter/";
	struct {
		const char *name;
		unsigned value;
	} timeouts[] = {
		{ "nf_conntrack_tcp_timeout_established", cfg->conntrack_tcp_established_s },
		{ "nf_conntrack_tcp_timeout_close_wait", cfg->conntrack_tcp_close_wait_s },
		{ "nf_conntrack_udp_timeout", cfg->conntrack_udp_timeout_s },
		{ "nf_conntrack_udp_timeout_stream", cfg->conntrack_udp_stream_timeout_s },
	};
	char rel[128];
	int r;

	if (cfg->conntrack_max_per_core > 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		long long max = (long long)cfg->conntrack_max_per_core * (ncpu > 0 ? ncpu : 1);

		if (max > 1048576)
			max = 1048576;      /* upstream's cap */
		else if (max < cfg->conntrack_min)
			max = cfg->conntrack_min;
		snprintf(rel, sizeof(rel), "%snf_conntrack_max", nf);
		r = set_if_different(root, rel, max);
		if (r == -EACCES || r == -EPERM || r == -EROFS) {
			/* Read-only outside the initial network namespace. */
			log_warn("Cannot set nf_conntrack_max to %lld (%s): leaving it as it is", max, strerror(-r));
		} else if (r < 0) {
			if (err)
				*err = xasprintf("%s%s: %s", root ? root : "", rel, strerror(-r));
			return r;
		} else if (r == 1) {
			/* The hash table should hold a quarter of max; the
			 * parameter is global, so only touch it after we were
			 * allowed to change max itself. */
			char *hp = xasprintf("%s/sys/module/nf_conntrack/parameters/hashsize", root ? root : "");
			long long hs;

			if (read_int(hp, &hs) == 0 && hs < max / 4) {
				int e = write_int(hp, max / 4);

				if (e < 0)
					log_warn("Cannot set conntrack hashsize to %lld: %s", max / 4, strerror(-e));
				else
					log_info("Setting conntrack hashsize conntrackHashsize=%lld", max / 4);
			}
			free(hp);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(timeouts); i++) {
		if (!timeouts[i].value)
			continue;
		snprintf(rel, sizeof(rel), "%s%s", nf, timeouts[i].name);
		r = set_if_different(root, rel, timeouts[i].value);
		if (r < 0) {
			if (err)
				*err = xasprintf("%s%s: %s", root ? root : "", rel, strerror(-r));
			return r;
		}
	}
	return 0;
}

int set_oom_score_adj(int value, const char *root)
{
	int r = set_if_different(root, "/proc/self/oom_score_adj", value);

	return r < 0 ? r : 0;
}
