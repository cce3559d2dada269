/*
 * Approvals (contract §8): an operator resolves the tool calls a waiting
 * run asked for, per run (POST /v1/runs/{id}/approvals: 202 RunView) or for
 * the session's waiting run (POST /v1/sessions/{id}/approvals: the
 * SessionView; /approval-runs: 202 RunView). The batch is atomic and may
 * carry an idempotency key (body or Idempotency-Key header). Pending
 * approvals are read from the RunView (pending_approvals) and the
 * SessionView (snapshot.pending_approvals).
 */
#include "router.h"
#include "validate.h"

#define RESOLUTIONS_MAX     256  /* resolutions in one batch */
#define RESOLUTION_TEXT_MAX 4096 /* bytes of a justification or a reason */

static const char *const behaviors[] = {"allow", "deny", NULL};

static const struct field resolution_fields[] = {
    {"request_id", F_STRING, 1, 200, NULL, NULL, REQUIRED},
    {"behavior", F_STRING, 0, 16, behaviors, NULL, REQUIRED},
    {"updated_input", F_OBJECT, 0, 0, NULL, NULL, OPTIONAL},
    {"justification", F_STRING, 0, RESOLUTION_TEXT_MAX, NULL, NULL, OPTIONAL},
    {"reason", F_STRING, 0, RESOLUTION_TEXT_MAX, NULL, NULL, OPTIONAL},
    FIELDS_END,
};
static const struct field resolution = {NULL, F_OBJECT, 0, 0, NULL, resolution_fields, OPTIONAL};

static const struct field resolve_request[] = {
    {"idempotency_key", F_STRING, 1, 255, NULL, NULL, OPTIONAL},
    {"resolutions", F_ARRAY, 1, RESOLUTIONS_MAX, NULL, &resolution, REQUIRED},
    FIELDS_END,
};

/* Resolves the body's batch for run (or, run NULL, session's waiting run):
 * 0 with *view (the RunView) and sid, or -1 with the problem in resp. */
static int
resolve(struct http_req *req, struct http_resp *resp, const char *session, const char *run,
        json_t **view, char *sid, size_t sidsz)
{
    char fp[HTTP_FINGERPRINT_SIZE];
    const char *key;
    const json_t *resolutions = json_object_get(req->json, "resolutions");
    if (json_array_size(resolutions) == 0)
        return http_problem(resp, 400, NULL, "bad_request", "resolutions: at least one is needed"),
               -1;
    if (http_idempotency(req, req->json, &key, fp, resp) != 0)
        return -1;
    struct store_resolution r = {session, run, resolutions, key, key ? fp : NULL};
    enum store_rc rc = store_approvals_resolve(req->db, req->actor, &r, view, sid, sidsz);
    return rc == STORE_OK ? 0 : (http_store_problem(resp, rc), -1);
}

static int
runs_approvals(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    char sid[256];
    const char *run = http_path_id(req, 0, "run", resp);
    if (run == NULL || resolve(req, resp, NULL, run, &view, sid, sizeof sid) != 0)
        return resp->status;
    return http_json(resp, 202, view);
}

static int
sessions_approval_runs(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    char sid[256];
    const char *session = http_path_id(req, 0, "session", resp);
    if (session == NULL || resolve(req, resp, session, NULL, &view, sid, sizeof sid) != 0)
        return resp->status;
    return http_json(resp, 202, view);
}

static int
sessions_approvals(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    char sid[256];
    const char *session = http_path_id(req, 0, "session", resp);
    if (session == NULL || resolve(req, resp, session, NULL, &view, sid, sizeof sid) != 0)
        return resp->status;
    json_decref(view);
    enum store_rc rc = store_session_get(req->db, session, &view);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

const struct http_route approvals_routes[] = {
    {"POST", "/v1/runs/*/approvals", AUTH_ACCESS_ADMIN, runs_approvals, NULL, resolve_request,
     "approvals"},
    {"POST", "/v1/sessions/*/approvals", AUTH_ACCESS_ADMIN, sessions_approvals, NULL,
     resolve_request, "approvals"},
    {"POST", "/v1/sessions/*/approval-runs", AUTH_ACCESS_ADMIN, sessions_approval_runs, NULL,
     resolve_request, "approvals"},
    ROUTES_END,
};
