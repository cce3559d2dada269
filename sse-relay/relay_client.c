#include "relay_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "problem.h"
#include "uri.h"
#include "util.h"

/* Splits the head in place: request line, then "Name: value" lines. */
static int
parse_head(char *buf, struct relay_request *h)
{
    memset(h, 0, sizeof *h);
    char *line = buf, *end = strstr(buf, "\r\n");
    if (end == NULL)
        return -1;
    *end = '\0';
    h->method = strtok_r(line, " ", &line);
    h->target = strtok_r(NULL, " ", &line);
    const char *version = strtok_r(NULL, " ", &line);
    if (!h->method || !h->target || !version || strncmp(version, "HTTP/1.", 7))
        return -1;
    for (line = end + 2; *line && strncmp(line, "\r\n", 2) != 0; line = end + 2) {
        end = strstr(line, "\r\n");
        if (end == NULL)
            return -1;
        *end = '\0';
        char *colon = strchr(line, ':');
        if (colon == NULL)
            return -1;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        static const struct {
            const char *name;
            size_t offset;
        } wanted[] = {
            {"authorization", offsetof(struct relay_request, authorization)},
            {"origin", offsetof(struct relay_request, origin)},
            {"last-event-id", offsetof(struct relay_request, last_event_id)},
            {"x-real-ip", offsetof(struct relay_request, real_ip)},
            {"x-real-port", offsetof(struct relay_request, real_port)},
            {"x-request-id", offsetof(struct relay_request, request_id)},
        };
        for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
            const char **dst = (const char **)((char *)h + wanted[i].offset);
            if (strcasecmp(line, wanted[i].name))
                continue;
            h->duplicate_origin |= *dst && i == 1;
            h->duplicate_cursor |= *dst && i == 2;
            *dst = v;
        }
    }
    return 0;
}

/* An event cursor: a decimal u64; values past the newest id are clamped
 * later anyway, so anything above INT64_MAX becomes INT64_MAX. */
static int
parse_cursor(const char *s, int64_t *out)
{
    if (*s == '\0' || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
        return -1;
    unsigned long long v = strtoull(s, NULL, 10);
    *out = v > INT64_MAX ? INT64_MAX : (int64_t)v;
    return 0;
}

/* The answer is queued: flush it, then close. */
static void
closing(struct relay_client *c)
{
    c->state = CLIENT_CLOSING;
    c->close_at_ms = util_monotonic_us() / 1000 + RELAY_CLOSE_GRACE_MS;
}

void
relay_client_answer(struct relay_client *c, int status, const char *headers, const json_t *doc)
{
    /* A problem's title is its reason phrase. */
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    const char *reason = status == 204   ? "No Content"
                         : status == 200 ? "OK"
                                         : json_string_value(json_object_get(doc, "title"));
    char head[2048], type[96] = "";
    if (body)
        snprintf(type, sizeof type, "Content-Type: application/%sjson\r\nContent-Length: %zu\r\n",
                 status >= 400 ? "problem+" : "", strlen(body));
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n%sCache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                     status, reason, type, headers);
    if (n > 0 && (size_t)n < sizeof head)
        relay_client_queue(c, head, (size_t)n);
    if (body)
        relay_client_queue(c, body, strlen(body));
    free(body);
    closing(c);
}

void
relay_client_refuse(struct relay_client *c, int status, const char *domain, const char *code,
                    const char *detail, const char *headers)
{
    json_t *p = problem_doc(status, domain, code, detail);
    relay_client_answer(c, status, headers, p);
    json_decref(p);
}

/* The input wait a path names, PREFIX<session_id>/<run_id> and nothing
 * else (no id can be a dot segment, so nginx never routes such a path to a
 * stream location): 1, or -2 (a bad id). */
