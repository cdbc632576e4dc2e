/* Rule generation for the iptables proxier: one family's nat and filter
 * tables from a struct proxy_state, following upstream kube-proxy's
 * syncProxyRules (pkg/proxy/iptables/proxier.go) rule for rule. */
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxier.h"
#include "chain_name.h"

/* Upstream's largeClusterEndpointsThreshold. */
#define LARGE_CLUSTER_ENDPOINTS 1000

#define KUBE_SERVICES          "KUBE-SERVICES"
#define KUBE_EXTERNAL_SERVICES "KUBE-EXTERNAL-SERVICES"
#define KUBE_NODEPORTS         "KUBE-NODEPORTS"
#define KUBE_POSTROUTING       "KUBE-POSTROUTING"
#define KUBE_MARK_MASQ         "KUBE-MARK-MASQ"
#define KUBE_FORWARD           "KUBE-FORWARD"
#define KUBE_PROXY_FIREWALL    "KUBE-PROXY-FIREWALL"
#define KUBE_FIREWALL          "KUBE-FIREWALL"  /* shared with kubelet */
#define KUBE_PROXY_CANARY      "KUBE-PROXY-CANARY"

const char *const proxier_stale_prefixes[] = {
	CHAIN_PREFIX_SVC, CHAIN_PREFIX_SVL, CHAIN_PREFIX_EXT, CHAIN_PREFIX_FW, CHAIN_PREFIX_SEP, NULL
};

/* ---- local traffic detection (upstream's LocalTrafficDetector) ---------- */

enum ld_kind { LD_NONE, LD_CIDR, LD_IFACE };

struct local_detector {
	enum ld_kind kind;
	struct cidr cidr;
	char iface[IFNAMSIZ + 2];
};

static void detector_init(struct local_detector *ld, const struct config *cfg,
			  const struct node_info *node, uint8_t family)
{
	const char *mode = cfg->detect_local_mode && *cfg->detect_local_mode ?
			   cfg->detect_local_mode : "ClusterCIDR";

	memset(ld, 0, sizeof(*ld));
	if (strcmp(mode, "ClusterCIDR") == 0) {
		for (size_t i = 0; i < cfg->n_cluster_cidrs; i++) {
			if (cfg->cluster_cidrs[i].base.family == family) {
				ld->kind = LD_CIDR;
				ld->cidr = cfg->cluster_cidrs[i];
				return;
			}
		}
	} else if (strcmp(mode, "NodeCIDR") == 0) {
		for (size_t i = 0; node && i < node->n_pod_cidrs; i++) {
			if (node->pod_cidrs[i].base.family == family) {
				ld->kind = LD_CIDR;
				ld->cidr = node->pod_cidrs[i];
				return;
			}
		}
	} else if (strcmp(mode, "BridgeInterface") == 0) {
		if (cfg->bridge_interface && *cfg->bridge_interface) {
			ld->kind = LD_IFACE;
			snprintf(ld->iface, sizeof(ld->iface), "%s", cfg->bridge_interface);
		}
	} else if (strcmp(mode, "InterfaceNamePrefix") == 0) {
		if (cfg->interface_name_prefix && *cfg->interface_name_prefix) {
			ld->kind = LD_IFACE;
			snprintf(ld->iface, sizeof(ld->iface), "%s+", cfg->interface_name_prefix);
		}
	}
}

/* Appends the "is (not) from a local pod" match: -s cidr / ! -s cidr, or
 * -i iface / ! -i iface. */
static void detector_match(const struct local_detector *ld, struct rule *r, bool local)
{
	if (ld->kind == LD_CIDR)
		rule_src(r, &ld->cidr, !local);
	else if (ld->kind == LD_IFACE)
		rule_in_iface(r, ld->iface, !local);
}

/* ---- --nodeport-addresses (upstream's NodePortAddresses) ---------------- */

struct nodeport_addrs {
	bool match_all;
	bool v4_loopback;         /* the IPv4 selection includes 127.0.0.1 */
	struct cidr cidrs[MAX_CIDRS];
	size_t n;
};

