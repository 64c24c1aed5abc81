/* jws.c: JWS verification (RFC 7515/7518/8037) against a keyset made from a
 * JWKS, on OpenSSL 3's libcrypto.
 *
 *   core.jwt_keyset(jwks)                 -> keyset userdata ("tfauth.keyset")
 *   core.jwt_verify(token, keyset, opts)  -> claims, header
 *
 * What is trusted: only the keyset the caller made and the options it gave.
 * Nothing in the token chooses a key beyond naming a `kid` of that set
 * (`jku`, `jwk`, `x5u`, `x5c` are never read), nothing in it widens the
 * algorithm allow-list, and the payload is parsed only after its signature
 * checked out. Keys are built with OpenSSL's own constructors
 * (EVP_PKEY_fromdata) and checked by it (EVP_PKEY_public_check: EC points on
 * their curve, RSA moduli sane). A refusal is a tfauth.Error of kind `token`
 * with a `reason`; its message names the failed check and never holds the
 * token or anything decoded from it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include "tfauth.h"

#define OP_VERIFY "jwt.verify"
#define OP_KEYSET "jwt.keyset"
#define KEYSET_MT "tfauth.keyset"
#define MAX_TOKEN 16384          /* bytes, the whole compact serialisation */
#define MAX_JWKS (1024 * 1024)   /* bytes of JWKS text, as a fetch allows */
#define MAX_KEYS 256
#define MAX_RSA_BYTES 2048       /* 16384-bit modulus: OpenSSL's own ceiling */
#define MIN_RSA_BITS 2048

/* ---- algorithms and the key types they bind to ---------------------------- */
typedef enum { KEY_RSA, KEY_P256, KEY_P384, KEY_P521, KEY_ED25519 } key_type;
typedef enum { SIG_PKCS1, SIG_PSS, SIG_ECDSA, SIG_EDDSA } sig_kind;

typedef struct {
    const char *name;
    sig_kind kind;
    int md;         /* index in keyset.md; -1 for EdDSA (it hashes itself) */
    key_type key;   /* RS and PS bind to any RSA key */
    size_t half;    /* ECDSA: bytes of r and of s */
} alg_info;

static const alg_info algs[] = {
    {"RS256", SIG_PKCS1, 0, KEY_RSA, 0},   {"RS384", SIG_PKCS1, 1, KEY_RSA, 0},
    {"RS512", SIG_PKCS1, 2, KEY_RSA, 0},   {"PS256", SIG_PSS, 0, KEY_RSA, 0},
    {"PS384", SIG_PSS, 1, KEY_RSA, 0},     {"PS512", SIG_PSS, 2, KEY_RSA, 0},
    {"ES256", SIG_ECDSA, 0, KEY_P256, 32}, {"ES384", SIG_ECDSA, 1, KEY_P384, 48},
    {"ES512", SIG_ECDSA, 2, KEY_P521, 66}, {"EdDSA", SIG_EDDSA, -1, KEY_ED25519, 0},
};
#define NALGS ((int)(sizeof algs / sizeof algs[0]))
#define ALG_DEFAULT 1u /* RS256 */

static const char *const digest_names[3] = {"SHA256", "SHA384", "SHA512"};

static int alg_find(const char *name, size_t len) {
    int i;
    for (i = 0; i < NALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0) return i;
    return -1;
}

/* ---- the keyset userdata --------------------------------------------------- */
typedef struct {
    EVP_PKEY *pkey;
    char *kid; /* NULL: the JWK has none */
    size_t kid_len;
    key_type type;
    int alg;             /* the JWK's own `alg` (index in algs), or -1 when absent */
    EVP_PKEY_CTX *vctx;  /* verify context, set up for algs[vctx_alg]; NULL: none yet */
    int vctx_alg;
} jwk;

/* What makes a verification cheap is kept here, made once per keyset rather
 * than per call: the digests (fetched, not looked up by name each time), a
 * digest context, and per key a verify context already set up. A keyset is
 * used by one Lua state, so one thread at a time. */
typedef struct {
    int n;
    EVP_MD *md[3];      /* SHA-256, SHA-384, SHA-512 */
    EVP_MD_CTX *md_ctx; /* reused by every verification with this set */
    jwk keys[];
} keyset;

