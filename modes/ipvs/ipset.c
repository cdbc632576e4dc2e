/* ipsets through libipset: restore-style batches parsed in-process. */
#include "config.h"

#include "ipset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libipset/ipset.h>

#include "log.h"
#include "util.h"

struct set_def {
	const char *name;        /* without the "KUBE-" / "KUBE-6-" prefix */
	const char *type;
	const char *comment;
};

/* Upstream's sets (pkg/proxy/ipvs/ipset.go). */
static const struct set_def defs[SET_COUNT] = {
	[SET_CLUSTER_IP] = { "CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose" },
	[SET_LOOP_BACK] = { "LOOP-BACK", "hash:ip,port,ip", "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" },
	[SET_EXTERNAL_IP] = { "EXTERNAL-IP", "hash:ip,port", "Kubernetes service external ip + port for masquerade and filter purpose" },
	[SET_EXTERNAL_IP_LOCAL] = { "EXTERNAL-IP-LOCAL", "hash:ip,port", "Kubernetes service external ip + port with externalTrafficPolicy=local" },
	[SET_LOAD_BALANCER] = { "LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal" },
	[SET_LOAD_BALANCER_LOCAL] = { "LOAD-BALANCER-LOCAL", "hash:ip,port", "Kubernetes service load balancer ip + port with externalTrafficPolicy=local" },
	[SET_LOAD_BALANCER_FW] = { "LOAD-BALANCER-FW", "hash:ip,port", "Kubernetes service load balancer ip + port for load balancer with sourceRange" },
	[SET_LOAD_BALANCER_SOURCE_IP] = { "LOAD-BALANCER-SOURCE-IP", "hash:ip,port,ip", "Kubernetes service load balancer ip + port + source IP for packet filter purpose" },
	[SET_LOAD_BALANCER_SOURCE_CIDR] = { "LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net", "Kubernetes service load balancer ip + port + source cidr for packet filter purpose" },
	[SET_NODE_PORT_TCP] = { "NODE-PORT-TCP", "bitmap:port", "Kubernetes nodeport TCP port for masquerade purpose" },
	[SET_NODE_PORT_LOCAL_TCP] = { "NODE-PORT-LOCAL-TCP", "bitmap:port", "Kubernetes nodeport TCP port with externalTrafficPolicy=local" },
	[SET_NODE_PORT_UDP] = { "NODE-PORT-UDP", "bitmap:port", "Kubernetes nodeport UDP port for masquerade purpose" },
	[SET_NODE_PORT_LOCAL_UDP] = { "NODE-PORT-LOCAL-UDP", "bitmap:port", "Kubernetes nodeport UDP port with externalTrafficPolicy=local" },
	[SET_NODE_PORT_SCTP] = { "NODE-PORT-SCTP-HASH", "hash:ip,port", "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" },
	[SET_NODE_PORT_LOCAL_SCTP] = { "NODE-PORT-LOCAL-SCTP-HASH", "hash:ip,port", "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" },
	[SET_HEALTH_CHECK_NODE_PORT] = { "HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port" },
	[SET_IPVS_IPS] = { "IPVS-IPS", "hash:ip", "IPVS service addresses" },
};

struct strvec {
	char **v;
	size_t n, cap;
};

struct kp_sets {
	uint8_t family;
	struct strvec want[SET_COUNT];
	struct strvec applied[SET_COUNT];
	bool have_applied;
};

const char *kp_set_name(enum kp_set s, uint8_t family, char *buf, size_t len)
{
	snprintf(buf, len, "KUBE-%s%s", family == AF_INET6 ? "6-" : "", defs[s].name);
	return buf;
}

static void sv_push(struct strvec *sv, char *s)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 16;
		sv->v = xrealloc(sv->v, sv->cap * sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
}

static void sv_clear(struct strvec *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	sv->n = 0;
}

static void sv_free(struct strvec *sv)
{
	sv_clear(sv);
	free(sv->v);
	sv->v = NULL;
	sv->cap = 0;
}

