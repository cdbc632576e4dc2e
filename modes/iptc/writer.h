/* Writes a struct table_want into the kernel through libiptc (legacy
 * x_tables): one handle per table, one iptc_commit, retried when another
 * writer committed in between. Only KUBE-* chains and the jump rules into
 * them are touched; every other chain and rule survives. */
#ifndef KP_IPTC_WRITER_H
#define KP_IPTC_WRITER_H

#include <stdbool.h>

#include "rule.h"

struct apply_stats {
	unsigned long chains_created, chains_rewritten, chains_deleted, chains_unchanged;
	unsigned long rules_total;       /* rules in our chains after the commit */
	unsigned commit_attempts;
	/* Where the time of the last attempt went (ns): iptc_init (reading and
	 * parsing the kernel's table), our edits on the handle (compare,
	 * create, flush, append, delete), iptc_commit (compile + replace) and
	 * releasing the handle; all_ns is the whole call (lock, retries). */
	unsigned long long init_ns, edit_ns, commit_ns, free_ns, all_ns;
};

/* Makes the table match t:
 *  - every chain in t exists with exactly its rules (a chain with keep set
 *    is left alone if present, recreated from its rules if missing, and
 *    if it is missing and has no rules the call fails with -ESTALE before
 *    changing anything, so the caller can retry with a full sync);
 *  - KUBE-* chains that are not in t and whose name starts with one of the
 *    stale_prefixes (NULL-terminated, e.g. "KUBE-SVC-", "KUBE-SEP-") are
 *    deleted; other KUBE-* chains (another mode's) are left alone;
 *  - each built-in jump rule in t->builtin_jumps exists once, at the top of
 *    its built-in chain, in the given order;
 * then commits once. Retries from scratch up to 5 times on EAGAIN.
 * 0 or -errno with *err describing the failure (caller frees). */
int iptc_apply(const struct table_want *t, const char *const *stale_prefixes,
	       struct apply_stats *stats, char **err);

/* Removes from one table every jump rule from a built-in chain into a
 * chain whose name starts with one of prefixes, then flushes and deletes
 * those chains. A missing table is success. 0 or -errno with *err. */
int iptc_remove_chains(const char *table, uint8_t family, const char *const *prefixes, char **err);

/* Names of chains in table whose name starts with prefix (caller frees
 * each and the array). Used to detect another proxy's leftovers. 0 or -errno. */
int iptc_list_chains(const char *table, uint8_t family, const char *prefix, char ***names, size_t *n);

#endif
