/* The ipvs mode's fixed iptables rules (upstream pkg/proxy/ipvs). */
#include "config.h"

#include "rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../iptc/writer.h"
#include "ipset.h"
#include "util.h"

/* Every chain this mode owns (cleanup removes them). */
static const char *const nat_chains[] = {
	"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER",
	"KUBE-MARK-MASQ", NULL
};
static const char *const filter_chains[] = {
	"KUBE-FORWARD", "KUBE-NODE-PORT", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL",
	"KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER", NULL
};

static const char *sname(enum kp_set s, uint8_t family, char *buf)
{
	return kp_set_name(s, family, buf, 32);
}

static void jump(struct table_want *t, const char *builtin, const char *comment, const char *chain)
{
	struct rule *r = table_builtin_rule(t, builtin);

	if (comment)
		rule_comment(r, comment);
	rule_jump(r, chain);
}

/* -A chain [-p proto] -m comment --comment C -m set --match-set S flags -j target */
static struct rule *set_rule(struct table_want *t, const char *chain, const char *comment,
			     enum kp_set s, uint8_t family, const char *flags)
{
	struct rule *r = chain_append(table_chain(t, chain));
	char buf[32];

	if (comment)
		rule_comment(r, comment);
	rule_set(r, sname(s, family, buf), flags, false);
	return r;
}

void kp_ipvs_rules_build(const struct config *cfg, uint8_t family,
			 struct table_want *nat, struct table_want *filter)
{
	uint32_t mark = 1u << cfg->masquerade_bit;
	struct rule *r;
	char buf[32];

	/* chains first, in upstream's order */
	for (size_t i = 0; nat_chains[i]; i++)
		table_chain(nat, nat_chains[i]);
	for (size_t i = 0; filter_chains[i]; i++)
		table_chain(filter, filter_chains[i]);

	/* ---- nat ---- */
	jump(nat, "OUTPUT", "kubernetes service portals", "KUBE-SERVICES");
	jump(nat, "PREROUTING", "kubernetes service portals", "KUBE-SERVICES");
	jump(nat, "POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING");

	r = chain_append(table_chain(nat, "KUBE-MARK-MASQ"));
	rule_mark_or(r, mark);

	r = set_rule(nat, "KUBE-POSTROUTING",
		     "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose",
		     SET_LOOP_BACK, family, "dst,dst,src");
	rule_masquerade(r, false);
	r = chain_append(table_chain(nat, "KUBE-POSTROUTING"));
	rule_mark(r, mark, mark, true);
	rule_target(r, RT_RETURN);
	r = chain_append(table_chain(nat, "KUBE-POSTROUTING"));
	rule_mark_xor(r, mark);
	r = chain_append(table_chain(nat, "KUBE-POSTROUTING"));
	rule_comment(r, "kubernetes service traffic requiring SNAT");
	rule_masquerade(r, false);

	/* load balancers: masquerade (source ranges are checked in filter) */
	r = set_rule(nat, "KUBE-SERVICES", "Kubernetes service lb portal", SET_LOAD_BALANCER, family, "dst,dst");
	rule_jump(r, "KUBE-LOAD-BALANCER");
	r = set_rule(nat, "KUBE-LOAD-BALANCER",
		     "Kubernetes service load balancer ip + port with externalTrafficPolicy=local",
		     SET_LOAD_BALANCER_LOCAL, family, "dst,dst");
	rule_target(r, RT_RETURN);
	r = chain_append(table_chain(nat, "KUBE-LOAD-BALANCER"));
	rule_jump(r, "KUBE-MARK-MASQ");

	/* cluster IPs: masquerade what does not come from a pod */
	{
		const struct cidr *local = NULL;

		for (size_t i = 0; i < cfg->n_cluster_cidrs && !local; i++)
			if (cfg->cluster_cidrs[i].base.family == family)
				local = &cfg->cluster_cidrs[i];
		/* without masquerade-all or a local traffic detector there is
		 * nothing to masquerade here (as upstream) */
		if (cfg->masquerade_all || local) {
			r = set_rule(nat, "KUBE-SERVICES",
				     "Kubernetes service cluster ip + port for masquerade purpose",
				     SET_CLUSTER_IP, family, "dst,dst");
			if (!cfg->masquerade_all)
				rule_src(r, local, true);
			rule_jump(r, "KUBE-MARK-MASQ");
		}
	}

	/* external IPs */
	r = set_rule(nat, "KUBE-SERVICES",
		     "Kubernetes service external ip + port for masquerade and filter purpose",
		     SET_EXTERNAL_IP, family, "dst,dst");
	rule_jump(r, "KUBE-MARK-MASQ");

	/* node ports */
	r = chain_append(table_chain(nat, "KUBE-SERVICES"));
	rule_addrtype_dst_local(r, false);
	rule_jump(r, "KUBE-NODE-PORT");
	{
		static const struct { enum kp_set all, local; enum l4_proto p; const char *name; } np[] = {
			{ SET_NODE_PORT_TCP, SET_NODE_PORT_LOCAL_TCP, PROTO_TCP, "TCP" },
			{ SET_NODE_PORT_UDP, SET_NODE_PORT_LOCAL_UDP, PROTO_UDP, "UDP" },
		};

		for (size_t i = 0; i < ARRAY_SIZE(np); i++) {
			char *c1 = xasprintf("Kubernetes nodeport %s port with externalTrafficPolicy=local", np[i].name);
			char *c2 = xasprintf("Kubernetes nodeport %s port for masquerade purpose", np[i].name);

			r = chain_append(table_chain(nat, "KUBE-NODE-PORT"));
			rule_proto_only(r, np[i].p);
			rule_comment(r, c1);
			rule_set(r, sname(np[i].local, family, buf), "dst", false);
			rule_target(r, RT_RETURN);
			r = chain_append(table_chain(nat, "KUBE-NODE-PORT"));
			rule_proto_only(r, np[i].p);
			rule_comment(r, c2);
			rule_set(r, sname(np[i].all, family, buf), "dst", false);
			rule_jump(r, "KUBE-MARK-MASQ");
			free(c1);
			free(c2);
		}
	}
	/* accept what IPVS will take so that nothing later NATs it */
	r = set_rule(nat, "KUBE-SERVICES", NULL, SET_CLUSTER_IP, family, "dst,dst");
	rule_target(r, RT_ACCEPT);
	r = set_rule(nat, "KUBE-SERVICES", NULL, SET_LOAD_BALANCER, family, "dst,dst");
	rule_target(r, RT_ACCEPT);

