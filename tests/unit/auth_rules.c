/*
 * The auth module of common/ against contract §4, without a server: startup
 * rules, the bearer header, access by method and path, token files re-read
 * on replace, identical tokens, CORS origins, and the rate limiter shared by
 * several processes.
 */
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "check.h"
#include "cors.h"
#include "ratelimit.h"

static char dir[] = "/tmp/kheish-auth-test.XXXXXX";

static void
write_file(const char *name, const char *content)
{
    char tmp[256], path[256];
    snprintf(tmp, sizeof tmp, "%s/%s.next", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    fputs(content, f);
    fclose(f);
    rename(tmp, path); /* install + mv, as an operator rotates */
}

static const char *
file(const char *name)
{
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

/* auth_init's verdict: 0 ok, -1 refused; *enabled receives auth_enabled. */
static int
init(struct auth *a, const char *mode, const char *bind, const char *admin, const char *admin_file,
     const char *ro, const char *ro_file)
{
    struct auth_settings s = {mode, {admin, ro}, {admin_file, ro_file}, bind};
    char err[256] = "";
    int rc = auth_init(a, &s, err, sizeof err);
    if (rc != 0 && err[0] == '\0')
        fprintf(stderr, "auth_init refused without a message\n");
    return rc;
}

static void
startup_rules(void)
{
    struct auth a;
    const char *lo = "127.0.0.1:4000", *pub = "0.0.0.0:443";
    write_file("admin", "admin-token\n");
    write_file("ro", "  ro-token  \n");
    CHECK(init(&a, NULL, lo, NULL, NULL, NULL, NULL) == 0 && !a.enabled); /* auto, open */
    CHECK(init(&a, NULL, pub, NULL, NULL, NULL, NULL) == -1);             /* auto, exposed */
    CHECK(init(&a, NULL, NULL, NULL, NULL, NULL, NULL) == -1);            /* bind unknown */
    CHECK(init(&a, NULL, pub, "t", NULL, NULL, NULL) == 0 && a.enabled);
    CHECK(init(&a, NULL, lo, NULL, NULL, "r", NULL) == -1); /* read-only alone */
    CHECK(init(&a, "none", lo, NULL, NULL, NULL, NULL) == 0 && !a.enabled);
    CHECK(init(&a, "none", pub, NULL, NULL, NULL, NULL) == -1);
    CHECK(init(&a, "none", "[::]:80", NULL, NULL, NULL, NULL) == -1);
    CHECK(init(&a, "none", "[::1]:80", NULL, NULL, NULL, NULL) == 0);
    CHECK(init(&a, "bearer", lo, NULL, NULL, NULL, NULL) == -1);
    CHECK(init(&a, "bearer", lo, NULL, file("admin"), NULL, file("ro")) == 0 && a.enabled);
    CHECK(init(&a, "sometimes", lo, "t", NULL, NULL, NULL) == -1);
    CHECK(init(&a, NULL, lo, "t", file("admin"), NULL, NULL) == -1); /* inline + file */
    CHECK(init(&a, NULL, lo, "  ", NULL, NULL, NULL) == -1);         /* empty after trim */
    CHECK(init(&a, NULL, lo, "same", NULL, " same ", NULL) == -1);   /* identical */
    CHECK(init(&a, NULL, lo, NULL, file("admin"), NULL, file("admin")) == -1);
    write_file("ro2", "admin-token");
    CHECK(init(&a, NULL, lo, NULL, file("admin"), NULL, file("ro2")) == -1); /* same content */
    CHECK(init(&a, NULL, "localhost", "t", NULL, NULL, NULL) == -1);         /* no port */
    CHECK(init(&a, NULL, "10.0.0.1:99999", "t", NULL, NULL, NULL) == -1);
    CHECK(init(&a, NULL, "[::1:80", "t", NULL, NULL, NULL) == -1);
}

static void
bearer(void)
{
    const char *t;
    size_t n;
    CHECK(auth_parse_bearer(NULL, &t, &n) == AUTH_MISSING_TOKEN);
    CHECK(auth_parse_bearer("Bearer abc", &t, &n) == AUTH_OK && n == 3 && !strncmp(t, "abc", 3));
    CHECK(auth_parse_bearer("bEaReR  abc  ", &t, &n) == AUTH_OK && n == 3);
    CHECK(auth_parse_bearer("Basic abc", &t, &n) == AUTH_MALFORMED_TOKEN);
    CHECK(auth_parse_bearer("Bearer", &t, &n) == AUTH_MALFORMED_TOKEN);
    CHECK(auth_parse_bearer("Bearer ", &t, &n) == AUTH_MALFORMED_TOKEN);
    CHECK(auth_parse_bearer("Bearer a b", &t, &n) == AUTH_MALFORMED_TOKEN);
    CHECK(auth_parse_bearer("Bearerabc", &t, &n) == AUTH_MALFORMED_TOKEN);
    CHECK(auth_parse_bearer("", &t, &n) == AUTH_MALFORMED_TOKEN);
    CHECK(auth_parse_bearer("Bearer \x01", &t, &n) == AUTH_MALFORMED_TOKEN);
}

static void
access_rules(void)
{
    CHECK(auth_required_access("OPTIONS", "/v1/runtime/secrets") == AUTH_ACCESS_NONE);
    CHECK(auth_required_access("GET", "/v1/status") == AUTH_ACCESS_READ_ONLY);
    CHECK(auth_required_access("HEAD", "/v1/runs/run-1") == AUTH_ACCESS_READ_ONLY);
    CHECK(auth_required_access("GET", "/v1/sessions/s1/tasks/t1/output") == AUTH_ACCESS_READ_ONLY);
    CHECK(auth_required_access("GET", "/v1/runtime/connectors/http/x") == AUTH_ACCESS_READ_ONLY);
    CHECK(auth_required_access("POST", "/v1/status") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/runtime/revisions") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/runtime/secrets") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/runs/run-1/debug") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/runtime/unknown") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/status/") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/sessions//events") == AUTH_ACCESS_ADMIN);
    CHECK(auth_required_access("GET", "/v1/runtime/connectors/http") == AUTH_ACCESS_ADMIN);
}

