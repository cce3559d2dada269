/*
 * The runner's side of runs (sql/006): claim the oldest runnable run with a
 * lease, renew it, stream trace events, commit the outcome, and recover the
 * runs of runners that died. Every state change goes through the run state
 * machine (db_run_set_status), so its events and the one-active-run rule
 * hold here as for the API.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HISTORY_RUNS 50 /* earlier completed runs a conversation is built from */

/* A queued run at the head of its session with nothing active before it. */
static const char *const CLAIM_SQL =
    "SELECT q.run_id, q.session_id, q.agent_id, q.kind, q.run_no FROM runs q "
    "WHERE q.status = 'queued' AND NOT EXISTS (SELECT 1 FROM runs o "
    "WHERE o.session_id = q.session_id AND o.run_no < q.run_no AND o.status IN "
    "('queued', 'running', 'waiting_for_approval', 'waiting_for_user_question')) "
    "ORDER BY q.run_no LIMIT 1 FOR UPDATE OF q SKIP LOCKED";

struct claim_ctx {
    const char *owner;
    int64_t lease_ms;
    struct store_work *w;
    int64_t run_no;
    int found;
};

static enum store_rc
claim_tx(struct store *s, void *arg)
{
    struct claim_ctx *x = arg;
    enum store_rc rc;
    x->found = 0;
    PGresult *r = db_exec(s, &rc, CLAIM_SQL, 0, NULL);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_OK;
    }
    struct store_work *w = x->w;
    snprintf(w->run_id, sizeof w->run_id, "%s", PQgetvalue(r, 0, 0));
    snprintf(w->session_id, sizeof w->session_id, "%s", PQgetvalue(r, 0, 1));
    snprintf(w->agent_id, sizeof w->agent_id, "%s", PQgetvalue(r, 0, 2));
    snprintf(w->kind, sizeof w->kind, "%s", PQgetvalue(r, 0, 3));
    x->run_no = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    PQclear(r);
    struct db_events ev;
    db_events_init(&ev);
    rc = db_run_set_status(s, w->run_id, "running", NULL, &ev, NULL);
    char expires[24];
    snprintf(expires, sizeof expires, "%" PRId64, db_now_ms() + x->lease_ms);
    if (rc == STORE_OK) {
        r = db_exec(s, &rc,
                    "UPDATE runs SET lease_owner = $2, lease_expires_at_ms = $3::bigint "
                    "WHERE run_id = $1",
                    3, (const char *const[]){w->run_id, x->owner, expires});
        PQclear(r);
    }
    if (rc == STORE_OK)
        rc = db_events_append(s, &ev);
    db_events_free(&ev);
    x->found = rc == STORE_OK;
    return rc;
}

/* The run's request and the conversation of its session so far. */
static enum store_rc
load_work(struct store *s, struct store_work *w, int64_t run_no)
{
    char no[24], lim[16];
    snprintf(no, sizeof no, "%" PRId64, run_no);
    snprintf(lim, sizeof lim, "%d", HISTORY_RUNS);
    enum store_rc rc = db_json(s, &w->payload, "SELECT payload FROM runs WHERE run_id = $1", 1,
                               (const char *const[]){w->run_id});
    if (rc != STORE_OK)
        return rc;
    /* One pass over the session's last completed runs: their input, then
     * their outputs, in run order. */
    return db_json(
        s, &w->history,
        "WITH r AS (SELECT run_no, payload->>'content' AS input, outputs FROM runs "
        "WHERE session_id = $1 AND status = 'completed' AND run_no < $2::bigint "
        "ORDER BY run_no DESC LIMIT $3::int) "
        "SELECT coalesce(jsonb_agg(m ORDER BY n, k), '[]') FROM ("
        "SELECT run_no AS n, 0 AS k, jsonb_build_object('role', 'user', 'text', input) AS m "
        "FROM r WHERE input <> '' UNION ALL SELECT run_no, 1, jsonb_build_object('role', "
        "'assistant', 'text', o->>'content') FROM r, jsonb_array_elements(r.outputs) o "
        "WHERE o->>'content' <> '') t",
        3, (const char *const[]){w->session_id, no, lim});
}

