/*
 * A prefork worker: accepts FastCGI requests on the shared socket one at a
 * time, turns each into an http_req, dispatches it, writes the response and one
 * access-log line. Holds one database connection for its whole life.
 */
#include "worker.h"

#include <fcgiapp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "log.h"
#include "router.h"
#include "util.h"

#define WORKER_READ_CHUNK     65536
#define WORKER_HEADER_MAX     255 /* bytes of a client header value we keep (Idempotency-Key) */
#define WORKER_USER_AGENT_MAX 256 /* bytes of User-Agent an admin action keeps */

static void
on_term(int sig)
{
    (void)sig;
    FCGX_ShutdownPending();
}

/* Reads CONTENT_LENGTH bytes of body. Returns 0, or an HTTP status (413 over
 * the limit, 400 when the body is shorter than announced) with resp set. */
static int
read_body(FCGX_Request *r, struct http_req *req, struct http_resp *resp)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->envp);
    int64_t len = 0;
    if (cl && *cl && util_parse_i64(cl, 0, INT64_MAX, &len) != 0)
        return http_problem(resp, 400, NULL, "bad_request", "invalid Content-Length");
    if (len > req->cfg->max_body_bytes)
        return http_problem(resp, 413, NULL, "payload_too_large",
                            "request body of %lld bytes exceeds the limit of %lld bytes",
                            (long long)len, (long long)req->cfg->max_body_bytes);
    req->body = malloc((size_t)len + 1);
    if (req->body == NULL)
        return http_problem(resp, 500, NULL, "internal_error", "out of memory");
    size_t got = 0;
    while (got < (size_t)len) {
        size_t want = (size_t)len - got;
        int n = FCGX_GetStr(req->body + got,
                            want > WORKER_READ_CHUNK ? WORKER_READ_CHUNK : (int)want, r->in);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    req->body[got] = '\0';
    req->body_len = got;
    if (got != (size_t)len)
        return http_problem(resp, 400, NULL, "bad_request", "request body shorter than declared");
    return 0;
}

/* A header value we pass to handlers: printable ASCII, bounded. */
static int
header_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > WORKER_HEADER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x21 || v[i] > 0x7e)
            return 0;
    return 1;
}

static void
write_response(FCGX_Request *r, const struct http_req *req, const struct http_resp *resp)
{
    char *dumped = NULL;
    const char *body = resp->text, *type = "text/plain; charset=utf-8";
    if (resp->json) {
        body = dumped = json_dumps(resp->json, JSON_COMPACT);
        type = resp->problem ? "application/problem+json" : "application/json";
    } else if (resp->json_text) {
        body = resp->json_text;
        type = "application/json";
    }
    size_t len = body ? strlen(body) : 0;
    char head[512];
    /* No body, no body headers: a 204, or the X-Accel-Redirect of an inline
     * /input, whose Content-Type and Cache-Control nginx would copy into the
     * relay's answer. */
    int n = body == NULL ? snprintf(head, sizeof head, "Status: %d\r\nX-Request-Id: %s\r\n",
                                    resp->status, req->request_id)
                         : snprintf(head, sizeof head,
                                    "Status: %d\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                    "Cache-Control: no-store\r\nX-Request-Id: %s\r\n",
                                    resp->status, type, len, req->request_id);
    FCGX_PutStr(head, n, r->out);
    FCGX_PutS(resp->headers, r->out);
    FCGX_PutS("\r\n", r->out);
    if (len && strcmp(req->method, "HEAD") != 0)
        FCGX_PutStr(body, (int)len, r->out);
    free(dumped);
}

static void
log_request(const struct http_req *req, const struct http_resp *resp, int64_t started_us)
{
    struct log_line l;
    log_begin(&l, resp->status >= 500 ? "error" : "info", "request");
    log_str(&l, "request_id", req->request_id);
    log_str(&l, "method", req->method);
    log_str(&l, "path", req->path);
    log_str(&l, "role", req->role);
    log_str(&l, "remote_addr", req->remote_addr[0] ? req->remote_addr : NULL);
    log_int(&l, "status", resp->status);
    log_ms(&l, "duration_ms", util_monotonic_us() - started_us);
    if (resp->problem)
        log_str(&l, "problem", resp->problem);
    log_end(&l);
}

