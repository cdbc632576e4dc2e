#!/usr/bin/env python3
"""Event-to-packet-path latency, run inside the node namespace by
bench/kubeapi-latency.sh.

  preload N: POST N services (plus one EndpointSlice of E endpoints each) to
             the fakeapi control port in one bulk request.
  measure K: K times: create a service with a fresh ClusterIP in 10.0.0.0/24
             whose slice points at BACKEND:8080, note the time, and connect
             to ClusterIP:80 every few milliseconds until the backend answers
             (the DNAT rule is in the kernel). Prints p50, p99 and max in ms.
"""
import argparse
import json
import random
import socket
import time
import urllib.request


def post(ctl, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d/%s" % (ctl, path),
                                 data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def svc(name, ip, port):
    return {"resource": "services", "object": {
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "http", "protocol": "TCP", "port": port}]}}}


def eps(name, service, ips):
    return {"resource": "endpointslices", "object": {
        "metadata": {"name": name, "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}}


def preload(ctl, n, e):
    items = []
    for i in range(n):
        ip = "10.96.%d.%d" % (i // 250, 1 + i % 250)
        items.append(svc("s%d" % i, ip, 80))
        items.append(eps("s%d-x" % i, "s%d" % i,
                         ["10.128.%d.%d" % ((i * e + j) // 250 % 250, 1 + (i * e + j) % 250)
                          for j in range(e)]))
    for k in range(0, len(items), 4000):
        post(ctl, "apply", {"items": items[k:k + 4000]})


def reachable(ip, timeout):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((ip, 80))
        return True
    except OSError:
        return False
    finally:
        s.close()


def measure(ctl, k, backend, spacing):
    lat = []
    for i in range(k):
        ip = "10.0.0.%d" % (2 + i % 250)
        t0 = time.monotonic()
        post(ctl, "apply", {"items": [svc("lat%d" % i, ip, 80), eps("lat%d-x" % i, "lat%d" % i, [backend])]})
        while not reachable(ip, 0.005):
            if time.monotonic() - t0 > 60:
                raise SystemExit("lat%d: not reachable after 60 s" % i)
            time.sleep(0.002)
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(random.uniform(0, spacing))
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100.0 * (len(lat) - 1))))]
    print("samples %d p50_ms %.0f p99_ms %.0f max_ms %.0f" % (len(lat), pct(50), pct(99), lat[-1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctl", type=int, required=True)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("preload")
    p.add_argument("n", type=int)
    p.add_argument("e", type=int)
    m = sub.add_parser("measure")
    m.add_argument("k", type=int)
    m.add_argument("backend")
    m.add_argument("--spacing", type=float, default=1.5)
    a = ap.parse_args()
    if a.cmd == "preload":
        preload(a.ctl, a.n, a.e)
    else:
        measure(a.ctl, a.k, a.backend, a.spacing)


if __name__ == "__main__":
    main()
