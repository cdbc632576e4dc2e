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
#include <jansson.h>

#include "kubeapi/kubeconfig.h"
#include "src/log.h"
#include "src/util.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/test_kubeconfig.XXXXXX");
	assert_non_null(mkdtemp(dir));
	log_set_stderr(0);
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(remove_tree(dir), 0);
	return 0;
}

static void put(const char *name, const char *text, unsigned mode)
{
	char *p = xasprintf("%s/%s", dir, name);

	assert_int_equal(write_file_atomic(p, text, strlen(text), mode), 0);
	free(p);
}

/* "-----BEGIN CERTIFICATE-----\nabc\n" and friends, base64. */
#define CA_PEM "ca pem bytes\n"
#define CA_B64 "Y2EgcGVtIGJ5dGVzCg=="

static const char *const base_yaml =
	"apiVersion: v1\n"
	"kind: Config\n"
	"clusters:\n"
	"- name: prod\n"
	"  cluster:\n"
	"    server: https://10.1.2.3:6443/\n"
	"    certificate-authority-data: " CA_B64 "\n"
	"- name: dev\n"
	"  cluster:\n"
	"    server: http://127.0.0.1:8080\n"
	"    insecure-skip-tls-verify: true\n"
	"users:\n"
	"- name: admin\n"
	"  user:\n"
	"    token: s3cr3t\n"
	"- name: certs\n"
	"  user:\n"
	"    client-certificate: pki/client.crt\n"
	"    client-key: /nonexistent/abs.key\n"
	"contexts:\n"
	"- name: prod-admin\n"
	"  context: {cluster: prod, user: admin}\n"
	"- name: dev-certs\n"
	"  context: {cluster: dev, user: certs}\n"
	"- name: dev-anon\n"
	"  context: {cluster: dev}\n"
	"- name: nowhere\n"
	"  context: {cluster: missing, user: admin}\n"
	"- name: nobody\n"
	"  context: {cluster: dev, user: ghost}\n"
	"current-context: prod-admin\n";

static int parse(const char *text, const char *ctx, struct kube_conn **c, char **err)
{
	return kubeconfig_parse(text, strlen(text), dir, "test.kubeconfig", ctx, c, err);
}

static void test_current_context_token(void **state)
{
	struct kube_conn *c;
	char *err = NULL;

	assert_int_equal(parse(base_yaml, NULL, &c, &err), 0);
	assert_null(err);
	assert_string_equal(c->server, "https://10.1.2.3:6443");   /* trailing '/' trimmed */
	assert_string_equal(c->token, "s3cr3t");
	assert_int_equal(c->ca.len, strlen(CA_PEM));
	assert_memory_equal(c->ca.data, CA_PEM, c->ca.len);
	assert_false(c->insecure);
	assert_null(c->cert.data);
	assert_null(c->exec);
	assert_string_equal(c->origin, "test.kubeconfig");
	kube_conn_free(c);
}

static void test_context_without_user(void **state)
{
	struct kube_conn *c;
	char *err = NULL;

	assert_int_equal(parse(base_yaml, "dev-anon", &c, &err), 0);
	assert_string_equal(c->server, "http://127.0.0.1:8080");
	assert_true(c->insecure);
	assert_null(c->token);
	assert_null(c->ca.data);
	kube_conn_free(c);
}

static void expect_error(const char *yaml, const char *ctx, const char *needle)
{
	struct kube_conn *c = (void *)1;
	char *err = NULL;

	assert_true(parse(yaml, ctx, &c, &err) < 0);
	assert_null(c);
	assert_non_null(err);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	free(err);
}

static void test_resolution_errors(void **state)
{
	expect_error(base_yaml, "staging", "context \"staging\" not found");
	expect_error(base_yaml, "nowhere", "cluster \"missing\" not found");
	expect_error(base_yaml, "nobody", "user \"ghost\" not found");
	expect_error("clusters: []\n", NULL, "no current-context");
	expect_error("- just\n- a list\n", NULL, "not a kubeconfig");
	expect_error("a: [unclosed\n", NULL, "test.kubeconfig: ");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
		     "clusters: [{name: x, cluster: {}}]\n", NULL, "clusters[x].cluster.server: missing");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
		     "clusters: [{name: x, cluster: {server: ftp://a}}]\n", NULL, "not an http(s) URL");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a', insecure-skip-tls-verify: maybe}}]\n",
		     NULL, "insecure-skip-tls-verify: must be true or false");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
		     "clusters: [{name: x, cluster: {server: [1]}}]\n", NULL,
		     "clusters[x].cluster.server: must be a string");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a', proxy-url: 'ftp://p:21'}}]\n", NULL,
		     "clusters[x].cluster.proxy-url: \"ftp://p:21\" is not an http, https or socks5 URL");
}

