/* A measuring prototype, not used by the daemon: commits an IPv4 nat
 * struct table_want with one IPT_SO_SET_REPLACE, building the kernel's
 * table blob itself instead of going through libiptc's edit and compile.
 * It exists to put a number on what leaving libiptc would save (issue 3's
 * 5x target); bench/iptc_bench -d compares it with iptc_apply on the same
 * table and checks both produce the same iptables-legacy-save output.
 *
 * Layout written (what the kernel expects for the nat table): the built-in
 * chains in hook order, each with its jumps and an ACCEPT policy entry
 * (hook_entry / underflow), then per user chain, in name order, an ERROR
 * entry carrying its name, its rules and a RETURN, then the closing ERROR
 * entry. (Name order matters: libiptc, and so every iptables reader, parses
 * a table whose chains come in any other order in quadratic time.) Jumps
 * become standard targets whose verdict is the target chain's first rule
 * offset. Only what iptc_bench builds is handled: an empty nat table is
 * replaced, nothing foreign is kept. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter_ipv4/ip_tables.h>

#include "bench/iptc_direct.h"
#include "modes/iptc/encode.h"

#define STD_SIZE (XT_ALIGN(sizeof(struct ipt_entry)) + XT_ALIGN(sizeof(struct xt_standard_target)))
#define ERR_SIZE (XT_ALIGN(sizeof(struct ipt_entry)) + XT_ALIGN(sizeof(struct xt_error_target)))

static const struct {
	const char *name;
	unsigned hook;
} nat_hooks[] = {
	{ "PREROUTING", NF_INET_PRE_ROUTING },
	{ "INPUT", NF_INET_LOCAL_IN },
	{ "OUTPUT", NF_INET_LOCAL_OUT },
	{ "POSTROUTING", NF_INET_POST_ROUTING },
};

static const struct chain *builtin(const struct table_want *t, const char *name)
{
	for (size_t i = 0; i < t->n_builtin; i++)
		if (strcmp(t->builtin_jumps[i].name, name) == 0)
			return &t->builtin_jumps[i];
	return NULL;
}

static void put_std(uint8_t *p, int verdict)
{
	struct ipt_entry *e = (struct ipt_entry *)(void *)p;
	struct xt_standard_target *st = (struct xt_standard_target *)(void *)(p + XT_ALIGN(sizeof(*e)));

	memset(p, 0, STD_SIZE);
	e->target_offset = XT_ALIGN(sizeof(*e));
	e->next_offset = STD_SIZE;
	st->target.u.target_size = XT_ALIGN(sizeof(*st));
	st->verdict = verdict;
}

static void put_error(uint8_t *p, const char *name)
{
	struct ipt_entry *e = (struct ipt_entry *)(void *)p;
	struct xt_error_target *et = (struct xt_error_target *)(void *)(p + XT_ALIGN(sizeof(*e)));

	memset(p, 0, ERR_SIZE);
	e->target_offset = XT_ALIGN(sizeof(*e));
	e->next_offset = ERR_SIZE;
	et->target.u.user.target_size = XT_ALIGN(sizeof(*et));
	strcpy(et->target.u.user.name, XT_ERROR_TARGET);
	strncpy(et->errorname, name, sizeof(et->errorname) - 1);
}

/* Sizes of every rule of chain c, summed; -1 on an encoding error. */
static long chain_size(struct rule_encoder *enc, const struct chain *c, char **err)
{
	long total = 0;

	for (size_t i = 0; i < c->n_rules; i++) {
		const void *e;
		size_t len;

		if (rule_encode(enc, &c->rules[i], &e, &len, err) < 0)
			return -1;
		total += (long)len;
	}
	return total;
}

/* Appends chain c's rules at p, turning named standard targets into the
 * kernel's verdicts. first[] holds each user chain's first rule offset. */
static uint8_t *put_rules(struct rule_encoder *enc, const struct table_want *t, const struct chain *c,
			  const unsigned *first, uint8_t *base, uint8_t *p, char **err)
{
	for (size_t i = 0; i < c->n_rules; i++) {
		const void *src;
		size_t len;
		struct ipt_entry *e;
		struct xt_entry_target *tg;
		const char *name;

		if (rule_encode(enc, &c->rules[i], &src, &len, err) < 0)
			return NULL;
		memcpy(p, src, len);
		e = (struct ipt_entry *)(void *)p;
		tg = (struct xt_entry_target *)(void *)(p + e->target_offset);
		name = rule_std_target_name(&c->rules[i]);
		if (name) {
			struct xt_standard_target *st = (struct xt_standard_target *)(void *)tg;
			int verdict;

			if (strcmp(name, "ACCEPT") == 0)
				verdict = -NF_ACCEPT - 1;
			else if (strcmp(name, "DROP") == 0)
				verdict = -NF_DROP - 1;
			else if (strcmp(name, "RETURN") == 0)
				verdict = XT_RETURN;
			else if (name[0] == '\0')
				verdict = (int)((p + len) - base);   /* fall through */
			else {
				const struct chain *to = table_find_chain(t, name);

				if (!to) {
					*err = strdup("jump to a chain that is not in the table");
					return NULL;
				}
				verdict = (int)first[to - t->chains];
			}
			memset(tg->u.user.name, 0, sizeof(tg->u.user.name));
			st->verdict = verdict;
		}
		p += len;
	}
	return p;
}

