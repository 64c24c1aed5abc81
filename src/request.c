/* request.c: from an operation's row and the caller's Lua values to a
 * tf_request that any transport can send.
 *
 * Everything is checked before anything is built, and nothing is sent when
 * a check fails: each failure is an `argument` error naming the field. The
 * Lua values the request points into stay on the stack until the call ends. */
#include <string.h>
#include <strings.h>
#include "check.h"
#include "retry.h"


static void oom(lua_State *L) {
    luaL_error(L, "tfauth: out of memory");
}

static void add_header(lua_State *L, tf_request *req, const char *name, const char *value) {
    if (req->nheaders == TF_MAX_HEADERS)
        tf_argerror(L, req->op->name, "http_headers", "more than %d headers", TF_MAX_HEADERS);
    req->headers[req->nheaders].name = name;
    req->headers[req->nheaders].value = value;
    req->nheaders++;
}

void tf_request_set_header(lua_State *L, tf_request *req, const char *name, const char *value) {
    size_t i;
    for (i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0) {
            req->headers[i].value = value;
            return;
        }
    add_header(L, req, name, value);
}

static void add_secret(tf_request *req, const char *s, size_t len) {
    if (req->nsecrets < TF_MAX_SECRETS) {
        req->secrets[req->nsecrets].ptr = s;
        req->secrets[req->nsecrets].len = len;
        req->nsecrets++;
    }
}

/* ---- parameters --------------------------------------------------------------- */

static void check_param_names(lua_State *L, const tf_op *op, int params) {
    const char *names[TF_MAX_PARAMS + 1];
    int i, n = 0;
    for (i = 0; i < TF_MAX_PARAMS && op->params[i].name; i++) names[n++] = op->params[i].name;
    names[n] = NULL;
    tf_check_keys(L, op->name, "parameter", NULL, params, names);
}

static void check_segment(lua_State *L, const tf_op *op, const tf_param *p, const char *s) {
    /* Escaping alone is not enough: ".." is a dot segment that URL
     * normalisation resolves, and "%2e" would be decoded by the server. */
    if (strpbrk(s, "/\\%") || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        tf_argerror(L, op->name, p->name, "must be a single path segment (no '/', '\\', '%%', '.' or '..')");
}

static void check_param(lua_State *L, const tf_request *req, const tf_param *p, int idx) {
    const tf_op *op = req->op;
    size_t len;
    const char *s;
    int type = lua_type(L, idx);
    if (type == LUA_TNIL) {
        if (p->flags & TF_REQUIRED)
            tf_argerror(L, op->name, p->name, "is required (a %s)",
                        p->type == TF_STRING ? "non-empty string" : "boolean");
        return;
    }
    if (p->type == TF_BOOLEAN) {
        if (type != LUA_TBOOLEAN)
            tf_argerror(L, op->name, p->name, "expected a boolean, got %s", tf_type_name(L, idx));
        return;
    }
    /* Body strings are JSON-escaped; anything else lands in a header or URL. */
    s = tf_check_text(L, op->name, p->name, idx, p->in == TF_IN_BODY ? 0 : TF_TEXT_HEADER, &len);
    if (p->flags & TF_SEGMENT) check_segment(L, op, p, s);
    if (p->flags & TF_SECRET) add_secret((tf_request *)req, s, len);
}

/* ---- bearer ---------------------------------------------------------------------- */

static int is_b64token_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~+/=", c));
}

/* The bearer is a string or a function called now, once per request. Like
 * the Python SDK, a leading "Bearer " is accepted and not doubled. */
