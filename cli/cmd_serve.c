/*
 * kheish serve (alias start): the stack in the foreground, for service
 * managers and for upstream's scripts. It takes upstream's serve flags and
 * maps them onto our processes: --bind is nginx's listen address (and the
 * address kheish-fcgi judges auth rules by); the auth flags reach
 * kheish-fcgi and the relays as they are, so a token file is read in place
 * (`mv` over it rotates the token) and no token on a loopback bind is
 * upstream's open mode; --workspace-root and --default-route reach the
 * daemons that use them. Flags of upstream's that mean nothing here are
 * accepted with a warning when harmless and refused otherwise, never
 * ignored in silence. Then it starts what `up` starts and supervises it in
 * the foreground until SIGTERM (stack_serve, stack_supervise.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gate.h"
#include "log.h"
#include "routes.h"
#include "stack.h"
#include "util.h"

#define SERVE_DEFAULT_BIND STACK_HOST ":4000"

static const char serve_usage[] =
    "usage: kheish serve [--bind HOST:PORT] [--state-root DIR] [--workspace-root DIR]\n"
    "                    [--routes-file FILE] [--default-route ID] [--workers N] [--runners N]\n"
    "                    [--http-auth-mode auto|none|bearer] [token flags] "
    "[--http-cors-allow-origin O]...\n"
    "Starts the whole stack (embedded PostgreSQL unless KHEISH_DATABASE_URL is set, nginx on\n"
    "--bind, kheish-fcgi, the relays, and runners with a routes file) and supervises it in the\n"
    "foreground: the daemons log to stderr, SIGTERM stops everything, and it exits 1 when a\n"
    "daemon cannot be kept running. `kheish up` is the background form. --bind defaults "
    "to\n" SERVE_DEFAULT_BIND "; its host is an IPv4 address, [IPv6] or localhost.\n"
    "  --state-root DIR                                   KHEISH_STATE_ROOT (default .kheish)\n"
    "  --workspace-root DIR     (default <state root>/workspace)    KHEISH_WORKSPACE_ROOT\n"
    "  --routes-file FILE       runners start only with one           KHEISH_ROUTES_FILE\n"
    "  --default-route ID       overrides the file's default_route    KHEISH_DEFAULT_ROUTE\n"
    "  --workers N, --runners N as for `kheish up`\n"
    "%s"
    "Accepted with a warning: --mcp-discovery auto|disabled, --log-format auto|pretty|json,\n"
    "--log-level error|warn|info|debug|trace, --event-history-capacity N, --disable-scheduler.\n"
    "Refused, with the reason: upstream's single-route flags (--provider, --model, --api-key,\n"
    "--<provider>-*), --mcp-*, --connectors-config, --skill-root, and any other flag.\n";

/* Upstream flags that change nothing here: accepted (values checked), with
 * a warning unless the value is what this build does anyway. */
static const struct {
    const char *flag;
    const char *values; /* "a|b|c", or NULL for a non-negative integer */
    const char *quiet;  /* the value that needs no warning, or NULL */
    const char *why;
} harmless[] = {
    {"--mcp-discovery", "auto|disabled", "disabled", "this build has no MCP servers to discover"},
    {"--log-format", "auto|pretty|json", "json", "the daemons log JSON lines"},
    {"--log-level", "error|warn|info|debug|trace", "info", "the daemons log at info"},
    {"--event-history-capacity", NULL, NULL,
     "events are kept in PostgreSQL under its own retention, not in a memory ring"},
};

/* Upstream's boolean flags: no value follows them. */
static const struct {
    const char *flag, *why;
} switches[] = {
    {"--disable-scheduler", "this build has no scheduler yet"},
};

/* Upstream flags refused, with the reason: by name, or by prefix for the
 * names that end with '-'. */
static const struct {
    const char *prefix, *why;
} refused[] = {
    {"--provider", "describe routes in a routes file (--routes-file)"},
    {"--model", "describe routes in a routes file (--routes-file)"},
    {"--api-key", "store the key with `kheish secrets set` and name it in the routes file"},
    {"--anthropic-", "single-route provider flags: describe the route in a routes file"},
    {"--openai-", "single-route provider flags: describe the route in a routes file"},
    {"--google-", "single-route provider flags: describe the route in a routes file"},
    {"--openrouter-", "single-route provider flags: describe the route in a routes file"},
    {"--xai-", "single-route provider flags: describe the route in a routes file"},
    {"--mcp-", "MCP servers are not in this build yet"},
    {"--connectors-config", "connectors are not in this build yet"},
    {"--skill-root", "skills are not in this build yet"},
};

struct serve_flags {
    struct stack_opts o;
    struct gate_settings gate;
    const char *bind, *workspace_root, *default_route;
};

static int
one_of(const char *value, const char *values)
{
    size_t n = strlen(value);
    for (const char *p = values; n && *p; p += strcspn(p, "|"), p += *p == '|')
        if (strcspn(p, "|") == n && !strncmp(p, value, n))
            return 1;
    return 0;
}

