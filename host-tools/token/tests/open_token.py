#!/usr/bin/env python3
"""An independent opener written from docs/token.md alone, with Python's `cryptography` primitives (ECDH,
HMAC, AES-GCM, ECDSA) and no HPKE library: RFC 9180 base mode is spelled out here as the spec gives it.

    python3 host-tools/token/tests/open_token.py host-tools/token/tests/golden/token-1.hex

prints the envelope parts, the decrypted body TLV and its fields, and checks both signatures with the
TEST-ONLY keys in tests/keys/. Not run by cargo: a check that the spec is enough for another language.
"""
import hashlib, hmac, pathlib, sys
from cryptography.hazmat.primitives import hashes, serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = pathlib.Path(__file__).parent
ENVELOPE_LABEL, BODY_LABEL = b"linkcard token envelope v1", b"linkcard token body v1"

def tlv(b, i=0):
    """(tag, value, end) of the TLV at b[i:], minimal lengths only."""
    tag = b[i]; i += 1
    if tag & 0x1F == 0x1F: tag = tag << 8 | b[i]; i += 1
    n = b[i]; i += 1
    if n == 0x81: n = b[i]; i += 1; assert n >= 0x80
    elif n == 0x82: n = b[i] << 8 | b[i + 1]; i += 2; assert n > 0xFF
    else: assert n < 0x80
    return tag, b[i:i + n], i + n

def fields(value):
    out, i = [], 0
    while i < len(value):
        start = i; tag, v, i = tlv(value, i); out.append((tag, v, value[start:i]))
    return out

def extract(salt, ikm): return hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()
def expand(prk, info, n):
    out, t, c = b"", b"", 1
    while len(out) < n: t = hmac.new(prk, t + info + bytes([c]), hashlib.sha256).digest(); out += t; c += 1
    return out[:n]
def labeled_extract(suite, salt, label, ikm): return extract(salt, b"HPKE-v1" + suite + label + ikm)
def labeled_expand(suite, prk, label, info, n):
    return expand(prk, n.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, n)

def hpke_open(sk_r, enc, info, aad, ct):
    """RFC 9180 §4.1 Decap + §5.1 KeySchedule (mode_base) + §5.2 Open, sequence number 0."""
    kem_suite = b"KEM" + (0x0010).to_bytes(2, "big")
    pk_e = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), enc)
    dh = sk_r.exchange(ec.ECDH(), pk_e)
    pk_rm = sk_r.public_key().public_bytes(encoding=ser.Encoding.X962, format=ser.PublicFormat.UncompressedPoint)
    eae_prk = labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared = labeled_expand(kem_suite, eae_prk, b"shared_secret", enc + pk_rm, 32)
    suite = b"HPKE" + bytes.fromhex("0010" "0001" "0001")
    context = b"\x00" + labeled_extract(suite, b"", b"psk_id_hash", b"") + labeled_extract(suite, b"", b"info_hash", info)
    secret = labeled_extract(suite, shared, b"secret", b"")
    key = labeled_expand(suite, secret, b"key", context, 16)
    nonce = labeled_expand(suite, secret, b"base_nonce", context, 12)
    return AESGCM(key).decrypt(nonce, ct, aad)

def verify(public, message, rs):
    public.verify(encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")),
                  message, ec.ECDSA(hashes.SHA256()))

def main(path):
    token = bytes.fromhex("".join(pathlib.Path(path).read_text().split()))
    tag, inside, end = tlv(token); assert tag == 0x7F71 and end == len(token)
    (t1, header, header_tlv), (t2, sealed, sealed_tlv), (t3, outer_sig, _) = fields(inside)
    assert (t1, t2, t3) == (0xA1, 0xA2, 0x5F37)
    h = {t: v for t, v, _ in fields(header)}
    (_, enc, _), (_, ct, _) = fields(sealed)
    key = lambda name: int(open(HERE / "keys" / name).read(), 16)
    bank = ec.derive_private_key(key("bank-signing.TEST-ONLY.hex"), ec.SECP256R1()).public_key()
    credit = ec.derive_private_key(key("credit-hpke.TEST-ONLY.hex"), ec.SECP256R1())
    point = lambda k: k.public_bytes(encoding=ser.Encoding.X962, format=ser.PublicFormat.UncompressedPoint)
    assert h[0x86] == hashlib.sha256(point(bank)).digest()[:8], "bank key id"
    assert h[0x87] == hashlib.sha256(point(credit.public_key())).digest()[:8], "credit key id"
    verify(bank, ENVELOPE_LABEL + header_tlv + sealed_tlv, outer_sig)
    info = bytes([1, len(h[0x82])]) + h[0x82] + bytes([len(h[0x83])]) + h[0x83]
    plaintext = hpke_open(credit, enc, info, header_tlv, ct)
    (tb, body, body_tlv), (ts, inner_sig, _) = fields(plaintext)
    assert (tb, ts) == (0xA3, 0x5F37)
    verify(bank, BODY_LABEL + body_tlv, inner_sig)
    print("info      ", info.hex().upper())
    print("plaintext ", plaintext.hex().upper())
    for t, v, _ in fields(body):
        print(f"  {t:02X} {len(v):02X} {v.hex().upper()}  {v!r}" if t in (0x8A, 0x8B, 0x8E, 0x8F, 0x81, 0x82, 0x83)
              else f"  {t:02X} {len(v):02X} {v.hex().upper()}")
    print("both signatures verify; the body opens")

if __name__ == "__main__":
    main(sys.argv[1])
