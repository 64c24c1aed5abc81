/* check.h: validation of values from Lua, shared by client configuration
 * (client.c) and per-call parameters and overrides (request.c). Each check
 * raises an `argument` error naming the field, before any I/O. */
#ifndef TFAUTH_CHECK_H
#define TFAUTH_CHECK_H

#include "tfauth.h"

enum {
    TF_TEXT_HEADER = 1, /* no control characters at all (CR, LF, NUL, TAB, DEL ...) */
    TF_TEXT_EMPTY = 2   /* the empty string is allowed */
};

const char *tf_type_name(lua_State *L, int idx);
/* A string at idx, valid UTF-8, at most TF_MAX_VALUE_BYTES. */
const char *tf_check_text(lua_State *L, const char *op, const char *field, int idx, int flags,
                          size_t *len);
/* An http:// or https:// URL with a host and no credentials, query or
 * fragment; pushes it without trailing '/'. */
const char *tf_check_base_url(lua_State *L, const char *op, const char *field, int idx);
/* The same, a query allowed; the string at idx is returned unchanged. */
const char *tf_check_url(lua_State *L, const char *op, const char *field, int idx);
long tf_check_positive(lua_State *L, const char *op, const char *field, int idx, long max);
/* A table of header name -> value, none of them one tfauth sets itself. */
void tf_check_headers(lua_State *L, const char *op, const char *field, int idx);
void tf_check_retries(lua_State *L, const char *op, const char *field, int idx);
/* Raises when the table at idx has a key that is not in names (NULL-ended).
 * The error's field is the key, under `parent` when the table is a nested
 * one ("tls.verfy"); parent is NULL at the top level. */
void tf_check_keys(lua_State *L, const char *op, const char *what, const char *parent, int idx,
                   const char *const *names);

#endif
