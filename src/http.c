#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* accept4 */
#endif
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "loop.h"

#define LINGER_MS 2000ULL

enum conn_state {
	ST_READ,     /* waiting for (the rest of) a request head */
	ST_WRITE,    /* delivering a response */
	ST_LINGER,   /* response sent, write side shut: drain until EOF */
};

struct conn {
	struct http_server *srv;
	int fd;
	enum conn_state state;
	bool keep_alive;          /* after the current response */
	unsigned long served;     /* responses completed */
	unsigned long long deadline;  /* now_ms() value; 0 = none */
	unsigned long long since;     /* now_ms() when the current request began */
	char *in;                 /* max_head + 1 bytes */
	size_t in_len;
	struct strbuf out;
	size_t out_off;
	struct conn *prev, *next;
};

struct http_server {
	struct loop *loop;
	char *name;
	int lfd;
	struct http_limits lim;
	http_handler handler;
	void *arg;
	struct conn *conns;
	size_t n_conns;
	struct loop_timer *timer;
	unsigned long long timer_due; /* 0 = disarmed */
};

/* ---- addresses ---------------------------------------------------------- */

int http_parse_bind(const char *flag, const char *s, uint16_t default_port,
		    struct sockaddr_storage *ss, socklen_t *len, char **err)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_s = NULL, *colon;
	unsigned long port = default_port;
	size_t hlen;

	memset(ss, 0, sizeof(*ss));
	if (!s || !*s)
		return 1;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || (end[1] && end[1] != ':'))
			goto bad;
		hlen = (size_t)(end - s - 1);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hlen);
		host[hlen] = 0;
		if (end[1] == ':')
			port_s = end + 2;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon) {
			/* More than one colon and no brackets: a bare IPv6 address. */
			colon = NULL;
		}
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s, hlen);
		host[hlen] = 0;
		if (colon)
			port_s = colon + 1;
	}
	if (port_s) {
		char *end;

		if (!*port_s || !isdigit((unsigned char)*port_s))
			goto bad;
		errno = 0;
		port = strtoul(port_s, &end, 10);
		if (*end || errno || port > 65535)
			goto bad;
	}
	if (port == 0)
		return 1;
	if (!*host) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		*len = sizeof(*sin);
		return 0;
	}
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			*len = sizeof(*sin);
			return 0;
		}
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*sin6);
			return 0;
		}
	}
bad:
	if (err)
		*err = xasprintf("%s: invalid address \"%s\" (want ip:port, [ipv6]:port or :port)", flag, s);
	return -EINVAL;
}

