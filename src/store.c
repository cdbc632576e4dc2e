#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "strmap.h"
#include "util.h"

/* EndpointSlices of one service, in no particular order. */
struct slice_group {
	struct endpoint_slice **v;
	size_t n, cap;
};

struct store {
	char *node_name;
	struct strmap services;        /* "ns/name" -> struct service */
	struct strmap slices;          /* "ns/slicename" -> struct endpoint_slice */
	struct strmap groups;          /* "ns/servicename" -> struct slice_group */
	struct strmap dirty;           /* "ns/name" -> (void *)1 */
	struct node_info *node;
	unsigned long long svc_changes, ep_changes;
};

static char *key_of(const char *ns, const char *name)
{
	return xasprintf("%s/%s", ns, name);
}

struct store *store_new(const char *node_name)
{
	struct store *st = xcalloc(1, sizeof(*st));

	st->node_name = node_name ? xstrdup(node_name) : NULL;
	strmap_init(&st->services);
	strmap_init(&st->slices);
	strmap_init(&st->groups);
	strmap_init(&st->dirty);
	return st;
}

void store_free(struct store *st)
{
	const char *k;
	void *v;

	if (!st)
		return;
	for (size_t i = 0; strmap_next(&st->services, &i, &k, &v);)
		service_free(v);
	for (size_t i = 0; strmap_next(&st->slices, &i, &k, &v);)
		endpoint_slice_free(v);
	for (size_t i = 0; strmap_next(&st->groups, &i, &k, &v);) {
		struct slice_group *g = v;

		free(g->v);
		free(g);
	}
	strmap_free(&st->services);
	strmap_free(&st->slices);
	strmap_free(&st->groups);
	strmap_free(&st->dirty);
	node_info_free(st->node);
	free(st->node_name);
	free(st);
}

static void mark_dirty(struct store *st, const char *key)
{
	strmap_put(&st->dirty, key, (void *)1);
}

void store_upsert_service(struct store *st, struct service *svc)
{
	char *key = key_of(svc->ns, svc->name);
	struct service *old = strmap_get(&st->services, key);

	if (old && service_equal(old, svc)) {
		service_free(svc);
	} else {
		strmap_put(&st->services, key, svc);
		service_free(old);
		mark_dirty(st, key);
		st->svc_changes++;
	}
	free(key);
}

void store_delete_service(struct store *st, const char *ns, const char *name)
{
	char *key = key_of(ns, name);
	struct service *old = strmap_del(&st->services, key);

	if (old) {
		service_free(old);
		mark_dirty(st, key);
		st->svc_changes++;
	}
	free(key);
}

static void group_remove(struct store *st, const struct endpoint_slice *s)
{
	char *gkey = key_of(s->ns, s->service_name);
	struct slice_group *g = strmap_get(&st->groups, gkey);

	if (g) {
		for (size_t i = 0; i < g->n; i++) {
			if (g->v[i] == s) {
				g->v[i] = g->v[--g->n];
				break;
			}
		}
		if (!g->n) {
			strmap_del(&st->groups, gkey);
			free(g->v);
			free(g);
		}
	}
	mark_dirty(st, gkey);
	free(gkey);
}

static void group_add(struct store *st, struct endpoint_slice *s)
{
	char *gkey = key_of(s->ns, s->service_name);
	struct slice_group *g = strmap_get(&st->groups, gkey);

	if (!g) {
		g = xcalloc(1, sizeof(*g));
		strmap_put(&st->groups, gkey, g);
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 2;
		g->v = xrealloc(g->v, g->cap * sizeof(*g->v));
	}
	g->v[g->n++] = s;
	mark_dirty(st, gkey);
	free(gkey);
}

void store_upsert_slice(struct store *st, struct endpoint_slice *slice)
{
	char *key = key_of(slice->ns, slice->name);
	struct endpoint_slice *old = strmap_get(&st->slices, key);

	if (old && endpoint_slice_equal(old, slice)) {
		endpoint_slice_free(slice);
		free(key);
		return;
	}
	if (old)
		group_remove(st, old);
	strmap_put(&st->slices, key, slice);
	group_add(st, slice);
	endpoint_slice_free(old);
	st->ep_changes++;
	free(key);
}

void store_delete_slice(struct store *st, const char *ns, const char *name)
{
	char *key = key_of(ns, name);
	struct endpoint_slice *old = strmap_del(&st->slices, key);

	if (old) {
		group_remove(st, old);
		endpoint_slice_free(old);
		st->ep_changes++;
	}
	free(key);
}

