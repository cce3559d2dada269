/*
 * The one event-append function (ARCHITECTURE.md, "Event ids") and the tail
 * reader. The rule itself lives in the database function kheish_append_events
 * (sql/001_foundation.sql) so that it runs in a single round trip.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"

enum store_rc
store_events_append(struct store *s, json_t *stream, json_t *run_events, int64_t *newest)
{
    enum store_rc rc;
    *newest = 0;
    if (!s->in_tx || s->appended)
        return STORE_ERROR; /* must be the last statement of a transaction, once */
    char *p_stream = db_json_param(stream);
    char *p_run = db_json_param(run_events);
    const char *params[] = {p_stream, p_run};
    PGresult *r = NULL;
    if (p_stream && p_run)
        r = db_exec(s, &rc, "SELECT kheish_append_events($1::jsonb, $2::jsonb)", 2, params);
    else
        rc = STORE_ERROR;
    if (r) {
        if (!PQgetisnull(r, 0, 0))
            *newest = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        s->appended = 1;
        PQclear(r);
    }
    free(p_stream);
    free(p_run);
    return rc;
}

enum store_rc
store_events_after(struct store *s, int64_t cursor, int limit, json_t **items)
{
    char c[24], l[16];
    snprintf(c, sizeof c, "%" PRId64, cursor);
    snprintf(l, sizeof l, "%d", limit);
    const char *params[] = {c, l};
    return db_json_rows(s, items,
                        "SELECT jsonb_build_object('id', id::text, 'name', name, "
                        "'session_id', session_id, 'run_id', run_id, 'data', data) "
                        "FROM events WHERE id > $1::bigint ORDER BY id LIMIT $2::int",
                        2, params);
}

void
db_events_init(struct db_events *e)
{
    e->stream = json_array();
    e->run = json_array();
}

void
db_events_free(struct db_events *e)
{
    json_decref(e->stream);
    json_decref(e->run);
    e->stream = e->run = NULL;
}

void
db_events_stream(struct db_events *e, const char *name, const char *session_id, const char *run_id,
                 json_t *data)
{
    json_object_set_new(data, "type", json_string(name));
    json_array_append_new(e->stream, json_pack("{s:s, s:s?, s:s?, s:o}", "name", name, "session_id",
                                               session_id, "run_id", run_id, "data", data));
}

void
db_events_run(struct db_events *e, const json_t *view, json_t *event)
{
    json_array_append_new(e->run, json_pack("{s:O, s:O, s:O, s:o}", "run_id",
                                            json_object_get(view, "run_id"), "session_id",
                                            json_object_get(view, "session_id"), "agent_id",
                                            json_object_get(view, "agent_id"), "event", event));
}

enum store_rc
db_events_session_state(struct store *s, struct db_events *e, const char *session_id)
{
    json_t *state;
    const char *params[] = {session_id};
    enum store_rc rc =
        db_json(s, &state,
                "SELECT jsonb_build_object('session_id', session_id, 'agent_id', agent_id, "
                "'status', session_status(session_id), 'pending_approvals', 0, "
                "'pending_questions', 0) FROM sessions WHERE session_id = $1",
                1, params);
    if (rc != STORE_OK)
        return rc;
    if (state == NULL)
        return STORE_SESSION_NOT_FOUND;
    db_events_stream(e, "session_state_changed", session_id, NULL, state);
    return STORE_OK;
}

enum store_rc
db_events_commit(struct store *s, struct db_events *e)
{
    int64_t newest;
    enum store_rc rc = store_events_append(s, e->stream, e->run, &newest);
    db_events_free(e);
    return rc;
}
