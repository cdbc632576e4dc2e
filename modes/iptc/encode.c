/* struct rule -> ipt_entry / ip6t_entry, laid out exactly as
 * iptables-legacy 1.8.9 lays out the same command line: matches in
 * argument order, the revisions it negotiates with current kernels
 * (addrtype 1, conntrack 3, mark 1, recent 1, set 4, MARK 2, DNAT 2) and
 * its defaults (e.g. tcp source ports 0:65535, recent mask all ones). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <net/if.h>

#include <linux/netfilter.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_nfacct.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_sctp.h>
#include <linux/netfilter/xt_set.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <linux/netfilter_ipv6/ip6t_REJECT.h>

#include "encode.h"

#define STD_TARGET_SIZE XT_ALIGN(sizeof(struct xt_standard_target))

void rule_encoder_init(struct rule_encoder *enc, uint8_t family)
{
	memset(enc, 0, sizeof(*enc));
	enc->family = family;
	enc->ipset_fd = -1;
}

void rule_encoder_fini(struct rule_encoder *enc)
{
	free(enc->buf);
	free(enc->sets);
	if (enc->ipset_fd >= 0)
		close(enc->ipset_fd);
	enc->buf = NULL;
	enc->sets = NULL;
	enc->ipset_fd = -1;
	enc->cap = enc->n_sets = 0;
}

/* ---- sizes ---------------------------------------------------------------- */

static size_t match_size(size_t info)
{
	return XT_ALIGN(sizeof(struct xt_entry_match)) + XT_ALIGN(info);
}

static size_t proto_info_size(enum l4_proto p)
{
	switch (p) {
	case PROTO_TCP:
		return sizeof(struct xt_tcp);
	case PROTO_UDP:
		return sizeof(struct xt_udp);
	case PROTO_SCTP:
		return sizeof(struct xt_sctp_info);
	}
	return 0;
}

/* Upper bound of the encoded size, to size the buffer once per rule. */
static size_t rule_size(const struct rule *r, size_t head)
{
	size_t n = head;

	for (size_t i = 0; i < r->n_items; i++) {
		switch (r->items[i].kind) {
		case RI_COMMENT:
			n += match_size(sizeof(struct xt_comment_info));
			break;
		case RI_PROTO:
			n += match_size(proto_info_size(r->items[i].proto));
			break;
		case RI_ADDRTYPE_DST:
		case RI_ADDRTYPE_SRC:
		case RI_ADDRTYPE_DST_LIMIT_IN:
			n += match_size(sizeof(struct xt_addrtype_info_v1));
			break;
		case RI_CTSTATE:
			n += match_size(sizeof(struct xt_conntrack_mtinfo3));
			break;
		case RI_MARK:
			n += match_size(sizeof(struct xt_mark_mtinfo1));
			break;
		case RI_STATISTIC:
			n += match_size(sizeof(struct xt_statistic_info));
			break;
		case RI_RECENT_CHECK:
		case RI_RECENT_SET:
			n += match_size(sizeof(struct xt_recent_mtinfo_v1));
			break;
		case RI_SET:
			n += match_size(sizeof(struct xt_set_info_match_v4));
			break;
		case RI_NFACCT:
			n += match_size(sizeof(struct xt_nfacct_match_info_v1));
			break;
		default:
			break;
		}
	}
	/* The largest target: DNAT with nf_nat_range2. */
	return n + XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(sizeof(struct nf_nat_range2)) +
	       STD_TARGET_SIZE;
}

/* ---- ipset index lookup --------------------------------------------------- */

