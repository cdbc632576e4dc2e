/* The manifest directory source against a real temporary directory, the
 * real store and the real allocator: initial load, edits, broken files,
 * object-level errors, duplicates, removal, restarts, and inotify. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "src/allocator.h"
#include "src/log.h"
#include "src/loop.h"
#include "src/manifests.h"
#include "src/store.h"
#include "src/util.h"

struct fx {
	char root[64];
	char *dir, *state, *log;
	struct store *st;
	struct allocator *al;
	struct manifest_source *m;
	int changed;              /* callback count */
	struct loop *loop;
};

static void on_changed(void *arg)
{
	struct fx *f = arg;

	f->changed++;
	if (f->loop)
		loop_quit(f->loop);
}

static void put(struct fx *f, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", f->dir, name);

	assert_int_equal(write_file_atomic(p, text, strlen(text), 0644), 0);
	free(p);
}

static void put_file(struct fx *f, const char *name, const char *datafile)
{
	char *src = xasprintf("%s/%s", TEST_DATA_DIR, datafile), *buf = NULL;
	size_t len;

	assert_int_equal(read_file(src, &buf, &len), 0);
	put(f, name, buf);
	free(buf);
	free(src);
}

static void rm(struct fx *f, const char *name)
{
	char *p = xasprintf("%s/%s", f->dir, name);

	assert_int_equal(unlink(p), 0);
	free(p);
}

static void start(struct fx *f)
{
	struct cidr c[2];
	char *err = NULL;

	assert_int_equal(cidr_parse("10.0.0.0/24", false, &c[0]), 0);
	assert_int_equal(cidr_parse("fd00::/120", false, &c[1]), 0);
	f->st = store_new("node-1");
	f->al = allocator_new(c, 2, f->state, &err);
	assert_non_null(f->al);
	f->m = manifests_open(f->loop, f->st, f->al, f->dir, on_changed, f, &err);
	if (!f->m)
		fail_msg("manifests_open: %s", err);
}

static void stop(struct fx *f)
{
	manifests_close(f->m);
	allocator_free(f->al);
	store_free(f->st);
	f->m = NULL;
	f->al = NULL;
	f->st = NULL;
}

static const struct service *svc(struct fx *f, const char *ns, const char *name)
{
	return store_get_service(f->st, ns, name);
}

static void assert_ip(const struct service *s, size_t i, const char *want)
{
	char buf[ADDR_STRLEN];

	assert_non_null(s);
	assert_true(s->n_cluster_ips > i);
	assert_string_equal(addr_str(&s->cluster_ips[i], buf), want);
}

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t len;

	assert_int_equal(read_file(path, &buf, &len), 0);
	return buf;
}

static void log_reset(struct fx *f)
{
	assert_int_equal(truncate(f->log, 0), 0);
}

static void assert_logged(struct fx *f, const char *needle)
{
	char *t = slurp(f->log);

	if (!strstr(t, needle))
		fail_msg("log lacks \"%s\":\n%s", needle, t);
	free(t);
}

static void assert_not_logged(struct fx *f, const char *needle)
{
	char *t = slurp(f->log);

	if (strstr(t, needle))
		fail_msg("log has \"%s\":\n%s", needle, t);
	free(t);
}

/* tests/data/manifests/: web.yaml (Service web + EndpointSlice web-1, two
 * documents), api.json (Service prod/api asking for 10.0.0.50), list.yaml
 * (a List: Service db, IPv6 only; Endpoints db; a Deployment). */
static void load_initial(struct fx *f)
{
	put_file(f, "web.yaml", "manifests/web.yaml");
	put_file(f, "api.json", "manifests/api.json");
	put_file(f, "list.yaml", "manifests/list.yaml");
	put_file(f, "kubectl.json", "objects/service-nodeport-kubectl.json");
	put(f, "notes.txt", "kind: Service\n");
	put(f, ".hidden.yaml", "kind: [\n");
	put(f, "web.yaml~", "kind: [\n");
	put(f, ".web.yaml.swp", "kind: [\n");
	start(f);
}