static void
token_files(void)
{
    struct auth a;
    write_file("admin", "first\n");
    write_file("ro", "reader\n");
    CHECK(init(&a, NULL, "127.0.0.1:1", NULL, file("admin"), NULL, file("ro")) == 0);
    CHECK(auth_check(&a, "Bearer first", AUTH_ACCESS_ADMIN, NULL) == AUTH_OK);
    CHECK(auth_check(&a, "Bearer reader", AUTH_ACCESS_READ_ONLY, NULL) == AUTH_OK);
    CHECK(auth_check(&a, "Bearer reader", AUTH_ACCESS_ADMIN, NULL) == AUTH_INSUFFICIENT_ACCESS);
    CHECK(auth_check(&a, "Bearer nope", AUTH_ACCESS_READ_ONLY, NULL) == AUTH_INVALID_TOKEN);
    CHECK(auth_check(&a, NULL, AUTH_ACCESS_ADMIN, NULL) == AUTH_MISSING_TOKEN);
    CHECK(auth_check(&a, NULL, AUTH_ACCESS_NONE, NULL) == AUTH_OK);
    /* Who: the role and the first 16 hex digits of the token's SHA-256. */
    struct auth_principal who;
    CHECK(auth_check(&a, "Bearer first", AUTH_ACCESS_ADMIN, &who) == AUTH_OK);
    CHECK(!strcmp(who.role, "admin") && !strcmp(who.fingerprint, "a7937b64b8caa58f"));
    CHECK(auth_check(&a, "Bearer reader", AUTH_ACCESS_READ_ONLY, &who) == AUTH_OK);
    CHECK(!strcmp(who.role, "read_only") && !strcmp(who.fingerprint, "3d0941964aa3ebdc"));

    write_file("admin", "second\n"); /* rotation: the next check sees it */
    CHECK(auth_check(&a, "Bearer first", AUTH_ACCESS_ADMIN, NULL) == AUTH_INVALID_TOKEN);
    CHECK(auth_check(&a, "Bearer second", AUTH_ACCESS_ADMIN, NULL) == AUTH_OK);

    write_file("ro", "second"); /* identical tokens: every bearer token is refused */
    CHECK(auth_check(&a, "Bearer second", AUTH_ACCESS_READ_ONLY, NULL) == AUTH_INVALID_TOKEN);
    json_t *st = json_object();
    auth_status(&a, st);
    CHECK(json_is_true(json_object_get(st, "auth_duplicate_token")));
    CHECK(json_is_false(json_object_get(st, "auth_effective_admin_token_available")));
    json_decref(st);

    write_file("ro", "\n"); /* empty: no read-only token, admin works again */
    CHECK(auth_check(&a, "Bearer second", AUTH_ACCESS_ADMIN, NULL) == AUTH_OK);
    unlink(file("admin")); /* unreadable: no admin token */
    CHECK(auth_check(&a, "Bearer second", AUTH_ACCESS_ADMIN, NULL) == AUTH_INVALID_TOKEN);
    st = json_object();
    auth_status(&a, st);
    CHECK(json_integer_value(json_object_get(st, "auth_token_file_error_count")) == 2);
    CHECK(json_is_false(json_object_get(st, "auth_duplicate_token")));
    json_t *f0 = json_array_get(json_object_get(st, "auth_token_files"), 0);
    CHECK(json_is_false(json_object_get(f0, "readable")));
    CHECK(json_is_string(json_object_get(f0, "error")));
    json_decref(st);
}

