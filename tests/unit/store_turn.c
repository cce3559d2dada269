/*
 * The runner's turn statement with ledger records (kheish_work, sql/016): a
 * response record that follows its bucket's last one is appended with its
 * run's outcome; one that does not follow (another writer moved the bucket)
 * is answered with where the bucket stands and its outcome is held, the
 * run left running, and no claim takes its slot; a bucket's records in one
 * batch are appended together when they follow one another, and refused,
 * changing nothing, when they do not. In a database of its own, dropped at
 * the end.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>

#include "check_pg.h"
#include "store.h"

#define DATABASE "kheish_turn"
#define OWNER    "runner@h:1"

/* A record of run_id's bucket at seq (prev_hash: the hash before it),
 * hashed and signed in name only: the database checks the chain, not the
 * signatures. */
static json_t *
record(const char *run_id, int seq, const char *hash, const char *prev_hash)
{
    return json_pack("{s:s, s:i, s:s, s:{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s*, s:s, s:s, s:s, "
                     "s:s}}",
                     "bucket", run_id, "seq", seq, "checkpoint_signature", "cs", "record",
                     "action_id", hash, "timestamp_ms", 1, "run_id", run_id, "phase", "response",
                     "kind", "provider", "target", "provider:t:m", "outcome", "ok", "prev_hash",
                     prev_hash, "record_hash", hash, "signature_alg", "ed25519", "key_id", "k",
                     "signature", "s");
}

/* One turn: records, run_id's completed outcome (when run_id), a claim of
 * max; *claimed runs are freed here. */
static enum store_rc
turn(struct store *s, json_t *records, const char *run_id, size_t max, json_t **answers,
     struct store_report *o, size_t *claimed)
{
    struct store_work ran = {0}, w[4];
    snprintf(ran.run_id, sizeof ran.run_id, "%s", run_id ? run_id : "");
    *o = (struct store_report){.w = &ran, .status = "completed", .text = "done"};
    enum store_rc rc =
        store_work_turn(s, OWNER, 60000, records, answers, o, run_id ? 1 : 0, w, max, claimed);
    for (size_t i = 0; i < *claimed; i++)
        store_work_free(&w[i]);
    json_decref(records);
    return rc;
}

static const char *
answer(const json_t *answers, size_t i, const char *name)
{
    static char buf[64];
    json_t *v = json_object_get(json_array_get(answers, i), name);
    snprintf(buf, sizeof buf, "%s",
             json_is_string(v) ? json_string_value(v)
             : json_is_true(v) ? "true"
                               : "false");
    if (json_is_integer(v))
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    return buf;
}

int
main(void)
{
    struct store_migration_report report;
    char url[1024], run[64];
    json_t *answers = NULL;
    struct store_report o;
    size_t claimed = 0;
    if (sodium_init() < 0)
        return 1;
    check_scratch_db(DATABASE, 0, url, sizeof url);
    PGconn *pg = PQconnectdb(url);
    struct store *s = store_open(url, NULL);
    CHECK(store_migrate(s, &report) == STORE_OK);
    check_submit(s, "turn-1", "hello", NULL, 0);
    check_submit(s, "turn-2", "hello", NULL, 0);
    CHECK(turn(s, json_array(), NULL, 1, &answers, &o, &claimed) == STORE_OK && claimed == 1);
    json_decref(answers);
    snprintf(run, sizeof run, "%s",
             check_sql(pg, "SELECT run_id FROM runs WHERE status = 'running'"));

    /* Its request record, alone in a turn: appended, the checkpoint made. */
    CHECK(turn(s, json_pack("[o]", record(run, 1, "h1", NULL)), NULL, 0, &answers, &o, &claimed) ==
          STORE_OK);
    CHECK_STR(answer(answers, 0, "appended"), "true");
    json_decref(answers);

    /* A response that does not follow: not appended, answered with where the
     * bucket stands; the outcome is held and its slot not given away. */
    CHECK(turn(s, json_pack("[o]", record(run, 3, "h3", "h2")), run, 1, &answers, &o, &claimed) ==
          STORE_OK);
    CHECK_STR(answer(answers, 0, "appended"), "false");
    CHECK_STR(answer(answers, 0, "record_count"), "1");
    CHECK_STR(answer(answers, 0, "last_record_hash"), "h1");
    CHECK(o.held == 1 && o.ended == 0 && claimed == 0);
    json_decref(answers);
    CHECK_STR(check_sql(pg, "SELECT status FROM runs WHERE session_id = 'turn-1'"), "running");
    CHECK_STR(check_sql(pg, "SELECT count(*) FROM external_actions"), "1");

    /* Records of one bucket that do not follow one another in a batch (a
     * gap, a prev_hash that is not the record before): refused, nothing
     * changes. */
    CHECK(turn(s, json_pack("[o, o]", record(run, 2, "h2", "h1"), record(run, 4, "h4", "h2")), run,
               1, &answers, &o, &claimed) != STORE_OK);
    json_decref(answers);
    CHECK(turn(s, json_pack("[o, o]", record(run, 2, "h2", "h1"), record(run, 3, "h3", "hx")), run,
               1, &answers, &o, &claimed) != STORE_OK);
    json_decref(answers);
    CHECK_STR(check_sql(pg, "SELECT status FROM runs WHERE session_id = 'turn-1'"), "running");
    CHECK_STR(check_sql(pg, "SELECT record_count FROM external_action_checkpoints"), "1");

    /* Signed again after the bucket's last record, two records in one batch
     * (a response and the next request): appended with the outcome, the
     * checkpoint on the last, and the slot it frees takes the next run. */
    CHECK(turn(s, json_pack("[o, o]", record(run, 2, "h2", "h1"), record(run, 3, "h3", "h2")), run,
               1, &answers, &o, &claimed) == STORE_OK);
    CHECK_STR(answer(answers, 0, "appended"), "true");
    CHECK_STR(answer(answers, 1, "appended"), "true");
    CHECK(o.held == 0 && o.ended == 1 && claimed == 1);
    json_decref(answers);
    CHECK_STR(check_sql(pg, "SELECT status FROM runs WHERE session_id = 'turn-1'"), "completed");
    CHECK_STR(check_sql(pg, "SELECT string_agg(seq || ':' || record_hash, ',' ORDER BY seq) "
                            "FROM external_actions"),
              "1:h1,2:h2,3:h3");
    CHECK_STR(check_sql(pg, "SELECT record_count || ':' || last_record_hash "
                            "FROM external_action_checkpoints"),
              "3:h3");
    CHECK_STR(check_sql(pg, "SELECT bool_and(chain_ok) FROM audit.external_actions"), "t");
    CHECK_STR(check_sql(pg, "SELECT ok FROM audit.external_action_buckets"), "t");

    /* A checkpoint never moves back, even for the owner's statements. */
    PGresult *back = PQexec(pg, "UPDATE external_action_checkpoints SET record_count = 2");
    CHECK(PQresultStatus(back) == PGRES_FATAL_ERROR);
    PQclear(back);

    store_close(s);
    PQfinish(pg);
    check_scratch_db(DATABASE, 1, url, sizeof url);
    return check_report("store_turn");
}
