/*
 * store: the only module that speaks SQL.
 *
 * Every durable fact lives in PostgreSQL. Callers get typed results (jansson
 * objects built by the database's view functions) and an enum store_rc that
 * says what went wrong; they turn it into a problem+json or an exit code in one
 * place. Every statement is parameterised.
 */
#ifndef KHEISH_STORE_H
#define KHEISH_STORE_H

#include <jansson.h>
#include <stdint.h>

struct store;

/* An actor: who asks for a write, as the JSON object text the API builds
 * once per request (fcgi/worker.c: role, token_fingerprint, remote_addr,
 * request_id, user_agent, method, path). Every write the API makes takes
 * one, right after the store, and its SQL function records it in
 * admin_actions (sql/migrations/014) and links the rows it changes. NULL:
 * no actor (the runners, the maintenance pass, the offline CLI), nothing
 * recorded. */

/* What a store call answers, in one table: X(ID, name, message, HTTP
 * status, problem domain, problem code). name is what a database function
 * answers with ({"result": name}); the API turns the error into that
 * problem+json (fcgi/http.c), the message being its detail. */
#define STORE_ERRORS(X)                                                                            \
    X(OK, "ok", "ok", 500, NULL, "internal_error")                                                 \
    /* the database cannot be reached */                                                           \
    X(UNAVAILABLE, "unavailable", "database unavailable", 503, "storage", "database_unavailable")  \
    /* unexpected database error (logged) */                                                       \
    X(ERROR, "error", "database error", 500, NULL, "internal_error")                               \
    /* serialization failure or deadlock: retry the transaction */                                 \
    X(RETRY, "retry", "transaction conflict, retry", 503, "storage", "database_contention")        \
    X(SESSION_NOT_FOUND, "session_not_found", "session not found", 404, "sessions",                \
      "session_not_found")                                                                         \
    X(RUN_NOT_FOUND, "run_not_found", "run not found", 404, "runs", "run_not_found")               \
    X(REVISION_NOT_FOUND, "revision_not_found", "runtime revision not found", 404, "runtime",      \
      "runtime_revision_not_found")                                                                \
    /* create with a persona/scope differing from the stored one */                                \
    X(SESSION_CONFLICT, "session_conflict", "session exists with different settings", 409,         \
      "sessions", "session_conflict")                                                              \
    /* new work for an ended session */                                                            \
    X(SESSION_ENDED, "session_ended", "session has ended", 409, "sessions", "session_ended")       \
    /* a transition the run state machine refuses */                                               \
    X(RUN_STATE_CONFLICT, "run_state_conflict", "run state transition not allowed", 409, "runs",   \
      "run_state_conflict")                                                                        \
    /* same Idempotency-Key, different payload */                                                  \
    X(IDEMPOTENCY_CONFLICT, "idempotency_conflict",                                                \
      "idempotency key reused with a different payload", 409, "idempotency",                       \
      "idempotency_conflict")                                                                      \
    /* stale expected_revision */                                                                  \
    X(REVISION_CONFLICT, "revision_conflict", "runtime revision changed since expected_revision",  \
      409, "runtime", "runtime_revision_conflict")                                                 \
    /* an applied migration's file changed */                                                      \
    X(MIGRATION_CHANGED, "migration_changed", "an applied migration was changed", 500, NULL,       \
      "internal_error")                                                                            \
    X(SECRET_NOT_FOUND, "secret_not_found", "secret not found", 404, "secrets",                    \
      "secret_not_found")                                                                          \
    /* slots are sealed with another master key */                                                 \
    X(KEY_MISMATCH, "key_mismatch", "the auth store is sealed with a different master key", 409,   \
      "secrets", "master_key_mismatch")                                                            \
    X(LEASE_NOT_FOUND, "lease_not_found", "lease not found", 404, "runtime", "lease_not_found")    \
    X(SUBJECT_NOT_FOUND, "subject_not_found", "subject not found", 404, "runtime",                 \
      "subject_not_found")                                                                         \
    /* a run is queued or active (POST .../input) */                                               \
    X(SESSION_BUSY, "session_busy", "the session has a queued or active run", 409, "sessions",     \
      "session_busy")                                                                              \
    /* approvals resolved for a run that does not wait for any */                                  \
    X(APPROVAL_STATE_CONFLICT, "approval_state_conflict", "the run is not waiting for approval",   \
      409, "approvals", "approval_state_conflict")                                                 \
    /* a batch of resolutions: one request id twice */                                             \
    X(APPROVAL_DUPLICATE, "approval_duplicate", "a request id is resolved twice in the batch",     \
      400, "approvals", "approval_request_duplicate")                                              \
    /* ... one that is none of the run's approvals */                                              \
    X(APPROVAL_UNKNOWN, "approval_unknown", "a request id is not one of the run's approvals", 404, \
      "approvals", "approval_request_not_found")                                                   \
    /* ... one already resolved, expired or withdrawn */                                           \
    X(APPROVAL_STALE, "approval_stale", "a request id is no longer pending", 409, "approvals",     \
      "approval_request_stale")

