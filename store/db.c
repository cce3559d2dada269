/*
 * Connection handling, statement execution and the transaction helper.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "json_exact.h"
#include "log.h"
#include "util.h"

/* Each error's name (what a database function's {"result": ...} says) and
 * message. */
static const struct {
    const char *name, *message;
} store_errors[] = {
#define STORE_ERROR_NAME(id, name, message, ...) [STORE_##id] = {name, message},
    STORE_ERRORS(STORE_ERROR_NAME)
#undef STORE_ERROR_NAME
};

const char *
store_strerror(enum store_rc rc)
{
    if ((size_t)rc >= sizeof store_errors / sizeof store_errors[0] || !store_errors[rc].message)
        return "unknown store error";
    return store_errors[rc].message;
}

enum store_rc
db_call_result(struct store *s, json_t **res, const char **result, const char *sql, int nparams,
               const char *const *params)
{
    *res = NULL;
    enum store_rc rc = db_call(s, res, sql, nparams, params);
    if (rc != STORE_OK)
        return rc;
    *result = json_string_value(json_object_get(*res, "result"));
    for (size_t i = 0; *result && i < sizeof store_errors / sizeof store_errors[0]; i++)
        if (store_errors[i].name && !strcmp(*result, store_errors[i].name))
            return (enum store_rc)i;
    static const char *const successes[] = {"created", "reused", "replayed"};
    for (size_t i = 0; *result && i < sizeof successes / sizeof successes[0]; i++)
        if (!strcmp(*result, successes[i]))
            return STORE_OK;
    snprintf(s->err, sizeof s->err, "unexpected answer from %s", sql);
    json_decref(*res);
    *res = NULL;
    return STORE_ERROR;
}

enum store_rc
db_call_get(struct store *s, const char *key, json_t **out, const char *sql, int nparams,
            const char *const *params)
{
    json_t *res;
    const char *result;
    enum store_rc rc = db_call_result(s, &res, &result, sql, nparams, params);
    *out = rc == STORE_OK ? json_incref(json_object_get(res, key)) : NULL;
    json_decref(res);
    return rc;
}

const char *
store_last_error(const struct store *s)
{
    return s->err;
}

struct store *
store_open(const char *conninfo, const struct store_host *host)
{
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->conninfo = strdup(conninfo ? conninfo : "");
    s->state_root = strdup(host && host->state_root ? host->state_root : "");
    s->workspace_root = strdup(host && host->workspace_root ? host->workspace_root : "");
    s->routes = strdup(host && host->routes ? host->routes : "{}");
    s->connect_budget_ms = STORE_CONNECT_BUDGET_MS;
    if (!s->conninfo || !s->state_root || !s->workspace_root || !s->routes) {
        store_close(s);
        return NULL;
    }
    return s;
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    if (s->conn)
        PQfinish(s->conn);
    free(s->conninfo);
    free(s->state_root);
    free(s->workspace_root);
    free(s->routes);
    free(s);
}

void
store_set_connect_budget(struct store *s, int ms)
{
    s->connect_budget_ms = ms;
}

/* Server notices (e.g. "relation already exists, skipping") are not errors. */
static void
ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Connects (or reconnects) with exponential backoff, 25 ms doubling to 500 ms,
 * until the connect budget is spent. */
static enum store_rc
db_connect(struct store *s)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK) {
        if (s->replan && !s->in_tx) {
            PQclear(PQexec(s->conn, "DEALLOCATE ALL"));
            s->nprepared = s->replan = 0;
        }
        return STORE_OK;
    }
    int64_t deadline = util_monotonic_us() + (int64_t)s->connect_budget_ms * 1000;
    int backoff = 25;
    for (;;) {
        if (s->conn == NULL)
            s->conn = PQconnectdb(s->conninfo);
        else
            PQreset(s->conn);
        s->nprepared = 0;
        if (s->conn && PQstatus(s->conn) == CONNECTION_OK) {
            PQsetNoticeProcessor(s->conn, ignore_notice, NULL);
            return STORE_OK;
        }
        snprintf(s->err, sizeof s->err, "%s", s->conn ? PQerrorMessage(s->conn) : "out of memory");
        if (util_monotonic_us() + backoff * 1000 > deadline)
            return STORE_UNAVAILABLE;
        sleep_ms(backoff);
        backoff = backoff * 2 > 500 ? 500 : backoff * 2;
    }
}