static int
route_wait(struct relay_client *c, const char *ids)
{
    const char *slash = strchr(ids, '/');
    if (slash == NULL)
        return -2;
    c->session_id = strndup(ids, (size_t)(slash - ids));
    c->run_id = strdup(slash + 1);
    return c->session_id && c->run_id && uri_valid_id(c->session_id) && uri_valid_id(c->run_id)
               ? 1
               : -2;
}

/* What a path names: 0 (a stream), 1 (an input wait), -1 (nothing), -2 (a
 * bad id). */
static int
route(struct relay_client *c, const char *path, const char *query)
{
    static const char sessions[] = "/v1/sessions/", runs[] = "/v1/runs/",
                      wait[] = URI_INPUT_WAIT_PREFIX;
    const char *tail = NULL;
    char **filter = NULL;
    if (!strncmp(path, wait, sizeof wait - 1))
        return route_wait(c, path + sizeof wait - 1);
    if (!strcmp(path, "/v1/events/stream")) {
        /* ?session_id=&run_id= on the global stream; cursor is read later */
        for (const char *p = query; p && *p;) {
            size_t len = strcspn(p, "&");
            const char *eq = memchr(p, '=', len);
            char *name = uri_pct_decode(p, eq ? (size_t)(eq - p) : len, 1);
            char *value = eq ? uri_pct_decode(eq + 1, len - (size_t)(eq - p) - 1, 1) : NULL;
            char **dst = !name                         ? NULL
                         : !strcmp(name, "session_id") ? &c->session_id
                         : !strcmp(name, "run_id")     ? &c->run_id
                                                       : NULL;
            free(name);
            if (dst && (*dst || !value || !uri_valid_id(value))) {
                free(value);
                return -2;
            }
            if (dst)
                *dst = value;
            else
                free(value);
            p += len + (p[len] == '&');
        }
        return 0;
    }
    if (!strncmp(path, sessions, sizeof sessions - 1))
        tail = path + sizeof sessions - 1, filter = &c->session_id;
    else if (!strncmp(path, runs, sizeof runs - 1))
        tail = path + sizeof runs - 1, filter = &c->run_id;
    const char *slash = tail ? strchr(tail, '/') : NULL;
    if (slash == NULL || strcmp(slash, "/stream"))
        return -1;
    *filter = strndup(tail, (size_t)(slash - tail));
    return *filter && uri_valid_id(*filter) ? 0 : -2;
}

/* The (still encoded) value of a query parameter and its length, or NULL;
 * *twice when there is more than one. name ends with '='. */
static const char *
query_param(const char *query, const char *name, size_t *len, int *twice)
{
    const char *v = NULL;
    size_t k = strlen(name);
    for (const char *p = query; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n >= k && !strncmp(p, name, k)) {
            *twice |= v != NULL;
            v = p + k;
            *len = n - k;
        }
        p += n + (p[n] == '&');
    }
    return v;
}

/* 1 when every parameter of query is one of the space-separated names of
 * allowed, as the API's routes refuse parameters they do not read. */
static int
query_known(const char *query, const char *allowed)
{
    for (const char *p = query; p && *p;) {
        size_t n = strcspn(p, "&");
        if (n > 0 && !util_has_word(allowed, p, strcspn(p, "=&")))
            return 0;
        p += n + (p[n] == '&');
    }
    return 1;
}

