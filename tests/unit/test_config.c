/* Unit tests for src/config.c: defaults, flags, the KubeProxyConfiguration
 * file, precedence, validation messages, durations and render/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <cmocka.h>

/* PACKAGE_VERSION comes from kp_autoconf.h, force-included by the build. */

#include "src/config.h"
#include "src/log.h"
#include "src/util.h"

#ifndef TEST_DATA_DIR
#error "TEST_DATA_DIR must be defined"
#endif
#define DATA(f) TEST_DATA_DIR "/config/" f

static int setup(void **state)
{
	log_set_stderr(0);
	return 0;
}

/* Runs config_parse on a NULL-terminated argument list. */
static enum config_action parse_args(struct config *cfg, char **err, ...)
{
	char *argv[128];
	int argc = 0;
	va_list ap;
	char *a;

	argv[argc++] = "kube-proxy";
	va_start(ap, err);
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	config_defaults(cfg);
	return config_parse(cfg, argc, argv, err);
}

static const char *cstr(const struct cidr *c, char *buf)
{
	return cidr_str(c, buf);
}

static void test_defaults(void **state)
{
	struct config cfg;
	char *err = NULL;
	char buf[CIDR_STRLEN];
	struct utsname u;

	assert_int_equal(parse_args(&cfg, &err, NULL), CONFIG_RUN);
	assert_null(err);
	assert_string_equal(cfg.proxy_mode, "iptables");
	assert_int_equal(cfg.masquerade_bit, 14);
	assert_true(cfg.localhost_nodeports);
	assert_false(cfg.masquerade_all);
	assert_int_equal(cfg.sync_period_ms, 30000);
	assert_int_equal(cfg.min_sync_period_ms, 1000);
	assert_string_equal(cfg.ipvs_scheduler, "rr");
	assert_int_equal(cfg.ipvs_sync_period_ms, 30000);
	assert_int_equal(cfg.ipvs_min_sync_period_ms, 0);
	assert_string_equal(cfg.bind_address, "0.0.0.0");
	assert_string_equal(cfg.healthz_bind_address, "0.0.0.0:10256");
	assert_string_equal(cfg.metrics_bind_address, "127.0.0.1:10249");
	assert_int_equal(cfg.n_service_cidrs, 1);
	assert_string_equal(cstr(&cfg.service_cidrs[0], buf), "10.0.0.0/24");
	assert_int_equal(cfg.n_cluster_cidrs, 0);
	assert_string_equal(cfg.detect_local_mode, "ClusterCIDR");
	assert_int_equal(cfg.udp_idle_timeout_ms, 250);
	assert_int_equal(cfg.conntrack_max_per_core, 32768);
	assert_int_equal(cfg.conntrack_min, 131072);
	assert_int_equal(cfg.conntrack_tcp_established_s, 86400);
	assert_int_equal(cfg.conntrack_tcp_close_wait_s, 3600);
	assert_int_equal(cfg.oom_score_adj, -999);
	assert_false(cfg.oom_score_adj_set);
	assert_string_equal(cfg.log_file, "/var/log/kube-proxy.log");
	assert_string_equal(cfg.state_dir, "/var/lib/kube-proxy");
	assert_int_equal(cfg.config_sync_period_ms, 15 * 60 * 1000);
	assert_null(cfg.kubeconfig);
	assert_null(cfg.config_file);
	assert_false(cfg.cleanup);
	assert_false(cfg.dry_run);
	assert_int_equal(cfg.verbosity, 0);
	/* node name: uname's nodename, lower-cased */
	assert_int_equal(uname(&u), 0);
	assert_non_null(cfg.node_name);
	assert_int_equal(strcasecmp(cfg.node_name, u.nodename), 0);
	for (const char *p = cfg.node_name; *p; p++)
		assert_false(*p >= 'A' && *p <= 'Z');
	config_free(&cfg);
}

