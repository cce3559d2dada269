/*
 * kheish: the operator CLI. Takes the global flags out of argv, finds the
 * command in the table below and runs it; the verbs live in cmd_*.c (online)
 * and stack.c / migrate.c (offline).
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "backup.h"
#include "cli.h"
#include "client.h"
#include "cmd.h"
#include "names.h"

struct command {
    const char *group;
    const char *verb;  /* one or more words; NULL: the group alone is the command */
    const char *usage; /* what follows the command */
    cmd_fn fn;
    int own_help;  /* answers -h / --help itself */
    int takes_pos; /* a command without a verb that takes positionals */
};

/* Online verbs print their usage from this table; offline ones (stack.c,
 * migrate.c) answer -h / --help themselves. */
/* clang-format off */
#define ONLINE(group, verb, usage, fn) {group, verb, usage, fn, 0, 0}
#define OFFLINE(group, usage, fn)      {group, NULL, usage, fn, 1, 0}
#define OFFLINE_POS(group, usage, fn)  {group, NULL, usage, fn, 1, 1}
#define OFFLINE_VERB(group, verb, usage, fn) {group, verb, usage, fn, 1, 0}
/* " accept-edits": a permission mode as the CLI spells it, in a usage line. */
#define MODE_USAGE(id, json, cli) " " cli
/* clang-format on */

