"""Reference FNDTN auth backend for tfauth's tests and demo.

A FastAPI application declaring the contract's request models, so that its
422 bodies are FastAPI's own, with Keycloak-like semantics held in memory:
seeded users, organisations and an admin role; refresh-token rotation; logout
revoking the session. Tokens are signed as Keycloak signs them: access and ID
tokens are JWS with the realm's asymmetric key (RS256, `kid` in the header),
refresh tokens HMAC (HS256). The realm "fndtn" is served at Keycloak's paths:
  GET /realms/fndtn/.well-known/openid-configuration   discovery (jwks_uri)
  GET /realms/fndtn/protocol/openid-connect/certs      the JWKS
Each listener answers them with its own base URL (issuer = BASE/realms/fndtn);
tokens always carry the main listener's issuer.

Test control lives under /_test (never part of the contract):
  POST /_test/reset             fresh users, sessions and request log
  GET  /_test/requests          every request received, as the server saw it
  POST /_test/script            the next `times` requests to `path` get a canned
                                answer: status, body, content_type, headers,
                                delay_ms; faults: close_after_bytes,
                                stall_body_ms, chunked, close_without_answer;
                                listener (only on that listener); echo: a field
                                of the request's JSON body spelt into the answer
                                (see echoed())
  POST /_test/config            access_ttl / refresh_ttl in seconds; refresh_delay_ms:
                                the real refresh's answer, made, is sent that much later
  GET  /_test/resets            the password resets recorded
  POST /_test/sign              {claims, alg ("RS256"), kid?, header?} -> {"token"}:
                                the claims signed with the current key of alg
                                (or the key named by kid); header members are
                                merged over {"alg", "typ": "JWT", "kid"} (null
                                removes one) and never change the key or the
                                algorithm that signs. The claims (any JSON
                                value) are taken as given: no iss/exp added.
  POST /_test/keys/rotate       {alg ("RS256"), retire (false)} -> {"kid"}: a new
                                key for alg, first in the JWKS and signing from
                                now on; the old ones stay (retire: removed)
  POST /_test/reset also restores the initial keys (made once at start: RS256,
  ES256, EdDSA for signing, and an RSA-OAEP "enc" key, as Keycloak lists one).

One process serves several listeners sharing the same state, each on its own
free port of 127.0.0.1; every recorded request names its "listener":
  main       plain HTTP, the backend proper
  other      plain HTTP, a second origin (e.g. a redirect target that must not
             be followed)
  and, only with --tls-dir DIR (made by spec/support/make-certs.sh):
  tls        HTTPS, server.pem (localhost, 127.0.0.1)
  mtls       HTTPS, server.pem, requires a client certificate signed by ca.pem
  wronghost  HTTPS, wronghost.pem (wrong.example only: a hostname mismatch)

Run: /usr/bin/python3 backend.py --port-file FILE [--tls-dir DIR]
The port file, written (atomically) once every listener accepts, is a JSON
object: {"main": PORT, "other": PORT[, "tls": PORT, "mtls": PORT,
"wronghost": PORT]}.
"""
import argparse
import asyncio
import base64
import copy
import datetime
import hashlib
import html
import json
import os
import signal
import socket
import ssl
import time
import urllib.parse
import uuid
from typing import Optional

import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

SECRET = "reference-backend-signing-key"  # test-only HS256 key, refresh tokens only
REALM = "fndtn"
REALM_PATH = "/realms/" + REALM
BASES = {"main": "http://127.0.0.1"}  # listener -> its base URL, set once they listen


def issuer(listener="main"):
    return BASES.get(listener, BASES["main"]) + REALM_PATH

SEED_USERS = {
    "alice": {"id": "7d0c5a8e-0000-4000-8000-00000000a11c", "password": "alice-Secret-1",
              "orgs": ["acme"], "roles": ["user"], "email": "alice@example.com",
              "email_verified": True, "client_roles": ["reader"]},
    "bob": {"id": "7d0c5a8e-0000-4000-8000-000000000b0b", "password": "bob-Secret-2",
            "orgs": ["globex"], "roles": ["user"], "email": "bob@example.com",
            "email_verified": False, "client_roles": []},
    "admin": {"id": "7d0c5a8e-0000-4000-8000-0000000ad311", "password": "admin-Secret-3",
              "orgs": ["acme"], "roles": ["user", "admin"], "email": "admin@example.com",
              "email_verified": True, "client_roles": ["reader", "editor"]},
}
CLIENT = "fndtn-web"    # azp: the client the users log in with
API = "fndtn-api"       # the audience of access tokens, with Keycloak's "account"


