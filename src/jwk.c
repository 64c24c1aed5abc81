/* jwk.c: keys and key sets from a JWKS (RFC 7517/7518/8037), on OpenSSL 3's
 * libcrypto, and the one question verification asks them: does this
 * signature verify?
 *
 *   core.jwt_keyset(jwks)  -> keyset userdata ("tfauth.keyset")
 *
 * Keys are built with OpenSSL's own constructors (EVP_PKEY_fromdata) and
 * checked by it (EVP_PKEY_public_check: EC points on their curve, RSA moduli
 * sane). A key that cannot be used (wrong use or key_ops, an alg this
 * verifier does not accept or that does not fit its type, a curve it does
 * not know, an RSA modulus under 2048 or over 8192 bits, anything OpenSSL
 * refuses) is left out of the set; a set with no usable key is an
 * `argument` error. */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include "jwk.h"

#define OP_KEYSET "jwt.keyset"
#define KEYSET_MT "tfauth.keyset"
#define MAX_JWKS (1024 * 1024)   /* bytes of JWKS text, as a fetch allows */
#define MAX_KEYS 256
#define MIN_RSA_BITS 2048
/* 8192 bits: above, building the key costs OpenSSL's public check most of a
 * second of CPU per key, per worker (16384 bits: 0.77 s), for no gain. The
 * modulus is measured before OpenSSL sees it. */
#define MAX_RSA_BITS 8192
#define MAX_RSA_BYTES (MAX_RSA_BITS / 8)
#define MAX_RSA_CHARS ((MAX_RSA_BYTES * 4 + 2) / 3) /* base64url of 1024 bytes: 1366 */

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
    /* The fully-specified name (draft-ietf-jose-fully-specified-algorithms):
     * the same signature, bound to Ed25519 by its name. A distinct entry, so
     * that `algorithms` and a JWK's `alg` take each name only when listed. */
    {"Ed25519", SIG_EDDSA, -1, KEY_ED25519, 0},
};
#define NALGS ((int)(sizeof algs / sizeof algs[0]))

static const char *const digest_names[3] = {"SHA256", "SHA384", "SHA512"};

int tf_alg_find(const char *name, size_t len) {
    int i;
    for (i = 0; i < NALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0) return i;
    return -1;
}

