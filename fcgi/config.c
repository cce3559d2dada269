#include "config.h"

#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"
#include "util.h"

static const char usage_head[] =
    "usage: kheish-fcgi --socket PATH [options]\n"
    "  --socket PATH                                                    KHEISH_FCGI_SOCKET\n"
    "  --socket-group GROUP     the group given rw on the socket (nginx)  "
    "KHEISH_FCGI_SOCKET_GROUP\n"
    "  --workers N              (4)                                       KHEISH_FCGI_WORKERS\n"
    "  --database-url URL                                               KHEISH_DATABASE_URL\n"
    "  --state-root DIR         (.kheish)                                 KHEISH_STATE_ROOT\n"
    "  --workspace-root DIR                                             KHEISH_WORKSPACE_ROOT\n"
    "  --max-body-bytes N       (2 MiB)                                   KHEISH_MAX_BODY_BYTES\n"
    "  --drain-ms N             (5000)                                    KHEISH_DRAIN_MS\n"
    "  --pid-file PATH                                                  KHEISH_FCGI_PID_FILE\n"
    "  --routes-file PATH       (none: no route checks)                   KHEISH_ROUTES_FILE\n"
    "  --default-route ID       (the file's)                              KHEISH_DEFAULT_ROUTE\n";
static const char usage_tail[] = "environment only: KHEISH_QUEUED_RUN_LAG_WARNING_THRESHOLD_MS,\n"
                                 "                  KHEISH_STALE_NON_TERMINAL_RUN_THRESHOLD_MS,\n"
                                 "                  KHEISH_INPUT_WAIT_MS (300000),\n"
                                 "                  KHEISH_AUTH_STORE_MASTER_KEY or _FILE (secret "
                                 "writes)\n";

static void
print_usage(FILE *f)
{
    fprintf(f, "%s%s%s", usage_head, gate_settings_usage, usage_tail);
}

struct int_opt {
    const char *flag;
    const char *env;
    int64_t min, max, def;
    int64_t *dst;
};

struct str_opt {
    const char *flag;
    const char *env;
    const char *def;
    const char **dst;
};

/* The routes file, when there is one: loaded once, before the workers fork. */
static int
routes_setup(struct fcgi_config *cfg, char *err, size_t errsz)
{
    if (cfg->routes_file == NULL)
        return 0;
    if (routes_load(cfg->routes_file, &cfg->routes, err, errsz) != 0)
        return -1;
    cfg->has_routes = 1;
    if (cfg->default_route == NULL)
        return 0;
    if (routes_find(&cfg->routes, cfg->default_route) == NULL) {
        snprintf(err, errsz, "--default-route %s is not a route of %s", cfg->default_route,
                 cfg->routes_file);
        return -1;
    }
    free(cfg->routes.default_route);
    cfg->routes.default_route = strdup(cfg->default_route);
    return cfg->routes.default_route ? 0 : -1;
}

/* 1 when path (resolved) lies under the directory root (resolved). */
static int
path_under(const char *path, const char *root)
{
    char p[PATH_MAX], r[PATH_MAX];
    if (path == NULL || realpath(path, p) == NULL || realpath(root, r) == NULL)
        return 0;
    size_t n = strlen(r);
    return !strncmp(p, r, n) && (p[n] == '/' || r[n - 1] == '/');
}

/* Where the master key file and the database are, relative to the state
 * root. The embedded stack's database is a unix socket under <root>/pg. */
static void
placement(struct fcgi_config *cfg)
{
    const char *file = getenv("KHEISH_AUTH_STORE_MASTER_KEY_FILE");
    cfg->master_key_file = file && *file ? file : NULL;
    cfg->master_key_in_state_root = path_under(cfg->master_key_file, cfg->state_root);
    PQconninfoOption *opts = PQconninfoParse(cfg->database_url, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "host") && o->val)
            cfg->database_embedded = o->val[0] == '/' && path_under(o->val, cfg->state_root);
    PQconninfoFree(opts);
}

