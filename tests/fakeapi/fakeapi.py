#!/usr/bin/env python3
"""A small Kubernetes API server for tests (Python 3 standard library only).

It speaks the parts of the real protocol kube-proxy and kubectl use:
discovery (/api, /apis, /api/v1, /apis/discovery.k8s.io/v1), lists with
resourceVersion, limit and continue, label and field selectors, chunked
watches with one JSON event per line, bookmarks, 410 Expired both as an HTTP
status and as an in-stream ERROR event, bearer-token and client-certificate
authentication over TLS.

Objects are created, changed and deleted, and faults injected, through a
separate plain-HTTP control port on 127.0.0.1:
  POST /apply   {"resource": "services", "object": {...}, "pad": N}
                or {"items": [{"resource": ..., "object": ...}, ...]}
  POST /delete  {"resource": "services", "namespace": "ns", "name": "n"}
  POST /fault   {"type": ..., "count": N, ...}   (see FAULTS below)
  POST /compact                      watches/lists from older versions get 410
  POST /token   {"token": "t"}       the accepted bearer token
  GET  /requests                     API requests served so far (JSON list)
  GET  /watches                      number of open watch streams
"""

import argparse
import base64
import bisect
import json
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = {
    "watch_http_410",    # next N watch requests: HTTP 410 Status
    "watch_stream_410",  # next N watch requests: 200, then an ERROR 410 event
    "expire_active",     # open watches: ERROR 410 event now, then end
    "drop_mid_line",     # next N events on any watch: half a line, then the connection drops
    "slow",              # {"on": true|false}: watch events written one byte per chunk
    "status",            # next N requests (optional "verb": list|watch, "resource"): HTTP "code", "retry_after"
    "expire_continue",   # next N list requests with a continue token: 410
    "end_watches",       # open watches end cleanly now
    "refuse",            # {"on": true|false}: API connections are closed without an answer
}

RESOURCES = {
    # name: (group-version path, kind, namespaced, list kind)
    "services": ("/api/v1", "Service", True, "ServiceList", "v1"),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "EndpointSlice", True,
                       "EndpointSliceList", "discovery.k8s.io/v1"),
    "nodes": ("/api/v1", "Node", False, "NodeList", "v1"),
}


class State:
    def __init__(self, bookmark_s):
        self.lock = threading.Condition()
        self.rv = 1000
        self.compacted = 0
        self.objects = {r: {} for r in RESOURCES}   # resource -> key -> obj
        self.events = []                            # (rv, resource, type, obj)
        self.event_rvs = []                         # rv of each event (bisect)
        self.faults = {}                            # type -> dict
        self.slow = False
        self.refuse = False
        self.token = None
        self.requests = []
        self.watch_gen = 0                          # bumped by expire_active/end_watches
        self.watch_action = None
        self.open_watches = 0
        self.bookmark_s = bookmark_s
        self.forbid = set()

    def record(self, res, typ, obj):
        self.events.append((self.rv, res, typ, obj))
        self.event_rvs.append(self.rv)

    def since(self, rv, res):
        """Events of resource res after resourceVersion rv."""
        i = bisect.bisect_right(self.event_rvs, rv)
        return [(erv, t, o) for erv, r, t, o in self.events[i:] if r == res]

    def apply(self, res, obj, pad=None):
        g = RESOURCES[res]
        obj.setdefault("kind", g[1])
        obj.setdefault("apiVersion", g[4])
        md = obj.setdefault("metadata", {})
        if g[2]:
            md.setdefault("namespace", "default")
        if pad:
            md.setdefault("annotations", {})["pad"] = "x" * int(pad)
        k = key_of(obj)
        typ = "MODIFIED" if k in self.objects[res] else "ADDED"
        self.rv += 1
        md["resourceVersion"] = str(self.rv)
        md.setdefault("uid", "uid-%d" % self.rv)
        md.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.objects[res][k] = obj
        self.record(res, typ, obj)

    def take(self, name, pred=None):
        """Consumes one count of fault name; returns its dict or None."""
        f = self.faults.get(name)
        if not f or f.get("count", 1) <= 0:
            return None
        if pred and not pred(f):
            return None
        f["count"] = f.get("count", 1) - 1
        if f["count"] <= 0:
            del self.faults[name]
        return f


