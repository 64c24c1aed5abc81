"""jws_tokens.py DIR: for RS256 (RSA 2048), ES256 (P-256) and EdDSA
(Ed25519), a fresh key, its JWKS (DIR/ALG.jwks), its public key PEM
(DIR/ALG.pem) and a Keycloak-shaped access token signed by PyJWT
(DIR/ALG.token), valid for a day."""
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwk

out = sys.argv[1]
keys = {
    "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
}
now = int(time.time())
claims = {"iss": "https://kc.example/realms/fndtn", "sub": "7d0c5a8e-0000-4000-8000-00000000a11c",
          "typ": "Bearer", "azp": "fndtn-web", "aud": ["fndtn-api", "account"], "exp": now + 86400,
          "iat": now, "jti": "5f0c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f", "sid": "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
          "preferred_username": "alice", "email": "alice@example.com", "email_verified": True,
          "realm_access": {"roles": ["user"]}, "resource_access": {"fndtn-api": {"roles": ["reader"]}},
          "scope": "openid profile email"}
for alg, key in keys.items():
    public = key.public_key()
    j = jwk.JWK.from_pyca(public).export_public(as_dict=True)
    j.update(kid="bench-" + alg, use="sig", alg=alg)
    open(f"{out}/{alg}.jwks", "w").write(json.dumps({"keys": [j]}))
    open(f"{out}/{alg}.pem", "wb").write(public.public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo))
    open(f"{out}/{alg}.token", "w").write(jwt.encode(claims, key, algorithm=alg, headers={"kid": "bench-" + alg}))
