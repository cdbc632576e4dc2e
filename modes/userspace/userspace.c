/* The userspace proxy mode (--proxy-mode=userspace): the classic
 * in-process proxy of Kubernetes <= 1.25, rebuilt on the daemon's one
 * epoll loop. Each service port (per IP family) gets a proxy port on the
 * node; portal rules send its traffic there; TCP and UDP are relayed to
 * the endpoints by this process. See us.h for the pieces.
 *
 * Flags: --proxy-port-range, --udp-timeout, --bind-address (a specific
 * address makes container portals DNAT to it instead of REDIRECT).
 * Environment (tuning and tests, read once):
 *   KUBE_PROXY_USERSPACE_MAX_CONNS  concurrent TCP connections / UDP
 *                                   clients per service port (10000)
 *   KUBE_PROXY_USERSPACE_SPLICE=0   relay through a buffer, not splice()
 * SCTP service ports are skipped (upstream's userspace mode had none). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/log.h"
#include "../../src/loop.h"
#include "../../src/util.h"
#include "../iptc/writer.h"
#include "../mode.h"
#include "us.h"

static const char *const our_prefixes[] = { "KUBE-PORTALS-", "KUBE-NODEPORT-", NULL };

static bool is_loopback(const struct addr *a)
{
	static const uint8_t v6lo[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->bytes[0] == 127;
	return a->family == AF_INET6 && memcmp(a->bytes, v6lo, 16) == 0;
}

static int us_probe(const struct config *cfg, char **why)
{
	struct port_range r;
	struct addr a;

	if (port_range_parse(cfg->proxy_port_range, &r, why) < 0)
		return -EINVAL;
	if (cfg->bind_address && addr_parse(cfg->bind_address, &a) == 0 && is_loopback(&a)) {
		*why = xasprintf("--bind-address %s: cannot proxy on localhost", cfg->bind_address);
		return -EINVAL;
	}
	return 0;
}

static size_t default_max_conns(void)
{
	const char *e = getenv("KUBE_PROXY_USERSPACE_MAX_CONNS");
	char *end;
	unsigned long v;

	if (e && *e) {
		v = strtoul(e, &end, 10);
		if (!*end && v > 0)
			return v;
		log_warn("Ignoring KUBE_PROXY_USERSPACE_MAX_CONNS=\"%s\": not a positive number", e);
	}
	return US_DEFAULT_MAX_CONNS;
}

/* Applies one family's portal tables if they differ from what we
 * applied last (or always when full). 0 or -errno. */
static int apply_family(struct us_ctx *ctx, uint8_t family, bool full, struct sync_stats *stats)
{
	int fi = family == AF_INET6;
	struct addr host, *hp = NULL;
	struct table_want t[2];
	int rc = 0;

	if (!ctx->bind_any && ctx->bind_ip.family == family) {
		host = ctx->bind_ip;
		hp = &host;
	} else if (us_host_ip(family, &host) == 0) {
		hp = &host;
		ctx->host_ip[fi] = host;
	}
	table_want_init(&t[0], "nat", family);
	table_want_init(&t[1], "filter", family);
	portals_build(ctx, family, hp, &t[0], &t[1]);
	for (int i = 0; i < 2; i++) {
		struct strbuf sb;
		struct apply_stats as = { 0 };
		char *err = NULL;

		sb_init(&sb);
		table_render(&t[i], &sb);
		for (size_t c = 0; stats && c < t[i].n_chains; c++) {
			if (i == 0)
				stats->rules_nat += t[i].chains[c].n_rules;
			else
				stats->rules_filter += t[i].chains[c].n_rules;
		}
		if (!full && ctx->applied[fi][i] && strcmp(ctx->applied[fi][i], sb_cstr(&sb)) == 0) {
			sb_free(&sb);
			continue;
		}
		rc = iptc_apply(&t[i], NULL, &as, &err);
		if (rc < 0) {
			log_error("Failed to write the userspace portal rules (%s table, %s): %s", t[i].table,
				  family == AF_INET6 ? "IPv6" : "IPv4", err ? err : strerror(-rc));
			free(err);
			sb_free(&sb);
			free_and_null(&ctx->applied[fi][i]);
			break;
		}
		if (stats)
			stats->chains_written += as.chains_created + as.chains_rewritten;
		free(ctx->applied[fi][i]);
		ctx->applied[fi][i] = sb_steal(&sb);
	}
	table_want_free(&t[0]);
	table_want_free(&t[1]);
	return rc;
}

