/*
 * cmd: the online verbs. Each takes the words after its verb and returns an
 * exit code, or ARGS_USAGE when its arguments are wrong (the dispatcher then
 * prints the verb's usage line). The verbs are grouped one file per command
 * group (cmd_status.c, cmd_runtime.c, cmd_sessions.c, cmd_runs.c), the SSE
 * streams of every group in cmd_stream.c; cmd.c holds what they share.
 */
#ifndef KHEISH_CLI_CMD_H
#define KHEISH_CLI_CMD_H

#include <jansson.h>
#include <stdint.h>

#include "args.h"
#include "cli.h"
#include "client.h"
#include "output.h"

typedef int (*cmd_fn)(const struct cli *c, int argc, char **argv);

int cmd_status(const struct cli *c, int argc, char **argv);
int cmd_doctor(const struct cli *c, int argc, char **argv);
int cmd_doctor_routes(const struct cli *c, int argc, char **argv);

int cmd_runtime_get(const struct cli *c, int argc, char **argv);
int cmd_runtime_set_permission_mode(const struct cli *c, int argc, char **argv);
int cmd_runtime_set_debug_level(const struct cli *c, int argc, char **argv);
int cmd_runtime_revisions(const struct cli *c, int argc, char **argv);
int cmd_runtime_rollback(const struct cli *c, int argc, char **argv);
int cmd_runtime_tool_limits_get(const struct cli *c, int argc, char **argv);
int cmd_runtime_tool_limits_set(const struct cli *c, int argc, char **argv);
int cmd_permissions_rules_get(const struct cli *c, int argc, char **argv);
int cmd_permissions_rules_set(const struct cli *c, int argc, char **argv);
int cmd_permissions_check(const struct cli *c, int argc, char **argv);
int cmd_permissions_matrix(const struct cli *c, int argc, char **argv);
int cmd_runtime_auth_subject(const struct cli *c, int argc, char **argv);
int cmd_runtime_auth_revoke_subject(const struct cli *c, int argc, char **argv);
int cmd_runtime_auth_lease(const struct cli *c, int argc, char **argv);
int cmd_runtime_auth_revoke_lease(const struct cli *c, int argc, char **argv);
int cmd_runtime_auth_revoke_slot(const struct cli *c, int argc, char **argv);

int cmd_sessions_create(const struct cli *c, int argc, char **argv);
int cmd_sessions_list(const struct cli *c, int argc, char **argv);
int cmd_sessions_get(const struct cli *c, int argc, char **argv);
int cmd_sessions_events(const struct cli *c, int argc, char **argv);
int cmd_sessions_input(const struct cli *c, int argc, char **argv);
int cmd_sessions_interrupt(const struct cli *c, int argc, char **argv);
int cmd_sessions_end(const struct cli *c, int argc, char **argv);

int cmd_runs_list(const struct cli *c, int argc, char **argv);
int cmd_runs_get(const struct cli *c, int argc, char **argv);
int cmd_runs_events(const struct cli *c, int argc, char **argv);
int cmd_runs_external_actions(const struct cli *c, int argc, char **argv);
int cmd_runs_cancel(const struct cli *c, int argc, char **argv);
int cmd_runs_wait(const struct cli *c, int argc, char **argv);

int cmd_approvals_list(const struct cli *c, int argc, char **argv);
int cmd_approvals_show(const struct cli *c, int argc, char **argv);
int cmd_approvals_allow(const struct cli *c, int argc, char **argv);
int cmd_approvals_deny(const struct cli *c, int argc, char **argv);
int cmd_approvals_allow_all(const struct cli *c, int argc, char **argv);
int cmd_approvals_deny_all(const struct cli *c, int argc, char **argv);
int cmd_sessions_approve(const struct cli *c, int argc, char **argv);
int cmd_sessions_deny(const struct cli *c, int argc, char **argv);

/* `<session> <request>`: resolves one pending approval with behavior
 * ("allow" or "deny") and prints the run. with_flags: the flags of
 * `approvals allow|deny` are taken; without, none (`sessions approve|deny`). */
int cmd_approvals_resolve(const struct cli *c, int argc, char **argv, const char *behavior,
                          int with_flags);

int cmd_secrets_generate(const struct cli *c, int argc, char **argv);
int cmd_secrets_list(const struct cli *c, int argc, char **argv);
int cmd_secrets_get(const struct cli *c, int argc, char **argv);
int cmd_secrets_set(const struct cli *c, int argc, char **argv);
int cmd_secrets_delete(const struct cli *c, int argc, char **argv);

