/*
 * kheish-runner: executes runs (ARCHITECTURE.md, "The walk of one run").
 * Any number of runners, on any hosts, share the work through PostgreSQL:
 * each claims the oldest runnable runs with FOR UPDATE SKIP LOCKED and a
 * lease it renews, executes up to --concurrency of them at once (their
 * provider calls, provider.c, are transfers on one event loop), streams
 * trace events in small batches and commits each outcome in one
 * transaction, batched with the others ready at the same time. A cancel or an interrupt reaches it
 * as a NOTIFY on kheish_control and aborts the provider call. Whichever runner holds the
 * maintenance advisory lock recovers the runs of runners that died.
 */
#ifndef KHEISH_RUNNER_H
#define KHEISH_RUNNER_H

#include <stdint.h>

#define RUNNER_DEFAULT_LEASE_MS    15000
#define RUNNER_POLL_MS             1000   /* claim attempt without a NOTIFY, at least this often */
#define RUNNER_CLAIM_GAP_MS        20     /* at least this between two claims of a runner */
#define RUNNER_MAINTENANCE_MS      1000   /* lease recovery, by the maintenance lock's holder */
#define RUNNER_TRACE_BATCH_MS      50     /* text deltas go out as trace events this often */
#define RUNNER_ATTEMPTS            5      /* provider calls per run (429, 5xx, no connection) */
#define RUNNER_BACKOFF_MS          500    /* first wait between attempts, doubling ... */
#define RUNNER_BACKOFF_MAX_MS      30000  /* ... up to this, or the provider's Retry-After */
#define RUNNER_CREDENTIAL_TTL_MS   600000 /* broker lease on a route's slot, per run */
#define RUNNER_LISTEN_RETRY_MS     1000
#define RUNNER_WAIT_FDS            256 /* descriptors the loop sleeps on: LISTEN, bash commands */
#define RUNNER_DB_RETRY_MS         200 /* a failed claim, renewal or commit is tried again after */
#define RUNNER_DEFAULT_CONCURRENCY 16
#define RUNNER_MAX_CONCURRENCY     1024

struct runner_config {
    const char *database_url;
    const char *routes_file;
    const char *default_route; /* overrides the file's default */
    const char *pid_file;
    const char *state_root;     /* where audit-signing.key is made when no key is given */
    const char *workspace_root; /* the sessions' workspaces (default <state_root>/workspace) */
    int64_t lease_ms;
    int concurrency; /* runs executed at once */
};

int runner_config_load(struct runner_config *cfg, int argc, char **argv);

/* Runs until SIGTERM or SIGINT. Returns the exit status (2: bad settings). */
int runner_run(const struct runner_config *cfg);

#endif
