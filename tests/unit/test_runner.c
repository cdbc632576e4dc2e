/* The runner with a fake mode on the real loop: syncs wait for readiness,
 * bursts coalesce, failures retry with backoff and force a full sync, and
 * the dirty set of a failed sync is carried into the next one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/log.h"
#include "src/loop.h"
#include "src/runner.h"
#include "src/store.h"
#include "src/util.h"

struct fake {
	int calls;
	int fail_next;
	bool last_full;
	size_t last_dirty;
	bool saw_a;
	size_t last_ports;
};

static struct fake fk;

static int fake_sync(struct mode_ctx *ctx, const struct proxy_state *ps,
		     const struct dirty_set *changed, bool full, struct sync_stats *st)
{
	fk.calls++;
	fk.last_full = full;
	fk.last_dirty = changed->n;
	fk.saw_a = dirty_has(changed, "ns/a");
	fk.last_ports = ps->n_ports;
	if (fk.fail_next > 0) {
		fk.fail_next--;
		return -EIO;
	}
	return 0;
}

static const struct proxy_mode fake_mode = { .name = "fake", .sync = fake_sync };

static struct service *svc(const char *name)
{
	struct service *s = xcalloc(1, sizeof(*s));

	s->ns = xstrdup("ns");
	s->name = xstrdup(name);
	addr_parse("10.0.0.1", &s->cluster_ips[0]);
	s->n_cluster_ips = 1;
	s->n_ports = 1;
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->ports[0].name = xstrdup("");
	s->ports[0].port = 80;
	return s;
}

struct step {
	struct loop *l;
	struct runner *r;
	struct store *st;
	int stage;
};

static void stop(struct loop *l, struct loop_timer *t, void *arg)
{
	loop_quit(l);
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct loop *l, unsigned ms)
{
	struct loop_timer *t = loop_timer_new(l, stop, NULL);

	loop_timer_arm(t, ms);
	loop_run(l);
	loop_timer_free(t);
}

static void test_ready_and_coalesce(void **state)
{
	struct loop *l = loop_new();
	struct store *st = store_new(NULL);
	struct mode_ctx ctx = { 0 };
	struct runner *r = runner_new(l, st, &fake_mode, &ctx, 300, 60000);

	memset(&fk, 0, sizeof(fk));
	store_upsert_service(st, svc("a"));
	runner_kick(r);
	run_for(l, 100);
	assert_int_equal(fk.calls, 0);          /* not ready: nothing */

	runner_set_ready(r);
	run_for(l, 50);
	assert_int_equal(fk.calls, 1);          /* first sync at once, full */
	assert_true(fk.last_full);
	assert_true(fk.saw_a);

	/* A burst inside the min period coalesces into one partial sync. */
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "b%d", i);
		store_upsert_service(st, svc(name));
		runner_kick(r);
	}
	run_for(l, 100);
	assert_int_equal(fk.calls, 1);          /* held back by min period */
	run_for(l, 400);
	assert_int_equal(fk.calls, 2);
	assert_false(fk.last_full);
	assert_int_equal(fk.last_dirty, 20);
	assert_int_equal(fk.last_ports, 21);
	assert_int_equal(runner_get_stats(r)->syncs, 2);

	/* A notification that changed nothing costs no sync. */
	runner_kick(r);
	run_for(l, 400);
	assert_int_equal(fk.calls, 2);

	runner_free(r);
	store_free(st);
	loop_free(l);
}

static void test_failure_backoff(void **state)
{
	struct loop *l = loop_new();
	struct store *st = store_new(NULL);
	struct mode_ctx ctx = { 0 };
	struct runner *r = runner_new(l, st, &fake_mode, &ctx, 200, 60000);
	const struct runner_stats *s = runner_get_stats(r);

	memset(&fk, 0, sizeof(fk));
	runner_set_ready(r);
	run_for(l, 30);
	assert_int_equal(fk.calls, 1);

	store_upsert_service(st, svc("a"));
	fk.fail_next = 2;
	runner_kick(r);                         /* t=30: due at t=200 */
	run_for(l, 300);
	assert_int_equal(fk.calls, 2);          /* failed at t=200 */
	assert_int_equal(s->failures, 1);
	assert_true(s->last_queued_time > 0);
	run_for(l, 200);
	assert_int_equal(fk.calls, 3);          /* retried at t=400, failed again */
	assert_true(fk.last_full);
	assert_true(fk.saw_a);                  /* carried over */
	run_for(l, 150);
	assert_int_equal(fk.calls, 3);          /* backoff doubled: next at t=800 */
	run_for(l, 250);
	assert_int_equal(fk.calls, 4);
	assert_true(fk.last_full);
	assert_true(fk.saw_a);
	assert_int_equal(s->failures, 2);
	assert_int_equal(s->syncs, 2);
	assert_true(s->last_queued_time == 0);

	runner_free(r);
	store_free(st);
	loop_free(l);
}

static void test_periodic(void **state)
{
	struct loop *l = loop_new();
	struct store *st = store_new(NULL);
	struct mode_ctx ctx = { 0 };
	struct runner *r = runner_new(l, st, &fake_mode, &ctx, 10, 100);

	memset(&fk, 0, sizeof(fk));
	runner_set_ready(r);
	run_for(l, 350);
	assert_in_range(fk.calls, 3, 5);        /* initial + one every 100 ms */
	runner_force_full(r);
	run_for(l, 20);
	assert_true(fk.last_full);
	runner_free(r);
	store_free(st);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_and_coalesce),
		cmocka_unit_test(test_failure_backoff),
		cmocka_unit_test(test_periodic),
	};

	log_set_stderr(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