int http_listen(const struct sockaddr *sa, socklen_t len)
{
	int one = 1, zero = 0, fd, err;

	/* Like Go's net.Listen, the IPv4 wildcard means both families when the
	 * host has IPv6: one dual-stack socket on [::]. */
	if (sa->sa_family == AF_INET &&
	    ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY)) {
		struct sockaddr_in6 any6 = {
			.sin6_family = AF_INET6,
			.sin6_port = ((const struct sockaddr_in *)sa)->sin_port,
			.sin6_addr = IN6ADDR_ANY_INIT,
		};

		fd = http_listen((const struct sockaddr *)&any6, sizeof(any6));
		if (fd >= 0 || fd == -EADDRINUSE)
			return fd;
		/* No IPv6 here: plain IPv4. */
	}

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, len) < 0 || listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* ---- responses ---------------------------------------------------------- */

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static void http_date(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Appends a full response to c->out. head_only leaves the body out (HEAD). */
static void build_response(struct conn *c, int minor, struct http_response *r, bool head_only)
{
	char date[64];
	int status = r->status ? r->status : 200;

	http_date(date, sizeof(date));
	sb_printf(&c->out, "HTTP/1.%d %d %s\r\n", minor == 0 ? 0 : 1, status, http_reason(status));
	sb_printf(&c->out, "Content-Type: %s\r\n",
		  r->content_type ? r->content_type : "text/plain; charset=utf-8");
	if (r->nosniff)
		sb_puts(&c->out, "X-Content-Type-Options: nosniff\r\n");
	sb_printf(&c->out, "Date: %s\r\nContent-Length: %zu\r\n", date, r->body.len);
	if (!c->keep_alive)
		sb_puts(&c->out, "Connection: close\r\n");
	else if (minor == 0)
		sb_puts(&c->out, "Connection: keep-alive\r\n");
	sb_puts(&c->out, "\r\n");
	if (!head_only && r->body.len)
		sb_add(&c->out, r->body.buf, r->body.len);
}

static void error_response(struct conn *c, int status, const char *msg)
{
	struct http_response r = { .status = status };

	sb_init(&r.body);
	sb_printf(&r.body, "%d %s: %s\n", status, http_reason(status), msg);
	c->keep_alive = false;
	build_response(c, 1, &r, false);
	sb_free(&r.body);
}

/* ---- connection bookkeeping --------------------------------------------- */

static void rearm(struct http_server *s)
{
	unsigned long long due = 0, now;

	for (struct conn *c = s->conns; c; c = c->next)
		if (c->deadline && (!due || c->deadline < due))
			due = c->deadline;
	if (!due) {
		if (s->timer_due) {
			loop_timer_disarm(s->timer);
			s->timer_due = 0;
		}
		return;
	}
	if (s->timer_due && s->timer_due <= due)
		return;
	now = now_ms();
	loop_timer_arm(s->timer, due > now ? due - now : 0);
	s->timer_due = due;
}

static void conn_close(struct conn *c)
{
	struct http_server *s = c->srv;

	loop_del_fd(s->loop, c->fd);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	sb_free(&c->out);
	free(c->in);
	free(c);
}

static void set_events(struct conn *c, uint32_t ev)
{
	if (loop_mod_fd(c->srv->loop, c->fd, ev) < 0)
		log_warn("%s: epoll_ctl: %s", c->srv->name, strerror(errno));
}

static void start_linger(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->state = ST_LINGER;
	c->deadline = now_ms() + LINGER_MS;
	set_events(c, EPOLLIN);
}

/* Writes what is pending. Returns -1 when the connection was closed, 0
 * when the socket is full (EPOLLOUT is armed), 1 when the response is out
 * (the connection then reads the next request or lingers). */
static int flush_out(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_events(c, EPOLLOUT);
				return 0;
			}
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)n;
	}
	sb_reset(&c->out);
	c->out_off = 0;
	c->served++;
	if (!c->keep_alive) {
		start_linger(c);
		return 1;
	}
	c->state = ST_READ;
	c->since = now_ms();
	c->deadline = c->since + (c->in_len ? c->srv->lim.head_timeout_ms : c->srv->lim.idle_timeout_ms);
	set_events(c, EPOLLIN);
	return 1;
}

static void begin_write(struct conn *c)
{
	c->state = ST_WRITE;
	c->deadline = now_ms() + c->srv->lim.write_timeout_ms;
}

static bool take_request(struct conn *c);

/* Moves a connection forward as far as it can go without blocking: answer
 * buffered requests one at a time, write, repeat. c may be freed on return. */
static void drive(struct conn *c)
{
	for (;;) {
		if (c->state == ST_READ && !take_request(c))
			return;
		if (c->state != ST_WRITE)
			return;
		if (flush_out(c) <= 0)
			return;
	}
}

/* ---- request parsing ---------------------------------------------------- */

