/*
 * The claim on a large table with stale statistics (issue 11, point 5): a
 * history of finished runs, analyzed while the queue was empty, then a
 * backlog over a few sessions, with autovacuum off so that nothing refreshes
 * the statistics. Every claim must take exactly the sessions' heads (FIFO,
 * one active run per session) and read a number of buffers bounded by the
 * sessions and the runs it claims, never by the runs the table holds: the
 * anti join of the first claim (before migration 008) read every earlier run of each queued run's
 * session, about 120,000 buffers per claim here. The test runs in a database of its own, dropped at
 * the end.
 */
#include <jansson.h>
#include <sodium.h>

#include "check_pg.h"
#include "store.h"

#define SESSIONS      4
#define FINISHED_RUNS 20000 /* completed, spread over the sessions */
#define QUEUED_RUNS   2000  /* the backlog, spread over them too */
#define ROUNDS        3     /* each: a claim of the heads, a claim with every session busy */
/* What a claim may read, in shared buffers: a few index pages per session
 * with queued work, and per run it claims its row, index entries, events and
 * conversation. (Measured: 7 and about 90.) */
#define BUFFERS_PER_SESSION 16
#define BUFFERS_PER_CLAIM   200
#define DATABASE            "kheish_claim_plan"
#define CLAIM               "SELECT kheish_work('claim-plan', '[]', '[]', 60000, 16, 50)->'claimed'"

#define STR(x)  #x
#define XSTR(x) STR(x)

static PGconn *pg;

static const char *
sql(const char *q)
{
    return check_sql(pg, q);
}

/* The buffers one claim reads, as EXPLAIN counts them: the function's own
 * statements and its triggers' included. */
static long
claim_buffers(void)
{
    json_t *plan = json_loads(sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " CLAIM), 0, NULL);
    json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
    long n = (long)(json_integer_value(json_object_get(top, "Shared Hit Blocks")) +
                    json_integer_value(json_object_get(top, "Shared Read Blocks")));
    CHECK(top != NULL);
    json_decref(plan);
    return n;
}

/* The run ids of each session's oldest queued run, in order, space-separated. */
static void
heads(char *buf, size_t size)
{
    snprintf(buf, size, "%s",
             sql("SELECT coalesce(string_agg(run_id, ' ' ORDER BY run_id), '') FROM ("
                 "SELECT DISTINCT ON (session_id) run_id FROM runs WHERE status = 'queued' "
                 "ORDER BY session_id, run_no) h"));
}

static void
claims(void)
{
    char expected[4096];
    for (int round = 0; round < ROUNDS; round++) {
        heads(expected, sizeof expected);
        long taking = claim_buffers();
        CHECK_STR(sql("SELECT coalesce(string_agg(run_id, ' ' ORDER BY run_id), '') FROM runs "
                      "WHERE status = 'running'"),
                  expected);
        long busy = claim_buffers();
        CHECK_STR(sql("SELECT count(*) FROM runs WHERE status = 'running'"), XSTR(SESSIONS));
        /* The first claim of a connection also plans its statements. */
        if (round > 0)
            CHECK(taking <= (long)SESSIONS * (BUFFERS_PER_SESSION + BUFFERS_PER_CLAIM));
        CHECK(busy <= (long)SESSIONS * BUFFERS_PER_SESSION);
        printf("round %d: %ld buffers claiming %d heads, %ld with every session busy\n", round + 1,
               taking, SESSIONS, busy);
        sql("UPDATE runs SET status = 'completed', finished_at_ms = 0 WHERE status = 'running'");
    }
}

int
main(void)
{
    struct store_migration_report report;
    char url[1024];
    if (sodium_init() < 0)
        return 1;
    check_scratch_db(DATABASE, 0, url, sizeof url);
    struct store *db = store_open(url, NULL);
    CHECK(store_migrate(db, &report) == STORE_OK);
    pg = PQconnectdb(url);
    sql("ALTER TABLE runs SET (autovacuum_enabled = off)");
    sql("INSERT INTO sessions (session_id, agent_id, created_at_ms, updated_at_ms) "
        "SELECT 'plan-' || i, 'agent', 0, 0 FROM generate_series(1, " XSTR(SESSIONS) ") i");
    sql("INSERT INTO runs (run_id, run_no, session_id, agent_id, status, submitted_at_ms, "
        "updated_at_ms, finished_at_ms, request, payload, outputs) "
        "SELECT 'run-' || n, n, 'plan-' || (n % " XSTR(
            SESSIONS) " + 1), 'agent', 'completed', "
                      "0, 0, 0, '{}', '{\"content\":\"before\"}', '[{\"content\":\"ok\"}]' FROM ("
                      "SELECT nextval('runs_run_no_seq') AS n FROM generate_series(1, " XSTR(
                          FINISHED_RUNS) ")) x");
    sql("ANALYZE runs");
    sql("INSERT INTO runs (run_id, run_no, session_id, agent_id, status, submitted_at_ms, "
        "updated_at_ms, request, payload) "
        "SELECT 'run-' || n, n, 'plan-' || (n % " XSTR(
            SESSIONS) " + 1), 'agent', 'queued', "
                      "0, 0, '{}', '{\"content\":\"backlog\"}' FROM ("
                      "SELECT nextval('runs_run_no_seq') AS n FROM generate_series(1, " XSTR(
                          QUEUED_RUNS) ")) x");
    claims();
    PQfinish(pg);
    store_close(db);
    check_scratch_db(DATABASE, 1, url, sizeof url);
    return check_report("store_claim_plan");
}
