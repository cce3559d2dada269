#include "sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV_KEY        "KHEISH_AUTH_STORE_MASTER_KEY"
#define ENV_KEY_FILE   "KHEISH_AUTH_STORE_MASTER_KEY_FILE"
#define KEY_ID_CONTEXT "kheish auth store key id v1"
#define AD_MAX         192

static int
fail(char *err, size_t errsz, const char *msg)
{
    snprintf(err, errsz, "%s", msg);
    return -1;
}

int
sealed_key_parse(const char *text, size_t len, struct sealed_key *k, char *err, size_t errsz)
{
    while (len > 0 && strchr(" \t\r\n", text[0]))
        text++, len--;
    while (len > 0 && strchr(" \t\r\n", text[len - 1]))
        len--;
    size_t n = 0;
    if (sodium_base642bin(k->key, sizeof k->key, text, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != SEALED_KEY_BYTES) {
        if (len != SEALED_KEY_BYTES) {
            sodium_memzero(k->key, sizeof k->key);
            return fail(err, errsz,
                        "the master key must be exactly 32 raw bytes or base64-encoded 32 bytes");
        }
        memcpy(k->key, text, SEALED_KEY_BYTES);
    }
    unsigned char id[SEALED_KEY_ID_LEN / 2];
    crypto_generichash(id, sizeof id, (const unsigned char *)KEY_ID_CONTEXT,
                       sizeof KEY_ID_CONTEXT - 1, k->key, sizeof k->key);
    sodium_bin2hex(k->id, sizeof k->id, id, sizeof id);
    return 0;
}

int
sealed_key_from_file(const char *path, struct sealed_key *k, char *err, size_t errsz)
{
    char buf[SEALED_KEY_FILE_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        snprintf(err, errsz, "cannot read the master key file %s: %s", path, strerror(saved));
        return -1;
    }
    int rc =
        (size_t)n <= SEALED_KEY_FILE_MAX ? sealed_key_parse(buf, (size_t)n, k, err, errsz) : -1;
    sodium_memzero(buf, sizeof buf);
    if (rc != 0)
        snprintf(err, errsz,
                 "the master key file %s must hold exactly 32 raw bytes or base64-encoded 32 bytes",
                 path);
    return rc;
}

int
sealed_key_from_env(struct sealed_key *k, char *err, size_t errsz)
{
    const char *value = getenv(ENV_KEY), *file = getenv(ENV_KEY_FILE);
    if (value && *value && file && *file)
        return fail(err, errsz, ENV_KEY " and " ENV_KEY_FILE " are mutually exclusive");
    if (value && *value) {
        if (sealed_key_parse(value, strlen(value), k, err, errsz) == 0)
            return 1;
        return fail(err, errsz, ENV_KEY " must be exactly 32 raw bytes or base64-encoded 32 bytes");
    }
    if (file && *file)
        return sealed_key_from_file(file, k, err, errsz) == 0 ? 1 : -1;
    return 0;
}

/* The associated data: what a ciphertext is bound to. */
static size_t
associated(const char *slot_id, int64_t version, char ad[AD_MAX])
{
    int n = snprintf(ad, AD_MAX, "kheish-auth-slot:v1:%" PRId64 ":%s", version, slot_id);
    return n > 0 && n < AD_MAX ? (size_t)n : 0;
}

int
sealed_seal(const struct sealed_key *k, const char *slot_id, int64_t version, const void *plain,
            size_t len, unsigned char nonce[SEALED_NONCE_BYTES], unsigned char **ct, size_t *ct_len)
{
    char ad[AD_MAX];
    size_t adlen = associated(slot_id, version, ad);
    *ct = NULL;
    if (adlen == 0 || len > SEALED_VALUE_MAX || (*ct = malloc(len + SEALED_TAG_BYTES)) == NULL)
        return -1;
    randombytes_buf(nonce, SEALED_NONCE_BYTES);
    unsigned long long out = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(*ct, &out, plain, len, (unsigned char *)ad, adlen,
                                               NULL, nonce, k->key);
    *ct_len = (size_t)out;
    return 0;
}

char *
sealed_open(const struct sealed_key *k, const char *slot_id, int64_t version,
            const unsigned char nonce[SEALED_NONCE_BYTES], const unsigned char *ct, size_t ct_len,
            size_t *len)
{
    char ad[AD_MAX];
    size_t adlen = associated(slot_id, version, ad);
    if (adlen == 0 || ct_len < SEALED_TAG_BYTES || ct_len > SEALED_VALUE_MAX + SEALED_TAG_BYTES)
        return NULL;
    char *plain = malloc(ct_len - SEALED_TAG_BYTES + 1);
    unsigned long long out = 0;
    if (plain == NULL || crypto_aead_xchacha20poly1305_ietf_decrypt(
                             (unsigned char *)plain, &out, NULL, ct, ct_len, (unsigned char *)ad,
                             adlen, nonce, k->key) != 0) {
        free(plain);
        return NULL;
    }
    plain[out] = '\0';
    *len = (size_t)out;
    return plain;
}

void
sealed_free(char *plain, size_t len)
{
    if (plain == NULL)
        return;
    sodium_memzero(plain, len);
    free(plain);
}

void
sealed_key_wipe(struct sealed_key *k)
{
    sodium_memzero(k, sizeof *k);
}
