#include "config.h"

#include <errno.h>
#include <string.h>

#include "kubeapi/linesplit.h"

void linesplit_init(struct linesplit *ls, size_t max_line)
{
	sb_init(&ls->tail);
	ls->max_line = max_line;
	ls->failed = false;
}

static int emit(char *line, size_t len, linesplit_cb cb, void *arg)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return 0;
	line[len] = '\0';
	return cb(arg, line, len);
}

/* Empties the buffer; gives a big one back instead of keeping it. */
static void drop(struct linesplit *ls)
{
	if (ls->tail.cap > (1u << 20))
		sb_free(&ls->tail);
	else
		sb_reset(&ls->tail);
}

int linesplit_feed(struct linesplit *ls, const char *data, size_t len, linesplit_cb cb, void *arg)
{
	const char *end = data + len, *nl;
	int r;

	if (ls->failed)
		return -EMSGSIZE;
	/* Finish the buffered line first; only the new bytes are scanned. */
	if (ls->tail.len) {
		nl = memchr(data, '\n', len);
		if (!nl) {
			if (ls->tail.len + len > ls->max_line)
				goto too_long;
			sb_add(&ls->tail, data, len);
			return 0;
		}
		if (ls->tail.len + (size_t)(nl - data) > ls->max_line)
			goto too_long;
		sb_add(&ls->tail, data, (size_t)(nl - data));
		r = emit(ls->tail.buf, ls->tail.len, cb, arg);
		drop(ls);
		if (r < 0)
			return r;
		data = nl + 1;
	}
	/* Whole lines in this chunk go through the (then empty) buffer once:
	 * callers may write into a line and data is const. */
	while (data < end && (nl = memchr(data, '\n', (size_t)(end - data)))) {
		size_t n = (size_t)(nl - data);

		if (n > ls->max_line)
			goto too_long;
		sb_add(&ls->tail, data, n);
		r = emit(ls->tail.buf, ls->tail.len, cb, arg);
		drop(ls);
		if (r < 0)
			return r;
		data = nl + 1;
	}
	if (data < end) {
		if ((size_t)(end - data) > ls->max_line)
			goto too_long;
		sb_add(&ls->tail, data, (size_t)(end - data));
	}
	return 0;
too_long:
	drop(ls);
	ls->failed = true;
	return -EMSGSIZE;
}

size_t linesplit_pending(const struct linesplit *ls)
{
	return ls->tail.len;
}

void linesplit_reset(struct linesplit *ls)
{
	sb_reset(&ls->tail);
	ls->failed = false;
}

void linesplit_free(struct linesplit *ls)
{
	sb_free(&ls->tail);
}
