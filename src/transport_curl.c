/* transport_curl.c: the libcurl transport.
 *
 * One easy handle per client, reused for every call so that connections
 * stay alive and TLS sessions are resumed. Header lines, the header list and
 * the response buffers are owned by the transport and reused: a call in the
 * steady state allocates nothing here. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "transport.h"

#define TF_MAX_HEADER_BYTES 65536 /* all response headers together */
#define TF_LIST_CAP (TF_MAX_HEADERS + 1) /* + the "Expect:" suppression */

struct tf_transport {
    CURL *easy;
    tf_response res;
    size_t max_body;
    int headers_overflow;
    tf_buf lines;                         /* "Name: value\0" request header lines */
    struct curl_slist nodes[TF_LIST_CAP]; /* their list, in place: no allocation */
    char errbuf[CURL_ERROR_SIZE];
};

int tf_transport_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

const char *tf_transport_version(void) {
    return curl_version_info(CURLVERSION_NOW)->version;
}

/* ---- collecting the response ------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
    tf_transport *t = ud;
    size_t len = size * n, room = t->max_body - t->res.body.len;
    if (len > room) {
        /* Keep what fits, then stop the transfer: the cap bounds memory and
         * time whatever the server sends. */
        tf_buf_add(&t->res.body, data, room);
        t->res.truncated = 1;
        return 0;
    }
    return tf_buf_add(&t->res.body, data, len) == 0 ? len : 0;
}

static void trim(const char **s, size_t *len) {
    while (*len && (**s == ' ' || **s == '\t')) (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1])) (*len)--;
}

/* "HTTP/1.1 401 Unauthorized": a new response starts (after a 100 Continue,
 * say): forget earlier headers, keep the reason phrase. */
static void on_status_line(tf_response *res, const char *line, size_t len) {
    const char *sp = memchr(line, ' ', len);
    size_t rest;
    res->headers.len = 0;
    res->reason[0] = '\0';
    if (!sp) return;
    rest = len - (size_t)(sp - line);
    sp = memchr(sp + 1, ' ', rest - 1);
    if (!sp) return;
    sp++;
    rest = len - (size_t)(sp - line);
    trim(&sp, &rest);
    if (rest >= sizeof res->reason) rest = sizeof res->reason - 1;
    memcpy(res->reason, sp, rest);
    res->reason[rest] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *ud) {
    tf_transport *t = ud;
    tf_buf *h = &t->res.headers;
    size_t len = size * n, name_len, value_len, i;
    const char *colon, *value;

    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        on_status_line(&t->res, line, len);
        return len;
    }
    colon = memchr(line, ':', len);
    if (!colon || colon == line) return len; /* the blank line, or junk */
    if (h->len + len + 2 > TF_MAX_HEADER_BYTES) {
        t->headers_overflow = 1;
        return 0;
    }
    name_len = (size_t)(colon - line);
    value = colon + 1;
    value_len = len - name_len - 1;
    trim(&value, &value_len);
    if (tf_buf_reserve(h, name_len + value_len + 2) != 0) return 0;
    for (i = 0; i < name_len; i++) h->data[h->len + i] = (char)tolower((unsigned char)line[i]);
    h->len += name_len;
    h->data[h->len++] = '\0';
    memcpy(h->data + h->len, value, value_len);
    h->len += value_len;
    h->data[h->len++] = '\0';
    return len;
}

/* ---- the handle -------------------------------------------------------------- */

#define SET(opt, val)                                                     \
    do {                                                                  \
        if (curl_easy_setopt(t->easy, opt, val) != CURLE_OK) {            \
            snprintf(err, errlen, "libcurl refused option %s", #opt);     \
            goto fail;                                                    \
        }                                                                 \
    } while (0)

tf_transport *tf_transport_new(const tf_transport_config *cfg, char *err, size_t errlen) {
    tf_transport *t = calloc(1, sizeof *t);
    if (!t || !(t->easy = curl_easy_init())) {
        snprintf(err, errlen, "out of memory");
        free(t);
        return NULL;
    }
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM in a host process (nginx, threads) */
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_FOLLOWLOCATION, 0L); /* never carry credentials elsewhere */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_USERAGENT, cfg->user_agent);
    SET(CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
    if (cfg->ca_file) SET(CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->ca_path) SET(CURLOPT_CAPATH, cfg->ca_path);
    if (cfg->cert) SET(CURLOPT_SSLCERT, cfg->cert);
    if (cfg->key) SET(CURLOPT_SSLKEY, cfg->key);
    /* "" disables proxies, including http_proxy from the environment. */
    SET(CURLOPT_PROXY, cfg->proxy ? cfg->proxy : "");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    return t;
fail:
    tf_transport_free(t);
    return NULL;
}

