/* The iptables proxy mode: upstream kube-proxy's NAT rule set (proxier.c)
 * written through libiptc (modes/iptc/writer.c), one commit per table,
 * IPv4 and IPv6. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libiptc/libiptc.h>

#include "../../src/hostaddr.h"
#include "../../src/log.h"
#include "../../src/metrics.h"
#include "../../src/strmap.h"
#include "../../src/util.h"
#include "../iptc/nfacct.h"
#include "../iptc/writer.h"
#include "../mode.h"
#include "proxier.h"

extern char **environ;

#define ROUTE_LOCALNET "/proc/sys/net/ipv4/conf/all/route_localnet"
#define TCP_BE_LIBERAL "/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"

struct ipt_state {
	bool v6;                  /* ip6tables' nat table is usable */
	bool synced;              /* a full sync succeeded since init */
	bool last_large[2];
	struct addr last_node_ip[2];
	struct proxier_env env;
	struct addr *addrs;       /* env.host_addrs storage */
	size_t n_addrs;
	/* nat chain name -> rule count + 1 as last written, per family, so
	 * that partial syncs report the rules of the chains they kept */
	struct strmap chain_rules[2];
};

/* Every chain prefix upstream kube-proxy (all modes, old and new) and we
 * ever created, per table, for --cleanup. KUBE-FIREWALL in filter is ours
 * too since kubelet stopped managing iptables (1.28): we write it for
 * localhost NodePorts. KUBE-KUBELET-CANARY is kubelet's and stays. */
static const char *const cleanup_nat[] = {
	"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
	"KUBE-MARK-DROP", "KUBE-PROXY-CANARY", "KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-",
	"KUBE-FW-", "KUBE-SEP-", "KUBE-XLB-", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER",
	"KUBE-FIREWALL", "KUBE-PORTALS-CONTAINER", "KUBE-PORTALS-HOST",
	"KUBE-NODEPORT-CONTAINER", "KUBE-NODEPORT-HOST", "KUBE-NODEPORT-NON-LOCAL",
	NULL
};
static const char *const cleanup_filter[] = {
	"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-FORWARD",
	"KUBE-PROXY-FIREWALL", "KUBE-PROXY-CANARY", "KUBE-IPVS-", "KUBE-SOURCE-RANGES-FIREWALL",
	"KUBE-FIREWALL", NULL
};
static const char *const cleanup_mangle[] = { "KUBE-PROXY-CANARY", NULL };
static const char *const no_prefixes[] = { NULL };

static const uint8_t families[2] = { AF_INET, AF_INET6 };

static const char *fam_name(uint8_t family)
{
	return family == AF_INET6 ? "IPv6" : "IPv4";
}

/* ---- host facts ---------------------------------------------------------- */

static bool is_global(const struct addr *a)
{
	if (a->family == AF_INET)
		return a->bytes[0] != 127 && !(a->bytes[0] == 169 && a->bytes[1] == 254);
	if (a->family == AF_INET6) {
		static const uint8_t lo[16] = { [15] = 1 };

		return memcmp(a->bytes, lo, 16) != 0 &&
		       !(a->bytes[0] == 0xfe && (a->bytes[1] & 0xc0) == 0x80);
	}
	return false;
}

/* Refreshes the host's addresses and the node IPs in st->env. The node IP
 * of a family is --bind-address when it is a specific address of that
 * family, else the first global address of the family on any interface. */
static void env_refresh(struct ipt_state *st, const struct config *cfg)
{
	struct addr bind = { 0 }, *addrs;
	long n;

	n = host_addresses(&addrs);
	if (n < 0) {
		log_warn("getifaddrs: %s; NodePorts on --nodeport-addresses may be incomplete",
			 strerror((int)-n));
		n = 0;
	}
	free(st->addrs);
	st->addrs = addrs;
	st->n_addrs = (size_t)n;
	st->env.host_addrs = st->addrs;
	st->env.n_host_addrs = st->n_addrs;

	memset(st->env.node_ip, 0, sizeof(st->env.node_ip));
	if (cfg->bind_address && addr_parse(cfg->bind_address, &bind) == 0 &&
	    !addr_is_unspecified(&bind))
		st->env.node_ip[bind.family == AF_INET6] = bind;
	for (size_t i = 0; i < st->n_addrs; i++) {
		struct addr *slot = &st->env.node_ip[st->addrs[i].family == AF_INET6];

		if (!slot->family && is_global(&st->addrs[i]))
			*slot = st->addrs[i];
	}
}