static keyset *check_keyset(lua_State *L, int idx) {
    keyset *ks = lua_touserdata(L, idx);
    int same;
    if (!ks || !lua_getmetatable(L, idx)) return NULL;
    luaL_getmetatable(L, KEYSET_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? ks : NULL;
}

static int keyset_gc(lua_State *L) {
    keyset *ks = check_keyset(L, 1);
    int i;
    if (!ks) return 0;
    for (i = 0; i < ks->n; i++) {
        EVP_PKEY_CTX_free(ks->keys[i].vctx);
        EVP_PKEY_free(ks->keys[i].pkey);
        free(ks->keys[i].kid);
    }
    ks->n = 0;
    EVP_MD_CTX_free(ks->md_ctx);
    ks->md_ctx = NULL;
    for (i = 0; i < 3; i++) {
        EVP_MD_free(ks->md[i]);
        ks->md[i] = NULL;
    }
    return 0;
}

static keyset *self_keyset(lua_State *L) {
    keyset *ks = check_keyset(L, 1);
    if (!ks) luaL_argerror(L, 1, "expected a keyset (from jwt.keyset)");
    return ks;
}

static int keyset_count(lua_State *L) {
    lua_pushinteger(L, self_keyset(L)->n);
    return 1;
}

/* keyset:kids(): the distinct `kid`s of the usable keys, in the set's order. */
static int keyset_kids(lua_State *L) {
    keyset *ks = self_keyset(L);
    int i, j, n = 0;
    lua_createtable(L, ks->n, 0);
    for (i = 0; i < ks->n; i++) {
        const jwk *k = &ks->keys[i];
        if (!k->kid) continue;
        for (j = 0; j < i; j++)
            if (ks->keys[j].kid && ks->keys[j].kid_len == k->kid_len &&
                memcmp(ks->keys[j].kid, k->kid, k->kid_len) == 0)
                break;
        if (j < i) continue;
        lua_pushlstring(L, k->kid, k->kid_len);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int keyset_tostring(lua_State *L) {
    keyset *ks = self_keyset(L);
    lua_pushfstring(L, "tfauth.keyset (%d key%s)", ks->n, ks->n == 1 ? "" : "s");
    return 1;
}

/* ---- JWK -> EVP_PKEY -------------------------------------------------------- */
/* The string member `name` of the JWK at idx, or NULL when absent or not a
 * string (*bad set then). Left on the stack: the caller pops. */
static const char *member(lua_State *L, int idx, const char *name, size_t *len, int *bad) {
    lua_getfield(L, idx, name);
    if (lua_isnil(L, -1)) return NULL;
    if (lua_type(L, -1) != LUA_TSTRING) {
        *bad = 1;
        return NULL;
    }
    return lua_tolstring(L, -1, len);
}

/* Decodes a base64url member into out (cap bytes); its length, or -1. */
static long member_bytes(const char *s, size_t len, unsigned char *out, size_t cap) {
    size_t n;
    if (!s || len == 0 || TF_B64URL_MAX(len) > cap) return -1;
    if (tf_b64url_decode(s, len, 1, out, &n) != 0) return -1;
    return (long)n;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM *params) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* OpenSSL's own validation of a public key: for EC, the point is on the
 * curve and of the right order; for RSA, the modulus is odd and composite
 * with no small factors and the exponent odd and in range. */
static EVP_PKEY *checked(EVP_PKEY *pkey) {
    EVP_PKEY_CTX *ctx = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
    int ok = ctx && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static EVP_PKEY *rsa_key(const unsigned char *n, size_t n_len, const unsigned char *e, size_t e_len) {
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL), *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL)
        pkey = from_params("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return checked(pkey);
}

static EVP_PKEY *ec_key(const char *group, const unsigned char *point, size_t len) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
    params[2] = OSSL_PARAM_construct_end();
    return checked(from_params("EC", params));
}

static EVP_PKEY *ed25519_key(const unsigned char *x, size_t len) {
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)x, len);
    params[1] = OSSL_PARAM_construct_end();
    return checked(from_params("ED25519", params));
}

