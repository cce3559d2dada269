/*
 * cli: the operator CLI `kheish`. Online verbs talk HTTP to the control plane
 * through nginx (client.c); offline verbs (migrate, up, down) talk to
 * PostgreSQL and the state root directly (stack.c, migrate.c).
 */
#ifndef KHEISH_CLI_H
#define KHEISH_CLI_H

/* Exit codes of the contract (reference §7). */
enum cli_exit {
    EXIT_OK = 0,
    EXIT_GENERIC = 1,     /* generic failure; doctor found errors */
    EXIT_BAD_REQUEST = 2, /* HTTP 400 / 413, or bad command-line usage */
    EXIT_UNREACHABLE = 3, /* connect or request error */
    EXIT_AUTH = 4,        /* HTTP 401 / 403 */
    EXIT_NOT_FOUND = 5,   /* HTTP 404 */
    EXIT_CONFLICT = 6,    /* HTTP 409 */
    EXIT_UNAVAILABLE = 7, /* timeout, HTTP 429, HTTP 503 */
    EXIT_SCHEMA = 8,      /* response does not decode as the expected schema */
};

/* Global options, parsed from any position of argv, then env, then defaults. */
struct cli {
    const char *base_url; /* --base-url, KHEISH_DAEMON_URL, http://127.0.0.1:4000 */
    const char *token;    /* from --token/KHEISH_DAEMON_TOKEN or --token-file/..._FILE */
    int json;             /* --output json */
};

/* Offline verbs; argv holds the arguments after the verb. */
int cmd_migrate(const struct cli *c, int argc, char **argv);
int cmd_up(const struct cli *c, int argc, char **argv);
int cmd_serve(const struct cli *c, int argc, char **argv);
int cmd_down(const struct cli *c, int argc, char **argv);
int cmd_audit_psql(const struct cli *c, int argc, char **argv);   /* audit_psql.c */
int cmd_audit_verify(const struct cli *c, int argc, char **argv); /* audit_verify.c */
int cmd_supervise(const struct cli *c, int argc, char **argv);    /* hidden: started by up */

#endif
