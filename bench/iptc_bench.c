/* Sync-time benchmark of the libiptc writer against iptables-legacy-restore
 * of the very same rules. Run it through bench/iptc-bench.sh, which makes a
 * throwaway network namespace: it empties the nat table's KUBE-* chains.
 *
 *   iptc_bench [-6] [-d] [-n] [-e ENDPOINTS] [-r REPEAT] SERVICES...
 *
 * For each size: N services, each a KUBE-SERVICES entry, a KUBE-SVC chain
 * (masquerade rule + one statistic jump per endpoint) and per endpoint a
 * KUBE-SEP chain (masquerade + DNAT), like upstream's ClusterIP services.
 * Times: full apply on an empty table, a no-change apply, a one-chain
 * change, half of the services removed (mass chain deletion), removing
 * every chain (--cleanup); and iptables-legacy-restore --noflush of the rendered text on an
 * empty table and on the full table (-n: skip those, e.g. under perf).
 * -d (IPv4): also commits the same table through the direct-blob prototype
 * (iptc_direct.c) on an empty table, timed, and checks that
 * iptables-legacy-save shows the same rules as after iptc_apply. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/iptc_direct.h"
#include "modes/iptc/rule.h"
#include "modes/iptc/writer.h"

static const char *const stale[] = { "KUBE-SVC-", "KUBE-SEP-", NULL };
static const char *const ours[] = { "KUBE-", NULL };

/* Hash-like, deterministic 16-character chain suffixes. */
static void name_for(char *out, const char *prefix, unsigned long long seed)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned long long z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	strcpy(out, prefix);
	out += strlen(prefix);
	for (int i = 0; i < 16; i++) {
		out[i] = b32[(z >> (i * 4 % 60)) & 31];
		if (i == 11)
			z = z * 0x2545f4914f6cdd1dull + 1;
	}
	out[16] = '\0';
}

static void build(struct table_want *t, uint8_t af, unsigned services, unsigned eps, unsigned variant)
{
	bool v6 = af == AF_INET6;
	struct cidr cluster;
	struct chain *c;
	struct rule *r;
	char svc[CHAIN_NAME_MAX], sep[CHAIN_NAME_MAX], comment[96], abuf[ADDR_STRLEN];

	table_want_init(t, "nat", af);
	cidr_parse(v6 ? "fd00::/16" : "10.0.0.0/8", false, &cluster);
	r = table_builtin_rule(t, "PREROUTING");
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");
	r = table_builtin_rule(t, "OUTPUT");
	rule_comment(r, "kubernetes service portals");
	rule_jump(r, "KUBE-SERVICES");
	r = table_builtin_rule(t, "POSTROUTING");
	rule_comment(r, "kubernetes postrouting rules");
	rule_jump(r, "KUBE-POSTROUTING");
	table_chain(t, "KUBE-SERVICES");
	table_chain(t, "KUBE-NODEPORTS");
	table_chain(t, "KUBE-POSTROUTING");
	rule_mark_or(chain_append(table_chain(t, "KUBE-MARK-MASQ")), 0x4000);
	c = table_chain(t, "KUBE-POSTROUTING");
	r = chain_append(c);
	rule_mark(r, 0x4000, 0x4000, true);
	rule_target(r, RT_RETURN);
	rule_mark_xor(chain_append(c), 0x4000);
	r = chain_append(c);
	rule_comment(r, "kubernetes service traffic requiring SNAT");
	rule_masquerade(r, true);

	for (unsigned s = 0; s < services; s++) {
		struct addr vip = { .family = af };
		char port[64];

		if (v6) {
			vip.bytes[0] = 0xfd;
			vip.bytes[13] = 0x30;
			vip.bytes[14] = (uint8_t)(s >> 8);
			vip.bytes[15] = (uint8_t)s;
		} else {
			vip.bytes[0] = 172;
			vip.bytes[1] = 30;
			vip.bytes[2] = (uint8_t)(s >> 8);
			vip.bytes[3] = (uint8_t)s;
		}
		snprintf(port, sizeof(port), "ns%u/svc%u:p80", s % 97, s);
		name_for(svc, "KUBE-SVC-", s);
		r = chain_append(table_chain(t, "KUBE-SERVICES"));
		snprintf(comment, sizeof(comment), "%s cluster IP", port);
		rule_comment(r, comment);
		rule_proto(r, PROTO_TCP);
		rule_dst_ip(r, &vip, false);
		rule_dport(r, 80);
		rule_jump(r, svc);

		c = table_chain(t, svc);
		r = chain_append(c);
		rule_comment(r, comment);
		rule_proto(r, PROTO_TCP);
		rule_dst_ip(r, &vip, false);
		rule_dport(r, 80);
		rule_src(r, &cluster, true);
		rule_jump(r, "KUBE-MARK-MASQ");
		for (unsigned e = 0; e < eps; e++) {
			struct addr ep = { .family = af };
			unsigned n = s * eps + e;

			if (v6) {
				ep.bytes[0] = 0xfd;
				ep.bytes[12] = (uint8_t)(n >> 24);
				ep.bytes[13] = (uint8_t)(n >> 16);
				ep.bytes[14] = (uint8_t)(n >> 8);
				ep.bytes[15] = (uint8_t)n;
			} else {
				ep.bytes[0] = 10;
				ep.bytes[1] = (uint8_t)(n >> 16);
				ep.bytes[2] = (uint8_t)(n >> 8);
				ep.bytes[3] = (uint8_t)n;
			}
			name_for(sep, "KUBE-SEP-", (unsigned long long)n << 20 | 0xabcde);
			snprintf(comment, sizeof(comment), "%s -> %s:8080", port, addr_str(&ep, abuf));
			r = chain_append(table_chain(t, svc));
			rule_comment(r, comment);
			if (e + 1 < eps)
				rule_statistic(r, 1.0 / (eps - e));
			rule_jump(r, sep);

			c = table_chain(t, sep);
			r = chain_append(c);
			rule_comment(r, port);
			rule_src_ip(r, &ep, false);
			rule_jump(r, "KUBE-MARK-MASQ");
			r = chain_append(c);
			rule_comment(r, port);
			rule_proto(r, PROTO_TCP);
			/* variant 1 changes one backend port: one chain differs */
			rule_dnat(r, &ep, variant && s == services / 2 && e == 0 ? 8081 : 8080);
		}
	}
	r = chain_append(table_chain(t, "KUBE-SERVICES"));
	rule_comment(r, "kubernetes service nodeports; NOTE: this must be the last rule in this chain");
	rule_addrtype_dst_local(r, false);
	rule_jump(r, "KUBE-NODEPORTS");
}