static void test_every_flag(void **state)
{
	struct config cfg;
	char *err = NULL;
	char buf[CIDR_STRLEN];

	assert_int_equal(parse_args(&cfg, &err,
		"--proxy-mode", "ipvs", "--cluster-cidr", "10.244.0.0/16,fd00:1::/64",
		"--kubeconfig", "/k.conf", "--master", "https://10.0.0.1:6443",
		"--hostname-override", "  MyNode ", "--bind-address", "10.1.2.3",
		"--healthz-bind-address", "127.0.0.1:1234", "--metrics-bind-address", "[::1]:9999",
		"--masquerade-all", "--iptables-masquerade-bit", "5", "--iptables-sync-period", "1m",
		"--iptables-min-sync-period", "250ms", "--iptables-localhost-nodeports=false",
		"--ipvs-scheduler", "sh", "--ipvs-sync-period", "20s", "--ipvs-min-sync-period", "2s",
		"--ipvs-exclude-cidrs", "10.5.0.0/16,10.6.0.0/16", "--ipvs-strict-arp",
		"--ipvs-tcp-timeout", "15m", "--ipvs-tcpfin-timeout", "30s", "--ipvs-udp-timeout", "1m30s",
		"--nodeport-addresses", "192.168.0.0/16", "--detect-local-mode", "InterfaceNamePrefix",
		"--pod-bridge-interface", "br0", "--pod-interface-name-prefix", "cali",
		"--proxy-port-range", "40000-40100", "--udp-timeout", "1s",
		"--conntrack-max-per-core", "0", "--conntrack-min", "1000",
		"--conntrack-tcp-timeout-established", "2h", "--conntrack-tcp-timeout-close-wait", "10m",
		"--conntrack-udp-timeout", "30s", "--conntrack-udp-timeout-stream", "3m",
		"--config-sync-period", "5m", "--oom-score-adj", "-100", "-v", "4",
		"--service-cluster-ip-range", "10.96.0.0/12,fd00:96::/108", "--manifest-dir", "/etc/kp/m",
		"--log-file", "/tmp/kp.log", "--state-dir", "/tmp/kp-state", "--dry-run", "--cleanup",
		"--kube-api-qps", "12.5", "--kube-api-burst", "30", "--kube-api-content-type", "application/json",
		"--bind-address-hard-fail", "--profiling=true", "--show-hidden-metrics-for-version", "1.27",
		"--conntrack-tcp-be-liberal", "--feature-gates", "Foo=true,Bar=false", NULL),
		CONFIG_RUN);
	assert_null(err);
	assert_string_equal(cfg.proxy_mode, "ipvs");
	assert_int_equal(cfg.n_cluster_cidrs, 2);
	assert_string_equal(cstr(&cfg.cluster_cidrs[0], buf), "10.244.0.0/16");
	assert_string_equal(cstr(&cfg.cluster_cidrs[1], buf), "fd00:1::/64");
	assert_string_equal(cfg.cluster_cidr_str, "10.244.0.0/16,fd00:1::/64");
	assert_string_equal(cfg.kubeconfig, "/k.conf");
	assert_string_equal(cfg.master, "https://10.0.0.1:6443");
	assert_string_equal(cfg.hostname_override, "mynode");
	assert_string_equal(cfg.node_name, "mynode");
	assert_string_equal(cfg.bind_address, "10.1.2.3");
	assert_string_equal(cfg.healthz_bind_address, "127.0.0.1:1234");
	assert_string_equal(cfg.metrics_bind_address, "[::1]:9999");
	assert_true(cfg.masquerade_all);
	assert_int_equal(cfg.masquerade_bit, 5);
	assert_int_equal(cfg.sync_period_ms, 60000);
	assert_int_equal(cfg.min_sync_period_ms, 250);
	assert_false(cfg.localhost_nodeports);
	assert_string_equal(cfg.ipvs_scheduler, "sh");
	assert_int_equal(cfg.ipvs_sync_period_ms, 20000);
	assert_int_equal(cfg.ipvs_min_sync_period_ms, 2000);
	assert_int_equal(cfg.n_ipvs_exclude_cidrs, 2);
	assert_string_equal(cstr(&cfg.ipvs_exclude_cidrs[1], buf), "10.6.0.0/16");
	assert_true(cfg.ipvs_strict_arp);
	assert_int_equal(cfg.ipvs_tcp_timeout_s, 900);
	assert_int_equal(cfg.ipvs_tcpfin_timeout_s, 30);
	assert_int_equal(cfg.ipvs_udp_timeout_s, 90);
	assert_int_equal(cfg.n_nodeport_addresses, 1);
	assert_false(cfg.nodeport_primary);
	assert_string_equal(cstr(&cfg.nodeport_addresses[0], buf), "192.168.0.0/16");
	assert_string_equal(cfg.detect_local_mode, "InterfaceNamePrefix");
	assert_string_equal(cfg.bridge_interface, "br0");
	assert_string_equal(cfg.interface_name_prefix, "cali");
	assert_string_equal(cfg.proxy_port_range, "40000-40100");
	assert_int_equal(cfg.udp_idle_timeout_ms, 1000);
	assert_int_equal(cfg.conntrack_max_per_core, 0);
	assert_int_equal(cfg.conntrack_min, 1000);
	assert_int_equal(cfg.conntrack_tcp_established_s, 7200);
	assert_int_equal(cfg.conntrack_tcp_close_wait_s, 600);
	assert_int_equal(cfg.conntrack_udp_timeout_s, 30);
	assert_int_equal(cfg.conntrack_udp_stream_timeout_s, 180);
	assert_int_equal(cfg.config_sync_period_ms, 300000);
	assert_int_equal(cfg.oom_score_adj, -100);
	assert_true(cfg.oom_score_adj_set);
	assert_int_equal(cfg.verbosity, 4);
	assert_int_equal(cfg.n_service_cidrs, 2);
	assert_string_equal(cstr(&cfg.service_cidrs[1], buf), "fd00:96::/108");
	assert_string_equal(cfg.manifest_dir, "/etc/kp/m");
	assert_string_equal(cfg.log_file, "/tmp/kp.log");
	assert_string_equal(cfg.state_dir, "/tmp/kp-state");
	assert_true(cfg.dry_run);
	assert_true(cfg.cleanup);
	assert_true(cfg.kube_api_qps > 12.49 && cfg.kube_api_qps < 12.51);
	assert_int_equal(cfg.kube_api_burst, 30);
	assert_string_equal(cfg.kube_api_content_type, "application/json");
	assert_true(cfg.bind_address_hard_fail);
	assert_true(cfg.enable_profiling);
	assert_string_equal(cfg.show_hidden_metrics_for_version, "1.27");
	assert_true(cfg.conntrack_tcp_be_liberal);
	config_free(&cfg);
}