static void add_bearer(lua_State *L, tf_request *req, int config) {
    const char *op = req->op->name, *tok;
    size_t len, i;
    lua_getfield(L, config, "bearer");
    if (lua_isfunction(L, -1)) {
        if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
            if (tf_is_error(L, -1)) lua_error(L); /* already a clean tfauth error */
            tf_argerror(L, op, "bearer", "the bearer function raised an error");
        }
        if (lua_type(L, -1) != LUA_TSTRING)
            tf_argerror(L, op, "bearer", "the bearer function returned %s, not a string",
                        tf_type_name(L, -1));
    } else if (lua_isnil(L, -1)) {
        tf_argerror(L, op, "bearer", "is required by %s: give the client a bearer", op);
    }
    tok = tf_check_text(L, op, "bearer", -1, TF_TEXT_HEADER, &len);
    if (len > 7 && strncasecmp(tok, "Bearer ", 7) == 0) tok += 7, len -= 7;
    for (i = 0; i < len; i++)
        if (!is_b64token_char((unsigned char)tok[i]))
            tf_argerror(L, op, "bearer", "must be a bare token (letters, digits, -._~+/=)");
    if (len == 0) tf_argerror(L, op, "bearer", "must not be empty");
    add_secret(req, tok, len);
    lua_pushfstring(L, "Bearer %s", tok); /* stays on the stack for the call */
    add_header(L, req, "Authorization", lua_tostring(L, -1));
}

/* ---- URL, headers, body ------------------------------------------------------------ */

static const tf_param *param_named(const tf_op *op, const char *wire, size_t len, int *index) {
    int i;
    for (i = 0; i < TF_MAX_PARAMS && op->params[i].name; i++)
        if (strlen(op->params[i].wire) == len && strncmp(op->params[i].wire, wire, len) == 0) {
            *index = i;
            return &op->params[i];
        }
    return NULL;
}

static void build_url(lua_State *L, tf_buf *url, const char *base, tf_request *req, int vals) {
    const tf_op *op = req->op;
    const char *p = op->path, *open, *close;
    int i = 0, sep = '?', failed;
    size_t len;

    url->len = 0;
    failed = tf_buf_addstr(url, base);
    while (!failed && (open = strchr(p, '{')) && (close = strchr(open, '}'))) {
        const char *value;
        if (!param_named(op, open + 1, (size_t)(close - open - 1), &i)) luaL_error(L, "tfauth: bad path template");
        value = lua_tolstring(L, vals + i, &len);
        failed = tf_buf_add(url, p, (size_t)(open - p)) || tf_url_escape(url, value, len);
        p = close + 1;
    }
    failed = failed || tf_buf_addstr(url, p);
    for (i = 0; !failed && i < TF_MAX_PARAMS && op->params[i].name; i++) {
        const char *value = lua_tolstring(L, vals + i, &len);
        char lead[2] = {(char)sep, '\0'};
        if (op->params[i].in != TF_IN_QUERY || !value) continue;
        failed = tf_buf_addstr(url, lead) || tf_buf_addstr(url, op->params[i].wire) ||
                 tf_buf_addstr(url, "=") || tf_url_escape(url, value, len);
        sep = '&';
    }
    if (failed) oom(L);
    req->url = url->data;
}

