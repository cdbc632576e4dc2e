/* The manifest directory source.
 *
 * Every file (*.yaml, *.yml, *.json; dotfiles ignored) is parsed into
 * "items": one per store object (a Service, an EndpointSlice, or one of the
 * slices a v1 Endpoints turns into). A file keeps the items of its last
 * good parse; an object that fails to decode keeps its previous items (same
 * kind and ns/name) while the rest of the file moves on. Each rescan then
 * builds the wanted set over all files in name order (the first file
 * holding an object wins, later ones are reported), and applies the
 * difference to the store. Items carry a serial that only changes when
 * their content does, so an unchanged object is never re-delivered.
 *
 * If the directory disappears, its last content keeps being served and the
 * watch is re-established once the directory is back. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../kubeapi/decode.h"
#include "allocator.h"
#include "log.h"
#include "loop.h"
#include "manifests.h"
#include "store.h"
#include "strmap.h"
#include "util.h"
#include "yamljson.h"

#define DEBOUNCE_MS 100
#define REWATCH_MS 1000
#define MAX_FILE_SIZE (64u << 20)
#define MAX_LIST_DEPTH 4
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | \
		    IN_DELETE_SELF | IN_MOVE_SELF)

struct item {
	bool is_slice;
	char *key;                /* "ns/name" in the store */
	char *origin;             /* "Service default/web", "Endpoints default/web" */
	unsigned long long serial;
	bool fresh;               /* created by the current rescan */
	struct service *svc;      /* cluster IPs as written in the manifest */
	int fams[2];
	size_t n_fams;
	int dual;
	struct endpoint_slice *slice;
};

struct mfile {
	char *name;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool seen;
	bool parsed;              /* stat fields are valid */
	bool racy;                /* modified too recently to trust the stat */
	bool have_hash;
	uint64_t hash;            /* FNV-1a of the content last parsed */
	bool had_errors;          /* last parse reported an error */
	struct item **items;
	size_t n_items;
};

/* What the store currently holds from us, per store key. */
struct delivered {
	unsigned long long serial;
	char *file;
	struct addr ips[2];
	size_t n_ips;
};

/* A Service that could not be delivered (allocation error). */
struct failure {
	unsigned long long serial;
	char *msg;
};

struct manifest_source {
	struct loop *loop;
	struct store *st;
	struct allocator *alloc;
	char *dir;
	manifests_changed_cb cb;
	void *arg;
	struct strmap files;      /* name -> struct mfile */
	struct strmap out_svc;    /* key -> struct delivered */
	struct strmap out_slice;  /* key -> struct delivered */
	struct strmap failed;     /* service key -> struct failure */
	unsigned long long next_serial;
	bool dir_ok;
	bool pruned;
	int ifd, wd;
	struct loop_timer *debounce, *rewatch;
};

/* One wanted store object during a rescan. */
struct want {
	struct item *item;
	struct mfile *file;
};

/* ---- items -------------------------------------------------------------- */

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->key);
	free(it->origin);
	service_free(it->svc);
	endpoint_slice_free(it->slice);
	free(it);
}

static void file_clear_items(struct mfile *f)
{
	for (size_t i = 0; i < f->n_items; i++)
		item_free(f->items[i]);
	free(f->items);
	f->items = NULL;
	f->n_items = 0;
}

static void file_free(struct mfile *f)
{
	file_clear_items(f);
	free(f->name);
	free(f);
}

static struct endpoint_slice *slice_dup(const struct endpoint_slice *s)
{
	struct endpoint_slice *d = xcalloc(1, sizeof(*d));

	d->ns = xstrdup(s->ns);
	d->name = xstrdup(s->name);
	d->service_name = xstrdup(s->service_name);
	d->family = s->family;
	d->n_endpoints = s->n_endpoints;
	d->endpoints = s->n_endpoints ? xcalloc(s->n_endpoints, sizeof(*d->endpoints)) : NULL;
	for (size_t i = 0; i < s->n_endpoints; i++) {
		const struct endpoint *e = &s->endpoints[i];
		struct endpoint *o = &d->endpoints[i];

		*o = *e;
		o->node_name = e->node_name ? xstrdup(e->node_name) : NULL;
		o->zone = e->zone ? xstrdup(e->zone) : NULL;
		o->hint_zones = e->n_hint_zones ? xcalloc(e->n_hint_zones, sizeof(char *)) : NULL;
		for (size_t k = 0; k < e->n_hint_zones; k++)
			o->hint_zones[k] = xstrdup(e->hint_zones[k]);
	}
	d->n_ports = s->n_ports;
	d->ports = s->n_ports ? xcalloc(s->n_ports, sizeof(*d->ports)) : NULL;
	for (size_t i = 0; i < s->n_ports; i++) {
		d->ports[i] = s->ports[i];
		d->ports[i].name = xstrdup(s->ports[i].name);
	}
	return d;
}

