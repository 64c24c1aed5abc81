"""Reference FNDTN auth backend for tfauth's tests and demo.

A FastAPI application declaring the contract's request models, so that its
422 bodies are FastAPI's own, with Keycloak-like semantics held in memory:
seeded users, organisations and an admin role; signed JWT access and refresh
tokens; refresh-token rotation; logout revoking the session.

Test control lives under /_test (never part of the contract):
  POST /_test/reset             fresh users, sessions and request log
  GET  /_test/requests          every request received, as the server saw it
  POST /_test/script            the next `times` requests to `path` get a canned
                                answer: status, body, content_type, headers,
                                delay_ms
  POST /_test/config            access_ttl / refresh_ttl in seconds
  GET  /_test/resets            the password resets recorded

Run: /usr/bin/python3 backend.py --port-file FILE  (binds 127.0.0.1:0)
"""
import argparse
import asyncio
import copy
import socket
import time
import uuid
from typing import Optional

import jwt
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

SECRET = "reference-backend-signing-key"  # test-only HS256 key
ISSUER = "http://127.0.0.1/realms/fndtn"

SEED_USERS = {
    "alice": {"id": "7d0c5a8e-0000-4000-8000-00000000a11c", "password": "alice-Secret-1",
              "orgs": ["acme"], "roles": ["user"]},
    "bob": {"id": "7d0c5a8e-0000-4000-8000-000000000b0b", "password": "bob-Secret-2",
            "orgs": ["globex"], "roles": ["user"]},
    "admin": {"id": "7d0c5a8e-0000-4000-8000-0000000ad311", "password": "admin-Secret-3",
              "orgs": ["acme"], "roles": ["user", "admin"]},
}


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
def _sign(claims):
    return jwt.encode(claims, SECRET, algorithm="HS256")


def issue_tokens(username, sid):
    user = STATE.users[username]
    now = int(time.time())
    jti = str(uuid.uuid4())
    STATE.sessions[sid]["refresh_jti"] = jti
    common = {"iss": ISSUER, "sub": user["id"], "sid": sid, "iat": now,
              "preferred_username": username}
    access = _sign({**common, "typ": "Bearer", "exp": now + STATE.access_ttl,
                    "jti": str(uuid.uuid4()), "orgs": user["orgs"],
                    "realm_access": {"roles": user["roles"]}, "scope": "openid email profile"})
    refresh = _sign({**common, "typ": "Refresh", "exp": now + STATE.refresh_ttl, "jti": jti})
    id_token = _sign({**common, "typ": "ID", "exp": now + STATE.access_ttl, "aud": "fndtn"})
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


def decode(token, typ):
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
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
    return issue_tokens(session["user"], claims["sid"])


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


# ---- test control -------------------------------------------------------------------------
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
    return {}


# ---- recording and canned answers (plain ASGI, so the body is seen exactly) ----------------
async def play(answer, send):
    await asyncio.sleep(answer.get("delay_ms", 0) / 1000)
    body = answer.get("body", "").encode()
    headers = [(b"content-type", answer.get("content_type", "application/json").encode()),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in answer.get("headers", {}).items()]
    await send({"type": "http.response.start", "status": answer.get("status", 200),
                "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Recorder:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        if not path.startswith("/_test"):
            STATE.requests.append({
                "method": scope["method"],
                "client_port": (scope.get("client") or ["", 0])[1],
                "path": path,
                "raw_path": scope.get("raw_path", path.encode()).decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
                "header_list": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "body": body.decode("utf-8", "replace"),
            })
            queue = STATE.scripts.get(path)
            if queue:
                return await play(queue.pop(0), send)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.inner(scope, replay, send)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then
    # (without it every keep-alive answer waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, 0))
    config = uvicorn.Config(Recorder(app), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
