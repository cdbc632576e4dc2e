/* Measuring prototype (see iptc_direct.c): replaces the IPv4 nat table
 * with t in one IPT_SO_SET_REPLACE, without libiptc. Only for tables as
 * bench/iptc_bench builds them; not used by the daemon. 0 or -errno with
 * *err (caller frees). */
#ifndef KP_BENCH_IPTC_DIRECT_H
#define KP_BENCH_IPTC_DIRECT_H

#include "modes/iptc/rule.h"

int iptc_direct_replace_nat4(const struct table_want *t, char **err);

#endif
