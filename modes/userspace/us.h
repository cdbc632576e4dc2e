/* Internal to modes/userspace: the userspace proxy mode's pieces. The
 * mode itself exports only `userspace_mode` (userspace.c); this header
 * ties its files together and lets the unit tests reach the pure logic
 * (port ranges, load balancing, deadline queues, the UDP association
 * table).
 *
 * Every service port gets a listening socket on the node (a "proxy
 * port"); iptables portal rules (portals.c) send the service's traffic
 * there: REDIRECT for packets arriving from pods or other hosts, DNAT to
 * the node address for packets the node itself sends. TCP connections
 * (tcp_relay.c) and UDP associations (udp_relay.c) are relayed on the
 * daemon's one epoll loop; nothing blocks and there are no threads. */
#ifndef KP_USERSPACE_US_H
#define KP_USERSPACE_US_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../../src/cidr.h"
#include "../../src/config.h"
#include "../../src/model.h"
#include "../../src/store.h"
#include "../../src/strmap.h"
#include "../iptc/rule.h"

struct loop;
struct loop_timer;

/* ---- intrusive doubly linked list ------------------------------------ */

struct dlist {
	struct dlist *prev, *next;
};

static inline void dlist_init(struct dlist *h)
{
	h->prev = h->next = h;
}

static inline bool dlist_empty(const struct dlist *h)
{
	return h->next == h;
}