static int ipset_index(struct rule_encoder *enc, const char *name, uint16_t *index, char **err)
{
	struct ip_set_req_get_set req;
	socklen_t len;

	for (size_t i = 0; i < enc->n_sets; i++) {
		if (strcmp(enc->sets[i].name, name) == 0) {
			*index = enc->sets[i].index;
			return 0;
		}
	}
	if (strlen(name) >= IPSET_MAXNAMELEN) {
		*err = xasprintf("ipset name %s is too long", name);
		return -EINVAL;
	}
	if (enc->ipset_fd < 0) {
		struct ip_set_req_version ver = { .op = IP_SET_OP_VERSION };

		enc->ipset_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (enc->ipset_fd < 0) {
			int e = errno;

			*err = xasprintf("ipset %s: socket: %s", name, strerror(e));
			return -e;
		}
		len = sizeof(ver);
		if (getsockopt(enc->ipset_fd, SOL_IP, SO_IP_SET, &ver, &len) < 0) {
			int e = errno;

			*err = xasprintf("ipset %s: protocol version: %s", name, strerror(e));
			return -e;
		}
		enc->ipset_version = ver.version;
	}
	memset(&req, 0, sizeof(req));
	req.op = IP_SET_OP_GET_BYNAME;
	req.version = enc->ipset_version;
	snprintf(req.set.name, sizeof(req.set.name), "%s", name);
	len = sizeof(req);
	if (getsockopt(enc->ipset_fd, SOL_IP, SO_IP_SET, &req, &len) < 0) {
		int e = errno;

		*err = xasprintf("ipset %s: lookup: %s", name, strerror(e));
		return -e;
	}
	if (req.set.index == IPSET_INVALID_ID) {
		*err = xasprintf("ipset %s does not exist", name);
		return -ENOENT;
	}
	enc->sets = xrealloc(enc->sets, (enc->n_sets + 1) * sizeof(*enc->sets));
	snprintf(enc->sets[enc->n_sets].name, sizeof(enc->sets[0].name), "%s", name);
	enc->sets[enc->n_sets++].index = req.set.index;
	*index = req.set.index;
	return 0;
}

/* ---- matches -------------------------------------------------------------- */

/* Starts a match of info size `info` at *pos (zeroed), returns its data. */
static void *put_match(uint8_t *base, size_t *pos, const char *name, uint8_t rev, size_t info)
{
	struct xt_entry_match *m = (struct xt_entry_match *)(base + *pos);
	size_t sz = match_size(info);

	memset(m, 0, sz);
	m->u.match_size = (uint16_t)sz;
	snprintf(m->u.user.name, sizeof(m->u.user.name), "%s", name);
	m->u.user.revision = rev;
	*pos += sz;
	return m->data;
}

static void put_proto_match(uint8_t *base, size_t *pos, enum l4_proto p)
{
	struct xt_tcp *tcp;
	struct xt_udp *udp;
	struct xt_sctp_info *sctp;

	switch (p) {
	case PROTO_TCP:
		tcp = put_match(base, pos, "tcp", 0, sizeof(*tcp));
		tcp->spts[1] = tcp->dpts[1] = 0xffff;
		break;
	case PROTO_UDP:
		udp = put_match(base, pos, "udp", 0, sizeof(*udp));
		udp->spts[1] = udp->dpts[1] = 0xffff;
		break;
	case PROTO_SCTP:
		sctp = put_match(base, pos, "sctp", 0, sizeof(*sctp));
		for (int i = 0; i < XT_NUM_SCTP_FLAGS; i++)
			sctp->flag_info[i].chunktype = 0xff;
		break;
	}
}

static void set_dport(void *proto_info, enum l4_proto p, uint16_t port)
{
	struct xt_tcp *tcp = proto_info;
	struct xt_udp *udp = proto_info;
	struct xt_sctp_info *sctp = proto_info;

	switch (p) {
	case PROTO_TCP:
		tcp->dpts[0] = tcp->dpts[1] = port;
		break;
	case PROTO_UDP:
		udp->dpts[0] = udp->dpts[1] = port;
		break;
	case PROTO_SCTP:
		sctp->dpts[0] = sctp->dpts[1] = port;
		sctp->flags |= XT_SCTP_DEST_PORTS;
		break;
	}
}

