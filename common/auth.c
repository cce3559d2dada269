#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static const char *const role_names[AUTH_ROLES] = {"admin", "read_only"};
static const char *const role_flags[AUTH_ROLES] = {"--http-admin-token", "--http-readonly-token"};

/*
 * GET/HEAD paths a read-only token may use (contract §4), one segment per
 * `/`, `*` standing for any one segment. Every other request needs admin,
 * which covers the contract's admin-only GETs (secrets, hooks, revisions,
 * run debug, raw assets, stacks, broker subjects and leases).
 */
static const char *const read_only_paths[] = {
    "/v1/status",
    "/v1/capabilities",
    "/v1/openapi.json",
    "/v1/runtime",
    "/v1/runtime/subagent-policy/quotas",
    "/v1/runtime/learning-policy",
    "/v1/runtime/run-memory-policy",
    "/v1/runtime/tool-limits",
    "/v1/runtime/permission-rules", /* ours: the rules' read, like the other settings' */
    "/v1/runtime/connectors",
    "/v1/runtime/connectors/*/*",
    "/v1/runtime/deliveries/metrics",
    "/v1/events/stream",
    "/v1/sessions",
    "/v1/sessions/*",
    "/v1/sessions/*/goal",
    "/v1/sessions/*/events",
    "/v1/sessions/*/stream",
    "/v1/sessions/*/questions",
    "/v1/sessions/*/memory-context",
    "/v1/sessions/*/memory-search",
    "/v1/sessions/*/permission-audits",
    "/v1/sessions/*/skills",
    "/v1/sessions/*/operator",
    "/v1/sessions/*/tool-overrides",
    "/v1/sessions/*/output-contract",
    "/v1/sessions/*/input-contract",
    "/v1/sessions/*/reply-targets",
    "/v1/sessions/*/tasks",
    "/v1/sessions/*/tasks/*",
    "/v1/sessions/*/tasks/*/output",
    "/v1/runs",
    "/v1/runs/*",
    "/v1/runs/*/events",
    "/v1/runs/*/stream",
    "/v1/runs/*/external-actions",
    "/v1/questions",
    "/v1/agents",
    "/v1/agents/audit",
    "/v1/agents/summaries",
    "/v1/agents/*",
    "/v1/agents/*/audit",
    "/v1/agents/*/mailbox",
    "/v1/agents/*/mailbox/dead-letter",
    "/v1/assets",
    "/v1/assets/*",
    "/v1/assets/*/references",
    "/v1/capture-alerts",
    "/v1/observation-audit",
    "/v1/observations",
    "/v1/observations/*",
    "/v1/observation-transcripts",
    "/v1/observation-transcripts/*",
    "/v1/observation-transcripts/*/segments",
    "/v1/skills",
    "/v1/skills/*",
    "/v1/boards",
    "/v1/boards/*",
    "/v1/boards/*/revisions",
    "/v1/boards/*/revisions/*",
    "/v1/capture-agents",
    "/v1/capture-agents/*",
    "/v1/channels",
    "/v1/channels/*",
    "/v1/channels/*/members",
    "/v1/channels/*/messages",
    "/v1/channels/*/stimuli",
    "/v1/channels/*/thread-work",
    "/v1/channels/*/leases",
    "/v1/projects",
    "/v1/projects/*",
    "/v1/projects/*/members",
    "/v1/projects/*/channels",
    "/v1/projects/*/tasks",
    "/v1/projects/*/tasks/*",
    "/v1/playbooks",
    "/v1/playbooks/*",
    "/v1/flows",
    "/v1/flows/*",
    "/v1/flows/*/stream",
    "/v1/schedules",
    "/v1/schedules/*",
    "/v1/deliveries",
    "/v1/deliveries/dead-letter",
    "/v1/deliveries/*",
    "/v1/observation-sources",
    "/v1/observation-sources/*",
    "/v1/derivations",
    "/v1/derivations/*",
    "/v1/learning-candidates",
    "/v1/learning-candidates/*",
    "/v1/learnings",
    "/v1/learnings/*",
    "/v1/learning-skills",
    "/v1/learning-skills/*",
    "/v1/personas",
    "/v1/personas/*",
    NULL,
};

