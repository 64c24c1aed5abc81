/* retry.c: the Python SDK's RetryConfig ("backoff"), as one policy.
 *
 * Waits grow as initial_interval * exponent^retries plus up to one second of
 * jitter, never past max_interval; a Retry-After header (seconds or an HTTP
 * date) sets the wait instead. Once the next wait would end past
 * max_elapsed_time, the caller gets the last response or failure. The
 * decision is apart from the sleeping, so any transport can use it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "retry.h"

static double opt_number(lua_State *L, int t, const char *name, double dflt) {
    double v;
    lua_getfield(L, t, name);
    v = lua_isnumber(L, -1) ? (double)lua_tonumber(L, -1) : dflt;
    lua_pop(L, 1);
    return v;
}

void tf_retry_read(lua_State *L, int idx, tf_retry *r) {
    memset(r, 0, sizeof *r);
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) return;
    lua_getfield(L, idx, "strategy");
    r->enabled = lua_isnil(L, -1) || strcmp(lua_tostring(L, -1), "backoff") == 0;
    lua_getfield(L, idx, "retry_connection_errors");
    r->connection_errors = lua_toboolean(L, -1);
    lua_getfield(L, idx, "backoff");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    r->initial_ms = opt_number(L, -1, "initial_interval", 500);
    r->max_ms = opt_number(L, -1, "max_interval", 60000);
    r->exponent = opt_number(L, -1, "exponent", 1.5);
    r->max_elapsed_ms = opt_number(L, -1, "max_elapsed_time", 3600000);
    lua_pop(L, 3);
}

int tf_retry_status(long status) {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

int tf_retry_wanted(const tf_retry *r, int failed, tf_kind kind, long status) {
    if (!r->enabled) return 0;
    if (failed) return r->connection_errors && (kind == TF_NETWORK || kind == TF_TIMEOUT);
    return tf_retry_status(status);
}

/* Retry-After in milliseconds, or -1 when absent or unreadable. */
static double retry_after_ms(const char *value) {
    char *end;
    long seconds;
    time_t when;
    if (!value) return -1;
    while (*value == ' ') value++;
    seconds = strtol(value, &end, 10);
    if (end != value && *end == '\0') return seconds < 0 ? -1 : seconds * 1000.0;
    when = curl_getdate(value, NULL); /* IMF-fixdate and the older forms */
    if (when == -1) return -1;
    return when > time(NULL) ? difftime(when, time(NULL)) * 1000.0 : 0;
}

/* xorshift64*: jitter only, no secrecy needed. */
static double jitter_ms(void) {
    static uint64_t s;
    if (!s) s = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&s;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return (double)((s * 2685821657736338717ULL) >> 11) / 9007199254740992.0 * 1000.0;
}

long tf_retry_wait_ms(const tf_retry *r, int retries, double elapsed_ms, const char *retry_after) {
    double wait = retry_after_ms(retry_after), base;
    int i;
    if (wait < 0) {
        for (base = r->initial_ms, i = 0; i < retries && base < r->max_ms; i++) base *= r->exponent;
        wait = base + jitter_ms();
    }
    if (wait > r->max_ms) wait = r->max_ms;
    if (elapsed_ms + wait > r->max_elapsed_ms) return -1;
    return (long)wait;
}

double tf_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

void tf_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* core.clock(): monotonic seconds, for timing (benchmarks, transports). */
static int clock_seconds(lua_State *L) {
    lua_pushnumber(L, tf_now_ms() / 1000.0);
    return 1;
}

void tf_open_retry(lua_State *L, int module) {
    lua_pushcfunction(L, clock_seconds);
    lua_setfield(L, module, "clock");
}
