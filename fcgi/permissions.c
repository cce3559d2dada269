/*
 * Tool permissions (contract §8, docs/permissions.md): the engine's dry
 * runs under the runtime's rules and mode (POST /v1/runtime/permissions/check
 * and /matrix), and a session's permission audits.
 */
#include "permissions.h"
#include "router.h"
#include "validate.h"

#define AUDITS_DEFAULT_LIMIT 1000
#define AUDITS_MAX_LIMIT     1000

/* What a dry run decides by: the runtime's rules and mode. */
struct policy {
    struct perm_rules rules;
    enum perm_mode mode;
};

/* Loads the current policy into p (free p->rules), once session (NULL:
 * none) is known to exist. Returns 0, or -1 with the problem in resp (404
 * sessions/session_not_found). */
static int
policy_load(struct http_req *req, struct http_resp *resp, const char *session, struct policy *p)
{
    json_t *cur;
    char err[256];
    enum store_rc rc = session ? store_session_exists(req->db, session) : STORE_OK;
    if (rc == STORE_OK)
        rc = store_runtime_settings(req->db, &cur);
    if (rc != STORE_OK)
        return http_store_problem(resp, rc), -1;
    const json_t *settings = json_object_get(cur, "settings");
    json_t *stored = json_object_get(settings, "permission_rules");
    const char *mode = json_string_value(json_object_get(settings, "permission_mode"));
    /* a revision from before the rules existed has none */
    stored = stored ? json_incref(stored) : json_array();
    p->mode = mode ? perm_mode_parse(mode) : PERM_MODE_UNSET;
    int ok = perm_rules_parse(stored, "permission_rules", 0, &p->rules, err, sizeof err) == 0;
    json_decref(stored);
    json_decref(cur);
    if (!ok || p->mode == PERM_MODE_UNSET) {
        if (ok)
            perm_rules_free(&p->rules);
        return http_problem(resp, 500, NULL, "internal_error",
                            "the stored permission settings are unreadable"),
               -1;
    }
    return 0;
}

/* POST /v1/runtime/permissions/check: one dry-run explanation. The mode is
 * the request's mode_override, else the runtime's (sessions have no mode of
 * their own yet). input is accepted and not read: rules match tool names
 * only. */
static int
permissions_check(struct http_req *req, struct http_resp *resp)
{
    const json_t *body = req->json;
    const char *tool = json_string_value(json_object_get(body, "tool_name"));
    const char *session = json_string_value(json_object_get(body, "session_id"));
    const char *mode = json_string_value(json_object_get(body, "mode_override"));
    struct policy p;
    if (!perm_tool_name_valid(tool, json_string_length(json_object_get(body, "tool_name"))))
        return http_problem(resp, 400, NULL, "bad_request",
                            "field 'tool_name' must be a tool name: 1..%d of [A-Za-z0-9_.:-]",
                            PERM_NAME_MAX_BYTES);
    if (policy_load(req, resp, session, &p) != 0)
        return resp->status;
    struct perm_request pr = {
        .tool_name = tool,
        .tool_call_id = json_string_value(json_object_get(body, "tool_call_id")),
        .runtime_mode = p.mode,
        .session_mode = PERM_MODE_UNSET,
        .mode_override = mode ? perm_mode_parse(mode) : PERM_MODE_UNSET,
        .rules = &p.rules,
        .session_id = session,
    };
    struct perm_decision d;
    perm_decide(&pr, &d);
    json_t *out = perm_explain_json(&d);
    perm_rules_free(&p.rules);
    return http_json(resp, 200, out);
}

/* POST /v1/runtime/permissions/matrix: every built-in tool under every mode. */
static int
permissions_matrix(struct http_req *req, struct http_resp *resp)
{
    const char *session = json_string_value(json_object_get(req->json, "session_id"));
    struct policy p;
    if (policy_load(req, resp, session, &p) != 0)
        return resp->status;
    size_t n = 0;
    while (perm_builtin_tools[n])
        n++;
    struct perm_request pr = {.runtime_mode = p.mode,
                              .session_mode = PERM_MODE_UNSET,
                              .mode_override = PERM_MODE_UNSET,
                              .rules = &p.rules,
                              .session_id = session};
    json_t *out = perm_matrix_json(&pr, perm_builtin_tools, n, session);
    perm_rules_free(&p.rules);
    return out ? http_json(resp, 200, out)
               : http_problem(resp, 500, NULL, "internal_error", "out of memory");
}

/* GET /v1/sessions/{id}/permission-audits: {session_id, audits}, the newest
 * `limit` oldest first. */
static int
permission_audits(struct http_req *req, struct http_resp *resp)
{
    json_t *out;
    const char *id = http_path_id(req, 0, "session", resp);
    int limit = id ? http_query_limit(req, AUDITS_DEFAULT_LIMIT, AUDITS_MAX_LIMIT, resp) : -1;
    if (limit < 0)
        return resp->status;
    enum store_rc rc = store_permission_audits(req->db, id, limit, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}

const struct http_route permissions_routes[] = {
    {"POST", "/v1/runtime/permissions/check", AUTH_ACCESS_ADMIN, permissions_check, NULL,
     validate_permission_check, NULL},
    {"POST", "/v1/runtime/permissions/matrix", AUTH_ACCESS_ADMIN, permissions_matrix, NULL,
     validate_permission_matrix, NULL},
    {"GET", "/v1/sessions/*/permission-audits", AUTH_ACCESS_READ_ONLY, permission_audits, "limit",
     NULL, NULL},
    ROUTES_END,
};
