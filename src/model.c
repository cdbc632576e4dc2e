#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

static const char *const lower_names[] = { "tcp", "udp", "sctp" };
static const char *const upper_names[] = { "TCP", "UDP", "SCTP" };

const char *proto_lower(enum l4_proto p)
{
	return lower_names[p];
}

const char *proto_upper(enum l4_proto p)
{
	return upper_names[p];
}

int proto_parse(const char *s, enum l4_proto *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(upper_names); i++) {
		if (strcmp(s, upper_names[i]) == 0) {
			*out = (enum l4_proto)i;
			return 0;
		}
	}
	return -EINVAL;
}

void service_free(struct service *s)
{
	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->external_ips);
	free(s->lb_ips);
	free(s->lb_source_ranges);
	for (size_t i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	free(s);
}

static void endpoint_clear(struct endpoint *e)
{
	free(e->node_name);
	free(e->zone);
	for (size_t i = 0; i < e->n_hint_zones; i++)
		free(e->hint_zones[i]);
	free(e->hint_zones);
}

void endpoint_slice_free(struct endpoint_slice *s)
{
	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->service_name);
	for (size_t i = 0; i < s->n_endpoints; i++)
		endpoint_clear(&s->endpoints[i]);
	free(s->endpoints);
	for (size_t i = 0; i < s->n_ports; i++)
		free(s->ports[i].name);
	free(s->ports);
	free(s);
}

void node_info_free(struct node_info *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->zone);
	free(n);
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool node_info_rules_equal(const struct node_info *a, const struct node_info *b)
{
	if (!a || !b)
		return a == b;
	if (!str_eq(a->zone, b->zone) || a->n_pod_cidrs != b->n_pod_cidrs)
		return false;
	for (size_t i = 0; i < a->n_pod_cidrs; i++)
		if (a->pod_cidrs[i].prefix != b->pod_cidrs[i].prefix ||
		    !addr_equal(&a->pod_cidrs[i].base, &b->pod_cidrs[i].base))
			return false;
	return true;
}

bool service_equal(const struct service *a, const struct service *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) || a->type != b->type ||
	    a->headless != b->headless || a->affinity_client_ip != b->affinity_client_ip ||
	    a->affinity_timeout != b->affinity_timeout || a->etp_local != b->etp_local ||
	    a->itp_local != b->itp_local ||
	    a->health_check_node_port != b->health_check_node_port ||
	    !addr_list_equal(a->cluster_ips, a->n_cluster_ips, b->cluster_ips, b->n_cluster_ips) ||
	    !addr_list_equal(a->external_ips, a->n_external_ips, b->external_ips, b->n_external_ips) ||
	    !addr_list_equal(a->lb_ips, a->n_lb_ips, b->lb_ips, b->n_lb_ips) ||
	    a->n_lb_source_ranges != b->n_lb_source_ranges || a->n_ports != b->n_ports)
		return false;
	for (size_t i = 0; i < a->n_lb_source_ranges; i++)
		if (a->lb_source_ranges[i].prefix != b->lb_source_ranges[i].prefix ||
		    !addr_equal(&a->lb_source_ranges[i].base, &b->lb_source_ranges[i].base))
			return false;
	for (size_t i = 0; i < a->n_ports; i++) {
		const struct service_port *p = &a->ports[i], *q = &b->ports[i];

		if (!str_eq(p->name, q->name) || p->proto != q->proto || p->port != q->port ||
		    p->node_port != q->node_port)
			return false;
	}
	return true;
}

static bool endpoint_equal(const struct endpoint *a, const struct endpoint *b)
{
	if (!addr_equal(&a->addr, &b->addr) || a->ready != b->ready || a->serving != b->serving ||
	    a->terminating != b->terminating || !str_eq(a->node_name, b->node_name) ||
	    !str_eq(a->zone, b->zone) || a->n_hint_zones != b->n_hint_zones)
		return false;
	for (size_t i = 0; i < a->n_hint_zones; i++)
		if (!str_eq(a->hint_zones[i], b->hint_zones[i]))
			return false;
	return true;
}

bool endpoint_slice_equal(const struct endpoint_slice *a, const struct endpoint_slice *b)
{
	if (!str_eq(a->ns, b->ns) || !str_eq(a->name, b->name) ||
	    !str_eq(a->service_name, b->service_name) || a->family != b->family ||
	    a->n_endpoints != b->n_endpoints || a->n_ports != b->n_ports)
		return false;
	for (size_t i = 0; i < a->n_endpoints; i++)
		if (!endpoint_equal(&a->endpoints[i], &b->endpoints[i]))
			return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port)
			return false;
	return true;
}

static void *dup_array(const void *p, size_t n, size_t size)
{
	void *q;

	if (!n)
		return NULL;
	q = xmalloc(n * size);
	memcpy(q, p, n * size);
	return q;
}

struct service *service_dup(const struct service *s)
{
	struct service *d = xmalloc(sizeof(*d));

	*d = *s;
	d->ns = xstrdup(s->ns);
	d->name = xstrdup(s->name);
	d->external_ips = dup_array(s->external_ips, s->n_external_ips, sizeof(struct addr));
	d->lb_ips = dup_array(s->lb_ips, s->n_lb_ips, sizeof(struct addr));
	d->lb_source_ranges = dup_array(s->lb_source_ranges, s->n_lb_source_ranges, sizeof(struct cidr));
	d->ports = dup_array(s->ports, s->n_ports, sizeof(struct service_port));
	for (size_t i = 0; i < s->n_ports; i++)
		d->ports[i].name = xstrdup(s->ports[i].name);
	return d;
}
