/*
 * kheish migrate, in one transaction under an advisory lock: the migrations
 * (sql/migrations/) not applied yet, each recorded with its SHA-256 (a
 * recorded migration whose text changed, or one this binary does not know,
 * stops everything), then each functions file (sql/functions/) whose text
 * is not the one last applied, recorded the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "migrations.h"
#include "util.h"

#define MIGRATE_LOCK "7739075311862628352"

/* The checksums of migrations 1 to 11 before sql/ was split into
 * migrations and functions files: the split took the functions out of
 * them, and a database that applied them as they were has the same tables.
 * Such a record is accepted and rewritten with today's checksum; the
 * functions files then bring every function up to date. */
static const char *const pre_split[] = {
    "88b797dd1a5c72d427ad6b31e3bb349e5eaf215618d08dffa412e5a8db7008f5",
    "108d8a8fe45738dc317a9cbafde2ba80ebb8ce24d60116f08efa22ab6b3c72cd",
    "3e2992bf50ba640bb0bd3988b388ac2b70b0acac5e22fd200acdd54b231c45c5",
    "a96e43a2604baeb08cdbba46554fe828e03a1d9bf8f0d02ddf840b52c5a88d3c",
    "ce9bf2ac7094a3dff770375d3e2602a873b789ac4ad3f63ce92954d6858be432",
    "995e408a34cc37a5f0db4b2f64c3178a2e6b17dcb51c62517bd09318850a4b8d",
    "caa8fa4eeb2d7710581c72f71f68e94c7493a8e48c1f120b37713e13163a3b2a",
    "1ede70502700b7d18701562e958a21c62f01350b84fad9c701b837aa2df6c29e",
    "20f390e0474247aa20327815e8f27eba0a7e14055069d2069fbf3a8c31e3214f",
    "d1d37adee832a84d346d2ea153ce9674fe8d0e2b790937e50758a541da1e4e4f",
    "d1dc7180fafd0232ef554f51e8ad0879fc96b51fd77ec06c76bfbb83262d2b24",
};

static enum store_rc
run_sql(struct store *s, const struct store_sql *f)
{
    PGresult *x = PQexec(s->conn, f->sql);
    enum store_rc rc = STORE_OK;
    ExecStatusType st = PQresultStatus(x); /* a migration may be a comment only (009) */
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        snprintf(s->err, sizeof s->err, "%s failed: %s", f->name, PQresultErrorMessage(x));
        rc = STORE_ERROR;
    }
    PQclear(x);
    return rc;
}

/* Runs one statement whose result is not needed. */
static enum store_rc
run(struct store *s, const char *sql, int nparams, const char *const *params)
{
    enum store_rc rc = STORE_OK;
    PQclear(db_exec(s, &rc, sql, nparams, params));
    return rc;
}

/* The migration of a recorded row, or NULL after saying why it stops
 * everything. Marks it in known. */
static const struct store_sql *
check_applied(struct store *s, const char *version, const char *recorded, int *known)
{
    int v = atoi(version);
    const struct store_sql *m = NULL;
    for (int j = 0; j < store_migrations_count; j++)
        if (store_migrations[j].version == v)
            m = &store_migrations[j];
    char sum[65] = "";
    if (m)
        util_sha256_hex(m->sql, m->len, sum);
    int pre = v >= 1 && v <= (int)(sizeof pre_split / sizeof *pre_split) &&
              !strcmp(recorded, pre_split[v - 1]);
    int ok = m && !strcmp(sum, recorded);
    if (m && !ok && pre)
        ok = run(s, "UPDATE kheish_schema_migrations SET checksum = $2 WHERE version = $1::int", 2,
                 (const char *const[]){version, sum}) == STORE_OK;
    if (!ok) {
        snprintf(s->err, sizeof s->err,
                 m ? "migration %d (%s) was changed after it was applied: checksum %s, "
                     "recorded %s"
                   : "database has migration %d which this binary does not know%s%s%s",
                 v, m ? m->name : "", sum, recorded);
        return NULL;
    }
    known[m - store_migrations] = 1;
    return m;
}