static bool is_tchar(int ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Finds the end of the request head in buf: returns the length including
 * the blank line, or 0 if incomplete. */
static size_t head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static bool token_in_list(const char *v, const char *tok)
{
	size_t tl = strlen(tok);

	while (*v) {
		size_t n;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		n = strcspn(v, ", \t");
		if (n == tl && strncasecmp(v, tok, tl) == 0)
			return true;
		v += n;
	}
	return false;
}

struct parsed {
	struct http_request req;
	bool has_body;
	bool conn_close, conn_keep_alive;
	bool has_host;
	int error;                /* status to answer with, 0 = ok */
	const char *why;
};

static char *next_line(char **p, char *end)
{
	char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	if (!nl)
		return NULL;
	*nl = 0;
	if (nl > s && nl[-1] == '\r')
		nl[-1] = 0;
	*p = nl + 1;
	return s;
}

/* Parses the head in place (NULs are written into buf). */
static void parse_head(char *buf, size_t len, struct parsed *p)
{
	char *cur = buf, *end = buf + len, *line, *sp1, *sp2, *target, *ver;
	long long clen = -1;

	memset(p, 0, sizeof(*p));
	do {
		line = next_line(&cur, end);
	} while (line && !*line);
	if (!line) {
		p->error = 400;
		p->why = "empty request";
		return;
	}
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || sp1 == line) {
		p->error = 400;
		p->why = "malformed request line";
		return;
	}
	*sp1 = *sp2 = 0;
	for (char *m = line; *m; m++) {
		if (!is_tchar((unsigned char)*m)) {
			p->error = 400;
			p->why = "bad method";
			return;
		}
	}
	target = sp1 + 1;
	ver = sp2 + 1;
	if (strncmp(ver, "HTTP/", 5) != 0 || !isdigit((unsigned char)ver[5]) || ver[6] != '.' ||
	    !isdigit((unsigned char)ver[7]) || ver[8]) {
		p->error = 400;
		p->why = "malformed HTTP version";
		return;
	}
	if (ver[5] != '1') {
		p->error = 505;
		p->why = "only HTTP/1.x is served";
		return;
	}
	p->req.minor = ver[7] - '0';
	/* Absolute form: skip scheme and authority. */
	if (strncasecmp(target, "http://", 7) == 0) {
		char *slash = strchr(target + 7, '/');

		target = slash ? slash : (char *)"/";
	}
	if (target[0] != '/' && strcmp(target, "*") != 0) {
		p->error = 400;
		p->why = "bad request target";
		return;
	}
	for (char *t = target; *t; t++) {
		if ((unsigned char)*t <= 0x20 || *t == 0x7f) {
			p->error = 400;
			p->why = "bad request target";
			return;
		}
	}
	p->req.method = line;
	{
		char *q = strchr(target, '?');

		if (q) {
			*q = 0;
			p->req.query = q + 1;
		} else {
			p->req.query = "";
		}
	}
	{
		char *frag = strchr(target, '#');

		if (frag)
			*frag = 0;
	}
	p->req.path = target;

	while ((line = next_line(&cur, end)) && *line) {
		char *colon = strchr(line, ':'), *v, *e;

		if (line[0] == ' ' || line[0] == '\t') {
			p->error = 400;
			p->why = "obsolete header folding";
			return;
		}
		if (!colon || colon == line) {
			p->error = 400;
			p->why = "malformed header";
			return;
		}
		*colon = 0;
		for (char *n = line; *n; n++) {
			if (!is_tchar((unsigned char)*n)) {
				p->error = 400;
				p->why = "malformed header name";
				return;
			}
		}
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = v + strlen(v);
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		if (strcasecmp(line, "Host") == 0) {
			p->has_host = true;
		} else if (strcasecmp(line, "Connection") == 0) {
			if (token_in_list(v, "close"))
				p->conn_close = true;
			if (token_in_list(v, "keep-alive"))
				p->conn_keep_alive = true;
		} else if (strcasecmp(line, "Content-Length") == 0) {
			char *numend;
			long long n;

			if (!isdigit((unsigned char)*v)) {
				p->error = 400;
				p->why = "bad Content-Length";
				return;
			}
			errno = 0;
			n = strtoll(v, &numend, 10);
			if (*numend || errno || (clen >= 0 && clen != n)) {
				p->error = 400;
				p->why = "bad Content-Length";
				return;
			}
			clen = n;
			if (n > 0)
				p->has_body = true;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			p->has_body = true;
		}
	}
	if (p->req.minor >= 1 && !p->has_host) {
		p->error = 400;
		p->why = "missing required Host header";
	}
}

