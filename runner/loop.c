/*
 * The runner's loop. It executes up to cfg->concurrency runs at once, their
 * provider calls being transfers on one curl multi handle, and waits in
 * curl_multi_poll on those transfers and on its LISTEN connection together,
 * so a cancel (NOTIFY kheish_control) stops a call at once. Each turn: move
 * the transfers on, stream replies as trace events every
 * RUNNER_TRACE_BATCH_MS, then commit the outcomes and claim runs into the
 * slots free after them (when runs ended, after a NOTIFY on kheish_runs, or
 * every RUNNER_POLL_MS) in one statement. Traces, outcomes with claims, and
 * lease renewals each go to the database as one batch for all the runs
 * concerned. The holder of the maintenance lock also recovers the runs whose
 * lease expired.
 */
#include "loop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

volatile sig_atomic_t runner_stopping;

static void
on_signal(int sig)
{
    (void)sig;
    runner_stopping = 1;
}

int64_t
runner_now_ms(void)
{
    return util_monotonic_us() / 1000;
}

int64_t
runner_db_now_ms(const struct runner *r)
{
    return runner_now_ms() + r->db_clock_ms;
}

/* The heartbeat (see maintain); *held: this runner holds the maintenance
 * lock. */
static enum store_rc
beat(struct runner *r, int *held)
{
    enum store_rc rc = store_runner_beat(r->db, &r->me, held);
    if (rc == STORE_OK)
        r->db_clock_ms = r->me.db_now_ms - runner_now_ms();
    return rc;
}

static struct job *
job_of_run(struct runner *r, const char *run_id)
{
    for (size_t i = 0; i < r->njobs; i++)
        if (!strcmp(r->jobs[i]->w.run_id, run_id))
            return r->jobs[i];
    return NULL;
}

static void
on_notify(void *arg, const char *channel, const char *payload)
{
    struct runner *r = arg;
    struct job *j;
    if (!strcmp(channel, "kheish_runs"))
        r->want_claim = 1;
    else if ((j = job_of_run(r, payload)) && j->stop == NULL && j->status == NULL)
        j->stop_asked = r->stop_asked = 1; /* any role may NOTIFY: confirm() asks the runs */
}

static void
listen_again(struct runner *r)
{
    char err[256];
    if (r->listener || runner_now_ms() < r->listen_retry_ms)
        return;
    r->listener =
        store_listen(r->cfg->database_url,
                     (const char *const[]){"kheish_runs", "kheish_control", NULL}, err, sizeof err);
    if (r->listener == NULL) {
        r->listen_retry_ms = runner_now_ms() + RUNNER_LISTEN_RETRY_MS;
        log_msg("warn", "listen_failed", "LISTEN connection: %s", err);
    }
}

/* Drains the LISTEN connection; a lost one is closed and retried. */
static void
drain(struct runner *r)
{
    if (r->listener && store_listener_drain(r->listener, on_notify, r) < 0) {
        store_listener_close(r->listener);
        r->listener = NULL;
        r->listen_retry_ms = runner_now_ms() + RUNNER_LISTEN_RETRY_MS;
        log_msg("warn", "listen_lost", "LISTEN connection lost; reconnecting");
    }
}

/* The approvals past their expiry (KHEISH_APPROVAL_TTL_MS) are expired,
 * and their runs resume. */
static void
expire_approvals(struct runner *r)
{
    json_t *res = NULL, *f;
    size_t i;
    enum store_rc rc = store_approvals_expire(r->db, &res);
    if (rc != STORE_OK) {
        log_msg("warn", "expiry_failed", "approval expiry: %s%s%s", store_strerror(rc),
                *store_last_error(r->db) ? ": " : "", store_last_error(r->db));
        return;
    }
    json_int_t n = json_integer_value(json_object_get(res, "expired"));
    if (n)
        log_msg("info", "approvals_expired",
                "runs whose approvals expired unanswered, resumed: %" JSON_INTEGER_FORMAT, n);
    json_array_foreach(json_object_get(res, "failed"), i, f)
        log_msg("error", "approval_expiry_failed", "run %s: %s",
                json_string_value(json_object_get(f, "run_id")),
                json_string_value(json_object_get(f, "reason")));
    json_decref(res);
}

/* Every RUNNER_MAINTENANCE_MS: the heartbeat (this runner is live, for
 * /v1/status), and, for the holder of the maintenance lock, the expiry of
 * approvals and the recovery of the runs whose runner died. */