enum store_rc {
#define STORE_RC(id, ...) STORE_##id,
    STORE_ERRORS(STORE_RC)
#undef STORE_RC
};

const char *store_strerror(enum store_rc rc);

/* Per-host facts the runtime view reports next to the database's settings. */
struct store_host {
    const char *state_root;
    const char *workspace_root;
    const char *routes; /* routes_runtime as JSON text: the runtime view's routes; NULL: none */
};

/* Connection. store_open never fails on an unreachable database: the first
 * query connects (with retry and backoff up to connect_budget_ms). */
struct store *store_open(const char *conninfo, const struct store_host *host);
void store_close(struct store *s);
void store_set_connect_budget(struct store *s, int ms);
enum store_rc store_ping(struct store *s);
const char *store_last_error(const struct store *s);

/* Tail of the stream events after cursor, in id order (used by readers and tests). */
enum store_rc store_events_after(struct store *s, int64_t cursor, int limit, json_t **items);

/* The SSE relay's reads (store/stream.c). A frame is a stream event as the
 * relay sends it, rendered by the database: "id: N\nevent: NAME\ndata:
 * JSON\n\n". */
struct store_frame {
    int64_t id;
    char *session_id; /* NULL when the event has none */
    char *run_id;
    char *text;
    size_t len;
};

/* Events after `after` in id order, only a session's and/or a run's when
 * given: up to limit of them, stopping once max_bytes of frames are in (at
 * least one). *more says whether the page was cut. Free with
 * store_frames_free. */
enum store_rc store_stream_frames(struct store *s, int64_t after, const char *session_id,
                                  const char *run_id, int limit, int64_t max_bytes,
                                  struct store_frame **out, int *n, int *more);
void store_frames_free(struct store_frame *f, int n);
enum store_rc store_stream_newest(struct store *s, int64_t *newest);

/* What retention took from a stream after its cursor (sql/functions/events.sql). */
struct store_gap {
    int64_t skipped;      /* the stream's events that are gone */
    int64_t resume_after; /* the newest pruned id: resuming after it loses nothing more */
    int estimate;         /* skipped is an upper bound, not exact */
};
/* *found = 1 and *gap when events of this stream after `after` were pruned. */
enum store_rc store_stream_gap(struct store *s, int64_t after, const char *session_id,
                               const char *run_id, struct store_gap *gap, int *found);

/* Secret slots (store/secrets.c, sql/migrations/005). The caller seals the value with
 * the master key (common/sealed.h) for the version the store picks; only
 * ciphertext is stored. Statuses are AuthSlotStatus documents. */
