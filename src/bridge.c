/* bridge.c: the request and the response apart, for transports written in
 * Lua (tfauth.openresty): client:prepare and client:prepare_fetch give the
 * request libcurl would send, as a table; client:map turns the answer into
 * the result or the error a libcurl call gives; core.retry_wait is the
 * libcurl path's retry decision. One file, so that both paths stay one. */
#include <ctype.h>
#include <string.h>
#include "retry.h"

static const tf_op *check_op(lua_State *L, int idx) {
    const char *name = luaL_checkstring(L, idx);
    const tf_op *op = tf_op_find(name);
    if (!op) tf_argerror(L, NULL, "operation", "'%s' is not an operation", name);
    return op;
}

static void push_retry(lua_State *L, const tf_retry *r) {
    lua_createtable(L, 0, 6);
#define TF_PUSH_FIELD(type, name) lua_pushnumber(L, (lua_Number)r->name); lua_setfield(L, -2, #name);
    TF_RETRY_FIELDS(TF_PUSH_FIELD)
#undef TF_PUSH_FIELD
}

/* Pushes the request as a table: operation, method, url, headers (name ->
 * value, User-Agent included: libcurl sends it as an option, a Lua transport
 * as a header), body, timeout_ms, connect_timeout_ms, secrets (what map must
 * redact) and, when asked, retry. */