static int header_in(lua_State *L, int table, const char *name) {
    if (!table) return 0;
    lua_pushnil(L);
    while (lua_next(L, table)) {
        lua_pop(L, 1);
        if (strcasecmp(lua_tostring(L, -1), name) == 0) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/* Adds name = value pairs of a checked header table, except the names that
 * `except` (a table or 0) also sets: a per-call header wins over the client's. */
static void add_header_table(lua_State *L, tf_request *req, int table, int except) {
    lua_pushnil(L);
    while (lua_next(L, table)) {
        const char *name = lua_tostring(L, -2);
        if (!header_in(L, except, name)) add_header(L, req, name, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

static int has_body(const tf_op *op) {
    int i;
    for (i = 0; i < TF_MAX_PARAMS && op->params[i].name; i++)
        if (op->params[i].in == TF_IN_BODY) return 1;
    return 0;
}

static void build_body(lua_State *L, tf_request *req, int vals) {
    const tf_op *op = req->op;
    int i;
    lua_createtable(L, 0, TF_MAX_PARAMS);
    for (i = 0; i < TF_MAX_PARAMS && op->params[i].name; i++) {
        const tf_param *p = &op->params[i];
        if (p->in != TF_IN_BODY) continue;
        if (lua_isnil(L, vals + i) && p->type == TF_BOOLEAN)
            lua_pushboolean(L, 0); /* the contract's default, sent as the SDK does */
        else
            lua_pushvalue(L, vals + i);
        lua_setfield(L, -2, p->wire);
    }
    tf_json_encode(L);
    req->body = lua_tolstring(L, -1, &req->body_len);
}

/* ---- the whole request ------------------------------------------------------------- */

/* Checks the per-call overrides (a call's retries replace the client's in
 * req); returns the stack index of their http_headers, or 0. */
static int check_overrides(lua_State *L, tf_request *req, int overrides, const char **base) {
    static const char *const keys[] = {"retries", "server_url", "timeout_ms", "http_headers", NULL};
    const char *op = req->op->name;
    int headers = 0;
    if (!overrides || lua_isnil(L, overrides)) return 0;
    if (!lua_istable(L, overrides))
        tf_argerror(L, op, "overrides", "expected a table, got %s", tf_type_name(L, overrides));
    tf_check_keys(L, op, "per-call override", NULL, overrides, keys);
    lua_getfield(L, overrides, "retries");
    tf_check_retries(L, op, "retries", -1);
    if (!lua_isnil(L, -1)) tf_retry_read(L, -1, &req->retry); /* read now: the caller's table */
    lua_getfield(L, overrides, "server_url");
    if (!lua_isnil(L, -1)) *base = tf_check_base_url(L, op, "server_url", -1);
    lua_getfield(L, overrides, "timeout_ms");
    if (!lua_isnil(L, -1)) req->timeout_ms = tf_check_positive(L, op, "timeout_ms", -1, TF_MAX_TIMEOUT_MS);
    lua_getfield(L, overrides, "http_headers");
    if (!lua_isnil(L, -1)) {
        tf_check_headers(L, op, "http_headers", -1);
        headers = lua_gettop(L);
    }
    return headers;
}

void tf_prepare(lua_State *L, tf_client *c, int config, const tf_op *op, int params,
                int overrides, tf_request *req) {
    const char *base = c->base_url;
    int i, vals, call_headers, client_headers;

    luaL_checkstack(L, 32, "tfauth: stack overflow");
    params = lua_absindex(L, params);
    config = lua_absindex(L, config);
    overrides = overrides ? lua_absindex(L, overrides) : 0;
    req->op = op;
    req->retry = c->retry; /* unless the call brings its own */
    req->nheaders = 0;
    req->nsecrets = 0;
    req->body = NULL;
    req->body_len = 0;
    req->timeout_ms = c->timeout_ms;
    req->connect_timeout_ms = c->connect_timeout_ms;

    /* A missing table reads as "no parameters", so the error names the first
     * required field rather than the table. */
    if (lua_isnil(L, params)) {
        lua_newtable(L);
        lua_replace(L, params);
    }
    if (!lua_istable(L, params))
        tf_argerror(L, op->name, "parameters", "expected a table, got %s", tf_type_name(L, params));
    check_param_names(L, op, params);
    vals = lua_gettop(L) + 1;
    for (i = 0; i < TF_MAX_PARAMS && op->params[i].name; i++) {
        lua_getfield(L, params, op->params[i].name);
        check_param(L, req, &op->params[i], -1);
    }
    call_headers = check_overrides(L, req, overrides, &base);

    lua_getfield(L, config, "http_headers");
    client_headers = lua_gettop(L);

    if (op->bearer) add_bearer(L, req, config); /* may run user code: before any build */
    if (has_body(op)) {
        build_body(L, req, vals);
        add_header(L, req, "Content-Type", "application/json");
    }
    add_header(L, req, "Accept", "application/json");
    if (lua_istable(L, client_headers)) add_header_table(L, req, client_headers, call_headers);
    if (call_headers) add_header_table(L, req, call_headers, 0);
    for (i = 0; i < TF_MAX_PARAMS && op->params[i].name; i++)
        if (op->params[i].in == TF_IN_HEADER && !lua_isnil(L, vals + i))
            add_header(L, req, op->params[i].wire, lua_tostring(L, vals + i));
    build_url(L, &c->url, base, req, vals);
}
