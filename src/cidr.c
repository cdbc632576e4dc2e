#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "util.h"

int addr_parse(const char *s, struct addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, out->bytes) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->bytes) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}

const char *addr_str(const struct addr *a, char *buf)
{
	if (!a->family || !inet_ntop(a->family, a->bytes, buf, ADDR_STRLEN))
		snprintf(buf, ADDR_STRLEN, "<none>");
	return buf;
}

size_t addr_len(const struct addr *a)
{
	return a->family == AF_INET ? 4 : a->family == AF_INET6 ? 16 : 0;
}

bool addr_equal(const struct addr *a, const struct addr *b)
{
	return addr_cmp(a, b) == 0;
}

int addr_cmp(const struct addr *a, const struct addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, addr_len(a));
}

bool addr_list_equal(const struct addr *a, size_t na, const struct addr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!addr_equal(&a[i], &b[i]))
			return false;
	return true;
}

bool addr_is_unspecified(const struct addr *a)
{
	static const uint8_t zero[16];

	return !a->family || memcmp(a->bytes, zero, addr_len(a)) == 0;
}

int addr_from_sockaddr(const struct sockaddr *sa, struct addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		out->family = AF_INET;
		memcpy(out->bytes, &in->sin_addr, 4);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		out->family = AF_INET6;
		memcpy(out->bytes, &in6->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static void mask_bits(struct addr *a, unsigned prefix)
{
	size_t len = addr_len(a);

	for (size_t i = 0; i < len; i++) {
		unsigned bit = (unsigned)i * 8;

		if (bit >= prefix)
			a->bytes[i] = 0;
		else if (bit + 8 > prefix)
			a->bytes[i] &= (uint8_t)(0xff << (8 - (prefix - bit)));
	}
}

int cidr_parse(const char *s, bool lenient, struct cidr *out)
{
	const char *slash;
	char ipbuf[ADDR_STRLEN];
	char *end;
	unsigned long prefix;
	struct addr masked;

	memset(out, 0, sizeof(*out));
	if (!s || !(slash = strchr(s, '/')) || (size_t)(slash - s) >= sizeof(ipbuf))
		return -EINVAL;
	memcpy(ipbuf, s, (size_t)(slash - s));
	ipbuf[slash - s] = '\0';
	if (addr_parse(ipbuf, &out->base) < 0)
		return -EINVAL;
	if (!slash[1] || slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (errno || *end || prefix > addr_len(&out->base) * 8)
		return -EINVAL;
	out->prefix = (uint8_t)prefix;
	masked = out->base;
	mask_bits(&masked, out->prefix);
	if (!lenient && !addr_equal(&masked, &out->base))
		return -EINVAL;
	out->base = masked;
	return 0;
}

const char *cidr_str(const struct cidr *c, char *buf)
{
	char a[ADDR_STRLEN];

	snprintf(buf, CIDR_STRLEN, "%s/%u", addr_str(&c->base, a), c->prefix);
	return buf;
}

bool cidr_contains(const struct cidr *c, const struct addr *a)
{
	struct addr m = *a;

	if (a->family != c->base.family)
		return false;
	mask_bits(&m, c->prefix);
	return addr_equal(&m, &c->base);
}

uint64_t cidr_size(const struct cidr *c)
{
	unsigned host = (unsigned)addr_len(&c->base) * 8 - c->prefix;

	return host >= 64 ? UINT64_MAX : (uint64_t)1 << host;
}

int cidr_nth(const struct cidr *c, uint64_t index, struct addr *out)
{
	size_t len = addr_len(&c->base);
	unsigned carry = 0;

	if (index >= cidr_size(c) && cidr_size(c) != UINT64_MAX)
		return -ERANGE;
	*out = c->base;
	for (size_t i = len; i-- > 0;) {
		unsigned v = out->bytes[i] + (unsigned)(index & 0xff) + carry;

		out->bytes[i] = (uint8_t)v;
		carry = v >> 8;
		index >>= 8;
	}
	return 0;
}

int cidr_index(const struct cidr *c, const struct addr *a, uint64_t *index)
{
	size_t len = addr_len(a);
	uint64_t v = 0;

	if (!cidr_contains(c, a))
		return -ERANGE;
	/* Only the low 64 bits can be indexed; the allocator caps the usable
	 * part of huge IPv6 ranges well below that. */
	for (size_t i = len > 8 ? len - 8 : 0; i < len; i++)
		v = (v << 8) | a->bytes[i];
	if (cidr_size(c) != UINT64_MAX)
		v &= cidr_size(c) - 1;
	*index = v;
	return 0;
}

int cidr_list_parse(const char *s, bool lenient, struct cidr *out, size_t max, size_t *n, char **bad)
{
	char *copy = xstrdup(s ? s : ""), *save = NULL, *tok;
	int err = 0;

	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (!*tok)
			continue;
		if (*n >= max || cidr_parse(tok, lenient, &out[*n]) < 0) {
			if (bad)
				*bad = xstrdup(tok);
			err = -EINVAL;
			break;
		}
		(*n)++;
	}
	free(copy);
	return err;
}