static void push_request(lua_State *L, const tf_client *c, const tf_request *req, int with_retry) {
    size_t i;
    lua_createtable(L, 0, 9);
    lua_pushstring(L, req->op->name);
    lua_setfield(L, -2, "operation");
    lua_pushstring(L, req->op->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->url);
    lua_setfield(L, -2, "url");
    if (req->body) {
        lua_pushlstring(L, req->body, req->body_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushinteger(L, req->timeout_ms);
    lua_setfield(L, -2, "timeout_ms");
    lua_pushinteger(L, req->connect_timeout_ms);
    lua_setfield(L, -2, "connect_timeout_ms");
    lua_createtable(L, 0, (int)req->nheaders + 1);
    lua_pushstring(L, c->user_agent);
    lua_setfield(L, -2, "User-Agent");
    for (i = 0; i < req->nheaders; i++) {
        lua_pushstring(L, req->headers[i].value);
        lua_setfield(L, -2, req->headers[i].name);
    }
    lua_setfield(L, -2, "headers");
    lua_createtable(L, req->nsecrets, 0);
    for (i = 0; i < (size_t)req->nsecrets; i++) {
        lua_pushlstring(L, req->secrets[i].ptr, req->secrets[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "secrets");
    if (with_retry) {
        push_retry(L, &req->retry);
        lua_setfield(L, -2, "retry");
    }
}

/* client:prepare(operation, params[, overrides]) -> the request as a table
 * (push_request, with retry). Nothing is sent. */
static int client_prepare(lua_State *L) {
    tf_client *c = tf_check_client(L);
    const tf_op *op = check_op(L, 2);
    tf_request req;
    lua_settop(L, 4);
    tf_usable_client(L, op->name, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->config_ref);
    tf_prepare(L, c, lua_gettop(L), op, 3, 4, &req);
    push_request(L, c, &req, 1);
    return 1;
}

/* client:prepare_fetch(url[, name]) -> the request client:fetch would send
 * (method "GET", no body, no retry); the answer goes to client:map. */
static int client_prepare_fetch(lua_State *L) {
    tf_op op;
    tf_request req;
    tf_client *c = tf_fetch_request(L, &op, &req);
    push_request(L, c, &req, 0);
    return 1;
}

/* core.retry_wait(retry, retries, elapsed_ms, kind, status, retry_after):
 * for transports written in Lua, the libcurl path's retry decision.
 * `retry` is a prepared request's; kind is nil (a response with `status`)
 * or "timeout"/"network"/"tls". Returns the milliseconds to wait, or nil. */
static int retry_wait(lua_State *L) {
    static const char *const kinds[] = {"timeout", "network", "tls", NULL};
    static const tf_kind kind_of[] = {TF_TIMEOUT, TF_NETWORK, TF_TLS};
    tf_retry r;
    int failed = !lua_isnoneornil(L, 4);
    tf_kind kind = failed ? kind_of[luaL_checkoption(L, 4, NULL, kinds)] : TF_HTTP;
    long wait;
    luaL_checktype(L, 1, LUA_TTABLE);
    memset(&r, 0, sizeof r);
#define TF_READ_FIELD(type, name) lua_getfield(L, 1, #name); r.name = (type)lua_tonumber(L, -1); lua_pop(L, 1);
    TF_RETRY_FIELDS(TF_READ_FIELD)
#undef TF_READ_FIELD
    if (!tf_retry_wanted(&r, failed, kind, (long)luaL_optinteger(L, 5, 0))) return 0;
    wait = tf_retry_wait_ms(&r, (int)luaL_checkinteger(L, 2), luaL_checknumber(L, 3),
                            luaL_optstring(L, 6, NULL));
    if (wait < 0) return 0;
    lua_pushinteger(L, wait);
    return 1;
}

/* With a header name and value on top, sets headers[lower(name)] = value;
 * a list of values (as nginx gives repeated headers) is joined with ", ". */
static void push_lower_header(lua_State *L, int headers) {
    size_t n, i;
    const char *name = lua_tolstring(L, -2, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) luaL_addchar(&b, (char)tolower((unsigned char)name[i]));
    luaL_pushresult(&b);
    if (lua_istable(L, -2)) {
        lua_getglobal(L, "table");
        lua_getfield(L, -1, "concat");
        lua_pushvalue(L, -4);
        lua_pushliteral(L, ", ");
        lua_call(L, 2, 1);
        lua_remove(L, -2);
    } else if (lua_isstring(L, -2)) {
        lua_pushvalue(L, -2);
    } else {
        lua_pop(L, 1);
        return;
    }
    lua_rawset(L, headers);
}

/* client:map(request, status, headers, body) -> the result, or raises the
 * error, exactly as a call through libcurl would. Header names may be in
 * any case; the body is capped at max_response_bytes. The request is from
 * client:prepare, or from client:prepare_fetch (method GET). */
static int client_map(lua_State *L) {
    tf_client *c = tf_check_client(L);
    tf_op get;
    tf_request req;
    long status;
    size_t len;
    const char *body;
    int i, headers, ok;

    luaL_checktype(L, 2, LUA_TTABLE);
    memset(&req, 0, sizeof req);
    lua_getfield(L, 2, "method");
    lua_getfield(L, 2, "operation");
    if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "GET") == 0) {
        tf_op_get(&get, luaL_checkstring(L, -1)); /* from client:prepare_fetch */
        req.op = &get;
    } else {
        req.op = check_op(L, -1);
    }
    lua_getfield(L, 2, "url"); /* stays referenced by the request table */
    req.url = lua_tostring(L, -1);
    status = (long)luaL_checkinteger(L, 3);
    body = luaL_optlstring(L, 5, "", &len);
    lua_getfield(L, 2, "secrets");
    for (i = 1; lua_istable(L, -1) && req.nsecrets < TF_MAX_SECRETS; i++) {
        lua_rawgeti(L, -1, i); /* stays referenced by the request table */
        if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); break; }
        req.secrets[req.nsecrets].ptr = lua_tolstring(L, -1, &req.secrets[req.nsecrets].len);
        req.nsecrets++;
        lua_pop(L, 1);
    }
    lua_newtable(L); /* the headers, names lower-cased */
    headers = lua_gettop(L);
    if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            if (lua_type(L, -2) == LUA_TSTRING) push_lower_header(L, headers);
            lua_pop(L, 1);
        }
    }
    ok = tf_map_response(L, &req, status, NULL, headers, NULL, body,
                         len > c->max_response_bytes ? c->max_response_bytes : len,
                         len > c->max_response_bytes);
    if (!ok) {
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "attempts");
    }
    return ok ? 1 : lua_error(L);
}

void tf_open_bridge(lua_State *L, int module) {
    luaL_getmetatable(L, TF_CLIENT_MT);
    lua_getfield(L, -1, "__index");
    lua_pushcfunction(L, client_prepare);
    lua_setfield(L, -2, "prepare");
    lua_pushcfunction(L, client_prepare_fetch);
    lua_setfield(L, -2, "prepare_fetch");
    lua_pushcfunction(L, client_map);
    lua_setfield(L, -2, "map");
    lua_pop(L, 2);
    lua_pushcfunction(L, retry_wait);
    lua_setfield(L, module, "retry_wait");
}
