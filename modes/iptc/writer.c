/* Applies a struct table_want through libiptc (legacy x_tables), for
 * IPv4 (libip4tc) and IPv6 (libip6tc) through one small ops table.
 *
 * One apply = lock, iptc_init, compare/create/flush/fill/delete, one
 * iptc_commit, unlock. libiptc keeps its chains in a sorted list with a
 * coarse index; every call that takes a chain name searches it, so we
 * look names up as rarely as we can: the existing chains are walked once
 * and matched against the want's hash index, new chains are created in
 * name order, and unchanged chains are detected by comparing encoded
 * entries instead of being rewritten. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <libiptc/libiptc.h>
#include <libiptc/libip6tc.h>

#include "encode.h"
#include "writer.h"

#define MAX_TRIES 5
#define LOCK_WAIT_MS 5000
#define DEFAULT_LOCK_PATH "/run/xtables.lock"

/* ---- family ops ------------------------------------------------------------ */

struct fam_ops {
	const struct xtc_ops *x;     /* init, free, commit, chains, strerror ... */
	const void *(*first_rule)(const char *chain, struct xtc_handle *h);
	const void *(*next_rule)(const void *prev, struct xtc_handle *h);
	const char *(*get_target)(const void *e, struct xtc_handle *h);
	int (*append)(const char *chain, const void *e, struct xtc_handle *h);
	int (*insert)(const char *chain, const void *e, unsigned num, struct xtc_handle *h);
	int (*delete_num)(const char *chain, unsigned num, struct xtc_handle *h);
	int (*delete_chain)(const char *chain, struct xtc_handle *h);
	int (*references)(unsigned *ref, const char *chain, struct xtc_handle *h);
	int (*commit)(struct xtc_handle *h);
	const char *name;            /* for messages: "iptables" / "ip6tables" */
};

static const void *v4_first_rule(const char *chain, struct xtc_handle *h)
{
	return iptc_first_rule(chain, h);
}

static const void *v4_next_rule(const void *prev, struct xtc_handle *h)
{
	return iptc_next_rule(prev, h);
}

static const char *v4_get_target(const void *e, struct xtc_handle *h)
{
	return iptc_get_target(e, h);
}

static int v4_append(const char *chain, const void *e, struct xtc_handle *h)
{
	return iptc_append_entry(chain, e, h);
}

static int v4_insert(const char *chain, const void *e, unsigned num, struct xtc_handle *h)
{
	return iptc_insert_entry(chain, e, num, h);
}

static int v4_delete_num(const char *chain, unsigned num, struct xtc_handle *h)
{
	return iptc_delete_num_entry(chain, num, h);
}

static int v4_delete_chain(const char *chain, struct xtc_handle *h)
{
	return iptc_delete_chain(chain, h);
}

static int v4_references(unsigned *ref, const char *chain, struct xtc_handle *h)
{
	return iptc_get_references(ref, chain, h);
}

/* Called by name (not through iptc_ops) so tests can wrap it at link time. */
static int v4_commit(struct xtc_handle *h)
{
	return iptc_commit(h);
}

static const void *v6_first_rule(const char *chain, struct xtc_handle *h)
{
	return ip6tc_first_rule(chain, h);
}

static const void *v6_next_rule(const void *prev, struct xtc_handle *h)
{
	return ip6tc_next_rule(prev, h);
}

static const char *v6_get_target(const void *e, struct xtc_handle *h)
{
	return ip6tc_get_target(e, h);
}

static int v6_append(const char *chain, const void *e, struct xtc_handle *h)
{
	return ip6tc_append_entry(chain, e, h);
}

static int v6_insert(const char *chain, const void *e, unsigned num, struct xtc_handle *h)
{
	return ip6tc_insert_entry(chain, e, num, h);
}

static int v6_delete_num(const char *chain, unsigned num, struct xtc_handle *h)
{
	return ip6tc_delete_num_entry(chain, num, h);
}

static int v6_delete_chain(const char *chain, struct xtc_handle *h)
{
	return ip6tc_delete_chain(chain, h);
}

