/* Decoding of API objects: the real kubectl outputs and watch-stream
 * objects, richer objects of our own, and a table of hostile inputs whose
 * errors (or warnings) must name the right field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kubeapi/decode.h"
#include "src/log.h"
#include "src/util.h"
#include "src/yamljson.h"

static char logpath[] = "/tmp/kp-test-decode-log.XXXXXX";

/* First document of a data file (YAML or JSON). */
static json_t *load_obj(const char *name)
{
	char *path = xasprintf("%s/objects/%s", TEST_DATA_DIR, name);
	char *buf = NULL, *err = NULL;
	size_t len;
	json_t *docs, *obj;

	assert_int_equal(read_file(path, &buf, &len), 0);
	docs = yaml_to_json(buf, len, &err);
	if (!docs)
		fail_msg("%s: %s", path, err);
	obj = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	free(buf);
	free(path);
	return obj;
}

/* Object of line n (0-based) of the watch-stream sample. */
static json_t *watch_obj(size_t n)
{
	char *path = xasprintf("%s/objects/watch-stream-sample.ndjson", TEST_DATA_DIR);
	char *buf = NULL, *line, *save = NULL;
	size_t len, i = 0;
	json_t *ev = NULL, *obj;

	assert_int_equal(read_file(path, &buf, &len), 0);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++)
		if (i == n) {
			ev = json_loads(line, 0, NULL);
			break;
		}
	assert_non_null(ev);
	obj = json_incref(json_object_get(ev, "object"));
	json_decref(ev);
	free(buf);
	free(path);
	return obj;
}

static char *log_text(void)
{
	char *buf = NULL;
	size_t len;

	assert_int_equal(read_file(logpath, &buf, &len), 0);
	return buf;
}

static void log_reset(void)
{
	assert_int_equal(truncate(logpath, 0), 0);
}

static void assert_logged(const char *needle)
{
	char *t = log_text();

	if (!strstr(t, needle))
		fail_msg("log lacks \"%s\":\n%s", needle, t);
	free(t);
}

static void assert_addr(const struct addr *a, const char *want)
{
	char buf[ADDR_STRLEN];

	assert_string_equal(addr_str(a, buf), want);
}

static void test_kubectl_clusterip(void **state)
{
	json_t *o = load_obj("service-clusterip-kubectl.json");
	struct service *s;
	char *err = NULL;

	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	assert_null(err);
	assert_string_equal(s->ns, "default");
	assert_string_equal(s->name, "web");
	assert_int_equal(s->type, SVC_CLUSTER_IP);
	assert_false(s->headless);
	assert_int_equal(s->n_cluster_ips, 0);
	assert_int_equal(s->n_ports, 2);
	assert_string_equal(s->ports[0].name, "80-8080");
	assert_int_equal(s->ports[0].port, 80);
	assert_int_equal(s->ports[0].proto, PROTO_TCP);
	assert_int_equal(s->ports[0].node_port, 0);
	assert_string_equal(s->ports[1].name, "443-8443");
	assert_int_equal(s->ports[1].port, 443);
	assert_false(s->affinity_client_ip);
	assert_int_equal(s->affinity_timeout, 10800);
	assert_false(s->etp_local);
	assert_false(s->itp_local);
	assert_int_equal(s->n_lb_ips, 0);
	service_free(s);
	/* default_ns applies only when metadata.namespace is absent. */
	assert_int_equal(decode_service(o, "shop", &s, &err), 0);
	assert_string_equal(s->ns, "shop");
	service_free(s);
	json_decref(o);
}

static void test_kubectl_others(void **state)
{
	json_t *o = load_obj("service-externalname-kubectl.json");
	struct service *s;
	char *err = NULL;

	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	assert_int_equal(s->type, SVC_EXTERNAL_NAME);
	assert_string_equal(s->name, "ext");
	assert_int_equal(s->n_ports, 0);
	service_free(s);
	json_decref(o);

	o = load_obj("service-loadbalancer-kubectl.yaml");
	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	assert_int_equal(s->type, SVC_LOAD_BALANCER);
	assert_string_equal(s->name, "lb");
	assert_int_equal(s->n_ports, 1);
	assert_int_equal(s->ports[0].port, 443);
	assert_int_equal(s->n_lb_ips, 0);
	service_free(s);
	json_decref(o);

	o = load_obj("service-nodeport-kubectl.json");
	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	assert_int_equal(s->type, SVC_NODE_PORT);
	assert_string_equal(s->name, "shop");
	assert_int_equal(s->ports[0].port, 80);
	assert_int_equal(s->ports[0].node_port, 30080);
	service_free(s);
	json_decref(o);
}

