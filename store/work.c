/*
 * The runner's side of runs (sql/functions/work.sql): commit outcomes
 * and claim the oldest runnable runs with a lease, renew the leases, stream
 * trace events, and recover the runs of runners that died. Outcomes and
 * claims go in batches, together in one statement (kheish_work). Every
 * state change goes through the run state machine (kheish_run_set_status),
 * so its events and the one-active-run rule hold here as for the API.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HISTORY_RUNS 50 /* earlier completed runs a conversation is built from */

static void
copy_field(char *dst, size_t size, const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, size, "%s", v ? v : "");
}

/* run_ids of the runs: a jsonb parameter. */
static char *
ids_param(const struct store_work *const *w, size_t n)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(w[i]->run_id));
    char *param = db_json_param(ids);
    json_decref(ids);
    return param;
}

enum store_rc
store_work_renew(struct store *s, const char *owner, int64_t lease_ms,
                 const struct store_work *const *w, size_t n, int *lost)
{
    char lease[24];
    enum store_rc rc = STORE_ERROR;
    snprintf(lease, sizeof lease, "%" PRId64, lease_ms);
    char *ids = ids_param(w, n);
    json_t *renewed = NULL;
    if (ids)
        rc =
            db_json(s, &renewed,
                    "WITH r AS (UPDATE runs SET lease_expires_at_ms = kheish_now_ms() + $3::bigint "
                    "WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb)) "
                    "AND lease_owner = $2 AND status = 'running' RETURNING run_id) "
                    "SELECT coalesce(jsonb_object_agg(run_id, true), '{}') FROM r",
                    3, (const char *const[]){ids, owner, lease});
    free(ids);
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        lost[i] = json_object_get(renewed, w[i]->run_id) == NULL;
    json_decref(renewed);
    return rc;
}

/* An outcome's trace text as the array of trace objects it streams as. */
static json_t *
traces_of(const struct store_report *o)
{
    return o->trace_len ? json_pack("[{s:s, s:s%}]", "kind", "assistant_text_delta", "text",
                                    o->trace, o->trace_len)
                        : json_array();
}

enum store_rc
store_work_trace(struct store *s, const struct store_report *o, size_t n)
{
    if (n == 0)
        return STORE_OK;
    json_t *batch = json_array(), *res = NULL;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(batch,
                              json_pack("{s:s, s:s, s:o}", "session_id", o[i].w->session_id,
                                        "run_id", o[i].w->run_id, "traces", traces_of(&o[i])));
    char *param = db_json_param(batch);
    json_decref(batch);
    enum store_rc rc = param ? db_call(s, &res, "SELECT kheish_work_traces($1::jsonb)", 1,
                                       (const char *const[]){param})
                             : STORE_ERROR;
    free(param);
    json_decref(res);
    return rc;
}

/* 1 when run_id is in the array ids. */
static int
run_listed(const json_t *ids, const char *run_id)
{
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) if (!strcmp(json_string_value(id), run_id)) return 1;
    return 0;
}

/* The claimed runs of a turn's result into w[0..*n). */
static void
claimed_runs(json_t *claimed, struct store_work *w, size_t max, size_t *n)
{
    size_t i;
    json_t *c;
    json_array_foreach(claimed, i, c)
    {
        if (i == max)
            break;
        struct store_work *x = &w[i];
        memset(x, 0, sizeof *x);
        copy_field(x->run_id, sizeof x->run_id, c, "run_id");
        copy_field(x->session_id, sizeof x->session_id, c, "session_id");
        copy_field(x->agent_id, sizeof x->agent_id, c, "agent_id");
        copy_field(x->kind, sizeof x->kind, c, "kind");
        x->payload = json_incref(json_object_get(c, "payload"));
        x->history = json_incref(json_object_get(c, "history"));
        x->resume = json_incref(json_object_get(c, "resume"));
        *n = i + 1;
    }
}

