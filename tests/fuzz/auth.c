/*
 * fuzz-auth: what the gate reads from a /v1 request before any handler
 * (common/auth.c, cors.c, audit.c as fcgi/worker.c gate() uses them). The
 * input is "METHOD\nPATH\nAUTHORIZATION\nORIGIN", each part optional (a
 * missing header is NULL). Runs auth_required_access, auth_parse_bearer,
 * auth_check against inline admin and read-only tokens, cors_allowed under
 * the loopback and an exact policy with cors_headers, and the audit record
 * as its JSONL line. gate_check itself is left out: it writes audit files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_OWN_INITIALIZE
#include "fuzz.h"
#include "audit.h"
#include "auth.h"
#include "cors.h"

#define ADMIN_TOKEN "admin-token-0123456789"
#define READ_TOKEN  "read-token-9876543210"

static struct auth auth;
static struct cors loopback, exact;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    json_object_seed(1);
    char err[256];
    struct auth_settings s = {"bearer", {ADMIN_TOKEN, READ_TOKEN}, {NULL, NULL}, "127.0.0.1:8080"};
    if (auth_init(&auth, &s, err, sizeof err) != 0 || cors_init(&loopback, NULL, err, sizeof err) ||
        cors_init(&exact, "http://localhost:3000, https://127.0.0.1", err, sizeof err)) {
        fprintf(stderr, "fuzz-auth: init: %s\n", err);
        abort();
    }
    return 0;
}

/* The next '\n'-separated part of the input, NUL-terminated in place. */
static char *
part(char **p)
{
    if (*p == NULL)
        return NULL;
    char *s = *p, *nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    *p = nl ? nl + 1 : NULL;
    return s;
}

static int
visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static void
check_origin(const struct cors *c, const char *origin)
{
    if (!cors_allowed(c, origin))
        return;
    /* An allowed origin is echoed in a response header. */
    FUZZ_CHECK(visible_ascii(origin, strlen(origin)));
    char buf[512];
    FUZZ_CHECK(cors_headers(origin, buf, sizeof buf) > 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *rest = buf;
    const char *method = part(&rest), *path = part(&rest);
    const char *authorization = part(&rest), *origin = part(&rest);
    if (path == NULL)
        path = "/v1/status";

    enum auth_access need = auth_required_access(method, path);
    if (!strcmp(method, "OPTIONS"))
        FUZZ_CHECK(need == AUTH_ACCESS_NONE);
    else if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        FUZZ_CHECK(need == AUTH_ACCESS_ADMIN);
    else
        FUZZ_CHECK(need == AUTH_ACCESS_READ_ONLY || need == AUTH_ACCESS_ADMIN);

    const char *token = NULL;
    size_t len = 0;
    enum auth_result parsed = auth_parse_bearer(authorization, &token, &len);
    if (parsed == AUTH_OK) {
        FUZZ_CHECK(token > authorization && token + len <= authorization + strlen(authorization));
        FUZZ_CHECK(len >= 1 && len <= AUTH_TOKEN_MAX_BYTES && visible_ascii(token, len));
    } else {
        FUZZ_CHECK(parsed == (authorization ? AUTH_MALFORMED_TOKEN : AUTH_MISSING_TOKEN));
    }
    for (int a = AUTH_ACCESS_NONE; a <= AUTH_ACCESS_ADMIN; a++) {
        enum auth_result r = auth_check(&auth, authorization, (enum auth_access)a, NULL);
        int is_admin =
            parsed == AUTH_OK && len == strlen(ADMIN_TOKEN) && !memcmp(token, ADMIN_TOKEN, len);
        int is_read =
            parsed == AUTH_OK && len == strlen(READ_TOKEN) && !memcmp(token, READ_TOKEN, len);
        enum auth_result want =
            a == AUTH_ACCESS_NONE ? AUTH_OK
            : parsed != AUTH_OK   ? parsed
            : is_admin            ? AUTH_OK
            : is_read ? (a == AUTH_ACCESS_READ_ONLY ? AUTH_OK : AUTH_INSUFFICIENT_ACCESS)
                      : AUTH_INVALID_TOKEN;
        FUZZ_CHECK(r == want);
        FUZZ_CHECK(auth_result_code(r) != NULL);
    }

    if (origin) {
        check_origin(&loopback, origin);
        check_origin(&exact, origin);
        FUZZ_CHECK(!cors_allowed(&exact, origin) || cors_allowed(&loopback, origin));
    }

    /* The audit record of a refusal, as audit_append_file writes it: one line. */
    json_t *rec = audit_record("auth_failure", method, path, auth_result_code(parsed), origin,
                               "127.0.0.1", auth_access_name(need));
    FUZZ_CHECK(rec != NULL);
    char *line = json_dumps(rec, JSON_COMPACT);
    FUZZ_CHECK(line != NULL && strchr(line, '\n') == NULL && strchr(line, '\r') == NULL);
    free(line);
    json_decref(rec);
    free(buf);
    return 0;
}