static void test_flag_forms(void **state)
{
	struct config cfg;
	char *err = NULL;

	/* --flag=value, -vN, --v=N, bools with =true/=false, underscores */
	assert_int_equal(parse_args(&cfg, &err, "--proxy-mode=userspace", "--iptables-masquerade-bit=31",
				    "--iptables_sync_period=2m", "-v7", "--masquerade-all=true",
				    "--iptables-localhost-nodeports=0", "--ipvs-strict-arp=false",
				    "--nodeport-addresses=primary", NULL),
			 CONFIG_RUN);
	assert_null(err);
	assert_string_equal(cfg.proxy_mode, "userspace");
	assert_int_equal(cfg.masquerade_bit, 31);
	assert_int_equal(cfg.sync_period_ms, 120000);
	assert_int_equal(cfg.verbosity, 7);
	assert_true(cfg.masquerade_all);
	assert_false(cfg.localhost_nodeports);
	assert_false(cfg.ipvs_strict_arp);
	assert_true(cfg.nodeport_primary);
	assert_int_equal(cfg.n_nodeport_addresses, 0);
	config_free(&cfg);

	assert_int_equal(parse_args(&cfg, &err, "--v=2", "--masquerade-all=false", "--proxy-mode=", NULL),
			 CONFIG_RUN);
	assert_int_equal(cfg.verbosity, 2);
	assert_false(cfg.masquerade_all);
	assert_string_equal(cfg.proxy_mode, "iptables"); /* "" means iptables */
	config_free(&cfg);

	/* a value that looks like a flag is still the value */
	assert_int_equal(parse_args(&cfg, &err, "--hostname-override", "--weird", NULL), CONFIG_RUN);
	assert_string_equal(cfg.node_name, "--weird");
	config_free(&cfg);

	/* string slices: repeated flags append */
	assert_int_equal(parse_args(&cfg, &err, "--ipvs-exclude-cidrs", "10.1.0.0/16",
				    "--ipvs-exclude-cidrs=10.2.0.0/16,10.3.0.0/16", NULL),
			 CONFIG_RUN);
	assert_int_equal(cfg.n_ipvs_exclude_cidrs, 3);
	config_free(&cfg);

	/* bare IPs for listeners get the (deprecated) port flags' ports */
	assert_int_equal(parse_args(&cfg, &err, "--healthz-bind-address", "::", "--metrics-bind-address=10.0.0.5",
				    "--metrics-port", "9100", NULL),
			 CONFIG_RUN);
	assert_string_equal(cfg.healthz_bind_address, "[::]:10256");
	assert_string_equal(cfg.metrics_bind_address, "10.0.0.5:9100");
	config_free(&cfg);
	assert_int_equal(parse_args(&cfg, &err, "--healthz-port=0", "--metrics-bind-address=", NULL), CONFIG_RUN);
	assert_string_equal(cfg.healthz_bind_address, "");
	assert_string_equal(cfg.metrics_bind_address, "");
	config_free(&cfg);

	/* --help and --version print to stdout: capture it (and keep it out of
	 * the TAP stream) */
	{
		char path[] = "/tmp/kp-test-help-XXXXXX";
		int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
		char *out = NULL;
		size_t len;

		assert_true(fd >= 0 && saved >= 0);
		fflush(stdout);
		dup2(fd, STDOUT_FILENO);
		assert_int_equal(parse_args(&cfg, &err, "--help", NULL), CONFIG_EXIT_OK);
		config_free(&cfg);
		assert_int_equal(parse_args(&cfg, &err, "-h", NULL), CONFIG_EXIT_OK);
		config_free(&cfg);
		assert_int_equal(parse_args(&cfg, &err, "--version", NULL), CONFIG_EXIT_OK);
		config_free(&cfg);
		fflush(stdout);
		dup2(saved, STDOUT_FILENO);
		close(saved);
		close(fd);
		assert_int_equal(read_file(path, &out, &len), 0);
		unlink(path);
		assert_non_null(strstr(out, "--iptables-masquerade-bit int32"));
		assert_non_null(strstr(out, "(default 14)"));
		assert_non_null(strstr(out, "--service-cluster-ip-range cidr[,cidr]"));
		assert_non_null(strstr(out, "(default 10.0.0.0/24)"));
		assert_non_null(strstr(out, "kube-proxy version v" PACKAGE_VERSION " (C implementation)\n"));
		free(out);
	}
	assert_int_equal(parse_args(&cfg, &err, "--version=false", NULL), CONFIG_RUN);
	config_free(&cfg);
}

/* One bad command line and a fragment its error must contain. */
struct bad_case {
	const char *args[4];
	const char *want;
};