static int by_name(const void *a, const void *b, void *arg)
{
	const struct chain *chains = arg;

	return strcmp(chains[*(const size_t *)a].name, chains[*(const size_t *)b].name);
}

int iptc_direct_replace_nat4(const struct table_want *t, char **err)
{
	struct rule_encoder enc;
	struct ipt_getinfo info = { .name = "nat" };
	socklen_t ilen = sizeof(info);
	unsigned *first = calloc(t->n_chains ? t->n_chains : 1, sizeof(*first));
	size_t *order = calloc(t->n_chains ? t->n_chains : 1, sizeof(*order));
	size_t size = 0, entries = 0;
	struct ipt_replace *repl = NULL;
	struct xt_counters *old = NULL;
	uint8_t *base, *p;
	int fd = -1, ret = -EINVAL;

	*err = NULL;
	rule_encoder_init(&enc, AF_INET);
	for (size_t i = 0; i < t->n_chains; i++)
		order[i] = i;
	qsort_r(order, t->n_chains, sizeof(*order), by_name, t->chains);
	/* Pass 1: offsets. */
	for (size_t h = 0; h < sizeof(nat_hooks) / sizeof(nat_hooks[0]); h++) {
		const struct chain *c = builtin(t, nat_hooks[h].name);
		long n = c ? chain_size(&enc, c, err) : 0;

		if (n < 0)
			goto out;
		size += (size_t)n + STD_SIZE;
		entries += (c ? c->n_rules : 0) + 1;
	}
	for (size_t k = 0; k < t->n_chains; k++) {
		size_t i = order[k];
		long n = chain_size(&enc, &t->chains[i], err);

		if (n < 0)
			goto out;
		size += ERR_SIZE;
		first[i] = (unsigned)size;
		size += (size_t)n + STD_SIZE;
		entries += t->chains[i].n_rules + 2;
	}
	size += ERR_SIZE;
	entries++;

	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0 || getsockopt(fd, IPPROTO_IP, IPT_SO_GET_INFO, &info, &ilen) < 0) {
		ret = -errno;
		*err = strdup("IPT_SO_GET_INFO failed");
		goto out;
	}
	repl = calloc(1, sizeof(*repl) + size);
	old = calloc(info.num_entries ? info.num_entries : 1, sizeof(*old));
	if (!repl || !old) {
		ret = -ENOMEM;
		goto out;
	}
	strcpy(repl->name, "nat");
	repl->valid_hooks = info.valid_hooks;
	repl->num_entries = (unsigned)entries;
	repl->size = (unsigned)size;
	repl->num_counters = info.num_entries;
	repl->counters = old;

	/* Pass 2: the blob. */
	base = (uint8_t *)repl->entries;
	p = base;
	for (size_t h = 0; h < sizeof(nat_hooks) / sizeof(nat_hooks[0]); h++) {
		const struct chain *c = builtin(t, nat_hooks[h].name);

		repl->hook_entry[nat_hooks[h].hook] = (unsigned)(p - base);
		if (c && !(p = put_rules(&enc, t, c, first, base, p, err)))
			goto out;
		repl->underflow[nat_hooks[h].hook] = (unsigned)(p - base);
		put_std(p, -NF_ACCEPT - 1);
		p += STD_SIZE;
	}
	for (size_t k = 0; k < t->n_chains; k++) {
		size_t i = order[k];

		put_error(p, t->chains[i].name);
		p += ERR_SIZE;
		if (!(p = put_rules(&enc, t, &t->chains[i], first, base, p, err)))
			goto out;
		put_std(p, XT_RETURN);
		p += STD_SIZE;
	}
	put_error(p, XT_ERROR_TARGET);
	if (setsockopt(fd, IPPROTO_IP, IPT_SO_SET_REPLACE, repl, (socklen_t)(sizeof(*repl) + size)) < 0) {
		ret = -errno;
		*err = strdup("IPT_SO_SET_REPLACE failed");
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(repl);
	free(old);
	free(first);
	free(order);
	rule_encoder_fini(&enc);
	return ret;
}