static void test_watch_objects(void **state)
{
	json_t *o = watch_obj(0);
	struct service *s;
	struct endpoint_slice *es;
	char *err = NULL;

	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	assert_string_equal(s->ns, "default");
	assert_string_equal(s->name, "web");
	assert_int_equal(s->n_cluster_ips, 1);
	assert_addr(&s->cluster_ips[0], "10.0.0.17");
	assert_string_equal(s->ports[0].name, "http");
	assert_int_equal(s->ports[0].port, 80);
	assert_false(s->itp_local);
	service_free(s);
	json_decref(o);

	o = watch_obj(1);
	assert_int_equal(decode_endpoint_slice(o, NULL, &es, &err), 0);
	assert_string_equal(es->name, "web-7xk2p");
	assert_string_equal(es->service_name, "web");
	assert_int_equal(es->family, AF_INET);
	assert_int_equal(es->n_endpoints, 2);
	assert_addr(&es->endpoints[0].addr, "10.244.1.5");
	assert_true(es->endpoints[0].ready);
	assert_true(es->endpoints[0].serving);
	assert_false(es->endpoints[0].terminating);
	assert_string_equal(es->endpoints[0].node_name, "node-1");
	assert_string_equal(es->endpoints[0].zone, "zone-a");
	assert_addr(&es->endpoints[1].addr, "10.244.2.9");
	assert_false(es->endpoints[1].ready);
	assert_true(es->endpoints[1].serving);
	assert_true(es->endpoints[1].terminating);
	assert_string_equal(es->endpoints[1].node_name, "node-2");
	assert_null(es->endpoints[1].zone);
	assert_int_equal(es->n_ports, 1);
	assert_string_equal(es->ports[0].name, "http");
	assert_int_equal(es->ports[0].port, 8080);
	assert_int_equal(es->ports[0].proto, PROTO_TCP);
	endpoint_slice_free(es);
	json_decref(o);

	/* A Service is not a slice, and the other way round. */
	o = watch_obj(0);
	assert_int_equal(decode_endpoint_slice(o, NULL, &es, &err), -EINVAL);
	assert_non_null(strstr(err, "EndpointSlice default/web: kind: \"Service\" is not EndpointSlice"));
	assert_null(es);
	free(err);
	json_decref(o);
	o = watch_obj(1);
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "kind"));
	free(err);
	json_decref(o);
}

static void test_service_full(void **state)
{
	json_t *o = load_obj("service-full.json");
	struct service *s;
	char buf[CIDR_STRLEN];
	char *err = NULL;
	int fams[2];
	size_t nf;
	int dual;

	log_reset();
	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	assert_string_equal(s->ns, "shop");
	assert_int_equal(s->type, SVC_LOAD_BALANCER);
	assert_int_equal(s->n_cluster_ips, 2);
	assert_addr(&s->cluster_ips[0], "10.0.0.20");
	assert_addr(&s->cluster_ips[1], "fd00::20");
	assert_int_equal(s->n_ports, 3);
	assert_int_equal(s->ports[1].proto, PROTO_UDP);
	assert_int_equal(s->ports[1].node_port, 30053);
	assert_int_equal(s->ports[2].proto, PROTO_SCTP);
	assert_int_equal(s->n_external_ips, 2);
	assert_addr(&s->external_ips[0], "192.0.2.10");
	assert_addr(&s->external_ips[1], "2001:db8::10");
	assert_logged("Service shop/full: spec.externalIPs[2]: \"not-an-ip\" is not an IP address; ignored");
	/* Proxy-mode and hostname-only ingress entries are not VIPs. */
	assert_int_equal(s->n_lb_ips, 2);
	assert_addr(&s->lb_ips[0], "198.51.100.1");
	assert_addr(&s->lb_ips[1], "198.51.100.3");
	assert_true(s->affinity_client_ip);
	assert_int_equal(s->affinity_timeout, 300);
	assert_true(s->etp_local);
	assert_true(s->itp_local);
	assert_int_equal(s->health_check_node_port, 32000);
	/* Trimmed and host bits cleared, as upstream; the bad one skipped. */
	assert_int_equal(s->n_lb_source_ranges, 2);
	assert_string_equal(cidr_str(&s->lb_source_ranges[0], buf), "203.0.113.0/24");
	assert_string_equal(cidr_str(&s->lb_source_ranges[1], buf), "2001:db8::/32");
	assert_logged("spec.loadBalancerSourceRanges[2]: \"bogus/99\" is not a CIDR");
	service_free(s);
	decode_service_families(o, fams, &nf, &dual);
	assert_int_equal(nf, 2);
	assert_int_equal(fams[0], AF_INET);
	assert_int_equal(fams[1], AF_INET6);
	assert_int_equal(dual, 2);
	json_decref(o);
}

