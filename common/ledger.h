/*
 * ledger: the signed external-action records of contract §9, built and
 * checked byte for byte as upstream does, so a record made here verifies
 * with upstream's algorithm and the other way round.
 *
 *   record_hash = hex SHA-256 of the unsigned record, compact JSON, fields in
 *                 the order of ledger_fields (grant_id left out when null,
 *                 every other null written as null)
 *   action_id   = record_hash
 *   signature   = hex Ed25519 over {"action_id","signature_alg","key_id",
 *                 "record_hash", then the unsigned record's fields}
 *   key_id      = hex of the 32-byte public key
 *
 * A bucket (a run's id, else "session-<id>", else "unscoped") chains its
 * records through prev_hash, and a signed checkpoint {bucket, record_count,
 * last_record_hash, signature_alg, key_id} says how long the chain is, so
 * a record taken off its end is seen. Strings are JSON-escaped as
 * serde_json does (\uXXXX in lower case, nothing else escaped).
 *
 * The key: KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY (the value) or ..._FILE
 * (a file holding it), never both; a JSON key document {"algorithm":
 * "ed25519", "secret_key_hex": ...}, or the 32-byte seed as hex, base64url
 * without padding, base64, or raw bytes. Else <state_root>/audit-signing.key,
 * made once (0600, the JSON document).
 */
#ifndef KHEISH_LEDGER_H
#define KHEISH_LEDGER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define LEDGER_ALG          "ed25519"
#define LEDGER_KEY_FILE     "audit-signing.key" /* under the state root */
#define LEDGER_HASH_HEX     64
#define LEDGER_SIG_HEX      128
#define LEDGER_KEY_FILE_MAX 4096

/* The unsigned record's string fields, in hash order. */
enum ledger_field {
    LEDGER_SESSION_ID,
    LEDGER_AGENT_ID,
    LEDGER_RUN_ID,
    LEDGER_TOOL_CALL_ID,
    LEDGER_PRINCIPAL_ID,
    LEDGER_PARENT_PRINCIPAL_ID,
    LEDGER_GRANT_ID,
    LEDGER_PHASE,
    LEDGER_KIND,
    LEDGER_TARGET,
    LEDGER_REQUEST_DIGEST,
    LEDGER_RESPONSE_DIGEST,
    LEDGER_OUTCOME,
    LEDGER_PREV_HASH,
    LEDGER_NFIELDS
};
extern const char *const ledger_field_names[LEDGER_NFIELDS];

struct ledger_record {
    int64_t timestamp_ms;
    const char *f[LEDGER_NFIELDS]; /* NULL: null; phase, kind and target are required */
    char record_hash[LEDGER_HASH_HEX + 1];
    char signature_alg[16];
    char key_id[LEDGER_HASH_HEX + 1];
    char signature[LEDGER_SIG_HEX + 1];
    const char *action_id; /* when read back; made records use record_hash */
};

struct ledger_key {
    unsigned char sk[64]; /* libsodium's secret key: the seed, then the public key */
    unsigned char pk[32];
    char id[LEDGER_HASH_HEX + 1];
};

/* Parses a key in any accepted encoding. Returns 0, or -1 with why. */
int ledger_key_parse(const unsigned char *buf, size_t len, struct ledger_key *k, char *why,
                     size_t whysz);

/* The signing key: from the environment, else from state_root's key file
 * (made when create and it does not exist; *made says so). Returns 1 when
 * loaded, 0 when there is none (no variable, no state_root or no file and
 * !create), -1 with why. *path (may be NULL) names the file it came from,
 * or "" for the value variable. */
int ledger_key_load(struct ledger_key *k, const char *state_root, int create, int *made, char *path,
                    size_t pathsz, char *why, size_t whysz);

/* A public key given as 64 hex characters. Returns 0 or -1. */
int ledger_public_key_parse(const char *hex, unsigned char pk[32]);

void ledger_key_wipe(struct ledger_key *k);

/* Fills record_hash, signature_alg, key_id and signature. Returns 0, or -1
 * when a field is not valid UTF-8 or a required one is missing. */
int ledger_sign(struct ledger_record *r, const struct ledger_key *k);

/* Checks one record: required fields, its hash, action_id == record_hash,
 * and its signature under pk. Returns 0, or -1 with what is wrong. */
int ledger_verify(const struct ledger_record *r, const unsigned char pk[32], char *why,
                  size_t whysz);

/* The signature (hex) of a bucket's checkpoint. last_hash may be NULL.
 * Returns 0 or -1. */
int ledger_checkpoint_sign(const char *bucket, int64_t count, const char *last_hash,
                           const struct ledger_key *k, char sig[LEDGER_SIG_HEX + 1]);
int ledger_checkpoint_verify(const char *bucket, int64_t count, const char *last_hash,
                             const char *alg, const char *key_id, const char *sig,
                             const unsigned char pk[32]);

/* The record as the API shows it (ExternalActionAuditRecord: absent fields
 * left out), and back. ledger_record_from_json keeps pointers into o. */
json_t *ledger_record_json(const struct ledger_record *r);
int ledger_record_from_json(const json_t *o, struct ledger_record *r, char *why, size_t whysz);

/* The canonical unsigned record (malloc'd), for tests and the SQL check's
 * twin. */
char *ledger_unsigned_json(const struct ledger_record *r);

#endif
