/* client.c: the client userdata: configuration, the operation methods, close.
 *
 * One metatable, registered here, with __gc, __close, __tostring and an
 * __index table holding a method per operation name and alias. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "check.h"
#include "retry.h"
#include "transport.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RESPONSE 1048576L
#define MAX_TIMEOUT_MS 86400000L
#define MAX_RESPONSE_LIMIT (256L * 1048576L)

static const char *const config_keys[] = {
    "server_url", "bearer", "timeout_ms", "connect_timeout_ms", "retries", "http_headers",
    "user_agent", "tls", "proxy", "max_response_bytes", "debug", "before_request", "after_success",
    "after_error", NULL};
static const char *const function_keys[] = {"debug", "before_request", "after_success",
                                            "after_error", NULL};
static const char *const tls_keys[] = {"verify", "ca_file", "ca_path", "cert", "key", NULL};

static tf_client *check_client(lua_State *L) {
    return (tf_client *)luaL_checkudata(L, 1, TF_CLIENT_MT);
}

/* ---- configuration ------------------------------------------------------------------ */

/* Field `name` of the table at t, pushed; nil becomes getenv(env) if set. */
static void get_or_env(lua_State *L, int t, const char *name, const char *env) {
    const char *value;
    lua_getfield(L, t, name);
    if (lua_isnil(L, -1) && env && (value = getenv(env)) && *value) {
        lua_pop(L, 1);
        lua_pushstring(L, value);
    }
}

static const char *opt_text(lua_State *L, const char *op, int t, const char *name,
                            const char *label) {
    lua_getfield(L, t, name);
    return lua_isnil(L, -1) ? NULL : tf_check_text(L, op, label, -1, TF_TEXT_HEADER, NULL);
}

static long opt_positive(lua_State *L, const char *op, int t, const char *name, long dflt,
                         long max) {
    long v = dflt;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) v = tf_check_positive(L, op, name, -1, max);
    lua_pop(L, 1);
    return v;
}

static void check_tls(lua_State *L, const char *op, int cfg, tf_transport_config *tc) {
    int t;
    tc->tls_verify = 1;
    lua_getfield(L, cfg, "tls");
    if (lua_isnil(L, -1)) return;
    if (!lua_istable(L, -1)) tf_argerror(L, op, "tls", "expected a table, got %s", tf_type_name(L, -1));
    t = lua_gettop(L);
    tf_check_keys(L, op, "tls field", "tls", t, tls_keys);
    lua_getfield(L, t, "verify");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        tf_argerror(L, op, "tls.verify", "expected a boolean, got %s", tf_type_name(L, -1));
    tc->tls_verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
    tc->ca_file = opt_text(L, op, t, "ca_file", "tls.ca_file");
    tc->ca_path = opt_text(L, op, t, "ca_path", "tls.ca_path");
    tc->cert = opt_text(L, op, t, "cert", "tls.cert");
    tc->key = opt_text(L, op, t, "key", "tls.key");
}

