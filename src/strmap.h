/* A string-keyed hash map (open addressing, linear probing). Keys are
 * copied; values are borrowed pointers the caller manages. */
#ifndef KP_STRMAP_H
#define KP_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap_slot {
	char *key;          /* NULL = empty; STRMAP_TOMBSTONE = deleted */
	void *value;
	unsigned long hash;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap;         /* power of two or 0 */
	size_t len;         /* live entries */
	size_t used;        /* live + tombstones */
};

void strmap_init(struct strmap *m);
/* Frees the keys and the table; values are the caller's. */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Sets key to value; returns the previous value (NULL if none). */
void *strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value (NULL if absent). */
void *strmap_del(struct strmap *m, const char *key);

/* Iteration: for (size_t i = 0; strmap_next(m, &i, &k, &v); ) ... Do not
 * modify the map while iterating. */
bool strmap_next(const struct strmap *m, size_t *iter, const char **key, void **value);

#endif
