/* jws.c: a JWS-signed JWT verified (RFC 7515/7519/8725) against a keyset
 * made from a JWKS (jwk.c).
 *
 *   core.jwt_verify(token, keyset, opts [, skip])  -> claims, header
 *   core.jwt_check(token, keyset, opts [, skip [, lean]])
 *       -> claims | nil, err | (lean) nil, reason, kid_missing
 *
 * skip (default 0): the token starts after the first `skip` bytes of the
 * string, so that the gate verifies "Bearer <token>" in place and makes no
 * second long string from it (LuaJIT interns every string).
 *
 * jwt_check is the gate's: a refusal is returned, not raised (raising costs
 * the unwinder a walk of every C frame up to the pcall: ~5% of a refused
 * request), and the header is decoded once per keyset and remembered by its
 * text (tf_header_memo) instead of once per token. Argument errors are
 * raised by both.
 *
 * What is trusted: only the keyset the caller made and the options it gave.
 * Nothing in the token chooses a key beyond naming a `kid` of that set
 * (`jku`, `jwk`, `x5u`, `x5c` are never read), nothing in it widens the
 * algorithm allow-list, and the payload is parsed only after its signature
 * checked out. A refusal is a tfauth.Error of kind `token` with a `reason`
 * (the fixed set: see REASONS below); its message names the failed check and
 * never holds the token or anything decoded from it. Its fields `kid` and
 * `alg` (from the header, once read) and `iss` (from the claims, once read)
 * let an operator see which issuer and key a refused token claimed. */
#include <math.h>
#include <setjmp.h>
#include <string.h>
#include <sys/time.h>
#include "jwk.h"

#define OP_VERIFY "jwt.verify"
#define MAX_TOKEN 16384          /* bytes, the whole compact serialisation */

/* REASONS, every one a refusal can have: "malformed", "algorithm", "key",
 * "signature", "expired", "not_yet_valid", "issuer", "type", "audience". */

/* ---- options ----------------------------------------------------------------- */
/* What verification reads of the JWS header, from the decoded table (the
 * strings stay on the stack) or from the keyset's memo. NULL: absent, or
 * not a string (then the *_other flag says it is there). */
typedef struct {
    const char *alg_name, *kid, *typ;
    size_t alg_len, kid_len, typ_len;
    int kid_other, typ_other, crit;
} header_view;

/* One verification: the options as read, then the token's parts as they are
 * decoded (so that a refusal can name what was read). Stack indices. */
typedef struct {
    unsigned algs;   /* bit i: tf_alg_find's index i allowed */
    int issuer;      /* the issuer string; 0: unchecked (false) */
    int audience;    /* a string or list; 0: unchecked */
    int types;       /* a list; 0: unchecked */
    double leeway, now;
    int has_header;  /* h read */
    header_view h;
    int claims;      /* the decoded table; 0 until read */
    jmp_buf *refused; /* jwt_check: where a refusal returns to; NULL: raise it */
    int lean;         /* jwt_check: a refusal is its reason and kid_missing only */
} verification;

static const char *const option_names[] = {"issuer", "audience", "algorithms", "types", "leeway", "now", NULL};

/* A non-empty list of non-empty strings at idx, or raises naming field. */
static void check_string_list(lua_State *L, int idx, const char *field) {
    int i, n = lua_istable(L, idx) ? (int)lua_rawlen(L, idx) : 0;
    if (n < 1) tf_argerror(L, OP_VERIFY, field, "expected a non-empty list of strings");
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
            tf_argerror(L, OP_VERIFY, field, "item %d is not a non-empty string", i);
        lua_pop(L, 1);
    }
}

static unsigned read_algorithms(lua_State *L, int idx) {
    unsigned mask = 0;
    int i, n;
    if (lua_isnil(L, idx)) return TF_ALG_DEFAULT;
    check_string_list(L, idx, "algorithms");
    n = (int)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *name;
        int a;
        lua_rawgeti(L, idx, i);
        name = lua_tolstring(L, -1, &len);
        a = tf_alg_find(name, len);
        if (a < 0 && (strcmp(name, "none") == 0 || strncmp(name, "HS", 2) == 0))
            tf_argerror(L, OP_VERIFY, "algorithms", "'%s' is never accepted (none and HS* are refused)", name);
        if (a < 0)
            tf_argerror(L, OP_VERIFY, "algorithms", "unknown algorithm '%s' (" TF_ALG_NAMES ")", name);
        mask |= 1u << a;
        lua_pop(L, 1);
    }
    return mask;
}

