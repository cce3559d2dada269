/* /v1/runtime: settings, revisions and rollback. */
#include <string.h>

#include "router.h"
#include "validate.h"

#define REVISIONS_DEFAULT_LIMIT 100

int
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

/* Applies one change described by the validated body. */
static int
change(struct http_req *req, struct http_resp *resp, const struct field *schema,
       const char *setting, const char *value_key)
{
    json_t *body, *view;
    if (validate_body(req, schema, &body, resp) != 0)
        return resp->status;
    const char *value = value_key ? json_string_value(json_object_get(body, value_key)) : NULL;
    if (value_key && value == NULL) {
        json_decref(body);
        return http_problem(resp, 400, NULL, "bad_request", "field '%s' is required", value_key);
    }
    struct store_runtime_change c = {setting, value, revision(body, "expected_revision"),
                                     revision(body, "target_revision")};
    enum store_rc rc = store_runtime_change(req->db, &c, &view);
    json_decref(body);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

int
runtime_permission_mode(struct http_req *req, struct http_resp *resp)
{
    return change(req, resp, validate_permission_mode, "permission_mode", "mode");
}

int
runtime_debug_level(struct http_req *req, struct http_resp *resp)
{
    return change(req, resp, validate_debug_level, "debug_level", "level");
}

int
runtime_rollback(struct http_req *req, struct http_resp *resp)
{
    return change(req, resp, validate_rollback, "rollback", NULL);
}

int
runtime_revisions(struct http_req *req, struct http_resp *resp)
{
    json_t *out;
    int limit = http_query_limit(req, REVISIONS_DEFAULT_LIMIT, REVISIONS_DEFAULT_LIMIT, resp);
    if (limit < 0)
        return resp->status;
    enum store_rc rc = store_runtime_revisions(req->db, limit, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}
