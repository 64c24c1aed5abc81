"""flat_tokens.py DIR N: one RSA-2048 key, its JWKS (DIR/flat.jwks) and N
distinct RS256 tokens of one shape (DIR/flat.tokens, one a line): Keycloak
claims that differ only in `sub` and `jti`, in the middle of the claims
text, as the tokens of one realm do. Signed here, in one batch, with the
`cryptography` package PyJWT and jwcrypto build on: no backend round trip
per token."""
import base64
import json
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwcrypto import jwk


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


out, n = sys.argv[1], int(sys.argv[2])
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public = jwk.JWK.from_pyca(key.public_key()).export_public(as_dict=True)
public.update(kid="flat", use="sig", alg="RS256")
with open(f"{out}/flat.jwks", "w") as f:
    json.dump({"keys": [public]}, f)

head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "flat"}, separators=(",", ":")).encode())
now = int(time.time())
with open(f"{out}/flat.tokens", "wb") as f:
    for i in range(n):
        claims = {"exp": now + 7 * 86400, "iat": now, "auth_time": now, "iss": "https://kc.example/realms/fndtn",
                  "aud": ["fndtn-api", "account"], "typ": "Bearer", "azp": "fndtn-web",
                  "sub": str(uuid.UUID(int=i * 7919 + 1)), "jti": str(uuid.UUID(int=(i + 1) * 104729)),
                  "sid": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6", "acr": "1",
                  "allowed-origins": ["https://app.example"], "scope": "openid profile email",
                  "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-fndtn"]},
                  "resource_access": {"fndtn-api": {"roles": ["reader"]},
                                      "account": {"roles": ["manage-account", "view-profile"]}},
                  "email_verified": True, "name": "Alice Example", "preferred_username": "alice",
                  "given_name": "Alice", "family_name": "Example", "email": "alice@example.com"}
        signing_input = head + b"." + b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        f.write(signing_input + b"." + b64url(signature) + b"\n")