int
relay_client_parse(struct relay_client *c, struct relay_request *rq)
{
    memset(rq, 0, sizeof *rq);
    if (memchr(c->head, '\0', c->head_len) || parse_head(c->head, rq) != 0)
        return -1;
    rq->path = uri_decode_path(rq->target);
    const char *q = strchr(rq->target, '?');
    q = q ? q + 1 : NULL;
    rq->route = rq->path ? route(c, rq->path, q) : -1;
    rq->query_ok = query_known(q, rq->route == 1 ? "wait_ms"
                                  : rq->path && !strcmp(rq->path, "/v1/events/stream")
                                      ? "cursor session_id run_id"
                                      : "cursor");
    size_t qlen = 0;
    int twice = 0;
    char ms[16] = "";
    const char *w = query_param(q, "wait_ms=", &qlen, &twice);
    if (w && qlen < sizeof ms)
        memcpy(ms, w, qlen);
    if (twice || util_parse_i64(ms, 0, URI_INPUT_WAIT_MAX_MS, &rq->wait_ms) != 0)
        rq->wait_ms = -1;
    const char *qc = query_param(q, "cursor=", &qlen, &rq->duplicate_cursor);
    char *qv = qc ? uri_pct_decode(qc, qlen, 1) : NULL; /* NULL: bad encoding */
    int64_t a = -1, b = -1;
    rq->cursor_ok =
        !(qc && (qv == NULL || parse_cursor(qv, &a) != 0)) && !rq->duplicate_cursor &&
        !(rq->last_event_id && *rq->last_event_id && parse_cursor(rq->last_event_id, &b) != 0);
    rq->cursor = a > b ? a : b; /* the larger wins; -1: none */
    free(qv);
    return 0;
}

/* Keeps the X-Request-Id nginx sent (its $request_id) on the client, for
 * its log lines, and as a header line for the answer; nothing when absent or
 * not a plain token. */
static void
request_id_header(struct relay_client *c, const char *id, char *out, size_t size)
{
    size_t n = id ? strlen(id) : 0;
    *out = '\0';
    if (n > 0 && n <= RELAY_REQUEST_ID_MAX && strspn(id, "0123456789abcdefABCDEF-") == n) {
        snprintf(c->request_id, sizeof c->request_id, "%s", id);
        snprintf(out, size, "X-Request-Id: %s\r\n", id);
    }
}

/* Starts the wait of an inline /input, which nginx sends as a GET. */
static void
wait_start(struct relay_client *c, const struct relay_request *rq, const char *headers)
{
    if (strcmp(rq->method, "GET")) {
        char allow[768];
        snprintf(allow, sizeof allow, "%sAllow: GET\r\n", headers);
        relay_client_refuse(c, 405, "api", "method_not_allowed", "an input wait is read with GET",
                            allow);
    } else if (rq->wait_ms < 0) {
        char detail[64];
        snprintf(detail, sizeof detail, "wait_ms must be one integer in [0, %d]",
                 URI_INPUT_WAIT_MAX_MS);
        relay_client_refuse(c, 400, NULL, "bad_request", detail, headers);
    } else if ((c->headers = strdup(headers)) == NULL) {
        relay_client_refuse(c, 503, NULL, NULL, "out of memory", headers);
    } else {
        c->state = CLIENT_WAIT;
        c->close_at_ms = util_monotonic_us() / 1000 + rq->wait_ms;
    }
}

