/* The kube-ipvs0 dummy interface (kept down) that holds every service
 * address as a host address, and the node's own addresses, through
 * libnl-route-3. */
#ifndef KP_IPVS_DUMMY_H
#define KP_IPVS_DUMMY_H

#include <stddef.h>

#include "../../src/cidr.h"

#define KP_DUMMY_NAME "kube-ipvs0"

struct kp_dummy;

/* Opens a route socket; creates kube-ipvs0 unless it exists (when create
 * is true). 0 or -errno. */
int kp_dummy_open(struct kp_dummy **out, int create);
void kp_dummy_close(struct kp_dummy *d);
/* 0 when the link does not exist (kp_dummy_open with create = 0). */
int kp_dummy_ifindex(const struct kp_dummy *d);
/* Addresses on kube-ipvs0 (malloc'd array, caller frees). 0 or -errno. */
int kp_dummy_list(struct kp_dummy *d, struct addr **out, size_t *n);
/* Makes the addresses on kube-ipvs0 equal want (any order, duplicates
 * allowed). *added / *removed count the changes. 0 or -errno. */
int kp_dummy_sync(struct kp_dummy *d, const struct addr *want, size_t n, size_t *added, size_t *removed);
/* Adds (or removes) a single address. EEXIST / missing count as success. */
int kp_dummy_add(struct kp_dummy *d, const struct addr *a);
int kp_dummy_del(struct kp_dummy *d, const struct addr *a);
/* Deletes kube-ipvs0 (and so its addresses). Missing is success. */
int kp_dummy_delete(struct kp_dummy *d);
/* The node's addresses of family (not on kube-ipvs0, not loopback, not
 * link-local), restricted to the CIDRs in only when n_only > 0. */
int kp_node_addrs(struct kp_dummy *d, uint8_t family, const struct cidr *only, size_t n_only,
		  struct addr **out, size_t *n);

#endif
