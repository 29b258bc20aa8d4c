"""Exit 0 when a Kafka broker on 127.0.0.1:PORT answers a Metadata request.

stack.sh needs a health check before any Kafka client is installed, so this speaks the wire
protocol itself: one Metadata v4 request (all topics), and a check that the answer carries
our correlation id and lists at least one broker. Prints "cluster <id>, N broker(s)".
"""

import socket
import struct
import sys

METADATA = 3
VERSION = 4  # non-flexible; every broker since 1.0 answers it, and 4.x still does
CORRELATION_ID = 0x5EED


def string(reader):
    (length,) = struct.unpack(">h", reader.read(2))
    return None if length < 0 else reader.read(length).decode()


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def read(self, size):
        chunk = self.data[self.at : self.at + size]
        if len(chunk) != size:
            raise ValueError("truncated response")
        self.at += size
        return chunk

    def int32(self):
        return struct.unpack(">i", self.read(4))[0]


def receive(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def ping(port, timeout):
    client_id = b"auditlog-stack"
    body = struct.pack(">hhih", METADATA, VERSION, CORRELATION_ID, len(client_id)) + client_id
    body += struct.pack(">i?", -1, False)  # topics: null = all; no auto-creation
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", receive(sock, 4))
        reader = Reader(receive(sock, size))
    if reader.int32() != CORRELATION_ID:
        raise ValueError("answer to another request")
    reader.int32()  # throttle time
    brokers = reader.int32()
    for _ in range(brokers):
        reader.int32()  # node id
        string(reader)  # host
        reader.int32()  # port
        string(reader)  # rack
    cluster_id = string(reader)
    if brokers < 1:
        raise ValueError("no broker listed yet")
    return cluster_id, brokers


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9092
    try:
        cluster_id, brokers = ping(port, timeout=2.0)
    except (OSError, ValueError) as error:
        print(f"no metadata from 127.0.0.1:{port}: {error}", file=sys.stderr)
        return 1
    print(f"cluster {cluster_id}, {brokers} broker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
