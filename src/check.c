/* check.c: validation of values from Lua (see check.h). */
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "check.h"

const char *tf_type_name(lua_State *L, int idx) {
    return lua_typename(L, lua_type(L, idx));
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n, k;
        unsigned cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else return 0;
        if (len - i <= n) return 0;
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int has_control(const char *s, size_t len) {
    size_t i;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) return 1;
    return 0;
}

const char *tf_check_text(lua_State *L, const char *op, const char *field, int idx, int flags,
                          size_t *len) {
    size_t n;
    const char *s;
    if (lua_type(L, idx) != LUA_TSTRING)
        tf_argerror(L, op, field, "expected a string, got %s", tf_type_name(L, idx));
    s = lua_tolstring(L, idx, &n);
    if (n == 0 && !(flags & TF_TEXT_EMPTY)) tf_argerror(L, op, field, "must not be empty");
    if (n > TF_MAX_VALUE_BYTES)
        tf_argerror(L, op, field, "is longer than %d bytes", TF_MAX_VALUE_BYTES);
    if (!utf8_valid((const unsigned char *)s, n)) tf_argerror(L, op, field, "is not valid UTF-8");
    if ((flags & TF_TEXT_HEADER) && has_control(s, n))
        tf_argerror(L, op, field, "contains a control character (CR, LF, NUL, ...)");
    if (len) *len = n;
    return s;
}

static int url_has(CURLU *u, CURLUPart which) {
    char *part = NULL;
    int present = curl_url_get(u, which, &part, 0) == CURLUE_OK && part && *part;
    curl_free(part);
    return present;
}

/* An http(s) URL with a host, no credentials and no fragment; a query
 * only when allowed. Returns the string at idx as it is. */
static const char *check_url(lua_State *L, const char *op, const char *field, int idx,
                             int allow_query, size_t *len) {
    const char *s = tf_check_text(L, op, field, idx, TF_TEXT_HEADER, len);
    const char *problem = NULL;
    CURLU *u;

    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        tf_argerror(L, op, field, "must start with http:// or https://");
    if (strchr(s, ' ')) tf_argerror(L, op, field, "must not contain spaces");
    if (!(u = curl_url())) luaL_error(L, "tfauth: out of memory");
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK) problem = "is not a valid URL";
    else if (!url_has(u, CURLUPART_HOST)) problem = "has no host";
    else if (url_has(u, CURLUPART_USER)) problem = "must not carry credentials (user@host)";
    else if (!allow_query && url_has(u, CURLUPART_QUERY)) problem = "must not have a query (?...)";
    else if (url_has(u, CURLUPART_FRAGMENT)) problem = "must not have a fragment (#...)";
    curl_url_cleanup(u);
    if (problem) tf_argerror(L, op, field, "%s", problem);
    return s;
}

const char *tf_check_base_url(lua_State *L, const char *op, const char *field, int idx) {
    size_t len;
    const char *s = check_url(L, op, field, idx, 0, &len);
    while (len && s[len - 1] == '/') len--;
    lua_pushlstring(L, s, len);
    return lua_tostring(L, -1);
}

const char *tf_check_url(lua_State *L, const char *op, const char *field, int idx) {
    size_t len;
    return check_url(L, op, field, idx, 1, &len);
}

long tf_check_positive(lua_State *L, const char *op, const char *field, int idx, long max) {
    lua_Number n;
    if (!tf_isinteger(L, idx))
        tf_argerror(L, op, field, "expected a positive integer, got %s",
                    lua_type(L, idx) == LUA_TNUMBER ? "a fraction" : tf_type_name(L, idx));
    n = lua_tonumber(L, idx);
    if (n < 1 || n > (lua_Number)max)
        tf_argerror(L, op, field, "must be between 1 and %d", (int)max);
    return (long)n;
}

/* Headers tfauth writes itself: a user value would duplicate or contradict. */
static const char *const reserved_headers[] = {
    "authorization", "content-type", "content-length", "transfer-encoding", "host",
    "expect", "connection", "x-org", "x-org-override", NULL};