/* tfauth.core.new(config[, operation]): checks everything, then builds. */
static int client_new(lua_State *L) {
    const char *op = luaL_optstring(L, 2, "new");
    tf_transport_config tc;
    tf_client *c;
    const char *base;
    long timeout, connect_timeout, max_response;
    char err[128];
    int cfg, saved, retries, i, functions = 0;

    lua_settop(L, 2);
    if (lua_isnil(L, 1)) {
        lua_newtable(L);
        lua_replace(L, 1);
    }
    if (!lua_istable(L, 1)) tf_argerror(L, op, "config", "expected a table, got %s", tf_type_name(L, 1));
    cfg = 1;
    tf_check_keys(L, op, "config field", NULL, cfg, config_keys);
    memset(&tc, 0, sizeof tc);

    get_or_env(L, cfg, "server_url", "TOANFNDTN_SERVER_URL");
    if (lua_isnil(L, -1))
        tf_argerror(L, op, "server_url", "is required (or set TOANFNDTN_SERVER_URL)");
    base = tf_check_base_url(L, op, "server_url", -1);

    lua_newtable(L); /* what calls read: bearer, http_headers, debug, retries */
    saved = lua_gettop(L);
    get_or_env(L, cfg, "bearer", "TOANFNDTN_BEARER");
    if (lua_type(L, -1) == LUA_TSTRING) tf_check_text(L, op, "bearer", -1, TF_TEXT_HEADER, NULL);
    else if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
        tf_argerror(L, op, "bearer", "expected a string or a function, got %s", tf_type_name(L, -1));
    lua_setfield(L, saved, "bearer");
    lua_getfield(L, cfg, "http_headers");
    if (!lua_isnil(L, -1)) tf_check_headers(L, op, "http_headers", -1);
    tf_push_copy(L, -1, 1);
    lua_setfield(L, saved, "http_headers");
    lua_getfield(L, cfg, "retries");
    tf_check_retries(L, op, "retries", -1);
    retries = lua_gettop(L);
    for (i = 0; function_keys[i]; i++) {
        lua_getfield(L, cfg, function_keys[i]);
        if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
            tf_argerror(L, op, function_keys[i], "expected a function, got %s", tf_type_name(L, -1));
        if (!lua_isnil(L, -1)) functions |= 1 << i;
        lua_setfield(L, saved, function_keys[i]);
    }

    timeout = opt_positive(L, op, cfg, "timeout_ms", DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS);
    connect_timeout =
        opt_positive(L, op, cfg, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS, MAX_TIMEOUT_MS);
    max_response =
        opt_positive(L, op, cfg, "max_response_bytes", DEFAULT_MAX_RESPONSE, MAX_RESPONSE_LIMIT);
    tc.user_agent = opt_text(L, op, cfg, "user_agent", "user_agent");
    if (!tc.user_agent) {
        lua_getglobal(L, "_VERSION");
        lua_pushfstring(L, "tfauth/%s libcurl/%s %s", TFAUTH_VERSION, tf_transport_version(),
                        luaL_optstring(L, -1, "Lua"));
        tc.user_agent = lua_tostring(L, -1);
    }
    tc.proxy = opt_text(L, op, cfg, "proxy", "proxy");
    check_tls(L, op, cfg, &tc);

    /* Everything is valid: build. The metatable goes on first so that __gc
     * frees whatever part was built should anything below fail. */
    c = (tf_client *)lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->config_ref = LUA_NOREF;
    luaL_getmetatable(L, TF_CLIENT_MT);
    lua_setmetatable(L, -2);
    c->timeout_ms = timeout;
    c->connect_timeout_ms = connect_timeout;
    tf_retry_read(L, retries, &c->retry); /* read once: calls copy it */
    c->has_debug = functions & 1; /* function_keys[0] */
    c->has_hooks = (functions & ~1) != 0;
    c->max_response_bytes = (size_t)max_response;
    if (!(c->base_url = strdup(base)) || !(c->user_agent = strdup(tc.user_agent)))
        return luaL_error(L, "tfauth: out of memory");
    if (!(c->transport = tf_transport_new(&tc, err, sizeof err)))
        return luaL_error(L, "tfauth: %s", err);
    lua_pushvalue(L, saved);
    c->config_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* ---- a call ---------------------------------------------------------------------- */

/* Calls the debug function, if any, with one line; its errors are its own. */
static void debug_line(lua_State *L, tf_client *c, const char *fmt, ...) {
    va_list ap;
    if (!c->has_debug) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->config_ref);
    lua_getfield(L, -1, "debug");
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 2);
        return;
    }
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
    lua_pop(L, 1);
}

/* "tfauth: <- login: 200 in 3.1 ms, 812 bytes" or the error's (redacted)
 * message; the result or error is on top of the stack. */