/* proxy-url is kept for the transfers; absent means the environment's. */
static void test_proxy_url(void **state)
{
	static const char *const ok[] = { "http://proxy.corp:3128", "https://proxy.corp",
					  "socks5://127.0.0.1:1080" };
	struct kube_conn *c;
	char *err = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *yaml = xasprintf("current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n"
				       "clusters: [{name: x, cluster: {server: 'https://a', proxy-url: '%s'}}]\n",
				       ok[i]);

		assert_int_equal(parse(yaml, NULL, &c, &err), 0);
		assert_string_equal(c->proxy_url, ok[i]);
		kube_conn_free(c);
		free(yaml);
	}
	assert_int_equal(parse(base_yaml, NULL, &c, &err), 0);
	assert_null(c->proxy_url);
	kube_conn_free(c);
}

static void test_bad_base64_names_field(void **state)
{
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a', certificate-authority-data: 'Zm9v!'}}]\n"
		     "users: [{name: u, user: {}}]\n",
		     NULL, "clusters[x].cluster.certificate-authority-data: bad base64");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {client-certificate-data: Zm9v, client-key-data: 'Z'}}]\n",
		     NULL, "users[u].user.client-key-data: bad base64");
}

static void test_files_relative_to_kubeconfig(void **state)
{
	struct kube_conn *c;
	char *err = NULL, *kc;
	char pki[128];

	snprintf(pki, sizeof(pki), "%s/pki", dir);
	mkdir(pki, 0755);
	put("pki/client.crt", "CERT\n", 0644);
	put("pki/client.key", "KEY\n", 0600);
	put("pki/ca.crt", "CA\n", 0644);
	/* Missing absolute key file: the error names field and path. */
	expect_error(base_yaml, "dev-certs", "users[certs].user.client-key: cannot read /nonexistent/abs.key");
	put("kc", "current-context: c\n"
		  "contexts: [{name: c, context: {cluster: x, user: u}}]\n"
		  "clusters: [{name: x, cluster: {server: 'https://a:1', certificate-authority: pki/ca.crt}}]\n"
		  "users: [{name: u, user: {client-certificate: pki/client.crt, client-key: pki/client.key}}]\n",
	    0600);
	kc = xasprintf("%s/kc", dir);
	assert_int_equal(kubeconfig_load(kc, NULL, &c, &err), 0);
	assert_string_equal(c->cert.data, "CERT\n");
	assert_string_equal(c->key.data, "KEY\n");
	assert_string_equal(c->ca.data, "CA\n");
	assert_string_equal(c->origin, kc);
	/* Rotated certificate files are picked up when due or forced. */
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);   /* first: due */
	put("pki/client.crt", "CERT2\n", 0644);
	put("pki/client.key", "KEY2\n", 0600);
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_string_equal(c->cert.data, "CERT\n");              /* not due yet */
	assert_int_equal(kube_conn_refresh(c, true, &err), 0);
	assert_string_equal(c->cert.data, "CERT2\n");
	assert_string_equal(c->key.data, "KEY2\n");
	assert_int_equal(c->key.len, 5);
	/* A file that vanished mid-rotation: the loaded one stays. */
	put("pki/client.crt", "CERT\n", 0644);
	{
		char *p = xasprintf("%s/pki/client.key", dir);

		unlink(p);
		free(p);
	}
	assert_int_equal(kube_conn_refresh(c, true, &err), 0);
	assert_string_equal(c->cert.data, "CERT\n");
	assert_string_equal(c->key.data, "KEY2\n");
	put("pki/client.key", "KEY\n", 0600);
	kube_conn_free(c);
	free(kc);
	/* Unreadable kubeconfig. */
	assert_int_equal(kubeconfig_load("/nonexistent/kc", NULL, &c, &err), -ENOENT);
	assert_non_null(strstr(err, "cannot read kubeconfig /nonexistent/kc"));
	free(err);
	/* Certificate without key. */
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {client-certificate-data: Zm9v}}]\n",
		     NULL, "must be given together");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n",
		     NULL, "auth-provider: not supported");
}

static void test_token_file_reload(void **state)
{
	struct kube_conn *c;
	char *err = NULL;

	put("tok", "first\n", 0600);
	assert_int_equal(parse("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
			       "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
			       "users: [{name: u, user: {token: static, tokenFile: tok}}]\n",
			       NULL, &c, &err), 0);
	assert_string_equal(c->token, "static");
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_string_equal(c->token, "first");      /* tokenFile wins, newline stripped */
	put("tok", "second\n", 0600);
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_string_equal(c->token, "first");      /* not yet due */
	assert_int_equal(kube_conn_refresh(c, true, &err), 0);
	assert_string_equal(c->token, "second");     /* forced (after a 401) */
	put("tok", "third", 0600);
	c->token_reload_ms = 0;                      /* due at once */
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_string_equal(c->token, "third");
	put("tok", "\n", 0600);
	assert_int_equal(kube_conn_refresh(c, true, &err), -EINVAL);
	assert_non_null(strstr(err, "is empty"));
	free(err);
	assert_string_equal(c->token, "third");      /* the old one stays */
	kube_conn_free(c);
}