static int is_token_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

void tf_check_headers(lua_State *L, const char *op, const char *field, int idx) {
    int count = 0;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        tf_argerror(L, op, field, "expected a table of name = value, got %s", tf_type_name(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t len, i;
        const char *name;
        if (lua_type(L, -2) != LUA_TSTRING) tf_argerror(L, op, field, "header names must be strings");
        name = lua_tolstring(L, -2, &len);
        if (len == 0 || len > 256) tf_argerror(L, op, field, "a header name is empty or too long");
        for (i = 0; i < len; i++)
            if (!is_token_char((unsigned char)name[i]))
                tf_argerror(L, op, field, "header name '%s' has a character not allowed in names",
                            has_control(name, len) ? "?" : name);
        for (i = 0; reserved_headers[i]; i++)
            if (len == strlen(reserved_headers[i]) && strncasecmp(name, reserved_headers[i], len) == 0)
                tf_argerror(L, op, field, "'%s' is set by tfauth itself", name);
        lua_pushfstring(L, "%s['%s']", field, name);
        tf_check_text(L, op, lua_tostring(L, -1), -2, TF_TEXT_HEADER | TF_TEXT_EMPTY, NULL);
        lua_pop(L, 2);
        if (++count > TF_MAX_HEADERS / 2)
            tf_argerror(L, op, field, "more than %d headers", TF_MAX_HEADERS / 2);
    }
}

void tf_check_keys(lua_State *L, const char *op, const char *what, const char *parent, int idx,
                   const char *const *names) {
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        const char *const *n = names;
        while (key && *n && strcmp(*n, key) != 0) n++;
        if (!key || !*n) {
            if (!key)
                tf_argerror(L, op, parent ? parent : what, "keys must be names, got a %s key",
                            tf_type_name(L, -2));
            if (parent) key = lua_pushfstring(L, "%s.%s", parent, key);
            tf_argerror(L, op, key, "is not a known %s", what);
        }
        lua_pop(L, 1);
    }
}

/* The Python SDK's RetryConfig. Its behaviour lives with the retry loop;
 * here it is only checked, so a bad value fails before any I/O. */
void tf_check_retries(lua_State *L, const char *op, const char *field, int idx) {
    static const char *const keys[] = {"strategy", "backoff", "retry_connection_errors", NULL};
    static const char *const backoff_keys[] = {"initial_interval", "max_interval", "exponent",
                                               "max_elapsed_time", NULL};
    int i;
    idx = lua_absindex(L, idx);
    if (lua_isnil(L, idx)) return;
    if (!lua_istable(L, idx))
        tf_argerror(L, op, field, "expected a RetryConfig table, got %s", tf_type_name(L, idx));
    tf_check_keys(L, op, "RetryConfig field", field, idx, keys);
    lua_getfield(L, idx, "strategy");
    if (!lua_isnil(L, -1) && (lua_type(L, -1) != LUA_TSTRING ||
                              (strcmp(lua_tostring(L, -1), "backoff") != 0 &&
                               strcmp(lua_tostring(L, -1), "none") != 0)))
        tf_argerror(L, op, "retries.strategy", "must be \"backoff\" or \"none\"");
    lua_getfield(L, idx, "retry_connection_errors");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        tf_argerror(L, op, "retries.retry_connection_errors", "expected a boolean, got %s",
                    tf_type_name(L, -1));
    lua_getfield(L, idx, "backoff");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            tf_argerror(L, op, "retries.backoff", "expected a table, got %s", tf_type_name(L, -1));
        tf_check_keys(L, op, "backoff field", "retries.backoff", -1, backoff_keys);
        for (i = 0; backoff_keys[i]; i++) {
            lua_getfield(L, -1, backoff_keys[i]);
            if (!lua_isnil(L, -1) && (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 0 ||
                                      lua_tonumber(L, -1) != lua_tonumber(L, -1)))
                tf_argerror(L, op, backoff_keys[i], "expected a number >= 0 (retries.backoff)");
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 3);
}
