/* One list+watch loop for one resource, after client-go's reflector: list
 * in pages (limit/continue), then watch from the list's resourceVersion
 * with bookmarks; 410 Expired (HTTP status or in-stream ERROR) -> relist and
 * diff against the cache (synthesized deletes); clean stream end -> re-watch
 * from the last version; other failures -> backoff 800ms doubling to 30s
 * with jitter, Retry-After honoured, credentials reloaded after a 401. */
#ifndef KP_REFLECTOR_H
#define KP_REFLECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct loop;
struct http;
struct kube_conn;
struct reflector;

struct reflector_ops {
	/* An object as listed or ADDED/MODIFIED. 0, or -errno with *err (the
	 * object is then logged and removed). */
	int (*upsert)(void *arg, const json_t *obj, char **err);
	/* An object went away (DELETED, or missing from a relist). ns is ""
	 * for cluster-scoped objects. */
	void (*remove)(void *arg, const char *ns, const char *name);
	/* A list (the first or a relist) completed. */
	void (*listed)(void *arg);
	/* Objects changed (called after each batch; may be inside a curl
	 * callback, so only note it). */
	void (*changed)(void *arg);
};

struct reflector_cfg {
	const char *kind;        /* "*v1.Service", for messages */
	const char *resource;    /* "services", for messages */
	const char *path;        /* "/api/v1/services" */
	const char *query;       /* extra URL-escaped query ("labelSelector=..."), or NULL */
	size_t max_line;         /* longest watch event; 0 = 16 MiB */
	unsigned page_size;      /* list limit; 0 = 500 */
	unsigned watch_timeout_s; /* 0 = random 300..600 */
	unsigned backoff_min_ms; /* 0 = 800 */
	unsigned backoff_max_ms; /* 0 = 30000 */
};

/* conn is borrowed and may be shared; cfg strings are copied. Does not
 * start: call reflector_start. */
struct reflector *reflector_new(struct loop *l, struct http *h, struct kube_conn *conn,
				const struct reflector_cfg *cfg, const struct reflector_ops *ops,
				void *arg);
void reflector_start(struct reflector *r);
/* True once a list completed. */
bool reflector_synced(const struct reflector *r);
/* The last resourceVersion seen ("" before the first list). */
const char *reflector_rv(const struct reflector *r);
/* Counters for tests and metrics. */
struct reflector_stats {
	unsigned lists;          /* completed lists */
	unsigned watches;        /* watch requests started */
	unsigned relists_410;    /* relists caused by 410 Expired */
	unsigned failures;       /* failed requests */
};
void reflector_get_stats(const struct reflector *r, struct reflector_stats *out);
/* Cancels any transfer; frees everything. */
void reflector_free(struct reflector *r);

#endif
