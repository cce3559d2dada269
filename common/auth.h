/*
 * auth: the control plane's bearer tokens (contract §4), shared by kheish-fcgi
 * and kheish-sse-relay. Tokens come inline or from files; only their SHA-256
 * digests are kept, and they are compared in constant time. Token files are
 * re-read when their metadata changes, so `install -m 600 new f.next &&
 * mv f.next f` takes effect on the next request.
 */
#ifndef KHEISH_AUTH_H
#define KHEISH_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AUTH_TOKEN_MAX_BYTES 4096 /* a token, and a token file */
#define AUTH_REALM           "kheish-daemon"

enum auth_access { AUTH_ACCESS_NONE, AUTH_ACCESS_READ_ONLY, AUTH_ACCESS_ADMIN };
enum auth_role { AUTH_ROLE_ADMIN, AUTH_ROLE_READ_ONLY, AUTH_ROLES };

/* Outcome of checking one request's credentials. */
enum auth_result {
    AUTH_OK,
    AUTH_MISSING_TOKEN,
    AUTH_MALFORMED_TOKEN,
    AUTH_INVALID_TOKEN,
    AUTH_INSUFFICIENT_ACCESS,
};

/* As given by flags or environment; NULL when unset. */
struct auth_settings {
    const char *mode; /* auto | none | bearer (default auto) */
    const char *token[AUTH_ROLES];
    const char *token_file[AUTH_ROLES];
    const char *bind; /* host:port the public listener (nginx) binds */
};

/* One role's token: a fixed inline digest, or a file watched by metadata. */
struct auth_source {
    const char *file; /* NULL for an inline token or no token */
    int has_digest;
    unsigned char digest[32];
    /* Metadata of the file as last read; a change triggers a re-read. */
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
    int readable;
    char error[160]; /* why the file gives no token, "" when it does */
};

struct auth {
    int enabled;
    char bind[128];
    int bind_is_loopback, bind_is_unspecified;
    struct auth_source role[AUTH_ROLES];
};

/* Validates settings as the contract's startup rules say and loads tokens.
 * Returns 0, or -1 with a message for the operator in err. */
int auth_init(struct auth *a, const struct auth_settings *s, char *err, size_t errsz);

/* Access a request needs: NONE for OPTIONS (preflight), READ_ONLY for GET and
 * HEAD of the contract's read-only allowlist, ADMIN for everything else. */
enum auth_access auth_required_access(const char *method, const char *path);

/* The hex digits of a token's fingerprint: the first 8 bytes of its
 * SHA-256, which names the token in logs and admin_actions (migration 014)
 * without revealing it: a token of kheish up is 256 random bits. */
#define AUTH_FINGERPRINT_HEX 16

/* Who a request that passed the check is. */
struct auth_principal {
    const char *role; /* "admin", "read_only", or "anonymous" (auth disabled) */
    char fingerprint[AUTH_FINGERPRINT_HEX + 1]; /* "" without auth */
};

/* Checks an Authorization header value (NULL when absent) against the
 * current tokens for `need`; re-reads token files whose metadata changed.
 * On AUTH_OK, *who (when not NULL) says who the caller is. */
enum auth_result auth_check(struct auth *a, const char *authorization, enum auth_access need,
                            struct auth_principal *who);

/* The token of an `Authorization: Bearer <token>` value: scheme
 * case-insensitive, token trimmed, 1..AUTH_TOKEN_MAX_BYTES visible ASCII. */
enum auth_result auth_parse_bearer(const char *header, const char **token, size_t *len);

/* SHA-256 of a token file's content, trimmed. Returns 0, or -1 with a reason
 * in err when it holds no usable token. */
int auth_parse_token_file(const char *buf, size_t len, unsigned char digest[32], char *err,
                          size_t errsz);

/* Stable names, as the contract spells them. */
const char *auth_result_code(enum auth_result r);
const char *auth_access_name(enum auth_access a);

/* The token half of the control_plane status block: auth_enabled, the
 * effective-token flags, token files and their errors, duplicate detection. */
void auth_status(struct auth *a, json_t *block);

#endif