static void test_bad_flags(void **state)
{
	static const struct bad_case cases[] = {
		{ { "--iptables-masquerade-bit", "40" }, "--iptables-masquerade-bit: 40 is out of range 0-31" },
		{ { "--iptables-masquerade-bit=-1" }, "--iptables-masquerade-bit: -1 is out of range 0-31" },
		{ { "--iptables-masquerade-bit=x" }, "--iptables-masquerade-bit: \"x\" is not a 32-bit integer" },
		{ { "--iptables-sync-period=0s" }, "--iptables-sync-period: 0s: must be greater than 0" },
		{ { "--iptables-sync-period=30" }, "--iptables-sync-period: \"30\": missing unit" },
		{ { "--iptables-sync-period=-5s" }, "--iptables-sync-period: \"-5s\": must not be negative" },
		{ { "--iptables-min-sync-period=1m" }, "--iptables-min-sync-period: 1m0s must not be greater than --iptables-sync-period (30s)" },
		{ { "--proxy-mode=turbo" }, "--proxy-mode: \"turbo\" is not a valid proxy mode" },
		{ { "--proxy-mode=nftables" }, "--proxy-mode: \"nftables\" is not supported by this implementation" },
		{ { "--proxy-mode=kernelspace" }, "\"kernelspace\" is not supported by this implementation" },
		{ { "--proxy-mode=ipvs", "--ipvs-scheduler=fast" }, "--ipvs-scheduler: \"fast\" is not a valid IPVS scheduler" },
		{ { "--proxy-mode=ipvs", "--ipvs-sync-period=1s", "--ipvs-min-sync-period=2s" }, "--ipvs-min-sync-period: 2s must not be greater than --ipvs-sync-period (1s)" },
		{ { "--detect-local-mode=Magic" }, "--detect-local-mode: \"Magic\" is not a valid local traffic detection mode" },
		{ { "--detect-local-mode=BridgeInterface" }, "--pod-bridge-interface: must be set when --detect-local-mode is BridgeInterface" },
		{ { "--detect-local-mode=InterfaceNamePrefix" }, "--pod-interface-name-prefix: must be set" },
		{ { "--bind-address=1.2.3" }, "--bind-address: \"1.2.3\" is not a valid IP address" },
		{ { "--healthz-bind-address=host:80" }, "--healthz-bind-address: \"host:80\": \"host\" is not a valid IP address" },
		{ { "--metrics-bind-address=1.2.3.4:0" }, "--metrics-bind-address: \"1.2.3.4:0\": \"0\" is not a valid port" },
		{ { "--metrics-bind-address=1.2.3.4:70000" }, "\"70000\" is not a valid port" },
		{ { "--oom-score-adj=1001" }, "--oom-score-adj: 1001 is out of range -1000-1000" },
		{ { "--oom-score-adj=-1001" }, "--oom-score-adj: -1001 is out of range" },
		{ { "--cluster-cidr=10.0.0.0/33" }, "--cluster-cidr: \"10.0.0.0/33\" is not a valid CIDR" },
		{ { "--cluster-cidr=10.244.1.0/16" }, "--cluster-cidr: \"10.244.1.0/16\" has host bits set (did you mean 10.244.0.0/16?)" },
		{ { "--cluster-cidr=10.1.0.0/16,10.2.0.0/16" }, "--cluster-cidr: \"10.1.0.0/16,10.2.0.0/16\": two CIDRs must be one IPv4 and one IPv6" },
		{ { "--cluster-cidr=10.1.0.0/16,fd00::/64,10.3.0.0/16" }, "at most two CIDRs" },
		{ { "--service-cluster-ip-range=10.96.0.1/12" }, "--service-cluster-ip-range: \"10.96.0.1/12\" has host bits set" },
		{ { "--service-cluster-ip-range=" }, "--service-cluster-ip-range: must not be empty" },
		{ { "--nodeport-addresses=10.0.0.0/8,nowhere" }, "--nodeport-addresses: \"nowhere\" is not a valid CIDR or \"primary\"" },
		{ { "--ipvs-exclude-cidrs=10.0.0.0/40" }, "--ipvs-exclude-cidrs: \"10.0.0.0/40\" is not a valid CIDR" },
		{ { "--masquerade-all=maybe" }, "--masquerade-all: \"maybe\" is not a boolean" },
		{ { "--conntrack-max-per-core=-1" }, "--conntrack-max-per-core: -1 must be greater than or equal to 0" },
		{ { "--conntrack-min=-5" }, "--conntrack-min: -5 must be greater than or equal to 0" },
		{ { "--conntrack-tcp-timeout-established=1d" }, "--conntrack-tcp-timeout-established: \"1d\": unknown unit" },
		{ { "--udp-timeout=0" }, "--udp-timeout: 0s: must be greater than 0" },
		{ { "--config-sync-period=0s" }, "--config-sync-period: 0s: must be greater than 0" },
		{ { "--proxy-port-range=30000-20000" }, "--proxy-port-range: \"30000-20000\" is not a valid port range" },
		{ { "--proxy-port-range=abc" }, "--proxy-port-range: \"abc\"" },
		{ { "--hostname-override=   " }, "--hostname-override: \"   \": an empty hostname override is invalid" },
		{ { "-v", "x" }, "-v: \"x\" is not a valid log level" },
		{ { "--v=-1" }, "-v: \"-1\" is not a valid log level" },
		{ { "--no-such-flag" }, "unknown flag: --no-such-flag" },
		{ { "--clean" }, "unknown flag: --clean " },             /* no prefix matching */
		{ { "--proxy-mode=ipvs", "--ipvs-sched=rr" }, "unknown flag: --ipvs-sched " },
		{ { "--proxy-mode" }, "flag needs an argument: --proxy-mode" },
		{ { "stray" }, "does not take arguments, got \"stray\"" },
		{ { "--feature-gates=Foo" }, "--feature-gates: \"Foo\": expected key=true|false" },
		{ { "--show-hidden-metrics-for-version=latest" }, "--show-hidden-metrics-for-version: \"latest\" must be <major>.<minor>" },
		{ { "--kube-api-burst=-1" }, "--kube-api-burst: -1 must be greater than or equal to 0" },
		{ { "--config", DATA("does-not-exist.yaml") }, "does-not-exist.yaml: cannot read: No such file or directory" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char *err = NULL;
		enum config_action act;

		act = parse_args(&cfg, &err, cases[i].args[0], cases[i].args[1], cases[i].args[2], NULL);
		if (act != CONFIG_EXIT_FAIL || !err || !strstr(err, cases[i].want))
			fail_msg("case %zu (%s): action %d, error \"%s\", wanted \"%s\"", i, cases[i].args[0], act,
				 err ? err : "(none)", cases[i].want);
		free(err);
		config_free(&cfg);
	}
}

static void test_good_yaml(void **state)
{
	struct config cfg;
	char *err = NULL;
	char buf[CIDR_STRLEN];

	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, DATA("good.yaml"), &err), 0);
	assert_null(err);
	assert_string_equal(cfg.bind_address, "192.168.1.10");
	assert_true(cfg.bind_address_hard_fail);
	assert_int_equal(cfg.kube_api_burst, 20);
	assert_string_equal(cfg.kube_api_content_type, "application/json");
	assert_string_equal(cfg.kubeconfig, "/etc/kubernetes/kube-proxy.kubeconfig");
	assert_true(cfg.kube_api_qps > 7.49 && cfg.kube_api_qps < 7.51);
	assert_int_equal(cfg.n_cluster_cidrs, 2);
	assert_string_equal(cstr(&cfg.cluster_cidrs[1], buf), "fd00:10:244::/56");
	assert_int_equal(cfg.config_sync_period_ms, 600000);
	assert_int_equal(cfg.conntrack_max_per_core, 0);
	assert_int_equal(cfg.conntrack_min, 65536);
	assert_int_equal(cfg.conntrack_tcp_close_wait_s, 1800);
	assert_int_equal(cfg.conntrack_tcp_established_s, 12 * 3600);
	assert_int_equal(cfg.conntrack_udp_timeout_s, 30);
	assert_int_equal(cfg.conntrack_udp_stream_timeout_s, 120);
	assert_string_equal(cfg.bridge_interface, "cbr0");
	assert_string_equal(cfg.interface_name_prefix, "veth");
	assert_string_equal(cfg.detect_local_mode, "BridgeInterface");
	assert_string_equal(cfg.healthz_bind_address, "0.0.0.0:10266");
	assert_string_equal(cfg.hostname_override, "Node-A.Example.COM");
	assert_false(cfg.localhost_nodeports);
	assert_true(cfg.masquerade_all);
	assert_int_equal(cfg.masquerade_bit, 0); /* explicit 0 is kept (pointer field upstream) */
	assert_int_equal(cfg.min_sync_period_ms, 2000);
	assert_int_equal(cfg.sync_period_ms, 60000);
	assert_int_equal(cfg.n_ipvs_exclude_cidrs, 2);
	assert_string_equal(cstr(&cfg.ipvs_exclude_cidrs[1], buf), "10.0.0.0/8"); /* lenient, like net.ParseCIDR */
	assert_int_equal(cfg.ipvs_min_sync_period_ms, 5000);
	assert_string_equal(cfg.ipvs_scheduler, "wlc");
	assert_true(cfg.ipvs_strict_arp);
	assert_int_equal(cfg.ipvs_sync_period_ms, 45000);
	assert_int_equal(cfg.ipvs_tcpfin_timeout_s, 10);
	assert_int_equal(cfg.ipvs_tcp_timeout_s, 900);
	assert_int_equal(cfg.ipvs_udp_timeout_s, 300);
	assert_int_equal(cfg.verbosity, 3);
	assert_string_equal(cfg.metrics_bind_address, "127.0.0.1:10249"); /* port appended */
	assert_string_equal(cfg.proxy_mode, "ipvs");
	assert_int_equal(cfg.n_nodeport_addresses, 1);
	assert_true(cfg.nodeport_primary);
	assert_int_equal(cfg.oom_score_adj, -500);
	assert_true(cfg.oom_score_adj_set);
	assert_string_equal(cfg.proxy_port_range, "30000-30100");
	assert_string_equal(cfg.show_hidden_metrics_for_version, "1.28");
	assert_int_equal(cfg.udp_idle_timeout_ms, 500);
	config_free(&cfg);
}