# ---- the realm's keys ----------------------------------------------------------------
def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n, size=None):
    return b64url(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


CURVES = {"ES256": (ec.SECP256R1, "P-256", 32), "ES384": (ec.SECP384R1, "P-384", 48),
          "ES512": (ec.SECP521R1, "P-521", 66)}
RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
SIGNING_ALGS = RSA_ALGS + tuple(CURVES) + ("EdDSA",)


def self_signed(private):
    """A certificate for the key, as Keycloak puts in x5c (never to be trusted from there)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, REALM)])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(private, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


class Key:
    """One realm key: its kid, alg, private key and public JWK."""

    def __init__(self, alg, use="sig"):
        self.alg, self.use = alg, use
        self.kid = b64url(os.urandom(32))  # Keycloak's kids look like this
        jwk = {"kid": self.kid, "alg": alg, "use": use}
        if alg in CURVES:
            curve, crv, size = CURVES[alg]
            self.private = ec.generate_private_key(curve())
            numbers = self.private.public_key().public_numbers()
            jwk.update(kty="EC", crv=crv, x=uint(numbers.x, size), y=uint(numbers.y, size))
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)
            jwk.update(kty="OKP", crv="Ed25519", x=b64url(raw))
        else:  # RSA: the signing algorithms and Keycloak's RSA-OAEP encryption key
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            numbers = self.private.public_key().public_numbers()
            der = self_signed(self.private)
            jwk.update(kty="RSA", n=uint(numbers.n), e=uint(numbers.e),
                       x5c=[base64.b64encode(der).decode()],
                       x5t=b64url(hashlib.sha1(der).digest()),
                       **{"x5t#S256": b64url(hashlib.sha256(der).digest())})
        self.public = self.private.public_key()
        self.jwk = jwk


INITIAL_KEYS = []  # made once (RSA generation is slow), restored by every reset


def initial_keys():
    if not INITIAL_KEYS:
        INITIAL_KEYS.extend([Key("RS256"), Key("ES256"), Key("EdDSA"), Key("RSA-OAEP", "enc")])
    return list(INITIAL_KEYS)


def signing_key(alg, kid=None):
    """The key that signs: kid's, or the newest of alg (made on first use for a new alg)."""
    for key in STATE.keys:
        if (key.kid == kid) if kid else (key.alg == alg and key.use == "sig"):
            return key
    if kid:
        return None
    key = Key(alg)
    STATE.keys.append(key)
    return key


class State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.users = copy.deepcopy(SEED_USERS)
        self.sessions = {}  # sid -> {"user", "refresh_jti", "active"}
        self.requests = []
        self.scripts = {}  # path -> list of canned answers
        self.resets = []
        self.access_ttl = 300
        self.refresh_ttl = 1800
        self.refresh_delay_ms = 0
        self.keys = initial_keys()  # newest first, as the JWKS lists them


STATE = State()


# ---- the contract's request models ------------------------------------------------
class UserCredentials(BaseModel):
    user: str
    password: str
    remember_me: bool = False


class RefreshToken(BaseModel):
    refresh_token: str


class ChangePassword(BaseModel):
    current_password: str = Field(..., min_length=1)
    new_password: str = Field(..., min_length=8)


class AdminChangePassword(BaseModel):
    new_password: str = Field(..., min_length=8)


# ---- tokens -------------------------------------------------------------------------
ALGORITHMS = jwt.algorithms.get_default_algorithms()


def sign(claims, alg="RS256", kid=None, header=None):
    """A JWS of the claims (any JSON value) with the realm's key, as Keycloak
    signs access and ID tokens. header members are merged over the usual ones
    (None removes one) and are not interpreted: the key's alg signs whatever
    the header says, so tests can mint mismatched tokens."""
    key = signing_key(alg, kid)
    if key is None:
        return None
    fields = {"alg": key.alg, "typ": "JWT", "kid": key.kid, **(header or {})}
    fields = {k: v for k, v in fields.items() if v is not None}
    compact = lambda value: b64url(json.dumps(value, separators=(",", ":")).encode())
    signing_input = (compact(fields) + "." + compact(claims)).encode()
    return signing_input.decode() + "." + b64url(ALGORITHMS[key.alg].sign(signing_input, key.private))


def issue_tokens(username, sid):
    user = STATE.users[username]
    now = int(time.time())
    jti = str(uuid.uuid4())
    STATE.sessions[sid]["refresh_jti"] = jti
    common = {"iss": issuer(), "sub": user["id"], "sid": sid, "iat": now, "azp": CLIENT,
              "preferred_username": username, "email": user["email"],
              "email_verified": user["email_verified"]}
    access = sign({**common, "typ": "Bearer", "exp": now + STATE.access_ttl,
                   "jti": str(uuid.uuid4()), "aud": [API, "account"], "orgs": user["orgs"],
                   "realm_access": {"roles": user["roles"]},
                   "resource_access": {API: {"roles": user["client_roles"]}},
                   "scope": "openid email profile"})
    refresh = jwt.encode({**common, "typ": "Refresh", "exp": now + STATE.refresh_ttl, "jti": jti,
                          "aud": issuer()}, SECRET, algorithm="HS256")
    id_token = sign({**common, "typ": "ID", "exp": now + STATE.access_ttl,
                     "jti": str(uuid.uuid4()), "aud": CLIENT, "auth_time": now})
    return {
        "access_token": access,
        "expires_in": STATE.access_ttl,
        "refresh_expires_in": STATE.refresh_ttl,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "id_token": id_token,
        "not-before-policy": 0,
        "session_state": sid,
        "scope": "openid email profile",
    }


def invalid_grant(description):
    return JSONResponse(status_code=400,
                        content={"error": "invalid_grant", "error_description": description})


def verified_claims(token, typ):
    """Refresh tokens: HS256 with the backend's secret; the rest: the realm's keys by kid."""
    if typ == "Refresh":
        return jwt.decode(token, SECRET, algorithms=["HS256"], audience=issuer())
    kid = jwt.get_unverified_header(token).get("kid")
    key = next((k for k in STATE.keys if k.kid == kid and k.use == "sig"), None)
    if key is None:
        raise jwt.InvalidTokenError("unknown kid")
    return jwt.decode(token, key.public, algorithms=[key.alg], issuer=issuer(), audience=API)


def decode(token, typ):
    try:
        claims = verified_claims(token, typ)
    except jwt.ExpiredSignatureError:
        return None, "Token is not active"
    except jwt.PyJWTError:
        return None, "Invalid token"
    if claims.get("typ") != typ:
        return None, "Invalid token type"
    session = STATE.sessions.get(claims.get("sid"))
    if not session or not session["active"]:
        return None, "Session not active"
    return claims, None


def bearer_claims(authorization: Optional[str] = Header(None)):
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="Not authenticated",
                            headers={"WWW-Authenticate": "Bearer"})
    claims, problem = decode(authorization[len("Bearer "):], "Bearer")
    if claims is None:
        raise HTTPException(status_code=401, detail=problem, headers={"WWW-Authenticate": "Bearer"})
    return claims


