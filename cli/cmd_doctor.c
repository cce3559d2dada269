/*
 * `kheish doctor [--cors-origin ORIGIN]` (contract §7): the operator's
 * health check from outside. It reads /v1/status, probes /readyz, opens the
 * global SSE stream through the front end (nginx), makes an event (it
 * creates and ends a session named doctor-sse-probe-<hex>) and waits for
 * its frame, which must come at once and carry an id:, an event: and JSON
 * data (a proxy that buffers or rewrites the stream fails it), and with
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

#include <sodium.h>

#include "cmd.h"
#include "sse.h"
#include "util.h"

#define PROBE_TIMEOUT_MS  5000
#define PROBE_BODY_MAX    16384 /* bytes kept of a probe's answer (one SSE frame fits) */
#define PROBE_HEADER_MAX  512
#define PREFLIGHT_HEADERS "authorization,content-type"
#define SSE_HEADERS_MS    3000  /* upstream's doctor: the stream's headers */
#define SSE_EVENT_MS      5000  /* doctor's event, from its making to its frame */
#define SSE_BEAT_MS       12000 /* a read-only token's wait for a heartbeat */
#define SSE_FRAME_MAX     65536
#define SSE_PROBE_PREFIX  "doctor-sse-probe-"

/* One probe's answer: status, the headers doctor looks at, the body's start. */
struct probe {
    long status;
    char allow_origin[PROBE_HEADER_MAX], allow_methods[PROBE_HEADER_MAX],
        allow_headers[PROBE_HEADER_MAX], content_type[PROBE_HEADER_MAX];
    char body[PROBE_BODY_MAX + 1];
    size_t len;
    int headers_done;               /* the blank line after the headers came */
    const char *request_body;       /* JSON to send, or NULL */
    struct sse_parser *sse;         /* a stream's body goes here instead */
    struct curl_slist *request_hdr; /* freed by probe_close */
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
    if (len <= 2 && (s[0] == '\r' || s[0] == '\n'))
        p->headers_done = 1;
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        size_t k = strlen(wanted[i].name);
        if (len >= k && !strncasecmp(s, wanted[i].name, k))
            keep_header((char *)p + wanted[i].offset, s, len, k);
    }
    return len;
}

static size_t
on_body(char *s, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    size_t len = size * n, room = PROBE_BODY_MAX - p->len;
    if (p->sse) /* a frame the callback waited for ends the transfer */
        return sse_feed(p->sse, s, len) == 0 ? len : 0;
    memcpy(p->body + p->len, s, len < room ? len : room);
    p->len += len < room ? len : room;
    p->body[p->len] = '\0';
    return len;
}

/* A request of method to path (with the token when auth is set, and Origin
 * and the preflight's request headers when origin is set), not yet sent;
 * NULL when out of memory. */
static CURL *
probe_open(const struct cli *c, const char *method, const char *path, int auth, const char *origin,
           struct probe *p)
{
    char url[CLIENT_URL_MAX_BYTES + 512], line[PROBE_HEADER_MAX + 64];
    size_t base = strlen(c->base_url);
    while (base > 0 && c->base_url[base - 1] == '/')
        base--;
    snprintf(url, sizeof url, "%.*s%s", (int)base, c->base_url, path);
    if (auth && c->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->token);
        p->request_hdr = curl_slist_append(p->request_hdr, line);
        sodium_memzero(line, sizeof line);
    }
    if (origin) {
        snprintf(line, sizeof line, "Origin: %s", origin);
        p->request_hdr = curl_slist_append(p->request_hdr, line);
        p->request_hdr = curl_slist_append(p->request_hdr, "Access-Control-Request-Method: POST");
        p->request_hdr =
            curl_slist_append(p->request_hdr, "Access-Control-Request-Headers: " PREFLIGHT_HEADERS);
    }
    if (p->sse)
        p->request_hdr = curl_slist_append(p->request_hdr, "Accept: text/event-stream");
    if (p->request_body)
        p->request_hdr = curl_slist_append(p->request_hdr, "Content-Type: application/json");
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(p->error, sizeof p->error, "out of memory");
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOBODY, (long)!strcmp(method, "OPTIONS"));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, p->request_hdr);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, p->error);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (p->request_body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->request_body);
    return h;
}

static void
probe_close(CURL *h, struct probe *p)
{
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(p->request_hdr);
    p->request_hdr = NULL;
}

