/* response.c: status, headers and body -> the result table or a tfauth.Error.
 *
 * One mapper for every operation and every transport: the operation's row
 * says what a 2xx body must be; everything else is the same for all. */
#include <string.h>
#include <time.h>
#include "retry.h"

#define MAX_MESSAGE 300 /* bytes of server text in a one-line message */

static void set_integer(lua_State *L, int t, const char *field, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, t, field);
}

/* Pushes s as one readable line: control characters become spaces, and long
 * text is cut. */
static void push_one_line(lua_State *L, const char *s, size_t len) {
    luaL_Buffer b;
    size_t i;
    int cut = len > MAX_MESSAGE;
    if (cut) len = MAX_MESSAGE;
    luaL_buffinit(L, &b);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        luaL_addchar(&b, c < 0x20 || c == 0x7F ? ' ' : (char)c);
    }
    if (cut) luaL_addstring(&b, "...");
    luaL_pushresult(&b);
}

static int looks_like_json(const char *s, size_t len, int object_only) {
    while (len && strchr(" \t\r\n", *s)) s++, len--;
    return len && (*s == '{' || (!object_only && *s == '['));
}

void tf_push_headers(lua_State *L, const tf_buf *pairs) {
    const char *p = pairs->data, *end = pairs->data + pairs->len;
    lua_newtable(L);
    while (p && p < end) {
        const char *name = p, *value = p + strlen(p) + 1;
        p = value + strlen(value) + 1;
        lua_getfield(L, -1, name);
        if (lua_isstring(L, -1)) {
            lua_pushstring(L, ", ");
            lua_pushstring(L, value);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, value);
        }
        lua_setfield(L, -2, name);
    }
}

const char *tf_header_find(const tf_buf *pairs, const char *name) {
    const char *p = pairs->data, *end = pairs->data + pairs->len;
    while (p && p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, name) == 0) return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

/* ---- errors with a response ---------------------------------------------------- */

/* err.method and err.url: what was asked, where. The URL goes without its
 * query (reset_password puts the user name there, and people type passwords
 * into user-name fields) or fragment, and is redacted like any other text. */
static void set_request_place(lua_State *L, const tf_request *req, int err) {
    lua_pushstring(L, req->op->method);
    lua_setfield(L, err, "method");
    if (req->url) {
        tf_push_redacted(L, req, req->url, strcspn(req->url, "?#"));
        lua_setfield(L, err, "url");
    }
}

/* Pushes "body.new_password: ensure this value ..." from the first entry of
 * FastAPI's 422 detail list; returns 0 (pushing nothing) when it has none. */
static int push_validation_summary(lua_State *L, int err) {
    int top = lua_gettop(L), n = 0, j;
    lua_getfield(L, err, "detail");       /* top+1 */
    if (!lua_istable(L, top + 1)) goto none;
    lua_rawgeti(L, top + 1, 1);           /* top+2: the first entry */
    if (!lua_istable(L, top + 2)) goto none;
    lua_getfield(L, top + 2, "msg");      /* top+3 */
    lua_getfield(L, top + 2, "loc");      /* top+4 */
    if (lua_type(L, top + 3) != LUA_TSTRING) goto none;
    for (j = 1; lua_istable(L, top + 4) && j <= 8; j++) {
        lua_rawgeti(L, top + 4, j);
        if (!lua_isstring(L, -1)) { lua_pop(L, 1); break; }
        if (j > 1) { lua_pushliteral(L, "."); lua_insert(L, -2); n++; }
        n++;
    }
    if (n) { lua_pushliteral(L, ": "); n++; }
    lua_pushvalue(L, top + 3);
    lua_concat(L, n + 1);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 1;
none:
    lua_settop(L, top);
    return 0;
}

/* Pushes the text that explains a non-2xx answer: FastAPI's detail, then
 * Keycloak's error_description or error, then the reason phrase. */
static void push_explanation(lua_State *L, int err, long status, const char *reason) {
    static const char *const fields[] = {"detail", "error_description", "error", NULL};
    int i;
    for (i = 0; fields[i]; i++) {
        lua_getfield(L, err, fields[i]);
        if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) > 0) return;
        lua_pop(L, 1);
    }
    if (push_validation_summary(L, err)) return;
    if (reason && *reason) lua_pushstring(L, reason);
    else if (status >= 300 && status < 400) lua_pushliteral(L, "redirect not followed");
    else lua_pushliteral(L, "no explanation given");
}