static uint8_t proto_number(enum l4_proto p)
{
	return p == PROTO_TCP ? IPPROTO_TCP : p == PROTO_UDP ? IPPROTO_UDP : IPPROTO_SCTP;
}

/* The address part of the entry, independent of the family. */
struct ipview {
	uint8_t *src, *dst, *smsk, *dmsk;
	char *iniface, *outiface;
	unsigned char *iniface_mask, *outiface_mask;
	uint16_t *proto;
	uint8_t *flags, *invflags;
	uint8_t inv_src, inv_dst, inv_in, inv_out;
	size_t alen;
};

static void prefix_mask(uint8_t *mask, unsigned prefix, size_t alen)
{
	for (size_t i = 0; i < alen; i++) {
		if (prefix >= 8)
			mask[i] = 0xff;
		else
			mask[i] = (uint8_t)(0xff00 >> prefix);
		prefix = prefix >= 8 ? prefix - 8 : 0;
	}
}

static void put_addr(uint8_t *addr, uint8_t *mask, const struct cidr *c, size_t alen)
{
	prefix_mask(mask, c->prefix, alen);
	for (size_t i = 0; i < alen; i++)
		addr[i] = c->base.bytes[i] & mask[i];
}

static int put_iface(char *name, unsigned char *mask, const char *iface, char **err)
{
	size_t len = strlen(iface);

	if (len == 0 || len >= IFNAMSIZ) {
		*err = xasprintf("bad interface name \"%s\"", iface);
		return -EINVAL;
	}
	memcpy(name, iface, len);
	if (iface[len - 1] == '+')
		memset(mask, 0xff, len - 1);
	else
		memset(mask, 0xff, len + 1);
	return 0;
}

static int put_set(struct rule_encoder *enc, uint8_t *base, size_t *pos, const struct rule_item *it,
		   char **err)
{
	struct xt_set_info_match_v4 *s;
	char name[IPSET_MAXNAMELEN + 1];
	const char *sp = strchr(it->text, ' ');
	const char *f;
	uint16_t index = 0;
	int dim = 0, ret;

	if (!sp || (size_t)(sp - it->text) > IPSET_MAXNAMELEN) {
		*err = xasprintf("bad set match \"%s\"", it->text);
		return -EINVAL;
	}
	memcpy(name, it->text, (size_t)(sp - it->text));
	name[sp - it->text] = '\0';
	ret = ipset_index(enc, name, &index, err);
	if (ret < 0)
		return ret;
	s = put_match(base, pos, "set", 4, sizeof(*s));
	s->match_set.index = index;
	if (it->neg)
		s->match_set.flags |= IPSET_INV_MATCH;
	for (f = sp + 1; *f;) {
		size_t n = strcspn(f, ",");

		if (++dim > IPSET_DIM_MAX) {
			*err = xasprintf("bad set flags \"%s\"", sp + 1);
			return -EINVAL;
		}
		if (n == 3 && strncmp(f, "src", 3) == 0)
			s->match_set.flags |= (uint8_t)(1 << dim);
		else if (!(n == 3 && strncmp(f, "dst", 3) == 0)) {
			*err = xasprintf("bad set flags \"%s\"", sp + 1);
			return -EINVAL;
		}
		f += n;
		if (*f == ',')
			f++;
	}
	s->match_set.dim = (uint8_t)dim;
	return 0;
}

