/* Upstream kube-proxy's chain names: a 16-character base32 (RFC 4648,
 * upper case) prefix of sha256(servicePortName + protocol [+ endpoint]).
 *   "ns1/svc1:p80" + "tcp"                 -> KUBE-SVC-XPGD46QRK7WJZT7O
 *   "ns1/svc1:p80" + "tcp" + "10.180.0.1:80" -> KUBE-SEP-SXIVWICOYRO3J4NJ */
#ifndef KP_CHAIN_NAME_H
#define KP_CHAIN_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "../../src/cidr.h"
#include "../../src/model.h"

#define CHAIN_HASH_LEN 16
/* "[v6addr]:65535" plus NUL. */
#define ENDPOINT_STRLEN (ADDR_STRLEN + 8)

#define CHAIN_PREFIX_SVC "KUBE-SVC-"
#define CHAIN_PREFIX_SVL "KUBE-SVL-"
#define CHAIN_PREFIX_EXT "KUBE-EXT-"
#define CHAIN_PREFIX_FW  "KUBE-FW-"
#define CHAIN_PREFIX_SEP "KUBE-SEP-"

/* Standard base32 of n bytes with '=' padding into out, which must hold
 * ((n + 4) / 5) * 8 + 1 bytes. Returns the number of characters written. */
size_t base32_encode(const uint8_t *in, size_t n, char *out);

/* The 16-character hash of the concatenation a + b + c (c may be NULL),
 * NUL terminated in out. */
void chain_hash(const char *a, const char *b, const char *c, char out[CHAIN_HASH_LEN + 1]);

/* prefix + hash (from chain_hash) into out (at least 29 bytes). */
void chain_name_join(char *out, const char *prefix, const char hash[CHAIN_HASH_LEN + 1]);

/* Upstream's endpoint string: "ip:port", or "[ip]:port" for IPv6. */
const char *endpoint_string(const struct addr *ip, uint16_t port, char buf[ENDPOINT_STRLEN]);

/* prefix + hash(spn + proto) into out (at least 29 bytes), e.g.
 * service_chain_name(CHAIN_PREFIX_SVC, "ns1/svc1:p80", PROTO_TCP, out). */
void service_chain_name(const char *prefix, const char *spn, enum l4_proto proto, char *out);

/* "KUBE-SEP-" + hash(spn + proto + endpoint_string(ip, port)) into out
 * (at least 29 bytes). */
void endpoint_chain_name(const char *spn, enum l4_proto proto, const struct addr *ip,
			 uint16_t port, char *out);

#endif
