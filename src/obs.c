#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conntrack.h"
#include "healthz.h"
#include "hostaddr.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "model.h"
#include "obs.h"
#include "svc_health.h"
#include "util.h"
#include "yamljson.h"

struct obs {
	struct loop *loop;
	const struct runner_stats *stats;
	const struct store *store;
	char *mode_name;
	char *configz;             /* JSON, rendered once */
	struct healthz *hz;
	struct metrics *metrics;
	struct http_server *healthz_srv, *metrics_srv;
	struct svc_health *svc_health;
	struct conntrack_cleaner *ct;
	void (*mode_metrics)(struct mode_ctx *ctx, struct strbuf *out);
	struct mode_ctx *mode_ctx;
};

static const struct http_limits obs_limits = {
	.max_conns = 64,
	.max_head = 8192,
	.head_timeout_ms = 10000,
	.idle_timeout_ms = 30000,
	.write_timeout_ms = 10000,
};

/* upstream's configz: {"kubeproxy.config.k8s.io": <the configuration>}. */
static char *render_configz(const struct config *cfg)
{
	char *yaml = config_render(cfg), *err = NULL, *out;
	json_t *docs = yaml ? yaml_to_json(yaml, strlen(yaml), &err) : NULL;
	json_t *top = json_object();

	if (docs && json_array_size(docs) > 0)
		json_object_set(top, "kubeproxy.config.k8s.io", json_array_get(docs, 0));
	else
		json_object_set_new(top, "kubeproxy.config.k8s.io", json_object());
	if (err) {
		log_warn("configz: cannot convert the configuration: %s", err);
		free(err);
	}
	out = json_dumps(top, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(top);
	json_decref(docs);
	free(yaml);
	return out ? out : xstrdup("{}");
}

static void not_found(struct http_response *resp)
{
	resp->status = 404;
	resp->nosniff = true;
	sb_puts(&resp->body, "404 page not found\n");
}

static void metrics_handle(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct obs *o = arg;

	if (strcmp(req->path, "/metrics") == 0) {
		struct metrics_inputs in = {
			.service_changes = store_service_changes(o->store),
			.endpoint_changes = store_endpoint_changes(o->store),
			.last_queued_time = o->stats->last_queued_time,
		};

		healthz_counts(o->hz, in.healthz, in.livez);
		metrics_render(o->metrics, &in, &resp->body);
		if (o->mode_metrics)
			o->mode_metrics(o->mode_ctx, &resp->body);
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (strcmp(req->path, "/proxyMode") == 0) {
		resp->nosniff = true;
		sb_puts(&resp->body, o->mode_name);
	} else if (strcmp(req->path, "/configz") == 0) {
		resp->content_type = "application/json";
		sb_puts(&resp->body, o->configz);
	} else if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/healthz/ping") == 0) {
		/* The generic apiserver healthz with its one "ping" check. */
		resp->nosniff = true;
		if (strstr(req->query, "verbose") && req->path[8] == 0)
			sb_puts(&resp->body, "[+]ping ok\nhealthz check passed\n");
		else
			sb_puts(&resp->body, "ok");
	} else {
		not_found(resp);
	}
}

/* Opens one server; 1 = disabled by its address, 0 = running, -errno. */
static int open_server(struct obs *o, const char *flag, const char *addr, uint16_t def_port,
		       http_handler h, void *harg, struct http_server **out, char **err)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int r = http_parse_bind(flag, addr, def_port, &ss, &len, err), fd;

	if (r != 0)
		return r;
	fd = http_listen((struct sockaddr *)&ss, len);
	if (fd < 0) {
		*err = xasprintf("%s: cannot listen on %s: %s", flag, addr, strerror(-fd));
		return fd;
	}
	*out = http_server_new(o->loop, flag + 2, fd, &obs_limits, h, harg);
	log_info("Serving %s on %s", flag + 2, addr);
	return 0;
}

static bool proxy_healthy(void *arg)
{
	return obs_healthy(arg);
}

/* Node addresses for health-check listeners: every local address inside
 * --nodeport-addresses, none (= wildcard) when it is unset. */
static size_t hc_addresses(const struct config *cfg, struct addr **out)
{
	struct addr *all;
	long n_all;
	size_t n = 0;

	*out = NULL;
	if (!cfg->n_nodeport_addresses || (n_all = host_addresses(&all)) < 0)
		return 0;
	for (long i = 0; i < n_all; i++) {
		for (size_t k = 0; k < cfg->n_nodeport_addresses; k++) {
			if (cidr_contains(&cfg->nodeport_addresses[k], &all[i])) {
				all[n++] = all[i];
				break;
			}
		}
	}
	if (n)
		*out = all;
	else
		free(all);
	if (!n)
		log_warn("No local address matches --nodeport-addresses: health check ports listen on all addresses");
	return n;
}

