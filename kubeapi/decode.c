/* Kubernetes API objects (jansson values) -> model (src/model.h).
 *
 * Policy for bad input:
 *  - Services: anything the API server's validation would reject is an
 *    error and the whole Service is refused (the manifest source then keeps
 *    serving the previous good version). The only fields that are filtered
 *    with a warning are those upstream kube-proxy itself filters:
 *    spec.externalIPs, status.loadBalancer.ingress[].ip and
 *    spec.loadBalancerSourceRanges (trimmed, host bits cleared like Go's
 *    net.ParseCIDR, invalid entries skipped).
 *  - EndpointSlices / Endpoints: a bad endpoint or a bad port is skipped with
 *    a warning naming the object and field; the rest of the slice is kept.
 *    Only structural problems (not an object, bad name or namespace, no
 *    service-name label, unknown addressType, wrong kind) are errors.
 * Every message starts with "<Kind> <ns>/<name>: <field path>: ". */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "log.h"
#include "util.h"

#define MAX_NAME 253
#define MAX_LABEL 63
#define REF_NAME_MAX 80       /* longest name printed in messages */
#define DEFAULT_AFFINITY_TIMEOUT 10800
#define MAX_AFFINITY_TIMEOUT 86400
#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_ZONE "topology.kubernetes.io/zone"
/* The cluster autoscaler's mark on a node it is about to remove. */
#define TAINT_TO_BE_DELETED "ToBeDeletedByClusterAutoscaler"

struct dctx {
	char *what;               /* "Service default/web" */
	char **err;
};

/* ---- messages ----------------------------------------------------------- */

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Copies s for a message: at most max bytes, non-printable bytes as '?'. */
static void put_sanitized(struct strbuf *sb, const char *s, size_t max)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];

		sb_putc(sb, ch >= 0x20 && ch < 0x7f ? (char)ch : '?');
	}
	if (len > max)
		sb_printf(sb, "...(%zu bytes)", len);
}

static __attribute__((format(printf, 3, 4)))
int fail(struct dctx *c, const char *field, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	if (!c->err || *c->err)
		return -EINVAL;
	sb_init(&sb);
	sb_puts(&sb, c->what);
	if (field && *field)
		sb_printf(&sb, ": %s", field);
	sb_puts(&sb, ": ");
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	*c->err = sb_steal(&sb);
	return -EINVAL;
}

static __attribute__((format(printf, 3, 4)))
void warn(struct dctx *c, const char *field, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	log_warn("%s: %s: %s", c->what, field, sb_cstr(&sb));
	sb_free(&sb);
}

/* A string value quoted and sanitized for a message; caller frees. */
static char *quote(const char *s)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_putc(&sb, '"');
	put_sanitized(&sb, s, REF_NAME_MAX);
	sb_putc(&sb, '"');
	return sb_steal(&sb);
}

/* ---- typed field access ------------------------------------------------- */

/* Absent and null both mean "not set" (*out = NULL). */
static int get_typed(struct dctx *c, const json_t *parent, const char *key, const char *path,
		     json_type want, const char *want_name, const json_t **out)
{
	const json_t *v = json_object_get(parent, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_typeof(v) != want &&
	    !(want == JSON_TRUE && json_is_boolean(v)))
		return fail(c, path, "must be %s, not %s", want_name, type_name(v));
	*out = v;
	return 0;
}

static int get_obj(struct dctx *c, const json_t *parent, const char *key, const char *path,
		   const json_t **out)
{
	return get_typed(c, parent, key, path, JSON_OBJECT, "an object", out);
}

static int get_arr(struct dctx *c, const json_t *parent, const char *key, const char *path,
		   const json_t **out)
{
	return get_typed(c, parent, key, path, JSON_ARRAY, "an array", out);
}

static int get_str(struct dctx *c, const json_t *parent, const char *key, const char *path,
		   const char **out)
{
	const json_t *v;
	int r = get_typed(c, parent, key, path, JSON_STRING, "a string", &v);

	*out = v ? json_string_value(v) : NULL;
	if (v && strlen(*out) != json_string_length(v))
		return fail(c, path, "contains a NUL byte");
	return r;
}

/* Integer in [min, max]; *present tells whether it was set. */
static int get_int(struct dctx *c, const json_t *parent, const char *key, const char *path,
		   long long min, long long max, const char *what_range, long long *out, bool *present)
{
	const json_t *v = json_object_get(parent, key);
	long long x;

	*present = false;
	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return fail(c, path, "must be an integer, not %s", type_name(v));
	x = (long long)json_integer_value(v);
	if (x < min || x > max)
		return fail(c, path, "%lld is not a valid %s", x, what_range);
	*out = x;
	*present = true;
	return 0;
}

static int get_port(struct dctx *c, const json_t *parent, const char *key, const char *path,
		    bool zero_ok, uint16_t *out, bool *present)
{
	long long v;
	int r = get_int(c, parent, key, path, zero_ok ? 0 : 1, 65535,
			zero_ok ? "port (0-65535)" : "port (1-65535)", &v, present);

	*out = (uint16_t)v;
	return r;
}

/* ---- names -------------------------------------------------------------- */

static bool is_alnum_lower(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63. */
static bool valid_label(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > MAX_LABEL || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum_lower(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 1035 label, as Service names must be: a letter first. */
static bool valid_dns1035_label(const char *s)
{
	return valid_label(s) && s[0] >= 'a' && s[0] <= 'z';
}

/* RFC 1123 subdomain: labels joined by '.', at most 253. */
static bool valid_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > MAX_NAME || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_alnum_lower(s[i]) && s[i] != '-' && s[i] != '.')
			return false;
		if (s[i] == '.' && (!is_alnum_lower(s[i - 1]) || !is_alnum_lower(s[i + 1])))
			return false;
	}
	return true;
}

