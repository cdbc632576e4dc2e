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

#include "src/cidr.h"
#include "src/hostaddr.h"

static void test_addr_parse_print(void **state)
{
	struct addr a;
	char buf[ADDR_STRLEN];

	assert_int_equal(addr_parse("10.0.0.1", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(addr_str(&a, buf), "10.0.0.1");
	assert_int_equal(addr_parse("fd00::0001", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(addr_str(&a, buf), "fd00::1");
	assert_int_equal(addr_parse("10.0.0.256", &a), -EINVAL);
	assert_int_equal(addr_parse("10.0.0", &a), -EINVAL);
	assert_int_equal(addr_parse("", &a), -EINVAL);
	assert_int_equal(addr_parse(NULL, &a), -EINVAL);
	assert_int_equal(addr_parse("fe80::1%eth0", &a), -EINVAL);
}

static void test_cidr_parse(void **state)
{
	struct cidr c;
	char buf[CIDR_STRLEN];

	assert_int_equal(cidr_parse("10.0.0.0/24", false, &c), 0);
	assert_string_equal(cidr_str(&c, buf), "10.0.0.0/24");
	assert_int_equal(cidr_parse("10.0.0.1/24", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("10.0.0.1/24", true, &c), 0);
	assert_string_equal(cidr_str(&c, buf), "10.0.0.0/24");
	assert_int_equal(cidr_parse("10.0.0.0/33", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("10.0.0.0/", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("10.0.0.0/-1", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("10.0.0.0/8x", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("10.0.0.0", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("fd00:10:96::/112", false, &c), 0);
	assert_string_equal(cidr_str(&c, buf), "fd00:10:96::/112");
	assert_int_equal(cidr_parse("fd00::/129", false, &c), -EINVAL);
	assert_int_equal(cidr_parse("0.0.0.0/0", false, &c), 0);
	assert_int_equal(cidr_size(&c), (uint64_t)1 << 32);
}

static void test_contains(void **state)
{
	struct cidr c;
	struct addr a;

	cidr_parse("10.96.0.0/12", false, &c);
	addr_parse("10.111.255.255", &a);
	assert_true(cidr_contains(&c, &a));
	addr_parse("10.112.0.0", &a);
	assert_false(cidr_contains(&c, &a));
	addr_parse("fd00::1", &a);
	assert_false(cidr_contains(&c, &a));
	cidr_parse("fd00::/8", false, &c);
	assert_true(cidr_contains(&c, &a));
}

static void test_nth_index(void **state)
{
	struct cidr c;
	struct addr a;
	char buf[ADDR_STRLEN];
	uint64_t idx;

	cidr_parse("10.0.0.0/24", false, &c);
	assert_int_equal(cidr_size(&c), 256);
	assert_int_equal(cidr_nth(&c, 255, &a), 0);
	assert_string_equal(addr_str(&a, buf), "10.0.0.255");
	assert_int_equal(cidr_nth(&c, 256, &a), -ERANGE);
	cidr_parse("10.0.0.0/8", false, &c);
	assert_int_equal(cidr_nth(&c, 65536 + 258, &a), 0);
	assert_string_equal(addr_str(&a, buf), "10.1.1.2");
	assert_int_equal(cidr_index(&c, &a, &idx), 0);
	assert_int_equal(idx, 65536 + 258);
	addr_parse("11.0.0.0", &a);
	assert_int_equal(cidr_index(&c, &a, &idx), -ERANGE);

	cidr_parse("fd00:1::/64", false, &c);
	assert_int_equal(cidr_size(&c), UINT64_MAX);
	assert_int_equal(cidr_nth(&c, 0x1ff, &a), 0);
	assert_string_equal(addr_str(&a, buf), "fd00:1::1ff");
	assert_int_equal(cidr_index(&c, &a, &idx), 0);
	assert_int_equal(idx, 0x1ff);
	cidr_parse("fd00:1::/120", false, &c);
	assert_int_equal(cidr_size(&c), 256);
}

static void test_list(void **state)
{
	struct cidr v[2];
	size_t n;
	char *bad = NULL;

	assert_int_equal(cidr_list_parse("10.0.0.0/8, fd00::/8", false, v, 2, &n, &bad), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cidr_list_parse("10.0.0.0/8,nope", false, v, 2, &n, &bad), -EINVAL);
	assert_string_equal(bad, "nope");
	free(bad);
	bad = NULL;
	assert_int_equal(cidr_list_parse("10.0.0.0/8,10.1.0.0/16,10.2.0.0/16", false, v, 2, &n, &bad), -EINVAL);
	assert_string_equal(bad, "10.2.0.0/16");
	free(bad);
}

static void test_sockaddr_and_host(void **state)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct addr a, lo;
	struct addr *all = NULL;
	char buf[ADDR_STRLEN];
	long n;
	bool found = false;

	inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&in, &a), 0);
	assert_string_equal(addr_str(&a, buf), "192.0.2.7");
	inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
	assert_string_equal(addr_str(&a, buf), "2001:db8::7");
	assert_int_equal(addr_from_sockaddr(&sa, &a), -EAFNOSUPPORT);
	assert_int_equal(addr_from_sockaddr(NULL, &a), -EAFNOSUPPORT);

	/* Every host with an lo that is up has 127.0.0.1. */
	addr_parse("127.0.0.1", &lo);
	n = host_addresses(&all);
	assert_true(n >= 0);
	for (long i = 0; i < n; i++)
		found = found || addr_equal(&all[i], &lo);
	if (n > 0 && !found) {
		free(all);
		skip();
		return;
	}
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse_print),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_nth_index),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_sockaddr_and_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
