/* Userspace mode: the iptables "portal" rules that steer service traffic
 * to the proxy ports, in upstream's chains and shapes:
 *
 *   nat PREROUTING -> KUBE-PORTALS-CONTAINER   (pods, other hosts)
 *       -m comment --comment ns/svc:port -m tcp -p tcp -d VIP --dport P -j REDIRECT --to-ports PROXY
 *   nat OUTPUT     -> KUBE-PORTALS-HOST        (the node itself)
 *       ... -d VIP --dport P -j DNAT --to-destination NODEIP:PROXY
 *   nat PREROUTING -m addrtype --dst-type LOCAL -> KUBE-NODEPORT-CONTAINER
 *   nat OUTPUT     -m addrtype --dst-type LOCAL -> KUBE-NODEPORT-HOST
 *   filter INPUT   -> KUBE-NODEPORT-NON-LOCAL  (accept NEW to proxy ports of NodePorts)
 *
 * REDIRECT cannot serve the node's own traffic (it would go to 127.0.0.1
 * and replies would leave from another address), hence DNAT to the node
 * address there, as upstream. With a specific --bind-address, container
 * traffic is DNATed to that address instead of REDIRECTed. */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/util.h"
#include "us.h"

#define CH_PORTALS_CONTAINER "KUBE-PORTALS-CONTAINER"
#define CH_PORTALS_HOST "KUBE-PORTALS-HOST"
#define CH_NODEPORT_CONTAINER "KUBE-NODEPORT-CONTAINER"
#define CH_NODEPORT_HOST "KUBE-NODEPORT-HOST"
#define CH_NODEPORT_NON_LOCAL "KUBE-NODEPORT-NON-LOCAL"

void portals_skeleton(struct table_want *nat, struct table_want *filter)
{
	struct rule *r;

	table_chain(nat, CH_PORTALS_CONTAINER);
	table_chain(nat, CH_PORTALS_HOST);
	table_chain(nat, CH_NODEPORT_CONTAINER);
	table_chain(nat, CH_NODEPORT_HOST);
	table_chain(filter, CH_NODEPORT_NON_LOCAL);

	/* Portals before NodePorts: NodePort rules match any local address. */
	r = table_builtin_rule(nat, "PREROUTING");
	rule_comment(r, "handle ClusterIPs; NOTE: this must be before the NodePort rules");
	rule_jump(r, CH_PORTALS_CONTAINER);
	r = table_builtin_rule(nat, "PREROUTING");
	rule_addrtype_dst_local(r, false);
	rule_comment(r, "handle service NodePorts; NOTE: this must be the last rule in the chain");
	rule_jump(r, CH_NODEPORT_CONTAINER);
	r = table_builtin_rule(nat, "OUTPUT");
	rule_comment(r, "handle ClusterIPs; NOTE: this must be before the NodePort rules");
	rule_jump(r, CH_PORTALS_HOST);
	r = table_builtin_rule(nat, "OUTPUT");
	rule_addrtype_dst_local(r, false);
	rule_comment(r, "handle service NodePorts; NOTE: this must be the last rule in the chain");
	rule_jump(r, CH_NODEPORT_HOST);
	r = table_builtin_rule(filter, "INPUT");
	rule_comment(r, "Ensure that non-local NodePort traffic can flow");
	rule_jump(r, CH_NODEPORT_NON_LOCAL);
}

/* Match part shared by every portal rule. ip NULL = any destination. */
static struct rule *portal_rule(struct chain *c, const struct us_port *p, const struct addr *ip,
				uint16_t dport, bool dst_local)
{
	struct rule *r = chain_append(c);

	rule_comment(r, p->spn);
	rule_proto(r, p->proto);
	if (ip)
		rule_dst_ip(r, ip, false);
	rule_dport(r, dport);
	if (dst_local)
		rule_addrtype_dst_local(r, false);
	return r;
}

static void container_target(struct rule *r, const struct us_port *p, bool bind_any,
			     const struct addr *bind_ip)
{
	if (bind_any)
		rule_redirect(r, p->proxy_port);
	else
		rule_dnat(r, bind_ip, p->proxy_port);
}