static bool is_loopback(const struct addr *a)
{
	static const uint8_t v6lo[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->bytes[0] == 127;
	return a->family == AF_INET6 && memcmp(a->bytes, v6lo, 16) == 0;
}

static void host_cidr_of(struct cidr *c, const struct addr *a)
{
	c->base = *a;
	c->prefix = a->family == AF_INET6 ? 128 : 32;
}

static void nodeport_addrs_init(struct nodeport_addrs *npa, const struct config *cfg,
				const struct proxier_env *env, uint8_t family)
{
	struct addr lo4 = { .family = AF_INET, .bytes = { 127, 0, 0, 1 } };
	const struct addr *nip = &env->node_ip[family == AF_INET6];

	memset(npa, 0, sizeof(*npa));
	if (cfg->nodeport_primary) {
		if (nip->family == family)
			host_cidr_of(&npa->cidrs[npa->n++], nip);
	} else {
		for (size_t i = 0; i < cfg->n_nodeport_addresses && npa->n < MAX_CIDRS; i++)
			if (cfg->nodeport_addresses[i].base.family == family)
				npa->cidrs[npa->n++] = cfg->nodeport_addresses[i];
	}
	for (size_t i = 0; i < npa->n; i++) {
		if (family == AF_INET && (is_loopback(&npa->cidrs[i].base) ||
					  cidr_contains(&npa->cidrs[i], &lo4)))
			npa->v4_loopback = true;
		if (npa->cidrs[i].prefix == 0)
			npa->match_all = true;
	}
	if (npa->n == 0)
		npa->match_all = true;
	if (npa->match_all && family == AF_INET)
		npa->v4_loopback = true;
}

/* ---- per-service views --------------------------------------------------- */

struct ep_view {
	const struct svc_endpoint *ep;
	char str[ENDPOINT_STRLEN];     /* "ip:port" / "[ip]:port" */
	char chain[CHAIN_NAME_MAX];    /* KUBE-SEP-... */
};

/* A growable array of pointers. */
struct ptrvec {
	const void **v;
	size_t n, cap;
};

static void pv_push(struct ptrvec *p, const void *x)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = x;
}

struct gen {
	const struct config *cfg;
	const struct proxier_env *env;
	uint8_t family;
	struct table_want *nat, *filter;
	struct local_detector ld;
	struct nodeport_addrs npa;
	bool localhost_nodeports;
	bool large;
	uint32_t mark;
	size_t last_nat, last_filter;   /* add_rule's cache; SIZE_MAX = none */

	/* scratch, reused for every service port */
	struct ep_view *eps;
	size_t n_eps, cap_eps;
	struct ptrvec cluster, local, reach;  /* of struct ep_view */
	struct ptrvec ext_ips, lb_ips, ranges; /* of struct addr / struct cidr */
};

/* Facts of one service port, derived like upstream's servicePortInfo. */
struct svc_view {
	const struct svc_port_info *pi;
	const char *spn;
	bool ext_local;           /* ExternalPolicyLocal */
	bool int_local;           /* InternalPolicyLocal */
	bool ext_accessible;      /* ExternallyAccessible */
	uint16_t hc_node_port;
	char svc_chain[CHAIN_NAME_MAX], svl_chain[CHAIN_NAME_MAX];
	char ext_chain[CHAIN_NAME_MAX], fw_chain[CHAIN_NAME_MAX];
};

static int cmp_ep_view(const void *a, const void *b)
{
	return strcmp(((const struct ep_view *)a)->str, ((const struct ep_view *)b)->str);
}

static void svc_view_init(struct gen *g, struct svc_view *sv, const struct svc_port_info *pi)
{
	const struct service *svc = pi->svc;
	bool svc_ext = svc->type == SVC_LOAD_BALANCER || svc->type == SVC_NODE_PORT ||
		       (svc->type == SVC_CLUSTER_IP && svc->n_external_ips > 0);
	char hash[CHAIN_HASH_LEN + 1];

	memset(sv, 0, sizeof(*sv));
	sv->pi = pi;
	sv->spn = pi->spn;
	sv->ext_local = svc_ext && svc->etp_local;
	sv->int_local = svc->itp_local;

	g->ext_ips.n = g->lb_ips.n = g->ranges.n = 0;
	for (size_t i = 0; i < svc->n_external_ips; i++)
		if (svc->external_ips[i].family == g->family)
			pv_push(&g->ext_ips, &svc->external_ips[i]);
	for (size_t i = 0; i < svc->n_lb_ips; i++)
		if (svc->lb_ips[i].family == g->family)
			pv_push(&g->lb_ips, &svc->lb_ips[i]);
	for (size_t i = 0; i < svc->n_lb_source_ranges; i++)
		if (svc->lb_source_ranges[i].base.family == g->family)
			pv_push(&g->ranges, &svc->lb_source_ranges[i]);
	sv->ext_accessible = pi->node_port != 0 || g->lb_ips.n || g->ext_ips.n;
	if (svc->type == SVC_LOAD_BALANCER && sv->ext_local)
		sv->hc_node_port = svc->health_check_node_port;

	chain_hash(pi->spn, proto_lower(pi->proto), NULL, hash);
	chain_name_join(sv->svc_chain, CHAIN_PREFIX_SVC, hash);
	chain_name_join(sv->svl_chain, CHAIN_PREFIX_SVL, hash);
	chain_name_join(sv->ext_chain, CHAIN_PREFIX_EXT, hash);
	chain_name_join(sv->fw_chain, CHAIN_PREFIX_FW, hash);

	/* Endpoint strings and chain names, ordered by endpoint string as
	 * upstream's endpoint cache orders them. */
	if (pi->n_eps > g->cap_eps) {
		g->cap_eps = pi->n_eps;
		g->eps = xrealloc(g->eps, g->cap_eps * sizeof(*g->eps));
	}
	g->n_eps = pi->n_eps;
	for (size_t i = 0; i < pi->n_eps; i++) {
		struct ep_view *e = &g->eps[i];

		e->ep = &pi->eps[i];
		endpoint_string(&e->ep->ip, e->ep->port, e->str);
		chain_hash(pi->spn, proto_lower(pi->proto), e->str, hash);
		chain_name_join(e->chain, CHAIN_PREFIX_SEP, hash);
	}
	if (g->family == AF_INET6 && g->n_eps > 1)
		qsort(g->eps, g->n_eps, sizeof(*g->eps), cmp_ep_view);
}

