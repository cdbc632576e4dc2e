#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Process-wide log sink: the one piece of mutable global state besides the
 * parsed configuration, because every module logs. */
static struct {
	char *path;
	int fd;
	int verbosity;
	int to_stderr;
} logger = { NULL, -1, 0, 1 };

int log_open(const char *path, int verbosity)
{
	logger.verbosity = verbosity;
	free_and_null(&logger.path);
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = -1;
	if (!path || !*path)
		return 0;
	logger.path = xstrdup(path);
	return log_reopen();
}

int log_reopen(void)
{
	int fd;

	if (!logger.path)
		return 0;
	fd = open(logger.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = fd;
	return 0;
}

void log_close(void)
{
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = -1;
	free_and_null(&logger.path);
}

void log_set_stderr(int on)
{
	logger.to_stderr = on;
}

int log_verbosity(void)
{
	return logger.verbosity;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

void log_write(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
	static const char letters[] = { 'I', 'W', 'E' };
	const char *base = strrchr(file, '/');
	struct timespec ts;
	struct tm tm;
	char head[128];
	char msg[4096];
	va_list ap;
	int saved = errno, hn, mn;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	hn = snprintf(head, sizeof(head), "%c%02d%02d %02d:%02d:%02d.%06ld %7ld %s:%d] ",
		      letters[lvl], tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		      tm.tm_sec, ts.tv_nsec / 1000, (long)getpid(), base ? base + 1 : file, line);
	va_start(ap, fmt);
	mn = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (hn < 0 || mn < 0)
		goto out;
	if ((size_t)hn >= sizeof(head))
		hn = sizeof(head) - 1;
	if ((size_t)mn >= sizeof(msg) - 1)
		mn = sizeof(msg) - 2;
	msg[mn++] = '\n';
	if (logger.fd >= 0) {
		write_all(logger.fd, head, (size_t)hn);
		write_all(logger.fd, msg, (size_t)mn);
	}
	if (logger.to_stderr) {
		write_all(STDERR_FILENO, head, (size_t)hn);
		write_all(STDERR_FILENO, msg, (size_t)mn);
	}
out:
	errno = saved;
}