/* Free-form but safe to print and to put into rule comments: node names,
 * zones. Printable ASCII without spaces or quotes, at most 253. */
static bool valid_token(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\'' || s[i] == '\\')
			return false;
	return true;
}

static void ref_part(struct strbuf *sb, const json_t *v, const char *dflt)
{
	if (json_is_string(v) && json_string_length(v))
		put_sanitized(sb, json_string_value(v), REF_NAME_MAX);
	else
		sb_puts(sb, dflt);
}

char *object_ref(const json_t *obj, const char *default_ns)
{
	const json_t *md = json_is_object(obj) ? json_object_get(obj, "metadata") : NULL;
	struct strbuf sb;

	if (!json_is_object(md))
		md = NULL;
	sb_init(&sb);
	ref_part(&sb, md ? json_object_get(md, "namespace") : NULL, default_ns ? default_ns : "default");
	sb_putc(&sb, '/');
	ref_part(&sb, md ? json_object_get(md, "name") : NULL, "<no name>");
	return sb_steal(&sb);
}

/* Sets up the context and checks kind, metadata.name and .namespace. */
static int decode_meta(struct dctx *c, const char *kind, const json_t *obj, const char *default_ns,
		       char **ns, char **name, const json_t **md_out)
{
	bool namespaced = ns != NULL;
	const json_t *md;
	const char *s, *k;
	char *ref = object_ref(obj, default_ns);
	char *q;
	int r;

	/* Cluster-scoped objects print just their name. */
	c->what = xasprintf("%s %s", kind, namespaced ? ref : strchr(ref, '/') + 1);
	free(ref);
	*name = NULL;
	if (ns)
		*ns = NULL;
	if (!json_is_object(obj))
		return fail(c, NULL, "not a JSON object but %s", obj ? type_name(obj) : "nothing");
	if ((r = get_str(c, obj, "kind", "kind", &k)) < 0)
		return r;
	if (k && strcmp(k, kind) != 0) {
		q = quote(k);
		fail(c, "kind", "%s is not %s", q, kind);
		free(q);
		return -EINVAL;
	}
	if ((r = get_obj(c, obj, "metadata", "metadata", &md)) < 0)
		return r;
	if (!md)
		return fail(c, "metadata", "missing");
	if ((r = get_str(c, md, "name", "metadata.name", &s)) < 0)
		return r;
	if (!s || !*s)
		return fail(c, "metadata.name", "missing");
	if (!valid_subdomain(s)) {
		q = quote(s);
		fail(c, "metadata.name", "%s is not a valid name (lower case letters, digits, '-' and '.', at most %d characters)",
		     q, MAX_NAME);
		free(q);
		return -EINVAL;
	}
	*name = xstrdup(s);
	if (!namespaced)
		goto done;
	if ((r = get_str(c, md, "namespace", "metadata.namespace", &s)) < 0)
		return r;
	if (s && *s && !valid_label(s)) {
		q = quote(s);
		fail(c, "metadata.namespace", "%s is not a valid namespace (lower case letters, digits and '-', at most %d characters)",
		     q, MAX_LABEL);
		free(q);
		return -EINVAL;
	}
	*ns = xstrdup(s && *s ? s : default_ns ? default_ns : "default");
done:
	if (md_out)
		*md_out = md;
	return 0;
}

/* ---- Service ------------------------------------------------------------ */

static int family_of_name(const char *s)
{
	if (strcmp(s, "IPv4") == 0)
		return AF_INET;
	if (strcmp(s, "IPv6") == 0)
		return AF_INET6;
	return 0;
}

static int decode_cluster_ips(struct dctx *c, const json_t *spec, struct service *svc)
{
	const json_t *arr, *fams;
	const char *ip;
	char path[64], *q;
	size_t i, n;
	int r;

	if ((r = get_str(c, spec, "clusterIP", "spec.clusterIP", &ip)) < 0 ||
	    (r = get_arr(c, spec, "clusterIPs", "spec.clusterIPs", &arr)) < 0 ||
	    (r = get_arr(c, spec, "ipFamilies", "spec.ipFamilies", &fams)) < 0)
		return r;
	n = arr ? json_array_size(arr) : 0;
	if (n > 2)
		return fail(c, "spec.clusterIPs", "at most 2 addresses (one per IP family), not %zu", n);
	if (ip && strcmp(ip, "None") == 0)
		svc->headless = true;
	for (i = 0; i < n; i++) {
		const char *s;

		snprintf(path, sizeof(path), "spec.clusterIPs[%zu]", i);
		if (!json_is_string(json_array_get(arr, i)))
			return fail(c, path, "must be a string, not %s", type_name(json_array_get(arr, i)));
		s = json_string_value(json_array_get(arr, i));
		if (strcmp(s, "None") == 0) {
			if (i > 0 || n > 1)
				return fail(c, path, "\"None\" must be the only entry");
			svc->headless = true;
			continue;
		}
		if (i == 0 && svc->headless)
			return fail(c, "spec.clusterIPs[0]", "must be \"None\" like spec.clusterIP");
		if (addr_parse(s, &svc->cluster_ips[svc->n_cluster_ips]) < 0) {
			q = quote(s);
			fail(c, path, "%s is not an IP address", q);
			free(q);
			return -EINVAL;
		}
		if (i == 1 && svc->cluster_ips[1].family == svc->cluster_ips[0].family)
			return fail(c, path, "must be of the other IP family than spec.clusterIPs[0]");
		svc->n_cluster_ips++;
	}
	if (ip && *ip && !svc->headless) {
		struct addr a;

		if (addr_parse(ip, &a) < 0) {
			q = quote(ip);
			fail(c, "spec.clusterIP", "%s is not an IP address", q);
			free(q);
			return -EINVAL;
		}
		if (svc->n_cluster_ips == 0)
			svc->cluster_ips[svc->n_cluster_ips++] = a;
		else if (!addr_equal(&a, &svc->cluster_ips[0]))
			return fail(c, "spec.clusterIP", "must equal spec.clusterIPs[0]");
	} else if (svc->n_cluster_ips && !svc->headless) {
		/* clusterIPs without clusterIP: accepted, clusterIPs[0] is primary. */
	}
	if (fams) {
		size_t nf = json_array_size(fams);
		int seen = 0;

		if (nf > 2)
			return fail(c, "spec.ipFamilies", "at most 2 entries, not %zu", nf);
		for (i = 0; i < nf; i++) {
			const json_t *v = json_array_get(fams, i);
			int f;

			snprintf(path, sizeof(path), "spec.ipFamilies[%zu]", i);
			if (!json_is_string(v))
				return fail(c, path, "must be a string, not %s", type_name(v));
			f = family_of_name(json_string_value(v));
			if (!f) {
				q = quote(json_string_value(v));
				fail(c, path, "%s is not IPv4 or IPv6", q);
				free(q);
				return -EINVAL;
			}
			if (f == seen)
				return fail(c, path, "duplicate family");
			seen = f;
			if (i < svc->n_cluster_ips && svc->cluster_ips[i].family != f)
				return fail(c, path, "does not match the family of spec.clusterIPs[%zu]", i);
		}
	}
	return 0;
}