static const struct command commands[] = {
    ONLINE("status", NULL, "", cmd_status),
    ONLINE("doctor", "routes",
           "[--routes-file FILE [--default-route ID]] [--route ID] [--check-auth] "
           "[--check-references] [--canary [--canary-timeout-ms N]]",
           cmd_doctor_routes),
    ONLINE("doctor", NULL, "[--cors-origin ORIGIN]", cmd_doctor),
    ONLINE("runtime", "get", "", cmd_runtime_get),
    ONLINE("runtime", "set-permission-mode",
           "<mode> [--expected-revision N] (<mode>:" NAMES_PERMISSION_MODES(MODE_USAGE) ")",
           cmd_runtime_set_permission_mode),
    ONLINE("runtime", "set-debug-level", "off|on|redacted|full [--expected-revision N]",
           cmd_runtime_set_debug_level),
    ONLINE("runtime", "revisions", "", cmd_runtime_revisions),
    ONLINE("runtime", "tool-limits get", "", cmd_runtime_tool_limits_get),
    ONLINE("runtime", "tool-limits set", "(--json J | --file F | --stdin) [--expected-revision N]",
           cmd_runtime_tool_limits_set),
    ONLINE("runtime", "permissions rules get", "", cmd_permissions_rules_get),
    ONLINE("runtime", "permissions rules set",
           "(--json J | --file F | --stdin) [--expected-revision N]", cmd_permissions_rules_set),
    ONLINE("runtime", "permissions check",
           "<tool> [--input-json J] [--session-id S] [--tool-call-id T] [--mode <mode>] "
           "(<mode>:" NAMES_PERMISSION_MODES(MODE_USAGE) ")",
           cmd_permissions_check),
    ONLINE("runtime", "permissions matrix", "[--session-id S]", cmd_permissions_matrix),
    ONLINE("runtime", "auth subject", "<subject>", cmd_runtime_auth_subject),
    ONLINE("runtime", "auth revoke-subject", "<subject>", cmd_runtime_auth_revoke_subject),
    ONLINE("runtime", "auth lease", "<lease-id>", cmd_runtime_auth_lease),
    ONLINE("runtime", "auth revoke-lease", "<lease-id>", cmd_runtime_auth_revoke_lease),
    ONLINE("runtime", "auth revoke-slot", "<slot>", cmd_runtime_auth_revoke_slot),
    ONLINE("runtime", "rollback", "[--target-revision N] [--expected-revision N] [--skip-hooks]",
           cmd_runtime_rollback),
    ONLINE("sessions", "create",
           "[<id>] [--thread-id T] [--persona-id P] [--capability-scope-json J | "
           "--capability-scope-file F] [--credential-scope-json J | --credential-scope-file F]",
           cmd_sessions_create),
    ONLINE("sessions", "list", "[--page] [--limit N] [--cursor C]", cmd_sessions_list),
    ONLINE("sessions", "get", "<id>", cmd_sessions_get),
    ONLINE("sessions", "events", "<id>", cmd_sessions_events),
    ONLINE("sessions", "stream", "<id> [--cursor N] [--max-events N] [--timeout-ms N]",
           cmd_sessions_stream),
    ONLINE("sessions", "input",
           "<id> (<content> | --stdin) [--provider ROUTE] [--model M] [--max-output-tokens N] "
           "[--tool-choice auto|none|required|specific] [--idempotency-key K] [--wait "
           "[--poll-interval-ms N]]",
           cmd_sessions_input),
    ONLINE("sessions", "interrupt", "<id>", cmd_sessions_interrupt),
    ONLINE("sessions", "end", "<id> [--reason R]", cmd_sessions_end),
    ONLINE("sessions", "approve", "<id> <request-id>", cmd_sessions_approve),
    ONLINE("sessions", "deny", "<id> <request-id>", cmd_sessions_deny),
    ONLINE("runs", "list",
           "[--session-id S] [--status ST] [--page] [--limit N] [--cursor C] [--order asc|desc]",
           cmd_runs_list),
    ONLINE("runs", "get", "<id>", cmd_runs_get),
    ONLINE("runs", "events", "<id>", cmd_runs_events),
    ONLINE("runs", "external-actions", "<id>", cmd_runs_external_actions),
    ONLINE("runs", "stream", "<id> [--cursor N] [--max-events N] [--timeout-ms N]",
           cmd_runs_stream),
    ONLINE("runs", "cancel", "<id>", cmd_runs_cancel),
    ONLINE("runs", "wait", "<id> [--poll-interval-ms N] [--timeout-ms N]", cmd_runs_wait),
    ONLINE("approvals", "list", "[--session-id S]", cmd_approvals_list),
    ONLINE("approvals", "show", "<request-id> [--session-id S]", cmd_approvals_show),
    ONLINE("approvals", "allow",
           "<session-id> <request-id> [--updated-input-json J | --updated-input-file F] "
           "[--justification T] [--idempotency-key K] [--wait [--poll-interval-ms N]]",
           cmd_approvals_allow),
    ONLINE("approvals", "deny",
           "<session-id> <request-id> [--reason T] [--justification T] [--idempotency-key K] "
           "[--wait [--poll-interval-ms N]]",
           cmd_approvals_deny),
    ONLINE("approvals", "allow-all",
           "[--session-id S] [--justification T] [--idempotency-key K] [--wait "
           "[--poll-interval-ms N]]",
           cmd_approvals_allow_all),
    ONLINE("approvals", "deny-all",
           "[--session-id S] [--reason T] [--justification T] [--idempotency-key K] [--wait "
           "[--poll-interval-ms N]]",
           cmd_approvals_deny_all),
    ONLINE("events", "stream",
           "[--session-id ID] [--run-id ID] [--cursor N] [--max-events N] [--timeout-ms N]",
           cmd_events_stream),
    ONLINE("secrets", "generate", "", cmd_secrets_generate),
    ONLINE("secrets", "list", "[--offline] [--state-root DIR]", cmd_secrets_list),
    ONLINE("secrets", "get", "<ref> [--offline] [--state-root DIR]", cmd_secrets_get),
    ONLINE("secrets", "set",
           "<ref> --provider generic|anthropic|google|openai|openrouter|xai (--value V | "
           "--from-env VAR | --from-file PATH | --stdin) [--organization O] [--project P] "
           "[--offline] [--state-root DIR]",
           cmd_secrets_set),
    ONLINE("secrets", "delete", "<ref> [--offline] [--state-root DIR]", cmd_secrets_delete),
    ONLINE("audit", "verify", "(--run ID | --all) [--key-id HEX] [--state-root DIR]",
           cmd_audit_verify),
    OFFLINE_VERB("audit", "psql", "[--state-root DIR] [-- PSQL-ARGS...]", cmd_audit_psql),
    OFFLINE("migrate", "[--database-url URL] [--state-root DIR]", cmd_migrate),
    OFFLINE("up",
            "[--state-root DIR] [--port PORT] [--workers N] [--runners N] [--routes-file FILE]",
            cmd_up),
    OFFLINE("down", "[--state-root DIR]", cmd_down),
    OFFLINE_VERB("backup", "verify", "FILE", cmd_backup_verify),
    OFFLINE("backup", "[--state-root DIR] --out FILE [--include-tokens] [--include-keys] [--force]",
            cmd_backup),
    OFFLINE_POS("restore",
                "FILE --state-root NEW [--port PORT] [--master-key-file F] [--audit-key-file F]",
                cmd_restore),
    OFFLINE("serve",
            "[--bind HOST:PORT] [--state-root DIR] [--workspace-root DIR] [--routes-file FILE] "
            "[--default-route ID] [--http-auth-mode auto|none|bearer] [--http-admin-token-file P] "
            "[--http-readonly-token-file P] [--http-cors-allow-origin O] (more: serve --help)",
            cmd_serve),
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char *const aliases[][2] = {{"session", "sessions"},
                                         {"run", "runs"},
                                         {"secret", "secrets"},
                                         {"approval", "approvals"},
                                         {"start", "serve"}};
/* Other names of a verb: {group, alias, verb}. */
static const char *const verb_aliases[][3] = {{"sessions", "submit", "input"},
                                              {"events", "watch", "stream"},
                                              {"events", "follow", "stream"},
                                              {"approvals", "approve-all", "allow-all"}};

static void
print_command(FILE *f, const char *prefix, const struct command *cmd)
{
    fprintf(f, "%skheish %s%s%s%s%s\n", prefix, cmd->group, cmd->verb ? " " : "",
            cmd->verb ? cmd->verb : "", cmd->usage[0] ? " " : "", cmd->usage);
}

/* The global synopsis and every command of group (all when group is NULL). */
static void
print_usage(FILE *f, const char *group)
{
    fputs("usage: kheish [--base-url URL] [--token T | --token-file P] [--output pretty|json] "
          "<command> [args]\n\ncommands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (group == NULL || !strcmp(group, commands[i].group))
            print_command(f, "  ", &commands[i]);
    fputs("\naliases: session = sessions, run = runs, approval = approvals, start = serve, events "
          "watch | events follow = events stream, approvals approve-all = approvals allow-all; a "
          "first argument that is a flag means serve\n",
          f);
}

static const char *
canonical_group(const char *group)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(group, aliases[i][0]))
            return aliases[i][1];
    return group;
}

