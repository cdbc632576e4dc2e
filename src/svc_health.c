#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "svc_health.h"
#include "util.h"

struct hc_service {
	char *key;                /* "ns/name" */
	char *ns, *name;
	uint16_t port;
	int local_eps;
	struct svc_health *owner;
	struct http_server **srv;
	size_t n_srv;
};

struct svc_health {
	struct loop *loop;
	struct addr *ips;
	size_t n_ips;
	svc_health_proxy_fn proxy_healthy;
	void *arg;
	struct hc_service **svcs;  /* sorted by key */
	size_t n_svcs;
};

static const struct http_limits hc_limits = {
	.max_conns = 16,
	.max_head = 4096,
	.head_timeout_ms = 5000,
	.idle_timeout_ms = 15000,
	.write_timeout_ms = 5000,
};

struct svc_health *svc_health_new(struct loop *l, const struct addr *ips, size_t n_ips,
				  svc_health_proxy_fn proxy_healthy, void *arg)
{
	struct svc_health *sh = xcalloc(1, sizeof(*sh));

	sh->loop = l;
	if (n_ips) {
		sh->ips = xcalloc(n_ips, sizeof(*ips));
		memcpy(sh->ips, ips, n_ips * sizeof(*ips));
		sh->n_ips = n_ips;
	}
	sh->proxy_healthy = proxy_healthy;
	sh->arg = arg;
	return sh;
}

static void hc_handle(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct hc_service *hs = arg;
	struct svc_health *sh = hs->owner;
	bool proxy_ok = !sh->proxy_healthy || sh->proxy_healthy(sh->arg);

	resp->status = hs->local_eps > 0 && proxy_ok ? 200 : 503;
	resp->content_type = "application/json";
	resp->nosniff = true;
	sb_printf(&resp->body,
		  "{\n\t\"service\": {\n\t\t\"namespace\": \"%s\",\n\t\t\"name\": \"%s\"\n\t},\n"
		  "\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %s\n}",
		  hs->ns, hs->name, hs->local_eps, proxy_ok ? "true" : "false");
}

static void hc_close(struct hc_service *hs)
{
	for (size_t i = 0; i < hs->n_srv; i++)
		http_server_free(hs->srv[i]);
	free(hs->srv);
	free(hs->key);
	free(hs->ns);
	free(hs->name);
	free(hs);
}

static int listen_one(const struct addr *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (!ip || ip->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (ip)
			memcpy(&s6->sin6_addr, ip->bytes, 16);
		else
			s6->sin6_addr = in6addr_any;
		len = sizeof(*s6);
		fd = http_listen((struct sockaddr *)&ss, len);
		if (fd >= 0 || ip)
			return fd;
		/* No IPv6 on this host: fall back to the IPv4 wildcard. */
	}
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		memset(&ss, 0, sizeof(ss));
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (ip)
			memcpy(&s4->sin_addr, ip->bytes, 4);
		else
			s4->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*s4);
		return http_listen((struct sockaddr *)&ss, len);
	}
}

static struct hc_service *hc_open(struct svc_health *sh, const char *key, uint16_t port)
{
	struct hc_service *hs = xcalloc(1, sizeof(*hs));
	const char *slash = strchr(key, '/');
	size_t n = sh->n_ips ? sh->n_ips : 1;

	hs->key = xstrdup(key);
	hs->ns = slash ? xstrndup(key, (size_t)(slash - key)) : xstrdup("");
	hs->name = xstrdup(slash ? slash + 1 : key);
	hs->port = port;
	hs->owner = sh;
	hs->srv = xcalloc(n, sizeof(*hs->srv));
	for (size_t i = 0; i < n; i++) {
		const struct addr *ip = sh->n_ips ? &sh->ips[i] : NULL;
		char name[128], ipbuf[ADDR_STRLEN];
		int fd = listen_one(ip, port);

		if (fd < 0) {
			log_error("Failed to start healthcheck service=\"%s\" port=%u address=%s: %s",
				  key, port, ip ? addr_str(ip, ipbuf) : "*", strerror(-fd));
			hc_close(hs);
			return NULL;
		}
		snprintf(name, sizeof(name), "healthcheck %s:%u", key, port);
		hs->srv[hs->n_srv++] = http_server_new(sh->loop, name, fd, &hc_limits, hc_handle, hs);
	}
	log_v(2, "Opening healthcheck service=\"%s\" port=%u", key, port);
	return hs;
}

