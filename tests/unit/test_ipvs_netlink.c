/* IPVS generic netlink message construction and parsing, no kernel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/ip_vs.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "modes/ipvs/netlink.h"

#define FAM 0x1b   /* any genl family id */

static void mk_service(struct ipvs_service *s, const char *ip, uint16_t port)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(addr_parse(ip, &s->addr), 0);
	s->af = s->addr.family;
	s->protocol = IPPROTO_TCP;
	s->port = port;
	strcpy(s->sched, "wrr");
	s->netmask = s->af == AF_INET ? 0xffffffff : 128;
}

/* Returns the attributes of the nested service attribute of msg. */
static void nested(struct nl_msg *msg, int cmd_attr, struct nlattr **tb, int max)
{
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1];

	assert_int_equal(genlmsg_parse(nlmsg_hdr(msg), 0, top, IPVS_CMD_ATTR_MAX, NULL), 0);
	assert_non_null(top[cmd_attr]);
	assert_int_equal(nla_parse_nested(tb, max, top[cmd_attr], NULL), 0);
}

static void test_new_service_layout(void **state)
{
	struct ipvs_service s;
	struct nlattr *tb[IPVS_SVC_ATTR_MAX + 1];
	struct nl_msg *msg;
	struct genlmsghdr *gh;
	const uint8_t *p;
	struct ip_vs_flags fl;

	mk_service(&s, "10.96.0.10", 8080);
	s.flags = IP_VS_SVC_F_PERSISTENT;
	s.timeout = 10800;
	msg = ipvs_msg_service(FAM, IPVS_CMD_NEW_SERVICE, &s, NLM_F_ACK);
	assert_non_null(msg);
	assert_int_equal(nlmsg_hdr(msg)->nlmsg_type, FAM);
	assert_true(nlmsg_hdr(msg)->nlmsg_flags & NLM_F_ACK);
	gh = nlmsg_data(nlmsg_hdr(msg));
	assert_int_equal(gh->cmd, IPVS_CMD_NEW_SERVICE);
	assert_int_equal(gh->version, IPVS_GENL_VERSION);

	nested(msg, IPVS_CMD_ATTR_SERVICE, tb, IPVS_SVC_ATTR_MAX);
	assert_int_equal(nla_get_u16(tb[IPVS_SVC_ATTR_AF]), AF_INET);
	assert_int_equal(nla_get_u16(tb[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_TCP);
	/* the address is a 16-byte union with the IPv4 bytes first */
	assert_int_equal(nla_len(tb[IPVS_SVC_ATTR_ADDR]), 16);
	p = nla_data(tb[IPVS_SVC_ATTR_ADDR]);
	assert_int_equal(p[0], 10);
	assert_int_equal(p[1], 96);
	assert_int_equal(p[3], 10);
	assert_int_equal(p[4], 0);
	/* the port is big endian on the wire: 8080 = 0x1f90 */
	assert_int_equal(nla_len(tb[IPVS_SVC_ATTR_PORT]), 2);
	p = nla_data(tb[IPVS_SVC_ATTR_PORT]);
	assert_int_equal(p[0], 0x1f);
	assert_int_equal(p[1], 0x90);
	assert_string_equal(nla_get_string(tb[IPVS_SVC_ATTR_SCHED_NAME]), "wrr");
	assert_int_equal(nla_len(tb[IPVS_SVC_ATTR_FLAGS]), sizeof(fl));
	memcpy(&fl, nla_data(tb[IPVS_SVC_ATTR_FLAGS]), sizeof(fl));
	assert_int_equal(fl.flags, IP_VS_SVC_F_PERSISTENT);
	assert_int_equal(fl.mask, 0xffffffff);
	assert_int_equal(nla_get_u32(tb[IPVS_SVC_ATTR_TIMEOUT]), 10800);
	assert_int_equal(nla_get_u32(tb[IPVS_SVC_ATTR_NETMASK]), 0xffffffff);
	assert_null(tb[IPVS_SVC_ATTR_FWMARK]);
	nlmsg_free(msg);
}

static void test_del_service_identity_only(void **state)
{
	struct ipvs_service s;
	struct nlattr *tb[IPVS_SVC_ATTR_MAX + 1];
	struct nl_msg *msg;

	mk_service(&s, "fd00::5", 443);
	s.protocol = IPPROTO_UDP;
	msg = ipvs_msg_service(FAM, IPVS_CMD_DEL_SERVICE, &s, 0);
	assert_non_null(msg);
	nested(msg, IPVS_CMD_ATTR_SERVICE, tb, IPVS_SVC_ATTR_MAX);
	assert_int_equal(nla_get_u16(tb[IPVS_SVC_ATTR_AF]), AF_INET6);
	assert_int_equal(nla_get_u16(tb[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_UDP);
	assert_memory_equal(nla_data(tb[IPVS_SVC_ATTR_ADDR]), s.addr.bytes, 16);
	assert_int_equal(ntohs(nla_get_u16(tb[IPVS_SVC_ATTR_PORT])), 443);
	assert_null(tb[IPVS_SVC_ATTR_SCHED_NAME]);
	assert_null(tb[IPVS_SVC_ATTR_FLAGS]);
	assert_null(tb[IPVS_SVC_ATTR_TIMEOUT]);
	nlmsg_free(msg);
}

static void test_service_roundtrip(void **state)
{
	struct ipvs_service s, back;
	struct nl_msg *msg;

	mk_service(&s, "172.30.0.44", 80);
	s.flags = IP_VS_SVC_F_PERSISTENT;
	s.timeout = 60;
	msg = ipvs_msg_service(FAM, IPVS_CMD_SET_SERVICE, &s, 0);
	assert_int_equal(ipvs_msg_parse_service(msg, &back), 0);
	assert_true(ipvs_service_same(&s, &back));
	assert_string_equal(back.sched, "wrr");
	assert_int_equal(back.flags, IP_VS_SVC_F_PERSISTENT);
	assert_int_equal(back.timeout, 60);
	assert_int_equal(back.netmask, 0xffffffff);
	assert_int_equal(back.port, 80);
	/* a message without a dest attribute has no dest to parse */
	struct ipvs_dest d;
	assert_int_equal(ipvs_msg_parse_dest(msg, AF_INET, &d), -ENOENT);
	nlmsg_free(msg);
}

static void test_new_dest_layout(void **state)
{
	struct ipvs_service s;
	struct ipvs_dest d = { .port = 9376, .weight = 1, .fwd = IP_VS_CONN_F_MASQ };
	struct nlattr *tb[IPVS_DEST_ATTR_MAX + 1];
	struct nlattr *st[IPVS_SVC_ATTR_MAX + 1];
	struct nl_msg *msg;
	const uint8_t *p;

	mk_service(&s, "10.96.0.10", 53);
	s.protocol = IPPROTO_UDP;
	assert_int_equal(addr_parse("10.244.1.7", &d.addr), 0);
	msg = ipvs_msg_dest(FAM, IPVS_CMD_NEW_DEST, &s, &d, 0);
	assert_non_null(msg);
	assert_int_equal(((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd, IPVS_CMD_NEW_DEST);
	/* service identity only */
	nested(msg, IPVS_CMD_ATTR_SERVICE, st, IPVS_SVC_ATTR_MAX);
	assert_int_equal(ntohs(nla_get_u16(st[IPVS_SVC_ATTR_PORT])), 53);
	assert_null(st[IPVS_SVC_ATTR_SCHED_NAME]);
	/* the dest, full entry */
	nested(msg, IPVS_CMD_ATTR_DEST, tb, IPVS_DEST_ATTR_MAX);
	p = nla_data(tb[IPVS_DEST_ATTR_PORT]);
	assert_int_equal(p[0], 9376 >> 8);
	assert_int_equal(p[1], 9376 & 0xff);
	p = nla_data(tb[IPVS_DEST_ATTR_ADDR]);
	assert_int_equal(p[0], 10);
	assert_int_equal(p[1], 244);
	assert_int_equal(p[2], 1);
	assert_int_equal(p[3], 7);
	assert_int_equal(nla_get_u32(tb[IPVS_DEST_ATTR_FWD_METHOD]), IP_VS_CONN_F_MASQ);
	assert_int_equal(nla_get_u32(tb[IPVS_DEST_ATTR_WEIGHT]), 1);
	assert_non_null(tb[IPVS_DEST_ATTR_U_THRESH]);
	assert_non_null(tb[IPVS_DEST_ATTR_L_THRESH]);
	assert_int_equal(nla_get_u16(tb[IPVS_DEST_ATTR_ADDR_FAMILY]), AF_INET);
	nlmsg_free(msg);

	/* delete: identity of the dest only */
	msg = ipvs_msg_dest(FAM, IPVS_CMD_DEL_DEST, &s, &d, 0);
	nested(msg, IPVS_CMD_ATTR_DEST, tb, IPVS_DEST_ATTR_MAX);
	assert_null(tb[IPVS_DEST_ATTR_WEIGHT]);
	assert_null(tb[IPVS_DEST_ATTR_FWD_METHOD]);
	assert_non_null(tb[IPVS_DEST_ATTR_PORT]);
	nlmsg_free(msg);
}

static void test_get_dest_dump(void **state)
{
	struct ipvs_service s;
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1];
	struct nl_msg *msg;

	mk_service(&s, "10.96.0.1", 443);
	msg = ipvs_msg_dest(FAM, IPVS_CMD_GET_DEST, &s, NULL, NLM_F_DUMP);
	assert_true((nlmsg_hdr(msg)->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
	assert_int_equal(genlmsg_parse(nlmsg_hdr(msg), 0, top, IPVS_CMD_ATTR_MAX, NULL), 0);
	assert_non_null(top[IPVS_CMD_ATTR_SERVICE]);
	assert_null(top[IPVS_CMD_ATTR_DEST]);
	nlmsg_free(msg);

	msg = ipvs_msg_dump_services(FAM);
	assert_true((nlmsg_hdr(msg)->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
	assert_int_equal(((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd, IPVS_CMD_GET_SERVICE);
	nlmsg_free(msg);
}

/* Builds a reply the way the kernel does for a dest dump and parses it. */
static void test_parse_kernel_dest(void **state)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nlattr *nest;
	uint8_t a16[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9 };
	struct ipvs_dest d;
	char buf[ADDR_STRLEN];

	genlmsg_put(msg, 0, 0, FAM, 0, 0, IPVS_CMD_NEW_DEST, IPVS_GENL_VERSION);
	nest = nla_nest_start(msg, IPVS_CMD_ATTR_DEST);
	nla_put(msg, IPVS_DEST_ATTR_ADDR, 16, a16);
	nla_put_u16(msg, IPVS_DEST_ATTR_PORT, htons(8443));
	nla_put_u32(msg, IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_MASQ);
	nla_put_u32(msg, IPVS_DEST_ATTR_WEIGHT, 0);
	nla_put_u32(msg, IPVS_DEST_ATTR_ACTIVE_CONNS, 3);
	nla_put_u32(msg, IPVS_DEST_ATTR_INACT_CONNS, 5);
	nla_put_u32(msg, IPVS_DEST_ATTR_PERSIST_CONNS, 1);
	nla_nest_end(msg, nest);

	/* family comes from the service when ADDR_FAMILY is absent */
	assert_int_equal(ipvs_msg_parse_dest(msg, AF_INET6, &d), 0);
	assert_string_equal(addr_str(&d.addr, buf), "fd00::9");
	assert_int_equal(d.port, 8443);
	assert_int_equal(d.weight, 0);
	assert_int_equal(d.active_conns, 3);
	assert_int_equal(d.inact_conns, 5);
	assert_int_equal(d.persist_conns, 1);
	/* as IPv4 the first four bytes are taken */
	assert_int_equal(ipvs_msg_parse_dest(msg, AF_INET, &d), 0);
	assert_string_equal(addr_str(&d.addr, buf), "253.0.0.0");
	nlmsg_free(msg);
}

static void test_parse_rejects_incomplete(void **state)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nlattr *nest;
	struct ipvs_service s;

	genlmsg_put(msg, 0, 0, FAM, 0, 0, IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION);
	nest = nla_nest_start(msg, IPVS_CMD_ATTR_SERVICE);
	nla_put_u16(msg, IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP);   /* no AF */
	nla_put_u16(msg, IPVS_SVC_ATTR_PORT, htons(80));
	nla_nest_end(msg, nest);
	assert_int_equal(ipvs_msg_parse_service(msg, &s), -EINVAL);
	nlmsg_free(msg);

	/* AF present, but no address */
	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, FAM, 0, 0, IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION);
	nest = nla_nest_start(msg, IPVS_CMD_ATTR_SERVICE);
	nla_put_u16(msg, IPVS_SVC_ATTR_AF, AF_INET);
	nla_put_u16(msg, IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP);
	nla_put_u16(msg, IPVS_SVC_ATTR_PORT, htons(80));
	nla_nest_end(msg, nest);
	assert_int_equal(ipvs_msg_parse_service(msg, &s), -EINVAL);
	nlmsg_free(msg);

	/* an fwmark service parses but has no address (never ours) */
	msg = nlmsg_alloc();
	genlmsg_put(msg, 0, 0, FAM, 0, 0, IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION);
	nest = nla_nest_start(msg, IPVS_CMD_ATTR_SERVICE);
	nla_put_u16(msg, IPVS_SVC_ATTR_AF, AF_INET);
	nla_put_u32(msg, IPVS_SVC_ATTR_FWMARK, 7);
	nla_nest_end(msg, nest);
	assert_int_equal(ipvs_msg_parse_service(msg, &s), 0);
	assert_int_equal(s.addr.family, 0);
	nlmsg_free(msg);
}

static void test_config(void **state)
{
	struct nlattr *top[IPVS_CMD_ATTR_MAX + 1];
	struct nl_msg *msg = ipvs_msg_config(FAM, 900, 0, 300);

	assert_int_equal(((struct genlmsghdr *)nlmsg_data(nlmsg_hdr(msg)))->cmd, IPVS_CMD_SET_CONFIG);
	assert_int_equal(genlmsg_parse(nlmsg_hdr(msg), 0, top, IPVS_CMD_ATTR_MAX, NULL), 0);
	assert_int_equal(nla_get_u32(top[IPVS_CMD_ATTR_TIMEOUT_TCP]), 900);
	assert_null(top[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN]);
	assert_int_equal(nla_get_u32(top[IPVS_CMD_ATTR_TIMEOUT_UDP]), 300);
	nlmsg_free(msg);
}

static void test_service_str(void **state)
{
	struct ipvs_service s;
	char buf[64];

	mk_service(&s, "10.0.0.1", 80);
	assert_string_equal(ipvs_service_str(&s, buf), "TCP  10.0.0.1:80");
	mk_service(&s, "fd00::1", 53);
	s.protocol = IPPROTO_UDP;
	assert_string_equal(ipvs_service_str(&s, buf), "UDP  [fd00::1]:53");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_service_layout),
		cmocka_unit_test(test_del_service_identity_only),
		cmocka_unit_test(test_service_roundtrip),
		cmocka_unit_test(test_new_dest_layout),
		cmocka_unit_test(test_get_dest_dump),
		cmocka_unit_test(test_parse_kernel_dest),
		cmocka_unit_test(test_parse_rejects_incomplete),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_service_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
