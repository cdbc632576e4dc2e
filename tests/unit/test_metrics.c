#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <ctype.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "modes/mode.h"
#include "src/metrics.h"
#include "src/util.h"

/* ---- a strict parser for the text exposition format 0.0.4 --------------- */

struct sample {
	char name[128];
	char labels[8][2][128];   /* name, unescaped value */
	int n_labels;
	double value;
};

struct family {
	char name[128];
	char type[16];
	bool help;
	struct sample *samples;
	size_t n;
};

struct expo {
	struct family *fams;
	size_t n;
};

static bool metric_name_ok(const char *s)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
		return false;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == ':'))
			return false;
	return true;
}

static bool label_name_ok(const char *s)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static bool parse_value(const char *s, double *v)
{
	char *end;

	if (strcmp(s, "+Inf") == 0) {
		*v = INFINITY;
		return true;
	}
	if (strcmp(s, "-Inf") == 0) {
		*v = -INFINITY;
		return true;
	}
	if (strcmp(s, "NaN") == 0) {
		*v = NAN;
		return true;
	}
	if (!*s || isspace((unsigned char)*s))
		return false;
	*v = strtod(s, &end);
	return *end == 0 && !isinf(*v) && !isnan(*v);
}

static const char *suffix_of(const char *sample, const char *fam)
{
	size_t n = strlen(fam);

	return strncmp(sample, fam, n) == 0 ? sample + n : NULL;
}

static char perr[1024];

#define BAD(...) do { snprintf(perr, sizeof(perr), __VA_ARGS__); goto bad; } while (0)

