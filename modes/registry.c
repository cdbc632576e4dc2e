/* The one place that knows which proxy modes exist and which were compiled
 * in (configure --disable-<mode>). */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "mode.h"

extern const struct proxy_mode iptables_mode;
extern const struct proxy_mode ipvs_mode;
extern const struct proxy_mode userspace_mode;

static const struct proxy_mode *const modes[] = {
#ifdef ENABLE_IPTABLES
	&iptables_mode,
#endif
#ifdef ENABLE_IPVS
	&ipvs_mode,
#endif
#ifdef ENABLE_USERSPACE
	&userspace_mode,
#endif
	NULL
};

static const char *const known[] = { "iptables", "ipvs", "userspace" };

const struct proxy_mode *mode_find(const char *name)
{
	for (size_t i = 0; modes[i]; i++)
		if (strcmp(modes[i]->name, name) == 0)
			return modes[i];
	return NULL;
}

bool mode_known(const char *name)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i], name) == 0)
			return true;
	return false;
}

const struct proxy_mode *const *mode_list(void)
{
	return modes;
}
