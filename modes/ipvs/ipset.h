/* The ipsets of the ipvs mode (upstream's names and types), programmed
 * in-process through libipset in restore-style batches. */
#ifndef KP_IPVS_IPSET_H
#define KP_IPVS_IPSET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../../src/cidr.h"
#include "../../src/model.h"

enum kp_set {
	SET_CLUSTER_IP,          /* hash:ip,port    VIP,proto:port */
	SET_LOOP_BACK,           /* hash:ip,port,ip EP,proto:port,EP (hairpin) */
	SET_EXTERNAL_IP,         /* hash:ip,port */
	SET_EXTERNAL_IP_LOCAL,   /* hash:ip,port */
	SET_LOAD_BALANCER,       /* hash:ip,port */
	SET_LOAD_BALANCER_LOCAL, /* hash:ip,port */
	SET_LOAD_BALANCER_FW,    /* hash:ip,port */
	SET_LOAD_BALANCER_SOURCE_IP,   /* hash:ip,port,ip */
	SET_LOAD_BALANCER_SOURCE_CIDR, /* hash:ip,port,net */
	SET_NODE_PORT_TCP,       /* bitmap:port */
	SET_NODE_PORT_LOCAL_TCP,
	SET_NODE_PORT_UDP,
	SET_NODE_PORT_LOCAL_UDP,
	SET_NODE_PORT_SCTP,      /* hash:ip,port (upstream: KUBE-NODE-PORT-SCTP-HASH) */
	SET_NODE_PORT_LOCAL_SCTP,
	SET_HEALTH_CHECK_NODE_PORT, /* bitmap:port */
	SET_IPVS_IPS,            /* hash:ip, every address on kube-ipvs0 */
	SET_COUNT
};

/* Upstream's name of set s for family (IPv6 sets are "KUBE-6-..."). */
const char *kp_set_name(enum kp_set s, uint8_t family, char *buf, size_t len);

/* Desired content of every set of one family. */
struct kp_sets;

struct kp_sets *kp_sets_new(uint8_t family);
void kp_sets_free(struct kp_sets *k);
/* Empties the desired content (keeps what was applied). */
void kp_sets_clear(struct kp_sets *k);
/* Adds an entry in ipset's text form ("10.0.0.1,tcp:80", "30080", ...). */
void kp_sets_add(struct kp_sets *k, enum kp_set s, const char *entry);

/* Writes the sets in `ipset save` format (create lines, then add lines). */
void kp_sets_render(struct kp_sets *k, FILE *out);
/* Makes the kernel match the desired content. full: rebuild each set in a
 * temporary set and swap it in (repairs any drift); otherwise only the
 * entries that differ from the last applied content are added/removed.
 * 0 or -errno with *err (caller frees). */
int kp_sets_apply(struct kp_sets *k, bool full, unsigned long *changes, char **err);
/* Whether set s has entry (in the kernel); used by --cleanup. */
bool kp_set_test(const char *set, const char *entry);
/* Destroys every set of ours (both families). 0 or -errno. */
int kp_sets_destroy_all(char **err);

#endif
