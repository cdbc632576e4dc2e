#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <jansson.h>
#include <cmocka.h>

#include "src/healthz.h"
#include "src/util.h"

static void test_go_time(void **state)
{
	struct timespec t = { .tv_sec = 1700000000, .tv_nsec = 123456000 };
	char buf[96];

	assert_string_equal(healthz_go_time(&t, 1.5, buf, sizeof(buf)),
			    "2023-11-14 22:13:20.123456 +0000 UTC m=+1.500000000");
	t.tv_nsec = 0;
	assert_string_equal(healthz_go_time(&t, -1, buf, sizeof(buf)), "2023-11-14 22:13:20 +0000 UTC");
	t.tv_nsec = 5;
	assert_string_equal(healthz_go_time(&t, -1, buf, sizeof(buf)), "2023-11-14 22:13:20.000000005 +0000 UTC");
	assert_string_equal(healthz_go_time(NULL, 3, buf, sizeof(buf)), "0001-01-01 00:00:00 +0000 UTC");
}

static void test_is_healthy(void **state)
{
	struct runner_stats st = { 0 };
	struct healthz *h = healthz_new(&st, 60000);

	/* Nothing queued (starting up or synced): healthy. */
	assert_true(healthz_is_healthy(h, 1000));
	/* Queued 59 s ago, timeout 60 s: still fine; 60 s: not. */
	st.last_queued_time = 1000;
	assert_true(healthz_is_healthy(h, 1059));
	assert_false(healthz_is_healthy(h, 1060));
	assert_false(healthz_is_healthy(h, 5000));
	/* A sync applied it. */
	st.last_queued_time = 0;
	st.last_sync_time = 5000;
	assert_true(healthz_is_healthy(h, 5000));
	healthz_free(h);
}

static json_t *call(struct healthz *h, const char *path, int *status)
{
	struct http_request req = { .method = "GET", .path = path, .query = "", .minor = 1 };
	struct http_response resp = { 0 };
	json_error_t je;
	json_t *j;

	sb_init(&resp.body);
	healthz_handle(&req, &resp, h);
	*status = resp.status;
	if (resp.status == 404) {
		sb_free(&resp.body);
		return NULL;
	}
	assert_string_equal(resp.content_type, "application/json");
	assert_true(resp.nosniff);
	j = json_loads(sb_cstr(&resp.body), 0, &je);
	if (!j)
		fail_msg("not JSON: %s", sb_cstr(&resp.body));
	sb_free(&resp.body);
	return j;
}

static void test_handler(void **state)
{
	struct runner_stats st = { 0 };
	struct healthz *h = healthz_new(&st, 60000);
	unsigned long long hz[2], lz[2];
	struct timespec last = { .tv_sec = 1600000000, .tv_nsec = 250000000 };
	char want[96];
	json_t *j;
	int status;

	/* Healthy: 200, lastUpdated is "now" (upstream's compatibility rule). */
	j = call(h, "/healthz", &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "lastUpdated")),
			    json_string_value(json_object_get(j, "currentTime")));
	assert_true(json_is_true(json_object_get(j, "nodeEligible")));
	assert_int_equal(json_object_size(j), 3);
	assert_non_null(strstr(json_string_value(json_object_get(j, "currentTime")), " m=+"));
	json_decref(j);

	/* A change queued long ago and never applied: 503 on both. */
	st.last_sync_time = 1600000000.25;
	st.last_queued_time = wall_time() - 61;
	j = call(h, "/healthz", &status);
	assert_int_equal(status, 503);
	healthz_go_time(&last, -1, want, sizeof(want));
	/* The stored lastUpdated predates the server: no monotonic part. */
	assert_string_equal(json_string_value(json_object_get(j, "lastUpdated")), want);
	json_decref(j);
	j = call(h, "/livez", &status);
	assert_int_equal(status, 503);
	assert_int_equal(json_object_size(j), 2);
	assert_null(json_object_get(j, "nodeEligible"));
	json_decref(j);

	/* Applied: healthy again. Node being deleted: healthz 503, livez 200. */
	st.last_queued_time = 0;
	healthz_set_node_eligible(h, false);
	j = call(h, "/healthz", &status);
	assert_int_equal(status, 503);
	assert_true(json_is_false(json_object_get(j, "nodeEligible")));
	json_decref(j);
	j = call(h, "/livez", &status);
	assert_int_equal(status, 200);
	json_decref(j);

	assert_null(call(h, "/metrics", &status));
	assert_int_equal(status, 404);

	healthz_counts(h, hz, lz);
	assert_int_equal(hz[0], 1);
	assert_int_equal(hz[1], 2);
	assert_int_equal(lz[0], 1);
	assert_int_equal(lz[1], 1);
	healthz_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_time),
		cmocka_unit_test(test_is_healthy),
		cmocka_unit_test(test_handler),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