void store_set_node(struct store *st, struct node_info *node)
{
	const char *k;
	void *v;
	bool same = node_info_rules_equal(st->node, node);

	node_info_free(st->node);
	st->node = node;
	/* A new zone or pod CIDR can change every service's rules; kubelet's
	 * status updates and taints change none. */
	if (same)
		return;
	for (size_t i = 0; strmap_next(&st->services, &i, &k, &v);)
		mark_dirty(st, k);
}

const struct node_info *store_node(const struct store *st)
{
	return st->node;
}

const struct service *store_get_service(const struct store *st, const char *ns, const char *name)
{
	char *key = key_of(ns, name);
	const struct service *s = strmap_get(&st->services, key);

	free(key);
	return s;
}

size_t store_n_services(const struct store *st)
{
	return st->services.len;
}

size_t store_n_slices(const struct store *st)
{
	return st->slices.len;
}

bool store_has_changes(const struct store *st)
{
	return st->dirty.len > 0;
}

unsigned long long store_service_changes(const struct store *st)
{
	return st->svc_changes;
}

unsigned long long store_endpoint_changes(const struct store *st)
{
	return st->ep_changes;
}

/* ---- snapshot ----------------------------------------------------------- */

struct ps_builder {
	struct svc_port_info *v;
	size_t n, cap;
};

static struct svc_port_info *ps_add(struct ps_builder *b)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	memset(&b->v[b->n], 0, sizeof(b->v[0]));
	return &b->v[b->n++];
}

/* Upstream orders endpoints by their "ip:port" ("[ip]:port") string; the strings are
 * built once per endpoint, not once per comparison. */
struct ep_key {
	char text[ADDR_STRLEN + 8];
	struct svc_endpoint ep;
};

static int cmp_ep_key(const void *pa, const void *pb)
{
	const struct ep_key *a = pa, *b = pb;

	return strcmp(a->text, b->text);
}

static void sort_endpoints(struct svc_endpoint *eps, size_t n)
{
	struct ep_key *keys = xmalloc(n * sizeof(*keys));
	char ip[ADDR_STRLEN];

	for (size_t i = 0; i < n; i++) {
		keys[i].ep = eps[i];
		snprintf(keys[i].text, sizeof(keys[i].text),
			 eps[i].ip.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
			 addr_str(&eps[i].ip, ip), eps[i].port);
	}
	qsort(keys, n, sizeof(*keys), cmp_ep_key);
	for (size_t i = 0; i < n; i++)
		eps[i] = keys[i].ep;
	free(keys);
}

static bool ep_better(const struct svc_endpoint *a, const struct svc_endpoint *b)
{
	/* When two slices list the same ip:port, prefer the ready copy. */
	return (a->ready && !b->ready) || (a->serving && !b->serving);
}

/* Upstream's canUseTopology. */
static void set_topology(struct svc_port_info *pi, const char *zone)
{
	bool for_zone = false;

	pi->topology = false;
	if (!zone)
		return;
	for (size_t i = 0; i < pi->n_eps; i++) {
		if (!pi->eps[i].ready)
			continue;
		if (!pi->eps[i].has_hints)
			return;
		for_zone = for_zone || pi->eps[i].zone_hinted;
	}
	pi->topology = for_zone;
}

static void fill_endpoints(const struct store *st, const struct slice_group *g,
			   struct svc_port_info *pi)
{
	const char *zone = st->node && st->node->zone && *st->node->zone ? st->node->zone : NULL;
	size_t cap = 0, out = 0;

	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		const struct endpoint_slice *s = g->v[i];
		const struct slice_port *sp = NULL;

		if (s->family != pi->family)
			continue;
		for (size_t j = 0; j < s->n_ports; j++) {
			if (strcmp(s->ports[j].name, pi->port->name) == 0 &&
			    s->ports[j].proto == pi->port->proto) {
				sp = &s->ports[j];
				break;
			}
		}
		if (!sp)
			continue;
		for (size_t j = 0; j < s->n_endpoints; j++) {
			const struct endpoint *e = &s->endpoints[j];
			struct svc_endpoint *se;

			if (pi->n_eps == cap) {
				cap = cap ? cap * 2 : 8;
				pi->eps = xrealloc(pi->eps, cap * sizeof(*pi->eps));
			}
			se = &pi->eps[pi->n_eps++];
			se->ip = e->addr;
			se->port = sp->port;
			se->ready = e->ready;
			se->serving = e->serving;
			se->terminating = e->terminating;
			se->is_local = st->node_name && e->node_name &&
				       strcmp(st->node_name, e->node_name) == 0;
			se->zone = e->zone;
			se->has_hints = e->n_hint_zones > 0;
			se->zone_hinted = false;
			for (size_t z = 0; zone && z < e->n_hint_zones; z++)
				se->zone_hinted = se->zone_hinted || strcmp(e->hint_zones[z], zone) == 0;
		}
	}
	if (pi->n_eps < 2) {
		set_topology(pi, zone);
		return;
	}
	sort_endpoints(pi->eps, pi->n_eps);
	for (size_t i = 1; i < pi->n_eps; i++) {
		struct svc_endpoint *last = &pi->eps[out];

		if (addr_equal(&last->ip, &pi->eps[i].ip) && last->port == pi->eps[i].port) {
			if (ep_better(&pi->eps[i], last))
				*last = pi->eps[i];
			continue;
		}
		pi->eps[++out] = pi->eps[i];
	}
	pi->n_eps = out + 1;
	set_topology(pi, zone);
}