struct store_slot_write {
    const char *slot_id, *provider, *mode;
    const char *key_id; /* fingerprint of the sealing key */
    /* Seals the value for version into nonce and *ct (malloc'd; the store
     * frees it). Returns 0 or -1. */
    int (*seal)(void *ctx, int64_t version, unsigned char nonce[24], unsigned char **ct,
                size_t *ct_len);
    void *ctx;
    const char *recorded_by; /* for the slot audit */
};
/* Creates or overwrites a slot (revoking its active leases). */
enum store_rc store_slot_put(struct store *s, const char *actor, const struct store_slot_write *w,
                             json_t **status);
enum store_rc store_slot_status(struct store *s, const char *slot_id, json_t **status);
enum store_rc store_slot_list(struct store *s, json_t **list);
enum store_rc store_slot_delete(struct store *s, const char *actor, const char *slot_id,
                                const char *recorded_by);
/* Revokes every active lease of an existing slot. */
enum store_rc store_slot_revoke_leases(struct store *s, const char *actor, const char *slot_id,
                                       const char *recorded_by, int *revoked);
/* A slot as stored, for whoever holds the key to open it. */
struct store_sealed_slot {
    char provider[16], mode[16], key_id[40];
    int64_t version;
    unsigned char nonce[24];
    unsigned char *ct;
    size_t ct_len;
};
enum store_rc store_slot_sealed(struct store *s, const char *slot_id,
                                struct store_sealed_slot *out);
void store_sealed_slot_free(struct store_sealed_slot *slot);

/* The credential broker (store/broker.c). Subjects: daemon, session:<id>,
 * agent:<id>, connector:<name>. Statuses are the contract's documents. */
enum store_rc store_subject_status(struct store *s, const char *subject_id, json_t **out);
/* Revokes the subject (bumping its epoch) and its active leases. */
enum store_rc store_subject_revoke(struct store *s, const char *actor, const char *subject_id,
                                   json_t **out);
enum store_rc store_lease_status(struct store *s, const char *lease_id, json_t **out);
enum store_rc store_lease_revoke(struct store *s, const char *actor, const char *lease_id,
                                 json_t **out);
struct store_lease {
    char lease_id[40];
    char token[48]; /* the opaque lease token: only its SHA-256 is stored */
    int64_t expires_at_ms;
};
/* Issues a lease on a route's slot to a subject (created on first use);
 * STORE_SUBJECT_NOT_FOUND when the subject is revoked. */
enum store_rc store_lease_issue(struct store *s, const char *subject_id, const char *route_id,
                                const char *slot_id, int64_t ttl_ms, struct store_lease *out);
/* The slot a live lease token grants for route_id (*slot_id malloc'd), or
 * STORE_LEASE_NOT_FOUND when it is expired, revoked or of a revoked subject. */
enum store_rc store_lease_resolve(struct store *s, const char *token, const char *route_id,
                                  char **slot_id);

/* The runner's side of runs (store/work.c, sql/functions/work.sql). */
struct store_work {
    char run_id[160], session_id[160], agent_id[160], kind[48];
    json_t *payload; /* the run's SubmitInputRequest */
    json_t *history; /* [{role: user|assistant, text}] of the session's earlier completed runs */
    json_t *resume;  /* a run resumed after a wait: its turns so far (kheish_run_resume); or NULL */
};
/* Extends the leases of owner's runs w[0..n); lost[i] is set when w[i] is no
 * longer owner's running run (cancelled, interrupted, recovered). */
enum store_rc store_work_renew(struct store *s, const char *owner, int64_t lease_ms,
                               const struct store_work *const *w, size_t n, int *lost);
/* A runner's report of a run: reply text not yet streamed, its steps, and
 * (for an outcome) its end. */