int cmd_events_stream(const struct cli *c, int argc, char **argv);
int cmd_sessions_stream(const struct cli *c, int argc, char **argv);
int cmd_runs_stream(const struct cli *c, int argc, char **argv);

#define WAIT_POLL_DEFAULT_MS    500
#define WAIT_POLL_MIN_MS        10
#define WAIT_POLL_MAX_MS        60000
#define WAIT_TIMEOUT_MAX_MS     (INT64_MAX / 1000) /* stays exact on the microsecond clock */
#define WAIT_PROGRESS_AFTER_MS  1000               /* a wait is silent on stderr this long */
#define WAIT_PROGRESS_REPEAT_MS 30000 /* then says an unchanged state again this often */
#define WAIT_RUNNERS_CHECK_MS   5000  /* a queued run's wait asks /v1/status for runners */

/* Where a wait ends: when the run is terminal, or also when it waits for an
 * operator again (an approval or a question), as after resolving one. */
enum cmd_wait_end { WAIT_TERMINAL, WAIT_SETTLED };

/* Polls GET /v1/runs/{id} every poll ms until the run is where end says,
 * and prints that RunView; timeout (ARGS_UNSET: none) ends it with
 * EXIT_UNAVAILABLE. Its progress goes to stderr, on change only: queue
 * position and whether any runner is live, the runner that claimed it, how
 * long it has run. */
int cmd_wait_run(const struct cli *c, const char *id, int64_t poll, int64_t timeout,
                 enum cmd_wait_end end);

/* cmd_wait_run without the printing: 0 with the last RunView in *run (caller
 * frees), else the exit code and *run NULL. */
int cmd_run_settle(const struct cli *c, const char *id, int64_t poll, int64_t timeout,
                   enum cmd_wait_end end, json_t **run);

/* Sends req and, on success, prints the answer through view. */
int cmd_show(const struct cli *c, const struct client_req *req, const struct output_view *view);

/* A verb without arguments: GET path, printed through view. */
int cmd_get(const struct cli *c, int argc, char **argv, const char *path,
            const struct output_view *view);

#define CMD_JSON_MAX_BYTES (1024 * 1024) /* a document given to a set verb */

/* A JSON document given as exactly one of --json J, --file F or --stdin
 * (json, file, from_stdin; the others NULL or 0). Returns 0 with *out set
 * (caller decrefs), or ARGS_USAGE / EXIT_BAD_REQUEST after saying why. */
int cmd_json_input(const char *json, const char *file, int from_stdin, json_t **out);

/* An object given inline (--NAME-json J) or as a file (--NAME-file F), at
 * most one of the two; every number in it must round-trip exactly
 * (json_exact.h). Returns 0 with *out set (NULL when neither is given;
 * caller decrefs), or ARGS_USAGE / EXIT_BAD_REQUEST after saying why. */
int cmd_json_object(const char *name, const char *json, const char *file, json_t **out);

/* `<verb> (--json J | --file F | --stdin) [--expected-revision N]`: POSTs
 * {key: the document, expected_revision?} to path, printed through view. */
int cmd_set_document(const struct cli *c, int argc, char **argv, const char *path, const char *key,
                     const struct output_view *view);

/* A verb of the form `<verb> <id>` without flags: method on path_fmt with
 * the id as its one "%s" segment, printed through view. */
int cmd_id_verb(const struct cli *c, int argc, char **argv, const char *method,
                const char *path_fmt, const struct output_view *view);

/* Sets body[key] to the string value when value is not NULL. Returns 0, or
 * ARGS_USAGE after saying that the value is not UTF-8. */
int cmd_body_str(json_t *body, const char *key, const char *value);

/* Sets body[key] to n unless n is ARGS_UNSET. */
void cmd_body_int(json_t *body, const char *key, int64_t n);

/* Adds the pagination query of a list: page=true, limit, cursor. */
void cmd_page_query(struct client_url *u, int page, int64_t limit, const char *cursor);

/* GET /v1/status into *doc (caller frees; NULL on failure): the request's
 * exit code, or EXIT_SCHEMA when the answer is not a status (no boolean
 * "ready"). */
int cmd_status_fetch(const struct cli *c, json_t **doc);

#endif
