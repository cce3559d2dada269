/* loop: the runner's state, shared by its loop (loop.c) and the execution
 * of one run (run.c). */
#ifndef KHEISH_RUNNER_LOOP_H
#define KHEISH_RUNNER_LOOP_H

#include <signal.h>

#include "routes.h"
#include "runner.h"
#include "sealed.h"
#include "store.h"

struct runner {
    const struct runner_config *cfg;
    struct routes routes;
    struct sealed_key key;
    int has_key;
    struct store *db;
    struct store_listener *listener;
    int64_t listen_retry_ms;
    char owner[300]; /* kheish-runner@<host>:<pid>: lease owner and application_name */
    /* the run being executed, and what stops it */
    const struct store_work *current;
    int cancelled;  /* a kheish_control NOTIFY named it */
    int lease_lost; /* a renewal found it no longer ours */
    int64_t next_renew_ms;
};

extern volatile sig_atomic_t runner_stopping;

int64_t runner_now_ms(void);

/* Reads pending notifications (waking the loop, marking a cancel) and
 * renews the current run's lease when due. Returns nonzero when the current
 * run must stop: cancelled, lease lost, or the runner is stopping. */
int runner_tick(struct runner *r);

/* Executes a claimed run to its end (run.c). */
void runner_execute(struct runner *r, const struct store_work *w);

#endif
