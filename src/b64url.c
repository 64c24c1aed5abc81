/* b64url.c: base64url (RFC 4648 §5) decoding, shared by jwt.c (claims),
 * jwk.c (key members) and jws.c (the three segments of a token). */
#include "tfauth.h"

static const signed char b64url_table[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
}; /* value + 1; 0: not in the alphabet */

#define B64V(c) (b64url_table[(unsigned char)(c)] - 1) /* 0-63, or -1 */

/* Four characters at a time: this runs over every token verified. */
int tf_b64url_decode(const char *s, size_t len, int strict, unsigned char *out, size_t *out_len) {
    size_t i, n = 0, rem;
    unsigned v;
    if (!strict)
        while (len && s[len - 1] == '=') len--;
    rem = len % 4;
    if (rem == 1) return -1;
    for (i = 0; i + 4 <= len; i += 4) {
        int a = B64V(s[i]), b = B64V(s[i + 1]), c = B64V(s[i + 2]), d = B64V(s[i + 3]);
        if ((a | b | c | d) < 0) return -1;
        v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        out[n] = (unsigned char)(v >> 16);
        out[n + 1] = (unsigned char)(v >> 8);
        out[n + 2] = (unsigned char)v;
        n += 3;
    }
    if (rem) {
        int a = B64V(s[i]), b = B64V(s[i + 1]), c = rem == 3 ? B64V(s[i + 2]) : 0;
        if ((a | b | c) < 0) return -1;
        v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6;
        /* The bits past the last byte must be zero: one encoding per value,
         * so a token cannot be re-spelled into another string that verifies. */
        if (strict && (v & (rem == 2 ? 0xFFFFu : 0xFFu)) != 0) return -1;
        out[n++] = (unsigned char)(v >> 16);
        if (rem == 3) out[n++] = (unsigned char)(v >> 8);
    }
    *out_len = n;
    return 0;
}
