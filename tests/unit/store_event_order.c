/*
 * The event-id rule (ARCHITECTURE.md): 8 writer processes each commit 500
 * transactions appending events through kheish_append_events while a reader
 * tails with `id > cursor`. Every event must be seen exactly once, in
 * increasing id order, and each writer's events in the order it wrote them.
 */
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_pg.h"
#include "store.h"
#include "util.h"

#define WRITERS         8
#define TX_PER_WRITER   500
#define EVENTS_PER_TX   2
#define TAIL_PAGE       1000
#define TAIL_TIMEOUT_MS 120000

/* A writer: its own connection, each statement one transaction. */
static int
writer(const char *url, int id)
{
    PGconn *pg = PQconnectdb(url);
    for (int i = 0; i < TX_PER_WRITER; i++) {
        json_t *stream = json_array();
        for (int k = 0; k < EVENTS_PER_TX; k++)
            json_array_append_new(stream,
                                  json_pack("{s:s, s:{s:i, s:i}}", "name", "test_event", "data",
                                            "writer", id, "seq", i * EVENTS_PER_TX + k));
        char *param = json_dumps(stream, JSON_COMPACT);
        json_decref(stream);
        PGresult *r = PQexecParams(pg, "SELECT kheish_append_events($1::jsonb, '[]')", 1, NULL,
                                   (const char *const[]){param}, NULL, NULL, 0);
        free(param);
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (!ok) {
            fprintf(stderr, "writer %d: %s", id, PQerrorMessage(pg));
            return 1;
        }
    }
    PQfinish(pg);
    return 0;
}

int
main(void)
{
    const char *url = check_database_url();
    struct store_migration_report report;
    if (sodium_init() < 0)
        return 1;
    struct store *s = store_open(url, NULL);
    CHECK(store_migrate(s, &report) == STORE_OK);

    /* Start after whatever the database already holds. */
    json_t *items;
    int64_t cursor = 0;
    for (;;) {
        CHECK(store_events_after(s, cursor, TAIL_PAGE, &items) == STORE_OK);
        size_t n = json_array_size(items);
        if (n)
            util_parse_i64(json_string_value(json_object_get(json_array_get(items, n - 1), "id")),
                           0, INT64_MAX, &cursor);
        json_decref(items);
        if (n < TAIL_PAGE)
            break;
    }

    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++)
        if ((pids[w] = fork()) == 0)
            _exit(writer(url, w));

    static int seen[WRITERS][TX_PER_WRITER * EVENTS_PER_TX];
    int next_seq[WRITERS] = {0};
    int expected = WRITERS * TX_PER_WRITER * EVENTS_PER_TX, got = 0;
    int order_ok = 1, dup_ok = 1, seq_ok = 1;
    int64_t deadline = util_now_ms() + TAIL_TIMEOUT_MS;
    while (got < expected && util_now_ms() < deadline) {
        CHECK(store_events_after(s, cursor, TAIL_PAGE, &items) == STORE_OK);
        size_t i;
        json_t *e;
        json_array_foreach(items, i, e)
        {
            int64_t id;
            util_parse_i64(json_string_value(json_object_get(e, "id")), 0, INT64_MAX, &id);
            order_ok &= id > cursor;
            cursor = id;
            json_t *d = json_object_get(e, "data");
            int w = (int)json_integer_value(json_object_get(d, "writer"));
            int q = (int)json_integer_value(json_object_get(d, "seq"));
            if (w < 0 || w >= WRITERS || q < 0 || q >= TX_PER_WRITER * EVENTS_PER_TX) {
                dup_ok = 0;
                continue;
            }
            dup_ok &= seen[w][q]++ == 0;
            seq_ok &= q == next_seq[w];
            next_seq[w] = q + 1;
            got++;
        }
        json_decref(items);
    }
    int writers_ok = 1;
    for (int w = 0; w < WRITERS; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        writers_ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    CHECK(writers_ok);
    CHECK(got == expected);
    CHECK(order_ok);
    CHECK(dup_ok);
    CHECK(seq_ok);
    printf("store_event_order: %d of %d events seen by the tailing reader\n", got, expected);
    store_close(s);
    return check_report("store_event_order");
}
