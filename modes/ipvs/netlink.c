/* IPVS generic netlink: building, parsing and exchanging messages. */
#include "config.h"

#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/ip_vs.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "util.h"

/* A queued change whose error may be harmless (EEXIST on add, ...). */
struct pending {
	uint32_t seq;
	int ok1, ok2;
};

struct ipvs_nl {
	struct nl_sock *sk;
	int family;
	unsigned long requests;
	/* batch mode: requests without ACK, concatenated into few sendmsg
	 * calls, errors matched by sequence number after a final barrier */
	bool batching;
	struct strbuf out;
	struct pending *pend;
	size_t n_pend, cap_pend;
	uint32_t seq;
	int batch_err;
};

#define BATCH_SEND_BYTES 32768

/* Kernel address attributes are 16 bytes (union nf_inet_addr). */
#define IPVS_ADDR_LEN 16

static struct nla_policy svc_policy[IPVS_SVC_ATTR_MAX + 1] = {
	[IPVS_SVC_ATTR_AF] = { .type = NLA_U16 },
	[IPVS_SVC_ATTR_PROTOCOL] = { .type = NLA_U16 },
	[IPVS_SVC_ATTR_ADDR] = { .type = NLA_UNSPEC, .minlen = 4 },
	[IPVS_SVC_ATTR_PORT] = { .type = NLA_U16 },
	[IPVS_SVC_ATTR_FWMARK] = { .type = NLA_U32 },
	[IPVS_SVC_ATTR_SCHED_NAME] = { .type = NLA_STRING, .maxlen = IPVS_SCHED_MAX },
	[IPVS_SVC_ATTR_FLAGS] = { .type = NLA_UNSPEC, .minlen = sizeof(struct ip_vs_flags) },
	[IPVS_SVC_ATTR_TIMEOUT] = { .type = NLA_U32 },
	[IPVS_SVC_ATTR_NETMASK] = { .type = NLA_U32 },
	[IPVS_SVC_ATTR_STATS] = { .type = NLA_NESTED },
};

static struct nla_policy dest_policy[IPVS_DEST_ATTR_MAX + 1] = {
	[IPVS_DEST_ATTR_ADDR] = { .type = NLA_UNSPEC, .minlen = 4 },
	[IPVS_DEST_ATTR_PORT] = { .type = NLA_U16 },
	[IPVS_DEST_ATTR_FWD_METHOD] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_WEIGHT] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_U_THRESH] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_L_THRESH] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_ACTIVE_CONNS] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_INACT_CONNS] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_PERSIST_CONNS] = { .type = NLA_U32 },
	[IPVS_DEST_ATTR_STATS] = { .type = NLA_NESTED },
	[IPVS_DEST_ATTR_ADDR_FAMILY] = { .type = NLA_U16 },
};

static struct nla_policy cmd_policy[IPVS_CMD_ATTR_MAX + 1] = {
	[IPVS_CMD_ATTR_SERVICE] = { .type = NLA_NESTED },
	[IPVS_CMD_ATTR_DEST] = { .type = NLA_NESTED },
	[IPVS_CMD_ATTR_TIMEOUT_TCP] = { .type = NLA_U32 },
	[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN] = { .type = NLA_U32 },
	[IPVS_CMD_ATTR_TIMEOUT_UDP] = { .type = NLA_U32 },
};

bool ipvs_service_same(const struct ipvs_service *a, const struct ipvs_service *b)
{
	return a->af == b->af && a->protocol == b->protocol && a->port == b->port &&
	       addr_equal(&a->addr, &b->addr);
}

const char *ipvs_service_str(const struct ipvs_service *s, char *buf)
{
	char ip[ADDR_STRLEN];
	const char *p = s->protocol == IPPROTO_TCP ? "TCP" :
			s->protocol == IPPROTO_UDP ? "UDP" :
			s->protocol == IPPROTO_SCTP ? "SCTP" : "?";

	addr_str(&s->addr, ip);
	if (s->af == AF_INET6)
		snprintf(buf, 64, "%s  [%s]:%u", p, ip, s->port);
	else
		snprintf(buf, 64, "%s  %s:%u", p, ip, s->port);
	return buf;
}

