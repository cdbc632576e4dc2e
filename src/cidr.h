/* IPv4/IPv6 addresses and prefixes: parsing, printing, containment and
 * indexing (the allocator picks "the n-th address of a range"). */
#ifndef KP_CIDR_H
#define KP_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IP address; v4 uses bytes[0..3]. family is AF_INET or AF_INET6
 * (0 = unset). */
struct addr {
	uint8_t family;
	uint8_t bytes[16];
};

struct cidr {
	struct addr base;    /* masked: host bits are zero */
	uint8_t prefix;      /* 0..32 or 0..128 */
};

/* Longest printed address including NUL. */
#define ADDR_STRLEN 46
#define CIDR_STRLEN 50

/* Parses a dotted quad or an IPv6 address (no zone, no prefix). 0 or -EINVAL. */
int addr_parse(const char *s, struct addr *out);
/* Writes the canonical text form into buf (ADDR_STRLEN bytes); returns buf. */
const char *addr_str(const struct addr *a, char *buf);
bool addr_equal(const struct addr *a, const struct addr *b);
int addr_cmp(const struct addr *a, const struct addr *b);
/* Two address lists are equal: same length, same addresses in order. */
bool addr_list_equal(const struct addr *a, size_t na, const struct addr *b, size_t nb);
/* Address length in bytes: 4, 16 or 0. */
size_t addr_len(const struct addr *a);
bool addr_is_unspecified(const struct addr *a);
/* Copies the address of an AF_INET/AF_INET6 socket address. 0 or
 * -EAFNOSUPPORT for any other family (or a NULL sa). */
int addr_from_sockaddr(const struct sockaddr *sa, struct addr *out);

/* Parses "a.b.c.d/n" or "x::/n". Host bits set in the input are an error
 * (as Kubernetes' validation says), unless lenient is true, in which case
 * they are cleared. 0 or -EINVAL. */
int cidr_parse(const char *s, bool lenient, struct cidr *out);
const char *cidr_str(const struct cidr *c, char *buf);
bool cidr_contains(const struct cidr *c, const struct addr *a);
/* Number of addresses in the prefix, saturated at UINT64_MAX. */
uint64_t cidr_size(const struct cidr *c);
/* The index-th address of the prefix (0 = network address). -ERANGE if the
 * index is outside the prefix. */
int cidr_nth(const struct cidr *c, uint64_t index, struct addr *out);
/* Index of a within c (inverse of cidr_nth); -ERANGE if a is outside c. */
int cidr_index(const struct cidr *c, const struct addr *a, uint64_t *index);

/* Parses a comma-separated list of CIDRs (at most max entries). 0 or -EINVAL;
 * *bad receives the offending element (malloc'd) on error. */
int cidr_list_parse(const char *s, bool lenient, struct cidr *out, size_t max, size_t *n, char **bad);

#endif