static enum store_rc
apply_migrations(struct store *s, struct store_migration_report *out)
{
    enum store_rc rc;
    PGresult *r =
        db_exec(s, &rc, "SELECT version, checksum FROM kheish_schema_migrations", 0, NULL);
    if (r == NULL)
        return rc;
    int *known = calloc((size_t)store_migrations_count + 1, sizeof *known);
    rc = known ? STORE_OK : STORE_ERROR;
    for (int i = 0; rc == STORE_OK && i < PQntuples(r); i++)
        if (check_applied(s, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), known) == NULL)
            rc = STORE_MIGRATION_CHANGED;
    PQclear(r);
    for (int i = 0; rc == STORE_OK && i < store_migrations_count; i++) {
        const struct store_sql *m = &store_migrations[i];
        if (known[i])
            continue;
        char sum[65], version[16];
        util_sha256_hex(m->sql, m->len, sum);
        snprintf(version, sizeof version, "%d", m->version);
        rc = run_sql(s, m);
        if (rc == STORE_OK)
            rc = run(s,
                     "INSERT INTO kheish_schema_migrations (version, name, checksum) "
                     "VALUES ($1::int, $2, $3)",
                     3, (const char *const[]){version, m->name, sum});
        out->applied += rc == STORE_OK;
    }
    free(known);
    return rc;
}

/* Each functions file whose text is not the one recorded, in order. */
static enum store_rc
apply_functions(struct store *s, struct store_migration_report *out)
{
    enum store_rc rc = STORE_OK;
    for (int i = 0; rc == STORE_OK && i < store_functions_count; i++) {
        const struct store_sql *f = &store_functions[i];
        char sum[65], *recorded = NULL;
        util_sha256_hex(f->sql, f->len, sum);
        rc = db_text(s, &recorded, "SELECT checksum FROM kheish_schema_functions WHERE name = $1",
                     1, (const char *const[]){f->name});
        int same = recorded && !strcmp(recorded, sum);
        free(recorded);
        if (rc != STORE_OK || same)
            continue;
        rc = run_sql(s, f);
        if (rc == STORE_OK)
            rc = run(s,
                     "INSERT INTO kheish_schema_functions (name, checksum) VALUES ($1, $2) "
                     "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, "
                     "applied_at = now()",
                     2, (const char *const[]){f->name, sum});
        out->functions_applied += rc == STORE_OK;
    }
    return rc;
}

static enum store_rc
migrate_tx(struct store *s, void *arg)
{
    struct store_migration_report *out = arg;
    *out = (struct store_migration_report){0, store_migrations_count, 0, store_functions_count};
    enum store_rc rc = run(s, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, NULL);
    if (rc == STORE_OK)
        rc = run(s,
                 "CREATE TABLE IF NOT EXISTS kheish_schema_migrations ("
                 "version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL);
    if (rc == STORE_OK)
        rc = run(s,
                 "CREATE TABLE IF NOT EXISTS kheish_schema_functions ("
                 "name text PRIMARY KEY, checksum text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())",
                 0, NULL);
    if (rc == STORE_OK)
        rc = apply_migrations(s, out);
    if (rc == STORE_OK)
        rc = apply_functions(s, out);
    return rc;
}

enum store_rc
store_migrate(struct store *s, struct store_migration_report *report)
{
    enum store_rc rc = store_tx(s, migrate_tx, report);
    if (rc != STORE_OK)
        report->applied = report->functions_applied = 0;
    return rc;
}

enum store_rc
store_schema_level(struct store *s, int *version, char *name, size_t namesz)
{
    enum store_rc rc = STORE_OK;
    PGresult *r = db_exec(s, &rc,
                          "SELECT version, name FROM kheish_schema_migrations "
                          "ORDER BY version DESC LIMIT 1",
                          0, NULL);
    *version = 0;
    name[0] = '\0';
    if (r && PQntuples(r) == 1) {
        *version = atoi(PQgetvalue(r, 0, 0));
        snprintf(name, namesz, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return rc;
}
