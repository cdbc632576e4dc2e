#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "kubeapi/http.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/util.h"

struct http {
	struct loop *loop;
	CURLM *multi;
	struct loop_timer *timer;
	int running;
};

struct xfer {
	http_done_cb done;
	void *arg;
};

static void check_done(struct http *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		struct xfer *x = NULL;
		CURL *easy = m->easy_handle;
		CURLcode rc = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(h->multi, easy);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		if (x) {
			http_done_cb done = x->done;
			void *arg = x->arg;

			free(x);
			done(easy, rc, arg);
		}
	}
}

static void on_fd(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct http *h = arg;
	int flags = 0;

	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, flags, &h->running);
	check_done(h);
}

static void on_timer(struct loop *l, struct loop_timer *t, void *arg)
{
	struct http *h = arg;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &h->running);
	check_done(h);
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http *h = userp;
	uint32_t ev = 0;

	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			loop_del_fd(h->loop, s);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EPOLLOUT;
	if (socketp) {
		if (loop_mod_fd(h->loop, s, ev) < 0)
			log_warn("http: cannot watch socket %d", (int)s);
	} else {
		if (loop_add_fd(h->loop, s, ev, on_fd, h) < 0) {
			log_warn("http: cannot watch socket %d", (int)s);
			return -1;
		}
		curl_multi_assign(h->multi, s, h);
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	if (timeout_ms < 0)
		loop_timer_disarm(h->timer);
	else
		loop_timer_arm(h->timer, (unsigned long long)timeout_ms);
	return 0;
}

struct http *http_new(struct loop *l)
{
	struct http *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	h = xcalloc(1, sizeof(*h));
	h->loop = l;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		curl_global_cleanup();
		return NULL;
	}
	h->timer = loop_timer_new(l, on_timer, h);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	curl_multi_cleanup(h->multi);
	loop_timer_free(h->timer);
	free(h);
	curl_global_cleanup();
}

int http_start(struct http *h, CURL *easy, http_done_cb done, void *arg)
{
	struct xfer *x = xcalloc(1, sizeof(*x));

	x->done = done;
	x->arg = arg;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(h->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		free(x);
		return -EIO;
	}
	return 0;
}

void http_cancel(struct http *h, CURL *easy)
{
	struct xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	if (!x)
		return;
	curl_multi_remove_handle(h->multi, easy);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	free(x);
}
