/*
 * The signed external-action ledger (contract §9): appends, through one
 * function of sql/functions/ledger.sql, and the reads of the API and of
 * `kheish audit verify`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

enum store_rc
store_ledger_append(struct store *s, const json_t *batch, json_t **answers)
{
    json_t *res = NULL;
    const char *result = NULL;
    char *param = db_json_param(batch);
    *answers = NULL;
    enum store_rc rc = param ? db_call_result(s, &res, &result, "SELECT kheish_ledger_append($1)",
                                              1, (const char *const[]){param})
                             : STORE_ERROR;
    free(param);
    if (rc == STORE_OK)
        *answers = json_incref(json_object_get(res, "records"));
    json_decref(res);
    return rc;
}

enum store_rc
store_ledger_records(struct store *s, const char *bucket, int64_t after, int limit,
                     char **json_text)
{
    char a[24], n[16];
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(n, sizeof n, "%d", limit);
    enum store_rc rc =
        db_text(s, json_text,
                "SELECT '[' || coalesce(string_agg(kheish_external_action_json(e)::text, ','"
                "                                  ORDER BY e.seq), '') || ']'"
                "  FROM (SELECT * FROM external_actions WHERE bucket = $1 AND seq > $2::bigint"
                "         ORDER BY seq LIMIT $3::int) e"
                " HAVING EXISTS (SELECT 1 FROM runs WHERE run_id = $1)"
                "     OR EXISTS (SELECT 1 FROM external_actions WHERE bucket = $1)",
                3, (const char *const[]){bucket, a, n});
    return rc == STORE_OK && *json_text == NULL ? STORE_RUN_NOT_FOUND : rc;
}

#define CHECKPOINT_JSON                                                                            \
    "jsonb_build_object('record_count', c.record_count, 'last_record_hash', c.last_record_hash,"   \
    " 'signature_alg', c.signature_alg, 'key_id', c.key_id, 'signature', c.signature)"

enum store_rc
store_ledger_checkpoint(struct store *s, const char *bucket, json_t **out)
{
    return db_json(
        s, out, "SELECT " CHECKPOINT_JSON " FROM external_action_checkpoints c WHERE bucket = $1",
        1, (const char *const[]){bucket});
}

enum store_rc
store_ledger_buckets(struct store *s, const char *after, int limit, json_t **out)
{
    char n[16];
    snprintf(n, sizeof n, "%d", limit);
    return db_json_rows(
        s, out,
        "SELECT jsonb_build_object('bucket', b.bucket, 'checkpoint',"
        "       (SELECT " CHECKPOINT_JSON
        "          FROM external_action_checkpoints c WHERE c.bucket = b.bucket))"
        "  FROM (SELECT bucket FROM external_action_checkpoints WHERE bucket > $1"
        "        UNION SELECT DISTINCT bucket FROM external_actions WHERE bucket > $1"
        "        ORDER BY 1 LIMIT $2::int) b ORDER BY b.bucket",
        2, (const char *const[]){after, n});
}

enum store_rc
store_ledger_key_ids(struct store *s, json_t **out)
{
    return db_json(s, out,
                   "SELECT coalesce(jsonb_agg(DISTINCT key_id), '[]') FROM "
                   "external_action_checkpoints",
                   0, NULL);
}