static bool item_same(const struct item *a, const struct item *b)
{
	if (a->is_slice != b->is_slice || strcmp(a->key, b->key) != 0 || strcmp(a->origin, b->origin) != 0)
		return false;
	if (a->is_slice)
		return endpoint_slice_equal(a->slice, b->slice);
	return service_equal(a->svc, b->svc) && a->n_fams == b->n_fams && a->dual == b->dual &&
	       (a->n_fams < 1 || a->fams[0] == b->fams[0]) && (a->n_fams < 2 || a->fams[1] == b->fams[1]);
}

/* ---- parsing one file --------------------------------------------------- */

struct parse {
	struct manifest_source *m;
	struct mfile *f;
	const char *path;
	struct item **old;        /* previous items; taken ones become NULL */
	size_t n_old;
	struct strmap old_by_key; /* "S:key" / "E:key" -> index + 1 into old */
	struct item **items;      /* new items */
	size_t n_items, cap;
};

static void parse_add(struct parse *p, struct item *it)
{
	char *k = xasprintf("%c:%s", it->is_slice ? 'E' : 'S', it->key);
	size_t idx = (size_t)(uintptr_t)strmap_get(&p->old_by_key, k);

	/* Same content as before: keep the old serial so it is not re-sent. */
	if (idx && p->old[idx - 1] && item_same(p->old[idx - 1], it)) {
		it->serial = p->old[idx - 1]->serial;
		it->fresh = false;
	} else {
		it->serial = ++p->m->next_serial;
		it->fresh = true;
	}
	free(k);
	if (p->n_items == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
	}
	p->items[p->n_items++] = it;
}

/* The object named by origin failed: keep serving its previous items. */
static bool parse_keep_old(struct parse *p, const char *origin)
{
	bool kept = false;

	for (size_t i = 0; i < p->n_old; i++) {
		struct item *it = p->old[i];

		if (!it || strcmp(it->origin, origin) != 0)
			continue;
		p->old[i] = NULL;
		it->fresh = false;
		if (p->n_items == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 8;
			p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
		}
		p->items[p->n_items++] = it;
		kept = true;
	}
	return kept;
}

static void object_failed(struct parse *p, const char *kind, const json_t *obj, const char *where,
			  const char *msg)
{
	char *ref = object_ref(obj, "default");
	char *origin = xasprintf("%s %s", kind, ref);
	bool kept = parse_keep_old(p, origin);

	log_error("%s: %s: %s; %s", p->path, where, msg,
		  kept ? "keeping its previous version" : "object ignored");
	p->f->had_errors = true;
	free(origin);
	free(ref);
}

static bool api_version_ok(struct parse *p, const json_t *obj, const char *kind, const char *want,
			   const char *where)
{
	const json_t *v = json_object_get(obj, "apiVersion");
	char *msg;

	if (!v || (json_is_string(v) && strcmp(json_string_value(v), want) == 0))
		return true;
	msg = xasprintf("apiVersion: %s%s%s is not supported for %s (use %s)", json_is_string(v) ? "\"" : "",
			json_is_string(v) ? json_string_value(v) : "not a string", json_is_string(v) ? "\"" : "",
			kind, want);
	object_failed(p, kind, obj, where, msg);
	free(msg);
	return false;
}

static struct item *new_item(bool is_slice, const char *ns, const char *name, const char *origin)
{
	struct item *it = xcalloc(1, sizeof(*it));

	it->is_slice = is_slice;
	it->key = xasprintf("%s/%s", ns, name);
	it->origin = xstrdup(origin);
	return it;
}

