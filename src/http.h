/* A tiny non-blocking HTTP/1.1 server on the daemon loop, for the healthz,
 * metrics and health-check node port endpoints. Requests are small GETs;
 * every response is produced at once by a handler. Limits keep hostile
 * clients cheap: a bounded request head, an absolute deadline to receive it
 * (slowloris), a write deadline, an idle keep-alive timeout and a maximum
 * number of connections. */
#ifndef KP_HTTP_H
#define KP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"

struct loop;
struct http_server;

struct http_request {
	const char *method;       /* "GET", "HEAD", ... */
	const char *path;         /* the target up to '?', not percent-decoded */
	const char *query;        /* after '?', "" when absent */
	int minor;                /* HTTP/1.<minor> */
};

/* Filled by a handler. status 0 is treated as 200; content_type NULL as
 * "text/plain; charset=utf-8". */
struct http_response {
	int status;
	const char *content_type;
	struct strbuf body;
	bool nosniff;             /* add X-Content-Type-Options: nosniff */
};

typedef void (*http_handler)(const struct http_request *req, struct http_response *resp, void *arg);

struct http_limits {
	size_t max_conns;              /* default 64 */
	size_t max_head;               /* request line + headers, default 8192 */
	unsigned head_timeout_ms;      /* to receive a whole request head, default 10000 */
	unsigned idle_timeout_ms;      /* keep-alive wait for the next request, default 30000 */
	unsigned write_timeout_ms;     /* to deliver a response, default 10000 */
};

/* Parses a bind address "ip:port", "[v6]:port", ":port" or a bare "ip"
 * (default_port then). Returns 0, 1 when the address disables the server
 * ("" or port 0), or -EINVAL with *err naming flag and value. */
int http_parse_bind(const char *flag, const char *s, uint16_t default_port,
		    struct sockaddr_storage *ss, socklen_t *len, char **err);

/* Opens a non-blocking listening TCP socket. Either wildcard address
 * (0.0.0.0 or ::) listens on both families when the host has IPv6, as Go's
 * net.Listen does. Returns the fd or -errno. */
int http_listen(const struct sockaddr *sa, socklen_t len);

/* Serves on listen_fd (owned by the server from now on; -1 = none, for
 * connections added with http_server_adopt). lim may be NULL (defaults).
 * name is used in log lines. Never NULL. */
struct http_server *http_server_new(struct loop *l, const char *name, int listen_fd,
				    const struct http_limits *lim, http_handler h, void *arg);
/* Serves an already connected socket (tests, socketpairs). The server owns
 * fd. 0 or -errno (-EMFILE when at max_conns). */
int http_server_adopt(struct http_server *s, int fd);
/* Number of open connections. */
size_t http_server_conns(const struct http_server *s);
/* Closes the listener and every connection. NULL is fine. */
void http_server_free(struct http_server *s);

/* Reason phrase for a status code ("OK", "Service Unavailable"...). */
const char *http_reason(int status);

#endif