static void test_in_cluster(void **state)
{
	struct kube_conn *c;
	char *err = NULL;

	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_true(kube_conn_incluster(dir, &c, &err) < 0);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	free(err);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_true(kube_conn_incluster(dir, &c, &err) < 0);    /* no ca.crt yet */
	assert_non_null(strstr(err, "ca.crt"));
	free(err);
	put("ca.crt", "CA\n", 0644);
	put("token", "sa-token\n", 0600);
	assert_int_equal(kube_conn_incluster(dir, &c, &err), 0);
	assert_string_equal(c->server, "https://[fd00::1]:443");
	assert_string_equal(c->token, "sa-token");
	assert_string_equal(c->ca.data, "CA\n");
	kube_conn_set_server(c, "https://override:6443//");   /* --master */
	assert_string_equal(c->server, "https://override:6443");
	assert_string_equal(c->token, "sa-token");
	kube_conn_free(c);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	assert_int_equal(kube_conn_incluster(dir, &c, &err), 0);
	assert_string_equal(c->server, "https://10.96.0.1:443");
	kube_conn_free(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_exec_plugin(void **state)
{
	struct kube_conn *c;
	char *err = NULL, *count = NULL;
	size_t len;
	char *yaml = xasprintf(
		"current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		"clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		"users:\n- name: u\n  user:\n    exec:\n"
		"      apiVersion: client.authentication.k8s.io/v1beta1\n"
		"      command: ./plug\n      args: [one]\n"
		"      env: [{name: PLUG_EXPIRY, value: '%s'}]\n", "2000-01-01T00:00:00Z");

	/* The kubeconfig's env entry must replace an inherited variable. */
	setenv("PLUG_EXPIRY", "not-a-date", 1);
	/* Appends a line per run; prints a token with the configured expiry. */
	put("plug", "#!/bin/sh\necho run >> \"$(dirname \"$0\")/runs\"\n"
		    "[ \"$1\" = one ] || exit 3\n"
		    /* exactly one PLUG_EXPIRY in what execve passed (no duplicates) */
		    "[ \"$(tr '\\0' '\\n' < /proc/$$/environ | grep -c '^PLUG_EXPIRY=')\" = 1 ] || exit 4\n"
		    "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\","
		    "\"status\":{\"token\":\"t-%s\",\"expirationTimestamp\":\"%s\"}}' "
		    "\"$(wc -l < \"$(dirname \"$0\")/runs\")\" \"$PLUG_EXPIRY\"\n", 0755);
	assert_int_equal(parse(yaml, NULL, &c, &err), 0);
	assert_non_null(c->exec);
	assert_null(c->token);
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_non_null(c->token);
	assert_string_equal(c->token, "t-1");
	/* Expired (year 2000): every refresh runs it again. */
	if (kube_conn_refresh(c, false, &err) < 0)
		fail_msg("%s", err);
	assert_string_equal(c->token, "t-2");
	kube_conn_free(c);
	free(yaml);

	/* Not expired (2099, with an offset): cached until forced. */
	yaml = xasprintf("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
			 "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
			 "users:\n- name: u\n  user:\n    exec:\n"
			 "      apiVersion: client.authentication.k8s.io/v1beta1\n"
			 "      command: ./plug\n      args: [one]\n"
			 "      env: [{name: PLUG_EXPIRY, value: '2099-01-01T00:00:00.5+02:00'}]\n");
	assert_int_equal(parse(yaml, NULL, &c, &err), 0);
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_string_equal(c->token, "t-3");
	assert_int_equal(kube_conn_refresh(c, false, &err), 0);
	assert_string_equal(c->token, "t-3");
	assert_int_equal(kube_conn_refresh(c, true, &err), 0);
	assert_string_equal(c->token, "t-4");
	kube_conn_free(c);
	free(yaml);
	unsetenv("PLUG_EXPIRY");
	{
		char *p = xasprintf("%s/runs", dir);

		assert_int_equal(read_file(p, &count, &len), 0);
		assert_string_equal(count, "run\nrun\nrun\nrun\n");
		free(count);
		free(p);
	}

	/* A plugin that fails, one that is missing, one with bad output. */
	put("bad", "#!/bin/sh\nexit 7\n", 0755);
	put("junk", "#!/bin/sh\necho not json\n", 0755);
	{
		static const struct { const char *cmd, *needle; } cases[] = {
			{ "./bad", "failed (exit status 7)" },
			{ "./missing", "cannot run it" },
			{ "./junk", "not a JSON ExecCredential" },
		};

		for (size_t i = 0; i < 3; i++) {
			yaml = xasprintf("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
					 "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
					 "users:\n- name: u\n  user:\n    exec:\n"
					 "      apiVersion: client.authentication.k8s.io/v1\n"
					 "      command: %s\n      installHint: install it\n", cases[i].cmd);
			assert_int_equal(parse(yaml, NULL, &c, &err), 0);
			assert_true(kube_conn_refresh(c, false, &err) < 0);
			if (!strstr(err, cases[i].needle))
				fail_msg("error \"%s\" lacks \"%s\"", err, cases[i].needle);
			free(err);
			kube_conn_free(c);
			free(yaml);
		}
	}
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {exec: {command: x, apiVersion: client.authentication.k8s.io/v1alpha1}}}]\n",
		     NULL, "users[u].user.exec.apiVersion");
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1}}}]\n",
		     NULL, "users[u].user.exec.command: missing");
}

