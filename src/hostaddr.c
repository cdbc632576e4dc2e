#include "config.h"

#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>

#include "hostaddr.h"
#include "util.h"

long host_addresses(struct addr **out)
{
	struct ifaddrs *ifa;
	size_t n = 0, cap = 0;

	*out = NULL;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		struct addr a;

		if (addr_from_sockaddr(i->ifa_addr, &a) < 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[n++] = a;
	}
	freeifaddrs(ifa);
	return (long)n;
}