static void test_slice_full(void **state)
{
	json_t *o = load_obj("endpointslice-full.yaml");
	struct endpoint_slice *es;
	char *err = NULL;

	log_reset();
	assert_int_equal(decode_endpoint_slice(o, NULL, &es, &err), 0);
	assert_string_equal(es->ns, "shop");
	assert_string_equal(es->service_name, "full");
	assert_int_equal(es->family, AF_INET6);
	/* The IPv4 address in an IPv6 slice is dropped, the rest kept. */
	assert_int_equal(es->n_endpoints, 3);
	assert_logged("EndpointSlice shop/full-abc: endpoints[2].addresses[0]: \"10.1.2.3\" is not an IPv6 address");
	assert_addr(&es->endpoints[0].addr, "fd00:10::1");
	assert_int_equal(es->endpoints[0].n_hint_zones, 2);
	assert_string_equal(es->endpoints[0].hint_zones[1], "zone-b");
	assert_addr(&es->endpoints[1].addr, "fd00:10::2");
	assert_false(es->endpoints[1].ready);
	assert_false(es->endpoints[1].serving);     /* absent serving = ready */
	assert_false(es->endpoints[1].terminating);
	assert_null(es->endpoints[1].node_name);
	assert_true(es->endpoints[2].serving);
	assert_true(es->endpoints[2].terminating);
	/* null port ("all ports") skipped silently, 70000 with a warning. */
	assert_int_equal(es->n_ports, 2);
	assert_string_equal(es->ports[1].name, "dns");
	assert_int_equal(es->ports[1].proto, PROTO_UDP);
	assert_int_equal(es->ports[1].port, 5353);
	assert_logged("EndpointSlice shop/full-abc: ports[3].port: 70000 is not a valid port (1-65535)");
	endpoint_slice_free(es);
	json_decref(o);
}

static void test_endpoints_v1(void **state)
{
	json_t *o = load_obj("endpoints-v1.json");
	struct endpoint_slice **v;
	size_t n;
	char *err = NULL;

	assert_int_equal(decode_endpoints(o, NULL, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0]->name, "legacy.endpoints-0");
	assert_string_equal(v[0]->service_name, "legacy");
	assert_int_equal(v[0]->family, AF_INET);
	assert_int_equal(v[0]->n_endpoints, 2);
	assert_true(v[0]->endpoints[0].ready);
	assert_string_equal(v[0]->endpoints[0].node_name, "node-1");
	assert_addr(&v[0]->endpoints[1].addr, "10.244.0.6");
	assert_false(v[0]->endpoints[1].ready);
	assert_false(v[0]->endpoints[1].serving);
	assert_int_equal(v[0]->n_ports, 1);
	assert_int_equal(v[0]->ports[0].port, 8080);
	assert_string_equal(v[1]->name, "legacy.endpoints-1");
	assert_int_equal(v[1]->family, AF_INET6);
	assert_int_equal(v[1]->n_endpoints, 1);
	assert_int_equal(v[1]->n_ports, 1);
	assert_string_equal(v[2]->name, "legacy.endpoints-2");
	assert_int_equal(v[2]->ports[0].port, 9090);
	assert_string_equal(v[2]->ports[0].name, "");
	for (size_t i = 0; i < n; i++)
		endpoint_slice_free(v[i]);
	free(v);
	json_decref(o);
}

static const struct {
	const char *json;
	bool terminating;
} terminating_cases[] = {
	{ "{\"metadata\":{\"name\":\"n3\"},\"spec\":{\"taints\":[{\"key\":\"other\",\"effect\":"
	  "\"NoSchedule\"},7,{\"key\":\"ToBeDeletedByClusterAutoscaler\",\"value\":\"1700000000\","
	  "\"effect\":\"NoSchedule\"}]}}", true },
	{ "{\"metadata\":{\"name\":\"n4\",\"deletionTimestamp\":\"2026-11-27T10:00:00Z\"}}", true },
	{ "{\"metadata\":{\"name\":\"n5\"},\"spec\":{\"taints\":[{\"key\":\"other\"}]}}", false },
};