enum store_rc
store_work_claim(struct store *s, const char *owner, int64_t lease_ms, struct store_work *w,
                 int *found)
{
    struct claim_ctx x = {owner, lease_ms, w, 0, 0};
    memset(w, 0, sizeof *w);
    enum store_rc rc = store_tx(s, claim_tx, &x);
    *found = rc == STORE_OK && x.found;
    if (*found)
        rc = load_work(s, w, x.run_no);
    return rc;
}

enum store_rc
store_work_renew(struct store *s, const struct store_work *w, const char *owner, int64_t lease_ms)
{
    char expires[24];
    enum store_rc rc;
    snprintf(expires, sizeof expires, "%" PRId64, db_now_ms() + lease_ms);
    PGresult *r = db_exec(s, &rc,
                          "UPDATE runs SET lease_expires_at_ms = $3::bigint WHERE run_id = $1 "
                          "AND lease_owner = $2 AND status = 'running'",
                          3, (const char *const[]){w->run_id, owner, expires});
    if (r == NULL)
        return rc;
    rc = atoi(PQcmdTuples(r)) == 1 ? STORE_OK : STORE_RUN_STATE_CONFLICT;
    PQclear(r);
    return rc;
}

struct trace_ctx {
    const struct store_work *w;
    json_t *traces;
};

static enum store_rc
trace_tx(struct store *s, void *arg)
{
    struct trace_ctx *x = arg;
    struct db_events ev;
    size_t i;
    json_t *t;
    db_events_init(&ev);
    json_array_foreach(x->traces, i, t) db_events_stream(
        &ev, "trace", x->w->session_id, x->w->run_id, json_pack("{s:O}", "trace", t));
    return db_events_append(s, &ev);
}

enum store_rc
store_work_trace(struct store *s, const struct store_work *w, json_t *traces)
{
    struct trace_ctx x = {w, traces};
    return json_array_size(traces) ? store_tx(s, trace_tx, &x) : STORE_OK;
}

/* The run's one output (a DaemonOutputRecord) and its `output` event. */
static enum store_rc
set_output(struct store *s, const struct store_work *w, const char *text, struct db_events *ev)
{
    enum store_rc rc = STORE_ERROR;
    json_t *output =
        json_pack("{s:s, s:s, s:s, s:n, s:s, s:[], s:[], s:s}", "session_id", w->session_id,
                  "run_id", w->run_id, "plugin", "api", "address", "content", text, "parts",
                  "artifacts", "source_kind", "assistant_text");
    json_t *outputs = output ? json_pack("[O]", output) : NULL;
    char *param = outputs ? db_json_param(outputs) : NULL;
    PGresult *r = param ? db_exec(s, &rc, "UPDATE runs SET outputs = $2::jsonb WHERE run_id = $1",
                                  2, (const char *const[]){w->run_id, param})
                        : NULL;
    PQclear(r);
    free(param);
    json_decref(outputs);
    if (r)
        db_events_stream(ev, "output", w->session_id, w->run_id,
                         json_pack("{s:O}", "output", output));
    json_decref(output);
    return r ? STORE_OK : rc;
}

struct finish_ctx {
    const struct store_work *w;
    const char *owner, *status, *text, *error;
};

static enum store_rc
finish_tx(struct store *s, void *arg)
{
    struct finish_ctx *x = arg;
    const struct store_work *w = x->w;
    enum store_rc rc;
    /* Only the lease holder of a running run may end it: a cancel, an
     * interrupt or a recovery got there first otherwise. */
    PGresult *r = db_exec(s, &rc,
                          "SELECT 1 FROM runs WHERE run_id = $1 AND status = 'running' AND "
                          "lease_owner = $2 FOR UPDATE",
                          2, (const char *const[]){w->run_id, x->owner});
    if (r == NULL)
        return rc;
    int held = PQntuples(r) == 1;
    PQclear(r);
    if (!held)
        return STORE_RUN_STATE_CONFLICT;
    struct db_events ev;
    db_events_init(&ev);
    rc = x->text ? set_output(s, w, x->text, &ev) : STORE_OK;
    if (rc != STORE_OK) {
        db_events_free(&ev);
        return rc;
    }
    rc = db_run_set_status(s, w->run_id, x->status, x->error, &ev, NULL);
    if (rc == STORE_OK)
        rc = db_events_append(s, &ev);
    db_events_free(&ev);
    return rc;
}

