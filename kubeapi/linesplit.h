/* Reassembly of newline-delimited records (watch events) from arbitrary
 * reads, in linear time and bounded memory: only the unfinished tail of the
 * stream is buffered, and a line longer than the limit is an error. */
#ifndef KP_LINESPLIT_H
#define KP_LINESPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "src/util.h"

struct linesplit {
	struct strbuf tail;      /* bytes of the unfinished line */
	size_t max_line;         /* longest accepted line, without its '\n' */
	bool failed;             /* a line exceeded max_line */
};

/* Called for each complete line, '\n' (and a '\r' before it) stripped and
 * NUL-terminated; line may be modified. A negative return stops feeding. */
typedef int (*linesplit_cb)(void *arg, char *line, size_t len);

void linesplit_init(struct linesplit *ls, size_t max_line);
/* Feeds len bytes; calls cb for each completed line (empty lines skipped).
 * Returns 0, -EMSGSIZE once a line exceeds max_line (the splitter then
 * refuses further input until reset), or the callback's negative value. */
int linesplit_feed(struct linesplit *ls, const char *data, size_t len, linesplit_cb cb, void *arg);
/* Bytes of an unfinished line (a stream that ends here was cut mid-line). */
size_t linesplit_pending(const struct linesplit *ls);
/* Forgets buffered bytes and the failed state. */
void linesplit_reset(struct linesplit *ls);
void linesplit_free(struct linesplit *ls);

#endif