void
relay_client_start(struct relay_client *c, const struct relay_client_env *env)
{
    struct relay_request rq;
    /* hdrs: the header lines every answer carries (CORS, X-Request-Id) */
    char hdrs[640] = "", extra[768] = "", input[sizeof "/v1/sessions//input" + URI_ID_MAX_BYTES];
    if (relay_client_parse(c, &rq) != 0) {
        relay_client_refuse(c, 400, NULL, "bad_request", "malformed request head", "");
        return;
    }
    char peer_ip[64];
    snprintf(peer_ip, sizeof peer_ip, "%.*s", (int)strcspn(c->peer, ":"), c->peer);
    struct gate_request grq = {
        rq.method,
        rq.path ? rq.path : "/",
        rq.authorization,
        rq.duplicate_origin ? "" : rq.origin,
        rq.real_ip ? rq.real_ip : peer_ip,
        rq.real_port,
    };
    /* A wait continues the POST the worker admitted; the same token must
     * still admit it, so reaching the relay directly grants nothing. */
    if (rq.route == 1) {
        snprintf(input, sizeof input, "/v1/sessions/%s/input", c->session_id);
        grq.method = "POST";
        grq.path = input;
    }
    struct gate_verdict v;
    gate_check(env->gate, &grq, &v);
    c->role = v.who.role;
    snprintf(c->remote_addr, sizeof c->remote_addr, "%s", v.remote_addr);
    if (v.audit) {
        if (store_auth_audit_append(env->db, v.audit, env->recorded_by) != STORE_OK)
            log_msg("error", "audit_store_failed", "auth audit record not stored");
        json_decref(v.audit);
    }
    if (v.cors_origin)
        cors_headers(v.cors_origin, hdrs, sizeof hdrs);
    request_id_header(c, rq.request_id, hdrs + strlen(hdrs), sizeof hdrs - strlen(hdrs));
    snprintf(extra, sizeof extra, "%sAllow: GET, HEAD\r\n", hdrs);
    if (v.status == 204) {
        relay_client_answer(c, 204, hdrs, NULL);
    } else if (v.status != 0) {
        snprintf(extra, sizeof extra, "%s%s", hdrs,
                 v.challenge     ? "WWW-Authenticate: Bearer realm=\"" AUTH_REALM "\"\r\n"
                 : v.retry_after ? "Retry-After: 60\r\n"
                                 : "");
        relay_client_refuse(c, v.status, v.domain, v.code, v.detail, extra);
    } else if (rq.path == NULL) {
        relay_client_refuse(c, 400, NULL, "bad_request", "the request path is not valid", hdrs);
    } else if (rq.route == 1) {
        wait_start(c, &rq, hdrs);
    } else if (rq.route == -1) {
        relay_client_refuse(c, 404, "api", "route_not_found", "no stream at this path", hdrs);
    } else if (strcmp(rq.method, "GET") && strcmp(rq.method, "HEAD")) {
        relay_client_refuse(c, 405, "api", "method_not_allowed", "streams are read with GET",
                            extra);
    } else if (rq.route == -2) {
        relay_client_refuse(c, 400, NULL, "bad_request", "invalid session or run id", hdrs);
    } else if (!rq.query_ok) {
        relay_client_refuse(c, 400, NULL, "bad_request", "unknown query parameter", hdrs);
    } else if (!rq.cursor_ok) {
        relay_client_refuse(c, 400, "events", "invalid_event_cursor",
                            "cursor and Last-Event-ID must be decimal event ids", hdrs);
    } else {
        /* None means live only; past the tail is clamped. */
        c->cursor = rq.cursor < 0 || rq.cursor > env->newest ? env->newest : rq.cursor;
        /* retry: ends no frame of its own: it goes out with the first one,
         * which clients read for its id: and event: (contract, section 2). */
        int head_only = !strcmp(rq.method, "HEAD");
        char head[1024];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                         "Connection: close\r\n%s\r\n%s",
                         hdrs, head_only ? "" : "retry: 1000\n");
        relay_client_queue(c, head, (size_t)n);
        if (head_only) {
            closing(c);
        } else {
            c->state = c->cursor < env->newest ? CLIENT_REPLAY : CLIENT_LIVE;
            c->opened_us = util_monotonic_us();
            c->opened_cursor = c->cursor;
            relay_client_log_stream(c, "stream_opened", NULL);
        }
    }
    free(rq.path);
}