	/* ---- filter ---- */
	jump(filter, "INPUT", "kubernetes health check rules", "KUBE-NODE-PORT");
	jump(filter, "FORWARD", "kubernetes forwarding rules", "KUBE-FORWARD");
	jump(filter, "INPUT", "kubernetes ipvs access filter", "KUBE-IPVS-FILTER");
	jump(filter, "OUTPUT", "kubernetes ipvs access filter", "KUBE-IPVS-OUT-FILTER");
	jump(filter, "INPUT", "kube-proxy firewall rules", "KUBE-PROXY-FIREWALL");
	jump(filter, "FORWARD", "kube-proxy firewall rules", "KUBE-PROXY-FIREWALL");

	r = chain_append(table_chain(filter, "KUBE-FORWARD"));
	rule_ctstate(r, CTSTATE_INVALID, false);
	rule_target(r, RT_DROP);
	r = chain_append(table_chain(filter, "KUBE-FORWARD"));
	rule_comment(r, "kubernetes forwarding rules");
	rule_mark(r, mark, mark, false);
	rule_target(r, RT_ACCEPT);
	r = chain_append(table_chain(filter, "KUBE-FORWARD"));
	rule_comment(r, "kubernetes forwarding conntrack rule");
	rule_ctstate(r, CTSTATE_RELATED | CTSTATE_ESTABLISHED, false);
	rule_target(r, RT_ACCEPT);

	r = set_rule(filter, "KUBE-NODE-PORT", "Kubernetes health check node port",
		     SET_HEALTH_CHECK_NODE_PORT, family, "dst");
	rule_target(r, RT_ACCEPT);

	r = set_rule(filter, "KUBE-PROXY-FIREWALL",
		     "Kubernetes service load balancer ip + port for load balancer with sourceRange",
		     SET_LOAD_BALANCER_FW, family, "dst,dst");
	rule_jump(r, "KUBE-SOURCE-RANGES-FIREWALL");
	r = set_rule(filter, "KUBE-SOURCE-RANGES-FIREWALL", NULL, SET_LOAD_BALANCER_SOURCE_CIDR,
		     family, "dst,dst,src");
	rule_target(r, RT_RETURN);
	r = set_rule(filter, "KUBE-SOURCE-RANGES-FIREWALL", NULL, SET_LOAD_BALANCER_SOURCE_IP,
		     family, "dst,dst,src");
	rule_target(r, RT_RETURN);
	r = chain_append(table_chain(filter, "KUBE-SOURCE-RANGES-FIREWALL"));
	rule_target(r, RT_DROP);

	/* only service ports are reachable on the service addresses */
	{
		static const enum kp_set ok[] = { SET_LOAD_BALANCER, SET_CLUSTER_IP, SET_EXTERNAL_IP };

		for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
			r = set_rule(filter, "KUBE-IPVS-FILTER", NULL, ok[i], family, "dst,dst");
			rule_target(r, RT_RETURN);
		}
		r = set_rule(filter, "KUBE-IPVS-FILTER", NULL, SET_HEALTH_CHECK_NODE_PORT, family, "dst");
		rule_target(r, RT_RETURN);
		r = chain_append(table_chain(filter, "KUBE-IPVS-FILTER"));
		rule_ctstate(r, CTSTATE_NEW, false);
		rule_set(r, sname(SET_IPVS_IPS, family, buf), "dst", false);
		rule_target(r, RT_REJECT);
	}
}

int kp_ipvs_rules_apply(const struct config *cfg, uint8_t family, char **err)
{
	struct table_want nat, filter;
	static const char *const none[] = { NULL };
	int rc;

	table_want_init(&nat, "nat", family);
	table_want_init(&filter, "filter", family);
	kp_ipvs_rules_build(cfg, family, &nat, &filter);
	rc = iptc_apply(&nat, none, NULL, err);
	if (rc == 0)
		rc = iptc_apply(&filter, none, NULL, err);
	table_want_free(&nat);
	table_want_free(&filter);
	return rc;
}

void kp_ipvs_rules_render(const struct config *cfg, uint8_t family, FILE *out)
{
	struct table_want nat, filter;
	struct strbuf sb;

	sb_init(&sb);
	table_want_init(&nat, "nat", family);
	table_want_init(&filter, "filter", family);
	kp_ipvs_rules_build(cfg, family, &nat, &filter);
	table_render(&filter, &sb);
	table_render(&nat, &sb);
	fputs(sb_cstr(&sb), out);
	table_want_free(&nat);
	table_want_free(&filter);
	sb_free(&sb);
}

int kp_ipvs_rules_cleanup(uint8_t family, char **err)
{
	int rc = iptc_remove_chains("nat", family, nat_chains, err);

	if (rc == 0)
		rc = iptc_remove_chains("filter", family, filter_chains, err);
	return rc;
}
