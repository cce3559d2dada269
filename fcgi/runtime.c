/* /v1/runtime: settings, revisions and rollback. */
#include <string.h>

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

/* Applies one change described by the body. */
static int
change(struct http_req *req, struct http_resp *resp, const char *setting, const char *value_key)
{
    json_t *body = req->json, *view;
    const char *value = value_key ? json_string_value(json_object_get(body, value_key)) : NULL;
    struct store_runtime_change c = {setting, value, revision(body, "expected_revision"),
                                     revision(body, "target_revision")};
    enum store_rc rc = store_runtime_change(req->db, req->actor, &c, &view);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

static int
runtime_permission_mode(struct http_req *req, struct http_resp *resp)
{
    return change(req, resp, "permission_mode", "mode");
}

static int
runtime_debug_level(struct http_req *req, struct http_resp *resp)
{
    return change(req, resp, "debug_level", "level");
}

static int
runtime_rollback(struct http_req *req, struct http_resp *resp)
{
    return change(req, resp, "rollback", NULL);
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

const struct http_route runtime_routes[] = {
    {"GET", "/v1/runtime", AUTH_ACCESS_READ_ONLY, runtime_get, NULL, NULL, NULL},
    {"POST", "/v1/runtime/permission-mode", AUTH_ACCESS_ADMIN, runtime_permission_mode, NULL,
     validate_permission_mode, NULL},
    {"POST", "/v1/runtime/debug-level", AUTH_ACCESS_ADMIN, runtime_debug_level, NULL,
     validate_debug_level, NULL},
    {"GET", "/v1/runtime/revisions", AUTH_ACCESS_ADMIN, runtime_revisions, "limit", NULL, NULL},
    {"POST", "/v1/runtime/rollback", AUTH_ACCESS_ADMIN, runtime_rollback, NULL, validate_rollback,
     NULL},
    ROUTES_END,
};
