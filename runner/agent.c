/*
 * agent: a run's model calls tools (issue 15). Each provider attempt that
 * ends with tool calls is a turn: every call is decided by the permission
 * engine (common/permissions.c) under the runtime's mode and rules, the
 * allowed ones run once their request records are in the ledger (file
 * tools at once, bash as a process the loop polls), the others get an
 * error result, and once every call has its result the next attempt sends
 * them back to the model. The turn and its calls, then their results, go
 * to the database in the job's next report (kheish_run_steps).
 *
 * A call the engine answers with ask waits for an operator: once the
 * turn's other calls have their results, the job ends waiting_for_approval
 * (the database opens one approval per call asked) and the run holds no
 * runner. Resolved, it is claimed again, by this runner or another:
 * agent_resume rebuilds the conversation from its recorded turns and makes
 * the approved calls (their ledger grant is the approval) or refuses the
 * denied and expired ones, and the loop goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "tools.h"
#include "util.h"

#define AGENT_MAX_TURNS_DEFAULT 500 /* KHEISH_AGENT_MAX_TURNS, 0: no limit (contract §7) */

/* Appends {name, description, input_schema} (schema: JSON text or an
 * object) to the tools offered. */
static void
offer(json_t *tools, const char *name, const char *description, json_t *schema)
{
    json_array_append_new(tools, json_pack("{s:s, s:s, s:o}", "name", name, "description",
                                           description, "input_schema", schema));
}

int
agent_setup(struct runner *r)
{
    char err[256];
    struct shell_options o;
    const char *turns = getenv("KHEISH_AGENT_MAX_TURNS");
    r->max_turns = AGENT_MAX_TURNS_DEFAULT;
    if (turns && util_parse_i64(turns, 0, INT_MAX, &r->max_turns) != 0) {
        fprintf(stderr, "kheish-runner: KHEISH_AGENT_MAX_TURNS must be an integer >= 0\n");
        return 2;
    }
    r->workspace_root = r->cfg->workspace_root;
    r->perm_mode = PERM_MODE_DEFAULT;
    r->settings_revision = -1;
    r->max_calls_per_turn = INT64_MAX;
    r->max_timeout_ms = INT64_MAX;
    if (util_env_i64("KHEISH_APPROVAL_TTL_MS", 0, INT64_MAX / 2, 0, &r->approval_ttl_ms) != 0) {
        fprintf(stderr, "kheish-runner: KHEISH_APPROVAL_TTL_MS must be an integer >= 0 (ms)\n");
        return 2;
    }
    r->tools = json_array();
    for (size_t i = 0; i < tool_files_count(); i++) {
        const struct tool_spec *t = tool_files_spec(i);
        offer(r->tools, t->name, t->description, json_loads(t->schema_json, 0, NULL));
    }
    if (shell_options_from_env(&o, &r->shell_limits, err, sizeof err) != 0) {
        fprintf(stderr, "kheish-runner: %s\n", err);
        return 2;
    }
    r->has_shell = shell_host_init(&r->shell, &o, r->shell_why, sizeof r->shell_why) == 0;
    if (r->has_shell)
        offer(r->tools, "bash", shell_tool_description(), shell_tool_schema());
    else
        log_msg("warn", "no_bash_tool", "the bash tool is not offered: %s", r->shell_why);
    return 0;
}

void
agent_teardown(struct runner *r)
{
    json_decref(r->tools);
    perm_rules_free(&r->perm_rules);
    if (r->has_shell)
        shell_host_free(&r->shell);
}

void
agent_settings(struct runner *r, const json_t *revision)
{
    json_int_t rev = json_integer_value(json_object_get(revision, "revision"));
    const json_t *st = json_object_get(revision, "settings");
    const json_t *limits = json_object_get(st, "tool_runtime_limits");
    struct perm_rules rules;
    char err[512];
    if (rev == r->settings_revision)
        return;
    enum perm_mode mode =
        perm_mode_parse(json_string_value(json_object_get(st, "permission_mode")));
    json_t *none = json_object_get(st, "permission_rules") ? NULL : json_array();
    int bad = perm_rules_parse(none ? none : json_object_get(st, "permission_rules"),
                               "permission_rules", 0, &rules, err, sizeof err);
    json_decref(none);
    if (bad) {
        log_msg("error", "permission_rules_refused",
                "runtime revision %" JSON_INTEGER_FORMAT ": %s; the rules before stay", rev, err);
        return;
    }
    perm_rules_free(&r->perm_rules);
    r->perm_rules = rules;
    r->perm_mode = mode == PERM_MODE_UNSET ? PERM_MODE_DEFAULT : mode;
    json_int_t calls = json_integer_value(json_object_get(limits, "max_calls_per_turn"));
    json_int_t timeout = json_integer_value(json_object_get(limits, "max_timeout_ms"));
    r->max_calls_per_turn = calls > 0 ? calls : INT64_MAX;
    r->max_timeout_ms = timeout > 0 ? timeout : INT64_MAX;
    r->settings_revision = rev;
}

