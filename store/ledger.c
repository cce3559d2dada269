/*
 * The signed external-action ledger (contract §9): the reads of the API, the
 * runner and `kheish audit verify`, through the views an auditor reads too
 * (audit.external_actions, audit.external_action_buckets), so that verify
 * works with the auditor's role.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

enum store_rc
store_ledger_records(struct store *s, const char *bucket, int64_t after, int limit,
                     char **json_text)
{
    char a[24], n[16];
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(n, sizeof n, "%d", limit);
    enum store_rc rc =
        db_text(s, json_text,
                "SELECT '[' || coalesce(string_agg(record::text, ',' ORDER BY seq), '') || ']'"
                "  FROM (SELECT seq, record FROM audit.external_actions"
                "         WHERE bucket = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3::int) e"
                " HAVING EXISTS (SELECT 1 FROM audit.external_actions WHERE bucket = $1)",
                3, (const char *const[]){bucket, a, n});
    return rc == STORE_OK && *json_text == NULL ? STORE_RUN_NOT_FOUND : rc;
}

/* A bucket's checkpoint, from a row of audit.external_action_buckets. */
#define CHECKPOINT_JSON                                                                            \
    "CASE WHEN checkpoint_count IS NOT NULL THEN jsonb_build_object('record_count',"               \
    " checkpoint_count, 'last_record_hash', last_record_hash, 'signature_alg', signature_alg,"     \
    " 'key_id', key_id, 'signature', signature) END"

enum store_rc
store_ledger_checkpoint(struct store *s, const char *bucket, json_t **out)
{
    return db_json(
        s, out, "SELECT " CHECKPOINT_JSON " FROM audit.external_action_buckets WHERE bucket = $1",
        1, (const char *const[]){bucket});
}

enum store_rc
store_ledger_buckets(struct store *s, const char *after, int limit, json_t **out)
{
    char n[16];
    snprintf(n, sizeof n, "%d", limit);
    return db_json_rows(
        s, out,
        "SELECT jsonb_build_object('bucket', bucket, 'checkpoint', " CHECKPOINT_JSON ")"
        "  FROM audit.external_action_buckets WHERE bucket > $1 ORDER BY bucket LIMIT $2::int",
        2, (const char *const[]){after, n});
}

enum store_rc
store_ledger_key_ids(struct store *s, json_t **out)
{
    return db_json(s, out,
                   "SELECT coalesce(jsonb_agg(DISTINCT key_id) FILTER (WHERE key_id IS NOT NULL),"
                   " '[]') FROM audit.external_action_buckets",
                   0, NULL);
}