struct obs *obs_start(struct loop *l, const struct config *cfg, const char *mode_name,
		      const struct runner *r, const struct store *st, char **err)
{
	struct obs *o = xcalloc(1, sizeof(*o));
	bool ipvs = mode_name && strcmp(mode_name, "ipvs") == 0;
	unsigned period = ipvs && cfg->ipvs_sync_period_ms ? cfg->ipvs_sync_period_ms : cfg->sync_period_ms;
	struct addr *ips;
	size_t n_ips;
	char *cterr = NULL;
	int ret;

	o->loop = l;
	o->stats = runner_get_stats(r);
	o->store = st;
	o->mode_name = xstrdup(mode_name ? mode_name : "");

	if (cfg->oom_score_adj_set || cfg->oom_score_adj) {
		ret = set_oom_score_adj(cfg->oom_score_adj, NULL);
		if (ret < 0)
			log_v(2, "Failed to apply OOMScore %d: %s", cfg->oom_score_adj, strerror(-ret));
	}
	if (conntrack_set_sysctls(cfg, NULL, err) < 0)
		goto fail;

	o->configz = render_configz(cfg);
	/* Upstream: unhealthy when a queued change waits 2x the sync period. */
	o->hz = healthz_new(o->stats, 2ULL * (period ? period : 30000));
	o->metrics = metrics_new(mode_name);
	if (open_server(o, "--healthz-bind-address", cfg->healthz_bind_address, 10256,
			healthz_handle, o->hz, &o->healthz_srv, err) < 0)
		goto fail;
	if (open_server(o, "--metrics-bind-address", cfg->metrics_bind_address, 10249,
			metrics_handle, o, &o->metrics_srv, err) < 0)
		goto fail;

	n_ips = hc_addresses(cfg, &ips);
	o->svc_health = svc_health_new(l, ips, n_ips, proxy_healthy, o);
	free(ips);

	/* In userspace mode the kernel never DNATs to endpoints: a UDP flow's
	 * reply source is the daemon itself, so this cleaner would only cut
	 * live relays (the mode clears its own entries when a port goes). */
	if (mode_name && strcmp(mode_name, "userspace") == 0)
		return o;
	o->ct = conntrack_cleaner_new(&cterr);
	if (!o->ct) {
		log_warn("Stale UDP conntrack entries will not be cleaned up: %s", cterr);
		free(cterr);
	}
	return o;
fail:
	obs_stop(o);
	return NULL;
}

void obs_set_node(struct obs *o, const struct node_info *node)
{
	bool eligible = !(node && node->terminating);

	if (eligible != healthz_node_eligible(o->hz))
		log_info(eligible ? "Node %s is no longer being removed: /healthz reports it eligible again" :
				    "Node %s is being removed (deletionTimestamp or ToBeDeletedByClusterAutoscaler "
				    "taint): /healthz answers 503 so that load balancers drain it",
			 node && node->name ? node->name : "(unknown)");
	healthz_set_node_eligible(o->hz, eligible);
}

void obs_set_mode_metrics(struct obs *o, void (*fn)(struct mode_ctx *ctx, struct strbuf *out),
			  struct mode_ctx *ctx)
{
	o->mode_metrics = fn;
	o->mode_ctx = ctx;
}

bool obs_healthy(const struct obs *o)
{
	return healthz_is_healthy(o->hz, wall_time());
}

void obs_on_sync(struct obs *o, const struct proxy_state *ps, bool ok,
		 const struct runner_stats *stats, double queued_at)
{
	unsigned long internal = 0, external = 0;

	if (!o)
		return;
	metrics_record_sync(o->metrics, stats->last_duration_s, stats->last_full, ok, wall_time(),
			    queued_at, ok ? &stats->last : NULL);
	if (!ok || !ps)
		return;
	for (size_t i = 0; i < ps->n_ports; i++) {
		const struct svc_port_info *p = &ps->ports[i];
		bool local = false;

		if (!p->svc || (!p->svc->itp_local && !p->svc->etp_local))
			continue;
		for (size_t k = 0; k < p->n_eps && !local; k++)
			local = p->eps[k].is_local && p->eps[k].ready;
		if (local)
			continue;
		if (p->svc->itp_local)
			internal++;
		if (p->svc->etp_local)
			external++;
	}
	metrics_set_no_local_endpoints(o->metrics, internal, external);
	svc_health_sync(o->svc_health, ps);
	if (o->ct)
		conntrack_cleaner_sync(o->ct, ps);
}

void obs_stop(struct obs *o)
{
	if (!o)
		return;
	http_server_free(o->healthz_srv);
	http_server_free(o->metrics_srv);
	svc_health_free(o->svc_health);
	conntrack_cleaner_free(o->ct);
	metrics_free(o->metrics);
	healthz_free(o->hz);
	free(o->configz);
	free(o->mode_name);
	free(o);
}