static int decode_service_ports(struct dctx *c, const json_t *spec, struct service *svc)
{
	const json_t *ports;
	char path[64], *q;
	size_t n;
	int r;

	if ((r = get_arr(c, spec, "ports", "spec.ports", &ports)) < 0)
		return r;
	n = ports ? json_array_size(ports) : 0;
	if (!n)
		return 0;
	if (n > 3 * 65536)
		return fail(c, "spec.ports", "%zu ports cannot all be distinct", n);
	svc->ports = xcalloc(n, sizeof(*svc->ports));
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_array_get(ports, i);
		struct service_port *sp = &svc->ports[i];
		const char *name, *proto;
		bool present;

		snprintf(path, sizeof(path), "spec.ports[%zu]", i);
		if (!json_is_object(p))
			return fail(c, path, "must be an object, not %s", type_name(p));
		svc->n_ports = i + 1;
		snprintf(path, sizeof(path), "spec.ports[%zu].name", i);
		if ((r = get_str(c, p, "name", path, &name)) < 0)
			return r;
		sp->name = xstrdup(name ? name : "");
		if (*sp->name && !valid_label(sp->name)) {
			q = quote(sp->name);
			fail(c, path, "%s is not a valid port name (lower case letters, digits and '-', at most %d characters)",
			     q, MAX_LABEL);
			free(q);
			return -EINVAL;
		}
		if (!*sp->name && n > 1)
			return fail(c, path, "required when a Service has more than one port");
		snprintf(path, sizeof(path), "spec.ports[%zu].protocol", i);
		if ((r = get_str(c, p, "protocol", path, &proto)) < 0)
			return r;
		sp->proto = PROTO_TCP;
		if (proto && proto_parse(proto, &sp->proto) < 0) {
			q = quote(proto);
			fail(c, path, "%s is not TCP, UDP or SCTP", q);
			free(q);
			return -EINVAL;
		}
		snprintf(path, sizeof(path), "spec.ports[%zu].port", i);
		if ((r = get_port(c, p, "port", path, false, &sp->port, &present)) < 0)
			return r;
		if (!present)
			return fail(c, path, "missing");
		snprintf(path, sizeof(path), "spec.ports[%zu].nodePort", i);
		if ((r = get_port(c, p, "nodePort", path, true, &sp->node_port, &present)) < 0)
			return r;
		if (sp->node_port && svc->type != SVC_NODE_PORT && svc->type != SVC_LOAD_BALANCER) {
			warn(c, path, "ignored: only NodePort and LoadBalancer Services have node ports");
			sp->node_port = 0;
		}
	}
	/* Names and (port, protocol) pairs must be unique. n is small in
	 * practice; a sorted copy keeps hostile 10^5-port objects linearithmic. */
	{
		uint8_t *seen = xcalloc(3 * 65536 / 8, 1);
		char **names = xcalloc(n, sizeof(*names));
		size_t nn = 0;

		r = 0;
		for (size_t i = 0; i < n && !r; i++) {
			unsigned bit = (unsigned)svc->ports[i].proto * 65536u + svc->ports[i].port;

			if (seen[bit / 8] & (1u << (bit % 8))) {
				snprintf(path, sizeof(path), "spec.ports[%zu]", i);
				r = fail(c, path, "duplicate port %u/%s", svc->ports[i].port,
					 proto_upper(svc->ports[i].proto));
			}
			seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
			if (*svc->ports[i].name)
				names[nn++] = svc->ports[i].name;
		}
		if (!r && nn > 1) {
			qsort(names, nn, sizeof(*names), cmp_strp);
			for (size_t i = 1; i < nn && !r; i++)
				if (strcmp(names[i - 1], names[i]) == 0) {
					q = quote(names[i]);
					r = fail(c, "spec.ports", "duplicate port name %s", q);
					free(q);
				}
		}
		free(seen);
		free(names);
	}
	return r;
}

