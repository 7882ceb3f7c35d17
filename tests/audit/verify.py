#!/usr/bin/env python3
"""An independent checker of client-registry's sealed log, from the README's description
alone, with Python's standard library only (Ed25519 verification is RFC 8032's own
reference code).

    python3 verify.py LOG.jsonl TREE_HEAD.json PUBLIC_KEY.pem

Prints "OK <size> <root>" and exits 0, or "TAMPERED at position <p>: <what>" (the first
position that differs; "-" when it is the log as a whole) and exits 1.
"""

import base64
import hashlib
import json
import sys

# --- RFC 8032 §6, verification only -------------------------------------------------------
P = 2**255 - 19
Q = 2**252 + 27742317777372353535851937790883648493


def _inv(x):
    return pow(x, P - 2, P)


D = -121665 * _inv(121666) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    aa, bb = (a[1] - a[0]) * (b[1] - b[0]) % P, (a[1] + a[0]) * (b[1] + b[0]) % P
    cc, dd = 2 * a[3] * b[3] * D % P, 2 * a[2] * b[2] % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f, g * h, f * g, e * h)


def _mul(s, point):
    result = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * _inv(D * y * y + 1)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


G_Y = 4 * _inv(5) % P
G_X = _recover_x(G_Y, 0)
G = (G_X, G_Y, 1, G_X * G_Y % P)


def _decompress(s):
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % Q
    return _equal(_mul(s, G), _add(r, _mul(h, a)))


# --- The README's encoding ----------------------------------------------------------------
def jcs(value):
    """RFC 8785 for the registry's events (ASCII member names, integers only)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(event):
    return hashlib.sha256(b"\x00" + jcs(event)).digest()


def root(leaves):
    """MTH of RFC 9162 §2.1.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + root(leaves[:k]) + root(leaves[k:])).digest()


def public_key(text):
    text = text.strip()
    if text.startswith("{"):
        return base64.b64decode(json.loads(text)["public_key"])
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    return base64.b64decode(body)[-32:]


def main(log_path, head_path, key_path):
    head = json.load(open(head_path))
    public = public_key(open(key_path).read())
    signed = {k: head[k] for k in ("key_id", "root_hash", "timestamp", "tree_size")}
    if head["key_id"] != hashlib.sha256(public).hexdigest() or not ed25519_verify(
        public, jcs(signed), base64.b64decode(head["signature"])
    ):
        return "-", "the tree head's signature does not verify"
    leaves = []
    first = None
    sequences = {}
    for line in open(log_path, encoding="utf-8"):
        if not line.strip():
            continue
        entry = json.loads(line)
        position, event, recorded = entry["position"], entry["event"], entry["leaf_hash"]
        problem = None
        if recorded is None:
            problem = "an event that was never sealed (inserted afterwards)"
        elif event is None:
            problem = "a sealed event is missing (deleted)"
            leaves.append(bytes.fromhex(recorded))
        else:
            computed = leaf_hash(event)
            if event["position"] != position:
                problem = "the event here belongs at another position (moved or swapped)"
            elif computed.hex() != recorded:
                problem = "the event is not what was sealed (changed)"
            leaves.append(computed)
        if event is not None and problem is None:
            last = sequences.get(event["stream_id"], 0)
            sequences[event["stream_id"]] = event["sequence"]
            if event["sequence"] != last + 1:
                problem = "a client's events jump in sequence (some are missing from the log)"
        if problem and first is None:
            first = (position, problem)
    if first:
        return first
    if len(leaves) != head["tree_size"]:
        return "-", f"the log has {len(leaves)} sealed events, the head covers {head['tree_size']}"
    if root(leaves).hex() != head["root_hash"]:
        return "-", "the leaves do not produce the signed root"
    return None


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    found = main(*sys.argv[1:4])
    if found is None:
        print("OK")
        sys.exit(0)
    print(f"TAMPERED at position {found[0]}: {found[1]}")
    sys.exit(1)
