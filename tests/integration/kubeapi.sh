#!/bin/bash
# The API-server source against tests/fakeapi: first the real kubectl proves
# the fake speaks the protocol (list, watch, TLS, token and client-cert
# auth), then kubeapi_driver (loop + store + kube_source) follows creates,
# updates and deletes and recovers from every injected fault: 410 as HTTP
# status and in-stream, dropped connections mid-line, one-byte writes,
# 429 Retry-After, 500, expired continue tokens, oversized events, 401 with
# token rotation, 403, bad CA, connection refused; plus in-cluster config
# and an exec credential plugin. Everything runs on loopback inside a
# network namespace created here.
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" != inner ]; then
	[ "$(id -u)" = 0 ] || kp_skip "needs root (runs in its own network namespace)"
	command -v python3 >/dev/null || kp_skip "needs python3 (tests/fakeapi)"
	command -v openssl >/dev/null || kp_skip "needs openssl (test CA)"
	command -v curl >/dev/null || kp_skip "needs curl"
	kp_ns "${KP_ID}-api" || kp_skip "cannot create a network namespace"
	ip netns exec "${KP_ID}-api" bash "$0" inner
	exit $?
fi

DRIVER="$KP_BUILDDIR/tests/integration/kubeapi_driver"
[ -x "$DRIVER" ] || { echo "not ok - no driver at $DRIVER"; exit 1; }
KUBECTL=$(command -v kubectl || true)
T=$KP_TMP

. "$KP_SRCDIR/tests/fakeapi/helpers.sh"
mkdir -p "$T/pki"
kp_check "test CA and certificates generated" fake_pki "$T/pki"
fake_start "$T/pki" --client-ca "$T/pki/ca.crt" --token tok-1 --bookmark-seconds 1
KP_PIDS="$KP_PIDS $FAKE_PID"
API=$FAKE_API CTL=$FAKE_CTL
SERVER="https://127.0.0.1:$API"
kp_log "fakeapi at $SERVER, control on 127.0.0.1:$CTL"

requests() { curl -s "http://127.0.0.1:$CTL/requests"; }
# count_req JQ-ish filter in python: number of requests matching
count_req() {
	requests | python3 -c "import json,sys; r=json.load(sys.stdin); print(sum(1 for e in r if $1))"
}

fake_svc web 10.0.0.10 80
fake_slice web-a web 10.244.0.11
fake_svc skipme 10.0.0.99 99 "" '{"service.kubernetes.io/service-proxy-name":"other"}'
fake_slice skipme-a skipme 10.244.0.99
fake_post apply '{"resource":"nodes","object":{"metadata":{"name":"node-1","labels":{"topology.kubernetes.io/zone":"zone-a"}},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"]}}}'

# ---- kubectl proves the fake is faithful ---------------------------------
if [ -n "$KUBECTL" ]; then
	K=(timeout 20 "$KUBECTL" --server "$SERVER" --certificate-authority "$T/pki/ca.crt")
	out=$("${K[@]}" --token tok-1 get svc -A 2>&1)
	kp_check "kubectl get svc -A (token) lists both services" \
		bash -c '[[ "$1" == *web* && "$1" == *skipme* ]]' _ "$out"
	out=$("${K[@]}" --token tok-1 get svc -A -l '!service.kubernetes.io/service-proxy-name' 2>&1)
	kp_check "kubectl label selector filters like the API server" \
		bash -c '[[ "$1" == *web* && "$1" != *skipme* ]]' _ "$out"
	out=$("${K[@]}" --client-certificate "$T/pki/client.crt" --client-key "$T/pki/client.key" \
		get endpointslices -A 2>&1)
	kp_check "kubectl get endpointslices -A (client certificate)" \
		bash -c '[[ "$1" == *web-a* ]]' _ "$out"
	out=$("${K[@]}" --token wrong get svc -A 2>&1)
	kp_check "kubectl with a wrong token is refused (401)" bash -c '[[ "$1" == *Unauthorized* ]]' _ "$out"
	out=$("${K[@]}" --token tok-1 get svc -n default --chunk-size=1 2>&1)
	kp_check "kubectl paged list (limit=1 + continue) sees both services" \
		bash -c '[[ "$1" == *web* && "$1" == *skipme* ]]' _ "$out"
	timeout 6 "$KUBECTL" --server "$SERVER" --certificate-authority "$T/pki/ca.crt" --token tok-1 \
		get endpointslices -A -w >"$T/kubectl-watch.out" 2>&1 &
	kwpid=$!
	kp_wait_for 5 grep -q web-a "$T/kubectl-watch.out"
	fake_slice kubectl-seen web 10.244.0.50
	kp_wait_for 5 grep -q kubectl-seen "$T/kubectl-watch.out"
	kp_check "kubectl get endpointslices -A -w sees a new slice" grep -q kubectl-seen "$T/kubectl-watch.out"
	kill "$kwpid" 2>/dev/null; wait "$kwpid" 2>/dev/null
	kp_check "kubectl watched with watch=true from the list's resourceVersion" \
		[ "$(count_req "e['query'].get('watch')=='true' and e['query'].get('resourceVersion','') not in ('','0')")" -ge 1 ]
	fake_del endpointslices kubectl-seen