/* The decisions and limits follow the runtime's settings of now (an
 * operator's set-permission-mode dont-ask during an incident included). */
static void
settings_now(struct runner *r)
{
    json_t *settings = NULL;
    if (store_runtime_settings(r->db, &settings) == STORE_OK)
        agent_settings(r, settings);
    json_decref(settings);
}

static struct tool_run *
call_of(struct job *j, const char *id)
{
    for (size_t i = 0; i < j->ncalls; i++)
        if (!strcmp(j->calls[i].id, id))
            return &j->calls[i];
    return NULL;
}

/* The steps of the job's next report, made on first use. */
static json_t *
steps(struct job *j, const char *list)
{
    if (j->steps == NULL)
        j->steps = json_pack("{s:[], s:[]}", "turns", "results");
    return json_object_get(j->steps, list);
}

/* sha256:<hex> of v as compact JSON: what the ledger records of a tool's
 * input and result. */
static void
digest(const json_t *v, char out[72])
{
    char hex[65], *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    util_sha256_hex(text ? text : "", text ? strlen(text) : 0, hex);
    free(text);
    snprintf(out, 72, "sha256:%s", hex);
}

/* The assistant's message of a turn: its text and calls ({tool_call_id,
 * name, input} objects; input NULL when malformed). */
static json_t *
assistant_message(const char *text, size_t len, const json_t *calls)
{
    json_t *said = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const json_t *in = json_object_get(c, "input");
        json_array_append_new(
            said, json_pack("{s:O, s:O, s:o}", "id", json_object_get(c, "tool_call_id"), "name",
                            json_object_get(c, "name"), "input",
                            json_is_object(in) ? json_incref((json_t *)in) : json_object()));
    }
    return json_pack("{s:s, s:s%, s:o}", "role", "assistant", "text", text, len, "tool_calls",
                     said);
}

static json_t *
tool_message(const char *id, const json_t *result, int is_error)
{
    char *content = json_dumps(result, JSON_COMPACT);
    json_t *m = json_pack("{s:s, s:s, s:s, s:b}", "role", "tool", "tool_call_id", id, "content",
                          content ? content : "{}", "is_error", is_error);
    free(content);
    return m;
}

/* Every call has its result: they go back to the model, in order, and the
 * next attempt starts. */
static void
turn_done(struct runner *r, struct job *j)
{
    for (size_t i = 0; i < j->ncalls; i++)
        json_array_append_new(
            j->messages, tool_message(j->calls[i].id, j->calls[i].result, j->calls[i].is_error));
    job_next_turn(r, j);
}

/* Every call of the turn is decided and every one not asked about has its
 * result: the next attempt, or the wait for the operator's approvals. */
static void
turn_settled(struct runner *r, struct job *j)
{
    if (j->asked)
        job_end(r, j, "waiting_for_approval", NULL);
    else
        turn_done(r, j);
}

/* Call t's result (stolen): recorded with its response record when the
 * call ran (ran: outcome ok or error), sent back once every call has one. */
static void
answer(struct runner *r, struct job *j, struct tool_run *t, json_t *result, int is_error, int ran)
{
    char response_digest[72];
    t->result = result;
    t->is_error = is_error;
    digest(result, response_digest);
    if (ran && audit_queue_tool(r, j, AUDIT_RESPONSE, t, is_error ? "error" : "ok",
                                response_digest) != 0) {
        job_end(r, j, "failed", "out of memory for a tool result's ledger record");
        return;
    }
    json_array_append_new(steps(j, "results"), json_pack("{s:s, s:O, s:b}", "tool_call_id", t->id,
                                                         "result", result, "is_error", is_error));
    if (--j->calls_left == 0 && j->status == NULL && j->stop == NULL)
        turn_settled(r, j);
}

static void
refuse(struct runner *r, struct job *j, struct tool_run *t, const char *fmt, const char *detail)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, detail);
    answer(r, j, t, json_pack("{s:s}", "error", msg), 1, 0);
}

