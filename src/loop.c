#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

/* Every registered fd has a watcher; epoll's data.ptr points at it.
 * Watchers are freed lazily (after the current batch of events) so a
 * callback may remove any fd, including its own, safely. */
struct watcher {
	int fd;
	bool dead;
	loop_fd_cb cb;
	void *arg;
	struct watcher *next;          /* graveyard link once dead */
};

struct loop_timer {
	struct loop *loop;
	int fd;
	bool armed;
	loop_timer_cb cb;
	void *arg;
};

struct sig_handler {
	int signo;
	loop_signal_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	bool quit;
	struct watcher *graveyard;     /* dead, freed after the event batch */
	struct watcher **byfd;         /* live watcher per fd number */
	size_t n_byfd;
	int sigfd;
	sigset_t sigmask;
	struct sig_handler sigs[16];
	size_t n_sigs;
};

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		log_error("epoll_create1: %s", strerror(errno));
		free(l);
		return NULL;
	}
	l->sigfd = -1;
	sigemptyset(&l->sigmask);
	return l;
}

static void reap(struct loop *l)
{
	while (l->graveyard) {
		struct watcher *w = l->graveyard;

		l->graveyard = w->next;
		free(w);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_byfd; i++)
		free(l->byfd[i]);
	reap(l);
	if (l->sigfd >= 0) {
		close(l->sigfd);
		sigprocmask(SIG_UNBLOCK, &l->sigmask, NULL);
	}
	close(l->epfd);
	free(l->byfd);
	free(l);
}

static struct watcher *find_watcher(struct loop *l, int fd)
{
	return fd >= 0 && (size_t)fd < l->n_byfd ? l->byfd[fd] : NULL;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct watcher *w = xcalloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events, .data.ptr = w };

	w->fd = fd;
	w->cb = cb;
	w->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(w);
		return err;
	}
	if ((size_t)fd >= l->n_byfd) {
		size_t n = l->n_byfd ? l->n_byfd : 64;

		while (n <= (size_t)fd)
			n *= 2;
		l->byfd = xrealloc(l->byfd, n * sizeof(*l->byfd));
		memset(l->byfd + l->n_byfd, 0, (n - l->n_byfd) * sizeof(*l->byfd));
		l->n_byfd = n;
	}
	l->byfd[fd] = w;
	return 0;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
	struct watcher *w = find_watcher(l, fd);
	struct epoll_event ev = { .events = events };

	if (!w)
		return -ENOENT;
	ev.data.ptr = w;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_del_fd(struct loop *l, int fd)
{
	struct watcher *w = find_watcher(l, fd);

	if (!w)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->dead = true;
	l->byfd[fd] = NULL;
	w->next = l->graveyard;
	l->graveyard = w;
}

static void timer_ready(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct loop_timer *t = arg;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	t->armed = false;
	t->cb(l, t, t->arg);
}

struct loop_timer *loop_timer_new(struct loop *l, loop_timer_cb cb, void *arg)
{
	struct loop_timer *t = xcalloc(1, sizeof(*t));

	t->loop = l;
	t->cb = cb;
	t->arg = arg;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0 || loop_add_fd(l, t->fd, EPOLLIN, timer_ready, t) < 0) {
		log_error("timerfd: %s", strerror(errno));
		abort();
	}
	return t;
}

void loop_timer_arm(struct loop_timer *t, unsigned long long ms)
{
	struct itimerspec its = { 0 };

	if (ms == 0)
		its.it_value.tv_nsec = 1;  /* zero would disarm */
	else {
		its.it_value.tv_sec = (time_t)(ms / 1000);
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	}
	timerfd_settime(t->fd, 0, &its, NULL);
	t->armed = true;
}

void loop_timer_disarm(struct loop_timer *t)
{
	struct itimerspec its = { 0 };
	uint64_t expirations;

	timerfd_settime(t->fd, 0, &its, NULL);
	/* Drop an expiry that already happened but was not dispatched. */
	if (read(t->fd, &expirations, sizeof(expirations)) < 0)
		errno = 0;
	t->armed = false;
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->armed;
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	loop_del_fd(t->loop, t->fd);
	close(t->fd);
	free(t);
}

static void signal_ready(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < l->n_sigs; i++)
			if (l->sigs[i].signo == (int)si.ssi_signo)
				l->sigs[i].cb(l, (int)si.ssi_signo, l->sigs[i].arg);
	}
}

int loop_add_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg)
{
	int fd;

	if (l->n_sigs == ARRAY_SIZE(l->sigs))
		return -ENOSPC;
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -errno;
	fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		int err = loop_add_fd(l, fd, EPOLLIN, signal_ready, NULL);

		if (err < 0) {
			close(fd);
			return err;
		}
		l->sigfd = fd;
	}
	l->sigs[l->n_sigs++] = (struct sig_handler){ signo, cb, arg };
	return 0;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[64];

	l->quit = false;
	while (!l->quit) {
		int n = epoll_wait(l->epfd, evs, ARRAY_SIZE(evs), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct watcher *w = evs[i].data.ptr;

			if (!w->dead)
				w->cb(l, w->fd, evs[i].events, w->arg);
		}
		reap(l);
	}
	return 0;
}

void loop_quit(struct loop *l)
{
	l->quit = true;
}
