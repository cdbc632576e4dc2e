/* The daemon's configuration: upstream's flags (getopt_long), upstream's
 * KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1, YAML or
 * JSON), and our own flags. This is the only mutable global-ish state and it
 * is filled once at start, then passed around as const. */
#ifndef KP_CONFIG_H
#define KP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"

#define MAX_CIDRS 16

struct config {
	/* source */
	char *kubeconfig;            /* --kubeconfig / clientConnection.kubeconfig */
	char *master;                /* --master */
	char *manifest_dir;          /* --manifest-dir (ours) */
	char *config_file;           /* --config */
	char *write_config_to;       /* --write-config-to */

	/* actions */
	bool cleanup;                /* --cleanup */
	bool dry_run;                /* --dry-run (ours) */

	/* identity and mode */
	char *proxy_mode;            /* --proxy-mode / mode: iptables (default), ipvs, userspace */
	char *hostname_override;     /* --hostname-override / hostnameOverride */
	char *node_name;             /* resolved: override, else uname nodename, lower case */

	/* networks */
	char *cluster_cidr_str;      /* --cluster-cidr / clusterCIDR, as given */
	struct cidr cluster_cidrs[2];
	size_t n_cluster_cidrs;
	char *service_cidr_str;      /* --service-cluster-ip-range (ours), default 10.0.0.0/24 */
	struct cidr service_cidrs[2];
	size_t n_service_cidrs;
	struct cidr nodeport_addresses[MAX_CIDRS]; /* --nodeport-addresses / nodePortAddresses */
	size_t n_nodeport_addresses;
	bool nodeport_primary;       /* nodePortAddresses: ["primary"] */

	/* local traffic detection */
	char *detect_local_mode;     /* ClusterCIDR (default), NodeCIDR, BridgeInterface, InterfaceNamePrefix */
	char *bridge_interface;      /* --pod-bridge-interface / detectLocal.bridgeInterface */
	char *interface_name_prefix; /* --pod-interface-name-prefix / detectLocal.interfaceNamePrefix */

	/* endpoints */
	char *bind_address;          /* --bind-address / bindAddress, default 0.0.0.0 */
	char *healthz_bind_address;  /* default 0.0.0.0:10256 ("" disables) */
	char *metrics_bind_address;  /* default 127.0.0.1:10249 ("" disables) */

	/* iptables */
	bool masquerade_all;         /* --masquerade-all */
	int masquerade_bit;          /* --iptables-masquerade-bit, 0..31, default 14 */
	bool localhost_nodeports;    /* --iptables-localhost-nodeports, default true */
	unsigned sync_period_ms;     /* --iptables-sync-period, default 30s */
	unsigned min_sync_period_ms; /* --iptables-min-sync-period, default 1s */

	/* ipvs */
	char *ipvs_scheduler;        /* --ipvs-scheduler, default rr */
	unsigned ipvs_sync_period_ms;     /* --ipvs-sync-period, default 30s */
	unsigned ipvs_min_sync_period_ms; /* --ipvs-min-sync-period, default 0 (upstream) */
	struct cidr ipvs_exclude_cidrs[MAX_CIDRS]; /* --ipvs-exclude-cidrs */
	size_t n_ipvs_exclude_cidrs;
	bool ipvs_strict_arp;        /* --ipvs-strict-arp */
	unsigned ipvs_tcp_timeout_s;      /* --ipvs-tcp-timeout, 0 = leave */
	unsigned ipvs_tcpfin_timeout_s;   /* --ipvs-tcpfin-timeout */
	unsigned ipvs_udp_timeout_s;      /* --ipvs-udp-timeout */

	/* userspace */
	char *proxy_port_range;      /* --proxy-port-range / portRange, "" = any */
	unsigned udp_idle_timeout_ms;     /* --udp-timeout / udpIdleTimeout, default 250ms */

	/* conntrack */
	int conntrack_max_per_core;  /* --conntrack-max-per-core, default 32768 */
	int conntrack_min;           /* --conntrack-min, default 131072 */
	unsigned conntrack_tcp_established_s; /* default 24h */
	unsigned conntrack_tcp_close_wait_s;  /* default 1h */
	unsigned conntrack_udp_timeout_s;     /* 0 = leave */
	unsigned conntrack_udp_stream_timeout_s; /* 0 = leave */

	/* process */
	int oom_score_adj;           /* --oom-score-adj, default -999, range -1000..1000 */
	bool oom_score_adj_set;
	int verbosity;               /* -v */
	char *log_file;              /* --log-file (ours), default /var/log/kube-proxy.log */
	char *state_dir;             /* --state-dir (ours), default /var/lib/kube-proxy */
	unsigned config_sync_period_ms; /* --config-sync-period, default 15m (relist period) */

	/* upstream settings kept for a faithful --write-config-to / round trip;
	 * accepted and validated, with little or no effect here */
	char *kube_api_content_type;  /* clientConnection.contentType, default protobuf */
	char *kube_api_accept_content_types; /* clientConnection.acceptContentTypes */
	double kube_api_qps;          /* clientConnection.qps / --kube-api-qps, default 5 */
	int kube_api_burst;           /* clientConnection.burst / --kube-api-burst, default 10 */
	bool bind_address_hard_fail;  /* bindAddressHardFail / --bind-address-hard-fail */
	bool enable_profiling;        /* enableProfiling / --profiling (no pprof here) */
	char *show_hidden_metrics_for_version; /* showHiddenMetricsForVersion */
	bool conntrack_tcp_be_liberal; /* conntrack.tcpBeLiberal / --conntrack-tcp-be-liberal */
};

/* Outcome of config_parse. */
enum config_action {
	CONFIG_RUN,       /* run the daemon */
	CONFIG_EXIT_OK,   /* --help / --version printed, or --write-config-to done */
	CONFIG_EXIT_FAIL, /* error printed; exit non-zero */
};

/* Fills cfg with defaults. */
void config_defaults(struct config *cfg);

/* Parses argv (flags), then the --config file if given, and validates.
 * Precedence as upstream: when --config is given, the file's values win and
 * the other command-line flags are ignored (each with a warning), except
 * --config, --cleanup, --write-config-to, --dry-run, -v, --hostname-override
 * and --master (upstream applies those two on top of the file), and our own
 * --manifest-dir, --log-file, --state-dir and --service-cluster-ip-range
 * (the file has no field for them). Errors name the flag or the file and
 * field. On error, *err holds the message (caller frees). */
enum config_action config_parse(struct config *cfg, int argc, char **argv, char **err);

/* Loads a KubeProxyConfiguration from a YAML or JSON file into cfg.
 * Returns 0 or -EINVAL with *err naming path and field. */
int config_load_file(struct config *cfg, const char *path, char **err);

/* Renders cfg as a KubeProxyConfiguration YAML document (caller frees). */
char *config_render(const struct config *cfg);

/* Parses a Go duration ("30s", "1m0s", "250ms", "1h2m3.5s") into ms.
 * 0 or -EINVAL. */
int parse_duration_ms(const char *s, unsigned long long *ms);

void config_free(struct config *cfg);

#endif