static void test_node(void **state)
{
	json_t *o = load_obj("node.json");
	struct node_info *n;
	char buf[CIDR_STRLEN];
	char *err = NULL;

	assert_int_equal(decode_node(o, &n, &err), 0);
	assert_string_equal(n->name, "node-1");
	assert_string_equal(n->zone, "zone-a");
	assert_int_equal(n->n_pod_cidrs, 2);
	assert_string_equal(cidr_str(&n->pod_cidrs[1], buf), "fd00:244:1::/64");
	node_info_free(n);
	json_decref(o);
	o = json_loads("{\"metadata\":{\"name\":\"n2\"},\"spec\":{\"podCIDR\":\"10.1.0.0/16\"}}", 0, NULL);
	assert_int_equal(decode_node(o, &n, &err), 0);
	assert_null(n->zone);
	assert_int_equal(n->n_pod_cidrs, 1);
	node_info_free(n);
	json_decref(o);
	/* Being removed: the autoscaler's taint or a deletionTimestamp. */
	for (size_t i = 0; i < ARRAY_SIZE(terminating_cases); i++) {
		o = json_loads(terminating_cases[i].json, 0, NULL);
		assert_int_equal(decode_node(o, &n, &err), 0);
		assert_int_equal(n->terminating, terminating_cases[i].terminating);
		node_info_free(n);
		json_decref(o);
	}
	o = json_loads("{\"metadata\":{\"name\":\"n6\"},\"spec\":{\"taints\":\"x\"}}", 0, NULL);
	assert_int_equal(decode_node(o, &n, &err), -EINVAL);
	assert_non_null(strstr(err, "spec.taints"));
	free(err);
	json_decref(o);
	o = json_loads("{\"metadata\":{\"name\":7}}", 0, NULL);
	assert_int_equal(decode_node(o, &n, &err), -EINVAL);
	assert_non_null(strstr(err, "Node <no name>: metadata.name: must be a string, not an integer"));
	free(err);
	json_decref(o);
}

/* ---- hostile input ------------------------------------------------------ */

enum which { SVC, SLICE, EPS, NODE };

struct bad_case {
	enum which which;
	const char *json;         /* NULL: built by the test */
	const char *error;        /* substring of *err; NULL = must decode */
	const char *warning;      /* substring of the log; may be NULL */
};

#define SVC_HEAD "{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},"
#define SL_HEAD "{\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"s1\",\"labels\":{\"kubernetes.io/service-name\":\"web\"}},"

