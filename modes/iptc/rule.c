/* The iptables rule model: builder calls and iptables-restore rendering
 * in the argument order upstream kube-proxy writes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rule.h"

/* Open-addressing hash from chain name to index in t->chains. */
struct chain_index {
	size_t *slots;      /* chain index + 1; 0 = empty */
	size_t mask;        /* number of slots - 1 (power of two) */
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void index_put(struct chain_index *ix, const struct chain *chains, size_t i)
{
	size_t pos = name_hash(chains[i].name) & ix->mask;

	while (ix->slots[pos])
		pos = (pos + 1) & ix->mask;
	ix->slots[pos] = i + 1;
}

static void index_rebuild(struct table_want *t, size_t nslots)
{
	struct chain_index *ix = t->index;

	if (!ix)
		ix = t->index = xcalloc(1, sizeof(*ix));
	free(ix->slots);
	ix->slots = xcalloc(nslots, sizeof(*ix->slots));
	ix->mask = nslots - 1;
	for (size_t i = 0; i < t->n_chains; i++)
		index_put(ix, t->chains, i);
}

/* Empties t for one table (name not copied: a literal) of one family. */
void table_want_init(struct table_want *t, const char *table, uint8_t family)
{
	memset(t, 0, sizeof(*t));
	t->table = table;
	t->family = family;
}

void table_want_reserve(struct table_want *t, size_t n_chains)
{
	size_t slots = 256;

	if (n_chains > t->cap_chains) {
		t->cap_chains = n_chains;
		t->chains = xrealloc(t->chains, t->cap_chains * sizeof(*t->chains));
	}
	while (slots < 2 * n_chains)
		slots *= 2;
	if (!t->index || t->index->mask + 1 < slots)
		index_rebuild(t, slots);
}

/* Frees every chain, rule and the index of t; t can be reused after init. */
void table_want_free(struct table_want *t)
{
	for (size_t i = 0; i < t->n_chains; i++)
		chain_free(&t->chains[i]);
	free(t->chains);
	for (size_t i = 0; i < t->n_builtin; i++)
		chain_free(&t->builtin_jumps[i]);
	free(t->builtin_jumps);
	if (t->index)
		free(t->index->slots);
	free(t->index);
	t->chains = NULL;
	t->builtin_jumps = NULL;
	t->index = NULL;
	t->n_chains = t->cap_chains = t->n_builtin = t->cap_builtin = 0;
}

/* Hash lookup of one of our chains by name; NULL when absent. */
struct chain *table_find_chain(const struct table_want *t, const char *name)
{
	const struct chain_index *ix = t->index;
	size_t pos;

	if (!ix)
		return NULL;
	pos = name_hash(name) & ix->mask;
	while (ix->slots[pos]) {
		struct chain *c = &t->chains[ix->slots[pos] - 1];

		if (strcmp(c->name, name) == 0)
			return c;
		pos = (pos + 1) & ix->mask;
	}
	return NULL;
}

/* name into a CHAIN_NAME_MAX field, cut to fit as snprintf would (the
 * encoder refuses names that do not fit; this only keeps memory safe). */
static void copy_name(char dst[CHAIN_NAME_MAX], const char *name)
{
	size_t n = strnlen(name, CHAIN_NAME_MAX - 1);

	memcpy(dst, name, n);
	dst[n] = '\0';
}

static void chain_init(struct chain *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	copy_name(c->name, name);
}

/* The chain called name, added (empty) if missing. */
struct chain *table_chain(struct table_want *t, const char *name)
{
	struct chain *c = table_find_chain(t, name);

	if (c)
		return c;
	if (t->n_chains == t->cap_chains) {
		t->cap_chains = t->cap_chains ? t->cap_chains * 2 : 64;
		t->chains = xrealloc(t->chains, t->cap_chains * sizeof(*t->chains));
	}
	c = &t->chains[t->n_chains++];
	chain_init(c, name);
	/* Keep the load factor at or below one half. */
	if (!t->index || t->n_chains * 2 > t->index->mask + 1)
		index_rebuild(t, t->index ? (t->index->mask + 1) * 2 : 256);
	else
		index_put(t->index, t->chains, t->n_chains - 1);
	return c;
}

/* A new jump rule for built-in chain builtin, after the earlier ones. */
struct rule *table_builtin_rule(struct table_want *t, const char *builtin)
{
	struct chain *c = NULL;

