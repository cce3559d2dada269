/*
 * Runtime settings (sql/functions/runtime.sql): the view, the settings,
 * changes and rollbacks (each appends a revision; the newest is current),
 * and the revision history.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"

enum store_rc
store_runtime_get(struct store *s, json_t **view)
{
    enum store_rc rc = db_json(s, view, "SELECT kheish_runtime_view($1, $2, $3::jsonb)", 3,
                               (const char *const[]){s->workspace_root, s->state_root, s->routes});
    return rc == STORE_OK && *view == NULL ? STORE_ERROR : rc;
}

/* A revision parameter: NULL for -1 (none given). */
static const char *
revision_param(int64_t revision, char buf[24])
{
    if (revision < 0)
        return NULL;
    snprintf(buf, 24, "%" PRId64, revision);
    return buf;
}

enum store_rc
store_runtime_settings(struct store *s, json_t **out)
{
    enum store_rc rc = db_json(s, out,
                               "SELECT jsonb_build_object('revision', revision, 'updated_at_ms', "
                               "updated_at_ms, 'settings', settings) FROM runtime_revisions "
                               "ORDER BY revision DESC LIMIT 1",
                               0, NULL);
    return rc == STORE_OK && *out == NULL ? STORE_ERROR : rc;
}

enum store_rc
store_runtime_change(struct store *s, const char *actor, const struct store_runtime_change *c,
                     json_t **answer)
{
    char expected[24], target[24];
    const char *result;
    char *value = c->value ? db_json_param(c->value) : NULL;
    if (c->value && value == NULL)
        return STORE_ERROR;
    enum store_rc rc = db_call_result(
        s, answer, &result,
        "SELECT kheish_runtime_change($1, $2::jsonb, $3::bigint, $4::bigint, $5, $6, $7::jsonb, "
        "$8::jsonb)",
        8,
        (const char *const[]){c->setting, value, revision_param(c->expected_revision, expected),
                              revision_param(c->target_revision, target), s->workspace_root,
                              s->state_root, s->routes, actor});
    free(value);
    if (rc != STORE_OK && *answer) {
        json_decref(*answer);
        *answer = NULL;
    }
    return rc;
}

enum store_rc
store_runtime_revisions(struct store *s, int limit, json_t **out)
{
    char lim[16];
    json_t *items;
    snprintf(lim, sizeof lim, "%d", limit);
    enum store_rc rc = db_json_rows(
        s, &items,
        "SELECT settings || jsonb_build_object('revision', revision, 'updated_at_ms', "
        "updated_at_ms, 'source', source, 'setting', setting, 'rollback_of_revision', "
        "rollback_of_revision) FROM runtime_revisions ORDER BY revision DESC LIMIT $1::int",
        1, (const char *const[]){lim});
    if (rc == STORE_OK)
        *out = json_pack("{s:o}", "revisions", items);
    return rc;
}