/* Sends a probe and reads its answer. Returns 0 when an HTTP answer came,
 * -1 with p->error otherwise. */
static int
probe(const struct cli *c, const char *method, const char *path, int auth, const char *origin,
      struct probe *p)
{
    CURL *h = probe_open(c, method, path, auth, origin, p);
    if (h == NULL)
        return -1;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)PROBE_TIMEOUT_MS);
    CURLcode cc = curl_easy_perform(h);
    probe_close(h, p);
    if (cc != CURLE_OK && p->status == 0) {
        if (!p->error[0])
            snprintf(p->error, sizeof p->error, "%s", curl_easy_strerror(cc));
        return -1;
    }
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
    return json_integer_value(output_lookup(o, path));
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

/* The frame check_sse waits for: the event doctor made (a frame whose data
 * names its session), or any frame when it could make none. */
struct sse_wait {
    const char *session; /* NULL: any frame */
    int got;
    char why[128]; /* what is wrong with the frame; "" when nothing */
};

static int
on_frame(void *arg, const struct sse_frame *f)
{
    struct sse_wait *w = arg;
    if (w->session && !strstr(f->data, w->session))
        return 0;
    json_t *data = json_loadb(f->data, f->data_len, 0, NULL);
    w->got = 1;
    if (!strcmp(f->event, "message")) /* the parser's name for a frame without one */
        snprintf(w->why, sizeof w->why, "its frame has no event: line");
    else if (w->session && f->id[0] == '\0')
        snprintf(w->why, sizeof w->why, "its frame has no id: line");
    else if (!json_is_object(data))
        snprintf(w->why, sizeof w->why, "its frame's data is not a JSON object");
    json_decref(data);
    return 1; /* stops the transfer */
}

/* Runs m's transfer until *flag is set, it ends, or ms pass. Returns *flag. */
static int
drive(CURLM *m, const int *flag, int64_t ms)
{
    int64_t end = util_monotonic_us() + ms * 1000;
    int running = 1;
    while (!*flag && running && util_monotonic_us() < end)
        if (curl_multi_perform(m, &running) != CURLM_OK ||
            (!*flag && running && curl_multi_poll(m, NULL, 0, 50, NULL) != CURLM_OK))
            break;
    return *flag;
}

/* Creates (end = 0) or ends (end = 1) doctor's probe session. Returns 1
 * when done, 0 when the token may not (read-only), -1 otherwise. */
static int
probe_session(const struct cli *c, const char *session, int end)
{
    char path[128], body[128];
    snprintf(path, sizeof path, end ? "/v1/sessions/%s/end" : "/v1/sessions", session);
    snprintf(body, sizeof body, end ? "{}" : "{\"session_id\":\"%s\"}", session);
    struct probe p = {.request_body = body};
    if (probe(c, "POST", path, 1, NULL, &p) != 0)
        return -1;
    return p.status >= 200 && p.status < 300 ? 1 : p.status == 403 ? 0 : -1;
}

/* The global event stream through the front end: its headers within
 * SSE_HEADERS_MS, then the frame of an event doctor makes within
 * SSE_EVENT_MS, well formed (id:, event:, JSON data). A proxy that buffers
 * the stream delays the frame; one that rewrites it breaks it. With a
 * read-only token doctor cannot make an event and takes the first frame,
 * a heartbeat at the latest. */