static const char *
canonical_verb(const char *group, const char *verb)
{
    for (size_t i = 0; i < sizeof verb_aliases / sizeof verb_aliases[0]; i++)
        if (!strcmp(group, verb_aliases[i][0]) && !strcmp(verb, verb_aliases[i][1]))
            return verb_aliases[i][2];
    return verb;
}

/* How many words of argv, from argv[2] on, spell verb (one or more words,
 * the first of which may be an alias); 0 when they spell another. */
static int
verb_words(const char *group, const char *verb, int argc, char **argv)
{
    int n = 0;
    for (const char *w = verb; *w; n++) {
        size_t len = strcspn(w, " ");
        if (2 + n >= argc)
            return 0;
        const char *arg = n == 0 ? canonical_verb(group, argv[2]) : argv[2 + n];
        if (strlen(arg) != len || strncmp(arg, w, len))
            return 0;
        w += len + (w[len] == ' ');
    }
    return n;
}

/* The command named by argv[1] and the words after it (*words of them for
 * the verb); *group is set when argv[1] names a group, even if the verb is
 * unknown. A command without a verb takes no positional (but restore's
 * FILE), so a word after it is an unknown verb, not that command. */
static const struct command *
find_command(int argc, char **argv, const char **group, int *words)
{
    *group = NULL;
    *words = 0;
    for (size_t i = 0; argc > 1 && i < NCOMMANDS; i++) {
        if (strcmp(canonical_group(argv[1]), commands[i].group))
            continue;
        *group = commands[i].group;
        if (commands[i].verb == NULL
                ? argc == 2 || argv[2][0] == '-' || commands[i].takes_pos
                : (*words = verb_words(*group, commands[i].verb, argc, argv)) > 0)
            return &commands[i];
    }
    return NULL;
}

/* An offline verb's --help: the verb is handed that flag alone. */
static int
own_help(const struct cli *c, cmd_fn fn)
{
    char help[] = "--help", *help_argv[] = {help, NULL};
    return fn(c, 1, help_argv);
}

/* Help, a usage error or the command's own exit code. --help prints the
 * usage of the command named, or the list of a group or of every command
 * when no more is named; it runs nothing, and an unknown command is a usage
 * error with it as without it. */
static int
dispatch(const struct args_global *g, int argc, char **argv)
{
    const char *group;
    int words;
    /* The supervisor `kheish up` starts: no operator's command, so not listed. */
    if (argc > 1 && !strcmp(argv[1], "supervise"))
        return g->help ? own_help(&g->cli, cmd_supervise)
                       : cmd_supervise(&g->cli, argc - 2, argv + 2);
    /* Upstream's rule: `kheish --bind ...` is `kheish serve --bind ...`. */
    if (argc > 1 && argv[1][0] == '-' && !g->help)
        return cmd_serve(&g->cli, argc - 1, argv + 1);
    const struct command *cmd = find_command(argc, argv, &group, &words);
    if (g->help && cmd && cmd->own_help)
        return own_help(&g->cli, cmd->fn);
    if (g->help && cmd) {
        print_command(stdout, "usage: ", cmd);
        return EXIT_OK;
    }
    if (g->help && argc <= (group ? 2 : 1)) {
        print_usage(stdout, group);
        return EXIT_OK;
    }
    if (cmd == NULL) {
        if (group && argc == 2)
            fprintf(stderr, "kheish: '%s' needs a command\n", argv[1]);
        else if (argc > 1)
            fprintf(stderr, "kheish: unknown command '%s%s%s'\n", argv[1],
                    group && argc > 2 ? " " : "", group && argc > 2 ? argv[2] : "");
        print_usage(stderr, group);
        return EXIT_BAD_REQUEST;
    }
    if (client_init() != 0) {
        fprintf(stderr, "kheish: cannot initialise libcurl\n");
        return EXIT_GENERIC;
    }
    int skip = 2 + words;
    int rc = cmd->fn(&g->cli, argc - skip, argv + skip);
    client_cleanup();
    if (rc == ARGS_USAGE) {
        print_command(stderr, "usage: ", cmd);
        rc = EXIT_BAD_REQUEST;
    }
    return rc;
}

int
main(int argc, char **argv)
{
    struct args_global g;
    int rc = args_global_parse(&argc, argv, &g);
    if (rc == EXIT_OK)
        rc = dispatch(&g, argc, argv);
    args_global_free(&g);
    return rc;
}
