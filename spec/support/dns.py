"""A loopback DNS stub for nginx's `resolver`, for the tests.

nginx resolves the host of a `proxy_pass $variable` at run time with its own
resolver (it never reads /etc/hosts), so an https URL naming `localhost`
(the name the test certificates carry) needs a DNS server. This one answers
A queries for `localhost` with 127.0.0.1 and everything else with NXDOMAIN
(AAAA for localhost: no records). Loopback only; UDP; standard library only.

Run: /usr/bin/python3 dns.py PORT_FILE   (binds 127.0.0.1 on a free port,
writes it to PORT_FILE, serves until killed)
"""
import os
import socket
import struct
import sys

NAMES = {"localhost": "127.0.0.1"}
TYPE_A, CLASS_IN = 1, 1


def read_question(packet):
    """(name, qtype, qclass, end offset) of the first question."""
    labels, i = [], 12
    while packet[i] != 0:
        n = packet[i]
        if n & 0xC0:  # a compressed name in a question: not from nginx
            raise ValueError("compressed question name")
        labels.append(packet[i + 1:i + 1 + n].decode("ascii").lower())
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", packet[i + 1:i + 5])
    return ".".join(labels), qtype, qclass, i + 5


def answer(packet):
    ident, flags = struct.unpack("!HH", packet[:4])
    name, qtype, qclass, end = read_question(packet)
    address = NAMES.get(name)
    records = b""
    if address and qtype == TYPE_A and qclass == CLASS_IN:
        # name as a pointer to the question (offset 12), TTL 60 s
        records = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 60, 4) + socket.inet_aton(address)
    rcode = 0 if address else 3  # NXDOMAIN for names we do not know
    reply_flags = 0x8000 | (flags & 0x0100) | 0x0400 | rcode  # response, RD copied, authoritative
    header = struct.pack("!HHHHHH", ident, reply_flags, 1, 1 if records else 0, 0, 0)
    return header + packet[12:end] + records


def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        packet, peer = sock.recvfrom(512)
        try:
            sock.sendto(answer(packet), peer)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError):
            pass  # not a query we understand: no answer


if __name__ == "__main__":
    main()
