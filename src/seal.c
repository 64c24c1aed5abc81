/* seal.c: sealing data at rest with AES-256-GCM (OpenSSL's libcrypto, which
 * libcurl already brings). For sessions kept in a store: what is stored is
 * encrypted and authenticated, so a reader of the store learns nothing and
 * a changed or transplanted blob is refused.
 *
 *   blob = version (1) | key id (4) | nonce (12) | ciphertext | tag (16)
 *
 * The key id is the start of SHA-256(key), so a list of keys (newest first)
 * rotates: the newest seals, any of them opens. The caller's context (for a
 * session, its id) is authenticated too: a blob copied under another id
 * does not open. Nothing here raises for a bad blob: open says why not. */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include "tfauth.h"

#define VERSION 1
#define KEY_LEN 32
#define ID_LEN 4
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEAD_LEN (1 + ID_LEN + NONCE_LEN)
#define MAX_KEYS 16
#define MAX_PLAIN (16 * 1024 * 1024)

typedef struct {
    unsigned char key[KEY_LEN], id[ID_LEN];
} seal_key;

/* The keys at idx: a list of 64-hex-digit strings, newest first. */
static int read_keys(lua_State *L, int idx, const char *op, seal_key *keys) {
    int n, i, j;
    if (!lua_istable(L, idx)) return tf_argerror(L, op, "keys", "expected a list of keys, newest first");
    n = (int)lua_rawlen(L, idx);
    if (n < 1 || n > MAX_KEYS) return tf_argerror(L, op, "keys", "expected 1 to %d keys", MAX_KEYS);
    for (i = 0; i < n; i++) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int digest_len;
        size_t len;
        const char *hex;
        lua_rawgeti(L, idx, i + 1);
        hex = lua_tolstring(L, -1, &len);
        if (lua_type(L, -1) != LUA_TSTRING || len != 2 * KEY_LEN)
            return tf_argerror(L, op, "keys", "each key is %d hexadecimal digits (256 bits)", 2 * KEY_LEN);
        for (j = 0; j < KEY_LEN; j++) {
            int hi = tf_hex_digit(hex[2 * j]), lo = tf_hex_digit(hex[2 * j + 1]);
            if (hi < 0 || lo < 0)
                return tf_argerror(L, op, "keys", "each key is %d hexadecimal digits (256 bits)", 2 * KEY_LEN);
            keys[i].key[j] = (unsigned char)(hi << 4 | lo);
        }
        lua_pop(L, 1);
        if (!EVP_Digest(keys[i].key, KEY_LEN, digest, &digest_len, EVP_sha256(), NULL))
            return luaL_error(L, "tfauth: SHA-256 failed");
        memcpy(keys[i].id, digest, ID_LEN);
    }
    return n;
}

/* One AES-256-GCM pass; the context is freed before returning. */
static int gcm(int encrypt, const seal_key *k, const unsigned char *nonce, const unsigned char *aad1,
               size_t aad1_len, const char *aad2, size_t aad2_len, const unsigned char *in,
               size_t in_len, unsigned char *out, unsigned char *tag) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n, ok = ctx != NULL;
    ok = ok && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL);
    ok = ok && EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, encrypt);
    ok = ok && EVP_CipherUpdate(ctx, NULL, &n, aad1, (int)aad1_len);
    ok = ok && (aad2_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad2, (int)aad2_len));
    ok = ok && (in_len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)in_len));
    ok = ok && (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag));
    ok = ok && EVP_CipherFinal_ex(ctx, out + in_len, &n) > 0;
    ok = ok && (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag));
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* Pushes the blob sealing len bytes at plain with keys[0]. */
static void push_sealed(lua_State *L, const seal_key *key, const char *plain, size_t len,
                        const char *context, size_t ctx_len) {
    /* Scratch memory the garbage collector owns: nothing leaks if Lua raises. */
    unsigned char *blob = lua_newuserdata(L, HEAD_LEN + len + TAG_LEN);
    blob[0] = VERSION;
    memcpy(blob + 1, key->id, ID_LEN);
    if (RAND_bytes(blob + 1 + ID_LEN, NONCE_LEN) != 1) luaL_error(L, "tfauth: no randomness for a nonce");
    if (!gcm(1, key, blob + 1 + ID_LEN, blob, HEAD_LEN, context, ctx_len, (const unsigned char *)plain,
             len, blob + HEAD_LEN, blob + HEAD_LEN + len))
        luaL_error(L, "tfauth: AES-256-GCM failed");
    lua_pushlstring(L, (const char *)blob, HEAD_LEN + len + TAG_LEN);
    lua_remove(L, -2);
}