	for (size_t i = 0; i < t->n_builtin; i++) {
		if (strcmp(t->builtin_jumps[i].name, builtin) == 0) {
			c = &t->builtin_jumps[i];
			break;
		}
	}
	if (!c) {
		if (t->n_builtin == t->cap_builtin) {
			t->cap_builtin = t->cap_builtin ? t->cap_builtin * 2 : 4;
			t->builtin_jumps = xrealloc(t->builtin_jumps,
						    t->cap_builtin * sizeof(*t->builtin_jumps));
		}
		c = &t->builtin_jumps[t->n_builtin++];
		chain_init(c, builtin);
	}
	return chain_append(c);
}

/* A new empty rule at the end of c, owned by c. */
struct rule *chain_append(struct chain *c)
{
	struct rule *r;

	if (c->n_rules == c->cap_rules) {
		c->cap_rules = c->cap_rules ? c->cap_rules * 2 : 2;
		c->rules = xrealloc(c->rules, c->cap_rules * sizeof(*c->rules));
	}
	r = &c->rules[c->n_rules++];
	memset(r, 0, sizeof(*r));
	return r;
}

static struct rule_item *add_item(struct rule *r, enum rule_item_kind kind, bool neg)
{
	struct rule_item *it;

	if (r->n_items == r->cap_items) {
		r->cap_items = r->cap_items ? r->cap_items * 2 : 2;
		r->items = xrealloc(r->items, r->cap_items * sizeof(*r->items));
	}
	it = &r->items[r->n_items++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->neg = neg;
	return it;
}

/* Builders: each appends one item to r in argument order; strings are copied. */
void rule_comment(struct rule *r, const char *text)
{
	add_item(r, RI_COMMENT, false)->text = xstrdup(text);
}

void rule_proto(struct rule *r, enum l4_proto p)
{
	add_item(r, RI_PROTO, false)->proto = p;
}

void rule_proto_only(struct rule *r, enum l4_proto p)
{
	add_item(r, RI_PROTO_ONLY, false)->proto = p;
}

void rule_src(struct rule *r, const struct cidr *net, bool neg)
{
	add_item(r, RI_SRC, neg)->net = *net;
}

void rule_dst(struct rule *r, const struct cidr *net, bool neg)
{
	add_item(r, RI_DST, neg)->net = *net;
}

static void host_cidr(struct cidr *c, const struct addr *ip)
{
	c->base = *ip;
	c->prefix = ip->family == AF_INET6 ? 128 : 32;
}

void rule_src_ip(struct rule *r, const struct addr *ip, bool neg)
{
	host_cidr(&add_item(r, RI_SRC, neg)->net, ip);
}

void rule_dst_ip(struct rule *r, const struct addr *ip, bool neg)
{
	host_cidr(&add_item(r, RI_DST, neg)->net, ip);
}

void rule_dport(struct rule *r, uint16_t port)
{
	add_item(r, RI_DPORT, false)->value = port;
}

void rule_in_iface(struct rule *r, const char *iface, bool neg)
{
	add_item(r, RI_IN_IFACE, neg)->text = xstrdup(iface);
}

void rule_out_iface(struct rule *r, const char *iface, bool neg)
{
	add_item(r, RI_OUT_IFACE, neg)->text = xstrdup(iface);
}

void rule_addrtype_dst_local(struct rule *r, bool neg)
{
	add_item(r, RI_ADDRTYPE_DST, neg);
}

void rule_addrtype_src_local(struct rule *r, bool neg)
{
	add_item(r, RI_ADDRTYPE_SRC, neg);
}

void rule_addrtype_dst_local_limit_in(struct rule *r)
{
	add_item(r, RI_ADDRTYPE_DST_LIMIT_IN, false);
}

void rule_ctstate(struct rule *r, uint32_t states, bool neg)
{
	add_item(r, RI_CTSTATE, neg)->value = states;
}

void rule_mark(struct rule *r, uint32_t value, uint32_t mask, bool neg)
{
	struct rule_item *it = add_item(r, RI_MARK, neg);

	it->value = value;
	it->mask = mask;
}

/* p in [0, 1] as the integer "%0.10f" prints without its point: the
 * exact binary value times 1e10, rounded to nearest with ties to even
 * as glibc's printf does (2^-11 * 1e10 = 4882812.5 prints ...2812).
 * With p = mant * 2^-shift (53-bit mant) the product fits 128 bits.
 * Done in integers because generation formats one per endpoint (printf's
 * float path was 5% of a 10k-service sync). */
unsigned long long rule_probability_fixed(double p)
{
	__extension__ typedef unsigned __int128 u128;
	int e;
	double m;
	unsigned long long mant;
	int shift;
	u128 v, q, rest, half;

	if (!(p > 0))
		return 0;
	if (p >= 1)
		return 10000000000ull;
	m = frexp(p, &e);                     /* p = m * 2^e, m in [0.5, 1) */
	mant = (unsigned long long)ldexp(m, 53);
	shift = 53 - e;                       /* p = mant * 2^-shift, shift > 53 */
	if (shift >= 127)
		return 0;                     /* below 2^-73: rounds to 0 */
	v = (u128)mant * 10000000000ull;
	q = v >> shift;
	rest = v & (((u128)1 << shift) - 1);
	half = (u128)1 << (shift - 1);
	if (rest > half || (rest == half && (q & 1)))
		q++;
	return (unsigned long long)q;
}

void rule_statistic(struct rule *r, double probability)
{
	struct rule_item *it = add_item(r, RI_STATISTIC, false);
	unsigned long long fixed = rule_probability_fixed(probability);

	/* A 64-bit fixed point number of 1e-10 units split over value (low)
	 * and mask (high). */
	it->value = (uint32_t)fixed;
	it->mask = (uint32_t)(fixed >> 32);
}

void rule_recent_check(struct rule *r, const char *name, uint32_t seconds)
{
	struct rule_item *it = add_item(r, RI_RECENT_CHECK, false);

	it->text = xstrdup(name);
	it->value = seconds;
}

void rule_recent_set(struct rule *r, const char *name)
{
	add_item(r, RI_RECENT_SET, false)->text = xstrdup(name);
}

void rule_set(struct rule *r, const char *set_name, const char *flags, bool neg)
{
	add_item(r, RI_SET, neg)->text = xasprintf("%s %s", set_name, flags);
}

void rule_nfacct(struct rule *r, const char *name)
{
	add_item(r, RI_NFACCT, false)->text = xstrdup(name);
}

/* Targets: each sets r's (single) target, replacing an earlier one. */
void rule_jump(struct rule *r, const char *chain)
{
	r->target = RT_JUMP;
	copy_name(r->chain, chain);
}

void rule_target(struct rule *r, enum rule_target_kind t)
{
	r->target = t;
}

void rule_dnat(struct rule *r, const struct addr *ip, uint16_t port)
{
	r->target = RT_DNAT;
	r->to_ip = *ip;
	r->to_port = port;
}

void rule_mark_or(struct rule *r, uint32_t mark)
{
	r->target = RT_MARK_OR;
	r->mark = mark;
}

void rule_mark_xor(struct rule *r, uint32_t mark)
{
	r->target = RT_MARK_XOR;
	r->mark = mark;
}

void rule_masquerade(struct rule *r, bool random_fully)
{
	r->target = RT_MASQUERADE;
	r->random_fully = random_fully;
}

void rule_redirect(struct rule *r, uint16_t port)
{
	r->target = RT_REDIRECT;
	r->to_port = port;
}

/* ---- rendering ---------------------------------------------------------- */

static bool needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++) {
		char c = *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("/_.:,=+@-", c))
			continue;
		return true;
	}
	return false;
}

