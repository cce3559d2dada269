#include "gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "log.h"
#include "util.h"

#define GATE_RATE_LIMIT_FILE "rate-limit"
#define GATE_CORS_FLAG       "--http-cors-allow-origin"

/* Each string setting's flag and environment variable. */
static const struct {
    const char *flag, *env;
    size_t offset;
} options[] = {
    {"--bind", "KHEISH_BIND", offsetof(struct gate_settings, auth.bind)},
    {"--http-auth-mode", "KHEISH_HTTP_AUTH_MODE", offsetof(struct gate_settings, auth.mode)},
    {"--http-admin-token", "KHEISH_DAEMON_ADMIN_TOKEN",
     offsetof(struct gate_settings, auth.token[AUTH_ROLE_ADMIN])},
    {"--http-admin-token-file", "KHEISH_DAEMON_ADMIN_TOKEN_FILE",
     offsetof(struct gate_settings, auth.token_file[AUTH_ROLE_ADMIN])},
    {"--http-readonly-token", "KHEISH_DAEMON_READONLY_TOKEN",
     offsetof(struct gate_settings, auth.token[AUTH_ROLE_READ_ONLY])},
    {"--http-readonly-token-file", "KHEISH_DAEMON_READONLY_TOKEN_FILE",
     offsetof(struct gate_settings, auth.token_file[AUTH_ROLE_READ_ONLY])},
    {NULL, "KHEISH_HTTP_CORS_ALLOW_ORIGINS", offsetof(struct gate_settings, cors_origins)},
};

const char gate_settings_usage[] =
    "  --bind HOST:PORT                the public listener's address (nginx); without auth\n"
    "                                  it must be loopback                 KHEISH_BIND\n"
    "  --http-auth-mode auto|none|bearer                                   KHEISH_HTTP_AUTH_MODE\n"
    "  --http-admin-token T | --http-admin-token-file P        KHEISH_DAEMON_ADMIN_TOKEN[_FILE]\n"
    "  --http-readonly-token T | --http-readonly-token-file P  "
    "KHEISH_DAEMON_READONLY_TOKEN[_FILE]\n"
    "  --http-cors-allow-origin ORIGIN (repeat)     KHEISH_HTTP_CORS_ALLOW_ORIGINS (comma list)\n";

static const char **
option(struct gate_settings *s, size_t i)
{
    return (const char **)((char *)s + options[i].offset);
}

void
gate_settings_env(struct gate_settings *s)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const char *e = getenv(options[i].env);
        *option(s, i) = e && *e ? e : NULL;
    }
}

int
gate_settings_export(const struct gate_settings *s)
{
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const char *v = *option((struct gate_settings *)s, i);
        if ((v ? setenv(options[i].env, v, 1) : unsetenv(options[i].env)) != 0)
            return -1;
    }
    return 0;
}

int
gate_settings_flag(struct gate_settings *s, const char *flag, const char *value)
{
    /* Repeated CORS flags are joined into one comma list that replaces the
     * environment's. */
    static char origins[CORS_MAX_ORIGINS * (CORS_ORIGIN_MAX_LEN + 1) + 1];
    static int from_flags;
    if (!strcmp(flag, GATE_CORS_FLAG)) {
        size_t used = from_flags ? strlen(origins) : 0;
        snprintf(origins + used, sizeof origins - used, "%s%s", used ? "," : "", value);
        from_flags = 1;
        s->cors_origins = origins;
        return 1;
    }
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        if (options[i].flag && !strcmp(flag, options[i].flag)) {
            *option(s, i) = value;
            return 1;
        }
    return 0;
}

int
gate_init(struct gate *g, const struct gate_settings *s, char *err, size_t errsz)
{
    memset(g, 0, sizeof *g);
    if (auth_init(&g->auth, &s->auth, err, errsz) != 0 ||
        cors_init(&g->cors, s->cors_origins, err, errsz) != 0)
        return -1;
    if (snprintf(g->dir, sizeof g->dir, "%s/" AUDIT_DIR, s->state_root) >= (int)sizeof g->dir) {
        snprintf(err, errsz, "state root path too long");
        return -1;
    }
    if (mkdir(g->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", g->dir, strerror(errno));
        return -1;
    }
    if (gate_attach(g, err, errsz) != 0)
        return -1;
    gate_detach(g); /* each process attaches its own */
    return 0;
}

void
gate_detach(struct gate *g)
{
    ratelimit_close(g->limits);
    g->limits = NULL;
}

int
gate_attach(struct gate *g, char *err, size_t errsz)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" GATE_RATE_LIMIT_FILE, g->dir);
    g->limits = ratelimit_open(path, err, errsz);
    return g->limits ? 0 : -1;
}