static double secs(unsigned long long ns)
{
	return (double)ns / 1e9;
}

/* CPU time (user + system) of this process: the kernel's table work runs
 * in our context, so this counts it, and it is far less disturbed by a
 * busy machine than wall time. */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timing {
	double wall, cpu;
};

/* Runs "<cmd> --noflush" with stdin from path: wall and CPU seconds. */
static int run_restore(const char *cmd, const char *path, struct timing *tm)
{
	unsigned long long t0 = now_ns();
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(path, O_RDONLY);

		if (fd < 0 || dup2(fd, 0) < 0)
			_exit(127);
		execlp(cmd, cmd, "--noflush", (char *)NULL);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	tm->wall = secs(now_ns() - t0);
	tm->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	return 0;
}

static int clear(uint8_t af)
{
	char *err = NULL;
	int ret = iptc_remove_chains("nat", af, ours, &err);

	if (ret < 0) {
		fprintf(stderr, "remove: %s\n", err);
		free(err);
	}
	return ret;
}

static int apply(const struct table_want *t, const char *what, struct apply_stats *st, struct timing *tm)
{
	char *err = NULL;
	unsigned long long t0 = now_ns();
	double c0 = cpu_now();
	int ret = iptc_apply(t, stale, st, &err);

	tm->cpu = cpu_now() - c0;
	tm->wall = secs(now_ns() - t0);
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", what, err);
		free(err);
		return ret;
	}
	printf("  %-22s %7.3f s wall %7.3f s cpu  (wall: init %.3f, edit %.3f, commit %.3f; "
	       "created %lu rewritten %lu unchanged %lu deleted %lu)\n",
	       what, tm->wall, tm->cpu, secs(st->init_ns), secs(st->edit_ns), secs(st->commit_ns),
	       st->chains_created, st->chains_rewritten, st->chains_unchanged, st->chains_deleted);
	return 0;
}

/* The nat table as iptables-legacy-save prints it, counters and comment
 * lines dropped, into path. */
static int save_nat(const char *path)
{
	char *cmd = xasprintf("iptables-legacy-save -t nat | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//' >%s",
			      path);
	int rc = system(cmd);

	free(cmd);
	return rc == 0 ? 0 : -1;
}

/* iptc_apply vs the direct-blob prototype on an empty table; same rules? */
static int direct_compare(const struct table_want *t, const struct timing *via_iptc)
{
	char a[] = "/tmp/iptc-direct-a.XXXXXX", b[] = "/tmp/iptc-direct-b.XXXXXX", *err = NULL, *cmd;
	unsigned long long t0;
	double c0, wall, cpu;
	int fa = mkstemp(a), fb = mkstemp(b), ret = -1;

	if (fa < 0 || fb < 0)
		goto out;
	if (save_nat(a) < 0 || clear(AF_INET) < 0)
		goto out;
	c0 = cpu_now();
	t0 = now_ns();
	if (iptc_direct_replace_nat4(t, &err) < 0) {
		fprintf(stderr, "direct: %s\n", err ? err : "failed");
		goto out;
	}
	wall = secs(now_ns() - t0);
	cpu = cpu_now() - c0;
	if (save_nat(b) < 0)
		goto out;
	cmd = xasprintf("cmp -s %s %s", a, b);
	ret = system(cmd) == 0 ? 0 : -1;
	free(cmd);
	printf("  %-22s %7.3f s wall %7.3f s cpu  (same rules as iptc_apply: %s; iptc_apply / direct:"
	       " wall %.2fx, cpu %.2fx)\n", "direct blob (empty)", wall, cpu, ret == 0 ? "yes" : "NO",
	       via_iptc->wall / wall, via_iptc->cpu / cpu);
out:
	free(err);
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	unlink(a);
	unlink(b);
	return ret;
}