static struct nl_msg *msg_new(int family, uint8_t cmd, int nlflags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, nlflags, cmd,
			 IPVS_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

static int put_addr(struct nl_msg *msg, int type, const struct addr *a)
{
	uint8_t buf[IPVS_ADDR_LEN] = { 0 };

	memcpy(buf, a->bytes, addr_len(a));
	return nla_put(msg, type, sizeof(buf), buf);
}

/* Puts the nested service attribute (identity, plus the full entry if full). */
static int put_service(struct nl_msg *msg, const struct ipvs_service *s, bool full)
{
	struct nlattr *nest = nla_nest_start(msg, IPVS_CMD_ATTR_SERVICE);

	if (!nest)
		return -ENOMEM;
	if (nla_put_u16(msg, IPVS_SVC_ATTR_AF, s->af) < 0 ||
	    nla_put_u16(msg, IPVS_SVC_ATTR_PROTOCOL, s->protocol) < 0 ||
	    put_addr(msg, IPVS_SVC_ATTR_ADDR, &s->addr) < 0 ||
	    nla_put_u16(msg, IPVS_SVC_ATTR_PORT, htons(s->port)) < 0)
		return -ENOMEM;
	if (full) {
		struct ip_vs_flags fl = { .flags = s->flags, .mask = 0xffffffff };

		if (nla_put_string(msg, IPVS_SVC_ATTR_SCHED_NAME, s->sched[0] ? s->sched : "rr") < 0 ||
		    nla_put(msg, IPVS_SVC_ATTR_FLAGS, sizeof(fl), &fl) < 0 ||
		    nla_put_u32(msg, IPVS_SVC_ATTR_TIMEOUT, s->timeout) < 0 ||
		    nla_put_u32(msg, IPVS_SVC_ATTR_NETMASK, s->netmask) < 0)
			return -ENOMEM;
	}
	nla_nest_end(msg, nest);
	return 0;
}

static int put_dest(struct nl_msg *msg, uint16_t af, const struct ipvs_dest *d, bool full)
{
	struct nlattr *nest = nla_nest_start(msg, IPVS_CMD_ATTR_DEST);

	if (!nest)
		return -ENOMEM;
	if (put_addr(msg, IPVS_DEST_ATTR_ADDR, &d->addr) < 0 ||
	    nla_put_u16(msg, IPVS_DEST_ATTR_PORT, htons(d->port)) < 0 ||
	    nla_put_u16(msg, IPVS_DEST_ATTR_ADDR_FAMILY, d->addr.family ? d->addr.family : af) < 0)
		return -ENOMEM;
	if (full) {
		if (nla_put_u32(msg, IPVS_DEST_ATTR_FWD_METHOD, d->fwd) < 0 ||
		    nla_put_u32(msg, IPVS_DEST_ATTR_WEIGHT, (uint32_t)d->weight) < 0 ||
		    nla_put_u32(msg, IPVS_DEST_ATTR_U_THRESH, d->u_thresh) < 0 ||
		    nla_put_u32(msg, IPVS_DEST_ATTR_L_THRESH, d->l_thresh) < 0)
			return -ENOMEM;
	}
	nla_nest_end(msg, nest);
	return 0;
}

struct nl_msg *ipvs_msg_service(int family, uint8_t cmd, const struct ipvs_service *s, int nlflags)
{
	struct nl_msg *msg = msg_new(family, cmd, nlflags);
	bool full = cmd == IPVS_CMD_NEW_SERVICE || cmd == IPVS_CMD_SET_SERVICE;

	if (msg && put_service(msg, s, full) < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nl_msg *ipvs_msg_dest(int family, uint8_t cmd, const struct ipvs_service *s,
			     const struct ipvs_dest *d, int nlflags)
{
	struct nl_msg *msg = msg_new(family, cmd, nlflags);
	bool full = cmd == IPVS_CMD_NEW_DEST || cmd == IPVS_CMD_SET_DEST;

	if (!msg)
		return NULL;
	if (put_service(msg, s, false) < 0 || (d && put_dest(msg, s->af, d, full) < 0)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nl_msg *ipvs_msg_config(int family, uint32_t tcp, uint32_t tcpfin, uint32_t udp)
{
	struct nl_msg *msg = msg_new(family, IPVS_CMD_SET_CONFIG, NLM_F_ACK);

	if (!msg)
		return NULL;
	if ((tcp && nla_put_u32(msg, IPVS_CMD_ATTR_TIMEOUT_TCP, tcp) < 0) ||
	    (tcpfin && nla_put_u32(msg, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, tcpfin) < 0) ||
	    (udp && nla_put_u32(msg, IPVS_CMD_ATTR_TIMEOUT_UDP, udp) < 0)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nl_msg *ipvs_msg_dump_services(int family)
{
	return msg_new(family, IPVS_CMD_GET_SERVICE, NLM_F_DUMP);
}

static int get_addr(struct nlattr *a, uint16_t af, struct addr *out)
{
	size_t want = af == AF_INET6 ? 16 : 4;

	if (af != AF_INET && af != AF_INET6)
		return -EINVAL;
	if ((size_t)nla_len(a) < want)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->family = (uint8_t)af;
	memcpy(out->bytes, nla_data(a), want);
	return 0;
}

int ipvs_parse_service(struct nlattr *nested, struct ipvs_service *out)
{
	struct nlattr *tb[IPVS_SVC_ATTR_MAX + 1];

	memset(out, 0, sizeof(*out));
	if (nla_parse_nested(tb, IPVS_SVC_ATTR_MAX, nested, svc_policy) < 0)
		return -EINVAL;
	if (!tb[IPVS_SVC_ATTR_AF])
		return -EINVAL;
	out->af = nla_get_u16(tb[IPVS_SVC_ATTR_AF]);
	if (tb[IPVS_SVC_ATTR_FWMARK] && !tb[IPVS_SVC_ATTR_ADDR]) {
		/* fwmark services are not ours; report them with no address */
		out->addr.family = 0;
		return 0;
	}
	if (!tb[IPVS_SVC_ATTR_PROTOCOL] || !tb[IPVS_SVC_ATTR_ADDR] || !tb[IPVS_SVC_ATTR_PORT])
		return -EINVAL;
	out->protocol = nla_get_u16(tb[IPVS_SVC_ATTR_PROTOCOL]);
	if (get_addr(tb[IPVS_SVC_ATTR_ADDR], out->af, &out->addr) < 0)
		return -EINVAL;
	out->port = ntohs(nla_get_u16(tb[IPVS_SVC_ATTR_PORT]));
	if (tb[IPVS_SVC_ATTR_SCHED_NAME])
		snprintf(out->sched, sizeof(out->sched), "%s", nla_get_string(tb[IPVS_SVC_ATTR_SCHED_NAME]));
	if (tb[IPVS_SVC_ATTR_FLAGS]) {
		struct ip_vs_flags fl;

		memcpy(&fl, nla_data(tb[IPVS_SVC_ATTR_FLAGS]), sizeof(fl));
		out->flags = fl.flags;
	}
	if (tb[IPVS_SVC_ATTR_TIMEOUT])
		out->timeout = nla_get_u32(tb[IPVS_SVC_ATTR_TIMEOUT]);
	if (tb[IPVS_SVC_ATTR_NETMASK])
		out->netmask = nla_get_u32(tb[IPVS_SVC_ATTR_NETMASK]);
	return 0;
}

int ipvs_parse_dest(struct nlattr *nested, uint16_t af, struct ipvs_dest *out)
{
	struct nlattr *tb[IPVS_DEST_ATTR_MAX + 1];

	memset(out, 0, sizeof(*out));
	if (nla_parse_nested(tb, IPVS_DEST_ATTR_MAX, nested, dest_policy) < 0)
		return -EINVAL;
	if (tb[IPVS_DEST_ATTR_ADDR_FAMILY])
		af = nla_get_u16(tb[IPVS_DEST_ATTR_ADDR_FAMILY]);
	if (!tb[IPVS_DEST_ATTR_ADDR] || !tb[IPVS_DEST_ATTR_PORT] ||
	    get_addr(tb[IPVS_DEST_ATTR_ADDR], af, &out->addr) < 0)
		return -EINVAL;
	out->port = ntohs(nla_get_u16(tb[IPVS_DEST_ATTR_PORT]));
	if (tb[IPVS_DEST_ATTR_FWD_METHOD])
		out->fwd = nla_get_u32(tb[IPVS_DEST_ATTR_FWD_METHOD]);
	if (tb[IPVS_DEST_ATTR_WEIGHT])
		out->weight = (int32_t)nla_get_u32(tb[IPVS_DEST_ATTR_WEIGHT]);
	if (tb[IPVS_DEST_ATTR_U_THRESH])
		out->u_thresh = nla_get_u32(tb[IPVS_DEST_ATTR_U_THRESH]);
	if (tb[IPVS_DEST_ATTR_L_THRESH])
		out->l_thresh = nla_get_u32(tb[IPVS_DEST_ATTR_L_THRESH]);
	if (tb[IPVS_DEST_ATTR_ACTIVE_CONNS])
		out->active_conns = nla_get_u32(tb[IPVS_DEST_ATTR_ACTIVE_CONNS]);
	if (tb[IPVS_DEST_ATTR_INACT_CONNS])
		out->inact_conns = nla_get_u32(tb[IPVS_DEST_ATTR_INACT_CONNS]);
	if (tb[IPVS_DEST_ATTR_PERSIST_CONNS])
		out->persist_conns = nla_get_u32(tb[IPVS_DEST_ATTR_PERSIST_CONNS]);
	return 0;
}

static int msg_attrs(struct nl_msg *msg, struct nlattr **tb)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	if (genlmsg_parse(nlh, 0, tb, IPVS_CMD_ATTR_MAX, cmd_policy) < 0)
		return -EINVAL;
	return 0;
}

int ipvs_msg_parse_service(struct nl_msg *msg, struct ipvs_service *out)
{
	struct nlattr *tb[IPVS_CMD_ATTR_MAX + 1];

	if (msg_attrs(msg, tb) < 0)
		return -EINVAL;
	if (!tb[IPVS_CMD_ATTR_SERVICE])
		return -ENOENT;
	return ipvs_parse_service(tb[IPVS_CMD_ATTR_SERVICE], out);
}

int ipvs_msg_parse_dest(struct nl_msg *msg, uint16_t af, struct ipvs_dest *out)
{
	struct nlattr *tb[IPVS_CMD_ATTR_MAX + 1];

	if (msg_attrs(msg, tb) < 0)
		return -EINVAL;
	if (!tb[IPVS_CMD_ATTR_DEST])
		return -ENOENT;
	return ipvs_parse_dest(tb[IPVS_CMD_ATTR_DEST], af, out);
}

/* ---- the socket ---- */

int ipvs_nl_open(struct ipvs_nl **out)
{
	struct ipvs_nl *nl = xcalloc(1, sizeof(*nl));
	int rc;

	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		free(nl);
		return -ENOMEM;
	}
	if (genl_connect(nl->sk) < 0) {
		rc = -EIO;
		goto fail;
	}
	nl_socket_set_buffer_size(nl->sk, 1 << 20, 1 << 20);
	nl->family = genl_ctrl_resolve(nl->sk, IPVS_GENL_NAME);
	if (nl->family < 0) {
		rc = -ENOENT;
		goto fail;
	}
	*out = nl;
	return 0;
fail:
	nl_socket_free(nl->sk);
	free(nl);
	return rc;
}

void ipvs_nl_close(struct ipvs_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);
	sb_free(&nl->out);
	free(nl->pend);
	free(nl);
}

int ipvs_nl_family(const struct ipvs_nl *nl)
{
	return nl->family;
}

unsigned long ipvs_nl_requests(const struct ipvs_nl *nl)
{
	return nl->requests;
}

/* State of one request/response exchange. */
struct xfer {
	int err;            /* errno from the kernel's NLMSG_ERROR (negative) */
	bool done;
	int (*valid)(struct nl_msg *msg, void *arg);
	void *arg;
};

static int cb_err(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct xfer *x = arg;

	x->err = e->error;
	x->done = true;
	return NL_STOP;
}

static int cb_ack(struct nl_msg *msg, void *arg)
{
	struct xfer *x = arg;

	x->done = true;
	return NL_STOP;
}

static int cb_valid(struct nl_msg *msg, void *arg)
{
	struct xfer *x = arg;

	if (x->valid && x->valid(msg, x->arg) < 0)
		x->err = -EINVAL;
	return NL_OK;
}

/* Sends msg (consumed) and receives until the ACK, an error or the end of a
 * dump. Returns 0 or the kernel's -errno. */
static int transact(struct ipvs_nl *nl, struct nl_msg *msg,
		    int (*valid)(struct nl_msg *, void *), void *arg)
{
	struct xfer x = { .valid = valid, .arg = arg };
	struct nl_cb *cb;
	int rc;

	if (!msg)
		return -ENOMEM;
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_err(cb, NL_CB_CUSTOM, cb_err, &x);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, cb_ack, &x);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, cb_ack, &x);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, &x);
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_ACK;
	nl->requests++;
	rc = nl_send_auto(nl->sk, msg);
	nlmsg_free(msg);
	if (rc < 0) {
		rc = -EIO;
		goto out;
	}
	while (!x.done) {
		rc = nl_recvmsgs(nl->sk, cb);
		if (rc < 0 && !x.done) {
			rc = -EIO;
			goto out;
		}
	}
	rc = x.err;
out:
	nl_cb_put(cb);
	return rc;
}

static int ignore(int rc, int ok1, int ok2)
{
	return rc == ok1 || rc == ok2 ? 0 : rc;
}

static int batch_send(struct ipvs_nl *nl)
{
	int rc = 0;

	if (nl->out.len && nl_sendto(nl->sk, nl->out.buf, nl->out.len) < 0)
		rc = -EIO;
	sb_reset(&nl->out);
	if (rc < 0 && !nl->batch_err)
		nl->batch_err = rc;
	return rc;
}

/* Queues msg (consumed) in the batch. */
static void batch_queue(struct ipvs_nl *nl, struct nl_msg *msg, int ok1, int ok2)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	static const char zero[NLMSG_ALIGNTO];

	h->nlmsg_flags |= NLM_F_REQUEST;
	h->nlmsg_flags &= ~NLM_F_ACK;
	h->nlmsg_seq = ++nl->seq;
	h->nlmsg_pid = nl_socket_get_local_port(nl->sk);
	sb_add(&nl->out, (const char *)h, h->nlmsg_len);
	sb_add(&nl->out, zero, NLMSG_ALIGN(h->nlmsg_len) - h->nlmsg_len);
	if (nl->n_pend == nl->cap_pend) {
		nl->cap_pend = nl->cap_pend ? nl->cap_pend * 2 : 256;
		nl->pend = xrealloc(nl->pend, nl->cap_pend * sizeof(*nl->pend));
	}
	nl->pend[nl->n_pend++] = (struct pending){ h->nlmsg_seq, ok1, ok2 };
	nl->requests++;
	nlmsg_free(msg);
	if (nl->out.len >= BATCH_SEND_BYTES)
		batch_send(nl);
}