elif [ "${CI:-}" = true ]; then
	kp_fail "kubectl not installed (required in CI)"
else
	kp_log "kubectl not found: skipping the fidelity checks"
fi

# ---- the driver -----------------------------------------------------------
kubeconfig() { # kubeconfig FILE USER-YAML [CA-FILE [EXTRA-CLUSTER-YAML]]
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: $SERVER
    certificate-authority: ${3:-pki/ca.crt}
${4:-}
users:
- name: u
  user:
$2
contexts:
- name: c
  context: {cluster: fake, user: u}
current-context: c
EOF
}
# start_driver NAME ARGS...
start_driver() {
	local n=$1; shift
	"$DRIVER" --state "$T/$n.state" --backoff-min 200 --backoff-max 2000 -v 3 "$@" \
		>"$T/$n.log" 2>&1 &
	eval "DRV_$n=$!"
	KP_PIDS="$KP_PIDS $!"
}
stop_driver() { # asserts a clean exit (ASan leak check included)
	local n=$1 pid rc
	pid=$(eval echo "\$DRV_$n")
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null; rc=$?
	kp_check "driver $n exits cleanly on SIGTERM (rc $rc)" [ "$rc" = 0 ]
	[ "$rc" = 0 ] || tail -n 30 "$T/$n.log" | sed 's/^/# /'
}
state_has() { grep -qE -- "$2" "$T/$1.state" 2>/dev/null; }
state_lacks() { ! grep -qE -- "$2" "$T/$1.state" 2>/dev/null; }
wait_state() { kp_wait_for "${3:-10}" state_has "$1" "$2"; }
wait_gone() { kp_wait_for "${3:-10}" state_lacks "$1" "$2"; }
log_has() { grep -qE -- "$2" "$T/$1.log"; }
# eventually DESC CMD...: the assertion holds within 10 s.
eventually() { local d=$1; shift; kp_check "$d" kp_wait_for 10 "$@"; }
req_ge() { [ "$(count_req "$2")" -ge "$1" ]; }
# check_state DESC NAME REGEX [TIMEOUT]
check_state() { kp_check "$1" wait_state "$2" "$3" "${4:-10}"; }
check_gone() { kp_check "$1" wait_gone "$2" "$3" "${4:-10}"; }

echo tok-1 >"$T/token"
kubeconfig "$T/kc-token" "    tokenFile: token"
start_driver d --kubeconfig "$T/kc-token" --node node-1 --page-size 1
check_state "driver: ready after listing (paged, limit=1)" d '^ready'
check_state "driver: service with its endpoint" d '^svc default/web:http 10.0.0.10 80/tcp -> 10.244.0.11:8080$'
check_state "driver: node zone and pod CIDR" d '^node node-1 zone=zone-a cidrs=10.244.0.0/24$'
kp_check "upstream's log phrases: caches synced" bash -c \
	"grep -q 'Caches are synced for service config' '$T/d.log' && grep -q 'Caches are synced for endpoint slice config' '$T/d.log' && grep -q 'Caches are synced for node config' '$T/d.log'"
kp_check "driver: service-proxy-name selector excludes 'skipme'" state_lacks d skipme
kp_check "list requests carry the label selector" \
	[ "$(count_req "e['path']=='/api/v1/services' and e['query'].get('labelSelector')=='!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless'")" -ge 2 ]
kp_check "first lists may be served from the watch cache (resourceVersion=0)" \
	[ "$(count_req "'allowWatchBookmarks' not in e['query'] and e['query'].get('labelSelector','').startswith('!service') and e['query'].get('resourceVersion')=='0'")" = 2 ]
