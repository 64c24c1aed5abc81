/* fetch.c: client:fetch, a GET of a JSON document at an absolute URL
 * through the client's transport: what tfauth reads rather than calls (a
 * JWKS, an OpenID discovery document).
 *
 * The answer goes through the operations' response mapper as a GET whose
 * 2xx body must be a JSON object: a non-2xx is an `http` error, a body that
 * is not JSON or is over max_response_bytes a `response` error, no answer
 * `network`, `timeout` or `tls`, with the client's TLS options and
 * timeouts. The document's reader decides when to try again: no retries.
 * Only Accept is sent: the client's http_headers, bearer and hooks are for
 * the auth API, not for whatever host the URL names. */
#include <string.h>
#include "check.h"
#include "transport.h"

tf_client *tf_fetch_request(lua_State *L, tf_op *op, tf_request *req) {
    const char *name;
    tf_client *c;
    lua_settop(L, 3);
    if (lua_isnil(L, 3)) {
        lua_pushliteral(L, "fetch");
        lua_replace(L, 3);
    }
    name = luaL_checkstring(L, 3);
    c = tf_usable_client(L, name, 1);
    tf_op_get(op, name);
    memset(req, 0, sizeof *req);
    req->op = op;
    req->url = tf_check_url(L, name, "url", 2);
    req->headers[0].name = "Accept";
    req->headers[0].value = "application/json";
    req->nheaders = 1;
    req->timeout_ms = c->timeout_ms;
    req->connect_timeout_ms = c->connect_timeout_ms;
    return c;
}

static int raise_with_attempts(lua_State *L) {
    lua_pushinteger(L, 1);
    lua_setfield(L, -2, "attempts");
    return lua_error(L);
}

/* client:fetch(url[, name]) -> the decoded JSON object, the body as sent.
 * name (default "fetch") is the errors' `operation`. */
static int client_fetch(lua_State *L) {
    tf_op op;
    tf_request req;
    tf_client *c = tf_fetch_request(L, &op, &req);
    const tf_response *res;
    const char *body;

    c->busy = 1;
    res = tf_transport_perform(c->transport, &req, c->max_response_bytes);
    c->busy = 0;
    if (res->failed) {
        tf_map_failure(L, &req, res);
        return raise_with_attempts(L);
    }
    body = res->body.data ? res->body.data : "";
    if (!tf_map_response(L, &req, res->status, res->reason, 0, &res->headers, body, res->body.len,
                         res->truncated))
        return raise_with_attempts(L);
    lua_pushlstring(L, body, res->body.len);
    return 2;
}

void tf_open_fetch(lua_State *L, int module) {
    (void)module;
    luaL_getmetatable(L, TF_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, client_fetch);
    lua_setfield(L, -2, "fetch");
    lua_pop(L, 2);
}
