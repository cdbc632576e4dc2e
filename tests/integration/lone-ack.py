#!/usr/bin/env python3
"""Sends COUNT bare TCP ACKs that belong to no connection (raw socket).

Usage: lone-ack.py SRC_IP DST_IP DST_PORT [COUNT]

With net.netfilter.nf_conntrack_tcp_loose=0 on a router, conntrack calls
such packets INVALID; iptables-mode.sh uses them to make kube-proxy's
KUBE-FORWARD INVALID drop rule (and its nfacct counter) count."""
import socket
import struct
import sys


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main():
    src, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    ack_flag, header_words = 0x10, 5
    tcp = struct.pack("!HHIIHHHH", 40000, dport, 1000, 2000,
                      header_words << 12 | ack_flag, 65535, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    for _ in range(count):
        sock.sendto(tcp, (dst, 0))


if __name__ == "__main__":
    main()