static void decode_ip_list(struct dctx *c, const json_t *arr, const char *base,
			   struct addr **out, size_t *n_out)
{
	size_t n = json_array_size(arr);
	char path[80], *q;

	*out = n ? xcalloc(n, sizeof(**out)) : NULL;
	*n_out = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);

		snprintf(path, sizeof(path), "%s[%zu]", base, i);
		if (!json_is_string(v)) {
			warn(c, path, "must be a string, not %s; ignored", type_name(v));
			continue;
		}
		if (addr_parse(json_string_value(v), &(*out)[*n_out]) < 0) {
			q = quote(json_string_value(v));
			warn(c, path, "%s is not an IP address; ignored", q);
			free(q);
			continue;
		}
		(*n_out)++;
	}
}

static void decode_lb_ingress(struct dctx *c, const json_t *ingress, struct service *svc)
{
	size_t n = json_array_size(ingress);
	char path[80], *q;

	svc->lb_ips = n ? xcalloc(n, sizeof(*svc->lb_ips)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const json_t *ing = json_array_get(ingress, i), *ip, *mode;

		snprintf(path, sizeof(path), "status.loadBalancer.ingress[%zu]", i);
		if (!json_is_object(ing)) {
			warn(c, path, "must be an object, not %s; ignored", type_name(ing));
			continue;
		}
		mode = json_object_get(ing, "ipMode");
		if (json_is_string(mode) && strcmp(json_string_value(mode), "Proxy") == 0)
			continue;
		ip = json_object_get(ing, "ip");
		if (!ip || json_is_null(ip) || (json_is_string(ip) && !json_string_length(ip)))
			continue;     /* hostname-only ingress */
		snprintf(path, sizeof(path), "status.loadBalancer.ingress[%zu].ip", i);
		if (!json_is_string(ip)) {
			warn(c, path, "must be a string, not %s; ignored", type_name(ip));
			continue;
		}
		if (addr_parse(json_string_value(ip), &svc->lb_ips[svc->n_lb_ips]) < 0) {
			q = quote(json_string_value(ip));
			warn(c, path, "%s is not an IP address; ignored", q);
			free(q);
			continue;
		}
		svc->n_lb_ips++;
	}
}

static void decode_source_ranges(struct dctx *c, const json_t *arr, struct service *svc)
{
	size_t n = json_array_size(arr);
	char path[80], *q;

	svc->lb_source_ranges = n ? xcalloc(n, sizeof(*svc->lb_source_ranges)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(arr, i);
		char *t;
		size_t len;

		snprintf(path, sizeof(path), "spec.loadBalancerSourceRanges[%zu]", i);
		if (!json_is_string(v)) {
			warn(c, path, "must be a string, not %s; ignored", type_name(v));
			continue;
		}
		/* Upstream trims whitespace (validation lets it through). */
		t = json_string_value(v)[0] ? xstrdup(json_string_value(v) + strspn(json_string_value(v), " \t\n\r"))
					    : xstrdup("");
		len = strlen(t);
		while (len && strchr(" \t\n\r", t[len - 1]))
			t[--len] = '\0';
		if (cidr_parse(t, true, &svc->lb_source_ranges[svc->n_lb_source_ranges]) < 0) {
			q = quote(t);
			warn(c, path, "%s is not a CIDR; ignored", q);
			free(q);
		} else {
			svc->n_lb_source_ranges++;
		}
		free(t);
	}
}