static void test_initial_load(void **state)
{
	struct fx *f = *state;
	char *text;

	load_initial(f);
	assert_int_equal(f->changed, 1);
	assert_int_equal(store_n_services(f->st), 4);
	assert_int_equal(store_n_slices(f->st), 2);
	/* Files are scanned in name order: api.json, kubectl.json, list.yaml, web.yaml. */
	assert_ip(svc(f, "prod", "api"), 0, "10.0.0.50");
	assert_ip(svc(f, "default", "shop"), 0, "10.0.0.1");
	assert_ip(svc(f, "default", "db"), 0, "fd00::1");
	assert_int_equal(svc(f, "default", "db")->n_cluster_ips, 1);
	assert_ip(svc(f, "default", "web"), 0, "10.0.0.2");
	assert_int_equal(svc(f, "default", "shop")->ports[0].node_port, 30080);
	assert_logged(f, "Service default/web added from web.yaml (ClusterIP 10.0.0.2)");
	assert_logged(f, "EndpointSlice default/db.endpoints-0 added from list.yaml");
	assert_logged(f, "list.yaml: document 1 items[2]: Deployment default/db ignored");
	assert_not_logged(f, "hidden");
	assert_not_logged(f, "swp");
	text = slurp(f->state);
	assert_non_null(strstr(text, "default/db\tfd00::1\ndefault/shop\t10.0.0.1\ndefault/web\t10.0.0.2\nprod/api\t10.0.0.50\n"));
	free(text);
	/* A rescan with nothing changed changes nothing. */
	manifests_rescan(f->m);
	assert_int_equal(f->changed, 1);
	stop(f);
}

static void test_edit_broken_and_object_errors(void **state)
{
	struct fx *f = *state;
	const struct service *s;

	load_initial(f);

	/* Edit: port changes, ClusterIP stays. A second Service appears. */
	put(f, "web.yaml",
	    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{name: http, port: 8080}]}\n"
	    "---\napiVersion: v1\nkind: Service\nmetadata: {name: web2}\nspec: {ports: [{port: 81}]}\n");
	log_reset(f);
	manifests_rescan(f->m);
	assert_int_equal(f->changed, 2);
	s = svc(f, "default", "web");
	assert_int_equal(s->ports[0].port, 8080);
	assert_ip(s, 0, "10.0.0.2");
	assert_ip(svc(f, "default", "web2"), 0, "10.0.0.3");
	assert_int_equal(store_n_slices(f->st), 1);   /* web-1 left the file */
	assert_logged(f, "Service default/web changed in web.yaml (ClusterIP 10.0.0.2)");
	assert_logged(f, "EndpointSlice default/web-1 removed (was in web.yaml)");
	assert_not_logged(f, "Service prod/api");     /* untouched files are not re-sent */

	/* A broken file keeps its last good content. */
	log_reset(f);
	put(f, "web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web\nspec: [\n");
	manifests_rescan(f->m);
	assert_int_equal(f->changed, 2);
	assert_int_equal(svc(f, "default", "web")->ports[0].port, 8080);
	assert_non_null(svc(f, "default", "web2"));
	assert_logged(f, "/web.yaml: line ");
	assert_logged(f, "keeping its last good content");

	/* An object error rejects that object alone; its previous version stays. */
	log_reset(f);
	put(f, "web.yaml",
	    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{name: http, port: 70000}]}\n"
	    "---\napiVersion: v1\nkind: Service\nmetadata: {name: web2}\nspec: {ports: [{port: 82}]}\n"
	    "---\napiVersion: v1\nkind: Service\nmetadata: {name: web3}\nspec: {ports: [{port: 0}]}\n"
	    "---\napiVersion: v2\nkind: Service\nmetadata: {name: web4}\n"
	    "---\n[1, 2]\n");
	manifests_rescan(f->m);
	assert_int_equal(f->changed, 3);
	assert_int_equal(svc(f, "default", "web")->ports[0].port, 8080);
	assert_int_equal(svc(f, "default", "web2")->ports[0].port, 82);
	assert_null(svc(f, "default", "web3"));
	assert_null(svc(f, "default", "web4"));
	assert_logged(f, "web.yaml: document 1: Service default/web: spec.ports[0].port: 70000 is not a valid port (1-65535); keeping its previous version");
	assert_logged(f, "web.yaml: document 3: Service default/web3: spec.ports[0].port: 0 is not a valid port (1-65535); object ignored");
	assert_logged(f, "web.yaml: document 4: apiVersion: \"v2\" is not supported for Service");
	assert_logged(f, "web.yaml: document 5: not an object");

	/* Fixing it delivers the new version. */
	put(f, "web.yaml",
	    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{name: http, port: 9090}]}\n");
	manifests_rescan(f->m);
	assert_int_equal(svc(f, "default", "web")->ports[0].port, 9090);
	assert_null(svc(f, "default", "web2"));
	assert_null(allocator_lookup(f->al, "default/web2", AF_INET));
	stop(f);
}

