"""mint_tokens.py BACKEND_URL ISSUER N FILE: N distinct access tokens for
alice, shaped as the reference backend's own (RS256, typ Bearer, aud
fndtn-api), signed by the backend's current key through POST /_test/sign,
valid for an hour; one per line into FILE (bench/guard.sh's first-seen run)."""
import sys
import time
import uuid

import requests

backend, issuer, n, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
now = int(time.time())
session = requests.Session()
with open(path, "w") as out:
    for _ in range(n):
        claims = {"iss": issuer, "sub": "7d0c5a8e-0000-4000-8000-00000000a11c", "typ": "Bearer",
                  "azp": "fndtn-web", "aud": ["fndtn-api", "account"], "iat": now, "exp": now + 3600,
                  "jti": str(uuid.uuid4()), "preferred_username": "alice", "email": "alice@acme.example",
                  "email_verified": True, "realm_access": {"roles": ["user"]}, "scope": "openid email profile"}
        answer = session.post(backend + "/_test/sign", json={"claims": claims})
        answer.raise_for_status()
        out.write(answer.json()["token"] + "\n")
