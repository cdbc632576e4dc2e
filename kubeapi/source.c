#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kubeapi/decode.h"
#include "kubeapi/http.h"
#include "kubeapi/kubeconfig.h"
#include "kubeapi/reflector.h"
#include "kubeapi/source.h"
#include "src/config.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/store.h"
#include "src/util.h"

/* Upstream's selector: skip Services handled by another proxy and headless
 * Services' slices. */
#define PROXY_SELECTOR "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"

struct kube_source {
	struct loop *loop;
	struct store *store;
	const struct config *cfg;
	struct kube_source_cbs cbs;
	struct kube_conn *conn;
	struct http *http;
	struct reflector *services, *slices, *node;
	struct loop_timer *notify;     /* delivers cbs.changed outside curl callbacks */
	bool svc_listed, slices_listed, node_listed, ready;
};

static void note_changed(void *arg)
{
	struct kube_source *ks = arg;

	if (!loop_timer_armed(ks->notify))
		loop_timer_arm(ks->notify, 0);
}

static void on_notify(struct loop *l, struct loop_timer *t, void *arg)
{
	struct kube_source *ks = arg;

	if (ks->cbs.changed)
		ks->cbs.changed(ks->cbs.arg);
}

static void check_ready(struct kube_source *ks)
{
	if (ks->ready || !ks->svc_listed || !ks->slices_listed)
		return;
	ks->ready = true;
	log_info("Services and EndpointSlices listed: %zu services, %zu slices",
		 store_n_services(ks->store), store_n_slices(ks->store));
	if (ks->cbs.ready)
		ks->cbs.ready(ks->cbs.arg);
}

/* ---- Services ---- */

/* The API server allocates ClusterIPs; we only warn when one lies outside
 * --service-cluster-ip-range (a misconfigured node), once per new address. */
static void warn_outside_range(const struct kube_source *ks, const struct service *svc)
{
	const struct service *old = store_get_service(ks->store, svc->ns, svc->name);
	const struct config *c = ks->cfg;

	for (size_t i = 0; i < svc->n_cluster_ips; i++) {
		const struct addr *ip = &svc->cluster_ips[i];
		bool known = false, inside = false, family_known = false;
		char a[ADDR_STRLEN];

		for (size_t j = 0; old && j < old->n_cluster_ips; j++)
			known = known || addr_equal(&old->cluster_ips[j], ip);
		for (size_t j = 0; j < c->n_service_cidrs; j++) {
			if (c->service_cidrs[j].base.family != ip->family)
				continue;
			family_known = true;
			inside = inside || cidr_contains(&c->service_cidrs[j], ip);
		}
		if (!known && family_known && !inside)
			log_warn("Service %s/%s: ClusterIP %s is outside --service-cluster-ip-range %s",
				 svc->ns, svc->name, addr_str(ip, a),
				 c->service_cidr_str ? c->service_cidr_str : "");
	}
}

static int svc_upsert(void *arg, const json_t *obj, char **err)
{
	struct kube_source *ks = arg;
	struct service *svc;
	int r = decode_service(obj, NULL, &svc, err);

	if (r < 0)
		return r;
	if (ks->cfg)
		warn_outside_range(ks, svc);
	store_upsert_service(ks->store, svc);
	return 0;
}

static void svc_remove(void *arg, const char *ns, const char *name)
{
	struct kube_source *ks = arg;

	store_delete_service(ks->store, ns, name);
}

static void svc_listed(void *arg)
{
	struct kube_source *ks = arg;

	if (!ks->svc_listed)
		log_info("Caches are synced for service config");
	ks->svc_listed = true;
	check_ready(ks);
}

static const struct reflector_ops svc_ops = {
	.upsert = svc_upsert,
	.remove = svc_remove,
	.listed = svc_listed,
	.changed = note_changed,
};

/* ---- EndpointSlices ---- */

static int slice_upsert(void *arg, const json_t *obj, char **err)
{
	struct kube_source *ks = arg;
	struct endpoint_slice *sl;
	int r = decode_endpoint_slice(obj, NULL, &sl, err);

	if (r < 0)
		return r;
	if (!sl->family) {
		/* addressType FQDN: not ours; drop any earlier version. */
		store_delete_slice(ks->store, sl->ns, sl->name);
		endpoint_slice_free(sl);
		return 0;
	}
	store_upsert_slice(ks->store, sl);
	return 0;
}

static void slice_remove(void *arg, const char *ns, const char *name)
{
	struct kube_source *ks = arg;

	store_delete_slice(ks->store, ns, name);
}

static void slices_listed(void *arg)
{
	struct kube_source *ks = arg;

	if (!ks->slices_listed)
		log_info("Caches are synced for endpoint slice config");
	ks->slices_listed = true;
	check_ready(ks);
}

static const struct reflector_ops slice_ops = {
	.upsert = slice_upsert,
	.remove = slice_remove,
	.listed = slices_listed,
	.changed = note_changed,
};

/* ---- our Node ---- */

static int node_upsert(void *arg, const json_t *obj, char **err)
{
	struct kube_source *ks = arg;
	struct node_info *n;
	int r = decode_node(obj, &n, err);

	if (r < 0)
		return r;
	store_set_node(ks->store, n);
	return 0;
}

