#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char usage[] =
    "usage: kheish-fcgi --socket PATH [--socket-group GROUP] [--workers N]\n"
    "                   [--database-url URL] [--state-root DIR] [--workspace-root DIR]\n"
    "                   [--max-body-bytes N] [--drain-ms N] [--pid-file PATH]\n"
    "                   [--bind HOST:PORT] [--http-auth-mode auto|none|bearer]\n"
    "                   [--http-admin-token T | --http-admin-token-file P]\n"
    "                   [--http-readonly-token T | --http-readonly-token-file P]\n"
    "                   [--http-cors-allow-origin ORIGIN]...\n"
    "environment: KHEISH_FCGI_SOCKET KHEISH_FCGI_SOCKET_GROUP KHEISH_FCGI_WORKERS\n"
    "             KHEISH_DATABASE_URL KHEISH_STATE_ROOT KHEISH_WORKSPACE_ROOT\n"
    "             KHEISH_MAX_BODY_BYTES KHEISH_DRAIN_MS KHEISH_BIND KHEISH_HTTP_AUTH_MODE\n"
    "             KHEISH_DAEMON_ADMIN_TOKEN[_FILE] KHEISH_DAEMON_READONLY_TOKEN[_FILE]\n"
    "             KHEISH_HTTP_CORS_ALLOW_ORIGINS (comma list)\n"
    "             KHEISH_QUEUED_RUN_LAG_WARNING_THRESHOLD_MS\n"
    "             KHEISH_STALE_NON_TERMINAL_RUN_THRESHOLD_MS\n"
    "--bind is the address the public listener (nginx) binds: without auth it\n"
    "must be loopback.\n";

#define CONFIG_CORS_FLAG "--http-cors-allow-origin"

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

int
config_load(struct config *cfg, int argc, char **argv)
{
    int64_t workers;
    struct str_opt strs[] = {
        {"--socket", "KHEISH_FCGI_SOCKET", NULL, &cfg->socket_path},
        {"--database-url", "KHEISH_DATABASE_URL", "", &cfg->database_url},
        {"--state-root", "KHEISH_STATE_ROOT", ".kheish", &cfg->state_root},
        {"--workspace-root", "KHEISH_WORKSPACE_ROOT", NULL, &cfg->workspace_root},
        {"--pid-file", "KHEISH_FCGI_PID_FILE", NULL, &cfg->pid_file},
        {"--socket-group", "KHEISH_FCGI_SOCKET_GROUP", NULL, &cfg->socket_group},
        {"--bind", "KHEISH_BIND", NULL, &cfg->gate.auth.bind},
        {"--http-auth-mode", "KHEISH_HTTP_AUTH_MODE", NULL, &cfg->gate.auth.mode},
        {"--http-admin-token", "KHEISH_DAEMON_ADMIN_TOKEN", NULL,
         &cfg->gate.auth.token[AUTH_ROLE_ADMIN]},
        {"--http-admin-token-file", "KHEISH_DAEMON_ADMIN_TOKEN_FILE", NULL,
         &cfg->gate.auth.token_file[AUTH_ROLE_ADMIN]},
        {"--http-readonly-token", "KHEISH_DAEMON_READONLY_TOKEN", NULL,
         &cfg->gate.auth.token[AUTH_ROLE_READ_ONLY]},
        {"--http-readonly-token-file", "KHEISH_DAEMON_READONLY_TOKEN_FILE", NULL,
         &cfg->gate.auth.token_file[AUTH_ROLE_READ_ONLY]},
        {NULL, "KHEISH_HTTP_CORS_ALLOW_ORIGINS", NULL, &cfg->gate.cors_origins},
    };
    /* Repeated --http-cors-allow-origin flags, joined into one comma list
     * that replaces the environment's. */
    static char origins[CORS_MAX_ORIGINS * (CORS_ORIGIN_MAX_LEN + 1) + 1];
    origins[0] = '\0';
    struct int_opt ints[] = {
        {"--workers", "KHEISH_FCGI_WORKERS", 1, CONFIG_MAX_WORKERS, CONFIG_DEFAULT_WORKERS,
         &workers},
        {"--max-body-bytes", "KHEISH_MAX_BODY_BYTES", 1024, 64 * 1024 * 1024,
         CONFIG_DEFAULT_MAX_BODY_BYTES, &cfg->max_body_bytes},
        {"--drain-ms", "KHEISH_DRAIN_MS", 0, 600000, CONFIG_DEFAULT_DRAIN_MS, &cfg->drain_ms},
        {NULL, "KHEISH_QUEUED_RUN_LAG_WARNING_THRESHOLD_MS", 1, INT64_MAX / 2,
         CONFIG_DEFAULT_THRESHOLD_MS, &cfg->queued_run_lag_threshold_ms},
        {NULL, "KHEISH_STALE_NON_TERMINAL_RUN_THRESHOLD_MS", 1, INT64_MAX / 2,
         CONFIG_DEFAULT_THRESHOLD_MS, &cfg->stale_non_terminal_run_threshold_ms},
    };
    size_t nstr = sizeof strs / sizeof strs[0], nint = sizeof ints / sizeof ints[0];
    const char *ival[sizeof ints / sizeof ints[0]] = {0};

    for (size_t i = 0; i < nstr; i++) {
        const char *e = getenv(strs[i].env);
        *strs[i].dst = e && *e ? e : strs[i].def;
    }
    for (size_t i = 0; i < nint; i++)
        ival[i] = getenv(ints[i].env);
    for (int a = 1; a < argc; a++) {
        int matched = 0;
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(argv[a], CONFIG_CORS_FLAG) && a + 1 < argc) {
            size_t used = strlen(origins);
            snprintf(origins + used, sizeof origins - used, "%s%s", used ? "," : "", argv[++a]);
            cfg->gate.cors_origins = origins;
            continue;
        }
        for (size_t i = 0; i < nstr && !matched; i++)
            if (strs[i].flag && !strcmp(argv[a], strs[i].flag) && a + 1 < argc)
                *strs[i].dst = argv[++a], matched = 1;
        for (size_t i = 0; i < nint && !matched; i++)
            if (ints[i].flag && !strcmp(argv[a], ints[i].flag) && a + 1 < argc)
                ival[i] = argv[++a], matched = 1;
        if (!matched) {
            fprintf(stderr, "kheish-fcgi: unknown or incomplete option %s\n%s", argv[a], usage);
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
    if (cfg->socket_path == NULL) {
        fprintf(stderr, "kheish-fcgi: --socket (or KHEISH_FCGI_SOCKET) is required\n%s", usage);
        return -1;
    }
    return 0;
}
