#!/usr/bin/env python3
"""Writes N Services x E endpoints as manifests for benchmarks.

Usage: gen-manifests.py DIR N [E]
Services svc-0..svc-N-1 in namespace bench, ClusterIPs given explicitly from
10.96.0.0/12 (so the allocator is not part of the measurement), one port
each, EndpointSlices with E ready endpoints in 10.128.0.0/9. Service 0's
slice lives in its own file (slice-0.json) so a benchmark can change one
endpoint by rewriting that file."""
import json
import os
import sys


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    e = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    os.makedirs(out, exist_ok=True)
    chunk = 1000
    for start in range(0, n, chunk):
        items = []
        for s in range(start, min(n, start + chunk)):
            c = s + 1
            cip = "10.%d.%d.%d" % (96 + (c >> 16), (c >> 8) & 0xff, c & 0xff)
            items.append({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": "svc-%d" % s, "namespace": "bench"},
                          "spec": {"clusterIP": cip, "ports": [{"name": "p80", "port": 80, "protocol": "TCP"}]}})
            if s == 0:
                continue
            items.append(slice_for(s, e, 0))
        with open(os.path.join(out, "bench-%06d.json" % start), "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
    write_slice0(out, e, 0)


def slice_for(s, e, variant):
    eps = []
    for k in range(e):
        n = s * e + k + variant + 1
        eps.append({"addresses": ["10.%d.%d.%d" % (128 + (n >> 16 & 0x7f), n >> 8 & 0xff, n & 0xff)],
                    "conditions": {"ready": True}})
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "svc-%d-x" % s, "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": "svc-%d" % s}},
            "addressType": "IPv4", "ports": [{"name": "p80", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps}


def write_slice0(out, e, variant):
    tmp = os.path.join(out, ".slice-0.tmp")
    with open(tmp, "w") as f:
        json.dump(slice_for(0, e, variant), f)
    os.rename(tmp, os.path.join(out, "slice-0.json"))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--bump":
        write_slice0(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
