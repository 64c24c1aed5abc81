/* tfauth.h: the pieces of the C core and how they meet. Every file depends
 * only on files below it in this map (spec/support/lint.sh checks that the
 * calls between files form no cycle).
 *
 *   core.c       luaopen_tfauth_core: calls one opener per concern, nothing else
 *   bridge.c     for transports written in Lua: client:prepare, prepare_fetch, map,
 *                core.retry_wait (the libcurl path's request, answer and retries)
 *   fetch.c      client:fetch: GET of a JSON document at an absolute URL
 *   client.c     the client userdata, its configuration and its calls
 *   hooks.c      before_request, after_success, after_error
 *   request.c    Lua parameters -> tf_request (validation, URL, headers, JSON body)
 *   response.c   status, headers, body -> result table or error
 *   jwt.c        a JWT's claims, unverified
 *   jws.c        a JWS-signed JWT verified: shape, header, typ, claims, refusals
 *   jwk.c        keys and key sets from a JWKS, and their signature check (jwk.h)
 *   seal.c       AES-256-GCM sealing of data at rest
 *   transport.h  sending a tf_request (transport_curl.c: libcurl)
 *   retry.c      the RetryConfig policy, the clock (retry.h)
 *   redact.c     keeping secrets out of everything a caller can see
 *   ops.c        the six operations as data
 *   check.c      value checks shared by config and calls (check.h)
 *   url.c        percent-encoding of a URL's parts (RFC 3986), hex digits
 *   json.c       the floor: JSON through the private lua-cjson instance
 *   luax.c       the floor: small Lua helpers (table copies)
 *   error.c      the floor: the one error constructor and tfauth.Error
 *   buf.c        the floor: a growable byte buffer
 *   b64url.c     the floor: base64url decoding
 *   compat.h     the Lua 5.1-5.4 / LuaJIT shim
 *
 * libcurl is the transport's: only the files on the next line include
 * curl/curl.h (lint checks it). check.c parses URLs with curl_url, so that
 * what is accepted is what the transport will send to; retry.c reads an HTTP
 * date (Retry-After) with curl_getdate. Nothing else reaches libcurl, and
 * request building never reaches into a transport.
 *   libcurl: transport_curl.c check.c retry.c
 */
#ifndef TFAUTH_H
#define TFAUTH_H

#include <stddef.h>
#include "compat.h"

#define TFAUTH_VERSION "1.2.0"

/* ---- growable byte buffer (buf.c) ---------------------------------------- */
typedef struct {
    char *data;
    size_t len, cap;
} tf_buf;

int tf_buf_reserve(tf_buf *b, size_t extra); /* 0 ok, -1 out of memory */
int tf_buf_add(tf_buf *b, const char *s, size_t n);
int tf_buf_addstr(tf_buf *b, const char *s);
void tf_buf_free(tf_buf *b);

/* url.c: percent-encodes s into b (RFC 3986: unreserved characters kept).
 * 0 ok, -1 out of memory. */
int tf_url_escape(tf_buf *b, const char *s, size_t len);
/* url.c: the value of a hexadecimal digit (either case), or -1. */
int tf_hex_digit(char c);

/* ---- base64url (b64url.c) ---------------------------------------------- */
/* Decodes s into out (room for len * 3 / 4 + 1 bytes).
 * strict: no '=' padding and the unused trailing bits zero (the one spelling
 * of each value); otherwise trailing '=' is skipped. 0 ok, -1 not base64url. */
#define TF_B64URL_MAX(len) ((len) / 4 * 3 + 3)
int tf_b64url_decode(const char *s, size_t len, int strict, unsigned char *out, size_t *out_len);

/* ---- errors (error.c) ---------------------------------------------------- */
#define TF_ERROR_KINDS(X)        \
    X(ARGUMENT, "argument")      \
    X(VALIDATION, "validation")  \
    X(HTTP, "http")              \
    X(TIMEOUT, "timeout")        \
    X(NETWORK, "network")        \
    X(TLS, "tls")                \
    X(RESPONSE, "response")      \
    X(TOKEN, "token")

typedef enum {
#define TF_KIND_ENUM(id, name) TF_##id,
    TF_ERROR_KINDS(TF_KIND_ENUM)
#undef TF_KIND_ENUM
    TF_KIND_COUNT
} tf_kind;

/* Pushes a new tfauth.Error with kind, operation (may be NULL) and message. */
void tf_error_push(lua_State *L, tf_kind kind, const char *op, const char *fmt, ...);
/* Pushes an `argument` error naming `field` ("argument 'field': ..."). */
void tf_argerror_push(lua_State *L, const char *op, const char *field, const char *fmt, ...);
/* The same, raised. */
int tf_argerror(lua_State *L, const char *op, const char *field, const char *fmt, ...);
int tf_is_error(lua_State *L, int idx);
void tf_open_error(lua_State *L, int module);

