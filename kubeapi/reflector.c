#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubeapi/http.h"
#include "kubeapi/kubeconfig.h"
#include "kubeapi/linesplit.h"
#include "kubeapi/reflector.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/strmap.h"
#include "src/util.h"

#define DEFAULT_MAX_LINE (16u << 20)
#define ERROR_BODY_MAX (64u << 10)
#define RETRY_AFTER_MAX_S 300

enum phase { PH_IDLE, PH_LIST, PH_WATCH };

struct reflector {
	struct loop *loop;
	struct http *http;
	struct kube_conn *conn;
	const struct reflector_ops *ops;
	void *arg;
	char *kind, *resource, *path, *query;
	size_t max_line, max_body;
	unsigned page_size, watch_timeout_s, backoff_min_ms, backoff_max_ms;

	enum phase phase;
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *connect_to;  /* tls-server-name: connect here, verify that name */
	char errbuf[CURL_ERROR_SIZE];
	long status;             /* of the current response, once known */
	struct strbuf body;      /* list page, or an error response */
	struct linesplit ls;
	bool expired;            /* 410 seen inside the watch stream */
	char *stream_err;        /* other in-stream problem */
	unsigned long long started_ms;
	unsigned events;         /* events in the current watch */

	char *rv;                /* last resourceVersion */
	char *cont;              /* list continue token */
	bool unpaged;            /* next list without limit (continue expired) */
	bool must_relist;        /* the watch cannot resume (oversized event) */
	struct strmap cache;     /* "ns/name" -> resourceVersion (char *) */
	struct strmap seen;      /* keys seen by the running list */
	bool synced;

	unsigned backoff_ms;     /* next failure's base delay */
	struct loop_timer *timer;
	uint64_t rng;
	struct reflector_stats stats;
};

static void start_list(struct reflector *r);
static void start_watch(struct reflector *r);

