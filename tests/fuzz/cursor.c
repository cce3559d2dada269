/*
 * fuzz-cursor: the pagination query of the list endpoints. The first byte
 * picks limit, page and order values and whether order is allowed (runs) or
 * not (sessions); the rest is the cursor (or, with the high bit set, the limit).
 * page_parse decodes the cursor with util_b64url_decode and checks it; a cursor
 * it accepts must be one the store splits (db_cursor_split) and one
 * page_response would hand out again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"
#include "page.h"
#include "util.h"

static const char *const limits[] = {NULL, "2", "100", "1000"};
static const char *const pages[] = {NULL, "true", "false", "maybe"};
static const char *const orders[] = {NULL, "asc", "desc", "sideways"};

static void
add(struct http_req *req, const char *name, const char *value)
{
    if (value == NULL)
        return;
    req->query[req->nquery].name = (char *)name;
    req->query[req->nquery].value = (char *)value;
    req->nquery++;
}

/* The store's side of an accepted cursor, and the cursor page_response would
 * give for the same key. */
static void
check_accepted(const struct page_req *p, const char *cursor)
{
    FUZZ_CHECK(p->page.cursor == p->key && p->envelope);
    char ms[24];
    const char *id = NULL;
    FUZZ_CHECK(db_cursor_split(p->page.cursor, ms, sizeof ms, &id) == 0);
    FUZZ_CHECK(strlen(ms) == 20 && uri_valid_id(id));
    /* The store compares the time as a bigint: it must fit. */
    int64_t v;
    FUZZ_CHECK(util_parse_i64(ms, 0, INT64_MAX, &v) == 0);

    struct store_page_result r = {0};
    r.items = json_array();
    r.has_more = 1;
    snprintf(r.next_key, sizeof r.next_key, "%s", p->key);
    json_t *doc = page_response(p, &r);
    FUZZ_CHECK(doc != NULL);
    const char *next =
        json_string_value(json_object_get(json_object_get(doc, "pagination"), "next_cursor"));
    FUZZ_CHECK(next != NULL && !strcmp(next, cursor));
    json_decref(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    char *value = malloc(size);
    if (value == NULL)
        return 0;
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';

    int value_is_limit = flags & 0x80, allow_order = (flags >> 6) & 1;
    struct http_req req = {0};
    struct http_resp resp = {0};
    req.method = "GET";
    req.path = "/v1/runs";
    add(&req, "limit", value_is_limit ? value : limits[flags & 3]);
    add(&req, "page", pages[(flags >> 2) & 3]);
    add(&req, "order", orders[(flags >> 4) & 3]);
    if (!value_is_limit)
        add(&req, "cursor", value);

    struct page_req p;
    if (page_parse(&req, allow_order, &p, &resp) == 0) {
        FUZZ_CHECK(resp.status == 0 && resp.json == NULL);
        FUZZ_CHECK(p.page.limit >= 1 && p.page.limit <= PAGE_MAX_LIMIT);
        if (!value_is_limit)
            check_accepted(&p, value);
        else
            FUZZ_CHECK(p.page.cursor == NULL);
    } else {
        FUZZ_CHECK(resp.status == 400 && resp.json != NULL && resp.problem != NULL);
    }
    if (value_is_limit) {
        /* The events and revisions endpoints read limit with their own bounds. */
        struct http_resp r2 = {0};
        int n = http_query_limit(&req, 1000, 1000, &r2);
        FUZZ_CHECK(n == -1 ? r2.status == 400 : (n >= 1 && n <= 1000));
        json_decref(r2.json);
    }

    json_decref(resp.json);
    free(resp.json_text);
    free(value);
    return 0;
}
