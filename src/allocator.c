/* ClusterIP allocation from the service CIDR(s).
 *
 * Every range has a bitmap over its first ALLOC_WINDOW addresses (at most
 * 2^20 bits = 128 KiB, whatever the prefix: an IPv6 /64 is never mapped in
 * full). Automatic assignment picks the lowest free index in that window,
 * so ranges larger than 2^20 addresses (IPv4 wider than /12, most IPv6
 * ranges) only hand out their first 2^20 addresses; any address inside the
 * range can still be requested explicitly. Conflicts are found through a
 * map from address to holder, which also covers requests beyond the window.
 * Never handed out: index 0 (IPv4 network address, IPv6 subnet-router
 * anycast) and the IPv4 broadcast address.
 *
 * State file: a comment header, then "ns/name<TAB>ip" lines sorted by key
 * then address, replaced atomically. Bad lines are skipped with a warning
 * naming file and line. */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "log.h"
#include "strmap.h"
#include "util.h"

#define ALLOC_WINDOW_BITS 20
#define ALLOC_WINDOW ((uint64_t)1 << ALLOC_WINDOW_BITS)
#define STATE_HEADER "# kube-proxy ClusterIP allocations: <namespace>/<name> TAB <address>. " \
	"Rewritten by kube-proxy; edit only while it is stopped.\n"

struct range {
	struct cidr cidr;
	uint64_t size;            /* addresses in the prefix, saturated */
	uint64_t window;          /* indexes covered by the bitmap */
	uint64_t *bits;           /* window bits, 1 = allocated or reserved */
};

/* What one key holds: at most one address per family. */
struct holding {
	char *key;                /* "ns/name", also borrowed by by_ip */
	struct addr ip[2];        /* [0] IPv4, [1] IPv6; family 0 = none */
};

struct allocator {
	struct range ranges[2];   /* [0] IPv4, [1] IPv6; cidr.prefix meaningless if !bits */
	bool have[2];
	struct strmap by_key;     /* "ns/name" -> struct holding */
	struct strmap by_ip;      /* address text -> holder key (borrowed from by_key) */
	size_t count;             /* addresses held */
	char *path;
	bool dirty;
	bool read_only;           /* --dry-run: load the file, never write it */
};

static int fam_slot(int family)
{
	return family == AF_INET ? 0 : family == AF_INET6 ? 1 : -1;
}

