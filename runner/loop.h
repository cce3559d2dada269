/* loop: the runner's state, shared by its loop (loop.c) and the execution
 * of its runs (run.c). */
#ifndef KHEISH_RUNNER_LOOP_H
#define KHEISH_RUNNER_LOOP_H

#include <curl/curl.h>
#include <signal.h>

#include "ledger.h"
#include "permissions.h"
#include "provider.h"
#include "routes.h"
#include "runner.h"
#include "sealed.h"
#include "store.h"
#include "tool_shell.h"

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
    const char *tool_call_id; /* a tool call's, else NULL */
    char request_digest[72], response_digest[72];
    char outcome[32]; /* "" for none */
    char record_hash[LEDGER_HASH_HEX + 1];
};

/* One tool call of a job's current turn (agent.c). The strings point into
 * the turn's calls, which the job keeps until its next turn. */
struct tool_run {
    const char *id, *name;
    const json_t *input;                  /* NULL: the arguments were malformed */
    json_t *permission;                   /* the decision's audit record (perm_audit_json) */
    int allowed;                          /* the decision was allow: the tool runs once recorded */
    char target[PERM_NAME_MAX_BYTES + 8]; /* tool:<name> */
    char grant[PERM_NAME_MAX_BYTES + 64]; /* permission:<mode>:<rule>, what allowed it */
    char input_digest[72];
    struct shell_proc *shell; /* a bash call running */
    json_t *result;           /* what the model gets back, once known */
    int is_error;
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
    char *text; /* the replies so far; text[0..sent) went out as trace events */
    size_t len, cap, sent;
    size_t turn_start;  /* where the current turn's reply starts in text */
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
    /* The agent loop (agent.c): the model's turns so far, the current
     * turn's tool calls (ncalls, left of them without a result), and the
     * steps the next report carries ({turns, results}; NULL: none). */
    int turn;
    json_t *turn_calls;
    struct tool_run *calls;
    size_t ncalls, calls_left;
    int asked; /* calls of the turn that wait for an operator's approval */
    json_t *steps;
    int ws;            /* the session's workspace directory, -1 until opened */
    char grant_id[40]; /* the broker lease of an auth_ref route's credential */
};

struct runner {
    const struct runner_config *cfg;
    struct routes routes;
    struct sealed_key key;
    int has_key;
    struct ledger_key audit_key; /* signs the external-action ledger's records */
    /* The agent loop (agent.c): the tools offered to the model, the
     * permission settings (from the runtime settings, at each heartbeat),
     * how bash runs, and where the sessions' workspaces are. */
    json_t *tools;
    enum perm_mode perm_mode;
    struct perm_rules perm_rules;
    int64_t settings_revision;
    int64_t max_calls_per_turn, max_timeout_ms, max_turns;
    int64_t approval_ttl_ms; /* KHEISH_APPROVAL_TTL_MS: an approval expires unanswered; 0: never */
    struct shell_host shell;
    struct shell_limits shell_limits;
    int has_shell;
    char shell_why[256]; /* why there is no bash tool */
    const char *workspace_root;
    struct job **audit_jobs; /* whose records a turn appends (cfg->concurrency slots) */
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
    struct store_report *batch; /* what goes to the database together, and whose */
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
/* The next model turn: a new attempt, its retries counted anew. */
void job_next_turn(struct runner *r, struct job *j);
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

/* agent.c: the model's tool calls. agent_setup builds the tools offered
 * and decides how bash runs; agent_settings takes the runtime settings
 * (permission mode and rules, tool limits). agent_turn takes a finished
 * provider attempt: 0 when it was the run's last turn (no tool call),
 * else 1 and the job goes on (its calls decided, the allowed ones run once
 * their request records are in: agent_tool_recorded; the next provider
 * attempt once every call has a result, or, when the permission engine
 * asked about some, the job's end waiting_for_approval). agent_fds and
 * agent_step drive the bash commands running; agent_stop ends a job's. */
int agent_setup(struct runner *r);
void agent_teardown(struct runner *r);
void agent_settings(struct runner *r, const json_t *revision);
int agent_turn(struct runner *r, struct job *j);
/* A run resumed after a wait (its store_work's resume): the conversation
 * gets its turns back, and the last turn's calls without a result are made
 * or refused as their approvals say. 0 when it has no turn (it starts
 * afresh), else 1 and the job goes on as after agent_turn. */
int agent_resume(struct runner *r, struct job *j);
void agent_tool_recorded(struct runner *r, struct job *j, const char *tool_call_id);
size_t agent_fds(const struct runner *r, struct curl_waitfd *fds, size_t max);
int64_t agent_deadline_ms(const struct runner *r);
void agent_step(struct runner *r, int64_t now);
void agent_stop(struct runner *r, struct job *j);
void agent_free(struct job *j);

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
/* Queues the record of tool call t: its request (outcome NULL), or its
 * response with the digest of its result. -1 when memory ran out. */
int audit_queue_tool(struct runner *r, struct job *j, enum audit_wait w, const struct tool_run *t,
                     const char *outcome, const char *response_digest);
/* Drops the job's records not appended yet of kind w. */
void audit_drop(struct job *j, enum audit_wait w);
json_t *audit_batch(struct runner *r, size_t *n);
void audit_answered(struct runner *r, size_t n, const json_t *answers);
void audit_failed(struct runner *r, size_t n, const char *why);

#endif
