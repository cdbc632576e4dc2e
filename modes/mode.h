/* The proxy mode interface. A mode turns a struct proxy_state (the desired
 * state, store.h) into kernel state. Exactly one file, modes/registry.c,
 * knows which modes exist and which were compiled in. */
#ifndef KP_MODE_H
#define KP_MODE_H

#include <stdbool.h>
#include <stdio.h>

#include "../src/config.h"
#include "../src/store.h"

struct loop;
struct strbuf;

struct mode_ctx {
	const struct config *cfg;
	struct loop *loop;        /* the daemon's event loop (userspace relays) */
	void *priv;               /* the mode's own state, set by init */
};

/* Counters a mode reports after each sync (metrics). */
struct sync_stats {
	bool full;                /* this sync rewrote everything */
	unsigned long rules_nat;  /* rules in our nat chains after the sync */
	unsigned long rules_filter;
	unsigned long chains_written; /* chains (re)written */
};

struct proxy_mode {
	const char *name;
	/* Can this kernel run the mode? 0 = yes; else *why explains (malloc'd). */
	int (*probe)(const struct config *cfg, char **why);
	/* Sets up ctx->priv. 0 or -errno. */
	int (*init)(struct mode_ctx *ctx);
	/* Makes the kernel match ps. changed lists services whose rules may have
	 * changed since the last successful sync; full asks to rewrite
	 * everything. 0 or -errno (the runner retries with backoff). */
	int (*sync)(struct mode_ctx *ctx, const struct proxy_state *ps,
		    const struct dirty_set *changed, bool full, struct sync_stats *stats);
	/* --dry-run: writes what sync would program to out. Optional. */
	int (*dump)(const struct config *cfg, const struct proxy_state *ps, FILE *out);
	/* /metrics: appends the mode's own metric families, read from the
	 * kernel at scrape time (Prometheus text). Optional. */
	void (*metrics)(struct mode_ctx *ctx, struct strbuf *out);
	/* --cleanup: removes everything this mode (or upstream's) owns. */
	int (*cleanup)(const struct config *cfg);
	void (*fini)(struct mode_ctx *ctx);
};

/* Looks up a compiled-in mode by name; NULL if unknown or compiled out. */
const struct proxy_mode *mode_find(const char *name);
/* True if name is a mode this program knows about, even if compiled out. */
bool mode_known(const char *name);
/* All compiled-in modes, NULL terminated. */
const struct proxy_mode *const *mode_list(void);

#endif
