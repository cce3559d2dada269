/* loop: the runner's state, shared by its loop (loop.c) and the execution
 * of its runs (run.c). */
#ifndef KHEISH_RUNNER_LOOP_H
#define KHEISH_RUNNER_LOOP_H

#include <curl/curl.h>
#include <signal.h>

#include "provider.h"
#include "routes.h"
#include "runner.h"
#include "sealed.h"
#include "store.h"

/* One claimed run, from its claim to its outcome. */
struct job {
    struct store_work w;
    struct provider_call pc; /* pc.transfer: the attempt in flight */
    char *key;               /* the route's credential; wiped when the job ends */
    json_t *messages;
    int attempt;
    int64_t retry_at_ms; /* > 0: waiting for the next attempt until then */
    int64_t backoff_ms;  /* the wait before the next attempt without Retry-After */
    int64_t next_trace_ms;
    char *text; /* the reply so far; text[0..sent) went out as trace events */
    size_t len, cap, sent;
    const char *status; /* the outcome, once known: completed, failed, interrupted */
    char error[512];
    const char *stop; /* why it ends without an outcome of ours: someone else ended it */
};

struct runner {
    const struct runner_config *cfg;
    struct routes routes;
    struct sealed_key key;
    int has_key;
    struct store *db;
    struct store_listener *listener;
    int64_t listen_retry_ms;
    char host[256];
    char owner[300];        /* kheish-runner@<host>:<pid>: lease owner and application_name */
    struct store_runner me; /* its heartbeat's row (table runners) */
    CURLM *multi;
    struct job **jobs; /* cfg->concurrency slots, njobs used */
    size_t njobs;
    struct store_outcome *batch; /* what goes to the database together, and whose */
    struct job **batch_jobs;
    int want_claim; /* a NOTIFY or a full claim: runs may be waiting */
    int64_t last_claim_ms, next_claim_ms, next_renew_ms, next_maintenance_ms, db_retry_ms;
};

extern volatile sig_atomic_t runner_stopping;

int64_t runner_now_ms(void);

/* run.c: starts a claimed run (its route, credential and first provider
 * call); a run that cannot start gets its failed outcome at once. */
struct job *job_start(struct runner *r, const struct store_work *w);
/* Its attempt ended as curl says (cc): an outcome, or a retry scheduled. */
void job_attempt_done(struct runner *r, struct job *j, CURLcode cc);
/* Starts the next attempt when its wait is over. */
void job_retry_if_due(struct runner *r, struct job *j, int64_t now);
/* Ends the job without an outcome of ours: stops its provider call. */
void job_stop(struct runner *r, struct job *j, const char *why);
/* Ends the job with an outcome (status, error), stopping its call. */
void job_end(struct runner *r, struct job *j, const char *status, const char *error);
void job_free(struct job *j);

#endif