static int v6_references(unsigned *ref, const char *chain, struct xtc_handle *h)
{
	return ip6tc_get_references(ref, chain, h);
}

static int v6_commit(struct xtc_handle *h)
{
	return ip6tc_commit(h);
}

static const struct fam_ops v4_ops = {
	.x = &iptc_ops,
	.first_rule = v4_first_rule,
	.next_rule = v4_next_rule,
	.get_target = v4_get_target,
	.append = v4_append,
	.insert = v4_insert,
	.delete_num = v4_delete_num,
	.delete_chain = v4_delete_chain,
	.references = v4_references,
	.commit = v4_commit,
	.name = "iptables",
};

static const struct fam_ops v6_ops = {
	.x = &ip6tc_ops,
	.first_rule = v6_first_rule,
	.next_rule = v6_next_rule,
	.get_target = v6_get_target,
	.append = v6_append,
	.insert = v6_insert,
	.delete_num = v6_delete_num,
	.delete_chain = v6_delete_chain,
	.references = v6_references,
	.commit = v6_commit,
	.name = "ip6tables",
};

static const struct fam_ops *fam_ops(uint8_t family)
{
	return family == AF_INET6 ? &v6_ops : family == AF_INET ? &v4_ops : NULL;
}

/* ---- the xtables lock -------------------------------------------------------- */

/* Takes the lock iptables-legacy takes (flock on /run/xtables.lock, or
 * $XTABLES_LOCKFILE), waiting up to 5 s. Returns the fd or -errno. */
static int xt_lock(char **err)
{
	const char *path = getenv("XTABLES_LOCKFILE");
	unsigned long long deadline = now_ms() + LOCK_WAIT_MS;
	int fd;

	if (!path || !*path)
		path = DEFAULT_LOCK_PATH;
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		*err = xasprintf("cannot open xtables lock %s: %s", path, strerror(e));
		return -e;
	}
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int e = errno;

			*err = xasprintf("cannot lock %s: %s", path, strerror(e));
			close(fd);
			return -e;
		}
		if (now_ms() >= deadline) {
			*err = xasprintf("another app is holding the xtables lock %s (waited %d ms)",
					 path, LOCK_WAIT_MS);
			close(fd);
			return -EBUSY;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	}
}

static void xt_unlock(int fd)
{
	if (fd >= 0)
		close(fd);        /* releases the flock */
}

/* ---- helpers ----------------------------------------------------------------- */

static bool has_prefix(const char *name, const char *const *prefixes)
{
	if (!prefixes)
		return false;
	for (; *prefixes; prefixes++)
		if (str_has_prefix(name, *prefixes))
			return true;
	return false;
}

static bool is_ours(const char *name)
{
	return str_has_prefix(name, "KUBE-");
}

/* Chain names in libiptc's list order (sorted by strcmp), with each
 * chain's position among the user-defined chains at iptc_init time. */
struct name_list {
	xt_chainlabel *names;
	unsigned *pos;
	size_t n, cap;
	bool unsorted;
};

static void names_add(struct name_list *l, const char *name, unsigned pos)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->names = xrealloc(l->names, l->cap * sizeof(*l->names));
		l->pos = xrealloc(l->pos, l->cap * sizeof(*l->pos));
	}
	snprintf(l->names[l->n], sizeof(xt_chainlabel), "%s", name);
	if (l->n && strcmp(l->names[l->n - 1], name) >= 0)
		l->unsorted = true;
	l->pos[l->n++] = pos;
}