static void bit_set(struct range *r, uint64_t i, bool on)
{
	if (on)
		r->bits[i / 64] |= (uint64_t)1 << (i % 64);
	else
		r->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* True index of a within r when it is exactly representable (cidr_index
 * only sees the low 64 host bits), else false. */
static bool exact_index(const struct range *r, const struct addr *a, uint64_t *idx)
{
	struct addr back;

	if (cidr_index(&r->cidr, a, idx) < 0 || cidr_nth(&r->cidr, *idx, &back) < 0)
		return false;
	return addr_equal(&back, a);
}

static bool reserved_index(const struct range *r, uint64_t idx)
{
	if (idx == 0)
		return true;
	return r->cidr.base.family == AF_INET && idx == r->size - 1;
}

/* Range containing a, NULL if none; idx and exact tell the position. */
static struct range *range_for(struct allocator *al, const struct addr *a, uint64_t *idx, bool *exact)
{
	int s = fam_slot(a->family);

	if (s < 0 || !al->have[s] || !cidr_contains(&al->ranges[s].cidr, a))
		return NULL;
	*exact = exact_index(&al->ranges[s], a, idx);
	return &al->ranges[s];
}

static bool valid_key(const char *key)
{
	const char *slash = strchr(key, '/');

	if (!slash || slash == key || !slash[1] || strchr(slash + 1, '/'))
		return false;
	for (const char *p = key; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Records key -> ip without checks (the caller made them). */
static void hold(struct allocator *al, const char *key, const struct addr *ip)
{
	struct holding *h = strmap_get(&al->by_key, key);
	char buf[ADDR_STRLEN];
	uint64_t idx;
	bool exact;
	struct range *r;

	if (!h) {
		h = xcalloc(1, sizeof(*h));
		h->key = xstrdup(key);
		strmap_put(&al->by_key, key, h);
	}
	h->ip[fam_slot(ip->family)] = *ip;
	strmap_put(&al->by_ip, addr_str(ip, buf), h->key);
	r = range_for(al, ip, &idx, &exact);
	if (r && exact && idx < r->window)
		bit_set(r, idx, true);
	al->count++;
	al->dirty = true;
}

static void unhold(struct allocator *al, const char *key, int slot)
{
	struct holding *h = strmap_get(&al->by_key, key);
	char buf[ADDR_STRLEN];
	uint64_t idx;
	bool exact;
	struct range *r;

	if (!h || !h->ip[slot].family)
		return;
	r = range_for(al, &h->ip[slot], &idx, &exact);
	if (r && exact && idx < r->window && !reserved_index(r, idx))
		bit_set(r, idx, false);
	strmap_del(&al->by_ip, addr_str(&h->ip[slot], buf));
	memset(&h->ip[slot], 0, sizeof(h->ip[slot]));
	al->count--;
	al->dirty = true;
	if (!h->ip[0].family && !h->ip[1].family) {
		strmap_del(&al->by_key, key);
		free(h->key);
		free(h);
	}
}

static int setup_range(struct allocator *al, const struct cidr *c, char **err)
{
	int s = fam_slot(c->base.family);
	char buf[CIDR_STRLEN];
	struct range *r;

	if (s < 0) {
		*err = xasprintf("service CIDR has no address family");
		return -EINVAL;
	}
	if (al->have[s]) {
		*err = xasprintf("two service CIDRs of the same family (%s)", cidr_str(c, buf));
		return -EINVAL;
	}
	r = &al->ranges[s];
	r->cidr = *c;
	r->size = cidr_size(c);
	r->window = r->size < ALLOC_WINDOW ? r->size : ALLOC_WINDOW;
	r->bits = xcalloc((size_t)((r->window + 63) / 64), sizeof(uint64_t));
	bit_set(r, 0, true);
	if (s == 0 && r->size - 1 < r->window)
		bit_set(r, r->size - 1, true);
	al->have[s] = true;
	return 0;
}

static void load_line(struct allocator *al, char *line, size_t lineno)
{
	char *tab = strchr(line, '\t');
	char buf[CIDR_STRLEN];
	const char *holder;
	struct holding *h;
	struct addr a;
	struct range *r;
	uint64_t idx;
	bool exact;

	if (!tab) {
		log_warn("%s:%zu: expected \"namespace/name<TAB>address\"; line ignored", al->path, lineno);
		goto drop;
	}
	*tab = '\0';
	if (!valid_key(line)) {
		log_warn("%s:%zu: \"%.80s\" is not namespace/name; line ignored", al->path, lineno, line);
		goto drop;
	}
	if (addr_parse(tab + 1, &a) < 0) {
		log_warn("%s:%zu: \"%.80s\" is not an IP address; line ignored", al->path, lineno, tab + 1);
		goto drop;
	}
	r = range_for(al, &a, &idx, &exact);
	if (!r) {
		int s = fam_slot(a.family);

		if (s >= 0 && al->have[s])
			log_warn("%s:%zu: %s of %s is outside the service range %s; allocation dropped", al->path,
				 lineno, tab + 1, line, cidr_str(&al->ranges[s].cidr, buf));
		else
			log_warn("%s:%zu: %s of %s is outside the service ranges (none of that family); "
				 "allocation dropped", al->path, lineno, tab + 1, line);
		goto drop;
	}
	if (exact && reserved_index(r, idx)) {
		log_warn("%s:%zu: %s of %s is not usable (network or broadcast address); allocation dropped",
			 al->path, lineno, tab + 1, line);
		goto drop;
	}
	holder = strmap_get(&al->by_ip, addr_str(&a, buf));
	if (holder) {
		log_warn("%s:%zu: %s is already held by %s; %s's allocation dropped", al->path, lineno,
			 tab + 1, holder, line);
		goto drop;
	}
	h = strmap_get(&al->by_key, line);
	if (h && h->ip[fam_slot(a.family)].family) {
		log_warn("%s:%zu: %s already has an address of that family; line ignored", al->path, lineno, line);
		goto drop;
	}
	hold(al, line, &a);
	return;
drop:
	al->dirty = true;
}

static int load(struct allocator *al, char **err)
{
	char *data = NULL, *line, *next;
	size_t len, lineno = 0;
	int r = read_file(al->path, &data, &len);

	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		*err = xasprintf("%s: %s", al->path, strerror(-r));
		return r;
	}
	for (line = data; line && line < data + len; line = next) {
		size_t l;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		l = strlen(line);
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		if (!l || line[0] == '#')
			continue;
		load_line(al, line, lineno);
	}
	free(data);
	return 0;
}

struct allocator *allocator_new(const struct cidr *ranges, size_t n_ranges,
				const char *state_path, char **err)
{
	struct allocator *al = xcalloc(1, sizeof(*al));

	*err = NULL;
	strmap_init(&al->by_key);
	strmap_init(&al->by_ip);
	if (n_ranges > 2) {
		*err = xasprintf("at most two service CIDRs (one per family), not %zu", n_ranges);
		goto fail;
	}
	for (size_t i = 0; i < n_ranges; i++)
		if (setup_range(al, &ranges[i], err) < 0)
			goto fail;
	if (state_path) {
		al->path = xstrdup(state_path);
		if (load(al, err) < 0)
			goto fail;
	}
	return al;
fail:
	allocator_free(al);
	return NULL;
}

void allocator_free(struct allocator *a)
{
	const char *k;
	void *v;

	if (!a)
		return;
	for (size_t i = 0; strmap_next(&a->by_key, &i, &k, &v);) {
		free(((struct holding *)v)->key);
		free(v);
	}
	strmap_free(&a->by_key);
	strmap_free(&a->by_ip);
	for (int s = 0; s < 2; s++)
		free(a->ranges[s].bits);
	free(a->path);
	free(a);
}

int allocator_assign(struct allocator *a, const char *key, int family, struct addr *out)
{
	int s = fam_slot(family);
	struct holding *h;
	struct range *r;

	if (!valid_key(key))
		return -EINVAL;
	if (s < 0 || !a->have[s])
		return -EAFNOSUPPORT;
	h = strmap_get(&a->by_key, key);
	if (h && h->ip[s].family) {
		*out = h->ip[s];
		return 0;
	}
	r = &a->ranges[s];
	for (uint64_t w = 0; w < (r->window + 63) / 64; w++) {
		uint64_t idx;

		if (r->bits[w] == UINT64_MAX)
			continue;
		idx = w * 64 + (uint64_t)__builtin_ctzll(~r->bits[w]);
		if (idx >= r->window)
			break;
		if (cidr_nth(&r->cidr, idx, out) < 0)
			break;
		hold(a, key, out);
		return 0;
	}
	return -ENOSPC;
}

int allocator_request(struct allocator *a, const char *key, const struct addr *ip, const char **holder)
{
	char buf[ADDR_STRLEN];
	struct holding *h;
	const char *cur;
	struct range *r;
	uint64_t idx;
	bool exact;
	int slot;

	if (holder)
		*holder = NULL;
	if (!valid_key(key))
		return -EINVAL;
	slot = fam_slot(ip->family);
	if (slot < 0)
		return -EAFNOSUPPORT;
	r = range_for(a, ip, &idx, &exact);
	if (!r || (exact && reserved_index(r, idx)))
		return -ERANGE;
	cur = strmap_get(&a->by_ip, addr_str(ip, buf));
	if (cur) {
		if (strcmp(cur, key) == 0)
			return 0;
		if (holder)
			*holder = cur;
		return -EEXIST;
	}
	/* A key holds one address per family: the new one replaces it. */
	h = strmap_get(&a->by_key, key);
	if (h && h->ip[slot].family)
		unhold(a, key, slot);
	hold(a, key, ip);
	return 0;
}

void allocator_release(struct allocator *a, const char *key)
{
	unhold(a, key, 0);
	unhold(a, key, 1);
}

const struct addr *allocator_lookup(const struct allocator *a, const char *key, int family)
{
	struct holding *h = strmap_get(&a->by_key, key);
	int s = fam_slot(family);

	if (!h || s < 0 || !h->ip[s].family)
		return NULL;
	return &h->ip[s];
}

size_t allocator_count(const struct allocator *a)
{
	return a->count;
}

void allocator_prune(struct allocator *a, bool (*keep)(const char *key, void *arg), void *arg)
{
	const char **drop = NULL;
	size_t n = 0, cap = 0;
	const char *k;

	for (size_t i = 0; strmap_next(&a->by_key, &i, &k, NULL);) {
		if (keep(k, arg))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			drop = xrealloc(drop, cap * sizeof(*drop));
		}
		drop[n++] = k;
	}
	for (size_t i = 0; i < n; i++) {
		char *key = xstrdup(drop[i]);

		log_info("Released ClusterIP of %s: the Service no longer exists", key);
		allocator_release(a, key);
		free(key);
	}
	free(drop);
}

void allocator_set_read_only(struct allocator *a)
{
	a->read_only = true;
}

int allocator_save(struct allocator *a)
{
	struct strbuf sb;
	char **lines = NULL;
	size_t n = 0;
	const char *k;
	void *v;
	int r;

	if (!a->path || !a->dirty || a->read_only)
		return 0;
	lines = xcalloc(a->count ? a->count : 1, sizeof(*lines));
	for (size_t i = 0; strmap_next(&a->by_key, &i, &k, &v);) {
		struct holding *h = v;

		for (int s = 0; s < 2; s++) {
			char buf[ADDR_STRLEN];

			if (h->ip[s].family && n < a->count)
				lines[n++] = xasprintf("%s\t%s\n", k, addr_str(&h->ip[s], buf));
		}
	}
	qsort(lines, n, sizeof(*lines), cmp_strp);
	sb_init(&sb);
	sb_puts(&sb, STATE_HEADER);
	for (size_t i = 0; i < n; i++) {
		sb_puts(&sb, lines[i]);
		free(lines[i]);
	}
	free(lines);
	r = write_file_atomic(a->path, sb.buf, sb.len, 0644);
	if (r == -ENOENT) {
		char *dir = xstrdup(a->path);

		if (mkdir_p(dirname(dir)) == 0)
			r = write_file_atomic(a->path, sb.buf, sb.len, 0644);
		free(dir);
	}
	sb_free(&sb);
	if (r < 0) {
		log_error("Cannot write %s: %s", a->path, strerror(-r));
		return r;
	}
	a->dirty = false;
	return 0;
}
