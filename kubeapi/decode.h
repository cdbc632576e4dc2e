/* Decoding of Kubernetes API objects (as jansson values) into the model.
 * Shared by the API client and the manifest directory source. Every error
 * names the object (kind ns/name) and the field, e.g.
 * "Service default/web: spec.ports[1].port: 70000 is not a port (1-65535)".
 * Hostile input (wrong types, huge numbers, invalid IPs) is an error, never
 * a crash. */
#ifndef KP_DECODE_H
#define KP_DECODE_H

#include <jansson.h>
#include <stddef.h>

#include "../src/model.h"

/* v1 Service. A Service with no clusterIP gets n_cluster_ips = 0 (the
 * manifest source allocates). ExternalName and headless Services decode
 * successfully with type/headless set. default_ns fills an absent
 * metadata.namespace (NULL = "default"). 0 or -EINVAL with *err. */
int decode_service(const json_t *obj, const char *default_ns, struct service **out, char **err);

/* The IP families a Service object asks for (for ClusterIP allocation):
 * spec.ipFamilies in order as AF_INET/AF_INET6 (n_fams 0 when absent), and
 * spec.ipFamilyPolicy as dual = 0 (SingleStack/absent), 1 (PreferDualStack)
 * or 2 (RequireDualStack). Meant for objects decode_service accepted. */
void decode_service_families(const json_t *obj, int fams[2], size_t *n_fams, int *dual);

/* discovery.k8s.io/v1 EndpointSlice. addressType FQDN decodes with
 * family 0 (callers ignore it). */
int decode_endpoint_slice(const json_t *obj, const char *default_ns,
			  struct endpoint_slice **out, char **err);

/* v1 Endpoints: converted to one slice per (subset, family), named
 * "<name>.endpoints-<i>" and labelled with the Endpoints' name as service. */
int decode_endpoints(const json_t *obj, const char *default_ns,
		     struct endpoint_slice ***out, size_t *n_out, char **err);

/* v1 Node: name, topology zone label, spec.podCIDR(s). */
int decode_node(const json_t *obj, struct node_info **out, char **err);

/* "ns/name" of any object (metadata), for messages; caller frees. */
char *object_ref(const json_t *obj, const char *default_ns);

#endif
