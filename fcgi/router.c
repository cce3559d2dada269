#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct http_route {
    const char *method;
    const char *pattern; /* '*' matches one non-empty path segment */
    handler_fn fn;
    const char *query; /* the query parameters it reads, space-separated; others are refused */
};

#define PAGE_QUERY "limit page cursor"

static const struct http_route http_routes[] = {
    {"GET", "/healthz", probes_healthz, NULL},
    {"GET", "/readyz", probes_readyz, NULL},
    {"GET", "/v1/status", status_get, NULL},
    {"GET", "/v1/capabilities", status_capabilities, NULL},
    {"POST", "/v1/sessions", sessions_create, NULL},
    {"GET", "/v1/sessions", sessions_list, "persona_id " PAGE_QUERY},
    {"GET", "/v1/sessions/*", sessions_get, NULL},
    {"GET", "/v1/sessions/*/events", sessions_events, "limit"},
    {"POST", "/v1/sessions/*/runs", runs_submit, NULL},
    {"POST", "/v1/sessions/*/input", sessions_input, NULL},
    {"POST", "/v1/sessions/*/interrupt", sessions_interrupt, NULL},
    {"POST", "/v1/sessions/*/end", sessions_end, NULL},
    {"GET", "/v1/runs", runs_list, "session_id status priority_active order " PAGE_QUERY},
    {"GET", "/v1/runs/*", runs_get, NULL},
    {"GET", "/v1/runs/*/events", runs_events, "limit"},
    {"POST", "/v1/runs/*/cancel", runs_cancel, NULL},
    {"GET", "/v1/runtime", runtime_get, NULL},
    {"POST", "/v1/runtime/permission-mode", runtime_permission_mode, NULL},
    {"POST", "/v1/runtime/debug-level", runtime_debug_level, NULL},
    {"GET", "/v1/runtime/revisions", runtime_revisions, "limit"},
    {"POST", "/v1/runtime/rollback", runtime_rollback, NULL},
    {"GET", "/v1/runtime/secrets", secrets_list, NULL},
    {"POST", "/v1/runtime/secrets", secrets_put, NULL},
    {"GET", "/v1/runtime/secrets/*", secrets_get, NULL},
    {"DELETE", "/v1/runtime/secrets/*", secrets_delete, NULL},
    {"POST", "/v1/runtime/auth/slots/*/revoke", secrets_revoke_slot, NULL},
    {"GET", "/v1/runtime/auth/subjects/*", auth_subject_get, NULL},
    {"POST", "/v1/runtime/auth/subjects/*/revoke", auth_subject_revoke, NULL},
    {"GET", "/v1/runtime/auth/leases/*", auth_lease_get, NULL},
    {"POST", "/v1/runtime/auth/leases/*/revoke", auth_lease_revoke, NULL},
};

/* Matches path against pattern, recording '*' segments (pointers into buf,
 * a writable copy of path). */
static int
match(const char *pattern, char *buf, struct http_req *req)
{
    const char *p = pattern;
    char *s = buf;
    int n = 0;
    while (*p && *s) {
        if (*p == '*') {
            char *end = strchr(s, '/');
            if (end == s || n == HTTP_MAX_PATH_PARAMS)
                return 0;
            req->params[n++] = s;
            p++;
            if (end == NULL) {
                s += strlen(s);
                break;
            }
            *end = '\0'; /* terminate the parameter; the '/' is matched below */
            s = end;
            if (*p != '/')
                return 0;
            p++, s++;
            continue;
        }
        if (*p != *s)
            return 0;
        p++, s++;
    }
    req->nparams = n;
    return *p == '\0' && *s == '\0';
}

/* Runs route's handler unless the query names a parameter it does not read. */
static int
run(const struct http_route *route, struct http_req *req, struct http_resp *resp)
{
    for (int i = 0; i < req->nquery; i++)
        if (!util_has_word(route->query, req->query[i].name, strlen(req->query[i].name)))
            return http_problem(resp, 400, NULL, "bad_request", "unknown query parameter '%s'",
                                req->query[i].name);
    return route->fn(req, resp);
}

int
router_dispatch(struct http_req *req, struct http_resp *resp)
{
    char allow[64] = "";
    const char *method = strcmp(req->method, "HEAD") ? req->method : "GET";
    size_t len = strlen(req->path);
    char *buf = malloc(len + 1); /* match() cuts it into the path parameters */
    if (buf == NULL)
        return http_problem(resp, 500, NULL, "internal_error", "out of memory");
    for (size_t i = 0; i < sizeof http_routes / sizeof http_routes[0]; i++) {
        memcpy(buf, req->path, len + 1);
        if (!match(http_routes[i].pattern, buf, req))
            continue;
        if (!strcmp(http_routes[i].method, method)) {
            int status = run(&http_routes[i], req, resp);
            free(buf);
            return status;
        }
        if (!strstr(allow, http_routes[i].method))
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", http_routes[i].method);
    }
    free(buf);
    req->nparams = 0;
    if (allow[0]) {
        http_add_headers(resp, "Allow: %s\r\n", allow);
        return http_problem(resp, 405, "api", "method_not_allowed",
                            "%s is not allowed on this route (allowed: %s)", req->method, allow);
    }
    return http_problem(resp, 404, "api", "route_not_found", "no route for %s %s", req->method,
                        req->path);
}