kp_check "node is listed by fieldSelector" \
	[ "$(count_req "e['path']=='/api/v1/nodes' and e['query'].get('fieldSelector')=='metadata.name=node-1'")" -ge 2 ]
kp_wait_for 5 test "$(count_req "e['query'].get('watch')=='true'")" -ge 3
kp_check "watches: bookmarks, timeoutSeconds 300..600, list's resourceVersion" \
	[ "$(count_req "e['query'].get('watch')=='true' and e['query'].get('allowWatchBookmarks')=='true' and 300<=int(e['query'].get('timeoutSeconds',0))<=600 and e['query'].get('resourceVersion','') not in ('','0')")" -ge 3 ]
kp_check "driver requests carry the bearer token" \
	[ "$(count_req "'allowWatchBookmarks' in e['query'] and e['auth']!='Bearer'")" = 0 ]

# Watch events.
fake_svc api 10.0.0.20 81
fake_slice api-a api 10.244.0.21 10.244.0.22
check_state "watch: ADDED service and slice" d '^svc default/api:http 10.0.0.20 81/tcp -> 10.244.0.21:8080 10.244.0.22:8080$'
fake_slice api-a api 10.244.0.22
check_state "watch: MODIFIED slice" d '^svc default/api:http 10.0.0.20 81/tcp -> 10.244.0.22:8080$'
fake_del services api
check_gone "watch: DELETED service" d 'default/api:'

