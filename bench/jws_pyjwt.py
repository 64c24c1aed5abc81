"""jws_pyjwt.py PUBKEY.pem TOKEN_FILE ALG N: N calls of PyJWT's jwt.decode on
one token with the same checks as bench/jws_verify.lua (signature, exp,
issuer, audience; typ compared by hand, as PyJWT has no option for it), the
key loaded once. Prints "verifications_per_second"."""
import sys
import time

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

pem, token_file, alg, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
key = load_pem_public_key(open(pem, "rb").read())
token = open(token_file).read().strip()


def verify():
    claims = jwt.decode(token, key, algorithms=[alg], audience="fndtn-api",
                        issuer="https://kc.example/realms/fndtn", options={"require": ["exp"]})
    assert claims["typ"] == "Bearer"


for _ in range(200):
    verify()
start = time.perf_counter()
for _ in range(n):
    verify()
print("%.0f" % (n / (time.perf_counter() - start)))
