/* How to reach the API server: a kubeconfig file (clusters, users,
 * contexts, exec credential plugins) or the in-cluster service account.
 * Key material stays in memory (handed to libcurl as blobs). Nothing here
 * ever logs a token or a key. */
#ifndef KP_KUBECONFIG_H
#define KP_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct kube_exec;

struct kube_blob {
	char *data;              /* PEM bytes, NULL when absent */
	size_t len;
	char *path;              /* file it is re-read from; NULL when inline */
};

struct kube_conn {
	char *server;            /* "https://host:port[/prefix]", no trailing '/' */
	char *origin;            /* for messages: kubeconfig path or "in-cluster config" */
	struct kube_blob ca;     /* trusted CAs; absent = system store */
	struct kube_blob cert;   /* client certificate (static or from exec) */
	struct kube_blob key;    /* client key */
	bool insecure;           /* insecure-skip-tls-verify */
	char *tls_server_name;   /* tls-server-name: the name TLS verifies (and SNI), NULL if absent */
	char *proxy_url;         /* proxy-url: http://, https:// or socks5:// proxy for every
				  * request; NULL = the usual proxy environment variables */
	char *username, *password; /* basic auth, rarely used */
	/* Bearer token: static, or from token_file, or from an exec plugin
	 * (cached until expiry). token_file and file-based certificates and
	 * keys are re-read every token_reload_ms (they rotate). */
	char *token;
	char *token_file;
	unsigned long long token_read_ms;   /* now_ms() of the last re-read */
	unsigned long long token_reload_ms; /* default 60000 */
	struct kube_exec *exec;
};

/* Loads path, resolves context (NULL = current-context) to a connection.
 * Relative file names are resolved against path's folder. 0 or -errno with
 * *err naming the file and the field (e.g. "users[admin].user.client-key-data:
 * bad base64"). Caller frees *out with kube_conn_free. */
int kubeconfig_load(const char *path, const char *context, struct kube_conn **out, char **err);

/* Parses kubeconfig text (as kubeconfig_load, for tests); dir is the folder
 * relative paths are resolved against, origin names the text in messages. */
int kubeconfig_parse(const char *text, size_t len, const char *dir, const char *origin,
		     const char *context, struct kube_conn **out, char **err);

/* In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the service
 * account's token and ca.crt in sa_dir (NULL = the standard
 * /var/run/secrets/kubernetes.io/serviceaccount). 0 or -errno with *err. */
int kube_conn_incluster(const char *sa_dir, struct kube_conn **out, char **err);

/* A connection to server without any credentials (--master alone). */
struct kube_conn *kube_conn_plain(const char *server);

/* Replaces the server URL (--master). */
void kube_conn_set_server(struct kube_conn *c, const char *server);

/* Refreshes credentials that expire or rotate: when due (or when force,
 * e.g. after a 401) re-reads token_file and the certificate/key/CA files;
 * runs the exec plugin when its credential expired (or force). 0, or -errno
 * with *err (the previous credential then stays in use). */
int kube_conn_refresh(struct kube_conn *c, bool force, char **err);

/* Decodes standard base64 (whitespace ignored). 0 or -EINVAL. Caller frees. */
int kube_base64_decode(const char *in, char **out, size_t *out_len);

void kube_conn_free(struct kube_conn *c);

#endif