/* Parses text into e. Returns false with perr set on any error. */
static bool expo_try_parse(const char *text, struct expo *e)
{
	char *copy = xstrdup(text), *save = NULL, *line;
	struct family *cur = NULL;
	int lineno = 0;

	memset(e, 0, sizeof(*e));
	if (!*text || text[strlen(text) - 1] != '\n')
		BAD("no final newline");
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (!*line)
			BAD("line %d: empty line", lineno);
		if (line[0] == '#') {
			char kw[8], name[128];
			int off = 0;

			if (sscanf(line, "# %7s %127s %n", kw, name, &off) < 2)
				BAD("line %d: bad comment: %s", lineno, line);
			if (!metric_name_ok(name))
				BAD("line %d: bad metric name %s", lineno, name);
			if (strcmp(kw, "HELP") == 0) {
				for (size_t i = 0; i < e->n; i++)
					if (strcmp(e->fams[i].name, name) == 0)
						BAD("line %d: family %s repeated", lineno, name);
				e->fams = xrealloc(e->fams, (e->n + 1) * sizeof(*e->fams));
				cur = &e->fams[e->n++];
				memset(cur, 0, sizeof(*cur));
				snprintf(cur->name, sizeof(cur->name), "%s", name);
				cur->help = true;
				if (!off || !line[off])
					BAD("line %d: empty HELP", lineno);
			} else if (strcmp(kw, "TYPE") == 0) {
				const char *t = line + off;

				if (!cur || strcmp(cur->name, name) != 0 || cur->type[0] || cur->n)
					BAD("line %d: TYPE not right after its HELP", lineno);
				if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
				    strcmp(t, "summary") && strcmp(t, "untyped"))
					BAD("line %d: bad type %s", lineno, t);
				snprintf(cur->type, sizeof(cur->type), "%s", t);
			} else {
				BAD("line %d: unknown comment keyword %s", lineno, kw);
			}
			continue;
		}
		{
			struct sample s = { 0 };
			char *p = line, *sp;
			size_t nl = strcspn(p, "{ ");
			const char *suf;

			if (!cur || !cur->type[0])
				BAD("line %d: sample before HELP/TYPE", lineno);
			if (nl >= sizeof(s.name))
				BAD("line %d: name too long", lineno);
			memcpy(s.name, p, nl);
			s.name[nl] = 0;
			if (!metric_name_ok(s.name))
				BAD("line %d: bad sample name %s", lineno, s.name);
			p += nl;
			if (*p == '{') {
				p++;
				while (*p != '}') {
					char *eq = strchr(p, '='), *v;
					size_t k = 0;

					if (!eq || eq[1] != '"' || s.n_labels == 8)
						BAD("line %d: bad label", lineno);
					*eq = 0;
					if (!label_name_ok(p))
						BAD("line %d: bad label name %s", lineno, p);
					snprintf(s.labels[s.n_labels][0], 128, "%s", p);
					v = eq + 2;
					while (*v != '"') {
						if (!*v || k >= 127)
							BAD("line %d: unterminated label value", lineno);
						if (*v == '\\') {
							v++;
							if (*v != '\\' && *v != '"' && *v != 'n')
								BAD("line %d: bad escape", lineno);
							s.labels[s.n_labels][1][k++] = *v == 'n' ? '\n' : *v;
						} else {
							s.labels[s.n_labels][1][k++] = *v;
						}
						v++;
					}
					s.labels[s.n_labels][1][k] = 0;
					for (int i = 0; i < s.n_labels; i++)
						if (strcmp(s.labels[i][0], s.labels[s.n_labels][0]) == 0)
							BAD("line %d: duplicate label", lineno);
					s.n_labels++;
					p = v + 1;
					if (*p == ',')
						p++;
					else if (*p != '}')
						BAD("line %d: expected , or }", lineno);
				}
				p++;
			}
			if (*p != ' ')
				BAD("line %d: expected a space before the value", lineno);
			p++;
			sp = strchr(p, ' ');
			if (sp)
				BAD("line %d: timestamps are not expected here", lineno);
			if (!parse_value(p, &s.value))
				BAD("line %d: bad value \"%s\"", lineno, p);
			suf = suffix_of(s.name, cur->name);
			if (!suf)
				BAD("line %d: sample %s outside family %s", lineno, s.name, cur->name);
			if (strcmp(cur->type, "histogram") == 0) {
				if (strcmp(suf, "_bucket") && strcmp(suf, "_sum") && strcmp(suf, "_count"))
					BAD("line %d: bad histogram sample %s", lineno, s.name);
			} else if (*suf) {
				BAD("line %d: sample %s does not match %s", lineno, s.name, cur->name);
			}
			if (strcmp(cur->type, "counter") == 0 && s.value < 0)
				BAD("line %d: negative counter", lineno);
			cur->samples = xrealloc(cur->samples, (cur->n + 1) * sizeof(s));
			cur->samples[cur->n++] = s;
		}
	}
	free(copy);
	copy = NULL;
	/* Per family: samples present, histogram invariants. */
	for (size_t i = 0; i < e->n; i++) {
		struct family *f = &e->fams[i];
		double last_le = -INFINITY, last_count = 0, count = -1, sum = NAN;
		bool inf = false;

		if (i && strcmp(e->fams[i - 1].name, f->name) >= 0)
			BAD("families not sorted: %s after %s", f->name, e->fams[i - 1].name);
		if (!f->n)
			BAD("family %s has no samples", f->name);
		if (strcmp(f->type, "histogram") != 0)
			continue;
		for (size_t k = 0; k < f->n; k++) {
			struct sample *s = &f->samples[k];
			const char *suf = suffix_of(s->name, f->name);

			if (strcmp(suf, "_bucket") == 0) {
				double le;

				if (inf || count >= 0 || !isnan(sum))
					BAD("%s: bucket after +Inf/_sum/_count", f->name);
				if (s->n_labels != 1 || strcmp(s->labels[0][0], "le") != 0 ||
				    !parse_value(s->labels[0][1], &le))
					BAD("%s: bucket without a valid le", f->name);
				if (le <= last_le)
					BAD("%s: le not increasing (%s)", f->name, s->labels[0][1]);
				if (s->value < last_count)
					BAD("%s: buckets not cumulative at le=%s", f->name, s->labels[0][1]);
				if (s->value != floor(s->value))
					BAD("%s: fractional bucket count", f->name);
				last_le = le;
				last_count = s->value;
				inf = isinf(le);
			} else if (strcmp(suf, "_sum") == 0) {
				sum = s->value;
			} else {
				count = s->value;
			}
		}
		if (!inf)
			BAD("%s: no +Inf bucket", f->name);
		if (count < 0 || isnan(sum))
			BAD("%s: missing _sum or _count", f->name);
		if (count != last_count)
			BAD("%s: _count %g != +Inf bucket %g", f->name, count, last_count);
	}
	return true;
