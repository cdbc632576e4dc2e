/* libcurl's multi socket interface on the daemon's loop: curl's sockets
 * become loop fds, curl's timeout becomes a loop timer. Many transfers (the
 * three watches, lists) share one multi handle and one thread. */
#ifndef KP_HTTP_H
#define KP_HTTP_H

#include <curl/curl.h>

struct loop;
struct http;

/* Called once per finished transfer (outside any curl callback, so it may
 * add or remove transfers). rc is curl's result for the transfer. */
typedef void (*http_done_cb)(CURL *easy, CURLcode rc, void *arg);

/* NULL if curl cannot be initialised. */
struct http *http_new(struct loop *l);
/* Every transfer must have been removed. */
void http_free(struct http *h);

/* Starts a configured easy handle (it stays the caller's). CURLOPT_PRIVATE
 * is used by this module. 0 or -EIO. */
int http_start(struct http *h, CURL *easy, http_done_cb done, void *arg);
/* Stops a transfer without calling its done callback. Never call from
 * inside a curl callback (write/header); return an error from there. */
void http_cancel(struct http *h, CURL *easy);

#endif
