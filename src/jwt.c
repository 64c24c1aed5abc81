/* jwt.c: a JWT's claims, decoded and NOT verified.
 *
 * The payload segment is base64url-decoded and parsed with the private
 * lua-cjson instance. Nothing checks the signature, the issuer or the
 * expiry: the claims are only as trustworthy as the channel the token came
 * from (for tfauth, the server's TLS answer). Errors never quote the token. */
#include <string.h>
#include "tfauth.h"

#define OP "jwt.claims"

/* Pushes the claims decoded from the payload segment; 0 when it is not
 * base64url (padding '=' at the end is accepted, as some issuers add it),
 * -1 when its bytes are not a JSON object. The bytes are decoded from a C
 * buffer, never made a Lua string (json.c says why). */
static int push_claims(lua_State *L, const char *s, size_t len) {
    /* Scratch memory the garbage collector owns: nothing leaks if Lua raises. */
    unsigned char *out = lua_newuserdata(L, TF_B64URL_MAX(len));
    size_t n;
    if (tf_b64url_decode(s, len, 0, out, &n) != 0) return 0;
    if (n == 0 || out[0] != '{' || !tf_json_decode(L, (const char *)out, n) || !lua_istable(L, -1)) return -1;
    lua_remove(L, -2);
    return 1;
}

static int jwt_claims(lua_State *L) {
    size_t len, plen;
    const char *token, *payload, *dot;
    int got;
    if (lua_type(L, 1) != LUA_TSTRING)
        return tf_argerror(L, OP, "token", "expected a string, got %s", lua_typename(L, lua_type(L, 1)));
    token = lua_tolstring(L, 1, &len);
    payload = memchr(token, '.', len);
    dot = payload ? memchr(payload + 1, '.', len - (size_t)(payload + 1 - token)) : NULL;
    if (!dot) return tf_argerror(L, OP, "token", "is not a JWT (header.payload.signature)");
    payload++;
    plen = (size_t)(dot - payload);
    got = plen ? push_claims(L, payload, plen) : 0;
    if (got == 0) return tf_argerror(L, OP, "token", "has a payload that is not base64url");
    if (got < 0) return tf_argerror(L, OP, "token", "has a payload that is not a JSON object");
    tf_json_integerize(L, -1);
    return 1;
}

void tf_open_jwt(lua_State *L, int module) {
    lua_pushcfunction(L, jwt_claims);
    lua_setfield(L, module, "jwt_claims");
}
