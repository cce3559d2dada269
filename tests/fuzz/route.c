/*
 * fuzz-route: the path of a request, through router_dispatch. The first byte
 * picks a method no route has, so every pattern is matched against the path
 * (filling and cutting path parameters) and the answer is always a 404 or a
 * 405, without a handler (or a database) being reached. The rest is the
 * REQUEST_URI, decoded by uri_decode_path first as fcgi/worker.c handle()
 * does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "router.h"
#include "util.h"

static const char *const methods[] = {"PUT", "TRACE", "PATCH", "OPTIONS"};

static size_t
count(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

/* A decoded path: '/' first, no longer than the raw path, printable UTF-8,
 * and exactly the raw path's segments (an encoded '/' never makes one). */
static void
check_decoded(const char *uri, const char *path)
{
    size_t raw = strcspn(uri, "?"), n = strlen(path);
    FUZZ_CHECK(path[0] == '/' && n <= raw);
    FUZZ_CHECK(util_utf8_printable(path, n));
    FUZZ_CHECK(count(path, n, '/') == count(uri, raw, '/'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *uri = malloc(size);
    if (uri == NULL)
        return 0;
    memcpy(uri, data + 1, size - 1);
    uri[size - 1] = '\0';
    char *path = uri_decode_path(uri);
    if (path == NULL) { /* the worker answers 400 before routing */
        free(uri);
        return 0;
    }
    check_decoded(uri, path);
    char *before = strdup(path);
    FUZZ_CHECK(before != NULL);

    struct http_req req = {0};
    struct http_resp resp = {0};
    req.method = methods[data[0] % 4];
    req.path = path;
    req.request_id = "fuzz";
    int status = router_dispatch(&req, &resp);
    FUZZ_CHECK(status == resp.status && resp.json != NULL);
    FUZZ_CHECK(status == 404 || status == 405);
    /* A 405 says which methods the path has, and only a 405 adds a header. */
    FUZZ_CHECK((status == 405) == (strncmp(resp.headers, "Allow: ", 7) == 0));
    FUZZ_CHECK(status == 405 || resp.headers[0] == '\0');
    FUZZ_CHECK(status != 405 ||
               strstr(resp.headers, "\r\n") == resp.headers + strlen(resp.headers) - 2);
    FUZZ_CHECK(req.nparams == 0);
    /* The router cuts a copy of the path, never the path itself. */
    FUZZ_CHECK(req.path == path && !strcmp(path, before));

    json_decref(resp.json);
    free(resp.json_text);
    free(before);
    free(path);
    free(uri);
    return 0;
}