static double read_seconds(lua_State *L, int idx, const char *field, double dflt, int non_negative) {
    double v;
    if (lua_isnil(L, idx)) return dflt;
    if (lua_type(L, idx) != LUA_TNUMBER) tf_argerror(L, OP_VERIFY, field, "expected a number of seconds");
    v = lua_tonumber(L, idx);
    if (!isfinite(v) || (non_negative && v < 0))
        tf_argerror(L, OP_VERIFY, field, non_negative ? "expected a finite number >= 0" : "expected a finite number");
    return v;
}

/* audience: a string or a list; nil or false leaves it unchecked (0). */
static int read_audience(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TSTRING) {
        if (lua_rawlen(L, idx) == 0) tf_argerror(L, OP_VERIFY, "audience", "is empty");
        return idx;
    }
    if (lua_istable(L, idx)) {
        check_string_list(L, idx, "audience");
        return idx;
    }
    if (!lua_isnil(L, idx) && !(lua_isboolean(L, idx) && !lua_toboolean(L, idx)))
        tf_argerror(L, OP_VERIFY, "audience", "expected a string, a list of strings, or false");
    return 0;
}

static double wall_clock(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Reads opts (index) into o; its values are pushed, in option_names order,
 * so o's indices stay valid. Raises `argument` errors naming the field. */
static void read_opts(lua_State *L, int idx, verification *o) {
    int base, i;
    memset(o, 0, sizeof *o); /* header, claims: 0, nothing read yet */
    if (lua_isnil(L, idx)) {
        lua_newtable(L);
        lua_replace(L, idx);
    }
    if (!lua_istable(L, idx))
        tf_argerror(L, OP_VERIFY, "opts", "expected a table, got %s", lua_typename(L, lua_type(L, idx)));
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        for (i = 0; option_names[i]; i++)
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), option_names[i]) == 0) break;
        if (!option_names[i]) {
            const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
            tf_argerror(L, OP_VERIFY, name, "unknown option (issuer, audience, algorithms, types, leeway, now)");
        }
    }
    base = lua_gettop(L);
    for (i = 0; option_names[i]; i++) lua_getfield(L, idx, option_names[i]);
    /* issuer: required, so that forgetting it is loud; false skips it. */
    if (lua_isnil(L, base + 1))
        tf_argerror(L, OP_VERIFY, "issuer", "is required: the expected iss, or false to skip the check");
    if (lua_isboolean(L, base + 1) && !lua_toboolean(L, base + 1)) o->issuer = 0;
    else if (lua_type(L, base + 1) == LUA_TSTRING && lua_rawlen(L, base + 1) > 0) o->issuer = base + 1;
    else tf_argerror(L, OP_VERIFY, "issuer", "expected a non-empty string or false");
    o->audience = read_audience(L, base + 2);
    o->algs = read_algorithms(L, base + 3);
    o->types = 0;
    if (!lua_isnil(L, base + 4) && !(lua_isboolean(L, base + 4) && !lua_toboolean(L, base + 4))) {
        check_string_list(L, base + 4, "types");
        o->types = base + 4;
    }
    o->leeway = read_seconds(L, base + 5, "leeway", 0, 1);
    o->now = lua_isnil(L, base + 6) ? wall_clock() : read_seconds(L, base + 6, "now", 0, 0);
}

/* ---- refusals -------------------------------------------------------------- */
/* Copies member `name` of the table at from into the error at err, when it
 * is a string: what the token claims, never a piece of its encoding. */
static void copy_string(lua_State *L, int from, const char *name, int err) {
    lua_getfield(L, from, name);
    if (lua_type(L, -1) == LUA_TSTRING) lua_setfield(L, err, name);
    else lua_pop(L, 1);
}

