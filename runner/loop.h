/* loop: the runner's state, shared by its loop (loop.c) and the execution
 * of its runs (run.c). */
#ifndef KHEISH_RUNNER_LOOP_H
#define KHEISH_RUNNER_LOOP_H

#include <curl/curl.h>
#include <signal.h>

#include "ledger.h"
#include "provider.h"
#include "routes.h"
#include "runner.h"
#include "sealed.h"
#include "store.h"

/* What a ledger record waiting in its job holds back (audit.c). */
enum audit_wait {
    AUDIT_REQUEST,  /* a request: the action is made once it is in */
    AUDIT_RESPONSE, /* a response: the run's outcome commits with it, its next attempt waits */
};

/* A record waiting in its job to be appended: what is its own; the rest
 * (session, run, principal) is the job's. kind, target and grant_id point
 * into the job, which outlives the record. */
struct audit_entry {
    enum audit_wait wait;
    int64_t timestamp_ms;
    const char *kind, *target, *grant_id;
    char request_digest[72], response_digest[72];
    char outcome[32]; /* "" for none */
    char record_hash[LEDGER_HASH_HEX + 1];
};

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
    int stop_asked;   /* a NOTIFY named it: stopped once the database confirms */
    /* The external-action ledger (audit.c): the run's bucket as this runner
     * last saw it, and the records waiting to be appended, in order. */
    int64_t audit_count;
    char audit_head[LEDGER_HASH_HEX + 1];
    struct audit_entry *audit;
    size_t naudit, audit_cap;
    int audit_failures; /* turns that did not append them */
    char target[ROUTES_STRING_MAX_BYTES * 2 + 16];
    char principal[200];
    char grant_id[40]; /* the broker lease of an auth_ref route's credential */
};

struct runner {
    const struct runner_config *cfg;
    struct routes routes;
    struct sealed_key key;
    int has_key;
    struct ledger_key audit_key; /* signs the external-action ledger's records */
    struct job **audit_jobs;     /* whose records a turn appends (cfg->concurrency slots) */
    struct store *db;
    struct store_listener *listener;
    int64_t listen_retry_ms;
    char host[256];
    char owner[300];        /* kheish-runner@<host>:<pid>: lease owner and application_name */
    struct store_runner me; /* its heartbeat's row (table runners) */
    int64_t db_clock_ms;    /* the database's clock minus runner_now_ms(), as of the last beat */
    CURLM *multi;
    struct job **jobs; /* cfg->concurrency slots, njobs used */
    size_t njobs;
    struct store_outcome *batch; /* what goes to the database together, and whose */
    struct job **batch_jobs;
    int want_claim; /* a NOTIFY or a full claim: runs may be waiting */
    int stop_asked; /* some job's stop_asked is set */
    int64_t last_claim_ms, next_claim_ms, next_renew_ms, next_maintenance_ms, db_retry_ms;
};

extern volatile sig_atomic_t runner_stopping;

int64_t runner_now_ms(void);
/* The database's clock, as of the last heartbeat, moved on by the
 * monotonic clock: the time a ledger record states. */
int64_t runner_db_now_ms(const struct runner *r);

/* run.c: starts a claimed run (its route, credential and first provider
 * call); a run that cannot start gets its failed outcome at once. */
struct job *job_start(struct runner *r, const struct store_work *w);
/* Its attempt ended as curl says (cc): an outcome, or a retry scheduled. */
void job_attempt_done(struct runner *r, struct job *j, CURLcode cc);
/* 1 when an attempt waits to start at retry_at_ms (its last response record
 * is in). */
int job_retry_due(const struct job *j);
/* Starts the next attempt when its wait is over. */
void job_retry_if_due(struct runner *r, struct job *j, int64_t now);
/* Ends the job without an outcome of ours: stops its provider call. */
void job_stop(struct runner *r, struct job *j, const char *why);
/* Ends the job with an outcome (status, error), stopping its call. */
void job_end(struct runner *r, struct job *j, const char *status, const char *error);
void job_free(struct job *j);
/* Its ledger record e was appended (ok) or could not be (why): the job goes
 * on. */
void job_audited(struct runner *r, struct job *j, const struct audit_entry *e, int ok,
                 const char *why);

/* audit.c: the signed record of each provider call (contract §9). Records
 * are queued in their job (a response's outcome, NULL for a request) and
 * appended with those of every other job by the loop's turn statement
 * (kheish_work): audit_batch signs them into its batch, audit_answered takes
 * its answers, audit_failed counts a statement that failed; job_audited
 * then carries each job on. */
int audit_setup(struct runner *r);
/* Queues the record of the job's provider attempt; -1 when memory ran out
 * (the attempt is then not made, or its run fails). */
int audit_queue(struct runner *r, struct job *j, enum audit_wait w, const char *outcome);
/* Drops the job's records not appended yet of kind w. */
void audit_drop(struct job *j, enum audit_wait w);
json_t *audit_batch(struct runner *r, size_t *n);
void audit_answered(struct runner *r, size_t n, const json_t *answers);
void audit_failed(struct runner *r, size_t n, const char *why);

#endif