/* path matches pattern segment by segment; `*` is one non-empty segment. */
static int
path_matches(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (*pattern == '*') {
            if (*path == '/')
                return 0;
            while (*path && *path != '/')
                path++;
            pattern++;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

enum auth_access
auth_required_access(const char *method, const char *path)
{
    if (!strcmp(method, "OPTIONS"))
        return AUTH_ACCESS_NONE;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return AUTH_ACCESS_ADMIN;
    for (const char *const *p = read_only_paths; *p; p++)
        if (path_matches(*p, path))
            return AUTH_ACCESS_READ_ONLY;
    return AUTH_ACCESS_ADMIN;
}

static int
token_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* Trims ASCII whitespace; returns 0 when what is left is a usable token. */
static int
trim_token(const char **s, size_t *len)
{
    const char *p = *s, *e = *s + *len;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    *s = p;
    *len = (size_t)(e - p);
    if (*len == 0 || *len > AUTH_TOKEN_MAX_BYTES)
        return -1;
    for (; p < e; p++)
        if (!token_char((unsigned char)*p))
            return -1;
    return 0;
}

enum auth_result
auth_parse_bearer(const char *header, const char **token, size_t *len)
{
    if (header == NULL)
        return AUTH_MISSING_TOKEN;
    const char *sp = strchr(header, ' ');
    if (sp == NULL || sp - header != 6 || strncasecmp(header, "bearer", 6) != 0)
        return AUTH_MALFORMED_TOKEN;
    *token = sp + 1;
    *len = strlen(*token);
    return trim_token(token, len) == 0 ? AUTH_OK : AUTH_MALFORMED_TOKEN;
}

static void
digest_of(const char *token, size_t len, unsigned char digest[32])
{
    crypto_hash_sha256(digest, (const unsigned char *)token, len);
}

int
auth_parse_token_file(const char *buf, size_t len, unsigned char digest[32], char *err,
                      size_t errsz)
{
    const char *t = buf;
    size_t n = len;
    if (trim_token(&t, &n) == 0) {
        digest_of(t, n, digest);
        return 0;
    }
    if (n == 0)
        return util_fail(err, errsz, "the file is empty");
    if (n > AUTH_TOKEN_MAX_BYTES)
        return util_fail(err, errsz, "the token is longer than %d bytes", AUTH_TOKEN_MAX_BYTES);
    return util_fail(err, errsz, "the token holds characters other than visible ASCII");
}

/* Re-reads a token file when its metadata differs from the last read. */
static void
refresh_source(struct auth_source *src)
{
    struct stat st;
    if (src->file == NULL)
        return;
    if (stat(src->file, &st) != 0) {
        src->readable = src->has_digest = 0;
        src->ino = 0;
        snprintf(src->error, sizeof src->error, "cannot read the file: %s", strerror(errno));
        return;
    }
    int64_t mtime = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    int64_t ctime = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
    if (src->ino != 0 && st.st_dev == src->dev && st.st_ino == src->ino &&
        st.st_size == src->size && mtime == src->mtime_ns && ctime == src->ctime_ns)
        return;
    char buf[AUTH_TOKEN_MAX_BYTES + 2];
    ssize_t n = -1;
    int fd = open(src->file, O_RDONLY | O_CLOEXEC);
    /* Record what was actually read: a replace racing this read shows up as
     * changed metadata on the next request. */
    if (fd >= 0 && fstat(fd, &st) == 0)
        n = read(fd, buf, sizeof buf);
    int saved = errno;
    if (fd >= 0)
        close(fd);
    src->dev = st.st_dev;
    src->ino = n >= 0 ? st.st_ino : 0;
    src->size = st.st_size;
    src->mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    src->ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
    src->readable = n >= 0;
    src->has_digest = 0;
    if (n < 0)
        snprintf(src->error, sizeof src->error, "cannot read the file: %s", strerror(saved));
    else if (n > AUTH_TOKEN_MAX_BYTES)
        snprintf(src->error, sizeof src->error, "the file is larger than %d bytes",
                 AUTH_TOKEN_MAX_BYTES);
    else if (auth_parse_token_file(buf, (size_t)n, src->digest, src->error, sizeof src->error) == 0)
        src->has_digest = 1, src->error[0] = '\0';
    sodium_memzero(buf, sizeof buf);
}

/* The digests in force; identical admin and read-only tokens disable both
 * until they diverge (contract §4). Returns 1 when they are identical. */
static int
effective(struct auth *a, const unsigned char *out[AUTH_ROLES])
{
    for (int r = 0; r < AUTH_ROLES; r++) {
        refresh_source(&a->role[r]);
        out[r] = a->role[r].has_digest ? a->role[r].digest : NULL;
    }
    if (out[0] && out[1] && sodium_memcmp(out[0], out[1], 32) == 0) {
        out[0] = out[1] = NULL;
        return 1;
    }
    return 0;
}

/* Fills *who (when asked for) with role and the fingerprint of digest (NULL:
 * no token). */
static enum auth_result
principal(struct auth_principal *who, const char *role, const unsigned char *digest)
{
    if (who) {
        who->role = role;
        who->fingerprint[0] = '\0';
        if (digest)
            sodium_bin2hex(who->fingerprint, sizeof who->fingerprint, digest,
                           AUTH_FINGERPRINT_HEX / 2);
    }
    return AUTH_OK;
}

enum auth_result
auth_check(struct auth *a, const char *authorization, enum auth_access need,
           struct auth_principal *who)
{
    if (!a->enabled || need == AUTH_ACCESS_NONE)
        return principal(who, "anonymous", NULL);
    const char *token;
    size_t len;
    enum auth_result r = auth_parse_bearer(authorization, &token, &len);
    if (r != AUTH_OK)
        return r;
    const unsigned char *digests[AUTH_ROLES];
    unsigned char digest[32];
    effective(a, digests);
    digest_of(token, len, digest);
    int admin = digests[AUTH_ROLE_ADMIN] && sodium_memcmp(digests[0], digest, 32) == 0;
    int read_only = digests[AUTH_ROLE_READ_ONLY] && sodium_memcmp(digests[1], digest, 32) == 0;
    if (admin)
        return principal(who, role_names[AUTH_ROLE_ADMIN], digest);
    if (read_only && need == AUTH_ACCESS_READ_ONLY)
        return principal(who, role_names[AUTH_ROLE_READ_ONLY], digest);
    return read_only ? AUTH_INSUFFICIENT_ACCESS : AUTH_INVALID_TOKEN;
}

/* host:port with host an IPv4 literal, [IPv6], or localhost. */
static int
parse_bind(struct auth *a, const char *bind)
{
    char host[128];
    const char *colon = strrchr(bind, ':');
    if (colon == NULL || colon == bind || strlen(bind) >= sizeof a->bind)
        return -1;
    size_t hl = (size_t)(colon - bind);
    if (bind[0] == '[') {
        if (bind[hl - 1] != ']')
            return -1;
        memcpy(host, bind + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, bind, hl);
        host[hl] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535 || colon[1] == '\0')
        return -1;
    unsigned char addr[16];
    if (!strcmp(host, "localhost")) {
        a->bind_is_loopback = 1;
    } else if (inet_pton(AF_INET, host, addr) == 1 && bind[0] != '[') {
        a->bind_is_loopback = addr[0] == 127;
        a->bind_is_unspecified = !memcmp(addr, "\0\0\0\0", 4);
    } else if (inet_pton(AF_INET6, host, addr) == 1 && bind[0] == '[') {
        static const unsigned char any[16], one[16] = {[15] = 1};
        a->bind_is_loopback = !memcmp(addr, one, 16);
        a->bind_is_unspecified = !memcmp(addr, any, 16);
    } else {
        return -1;
    }
    snprintf(a->bind, sizeof a->bind, "%s", bind);
    return 0;
}

int
auth_init(struct auth *a, const struct auth_settings *s, char *err, size_t errsz)
{
    memset(a, 0, sizeof *a);
    const char *mode = s->mode && *s->mode ? s->mode : "auto";
    if (strcmp(mode, "auto") && strcmp(mode, "none") && strcmp(mode, "bearer"))
        return util_fail(err, errsz, "--http-auth-mode must be auto, none or bearer, not '%s'",
                         mode);
    if (s->bind && *s->bind && parse_bind(a, s->bind) != 0)
        return util_fail(err, errsz, "--bind '%s' is not host:port with an IP or localhost host",
                         s->bind);
    int configured[AUTH_ROLES];
    for (int r = 0; r < AUTH_ROLES; r++) {
        const char *inl = s->token[r], *file = s->token_file[r];
        if (inl && file)
            return util_fail(err, errsz, "give %s or %s-file, not both", role_flags[r],
                             role_flags[r]);
        if (inl) {
            const char *t = inl;
            size_t n = strlen(inl);
            if (trim_token(&t, &n) != 0)
                return util_fail(err, errsz, "%s is empty or not visible ASCII", role_flags[r]);
            digest_of(t, n, a->role[r].digest);
            a->role[r].has_digest = 1;
        }
        if (file && *file == '\0')
            return util_fail(err, errsz, "%s-file is empty", role_flags[r]);
        a->role[r].file = file;
        configured[r] = inl || file;
    }
    if (s->token_file[0] && s->token_file[1] && !strcmp(s->token_file[0], s->token_file[1]))
        return util_fail(err, errsz, "the admin and read-only token files are the same file");
    const unsigned char *digests[AUTH_ROLES];
    if (effective(a, digests))
        return util_fail(err, errsz, "the admin and read-only tokens are identical");

    const char *where = a->bind[0] ? a->bind : "(unknown: set --bind)";
    if (!strcmp(mode, "none")) {
        if (!a->bind_is_loopback)
            return util_fail(
                err, errsz, "--http-auth-mode none is refused: the bind %s is not loopback", where);
        return 0;
    }
    if (configured[AUTH_ROLE_ADMIN])
        return a->enabled = 1, 0;
    if (!strcmp(mode, "bearer"))
        return util_fail(err, errsz,
                         "--http-auth-mode bearer needs an admin token (--http-admin-token or "
                         "--http-admin-token-file)");
    if (configured[AUTH_ROLE_READ_ONLY])
        return util_fail(err, errsz, "a read-only token is set without an admin token");
    if (!a->bind_is_loopback)
        return util_fail(err, errsz,
                         "no admin token and the bind %s is not loopback: set "
                         "--http-admin-token-file (or KHEISH_DAEMON_ADMIN_TOKEN_FILE)",
                         where);
    return 0; /* auto, nothing configured, loopback: open, with a health warning */
}

const char *
auth_result_code(enum auth_result r)
{
    static const char *const codes[] = {
        [AUTH_OK] = "ok",
        [AUTH_MISSING_TOKEN] = "missing_token",
        [AUTH_MALFORMED_TOKEN] = "malformed_token",
        [AUTH_INVALID_TOKEN] = "invalid_token",
        [AUTH_INSUFFICIENT_ACCESS] = "insufficient_access",
    };
    return codes[r];
}

const char *
auth_access_name(enum auth_access a)
{
    return a == AUTH_ACCESS_ADMIN ? "admin" : a == AUTH_ACCESS_READ_ONLY ? "read_only" : "none";
}

void
auth_status(struct auth *a, json_t *block)
{
    const unsigned char *digests[AUTH_ROLES];
    int duplicate = effective(a, digests);
    json_t *files = json_array();
    int file_errors = 0;
    for (int r = 0; r < AUTH_ROLES; r++) {
        const struct auth_source *src = &a->role[r];
        if (src->file == NULL)
            continue;
        file_errors += !src->has_digest;
        json_array_append_new(files, json_pack("{s:s, s:s, s:b, s:b}", "role", role_names[r],
                                               "path", src->file, "readable", src->readable,
                                               "token_loaded", src->has_digest));
        if (src->error[0])
            json_object_set_new(json_array_get(files, json_array_size(files) - 1), "error",
                                json_string(src->error));
    }
    char base_url[160];
    snprintf(base_url, sizeof base_url, "http://%s", a->bind);
    json_object_set_new(block, "base_url", a->bind[0] ? json_string(base_url) : json_null());
    json_object_set_new(block, "bind_addr", a->bind[0] ? json_string(a->bind) : json_null());
    json_object_set_new(block, "bind_is_loopback", json_boolean(a->bind_is_loopback));
    json_object_set_new(block, "bind_is_unspecified", json_boolean(a->bind_is_unspecified));
    json_object_set_new(block, "auth_enabled", json_boolean(a->enabled));
    json_object_set_new(block, "read_only_token_enabled",
                        json_boolean(a->enabled && (a->role[1].file || a->role[1].has_digest)));
    json_object_set_new(block, "auth_effective_admin_token_available",
                        json_boolean(a->enabled && digests[AUTH_ROLE_ADMIN]));
    json_object_set_new(block, "auth_effective_read_only_token_available",
                        json_boolean(a->enabled && digests[AUTH_ROLE_READ_ONLY]));
    json_object_set_new(block, "auth_token_file_count", json_integer(json_array_size(files)));
    json_object_set_new(block, "auth_token_file_error_count", json_integer(file_errors));
    json_object_set_new(block, "auth_duplicate_token", json_boolean(duplicate));
    json_object_set_new(block, "auth_token_files", files);
    json_object_set_new(block, "externally_exposed_without_auth",
                        json_boolean(!a->enabled && !a->bind_is_loopback));
}