/* provideClusterInfo: the plugin gets spec.cluster (server, CA as base64,
 * insecure flag); without it only spec.interactive. */
static void test_exec_cluster_info(void **state)
{
	static const char *cas[] = { "Y2EgcGVtIGJ5dGVzCg==", "Y2EgcGVtIGJ5dGVzIQo=", "YWJj" };
	struct kube_conn *c;
	char *err = NULL, *yaml, *path = xasprintf("%s/info", dir), *text;
	size_t len;

	put("infoplug", "#!/bin/sh\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/info\"\n"
			"printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
			"\"status\":{\"token\":\"t\"}}'\n", 0755);
	for (size_t i = 0; i < ARRAY_SIZE(cas) + 1; i++) {
		json_t *j, *cl;

		yaml = xasprintf("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
				 "clusters: [{name: x, cluster: {server: 'https://a:6443', "
				 "certificate-authority-data: '%s'}}]\n"
				 "users:\n- name: u\n  user:\n    exec:\n"
				 "      apiVersion: client.authentication.k8s.io/v1\n"
				 "      command: ./infoplug\n      interactiveMode: Never\n"
				 "      provideClusterInfo: %s\n",
				 cas[i % ARRAY_SIZE(cas)], i < ARRAY_SIZE(cas) ? "true" : "false");
		assert_int_equal(parse(yaml, NULL, &c, &err), 0);
		assert_int_equal(kube_conn_refresh(c, false, &err), 0);
		assert_string_equal(c->token, "t");
		assert_int_equal(read_file(path, &text, &len), 0);
		j = json_loads(text, 0, NULL);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "kind")), "ExecCredential");
		assert_true(json_is_false(json_object_get(json_object_get(j, "spec"), "interactive")));
		cl = json_object_get(json_object_get(j, "spec"), "cluster");
		if (i < ARRAY_SIZE(cas)) {
			assert_string_equal(json_string_value(json_object_get(cl, "server")), "https://a:6443");
			assert_string_equal(json_string_value(json_object_get(cl, "certificate-authority-data")),
					    cas[i]);
			assert_true(json_is_false(json_object_get(cl, "insecure-skip-tls-verify")));
		} else {
			assert_null(cl);
		}
		json_decref(j);
		free(text);
		kube_conn_free(c);
		free(yaml);
	}
	free(path);
	expect_error("current-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
		     "clusters: [{name: x, cluster: {server: 'https://a'}}]\n"
		     "users: [{name: u, user: {exec: {command: x, apiVersion: client.authentication.k8s.io/v1, "
		     "interactiveMode: Always}}}]\n",
		     NULL, "users[u].user.exec.interactiveMode: Always is impossible");
}

static void test_base64(void **state)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" }, { "Zm9v\nYmFy\n", "foobar" }, { "Zm8", "fo" }, { "Zg", "f" },
	};
	static const char *bad[] = { "Z", "Zm9v!", "Zg=x", "Zg===", "=Zg=", "Zm9=v", "Zm9v=" };
	char *out;
	size_t len;

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		assert_int_equal(kube_base64_decode(ok[i].in, &out, &len), 0);
		assert_int_equal(len, strlen(ok[i].out));
		assert_memory_equal(out, ok[i].out, len);
		free(out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (kube_base64_decode(bad[i], &out, &len) == 0)
			fail_msg("\"%s\" decoded", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_current_context_token),
		cmocka_unit_test(test_context_without_user),
		cmocka_unit_test(test_resolution_errors),
		cmocka_unit_test(test_proxy_url),
		cmocka_unit_test(test_bad_base64_names_field),
		cmocka_unit_test(test_files_relative_to_kubeconfig),
		cmocka_unit_test(test_token_file_reload),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_exec_plugin),
		cmocka_unit_test(test_exec_cluster_info),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
