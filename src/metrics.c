#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../modes/mode.h"
#include "metrics.h"

struct histogram {
	const double *bounds;     /* upper bounds, ascending, +Inf implied */
	size_t n;
	unsigned long long *counts; /* per bucket (not cumulative), n + 1 */
	unsigned long long count;
	double sum;
};

struct metrics {
	bool iptables, ipvs;
	double sync_bounds[15];
	double netprog_bounds[1 + 2 + 59 + 12 + 7];
	struct histogram sync, sync_full, sync_partial, netprog;
	unsigned long long failures;
	double last_sync, last_queued;
	bool have_rules;
	unsigned long rules_nat, rules_filter;
	unsigned long no_local_internal, no_local_external;
};

static void hist_init(struct histogram *h, const double *bounds, size_t n)
{
	h->bounds = bounds;
	h->n = n;
	h->counts = xcalloc(n + 1, sizeof(*h->counts));
}

static void hist_observe(struct histogram *h, double v)
{
	size_t i = 0;

	while (i < h->n && v > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

struct metrics *metrics_new(const char *mode_name)
{
	struct metrics *m = xcalloc(1, sizeof(*m));
	size_t k = 0;

	m->iptables = mode_name && strcmp(mode_name, "iptables") == 0;
	m->ipvs = mode_name && strcmp(mode_name, "ipvs") == 0;
	/* Upstream: exponential buckets from 1ms, factor 2, 15 of them. */
	m->sync_bounds[0] = 0.001;
	for (size_t i = 1; i < ARRAY_SIZE(m->sync_bounds); i++)
		m->sync_bounds[i] = m->sync_bounds[i - 1] * 2;
	/* Upstream: 0, 0.25, 0.5, 1..59 by 1, 60..115 by 5, 120..300 by 30. */
	m->netprog_bounds[k++] = 0;
	for (int i = 1; i <= 2; i++)
		m->netprog_bounds[k++] = 0.25 * i;
	for (int i = 1; i <= 59; i++)
		m->netprog_bounds[k++] = i;
	for (int i = 0; i < 12; i++)
		m->netprog_bounds[k++] = 60 + 5 * i;
	for (int i = 0; i < 7; i++)
		m->netprog_bounds[k++] = 120 + 30 * i;
	hist_init(&m->sync, m->sync_bounds, ARRAY_SIZE(m->sync_bounds));
	hist_init(&m->sync_full, m->sync_bounds, ARRAY_SIZE(m->sync_bounds));
	hist_init(&m->sync_partial, m->sync_bounds, ARRAY_SIZE(m->sync_bounds));
	hist_init(&m->netprog, m->netprog_bounds, k);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	free(m->sync.counts);
	free(m->sync_full.counts);
	free(m->sync_partial.counts);
	free(m->netprog.counts);
	free(m);
}

void metrics_record_sync(struct metrics *m, double seconds, bool full, bool ok, double now,
			 double queued_at, const struct sync_stats *ss)
{
	/* Upstream observes the latency of every attempt, failed or not. */
	hist_observe(&m->sync, seconds);
	hist_observe(full ? &m->sync_full : &m->sync_partial, seconds);
	if (queued_at > m->last_queued)
		m->last_queued = queued_at;
	if (!ok) {
		m->failures++;
		return;
	}
	m->last_sync = now;
	if (queued_at > 0 && now >= queued_at)
		hist_observe(&m->netprog, now - queued_at);
	if (ss) {
		m->have_rules = true;
		m->rules_nat = ss->rules_nat;
		m->rules_filter = ss->rules_filter;
	}
}

void metrics_set_no_local_endpoints(struct metrics *m, unsigned long internal, unsigned long external)
{
	m->no_local_internal = internal;
	m->no_local_external = external;
}

/* ---- number formatting -------------------------------------------------- */

char *metrics_fmt_float(double v, char *buf, size_t n)
{
	char tmp[40], *e;
	int prec, exp;

	if (isnan(v)) {
		snprintf(buf, n, "NaN");
		return buf;
	}
	if (isinf(v)) {
		snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
		return buf;
	}
	if (v == 0) {
		snprintf(buf, n, signbit(v) ? "-0" : "0");
		return buf;
	}
	/* Shortest number of significant digits that reads back exactly. */
	for (prec = 1; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
	e = strchr(tmp, 'e');
	exp = atoi(e + 1);
	if (exp < -4 || exp >= 6) {
		/* Go keeps at least two exponent digits, like C. */
		snprintf(buf, n, "%s", tmp);
		return buf;
	}
	snprintf(buf, n, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, v);
	return buf;
}

/* ---- exposition --------------------------------------------------------- */

static void family(struct strbuf *out, const char *name, const char *type, const char *help)
{
	sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct strbuf *out, const char *name, const char *labels, double v)
{
	char num[40];

	metrics_fmt_float(v, num, sizeof(num));
	if (labels && *labels)
		sb_printf(out, "%s{%s} %s\n", name, labels, num);
	else
		sb_printf(out, "%s %s\n", name, num);
}

void metrics_counter(struct strbuf *out, const char *name, const char *help, double v)
{
	family(out, name, "counter", help);
	sample(out, name, NULL, v);
}

static void histogram(struct strbuf *out, const char *name, const char *help, const struct histogram *h)
{
	unsigned long long cum = 0;
	char num[40];

	family(out, name, "histogram", help);
	for (size_t i = 0; i < h->n; i++) {
		cum += h->counts[i];
		metrics_fmt_float(h->bounds[i], num, sizeof(num));
		sb_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, num, cum);
	}
	cum += h->counts[h->n];
	sb_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
	metrics_fmt_float(h->sum, num, sizeof(num));
	sb_printf(out, "%s_sum %s\n%s_count %llu\n", name, num, name, h->count);
}

static void code_counter(struct strbuf *out, const char *name, const char *help, const unsigned long long c[2])
{
	if (!c[0] && !c[1])
		return;
	family(out, name, "counter", help);
	if (c[0])
		sb_printf(out, "%s{code=\"200\"} %llu\n", name, c[0]);
	if (c[1])
		sb_printf(out, "%s{code=\"503\"} %llu\n", name, c[1]);
}

struct proc_sample {
	bool ok;
	double cpu, start, rss, vsize;
	double open_fds, max_fds;
};

static void read_proc(struct proc_sample *p)
{
	char *stat = NULL, *sys = NULL, *s;
	size_t len;
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	double btime = 0;
	struct rlimit rl;
	DIR *d;

	memset(p, 0, sizeof(*p));
	if (read_file("/proc/self/stat", &stat, &len) < 0)
		goto out;
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	s = strrchr(stat, ')');
	if (!s || tck <= 0)
		goto out;
	/* Fields from 3 (state) on; utime is 14, stime 15, starttime 22,
	 * vsize 23, rss 24. */
	if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
		   &utime, &stime, &start, &vsize, &rss) != 5)
		goto out;
	if (read_file("/proc/stat", &sys, &len) == 0) {
		char *b = strstr(sys, "\nbtime ");

		if (b)
			btime = strtod(b + 7, NULL);
	}
	p->cpu = (double)(utime + stime) / (double)tck;
	p->start = btime + (double)start / (double)tck;
	p->vsize = (double)vsize;
	p->rss = (double)rss * (double)page;
	d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *de;
		double n = 0;

		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				n++;
		closedir(d);
		p->open_fds = n - 1;   /* not counting the directory we just read */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
	p->ok = true;
out:
	free(stat);
	free(sys);
}

