#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kubeapi/kubeconfig.h"
#include "src/log.h"
#include "src/util.h"
#include "src/yamljson.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define EXEC_TIMEOUT_MS 10000
#define EXEC_MAX_OUTPUT (1 << 20)

extern char **environ;

struct kube_exec {
	char *api_version;
	char **argv;             /* command first, NULL terminated */
	char **env;              /* "NAME=value" additions, NULL terminated */
	char *install_hint;
	char *dir;               /* for a relative command path */
	char *user;              /* users[] name, for messages */
	bool cluster_info;       /* provideClusterInfo: pass spec.cluster */
	bool have;               /* a credential was obtained */
	double expires;          /* wall time; 0 = does not expire */
};

static void blob_free(struct kube_blob *b)
{
	if (b->data)
		explicit_bzero(b->data, b->len);
	free(b->data);
	free(b->path);
	b->data = NULL;
	b->path = NULL;
	b->len = 0;
}

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void exec_free(struct kube_exec *e)
{
	if (!e)
		return;
	free(e->api_version);
	strv_free(e->argv);
	strv_free(e->env);
	free(e->install_hint);
	free(e->dir);
	free(e->user);
	free(e);
}

void kube_conn_free(struct kube_conn *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->origin);
	blob_free(&c->ca);
	blob_free(&c->cert);
	blob_free(&c->key);
	free(c->tls_server_name);
	free(c->proxy_url);
	free(c->username);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	exec_free(c->exec);
	free(c);
}

static int b64val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