static void set_string(lua_State *L, int err, const char *name, const char *s, size_t len) {
    if (!s) return;
    lua_pushlstring(L, s, len);
    lua_setfield(L, err, name);
}

static int refuse(lua_State *L, const verification *v, const char *reason, int kid_missing, const char *why) {
    int err;
    if (v->lean) {
        lua_pushstring(L, reason);
        lua_pushboolean(L, kid_missing);
        longjmp(*v->refused, 1);
    }
    tf_error_push(L, TF_TOKEN, OP_VERIFY, "token refused (%s): %s", reason, why);
    err = lua_gettop(L);
    lua_pushstring(L, reason);
    lua_setfield(L, err, "reason");
    if (kid_missing) {
        lua_pushboolean(L, 1);
        lua_setfield(L, err, "kid_missing");
    }
    if (v->has_header) {
        set_string(L, err, "kid", v->h.kid, v->h.kid_len);
        set_string(L, err, "alg", v->h.alg_name, v->h.alg_len);
    }
    if (v->claims) copy_string(L, v->claims, "iss", err);
    if (v->refused) longjmp(*v->refused, 1); /* jwt_check: returned, the error on top */
    return lua_error(L);
}

/* ---- the token ---------------------------------------------------------------- */
/* Decodes JSON bytes that must be an object; pushes the table or refuses. */
static int push_object(lua_State *L, const verification *v, const unsigned char *s, size_t len,
                       const char *what) {
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    if (i == len || s[i] != '{' || !tf_json_decode(L, (const char *)s, len) || !lua_istable(L, -1))
        refuse(L, v, "malformed", 0, what);
    tf_json_integerize(L, -1);
    return lua_gettop(L);
}

static int is_number(lua_State *L, int idx) {
    return lua_type(L, idx) == LUA_TNUMBER && isfinite(lua_tonumber(L, idx));
}

/* Whether the string at s is one of the strings of the list at list. */
static int in_list(lua_State *L, int s, int list) {
    int i, n = (int)lua_rawlen(L, list), found = 0;
    for (i = 1; i <= n && !found; i++) {
        lua_rawgeti(L, list, i);
        found = lua_rawequal(L, -1, s);
        lua_pop(L, 1);
    }
    return found;
}

/* The token's aud (string or list) holds one of ours (string or list). */
static int audience_ok(lua_State *L, int aud, int ours) {
    int i, n, ok = 0;
    if (lua_type(L, aud) == LUA_TSTRING)
        return lua_type(L, ours) == LUA_TSTRING ? lua_rawequal(L, aud, ours) : in_list(L, aud, ours);
    if (!lua_istable(L, aud)) return 0;
    n = (int)lua_rawlen(L, aud);
    for (i = 1; i <= n && !ok; i++) {
        lua_rawgeti(L, aud, i);
        ok = lua_type(L, -1) == LUA_TSTRING &&
             (lua_type(L, ours) == LUA_TSTRING ? lua_rawequal(L, -1, ours) : in_list(L, lua_gettop(L), ours));
        lua_pop(L, 1);
    }
    return ok;
}

/* ---- typ ------------------------------------------------------------------------ */
/* A header `typ` is a media type (RFC 7515 §4.1.9): compared ignoring ASCII
 * case, with "application/" implied where it is left out. So "at+jwt",
 * "AT+JWT" and "application/at+jwt" are one type. */
