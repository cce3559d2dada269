/*
 * The run state machine (contract section 3) as a table: for every ordered
 * pair of distinct statuses, a run is driven into the first and asked to move
 * to the second; the store must allow exactly the contract's transitions.
 * Also: queue order and one active run per session.
 */
#include <sodium.h>
#include <unistd.h>

#include "check_pg.h"
#include "store.h"

enum { QUEUED, RUNNING, W_APPROVAL, W_QUESTION, COMPLETED, FAILED, INTERRUPTED, CANCELLED, N };

static const char *const names[N] = {
    "queued",    "running", "waiting_for_approval", "waiting_for_user_question",
    "completed", "failed",  "interrupted",          "cancelled"};

/* allowed[from][to], written from the contract, independently of the SQL. */
static const int allowed[N][N] = {
    [QUEUED] = {[RUNNING] = 1, [FAILED] = 1, [CANCELLED] = 1},
    [RUNNING] = {[QUEUED] = 1,
                 [W_APPROVAL] = 1,
                 [W_QUESTION] = 1,
                 [COMPLETED] = 1,
                 [FAILED] = 1,
                 [INTERRUPTED] = 1,
                 [CANCELLED] = 1},
    [W_APPROVAL] = {[RUNNING] = 1, [FAILED] = 1, [INTERRUPTED] = 1, [CANCELLED] = 1},
    [W_QUESTION] =
        {[RUNNING] = 1, [COMPLETED] = 1, [FAILED] = 1, [INTERRUPTED] = 1, [CANCELLED] = 1},
};

/* How to reach each status from queued. */
static const int paths[N][3] = {
    [QUEUED] = {-1},
    [RUNNING] = {RUNNING, -1},
    [W_APPROVAL] = {RUNNING, W_APPROVAL, -1},
    [W_QUESTION] = {RUNNING, W_QUESTION, -1},
    [COMPLETED] = {RUNNING, COMPLETED, -1},
    [FAILED] = {FAILED, -1},
    [INTERRUPTED] = {RUNNING, INTERRUPTED, -1},
    [CANCELLED] = {CANCELLED, -1},
};

static struct store *db;
static int session_counter;

/* A new session with one queued run; returns the run id in buf. */
static const char *
new_run(char *buf, size_t size, char *session, size_t ssize)
{
    snprintf(session, ssize, "states-%d-%d", getpid(), session_counter++);
    check_submit(db, session, "state test", buf, size);
    return buf;
}

static enum store_rc
move(const char *run, int to, const char **status)
{
    json_t *view = NULL;
    enum store_rc rc = store_run_transition(db, NULL, run, names[to], &view);
    static char last[64];
    snprintf(last, sizeof last, "%s",
             view ? json_string_value(json_object_get(view, "status")) : "");
    *status = last;
    json_decref(view);
    return rc;
}

/* The stored RunView of a run, parsed (NULL when the read fails). */
static json_t *
run_view(const char *run)
{
    char *text = NULL;
    CHECK(store_run_get(db, run, &text) == STORE_OK);
    json_t *view = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return view;
}

static void
table(void)
{
    char run[64], session[64];
    const char *status;
    for (int from = 0; from < N; from++) {
        for (int to = 0; to < N; to++) {
            if (from == to)
                continue;
            new_run(run, sizeof run, session, sizeof session);
            for (int k = 0; paths[from][k] >= 0; k++)
                CHECK(move(run, paths[from][k], &status) == STORE_OK);
            enum store_rc rc = move(run, to, &status);
            if (allowed[from][to]) {
                CHECK(rc == STORE_OK);
                CHECK_STR(status, names[to]);
            } else {
                CHECK(rc == STORE_RUN_STATE_CONFLICT);
                json_t *view = run_view(run);
                CHECK_STR(json_string_value(json_object_get(view, "status")), names[from]);
                json_decref(view);
            }
            if ((rc == STORE_OK) != allowed[from][to])
                fprintf(stderr, "  %s -> %s: got %s\n", names[from], names[to], store_strerror(rc));
        }
    }
}

static void
queue_order(void)
{
    char first[64], second[64], session[64];
    const char *status;
    json_t *view, *payload = json_pack("{s:s}", "content", "second");
    int replayed;
    new_run(first, sizeof first, session, sizeof session);
    struct store_run_submit r = {session, payload, NULL, NULL, 0};
    CHECK(store_run_submit(db, NULL, &r, &view, &replayed) == STORE_OK);
    snprintf(second, sizeof second, "%s", json_string_value(json_object_get(view, "run_id")));
    CHECK(json_integer_value(json_object_get(view, "queued_position")) == 2);
    json_decref(view);
    json_decref(payload);
    /* The second cannot overtake the first... */
    CHECK(move(second, RUNNING, &status) == STORE_RUN_STATE_CONFLICT);
    CHECK(move(first, RUNNING, &status) == STORE_OK);
    /* ...nor run beside it: one active run per session. */
    CHECK(move(second, RUNNING, &status) == STORE_RUN_STATE_CONFLICT);
    view = run_view(second);
    CHECK(json_integer_value(json_object_get(view, "queued_position")) == 1);
    json_decref(view);
    CHECK(move(first, COMPLETED, &status) == STORE_OK);
    CHECK(move(second, RUNNING, &status) == STORE_OK);
}

int
main(void)
{
    struct store_migration_report report;
    if (sodium_init() < 0)
        return 1;
    db = store_open(check_database_url(), NULL);
    CHECK(store_migrate(db, &report) == STORE_OK);
    table();
    queue_order();
    store_close(db);
    return check_report("store_run_states");
}
