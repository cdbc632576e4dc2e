/* A typed model of the iptables rules kube-proxy writes. A rule is an
 * ordered list of items, built with the rule_* calls below in exactly the
 * order upstream kube-proxy writes its iptables-restore arguments, e.g.
 *
 *   -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
 *
 * is  rule_comment(r, "ns4/svc4:p80 cluster IP"); rule_proto(r, PROTO_TCP);
 *     rule_dst(r, &ip, 32, false); rule_dport(r, 80); rule_jump(r, "KUBE-SVC-4SW47YFZTEDKD3PK");
 *
 * The same rule renders as iptables-restore text (rule_render, --dry-run)
 * and encodes into a binary ipt_entry/ip6t_entry for libiptc (writer.h). */
#ifndef KP_IPTC_RULE_H
#define KP_IPTC_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../src/cidr.h"
#include "../../src/model.h"
#include "../../src/util.h"

#define CHAIN_NAME_MAX 29   /* XT_EXTENSION_MAXNAMELEN incl. NUL */

enum rule_item_kind {
	RI_COMMENT,      /* -m comment --comment "text" (quoted when it has spaces) */
	RI_PROTO,        /* -m tcp -p tcp  (sctp: -m sctp -p sctp; udp likewise) */
	RI_PROTO_ONLY,   /* -p tcp  (no protocol match module; used before -m multiport/-m set) */
	RI_SRC,          /* [!] -s a.b.c.d/n  (/32 and /128 printed without prefix) */
	RI_DST,          /* [!] -d ... */
	RI_DPORT,        /* --dport N  (needs an earlier RI_PROTO) */
	RI_IN_IFACE,     /* [!] -i name  ("name+" is a prefix match) */
	RI_OUT_IFACE,    /* [!] -o name */
	RI_ADDRTYPE_DST, /* -m addrtype [!] --dst-type LOCAL */
	RI_ADDRTYPE_SRC, /* -m addrtype [!] --src-type LOCAL */
	RI_ADDRTYPE_DST_LIMIT_IN, /* -m addrtype --dst-type LOCAL --limit-iface-in */
	RI_CTSTATE,      /* -m conntrack [!] --ctstate NEW|INVALID|RELATED,ESTABLISHED[,DNAT] (mask in value) */
	RI_MARK,         /* -m mark [!] --mark value/mask */
	RI_STATISTIC,    /* -m statistic --mode random --probability 0.5000000000 */
	RI_RECENT_CHECK, /* -m recent --name NAME --rcheck --seconds N --reap */
	RI_RECENT_SET,   /* -m recent --name NAME --set */
	RI_SET,          /* -m set [!] --match-set NAME dst|dst,dst|src,dst|dst,dst,src (ipvs mode) */
	RI_NFACCT,       /* -m nfacct --nfacct-name NAME (count into an nfnetlink_acct object) */
};

/* Conntrack state bits for RI_CTSTATE (same values as XT_CONNTRACK_STATE_BIT). */
#define CTSTATE_INVALID     (1u << 0)
#define CTSTATE_ESTABLISHED (1u << 1)
#define CTSTATE_RELATED     (1u << 2)
#define CTSTATE_NEW         (1u << 3)
#define CTSTATE_SNAT        (1u << 6)   /* XT_CONNTRACK_STATE_SNAT */
#define CTSTATE_DNAT        (1u << 7)   /* XT_CONNTRACK_STATE_DNAT */

enum rule_target_kind {
	RT_NONE,
	RT_JUMP,         /* -j CHAIN (one of ours) */
	RT_ACCEPT,
	RT_DROP,
	RT_RETURN,
	RT_REJECT,       /* -j REJECT (icmp-port-unreachable; icmp6-port-unreachable for v6) */
	RT_DNAT,         /* -j DNAT --to-destination ip:port ([ip6]:port) */
	RT_MARK_OR,      /* -j MARK --or-mark 0x4000 */
	RT_MARK_XOR,     /* -j MARK --xor-mark 0x4000 */
	RT_MASQUERADE,   /* -j MASQUERADE [--random-fully] */
	RT_REDIRECT,     /* -j REDIRECT --to-ports N (userspace portals) */
};

struct rule_item {
	enum rule_item_kind kind;
	bool neg;
	uint32_t value;          /* port, state bits, mark, seconds, probability * 1e10 (low 32 bits) */
	uint32_t mask;           /* mark mask; RI_STATISTIC: high 32 bits of probability * 1e10 */
	struct cidr net;         /* RI_SRC / RI_DST */
	enum l4_proto proto;     /* RI_PROTO / RI_PROTO_ONLY */
	char *text;              /* comment, iface, recent name, set name + flags ("NAME dst,dst") */
};