enum store_rc
store_ping(struct store *s)
{
    return db_command(s, "SELECT 1", 0, NULL);
}

/* Maps a failed result to a store_rc by SQLSTATE. */
static enum store_rc
classify(struct store *s, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(s->err, sizeof s->err, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    if (PQstatus(s->conn) != CONNECTION_OK || state == NULL)
        return STORE_UNAVAILABLE;
    if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
        return STORE_RETRY;
    /* A migration changed the columns of a view a statement was prepared on:
     * prepared again, it works (db_connect drops them, out of a transaction). */
    if (!strcmp(state, "0A000") && strstr(s->err, "cached plan must not change result type")) {
        s->replan = 1;
        return STORE_RETRY;
    }
    const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    if (!strcmp(state, "KH409") || (!strcmp(state, "23505") && constraint &&
                                    !strcmp(constraint, "runs_one_active_per_session")))
        return STORE_RUN_STATE_CONFLICT;
    if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
        !strcmp(state, "57P03"))
        return STORE_UNAVAILABLE;
    return STORE_ERROR;
}

/* The name of sql's prepared statement on this connection ("kh<i>"),
 * preparing it on first use so the server plans it once instead of at every
 * call. Returns 1 when named, 0 when the cache is full (run it unnamed), -1
 * with *err holding the failed PQprepare result. */
static int
prepared_name(struct store *s, const char *sql, int nparams, char name[16], PGresult **err)
{
    int i = 0;
    while (i < s->nprepared && s->prepared[i] != sql)
        i++;
    if (i == STORE_MAX_PREPARED)
        return 0;
    snprintf(name, 16, "kh%d", i);
    if (i == s->nprepared) {
        PGresult *r = PQprepare(s->conn, name, sql, nparams, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            *err = r;
            return -1;
        }
        PQclear(r);
        s->prepared[s->nprepared++] = sql;
    }
    return 1;
}

static PGresult *
exec_prepared(struct store *s, const char *sql, int nparams, const char *const *params)
{
    char name[16];
    PGresult *err;
    switch (prepared_name(s, sql, nparams, name, &err)) {
    case -1:
        return err;
    case 0:
        return PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    default:
        return PQexecPrepared(s->conn, name, nparams, params, NULL, NULL, 0);
    }
}

PGresult *
db_exec(struct store *s, enum store_rc *rc, const char *sql, int nparams, const char *const *params)
{
    s->err[0] = '\0'; /* so store_last_error is never an earlier statement's */
    for (int attempt = 0;; attempt++) {
        *rc = db_connect(s);
        if (*rc != STORE_OK)
            return NULL;
        PGresult *r = exec_prepared(s, sql, nparams, params);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *rc = STORE_OK;
            return r;
        }
        *rc = classify(s, r);
        PQclear(r);
        /* A connection that died between requests: reconnect and retry an
         * idempotent read once. Inside a transaction the caller decides. */
        if (*rc == STORE_RETRY && s->replan && !s->in_tx && attempt == 0)
            continue;
        if (*rc == STORE_UNAVAILABLE && !s->in_tx && attempt == 0) {
            /* A new connection, through db_connect: the statements prepared
             * on the old one are gone with it. */
            PQfinish(s->conn);
            s->conn = NULL;
            continue;
        }
        if (*rc == STORE_ERROR)
            log_msg("error", "store_error", "%s", s->err);
        return NULL;
    }
}

json_t *
db_decode(struct store *s, const PGresult *r, int row)
{
    if (PQgetisnull(r, row, 0))
        return NULL;
    json_error_t err;
    const char *text = PQgetvalue(r, row, 0);
    json_t *v = json_exact_load(text, (size_t)PQgetlength(r, row, 0), JSON_DECODE_ANY, &err);
    if (v == NULL) { /* the position only: the text may hold anything */
        snprintf(s->err, sizeof s->err, "a value from the database is not JSON: %s at byte %d",
                 json_error_code(&err) == json_error_out_of_memory ? "out of memory" : "invalid",
                 err.position);
        log_msg("error", "store_error", "%s", s->err);
    }
    return v;
}