/* How many times a param came: nginx passes a repeated request header as
 * repeated params, and FCGX_GetParam sees only the first. */
static int
param_count(FCGX_Request *r, const char *name)
{
    size_t n = strlen(name);
    int count = 0;
    for (char **e = r->envp; *e; e++)
        count += !strncmp(*e, name, n) && (*e)[n] == '=';
    return count;
}

/* The Idempotency-Key header: absent or empty is no key. Returns 0, or -1
 * with a problem set. */
static int
idempotency_key(FCGX_Request *r, struct http_req *req, struct http_resp *resp)
{
    const char *v = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", r->envp);
    if (v == NULL || *v == '\0')
        return 0;
    if (!header_ok(v) || param_count(r, "HTTP_IDEMPOTENCY_KEY") > 1) {
        http_problem(resp, 400, "idempotency", "invalid_idempotency_key",
                     "Idempotency-Key must be one header of 1..%d printable ASCII characters",
                     WORKER_HEADER_MAX);
        return -1;
    }
    req->idempotency_key = v;
    return 0;
}

/* 1 when nginx has closed the request's connection: its client went away
 * while the request waited in the backlog. Such a request is not executed
 * (a client retrying it would get duplicates), and nginx has answered it
 * already (499). A read changes nothing: it is not asked (a system call
 * saved on the hot path). */