static int parse_enum(struct dctx *c, const json_t *obj, const char *key, const char *path,
		      const char *const *names, int dflt, int *out)
{
	const char *s;
	char *q;
	int r;

	*out = dflt;
	if ((r = get_str(c, obj, key, path, &s)) < 0)
		return r;
	if (!s || !*s)
		return 0;
	for (int i = 0; names[i]; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	q = quote(s);
	r = fail(c, path, "%s is not one of", q);
	free(q);
	if (c->err && *c->err) {
		struct strbuf sb;

		sb_init(&sb);
		sb_puts(&sb, *c->err);
		for (int i = 0; names[i]; i++)
			sb_printf(&sb, "%s %s", i ? "," : "", names[i]);
		free(*c->err);
		*c->err = sb_steal(&sb);
	}
	return r;
}

static int decode_service_spec(struct dctx *c, const json_t *obj, struct service *svc)
{
	static const char *const types[] = { "ClusterIP", "NodePort", "LoadBalancer", "ExternalName", NULL };
	static const char *const affinities[] = { "None", "ClientIP", NULL };
	static const char *const etps[] = { "Cluster", "Local", "OnlyLocal", "Global", NULL };
	static const char *const itps[] = { "Cluster", "Local", NULL };
	const json_t *spec, *status, *lb, *arr, *sac, *cip;
	json_t *empty = NULL;
	long long timeout;
	bool present;
	int r, v;

	if ((r = get_obj(c, obj, "spec", "spec", &spec)) < 0)
		return r;
	if (!spec)
		spec = empty = json_object();
	r = parse_enum(c, spec, "type", "spec.type", types, SVC_CLUSTER_IP, &v);
	if (r < 0)
		goto out;
	svc->type = (enum svc_type)v;
	if ((r = decode_cluster_ips(c, spec, svc)) < 0 || (r = decode_service_ports(c, spec, svc)) < 0)
		goto out;
	if ((r = get_arr(c, spec, "externalIPs", "spec.externalIPs", &arr)) < 0)
		goto out;
	if (arr)
		decode_ip_list(c, arr, "spec.externalIPs", &svc->external_ips, &svc->n_external_ips);
	if ((r = get_arr(c, spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges", &arr)) < 0)
		goto out;
	if (arr)
		decode_source_ranges(c, arr, svc);

	if ((r = parse_enum(c, spec, "sessionAffinity", "spec.sessionAffinity", affinities, 0, &v)) < 0)
		goto out;
	svc->affinity_client_ip = v == 1;
	svc->affinity_timeout = DEFAULT_AFFINITY_TIMEOUT;
	if ((r = get_obj(c, spec, "sessionAffinityConfig", "spec.sessionAffinityConfig", &sac)) < 0)
		goto out;
	if (sac && (r = get_obj(c, sac, "clientIP", "spec.sessionAffinityConfig.clientIP", &cip)) < 0)
		goto out;
	if (sac && cip) {
		r = get_int(c, cip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
			    1, MAX_AFFINITY_TIMEOUT, "timeout (1-86400 seconds)", &timeout, &present);
		if (r < 0)
			goto out;
		if (present)
			svc->affinity_timeout = (uint32_t)timeout;
	}

	if ((r = parse_enum(c, spec, "externalTrafficPolicy", "spec.externalTrafficPolicy", etps, 0, &v)) < 0)
		goto out;
	/* As upstream: the policy only matters for externally reachable types. */
	svc->etp_local = (v == 1 || v == 2) &&
			 (svc->type == SVC_NODE_PORT || svc->type == SVC_LOAD_BALANCER);
	if ((r = parse_enum(c, spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", itps, 0, &v)) < 0)
		goto out;
	svc->itp_local = v == 1;
	if ((r = get_port(c, spec, "healthCheckNodePort", "spec.healthCheckNodePort", true,
			  &svc->health_check_node_port, &present)) < 0)
		goto out;
	if (!(svc->type == SVC_LOAD_BALANCER && svc->etp_local))
		svc->health_check_node_port = 0;

	if ((r = get_obj(c, obj, "status", "status", &status)) < 0)
		goto out;
	if (status && (r = get_obj(c, status, "loadBalancer", "status.loadBalancer", &lb)) < 0)
		goto out;
	if (status && lb) {
		if ((r = get_arr(c, lb, "ingress", "status.loadBalancer.ingress", &arr)) < 0)
			goto out;
		if (arr)
			decode_lb_ingress(c, arr, svc);
	}
out:
	json_decref(empty);
	return r;
}

int decode_service(const json_t *obj, const char *default_ns, struct service **out, char **err)
{
	struct dctx c = { .err = err };
	struct service *svc = xcalloc(1, sizeof(*svc));
	int r;

	*out = NULL;
	if (err)
		*err = NULL;
	r = decode_meta(&c, "Service", obj, default_ns, &svc->ns, &svc->name, NULL);
	/* The API server requires Service names to be RFC 1035 labels; the
	 * length bound also keeps every rule comment within iptables' 255. */
	if (r == 0 && !valid_dns1035_label(svc->name)) {
		char *q = quote(svc->name);

		fail(&c, "metadata.name", "%s is not a valid Service name (RFC 1035 label: a lower case letter, then letters, digits and '-', at most %d characters)",
		     q, MAX_LABEL);
		free(q);
		r = -EINVAL;
	}
	if (r < 0 || (r = decode_service_spec(&c, obj, svc)) < 0) {
		if (!svc->ns)
			svc->ns = xstrdup("");
		if (!svc->name)
			svc->name = xstrdup("");
		service_free(svc);
		free(c.what);
		return r;
	}
	free(c.what);
	*out = svc;
	return 0;
}

void decode_service_families(const json_t *obj, int fams[2], size_t *n_fams, int *dual)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *arr = json_object_get(spec, "ipFamilies");
	const json_t *pol = json_object_get(spec, "ipFamilyPolicy");

	*n_fams = 0;
	*dual = 0;
	for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr) && *n_fams < 2; i++) {
		const json_t *v = json_array_get(arr, i);
		int f = json_is_string(v) ? family_of_name(json_string_value(v)) : 0;

		if (f && (*n_fams == 0 || fams[0] != f))
			fams[(*n_fams)++] = f;
	}
	if (json_is_string(pol)) {
		if (strcmp(json_string_value(pol), "PreferDualStack") == 0)
			*dual = 1;
		else if (strcmp(json_string_value(pol), "RequireDualStack") == 0)
			*dual = 2;
	}
}

/* ---- EndpointSlice ------------------------------------------------------ */

static bool get_cond(struct dctx *c, const json_t *cond, const char *key, const char *base,
		     bool dflt, bool *out, bool *ok)
{
	const json_t *v = cond ? json_object_get(cond, key) : NULL;
	char path[96];

	*out = dflt;
	if (!v || json_is_null(v))
		return false;
	if (!json_is_boolean(v)) {
		snprintf(path, sizeof(path), "%s.conditions.%s", base, key);
		warn(c, path, "must be a boolean, not %s; endpoint ignored", type_name(v));
		*ok = false;
		return false;
	}
	*out = json_is_true(v);
	return true;
}

/* Optional printable token (nodeName, zone): bad values are dropped. */
static char *get_token(struct dctx *c, const json_t *obj, const char *key, const char *base)
{
	const json_t *v = json_object_get(obj, key);
	char path[96], *q;

	if (!v || json_is_null(v))
		return NULL;
	snprintf(path, sizeof(path), "%s.%s", base, key);
	if (!json_is_string(v)) {
		warn(c, path, "must be a string, not %s; ignored", type_name(v));
		return NULL;
	}
	if (!json_string_length(v))
		return NULL;
	if (strlen(json_string_value(v)) != json_string_length(v) || !valid_token(json_string_value(v))) {
		q = quote(json_string_value(v));
		warn(c, path, "%s is not a valid value; ignored", q);
		free(q);
		return NULL;
	}
	return xstrdup(json_string_value(v));
}

/* Decodes endpoints[i] into e; false = skip it (already warned). */
static bool decode_endpoint(struct dctx *c, const json_t *ep, size_t i, int family, struct endpoint *e)
{
	const json_t *addrs, *cond, *hints, *zones;
	char base[48], path[96], *q;
	bool ok = true, have_serving;

	memset(e, 0, sizeof(*e));
	snprintf(base, sizeof(base), "endpoints[%zu]", i);
	if (!json_is_object(ep)) {
		warn(c, base, "must be an object, not %s; ignored", type_name(ep));
		return false;
	}
	addrs = json_object_get(ep, "addresses");
	snprintf(path, sizeof(path), "%s.addresses", base);
	if (!json_is_array(addrs) || !json_array_size(addrs)) {
		warn(c, path, "%s; endpoint ignored",
		     json_is_array(addrs) ? "empty" : addrs ? "must be an array" : "missing");
		return false;
	}
	snprintf(path, sizeof(path), "%s.addresses[0]", base);
	if (!json_is_string(json_array_get(addrs, 0))) {
		warn(c, path, "must be a string, not %s; endpoint ignored", type_name(json_array_get(addrs, 0)));
		return false;
	}
	if (addr_parse(json_string_value(json_array_get(addrs, 0)), &e->addr) < 0 || e->addr.family != family) {
		q = quote(json_string_value(json_array_get(addrs, 0)));
		warn(c, path, "%s is not an %s address; endpoint ignored", q,
		     family == AF_INET ? "IPv4" : "IPv6");
		free(q);
		return false;
	}
	cond = json_object_get(ep, "conditions");
	if (cond && !json_is_null(cond) && !json_is_object(cond)) {
		snprintf(path, sizeof(path), "%s.conditions", base);
		warn(c, path, "must be an object, not %s; endpoint ignored", type_name(cond));
		return false;
	}
	if (json_is_null(cond))
		cond = NULL;
	get_cond(c, cond, "ready", base, true, &e->ready, &ok);
	have_serving = get_cond(c, cond, "serving", base, true, &e->serving, &ok);
	if (!have_serving)
		e->serving = e->ready;
	get_cond(c, cond, "terminating", base, false, &e->terminating, &ok);
	if (!ok)
		return false;
	e->node_name = get_token(c, ep, "nodeName", base);
	e->zone = get_token(c, ep, "zone", base);
	hints = json_object_get(ep, "hints");
	zones = json_is_object(hints) ? json_object_get(hints, "forZones") : NULL;
	if (json_is_array(zones) && json_array_size(zones)) {
		size_t n = json_array_size(zones);

		e->hint_zones = xcalloc(n, sizeof(*e->hint_zones));
		for (size_t k = 0; k < n; k++) {
			char hb[96];
			char *z;

			snprintf(hb, sizeof(hb), "%s.hints.forZones[%zu]", base, k);
			if (!json_is_object(json_array_get(zones, k))) {
				warn(c, hb, "must be an object; ignored");
				continue;
			}
			z = get_token(c, json_array_get(zones, k), "name", hb);
			if (z)
				e->hint_zones[e->n_hint_zones++] = z;
		}
	} else if (hints && !json_is_null(hints) && (!json_is_object(hints) || (zones && !json_is_array(zones)))) {
		snprintf(path, sizeof(path), "%s.hints", base);
		warn(c, path, "malformed; ignored");
	}
	return true;
}

/* Decodes ports[] of a slice (or of an Endpoints subset) into the slice;
 * bad entries are skipped with a warning. */
static void decode_slice_ports(struct dctx *c, const json_t *ports, const char *base,
			       struct endpoint_slice *s)
{
	size_t n = json_array_size(ports);
	char path[96], *q;

	s->ports = n ? xcalloc(n, sizeof(*s->ports)) : NULL;
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_array_get(ports, i), *pv, *nv, *prv;
		struct slice_port *sp = &s->ports[s->n_ports];
		long long port;

		snprintf(path, sizeof(path), "%s[%zu]", base, i);
		if (!json_is_object(p)) {
			warn(c, path, "must be an object, not %s; ignored", type_name(p));
			continue;
		}
		pv = json_object_get(p, "port");
		if (!pv || json_is_null(pv))
			continue;     /* "all ports": not something kube-proxy can program */
		snprintf(path, sizeof(path), "%s[%zu].port", base, i);
		if (!json_is_integer(pv)) {
			warn(c, path, "must be an integer, not %s; port ignored", type_name(pv));
			continue;
		}
		port = (long long)json_integer_value(pv);
		if (port < 1 || port > 65535) {
			warn(c, path, "%lld is not a valid port (1-65535); port ignored", port);
			continue;
		}
		nv = json_object_get(p, "name");
		snprintf(path, sizeof(path), "%s[%zu].name", base, i);
		if (nv && !json_is_null(nv) && !json_is_string(nv)) {
			warn(c, path, "must be a string, not %s; port ignored", type_name(nv));
			continue;
		}
		if (json_is_string(nv) && json_string_length(nv) &&
		    (strlen(json_string_value(nv)) != json_string_length(nv) || !valid_label(json_string_value(nv)))) {
			q = quote(json_string_value(nv));
			warn(c, path, "%s is not a valid port name; port ignored", q);
			free(q);
			continue;
		}
		prv = json_object_get(p, "protocol");
		snprintf(path, sizeof(path), "%s[%zu].protocol", base, i);
		sp->proto = PROTO_TCP;
		if (prv && !json_is_null(prv) &&
		    (!json_is_string(prv) || proto_parse(json_string_value(prv), &sp->proto) < 0)) {
			q = json_is_string(prv) ? quote(json_string_value(prv)) : xstrdup(type_name(prv));
			warn(c, path, "%s is not TCP, UDP or SCTP; port ignored", q);
			free(q);
			continue;
		}
		sp->port = (uint16_t)port;
		sp->name = xstrdup(json_is_string(nv) ? json_string_value(nv) : "");
		s->n_ports++;
	}
}

static int check_service_label(struct dctx *c, const char *svcname)
{
	char *q;

	if (valid_subdomain(svcname))
		return 0;
	q = quote(svcname);
	fail(c, "metadata.labels[\"" LABEL_SERVICE_NAME "\"]", "%s is not a valid Service name", q);
	free(q);
	return -EINVAL;
}

int decode_endpoint_slice(const json_t *obj, const char *default_ns,
			  struct endpoint_slice **out, char **err)
{
	static const char *const types[] = { "IPv4", "IPv6", "FQDN", NULL };
	struct dctx c = { .err = err };
	struct endpoint_slice *s = xcalloc(1, sizeof(*s));
	const json_t *md, *labels, *eps, *ports;
	const char *svcname;
	int r, t;

	*out = NULL;
	if (err)
		*err = NULL;
	if ((r = decode_meta(&c, "EndpointSlice", obj, default_ns, &s->ns, &s->name, &md)) < 0)
		goto fail;
	if ((r = get_obj(&c, md, "labels", "metadata.labels", &labels)) < 0)
		goto fail;
	svcname = NULL;
	if (labels && (r = get_str(&c, labels, LABEL_SERVICE_NAME,
				   "metadata.labels[\"" LABEL_SERVICE_NAME "\"]", &svcname)) < 0)
		goto fail;
	if (!svcname || !*svcname) {
		r = fail(&c, "metadata.labels[\"" LABEL_SERVICE_NAME "\"]", "missing");
		goto fail;
	}
	if ((r = check_service_label(&c, svcname)) < 0)
		goto fail;
	s->service_name = xstrdup(svcname);
	if ((r = parse_enum(&c, obj, "addressType", "addressType", types, -1, &t)) < 0)
		goto fail;
	if (t < 0) {
		r = fail(&c, "addressType", "missing");
		goto fail;
	}
	s->family = t == 0 ? AF_INET : t == 1 ? AF_INET6 : 0;
	if ((r = get_arr(&c, obj, "endpoints", "endpoints", &eps)) < 0 ||
	    (r = get_arr(&c, obj, "ports", "ports", &ports)) < 0)
		goto fail;
	if (eps && s->family) {
		size_t n = json_array_size(eps);

		s->endpoints = n ? xcalloc(n, sizeof(*s->endpoints)) : NULL;
		for (size_t i = 0; i < n; i++)
			if (decode_endpoint(&c, json_array_get(eps, i), i, s->family, &s->endpoints[s->n_endpoints]))
				s->n_endpoints++;
			else {
				struct endpoint *e = &s->endpoints[s->n_endpoints];

				free(e->node_name);
				free(e->zone);
				memset(e, 0, sizeof(*e));
			}
	}
	if (ports)
		decode_slice_ports(&c, ports, "ports", s);
	free(c.what);
	*out = s;
	return 0;
fail:
	if (!s->ns)
		s->ns = xstrdup("");
	if (!s->name)
		s->name = xstrdup("");
	endpoint_slice_free(s);
	free(c.what);
	return r;
}

/* ---- v1 Endpoints ------------------------------------------------------- */

static void add_endpoints_address(struct dctx *c, const json_t *a, const char *path, bool ready,
				  struct endpoint_slice *v4, struct endpoint_slice *v6)
{
	const json_t *ip = json_is_object(a) ? json_object_get(a, "ip") : NULL;
	struct endpoint e = { 0 };
	struct endpoint_slice *s;
	char *q;

	if (!json_is_object(a)) {
		warn(c, path, "must be an object, not %s; ignored", type_name(a));
		return;
	}
	if (!json_is_string(ip) || addr_parse(json_string_value(ip), &e.addr) < 0) {
		q = json_is_string(ip) ? quote(json_string_value(ip)) : xstrdup(ip ? type_name(ip) : "missing");
		warn(c, path, "ip %s is not an IP address; ignored", q);
		free(q);
		return;
	}
	e.ready = e.serving = ready;
	e.terminating = false;
	e.node_name = get_token(c, a, "nodeName", path);
	s = e.addr.family == AF_INET ? v4 : v6;
	s->endpoints[s->n_endpoints++] = e;
}

int decode_endpoints(const json_t *obj, const char *default_ns,
		     struct endpoint_slice ***out, size_t *n_out, char **err)
{
	struct dctx c = { .err = err };
	struct endpoint_slice **res = NULL;
	size_t n_res = 0;
	const json_t *subsets;
	char *ns = NULL, *name = NULL;
	char path[96];
	int r;

	*out = NULL;
	*n_out = 0;
	if (err)
		*err = NULL;
	if ((r = decode_meta(&c, "Endpoints", obj, default_ns, &ns, &name, NULL)) < 0 ||
	    (r = get_arr(&c, obj, "subsets", "subsets", &subsets)) < 0)
		goto out;
	for (size_t i = 0; subsets && i < json_array_size(subsets); i++) {
		const json_t *sub = json_array_get(subsets, i), *ready, *notready, *ports;
		struct endpoint_slice *fam[2];
		size_t cap;

		snprintf(path, sizeof(path), "subsets[%zu]", i);
		if (!json_is_object(sub)) {
			warn(&c, path, "must be an object, not %s; ignored", type_name(sub));
			continue;
		}
		ready = json_object_get(sub, "addresses");
		notready = json_object_get(sub, "notReadyAddresses");
		ports = json_object_get(sub, "ports");
		if (ready && !json_is_null(ready) && !json_is_array(ready)) {
			snprintf(path, sizeof(path), "subsets[%zu].addresses", i);
			warn(&c, path, "must be an array, not %s; ignored", type_name(ready));
			ready = NULL;
		}
		if (notready && !json_is_null(notready) && !json_is_array(notready)) {
			snprintf(path, sizeof(path), "subsets[%zu].notReadyAddresses", i);
			warn(&c, path, "must be an array, not %s; ignored", type_name(notready));
			notready = NULL;
		}
		cap = json_array_size(ready) + json_array_size(notready);
		for (int f = 0; f < 2; f++) {
			fam[f] = xcalloc(1, sizeof(*fam[f]));
			fam[f]->ns = xstrdup(ns);
			fam[f]->service_name = xstrdup(name);
			fam[f]->family = f ? AF_INET6 : AF_INET;
			fam[f]->endpoints = cap ? xcalloc(cap, sizeof(struct endpoint)) : NULL;
		}
		for (size_t k = 0; k < json_array_size(ready); k++) {
			snprintf(path, sizeof(path), "subsets[%zu].addresses[%zu]", i, k);
			add_endpoints_address(&c, json_array_get(ready, k), path, true, fam[0], fam[1]);
		}
		for (size_t k = 0; k < json_array_size(notready); k++) {
			snprintf(path, sizeof(path), "subsets[%zu].notReadyAddresses[%zu]", i, k);
			add_endpoints_address(&c, json_array_get(notready, k), path, false, fam[0], fam[1]);
		}
		for (int f = 0; f < 2; f++) {
			if (!fam[f]->n_endpoints) {
				fam[f]->name = xstrdup("");
				endpoint_slice_free(fam[f]);
				continue;
			}
			if (json_is_array(ports)) {
				snprintf(path, sizeof(path), "subsets[%zu].ports", i);
				decode_slice_ports(&c, ports, path, fam[f]);
			}
			fam[f]->name = xasprintf("%s.endpoints-%zu", name, n_res);
			res = xrealloc(res, (n_res + 1) * sizeof(*res));
			res[n_res++] = fam[f];
		}
	}
	*out = res;
	*n_out = n_res;
	res = NULL;
out:
	free(res);
	free(ns);
	free(name);
	free(c.what);
	return r;
}

/* ---- Node --------------------------------------------------------------- */

int decode_node(const json_t *obj, struct node_info **out, char **err)
{
	struct dctx c = { .err = err };
	struct node_info *n = xcalloc(1, sizeof(*n));
	const json_t *md, *labels, *spec, *arr;
	const char *s;
	char path[64], *q;
	int r;

	*out = NULL;
	if (err)
		*err = NULL;
	if ((r = decode_meta(&c, "Node", obj, NULL, NULL, &n->name, &md)) < 0 ||
	    (r = get_obj(&c, md, "labels", "metadata.labels", &labels)) < 0 ||
	    (r = get_obj(&c, obj, "spec", "spec", &spec)) < 0)
		goto out;
	if (labels)
		n->zone = get_token(&c, labels, LABEL_ZONE, "metadata.labels");
	if ((r = get_str(&c, md, "deletionTimestamp", "metadata.deletionTimestamp", &s)) < 0)
		goto out;
	n->terminating = s && *s;
	if (spec && (r = get_arr(&c, spec, "taints", "spec.taints", &arr)) < 0)
		goto out;
	for (size_t i = 0; spec && arr && i < json_array_size(arr); i++) {
		const json_t *t = json_array_get(arr, i), *k = json_is_object(t) ? json_object_get(t, "key") : NULL;

		if (json_is_string(k) && strcmp(json_string_value(k), TAINT_TO_BE_DELETED) == 0)
			n->terminating = true;
	}
	if (spec && (r = get_arr(&c, spec, "podCIDRs", "spec.podCIDRs", &arr)) < 0)
		goto out;
	if (spec && arr) {
		for (size_t i = 0; i < json_array_size(arr); i++) {
			const json_t *v = json_array_get(arr, i);

			snprintf(path, sizeof(path), "spec.podCIDRs[%zu]", i);
			if (n->n_pod_cidrs >= 2) {
				warn(&c, path, "more than two pod CIDRs; ignored");
				break;
			}
			if (!json_is_string(v) || cidr_parse(json_string_value(v), true, &n->pod_cidrs[n->n_pod_cidrs]) < 0) {
				q = json_is_string(v) ? quote(json_string_value(v)) : xstrdup(type_name(v));
				warn(&c, path, "%s is not a CIDR; ignored", q);
				free(q);
				continue;
			}
			n->n_pod_cidrs++;
		}
	} else if (spec) {
		if ((r = get_str(&c, spec, "podCIDR", "spec.podCIDR", &s)) < 0)
			goto out;
		if (s && *s) {
			if (cidr_parse(s, true, &n->pod_cidrs[0]) < 0) {
				q = quote(s);
				warn(&c, "spec.podCIDR", "%s is not a CIDR; ignored", q);
				free(q);
			} else {
				n->n_pod_cidrs = 1;
			}
		}
	}
out:
	free(c.what);
	if (r < 0)
		node_info_free(n);
	else
		*out = n;
	return r;
}
