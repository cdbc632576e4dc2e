/* Conntrack hygiene. UDP has no connection end, so a flow keeps following
 * the conntrack entry created for its first packet: when a UDP service's
 * endpoint goes away, clients keep sending into the void until the entry
 * times out. After each successful sync we delete UDP entries addressed to
 * a service frontend (ClusterIP, external IP, LB IP, or a NodePort on a
 * local address) whose reply source is not a current serving endpoint, as
 * upstream's cleanup does, in-process through libnetfilter_conntrack.
 * Also: conntrack sysctls from the --conntrack-* flags, --oom-score-adj. */
#ifndef KP_CONNTRACK_H
#define KP_CONNTRACK_H

#include "config.h"
#include "store.h"

struct conntrack_cleaner;

/* Opens a conntrack netlink handle in the current network namespace. NULL
 * with *err (caller frees) when that is impossible. */
struct conntrack_cleaner *conntrack_cleaner_new(char **err);

/* Call after a successful sync with the state that was programmed. When the
 * UDP frontends or serving endpoints differ from the previous call (always
 * on the first), dumps the UDP entries and deletes the stale ones. Returns
 * the number of entries deleted, or -errno. */
int conntrack_cleaner_sync(struct conntrack_cleaner *c, const struct proxy_state *ps);

/* Entries deleted since creation. */
unsigned long long conntrack_cleaner_deleted(const struct conntrack_cleaner *c);
/* Closes the netlink handle and frees c (NULL is fine). */
void conntrack_cleaner_free(struct conntrack_cleaner *c);

/* Writes the conntrack sysctls the flags ask for (nf_conntrack_max from
 * --conntrack-max-per-core x CPUs / --conntrack-min, TCP established and
 * close-wait timeouts, UDP timeouts), each only when it differs. root
 * prefixes /proc and /sys (NULL = the real ones; tests use a directory).
 * A read-only nf_conntrack_max (any network namespace but the first) is
 * logged and skipped, as upstream does. 0 or -errno with *err set. */
int conntrack_set_sysctls(const struct config *cfg, const char *root, char **err);

/* Writes value to <root>/proc/self/oom_score_adj if it differs. 0 or -errno. */
int set_oom_score_adj(int value, const char *root);

#endif
