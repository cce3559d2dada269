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

/* A status view (sql/functions/auth.sql) of the row with that id, as of now; missing when
 * there is none. */
static enum store_rc
status_of(struct store *s, const char *sql, const char *id, enum store_rc missing, json_t **out)
{
    enum store_rc rc = db_json(s, out, sql, 1, (const char *const[]){id});
    return rc == STORE_OK && *out == NULL ? missing : rc;
}

/* A write of sql/functions/auth.sql answering {result, status}, by actor. */
static enum store_rc
write_status(struct store *s, const char *sql, const char *actor, const char *id, json_t **out)
{
    return db_call_get(s, "status", out, sql, 2, (const char *const[]){id, actor});
}

enum store_rc
store_subject_status(struct store *s, const char *subject_id, json_t **out)
{
    return status_of(s,
                     "SELECT auth_subject_status(a, kheish_now_ms()) FROM auth_subjects a "
                     "WHERE subject_id = $1",
                     subject_id, STORE_SUBJECT_NOT_FOUND, out);
}

enum store_rc
store_subject_revoke(struct store *s, const char *actor, const char *subject_id, json_t **out)
{
    return write_status(s, "SELECT kheish_subject_revoke($1, $2::jsonb)", actor, subject_id, out);
}

enum store_rc
store_lease_status(struct store *s, const char *lease_id, json_t **out)
{
    return status_of(s,
                     "SELECT auth_lease_status(l, kheish_now_ms()) FROM auth_leases l "
                     "WHERE lease_id = $1",
                     lease_id, STORE_LEASE_NOT_FOUND, out);
}

enum store_rc
store_lease_revoke(struct store *s, const char *actor, const char *lease_id, json_t **out)
{
    return write_status(s, "SELECT kheish_lease_revoke($1, $2::jsonb)", actor, lease_id, out);
}

enum store_rc
store_lease_issue(struct store *s, const char *subject_id, const char *route_id,
                  const char *slot_id, int64_t ttl_ms, struct store_lease *out)
{
    unsigned char token[32], id[12], digest[32];
    char id_hex[25], digest_hex[65], ttl[24];
    randombytes_buf(token, sizeof token);
    util_b64url_encode(token, sizeof token, out->token, sizeof out->token);
    crypto_hash_sha256(digest, (unsigned char *)out->token, strlen(out->token));
    sodium_memzero(token, sizeof token);
    randombytes_buf(id, sizeof id);
    sodium_bin2hex(id_hex, sizeof id_hex, id, sizeof id);
    sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
    snprintf(out->lease_id, sizeof out->lease_id, "lease-%s", id_hex);
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    json_t *expires;
    enum store_rc rc = db_call_get(
        s, "expires_at_ms", &expires,
        "SELECT kheish_lease_issue($1, $2, $3, $4, decode($5, 'hex'), $6::bigint)", 6,
        (const char *const[]){out->lease_id, subject_id, route_id, slot_id, digest_hex, ttl});
    out->expires_at_ms = json_integer_value(expires);
    json_decref(expires);
    return rc;
}

enum store_rc
store_lease_resolve(struct store *s, const char *token, const char *route_id, char **slot_id)
{
    unsigned char digest[32];
    char digest_hex[65];
    crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(digest_hex, sizeof digest_hex, digest, sizeof digest);
    enum store_rc rc = db_text(
        s, slot_id,
        "SELECT l.slot_id FROM auth_leases l JOIN auth_subjects a USING (subject_id) "
        "WHERE l.token_digest = decode($1, 'hex') AND l.audience->>'route_id' = $2 "
        "AND l.revoked_at_ms IS NULL AND l.expires_at_ms > kheish_now_ms() AND NOT a.revoked "
        "AND a.epoch = l.subject_epoch",
        2, (const char *const[]){digest_hex, route_id});
    return rc == STORE_OK && *slot_id == NULL ? STORE_LEASE_NOT_FOUND : rc;
}
