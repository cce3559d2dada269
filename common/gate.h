/*
 * gate: what every client-facing process (kheish-fcgi, kheish-sse-relay)
 * does before a /v1 request reaches a handler, in the contract's order:
 * CORS origin check, preflight, bearer auth against the path's required
 * access, failure rate limiting and audit (contract §4).
 */
#ifndef KHEISH_GATE_H
#define KHEISH_GATE_H

#include <jansson.h>
#include <limits.h>

#include "auth.h"
#include "cors.h"
#include "ratelimit.h"

struct gate_settings {
    struct auth_settings auth;
    const char *cors_origins; /* comma list, NULL for the loopback policy */
    const char *state_root;   /* holds control-plane-auth/ (audit, rate limits) */
};

struct gate {
    struct auth auth;
    struct cors cors;
    struct ratelimit *limits; /* per process: gate_attach after fork */
    char dir[PATH_MAX];       /* <state_root>/control-plane-auth */
};

/* What the audit and the rate limit record for a client address that is not
 * an IPv4 or IPv6 address. */
#define GATE_ADDR_INVALID "invalid"
#define GATE_ADDR_MAX     48 /* an IPv6 address and its NUL */

/* One request as the front end (nginx) saw it. */
struct gate_request {
    const char *method;
    const char *path;
    const char *authorization; /* header values, NULL when absent */
    const char *origin;
    const char *remote_addr; /* the peer nginx saw, NULL when unknown */
    const char *remote_port;
};

struct gate_verdict {
    int status;              /* 0: go on to the handler; 204: answered preflight; else a problem */
    const char *domain;      /* of the problem */
    const char *code;        /* of the problem */
    const char *detail;      /* of the problem */
    int challenge;           /* send WWW-Authenticate */
    int retry_after;         /* seconds for Retry-After, 0 for none */
    const char *cors_origin; /* an allowed Origin to answer CORS headers for, or NULL */
    json_t *audit;           /* the audit record written to the JSONL file, for the
                              * caller to store in the database too; caller frees */
    struct auth_principal who; /* status 0: who the caller is (role NULL otherwise) */
    /* The client's address without its port, as the audit checks it: an
     * IPv4 or IPv6 address, GATE_ADDR_INVALID, or "" when unknown. */
    char remote_addr[GATE_ADDR_MAX];
};

/* Fills s from the environment (KHEISH_BIND, KHEISH_HTTP_AUTH_MODE,
 * KHEISH_DAEMON_{ADMIN,READONLY}_TOKEN[_FILE], KHEISH_HTTP_CORS_ALLOW_ORIGINS);
 * state_root is left alone. */
void gate_settings_env(struct gate_settings *s);

/* Takes one command-line flag of the gate (--bind, --http-auth-mode,
 * --http-{admin,readonly}-token[-file], --http-cors-allow-origin, which
 * repeats) with its value, overriding the environment. Returns 1 when flag
 * is one of them. */
int gate_settings_flag(struct gate_settings *s, const char *flag, const char *value);

/* Sets the environment variables of gate_settings_env to s (unsetting those
 * s leaves NULL), so that the processes we start read the same settings.
 * Returns 0 or -1. */
int gate_settings_export(const struct gate_settings *s);

/* The usage lines of those flags. */
extern const char gate_settings_usage[];

/* Validates the settings (startup errors of contract §4), creates the
 * control-plane-auth directory (0700) and the shared rate-limit table.
 * Returns 0, or -1 with a message in err. */
int gate_init(struct gate *g, const struct gate_settings *s, char *err, size_t errsz);

/* Opens this process's handle on the shared rate-limit table (call in each
 * process, after fork). Returns 0 or -1 with err set. */
int gate_attach(struct gate *g, char *err, size_t errsz);

/* Closes this process's handle (gate_attach's). */
void gate_detach(struct gate *g);

void gate_check(struct gate *g, const struct gate_request *rq, struct gate_verdict *v);

/* The control_plane block of /v1/status (auth and CORS fields). */
json_t *gate_status(struct gate *g);

#endif