enum store_rc
store_work_turn(struct store *s, const char *owner, int64_t lease_ms, const json_t *records,
                json_t **answers, struct store_report *o, size_t n, struct store_work *w,
                size_t max, size_t *claimed)
{
    char lease[24], lim[24], hist[16];
    snprintf(lease, sizeof lease, "%" PRId64, lease_ms);
    snprintf(lim, sizeof lim, "%zu", max);
    snprintf(hist, sizeof hist, "%d", HISTORY_RUNS);
    json_t *reports = json_array(), *res = NULL;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            reports, json_pack("{s:s, s:s?, s:s?, s:s?, s:o, s:O*, s:I}", "run_id", o[i].w->run_id,
                               "status", o[i].status, "error", o[i].error, "text", o[i].text,
                               "traces", traces_of(&o[i]), "steps", o[i].steps, "approval_ttl_ms",
                               (json_int_t)o[i].approval_ttl_ms));
    char *rec = db_json_param(records), *param = db_json_param(reports);
    json_decref(reports);
    enum store_rc rc = rec && param
                           ? db_call(s, &res,
                                     "SELECT kheish_work($1, $2::jsonb, $3::jsonb, "
                                     "$4::bigint, $5::int, $6::int)",
                                     6, (const char *const[]){owner, rec, param, lease, lim, hist})
                           : STORE_ERROR;
    free(rec);
    free(param);
    json_t *ended = json_object_get(res, "ended"), *held = json_object_get(res, "held");
    json_t *lost = json_object_get(res, "lost");
    for (size_t i = 0; i < n; i++) {
        o[i].ended = run_listed(ended, o[i].w->run_id);
        o[i].held = run_listed(held, o[i].w->run_id);
        o[i].lost = run_listed(lost, o[i].w->run_id);
    }
    *answers = json_incref(json_object_get(res, "records"));
    *claimed = 0;
    claimed_runs(json_object_get(res, "claimed"), w, max, claimed);
    json_decref(res);
    return rc;
}

#define RECOVER_MAX "100" /* runs one pass recovers */

enum store_rc
store_work_recover(struct store *s, json_t **out)
{
    return db_call(s, out, "SELECT kheish_recover_runs($1::int)", 1,
                   (const char *const[]){RECOVER_MAX});
}

/* The maintenance lock: session-level, so it is held while the runner's
 * connection lives; /v1/status names its holder (store_runners_status). */
#define MAINTENANCE_CLASS "1801545065" /* the lock's two int4 keys, as pg_locks shows them */
#define MAINTENANCE_OBJ   "1"
#define MAINTENANCE_HELD                                                                           \
    "l.locktype = 'advisory' AND l.classid = " MAINTENANCE_CLASS " AND l.objid = " MAINTENANCE_OBJ \
    " AND l.granted"

/* The heartbeat and the lock in one statement: the runner asks for the lock
 * every second anyway, so its heartbeat costs no round trip of its own. */
enum store_rc
store_runner_beat(struct store *s, struct store_runner *r, int *held)
{
    char pid[16], concurrency[16], started[24];
    enum store_rc rc;
    snprintf(pid, sizeof pid, "%d", r->pid);
    snprintf(concurrency, sizeof concurrency, "%d", r->concurrency);
    snprintf(started, sizeof started, "%" PRId64, r->started_at_ms);
    PGresult *res = db_exec(
        s, &rc,
        "SELECT kheish_runner_beat($1, $2, $3::int, $4::int, nullif($5::bigint, 0)), "
        "CASE WHEN EXISTS (SELECT 1 FROM pg_locks l WHERE " MAINTENANCE_HELD
        " AND l.pid = pg_backend_pid()) THEN true ELSE pg_try_advisory_lock(" MAINTENANCE_CLASS
        ", " MAINTENANCE_OBJ ") END, kheish_now_ms()",
        5, (const char *const[]){r->runner_id, r->host, pid, concurrency, started});
    *held = res && PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 1), "t");
    if (res && PQntuples(res) == 1) {
        r->started_at_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        r->db_now_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    PQclear(res);
    return res ? STORE_OK : rc;
}

enum store_rc
store_runner_forget(struct store *s, const char *runner_id)
{
    return db_command(s, "DELETE FROM runners WHERE runner_id = $1", 1,
                      (const char *const[]){runner_id});
}

#define RUNNERS_LISTED_MAX "100" /* live runners /v1/status lists */

enum store_rc
store_runners_status(struct store *s, json_t **block)
{
    return db_json(s, block,
                   "SELECT kheish_runners_status($1::int) || jsonb_build_object("
                   "'maintenance_lock_holder', (SELECT a.application_name FROM pg_locks l "
                   "JOIN pg_stat_activity a USING (pid) WHERE " MAINTENANCE_HELD " LIMIT 1))",
                   1, (const char *const[]){RUNNERS_LISTED_MAX});
}

void
store_work_free(struct store_work *w)
{
    json_decref(w->payload);
    json_decref(w->history);
    json_decref(w->resume);
    w->payload = w->history = w->resume = NULL;
}
