/*
 * The credential broker (sql/migrations/005, sql/functions/auth.sql): subjects, and the short-lived
 * leases a subject is issued for an audience (a route and its slot). A lease is an opaque token;
 * only its SHA-256 is stored. It resolves while unexpired, unrevoked and issued under its subject's
 * current epoch.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

static void
now_str(char out[24])
{
    snprintf(out, 24, "%" PRId64, db_now_ms());
}

/* A status view (sql/functions/auth.sql) of the row with that id, as of now; missing when
 * there is none. */
static enum store_rc
status_now(struct store *s, const char *sql, const char *id, enum store_rc missing, json_t **out)
{
    char now[24];
    now_str(now);
    enum store_rc rc = db_json(s, out, sql, 2, (const char *const[]){id, now});
    return rc == STORE_OK && *out == NULL ? missing : rc;
}

enum store_rc
store_subject_status(struct store *s, const char *subject_id, json_t **out)
{
    return status_now(s,
                      "SELECT auth_subject_status(a, $2::bigint) FROM auth_subjects a "
                      "WHERE subject_id = $1",
                      subject_id, STORE_SUBJECT_NOT_FOUND, out);
}

struct subject_ctx {
    const char *subject_id;
    json_t **out;
};

static enum store_rc
revoke_subject_tx(struct store *s, void *arg)
{
    struct subject_ctx *x = arg;
    char now[24];
    now_str(now);
    enum store_rc rc;
    PGresult *r = db_exec(
        s, &rc,
        "WITH subj AS (INSERT INTO auth_subjects AS a (subject_id, epoch, revoked, updated_at_ms) "
        "VALUES ($1, 2, true, $2::bigint) ON CONFLICT (subject_id) DO UPDATE SET "
        "epoch = a.epoch + 1, revoked = true, updated_at_ms = EXCLUDED.updated_at_ms "
        "RETURNING 1) UPDATE auth_leases SET revoked_at_ms = $2::bigint, "
        "revoked_reason = 'subject_revoked' WHERE subject_id = $1 AND revoked_at_ms IS NULL "
        "AND EXISTS (SELECT 1 FROM subj)",
        2, (const char *const[]){x->subject_id, now});
    PQclear(r);
    return r ? store_subject_status(s, x->subject_id, x->out) : rc;
}

enum store_rc
store_subject_revoke(struct store *s, const char *subject_id, json_t **out)
{
    struct subject_ctx x = {subject_id, out};
    *out = NULL;
    return store_tx(s, revoke_subject_tx, &x);
}

enum store_rc
store_lease_status(struct store *s, const char *lease_id, json_t **out)
{
    return status_now(s,
                      "SELECT auth_lease_status(l, $2::bigint) FROM auth_leases l "
                      "WHERE lease_id = $1",
                      lease_id, STORE_LEASE_NOT_FOUND, out);
}

enum store_rc
store_lease_revoke(struct store *s, const char *lease_id, json_t **out)
{
    char now[24];
    now_str(now);
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc,
                          "UPDATE auth_leases SET revoked_at_ms = $2::bigint, revoked_reason = "
                          "'lease_revoked' WHERE lease_id = $1 AND revoked_at_ms IS NULL",
                          2, (const char *const[]){lease_id, now});
    PQclear(r);
    return r ? store_lease_status(s, lease_id, out) : rc;
}

enum store_rc
store_lease_issue(struct store *s, const char *subject_id, const char *route_id,
                  const char *slot_id, int64_t ttl_ms, struct store_lease *out)
{
    unsigned char token[32], id[12], digest[32];
    char id_hex[25], digest_hex[65], issued[24], expires[24];
    randombytes_buf(token, sizeof token);
    util_b64url_encode(token, sizeof token, out->token, sizeof out->token);
    crypto_hash_sha256(digest, (unsigned char *)out->token, strlen(out->token));
    sodium_memzero(token, sizeof token);
    randombytes_buf(id, sizeof id);
    sodium_bin2hex(id_hex, sizeof id_hex, id, sizeof id);
    sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
    snprintf(out->lease_id, sizeof out->lease_id, "lease-%s", id_hex);
    int64_t now = db_now_ms();
    snprintf(issued, sizeof issued, "%" PRId64, now);
    snprintf(expires, sizeof expires, "%" PRId64, now + ttl_ms);
    out->expires_at_ms = now + ttl_ms;
    enum store_rc rc;
    /* A revoked subject is issued nothing: the insert finds no subject row. */
    PGresult *r = db_exec(
        s, &rc,
        "WITH subj AS (INSERT INTO auth_subjects AS a (subject_id, updated_at_ms) "
        "VALUES ($2, $6::bigint) ON CONFLICT (subject_id) DO UPDATE SET updated_at_ms = "
        "a.updated_at_ms RETURNING epoch, revoked) "
        "INSERT INTO auth_leases (lease_id, grant_id, subject_id, subject_epoch, audience, "
        "slot_id, token_digest, issued_at_ms, expires_at_ms) SELECT $1, 'grant-' || $2 || ':' || "
        "$3, $2, epoch, jsonb_build_object('type', 'route', 'route_id', $3::text, 'slot_id', "
        "$4::text), $4, "
        "decode($5, 'hex'), $6::bigint, $7::bigint FROM subj WHERE NOT revoked RETURNING 1",
        7,
        (const char *const[]){out->lease_id, subject_id, route_id, slot_id, digest_hex, issued,
                              expires});
    if (r == NULL)
        return rc;
    rc = PQntuples(r) == 1 ? STORE_OK : STORE_SUBJECT_NOT_FOUND;
    PQclear(r);
    return rc;
}

enum store_rc
store_lease_resolve(struct store *s, const char *token, const char *route_id, char **slot_id)
{
    unsigned char digest[32];
    char digest_hex[65], now[24];
    crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
    now_str(now);
    enum store_rc rc =
        db_text(s, slot_id,
                "SELECT l.slot_id FROM auth_leases l JOIN auth_subjects a USING (subject_id) "
                "WHERE l.token_digest = decode($1, 'hex') AND l.audience->>'route_id' = $2 "
                "AND l.revoked_at_ms IS NULL AND l.expires_at_ms > $3::bigint AND NOT a.revoked "
                "AND a.epoch = l.subject_epoch",
                3, (const char *const[]){digest_hex, route_id, now});
    return rc == STORE_OK && *slot_id == NULL ? STORE_LEASE_NOT_FOUND : rc;
}
