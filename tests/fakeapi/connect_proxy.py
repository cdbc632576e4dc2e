#!/usr/bin/env python3
"""A minimal HTTP CONNECT proxy for tests.

Usage: connect_proxy.py PORT LOG

Listens on 127.0.0.1:PORT (0 picks a free port; the port is printed on
stdout), appends each request line ("CONNECT host:port HTTP/1.1") to LOG,
and relays bytes both ways. Anything but CONNECT gets 405."""
import socket
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def read_head(conn):
    """The request head, byte by byte (nothing after it is consumed)."""
    head = b""
    while not head.endswith(b"\r\n\r\n") and len(head) < 8192:
        byte = conn.recv(1)
        if not byte:
            break
        head += byte
    return head.decode("latin1")


def handle(conn, log):
    line = read_head(conn).split("\r\n", 1)[0]
    parts = line.split()
    if len(parts) != 3 or parts[0] != "CONNECT" or ":" not in parts[1]:
        conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        conn.close()
        return
    with open(log, "a") as f:
        f.write(line + "\n")
    host, port = parts[1].rsplit(":", 1)
    try:
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        upstream.settimeout(None)
    except OSError:
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        conn.close()
        return
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
    pipe(upstream, conn)


def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, log), daemon=True).start()


if __name__ == "__main__":
    main()