static bool uses_cluster_endpoints(const struct svc_view *sv)
{
	return !sv->int_local || sv->ext_accessible;
}

static bool uses_local_endpoints(const struct svc_view *sv)
{
	return sv->int_local || (sv->ext_local && sv->ext_accessible);
}

static bool in_vec(const struct ptrvec *p, const void *x)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i] == x)
			return true;
	return false;
}

/* Upstream's CategorizeEndpoints (topology-aware routing as decided by the
 * store: pi->topology). Fills g->cluster, g->local and g->reach; returns
 * hasAnyEndpoints. */
static bool categorize(struct gen *g, const struct svc_view *sv)
{
	bool has_any = false, local_ready = false, local_term = false, use_term = false;

	g->cluster.n = g->local.n = g->reach.n = 0;
	if (uses_cluster_endpoints(sv)) {
		for (size_t i = 0; i < g->n_eps; i++)
			if (g->eps[i].ep->ready &&
			    (!sv->pi->topology || g->eps[i].ep->zone_hinted))
				pv_push(&g->cluster, &g->eps[i]);
		if (!g->cluster.n)
			for (size_t i = 0; i < g->n_eps; i++)
				if (g->eps[i].ep->serving && g->eps[i].ep->terminating)
					pv_push(&g->cluster, &g->eps[i]);
		has_any = g->cluster.n > 0;
	}
	if (!uses_local_endpoints(sv)) {
		for (size_t i = 0; i < g->cluster.n; i++)
			pv_push(&g->reach, g->cluster.v[i]);
		return has_any;
	}
	for (size_t i = 0; i < g->n_eps; i++) {
		const struct svc_endpoint *e = g->eps[i].ep;

		if (e->ready) {
			has_any = true;
			local_ready |= e->is_local;
		} else if (e->serving && e->terminating) {
			has_any = true;
			local_term |= e->is_local;
		}
	}
	if (local_ready) {
		for (size_t i = 0; i < g->n_eps; i++)
			if (g->eps[i].ep->is_local && g->eps[i].ep->ready)
				pv_push(&g->local, &g->eps[i]);
	} else if (local_term) {
		use_term = true;
		for (size_t i = 0; i < g->n_eps; i++)
			if (g->eps[i].ep->is_local && g->eps[i].ep->serving &&
			    g->eps[i].ep->terminating)
				pv_push(&g->local, &g->eps[i]);
	}
	if (!uses_cluster_endpoints(sv)) {
		for (size_t i = 0; i < g->local.n; i++)
			pv_push(&g->reach, g->local.v[i]);
		return has_any;
	}
	for (size_t i = 0; i < g->cluster.n; i++)
		pv_push(&g->reach, g->cluster.v[i]);
	if (use_term)
		for (size_t i = 0; i < g->local.n; i++)
			if (!in_vec(&g->cluster, g->local.v[i]))
				pv_push(&g->reach, g->local.v[i]);
	return has_any;
}

/* ---- rule helpers -------------------------------------------------------- */

/* Appends a rule to chain (created if new). Generation adds runs of rules
 * to one chain, so the last chain used per table is remembered (by index:
 * the chain array moves when it grows). */
static struct rule *add_rule(struct gen *g, struct table_want *t, const char *chain)
{
	size_t *last = t == g->nat ? &g->last_nat : &g->last_filter;
	struct chain *c;

	if (*last < t->n_chains && strcmp(t->chains[*last].name, chain) == 0) {
		c = &t->chains[*last];
	} else {
		c = table_chain(t, chain);
		*last = (size_t)(c - t->chains);
	}
	return chain_append(c);
}

