/* kheish-sse-relay: settings from flags, then environment, then defaults. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay.h"

static const char usage_head[] =
    "usage: kheish-sse-relay [options]\n"
    "  --listen PATH|HOST:PORT  (127.0.0.1:4010) a unix socket path, or an address\n"
    "                       only nginx can reach                    KHEISH_RELAY_LISTEN\n"
    "  --socket-group GROUP the group given rw on the socket (nginx)  KHEISH_RELAY_SOCKET_GROUP\n"
    "  --database-url URL                                         KHEISH_DATABASE_URL\n"
    "  --state-root DIR     (.kheish)                               KHEISH_STATE_ROOT\n"
    "  --pid-file PATH                                            KHEISH_RELAY_PID_FILE\n";

static void
print_usage(FILE *f)
{
    fprintf(f, "%s%s", usage_head, gate_settings_usage);
}

int
relay_config_load(struct relay_config *cfg, int argc, char **argv)
{
    struct {
        const char *flag, *env, *def;
        const char **dst;
    } opts[] = {
        {"--listen", "KHEISH_RELAY_LISTEN", "127.0.0.1:4010", &cfg->listen},
        {"--socket-group", "KHEISH_RELAY_SOCKET_GROUP", NULL, &cfg->socket_group},
        {"--database-url", "KHEISH_DATABASE_URL", "", &cfg->database_url},
        {"--state-root", "KHEISH_STATE_ROOT", ".kheish", &cfg->state_root},
        {"--pid-file", "KHEISH_RELAY_PID_FILE", NULL, &cfg->pid_file},
    };
    size_t n = sizeof opts / sizeof opts[0];
    for (size_t i = 0; i < n; i++) {
        const char *e = getenv(opts[i].env);
        *opts[i].dst = e && *e ? e : opts[i].def;
    }
    gate_settings_env(&cfg->gate);
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            print_usage(stdout);
            exit(0);
        }
        size_t i = 0;
        while (i < n && (a + 1 >= argc || strcmp(argv[a], opts[i].flag)))
            i++;
        if (i < n)
            *opts[i].dst = argv[++a];
        else if (a + 1 < argc && gate_settings_flag(&cfg->gate, argv[a], argv[a + 1]))
            a++;
        else {
            fprintf(stderr, "kheish-sse-relay: unknown or incomplete option %s\n", argv[a]);
            print_usage(stderr);
            return -1;
        }
    }
    cfg->gate.state_root = cfg->state_root;
    return 0;
}

int
main(int argc, char **argv)
{
    struct relay_config cfg = {0};
    log_init("kheish-sse-relay");
    if (sodium_init() < 0) {
        fprintf(stderr, "kheish-sse-relay: libsodium failed to initialise\n");
        return 1;
    }
    if (relay_config_load(&cfg, argc, argv) != 0)
        return 2;
    return relay_run(&cfg);
}
