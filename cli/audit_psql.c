/*
 * kheish audit psql: psql as the auditor role (kheish_auditor) on the
 * embedded cluster of a state root, so that an auditor needs neither
 * stack.env nor the socket's path (docs/auditing.md). It replaces itself
 * with psql; the words after "--" are psql's own (-c, -f, -v, -A ...). A
 * stack on an external database has no such default: its auditors connect
 * as roles of the deployment, with its credentials (docs/auditing.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stack.h"

#define AUDIT_ROLE     "kheish_auditor"
#define AUDIT_APP      "kheish-audit" /* application_name: pg_stat_activity says who */
#define AUDIT_ARGS_MAX 64             /* psql's words after "--" */

static const char usage[] =
    "usage: kheish audit psql [--state-root DIR] [-- PSQL-ARGS...]\n"
    "Runs psql as the read-only role " AUDIT_ROLE " on the embedded cluster that `kheish up`\n"
    "created in the state root (--state-root, KHEISH_STATE_ROOT, default " STACK_DEFAULT_ROOT ").\n"
    "The views are in schema audit (\\dv audit.*); docs/auditing.md has the queries.\n"
    "Example: kheish audit psql -- -v since='2026-12-01 00:00+00' -f leaked-token.sql\n";

/* The embedded cluster's conninfo for the auditor, from the state root's
 * stack.env. Returns 0, or -1 after printing why. */
static int
audit_conninfo(const char *root_arg, char *out, size_t outsz)
{
    struct stack st = {0};
    int rc = stack_root_resolve(root_arg, 0, &st);
    if (rc == 0)
        rc = stack_env_load(&st);
    if (rc == 0 && !st.loaded)
        rc = 1;
    if (rc > 0)
        fprintf(stderr, "kheish audit psql: %s has no stack.env; run `kheish up` first\n", st.root);
    if (rc == 0 && !st.embedded_pg) {
        fprintf(stderr, "kheish audit psql: this stack's database is external; connect with psql "
                        "as your auditor role (docs/auditing.md, \"Production\")\n");
        rc = -1;
    }
    if (rc != 0)
        return -1;
    char url[STACK_URL_MAX];
    stack_pg_url(&st, AUDIT_ROLE, url, sizeof url);
    return snprintf(out, outsz, "%s application_name=%s", url, AUDIT_APP) < (int)outsz ? 0 : -1;
}

int
cmd_audit_psql(const struct cli *c, int argc, char **argv)
{
    (void)c;
    static const char *const allowed[] = {"--state-root", NULL};
    int sep = 0;
    while (sep < argc && strcmp(argv[sep], "--"))
        sep++;
    struct stack_opts o = {0};
    int rc = stack_opts_parse(sep, argv, allowed, usage, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_BAD_REQUEST;
    int extra = sep < argc ? argc - sep - 1 : 0;
    if (extra > AUDIT_ARGS_MAX) {
        fprintf(stderr, "kheish audit psql: more than %d psql arguments\n", AUDIT_ARGS_MAX);
        return EXIT_BAD_REQUEST;
    }
    char conninfo[STACK_URL_MAX + 64];
    if (audit_conninfo(o.state_root, conninfo, sizeof conninfo) != 0)
        return EXIT_GENERIC;
    char *args[AUDIT_ARGS_MAX + 4] = {"psql", "--dbname", conninfo};
    for (int i = 0; i < extra; i++)
        args[3 + i] = argv[sep + 1 + i];
    execvp("psql", args);
    fprintf(stderr, "kheish audit psql: cannot run psql: %s (install postgresql-client)\n",
            strerror(errno));
    return EXIT_GENERIC;
}
