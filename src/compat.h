/* compat.h: the few Lua 5.2+ API calls tfauth uses, for Lua 5.1 / LuaJIT 2.1.
 * A shim in the lua-cjson manner rather than a vendored compat framework. */
#ifndef TFAUTH_COMPAT_H
#define TFAUTH_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501

/* LuaJIT says who it is in luajit.h, which plain Lua 5.1 does not have. */
#if defined(__has_include)
#if __has_include(<luajit.h>)
#include <luajit.h>
#endif
#endif

#ifndef LUA_OK
#define LUA_OK 0
#endif

#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline int tf_compat_absindex(lua_State *L, int idx) {
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}
#define lua_absindex(L, i) tf_compat_absindex((L), (i))

/* LuaJIT 2.1 already provides luaL_setfuncs and luaL_testudata. */
#ifndef LUAJIT_VERSION
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name; l++) {
        int i;
        for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#endif

#endif /* LUA_VERSION_NUM == 501 */

/* A number with an integral value (JSON "300" and "300.0" alike), within the
 * range a double holds exactly. */
static inline int tf_isinteger(lua_State *L, int idx) {
    lua_Number n;
    if (lua_type(L, idx) != LUA_TNUMBER) return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) return 1;
#endif
    n = lua_tonumber(L, idx);
    return n >= -9007199254740992.0 && n <= 9007199254740992.0 && n == (lua_Number)(long long)n;
}

#endif
