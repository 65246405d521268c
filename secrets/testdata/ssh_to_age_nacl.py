"""An independent ssh-to-age: libsodium (python3-nacl) converts the keys,
a Bech32 encoder written here from BIP-173 encodes them.

Input, one per line: <ed25519 public key hex> <ed25519 secret key hex (seed+public, 64 bytes)>
Output, one per line: <age1… recipient> <AGE-SECRET-KEY-1… identity>
"""
import sys

from nacl.bindings import (
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((top >> i) & 1) else 0
    return chk


def hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def to5(data):
    acc, bits, out = 0, 0, []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def bech32(hrp, data):
    values = to5(data)
    mod = polymod(hrp_expand(hrp) + values + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in values + checksum)


for line in sys.stdin:
    if not line.strip():
        continue
    pk_hex, sk_hex = line.split()
    pk = crypto_sign_ed25519_pk_to_curve25519(bytes.fromhex(pk_hex))
    sk = crypto_sign_ed25519_sk_to_curve25519(bytes.fromhex(sk_hex))
    print(bech32("age", pk), bech32("age-secret-key-", sk).upper())
