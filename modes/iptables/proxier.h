/* The iptables proxier's rule generation: turns the desired state (a
 * struct proxy_state) into upstream kube-proxy's exact nat and filter rule
 * set for one IP family, as struct table_want (modes/iptc/rule.h), ready
 * for iptc_apply or for rendering as iptables-restore text.
 *
 * Behaviour follows upstream pkg/proxy/iptables/proxier.go syncProxyRules:
 * same chains, rule order, matches, comments and targets. The "-m nfacct"
 * matches appear when the caller found the accounting objects (env). */
#ifndef KP_IPTABLES_PROXIER_H
#define KP_IPTABLES_PROXIER_H

#include <stdbool.h>
#include <stddef.h>

#include "../../src/cidr.h"
#include "../../src/config.h"
#include "../../src/store.h"
#include "../../src/util.h"
#include "../iptc/rule.h"

/* Upstream's nfacct counter names (pkg/proxy/metrics). */
#define NFACCT_CT_INVALID_DROPPED "ct_state_invalid_dropped_pkts"
#define NFACCT_LOCALHOST_NODEPORT "localhost_nps_accepted_pkts"

/* Facts about the host that the rules depend on, gathered by the caller
 * (iptables.c) so that generation itself touches nothing. */
struct proxier_env {
	bool random_fully;        /* MASQUERADE --random-fully */
	bool tcp_be_liberal;      /* nf_conntrack_tcp_be_liberal set: no INVALID drop rule */
	bool nfacct_ct_invalid;   /* nfacct object NFACCT_CT_INVALID_DROPPED exists: count INVALID drops */
	bool nfacct_localhost_np; /* nfacct object NFACCT_LOCALHOST_NODEPORT exists: count NodePort
				   * packets to 127.0.0.0/8 (IPv4, localhost NodePorts on) */
	struct addr node_ip[2];   /* primary node IP, [0] IPv4, [1] IPv6 (family 0 = unknown) */
	const struct addr *host_addrs; /* every address of this host (for --nodeport-addresses) */
	size_t n_host_addrs;
};

/* What one build produced (for logs and metrics). */
struct proxier_counts {
	size_t services;          /* service ports of the family */
	size_t endpoints;         /* endpoints of the family (all, not only ready) */
	size_t kept_services;     /* service ports whose chains were marked keep */
	bool large_cluster;       /* more than 1000 endpoints: per-endpoint comments dropped */
};

/* Chains of ours that iptc_apply may delete when no longer wanted
 * (NULL terminated): KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-, KUBE-SEP-. */
extern const char *const proxier_stale_prefixes[];

/* Builds the nat and filter tables of one family (AF_INET or AF_INET6)
 * into nat and filter, which the caller has table_want_init'ed and owns.
 * changed == NULL renders everything; otherwise the SVC/SVL/EXT/FW/SEP
 * chains of services not listed in changed are added with keep = true and
 * no rules (they must stay as they are in the kernel). KUBE-SERVICES,
 * KUBE-NODEPORTS and the other fixed chains are always complete. counts
 * may be NULL. */
void proxier_build(const struct config *cfg, const struct proxier_env *env,
		   const struct proxy_state *ps, uint8_t family,
		   const struct dirty_set *changed,
		   struct table_want *nat, struct table_want *filter,
		   struct proxier_counts *counts);

/* Adds the empty KUBE-PROXY-CANARY chain to t (mangle, nat and filter get
 * one each, as upstream's monitor creates). */
void proxier_add_canary(struct table_want *t);

/* True when IPv4 NodePorts are reachable on 127.0.0.1 (upstream's
 * effective localhostNodePorts: the flag, and --nodeport-addresses that
 * include 127.0.0.1); the caller must then set route_localnet=1. */
bool proxier_localhost_nodeports(const struct config *cfg, const struct proxier_env *env);

/* True when generation for this family runs in upstream's "large cluster
 * mode" (over 1000 endpoints), which changes every endpoint chain; a
 * partial sync is not valid across a change of this value. */
bool proxier_large_cluster(const struct proxy_state *ps, uint8_t family);

/* Renders the complete rule set for --dry-run into out, both families:
 *
 *   # kube-proxy iptables rules: IPv4 (feed to iptables-legacy-restore)
 *   *filter ... COMMIT
 *   *nat ... COMMIT
 *   *mangle ... COMMIT
 *   # kube-proxy iptables rules: IPv6 (feed to ip6tables-legacy-restore)
 *   *filter ... COMMIT
 *   *nat ... COMMIT
 *   *mangle ... COMMIT
 *
 * Each "# kube-proxy iptables rules: IPvN" line starts one family's part;
 * both lines are always present. Each table lists our chains, then the
 * jumps from the built-in chains as "-A PREROUTING ..." lines, then our
 * rules. The text of one family is valid iptables-restore input (the
 * comment lines are ignored by iptables-restore), e.g.
 *   sed -n '/^# .*IPv4/,/^# .*IPv6/p' out | iptables-legacy-restore --test
 *   sed -n '/^# .*IPv6/,$p' out | ip6tables-legacy-restore --test */
void proxier_render(const struct config *cfg, const struct proxier_env *env,
		    const struct proxy_state *ps, struct strbuf *out);

/* The exact separator line (without newline) that starts a family's part
 * in proxier_render output. */
const char *proxier_family_header(uint8_t family);

#endif