void portals_add_port(struct table_want *nat, struct table_want *filter, const struct us_port *p,
		      bool bind_any, const struct addr *bind_ip, const struct addr *host_ip)
{
	struct chain *cc = table_chain(nat, CH_PORTALS_CONTAINER);
	struct rule *r;

	/* ClusterIP and load-balancer IPs: everyone, from pods and the node. */
	container_target(portal_rule(cc, p, &p->cluster_ip, p->svc_port, false), p, bind_any, bind_ip);
	for (size_t i = 0; i < p->n_lb_ips; i++)
		container_target(portal_rule(cc, p, &p->lb_ips[i], p->svc_port, false), p, bind_any, bind_ip);
	/* External IPs: from outside always; from the node only when the
	 * address is one of the node's (else the packet really leaves). */
	for (size_t i = 0; i < p->n_ext_ips; i++)
		container_target(portal_rule(cc, p, &p->ext_ips[i], p->svc_port, false), p, bind_any, bind_ip);
	if (host_ip) {
		struct chain *hc = table_chain(nat, CH_PORTALS_HOST);

		rule_dnat(portal_rule(hc, p, &p->cluster_ip, p->svc_port, false), host_ip, p->proxy_port);
		for (size_t i = 0; i < p->n_lb_ips; i++)
			rule_dnat(portal_rule(hc, p, &p->lb_ips[i], p->svc_port, false), host_ip, p->proxy_port);
		for (size_t i = 0; i < p->n_ext_ips; i++)
			rule_dnat(portal_rule(hc, p, &p->ext_ips[i], p->svc_port, true), host_ip, p->proxy_port);
	}
	if (!p->node_port)
		return;
	container_target(portal_rule(table_chain(nat, CH_NODEPORT_CONTAINER), p, NULL, p->node_port, false),
			 p, bind_any, bind_ip);
	if (host_ip)
		rule_dnat(portal_rule(table_chain(nat, CH_NODEPORT_HOST), p, NULL, p->node_port, false),
			  host_ip, p->proxy_port);
	r = portal_rule(table_chain(filter, CH_NODEPORT_NON_LOCAL), p, NULL, p->proxy_port, false);
	rule_ctstate(r, CTSTATE_NEW, false);
	rule_target(r, RT_ACCEPT);
}

static int cmp_portp(const void *a, const void *b)
{
	const struct us_port *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

void portals_build(const struct us_ctx *ctx, uint8_t family, const struct addr *host_ip,
		   struct table_want *nat, struct table_want *filter)
{
	const struct us_port **v = NULL;
	size_t n = 0;
	size_t it = 0;
	const char *k;
	void *val;

	portals_skeleton(nat, filter);
	while (strmap_next(&ctx->ports, &it, &k, &val)) {
		const struct us_port *p = val;

		if (p->family != family || p->fd < 0)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = p;
	}
	/* Stable order, so an unchanged state renders identically. */
	if (n)
		qsort(v, n, sizeof(*v), cmp_portp);
	for (size_t i = 0; i < n; i++)
		portals_add_port(nat, filter, v[i], ctx->bind_any || ctx->bind_ip.family != family,
				 &ctx->bind_ip, host_ip);
	free(v);
}

/* The interface that holds the IPv4 default route (/proc/net/route). */
static bool default_route_iface(char *name, size_t len)
{
	FILE *f = fopen("/proc/net/route", "re");
	char line[256];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char ifn[IF_NAMESIZE + 1];
		unsigned long dst, mask;
		unsigned flags;

		if (sscanf(line, "%16s %lx %*x %x %*d %*d %*d %lx", ifn, &dst, &flags, &mask) != 4)
			continue;
		if (dst == 0 && mask == 0 && (flags & 1)) {
			snprintf(name, len, "%s", ifn);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static bool usable(const struct ifaddrs *ifa, uint8_t family)
{
	if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family)
		return false;
	if ((ifa->ifa_flags & IFF_LOOPBACK) || !(ifa->ifa_flags & IFF_UP))
		return false;
	if (family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ifa->ifa_addr;

		if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
			return false;
	}
	return true;
}

int us_host_ip(uint8_t family, struct addr *out)
{
	struct ifaddrs *ifs, *ifa;
	char def[IF_NAMESIZE + 1] = "";
	bool have_def = family == AF_INET && default_route_iface(def, sizeof(def));
	int rc = -ENOENT;

	if (getifaddrs(&ifs) < 0)
		return -errno;
	/* Pass 0: the default route's interface; pass 1: any. */
	for (int pass = have_def ? 0 : 1; pass < 2 && rc < 0; pass++) {
		for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
			uint16_t port;

			if (!usable(ifa, family))
				continue;
			if (pass == 0 && strcmp(ifa->ifa_name, def) != 0)
				continue;
			us_from_sockaddr((const struct sockaddr_storage *)(const void *)ifa->ifa_addr, out, &port);
			rc = 0;
			break;
		}
	}
	freeifaddrs(ifs);
	return rc;
}
