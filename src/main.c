/* kube-proxy: parse the configuration, pick a mode and a source, and run
 * the event loop until SIGTERM/SIGINT. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../kubeapi/source.h"
#include "../modes/mode.h"
#include "allocator.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "manifests.h"
#include "obs.h"
#include "sdnotify.h"
#include "runner.h"
#include "store.h"
#include "util.h"

struct daemon {
	struct config cfg;
	const struct proxy_mode *mode;
	struct mode_ctx ctx;
	struct loop *loop;
	struct store *store;
	struct allocator *alloc;
	struct manifest_source *manifests;
	struct kube_source *kube;
	struct runner *runner;
	bool first_sync_done;
	struct obs *obs;
	struct sd_watchdog *watchdog;
};

static void on_source_changed(void *arg)
{
	struct daemon *d = arg;

	if (d->obs)
		obs_set_node(d->obs, store_node(d->store));
	if (d->runner)
		runner_kick(d->runner);
}

static void on_source_ready(void *arg)
{
	struct daemon *d = arg;

	if (d->runner)
		runner_set_ready(d->runner);
}

static void on_synced(const struct proxy_state *ps, bool ok, const struct runner_stats *st, void *arg)
{
	struct daemon *d = arg;

	if (ok && !d->first_sync_done) {
		d->first_sync_done = true;
		log_info("Initial sync of %s proxy rules done: %zu services, %zu endpoints in %.3fs",
			 d->mode->name, ps->n_services, ps->n_endpoints, st->last_duration_s);
		sd_notify_ready(NULL);
	}
	obs_on_sync(d->obs, ps, ok, st, st->applied_queued_time);
	if (ok) {
		sd_notify_status("Synced %zu services, %zu endpoints", ps->n_services, ps->n_endpoints);
	}
}

static void on_quit(struct loop *l, int signo, void *arg)
{
	log_info("Received %s, exiting; kernel rules stay in place", strsignal(signo));
	loop_quit(l);
}

static void on_reopen(struct loop *l, int signo, void *arg)
{
	int err = log_reopen();

	if (err < 0)
		log_error("Cannot reopen the log file: %s", strerror(-err));
	else
		log_info("Reopened the log file");
}

static void on_hup(struct loop *l, int signo, void *arg)
{
	struct daemon *d = arg;

	log_info("SIGHUP: rescanning sources and forcing a full resync");
	if (d->manifests)
		manifests_rescan(d->manifests);
	runner_force_full(d->runner);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void log_startup(const struct daemon *d)
{
	const struct config *c = &d->cfg;
	char buf[CIDR_STRLEN];
	struct strbuf svc, clu;

	sb_init(&svc);
	sb_init(&clu);
	for (size_t i = 0; i < c->n_service_cidrs; i++)
		sb_printf(&svc, "%s%s", i ? "," : "", cidr_str(&c->service_cidrs[i], buf));
	for (size_t i = 0; i < c->n_cluster_cidrs; i++)
		sb_printf(&clu, "%s%s", i ? "," : "", cidr_str(&c->cluster_cidrs[i], buf));
	log_info("Version: v%s (kube-proxy in C)", PACKAGE_VERSION);
	/* Upstream's phrase, which operators grep for. */
	log_info("Using %s Proxier", d->mode->name);
	log_info("Service CIDR: %s", svc.len ? sb_cstr(&svc) : "(none)");
	log_info("Cluster CIDR: %s", clu.len ? sb_cstr(&clu) : "(none: local traffic detection by cluster CIDR is off)");
	log_info("Node name: %s", c->node_name);
	if (d->manifests)
		log_info("Source: manifest directory %s", c->manifest_dir);
	else if (d->kube)
		log_info("Source: API server %s", kube_source_server(d->kube));
	sb_free(&svc);
	sb_free(&clu);
}

static int run_cleanup(const struct config *cfg)
{
	const struct proxy_mode *const *m = mode_list();
	int rc = 0;

	for (; *m; m++) {
		if (!(*m)->cleanup)
			continue;
		if ((*m)->cleanup(cfg) < 0) {
			log_error("Cleanup of %s mode state failed", (*m)->name);
			rc = 1;
		} else {
			log_info("Removed %s mode state", (*m)->name);
		}
	}
	return rc;
}