bad:
	free(copy);
	return false;
}
static void expo_free(struct expo *e);

static void expo_parse(const char *text, struct expo *e)
{
	if (!expo_try_parse(text, e)) {
		expo_free(e);
		fail_msg("exposition: %s\n%s", perr, text);
	}
}

static void expo_free(struct expo *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->fams[i].samples);
	free(e->fams);
}

static const struct family *fam(const struct expo *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->fams[i].name, name) == 0)
			return &e->fams[i];
	return NULL;
}

/* Value of the sample with that exact name and (optional) one label. */
static double val(const struct expo *e, const char *name, const char *lname, const char *lval)
{
	for (size_t i = 0; i < e->n; i++) {
		for (size_t k = 0; k < e->fams[i].n; k++) {
			const struct sample *s = &e->fams[i].samples[k];

			if (strcmp(s->name, name) != 0)
				continue;
			if (lname && (s->n_labels != 1 || strcmp(s->labels[0][0], lname) ||
				      strcmp(s->labels[0][1], lval)))
				continue;
			return s->value;
		}
	}
	fail_msg("no sample %s{%s=%s}", name, lname ? lname : "", lval ? lval : "");
	return NAN;
}

/* ---- tests -------------------------------------------------------------- */

static void test_fmt_float(void **state)
{
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{ 0, "0" }, { 1, "1" }, { -1, "-1" }, { 0.001, "0.001" }, { 0.25, "0.25" },
		{ 16.384, "16.384" }, { 123456, "123456" }, { 1234567, "1.234567e+06" },
		{ 1.7e9, "1.7e+09" }, { 1732700000.125, "1.732700000125e+09" },
		{ 0.0001, "0.0001" }, { 0.00001, "1e-05" }, { 1e21, "1e+21" },
		{ 0.1 + 0.2, "0.30000000000000004" }, { 2.5e-7, "2.5e-07" },
	};
	char buf[40];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_string_equal(metrics_fmt_float(cases[i].v, buf, sizeof(buf)), cases[i].s);
	assert_string_equal(metrics_fmt_float(INFINITY, buf, sizeof(buf)), "+Inf");
	assert_string_equal(metrics_fmt_float(-INFINITY, buf, sizeof(buf)), "-Inf");
	assert_string_equal(metrics_fmt_float(NAN, buf, sizeof(buf)), "NaN");
}

static char *render(struct metrics *m, const struct metrics_inputs *in)
{
	struct strbuf sb;

	sb_init(&sb);
	metrics_render(m, in, &sb);
	return sb_steal(&sb);
}