/* core.seal(keys, plaintext[, context]) -> blob */
static int seal(lua_State *L) {
    seal_key keys[MAX_KEYS];
    size_t len, ctx_len = 0;
    const char *plain, *context;
    read_keys(L, 1, "seal", keys);
    plain = luaL_checklstring(L, 2, &len);
    context = luaL_optlstring(L, 3, "", &ctx_len);
    if (len > MAX_PLAIN) return tf_argerror(L, "seal", "plaintext", "is larger than 16 MiB");
    push_sealed(L, &keys[0], plain, len, context, ctx_len);
    return 1;
}

static int encode_salted(lua_State *L) {
    tf_json_encode_salted(L);
    return 1;
}

/* core.seal_json(keys, value[, context]) -> blob: value as a JSON text,
 * salted (json.c), sealed; the text is never handed back. */
static int seal_json(lua_State *L) {
    seal_key keys[MAX_KEYS];
    size_t len, ctx_len = 0;
    const char *plain, *context;
    read_keys(L, 1, "seal_json", keys);
    luaL_checkany(L, 2);
    context = luaL_optlstring(L, 3, "", &ctx_len);
    lua_pushcfunction(L, encode_salted);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        return tf_argerror(L, "seal_json", "value", "cannot be written as JSON: %s",
                           lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    plain = lua_tolstring(L, -1, &len);
    if (len > MAX_PLAIN) return tf_argerror(L, "seal_json", "value", "is larger than 16 MiB as JSON");
    push_sealed(L, &keys[0], plain, len, context, ctx_len);
    return 1;
}

/* Opens the blob at 2 with the keys at 1 and the context at 3: returns the
 * plaintext (in a userdata pushed on the stack, *len bytes), or NULL having
 * pushed nil and why. */
static const char *open_sealed(lua_State *L, const char *op, size_t *plain_len) {
    seal_key keys[MAX_KEYS];
    size_t len, ctx_len = 0;
    const unsigned char *blob;
    const char *context;
    unsigned char *plain;
    int n = read_keys(L, 1, op, keys), i;
    blob = (const unsigned char *)luaL_checklstring(L, 2, &len);
    context = luaL_optlstring(L, 3, "", &ctx_len);
    if (len < HEAD_LEN + TAG_LEN || blob[0] != VERSION) {
        lua_pushnil(L);
        lua_pushliteral(L, "not a sealed blob");
        return NULL;
    }
    for (i = 0; i < n && memcmp(keys[i].id, blob + 1, ID_LEN) != 0; i++) {}
    if (i == n) {
        lua_pushnil(L);
        lua_pushliteral(L, "sealed with a key not in the list");
        return NULL;
    }
    *plain_len = len - HEAD_LEN - TAG_LEN;
    plain = lua_newuserdata(L, *plain_len + 16);
    if (!gcm(0, &keys[i], blob + 1 + ID_LEN, blob, HEAD_LEN, context, ctx_len, blob + HEAD_LEN, *plain_len,
             plain, (unsigned char *)blob + len - TAG_LEN)) {
        lua_pushnil(L);
        lua_pushliteral(L, "changed, or sealed for another context");
        return NULL;
    }
    return (const char *)plain;
}

/* core.open(keys, blob[, context]) -> plaintext, or nil and why */
static int open_blob(lua_State *L) {
    size_t len;
    const char *plain = open_sealed(L, "open", &len);
    if (!plain) return 2;
    lua_pushlstring(L, plain, len);
    return 1;
}

/* core.open_json(keys, blob[, context]) -> the value seal_json sealed (or a
 * JSON text seal sealed), decoded from the opened bytes without making them
 * a Lua string; or nil and why. */
static int open_json(lua_State *L) {
    size_t len;
    const char *plain = open_sealed(L, "open_json", &len);
    if (!plain) return 2;
    if (!tf_json_decode_salted(L, plain, len)) {
        lua_pushnil(L);
        lua_pushliteral(L, "not JSON");
        return 2;
    }
    tf_json_integerize(L, -1);
    return 1;
}

void tf_open_seal(lua_State *L, int module) {
    lua_pushcfunction(L, seal);
    lua_setfield(L, module, "seal");
    lua_pushcfunction(L, open_blob);
    lua_setfield(L, module, "open");
    lua_pushcfunction(L, seal_json);
    lua_setfield(L, module, "seal_json");
    lua_pushcfunction(L, open_json);
    lua_setfield(L, module, "open_json");
}
