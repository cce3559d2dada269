/*
 * Sessions: create-or-reuse, reads, interrupt and end.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SESSION_LOCK_SQL                                                                           \
    "SELECT ended_at_ms IS NOT NULL FROM sessions WHERE session_id = $1 FOR UPDATE"

struct create_ctx {
    const struct store_session_create *req;
    const char *id;
    json_t **view;
    int *created;
};

static enum store_rc
create_tx(struct store *s, void *arg)
{
    struct create_ctx *c = arg;
    const struct store_session_create *q = c->req;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    char *cap = q->capability_scope ? db_json_param(q->capability_scope) : NULL;
    char *cred = q->credential_scope ? db_json_param(q->credential_scope) : NULL;
    const char *params[] = {c->id, q->thread_id, q->persona_id, cap, cred, now};
    enum store_rc rc = db_json(
        s, c->view,
        "INSERT INTO sessions (session_id, agent_id, thread_id, persona_id, capability_scope, "
        "credential_scope, created_at_ms, updated_at_ms) "
        "VALUES ($1, 'agent-' || $1, $2, $3, $4::jsonb, $5::jsonb, $6::bigint, $6::bigint) "
        "ON CONFLICT (session_id) DO NOTHING RETURNING session_view(sessions.*)",
        6, params);
    if (rc == STORE_OK && *c->view != NULL) {
        *c->created = 1;
        struct db_events ev;
        db_events_init(&ev);
        rc = db_events_session_state(s, &ev, c->id);
        if (rc == STORE_OK)
            rc = db_events_append(s, &ev);
        db_events_free(&ev);
    } else if (rc == STORE_OK) {
        /* Reuse: the caller's persona and scopes, when given, must match. */
        json_t *row = NULL;
        rc = db_json(s, &row,
                     "SELECT jsonb_build_array(session_view(s), "
                     "($2::text IS NULL OR persona_id IS NOT DISTINCT FROM $2) AND "
                     "($3::jsonb IS NULL OR capability_scope IS NOT DISTINCT FROM $3::jsonb) AND "
                     "($4::jsonb IS NULL OR credential_scope IS NOT DISTINCT FROM $4::jsonb)) "
                     "FROM sessions s WHERE session_id = $1",
                     4, (const char *const[]){c->id, q->persona_id, cap, cred});
        if (rc == STORE_OK && row == NULL)
            rc = STORE_RETRY; /* created and removed concurrently: try again */
        else if (rc == STORE_OK && !json_is_true(json_array_get(row, 1)))
            rc = STORE_SESSION_CONFLICT;
        else if (rc == STORE_OK)
            *c->view = json_incref(json_array_get(row, 0));
        json_decref(row);
    }
    free(cap);
    free(cred);
    return rc;
}

enum store_rc
store_session_create(struct store *s, const struct store_session_create *req, json_t **view,
                     int *created)
{
    char generated[64];
    struct create_ctx c = {req, req->session_id, view, created};
    *view = NULL;
    *created = 0;
    if (c.id == NULL) {
        unsigned char rnd[8];
        char hex[17];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        snprintf(generated, sizeof generated, "session-%s", hex);
        c.id = generated;
    }
    return store_tx(s, create_tx, &c);
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

/* Moves every live run of the locked session matching `which` to `to`. */
static enum store_rc
stop_runs(struct store *s, const char *session_id, const char *which, const char *to,
          struct db_events *ev, int *count)
{
    json_t *ids;
    enum store_rc rc = db_json_rows(
        s, &ids,
        "SELECT to_jsonb(run_id) FROM runs WHERE session_id = $1 AND "
        "CASE $2 WHEN 'active' THEN status IN ('running', 'waiting_for_approval', "
        "'waiting_for_user_question') ELSE status = 'queued' END ORDER BY run_no FOR UPDATE",
        2, (const char *const[]){session_id, which});
    if (rc != STORE_OK)
        return rc;
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        rc = db_run_set_status(s, json_string_value(id), to, NULL, ev, NULL);
        if (rc != STORE_OK)
            break;
    }
    *count = (int)json_array_size(ids);
    json_decref(ids);
    return rc;
}

struct stop_ctx {
    const char *id;
    const char *reason;
    json_t **out;
};

static enum store_rc
lock_session(struct store *s, const char *id, int *ended)
{
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc, SESSION_LOCK_SQL, 1, (const char *const[]){id});
    if (r == NULL)
        return rc;
    rc = PQntuples(r) == 0 ? STORE_SESSION_NOT_FOUND : STORE_OK;
    if (rc == STORE_OK)
        *ended = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return rc;
}

static enum store_rc
interrupt_tx(struct store *s, void *arg)
{
    struct stop_ctx *c = arg;
    struct db_events ev;
    int ended, count = 0;
    json_t *view = NULL;
    enum store_rc rc = lock_session(s, c->id, &ended);
    if (rc != STORE_OK)
        return rc;
    db_events_init(&ev);
    rc = stop_runs(s, c->id, "active", "interrupted", &ev, &count);
    if (rc == STORE_OK && count > 0) {
        json_t *who = NULL;
        rc = db_json(s, &who,
                     "SELECT jsonb_build_object('session_id', session_id, 'agent_id', agent_id) "
                     "FROM sessions WHERE session_id = $1",
                     1, (const char *const[]){c->id});
        if (rc == STORE_OK)
            db_events_stream(&ev, "interrupted", c->id, NULL, who);
    }
    if (rc == STORE_OK)
        rc = store_session_get(s, c->id, &view);
    if (rc == STORE_OK && count > 0)
        rc = db_events_append(s, &ev);
    db_events_free(&ev);
    if (rc == STORE_OK)
        *c->out = json_pack("{s:b, s:O}", "interrupted", count > 0, "snapshot",
                            json_object_get(view, "snapshot"));
    json_decref(view);
    return rc;
}

enum store_rc
store_session_interrupt(struct store *s, const char *id, json_t **out)
{
    struct stop_ctx c = {id, NULL, out};
    *out = NULL;
    return store_tx(s, interrupt_tx, &c);
}

static enum store_rc
end_tx(struct store *s, void *arg)
{
    struct stop_ctx *c = arg;
    struct db_events ev;
    int ended, active = 0, queued = 0;
    enum store_rc rc = lock_session(s, c->id, &ended);
    if (rc != STORE_OK || ended)
        return rc == STORE_OK ? store_session_get(s, c->id, c->out) : rc;
    db_events_init(&ev);
    rc = stop_runs(s, c->id, "active", "interrupted", &ev, &active);
    if (rc == STORE_OK)
        rc = stop_runs(s, c->id, "queued", "cancelled", &ev, &queued);
    if (rc == STORE_OK) {
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
        PGresult *r = db_exec(s, &rc,
                              "UPDATE sessions SET ended_at_ms = $2::bigint, end_reason = $3, "
                              "updated_at_ms = $2::bigint WHERE session_id = $1",
                              3, (const char *const[]){c->id, now, c->reason});
        PQclear(r);
    }
    if (rc == STORE_OK)
        rc = db_events_session_state(s, &ev, c->id);
    if (rc == STORE_OK)
        rc = store_session_get(s, c->id, c->out);
    if (rc == STORE_OK)
        rc = db_events_append(s, &ev);
    db_events_free(&ev);
    return rc;
}

enum store_rc
store_session_end(struct store *s, const char *id, const char *reason, json_t **view)
{
    struct stop_ctx c = {id, reason, view};
    *view = NULL;
    return store_tx(s, end_tx, &c);
}