static void lift_fields(lua_State *L, int err, int json) {
    static const char *const fields[] = {"detail", "error", "error_description", NULL};
    int i;
    for (i = 0; fields[i]; i++) {
        lua_getfield(L, json, fields[i]);
        lua_setfield(L, err, fields[i]);
    }
}

/* Sets err.body, err.json and the lifted fields from the redacted response. */
static void set_body(lua_State *L, const tf_request *req, int err, const char *body, size_t len, int json) {
    int rewritten = json && tf_redact_json(L, req, json);
    if (json) {
        lua_pushvalue(L, json);
        lua_setfield(L, err, "json");
        lift_fields(L, err, json);
    }
    /* The body as sent, unless redaction had to rewrite its JSON. */
    if (rewritten) {
        size_t n;
        const char *text;
        lua_pushvalue(L, json);
        tf_json_encode(L);
        /* Escapes can spell a secret the decoded strings did not hold
         * ("\u007fuzz..." after "...7f"): the text is checked again. */
        text = lua_tolstring(L, -1, &n);
        tf_push_redacted(L, req, text, n);
        lua_remove(L, -2);
    } else {
        tf_push_redacted(L, req, body, len);
    }
    lua_setfield(L, err, "body");
}

/* Pushes an error of `kind` carrying the whole response. json is the index
 * of the decoded body, or 0. `what` (may be NULL) is the message; without it
 * the message explains the status. A call with a secret too short to be
 * told from ordinary words (a 5-letter password) gets none of the API's
 * text: no body, json, detail, error or error_description, and a message
 * that says so. */
static void push_response_error(lua_State *L, const tf_request *req, tf_kind kind, long status,
                                 const char *reason, int headers, const char *body, size_t len,
                                 int json, const char *what) {
    int err, withheld = tf_has_short_secret(req);
    tf_error_push(L, kind, req->op->name, "http %d", (int)status);
    err = lua_gettop(L);
    set_integer(L, err, "status", status);
    set_request_place(L, req, err);
    tf_redact_headers(L, req, headers); /* a header may echo the request, too */
    lua_pushvalue(L, headers);
    lua_setfield(L, err, "headers");
    if (!withheld) set_body(L, req, err, body, len, json);
    lua_pushboolean(L, kind != TF_RESPONSE && tf_retry_status(status));
    lua_setfield(L, err, "retryable");

    if (what) lua_pushfstring(L, "invalid response (http %d): %s", (int)status, what);
    else if (withheld)
        lua_pushfstring(L, "http %d: the server's explanation was withheld (a secret of this call is "
                           "shorter than %d characters)", (int)status, TF_SHORT_SECRET);
    else {
        size_t n;
        const char *text;
        /* Redacted before it is cut (no secret half shown), and again
         * after: a control character turned into a space may spell a
         * secret that holds one. */
        push_explanation(L, err, status, reason);
        text = lua_tolstring(L, -1, &n);
        tf_push_redacted(L, req, text ? text : "", text ? n : 0);
        text = lua_tolstring(L, -1, &n);
        push_one_line(L, text, n);
        text = lua_tolstring(L, -1, &n);
        tf_push_redacted(L, req, text, n);
        lua_pushfstring(L, "http %d: %s", (int)status, lua_tostring(L, -1));
        lua_replace(L, -5);
        lua_pop(L, 3);
    }
    lua_setfield(L, err, "message");
}

/* ---- 2xx bodies ------------------------------------------------------------------ */

enum { F_STRING, F_INTEGER };
static const struct {
    const char *name;
    int type, required;
} token_fields[] = {
    {"access_token", F_STRING, 1}, {"refresh_token", F_STRING, 1},
    {"expires_in", F_INTEGER, 1},  {"refresh_expires_in", F_INTEGER, 1},
    {"scope", F_STRING, 1},        {"token_type", F_STRING, 1},
    {"session_state", F_STRING, 0}, {"id_token", F_STRING, 0},
    {"not-before-policy", F_INTEGER, 0},
};

