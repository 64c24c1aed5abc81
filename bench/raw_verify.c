/* raw_verify.c ALG PUBKEY.pem TOKEN_FILE N: the limit for JWS verification,
 * N calls of OpenSSL's EVP_DigestVerify on the token's signing input and
 * signature with the key, and nothing else: no JSON, no claims, no Lua.
 * The token is split and its signature decoded (ECDSA: turned into DER) once,
 * before the loop. Prints "verifications_per_second". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

static size_t unb64url(const char *s, size_t len, unsigned char *out) {
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned acc = 0;
    int bits = 0;
    size_t i, n = 0;
    for (i = 0; i < len; i++) {
        acc = (acc << 6) | (unsigned)(strchr(alpha, s[i]) - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    char token[20000];
    unsigned char sig[2048], der[256];
    const EVP_MD *md;
    EVP_PKEY *pkey;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    FILE *f;
    size_t len, sig_len, input_len;
    char *dot;
    long i, n;
    double t0;
    if (argc != 5) return fprintf(stderr, "usage: raw_verify ALG PUBKEY.pem TOKEN_FILE N\n"), 2;
    n = atol(argv[4]);
    f = fopen(argv[2], "r");
    if (!f || !(pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL))) return fprintf(stderr, "no key\n"), 1;
    fclose(f);
    f = fopen(argv[3], "r");
    if (!f || !(len = fread(token, 1, sizeof token - 1, f))) return fprintf(stderr, "no token\n"), 1;
    fclose(f);
    while (len && (token[len - 1] == '\n' || token[len - 1] == '\r')) len--;
    token[len] = 0;
    dot = strrchr(token, '.');
    input_len = (size_t)(dot - token);
    sig_len = unb64url(dot + 1, len - input_len - 1, sig);
    md = strcmp(argv[1], "EdDSA") == 0 ? NULL
         : strstr(argv[1], "384") ? EVP_sha384() : strstr(argv[1], "512") ? EVP_sha512() : EVP_sha256();
    if (argv[1][0] == 'E' && argv[1][1] == 'S') { /* r || s -> DER, once */
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *p = der;
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)sig_len / 2, NULL), BN_bin2bn(sig + sig_len / 2, (int)sig_len / 2, NULL));
        sig_len = (size_t)i2d_ECDSA_SIG(es, &p);
        memcpy(sig, der, sig_len);
        ECDSA_SIG_free(es);
    }
    t0 = now();
    for (i = 0; i < n; i++) {
        EVP_PKEY_CTX *pctx = NULL;
        if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pkey) != 1) return fprintf(stderr, "init failed\n"), 1;
        if (argv[1][0] == 'P') {
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        if (EVP_DigestVerify(ctx, sig, sig_len, (unsigned char *)token, input_len) != 1)
            return fprintf(stderr, "signature does not verify\n"), 1;
        EVP_MD_CTX_reset(ctx);
    }
    printf("%.0f\n", n / (now() - t0));
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return 0;
}