/* "-m comment --comment C -m proto -p proto -d ip --dport port" */
static struct rule *vip_rule(struct gen *g, struct table_want *t, const char *chain,
			     const char *comment, enum l4_proto proto, const struct addr *ip,
			     uint16_t port)
{
	struct rule *r = add_rule(g, t, chain);

	rule_comment(r, comment);
	rule_proto(r, proto);
	rule_dst_ip(r, ip, false);
	rule_dport(r, port);
	return r;
}

static void set_filter_target(struct rule *r, bool reject)
{
	rule_target(r, reject ? RT_REJECT : RT_DROP);
}

/* ---- the fixed chains ---------------------------------------------------- */

static void add_jump(struct table_want *t, const char *builtin, bool ct_new,
		     const char *comment, const char *target)
{
	struct rule *r = table_builtin_rule(t, builtin);

	if (ct_new)
		rule_ctstate(r, CTSTATE_NEW, false);
	rule_comment(r, comment);
	rule_jump(r, target);
}

/* With route_localnet on (NodePorts on 127.0.0.1), packets to 127/8 that
 * arrive from elsewhere must be dropped (kubernetes issue 90259). Upstream
 * writes this chain and its jumps as an exact copy of kubelet's, so either
 * may own them. */
static struct cidr loopback4(void)
{
	struct cidr lo;

	cidr_parse("127.0.0.0/8", false, &lo);
	return lo;
}

static void localnet_firewall(struct table_want *filter)
{
	struct chain *c = table_chain(filter, KUBE_FIREWALL);
	struct rule *r = chain_append(c);
	struct cidr lo = loopback4();

	rule_comment(r, "block incoming localnet connections");
	rule_dst(r, &lo, false);
	rule_src(r, &lo, true);
	rule_ctstate(r, CTSTATE_RELATED | CTSTATE_ESTABLISHED | CTSTATE_DNAT, true);
	rule_target(r, RT_DROP);
	rule_jump(table_builtin_rule(filter, "INPUT"), KUBE_FIREWALL);
	rule_jump(table_builtin_rule(filter, "OUTPUT"), KUBE_FIREWALL);
}

/* The jumps from the built-in chains, in the order they end up on a fresh
 * table after upstream's prepends (the last prepended comes first). */
static void builtin_jumps(struct table_want *nat, struct table_want *filter)
{
	add_jump(filter, "INPUT", true, "kubernetes load balancer firewall", KUBE_PROXY_FIREWALL);
	add_jump(filter, "INPUT", false, "kubernetes health check service ports", KUBE_NODEPORTS);
	add_jump(filter, "INPUT", true, "kubernetes externally-visible service portals",
		 KUBE_EXTERNAL_SERVICES);
	add_jump(filter, "FORWARD", true, "kubernetes load balancer firewall", KUBE_PROXY_FIREWALL);
	add_jump(filter, "FORWARD", false, "kubernetes forwarding rules", KUBE_FORWARD);
	add_jump(filter, "FORWARD", true, "kubernetes service portals", KUBE_SERVICES);
	add_jump(filter, "FORWARD", true, "kubernetes externally-visible service portals",
		 KUBE_EXTERNAL_SERVICES);
	add_jump(filter, "OUTPUT", true, "kubernetes load balancer firewall", KUBE_PROXY_FIREWALL);
	add_jump(filter, "OUTPUT", true, "kubernetes service portals", KUBE_SERVICES);

	add_jump(nat, "PREROUTING", false, "kubernetes service portals", KUBE_SERVICES);
	add_jump(nat, "OUTPUT", false, "kubernetes service portals", KUBE_SERVICES);
	add_jump(nat, "POSTROUTING", false, "kubernetes postrouting rules", KUBE_POSTROUTING);
}

static void fixed_chains(struct gen *g)
{
	struct rule *r;

	table_chain(g->filter, KUBE_SERVICES);
	table_chain(g->filter, KUBE_EXTERNAL_SERVICES);
	table_chain(g->filter, KUBE_FORWARD);
	table_chain(g->filter, KUBE_NODEPORTS);
	table_chain(g->filter, KUBE_PROXY_FIREWALL);

	table_chain(g->nat, KUBE_SERVICES);
	table_chain(g->nat, KUBE_NODEPORTS);
	table_chain(g->nat, KUBE_POSTROUTING);
	table_chain(g->nat, KUBE_MARK_MASQ);

	r = add_rule(g, g->nat, KUBE_POSTROUTING);
	rule_mark(r, g->mark, g->mark, true);
	rule_target(r, RT_RETURN);
	r = add_rule(g, g->nat, KUBE_POSTROUTING);
	rule_mark_xor(r, g->mark);
	r = add_rule(g, g->nat, KUBE_POSTROUTING);
	rule_comment(r, "kubernetes service traffic requiring SNAT");
	rule_masquerade(r, g->env->random_fully);

	r = add_rule(g, g->nat, KUBE_MARK_MASQ);
	rule_mark_or(r, g->mark);
}

