/*
 * `kheish doctor routes` (contract §6): the routes, their readiness and,
 * with --canary, a real run through each. With --routes-file it lints that
 * file (no daemon needed, but --check-auth checks its auth_refs against the
 * running control plane's secret slots); otherwise it reads the running
 * control plane's routes from /v1/status. --check-references looks for
 * work pinned to a route the control plane no longer has. Prints {ok,
 * source, default_route, route_count, auth_checked, reference_checked,
 * canary_checked, routes, canaries, diagnostics, warnings, errors}; exits 1
 * when not ok (an error diagnostic).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "names.h"
#include "routes.h"
#include "util.h"

#define CANARY_MARKER          "KHEISH_ROUTE_CANARY_OK"
#define CANARY_POLL_MS         250
#define CANARY_DEFAULT_TIMEOUT 90000
/* --check-references reads at most this many pages of runs per status. */
#define REFERENCE_MAX_PAGES 200
#define REFERENCE_PAGE      100

struct report {
    json_t *doc, *diagnostics, *warnings, *errors;
};

static void
diagnose(struct report *r, const char *severity, const char *code, const char *route_id,
         const char *fmt, const char *arg)
{
    char msg[600];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    json_array_append_new(r->diagnostics,
                          json_pack("{s:s, s:s, s:s?, s:s}", "severity", severity, "code", code,
                                    "route_id", route_id, "message", msg));
    if (strcmp(severity, "info"))
        json_array_append_new(!strcmp(severity, "error") ? r->errors : r->warnings,
                              json_string(msg));
}

/* The routes of a file, linted here. */
static json_t *
routes_from_file(const char *path, const char *default_route, struct report *r)
{
    struct routes rs;
    char err[512];
    if (routes_load(path, &rs, err, sizeof err) != 0) {
        diagnose(r, "error", "route_file_invalid", NULL, "%s", err);
        return NULL;
    }
    if (default_route && routes_find(&rs, default_route) == NULL)
        diagnose(r, "error", "route_default_unknown", default_route,
                 "--default-route %s is not a route of the file", default_route);
    json_t *inv = routes_inventory(&rs);
    if (default_route && routes_find(&rs, default_route))
        json_object_set_new(inv, "default_route", json_string(default_route));
    routes_free(&rs);
    return inv;
}

/* The SHA-256 (hex) of a file as it is now, or "" when it cannot be read. */
static void
file_sha256(const char *path, char out[65])
{
    char *buf = malloc(ROUTES_FILE_MAX_BYTES + 1);
    FILE *f = path && buf ? fopen(path, "rbe") : NULL;
    size_t len = f ? fread(buf, 1, ROUTES_FILE_MAX_BYTES + 1, f) : 0;
    out[0] = '\0';
    if (f && !ferror(f) && len <= ROUTES_FILE_MAX_BYTES)
        util_sha256_hex(buf, len, out);
    if (f)
        fclose(f);
    free(buf);
}

/* The running control plane's routes and their readiness (/v1/status). */
static int
routes_from_runtime(const struct cli *c, struct report *r, json_t **inv)
{
    struct client_url url;
    json_t *status = NULL;
    client_url_path(&url, "/v1/status");
    int rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, &status, NULL);
    if (rc != EXIT_OK)
        return rc;
    json_t *pr = json_object_get(status, "provider_readiness");
    if (!json_is_object(pr)) {
        diagnose(r, "error", "route_inventory_unavailable", NULL,
                 "the control plane has no routes file (kheish up --routes-file)%s", NULL);
        json_decref(status);
        return EXIT_OK;
    }
    *inv = json_pack("{s:O, s:O, s:O}", "default_route", json_object_get(pr, "default_route"),
                     "routes", json_object_get(pr, "routes"), "routes_file",
                     json_object_get(pr, "routes_file"));
    const char *path =
        json_string_value(json_object_get(json_object_get(pr, "routes_file"), "path"));
    const char *then =
        json_string_value(json_object_get(json_object_get(pr, "routes_file"), "sha256"));
    char now[65];
    file_sha256(path, now);
    if (path && then && strcmp(now, then))
        diagnose(r, "warning", "route_file_drift", NULL,
                 "%s changed since the control plane read it: restart it (kheish up) to apply it",
                 path);
    json_decref(status);
    return EXIT_OK;
}

