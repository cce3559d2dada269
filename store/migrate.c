/*
 * kheish migrate: applies the embedded migrations in one transaction under an
 * advisory lock, recording each with its SHA-256. A recorded migration whose
 * text changed, or one this binary does not know, stops everything.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "migrations.h"
#include "util.h"

#define MIGRATE_LOCK "7739075311862628352"

struct migrate_ctx {
    int applied;
};

static enum store_rc
check_applied(struct store *s, PGresult *rows, int *known)
{
    for (int i = 0; i < PQntuples(rows); i++) {
        int version = atoi(PQgetvalue(rows, i, 0));
        const struct store_migration *m = NULL;
        for (int j = 0; j < store_migration_count; j++)
            if (store_migrations[j].version == version)
                m = &store_migrations[j];
        char sum[65];
        if (m)
            util_sha256_hex(m->sql, m->len, sum);
        if (m == NULL || strcmp(sum, PQgetvalue(rows, i, 1)) != 0) {
            snprintf(s->err, sizeof s->err,
                     m ? "migration %d (%s) was changed after it was applied: checksum %s, "
                         "recorded %s"
                       : "database has migration %d which this binary does not know%s%s%s",
                     version, m ? m->name : "", m ? sum : "", PQgetvalue(rows, i, 1));
            return STORE_MIGRATION_CHANGED;
        }
        known[m - store_migrations] = 1;
    }
    return STORE_OK;
}

static enum store_rc
migrate_tx(struct store *s, void *arg)
{
    struct migrate_ctx *c = arg;
    enum store_rc rc;
    PGresult *r = db_exec(s, &rc, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, NULL);
    PQclear(r);
    if (r)
        r = db_exec(s, &rc,
                    "CREATE TABLE IF NOT EXISTS kheish_schema_migrations ("
                    "version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())",
                    0, NULL);
    PQclear(r);
    if (r)
        r = db_exec(s, &rc, "SELECT version, checksum FROM kheish_schema_migrations", 0, NULL);
    if (r == NULL)
        return rc;
    int *known = calloc((size_t)store_migration_count + 1, sizeof *known);
    rc = known ? check_applied(s, r, known) : STORE_ERROR;
    PQclear(r);
    c->applied = 0;
    for (int i = 0; rc == STORE_OK && i < store_migration_count; i++) {
        const struct store_migration *m = &store_migrations[i];
        if (known[i])
            continue;
        PGresult *x = PQexec(s->conn, m->sql);
        if (PQresultStatus(x) != PGRES_COMMAND_OK && PQresultStatus(x) != PGRES_TUPLES_OK) {
            snprintf(s->err, sizeof s->err, "migration %s failed: %s", m->name,
                     PQresultErrorMessage(x));
            rc = STORE_ERROR;
        }
        PQclear(x);
        if (rc != STORE_OK)
            break;
        char sum[65], version[16];
        util_sha256_hex(m->sql, m->len, sum);
        snprintf(version, sizeof version, "%d", m->version);
        r = db_exec(s, &rc,
                    "INSERT INTO kheish_schema_migrations (version, name, checksum) "
                    "VALUES ($1::int, $2, $3)",
                    3, (const char *const[]){version, m->name, sum});
        PQclear(r);
        c->applied++;
    }
    free(known);
    return rc;
}

enum store_rc
store_migrate(struct store *s, int *applied, int *total)
{
    struct migrate_ctx c = {0};
    enum store_rc rc = store_tx(s, migrate_tx, &c);
    *applied = rc == STORE_OK ? c.applied : 0;
    *total = store_migration_count;
    return rc;
}