static uint64_t rnd(struct reflector *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

static char *obj_key(const json_t *obj, const char **ns, const char **name, const char **rv)
{
	const json_t *md = json_object_get(obj, "metadata");

	*ns = json_string_value(json_object_get(md, "namespace"));
	*name = json_string_value(json_object_get(md, "name"));
	*rv = json_string_value(json_object_get(md, "resourceVersion"));
	if (!*ns)
		*ns = "";
	if (!*name || !**name)
		return NULL;
	return **ns ? xasprintf("%s/%s", *ns, *name) : xstrdup(*name);
}

static void cache_set(struct reflector *r, const char *key, const char *rv)
{
	free(strmap_put(&r->cache, key, xstrdup(rv ? rv : "")));
}

static void set_rv(struct reflector *r, const char *rv)
{
	if (rv && *rv) {
		free(r->rv);
		r->rv = xstrdup(rv);
	}
}

/* Applies one listed or added/modified object. Returns true if applied. */
static bool apply_upsert(struct reflector *r, const json_t *obj, bool from_list)
{
	const char *ns, *name, *rv;
	char *key = obj_key(obj, &ns, &name, &rv), *err = NULL;
	const char *old;
	bool changed = false;

	if (!key) {
		log_warn("%s %s: object without metadata.name ignored", r->kind,
			 from_list ? "list" : "watch");
		return false;
	}
	if (from_list)
		strmap_put(&r->seen, key, (void *)1);
	old = strmap_get(&r->cache, key);
	if (old && rv && !strcmp(old, rv))
		goto out;        /* unchanged since we last applied it */
	if (r->ops->upsert(r->arg, obj, &err) < 0) {
		/* err names the object and the field. */
		if (err)
			log_warn("%s; ignoring it", err);
		else
			log_warn("%s %s: cannot decode; ignoring it", r->kind, key);
		free(err);
		r->ops->remove(r->arg, ns, name);
	}
	cache_set(r, key, rv);
	changed = true;
out:
	free(key);
	return changed;
}

static bool apply_delete(struct reflector *r, const json_t *obj)
{
	const char *ns, *name, *rv;
	char *key = obj_key(obj, &ns, &name, &rv);

	if (!key)
		return false;
	free(strmap_del(&r->cache, key));
	r->ops->remove(r->arg, ns, name);
	free(key);
	return true;
}

/* ---- requests ----------------------------------------------------------- */

static void end_request(struct reflector *r)
{
	if (r->easy) {
		http_cancel(r->http, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	curl_slist_free_all(r->connect_to);
	r->connect_to = NULL;
	sb_reset(&r->body);
	linesplit_reset(&r->ls);
	free_and_null(&r->stream_err);
	r->expired = false;
	r->status = 0;
	r->events = 0;
	r->phase = PH_IDLE;
}

static int on_line(void *arg, char *line, size_t len)
{
	struct reflector *r = arg;
	json_error_t jerr;
	json_t *ev = json_loadb(line, len, 0, &jerr), *obj;
	const char *type;
	bool changed = false;
	int ret = 0;

	if (!ev) {
		r->stream_err = xasprintf("malformed watch event (%s at column %d)", jerr.text,
					  jerr.column);
		return -EINVAL;
	}
	type = json_string_value(json_object_get(ev, "type"));
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		r->stream_err = xstrdup("watch event without type or object");
		ret = -EINVAL;
		goto out;
	}
	r->events++;
	if (!strcmp(type, "ERROR")) {
		json_t *code = json_object_get(obj, "code");
		const char *msg = json_string_value(json_object_get(obj, "message"));

		if (json_integer_value(code) == 410) {
			log_info("%s watch: %s (410 Gone); relisting", r->kind,
				 msg ? msg : "resourceVersion expired");
			r->expired = true;
		} else {
			r->stream_err = xasprintf("watch ERROR event: %s (code %lld)",
						  msg ? msg : "no message",
						  (long long)json_integer_value(code));
		}
		ret = -EPIPE;
		goto out;
	}
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
		changed = apply_upsert(r, obj, false);
	else if (!strcmp(type, "DELETED"))
		changed = apply_delete(r, obj);
	else if (strcmp(type, "BOOKMARK"))
		log_warn("%s watch: unknown event type %s ignored", r->kind, type);
	set_rv(r, json_string_value(json_object_get(json_object_get(obj, "metadata"),
						    "resourceVersion")));
	if (changed && r->ops->changed)
		r->ops->changed(r->arg);
out:
	json_decref(ev);
	return ret;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reflector *r = arg;
	size_t n = size * nmemb;
	int ret;

	if (!r->status)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status != 200 || r->phase == PH_LIST) {
		size_t lim = r->status == 200 ? r->max_body : ERROR_BODY_MAX;

		if (r->body.len + n > lim) {
			if (r->status != 200)
				return n;        /* keep the start of an error body */
			r->stream_err = xasprintf("list response larger than %zu bytes", lim);
			return 0;
		}
		sb_add(&r->body, data, n);
		return n;
	}
	ret = linesplit_feed(&r->ls, data, n, on_line, r);
	if (ret == -EMSGSIZE) {
		/* Re-watching would replay the same event: list instead. */
		r->stream_err = xasprintf("watch event larger than %zu bytes; relisting", r->max_line);
		r->must_relist = true;
		return 0;
	}
	return ret < 0 ? 0 : n;
}

/* tls-server-name: the name goes into the URL (SNI, certificate check)
 * while CURLOPT_CONNECT_TO keeps the connection on the server's address. */
static void set_url(struct reflector *r, CURL *e, const char *url)
{
	const char *name = r->conn->tls_server_name;
	CURLU *u;
	char *host = NULL, *port = NULL, *nurl = NULL;

	if (!name) {
		curl_easy_setopt(e, CURLOPT_URL, url);
		return;
	}
	u = curl_url();
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_HOST, name, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &nurl, 0) == CURLUE_OK) {
		char *ct = xasprintf("%s:%s:%s:%s", name, port, host, port);

		r->connect_to = curl_slist_append(NULL, ct);
		free(ct);
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, r->connect_to);
		curl_easy_setopt(e, CURLOPT_URL, nurl);
	} else {
		log_warn("%s: cannot apply tls-server-name %s to %s", r->kind, name, url);
		curl_easy_setopt(e, CURLOPT_URL, url);
	}
	curl_free(host);
	curl_free(port);
	curl_free(nurl);
	curl_url_cleanup(u);
}