/* 1 when the inventory's routes hold one called id. */
static int
routes_has(const json_t *routes, const char *id)
{
    size_t i;
    json_t *rt;
    json_array_foreach(routes, i, rt)
    {
        if (!strcmp(json_string_value(json_object_get(rt, "route_id")), id))
            return 1;
    }
    return 0;
}

/* GET url into *out; a failure is an error diagnostic with code. */
static int
fetch(const struct cli *c, struct client_url *url, const char *code, struct report *r, json_t **out)
{
    char msg[CLIENT_URL_MAX_BYTES + 64];
    *out = NULL;
    int rc = client_request(c, &(struct client_req){"GET", url, NULL, NULL}, out, NULL);
    if (rc != EXIT_OK) {
        snprintf(msg, sizeof msg, "the control plane did not answer %s (exit %d)", url->buf, rc);
        diagnose(r, "error", code, NULL, "%s", msg);
    }
    return rc;
}

/* --check-auth: every route's auth_ref must name a secret slot of the
 * running control plane holding a credential for the route's driver. */
static int
check_auth(const struct cli *c, const json_t *routes, int from_file, struct report *r)
{
    struct client_url url;
    json_t *slots, *rt;
    size_t i;
    char msg[400];
    if (from_file)
        diagnose(r, "info", "auth_check_uses_running_daemon", NULL,
                 "the file's auth_refs are checked against the running control plane's "
                 "secret slots%s",
                 NULL);
    client_url_path(&url, "/v1/runtime/secrets");
    int rc = fetch(c, &url, "auth_check_failed", r, &slots);
    json_array_foreach(rc == EXIT_OK ? routes : NULL, i, rt)
    {
        const char *id = json_string_value(json_object_get(rt, "route_id"));
        const char *ref = json_string_value(json_object_get(rt, "auth_ref"));
        const char *driver = json_string_value(json_object_get(rt, "provider"));
        const json_t *slot = NULL, *e;
        size_t k;
        if (ref == NULL)
            continue;
        json_array_foreach(slots, k, e)
        {
            if (json_is_string(json_object_get(e, "slot_id")) &&
                !strcmp(json_string_value(json_object_get(e, "slot_id")), ref))
                slot = e;
        }
        int d = route_driver_named(driver);
        const char *want = d < 0 ? NULL : route_drivers[d].slot_provider;
        const char *has = json_string_value(json_object_get(slot, "provider"));
        if (slot == NULL) {
            snprintf(msg, sizeof msg, "auth_ref '%s' is not a secret slot of the control plane",
                     ref);
            diagnose(r, "error", "auth_ref_missing", id, "%s", msg);
        } else if (want && has && strcmp(want, has)) {
            snprintf(msg, sizeof msg, "auth_ref '%s' holds a %s credential; route %s (%s) needs %s",
                     ref, has, id, driver, want);
            diagnose(r, "error", "auth_ref_provider_mismatch", id, "%s", msg);
        }
    }
    json_decref(slots);
    return rc;
}

/* --check-references: runs not yet terminal pinned to a route the control
 * plane does not have (only, with --route). Sessions have no route policy
 * and there are no schedules in this build, so runs are all that can hold
 * a stale route. */
