#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_exact.h"
#include "problem.h"
#include "uri.h"
#include "util.h"

int
http_problem(struct http_resp *resp, int status, const char *domain, const char *code,
             const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_t *doc = problem_doc(status, domain, code, detail);
    resp->problem = json_string_value(json_object_get(doc, "code"));
    return http_json(resp, status, doc);
}

struct store_problem {
    int status;
    const char *domain;
    const char *code;
};

static const struct store_problem store_problems[] = {
#define STORE_PROBLEM(id, name, message, status, domain, code)                                     \
    [STORE_##id] = {status, domain, code},
    STORE_ERRORS(STORE_PROBLEM)
#undef STORE_PROBLEM
};

int
http_store_problem(struct http_resp *resp, enum store_rc rc)
{
    const struct store_problem *p = &store_problems[rc];
    /* Internal errors say nothing about the database: details go to the log. */
    return http_problem(resp, p->status, p->domain, p->code, "%s", store_strerror(rc));
}

int
http_json(struct http_resp *resp, int status, json_t *doc)
{
    json_decref(resp->json);
    resp->json = doc;
    resp->status = status;
    return status;
}

int
http_add_headers(struct http_resp *resp, const char *fmt, ...)
{
    size_t used = strlen(resp->headers);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(resp->headers + used, sizeof resp->headers - used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof resp->headers - used) {
        resp->headers[used] = '\0';
        return -1;
    }
    return 0;
}

int
http_json_text(struct http_resp *resp, int status, char *text)
{
    free(resp->json_text);
    resp->json_text = text;
    resp->status = status;
    return status;
}

int
http_parse_query(struct http_req *req, const char *qs, struct http_resp *resp)
{
    if (qs == NULL || *qs == '\0')
        return 0;
    if (strlen(qs) > HTTP_MAX_QUERY_BYTES) {
        http_problem(resp, 400, NULL, "bad_request", "query string longer than %d bytes",
                     HTTP_MAX_QUERY_BYTES);
        return -1;
    }
    const char *p = qs;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t nlen = eq ? (size_t)(eq - p) : len;
            if (req->nquery == HTTP_MAX_QUERY_PARAMS) {
                http_problem(resp, 400, NULL, "bad_request", "more than %d query parameters",
                             HTTP_MAX_QUERY_PARAMS);
                return -1;
            }
            char *name = uri_pct_decode(p, nlen, 1);
            char *value = eq ? uri_pct_decode(eq + 1, len - nlen - 1, 1) : strdup("");
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                http_problem(resp, 400, NULL, "bad_request",
                             "query string is not valid percent-encoded UTF-8");
                return -1;
            }
            for (int i = 0; i < req->nquery; i++) {
                if (!strcmp(req->query[i].name, name)) {
                    http_problem(resp, 400, NULL, "bad_request",
                                 "query parameter '%s' given more than once", name);
                    free(name);
                    free(value);
                    return -1;
                }
            }
            req->query[req->nquery].name = name;
            req->query[req->nquery].value = value;
            req->nquery++;
        }
        p += len + (amp != NULL);
    }
    return 0;
}

const char *
http_query(const struct http_req *req, const char *name)
{
    for (int i = 0; i < req->nquery; i++)
        if (!strcmp(req->query[i].name, name))
            return req->query[i].value;
    return NULL;
}

/* What is wrong with a JSON text, in words that never quote it. */
static const char *
json_fault(enum json_error_code code)
{
    switch (code) {
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "unexpected end of input";
    case json_error_end_of_input_expected:
        return "text after the end of the document";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL character";
    case json_error_duplicate_key:
        return "duplicate object key";
    case json_error_numeric_overflow:
        return "number out of range";
    case json_error_stack_overflow:
        return "nested too deep";
    case json_error_out_of_memory:
        return "too large";
    default:
        return "invalid syntax";
    }
}

int
http_body_object(const struct http_req *req, int allow_empty, json_t **out, struct http_resp *resp)
{
    *out = NULL;
    if (req->body_len == 0 && allow_empty) {
        *out = json_object();
        return 0;
    }
    const char *ct = req->content_type ? req->content_type : "";
    size_t ctlen = strcspn(ct, "; \t");
    if (req->body_len > 0 &&
        (ctlen != 16 || strncasecmp(ct, "application/json", 16) != 0 ||
         (req->content_encoding && strcasecmp(req->content_encoding, "identity") != 0))) {
        http_problem(resp, 415, NULL, "unsupported_media_type",
                     "the body must be JSON sent as Content-Type: application/json, not encoded");
        return -1;
    }
    json_error_t err;
    struct json_exact_err inexact;
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL) {
        /* jansson's own text quotes the input near the fault: a secret's, maybe. */
        http_problem(resp, 400, NULL, "bad_request",
                     "malformed JSON body: %s at byte %d (line %d, column %d)",
                     json_fault(json_error_code(&err)), err.position, err.line, err.column);
        return -1;
    }
    if (json_exact_check(req->body, req->body_len, &inexact) != 0) {
        json_decref(v);
        http_problem(resp, 400, NULL, "bad_request", "JSON body refused: %s at byte %zu",
                     inexact.reason, inexact.offset);
        return -1;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_problem(resp, 400, NULL, "bad_request", "the JSON body must be an object");
        return -1;
    }
    *out = v;
    return 0;
}

int
http_idempotency(const struct http_req *req, const json_t *body, const char **key,
                 char fp[HTTP_FINGERPRINT_SIZE], struct http_resp *resp)
{
    const char *field = json_string_value(json_object_get(body, "idempotency_key"));
    if (field && req->idempotency_key && strcmp(field, req->idempotency_key))
        return http_problem(resp, 400, "idempotency", "invalid_idempotency_key",
                            "the Idempotency-Key header and the idempotency_key field differ"),
               -1;
    *key = req->idempotency_key ? req->idempotency_key : field;
    json_t *rest = json_deep_copy(body);
    json_object_del(rest, "idempotency_key");
    char *canon = rest ? json_dumps(rest, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char hex[65] = "";
    if (canon)
        util_sha256_hex(canon, strlen(canon), hex);
    snprintf(fp, HTTP_FINGERPRINT_SIZE, "v1:%s", hex);
    free(canon);
    json_decref(rest);
    return 0;
}

const char *
http_path_id(const struct http_req *req, int i, const char *what, struct http_resp *resp)
{
    const char *id = i < req->nparams ? req->params[i] : "";
    if (uri_valid_id(id))
        return id;
    http_problem(resp, 400, NULL, "bad_request",
                 "invalid %s id: 1..%d characters of [A-Za-z0-9._:@-] starting with a letter, "
                 "digit or '_'",
                 what, URI_ID_MAX_BYTES);
    return NULL;
}

int
http_query_limit(const struct http_req *req, int def, int max, struct http_resp *resp)
{
    const char *v = http_query(req, "limit");
    int64_t n = def;
    if (v && util_parse_i64(v, 1, max, &n) != 0)
        return http_problem(resp, 400, "pagination", "invalid_limit",
                            "limit must be an integer between 1 and %d", max),
               -1;
    return (int)n;
}