# Clean end of stream: re-watch from the last version, no relist.
lists0=$(count_req "e['query'].get('watch')!='true' and e['path'].startswith(('/api/v1/services','/apis/'))")
sleep 1.5  # let a bookmark advance the slices watch's version
rv=$(curl -s "http://127.0.0.1:$CTL/rv" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rv"])')
fake_fault '{"type":"end_watches"}'
kp_wait_for 5 test "$(count_req "e['query'].get('watch')=='true' and e['path'].startswith('/apis/') and int(e['query'].get('resourceVersion') or 0)>=$rv")" -ge 1
kp_check "clean end: slices re-watch from the bookmark's version (>= $rv)" \
	[ "$(count_req "e['query'].get('watch')=='true' and e['path'].startswith('/apis/') and int(e['query'].get('resourceVersion') or 0)>=$rv")" -ge 1 ]
kp_check "clean end: no relist" [ "$(count_req "e['query'].get('watch')!='true' and e['path'].startswith(('/api/v1/services','/apis/'))")" = "$lists0" ]

# One-byte writes.
fake_fault '{"type":"slow","on":true}'
fake_svc slow 10.0.0.30 83
fake_slice slow-a slow 10.244.0.31
check_state "one-byte chunks: events reassembled" d '^svc default/slow:http 10.0.0.30 83/tcp -> 10.244.0.31:8080$'
fake_fault '{"type":"slow","on":false}'

# Connection dropped mid-line: the half event is dropped, the watch resumes
# from the last complete event and gets the event again.
fake_fault '{"type":"drop_mid_line","count":1}'
fake_slice slow-a slow 10.244.0.32
check_state "drop mid-line: event delivered after the re-watch" d '^svc default/slow:http 10.0.0.30 83/tcp -> 10.244.0.32:8080$'
eventually "drop mid-line: logged as a failed watch" log_has d 'Failed to watch'

# 410 as HTTP status on the next watches.
lists0=$(count_req "e['query'].get('watch')!='true'")
fake_fault '{"type":"watch_http_410","count":3}'
fake_fault '{"type":"end_watches"}'
fake_svc gone410 10.0.0.40 84
check_state "HTTP 410: relisted and caught up" d '^svc default/gone410:http 10.0.0.40 84/tcp'
eventually "HTTP 410: logged" log_has d 'expired \(HTTP 410\); relisting'
eventually "HTTP 410: new lists were made" req_ge $((lists0 + 1)) "e['query'].get('watch')!='true'"
eventually "paged relist followed continue tokens" \
	req_ge 1 "e['path']=='/api/v1/services' and 'continue' in e['query']"

# 410 as an in-stream ERROR, plus synthesized deletes: while the source is
# cut off, an object is deleted and history compacted.
fake_fault '{"type":"refuse","on":true}'
fake_fault '{"type":"end_watches"}'
sleep 0.5
fake_del services gone410
fake_del endpointslices slow-a
fake_svc born 10.0.0.50 85
fake_post compact '{}'
fake_fault '{"type":"refuse","on":false}'
check_state "stream 410 after compaction: new service listed" d '^svc default/born:http 10.0.0.50 85/tcp'
check_gone "relist diff: vanished service deleted" d 'default/gone410:'
check_state "relist diff: vanished slice deleted" d '^svc default/slow:http 10.0.0.30 83/tcp ->$'
eventually "stream 410: logged" log_has d '410 Gone\); relisting'
fake_fault '{"type":"watch_stream_410","count":1}'
fake_fault '{"type":"expire_active"}'
fake_svc after-expire 10.0.0.51 86
check_state "in-stream ERROR 410 on open watches: recovered" d '^svc default/after-expire:http'

# 429 with Retry-After on the next watch; 500 on the next list.
fake_fault '{"type":"status","verb":"watch","code":429,"retry_after":2,"count":1}'
t0=$(date +%s.%N)
fake_fault '{"type":"end_watches"}'
fake_svc after429 10.0.0.60 87
check_state "429: recovered" d '^svc default/after429:http'
eventually "429: Retry-After logged" log_has d 'HTTP 429.*Retry-After'
# gap429: seconds between the 429 and the next request on the same path.
gap429() {
	requests | python3 -c "
import json,sys
r=json.load(sys.stdin)
i=[k for k,e in enumerate(r) if e.get('code')==429][-1]
nxt=[e for e in r[i+1:] if e['path']==r[i]['path']]
print('%.1f' % (nxt[0]['t']-r[i]['t']) if nxt else '')"
}
has_gap429() { [ -n "$(gap429)" ]; }
kp_wait_for 10 has_gap429
w429=$(gap429)
kp_check "429: next attempt waited Retry-After (2s; waited ${w429}s)" \
	python3 -c "import sys; sys.exit(0 if '$w429' and float('$w429')>=1.9 else 1)"
fake_fault '{"type":"status","verb":"list","code":500,"count":1}'
fake_fault '{"type":"watch_http_410","count":1}'
fake_fault '{"type":"end_watches"}'
fake_svc after500 10.0.0.61 88
check_state "500 on a list: retried and recovered" d '^svc default/after500:http'
eventually "500: logged with the status" log_has d 'Failed to list .*HTTP 500'

# Expired continue token: the list starts over without paging.
fake_fault '{"type":"expire_continue","count":1}'
fake_fault '{"type":"watch_http_410","count":3}'
fake_fault '{"type":"end_watches"}'
fake_svc aftercont 10.0.0.62 89
check_state "expired continue: recovered" d '^svc default/aftercont:http'
eventually "expired continue: logged" log_has d 'continue token expired'
eventually "expired continue: unpaged list made" \
	req_ge 1 "e['query'].get('watch')!='true' and 'limit' not in e['query'] and e['path'] in ('/api/v1/services','/apis/discovery.k8s.io/v1/endpointslices')"

# 401: the server rotates the token; the file gets the new one; the source
# re-reads it after the 401.
fake_post token '{"token":"tok-2"}'
fake_fault '{"type":"end_watches"}'
kp_check "401: logged as Unauthorized with the credential's origin" \
	kp_wait_for 10 log_has d 'Unauthorized \(HTTP 401.*kc-token'
echo tok-2 >"$T/token"
fake_svc after401 10.0.0.63 90
check_state "401: token re-read and recovered" d '^svc default/after401:http' 15

# 403 on services names resource and verb; recovery once allowed again.
fake_post forbid '{"resources":["services"]}'
fake_fault '{"type":"end_watches"}'
kp_check "403: logged with resource and verb" \
	kp_wait_for 10 log_has d 'Forbidden \(HTTP 403\).*cannot watch resource "services"'
fake_post forbid '{"resources":[]}'
fake_svc after403 10.0.0.64 91
check_state "403: recovered" d '^svc default/after403:http' 15

# Oversized event (driver limit 64 KiB here): error for that watch, relist.
stop_driver d
start_driver big --kubeconfig "$T/kc-token" --max-line 65536
check_state "second driver ready" big '^ready'
fake_post apply '{"resource":"services","pad":100000,"object":{"metadata":{"name":"huge","namespace":"default"},"spec":{"type":"ClusterIP","clusterIP":"10.0.0.70","clusterIPs":["10.0.0.70"],"ports":[{"name":"http","protocol":"TCP","port":92}]}}}'
kp_check "oversized event: logged" kp_wait_for 10 log_has big 'watch event larger than 65536 bytes'
check_state "oversized event: object arrives through the relist" big '^svc default/huge:http 10.0.0.70'
fake_svc afterbig 10.0.0.71 93
check_state "oversized event: watching again afterwards" big '^svc default/afterbig:http'
stop_driver big

# Client certificate + key as inline data (base64), and a key that does not match.
b64() { base64 -w0 "$1"; }
kubeconfig "$T/kc-cert" "    client-certificate-data: $(b64 "$T/pki/client.crt")
    client-key-data: $(b64 "$T/pki/client.key")"
start_driver cert --kubeconfig "$T/kc-cert"
check_state "client certificate auth (inline data): ready" cert '^ready'
stop_driver cert
kp_check "client certificate auth: requests without a token were served" \
	[ "$(count_req "e['auth']=='' and e.get('code')==200")" -ge 2 ]
kubeconfig "$T/kc-mismatch" "    client-certificate: pki/client.crt
    client-key: pki/other.key"
start_driver mism --kubeconfig "$T/kc-mismatch"
kp_check "mismatched client key: clear log line" \
	kp_wait_for 10 log_has mism 'client certificate or key is unusable, or they do not match'
stop_driver mism

# A CA that did not sign the server's certificate.
kubeconfig "$T/kc-badca" "    token: tok-2" pki/other.crt
start_driver badca --kubeconfig "$T/kc-badca"
kp_check "untrusted server certificate: clear log line" \
	kp_wait_for 10 log_has badca 'not signed by the configured certificate-authority'
stop_driver badca

# tls-server-name: the name verified against the certificate, while the
# connection goes to the server URL's address.
kubeconfig "$T/kc-tsn-bad" "    token: tok-2" pki/ca.crt "    tls-server-name: wrong.test"
start_driver tsnbad --kubeconfig "$T/kc-tsn-bad"
kp_check "tls-server-name not in the certificate: verification fails" \
	kp_wait_for 10 log_has tsnbad 'not signed by the configured certificate-authority, or its name'
stop_driver tsnbad
kubeconfig "$T/kc-tsn" "    token: tok-2" pki/ca.crt "    tls-server-name: fakeapi.test"
start_driver tsn --kubeconfig "$T/kc-tsn"
check_state "tls-server-name in the certificate: ready" tsn '^ready'
stop_driver tsn

# proxy-url: every request goes through the kubeconfig's proxy (HTTP
# CONNECT), even for a host that NO_PROXY in the environment exempts.
python3 "$KP_SRCDIR/tests/fakeapi/connect_proxy.py" 0 "$T/connect-proxy.log" >"$T/connect-proxy.port" &
KP_PIDS="$KP_PIDS $!"
kp_wait_for 5 test -s "$T/connect-proxy.port"
PROXY_PORT=$(cat "$T/connect-proxy.port")
kubeconfig "$T/kc-proxy" "    token: tok-2" pki/ca.crt "    proxy-url: http://127.0.0.1:$PROXY_PORT"
NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 start_driver proxy --kubeconfig "$T/kc-proxy"
check_state "proxy-url: ready" proxy '^ready'
kp_check "proxy-url: the API connections went through the proxy" grep -q "^CONNECT 127.0.0.1:$API " "$T/connect-proxy.log"
stop_driver proxy
kubeconfig "$T/kc-proxy-dead" "    token: tok-2" pki/ca.crt "    proxy-url: http://127.0.0.1:9"
start_driver proxydead --kubeconfig "$T/kc-proxy-dead"
kp_check "proxy-url to a dead proxy: the error is logged" kp_wait_for 10 log_has proxydead "127.0.0.1 port 9"
kp_check "...and there is no direct connection instead" state_lacks proxydead '^ready'
stop_driver proxydead

# HTTP/2, as real API servers speak it: nghttpx terminates TLS with h2 in
# front of the fake (which speaks HTTP/1.1 only). All transfers share one
# connection; faults still surface and are recovered from.
if command -v nghttpx >/dev/null; then
	: >"$T/nghttpx.conf"   # not the system's /etc/nghttpx/nghttpx.conf
	nghttpx --conf="$T/nghttpx.conf" -f '127.0.0.1,38443' -b "127.0.0.1,$API;;tls" --insecure --no-ocsp \
		--workers=1 --accesslog-file="$T/h2-access.log" --errorlog-file="$T/h2-error.log" \
		"$T/pki/server.key" "$T/pki/server.crt" &
	KP_PIDS="$KP_PIDS $!"
	kp_wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/38443"
	SERVER_H2=https://127.0.0.1:38443
	sed "s#$SERVER#$SERVER_H2#" "$T/kc-token" >"$T/kc-h2"
	start_driver h2 --kubeconfig "$T/kc-h2"
	check_state "HTTP/2: ready" h2 '^ready'
	kp_check "HTTP/2: requests went over h2" grep -q 'GET /api/v1/services?.* HTTP/2' "$T/h2-access.log"
	fake_fault '{"type":"drop_mid_line","count":1}'
	fake_svc h2a 10.0.0.80 94
	check_state "HTTP/2: stream reset mid-event, change still arrives" h2 '^svc default/h2a:http'
	fake_fault '{"type":"expire_active"}'
	fake_svc h2b 10.0.0.81 95
	check_state "HTTP/2: in-stream 410, relisted" h2 '^svc default/h2b:http'
	fake_del services h2a
	check_gone "HTTP/2: delete arrives" h2 'default/h2a:'
	stop_driver h2
	[ "$KP_FAILS" = 0 ] || { tail -n 20 "$T/h2.log" "$T/h2-error.log" | sed 's/^/# /'; }
elif [ "${CI:-}" = true ]; then
	kp_fail "nghttpx (package nghttp2-proxy) not installed: HTTP/2 untested"
else
	kp_log "nghttpx not found: skipping the HTTP/2 checks"
fi

# Connection refused (nothing listens on port 1 in this namespace).
start_driver refused --master https://127.0.0.1:1
kp_check "connection refused: clear log line" \
	kp_wait_for 10 log_has refused 'Failed to list .*(Could not|Couldn.t) connect.*reachable'
stop_driver refused

# Configuration errors are refused at open with a message naming the field.
kubeconfig "$T/kc-b64" "    client-certificate-data: '%%%'
    client-key-data: Zm9v"
out=$("$DRIVER" --state "$T/x.state" --kubeconfig "$T/kc-b64" 2>&1); rc=$?
kp_check "bad base64: refused, names the field" \
	bash -c '[ "$1" != 0 ] && [[ "$2" == *"users[u].user.client-certificate-data: bad base64"* ]]' _ "$rc" "$out"
out=$("$DRIVER" --state "$T/x.state" --kubeconfig "$T/nonexistent" 2>&1); rc=$?
kp_check "unreadable kubeconfig: refused, names the file" \
	bash -c '[ "$1" != 0 ] && [[ "$2" == *"cannot read kubeconfig"*nonexistent* ]]' _ "$rc" "$out"

# In-cluster configuration.
mkdir -p "$T/sa"
cp "$T/pki/ca.crt" "$T/sa/ca.crt"
echo tok-2 >"$T/sa/token"
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API start_driver incl --sa-dir "$T/sa"
check_state "in-cluster config: ready" incl '^ready'
stop_driver incl
out=$(env -u KUBERNETES_SERVICE_HOST "$DRIVER" --state "$T/x.state" --sa-dir "$T/sa" 2>&1)
kp_check "in-cluster without the environment: refused with the variable names" \
	bash -c '[[ "$1" == *KUBERNETES_SERVICE_HOST* ]]' _ "$out"

# Exec credential plugin (client.authentication.k8s.io/v1), run without a shell.
mkdir -p "$T/bin"
cat >"$T/bin/cred" <<'EOF'
#!/bin/sh
echo "$KUBERNETES_EXEC_INFO" >"$(dirname "$0")/exec-info"
echo "$1 $EXTRA" >"$(dirname "$0")/exec-args"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-2","expirationTimestamp":"2099-01-01T00:00:00Z"}}\n'
EOF
chmod +x "$T/bin/cred"
kubeconfig "$T/kc-exec" "    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: bin/cred
      args: [hello]
      env: [{name: EXTRA, value: world}]
      interactiveMode: Never
      provideClusterInfo: true"
start_driver exec --kubeconfig "$T/kc-exec"
check_state "exec plugin: ready with its token" exec '^ready'
stop_driver exec
kp_check "exec plugin: got args and env" grep -qx 'hello world' "$T/bin/exec-args"
kp_check "exec plugin: got KUBERNETES_EXEC_INFO" grep -q '"kind":"ExecCredential"' "$T/bin/exec-info"
kp_check "exec plugin: provideClusterInfo passes the server" grep -qF "\"server\":\"$SERVER\"" "$T/bin/exec-info"

kp_check "no token or key material in any driver log" \
	bash -c "! grep -l -e tok-2 -e tok-1 -e 'PRIVATE KEY' $T/*.log"
kp_finish
