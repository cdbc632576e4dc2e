#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tmpdir.h"

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -errno : 0;
}

int remove_tree(const char *dir)
{
	int r = nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);

	return r < 0 ? -errno : r;
}