int
fcgi_config_load(struct fcgi_config *cfg, int argc, char **argv)
{
    int64_t workers;
    struct str_opt strs[] = {
        {"--socket", "KHEISH_FCGI_SOCKET", NULL, &cfg->socket_path},
        {"--database-url", "KHEISH_DATABASE_URL", "", &cfg->database_url},
        {"--state-root", "KHEISH_STATE_ROOT", ".kheish", &cfg->state_root},
        {"--workspace-root", "KHEISH_WORKSPACE_ROOT", NULL, &cfg->workspace_root},
        {"--pid-file", "KHEISH_FCGI_PID_FILE", NULL, &cfg->pid_file},
        {"--socket-group", "KHEISH_FCGI_SOCKET_GROUP", NULL, &cfg->socket_group},
        {"--routes-file", "KHEISH_ROUTES_FILE", NULL, &cfg->routes_file},
        {"--default-route", "KHEISH_DEFAULT_ROUTE", NULL, &cfg->default_route},
    };
    struct int_opt ints[] = {
        {"--workers", "KHEISH_FCGI_WORKERS", 1, POOL_MAX_WORKERS, POOL_DEFAULT_WORKERS, &workers},
        {"--max-body-bytes", "KHEISH_MAX_BODY_BYTES", 1024, 64 * 1024 * 1024,
         CONFIG_DEFAULT_MAX_BODY_BYTES, &cfg->max_body_bytes},
        {"--drain-ms", "KHEISH_DRAIN_MS", 0, 600000, POOL_DEFAULT_DRAIN_MS, &cfg->drain_ms},
        {NULL, "KHEISH_QUEUED_RUN_LAG_WARNING_THRESHOLD_MS", 1, INT64_MAX / 2,
         CONFIG_DEFAULT_THRESHOLD_MS, &cfg->queued_run_lag_threshold_ms},
        {NULL, "KHEISH_STALE_NON_TERMINAL_RUN_THRESHOLD_MS", 1, INT64_MAX / 2,
         CONFIG_DEFAULT_THRESHOLD_MS, &cfg->stale_non_terminal_run_threshold_ms},
        {NULL, "KHEISH_INPUT_WAIT_MS", 0, URI_INPUT_WAIT_MAX_MS, CONFIG_DEFAULT_INPUT_WAIT_MS,
         &cfg->input_wait_ms},
    };
    size_t nstr = sizeof strs / sizeof strs[0], nint = sizeof ints / sizeof ints[0];
    const char *ival[sizeof ints / sizeof ints[0]] = {0};

    for (size_t i = 0; i < nstr; i++) {
        const char *e = getenv(strs[i].env);
        *strs[i].dst = e && *e ? e : strs[i].def;
    }
    for (size_t i = 0; i < nint; i++)
        ival[i] = getenv(ints[i].env);
    gate_settings_env(&cfg->gate);
    for (int a = 1; a < argc; a++) {
        int matched = 0;
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            print_usage(stdout);
            exit(0);
        }
        if (a + 1 < argc && gate_settings_flag(&cfg->gate, argv[a], argv[a + 1])) {
            a++;
            continue;
        }
        for (size_t i = 0; i < nstr && !matched; i++)
            if (strs[i].flag && !strcmp(argv[a], strs[i].flag) && a + 1 < argc)
                *strs[i].dst = argv[++a], matched = 1;
        for (size_t i = 0; i < nint && !matched; i++)
            if (ints[i].flag && !strcmp(argv[a], ints[i].flag) && a + 1 < argc)
                ival[i] = argv[++a], matched = 1;
        if (!matched) {
            fprintf(stderr, "kheish-fcgi: unknown or incomplete option %s\n", argv[a]);
            print_usage(stderr);
            return -1;
        }
    }
    for (size_t i = 0; i < nint; i++) {
        if (ival[i] == NULL || *ival[i] == '\0') {
            *ints[i].dst = ints[i].def;
        } else if (util_parse_i64(ival[i], ints[i].min, ints[i].max, ints[i].dst) != 0) {
            fprintf(stderr, "kheish-fcgi: %s must be an integer in [%lld, %lld]\n",
                    ints[i].flag ? ints[i].flag : ints[i].env, (long long)ints[i].min,
                    (long long)ints[i].max);
            return -1;
        }
    }
    cfg->workers = (int)workers;
    cfg->gate.state_root = cfg->state_root;
    char err[512];
    cfg->has_master_key = sealed_key_from_env(&cfg->master_key, err, sizeof err);
    if (cfg->has_master_key < 0 || routes_setup(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "kheish-fcgi: %s\n", err);
        return -1;
    }
    json_t *runtime_routes = routes_runtime(cfg->has_routes ? &cfg->routes : NULL);
    cfg->runtime_routes = json_dumps(runtime_routes, JSON_COMPACT);
    json_decref(runtime_routes);
    if (cfg->runtime_routes == NULL) {
        fprintf(stderr, "kheish-fcgi: out of memory\n");
        return -1;
    }
    placement(cfg);
    if (cfg->socket_path == NULL) {
        fprintf(stderr, "kheish-fcgi: --socket (or KHEISH_FCGI_SOCKET) is required\n");
        print_usage(stderr);
        return -1;
    }
    return 0;
}