static int put_item(struct rule_encoder *enc, uint8_t *base, size_t *pos, struct ipview *ip,
		    const struct rule_item *it, void **proto_info, enum l4_proto *proto, char **err)
{
	struct xt_comment_info *comment;
	struct xt_addrtype_info_v1 *at;
	struct xt_conntrack_mtinfo3 *ct;
	struct xt_mark_mtinfo1 *mark;
	struct xt_statistic_info *st;
	struct xt_recent_mtinfo_v1 *rc;
	struct xt_nfacct_match_info_v1 *acct;
	unsigned long long fixed;

	switch (it->kind) {
	case RI_COMMENT:
		if (strlen(it->text) >= XT_MAX_COMMENT_LEN) {
			*err = xasprintf("comment \"%.40s...\" longer than %d", it->text,
					 XT_MAX_COMMENT_LEN - 1);
			return -EINVAL;
		}
		comment = put_match(base, pos, "comment", 0, sizeof(*comment));
		strcpy(comment->comment, it->text);
		break;
	case RI_PROTO:
		*proto_info = base + *pos + sizeof(struct xt_entry_match);
		*proto = it->proto;
		put_proto_match(base, pos, it->proto);
		/* fall through */
	case RI_PROTO_ONLY:
		*ip->proto = proto_number(it->proto);
		if (ip->alen == 16)
			*ip->flags |= IP6T_F_PROTO;
		break;
	case RI_SRC:
		if (it->net.base.family != enc->family)
			goto family;
		put_addr(ip->src, ip->smsk, &it->net, ip->alen);
		if (it->neg)
			*ip->invflags |= ip->inv_src;
		break;
	case RI_DST:
		if (it->net.base.family != enc->family)
			goto family;
		put_addr(ip->dst, ip->dmsk, &it->net, ip->alen);
		if (it->neg)
			*ip->invflags |= ip->inv_dst;
		break;
	case RI_DPORT:
		if (!*proto_info) {
			*err = xstrdup("--dport without a protocol match");
			return -EINVAL;
		}
		set_dport(*proto_info, *proto, (uint16_t)it->value);
		break;
	case RI_IN_IFACE:
		if (it->neg)
			*ip->invflags |= ip->inv_in;
		return put_iface(ip->iniface, ip->iniface_mask, it->text, err);
	case RI_OUT_IFACE:
		if (it->neg)
			*ip->invflags |= ip->inv_out;
		return put_iface(ip->outiface, ip->outiface_mask, it->text, err);
	case RI_ADDRTYPE_DST:
		at = put_match(base, pos, "addrtype", 1, sizeof(*at));
		at->dest = XT_ADDRTYPE_LOCAL;
		if (it->neg)
			at->flags |= XT_ADDRTYPE_INVERT_DEST;
		break;
	case RI_ADDRTYPE_SRC:
		at = put_match(base, pos, "addrtype", 1, sizeof(*at));
		at->source = XT_ADDRTYPE_LOCAL;
		if (it->neg)
			at->flags |= XT_ADDRTYPE_INVERT_SOURCE;
		break;
	case RI_ADDRTYPE_DST_LIMIT_IN:
		at = put_match(base, pos, "addrtype", 1, sizeof(*at));
		at->dest = XT_ADDRTYPE_LOCAL;
		at->flags = XT_ADDRTYPE_LIMIT_IFACE_IN;
		break;
	case RI_CTSTATE:
		ct = put_match(base, pos, "conntrack", 3, sizeof(*ct));
		ct->match_flags = XT_CONNTRACK_STATE;
		ct->state_mask = (uint16_t)it->value;
		if (it->neg)
			ct->invert_flags = XT_CONNTRACK_STATE;
		break;
	case RI_MARK:
		mark = put_match(base, pos, "mark", 1, sizeof(*mark));
		mark->mark = it->value;
		mark->mask = it->mask;
		mark->invert = it->neg;
		break;
	case RI_STATISTIC:
		st = put_match(base, pos, "statistic", 0, sizeof(*st));
		st->mode = XT_STATISTIC_MODE_RANDOM;
		/* Same arithmetic as iptables on the printed value; its final
		 * check also copies "every" (aliasing probability) to count. */
		fixed = (unsigned long long)it->mask << 32 | it->value;
		st->u.random.probability = (uint32_t)lround(0x80000000 * ((double)fixed / 1e10));
		st->u.nth.count = st->u.nth.every - st->u.nth.packet;
		break;
	case RI_RECENT_CHECK:
	case RI_RECENT_SET:
		if (strlen(it->text) >= XT_RECENT_NAME_LEN) {
			*err = xasprintf("recent name %s too long", it->text);
			return -EINVAL;
		}
		rc = put_match(base, pos, "recent", 1, sizeof(*rc));
		strcpy(rc->name, it->text);
		rc->side = XT_RECENT_SOURCE;
		memset(&rc->mask, 0xff, sizeof(rc->mask));
		if (it->kind == RI_RECENT_SET) {
			rc->check_set = XT_RECENT_SET;
		} else {
			rc->check_set = XT_RECENT_CHECK | XT_RECENT_REAP;
			rc->seconds = it->value;
		}
		break;
	case RI_SET:
		return put_set(enc, base, pos, it, err);
	case RI_NFACCT:
		if (strlen(it->text) >= NFACCT_NAME_MAX) {
			*err = xasprintf("nfacct name %s too long", it->text);
			return -EINVAL;
		}
		acct = put_match(base, pos, "nfacct", 1, sizeof(*acct));
		strcpy(acct->name, it->text);
		break;
	}
	return 0;
family:
	*err = xasprintf("address family mismatch in a rule of an IPv%d table",
			 enc->family == AF_INET6 ? 6 : 4);
	return -EINVAL;
}

