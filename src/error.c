/* error.c: the one error constructor, and tfauth.Error.
 *
 * Every failure is a plain table whose metatable is tfauth.Error, so callers
 * can read its fields, compare err.kind, and get one line from tostring(). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "tfauth.h"

#define TF_ERROR_MT "tfauth.Error"

static const char *const kind_names[] = {
#define TF_KIND_NAME(id, name) name,
    TF_ERROR_KINDS(TF_KIND_NAME)
#undef TF_KIND_NAME
};

static void push_error_v(lua_State *L, tf_kind kind, const char *op, const char *fmt,
                         va_list ap) {
    lua_createtable(L, 0, 8);
    lua_pushstring(L, kind_names[kind]);
    lua_setfield(L, -2, "kind");
    lua_pushvfstring(L, fmt, ap);
    lua_setfield(L, -2, "message");
    if (op) {
        lua_pushstring(L, op);
        lua_setfield(L, -2, "operation");
    }
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "retryable");
    luaL_getmetatable(L, TF_ERROR_MT);
    lua_setmetatable(L, -2);
}

void tf_error_push(lua_State *L, tf_kind kind, const char *op, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    push_error_v(L, kind, op, fmt, ap);
    va_end(ap);
}

static void argerror_push_v(lua_State *L, const char *op, const char *field, const char *fmt,
                            va_list ap) {
    /* The problem apart from the field, so that a caller that checks a
     * config on behalf of another (the gate) can name its own field path
     * without editing this message. */
    lua_pushvfstring(L, fmt, ap);
    tf_error_push(L, TF_ARGUMENT, op, "argument '%s': %s", field, lua_tostring(L, -1));
    lua_insert(L, -2);
    lua_setfield(L, -2, "problem");
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
}

void tf_argerror_push(lua_State *L, const char *op, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    argerror_push_v(L, op, field, fmt, ap);
    va_end(ap);
}

int tf_argerror(lua_State *L, const char *op, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    argerror_push_v(L, op, field, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

/* core.argument_error(operation, field, message): the same error, for the
 * Lua side (its own config keys, sessions, the nginx transport). */
static int argument_error(lua_State *L) {
    tf_argerror_push(L, luaL_optstring(L, 1, NULL), luaL_checkstring(L, 2), "%s",
                     luaL_checkstring(L, 3));
    return 1;
}

int tf_is_error(lua_State *L, int idx) {
    int same;
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, TF_ERROR_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* "tfauth: login: http 401: Invalid user credentials" */
static int error_tostring(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "operation");
    lua_getfield(L, 1, "message");
    if (lua_isstring(L, -2))
        lua_pushfstring(L, "tfauth: %s: %s", lua_tostring(L, -2), luaL_optstring(L, -1, "error"));
    else
        lua_pushfstring(L, "tfauth: %s", luaL_optstring(L, -1, "error"));
    return 1;
}

static int error_is(lua_State *L) {
    lua_pushboolean(L, tf_is_error(L, 1));
    return 1;
}

/* tfauth.Error(kind, message[, fields]): lets the Lua side and transports
 * written in Lua build errors of the same kind. */
static int error_new(lua_State *L) {
    const char *kind = luaL_checkstring(L, 1);
    const char *message = luaL_checkstring(L, 2);
    int k;
    for (k = 0; k < TF_KIND_COUNT; k++)
        if (strcmp(kind, kind_names[k]) == 0) break;
    if (k == TF_KIND_COUNT) return luaL_argerror(L, 1, "unknown error kind");
    lua_settop(L, 3);
    if (lua_istable(L, 3)) lua_getfield(L, 3, "operation");
    else lua_pushnil(L);
    tf_error_push(L, (tf_kind)k, lua_tostring(L, -1), "%s", message);
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    }
    return 1;
}

void tf_open_error(lua_State *L, int module) {
    int k;
    luaL_newmetatable(L, TF_ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushstring(L, TF_ERROR_MT);
    lua_setfield(L, -2, "__name");
    lua_pushcfunction(L, error_new);
    lua_setfield(L, -2, "new");
    lua_setfield(L, module, "Error");

    lua_pushcfunction(L, error_is);
    lua_setfield(L, module, "is_error");
    lua_pushcfunction(L, argument_error);
    lua_setfield(L, module, "argument_error");

    lua_createtable(L, TF_KIND_COUNT, 0);
    for (k = 0; k < TF_KIND_COUNT; k++) {
        lua_pushstring(L, kind_names[k]);
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, module, "kinds");
}