static CURL *new_easy(struct reflector *r, const char *url)
{
	CURL *e = curl_easy_init();
	struct kube_conn *c = r->conn;
	char *err = NULL;

	if (!e)
		return NULL;
	if (kube_conn_refresh(c, false, &err) < 0) {
		log_error("%s; using the previous credential", err);
		free(err);
	}
	r->headers = curl_slist_append(NULL, "Accept: application/json");
	if (c->token) {
		char *h = xasprintf("Authorization: Bearer %s", c->token);

		r->headers = curl_slist_append(r->headers, h);
		explicit_bzero(h, strlen(h));
		free(h);
	}
	set_url(r, e, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "kube-proxy/v" PACKAGE_VERSION " (linux) kube-proxy-c");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	if (c->ca.data) {
		struct curl_blob b = { c->ca.data, c->ca.len, CURL_BLOB_COPY };

		curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (c->cert.data && c->key.data) {
		struct curl_blob cb = { c->cert.data, c->cert.len, CURL_BLOB_COPY };
		struct curl_blob kb = { c->key.data, c->key.len, CURL_BLOB_COPY };

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (c->proxy_url) {
		/* The kubeconfig's proxy wins over the environment, no_proxy too. */
		curl_easy_setopt(e, CURLOPT_PROXY, c->proxy_url);
		curl_easy_setopt(e, CURLOPT_NOPROXY, "");
	}
	if (c->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->username) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
	}
	r->errbuf[0] = '\0';
	return e;
}

static void on_done(CURL *easy, CURLcode rc, void *arg);

static void launch(struct reflector *r, enum phase ph, char *url)
{
	r->phase = ph;
	r->started_ms = now_ms();
	r->easy = new_easy(r, url);
	if (ph == PH_LIST) {
		curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_TIME, 60L);
	}
	log_v(4, "%s: GET %s", r->kind, url);
	free(url);
	if (!r->easy || http_start(r->http, r->easy, on_done, r) < 0) {
		log_error("%s: cannot start a request", r->kind);
		if (r->easy)
			curl_easy_cleanup(r->easy);
		r->easy = NULL;
		r->phase = PH_IDLE;
		loop_timer_arm(r->timer, r->backoff_max_ms);
	}
}

static void start_list(struct reflector *r)
{
	struct strbuf u;

	end_request(r);
	if (!r->cont)
		strmap_free(&r->seen);
	sb_init(&u);
	sb_printf(&u, "%s%s?", r->conn->server, r->path);
	if (r->query)
		sb_printf(&u, "%s&", r->query);
	if (!r->unpaged)
		sb_printf(&u, "limit=%u&", r->page_size);
	if (r->cont) {
		char *esc = curl_easy_escape(NULL, r->cont, 0);

		sb_printf(&u, "continue=%s&", esc);
		curl_free(esc);
	} else if (!r->synced) {
		/* Like client-go, the very first list may come from the API
		 * server's watch cache (cheap when thousands of nodes restart);
		 * relists are consistent reads. */
		sb_puts(&u, "resourceVersion=0&");
	}
	u.buf[--u.len] = '\0';
	launch(r, PH_LIST, sb_steal(&u));
}

static void start_watch(struct reflector *r)
{
	char *esc = curl_easy_escape(NULL, r->rv, 0);
	unsigned tmo = r->watch_timeout_s ? r->watch_timeout_s : 300 + (unsigned)(rnd(r) % 301);
	char *url = xasprintf("%s%s?%s%swatch=true&resourceVersion=%s&allowWatchBookmarks=true"
			      "&timeoutSeconds=%u", r->conn->server, r->path, r->query ? r->query : "",
			      r->query ? "&" : "", esc, tmo);

	curl_free(esc);
	end_request(r);
	r->stats.watches++;
	launch(r, PH_WATCH, url);
	/* The server ends the stream after timeoutSeconds; a stream that outlives
	 * that by a minute is dead (no FIN seen), give up on it. */
	if (r->easy)
		curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, (long)tmo + 60L);
}

/* Re-watches from the last version if we have one, else lists. */
static void resume(struct reflector *r)
{
	if (r->synced && r->rv && *r->rv && !r->must_relist)
		start_watch(r);
	else
		start_list(r);
}

static void on_timer(struct loop *l, struct loop_timer *t, void *arg)
{
	resume(arg);
}

/* ---- outcomes ----------------------------------------------------------- */

static char *status_message(struct reflector *r)
{
	json_t *j = r->body.len ? json_loadb(r->body.buf, r->body.len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(j, "message"));
	char *out;

	if (m)
		out = xstrdup(m);
	else if (r->body.len && r->body.len < 300 && !memchr(r->body.buf, '\n', r->body.len - 1))
		out = xstrndup(r->body.buf, r->body.len);
	else
		out = xstrdup("");
	json_decref(j);
	return out;
}

static const char *curl_hint(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return " (is the API server running and reachable?)";
	case CURLE_COULDNT_RESOLVE_HOST:
		return " (check the server name)";
	case CURLE_PEER_FAILED_VERIFICATION:
		return " (the server's certificate is not signed by the configured "
		       "certificate-authority, or its name does not match the server URL)";
	case CURLE_SSL_CERTPROBLEM:
		return " (the client certificate or key is unusable, or they do not match)";
	case CURLE_SSL_CACERT_BADFILE:
		return " (the certificate-authority data is not a usable PEM certificate)";
	case CURLE_SSL_CONNECT_ERROR:
		return " (TLS handshake failed; the server may have refused the client certificate)";
	default:
		return "";
	}
}