/* Looks at the buffered input; when it holds a complete request head (or
 * an error), queues the response and switches to ST_WRITE. Returns whether
 * a response was queued. */
static bool take_request(struct conn *c)
{
	struct http_server *s = c->srv;
	struct http_response resp = { 0 };
	struct parsed p;
	size_t hlen;
	char *head;

	hlen = head_end(c->in, c->in_len);
	if (!hlen) {
		if (c->in_len < s->lim.max_head)
			return false;
		if (memchr(c->in, '\n', c->in_len))
			error_response(c, 431, "request head too large");
		else
			error_response(c, 414, "request line too long");
		c->in_len = 0;
		begin_write(c);
		return true;
	}
	head = xstrndup(c->in, hlen);
	memmove(c->in, c->in + hlen, c->in_len - hlen);
	c->in_len -= hlen;
	parse_head(head, hlen, &p);
	if (p.error) {
		error_response(c, p.error, p.why);
		free(head);
		begin_write(c);
		return true;
	}
	if (p.req.minor == 0)
		c->keep_alive = p.conn_keep_alive && !p.conn_close;
	else
		c->keep_alive = !p.conn_close;
	/* We never read request bodies: answer, then close. */
	if (p.has_body)
		c->keep_alive = false;
	sb_init(&resp.body);
	s->handler(&p.req, &resp, s->arg);
	build_response(c, p.req.minor, &resp, strcmp(p.req.method, "HEAD") == 0);
	sb_free(&resp.body);
	free(head);
	begin_write(c);
	return true;
}

static void conn_read(struct conn *c)
{
	struct http_server *s = c->srv;

	for (;;) {
		char drain[4096];
		ssize_t n;

		if (c->state == ST_LINGER) {
			n = recv(c->fd, drain, sizeof(drain), MSG_DONTWAIT);
		} else {
			size_t room = s->lim.max_head - c->in_len;

			if (!room) {
				drive(c);
				return;
			}
			n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(c);
			return;
		}
		if (n == 0) {
			conn_close(c);
			return;
		}
		if (c->state == ST_LINGER)
			continue;
		if (c->in_len == 0 && c->served > 0) {
			/* First byte of a keep-alive request: the head deadline
			 * starts now and never moves again. */
			c->deadline = now_ms() + s->lim.head_timeout_ms;
			c->since = now_ms();
		}
		c->in_len += (size_t)n;
		/* drive may close c: do not touch it afterwards. */
		drive(c);
		return;
	}
}

static void conn_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	struct http_server *s = c->srv;

	if (c->state == ST_WRITE) {
		if (events & (EPOLLERR | EPOLLHUP))
			conn_close(c);
		else
			drive(c);
	} else {
		conn_read(c);
	}
	rearm(s);
}

static int add_conn(struct http_server *s, int fd)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	int err;

	c->srv = s;
	c->fd = fd;
	c->state = ST_READ;
	c->in = xmalloc(s->lim.max_head + 1);
	sb_init(&c->out);
	c->deadline = now_ms() + s->lim.head_timeout_ms;
	c->since = now_ms();
	err = loop_add_fd(s->loop, fd, EPOLLIN, conn_event, c);
	if (err < 0) {
		free(c->in);
		free(c);
		return err;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	return 0;
}

/* Makes room for one more connection, so that a crowd of slow or silent
 * clients cannot lock probes out: closes, in this order, the oldest idle
 * keep-alive or lingering connection, else the oldest one that has been
 * waiting for its request for at least EVICT_AFTER_MS. Returns false when
 * every connection is busy and young. */
#define EVICT_AFTER_MS 1000ULL