static int read_sysctl(const char *path, long *val)
{
	char *buf = NULL;
	size_t len;
	int ret = read_file(path, &buf, &len);

	if (ret == 0)
		*val = strtol(buf, NULL, 10);
	free(buf);
	return ret;
}

/* Writes val to a /proc/sys file in place (they cannot be renamed over). */
static int write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(val);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != (ssize_t)len)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

/* Runs argv with all output discarded; returns its exit status, or -1. */
static int run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	ret = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret != 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Is the system's "iptables" command the nf_tables variant? Decided from
 * the command's real path (xtables-nft-multi vs xtables-legacy-multi),
 * else from "iptables --version" ("(nf_tables)" vs "(legacy)"). */
static bool system_iptables_is_nft(void)
{
	static const char *const paths[] = { "/usr/sbin/iptables", "/sbin/iptables" };

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		char *real = realpath(paths[i], NULL);
		const char *base;
		bool nft = false, legacy = false;

		if (!real)
			continue;
		base = strrchr(real, '/');
		base = base ? base + 1 : real;
		nft = strstr(base, "nft") != NULL;
		legacy = strstr(base, "legacy") != NULL;
		free(real);
		if (nft || legacy)
			return nft;
		{
			char cmd[PATH_MAX + 32], line[256] = "";
			FILE *p;

			snprintf(cmd, sizeof(cmd), "%s --version 2>/dev/null", paths[i]);
			p = popen(cmd, "r");
			if (!p)
				return false;
			if (!fgets(line, sizeof(line), p))
				line[0] = '\0';
			pclose(p);
			return strstr(line, "nf_tables") != NULL;
		}
	}
	return false;
}

/* Warns about the nf_tables side: how to look at our rules, and another
 * proxy's chains there (they run in addition to ours). */
static void check_nft_backend(void)
{
	static char *const list_v4[] = { "/usr/sbin/iptables-nft", "-t", "nat", "-S", "KUBE-SERVICES", NULL };
	static char *const list_v6[] = { "/usr/sbin/ip6tables-nft", "-t", "nat", "-S", "KUBE-SERVICES", NULL };
	static char *const nft_tables[][6] = {
		{ "/usr/sbin/nft", "list", "table", "ip", "kube-proxy", NULL },
		{ "/usr/sbin/nft", "list", "table", "ip6", "kube-proxy", NULL },
	};

	if (system_iptables_is_nft())
		log_info("System iptables is the nft variant; this proxier writes the legacy tables: "
			 "inspect with iptables-legacy -t nat -L -n");
	if (access(list_v4[0], X_OK) == 0 && run_quiet(list_v4) == 0)
		log_warn("Chain KUBE-SERVICES exists in the nf_tables backend (iptables-nft -t nat -S "
			 "KUBE-SERVICES): another kube-proxy's rules are active there and will also "
			 "handle service traffic; remove them (e.g. upstream \"kube-proxy --cleanup\" "
			 "with the nft iptables)");
	if (access(list_v6[0], X_OK) == 0 && run_quiet(list_v6) == 0)
		log_warn("Chain KUBE-SERVICES exists in the IPv6 nf_tables backend (ip6tables-nft -t "
			 "nat -S KUBE-SERVICES): another kube-proxy's rules are active there");
	for (size_t i = 0; i < ARRAY_SIZE(nft_tables); i++)
		if (access(nft_tables[i][0], X_OK) == 0 && run_quiet(nft_tables[i]) == 0)
			log_warn("nftables table \"%s %s\" exists (upstream kube-proxy's nftables mode): "
				 "its rules also handle service traffic; remove it with \"nft delete "
				 "table %s %s\"", nft_tables[i][3], nft_tables[i][4],
				 nft_tables[i][3], nft_tables[i][4]);
}

/* ---- mode ops -------------------------------------------------------------- */

