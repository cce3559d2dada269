#include "page.h"

#include <string.h>

#include "util.h"

static int
valid_key(const char *key)
{
    const char *colon = strchr(key, ':');
    char ms[21];
    int64_t v;
    if (colon == NULL || colon - key != 20)
        return 0;
    memcpy(ms, key, 20);
    ms[20] = '\0';
    /* 20 digits (no sign: strtoll would take one), and a time the store can
     * compare (it is a bigint there) */
    return strspn(ms, "0123456789") == 20 && util_parse_i64(ms, 0, INT64_MAX, &v) == 0 &&
           uri_valid_id(colon + 1);
}

int
page_parse(const struct http_req *req, int allow_order, struct page_req *p, struct http_resp *resp)
{
    const char *limit = http_query(req, "limit");
    const char *page = http_query(req, "page");
    const char *cursor = http_query(req, "cursor");
    const char *order = allow_order ? http_query(req, "order") : NULL;
    int64_t n = PAGE_DEFAULT_LIMIT;
    memset(p, 0, sizeof *p);
    if (limit && util_parse_i64(limit, 0, INT64_MAX, &n) != 0)
        return http_problem(resp, 400, "pagination", "invalid_limit",
                            "limit must be a positive integer"),
               -1;
    if (n == 0)
        return http_problem(resp, 400, "pagination", "invalid_limit", "limit must be at least 1"),
               -1;
    p->page.limit = n > PAGE_MAX_LIMIT ? PAGE_MAX_LIMIT : (int)n;
    if (page && strcmp(page, "true") && strcmp(page, "false"))
        return http_problem(resp, 400, "pagination", "invalid_page", "page must be true or false"),
               -1;
    if (order && strcmp(order, "asc") && strcmp(order, "desc"))
        return http_problem(resp, 400, "pagination", "invalid_order", "order must be asc or desc"),
               -1;
    p->page.descending = order && !strcmp(order, "desc");
    p->envelope = (page && !strcmp(page, "true")) || cursor != NULL;
    if (cursor) {
        int len = strlen(cursor) < 256 ? util_b64url_decode(cursor, p->key, sizeof p->key - 1) : -1;
        if (len > 0)
            p->key[len] = '\0';
        if (len <= 0 || (size_t)len != strlen(p->key) || !valid_key(p->key)) {
            http_problem(resp, 400, "pagination", "invalid_cursor",
                         "cursor is not a cursor this API returned");
            return -1;
        }
        p->page.cursor = p->key;
    }
    return 0;
}

json_t *
page_response(const struct page_req *p, struct store_page_result *r)
{
    if (!p->envelope)
        return r->items;
    json_t *next = json_null();
    if (r->has_more) {
        char enc[300];
        util_b64url_encode(r->next_key, strlen(r->next_key), enc, sizeof enc);
        next = json_string(enc);
    }
    return json_pack("{s:o, s:{s:i, s:I, s:b, s:o, s:s}}", "items", r->items, "pagination", "limit",
                     p->page.limit, "total_count", (json_int_t)r->total_count, "has_more",
                     r->has_more, "next_cursor", next, "order",
                     p->page.descending ? "desc" : "asc");
}
