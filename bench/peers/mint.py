"""mint.py DIR N ISSUER AUDIENCE [late]: one realm's RS256 key and N distinct
tokens for bench/peers.sh and bench/flat_gate.sh, into DIR:

  key.pem        the private key (RSA 2048, made here)
  pub.pem        its public key (PEM SubjectPublicKeyInfo: HAProxy's jwt_verify)
  cert.pem       a self-signed certificate of it (mod_auth_openidc's OIDCOAuthVerifyCertFiles)
  jwks.json      the JWKS with that key (kid "bench", alg RS256: the gate)
  tokens.txt     N valid tokens, distinct jti, one per line (Keycloak-shaped claims)
  bad_sig.txt    a valid token with one signature byte changed
  bad_sigs.txt   each token of tokens.txt so changed: N distinct bad signatures
  refused/*.txt  one token per check every guard must make: expired, issuer,
                 audience, typ, alg HS256 (signed with the public key's bytes:
                 the classic confusion), alg none, another key

With `late`, each token's jti comes near the end of its claims (before
given_name) instead of third, as Keycloak puts it: same-shape claims that
differ only after their middle (bench/flat_gate.sh).

Signing is the cost: a pool of processes, one per core, RSA with CRT
(cryptography's sign), about 1 ms a token per core."""
import base64
import datetime
import json
import multiprocessing
import os
import sys
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

KID = "bench"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims_for(issuer, audience, now, jti, late=False):
    # The reference backend's (Keycloak's) shape and size; aud a string so
    # that one HAProxy rule can compare it (jwt_payload_query, -m str).
    claims = {"exp": now + 86400, "iat": now, "jti": jti, "iss": issuer, "aud": audience,
            "sub": "7d0c5a8e-0000-4000-8000-00000000a11c", "typ": "Bearer", "azp": "fndtn-web",
            "session_state": "5e1c7a3b-9d2f-4c1a-8b7e-2f3a4b5c6d7e", "acr": "1",
            "allowed-origins": ["https://app.example.com"],
            "realm_access": {"roles": ["default-roles-fndtn", "offline_access", "uma_authorization", "user"]},
            "resource_access": {"account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}},
            "scope": "openid email profile", "sid": "5e1c7a3b-9d2f-4c1a-8b7e-2f3a4b5c6d7e",
            "email_verified": True, "name": "Alice Liddell", "preferred_username": "alice",
            "given_name": "Alice", "family_name": "Liddell", "email": "alice@acme.example"}
    if not late:
        return claims
    del claims["jti"]
    items = list(claims.items())
    at = [k for k, _ in items].index("given_name")
    return dict(items[:at] + [("jti", jti)] + items[at:])


HEADER = encode({"alg": "RS256", "typ": "JWT", "kid": KID})
_key = None


def _init(pem):
    global _key
    _key = serialization.load_pem_private_key(pem, password=None)


def sign(input_text, key=None):
    signature = (key or _key).sign(input_text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return input_text + "." + b64(signature)


def _mint(job):
    issuer, audience, now, count, late = job
    return [sign(HEADER + "." + encode(claims_for(issuer, audience, now, str(uuid.uuid4()), late)))
            for _ in range(count)]


def main():
    out, n, issuer, audience = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    late = sys.argv[5:] == ["late"]
    os.makedirs(os.path.join(out, "refused"), exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key()
    pub_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench realm")])
    start = datetime.datetime.utcnow() - datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    numbers = public.public_numbers()
    jwk = {"kty": "RSA", "kid": KID, "alg": "RS256", "use": "sig",
           "n": b64(numbers.n.to_bytes(256, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}
    files = {"key.pem": pem, "pub.pem": pub_pem, "cert.pem": cert.public_bytes(serialization.Encoding.PEM),
             "jwks.json": json.dumps({"keys": [jwk]}).encode()}
    for file, data in files.items():
        with open(os.path.join(out, file), "wb") as f:
            f.write(data)

    now = int(time.time())
    workers = os.cpu_count() or 1
    jobs = [(issuer, audience, now, n // (4 * workers) + 1, late) for _ in range(4 * workers)]
    with multiprocessing.Pool(workers, _init, (pem,)) as pool:
        tokens = [t for batch in pool.map(_mint, jobs) for t in batch][:n]
    with open(os.path.join(out, "tokens.txt"), "w") as f:
        f.write("\n".join(tokens) + "\n")

    def with_bad_signature(good):
        cut = good.rindex(".") + 1 + 100  # a signature character in the middle, changed
        return good[:cut] + ("A" if good[cut] != "A" else "B") + good[cut + 1:]

    with open(os.path.join(out, "bad_sig.txt"), "w") as f:
        f.write(with_bad_signature(tokens[0]) + "\n")
    with open(os.path.join(out, "bad_sigs.txt"), "w") as f:
        f.write("\n".join(with_bad_signature(t) for t in tokens) + "\n")

    def claims(**change):
        c = claims_for(issuer, audience, now, str(uuid.uuid4()))
        c.update(change)
        return c

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    mac = hmac.HMAC(pub_pem, hashes.SHA256())
    hs_input = encode({"alg": "HS256", "typ": "JWT", "kid": KID}) + "." + encode(claims())
    mac.update(hs_input.encode())
    refused = {
        "expired": sign(HEADER + "." + encode(claims(exp=now - 3600, iat=now - 7200)), key),
        "issuer": sign(HEADER + "." + encode(claims(iss=issuer + "-other")), key),
        "audience": sign(HEADER + "." + encode(claims(aud="another-api")), key),
        "typ": sign(HEADER + "." + encode(claims(typ="Refresh")), key),
        "alg_hs256": hs_input + "." + b64(mac.finalize()),
        "alg_none": encode({"alg": "none", "typ": "JWT"}) + "." + encode(claims()) + ".",
        "other_key": sign(HEADER + "." + encode(claims()), other),
    }
    for reason, token in refused.items():
        with open(os.path.join(out, "refused", reason + ".txt"), "w") as f:
            f.write(token + "\n")


if __name__ == "__main__":
    main()