static void test_iptables_families(void **state)
{
	struct metrics *m = metrics_new("iptables");
	struct sync_stats ss = { .rules_nat = 42, .rules_filter = 7 };
	struct metrics_inputs in = {
		.service_changes = 5, .endpoint_changes = 9,
		.healthz = { 3, 1 }, .livez = { 2, 0 },
		.last_queued_time = 1700000000.5,
	};
	struct expo e;
	char *text;

	/* Three syncs: 0.5 ms full (first bucket), 3 ms partial, 20 s failed partial. */
	metrics_record_sync(m, 0.0005, true, true, 1700000001.0, 1700000000.5, &ss);
	metrics_record_sync(m, 0.003, false, true, 1700000002.0, 0, &ss);
	metrics_record_sync(m, 20, false, false, 1700000030.0, 1700000029.0, NULL);
	metrics_set_no_local_endpoints(m, 2, 1);
	text = render(m, &in);
	expo_parse(text, &e);

	assert_non_null(fam(&e, "kubeproxy_sync_full_proxy_rules_duration_seconds"));
	assert_non_null(fam(&e, "kubeproxy_sync_partial_proxy_rules_duration_seconds"));
	assert_string_equal(fam(&e, "kubeproxy_sync_proxy_rules_duration_seconds")->type, "histogram");
	assert_string_equal(fam(&e, "kubeproxy_sync_proxy_rules_endpoint_changes_total")->type, "counter");
	assert_string_equal(fam(&e, "kubeproxy_sync_proxy_rules_last_timestamp_seconds")->type, "gauge");
	assert_non_null(strstr(text, "# HELP kubeproxy_sync_proxy_rules_duration_seconds [ALPHA] SyncProxyRules latency in seconds\n"));

	/* Buckets: 0.001 holds the 0.5 ms sync, 0.004 adds the 3 ms one, 20 s
	 * only in +Inf (the largest bucket is 16.384). */
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", "le", "0.001") == 1);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", "le", "0.002") == 1);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", "le", "0.004") == 2);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", "le", "16.384") == 2);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_bucket", "le", "+Inf") == 3);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_count", NULL, NULL) == 3);
	assert_true(fabs(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_sum", NULL, NULL) - 20.0035) < 1e-9);
	assert_true(val(&e, "kubeproxy_sync_full_proxy_rules_duration_seconds_count", NULL, NULL) == 1);
	assert_true(val(&e, "kubeproxy_sync_partial_proxy_rules_duration_seconds_count", NULL, NULL) == 2);
	assert_int_equal(fam(&e, "kubeproxy_sync_proxy_rules_duration_seconds")->n, 15 + 1 + 2);

	/* Network programming: one sample of 0.5 s (the failed sync has none). */
	assert_true(val(&e, "kubeproxy_network_programming_duration_seconds_count", NULL, NULL) == 1);
	assert_true(val(&e, "kubeproxy_network_programming_duration_seconds_bucket", "le", "0.25") == 0);
	assert_true(val(&e, "kubeproxy_network_programming_duration_seconds_bucket", "le", "0.5") == 1);
	assert_true(val(&e, "kubeproxy_network_programming_duration_seconds_bucket", "le", "0") == 0);
	assert_true(val(&e, "kubeproxy_network_programming_duration_seconds_bucket", "le", "300") == 1);

	assert_true(val(&e, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", NULL, NULL) == 1);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_iptables_total", "table", "nat") == 42);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_iptables_total", "table", "filter") == 7);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_last_timestamp_seconds", NULL, NULL) == 1700000002.0);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", NULL, NULL) == 1700000029.0);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_service_changes_total", NULL, NULL) == 5);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_endpoint_changes_total", NULL, NULL) == 9);
	assert_true(val(&e, "kubeproxy_proxy_healthz_total", "code", "200") == 3);
	assert_true(val(&e, "kubeproxy_proxy_healthz_total", "code", "503") == 1);
	assert_true(val(&e, "kubeproxy_proxy_livez_total", "code", "200") == 2);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", "traffic_policy", "internal") == 2);
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_no_local_endpoints_total", "traffic_policy", "external") == 1);
	/* Gauges print like Go: 1.700000002e+09. */
	assert_non_null(strstr(text, "kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.700000002e+09\n"));

	/* Process metrics are real. */
	{
		double start = val(&e, "process_start_time_seconds", NULL, NULL);
		double now = wall_time();

		assert_true(start > now - 3600 && start <= now + 1);
		assert_true(val(&e, "process_resident_memory_bytes", NULL, NULL) > 1e5);
		assert_true(val(&e, "process_open_fds", NULL, NULL) >= 3);
		assert_true(val(&e, "process_max_fds", NULL, NULL) >= 64);
		assert_true(val(&e, "process_cpu_seconds_total", NULL, NULL) >= 0);
		assert_string_equal(fam(&e, "process_cpu_seconds_total")->type, "counter");
	}
	expo_free(&e);
	free(text);
	metrics_free(m);
}