struct store_report {
    const struct store_work *w;
    const char *trace; /* text to stream as one trace event, trace_len bytes */
    size_t trace_len;
    const json_t *steps; /* turns, tool calls and results to record (kheish_run_steps), or NULL */
    /* completed (text is its output), failed (with error), interrupted,
     * waiting_for_approval (approvals opened for the calls asked, expiring
     * after approval_ttl_ms when > 0); NULL: the run goes on (a report of
     * its steps only) */
    const char *status;
    const char *text, *error;
    int64_t approval_ttl_ms;
    int ended; /* out: it was owner's running run and is ended now */
    int held;  /* out: not committed, its run's ledger record not being appended */
    int lost;  /* out: the run is no longer owner's running run */
};
/* Appends the trace events of o[0..n) in one transaction. */
enum store_rc store_work_trace(struct store *s, const struct store_report *o, size_t n);
/* A runner's turn, in one statement (kheish_work): appends the signed
 * ledger records (kheish_ledger_append's batch; *answers gets its answers,
 * in order), then takes the reports o[0..n): their traces and steps, and
 * the end of the runs with a status (a run that is no longer owner's running
 * run is left as it is, lost; a run whose record was not appended is held),
 * then claims up to max runs (less
 * those held) into w[0..*claimed), oldest first, each the head of its
 * session's queue (FOR UPDATE SKIP LOCKED), moved to running with a lease
 * for owner. Durable when it returns. Free each claimed run with
 * store_work_free. */
enum store_rc store_work_turn(struct store *s, const char *owner, int64_t lease_ms,
                              const json_t *records, json_t **answers, struct store_report *o,
                              size_t n, struct store_work *w, size_t max, size_t *claimed);
/* Runs whose lease expired: input runs interrupted, daemon-owned work
 * requeued, each with its reason, each on its own (kheish_recover_runs); and
 * the rows of runners long dead deleted. *out is {requeued, interrupted,
 * failed: [{run_id, reason, left_running}], runners_pruned}, failed being
 * the runs it could not move (caller decrefs). */
enum store_rc store_work_recover(struct store *s, json_t **out);
/* A runner as its heartbeat records it (table runners). */
struct store_runner {
    const char *runner_id; /* kheish-runner@<host>:<pid>, its runs' lease_owner */
    const char *host;
    int pid, concurrency;
    int64_t started_at_ms; /* 0 until the first beat sets it (the database's clock) */
    int64_t db_now_ms;     /* out: the database's clock at the last beat */
};
/* A runner's heartbeat, once a second: its row upserted (kheish_runner_beat)
 * and, in the same statement, the maintenance advisory lock taken or
 * confirmed on this connection (*held). */
enum store_rc store_runner_beat(struct store *s, struct store_runner *r, int *held);
/* A runner that stops cleanly deletes its row. */
enum store_rc store_runner_forget(struct store *s, const char *runner_id);
/* The runners block of /v1/status: {live_count, live_window_ms, live:
 * [{runner_id, host, pid, concurrency, started_at_ms, last_heartbeat_at_ms,
 * heartbeat_age_ms, runs_held}], runs_held_total, slots_total,
 * maintenance_lock_holder} (the application_name of the session holding the
 * lock, null when nobody does). */
enum store_rc store_runners_status(struct store *s, json_t **block);
void store_work_free(struct store_work *w);

/* The signed external-action ledger (store/ledger.c, sql/functions/ledger.sql,
 * contract §9). Records are made and signed by their writer (common/ledger.c)
 * and appended with its turn (store_work_turn); these are the reads. */
/* A bucket's records after seq `after`, at most limit, as the JSON array text
 * the API answers (malloc'd); STORE_RUN_NOT_FOUND when the bucket holds no
 * record. */
enum store_rc store_ledger_records(struct store *s, const char *bucket, int64_t after, int limit,
                                   char **json_text);
/* Up to limit buckets after `after` ("" for the first), in name order, each
 * {bucket, checkpoint: {record_count, last_record_hash, signature_alg, key_id,
 * signature} | null} (caller decrefs). */
enum store_rc store_ledger_buckets(struct store *s, const char *after, int limit, json_t **out);
/* A bucket's checkpoint, as store_ledger_buckets shows it, or NULL. */
enum store_rc store_ledger_checkpoint(struct store *s, const char *bucket, json_t **out);
/* The key ids the ledger's records are signed with (JSON array of strings). */
enum store_rc store_ledger_key_ids(struct store *s, json_t **out);