static void debug_response(lua_State *L, tf_client *c, const tf_request *req,
                           const tf_response *res, int ok) {
    char ms[32];
    if (!c->has_debug) return;
    snprintf(ms, sizeof ms, "%.1f", res->seconds * 1000.0);
    lua_getfield(L, -1, "message");
    if (ok)
        debug_line(L, c, "tfauth: <- %s: %d in %s ms, %d bytes", req->op->name, (int)res->status,
                   ms, (int)res->body.len);
    else
        debug_line(L, c, "tfauth: <- %s: %s (%s ms)", req->op->name, lua_tostring(L, -1), ms);
    lua_pop(L, 1);
}

/* Sends req, again while the retry policy says so; returns the last
 * response and counts the attempts. */
static const tf_response *perform(lua_State *L, tf_client *c, const tf_request *req, int *attempts) {
    const tf_response *res;
    double start = tf_now_ms();
    long wait;
    for (*attempts = 1;; (*attempts)++) {
        res = tf_transport_perform(c->transport, req, c->max_response_bytes);
        if (!tf_retry_wanted(&req->retry, res->failed, res->kind, res->status)) return res;
        wait = tf_retry_wait_ms(&req->retry, *attempts - 1, tf_now_ms() - start,
                                res->failed ? NULL : tf_header_find(&res->headers, "retry-after"));
        if (wait < 0) return res;
        if (res->failed)
            debug_line(L, c, "tfauth: .. %s: attempt %d failed (curl %d); retrying in %d ms",
                       req->op->name, *attempts, (int)res->code, (int)wait);
        else
            debug_line(L, c, "tfauth: .. %s: attempt %d got %d; retrying in %d ms", req->op->name,
                       *attempts, (int)res->status, (int)wait);
        tf_sleep_ms(wait);
    }
}

static int client_call(lua_State *L) {
    tf_client *c = check_client(L);
    const tf_op *op = &tf_ops[lua_tointeger(L, lua_upvalueindex(1))];
    const tf_response *res;
    tf_request req;
    int ok, attempts, config, headers = 0;

    lua_settop(L, 3);
    if (!c->transport) return tf_argerror(L, op->name, "client", "the client is closed");
    if (c->busy)
        return tf_argerror(L, op->name, "client",
                           "busy with another request (called from its debug function?)");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->config_ref);
    config = lua_gettop(L);
    tf_prepare(L, c, config, op, 2, 3, &req);

    c->busy = 1; /* from here to the response, req points into c's buffers */
    if (c->has_hooks && !tf_hook_before(L, config, &req)) {
        c->busy = 0;
        return lua_error(L);
    }
    debug_line(L, c, "tfauth: -> %s: %s %s, %d bytes", op->name, op->method, req.url,
               (int)req.body_len);
    res = perform(L, c, &req, &attempts);
    c->busy = 0;

    if (res->failed) {
        tf_map_failure(L, &req, res);
        ok = 0;
    } else {
        if (c->has_hooks) { /* after_success sees them */
            tf_push_headers(L, &res->headers);
            headers = lua_gettop(L);
        }
        ok = tf_map_response(L, &req, res->status, res->reason, headers, &res->headers,
                             res->body.data ? res->body.data : "", res->body.len, res->truncated);
    }
    if (!ok) {
        lua_pushinteger(L, attempts);
        lua_setfield(L, -2, "attempts");
    }
    debug_response(L, c, &req, res, ok);
    if (c->has_hooks &&
        (ok ? !tf_hook_after_success(L, config, &req, res->status, headers, lua_gettop(L), attempts)
            : !tf_hook_after_error(L, config, &req, lua_gettop(L))))
        return lua_error(L);
    return ok ? 1 : lua_error(L);
}

/* ---- the request and the response apart, for transports written in Lua ----------- */

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

/* client:prepare(operation, params[, overrides]) -> the request as a table:
 * operation, method, url, headers (name -> value), body, timeout_ms,
 * connect_timeout_ms, and secrets (what map must redact). Nothing is sent. */
