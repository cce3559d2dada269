/*
 * `kheish doctor [--cors-origin ORIGIN]` (contract §7): the operator's
 * health check from outside. It reads /v1/status, probes /readyz, opens the
 * global SSE stream at cursor 0 and reads its first frame (an event must
 * carry an id: and an event: line, as upstream's probes require), and with
 * --cors-origin sends the browser's preflight. Each finding is a check
 * {name, code, ok, severity, message, action?, related_id?} whose code is
 * its name but for the probes that got no answer (upstream's rule); every health
 * warning of /v1/status that is not info becomes one more. Exits 1 when a
 * check has severity error, or with the request's own code when /v1/status
 * cannot be read.
 */
#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cmd.h"
#include "util.h"

#define PROBE_TIMEOUT_MS    5000
#define PROBE_BODY_MAX      16384 /* bytes kept of a probe's answer (one SSE frame fits) */
#define PROBE_HEADER_MAX    512
#define PREFLIGHT_HEADERS   "authorization,content-type"
#define FIRST_FRAME_TIMEOUT 5000

/* One probe's answer: status, the headers doctor looks at, the body's start. */
struct probe {
    long status;
    char allow_origin[PROBE_HEADER_MAX], allow_methods[PROBE_HEADER_MAX],
        allow_headers[PROBE_HEADER_MAX], content_type[PROBE_HEADER_MAX];
    char body[PROBE_BODY_MAX + 1];
    size_t len;
    int sse;       /* stop at the end of the first frame */
    int got_frame; /* it came */
    char error[CURL_ERROR_SIZE];
};

static void
keep_header(char *dst, const char *line, size_t n, size_t skip)
{
    size_t i = skip, end = n;
    while (i < end && (line[i] == ' ' || line[i] == '\t'))
        i++;
    while (end > i && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
        end--;
    snprintf(dst, PROBE_HEADER_MAX, "%.*s", (int)(end - i), line + i);
}

static size_t
on_header(char *s, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    static const struct {
        const char *name;
        size_t offset;
    } wanted[] = {
        {"access-control-allow-origin:", offsetof(struct probe, allow_origin)},
        {"access-control-allow-methods:", offsetof(struct probe, allow_methods)},
        {"access-control-allow-headers:", offsetof(struct probe, allow_headers)},
        {"content-type:", offsetof(struct probe, content_type)},
    };
    size_t len = size * n;
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        size_t k = strlen(wanted[i].name);
        if (len >= k && !strncasecmp(s, wanted[i].name, k))
            keep_header((char *)p + wanted[i].offset, s, len, k);
    }
    return len;
}

/* The end of the first frame: a blank line, however lines end. */
static int
frame_ended(const char *b)
{
    return strstr(b, "\n\n") || strstr(b, "\r\n\r\n") || strstr(b, "\r\r");
}

static size_t
on_body(char *s, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    size_t len = size * n, room = PROBE_BODY_MAX - p->len;
    memcpy(p->body + p->len, s, len < room ? len : room);
    p->len += len < room ? len : room;
    p->body[p->len] = '\0';
    if (p->sse && frame_ended(p->body)) {
        p->got_frame = 1;
        return 0; /* enough: ends the transfer */
    }
    return len;
}

/* Sends method path (with the token when auth is set, and Origin and the
 * preflight's request headers when origin is set). Returns 0 when an HTTP
 * answer came, -1 with p->error otherwise. */