/* `use` absent or "sig", `key_ops` absent or holding "verify". */
static const char *usage_problem(lua_State *L, int idx) {
    size_t len;
    int bad = 0, i, n, verify = 0;
    const char *use = member(L, idx, "use", &len, &bad);
    lua_pop(L, 1);
    if (bad || (use && strcmp(use, "sig") != 0)) return "its use is not sig";
    lua_getfield(L, idx, "key_ops");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1)) bad = 1;
        n = bad ? 0 : (int)lua_rawlen(L, -1);
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "verify") == 0) verify = 1;
            lua_pop(L, 1);
        }
        if (!verify) {
            lua_pop(L, 1);
            return "its key_ops lack verify";
        }
    }
    lua_pop(L, 1);
    return NULL;
}

/* The key's material, per kty. Returns why the key is unusable, or NULL. */
static const char *build_key(lua_State *L, int idx, const char *kty, jwk *k) {
    unsigned char a[MAX_RSA_BYTES + 8], b[1 + 2 * 66 + 8];
    size_t la = 0, lb = 0;
    int bad = 0, top = lua_gettop(L);
    const char *s1, *s2, *crv;
    long n1, n2;
    if (strcmp(kty, "RSA") == 0) {
        s1 = member(L, idx, "n", &la, &bad);
        s2 = member(L, idx, "e", &lb, &bad);
        n1 = bad ? -1 : member_bytes(s1, la, a, sizeof a);
        n2 = bad ? -1 : member_bytes(s2, lb, b, 8 + 3);
        lua_settop(L, top);
        if (n1 < 0 || n2 < 0 || n2 > 8) return "its n or e is not base64url of the right size";
        k->type = KEY_RSA;
        k->pkey = rsa_key(a, (size_t)n1, b, (size_t)n2);
        if (!k->pkey) return "OpenSSL refused it as an RSA public key";
        if (EVP_PKEY_get_bits(k->pkey) < MIN_RSA_BITS) return "its RSA modulus is under 2048 bits";
        return NULL;
    }
    crv = member(L, idx, "crv", &la, &bad);
    if (strcmp(kty, "EC") == 0) {
        static const struct { const char *crv, *group; key_type type; size_t len; } curves[] = {
            {"P-256", "P-256", KEY_P256, 32}, {"P-384", "P-384", KEY_P384, 48}, {"P-521", "P-521", KEY_P521, 66}};
        int c;
        for (c = 0; crv && c < 3 && strcmp(crv, curves[c].crv) != 0; c++) {}
        if (!crv || c == 3) {
            lua_settop(L, top);
            return "its curve is not P-256, P-384 or P-521";
        }
        s1 = member(L, idx, "x", &la, &bad);
        s2 = member(L, idx, "y", &lb, &bad);
        /* x and y at their full, fixed length (RFC 7518 §6.2.1.2). */
        n1 = bad ? -1 : member_bytes(s1, la, a, sizeof a);
        n2 = bad ? -1 : member_bytes(s2, lb, b + 1 + curves[c].len, sizeof b - 1 - curves[c].len);
        lua_settop(L, top);
        if (n1 != (long)curves[c].len || n2 != (long)curves[c].len)
            return "its x or y is not base64url of the curve's size";
        b[0] = 0x04; /* uncompressed point: 04 || x || y */
        memcpy(b + 1, a, curves[c].len);
        k->type = curves[c].type;
        k->pkey = ec_key(curves[c].group, b, 1 + 2 * curves[c].len);
        return k->pkey ? NULL : "its point is not on the curve";
    }
    if (strcmp(kty, "OKP") == 0) {
        if (!crv || strcmp(crv, "Ed25519") != 0) {
            lua_settop(L, top);
            return "its curve is not Ed25519";
        }
        s1 = member(L, idx, "x", &la, &bad);
        n1 = bad ? -1 : member_bytes(s1, la, a, sizeof a);
        lua_settop(L, top);
        if (n1 != 32) return "its x is not 32 bytes of base64url";
        k->type = KEY_ED25519;
        k->pkey = ed25519_key(a, 32);
        return k->pkey ? NULL : "OpenSSL refused it as an Ed25519 key";
    }
    lua_settop(L, top);
    return "its kty is not RSA, EC or OKP";
}

