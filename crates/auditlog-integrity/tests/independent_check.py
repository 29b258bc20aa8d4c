#!/usr/bin/env python3
"""An auditor's check of auditlog's integrity formats with Python's hashlib and cryptography
only: no auditlog code. Reads one JSON document on stdin, exits 0 when it holds, 1 with the
reason otherwise.

{"leaf_data": hex, "index": n, "size": n, "path": [hex, ...], "root": hex,
 "previous": hex, "topic": str, "partition": n, "first_offset": n, "last_offset": n,
 "count": n, "signed_text": str, "signature": hex, "public_key_pem": str}
"""
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key


def sha256(*parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def root_from_path(leaf, index, size, path):
    # RFC 9162, 2.1.3.2.
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sha256(b"\x01", p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01", r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def main():
    doc = json.load(sys.stdin)
    unhex = bytes.fromhex
    leaf = sha256(b"\x00", unhex(doc["leaf_data"]))
    root = root_from_path(leaf, doc["index"], doc["size"], [unhex(p) for p in doc["path"]])
    if root != unhex(doc["root"]):
        sys.exit("the leaf is not in the batch's tree")
    topic = doc["topic"].encode()
    digest = sha256(
        unhex(doc["previous"]),
        struct.pack(">H", len(topic)), topic,
        struct.pack(">iqqI", doc["partition"], doc["first_offset"], doc["last_offset"],
                    doc["count"]),
        root,
    )
    head = "head %s %d %d %s\n" % (doc["topic"], doc["partition"], doc["last_offset"],
                                   digest.hex())
    if head not in doc["signed_text"]:
        sys.exit("the checkpoint does not name the batch's digest")
    key = load_pem_public_key(doc["public_key_pem"].encode())
    try:
        key.verify(unhex(doc["signature"]), doc["signed_text"].encode())
    except InvalidSignature:
        sys.exit("bad checkpoint signature")


if __name__ == "__main__":
    main()
