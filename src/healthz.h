/* The proxy's own health, as upstream's healthz server defines it: healthy
 * unless a queued change has waited longer than the timeout (2x the sync
 * period) without a successful sync. Serves /healthz and /livez bodies in
 * upstream's JSON shape. */
#ifndef KP_HEALTHZ_H
#define KP_HEALTHZ_H

#include <stdbool.h>
#include <time.h>

#include "http.h"
#include "runner.h"

struct healthz;

/* stats is borrowed and read at every request (runner_get_stats gives a
 * pointer that lives as long as the runner). timeout_ms: 2x sync period. */
struct healthz *healthz_new(const struct runner_stats *stats, unsigned long long timeout_ms);
/* Frees h (NULL is fine). */
void healthz_free(struct healthz *h);

/* upstream's nodeEligible (false when the node is being deleted). */
void healthz_set_node_eligible(struct healthz *h, bool eligible);
bool healthz_node_eligible(const struct healthz *h);
/* The proxy's health at wall-clock time now (seconds), ignoring the node. */
bool healthz_is_healthy(const struct healthz *h, double now);

/* Answers /healthz and /livez; anything else is 404. Counts the codes. */
void healthz_handle(const struct http_request *req, struct http_response *resp, void *h);

/* Responses given so far, for kubeproxy_proxy_healthz_total and
 * kubeproxy_proxy_livez_total: [0] = 200, [1] = 503. */
void healthz_counts(const struct healthz *h, unsigned long long healthz[2], unsigned long long livez[2]);

/* Formats a wall-clock time like Go's time.Time.String() ("2006-01-02
 * 15:04:05.999999999 -0700 MST m=+1.000000000"); t == 0 gives Go's zero
 * time; mono < 0 leaves the monotonic part out. Returns buf. */
char *healthz_go_time(const struct timespec *t, double mono, char *buf, size_t n);

#endif