/* Adds the JWK at idx to ks, or says why it cannot be used. */
static const char *add_key(lua_State *L, int idx, keyset *ks) {
    jwk *k = &ks->keys[ks->n];
    size_t len, kid_len = 0;
    int bad = 0, top = lua_gettop(L);
    const char *kty, *why, *kid, *alg;
    if (!lua_istable(L, idx)) return "it is not an object";
    if ((why = usage_problem(L, idx)) != NULL) return why;
    alg = member(L, idx, "alg", &len, &bad);
    k->alg = alg ? alg_find(alg, len) : -1;
    kid = member(L, idx, "kid", &kid_len, &bad);
    kty = member(L, idx, "kty", &len, &bad);
    if (bad) {
        lua_settop(L, top);
        return "a member that must be a string is not";
    }
    if (alg && k->alg < 0) {
        lua_settop(L, top);
        return "its alg is not one this verifier accepts";
    }
    if (!kty) {
        lua_settop(L, top);
        return "it has no kty";
    }
    k->pkey = NULL;
    k->vctx = NULL;
    k->vctx_alg = -1;
    why = build_key(L, idx, kty, k);
    if (!why && k->alg >= 0 && algs[k->alg].key != k->type) why = "its alg does not fit its key type";
    if (!why && kid) {
        k->kid = malloc(kid_len + 1);
        if (!k->kid) why = "out of memory";
        else memcpy(k->kid, kid, kid_len + 1);
        k->kid_len = kid_len;
    } else if (!why) {
        k->kid = NULL;
        k->kid_len = 0;
    }
    lua_settop(L, top);
    if (why) {
        EVP_PKEY_free(k->pkey);
        ERR_clear_error(); /* leave OpenSSL's queue as we found it (libcurl reads it) */
        return why;
    }
    ks->n++;
    return NULL;
}

/* core.jwt_keyset(jwks): JSON text or the decoded table {keys = {...}}. */
static int jwt_keyset(lua_State *L) {
    keyset *ks;
    int i, n, list;
    const char *first_problem = NULL;
    if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *text = lua_tolstring(L, 1, &len);
        if (len > MAX_JWKS) return tf_argerror(L, OP_KEYSET, "jwks", "is larger than 1 MiB");
        if (!tf_json_decode(L, text, len) || !lua_istable(L, -1))
            return tf_argerror(L, OP_KEYSET, "jwks", "is not a JSON object");
        lua_replace(L, 1);
    } else if (!lua_istable(L, 1)) {
        return tf_argerror(L, OP_KEYSET, "jwks", "expected a JWKS (JSON text or table), got %s",
                           lua_typename(L, lua_type(L, 1)));
    }
    lua_settop(L, 1);
    lua_getfield(L, 1, "keys");
    list = 2;
    if (!lua_istable(L, list)) return tf_argerror(L, OP_KEYSET, "jwks", "has no list of keys");
    n = (int)lua_rawlen(L, list);
    if (n < 1) return tf_argerror(L, OP_KEYSET, "jwks", "has no keys");
    if (n > MAX_KEYS) return tf_argerror(L, OP_KEYSET, "jwks", "has more than %d keys", MAX_KEYS);
    ks = lua_newuserdata(L, sizeof *ks + (size_t)n * sizeof(jwk));
    memset(ks, 0, sizeof *ks);
    luaL_getmetatable(L, KEYSET_MT);
    lua_setmetatable(L, -2); /* from here, __gc frees whatever was added */
    for (i = 1; i <= n; i++) {
        const char *why;
        lua_rawgeti(L, list, i);
        why = add_key(L, lua_gettop(L), ks);
        if (why && !first_problem) first_problem = why;
        lua_pop(L, 1);
    }
    if (ks->n == 0)
        return tf_argerror(L, OP_KEYSET, "jwks", "holds no usable key (the first one: %s)", first_problem);
    ks->md_ctx = EVP_MD_CTX_new();
    for (i = 0; i < 3; i++) ks->md[i] = EVP_MD_fetch(NULL, digest_names[i], NULL);
    if (!ks->md_ctx || !ks->md[0] || !ks->md[1] || !ks->md[2])
        return luaL_error(L, "tfauth: OpenSSL could not set up SHA-2");
    return 1;
}