void tf_transport_free(tf_transport *t) {
    if (!t) return;
    if (t->easy) curl_easy_cleanup(t->easy);
    tf_buf_free(&t->lines);
    tf_buf_free(&t->res.headers);
    tf_buf_free(&t->res.body);
    free(t);
}

/* ---- one call ----------------------------------------------------------------- */

/* Lays the request's headers out as a curl_slist in t->nodes. Returns the
 * list, or NULL when out of memory. */
static struct curl_slist *header_list(tf_transport *t, const tf_request *req) {
    size_t offsets[TF_LIST_CAP], i, n = 0;
    t->lines.len = 0;
    for (i = 0; i < req->nheaders; i++) {
        offsets[n++] = t->lines.len;
        /* "Name;" is libcurl's way to send a header with an empty value. */
        if (tf_buf_addstr(&t->lines, req->headers[i].name) != 0 ||
            tf_buf_addstr(&t->lines, *req->headers[i].value ? ": " : ";") != 0 ||
            tf_buf_add(&t->lines, req->headers[i].value, strlen(req->headers[i].value) + 1) != 0)
            return NULL;
    }
    offsets[n++] = t->lines.len; /* no "Expect: 100-continue" round trip */
    if (tf_buf_add(&t->lines, "Expect:", sizeof "Expect:") != 0) return NULL;
    for (i = 0; i < n; i++) {
        t->nodes[i].data = t->lines.data + offsets[i];
        t->nodes[i].next = i + 1 < n ? &t->nodes[i + 1] : NULL;
    }
    return t->nodes;
}

/* Under TLS 1.3 the server judges a client certificate after the
 * handshake: its refusal reaches libcurl as a failed receive or send whose
 * message is OpenSSL's alert. That is a TLS failure, not the network's. */
static int tls_layer_message(const char *msg) {
    return strstr(msg, "SSL_read") || strstr(msg, "SSL_write") || strstr(msg, " alert ");
}

static tf_kind failure_kind(CURLcode rc, const char *msg) {
    switch (rc) {
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
        return tls_layer_message(msg) ? TF_TLS : TF_NETWORK;
    case CURLE_OPERATION_TIMEDOUT:
        return TF_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED: case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074700
    case CURLE_SSL_CLIENTCERT:
#endif
        return TF_TLS;
    default:
        return TF_NETWORK;
    }
}

static void fail(tf_response *res, tf_kind kind, long code, const char *message) {
    res->failed = 1;
    res->kind = kind;
    res->code = code;
    snprintf(res->message, sizeof res->message, "%s", message);
}

const tf_response *tf_transport_perform(tf_transport *t, const tf_request *req, size_t max_body) {
    tf_response *res = &t->res;
    struct curl_slist *list = header_list(t, req);
    curl_off_t micros = 0;
    CURLcode rc;

    res->failed = res->truncated = 0;
    res->status = 0;
    res->reason[0] = '\0';
    res->headers.len = res->body.len = 0;
    t->errbuf[0] = '\0';
    t->headers_overflow = 0;
    t->max_body = max_body;
    if (!list) {
        fail(res, TF_NETWORK, CURLE_OUT_OF_MEMORY, "out of memory");
        return res;
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, req->url);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, list);
    if (strcmp(req->op->method, "GET") == 0) {
        curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
    } else { /* the handle may have done a GET last time */
        curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);

    rc = curl_easy_perform(t->easy);

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &micros);
    res->seconds = (double)micros / 1e6;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && res->truncated)) return res;
    if (t->headers_overflow)
        fail(res, TF_RESPONSE, rc, "response headers larger than 64 KiB");
    else
        fail(res, failure_kind(rc, t->errbuf), rc, t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    return res;
}
