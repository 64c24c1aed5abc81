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

/* ---- a secret in any of the forms a server may echo it in --------------------
 * As sent, JSON-escaped (\" \/ \n \u00e9 \ud83d\ude00), percent-encoded
 * (%41, + for a space) or HTML-escaped (&lt; &#39; &#x27;). Each reader
 * below takes one encoded character at t (n bytes left) and returns the
 * bytes it used (0: none), the value in *v. */

static size_t percent_at(const char *t, size_t n, unsigned long *v) {
    if (n < 3 || t[0] != '%' || tf_hex_digit(t[1]) < 0 || tf_hex_digit(t[2]) < 0) return 0;
    *v = (unsigned long)(tf_hex_digit(t[1]) * 16 + tf_hex_digit(t[2]));
    return 3;
}

/* One JSON escape; \uXXXX gives one UTF-16 unit. */
static size_t json_escape_at(const char *t, size_t n, unsigned long *v) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *p;
    int i;
    if (n < 2 || t[0] != '\\') return 0;
    if (t[1] == 'u') {
        if (n < 6) return 0;
        for (*v = 0, i = 2; i < 6; i++) {
            if (tf_hex_digit(t[i]) < 0) return 0;
            *v = *v * 16 + (unsigned long)tf_hex_digit(t[i]);
        }
        return 6;
    }
    if (!t[1] || !(p = strchr(from, t[1]))) return 0;
    *v = (unsigned char)to[p - from];
    return 2;
}

/* One JSON escape for a code point: a surrogate pair above U+FFFF. */
static size_t json_char_at(const char *t, size_t n, unsigned long *v) {
    unsigned long low;
    size_t used = json_escape_at(t, n, v), more;
    if (used == 6 && *v >= 0xD800 && *v < 0xDC00 &&
        (more = json_escape_at(t + 6, n - 6, &low)) == 6 && low >= 0xDC00 && low < 0xE000) {
        *v = 0x10000 + ((*v - 0xD800) << 10) + (low - 0xDC00);
        return 12;
    }
    return used;
}

