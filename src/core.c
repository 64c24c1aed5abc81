/* core.c: luaopen_tfauth_core, one opener per concern and nothing else:
 * every other file is below it, none calls into it.
 *
 * libcurl is initialised once per process. */
#include "tfauth.h"
#include "jwk.h"
#include "retry.h"
#include "transport.h"

static int initialised = 0;

int luaopen_tfauth_core(lua_State *L) {
    int module;
    if (!initialised) {
        if (tf_transport_global_init() != 0) return luaL_error(L, "tfauth: libcurl failed to initialise");
        initialised = 1;
    }
    tf_open_json(L);
    lua_newtable(L);
    module = lua_gettop(L);
    tf_open_error(L, module);
    tf_open_client(L, module);
    tf_open_fetch(L, module);
    tf_open_bridge(L, module);
    tf_open_jwt(L, module);
    tf_open_jwk(L, module);
    tf_open_jws(L, module);
    tf_open_seal(L, module);
    tf_open_retry(L, module);
    lua_pushliteral(L, TFAUTH_VERSION);
    lua_setfield(L, module, "version");
    lua_pushstring(L, tf_transport_version());
    lua_setfield(L, module, "curl_version");
    return 1;
}