/* Comments are quoted when they hold anything beyond a plain token (as
 * upstream does for "ns/svc:port cluster IP"); '"' and '\' are escaped the
 * way iptables-restore's argument splitter expects. */
static void put_word(struct strbuf *sb, const char *s)
{
	if (!needs_quotes(s)) {
		sb_puts(sb, s);
		return;
	}
	sb_putc(sb, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			sb_putc(sb, '\\');
		sb_putc(sb, *s);
	}
	sb_putc(sb, '"');
}

static void put_cidr(struct strbuf *sb, const struct cidr *c)
{
	char buf[ADDR_STRLEN];
	unsigned host = c->base.family == AF_INET6 ? 128 : 32;

	sb_puts(sb, addr_str(&c->base, buf));
	if (c->prefix != host)
		sb_printf(sb, "/%u", c->prefix);
}

static void put_ctstate(struct strbuf *sb, uint32_t states)
{
	static const struct { uint32_t bit; const char *name; } order[] = {
		{ CTSTATE_INVALID, "INVALID" },
		{ CTSTATE_NEW, "NEW" },
		{ CTSTATE_RELATED, "RELATED" },
		{ CTSTATE_ESTABLISHED, "ESTABLISHED" },
		{ CTSTATE_SNAT, "SNAT" },
		{ CTSTATE_DNAT, "DNAT" },
	};
	bool first = true;

	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!(states & order[i].bit))
			continue;
		if (!first)
			sb_putc(sb, ',');
		sb_puts(sb, order[i].name);
		first = false;
	}
}

