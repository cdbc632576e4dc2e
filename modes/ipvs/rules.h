/* The small fixed iptables rule set of the ipvs mode (masquerade, node
 * ports, load-balancer source ranges, the IPVS filter), matching the
 * ipsets; built with modes/iptc/rule.h, written with modes/iptc/writer.h. */
#ifndef KP_IPVS_RULES_H
#define KP_IPVS_RULES_H

#include <stdint.h>
#include <stdio.h>

#include "../../src/config.h"
#include "../iptc/rule.h"

/* Fills nat and filter (initialised by the caller) for family. */
void kp_ipvs_rules_build(const struct config *cfg, uint8_t family,
			 struct table_want *nat, struct table_want *filter);
/* Builds and writes both tables. 0 or -errno with *err (caller frees). */
int kp_ipvs_rules_apply(const struct config *cfg, uint8_t family, char **err);
/* Writes both tables in iptables-restore format. */
void kp_ipvs_rules_render(const struct config *cfg, uint8_t family, FILE *out);
/* Removes our chains and the jumps into them from nat and filter. */
int kp_ipvs_rules_cleanup(uint8_t family, char **err);

#endif
