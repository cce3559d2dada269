/*
 * http: one request and its response inside a worker, problem+json errors,
 * query-string and body parsing. Handlers see only these types.
 */
#ifndef KHEISH_FCGI_HTTP_H
#define KHEISH_FCGI_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gate.h"
#include "store.h"
#include "uri.h"

#define HTTP_MAX_PATH_PARAMS  3
#define HTTP_MAX_QUERY_PARAMS 16
#define HTTP_MAX_QUERY_BYTES  4096
#define HTTP_HEADERS_MAX      1024

struct http_query_param {
    char *name;
    char *value;
};

struct http_req {
    const char *method;
    const char *path;
    const char *request_id;
    const char *idempotency_key; /* Idempotency-Key header, or NULL */
    const char *params[HTTP_MAX_PATH_PARAMS];
    int nparams;
    struct http_query_param query[HTTP_MAX_QUERY_PARAMS];
    int nquery;
    const char *content_type;     /* of the body, or NULL */
    const char *content_encoding; /* or NULL */
    char *body;                   /* NUL-terminated, body_len bytes */
    size_t body_len;
    json_t *json; /* the body, checked against its route's fields (router.h) */
    struct store *db;
    const struct fcgi_config *cfg;
    struct gate *gate;
    const char *recorded_by; /* "kheish-fcgi@<host>", for audit rows */
    int draining;
    const char *role;                /* the gate's principal (auth.h), NULL without it */
    char remote_addr[GATE_ADDR_MAX]; /* the client address the gate checked, "" unknown */
    /* Who asks, for the writes it makes: the actor JSON object of
     * admin_actions (sql/functions/actors.sql), built once by the worker for
     * a request that passed the gate and may write; NULL otherwise. Every
     * writing store call takes it. */
    char *actor;
};

struct http_resp {
    int status;
    json_t *json;                   /* response document, or NULL when text is used */
    char *json_text;                /* or the document as JSON text, owned (views read as text) */
    const char *text;               /* plain-text body (probes) */
    const char *problem;            /* problem code, for the access log */
    char headers[HTTP_HEADERS_MAX]; /* extra header lines, each "Name: value\r\n" */
};

/* A problem+json document: sets resp and returns the status, so handlers can
 * `return http_problem(...)`. domain may be NULL. */
int http_problem(struct http_resp *resp, int status, const char *domain, const char *code,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Maps a store error to its problem (one table for every handler). */
int http_store_problem(struct http_resp *resp, enum store_rc rc);

/* Appends header lines ("Name: value\r\n", printf-style) to the response.
 * Values must be ours or validated: nothing here escapes CR or LF. Returns
 * 0, or -1 (and adds nothing) when they do not fit. */
int http_add_headers(struct http_resp *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets a JSON document (stolen) as the body; returns status. */
int http_json(struct http_resp *resp, int status, json_t *doc);

/* Sets JSON text (stolen, malloc'd) as the body, skipping a parse and dump
 * round trip for views the database already rendered; returns status. */
int http_json_text(struct http_resp *resp, int status, char *text);

/* Query string: parsed once into req->query (percent-decoded, validated as
 * UTF-8). Returns 0 or -1 with a problem set in resp. */
int http_parse_query(struct http_req *req, const char *qs, struct http_resp *resp);
const char *http_query(const struct http_req *req, const char *name);

/* The JSON body as an object. An empty body yields an empty object when
 * allow_empty; a body that is not `Content-Type: application/json` (or is
 * content-encoded) is a 415; anything else that is not a JSON object is a
 * 400. Duplicate keys, invalid UTF-8 and NUL escapes are refused. */
int http_body_object(const struct http_req *req, int allow_empty, json_t **out,
                     struct http_resp *resp);

/* The idempotency key of a write whose body may carry one
 * (idempotency_key) beside the Idempotency-Key header: 0 with *key (NULL:
 * none) and fp, the body's fingerprint without its key ("v1:" + SHA-256 of
 * its canonical JSON), or -1 with a 400 problem when the two keys differ. */
#define HTTP_FINGERPRINT_SIZE (3 + 65)
int http_idempotency(const struct http_req *req, const json_t *body, const char **key,
                     char fp[HTTP_FINGERPRINT_SIZE], struct http_resp *resp);

/* Path parameter i as an id, or NULL with a 400 problem naming `what`. */
const char *http_path_id(const struct http_req *req, int i, const char *what,
                         struct http_resp *resp);

/* Integer query parameter `limit` in 1..max (def when absent), or -1 with a
 * 400 pagination/invalid_limit problem. */
int http_query_limit(const struct http_req *req, int def, int max, struct http_resp *resp);
#endif
