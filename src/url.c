/* url.c: percent-encoding for the parts of a URL that request.c builds (a
 * path segment, a query value), as RFC 3986 §2 says: the unreserved
 * characters (ALPHA, DIGIT, "-", ".", "_", "~") stay, every other byte is
 * %XX. The same bytes as libcurl's curl_easy_escape, without reaching into
 * a transport for them; and the value of a hex digit, for whoever reads
 * %XX or hexadecimal keys back. It calls only buf.c. */
#include "tfauth.h"

static int unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int tf_url_escape(tf_buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    size_t i;
    if (len > ((size_t)-1) / 4 || tf_buf_reserve(b, 3 * len) != 0) return -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c)) {
            b->data[b->len++] = (char)c;
        } else {
            b->data[b->len++] = '%';
            b->data[b->len++] = hex[c >> 4];
            b->data[b->len++] = hex[c & 15];
        }
    }
    b->data[b->len] = '\0';
    return 0;
}

int tf_hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
