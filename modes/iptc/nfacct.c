/* nfnetlink_acct over a plain NETLINK_NETFILTER socket: one request
 * (NEW or GET of one named counter, acknowledged), read until the ack. */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_acct.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netlink.h>

#include "nfacct.h"

#define RECV_TIMEOUT_MS 2000

struct acct_req {
	struct nlmsghdr nh;
	struct nfgenmsg nf;
	char attrs[NLA_HDRLEN + NLA_ALIGN(NFACCT_NAME_MAX)];
};

struct acct_values {
	bool found;
	uint64_t packets;
};

static int open_socket(void)
{
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_MS / 1000, .tv_usec = RECV_TIMEOUT_MS % 1000 * 1000 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Reads the NFACCT_PKTS attribute of one answer. */
static void parse_acct(const struct nlmsghdr *nh, struct acct_values *v)
{
	const char *p = (const char *)NLMSG_DATA(nh) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const char *end = (const char *)nh + nh->nlmsg_len;

	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *a = (const struct nlattr *)(const void *)p;
		size_t len = a->nla_len;
		uint64_t be;

		if (len < NLA_HDRLEN || p + len > end)
			break;
		if (len == NLA_HDRLEN + sizeof(be) && (a->nla_type & NLA_TYPE_MASK) == NFACCT_PKTS) {
			memcpy(&be, p + NLA_HDRLEN, sizeof(be));
			v->packets = be64toh(be);
		}
		p += NLA_ALIGN(len);
	}
	v->found = true;
}

/* Sends one request for counter name and waits for its ack. 0 or -errno
 * (the kernel's error from the ack). */
static int request(uint16_t msg, uint16_t flags, const char *name, struct acct_values *v)
{
	struct acct_req req;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	size_t name_len = strlen(name) + 1;
	struct nlattr *a = (struct nlattr *)(void *)req.attrs;
	uint32_t seq = (uint32_t)time(NULL);
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	int fd, ret = -EIO;

	if (name_len > NFACCT_NAME_MAX)
		return -ENAMETOOLONG;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = (uint32_t)(NLMSG_LENGTH(sizeof(req.nf)) + NLA_HDRLEN + NLA_ALIGN(name_len));
	req.nh.nlmsg_type = (uint16_t)(NFNL_SUBSYS_ACCT << 8 | msg);
	req.nh.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	req.nh.nlmsg_seq = seq;
	req.nf.nfgen_family = AF_UNSPEC;
	req.nf.version = NFNETLINK_V0;
	a->nla_type = NFACCT_NAME;
	a->nla_len = (uint16_t)(NLA_HDRLEN + name_len);
	memcpy(req.attrs + NLA_HDRLEN, name, name_len);

	fd = open_socket();
	if (fd < 0)
		return fd;
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nh;
		size_t left;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		left = (size_t)n;
		for (nh = (struct nlmsghdr *)(void *)buf; NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
			if (nh->nlmsg_seq != seq)
				continue;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);

				ret = nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? e->error : -EIO;
				goto out;
			}
			if (v && nh->nlmsg_type == (NFNL_SUBSYS_ACCT << 8 | NFNL_MSG_ACCT_NEW))
				parse_acct(nh, v);
		}
	}
out:
	close(fd);
	return ret;
}

int nfacct_read(const char *name, uint64_t *packets)
{
	struct acct_values v = { 0 };
	int ret = request(NFNL_MSG_ACCT_GET, 0, name, &v);

	if (ret == 0 && !v.found)
		ret = -ENOENT;
	if (ret < 0)
		return ret;
	*packets = v.packets;
	return 0;
}

int nfacct_ensure(const char *name)
{
	uint64_t pkts;
	int ret = nfacct_read(name, &pkts);

	if (ret != -ENOENT)
		return ret;
	ret = request(NFNL_MSG_ACCT_NEW, NLM_F_CREATE | NLM_F_EXCL, name, NULL);
	return ret == -EEXIST ? 0 : ret;   /* someone else was quicker */
}

int nfacct_match_usable(void)
{
	struct xt_get_revision rev = { .name = "nfacct", .revision = 1 };
	socklen_t len = sizeof(rev);
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW), ret = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, IPPROTO_IP, IPT_SO_GET_REVISION_MATCH, &rev, &len) < 0)
		ret = -errno;
	close(fd);
	return ret;
}
