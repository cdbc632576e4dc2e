#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "kubeapi/linesplit.h"
#include "src/util.h"

#ifndef KP_TESTDATA
#define KP_TESTDATA "tests/data"
#endif

struct lines {
	char *v[64];
	size_t n;
	int fail_at;         /* return -EIO for this line index (-1 = never) */
};

static int collect(void *arg, char *line, size_t len)
{
	struct lines *l = arg;

	assert_int_equal(strlen(line), len);
	assert_true(l->n < 64);
	if ((int)l->n == l->fail_at)
		return -EIO;
	l->v[l->n++] = xstrdup(line);
	return 0;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static char *sample;
static size_t sample_len;

static int load_sample(void **state)
{
	assert_int_equal(read_file(KP_TESTDATA "/watch-stream-sample.ndjson", &sample, &sample_len), 0);
	return 0;
}

static int free_sample(void **state)
{
	free(sample);
	return 0;
}

/* The recorded stream's four events, checked by content. */
static void check_sample_lines(struct lines *l)
{
	static const char *types[] = { "ADDED", "ADDED", "BOOKMARK", "ERROR" };

	assert_int_equal(l->n, 4);
	for (size_t i = 0; i < 4; i++) {
		json_t *j = json_loads(l->v[i], 0, NULL);

		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "type")), types[i]);
		json_decref(j);
	}
	assert_int_equal(strlen(l->v[0]) + strlen(l->v[1]) + strlen(l->v[2]) + strlen(l->v[3]) + 4,
			 sample_len);
}

static void test_every_split_point(void **state)
{
	struct lines whole = { .fail_at = -1 };
	struct linesplit ls;

	/* Reference: the stream in one read. */
	linesplit_init(&ls, 1 << 16);
	assert_int_equal(linesplit_feed(&ls, sample, sample_len, collect, &whole), 0);
	check_sample_lines(&whole);
	assert_int_equal(linesplit_pending(&ls), 0);
	linesplit_free(&ls);

	for (size_t i = 0; i <= sample_len; i++) {
		struct lines l = { .fail_at = -1 };

		linesplit_init(&ls, 1 << 16);
		assert_int_equal(linesplit_feed(&ls, sample, i, collect, &l), 0);
		assert_int_equal(linesplit_feed(&ls, sample + i, sample_len - i, collect, &l), 0);
		assert_int_equal(l.n, whole.n);
		for (size_t k = 0; k < l.n; k++)
			assert_string_equal(l.v[k], whole.v[k]);
		assert_int_equal(linesplit_pending(&ls), 0);
		lines_free(&l);
		linesplit_free(&ls);
	}
	lines_free(&whole);
}

static void test_three_way_splits(void **state)
{
	struct lines ref = { .fail_at = -1 };
	struct linesplit ls;

	linesplit_init(&ls, 1 << 16);
	linesplit_feed(&ls, sample, sample_len, collect, &ref);
	linesplit_free(&ls);
	for (size_t i = 0; i <= sample_len; i += 3) {
		for (size_t j = i; j <= sample_len; j += 11) {
			struct lines l = { .fail_at = -1 };

			linesplit_init(&ls, 1 << 16);
			assert_int_equal(linesplit_feed(&ls, sample, i, collect, &l), 0);
			assert_int_equal(linesplit_feed(&ls, sample + i, j - i, collect, &l), 0);
			assert_int_equal(linesplit_feed(&ls, sample + j, sample_len - j, collect, &l), 0);
			assert_int_equal(l.n, 4);
			for (size_t k = 0; k < 4; k++)
				assert_string_equal(l.v[k], ref.v[k]);
			lines_free(&l);
			linesplit_free(&ls);
		}
	}
	lines_free(&ref);
}

static void test_byte_at_a_time(void **state)
{
	struct lines l = { .fail_at = -1 };
	struct linesplit ls;

	linesplit_init(&ls, 1 << 16);
	for (size_t i = 0; i < sample_len; i++) {
		assert_int_equal(linesplit_feed(&ls, sample + i, 1, collect, &l), 0);
		if (i + 1 < sample_len && sample[i] != '\n')
			assert_true(linesplit_pending(&ls) > 0);
	}
	check_sample_lines(&l);
	lines_free(&l);
	linesplit_free(&ls);
}

static void test_crlf_and_empty_lines(void **state)
{
	struct lines l = { .fail_at = -1 };
	struct linesplit ls;
	const char *in = "a\r\n\n\r\nbc\nd";

	linesplit_init(&ls, 100);
	assert_int_equal(linesplit_feed(&ls, in, strlen(in), collect, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "a");
	assert_string_equal(l.v[1], "bc");
	assert_int_equal(linesplit_pending(&ls), 1);   /* "d" is unfinished */
	assert_int_equal(linesplit_feed(&ls, "\n", 1, collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2], "d");
	lines_free(&l);
	linesplit_free(&ls);
}

static void test_oversized_line(void **state)
{
	struct lines l = { .fail_at = -1 };
	struct linesplit ls;

	linesplit_init(&ls, 10);
	/* Exactly the limit is fine, in one piece and split. */
	assert_int_equal(linesplit_feed(&ls, "0123456789\n", 11, collect, &l), 0);
	assert_int_equal(linesplit_feed(&ls, "01234", 5, collect, &l), 0);
	assert_int_equal(linesplit_feed(&ls, "56789\n", 6, collect, &l), 0);
	assert_int_equal(l.n, 2);
	/* One byte more is an error, whole or split, and sticks until reset. */
	assert_int_equal(linesplit_feed(&ls, "01234567890\n", 12, collect, &l), -EMSGSIZE);
	assert_int_equal(linesplit_feed(&ls, "x\n", 2, collect, &l), -EMSGSIZE);
	assert_int_equal(l.n, 2);
	linesplit_reset(&ls);
	assert_int_equal(linesplit_feed(&ls, "012345", 6, collect, &l), 0);
	assert_int_equal(linesplit_feed(&ls, "67890", 5, collect, &l), -EMSGSIZE);
	linesplit_reset(&ls);
	/* An unterminated run past the limit fails without buffering it all. */
	{
		size_t big = 1 << 20;
		char *junk = xmalloc(big);

		memset(junk, 'x', big);
		assert_int_equal(linesplit_feed(&ls, junk, big, collect, &l), -EMSGSIZE);
		assert_true(ls.tail.cap < 4096);
		free(junk);
	}
	linesplit_reset(&ls);
	assert_int_equal(linesplit_feed(&ls, "ok\n", 3, collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2], "ok");
	lines_free(&l);
	linesplit_free(&ls);
}

static void test_callback_error_stops(void **state)
{
	struct lines l = { .fail_at = 1 };
	struct linesplit ls;

	linesplit_init(&ls, 100);
	assert_int_equal(linesplit_feed(&ls, "a\nb\nc\n", 6, collect, &l), -EIO);
	assert_int_equal(l.n, 1);
	lines_free(&l);
	linesplit_free(&ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_split_point),
		cmocka_unit_test(test_three_way_splits),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_crlf_and_empty_lines),
		cmocka_unit_test(test_oversized_line),
		cmocka_unit_test(test_callback_error_stops),
	};

	return cmocka_run_group_tests(tests, load_sample, free_sample);
}