static void
cors_rules(void)
{
    struct cors c;
    char err[256];
    CHECK(cors_init(&c, NULL, err, sizeof err) == 0 && !c.exact);
    CHECK(cors_allowed(&c, "http://localhost:3000"));
    CHECK(cors_allowed(&c, "https://127.0.0.1"));
    CHECK(cors_allowed(&c, "http://[::1]:65535"));
    CHECK(!cors_allowed(&c, "http://localhost.evil.example"));
    CHECK(!cors_allowed(&c, "http://localhost:3000/"));
    CHECK(!cors_allowed(&c, "http://127.0.0.1:65536"));
    CHECK(!cors_allowed(&c, "ftp://localhost"));
    CHECK(!cors_allowed(&c, "null"));
    CHECK(cors_init(&c, "http://localhost:3000, http://127.0.0.1:8080", err, sizeof err) == 0);
    CHECK(c.exact && c.count == 2);
    CHECK(cors_allowed(&c, "http://127.0.0.1:8080"));
    CHECK(!cors_allowed(&c, "http://localhost:3001"));
    CHECK(cors_init(&c, "https://app.example.com", err, sizeof err) == -1);
    CHECK(cors_init(&c, "http://localhost:*", err, sizeof err) == -1);
    CHECK(cors_init(&c, "http://localhost,,", err, sizeof err) == -1);
}

/* Four processes share one table: together they reach the limit exactly
 * once, and exactly one of them sees the limited stretch begin. */
static void
shared_limit(void)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/rate-limit", dir);
    int fds[2];
    CHECK(pipe(fds) == 0);
    for (int p = 0; p < 4; p++) {
        if (fork() == 0) {
            struct ratelimit *rl = ratelimit_open(path, err, sizeof err);
            char tally[3] = {0, 0, 0};
            for (int i = 0; i < 20 && rl; i++)
                tally[ratelimit_note(rl, "invalid_token:127.0.0.9", 1000000)]++;
            CHECK(write(fds[1], tally, 3) == 3);
            _exit(0);
        }
    }
    close(fds[1]);
    int total[3] = {0, 0, 0};
    char tally[3];
    while (read(fds[0], tally, 3) == 3)
        for (int k = 0; k < 3; k++)
            total[k] += tally[k];
    while (wait(NULL) > 0)
        ;
    CHECK(total[RATELIMIT_ALLOWED] == RATELIMIT_MAX_FAILURES);
    CHECK(total[RATELIMIT_LIMITED_FIRST] == 1);
    CHECK(total[RATELIMIT_LIMITED] == 80 - RATELIMIT_MAX_FAILURES - 1);

    struct ratelimit *rl = ratelimit_open(path, err, sizeof err);
    CHECK(rl != NULL);
    /* Another address is unaffected; the window slides past old failures. */
    CHECK(ratelimit_note(rl, "invalid_token:127.0.0.10", 1000000) == RATELIMIT_ALLOWED);
    CHECK(ratelimit_note(rl, "invalid_token:127.0.0.9", 1000000 + RATELIMIT_WINDOW_MS + 1) ==
          RATELIMIT_ALLOWED);
    ratelimit_close(rl);
}

int
main(void)
{
    if (sodium_init() < 0 || mkdtemp(dir) == NULL)
        return 1;
    startup_rules();
    bearer();
    access_rules();
    token_files();
    cors_rules();
    shared_limit();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_report("auth_rules");
}
