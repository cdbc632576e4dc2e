/* The runner turns store changes into mode syncs: it coalesces bursts (at
 * most one sync per min-sync-period), schedules a periodic full resync,
 * and retries a failed sync with exponential backoff while the previous
 * kernel state stays in force. */
#ifndef KP_RUNNER_H
#define KP_RUNNER_H

#include <stdbool.h>

#include "../modes/mode.h"

struct runner;
struct loop;
struct store;

struct runner_stats {
	unsigned long long syncs, failures;
	double last_sync_time;          /* wall clock of the last successful sync, 0 = never */
	double last_queued_time;        /* wall clock when a change was first left unsynced, 0 = none */
	double applied_queued_time;     /* last_queued_time as it was when the latest sync started */
	double last_duration_s;
	bool last_full;
	struct sync_stats last;
};

/* Called after every sync attempt (sd_notify, health, metrics). ok tells
 * whether the mode succeeded; ps is the state that was (or failed to be)
 * programmed, valid during the call only; stats already include it. */
typedef void (*runner_synced_cb)(const struct proxy_state *ps, bool ok,
				 const struct runner_stats *stats, void *arg);

struct runner *runner_new(struct loop *l, struct store *st, const struct proxy_mode *mode,
			  struct mode_ctx *ctx, unsigned min_period_ms, unsigned full_period_ms);
void runner_free(struct runner *r);
void runner_on_synced(struct runner *r, runner_synced_cb cb, void *arg);
/* Sources call this after feeding the store. Syncs are held back until
 * runner_set_ready (all sources have delivered their initial state). */
void runner_kick(struct runner *r);
/* Asks for a full resync (SIGHUP) at the next opportunity. */
void runner_force_full(struct runner *r);
void runner_set_ready(struct runner *r);
const struct runner_stats *runner_get_stats(const struct runner *r);

#endif