static void test_mode_specific(void **state)
{
	struct metrics *m = metrics_new("ipvs");
	struct expo e;
	char *text = render(m, NULL);

	expo_parse(text, &e);
	/* ipvs: no full/partial split, no iptables rule counts, but failures. */
	assert_null(fam(&e, "kubeproxy_sync_full_proxy_rules_duration_seconds"));
	assert_null(fam(&e, "kubeproxy_sync_proxy_rules_iptables_total"));
	assert_non_null(fam(&e, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total"));
	/* No probe answered yet: those counter vectors are absent, as in Go. */
	assert_null(fam(&e, "kubeproxy_proxy_healthz_total"));
	assert_true(val(&e, "kubeproxy_sync_proxy_rules_duration_seconds_count", NULL, NULL) == 0);
	expo_free(&e);
	free(text);
	metrics_free(m);

	m = metrics_new("userspace");
	text = render(m, NULL);
	expo_parse(text, &e);
	assert_null(fam(&e, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total"));
	assert_non_null(fam(&e, "kubeproxy_sync_proxy_rules_duration_seconds"));
	expo_free(&e);
	free(text);
	metrics_free(m);
}

/* Our parser must reject what it claims to reject. */
/* A mode's own counter (the iptables mode's nfacct counters) comes out
 * like every other family, values formatted as upstream's client does. */
static void test_mode_counter(void **state)
{
	struct strbuf sb;

	(void)state;
	sb_init(&sb);
	metrics_counter(&sb, "kubeproxy_x_total", "[ALPHA] packets counted", 12);
	metrics_counter(&sb, "kubeproxy_y_total", "[ALPHA] many packets", 1234567);
	assert_string_equal(sb_cstr(&sb),
			    "# HELP kubeproxy_x_total [ALPHA] packets counted\n"
			    "# TYPE kubeproxy_x_total counter\n"
			    "kubeproxy_x_total 12\n"
			    "# HELP kubeproxy_y_total [ALPHA] many packets\n"
			    "# TYPE kubeproxy_y_total counter\n"
			    "kubeproxy_y_total 1.234567e+06\n");
	sb_free(&sb);
}

static void test_parser_rejects(void **state)
{
	static const char *bad[] = {
		"x 1\n",                                              /* no HELP/TYPE */
		"# HELP x h\n# TYPE x gauge\nx{a=\"1} 1\n",           /* bad label */
		"# HELP x h\n# TYPE x gauge\nx one\n",                /* bad value */
		"# HELP x h\n# TYPE x histogram\nx_bucket{le=\"1\"} 2\nx_bucket{le=\"+Inf\"} 1\nx_sum 1\nx_count 1\n",
		"# HELP x h\n# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_sum 1\nx_count 1\n",
		"# HELP b h\n# TYPE b gauge\nb 1\n# HELP a h\n# TYPE a gauge\na 1\n", /* unsorted */
		"# HELP x h\n# TYPE x counter\nx -1\n",
		"# HELP x h\n# TYPE x gauge\ny 1\n",
		"# HELP x h\n# TYPE x gauge\nx 1",                     /* no final newline */
		"# HELP x h\n# TYPE x gauge\n",                       /* no samples */
	};
	struct expo e;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (expo_try_parse(bad[i], &e))
			fail_msg("parser accepted bad input %zu", i);
		expo_free(&e);
	}
	assert_true(expo_try_parse("# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\",b=\"2\"} 1.5e+06\n", &e));
	assert_true(e.n == 1 && e.fams[0].n == 1 && e.fams[0].samples[0].value == 1.5e6);
	assert_string_equal(e.fams[0].samples[0].labels[0][1], "q\"");
	expo_free(&e);
}

static void test_promtool(void **state)
{
	struct metrics *m = metrics_new("iptables");
	struct sync_stats ss = { .rules_nat = 1, .rules_filter = 2 };
	struct metrics_inputs in = { .healthz = { 1, 1 }, .livez = { 1, 0 } };
	char path[] = "/tmp/kp-metrics-XXXXXX", cmd[256], line[512];
	char *text;
	FILE *f, *p;
	int fd, st;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		/* The strict parser above is the check then. */
		skip();
	}
	metrics_record_sync(m, 0.01, true, true, wall_time(), wall_time() - 1, &ss);
	text = render(m, &in);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		/* Only lint remarks about upstream's own gauge names are allowed. */
		if (strstr(line, "non-counter metrics should not have \"_total\" suffix") &&
		    (strncmp(line, "kubeproxy_sync_proxy_rules_iptables_total ", 42) == 0 ||
		     strncmp(line, "kubeproxy_sync_proxy_rules_no_local_endpoints_total ", 52) == 0))
			continue;
		fail_msg("promtool: %s", line);
	}
	st = pclose(p);
	/* 0 = clean, 3 = lint remarks only (checked above), 1 = parse error. */
	assert_true(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3));
	unlink(path);
	free(text);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt_float),
		cmocka_unit_test(test_iptables_families),
		cmocka_unit_test(test_mode_specific),
		cmocka_unit_test(test_mode_counter),
		cmocka_unit_test(test_parser_rejects),
		cmocka_unit_test(test_promtool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
