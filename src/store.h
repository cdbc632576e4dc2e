/* The store: current Services, EndpointSlices and the node, with change
 * tracking per service. Sources feed it; the runner asks it for a snapshot
 * of the desired state (struct proxy_state) plus the set of services that
 * changed since the previous snapshot. */
#ifndef KP_STORE_H
#define KP_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

struct store;

/* One backend of one service port, derived from the slices. */
struct svc_endpoint {
	struct addr ip;
	uint16_t port;            /* from the slice port with the service port's name */
	bool ready, serving, terminating;
	bool is_local;            /* nodeName equals our node name */
	bool has_hints;           /* the slice gives it zone hints */
	bool zone_hinted;         /* ... and they name our node's zone */
	const char *zone;         /* borrowed, may be NULL */
};

/* One (service, service port, IP family): the unit every mode programs. */
struct svc_port_info {
	char *key;                /* "ns/name" of the service */
	char *spn;                /* upstream ServicePortName: "ns/name:port" or "ns/name" */
	const struct service *svc;        /* borrowed from the store */
	const struct service_port *port;  /* borrowed from the store */
	uint8_t family;
	enum l4_proto proto;      /* copies of port->proto/port/node_port, valid */
	uint16_t svc_port;        /* even after the store changed (see below) */
	uint16_t node_port;
	struct addr cluster_ip;   /* of this family */
	struct svc_endpoint *eps; /* sorted by ip, then port; duplicates removed */
	size_t n_eps;
	/* Topology-aware routing applies (upstream's canUseTopology): our node
	 * has a zone, every ready endpoint has zone hints and at least one is
	 * hinted for our zone. Cluster-wide traffic then goes only to the
	 * ready endpoints with zone_hinted. */
	bool topology;
};

/* Desired state at one instant. Borrowed pointers (svc, port, eps[].zone,
 * node) stay valid until the next store mutation; the runner syncs before
 * handing control back to sources. Whoever keeps an older snapshot (e.g. to
 * diff UDP endpoints for conntrack cleanup) may only use its owned fields:
 * key, spn, family, proto, svc_port, node_port, cluster_ip and eps[] except
 * eps[].zone. */
struct proxy_state {
	struct svc_port_info *ports;   /* sorted by spn, then family */
	size_t n_ports;
	const struct node_info *node;  /* may be NULL */
	size_t n_services;             /* distinct services (for STATUS=) */
	size_t n_endpoints;            /* sum of n_eps */
};

/* Services ("ns/name") whose rules may differ from the last sync. */
struct dirty_set {
	char **keys;              /* sorted */
	size_t n;
};

/* node_name may be NULL (no endpoint is local then). */
struct store *store_new(const char *node_name);
void store_free(struct store *st);

/* Upserts take ownership of the object. They mark the service dirty only
 * when something changed. */
void store_upsert_service(struct store *st, struct service *svc);
void store_delete_service(struct store *st, const char *ns, const char *name);
void store_upsert_slice(struct store *st, struct endpoint_slice *slice);
void store_delete_slice(struct store *st, const char *ns, const char *name);
void store_set_node(struct store *st, struct node_info *node);
/* Our Node as last set (NULL: none). */
const struct node_info *store_node(const struct store *st);

const struct service *store_get_service(const struct store *st, const char *ns, const char *name);
size_t store_n_services(const struct store *st);
size_t store_n_slices(const struct store *st);

bool store_has_changes(const struct store *st);
/* Counts of service/endpoint changes since the store was created (metrics). */
unsigned long long store_service_changes(const struct store *st);
unsigned long long store_endpoint_changes(const struct store *st);

/* Builds the desired state. If dirty is not NULL it receives the services
 * changed since the previous call, and change tracking restarts. */
struct proxy_state *store_snapshot(struct store *st, struct dirty_set *dirty);
void proxy_state_free(struct proxy_state *ps);
bool dirty_has(const struct dirty_set *d, const char *key);
/* The endpoints traffic may go to, as upstream's CategorizeEndpoints picks
 * them: the ready ones (only node-local ones if local_only; only those
 * hinted for our zone if pi->topology and not local_only), or, when none
 * of those is ready, the serving+terminating ones. Writes their indexes into idx (room for pi->n_eps) and returns how
 * many. */
size_t svc_usable_endpoints(const struct svc_port_info *pi, bool local_only, size_t *idx);
void dirty_set_clear(struct dirty_set *d);

#endif