static const struct bad_case bad_cases[] = {
	{ SVC, "[]", "Service default/<no name>: not a JSON object but an array", NULL },
	{ SVC, "{\"kind\":\"Service\"}", "metadata: missing", NULL },
	{ SVC, "{\"metadata\":[]}", "metadata: must be an object, not an array", NULL },
	{ SVC, "{\"metadata\":{\"name\":\"\"}}", "metadata.name: missing", NULL },
	{ SVC, "{\"metadata\":{\"name\":\"Web\"}}", "metadata.name: \"Web\" is not a valid name", NULL },
	{ SVC, "{\"metadata\":{\"name\":\"a\\tb\"}}", "metadata.name: \"a?b\" is not a valid name", NULL },
	{ SVC, "{\"metadata\":{\"name\":\"w\",\"namespace\":\"a.b\"}}", "metadata.namespace: \"a.b\" is not a valid namespace", NULL },
	{ SVC, "{\"metadata\":{\"name\":\"w\",\"namespace\":true}}", "metadata.namespace: must be a string, not a boolean", NULL },
	{ SVC, "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"w\"}}", "Service default/w: kind: \"Deployment\" is not Service", NULL },
	{ SVC, SVC_HEAD "\"spec\":\"x\"}", "Service default/web: spec: must be an object, not a string", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"type\":\"Magic\"}}", "spec.type: \"Magic\" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"type\":5}}", "spec.type: must be a string, not an integer", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":{}}}", "spec.ports: must be an array, not an object", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[7]}}", "spec.ports[0]: must be an object, not an integer", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"name\":\"a\",\"port\":80},{\"name\":\"b\",\"port\":70000}]}}",
	  "Service default/web: spec.ports[1].port: 70000 is not a valid port (1-65535)", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":0}]}}", "spec.ports[0].port: 0 is not a valid port (1-65535)", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":-80}]}}", "spec.ports[0].port: -80 is not a valid port", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":9223372036854775807}]}}", "spec.ports[0].port: 9223372036854775807 is not a valid port", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80.5}]}}", "spec.ports[0].port: must be an integer, not a number", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":\"80\"}]}}", "spec.ports[0].port: must be an integer, not a string", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{}]}}", "spec.ports[0].port: missing", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"protocol\":\"ICMP\"}]}}", "spec.ports[0].protocol: \"ICMP\" is not TCP, UDP or SCTP", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":81}]}}", "spec.ports[1].name: required when a Service has more than one port", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":81,\"name\":\"a\"}]}}", "spec.ports: duplicate port name \"a\"", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"a\"},{\"port\":80,\"name\":\"b\"}]}}", "spec.ports[1]: duplicate port 80/TCP", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"name\":\"Bad Name\"}]}}", "spec.ports[0].name: \"Bad Name\" is not a valid port name", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":65536}]}}", "spec.ports[0].nodePort: 65536 is not a valid port (0-65535)", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ports\":[{\"port\":80,\"nodePort\":30000}]}}", NULL, "spec.ports[0].nodePort: ignored" },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIP\":\"10.0.0.300\"}}", "spec.clusterIP: \"10.0.0.300\" is not an IP address", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIP\":[1]}}", "spec.clusterIP: must be a string, not an array", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIPs\":[\"10.0.0.1\",\"10.0.0.2\"]}}", "spec.clusterIPs[1]: must be of the other IP family", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIPs\":[\"10.0.0.1\",\"fd00::1\",\"fd00::2\"]}}", "spec.clusterIPs: at most 2 addresses", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIP\":\"10.0.0.1\",\"clusterIPs\":[\"10.0.0.2\"]}}", "spec.clusterIP: must equal spec.clusterIPs[0]", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIPs\":[null]}}", "spec.clusterIPs[0]: must be a string, not null", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"ipFamilies\":[\"IPv5\"]}}", "spec.ipFamilies[0]: \"IPv5\" is not IPv4 or IPv6", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"clusterIP\":\"10.0.0.1\",\"ipFamilies\":[\"IPv6\"]}}", "spec.ipFamilies[0]: does not match the family of spec.clusterIPs[0]", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"sessionAffinity\":\"Sticky\"}}", "spec.sessionAffinity: \"Sticky\" is not one of None, ClientIP", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":0}}}}",
	  "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is not a valid timeout (1-86400 seconds)", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":86401}}}}", "timeoutSeconds: 86401 is not a valid timeout", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"sessionAffinityConfig\":{\"clientIP\":\"x\"}}}", "spec.sessionAffinityConfig.clientIP: must be an object, not a string", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"externalTrafficPolicy\":\"Nearby\"}}", "spec.externalTrafficPolicy: \"Nearby\" is not one of", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"internalTrafficPolicy\":false}}", "spec.internalTrafficPolicy: must be a string, not a boolean", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"healthCheckNodePort\":-1}}", "spec.healthCheckNodePort: -1 is not a valid port", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"externalIPs\":[1,\"1.2.3.4\"]}}", NULL, "spec.externalIPs[0]: must be a string, not an integer; ignored" },
	{ SVC, SVC_HEAD "\"spec\":{\"externalIPs\":\"1.2.3.4\"}}", "spec.externalIPs: must be an array, not a string", NULL },
	{ SVC, SVC_HEAD "\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"999.1.1.1\"}]}}}", NULL, "status.loadBalancer.ingress[0].ip: \"999.1.1.1\" is not an IP address" },
	{ SVC, SVC_HEAD "\"status\":{\"loadBalancer\":[]}}", "status.loadBalancer: must be an object, not an array", NULL },
	{ SVC, SVC_HEAD "\"spec\":{\"loadBalancerSourceRanges\":[{}]}}", NULL, "spec.loadBalancerSourceRanges[0]: must be a string, not an object" },
	{ SVC, SVC_HEAD "\"spec\":{\"externalTrafficPolicy\":\"OnlyLocal\",\"type\":\"NodePort\"}}", NULL, NULL },

	{ SLICE, "{\"metadata\":{\"name\":\"s1\"},\"addressType\":\"IPv4\"}", "EndpointSlice default/s1: metadata.labels[\"kubernetes.io/service-name\"]: missing", NULL },
	{ SLICE, "{\"metadata\":{\"name\":\"s1\",\"labels\":{\"kubernetes.io/service-name\":5}}}", "metadata.labels[\"kubernetes.io/service-name\"]: must be a string, not an integer", NULL },
	{ SLICE, "{\"metadata\":{\"name\":\"s1\",\"labels\":{\"kubernetes.io/service-name\":\"a/b\"}}}", "metadata.labels[\"kubernetes.io/service-name\"]: \"a/b\" is not a valid Service name", NULL },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv7\"}", "addressType: \"IPv7\" is not one of IPv4, IPv6, FQDN", NULL },
	{ SLICE, SL_HEAD "\"endpoints\":[]}", "addressType: missing", NULL },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":{}}", "endpoints: must be an array, not an object", NULL },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":[\"x\"]}", NULL, "endpoints[0]: must be an object, not a string; ignored" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[]}]}", NULL, "endpoints[0].addresses: empty; endpoint ignored" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"fd00::1\"]}]}", NULL, "endpoints[0].addresses[0]: \"fd00::1\" is not an IPv4 address" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":\"yes\"}}]}", NULL, "endpoints[0].conditions.ready: must be a boolean, not a string" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":7}]}", NULL, "endpoints[0].conditions: must be an object" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"nodeName\":\"a b\"}]}", NULL, "endpoints[0].nodeName: \"a b\" is not a valid value; ignored" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"ports\":[{\"port\":0}]}", NULL, "ports[0].port: 0 is not a valid port (1-65535); port ignored" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"ports\":[{\"port\":80,\"protocol\":\"tcp\"}]}", NULL, "ports[0].protocol: \"tcp\" is not TCP, UDP or SCTP" },
	{ SLICE, SL_HEAD "\"addressType\":\"IPv4\",\"ports\":[{\"port\":80,\"name\":[]}]}", NULL, "ports[0].name: must be a string, not an array" },
	{ SLICE, SL_HEAD "\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":[\"db.example.org\"]}]}", NULL, NULL },

	{ EPS, "{\"metadata\":{\"name\":\"e\"},\"subsets\":\"x\"}", "Endpoints default/e: subsets: must be an array, not a string", NULL },
	{ EPS, "{\"metadata\":{\"name\":\"e\"},\"subsets\":[{\"addresses\":[{\"ip\":\"x\"}]}]}", NULL, "subsets[0].addresses[0]: ip \"x\" is not an IP address" },
	{ EPS, "{\"metadata\":{\"name\":\"e\"},\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.1\"}],\"ports\":[{\"port\":99999}]}]}", NULL, "subsets[0].ports[0].port: 99999 is not a valid port" },
	{ NODE, "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"podCIDRs\":[\"x\"]}}", NULL, "Node n: spec.podCIDRs[0]: \"x\" is not a CIDR; ignored" },
	{ NODE, "{\"metadata\":{\"name\":\"n\"},\"spec\":[]}", "Node n: spec: must be an object, not an array", NULL },
};

