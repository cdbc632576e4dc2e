#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/yamljson.h"

static json_t *load(const char *s, char **err)
{
	return yaml_to_json(s, strlen(s), err);
}

static void test_scalars(void **state)
{
	char *err = NULL;
	json_t *d = load("a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: -3\ng: hello world\nh: 'true'\ni: 0x10\n", &err);
	json_t *o;

	assert_non_null(d);
	assert_int_equal(json_array_size(d), 1);
	o = json_array_get(d, 0);
	assert_true(json_is_integer(json_object_get(o, "a")));
	assert_true(json_is_string(json_object_get(o, "b")));
	assert_true(json_is_true(json_object_get(o, "c")));
	assert_true(json_is_null(json_object_get(o, "d")));
	assert_true(json_is_real(json_object_get(o, "e")));
	assert_int_equal(json_integer_value(json_object_get(o, "f")), -3);
	assert_string_equal(json_string_value(json_object_get(o, "g")), "hello world");
	assert_true(json_is_string(json_object_get(o, "h")));
	assert_true(json_is_string(json_object_get(o, "i")));
	json_decref(d);
}

static void test_multi_doc_and_json(void **state)
{
	char *err = NULL;
	json_t *d = load("---\nkind: A\n---\n---\nkind: B\nlist: [1, 2, {x: y}]\n", &err);

	assert_non_null(d);
	assert_int_equal(json_array_size(d), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 1), "kind")), "B");
	assert_int_equal(json_array_size(json_object_get(json_array_get(d, 1), "list")), 3);
	json_decref(d);

	d = load("{\"kind\": \"Service\", \"spec\": {\"ports\": [{\"port\": 80}]}}", &err);
	assert_non_null(d);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(
		json_object_get(json_array_get(d, 0), "spec"), "ports"), 0), "port")), 80);
	json_decref(d);
}

static void test_errors(void **state)
{
	char *err = NULL;
	json_t *d = load("a: [1, 2\nb: 3\n", &err);

	assert_null(d);
	assert_non_null(err);
	assert_non_null(strstr(err, "line "));
	free(err);
	err = NULL;
	d = load("? [a, b]\n: 1\n", &err);
	assert_null(d);
	assert_non_null(strstr(err, "not a scalar"));
	free(err);
}

static void test_alias_bomb(void **state)
{
	/* Each level doubles: 2^30 nodes if expanded naively. */
	struct strbuf { char b[4096]; } sb;
	char *err = NULL;
	json_t *d;
	size_t off = 0;

	off += (size_t)snprintf(sb.b + off, sizeof(sb.b) - off, "a0: &a0 [x, x]\n");
	for (int i = 1; i < 30; i++)
		off += (size_t)snprintf(sb.b + off, sizeof(sb.b) - off, "a%d: &a%d [*a%d, *a%d]\n", i, i, i - 1, i - 1);
	d = load(sb.b, &err);
	assert_null(d);
	assert_non_null(err);
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_multi_doc_and_json),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_alias_bomb),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