static int
probe(const struct cli *c, const char *method, const char *path, int auth, const char *origin,
      struct probe *p)
{
    char url[CLIENT_URL_MAX_BYTES + 512], line[PROBE_HEADER_MAX + 64];
    size_t base = strlen(c->base_url);
    while (base > 0 && c->base_url[base - 1] == '/')
        base--;
    snprintf(url, sizeof url, "%.*s%s", (int)base, c->base_url, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    if (auth && c->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
        hdr = curl_slist_append(hdr, line);
    }
    if (origin) {
        snprintf(line, sizeof line, "Origin: %s", origin);
        hdr = curl_slist_append(hdr, line);
        hdr = curl_slist_append(hdr, "Access-Control-Request-Method: POST");
        hdr = curl_slist_append(hdr, "Access-Control-Request-Headers: " PREFLIGHT_HEADERS);
    }
    if (p->sse)
        hdr = curl_slist_append(hdr, "Accept: text/event-stream");
    if (h == NULL) {
        snprintf(p->error, sizeof p->error, "out of memory");
        curl_slist_free_all(hdr);
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOBODY, (long)!strcmp(method, "OPTIONS"));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     (long)(p->sse ? FIRST_FRAME_TIMEOUT : PROBE_TIMEOUT_MS));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && p->got_frame) && p->status == 0) {
        if (!p->error[0])
            snprintf(p->error, sizeof p->error, "%s", curl_easy_strerror(cc));
        return -1;
    }
    if (cc == CURLE_OPERATION_TIMEDOUT && p->sse && !p->got_frame)
        snprintf(p->error, sizeof p->error, "no complete frame within %d ms", FIRST_FRAME_TIMEOUT);
    return 0;
}

/* ---- the report ---------------------------------------------------------- */

struct report {
    json_t *checks, *warnings, *errors;
};

/* Adds a check; severity is "info" when ok. msg is printf-like with one
 * string argument at most (the callers' values are the daemon's). */
static void
check(struct report *r, const char *name, const char *code, const char *severity,
      const char *action, const char *related_id, const char *fmt, const char *arg)
{
    char msg[768];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    int ok = !strcmp(severity, "info");
    json_array_append_new(r->checks,
                          json_pack("{s:s, s:s, s:b, s:s, s:s, s:s?, s:s?}", "name", name, "code",
                                    code, "ok", ok, "severity", severity, "message", msg, "action",
                                    action, "related_id", related_id));
    char line[900];
    snprintf(line, sizeof line, "%s: %s", name, msg);
    if (!ok)
        json_array_append_new(!strcmp(severity, "error") ? r->errors : r->warnings,
                              json_string(line));
}

