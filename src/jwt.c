/* jwt.c: a JWT's claims, decoded and NOT verified.
 *
 * The payload segment is base64url-decoded and parsed with the private
 * lua-cjson instance. Nothing checks the signature, the issuer or the
 * expiry: the claims are only as trustworthy as the channel the token came
 * from (for tfauth, the server's TLS answer). Errors never quote the token. */
#include <string.h>
#include "tfauth.h"

#define OP "jwt.claims"

/* Pushes the decoded bytes, or returns 0 (pushing nothing) when s is not
 * base64url (padding '=' at the end is accepted, as some issuers add it). */
static int push_b64url(lua_State *L, const char *s, size_t len) {
    /* Scratch memory the garbage collector owns: nothing leaks if Lua raises. */
    unsigned char *out = lua_newuserdata(L, TF_B64URL_MAX(len));
    size_t n;
    if (tf_b64url_decode(s, len, 0, out, &n) != 0) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pushlstring(L, (const char *)out, n);
    lua_remove(L, -2);
    return 1;
}

static int jwt_claims(lua_State *L) {
    size_t len, plen;
    const char *token, *payload, *dot;
    if (lua_type(L, 1) != LUA_TSTRING)
        return tf_argerror(L, OP, "token", "expected a string, got %s", lua_typename(L, lua_type(L, 1)));
    token = lua_tolstring(L, 1, &len);
    payload = memchr(token, '.', len);
    dot = payload ? memchr(payload + 1, '.', len - (size_t)(payload + 1 - token)) : NULL;
    if (!dot) return tf_argerror(L, OP, "token", "is not a JWT (header.payload.signature)");
    payload++;
    plen = (size_t)(dot - payload);
    if (plen == 0 || !push_b64url(L, payload, plen))
        return tf_argerror(L, OP, "token", "has a payload that is not base64url");
    if (lua_rawlen(L, -1) == 0 || lua_tostring(L, -1)[0] != '{' ||
        !tf_json_decode(L, lua_tostring(L, -1), lua_rawlen(L, -1)) || !lua_istable(L, -1))
        return tf_argerror(L, OP, "token", "has a payload that is not a JSON object");
    tf_json_integerize(L, -1);
    return 1;
}

void tf_open_jwt(lua_State *L, int module) {
    lua_pushcfunction(L, jwt_claims);
    lua_setfield(L, module, "jwt_claims");
}
