/*
 * kheish-sse-relay: the SSE streams of contract §2, from the events table.
 * One process, one epoll loop: a LISTEN connection for the commit hint, a
 * query connection for reads, the listening socket (behind nginx), clients.
 */
#ifndef KHEISH_RELAY_H
#define KHEISH_RELAY_H

#include <stdint.h>

#include "gate.h"

#define RELAY_HEAD_MAX_BYTES  8192           /* request line and headers */
#define RELAY_TAIL_PAGE       1000           /* events read per tail query */
#define RELAY_REPLAY_PAGE     500            /* events a replaying client gets per loop turn */
#define RELAY_PAGE_BYTES      (256 * 1024)   /* and at most this many bytes of frames per page */
#define RELAY_POLL_MS         1000           /* tail read without a NOTIFY, at least this often */
#define RELAY_HEARTBEAT_MS    10000          /* typed heartbeat frames, per stream */
#define RELAY_BEAT_TICK_MS    100            /* streams due a heartbeat get it this often */
#define RELAY_SOFT_CAP        (256 * 1024)   /* a client may stay above this ... */
#define RELAY_SOFT_CAP_MS     5000           /* ... this long, */
#define RELAY_HARD_CAP        (1024 * 1024)  /* and never above this: then live_lag, close */
#define RELAY_SOCKET_SNDBUF   RELAY_SOFT_CAP /* SO_SNDBUF of a client's unix socket (doubled) */
#define RELAY_CLOSE_GRACE_MS  1000           /* to flush a last frame before closing */
#define RELAY_HEAD_TIMEOUT_MS 10000          /* to send the request head */
#define RELAY_FD_RESERVE      32             /* descriptors kept free: new clients get 503 */
#define RELAY_LISTEN_RETRY_MS 1000           /* reconnect pace of the LISTEN connection */
#define RELAY_REPORT_MS       5000           /* relay_stats update, for /v1/status */
#define RELAY_REQUEST_ID_MAX  64             /* bytes of X-Request-Id kept (nginx's: 32) */

struct relay_config {
    const char *listen;       /* a unix socket path (only nginx may connect), or host:port */
    const char *socket_group; /* the socket's group (nginx's workers); NULL: ours */
    const char *database_url; /* application role */
    const char *state_root;
    const char *pid_file; /* written once listening, removed at exit */
    struct gate_settings gate;
};

int relay_config_load(struct relay_config *cfg, int argc, char **argv);

/* Runs until SIGTERM or SIGINT. Returns the exit status. */
int relay_run(const struct relay_config *cfg);

#endif