static int open_sources(struct daemon *d)
{
	const struct config *c = &d->cfg;
	char *err = NULL;

	if (c->manifest_dir) {
		char *path = xasprintf("%s/clusterip-allocations", c->state_dir);

		if (!c->dry_run) {
			int e = mkdir_p(c->state_dir);

			if (e < 0)
				log_warn("Cannot create state directory %s: %s", c->state_dir, strerror(-e));
		}
		d->alloc = allocator_new(c->service_cidrs, c->n_service_cidrs, path, &err);
		free(path);
		if (!d->alloc) {
			log_error("ClusterIP allocator: %s", err);
			free(err);
			return -1;
		}
		if (c->dry_run)
			allocator_set_read_only(d->alloc);
		d->manifests = manifests_open(c->dry_run ? NULL : d->loop, d->store, d->alloc,
					      c->manifest_dir, on_source_changed, d, &err);
		if (!d->manifests) {
			log_error("Manifest directory: %s", err);
			free(err);
			return -1;
		}
		return 0;
	}
	{
		struct kube_source_cbs cbs = { on_source_changed, on_source_ready, d };

		d->kube = kube_source_open(d->loop, d->store, c, &cbs, &err);
		if (!d->kube) {
			log_error("API server: %s", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

static int dry_run(struct daemon *d)
{
	struct proxy_state *ps;
	int err;

	if (!d->mode->dump) {
		log_error("--dry-run is not supported by the %s mode", d->mode->name);
		return 1;
	}
	ps = store_snapshot(d->store, NULL);
	err = d->mode->dump(&d->cfg, ps, stdout);
	proxy_state_free(ps);
	fflush(stdout);
	return err < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct daemon d = { 0 };
	char *err = NULL;
	int rc = 1, e;
	bool ipvs;

	config_defaults(&d.cfg);
	switch (config_parse(&d.cfg, argc, argv, &err)) {
	case CONFIG_EXIT_OK:
		config_free(&d.cfg);
		return 0;
	case CONFIG_EXIT_FAIL:
		fprintf(stderr, "kube-proxy: %s\n", err ? err : "invalid configuration");
		free(err);
		config_free(&d.cfg);
		return 1;
	case CONFIG_RUN:
		break;
	}

	/* --dry-run writes rules to stdout; keep the log file out of it. */
	e = log_open(d.cfg.dry_run ? NULL : d.cfg.log_file, d.cfg.verbosity);
	if (e < 0)
		log_warn("Cannot open log file %s: %s; logging to stderr only", d.cfg.log_file, strerror(-e));

	d.mode = mode_find(d.cfg.proxy_mode);
	if (!d.mode) {
		log_error("Proxy mode \"%s\" is %s", d.cfg.proxy_mode,
			  mode_known(d.cfg.proxy_mode) ? "not compiled into this binary (see ./configure --help)" : "unknown");
		goto out;
	}
	if (d.cfg.cleanup) {
		rc = run_cleanup(&d.cfg);
		goto out;
	}

	d.loop = loop_new();
	if (!d.loop)
		goto out;
	d.store = store_new(d.cfg.node_name);
	if (open_sources(&d) < 0)
		goto out;
	if (d.cfg.dry_run) {
		rc = dry_run(&d);
		goto out;
	}

	log_startup(&d);
	if (d.mode->probe && d.mode->probe(&d.cfg, &err) < 0) {
		log_error("The %s proxy mode cannot run on this kernel: %s", d.mode->name, err ? err : "unknown reason");
		goto out;
	}
	raise_nofile();
	d.ctx.cfg = &d.cfg;
	d.ctx.loop = d.loop;
	if (d.mode->init && (e = d.mode->init(&d.ctx)) < 0) {
		log_error("Cannot initialise the %s proxier: %s", d.mode->name, strerror(-e));
		goto out;
	}
	ipvs = strcmp(d.mode->name, "ipvs") == 0;   /* ipvs has its own periods */
	d.runner = runner_new(d.loop, d.store, d.mode, &d.ctx,
			      ipvs ? d.cfg.ipvs_min_sync_period_ms : d.cfg.min_sync_period_ms,
			      ipvs ? d.cfg.ipvs_sync_period_ms : d.cfg.sync_period_ms);
	runner_on_synced(d.runner, on_synced, &d);
	d.obs = obs_start(d.loop, &d.cfg, d.mode->name, d.runner, d.store, &err);
	if (d.obs && d.mode->metrics)
		obs_set_mode_metrics(d.obs, d.mode->metrics, &d.ctx);
	if (!d.obs) {
		/* As upstream: fatal only with --bind-address-hard-fail; otherwise
		 * the rules matter more than the observability endpoints. */
		if (d.cfg.bind_address_hard_fail) {
			log_error("%s", err);
			goto out;
		}
		log_error("%s; running without the healthz and metrics servers and the health check "
			  "node ports (--bind-address-hard-fail makes this fatal)", err);
		free_and_null(&err);
	}
	d.watchdog = sd_watchdog_start(d.loop);
	loop_add_signal(d.loop, SIGTERM, on_quit, &d);
	loop_add_signal(d.loop, SIGINT, on_quit, &d);
	loop_add_signal(d.loop, SIGUSR1, on_reopen, &d);
	loop_add_signal(d.loop, SIGHUP, on_hup, &d);
	signal(SIGPIPE, SIG_IGN);
	/* The manifest source delivered everything synchronously. */
	if (d.manifests)
		runner_set_ready(d.runner);

	e = loop_run(d.loop);
	rc = e < 0 ? 1 : 0;
	sd_notify_stopping();
out:
	sd_watchdog_stop(d.watchdog);
	obs_stop(d.obs);
	runner_free(d.runner);
	if (d.mode && d.mode->fini && d.ctx.priv)
		d.mode->fini(&d.ctx);
	manifests_close(d.manifests);
	if (d.kube)
		kube_source_close(d.kube);
	allocator_free(d.alloc);
	store_free(d.store);
	loop_free(d.loop);
	free(err);
	config_free(&d.cfg);
	log_close();
	return rc;
}
