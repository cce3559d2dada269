/*
 * Runner liveness (issue 13, point 4): a runner's heartbeat makes its row
 * (table runners) and takes the maintenance lock in one statement; the
 * runners block of /v1/status lists the live ones, oldest first and at most
 * RUNNERS_LISTED_MAX of them, each with the running runs it holds; a runner
 * silent longer than the live window is not listed, one silent for an hour
 * is deleted by the maintenance pass, one that stops cleanly deletes its
 * own row. In a database of its own, dropped at the end.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>

#include "check_pg.h"
#include "store.h"

#define DATABASE "kheish_runners"
#define LISTED   100 /* store/work.c's RUNNERS_LISTED_MAX */

static PGconn *pg;

static json_t *
runners(struct store *s)
{
    json_t *block = NULL;
    CHECK(store_runners_status(s, &block) == STORE_OK);
    return block;
}

static json_int_t
num(const json_t *o, const char *name)
{
    return json_integer_value(json_object_get(o, name));
}

/* The live entry of runner_id in a runners block, or NULL. */
static const json_t *
entry(const json_t *block, const char *runner_id)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(block, "live"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "runner_id")), runner_id))
            return e;
    }
    return NULL;
}

/* A session with one queued run, claimed by owner through its turn. */
static void
claim_one(struct store *s, const char *session, const char *owner)
{
    check_submit(s, session, "held", NULL, 0);
    struct store_work w[1];
    size_t claimed = 0;
    json_t *records = json_array(), *answers = NULL;
    CHECK(store_work_turn(s, owner, 60000, records, &answers, NULL, 0, w, 1, &claimed) == STORE_OK);
    CHECK(claimed == 1 && json_array_size(answers) == 0);
    json_decref(records);
    json_decref(answers);
    if (claimed)
        store_work_free(&w[0]);
}

int
main(void)
{
    struct store_migration_report report;
    char url[1024];
    int held = -1;
    json_t *block, *recovered = NULL;
    if (sodium_init() < 0)
        return 1;
    check_scratch_db(DATABASE, 0, url, sizeof url);
    pg = PQconnectdb(url);
    /* Each store connects on its first statement, named as the environment
     * says then. */
    struct store *a = store_open(url, NULL), *b = store_open(url, NULL);
    setenv("PGAPPNAME", "runner-one", 1);
    CHECK(store_migrate(a, &report) == STORE_OK);
    setenv("PGAPPNAME", "runner-two", 1);
    CHECK(store_ping(b) == STORE_OK);

    /* Nobody yet. */
    block = runners(a);
    CHECK(num(block, "live_count") == 0 && json_array_size(json_object_get(block, "live")) == 0);
    CHECK(num(block, "live_window_ms") == 15000);
    CHECK(json_is_null(json_object_get(block, "maintenance_lock_holder")));
    json_decref(block);

    /* The first beat registers (the database's clock) and takes the lock;
     * a second runner's beat registers but finds the lock taken. */
    struct store_runner one = {"runner-one@h:1", "h", 1, 16, 0, 0};
    struct store_runner two = {"runner-two@h:2", "h", 2, 4, 0, 0};
    CHECK(store_runner_beat(a, &one, &held) == STORE_OK && held == 1);
    CHECK(one.db_now_ms > 0 && one.db_now_ms >= one.started_at_ms); /* the runners' clock */
    CHECK(one.started_at_ms > 0);
    check_sql(pg, "UPDATE runners SET started_at_ms = started_at_ms - 1000, "
                  "last_heartbeat_at_ms = last_heartbeat_at_ms - 1000");
    one.started_at_ms -= 1000;
    CHECK(store_runner_beat(b, &two, &held) == STORE_OK && held == 0);
    CHECK(store_runner_beat(a, &one, &held) == STORE_OK && held == 1);

    /* Both live, oldest first; one holds the run it claimed. */
    claim_one(a, "held-1", one.runner_id);
    block = runners(b);
    CHECK(num(block, "live_count") == 2 && num(block, "runs_held_total") == 1 &&
          num(block, "slots_total") == 20);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(block, "live"), 0), "runner_id")),
              one.runner_id);
    const json_t *e = entry(block, one.runner_id);
    CHECK(num(e, "runs_held") == 1 && num(e, "pid") == 1 && num(e, "concurrency") == 16);
    CHECK_STR(json_string_value(json_object_get(e, "host")), "h");
    CHECK(num(e, "started_at_ms") == one.started_at_ms);
    CHECK(num(e, "last_heartbeat_at_ms") > one.started_at_ms && num(e, "heartbeat_age_ms") >= 0);
    CHECK(num(entry(block, two.runner_id), "runs_held") == 0);
    CHECK_STR(json_string_value(json_object_get(block, "maintenance_lock_holder")), "runner-one");
    json_decref(block);
    /* The run's view names its lease. */
    char *text = NULL;
    CHECK(store_run_get(a, check_sql(pg, "SELECT run_id FROM runs WHERE session_id = 'held-1'"),
                        &text) == STORE_OK);
    json_t *view = text ? json_loads(text, 0, NULL) : NULL;
    CHECK_STR(json_string_value(json_object_get(view, "lease_owner")), one.runner_id);
    CHECK(num(view, "lease_expires_at_ms") > one.started_at_ms);
    json_decref(view);
    free(text);

    /* A runner silent beyond the live window is not listed; its row stays
     * until it has been silent for an hour, when the maintenance pass
     * deletes it. */
    check_sql(pg, "UPDATE runners SET last_heartbeat_at_ms = last_heartbeat_at_ms - 16000 "
                  "WHERE runner_id = 'runner-two@h:2'");
    block = runners(a);
    CHECK(num(block, "live_count") == 1 && entry(block, two.runner_id) == NULL);
    json_decref(block);
    CHECK(store_work_recover(a, &recovered) == STORE_OK);
    CHECK(num(recovered, "runners_pruned") == 0);
    json_decref(recovered);
    check_sql(pg, "UPDATE runners SET last_heartbeat_at_ms = last_heartbeat_at_ms - 3600000 "
                  "WHERE runner_id = 'runner-two@h:2'");
    CHECK(store_work_recover(a, &recovered) == STORE_OK);
    CHECK(num(recovered, "runners_pruned") == 1);
    json_decref(recovered);
    CHECK_STR(check_sql(pg, "SELECT count(*) FROM runners"), "1");
    /* Its next beat brings it back, with the start it had. */
    CHECK(store_runner_beat(b, &two, &held) == STORE_OK && held == 0);
    block = runners(a);
    CHECK(num(entry(block, two.runner_id), "started_at_ms") == two.started_at_ms);
    json_decref(block);

    /* A clean stop deletes the row at once. */
    CHECK(store_runner_forget(b, two.runner_id) == STORE_OK);
    CHECK(store_runner_forget(a, one.runner_id) == STORE_OK);
    block = runners(a);
    CHECK(num(block, "live_count") == 0 && num(block, "slots_total") == 0);
    json_decref(block);

    /* The list is bounded; the count is not. */
    check_sql(pg, "INSERT INTO runners SELECT 'r' || i, 'h', i, 1, i, kheish_now_ms() "
                  "FROM generate_series(1, 150) i");
    block = runners(a);
    CHECK(num(block, "live_count") == 150 &&
          json_array_size(json_object_get(block, "live")) == LISTED);
    json_decref(block);

    store_close(b);
    store_close(a);
    PQfinish(pg);
    check_scratch_db(DATABASE, 1, url, sizeof url);
    return check_report("store_runners");
}
