/*
 * client: the CLI's HTTP client for the control plane (libcurl). One call per
 * request; it maps every outcome to an exit code of the contract (§7) and
 * reports errors itself, so verbs only decide what to print on success.
 */
#ifndef KHEISH_CLI_CLIENT_H
#define KHEISH_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "cli.h"

#define CLIENT_CONNECT_TIMEOUT_MS 5000
#define CLIENT_TOTAL_TIMEOUT_MS   30000
#define CLIENT_RESPONSE_MAX_BYTES (16 * 1024 * 1024)
#define CLIENT_URL_MAX_BYTES      4096

/* A request path with its query string, built piecewise. Every piece taken
 * from user input is percent-encoded; a URL that would not fit is marked
 * overflowed and refused by client_request. */
struct client_url {
    char buf[CLIENT_URL_MAX_BYTES];
    size_t len;
    int overflow;
    int has_query;
};

/* Sets the path from fmt, where each "%s" is replaced by the next argument
 * percent-encoded as one path segment (so "a/b" cannot change the route). */
void client_url_path(struct client_url *u, const char *fmt, ...);

/* Appends name=value to the query (both encoded); does nothing when value
 * is NULL, so optional filters can be passed unconditionally. */
void client_url_query(struct client_url *u, const char *name, const char *value);

struct client_req {
    const char *method;
    const struct client_url *url;
    const json_t *body;          /* sent as application/json; NULL = no body */
    const char *idempotency_key; /* Idempotency-Key header; NULL = none */
};

/* A submission's Idempotency-Key when the user gave none: "cli-" and 32
 * random hex digits. Every submission the CLI makes carries one, so that
 * client_request may send it again when its outcome is unknown. */
#define CLIENT_KEY_BYTES 37
void client_new_key(char out[CLIENT_KEY_BYTES]);

/* Calls curl_global_init / curl_global_cleanup; once per process. */
int client_init(void);
void client_cleanup(void);

/*
 * Sends one request to c->base_url and waits for the answer (connect within
 * CLIENT_CONNECT_TIMEOUT_MS, all within CLIENT_TOTAL_TIMEOUT_MS). On a 2xx
 * answer whose body is JSON it stores the document in *out (caller frees)
 * and returns EXIT_OK. Otherwise it prints one line to stderr (and, in json
 * mode, the problem document to stdout), sets *out to NULL and returns the
 * exit code: EXIT_UNREACHABLE, EXIT_UNAVAILABLE (timeout, 429, 503, 504),
 * the code for the HTTP status, or EXIT_SCHEMA for a body that is not JSON.
 * *status (may be NULL) receives the HTTP status, 0 when there was none.
 * With an Idempotency-Key, a connection failure or a 502, 503 or 504 is
 * retried with the same key, up to 6 times over about 12 s (a note on
 * stderr each time); without one, nothing is retried.
 */
int client_request(const struct cli *c, const struct client_req *req, json_t **out, long *status);

/* The contract's exit code for a refused request's HTTP status. */
int client_exit_for_status(long status);

/* Says why a request was refused, on one line of stderr: "kheish: 404
 * sessions/session_not_found: detail" for a problem document, the start of
 * the body otherwise; in json mode the problem document also goes to stdout
 * for scripts. */
void client_report_refusal(const struct cli *c, long status, const char *body, size_t len);

#endif