static void put_neg(struct strbuf *sb, bool neg)
{
	if (neg)
		sb_puts(sb, " !");
}

static void render_item(const struct rule_item *it, struct strbuf *sb)
{
	unsigned long long fixed;

	switch (it->kind) {
	case RI_COMMENT:
		sb_puts(sb, " -m comment --comment ");
		put_word(sb, it->text);
		break;
	case RI_PROTO:
		sb_printf(sb, " -m %s -p %s", proto_lower(it->proto), proto_lower(it->proto));
		break;
	case RI_PROTO_ONLY:
		sb_printf(sb, " -p %s", proto_lower(it->proto));
		break;
	case RI_SRC:
	case RI_DST:
		put_neg(sb, it->neg);
		sb_puts(sb, it->kind == RI_SRC ? " -s " : " -d ");
		put_cidr(sb, &it->net);
		break;
	case RI_DPORT:
		sb_printf(sb, " --dport %u", it->value);
		break;
	case RI_IN_IFACE:
	case RI_OUT_IFACE:
		put_neg(sb, it->neg);
		sb_puts(sb, it->kind == RI_IN_IFACE ? " -i " : " -o ");
		sb_puts(sb, it->text);
		break;
	case RI_ADDRTYPE_DST:
	case RI_ADDRTYPE_SRC:
		sb_puts(sb, " -m addrtype");
		put_neg(sb, it->neg);
		sb_puts(sb, it->kind == RI_ADDRTYPE_DST ? " --dst-type LOCAL" : " --src-type LOCAL");
		break;
	case RI_ADDRTYPE_DST_LIMIT_IN:
		sb_puts(sb, " -m addrtype --dst-type LOCAL --limit-iface-in");
		break;
	case RI_CTSTATE:
		sb_puts(sb, " -m conntrack");
		put_neg(sb, it->neg);
		sb_puts(sb, " --ctstate ");
		put_ctstate(sb, it->value);
		break;
	case RI_MARK:
		sb_puts(sb, " -m mark");
		put_neg(sb, it->neg);
		if (it->mask == 0xffffffffu)
			sb_printf(sb, " --mark 0x%x", it->value);
		else
			sb_printf(sb, " --mark 0x%x/0x%x", it->value, it->mask);
		break;
	case RI_STATISTIC:
		fixed = (unsigned long long)it->mask << 32 | it->value;
		sb_printf(sb, " -m statistic --mode random --probability %llu.%010llu",
			  fixed / 10000000000ull, fixed % 10000000000ull);
		break;
	case RI_RECENT_CHECK:
		sb_printf(sb, " -m recent --name %s --rcheck --seconds %u --reap", it->text, it->value);
		break;
	case RI_RECENT_SET:
		sb_printf(sb, " -m recent --name %s --set", it->text);
		break;
	case RI_SET:
		sb_puts(sb, " -m set");
		put_neg(sb, it->neg);
		sb_printf(sb, " --match-set %s", it->text);
		break;
	case RI_NFACCT:
		sb_printf(sb, " -m nfacct --nfacct-name %s", it->text);
		break;
	}
}