struct rule {
	struct rule_item *items;
	size_t n_items, cap_items;
	enum rule_target_kind target;
	char chain[CHAIN_NAME_MAX];  /* RT_JUMP */
	struct addr to_ip;           /* RT_DNAT */
	uint16_t to_port;            /* RT_DNAT, RT_REDIRECT */
	uint32_t mark;               /* RT_MARK_* */
	bool random_fully;           /* RT_MASQUERADE */
};

/* A chain we own and its complete content. */
struct chain {
	char name[CHAIN_NAME_MAX];
	bool keep;                   /* partial sync: unchanged, leave the kernel's copy */
	struct rule *rules;
	size_t n_rules, cap_rules;
};

/* Everything we want in one table (nat or filter or mangle) of one family.
 * jumps are rules to insert at the top of built-in chains (PREROUTING,
 * OUTPUT, ...) if missing; "ours" means any KUBE-* chain. */
struct table_want {
	const char *table;           /* "nat", "filter", "mangle" */
	uint8_t family;              /* AF_INET / AF_INET6 */
	struct chain *chains;        /* our chains, in the order they were added */
	size_t n_chains, cap_chains;
	struct chain *builtin_jumps; /* name = built-in chain, rules = jumps into ours */
	size_t n_builtin, cap_builtin;
	struct chain_index *index;   /* private to rule.c: name -> chain lookup */
};

void table_want_init(struct table_want *t, const char *table, uint8_t family);
void table_want_free(struct table_want *t);
/* Room for n_chains chains without growing the array or the index (a
 * hint: more still fit). */
void table_want_reserve(struct table_want *t, size_t n_chains);
/* Adds (or returns the existing) chain of ours. The pointer is valid until
 * the next table_chain call that adds a chain (the array may move). */
struct chain *table_chain(struct table_want *t, const char *name);
/* The chain of ours called name, or NULL (hash lookup, no insertion). */
struct chain *table_find_chain(const struct table_want *t, const char *name);
/* Adds a jump rule for built-in chain `builtin` (e.g. "PREROUTING"). */
struct rule *table_builtin_rule(struct table_want *t, const char *builtin);
/* Appends an empty rule to c and returns it. */
struct rule *chain_append(struct chain *c);

void rule_comment(struct rule *r, const char *text);
void rule_proto(struct rule *r, enum l4_proto p);
void rule_proto_only(struct rule *r, enum l4_proto p);
void rule_src(struct rule *r, const struct cidr *net, bool neg);
void rule_dst(struct rule *r, const struct cidr *net, bool neg);
/* Host address shortcut for rule_src/rule_dst (/32 or /128). */
void rule_src_ip(struct rule *r, const struct addr *ip, bool neg);
void rule_dst_ip(struct rule *r, const struct addr *ip, bool neg);
void rule_dport(struct rule *r, uint16_t port);
void rule_in_iface(struct rule *r, const char *iface, bool neg);
void rule_out_iface(struct rule *r, const char *iface, bool neg);
void rule_addrtype_dst_local(struct rule *r, bool neg);
void rule_addrtype_src_local(struct rule *r, bool neg);
void rule_addrtype_dst_local_limit_in(struct rule *r);
void rule_ctstate(struct rule *r, uint32_t states, bool neg);
void rule_mark(struct rule *r, uint32_t value, uint32_t mask, bool neg);
/* probability in [0,1]; printed %0.10f like upstream. */
void rule_statistic(struct rule *r, double probability);
/* The digits "%0.10f" prints for p (clamped to [0,1]) as an integer:
 * 1.0 -> 10000000000, 1/3 -> 3333333333. */
unsigned long long rule_probability_fixed(double p);
void rule_recent_check(struct rule *r, const char *name, uint32_t seconds);
void rule_recent_set(struct rule *r, const char *name);
void rule_set(struct rule *r, const char *set_name, const char *flags, bool neg);
/* The accounting object must exist when the rule is committed. */
void rule_nfacct(struct rule *r, const char *name);

void rule_jump(struct rule *r, const char *chain);
void rule_target(struct rule *r, enum rule_target_kind t);
void rule_dnat(struct rule *r, const struct addr *ip, uint16_t port);
void rule_mark_or(struct rule *r, uint32_t mark);
void rule_mark_xor(struct rule *r, uint32_t mark);
void rule_masquerade(struct rule *r, bool random_fully);
void rule_redirect(struct rule *r, uint16_t port);

/* Appends "-A CHAIN <args>\n" in upstream's argument order to sb. */
void rule_render(const struct rule *r, const char *chain, struct strbuf *sb);
/* Renders a whole table in iptables-restore format: "*nat", ":CHAIN - [0:0]"
 * lines for our chains, the built-in jumps (as -A lines), our rules,
 * "COMMIT". */
void table_render(const struct table_want *t, struct strbuf *sb);

void rule_free(struct rule *r);
void chain_free(struct chain *c);

#endif
