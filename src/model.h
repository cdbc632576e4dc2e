/* The Kubernetes objects kube-proxy cares about, reduced to what the data
 * path needs. Sources (kubeapi/, src/manifests.c) produce them; the store
 * owns them; modes see them only through struct proxy_state (store.h). */
#ifndef KP_MODEL_H
#define KP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

enum l4_proto { PROTO_TCP, PROTO_UDP, PROTO_SCTP };

enum svc_type { SVC_CLUSTER_IP, SVC_NODE_PORT, SVC_LOAD_BALANCER, SVC_EXTERNAL_NAME };

/* "tcp"/"udp"/"sctp" (lower case, as in chain hashes and iptables). */
const char *proto_lower(enum l4_proto p);
/* "TCP"/"UDP"/"SCTP" (as in the API). */
const char *proto_upper(enum l4_proto p);
/* Parses "TCP"/"UDP"/"SCTP". 0 or -EINVAL. */
int proto_parse(const char *s, enum l4_proto *out);

struct service_port {
	char *name;               /* "" when unnamed */
	enum l4_proto proto;
	uint16_t port;
	uint16_t node_port;       /* 0 = none */
};

struct service {
	char *ns;
	char *name;
	enum svc_type type;
	bool headless;            /* clusterIP "None" */
	struct addr cluster_ips[2];  /* clusterIPs, primary first */
	size_t n_cluster_ips;
	struct addr *external_ips;
	size_t n_external_ips;
	struct addr *lb_ips;      /* status.loadBalancer.ingress[].ip (not ipMode Proxy) */
	size_t n_lb_ips;
	struct cidr *lb_source_ranges;
	size_t n_lb_source_ranges;
	bool affinity_client_ip;
	uint32_t affinity_timeout;   /* seconds, default 10800 */
	bool etp_local;              /* externalTrafficPolicy Local */
	bool itp_local;              /* internalTrafficPolicy Local */
	uint16_t health_check_node_port;
	struct service_port *ports;
	size_t n_ports;
};

struct endpoint {
	struct addr addr;         /* addresses[0] */
	bool ready;               /* absent = true */
	bool serving;             /* absent = ready */
	bool terminating;         /* absent = false */
	char *node_name;          /* NULL if absent */
	char *zone;               /* NULL if absent */
	char **hint_zones;        /* hints.forZones[].name */
	size_t n_hint_zones;
};

struct slice_port {
	char *name;               /* "" when unnamed */
	enum l4_proto proto;
	uint16_t port;
};

struct endpoint_slice {
	char *ns;
	char *name;
	char *service_name;       /* label kubernetes.io/service-name */
	uint8_t family;           /* AF_INET / AF_INET6 */
	struct endpoint *endpoints;
	size_t n_endpoints;
	struct slice_port *ports;
	size_t n_ports;
};

struct node_info {
	char *name;
	char *zone;               /* topology.kubernetes.io/zone label */
	struct cidr pod_cidrs[2];
	size_t n_pod_cidrs;
	/* Being removed: metadata.deletionTimestamp is set, or the cluster
	 * autoscaler's ToBeDeletedByClusterAutoscaler taint is on. /healthz
	 * then answers 503 (nodeEligible false) so load balancers drain us. */
	bool terminating;
};

void service_free(struct service *s);
void endpoint_slice_free(struct endpoint_slice *s);
void node_info_free(struct node_info *n);
/* Same zone and pod CIDRs: nothing the rules depend on differs. */
bool node_info_rules_equal(const struct node_info *a, const struct node_info *b);
/* Deep equality (used to decide whether an update changes anything). */
bool service_equal(const struct service *a, const struct service *b);
bool endpoint_slice_equal(const struct endpoint_slice *a, const struct endpoint_slice *b);
struct service *service_dup(const struct service *s);

#endif
