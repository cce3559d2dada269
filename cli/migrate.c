/*
 * kheish migrate: applies the embedded migrations (store/migrate.c: one
 * transaction, advisory lock, checksums) as the database owner. `kheish up`
 * runs the same step through stack_migrate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stack.h"

static const char usage[] =
    "usage: kheish migrate [--database-url URL] [--state-root DIR]\n"
    "Connects with --database-url, else KHEISH_DATABASE_URL, else as the owner (postgres)\n"
    "of the embedded cluster that `kheish up` created in the state root (--state-root,\n"
    "KHEISH_STATE_ROOT, default " STACK_DEFAULT_ROOT ").\n";

/* The owner's connection string: the superuser of the embedded cluster, or
 * the external database URL, which must then be the owner's. */
void
stack_owner_url(const struct stack *st, char *out, size_t outsz)
{
    if (st->embedded_pg)
        stack_pg_url(st, STACK_PG_USER, out, outsz);
    else
        snprintf(out, outsz, "%s", st->database_url);
}

/* Applies pending migrations. Returns the store's verdict; on failure err
 * holds a one-line reason. */
enum store_rc
stack_migrate(const char *conninfo, struct store_migration_report *report, char *err, size_t errsz)
{
    struct store *s = store_open(conninfo, NULL);
    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return STORE_ERROR;
    }
    enum store_rc rc = store_migrate(s, report);
    if (rc != STORE_OK) {
        snprintf(err, errsz, "%s: %s", store_strerror(rc), store_last_error(s));
        err[strcspn(err, "\n")] = '\0'; /* libpq messages end with a newline */
    }
    store_close(s);
    return rc;
}

/* Connection string from the flag, the environment or the state root's
 * stack.env; *embedded tells which. Returns 0 or -1 after printing why. */
static int
migrate_conninfo(const struct stack_opts *o, struct stack *st, int *embedded)
{
    const char *env = getenv("KHEISH_DATABASE_URL");
    const char *url = o->database_url ? o->database_url : env && *env ? env : NULL;
    *embedded = 0;
    if (url) {
        if (strlen(url) >= sizeof st->database_url) {
            fprintf(stderr, "kheish migrate: the database URL is longer than %d bytes\n",
                    STACK_URL_MAX - 1);
            return -1;
        }
        snprintf(st->database_url, sizeof st->database_url, "%s", url);
        return 0;
    }
    int rc = stack_root_resolve(o->state_root, 0, st);
    if (rc == 0)
        rc = stack_env_load(st);
    if (rc == 0 && !st->loaded)
        rc = 1;
    if (rc > 0)
        fprintf(stderr,
                "kheish migrate: no database: %s has no stack.env; run `kheish up` first, or "
                "pass --database-url / set KHEISH_DATABASE_URL\n",
                st->root);
    if (rc != 0)
        return -1;
    *embedded = st->embedded_pg;
    char owner[STACK_URL_MAX];
    stack_owner_url(st, owner, sizeof owner);
    memcpy(st->database_url, owner, sizeof owner);
    return 0;
}

int
cmd_migrate(const struct cli *c, int argc, char **argv)
{
    static const char *const allowed[] = {"--database-url", "--state-root", NULL};
    struct stack_opts o = {0};
    struct stack st = {0};
    struct store_migration_report r = {0};
    int embedded;
    char err[1024];
    int rc = stack_opts_parse(argc, argv, allowed, usage, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_BAD_REQUEST;
    if (migrate_conninfo(&o, &st, &embedded) != 0)
        return EXIT_GENERIC;
    enum store_rc src = stack_migrate(st.database_url, &r, err, sizeof err);
    if (src != STORE_OK) {
        fprintf(stderr, "kheish migrate: %s\n", err);
        if (src == STORE_UNAVAILABLE && embedded)
            fprintf(stderr,
                    "kheish migrate: is the embedded cluster running? `kheish up "
                    "--state-root %s` starts it\n",
                    st.root);
        return EXIT_GENERIC;
    }
    if (c->json)
        printf("{\"applied\":%d,\"total\":%d,\"functions_applied\":%d,\"functions_total\":%d}\n",
               r.applied, r.total, r.functions_applied, r.functions_total);
    else
        printf("applied %d of %d migrations and %d of %d functions files\n", r.applied, r.total,
               r.functions_applied, r.functions_total);
    return EXIT_OK;
}
