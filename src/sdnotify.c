#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "sdnotify.h"
#include "util.h"

struct sd_watchdog {
	struct loop_timer *timer;
	unsigned long long interval_ms;
};

int sd_notify_send(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t plen, mlen = strlen(msg);
	socklen_t slen;
	ssize_t n;
	int fd, err = 0;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = 0;    /* abstract namespace, not NUL terminated */
	slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/' ? 1 : 0));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sun, slen);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != mlen)
		err = -EMSGSIZE;
	close(fd);
	if (err < 0) {
		log_v(2, "sd_notify to %s failed: %s", path, strerror(-err));
		return err;
	}
	return 1;
}

int sd_notify_ready(const char *status)
{
	char *msg = status ? xasprintf("READY=1\nSTATUS=%s", status) : xstrdup("READY=1");
	int r = sd_notify_send(msg);

	free(msg);
	return r;
}

int sd_notify_status(const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;
	int r;

	sb_init(&sb);
	sb_puts(&sb, "STATUS=");
	va_start(ap, fmt);
	sb_vprintf(&sb, fmt, ap);
	va_end(ap);
	r = sd_notify_send(sb_cstr(&sb));
	sb_free(&sb);
	return r;
}

int sd_notify_stopping(void)
{
	return sd_notify_send("STOPPING=1");
}

static void watchdog_fired(struct loop *l, struct loop_timer *t, void *arg)
{
	struct sd_watchdog *w = arg;

	sd_notify_send("WATCHDOG=1");
	loop_timer_arm(t, w->interval_ms);
}

struct sd_watchdog *sd_watchdog_start(struct loop *l)
{
	const char *usec_s = getenv("WATCHDOG_USEC"), *pid_s = getenv("WATCHDOG_PID");
	struct sd_watchdog *w;
	unsigned long long usec;
	char *end;

	if (!usec_s || !*usec_s || !getenv("NOTIFY_SOCKET"))
		return NULL;
	if (pid_s && *pid_s) {
		long pid = strtol(pid_s, &end, 10);

		if (*end || pid != (long)getpid())
			return NULL;   /* meant for another process */
	}
	errno = 0;
	usec = strtoull(usec_s, &end, 10);
	if (*end || errno || usec == 0) {
		log_warn("Ignoring WATCHDOG_USEC=%s: not a positive number", usec_s);
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	/* Ping at half the interval, as sd_watchdog_enabled(3) recommends. */
	w->interval_ms = usec / 2000;
	if (!w->interval_ms)
		w->interval_ms = 1;
	w->timer = loop_timer_new(l, watchdog_fired, w);
	sd_notify_send("WATCHDOG=1");
	loop_timer_arm(w->timer, w->interval_ms);
	log_info("systemd watchdog enabled: pinging every %llu ms", w->interval_ms);
	return w;
}

unsigned long long sd_watchdog_interval_ms(const struct sd_watchdog *w)
{
	return w ? w->interval_ms : 0;
}

void sd_watchdog_stop(struct sd_watchdog *w)
{
	if (!w)
		return;
	loop_timer_free(w->timer);
	free(w);
}
