/* jwk.h: keys and key sets made from a JWKS (jwk.c), as the verification of
 * a token (jws.c) uses them. The keyset is opaque here: only jwk.c touches
 * OpenSSL's keys; jws.c asks it whether a signature verifies. */
#ifndef TFAUTH_JWK_H
#define TFAUTH_JWK_H

#include "tfauth.h"

typedef struct tf_keyset tf_keyset;

/* The algorithms verification knows, by index: a bit mask of them is an
 * allow-list. Names are matched exactly (RFC 7515 §4.1.1: case-sensitive). */
#define TF_ALG_NAMES "RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, Ed25519"
#define TF_ALG_DEFAULT 1u /* RS256 alone */
int tf_alg_find(const char *name, size_t len); /* index, or -1 */
const char *tf_alg_name(int alg);              /* the name of an index tf_alg_find gave */

/* The last JWS header a keyset's verification decoded, remembered by its
 * base64url text: every token of one realm carries the same header, so the
 * gate decodes it once per realm instead of once per token (jws.c). Only a
 * header that passed the checks that do not depend on the options is kept. */
#define TF_MEMO_SEGMENT 256
#define TF_MEMO_FIELD 128
typedef struct {
    size_t segment_len;             /* 0: nothing remembered */
    char segment[TF_MEMO_SEGMENT];  /* the header's base64url text */
    int alg;                        /* tf_alg_find's index */
    int has_kid, has_typ;           /* the header has a kid, a typ (strings; any other type: not kept) */
    size_t kid_len, typ_len;
    char kid[TF_MEMO_FIELD], typ_text[TF_MEMO_FIELD];
} tf_header_memo;

tf_header_memo *tf_keyset_memo(tf_keyset *ks);

/* The keyset userdata at idx, or NULL when it is something else. */
tf_keyset *tf_keyset_check(lua_State *L, int idx);

typedef enum {
    TF_SIG_VALID,       /* a key of the set verifies it */
    TF_SIG_NO_KID,      /* the token names a kid no key of the set has */
    TF_SIG_NO_KEY,      /* no key (of that kid) fits the algorithm */
    TF_SIG_INVALID      /* keys fit, none verifies */
} tf_sig_result;

/* Checks sig over input with algorithm alg (tf_alg_find's index): with the
 * keys of kid when kid is not NULL, else with each key that fits alg. A key
 * fits when its type is alg's and its own `alg`, if any, is alg. A
 * signature the set refused is remembered (the last 64, by their digest and
 * bytes) and refused again without the public-key operation. Pure C: no Lua
 * error can skip a free. */
tf_sig_result tf_keyset_verify(tf_keyset *ks, int alg, const char *kid, size_t kid_len,
                               const unsigned char *input, size_t input_len, const unsigned char *sig,
                               size_t sig_len);

void tf_open_jwk(lua_State *L, int module);

#endif
