/* IPVS over generic netlink (family "IPVS", <linux/ip_vs.h>) with libnl-3.
 * Message construction and parsing are separate from sending so that they
 * can be tested without a kernel. Adds that find the object present and
 * deletes that find it missing count as success. */
#ifndef KP_IPVS_NETLINK_H
#define KP_IPVS_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../src/cidr.h"

struct nl_msg;
struct nlattr;

#define IPVS_SCHED_MAX 16          /* IP_VS_SCHEDNAME_MAXLEN */

/* A virtual server, identified by (family, protocol, addr, port). */
struct ipvs_service {
	uint16_t af;               /* AF_INET / AF_INET6 */
	uint16_t protocol;         /* IPPROTO_TCP / UDP / SCTP */
	struct addr addr;
	uint16_t port;             /* host byte order; big endian on the wire */
	char sched[IPVS_SCHED_MAX];
	uint32_t flags;            /* IP_VS_SVC_F_*, e.g. PERSISTENT */
	uint32_t timeout;          /* persistence timeout, seconds */
	uint32_t netmask;          /* persistence mask: 0xffffffff (v4) or 128 (v6) */
};

/* A real server of a virtual server. */
struct ipvs_dest {
	struct addr addr;
	uint16_t port;             /* host byte order */
	uint32_t fwd;              /* IP_VS_CONN_F_MASQ (0) etc. */
	int32_t weight;
	uint32_t u_thresh, l_thresh;
	uint32_t active_conns, inact_conns, persist_conns; /* read back only */
};

/* An open generic-netlink socket with the resolved IPVS family id. */
struct ipvs_nl;

/* Opens a socket and resolves the "IPVS" family. -ENOENT when the kernel
 * has no IPVS (module ip_vs not loaded/built), other -errno on failure. */
int ipvs_nl_open(struct ipvs_nl **out);
void ipvs_nl_close(struct ipvs_nl *nl);
/* The resolved generic netlink family id. */
int ipvs_nl_family(const struct ipvs_nl *nl);

/* ---- message construction (no kernel needed) ---- */

/* A request for cmd (IPVS_CMD_NEW/SET/DEL/GET_SERVICE) carrying s as a
 * nested IPVS_CMD_ATTR_SERVICE. For NEW/SET the full entry (scheduler,
 * flags with mask 0xffffffff, timeout, netmask) is included; for DEL/GET
 * only the identity. nlflags are added to NLM_F_REQUEST (e.g. NLM_F_ACK).
 * Caller frees with nlmsg_free. NULL on allocation failure. */
struct nl_msg *ipvs_msg_service(int family, uint8_t cmd, const struct ipvs_service *s, int nlflags);
/* A request for cmd (IPVS_CMD_NEW/SET/DEL/GET_DEST) with the service
 * identity and, unless d is NULL (GET dump), the destination (full entry
 * for NEW/SET). Caller frees. */
struct nl_msg *ipvs_msg_dest(int family, uint8_t cmd, const struct ipvs_service *s,
			     const struct ipvs_dest *d, int nlflags);
/* IPVS_CMD_SET_CONFIG with the timeouts that are non-zero. Caller frees. */
struct nl_msg *ipvs_msg_config(int family, uint32_t tcp, uint32_t tcpfin, uint32_t udp);
/* A dump request for all services (IPVS_CMD_GET_SERVICE, NLM_F_DUMP). */
struct nl_msg *ipvs_msg_dump_services(int family);

/* ---- parsing ---- */

/* Parses a nested IPVS_CMD_ATTR_SERVICE. 0 or -EINVAL. */
int ipvs_parse_service(struct nlattr *nested, struct ipvs_service *out);
/* Parses a nested IPVS_CMD_ATTR_DEST; af is the service's family, used
 * when the kernel omits IPVS_DEST_ATTR_ADDR_FAMILY. 0 or -EINVAL. */
int ipvs_parse_dest(struct nlattr *nested, uint16_t af, struct ipvs_dest *out);
/* Finds the nested service (or dest) attribute of a whole generic netlink
 * message and parses it. 0, -ENOENT when absent, -EINVAL. */
int ipvs_msg_parse_service(struct nl_msg *msg, struct ipvs_service *out);
int ipvs_msg_parse_dest(struct nl_msg *msg, uint16_t af, struct ipvs_dest *out);

/* ---- operations (talk to the kernel) ---- */

/* Adds s; an existing one (EEXIST) is success. 0 or -errno. */
int ipvs_add_service(struct ipvs_nl *nl, const struct ipvs_service *s);
/* Changes scheduler/flags/timeout of s. 0 or -errno. */
int ipvs_update_service(struct ipvs_nl *nl, const struct ipvs_service *s);
/* Deletes s; a missing one (ESRCH/ENOENT) is success. */
int ipvs_del_service(struct ipvs_nl *nl, const struct ipvs_service *s);
int ipvs_add_dest(struct ipvs_nl *nl, const struct ipvs_service *s, const struct ipvs_dest *d);
int ipvs_update_dest(struct ipvs_nl *nl, const struct ipvs_service *s, const struct ipvs_dest *d);
int ipvs_del_dest(struct ipvs_nl *nl, const struct ipvs_service *s, const struct ipvs_dest *d);
/* Reads every virtual server into a malloc'd array (*out, caller frees). */
int ipvs_list_services(struct ipvs_nl *nl, struct ipvs_service **out, size_t *n);
/* Reads the real servers of s into a malloc'd array (caller frees). */
int ipvs_list_dests(struct ipvs_nl *nl, const struct ipvs_service *s, struct ipvs_dest **out, size_t *n);
/* Sets the TCP / TCP FIN / UDP timeouts (seconds; 0 = leave unchanged). */
int ipvs_set_timeouts(struct ipvs_nl *nl, uint32_t tcp, uint32_t tcpfin, uint32_t udp);

/* Batch mode: between begin and end, the add/update/del calls above only
 * queue their request (no ACK) and return 0; the queue goes out in a few
 * large sendmsg calls. ipvs_batch_end sends a final request with ACK and
 * collects errors up to it: 0, or the first error that is not harmless
 * (EEXIST on add, ENOENT/ESRCH on delete). No list calls while batching. */
void ipvs_batch_begin(struct ipvs_nl *nl);
int ipvs_batch_end(struct ipvs_nl *nl);

/* Number of requests sent since open (for stats and tests). */
unsigned long ipvs_nl_requests(const struct ipvs_nl *nl);

/* Same identity (af, protocol, addr, port). */
bool ipvs_service_same(const struct ipvs_service *a, const struct ipvs_service *b);
/* "TCP  10.0.0.1:80" style key used for sorting and logs ("[v6]:port" for
 * IPv6); buf must hold 64 bytes. Returns buf. */
const char *ipvs_service_str(const struct ipvs_service *s, char *buf);

#endif
