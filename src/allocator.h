/* ClusterIP allocation from the service CIDR(s) for Services that arrive
 * without one (manifest source only). Allocations are keyed by "ns/name",
 * persisted in <state-dir>/clusterip-allocations (atomic replace), and
 * survive restarts. */
#ifndef KP_ALLOCATOR_H
#define KP_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"

struct allocator;

/* ranges: one per IP family (at most 2). state_path may be NULL (no
 * persistence). Loads existing allocations; entries outside the ranges are
 * dropped with a warning. On error *err explains. */
struct allocator *allocator_new(const struct cidr *ranges, size_t n_ranges,
				const char *state_path, char **err);
void allocator_free(struct allocator *a);

/* Gives key an address of family (AF_INET/AF_INET6): its existing one if
 * any, else the lowest free one (never network or broadcast). 0, -ENOSPC
 * when exhausted, -EAFNOSUPPORT when no range of that family. */
int allocator_assign(struct allocator *a, const char *key, int family, struct addr *out);
/* Reserves a specific address for key. 0; -ERANGE outside every range (or the
 * network/broadcast address); -EEXIST if held by another key (*holder, borrowed). */
int allocator_request(struct allocator *a, const char *key, const struct addr *ip, const char **holder);
/* Frees every address held by key. */
void allocator_release(struct allocator *a, const char *key);
/* Address held by key for family, or NULL. */
const struct addr *allocator_lookup(const struct allocator *a, const char *key, int family);
/* Number of addresses held (a dual-stack key counts twice). */
size_t allocator_count(const struct allocator *a);
/* Releases every key for which keep(key, arg) is false (Services deleted
 * while the daemon was down). */
void allocator_prune(struct allocator *a, bool (*keep)(const char *key, void *arg), void *arg);
/* Writes the state file if anything changed since the last save. 0 or -errno. */
int allocator_save(struct allocator *a);
/* From now on allocator_save writes nothing (--dry-run touches nothing):
 * existing allocations are still honoured, new ones live in memory only. */
void allocator_set_read_only(struct allocator *a);

#endif
