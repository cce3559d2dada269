/*
 * Runs: submission (with idempotency), reads, and state changes through the
 * run state machine. The machine itself is the run_transitions table and its
 * trigger (sql/functions/runs.sql), so no writer can bypass it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const RUN_VIEW_SQL = "SELECT run_view(r) FROM runs r WHERE run_id = $1";

static int
is_terminal(const char *status)
{
    return !strcmp(status, "completed") || !strcmp(status, "failed") ||
           !strcmp(status, "interrupted") || !strcmp(status, "cancelled");
}

/* The transition is kheish_run_set_status (sql/functions/runs.sql): it returns {view,
 * stream, run}; the events go to ev, the view to view_out. */
enum store_rc
db_run_set_status(struct store *s, const char *run_id, const char *to, const char *error,
                  struct db_events *ev, json_t **view_out)
{
    json_t *res;
    enum store_rc rc = db_json(s, &res, "SELECT kheish_run_set_status($1, $2, $3)", 3,
                               (const char *const[]){run_id, to, error});
    if (rc != STORE_OK)
        return rc;
    if (res == NULL)
        return STORE_RUN_NOT_FOUND;
    db_events_extend(ev, json_object_get(res, "stream"), json_object_get(res, "run"));
    if (view_out)
        *view_out = json_incref(json_object_get(res, "view"));
    json_decref(res);
    return STORE_OK;
}

enum store_rc
store_run_submit(struct store *s, const struct store_run_submit *req, json_t **view, int *replayed)
{
    json_t *res = NULL;
    const char *result = NULL;
    char *payload = db_json_param(req->payload);
    *view = NULL;
    enum store_rc rc =
        payload
            ? db_call_result(s, &res, &result,
                             "SELECT kheish_run_submit($1, $2::jsonb, $3, $4, $5)", 5,
                             (const char *const[]){req->session_id, payload, req->idempotency_key,
                                                   req->fingerprint, req->require_idle ? "t" : "f"})
            : STORE_ERROR;
    free(payload);
    *replayed = rc == STORE_OK && !strcmp(result, "replayed");
    if (rc == STORE_OK)
        *view = json_incref(json_object_get(res, "view"));
    json_decref(res);
    return rc;
}

enum store_rc
store_run_get(struct store *s, const char *id, char **view)
{
    enum store_rc rc = db_text(s, view, RUN_VIEW_SQL, 1, (const char *const[]){id});
    return rc == STORE_OK && *view == NULL ? STORE_RUN_NOT_FOUND : rc;
}

enum store_rc
store_run_ended(struct store *s, const char *id, int *ended)
{
    char *status;
    enum store_rc rc = db_text(s, &status, "SELECT status FROM runs WHERE run_id = $1", 1,
                               (const char *const[]){id});
    if (rc == STORE_OK && status == NULL)
        rc = STORE_RUN_NOT_FOUND;
    *ended = rc == STORE_OK && is_terminal(status);
    free(status);
    return rc;
}

enum store_rc
store_run_list(struct store *s, const struct store_run_filter *f, const struct store_page *page,
               struct store_page_result *out)
{
    char ms[24] = "", lim[16];
    const char *id = NULL;
    if (page->cursor && db_cursor_split(page->cursor, ms, sizeof ms, &id) != 0)
        return STORE_ERROR;
    snprintf(lim, sizeof lim, "%d", page->limit + 1);
    const char *active = f->active_only ? "t" : "f";
    const char *params[] = {f->session_id, f->status, active, id ? ms : NULL, id, lim};
#define RUN_FILTER                                                                                 \
    "($1::text IS NULL OR session_id = $1) AND ($2::text IS NULL OR status = $2) AND "             \
    "(NOT $3::bool OR status IN ('queued', 'running', 'waiting_for_approval', "                    \
    "'waiting_for_user_question'))"
    static const char *const sql[2] = {
        "SELECT run_view(r), submitted_at_ms, run_id FROM runs r WHERE " RUN_FILTER
        " AND ($4::bigint IS NULL OR (submitted_at_ms, run_id) > ($4::bigint, $5::text)) "
        "ORDER BY submitted_at_ms, run_id LIMIT $6::int",
        "SELECT run_view(r), submitted_at_ms, run_id FROM runs r WHERE " RUN_FILTER
        " AND ($4::bigint IS NULL OR (submitted_at_ms, run_id) < ($4::bigint, $5::text)) "
        "ORDER BY submitted_at_ms DESC, run_id DESC LIMIT $6::int",
    };
    enum store_rc rc = db_page_fetch(s, sql[page->descending != 0], 6, params, page->limit, out);
    if (rc != STORE_OK)
        return rc;
    json_t *total = NULL;
    rc = db_json(s, &total, "SELECT count(*) FROM runs WHERE " RUN_FILTER, 3, params);
#undef RUN_FILTER
    out->total_count = json_integer_value(total);
    json_decref(total);
    return rc;
}

enum store_rc
store_run_events(struct store *s, const char *id, int limit, json_t **out)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    enum store_rc rc =
        db_json(s, out,
                "SELECT coalesce((SELECT jsonb_agg(e ORDER BY id) FROM (SELECT id, "
                "jsonb_build_object('timestamp_ms', timestamp_ms, 'run_id', run_id, 'session_id', "
                "session_id, 'agent_id', agent_id, 'event', event) AS e FROM run_events "
                "WHERE run_id = r.run_id ORDER BY id LIMIT $2::int) t), '[]'::jsonb) "
                "FROM runs r WHERE r.run_id = $1",
                2, (const char *const[]){id, lim});
    return rc == STORE_OK && *out == NULL ? STORE_RUN_NOT_FOUND : rc;
}

struct change_ctx {
    const char *id;
    const char *to; /* NULL: cancel, which is idempotent on terminal runs */
    json_t **view;
};

static enum store_rc
change_tx(struct store *s, void *arg)
{
    struct change_ctx *c = arg;
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc, "SELECT status FROM runs WHERE run_id = $1 FOR UPDATE", 1,
                          (const char *const[]){c->id});
    if (r == NULL)
        return rc;
    int found = PQntuples(r) > 0;
    int terminal = found && is_terminal(PQgetvalue(r, 0, 0));
    int same = found && c->to && !strcmp(PQgetvalue(r, 0, 0), c->to);
    PQclear(r);
    if (!found)
        return STORE_RUN_NOT_FOUND;
    if ((c->to == NULL && terminal) || same)
        return db_json(s, c->view, RUN_VIEW_SQL, 1, (const char *const[]){c->id});
    struct db_events ev;
    db_events_init(&ev);
    rc = db_run_set_status(s, c->id, c->to ? c->to : "cancelled", NULL, &ev, c->view);
    if (rc == STORE_OK)
        rc = db_events_append(s, &ev);
    db_events_free(&ev);
    return rc;
}

enum store_rc
store_run_cancel(struct store *s, const char *id, json_t **view)
{
    struct change_ctx c = {id, NULL, view};
    *view = NULL;
    return store_tx(s, change_tx, &c);
}

enum store_rc
store_run_transition(struct store *s, const char *id, const char *to, json_t **view)
{
    struct change_ctx c = {id, to, view};
    *view = NULL;
    return store_tx(s, change_tx, &c);
}
