/*
 * Sessions: create-or-reuse, reads, interrupt and end (each change one
 * function of sql/functions/sessions.sql).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum store_rc
store_session_create(struct store *s, const char *actor, const struct store_session_create *req,
                     json_t **view, int *created)
{
    char generated[64];
    const char *id = req->session_id, *result = NULL;
    *view = NULL;
    *created = 0;
    if (id == NULL) {
        unsigned char rnd[8];
        char hex[17];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        snprintf(generated, sizeof generated, "session-%s", hex);
        id = generated;
    }
    char *cap = req->capability_scope ? db_json_param(req->capability_scope) : NULL;
    char *cred = req->credential_scope ? db_json_param(req->credential_scope) : NULL;
    json_t *res;
    enum store_rc rc = db_call_result(
        s, &res, &result,
        "SELECT kheish_session_create($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)", 6,
        (const char *const[]){id, req->thread_id, req->persona_id, cap, cred, actor});
    free(cap);
    free(cred);
    if (rc == STORE_OK) {
        *created = !strcmp(result, "created");
        *view = json_incref(json_object_get(res, "view"));
    }
    json_decref(res);
    return rc;
}

enum store_rc
store_session_get(struct store *s, const char *id, json_t **view)
{
    const char *params[] = {id};
    enum store_rc rc =
        db_json(s, view, "SELECT session_view(s) FROM sessions s WHERE session_id = $1", 1, params);
    return rc == STORE_OK && *view == NULL ? STORE_SESSION_NOT_FOUND : rc;
}

enum store_rc
store_session_list(struct store *s, const char *persona_id, const struct store_page *page,
                   struct store_page_result *out)
{
    char ms[24] = "", lim[16];
    const char *id = NULL;
    if (page->cursor && db_cursor_split(page->cursor, ms, sizeof ms, &id) != 0)
        return STORE_ERROR;
    snprintf(lim, sizeof lim, "%d", page->limit + 1);
    const char *params[] = {persona_id, id ? ms : NULL, id, lim};
    static const char *const sql[2] = {
        "SELECT session_summary(s), created_at_ms, session_id FROM sessions s "
        "WHERE ($1::text IS NULL OR persona_id = $1) AND "
        "($2::bigint IS NULL OR (created_at_ms, session_id) > ($2::bigint, $3::text)) "
        "ORDER BY created_at_ms, session_id LIMIT $4::int",
        "SELECT session_summary(s), created_at_ms, session_id FROM sessions s "
        "WHERE ($1::text IS NULL OR persona_id = $1) AND "
        "($2::bigint IS NULL OR (created_at_ms, session_id) < ($2::bigint, $3::text)) "
        "ORDER BY created_at_ms DESC, session_id DESC LIMIT $4::int",
    };
    enum store_rc rc = db_page_fetch(s, sql[page->descending != 0], 4, params, page->limit, out);
    if (rc != STORE_OK)
        return rc;
    json_t *total = NULL;
    rc = db_json(s, &total,
                 "SELECT count(*) FROM sessions WHERE $1::text IS NULL OR persona_id = $1", 1,
                 params);
    out->total_count = json_integer_value(total);
    json_decref(total);
    return rc;
}

enum store_rc
store_session_exists(struct store *s, const char *id)
{
    char *found;
    enum store_rc rc = db_text(s, &found, "SELECT session_id FROM sessions WHERE session_id = $1",
                               1, (const char *const[]){id});
    if (rc == STORE_OK && found == NULL)
        rc = STORE_SESSION_NOT_FOUND;
    free(found);
    return rc;
}

enum store_rc
store_session_events(struct store *s, const char *id, int limit, json_t **out)
{
    json_t *view, *events;
    char lim[16];
    *out = NULL;
    enum store_rc rc = store_session_get(s, id, &view);
    if (rc != STORE_OK)
        return rc;
    snprintf(lim, sizeof lim, "%d", limit);
    rc = db_json_rows(s, &events,
                      "SELECT e FROM (SELECT id, jsonb_build_object('timestamp_ms', timestamp_ms, "
                      "'run_id', run_id, 'session_id', session_id, 'agent_id', agent_id, "
                      "'event', event) AS e FROM run_events WHERE session_id = $1 "
                      "ORDER BY id DESC LIMIT $2::int) t ORDER BY id",
                      2, (const char *const[]){id, lim});
    if (rc != STORE_OK) {
        json_decref(view);
        return rc;
    }
    *out = json_pack("{s:o, s:[], s:o}", "session", view, "daemon_outputs", "run_events", events);
    return STORE_OK;
}

enum store_rc
store_session_interrupt(struct store *s, const char *actor, const char *id, json_t **out)
{
    json_t *res;
    const char *result;
    enum store_rc rc =
        db_call_result(s, &res, &result, "SELECT kheish_session_interrupt($1, $2::jsonb)", 2,
                       (const char *const[]){id, actor});
    *out = rc == STORE_OK
               ? json_pack("{s:O, s:O}", "interrupted", json_object_get(res, "interrupted"),
                           "snapshot", json_object_get(res, "snapshot"))
               : NULL;
    json_decref(res);
    return rc;
}

enum store_rc
store_session_end(struct store *s, const char *actor, const char *id, const char *reason,
                  json_t **view)
{
    return db_call_get(s, "view", view, "SELECT kheish_session_end($1, $2, $3::jsonb)", 3,
                       (const char *const[]){id, reason, actor});
}