static json_int_t
num(const json_t *o, const char *path)
{
    char key[64];
    const char *dot;
    while ((dot = strchr(path, '.'))) {
        snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    return json_integer_value(json_object_get(o, path));
}

static int
flag(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static void
check_readyz(const struct cli *c, struct report *r, int *reachable)
{
    struct probe p = {0};
    *reachable = probe(c, "GET", "/readyz", 0, NULL, &p) == 0;
    if (!*reachable)
        check(r, "readyz", "readyz_unreachable", "error", "check nginx and kheish-fcgi (kheish up)",
              NULL, "/readyz did not answer: %s", p.error);
    else if (p.status != 200)
        check(r, "readyz", "readyz", "error", "read the readiness checks: curl <base-url>/readyz",
              NULL, "/readyz answered %s",
              p.status == 503 ? "503: not ready" : "an unexpected status");
    else
        check(r, "readyz", "readyz", "info", NULL, NULL, "/readyz answered 200", NULL);
}

/* 1 when the frame text has a line starting with prefix. */
static int
has_line(const char *frame, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = frame; l; l = strpbrk(l, "\r\n") ? strpbrk(l, "\r\n") + 1 : NULL)
        if (!strncmp(l, prefix, n))
            return 1;
    return 0;
}

/* The first frame of /v1/events/stream?cursor=0 must come at once, through
 * whatever proxy is in front: the oldest retained event, with its id: and
 * event: lines, or a heartbeat when nothing is retained. */
static void
check_sse(const struct cli *c, struct report *r, int *reachable)
{
    struct probe p = {.sse = 1};
    int rc = probe(c, "GET", "/v1/events/stream?cursor=0", 1, NULL, &p);
    *reachable = rc == 0 && p.status == 200;
    const char *why = NULL;
    if (rc != 0)
        why = p.error;
    else if (p.status != 200)
        why = "the stream was refused (see `kheish events stream --cursor 0`)";
    else if (strncasecmp(p.content_type, "text/event-stream", 17))
        why = "the answer is not text/event-stream";
    else if (!p.got_frame)
        why = p.error[0] ? p.error : "the stream ended before its first frame";
    else if (!has_line(p.body, "event:") || !has_line(p.body, "data:"))
        why = "its first frame lacks an event: or a data: line";
    else if (!has_line(p.body, "event: heartbeat") && !has_line(p.body, "id:"))
        why = "its first frame is an event without an id: line";
    if (why)
        check(r, "events_sse", rc != 0 ? "events_unreachable" : "events_sse", "error",
              rc != 0 ? "check nginx and the relays (kheish status)"
                      : "nginx must pass the stream unbuffered (proxy_buffering off)",
              NULL, "the event stream failed: %s", why);
    else
        check(r, "events_sse", "events_sse", "info", NULL, NULL,
              "the event stream's first frame arrived with an id and an event", NULL);
}

static void
check_cors(const struct cli *c, const char *origin, const json_t *cp, struct report *r)
{
    const char *policy = json_string_value(json_object_get(cp, "cors_policy"));
    if (origin == NULL) {
        check(r, "control_plane_cors", "control_plane_cors", "info", NULL, NULL, "CORS policy: %s",
              policy ? policy : "unknown");
        return;
    }
    struct probe p = {0};
    if (probe(c, "OPTIONS", "/v1/status", 0, origin, &p) != 0) {
        check(r, "control_plane_cors", "control_plane_cors", "error", NULL, NULL,
              "the preflight did not get an answer: %s", p.error);
        return;
    }
    const char *why = NULL;
    if (p.status < 200 || p.status > 299)
        why = "it was refused";
    else if (!strcmp(p.allow_origin, "*"))
        why = "it allows any origin (*)";
    else if (p.allow_origin[0] && strcmp(p.allow_origin, origin))
        why = "it allows another origin than the one asked";
    else if (!p.allow_origin[0])
        why = "the origin is not allowed (no Access-Control-Allow-Origin)";
    else if (!strcasestr(p.allow_methods, "GET") || !strcasestr(p.allow_methods, "POST"))
        why = "GET or POST is not among the allowed methods";
    else if (!strcasestr(p.allow_headers, "authorization") ||
             !strcasestr(p.allow_headers, "content-type"))
        why = "Authorization or Content-Type is not among the allowed headers";
    if (why)
        check(r, "control_plane_cors", "control_plane_cors", "error",
              "list the origin in --http-cors-allow-origin / KHEISH_HTTP_CORS_ALLOW_ORIGINS",
              origin, "the preflight for this origin is not usable: %s", why);
    else
        check(r, "control_plane_cors", "control_plane_cors", "info", NULL, origin,
              "the preflight allows %s with GET, POST, Authorization and Content-Type", origin);
}

static void
check_daemon(int rc, const json_t *st, struct report *r)
{
    const char *state = json_string_value(json_object_get(st, "status"));
    if (rc != EXIT_OK)
        check(r, "daemon_status", "status_unreachable", "error", "kheish status says why", NULL,
              "/v1/status could not be read", NULL);
    else if (state && !strcmp(state, "draining"))
        check(r, "daemon_status", "daemon_status", "error", "wait for the restart to end", NULL,
              "the control plane is draining", NULL);
    else
        check(r, "daemon_status", "daemon_status", "info", NULL, NULL, "the control plane answers",
              NULL);
}

/* Token files that others on the host may read, for those of the paths the
 * control plane reports that exist where doctor runs. */
static void
check_token_modes(const json_t *files, struct report *r)
{
    size_t i, seen = 0;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        struct stat sb;
        if (path == NULL || stat(path, &sb) != 0)
            continue;
        seen++;
        if (sb.st_mode & 077) {
            check(r, "token_files", "token_files", "error", "chmod 600 the file", path,
                  "%s can be read by others than its owner", path);
            return;
        }
    }
    check(r, "token_files", "token_files", "info", NULL, NULL, "%s",
          seen ? "every token file is private to its owner"
               : "no token file is on this host: modes not checked");
}

