/* page: the contract's opt-in cursor pagination, shared by list endpoints. */
#ifndef KHEISH_FCGI_PAGE_H
#define KHEISH_FCGI_PAGE_H

#include "http.h"
#include "store.h"

#define PAGE_DEFAULT_LIMIT 50
#define PAGE_MAX_LIMIT     100

struct page_req {
    struct store_page page;
    int envelope;  /* page=true or cursor=...: answer {items, pagination} */
    char key[192]; /* decoded cursor */
};

/* Reads limit, page, cursor and (when allow_order) order from the query.
 * Returns 0, or -1 with a 400 pagination problem in resp. */
int page_parse(const struct http_req *req, int allow_order, struct page_req *p,
               struct http_resp *resp);

/* The response for a fetched page (result->items is stolen). */
json_t *page_response(const struct page_req *p, struct store_page_result *result);

#endif
