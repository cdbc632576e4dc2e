/* The ipvs proxy mode: one IPVS virtual server per (service address,
 * protocol, port), real servers in masquerade mode, service addresses on
 * the kube-ipvs0 dummy interface, ipsets plus a small fixed iptables rule
 * set for masquerading and filtering (upstream pkg/proxy/ipvs).
 *
 * Incremental: a full sync reads every virtual server and real server from
 * the kernel and repairs any difference; a partial sync only compares the
 * services in the dirty set with what the last sync left in the kernel. A
 * full reconcile also runs every --ipvs-sync-period. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/ip_vs.h>

#include "dummy.h"
#include "ipset.h"
#include "log.h"
#include "loop.h"
#include "modes/mode.h"
#include "netlink.h"
#include "rules.h"
#include "strmap.h"
#include "util.h"

/* Upper bound for draining a removed TCP real server; upstream waits for
 * its connections without a bound. KUBE_PROXY_IPVS_MAX_GRACE (seconds)
 * overrides it (tests). */
#define DEFAULT_MAX_GRACE_S 900
#define GRACE_CHECK_MS 2000

/* One virtual server with its real servers (wanted or believed applied). */
struct vs_entry {
	struct ipvs_service svc;
	struct ipvs_dest *dests;
	size_t n_dests, cap_dests;
	char *owner;                /* "ns/name", NULL if unknown (read from the kernel) */
};

/* A removed real server kept at weight 0 until its connections end. */
struct grace {
	char *vs_key;
	struct ipvs_dest dest;
	unsigned long long deadline_ms;
};

struct ipvs_priv {
	const struct config *cfg;
	struct ipvs_nl *nl;
	struct kp_dummy *dummy;
	struct kp_sets *sets[2];        /* [0] IPv4, [1] IPv6 */
	struct strmap applied;          /* vs key -> struct vs_entry * */
	struct addr *vips;              /* addresses applied to kube-ipvs0 */
	size_t n_vips;
	struct grace *grace;
	size_t n_grace, cap_grace;
	struct loop_timer *grace_timer;
	unsigned long long last_full_ms;
	unsigned max_grace_s;
	bool synced_once;
	bool need_full;                 /* the last sync failed */
	unsigned long nl_changes;       /* netlink changes in the last sync */
	struct addr *node4, *node6;     /* node addresses, refreshed at full syncs */
	size_t n_node4, n_node6;
};

/* ---- helpers ---- */

static uint16_t ipproto(enum l4_proto p)
{
	return p == PROTO_UDP ? IPPROTO_UDP : p == PROTO_SCTP ? IPPROTO_SCTP : IPPROTO_TCP;
}

static char *vs_key(const struct ipvs_service *s)
{
	char ip[ADDR_STRLEN];

	return xasprintf("%u/%s/%u", s->protocol, addr_str(&s->addr, ip), s->port);
}

static void vs_free(struct vs_entry *e)
{
	if (!e)
		return;
	free(e->dests);
	free(e->owner);
	free(e);
}

static void vs_add_dest(struct vs_entry *e, const struct ipvs_dest *d)
{
	for (size_t i = 0; i < e->n_dests; i++)
		if (e->dests[i].port == d->port && addr_equal(&e->dests[i].addr, &d->addr))
			return;
	if (e->n_dests == e->cap_dests) {
		e->cap_dests = e->cap_dests ? e->cap_dests * 2 : 4;
		e->dests = xrealloc(e->dests, e->cap_dests * sizeof(*e->dests));
	}
	e->dests[e->n_dests++] = *d;
}

static struct ipvs_dest *vs_find_dest(struct vs_entry *e, const struct ipvs_dest *d)
{
	for (size_t i = 0; i < e->n_dests; i++)
		if (e->dests[i].port == d->port && addr_equal(&e->dests[i].addr, &d->addr))
			return &e->dests[i];
	return NULL;
}

static void vs_drop_dest(struct vs_entry *e, const struct ipvs_dest *d)
{
	struct ipvs_dest *x = vs_find_dest(e, d);

	if (x)
		*x = e->dests[--e->n_dests];
}

static void map_free_entries(struct strmap *m)
{
	const char *k;
	void *v;

	for (size_t it = 0; strmap_next(m, &it, &k, &v);)
		vs_free(v);
	strmap_free(m);
}

static bool excluded(const struct config *cfg, const struct addr *a)
{
	for (size_t i = 0; i < cfg->n_ipvs_exclude_cidrs; i++)
		if (cidr_contains(&cfg->ipvs_exclude_cidrs[i], a))
			return true;
	return false;
}

static int fam_idx(uint8_t family)
{
	return family == AF_INET6 ? 1 : 0;
}

/* ---- desired state ---- */

struct desired {
	struct strmap vs;               /* vs key -> struct vs_entry * */
	struct addr *vips;              /* for kube-ipvs0 */
	size_t n_vips, cap_vips;
};

static void add_vip(struct desired *d, const struct addr *a)
{
	if (d->n_vips == d->cap_vips) {
		d->cap_vips = d->cap_vips ? d->cap_vips * 2 : 64;
		d->vips = xrealloc(d->vips, d->cap_vips * sizeof(*d->vips));
	}
	d->vips[d->n_vips++] = *a;
}