static void test_good_json_and_defaulting(void **state)
{
	struct config cfg;
	char *err = NULL;

	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, DATA("good.json"), &err), 0);
	assert_null(err);
	assert_string_equal(cfg.proxy_mode, "iptables");
	assert_int_equal(cfg.masquerade_bit, 15);
	assert_int_equal(cfg.sync_period_ms, 20000);
	/* upstream defaulting: a zero minSyncPeriod becomes 1s */
	assert_int_equal(cfg.min_sync_period_ms, 1000);
	assert_int_equal(cfg.conntrack_max_per_core, 16384);
	assert_int_equal(cfg.conntrack_tcp_established_s, 86400); /* null = default */
	assert_int_equal(cfg.oom_score_adj, 0);
	assert_string_equal(cfg.metrics_bind_address, "0.0.0.0:10249");
	assert_int_equal(cfg.n_nodeport_addresses, 1);
	config_free(&cfg);

	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, DATA("minimal.yaml"), &err), 0);
	assert_string_equal(cfg.proxy_mode, "iptables");
	assert_int_equal(cfg.masquerade_bit, 14);
	assert_string_equal(cfg.healthz_bind_address, "0.0.0.0:10256");
	config_free(&cfg);

	/* the shipped sample must stay valid and show the defaults */
	config_defaults(&cfg);
	if (config_load_file(&cfg, TEST_DATA_DIR "/../../contrib/kube-proxy-config.yaml", &err) < 0)
		fail_msg("contrib/kube-proxy-config.yaml: %s", err);
	assert_string_equal(cfg.proxy_mode, "iptables");
	assert_string_equal(cfg.cluster_cidr_str, "10.244.0.0/16");
	assert_int_equal(cfg.conntrack_tcp_established_s, 86400);
	assert_int_equal(cfg.min_sync_period_ms, 1000);
	config_free(&cfg);

	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, DATA("ipv6-bind.yaml"), &err), 0);
	assert_string_equal(cfg.healthz_bind_address, "[::]:10256");
	assert_string_equal(cfg.metrics_bind_address, "[::1]:10249");
	config_free(&cfg);
}