static int ascii_lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int same_letters(const char *a, const char *b, size_t len) {
    size_t i;
    for (i = 0; i < len; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return 0;
    return 1;
}

static const char *without_application(const char *s, size_t *len) {
    static const char prefix[] = "application/";
    const size_t n = sizeof prefix - 1;
    if (*len > n && same_letters(s, prefix, n)) {
        *len -= n;
        return s + n;
    }
    return s;
}

static int same_media_type(const char *a, size_t a_len, const char *b, size_t b_len) {
    a = without_application(a, &a_len);
    b = without_application(b, &b_len);
    return a_len == b_len && same_letters(a, b, a_len);
}

/* Whether the media type str is one of the list at list. */
static int media_type_in_list(lua_State *L, const char *str, size_t len, int list) {
    size_t item_len;
    const char *item;
    int i, n = (int)lua_rawlen(L, list), found = 0;
    for (i = 1; i <= n && !found; i++) {
        lua_rawgeti(L, list, i);
        item = lua_tolstring(L, -1, &item_len);
        found = same_media_type(str, len, item, item_len);
        lua_pop(L, 1);
    }
    return found;
}

/* The header's typ is one of `types`; or the header says nothing more than
 * "a JWT" (no typ, or JWT) and the `typ` claim (Keycloak's "Bearer", "ID",
 * "Refresh"), compared exactly, is. RFC 9068 access tokens say "at+jwt" in
 * the header; Keycloak's say "Bearer" in the claim. */
static int type_ok(lua_State *L, const verification *v) {
    int top = lua_gettop(L), ok = 0;
    if (v->h.typ) {
        if (media_type_in_list(L, v->h.typ, v->h.typ_len, v->types)) ok = 1;
        else if (!same_media_type(v->h.typ, v->h.typ_len, "JWT", 3)) ok = -1;
    } else if (v->h.typ_other) {
        ok = -1;
    }
    if (ok == 0) {
        lua_getfield(L, v->claims, "typ");
        ok = lua_type(L, -1) == LUA_TSTRING && in_list(L, lua_gettop(L), v->types);
    }
    lua_settop(L, top);
    return ok > 0;
}

/* ---- the claims ------------------------------------------------------------------ */
static void check_claims(lua_State *L, const verification *v) {
    int top = lua_gettop(L), claims = v->claims;
    double t;
    lua_getfield(L, claims, "exp");
    if (!is_number(L, -1)) refuse(L, v, "expired", 0, "the token has no numeric exp claim");
    if (v->now >= lua_tonumber(L, -1) + v->leeway) refuse(L, v, "expired", 0, "the token's exp is past");
    lua_getfield(L, claims, "nbf");
    if (!lua_isnil(L, -1)) {
        if (!is_number(L, -1)) refuse(L, v, "not_yet_valid", 0, "the token's nbf claim is not a number");
        if (v->now + v->leeway < lua_tonumber(L, -1))
            refuse(L, v, "not_yet_valid", 0, "the token's nbf is in the future");
    }
    lua_getfield(L, claims, "iat");
    if (!lua_isnil(L, -1)) {
        if (!is_number(L, -1)) refuse(L, v, "not_yet_valid", 0, "the token's iat claim is not a number");
        t = lua_tonumber(L, -1);
        if (t > v->now + v->leeway) refuse(L, v, "not_yet_valid", 0, "the token's iat is in the future");
    }
    if (v->issuer) {
        lua_getfield(L, claims, "iss");
        if (!lua_rawequal(L, -1, v->issuer))
            refuse(L, v, "issuer", 0, "the token's iss is not the expected issuer");
    }
    if (v->types && !type_ok(L, v))
        refuse(L, v, "type", 0, "neither the token's header typ nor its typ claim is one of the allowed types");
    if (v->audience) {
        lua_getfield(L, claims, "aud");
        if (!audience_ok(L, lua_gettop(L), v->audience))
            refuse(L, v, "audience", 0, "the token's aud holds none of the expected audiences");
    }
    lua_settop(L, top);
}

/* ---- the compact serialisation ---------------------------------------------------- */
/* Splits the compact serialisation and decodes its three parts into buf. */
typedef struct {
    const unsigned char *header, *payload, *sig;
    size_t header_len, payload_len, sig_len;
    size_t input_len; /* header.payload, the signing input */
    size_t header_text_len; /* the header's base64url text, token[0, len) */
} parts;

static void split(lua_State *L, const verification *v, const char *token, size_t len, unsigned char *buf,
                  parts *p) {
    const char *d1, *d2;
    size_t off = 0, n;
    if (len > MAX_TOKEN) refuse(L, v, "malformed", 0, "the token is longer than 16 KiB");
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        refuse(L, v, "malformed", 0, "the token is not three dot-separated segments");
    /* An empty signature is a shape JWS allows (alg none): it fails later, on
     * the algorithm or the signature. */
    if (d1 == token || d2 == d1 + 1) refuse(L, v, "malformed", 0, "the token has an empty header or payload");
    if (tf_b64url_decode(token, (size_t)(d1 - token), 1, buf, &n) != 0)
        refuse(L, v, "malformed", 0, "the token's header is not unpadded base64url");
    p->header = buf;
    p->header_len = n;
    off = n;
    if (tf_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1, buf + off, &n) != 0)
        refuse(L, v, "malformed", 0, "the token's payload is not unpadded base64url");
    p->payload = buf + off;
    p->payload_len = n;
    off += n;
    if (tf_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), 1, buf + off, &n) != 0)
        refuse(L, v, "malformed", 0, "the token's signature is not unpadded base64url");
    p->sig = buf + off;
    p->sig_len = n;
    p->input_len = (size_t)(d2 - token);
    p->header_text_len = (size_t)(d1 - token);
}

