#!/usr/bin/env python3
"""An auditor's check of an auditlog event proof with Python's hashlib and cryptography only:
no auditlog code. Reads {"proof": <the proof JSON>, "public_key_pem": "..."} on stdin and exits
0 when the proof holds, 1 with the reason otherwise. The steps are docs/integrity.md's.
"""
import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_public_key)


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
    proof = doc["proof"]
    unhex = bytes.fromhex
    if proof["format"] != "auditlog-proof-v1":
        sys.exit("unknown proof format")

    # 1. The leaf is the hash of the stored row.
    row = base64.b64decode(proof["row"])
    leaf = sha256(b"\x00", b"E", row)
    if leaf.hex() != proof["leaf"]:
        sys.exit("the leaf is not the hash of the row")

    # 2. The leaf is in its batch's Merkle tree.
    batch = proof["batch"]
    root = root_from_path(leaf, proof["leaf_index"], batch["count"],
                          [unhex(p) for p in proof["inclusion_path"]])
    if root is None or root.hex() != batch["root"]:
        sys.exit("the leaf is not in the batch's tree")

    # 3. Each batch's digest chains after the one before, up to the checkpoint's head.
    topic = proof["topic"].encode()
    digest = unhex(batch["previous_digest"])
    last_offset = None
    for link in [batch] + proof["links"]:
        if digest.hex() != link["previous_digest"]:
            sys.exit("batch %d..=%d does not chain after the one before it"
                     % (link["first_offset"], link["last_offset"]))
        digest = sha256(
            digest,
            struct.pack(">H", len(topic)), topic,
            struct.pack(">iqqI", proof["partition"], link["first_offset"],
                        link["last_offset"], link["count"]),
            unhex(link["root"]),
        )
        if digest.hex() != link["digest"]:
            sys.exit("batch %d..=%d does not hash to its digest"
                     % (link["first_offset"], link["last_offset"]))
        last_offset = link["last_offset"]

    # 4. A checkpoint signed by the trusted key names the last digest.
    checkpoint = proof.get("checkpoint")
    if not checkpoint:
        sys.exit("no checkpoint covers the batch yet")
    body = checkpoint["body"]
    head = "head %s %d %d %s\n" % (proof["topic"], proof["partition"], last_offset,
                                   digest.hex())
    if head not in body:
        sys.exit("the checkpoint does not name the chain's last digest")
    key = load_pem_public_key(doc["public_key_pem"].encode())
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if ("\nkey %s\n" % hashlib.sha256(raw).hexdigest()[:16]) not in body:
        sys.exit("the checkpoint names another key")
    try:
        key.verify(base64.b64decode(checkpoint["signature"]), body.encode())
    except InvalidSignature:
        sys.exit("bad checkpoint signature")


if __name__ == "__main__":
    main()