static int us_init(struct mode_ctx *mc)
{
	struct us_ctx *ctx = xcalloc(1, sizeof(*ctx));
	char *err = NULL;
	int rc;

	ctx->cfg = mc->cfg;
	ctx->loop = mc->loop;
	if (port_range_parse(mc->cfg->proxy_port_range, &ctx->range, &err) < 0) {
		log_error("%s", err);
		free(err);
		free(ctx);
		return -EINVAL;
	}
	ctx->range_used = xcalloc(ctx->range.n / 8 + 1, 1);
	if (!mc->cfg->bind_address || addr_parse(mc->cfg->bind_address, &ctx->bind_ip) < 0 ||
	    addr_is_unspecified(&ctx->bind_ip))
		ctx->bind_any = true;
	ctx->max_conns = default_max_conns();
	ctx->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ctx->udp_timeout_ms = mc->cfg->udp_idle_timeout_ms ? mc->cfg->udp_idle_timeout_ms : 250;
	dq_init(&ctx->connect_q);
	dq_init(&ctx->udp_q);
	dlist_init(&ctx->conns);
	ctx->connect_timer = loop_timer_new(ctx->loop, tcp_connect_timer, ctx);
	ctx->udp_timer = loop_timer_new(ctx->loop, udp_idle_timer, ctx);
	ctx->resume_timer = loop_timer_new(ctx->loop, us_resume_paused, ctx);
	ctx->udp_buf = xmalloc(65536);
	strmap_init(&ctx->ports);
	srandom((unsigned)now_ns());
	mc->priv = ctx;
	/* Old portals point at ports of a previous process: replace them
	 * with empty chains until the first sync. */
	rc = apply_family(ctx, AF_INET, true, NULL);
	if (rc < 0)
		return rc;
	if (ctx->range.n)
		log_info("Userspace proxy ports come from %u-%u", ctx->range.lo,
			 (unsigned)(ctx->range.lo + ctx->range.n - 1));
	log_info("Userspace proxy: UDP idle timeout %llums, at most %zu connections per service port",
		 ctx->udp_timeout_ms, ctx->max_conns);
	return 0;
}

/* Fills p's configuration from pi (no socket). */
static void port_config(struct us_port *p, const struct svc_port_info *pi)
{
	const struct service *s = pi->svc;

	p->spn = xstrdup(pi->spn);
	p->key = xasprintf("%s|%u", pi->spn, pi->family);
	p->family = pi->family;
	p->proto = pi->proto;
	p->cluster_ip = pi->cluster_ip;
	p->svc_port = pi->svc_port;
	p->node_port = pi->node_port;
	p->fd = -1;
	p->ext_ips = xcalloc(s->n_external_ips + 1, sizeof(*p->ext_ips));
	for (size_t i = 0; i < s->n_external_ips; i++)
		if (s->external_ips[i].family == pi->family)
			p->ext_ips[p->n_ext_ips++] = s->external_ips[i];
	p->lb_ips = xcalloc(s->n_lb_ips + 1, sizeof(*p->lb_ips));
	for (size_t i = 0; i < s->n_lb_ips; i++)
		if (s->lb_ips[i].family == pi->family)
			p->lb_ips[p->n_lb_ips++] = s->lb_ips[i];
	p->affinity = s->affinity_client_ip;
	p->affinity_timeout = s->affinity_timeout;
}

/* Upstream's sameConfig: anything that shapes the listener or the portals. */
static bool same_config(const struct us_port *a, const struct us_port *b)
{
	return a->proto == b->proto && a->svc_port == b->svc_port && a->node_port == b->node_port &&
	       addr_equal(&a->cluster_ip, &b->cluster_ip) &&
	       addr_list_equal(a->ext_ips, a->n_ext_ips, b->ext_ips, b->n_ext_ips) &&
	       addr_list_equal(a->lb_ips, a->n_lb_ips, b->lb_ips, b->n_lb_ips) &&
	       a->affinity == b->affinity && a->affinity_timeout == b->affinity_timeout;
}

static void port_free_unopened(struct us_port *p)
{
	lb_fini(&p->lb);
	udp_table_fini(&p->udp);
	free(p->key);
	free(p->spn);
	free(p->ext_ips);
	free(p->lb_ips);
	free(p);
}

static void set_endpoints(struct us_port *p, const struct svc_port_info *pi)
{
	struct lb_ep *eps = xcalloc(pi->n_eps + 1, sizeof(*eps));
	size_t n = lb_usable_endpoints(pi, eps);

	if (lb_set(&p->lb, eps, n, true))
		log_v(2, "Endpoints of \"%s\" changed: %zu usable", p->spn, n);
	free(eps);
}