static void parse_object(struct parse *p, const json_t *obj, const char *where, int depth)
{
	const json_t *kindv;
	const char *kind;
	char *err = NULL, *ref;

	if (!json_is_object(obj)) {
		if (!json_is_null(obj)) {
			log_error("%s: %s: not an object; ignored", p->path, where);
			p->f->had_errors = true;
		}
		return;
	}
	kindv = json_object_get(obj, "kind");
	if (!json_is_string(kindv)) {
		log_error("%s: %s: no kind; ignored", p->path, where);
		p->f->had_errors = true;
		return;
	}
	kind = json_string_value(kindv);
	if (str_has_suffix(kind, "List") && json_is_array(json_object_get(obj, "items"))) {
		const json_t *items = json_object_get(obj, "items");

		if (depth >= MAX_LIST_DEPTH) {
			log_error("%s: %s: lists nested too deeply; ignored", p->path, where);
			p->f->had_errors = true;
			return;
		}
		for (size_t i = 0; i < json_array_size(items); i++) {
			char *w = xasprintf("%s items[%zu]", where, i);

			parse_object(p, json_array_get(items, i), w, depth + 1);
			free(w);
		}
		return;
	}
	ref = object_ref(obj, "default");
	if (strcmp(kind, "Service") == 0) {
		struct service *svc;

		if (api_version_ok(p, obj, kind, "v1", where)) {
			if (decode_service(obj, "default", &svc, &err) < 0) {
				object_failed(p, kind, obj, where, err);
			} else {
				char *origin = xasprintf("Service %s", ref);
				struct item *it = new_item(false, svc->ns, svc->name, origin);

				it->svc = svc;
				decode_service_families(obj, it->fams, &it->n_fams, &it->dual);
				parse_add(p, it);
				free(origin);
			}
		}
	} else if (strcmp(kind, "EndpointSlice") == 0) {
		struct endpoint_slice *s;

		if (api_version_ok(p, obj, kind, "discovery.k8s.io/v1", where)) {
			if (decode_endpoint_slice(obj, "default", &s, &err) < 0) {
				object_failed(p, kind, obj, where, err);
			} else {
				char *origin = xasprintf("EndpointSlice %s", ref);
				struct item *it = new_item(true, s->ns, s->name, origin);

				it->slice = s;
				parse_add(p, it);
				free(origin);
			}
		}
	} else if (strcmp(kind, "Endpoints") == 0) {
		struct endpoint_slice **v;
		size_t n;

		if (api_version_ok(p, obj, kind, "v1", where)) {
			if (decode_endpoints(obj, "default", &v, &n, &err) < 0) {
				object_failed(p, kind, obj, where, err);
			} else {
				char *origin = xasprintf("Endpoints %s", ref);

				for (size_t i = 0; i < n; i++) {
					struct item *it = new_item(true, v[i]->ns, v[i]->name, origin);

					it->slice = v[i];
					parse_add(p, it);
				}
				free(v);
				free(origin);
			}
		}
	} else {
		log_warn("%s: %s: %s %s ignored (only Service, EndpointSlice and Endpoints are used)",
			 p->path, where, kind, ref);
	}
	free(err);
	free(ref);
}

/* Re-reads one file. On a read or parse error the file keeps its items. */
static void parse_file(struct manifest_source *m, struct mfile *f, const char *path)
{
	struct parse p = { .m = m, .f = f, .path = path };
	char *buf = NULL, *err = NULL;
	json_t *docs;
	uint64_t hash;
	size_t len;
	int r;

	if ((size_t)f->size > MAX_FILE_SIZE) {
		log_error("%s: larger than %u MiB; %s", path, MAX_FILE_SIZE >> 20,
			  f->n_items ? "keeping its last good content" : "ignored");
		f->had_errors = true;
		return;
	}
	r = read_file(path, &buf, &len);
	if (r < 0) {
		log_error("%s: %s; %s", path, strerror(-r), f->n_items ? "keeping its last good content" : "ignored");
		f->had_errors = true;
		f->have_hash = false;
		return;
	}
	/* Same bytes as last time (a touch, a racy re-read): nothing to do,
	 * and nothing to report again. */
	hash = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++)
		hash = (hash ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
	if (f->have_hash && f->hash == hash) {
		free(buf);
		return;
	}
	f->hash = hash;
	f->have_hash = true;
	docs = yaml_to_json(buf, len, &err);
	free(buf);
	if (!docs) {
		log_error("%s: %s; %s", path, err ? err : "cannot parse",
			  f->n_items ? "keeping its last good content" : "ignored");
		free(err);
		f->had_errors = true;
		return;
	}
	f->had_errors = false;
	p.old = f->items;
	p.n_old = f->n_items;
	strmap_init(&p.old_by_key);
	for (size_t i = 0; i < p.n_old; i++) {
		char *k = xasprintf("%c:%s", p.old[i]->is_slice ? 'E' : 'S', p.old[i]->key);

		strmap_put(&p.old_by_key, k, (void *)(uintptr_t)(i + 1));
		free(k);
	}
	for (size_t i = 0; i < json_array_size(docs); i++) {
		char *where = xasprintf("document %zu", i + 1);

		parse_object(&p, json_array_get(docs, i), where, 0);
		free(where);
	}
	json_decref(docs);
	for (size_t i = 0; i < p.n_old; i++)
		item_free(p.old[i]);
	free(p.old);
	strmap_free(&p.old_by_key);
	f->items = p.items;
	f->n_items = p.n_items;
}