struct bad_file {
	const char *file;
	const char *want;
};

static void test_bad_files(void **state)
{
	static const struct bad_file cases[] = {
		{ "bad-unknown-field.yaml", "bad-unknown-field.yaml: iptables.masqueradeBits: unknown field" },
		{ "bad-unknown-top.yaml", "bad-unknown-top.yaml: proxyMode: unknown field" },
		{ "bad-cidr.yaml", "bad-cidr.yaml: clusterCIDR: \"10.244.0.0/33\" is not a valid CIDR" },
		{ "bad-cidr-hostbits.yaml", "bad-cidr-hostbits.yaml: clusterCIDR: \"10.244.1.0/16\" has host bits set" },
		{ "bad-mode.yaml", "bad-mode.yaml: mode: \"turbo\" is not a valid proxy mode" },
		{ "bad-mode-nftables.yaml", "bad-mode-nftables.yaml: mode: \"nftables\" is not supported by this implementation" },
		{ "bad-masquerade-bit.yaml", "bad-masquerade-bit.yaml: iptables.masqueradeBit: 40 is out of range 0-31" },
		{ "bad-type.yaml", "bad-type.yaml: iptables.masqueradeBit: expected integer, got string \"14\"" },
		{ "bad-type-bool.yaml", "bad-type-bool.yaml: ipvs.strictARP: expected boolean (true or false), got string \"yes\"" },
		{ "bad-duration.yaml", "bad-duration.yaml: iptables.syncPeriod: \"30x\": unknown unit" },
		{ "bad-duration-number.yaml", "bad-duration-number.yaml: configSyncPeriod: expected duration string (e.g. \"30s\"), got integer 30" },
		{ "bad-min-sync.yaml", "bad-min-sync.yaml: iptables.minSyncPeriod: 1m0s must not be greater than iptables.syncPeriod (10s)" },
		{ "bad-syntax.yaml", "bad-syntax.yaml: line " },
		{ "bad-two-docs.yaml", "bad-two-docs.yaml: expected exactly one KubeProxyConfiguration document, found 2" },
		{ "bad-kind.yaml", "bad-kind.yaml: kind: must be \"KubeProxyConfiguration\", got \"KubeletConfiguration\"" },
		{ "bad-api-version.yaml", "bad-api-version.yaml: apiVersion: must be \"kubeproxy.config.k8s.io/v1alpha1\"" },
		{ "bad-detect-local.yaml", "bad-detect-local.yaml: detectLocal.interfaceNamePrefix: must be set when detectLocalMode is InterfaceNamePrefix" },
		{ "bad-scheduler.yaml", "bad-scheduler.yaml: ipvs.scheduler: \"fastest\" is not a valid IPVS scheduler" },
		{ "bad-nodeport-item.yaml", "bad-nodeport-item.yaml: nodePortAddresses[1]: \"somewhere\" is not a valid CIDR or \"primary\"" },
		{ "bad-healthz.yaml", "bad-healthz.yaml: healthzBindAddress: \"0.0.0.0:99999\": \"99999\" is not a valid port" },
		{ "bad-oom.yaml", "bad-oom.yaml: oomScoreAdj: -1001 is out of range -1000-1000" },
		{ "bad-json.json", "bad-json.json: conntrack.maxPerCore: expected integer, got number" },
		{ "bad-top-list.yaml", "bad-top-list.yaml: expected a KubeProxyConfiguration object, got array" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char *err = NULL;
		char *path = xasprintf("%s/config/%s", TEST_DATA_DIR, cases[i].file);
		int rc;

		config_defaults(&cfg);
		rc = config_load_file(&cfg, path, &err);
		if (rc != -EINVAL || !err || !strstr(err, cases[i].want) || !strstr(err, path))
			fail_msg("%s: rc %d, error \"%s\", wanted \"%s\"", cases[i].file, rc, err ? err : "(none)",
				 cases[i].want);
		free(err);
		config_free(&cfg);

		/* the same through --config */
		err = NULL;
		if (parse_args(&cfg, &err, "--config", path, NULL) != CONFIG_EXIT_FAIL || !err ||
		    !strstr(err, cases[i].want))
			fail_msg("--config %s: error \"%s\"", cases[i].file, err ? err : "(none)");
		free(err);
		config_free(&cfg);
		free(path);
	}
}

static void test_precedence(void **state)
{
	struct config cfg;
	char *err = NULL;
	char buf[CIDR_STRLEN];

	/* The file wins over flags; --hostname-override, -v, --master and our
	 * own flags still apply. */
	assert_int_equal(parse_args(&cfg, &err, "--proxy-mode=userspace", "--iptables-masquerade-bit=3",
				    "--config", DATA("good.yaml"), "--kubeconfig=/flag.conf", "--hostname-override=FlagNode",
				    "-v", "6", "--master=https://flag:6443", "--manifest-dir=/m", "--log-file=/l",
				    "--state-dir=/s", "--service-cluster-ip-range=10.50.0.0/16", "--dry-run",
				    "--cluster-cidr=10.9.0.0/16", NULL),
			 CONFIG_RUN);
	assert_null(err);
	assert_string_equal(cfg.proxy_mode, "ipvs");                 /* file */
	assert_int_equal(cfg.masquerade_bit, 0);                     /* file */
	assert_string_equal(cfg.kubeconfig, "/etc/kubernetes/kube-proxy.kubeconfig"); /* file */
	assert_string_equal(cstr(&cfg.cluster_cidrs[0], buf), "10.244.0.0/16");   /* file */
	assert_string_equal(cfg.hostname_override, "flagnode");      /* flag */
	assert_string_equal(cfg.node_name, "flagnode");
	assert_int_equal(cfg.verbosity, 6);                          /* flag */
	assert_string_equal(cfg.master, "https://flag:6443");
	assert_string_equal(cfg.manifest_dir, "/m");
	assert_string_equal(cfg.log_file, "/l");
	assert_string_equal(cfg.state_dir, "/s");
	assert_string_equal(cstr(&cfg.service_cidrs[0], buf), "10.50.0.0/16");
	assert_true(cfg.dry_run);
	assert_string_equal(cfg.config_file, DATA("good.yaml"));
	config_free(&cfg);

	/* Without -v and --hostname-override the file's values are used. */
	assert_int_equal(parse_args(&cfg, &err, "--config=" DATA("good.yaml"), NULL), CONFIG_RUN);
	assert_int_equal(cfg.verbosity, 3);
	assert_string_equal(cfg.hostname_override, "Node-A.Example.COM");
	assert_string_equal(cfg.node_name, "node-a.example.com");
	assert_string_equal(cfg.log_file, "/var/log/kube-proxy.log");
	config_free(&cfg);

	/* A flag that would be invalid is ignored (not validated) under --config,
	 * but syntax errors are still reported, as pflag does. */
	assert_int_equal(parse_args(&cfg, &err, "--config", DATA("minimal.yaml"), "--iptables-masquerade-bit=99",
				    NULL),
			 CONFIG_RUN);
	assert_int_equal(cfg.masquerade_bit, 14);
	config_free(&cfg);
	assert_int_equal(parse_args(&cfg, &err, "--config", DATA("minimal.yaml"), "--iptables-masquerade-bit=x",
				    NULL),
			 CONFIG_EXIT_FAIL);
	assert_non_null(strstr(err, "--iptables-masquerade-bit"));
	free(err);
	config_free(&cfg);
}

struct dur_case {
	const char *s;
	int rc;
	unsigned long long ms;
};

static void test_durations(void **state)
{
	static const struct dur_case cases[] = {
		{ "30s", 0, 30000 }, { "1m0s", 0, 60000 }, { "250ms", 0, 250 }, { "1h", 0, 3600000 },
		{ "1h2m3.5s", 0, 3723500 }, { "0", 0, 0 }, { "0s", 0, 0 }, { "+5s", 0, 5000 },
		{ "-0s", 0, 0 }, { "1.5h", 0, 5400000 }, { ".5s", 0, 500 }, { "1.s", 0, 1000 },
		{ "1000000us", 0, 1000 }, { "1000000\xc2\xb5s", 0, 1000 }, { "2000000000ns", 0, 2000 },
		{ "1ns", 0, 1 },  /* non-zero durations never round down to 0 */
		{ "1.0009ms", 0, 1 }, { "24h", 0, 86400000 }, { "2h30m", 0, 9000000 },
		{ "", -EINVAL, 0 }, { "30", -EINVAL, 0 }, { "s", -EINVAL, 0 }, { ".s", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 }, { "-5s", -EINVAL, 0 }, { "--5s", -EINVAL, 0 }, { "5 s", -EINVAL, 0 },
		{ "1s2", -EINVAL, 0 }, { "9999999999h", -EINVAL, 0 }, { "3000000h", -EINVAL, 0 },
		{ "1e3s", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long long ms = 12345;
		int rc = parse_duration_ms(cases[i].s, &ms);

		if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
			fail_msg("\"%s\": rc %d ms %llu, wanted rc %d ms %llu", cases[i].s, rc, ms, cases[i].rc,
				 cases[i].ms);
	}
	/* "2562047h" is just below Go's limit of 2^63 ns; fits ms but not unsigned */
	{
		unsigned long long ms;

		assert_int_equal(parse_duration_ms("2562047h", &ms), 0);
		assert_int_equal(ms, 2562047ULL * 3600000ULL);
		assert_int_equal(parse_duration_ms("2562048h", &ms), -EINVAL);
	}
}

/* Compares every field the file format carries. */
static void assert_same(const struct config *a, const struct config *b)
{
	char x[CIDR_STRLEN], y[CIDR_STRLEN];

#define S(f) assert_string_equal(a->f ? a->f : "", b->f ? b->f : "")
#define I(f) assert_int_equal(a->f, b->f)
	S(kubeconfig); S(proxy_mode); S(hostname_override); S(cluster_cidr_str); S(detect_local_mode);
	S(bridge_interface); S(interface_name_prefix); S(bind_address); S(healthz_bind_address);
	S(metrics_bind_address); S(ipvs_scheduler); S(proxy_port_range); S(kube_api_content_type);
	S(kube_api_accept_content_types); S(show_hidden_metrics_for_version);
	I(n_cluster_cidrs); I(n_nodeport_addresses); I(nodeport_primary); I(masquerade_all); I(masquerade_bit);
	I(localhost_nodeports); I(sync_period_ms); I(min_sync_period_ms); I(ipvs_sync_period_ms);
	I(ipvs_min_sync_period_ms); I(n_ipvs_exclude_cidrs); I(ipvs_strict_arp); I(ipvs_tcp_timeout_s);
	I(ipvs_tcpfin_timeout_s); I(ipvs_udp_timeout_s); I(udp_idle_timeout_ms); I(conntrack_max_per_core);
	I(conntrack_min); I(conntrack_tcp_established_s); I(conntrack_tcp_close_wait_s);
	I(conntrack_udp_timeout_s); I(conntrack_udp_stream_timeout_s); I(oom_score_adj); I(verbosity);
	I(config_sync_period_ms); I(kube_api_burst); I(bind_address_hard_fail); I(enable_profiling);
	I(conntrack_tcp_be_liberal);
	assert_true(a->kube_api_qps == b->kube_api_qps);
	for (size_t i = 0; i < a->n_cluster_cidrs; i++)
		assert_string_equal(cidr_str(&a->cluster_cidrs[i], x), cidr_str(&b->cluster_cidrs[i], y));
	for (size_t i = 0; i < a->n_nodeport_addresses; i++)
		assert_string_equal(cidr_str(&a->nodeport_addresses[i], x), cidr_str(&b->nodeport_addresses[i], y));
	for (size_t i = 0; i < a->n_ipvs_exclude_cidrs; i++)
		assert_string_equal(cidr_str(&a->ipvs_exclude_cidrs[i], x), cidr_str(&b->ipvs_exclude_cidrs[i], y));
#undef S
#undef I
}

static void round_trip(const struct config *src)
{
	char path[] = "/tmp/kp-test-config-XXXXXX";
	struct config back;
	char *doc = config_render(src), *doc2, *err = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
	close(fd);
	config_defaults(&back);
	if (config_load_file(&back, path, &err) < 0)
		fail_msg("reading back the rendered config failed: %s\n%s", err, doc);
	assert_same(src, &back);
	doc2 = config_render(&back);
	assert_string_equal(doc, doc2);
	unlink(path);
	free(doc);
	free(doc2);
	config_free(&back);
}

static void test_render_round_trip(void **state)
{
	struct config cfg;
	char *err = NULL;

	/* defaults */
	assert_int_equal(parse_args(&cfg, &err, NULL), CONFIG_RUN);
	round_trip(&cfg);
	config_free(&cfg);

	/* everything set away from the defaults */
	config_defaults(&cfg);
	assert_int_equal(config_load_file(&cfg, DATA("good.yaml"), &err), 0);
	cfg.udp_idle_timeout_ms = 1500;             /* "1.5s" */
	cfg.sync_period_ms = 3600000 + 61000;       /* "1h1m1s" */
	cfg.kube_api_accept_content_types = (free(cfg.kube_api_accept_content_types), xstrdup("a/b \"q\"\\"));
	cfg.conntrack_tcp_be_liberal = true;
	cfg.enable_profiling = true;
	round_trip(&cfg);
	config_free(&cfg);

	/* --write-config-to writes the effective config and exits */
	{
		char dir[] = "/tmp/kp-test-wc-XXXXXX";
		char *out;
		struct config back;

		assert_non_null(mkdtemp(dir));
		out = xasprintf("%s/out.yaml", dir);
		assert_int_equal(parse_args(&cfg, &err, "--proxy-mode=ipvs", "--ipvs-scheduler=lc",
					    "--cluster-cidr=10.8.0.0/14", "--write-config-to", out, NULL),
				 CONFIG_EXIT_OK);
		config_defaults(&back);
		assert_int_equal(config_load_file(&back, out, &err), 0);
		assert_string_equal(back.proxy_mode, "ipvs");
		assert_string_equal(back.ipvs_scheduler, "lc");
		assert_string_equal(back.cluster_cidr_str, "10.8.0.0/14");
		assert_same(&cfg, &back);
		config_free(&back);
		config_free(&cfg);
		unlink(out);
		rmdir(dir);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_flag),
		cmocka_unit_test(test_flag_forms),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_good_yaml),
		cmocka_unit_test(test_good_json_and_defaulting),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_render_round_trip),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
