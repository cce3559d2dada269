/* config: kheish-fcgi settings from flags, then environment, then defaults. */
#ifndef KHEISH_FCGI_CONFIG_H
#define KHEISH_FCGI_CONFIG_H

#include <stdint.h>

#include "gate.h"
#include "pool.h"
#include "routes.h"
#include "sealed.h"

#define CONFIG_DEFAULT_MAX_BODY_BYTES (2 * 1024 * 1024)
#define CONFIG_DEFAULT_THRESHOLD_MS   1800000 /* 30 min, queued-lag and stale-run warnings */
#define CONFIG_DEFAULT_INPUT_WAIT_MS  300000  /* 5 min */

struct fcgi_config {
    const char *socket_path;
    const char *database_url;
    const char *state_root;
    const char *workspace_root;
    const char *pid_file;
    int workers;
    int64_t max_body_bytes;
    int64_t drain_ms;
    int64_t queued_run_lag_threshold_ms;
    int64_t stale_non_terminal_run_threshold_ms;
    int64_t input_wait_ms;    /* an inline /input's wait (held by a relay) for its run */
    const char *socket_group; /* group given rw on the socket (nginx's workers) */
    struct gate_settings gate;
    /* The auth store's master key (KHEISH_AUTH_STORE_MASTER_KEY[_FILE]):
     * without it, secrets can be listed and deleted but not written. */
    struct sealed_key master_key;
    int has_master_key;
    /* Where the key and the database live (storage block of /v1/status): a
     * key file inside the state root of a stack whose database is
     * elsewhere travels with every copy of the state root. */
    const char *master_key_file;  /* KHEISH_AUTH_STORE_MASTER_KEY_FILE, or NULL */
    int master_key_in_state_root; /* that file lies under the state root */
    int database_embedded;        /* the database's socket lies under the state root */
    /* The routes the runners execute (--routes-file): submissions to a
     * route in error are refused, /v1/status shows each route's readiness.
     * Without one, neither happens. */
    const char *routes_file, *default_route;
    struct routes routes;
    int has_routes;
    char *runtime_routes; /* routes_runtime as JSON text, for the runtime view */
};

/* Fills cfg from argv and the environment. Returns 0, or -1 after printing
 * the reason to stderr. */
int fcgi_config_load(struct fcgi_config *cfg, int argc, char **argv);

#endif