/* What a relay reports about itself for /v1/status (table relay_stats). */
struct store_relay_stats {
    const char *relay_id;
    int64_t started_at_ms;
    int subscribers, replaying;
    int64_t newest_event_id, lagged_total, gaps_total;
};
enum store_rc store_relay_report(struct store *s, const struct store_relay_stats *st);
enum store_rc store_relay_forget(struct store *s, const char *relay_id);

/* A connection LISTENing on channels (store/listen.c): kheish_events (new
 * events committed), kheish_runs (a run may be claimable), kheish_control
 * (a run was cancelled or interrupted; the payload is its id). */
struct store_listener;
struct store_listener *store_listen(const char *conninfo, const char *const *channels, char *err,
                                    size_t errsz);
int store_listener_fd(const struct store_listener *l);
typedef void (*store_notify_fn)(void *arg, const char *channel, const char *payload);
/* Reads what arrived, calling fn (when not NULL) for each notification:
 * their number (>= 0), or -1 when the connection is lost (close it and
 * listen again). */
int store_listener_drain(struct store_listener *l, store_notify_fn fn, void *arg);
void store_listener_close(struct store_listener *l);

/* Pagination shared by list endpoints. cursor is the decoded sort key. */
struct store_page {
    int limit;          /* 1..100 */
    int descending;     /* order=desc */
    const char *cursor; /* decoded sort key "<20-digit ms>:<id>", or NULL */
};
struct store_page_result {
    json_t *items; /* array */
    int64_t total_count;
    int has_more;
    char next_key[192]; /* sort key of the last item when has_more */
};

/* Sessions */
struct store_session_create {
    const char *session_id; /* NULL: generated */
    const char *thread_id;
    const char *persona_id;
    json_t *capability_scope;
    json_t *credential_scope;
};
enum store_rc store_session_create(struct store *s, const char *actor,
                                   const struct store_session_create *req, json_t **view,
                                   int *created);
enum store_rc store_session_get(struct store *s, const char *id, json_t **view);
/* STORE_OK when the session exists, else STORE_SESSION_NOT_FOUND. */
enum store_rc store_session_exists(struct store *s, const char *id);
enum store_rc store_session_list(struct store *s, const char *persona_id,
                                 const struct store_page *page, struct store_page_result *out);
enum store_rc store_session_events(struct store *s, const char *id, int limit, json_t **out);
enum store_rc store_session_interrupt(struct store *s, const char *actor, const char *id,
                                      json_t **out);
enum store_rc store_session_end(struct store *s, const char *actor, const char *id,
                                const char *reason, json_t **view);
/* The session's newest limit permission audits, oldest first, as
 * {session_id, audits} (sql/functions/permissions.sql); the runner appends
 * them (kheish_permission_audit_append). */
enum store_rc store_permission_audits(struct store *s, const char *session_id, int limit,
                                      json_t **out);

/* Runs */
struct store_run_submit {
    const char *session_id;
    json_t *payload;             /* the validated SubmitInputRequest */
    const char *idempotency_key; /* NULL when absent */
    const char *fingerprint;     /* versioned digest of payload, when a key is given */
    int require_idle;            /* STORE_SESSION_BUSY when the session has a live run */
};
enum store_rc store_run_submit(struct store *s, const char *actor,
                               const struct store_run_submit *req, json_t **view, int *replayed);
/* The RunView as JSON text (caller frees): reads skip a parse and dump. */
enum store_rc store_run_get(struct store *s, const char *id, char **view);
/* *ended = 1 once the run is completed, failed, interrupted or cancelled
 * (what an inline /input waits for). */
enum store_rc store_run_ended(struct store *s, const char *id, int *ended);
struct store_run_filter {
    const char *session_id;
    const char *status;
    int active_only;
};
enum store_rc store_run_list(struct store *s, const struct store_run_filter *f,
                             const struct store_page *page, struct store_page_result *out);