static int run_decoder(enum which w, const json_t *o, char **err)
{
	struct service *s = NULL;
	struct endpoint_slice *es = NULL, **v = NULL;
	struct node_info *n = NULL;
	size_t nv = 0;
	int r;

	switch (w) {
	case SVC:
		r = decode_service(o, NULL, &s, err);
		assert_true(r == 0 ? s != NULL : s == NULL);
		service_free(s);
		return r;
	case SLICE:
		r = decode_endpoint_slice(o, NULL, &es, err);
		assert_true(r == 0 ? es != NULL : es == NULL);
		endpoint_slice_free(es);
		return r;
	case EPS:
		r = decode_endpoints(o, NULL, &v, &nv, err);
		for (size_t i = 0; i < nv; i++)
			endpoint_slice_free(v[i]);
		free(v);
		return r;
	default:
		r = decode_node(o, &n, err);
		node_info_free(n);
		return r;
	}
}

static void test_hostile_table(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		json_error_t jerr;
		json_t *o = json_loads(c->json, JSON_DECODE_ANY, &jerr);
		char *err = NULL;
		int r;

		if (!o)
			fail_msg("case %zu: bad test JSON: %s", i, jerr.text);
		log_reset();
		r = run_decoder(c->which, o, &err);
		if (c->error) {
			if (r != -EINVAL || !err || !strstr(err, c->error))
				fail_msg("case %zu: want error containing \"%s\", got %d \"%s\"", i, c->error, r,
					 err ? err : "(none)");
		} else if (r != 0) {
			fail_msg("case %zu: want success, got \"%s\"", i, err ? err : "(none)");
		}
		if (c->warning)
			assert_logged(c->warning);
		free(err);
		json_decref(o);
	}
}

