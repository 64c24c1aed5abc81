/* redact.c: nothing a caller can see carries a secret.
 *
 * Three nets, because servers echo requests in more than one way:
 *  - the request's own secrets (passwords, tokens, the bearer) wherever they
 *    appear in text;
 *  - anything shaped like a JWT (eyJ...<.>...), whoever's token it is;
 *  - in decoded JSON, FastAPI's echo of the request (`input`, `ctx.doc`) and
 *    values under secret-named keys. */
#include <string.h>
#include "tfauth.h"

#define REDACTED "[REDACTED]"
#define MIN_SECRET 4 /* shorter values would blank out ordinary words */
#define MAX_DEPTH 32

static int is_b64url(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Length of a JWT-shaped run at s (header.payload[.signature]), or 0. */
static size_t jwt_at(const char *s, size_t len) {
    size_t i = 0, parts = 1;
    if (len < 3 || memcmp(s, "eyJ", 3) != 0) return 0;
    while (i < len && (is_b64url((unsigned char)s[i]) || s[i] == '.')) {
        if (s[i] == '.') parts++;
        i++;
    }
    return parts >= 2 && i >= 16 ? i : 0;
}

/* Length of one of req's secrets at s, or 0. */
static size_t secret_at(const tf_request *req, const char *s, size_t len) {
    int k;
    for (k = 0; req && k < req->nsecrets; k++) {
        size_t n = req->secrets[k].len;
        if (n >= MIN_SECRET && n <= len && memcmp(s, req->secrets[k].ptr, n) == 0) return n;
    }
    return 0;
}

static size_t sensitive_at(const tf_request *req, const char *s, size_t len) {
    size_t n = secret_at(req, s, len);
    return n ? n : jwt_at(s, len);
}

static int needs_redaction(const tf_request *req, const char *s, size_t len) {
    size_t i;
    for (i = 0; i < len; i++)
        if (sensitive_at(req, s + i, len - i)) return 1;
    return 0;
}

void tf_push_redacted(lua_State *L, const tf_request *req, const char *text, size_t len) {
    luaL_Buffer b;
    size_t i = 0, start = 0, n;
    if (!needs_redaction(req, text, len)) {
        lua_pushlstring(L, text, len);
        return;
    }
    luaL_buffinit(L, &b);
    while (i < len) {
        if ((n = sensitive_at(req, text + i, len - i)) != 0) {
            luaL_addlstring(&b, text + start, i - start);
            luaL_addstring(&b, REDACTED);
            i += n;
            start = i;
        } else {
            i++;
        }
    }
    luaL_addlstring(&b, text + start, len - start);
    luaL_pushresult(&b);
}

static const char *const secret_keys[] = {
    "input", "doc", /* FastAPI's echo of the request body */
    "password", "current_password", "new_password", "access_token", "refresh_token",
    "id_token", "token", "bearer", "authorization", "client_secret", NULL};

static int is_secret_key(lua_State *L, int idx) {
    const char *key;
    int k;
    if (lua_type(L, idx) != LUA_TSTRING) return 0;
    key = lua_tostring(L, idx);
    for (k = 0; secret_keys[k]; k++)
        if (strcmp(key, secret_keys[k]) == 0) return 1;
    return 0;
}

/* Keys holding a secret are renamed after the walk: a table may not gain
 * keys while lua_next runs over it. */
static int rename_keys(lua_State *L, const tf_request *req, int idx) {
    int renamed = lua_gettop(L) + 1, n = 0, i;
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len;
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        lua_pop(L, 1);
        if (key && needs_redaction(req, key, len)) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, renamed, ++n);
        }
    }
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *key;
        lua_rawgeti(L, renamed, i);
        key = lua_tolstring(L, -1, &len);
        tf_push_redacted(L, req, key, len); /* new name */
        lua_pushvalue(L, -2);
        lua_rawget(L, idx);                 /* value */
        lua_rawset(L, idx);
        lua_pushnil(L);
        lua_rawset(L, idx);                 /* the old name goes */
    }
    lua_pop(L, 1);
    return n > 0;
}

static int redact_json(lua_State *L, const tf_request *req, int idx, int depth) {
    int changed = 0;
    if (depth > MAX_DEPTH) return 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int type = lua_type(L, -1);
        /* A secret key's value goes whole; `input` even when it is the
         * echoed body, a table. */
        if (is_secret_key(L, -2) &&
            (type != LUA_TTABLE || strcmp(lua_tostring(L, -2), "input") == 0)) {
            lua_pushvalue(L, -2);
            lua_pushstring(L, REDACTED);
            lua_rawset(L, idx);
            changed = 1;
        } else if (type == LUA_TTABLE) {
            changed |= redact_json(L, req, lua_gettop(L), depth + 1);
        } else if (type == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            if (needs_redaction(req, s, len)) {
                lua_pushvalue(L, -2);
                tf_push_redacted(L, req, s, len);
                lua_rawset(L, idx);
                changed = 1;
            }
        }
        lua_pop(L, 1);
    }
    return rename_keys(L, req, idx) | changed;
}

int tf_redact_json(lua_State *L, const tf_request *req, int idx) {
    if (!lua_istable(L, idx)) return 0;
    luaL_checkstack(L, 2 * MAX_DEPTH + 8, "tfauth: JSON too deep");
    return redact_json(L, req, lua_absindex(L, idx), 0);
}