static void names_free(struct name_list *l)
{
	free(l->names);
	free(l->pos);
	memset(l, 0, sizeof(*l));
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool names_has(const struct name_list *l, const char *name)
{
	if (!l->n || !name)
		return false;
	if (!l->unsorted)
		return bsearch(name, l->names, l->n, sizeof(*l->names), cmp_label) != NULL;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return true;
	return false;
}

static int fail(const struct fam_ops *ops, const char *table, const char *what, const char *chain,
		char **err)
{
	int e = errno ? errno : EINVAL;

	if (chain)
		*err = xasprintf("%s -t %s: %s %s: %s", ops->name, table, what, chain,
				 ops->x->strerror(e));
	else
		*err = xasprintf("%s -t %s: %s: %s", ops->name, table, what, ops->x->strerror(e));
	return -e;
}

/* libiptc's bucket length for its chain index (CHAIN_INDEX_BUCKET_LEN). */
#define IPTC_INDEX_BUCKET 40

/* Deletes the (already flushed) chains of l that nothing references any
 * more; *skipped gets the first one still referenced (by a chain that is
 * not ours). libiptc indexes every 40th user chain and rebuilds the whole
 * index - a walk over every chain - when a deleted chain is an index entry
 * whose successor is in the next bucket, i.e. every 40 deletions in list
 * order: quadratic for a mass delete (seconds at 100k chains). Deleting
 * the chains that are not index entries first (positions from iptc_init,
 * before any chain was created or deleted) avoids nearly all rebuilds. */
static int delete_chains(const struct fam_ops *ops, struct xtc_handle *h, const char *table,
			 const struct name_list *l, unsigned long *deleted, const char **skipped,
			 char **err)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < l->n; i++) {
			unsigned refs = 0;

			if ((l->pos[i] % IPTC_INDEX_BUCKET != 0) != (pass == 0))
				continue;
			if (ops->references(&refs, l->names[i], h) && refs > 0) {
				if (skipped && !*skipped)
					*skipped = l->names[i];
				continue;
			}
			if (!ops->delete_chain(l->names[i], h))
				return fail(ops, table, "delete chain", l->names[i], err);
			if (deleted)
				(*deleted)++;
		}
	}
	return 0;
}

/* ---- apply ------------------------------------------------------------------- */

enum { ST_EXISTS = 1, ST_FILL = 2 };

struct apply_ctx {
	const struct table_want *t;
	const char *const *stale_prefixes;
	const struct fam_ops *ops;
	struct xtc_handle *h;
	struct rule_encoder enc;
	uint8_t *state;              /* per want chain: ST_* */
	size_t *order;               /* want chains sorted by name */
	struct name_list stale;      /* our chains to delete (sorted) */
	struct apply_stats st;
};

static int encode_err(int ret, const char *chain, size_t rule, char **err)
{
	char *inner = *err;

	*err = xasprintf("chain %s rule %zu: %s", chain, rule + 1, inner ? inner : "encoding failed");
	free(inner);
	return ret;
}

/* Does the chain's current content equal c's rules? */
static int chain_equal(struct apply_ctx *a, const struct chain *c, bool *equal, char **err)
{
	const void *e = a->ops->first_rule(c->name, a->h);
	size_t i = 0;
	int ret;

	*equal = false;
	for (; e; e = a->ops->next_rule(e, a->h), i++) {
		const void *mine;
		size_t len;

		if (i >= c->n_rules)
			return 0;
		ret = rule_encode(&a->enc, &c->rules[i], &mine, &len, err);
		if (ret < 0)
			return encode_err(ret, c->name, i, err);
		if (!rule_entry_equal(a->t->family, mine, e, a->ops->get_target(e, a->h)))
			return 0;
	}
	*equal = i == c->n_rules;
	return 0;
}

static int fill_chain(struct apply_ctx *a, const struct chain *c, char **err)
{
	for (size_t i = 0; i < c->n_rules; i++) {
		const void *e;
		size_t len;
		int ret = rule_encode(&a->enc, &c->rules[i], &e, &len, err);

		if (ret < 0)
			return encode_err(ret, c->name, i, err);
		if (!a->ops->append(c->name, e, a->h)) {
			char *msg = xasprintf("append rule %zu to", i + 1);

			ret = fail(a->ops, a->t->table, msg, c->name, err);
			free(msg);
			return ret;
		}
	}
	return 0;
}

static const struct chain *want_builtin(const struct table_want *t, const char *name)
{
	for (size_t i = 0; i < t->n_builtin; i++)
		if (strcmp(t->builtin_jumps[i].name, name) == 0)
			return &t->builtin_jumps[i];
	return NULL;
}