/* Sizes and shapes no table entry can carry. */
static void test_hostile_generated(void **state)
{
	struct service *s;
	struct endpoint_slice *es;
	char *err = NULL, *name;
	json_t *o, *eps, *deep;

	/* 254-character names are errors; 253 is fine. */
	name = xmalloc(255);
	memset(name, 'a', 254);
	name[254] = '\0';
	o = json_pack("{s:{s:s}}", "metadata", "name", name);
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "metadata.name: \"aaaa"));
	assert_non_null(strstr(err, "...(254 bytes)\" is not a valid name"));
	assert_true(strlen(err) < 400);
	free(err);
	json_decref(o);
	/* Service names are RFC 1035 labels (API server validation), which
	 * also keeps rule comments within iptables' 255 bytes: 64 characters
	 * or a leading digit are errors, 63 is fine. */
	name[253] = '\0';
	o = json_pack("{s:{s:s}}", "metadata", "name", name);
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "is not a valid Service name (RFC 1035 label"));
	free(err);
	json_decref(o);
	name[64] = '\0';
	o = json_pack("{s:{s:s}}", "metadata", "name", name);
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	free(err);
	json_decref(o);
	name[63] = '\0';
	o = json_pack("{s:{s:s}}", "metadata", "name", name);
	assert_int_equal(decode_service(o, NULL, &s, &err), 0);
	service_free(s);
	json_decref(o);
	o = json_pack("{s:{s:s}}", "metadata", "name", "1web");
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "metadata.name: \"1web\" is not a valid Service name"));
	free(err);
	json_decref(o);
	free(name);

	/* A 100 kB string anywhere is just a bad value. */
	name = xmalloc(100001);
	memset(name, '1', 100000);
	name[100000] = '\0';
	o = json_pack("{s:{s:s},s:{s:s}}", "metadata", "name", "web", "spec", "clusterIP", name);
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "spec.clusterIP: \"1111"));
	free(err);
	json_decref(o);
	free(name);

	/* NUL inside a string. */
	o = json_pack("{s:{s:s#}}", "metadata", "name", "we\0b", (size_t)4);
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "metadata.name: contains a NUL byte"));
	free(err);
	json_decref(o);

	/* Deeply nested junk where an object is expected. */
	deep = json_object();
	for (int i = 0; i < 500; i++)
		deep = json_pack("{s:o}", "x", deep);
	o = json_pack("{s:{s:s},s:o}", "metadata", "name", "web", "spec", json_pack("{s:o}", "ports", deep));
	assert_int_equal(decode_service(o, NULL, &s, &err), -EINVAL);
	assert_non_null(strstr(err, "spec.ports: must be an array, not an object"));
	free(err);
	json_decref(o);

	/* 10^5 endpoints decode (slowly is fine). */
	eps = json_array();
	for (int i = 0; i < 100000; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		json_array_append_new(eps, json_pack("{s:[s]}", "addresses", ip));
	}
	o = json_pack("{s:{s:s,s:{s:s}},s:s,s:o}", "metadata", "name", "big", "labels",
		      "kubernetes.io/service-name", "big", "addressType", "IPv4", "endpoints", eps);
	assert_int_equal(decode_endpoint_slice(o, NULL, &es, &err), 0);
	assert_int_equal(es->n_endpoints, 100000);
	assert_addr(&es->endpoints[99999].addr, "10.1.134.159");
	endpoint_slice_free(es);
	json_decref(o);

	/* 2^63 and -2^63-1 do not fit an integer: from YAML they arrive as
	 * strings (JSON parsers refuse them outright). */
	{
		static const char y[] = "metadata: {name: web}\nspec:\n  ports:\n  - port: 9223372036854775808\n"
					"---\nmetadata: {name: web}\nspec:\n  ports:\n  - port: -9223372036854775809\n"
					"---\nmetadata: {name: web}\nspec:\n  ports:\n  - port: 1e400\n";
		json_t *docs = yaml_to_json(y, sizeof(y) - 1, &err);

		assert_non_null(docs);
		assert_int_equal(json_array_size(docs), 3);
		for (size_t i = 0; i < 3; i++) {
			assert_int_equal(decode_service(json_array_get(docs, i), NULL, &s, &err), -EINVAL);
			if (!strstr(err, "spec.ports[0].port: must be an integer, not a"))
				fail_msg("doc %zu: %s", i, err);
			free(err);
		}
		json_decref(docs);
		assert_null(json_loads("{\"port\": 9223372036854775808}", 0, NULL));
	}

	/* NULL and non-object roots. */
	assert_int_equal(decode_service(NULL, NULL, &s, &err), -EINVAL);
	free(err);
	o = json_string("Service");
	assert_int_equal(decode_endpoint_slice(o, NULL, &es, &err), -EINVAL);
	assert_non_null(strstr(err, "not a JSON object but a string"));
	free(err);
	json_decref(o);
}