static int client_prepare(lua_State *L) {
    tf_client *c = check_client(L);
    const tf_op *op = check_op(L, 2);
    tf_request req;
    size_t i;
    lua_settop(L, 4);
    if (!c->transport) return tf_argerror(L, op->name, "client", "the client is closed");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->config_ref);
    tf_prepare(L, c, lua_gettop(L), op, 3, 4, &req);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, op->name);
    lua_setfield(L, -2, "operation");
    lua_pushstring(L, op->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req.url);
    lua_setfield(L, -2, "url");
    if (req.body) {
        lua_pushlstring(L, req.body, req.body_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushinteger(L, req.timeout_ms);
    lua_setfield(L, -2, "timeout_ms");
    lua_pushinteger(L, req.connect_timeout_ms);
    lua_setfield(L, -2, "connect_timeout_ms");
    lua_createtable(L, 0, (int)req.nheaders + 1);
    lua_pushstring(L, c->user_agent); /* libcurl sends it as an option; a Lua transport as a header */
    lua_setfield(L, -2, "User-Agent");
    for (i = 0; i < req.nheaders; i++) {
        lua_pushstring(L, req.headers[i].value);
        lua_setfield(L, -2, req.headers[i].name);
    }
    lua_setfield(L, -2, "headers");
    lua_createtable(L, req.nsecrets, 0);
    for (i = 0; i < (size_t)req.nsecrets; i++) {
        lua_pushlstring(L, req.secrets[i].ptr, req.secrets[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "secrets");
    push_retry(L, &req.retry);
    lua_setfield(L, -2, "retry");
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
    tf_client *c = check_client(L);
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

/* ---- lifetime ---------------------------------------------------------------------- */

static int client_close(lua_State *L) {
    tf_client *c = check_client(L);
    tf_transport_free(c->transport);
    c->transport = NULL;
    free(c->base_url);
    c->base_url = NULL;
    free(c->user_agent);
    c->user_agent = NULL;
    tf_buf_free(&c->url);
    luaL_unref(L, LUA_REGISTRYINDEX, c->config_ref);
    c->config_ref = LUA_NOREF;
    return 0;
}

static int client_tostring(lua_State *L) {
    tf_client *c = check_client(L);
    if (c->transport) lua_pushfstring(L, "tfauth.client (%s)", c->base_url);
    else lua_pushliteral(L, "tfauth.client (closed)");
    return 1;
}

static int client_is_open(lua_State *L) {
    lua_pushboolean(L, check_client(L)->transport != NULL);
    return 1;
}

void tf_open_client(lua_State *L, int module) {
    static const luaL_Reg meta[] = {
        {"__gc", client_close}, {"__close", client_close}, {"__tostring", client_tostring},
        {NULL, NULL}};
    static const luaL_Reg methods[] = {{"close", client_close}, {"is_open", client_is_open},
                                       {"prepare", client_prepare}, {"map", client_map},
                                       {NULL, NULL}};
    size_t i, a;

    tf_new_type(L, TF_CLIENT_MT, meta, methods);
    lua_getfield(L, -1, "__index");
    lua_newtable(L); /* module.operations: every name -> its short name */
    for (i = 0; i < tf_op_count; i++) {
        lua_pushinteger(L, (lua_Integer)i);
        lua_pushcclosure(L, client_call, 1);
        for (a = 0; a < 2 && tf_ops[i].aliases[a]; a++) {
            lua_pushvalue(L, -1);
            lua_setfield(L, -4, tf_ops[i].aliases[a]);
            lua_pushstring(L, tf_ops[i].name);
            lua_setfield(L, -3, tf_ops[i].aliases[a]);
        }
        lua_setfield(L, -3, tf_ops[i].name);
        lua_pushstring(L, tf_ops[i].name);
        lua_setfield(L, -2, tf_ops[i].name);
    }
    lua_setfield(L, module, "operations");
    lua_setfield(L, module, "client_methods"); /* the Lua face adds `session` */
    lua_pop(L, 1);

    lua_pushcfunction(L, client_new);
    lua_setfield(L, module, "new");
    lua_pushcfunction(L, retry_wait);
    lua_setfield(L, module, "retry_wait");
}
