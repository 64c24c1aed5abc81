/* claims.c: a verified token's claims read with jansson, for the gate,
 * which needs a few of them (its checks and who the holder is), not the
 * ~25 strings and 5 tables lua-cjson would make of a Keycloak token: those
 * were the largest part of a first-sight bearer request after RSA (the
 * strings interned, the tables built, then swept by the collector).
 *
 * The values are the ones lua-cjson decodes, by construction. jansson reads
 * a text only when it is plain JSON (valid UTF-8, no raw control character,
 * numbers of JSON's grammar within a double's range), where the two agree:
 * the last of repeated members wins in both, every number is read as a
 * double (JSON_DECODE_INT_AS_REAL: strtod, as lua-cjson does, so integers
 * beyond 2^53 round alike), and \u0000 is a NUL byte in both
 * (JSON_ALLOW_NUL). A text jansson refuses, or nests deeper than the
 * private lua-cjson allows (TF_JSON_MAX_DEPTH; jansson allows 2048), is
 * left to lua-cjson (tf_claims_push answers 0), which accepts or refuses it
 * as it always has. */
#include <jansson.h>
#include <string.h>
#include "tfauth.h"

#define DOC_MT "tfauth.json_doc"
#define JANSSON_FLAGS (JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* The members the checks of jws.c read, given whatever the caller asks for. */
static const char *const checked[] = {"exp", "nbf", "iat", "iss", "aud", "typ", NULL};

/* The parsed document in a userdata, so that a Lua error while its values
 * are pushed (out of memory) cannot leak it: the collector frees it. */
typedef struct {
    json_t *doc;
} doc_box;

static int doc_gc(lua_State *L) {
    doc_box *box = luaL_checkudata(L, 1, DOC_MT);
    json_decref(box->doc);
    box->doc = NULL;
    return 0;
}

/* Whether v nests deeper than max arrays and objects (lua-cjson counts as
 * this does: {} is 1 deep). */
static int deeper_than(const json_t *v, int max) {
    size_t i;
    const char *key;
    json_t *m;
    if (!json_is_object(v) && !json_is_array(v)) return 0;
    if (max < 1) return 1;
    if (json_is_array(v)) {
        json_array_foreach(v, i, m) if (deeper_than(m, max - 1)) return 1;
        return 0;
    }
    json_object_foreach((json_t *)v, key, m) if (deeper_than(m, max - 1)) return 1;
    return 0;
}

/* Pushes v as lua-cjson decodes it. */
static void push_value(lua_State *L, const json_t *v) {
    size_t i, key_len;
    const char *key;
    json_t *m;
    luaL_checkstack(L, 3, "tfauth: claims too deep");
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_keylen_foreach((json_t *)v, key, key_len, m) {
            lua_pushlstring(L, key, key_len);
            push_value(L, m);
            lua_rawset(L, -3);
        }
        break;
    case JSON_ARRAY:
        lua_createtable(L, (int)json_array_size(v), 0);
        json_array_foreach(v, i, m) {
            push_value(L, m);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(v)); break; /* not with INT_AS_REAL */
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    default: tf_push_json_null(L); break;
    }
}

/* Sets member name (len bytes) of doc into the table on top, if it is there. */
static void copy_member(lua_State *L, const json_t *doc, const char *name, size_t len) {
    const json_t *m = json_object_getn(doc, name, len);
    if (!m) return;
    lua_pushlstring(L, name, len);
    push_value(L, m);
    lua_rawset(L, -3);
}

int tf_claims_push(lua_State *L, const char *s, size_t len, int names) {
    doc_box *box;
    json_error_t error;
    int i, n = (int)lua_rawlen(L, names);
    box = lua_newuserdata(L, sizeof *box);
    box->doc = NULL;
    luaL_getmetatable(L, DOC_MT);
    lua_setmetatable(L, -2);
    box->doc = json_loadb(s, len, JANSSON_FLAGS, &error);
    if (!box->doc || !json_is_object(box->doc) || deeper_than(box->doc, TF_JSON_MAX_DEPTH)) {
        json_decref(box->doc);
        box->doc = NULL;
        lua_pop(L, 1);
        return 0; /* lua-cjson's to read, or to refuse */
    }
    lua_createtable(L, 0, n + 6);
    for (i = 0; checked[i]; i++) copy_member(L, box->doc, checked[i], strlen(checked[i]));
    for (i = 1; i <= n; i++) {
        size_t name_len;
        const char *name;
        lua_rawgeti(L, names, i);
        name = lua_tolstring(L, -1, &name_len);
        lua_pop(L, 1); /* the list holds it */
        copy_member(L, box->doc, name, name_len);
    }
    json_decref(box->doc);
    box->doc = NULL;
    lua_remove(L, -2); /* the box */
    return 1;
}

void tf_open_claims(lua_State *L) {
    luaL_newmetatable(L, DOC_MT);
    lua_pushcfunction(L, doc_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}
