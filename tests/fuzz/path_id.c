/*
 * fuzz-path_id: a path segment as a session or run id. uri_valid_id and
 * http_path_id on the input as a NUL-terminated string (bytes after an
 * embedded NUL are ignored, as they would be in the FastCGI parameter).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

/* The contract, written independently: 1..128 of [A-Za-z0-9._:@-], the first
 * a letter, digit or '_'. */
static int
model_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > URI_ID_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int first =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!first && (i == 0 || (c != '.' && c != ':' && c != '@' && c != '-')))
            return 0;
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *id = malloc(size + 1);
    if (id == NULL)
        return 0;
    memcpy(id, data, size);
    id[size] = '\0';

    int valid = uri_valid_id(id);
    FUZZ_CHECK(valid == 0 || valid == 1);
    FUZZ_CHECK(valid == model_valid(id));

    static const char *const what[] = {"session", "run"};
    for (int i = 0; i < 2; i++) {
        struct http_req req = {0};
        struct http_resp resp = {0};
        req.params[0] = id;
        req.nparams = 1;
        const char *got = http_path_id(&req, 0, what[i], &resp);
        if (valid)
            FUZZ_CHECK(got == id && resp.status == 0 && resp.json == NULL);
        else
            FUZZ_CHECK(got == NULL && resp.status == 400 && resp.json != NULL);
        /* A missing parameter is never an id. */
        FUZZ_CHECK(http_path_id(&req, 1, what[i], &resp) == NULL && resp.status == 400);
        json_decref(resp.json);
        free(resp.json_text);
    }
    free(id);
    return 0;
}