/* ---- directory scan ----------------------------------------------------- */

static bool wanted_name(const char *name)
{
	if (name[0] == '.')
		return false;
	return str_has_suffix(name, ".yaml") || str_has_suffix(name, ".yml") || str_has_suffix(name, ".json");
}

/* Sorted names of candidate files; -errno if the directory is unreadable. */
static int list_dir(const char *dir, char ***out, size_t *n_out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	*n_out = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!wanted_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_strp);
	*out = v;
	*n_out = n;
	return 0;
}

static bool same_stat(const struct mfile *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void split_key(const char *key, char **ns, char **name)
{
	const char *slash = strchr(key, '/');

	*ns = xstrndup(key, (size_t)(slash - key));
	*name = xstrdup(slash + 1);
}

static char *ips_text(const struct addr *ips, size_t n)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	if (n == 0)
		return xstrdup("no ClusterIP");
	if (n == 1)
		return xasprintf("ClusterIP %s", addr_str(&ips[0], a));
	return xasprintf("ClusterIPs %s, %s", addr_str(&ips[0], a), addr_str(&ips[1], b));
}

static const char *family_name(int f)
{
	return f == AF_INET ? "IPv4" : "IPv6";
}

/* ---- ClusterIPs --------------------------------------------------------- */

/* Makes key hold exactly the addresses in want (no-op if it already does). */
static void alloc_set(struct allocator *al, const char *key, const struct addr *want, size_t n_want)
{
	size_t n_held = 0, n_match = 0;

	for (int f = 0; f < 2; f++) {
		const struct addr *a = allocator_lookup(al, key, f ? AF_INET6 : AF_INET);

		if (!a)
			continue;
		n_held++;
		for (size_t i = 0; i < n_want; i++)
			if (addr_equal(a, &want[i]))
				n_match++;
	}
	if (n_held == n_want && n_match == n_want)
		return;
	allocator_release(al, key);
	for (size_t i = 0; i < n_want; i++)
		allocator_request(al, key, &want[i], NULL);
}

/* Fills svc->cluster_ips from the allocator: requested addresses are
 * reserved, missing ones assigned, per family in spec.ipFamilies order
 * (default: IPv4, else IPv6), both families for dual-stack policies.
 * 0, or -errno with *err and the key's previous addresses restored. */
static int allocate_ips(struct manifest_source *m, const struct item *it, const char *key,
			struct service *svc, char **err)
{
	struct allocator *al = m->alloc;
	struct addr prev[2] = { 0 }, got[2] = { 0 };
	size_t n_prev = 0, n_got = 0, n_order = 0, n_explicit, want;
	int order[2];
	char buf[ADDR_STRLEN];
	int r = 0;

	for (int f = 0; f < 2; f++) {
		const struct addr *a = allocator_lookup(al, key, f ? AF_INET6 : AF_INET);

		if (a)
			prev[n_prev++] = *a;
	}
	if (svc->type == SVC_EXTERNAL_NAME || svc->headless) {
		allocator_release(al, key);
		svc->n_cluster_ips = 0;
		return 0;
	}
	if (it->n_fams) {
		for (size_t i = 0; i < it->n_fams; i++)
			order[n_order++] = it->fams[i];
	} else {
		for (size_t i = 0; i < svc->n_cluster_ips; i++)
			order[n_order++] = svc->cluster_ips[i].family;
	}
	n_explicit = n_order;
	if (n_order == 0)
		order[n_order++] = AF_INET;
	if (n_order == 1)
		order[n_order++] = order[0] == AF_INET ? AF_INET6 : AF_INET;
	want = it->dual || n_explicit == 2 ? 2 : 1;