/* Should an existing rule of a built-in chain (target tgt) go? */
static bool builtin_rule_goes(const struct apply_ctx *a, const struct chain *want, const char *tgt)
{
	if (!tgt || !is_ours(tgt))
		return false;
	if (names_has(&a->stale, tgt))
		return true;
	if (!want)
		return false;
	for (size_t i = 0; i < want->n_rules; i++)
		if (want->rules[i].target == RT_JUMP && strcmp(want->rules[i].chain, tgt) == 0)
			return true;
	return false;
}

/* Does existing entry e (target tgt) equal wanted rule r? */
static int builtin_rule_equal(struct apply_ctx *a, const struct rule *r, const void *e, const char *tgt,
			      const char *chain, size_t num, bool *equal, char **err)
{
	const void *mine;
	size_t len;
	int ret = rule_encode(&a->enc, r, &mine, &len, err);

	if (ret < 0)
		return encode_err(ret, chain, num, err);
	*equal = rule_entry_equal(a->t->family, mine, e, tgt);
	return 0;
}

/* First half of putting the wanted jumps at the top of one built-in
 * chain: removes older or duplicate jumps into the same chains and jumps
 * into stale chains; *insert says whether our jumps must then be inserted
 * (insert_builtin, once the chains they jump to exist). Foreign rules
 * stay, below ours. */
static int sync_builtin(struct apply_ctx *a, const char *name, bool *insert, char **err)
{
	const struct chain *want = want_builtin(a->t, name);
	size_t top = want ? want->n_rules : 0;
	unsigned *gone = NULL;
	size_t n_gone = 0, cap_gone = 0, pos = 0;
	bool top_ok = true, eq;
	const void *e;
	int ret = 0;

	/* Pass 1: are our jumps already the first rules, in order? */
	for (e = a->ops->first_rule(name, a->h); e && pos < top && top_ok;
	     e = a->ops->next_rule(e, a->h), pos++) {
		ret = builtin_rule_equal(a, &want->rules[pos], e, a->ops->get_target(e, a->h), name,
					 pos, &eq, err);
		if (ret < 0)
			goto out;
		top_ok = eq;
	}
	if (pos < top)
		top_ok = false;
	/* Pass 2: which rules go. With a good top, only later jumps into
	 * our wanted or stale chains; otherwise every copy of ours. */
	pos = 0;
	for (e = a->ops->first_rule(name, a->h); e; e = a->ops->next_rule(e, a->h), pos++) {
		const char *tgt = a->ops->get_target(e, a->h);
		bool goes;

		if (top_ok && pos < top)
			continue;
		goes = builtin_rule_goes(a, want, tgt);
		for (size_t i = 0; !goes && !top_ok && i < top; i++) {
			ret = builtin_rule_equal(a, &want->rules[i], e, tgt, name, i, &goes, err);
			if (ret < 0)
				goto out;
		}
		if (!goes)
			continue;
		if (n_gone == cap_gone) {
			cap_gone = cap_gone ? cap_gone * 2 : 8;
			gone = xrealloc(gone, cap_gone * sizeof(*gone));
		}
		gone[n_gone++] = (unsigned)pos;
	}
	/* Delete from the bottom so the numbers stay valid. */
	while (n_gone > 0) {
		if (!a->ops->delete_num(name, gone[--n_gone], a->h)) {
			ret = fail(a->ops, a->t->table, "delete rule in", name, err);
			goto out;
		}
	}
	*insert = !top_ok && top > 0;
out:
	free(gone);
	return ret;
}

/* Second half: our jumps at positions 0.. of built-in chain name. */
static int insert_builtin(struct apply_ctx *a, const char *name, char **err)
{
	const struct chain *want = want_builtin(a->t, name);

	for (size_t i = 0; want && i < want->n_rules; i++) {
		const void *mine;
		size_t len;
		int ret = rule_encode(&a->enc, &want->rules[i], &mine, &len, err);

		if (ret < 0)
			return encode_err(ret, name, i, err);
		if (!a->ops->insert(name, mine, (unsigned)i, a->h))
			return fail(a->ops, a->t->table, "insert jump into", name, err);
	}
	return 0;
}

