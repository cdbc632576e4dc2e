/* A small SHA-256 (FIPS 180-4) for chain-name hashing; no libcrypto. */
#ifndef KP_SHA256_H
#define KP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

struct sha256_ctx {
	uint32_t state[8];
	uint64_t total;           /* bytes fed so far */
	uint8_t buf[64];
	size_t used;              /* bytes in buf */
};

void sha256_init(struct sha256_ctx *c);
/* Feeds n bytes of data (any length, any number of calls). */
void sha256_update(struct sha256_ctx *c, const void *data, size_t n);
/* Writes the 32-byte digest to out; c must be re-initialised before reuse. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot digest of data. */
void sha256(const void *data, size_t n, uint8_t out[SHA256_DIGEST_LEN]);

#endif
