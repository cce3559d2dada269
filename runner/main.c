/* kheish-runner: flags, then environment, then defaults; see runner.h. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runner.h"
#include "util.h"

static const char usage[] =
    "usage: kheish-runner [options]\n"
    "  --database-url URL     (required)                 KHEISH_DATABASE_URL\n"
    "  --routes-file PATH     (required)                 KHEISH_ROUTES_FILE\n"
    "  --default-route ID     (the file's)               KHEISH_DEFAULT_ROUTE\n"
    "  --lease-ms N           (15000)                    KHEISH_RUNNER_LEASE_MS\n"
    "  --concurrency N        (16) runs at once          KHEISH_RUNNER_CONCURRENCY\n"
    "  --state-root DIR       (none) audit-signing.key   KHEISH_STATE_ROOT\n"
    "  --workspace-root DIR   (DIR/workspace) the sessions' workspaces KHEISH_WORKSPACE_ROOT\n"
    "  --pid-file PATH\n"
    "environment only: KHEISH_AUTH_STORE_MASTER_KEY or _FILE (auth_ref routes),\n"
    "  KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY or _FILE (else DIR/audit-signing.key)\n";

int
runner_config_load(struct runner_config *cfg, int argc, char **argv)
{
    const char *lease = getenv("KHEISH_RUNNER_LEASE_MS");
    const char *concurrency = getenv("KHEISH_RUNNER_CONCURRENCY");
    cfg->database_url = getenv("KHEISH_DATABASE_URL");
    cfg->routes_file = getenv("KHEISH_ROUTES_FILE");
    cfg->default_route = getenv("KHEISH_DEFAULT_ROUTE");
    cfg->state_root = getenv("KHEISH_STATE_ROOT");
    cfg->workspace_root = getenv("KHEISH_WORKSPACE_ROOT");
    const struct {
        const char *flag, **dst;
    } flags[] = {
        {"--database-url", &cfg->database_url},   {"--routes-file", &cfg->routes_file},
        {"--default-route", &cfg->default_route}, {"--lease-ms", &lease},
        {"--concurrency", &concurrency},          {"--pid-file", &cfg->pid_file},
        {"--state-root", &cfg->state_root},       {"--workspace-root", &cfg->workspace_root},
    };
    for (int a = 1; a < argc; a++) {
        size_t i = 0;
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        while (i < sizeof flags / sizeof flags[0] && strcmp(argv[a], flags[i].flag))
            i++;
        if (i == sizeof flags / sizeof flags[0] || a + 1 == argc) {
            fprintf(stderr, "kheish-runner: unknown or incomplete option %s\n%s", argv[a], usage);
            return -1;
        }
        *flags[i].dst = argv[++a];
    }
    if (cfg->database_url == NULL || *cfg->database_url == '\0' || cfg->routes_file == NULL ||
        *cfg->routes_file == '\0') {
        fprintf(stderr, "kheish-runner: --database-url and --routes-file are required\n%s", usage);
        return -1;
    }
    if (cfg->default_route && *cfg->default_route == '\0')
        cfg->default_route = NULL;
    static char workspace[4096];
    if ((cfg->workspace_root == NULL || *cfg->workspace_root == '\0') && cfg->state_root &&
        *cfg->state_root) {
        snprintf(workspace, sizeof workspace, "%s/workspace", cfg->state_root);
        cfg->workspace_root = workspace;
    }
    cfg->lease_ms = RUNNER_DEFAULT_LEASE_MS;
    if (lease && *lease && util_parse_i64(lease, 1000, 3600000, &cfg->lease_ms) != 0) {
        fprintf(stderr, "kheish-runner: --lease-ms must be an integer in [1000, 3600000]\n");
        return -1;
    }
    int64_t n = RUNNER_DEFAULT_CONCURRENCY;
    if (concurrency && *concurrency &&
        util_parse_i64(concurrency, 1, RUNNER_MAX_CONCURRENCY, &n) != 0) {
        fprintf(stderr, "kheish-runner: --concurrency must be an integer in [1, %d]\n",
                RUNNER_MAX_CONCURRENCY);
        return -1;
    }
    cfg->concurrency = (int)n;
    return 0;
}

int
main(int argc, char **argv)
{
    struct runner_config cfg = {0};
    log_init("kheish-runner");
    if (sodium_init() < 0) {
        fprintf(stderr, "kheish-runner: libsodium failed to initialise\n");
        return 1;
    }
    if (runner_config_load(&cfg, argc, argv) != 0)
        return 2;
    return runner_run(&cfg);
}
