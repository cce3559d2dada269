/*
 * fuzz-relay_head: a request head as kheish-sse-relay receives it, through
 * client_parse (parse_head, uri_decode_path, the stream routes and their
 * filters, the input wait's ids and wait_ms, the cursor query parameter and
 * Last-Event-ID). client_start acts on nothing else, so what it parses here
 * is all a client controls.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_client.h"
#include "fuzz.h"
#include "uri.h"

/* 1 when the target's query has a NAME= parameter. */
static int
has_param(const char *target, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strchr(target, '?'); p; p = strchr(p, '&')) {
        p++;
        if (!strncmp(p, name, n) && p[n] == '=')
            return 1;
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct relay_client *c = calloc(1, sizeof *c);
    if (c == NULL || size >= RELAY_HEAD_MAX_BYTES || (c->head = malloc(size + 1)) == NULL) {
        free(c);
        return 0;
    }
    c->fd = -1;
    memcpy(c->head, data, size);
    c->head[size] = '\0';
    c->head_len = size;
    struct relay_request rq;
    if (relay_client_parse(c, &rq) == 0) {
        FUZZ_CHECK(memchr(data, '\0', size) == NULL);
        FUZZ_CHECK(rq.method && rq.target && *rq.method && *rq.target);
        FUZZ_CHECK(rq.path == NULL || rq.path[0] == '/');
        FUZZ_CHECK(rq.route >= -2 && rq.route <= 1);
        if (rq.route == 0) {
            FUZZ_CHECK(c->session_id == NULL || uri_valid_id(c->session_id));
            FUZZ_CHECK(c->run_id == NULL || uri_valid_id(c->run_id));
        }
        if (rq.route == 1)
            FUZZ_CHECK(uri_valid_id(c->session_id) && uri_valid_id(c->run_id));
        FUZZ_CHECK(rq.wait_ms >= -1 && rq.wait_ms <= URI_INPUT_WAIT_MAX_MS);
        FUZZ_CHECK(rq.cursor >= -1);
        /* A cursor comes from somewhere, and a refused one was given. */
        if (rq.cursor >= 0 || !rq.cursor_ok)
            FUZZ_CHECK(has_param(rq.target, "cursor") || rq.last_event_id);
        if (!rq.cursor_ok && rq.last_event_id == NULL && !rq.duplicate_cursor)
            FUZZ_CHECK(has_param(rq.target, "cursor"));
    } else {
        FUZZ_CHECK(rq.path == NULL);
    }
    free(rq.path);
    relay_client_free(c);
    return 0;
}