/* Sorts and removes duplicates. */
static void sv_sort_uniq(struct strvec *sv)
{
	size_t j = 0;

	if (sv->n < 2)
		return;
	qsort(sv->v, sv->n, sizeof(*sv->v), cmp_strp);
	for (size_t i = 1; i < sv->n; i++) {
		if (strcmp(sv->v[i], sv->v[j]) == 0)
			free(sv->v[i]);
		else
			sv->v[++j] = sv->v[i];
	}
	sv->n = j + 1;
}

struct kp_sets *kp_sets_new(uint8_t family)
{
	struct kp_sets *k = xcalloc(1, sizeof(*k));

	k->family = family;
	return k;
}

void kp_sets_free(struct kp_sets *k)
{
	if (!k)
		return;
	for (int s = 0; s < SET_COUNT; s++) {
		sv_free(&k->want[s]);
		sv_free(&k->applied[s]);
	}
	free(k);
}

void kp_sets_clear(struct kp_sets *k)
{
	for (int s = 0; s < SET_COUNT; s++)
		sv_clear(&k->want[s]);
}

void kp_sets_add(struct kp_sets *k, enum kp_set s, const char *entry)
{
	sv_push(&k->want[s], xstrdup(entry));
}

static void create_line(struct strbuf *sb, enum kp_set s, const char *name, uint8_t family)
{
	if (strcmp(defs[s].type, "bitmap:port") == 0)
		sb_printf(sb, "create %s %s range 0-65535\n", name, defs[s].type);
	else
		sb_printf(sb, "create %s %s family %s hashsize 1024 maxelem 65536\n", name, defs[s].type,
			  family == AF_INET6 ? "inet6" : "inet");
}

void kp_sets_render(struct kp_sets *k, FILE *out)
{
	struct strbuf sb;
	char name[32];

	sb_init(&sb);
	for (int s = 0; s < SET_COUNT; s++) {
		sv_sort_uniq(&k->want[s]);
		kp_set_name(s, k->family, name, sizeof(name));
		create_line(&sb, s, name, k->family);
		for (size_t i = 0; i < k->want[s].n; i++)
			sb_printf(&sb, "add %s %s\n", name, k->want[s].v[i]);
	}
	fputs(sb_cstr(&sb), out);
	sb_free(&sb);
}

/* ---- talking to libipset ---- */

struct ipset_run {
	struct strbuf err;
};

static int on_custom_error(struct ipset *is, void *p, int status, const char *msg, ...)
{
	struct ipset_run *r = p;
	va_list ap;

	va_start(ap, msg);
	if (!r->err.len)
		sb_vprintf(&r->err, msg, ap);
	va_end(ap);
	return -1;
}

static int on_standard_error(struct ipset *is, void *p)
{
	struct ipset_run *r = p;
	struct ipset_session *session = ipset_session(is);
	int rc = 0;

	if (ipset_session_report_type(session) == IPSET_ERROR) {
		if (!r->err.len)
			sb_puts(&r->err, ipset_session_report_msg(session));
		rc = -1;
	}
	ipset_session_report_reset(session);
	return rc;
}

static int on_print(struct ipset_session *session, void *p, const char *fmt, ...)
{
	return 0;
}

/* Runs a restore script (one command per line) in one session; with
 * single set, script is one command run outside restore mode. */
static int run_ipset(const char *script, size_t len, bool single, char **err)
{
	static bool types_loaded;
	struct ipset_run r;
	struct ipset *is;
	FILE *f;
	int rc;

	if (!types_loaded) {
		ipset_load_types();
		types_loaded = true;
	}
	sb_init(&r.err);
	is = ipset_init();
	if (!is) {
		*err = xstrdup("cannot open an ipset session");
		sb_free(&r.err);
		return -ENOMEM;
	}
	ipset_custom_printf(is, on_custom_error, on_standard_error, on_print, &r);
	ipset_envopt_set(ipset_session(is), IPSET_ENV_EXIST);
	if (single) {
		char *line = xstrndup(script, len);

		rc = ipset_parse_line(is, line);
		free(line);
	} else {
		f = fmemopen((void *)script, len, "r");
		if (!f) {
			ipset_fini(is);
			sb_free(&r.err);
			*err = xstrdup("fmemopen failed");
			return -ENOMEM;
		}
		rc = ipset_parse_stream(is, f);
		fclose(f);
	}
	ipset_fini(is);
	if (rc < 0 || r.err.len) {
		char *m = sb_steal(&r.err);

		/* libipset's messages end with a newline */
		while (*m && m[strlen(m) - 1] == '\n')
			m[strlen(m) - 1] = 0;
		*err = xasprintf("ipset restore: %s", *m ? m : "failed");
		free(m);
		return -EIO;
	}
	sb_free(&r.err);
	return 0;
}

