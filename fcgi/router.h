/*
 * router: method + path to handler; 404 route_not_found and 405 otherwise.
 *
 * Each handler file declares the routes it serves in a table of its own
 * (sessions.c: sessions_routes, ...); router.c concatenates the tables.
 */
#ifndef KHEISH_FCGI_ROUTER_H
#define KHEISH_FCGI_ROUTER_H

#include "auth.h"
#include "http.h"
#include "validate.h"

typedef int (*handler_fn)(struct http_req *req, struct http_resp *resp);

struct http_route {
    const char *method;
    const char *pattern;     /* '*' matches one non-empty path segment */
    enum auth_access access; /* the least a caller needs (contract §5; test-api_routes) */
    handler_fn fn;           /* NULL: a stream the SSE relay serves (nginx sends it there) */
    const char *query;       /* the query parameters it reads, space-separated; others refused */
    /* Its JSON body's fields, checked before fn runs (req->json), or NULL:
     * no body is read. */
    const struct field *body;
    /* The DaemonCapabilities flags it serves (status.c), space-separated. */
    const char *capabilities;
};
#define ROUTES_END                                                                                 \
    {                                                                                              \
        NULL, NULL, AUTH_ACCESS_NONE, NULL, NULL, NULL, NULL                                       \
    }

#define PAGE_QUERY "limit page cursor"

/* What the router gives every route: errors as problem+json with a domain code. */
#define ROUTER_CAPABILITIES "problem_details domain_errors"
/* Every flag of DaemonCapabilities (status.c), NULL-terminated. */
extern const char *const status_capability_flags[];

/* The handler files' tables (ROUTES_END-terminated), and all of them. */
extern const struct http_route probes_routes[], status_routes[], sessions_routes[], runs_routes[],
    runtime_routes[], secrets_routes[], permissions_routes[], approvals_routes[];
extern const struct http_route *const router_tables[];

/* Finds the route for req->method and req->path, filling req->params with
 * the path's '*' segments, and runs it; or sets the 404/405 problem. */
int router_dispatch(struct http_req *req, struct http_resp *resp);

/* Appends a health warning {severity, code, message, related_id?} (status.c)
 * and returns it (borrowed), for the caller to add an action. */
json_t *status_warn(json_t *warnings, const char *severity, const char *code, const char *message,
                    const json_t *related_id);

#endif