static void
maintain(struct runner *r)
{
    int held = 0;
    json_t *res = NULL, *f;
    size_t i;
    if (beat(r, &held) != STORE_OK || !held)
        return;
    expire_approvals(r);
    enum store_rc rc = store_work_recover(r->db, &res);
    if (rc != STORE_OK) {
        log_msg("warn", "recovery_failed", "lease recovery: %s%s%s", store_strerror(rc),
                *store_last_error(r->db) ? ": " : "", store_last_error(r->db));
        return;
    }
    json_int_t requeued = json_integer_value(json_object_get(res, "requeued"));
    json_int_t interrupted = json_integer_value(json_object_get(res, "interrupted"));
    if (requeued || interrupted)
        log_msg("warn", "runs_recovered",
                "runs whose runner stopped: %" JSON_INTEGER_FORMAT
                " interrupted, %" JSON_INTEGER_FORMAT " requeued",
                interrupted, requeued);
    json_int_t pruned = json_integer_value(json_object_get(res, "runners_pruned"));
    if (pruned)
        log_msg("info", "runners_pruned",
                "rows of %" JSON_INTEGER_FORMAT " long dead runners deleted", pruned);
    json_array_foreach(json_object_get(res, "failed"), i, f)
        log_msg("error", "run_recovery_failed", "run %s: %s%s",
                json_string_value(json_object_get(f, "run_id")),
                json_string_value(json_object_get(f, "reason")),
                json_is_true(json_object_get(f, "left_running")) ? " (left running)" : " (failed)");
    json_decref(res);
}

/* Checks the settings a run would fail on anyway, so a runner with a
 * missing slot or a wrong key refuses to start (contract §5). */
static int
check_routes(struct runner *r)
{
    for (size_t i = 0; i < r->routes.n; i++) {
        const struct route *rt = &r->routes.v[i];
        if (rt->auth_ref == NULL)
            continue;
        struct store_sealed_slot slot;
        enum store_rc rc = store_slot_sealed(r->db, rt->auth_ref, &slot);
        const char *why = rc == STORE_SECRET_NOT_FOUND ? "its auth_ref slot is missing"
                          : rc != STORE_OK             ? store_strerror(rc)
                          : !r->has_key ? "no master key (KHEISH_AUTH_STORE_MASTER_KEY)"
                          : strcmp(slot.key_id, r->key.id)
                              ? "its slot is sealed with a different master key"
                              : NULL;
        store_sealed_slot_free(&slot);
        if (why) {
            fprintf(stderr, "kheish-runner: route %s (auth_ref %s): %s\n", rt->id, rt->auth_ref,
                    why);
            return -1;
        }
    }
    return 0;
}

static int
setup(struct runner *r)
{
    char err[512];
    if (routes_load(r->cfg->routes_file, &r->routes, err, sizeof err) != 0) {
        fprintf(stderr, "kheish-runner: %s\n", err);
        return 2;
    }
    if (r->cfg->default_route) {
        if (routes_find(&r->routes, r->cfg->default_route) == NULL) {
            fprintf(stderr, "kheish-runner: --default-route %s is not a route of %s\n",
                    r->cfg->default_route, r->cfg->routes_file);
            return 2;
        }
        free(r->routes.default_route);
        r->routes.default_route = strdup(r->cfg->default_route);
    }
    if ((r->has_key = sealed_key_from_env(&r->key, err, sizeof err)) < 0) {
        fprintf(stderr, "kheish-runner: %s\n", err);
        return 2;
    }
    gethostname(r->host, sizeof r->host - 1);
    snprintf(r->owner, sizeof r->owner, "kheish-runner@%s:%d", r->host, (int)getpid());
    r->me = (struct store_runner){r->owner, r->host, (int)getpid(), r->cfg->concurrency, 0, 0};
    setenv("PGAPPNAME", r->owner, 1); /* who holds the maintenance lock, for /v1/status */
    r->db = store_open(r->cfg->database_url, NULL);
    if (r->db == NULL || store_ping(r->db) != STORE_OK) {
        fprintf(stderr, "kheish-runner: cannot reach the database: %s\n",
                r->db ? store_last_error(r->db) : "out of memory");
        return 1;
    }
    int held;
    if (check_routes(r) != 0)
        return 2;
    if (beat(r, &held) != STORE_OK) {
        fprintf(stderr, "kheish-runner: the first heartbeat failed: %s\n", store_last_error(r->db));
        return 1;
    }
    int rc = audit_setup(r);
    return rc ? rc : agent_setup(r);
}

