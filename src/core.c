/* core.c: luaopen_tfauth_core, one opener per concern.
 *
 * libcurl is initialised once per process. JSON goes through a private
 * lua-cjson instance (cjson.new()), so the host's own `cjson` settings are
 * never read or changed. */
#include "tfauth.h"
#include "retry.h"
#include "transport.h"

#define JSON_ENCODE "tfauth.json.encode"
#define JSON_DECODE "tfauth.json.decode"
#define JSON_NULL "tfauth.json.null"

void tf_json_encode(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_ENCODE);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
}

#if LUA_VERSION_NUM >= 503
/* Debian's lua-cjson 2.1.0 decodes every number as a float; JSON's 300 is
 * Lua's integer 300 (so expires_in prints as 300, not 300.0). */
static void integerize(lua_State *L, int idx, int depth) {
    if (depth > 64) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) && tf_isinteger(L, -1)) {
            lua_pushvalue(L, -2);
            lua_pushinteger(L, (lua_Integer)lua_tonumber(L, -2));
            lua_rawset(L, idx);
        } else if (lua_istable(L, -1)) {
            integerize(L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
}
#endif

void tf_json_integerize(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 503
    if (lua_istable(L, idx)) {
        luaL_checkstack(L, 2 * 64 + 8, "tfauth: JSON too deep");
        integerize(L, lua_absindex(L, idx), 0);
    }
#else
    (void)L, (void)idx;
#endif
}

int tf_json_decode(lua_State *L, const char *s, size_t len) {
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_DECODE);
    lua_pushlstring(L, s, len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

void tf_push_json_null(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_NULL);
}

/* cjson.new(), configured strictly: no NaN/Infinity read, bounded nesting. */
static void open_json(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    /* 1e999 decodes to infinity: re-encoding a redacted body writes null. */
    lua_getfield(L, -1, "encode_invalid_numbers");
    lua_pushliteral(L, "null");
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "encode");
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_ENCODE);
    lua_getfield(L, -1, "decode");
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_DECODE);
    lua_getfield(L, -1, "null");
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_NULL);
    lua_pop(L, 2);
}

/* core.clock(): monotonic seconds, for timing (benchmarks, transports). */
static int clock_seconds(lua_State *L) {
    lua_pushnumber(L, tf_now_ms() / 1000.0);
    return 1;
}

static int initialised = 0;

int luaopen_tfauth_core(lua_State *L) {
    int module;
    if (!initialised) {
        if (tf_transport_global_init() != 0) return luaL_error(L, "tfauth: libcurl failed to initialise");
        initialised = 1;
    }
    open_json(L);
    lua_newtable(L);
    module = lua_gettop(L);
    tf_open_error(L, module);
    tf_open_client(L, module);
    tf_open_fetch(L, module);
    tf_open_jwt(L, module);
    tf_open_jws(L, module);
    tf_open_seal(L, module);
    lua_pushcfunction(L, clock_seconds);
    lua_setfield(L, module, "clock");
    lua_pushliteral(L, TFAUTH_VERSION);
    lua_setfield(L, module, "version");
    lua_pushstring(L, tf_transport_version());
    lua_setfield(L, module, "curl_version");
    return 1;
}
