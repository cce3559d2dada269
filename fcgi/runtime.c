/*
 * /v1/runtime: settings, revisions and rollback, the tool runtime limits,
 * and the permission rules (ours: upstream has no such endpoint).
 */
#include <string.h>

#include "permissions.h"
#include "router.h"
#include "validate.h"

#define REVISIONS_DEFAULT_LIMIT 100

static int
runtime_get(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    enum store_rc rc = store_runtime_get(req->db, &view);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

static int64_t
revision(const json_t *body, const char *key)
{
    const json_t *v = json_object_get(body, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* Appends a revision setting `setting` to value (checked; NULL for a
 * rollback) with the body's expected_revision and target_revision. Returns
 * the store's answer {view, settings} (caller decrefs), or NULL with the
 * problem in resp. */
static json_t *
change(struct http_req *req, struct http_resp *resp, const char *setting, const json_t *value)
{
    json_t *answer;
    struct store_runtime_change c = {setting, value, revision(req->json, "expected_revision"),
                                     revision(req->json, "target_revision")};
    enum store_rc rc = store_runtime_change(req->db, req->actor, &c, &answer);
    if (rc != STORE_OK) {
        http_store_problem(resp, rc);
        return NULL;
    }
    return answer;
}

/* A change answered with the RuntimeSettingsView, as upstream's are. */
static int
change_view(struct http_req *req, struct http_resp *resp, const char *setting, const json_t *value)
{
    json_t *answer = change(req, resp, setting, value);
    if (answer == NULL)
        return resp->status;
    int status = http_json(resp, 200, json_incref(json_object_get(answer, "view")));
    json_decref(answer);
    return status;
}

static int
runtime_permission_mode(struct http_req *req, struct http_resp *resp)
{
    return change_view(req, resp, "permission_mode", json_object_get(req->json, "mode"));
}

static int
runtime_debug_level(struct http_req *req, struct http_resp *resp)
{
    return change_view(req, resp, "debug_level", json_object_get(req->json, "level"));
}

static int
runtime_rollback(struct http_req *req, struct http_resp *resp)
{
    return change_view(req, resp, "rollback", NULL);
}

static int
runtime_revisions(struct http_req *req, struct http_resp *resp)
{
    json_t *out;
    int limit = http_query_limit(req, REVISIONS_DEFAULT_LIMIT, REVISIONS_DEFAULT_LIMIT, resp);
    if (limit < 0)
        return resp->status;
    enum store_rc rc = store_runtime_revisions(req->db, limit, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}

/* The newest revision's setting key (a new reference), or NULL with the
 * problem in resp. */
static json_t *
setting(struct http_req *req, struct http_resp *resp, const char *key)
{
    json_t *cur;
    enum store_rc rc = store_runtime_settings(req->db, &cur);
    if (rc != STORE_OK) {
        http_store_problem(resp, rc);
        return NULL;
    }
    json_t *v = json_incref(json_object_get(json_object_get(cur, "settings"), key));
    json_decref(cur);
    if (v == NULL)
        http_problem(resp, 500, NULL, "internal_error", "runtime setting %s is missing", key);
    return v;
}

/* GET /v1/runtime/tool-limits: the ToolRuntimeLimits themselves. */
static int
tool_limits_get(struct http_req *req, struct http_resp *resp)
{
    json_t *limits = setting(req, resp, "tool_runtime_limits");
    return limits ? http_json(resp, 200, limits) : resp->status;
}

/* POST /v1/runtime/tool-limits {limits, expected_revision?}: the whole
 * object replaced; every limit is required, a positive integer under its
 * ceiling (validate.c), else 400 runtime/invalid_tool_runtime_limits. */
static int
tool_limits_set(struct http_req *req, struct http_resp *resp)
{
    const json_t *limits = json_object_get(req->json, "limits");
    if (!json_is_object(limits))
        return http_problem(resp, 400, "runtime", "invalid_tool_runtime_limits",
                            "limits: required, an object of every tool runtime limit");
    if (validate_object_as(limits, validate_tool_limits, "limits", "runtime",
                           "invalid_tool_runtime_limits", resp) != 0)
        return resp->status;
    return change_view(req, resp, "tool_runtime_limits", limits);
}

/* The permission rules document: {rules, revision, updated_at_ms}; a
 * revision from before the rules existed has none. */
static json_t *
rules_doc(const json_t *settings, const json_t *rev, const json_t *updated_at_ms)
{
    json_t *rules = json_object_get(settings, "permission_rules");
    return json_pack("{s:o, s:O, s:O}", "rules", rules ? json_incref(rules) : json_array(),
                     "revision", rev, "updated_at_ms", updated_at_ms);
}

static int
permission_rules_get(struct http_req *req, struct http_resp *resp)
{
    json_t *cur;
    enum store_rc rc = store_runtime_settings(req->db, &cur);
    if (rc != STORE_OK)
        return http_store_problem(resp, rc);
    json_t *doc = rules_doc(json_object_get(cur, "settings"), json_object_get(cur, "revision"),
                            json_object_get(cur, "updated_at_ms"));
    json_decref(cur);
    return http_json(resp, 200, doc);
}

/* POST /v1/runtime/permission-rules {rules, expected_revision?}: the whole
 * rule document replaced, checked by the engine first (400
 * runtime/invalid_permission_rules naming the rule and field; nothing
 * changes). Answers the new document. */
static int
permission_rules_set(struct http_req *req, struct http_resp *resp)
{
    const json_t *doc = json_object_get(req->json, "rules");
    struct perm_rules rules;
    char err[256];
    if (perm_rules_parse(doc, "rules", 0, &rules, err, sizeof err) != 0)
        return http_problem(resp, 400, "runtime", "invalid_permission_rules", "%s", err);
    perm_rules_free(&rules);
    json_t *answer = change(req, resp, "permission_rules", doc);
    if (answer == NULL)
        return resp->status;
    const json_t *config = json_object_get(json_object_get(answer, "view"), "config");
    int status = http_json(resp, 200,
                           rules_doc(json_object_get(answer, "settings"),
                                     json_object_get(config, "revision"),
                                     json_object_get(config, "updated_at_ms")));
    json_decref(answer);
    return status;
}

const struct http_route runtime_routes[] = {
    {"GET", "/v1/runtime", AUTH_ACCESS_READ_ONLY, runtime_get, NULL, NULL, NULL},
    {"POST", "/v1/runtime/permission-mode", AUTH_ACCESS_ADMIN, runtime_permission_mode, NULL,
     validate_permission_mode, NULL},
    {"POST", "/v1/runtime/debug-level", AUTH_ACCESS_ADMIN, runtime_debug_level, NULL,
     validate_debug_level, NULL},
    {"GET", "/v1/runtime/revisions", AUTH_ACCESS_ADMIN, runtime_revisions, "limit", NULL, NULL},
    {"POST", "/v1/runtime/rollback", AUTH_ACCESS_ADMIN, runtime_rollback, NULL, validate_rollback,
     NULL},
    {"GET", "/v1/runtime/tool-limits", AUTH_ACCESS_READ_ONLY, tool_limits_get, NULL, NULL, NULL},
    {"POST", "/v1/runtime/tool-limits", AUTH_ACCESS_ADMIN, tool_limits_set, NULL,
     validate_tool_limits_request, NULL},
    {"GET", "/v1/runtime/permission-rules", AUTH_ACCESS_READ_ONLY, permission_rules_get, NULL, NULL,
     NULL},
    {"POST", "/v1/runtime/permission-rules", AUTH_ACCESS_ADMIN, permission_rules_set, NULL,
     validate_permission_rules, NULL},
    ROUTES_END,
};
