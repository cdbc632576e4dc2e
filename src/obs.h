/* The daemon's operational surface in one place: the healthz server
 * (--healthz-bind-address: /healthz, /livez), the metrics server
 * (--metrics-bind-address: /metrics, /proxyMode, /configz, /healthz),
 * health-check node ports, stale UDP conntrack cleanup, and at start the
 * conntrack sysctls and --oom-score-adj. */
#ifndef KP_OBS_H
#define KP_OBS_H

#include <stdbool.h>

#include "config.h"
#include "runner.h"
#include "store.h"

struct loop;
struct obs;

/* Applies the conntrack sysctls and the OOM score, opens the two servers
 * (an empty bind address or port 0 disables one) and the conntrack
 * cleaner. r and st are borrowed and must outlive the obs. mode_name is
 * what /proxyMode says. NULL with *err (caller frees) when a server cannot
 * listen or a sysctl cannot be written. */
struct obs *obs_start(struct loop *l, const struct config *cfg, const char *mode_name,
		      const struct runner *r, const struct store *st, char **err);

/* Call from the runner's synced callback, after every sync attempt: ok and
 * stats as the runner gives them; queued_at is the runner's
 * last_queued_time as it was just before this sync (wall clock of the
 * oldest change it applied, 0 = none). Records the latency histograms;
 * after a success also updates health-check node ports and deletes stale
 * UDP conntrack entries for ps. */
void obs_on_sync(struct obs *o, const struct proxy_state *ps, bool ok,
		 const struct runner_stats *stats, double queued_at);

/* /metrics also shows what fn appends (the proxy mode's own families,
 * struct proxy_mode's metrics hook), called with ctx at each scrape. */
struct mode_ctx;
void obs_set_mode_metrics(struct obs *o, void (*fn)(struct mode_ctx *ctx, struct strbuf *out),
			  struct mode_ctx *ctx);

/* Our Node changed (NULL: none known): /healthz answers 503 with
 * nodeEligible false while it is terminating. */
struct node_info;
void obs_set_node(struct obs *o, const struct node_info *node);

/* The proxy's health as /healthz reports it (ignoring node eligibility). */
bool obs_healthy(const struct obs *o);

/* Closes everything. NULL is fine. */
void obs_stop(struct obs *o);

#endif