static void test_duplicates_conflicts_removal(void **state)
{
	struct fx *f = *state;
	char *text;

	load_initial(f);
	/* Same Service in a later file: the first file in name order wins. */
	log_reset(f);
	put(f, "zz.yaml", "kind: Service\napiVersion: v1\nmetadata: {name: web}\nspec: {ports: [{port: 1}]}\n");
	manifests_rescan(f->m);
	assert_int_equal(svc(f, "default", "web")->ports[0].port, 80);
	assert_logged(f, "zz.yaml: Service default/web is already defined in web.yaml; this one is ignored");
	/* Remove the winner: the other definition takes over, same ClusterIP. */
	rm(f, "web.yaml");
	manifests_rescan(f->m);
	assert_int_equal(svc(f, "default", "web")->ports[0].port, 1);
	assert_ip(svc(f, "default", "web"), 0, "10.0.0.2");
	assert_int_equal(store_n_slices(f->st), 1);

	/* A requested ClusterIP held by another Service: that Service alone is
	 * rejected, naming the holder; same for out of range. */
	log_reset(f);
	put(f, "steal.yaml",
	    "kind: Service\napiVersion: v1\nmetadata: {name: steal}\nspec: {clusterIP: 10.0.0.50, ports: [{port: 1}]}\n"
	    "---\nkind: Service\napiVersion: v1\nmetadata: {name: far}\nspec: {clusterIP: 10.9.0.1, ports: [{port: 1}]}\n"
	    "---\nkind: Service\napiVersion: v1\nmetadata: {name: bcast}\nspec: {clusterIP: 10.0.0.255, ports: [{port: 1}]}\n"
	    "---\nkind: Service\napiVersion: v1\nmetadata: {name: fine}\nspec: {ports: [{port: 1}]}\n"
	    "---\nkind: Service\napiVersion: v1\nmetadata: {name: none}\nspec: {clusterIP: None}\n"
	    "---\nkind: Service\napiVersion: v1\nmetadata: {name: dual}\nspec: {ipFamilyPolicy: RequireDualStack, ports: [{port: 1}]}\n");
	manifests_rescan(f->m);
	assert_null(svc(f, "default", "steal"));
	assert_null(svc(f, "default", "far"));
	assert_null(svc(f, "default", "bcast"));
	assert_ip(svc(f, "default", "fine"), 0, "10.0.0.3");
	assert_true(svc(f, "default", "none")->headless);
	assert_int_equal(svc(f, "default", "none")->n_cluster_ips, 0);
	assert_ip(svc(f, "default", "dual"), 0, "10.0.0.4");
	assert_ip(svc(f, "default", "dual"), 1, "fd00::2");
	assert_logged(f, "steal.yaml: Service default/steal: spec.clusterIP: 10.0.0.50 is already allocated to Service prod/api; Service not proxied");
	assert_logged(f, "Service default/far: spec.clusterIP: 10.9.0.1 is outside the service-cluster-ip-range");
	assert_logged(f, "Service default/bcast: spec.clusterIP: 10.0.0.255 is outside");
	assert_null(allocator_lookup(f->al, "default/steal", AF_INET));
	/* Failures are not logged again while nothing changes... */
	log_reset(f);
	manifests_rescan(f->m);
	assert_not_logged(f, "steal");
	/* ...and the Service gets its address once the holder is gone. */
	rm(f, "api.json");
	manifests_rescan(f->m);
	assert_null(svc(f, "prod", "api"));
	assert_ip(svc(f, "default", "steal"), 0, "10.0.0.50");
	assert_logged(f, "Service prod/api removed (was in api.json)");

	/* Removing a file removes its objects and frees their addresses. */
	rm(f, "list.yaml");
	manifests_rescan(f->m);
	assert_null(svc(f, "default", "db"));
	assert_null(allocator_lookup(f->al, "default/db", AF_INET6));
	assert_int_equal(store_n_slices(f->st), 0);
	text = slurp(f->state);
	assert_null(strstr(text, "default/db"));
	assert_non_null(strstr(text, "default/steal\t10.0.0.50\n"));
	free(text);
	stop(f);
}

