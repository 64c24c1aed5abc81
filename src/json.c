/* json.c: JSON through a private lua-cjson instance (cjson.new()), so the
 * host's own `cjson` settings are never read or changed. The floor of the
 * core: it calls nothing of tfauth's, every concern that reads or writes JSON
 * calls it. */
#include <stdint.h>
#include <string.h>
#include <openssl/rand.h>
#include "tfauth.h"

#define JSON_ENCODE "tfauth.json.encode"
#define JSON_DECODE "tfauth.json.decode"
#define JSON_NULL "tfauth.json.null"

void tf_json_encode(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_ENCODE);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
}

#if LUA_VERSION_NUM >= 503
/* Debian's lua-cjson 2.1.0 decodes every number as a float; JSON's 300 is
 * Lua's integer 300 (so expires_in prints as 300, not 300.0). */
static void integerize(lua_State *L, int idx, int depth) {
    if (depth > 64) return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) && tf_isinteger(L, -1)) {
            lua_pushvalue(L, -2);
            lua_pushinteger(L, (lua_Integer)lua_tonumber(L, -2));
            lua_rawset(L, idx);
        } else if (lua_istable(L, -1)) {
            integerize(L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
}
#endif

void tf_json_integerize(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 503
    if (lua_istable(L, idx)) {
        luaL_checkstack(L, 2 * 64 + 8, "tfauth: JSON too deep");
        integerize(L, lua_absindex(L, idx), 0);
    }
#else
    (void)L, (void)idx;
#endif
}

/* Why the text is wrapped in whitespace before lua-cjson reads it: LuaJIT
 * interns every string, and Debian's (OpenResty's 2.1-20230119, on a CPU with
 * SSE4.2) hashes one of 128 bytes or more from its length and three bytes;
 * a chain with more than 32 collisions is rehashed from its first and last
 * 8 bytes and 8-byte samples at offsets fixed for the process. Same-shape
 * JSON texts that differ in the middle (a token's jti) thus share one hash,
 * and each new one is compared with every one the collector has not yet
 * freed: a cost that grows with what a worker has seen, and that an attacker
 * choosing token bytes can aim. So each text handed to lua-cjson gets 8
 * bytes of JSON whitespace before it and 8 to 15 after it, 2 bits a byte,
 * drawn from a keyed per-thread sequence (no two texts in a row alike, none
 * predictable from outside): its length and the bytes both hashes read
 * differ from text to text. Short texts too: under Lua 5.4 a JWS header of
 * 40 bytes or less would be a short string, interned again on each verify,
 * which grows costly with many short strings alive (docs/performance.md).
 * Whitespace around a JSON value changes nothing lua-cjson decodes, and a
 * text cut short stays cut short. */
#define PAD_HEAD 8
#define PAD_TAIL 15
#define PAD_STACK 4096

static uint64_t next_pattern(void) {
    static __thread uint64_t state;
    static __thread int seeded;
    uint64_t z;
    if (!seeded) {
        if (RAND_bytes((unsigned char *)&state, sizeof state) != 1) state = (uint64_t)(uintptr_t)&state;
        seeded = 1;
    }
    /* splitmix64: a bijection of the counter, so no pattern repeats soon */
    z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Copies s into out between whitespace drawn from the sequence; returns the
 * length written (at most len + PAD_HEAD + PAD_TAIL). */
static size_t pad(char *out, const char *s, size_t len) {
    static const char ws[4] = {' ', '\t', '\n', '\r'};
    uint64_t bits = next_pattern();
    size_t tail = PAD_HEAD + (size_t)(bits & 7), i;
    bits >>= 3;
    for (i = 0; i < PAD_HEAD; i++, bits >>= 2) out[i] = ws[bits & 3];
    memcpy(out + PAD_HEAD, s, len);
    for (i = 0; i < tail; i++, bits >>= 2) out[PAD_HEAD + len + i] = ws[bits & 3];
    return PAD_HEAD + len + tail;
}

int tf_json_decode(lua_State *L, const char *s, size_t len) {
    char stack[PAD_STACK];
    char *text = stack;
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_DECODE);
    if (len > PAD_STACK - PAD_HEAD - PAD_TAIL)
        /* Scratch memory the garbage collector owns: nothing leaks if Lua raises. */
        text = lua_newuserdata(L, len + PAD_HEAD + PAD_TAIL);
    lua_pushlstring(L, text, pad(text, s, len));
    if (text != stack) lua_remove(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

/* A JSON text tfauth writes and reads back itself (a sealed session) begins
 * with a salt: [salt, value]. The encoder's output is a Lua string, interned
 * like any other: the salt, 8 to 15 characters from the same sequence at its
 * start, keeps same-shape values from sharing a hash (see above). */
void tf_json_encode_salted(lua_State *L) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char salt[16];
    uint64_t bits = next_pattern();
    size_t n = 8 + (size_t)(bits & 7), i;
    bits >>= 3;
    for (i = 0; i < n; i++, bits >>= 6) salt[i] = alphabet[bits & 63];
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, salt, n);
    lua_rawseti(L, -2, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 2);
    tf_json_encode(L);
}

int tf_json_decode_salted(lua_State *L, const char *s, size_t len) {
    if (!tf_json_decode(L, s, len)) return 0;
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_rawgeti(L, -1, 1);
        if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -2) == 2) {
            lua_pop(L, 1);
            lua_rawgeti(L, -1, 2);
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
    }
    return 1;
}

void tf_push_json_null(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, JSON_NULL);
}

/* cjson.new(), configured strictly: no NaN/Infinity read, bounded nesting. */
void tf_open_json(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    /* 1e999 decodes to infinity: re-encoding a redacted body writes null. */
    lua_getfield(L, -1, "encode_invalid_numbers");
    lua_pushliteral(L, "null");
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "encode");
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_ENCODE);
    lua_getfield(L, -1, "decode");
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_DECODE);
    lua_getfield(L, -1, "null");
    lua_setfield(L, LUA_REGISTRYINDEX, JSON_NULL);
    lua_pop(L, 2);
}
