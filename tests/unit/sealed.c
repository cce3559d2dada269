/*
 * test-sealed: the auth store's sealing (common/sealed.c). A value opens
 * only under the key, slot id and version it was sealed for; master keys
 * parse as the contract says.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sealed.h"

static int failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                             \
            failed = 1;                                                                            \
        }                                                                                          \
    } while (0)

static void
keys(void)
{
    struct sealed_key a, b;
    char err[256];
    const char raw[] = "0123456789abcdef0123456789abcdef";
    CHECK(sealed_key_parse(raw, 32, &a, err, sizeof err) == 0);
    CHECK(sealed_key_parse("  0123456789abcdef0123456789abcdef\n", 35, &b, err, sizeof err) == 0);
    CHECK(memcmp(a.key, b.key, 32) == 0 && strcmp(a.id, b.id) == 0 && strlen(a.id) == 32);
    /* base64 of 32 bytes is the key those bytes are, not 44 raw bytes */
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)raw, 32,
                      sodium_base64_VARIANT_ORIGINAL);
    CHECK(sealed_key_parse(b64, strlen(b64), &b, err, sizeof err) == 0);
    CHECK(memcmp(a.key, b.key, 32) == 0);
    CHECK(sealed_key_parse(raw, 31, &b, err, sizeof err) == -1);
    CHECK(strstr(err, "exactly 32 raw bytes or base64-encoded 32 bytes") != NULL);
    CHECK(sealed_key_parse("", 0, &b, err, sizeof err) == -1);
    setenv("KHEISH_AUTH_STORE_MASTER_KEY", raw, 1);
    setenv("KHEISH_AUTH_STORE_MASTER_KEY_FILE", "/nonexistent", 1);
    CHECK(sealed_key_from_env(&b, err, sizeof err) == -1 && strstr(err, "mutually exclusive"));
    unsetenv("KHEISH_AUTH_STORE_MASTER_KEY_FILE");
    CHECK(sealed_key_from_env(&b, err, sizeof err) == 1 && memcmp(a.key, b.key, 32) == 0);
    unsetenv("KHEISH_AUTH_STORE_MASTER_KEY");
    CHECK(sealed_key_from_env(&b, err, sizeof err) == 0);
    setenv("KHEISH_AUTH_STORE_MASTER_KEY_FILE", "/nonexistent", 1);
    CHECK(sealed_key_from_env(&b, err, sizeof err) == -1 && strstr(err, "/nonexistent"));
    unsetenv("KHEISH_AUTH_STORE_MASTER_KEY_FILE");
}

static void
sealing(void)
{
    struct sealed_key k, other;
    char err[256];
    unsigned char nonce[SEALED_NONCE_BYTES], *ct;
    size_t ct_len, len;
    const char secret[] = "sk-unit-SECRET";
    CHECK(sealed_key_parse("0123456789abcdef0123456789abcdef", 32, &k, err, sizeof err) == 0);
    CHECK(sealed_key_parse("fedcba9876543210fedcba9876543210", 32, &other, err, sizeof err) == 0);
    CHECK(strcmp(k.id, other.id) != 0);
    CHECK(sealed_seal(&k, "slot-a", 3, secret, strlen(secret), nonce, &ct, &ct_len) == 0);
    CHECK(ct_len == strlen(secret) + SEALED_TAG_BYTES);
    CHECK(memmem(ct, ct_len, "SECRET", 6) == NULL);
    char *plain = sealed_open(&k, "slot-a", 3, nonce, ct, ct_len, &len);
    CHECK(plain && len == strlen(secret) && strcmp(plain, secret) == 0);
    sealed_free(plain, len);
    CHECK(sealed_open(&k, "slot-b", 3, nonce, ct, ct_len, &len) == NULL);     /* another slot */
    CHECK(sealed_open(&k, "slot-a", 2, nonce, ct, ct_len, &len) == NULL);     /* an old version */
    CHECK(sealed_open(&other, "slot-a", 3, nonce, ct, ct_len, &len) == NULL); /* another key */
    ct[0] ^= 1;
    CHECK(sealed_open(&k, "slot-a", 3, nonce, ct, ct_len, &len) == NULL); /* a flipped bit */
    CHECK(sealed_open(&k, "slot-a", 3, nonce, ct, 3, &len) == NULL);      /* too short */
    free(ct);
    CHECK(sealed_seal(&k, "slot-a", 1, secret, SEALED_VALUE_MAX + 1, nonce, &ct, &ct_len) == -1);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    keys();
    sealing();
    if (!failed)
        printf("sealed: ok\n");
    return failed;
}