def user_by_id(user_id):
    for name, user in STATE.users.items():
        if user["id"] == user_id:
            return name, user
    return None, None


app = FastAPI(title="FNDTN Backend (tfauth reference)")


# ---- the contract's operations ----------------------------------------------------------
@app.post("/api/iam/login")
def login(body: UserCredentials):
    user = STATE.users.get(body.user)
    if not user or user["password"] != body.password:
        raise HTTPException(status_code=401, detail="Invalid user credentials")
    sid = str(uuid.uuid4())
    STATE.sessions[sid] = {"user": body.user, "refresh_jti": None, "active": True,
                           "remember_me": body.remember_me}
    return issue_tokens(body.user, sid)


@app.post("/api/iam/refresh")
def refresh(body: RefreshToken):
    claims, problem = decode(body.refresh_token, "Refresh")
    if claims is None:
        return invalid_grant(problem)
    session = STATE.sessions[claims["sid"]]
    if claims["jti"] != session["refresh_jti"]:
        return invalid_grant("Token is not active (already used)")
    answer = issue_tokens(session["user"], claims["sid"])
    if STATE.refresh_delay_ms:  # the answer made, then held back: a sync endpoint, one thread waits
        time.sleep(STATE.refresh_delay_ms / 1000)
    return answer


@app.post("/api/iam/logout")
def logout(body: RefreshToken):
    claims, problem = decode(body.refresh_token, "Refresh")
    if claims is None:
        return invalid_grant(problem)
    STATE.sessions[claims["sid"]]["active"] = False
    return {}