/* A flag of the harmless table: 0 after warning, -1 after printing why its
 * value is refused, 1 when flag is not one of them. */
static int
take_harmless(const char *flag, const char *value)
{
    int64_t n;
    for (size_t i = 0; i < sizeof harmless / sizeof harmless[0]; i++) {
        if (strcmp(flag, harmless[i].flag))
            continue;
        if (harmless[i].values ? !one_of(value, harmless[i].values)
                               : util_parse_i64(value, 0, INT32_MAX, &n) != 0) {
            fprintf(stderr, "kheish serve: %s must be %s, not '%s'\n", flag,
                    harmless[i].values ? harmless[i].values : "a non-negative integer", value);
            return -1;
        }
        if (harmless[i].quiet == NULL || strcmp(value, harmless[i].quiet))
            fprintf(stderr, "kheish serve: warning: %s %s has no effect: %s\n", flag, value,
                    harmless[i].why);
        return 0;
    }
    return 1;
}

static int
refuse(const char *flag)
{
    const char *why = "it is not a flag of kheish serve (see kheish serve --help)";
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        size_t n = strlen(refused[i].prefix);
        if (refused[i].prefix[n - 1] == '-' ? !strncmp(flag, refused[i].prefix, n)
                                            : !strcmp(flag, refused[i].prefix))
            why = refused[i].why;
    }
    fprintf(stderr, "kheish serve: %s is not supported: %s\n", flag, why);
    return -1;
}

/* Returns 0, 1 after printing usage, or -1 after printing why. */
static int
parse(int argc, char **argv, struct serve_flags *f)
{
    const struct {
        const char *flag;
        const char **dst;
    } own[] = {
        {"--bind", &f->bind},
        {"--state-root", &f->o.state_root},
        {"--workspace-root", &f->workspace_root},
        {"--routes-file", &f->o.routes_file},
        {"--default-route", &f->default_route},
        {"--workers", &f->o.workers},
        {"--runners", &f->o.runners},
    };
    gate_settings_env(&f->gate);
    for (int a = 0; a < argc; a++) {
        char flag[64];
        const char *value;
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            printf(serve_usage, gate_settings_usage);
            return 1;
        }
        size_t flen = strcspn(argv[a], "=");
        if (strncmp(argv[a], "--", 2) || flen >= sizeof flag) {
            fprintf(stderr, "kheish serve: unexpected argument '%s'\n", argv[a]);
            return -1;
        }
        snprintf(flag, sizeof flag, "%.*s", (int)flen, argv[a]);
        size_t sw = 0;
        while (sw < sizeof switches / sizeof switches[0] && strcmp(flag, switches[sw].flag))
            sw++;
        if (sw < sizeof switches / sizeof switches[0] && argv[a][flen] == '\0') {
            fprintf(stderr, "kheish serve: warning: %s has no effect: %s\n", flag,
                    switches[sw].why);
            continue;
        }
        if (argv[a][flen] == '=')
            value = argv[a] + flen + 1;
        else if (a + 1 < argc)
            value = argv[++a];
        else
            return fprintf(stderr, "kheish serve: %s needs a value\n", flag), -1;
        int taken = 0;
        for (size_t i = 0; i < sizeof own / sizeof own[0] && !taken; i++)
            if (!strcmp(flag, own[i].flag))
                *own[i].dst = value, taken = 1;
        if (gate_settings_flag(&f->gate, flag, value))
            taken = 1;
        int h = taken ? 1 : take_harmless(flag, value);
        if (h < 0 || (!taken && h > 0 && refuse(flag) < 0))
            return -1;
    }
    const char *e;
    if (f->bind == NULL)
        f->bind = (e = getenv("KHEISH_BIND")) && *e ? e : SERVE_DEFAULT_BIND;
    if (f->workspace_root == NULL && (e = getenv("KHEISH_WORKSPACE_ROOT")) && *e)
        f->workspace_root = e;
    if (f->default_route == NULL && (e = getenv("KHEISH_DEFAULT_ROUTE")) && *e)
        f->default_route = e;
    if (f->o.routes_file == NULL) /* serve never inherits a previous up's routes file */
        f->o.routes_file = (e = getenv("KHEISH_ROUTES_FILE")) ? e : "";
    f->gate.auth.bind = f->bind;
    return 0;
}

/* A relative path made absolute: the daemons run in "/". */
static int
absolute(const char *path, char out[PATH_MAX])
{
    char cwd[PATH_MAX];
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        return snprintf(out, PATH_MAX, "%s", path) < PATH_MAX ? 0 : -1;
    return snprintf(out, PATH_MAX, "%s/%s", cwd, path) < PATH_MAX ? 0 : -1;
}

/* A token file that holds no token now (missing, empty, a directory) is
 * accepted, as upstream does (the role has no token until it does: mv a
 * file there), but said; so is one that others may read. */