/* The client address as the audit and the rate limit may use it: an IPv4 or
 * IPv6 address with its port ("[v6]:port"), or GATE_ADDR_INVALID when the
 * front end's value is no address (a header's text never reaches a record). */
static void
client_addr(const struct gate_request *rq, char *out, size_t size)
{
    unsigned char bin[sizeof(struct in6_addr)];
    int64_t port = 0;
    int v6 = inet_pton(AF_INET6, rq->remote_addr, bin) == 1;
    if (!v6 && inet_pton(AF_INET, rq->remote_addr, bin) != 1) {
        snprintf(out, size, GATE_ADDR_INVALID);
        return;
    }
    if (rq->remote_port && util_parse_i64(rq->remote_port, 0, 65535, &port) != 0)
        port = 0;
    snprintf(out, size, v6 ? "[%s]:%lld" : "%s:%lld", rq->remote_addr, (long long)port);
}

/* The address of client_addr without its port. */
static void
addr_host(const char *addr, char *out, size_t size)
{
    snprintf(out, size, "%.*s",
             addr[0] == '[' ? (int)strcspn(addr + 1, "]") : (int)strcspn(addr, ":"),
             addr + (addr[0] == '['));
}

/* Counts the failure in its (reason, address) bucket; writes the audit line
 * unless the bucket is already limited; says whether it is limited. */
static int
note_failure(struct gate *g, const struct gate_request *rq, struct gate_verdict *v,
             const char *bucket, const char *event, const char *limited_event, const char *reason,
             const char *required)
{
    char key[RATELIMIT_KEY_MAX + 1], addr[INET6_ADDRSTRLEN + 16] = "unknown";
    if (rq->remote_addr)
        client_addr(rq, addr, sizeof addr);
    /* The bucket is the address without its port: one client, many ports. */
    snprintf(key, sizeof key, "%s:%s", bucket, v->remote_addr[0] ? v->remote_addr : "unknown");
    enum ratelimit_verdict rv =
        g->limits ? ratelimit_note(g->limits, key, util_monotonic_us() / 1000) : RATELIMIT_ALLOWED;
    if (rv == RATELIMIT_LIMITED)
        return 1;
    v->audit = audit_record(rv == RATELIMIT_ALLOWED ? event : limited_event, rq->method, rq->path,
                            reason, rq->origin, rq->remote_addr ? addr : NULL, required);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" AUDIT_FILE, g->dir);
    if (audit_append_file(path, v->audit) != 0)
        log_msg("error", "audit_write_failed", "%s: %s", path, strerror(errno));
    return rv != RATELIMIT_ALLOWED;
}

static void
reject(struct gate_verdict *v, int status, const char *domain, const char *code, const char *detail)
{
    v->status = status;
    v->domain = domain;
    v->code = code;
    v->detail = detail;
}

void
gate_check(struct gate *g, const struct gate_request *rq, struct gate_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (rq->remote_addr) {
        char addr[INET6_ADDRSTRLEN + 16];
        client_addr(rq, addr, sizeof addr);
        addr_host(addr, v->remote_addr, sizeof v->remote_addr);
    }
    if (rq->origin && !cors_allowed(&g->cors, rq->origin)) {
        note_failure(g, rq, v, "cors_origin_rejected", "cors_origin_rejected",
                     "cors_origin_rate_limited", "origin_not_allowed", NULL);
        reject(v, 403, "cors", "origin_not_allowed", "control-plane CORS origin is not allowed");
        return;
    }
    v->cors_origin = rq->origin;
    enum auth_access need = auth_required_access(rq->method, rq->path);
    if (need == AUTH_ACCESS_NONE) {
        v->status = 204; /* preflight: no token needed */
        return;
    }
    enum auth_result r = auth_check(&g->auth, rq->authorization, need, &v->who);
    if (r == AUTH_OK)
        return;
    const char *code = auth_result_code(r);
    if (note_failure(g, rq, v, code, "auth_failure", "auth_rate_limited", code,
                     auth_access_name(need))) {
        reject(v, 429, "auth", "rate_limited", "too many failed daemon auth attempts");
        v->retry_after = RATELIMIT_RETRY_AFTER;
    } else if (r == AUTH_INSUFFICIENT_ACCESS) {
        reject(v, 403, "auth", code, "daemon token does not allow this operation");
    } else {
        reject(v, 401, "auth", code, "missing or invalid daemon bearer token");
        v->challenge = 1;
    }
}

json_t *
gate_status(struct gate *g)
{
    json_t *block = json_object();
    auth_status(&g->auth, block);
    cors_status(&g->cors, block);
    return block;
}