static int cmp_chain_order(const void *pa, const void *pb, void *arg)
{
	const struct chain *chains = arg;

	return strcmp(chains[*(const size_t *)pa].name, chains[*(const size_t *)pb].name);
}

static int apply_once(struct apply_ctx *a, char **err)
{
	const struct table_want *t = a->t;
	const struct fam_ops *ops = a->ops;
	struct name_list builtins = { 0 };
	unsigned long long t0 = now_ns(), t1, t2;
	bool *insert = NULL;
	unsigned user_pos = 0;
	const char *name;
	int ret = 0;

	memset(&a->st, 0, sizeof(a->st));
	memset(a->state, 0, t->n_chains);
	names_free(&a->stale);

	a->h = ops->x->init(t->table);
	if (!a->h)
		return fail(ops, t->table, "init", NULL, err);
	t1 = now_ns();
	a->st.init_ns = t1 - t0;

	/* One walk over the existing chains (built-ins first, then the user
	 * chains in name order). */
	for (name = ops->x->first_chain(a->h); name; name = ops->x->next_chain(a->h)) {
		struct chain *c;
		bool builtin = user_pos == 0 && ops->x->builtin(name, a->h);

		if (builtin) {
			names_add(&builtins, name, 0);
			continue;
		}
		user_pos++;
		c = table_find_chain(t, name);
		if (c)
			a->state[c - t->chains] |= ST_EXISTS;
		else if (is_ours(name) && has_prefix(name, a->stale_prefixes))
			names_add(&a->stale, name, user_pos - 1);
	}
	for (size_t i = 0; i < t->n_builtin; i++) {
		if (!names_has(&builtins, t->builtin_jumps[i].name)) {
			*err = xasprintf("%s -t %s: no built-in chain %s", ops->name, t->table,
					 t->builtin_jumps[i].name);
			ret = -ENOENT;
			goto out;
		}
	}

	/* A missing chain marked keep is recreated from its rules; if the
	 * caller gave none (it skipped generating them), creating it empty
	 * could blackhole its service until the next full sync. Refuse before
	 * any change; the caller retries with a full sync. */
	for (size_t i = 0; i < t->n_chains; i++) {
		if (t->chains[i].keep && !t->chains[i].n_rules && !(a->state[i] & ST_EXISTS)) {
			*err = xasprintf("%s: chain %s to keep is missing (flushed by someone?)",
					 t->table, t->chains[i].name);
			ret = -ESTALE;
			goto out;
		}
	}

	/* Existing chains of ours: unchanged ones stay, others are flushed. */
	for (size_t i = 0; i < t->n_chains; i++) {
		const struct chain *c = &t->chains[i];
		bool same;

		if (!(a->state[i] & ST_EXISTS))
			continue;
		if (c->keep) {
			a->st.chains_unchanged++;
			continue;
		}
		ret = chain_equal(a, c, &same, err);
		if (ret < 0)
			goto out;
		if (same) {
			a->st.chains_unchanged++;
			continue;
		}
		if (!ops->x->flush_entries(c->name, a->h)) {
			ret = fail(ops, t->table, "flush chain", c->name, err);
			goto out;
		}
		a->state[i] |= ST_FILL;
		a->st.chains_rewritten++;
	}

	/* Stale chains: empty them, drop the built-in jumps into them (and
	 * out-of-place jumps of ours), delete them - all before creating any
	 * chain, while the positions recorded above still describe libiptc's
	 * chain index (see delete_chains). */
	for (size_t i = 0; i < a->stale.n; i++) {
		if (!ops->x->flush_entries(a->stale.names[i], a->h)) {
			ret = fail(ops, t->table, "flush chain", a->stale.names[i], err);
			goto out;
		}
	}
	insert = xcalloc(builtins.n ? builtins.n : 1, sizeof(*insert));
	for (size_t i = 0; i < builtins.n; i++) {
		ret = sync_builtin(a, builtins.names[i], &insert[i], err);
		if (ret < 0)
			goto out;
	}
	ret = delete_chains(ops, a->h, t->table, &a->stale, &a->st.chains_deleted, NULL, err);
	if (ret < 0)
		goto out;

	/* Create missing chains in descending name order: libiptc keeps its
	 * chain list sorted and inserts each new chain with a walk from the
	 * nearest index bucket; a name smaller than every chain so far is
	 * found and placed at the head of the list in O(log n), while
	 * ascending order walks the whole unindexed tail every time. */
	for (size_t k = t->n_chains; k-- > 0;) {
		size_t i = a->order[k];

		if (a->state[i] & ST_EXISTS)
			continue;
		if (!ops->x->create_chain(t->chains[i].name, a->h)) {
			ret = fail(ops, t->table, "create chain", t->chains[i].name, err);
			goto out;
		}
		a->state[i] |= ST_FILL;
		a->st.chains_created++;
	}

	/* Jumps from the built-in chains, now that their targets exist. */
	for (size_t i = 0; i < builtins.n; i++) {
		if (!insert[i])
			continue;
		ret = insert_builtin(a, builtins.names[i], err);
		if (ret < 0)
			goto out;
	}

	/* Fill new and changed chains, in the want's order. */
	for (size_t i = 0; i < t->n_chains; i++) {
		if (!(a->state[i] & ST_FILL))
			continue;
		ret = fill_chain(a, &t->chains[i], err);
		if (ret < 0)
			goto out;
	}
	for (size_t i = 0; i < t->n_chains; i++)
		a->st.rules_total += t->chains[i].n_rules;

	t2 = now_ns();
	a->st.edit_ns = t2 - t1;
	if (!ops->commit(a->h)) {
		ret = -(errno ? errno : EIO);
		if (ret != -EAGAIN)
			fail(ops, t->table, "commit", NULL, err);
	}
	a->st.commit_ns = now_ns() - t2;
out:
	free(insert);
	names_free(&builtins);
	t1 = now_ns();
	ops->x->free(a->h);
	a->h = NULL;
	a->st.free_ns = now_ns() - t1;
	return ret;
}

