/* The API server source: list+watch of Services, EndpointSlices and our
 * Node through libcurl's multi socket interface on the daemon's loop.
 * Feeds the store; never touches the kernel. */
#ifndef KP_KUBEAPI_SOURCE_H
#define KP_KUBEAPI_SOURCE_H

struct loop;
struct store;
struct config;
struct kube_source;

struct kube_source_cbs {
	void (*changed)(void *arg);  /* the store changed */
	void (*ready)(void *arg);    /* Services and EndpointSlices both listed once */
	void *arg;
};

/* Resolves the connection (--kubeconfig, else in-cluster, --master overriding
 * the server URL) and starts listing. NULL with *err when the configuration
 * is unusable (unreadable kubeconfig, unknown context, bad base64, ...). */
struct kube_source *kube_source_open(struct loop *l, struct store *st, const struct config *cfg,
				     const struct kube_source_cbs *cbs, char **err);
/* Knobs for tests; zero fields keep the defaults. */
struct kube_source_opts {
	size_t max_line;             /* longest watch event, default 16 MiB */
	unsigned page_size;          /* list limit, default 500 */
	unsigned watch_timeout_s;    /* default random 300..600 */
	unsigned backoff_min_ms;     /* default 800 */
	unsigned backoff_max_ms;     /* default 30000 */
	const char *sa_dir;          /* in-cluster service account folder */
};

/* kube_source_open with test knobs (opts may be NULL). */
struct kube_source *kube_source_open_opts(struct loop *l, struct store *st, const struct config *cfg,
					  const struct kube_source_cbs *cbs,
					  const struct kube_source_opts *opts, char **err);

/* The server URL for the start-up log line (no credentials). */
const char *kube_source_server(const struct kube_source *ks);
/* Cancels every request and frees ks (NULL is fine). */
void kube_source_close(struct kube_source *ks);

#endif
