#!/usr/bin/python3
"""mint.py: keys, JWKS and tokens for the JWS specs (spec/support/jose.lua),
made by libraries that are not tfauth's: python3-jwcrypto signs the ordinary tokens (its own JOSE
framing), python3-cryptography signs the hand-built attack tokens.

stdin, JSON:
  {"keys":   {NAME: {"kty": "RSA", "size": 2048} | {"kty": "EC", "crv": "P-256"}
                    | {"kty": "OKP", "crv": "Ed25519"}},
   "tokens": {NAME: {"key": KEYNAME, "alg": "RS256", "claims": {...},
                     "kid": "..." (default: the key's name; null: no kid),
                     "header": {...} (extra protected members),
                     "raw": true (frame by hand: any header, "none", HS*,
                       "Ed25519"),
                     "der": true (ECDSA signature left DER-encoded),
                     "hmac_key": "pem" (HS*: keyed with the key's public PEM),
                     "header_json", "payload_json": the exact JSON text of each
                       part (raw framing; repeated member names, say),
                     "length": N (raw framing; a claim "pad" of "x"s sized so
                       that the whole token is exactly N bytes)}}}
stdout, JSON: {"jwks": {KEYNAME: public JWK with kid = KEYNAME}, "tokens": {NAME: token}}
"""
import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwcrypto import jwk, jws

CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1, "secp256k1": ec.SECP256K1}
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(spec):
    if spec["kty"] == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.get("size", 2048))
    if spec["kty"] == "EC":
        return ec.generate_private_key(CURVES[spec["crv"]]())
    return ed25519.Ed25519PrivateKey.generate()


def public_jwk(name, key):
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256k1":
        nums = key.public_key().public_numbers()
        return {"kty": "EC", "crv": "secp256k1", "kid": name,
                "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}
    out = jwk.JWK.from_pyca(key.public_key()).export_public(as_dict=True)
    out["kid"] = name
    return out


def raw_sign(key, alg, data, der=False, hmac_key=None):
    if alg.lower() == "none":
        return b""
    if alg.startswith("HS"):
        return hmac.new(hmac_key, data, getattr(hashlib, "sha" + alg[2:])).digest()
    if alg in ("EdDSA", "Ed25519"):  # Ed25519: the fully-specified name, jwcrypto's unknown
        return key.sign(data)
    h = HASHES[alg[2:]]()
    if alg.startswith("RS"):
        return key.sign(data, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        return key.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    sig = key.sign(data, ec.ECDSA(h))
    if der:
        return sig
    r, s = decode_dss_signature(sig)
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sized(spec, key, header):
    """The header and payload (JSON text) whose token is exactly spec["length"]
    bytes: the signature's length is fixed by the key, and a header member
    "x" of 0-2 characters reaches the one length in four the payload cannot."""
    sig_len = len(b64(raw_sign(key, spec["alg"], b"probe")))
    for filler in range(3):
        head = dict(header, x="y" * filler) if filler else dict(header)
        head_len = len(b64(json.dumps(head, separators=(",", ":")).encode()))
        for pad in range(spec["length"]):
            claims = dict(spec.get("claims", {}), pad="x" * pad)
            payload = json.dumps(claims, separators=(",", ":"))
            total = head_len + 1 + len(b64(payload.encode())) + 1 + sig_len
            if total == spec["length"]:
                return head, payload
            if total > spec["length"]:
                break
    raise ValueError("no token of exactly %d bytes" % spec["length"])


def mint(spec, keys):
    key = keys.get(spec.get("key"))
    header = {"alg": spec["alg"]}
    kid = spec.get("kid", spec.get("key"))
    if kid is not None:
        header["kid"] = kid
    header.update(spec.get("header", {}))
    payload = spec.get("payload_json") or json.dumps(spec.get("claims", {}), separators=(",", ":"))
    if not spec.get("raw") and not spec.get("der"):
        token = jws.JWS(payload.encode())
        token.add_signature(jwk.JWK.from_pyca(key), alg=spec["alg"], protected=json.dumps(header))
        return token.serialize(compact=True)
    if spec.get("length"):
        header, payload = sized(spec, key, header)
    header_json = spec.get("header_json") or json.dumps(header, separators=(",", ":"))
    data = (b64(header_json.encode()) + "." + b64(payload.encode())).encode()
    hmac_key = None
    if spec.get("hmac_key") == "pem":
        hmac_key = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return data.decode() + "." + b64(raw_sign(key, spec["alg"], data, spec.get("der"), hmac_key))


def main():
    req = json.load(sys.stdin)
    keys = {name: make_key(spec) for name, spec in req.get("keys", {}).items()}
    out = {"jwks": {name: public_jwk(name, key) for name, key in keys.items()},
           "tokens": {name: mint(spec, keys) for name, spec in req.get("tokens", {}).items()}}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
