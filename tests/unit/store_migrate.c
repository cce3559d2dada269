/*
 * kheish migrate and the layout of sql/ (issue 12, point 6): migrations hold
 * no function, trigger or view, and each function has exactly one
 * definition, in a functions file; a fresh database gets everything; a
 * functions file is applied again when its text changes, and only then; a
 * record of a migration from before the split is accepted and rewritten; a
 * migration changed after it was applied stops everything. The test runs in
 * a database of its own, dropped at the end.
 */
#include <ctype.h>
#include <sodium.h>

#include "check_pg.h"
#include "migrations.h"
#include "store.h"

#define DATABASE "kheish_migrate"
#define MAX_DEFS 256

/* Counts the definitions of sql (a NUL-terminated file) that start with one
 * of the statements named, adding each function's name to names. */
static void
definitions(const struct store_sql *f, char names[][64], int *n, int *creates)
{
    static const char *const kinds[] = {"CREATE FUNCTION ",  "CREATE OR REPLACE FUNCTION ",
                                        "CREATE TRIGGER ",   "CREATE OR REPLACE TRIGGER ",
                                        "CREATE VIEW ",      "CREATE OR REPLACE VIEW ",
                                        "CREATE PROCEDURE ", "CREATE OR REPLACE PROCEDURE ",
                                        "ALTER FUNCTION ",   NULL};
    for (const char *p = f->sql; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        for (int k = 0; kinds[k]; k++) {
            size_t len = strlen(kinds[k]);
            if (strncmp(p, kinds[k], len))
                continue;
            (*creates)++;
            if (!strstr(kinds[k], "FUNCTION") || *n >= MAX_DEFS)
                continue;
            const char *name = p + len, *end = name;
            while (isalnum((unsigned char)*end) || *end == '_')
                end++;
            snprintf(names[(*n)++], 64, "%.*s", (int)(end - name), name);
        }
}

static void
layout(void)
{
    static char names[MAX_DEFS][64];
    int n = 0, creates = 0;
    for (int i = 0; i < store_migrations_count; i++)
        definitions(&store_migrations[i], names, &n, &creates);
    if (creates)
        fprintf(stderr, "  %d functions, triggers or views in sql/migrations/\n", creates);
    CHECK(creates == 0);
    n = 0;
    for (int i = 0; i < store_functions_count; i++) {
        int in_file = 0;
        definitions(&store_functions[i], names, &n, &in_file);
        CHECK(in_file > 0);
    }
    CHECK(n > 20);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (!strcmp(names[i], names[j])) {
                fprintf(stderr, "  function %s is defined twice in sql/functions/\n", names[i]);
                CHECK(0);
            }
}

int
main(void)
{
    struct store_migration_report r;
    char url[1024], q[512];
    if (sodium_init() < 0)
        return 1;
    layout();
    check_scratch_db(DATABASE, 0, url, sizeof url);
    struct store *db = store_open(url, NULL);
    PGconn *pg = PQconnectdb(url);

    /* A fresh database gets every migration and every functions file. */
    CHECK(store_migrate(db, &r) == STORE_OK);
    CHECK(r.applied == r.total && r.total == store_migrations_count && r.total >= 11);
    CHECK(r.functions_applied == r.functions_total && r.functions_total == store_functions_count);
    /* ... once. */
    CHECK(store_migrate(db, &r) == STORE_OK);
    CHECK(r.applied == 0 && r.functions_applied == 0);

    /* A functions file is applied again when its recorded text is not the
     * binary's: the function a stray edit replaced is back. */
    check_sql(pg, "CREATE OR REPLACE FUNCTION kheish_now_ms() RETURNS bigint LANGUAGE sql "
                  "AS $$ SELECT 42::bigint $$");
    check_sql(pg,
              "UPDATE kheish_schema_functions SET checksum = 'older' WHERE name = 'events.sql'");
    CHECK(store_migrate(db, &r) == STORE_OK);
    CHECK(r.applied == 0 && r.functions_applied == 1);
    CHECK(strcmp(check_sql(pg, "SELECT kheish_now_ms()"), "42") != 0);

    /* A view whose columns change under a statement prepared on it (an
     * upgrade's functions file): the next read prepares it again. */
    char *view = NULL;
    CHECK(store_run_get(db, "run-none", &view) == STORE_RUN_NOT_FOUND);
    check_sql(pg, "ALTER VIEW run_views RENAME TO run_views_json");
    check_sql(pg, "CREATE VIEW run_views AS SELECT run_id, session_id, status, submitted_at_ms, "
                  "view::jsonb AS view FROM run_views_json");
    CHECK(store_run_get(db, "run-none", &view) == STORE_RUN_NOT_FOUND);
    check_sql(pg, "DROP VIEW run_views");
    check_sql(pg, "ALTER VIEW run_views_json RENAME TO run_views");
    CHECK(store_run_get(db, "run-none", &view) == STORE_RUN_NOT_FOUND);

    /* A migration recorded with its checksum from before the split is
     * accepted, and recorded anew. */
    char now[65];
    snprintf(now, sizeof now, "%s",
             check_sql(pg, "SELECT checksum FROM kheish_schema_migrations WHERE version = 7"));
    check_sql(pg, "UPDATE kheish_schema_migrations SET checksum = "
                  "'caa8fa4eeb2d7710581c72f71f68e94c7493a8e48c1f120b37713e13163a3b2a' "
                  "WHERE version = 7");
    CHECK(store_migrate(db, &r) == STORE_OK);
    CHECK_STR(check_sql(pg, "SELECT checksum FROM kheish_schema_migrations WHERE version = 7"),
              now);

    /* Any other checksum stops everything, and so does a migration this
     * binary does not know. */
    snprintf(q, sizeof q, "UPDATE kheish_schema_migrations SET checksum = '%s' WHERE version = 3",
             check_sql(pg, "SELECT checksum FROM kheish_schema_migrations WHERE version = 3"));
    check_sql(pg, "UPDATE kheish_schema_migrations SET checksum = 'edited' WHERE version = 3");
    CHECK(store_migrate(db, &r) == STORE_MIGRATION_CHANGED);
    CHECK(strstr(store_last_error(db), "migration 3 (003_relays.sql) was changed") != NULL);
    check_sql(pg, q);
    check_sql(pg, "INSERT INTO kheish_schema_migrations (version, name, checksum) "
                  "VALUES (999, '999_future.sql', 'x')");
    CHECK(store_migrate(db, &r) == STORE_MIGRATION_CHANGED);
    CHECK(strstr(store_last_error(db), "migration 999 which this binary does not know") != NULL);

    PQfinish(pg);
    store_close(db);
    check_scratch_db(DATABASE, 1, url, sizeof url);
    return check_report("store_migrate");
}
