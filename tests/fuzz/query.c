/*
 * fuzz-query: the QUERY_STRING of a request, as fcgi/worker.c handle() sees
 * it. http_parse_query on the input (NUL-terminated), then the lookups and
 * parsers the handlers run on the result (http_query, http_query_limit,
 * page_parse), then frees exactly what handle() frees.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "page.h"
#include "util.h"

/* Every query parameter a handler reads. */
static const char *const names[] = {"limit",      "page",       "cursor",          "order",
                                    "persona_id", "session_id", "priority_active", "status"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *qs = malloc(size + 1);
    if (qs == NULL)
        return 0;
    memcpy(qs, data, size);
    qs[size] = '\0';

    struct http_req req = {0};
    struct http_resp resp = {0};
    req.method = "GET";
    req.path = "/v1/runs";
    if (http_parse_query(&req, qs, &resp) == 0) {
        FUZZ_CHECK(resp.status == 0 && resp.json == NULL);
        FUZZ_CHECK(req.nquery >= 0 && req.nquery <= HTTP_MAX_QUERY_PARAMS);
        for (int i = 0; i < req.nquery; i++) {
            const char *n = req.query[i].name, *v = req.query[i].value;
            FUZZ_CHECK(n != NULL && v != NULL);
            FUZZ_CHECK(util_utf8_printable(n, strlen(n)) && util_utf8_printable(v, strlen(v)));
            for (int j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(req.query[j].name, n) != 0);
            FUZZ_CHECK(http_query(&req, n) == v);
        }
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            const char *v = http_query(&req, names[i]);
            if (v && (!strcmp(names[i], "persona_id") || !strcmp(names[i], "session_id")))
                (void)uri_valid_id(v);
        }
        /* What the list and events handlers do with the parsed query. */
        struct http_resp r2 = {0};
        int limit = http_query_limit(&req, 1000, 1000, &r2);
        FUZZ_CHECK(limit == -1 ? r2.status == 400 : (limit >= 1 && limit <= 1000));
        json_decref(r2.json);
        struct page_req p;
        struct http_resp r3 = {0};
        for (int allow_order = 0; allow_order <= 1; allow_order++) {
            if (page_parse(&req, allow_order, &p, &r3) == 0) {
                FUZZ_CHECK(p.page.limit >= 1 && p.page.limit <= PAGE_MAX_LIMIT);
                FUZZ_CHECK(p.page.cursor == NULL || p.page.cursor == p.key);
            } else {
                FUZZ_CHECK(r3.status == 400 && r3.json != NULL);
            }
        }
        json_decref(r3.json);
    } else {
        FUZZ_CHECK(resp.status == 400 && resp.json != NULL && resp.problem != NULL);
    }

    /* As handle() frees them, whether parsing succeeded or not. */
    for (int i = 0; i < req.nquery; i++) {
        free(req.query[i].name);
        free(req.query[i].value);
    }
    free(req.body);
    json_decref(resp.json);
    free(resp.json_text);
    free(qs);
    return 0;
}
