/*
 * The catalog of a migrated database (issue 14, point 4), read from
 * pg_catalog, so that it also holds for what is added later:
 *
 * - every table, view and column, and every function, of schemas public and
 *   audit has a COMMENT (extension objects aside);
 * - PUBLIC executes no function of public; kheish_app executes every one of
 *   them that is not a trigger function (they call each other with the
 *   caller's rights: a function left out fails the app at its first call);
 * - kheish_auditor holds no privilege on a table, view, sequence or function
 *   of public, reads every view of audit (and audit holds only views), runs
 *   each of them with its own rights (a view that called a function of public
 *   would fail it), may create neither temporary tables nor objects, and is
 *   read-only by default.
 *
 * Each rule lists the objects that break it. The test runs in a database of
 * its own, dropped at the end.
 */
#include "check_pg.h"
#include "store.h"

#define DATABASE "kheish_catalog"

/* Every object that breaks a rule: one row (rule, object) each. */
static const char *const problems_sql =
    "WITH rel AS ("
    "  SELECT c.oid, c.relkind, n.nspname, c.relname FROM pg_class c"
    "  JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname IN ('public', 'audit') AND c.relkind IN ('r', 'v', 'm', 'p', 'f')"
    "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
    "                  AND d.objid = c.oid AND d.deptype = 'e')),"
    " fn AS ("
    "  SELECT p.oid, n.nspname, p.oid::regprocedure::text AS sig,"
    "         p.prorettype = 'trigger'::regtype AS is_trigger,"
    "         coalesce(p.proacl, acldefault('f', p.proowner)) AS acl FROM pg_proc p"
    "  JOIN pg_namespace n ON n.oid = p.pronamespace"
    "  WHERE n.nspname IN ('public', 'audit')"
    "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
    "                  AND d.objid = p.oid AND d.deptype = 'e'))"
    "SELECT 'no comment on relation', nspname || '.' || relname FROM rel"
    " WHERE obj_description(oid, 'pg_class') IS NULL "
    "UNION ALL SELECT 'no comment on column', r.nspname || '.' || r.relname || '.' || a.attname"
    " FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0"
    " AND NOT a.attisdropped WHERE col_description(r.oid, a.attnum) IS NULL "
    "UNION ALL SELECT 'no comment on function', sig FROM fn"
    " WHERE obj_description(oid, 'pg_proc') IS NULL "
    "UNION ALL SELECT 'PUBLIC may execute', sig FROM fn"
    " WHERE EXISTS (SELECT 1 FROM aclexplode(acl) x WHERE x.grantee = 0) "
    "UNION ALL SELECT 'kheish_app may not execute', sig FROM fn"
    " WHERE nspname = 'public' AND NOT is_trigger"
    " AND NOT has_function_privilege('kheish_app', oid, 'EXECUTE') "
    "UNION ALL SELECT 'kheish_auditor may execute', sig FROM fn"
    " WHERE has_function_privilege('kheish_auditor', oid, 'EXECUTE') "
    "UNION ALL SELECT 'kheish_auditor holds a privilege on', c.relname FROM pg_class c"
    " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'S')"
    " AND (has_table_privilege('kheish_auditor', c.oid,"
    "          'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')"
    "      OR (c.relkind <> 'S' AND has_any_column_privilege('kheish_auditor', c.oid,"
    "          'SELECT, INSERT, UPDATE, REFERENCES'))"
    "      OR (c.relkind = 'S' AND has_sequence_privilege('kheish_auditor', c.oid,"
    "          'USAGE, SELECT, UPDATE'))) "
    "UNION ALL SELECT 'not a view, in audit', relname FROM rel"
    " WHERE nspname = 'audit' AND relkind <> 'v' "
    "UNION ALL SELECT 'kheish_auditor may not read', relname FROM rel"
    " WHERE nspname = 'audit' AND relkind = 'v'"
    " AND (NOT has_table_privilege('kheish_auditor', oid, 'SELECT')"
    "      OR has_table_privilege('kheish_auditor', oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) "
    "UNION ALL SELECT 'kheish_auditor may create', what FROM (VALUES"
    " ('temporary tables', has_database_privilege('kheish_auditor', current_database(), 'TEMP')),"
    " ('in schema public', has_schema_privilege('kheish_auditor', 'public', 'CREATE')),"
    " ('in schema audit', has_schema_privilege('kheish_auditor', 'audit', 'CREATE')),"
    " ('schemas', has_database_privilege('kheish_auditor', current_database(), 'CREATE'))) v(what, "
    "yes)"
    " WHERE yes "
    "UNION ALL SELECT 'kheish_auditor is not read-only by default', 'pg_db_role_setting'"
    " WHERE NOT EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) c"
    "     WHERE s.setrole = 'kheish_auditor'::regrole AND s.setdatabase = 0"
    "     AND c = 'default_transaction_read_only=on') "
    "ORDER BY 1, 2";

/* Lists and counts what breaks a rule. */
static void
rules(PGconn *pg)
{
    PGresult *r = PQexec(pg, problems_sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "  %s", PQerrorMessage(pg));
    for (int i = 0; i < PQntuples(r); i++)
        fprintf(stderr, "  %s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    CHECK(PQntuples(r) == 0);
    PQclear(r);
}

/* Each view of audit runs as the auditor: one that called a function it may
 * not execute fails here even if no documented query reads it. */
static void
views_run_as_auditor(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT format('%I.%I', schemaname, viewname) FROM pg_views "
                             "WHERE schemaname = 'audit' ORDER BY 1");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 10);
    check_sql(pg, "SET ROLE kheish_auditor");
    for (int i = 0; i < PQntuples(r); i++) {
        char q[256];
        snprintf(q, sizeof q, "SELECT * FROM %s LIMIT 1", PQgetvalue(r, i, 0));
        check_sql(pg, q);
    }
    check_sql(pg, "RESET ROLE");
    PQclear(r);
}

int
main(void)
{
    struct store_migration_report mr;
    char url[1024];
    check_scratch_db(DATABASE, 0, url, sizeof url);
    struct store *db = store_open(url, NULL);
    CHECK(store_migrate(db, &mr) == STORE_OK);
    store_close(db);
    PGconn *pg = PQconnectdb(url);
    CHECK(PQstatus(pg) == CONNECTION_OK);
    rules(pg);
    views_run_as_auditor(pg);
    PQfinish(pg);
    check_scratch_db(DATABASE, 1, url, sizeof url);
    return check_report("store_catalog");
}