/* Logs the failure and schedules the retry. */
static void failed(struct reflector *r, CURLcode rc, const char *what)
{
	const char *verb = r->phase == PH_LIST ? "list" : "watch";
	unsigned long long delay;
	curl_off_t retry_after = 0;
	char *msg = NULL;

	r->stats.failures++;
	delay = r->backoff_ms + rnd(r) % (r->backoff_ms / 4 + 1);
	r->backoff_ms = r->backoff_ms * 2 > r->backoff_max_ms ? r->backoff_max_ms : r->backoff_ms * 2;
	if (what) {
		log_warn("Failed to %s %s: %s; retrying in %llums", verb, r->kind, what, delay);
	} else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && r->status && r->status != 200)) {
		log_warn("Failed to %s %s: %s%s; retrying in %llums", verb, r->kind,
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc), curl_hint(rc), delay);
	} else {
		msg = status_message(r);
		if (r->status == 429 || r->status == 503) {
			curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
			if (retry_after > RETRY_AFTER_MAX_S)
				retry_after = RETRY_AFTER_MAX_S;
			if (retry_after > 0)
				delay = (unsigned long long)retry_after * 1000;
		}
		if (r->status == 401) {
			char *err = NULL;

			log_error("Failed to %s %s: Unauthorized (HTTP 401%s%s): the API server rejected "
				  "the credentials from %s; reloading them, retrying in %llums",
				  verb, r->kind, *msg ? ": " : "", msg, r->conn->origin, delay);
			if (kube_conn_refresh(r->conn, true, &err) < 0) {
				log_error("%s", err);
				free(err);
			}
		} else if (r->status == 403) {
			log_error("Failed to %s %s: Forbidden (HTTP 403): %s; the user may not %s "
				  "resource \"%s\", retrying in %llums", verb, r->kind,
				  *msg ? msg : "no message", verb, r->resource, delay);
		} else {
			log_warn("Failed to %s %s: HTTP %ld%s%s; retrying in %llums%s", verb, r->kind,
				 r->status, *msg ? ": " : "", msg, delay,
				 retry_after > 0 ? " (Retry-After)" : "");
		}
	}
	free(msg);
	end_request(r);
	loop_timer_arm(r->timer, delay);
}

static void list_page(struct reflector *r)
{
	json_error_t jerr;
	json_t *j = json_loadb(r->body.buf, r->body.len, 0, &jerr), *items, *item;
	const json_t *md;
	const char *cont, *rv;
	bool changed = false;
	size_t i;

	items = json_object_get(j, "items");
	md = json_object_get(j, "metadata");
	if (!j || (!json_is_array(items) && !json_is_null(items) && items)) {
		char *w = j ? xstrdup("list response without items")
			    : xasprintf("list response is not JSON (%s)", jerr.text);

		json_decref(j);
		free_and_null(&r->cont);
		failed(r, CURLE_OK, w);
		free(w);
		return;
	}
	json_array_foreach(items, i, item)
		if (json_is_object(item) && apply_upsert(r, item, true))
			changed = true;
	cont = json_string_value(json_object_get(md, "continue"));
	rv = json_string_value(json_object_get(md, "resourceVersion"));
	if (cont && *cont) {
		free(r->cont);
		r->cont = xstrdup(cont);
		json_decref(j);
		if (changed && r->ops->changed)
			r->ops->changed(r->arg);
		start_list(r);
		return;
	}
	/* Complete: whatever the cache has that the list lacks was deleted
	 * while we were not watching. */
	{
		const char *k;
		void *v;
		char **gone = NULL;
		size_t n = 0;

		for (size_t it = 0; strmap_next(&r->cache, &it, &k, &v);)
			if (!strmap_get(&r->seen, k)) {
				gone = xrealloc(gone, (n + 1) * sizeof(*gone));
				gone[n++] = xstrdup(k);
			}
		for (size_t g = 0; g < n; g++) {
			char *slash = strchr(gone[g], '/');

			log_v(2, "%s %s vanished while not watching: deleting", r->kind, gone[g]);
			free(strmap_del(&r->cache, gone[g]));
			if (slash) {
				*slash = '\0';
				r->ops->remove(r->arg, gone[g], slash + 1);
			} else {
				r->ops->remove(r->arg, "", gone[g]);
			}
			free(gone[g]);
			changed = true;
		}
		free(gone);
	}
	free(r->rv);
	r->rv = xstrdup(rv ? rv : "");
	json_decref(j);
	free_and_null(&r->cont);
	strmap_free(&r->seen);
	r->unpaged = false;
	r->must_relist = false;
	r->synced = true;
	r->stats.lists++;
	r->backoff_ms = r->backoff_min_ms;
	log_v(2, "%s: listed %zu objects at resourceVersion %s", r->kind, r->cache.len, r->rv);
	if (changed && r->ops->changed)
		r->ops->changed(r->arg);
	if (r->ops->listed)
		r->ops->listed(r->arg);
	start_watch(r);
}