static int
client_gone(const FCGX_Request *r, const char *method)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return 0;
    struct pollfd p = {r->ipcFd, POLLRDHUP, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Two Content-Type headers: nginx passes the first as CONTENT_TYPE and each
 * as HTTP_CONTENT_TYPE. Which one the client meant is anyone's guess. */
static int
content_type_ok(FCGX_Request *r, struct http_resp *resp)
{
    if (param_count(r, "HTTP_CONTENT_TYPE") <= 1)
        return 0;
    http_problem(resp, 400, NULL, "bad_request", "more than one Content-Type header");
    return -1;
}

/*
 * The actor of a request the gate let through, for the writes it makes (a
 * method other than GET and HEAD): the JSON object admin_actions records
 * (sql/functions/actors.sql), built here once and passed by every writing
 * store call. NULL for a read, or when it cannot be built.
 */
static char *
actor_json(FCGX_Request *r, const struct http_req *req, const struct gate_verdict *v)
{
    if (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
        return NULL;
    const char *ua = FCGX_GetParam("HTTP_USER_AGENT", r->envp);
    char clean[WORKER_USER_AGENT_MAX + 1];
    json_t *a =
        json_pack("{s:s, s:o, s:o, s:s, s:o, s:s, s:o}", "role", v->who.role, "token_fingerprint",
                  v->who.fingerprint[0] ? json_string(v->who.fingerprint) : json_null(),
                  "remote_addr", v->remote_addr[0] ? json_string(v->remote_addr) : json_null(),
                  "request_id", req->request_id, "user_agent",
                  ua ? util_json_clean(ua, clean, WORKER_USER_AGENT_MAX) : json_null(), "method",
                  req->method, "path", util_json_str(req->path));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

/*
 * The gate of common/gate.h for /v1 requests (probes stay open): answers
 * preflights and refusals itself, stores each audit record in the database
 * too, and adds the CORS headers of an allowed origin to whatever follows.
 * Returns 1 when the request may go on to its handler.
 */
static int
gate(FCGX_Request *r, struct worker_ctx *w, struct http_req *req, struct http_resp *resp)
{
    if (strncmp(req->path, "/v1/", 4) != 0)
        return 1;
    struct gate_request rq = {
        req->method,
        req->path,
        FCGX_GetParam("HTTP_AUTHORIZATION", r->envp),
        FCGX_GetParam("HTTP_ORIGIN", r->envp),
        FCGX_GetParam("REMOTE_ADDR", r->envp),
        FCGX_GetParam("REMOTE_PORT", r->envp),
    };
    if (rq.origin && param_count(r, "HTTP_ORIGIN") > 1)
        rq.origin = ""; /* several origins: none of them is allowed */
    struct gate_verdict v;
    gate_check(w->gate, &rq, &v);
    req->role = v.who.role;
    snprintf(req->remote_addr, sizeof req->remote_addr, "%s", v.remote_addr);
    if (v.audit) {
        enum store_rc rc = store_auth_audit_append(w->db, v.audit, w->recorded_by);
        if (rc != STORE_OK)
            log_msg("error", "audit_store_failed", "auth audit record not stored: %s",
                    store_strerror(rc));
        json_decref(v.audit);
    }
    char cors[512];
    if (v.cors_origin && cors_headers(v.cors_origin, cors, sizeof cors) > 0)
        http_add_headers(resp, "%s", cors);
    if (v.status == 0) {
        req->actor = actor_json(r, req, &v);
        if (req->actor || !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
            return 1;
        /* A write nobody could be named for is not made. */
        http_problem(resp, 500, NULL, "internal_error",
                     "the request's actor could not be recorded");
        return 0;
    }
    if (v.status == 204)
        resp->status = 204;
    else
        http_problem(resp, v.status, v.domain, v.code, "%s", v.detail);
    if (v.challenge)
        http_add_headers(resp, "WWW-Authenticate: Bearer realm=\"" AUTH_REALM "\"\r\n");
    if (v.retry_after)
        http_add_headers(resp, "Retry-After: %d\r\n", v.retry_after);
    return 0;
}

static void
handle(FCGX_Request *r, struct worker_ctx *w)
{
    int64_t started = util_monotonic_us();
    struct http_req req = {0};
    struct http_resp resp = {0};
    char rid[33];
    const char *v;

    req.method = FCGX_GetParam("REQUEST_METHOD", r->envp);
    /* The raw REQUEST_URI, not nginx's DOCUMENT_URI: nginx decodes %2F and
     * folds "..", which would let an id escape into another route. */
    char *path = uri_decode_path(FCGX_GetParam("REQUEST_URI", r->envp));
    req.path = path;
    req.content_type = FCGX_GetParam("CONTENT_TYPE", r->envp);
    req.content_encoding = FCGX_GetParam("HTTP_CONTENT_ENCODING", r->envp);
    req.db = w->db;
    req.cfg = w->cfg;
    req.gate = w->gate;
    req.recorded_by = w->recorded_by;
    req.draining = __atomic_load_n(&w->shared->draining, __ATOMIC_RELAXED);
    v = FCGX_GetParam("REQUEST_ID", r->envp);
    if (v && header_ok(v) && strlen(v) < sizeof rid) {
        req.request_id = v;
    } else {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(rid, sizeof rid, raw, sizeof raw);
        req.request_id = rid;
    }
    if (req.method == NULL)
        req.method = "GET";
    if (path == NULL) {
        req.path = "/";
        http_problem(&resp, 400, NULL, "bad_request",
                     "the request path is not percent-encoded UTF-8 or encodes a '/'");
    }
    if (resp.status == 0 && gate(r, w, &req, &resp) && idempotency_key(r, &req, &resp) == 0 &&
        content_type_ok(r, &resp) == 0 &&
        http_parse_query(&req, FCGX_GetParam("QUERY_STRING", r->envp), &resp) == 0 &&
        read_body(r, &req, &resp) == 0) {
        if (client_gone(r, req.method))
            http_problem(&resp, 499, NULL, "client_closed_request",
                         "the client left before the request was read; not executed");
        else
            router_dispatch(&req, &resp);
    }
    write_response(r, &req, &resp);
    log_request(&req, &resp, started);
    for (int i = 0; i < req.nquery; i++) {
        free(req.query[i].name);
        free(req.query[i].value);
    }
    free(req.body);
    free(req.actor);
    free(path);
    json_decref(resp.json);
    free(resp.json_text);
}

void
worker_run(int listen_fd, struct worker_ctx *w)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_term; /* no SA_RESTART: accept() must return on SIGTERM */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    FCGX_Request r;
    FCGX_InitRequest(&r, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
    while (FCGX_Accept_r(&r) >= 0) {
        handle(&r, w);
        FCGX_Finish_r(&r);
    }
    store_close(w->db);
}