/* The checks that read /v1/status. */
static void
check_status(const json_t *st, struct report *r)
{
    const json_t *cp = json_object_get(st, "control_plane");
    const json_t *ev = json_object_get(st, "events");
    const json_t *pr = json_object_get(st, "provider_readiness");
    const char *holder = json_string_value(
        json_object_get(json_object_get(st, "runners"), "maintenance_lock_holder"));

    if (num(ev, "replay_gap_count") > 0 || num(ev, "stream_lagged_event_count") > 0)
        check(r, "events_status", "events_status", "warning",
              "see events in kheish status: a client missed events or lagged", NULL,
              "the event stream reports gaps or lagged subscribers", NULL);
    else
        check(r, "events_status", "events_status", "info", NULL, NULL, "no gaps, no lag", NULL);

    if (flag(cp, "externally_exposed_without_auth"))
        check(r, "control_plane_auth", "control_plane_auth", "error",
              "give a token file (--http-admin-token-file) or bind to loopback", NULL,
              "auth is off on a non-loopback bind", NULL);
    else if (flag(cp, "auth_duplicate_token"))
        check(r, "control_plane_auth", "control_plane_auth", "error",
              "give the read-only role a token of its own", NULL,
              "the admin and read-only tokens are the same: every token is refused", NULL);
    else if (flag(cp, "auth_enabled") && !flag(cp, "auth_effective_admin_token_available"))
        check(r, "control_plane_auth", "control_plane_auth", "error", "fix the admin token file",
              NULL, "no admin token is in force", NULL);
    else if (num(cp, "auth_token_file_error_count") > 0)
        check(r, "control_plane_auth", "control_plane_auth", "warning",
              "see control_plane.auth_token_files in kheish status", NULL,
              "a token file cannot be read", NULL);
    else
        check(r, "control_plane_auth", "control_plane_auth", "info", NULL, NULL, "%s",
              flag(cp, "auth_enabled") ? "bearer auth is on" : "auth is off (loopback only)");

    if (!json_is_object(pr) || json_array_size(json_object_get(pr, "routes")) == 0)
        check(r, "routes", "routes", "error", "start the stack with --routes-file", NULL,
              "the control plane has no routes", NULL);
    else if (json_is_null(json_object_get(pr, "default_route")) ||
             !json_object_get(pr, "default_route"))
        check(r, "routes", "routes", "error", "set default_route in the routes file", NULL,
              "no default route", NULL);
    else
        check(r, "routes", "routes", "info", NULL, NULL, "default route %s",
              json_string_value(json_object_get(pr, "default_route")));

    json_int_t route_errors = num(st, "health.route_error_count");
    if (route_errors > 0)
        check(r, "provider_readiness", "provider_readiness", "error",
              "kheish doctor routes --check-auth", NULL, "a route is not ready", NULL);
    else
        check(r, "provider_readiness", "provider_readiness", "info", NULL, NULL,
              "no route reports an error", NULL);

    if (!flag(json_object_get(st, "storage"), "ok"))
        check(r, "storage", "storage", "error", "see storage.probes in kheish status", NULL,
              "a storage write probe failed", NULL);
    else
        check(r, "storage", "storage", "info", NULL, NULL, "every write probe passed", NULL);

    if (holder == NULL && num(st, "runs.queued") > 0)
        check(r, "state_root_lock", "state_root_lock", "error",
              "start a runner (kheish up --runners N)", NULL,
              "runs are queued and no runner holds the maintenance lock", NULL);
    else
        check(r, "state_root_lock", "state_root_lock", "info", NULL, holder,
              holder ? "held by %s" : "no run is queued", holder);

    const char *debug =
        json_string_value(json_object_get(json_object_get(st, "runtime"), "debug_level"));
    if (debug && !strcmp(debug, "full"))
        check(r, "debug_level", "debug_level", "error", "kheish runtime set-debug-level redacted",
              NULL, "the debug level is full: captures keep prompts and outputs unredacted", NULL);
    else
        check(r, "debug_level", "debug_level", "info", NULL, NULL, "the debug level is %s",
              debug ? debug : "unknown");

    check_token_modes(json_object_get(cp, "auth_token_files"), r);

    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(json_object_get(st, "health"), "warnings"), i, w)
    {
        const char *sev = json_string_value(json_object_get(w, "severity"));
        const char *code = json_string_value(json_object_get(w, "code"));
        if (!sev || !code || !strcmp(sev, "info"))
            continue;
        check(r, code, code, !strcmp(sev, "error") ? "error" : "warning",
              json_string_value(json_object_get(w, "action")),
              json_string_value(json_object_get(w, "related_id")), "%s",
              json_string_value(json_object_get(w, "message")));
    }
}

