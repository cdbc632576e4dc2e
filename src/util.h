/* Small helpers shared by every module: allocation that never returns NULL
 * (the daemon exits on OOM, like relayd's fatal()), string building and
 * atomic file replacement. */
#ifndef KP_UTIL_H
#define KP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation wrappers: abort the process with a log line on failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Free *pp and set it to NULL. */
#define free_and_null(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

/* Growable byte buffer, always NUL terminated when len > 0 or after sb_cstr. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const char *data, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct strbuf *sb, const char *fmt, va_list ap);
/* Returns the buffer as a C string ("" for an empty buffer); sb keeps ownership. */
const char *sb_cstr(struct strbuf *sb);
/* Hands the buffer to the caller (never NULL) and resets sb. */
char *sb_steal(struct strbuf *sb);

/* Reads a whole file into a NUL-terminated buffer. Returns 0 or -errno. */
int read_file(const char *path, char **out, size_t *len);

/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename, fsync of the directory. Returns 0 or -errno. */
int write_file_atomic(const char *path, const char *data, size_t len, unsigned mode);

/* Creates a directory and its parents (mode 0755). Returns 0 or -errno. */
int mkdir_p(const char *path);

/* Monotonic clock in milliseconds / nanoseconds; wall clock in seconds. */
unsigned long long now_ms(void);
unsigned long long now_ns(void);
double wall_time(void);

/* strcmp for qsort over an array of char *. */
int cmp_strp(const void *a, const void *b);

bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);

#endif
