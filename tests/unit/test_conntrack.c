#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "src/conntrack.h"
#include "src/log.h"
#include "src/util.h"

struct fx {
	char root[64];
};

static const char *const files[] = {
	"/proc/sys/net/netfilter/nf_conntrack_max",
	"/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established",
	"/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait",
	"/proc/sys/net/netfilter/nf_conntrack_udp_timeout",
	"/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream",
	"/sys/module/nf_conntrack/parameters/hashsize",
	"/proc/self/oom_score_adj",
};

static void put(struct fx *f, const char *rel, const char *v)
{
	char *p = xasprintf("%s%s", f->root, rel);
	char *dir = xstrdup(p);

	*strrchr(dir, '/') = 0;
	assert_int_equal(mkdir_p(dir), 0);
	assert_int_equal(write_file_atomic(p, v, strlen(v), 0644), 0);
	free(dir);
	free(p);
}

static long long get(struct fx *f, const char *rel)
{
	char *p = xasprintf("%s%s", f->root, rel), *buf;
	size_t len;
	long long v;

	assert_int_equal(read_file(p, &buf, &len), 0);
	v = strtoll(buf, NULL, 10);
	free(buf);
	free(p);
	return v;
}

/* Sets the file's mtime to the epoch so a rewrite is visible. */
static void age(struct fx *f, const char *rel)
{
	char *p = xasprintf("%s%s", f->root, rel);
	struct timespec ts[2] = { { 0, 0 }, { 0, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static bool touched(struct fx *f, const char *rel)
{
	char *p = xasprintf("%s%s", f->root, rel);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return st.st_mtim.tv_sec != 0;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	log_set_stderr(0);
	snprintf(f->root, sizeof(f->root), "/tmp/kp-ct-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	put(f, files[0], "65536\n");
	put(f, files[1], "432000\n");
	put(f, files[2], "3600\n");
	put(f, files[3], "30\n");
	put(f, files[4], "120\n");
	put(f, files[5], "1024\n");
	put(f, files[6], "0\n");
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		age(f, files[i]);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	assert_int_equal(remove_tree(f->root), 0);
	free(f);
	return 0;
}

static void defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->conntrack_max_per_core = 32768;
	cfg->conntrack_min = 131072;
	cfg->conntrack_tcp_established_s = 86400;
	cfg->conntrack_tcp_close_wait_s = 3600;
}

static void test_sysctls(void **state)
{
	struct fx *f = *state;
	struct config cfg;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	long long want = 32768LL * ncpu;
	char *err = NULL;

	if (want < 131072)
		want = 131072;
	if (want > 1048576)
		want = 1048576;
	defaults(&cfg);
	assert_int_equal(conntrack_set_sysctls(&cfg, f->root, &err), 0);
	assert_null(err);
	assert_int_equal(get(f, files[0]), want);
	/* hashsize was below max/4: raised. */
	assert_int_equal(get(f, files[5]), want / 4);
	assert_int_equal(get(f, files[1]), 86400);
	assert_true(touched(f, files[1]));
	/* Already right: not rewritten. 0 = leave alone. */
	assert_false(touched(f, files[2]));
	assert_false(touched(f, files[3]));
	assert_false(touched(f, files[4]));
	assert_int_equal(get(f, files[4]), 120);

	/* A second run changes nothing at all. */
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		age(f, files[i]);
	assert_int_equal(conntrack_set_sysctls(&cfg, f->root, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		assert_false(touched(f, files[i]));

	/* UDP timeouts when asked; max from --conntrack-min when larger. */
	cfg.conntrack_udp_timeout_s = 10;
	cfg.conntrack_udp_stream_timeout_s = 60;
	cfg.conntrack_max_per_core = 1;
	cfg.conntrack_min = 200000;
	assert_int_equal(conntrack_set_sysctls(&cfg, f->root, &err), 0);
	assert_int_equal(get(f, files[3]), 10);
	assert_int_equal(get(f, files[4]), 60);
	assert_int_equal(get(f, files[0]), 200000);
	assert_int_equal(get(f, files[5]), 50000);

	/* --conntrack-max-per-core 0: max left alone. */
	put(f, files[0], "777\n");
	cfg.conntrack_max_per_core = 0;
	assert_int_equal(conntrack_set_sysctls(&cfg, f->root, &err), 0);
	assert_int_equal(get(f, files[0]), 777);
}

static void test_hashsize_kept_when_large(void **state)
{
	struct fx *f = *state;
	struct config cfg;
	char *err = NULL;

	put(f, files[5], "4000000\n");
	age(f, files[5]);
	defaults(&cfg);
	assert_int_equal(conntrack_set_sysctls(&cfg, f->root, &err), 0);
	assert_false(touched(f, files[5]));
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	struct config cfg;
	char *err = NULL, *p = xasprintf("%s%s", f->root, files[1]);

	unlink(p);
	/* A directory where the sysctl should be: cannot write, error names it. */
	assert_int_equal(mkdir(p, 0755), 0);
	defaults(&cfg);
	assert_true(conntrack_set_sysctls(&cfg, f->root, &err) < 0);
	assert_non_null(err);
	assert_non_null(strstr(err, "nf_conntrack_tcp_timeout_established"));
	free(err);
	rmdir(p);
	free(p);
}

static void test_oom(void **state)
{
	struct fx *f = *state;

	assert_int_equal(set_oom_score_adj(-999, f->root), 0);
	assert_int_equal(get(f, files[6]), -999);
	age(f, files[6]);
	assert_int_equal(set_oom_score_adj(-999, f->root), 0);
	assert_false(touched(f, files[6]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sysctls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hashsize_kept_when_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
