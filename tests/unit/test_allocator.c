/* ClusterIP allocator: v4 and v6, exhaustion, conflicts, release and
 * reuse, persistence, corrupt state files, ranges changed between runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "src/allocator.h"
#include "src/log.h"
#include "src/util.h"

struct fixture {
	char dir[64];
	char *state;
	char *log;
};

static struct cidr C(const char *s)
{
	struct cidr c;

	assert_int_equal(cidr_parse(s, false, &c), 0);
	return c;
}

static struct addr A(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static const char *S(const struct addr *a)
{
	static char buf[4][ADDR_STRLEN];
	static int i;

	i = (i + 1) % 4;
	return addr_str(a, buf[i]);
}

static struct allocator *open_alloc(struct fixture *f, const char *r1, const char *r2)
{
	struct cidr c[2];
	size_t n = 0;
	char *err = NULL;
	struct allocator *a;

	if (r1)
		c[n++] = C(r1);
	if (r2)
		c[n++] = C(r2);
	a = allocator_new(c, n, f->state, &err);
	if (!a)
		fail_msg("allocator_new: %s", err);
	return a;
}

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t len;

	assert_int_equal(read_file(path, &buf, &len), 0);
	return buf;
}

static void test_v4_exhaustion_and_reuse(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/29", NULL);
	struct addr ip;
	char key[32];

	/* /29: .0 network and .7 broadcast are never handed out: 6 usable. */
	for (int i = 1; i <= 6; i++) {
		snprintf(key, sizeof(key), "ns/s%d", i);
		assert_int_equal(allocator_assign(a, key, AF_INET, &ip), 0);
		snprintf(key, sizeof(key), "10.0.0.%d", i);
		assert_string_equal(S(&ip), key);
	}
	assert_int_equal(allocator_count(a), 6);
	assert_int_equal(allocator_assign(a, "ns/s7", AF_INET, &ip), -ENOSPC);
	/* Asking again gives the same address. */
	assert_int_equal(allocator_assign(a, "ns/s3", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.3");
	/* Release frees exactly that address; the lowest free comes back. */
	allocator_release(a, "ns/s3");
	assert_null(allocator_lookup(a, "ns/s3", AF_INET));
	assert_int_equal(allocator_count(a), 5);
	assert_int_equal(allocator_assign(a, "ns/s7", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.3");
	assert_string_equal(S(allocator_lookup(a, "ns/s7", AF_INET)), "10.0.0.3");
	/* No IPv6 range. */
	assert_int_equal(allocator_assign(a, "ns/s8", AF_INET6, &ip), -EAFNOSUPPORT);
	/* Keys that could corrupt the state file are refused. */
	assert_int_equal(allocator_assign(a, "ns/a b", AF_INET, &ip), -EINVAL);
	assert_int_equal(allocator_assign(a, "noslash", AF_INET, &ip), -EINVAL);
	allocator_release(a, "ns/unknown");
	allocator_free(a);
}

static void test_request_conflicts(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/24", NULL);
	struct addr ip = A("10.0.0.10"), got;
	const char *holder = NULL;

	assert_int_equal(allocator_request(a, "default/web", &ip, &holder), 0);
	assert_int_equal(allocator_request(a, "default/web", &ip, &holder), 0);
	assert_int_equal(allocator_request(a, "default/other", &ip, &holder), -EEXIST);
	assert_string_equal(holder, "default/web");
	ip = A("10.0.1.1");
	assert_int_equal(allocator_request(a, "default/other", &ip, &holder), -ERANGE);
	ip = A("10.0.0.0");
	assert_int_equal(allocator_request(a, "default/other", &ip, &holder), -ERANGE);
	ip = A("10.0.0.255");
	assert_int_equal(allocator_request(a, "default/other", &ip, &holder), -ERANGE);
	ip = A("fd00::1");
	assert_int_equal(allocator_request(a, "default/other", &ip, &holder), -ERANGE);
	/* Assignment skips the requested address. */
	for (int i = 1; i <= 10; i++) {
		char key[32], want[32];

		snprintf(key, sizeof(key), "ns/a%d", i);
		assert_int_equal(allocator_assign(a, key, AF_INET, &got), 0);
		snprintf(want, sizeof(want), "10.0.0.%d", i < 10 ? i : 11);
		assert_string_equal(S(&got), want);
	}
	/* A new request for the same key and family replaces its address. */
	ip = A("10.0.0.200");
	assert_int_equal(allocator_request(a, "default/web", &ip, &holder), 0);
	assert_string_equal(S(allocator_lookup(a, "default/web", AF_INET)), "10.0.0.200");
	assert_int_equal(allocator_assign(a, "ns/a11", AF_INET, &got), 0);
	assert_string_equal(S(&got), "10.0.0.10");
	allocator_free(a);
}

static void test_v6(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/24", "fd00:10::/64");
	struct addr ip, req;
	const char *holder;

	/* Index 0 (subnet-router anycast) is skipped; a /64 costs no more than
	 * its 2^20-address window. */
	assert_int_equal(allocator_assign(a, "ns/x", AF_INET6, &ip), 0);
	assert_string_equal(S(&ip), "fd00:10::1");
	assert_int_equal(allocator_assign(a, "ns/x", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.1");
	assert_int_equal(allocator_count(a), 2);
	req = A("fd00:10::");
	assert_int_equal(allocator_request(a, "ns/y", &req, &holder), -ERANGE);
	/* Far beyond the window: still requestable, and conflicts detected. */
	req = A("fd00:10::dead:beef:1");
	assert_int_equal(allocator_request(a, "ns/y", &req, &holder), 0);
	assert_int_equal(allocator_request(a, "ns/z", &req, &holder), -EEXIST);
	assert_string_equal(holder, "ns/y");
	req = A("fd00:10::2");
	assert_int_equal(allocator_request(a, "ns/z", &req, &holder), 0);
	assert_int_equal(allocator_assign(a, "ns/w", AF_INET6, &ip), 0);
	assert_string_equal(S(&ip), "fd00:10::3");
	/* Small v6 range: /126 has indexes 1..3 (no broadcast in IPv6). */
	allocator_free(a);
	unlink(f->state);
	a = open_alloc(f, "fd00::/126", NULL);
	assert_int_equal(allocator_assign(a, "n/1", AF_INET6, &ip), 0);
	assert_int_equal(allocator_assign(a, "n/2", AF_INET6, &ip), 0);
	assert_int_equal(allocator_assign(a, "n/3", AF_INET6, &ip), 0);
	assert_string_equal(S(&ip), "fd00::3");
	assert_int_equal(allocator_assign(a, "n/4", AF_INET6, &ip), -ENOSPC);
	/* A v6 range wider than 64 host bits still works. */
	allocator_free(a);
	unlink(f->state);
	a = open_alloc(f, "fd00::/48", NULL);
	req = A("fd00:0:0:1::");   /* low 64 bits zero, but not index 0 */
	assert_int_equal(allocator_request(a, "n/far", &req, &holder), 0);
	assert_int_equal(allocator_assign(a, "n/1", AF_INET6, &ip), 0);
	assert_string_equal(S(&ip), "fd00::1");
	allocator_free(a);
}

static void test_persistence(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/24", "fd00::/120");
	struct addr ip;
	char *text;
	struct stat st;

	assert_int_equal(allocator_assign(a, "default/web", AF_INET, &ip), 0);
	assert_int_equal(allocator_assign(a, "default/web", AF_INET6, &ip), 0);
	assert_int_equal(allocator_assign(a, "b/api", AF_INET, &ip), 0);
	assert_int_equal(allocator_assign(a, "a/zzz", AF_INET, &ip), 0);
	allocator_release(a, "b/api");
	assert_int_equal(allocator_save(a), 0);
	text = slurp(f->state);
	assert_true(text[0] == '#');
	/* Sorted, one line per address. */
	assert_non_null(strstr(text, "\na/zzz\t10.0.0.3\ndefault/web\t10.0.0.1\ndefault/web\tfd00::1\n"));
	assert_null(strstr(text, "b/api"));
	free(text);
	/* Nothing changed: no rewrite. */
	assert_int_equal(stat(f->state, &st), 0);
	assert_int_equal(unlink(f->state), 0);
	assert_int_equal(allocator_save(a), 0);
	assert_int_equal(access(f->state, F_OK), -1);
	allocator_release(a, "nobody/x");
	assert_int_equal(allocator_save(a), 0);
	assert_int_equal(access(f->state, F_OK), -1);
	assert_int_equal(allocator_assign(a, "c/new", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.2");
	assert_int_equal(allocator_save(a), 0);
	allocator_free(a);

	/* A restart gives every key the same address. */
	a = open_alloc(f, "10.0.0.0/24", "fd00::/120");
	assert_int_equal(allocator_count(a), 4);
	assert_string_equal(S(allocator_lookup(a, "default/web", AF_INET)), "10.0.0.1");
	assert_string_equal(S(allocator_lookup(a, "default/web", AF_INET6)), "fd00::1");
	assert_string_equal(S(allocator_lookup(a, "a/zzz", AF_INET)), "10.0.0.3");
	assert_int_equal(allocator_assign(a, "c/new", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.2");
	assert_int_equal(allocator_assign(a, "d/next", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.4");
	allocator_free(a);
}

static bool keep_only_web(const char *key, void *arg)
{
	return strcmp(key, arg) == 0;
}

static void test_prune(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/24", NULL);
	struct addr ip;

	assert_int_equal(allocator_assign(a, "default/web", AF_INET, &ip), 0);
	assert_int_equal(allocator_assign(a, "default/gone", AF_INET, &ip), 0);
	allocator_prune(a, keep_only_web, "default/web");
	assert_int_equal(allocator_count(a), 1);
	assert_null(allocator_lookup(a, "default/gone", AF_INET));
	assert_non_null(allocator_lookup(a, "default/web", AF_INET));
	allocator_free(a);
}

static void test_corrupt_state(void **state)
{
	struct fixture *f = *state;
	static const char bad[] =
		"# header\n"
		"\n"
		"default/web\t10.0.0.5\n"
		"garbage without tab\n"
		"bad key\t10.0.0.6\n"
		"default/x\tnot-an-ip\n"
		"default/dup\t10.0.0.5\n"
		"default/web\t10.0.0.7\n"
		"default/out\t192.168.1.1\n"
		"default/net\t10.0.0.0\n"
		"default/v6\tfd00::9\n"
		"default/ok\t10.0.0.8\r\n"
		"default/last\t10.0.0.9";
	struct allocator *a;
	struct addr ip;
	char *logt, *text;

	assert_int_equal(mkdir_p(f->state), 0);
	assert_int_equal(rmdir(f->state), 0);
	assert_int_equal(write_file_atomic(f->state, bad, sizeof(bad) - 1, 0644), 0);
	a = open_alloc(f, "10.0.0.0/24", NULL);
	assert_int_equal(allocator_count(a), 3);
	assert_string_equal(S(allocator_lookup(a, "default/web", AF_INET)), "10.0.0.5");
	assert_string_equal(S(allocator_lookup(a, "default/ok", AF_INET)), "10.0.0.8");
	assert_string_equal(S(allocator_lookup(a, "default/last", AF_INET)), "10.0.0.9");
	assert_null(allocator_lookup(a, "default/dup", AF_INET));
	logt = slurp(f->log);
	assert_non_null(strstr(logt, ":4: expected \"namespace/name<TAB>address\""));
	assert_non_null(strstr(logt, ":5: \"bad key\" is not namespace/name"));
	assert_non_null(strstr(logt, ":6: \"not-an-ip\" is not an IP address"));
	assert_non_null(strstr(logt, ":7: 10.0.0.5 is already held by default/web"));
	assert_non_null(strstr(logt, ":8: default/web already has an address of that family"));
	assert_non_null(strstr(logt, ":9: 192.168.1.1 of default/out is outside the service range"));
	assert_non_null(strstr(logt, ":10: 10.0.0.0 of default/net is not usable"));
	assert_non_null(strstr(logt, ":11: fd00::9 of default/v6 is outside the service range"));
	free(logt);
	/* Dropped entries make the next save rewrite a clean file. */
	assert_int_equal(allocator_save(a), 0);
	text = slurp(f->state);
	assert_null(strstr(text, "garbage"));
	assert_non_null(strstr(text, "default/last\t10.0.0.9\ndefault/ok\t10.0.0.8\ndefault/web\t10.0.0.5\n"));
	free(text);
	assert_int_equal(allocator_assign(a, "n/new", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.0.1");
	allocator_free(a);
}

static void test_ranges_changed(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/24", "fd00::/120");
	struct addr ip;
	struct cidr c[3];
	char *err = NULL;

	assert_int_equal(allocator_assign(a, "n/a", AF_INET, &ip), 0);
	ip = A("10.0.0.200");
	assert_int_equal(allocator_request(a, "n/b", &ip, NULL), 0);
	assert_int_equal(allocator_assign(a, "n/c", AF_INET6, &ip), 0);
	assert_int_equal(allocator_save(a), 0);
	allocator_free(a);
	/* Narrower v4 range, no v6 range: what no longer fits is dropped. */
	a = open_alloc(f, "10.0.0.0/25", NULL);
	assert_int_equal(allocator_count(a), 1);
	assert_string_equal(S(allocator_lookup(a, "n/a", AF_INET)), "10.0.0.1");
	assert_null(allocator_lookup(a, "n/b", AF_INET));
	assert_null(allocator_lookup(a, "n/c", AF_INET6));
	allocator_free(a);
	/* Invalid range sets. */
	c[0] = C("10.0.0.0/24");
	c[1] = C("10.1.0.0/24");
	c[2] = C("fd00::/64");
	assert_null(allocator_new(c, 2, NULL, &err));
	assert_non_null(strstr(err, "two service CIDRs of the same family"));
	free(err);
	assert_null(allocator_new(c, 3, NULL, &err));
	free(err);
	/* An unreadable state path is an error, not an empty allocator. */
	assert_null(allocator_new(c, 1, f->dir, &err));
	assert_non_null(err);
	free(err);
	/* No persistence at all. */
	a = allocator_new(c, 1, NULL, &err);
	assert_non_null(a);
	assert_int_equal(allocator_assign(a, "n/a", AF_INET, &ip), 0);
	assert_int_equal(allocator_save(a), 0);
	allocator_free(a);
}

static void test_big_ranges(void **state)
{
	struct fixture *f = *state;
	struct allocator *a = open_alloc(f, "10.0.0.0/8", "fd00::/64");
	struct addr ip;
	char key[32];

	/* 3000 allocations in a /8 and a /64 stay cheap and dense. */
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "n/s%d", i);
		assert_int_equal(allocator_assign(a, key, AF_INET, &ip), 0);
		assert_int_equal(allocator_assign(a, key, AF_INET6, &ip), 0);
	}
	assert_string_equal(S(allocator_lookup(a, "n/s2999", AF_INET)), "10.0.11.184");
	assert_string_equal(S(allocator_lookup(a, "n/s2999", AF_INET6)), "fd00::bb8");
	assert_int_equal(allocator_save(a), 0);
	allocator_free(a);
	a = open_alloc(f, "10.0.0.0/8", "fd00::/64");
	assert_int_equal(allocator_count(a), 6000);
	assert_int_equal(allocator_assign(a, "n/more", AF_INET, &ip), 0);
	assert_string_equal(S(&ip), "10.0.11.185");
	allocator_free(a);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/kp-test-alloc.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->state = xasprintf("%s/sub/clusterip-allocations", f->dir);
	f->log = xasprintf("%s/log", f->dir);
	log_open(f->log, 0);
	log_set_stderr(0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	log_close();
	if (remove_tree(f->dir) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->dir);
	free(f->state);
	free(f->log);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v4_exhaustion_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_conflicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ranges_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_ranges, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