/* Lock, then apply_once until it commits or fails otherwise than with
 * EAGAIN (another writer committed in between), at most 5 times. */
int iptc_apply(const struct table_want *t, const char *const *stale_prefixes,
	       struct apply_stats *stats, char **err)
{
	struct apply_ctx a = {
		.t = t,
		.stale_prefixes = stale_prefixes,
		.ops = fam_ops(t->family),
	};
	unsigned long long t0 = now_ns();
	unsigned tries = 0;
	int lock, ret;

	*err = NULL;
	if (!a.ops) {
		*err = xasprintf("table %s: unknown address family %u", t->table, t->family);
		return -EAFNOSUPPORT;
	}
	rule_encoder_init(&a.enc, t->family);
	a.state = xmalloc(t->n_chains ? t->n_chains : 1);
	a.order = xmalloc((t->n_chains ? t->n_chains : 1) * sizeof(*a.order));
	for (size_t i = 0; i < t->n_chains; i++)
		a.order[i] = i;
	if (t->n_chains)
		qsort_r(a.order, t->n_chains, sizeof(*a.order), cmp_chain_order, t->chains);

	lock = xt_lock(err);
	if (lock < 0) {
		ret = lock;
		goto out;
	}
	do {
		free_and_null(err);
		tries++;
		ret = apply_once(&a, err);
	} while (ret == -EAGAIN && tries < MAX_TRIES);
	xt_unlock(lock);
	if (ret == -EAGAIN && !*err)
		*err = xasprintf("%s -t %s: commit: table changed by someone else %u times", a.ops->name,
				 t->table, tries);
	a.st.commit_attempts = tries;
	a.st.all_ns = now_ns() - t0;
	if (stats)
		*stats = a.st;
out:
	rule_encoder_fini(&a.enc);
	free(a.state);
	free(a.order);
	names_free(&a.stale);
	return ret;
}

