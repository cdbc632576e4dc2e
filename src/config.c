/* The daemon's configuration: upstream's command-line flags, upstream's
 * KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1) and a few
 * flags of our own. Parsing fills struct config; validation follows
 * upstream's pkg/proxy/apis/config/validation rules; every error names the
 * flag, or the file and the field path, and the offending value. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

/* PACKAGE_VERSION comes from kp_autoconf.h, force-included by the build. */
#include "log.h"
#include "util.h"
#include "yamljson.h"

#define API_VERSION "kubeproxy.config.k8s.io/v1alpha1"
#define KIND "KubeProxyConfiguration"

#define DEFAULT_HEALTHZ_PORT 10256
#define DEFAULT_METRICS_PORT 10249

/* ---- error messages ------------------------------------------------------ */

/* Sets *err to "<who>: <message>" and returns -EINVAL. */
static int __attribute__((format(printf, 3, 4)))
fail(char **err, const char *who, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	if (err) {
		sb_init(&sb);
		if (who && *who)
			sb_printf(&sb, "%s: ", who);
		va_start(ap, fmt);
		sb_vprintf(&sb, fmt, ap);
		va_end(ap);
		free(*err);
		*err = sb_steal(&sb);
	}
	return -EINVAL;
}

/* Where a setting came from: the file (path + field path) or a flag. */
static char *who_name(const char *path, const char *flag, const char *field)
{
	if (path && field)
		return xasprintf("%s: %s", path, field);
	return xstrdup(flag);
}

/* ---- Go durations -------------------------------------------------------- */

/* Parses a Go duration (time.ParseDuration) into nanoseconds. Negative
 * values are refused. On error returns -EINVAL and *why (static). */
static int parse_duration_ns(const char *s, unsigned long long *out, const char **why)
{
	static const struct {
		const char *name;
		unsigned long long ns;
	} units[] = {
		{ "ns", 1ULL }, { "us", 1000ULL }, { "\xc2\xb5s", 1000ULL }, { "\xce\xbcs", 1000ULL },
		{ "ms", 1000000ULL }, { "s", 1000000000ULL }, { "m", 60000000000ULL },
		{ "h", 3600000000000ULL },
	};
	const unsigned long long limit = 1ULL << 63;
	unsigned long long total = 0;

	*why = "invalid duration";
	if (!s || !*s)
		return -EINVAL;
	if (*s == '-') {
		if (s[1] == '-' || s[1] == '+' || parse_duration_ns(s + 1, out, why) < 0)
			return -EINVAL;
		if (*out) {
			*why = "must not be negative";
			return -EINVAL;
		}
		return 0;
	}
	if (*s == '+')
		s++;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	while (*s) {
		unsigned long long v = 0, f = 0, scale = 1, unit = 0;
		bool pre = false, post = false;
		const char *u;
		size_t ulen, i;
		unsigned __int128 add;

		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return -EINVAL;
		while (*s >= '0' && *s <= '9') {
			if (v > (limit - (unsigned)(*s - '0')) / 10) {
				*why = "duration out of range";
				return -EINVAL;
			}
			v = v * 10 + (unsigned)(*s - '0');
			s++;
			pre = true;
		}
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9') {
				/* digits past nanosecond-ish precision are dropped */
				if (scale < 1000000000000000000ULL) {
					f = f * 10 + (unsigned)(*s - '0');
					scale *= 10;
				}
				s++;
				post = true;
			}
		}
		if (!pre && !post)
			return -EINVAL;
		u = s;
		while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
			s++;
		ulen = (size_t)(s - u);
		if (ulen == 0) {
			*why = "missing unit in duration (e.g. 30s, 1m0s, 250ms)";
			return -EINVAL;
		}
		for (i = 0; i < ARRAY_SIZE(units); i++) {
			if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0) {
				unit = units[i].ns;
				break;
			}
		}
		if (!unit) {
			*why = "unknown unit in duration (valid: ns, us, ms, s, m, h)";
			return -EINVAL;
		}
		add = (unsigned __int128)v * unit + (unsigned __int128)f * unit / scale;
		if (add > limit || total + (unsigned long long)add > limit) {
			*why = "duration out of range";
			return -EINVAL;
		}
		total += (unsigned long long)add;
	}
	*out = total;
	return 0;
}

int parse_duration_ms(const char *s, unsigned long long *ms)
{
	unsigned long long ns;
	const char *why;

	if (parse_duration_ns(s, &ns, &why) < 0)
		return -EINVAL;
	/* Truncate to milliseconds, but never turn a non-zero duration into 0
	 * (0 means "leave as is" or "no minimum" for several fields). */
	*ms = ns / 1000000ULL;
	if (ns && !*ms)
		*ms = 1;
	return 0;
}

/* Formats ms like Go's time.Duration.String(): "0s", "250ms", "30s",
 * "1m0s", "1h0m0s", "1m30.5s". Writes into buf (32 bytes). */