static int bench_one(uint8_t af, unsigned services, unsigned eps, bool no_restore, bool direct)
{
	const char *restore = af == AF_INET6 ? "ip6tables-legacy-restore" : "iptables-legacy-restore";
	char path[] = "/tmp/iptc-bench.XXXXXX";
	struct table_want t, t1, half = { 0 };
	struct apply_stats st;
	struct strbuf sb;
	struct timing full, nochange, onechange, halved, r_empty, r_full;
	double build_s, render_s, c0;
	unsigned long long t0;
	size_t rules = 0;
	int fd, ret = -1;

	t0 = now_ns();
	build(&t, af, services, eps, 0);
	build_s = secs(now_ns() - t0);
	build(&t1, af, services, eps, 1);
	for (size_t i = 0; i < t.n_chains; i++)
		rules += t.chains[i].n_rules;

	sb_init(&sb);
	t0 = now_ns();
	table_render(&t, &sb);
	render_s = secs(now_ns() - t0);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, sb.buf, sb.len) != (ssize_t)sb.len) {
		perror("temp file");
		goto out;
	}
	close(fd);

	printf("%u services x %u endpoints (IPv%d): %zu chains, %zu rules, %zu bytes of restore text\n",
	       services, eps, af == AF_INET6 ? 6 : 4, t.n_chains, rules, sb.len);
	printf("  %-22s %7.3f s\n  %-22s %7.3f s\n", "build want", build_s, "render text", render_s);

	if (clear(af) < 0 || apply(&t, "apply (empty table)", &st, &full) < 0)
		goto out;
	if (direct && af == AF_INET && direct_compare(&t, &full) < 0)
		goto out;
	if (apply(&t, "apply (no change)", &st, &nochange) < 0 ||
	    apply(&t1, "apply (one chain)", &st, &onechange) < 0)
		goto out;
	if (st.chains_rewritten != 1) {
		fprintf(stderr, "one-chain apply rewrote %lu chains\n", st.chains_rewritten);
		goto out;
	}
	build(&half, af, services / 2, eps, 0);
	if (apply(&half, "apply (half removed)", &st, &halved) < 0)
		goto out;
	table_want_free(&half);
	c0 = cpu_now();
	t0 = now_ns();
	if (clear(af) < 0)
		goto out;
	printf("  %-22s %7.3f s wall %7.3f s cpu\n", "remove all chains", secs(now_ns() - t0), cpu_now() - c0);
	if (no_restore) {
		ret = 0;
		goto out;
	}
	if (run_restore(restore, path, &r_empty) < 0 || run_restore(restore, path, &r_full) < 0) {
		fprintf(stderr, "%s failed\n", restore);
		goto out;
	}
	printf("  %-22s %7.3f s wall %7.3f s cpu\n  %-22s %7.3f s wall %7.3f s cpu\n",
	       "restore (empty table)", r_empty.wall, r_empty.cpu,
	       "restore (full table)", r_full.wall, r_full.cpu);
	printf("  ratios restore/apply, cpu:  empty %.1fx   no-change %.1fx   one-chain %.1fx\n",
	       r_empty.cpu / full.cpu, r_full.cpu / nochange.cpu, r_full.cpu / onechange.cpu);
	printf("  ratios restore/apply, wall: empty %.1fx   no-change %.1fx   one-chain %.1fx\n",
	       r_empty.wall / full.wall, r_full.wall / nochange.wall, r_full.wall / onechange.wall);
	ret = clear(af);
out:
	unlink(path);
	sb_free(&sb);
	table_want_free(&t);
	table_want_free(&t1);
	table_want_free(&half);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned eps = 10, repeat = 1;
	uint8_t af = AF_INET;
	bool no_restore = false, direct = false;
	int opt;

	while ((opt = getopt(argc, argv, "6dne:r:")) != -1) {
		switch (opt) {
		case '6':
			af = AF_INET6;
			break;
		case 'd':
			direct = true;
			break;
		case 'n':
			no_restore = true;
			break;
		case 'e':
			eps = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			repeat = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: iptc_bench [-6] [-d] [-n] [-e ENDPOINTS] [-r REPEAT] SERVICES...\n");
			return 2;
		}
	}
	if (optind == argc || eps == 0) {
		fprintf(stderr, "usage: iptc_bench [-6] [-d] [-n] [-e ENDPOINTS] [-r REPEAT] SERVICES...\n");
		return 2;
	}
	for (int i = optind; i < argc; i++)
		for (unsigned k = 0; k < repeat; k++)
			if (bench_one(af, (unsigned)strtoul(argv[i], NULL, 10), eps, no_restore, direct) < 0)
				return 1;
	return 0;
}
