/*
 * Secret slots (sql/migrations/005): sealed by the caller (common/sealed.c), stored as
 * ciphertext, shown as AuthSlotStatus, audited without values. Writers
 * serialise on the auth_store_key row, which also checks that every slot is
 * sealed with the same master key.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sealed.h"

/* Locks the key row and records key_id on first use; STORE_KEY_MISMATCH
 * when the slots are sealed with another key. */
static enum store_rc
lock_key(struct store *s, const char *key_id)
{
    char now[24];
    enum store_rc rc;
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    PGresult *r =
        db_exec(s, &rc,
                "INSERT INTO auth_store_key (key_id, created_at_ms) VALUES ($1, $2::bigint) "
                "ON CONFLICT (one) DO UPDATE SET one = true RETURNING key_id = $1",
                2, (const char *const[]){key_id, now});
    if (r == NULL)
        return rc;
    rc = strcmp(PQgetvalue(r, 0, 0), "t") ? STORE_KEY_MISMATCH : STORE_OK;
    PQclear(r);
    return rc;
}

/* Revokes the slot's active leases and audits the change. */
static enum store_rc
revoke_and_audit(struct store *s, const char *slot_id, const char *action, int64_t version,
                 const char *provider, const char *recorded_by, int *revoked)
{
    char now[24], ver[24];
    enum store_rc rc;
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    snprintf(ver, sizeof ver, "%" PRId64, version);
    PGresult *r = db_exec(
        s, &rc,
        "WITH gone AS (UPDATE auth_leases SET revoked_at_ms = $2::bigint, revoked_reason = $3 "
        "WHERE slot_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2::bigint "
        "RETURNING 1) INSERT INTO auth_slot_audit (at_ms, slot_id, action, version, provider, "
        "revoked_leases, recorded_by) SELECT $2::bigint, $1, $3, nullif($4::bigint, 0), $5, "
        "count(*), $6 FROM gone RETURNING revoked_leases",
        6, (const char *const[]){slot_id, now, action, ver, provider, recorded_by});
    if (r == NULL)
        return rc;
    if (revoked)
        *revoked = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return STORE_OK;
}

struct put_ctx {
    const struct store_slot_write *w;
    json_t **status;
};

static enum store_rc
put_tx(struct store *s, void *arg)
{
    struct put_ctx *x = arg;
    const struct store_slot_write *w = x->w;
    enum store_rc rc = lock_key(s, w->key_id);
    if (rc != STORE_OK)
        return rc;
    /* Versions continue from the audit, which outlives a delete. */
    char *v = NULL;
    rc = db_text(s, &v,
                 "SELECT coalesce(max(version), 0) + 1 FROM auth_slot_audit WHERE slot_id = $1", 1,
                 (const char *const[]){w->slot_id});
    if (rc != STORE_OK)
        return rc;
    int64_t version = strtoll(v, NULL, 10);
    free(v);
    unsigned char nonce[SEALED_NONCE_BYTES], *ct = NULL;
    size_t ct_len = 0;
    if (w->seal(w->ctx, version, nonce, &ct, &ct_len) != 0)
        return STORE_ERROR;
    char nonce_hex[2 * SEALED_NONCE_BYTES + 1], ver[24], now[24];
    char *ct_hex = malloc(2 * ct_len + 1);
    if (ct_hex == NULL) {
        free(ct);
        return STORE_ERROR;
    }
    sodium_bin2hex(nonce_hex, sizeof nonce_hex, nonce, sizeof nonce);
    sodium_bin2hex(ct_hex, 2 * ct_len + 1, ct, ct_len);
    free(ct);
    snprintf(ver, sizeof ver, "%" PRId64, version);
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    rc = db_json(
        s, x->status,
        "INSERT INTO auth_slots AS a (slot_id, provider, mode, version, key_id, nonce, "
        "ciphertext, updated_at_ms) VALUES ($1, $2, $3, $4::bigint, $5, decode($6, 'hex'), "
        "decode($7, 'hex'), $8::bigint) ON CONFLICT (slot_id) DO UPDATE SET "
        "provider = EXCLUDED.provider, mode = EXCLUDED.mode, version = EXCLUDED.version, "
        "key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, "
        "updated_at_ms = EXCLUDED.updated_at_ms RETURNING auth_slot_status(a)",
        8,
        (const char *const[]){w->slot_id, w->provider, w->mode, ver, w->key_id, nonce_hex, ct_hex,
                              now});
    free(ct_hex);
    if (rc != STORE_OK)
        return rc;
    /* Overwriting a slot is the rotation path: its leases end now. */
    return revoke_and_audit(s, w->slot_id, "set", version, w->provider, w->recorded_by, NULL);
}

enum store_rc
store_slot_put(struct store *s, const struct store_slot_write *w, json_t **status)
{
    struct put_ctx x = {w, status};
    *status = NULL;
    enum store_rc rc = store_tx(s, put_tx, &x);
    if (rc != STORE_OK) {
        json_decref(*status);
        *status = NULL;
    }
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

struct delete_ctx {
    const char *slot_id, *recorded_by;
};

static enum store_rc
delete_tx(struct store *s, void *arg)
{
    struct delete_ctx *x = arg;
    char *provider = NULL;
    enum store_rc rc =
        db_text(s, &provider, "DELETE FROM auth_slots WHERE slot_id = $1 RETURNING provider", 1,
                (const char *const[]){x->slot_id});
    if (rc == STORE_OK && provider == NULL)
        rc = STORE_SECRET_NOT_FOUND;
    if (rc == STORE_OK)
        rc = revoke_and_audit(s, x->slot_id, "delete", 0, provider, x->recorded_by, NULL);
    free(provider);
    return rc;
}

enum store_rc
store_slot_delete(struct store *s, const char *slot_id, const char *recorded_by)
{
    struct delete_ctx x = {slot_id, recorded_by};
    return store_tx(s, delete_tx, &x);
}

struct revoke_ctx {
    const char *slot_id, *recorded_by;
    int revoked;
};

static enum store_rc
revoke_tx(struct store *s, void *arg)
{
    struct revoke_ctx *x = arg;
    json_t *status = NULL;
    enum store_rc rc = store_slot_status(s, x->slot_id, &status);
    json_decref(status);
    if (rc == STORE_OK)
        rc = revoke_and_audit(s, x->slot_id, "revoke_leases", 0, NULL, x->recorded_by, &x->revoked);
    return rc;
}

enum store_rc
store_slot_revoke_leases(struct store *s, const char *slot_id, const char *recorded_by,
                         int *revoked)
{
    struct revoke_ctx x = {slot_id, recorded_by, 0};
    enum store_rc rc = store_tx(s, revoke_tx, &x);
    *revoked = x.revoked;
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