static const char *format_duration(unsigned long long ms, char *buf, size_t len)
{
	unsigned long long h, m, s, frac;

	if (ms == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	if (ms < 1000) {
		snprintf(buf, len, "%llums", ms);
		return buf;
	}
	h = ms / 3600000ULL;
	m = ms / 60000ULL % 60;
	s = ms / 1000ULL % 60;
	frac = ms % 1000;
	{
		char fs[8] = "";
		int n;

		if (frac) {
			snprintf(fs, sizeof(fs), ".%03llu", frac);
			n = (int)strlen(fs);
			while (n > 1 && fs[n - 1] == '0')
				fs[--n] = '\0';
		}
		if (h)
			snprintf(buf, len, "%lluh%llum%llu%ss", h, m, s, fs);
		else if (m)
			snprintf(buf, len, "%llum%llu%ss", m, s, fs);
		else
			snprintf(buf, len, "%llu%ss", s, fs);
	}
	return buf;
}

/* ---- scalar value parsers (shared by flags and file) --------------------- */

/* Duration into unsigned ms (what the struct holds). */
static int set_dur_ms(unsigned *dst, const char *val, const char *who, char **err)
{
	unsigned long long ns, ms;
	const char *why;

	if (parse_duration_ns(val, &ns, &why) < 0)
		return fail(err, who, "\"%s\": %s", val, why);
	ms = ns / 1000000ULL;
	if (ns && !ms)
		ms = 1;
	if (ms > UINT_MAX)
		return fail(err, who, "\"%s\": duration out of range (at most %u ms)", val, UINT_MAX);
	*dst = (unsigned)ms;
	return 0;
}

/* Duration into unsigned seconds (truncated, as upstream's d.Seconds()). */
static int set_dur_s(unsigned *dst, const char *val, const char *who, char **err)
{
	unsigned long long ns, s;
	const char *why;

	if (parse_duration_ns(val, &ns, &why) < 0)
		return fail(err, who, "\"%s\": %s", val, why);
	s = ns / 1000000000ULL;
	if (s > UINT_MAX)
		return fail(err, who, "\"%s\": duration out of range", val);
	*dst = (unsigned)s;
	return 0;
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *val, bool *out)
{
	static const char *const t[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const f[] = { "0", "f", "F", "false", "FALSE", "False" };

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (strcmp(val, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(val, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* A 32-bit signed integer (strconv.ParseInt(s, 0, 32)). */
static int parse_int32(const char *val, int *out)
{
	char *end;
	long long v;

	if (!*val || isspace((unsigned char)*val))
		return -EINVAL;
	errno = 0;
	v = strtoll(val, &end, 0);
	if (errno || *end || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static void set_str(char **dst, const char *val)
{
	free(*dst);
	*dst = xstrdup(val);
}

/* Trims ASCII whitespace and lower-cases; returns a new string. */
static char *trim_lower(const char *s)
{
	size_t len;
	char *r;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	r = xstrndup(s, len);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

/* ---- CIDRs ----------------------------------------------------------------- */

/* Parses one CIDR; host bits set is an error unless lenient (upstream's
 * net.ParseCIDR for exclude lists and nodePortAddresses). */
static int parse_one_cidr(const char *tok, bool lenient, struct cidr *out, const char *who, char **err)
{
	char buf[CIDR_STRLEN];

	if (cidr_parse(tok, lenient, out) == 0)
		return 0;
	if (!lenient && cidr_parse(tok, true, out) == 0)
		return fail(err, who, "\"%s\" has host bits set (did you mean %s?)", tok, cidr_str(out, buf));
	return fail(err, who, "\"%s\" is not a valid CIDR (e.g. 10.244.0.0/16 or fd00:10:244::/56)", tok);
}

/* "a" or "a,b" with at most one CIDR per family (cluster and service
 * ranges). An empty string gives zero CIDRs. */
static int set_cidr_pair(const char *val, struct cidr out[2], size_t *n, char **str, const char *who,
			 char **err)
{
	char *copy = xstrdup(val), *save = NULL, *tok;
	struct cidr tmp[2];
	size_t cnt = 0;
	int rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		for (size_t l = strlen(tok); l && isspace((unsigned char)tok[l - 1]); l--)
			tok[l - 1] = '\0';
		if (!*tok) {
			rc = fail(err, who, "\"%s\": empty element in CIDR list", val);
			goto out;
		}
		if (cnt == 2) {
			rc = fail(err, who, "\"%s\": at most two CIDRs, one per IP family", val);
			goto out;
		}
		if ((rc = parse_one_cidr(tok, false, &tmp[cnt], who, err)) < 0)
			goto out;
		cnt++;
	}
	if (cnt == 2 && tmp[0].base.family == tmp[1].base.family) {
		rc = fail(err, who, "\"%s\": two CIDRs must be one IPv4 and one IPv6 (dual-stack)", val);
		goto out;
	}
	memcpy(out, tmp, cnt * sizeof(tmp[0]));
	*n = cnt;
	set_str(str, val);
out:
	free(copy);
	return rc;
}

/* Appends one element of a CIDR list (nodePortAddresses when primary is
 * non-NULL, ipvs excludeCIDRs otherwise). */
static int add_cidr_item(const char *tok, struct cidr *arr, size_t *n, bool *primary, const char *who,
			 char **err)
{
	if (primary && strcmp(tok, "primary") == 0) {
		*primary = true;
		return 0;
	}
	if (*n >= MAX_CIDRS)
		return fail(err, who, "too many entries (at most %d)", MAX_CIDRS);
	if (cidr_parse(tok, true, &arr[*n]) < 0) {
		if (primary)
			return fail(err, who, "\"%s\" is not a valid CIDR or \"primary\"", tok);
		return fail(err, who, "\"%s\" is not a valid CIDR", tok);
	}
	(*n)++;
	return 0;
}

/* Comma-separated form of the above (flags). */
static int add_cidr_csv(const char *val, struct cidr *arr, size_t *n, bool *primary, const char *who,
			char **err)
{
	char *copy = xstrdup(val), *save = NULL, *tok;
	int rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		for (size_t l = strlen(tok); l && isspace((unsigned char)tok[l - 1]); l--)
			tok[l - 1] = '\0';
		if (!*tok)
			continue;
		if ((rc = add_cidr_item(tok, arr, n, primary, who, err)) < 0)
			break;
	}
	free(copy);
	return rc;
}

/* ---- host:port ------------------------------------------------------------- */

/* Splits "ip:port" / "[ip6]:port" like Go's net.SplitHostPort. */
static int split_host_port(const char *s, char *host, size_t hlen, const char **port)
{
	const char *colon;
	size_t len;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		len = (size_t)(close - s - 1);
		if (len >= hlen)
			return -EINVAL;
		memcpy(host, s + 1, len);
		host[len] = '\0';
		*port = close + 2;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || strchr(s, ':') != colon)
		return -EINVAL;
	len = (size_t)(colon - s);
	if (len >= hlen)
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	*port = colon + 1;
	return 0;
}

/* Upstream's AppendPortIfNeeded: a bare IP gets ":port" (IPv6 in brackets);
 * anything else is returned unchanged (and fails validation later). */
static char *append_port_if_needed(const char *s, int port)
{
	char host[ADDR_STRLEN + 8];
	const char *p;
	struct addr a;

	if (split_host_port(s, host, sizeof(host), &p) == 0)
		return xstrdup(s);
	if (addr_parse(s, &a) < 0)
		return xstrdup(s);
	if (a.family == AF_INET6)
		return xasprintf("[%s]:%d", s, port);
	return xasprintf("%s:%d", s, port);
}

static int check_host_port(const char *val, const char *who, char **err)
{
	char host[ADDR_STRLEN + 8];
	const char *port;
	struct addr a;
	char *end;
	long p;

	if (split_host_port(val, host, sizeof(host), &port) < 0)
		return fail(err, who, "\"%s\" must be IP:port (e.g. 0.0.0.0:10256 or [::]:10256)", val);
	if (addr_parse(host, &a) < 0)
		return fail(err, who, "\"%s\": \"%s\" is not a valid IP address", val, host);
	errno = 0;
	p = strtol(port, &end, 10);
	if (!*port || *end || errno || p < 1 || p > 65535)
		return fail(err, who, "\"%s\": \"%s\" is not a valid port (1-65535)", val, port);
	return 0;
}

/* ---- defaults -------------------------------------------------------------- */

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->proxy_mode = xstrdup("iptables");
	cfg->cluster_cidr_str = xstrdup("");
	cfg->service_cidr_str = xstrdup("10.0.0.0/24");
	cidr_parse("10.0.0.0/24", false, &cfg->service_cidrs[0]);
	cfg->n_service_cidrs = 1;
	cfg->detect_local_mode = xstrdup("ClusterCIDR");
	cfg->bind_address = xstrdup("0.0.0.0");
	cfg->healthz_bind_address = xstrdup("0.0.0.0:10256");
	cfg->metrics_bind_address = xstrdup("127.0.0.1:10249");
	cfg->masquerade_bit = 14;
	cfg->localhost_nodeports = true;
	cfg->sync_period_ms = 30000;
	cfg->min_sync_period_ms = 1000;
	cfg->ipvs_scheduler = xstrdup("rr");
	cfg->ipvs_sync_period_ms = 30000;
	cfg->ipvs_min_sync_period_ms = 0;
	cfg->proxy_port_range = xstrdup("");
	cfg->udp_idle_timeout_ms = 250;
	cfg->conntrack_max_per_core = 32768;
	cfg->conntrack_min = 131072;
	cfg->conntrack_tcp_established_s = 24 * 3600;
	cfg->conntrack_tcp_close_wait_s = 3600;
	cfg->oom_score_adj = -999;
	cfg->verbosity = 0;
	cfg->log_file = xstrdup("/var/log/kube-proxy.log");
	cfg->state_dir = xstrdup("/var/lib/kube-proxy");
	cfg->config_sync_period_ms = 15 * 60 * 1000;
	cfg->kube_api_content_type = xstrdup("application/vnd.kubernetes.protobuf");
	cfg->kube_api_accept_content_types = xstrdup("");
	cfg->kube_api_qps = 5.0;
	cfg->kube_api_burst = 10;
	cfg->show_hidden_metrics_for_version = xstrdup("");
}

void config_free(struct config *cfg)
{
	free(cfg->kubeconfig);
	free(cfg->master);
	free(cfg->manifest_dir);
	free(cfg->config_file);
	free(cfg->write_config_to);
	free(cfg->proxy_mode);
	free(cfg->hostname_override);
	free(cfg->node_name);
	free(cfg->cluster_cidr_str);
	free(cfg->service_cidr_str);
	free(cfg->detect_local_mode);
	free(cfg->bridge_interface);
	free(cfg->interface_name_prefix);
	free(cfg->bind_address);
	free(cfg->healthz_bind_address);
	free(cfg->metrics_bind_address);
	free(cfg->ipvs_scheduler);
	free(cfg->proxy_port_range);
	free(cfg->log_file);
	free(cfg->state_dir);
	free(cfg->kube_api_content_type);
	free(cfg->kube_api_accept_content_types);
	free(cfg->show_hidden_metrics_for_version);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- validation ------------------------------------------------------------ */

static const char *const ipvs_schedulers[] = {
	"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh",
};

/* Port range as upstream's utilnet.ParsePortRange: "", "N", "N-M", "N+K". */
static int check_port_range(const char *s)
{
	char *end;
	long a, b;

	if (!*s)
		return 0;
	errno = 0;
	a = strtol(s, &end, 10);
	if (end == s || errno || a < 0 || a > 65535)
		return -EINVAL;
	if (!*end)
		return 0;
	if (*end != '-' && *end != '+')
		return -EINVAL;
	{
		char sep = *end;
		const char *q = end + 1;

		if (!*q || !isdigit((unsigned char)*q))
			return -EINVAL;
		b = strtol(q, &end, 10);
		if (*end || errno)
			return -EINVAL;
		if (sep == '+')
			b = a + b;
		if (b < a || b > 65535)
			return -EINVAL;
	}
	return 0;
}

/* Validates and normalizes cfg. path != NULL: values came from that file
 * and errors name its fields; otherwise errors name flags. */
static int validate(struct config *cfg, const char *path, char **err)
{
	char *who = NULL, d1[32], d2[32];
	bool ipvs;
	int rc = 0;
	struct addr a;

#define WHO(flag, field) (free(who), who = who_name(path, flag, field))
#define FAIL(...) do { rc = fail(err, who, __VA_ARGS__); goto out; } while (0)

	WHO("--proxy-mode", "mode");
	if (!*cfg->proxy_mode)
		set_str(&cfg->proxy_mode, "iptables");
	if (strcmp(cfg->proxy_mode, "nftables") == 0 || strcmp(cfg->proxy_mode, "kernelspace") == 0)
		FAIL("\"%s\" is not supported by this implementation (supported: iptables, ipvs, userspace)",
		     cfg->proxy_mode);
	if (strcmp(cfg->proxy_mode, "iptables") != 0 && strcmp(cfg->proxy_mode, "ipvs") != 0 &&
	    strcmp(cfg->proxy_mode, "userspace") != 0)
		FAIL("\"%s\" is not a valid proxy mode: must be iptables, ipvs or userspace (empty means iptables)",
		     cfg->proxy_mode);
	ipvs = strcmp(cfg->proxy_mode, "ipvs") == 0;

	WHO("--iptables-masquerade-bit", "iptables.masqueradeBit");
	if (cfg->masquerade_bit < 0 || cfg->masquerade_bit > 31)
		FAIL("%d is out of range 0-31", cfg->masquerade_bit);
	WHO("--iptables-sync-period", "iptables.syncPeriod");
	if (cfg->sync_period_ms == 0)
		FAIL("%s: must be greater than 0", format_duration(cfg->sync_period_ms, d1, sizeof(d1)));
	WHO("--iptables-min-sync-period", "iptables.minSyncPeriod");
	if (cfg->min_sync_period_ms > cfg->sync_period_ms)
		FAIL("%s must not be greater than %s (%s)",
		     format_duration(cfg->min_sync_period_ms, d1, sizeof(d1)),
		     path ? "iptables.syncPeriod" : "--iptables-sync-period",
		     format_duration(cfg->sync_period_ms, d2, sizeof(d2)));

	/* As upstream, the ipvs section is checked only in ipvs mode. */
	if (!*cfg->ipvs_scheduler)
		set_str(&cfg->ipvs_scheduler, "rr");
	if (ipvs) {
		size_t i;

		WHO("--ipvs-sync-period", "ipvs.syncPeriod");
		if (cfg->ipvs_sync_period_ms == 0)
			FAIL("%s: must be greater than 0", format_duration(0, d1, sizeof(d1)));
		WHO("--ipvs-min-sync-period", "ipvs.minSyncPeriod");
		if (cfg->ipvs_min_sync_period_ms > cfg->ipvs_sync_period_ms)
			FAIL("%s must not be greater than %s (%s)",
			     format_duration(cfg->ipvs_min_sync_period_ms, d1, sizeof(d1)),
			     path ? "ipvs.syncPeriod" : "--ipvs-sync-period",
			     format_duration(cfg->ipvs_sync_period_ms, d2, sizeof(d2)));
		WHO("--ipvs-scheduler", "ipvs.scheduler");
		for (i = 0; i < ARRAY_SIZE(ipvs_schedulers); i++)
			if (strcmp(cfg->ipvs_scheduler, ipvs_schedulers[i]) == 0)
				break;
		if (i == ARRAY_SIZE(ipvs_schedulers))
			FAIL("\"%s\" is not a valid IPVS scheduler: must be one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh",
			     cfg->ipvs_scheduler);
	}

	WHO("--conntrack-max-per-core", "conntrack.maxPerCore");
	if (cfg->conntrack_max_per_core < 0)
		FAIL("%d must be greater than or equal to 0", cfg->conntrack_max_per_core);
	WHO("--conntrack-min", "conntrack.min");
	if (cfg->conntrack_min < 0)
		FAIL("%d must be greater than or equal to 0", cfg->conntrack_min);

	WHO("--oom-score-adj", "oomScoreAdj");
	if (cfg->oom_score_adj < -1000 || cfg->oom_score_adj > 1000)
		FAIL("%d is out of range -1000-1000", cfg->oom_score_adj);
	WHO("--udp-timeout", "udpIdleTimeout");
	if (cfg->udp_idle_timeout_ms == 0)
		FAIL("0s: must be greater than 0");
	WHO("--config-sync-period", "configSyncPeriod");
	if (cfg->config_sync_period_ms == 0)
		FAIL("0s: must be greater than 0");
	WHO("--kube-api-burst", "clientConnection.burst");
	if (cfg->kube_api_burst < 0)
		FAIL("%d must be greater than or equal to 0", cfg->kube_api_burst);
	WHO("--kube-api-qps", "clientConnection.qps");
	if (cfg->kube_api_qps < 0)
		FAIL("%g must be greater than or equal to 0", cfg->kube_api_qps);

	WHO("--bind-address", "bindAddress");
	if (addr_parse(cfg->bind_address, &a) < 0)
		FAIL("\"%s\" is not a valid IP address", cfg->bind_address);
	WHO("--healthz-bind-address", "healthzBindAddress");
	if (*cfg->healthz_bind_address && (rc = check_host_port(cfg->healthz_bind_address, who, err)) < 0)
		goto out;
	WHO("--metrics-bind-address", "metricsBindAddress");
	if (*cfg->metrics_bind_address && (rc = check_host_port(cfg->metrics_bind_address, who, err)) < 0)
		goto out;

	WHO("--proxy-port-range", "portRange");
	if (check_port_range(cfg->proxy_port_range) < 0)
		FAIL("\"%s\" is not a valid port range (e.g. 30000-32767 or 30000+2768)", cfg->proxy_port_range);

	WHO("--detect-local-mode", "detectLocalMode");
	if (!*cfg->detect_local_mode)
		set_str(&cfg->detect_local_mode, "ClusterCIDR");
	if (strcmp(cfg->detect_local_mode, "ClusterCIDR") == 0) {
		/* without a cluster CIDR nothing counts as local (upstream
		 * warns at start-up; main logs "Cluster CIDR: (none ...)") */
	} else if (strcmp(cfg->detect_local_mode, "NodeCIDR") == 0) {
		/* the node's podCIDRs come from the Node object at run time */
	} else if (strcmp(cfg->detect_local_mode, "BridgeInterface") == 0) {
		WHO("--pod-bridge-interface", "detectLocal.bridgeInterface");
		if (!cfg->bridge_interface || !*cfg->bridge_interface)
			FAIL("must be set when %s is BridgeInterface", path ? "detectLocalMode" : "--detect-local-mode");
	} else if (strcmp(cfg->detect_local_mode, "InterfaceNamePrefix") == 0) {
		WHO("--pod-interface-name-prefix", "detectLocal.interfaceNamePrefix");
		if (!cfg->interface_name_prefix || !*cfg->interface_name_prefix)
			FAIL("must be set when %s is InterfaceNamePrefix",
			     path ? "detectLocalMode" : "--detect-local-mode");
	} else {
		FAIL("\"%s\" is not a valid local traffic detection mode: must be ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix",
		     cfg->detect_local_mode);
	}

	WHO("--show-hidden-metrics-for-version", "showHiddenMetricsForVersion");
	if (*cfg->show_hidden_metrics_for_version) {
		unsigned maj, min;
		int n = 0;

		if (sscanf(cfg->show_hidden_metrics_for_version, "%u.%u%n", &maj, &min, &n) != 2 ||
		    cfg->show_hidden_metrics_for_version[n])
			FAIL("\"%s\" must be <major>.<minor> (e.g. 1.16)", cfg->show_hidden_metrics_for_version);
	}

	/* The service range is ours and only settable by flag. */
	free_and_null(&who);
	who = xstrdup("--service-cluster-ip-range");
	if (cfg->n_service_cidrs == 0)
		FAIL("must not be empty (e.g. 10.96.0.0/12)");
out:
	free(who);
	return rc;
#undef WHO
#undef FAIL
}

/* ---- the KubeProxyConfiguration file ------------------------------------- */

enum fkind {
	FK_STR,     /* char * */
	FK_BOOL,    /* bool */
	FK_INT32,   /* int */
	FK_FLOAT,   /* double */
	FK_DUR_MS,  /* unsigned, milliseconds */
	FK_DUR_S,   /* unsigned, seconds */
	FK_OBJ,     /* nested struct, see sub */
	FK_CUSTOM,  /* handled by fn */
	FK_ANY,     /* accepted and ignored, any type */
};

#define NOSTORE ((size_t)-1)
#define FD_ZERO_DEFAULT 1u /* upstream defaulting replaces a zero value */

struct decode_ctx {
	const char *path;
	bool healthz_set, metrics_set;
};

struct fdesc {
	const char *name;
	enum fkind kind;
	size_t off;
	unsigned flags;
	const struct fdesc *sub;
	int (*fn)(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err);
};

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "value";
}

static int type_err(const struct decode_ctx *ctx, const char *fpath, const json_t *v, const char *want,
		    char **err)
{
	char *who = who_name(ctx->path, NULL, fpath);
	int rc;

	if (json_is_string(v))
		rc = fail(err, who, "expected %s, got string \"%s\"", want, json_string_value(v));
	else if (json_is_integer(v))
		rc = fail(err, who, "expected %s, got integer %lld", want, (long long)json_integer_value(v));
	else
		rc = fail(err, who, "expected %s, got %s", want, json_type_name(v));
	free(who);
	return rc;
}

static int get_string(json_t *v, const struct decode_ctx *ctx, const char *fpath, const char **out, char **err)
{
	if (!json_is_string(v))
		return type_err(ctx, fpath, v, "string", err);
	*out = json_string_value(v);
	return 0;
}

static int fn_cluster_cidr(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err)
{
	const char *s = NULL;
	char *who;
	int rc;

	if ((rc = get_string(v, ctx, fpath, &s, err)) < 0)
		return rc;
	who = who_name(ctx->path, NULL, fpath);
	rc = set_cidr_pair(s, cfg->cluster_cidrs, &cfg->n_cluster_cidrs, &cfg->cluster_cidr_str, who, err);
	free(who);
	return rc;
}

static int fn_cidr_list(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath,
			struct cidr *arr, size_t *n, bool *primary, char **err)
{
	size_t i, cnt = 0;
	json_t *item;
	bool prim = false;
	struct cidr tmp[MAX_CIDRS];
	int rc = 0;

	if (!json_is_array(v))
		return type_err(ctx, fpath, v, "list of strings", err);
	json_array_foreach(v, i, item) {
		char *ipath = xasprintf("%s[%zu]", fpath, i);
		char *who = who_name(ctx->path, NULL, ipath);

		if (!json_is_string(item))
			rc = type_err(ctx, ipath, item, "string", err);
		else
			rc = add_cidr_item(json_string_value(item), tmp, &cnt, primary ? &prim : NULL, who, err);
		free(ipath);
		free(who);
		if (rc < 0)
			return rc;
	}
	memcpy(arr, tmp, cnt * sizeof(tmp[0]));
	*n = cnt;
	if (primary)
		*primary = prim;
	return 0;
}

static int fn_nodeport_addresses(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath,
				 char **err)
{
	return fn_cidr_list(cfg, v, ctx, fpath, cfg->nodeport_addresses, &cfg->n_nodeport_addresses,
			    &cfg->nodeport_primary, err);
}

static int fn_exclude_cidrs(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath,
			    char **err)
{
	return fn_cidr_list(cfg, v, ctx, fpath, cfg->ipvs_exclude_cidrs, &cfg->n_ipvs_exclude_cidrs, NULL, err);
}

static int fn_feature_gates(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath,
			    char **err)
{
	const char *key;
	json_t *val;

	if (!json_is_object(v))
		return type_err(ctx, fpath, v, "map of feature names to booleans", err);
	json_object_foreach(v, key, val) {
		char *kpath = xasprintf("%s.%s", fpath, key);
		int rc = 0;

		if (!json_is_boolean(val))
			rc = type_err(ctx, kpath, val, "boolean", err);
		else
			log_warn("%s: feature gate %s=%s is ignored by this implementation", ctx->path, key,
				 json_is_true(val) ? "true" : "false");
		free(kpath);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int fn_healthz(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err)
{
	const char *s = NULL;
	int rc;

	if ((rc = get_string(v, ctx, fpath, &s, err)) < 0)
		return rc;
	if (!*s)
		return 0; /* upstream defaulting */
	free(cfg->healthz_bind_address);
	cfg->healthz_bind_address = append_port_if_needed(s, DEFAULT_HEALTHZ_PORT);
	ctx->healthz_set = true;
	return 0;
}

static int fn_metrics(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err)
{
	const char *s = NULL;
	int rc;

	if ((rc = get_string(v, ctx, fpath, &s, err)) < 0)
		return rc;
	if (!*s)
		return 0;
	free(cfg->metrics_bind_address);
	cfg->metrics_bind_address = append_port_if_needed(s, DEFAULT_METRICS_PORT);
	ctx->metrics_set = true;
	return 0;
}

static int fn_oom(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err)
{
	if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
		return type_err(ctx, fpath, v, "32-bit integer", err);
	cfg->oom_score_adj = (int)json_integer_value(v);
	cfg->oom_score_adj_set = true;
	return 0;
}

static int fn_hostname(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err)
{
	const char *s = NULL;
	int rc;

	if ((rc = get_string(v, ctx, fpath, &s, err)) < 0)
		return rc;
	free_and_null(&cfg->hostname_override);
	if (*s)
		cfg->hostname_override = xstrdup(s);
	return 0;
}

static int fn_verbosity(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath, char **err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
		return type_err(ctx, fpath, v, "non-negative integer", err);
	cfg->verbosity = (int)json_integer_value(v);
	return 0;
}

static int fn_any_duration(struct config *cfg, json_t *v, struct decode_ctx *ctx, const char *fpath,
			   char **err)
{
	/* logging.flushFrequency: a duration string or integer nanoseconds */
	if (json_is_integer(v) || json_is_string(v))
		return 0;
	return type_err(ctx, fpath, v, "duration", err);
}

#define F(n, k, member, fl) { n, k, offsetof(struct config, member), fl, NULL, NULL }
#define FX(n, k) { n, k, NOSTORE, 0, NULL, NULL }
#define FO(n, s) { n, FK_OBJ, NOSTORE, 0, s, NULL }
#define FC(n, f) { n, FK_CUSTOM, NOSTORE, 0, NULL, f }

static const struct fdesc f_client_connection[] = {
	F("acceptContentTypes", FK_STR, kube_api_accept_content_types, 0),
	F("burst", FK_INT32, kube_api_burst, FD_ZERO_DEFAULT),
	F("contentType", FK_STR, kube_api_content_type, FD_ZERO_DEFAULT),
	F("kubeconfig", FK_STR, kubeconfig, 0),
	F("qps", FK_FLOAT, kube_api_qps, FD_ZERO_DEFAULT),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_iptables[] = {
	F("localhostNodePorts", FK_BOOL, localhost_nodeports, 0),
	F("masqueradeAll", FK_BOOL, masquerade_all, 0),
	F("masqueradeBit", FK_INT32, masquerade_bit, 0),
	F("minSyncPeriod", FK_DUR_MS, min_sync_period_ms, FD_ZERO_DEFAULT),
	F("syncPeriod", FK_DUR_MS, sync_period_ms, FD_ZERO_DEFAULT),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_ipvs[] = {
	FC("excludeCIDRs", fn_exclude_cidrs),
	F("minSyncPeriod", FK_DUR_MS, ipvs_min_sync_period_ms, 0),
	F("scheduler", FK_STR, ipvs_scheduler, 0),
	F("strictARP", FK_BOOL, ipvs_strict_arp, 0),
	F("syncPeriod", FK_DUR_MS, ipvs_sync_period_ms, FD_ZERO_DEFAULT),
	F("tcpFinTimeout", FK_DUR_S, ipvs_tcpfin_timeout_s, 0),
	F("tcpTimeout", FK_DUR_S, ipvs_tcp_timeout_s, 0),
	F("udpTimeout", FK_DUR_S, ipvs_udp_timeout_s, 0),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_nftables[] = {
	FX("masqueradeAll", FK_BOOL),
	FX("masqueradeBit", FK_INT32),
	FX("minSyncPeriod", FK_DUR_MS),
	FX("syncPeriod", FK_DUR_MS),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_winkernel[] = {
	FX("enableDSR", FK_BOOL),
	FX("forwardHealthCheckVip", FK_BOOL),
	FX("networkName", FK_STR),
	FX("rootHnsEndpointName", FK_STR),
	FX("sourceVip", FK_STR),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_conntrack[] = {
	F("maxPerCore", FK_INT32, conntrack_max_per_core, 0),
	F("min", FK_INT32, conntrack_min, 0),
	F("tcpBeLiberal", FK_BOOL, conntrack_tcp_be_liberal, 0),
	F("tcpCloseWaitTimeout", FK_DUR_S, conntrack_tcp_close_wait_s, 0),
	F("tcpEstablishedTimeout", FK_DUR_S, conntrack_tcp_established_s, 0),
	F("udpStreamTimeout", FK_DUR_S, conntrack_udp_stream_timeout_s, 0),
	F("udpTimeout", FK_DUR_S, conntrack_udp_timeout_s, 0),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_detect_local[] = {
	F("bridgeInterface", FK_STR, bridge_interface, 0),
	F("interfaceNamePrefix", FK_STR, interface_name_prefix, 0),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_logging[] = {
	FC("flushFrequency", fn_any_duration),
	FX("format", FK_STR),
	FX("options", FK_ANY),
	FC("verbosity", fn_verbosity),
	FX("vmodule", FK_ANY),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static const struct fdesc f_top[] = {
	FX("apiVersion", FK_STR),
	F("bindAddress", FK_STR, bind_address, FD_ZERO_DEFAULT),
	F("bindAddressHardFail", FK_BOOL, bind_address_hard_fail, 0),
	FO("clientConnection", f_client_connection),
	FC("clusterCIDR", fn_cluster_cidr),
	F("configSyncPeriod", FK_DUR_MS, config_sync_period_ms, FD_ZERO_DEFAULT),
	FO("conntrack", f_conntrack),
	FO("detectLocal", f_detect_local),
	F("detectLocalMode", FK_STR, detect_local_mode, 0),
	F("enableProfiling", FK_BOOL, enable_profiling, 0),
	FC("featureGates", fn_feature_gates),
	FC("healthzBindAddress", fn_healthz),
	FC("hostnameOverride", fn_hostname),
	FO("iptables", f_iptables),
	FO("ipvs", f_ipvs),
	FX("kind", FK_STR),
	FO("logging", f_logging),
	FC("metricsBindAddress", fn_metrics),
	F("mode", FK_STR, proxy_mode, 0),
	FO("nftables", f_nftables),
	FC("nodePortAddresses", fn_nodeport_addresses),
	FC("oomScoreAdj", fn_oom),
	F("portRange", FK_STR, proxy_port_range, 0),
	F("showHiddenMetricsForVersion", FK_STR, show_hidden_metrics_for_version, 0),
	F("udpIdleTimeout", FK_DUR_MS, udp_idle_timeout_ms, FD_ZERO_DEFAULT),
	FX("windowsRunAsService", FK_BOOL),
	FO("winkernel", f_winkernel),
	{ NULL, 0, 0, 0, NULL, NULL },
};

static int decode_obj(struct config *cfg, json_t *obj, const struct fdesc *fields, struct decode_ctx *ctx,
		      const char *prefix, char **err);

static int decode_field(struct config *cfg, json_t *v, const struct fdesc *fd, struct decode_ctx *ctx,
			const char *fpath, char **err)
{
	char *base = (char *)cfg;
	bool store = fd->off != NOSTORE;
	bool zd = fd->flags & FD_ZERO_DEFAULT;
	char *who;
	int rc = 0;

	/* null is "not set" for every field (Go: zero value, then defaulting) */
	if (json_is_null(v))
		return 0;
	switch (fd->kind) {
	case FK_STR: {
		const char *s = NULL;

		if ((rc = get_string(v, ctx, fpath, &s, err)) < 0)
			return rc;
		if (store && !(zd && !*s))
			set_str((char **)(base + fd->off), s);
		return 0;
	}
	case FK_BOOL:
		if (!json_is_boolean(v))
			return type_err(ctx, fpath, v, "boolean (true or false)", err);
		if (store)
			*(bool *)(base + fd->off) = json_is_true(v);
		return 0;
	case FK_INT32: {
		json_int_t i;

		if (!json_is_integer(v))
			return type_err(ctx, fpath, v, "integer", err);
		i = json_integer_value(v);
		if (i < INT32_MIN || i > INT32_MAX) {
			who = who_name(ctx->path, NULL, fpath);
			rc = fail(err, who, "%lld does not fit in a 32-bit integer", (long long)i);
			free(who);
			return rc;
		}
		if (store && !(zd && i == 0))
			*(int *)(base + fd->off) = (int)i;
		return 0;
	}
	case FK_FLOAT:
		if (!json_is_number(v))
			return type_err(ctx, fpath, v, "number", err);
		if (store && !(zd && json_number_value(v) == 0))
			*(double *)(base + fd->off) = json_number_value(v);
		return 0;
	case FK_DUR_MS:
	case FK_DUR_S: {
		unsigned val;

		if (!json_is_string(v))
			return type_err(ctx, fpath, v, "duration string (e.g. \"30s\")", err);
		who = who_name(ctx->path, NULL, fpath);
		if (fd->kind == FK_DUR_MS)
			rc = set_dur_ms(&val, json_string_value(v), who, err);
		else
			rc = set_dur_s(&val, json_string_value(v), who, err);
		free(who);
		if (rc < 0)
			return rc;
		if (store && !(zd && val == 0))
			*(unsigned *)(base + fd->off) = val;
		return 0;
	}
	case FK_OBJ:
		if (!json_is_object(v))
			return type_err(ctx, fpath, v, "object", err);
		return decode_obj(cfg, v, fd->sub, ctx, fpath, err);
	case FK_CUSTOM:
		return fd->fn(cfg, v, ctx, fpath, err);
	case FK_ANY:
		return 0;
	}
	return 0;
}

static int decode_obj(struct config *cfg, json_t *obj, const struct fdesc *fields, struct decode_ctx *ctx,
		      const char *prefix, char **err)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const struct fdesc *fd;
		char *fpath = prefix ? xasprintf("%s.%s", prefix, key) : xstrdup(key);
		int rc;

		for (fd = fields; fd->name; fd++)
			if (strcmp(fd->name, key) == 0)
				break;
		if (!fd->name) {
			char *who = who_name(ctx->path, NULL, fpath);

			rc = fail(err, who, "unknown field");
			free(who);
		} else {
			rc = decode_field(cfg, v, fd, ctx, fpath, err);
		}
		free(fpath);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Decodes the document into cfg (no validation). */
static int decode_file(struct config *cfg, const char *path, char **err)
{
	struct decode_ctx ctx = { .path = path };
	char *buf = NULL, *yerr = NULL;
	size_t len;
	json_t *docs = NULL, *doc, *av, *kv;
	int rc;

	rc = read_file(path, &buf, &len);
	if (rc < 0) {
		rc = fail(err, path, "cannot read: %s", strerror(-rc));
		goto out;
	}
	docs = yaml_to_json(buf, len, &yerr);
	if (!docs) {
		rc = fail(err, path, "%s", yerr ? yerr : "cannot parse YAML/JSON");
		goto out;
	}
	if (json_array_size(docs) != 1) {
		rc = fail(err, path, "expected exactly one KubeProxyConfiguration document, found %zu",
			  json_array_size(docs));
		goto out;
	}
	doc = json_array_get(docs, 0);
	if (!json_is_object(doc)) {
		rc = fail(err, path, "expected a KubeProxyConfiguration object, got %s", json_type_name(doc));
		goto out;
	}
	av = json_object_get(doc, "apiVersion");
	kv = json_object_get(doc, "kind");
	if (!av || !json_is_string(av) || strcmp(json_string_value(av), API_VERSION) != 0) {
		rc = fail(err, path, "apiVersion: must be \"%s\", got %s%s%s", API_VERSION,
			  av && json_is_string(av) ? "\"" : "",
			  av ? (json_is_string(av) ? json_string_value(av) : json_type_name(av)) : "nothing",
			  av && json_is_string(av) ? "\"" : "");
		goto out;
	}
	if (!kv || !json_is_string(kv) || strcmp(json_string_value(kv), KIND) != 0) {
		rc = fail(err, path, "kind: must be \"%s\", got %s%s%s", KIND,
			  kv && json_is_string(kv) ? "\"" : "",
			  kv ? (json_is_string(kv) ? json_string_value(kv) : json_type_name(kv)) : "nothing",
			  kv && json_is_string(kv) ? "\"" : "");
		goto out;
	}
	rc = decode_obj(cfg, doc, f_top, &ctx, NULL, err);
	if (rc < 0)
		goto out;
	/* upstream: IPv6 bindAddress moves the default listeners to [::] */
	{
		struct addr a;

		if (addr_parse(cfg->bind_address, &a) == 0 && a.family == AF_INET6) {
			if (!ctx.healthz_set)
				set_str(&cfg->healthz_bind_address, "[::]:10256");
			if (!ctx.metrics_set)
				set_str(&cfg->metrics_bind_address, "[::1]:10249");
		}
	}
out:
	json_decref(docs);
	free(yerr);
	free(buf);
	return rc;
}

int config_load_file(struct config *cfg, const char *path, char **err)
{
	int rc = decode_file(cfg, path, err);

	if (rc < 0)
		return rc;
	return validate(cfg, path, err);
}

/* ---- rendering ------------------------------------------------------------- */

static void put_str(struct strbuf *sb, const char *s)
{
	sb_putc(sb, '"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sb_printf(sb, "\\%c", c);
		else if (c == '\n')
			sb_puts(sb, "\\n");
		else if (c == '\t')
			sb_puts(sb, "\\t");
		else if (c < 0x20 || c == 0x7f)
			sb_printf(sb, "\\x%02x", c);
		else
			sb_putc(sb, (char)c);
	}
	sb_putc(sb, '"');
}

static void put_kv_str(struct strbuf *sb, int ind, const char *key, const char *val)
{
	sb_printf(sb, "%*s%s: ", ind, "", key);
	put_str(sb, val ? val : "");
	sb_putc(sb, '\n');
}

static void put_kv_dur(struct strbuf *sb, int ind, const char *key, unsigned long long ms)
{
	char d[32];

	sb_printf(sb, "%*s%s: \"%s\"\n", ind, "", key, format_duration(ms, d, sizeof(d)));
}

static void put_kv_bool(struct strbuf *sb, int ind, const char *key, bool v)
{
	sb_printf(sb, "%*s%s: %s\n", ind, "", key, v ? "true" : "false");
}

static void put_cidr_list(struct strbuf *sb, const char *key, const struct cidr *arr, size_t n, bool primary,
			  int ind)
{
	char buf[CIDR_STRLEN];

	if (!n && !primary) {
		sb_printf(sb, "%*s%s: []\n", ind, "", key);
		return;
	}
	sb_printf(sb, "%*s%s:\n", ind, "", key);
	if (primary)
		sb_printf(sb, "%*s- \"primary\"\n", ind, "");
	for (size_t i = 0; i < n; i++)
		sb_printf(sb, "%*s- \"%s\"\n", ind, "", cidr_str(&arr[i], buf));
}

char *config_render(const struct config *cfg)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_puts(&sb, "# KubeProxyConfiguration written by kube-proxy " PACKAGE_VERSION " (C implementation)\n");
	sb_puts(&sb, "apiVersion: " API_VERSION "\n");
	put_kv_str(&sb, 0, "bindAddress", cfg->bind_address);
	put_kv_bool(&sb, 0, "bindAddressHardFail", cfg->bind_address_hard_fail);
	sb_puts(&sb, "clientConnection:\n");
	put_kv_str(&sb, 2, "acceptContentTypes", cfg->kube_api_accept_content_types);
	sb_printf(&sb, "  burst: %d\n", cfg->kube_api_burst);
	put_kv_str(&sb, 2, "contentType", cfg->kube_api_content_type);
	put_kv_str(&sb, 2, "kubeconfig", cfg->kubeconfig);
	sb_printf(&sb, "  qps: %.17g\n", cfg->kube_api_qps);
	put_kv_str(&sb, 0, "clusterCIDR", cfg->cluster_cidr_str);
	put_kv_dur(&sb, 0, "configSyncPeriod", cfg->config_sync_period_ms);
	sb_puts(&sb, "conntrack:\n");
	sb_printf(&sb, "  maxPerCore: %d\n", cfg->conntrack_max_per_core);
	sb_printf(&sb, "  min: %d\n", cfg->conntrack_min);
	put_kv_bool(&sb, 2, "tcpBeLiberal", cfg->conntrack_tcp_be_liberal);
	put_kv_dur(&sb, 2, "tcpCloseWaitTimeout", cfg->conntrack_tcp_close_wait_s * 1000ULL);
	put_kv_dur(&sb, 2, "tcpEstablishedTimeout", cfg->conntrack_tcp_established_s * 1000ULL);
	put_kv_dur(&sb, 2, "udpStreamTimeout", cfg->conntrack_udp_stream_timeout_s * 1000ULL);
	put_kv_dur(&sb, 2, "udpTimeout", cfg->conntrack_udp_timeout_s * 1000ULL);
	sb_puts(&sb, "detectLocal:\n");
	put_kv_str(&sb, 2, "bridgeInterface", cfg->bridge_interface);
	put_kv_str(&sb, 2, "interfaceNamePrefix", cfg->interface_name_prefix);
	put_kv_str(&sb, 0, "detectLocalMode", cfg->detect_local_mode);
	put_kv_bool(&sb, 0, "enableProfiling", cfg->enable_profiling);
	sb_puts(&sb, "featureGates: {}\n");
	put_kv_str(&sb, 0, "healthzBindAddress", cfg->healthz_bind_address);
	put_kv_str(&sb, 0, "hostnameOverride", cfg->hostname_override);
	sb_puts(&sb, "iptables:\n");
	put_kv_bool(&sb, 2, "localhostNodePorts", cfg->localhost_nodeports);
	put_kv_bool(&sb, 2, "masqueradeAll", cfg->masquerade_all);
	sb_printf(&sb, "  masqueradeBit: %d\n", cfg->masquerade_bit);
	put_kv_dur(&sb, 2, "minSyncPeriod", cfg->min_sync_period_ms);
	put_kv_dur(&sb, 2, "syncPeriod", cfg->sync_period_ms);
	sb_puts(&sb, "ipvs:\n");
	put_cidr_list(&sb, "excludeCIDRs", cfg->ipvs_exclude_cidrs, cfg->n_ipvs_exclude_cidrs, false, 2);
	put_kv_dur(&sb, 2, "minSyncPeriod", cfg->ipvs_min_sync_period_ms);
	put_kv_str(&sb, 2, "scheduler", cfg->ipvs_scheduler);
	put_kv_bool(&sb, 2, "strictARP", cfg->ipvs_strict_arp);
	put_kv_dur(&sb, 2, "syncPeriod", cfg->ipvs_sync_period_ms);
	put_kv_dur(&sb, 2, "tcpFinTimeout", cfg->ipvs_tcpfin_timeout_s * 1000ULL);
	put_kv_dur(&sb, 2, "tcpTimeout", cfg->ipvs_tcp_timeout_s * 1000ULL);
	put_kv_dur(&sb, 2, "udpTimeout", cfg->ipvs_udp_timeout_s * 1000ULL);
	sb_puts(&sb, "kind: " KIND "\n");
	sb_puts(&sb, "logging:\n");
	sb_printf(&sb, "  verbosity: %d\n", cfg->verbosity);
	put_kv_str(&sb, 0, "metricsBindAddress", cfg->metrics_bind_address);
	put_kv_str(&sb, 0, "mode", cfg->proxy_mode);
	put_cidr_list(&sb, "nodePortAddresses", cfg->nodeport_addresses, cfg->n_nodeport_addresses,
		      cfg->nodeport_primary, 0);
	sb_printf(&sb, "oomScoreAdj: %d\n", cfg->oom_score_adj);
	put_kv_str(&sb, 0, "portRange", cfg->proxy_port_range);
	put_kv_str(&sb, 0, "showHiddenMetricsForVersion", cfg->show_hidden_metrics_for_version);
	put_kv_dur(&sb, 0, "udpIdleTimeout", cfg->udp_idle_timeout_ms);
	return sb_steal(&sb);
}

/* ---- command line ---------------------------------------------------------- */

enum opt_id {
	OPT_HELP = 'h',
	OPT_V = 'v',
	OPT_FIRST = 256,
	OPT_CONFIG = OPT_FIRST,
	OPT_WRITE_CONFIG_TO,
	OPT_CLEANUP,
	OPT_KUBECONFIG,
	OPT_MASTER,
	OPT_KUBE_API_CONTENT_TYPE,
	OPT_KUBE_API_BURST,
	OPT_KUBE_API_QPS,
	OPT_HOSTNAME_OVERRIDE,
	OPT_BIND_ADDRESS,
	OPT_HEALTHZ_BIND_ADDRESS,
	OPT_HEALTHZ_PORT,
	OPT_METRICS_BIND_ADDRESS,
	OPT_METRICS_PORT,
	OPT_BIND_ADDRESS_HARD_FAIL,
	OPT_PROFILING,
	OPT_SHOW_HIDDEN_METRICS,
	OPT_FEATURE_GATES,
	OPT_PROXY_MODE,
	OPT_MASQUERADE_ALL,
	OPT_MASQUERADE_BIT,
	OPT_LOCALHOST_NODEPORTS,
	OPT_IPT_SYNC,
	OPT_IPT_MIN_SYNC,
	OPT_IPVS_SCHEDULER,
	OPT_IPVS_SYNC,
	OPT_IPVS_MIN_SYNC,
	OPT_IPVS_EXCLUDE,
	OPT_IPVS_STRICT_ARP,
	OPT_IPVS_TCP_TIMEOUT,
	OPT_IPVS_TCPFIN_TIMEOUT,
	OPT_IPVS_UDP_TIMEOUT,
	OPT_CLUSTER_CIDR,
	OPT_NODEPORT_ADDRESSES,
	OPT_DETECT_LOCAL_MODE,
	OPT_POD_BRIDGE,
	OPT_POD_IFPREFIX,
	OPT_PROXY_PORT_RANGE,
	OPT_UDP_TIMEOUT,
	OPT_CT_MAX_PER_CORE,
	OPT_CT_MIN,
	OPT_CT_TCP_ESTABLISHED,
	OPT_CT_TCP_CLOSE_WAIT,
	OPT_CT_TCP_BE_LIBERAL,
	OPT_CT_UDP,
	OPT_CT_UDP_STREAM,
	OPT_CONFIG_SYNC,
	OPT_OOM,
	OPT_VERSION,
	OPT_SERVICE_CIDR,
	OPT_MANIFEST_DIR,
	OPT_LOG_FILE,
	OPT_STATE_DIR,
	OPT_DRY_RUN,
	OPT_LAST,
};

/* honoured even when --config is given (everything else is ignored, as
 * upstream: "the values in this file take precedence over flags") */
#define KEEP 1u

struct opt_doc {
	const char *name;
	int has_arg;
	int id;
	const char *arg;  /* value type shown by --help */
	const char *def;  /* default shown by --help (NULL: none) */
	const char *help;
	unsigned flags;
};

static const struct opt_doc opts[] = {
	/* general */
	{ "config", required_argument, OPT_CONFIG, "path", NULL,
	  "KubeProxyConfiguration file (YAML or JSON); its values take precedence over flags", KEEP },
	{ "write-config-to", required_argument, OPT_WRITE_CONFIG_TO, "path", NULL,
	  "Write the effective configuration to this file and exit", KEEP },
	{ "cleanup", optional_argument, OPT_CLEANUP, NULL, "false",
	  "Remove the rules of every proxy mode from the kernel and exit", KEEP },
	{ "proxy-mode", required_argument, OPT_PROXY_MODE, "mode", "iptables",
	  "Proxy mode: iptables, ipvs or userspace", 0 },
	{ "hostname-override", required_argument, OPT_HOSTNAME_OVERRIDE, "name", "uname nodename",
	  "Name of this node (wins over the config file's hostnameOverride)", KEEP },
	{ "feature-gates", required_argument, OPT_FEATURE_GATES, "k=v,...", NULL,
	  "Feature gates: accepted and ignored by this implementation", 0 },
	/* API server */
	{ "kubeconfig", required_argument, OPT_KUBECONFIG, "path", "in-cluster",
	  "kubeconfig file with the API server address and credentials", 0 },
	{ "master", required_argument, OPT_MASTER, "url", NULL,
	  "API server address (overrides the kubeconfig's server)", KEEP },
	{ "kube-api-content-type", required_argument, OPT_KUBE_API_CONTENT_TYPE, "type",
	  "application/vnd.kubernetes.protobuf", "Content type of API requests (JSON is always used)", 0 },
	{ "kube-api-burst", required_argument, OPT_KUBE_API_BURST, "int32", "10",
	  "Burst to use while talking to the API server", 0 },
	{ "kube-api-qps", required_argument, OPT_KUBE_API_QPS, "float", "5",
	  "QPS to use while talking to the API server", 0 },
	{ "config-sync-period", required_argument, OPT_CONFIG_SYNC, "duration", "15m0s",
	  "How often the API server state is relisted; must be > 0", 0 },
	/* listeners */
	{ "bind-address", required_argument, OPT_BIND_ADDRESS, "ip", "0.0.0.0",
	  "The node's primary IP (historical name; nothing binds to it)", 0 },
	{ "healthz-bind-address", required_argument, OPT_HEALTHZ_BIND_ADDRESS, "ip:port", "0.0.0.0:10256",
	  "Health check server address; empty disables", 0 },
	{ "healthz-port", required_argument, OPT_HEALTHZ_PORT, "int32", "10256",
	  "Deprecated: health check port, 0 disables (use --healthz-bind-address)", 0 },
	{ "metrics-bind-address", required_argument, OPT_METRICS_BIND_ADDRESS, "ip:port", "127.0.0.1:10249",
	  "Metrics server address; empty disables", 0 },
	{ "metrics-port", required_argument, OPT_METRICS_PORT, "int32", "10249",
	  "Deprecated: metrics port, 0 disables (use --metrics-bind-address)", 0 },
	{ "bind-address-hard-fail", optional_argument, OPT_BIND_ADDRESS_HARD_FAIL, NULL, "false",
	  "Exit if a listener cannot bind its port", 0 },
	{ "profiling", optional_argument, OPT_PROFILING, NULL, "false",
	  "Accepted for compatibility; there is no /debug/pprof here", 0 },
	{ "show-hidden-metrics-for-version", required_argument, OPT_SHOW_HIDDEN_METRICS, "x.y", NULL,
	  "Accepted for compatibility (format <major>.<minor>)", 0 },
	/* networks */
	{ "cluster-cidr", required_argument, OPT_CLUSTER_CIDR, "cidr[,cidr]", NULL,
	  "Pod CIDR(s) of the cluster, one per IP family; used by --detect-local-mode=ClusterCIDR", 0 },
	{ "service-cluster-ip-range", required_argument, OPT_SERVICE_CIDR, "cidr[,cidr]", "10.0.0.0/24",
	  "Service CIDR(s), one per family; ClusterIPs for manifests without one come from here", KEEP },
	{ "nodeport-addresses", required_argument, OPT_NODEPORT_ADDRESSES, "cidrs", "all local IPs",
	  "CIDRs of node IPs that accept NodePorts, or \"primary\"", 0 },
	{ "detect-local-mode", required_argument, OPT_DETECT_LOCAL_MODE, "mode", "ClusterCIDR",
	  "Local traffic detection: ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix", 0 },
	{ "pod-bridge-interface", required_argument, OPT_POD_BRIDGE, "name", NULL,
	  "Bridge whose traffic is local (--detect-local-mode=BridgeInterface)", 0 },
	{ "pod-interface-name-prefix", required_argument, OPT_POD_IFPREFIX, "prefix", NULL,
	  "Interface name prefix of local traffic (--detect-local-mode=InterfaceNamePrefix)", 0 },
	/* iptables */
	{ "masquerade-all", optional_argument, OPT_MASQUERADE_ALL, NULL, "false",
	  "SNAT all traffic sent to Service cluster IPs", 0 },
	{ "iptables-masquerade-bit", required_argument, OPT_MASQUERADE_BIT, "int32", "14",
	  "fwmark bit marking packets that need SNAT, 0-31", 0 },
	{ "iptables-localhost-nodeports", optional_argument, OPT_LOCALHOST_NODEPORTS, NULL, "true",
	  "Accept NodePort connections on 127.0.0.1 (iptables mode, IPv4)", 0 },
	{ "iptables-sync-period", required_argument, OPT_IPT_SYNC, "duration", "30s",
	  "Period of full iptables resyncs; must be > 0", 0 },
	{ "iptables-min-sync-period", required_argument, OPT_IPT_MIN_SYNC, "duration", "1s",
	  "Minimum time between iptables syncs; 0 syncs on every change", 0 },
	/* ipvs */
	{ "ipvs-scheduler", required_argument, OPT_IPVS_SCHEDULER, "name", "rr",
	  "IPVS scheduler: rr wrr lc wlc lblc lblcr sh dh sed nq mh", 0 },
	{ "ipvs-sync-period", required_argument, OPT_IPVS_SYNC, "duration", "30s",
	  "Period of full IPVS resyncs; must be > 0", 0 },
	{ "ipvs-min-sync-period", required_argument, OPT_IPVS_MIN_SYNC, "duration", "0s",
	  "Minimum time between IPVS syncs; 0 syncs on every change", 0 },
	{ "ipvs-exclude-cidrs", required_argument, OPT_IPVS_EXCLUDE, "cidrs", NULL,
	  "Comma-separated CIDRs whose IPVS services are never touched", 0 },
	{ "ipvs-strict-arp", optional_argument, OPT_IPVS_STRICT_ARP, NULL, "false",
	  "Set arp_ignore=1 and arp_announce=2", 0 },
	{ "ipvs-tcp-timeout", required_argument, OPT_IPVS_TCP_TIMEOUT, "duration", "0s",
	  "Idle timeout of IPVS TCP connections; 0 leaves it as is", 0 },
	{ "ipvs-tcpfin-timeout", required_argument, OPT_IPVS_TCPFIN_TIMEOUT, "duration", "0s",
	  "IPVS TCP timeout after a FIN; 0 leaves it as is", 0 },
	{ "ipvs-udp-timeout", required_argument, OPT_IPVS_UDP_TIMEOUT, "duration", "0s",
	  "IPVS UDP timeout; 0 leaves it as is", 0 },
	/* userspace */
	{ "proxy-port-range", required_argument, OPT_PROXY_PORT_RANGE, "range", "any",
	  "Host ports for userspace proxying: N, N-M or N+K", 0 },
	{ "udp-timeout", required_argument, OPT_UDP_TIMEOUT, "duration", "250ms",
	  "Idle timeout of userspace UDP flows; must be > 0", 0 },
	/* conntrack */
	{ "conntrack-max-per-core", required_argument, OPT_CT_MAX_PER_CORE, "int32", "32768",
	  "Conntrack entries per CPU core; 0 leaves the limit as is", 0 },
	{ "conntrack-min", required_argument, OPT_CT_MIN, "int32", "131072",
	  "Minimum conntrack table size", 0 },
	{ "conntrack-tcp-timeout-established", required_argument, OPT_CT_TCP_ESTABLISHED, "duration",
	  "24h0m0s", "Idle timeout of established TCP connections; 0 leaves it as is", 0 },
	{ "conntrack-tcp-timeout-close-wait", required_argument, OPT_CT_TCP_CLOSE_WAIT, "duration", "1h0m0s",
	  "Timeout of TCP connections in CLOSE_WAIT; 0 leaves it as is", 0 },
	{ "conntrack-tcp-be-liberal", optional_argument, OPT_CT_TCP_BE_LIBERAL, NULL, "false",
	  "Set nf_conntrack_tcp_be_liberal=1", 0 },
	{ "conntrack-udp-timeout", required_argument, OPT_CT_UDP, "duration", "0s",
	  "Idle timeout of unreplied UDP flows; 0 leaves it as is", 0 },
	{ "conntrack-udp-timeout-stream", required_argument, OPT_CT_UDP_STREAM, "duration", "0s",
	  "Idle timeout of assured UDP flows; 0 leaves it as is", 0 },
	/* process */
	{ "oom-score-adj", required_argument, OPT_OOM, "int32", "-999",
	  "oom_score_adj of the process, -1000..1000", 0 },
	{ "v", required_argument, OPT_V, "level", "0",
	  "Log verbosity (also -v N); wins over the config file's logging.verbosity", KEEP },
	{ "log-file", required_argument, OPT_LOG_FILE, "path", "/var/log/kube-proxy.log",
	  "Log file, reopened on SIGUSR1; empty logs to stderr only", KEEP },
	{ "state-dir", required_argument, OPT_STATE_DIR, "dir", "/var/lib/kube-proxy",
	  "State directory (ClusterIP allocations)", KEEP },
	{ "manifest-dir", required_argument, OPT_MANIFEST_DIR, "dir", NULL,
	  "Read Services and EndpointSlices from YAML/JSON files here instead of the API server", KEEP },
	{ "dry-run", optional_argument, OPT_DRY_RUN, NULL, "false",
	  "Print the rules that would be programmed (iptables-restore format) and exit", KEEP },
	{ "version", optional_argument, OPT_VERSION, NULL, NULL, "Print the version and exit", KEEP },
	{ "help", no_argument, OPT_HELP, NULL, NULL, "Print this help and exit (also -h)", KEEP },
};

static const struct opt_doc *opt_find(int id)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (opts[i].id == id)
			return &opts[i];
	return NULL;
}

static void print_help(FILE *f)
{
	fprintf(f, "Usage: kube-proxy [flags]\n\n"
		   "The Kubernetes network proxy (C implementation). Programs iptables, IPVS or\n"
		   "userspace proxying for the Services and EndpointSlices it reads from the API\n"
		   "server (--kubeconfig, in-cluster config, --master) or from --manifest-dir.\n\n"
		   "Flags (--flag value and --flag=value; booleans as --flag or --flag=false):\n");
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct opt_doc *o = &opts[i];
		char left[80];

		snprintf(left, sizeof(left), "%s--%s%s%s", o->id == OPT_V ? "-v, " : o->id == OPT_HELP ? "-h, " : "    ",
			 o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "  %-50s %s", left, o->help);
		if (o->def)
			fprintf(f, " (default %s)", o->def);
		fputc('\n', f);
	}
	fprintf(f, "\nWith --config, the file's values take precedence and other flags are ignored,\n"
		   "except --config, --write-config-to, --cleanup, --hostname-override, --master,\n"
		   "-v, --service-cluster-ip-range, --manifest-dir, --log-file, --state-dir and\n"
		   "--dry-run. See kube-proxy(8).\n");
}

/* Applies one flag to cfg. val is NULL for a bare boolean flag. */
static int apply_flag(struct config *cfg, int id, const char *name, const char *val, int *hz_port,
		      int *metrics_port, bool *nodeport_seen, bool *exclude_seen, char **err)
{
	char who[96];
	bool b;
	int i;

	snprintf(who, sizeof(who), "%s%s", id == OPT_V ? "-" : "--", name);

#define BOOLV(dst)                                                                          \
	do {                                                                                \
		if (!val) { (dst) = true; return 0; }                                       \
		if (parse_bool(val, &b) < 0)                                                \
			return fail(err, who, "\"%s\" is not a boolean (true or false)", val); \
		(dst) = b;                                                                  \
		return 0;                                                                   \
	} while (0)
#define INTV(dst)                                                                      \
	do {                                                                           \
		if (parse_int32(val, &i) < 0)                                          \
			return fail(err, who, "\"%s\" is not a 32-bit integer", val); \
		(dst) = i;                                                             \
		return 0;                                                              \
	} while (0)

	switch (id) {
	case OPT_CONFIG: set_str(&cfg->config_file, val); return 0;
	case OPT_WRITE_CONFIG_TO: set_str(&cfg->write_config_to, val); return 0;
	case OPT_CLEANUP: BOOLV(cfg->cleanup);
	case OPT_DRY_RUN: BOOLV(cfg->dry_run);
	case OPT_KUBECONFIG: set_str(&cfg->kubeconfig, val); return 0;
	case OPT_MASTER: set_str(&cfg->master, val); return 0;
	case OPT_KUBE_API_CONTENT_TYPE: set_str(&cfg->kube_api_content_type, val); return 0;
	case OPT_KUBE_API_BURST: INTV(cfg->kube_api_burst);
	case OPT_KUBE_API_QPS: {
		char *end;
		double d;

		errno = 0;
		d = strtod(val, &end);
		if (!*val || *end || errno)
			return fail(err, who, "\"%s\" is not a number", val);
		cfg->kube_api_qps = d;
		return 0;
	}
	case OPT_HOSTNAME_OVERRIDE:
		if (!*val)
			return 0; /* upstream: an empty flag is "unset" */
		free(cfg->hostname_override);
		cfg->hostname_override = trim_lower(val);
		if (!*cfg->hostname_override)
			return fail(err, who, "\"%s\": an empty hostname override is invalid", val);
		return 0;
	case OPT_BIND_ADDRESS: set_str(&cfg->bind_address, val); return 0;
	case OPT_HEALTHZ_BIND_ADDRESS: set_str(&cfg->healthz_bind_address, val); return 0;
	case OPT_METRICS_BIND_ADDRESS: set_str(&cfg->metrics_bind_address, val); return 0;
	case OPT_HEALTHZ_PORT:
	case OPT_METRICS_PORT:
		if (parse_int32(val, &i) < 0 || i < 0 || i > 65535)
			return fail(err, who, "\"%s\" is not a valid port (0-65535)", val);
		*(id == OPT_HEALTHZ_PORT ? hz_port : metrics_port) = i;
		return 0;
	case OPT_BIND_ADDRESS_HARD_FAIL: BOOLV(cfg->bind_address_hard_fail);
	case OPT_PROFILING: BOOLV(cfg->enable_profiling);
	case OPT_SHOW_HIDDEN_METRICS: set_str(&cfg->show_hidden_metrics_for_version, val); return 0;
	case OPT_FEATURE_GATES: {
		char *copy = xstrdup(val), *save = NULL, *tok;
		int rc = 0;

		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(tok, '=');

			while (*tok == ' ')
				tok++;
			if (!eq || parse_bool(eq + 1, &b) < 0) {
				rc = fail(err, who, "\"%s\": expected key=true|false", tok);
				break;
			}
			*eq = '\0';
			log_warn("--feature-gates: feature gate %s=%s is ignored by this implementation", tok,
				 b ? "true" : "false");
		}
		free(copy);
		return rc;
	}
	case OPT_PROXY_MODE: set_str(&cfg->proxy_mode, val); return 0;
	case OPT_MASQUERADE_ALL: BOOLV(cfg->masquerade_all);
	case OPT_MASQUERADE_BIT: INTV(cfg->masquerade_bit);
	case OPT_LOCALHOST_NODEPORTS: BOOLV(cfg->localhost_nodeports);
	case OPT_IPT_SYNC: return set_dur_ms(&cfg->sync_period_ms, val, who, err);
	case OPT_IPT_MIN_SYNC: return set_dur_ms(&cfg->min_sync_period_ms, val, who, err);
	case OPT_IPVS_SCHEDULER: set_str(&cfg->ipvs_scheduler, val); return 0;
	case OPT_IPVS_SYNC: return set_dur_ms(&cfg->ipvs_sync_period_ms, val, who, err);
	case OPT_IPVS_MIN_SYNC: return set_dur_ms(&cfg->ipvs_min_sync_period_ms, val, who, err);
	case OPT_IPVS_EXCLUDE:
		/* pflag string slices: the first use replaces, later uses append */
		if (!*exclude_seen)
			cfg->n_ipvs_exclude_cidrs = 0;
		*exclude_seen = true;
		return add_cidr_csv(val, cfg->ipvs_exclude_cidrs, &cfg->n_ipvs_exclude_cidrs, NULL, who, err);
	case OPT_IPVS_STRICT_ARP: BOOLV(cfg->ipvs_strict_arp);
	case OPT_IPVS_TCP_TIMEOUT: return set_dur_s(&cfg->ipvs_tcp_timeout_s, val, who, err);
	case OPT_IPVS_TCPFIN_TIMEOUT: return set_dur_s(&cfg->ipvs_tcpfin_timeout_s, val, who, err);
	case OPT_IPVS_UDP_TIMEOUT: return set_dur_s(&cfg->ipvs_udp_timeout_s, val, who, err);
	case OPT_CLUSTER_CIDR:
		return set_cidr_pair(val, cfg->cluster_cidrs, &cfg->n_cluster_cidrs, &cfg->cluster_cidr_str, who, err);
	case OPT_SERVICE_CIDR:
		return set_cidr_pair(val, cfg->service_cidrs, &cfg->n_service_cidrs, &cfg->service_cidr_str, who, err);
	case OPT_NODEPORT_ADDRESSES:
		if (!*nodeport_seen) {
			cfg->n_nodeport_addresses = 0;
			cfg->nodeport_primary = false;
		}
		*nodeport_seen = true;
		return add_cidr_csv(val, cfg->nodeport_addresses, &cfg->n_nodeport_addresses, &cfg->nodeport_primary,
				    who, err);
	case OPT_DETECT_LOCAL_MODE: set_str(&cfg->detect_local_mode, val); return 0;
	case OPT_POD_BRIDGE: set_str(&cfg->bridge_interface, val); return 0;
	case OPT_POD_IFPREFIX: set_str(&cfg->interface_name_prefix, val); return 0;
	case OPT_PROXY_PORT_RANGE: set_str(&cfg->proxy_port_range, val); return 0;
	case OPT_UDP_TIMEOUT: return set_dur_ms(&cfg->udp_idle_timeout_ms, val, who, err);
	case OPT_CT_MAX_PER_CORE: INTV(cfg->conntrack_max_per_core);
	case OPT_CT_MIN: INTV(cfg->conntrack_min);
	case OPT_CT_TCP_ESTABLISHED: return set_dur_s(&cfg->conntrack_tcp_established_s, val, who, err);
	case OPT_CT_TCP_CLOSE_WAIT: return set_dur_s(&cfg->conntrack_tcp_close_wait_s, val, who, err);
	case OPT_CT_TCP_BE_LIBERAL: BOOLV(cfg->conntrack_tcp_be_liberal);
	case OPT_CT_UDP: return set_dur_s(&cfg->conntrack_udp_timeout_s, val, who, err);
	case OPT_CT_UDP_STREAM: return set_dur_s(&cfg->conntrack_udp_stream_timeout_s, val, who, err);
	case OPT_CONFIG_SYNC: return set_dur_ms(&cfg->config_sync_period_ms, val, who, err);
	case OPT_OOM:
		if (parse_int32(val, &i) < 0)
			return fail(err, who, "\"%s\" is not a 32-bit integer", val);
		cfg->oom_score_adj = i;
		cfg->oom_score_adj_set = true;
		return 0;
	case OPT_V:
		if (parse_int32(val, &i) < 0 || i < 0)
			return fail(err, who, "\"%s\" is not a valid log level (integer >= 0)", val);
		cfg->verbosity = i;
		return 0;
	case OPT_MANIFEST_DIR: set_str(&cfg->manifest_dir, val); return 0;
	case OPT_LOG_FILE: set_str(&cfg->log_file, val); return 0;
	case OPT_STATE_DIR: set_str(&cfg->state_dir, val); return 0;
	}
	return fail(err, who, "unhandled flag");
#undef BOOLV
#undef INTV
}

/* Fills node_name: the override, else uname's nodename; trimmed and
 * lower-cased as upstream's GetHostname. */
static int resolve_node_name(struct config *cfg, const char *path, char **err)
{
	struct utsname u;
	const char *src;

	free_and_null(&cfg->node_name);
	if (cfg->hostname_override && *cfg->hostname_override) {
		src = cfg->hostname_override;
	} else {
		if (uname(&u) < 0)
			return fail(err, NULL, "cannot determine the node name: uname: %s", strerror(errno));
		src = u.nodename;
	}
	cfg->node_name = trim_lower(src);
	if (!*cfg->node_name) {
		char *who = who_name(path, "--hostname-override", "hostnameOverride");
		int rc = fail(err, who, "\"%s\": the node name is empty", src);

		free(who);
		return rc;
	}
	return 0;
}

/* Moves the flags that win over the file from src (flags) into dst (file). */
static void keep_flags(struct config *dst, struct config *src, const bool *seen)
{
#define MOVE(f) do { free(dst->f); dst->f = src->f; src->f = NULL; } while (0)
	MOVE(config_file);
	MOVE(write_config_to);
	MOVE(master);
	MOVE(manifest_dir);
	MOVE(log_file);
	MOVE(state_dir);
	MOVE(service_cidr_str);
	memcpy(dst->service_cidrs, src->service_cidrs, sizeof(src->service_cidrs));
	dst->n_service_cidrs = src->n_service_cidrs;
	dst->cleanup = src->cleanup;
	dst->dry_run = src->dry_run;
	if (seen[OPT_V])
		dst->verbosity = src->verbosity;
	if (src->hostname_override && *src->hostname_override)
		MOVE(hostname_override);
#undef MOVE
}

enum config_action config_parse(struct config *cfg, int argc, char **argv, char **err)
{
	struct option lopts[ARRAY_SIZE(opts) + 1];
	bool seen[OPT_LAST] = { false };
	bool nodeport_seen = false, exclude_seen = false;
	int hz_port = -1, metrics_port = -1;
	char **args = NULL;
	enum config_action act = CONFIG_EXIT_FAIL;
	int c, rc;

	if (err)
		*err = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		lopts[i] = (struct option){ opts[i].name, opts[i].has_arg, NULL, opts[i].id };
	lopts[ARRAY_SIZE(opts)] = (struct option){ NULL, 0, NULL, 0 };

	/* Work on a copy: getopt permutes argv, and pflag's normalisation
	 * makes --proxy_mode the same flag as --proxy-mode. */
	args = xcalloc((size_t)argc + 1, sizeof(*args));
	for (int i = 0; i < argc; i++) {
		args[i] = xstrdup(argv[i]);
		if (i > 0 && str_has_prefix(args[i], "--"))
			for (char *p = args[i] + 2; *p && *p != '='; p++)
				if (*p == '_')
					*p = '-';
	}

	/* getopt_long accepts unambiguous prefixes (--clean for --cleanup);
	 * pflag does not, so neither do we. */
	for (int i = 1; i < argc; i++) {
		const char *a = args[i], *eq;
		size_t len, k;

		if (strcmp(a, "--") == 0)
			break;
		if (!str_has_prefix(a, "--"))
			continue;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		for (k = 0; k < ARRAY_SIZE(opts); k++)
			if (strlen(opts[k].name) == len && strncmp(opts[k].name, a + 2, len) == 0)
				break;
		if (k == ARRAY_SIZE(opts)) {
			fail(err, NULL, "unknown flag: %.*s (see --help)", (int)(len + 2), a);
			goto out;
		}
		if (!eq && opts[k].has_arg == required_argument)
			i++; /* the next argument is the value, whatever it looks like */
	}

	optind = 0; /* full re-initialisation (GNU), so tests can call us repeatedly */
	opterr = 0;
	while ((c = getopt_long(argc, args, ":hv:", lopts, NULL)) != -1) {
		const struct opt_doc *o;
		const char *bad = args[optind - 1];

		if (c == '?') {
			fail(err, NULL, "unknown flag: %s (see --help)", bad);
			goto out;
		}
		if (c == ':') {
			fail(err, NULL, "flag needs an argument: %s", bad);
			goto out;
		}
		if (c == OPT_HELP) {
			print_help(stdout);
			act = CONFIG_EXIT_OK;
			goto out;
		}
		if (c == OPT_VERSION) {
			bool show = true;

			if (optarg && parse_bool(optarg, &show) < 0) {
				fail(err, "--version", "\"%s\" is not a boolean (true or false)", optarg);
				goto out;
			}
			if (show) {
				printf("kube-proxy version v%s (C implementation)\n", PACKAGE_VERSION);
				act = CONFIG_EXIT_OK;
				goto out;
			}
			continue;
		}
		o = opt_find(c);
		if (!o) {
			fail(err, NULL, "unknown flag: %s", bad);
			goto out;
		}
		if (apply_flag(cfg, c, o->name, optarg, &hz_port, &metrics_port, &nodeport_seen, &exclude_seen,
			       err) < 0)
			goto out;
		if (c < OPT_LAST)
			seen[c] = true;
	}
	if (optind < argc) {
		fail(err, NULL, "kube-proxy does not take arguments, got \"%s\"", args[optind]);
		goto out;
	}

	if (cfg->config_file) {
		struct config file;

		for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
			if (seen[opts[i].id] && !(opts[i].flags & KEEP))
				log_warn("Flag --%s is ignored because --config is given (the file's values take precedence)",
					 opts[i].name);
		config_defaults(&file);
		rc = decode_file(&file, cfg->config_file, err);
		if (rc == 0) {
			keep_flags(&file, cfg, seen);
			rc = validate(&file, file.config_file, err);
		}
		config_free(cfg);
		*cfg = file;
		if (rc < 0)
			goto out;
	} else {
		/* upstream: the deprecated port flags, and a bare IP given for a
		 * listener, only apply without --config */
		char *s;

		if (hz_port == 0) {
			set_str(&cfg->healthz_bind_address, "");
		} else if (*cfg->healthz_bind_address) {
			s = append_port_if_needed(cfg->healthz_bind_address, hz_port > 0 ? hz_port : DEFAULT_HEALTHZ_PORT);
			free(cfg->healthz_bind_address);
			cfg->healthz_bind_address = s;
		}
		if (metrics_port == 0) {
			set_str(&cfg->metrics_bind_address, "");
		} else if (*cfg->metrics_bind_address) {
			s = append_port_if_needed(cfg->metrics_bind_address,
						  metrics_port > 0 ? metrics_port : DEFAULT_METRICS_PORT);
			free(cfg->metrics_bind_address);
			cfg->metrics_bind_address = s;
		}
		if (validate(cfg, NULL, err) < 0)
			goto out;
	}
	if (resolve_node_name(cfg, cfg->config_file, err) < 0)
		goto out;

	if (cfg->write_config_to) {
		char *doc = config_render(cfg);

		rc = write_file_atomic(cfg->write_config_to, doc, strlen(doc), 0644);
		free(doc);
		if (rc < 0) {
			fail(err, "--write-config-to", "%s: %s", cfg->write_config_to, strerror(-rc));
			goto out;
		}
		log_info("Wrote configuration to %s", cfg->write_config_to);
		act = CONFIG_EXIT_OK;
		goto out;
	}
	act = CONFIG_RUN;
out:
	for (int i = 0; i < argc; i++)
		free(args[i]);
	free(args);
	return act;
}