	for (size_t i = 0; i < n_order && n_got < want; i++) {
		const struct addr *req = NULL;
		struct addr a;

		for (size_t k = 0; k < svc->n_cluster_ips; k++)
			if (svc->cluster_ips[k].family == order[i])
				req = &svc->cluster_ips[k];
		if (req) {
			const char *holder = NULL;
			const char *field = req == &svc->cluster_ips[0] ? "spec.clusterIP" : "spec.clusterIPs[1]";

			r = allocator_request(al, key, req, &holder);
			if (r == -EEXIST)
				*err = xasprintf("Service %s: %s: %s is already allocated to Service %s", key, field,
						 addr_str(req, buf), holder);
			else if (r == -ERANGE)
				*err = xasprintf("Service %s: %s: %s is outside the service-cluster-ip-range "
						 "(or is its network or broadcast address)", key, field, addr_str(req, buf));
			else if (r < 0)
				*err = xasprintf("Service %s: %s: %s cannot be allocated: %s", key, field,
						 addr_str(req, buf), strerror(-r));
			if (r < 0)
				goto fail;
			got[n_got++] = *req;
			continue;
		}
		r = allocator_assign(al, key, order[i], &a);
		if (r == -EAFNOSUPPORT) {
			/* A family the Service named must exist, except the
			 * second one of PreferDualStack. */
			if (i >= n_explicit || (i > 0 && it->dual == 1)) {
				r = 0;
				continue;
			}
			*err = xasprintf("Service %s: spec.ipFamilies: no service-cluster-ip-range of family %s",
					 key, family_name(order[i]));
			goto fail;
		}
		if (r == -ENOSPC)
			*err = xasprintf("Service %s: no free %s ClusterIP left in the service-cluster-ip-range",
					 key, family_name(order[i]));
		else if (r < 0)
			*err = xasprintf("Service %s: cannot allocate a ClusterIP: %s", key, strerror(-r));
		if (r < 0)
			goto fail;
		got[n_got++] = a;
	}
	if (!n_got || (it->dual == 2 && n_got < 2)) {
		*err = xasprintf("Service %s: %s", key, n_got ? "spec.ipFamilyPolicy: RequireDualStack needs a "
				 "service-cluster-ip-range of each family" : "no service-cluster-ip-range to allocate "
				 "a ClusterIP from");
		r = -EAFNOSUPPORT;
		goto fail;
	}
	/* Drops an address of a family the Service no longer uses. */
	alloc_set(al, key, got, n_got);
	memcpy(svc->cluster_ips, got, sizeof(got));
	svc->n_cluster_ips = n_got;
	return 0;
fail:
	alloc_set(al, key, prev, n_prev);
	return r < 0 ? r : -EINVAL;
}

/* ---- applying ----------------------------------------------------------- */

static void delivered_free(struct delivered *d)
{
	if (d) {
		free(d->file);
		free(d);
	}
}

static void failure_free(struct failure *f)
{
	if (f) {
		free(f->msg);
		free(f);
	}
}

/* Delivers one service item; 0 or -errno with *err (nothing changed then). */
static int deliver_service(struct manifest_source *m, const struct want *w, char **err)
{
	struct item *it = w->item;
	struct delivered *d = strmap_get(&m->out_svc, it->key);
	struct service *svc = service_dup(it->svc);
	char *ips;
	int r;

	*err = NULL;
	if (m->alloc && (r = allocate_ips(m, it, it->key, svc, err)) < 0) {
		service_free(svc);
		return r;
	}
	ips = svc->type == SVC_EXTERNAL_NAME ? xstrdup("ExternalName, not proxied")
	      : svc->headless ? xstrdup("headless, not proxied") : ips_text(svc->cluster_ips, svc->n_cluster_ips);
	if (!d) {
		d = xcalloc(1, sizeof(*d));
		strmap_put(&m->out_svc, it->key, d);
		log_info("Service %s added from %s (%s)", it->key, w->file->name, ips);
	} else {
		log_info("Service %s changed in %s (%s)", it->key, w->file->name, ips);
	}
	free(ips);
	d->serial = it->serial;
	free(d->file);
	d->file = xstrdup(w->file->name);
	memcpy(d->ips, svc->cluster_ips, sizeof(d->ips));
	d->n_ips = svc->n_cluster_ips;
	store_upsert_service(m->st, svc);
	return 0;
}

static void deliver_slice(struct manifest_source *m, const struct want *w)
{
	struct item *it = w->item;
	struct delivered *d = strmap_get(&m->out_slice, it->key);

	if (!d) {
		d = xcalloc(1, sizeof(*d));
		strmap_put(&m->out_slice, it->key, d);
		log_info("EndpointSlice %s added from %s (%zu endpoints, Service %s)", it->key, w->file->name,
			 it->slice->n_endpoints, it->slice->service_name);
	} else {
		log_info("EndpointSlice %s changed in %s (%zu endpoints)", it->key, w->file->name,
			 it->slice->n_endpoints);
	}
	d->serial = it->serial;
	free(d->file);
	d->file = xstrdup(w->file->name);
	store_upsert_slice(m->st, slice_dup(it->slice));
}