static int
check_references(const struct cli *c, const json_t *routes, const char *only, struct report *r)
{
    char msg[600], limit[16];
    snprintf(limit, sizeof limit, "%d", REFERENCE_PAGE);
    for (const char *const *st = names_run_statuses; *st; st++) {
        const char *cursor = NULL;
        json_t *page = NULL;
        if (util_in_list(*st, names_terminal_statuses))
            continue;
        for (int n = 0; n < REFERENCE_MAX_PAGES; n++) {
            struct client_url url;
            json_t *next = NULL, *run;
            size_t i;
            client_url_path(&url, "/v1/runs");
            client_url_query(&url, "status", *st);
            client_url_query(&url, "page", "true");
            client_url_query(&url, "limit", limit);
            client_url_query(&url, "cursor", cursor);
            int rc = fetch(c, &url, "route_reference_check_failed", r, &next);
            json_decref(page);
            page = next;
            if (rc != EXIT_OK)
                return rc;
            json_array_foreach(json_object_get(page, "items"), i, run)
            {
                const char *route =
                    json_string_value(json_object_get(json_object_get(run, "request"), "provider"));
                if (route == NULL || (only && strcmp(only, route)) || routes_has(routes, route))
                    continue;
                snprintf(msg, sizeof msg,
                         "run %s (%s) is pinned to route %s, which the control plane does not "
                         "have: cancel it, or restore the route and let it run",
                         json_string_value(json_object_get(run, "run_id")), *st, route);
                diagnose(r, "error", "stale_run_route", route, "%s", msg);
            }
            json_t *pg = json_object_get(page, "pagination");
            cursor = json_string_value(json_object_get(pg, "next_cursor"));
            if (!json_is_true(json_object_get(pg, "has_more")) || cursor == NULL)
                break;
            if (n + 1 == REFERENCE_MAX_PAGES) {
                snprintf(msg, sizeof msg, "more than %d runs are %s: only the oldest were checked",
                         REFERENCE_MAX_PAGES * REFERENCE_PAGE, *st);
                diagnose(r, "warning", "route_reference_check_truncated", NULL, "%s", msg);
            }
        }
        json_decref(page);
    }
    return EXIT_OK;
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One canary: a disposable session and a run pinned to the route, which
 * must complete with the marker in its output. */
static json_t *
canary(const struct cli *c, const json_t *route, int64_t timeout_ms, struct report *r)
{
    const char *id = json_string_value(json_object_get(route, "route_id"));
    const char *model = json_string_value(json_object_get(route, "model"));
    unsigned char rnd[6];
    char session[96], hex[13], msg[600] = "";
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(session, sizeof session, "doctor-canary-%s", hex);
    int64_t t0 = util_monotonic_us() / 1000;
    struct client_url url;
    json_t *session_view = NULL, *run = NULL;
    const char *status = "failed";
    client_url_path(&url, "/v1/sessions");
    json_t *body = json_pack("{s:s}", "session_id", session);
    int rc = client_request(c, &(struct client_req){"POST", &url, body, NULL}, &session_view, NULL);
    json_decref(body);
    json_decref(session_view);
    body = json_pack("{s:s, s:s, s:s, s:s}", "content",
                     "Route canary: reply with exactly " CANARY_MARKER, "provider", id,
                     "source_plugin", "doctor", "source_kind", "route_canary");
    client_url_path(&url, "/v1/sessions/%s/runs", session);
    char key[CLIENT_KEY_BYTES];
    client_new_key(key);
    if (rc == EXIT_OK)
        rc = client_request(c, &(struct client_req){"POST", &url, body, key}, &run, NULL);
    json_decref(body);
    const char *run_id = json_string_value(json_object_get(run, "run_id"));
    while (rc == EXIT_OK && run_id) {
        const char *st = json_string_value(json_object_get(run, "status"));
        const char *text = json_string_value(
            json_object_get(json_array_get(json_object_get(run, "outputs"), 0), "content"));
        const char *error = json_string_value(json_object_get(run, "error"));
        if (st && util_in_list(st, names_terminal_statuses)) {
            int completed = !strcmp(st, "completed");
            int ok = completed && text && strstr(text, CANARY_MARKER);
            status = ok ? "passed" : "failed";
            if (ok)
                snprintf(msg, sizeof msg, "the route answered with the marker");
            else if (completed)
                snprintf(msg, sizeof msg, "the reply did not contain " CANARY_MARKER);
            else
                snprintf(msg, sizeof msg, "the run ended %s: %.500s", st, error ? error : "");
            break;
        }
        if (util_monotonic_us() / 1000 - t0 >= timeout_ms) {
            status = "timeout";
            snprintf(msg, sizeof msg, "the run was still %s after %lld ms", st ? st : "?",
                     (long long)timeout_ms);
            break;
        }
        sleep_ms(CANARY_POLL_MS);
        client_url_path(&url, "/v1/runs/%s", run_id);
        json_t *now = NULL;
        rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, &now, NULL);
        json_decref(run);
        run = now;
        run_id = json_string_value(json_object_get(run, "run_id"));
    }
    if (rc != EXIT_OK)
        snprintf(msg, sizeof msg, "the canary run could not be submitted or read (exit %d)", rc);
    if (strcmp(status, "passed"))
        diagnose(r, "error",
                 !strcmp(status, "timeout") ? "route_canary_timeout" : "route_canary_failed", id,
                 "%s", msg);
    json_t *out =
        json_pack("{s:s, s:O, s:s?, s:s, s:s?, s:s, s:I, s:s}", "route_id", id, "provider",
                  json_object_get(route, "provider"), "model", model, "session_id", session,
                  "run_id", run_id, "status", status, "duration_ms",
                  (json_int_t)(util_monotonic_us() / 1000 - t0), "message", msg);
    json_decref(run);
    return out;
}

