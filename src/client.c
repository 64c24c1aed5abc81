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
#define MAX_RESPONSE_LIMIT (256L * 1048576L)

static const char *const config_keys[] = {
    "server_url", "bearer", "timeout_ms", "connect_timeout_ms", "retries", "http_headers",
    "user_agent", "tls", "proxy", "max_response_bytes", "debug", "before_request", "after_success",
    "after_error", NULL};
static const char *const function_keys[] = {"debug", "before_request", "after_success",
                                            "after_error", NULL};
static const char *const tls_keys[] = {"verify", "ca_file", "ca_path", "cert", "key", NULL};

tf_client *tf_check_client(lua_State *L) {
    return (tf_client *)luaL_checkudata(L, 1, TF_CLIENT_MT);
}

tf_client *tf_usable_client(lua_State *L, const char *op, int idle) {
    tf_client *c = tf_check_client(L);
    if (!c->transport) tf_argerror(L, op, "client", "the client is closed");
    if (idle && c->busy)
        tf_argerror(L, op, "client", "busy with another request (called from its debug function?)");
    return c;
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

    timeout = opt_positive(L, op, cfg, "timeout_ms", DEFAULT_TIMEOUT_MS, TF_MAX_TIMEOUT_MS);
    connect_timeout =
        opt_positive(L, op, cfg, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS, TF_MAX_TIMEOUT_MS);
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
    tf_client *c = tf_check_client(L);
    const tf_op *op = &tf_ops[lua_tointeger(L, lua_upvalueindex(1))];
    const tf_response *res;
    tf_request req;
    int ok, attempts, config, headers = 0;

    lua_settop(L, 3);
    tf_usable_client(L, op->name, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->config_ref);
    config = lua_gettop(L);
    tf_prepare(L, c, config, op, 2, 3, &req);

    c->busy = 1; /* from here to the response, req points into c's buffers */
    if (c->has_hooks && !tf_hook_before(L, config, &req)) {
        c->busy = 0;
        return lua_error(L);
    }
    if (c->has_debug) { /* the URL without its query: reset_password puts the user name there */
        lua_pushlstring(L, req.url, strcspn(req.url, "?#"));
        debug_line(L, c, "tfauth: -> %s: %s %s, %d bytes", op->name, op->method, lua_tostring(L, -1),
                   (int)req.body_len);
        lua_pop(L, 1);
    }
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

/* ---- lifetime ---------------------------------------------------------------------- */

static int client_close(lua_State *L) {
    tf_client *c = tf_check_client(L);
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
    tf_client *c = tf_check_client(L);
    if (c->transport) lua_pushfstring(L, "tfauth.client (%s)", c->base_url);
    else lua_pushliteral(L, "tfauth.client (closed)");
    return 1;
}

static int client_is_open(lua_State *L) {
    lua_pushboolean(L, tf_check_client(L)->transport != NULL);
    return 1;
}

void tf_open_client(lua_State *L, int module) {
    static const luaL_Reg meta[] = {
        {"__gc", client_close}, {"__close", client_close}, {"__tostring", client_tostring},
        {NULL, NULL}};
    static const luaL_Reg methods[] = {{"close", client_close}, {"is_open", client_is_open},
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
}
