/* Test driver for the API-server source: a loop, a store and a kube_source,
 * nothing else. After every change it rewrites a state file with what the
 * store holds, so a test script can wait for an expected state:
 *   ready
 *   node NAME zone=Z cidrs=C,...
 *   svc NS/NAME:PORT IP PORT/PROTO -> EP:PORT[,flags] ...
 * Usage: kubeapi_driver --state FILE [--kubeconfig F] [--master URL]
 *   [--node NAME] [--max-line N] [--watch-timeout S] [--backoff-min MS]
 *   [--backoff-max MS] [--page-size N] [--sa-dir D] [-v N] */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubeapi/source.h"
#include "src/cidr.h"
#include "src/config.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/store.h"
#include "src/util.h"

struct drv {
	struct loop *loop;
	struct store *store;
	const char *state;
	bool ready;
	unsigned changes;
};

static void dump(struct drv *d)
{
	struct proxy_state *ps = store_snapshot(d->store, NULL);
	struct strbuf sb;
	char a[CIDR_STRLEN];

	sb_init(&sb);
	if (d->ready)
		sb_puts(&sb, "ready\n");
	sb_printf(&sb, "changes %u services %zu slices %zu\n", d->changes,
		  store_n_services(d->store), store_n_slices(d->store));
	if (ps->node) {
		sb_printf(&sb, "node %s zone=%s cidrs=", ps->node->name,
			  ps->node->zone ? ps->node->zone : "");
		for (size_t i = 0; i < ps->node->n_pod_cidrs; i++)
			sb_printf(&sb, "%s%s", i ? "," : "", cidr_str(&ps->node->pod_cidrs[i], a));
		sb_putc(&sb, '\n');
	}
	for (size_t i = 0; i < ps->n_ports; i++) {
		const struct svc_port_info *p = &ps->ports[i];

		sb_printf(&sb, "svc %s %s %u/%s ->", p->spn, addr_str(&p->cluster_ip, a), p->svc_port,
			  proto_lower(p->proto));
		for (size_t e = 0; e < p->n_eps; e++)
			sb_printf(&sb, " %s:%u%s%s", addr_str(&p->eps[e].ip, a), p->eps[e].port,
				  p->eps[e].ready ? "" : ",notready",
				  p->eps[e].terminating ? ",terminating" : "");
		sb_putc(&sb, '\n');
	}
	proxy_state_free(ps);
	if (write_file_atomic(d->state, sb.buf, sb.len, 0644) < 0)
		fprintf(stderr, "driver: cannot write %s\n", d->state);
	sb_free(&sb);
}

static void on_changed(void *arg)
{
	struct drv *d = arg;

	d->changes++;
	dump(d);
}

static void on_ready(void *arg)
{
	struct drv *d = arg;

	d->ready = true;
	dump(d);
}

static void on_signal(struct loop *l, int signo, void *arg)
{
	loop_quit(l);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "master", required_argument, NULL, 'm' },
		{ "node", required_argument, NULL, 'n' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "watch-timeout", required_argument, NULL, 'T' },
		{ "backoff-min", required_argument, NULL, 'b' },
		{ "backoff-max", required_argument, NULL, 'B' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "sa-dir", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct kube_source_opts o = { 0 };
	struct config cfg = { 0 };
	struct drv d = { 0 };
	struct kube_source_cbs cbs = { on_changed, on_ready, &d };
	struct kube_source *ks;
	char *err = NULL;
	int c, verbosity = 0, rc = 0;

	while ((c = getopt_long(argc, argv, "v:", opts, NULL)) != -1) {
		switch (c) {
		case 's': d.state = optarg; break;
		case 'k': cfg.kubeconfig = optarg; break;
		case 'm': cfg.master = optarg; break;
		case 'n': cfg.node_name = optarg; break;
		case 'L': o.max_line = strtoul(optarg, NULL, 0); break;
		case 'T': o.watch_timeout_s = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'b': o.backoff_min_ms = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'B': o.backoff_max_ms = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p': o.page_size = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'S': o.sa_dir = optarg; break;
		case 'v': verbosity = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s --state FILE [--kubeconfig F] [--master URL] ...\n",
				argv[0]);
			return 2;
		}
	}
	if (!d.state) {
		fprintf(stderr, "%s: --state is required\n", argv[0]);
		return 2;
	}
	log_open(NULL, verbosity);
	d.loop = loop_new();
	d.store = store_new(cfg.node_name);
	loop_add_signal(d.loop, SIGTERM, on_signal, NULL);
	loop_add_signal(d.loop, SIGINT, on_signal, NULL);
	ks = kube_source_open_opts(d.loop, d.store, &cfg, &cbs, &o, &err);
	if (!ks) {
		fprintf(stderr, "driver: %s\n", err);
		free(err);
		rc = 1;
		goto out;
	}
	log_info("driver: source %s", kube_source_server(ks));
	dump(&d);
	loop_run(d.loop);
	kube_source_close(ks);
out:
	store_free(d.store);
	loop_free(d.loop);
	log_close();
	return rc;
}