int
cmd_doctor_routes(const struct cli *c, int argc, char **argv)
{
    const char *file = NULL, *default_route = NULL, *only = NULL;
    int auth = 0, references = 0, run_canary = 0, rc = EXIT_OK;
    int64_t timeout = CANARY_DEFAULT_TIMEOUT;
    const struct args_opt opts[] = {
        {.name = "routes-file", .str = &file},
        {.name = "default-route", .str = &default_route},
        {.name = "route", .str = &only},
        {.name = "check-auth", .flag = &auth},
        {.name = "check-references", .flag = &references},
        {.name = "canary", .flag = &run_canary},
        {.name = "canary-timeout-ms", .num = &timeout, .min = 1000, .max = 3600000},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    struct report r = {NULL, json_array(), json_array(), json_array()};
    json_t *inv = NULL, *canaries = json_array(), *routes = json_array();
    if (file)
        inv = routes_from_file(file, default_route, &r);
    else
        rc = routes_from_runtime(c, &r, &inv);
    /* Upstream's rule: what needs the running control plane's own routes
     * is an error diagnostic with a routes file, not a usage error. */
    if (file && references)
        diagnose(&r, "error", "route_reference_check_requires_runtime", NULL,
                 "--check-references compares the running control plane's routes with its "
                 "work; remove --routes-file%s",
                 NULL);
    if (file && run_canary)
        diagnose(&r, "error", "route_canary_requires_runtime", NULL,
                 "--canary runs through the running control plane's routes; remove "
                 "--routes-file%s",
                 NULL);
    if (rc == EXIT_OK && inv && auth)
        rc = check_auth(c, json_object_get(inv, "routes"), file != NULL, &r);
    if (rc == EXIT_OK && inv && references && !file)
        rc = check_references(c, json_object_get(inv, "routes"), only, &r);
    size_t i;
    json_t *rt;
    json_array_foreach(json_object_get(inv, "routes"), i, rt)
    {
        const char *id = json_string_value(json_object_get(rt, "route_id"));
        if (only && strcmp(only, id))
            continue;
        json_array_append(routes, rt);
        if (run_canary && !file && rc == EXIT_OK)
            json_array_append_new(canaries, canary(c, rt, timeout, &r));
    }
    if (only && json_array_size(routes) == 0 && inv)
        diagnose(&r, "error", "route_unknown", only, "no route %s", only);
    if (rc == EXIT_OK) {
        int ok = json_array_size(r.errors) == 0;
        json_t *dflt = json_object_get(inv, "default_route");
        r.doc = json_pack("{s:b, s:s, s:O, s:i, s:b, s:b, s:b, s:o, s:o, s:o, s:o, s:o}", "ok", ok,
                          "source", file ? file : "runtime", "default_route",
                          dflt ? dflt : json_null(), "route_count", (int)json_array_size(routes),
                          "auth_checked", auth, "reference_checked", references, "canary_checked",
                          run_canary, "routes", routes, "canaries", canaries, "diagnostics",
                          r.diagnostics, "warnings", r.warnings, "errors", r.errors);
        output_print(c, r.doc, NULL);
        rc = ok ? EXIT_OK : EXIT_GENERIC;
    } else {
        json_decref(routes);
        json_decref(canaries);
        json_decref(r.diagnostics);
        json_decref(r.warnings);
        json_decref(r.errors);
    }
    json_decref(r.doc);
    json_decref(inv);
    return rc;
}