static void
check_sse(const struct cli *c, struct report *r, int *reachable)
{
    struct sse_wait w = {0};
    struct sse_parser parser = {.max_bytes = SSE_FRAME_MAX, .fn = on_frame, .arg = &w};
    struct probe p = {.sse = &parser};
    unsigned char rnd[6];
    char session[sizeof SSE_PROBE_PREFIX + 12], hex[13], why[256] = "", ok[160];
    CURL *h = probe_open(c, "GET", "/v1/events/stream", 1, NULL, &p);
    CURLM *m = h ? curl_multi_init() : NULL;
    int headers =
        m && curl_multi_add_handle(m, h) == CURLM_OK && drive(m, &p.headers_done, SSE_HEADERS_MS);
    if (h)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p.status);
    *reachable = headers && p.status == 200;
    int answered = headers || p.error[0] == '\0'; /* connected at least */
    if (!headers && p.error[0])
        snprintf(why, sizeof why, "%s", p.error);
    else if (!headers)
        snprintf(why, sizeof why,
                 "its headers did not arrive within %d ms: the stream is buffered or the relays "
                 "are stuck",
                 SSE_HEADERS_MS);
    else if (p.status != 200)
        snprintf(why, sizeof why, "the stream was refused (HTTP %ld)", p.status);
    else if (strncasecmp(p.content_type, "text/event-stream", 17))
        snprintf(why, sizeof why, "the answer is not text/event-stream");
    if (*reachable) {
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        snprintf(session, sizeof session, SSE_PROBE_PREFIX "%s", hex);
        int made = probe_session(c, session, 0);
        w.session = made == 1 ? session : NULL;
        int64_t t0 = util_monotonic_us();
        int got = made >= 0 && drive(m, &w.got, made ? SSE_EVENT_MS : SSE_BEAT_MS);
        long ms = (long)((util_monotonic_us() - t0) / 1000);
        if (made == 1)
            probe_session(c, session, 1);
        if (made < 0)
            snprintf(why, sizeof why, "doctor could not make an event (creating a session failed)");
        else if (!got && made)
            snprintf(why, sizeof why,
                     "the event doctor made did not arrive within %d ms: the stream is buffered",
                     SSE_EVENT_MS);
        else if (!got)
            snprintf(why, sizeof why, "no frame within %d ms: the stream is buffered", SSE_BEAT_MS);
        else if (w.why[0])
            snprintf(why, sizeof why, "the frame is malformed: %s", w.why);
        snprintf(ok, sizeof ok, "%s arrived through the stream in %ld ms, well formed",
                 made ? "an event doctor made" : "the first frame (a read-only token makes none)",
                 ms);
    }
    if (m) {
        curl_multi_remove_handle(m, h);
        curl_multi_cleanup(m);
    }
    if (h)
        probe_close(h, &p);
    sse_free(&parser);
    if (why[0])
        check(r, "events_sse", answered ? "events_sse" : "events_unreachable", "error",
              !answered                            ? "check nginx and the relays (kheish status)"
              : p.status == 401 || p.status == 403 ? "check the token (--token-file)"
              : p.status != 0 && p.status != 200
                  ? "check the base URL: this is not a Kheish stream"
                  : "nginx must pass the stream as it comes (proxy_buffering off, no "
                    "sub_filter or gzip on /v1/*/stream)",
              NULL, "the event stream failed: %s", why);
    else
        check(r, "events_sse", "events_sse", "info", NULL, NULL, "%s", ok);
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

/* Why /v1/status could not be read, by the CLI's exit code. */
static const char *
exit_reason(int rc)
{
    return rc == EXIT_UNREACHABLE   ? "nothing answered, or nginx had no FastCGI process behind it"
           : rc == EXIT_AUTH        ? "the token was refused (401/403)"
           : rc == EXIT_SCHEMA      ? "what answered is not a Kheish control plane"
           : rc == EXIT_UNAVAILABLE ? "it timed out, or answered 429/503"
                                    : "the request failed";
}

static void
check_daemon(int rc, const json_t *st, struct report *r)
{
    const char *state = json_string_value(json_object_get(st, "status"));
    if (rc != EXIT_OK)
        check(r, "daemon_status", "status_unreachable", "error", "kheish status says why", NULL,
              "/v1/status could not be read: %s", exit_reason(rc));
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

    if ((holder == NULL || num(st, "runners.live_count") == 0) && num(st, "runs.queued") > 0)
        check(r, "state_root_lock", "state_root_lock", "error",
              "see runners in kheish status and the runner logs; a stack without runners needs "
              "a routes file",
              holder,
              holder ? "runs are queued and the lock holder %s has stopped beating"
                     : "runs are queued and no runner holds the maintenance lock",
              holder);
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
    for (const char *p = origin; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "kheish: --cors-origin holds a control character\n");
            return ARGS_USAGE;
        }
    if (origin && *origin == '\0') {
        fprintf(stderr, "kheish: --cors-origin is empty\n");
        return ARGS_USAGE;
    }
    struct report r = {json_array(), json_array(), json_array()};
    json_t *st = NULL;
    /* Its failure is said on stderr: stdout holds the report alone. */
    struct cli quiet = *c;
    quiet.json = 0;
    int rc = cmd_status_fetch(&quiet, &st);
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
        json_object_set_new(doc, "status_error", json_string(exit_reason(rc)));
    if (c->json)
        output_json(stdout, doc);
    else
        print_pretty(doc);
    json_decref(doc);
    json_decref(st);
    return rc != EXIT_OK ? rc : ok ? EXIT_OK : EXIT_GENERIC;
}
