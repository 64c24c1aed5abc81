/* luax.c: small Lua helpers shared by several concerns (client.c,
 * hooks.c, ...). Part of the floor: it calls nothing of tfauth's. */
#include "tfauth.h"

/* Pushes a copy of the table at idx, `depth` levels deep: what was checked
 * is what is used, whatever the caller later does to its own table. */
void tf_push_copy(lua_State *L, int idx, int depth) {
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx) || depth == 0) {
        lua_pushvalue(L, idx);
        return;
    }
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        tf_push_copy(L, -2, depth - 1);
        lua_rawset(L, -5);
        lua_pop(L, 1);
    }
}

/* Registers a userdata type in one place: its metatable `name` (also its
 * __name, which Lua 5.1 and LuaJIT do not set) with the metamethods `meta`,
 * and an __index table holding `methods`. Leaves the metatable on the stack. */
void tf_new_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
}