/* The rules that must come after every service's rules. */
static void tail_rules(struct gen *g)
{
	static const char np_comment[] =
		"kubernetes service nodeports; NOTE: this must be the last rule in this chain";
	struct rule *r;

	if (g->npa.match_all) {
		r = add_rule(g, g->nat, KUBE_SERVICES);
		rule_comment(r, np_comment);
		rule_addrtype_dst_local(r, false);
		if (g->family == AF_INET6) {
			struct cidr lo6 = { .base = { .family = AF_INET6, .bytes = { [15] = 1 } },
					    .prefix = 128 };

			rule_dst(r, &lo6, true);
		} else if (!g->localhost_nodeports) {
			struct cidr lo8 = { .base = { .family = AF_INET, .bytes = { 127 } },
					    .prefix = 8 };

			rule_dst(r, &lo8, true);
		}
		rule_jump(r, KUBE_NODEPORTS);
	} else {
		struct ptrvec seen = { 0 };

		for (size_t c = 0; c < g->npa.n; c++) {
			for (size_t i = 0; i < g->env->n_host_addrs; i++) {
				const struct addr *a = &g->env->host_addrs[i];
				bool dup = false;

				if (a->family != g->family || !cidr_contains(&g->npa.cidrs[c], a))
					continue;
				for (size_t k = 0; k < seen.n && !dup; k++)
					dup = addr_equal(seen.v[k], a);
				if (dup)
					continue;
				pv_push(&seen, a);
				if (is_loopback(a) && (g->family == AF_INET6 || !g->localhost_nodeports))
					continue;
				r = add_rule(g, g->nat, KUBE_SERVICES);
				rule_comment(r, np_comment);
				rule_dst_ip(r, a, false);
				rule_jump(r, KUBE_NODEPORTS);
			}
		}
		free(seen.v);
	}

	if (!g->env->tcp_be_liberal) {
		r = add_rule(g, g->filter, KUBE_FORWARD);
		rule_ctstate(r, CTSTATE_INVALID, false);
		if (g->env->nfacct_ct_invalid)
			rule_nfacct(r, NFACCT_CT_INVALID_DROPPED);
		rule_target(r, RT_DROP);
	}
	r = add_rule(g, g->filter, KUBE_FORWARD);
	rule_comment(r, "kubernetes forwarding rules");
	rule_mark(r, g->mark, g->mark, false);
	rule_target(r, RT_ACCEPT);
	r = add_rule(g, g->filter, KUBE_FORWARD);
	rule_comment(r, "kubernetes forwarding conntrack rule");
	rule_ctstate(r, CTSTATE_RELATED | CTSTATE_ESTABLISHED, false);
	rule_target(r, RT_ACCEPT);
}

/* ---- one service port ---------------------------------------------------- */

static void endpoint_comment(struct rule *r, const struct gen *g, const char *text)
{
	if (!g->large)
		rule_comment(r, text);
}

/* writeServiceToEndpointRules: affinity checks, then the random spread. */
static void service_to_endpoints(struct gen *g, const struct svc_view *sv, const char *chain,
				 const struct ptrvec *eps)
{
	const struct service *svc = sv->pi->svc;
	char comment[512];
	struct rule *r;

	if (svc->affinity_client_ip) {
		for (size_t i = 0; i < eps->n; i++) {
			const struct ep_view *e = eps->v[i];

			snprintf(comment, sizeof(comment), "%s -> %s", sv->spn, e->str);
			r = add_rule(g, g->nat, chain);
			endpoint_comment(r, g, comment);
			rule_recent_check(r, e->chain, svc->affinity_timeout);
			rule_jump(r, e->chain);
		}
	}
	for (size_t i = 0; i < eps->n; i++) {
		const struct ep_view *e = eps->v[i];

		snprintf(comment, sizeof(comment), "%s -> %s", sv->spn, e->str);
		r = add_rule(g, g->nat, chain);
		endpoint_comment(r, g, comment);
		if (i + 1 < eps->n)
			rule_statistic(r, 1.0 / (double)(eps->n - i));
		rule_jump(r, e->chain);
	}
}

static void keep_chain(struct gen *g, const char *name)
{
	table_chain(g->nat, name)->keep = true;
}

