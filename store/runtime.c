/*
 * Runtime settings: each change appends a revision; the newest is current.
 * Writers serialise on an advisory lock so expected_revision checks are exact.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RUNTIME_LOCK          "7739075311862628354"
#define RUNTIME_HISTORY_LIMIT 100
#define STR(x)                #x
#define XSTR(x)               STR(x)

static const char *const RUNTIME_VIEW_SQL =
    "SELECT jsonb_build_object("
    "'workspace_root', nullif($1, ''), 'state_root', nullif($2, ''), 'default_route', NULL, "
    "'route_id', st->'route_id', 'provider', st->'provider', 'model', st->'model', "
    "'routes', '[]'::jsonb, 'route_diagnostics', '[]'::jsonb, "
    "'permission_mode', st->'permission_mode', 'system_prompt', st->'system_prompt', "
    "'hooks', st->'hooks', 'debug_level', st->'debug_level', "
    "'debug_capture', jsonb_build_object('ttl_ms', 604800000, 'encryption', 'none', "
    "'key_id', NULL, 'redaction_token_source', 'none'), "
    "'mcp', jsonb_build_object('servers', '[]'::jsonb), 'skills', '[]'::jsonb, "
    "'learning_policy', st->'learning_policy', 'run_memory_policy', st->'run_memory_policy', "
    "'tool_runtime_limits', st->'tool_runtime_limits', "
    "'subagent_policy', jsonb_build_object('max_child_depth', 4, "
    "'max_live_children_per_parent', 6, 'max_live_descendants_per_root', 24, "
    "'max_spawns_per_run', 6), "
    "'scheduler_policy', jsonb_build_object('enabled', false), "
    "'config', jsonb_build_object('revision', revision, 'updated_at_ms', updated_at_ms, "
    "'persisted', true, 'history_len', (SELECT count(*) FROM runtime_revisions), "
    "'history_limit', " XSTR(RUNTIME_HISTORY_LIMIT) ", 'store_path', NULL)) "
                                                    "FROM (SELECT revision, updated_at_ms, "
                                                    "settings AS st FROM runtime_revisions "
                                                    "ORDER BY revision DESC LIMIT 1) cur";

enum store_rc
store_runtime_get(struct store *s, json_t **view)
{
    enum store_rc rc = db_json(s, view, RUNTIME_VIEW_SQL, 2,
                               (const char *const[]){s->workspace_root, s->state_root});
    return rc == STORE_OK && *view == NULL ? STORE_ERROR : rc;
}

struct change_ctx {
    const struct store_runtime_change *c;
    json_t **view;
};

static enum store_rc
change_tx(struct store *s, void *arg)
{
    struct change_ctx *x = arg;
    const struct store_runtime_change *c = x->c;
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc,
                          "SELECT pg_advisory_xact_lock(" RUNTIME_LOCK "), revision "
                          "FROM runtime_revisions ORDER BY revision DESC LIMIT 1",
                          0, NULL);
    if (r == NULL)
        return rc;
    int64_t current = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if (c->expected_revision >= 0 && c->expected_revision != current)
        return STORE_REVISION_CONFLICT;
    int rollback = !strcmp(c->setting, "rollback");
    char cur[24], target[24], now[24];
    snprintf(cur, sizeof cur, "%" PRId64, current);
    snprintf(target, sizeof target, "%" PRId64,
             c->target_revision >= 0 ? c->target_revision : current - 1);
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    /* The new settings: the target's for a rollback, else current plus one key. */
    r = db_exec(s, &rc,
                "INSERT INTO runtime_revisions (revision, updated_at_ms, source, setting, "
                "rollback_of_revision, settings) "
                "SELECT $1::bigint + 1, $2::bigint, 'runtime_api', $3, "
                "CASE WHEN $3 = 'rollback' THEN t.revision END, "
                "CASE WHEN $3 = 'rollback' THEN t.settings "
                "ELSE c.settings || jsonb_build_object($3, $4::text) END "
                "FROM runtime_revisions c LEFT JOIN runtime_revisions t "
                "ON t.revision = $5::bigint AND $3 = 'rollback' "
                "WHERE c.revision = $1::bigint AND ($3 <> 'rollback' OR t.revision IS NOT NULL)",
                5, (const char *const[]){cur, now, c->setting, c->value, target});
    if (r == NULL)
        return rc;
    int inserted = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!inserted)
        return rollback ? STORE_REVISION_NOT_FOUND : STORE_ERROR;
    rc = store_runtime_get(s, x->view);
    if (rc != STORE_OK)
        return rc;
    struct db_events ev;
    db_events_init(&ev);
    db_events_stream(&ev, "runtime_updated", NULL, NULL, json_pack("{s:O}", "runtime", *x->view));
    rc = db_events_append(s, &ev);
    db_events_free(&ev);
    return rc;
}

enum store_rc
store_runtime_change(struct store *s, const struct store_runtime_change *c, json_t **view)
{
    struct change_ctx x = {c, view};
    *view = NULL;
    return store_tx(s, change_tx, &x);
}

enum store_rc
store_runtime_revisions(struct store *s, int limit, json_t **out)
{
    char lim[16];
    json_t *items;
    snprintf(lim, sizeof lim, "%d", limit > RUNTIME_HISTORY_LIMIT ? RUNTIME_HISTORY_LIMIT : limit);
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