enum store_rc
db_json(struct store *s, json_t **out, const char *sql, int nparams, const char *const *params)
{
    enum store_rc rc;
    *out = NULL;
    PGresult *r = db_exec(s, &rc, sql, nparams, params);
    if (r == NULL)
        return rc;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && (*out = db_decode(s, r, 0)) == NULL)
        rc = STORE_ERROR;
    PQclear(r);
    return rc;
}

enum store_rc
db_text(struct store *s, char **out, const char *sql, int nparams, const char *const *params)
{
    enum store_rc rc;
    *out = NULL;
    PGresult *r = db_exec(s, &rc, sql, nparams, params);
    if (r == NULL)
        return rc;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && (*out = strdup(PQgetvalue(r, 0, 0))) == NULL)
        rc = STORE_ERROR;
    PQclear(r);
    return rc;
}

enum store_rc
db_json_rows(struct store *s, json_t **out, const char *sql, int nparams, const char *const *params)
{
    enum store_rc rc;
    *out = NULL;
    PGresult *r = db_exec(s, &rc, sql, nparams, params);
    if (r == NULL)
        return rc;
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r) && rc == STORE_OK; i++)
        if (json_array_append_new(arr, db_decode(s, r, i)) != 0)
            rc = STORE_ERROR;
    PQclear(r);
    if (rc == STORE_OK)
        *out = arr;
    else
        json_decref(arr);
    return rc;
}

char *
db_json_param(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

enum store_rc
db_command(struct store *s, const char *sql, int nparams, const char *const *params)
{
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc, sql, nparams, params);
    PQclear(r);
    return r ? STORE_OK : rc;
}

/* After a pipeline went wrong the connection's state is unknown: drop it, and
 * the next statement reconnects. */
static enum store_rc
drop_connection(struct store *s, enum store_rc rc)
{
    if (rc == STORE_OK)
        snprintf(s->err, sizeof s->err, "%s", PQerrorMessage(s->conn));
    PQfinish(s->conn);
    s->conn = NULL;
    return rc == STORE_OK ? STORE_UNAVAILABLE : rc;
}

/* Sends a statement of a pipeline, prepared when it can be. */
static int
send_statement(struct store *s, const char *sql, int nparams, const char *const *params)
{
    char name[16];
    PGresult *err = NULL;
    switch (prepared_name(s, sql, nparams, name, &err)) {
    case -1:
        PQclear(err);
        return 0;
    case 0:
        return PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    default:
        return PQsendQueryPrepared(s->conn, name, nparams, params, NULL, NULL, 0);
    }
}

/* Reads one statement's results; the first failure decides *rc. The first
 * good result goes to *keep when keep is not NULL. */
static void
read_statement(struct store *s, enum store_rc *rc, PGresult **keep)
{
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (*rc == STORE_OK && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
            *rc = classify(s, r);
        else if (*rc == STORE_OK && keep && *keep == NULL) {
            *keep = r;
            continue;
        }
        PQclear(r);
    }
}

static int
read_sync(struct store *s)
{
    PGresult *r = PQgetResult(s->conn);
    int synced = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    return synced;
}

/* Reads what an idle connection has been sent: a server that went away
 * sends its goodbye (an error message), then closes; reading both marks the
 * connection bad. */
static void
notice_closed(PGconn *c)
{
    struct pollfd p = {PQsocket(c), POLLIN, 0};
    while (PQstatus(c) == CONNECTION_OK && p.fd >= 0 && poll(&p, 1, 0) == 1 && PQconsumeInput(c))
        ;
}

/*
 * Runs sql, a statement that is its own transaction, then kheish_flush_wal(),
 * as one pipeline: one round trip. Returns sql's result (caller clears it),
 * or NULL with *rc.
 *
 * Pipelined so that whatever sql locks is held for the server's work only,
 * not for a round trip back to a client process that may not be scheduled:
 * the event append takes the lock that serialises every event-writing
 * transaction of the system until it ends. That end does not wait for the
 * WAL flush (sql/functions/events.sql): the flush comes after, as its own
 * transaction, and nothing returns before it, so what the caller goes on to
 * do rests on durable facts.
 */