@app.post("/api/iam/password/reset")
def reset_password(username: str = Query(...)):
    if username not in STATE.users:
        raise HTTPException(status_code=404, detail="User not found")
    STATE.resets.append(username)
    return {}


@app.post("/api/iam/password/change")
def change_password(body: ChangePassword, x_org: str = Header(...),
                    x_org_override: Optional[str] = Header(None),
                    claims: dict = Depends(bearer_claims)):
    username = claims["preferred_username"]
    user = STATE.users[username]
    if x_org not in user["orgs"]:
        raise HTTPException(status_code=403, detail="Not a member of this organisation")
    if user["password"] != body.current_password:
        raise HTTPException(status_code=400, detail="Invalid current password")
    if len(body.new_password) < 8:  # Keycloak's password policy: its 422
        raise HTTPException(status_code=422, detail="Password policy not met: at least 8 characters")
    user["password"] = body.new_password
    return {}


@app.post("/api/iam/admin/user/{user_id}/password")
def admin_change_password(user_id: str, body: AdminChangePassword, x_org: str = Header(...),
                          x_org_override: Optional[str] = Header(None),
                          claims: dict = Depends(bearer_claims)):
    admin = STATE.users[claims["preferred_username"]]
    if "admin" not in admin["roles"] or x_org not in admin["orgs"]:
        raise HTTPException(status_code=403, detail="Admin role required in this organisation")
    _, target = user_by_id(user_id)
    if target is None or x_org not in target["orgs"]:
        raise HTTPException(status_code=404, detail="User not found")
    target["password"] = body.new_password
    return {}


