/* transport.h: sending a prepared tf_request and collecting the answer.
 *
 * The transport knows nothing of Lua, the operations or their results: it
 * takes a request (its op's method, POST or GET; URL, headers, body) and fills
 * a tf_response.
 * transport_curl.c is the libcurl one; the OpenResty transport (Lua) feeds
 * nginx's answer to the same response mapper. */
#ifndef TFAUTH_TRANSPORT_H
#define TFAUTH_TRANSPORT_H

#include "tfauth.h"

typedef struct tf_transport tf_transport;

typedef struct {
    const char *user_agent;
    int tls_verify;
    const char *ca_file, *ca_path, *cert, *key;
    const char *proxy; /* NULL: no proxy, whatever the environment says */
} tf_transport_config;

int tf_transport_global_init(void); /* once per process; 0 ok */
const char *tf_transport_version(void);

/* NULL when out of memory or the library refuses an option (err says which). */
tf_transport *tf_transport_new(const tf_transport_config *cfg, char *err, size_t errlen);
void tf_transport_free(tf_transport *t);

/* Sends req and returns the response, owned by t and valid until the next
 * call. The body is kept up to max_body bytes; past that the transfer stops
 * and the response is marked truncated. */
const tf_response *tf_transport_perform(tf_transport *t, const tf_request *req, size_t max_body);

#endif