/* ---- the header ------------------------------------------------------------------ */
/* Member name of the table at t, left on the stack (a string's bytes stay
 * valid while it is there): its bytes when a string, else NULL with *other
 * set when it is there at all. */
static const char *string_member(lua_State *L, int t, const char *name, size_t *len, int *other) {
    lua_getfield(L, t, name);
    *len = 0;
    if (lua_type(L, -1) == LUA_TSTRING) return lua_tolstring(L, -1, len);
    if (other) *other = !lua_isnil(L, -1);
    return NULL;
}

/* Decodes the header into the view; returns the table's stack index. */
static int read_header(lua_State *L, verification *v, const parts *p) {
    int header = push_object(L, v, p->header, p->header_len, "the token's header is not a JSON object");
    header_view *h = &v->h;
    h->alg_name = string_member(L, header, "alg", &h->alg_len, NULL);
    h->kid = string_member(L, header, "kid", &h->kid_len, &h->kid_other);
    h->typ = string_member(L, header, "typ", &h->typ_len, &h->typ_other);
    lua_getfield(L, header, "crit");
    h->crit = !lua_isnil(L, -1);
    v->has_header = 1;
    return header;
}

/* The header's checks, before any key is used; returns the alg's index. */
static int check_header(lua_State *L, const verification *v) {
    const header_view *h = &v->h;
    int alg;
    if (h->crit) refuse(L, v, "malformed", 0, "the token's header has crit (no extension is understood)");
    if (!h->alg_name) refuse(L, v, "malformed", 0, "the token's header has no alg");
    alg = tf_alg_find(h->alg_name, h->alg_len);
    if (alg < 0 || !(v->algs & (1u << alg)))
        refuse(L, v, "algorithm", 0, "the token's alg is not in the allowed algorithms");
    if (h->kid_other) refuse(L, v, "malformed", 0, "the token's kid is not a string");
    return alg;
}

/* The view of the header whose text the keyset's memo holds; 0 if it holds
 * another (or none). */
static int recall_header(verification *v, tf_header_memo *m, const char *text, size_t len) {
    header_view *h = &v->h;
    if (m->segment_len == 0 || m->segment_len != len || memcmp(m->segment, text, len) != 0) return 0;
    memset(h, 0, sizeof *h);
    h->alg_name = tf_alg_name(m->alg);
    h->alg_len = strlen(h->alg_name);
    if (m->has_kid) h->kid = m->kid, h->kid_len = m->kid_len;
    if (m->has_typ) h->typ = m->typ_text, h->typ_len = m->typ_len;
    v->has_header = 1;
    return 1;
}

/* Remembers a header that passed every check but the options' (its alg is
 * known, no crit, kid and typ strings or absent) and fits the memo. */
static void remember_header(const header_view *h, tf_header_memo *m, const char *text, size_t len) {
    int alg = h->alg_name ? tf_alg_find(h->alg_name, h->alg_len) : -1;
    m->segment_len = 0;
    if (alg < 0 || h->crit || h->kid_other || h->typ_other || len > sizeof m->segment ||
        h->kid_len > sizeof m->kid || h->typ_len > sizeof m->typ_text)
        return;
    memcpy(m->segment, text, len);
    m->alg = alg;
    m->has_kid = h->kid != NULL;
    if (h->kid) memcpy(m->kid, h->kid, h->kid_len);
    m->kid_len = h->kid_len;
    m->has_typ = h->typ != NULL;
    if (h->typ) memcpy(m->typ_text, h->typ, h->typ_len);
    m->typ_len = h->typ_len;
    m->segment_len = len;
}