/* ---- targets -------------------------------------------------------------- */

const char *rule_std_target_name(const struct rule *r)
{
	switch (r->target) {
	case RT_NONE:
		return "";
	case RT_JUMP:
		return r->chain;
	case RT_ACCEPT:
		return "ACCEPT";
	case RT_DROP:
		return "DROP";
	case RT_RETURN:
		return "RETURN";
	default:
		return NULL;
	}
}

static void *put_target(uint8_t *base, size_t *pos, const char *name, uint8_t rev, size_t info)
{
	struct xt_entry_target *t = (struct xt_entry_target *)(base + *pos);
	size_t sz = XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(info);

	memset(t, 0, sz);
	t->u.target_size = (uint16_t)sz;
	snprintf(t->u.user.name, sizeof(t->u.user.name), "%s", name);
	t->u.user.revision = rev;
	*pos += sz;
	return t->data;
}

static int put_rule_target(const struct rule_encoder *enc, uint8_t *base, size_t *pos,
			   const struct rule *r, char **err)
{
	bool v6 = enc->family == AF_INET6;
	const char *std = rule_std_target_name(r);
	struct nf_nat_ipv4_multi_range_compat *compat;
	struct nf_nat_range2 *r2;
	struct nf_nat_range *rng;
	struct xt_mark_tginfo2 *mk;

	if (std) {
		put_target(base, pos, std, 0, sizeof(int));
		return 0;
	}
	switch (r->target) {
	case RT_REJECT:
		if (v6)
			((struct ip6t_reject_info *)put_target(base, pos, "REJECT", 0,
				sizeof(struct ip6t_reject_info)))->with = IP6T_ICMP6_PORT_UNREACH;
		else
			((struct ipt_reject_info *)put_target(base, pos, "REJECT", 0,
				sizeof(struct ipt_reject_info)))->with = IPT_ICMP_PORT_UNREACHABLE;
		break;
	case RT_DNAT:
		if (r->to_ip.family != enc->family) {
			*err = xasprintf("DNAT address family mismatch in an IPv%d table", v6 ? 6 : 4);
			return -EINVAL;
		}
		r2 = put_target(base, pos, "DNAT", 2, sizeof(*r2));
		r2->flags = NF_NAT_RANGE_MAP_IPS;
		memcpy(&r2->min_addr, r->to_ip.bytes, v6 ? 16 : 4);
		memcpy(&r2->max_addr, r->to_ip.bytes, v6 ? 16 : 4);
		if (r->to_port) {
			r2->flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
			r2->min_proto.all = r2->max_proto.all = htons(r->to_port);
		}
		break;
	case RT_MARK_OR:
	case RT_MARK_XOR:
		mk = put_target(base, pos, "MARK", 2, sizeof(*mk));
		mk->mark = r->mark;
		mk->mask = r->target == RT_MARK_OR ? r->mark : 0;
		break;
	case RT_MASQUERADE:
	case RT_REDIRECT:
		if (v6) {
			rng = put_target(base, pos, r->target == RT_MASQUERADE ? "MASQUERADE" : "REDIRECT",
					 0, sizeof(*rng));
			if (r->target == RT_MASQUERADE) {
				rng->flags = r->random_fully ? NF_NAT_RANGE_PROTO_RANDOM_FULLY : 0;
			} else {
				rng->flags = NF_NAT_RANGE_PROTO_SPECIFIED;
				rng->min_proto.all = rng->max_proto.all = htons(r->to_port);
			}
		} else {
			compat = put_target(base, pos, r->target == RT_MASQUERADE ? "MASQUERADE" : "REDIRECT",
					    0, sizeof(*compat));
			compat->rangesize = 1;
			if (r->target == RT_MASQUERADE) {
				compat->range[0].flags = r->random_fully ? NF_NAT_RANGE_PROTO_RANDOM_FULLY : 0;
			} else {
				compat->range[0].flags = NF_NAT_RANGE_PROTO_SPECIFIED;
				compat->range[0].min.all = compat->range[0].max.all = htons(r->to_port);
			}
		}
		break;
	default:
		*err = xasprintf("unknown target kind %d", (int)r->target);
		return -EINVAL;
	}
	return 0;
}

