#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

static char tombstone_key;
#define TOMBSTONE (&tombstone_key)

static unsigned long hash_str(const char *s)
{
	unsigned long h = 1469598103934665603UL;   /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211UL;
	}
	return h;
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	strmap_init(m);
}

static struct strmap_slot *find(const struct strmap *m, const char *key, unsigned long h)
{
	size_t mask = m->cap - 1;

	if (!m->cap)
		return NULL;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];

		if (!s->key)
			return NULL;
		if (s->key != TOMBSTONE && s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, hash_str(key));

	return s ? s->value : NULL;
}

static void insert_slot(struct strmap *m, char *key, void *value, unsigned long h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];

		if (!s->key) {
			s->key = key;
			s->value = value;
			s->hash = h;
			m->len++;
			m->used++;
			return;
		}
	}
}

static void resize(struct strmap *m, size_t cap)
{
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->len = 0;
	m->used = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key && old[i].key != TOMBSTONE)
			insert_slot(m, old[i].key, old[i].value, old[i].hash);
	free(old);
}

void *strmap_put(struct strmap *m, const char *key, void *value)
{
	unsigned long h = hash_str(key);
	struct strmap_slot *s = find(m, key, h);
	void *prev;

	if (s) {
		prev = s->value;
		s->value = value;
		return prev;
	}
	if ((m->used + 1) * 4 >= m->cap * 3)
		resize(m, m->cap ? (m->len * 2 >= m->cap ? m->cap * 2 : m->cap) : 16);
	insert_slot(m, xstrdup(key), value, h);
	return NULL;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, hash_str(key));
	void *prev;

	if (!s)
		return NULL;
	prev = s->value;
	free(s->key);
	s->key = TOMBSTONE;
	s->value = NULL;
	m->len--;
	return prev;
}

bool strmap_next(const struct strmap *m, size_t *iter, const char **key, void **value)
{
	for (; *iter < m->cap; (*iter)++) {
		struct strmap_slot *s = &m->slots[*iter];

		if (s->key && s->key != TOMBSTONE) {
			if (key)
				*key = s->key;
			if (value)
				*value = s->value;
			(*iter)++;
			return true;
		}
	}
	return false;
}
