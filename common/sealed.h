/*
 * sealed: the auth store's master key and the sealing of secret slot values
 * (contract §5). A slot's value is sealed with XChaCha20-Poly1305 (libsodium)
 * under the master key, with associated data binding the slot id and its
 * version: a ciphertext copied to another slot, or an old version replayed
 * over a newer one, does not open. Only ciphertext reaches the database.
 *
 * The master key comes from KHEISH_AUTH_STORE_MASTER_KEY (the value) or
 * KHEISH_AUTH_STORE_MASTER_KEY_FILE (a file holding it), never both: 32 raw
 * bytes, or base64 of 32 bytes, surrounding whitespace trimmed. Its key id,
 * a keyed BLAKE2b fingerprint, is stored beside every slot so that a wrong
 * key is reported as such instead of as 'corrupt data'.
 */
#ifndef KHEISH_SEALED_H
#define KHEISH_SEALED_H

#include <stddef.h>
#include <stdint.h>

#define SEALED_KEY_BYTES    32
#define SEALED_NONCE_BYTES  24 /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define SEALED_TAG_BYTES    16
#define SEALED_KEY_ID_LEN   32          /* hex characters */
#define SEALED_VALUE_MAX    (64 * 1024) /* plaintext bytes of one slot */
#define SEALED_KEY_FILE_MAX 4096

struct sealed_key {
    unsigned char key[SEALED_KEY_BYTES];
    char id[SEALED_KEY_ID_LEN + 1];
};

/* Reads the master key from the environment. Returns 1 when loaded, 0 when
 * neither variable is set, -1 with the reason in err (the contract's texts;
 * never the key's bytes). */
int sealed_key_from_env(struct sealed_key *k, char *err, size_t errsz);

/* Reads a key file (the value, trimmed). Returns 0 or -1 with err. */
int sealed_key_from_file(const char *path, struct sealed_key *k, char *err, size_t errsz);

/* Parses a key value (raw or base64, trimmed). Returns 0 or -1 with err. */
int sealed_key_parse(const char *text, size_t len, struct sealed_key *k, char *err, size_t errsz);

/* Seals plaintext for (slot_id, version): a fresh random nonce, and the
 * ciphertext (len + SEALED_TAG_BYTES bytes, malloc'd). Returns 0 or -1. */
int sealed_seal(const struct sealed_key *k, const char *slot_id, int64_t version, const void *plain,
                size_t len, unsigned char nonce[SEALED_NONCE_BYTES], unsigned char **ct,
                size_t *ct_len);

/* Opens what sealed_seal made: the NUL-terminated plaintext (malloc'd, wipe
 * with sealed_free), or NULL when the key, slot, version or bytes differ. */
char *sealed_open(const struct sealed_key *k, const char *slot_id, int64_t version,
                  const unsigned char nonce[SEALED_NONCE_BYTES], const unsigned char *ct,
                  size_t ct_len, size_t *len);

/* Wipes and frees a plaintext from sealed_open (NULL is fine). */
void sealed_free(char *plain, size_t len);

void sealed_key_wipe(struct sealed_key *k);

#endif