static int ipt_probe(const struct config *cfg, char **why)
{
	static const char *const tables[] = { "nat", "filter" };

	(void)cfg;
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		struct xtc_handle *h = iptc_init(tables[i]);
		int e = errno;

		if (h) {
			iptc_free(h);
			continue;
		}
		*why = xasprintf("cannot open the legacy iptables \"%s\" table through libiptc: %s "
				 "(is the kernel module ip_tables/iptable_%s loaded? try \"modprobe "
				 "iptable_%s\"; root or CAP_NET_ADMIN is required)",
				 tables[i], iptc_strerror(e), tables[i], tables[i]);
		return e ? -e : -ENOENT;
	}
	return 0;
}

/* Upstream's two nfacct counters, the env flag saying the rules may use
 * each, and the metric each becomes. */
static const struct {
	const char *counter;
	size_t flag;            /* offset of the bool in struct proxier_env */
	const char *metric, *help;
} nfacct_metrics[] = {
	{ NFACCT_CT_INVALID_DROPPED, offsetof(struct proxier_env, nfacct_ct_invalid),
	  "kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
	  "[ALPHA] packets dropped by iptables to work around conntrack problems" },
	{ NFACCT_LOCALHOST_NODEPORT, offsetof(struct proxier_env, nfacct_localhost_np),
	  "kubeproxy_iptables_localhost_nodeports_accepted_packets_total",
	  "[ALPHA] Number of packets accepted on nodeports of loopback interface" },
};

static bool *nfacct_flag(struct proxier_env *env, size_t i)
{
	return (bool *)(void *)((char *)env + nfacct_metrics[i].flag);
}

/* Sets env's nfacct flags: the counters exist (created here when create,
 * as upstream does at start; --dry-run only looks). */
static void nfacct_setup(struct proxier_env *env, bool create)
{
	int usable = nfacct_match_usable();

	env->nfacct_ct_invalid = env->nfacct_localhost_np = false;
	if (usable < 0) {
		if (create)
			log_warn("The kernel has no iptables nfacct match (xt_nfacct: %s); writing rules "
				 "without it, the nfacct based metrics won't be available", strerror(-usable));
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(nfacct_metrics); i++) {
		const char *name = nfacct_metrics[i].counter;
		uint64_t pkts;
		int ret = create ? nfacct_ensure(name) : nfacct_read(name, &pkts);

		*nfacct_flag(env, i) = ret == 0;
		if (ret < 0 && create)
			log_warn("Failed to create nfacct counter; the corresponding metric will not be "
				 "available counter=\"%s\" err=\"%s\"", name, strerror(-ret));
	}
}

static void ipt_metrics(struct mode_ctx *ctx, struct strbuf *out)
{
	struct ipt_state *st = ctx->priv;

	for (size_t i = 0; st && i < ARRAY_SIZE(nfacct_metrics); i++) {
		uint64_t pkts;

		if (!*nfacct_flag(&st->env, i) || nfacct_read(nfacct_metrics[i].counter, &pkts) < 0)
			continue;
		metrics_counter(out, nfacct_metrics[i].metric, nfacct_metrics[i].help, (double)pkts);
	}
}

static int ipt_init(struct mode_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	struct ipt_state *st = xcalloc(1, sizeof(*st));
	char **names = NULL;
	size_t n = 0;
	long liberal = 0;
	int ret;

	env_refresh(st, cfg);
	check_nft_backend();

	ret = iptc_list_chains("nat", AF_INET6, "KUBE-", &names, &n);
	if (ret == 0) {
		st->v6 = true;
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	} else {
		log_warn("IPv6 nat table unavailable (%s): IPv6 services will not be proxied; "
			 "load ip6table_nat to enable them", strerror(-ret));
	}

	if (proxier_localhost_nodeports(cfg, &st->env)) {
		log_info("Setting route_localnet=1 to allow node-ports on localhost; to change this "
			 "either disable iptables.localhostNodePorts (--iptables-localhost-nodeports) "
			 "or set nodePortAddresses (--nodeport-addresses) to filter loopback addresses");
		ret = write_sysctl(ROUTE_LOCALNET, "1\n");
		if (ret < 0) {
			log_error("can't set sysctl net/ipv4/conf/all/route_localnet: %s", strerror(-ret));
			free(st->addrs);
			free(st);
			return ret;
		}
	}
	if (read_sysctl(TCP_BE_LIBERAL, &liberal) == 0 && liberal) {
		st->env.tcp_be_liberal = true;
		log_info("nf_conntrack_tcp_be_liberal set, not installing DROP rules for INVALID packets");
	}
	st->env.random_fully = true;
	nfacct_setup(&st->env, true);
	strmap_init(&st->chain_rules[0]);
	strmap_init(&st->chain_rules[1]);
	log_v(2, "Using iptables mark for masquerade mark=0x%x", 1u << (cfg->masquerade_bit & 31));
	ctx->priv = st;
	return 0;
}

