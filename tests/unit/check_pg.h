/* check_pg: SQL for the store tests that need a database of their own. */
#ifndef KHEISH_TEST_CHECK_PG_H
#define KHEISH_TEST_CHECK_PG_H

#include <libpq-fe.h>

#include "check.h"

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

#endif