PGresult *
db_exec_durable(struct store *s, enum store_rc *rc, const char *sql, int nparams,
                const char *const *params)
{
    static const char *const FLUSH_SQL = "SELECT kheish_flush_wal()";
    PGresult *kept = NULL;
    /* A connection the server closed since (a restart) is found now, before
     * the statement goes out, and replaced: the statement is not run twice,
     * as it could be if it were retried after a failure. */
    if (s->conn)
        notice_closed(s->conn);
    *rc = db_connect(s);
    if (*rc != STORE_OK)
        return NULL;
    /* Prepared before the pipeline starts: preparing is a round trip. */
    char name[16];
    PGresult *err = NULL;
    if (prepared_name(s, sql, nparams, name, &err) < 0 ||
        prepared_name(s, FLUSH_SQL, 0, name, &err) < 0) {
        *rc = classify(s, err);
        PQclear(err);
        return NULL;
    }
    PGconn *c = s->conn;
    if (!PQenterPipelineMode(c) || !send_statement(s, sql, nparams, params) || !PQpipelineSync(c) ||
        !send_statement(s, FLUSH_SQL, 0, NULL) || !PQpipelineSync(c)) {
        *rc = drop_connection(s, STORE_OK);
        return NULL;
    }
    /* Each statement's results end with a NULL; then comes its sync point.
     * A failure aborts what follows it up to the sync point. */
    *rc = STORE_OK;
    read_statement(s, rc, &kept);
    int synced = read_sync(s);
    read_statement(s, rc, NULL);
    synced = synced && read_sync(s);
    if (!synced || !PQexitPipelineMode(c)) {
        PQclear(kept);
        *rc = drop_connection(s, *rc);
        return NULL;
    }
    if (*rc == STORE_OK)
        return kept;
    if (*rc == STORE_ERROR)
        log_msg("error", "store_error", "%s", s->err);
    PQclear(kept);
    return NULL;
}

/* Before another attempt of a transaction that conflicted: a little longer
 * each time, and jittered. */
static void
retry_pause(int attempt)
{
    sleep_ms(attempt * 5 + (int)(util_monotonic_us() % 10));
}

enum store_rc
db_call(struct store *s, json_t **out, const char *sql, int nparams, const char *const *params)
{
    enum store_rc rc = STORE_ERROR;
    for (int attempt = 0; attempt < STORE_TX_MAX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            retry_pause(attempt);
        *out = NULL;
        PGresult *r = db_exec_durable(s, &rc, sql, nparams, params);
        if (r && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && (*out = db_decode(s, r, 0)) == NULL)
            rc = STORE_ERROR;
        PQclear(r);
        if (rc != STORE_RETRY)
            break;
    }
    return rc;
}

enum store_rc
store_tx(struct store *s, store_tx_fn fn, void *ctx)
{
    enum store_rc rc = STORE_ERROR;
    for (int attempt = 0; attempt < STORE_TX_MAX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            retry_pause(attempt);
        rc = db_command(s, "BEGIN", 0, NULL);
        if (rc != STORE_OK)
            return rc;
        s->in_tx = 1;
        rc = fn(s, ctx);
        int committing = rc == STORE_OK;
        if (committing)
            rc = db_command(s, "COMMIT", 0, NULL);
        else if (PQstatus(s->conn) == CONNECTION_OK) {
            char why[sizeof s->err]; /* fn's reason outlives the ROLLBACK */
            memcpy(why, s->err, sizeof why);
            db_command(s, "ROLLBACK", 0, NULL);
            memcpy(s->err, why, sizeof why);
        }
        s->in_tx = 0;
        /* A connection lost before COMMIT was sent rolled the work back on the
         * server: safe to run again. Lost during COMMIT, the outcome is unknown. */
        if (rc == STORE_UNAVAILABLE && !committing && attempt == 0)
            continue;
        if (rc != STORE_RETRY)
            return rc;
    }
    return rc;
}