/* Type-swap fuzzing: every value anywhere in the good objects is replaced,
 * one at a time, by junk of every JSON type. Each decode must either
 * succeed or fail with a message naming the object; never crash (ASan and
 * valgrind watch the rest). */
static size_t n_swaps;

static void decode_any(enum which w, json_t *root)
{
	char *err = NULL;
	int r = run_decoder(w, root, &err);

	if (r < 0) {
		assert_non_null(err);
		assert_true(strlen(err) < 1024);
	} else {
		assert_null(err);
	}
	free(err);
	n_swaps++;
}

static void swap_walk(enum which w, json_t *root, json_t *node)
{
	json_t *junk[] = {
		json_null(), json_integer(0), json_integer(-1), json_integer(INT64_MAX), json_real(1e300),
		json_string(""), json_string("x\x01y"), json_array(), json_object(), json_true(),
		json_pack("[s,i,{}]", "10.0.0.1", 7),
	};
	const char *key;
	json_t *val;

	if (json_is_object(node)) {
		/* Keys first: deleting and re-adding a key moves it to the end,
		 * so iterating the live object would never finish. */
		size_t n = json_object_size(node), i = 0;
		char **keys = xcalloc(n ? n : 1, sizeof(*keys));

		json_object_foreach(node, key, val)
			keys[i++] = xstrdup(key);
		for (i = 0; i < n; i++) {
			val = json_incref(json_object_get(node, keys[i]));
			for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
				json_object_set(node, keys[i], junk[j]);
				decode_any(w, root);
			}
			json_object_del(node, keys[i]);
			decode_any(w, root);
			json_object_set(node, keys[i], val);
			swap_walk(w, root, val);
			json_decref(val);
			free(keys[i]);
		}
		free(keys);
	} else if (json_is_array(node)) {
		for (size_t i = 0; i < json_array_size(node); i++) {
			val = json_incref(json_array_get(node, i));
			for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
				json_array_set(node, i, junk[j]);
				decode_any(w, root);
			}
			json_array_set(node, i, val);
			swap_walk(w, root, val);
			json_decref(val);
		}
	}
	for (size_t j = 0; j < sizeof(junk) / sizeof(junk[0]); j++)
		json_decref(junk[j]);
}

static void test_type_swap_fuzz(void **state)
{
	static const struct { enum which w; const char *file; } objs[] = {
		{ SVC, "service-full.json" },
		{ SVC, "service-nodeport-kubectl.json" },
		{ SLICE, "endpointslice-full.yaml" },
		{ EPS, "endpoints-v1.json" },
		{ NODE, "node.json" },
	};

	n_swaps = 0;
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		json_t *o = load_obj(objs[i].file);

		swap_walk(objs[i].w, o, o);
		json_decref(o);
	}
	assert_true(n_swaps > 1000);
	log_reset();
}

static void test_object_ref(void **state)
{
	json_t *o = json_loads("{\"metadata\":{\"name\":\"a\\nb\",\"namespace\":\"x\"}}", 0, NULL);
	char *r = object_ref(o, NULL);

	assert_string_equal(r, "x/a?b");
	free(r);
	json_decref(o);
	o = json_loads("{\"metadata\":{\"name\":\"n\"}}", 0, NULL);
	r = object_ref(o, "kube-system");
	assert_string_equal(r, "kube-system/n");
	free(r);
	json_decref(o);
	r = object_ref(NULL, NULL);
	assert_string_equal(r, "default/<no name>");
	free(r);
}

static int setup(void **state)
{
	int fd = mkstemp(logpath);

	if (fd < 0)
		return -1;
	close(fd);
	log_open(logpath, 0);
	log_set_stderr(0);
	return 0;
}

static int teardown(void **state)
{
	log_close();
	unlink(logpath);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubectl_clusterip),
		cmocka_unit_test(test_kubectl_others),
		cmocka_unit_test(test_watch_objects),
		cmocka_unit_test(test_service_full),
		cmocka_unit_test(test_slice_full),
		cmocka_unit_test(test_endpoints_v1),
		cmocka_unit_test(test_node),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_hostile_generated),
		cmocka_unit_test(test_type_swap_fuzz),
		cmocka_unit_test(test_object_ref),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
