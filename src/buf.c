/* buf.c: a growable byte buffer, always NUL-terminated once used. */
#include <stdlib.h>
#include <string.h>
#include "tfauth.h"

int tf_buf_reserve(tf_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (extra > (size_t)-1 / 2 - b->len) return -1;
    need = b->len + extra + 1; /* room for the terminating NUL */
    if (need <= b->cap) return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int tf_buf_add(tf_buf *b, const char *s, size_t n) {
    if (tf_buf_reserve(b, n) != 0) return -1;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int tf_buf_addstr(tf_buf *b, const char *s) {
    return tf_buf_add(b, s, strlen(s));
}

void tf_buf_free(tf_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
