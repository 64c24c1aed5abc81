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