/* What goes to the database together, into r->batch: the replies' new text
 * of every job whose trace batch is due (reports 0), or the jobs with steps
 * to report or an outcome, the latter with its text not yet sent (reports
 * 1). */
static size_t
collect(struct runner *r, int reports, int64_t now)
{
    struct store_report *o = r->batch;
    size_t n = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        struct job *j = r->jobs[i];
        if (j->stop || (reports ? j->status == NULL && j->steps == NULL
                                : j->status || j->sent == j->len || now < j->next_trace_ms))
            continue;
        r->batch_jobs[n] = j;
        o[n++] = (struct store_report){
            .w = &j->w,
            .trace = j->text && j->status ? j->text + j->sent : NULL,
            .trace_len = j->status ? j->len - j->sent : 0,
            .steps = reports ? j->steps : NULL,
            .status = j->status,
            .text = j->status && !strcmp(j->status, "completed")
                        ? (j->text ? j->text + j->turn_start : "")
                        : NULL,
            .error = j->status && strcmp(j->status, "completed") && j->error[0] ? j->error : NULL,
            .approval_ttl_ms = r->approval_ttl_ms,
        };
    }
    return n;
}

static void
trace(struct runner *r, int64_t now)
{
    size_t n = collect(r, 0, now);
    if (n == 0)
        return;
    if (store_work_trace(r->db, r->batch, n) != STORE_OK)
        log_msg("warn", "trace_failed", "trace events of %zu runs not stored: %s", n,
                store_last_error(r->db));
    /* Sent or not, the text goes out once: a lost batch is not retried. */
    for (size_t i = 0; i < n; i++) {
        struct job *j = r->batch_jobs[i];
        j->sent = j->len;
        j->next_trace_ms = now + RUNNER_TRACE_BATCH_MS;
    }
}

/* When to claim next: when told of work, but no sooner than
 * RUNNER_CLAIM_GAP_MS after the last claim, so that under load claims come
 * in batches; every RUNNER_POLL_MS without news; never without a free
 * slot. */
static int64_t
claim_at(const struct runner *r)
{
    if (r->njobs == (size_t)r->cfg->concurrency)
        return INT64_MAX;
    int64_t at = r->last_claim_ms + RUNNER_CLAIM_GAP_MS;
    if (!r->want_claim && r->next_claim_ms > at)
        at = r->next_claim_ms;
    return at > r->db_retry_ms ? at : r->db_retry_ms;
}

/* Frees the jobs that are over (once their last ledger record is in). */
static void
reap(struct runner *r)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        if (r->jobs[i]->stop && r->jobs[i]->naudit == 0)
            job_free(r->jobs[i]);
        else
            r->jobs[kept++] = r->jobs[i];
    }
    r->njobs = kept;
}

/* The turn's statement, unless a failed one waits to be tried again:
 * appends the ledger records waiting, commits the runs' reports (steps and
 * outcomes) and claims runs into the slots free after them, when runs end
 * or it is time to claim (claim_at), unless the runner is shutting down.
 * Nothing to append, commit or claim: no statement. */
