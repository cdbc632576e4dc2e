#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>

#include "src/log.h"
#include "src/loop.h"
#include "src/sdnotify.h"
#include "src/util.h"

/* A test "systemd": a datagram socket bound at a path or abstract name. */
static int listen_at(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t n = strlen(name);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	memcpy(sun.sun_path, name, n);
	if (name[0] == '@')
		sun.sun_path[0] = 0;
	else
		len++;
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

/* Next datagram as a string, "" when none is waiting. */
static char *next_msg(int fd)
{
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0)
		return xstrdup("");
	buf[n] = 0;
	return xstrdup(buf);
}

static void expect_msg(int fd, const char *want)
{
	char *got = next_msg(fd);

	assert_string_equal(got, want);
	free(got);
}

static void test_no_socket(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sd_notify_ready("x"), 0);
	assert_int_equal(sd_notify_stopping(), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(sd_notify_send("READY=1"), 0);
}

static void test_path_socket(void **state)
{
	char dir[] = "/tmp/kp-sdnotify-XXXXXX", *path;
	int fd;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/notify", dir);
	fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);

	assert_int_equal(sd_notify_ready("Synced 3 services, 7 endpoints"), 1);
	expect_msg(fd, "READY=1\nSTATUS=Synced 3 services, 7 endpoints");
	assert_int_equal(sd_notify_ready(NULL), 1);
	expect_msg(fd, "READY=1");
	assert_int_equal(sd_notify_status("%d services, %d endpoints", 4, 9), 1);
	expect_msg(fd, "STATUS=4 services, 9 endpoints");
	assert_int_equal(sd_notify_stopping(), 1);
	expect_msg(fd, "STOPPING=1");
	expect_msg(fd, "");

	close(fd);
	unlink(path);
	/* Nobody listening any more: an error, not a crash. */
	assert_true(sd_notify_stopping() < 0);
	rmdir(dir);
	free(path);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char *name = xasprintf("@kp-test-sdnotify-%d", (int)getpid());
	int fd = listen_at(name);

	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(sd_notify_send("READY=1"), 1);
	expect_msg(fd, "READY=1");
	close(fd);
	free(name);
	/* Not absolute, not abstract: refused. */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(sd_notify_send("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void quit_cb(struct loop *l, struct loop_timer *t, void *arg)
{
	loop_quit(l);
}

static void test_watchdog(void **state)
{
	char *name = xasprintf("@kp-test-watchdog-%d", (int)getpid());
	char pid[32];
	int fd = listen_at(name), pings = 0;
	struct loop *l = loop_new();
	struct loop_timer *stop = loop_timer_new(l, quit_cb, NULL);
	struct sd_watchdog *w;
	char *m;

	setenv("NOTIFY_SOCKET", name, 1);
	/* No WATCHDOG_USEC: nothing. */
	unsetenv("WATCHDOG_USEC");
	assert_null(sd_watchdog_start(l));
	/* Meant for another process: nothing. */
	setenv("WATCHDOG_USEC", "100000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	assert_null(sd_watchdog_start(l));
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	setenv("WATCHDOG_USEC", "garbage", 1);
	assert_null(sd_watchdog_start(l));

	/* 100 ms watchdog: a ping at start, then every 50 ms. */
	setenv("WATCHDOG_USEC", "100000", 1);
	w = sd_watchdog_start(l);
	assert_non_null(w);
	assert_int_equal(sd_watchdog_interval_ms(w), 50);
	loop_timer_arm(stop, 230);
	loop_run(l);
	while (*(m = next_msg(fd))) {
		assert_string_equal(m, "WATCHDOG=1");
		pings++;
		free(m);
	}
	free(m);
	assert_true(pings >= 4 && pings <= 6);

	/* Stopped: no more pings. */
	sd_watchdog_stop(w);
	loop_timer_arm(stop, 120);
	loop_run(l);
	expect_msg(fd, "");

	loop_timer_free(stop);
	loop_free(l);
	close(fd);
	free(name);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_socket),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_watchdog),
	};

	log_set_stderr(0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