static void test_restart_keeps_addresses(void **state)
{
	struct fx *f = *state;

	load_initial(f);
	put(f, "more.yaml", "kind: Service\napiVersion: v1\nmetadata: {name: more}\nspec: {ports: [{port: 1}]}\n");
	manifests_rescan(f->m);
	assert_ip(svc(f, "default", "more"), 0, "10.0.0.3");
	stop(f);

	/* Same state file, files read in the same order: nothing moves, even
	 * though "more" is now created before "web" would have been. */
	rm(f, "web.yaml");
	put(f, "a-new.yaml", "kind: Service\napiVersion: v1\nmetadata: {name: anew}\nspec: {ports: [{port: 1}]}\n");
	put_file(f, "web2.yaml", "manifests/web.yaml");
	log_reset(f);
	start(f);
	assert_ip(svc(f, "default", "shop"), 0, "10.0.0.1");
	assert_ip(svc(f, "default", "web"), 0, "10.0.0.2");
	assert_ip(svc(f, "default", "more"), 0, "10.0.0.3");
	assert_ip(svc(f, "prod", "api"), 0, "10.0.0.50");
	assert_ip(svc(f, "default", "anew"), 0, "10.0.0.4");
	stop(f);

	/* A Service deleted while the daemon was down is released at start. */
	rm(f, "more.yaml");
	start(f);
	assert_null(allocator_lookup(f->al, "default/more", AF_INET));
	assert_logged(f, "Released ClusterIP of default/more");
	stop(f);
}

static void quit_timer(struct loop *l, struct loop_timer *t, void *arg)
{
	loop_quit(l);
}

static void test_inotify(void **state)
{
	struct fx *f = *state;
	struct loop_timer *guard;
	unsigned long long t0;

	f->loop = loop_new();
	assert_non_null(f->loop);
	put_file(f, "web.yaml", "manifests/web.yaml");
	start(f);
	assert_int_equal(f->changed, 1);
	guard = loop_timer_new(f->loop, quit_timer, NULL);

	/* A new file is picked up through inotify within the debounce time. */
	put_file(f, "api.json", "manifests/api.json");
	t0 = now_ms();
	loop_timer_arm(guard, 3000);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(f->changed, 2);
	assert_true(now_ms() - t0 < 2000);
	assert_ip(svc(f, "prod", "api"), 0, "10.0.0.50");

	/* Removal too. */
	rm(f, "web.yaml");
	loop_timer_arm(guard, 3000);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(f->changed, 3);
	assert_null(svc(f, "default", "web"));

	/* Editor droppings do not cause store changes. */
	put(f, ".web.yaml.swp", "junk");
	put(f, "web.yaml~", "junk");
	loop_timer_arm(guard, 400);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(f->changed, 3);

	/* The directory moves away: its content keeps being served; when it is
	 * back, it is watched again. */
	{
		char *away = xasprintf("%s.away", f->dir);

		assert_int_equal(rename(f->dir, away), 0);
		loop_timer_arm(guard, 300);
		assert_int_equal(loop_run(f->loop), 0);
		assert_logged(f, "was removed or moved; serving its last content");
		assert_non_null(svc(f, "prod", "api"));
		assert_int_equal(rename(away, f->dir), 0);
		loop_timer_arm(guard, 1500);
		assert_int_equal(loop_run(f->loop), 0);
		assert_logged(f, "is back; watching it again");
		assert_non_null(svc(f, "prod", "api"));
		assert_int_equal(f->changed, 3);
		free(away);
	}
	rm(f, "api.json");
	loop_timer_arm(guard, 3000);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(f->changed, 4);
	assert_null(svc(f, "prod", "api"));

	loop_timer_free(guard);
	stop(f);
	loop_free(f->loop);
	f->loop = NULL;
}

static void test_bad_dir(void **state)
{
	struct fx *f = *state;
	struct store *st = store_new(NULL);
	char *err = NULL;
	char *missing = xasprintf("%s/nope", f->root);

	assert_null(manifests_open(NULL, st, NULL, missing, NULL, NULL, &err));
	assert_non_null(strstr(err, "nope"));
	free(err);
	free(missing);
	/* Without an allocator Services keep what they ask for. */
	put_file(f, "api.json", "manifests/api.json");
	put_file(f, "web.yaml", "manifests/web.yaml");
	f->m = manifests_open(NULL, st, NULL, f->dir, NULL, NULL, &err);
	assert_non_null(f->m);
	assert_ip(store_get_service(st, "prod", "api"), 0, "10.0.0.50");
	assert_int_equal(store_get_service(st, "default", "web")->n_cluster_ips, 0);
	manifests_close(f->m);
	f->m = NULL;
	store_free(st);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/kp-test-manifests.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	f->dir = xasprintf("%s/manifests", f->root);
	f->state = xasprintf("%s/state/clusterip-allocations", f->root);
	f->log = xasprintf("%s/log", f->root);
	if (mkdir(f->dir, 0755) < 0)
		return -1;
	log_open(f->log, 2);
	log_set_stderr(0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	log_close();
	if (remove_tree(f->root) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->root);
	free(f->dir);
	free(f->state);
	free(f->log);
	free(f);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_broken_and_object_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_conflicts_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inotify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