static void
work(struct runner *r)
{
    struct store_report *o = r->batch;
    int64_t now = runner_now_ms();
    if (now < r->db_retry_ms)
        return;
    size_t n = collect(r, 1, 0), nrec, claimed = 0, ending = 0;
    json_t *records = audit_batch(r, &nrec), *answers = NULL;
    for (size_t i = 0; i < n; i++)
        ending += o[i].status != NULL;
    /* The slots free once the runs that end here have. */
    size_t max_claim = !runner_stopping && (ending || now >= claim_at(r))
                           ? (size_t)r->cfg->concurrency - r->njobs + ending
                           : 0;
    if (n == 0 && max_claim == 0 && nrec == 0) {
        json_decref(records);
        return;
    }
    struct store_work *w = max_claim ? calloc(max_claim, sizeof *w) : NULL;
    enum store_rc rc = max_claim && w == NULL
                           ? STORE_ERROR
                           : store_work_turn(r->db, r->owner, r->cfg->lease_ms, records, &answers,
                                             o, n, w, max_claim, &claimed);
    json_decref(records);
    if (rc != STORE_OK) {
        char why[300];
        snprintf(why, sizeof why, "%s", store_last_error(r->db));
        why[strcspn(why, "\n")] = '\0'; /* the database's first line, without its context */
        log_msg("error", "turn_failed",
                "ledger records of %zu runs, reports of %zu, a claim of %zu: %s", nrec, n,
                max_claim, why);
        r->db_retry_ms = runner_now_ms() + RUNNER_DB_RETRY_MS;
        audit_failed(r, nrec, why);
        json_decref(answers);
        free(w);
        return;
    }
    /* The steps reported are in: what the records let go on below adds to
     * new ones. */
    for (size_t i = 0; i < n; i++)
        if (!o[i].held) {
            json_decref(r->batch_jobs[i]->steps);
            r->batch_jobs[i]->steps = NULL;
        }
    audit_answered(r, nrec, answers); /* the calls whose request is in are made */
    json_decref(answers);
    for (size_t i = 0; i < n; i++) {
        struct job *j = r->batch_jobs[i];
        if (o[i].ended) {
            log_msg("info", "run_finished", "run %s %s%s%s", j->w.run_id, o[i].status,
                    o[i].error ? ": " : "", o[i].error ? o[i].error : "");
            j->stop = "finished";
        } else if (o[i].lost && o[i].status == NULL && j->stop == NULL) {
            job_stop(r, j, "cancelled or interrupted");
        } else if (o[i].lost) {
            log_msg("info", "run_taken", "run %s was ended by someone else first", j->w.run_id);
            j->stop = "finished";
        }
    }
    if (max_claim) {
        /* A full batch may have left more behind. */
        r->want_claim = claimed == max_claim;
        r->last_claim_ms = runner_now_ms();
        r->next_claim_ms = r->last_claim_ms + RUNNER_POLL_MS;
    }
    reap(r); /* the slots of the runs just ended, which the claimed take */
    for (size_t i = 0; i < claimed; i++) {
        /* (A claim beyond the free slots would be a bug: its lease runs out
         * and recovery takes the run, as when memory runs out.) */
        struct job *j = r->njobs < (size_t)r->cfg->concurrency ? job_start(r, &w[i]) : NULL;
        if (j)
            r->jobs[r->njobs++] = j;
        else
            store_work_free(&w[i]);
    }
    free(w);
}

/* Extends the leases of the running jobs (asked_only: of those a NOTIFY
 * named); a job whose run is no longer ours stops. */
static enum store_rc
renew_jobs(struct runner *r, int asked_only)
{
    const struct store_work *w[r->njobs ? r->njobs : 1];
    int lost[r->njobs ? r->njobs : 1];
    size_t n = 0;
    for (size_t i = 0; i < r->njobs; i++)
        if (r->jobs[i]->stop == NULL && (!asked_only || r->jobs[i]->stop_asked))
            w[n++] = &r->jobs[i]->w;
    enum store_rc rc =
        n ? store_work_renew(r->db, r->owner, r->cfg->lease_ms, w, n, lost) : STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        struct job *j = job_of_run(r, w[i]->run_id);
        if (lost[i] && j->status == NULL)
            job_stop(r, j, j->stop_asked ? "cancelled or interrupted" : "lease lost");
        j->stop_asked = 0;
    }
    return rc;
}

static void
renew(struct runner *r, int64_t now)
{
    enum store_rc rc = renew_jobs(r, 0);
    /* A database hiccup is retried soon; the lease has time to spare. */
    r->next_renew_ms = now + (rc == STORE_OK ? r->cfg->lease_ms / 3 : RUNNER_DB_RETRY_MS);
}

/* A cancel or an interrupt reaches the runner as a NOTIFY naming the run,
 * which any role that can log in may send (the auditor's included): the
 * run's row decides, in one statement for every job named. */
static void
confirm_stops(struct runner *r)
{
    if (r->stop_asked && renew_jobs(r, 1) == STORE_OK)
        r->stop_asked = 0;
}