static bool evict_idle(struct http_server *s)
{
	struct conn *idle = NULL, *slow = NULL;
	unsigned long long now = now_ms();

	/* The list is newest first: the last match is the oldest. */
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->state == ST_LINGER || (c->state == ST_READ && c->in_len == 0 && c->served > 0))
			idle = c;
		else if (c->state == ST_READ && now - c->since >= EVICT_AFTER_MS)
			slow = c;
	}
	if (!idle && !slow)
		return false;
	log_v(3, "%s: %zu connections open, closing the oldest %s one", s->name, s->n_conns,
	      idle ? "idle" : "slow");
	conn_close(idle ? idle : slow);
	return true;
}

static void refuse(int fd)
{
	static const char busy[] =
		"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Length: 20\r\nConnection: close\r\n\r\ntoo many connections";

	if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		errno = 0;
	close(fd);
}

static void on_accept(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct http_server *s = arg;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("%s: accept: %s", s->name, strerror(errno));
			break;
		}
		if (s->n_conns >= s->lim.max_conns && !evict_idle(s)) {
			log_v(2, "%s: %zu connections open, refusing one", s->name, s->n_conns);
			refuse(fd);
			continue;
		}
		if (add_conn(s, fd) < 0)
			close(fd);
	}
	rearm(s);
}

static void on_timer(struct loop *l, struct loop_timer *t, void *arg)
{
	struct http_server *s = arg;
	unsigned long long now = now_ms();
	struct conn *c = s->conns, *next;

	s->timer_due = 0;
	for (; c; c = next) {
		next = c->next;
		if (!c->deadline || c->deadline > now)
			continue;
		if (c->state == ST_READ && c->in_len > 0) {
			/* Slow or stuck request head: tell the client, then go. */
			log_v(2, "%s: request head not received in time, closing", s->name);
			sb_reset(&c->out);
			c->in_len = 0;
			error_response(c, 408, "request head not received in time");
			begin_write(c);
			c->deadline = now + LINGER_MS;  /* do not wait long for a slow reader */
			drive(c);
			continue;
		}
		conn_close(c);
	}
	rearm(s);
}

/* ---- server ------------------------------------------------------------- */

struct http_server *http_server_new(struct loop *l, const char *name, int listen_fd,
				    const struct http_limits *lim, http_handler h, void *arg)
{
	struct http_server *s = xcalloc(1, sizeof(*s));

	s->loop = l;
	s->name = xstrdup(name ? name : "http");
	s->lfd = listen_fd;
	s->handler = h;
	s->arg = arg;
	if (lim)
		s->lim = *lim;
	if (!s->lim.max_conns)
		s->lim.max_conns = 64;
	if (!s->lim.max_head)
		s->lim.max_head = 8192;
	if (!s->lim.head_timeout_ms)
		s->lim.head_timeout_ms = 10000;
	if (!s->lim.idle_timeout_ms)
		s->lim.idle_timeout_ms = 30000;
	if (!s->lim.write_timeout_ms)
		s->lim.write_timeout_ms = 10000;
	s->timer = loop_timer_new(l, on_timer, s);
	if (listen_fd >= 0 && loop_add_fd(l, listen_fd, EPOLLIN, on_accept, s) < 0)
		log_error("%s: cannot watch the listening socket: %s", s->name, strerror(errno));
	return s;
}

int http_server_adopt(struct http_server *s, int fd)
{
	int err;

	if (s->n_conns >= s->lim.max_conns && !evict_idle(s))
		return -EMFILE;
	err = add_conn(s, fd);
	if (err == 0)
		rearm(s);
	return err;
}

size_t http_server_conns(const struct http_server *s)
{
	return s->n_conns;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns);
	if (s->lfd >= 0) {
		loop_del_fd(s->loop, s->lfd);
		close(s->lfd);
	}
	loop_timer_free(s->timer);
	free(s->name);
	free(s);
}