static void gen_service(struct gen *g, const struct svc_port_info *pi, bool skip)
{
	struct svc_view sv;
	const struct svc_port_info *p = pi;
	enum l4_proto proto = pi->proto;
	bool has_eps, has_int, has_ext, uses_cluster, uses_local, uses_ext, uses_fw;
	const char *int_chain, *ext_policy_chain, *lb_chain;
	bool int_reject = false, ext_reject = false;
	char int_comment[512] = "", ext_comment[512] = "", comment[512];
	struct rule *r;

	svc_view_init(g, &sv, pi);
	has_eps = categorize(g, &sv);

	uses_cluster = g->cluster.n > 0 && uses_cluster_endpoints(&sv);
	uses_local = g->local.n > 0 && uses_local_endpoints(&sv);

	int_chain = sv.svc_chain;
	has_int = has_eps;
	if (sv.int_local) {
		int_chain = sv.svl_chain;
		if (!g->local.n)
			has_int = false;
	}
	ext_policy_chain = sv.svc_chain;
	has_ext = has_eps;
	if (sv.ext_local) {
		ext_policy_chain = sv.svl_chain;
		if (!g->local.n)
			has_ext = false;
	}
	uses_ext = has_eps && sv.ext_accessible;
	lb_chain = sv.ext_chain;
	uses_fw = has_eps && g->lb_ips.n && g->ranges.n;
	if (uses_fw)
		lb_chain = sv.fw_chain;

	if (!has_eps) {
		int_reject = ext_reject = true;
		snprintf(int_comment, sizeof(int_comment), "%s has no endpoints", sv.spn);
		memcpy(ext_comment, int_comment, sizeof(ext_comment));
	} else {
		if (!has_int)
			snprintf(int_comment, sizeof(int_comment), "%s has no local endpoints", sv.spn);
		if (!has_ext)
			snprintf(ext_comment, sizeof(ext_comment), "%s has no local endpoints", sv.spn);
	}

	/* ClusterIP */
	if (has_int) {
		snprintf(comment, sizeof(comment), "%s cluster IP", sv.spn);
		r = vip_rule(g, g->nat, KUBE_SERVICES, comment, proto, &p->cluster_ip, p->svc_port);
		rule_jump(r, int_chain);
	} else {
		r = vip_rule(g, g->filter, KUBE_SERVICES, int_comment, proto, &p->cluster_ip, p->svc_port);
		set_filter_target(r, int_reject);
	}

	/* externalIPs */
	for (size_t i = 0; i < g->ext_ips.n; i++) {
		const struct addr *ip = g->ext_ips.v[i];

		if (has_eps) {
			snprintf(comment, sizeof(comment), "%s external IP", sv.spn);
			r = vip_rule(g, g->nat, KUBE_SERVICES, comment, proto, ip, p->svc_port);
			rule_jump(r, sv.ext_chain);
		}
		if (!has_ext) {
			r = vip_rule(g, g->filter, KUBE_EXTERNAL_SERVICES, ext_comment, proto, ip, p->svc_port);
			set_filter_target(r, ext_reject);
		}
	}

	/* load-balancer ingress */
	for (size_t i = 0; i < g->lb_ips.n; i++) {
		const struct addr *ip = g->lb_ips.v[i];

		if (has_eps) {
			snprintf(comment, sizeof(comment), "%s loadbalancer IP", sv.spn);
			r = vip_rule(g, g->nat, KUBE_SERVICES, comment, proto, ip, p->svc_port);
			rule_jump(r, lb_chain);
		}
		if (uses_fw) {
			snprintf(comment, sizeof(comment), "%s traffic not accepted by %s",
				 sv.spn, sv.fw_chain);
			r = vip_rule(g, g->filter, KUBE_PROXY_FIREWALL, comment, proto, ip, p->svc_port);
			rule_target(r, RT_DROP);
		}
	}
	if (!has_ext) {
		for (size_t i = 0; i < g->lb_ips.n; i++) {
			r = vip_rule(g, g->filter, KUBE_EXTERNAL_SERVICES, ext_comment, proto,
				     g->lb_ips.v[i], p->svc_port);
			set_filter_target(r, ext_reject);
		}
	}

	/* NodePort */
	if (p->node_port) {
		if (has_eps && g->localhost_nodeports && g->env->nfacct_localhost_np) {
			/* The same jump, first counted for localhost clients. */
			struct cidr lo = loopback4();

			r = add_rule(g, g->nat, KUBE_NODEPORTS);
			rule_comment(r, sv.spn);
			rule_proto(r, proto);
			rule_dst(r, &lo, false);
			rule_dport(r, p->node_port);
			rule_nfacct(r, NFACCT_LOCALHOST_NODEPORT);
			rule_jump(r, sv.ext_chain);
		}
		if (has_eps) {
			r = add_rule(g, g->nat, KUBE_NODEPORTS);
			rule_comment(r, sv.spn);
			rule_proto(r, proto);
			rule_dport(r, p->node_port);
			rule_jump(r, sv.ext_chain);
		}
		if (!has_ext) {
			r = add_rule(g, g->filter, KUBE_EXTERNAL_SERVICES);
			rule_comment(r, ext_comment);
			rule_addrtype_dst_local(r, false);
			rule_proto(r, proto);
			rule_dport(r, p->node_port);
			set_filter_target(r, ext_reject);
		}
	}

	/* health check node port */
	if (sv.hc_node_port) {
		snprintf(comment, sizeof(comment), "%s health check node port", sv.spn);
		r = add_rule(g, g->filter, KUBE_NODEPORTS);
		rule_comment(r, comment);
		rule_proto(r, PROTO_TCP);
		rule_dport(r, sv.hc_node_port);
		rule_target(r, RT_ACCEPT);
	}

	if (skip) {
		/* Unchanged since the last sync: list the chains so that they
		 * are not deleted as stale, and leave their content alone. */
		if (uses_ext)
			keep_chain(g, sv.ext_chain);
		if (uses_fw)
			keep_chain(g, sv.fw_chain);
		if (uses_cluster)
			keep_chain(g, sv.svc_chain);
		if (uses_local)
			keep_chain(g, sv.svl_chain);
		for (size_t i = 0; i < g->reach.n; i++)
			keep_chain(g, ((const struct ep_view *)g->reach.v[i])->chain);
		return;
	}

	/* internal traffic: masquerade what did not come from a local pod */
	if (has_int) {
		if (g->cfg->masquerade_all || g->ld.kind != LD_NONE) {
			snprintf(comment, sizeof(comment), "%s cluster IP", sv.spn);
			r = vip_rule(g, g->nat, int_chain, comment, proto, &p->cluster_ip, p->svc_port);
			if (!g->cfg->masquerade_all)
				detector_match(&g->ld, r, false);
			rule_jump(r, KUBE_MARK_MASQ);
		}
	}

	/* external traffic */
	if (uses_ext) {
		table_chain(g->nat, sv.ext_chain);
		if (!sv.ext_local) {
			snprintf(comment, sizeof(comment),
				 "masquerade traffic for %s external destinations", sv.spn);
			r = add_rule(g, g->nat, sv.ext_chain);
			rule_comment(r, comment);
			rule_jump(r, KUBE_MARK_MASQ);
		} else {
			if (g->ld.kind != LD_NONE) {
				snprintf(comment, sizeof(comment),
					 "pod traffic for %s external destinations", sv.spn);
				r = add_rule(g, g->nat, sv.ext_chain);
				rule_comment(r, comment);
				detector_match(&g->ld, r, true);
				rule_jump(r, sv.svc_chain);
			}
			snprintf(comment, sizeof(comment),
				 "masquerade LOCAL traffic for %s external destinations", sv.spn);
			r = add_rule(g, g->nat, sv.ext_chain);
			rule_comment(r, comment);
			rule_addrtype_src_local(r, false);
			rule_jump(r, KUBE_MARK_MASQ);
			snprintf(comment, sizeof(comment),
				 "route LOCAL traffic for %s external destinations", sv.spn);
			r = add_rule(g, g->nat, sv.ext_chain);
			rule_comment(r, comment);
			rule_addrtype_src_local(r, false);
			rule_jump(r, sv.svc_chain);
		}
		if (has_ext) {
			r = add_rule(g, g->nat, sv.ext_chain);
			rule_jump(r, ext_policy_chain);
		}
	}

	/* loadBalancerSourceRanges */
	if (uses_fw) {
		const struct addr *nip = &g->env->node_ip[g->family == AF_INET6];
		bool allow_node = false;

		snprintf(comment, sizeof(comment), "%s loadbalancer IP", sv.spn);
		for (size_t i = 0; i < g->ranges.n; i++) {
			const struct cidr *c = g->ranges.v[i];

			r = add_rule(g, g->nat, sv.fw_chain);
			rule_comment(r, comment);
			rule_src(r, c, false);
			rule_jump(r, sv.ext_chain);
			if (nip->family == g->family && cidr_contains(c, nip))
				allow_node = true;
		}
		if (allow_node) {
			for (size_t i = 0; i < g->lb_ips.n; i++) {
				r = add_rule(g, g->nat, sv.fw_chain);
				rule_comment(r, comment);
				rule_src_ip(r, g->lb_ips.v[i], false);
				rule_jump(r, sv.ext_chain);
			}
		}
		snprintf(comment, sizeof(comment),
			 "other traffic to %s will be dropped by KUBE-PROXY-FIREWALL", sv.spn);
		r = add_rule(g, g->nat, sv.fw_chain);
		rule_comment(r, comment);
	}

	if (uses_cluster)
		service_to_endpoints(g, &sv, sv.svc_chain, &g->cluster);
	if (uses_local)
		service_to_endpoints(g, &sv, sv.svl_chain, &g->local);

	/* endpoint chains */
	for (size_t i = 0; i < g->reach.n; i++) {
		const struct ep_view *e = g->reach.v[i];

		r = add_rule(g, g->nat, e->chain);
		endpoint_comment(r, g, sv.spn);
		rule_src_ip(r, &e->ep->ip, false);
		rule_jump(r, KUBE_MARK_MASQ);

		r = add_rule(g, g->nat, e->chain);
		endpoint_comment(r, g, sv.spn);
		if (pi->svc->affinity_client_ip)
			rule_recent_set(r, e->chain);
		rule_proto(r, proto);
		rule_dnat(r, &e->ep->ip, e->ep->port);
	}
}

