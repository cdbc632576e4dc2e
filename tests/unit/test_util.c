#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "src/util.h"

static void test_strbuf(void **state)
{
	struct strbuf sb;
	char *s;

	sb_init(&sb);
	assert_string_equal(sb_cstr(&sb), "");
	for (int i = 0; i < 1000; i++)
		sb_printf(&sb, "%d,", i);
	assert_int_equal(sb.len, strlen(sb.buf));
	assert_true(str_has_prefix(sb.buf, "0,1,2,"));
	assert_true(str_has_suffix(sb.buf, "998,999,"));
	sb_reset(&sb);
	sb_puts(&sb, "ab");
	sb_putc(&sb, 'c');
	s = sb_steal(&sb);
	assert_string_equal(s, "abc");
	assert_null(sb.buf);
	free(s);
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/kp-test-util.XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static void test_write_atomic(void **state)
{
	char *dir = tmpdir();
	char *path = xasprintf("%s/a/b/file", dir);
	char *sub = xasprintf("%s/a/b", dir);
	char *buf = NULL;
	size_t len = 0;
	struct stat st;

	assert_int_equal(write_file_atomic(path, "x", 1, 0644), -ENOENT);
	assert_int_equal(mkdir_p(sub), 0);
	assert_int_equal(mkdir_p(sub), 0);
	assert_int_equal(write_file_atomic(path, "hello\n", 6, 0600), 0);
	assert_int_equal(write_file_atomic(path, "bye\n", 4, 0600), 0);
	assert_int_equal(read_file(path, &buf, &len), 0);
	assert_int_equal(len, 4);
	assert_string_equal(buf, "bye\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(buf);
	assert_int_equal(read_file("/nonexistent/file", &buf, &len), -ENOENT);
	unlink(path);
	rmdir(sub);
	free(path);
	free(sub);
	path = xasprintf("%s/a", dir);
	rmdir(path);
	free(path);
	rmdir(dir);
	free(dir);
}

/* A device node must be written into, never replaced by a rename (that is
 * how `--write-config-to=/dev/null` once turned /dev/null into a file). */
static void test_write_atomic_device(void **state)
{
	char *dir = tmpdir();
	char *dev = xasprintf("%s/null", dir);
	struct stat st;

	if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) < 0) {
		rmdir(dir);
		free(dev);
		free(dir);
		skip();
		return;
	}
	assert_int_equal(write_file_atomic(dev, "data", 4, 0644), 0);
	assert_int_equal(stat(dev, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	unlink(dev);
	rmdir(dir);
	free(dev);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_write_atomic_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