static void drop_port(struct us_ctx *ctx, struct us_port *p)
{
	strmap_del(&ctx->ports, p->key);
	/* Keep UDP ports' numbers until the portals are gone (flush list). */
	if (p->proto == PROTO_UDP && p->fd >= 0 && !ctx->stopping) {
		p->refs++;
		ctx->closed_udp = xrealloc(ctx->closed_udp, (ctx->n_closed_udp + 1) * sizeof(*ctx->closed_udp));
		ctx->closed_udp[ctx->n_closed_udp++] = p;
	}
	us_port_close(p);
}

static void flush_closed_udp(struct us_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_closed_udp; i++) {
		struct us_port *p = ctx->closed_udp[i];

		udp_flush_conntrack(p->family, p->proxy_port, p->svc_port, p->node_port, p->spn);
		us_port_put(p);
	}
	free_and_null(&ctx->closed_udp);
	ctx->n_closed_udp = 0;
}

static int us_sync(struct mode_ctx *mc, const struct proxy_state *ps, const struct dirty_set *changed,
		   bool full, struct sync_stats *stats)
{
	struct us_ctx *ctx = mc->priv;
	unsigned long long now = now_ms();
	bool have_v6 = false;
	size_t it = 0;
	const char *k;
	void *v;
	char **stale = NULL;
	size_t n_stale = 0, n_failed = 0;
	int rc;

	ctx->gen++;
	for (size_t i = 0; i < ps->n_ports; i++) {
		const struct svc_port_info *pi = &ps->ports[i];
		struct us_port *want, *have;

		if (pi->proto == PROTO_SCTP) {
			log_v(2, "Skipping \"%s\": the userspace mode proxies TCP and UDP only", pi->spn);
			continue;
		}
		if (addr_is_unspecified(&pi->cluster_ip) || !pi->cluster_ip.family)
			continue;
		want = xcalloc(1, sizeof(*want));
		port_config(want, pi);
		have = strmap_get(&ctx->ports, want->key);
		if (have && same_config(have, want)) {
			port_free_unopened(want);
			have->gen = ctx->gen;
			set_endpoints(have, pi);
			have_v6 |= have->family == AF_INET6;
			continue;
		}
		if (have) {
			log_info("Something changed for service \"%s\": stopping it", have->spn);
			drop_port(ctx, have);
		}
		want->ctx = ctx;
		want->refs = 1;
		want->gen = ctx->gen;
		lb_init(&want->lb, want->affinity, want->affinity_timeout);
		udp_table_init(&want->udp);
		if (us_port_open(ctx, want) < 0) {
			port_free_unopened(want);
			n_failed++;
			continue;
		}
		log_info("Adding new service \"%s\" at %s/%s", want->spn,
			 us_ep_str(&want->cluster_ip, want->svc_port, (char[US_EPSTRLEN]){ 0 }),
			 proto_upper(want->proto));
		set_endpoints(want, pi);
		strmap_put(&ctx->ports, want->key, want);
		have_v6 |= want->family == AF_INET6;
	}
	while (strmap_next(&ctx->ports, &it, &k, &v)) {
		struct us_port *p = v;

		if (p->gen != ctx->gen) {
			stale = xrealloc(stale, (n_stale + 1) * sizeof(*stale));
			stale[n_stale++] = xstrdup(k);
		} else {
			lb_expire(&p->lb, now);
		}
	}
	for (size_t i = 0; i < n_stale; i++) {
		struct us_port *p = strmap_get(&ctx->ports, stale[i]);

		log_info("Stopping service \"%s\"", p->spn);
		drop_port(ctx, p);
		free(stale[i]);
	}
	free(stale);

	if (stats)
		stats->full = full;
	rc = apply_family(ctx, AF_INET, full, stats);
	if (rc == 0 && (have_v6 || ctx->applied[1][0]))
		rc = apply_family(ctx, AF_INET6, full, stats);
	if (rc == 0)
		flush_closed_udp(ctx);
	/* Ports that could not be opened: have the runner try again later. */
	if (rc == 0 && n_failed) {
		log_warn("%zu service ports have no proxy port yet; will retry", n_failed);
		rc = -EADDRINUSE;
	}
	return rc;
}