/* The skip argument at idx: absent, or an integer from 0 to len. */
static size_t read_skip(lua_State *L, int idx, size_t len) {
    lua_Number n;
    if (lua_isnoneornil(L, idx)) return 0;
    n = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : -1;
    if (!(n >= 0 && n <= (lua_Number)len && n == (lua_Number)(size_t)n))
        tf_argerror(L, OP_VERIFY, "skip", "expected an integer from 0 to the string's length");
    return (size_t)n;
}

/* Both entries: refused (jwt_check) is where a refusal returns to, NULL
 * for jwt_verify (it raises); lean (jwt_check's) as in the file's header.
 * Pushes the claims (jwt_verify: then the header); returns how many values. */
static int verify(lua_State *L, jmp_buf *refused, int lean) {
    unsigned char buf[TF_B64URL_MAX(MAX_TOKEN) + 8];
    verification v;
    parts p;
    tf_keyset *ks;
    const char *token;
    size_t len, skip;
    int alg, header = 0;
    if (lua_type(L, 1) != LUA_TSTRING)
        return tf_argerror(L, OP_VERIFY, "token", "expected a string, got %s", lua_typename(L, lua_type(L, 1)));
    if (!(ks = tf_keyset_check(L, 2)))
        return tf_argerror(L, OP_VERIFY, "keyset", "expected a keyset from jwt.keyset(jwks), got %s",
                           luaL_typename(L, 2));
    token = lua_tolstring(L, 1, &len);
    skip = read_skip(L, 4, len);
    token += skip;
    len -= skip;
    lua_settop(L, 3);
    read_opts(L, 3, &v); /* its errors are raised by both entries */
    v.refused = refused;
    v.lean = refused && lean;
    split(L, &v, token, len, buf, &p);

    /* jwt_verify returns the header's table, so it decodes it every time. */
    if (!refused || !recall_header(&v, tf_keyset_memo(ks), token, p.header_text_len)) {
        header = read_header(L, &v, &p);
        if (refused) remember_header(&v.h, tf_keyset_memo(ks), token, p.header_text_len);
    }
    alg = check_header(L, &v);
    switch (tf_keyset_verify(ks, alg, v.h.kid, v.h.kid_len, (const unsigned char *)token, p.input_len, p.sig,
                             p.sig_len)) {
    case TF_SIG_VALID: break;
    case TF_SIG_NO_KID: refuse(L, &v, "key", 1, "no key in the keyset has the token's kid"); break;
    case TF_SIG_NO_KEY: refuse(L, &v, "key", 0, "no key in the keyset fits the token's algorithm"); break;
    default: refuse(L, &v, "signature", 0, "the signature does not verify");
    }

    /* Only now, signed by a trusted key, is the payload parsed. */
    v.claims = push_object(L, &v, p.payload, p.payload_len, "the token's payload is not a JSON object");
    check_claims(L, &v);
    if (refused) return 1;
    lua_pushvalue(L, header);
    return 2;
}

/* core.jwt_verify(token, keyset, opts [, skip]) -> claims, header */
static int jwt_verify(lua_State *L) {
    return verify(L, NULL, 0);
}

/* core.jwt_check(token, keyset, opts [, skip [, lean]]) -> claims | nil, err
 * | (lean) nil, reason, kid_missing. Its own frame holds the jump buffer, so
 * that no local of verify's is read after a jump; lean is read before the
 * jump can happen, so it needs no volatile. */
static int jwt_check(lua_State *L) {
    jmp_buf refused;
    const int lean = lua_toboolean(L, 5);
    if (setjmp(refused)) {
        lua_pushnil(L);
        lua_insert(L, lean ? -3 : -2);
        return lean ? 3 : 2;
    }
    return verify(L, &refused, lean);
}

void tf_open_jws(lua_State *L, int module) {
    lua_pushcfunction(L, jwt_verify);
    lua_setfield(L, module, "jwt_verify");
    lua_pushcfunction(L, jwt_check);
    lua_setfield(L, module, "jwt_check");
}
