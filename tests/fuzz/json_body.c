/*
 * fuzz-json_body: a request body. The first byte picks the validate table of
 * one handler ('0' submit, '1' empty, '2' session create, '3' session end,
 * '4' permission mode, '5' debug level, '6' rollback; any byte maps to one),
 * the rest is the body (NUL-terminated, body_len bytes, as
 * fcgi/worker.c read_body() hands it over). validate_body with that table,
 * then what the handler does before the store: validate_submit_rules and the
 * idempotency fingerprint for POST /v1/sessions/{id}/runs. The body comes as
 * Content-Type: application/json unless the first byte has its high bit set:
 * then bits 4-6 pick another Content-Type and bits 2-3 a Content-Encoding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "json_exact.h"
#include "util.h"
#include "validate.h"

enum { T_SUBMIT, T_EMPTY, T_SESSION_CREATE, T_SESSION_END, T_PERMISSION, T_DEBUG, T_ROLLBACK, T_N };

/* The table each handler passes (fcgi/runs.c, sessions.c, runtime.c). */
static const struct field *
table(int t)
{
    switch (t) {
    case T_SUBMIT:
        return validate_submit_input; /* runs_submit */
    case T_EMPTY:
        return validate_empty; /* sessions_interrupt, runs_cancel */
    case T_SESSION_CREATE:
        return validate_session_create; /* sessions_create */
    case T_SESSION_END:
        return validate_session_end; /* sessions_end */
    case T_PERMISSION:
        return validate_permission_mode; /* runtime_permission_mode */
    case T_DEBUG:
        return validate_debug_level; /* runtime_debug_level */
    default:
        return validate_rollback; /* runtime_rollback */
    }
}

/* No string or key of an accepted document hides a NUL. */
static void
check_no_nul(const json_t *v, int depth)
{
    FUZZ_CHECK(depth < 4096);
    if (json_is_string(v)) {
        FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) check_no_nul(item, depth + 1);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item) check_no_nul(item, depth + 1);
    }
}

/* runs_submit after validation, minus the store. */
static void
submit(const json_t *body, struct http_resp *resp)
{
    if (validate_submit_rules(body, resp) != 0) {
        FUZZ_CHECK(resp->status == 400 && resp->json != NULL);
        return;
    }
    const char *key = json_string_value(json_object_get(body, "idempotency_key"));
    FUZZ_CHECK(key == NULL || (strlen(key) >= 1 && strlen(key) <= 255));
    json_t *payload = json_deep_copy(body);
    FUZZ_CHECK(payload != NULL);
    json_object_del(payload, "idempotency_key");
    char *canon = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    FUZZ_CHECK(canon != NULL);
    char hex[65];
    util_sha256_hex(canon, strlen(canon), hex);
    free(canon);
    json_decref(payload);
}

static const char *const content_types[] = {"application/json",
                                            "application/json; charset=utf-8",
                                            "Application/JSON",
                                            "text/plain",
                                            "application/jsonx",
                                            "application/json\t",
                                            NULL,
                                            "multipart/form-data"};
static const char *const content_encodings[] = {NULL, "identity", "IDENTITY", "gzip"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int t = (uint8_t)(data[0] - '0') % T_N;
    struct http_req req = {0};
    struct http_resp resp = {0};
    req.method = "POST";
    req.path = "/";
    req.body_len = size - 1;
    req.body = malloc(req.body_len + 1);
    if (req.body == NULL)
        return 0;
    memcpy(req.body, data + 1, req.body_len);
    req.body[req.body_len] = '\0';

    int plain_json = !(data[0] & 0x80);
    req.content_type = "application/json";
    if (!plain_json) {
        req.content_type = content_types[(data[0] >> 4) & 7];
        req.content_encoding = content_encodings[(data[0] >> 2) & 3];
    }

    json_t *json = NULL;
    if (validate_body(&req, table(t), &json, &resp) == 0) {
        FUZZ_CHECK(json_is_object(json) && resp.status == 0 && resp.json == NULL);
        check_no_nul(json, 0);
        /* What is stored is text whose numbers all come back (json_exact). */
        char *stored = json_dumps(json, JSON_COMPACT);
        struct json_exact_err inexact;
        FUZZ_CHECK(stored != NULL && json_exact_check(stored, strlen(stored), &inexact) == 0);
        free(stored);
        if (t == T_SUBMIT)
            submit(json, &resp);
    } else {
        FUZZ_CHECK(json == NULL && resp.json != NULL);
        /* 415 only for another media type or an encoding, and never for {}. */
        FUZZ_CHECK(resp.status == 400 || (resp.status == 415 && !plain_json && req.body_len > 0));
    }

    json_decref(json);
    free(req.body);
    json_decref(resp.json);
    free(resp.json_text);
    return 0;
}