/* ---- remove / list ------------------------------------------------------------- */

static bool table_missing(int e)
{
	return e == ENOENT || e == EINVAL || e == ENOPROTOOPT;
}

/* Jumps from built-in chains into prefix chains go, then the chains. */
int iptc_remove_chains(const char *table, uint8_t family, const char *const *prefixes, char **err)
{
	const struct fam_ops *ops = fam_ops(family);
	struct name_list builtins = { 0 }, doomed = { 0 };
	struct xtc_handle *h = NULL;
	const char *skipped = NULL;
	unsigned tries = 0, user_pos;
	int lock, ret;

	*err = NULL;
	if (!ops) {
		*err = xasprintf("table %s: unknown address family %u", table, family);
		return -EAFNOSUPPORT;
	}
	lock = xt_lock(err);
	if (lock < 0)
		return lock;
again:
	ret = 0;
	tries++;
	skipped = NULL;
	user_pos = 0;
	names_free(&builtins);
	names_free(&doomed);
	h = ops->x->init(table);
	if (!h) {
		if (table_missing(errno))
			goto out;
		ret = fail(ops, table, "init", NULL, err);
		goto out;
	}
	for (const char *name = ops->x->first_chain(h); name; name = ops->x->next_chain(h)) {
		if (user_pos == 0 && ops->x->builtin(name, h)) {
			names_add(&builtins, name, 0);
			continue;
		}
		if (has_prefix(name, prefixes))
			names_add(&doomed, name, user_pos);
		user_pos++;
	}
	for (size_t i = 0; i < builtins.n; i++) {
		unsigned pos = 0, *gone = NULL;
		size_t n_gone = 0;

		for (const void *e = ops->first_rule(builtins.names[i], h); e;
		     e = ops->next_rule(e, h), pos++) {
			if (names_has(&doomed, ops->get_target(e, h))) {
				gone = xrealloc(gone, (n_gone + 1) * sizeof(*gone));
				gone[n_gone++] = pos;
			}
		}
		while (n_gone > 0) {
			if (!ops->delete_num(builtins.names[i], gone[--n_gone], h)) {
				free(gone);
				ret = fail(ops, table, "delete rule in", builtins.names[i], err);
				goto out;
			}
		}
		free(gone);
	}
	for (size_t i = 0; i < doomed.n; i++) {
		if (!ops->x->flush_entries(doomed.names[i], h)) {
			ret = fail(ops, table, "flush chain", doomed.names[i], err);
			goto out;
		}
	}
	ret = delete_chains(ops, h, table, &doomed, NULL, &skipped, err);
	if (ret < 0)
		goto out;
	if (!ops->commit(h)) {
		ret = -(errno ? errno : EIO);
		if (ret == -EAGAIN && tries < MAX_TRIES) {
			ops->x->free(h);
			h = NULL;
			goto again;
		}
		fail(ops, table, "commit", NULL, err);
		goto out;
	}
	if (skipped) {
		*err = xasprintf("%s -t %s: chain %s is still referenced by a chain that is not ours; "
				 "left it empty", ops->name, table, skipped);
		ret = -EMLINK;
	}
out:
	if (h)
		ops->x->free(h);
	xt_unlock(lock);
	names_free(&builtins);
	names_free(&doomed);
	return ret;
}

/* Read-only: no lock, no commit. */
int iptc_list_chains(const char *table, uint8_t family, const char *prefix, char ***names, size_t *n)
{
	const struct fam_ops *ops = fam_ops(family);
	struct xtc_handle *h;
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (!ops)
		return -EAFNOSUPPORT;
	h = ops->x->init(table);
	if (!h)
		return table_missing(errno) ? 0 : -(errno ? errno : EIO);
	for (const char *name = ops->x->first_chain(h); name; name = ops->x->next_chain(h)) {
		if (!str_has_prefix(name, prefix))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*names = xrealloc(*names, cap * sizeof(**names));
		}
		(*names)[(*n)++] = xstrdup(name);
	}
	ops->x->free(h);
	return 0;
}