const char *tf_alg_name(int alg) {
    return alg >= 0 && alg < NALGS ? algs[alg].name : NULL;
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

/* A signature this keyset refused, by what decided it: the algorithm, its
 * digest of the signing input (which holds the header, so the kid too) and
 * the signature's bytes. */
#define REFUSED_SLOTS 64    /* direct-mapped: a newcomer takes its slot's place */
#define REFUSED_SIG_MAX 512 /* bytes: RSA up to 4096 bits, every ECDSA signature */
typedef struct {
    unsigned short digest_len, sig_len; /* sig_len 0: an empty slot */
    int alg;
    unsigned char digest[EVP_MAX_MD_SIZE], sig[REFUSED_SIG_MAX];
} refused_sig;

/* What makes a verification cheap is kept here, made once per keyset rather
 * than per call: the digests (fetched, not looked up by name each time), a
 * digest context, per key a verify context already set up, and the
 * signatures it refused. A keyset is used by one Lua state, so one thread
 * at a time. */
struct tf_keyset {
    int n;
    EVP_MD *md[3];      /* SHA-256, SHA-384, SHA-512 */
    EVP_MD_CTX *md_ctx; /* reused by every verification with this set */
    tf_header_memo memo; /* jws.c's: the last header decoded with this set */
    refused_sig *refused; /* REFUSED_SLOTS, made at the first refusal; NULL: none yet */
    jwk keys[];
};

tf_header_memo *tf_keyset_memo(tf_keyset *ks) {
    return &ks->memo;
}

tf_keyset *tf_keyset_check(lua_State *L, int idx) {
    tf_keyset *ks = lua_touserdata(L, idx);
    int same;
    if (!ks || !lua_getmetatable(L, idx)) return NULL;
    luaL_getmetatable(L, KEYSET_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? ks : NULL;
}

static int keyset_gc(lua_State *L) {
    tf_keyset *ks = tf_keyset_check(L, 1);
    int i;
    if (!ks) return 0;
    for (i = 0; i < ks->n; i++) {
        EVP_PKEY_CTX_free(ks->keys[i].vctx);
        EVP_PKEY_free(ks->keys[i].pkey);
        free(ks->keys[i].kid);
    }
    ks->n = 0;
    free(ks->refused);
    ks->refused = NULL;
    EVP_MD_CTX_free(ks->md_ctx);
    ks->md_ctx = NULL;
    for (i = 0; i < 3; i++) {
        EVP_MD_free(ks->md[i]);
        ks->md[i] = NULL;
    }
    return 0;
}

static tf_keyset *self_keyset(lua_State *L) {
    tf_keyset *ks = tf_keyset_check(L, 1);
    if (!ks) luaL_argerror(L, 1, "expected a keyset (from jwt.keyset)");
    return ks;
}

static int keyset_count(lua_State *L) {
    lua_pushinteger(L, self_keyset(L)->n);
    return 1;
}

/* keyset:kids(): the distinct `kid`s of the usable keys, in the set's order. */
static int keyset_kids(lua_State *L) {
    tf_keyset *ks = self_keyset(L);
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
    tf_keyset *ks = self_keyset(L);
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
        if (!bad && s1 && la > MAX_RSA_CHARS) {
            lua_settop(L, top);
            return "its RSA modulus is over 8192 bits";
        }
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
static const char *add_key(lua_State *L, int idx, tf_keyset *ks) {
    jwk *k = &ks->keys[ks->n];
    size_t len, kid_len = 0;
    int bad = 0, top = lua_gettop(L);
    const char *kty, *why, *kid, *alg;
    if (!lua_istable(L, idx)) return "it is not an object";
    if ((why = usage_problem(L, idx)) != NULL) return why;
    alg = member(L, idx, "alg", &len, &bad);
    k->alg = alg ? tf_alg_find(alg, len) : -1;
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
    tf_keyset *ks;
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
static EVP_PKEY_CTX *verify_ctx(tf_keyset *ks, jwk *k, int alg) {
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

/* The alg's digest of input into digest (EVP_MAX_MD_SIZE bytes); its
 * length, or 0 when OpenSSL fails. */
static unsigned digest_of(tf_keyset *ks, const alg_info *a, const unsigned char *input, size_t input_len,
                          unsigned char *digest) {
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ks->md_ctx, ks->md[a->md], NULL) != 1 ||
        EVP_DigestUpdate(ks->md_ctx, input, input_len) != 1 || EVP_DigestFinal_ex(ks->md_ctx, digest, &len) != 1) {
        ERR_clear_error();
        return 0;
    }
    return len;
}

/* 1 when sig is a valid signature under k with algs[alg]. RSA and ECDSA
 * check the digest of the input (digest_of's, made once for every key
 * tried) with EVP_PKEY_verify and the key's kept context (what
 * EVP_DigestVerify does, without setting the context up again each call).
 * Ed25519 signs the message itself: EVP_DigestVerify. */
static int signature_ok(tf_keyset *ks, jwk *k, int alg, const unsigned char *digest, unsigned digest_len,
                        const unsigned char *input, size_t input_len, const unsigned char *sig, size_t sig_len) {
    const alg_info *a = &algs[alg];
    unsigned char der[160];
    EVP_PKEY_CTX *vctx;
    int ok;
    if (a->kind == SIG_EDDSA) {
        ok = EVP_DigestVerifyInit(ks->md_ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestVerify(ks->md_ctx, sig, sig_len, input, input_len) == 1;
        EVP_MD_CTX_reset(ks->md_ctx);
        if (!ok) ERR_clear_error();
        return ok;
    }
    if (digest_len == 0) return 0;
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
    ok = (vctx = verify_ctx(ks, k, alg)) != NULL && EVP_PKEY_verify(vctx, sig, sig_len, digest, digest_len) == 1;
    if (!ok) ERR_clear_error();
    return ok;
}

/* ---- signatures refused before ------------------------------------------------ */
/* Why a keyset remembers the signatures it refused: a client that keeps
 * sending one bad token (an expired session's retries, a scanner, a replayed
 * forgery) would cost an RSA public operation (~15 µs) on every request; the
 * same bytes under the same keys always fail the same way. A slot is chosen
 * by the digest, so what a client chooses can only push other entries out:
 * fixed C memory (no Lua string, nothing that grows), made at the first
 * refusal, freed with the keyset. A new keyset (a JWKS fetched again)
 * starts with none. EdDSA (no separate digest) is not remembered. */
static refused_sig *refused_slot(tf_keyset *ks, const unsigned char *digest) {
    return &ks->refused[(digest[0] | (unsigned)digest[1] << 8) % REFUSED_SLOTS];
}

static int refused_before(tf_keyset *ks, int alg, const unsigned char *digest, unsigned digest_len,
                          const unsigned char *sig, size_t sig_len) {
    const refused_sig *r;
    if (!ks->refused || digest_len == 0) return 0;
    r = refused_slot(ks, digest);
    return r->sig_len != 0 && r->sig_len == sig_len && r->alg == alg && r->digest_len == digest_len &&
           memcmp(r->digest, digest, digest_len) == 0 && memcmp(r->sig, sig, sig_len) == 0;
}

static void remember_refusal(tf_keyset *ks, int alg, const unsigned char *digest, unsigned digest_len,
                             const unsigned char *sig, size_t sig_len) {
    refused_sig *r;
    if (digest_len == 0 || sig_len == 0 || sig_len > REFUSED_SIG_MAX) return;
    if (!ks->refused && !(ks->refused = calloc(REFUSED_SLOTS, sizeof *ks->refused))) return;
    r = refused_slot(ks, digest);
    r->alg = alg;
    r->digest_len = (unsigned short)digest_len;
    memcpy(r->digest, digest, digest_len);
    r->sig_len = (unsigned short)sig_len;
    memcpy(r->sig, sig, sig_len);
}

tf_sig_result tf_keyset_verify(tf_keyset *ks, int alg, const char *kid, size_t kid_len,
                               const unsigned char *input, size_t input_len, const unsigned char *sig,
                               size_t sig_len) {
    const alg_info *a = &algs[alg];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    int i, named = 0, fitting = 0;
    for (i = 0; i < ks->n; i++) {
        jwk *k = &ks->keys[i];
        if (kid) {
            if (!k->kid || k->kid_len != kid_len || memcmp(k->kid, kid, kid_len) != 0) continue;
            named++;
        }
        if (k->type != a->key || (k->alg >= 0 && k->alg != alg)) continue;
        /* At the first key that fits: a signature refused before under this
         * set was refused by every key that fits, this one first. */
        if (fitting++ == 0 && a->kind != SIG_EDDSA) {
            digest_len = digest_of(ks, a, input, input_len, digest);
            if (refused_before(ks, alg, digest, digest_len, sig, sig_len)) return TF_SIG_INVALID;
        }
        if (signature_ok(ks, k, alg, digest, digest_len, input, input_len, sig, sig_len)) return TF_SIG_VALID;
    }
    if (kid && !named) return TF_SIG_NO_KID;
    if (!fitting) return TF_SIG_NO_KEY;
    remember_refusal(ks, alg, digest, digest_len, sig, sig_len);
    return TF_SIG_INVALID;
}

void tf_open_jwk(lua_State *L, int module) {
    static const luaL_Reg meta[] = {
        {"__gc", keyset_gc}, {"__tostring", keyset_tostring}, {"__len", keyset_count}, {NULL, NULL}};
    static const luaL_Reg methods[] = {{"kids", keyset_kids}, {"count", keyset_count}, {NULL, NULL}};
    tf_new_type(L, KEYSET_MT, meta, methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, jwt_keyset);
    lua_setfield(L, module, "jwt_keyset");
}
