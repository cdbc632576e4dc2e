/* Chain-name hashing: SHA-256 and base32 against their standards' test
 * vectors, and chain names against pairs published in upstream
 * kube-proxy's pkg/proxy/iptables/proxier_test.go. IPv6, UDP and SCTP
 * pairs were computed independently with coreutils:
 *   printf '%s' "$s" | sha256sum | cut -d' ' -f1 | xxd -r -p | base32 | cut -c1-16 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "modes/iptables/chain_name.h"
#include "modes/iptables/sha256.h"

static void hex(const uint8_t *d, char *out)
{
	for (int i = 0; i < SHA256_DIGEST_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha(const char *msg, const char *want)
{
	uint8_t d[SHA256_DIGEST_LEN];
	char h[2 * SHA256_DIGEST_LEN + 1];

	sha256(msg, strlen(msg), d);
	hex(d, h);
	assert_string_equal(h, want);
}

static void test_sha256_vectors(void **state)
{
	(void)state;
	/* FIPS 180-4 / NIST examples */
	check_sha("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check_sha("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_sha256_streaming(void **state)
{
	struct sha256_ctx c;
	uint8_t d[SHA256_DIGEST_LEN], d2[SHA256_DIGEST_LEN];
	char h[2 * SHA256_DIGEST_LEN + 1];
	char block[1001];
	char buf[200];

	(void)state;
	/* One million 'a' fed in uneven pieces. */
	memset(block, 'a', sizeof(block));
	sha256_init(&c);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c, block, i % 2 ? 999 : 1001);
	sha256_final(&c, d);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* Every split point of a message that crosses block boundaries
	 * gives the one-shot digest (55/56/64-byte padding edges). */
	for (size_t len = 50; len < 130; len++) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)('A' + (i * 7 + len) % 26);
		sha256(buf, len, d);
		for (size_t cut = 0; cut <= len; cut += 13) {
			sha256_init(&c);
			sha256_update(&c, buf, cut);
			sha256_update(&c, buf + cut, len - cut);
			sha256_final(&c, d2);
			assert_memory_equal(d, d2, sizeof(d));
		}
	}
}

static void check_b32(const char *in, const char *want)
{
	char out[64];

	assert_int_equal(base32_encode((const uint8_t *)in, strlen(in), out), strlen(want));
	assert_string_equal(out, want);
}

static void test_base32_rfc4648(void **state)
{
	(void)state;
	check_b32("", "");
	check_b32("f", "MY======");
	check_b32("fo", "MZXQ====");
	check_b32("foo", "MZXW6===");
	check_b32("foob", "MZXW6YQ=");
	check_b32("fooba", "MZXW6YTB");
	check_b32("foobar", "MZXW6YTBOI======");
}

static struct addr ip(const char *s)
{
	struct addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static void check_svc(const char *prefix, const char *spn, enum l4_proto p, const char *want)
{
	char out[40];