static bool canary_present(uint8_t family)
{
	char **names = NULL;
	size_t n = 0;
	bool found;

	if (iptc_list_chains("mangle", family, "KUBE-PROXY-CANARY", &names, &n) < 0)
		return false;
	found = n > 0;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return found;
}

/* One table through iptc_apply; adds to stats. */
static int apply_table(const struct table_want *t, const char *const *stale,
		       struct sync_stats *stats)
{
	struct apply_stats as = { 0 };
	char *err = NULL;
	int ret = iptc_apply(t, stale, &as, &err);

	if (ret < 0) {
		log_error("Failed to write the %s %s table: %s", fam_name(t->family), t->table,
			  err ? err : strerror(-ret));
		free(err);
		return ret;
	}
	if (strcmp(t->table, "filter") == 0)
		stats->rules_filter += as.rules_total;
	stats->chains_written += as.chains_created + as.chains_rewritten;
	log_v(4, "%s %s: %lu chains created, %lu rewritten, %lu unchanged, %lu deleted, "
	      "%lu rules, %u commit attempt(s); init %.3fs, edit %.3fs, commit %.3fs, free %.3fs, "
	      "in all %.3fs",
	      fam_name(t->family), t->table,
	      as.chains_created, as.chains_rewritten, as.chains_unchanged, as.chains_deleted,
	      as.rules_total, as.commit_attempts, (double)as.init_ns / 1e9,
	      (double)as.edit_ns / 1e9, (double)as.commit_ns / 1e9, (double)as.free_ns / 1e9,
	      (double)as.all_ns / 1e9);
	return 0;
}

/* Rules in our nat chains after a successful apply of t: the rules of
 * written chains plus the remembered counts of kept ones. */
static unsigned long count_nat_rules(struct strmap *m, const struct table_want *t, bool full)
{
	unsigned long total = 0;

	if (full) {
		strmap_free(m);
		strmap_init(m);
	}
	for (size_t i = 0; i < t->n_chains; i++) {
		const struct chain *c = &t->chains[i];

		if (c->keep) {
			uintptr_t v = (uintptr_t)strmap_get(m, c->name);

			total += v ? v - 1 : 0;
		} else {
			strmap_put(m, c->name, (void *)(uintptr_t)(c->n_rules + 1));
			total += c->n_rules;
		}
	}
	return total;
}

static int sync_family(struct ipt_state *st, const struct config *cfg,
		       const struct proxy_state *ps, uint8_t family,
		       const struct dirty_set *changed, struct sync_stats *stats)
{
	struct table_want nat, filter, mangle;
	struct proxier_counts cnt;
	int ret;

	table_want_init(&nat, "nat", family);
	table_want_init(&filter, "filter", family);
	table_want_init(&mangle, "mangle", family);
	proxier_build(cfg, &st->env, ps, family, changed, &nat, &filter, &cnt);
	proxier_add_canary(&filter);
	proxier_add_canary(&nat);
	proxier_add_canary(&mangle);
	log_v(2, "Reloading service iptables data family=%s numServices=%zu numEndpoints=%zu "
	      "numNATChains=%zu keptServices=%zu largeCluster=%d", fam_name(family),
	      cnt.services, cnt.endpoints, nat.n_chains, cnt.kept_services, cnt.large_cluster);

	ret = apply_table(&filter, proxier_stale_prefixes, stats);
	if (ret == 0)
		ret = apply_table(&nat, proxier_stale_prefixes, stats);
	if (ret == 0)
		stats->rules_nat += count_nat_rules(&st->chain_rules[family == AF_INET6], &nat, !changed);
	if (ret == 0 && !changed)
		ret = apply_table(&mangle, no_prefixes, stats);
	table_want_free(&nat);
	table_want_free(&filter);
	table_want_free(&mangle);
	return ret;
}