int
relay_client_queue(struct relay_client *c, const char *data, size_t len)
{
    /* One frame larger than the cap still goes out alone: memory stays
     * bounded by the largest event, and the client decides what to do. */
    size_t pending = c->out_len - c->out_off;
    if (pending == 0 && c->fd >= 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return 0; /* gone: epoll reports the hang-up and the client is dropped */
        n = n < 0 ? 0 : n;
        data += n;
        len -= (size_t)n;
        if (len == 0)
            return 0;
    }
    if (pending > 0 && pending + len > RELAY_HARD_CAP)
        return -1;
    if (c->out_off > 0 && c->out_len + len > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        char *n = realloc(c->out, cap);
        if (n == NULL)
            return -1;
        c->out = n;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

int
relay_client_flush(struct relay_client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->out_off += (size_t)n;
    }
    /* Idle clients hold no buffer: 10,000 of them cost only their sockets. */
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    return 1;
}

static const char *
scope(const struct relay_client *c)
{
    return c->run_id ? "run" : c->session_id ? "session" : "global";
}

int
relay_client_gap(struct relay_client *c, const struct store_gap *g)
{
    char gap[400];
    int n = snprintf(gap, sizeof gap,
                     "id: %lld\nevent: stream_gap\ndata: {\"type\":\"stream_gap\",\"skipped\":%lld,"
                     "\"resume_after_id\":\"%lld\",\"reason\":\"replay_window\",\"scope\":\"%s\","
                     "\"skipped_is_estimate\":%s}\n\n",
                     (long long)g->resume_after, (long long)g->skipped, (long long)g->resume_after,
                     scope(c), g->estimate ? "true" : "false");
    if (relay_client_queue(c, gap, (size_t)n) != 0)
        return -1;
    c->cursor = g->resume_after;
    return 0;
}

void
relay_client_lagged(struct relay_client *c, int64_t now_ms)
{
    /* Keep the frame it is receiving (a cut frame would corrupt the stream),
     * drop the rest, and count the events dropped. */
    const char *from = c->out + c->out_off, *end = c->out + c->out_len;
    const char *cut = from < end ? memmem(from, (size_t)(end - from), "\n\n", 2) : NULL;
    size_t keep = cut ? (size_t)(cut + 2 - c->out) : c->out_len;
    int skipped = 0;
    for (const char *p = c->out + keep; p < end; p = strchr(p, '\n') + 1) {
        skipped += !strncmp(p, "id: ", 4);
        if (memchr(p, '\n', (size_t)(end - p)) == NULL)
            break;
    }
    c->out_len = keep;
    c->events_sent -= skipped;
    char gap[320];
    int n = snprintf(gap, sizeof gap,
                     "event: stream_gap\ndata: {\"type\":\"stream_gap\",\"skipped\":%d,"
                     "\"reason\":\"live_lag\",\"scope\":\"%s\",\"skipped_is_estimate\":true}\n\n",
                     skipped, scope(c));
    if (c->out_len - c->out_off + (size_t)n <= RELAY_HARD_CAP)
        relay_client_queue(c, gap, (size_t)n);
    c->state = CLIENT_CLOSING;
    c->close_at_ms = now_ms + RELAY_CLOSE_GRACE_MS;
    log_msg("warn", "stream_lagged", "client %s fell behind; %d queued events dropped, closing",
            c->peer, skipped);
}

void
relay_client_log_stream(const struct relay_client *c, const char *event, const char *reason)
{
    if (c->opened_us == 0)
        return;
    struct log_line l;
    log_begin(&l, "info", event);
    log_str(&l, "request_id", c->request_id[0] ? c->request_id : NULL);
    log_str(&l, "role", c->role);
    log_str(&l, "remote_addr", c->remote_addr[0] ? c->remote_addr : NULL);
    log_str(&l, "scope", scope(c));
    log_str(&l, "session_id", c->session_id);
    log_str(&l, "run_id", c->run_id);
    log_int(&l, "cursor", c->opened_cursor);
    if (reason) {
        log_str(&l, "reason", reason);
        log_int(&l, "last_event_id", c->cursor);
        log_int(&l, "events_sent", c->events_sent);
        log_ms(&l, "duration_ms", util_monotonic_us() - c->opened_us);
    }
    log_end(&l);
}

int
relay_client_wants(const struct relay_client *c, const char *session_id, const char *run_id)
{
    return (c->session_id == NULL || (session_id && !strcmp(c->session_id, session_id))) &&
           (c->run_id == NULL || (run_id && !strcmp(c->run_id, run_id)));
}

void
relay_client_free(struct relay_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->head);
    free(c->headers);
    free(c->session_id);
    free(c->run_id);
    free(c->out);
    free(c);
}
