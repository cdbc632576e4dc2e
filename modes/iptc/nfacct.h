/* Named packet counters of the kernel's extended accounting
 * (nfnetlink_acct), the objects that "-m nfacct --nfacct-name NAME" rules
 * (rule_nfacct) count into. Each call opens its own netlink socket in the
 * caller's network namespace. */
#ifndef KP_IPTC_NFACCT_H
#define KP_IPTC_NFACCT_H

#include <stdint.h>

/* Creates counter name unless it exists. 0 or -errno (a kernel without
 * nfnetlink_acct answers -EOPNOTSUPP or -ENOENT, or refuses the socket). */
int nfacct_ensure(const char *name);

/* Reads counter name's packet count: 0, -ENOENT when there is no such
 * counter, or another -errno. */
int nfacct_read(const char *name, uint64_t *packets);

/* Does the kernel's x_tables have the "nfacct" match (xt_nfacct) in the
 * revision rule_nfacct encodes? nfnetlink_acct alone is not enough: a
 * rule naming a missing match would fail every commit. 0 or -errno
 * (-ENOENT: no such match; -EPROTONOSUPPORT: older revision only). The
 * kernel may load the module to answer. */
int nfacct_match_usable(void);

#endif
