/* retry.h: the retry policy (retry.c). */
#ifndef TFAUTH_RETRY_H
#define TFAUTH_RETRY_H

#include "tfauth.h"

/* Reads a checked RetryConfig table at idx (nil: no retries). */
void tf_retry_read(lua_State *L, int idx, tf_retry *r);
/* Whether a status is one a retry could cure: 429, 500, 502, 503, 504. */
int tf_retry_status(long status);
/* Whether this outcome is worth another attempt under r. */
int tf_retry_wanted(const tf_retry *r, int failed, tf_kind kind, long status);
/* Milliseconds to wait before the next attempt after `retries` retries and
 * elapsed_ms since the first, or -1 to stop (max_elapsed_time). */
long tf_retry_wait_ms(const tf_retry *r, int retries, double elapsed_ms, const char *retry_after);

double tf_now_ms(void); /* monotonic */
void tf_sleep_ms(long ms);
/* Adds core.clock(), the same monotonic clock in seconds. */
void tf_open_retry(lua_State *L, int module);

#endif