enum store_rc store_run_events(struct store *s, const char *id, int limit, json_t **out);
enum store_rc store_run_cancel(struct store *s, const char *actor, const char *id, json_t **view);

/* Approvals (store/approvals.c, sql/functions/approvals.sql). An operator's
 * batch of resolutions for a run, or for the session's run waiting for
 * approval when run_id is NULL: [{request_id, behavior, updated_input?,
 * justification?, reason?}], its shape checked by the caller. */
struct store_resolution {
    const char *session_id, *run_id;
    const json_t *resolutions;
    const char *idempotency_key, *fingerprint; /* NULL, NULL: none */
};
/* Resolves the batch atomically: *view is the run's RunView after it and
 * session_id its session; STORE_APPROVAL_* when the batch is refused, in
 * full (a duplicate, unknown or stale request id, or no run waiting),
 * STORE_IDEMPOTENCY_CONFLICT for a key reused with another body. */
enum store_rc store_approvals_resolve(struct store *s, const char *actor,
                                      const struct store_resolution *req, json_t **view,
                                      char *session_id, size_t session_size);
/* Approvals past their expiry are expired and their runs resumed; *out is
 * {expired, failed: [{run_id, reason}]} (caller decrefs). */
enum store_rc store_approvals_expire(struct store *s, json_t **out);
/* Moves a run to `to` through the state machine (used by tests of the
 * table); STORE_RUN_STATE_CONFLICT when it is refused. */
enum store_rc store_run_transition(struct store *s, const char *actor, const char *id,
                                   const char *to, json_t **view);

/* Runtime settings */
struct store_runtime_change {
    /* "permission_mode", "debug_level", "tool_runtime_limits", "permission_rules", "rollback" */
    const char *setting;
    const json_t *value;       /* new value for the setting (checked), NULL for rollback */
    int64_t expected_revision; /* -1: unchecked */
    int64_t target_revision;   /* rollback only; -1: the previous revision */
};
enum store_rc store_runtime_get(struct store *s, json_t **view);
/* The newest revision's {revision, updated_at_ms, settings}: every setting,
 * those the view does not show (permission_rules) included. */
enum store_rc store_runtime_settings(struct store *s, json_t **out);
/* Appends the revision; *answer is {view (the RuntimeSettingsView), settings
 * (the new revision's)}, caller decrefs. */
enum store_rc store_runtime_change(struct store *s, const char *actor,
                                   const struct store_runtime_change *c, json_t **answer);
enum store_rc store_runtime_revisions(struct store *s, int limit, json_t **out);

/* Status */
struct store_status_thresholds {
    int64_t queued_run_lag_ms;
    int64_t stale_non_terminal_ms;
};
enum store_rc store_status_counts(struct store *s, const struct store_status_thresholds *t,
                                  json_t **runs, int64_t *session_total);
enum store_rc store_write_probe(struct store *s, const char *who);
/* The events block of /v1/status: the retained window of the events table
 * and the sums of what relays reported within relay_stale_ms. */
enum store_rc store_events_status(struct store *s, int64_t relay_stale_ms, json_t **block);

/* Appends one control-plane auth audit record (common/audit.h's JSON
 * object) to the append-only ledger. recorded_by: "component@host". */
enum store_rc store_auth_audit_append(struct store *s, const json_t *record,
                                      const char *recorded_by);

/* Migrations (owner connection), in one transaction under an advisory
 * lock: every embedded migration not yet recorded, then every functions
 * file whose text changed. The report counts what was applied now. */
struct store_migration_report {
    int applied, total;                     /* sql/migrations/ */
    int functions_applied, functions_total; /* sql/functions/ */
};
enum store_rc store_migrate(struct store *s, struct store_migration_report *report);

/* The newest migration the database has applied (version 0 and name ""
 * when none): the schema level a backup records. */
enum store_rc store_schema_level(struct store *s, int *version, char *name, size_t namesz);

#endif