/* ---- the operations as data (ops.c) -------------------------------------- */
typedef enum { TF_IN_BODY, TF_IN_QUERY, TF_IN_PATH, TF_IN_HEADER } tf_place;
typedef enum { TF_STRING, TF_BOOLEAN } tf_type;
typedef enum { TF_SHAPE_TOKEN, TF_SHAPE_OK } tf_shape;

enum {
    TF_REQUIRED = 1, /* must be given, and non-empty when a string */
    TF_SECRET = 2,   /* never echoed: redacted from responses and errors */
    TF_SEGMENT = 4   /* a single path segment: no '/', '\', '%', '.' or '..' */
};

typedef struct {
    const char *name; /* Lua parameter name */
    const char *wire; /* JSON key, query name, header name, or {placeholder} */
    tf_place in;
    tf_type type;
    int flags;
} tf_param;

#define TF_MAX_PARAMS 4

typedef struct {
    const char *name;       /* short Lua name: "login" */
    const char *aliases[2]; /* the Python SDK's long names */
    const char *method;
    const char *path; /* template, "{name}" for path parameters */
    int bearer;       /* sends Authorization: Bearer */
    tf_shape shape;   /* what a 2xx body must be */
    tf_param params[TF_MAX_PARAMS];
} tf_op;

extern const tf_op tf_ops[];
extern const size_t tf_op_count;
const tf_op *tf_op_find(const char *name); /* short name or alias; NULL if none */
/* Fills op as a GET of a JSON document named `name` (not an operation). */
void tf_op_get(tf_op *op, const char *name);

/* ---- a request, ready for any transport (request.c) ---------------------- */
#define TF_MAX_HEADERS 64
#define TF_MAX_SECRETS 8
#define TF_MAX_VALUE_BYTES 16384 /* any one parameter, header or bearer */
#define TF_MAX_TIMEOUT_MS 86400000L /* one day: timeout_ms, connect_timeout_ms */

typedef struct {
    const char *name, *value;
} tf_header;

typedef struct {
    const char *ptr;
    size_t len;
} tf_span;

/* A RetryConfig as retry.c applies it: the client's, read when it is made,
 * or a call's own. The fields, listed once for every copy in and out. */
#define TF_RETRY_FIELDS(X)          \
    X(int, enabled)                 \
    X(int, connection_errors)       \
    X(double, initial_ms)           \
    X(double, max_ms)               \
    X(double, exponent)             \
    X(double, max_elapsed_ms)

typedef struct {
#define TF_RETRY_MEMBER(type, name) type name;
    TF_RETRY_FIELDS(TF_RETRY_MEMBER)
#undef TF_RETRY_MEMBER
} tf_retry;

typedef struct {
    const tf_op *op;
    tf_retry retry;
    const char *url; /* NUL-terminated, in the client's scratch buffer */
    tf_header headers[TF_MAX_HEADERS];
    size_t nheaders;
    const char *body; /* a Lua string kept on the stack; NULL for no body */
    size_t body_len;
    long timeout_ms, connect_timeout_ms;
    tf_span secrets[TF_MAX_SECRETS]; /* values to redact from anything echoed */
    int nsecrets;
} tf_request;

/* ---- a response, as any transport reports it ------------------------------ */
typedef struct {
    int failed;         /* no HTTP response: see kind, code, message */
    tf_kind kind;       /* TIMEOUT, NETWORK, TLS or RESPONSE when failed */
    long code;          /* the transport's own code (CURLcode) */
    char message[256];  /* the transport's own words for the failure */
    long status;
    char reason[64];    /* status line's reason phrase, may be empty */
    tf_buf headers;     /* "name\0value\0" pairs, names lower-cased */
    tf_buf body;
    int truncated;      /* body went past max_response_bytes */
    double seconds;     /* total time */
} tf_response;

/* ---- the client (client.c) ------------------------------------------------ */
struct tf_transport;

typedef struct {
    struct tf_transport *transport; /* NULL once closed */
    char *base_url;                 /* scheme://host[:port][/prefix], no trailing '/' */
    char *user_agent;
    long timeout_ms, connect_timeout_ms;
    size_t max_response_bytes;
    int config_ref; /* registry: {bearer=, headers=, debug=, retries=} */
    tf_buf url;     /* scratch for the request URL */
    int busy;       /* a request is in flight: its URL and buffers are in use */
    int has_debug;  /* a debug function is configured */
    int has_hooks;  /* before_request, after_success or after_error is */
    tf_retry retry; /* the client's RetryConfig, read once */
} tf_client;