enum store_rc
store_work_finish(struct store *s, const struct store_work *w, const char *owner,
                  const char *status, const char *text, const char *error)
{
    struct finish_ctx x = {w, owner, status, text, error};
    return store_tx(s, finish_tx, &x);
}

struct recover_ctx {
    int requeued, interrupted;
};

/* Contract §3's restart semantics for runs whose runner is gone: replayable
 * daemon-owned work goes back to the queue, user input is interrupted. */
static enum store_rc
recover_tx(struct store *s, void *arg)
{
    struct recover_ctx *x = arg;
    char now[24];
    enum store_rc rc;
    snprintf(now, sizeof now, "%" PRId64, db_now_ms());
    x->requeued = x->interrupted = 0;
    PGresult *r = db_exec(s, &rc,
                          "SELECT run_id, kind, coalesce(lease_owner, 'no runner') FROM runs "
                          "WHERE status = 'running' AND coalesce(lease_expires_at_ms, 0) < "
                          "$1::bigint ORDER BY run_no LIMIT 100 FOR UPDATE SKIP LOCKED",
                          1, (const char *const[]){now});
    if (r == NULL)
        return rc;
    struct db_events ev;
    db_events_init(&ev);
    for (int i = 0; i < PQntuples(r) && rc == STORE_OK; i++) {
        int input = !strcmp(PQgetvalue(r, i, 1), "input");
        char reason[320];
        snprintf(reason, sizeof reason,
                 "the runner executing it stopped (%s's lease expired); %s by restart recovery",
                 PQgetvalue(r, i, 2), input ? "interrupted" : "requeued");
        rc = db_run_set_status(s, PQgetvalue(r, i, 0), input ? "interrupted" : "queued",
                               input ? reason : NULL, &ev, NULL);
        x->interrupted += input;
        x->requeued += !input;
    }
    PQclear(r);
    if (rc == STORE_OK && (x->requeued || x->interrupted))
        rc = db_events_append(s, &ev);
    db_events_free(&ev);
    return rc;
}

enum store_rc
store_work_recover(struct store *s, int *requeued, int *interrupted)
{
    struct recover_ctx x = {0, 0};
    enum store_rc rc = store_tx(s, recover_tx, &x);
    *requeued = x.requeued;
    *interrupted = x.interrupted;
    return rc;
}

/* The maintenance lock: session-level, so it is held while the runner's
 * connection lives; /v1/status names its holder (store_maintenance_holder). */
#define MAINTENANCE_CLASS "1801545065" /* the lock's two int4 keys, as pg_locks shows them */
#define MAINTENANCE_OBJ   "1"
#define MAINTENANCE_HELD                                                                           \
    "l.locktype = 'advisory' AND l.classid = " MAINTENANCE_CLASS " AND l.objid = " MAINTENANCE_OBJ \
    " AND l.granted"

enum store_rc
store_maintenance_lock(struct store *s, int *held)
{
    char *v = NULL;
    enum store_rc rc = db_text(
        s, &v,
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks l WHERE " MAINTENANCE_HELD
        " AND l.pid = pg_backend_pid()) THEN true ELSE pg_try_advisory_lock(" MAINTENANCE_CLASS
        ", " MAINTENANCE_OBJ ") END",
        0, NULL);
    *held = rc == STORE_OK && v && !strcmp(v, "t");
    free(v);
    return rc;
}

enum store_rc
store_maintenance_holder(struct store *s, char **holder)
{
    return db_text(s, holder,
                   "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                   "WHERE " MAINTENANCE_HELD,
                   0, NULL);
}

void
store_work_free(struct store_work *w)
{
    json_decref(w->payload);
    json_decref(w->history);
    w->payload = w->history = NULL;
}
