/* Test helper: removes a temporary directory tree without a shell. */
#ifndef KP_TEST_TMPDIR_H
#define KP_TEST_TMPDIR_H

/* Deletes dir and everything below it (symlinks are not followed).
 * 0 or -errno of the first failure. */
int remove_tree(const char *dir);

#endif