static void
print_pretty(const json_t *doc)
{
    size_t i;
    json_t *ck;
    json_array_foreach(json_object_get(doc, "checks"), i, ck)
    {
        const char *sev = json_string_value(json_object_get(ck, "severity"));
        const char *msg = json_string_value(json_object_get(ck, "message"));
        const char *action = json_string_value(json_object_get(ck, "action"));
        printf("%-5s %-24s ",
               !strcmp(sev, "info")    ? "ok"
               : !strcmp(sev, "error") ? "ERROR"
                                       : "warn",
               json_string_value(json_object_get(ck, "name")));
        output_text(stdout, msg, strlen(msg), OUTPUT_CELL_MAX_BYTES);
        if (action && strcmp(sev, "info")) {
            fputs(" (", stdout);
            output_text(stdout, action, strlen(action), OUTPUT_CELL_MAX_BYTES);
            putchar(')');
        }
        putchar('\n');
    }
    printf("%s\n", flag(doc, "ok") ? "doctor: ok" : "doctor: errors found");
}

int
cmd_doctor(const struct cli *c, int argc, char **argv)
{
    const char *origin = NULL;
    const struct args_opt opts[] = {{.name = "cors-origin", .str = &origin}, {0}};
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    struct report r = {json_array(), json_array(), json_array()};
    struct client_url url;
    json_t *st = NULL;
    client_url_path(&url, "/v1/status");
    int rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, &st, NULL);
    int readyz = 0, sse = 0;
    check_daemon(rc, st, &r);
    check_readyz(c, &r, &readyz);
    check_sse(c, &r, &sse);
    if (rc == EXIT_OK) {
        check_status(st, &r);
        check_cors(c, origin, json_object_get(st, "control_plane"), &r);
    }
    int ok = json_array_size(r.errors) == 0;
    json_t *doc = json_pack("{s:b, s:O?, s:I, s:I, s:I, s:b, s:b, s:o, s:o, s:o}", "ok", ok,
                            "status", st, "session_count", num(st, "sessions.total"),
                            "pending_approvals", num(st, "runs.pending_approval_count"),
                            "pending_questions", num(st, "runs.pending_question_count"),
                            "readyz_reachable", readyz, "events_stream_reachable", sse, "checks",
                            r.checks, "warnings", r.warnings, "errors", r.errors);
    if (rc != EXIT_OK)
        json_object_set_new(doc, "status_error", json_string("the status could not be read"));
    if (c->json)
        output_json(stdout, doc);
    else
        print_pretty(doc);
    json_decref(doc);
    json_decref(st);
    return rc != EXIT_OK ? rc : ok ? EXIT_OK : EXIT_GENERIC;
}
