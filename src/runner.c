#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "runner.h"
#include "store.h"
#include "util.h"

#define FULL_SYNC_EVERY_MS (60ULL * 60 * 1000)  /* upstream: hourly full sync */
#define BACKOFF_MAX_MS 30000ULL

struct runner {
	struct loop *loop;
	struct store *store;
	const struct proxy_mode *mode;
	struct mode_ctx *ctx;
	unsigned min_period_ms, period_ms;
	bool ready;
	bool need_full;                /* first sync, after a failure, SIGHUP, hourly */
	unsigned long long last_attempt_ms, last_full_ms;
	unsigned long long backoff_ms; /* 0 = not failing */
	struct loop_timer *sync_timer;     /* the next (coalesced) sync */
	struct loop_timer *periodic_timer; /* --iptables-sync-period */
	struct dirty_set pending;      /* dirty keys of failed syncs, merged in */
	struct runner_stats stats;
	runner_synced_cb cb;
	void *cb_arg;
};

static void merge_dirty(struct dirty_set *into, const struct dirty_set *from)
{
	size_t n = into->n + from->n;

	if (!from->n)
		return;
	into->keys = xrealloc(into->keys, (n + 1) * sizeof(char *));
	for (size_t i = 0; i < from->n; i++)
		into->keys[into->n++] = xstrdup(from->keys[i]);
	qsort(into->keys, into->n, sizeof(char *), cmp_strp);
	/* Drop duplicates so bsearch sees each key once. */
	n = 0;
	for (size_t i = 0; i < into->n; i++) {
		if (n && strcmp(into->keys[n - 1], into->keys[i]) == 0) {
			free(into->keys[i]);
			continue;
		}
		into->keys[n++] = into->keys[i];
	}
	into->n = n;
}

static void schedule(struct runner *r, unsigned long long delay_ms)
{
	loop_timer_arm(r->sync_timer, delay_ms);
}

static void do_sync(struct runner *r)
{
	struct dirty_set dirty = { 0 };
	struct sync_stats ss = { 0 };
	struct proxy_state *ps;
	unsigned long long t0 = now_ns(), now = now_ms();
	bool full = r->need_full || now - r->last_full_ms >= FULL_SYNC_EVERY_MS;
	double dur;
	int err;

	r->last_attempt_ms = now;
	r->stats.applied_queued_time = r->stats.last_queued_time;
	ps = store_snapshot(r->store, &dirty);
	merge_dirty(&dirty, &r->pending);
	err = r->mode->sync(r->ctx, ps, &dirty, full, &ss);
	dur = (double)(now_ns() - t0) / 1e9;
	r->stats.last_duration_s = dur;
	if (err < 0) {
		r->stats.failures++;
		r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : (r->min_period_ms ? r->min_period_ms : 1000);
		if (r->backoff_ms > BACKOFF_MAX_MS)
			r->backoff_ms = BACKOFF_MAX_MS;
		/* Keep what changed; the next attempt rewrites everything anyway. */
		dirty_set_clear(&r->pending);
		r->pending = dirty;
		r->need_full = true;
		if (!r->stats.last_queued_time)
			r->stats.last_queued_time = wall_time();
		log_error("Failed to sync %s proxy rules (%s), retrying in %llu ms: the previous rules stay in place",
			  r->mode->name, strerror(-err), r->backoff_ms);
		if (r->cb)
			r->cb(ps, false, &r->stats, r->cb_arg);
		schedule(r, r->backoff_ms);
		proxy_state_free(ps);
		return;
	}
	r->backoff_ms = 0;
	r->need_full = false;
	if (full)
		r->last_full_ms = now;
	dirty_set_clear(&r->pending);
	dirty_set_clear(&dirty);
	r->stats.syncs++;
	r->stats.last_sync_time = wall_time();
	r->stats.last_queued_time = 0;
	r->stats.last_full = full;
	r->stats.last = ss;
	r->stats.last.full = full;
	log_v(2, "Synced %s proxy rules: %zu services, %zu service ports, %zu endpoints, %s sync in %.3fs",
	      r->mode->name, ps->n_services, ps->n_ports, ps->n_endpoints, full ? "full" : "partial", dur);
	if (r->cb)
		r->cb(ps, true, &r->stats, r->cb_arg);
	proxy_state_free(ps);
	/* Changes that arrived during the sync (none today: one thread) or the
	 * periodic timer's next tick keep us going. */
	if (store_has_changes(r->store))
		runner_kick(r);
}

static void sync_timer_fired(struct loop *l, struct loop_timer *t, void *arg)
{
	do_sync(arg);
}

static void periodic_fired(struct loop *l, struct loop_timer *t, void *arg)
{
	struct runner *r = arg;

	loop_timer_arm(r->periodic_timer, r->period_ms);
	if (r->ready && !loop_timer_armed(r->sync_timer))
		do_sync(r);
}

struct runner *runner_new(struct loop *l, struct store *st, const struct proxy_mode *mode,
			  struct mode_ctx *ctx, unsigned min_period_ms, unsigned full_period_ms)
{
	struct runner *r = xcalloc(1, sizeof(*r));

	r->loop = l;
	r->store = st;
	r->mode = mode;
	r->ctx = ctx;
	r->min_period_ms = min_period_ms;
	r->period_ms = full_period_ms ? full_period_ms : 30000;
	r->need_full = true;
	r->sync_timer = loop_timer_new(l, sync_timer_fired, r);
	r->periodic_timer = loop_timer_new(l, periodic_fired, r);
	return r;
}

void runner_free(struct runner *r)
{
	if (!r)
		return;
	loop_timer_free(r->sync_timer);
	loop_timer_free(r->periodic_timer);
	dirty_set_clear(&r->pending);
	free(r);
}

void runner_on_synced(struct runner *r, runner_synced_cb cb, void *arg)
{
	r->cb = cb;
	r->cb_arg = arg;
}

void runner_kick(struct runner *r)
{
	unsigned long long now = now_ms(), due;
	bool changes = store_has_changes(r->store);

	if (changes && !r->stats.last_queued_time)
		r->stats.last_queued_time = wall_time();
	/* A notification that changed nothing (a Node status update, a
	 * rescan finding the same objects) costs no sync: at 10k services
	 * even a no-op sync reads the whole table back. */
	if (!changes && !r->need_full && !r->backoff_ms)
		return;
	if (!r->ready || loop_timer_armed(r->sync_timer))
		return;
	if (r->backoff_ms) {
		due = r->last_attempt_ms + r->backoff_ms;
	} else {
		due = r->last_attempt_ms ? r->last_attempt_ms + r->min_period_ms : now;
	}
	schedule(r, due > now ? due - now : 0);
}

void runner_force_full(struct runner *r)
{
	r->need_full = true;
	if (!r->stats.last_queued_time)
		r->stats.last_queued_time = wall_time();
	if (r->ready && !loop_timer_armed(r->sync_timer))
		schedule(r, 0);
}

void runner_set_ready(struct runner *r)
{
	if (r->ready)
		return;
	r->ready = true;
	loop_timer_arm(r->periodic_timer, r->period_ms);
	runner_kick(r);
	if (!loop_timer_armed(r->sync_timer))
		schedule(r, 0);
}

const struct runner_stats *runner_get_stats(const struct runner *r)
{
	return &r->stats;
}
