# Shell helpers for scripts that drive tests/fakeapi (source this file).
#   fake_pki DIR                 test CA, server certificate (127.0.0.1,
#                                localhost, fakeapi.test), client certificate,
#                                and an unrelated CA+key ("other") for mismatches
#   fake_start DIR [ARGS...]     starts fakeapi.py (DIR holds server.crt/.key and
#                                the ports file); sets FAKE_PID FAKE_API FAKE_CTL.
#                                FAKE_RUN is a command prefix, e.g. "ip netns exec NS"
#   fake_post PATH JSON          control request (apply, delete, fault, ...)
#   fake_svc NAME IP PORT [NODEPORT] [LABELS-JSON]
#   fake_slice NAME SERVICE IP...   one ready endpoint per IP, port "http" 8080/TCP
#   fake_del RESOURCE NAME       in namespace default
#   fake_fault JSON
FAKE_RUN=${FAKE_RUN:-}
FAKE_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fakeapi.py"

fake_pki() {
	local d=$1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 \
		-subj /CN=fake-ca 2>/dev/null || return 1
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
		-subj /CN=fakeapi 2>/dev/null || return 1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:fakeapi.test\nextendedKeyUsage=serverAuth\n' \
		>"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-out "$d/server.crt" -days 2 -extfile "$d/server.ext" 2>/dev/null || return 1
	openssl req -newkey rsa:2048 -nodes -keyout "$d/client.key" -out "$d/client.csr" \
		-subj "/CN=system:kube-proxy" 2>/dev/null || return 1
	printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-out "$d/client.crt" -days 2 -extfile "$d/client.ext" 2>/dev/null || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/other.key" -out "$d/other.crt" -days 2 \
		-subj /CN=other-ca 2>/dev/null
}

fake_start() {
	local d=$1 i
	shift
	rm -f "$d/ports"
	$FAKE_RUN python3 "$FAKE_PY" --cert "$d/server.crt" --key "$d/server.key" \
		--ports-file "$d/ports" "$@" >>"$d/fake.log" 2>&1 &
	FAKE_PID=$!
	for i in $(seq 100); do
		[ -s "$d/ports" ] && break
		sleep 0.1
	done
	read -r FAKE_API FAKE_CTL <"$d/ports"
}

fake_post() { $FAKE_RUN curl -s -f -XPOST "http://127.0.0.1:$FAKE_CTL/$1" -d "$2" >/dev/null; }

fake_svc() {
	local type=ClusterIP np=""
	[ -n "${4:-}" ] && { type=NodePort; np=",\"nodePort\":$4"; }
	fake_post apply "{\"resource\":\"services\",\"object\":{\"metadata\":{\"name\":\"$1\",\"namespace\":\"default\",\"labels\":${5:-{\}}},\"spec\":{\"type\":\"$type\",\"clusterIP\":\"$2\",\"clusterIPs\":[\"$2\"],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":$3$np}]}}}"
}

fake_slice() {
	local name=$1 s=$2 eps="" ip
	shift 2
	for ip in "$@"; do eps="$eps${eps:+,}{\"addresses\":[\"$ip\"],\"conditions\":{\"ready\":true}}"; done
	fake_post apply "{\"resource\":\"endpointslices\",\"object\":{\"metadata\":{\"name\":\"$name\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$s\"}},\"addressType\":\"IPv4\",\"endpoints\":[$eps],\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}]}}"
}

fake_del() { fake_post delete "{\"resource\":\"$1\",\"namespace\":\"default\",\"name\":\"$2\"}"; }
fake_fault() { fake_post fault "$1"; }