struct plan {
	struct strmap svc, slice;            /* key -> struct want */
	struct want **order;                 /* wanted objects in file order */
	size_t n, cap;
};

static void plan_add(struct manifest_source *m, struct plan *pl, struct mfile *f, struct item *it)
{
	struct strmap *map = it->is_slice ? &pl->slice : &pl->svc;
	struct want *prev = strmap_get(map, it->key), *w;
	char *path;

	if (prev) {
		if (it->fresh || prev->item->fresh) {
			path = xasprintf("%s/%s", m->dir, f->name);
			log_error("%s: %s is already defined in %s; this one is ignored", path,
				  it->origin, prev->file->name);
			free(path);
		}
		return;
	}
	w = xmalloc(sizeof(*w));
	w->item = it;
	w->file = f;
	strmap_put(map, it->key, w);
	if (pl->n == pl->cap) {
		pl->cap = pl->cap ? pl->cap * 2 : 64;
		pl->order = xrealloc(pl->order, pl->cap * sizeof(*pl->order));
	}
	pl->order[pl->n++] = w;
}

static void plan_free(struct plan *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->order[i]);
	free(pl->order);
	strmap_free(&pl->svc);
	strmap_free(&pl->slice);
}

static bool keep_wanted(const char *key, void *arg)
{
	return strmap_get(arg, key) != NULL;
}

/* Removes what is no longer wanted; returns the number of store changes. */
static size_t apply_deletes(struct manifest_source *m, struct plan *pl)
{
	const char *k;
	void *v;
	char **gone = NULL;
	size_t n_gone = 0, changes = 0;

	for (int kind = 0; kind < 3; kind++) {
		struct strmap *out = kind == 0 ? &m->out_svc : kind == 1 ? &m->out_slice : &m->failed;
		struct strmap *want = kind == 1 ? &pl->slice : &pl->svc;

		n_gone = 0;
		for (size_t i = 0; strmap_next(out, &i, &k, &v);) {
			if (strmap_get(want, k))
				continue;
			gone = xrealloc(gone, (n_gone + 1) * sizeof(*gone));
			gone[n_gone++] = xstrdup(k);
		}
		for (size_t i = 0; i < n_gone; i++) {
			char *ns, *name;

			if (kind == 2) {
				failure_free(strmap_del(out, gone[i]));
				if (m->alloc && !strmap_get(&m->out_svc, gone[i]))
					allocator_release(m->alloc, gone[i]);
				free(gone[i]);
				continue;
			}
			split_key(gone[i], &ns, &name);
			if (kind == 0) {
				struct delivered *d = strmap_del(out, gone[i]);

				log_info("Service %s removed (was in %s)", gone[i], d->file);
				delivered_free(d);
				store_delete_service(m->st, ns, name);
				if (m->alloc)
					allocator_release(m->alloc, gone[i]);
			} else {
				struct delivered *d = strmap_del(out, gone[i]);

				log_info("EndpointSlice %s removed (was in %s)", gone[i], d->file);
				delivered_free(d);
				store_delete_slice(m->st, ns, name);
			}
			changes++;
			free(ns);
			free(name);
			free(gone[i]);
		}
	}
	free(gone);
	return changes;
}