/* &#NNN; &#xHH; and the five named entities of XML and HTML. */
static size_t entity_at(const char *t, size_t n, unsigned long *v) {
    static const struct { const char *name; char c; } named[] = {
        {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t i, k;
    if (n < 4 || t[0] != '&') return 0;
    if (t[1] == '#') {
        int hex = t[2] == 'x' || t[2] == 'X';
        for (*v = 0, i = 2 + (size_t)hex, k = 0; i < n && k < 8; i++, k++) {
            int d = hex ? tf_hex_digit(t[i]) : (t[i] >= '0' && t[i] <= '9' ? t[i] - '0' : -1);
            if (d < 0) break;
            *v = *v * (hex ? 16 : 10) + (unsigned long)d;
        }
        return k > 0 && i < n && t[i] == ';' ? i + 1 : 0;
    }
    for (k = 0; k < sizeof named / sizeof named[0]; k++) {
        size_t len = strlen(named[k].name);
        if (n >= len && memcmp(t, named[k].name, len) == 0) {
            *v = (unsigned char)named[k].c;
            return len;
        }
    }
    return 0;
}

/* The code point of the UTF-8 character at s (n bytes left) and its length;
 * a byte that starts no valid character stands for itself. */
static size_t utf8_at(const unsigned char *s, size_t n, unsigned long *cp) {
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4 : 0, i;
    if (len == 0 || len > n) goto byte;
    *cp = len == 1 ? s[0] : s[0] & (0x7F >> len);
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto byte;
        *cp = *cp << 6 | (s[i] & 0x3F);
    }
    return len;
byte:
    *cp = s[0];
    return 1;
}

/* Length of the text at t that spells the secret s in one form, or 0. In
 * each form its escape character (\\, %, &) starts an escape, and any other
 * character stands for itself, as servers write them. */
enum { AS_SENT, AS_JSON, AS_PERCENT, AS_HTML, FORMS };

static size_t spelt_at(const char *t, size_t n, const char *s, size_t slen, int form) {
    size_t i = 0, j = 0;
    while (j < slen) {
        unsigned long want, got;
        size_t k = 1, used = 0;
        if (i >= n) return 0;
        if (form == AS_JSON && t[i] == '\\') {
            k = utf8_at((const unsigned char *)s + j, slen - j, &want);
            if (!(used = json_char_at(t + i, n - i, &got)) || got != want) return 0;
        } else if (form == AS_PERCENT && t[i] == '%') {
            if (!(used = percent_at(t + i, n - i, &got)) || got != (unsigned char)s[j]) return 0;
        } else if (form == AS_PERCENT && t[i] == '+' && s[j] == ' ') {
            used = 1;
        } else if (form == AS_HTML && t[i] == '&' && (used = entity_at(t + i, n - i, &got)) != 0) {
            k = utf8_at((const unsigned char *)s + j, slen - j, &want);
            if (got != want) return 0;
        } else if (t[i] == s[j]) {
            used = 1;
        } else {
            return 0;
        }
        i += used, j += k;
    }
    return i;
}

/* Length of one of req's secrets (of at least min bytes) at s, or 0. */
static size_t secret_at(const tf_request *req, const char *s, size_t len, size_t min) {
    int k;
    for (k = 0; req && k < req->nsecrets; k++) {
        size_t n = req->secrets[k].len, got;
        int form;
        if (n < min || n == 0) continue;
        for (form = 0; form < FORMS; form++)
            if ((got = spelt_at(s, len, req->secrets[k].ptr, n, form)) != 0) return got;
    }
    return 0;
}

static size_t sensitive_at(const tf_request *req, const char *s, size_t len, size_t min) {
    size_t n = secret_at(req, s, len, min);
    return n ? n : jwt_at(s, len);
}

static int needs_redaction(const tf_request *req, const char *s, size_t len, size_t min) {
    size_t i;
    for (i = 0; i < len; i++)
        if (sensitive_at(req, s + i, len - i, min)) return 1;
    return 0;
}

int tf_has_short_secret(const tf_request *req) {
    int k;
    for (k = 0; req && k < req->nsecrets; k++) {
        size_t i, chars = 0;
        for (i = 0; i < req->secrets[k].len; i++)
            chars += ((unsigned char)req->secrets[k].ptr[i] & 0xC0) != 0x80;
        if (chars > 0 && chars < TF_SHORT_SECRET) return 1;
    }
    return 0;
}

static void push_redacted(lua_State *L, const tf_request *req, const char *text, size_t len, size_t min) {
    luaL_Buffer b;
    size_t i = 0, start = 0, n;
    if (!needs_redaction(req, text, len, min)) {
        lua_pushlstring(L, text, len);
        return;
    }
    luaL_buffinit(L, &b);
    while (i < len) {
        if ((n = sensitive_at(req, text + i, len - i, min)) != 0) {
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

void tf_push_redacted(lua_State *L, const tf_request *req, const char *text, size_t len) {
    push_redacted(L, req, text, len, MIN_SECRET);
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
static int rename_keys(lua_State *L, const tf_request *req, int idx, size_t min) {
    int renamed = lua_gettop(L) + 1, n = 0, i;
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len;
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        lua_pop(L, 1);
        if (key && needs_redaction(req, key, len, min)) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, renamed, ++n);
        }
    }
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *key;
        lua_rawgeti(L, renamed, i);
        key = lua_tolstring(L, -1, &len);
        push_redacted(L, req, key, len, min); /* new name */
        lua_pushvalue(L, -2);
        lua_rawget(L, idx);                 /* value */
        lua_rawset(L, idx);
        lua_pushnil(L);
        lua_rawset(L, idx);                 /* the old name goes */
    }
    lua_pop(L, 1);
    return n > 0;
}

static int redact_json(lua_State *L, const tf_request *req, int idx, int depth, size_t min) {
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
            changed |= redact_json(L, req, lua_gettop(L), depth + 1, min);
        } else if (type == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            if (needs_redaction(req, s, len, min)) {
                lua_pushvalue(L, -2);
                push_redacted(L, req, s, len, min);
                lua_rawset(L, idx);
                changed = 1;
            }
        }
        lua_pop(L, 1);
    }
    return rename_keys(L, req, idx, min) | changed;
}

static int redact_table(lua_State *L, const tf_request *req, int idx, size_t min) {
    if (!lua_istable(L, idx)) return 0;
    luaL_checkstack(L, 2 * MAX_DEPTH + 8, "tfauth: JSON too deep");
    return redact_json(L, req, lua_absindex(L, idx), 0, min);
}

int tf_redact_json(lua_State *L, const tf_request *req, int idx) {
    return redact_table(L, req, idx, MIN_SECRET);
}

int tf_redact_headers(lua_State *L, const tf_request *req, int idx) {
    return redact_table(L, req, idx, 1);
}
