/* Prometheus text exposition (format 0.0.4) of upstream's kubeproxy_*
 * metrics and the standard process_* metrics. The numbers live here
 * (histograms, counters recorded after each sync) or are sampled at render
 * time from the store, the healthz server and /proc. */
#ifndef KP_METRICS_H
#define KP_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct metrics;
struct sync_stats;

/* Values owned by other modules, sampled for one rendering. */
struct metrics_inputs {
	unsigned long long service_changes;   /* store_service_changes */
	unsigned long long endpoint_changes;  /* store_endpoint_changes */
	unsigned long long healthz[2];        /* /healthz answers: [0] 200, [1] 503 */
	unsigned long long livez[2];
	double last_queued_time;              /* runner_stats.last_queued_time */
};

/* mode_name decides the mode-specific families as upstream registers them
 * (iptables: full/partial histograms, iptables_total, restore failures;
 * ipvs: restore failures). */
struct metrics *metrics_new(const char *mode_name);
/* Frees m (NULL is fine). */
void metrics_free(struct metrics *m);

/* One sync attempt: seconds it took, full or partial, success. now is the
 * wall clock at its end; queued_at the wall clock when the oldest change it
 * applied was queued (0 = none: no network programming sample). ss may be
 * NULL (no rule counts). */
void metrics_record_sync(struct metrics *m, double seconds, bool full, bool ok, double now,
			 double queued_at, const struct sync_stats *ss);
/* Services with a Local traffic policy and no local endpoints. */
void metrics_set_no_local_endpoints(struct metrics *m, unsigned long internal, unsigned long external);

/* Appends the whole exposition to out. in may be NULL (zeros). */
void metrics_render(struct metrics *m, const struct metrics_inputs *in, struct strbuf *out);

/* Appends one label-less counter family (HELP, TYPE, sample) to out in
 * the same exposition as metrics_render: for a mode's own counters. */
void metrics_counter(struct strbuf *out, const char *name, const char *help, double v);

/* Formats v as Go's strconv.FormatFloat(v, 'g', -1, 64) does (what the
 * Prometheus Go client writes): shortest round-trip digits, exponent form
 * when the decimal exponent is below -4 or at least 6 ("1.7e+09"), and
 * "+Inf", "-Inf", "NaN". buf: at least 32 bytes. Returns buf. */
char *metrics_fmt_float(double v, char *buf, size_t n);

#endif