/* ---- entry points -------------------------------------------------------- */

bool proxier_localhost_nodeports(const struct config *cfg, const struct proxier_env *env)
{
	struct nodeport_addrs npa;

	nodeport_addrs_init(&npa, cfg, env, AF_INET);
	return cfg->localhost_nodeports && npa.v4_loopback;
}

bool proxier_large_cluster(const struct proxy_state *ps, uint8_t family)
{
	size_t total = 0;

	for (size_t i = 0; i < ps->n_ports; i++)
		if (ps->ports[i].family == family)
			total += ps->ports[i].n_eps;
	return total > LARGE_CLUSTER_ENDPOINTS;
}

void proxier_build(const struct config *cfg, const struct proxier_env *env,
		   const struct proxy_state *ps, uint8_t family,
		   const struct dirty_set *changed,
		   struct table_want *nat, struct table_want *filter,
		   struct proxier_counts *counts)
{
	struct gen g;
	struct proxier_counts cnt = { 0 };

	memset(&g, 0, sizeof(g));
	g.cfg = cfg;
	g.env = env;
	g.family = family;
	g.nat = nat;
	g.filter = filter;
	g.mark = 1u << (cfg->masquerade_bit & 31);
	g.last_nat = g.last_filter = SIZE_MAX;
	detector_init(&g.ld, cfg, ps->node, family);
	nodeport_addrs_init(&g.npa, cfg, env, family);
	g.localhost_nodeports = family == AF_INET && cfg->localhost_nodeports && g.npa.v4_loopback;
	g.large = proxier_large_cluster(ps, family);