static int cmp_port_info(const void *pa, const void *pb)
{
	const struct svc_port_info *a = pa, *b = pb;
	int c = strcmp(a->spn, b->spn);

	return c ? c : (int)a->family - (int)b->family;
}

struct proxy_state *store_snapshot(struct store *st, struct dirty_set *dirty)
{
	struct proxy_state *ps = xcalloc(1, sizeof(*ps));
	struct ps_builder b = { 0 };
	const char *k;
	void *v;

	for (size_t it = 0; strmap_next(&st->services, &it, &k, &v);) {
		const struct service *svc = v;
		const struct slice_group *g;
		bool counted = false;

		if (svc->type == SVC_EXTERNAL_NAME || svc->headless || !svc->n_cluster_ips)
			continue;
		g = strmap_get(&st->groups, k);
		for (size_t p = 0; p < svc->n_ports; p++) {
			const struct service_port *sp = &svc->ports[p];

			for (size_t f = 0; f < svc->n_cluster_ips; f++) {
				struct svc_port_info *pi = ps_add(&b);

				pi->key = xstrdup(k);
				pi->spn = sp->name[0] ? xasprintf("%s:%s", k, sp->name) : xstrdup(k);
				pi->svc = svc;
				pi->port = sp;
				pi->family = svc->cluster_ips[f].family;
				pi->proto = sp->proto;
				pi->svc_port = sp->port;
				pi->node_port = sp->node_port;
				pi->cluster_ip = svc->cluster_ips[f];
				fill_endpoints(st, g, pi);
				ps->n_endpoints += pi->n_eps;
				counted = true;
			}
		}
		if (counted)
			ps->n_services++;
	}
	if (b.n)
		qsort(b.v, b.n, sizeof(*b.v), cmp_port_info);
	ps->ports = b.v;
	ps->n_ports = b.n;
	ps->node = st->node;

	if (dirty) {
		size_t n = 0;

		dirty_set_clear(dirty);
		dirty->keys = xcalloc(st->dirty.len + 1, sizeof(char *));
		for (size_t it = 0; strmap_next(&st->dirty, &it, &k, NULL);)
			dirty->keys[n++] = xstrdup(k);
		dirty->n = n;
		if (n)
			qsort(dirty->keys, n, sizeof(char *), cmp_strp);
		strmap_free(&st->dirty);
		strmap_init(&st->dirty);
	}
	return ps;
}

void proxy_state_free(struct proxy_state *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n_ports; i++) {
		free(ps->ports[i].key);
		free(ps->ports[i].spn);
		free(ps->ports[i].eps);
	}
	free(ps->ports);
	free(ps);
}

bool dirty_has(const struct dirty_set *d, const char *key)
{
	return d && d->n && bsearch(&key, d->keys, d->n, sizeof(char *), cmp_strp) != NULL;
}

size_t svc_usable_endpoints(const struct svc_port_info *pi, bool local_only, size_t *idx)
{
	size_t n = 0;

	for (size_t i = 0; i < pi->n_eps; i++)
		if (pi->eps[i].ready && (local_only ? pi->eps[i].is_local :
					 !pi->topology || pi->eps[i].zone_hinted))
			idx[n++] = i;
	if (n)
		return n;
	for (size_t i = 0; i < pi->n_eps; i++)
		if (pi->eps[i].serving && pi->eps[i].terminating &&
		    (!local_only || pi->eps[i].is_local))
			idx[n++] = i;
	return n;
}

void dirty_set_clear(struct dirty_set *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->keys[i]);
	free(d->keys);
	d->keys = NULL;
	d->n = 0;
}