/* ---- options ----------------------------------------------------------------- */
typedef struct {
    unsigned algs;   /* bit i: algs[i] allowed */
    int issuer;      /* stack index of the issuer string; 0: unchecked (false) */
    int audience;    /* stack index of a string or list; 0: unchecked */
    int types;       /* stack index of a list; 0: unchecked */
    double leeway, now;
} verify_opts;

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
    if (lua_isnil(L, idx)) return ALG_DEFAULT;
    check_string_list(L, idx, "algorithms");
    n = (int)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *name;
        int a;
        lua_rawgeti(L, idx, i);
        name = lua_tolstring(L, -1, &len);
        a = alg_find(name, len);
        if (a < 0 && (strcmp(name, "none") == 0 || strncmp(name, "HS", 2) == 0))
            tf_argerror(L, OP_VERIFY, "algorithms", "'%s' is never accepted (none and HS* are refused)", name);
        if (a < 0)
            tf_argerror(L, OP_VERIFY, "algorithms", "unknown algorithm '%s' (RS256/384/512, PS256/384/512, "
                        "ES256/384/512, EdDSA)", name);
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
static void read_opts(lua_State *L, int idx, verify_opts *o) {
    int base, i;
    memset(o, 0, sizeof *o);
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
    if (!lua_isnil(L, base + 4)) {
        check_string_list(L, base + 4, "types");
        o->types = base + 4;
    }
    o->leeway = read_seconds(L, base + 5, "leeway", 0, 1);
    o->now = lua_isnil(L, base + 6) ? wall_clock() : read_seconds(L, base + 6, "now", 0, 0);
}

/* ---- refusals -------------------------------------------------------------- */
static int refuse(lua_State *L, const char *reason, int kid_missing, const char *why) {
    tf_error_push(L, TF_TOKEN, OP_VERIFY, "token refused (%s): %s", reason, why);
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    if (kid_missing) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "kid_missing");
    }
    return lua_error(L);
}

/* ---- the signature ---------------------------------------------------------- */
/* JWS's ECDSA r || s (each `half` bytes) -> DER, as OpenSSL's verify wants.
 * Returns the DER length, or 0 when r or s is zero. */