	service_chain_name(prefix, spn, p, out);
	assert_string_equal(out, want);
	assert_true(strlen(out) <= 28);
}

static void check_sep(const char *spn, enum l4_proto p, const char *ep, uint16_t port,
		      const char *want)
{
	char out[40];
	struct addr a = ip(ep);

	endpoint_chain_name(spn, p, &a, port, out);
	assert_string_equal(out, want);
}

static void test_upstream_pairs(void **state)
{
	(void)state;
	/* REFERENCE.md and upstream's TestOverallIPTablesRules */
	check_svc(CHAIN_PREFIX_SVC, "ns1/svc1:p80", PROTO_TCP, "KUBE-SVC-XPGD46QRK7WJZT7O");
	check_svc(CHAIN_PREFIX_SVC, "ns2/svc2:p80", PROTO_TCP, "KUBE-SVC-GNZBNJ2PO5MGZ6GT");
	check_svc(CHAIN_PREFIX_SVL, "ns2/svc2:p80", PROTO_TCP, "KUBE-SVL-GNZBNJ2PO5MGZ6GT");
	check_svc(CHAIN_PREFIX_EXT, "ns2/svc2:p80", PROTO_TCP, "KUBE-EXT-GNZBNJ2PO5MGZ6GT");
	check_svc(CHAIN_PREFIX_FW, "ns2/svc2:p80", PROTO_TCP, "KUBE-FW-GNZBNJ2PO5MGZ6GT");
	check_svc(CHAIN_PREFIX_SVC, "ns3/svc3:p80", PROTO_TCP, "KUBE-SVC-X27LE4BHSL4DOUIK");
	check_svc(CHAIN_PREFIX_SVC, "ns4/svc4:p80", PROTO_TCP, "KUBE-SVC-4SW47YFZTEDKD3PK");
	check_svc(CHAIN_PREFIX_FW, "ns5/svc5:p80", PROTO_TCP, "KUBE-FW-NUKIZ6OKUXPJNT4C");

	check_sep("ns1/svc1:p80", PROTO_TCP, "10.180.0.1", 80, "KUBE-SEP-SXIVWICOYRO3J4NJ");
	check_sep("ns2/svc2:p80", PROTO_TCP, "10.180.0.2", 80, "KUBE-SEP-RS4RBKLTHTF2IUXJ");
	check_sep("ns3/svc3:p80", PROTO_TCP, "10.180.0.3", 80, "KUBE-SEP-OYPFS5VJICHGATKP");
	check_sep("ns4/svc4:p80", PROTO_TCP, "10.180.0.4", 80, "KUBE-SEP-UKSFD7AGPMPPLUHC");
	check_sep("ns4/svc4:p80", PROTO_TCP, "10.180.0.5", 80, "KUBE-SEP-C6EBXVWJJZMIWKLZ");
	check_sep("ns5/svc5:p80", PROTO_TCP, "10.180.0.3", 80, "KUBE-SEP-I77PXRDZVX7PMWMN");
}

static void test_other_pairs(void **state)
{
	char buf[ENDPOINT_STRLEN];
	struct addr a = ip("fd00:10:180::2:1");

	(void)state;
	/* unnamed port: the service port name is just "ns/name" */
	check_svc(CHAIN_PREFIX_SVC, "ns1/svc1", PROTO_TCP, "KUBE-SVC-AQI2S6QIMU7PVVRP");
	check_sep("ns1/svc1", PROTO_TCP, "10.180.0.1", 80, "KUBE-SEP-RD5U5EMOXIC4RU5H");
	/* protocols are hashed in lower case */
	check_svc(CHAIN_PREFIX_SVC, "ns2/svc2:dns-udp", PROTO_UDP, "KUBE-SVC-56EGM3ZB4YILLRBZ");
	check_svc(CHAIN_PREFIX_SVC, "ns2/svc2:dns-sctp", PROTO_SCTP, "KUBE-SVC-L76IW5RJFPV7YBZO");
	check_sep("ns2/svc2:dns-udp", PROTO_UDP, "10.180.0.1", 53, "KUBE-SEP-7PIHC2I6DEQ4LZME");
	check_sep("ns2/svc2:dns-sctp", PROTO_SCTP, "10.180.0.1", 53, "KUBE-SEP-5BVYUR2PKHQSNHD4");
	/* IPv6 endpoints are "[ip]:port" */
	assert_string_equal(endpoint_string(&a, 80, buf), "[fd00:10:180::2:1]:80");
	check_sep("ns1/svc1:p80", PROTO_TCP, "fd00:10:180::1", 80, "KUBE-SEP-OGYCNMB4EMRUSJ6N");
	check_sep("ns1/svc1:p80", PROTO_TCP, "fd00:10:180::2:1", 80, "KUBE-SEP-APSFVWOCYOGIDJM2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha256_streaming),
		cmocka_unit_test(test_base32_rfc4648),
		cmocka_unit_test(test_upstream_pairs),
		cmocka_unit_test(test_other_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