static void render_target(const struct rule *r, struct strbuf *sb)
{
	char buf[ADDR_STRLEN];

	switch (r->target) {
	case RT_NONE:
		break;
	case RT_JUMP:
		sb_printf(sb, " -j %s", r->chain);
		break;
	case RT_ACCEPT:
		sb_puts(sb, " -j ACCEPT");
		break;
	case RT_DROP:
		sb_puts(sb, " -j DROP");
		break;
	case RT_RETURN:
		sb_puts(sb, " -j RETURN");
		break;
	case RT_REJECT:
		sb_puts(sb, " -j REJECT");
		break;
	case RT_DNAT:
		addr_str(&r->to_ip, buf);
		if (!r->to_port)
			sb_printf(sb, " -j DNAT --to-destination %s", buf);
		else if (r->to_ip.family == AF_INET6)
			sb_printf(sb, " -j DNAT --to-destination [%s]:%u", buf, r->to_port);
		else
			sb_printf(sb, " -j DNAT --to-destination %s:%u", buf, r->to_port);
		break;
	case RT_MARK_OR:
		sb_printf(sb, " -j MARK --or-mark 0x%x", r->mark);
		break;
	case RT_MARK_XOR:
		sb_printf(sb, " -j MARK --xor-mark 0x%x", r->mark);
		break;
	case RT_MASQUERADE:
		sb_puts(sb, r->random_fully ? " -j MASQUERADE --random-fully" : " -j MASQUERADE");
		break;
	case RT_REDIRECT:
		sb_printf(sb, " -j REDIRECT --to-ports %u", r->to_port);
		break;
	}
}

/* "-A chain <items> <target>\n" appended to sb. */
void rule_render(const struct rule *r, const char *chain, struct strbuf *sb)
{
	sb_puts(sb, "-A ");
	sb_puts(sb, chain);
	for (size_t i = 0; i < r->n_items; i++)
		render_item(&r->items[i], sb);
	render_target(r, sb);
	sb_putc(sb, '\n');
}

/* t in iptables-restore format appended to sb (see rule.h). */
void table_render(const struct table_want *t, struct strbuf *sb)
{
	sb_printf(sb, "*%s\n", t->table);
	for (size_t i = 0; i < t->n_chains; i++)
		sb_printf(sb, ":%s - [0:0]\n", t->chains[i].name);
	for (size_t i = 0; i < t->n_builtin; i++) {
		const struct chain *c = &t->builtin_jumps[i];

		for (size_t j = 0; j < c->n_rules; j++)
			rule_render(&c->rules[j], c->name, sb);
	}
	for (size_t i = 0; i < t->n_chains; i++) {
		const struct chain *c = &t->chains[i];

		for (size_t j = 0; j < c->n_rules; j++)
			rule_render(&c->rules[j], c->name, sb);
	}
	sb_puts(sb, "COMMIT\n");
}

/* Frees r's items and their strings; r itself belongs to its chain. */
void rule_free(struct rule *r)
{
	for (size_t i = 0; i < r->n_items; i++)
		free(r->items[i].text);
	free(r->items);
	r->items = NULL;
	r->n_items = r->cap_items = 0;
}

/* Frees c's rules; c itself belongs to its table. */
void chain_free(struct chain *c)
{
	for (size_t i = 0; i < c->n_rules; i++)
		rule_free(&c->rules[i]);
	free(c->rules);
	c->rules = NULL;
	c->n_rules = c->cap_rules = 0;
}