static struct vs_entry *add_vs(struct desired *d, const struct config *cfg,
			       const struct svc_port_info *p, const struct addr *a, uint16_t port)
{
	struct vs_entry *e = xcalloc(1, sizeof(*e));
	struct vs_entry *old;
	char *key;

	e->svc.af = p->family;
	e->svc.protocol = ipproto(p->proto);
	e->svc.addr = *a;
	e->svc.port = port;
	snprintf(e->svc.sched, sizeof(e->svc.sched), "%s",
		 cfg->ipvs_scheduler && *cfg->ipvs_scheduler ? cfg->ipvs_scheduler : "rr");
	e->svc.netmask = p->family == AF_INET6 ? 128 : 0xffffffff;
	if (p->svc->affinity_client_ip) {
		e->svc.flags = IP_VS_SVC_F_PERSISTENT;
		e->svc.timeout = p->svc->affinity_timeout;
	}
	e->owner = xstrdup(p->key);
	key = vs_key(&e->svc);
	old = strmap_put(&d->vs, key, e);
	free(key);
	vs_free(old);   /* two services claiming one address: last wins */
	return e;
}

static void fill_dests(struct vs_entry *e, const struct svc_port_info *p, bool local_only)
{
	size_t *idx = xmalloc((p->n_eps ? p->n_eps : 1) * sizeof(*idx));
	size_t n = svc_usable_endpoints(p, local_only, idx);

	for (size_t i = 0; i < n; i++) {
		const struct svc_endpoint *ep = &p->eps[idx[i]];
		struct ipvs_dest d = { .addr = ep->ip, .port = ep->port, .fwd = IP_VS_CONN_F_MASQ, .weight = 1 };

		vs_add_dest(e, &d);
	}
	free(idx);
}