/* ---- entries -------------------------------------------------------------- */

static void view_v4(struct ipt_entry *e, struct ipview *v)
{
	v->src = (uint8_t *)&e->ip.src;
	v->dst = (uint8_t *)&e->ip.dst;
	v->smsk = (uint8_t *)&e->ip.smsk;
	v->dmsk = (uint8_t *)&e->ip.dmsk;
	v->iniface = e->ip.iniface;
	v->outiface = e->ip.outiface;
	v->iniface_mask = e->ip.iniface_mask;
	v->outiface_mask = e->ip.outiface_mask;
	v->proto = &e->ip.proto;
	v->flags = &e->ip.flags;
	v->invflags = &e->ip.invflags;
	v->inv_src = IPT_INV_SRCIP;
	v->inv_dst = IPT_INV_DSTIP;
	v->inv_in = IPT_INV_VIA_IN;
	v->inv_out = IPT_INV_VIA_OUT;
	v->alen = 4;
}

static void view_v6(struct ip6t_entry *e, struct ipview *v)
{
	v->src = e->ipv6.src.s6_addr;
	v->dst = e->ipv6.dst.s6_addr;
	v->smsk = e->ipv6.smsk.s6_addr;
	v->dmsk = e->ipv6.dmsk.s6_addr;
	v->iniface = e->ipv6.iniface;
	v->outiface = e->ipv6.outiface;
	v->iniface_mask = e->ipv6.iniface_mask;
	v->outiface_mask = e->ipv6.outiface_mask;
	v->proto = &e->ipv6.proto;
	v->flags = &e->ipv6.flags;
	v->invflags = &e->ipv6.invflags;
	v->inv_src = IP6T_INV_SRCIP;
	v->inv_dst = IP6T_INV_DSTIP;
	v->inv_in = IP6T_INV_VIA_IN;
	v->inv_out = IP6T_INV_VIA_OUT;
	v->alen = 16;
}