static int ipt_sync(struct mode_ctx *ctx, const struct proxy_state *ps,
		    const struct dirty_set *changed, bool full, struct sync_stats *stats)
{
	struct ipt_state *st = ctx->priv;
	const struct config *cfg = ctx->cfg;
	size_t nfam = st->v6 ? 2 : 1;
	bool large[2];
	int ret = 0;

	memset(stats, 0, sizeof(*stats));
	env_refresh(st, cfg);
	if (!st->synced || !changed)
		full = true;
	for (size_t f = 0; f < nfam; f++) {
		large[f] = proxier_large_cluster(ps, families[f]);
		/* The large-cluster switch and the node IP (LB source ranges)
		 * change chains of services that did not change. */
		if (large[f] != st->last_large[f] ||
		    !addr_equal(&st->env.node_ip[f], &st->last_node_ip[f]))
			full = true;
	}
	if (!full) {
		for (size_t f = 0; f < nfam; f++) {
			if (!canary_present(families[f])) {
				log_info("KUBE-PROXY-CANARY is gone from the %s mangle table (tables "
					 "flushed?): doing a full sync", fam_name(families[f]));
				full = true;
				break;
			}
		}
	}

	for (size_t f = 0; f < nfam && ret == 0; f++)
		ret = sync_family(st, cfg, ps, families[f], full ? NULL : changed, stats);
	if (ret < 0 && !full) {
		log_info("Partial sync failed; retrying with a full sync");
		memset(stats, 0, sizeof(*stats));
		full = true;
		ret = 0;
		for (size_t f = 0; f < nfam && ret == 0; f++)
			ret = sync_family(st, cfg, ps, families[f], NULL, stats);
	}
	if (!st->v6) {
		for (size_t i = 0; i < ps->n_ports; i++) {
			if (ps->ports[i].family == AF_INET6) {
				log_v(2, "IPv6 nat table unavailable: skipping IPv6 service %s",
				      ps->ports[i].spn);
				break;
			}
		}
	}
	stats->full = full;
	if (ret < 0) {
		st->synced = false;
		return ret;
	}
	st->synced = true;
	for (size_t f = 0; f < nfam; f++) {
		st->last_large[f] = large[f];
		st->last_node_ip[f] = st->env.node_ip[f];
	}
	return 0;
}

static int ipt_dump(const struct config *cfg, const struct proxy_state *ps, FILE *out)
{
	struct ipt_state st = { 0 };
	struct strbuf sb;
	long liberal = 0;
	int ret = 0;

	env_refresh(&st, cfg);
	st.env.random_fully = true;
	st.env.tcp_be_liberal = read_sysctl(TCP_BE_LIBERAL, &liberal) == 0 && liberal;
	nfacct_setup(&st.env, false);
	sb_init(&sb);
	proxier_render(cfg, &st.env, ps, &sb);
	if (fwrite(sb.buf, 1, sb.len, out) != sb.len || fflush(out) != 0)
		ret = -EIO;
	sb_free(&sb);
	free(st.addrs);
	return ret;
}

static int ipt_cleanup(const struct config *cfg)
{
	static const struct {
		const char *table;
		const char *const *prefixes;
	} tables[] = {
		{ "nat", cleanup_nat },
		{ "filter", cleanup_filter },
		{ "mangle", cleanup_mangle },
	};
	int first = 0;

	(void)cfg;
	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
			char *err = NULL;
			int ret = iptc_remove_chains(tables[t].table, families[f], tables[t].prefixes, &err);

			if (ret < 0) {
				log_error("Cleanup of the %s %s table failed: %s", fam_name(families[f]),
					  tables[t].table, err ? err : strerror(-ret));
				if (!first)
					first = ret;
			}
			free(err);
		}
	}
	return first;
}

static void ipt_fini(struct mode_ctx *ctx)
{
	struct ipt_state *st = ctx->priv;

	if (!st)
		return;
	free(st->addrs);
	strmap_free(&st->chain_rules[0]);
	strmap_free(&st->chain_rules[1]);
	free(st);
	ctx->priv = NULL;
}

const struct proxy_mode iptables_mode = {
	.name = "iptables",
	.probe = ipt_probe,
	.init = ipt_init,
	.sync = ipt_sync,
	.dump = ipt_dump,
	.metrics = ipt_metrics,
	.cleanup = ipt_cleanup,
	.fini = ipt_fini,
};