/* Checks the TokenOpenID at idx; returns NULL or what is wrong (a pushed string). */
static const char *check_token(lua_State *L, int idx) {
    size_t i;
    for (i = 0; i < sizeof token_fields / sizeof token_fields[0]; i++) {
        const char *name = token_fields[i].name;
        int ok;
        lua_getfield(L, idx, name);
        tf_push_json_null(L);
        if (lua_isnil(L, -2) || lua_rawequal(L, -1, -2)) {
            lua_pop(L, 2);
            if (token_fields[i].required)
                return lua_pushfstring(L, "TokenOpenID field '%s' is missing", name);
            lua_pushnil(L); /* null reads as absent */
            lua_setfield(L, idx, name);
            continue;
        }
        lua_pop(L, 1);
        ok = token_fields[i].type == F_STRING ? lua_type(L, -1) == LUA_TSTRING
                                              : tf_isinteger(L, -1) && lua_tonumber(L, -1) >= 0;
        if (ok && token_fields[i].type == F_INTEGER) { /* 300, not 300.0 */
            lua_pushinteger(L, (lua_Integer)lua_tonumber(L, -1));
            lua_setfield(L, idx, name);
        }
        if (!ok)
            return lua_pushfstring(L, "TokenOpenID field '%s' should be %s, got %s", name,
                                   token_fields[i].type == F_STRING ? "a string" : "an integer >= 0",
                                   lua_typename(L, lua_type(L, -1)));
        lua_pop(L, 1);
    }
    return NULL;
}

static void add_expiry(lua_State *L, int idx, const char *from, const char *to, time_t now) {
    lua_getfield(L, idx, from);
    set_integer(L, idx, to, (lua_Integer)now + (lua_Integer)lua_tonumber(L, -1));
    lua_pop(L, 1);
}

int tf_map_response(lua_State *L, const tf_request *req, long status, const char *reason,
                    int headers, const tf_buf *raw_headers, const char *body, size_t body_len,
                    int truncated) {
    int json = 0, success = status / 100 == 2;
    const char *problem = NULL;
    time_t now = time(NULL);

    luaL_checkstack(L, 16, "tfauth: stack overflow");
    if (headers) headers = lua_absindex(L, headers);
    if (looks_like_json(body, body_len, success) && !truncated && tf_json_decode(L, body, body_len))
        json = lua_gettop(L);
    /* A TokenOpenID's integers are converted as they are checked; any other
     * body is walked whole (they are small: {} or an error). */
    if (json && !(success && req->op->shape == TF_SHAPE_TOKEN)) tf_json_integerize(L, json);

    if (success) {
        if (truncated) problem = "body larger than max_response_bytes";
        else if (!json) problem = "body is not a JSON object";
        else if (req->op->shape == TF_SHAPE_TOKEN) problem = check_token(L, json);
        if (!problem) {
            if (req->op->shape == TF_SHAPE_TOKEN) {
                add_expiry(L, json, "expires_in", "expires_at", now);
                add_expiry(L, json, "refresh_expires_in", "refresh_expires_at", now);
            }
            lua_settop(L, json);
            return 1;
        }
    }
    /* A success needs no headers table: it is made here, for an error only. */
    if (!headers) {
        tf_push_headers(L, raw_headers);
        headers = lua_gettop(L);
    }
    push_response_error(L, req, success ? TF_RESPONSE : status == 422 ? TF_VALIDATION : TF_HTTP,
                        status, reason, headers, body, body_len, json, problem);
    return 0;
}

/* ---- no response ------------------------------------------------------------------ */

void tf_map_failure(lua_State *L, const tf_request *req, const tf_response *res) {
    static const char *const labels[TF_KIND_COUNT] = {
        [TF_TIMEOUT] = "timeout", [TF_NETWORK] = "network error", [TF_TLS] = "TLS error",
        [TF_RESPONSE] = "invalid response"};
    tf_push_redacted(L, req, res->message, strlen(res->message));
    tf_error_push(L, res->kind, req->op->name, "%s: %s",
                  labels[res->kind] ? labels[res->kind] : "error", lua_tostring(L, -1));
    lua_remove(L, -2);
    set_request_place(L, req, lua_gettop(L));
    set_integer(L, lua_gettop(L), "curl_code", res->code);
    lua_pushboolean(L, res->kind == TF_TIMEOUT || res->kind == TF_NETWORK);
    lua_setfield(L, -2, "retryable");
}