def key_of(obj):
    md = obj.get("metadata", {})
    ns = md.get("namespace", "")
    return (ns + "/" if ns else "") + md.get("name", "")


def parse_label_selector(sel):
    reqs = []
    for part in filter(None, (p.strip() for p in sel.split(","))):
        if part.startswith("!"):
            reqs.append(("absent", part[1:], None))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(("ne", k, v))
        elif "==" in part:
            k, v = part.split("==", 1)
            reqs.append(("eq", k, v))
        elif "=" in part:
            k, v = part.split("=", 1)
            reqs.append(("eq", k, v))
        else:
            reqs.append(("present", part, None))
    return reqs


def labels_match(obj, reqs):
    labels = obj.get("metadata", {}).get("labels") or {}
    for op, k, v in reqs:
        if op == "absent" and k in labels:
            return False
        if op == "present" and k not in labels:
            return False
        if op == "eq" and labels.get(k) != v:
            return False
        if op == "ne" and labels.get(k) == v:
            return False
    return True


def fields_match(obj, sel):
    md = obj.get("metadata", {})
    for part in filter(None, sel.split(",")):
        neg = "!=" in part
        k, v = part.split("!=" if neg else "=", 1)
        k = k.rstrip("=")
        have = {"metadata.name": md.get("name"),
                "metadata.namespace": md.get("namespace", "")}.get(k)
        if (have == v) == neg:
            return False
    return True


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeapi"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fakeapi: " + (fmt % args) + "\n")

    # -- helpers --
    def send_json(self, code, body, extra=None):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def authenticate(self, st):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] == st.token and st.token is not None
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        return bool(cert)

    def do_GET(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = url.path.rstrip("/") or "/"
        with st.lock:
            if st.refuse:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            entry = {"path": path, "query": q, "t": time.time(),
                     "auth": self.headers.get("Authorization", "")[:6]}
            st.requests.append(entry)
        if not self.authenticate(st):
            entry["code"] = 401
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0",
                                             "serverAddress": "127.0.0.1:443"}]})
        if path == "/apis":
            gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "discovery.k8s.io", "versions": [gv], "preferredVersion": gv}]})
        if path in ("/api/v1", "/apis/discovery.k8s.io/v1"):
            res = []
            for name, (gvp, kind, nsd, _, gv) in RESOURCES.items():
                if gvp == path:
                    res.append({"name": name, "singularName": kind.lower(), "namespaced": nsd,
                                "kind": kind, "verbs": ["get", "list", "watch"],
                                "shortNames": {"services": ["svc"], "nodes": ["no"]}.get(name, [])})
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": path.split("/", 2)[2], "resources": res})
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake"})
        # /api/v1/services, /api/v1/namespaces/NS/services[/NAME], same for other groups
        parts = path.split("/")
        for name, (gvp, kind, nsd, listkind, gv) in RESOURCES.items():
            base = gvp.split("/")
            rest = parts[len(base):]
            if parts[:len(base)] != base:
                continue
            ns = None
            if len(rest) >= 3 and rest[0] == "namespaces" and nsd:
                ns = rest[1]
                rest = rest[2:]
            if not rest or rest[0] != name:
                continue
            entry["resource"] = name
            verb = "watch" if q.get("watch") in ("true", "1") else "list"
            entry["verb"] = verb
            if name in st.forbid:
                entry["code"] = 403
                return self.send_json(403, status(403, "Forbidden",
                    '%s is forbidden: User "test" cannot %s resource "%s" in API group "%s" '
                    'at the cluster scope' % (name, verb, name, "" if gv == "v1" else gv.split("/")[0])))
            with st.lock:
                f = st.take("status", lambda f: f.get("verb") in (None, verb)
                            and f.get("resource") in (None, name))
            if f:
                code = int(f.get("code", 500))
                entry["code"] = code
                extra = {"Retry-After": str(f["retry_after"])} if "retry_after" in f else {}
                return self.send_json(code, status(code, "TooManyRequests" if code == 429
                                                   else "InternalError", "injected %d" % code), extra)
            if len(rest) == 2:
                with st.lock:
                    obj = st.objects[name].get((ns + "/" if ns else "") + rest[1])
                if not obj:
                    return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (name, rest[1])))
                return self.send_json(200, obj)
            if verb == "watch":
                return self.watch(st, name, kind, gv, ns, q, entry)
            return self.list(st, name, kind, listkind, gv, ns, q, entry)
        return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))

    def matches(self, obj, ns, q):
        if ns is not None and obj.get("metadata", {}).get("namespace") != ns:
            return False
        if "labelSelector" in q and not labels_match(obj, parse_label_selector(q["labelSelector"])):
            return False
        if "fieldSelector" in q and not fields_match(obj, q["fieldSelector"]):
            return False
        return True

    def list(self, st, name, kind, listkind, gv, ns, q, entry):
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        with st.lock:
            start = ""
            list_rv = st.rv
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                    start, list_rv = tok["start"], tok["rv"]
                except (ValueError, KeyError):
                    entry["code"] = 400
                    return self.send_json(400, status(400, "BadRequest", "invalid continue token"))
                if st.take("expire_continue") or list_rv < st.compacted:
                    entry["code"] = 410
                    return self.send_json(410, status(410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter."))
            # A paged list is consistent at list_rv: rebuild that state from
            # the (never truncated) history.
            if list_rv == st.rv:
                objs = dict(st.objects[name])
            else:
                objs = {}
                for rv, res, typ, obj in st.events:
                    if rv > list_rv:
                        break
                    if res == name:
                        if typ == "DELETED":
                            objs.pop(key_of(obj), None)
                        else:
                            objs[key_of(obj)] = obj
            keys = sorted(k for k, o in objs.items() if k > start and self.matches(o, ns, q))
            more = limit and len(keys) > limit
            if more:
                keys = keys[:limit]
            items = [objs[k] for k in keys]
            md = {"resourceVersion": str(list_rv)}
            if more:
                md["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"start": keys[-1], "rv": list_rv}).encode()).decode()
                md["remainingItemCount"] = len([k for k, o in objs.items()
                                                if k > keys[-1] and self.matches(o, ns, q)])
        entry["code"] = 200
        self.send_json(200, {"kind": listkind, "apiVersion": gv, "metadata": md, "items": items})

    def watch(self, st, name, kind, gv, ns, q, entry):
        rv_s = q.get("resourceVersion", "")
        timeout = float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        with st.lock:
            if st.take("watch_http_410"):
                entry["code"] = 410
                return self.send_json(410, status(410, "Expired", "too old resource version: %s (%d)"
                                                  % (rv_s, st.rv)))
            stream_410 = st.take("watch_stream_410") is not None
            try:
                from_rv = int(rv_s) if rv_s not in ("", "0") else None
            except ValueError:
                entry["code"] = 400
                return self.send_json(400, status(400, "BadRequest", "invalid resourceVersion"))
            initial = []
            if from_rv is None:
                initial = [("ADDED", o) for o in st.objects[name].values() if self.matches(o, ns, q)]
                from_rv = st.rv
            elif from_rv < st.compacted:
                stream_410 = True
            gen = st.watch_gen
            st.open_watches += 1
        entry["code"] = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        deadline = time.monotonic() + timeout
        last_bm = time.monotonic()
        sent_rv = from_rv
        try:
            if stream_410:
                self.send_event({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %s (%d)" % (rv_s, st.rv))})
                return self.end_stream()
            for typ, o in initial:
                self.send_event({"type": typ, "object": o})
            while True:
                with st.lock:
                    pending = st.since(sent_rv, name)
                    if not pending and st.watch_gen == gen:
                        st.lock.wait(0.2)
                        pending = st.since(sent_rv, name)
                    action = st.watch_action if st.watch_gen != gen else None
                    cur_rv = st.rv
                for rv, t, o in pending:
                    sent_rv = rv
                    if self.matches(o, ns, q):
                        with st.lock:
                            drop = st.take("drop_mid_line") is not None
                        line = json.dumps({"type": t, "object": o}).encode() + b"\n"
                        if drop:
                            self.chunk(line[:len(line) // 2])
                            self.connection.shutdown(socket.SHUT_RDWR)
                            self.close_connection = True
                            return
                        self.send_raw(line)
                if action == "expire_active":
                    self.send_event({"type": "ERROR", "object": status(
                        410, "Expired", "too old resource version: %d (%d)" % (sent_rv, cur_rv))})
                    return self.end_stream()
                if action == "end_watches" or time.monotonic() >= deadline:
                    return self.end_stream()
                if bookmarks and time.monotonic() - last_bm >= st.bookmark_s:
                    last_bm = time.monotonic()
                    sent_rv = max(sent_rv, cur_rv)
                    self.send_event({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": gv,
                        "metadata": {"resourceVersion": str(sent_rv)}}})
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with st.lock:
                st.open_watches -= 1

    def send_event(self, ev):
        self.send_raw(json.dumps(ev).encode() + b"\n")

    def send_raw(self, line):
        if self.server.state.slow:
            for i in range(len(line)):
                self.chunk(line[i:i + 1])
        else:
            self.chunk(line)

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Control(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        st = self.server.state
        with st.lock:
            if self.path == "/requests":
                return self.reply(200, st.requests)
            if self.path == "/watches":
                return self.reply(200, {"open": st.open_watches})
            if self.path == "/rv":
                return self.reply(200, {"rv": st.rv})
        self.reply(404, {"error": "unknown"})

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError as e:
            return self.reply(400, {"error": str(e)})
        with st.lock:
            if self.path == "/apply":
                # One object, or many at once: {"items": [{"resource", "object"}, ...]}
                for it in body.get("items") or [body]:
                    st.apply(it["resource"], it["object"], it.get("pad"))
            elif self.path == "/delete":
                res = body["resource"]
                k = (body["namespace"] + "/" if body.get("namespace") else "") + body["name"]
                obj = st.objects[res].pop(k, None)
                if obj is None:
                    return self.reply(404, {"error": "not found"})
                st.rv += 1
                obj = json.loads(json.dumps(obj))
                obj["metadata"]["resourceVersion"] = str(st.rv)
                st.record(res, "DELETED", obj)
            elif self.path == "/compact":
                st.compacted = st.rv
            elif self.path == "/token":
                st.token = body.get("token")
            elif self.path == "/forbid":
                st.forbid = set(body.get("resources", []))
            elif self.path == "/fault":
                t = body.get("type")
                if t not in FAULTS:
                    return self.reply(400, {"error": "unknown fault %r" % t})
                if t == "slow":
                    st.slow = bool(body.get("on", True))
                elif t == "refuse":
                    st.refuse = bool(body.get("on", True))
                elif t in ("expire_active", "end_watches"):
                    st.watch_gen += 1
                    st.watch_action = t
                else:
                    body.setdefault("count", 1)
                    st.faults[t] = body
            else:
                return self.reply(404, {"error": "unknown"})
            st.lock.notify_all()
            self.reply(200, {"rv": st.rv})


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ctx):
        self.ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ctx:
            # The handshake happens in the handler's thread, on first read.
            sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (0 = any)")
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--cert", help="server certificate (PEM); without it, plain HTTP")
    ap.add_argument("--key", help="server key (PEM)")
    ap.add_argument("--client-ca", help="CA for client certificates")
    ap.add_argument("--token", help="accepted bearer token")
    ap.add_argument("--bookmark-seconds", type=float, default=1.0)
    ap.add_argument("--initial-rv", type=int, default=1000,
                    help="first resourceVersion (a restarted server must not go backwards)")
    ap.add_argument("--ports-file", help="write 'API_PORT CONTROL_PORT' here once listening")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()

    st = State(a.bookmark_seconds)
    st.token = a.token
    st.rv = a.initial_rv
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        if a.client_ca:
            ctx.load_verify_locations(a.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    api = TLSServer(("127.0.0.1", a.port), Handler, ctx)
    api.state = st
    api.verbose = a.verbose
    ctl = TLSServer(("127.0.0.1", a.control_port), Control, None)
    ctl.state = st
    threading.Thread(target=ctl.serve_forever, daemon=True).start()
    if a.ports_file:
        with open(a.ports_file + ".tmp", "w") as f:
            f.write("%d %d\n" % (api.server_address[1], ctl.server_address[1]))
        import os
        os.rename(a.ports_file + ".tmp", a.ports_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api.serve_forever()


if __name__ == "__main__":
    main()