struct want {
	const char *key;
	uint16_t port;
	struct addr *ips;         /* distinct ready local endpoint IPs */
	size_t n_ips;
};

static int cmp_want(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->key, ((const struct want *)b)->key);
}

static void want_add_ip(struct want *w, const struct addr *ip)
{
	for (size_t i = 0; i < w->n_ips; i++)
		if (addr_equal(&w->ips[i], ip))
			return;
	w->ips = xrealloc(w->ips, (w->n_ips + 1) * sizeof(*w->ips));
	w->ips[w->n_ips++] = *ip;
}

void svc_health_sync(struct svc_health *sh, const struct proxy_state *ps)
{
	struct want *w = NULL;
	size_t n_w = 0, i, j;
	struct hc_service **out;
	size_t n_out = 0;

	/* Wanted services: eTP Local with a health check node port. */
	for (i = 0; ps && i < ps->n_ports; i++) {
		const struct svc_port_info *p = &ps->ports[i];
		struct want *cur = NULL;

		if (!p->svc || !p->svc->etp_local || !p->svc->health_check_node_port)
			continue;
		for (j = 0; j < n_w; j++)
			if (strcmp(w[j].key, p->key) == 0)
				cur = &w[j];
		if (!cur) {
			w = xrealloc(w, (n_w + 1) * sizeof(*w));
			cur = &w[n_w++];
			memset(cur, 0, sizeof(*cur));
			cur->key = p->key;
			cur->port = p->svc->health_check_node_port;
		}
		for (j = 0; j < p->n_eps; j++)
			if (p->eps[j].is_local && p->eps[j].ready)
				want_add_ip(cur, &p->eps[j].ip);
	}
	if (n_w)
		qsort(w, n_w, sizeof(*w), cmp_want);

	/* Merge the sorted lists: keep, reopen on a port change, close, open. */
	out = xcalloc(n_w + 1, sizeof(*out));
	i = j = 0;
	while (i < sh->n_svcs || j < n_w) {
		int c = i >= sh->n_svcs ? 1 : j >= n_w ? -1 : strcmp(sh->svcs[i]->key, w[j].key);
		struct hc_service *hs = NULL;

		if (c < 0 || (c == 0 && sh->svcs[i]->port != w[j].port)) {
			log_v(2, "Closing healthcheck service=\"%s\" port=%u", sh->svcs[i]->key, sh->svcs[i]->port);
			hc_close(sh->svcs[i]);
			i++;
			if (c < 0)
				continue;
			hs = hc_open(sh, w[j].key, w[j].port);
		} else if (c == 0) {
			hs = sh->svcs[i++];
		} else {
			hs = hc_open(sh, w[j].key, w[j].port);
		}
		if (hs) {
			if (hs->local_eps != (int)w[j].n_ips)
				log_v(3, "Reporting endpoints for healthcheck service=\"%s\" endpointCount=%zu",
				      hs->key, w[j].n_ips);
			hs->local_eps = (int)w[j].n_ips;
			out[n_out++] = hs;
		}
		j++;
	}
	free(sh->svcs);
	sh->svcs = out;
	sh->n_svcs = n_out;
	for (i = 0; i < n_w; i++)
		free(w[i].ips);
	free(w);
}

size_t svc_health_count(const struct svc_health *sh)
{
	return sh->n_svcs;
}

int svc_health_local_endpoints(const struct svc_health *sh, const char *key)
{
	for (size_t i = 0; i < sh->n_svcs; i++)
		if (strcmp(sh->svcs[i]->key, key) == 0)
			return sh->svcs[i]->local_eps;
	return -1;
}

void svc_health_free(struct svc_health *sh)
{
	if (!sh)
		return;
	for (size_t i = 0; i < sh->n_svcs; i++)
		hc_close(sh->svcs[i]);
	free(sh->svcs);
	free(sh->ips);
	free(sh);
}