static void node_remove(void *arg, const char *ns, const char *name)
{
	struct kube_source *ks = arg;

	store_set_node(ks->store, NULL);
}

static void node_listed(void *arg)
{
	struct kube_source *ks = arg;

	if (!ks->node_listed)
		log_info("Caches are synced for node config");
	ks->node_listed = true;
}

static const struct reflector_ops node_ops = {
	.upsert = node_upsert,
	.remove = node_remove,
	.listed = node_listed,
	.changed = note_changed,
};

/* ---- lifetime ---- */

static int resolve_conn(const struct config *cfg, const struct kube_source_opts *o,
			struct kube_conn **out, char **err)
{
	int r = 0;

	if (cfg->kubeconfig && *cfg->kubeconfig) {
		r = kubeconfig_load(cfg->kubeconfig, NULL, out, err);
		if (r == 0 && cfg->master && *cfg->master)
			kube_conn_set_server(*out, cfg->master);
	} else if (cfg->master && *cfg->master) {
		*out = kube_conn_plain(cfg->master);
	} else {
		log_info("Neither kubeconfig file nor master URL was specified, falling back to in-cluster config");
		r = kube_conn_incluster(o ? o->sa_dir : NULL, out, err);
	}
	if (r == 0 && !str_has_prefix((*out)->server, "https://") &&
	    !str_has_prefix((*out)->server, "http://")) {
		*err = xasprintf("API server URL \"%s\" must start with https:// or http://",
				 (*out)->server);
		kube_conn_free(*out);
		*out = NULL;
		r = -EINVAL;
	}
	return r;
}

struct kube_source *kube_source_open_opts(struct loop *l, struct store *st, const struct config *cfg,
					  const struct kube_source_cbs *cbs,
					  const struct kube_source_opts *o, char **err)
{
	struct kube_source *ks = xcalloc(1, sizeof(*ks));
	struct reflector_cfg rc = { 0 };
	char *sel = NULL, *field = NULL, *esc, *rerr = NULL;

	*err = NULL;
	ks->loop = l;
	ks->store = st;
	ks->cfg = cfg;
	if (cbs)
		ks->cbs = *cbs;
	if (resolve_conn(cfg, o, &ks->conn, err) < 0)
		goto fail;
	if (kube_conn_refresh(ks->conn, false, &rerr) < 0) {
		/* Not fatal: a rotating token or a plugin may work later. */
		log_error("%s", rerr);
		free(rerr);
	}
	ks->http = http_new(l);
	if (!ks->http) {
		*err = xstrdup("cannot initialise libcurl");
		goto fail;
	}
	ks->notify = loop_timer_new(l, on_notify, ks);

	if (o) {
		rc.max_line = o->max_line;
		rc.page_size = o->page_size;
		rc.watch_timeout_s = o->watch_timeout_s;
		rc.backoff_min_ms = o->backoff_min_ms;
		rc.backoff_max_ms = o->backoff_max_ms;
	}
	esc = curl_easy_escape(NULL, PROXY_SELECTOR, 0);
	sel = xasprintf("labelSelector=%s", esc);
	curl_free(esc);

	rc.kind = "*v1.Service";
	rc.resource = "services";
	rc.path = "/api/v1/services";
	rc.query = sel;
	ks->services = reflector_new(l, ks->http, ks->conn, &rc, &svc_ops, ks);
	rc.kind = "*v1.EndpointSlice";
	rc.resource = "endpointslices";
	rc.path = "/apis/discovery.k8s.io/v1/endpointslices";
	ks->slices = reflector_new(l, ks->http, ks->conn, &rc, &slice_ops, ks);
	if (cfg->node_name && *cfg->node_name) {
		char *f = xasprintf("metadata.name=%s", cfg->node_name);

		esc = curl_easy_escape(NULL, f, 0);
		field = xasprintf("fieldSelector=%s", esc);
		curl_free(esc);
		free(f);
		rc.kind = "*v1.Node";
		rc.resource = "nodes";
		rc.path = "/api/v1/nodes";
		rc.query = field;
		ks->node = reflector_new(l, ks->http, ks->conn, &rc, &node_ops, ks);
	}
	free(sel);
	free(field);
	/* Upstream's start-up phrases, for operators who grep for them. */
	log_info("Starting service config controller");
	reflector_start(ks->services);
	log_info("Starting endpoint slice config controller");
	reflector_start(ks->slices);
	if (ks->node) {
		log_info("Starting node config controller");
		reflector_start(ks->node);
	}
	return ks;
fail:
	kube_source_close(ks);
	return NULL;
}

struct kube_source *kube_source_open(struct loop *l, struct store *st, const struct config *cfg,
				     const struct kube_source_cbs *cbs, char **err)
{
	return kube_source_open_opts(l, st, cfg, cbs, NULL, err);
}

const char *kube_source_server(const struct kube_source *ks)
{
	return ks->conn->server;
}

void kube_source_close(struct kube_source *ks)
{
	if (!ks)
		return;
	reflector_free(ks->services);
	reflector_free(ks->slices);
	reflector_free(ks->node);
	http_free(ks->http);
	loop_timer_free(ks->notify);
	kube_conn_free(ks->conn);
	free(ks);
}
