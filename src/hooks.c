/* hooks.c: before_request, after_success and after_error, as the Python
 * SDK has them.
 *
 * Hooks see redacted copies: the bearer, secret body fields and tokens in
 * results read [REDACTED]. before_request may add or change headers (any
 * but those tfauth sets itself); it reads back what it set. A hook that
 * raises fails the call: a tfauth error as it is, anything else as an
 * `argument` error naming the hook. Each function returns 1, or 0 with the
 * error on top of the stack for the caller to raise. */
#include <string.h>
#include <strings.h>
#include "check.h"

static int get_hook(lua_State *L, int config, const char *name) {
    lua_getfield(L, config, name);
    if (lua_isfunction(L, -1)) return 1;
    lua_pop(L, 1);
    return 0;
}

/* With the hook and its argument pushed: calls it; 1 or 0 (error on top). */
static int call_hook(lua_State *L, const tf_request *req, const char *name) {
    size_t len;
    const char *msg;
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return 1;
    if (tf_is_error(L, -1)) return 0;
    msg = lua_tolstring(L, -1, &len);
    tf_push_redacted(L, req, msg ? msg : "(not a string)", msg ? len : 14);
    tf_argerror_push(L, req->op->name, name, "the hook raised an error: %s", lua_tostring(L, -1));
    return 0;
}

/* The request as hooks see it. */
static void push_hook_request(lua_State *L, const tf_request *req) {
    size_t i;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, req->op->name);
    lua_setfield(L, -2, "operation");
    lua_pushstring(L, req->op->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->url);
    lua_setfield(L, -2, "url");
    lua_createtable(L, 0, (int)req->nheaders);
    for (i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "Authorization") == 0)
            lua_pushliteral(L, "Bearer [REDACTED]");
        else
            tf_push_redacted(L, req, req->headers[i].value, strlen(req->headers[i].value));
        lua_setfield(L, -2, req->headers[i].name);
    }
    lua_setfield(L, -2, "headers");
    if (req->body && tf_json_decode(L, req->body, req->body_len)) {
        tf_redact_json(L, req, -1);
        tf_json_encode(L);
        lua_setfield(L, -2, "body");
    }
}

int tf_hook_before(lua_State *L, int config, tf_request *req) {
    int request, changes, seen;
    if (!get_hook(L, config, "before_request")) return 1;
    push_hook_request(L, req);
    request = lua_gettop(L);
    lua_getfield(L, request, "headers");
    seen = lua_gettop(L); /* what the hook was given */
    tf_push_copy(L, seen, 1); /* the hook gets its own table; `seen` stays as given */
    lua_setfield(L, request, "headers");
    lua_pushvalue(L, request - 1); /* the hook */
    lua_pushvalue(L, request);
    if (!call_hook(L, req, "before_request")) return 0;

    lua_newtable(L); /* the headers the hook added or changed */
    changes = lua_gettop(L);
    lua_getfield(L, request, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_rawget(L, seen);
            if (!lua_rawequal(L, -1, -2)) {
                lua_pushvalue(L, -3);
                lua_pushvalue(L, -3);
                lua_rawset(L, changes);
            }
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    tf_check_headers(L, req->op->name, "before_request", changes); /* raises: nothing sent yet */
    lua_pushnil(L);
    while (lua_next(L, changes)) { /* the values stay referenced by `changes` */
        tf_request_set_header(L, req, lua_tostring(L, -2), lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return 1;
}

int tf_hook_after_success(lua_State *L, int config, const tf_request *req, long status,
                          int headers, int result, int attempts) {
    if (!get_hook(L, config, "after_success")) return 1;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, req->op->name);
    lua_setfield(L, -2, "operation");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushinteger(L, attempts);
    lua_setfield(L, -2, "attempts");
    if (headers) {
        lua_pushvalue(L, headers);
        lua_setfield(L, -2, "headers");
    }
    tf_push_copy(L, result, 4);
    tf_redact_json(L, req, -1);
    lua_setfield(L, -2, "result");
    return call_hook(L, req, "after_success");
}

int tf_hook_after_error(lua_State *L, int config, const tf_request *req, int err) {
    if (!get_hook(L, config, "after_error")) return 1;
    lua_pushvalue(L, err);
    return call_hook(L, req, "after_error");
}