void metrics_render(struct metrics *m, const struct metrics_inputs *in, struct strbuf *out)
{
	static const struct metrics_inputs zero;
	struct proc_sample ps;
	char labels[64];

	if (!in)
		in = &zero;
	if (in->last_queued_time > m->last_queued)
		m->last_queued = in->last_queued_time;
	/* Families sorted by name, as the Go registry writes them. */
	histogram(out, "kubeproxy_network_programming_duration_seconds",
		  "[ALPHA] In Cluster Network Programming Latency in seconds", &m->netprog);
	code_counter(out, "kubeproxy_proxy_healthz_total", "[ALPHA] Cumulative proxy healthz HTTP status", in->healthz);
	code_counter(out, "kubeproxy_proxy_livez_total", "[ALPHA] Cumulative proxy livez HTTP status", in->livez);
	if (m->iptables)
		histogram(out, "kubeproxy_sync_full_proxy_rules_duration_seconds",
			  "[ALPHA] SyncProxyRules latency in seconds for full resyncs", &m->sync_full);
	if (m->iptables)
		histogram(out, "kubeproxy_sync_partial_proxy_rules_duration_seconds",
			  "[ALPHA] SyncProxyRules latency in seconds for partial resyncs", &m->sync_partial);
	histogram(out, "kubeproxy_sync_proxy_rules_duration_seconds",
		  "[ALPHA] SyncProxyRules latency in seconds", &m->sync);
	family(out, "kubeproxy_sync_proxy_rules_endpoint_changes_total", "counter",
	       "[ALPHA] Cumulative proxy rules Endpoint changes");
	sample(out, "kubeproxy_sync_proxy_rules_endpoint_changes_total", NULL, (double)in->endpoint_changes);
	if (m->iptables || m->ipvs) {
		family(out, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", "counter",
		       "[ALPHA] Cumulative proxy iptables restore failures");
		sample(out, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", NULL, (double)m->failures);
	}
	if (m->iptables && m->have_rules) {
		family(out, "kubeproxy_sync_proxy_rules_iptables_total", "gauge",
		       "[ALPHA] Total number of iptables rules owned by kube-proxy");
		sample(out, "kubeproxy_sync_proxy_rules_iptables_total", "table=\"filter\"", (double)m->rules_filter);
		sample(out, "kubeproxy_sync_proxy_rules_iptables_total", "table=\"nat\"", (double)m->rules_nat);
	}
	family(out, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "gauge",
	       "[ALPHA] The last time a sync of proxy rules was queued");
	sample(out, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", NULL, m->last_queued);
	family(out, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge",
	       "[ALPHA] The last time proxy rules were successfully synced");
	sample(out, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", NULL, m->last_sync);
	family(out, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", "gauge",
	       "[ALPHA] Number of services with a Local traffic policy and no endpoints");
	snprintf(labels, sizeof(labels), "traffic_policy=\"external\"");
	sample(out, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", labels, (double)m->no_local_external);
	snprintf(labels, sizeof(labels), "traffic_policy=\"internal\"");
	sample(out, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", labels, (double)m->no_local_internal);
	family(out, "kubeproxy_sync_proxy_rules_service_changes_total", "counter",
	       "[ALPHA] Cumulative proxy rules Service changes");
	sample(out, "kubeproxy_sync_proxy_rules_service_changes_total", NULL, (double)in->service_changes);

	read_proc(&ps);
	if (!ps.ok)
		return;
	family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
	sample(out, "process_cpu_seconds_total", NULL, ps.cpu);
	family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
	sample(out, "process_max_fds", NULL, ps.max_fds);
	family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
	sample(out, "process_open_fds", NULL, ps.open_fds);
	family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	sample(out, "process_resident_memory_bytes", NULL, ps.rss);
	family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
	sample(out, "process_start_time_seconds", NULL, ps.start);
	family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	sample(out, "process_virtual_memory_bytes", NULL, ps.vsize);
}
