/* Chain-name hashing as upstream kube-proxy does it (see chain_name.h). */
#include <string.h>
#include <sys/socket.h>

#include "chain_name.h"
#include "sha256.h"

size_t base32_encode(const uint8_t *in, size_t n, char *out)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 5) {
		uint8_t blk[5] = { 0 };
		size_t take = n - i < 5 ? n - i : 5;
		/* Output characters carrying data for 1..5 input bytes. */
		static const size_t chars[6] = { 0, 2, 4, 5, 7, 8 };
		uint64_t v = 0;

		memcpy(blk, in + i, take);
		for (int k = 0; k < 5; k++)
			v = v << 8 | blk[k];
		for (size_t k = 0; k < 8; k++) {
			if (k < chars[take])
				out[o++] = alphabet[(v >> (35 - 5 * k)) & 31];
			else
				out[o++] = '=';
		}
	}
	out[o] = '\0';
	return o;
}

void chain_hash(const char *a, const char *b, const char *c, char out[CHAIN_HASH_LEN + 1])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_LEN];
	/* 10 input bytes are exactly 16 base32 characters. */
	char enc[17];

	sha256_init(&ctx);
	sha256_update(&ctx, a, strlen(a));
	sha256_update(&ctx, b, strlen(b));
	if (c)
		sha256_update(&ctx, c, strlen(c));
	sha256_final(&ctx, digest);
	base32_encode(digest, 10, enc);
	memcpy(out, enc, CHAIN_HASH_LEN);
	out[CHAIN_HASH_LEN] = '\0';
}

void chain_name_join(char *out, const char *prefix, const char hash[CHAIN_HASH_LEN + 1])
{
	size_t n = strlen(prefix);

	memcpy(out, prefix, n);
	memcpy(out + n, hash, CHAIN_HASH_LEN + 1);
}

/* Built by hand: generation formats one per endpoint, and snprintf was a
 * tenth of its time at 100k endpoints. */
const char *endpoint_string(const struct addr *ip, uint16_t port, char buf[ENDPOINT_STRLEN])
{
	char a[ADDR_STRLEN], digits[5];
	size_t n, nd = 0;
	char *p = buf;

	addr_str(ip, a);
	n = strlen(a);
	if (ip->family == AF_INET6)
		*p++ = '[';
	memcpy(p, a, n);
	p += n;
	if (ip->family == AF_INET6)
		*p++ = ']';
	*p++ = ':';
	do {
		digits[nd++] = (char)('0' + port % 10);
		port /= 10;
	} while (port);
	while (nd)
		*p++ = digits[--nd];
	*p = '\0';
	return buf;
}

void service_chain_name(const char *prefix, const char *spn, enum l4_proto proto, char *out)
{
	char h[CHAIN_HASH_LEN + 1];

	chain_hash(spn, proto_lower(proto), NULL, h);
	chain_name_join(out, prefix, h);
}

void endpoint_chain_name(const char *spn, enum l4_proto proto, const struct addr *ip,
			 uint16_t port, char *out)
{
	char h[CHAIN_HASH_LEN + 1], ep[ENDPOINT_STRLEN];

	chain_hash(spn, proto_lower(proto), endpoint_string(ip, port, ep), h);
	chain_name_join(out, CHAIN_PREFIX_SEP, h);
}