/* Delivers new and changed objects; returns the number of store changes. */
static size_t apply_upserts(struct manifest_source *m, struct plan *pl)
{
	struct want **retry = xcalloc(pl->n ? pl->n : 1, sizeof(*retry));
	char **errs = xcalloc(pl->n ? pl->n : 1, sizeof(*errs));
	size_t n_retry = 0, changes = 0;

	for (size_t i = 0; i < pl->n; i++) {
		struct want *w = pl->order[i];
		struct delivered *d = strmap_get(w->item->is_slice ? &m->out_slice : &m->out_svc, w->item->key);

		if (d && d->serial == w->item->serial)
			continue;
		if (w->item->is_slice) {
			deliver_slice(m, w);
			changes++;
		} else if (deliver_service(m, w, &errs[n_retry]) < 0) {
			retry[n_retry++] = w;
		} else {
			changes++;
		}
	}
	/* A failure may have been caused by an address another Service freed
	 * later in the same pass: try those once more. */
	for (size_t i = 0; i < n_retry; i++) {
		struct want *w = retry[i];
		struct failure *fl;
		char *err2 = NULL;

		if (changes && deliver_service(m, w, &err2) == 0) {
			changes++;
			failure_free(strmap_del(&m->failed, w->item->key));
			free(errs[i]);
			continue;
		}
		if (err2) {
			free(errs[i]);
			errs[i] = err2;
		}
		fl = strmap_get(&m->failed, w->item->key);
		if (!fl || fl->serial != w->item->serial || strcmp(fl->msg, errs[i]) != 0) {
			bool old = strmap_get(&m->out_svc, w->item->key) != NULL;

			log_error("%s/%s: %s; %s", m->dir, w->file->name, errs[i],
				  old ? "keeping its previous version" : "Service not proxied");
			if (!fl) {
				fl = xcalloc(1, sizeof(*fl));
				strmap_put(&m->failed, w->item->key, fl);
			}
			fl->serial = w->item->serial;
			free(fl->msg);
			fl->msg = errs[i];
		} else {
			free(errs[i]);
		}
	}
	/* Delivered ones are no longer failing. */
	for (size_t i = 0; i < pl->n; i++) {
		struct want *w = pl->order[i];
		struct delivered *d;

		if (w->item->is_slice || !strmap_get(&m->failed, w->item->key))
			continue;
		d = strmap_get(&m->out_svc, w->item->key);
		if (d && d->serial == w->item->serial)
			failure_free(strmap_del(&m->failed, w->item->key));
	}
	free(retry);
	free(errs);
	return changes;
}

void manifests_rescan(struct manifest_source *m)
{
	char **names = NULL;
	size_t n_names = 0, parsed = 0, broken = 0, changes = 0;
	struct plan pl = { 0 };
	bool clean = true;
	const char *k;
	void *v;
	int r;

	r = list_dir(m->dir, &names, &n_names);
	if (r < 0) {
		if (m->dir_ok)
			log_error("Cannot read manifest directory %s: %s; serving its last content", m->dir,
				  strerror(-r));
		m->dir_ok = false;
		return;
	}
	m->dir_ok = true;
	for (size_t i = 0; strmap_next(&m->files, &i, &k, &v);)
		((struct mfile *)v)->seen = false;
	for (size_t i = 0; i < n_names; i++) {
		char *path = xasprintf("%s/%s", m->dir, names[i]);
		struct mfile *f = strmap_get(&m->files, names[i]);
		struct stat st;

		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		if (!f) {
			f = xcalloc(1, sizeof(*f));
			f->name = xstrdup(names[i]);
			strmap_put(&m->files, names[i], f);
		}
		f->seen = true;
		if (!f->parsed || f->racy || !same_stat(f, &st)) {
			f->parsed = true;
			/* A write in the same timestamp tick as this read would
			 * leave mtime, size and inode unchanged: like git's
			 * "racy" entries, re-read recently modified files on the
			 * next rescan too (unchanged objects are not re-sent). */
			f->racy = wall_time() - ((double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9) < 2.0;
			f->dev = st.st_dev;
			f->ino = st.st_ino;
			f->size = st.st_size;
			f->mtime = st.st_mtim;
			parse_file(m, f, path);
			parsed++;
		}
		free(path);
	}
	/* Files that went away. */
	{
		char **gone = NULL;
		size_t n_gone = 0;

		for (size_t i = 0; strmap_next(&m->files, &i, &k, &v);) {
			if (((struct mfile *)v)->seen)
				continue;
			gone = xrealloc(gone, (n_gone + 1) * sizeof(*gone));
			gone[n_gone++] = xstrdup(k);
		}
		for (size_t i = 0; i < n_gone; i++) {
			log_v(2, "Manifest %s/%s removed", m->dir, gone[i]);
			file_free(strmap_del(&m->files, gone[i]));
			free(gone[i]);
		}
		free(gone);
	}
	/* What is wanted now, first file (in name order) first. */
	strmap_init(&pl.svc);
	strmap_init(&pl.slice);
	for (size_t i = 0; i < n_names; i++) {
		struct mfile *f = strmap_get(&m->files, names[i]);

		if (!f || !f->seen)
			continue;
		if (f->had_errors) {
			broken++;
			clean = false;
		}
		for (size_t j = 0; j < f->n_items; j++)
			plan_add(m, &pl, f, f->items[j]);
	}
	changes += apply_deletes(m, &pl);
	changes += apply_upserts(m, &pl);
	if (m->alloc) {
		if (clean && !m->pruned) {
			allocator_prune(m->alloc, keep_wanted, &pl.svc);
			m->pruned = true;
		}
		allocator_save(m->alloc);
	}
	log_v(2, "Manifest directory %s: %zu files (%zu parsed, %zu with errors), %zu Services, %zu EndpointSlices, %zu changes",
	      m->dir, n_names, parsed, broken, pl.svc.len, pl.slice.len, changes);
	for (size_t i = 0; strmap_next(&m->files, &i, &k, &v);) {
		struct mfile *f = v;

		for (size_t j = 0; j < f->n_items; j++)
			f->items[j]->fresh = false;
	}
	plan_free(&pl);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (changes && m->cb)
		m->cb(m->arg);
}

/* ---- watching ----------------------------------------------------------- */

static void on_debounce(struct loop *l, struct loop_timer *t, void *arg)
{
	manifests_rescan(arg);
}

static void on_rewatch(struct loop *l, struct loop_timer *t, void *arg)
{
	struct manifest_source *m = arg;

	m->wd = inotify_add_watch(m->ifd, m->dir, WATCH_MASK);
	if (m->wd < 0) {
		loop_timer_arm(m->rewatch, REWATCH_MS);
		return;
	}
	log_info("Manifest directory %s is back; watching it again", m->dir);
	manifests_rescan(m);
}

static void on_inotify(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct manifest_source *m = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool gone = false, any = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			/* IN_IGNORED of a watch we removed ourselves is stale. */
			if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) && ev->wd == m->wd)
				gone = true;
			any = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (gone && m->wd >= 0) {
		inotify_rm_watch(m->ifd, m->wd);
		m->wd = -1;
		log_error("Manifest directory %s was removed or moved; serving its last content until it is back",
			  m->dir);
		loop_timer_arm(m->rewatch, REWATCH_MS);
	}
	if (any && !gone && !loop_timer_armed(m->debounce))
		loop_timer_arm(m->debounce, DEBOUNCE_MS);
}