int rule_encode(struct rule_encoder *enc, const struct rule *r, const void **entry, size_t *len,
		char **err)
{
	bool v6 = enc->family == AF_INET6;
	size_t head = v6 ? sizeof(struct ip6t_entry) : sizeof(struct ipt_entry);
	size_t need = rule_size(r, head), pos = head, toff;
	void *proto_info = NULL;
	enum l4_proto proto = PROTO_TCP;
	struct ipview ip;
	int ret;

	if (need > enc->cap) {
		enc->cap = need < 4096 ? 4096 : need;
		free(enc->buf);
		enc->buf = xmalloc(enc->cap);
	}
	memset(enc->buf, 0, head);
	if (v6)
		view_v6((struct ip6t_entry *)enc->buf, &ip);
	else
		view_v4((struct ipt_entry *)enc->buf, &ip);
	for (size_t i = 0; i < r->n_items; i++) {
		ret = put_item(enc, enc->buf, &pos, &ip, &r->items[i], &proto_info, &proto, err);
		if (ret < 0)
			return ret;
	}
	toff = pos;
	ret = put_rule_target(enc, enc->buf, &pos, r, err);
	if (ret < 0)
		return ret;
	if (v6) {
		struct ip6t_entry *e = (struct ip6t_entry *)enc->buf;

		e->target_offset = (uint16_t)toff;
		e->next_offset = (uint16_t)pos;
	} else {
		struct ipt_entry *e = (struct ipt_entry *)enc->buf;

		e->target_offset = (uint16_t)toff;
		e->next_offset = (uint16_t)pos;
	}
	*entry = enc->buf;
	*len = pos;
	return 0;
}

/* The kernel copies extension names only up to their NUL, so what
 * follows in the name field is whatever the reader's buffer held. */
static bool ext_equal(const uint8_t *a, const uint8_t *b, size_t size, size_t head)
{
	const struct xt_entry_match *ma = (const void *)a, *mb = (const void *)b;

	/* Matches and targets share the u.user layout: size, name, revision. */
	return strncmp(ma->u.user.name, mb->u.user.name, sizeof(ma->u.user.name)) == 0 &&
	       ma->u.user.revision == mb->u.user.revision &&
	       memcmp(a + head, b + head, size - head) == 0;
}

bool rule_entry_equal(uint8_t family, const void *mine, const void *their, const char *their_target)
{
	const uint8_t *a = mine, *b = their;
	const struct xt_entry_target *ta, *tb;
	size_t toff, next, head, iplen, pos;

	if (family == AF_INET6) {
		const struct ip6t_entry *ea = mine, *eb = their;

		if (ea->target_offset != eb->target_offset || ea->next_offset != eb->next_offset ||
		    ea->nfcache != eb->nfcache)
			return false;
		toff = ea->target_offset;
		next = ea->next_offset;
		head = sizeof(*ea);
		iplen = sizeof(ea->ipv6);
	} else {
		const struct ipt_entry *ea = mine, *eb = their;

		if (ea->target_offset != eb->target_offset || ea->next_offset != eb->next_offset ||
		    ea->nfcache != eb->nfcache)
			return false;
		toff = ea->target_offset;
		next = ea->next_offset;
		head = sizeof(*ea);
		iplen = sizeof(ea->ip);
	}
	/* ip/ipv6 are the first member of both entry structs. */
	if (memcmp(a, b, iplen) != 0)
		return false;
	for (pos = head; pos < toff;) {
		const struct xt_entry_match *ma = (const void *)(a + pos), *mb = (const void *)(b + pos);
		size_t sz = ma->u.match_size;

		if (sz != mb->u.match_size || sz < sizeof(*ma) || pos + sz > toff ||
		    !ext_equal(a + pos, b + pos, sz, sizeof(*ma)))
			return false;
		pos += sz;
	}
	ta = (const struct xt_entry_target *)(a + toff);
	tb = (const struct xt_entry_target *)(b + toff);
	if (ta->u.target_size != tb->u.target_size || ta->u.target_size != next - toff)
		return false;
	if (tb->u.user.name[0] == '\0') {
		/* Standard target in kernel form: compare what it resolves to. */
		return their_target && strcmp(ta->u.user.name, their_target) == 0;
	}
	return ext_equal((const uint8_t *)ta, (const uint8_t *)tb, next - toff, sizeof(*ta));
}
