/*
 * `kheish doctor routes` (contract §6): the routes, their readiness and,
 * with --canary, a real run through each. With --routes-file it only lints
 * that file (no daemon needed); otherwise it reads the running control
 * plane's routes from /v1/status. Prints {ok, source, default_route,
 * route_count, auth_checked, reference_checked, canary_checked, routes,
 * canaries, diagnostics, warnings, errors}; exits 1 when not ok.
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
    json_array_append_new(!strcmp(severity, "error") ? r->errors : r->warnings, json_string(msg));
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
routes_from_runtime(const struct cli *c, int check_auth, struct report *r, json_t **inv)
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
    size_t i;
    json_t *rt;
    json_array_foreach(json_object_get(pr, "routes"), i, rt)
    {
        const char *st = json_string_value(json_object_get(rt, "state"));
        if (check_auth && st && strcmp(st, "ok"))
            diagnose(r, !strcmp(st, "error") ? "error" : "warning",
                     json_string_value(json_object_get(rt, "code")),
                     json_string_value(json_object_get(rt, "route_id")), "%s",
                     json_string_value(json_object_get(rt, "message")));
    }
    json_decref(status);
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
    int check_auth = 0, run_canary = 0, rc = EXIT_OK;
    int64_t timeout = CANARY_DEFAULT_TIMEOUT;
    const struct args_opt opts[] = {
        {.name = "routes-file", .str = &file},
        {.name = "default-route", .str = &default_route},
        {.name = "route", .str = &only},
        {.name = "check-auth", .flag = &check_auth},
        {.name = "canary", .flag = &run_canary},
        {.name = "canary-timeout-ms", .num = &timeout, .min = 1000, .max = 3600000},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    if (file && (check_auth || run_canary)) {
        fprintf(stderr, "kheish: --check-auth and --canary need the running control plane, "
                        "not --routes-file\n");
        return ARGS_USAGE;
    }
    struct report r = {NULL, json_array(), json_array(), json_array()};
    json_t *inv = NULL, *canaries = json_array(), *routes = json_array();
    if (file)
        inv = routes_from_file(file, default_route, &r);
    else
        rc = routes_from_runtime(c, check_auth, &r, &inv);
    size_t i;
    json_t *rt;
    json_array_foreach(json_object_get(inv, "routes"), i, rt)
    {
        const char *id = json_string_value(json_object_get(rt, "route_id"));
        if (only && strcmp(only, id))
            continue;
        json_array_append(routes, rt);
        if (run_canary)
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
                          "auth_checked", check_auth, "reference_checked", 0, "canary_checked",
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
