/* raw_curl.c URL N: the limit of tfauth's design: N login POSTs on one
 * reused libcurl easy handle, with the headers and body tfauth sends, the
 * response kept in a reused buffer and not decoded.
 * Prints "calls_per_second p50_us p99_us". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

static char body_buf[1 << 16];
static size_t body_len;

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
    size_t len = size * n;
    (void)ud;
    if (body_len + len > sizeof body_buf) return 0;
    memcpy(body_buf + body_len, data, len);
    body_len += len;
    return len;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    static const char body[] = "{\"user\":\"alice\",\"password\":\"alice-Secret-1\",\"remember_me\":false}";
    char url[512];
    int n, i;
    double *lat, start, total;
    struct curl_slist *headers = NULL;
    CURL *easy;
    if (argc < 3) return fprintf(stderr, "usage: raw_curl URL N\n"), 2;
    snprintf(url, sizeof url, "%s/api/iam/login", argv[1]);
    n = atoi(argv[2]);
    lat = calloc((size_t)n, sizeof *lat);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    easy = curl_easy_init();
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "tfauth/1.2.0 libcurl/7.88.1 Lua 5.4");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)(sizeof body - 1));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 30000L);
    start = now_us();
    for (i = 0; i < n; i++) {
        double t0 = now_us();
        long status = 0;
        body_len = 0;
        if (curl_easy_perform(easy) != CURLE_OK) return fprintf(stderr, "request failed\n"), 1;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) return fprintf(stderr, "status %ld\n", status), 1;
        lat[i] = now_us() - t0;
    }
    total = now_us() - start;
    qsort(lat, (size_t)n, sizeof *lat, by_value);
    printf("%.0f %.1f %.1f\n", n / (total / 1e6), lat[n / 2], lat[(int)(n * 0.99)]);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    curl_global_cleanup();
    free(lat);
    return 0;
}
