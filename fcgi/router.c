#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const struct http_route *const router_tables[] = {
    probes_routes,  status_routes,      sessions_routes,  runs_routes, runtime_routes,
    secrets_routes, permissions_routes, approvals_routes, NULL,
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

/* Runs route's handler unless the query names a parameter it does not read
 * or the body is not what it declares. */
static int
run(const struct http_route *route, struct http_req *req, struct http_resp *resp)
{
    for (int i = 0; i < req->nquery; i++)
        if (!util_has_word(route->query, req->query[i].name, strlen(req->query[i].name)))
            return http_problem(resp, 400, NULL, "bad_request", "unknown query parameter '%s'",
                                req->query[i].name);
    if (route->body && validate_body(req, route->body, &req->json, resp) != 0)
        return resp->status;
    int status = route->fn(req, resp);
    json_decref(req->json);
    req->json = NULL;
    return status;
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
    for (const struct http_route *const *t = router_tables; *t; t++)
        for (const struct http_route *r = *t; r->method; r++) {
            memcpy(buf, req->path, len + 1);
            if (r->fn == NULL || !match(r->pattern, buf, req))
                continue;
            if (!strcmp(r->method, method)) {
                int status = run(r, req, resp);
                free(buf);
                return status;
            }
            if (!strstr(allow, r->method))
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                         allow[0] ? ", " : "", r->method);
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