static void
token_file_warn(const char *flag, const char *path)
{
    char buf[AUTH_TOKEN_MAX_BYTES + 2], err[160] = "";
    unsigned char digest[32];
    struct stat sb;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0)
        snprintf(err, sizeof err, "%s", strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        snprintf(err, sizeof err, "not a regular file");
    else if ((n = read(fd, buf, sizeof buf)) < 0)
        snprintf(err, sizeof err, "%s", strerror(errno));
    else if (auth_parse_token_file(buf, (size_t)n, digest, err, sizeof err) != 0 && !err[0])
        snprintf(err, sizeof err, "it holds no token");
    if (fd >= 0)
        close(fd);
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(digest, sizeof digest);
    if (err[0])
        fprintf(stderr,
                "kheish serve: warning: %s %s: %s; that role's token is refused until the file "
                "holds one\n",
                flag, path, err);
    else if (sb.st_mode & 077)
        fprintf(stderr, "kheish serve: warning: %s %s can be read by others: chmod 600 it\n", flag,
                path);
}

/* Checks the auth and CORS settings as kheish-fcgi will (its startup
 * errors become ours, before anything starts) and hands them to the
 * daemons through the environment. Returns 0 or -1 after printing why. */
static int
gate_prepare(struct serve_flags *f)
{
    static char files[AUTH_ROLES][PATH_MAX];
    struct auth a;
    struct cors c;
    char err[512];
    for (int r = 0; r < AUTH_ROLES; r++) {
        const char *file = f->gate.auth.token_file[r];
        if (file && *file && absolute(file, files[r]) != 0)
            return fprintf(stderr, "kheish serve: token file path too long\n"), -1;
        if (file && *file) {
            f->gate.auth.token_file[r] = files[r];
            token_file_warn(r == AUTH_ROLE_ADMIN ? "--http-admin-token-file"
                                                 : "--http-readonly-token-file",
                            files[r]);
        }
    }
    if (auth_init(&a, &f->gate.auth, err, sizeof err) != 0 ||
        cors_init(&c, f->gate.cors_origins, err, sizeof err) != 0) {
        fprintf(stderr, "kheish serve: %s\n", err);
        return -1;
    }
    if (!a.enabled)
        fprintf(stderr,
                "kheish serve: warning: no admin token on the loopback bind %s: the "
                "control plane is open to every local user (give "
                "--http-admin-token-file to require tokens)\n",
                f->bind);
    if (gate_settings_export(&f->gate) != 0) {
        fprintf(stderr, "kheish serve: cannot set the environment: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* --default-route must name a route of the routes file. */
static int
default_route_check(const struct serve_flags *f)
{
    struct routes r;
    char err[512];
    if (f->default_route == NULL)
        return 0;
    if (f->o.routes_file[0] == '\0') {
        fprintf(stderr, "kheish serve: --default-route needs a routes file (--routes-file)\n");
        return -1;
    }
    if (routes_load(f->o.routes_file, &r, err, sizeof err) != 0) {
        fprintf(stderr, "kheish serve: %s\n", err);
        return -1;
    }
    int found = routes_find(&r, f->default_route) != NULL;
    routes_free(&r);
    if (!found) {
        fprintf(stderr, "kheish serve: --default-route %s is not a route of %s\n", f->default_route,
                f->o.routes_file);
        return -1;
    }
    return setenv("KHEISH_DEFAULT_ROUTE", f->default_route, 1);
}

int
cmd_serve(const struct cli *c, int argc, char **argv)
{
    struct serve_flags f = {0};
    char host[STACK_HOST_MAX + 1], workspace[PATH_MAX] = "";
    int64_t port;
    (void)c;
    int rc = parse(argc, argv, &f);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_BAD_REQUEST;
    const char *colon = strrchr(f.bind, ':');
    if (colon == NULL || (size_t)(colon - f.bind) > STACK_HOST_MAX ||
        util_parse_i64(colon + 1, 1, STACK_MAX_PORT, &port) != 0) {
        fprintf(stderr, "kheish serve: --bind must be HOST:PORT with a port in [1, %d], not '%s'\n",
                STACK_MAX_PORT, f.bind);
        return EXIT_BAD_REQUEST;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - f.bind), f.bind);
    f.o.port = colon + 1;
    if (gate_prepare(&f) != 0 || default_route_check(&f) != 0)
        return EXIT_BAD_REQUEST;
    if (f.workspace_root) {
        if (mkdir(f.workspace_root, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "kheish serve: cannot create the workspace root %s: %s\n",
                    f.workspace_root, strerror(errno));
            return EXIT_GENERIC;
        }
        if (realpath(f.workspace_root, workspace) == NULL) {
            fprintf(stderr, "kheish serve: workspace root %s: %s\n", f.workspace_root,
                    strerror(errno));
            return EXIT_GENERIC;
        }
    }
    log_init("kheish-serve");
    return stack_serve(&f.o, host, workspace);
}