static inline void dlist_unlink(struct dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* Inserts n right after pos. */
static inline void dlist_insert_after(struct dlist *pos, struct dlist *n)
{
	n->prev = pos;
	n->next = pos->next;
	pos->next->prev = n;
	pos->next = n;
}

#define us_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- proxy port range (--proxy-port-range / portRange) --------------- */

/* lo..lo+n-1; n == 0 means "let the kernel pick". */
struct port_range {
	uint16_t lo;
	uint32_t n;
};

/* Parses "", "0", "0-0" (any port), "N" (one port), "A-B" or "A+OFFSET"
 * (A..A+OFFSET inclusive), as upstream's utilnet.PortRange. 0 or -EINVAL
 * with *err naming the value (caller frees). */
int port_range_parse(const char *s, struct port_range *out, char **err);

/* ---- deadline queue --------------------------------------------------- */

/* Entries ordered by deadline (ms, monotonic). Inserting searches from the
 * tail, so equal timeouts (UDP idle, connect attempts) cost O(1). */
struct dq_node {
	struct dlist link;
	unsigned long long deadline;
	bool queued;
};

struct dqueue {
	struct dlist head;
	size_t n;
};

void dq_init(struct dqueue *q);
/* (Re)queues node at deadline. Returns true if it became the earliest. */
bool dq_add(struct dqueue *q, struct dq_node *node, unsigned long long deadline);
void dq_del(struct dqueue *q, struct dq_node *node);
/* The earliest entry, or NULL. */
struct dq_node *dq_first(const struct dqueue *q);
/* Removes and returns the earliest entry whose deadline is <= now. */
struct dq_node *dq_pop_expired(struct dqueue *q, unsigned long long now);

/* ---- load balancer: round robin + ClientIP affinity (lb.c) ----------- */

struct lb_ep {
	struct addr ip;
	uint16_t port;
};

struct lb_sticky {
	struct lb_ep ep;
	unsigned long long last_ms;
};

struct lb {
	struct lb_ep *eps;        /* shuffled once per endpoint change */
	size_t n_eps;
	size_t next;              /* round robin cursor */
	bool affinity;
	unsigned long long ttl_ms;
	struct strmap sticky;     /* client IP text -> struct lb_sticky * */
};

void lb_init(struct lb *lb, bool affinity, uint32_t timeout_s);
void lb_fini(struct lb *lb);
/* Replaces the endpoint list with eps (copied). Sticky entries that point
 * at endpoints no longer present are dropped. Returns true if the set of
 * endpoints changed. shuffle = false keeps the given order (tests). */
bool lb_set(struct lb *lb, const struct lb_ep *eps, size_t n, bool shuffle);
/* Endpoints of a service port as the other modes use them: the ready
 * ones, or when none is ready the serving and terminating ones. Writes at
 * most n_eps entries into out (caller-allocated, pi->n_eps long);
 * returns how many. */
size_t lb_usable_endpoints(const struct svc_port_info *pi, struct lb_ep *out);
/* Picks the endpoint for a new connection from client at time now.
 * reset_affinity (a retry after a failed connect) skips the sticky
 * entry. 0, or -ENOENT when there is no endpoint. */
int lb_pick(struct lb *lb, const struct addr *client, unsigned long long now,
	    bool reset_affinity, struct lb_ep *out);
/* Drops sticky entries idle for longer than the timeout. */
void lb_expire(struct lb *lb, unsigned long long now);

/* ---- sockaddr helpers ------------------------------------------------- */

socklen_t us_sockaddr(const struct addr *ip, uint16_t port, struct sockaddr_storage *ss);
void us_from_sockaddr(const struct sockaddr_storage *ss, struct addr *ip, uint16_t *port);
/* "ip:port" or "[ip]:port" into buf (ADDR_STRLEN + 8 bytes); returns buf. */
const char *us_ep_str(const struct addr *ip, uint16_t port, char *buf);
#define US_EPSTRLEN (ADDR_STRLEN + 8)

/* ---- UDP association table (udp_relay.c) ------------------------------ */

struct us_port;

/* One client (address, port, the local address it reached us on) bound
 * to one endpoint through its own connected socket. */
struct udp_assoc {
	struct udp_assoc *hnext;  /* hash chain */
	struct dq_node idle;      /* in the context's UDP idle queue */
	struct addr client;
	uint16_t client_port;
	struct addr local;        /* destination the client's datagram had here */
	struct lb_ep ep;
	int fd;                   /* connected to ep; -1 in tests */
	struct us_port *port;
	unsigned long long packets_in, packets_out;
};

struct udp_table {
	struct udp_assoc **buckets;
	size_t nbuckets;          /* power of two */
	size_t n;
};

void udp_table_init(struct udp_table *t);
void udp_table_fini(struct udp_table *t);  /* entries are the caller's */
struct udp_assoc *udp_table_find(const struct udp_table *t, const struct addr *client,
				 uint16_t client_port, const struct addr *local);
void udp_table_insert(struct udp_table *t, struct udp_assoc *a);
void udp_table_remove(struct udp_table *t, struct udp_assoc *a);

/* ---- the mode's state --------------------------------------------------- */

#define US_CONNECT_ATTEMPTS 4
#define US_DEFAULT_MAX_CONNS 10000

struct us_ctx {
	const struct config *cfg;
	struct loop *loop;
	struct port_range range;
	uint32_t range_cursor;        /* next offset to try in range */
	uint8_t *range_used;          /* bitmap over range, ports we hold */
	struct addr bind_ip;          /* from --bind-address */
	bool bind_any;                /* bind address is 0.0.0.0 / :: */
	struct addr host_ip[2];       /* [0] v4, [1] v6 DNAT target for host traffic */
	struct strmap ports;          /* us_port key -> struct us_port * */
	size_t max_conns;             /* per service port */
	int reserve_fd;               /* spare fd for EMFILE on accept */
	unsigned long long udp_timeout_ms;
	struct dqueue connect_q;      /* TCP connections waiting for connect() */
	struct loop_timer *connect_timer;
	unsigned long long connect_armed; /* deadline the timer is armed for, 0 = none */
	struct dqueue udp_q;          /* UDP associations by idle deadline */
	struct loop_timer *udp_timer;
	unsigned long long udp_armed;
	char *applied[2][2];          /* [family][nat, filter] rendered text last applied */
	uint8_t *udp_buf;             /* one datagram */
	struct dlist conns;           /* every live TCP connection */
	struct loop_timer *resume_timer; /* resumes paused listeners */
	int pipe_pool[64][2];         /* empty splice pipes kept for reuse */
	size_t n_pipe_pool;
	size_t pipe_cap;              /* size of the pooled pipes */
	unsigned gen;                 /* sync generation (stale port sweep) */
	bool stopping;                /* fini: ports close, flows stay as they are */
	struct us_port **closed_udp;  /* UDP ports closed in this sync (flush list) */
	size_t n_closed_udp;
};

/* One service port of one family: its listener, its balancer, the
 * portal configuration it was opened with. */
struct us_port {
	struct us_ctx *ctx;
	char *key;                    /* spn "|" family */
	char *spn;
	uint8_t family;
	enum l4_proto proto;
	struct addr cluster_ip;
	uint16_t svc_port, node_port;
	struct addr *ext_ips;
	size_t n_ext_ips;
	struct addr *lb_ips;
	size_t n_lb_ips;
	bool affinity;
	uint32_t affinity_timeout;
	uint16_t proxy_port;
	int fd;                       /* listener, -1 once closed */
	bool closed;
	unsigned refs;                /* the ctx map + every live TCP connection */
	struct lb lb;
	size_t n_conns;               /* TCP connections or UDP associations */
	unsigned long long accepted, refused_cap;
	unsigned long long last_cap_log_ms, last_err_log_ms;
	bool paused;                  /* accept paused after EMFILE */
	struct udp_table udp;
	unsigned gen;                 /* last sync that saw this port */
};

/* listener.c */
/* Opens p's proxy port (allocating it from the range) and registers it on
 * the loop. 0 or -errno (logged). */
int us_port_open(struct us_ctx *ctx, struct us_port *p);
/* Closes the listener and (UDP) every association, drops the map's
 * reference. Live TCP connections keep the port alive until they end. */
void us_port_close(struct us_port *p);
void us_port_put(struct us_port *p);
/* Hands back a range port. */
void us_range_release(struct us_ctx *ctx, uint16_t port);
/* Pauses accepting on p for a short while (fd exhaustion). */
void us_port_pause(struct us_port *p);
/* Timer callback (arg = ctx): resumes every paused listener. */
void us_resume_paused(struct loop *l, struct loop_timer *t, void *arg);
/* Rate-limited log line for p (at most one per 10 s per kind). */
bool us_port_log_ok(struct us_port *p, unsigned long long *last);

/* tcp_relay.c */
void tcp_on_accept(struct loop *l, int fd, uint32_t events, void *arg);
void tcp_connect_timer(struct loop *l, struct loop_timer *t, void *arg);
/* Ends every TCP connection and closes the pipe pool (daemon shutdown). */
void tcp_close_all(struct us_ctx *ctx);
/* Rearms the connect timer for the earliest deadline. */
void us_rearm(struct us_ctx *ctx, struct dqueue *q, struct loop_timer *t,
	      unsigned long long *armed);

/* udp_relay.c */
void udp_on_client(struct loop *l, int fd, uint32_t events, void *arg);
void udp_idle_timer(struct loop *l, struct loop_timer *t, void *arg);
/* Closes every association of p. */
void udp_close_all(struct us_port *p);
/* Deletes the conntrack entries that still steer UDP flows for a closed
 * service port (original destination port svc_port or node_port) to its
 * old proxy port, as upstream clears a removed UDP service's entries:
 * otherwise a client that keeps sending never leaves the dead port. Call
 * after the portal rules are gone. */
void udp_flush_conntrack(uint8_t family, uint16_t proxy_port, uint16_t svc_port, uint16_t node_port,
			 const char *spn);
/* Enables IP_PKTINFO / IPV6_RECVPKTINFO on a UDP listener. 0 or -errno. */
int udp_listener_setup(int fd, uint8_t family);

/* portals.c */
/* Builds the portal chains for every open port of one family into nat and
 * filter (initialised by the caller). host_ip may be NULL (no address of
 * that family: host portals are skipped). */
void portals_build(const struct us_ctx *ctx, uint8_t family, const struct addr *host_ip,
		   struct table_want *nat, struct table_want *filter);
/* Adds the portal rules of one port (used by portals_build and the
 * --dry-run dump). */
void portals_add_port(struct table_want *nat, struct table_want *filter, const struct us_port *p,
		      bool bind_any, const struct addr *bind_ip, const struct addr *host_ip);
/* Creates our chains (empty) and the jumps into them. */
void portals_skeleton(struct table_want *nat, struct table_want *filter);
/* Finds the address host portals DNAT to: the address of the interface
 * holding the default route, else the first global address. 0 or -ENOENT. */
int us_host_ip(uint8_t family, struct addr *out);

#endif