static int ecdsa_der(const unsigned char *sig, size_t half, unsigned char *der, size_t cap) {
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    int len = 0;
    if (es && r && s && !BN_is_zero(r) && !BN_is_zero(s) && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* es owns them now */
        len = i2d_ECDSA_SIG(es, NULL);
        if (len > 0 && (size_t)len <= cap) {
            unsigned char *p = der;
            len = i2d_ECDSA_SIG(es, &p);
        } else {
            len = 0;
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len > 0 ? len : 0;
}

/* k's verify context for algorithm alg, made on first use and kept: the
 * padding, salt length and digest are set once, not on every call. */
static EVP_PKEY_CTX *verify_ctx(keyset *ks, jwk *k, int alg) {
    const alg_info *a = &algs[alg];
    EVP_MD *md = ks->md[a->md];
    EVP_PKEY_CTX *ctx;
    int ok;
    if (k->vctx && k->vctx_alg == alg) return k->vctx;
    EVP_PKEY_CTX_free(k->vctx);
    k->vctx = NULL;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    ok = ctx && EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
    if (ok && a->kind == SIG_PSS)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
    else if (ok && a->kind == SIG_PKCS1)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    k->vctx = ctx;
    k->vctx_alg = alg;
    return ctx;
}

/* 1 when sig is a valid signature of input under k with algs[alg]; pure C,
 * so no Lua error can skip the frees. RSA and ECDSA: SHA-2 of the input,
 * then EVP_PKEY_verify with the key's kept context (what EVP_DigestVerify
 * does, without setting the context up again each call). Ed25519 signs the
 * message itself: EVP_DigestVerify. */
static int signature_ok(keyset *ks, jwk *k, int alg, const unsigned char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len) {
    const alg_info *a = &algs[alg];
    unsigned char der[160], digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_PKEY_CTX *vctx;
    int ok;
    if (a->kind == SIG_EDDSA) {
        ok = EVP_DigestVerifyInit(ks->md_ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ks->md_ctx, sig, sig_len, input, input_len) == 1;
        EVP_MD_CTX_reset(ks->md_ctx);
        if (!ok) ERR_clear_error();
        return ok;
    }
    if (a->kind == SIG_ECDSA) {
        int der_len;
        if (sig_len != 2 * a->half) return 0; /* fixed r || s only: DER and others refused */
        der_len = ecdsa_der(sig, a->half, der, sizeof der);
        if (der_len == 0) return 0;
        sig = der;
        sig_len = (size_t)der_len;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(k->pkey)) {
        return 0;
    }
    ok = EVP_DigestInit_ex2(ks->md_ctx, ks->md[a->md], NULL) == 1 &&
         EVP_DigestUpdate(ks->md_ctx, input, input_len) == 1 &&
         EVP_DigestFinal_ex(ks->md_ctx, digest, &digest_len) == 1;
    ok = ok && (vctx = verify_ctx(ks, k, alg)) != NULL &&
         EVP_PKEY_verify(vctx, sig, sig_len, digest, digest_len) == 1;
    if (!ok) ERR_clear_error();
    return ok;
}

/* Finds the key(s) for the header's kid and alg and checks the signature;
 * raises the refusal. */
static void check_signature(lua_State *L, keyset *ks, int alg, const char *kid, size_t kid_len,
                            const unsigned char *input, size_t input_len, const unsigned char *sig,
                            size_t sig_len) {
    const alg_info *a = &algs[alg];
    int i, named = 0, fitting = 0;
    for (i = 0; i < ks->n; i++) {
        jwk *k = &ks->keys[i];
        if (kid) {
            if (!k->kid || k->kid_len != kid_len || memcmp(k->kid, kid, kid_len) != 0) continue;
            named++;
        }
        if (k->type != a->key || (k->alg >= 0 && k->alg != alg)) continue;
        fitting++;
        if (signature_ok(ks, k, alg, input, input_len, sig, sig_len)) return;
    }
    if (kid && !named) refuse(L, "key", 1, "no key in the keyset has the token's kid");
    if (!fitting) refuse(L, "key", 0, "no key in the keyset fits the token's algorithm");
    refuse(L, "signature", 0, "the signature does not verify");
}

/* ---- the token ---------------------------------------------------------------- */
/* Decodes JSON bytes that must be an object; pushes the table or refuses. */
static void push_object(lua_State *L, const unsigned char *s, size_t len, const char *what) {
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    if (i == len || s[i] != '{' || !tf_json_decode(L, (const char *)s, len) || !lua_istable(L, -1))
        refuse(L, "malformed", 0, what);
    tf_json_integerize(L, -1);
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

static void check_claims(lua_State *L, int claims, const verify_opts *o) {
    int top = lua_gettop(L);
    double t;
    lua_getfield(L, claims, "exp");
    if (!is_number(L, -1)) refuse(L, "expired", 0, "the token has no numeric exp claim");
    if (o->now >= lua_tonumber(L, -1) + o->leeway) refuse(L, "expired", 0, "the token's exp is past");
    lua_getfield(L, claims, "nbf");
    if (!lua_isnil(L, -1)) {
        if (!is_number(L, -1)) refuse(L, "not_yet_valid", 0, "the token's nbf claim is not a number");
        if (o->now + o->leeway < lua_tonumber(L, -1))
            refuse(L, "not_yet_valid", 0, "the token's nbf is in the future");
    }
    lua_getfield(L, claims, "iat");
    if (!lua_isnil(L, -1)) {
        if (!is_number(L, -1)) refuse(L, "not_yet_valid", 0, "the token's iat claim is not a number");
        t = lua_tonumber(L, -1);
        if (t > o->now + o->leeway) refuse(L, "not_yet_valid", 0, "the token's iat is in the future");
    }
    if (o->issuer) {
        lua_getfield(L, claims, "iss");
        if (!lua_rawequal(L, -1, o->issuer))
            refuse(L, "issuer", 0, "the token's iss is not the expected issuer");
    }
    if (o->types) {
        lua_getfield(L, claims, "typ");
        if (lua_type(L, -1) != LUA_TSTRING || !in_list(L, lua_gettop(L), o->types))
            refuse(L, "type", 0, "the token's typ is not one of the allowed types");
    }
    if (o->audience) {
        lua_getfield(L, claims, "aud");
        if (!audience_ok(L, lua_gettop(L), o->audience))
            refuse(L, "audience", 0, "the token's aud holds none of the expected audiences");
    }
    lua_settop(L, top);
}

/* Splits the compact serialisation and decodes its three parts into buf. */
typedef struct {
    const unsigned char *header, *payload, *sig;
    size_t header_len, payload_len, sig_len;
    size_t input_len; /* header.payload, the signing input */
} parts;

static void split(lua_State *L, const char *token, size_t len, unsigned char *buf, parts *p) {
    const char *d1, *d2;
    size_t off = 0, n;
    if (len > MAX_TOKEN) refuse(L, "malformed", 0, "the token is longer than 16 KiB");
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        refuse(L, "malformed", 0, "the token is not three dot-separated segments");
    /* An empty signature is a shape JWS allows (alg none): it fails later, on
     * the algorithm or the signature. */
    if (d1 == token || d2 == d1 + 1) refuse(L, "malformed", 0, "the token has an empty header or payload");
    if (tf_b64url_decode(token, (size_t)(d1 - token), 1, buf, &n) != 0)
        refuse(L, "malformed", 0, "the token's header is not unpadded base64url");
    p->header = buf;
    p->header_len = n;
    off = n;
    if (tf_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), 1, buf + off, &n) != 0)
        refuse(L, "malformed", 0, "the token's payload is not unpadded base64url");
    p->payload = buf + off;
    p->payload_len = n;
    off += n;
    if (tf_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), 1, buf + off, &n) != 0)
        refuse(L, "malformed", 0, "the token's signature is not unpadded base64url");
    p->sig = buf + off;
    p->sig_len = n;
    p->input_len = (size_t)(d2 - token);
}