	/* nat: per service port up to four chains (SVC, SVL, EXT, FW) and
	 * one per endpoint, plus the fixed ones. */
	{
		size_t want = 16;

		for (size_t i = 0; i < ps->n_ports; i++)
			if (ps->ports[i].family == family)
				want += 2 + ps->ports[i].n_eps;
		table_want_reserve(nat, want);
	}
	if (g.localhost_nodeports)
		localnet_firewall(filter);
	builtin_jumps(nat, filter);
	fixed_chains(&g);
	for (size_t i = 0; i < ps->n_ports; i++) {
		const struct svc_port_info *pi = &ps->ports[i];
		bool skip;

		if (pi->family != family)
			continue;
		skip = changed && !dirty_has(changed, pi->key);
		cnt.services++;
		cnt.endpoints += pi->n_eps;
		cnt.kept_services += skip;
		gen_service(&g, pi, skip);
	}
	tail_rules(&g);

	cnt.large_cluster = g.large;
	if (counts)
		*counts = cnt;
	free(g.eps);
	free(g.cluster.v);
	free(g.local.v);
	free(g.reach.v);
	free(g.ext_ips.v);
	free(g.lb_ips.v);
	free(g.ranges.v);
}

void proxier_add_canary(struct table_want *t)
{
	table_chain(t, KUBE_PROXY_CANARY);
}

const char *proxier_family_header(uint8_t family)
{
	return family == AF_INET6 ?
	       "# kube-proxy iptables rules: IPv6 (feed to ip6tables-legacy-restore)" :
	       "# kube-proxy iptables rules: IPv4 (feed to iptables-legacy-restore)";
}

void proxier_render(const struct config *cfg, const struct proxier_env *env,
		    const struct proxy_state *ps, struct strbuf *out)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		struct table_want nat, filter, mangle;

		table_want_init(&nat, "nat", families[f]);
		table_want_init(&filter, "filter", families[f]);
		table_want_init(&mangle, "mangle", families[f]);
		proxier_build(cfg, env, ps, families[f], NULL, &nat, &filter, NULL);
		proxier_add_canary(&filter);
		proxier_add_canary(&nat);
		proxier_add_canary(&mangle);

		sb_puts(out, proxier_family_header(families[f]));
		sb_putc(out, '\n');
		table_render(&filter, out);
		table_render(&nat, out);
		table_render(&mangle, out);
		table_want_free(&nat);
		table_want_free(&filter);
		table_want_free(&mangle);
	}
}
