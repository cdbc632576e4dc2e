/* The addresses of this host's interfaces (NodePort addresses, health-check
 * listeners, conntrack cleanup of NodePort flows). */
#ifndef KP_HOSTADDR_H
#define KP_HOSTADDR_H

#include <stddef.h>

#include "cidr.h"

/* Every IPv4/IPv6 address of every interface, in getifaddrs order, into a
 * malloc'd array *out (NULL when none; caller frees). Returns the count, or
 * -errno when the interfaces cannot be read. */
long host_addresses(struct addr **out);

#endif