struct manifest_source *manifests_open(struct loop *l, struct store *st, struct allocator *alloc,
				       const char *dir, manifests_changed_cb cb, void *arg, char **err)
{
	struct manifest_source *m;
	DIR *d = opendir(dir);

	*err = NULL;
	if (!d) {
		*err = xasprintf("manifest directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	closedir(d);
	m = xcalloc(1, sizeof(*m));
	m->loop = l;
	m->st = st;
	m->alloc = alloc;
	m->dir = xstrdup(dir);
	m->cb = cb;
	m->arg = arg;
	m->ifd = m->wd = -1;
	m->dir_ok = true;
	strmap_init(&m->files);
	strmap_init(&m->out_svc);
	strmap_init(&m->out_slice);
	strmap_init(&m->failed);
	if (l) {
		/* Watch before the first scan so no change can slip between. */
		m->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (m->ifd >= 0)
			m->wd = inotify_add_watch(m->ifd, dir, WATCH_MASK);
		if (m->ifd < 0 || m->wd < 0 || loop_add_fd(l, m->ifd, EPOLLIN, on_inotify, m) < 0) {
			*err = xasprintf("cannot watch manifest directory %s: %s", dir, strerror(errno));
			manifests_close(m);
			return NULL;
		}
		m->debounce = loop_timer_new(l, on_debounce, m);
		m->rewatch = loop_timer_new(l, on_rewatch, m);
	}
	manifests_rescan(m);
	return m;
}

void manifests_close(struct manifest_source *m)
{
	const char *k;
	void *v;

	if (!m)
		return;
	loop_timer_free(m->debounce);
	loop_timer_free(m->rewatch);
	if (m->ifd >= 0) {
		if (m->loop)
			loop_del_fd(m->loop, m->ifd);
		close(m->ifd);
	}
	for (size_t i = 0; strmap_next(&m->files, &i, &k, &v);)
		file_free(v);
	for (size_t i = 0; strmap_next(&m->out_svc, &i, &k, &v);)
		delivered_free(v);
	for (size_t i = 0; strmap_next(&m->out_slice, &i, &k, &v);)
		delivered_free(v);
	for (size_t i = 0; strmap_next(&m->failed, &i, &k, &v);)
		failure_free(v);
	strmap_free(&m->files);
	strmap_free(&m->out_svc);
	strmap_free(&m->out_slice);
	strmap_free(&m->failed);
	free(m->dir);
	free(m);
}