#define TF_CLIENT_MT "tfauth.client"

void tf_open_client(lua_State *L, int module);
void tf_open_fetch(lua_State *L, int module);
void tf_open_bridge(lua_State *L, int module);
/* client.c: the client at stack index 1 (raises when it is not one). */
tf_client *tf_check_client(lua_State *L);
/* The same, raising an `argument` error for op when it is closed or, with
 * idle, busy with another request. */
tf_client *tf_usable_client(lua_State *L, const char *op, int idle);
/* fetch.c: checks client:fetch's arguments (url at 2, name at 3) and fills
 * op and req as a GET of that URL; the strings stay on the stack. */
tf_client *tf_fetch_request(lua_State *L, tf_op *op, tf_request *req);
void tf_open_jwt(lua_State *L, int module);
void tf_open_jws(lua_State *L, int module);
void tf_open_seal(lua_State *L, int module);

/* request.c: validates params (index) and overrides (index or 0), pushes the
 * Lua values it keeps alive, fills req. config is the index of the client's
 * saved configuration table. Raises `argument` errors. */
void tf_prepare(lua_State *L, tf_client *c, int config, const tf_op *op, int params,
                int overrides, tf_request *req);

/* response.c: pushes the result table (returns 1) or a tfauth.Error (returns 0).
 * headers is a stack index of a table of lower-cased names -> values, or 0:
 * then the table is made from raw_headers (a transport's pairs) only if an
 * error needs it. */
int tf_map_response(lua_State *L, const tf_request *req, long status, const char *reason,
                    int headers, const tf_buf *raw_headers, const char *body, size_t body_len,
                    int truncated);
/* Pushes the error for a response that never arrived. */
void tf_map_failure(lua_State *L, const tf_request *req, const tf_response *res);
/* Pushes a table of a transport's "name\0value\0" header pairs; repeated
 * names are joined with ", ". */
void tf_push_headers(lua_State *L, const tf_buf *pairs);
/* The value of header `name` (lower-case) in such pairs, or NULL. */
const char *tf_header_find(const tf_buf *pairs, const char *name);

/* redact.c */
/* Pushes text with every secret of req (may be NULL) of 4 bytes or more, in
 * any form (as sent, JSON-escaped, percent-encoded, HTML-escaped), and
 * anything shaped like a JWT, replaced by [REDACTED]. */
void tf_push_redacted(lua_State *L, const tf_request *req, const char *text, size_t len);
/* Redacts, in place, a decoded JSON value at idx: echoed input, secret-named
 * keys, secret values inside strings. Returns whether anything changed. */
int tf_redact_json(lua_State *L, const tf_request *req, int idx);
/* The same for a table of response headers, where a secret of any length
 * is redacted: a short one is not withheld with the body. */
int tf_redact_headers(lua_State *L, const tf_request *req, int idx);
/* Secrets shorter than this many characters cannot be told from ordinary
 * words: when a call has one, the API's text is withheld from its errors. */
#define TF_SHORT_SECRET 8
int tf_has_short_secret(const tf_request *req);

/* hooks.c: each returns 1, or 0 with the error on top of the stack. */
int tf_hook_before(lua_State *L, int config, tf_request *req);
int tf_hook_after_success(lua_State *L, int config, const tf_request *req, long status,
                          int headers, int result, int attempts);
int tf_hook_after_error(lua_State *L, int config, const tf_request *req, int err);
/* request.c: sets a header, replacing one of the same name (any case). */
void tf_request_set_header(lua_State *L, tf_request *req, const char *name, const char *value);
/* luax.c: pushes a copy of the table at idx, `depth` levels deep. */
void tf_push_copy(lua_State *L, int idx, int depth);
/* luax.c: registers a userdata type: metatable `name` with `meta`, an __index
 * table of `methods`; leaves the metatable on the stack. */
void tf_new_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/* json.c: the private lua-cjson instance, made by tf_open_json */
void tf_open_json(lua_State *L);
void tf_json_encode(lua_State *L); /* table on top -> string on top (raises) */
int tf_json_decode(lua_State *L, const char *s, size_t len); /* pushes value; 0 if invalid (pushes nothing) */
/* Integral numbers in the decoded value at idx become integers (Lua 5.3+):
 * JSON's 300 reads as 300, not 300.0. */
void tf_json_integerize(lua_State *L, int idx);
void tf_push_json_null(lua_State *L);
/* A JSON text that tfauth writes and reads back (a sealed session): the value
 * on top becomes the text [salt, value] on top (raises); decoding one pushes
 * the value (a text without the salt, the value itself), or returns 0. */
void tf_json_encode_salted(lua_State *L);
int tf_json_decode_salted(lua_State *L, const char *s, size_t len);

#endif
