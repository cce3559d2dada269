/* /v1/runs and POST /v1/sessions/{id}/runs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "page.h"
#include "readiness.h"
#include "router.h"
#include "util.h"
#include "validate.h"

#define RUN_EVENTS_DEFAULT_LIMIT       1000
#define EXTERNAL_ACTIONS_DEFAULT_LIMIT 10000
#define EXTERNAL_ACTIONS_MAX_LIMIT     10000
#define RUN_EVENTS_MAX_LIMIT           1000

/* Queues the run of a SubmitInputRequest (its fields checked by the
 * router); *view receives the RunView. Returns 0, or -1 with a problem in
 * resp. */
static int
submit(struct http_req *req, struct http_resp *resp, int require_idle, json_t **view)
{
    json_t *body = req->json;
    char fp[HTTP_FINGERPRINT_SIZE];
    const char *key;
    int replayed;
    const char *session = http_path_id(req, 0, "session", resp);
    if (session == NULL || validate_submit_rules(body, resp) != 0 ||
        readiness_check_submission(req, body, resp) != 0 ||
        http_idempotency(req, body, &key, fp, resp) != 0)
        return -1;
    json_t *payload = json_deep_copy(body);
    json_object_del(payload, "idempotency_key");
    struct store_run_submit s = {session, payload, key, key ? fp : NULL, require_idle};
    enum store_rc src = store_run_submit(req->db, req->actor, &s, view, &replayed);
    json_decref(payload);
    return src == STORE_OK ? 0 : (http_store_problem(resp, src), -1);
}

static int
runs_submit(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    return submit(req, resp, 0, &view) == 0 ? http_json(resp, 202, view) : resp->status;
}

/* POST /v1/sessions/{id}/input: the run executes inline. The session must be
 * idle (409 sessions/session_busy otherwise). The worker only commits the
 * run: its answer sends nginx to the internal wait location, where a relay
 * holds the request, without a worker, until the run ended or input_wait_ms
 * passed, and answers the SessionView (sse-relay/relay.c). */
static int
sessions_input(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    if (submit(req, resp, 1, &view) != 0)
        return resp->status;
    int rc = http_add_headers(
        resp, "X-Accel-Redirect: " URI_INPUT_WAIT_PREFIX "%s/%s?wait_ms=%lld\r\n", req->params[0],
        json_string_value(json_object_get(view, "run_id")), (long long)req->cfg->input_wait_ms);
    json_decref(view);
    if (rc != 0)
        return http_problem(resp, 500, NULL, "internal_error", "the wait could not be handed over");
    resp->status = 200;
    return 200;
}

static int
runs_list(struct http_req *req, struct http_resp *resp)
{
    struct page_req p;
    struct store_page_result r = {0};
    struct store_run_filter f = {http_query(req, "session_id"), http_query(req, "status"), 0};
    const char *active = http_query(req, "priority_active");
    if (page_parse(req, 1, &p, resp) != 0)
        return resp->status;
    if (f.session_id && !uri_valid_id(f.session_id))
        return http_problem(resp, 400, NULL, "bad_request", "invalid session_id");
    if (f.status && !util_in_list(f.status, names_run_statuses))
        return http_problem(resp, 400, NULL, "bad_request", "unknown run status");
    if (active && strcmp(active, "true") && strcmp(active, "false"))
        return http_problem(resp, 400, NULL, "bad_request",
                            "priority_active must be true or false");
    f.active_only = active && !strcmp(active, "true");
    enum store_rc rc = store_run_list(req->db, &f, &p.page, &r);
    return rc == STORE_OK ? http_json(resp, 200, page_response(&p, &r))
                          : http_store_problem(resp, rc);
}

static int
runs_get(struct http_req *req, struct http_resp *resp)
{
    char *view;
    const char *id = http_path_id(req, 0, "run", resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_run_get(req->db, id, &view);
    return rc == STORE_OK ? http_json_text(resp, 200, view) : http_store_problem(resp, rc);
}

static int
runs_events(struct http_req *req, struct http_resp *resp)
{
    json_t *out;
    const char *id = http_path_id(req, 0, "run", resp);
    int limit =
        id ? http_query_limit(req, RUN_EVENTS_DEFAULT_LIMIT, RUN_EVENTS_MAX_LIMIT, resp) : -1;
    if (limit < 0)
        return resp->status;
    enum store_rc rc = store_run_events(req->db, id, limit, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}

/* The run's signed external-action records (contract §9), oldest first: a
 * JSON array, as upstream answers; `after` (a record's position in the
 * run's chain) and `limit` page a long one. */
static int
runs_external_actions(struct http_req *req, struct http_resp *resp)
{
    char *text;
    int64_t after = 0;
    const char *id = http_path_id(req, 0, "run", resp);
    const char *a = http_query(req, "after");
    if (id && a && util_parse_i64(a, 0, INT64_MAX, &after) != 0)
        return http_problem(resp, 400, "pagination", "invalid_after",
                            "after must be a non-negative integer (a record's position)");
    int limit =
        id ? http_query_limit(req, EXTERNAL_ACTIONS_DEFAULT_LIMIT, EXTERNAL_ACTIONS_MAX_LIMIT, resp)
           : -1;
    if (limit < 0)
        return resp->status;
    int ended;
    enum store_rc rc = store_ledger_records(req->db, id, after, limit, &text);
    if (rc == STORE_RUN_NOT_FOUND && (rc = store_run_ended(req->db, id, &ended)) == STORE_OK)
        text = strdup("[]"); /* a run that made no external action yet */
    if (rc == STORE_OK && text == NULL)
        rc = STORE_ERROR;
    return rc == STORE_OK ? http_json_text(resp, 200, text) : http_store_problem(resp, rc);
}

static int
runs_cancel(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    const char *id = http_path_id(req, 0, "run", resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_run_cancel(req->db, req->actor, id, &view);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

const struct http_route runs_routes[] = {
    {"POST", "/v1/sessions/*/runs", AUTH_ACCESS_ADMIN, runs_submit, NULL, validate_submit_input,
     "session_run_idempotency"},
    {"POST", "/v1/sessions/*/input", AUTH_ACCESS_ADMIN, sessions_input, NULL, validate_submit_input,
     NULL},
    {"GET", "/v1/runs", AUTH_ACCESS_READ_ONLY, runs_list,
     "session_id status priority_active order " PAGE_QUERY, NULL,
     "cursor_pagination paginated_lists"},
    {"GET", "/v1/runs/*", AUTH_ACCESS_READ_ONLY, runs_get, NULL, NULL, NULL},
    {"GET", "/v1/runs/*/events", AUTH_ACCESS_READ_ONLY, runs_events, "limit", NULL, NULL},
    {"GET", "/v1/runs/*/external-actions", AUTH_ACCESS_READ_ONLY, runs_external_actions,
     "after limit", NULL, NULL},
    {"GET", "/v1/runs/*/stream", AUTH_ACCESS_READ_ONLY, NULL, "cursor", NULL,
     "live_events sse_replay typed_sse_heartbeat"},
    {"POST", "/v1/runs/*/cancel", AUTH_ACCESS_ADMIN, runs_cancel, NULL, validate_empty, NULL},
    ROUTES_END,
};