int kp_sets_apply(struct kp_sets *k, bool full, unsigned long *changes, char **err)
{
	struct strbuf sb;
	char name[32];
	unsigned long n = 0;
	int rc;

	sb_init(&sb);
	if (!k->have_applied)
		full = true;
	for (int s = 0; s < SET_COUNT; s++) {
		struct strvec *w = &k->want[s], *a = &k->applied[s];

		sv_sort_uniq(w);
		kp_set_name(s, k->family, name, sizeof(name));
		if (full) {
			/* build in a temporary set, swap, drop the old content */
			create_line(&sb, s, name, k->family);
			create_line(&sb, s, "KUBE-TMP-SET", k->family);
			sb_puts(&sb, "flush KUBE-TMP-SET\n");
			for (size_t i = 0; i < w->n; i++)
				sb_printf(&sb, "add KUBE-TMP-SET %s\n", w->v[i]);
			sb_printf(&sb, "swap KUBE-TMP-SET %s\ndestroy KUBE-TMP-SET\n", name);
			n += w->n;
			continue;
		}
		/* merge walk of two sorted lists */
		size_t i = 0, j = 0;

		while (i < w->n || j < a->n) {
			int c = i == w->n ? 1 : j == a->n ? -1 : strcmp(w->v[i], a->v[j]);

			if (c < 0) {
				sb_printf(&sb, "add %s %s\n", name, w->v[i++]);
				n++;
			} else if (c > 0) {
				sb_printf(&sb, "del %s %s\n", name, a->v[j++]);
				n++;
			} else {
				i++;
				j++;
			}
		}
	}
	rc = sb.len ? run_ipset(sb.buf, sb.len, false, err) : 0;
	sb_free(&sb);
	if (rc < 0) {
		k->have_applied = false;   /* unknown kernel state: next time in full */
		return rc;
	}
	for (int s = 0; s < SET_COUNT; s++) {
		struct strvec tmp = k->applied[s];

		/* applied := want (deep copy so the caller may clear want) */
		sv_clear(&tmp);
		k->applied[s] = tmp;
		for (size_t i = 0; i < k->want[s].n; i++)
			sv_push(&k->applied[s], xstrdup(k->want[s].v[i]));
	}
	k->have_applied = true;
	if (changes)
		*changes = n;
	return 0;
}

bool kp_set_test(const char *set, const char *entry)
{
	char *script = xasprintf("test %s %s", set, entry), *err = NULL;
	int rc = run_ipset(script, strlen(script), true, &err);

	free(script);
	free(err);
	return rc == 0;
}

int kp_sets_destroy_all(char **err)
{
	struct strbuf sb;
	char name[32];
	int rc = 0;

	for (int fam = 0; fam < 2; fam++) {
		for (int s = 0; s < SET_COUNT; s++) {
			char *e = NULL;

			sb_init(&sb);
			kp_set_name(s, fam ? AF_INET6 : AF_INET, name, sizeof(name));
			/* destroy of a missing set is an error for libipset even
			 * with -exist; only report sets that exist */
			sb_printf(&sb, "destroy %s", name);
			if (run_ipset(sb.buf, sb.len, true, &e) < 0 && !strstr(e, "does not exist")) {
				if (!*err)
					*err = e;
				else
					free(e);
				e = NULL;
				rc = -EBUSY;
			}
			free(e);
			sb_free(&sb);
		}
	}
	return rc;
}
