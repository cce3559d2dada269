/*
 * Secret slots (sql/migrations/005, sql/functions/auth.sql): sealed by the
 * caller (common/sealed.c), stored as ciphertext, shown as AuthSlotStatus,
 * audited without values.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sealed.h"

/* One attempt at a put: the next version read, the value sealed for it, then
 * written; STORE_RETRY when a concurrent write took that version. */
static enum store_rc
put_once(struct store *s, const char *actor, const struct store_slot_write *w, json_t **status)
{
    char *v = NULL;
    enum store_rc rc =
        db_text(s, &v, "SELECT kheish_slot_next_version($1)", 1, (const char *const[]){w->slot_id});
    if (rc != STORE_OK)
        return rc;
    int64_t version = strtoll(v, NULL, 10);
    free(v);
    unsigned char nonce[SEALED_NONCE_BYTES], *ct = NULL;
    size_t ct_len = 0;
    if (w->seal(w->ctx, version, nonce, &ct, &ct_len) != 0)
        return STORE_ERROR;
    char nonce_hex[2 * SEALED_NONCE_BYTES + 1], ver[24];
    char *ct_hex = malloc(2 * ct_len + 1);
    if (ct_hex == NULL) {
        free(ct);
        return STORE_ERROR;
    }
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, nonce, sizeof nonce);
    sodium_bin2hex(ct_hex, 2 * ct_len + 1, ct, ct_len);
    free(ct);
    snprintf(ver, sizeof ver, "%" PRId64, version);
    rc = db_call_get(s, "status", status,
                     "SELECT kheish_slot_put($1, $2, $3, $4::bigint, $5, decode($6, 'hex'), "
                     "decode($7, 'hex'), $8, $9::jsonb)",
                     9,
                     (const char *const[]){w->slot_id, w->provider, w->mode, ver, w->key_id,
                                           nonce_hex, ct_hex, w->recorded_by, actor});
    free(ct_hex);
    return rc;
}

enum store_rc
store_slot_put(struct store *s, const char *actor, const struct store_slot_write *w,
               json_t **status)
{
    enum store_rc rc = STORE_RETRY;
    for (int attempt = 0; attempt < STORE_TX_MAX_ATTEMPTS && rc == STORE_RETRY; attempt++)
        rc = put_once(s, actor, w, status);
    return rc;
}

enum store_rc
store_slot_status(struct store *s, const char *slot_id, json_t **status)
{
    enum store_rc rc = db_json(s, status,
                               "SELECT auth_slot_status(a) FROM auth_slots a "
                               "WHERE slot_id = $1",
                               1, (const char *const[]){slot_id});
    return rc == STORE_OK && *status == NULL ? STORE_SECRET_NOT_FOUND : rc;
}

enum store_rc
store_slot_list(struct store *s, json_t **list)
{
    return db_json(s, list,
                   "SELECT coalesce(jsonb_agg(auth_slot_status(a) ORDER BY slot_id), '[]') "
                   "FROM auth_slots a",
                   0, NULL);
}

enum store_rc
store_slot_delete(struct store *s, const char *actor, const char *slot_id, const char *recorded_by)
{
    json_t *result;
    enum store_rc rc =
        db_call_get(s, "result", &result, "SELECT kheish_slot_delete($1, $2, $3::jsonb)", 3,
                    (const char *const[]){slot_id, recorded_by, actor});
    json_decref(result);
    return rc;
}

enum store_rc
store_slot_revoke_leases(struct store *s, const char *actor, const char *slot_id,
                         const char *recorded_by, int *revoked)
{
    json_t *n;
    enum store_rc rc =
        db_call_get(s, "revoked", &n, "SELECT kheish_slot_revoke_leases($1, $2, $3::jsonb)", 3,
                    (const char *const[]){slot_id, recorded_by, actor});
    *revoked = (int)json_integer_value(n);
    json_decref(n);
    return rc;
}

enum store_rc
store_slot_sealed(struct store *s, const char *slot_id, struct store_sealed_slot *out)
{
    enum store_rc rc;
    memset(out, 0, sizeof *out);
    PGresult *r = db_exec(s, &rc,
                          "SELECT provider, mode, version, key_id, encode(nonce, 'hex'), "
                          "encode(ciphertext, 'hex') FROM auth_slots WHERE slot_id = $1",
                          1, (const char *const[]){slot_id});
    if (r == NULL)
        return rc;
    rc = PQntuples(r) == 1 ? STORE_OK : STORE_SECRET_NOT_FOUND;
    size_t hexlen = rc == STORE_OK ? (size_t)PQgetlength(r, 0, 5) : 0;
    if (rc == STORE_OK && (out->ct = malloc(hexlen / 2 + 1)) == NULL)
        rc = STORE_ERROR;
    if (rc == STORE_OK) {
        snprintf(out->provider, sizeof out->provider, "%s", PQgetvalue(r, 0, 0));
        snprintf(out->mode, sizeof out->mode, "%s", PQgetvalue(r, 0, 1));
        out->version = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        snprintf(out->key_id, sizeof out->key_id, "%s", PQgetvalue(r, 0, 3));
        if (sodium_hex2bin(out->nonce, sizeof out->nonce, PQgetvalue(r, 0, 4),
                           (size_t)PQgetlength(r, 0, 4), NULL, NULL, NULL) != 0 ||
            sodium_hex2bin(out->ct, hexlen / 2 + 1, PQgetvalue(r, 0, 5), hexlen, NULL, &out->ct_len,
                           NULL) != 0)
            rc = STORE_ERROR;
    }
    PQclear(r);
    if (rc != STORE_OK)
        store_sealed_slot_free(out);
    return rc;
}

void
store_sealed_slot_free(struct store_sealed_slot *slot)
{
    free(slot->ct);
    slot->ct = NULL;
}