int kube_base64_decode(const char *in, char **out, size_t *out_len)
{
	size_t n = strlen(in), o = 0, pad = 0, quad = 0;
	char *buf = xmalloc(n / 4 * 3 + 4);
	unsigned acc = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		if (ch == '=') {
			pad++;
			quad++;
			if (pad > 2)
				goto bad;
			continue;
		}
		if (pad)
			goto bad;        /* data after padding */
		v = b64val(ch);
		if (v < 0)
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		quad++;
		if (quad % 4 == 0) {
			buf[o++] = (char)(acc >> 16);
			buf[o++] = (char)(acc >> 8);
			buf[o++] = (char)acc;
			acc = 0;
		}
	}
	/* Unpadded tails are accepted like Go's StdEncoding would not; be lenient
	 * only about missing '=' (common in hand-made files). */
	switch ((quad - pad) % 4) {
	case 0:
		if (pad)
			goto bad;
		break;
	case 1:
		goto bad;
	case 2:
		if (pad && pad != 2)
			goto bad;
		buf[o++] = (char)(acc >> 4);
		break;
	case 3:
		if (pad && pad != 1)
			goto bad;
		buf[o++] = (char)(acc >> 10);
		buf[o++] = (char)(acc >> 2);
		break;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

static char *base64_encode(const char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* ---- JSON helpers that produce messages naming the field ---------------- */

struct ctx {
	const char *origin;
	const char *dir;
	char **err;
};

static int get_str(struct ctx *x, const json_t *obj, const char *key, const char *where,
		   const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		*x->err = xasprintf("%s: %s.%s: must be a string", x->origin, where, key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	if (!**out)
		*out = NULL;
	return 0;
}

static int get_bool(struct ctx *x, const json_t *obj, const char *key, const char *where, bool *out)
{
	json_t *v = json_object_get(obj, key);

	*out = false;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_string(v) && (!strcmp(json_string_value(v), "true") ||
				  !strcmp(json_string_value(v), "false"))) {
		*out = !strcmp(json_string_value(v), "true");
		return 0;
	}
	*x->err = xasprintf("%s: %s.%s: must be true or false", x->origin, where, key);
	return -EINVAL;
}

static char *resolve_path(const char *dir, const char *p)
{
	if (p[0] == '/' || !dir || !*dir)
		return xstrdup(p);
	return xasprintf("%s/%s", dir, p);
}

/* Loads PEM material from "<key>-data" (base64) or "<key>" (a file). */
static int get_pem(struct ctx *x, const json_t *obj, const char *key, const char *where,
		   struct kube_blob *out)
{
	char *dkey = xasprintf("%s-data", key);
	const char *data, *file;
	int r;

	r = get_str(x, obj, dkey, where, &data);
	if (r < 0)
		goto out;
	r = get_str(x, obj, key, where, &file);
	if (r < 0)
		goto out;
	if (data) {
		r = kube_base64_decode(data, &out->data, &out->len);
		if (r < 0)
			*x->err = xasprintf("%s: %s.%s: bad base64", x->origin, where, dkey);
	} else if (file) {
		char *path = resolve_path(x->dir, file);

		r = read_file(path, &out->data, &out->len);
		if (r < 0) {
			*x->err = xasprintf("%s: %s.%s: cannot read %s: %s", x->origin, where, key,
					    path, strerror(-r));
			free(path);
		} else {
			out->path = path;
		}
	}
out:
	free(dkey);
	return r;
}

/* Finds the entry called name in root[list]; *out = its inner mapping (NULL
 * when the entry has none: every field then reads as absent). */
static bool find_named(const json_t *root, const char *list, const char *name,
		       const char *inner, const json_t **out)
{
	const json_t *arr = json_object_get(root, list), *e;
	size_t i;

	*out = NULL;
	if (!json_is_array(arr))
		return false;
	json_array_foreach(arr, i, e) {
		const json_t *n = json_object_get(e, "name");

		if (json_is_string(n) && !strcmp(json_string_value(n), name)) {
			const json_t *v = json_object_get(e, inner);

			*out = json_is_object(v) ? v : NULL;
			return true;
		}
	}
	return false;
}

static int parse_exec(struct ctx *x, const json_t *ex, const char *where, const char *user,
		      struct kube_exec **out)
{
	struct kube_exec *e = xcalloc(1, sizeof(*e));
	const char *cmd, *apiv, *hint, *imode;
	const json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env"), *v;
	size_t i, n = 0;
	int r;

	if ((r = get_str(x, ex, "command", where, &cmd)) < 0 ||
	    (r = get_str(x, ex, "apiVersion", where, &apiv)) < 0 ||
	    (r = get_str(x, ex, "installHint", where, &hint)) < 0 ||
	    (r = get_str(x, ex, "interactiveMode", where, &imode)) < 0 ||
	    (r = get_bool(x, ex, "provideClusterInfo", where, &e->cluster_info)) < 0)
		goto fail;
	r = -EINVAL;
	if (imode && !strcmp(imode, "Always")) {
		*x->err = xasprintf("%s: %s.interactiveMode: Always is impossible for a daemon "
				    "(no terminal); use Never or IfAvailable", x->origin, where);
		goto fail;
	}
	if (!cmd) {
		*x->err = xasprintf("%s: %s.command: missing", x->origin, where);
		goto fail;
	}
	if (!apiv || (strcmp(apiv, "client.authentication.k8s.io/v1") &&
		      strcmp(apiv, "client.authentication.k8s.io/v1beta1"))) {
		*x->err = xasprintf("%s: %s.apiVersion: \"%s\" is not supported "
				    "(client.authentication.k8s.io/v1 or v1beta1)",
				    x->origin, where, apiv ? apiv : "");
		goto fail;
	}
	if (args && !json_is_array(args) && !json_is_null(args)) {
		*x->err = xasprintf("%s: %s.args: must be a list of strings", x->origin, where);
		goto fail;
	}
	e->argv = xcalloc(json_array_size(args) + 2, sizeof(char *));
	e->argv[n++] = xstrdup(cmd);
	json_array_foreach(args, i, v) {
		if (!json_is_string(v)) {
			*x->err = xasprintf("%s: %s.args[%zu]: must be a string", x->origin, where, i);
			goto fail;
		}
		e->argv[n++] = xstrdup(json_string_value(v));
	}
	if (env && !json_is_array(env) && !json_is_null(env)) {
		*x->err = xasprintf("%s: %s.env: must be a list of {name, value}", x->origin, where);
		goto fail;
	}
	e->env = xcalloc(json_array_size(env) + 1, sizeof(char *));
	n = 0;
	json_array_foreach(env, i, v) {
		const json_t *nm = json_object_get(v, "name"), *val = json_object_get(v, "value");

		if (!json_is_string(nm) || !*json_string_value(nm) || strchr(json_string_value(nm), '=') ||
		    (val && !json_is_string(val))) {
			*x->err = xasprintf("%s: %s.env[%zu]: needs a string name and value",
					    x->origin, where, i);
			goto fail;
		}
		e->env[n++] = xasprintf("%s=%s", json_string_value(nm),
					val ? json_string_value(val) : "");
	}
	e->api_version = xstrdup(apiv);
	e->install_hint = hint ? xstrdup(hint) : NULL;
	e->dir = xstrdup(x->dir ? x->dir : ".");
	e->user = xstrdup(user);
	*out = e;
	return 0;
fail:
	exec_free(e);
	return r;
}

static int parse_user(struct ctx *x, const json_t *u, const char *name, struct kube_conn *c)
{
	char *where = xasprintf("users[%s].user", name);
	const char *tok, *tokfile, *s;
	const json_t *ex;
	int r;

	if ((r = get_pem(x, u, "client-certificate", where, &c->cert)) < 0 ||
	    (r = get_pem(x, u, "client-key", where, &c->key)) < 0)
		goto out;
	r = -EINVAL;
	if (!!c->cert.data != !!c->key.data) {
		*x->err = xasprintf("%s: %s: client-certificate and client-key must be given together",
				    x->origin, where);
		goto out;
	}
	if ((r = get_str(x, u, "token", where, &tok)) < 0 ||
	    (r = get_str(x, u, "tokenFile", where, &tokfile)) < 0)
		goto out;
	if (tok)
		c->token = xstrdup(tok);
	if (tokfile)
		c->token_file = resolve_path(x->dir, tokfile);
	if ((r = get_str(x, u, "username", where, &s)) < 0)
		goto out;
	if (s) {
		c->username = xstrdup(s);
		if ((r = get_str(x, u, "password", where, &s)) < 0)
			goto out;
		c->password = xstrdup(s ? s : "");
	}
	ex = json_object_get(u, "exec");
	if (ex && !json_is_null(ex)) {
		char *w = xasprintf("%s.exec", where);

		if (!json_is_object(ex)) {
			*x->err = xasprintf("%s: %s: must be a mapping", x->origin, w);
			r = -EINVAL;
		} else {
			r = parse_exec(x, ex, w, name, &c->exec);
		}
		free(w);
		if (r < 0)
			goto out;
	}
	if (json_object_get(u, "auth-provider")) {
		*x->err = xasprintf("%s: %s.auth-provider: not supported (use an exec plugin)",
				    x->origin, where);
		r = -ENOTSUP;
		goto out;
	}
	r = 0;
out:
	free(where);
	return r;
}

int kubeconfig_parse(const char *text, size_t len, const char *dir, const char *origin,
		     const char *context, struct kube_conn **out, char **err)
{
	struct ctx x = { .origin = origin, .dir = dir, .err = err };
	struct kube_conn *c = xcalloc(1, sizeof(*c));
	json_t *docs, *root;
	const json_t *ctxo, *cl, *us;
	const char *cur, *clname, *uname, *server, *tsn, *proxy;
	char *perr = NULL, *where = NULL;
	int r = -EINVAL;

	*out = NULL;
	*err = NULL;
	docs = yaml_to_json(text, len, &perr);
	if (!docs) {
		*err = xasprintf("%s: %s", origin, perr);
		free(perr);
		kube_conn_free(c);
		return -EINVAL;
	}
	root = json_array_get(docs, 0);
	if (!json_is_object(root)) {
		*err = xasprintf("%s: not a kubeconfig (expected a mapping with clusters, users, contexts)",
				 origin);
		goto out;
	}
	cur = context;
	if (!cur && (r = get_str(&x, root, "current-context", "", &cur)) < 0)
		goto out;
	r = -EINVAL;
	if (!cur) {
		*err = xasprintf("%s: no current-context is set", origin);
		goto out;
	}
	if (!find_named(root, "contexts", cur, "context", &ctxo)) {
		*err = xasprintf("%s: context \"%s\" not found in contexts", origin, cur);
		goto out;
	}
	where = xasprintf("contexts[%s].context", cur);
	if ((r = get_str(&x, ctxo, "cluster", where, &clname)) < 0 ||
	    (r = get_str(&x, ctxo, "user", where, &uname)) < 0)
		goto out;
	r = -EINVAL;
	if (!clname) {
		*err = xasprintf("%s: %s.cluster: missing", origin, where);
		goto out;
	}
	if (!find_named(root, "clusters", clname, "cluster", &cl)) {
		*err = xasprintf("%s: %s.cluster: cluster \"%s\" not found in clusters", origin, where,
				 clname);
		goto out;
	}
	free(where);
	where = xasprintf("clusters[%s].cluster", clname);
	if ((r = get_str(&x, cl, "server", where, &server)) < 0 ||
	    (r = get_bool(&x, cl, "insecure-skip-tls-verify", where, &c->insecure)) < 0 ||
	    (r = get_str(&x, cl, "tls-server-name", where, &tsn)) < 0 ||
	    (r = get_str(&x, cl, "proxy-url", where, &proxy)) < 0 ||
	    (r = get_pem(&x, cl, "certificate-authority", where, &c->ca)) < 0)
		goto out;
	r = -EINVAL;
	if (!server) {
		*err = xasprintf("%s: %s.server: missing", origin, where);
		goto out;
	}
	if (!str_has_prefix(server, "https://") && !str_has_prefix(server, "http://")) {
		*err = xasprintf("%s: %s.server: \"%s\" is not an http(s) URL", origin, where, server);
		goto out;
	}
	/* client-go's schemes; curl would take more (and guess without one). */
	if (proxy && !str_has_prefix(proxy, "http://") && !str_has_prefix(proxy, "https://") &&
	    !str_has_prefix(proxy, "socks5://")) {
		*err = xasprintf("%s: %s.proxy-url: \"%s\" is not an http, https or socks5 URL", origin,
				 where, proxy);
		goto out;
	}
	kube_conn_set_server(c, server);
	c->tls_server_name = tsn ? xstrdup(tsn) : NULL;
	c->proxy_url = proxy ? xstrdup(proxy) : NULL;
	if (uname) {
		if (!find_named(root, "users", uname, "user", &us)) {
			*err = xasprintf("%s: contexts[%s].context.user: user \"%s\" not found in users",
					 origin, cur, uname);
			goto out;
		}
		r = parse_user(&x, us, uname, c);
		if (r < 0)
			goto out;
	}
	c->origin = xstrdup(origin);
	c->token_reload_ms = 60000;
	*out = c;
	c = NULL;
	r = 0;
out:
	free(where);
	kube_conn_free(c);
	json_decref(docs);
	return r;
}

int kubeconfig_load(const char *path, const char *context, struct kube_conn **out, char **err)
{
	char *text = NULL, *dir, *slash;
	size_t len;
	int r;

	*out = NULL;
	r = read_file(path, &text, &len);
	if (r < 0) {
		*err = xasprintf("cannot read kubeconfig %s: %s", path, strerror(-r));
		return r;
	}
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	else
		strcpy(dir, ".");
	r = kubeconfig_parse(text, len, dir, path, context, out, err);
	free(dir);
	free(text);
	return r;
}

void kube_conn_set_server(struct kube_conn *c, const char *server)
{
	size_t n = strlen(server);

	while (n && server[n - 1] == '/')
		n--;
	free(c->server);
	c->server = xstrndup(server, n);
}

struct kube_conn *kube_conn_plain(const char *server)
{
	struct kube_conn *c = xcalloc(1, sizeof(*c));

	kube_conn_set_server(c, server);
	c->origin = xstrdup("--master");
	c->token_reload_ms = 60000;
	return c;
}

int kube_conn_incluster(const char *sa_dir, struct kube_conn **out, char **err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	struct kube_conn *c;
	char *ca;
	int r;

	*out = NULL;
	if (!host || !*host || !port || !*port) {
		*err = xstrdup("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
			       "KUBERNETES_SERVICE_PORT must be defined (or give --kubeconfig or --master)");
		return -ENOENT;
	}
	if (!sa_dir)
		sa_dir = SA_DIR;
	c = xcalloc(1, sizeof(*c));
	c->server = strchr(host, ':') ? xasprintf("https://[%s]:%s", host, port)
				      : xasprintf("https://%s:%s", host, port);
	c->origin = xstrdup("in-cluster config");
	c->token_file = xasprintf("%s/token", sa_dir);
	c->token_reload_ms = 60000;
	ca = xasprintf("%s/ca.crt", sa_dir);
	r = read_file(ca, &c->ca.data, &c->ca.len);
	if (r < 0) {
		*err = xasprintf("in-cluster config: cannot read %s: %s", ca, strerror(-r));
		goto fail;
	}
	c->ca.path = ca;
	ca = NULL;
	r = kube_conn_refresh(c, true, err);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	free(ca);
	kube_conn_free(c);
	return r;
}

/* ---- exec credential plugins -------------------------------------------- */

/* Parses RFC 3339 ("2026-11-27T08:00:00Z", "...05.123+01:00"). */
static int parse_rfc3339(const char *s, double *out)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	double frac = 0;
	long off = 0;
	time_t t;

	if (!p)
		return -EINVAL;
	if (*p == '.') {
		char *end;

		frac = strtod(p, &end);
		p = end;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
			return -EINVAL;
		off = (hh * 60L + mm) * 60L * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = (double)t - (double)off + frac;
	return 0;
}

/* True if "NAME=..." entry env names one of the "NAME=value" strings in set. */
static bool env_overridden(const char *env, char *const *set)
{
	size_t n = strcspn(env, "=");

	for (size_t i = 0; set[i]; i++)
		if (!strncmp(set[i], env, n) && set[i][n] == '=')
			return true;
	return false;
}

/* Runs the plugin without a shell, blocking for at most EXEC_TIMEOUT_MS
 * (credentials are needed before any request can go out); returns its
 * stdout (bounded) or -errno. */
/* KUBERNETES_EXEC_INFO: the ExecCredential request, with spec.cluster when
 * the plugin asked for it (provideClusterInfo). Caller frees. */
static char *exec_info(const struct kube_conn *c)
{
	const struct kube_exec *e = c->exec;
	json_t *spec = json_pack("{s:b}", "interactive", 0), *info;
	char *js, *env;

	if (e->cluster_info) {
		json_t *cl = json_pack("{s:s, s:b}", "server", c->server, "insecure-skip-tls-verify",
				       c->insecure);

		if (c->ca.data) {
			char *b64 = base64_encode(c->ca.data, c->ca.len);

			json_object_set_new(cl, "certificate-authority-data", json_string(b64));
			free(b64);
		}
		if (c->tls_server_name)
			json_object_set_new(cl, "tls-server-name", json_string(c->tls_server_name));
		if (c->proxy_url)
			json_object_set_new(cl, "proxy-url", json_string(c->proxy_url));
		json_object_set_new(spec, "cluster", cl);
	}
	info = json_pack("{s:s, s:s, s:o}", "apiVersion", e->api_version, "kind", "ExecCredential",
			 "spec", spec);
	js = json_dumps(info, JSON_COMPACT);
	env = xasprintf("KUBERNETES_EXEC_INFO=%s", js);
	free(js);
	json_decref(info);
	return env;
}

static int exec_run(const struct kube_conn *c, char **out, char **err)
{
	const struct kube_exec *e = c->exec;
	int pfd[2], efd[2], status, r = 0, exec_errno = 0;
	struct strbuf sb;
	char *info, *cmd;
	size_t nenv = 0, nadd = 0, k = 0;
	char **envp;
	pid_t pid;
	unsigned long long deadline = now_ms() + EXEC_TIMEOUT_MS;

	while (environ[nenv])
		nenv++;
	while (e->env[nadd])
		nadd++;
	/* The plugin's env entries and KUBERNETES_EXEC_INFO replace inherited
	 * variables of the same name (no duplicates: shells take the last). */
	envp = xcalloc(nenv + nadd + 2, sizeof(char *));
	info = exec_info(c);
	envp[k++] = info;
	for (size_t i = 0; i < nadd; i++)
		envp[k++] = e->env[i];
	for (size_t i = 0; i < nenv; i++)
		if (!env_overridden(environ[i], envp))
			envp[k++] = environ[i];
	/* A command with a slash but not absolute is relative to the kubeconfig. */
	cmd = strchr(e->argv[0], '/') && e->argv[0][0] != '/'
		      ? xasprintf("%s/%s", e->dir, e->argv[0]) : xstrdup(e->argv[0]);
	/* pfd carries the plugin's stdout; efd the errno of a failed execvpe
	 * (close-on-exec, so it stays empty when the plugin runs). */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = -errno;
		*err = xasprintf("exec plugin %s: pipe: %s", e->argv[0], strerror(errno));
		goto out_free;
	}
	if (pipe2(efd, O_CLOEXEC) < 0) {
		r = -errno;
		*err = xasprintf("exec plugin %s: pipe: %s", e->argv[0], strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		goto out_free;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		*err = xasprintf("exec plugin %s: fork: %s", e->argv[0], strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		close(efd[0]);
		close(efd[1]);
		goto out_free;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		sigset_t none;

		/* The daemon blocks signals for its signalfd; the plugin must not
		 * inherit that. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		execvpe(cmd, e->argv, envp);
		exec_errno = errno;
		if (write(efd[1], &exec_errno, sizeof(exec_errno)) < 0)
			exec_errno = 0;
		free(cmd);
		free(info);
		free(envp);
		_exit(127);
	}
	close(pfd[1]);
	close(efd[1]);
	sb_init(&sb);
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		unsigned long long now = now_ms();
		char buf[4096];
		ssize_t n;
		int pr;

		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		pr = poll(&p, 1, (int)(deadline - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (sb.len + (size_t)n > EXEC_MAX_OUTPUT) {
			r = -EMSGSIZE;
			break;
		}
		sb_add(&sb, buf, (size_t)n);
	}
	close(pfd[0]);
	if (r < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == -ETIMEDOUT) {
		*err = xasprintf("exec plugin %s: no answer within %d s", e->argv[0],
				 EXEC_TIMEOUT_MS / 1000);
	} else if (r < 0) {
		*err = xasprintf("exec plugin %s: output larger than %d bytes", e->argv[0],
				 EXEC_MAX_OUTPUT);
	} else if (read(efd[0], &exec_errno, sizeof(exec_errno)) == (ssize_t)sizeof(exec_errno)) {
		r = -exec_errno;
		*err = xasprintf("exec plugin %s: cannot run it: %s%s%s", cmd, strerror(exec_errno),
				 e->install_hint ? ": " : "", e->install_hint ? e->install_hint : "");
	} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		r = -EIO;
		*err = xasprintf("exec plugin %s: failed (%s %d)", e->argv[0],
				 WIFEXITED(status) ? "exit status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	close(efd[0]);
	if (r < 0)
		sb_free(&sb);
	else
		*out = sb_steal(&sb);
out_free:
	free(cmd);
	free(info);
	free(envp);
	return r;
}

static int exec_refresh(struct kube_conn *c, bool force, char **err)
{
	struct kube_exec *e = c->exec;
	json_t *j = NULL, *st;
	json_error_t jerr;
	char *outp = NULL;
	const char *tok = NULL, *cert = NULL, *key = NULL, *exp = NULL, *kind, *apiv;
	double expires = 0;
	int r;

	if (!force && e->have && (e->expires == 0 || wall_time() + 10 < e->expires))
		return 0;
	r = exec_run(c, &outp, err);
	if (r < 0)
		return r;
	r = -EINVAL;
	j = json_loads(outp, 0, &jerr);
	if (!json_is_object(j)) {
		*err = xasprintf("exec plugin %s (user %s): output is not a JSON ExecCredential",
				 e->argv[0], e->user);
		goto out;
	}
	kind = json_string_value(json_object_get(j, "kind"));
	apiv = json_string_value(json_object_get(j, "apiVersion"));
	if (!kind || strcmp(kind, "ExecCredential") || !apiv || strcmp(apiv, e->api_version)) {
		*err = xasprintf("exec plugin %s (user %s): expected kind ExecCredential, apiVersion %s",
				 e->argv[0], e->user, e->api_version);
		goto out;
	}
	st = json_object_get(j, "status");
	if (json_is_object(st)) {
		tok = json_string_value(json_object_get(st, "token"));
		cert = json_string_value(json_object_get(st, "clientCertificateData"));
		key = json_string_value(json_object_get(st, "clientKeyData"));
		exp = json_string_value(json_object_get(st, "expirationTimestamp"));
	}
	if (!(tok && *tok) && !(cert && *cert && key && *key)) {
		*err = xasprintf("exec plugin %s (user %s): status has neither token nor "
				 "clientCertificateData+clientKeyData", e->argv[0], e->user);
		goto out;
	}
	if (exp && *exp && parse_rfc3339(exp, &expires) < 0) {
		*err = xasprintf("exec plugin %s (user %s): status.expirationTimestamp \"%s\" is not RFC 3339",
				 e->argv[0], e->user, exp);
		goto out;
	}
	if (tok && *tok) {
		if (c->token)
			explicit_bzero(c->token, strlen(c->token));
		free(c->token);
		c->token = xstrdup(tok);
	}
	if (cert && *cert && key && *key) {
		blob_free(&c->cert);
		blob_free(&c->key);
		c->cert.data = xstrdup(cert);
		c->cert.len = strlen(cert);
		c->key.data = xstrdup(key);
		c->key.len = strlen(key);
	}
	e->have = true;
	e->expires = expires;
	log_v(2, "exec plugin %s (user %s): credential obtained%s%s", e->argv[0], e->user,
	      exp ? ", expires " : "", exp ? exp : "");
	r = 0;
out:
	if (outp)
		explicit_bzero(outp, strlen(outp));
	free(outp);
	json_decref(j);
	return r;
}

/* Re-reads a file-based blob; keeps the old content when the file cannot
 * be read (it may be mid-rotation). */
static void reload_blob(struct kube_conn *c, struct kube_blob *b, const char *what)
{
	char *data;
	size_t len;
	int r;

	if (!b->path)
		return;
	r = read_file(b->path, &data, &len);
	if (r < 0) {
		log_warn("%s: cannot re-read %s %s: %s; keeping the loaded one", c->origin, what,
			 b->path, strerror(-r));
		return;
	}
	if (len == b->len && !memcmp(data, b->data, len)) {
		explicit_bzero(data, len);
		free(data);
		return;
	}
	explicit_bzero(b->data, b->len);
	free(b->data);
	b->data = data;
	b->len = len;
	log_info("%s: reloaded %s from %s", c->origin, what, b->path);
}

int kube_conn_refresh(struct kube_conn *c, bool force, char **err)
{
	bool due = force || !c->token_read_ms || now_ms() - c->token_read_ms >= c->token_reload_ms;

	*err = NULL;
	if (due) {
		reload_blob(c, &c->ca, "certificate-authority");
		reload_blob(c, &c->cert, "client-certificate");
		reload_blob(c, &c->key, "client-key");
		if (!c->token_file)
			c->token_read_ms = now_ms();
	}
	if (c->exec)
		return exec_refresh(c, force, err);
	if (c->token_file && due) {
		char *tok = NULL;
		size_t len;
		int r = read_file(c->token_file, &tok, &len);

		if (r < 0) {
			*err = xasprintf("%s: cannot read token file %s: %s", c->origin, c->token_file,
					 strerror(-r));
			return r;
		}
		while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
			tok[--len] = '\0';
		if (!len) {
			*err = xasprintf("%s: token file %s is empty", c->origin, c->token_file);
			free(tok);
			return -EINVAL;
		}
		if (c->token)
			explicit_bzero(c->token, strlen(c->token));
		free(c->token);
		c->token = tok;
		c->token_read_ms = now_ms();
	}
	return 0;
}
