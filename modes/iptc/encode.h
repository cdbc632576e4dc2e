/* Internal to modes/iptc: binary encoding of one struct rule into the
 * ipt_entry / ip6t_entry that libiptc appends, byte for byte what
 * iptables-legacy 1.8.9 builds for the same arguments (same match and
 * target revisions, same defaults, same padding). */
#ifndef KP_IPTC_ENCODE_H
#define KP_IPTC_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rule.h"

struct ipset_ref {
	char name[32];
	uint16_t index;
};

/* Per-family encoder with one reusable output buffer; ipset indexes are
 * looked up once per name (SO_IP_SET) and cached. */
struct rule_encoder {
	uint8_t family;              /* AF_INET or AF_INET6 */
	uint8_t *buf;
	size_t cap;
	int ipset_fd;                /* -1 until a set match needs it */
	unsigned ipset_version;
	struct ipset_ref *sets;
	size_t n_sets;
};

void rule_encoder_init(struct rule_encoder *enc, uint8_t family);
void rule_encoder_fini(struct rule_encoder *enc);

/* Encodes r. On success *entry points into enc's buffer (valid until the
 * next call) and *len is its size (== next_offset). Jumps and verdicts
 * carry the target name ("ACCEPT", "KUBE-SVC-...") for libiptc to map.
 * 0, or -EINVAL / -ENOENT (unknown ipset) with *err set (caller frees). */
int rule_encode(struct rule_encoder *enc, const struct rule *r, const void **entry, size_t *len,
		char **err);

/* The name libiptc reports (iptc_get_target) for r's target when it is a
 * standard one (verdict, jump or fall-through ""); NULL for module targets. */
const char *rule_std_target_name(const struct rule *r);

/* Does an entry read back from the kernel through libiptc (their, with
 * their_target = iptc_get_target()) equal the encoded mine? Counters,
 * comefrom and jump offsets are ignored; everything else must match. */
bool rule_entry_equal(uint8_t family, const void *mine, const void *their, const char *their_target);

#endif
