/*
 * The route table (issue 12, points 3 and 8): each route declares the access
 * the contract's permission rule gives its path (common/auth.c), every
 * capability a route or the router declares is a DaemonCapabilities flag,
 * and GET /v1/capabilities says true for exactly those.
 */
#include "check.h"
#include "router.h"
#include "util.h"

/* A path of pattern, each '*' an id. */
static void
instantiate(const char *pattern, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 8 < size; p++)
        n += *p == '*' ? (size_t)snprintf(out + n, size - n, "x-1") : (out[n] = *p, 1);
    out[n] = '\0';
}

static int
flag_known(const char *word, size_t len)
{
    for (const char *const *f = status_capability_flags; *f; f++)
        if (strlen(*f) == len && !strncmp(*f, word, len))
            return 1;
    return 0;
}

static void
words_known(const char *list)
{
    for (const char *p = list; p && *p; p += strcspn(p, " "), p += *p == ' ')
        CHECK(flag_known(p, strcspn(p, " ")));
}

int
main(void)
{
    int routes = 0, streams = 0;
    char path[256];
    for (const struct http_route *const *t = router_tables; *t; t++)
        for (const struct http_route *r = *t; r->method; r++, routes++) {
            instantiate(r->pattern, path, sizeof path);
            enum auth_access want =
                strncmp(path, "/v1/", 4) ? AUTH_ACCESS_NONE : auth_required_access(r->method, path);
            if (r->access != want)
                fprintf(stderr, "  %s %s declares %s, the contract says %s\n", r->method,
                        r->pattern, auth_access_name(r->access), auth_access_name(want));
            CHECK(r->access == want);
            CHECK(r->body == NULL || strcmp(r->method, "GET"));
            streams += r->fn == NULL;
            words_known(r->capabilities);
        }
    CHECK(routes >= 30 && streams == 3);
    words_known(ROUTER_CAPABILITIES);

    struct http_req req = {.method = "GET", .path = "/v1/capabilities"};
    struct http_resp resp = {0};
    CHECK(router_dispatch(&req, &resp) == 200);
    const char *served[] = {"approvals",         "session_events",          "restart_restore",
                            "live_events",       "session_run_idempotency", "problem_details",
                            "cursor_pagination", "paginated_lists",         "domain_errors",
                            "sse_replay",        "typed_sse_heartbeat",     NULL};
    for (const char *const *f = status_capability_flags; *f; f++) {
        const json_t *v = json_object_get(resp.json, *f);
        CHECK(json_is_boolean(v));
        if (json_is_true(v) != util_in_list(*f, served))
            fprintf(stderr, "  capability %s is %s\n", *f, json_is_true(v) ? "true" : "false");
        CHECK(json_is_true(v) == util_in_list(*f, served));
    }
    json_decref(resp.json);
    return check_report("api_routes");
}
