#!/usr/bin/env python3
"""Writes an armored OpenPGP secret key as binary packets, every unprotected
RSA secret key (primary and subkeys) with its primes in the order RFC 4880
(5.5.3) requires: p < q, u = p^-1 mod q.

    pgp-key-order.py KEY.asc OUT.gpg

The public key, and so the fingerprint and every signature on the key, stay
as they are. A key whose p > q signs correctly with most implementations, but
GnuPG's (libgcrypt's CRT) makes a wrong signature for about one in a hundred
messages with it. Prints "swapped" if any key's primes were swapped, else
"in order"; the packets are written either way.
"""

import base64
import struct
import sys

RSA = (1, 2, 3)
SECRET_KEY, SECRET_SUBKEY = 5, 7


def dearmor(text):
    body, state = [], "outside"
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            state = "headers"
        elif line.startswith("-----END"):
            break
        elif state == "headers":
            if not line.strip():
                state = "body"
        elif state == "body" and not line.startswith("="):
            body.append(line.strip())
    if not body:
        sys.exit("pgp-key-order: no armored block")
    return base64.b64decode("".join(body))


def packets(data):
    i = 0
    while i < len(data):
        t = data[i]
        if not t & 0x80:
            sys.exit("pgp-key-order: not an OpenPGP packet")
        if t & 0x40:
            tag, first = t & 0x3F, data[i + 1]
            if first < 192:
                length, head = first, 2
            elif first < 224:
                length, head = ((first - 192) << 8) + data[i + 2] + 192, 3
            elif first == 255:
                length, head = int.from_bytes(data[i + 2 : i + 6], "big"), 6
            else:
                sys.exit("pgp-key-order: partial body lengths in a key")
        else:
            tag, kind = (t >> 2) & 0x0F, t & 3
            size = {0: 1, 1: 2, 2: 4}.get(kind)
            if size is None:
                sys.exit("pgp-key-order: indeterminate packet length in a key")
            length, head = int.from_bytes(data[i + 1 : i + 1 + size], "big"), 1 + size
        yield tag, data[i + head : i + head + length]
        i += head + length


def read_mpi(buf, o):
    bits = int.from_bytes(buf[o : o + 2], "big")
    n = (bits + 7) // 8
    return int.from_bytes(buf[o + 2 : o + 2 + n], "big"), o + 2 + n


def mpi(x):
    bits = x.bit_length()
    return struct.pack(">H", bits) + x.to_bytes((bits + 7) // 8, "big")


def packet(tag, body):
    n = len(body)
    if n < 192:
        head = bytes([n])
    elif n < 8384:
        head = bytes([((n - 192) >> 8) + 192, (n - 192) & 0xFF])
    else:
        head = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + head + body


def main():
    data = dearmor(open(sys.argv[1], encoding="ascii").read())
    out, swapped = b"", False
    for tag, body in packets(data):
        if tag in (SECRET_KEY, SECRET_SUBKEY) and body[0] == 4 and body[5] in RSA:
            o = 6
            n, o = read_mpi(body, o)
            _, o = read_mpi(body, o)  # e
            public, usage = body[:o], body[o]
            if usage != 0:
                sys.exit("pgp-key-order: the key is protected by a passphrase")
            d, o = read_mpi(body, o + 1)
            p, o = read_mpi(body, o)
            q, o = read_mpi(body, o)
            if p * q != n:
                sys.exit("pgp-key-order: p * q is not n")
            if p > q:
                p, q, swapped = q, p, True
            secret = mpi(d) + mpi(p) + mpi(q) + mpi(pow(p, -1, q))
            body = public + b"\x00" + secret + struct.pack(">H", sum(secret) % 65536)
        out += packet(tag, body)
    open(sys.argv[2], "wb").write(out)
    print("swapped" if swapped else "in order")


if __name__ == "__main__":
    main()