/* core.jwt_verify(token, keyset, opts) -> claims, header */
static int jwt_verify(lua_State *L) {
    unsigned char buf[TF_B64URL_MAX(MAX_TOKEN) + 8];
    verify_opts o;
    parts p;
    keyset *ks;
    const char *token, *kid = NULL;
    size_t len, kid_len = 0;
    int header, alg;
    if (lua_type(L, 1) != LUA_TSTRING)
        return tf_argerror(L, OP_VERIFY, "token", "expected a string, got %s", lua_typename(L, lua_type(L, 1)));
    if (!(ks = check_keyset(L, 2)))
        return tf_argerror(L, OP_VERIFY, "keyset", "expected a keyset from jwt.keyset(jwks), got %s",
                           luaL_typename(L, 2));
    lua_settop(L, 3);
    read_opts(L, 3, &o);
    token = lua_tolstring(L, 1, &len);
    split(L, token, len, buf, &p);

    push_object(L, p.header, p.header_len, "the token's header is not a JSON object");
    header = lua_gettop(L);
    lua_getfield(L, header, "crit");
    if (!lua_isnil(L, -1)) refuse(L, "malformed", 0, "the token's header has crit (no extension is understood)");
    lua_getfield(L, header, "alg");
    if (lua_type(L, -1) != LUA_TSTRING) refuse(L, "malformed", 0, "the token's header has no alg");
    alg = alg_find(lua_tostring(L, -1), lua_rawlen(L, -1));
    if (alg < 0 || !(o.algs & (1u << alg))) refuse(L, "algorithm", 0, "the token's alg is not in the allowed algorithms");
    lua_getfield(L, header, "kid");
    if (lua_type(L, -1) == LUA_TSTRING) kid = lua_tolstring(L, -1, &kid_len);
    else if (!lua_isnil(L, -1)) refuse(L, "malformed", 0, "the token's kid is not a string");

    check_signature(L, ks, alg, kid, kid_len, (const unsigned char *)token, p.input_len, p.sig, p.sig_len);

    /* Only now, signed by a trusted key, is the payload parsed. */
    push_object(L, p.payload, p.payload_len, "the token's payload is not a JSON object");
    check_claims(L, lua_gettop(L), &o);
    lua_pushvalue(L, header);
    return 2;
}

void tf_open_jws(lua_State *L, int module) {
    static const luaL_Reg meta[] = {
        {"__gc", keyset_gc}, {"__tostring", keyset_tostring}, {"__len", keyset_count}, {NULL, NULL}};
    static const luaL_Reg methods[] = {{"kids", keyset_kids}, {"count", keyset_count}, {NULL, NULL}};
    tf_new_type(L, KEYSET_MT, meta, methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, jwt_keyset);
    lua_setfield(L, module, "jwt_keyset");
    lua_pushcfunction(L, jwt_verify);
    lua_setfield(L, module, "jwt_verify");
}
