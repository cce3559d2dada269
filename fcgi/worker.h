/* worker: the request loop of one prefork process. */
#ifndef KHEISH_FCGI_WORKER_H
#define KHEISH_FCGI_WORKER_H

#include "config.h"
#include "gate.h"
#include "store.h"

/* State the master shares with every worker (one MAP_SHARED page). */
struct shared_state {
    int draining; /* set by the master on SIGTERM; /readyz answers 503 */
};

struct worker_ctx {
    const struct fcgi_config *cfg;
    struct store *db;
    struct shared_state *shared;
    struct gate *gate;       /* attached to the shared rate-limit table */
    const char *recorded_by; /* "kheish-fcgi@<host>", for audit rows */
};

/* Serves requests until SIGTERM; returns when the current request is done. */
void worker_run(int listen_fd, struct worker_ctx *w);

#endif