/* Moves the transfers on and takes the verdicts of those that ended. */
static void
perform(struct runner *r)
{
    int running, left;
    CURLMsg *m;
    curl_multi_perform(r->multi, &running);
    while ((m = curl_multi_info_read(r->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct provider_call *pc = provider_of(m->easy_handle);
        job_attempt_done(r, pc->arg, m->data.result);
    }
}

/* How long the loop may sleep: until the next timer of any kind. */
static int
wait_ms(const struct runner *r, int64_t now)
{
    int64_t until = claim_at(r);
    if (r->next_maintenance_ms < until)
        until = r->next_maintenance_ms;
    if (r->njobs && r->next_renew_ms < until)
        until = r->next_renew_ms;
    for (size_t i = 0; i < r->njobs; i++) {
        const struct job *j = r->jobs[i];
        if (job_retry_due(j) && j->retry_at_ms < until)
            until = j->retry_at_ms;
        if ((j->status || j->steps) && r->db_retry_ms < until)
            until = r->db_retry_ms; /* a report to send */
        if (j->sent < j->len && j->next_trace_ms < until)
            until = j->next_trace_ms;
        if (j->naudit && r->db_retry_ms < until)
            until = r->db_retry_ms; /* a ledger record to append */
    }
    if (agent_deadline_ms(r) < until)
        until = agent_deadline_ms(r); /* a bash command's timeout */
    return until <= now ? 0 : until - now > RUNNER_POLL_MS ? RUNNER_POLL_MS : (int)(until - now);
}

static void
turn(struct runner *r)
{
    int64_t now = runner_now_ms();
    if (now >= r->next_maintenance_ms) {
        maintain(r);
        r->next_maintenance_ms = now + RUNNER_MAINTENANCE_MS;
    }
    if (r->njobs && now >= r->next_renew_ms)
        renew(r, now);
    perform(r);
    now = runner_now_ms();
    agent_step(r, now);
    for (size_t i = 0; i < r->njobs; i++)
        job_retry_if_due(r, r->jobs[i], now);
    trace(r, now);
    work(r);
    reap(r);
    struct curl_waitfd wake[RUNNER_WAIT_FDS];
    size_t nwake = 0;
    if (r->listener)
        wake[nwake++] = (struct curl_waitfd){store_listener_fd(r->listener), CURL_WAIT_POLLIN, 0};
    nwake += agent_fds(r, wake + nwake, RUNNER_WAIT_FDS - nwake);
    curl_multi_poll(r->multi, wake, (unsigned)nwake, wait_ms(r, runner_now_ms()), NULL);
    drain(r);
    confirm_stops(r);
    listen_again(r);
}

/* On SIGTERM: the runs in progress end interrupted. */
static void
shut_down(struct runner *r)
{
    for (size_t i = 0; i < r->njobs; i++)
        if (r->jobs[i]->stop == NULL && r->jobs[i]->status == NULL)
            job_end(r, r->jobs[i], "interrupted", "the runner executing it was shut down");
    r->db_retry_ms = 0;
    work(r);
    for (size_t i = 0; i < r->njobs; i++) {
        struct job *j = r->jobs[i];
        if (j->naudit)
            log_msg("error", "audit_record_lost",
                    "run %s: %zu ledger records could not be appended before shutdown", j->w.run_id,
                    j->naudit);
        j->naudit = 0;
        j->stop = "shut down";
    }
    reap(r);
}

int
runner_run(const struct runner_config *cfg)
{
    struct runner r = {.cfg = cfg};
    int rc = setup(&r);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = 1;
    size_t slots = (size_t)cfg->concurrency;
    r.jobs = calloc(slots, sizeof *r.jobs);
    r.batch_jobs = calloc(slots, sizeof *r.batch_jobs);
    r.batch = calloc(slots, sizeof *r.batch);
    r.audit_jobs = calloc(slots, sizeof *r.audit_jobs);
    if (rc == 0 &&
        (!r.jobs || !r.batch_jobs || !r.batch || !r.audit_jobs || !(r.multi = curl_multi_init())))
        rc = 1;
    if (rc == 0) {
        FILE *pf = cfg->pid_file ? fopen(cfg->pid_file, "we") : NULL;
        if (pf) {
            fprintf(pf, "%d\n", getpid());
            fclose(pf);
        }
        log_msg("info", "started", "%zu routes (default %s), lease %lld ms, %d runs at once",
                r.routes.n, r.routes.default_route, (long long)cfg->lease_ms, cfg->concurrency);
        listen_again(&r);
        while (!runner_stopping)
            turn(&r);
        shut_down(&r);
        if (store_runner_forget(r.db, r.owner) != STORE_OK)
            log_msg("warn", "forget_failed", "runner row not deleted (it ages out): %s",
                    store_last_error(r.db));
        log_msg("info", "stopped", "runner stopped");
        if (cfg->pid_file)
            unlink(cfg->pid_file);
    }
    if (r.multi)
        curl_multi_cleanup(r.multi);
    if (rc == 0)
        curl_global_cleanup();
    free(r.batch);
    free(r.audit_jobs);
    free(r.batch_jobs);
    free(r.jobs);
    store_listener_close(r.listener);
    store_close(r.db);
    routes_free(&r.routes);
    agent_teardown(&r);
    sealed_key_wipe(&r.key);
    ledger_key_wipe(&r.audit_key);
    return rc;
}