static const struct pending *find_pending(const struct ipvs_nl *nl, uint32_t seq)
{
	size_t lo = 0, hi = nl->n_pend;

	while (lo < hi) {               /* seqs were queued in increasing order */
		size_t mid = (lo + hi) / 2;

		if (nl->pend[mid].seq == seq)
			return &nl->pend[mid];
		if (nl->pend[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void ipvs_batch_begin(struct ipvs_nl *nl)
{
	nl->batching = true;
	nl->batch_err = 0;
	nl->n_pend = 0;
	sb_reset(&nl->out);
}

int ipvs_batch_end(struct ipvs_nl *nl)
{
	struct nl_msg *barrier;
	uint32_t bseq;
	bool done = false;
	int rc;

	nl->batching = false;
	if (!nl->n_pend)
		return 0;
	batch_send(nl);
	/* a request with ACK after everything: its ACK ends the batch */
	barrier = msg_new(nl->family, IPVS_CMD_GET_INFO, NLM_F_ACK);
	if (!barrier)
		return -ENOMEM;
	bseq = nlmsg_hdr(barrier)->nlmsg_seq = ++nl->seq;
	nlmsg_hdr(barrier)->nlmsg_flags |= NLM_F_REQUEST;
	nlmsg_hdr(barrier)->nlmsg_pid = nl_socket_get_local_port(nl->sk);
	rc = nl_sendto(nl->sk, nlmsg_hdr(barrier), nlmsg_hdr(barrier)->nlmsg_len);
	nlmsg_free(barrier);
	if (rc < 0)
		return nl->batch_err ? nl->batch_err : -EIO;
	while (!done) {
		struct sockaddr_nl peer;
		unsigned char *buf = NULL;
		struct nlmsghdr *h;
		int len = nl_recv(nl->sk, &peer, &buf, NULL);

		if (len <= 0) {
			free(buf);
			if (!nl->batch_err)
				nl->batch_err = len == -NLE_NOMEM ? -ENOBUFS : -EIO;
			break;
		}
		for (h = (struct nlmsghdr *)buf; nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
			struct nlmsgerr *e;
			const struct pending *p;

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			e = nlmsg_data(h);
			if (h->nlmsg_seq == bseq) {
				done = true;
				continue;
			}
			if (!e->error)
				continue;
			p = find_pending(nl, h->nlmsg_seq);
			if (p && (e->error == p->ok1 || e->error == p->ok2))
				continue;
			if (!nl->batch_err)
				nl->batch_err = e->error;
		}
		free(buf);
	}
	nl->n_pend = 0;
	return nl->batch_err;
}

/* One change: queued when batching, else sent and acknowledged. */
static int change(struct ipvs_nl *nl, struct nl_msg *msg, int ok1, int ok2)
{
	if (!msg)
		return -ENOMEM;
	if (nl->batching) {
		batch_queue(nl, msg, ok1, ok2);
		return 0;
	}
	return ignore(transact(nl, msg, NULL, NULL), ok1, ok2);
}

int ipvs_add_service(struct ipvs_nl *nl, const struct ipvs_service *s)
{
	return change(nl, ipvs_msg_service(nl->family, IPVS_CMD_NEW_SERVICE, s, 0), -EEXIST, -EEXIST);
}

int ipvs_update_service(struct ipvs_nl *nl, const struct ipvs_service *s)
{
	return change(nl, ipvs_msg_service(nl->family, IPVS_CMD_SET_SERVICE, s, 0), 0, 0);
}

int ipvs_del_service(struct ipvs_nl *nl, const struct ipvs_service *s)
{
	return change(nl, ipvs_msg_service(nl->family, IPVS_CMD_DEL_SERVICE, s, 0), -ESRCH, -ENOENT);
}

int ipvs_add_dest(struct ipvs_nl *nl, const struct ipvs_service *s, const struct ipvs_dest *d)
{
	return change(nl, ipvs_msg_dest(nl->family, IPVS_CMD_NEW_DEST, s, d, 0), -EEXIST, -EEXIST);
}

int ipvs_update_dest(struct ipvs_nl *nl, const struct ipvs_service *s, const struct ipvs_dest *d)
{
	return change(nl, ipvs_msg_dest(nl->family, IPVS_CMD_SET_DEST, s, d, 0), 0, 0);
}

int ipvs_del_dest(struct ipvs_nl *nl, const struct ipvs_service *s, const struct ipvs_dest *d)
{
	return change(nl, ipvs_msg_dest(nl->family, IPVS_CMD_DEL_DEST, s, d, 0), -ENOENT, -ESRCH);
}

int ipvs_set_timeouts(struct ipvs_nl *nl, uint32_t tcp, uint32_t tcpfin, uint32_t udp)
{
	if (!tcp && !tcpfin && !udp)
		return 0;
	return transact(nl, ipvs_msg_config(nl->family, tcp, tcpfin, udp), NULL, NULL);
}

/* Growable array collected by the dump callbacks. */
struct collect {
	void *items;
	size_t n, cap, size;
	uint16_t af;
};

static void *collect_slot(struct collect *c)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->items = xrealloc(c->items, c->cap * c->size);
	}
	return (char *)c->items + c->n++ * c->size;
}

static int on_service(struct nl_msg *msg, void *arg)
{
	struct collect *c = arg;
	struct ipvs_service s;

	if (ipvs_msg_parse_service(msg, &s) < 0)
		return -EINVAL;
	if (!s.addr.family)
		return 0;           /* fwmark service: never ours */
	memcpy(collect_slot(c), &s, sizeof(s));
	return 0;
}

static int on_dest(struct nl_msg *msg, void *arg)
{
	struct collect *c = arg;
	struct ipvs_dest d;

	if (ipvs_msg_parse_dest(msg, c->af, &d) < 0)
		return -EINVAL;
	memcpy(collect_slot(c), &d, sizeof(d));
	return 0;
}

int ipvs_list_services(struct ipvs_nl *nl, struct ipvs_service **out, size_t *n)
{
	struct collect c = { .size = sizeof(struct ipvs_service) };
	int rc = transact(nl, ipvs_msg_dump_services(nl->family), on_service, &c);

	if (rc < 0) {
		free(c.items);
		return rc;
	}
	*out = c.items;
	*n = c.n;
	return 0;
}

int ipvs_list_dests(struct ipvs_nl *nl, const struct ipvs_service *s, struct ipvs_dest **out, size_t *n)
{
	struct collect c = { .size = sizeof(struct ipvs_dest), .af = s->af };
	int rc = transact(nl, ipvs_msg_dest(nl->family, IPVS_CMD_GET_DEST, s, NULL, NLM_F_DUMP),
			  on_dest, &c);

	if (rc < 0) {
		free(c.items);
		return rc;
	}
	*out = c.items;
	*n = c.n;
	return 0;
}