static void set_entry(struct kp_sets *k, enum kp_set s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_entry(struct kp_sets *k, enum kp_set s, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	kp_sets_add(k, s, sb_cstr(&sb));
	sb_free(&sb);
}

/* Computes every virtual server, set entry and dummy address of ps. */
static void build_desired(const struct config *cfg, const struct proxy_state *ps,
			  const struct addr *node4, size_t n4, const struct addr *node6, size_t n6,
			  struct desired *d, struct kp_sets **sets)
{
	strmap_init(&d->vs);
	for (int f = 0; f < 2; f++)
		kp_sets_clear(sets[f]);
	for (size_t i = 0; i < ps->n_ports; i++) {
		const struct svc_port_info *p = &ps->ports[i];
		const struct service *svc = p->svc;
		struct kp_sets *k = sets[fam_idx(p->family)];
		const char *pl = proto_lower(p->proto);
		char ip[ADDR_STRLEN], ip2[ADDR_STRLEN];
		struct vs_entry *e;

		if (svc->type == SVC_EXTERNAL_NAME || p->cluster_ip.family != p->family)
			continue;
		addr_str(&p->cluster_ip, ip);
		e = add_vs(d, cfg, p, &p->cluster_ip, p->svc_port);
		fill_dests(e, p, svc->itp_local);
		add_vip(d, &p->cluster_ip);
		set_entry(k, SET_CLUSTER_IP, "%s,%s:%u", ip, pl, p->svc_port);
		set_entry(k, SET_IPVS_IPS, "%s", ip);
		for (size_t j = 0; j < p->n_eps; j++) {
			if (!p->eps[j].is_local)
				continue;
			addr_str(&p->eps[j].ip, ip2);
			set_entry(k, SET_LOOP_BACK, "%s,%s:%u,%s", ip2, pl, p->eps[j].port, ip2);
		}
		for (size_t j = 0; j < svc->n_external_ips; j++) {
			const struct addr *x = &svc->external_ips[j];

			if (x->family != p->family)
				continue;
			e = add_vs(d, cfg, p, x, p->svc_port);
			fill_dests(e, p, svc->etp_local);
			add_vip(d, x);
			addr_str(x, ip);
			set_entry(k, SET_EXTERNAL_IP, "%s,%s:%u", ip, pl, p->svc_port);
			if (svc->etp_local)
				set_entry(k, SET_EXTERNAL_IP_LOCAL, "%s,%s:%u", ip, pl, p->svc_port);
			set_entry(k, SET_IPVS_IPS, "%s", ip);
		}
		for (size_t j = 0; j < svc->n_lb_ips; j++) {
			const struct addr *x = &svc->lb_ips[j];
			char cb[CIDR_STRLEN];

			if (x->family != p->family)
				continue;
			e = add_vs(d, cfg, p, x, p->svc_port);
			fill_dests(e, p, svc->etp_local);
			add_vip(d, x);
			addr_str(x, ip);
			set_entry(k, SET_LOAD_BALANCER, "%s,%s:%u", ip, pl, p->svc_port);
			if (svc->etp_local)
				set_entry(k, SET_LOAD_BALANCER_LOCAL, "%s,%s:%u", ip, pl, p->svc_port);
			if (svc->n_lb_source_ranges)
				set_entry(k, SET_LOAD_BALANCER_FW, "%s,%s:%u", ip, pl, p->svc_port);
			for (size_t r = 0; r < svc->n_lb_source_ranges; r++) {
				if (svc->lb_source_ranges[r].base.family != p->family)
					continue;
				set_entry(k, SET_LOAD_BALANCER_SOURCE_CIDR, "%s,%s:%u,%s", ip, pl, p->svc_port,
					  cidr_str(&svc->lb_source_ranges[r], cb));
			}
			set_entry(k, SET_IPVS_IPS, "%s", ip);
		}
		if (p->node_port) {
			const struct addr *na = p->family == AF_INET6 ? node6 : node4;
			size_t nn = p->family == AF_INET6 ? n6 : n4;

			for (size_t j = 0; j < nn; j++) {
				e = add_vs(d, cfg, p, &na[j], p->node_port);
				fill_dests(e, p, svc->etp_local);
				if (p->proto == PROTO_SCTP) {
					addr_str(&na[j], ip);
					set_entry(k, svc->etp_local ? SET_NODE_PORT_LOCAL_SCTP : SET_NODE_PORT_SCTP,
						  "%s,sctp:%u", ip, p->node_port);
					if (svc->etp_local)
						set_entry(k, SET_NODE_PORT_SCTP, "%s,sctp:%u", ip, p->node_port);
				}
			}
			if (p->proto == PROTO_TCP || p->proto == PROTO_UDP) {
				bool tcp = p->proto == PROTO_TCP;

				set_entry(k, tcp ? SET_NODE_PORT_TCP : SET_NODE_PORT_UDP, "%u", p->node_port);
				if (svc->etp_local)
					set_entry(k, tcp ? SET_NODE_PORT_LOCAL_TCP : SET_NODE_PORT_LOCAL_UDP,
						  "%u", p->node_port);
			}
		}
		if (svc->etp_local && svc->health_check_node_port)
			set_entry(k, SET_HEALTH_CHECK_NODE_PORT, "%u", svc->health_check_node_port);
	}
}

static void desired_free(struct desired *d)
{
	map_free_entries(&d->vs);
	free(d->vips);
}

static int node_addrs(const struct config *cfg, struct kp_dummy *dm, struct addr **a4, size_t *n4,
		      struct addr **a6, size_t *n6)
{
	int rc = kp_node_addrs(dm, AF_INET, cfg->nodeport_addresses, cfg->n_nodeport_addresses, a4, n4);

	if (rc < 0)
		return rc;
	rc = kp_node_addrs(dm, AF_INET6, cfg->nodeport_addresses, cfg->n_nodeport_addresses, a6, n6);
	if (rc < 0) {
		free(*a4);
		*a4 = NULL;
	}
	return rc;
}

/* ---- kernel state ---- */

/* Replaces p->applied with what the kernel has (every virtual server). */
static int read_kernel(struct ipvs_priv *p)
{
	struct ipvs_service *svcs = NULL;
	size_t n = 0;
	struct strmap fresh;
	int rc = ipvs_list_services(p->nl, &svcs, &n);

	if (rc < 0)
		return rc;
	strmap_init(&fresh);
	for (size_t i = 0; i < n; i++) {
		struct vs_entry *e = xcalloc(1, sizeof(*e));
		struct vs_entry *old;
		char *key;

		e->svc = svcs[i];
		rc = ipvs_list_dests(p->nl, &svcs[i], &e->dests, &e->n_dests);
		if (rc < 0) {
			vs_free(e);
			map_free_entries(&fresh);
			free(svcs);
			return rc;
		}
		e->cap_dests = e->n_dests;
		key = vs_key(&e->svc);
		old = strmap_get(&p->applied, key);
		if (old && old->owner)
			e->owner = xstrdup(old->owner);
		vs_free(strmap_put(&fresh, key, e));
		free(key);
	}
	free(svcs);
	map_free_entries(&p->applied);
	p->applied = fresh;
	return 0;
}

static void grace_add(struct ipvs_priv *p, const char *key, const struct ipvs_dest *d)
{
	for (size_t i = 0; i < p->n_grace; i++)
		if (strcmp(p->grace[i].vs_key, key) == 0 && p->grace[i].dest.port == d->port &&
		    addr_equal(&p->grace[i].dest.addr, &d->addr))
			return;
	if (p->n_grace == p->cap_grace) {
		p->cap_grace = p->cap_grace ? p->cap_grace * 2 : 8;
		p->grace = xrealloc(p->grace, p->cap_grace * sizeof(*p->grace));
	}
	p->grace[p->n_grace].vs_key = xstrdup(key);
	p->grace[p->n_grace].dest = *d;
	p->grace[p->n_grace].deadline_ms = now_ms() + (unsigned long long)p->max_grace_s * 1000;
	p->n_grace++;
	if (p->grace_timer && !loop_timer_armed(p->grace_timer))
		loop_timer_arm(p->grace_timer, GRACE_CHECK_MS);
}

static void grace_drop(struct ipvs_priv *p, size_t i)
{
	free(p->grace[i].vs_key);
	p->grace[i] = p->grace[--p->n_grace];
}

static void grace_forget(struct ipvs_priv *p, const char *key, const struct ipvs_dest *d)
{
	for (size_t i = 0; i < p->n_grace; i++)
		if (strcmp(p->grace[i].vs_key, key) == 0 && (!d || (p->grace[i].dest.port == d->port &&
		    addr_equal(&p->grace[i].dest.addr, &d->addr)))) {
			grace_drop(p, i);
			i--;
		}
}

/* Deletes draining real servers whose connections ended (or whose grace
 * ran out). */
static void grace_check(struct ipvs_priv *p)
{
	unsigned long long now = now_ms();
	char buf[64], ip[ADDR_STRLEN];

	for (size_t i = 0; i < p->n_grace; i++) {
		struct grace *g = &p->grace[i];
		struct vs_entry *e = strmap_get(&p->applied, g->vs_key);
		struct ipvs_dest *kd = NULL, *cur;
		size_t n = 0;
		bool gone = false;

		if (!e) {
			grace_drop(p, i--);
			continue;
		}
		if (ipvs_list_dests(p->nl, &e->svc, &kd, &n) < 0) {
			free(kd);
			continue;
		}
		cur = NULL;
		for (size_t j = 0; j < n; j++)
			if (kd[j].port == g->dest.port && addr_equal(&kd[j].addr, &g->dest.addr))
				cur = &kd[j];
		if (!cur) {
			gone = true;
		} else if (cur->weight != 0) {
			gone = true;   /* back in use: no longer draining */
		} else if (cur->active_conns + cur->inact_conns == 0 || now >= g->deadline_ms) {
			if (ipvs_del_dest(p->nl, &e->svc, &g->dest) == 0) {
				log_v(2, "Deleted real server %s:%u of %s (%s)", addr_str(&g->dest.addr, ip),
				      g->dest.port, ipvs_service_str(&e->svc, buf),
				      now >= g->deadline_ms ? "grace period over" : "no connections left");
				vs_drop_dest(e, &g->dest);
				gone = true;
			}
		}
		free(kd);
		if (gone)
			grace_drop(p, i--);
	}
}

static void grace_timer_fired(struct loop *l, struct loop_timer *t, void *arg)
{
	struct ipvs_priv *p = arg;

	grace_check(p);
	if (p->n_grace)
		loop_timer_arm(t, GRACE_CHECK_MS);
}

/* ---- applying ---- */

static bool svc_differs(const struct ipvs_service *want, const struct ipvs_service *have)
{
	return strcmp(want->sched, have->sched) != 0 ||
	       (want->flags & IP_VS_SVC_F_PERSISTENT) != (have->flags & IP_VS_SVC_F_PERSISTENT) ||
	       ((want->flags & IP_VS_SVC_F_PERSISTENT) &&
		(want->timeout != have->timeout || want->netmask != have->netmask));
}

static int apply_vs(struct ipvs_priv *p, const char *key, struct vs_entry *want, struct vs_entry *have)
{
	char buf[64], ip[ADDR_STRLEN];
	int rc;

	if (!have) {
		rc = ipvs_add_service(p->nl, &want->svc);
		if (rc < 0) {
			log_error("Failed to add IPVS service %s: %s", ipvs_service_str(&want->svc, buf), strerror(-rc));
			return rc;
		}
		p->nl_changes++;
		have = xcalloc(1, sizeof(*have));
		have->svc = want->svc;
		strmap_put(&p->applied, key, have);
	} else if (svc_differs(&want->svc, &have->svc)) {
		rc = ipvs_update_service(p->nl, &want->svc);
		if (rc < 0) {
			log_error("Failed to update IPVS service %s: %s", ipvs_service_str(&want->svc, buf), strerror(-rc));
			return rc;
		}
		p->nl_changes++;
		have->svc = want->svc;
	}
	free(have->owner);
	have->owner = xstrdup(want->owner);
	/* real servers to add or restore */
	for (size_t i = 0; i < want->n_dests; i++) {
		struct ipvs_dest *d = &want->dests[i], *h = vs_find_dest(have, d);

		if (h && h->weight == d->weight)
			continue;
		rc = h ? ipvs_update_dest(p->nl, &want->svc, d) : ipvs_add_dest(p->nl, &want->svc, d);
		if (rc < 0) {
			log_error("Failed to %s real server %s:%u of %s: %s", h ? "update" : "add",
				  addr_str(&d->addr, ip), d->port, ipvs_service_str(&want->svc, buf), strerror(-rc));
			return rc;
		}
		p->nl_changes++;
		if (h) {
			h->weight = d->weight;
			grace_forget(p, key, d);
		} else {
			vs_add_dest(have, d);
		}
	}
	/* real servers to drain or delete */
	for (size_t i = 0; i < have->n_dests; i++) {
		struct ipvs_dest *h = &have->dests[i];

		if (vs_find_dest(want, h))
			continue;
		if (want->svc.protocol == IPPROTO_UDP) {
			rc = ipvs_del_dest(p->nl, &want->svc, h);
			if (rc < 0)
				return rc;
			p->nl_changes++;
			grace_forget(p, key, h);
			*h = have->dests[--have->n_dests];
			i--;
			continue;
		}
		if (h->weight != 0) {
			struct ipvs_dest z = *h;

			z.weight = 0;
			rc = ipvs_update_dest(p->nl, &want->svc, &z);
			if (rc < 0)
				return rc;
			p->nl_changes++;
			h->weight = 0;
			log_v(2, "Draining real server %s:%u of %s", addr_str(&h->addr, ip), h->port,
			      ipvs_service_str(&want->svc, buf));
		}
		grace_add(p, key, h);
	}
	return 0;
}

static int delete_vs(struct ipvs_priv *p, const char *key, struct vs_entry *have)
{
	char buf[64];
	int rc = ipvs_del_service(p->nl, &have->svc);

	if (rc < 0) {
		log_error("Failed to delete IPVS service %s: %s", ipvs_service_str(&have->svc, buf), strerror(-rc));
		return rc;
	}
	p->nl_changes++;
	grace_forget(p, key, NULL);
	return 0;
}

static bool is_dirty(const struct dirty_set *dirty, const char *owner)
{
	return !dirty || (owner && dirty_has(dirty, owner));
}

/* Virtual servers: compare want with p->applied, restricted to the dirty
 * services unless dirty is NULL (full). */
static int apply_services(struct ipvs_priv *p, struct desired *d, const struct dirty_set *dirty)
{
	const char *key;
	void *v;
	char **gone = NULL;
	size_t n_gone = 0, cap = 0;
	int rc = 0;

	for (size_t it = 0; strmap_next(&d->vs, &it, &key, &v);) {
		struct vs_entry *want = v, *have = strmap_get(&p->applied, key);

		if (!is_dirty(dirty, want->owner) && !(have && have->owner && is_dirty(dirty, have->owner)))
			continue;
		rc = apply_vs(p, key, want, have);
		if (rc < 0)
			return rc;
	}
	for (size_t it = 0; strmap_next(&p->applied, &it, &key, &v);) {
		struct vs_entry *have = v;

		if (strmap_get(&d->vs, key))
			continue;
		if (dirty ? !(have->owner && dirty_has(dirty, have->owner)) : excluded(p->cfg, &have->svc.addr))
			continue;
		if (n_gone == cap) {
			cap = cap ? cap * 2 : 16;
			gone = xrealloc(gone, cap * sizeof(*gone));
		}
		gone[n_gone++] = xstrdup(key);
	}
	for (size_t i = 0; i < n_gone; i++) {
		struct vs_entry *have = strmap_get(&p->applied, gone[i]);

		if (rc == 0 && delete_vs(p, gone[i], have) == 0)
			vs_free(strmap_del(&p->applied, gone[i]));
		else
			rc = -EIO;
		free(gone[i]);
	}
	free(gone);
	return rc;
}

static int cmp_addr(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

static int apply_vips(struct ipvs_priv *p, struct desired *d, bool full)
{
	size_t added = 0, removed = 0;
	int rc;

	if (full) {
		rc = kp_dummy_sync(p->dummy, d->vips, d->n_vips, &added, &removed);
	} else {
		/* compare with what we applied last time */
		struct addr *want = xmalloc((d->n_vips ? d->n_vips : 1) * sizeof(*want));
		size_t i = 0, j = 0;

		if (d->n_vips) {
			memcpy(want, d->vips, d->n_vips * sizeof(*want));
			qsort(want, d->n_vips, sizeof(*want), cmp_addr);
		}
		rc = 0;
		while (rc == 0 && (i < d->n_vips || j < p->n_vips)) {
			int c = i == d->n_vips ? 1 : j == p->n_vips ? -1 : addr_cmp(&want[i], &p->vips[j]);

			if (c < 0) {
				if (i == 0 || !addr_equal(&want[i], &want[i - 1])) {
					rc = kp_dummy_add(p->dummy, &want[i]);
					added++;
				}
				i++;
			} else if (c > 0) {
				rc = kp_dummy_del(p->dummy, &p->vips[j++]);
				removed++;
			} else {
				struct addr cur = want[i];

				while (i < d->n_vips && addr_equal(&want[i], &cur))
					i++;
				j++;
			}
		}
		free(want);
	}
	if (rc < 0)
		return rc;
	free(p->vips);
	p->vips = xmalloc((d->n_vips ? d->n_vips : 1) * sizeof(*p->vips));
	if (d->n_vips) {
		memcpy(p->vips, d->vips, d->n_vips * sizeof(*p->vips));
		qsort(p->vips, d->n_vips, sizeof(*p->vips), cmp_addr);
	}
	/* dedupe */
	{
		size_t k = 0;

		for (size_t i = 0; i < d->n_vips; i++)
			if (k == 0 || !addr_equal(&p->vips[i], &p->vips[k - 1]))
				p->vips[k++] = p->vips[i];
		p->n_vips = k;
	}
	if (added || removed)
		log_v(3, "kube-ipvs0: %zu addresses added, %zu removed", added, removed);
	return 0;
}

/* ---- mode ops ---- */

static int write_sysctl(const char *path, const char *val)
{
	char *full = xasprintf("/proc/sys/%s", path);
	FILE *f = fopen(full, "w");
	int rc = 0;

	if (!f || fputs(val, f) < 0)
		rc = -errno;
	if (f && fclose(f) != 0 && !rc)
		rc = -errno;
	if (rc < 0)
		log_warn("Cannot set sysctl %s=%s: %s", path, val, strerror(-rc));
	free(full);
	return rc;
}

static bool sched_available(const char *sched)
{
	char *path = xasprintf("/sys/module/ip_vs_%s", sched);
	bool ok = access(path, F_OK) == 0;
	char *builtin = NULL;
	size_t len;
	FILE *f;
	char rel[128];

	free(path);
	if (ok)
		return true;
	/* compiled into the kernel? */
	f = fopen("/proc/sys/kernel/osrelease", "r");
	if (f) {
		if (fgets(rel, sizeof(rel), f)) {
			rel[strcspn(rel, "\n")] = 0;
			path = xasprintf("/lib/modules/%s/modules.builtin", rel);
			if (read_file(path, &builtin, &len) == 0) {
				char *needle = xasprintf("/ip_vs_%s.ko", sched);

				ok = strstr(builtin, needle) != NULL;
				free(needle);
				free(builtin);
			}
			free(path);
		}
		fclose(f);
	}
	return ok;
}

static int ipvs_probe(const struct config *cfg, char **why)
{
	struct ipvs_nl *nl;
	const char *sched = cfg->ipvs_scheduler && *cfg->ipvs_scheduler ? cfg->ipvs_scheduler : "rr";
	int rc = ipvs_nl_open(&nl);

	if (rc == -ENOENT) {
		*why = xasprintf("the kernel has no IPVS (generic netlink family \"IPVS\" not found): "
				 "load the modules with `modprobe -a ip_vs ip_vs_%s nf_conntrack` "
				 "(kernel option CONFIG_IP_VS)", sched);
		return -ENOENT;
	}
	if (rc < 0) {
		*why = xasprintf("cannot talk to IPVS over generic netlink: %s", strerror(-rc));
		return rc;
	}
	ipvs_nl_close(nl);
	if (!sched_available(sched)) {
		*why = xasprintf("the IPVS scheduler \"%s\" is not available: load it with `modprobe ip_vs_%s`",
				 sched, sched);
		return -ENOENT;
	}
	return 0;
}

static int ipvs_init(struct mode_ctx *ctx)
{
	struct ipvs_priv *p = xcalloc(1, sizeof(*p));
	const struct config *cfg = ctx->cfg;
	const char *g = getenv("KUBE_PROXY_IPVS_MAX_GRACE");
	int rc;

	p->cfg = cfg;
	p->max_grace_s = g && atoi(g) > 0 ? (unsigned)atoi(g) : DEFAULT_MAX_GRACE_S;
	strmap_init(&p->applied);
	rc = ipvs_nl_open(&p->nl);
	if (rc < 0)
		goto fail;
	rc = kp_dummy_open(&p->dummy, 1);
	if (rc < 0) {
		log_error("Cannot create the %s dummy interface: %s", KP_DUMMY_NAME, strerror(-rc));
		goto fail;
	}
	p->sets[0] = kp_sets_new(AF_INET);
	p->sets[1] = kp_sets_new(AF_INET6);
	write_sysctl("net/ipv4/vs/conntrack", "1");
	write_sysctl("net/ipv4/vs/expire_nodest_conn", "1");
	write_sysctl("net/ipv4/vs/expire_quiescent_template", "1");
	write_sysctl("net/ipv4/ip_forward", "1");
	if (cfg->ipvs_strict_arp) {
		write_sysctl("net/ipv4/conf/all/arp_ignore", "1");
		write_sysctl("net/ipv4/conf/all/arp_announce", "2");
	}
	rc = ipvs_set_timeouts(p->nl, cfg->ipvs_tcp_timeout_s, cfg->ipvs_tcpfin_timeout_s, cfg->ipvs_udp_timeout_s);
	if (rc < 0)
		log_warn("Cannot set IPVS timeouts: %s", strerror(-rc));
	if (ctx->loop)
		p->grace_timer = loop_timer_new(ctx->loop, grace_timer_fired, p);
	ctx->priv = p;
	log_info("Using ipvs Proxier");
	return 0;
fail:
	ipvs_nl_close(p->nl);
	kp_dummy_close(p->dummy);
	strmap_free(&p->applied);
	free(p);
	return rc;
}

static bool want_family(const struct config *cfg, const struct proxy_state *ps, uint8_t family)
{
	for (size_t i = 0; i < cfg->n_service_cidrs; i++)
		if (cfg->service_cidrs[i].base.family == family)
			return true;
	for (size_t i = 0; i < ps->n_ports; i++)
		if (ps->ports[i].family == family)
			return true;
	return family == AF_INET;
}

static int ipvs_sync(struct mode_ctx *ctx, const struct proxy_state *ps,
		     const struct dirty_set *changed, bool full, struct sync_stats *stats)
{
	struct ipvs_priv *p = ctx->priv;
	const struct config *cfg = p->cfg;
	unsigned long long now = now_ms();
	struct addr *n4 = NULL, *n6 = NULL;
	size_t nn4 = 0, nn6 = 0;
	struct desired d = { 0 };
	unsigned long long t[6] = { 0 };
	unsigned long set_changes = 0;
	char *err = NULL;
	int rc;

	if (!p->synced_once || p->need_full || (cfg->ipvs_sync_period_ms && now - p->last_full_ms >= cfg->ipvs_sync_period_ms))
		full = true;
	p->nl_changes = 0;
	t[0] = now_ns();
	/* listing addresses walks every VIP on kube-ipvs0 too: only at full
	 * syncs (node addresses rarely change; upstream reads them each time) */
	if (full || !p->synced_once) {
		rc = node_addrs(cfg, p->dummy, &n4, &nn4, &n6, &nn6);
		if (rc < 0)
			return rc;
		free(p->node4);
		free(p->node6);
		p->node4 = n4;
		p->n_node4 = nn4;
		p->node6 = n6;
		p->n_node6 = nn6;
	}
	build_desired(cfg, ps, p->node4, p->n_node4, p->node6, p->n_node6, &d, p->sets);
	t[1] = now_ns();
	if (full) {
		/* the kernel is the truth: re-read it */
		rc = read_kernel(p);
		if (rc < 0) {
			log_error("Cannot read IPVS state: %s", strerror(-rc));
			goto out;
		}
	}
	/* addresses and sets first: rules match the sets, IPVS needs local VIPs */
	t[5] = now_ns();
	rc = apply_vips(p, &d, full);
	if (rc < 0) {
		log_error("Cannot update addresses of %s: %s", KP_DUMMY_NAME, strerror(-rc));
		goto out;
	}
	t[2] = now_ns();
	for (int f = 0; f < 2; f++) {
		unsigned long c = 0;

		if (!want_family(cfg, ps, f ? AF_INET6 : AF_INET))
			continue;
		rc = kp_sets_apply(p->sets[f], full, &c, &err);
		if (rc < 0) {
			log_error("Failed to sync ipsets: %s", err);
			goto out;
		}
		set_changes += c;
	}
	if (full) {
		for (int f = 0; f < 2; f++) {
			if (!want_family(cfg, ps, f ? AF_INET6 : AF_INET))
				continue;
			rc = kp_ipvs_rules_apply(cfg, f ? AF_INET6 : AF_INET, &err);
			if (rc < 0) {
				log_error("Failed to write iptables rules: %s", err ? err : strerror(-rc));
				goto out;
			}
		}
	}
	/* every change goes out in a few large netlink writes */
	t[3] = now_ns();
	ipvs_batch_begin(p->nl);
	rc = apply_services(p, &d, full ? NULL : changed);
	{
		int brc = ipvs_batch_end(p->nl);

		if (brc < 0) {
			log_error("IPVS rejected a change: %s; the next sync re-reads the kernel", strerror(-brc));
			if (rc == 0)
				rc = brc;
		}
	}
	if (rc < 0)
		goto out;
	t[4] = now_ns();
	grace_check(p);
	if (full)
		p->last_full_ms = now;
	p->synced_once = true;
	stats->full = full;
	stats->chains_written = 0;
	log_v(2, "ipvs %s sync: %zu virtual servers, %lu netlink changes, %lu ipset changes, %zu draining "
	      "(ms: desired %llu, %s %llu, addresses %llu, ipsets+rules %llu, virtual servers %llu)",
	      full ? "full" : "partial", p->applied.len, p->nl_changes, set_changes, p->n_grace,
	      (t[1] - t[0]) / 1000000, full ? "kernel read" : "-", (t[5] - t[1]) / 1000000,
	      (t[2] - t[5]) / 1000000, (t[3] - t[2]) / 1000000, (t[4] - t[3]) / 1000000);
out:
	p->need_full = rc < 0;   /* after a failure, re-read the kernel */
	free(err);
	desired_free(&d);
	return rc;
}

static const char *flag_of(uint16_t proto)
{
	return proto == IPPROTO_UDP ? "-u" : proto == IPPROTO_SCTP ? "--sctp-service" : "-t";
}

static const char *hostport(const struct addr *a, uint16_t port, char *buf)
{
	char ip[ADDR_STRLEN];

	addr_str(a, ip);
	if (a->family == AF_INET6)
		snprintf(buf, 64, "[%s]:%u", ip, port);
	else
		snprintf(buf, 64, "%s:%u", ip, port);
	return buf;
}

static int cmp_keyp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ipvs_dump(const struct config *cfg, const struct proxy_state *ps, FILE *out)
{
	struct kp_dummy *dm = NULL;
	struct addr *n4 = NULL, *n6 = NULL;
	size_t nn4 = 0, nn6 = 0, nk = 0;
	struct kp_sets *sets[2] = { kp_sets_new(AF_INET), kp_sets_new(AF_INET6) };
	struct desired d = { 0 };
	const char *key;
	void *v;
	char **keys;

	if (kp_dummy_open(&dm, 0) == 0) {
		node_addrs(cfg, dm, &n4, &nn4, &n6, &nn6);
		kp_dummy_close(dm);
	}
	build_desired(cfg, ps, n4, nn4, n6, nn6, &d, sets);
	free(n4);
	free(n6);

	fputs("# IPVS virtual servers (ipvsadm -Sn)\n", out);
	keys = xmalloc((d.vs.len ? d.vs.len : 1) * sizeof(*keys));
	for (size_t it = 0; strmap_next(&d.vs, &it, &key, &v);)
		keys[nk++] = (char *)key;
	if (nk)
		qsort(keys, nk, sizeof(*keys), cmp_keyp);
	for (size_t i = 0; i < nk; i++) {
		struct vs_entry *e = strmap_get(&d.vs, keys[i]);
		char a[64], b[64];

		hostport(&e->svc.addr, e->svc.port, a);
		fprintf(out, "-A %s %s -s %s", flag_of(e->svc.protocol), a, e->svc.sched);
		if (e->svc.flags & IP_VS_SVC_F_PERSISTENT)
			fprintf(out, " -p %u", e->svc.timeout);
		fputc('\n', out);
		for (size_t j = 0; j < e->n_dests; j++)
			fprintf(out, "-a %s %s -r %s -m -w %d\n", flag_of(e->svc.protocol), a,
				hostport(&e->dests[j].addr, e->dests[j].port, b), e->dests[j].weight);
	}
	free(keys);
	fputs("# ipsets (ipset save)\n", out);
	for (int f = 0; f < 2; f++)
		if (want_family(cfg, ps, f ? AF_INET6 : AF_INET))
			kp_sets_render(sets[f], out);
	fputs("# iptables rules (iptables-save)\n", out);
	for (int f = 0; f < 2; f++)
		if (want_family(cfg, ps, f ? AF_INET6 : AF_INET))
			kp_ipvs_rules_render(cfg, f ? AF_INET6 : AF_INET, out);
	desired_free(&d);
	kp_sets_free(sets[0]);
	kp_sets_free(sets[1]);
	return 0;
}

static int ipvs_cleanup(const struct config *cfg)
{
	struct kp_dummy *dm = NULL;
	struct ipvs_nl *nl = NULL;
	struct addr *vips = NULL;
	size_t n_vips = 0;
	char *err = NULL;
	int rc = 0, e;

	if (kp_dummy_open(&dm, 0) == 0)
		kp_dummy_list(dm, &vips, &n_vips);
	if (ipvs_nl_open(&nl) == 0) {
		struct ipvs_service *svcs = NULL;
		size_t n = 0;
		bool have_sets = access("/sys/module/ip_set", F_OK) == 0;

		if (ipvs_list_services(nl, &svcs, &n) == 0) {
			for (size_t i = 0; i < n; i++) {
				bool ours = false;
				char name[32], port[8];

				if (excluded(cfg, &svcs[i].addr))
					continue;
				for (size_t j = 0; j < n_vips && !ours; j++)
					ours = addr_equal(&vips[j], &svcs[i].addr);
				/* node ports live on node addresses: ask our sets */
				if (!ours && have_sets && svcs[i].protocol != IPPROTO_SCTP) {
					kp_set_name(svcs[i].protocol == IPPROTO_UDP ? SET_NODE_PORT_UDP : SET_NODE_PORT_TCP,
						    AF_INET, name, sizeof(name));
					snprintf(port, sizeof(port), "%u", svcs[i].port);
					ours = kp_set_test(name, port);
				}
				if (ours && (e = ipvs_del_service(nl, &svcs[i])) < 0) {
					log_error("Cleanup: cannot delete IPVS service: %s", strerror(-e));
					rc = e;
				}
			}
		}
		free(svcs);
		ipvs_nl_close(nl);
	}
	free(vips);
	if (dm) {
		if ((e = kp_dummy_delete(dm)) < 0) {
			log_error("Cleanup: cannot delete %s: %s", KP_DUMMY_NAME, strerror(-e));
			rc = e;
		}
		kp_dummy_close(dm);
	}
	for (int f = 0; f < 2; f++) {
		e = kp_ipvs_rules_cleanup(f ? AF_INET6 : AF_INET, &err);
		if (e < 0 && f == 0) {
			log_error("Cleanup: iptables: %s", err ? err : strerror(-e));
			rc = e;
		}
		free_and_null(&err);
	}
	if (access("/sys/module/ip_set", F_OK) == 0) {
		e = kp_sets_destroy_all(&err);
		if (e < 0) {
			log_error("Cleanup: ipsets: %s", err ? err : strerror(-e));
			rc = e;
		}
		free(err);
	}
	return rc < 0 ? rc : 0;
}

static void ipvs_fini(struct mode_ctx *ctx)
{
	struct ipvs_priv *p = ctx->priv;

	if (!p)
		return;
	if (p->grace_timer)
		loop_timer_free(p->grace_timer);
	for (size_t i = 0; i < p->n_grace; i++)
		free(p->grace[i].vs_key);
	free(p->grace);
	map_free_entries(&p->applied);
	free(p->vips);
	free(p->node4);
	free(p->node6);
	kp_sets_free(p->sets[0]);
	kp_sets_free(p->sets[1]);
	kp_dummy_close(p->dummy);
	ipvs_nl_close(p->nl);
	free(p);
	ctx->priv = NULL;
}

const struct proxy_mode ipvs_mode = {
	.name = "ipvs",
	.probe = ipvs_probe,
	.init = ipvs_init,
	.sync = ipvs_sync,
	.dump = ipvs_dump,
	.cleanup = ipvs_cleanup,
	.fini = ipvs_fini,
};
