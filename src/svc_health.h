/* Health-check node ports of externalTrafficPolicy Local services: one HTTP
 * listener per healthCheckNodePort, answering 200 while the node has ready
 * local endpoints for the service (and the proxy is healthy), 503
 * otherwise, with upstream's JSON body. Cloud load balancers probe it to
 * send traffic only to nodes that can serve it locally. */
#ifndef KP_SVC_HEALTH_H
#define KP_SVC_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "store.h"

struct loop;
struct svc_health;

/* Tells whether the proxy itself is healthy (upstream's
 * serviceProxyHealthy); NULL = always. */
typedef bool (*svc_health_proxy_fn)(void *arg);

/* Listeners bind each of ips (copied; n_ips 0 = the wildcard address, which
 * also takes IPv4 when IPv6 exists). Never NULL. */
struct svc_health *svc_health_new(struct loop *l, const struct addr *ips, size_t n_ips,
				  svc_health_proxy_fn proxy_healthy, void *arg);
/* Opens, keeps or closes listeners to match the services in ps, and sets
 * their local endpoint counts (distinct ready local endpoint IPs). A port
 * that cannot be opened is logged and retried at the next call. */
void svc_health_sync(struct svc_health *sh, const struct proxy_state *ps);
/* Number of services with open listeners. */
size_t svc_health_count(const struct svc_health *sh);
/* Local endpoint count served for "ns/name"; -1 if it has no listener. */
int svc_health_local_endpoints(const struct svc_health *sh, const char *key);
/* Closes every listener and frees sh (NULL is fine). */
void svc_health_free(struct svc_health *sh);

#endif