/* The session's workspace, <workspace_root>/<session_id>, made on first
 * use (the bash tool's user owns it); -1 with why. */
static int
workspace(struct runner *r, struct job *j, char *path, size_t size, char *why, size_t whysz)
{
    if (r->workspace_root == NULL) {
        snprintf(why, whysz, "no workspace: the runner has no --workspace-root or --state-root");
        return -1;
    }
    snprintf(path, size, "%s/%s", r->workspace_root, j->w.session_id);
    if (j->ws >= 0)
        return 0;
    if (mkdir(r->workspace_root, 0711) != 0 && errno != EEXIST) {
        snprintf(why, whysz, "the workspace root %s: %s", r->workspace_root, strerror(errno));
        return -1;
    }
    if (r->has_shell ? shell_workspace_prepare(&r->shell, path, why, whysz) != 0
                     : mkdir(path, 0700) != 0 && errno != EEXIST) {
        if (!r->has_shell)
            snprintf(why, whysz, "the workspace %s: %s", path, strerror(errno));
        return -1;
    }
    if ((j->ws = tool_files_open_workspace(path)) < 0) {
        snprintf(why, whysz, "the workspace %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void
agent_tool_recorded(struct runner *r, struct job *j, const char *tool_call_id)
{
    struct tool_run *t = call_of(j, tool_call_id);
    char path[PATH_MAX], why[PATH_MAX + 256];
    json_t *out = NULL;
    if (t == NULL || t->result || t->shell)
        return;
    if (workspace(r, j, path, sizeof path, why, sizeof why) != 0) {
        answer(r, j, t, json_pack("{s:s}", "error", why), 1, 1);
        return;
    }
    if (strcmp(t->name, "bash") != 0) {
        int rc = tool_files_run(j->ws, t->name, t->input, &out);
        answer(r, j, t, out ? out : json_pack("{s:s}", "error", "out of memory"), rc != 0, 1);
        return;
    }
    struct shell_input in;
    struct shell_limits l = r->shell_limits;
    if (l.timeout_ms > r->max_timeout_ms)
        l.timeout_ms = r->max_timeout_ms;
    if (shell_parse_input(t->input, &in, why, sizeof why) == 0)
        t->shell = shell_start(&r->shell, &l, path, &in, runner_now_ms(), why, sizeof why);
    if (t->shell == NULL)
        answer(r, j, t, json_pack("{s:s}", "error", why), 1, 1);
}

/* 1 when call t (the turn's i-th) can be made: a tool offered, its input
 * valid, within the turn's limit; else 0 and it is refused. */
static int
callable(struct runner *r, struct job *j, struct tool_run *t, size_t i, const char *input_error)
{
    int offered = !strcmp(t->name, "bash") ? r->has_shell : tool_files_find(t->name) != NULL;
    if (!offered)
        refuse(r, j, t, "no tool named %s is offered", t->name);
    else if (t->input == NULL)
        refuse(r, j, t, "the arguments are not valid: %s", input_error ? input_error : "?");
    else if ((int64_t)i >= r->max_calls_per_turn)
        refuse(r, j, t, "%s", "more tool calls in one turn than the runtime's max_calls_per_turn");
    else
        return 1;
    return 0;
}

/* Decides call i of the turn and says what became of it in the turn's
 * steps (calls): refused at once, allowed, or asked about (counted in
 * asked, it has no result until the run resumes). */
static void
decide(struct runner *r, struct job *j, size_t i, json_t *reported)
{
    struct tool_run *t = &j->calls[i];
    const json_t *c = json_array_get(j->turn_calls, i);
    const char *input_error = json_string_value(json_object_get(c, "error"));
    struct perm_decision d;
    struct perm_request req = {
        .tool_name = t->name,
        .tool_call_id = t->id,
        .runtime_mode = r->perm_mode,
        .session_mode = PERM_MODE_UNSET,
        .mode_override = PERM_MODE_UNSET,
        .rules = &r->perm_rules,
        .session_id = j->w.session_id,
    };
    perm_decide(&req, &d);
    t->permission = perm_audit_json(&d, NULL);
    json_t *permission = json_object_get(t->permission, "decision");
    snprintf(t->target, sizeof t->target, "tool:%s", t->name);
    snprintf(t->grant, sizeof t->grant, "permission:%s:%s",
             json_string_value(json_object_get(t->permission, "effective_mode")),
             json_string_value(json_object_get(t->permission, "matched_rule_pattern")));
    json_array_append_new(
        reported, json_pack("{s:s, s:s, s:O*, s:s*, s:O, s:s*, s:O}", "tool_call_id", t->id, "name",
                            t->name, "input", t->input, "input_error", input_error, "decision",
                            permission, "reason", d.reason, "permission", t->permission));
    if (d.decision == PERM_DENY) {
        refuse(r, j, t, "permission denied: %s", d.reason ? d.reason : "by a rule");
    } else if (!callable(r, j, t, i, input_error)) {
        return;
    } else if (d.decision == PERM_ALLOW) {
        t->allowed = 1;
    } else {
        j->asked++; /* no result until the run resumes */
        if (--j->calls_left == 0)
            turn_settled(r, j);
    }
}

int
agent_turn(struct runner *r, struct job *j)
{
    const json_t *calls = j->pc.tool_calls;
    size_t n = json_array_size(calls);
    if (n)
        settings_now(r);
    const char *stop = provider_stop_name(j->pc.stop);
    const char *text = j->text ? j->text + j->turn_start : "";
    size_t len = j->len - j->turn_start;
    json_t *turn = json_pack("{s:i, s:s%, s:s, s:[]}", "turn", j->turn + 1, "text", text, len,
                             "stop", stop, "calls");
    json_array_append_new(steps(j, "turns"), turn);
    j->turn++;
    if (n == 0)
        return 0;
    if (r->max_turns && j->turn >= r->max_turns) {
        job_end(r, j, "failed", "the run reached its turn limit (KHEISH_AGENT_MAX_TURNS)");
        return 1;
    }
    agent_free(j);
    j->turn_calls = json_incref((json_t *)calls);
    j->calls = calloc(n, sizeof *j->calls);
    if (j->calls == NULL) {
        job_end(r, j, "failed", "out of memory for the turn's tool calls");
        return 1;
    }
    json_t *said = json_array();
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(calls, i);
        j->calls[i].id = json_string_value(json_object_get(c, "id"));
        j->calls[i].name = json_string_value(json_object_get(c, "name"));
        j->calls[i].input = json_object_get(c, "input");
        json_array_append_new(said,
                              json_pack("{s:s, s:s, s:O*}", "tool_call_id", j->calls[i].id, "name",
                                        j->calls[i].name, "input", j->calls[i].input));
    }
    json_array_append_new(j->messages, assistant_message(text, len, said));
    json_decref(said);
    j->ncalls = j->calls_left = n;
    j->asked = 0;
    for (size_t i = 0; i < n && j->status == NULL; i++) {
        decide(r, j, i, json_object_get(turn, "calls"));
        if (!j->calls[i].allowed)
            continue;
        digest(j->calls[i].input, j->calls[i].input_digest);
        if (audit_queue_tool(r, j, AUDIT_REQUEST, &j->calls[i], NULL, NULL) != 0)
            job_end(r, j, "failed", "out of memory for a tool call's ledger record");
    }
    return 1;
}

/* Call t of a resumed turn, which has no result: made as its approval
 * allowed it (with the operator's input, when changed), or refused. */
static void
resume_call(struct runner *r, struct job *j, struct tool_run *t, size_t i, const json_t *c)
{
    const json_t *a = json_object_get(c, "approval");
    const char *status = json_string_value(json_object_get(a, "status"));
    const char *reason = json_string_value(json_object_get(a, "reason"));
    const json_t *updated = json_object_get(a, "updated_input");
    if (json_is_object(updated))
        t->input = updated;
    if (status == NULL || strcmp(status, "allowed")) {
        refuse(r, j, t,
               status && !strcmp(status, "expired")  ? "no operator answered in time: %s"
               : status && !strcmp(status, "denied") ? "the operator denied this call: %s"
                                                     : "this call was not approved: %s",
               reason ? reason : "no reason given");
        return;
    }
    if (!callable(r, j, t, i, NULL))
        return;
    t->allowed = 1;
    snprintf(t->target, sizeof t->target, "tool:%s", t->name);
    snprintf(t->grant, sizeof t->grant, "approval:%s",
             json_string_value(json_object_get(a, "request_id")));
    digest(t->input, t->input_digest);
    if (audit_queue_tool(r, j, AUDIT_REQUEST, t, NULL, NULL) != 0)
        job_end(r, j, "failed", "out of memory for a tool call's ledger record");
}

int
agent_resume(struct runner *r, struct job *j)
{
    const json_t *turns = j->w.resume, *turn, *c;
    size_t nt = json_array_size(turns), k, i;
    if (nt == 0)
        return 0;
    json_array_foreach(turns, k, turn)
    {
        const char *text = json_string_value(json_object_get(turn, "text"));
        const json_t *calls = json_object_get(turn, "calls");
        json_array_append_new(j->messages,
                              assistant_message(text ? text : "", text ? strlen(text) : 0, calls));
        if (k + 1 == nt)
            break;
        json_array_foreach(calls, i, c) json_array_append_new(
            j->messages, tool_message(json_string_value(json_object_get(c, "tool_call_id")),
                                      json_object_get(c, "result"),
                                      json_is_true(json_object_get(c, "is_error"))));
    }
    /* The last turn's calls: those with a result are answered already. */
    const json_t *calls = json_object_get(json_array_get(turns, nt - 1), "calls");
    size_t n = json_array_size(calls);
    j->turn = (int)nt;
    settings_now(r);
    if (n == 0 || (j->calls = calloc(n, sizeof *j->calls)) == NULL) {
        job_end(r, j, "failed", "the run was resumed without a tool call to answer");
        return 1;
    }
    j->turn_calls = json_incref((json_t *)calls);
    j->ncalls = n;
    json_array_foreach(calls, i, c)
    {
        struct tool_run *t = &j->calls[i];
        t->id = json_string_value(json_object_get(c, "tool_call_id"));
        t->name = json_string_value(json_object_get(c, "name"));
        t->input = json_object_get(c, "input");
        if (json_is_null(t->input))
            t->input = NULL;
        const json_t *result = json_object_get(c, "result");
        if (result && !json_is_null(result)) {
            t->result = json_incref((json_t *)result);
            t->is_error = json_is_true(json_object_get(c, "is_error"));
        } else {
            j->calls_left++;
        }
    }
    if (j->calls_left == 0) {
        turn_done(r, j);
        return 1;
    }
    for (i = 0; i < n && j->status == NULL; i++)
        if (j->calls[i].result == NULL)
            resume_call(r, j, &j->calls[i], i, json_array_get(calls, i));
    return 1;
}

size_t
agent_fds(const struct runner *r, struct curl_waitfd *fds, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->njobs; i++)
        for (size_t k = 0; k < r->jobs[i]->ncalls && n < max; k++) {
            const struct shell_proc *p = r->jobs[i]->calls[k].shell;
            if (p && shell_fd(p) >= 0)
                fds[n++] = (struct curl_waitfd){shell_fd(p), CURL_WAIT_POLLIN, 0};
        }
    return n;
}

int64_t
agent_deadline_ms(const struct runner *r)
{
    int64_t at = INT64_MAX;
    for (size_t i = 0; i < r->njobs; i++)
        for (size_t k = 0; k < r->jobs[i]->ncalls; k++) {
            const struct shell_proc *p = r->jobs[i]->calls[k].shell;
            if (p && shell_deadline_ms(p) < at)
                at = shell_deadline_ms(p);
        }
    return at;
}

void
agent_step(struct runner *r, int64_t now)
{
    for (size_t i = 0; i < r->njobs; i++) {
        struct job *j = r->jobs[i];
        for (size_t k = 0; k < j->ncalls; k++) {
            struct tool_run *t = &j->calls[k];
            if (t->shell == NULL || t->result || !shell_step(t->shell, now))
                continue;
            json_t *result = shell_result(t->shell);
            int is_error = shell_result_is_error(t->shell);
            shell_free(t->shell);
            t->shell = NULL;
            answer(r, j, t, result ? result : json_pack("{s:s}", "error", "no result"), is_error,
                   1);
        }
    }
}

void
agent_stop(struct runner *r, struct job *j)
{
    for (size_t k = 0; k < j->ncalls; k++) {
        struct tool_run *t = &j->calls[k];
        if (t->shell == NULL)
            continue;
        shell_kill(t->shell);
        json_t *result = shell_result(t->shell);
        char response_digest[72];
        digest(result, response_digest);
        json_decref(result);
        audit_queue_tool(r, j, AUDIT_RESPONSE, t, "aborted", response_digest);
        shell_free(t->shell);
        t->shell = NULL;
    }
    audit_drop(j, AUDIT_REQUEST);
}

void
agent_free(struct job *j)
{
    for (size_t k = 0; k < j->ncalls; k++) {
        shell_free(j->calls[k].shell);
        json_decref(j->calls[k].permission);
        json_decref(j->calls[k].result);
    }
    free(j->calls);
    json_decref(j->turn_calls);
    j->calls = NULL;
    j->turn_calls = NULL;
    j->ncalls = j->calls_left = 0;
}
