/* check_pg: SQL and fixtures for the store tests that need a database of
 * their own. */
#ifndef KHEISH_TEST_CHECK_PG_H
#define KHEISH_TEST_CHECK_PG_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>

#include "check.h"
#include "store.h"

/* Runs q on pg, which must succeed; returns its first value ("" when none),
 * valid until the next call. */
static inline const char *
check_sql(PGconn *pg, const char *q)
{
    static char value[4096];
    PGresult *r = PQexec(pg, q);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  %s: %s", q, PQerrorMessage(pg));
    snprintf(value, sizeof value, "%s", ok && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return value;
}

/* Creates (drop = 0) or drops (drop = 1) the empty database name on the
 * harness's cluster; url receives its connection string. */
static inline void
check_scratch_db(const char *name, int drop, char *url, size_t size)
{
    char q[256];
    /* The harness's URL is keyword=value (tests/run.sh): a later dbname wins. */
    snprintf(url, size, "%s dbname=%s", check_database_url(), name);
    PGconn *admin = PQconnectdb(check_database_url());
    snprintf(q, sizeof q, "DROP DATABASE IF EXISTS %s", name);
    check_sql(admin, q);
    snprintf(q, sizeof q, "CREATE DATABASE %s", name);
    if (!drop)
        check_sql(admin, q);
    PQfinish(admin);
}

/* One more queued run of content in session (made, or reused); its id into
 * run_id (size bytes) unless NULL. */
static inline void
check_submit(struct store *s, const char *session, const char *content, char *run_id, size_t size)
{
    json_t *view, *payload = json_pack("{s:s}", "content", content);
    int created, replayed;
    struct store_session_create c = {session, NULL, NULL, NULL, NULL};
    CHECK(store_session_create(s, NULL, &c, &view, &created) == STORE_OK);
    json_decref(view);
    struct store_run_submit r = {session, payload, NULL, NULL, 0};
    CHECK(store_run_submit(s, NULL, &r, &view, &replayed) == STORE_OK);
    if (run_id)
        snprintf(run_id, size, "%s", json_string_value(json_object_get(view, "run_id")));
    json_decref(view);
    json_decref(payload);
}

#endif