static void on_done(CURL *easy, CURLcode rc, void *arg)
{
	struct reflector *r = arg;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->phase == PH_LIST) {
		if (rc == CURLE_OK && r->status == 200) {
			list_page(r);
		} else if (rc == CURLE_OK && r->status == 410 && r->cont) {
			/* Expired continue token: start over, in one piece. */
			log_info("%s: list continue token expired; listing again without paging", r->kind);
			free_and_null(&r->cont);
			r->unpaged = true;
			start_list(r);
		} else {
			free_and_null(&r->cont);
			failed(r, rc, r->stream_err);
		}
		return;
	}
	/* Watch. */
	if (r->expired || (rc == CURLE_OK && r->status == 410)) {
		r->stats.relists_410++;
		if (!r->expired)
			log_info("%s watch: resourceVersion %s expired (HTTP 410); relisting", r->kind,
				 r->rv);
		start_list(r);
	} else if (rc == CURLE_OK && r->status == 200 && !r->stream_err) {
		bool quick = now_ms() - r->started_ms < 1000 && !r->events;

		if (linesplit_pending(&r->ls))
			log_warn("%s watch: stream ended inside an event; dropped %zu bytes", r->kind,
				 linesplit_pending(&r->ls));
		if (quick) {
			failed(r, rc, "watch ended at once without events");
		} else {
			log_v(3, "%s watch ended; watching again from %s", r->kind, r->rv);
			r->backoff_ms = r->backoff_min_ms;
			start_watch(r);
		}
	} else {
		failed(r, rc, r->stream_err);
	}
}

/* ---- lifetime ----------------------------------------------------------- */

struct reflector *reflector_new(struct loop *l, struct http *h, struct kube_conn *conn,
				const struct reflector_cfg *cfg, const struct reflector_ops *ops,
				void *arg)
{
	struct reflector *r = xcalloc(1, sizeof(*r));

	r->loop = l;
	r->http = h;
	r->conn = conn;
	r->ops = ops;
	r->arg = arg;
	r->kind = xstrdup(cfg->kind);
	r->resource = xstrdup(cfg->resource);
	r->path = xstrdup(cfg->path);
	r->query = cfg->query && *cfg->query ? xstrdup(cfg->query) : NULL;
	r->max_line = cfg->max_line ? cfg->max_line : DEFAULT_MAX_LINE;
	r->max_body = r->max_line * 16 + (1u << 20);
	r->page_size = cfg->page_size ? cfg->page_size : 500;
	r->watch_timeout_s = cfg->watch_timeout_s;
	r->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 800;
	r->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 30000;
	r->backoff_ms = r->backoff_min_ms;
	r->rng = now_ns() ^ (uintptr_t)r;
	if (!r->rng)
		r->rng = 1;
	sb_init(&r->body);
	linesplit_init(&r->ls, r->max_line);
	strmap_init(&r->cache);
	strmap_init(&r->seen);
	r->rv = xstrdup("");
	r->timer = loop_timer_new(l, on_timer, r);
	return r;
}

void reflector_start(struct reflector *r)
{
	start_list(r);
}

bool reflector_synced(const struct reflector *r)
{
	return r->synced;
}

const char *reflector_rv(const struct reflector *r)
{
	return r->rv;
}

void reflector_get_stats(const struct reflector *r, struct reflector_stats *out)
{
	*out = r->stats;
}

void reflector_free(struct reflector *r)
{
	const char *k;
	void *v;

	if (!r)
		return;
	end_request(r);
	loop_timer_free(r->timer);
	for (size_t i = 0; strmap_next(&r->cache, &i, &k, &v);)
		free(v);
	strmap_free(&r->cache);
	strmap_free(&r->seen);
	sb_free(&r->body);
	linesplit_free(&r->ls);
	free(r->kind);
	free(r->resource);
	free(r->path);
	free(r->query);
	free(r->rv);
	free(r->cont);
	free(r);
}