# ---- the realm, at Keycloak's paths ---------------------------------------------------------
@app.get(REALM_PATH + "/.well-known/openid-configuration")
def discovery(request: Request):
    iss = issuer(request.scope.get("tfauth.listener", "main"))
    oidc = iss + "/protocol/openid-connect"
    return {
        "issuer": iss,
        "authorization_endpoint": oidc + "/auth",
        "token_endpoint": oidc + "/token",
        "introspection_endpoint": oidc + "/token/introspect",
        "userinfo_endpoint": oidc + "/userinfo",
        "end_session_endpoint": oidc + "/logout",
        "jwks_uri": oidc + "/certs",
        "grant_types_supported": ["authorization_code", "refresh_token", "password"],
        "response_types_supported": ["code", "id_token", "code id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGS),
        "scopes_supported": ["openid", "email", "profile"],
    }


@app.get(REALM_PATH + "/protocol/openid-connect/certs")
def certs():
    return JSONResponse({"keys": [key.jwk for key in STATE.keys]},
                        headers={"Cache-Control": "no-cache"})


# ---- test control -------------------------------------------------------------------------
@app.post("/_test/sign")
async def test_sign(request: Request):
    spec = await request.json()
    alg = spec.get("alg", "RS256")
    if alg not in SIGNING_ALGS:
        raise HTTPException(status_code=400, detail="alg must be one of " + ", ".join(SIGNING_ALGS))
    token = sign(spec.get("claims", {}), alg, spec.get("kid"), spec.get("header"))
    if token is None:
        raise HTTPException(status_code=404, detail="no such kid")
    return {"token": token}


@app.post("/_test/keys/rotate")
async def test_rotate(request: Request):
    spec = await request.json() if await request.body() else {}
    alg = spec.get("alg", "RS256")
    if alg not in SIGNING_ALGS:
        raise HTTPException(status_code=400, detail="alg must be one of " + ", ".join(SIGNING_ALGS))
    key = Key(alg)
    if spec.get("retire"):
        STATE.keys = [k for k in STATE.keys if k.alg != alg or k.use != "sig"]
    STATE.keys.insert(0, key)
    return {"kid": key.kid}


@app.post("/_test/reset")
def test_reset():
    STATE.reset()
    return {}


@app.get("/_test/requests")
def test_requests():
    return STATE.requests


@app.get("/_test/resets")
def test_resets():
    return STATE.resets


@app.post("/_test/script")
async def test_script(request: Request):
    answer = await request.json()
    STATE.scripts.setdefault(answer["path"], []).extend([answer] * int(answer.get("times", 1)))
    return {}


@app.post("/_test/config")
async def test_config(request: Request):
    config = await request.json()
    STATE.access_ttl = int(config.get("access_ttl", STATE.access_ttl))
    STATE.refresh_ttl = int(config.get("refresh_ttl", STATE.refresh_ttl))
    STATE.refresh_delay_ms = int(config.get("refresh_delay_ms", STATE.refresh_delay_ms))
    return {}


# ---- recording and canned answers (plain ASGI, so the body is seen exactly) ----------------
STOPPING = None  # asyncio.Event, set when the backend is asked to stop


async def pause(seconds):
    """Sleeps, or less if the backend is stopping."""
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(STOPPING.wait(), seconds)
    except asyncio.TimeoutError:
        pass


async def drop_connection(send):
    """Closes the client connection at once, whatever was (not) sent on it.

    uvicorn (0.17, h11) answers 500 itself when the app fails before starting
    its response, so closing without any answer needs the transport: `send`
    is the bound method of uvicorn's RequestResponseCycle. Marking the cycle
    disconnected keeps uvicorn from answering or logging anything more.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not uvicorn's h11 cycle: fail, the server drops the rest
        raise ConnectionAbortedError("scripted connection drop")
    transport.close()  # flushes what was written, then FIN (close_notify on TLS)
    cycle.disconnected = True


def echoed(answer, request_body):
    """An answer that echoes a field of the request, as careless servers do.

    answer["echo"] names a field of the request's JSON body (its value: "" if
    absent); in answer["body"], {raw}, {json} (JSON-escaped, UTF-8 kept),
    {json_ascii} (\\uXXXX for all but ASCII), {percent} (%XX), {form} (+ for
    a space) and {html} (&lt; &quot; &#x27;) become that value so spelt. With
    echo_in = "detail", the result is FastAPI's {"detail": ...} JSON text.
    """
    if "echo" not in answer:
        return answer
    try:
        value = str(json.loads(request_body or b"{}").get(answer["echo"], ""))
    except ValueError:
        value = ""
    forms = {"raw": value, "json": json.dumps(value, ensure_ascii=False)[1:-1],
             "json_ascii": json.dumps(value)[1:-1], "percent": urllib.parse.quote(value, safe=""),
             "form": urllib.parse.quote_plus(value), "html": html.escape(value, quote=True)}
    text = answer.get("body", "")
    for name, spelt in forms.items():
        text = text.replace("{" + name + "}", spelt)
    answer = dict(answer, body=json.dumps({"detail": text}) if answer.get("echo_in") == "detail" else text)
    return answer


async def play(answer, send):
    """Sends a canned answer, fault injection included.

    status (200), body (""), content_type ("application/json"), headers ({}),
    delay_ms (0: wait before answering) as ever, and optionally:
      close_without_answer: true   read the request, close without any answer
      close_after_bytes: N         Content-Length of the whole body, then only
                                   its first N bytes, then close the connection
      stall_body_ms: M             first half of the body, M ms pause, the rest
      chunked: true                no Content-Length; the body in several
                                   pieces (Transfer-Encoding: chunked)
    The body faults combine (the pieces are cut from what is sent).
    """
    await pause(answer.get("delay_ms", 0) / 1000)
    if answer.get("close_without_answer"):
        return await drop_connection(send)
    body = answer.get("body", "").encode()
    chunked = bool(answer.get("chunked"))
    headers = [(b"content-type", answer.get("content_type", "application/json").encode())]
    if not chunked:
        headers.append((b"content-length", str(len(body)).encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in answer.get("headers", {}).items()]
    await send({"type": "http.response.start", "status": answer.get("status", 200),
                "headers": headers})
    cut = answer.get("close_after_bytes")
    sent = body if cut is None else body[:int(cut)]
    stall = answer.get("stall_body_ms", 0) / 1000
    half = len(sent) // 2
    bounds = {len(sent)}
    if chunked:
        bounds |= {len(sent) * i // 4 for i in (1, 2, 3)}
    if stall:
        bounds.add(half)
    pieces, begin = [], 0
    for end in sorted(bounds):
        pieces.append((sent[begin:end], stall and end == half))
        begin = end
    for i, (piece, stalled) in enumerate(pieces):
        more = cut is not None or i < len(pieces) - 1
        if piece or not more:
            await send({"type": "http.response.body", "body": piece, "more_body": more})
        if stalled:
            await pause(stall)
    if cut is not None:
        await drop_connection(send)


class Recorder:
    def __init__(self, inner, name="main"):
        self.inner = inner
        self.name = name

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        scope["tfauth.listener"] = self.name
        if not path.startswith("/_test"):
            STATE.requests.append({
                "listener": self.name,
                "method": scope["method"],
                "client_port": (scope.get("client") or ["", 0])[1],
                "path": path,
                "raw_path": scope.get("raw_path", path.encode()).decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
                "header_list": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "body": body.decode("utf-8", "replace"),
            })
            queue = STATE.scripts.get(path) or []
            for i, answer in enumerate(queue):
                if answer.get("listener") in (None, self.name):
                    return await play(echoed(queue.pop(i), body), send)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.inner(scope, replay, send)


# ---- listeners ------------------------------------------------------------------------------
def send_tls_handshake_alerts():
    """Makes a refused TLS handshake end with its alert, as real servers do.

    asyncio's SSLProtocol (3.11) drops the connection on a failed handshake
    without sending the alert OpenSSL wrote (e.g. "certificate required" when
    mtls gets no client certificate): the client would see a bare close, or
    under TLS 1.3, where the client sends its request before the server checks
    its certificate, an "empty reply". Flushing first restores the alert.
    """
    try:
        from asyncio.sslproto import SSLProtocol
    except ImportError:
        return
    original = getattr(SSLProtocol, "_on_handshake_complete", None)
    if original is None or not hasattr(SSLProtocol, "_process_outgoing"):
        return  # another asyncio: leave it be

    def on_handshake_complete(self, handshake_exc):
        if handshake_exc is not None:
            try:
                self._process_outgoing()
            except Exception:
                pass
        return original(self, handshake_exc)

    SSLProtocol._on_handshake_complete = on_handshake_complete


class Server(uvicorn.Server):
    def install_signal_handlers(self):
        pass  # serve() handles SIGINT/SIGTERM once, for every listener


def listening_socket(host):
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then
    # (without it every keep-alive answer waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


def listener_configs(tls_dir):
    """name -> uvicorn.Config keyword arguments (besides the app)."""
    configs = {"main": {"lifespan": "auto"}, "other": {}}
    if tls_dir:
        cert = {"ssl_certfile": os.path.join(tls_dir, "server.pem"),
                "ssl_keyfile": os.path.join(tls_dir, "server.key"),
                "ssl_ciphers": None}  # None: Python's defaults, not uvicorn's "TLSv1"
        configs["tls"] = dict(cert)
        configs["mtls"] = dict(cert, ssl_cert_reqs=ssl.CERT_REQUIRED,
                               ssl_ca_certs=os.path.join(tls_dir, "ca.pem"))
        configs["wronghost"] = dict(cert, ssl_certfile=os.path.join(tls_dir, "wronghost.pem"),
                                    ssl_keyfile=os.path.join(tls_dir, "wronghost.key"))
    return configs


async def serve(args):
    global STOPPING
    STOPPING = asyncio.Event()
    listeners = []
    for name, options in listener_configs(args.tls_dir).items():
        options = {"lifespan": "off", **options}
        config = uvicorn.Config(Recorder(app, name), log_level="warning", access_log=False,
                                **options)
        config.load()  # fail now on unreadable certificates
        listeners.append((name, Server(config), listening_socket(args.host)))
    servers = [server for _, server, _ in listeners]

    def force():
        for server in servers:
            server.force_exit = True

    def stop():
        STOPPING.set()  # scripted delays and stalls end now: exit at once, and quietly
        for server in servers:
            server.force_exit = server.should_exit
            server.should_exit = True
        # A TLS connection closes only once the peer answers close_notify (or
        # after asyncio's 30 s ssl_shutdown_timeout): never wait that long.
        loop.call_later(1.0, force)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for _, server, sock in listeners]
    while not all(server.started for server in servers):
        done = [task for task in tasks if task.done()]
        if done:
            stop()
            await asyncio.gather(*tasks)
            raise SystemExit("a listener failed to start")
        await asyncio.sleep(0.005)
    ports = {name: sock.getsockname()[1] for name, _, sock in listeners}
    for name, port in ports.items():
        scheme, host = ("http", args.host) if name in ("main", "other") else ("https", "localhost")
        BASES[name] = "%s://%s:%d" % (scheme, host, port)
    with open(args.port_file + ".tmp", "w") as f:
        json.dump(ports, f)
    os.rename(args.port_file + ".tmp", args.port_file)
    await asyncio.gather(*tasks)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls-dir", help="certificates made by spec/support/make-certs.sh")
    args = parser.parse_args()
    send_tls_handshake_alerts()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
