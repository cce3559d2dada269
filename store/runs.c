/*
 * Runs: submission (with idempotency), reads, and state changes through the
 * run state machine. The machine itself is the run_transitions table and its
 * trigger (sql/functions/runs.sql), so no writer can bypass it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "names.h"
#include "util.h"

static const char *const RUN_VIEW_SQL = "SELECT view FROM run_views WHERE run_id = $1";

enum store_rc
store_run_submit(struct store *s, const char *actor, const struct store_run_submit *req,
                 json_t **view, int *replayed)
{
    json_t *res = NULL;
    const char *result = NULL;
    char *payload = db_json_param(req->payload);
    *view = NULL;
    enum store_rc rc =
        payload ? db_call_result(
                      s, &res, &result,
                      "SELECT kheish_run_submit($1, $2::jsonb, $3, $4, $5, $6::jsonb)", 6,
                      (const char *const[]){req->session_id, payload, req->idempotency_key,
                                            req->fingerprint, req->require_idle ? "t" : "f", actor})
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
    *ended = rc == STORE_OK && util_in_list(status, names_terminal_statuses);
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
        "SELECT view, submitted_at_ms, run_id FROM run_views WHERE " RUN_FILTER
        " AND ($4::bigint IS NULL OR (submitted_at_ms, run_id) > ($4::bigint, $5::text)) "
        "ORDER BY submitted_at_ms, run_id LIMIT $6::int",
        "SELECT view, submitted_at_ms, run_id FROM run_views WHERE " RUN_FILTER
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

/* Cancel (to NULL) or another transition: kheish_run_change (sql/functions/runs.sql). */
static enum store_rc
change(struct store *s, const char *actor, const char *id, const char *to, json_t **view)
{
    return db_call_get(s, "view", view, "SELECT kheish_run_change($1, $2, $3::jsonb)", 3,
                       (const char *const[]){id, to, actor});
}

enum store_rc
store_run_cancel(struct store *s, const char *actor, const char *id, json_t **view)
{
    return change(s, actor, id, NULL, view);
}

enum store_rc
store_run_transition(struct store *s, const char *actor, const char *id, const char *to,
                     json_t **view)
{
    return change(s, actor, id, to, view);
}