static int us_dump(const struct config *cfg, const struct proxy_state *ps, FILE *out)
{
	struct port_range range;
	struct addr bind_ip = { 0 };
	bool bind_any;
	char *err = NULL;
	uint32_t next = 0;
	unsigned base = 32768;
	struct strbuf sb;
	struct table_want t[2][2];

	if (port_range_parse(cfg->proxy_port_range, &range, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		return -EINVAL;
	}
	bind_any = !cfg->bind_address || addr_parse(cfg->bind_address, &bind_ip) < 0 ||
		   addr_is_unspecified(&bind_ip);
	if (range.n)
		base = range.lo;
	else {
		FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");

		if (f) {
			if (fscanf(f, "%u", &base) != 1)
				base = 32768;
			fclose(f);
		}
	}
	sb_init(&sb);
	fprintf(out, "# userspace mode: proxy ports are chosen when the daemon runs; shown as allocated in order from %u\n",
		base);
	for (int f = 0; f < 2; f++) {
		table_want_init(&t[f][0], "nat", f ? AF_INET6 : AF_INET);
		table_want_init(&t[f][1], "filter", f ? AF_INET6 : AF_INET);
		portals_skeleton(&t[f][0], &t[f][1]);
	}
	for (size_t i = 0; i < ps->n_ports; i++) {
		const struct svc_port_info *pi = &ps->ports[i];
		struct us_port p = { 0 };
		struct addr host;
		int f = pi->family == AF_INET6;
		char eb[US_EPSTRLEN];

		if (pi->proto == PROTO_SCTP || addr_is_unspecified(&pi->cluster_ip))
			continue;
		port_config(&p, pi);
		p.proxy_port = (uint16_t)(base + next++);
		if (!bind_any && bind_ip.family == pi->family)
			host = bind_ip;
		else if (us_host_ip(pi->family, &host) < 0)
			host = (struct addr){ .family = pi->family };
		fprintf(out, "# listener \"%s\" %s %s -> proxy port %u (%zu endpoints)\n", p.spn,
			proto_upper(p.proto), us_ep_str(&p.cluster_ip, p.svc_port, eb), p.proxy_port,
			pi->n_eps);
		portals_add_port(&t[f][0], &t[f][1], &p, bind_any || bind_ip.family != pi->family,
				 &bind_ip, &host);
		free(p.key);
		free(p.spn);
		free(p.ext_ips);
		free(p.lb_ips);
	}
	for (int f = 0; f < 2; f++) {
		if (f == 1 && !t[1][0].chains[0].n_rules && !t[1][0].chains[2].n_rules)
			goto skip;
		if (f == 1)
			fputs("# IPv6\n", out);
		for (int i = 0; i < 2; i++) {
			sb_reset(&sb);
			table_render(&t[f][i], &sb);
			fputs(sb_cstr(&sb), out);
		}
skip:
		table_want_free(&t[f][0]);
		table_want_free(&t[f][1]);
	}
	sb_free(&sb);
	return ferror(out) ? -EIO : 0;
}

static int us_cleanup(const struct config *cfg)
{
	static const char *const tables[] = { "nat", "filter" };
	static const uint8_t families[] = { AF_INET, AF_INET6 };
	int rc = 0;

	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
			char *err = NULL;
			int e = iptc_remove_chains(tables[t], families[f], our_prefixes, &err);

			if (e < 0) {
				log_error("Cannot remove userspace portal chains from %s (%s): %s", tables[t],
					  families[f] == AF_INET ? "IPv4" : "IPv6", err ? err : strerror(-e));
				rc = e;
			}
			free(err);
		}
	}
	return rc;
}

static void us_fini(struct mode_ctx *mc)
{
	struct us_ctx *ctx = mc->priv;
	size_t it = 0;
	const char *k;
	void *v;
	struct us_port **all = NULL;
	size_t n = 0;

	if (!ctx)
		return;
	ctx->stopping = true;
	while (strmap_next(&ctx->ports, &it, &k, &v)) {
		all = xrealloc(all, (n + 1) * sizeof(*all));
		all[n++] = v;
	}
	for (size_t i = 0; i < n; i++)
		drop_port(ctx, all[i]);
	free(all);
	for (size_t i = 0; i < ctx->n_closed_udp; i++)
		us_port_put(ctx->closed_udp[i]);
	free(ctx->closed_udp);
	tcp_close_all(ctx);
	strmap_free(&ctx->ports);
	loop_timer_free(ctx->connect_timer);
	loop_timer_free(ctx->udp_timer);
	loop_timer_free(ctx->resume_timer);
	if (ctx->reserve_fd >= 0)
		close(ctx->reserve_fd);
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < 2; i++)
			free(ctx->applied[f][i]);
	free(ctx->range_used);
	free(ctx->udp_buf);
	free(ctx);
	mc->priv = NULL;
}

const struct proxy_mode userspace_mode = {
	.name = "userspace",
	.probe = us_probe,
	.init = us_init,
	.sync = us_sync,
	.dump = us_dump,
	.cleanup = us_cleanup,
	.fini = us_fini,
};
