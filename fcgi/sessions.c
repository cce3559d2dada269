/* /v1/sessions: create, list, get, events, interrupt, end. */
#include "page.h"
#include "router.h"
#include "validate.h"

#define SESSION_EVENTS_DEFAULT_LIMIT 1000
#define SESSION_EVENTS_MAX_LIMIT     1000

static const char *
str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *
obj(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_object(v) ? v : NULL;
}

static int
sessions_create(struct http_req *req, struct http_resp *resp)
{
    json_t *body = req->json, *view;
    int created;
    struct store_session_create c = {str(body, "session_id"), str(body, "thread_id"),
                                     str(body, "persona_id"), obj(body, "capability_scope"),
                                     obj(body, "credential_scope")};
    enum store_rc rc = store_session_create(req->db, req->actor, &c, &view, &created);
    return rc == STORE_OK ? http_json(resp, 201, view) : http_store_problem(resp, rc);
}

static int
sessions_list(struct http_req *req, struct http_resp *resp)
{
    struct page_req p;
    struct store_page_result r = {0};
    const char *persona = http_query(req, "persona_id");
    if (page_parse(req, 0, &p, resp) != 0)
        return resp->status;
    if (persona && !uri_valid_id(persona))
        return http_problem(resp, 400, NULL, "bad_request", "invalid persona_id");
    enum store_rc rc = store_session_list(req->db, persona, &p.page, &r);
    return rc == STORE_OK ? http_json(resp, 200, page_response(&p, &r))
                          : http_store_problem(resp, rc);
}

static int
sessions_get(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    const char *id = http_path_id(req, 0, "session", resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_session_get(req->db, id, &view);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

static int
sessions_events(struct http_req *req, struct http_resp *resp)
{
    json_t *out;
    const char *id = http_path_id(req, 0, "session", resp);
    int limit =
        id ? http_query_limit(req, SESSION_EVENTS_DEFAULT_LIMIT, SESSION_EVENTS_MAX_LIMIT, resp)
           : -1;
    if (limit < 0)
        return resp->status;
    enum store_rc rc = store_session_events(req->db, id, limit, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}

static int
sessions_interrupt(struct http_req *req, struct http_resp *resp)
{
    json_t *out;
    const char *id = http_path_id(req, 0, "session", resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_session_interrupt(req->db, req->actor, id, &out);
    return rc == STORE_OK ? http_json(resp, 200, out) : http_store_problem(resp, rc);
}

static int
sessions_end(struct http_req *req, struct http_resp *resp)
{
    json_t *view;
    const char *id = http_path_id(req, 0, "session", resp);
    if (id == NULL)
        return resp->status;
    enum store_rc rc = store_session_end(req->db, req->actor, id, str(req->json, "reason"), &view);
    return rc == STORE_OK ? http_json(resp, 200, view) : http_store_problem(resp, rc);
}

const struct http_route sessions_routes[] = {
    {"POST", "/v1/sessions", AUTH_ACCESS_ADMIN, sessions_create, NULL, validate_session_create,
     "restart_restore"},
    {"GET", "/v1/sessions", AUTH_ACCESS_READ_ONLY, sessions_list, "persona_id " PAGE_QUERY, NULL,
     "cursor_pagination paginated_lists"},
    {"GET", "/v1/sessions/*", AUTH_ACCESS_READ_ONLY, sessions_get, NULL, NULL, NULL},
    {"GET", "/v1/sessions/*/events", AUTH_ACCESS_READ_ONLY, sessions_events, "limit", NULL,
     "session_events"},
    /* The streams, which the SSE relay serves. */
    {"GET", "/v1/events/stream", AUTH_ACCESS_READ_ONLY, NULL, "cursor session_id run_id", NULL,
     "live_events sse_replay typed_sse_heartbeat"},
    {"GET", "/v1/sessions/*/stream", AUTH_ACCESS_READ_ONLY, NULL, "cursor", NULL,
     "live_events sse_replay typed_sse_heartbeat"},
    {"POST", "/v1/sessions/*/interrupt", AUTH_ACCESS_ADMIN, sessions_interrupt, NULL,
     validate_empty, NULL},
    {"POST", "/v1/sessions/*/end", AUTH_ACCESS_ADMIN, sessions_end, NULL, validate_session_end,
     NULL},
    ROUTES_END,
};
