/*
 * `kheish approvals ...` (alias `approval`), and `sessions approve|deny`:
 * the tool calls runs wait on, as upstream's CLI shows and resolves them.
 * Pending approvals are read from the RunViews of the runs waiting for
 * approval (one paged listing, not one request a session); resolutions go
 * to POST /v1/runs/{id}/approvals, one atomic batch a run.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "views.h"

#define WAITING_PAGE     100 /* runs a listing page asks for: the API's largest */
#define RESOLVE_OPTS_MAX 10  /* flags of a resolving verb, and the end mark */

/* Appends to runs every run waiting for approval (of session, when not
 * NULL), following the listing's cursor to its last page. */
static int
waiting_runs(const struct cli *c, const char *session, json_t *runs)
{
    json_t *page = NULL;
    const char *cursor = NULL;
    int rc;
    do {
        struct client_url url;
        json_t *next;
        client_url_path(&url, "/v1/runs");
        client_url_query(&url, "status", "waiting_for_approval");
        client_url_query(&url, "session_id", session);
        cmd_page_query(&url, 1, WAITING_PAGE, cursor);
        rc = client_request(c, &(struct client_req){"GET", &url, NULL, NULL}, &next, NULL);
        json_decref(page); /* cursor pointed into it: the URL holds a copy now */
        page = next;
        json_t *items = json_object_get(page, "items");
        if (rc == EXIT_OK && !json_is_array(items)) {
            fprintf(stderr, "kheish: the run listing has no items array\n");
            rc = EXIT_SCHEMA;
        }
        if (rc == EXIT_OK)
            json_array_extend(runs, items);
        cursor =
            json_string_value(json_object_get(json_object_get(page, "pagination"), "next_cursor"));
    } while (rc == EXIT_OK && cursor);
    json_decref(page);
    return rc;
}

/* Whether the pending approval request is the one named id. */
static int
is_request(const json_t *request, const char *id)
{
    const char *own = json_string_value(json_object_get(request, "id"));
    return own && !strcmp(own, id);
}

/* Upstream's PendingApprovalView of each pending approval of each run:
 * {session_id, agent_id, run_id, request}. */
static json_t *
pending_views(const json_t *runs)
{
    json_t *views = json_array();
    size_t i, j;
    const json_t *run, *request;
    json_array_foreach(runs, i, run) json_array_foreach(json_object_get(run, "pending_approvals"),
                                                        j, request)
        json_array_append_new(views, json_pack("{s:O?, s:O?, s:O?, s:O}", "session_id",
                                               json_object_get(run, "session_id"), "agent_id",
                                               json_object_get(run, "agent_id"), "run_id",
                                               json_object_get(run, "run_id"), "request", request));
    return views;
}

/* The pending approvals (of session, when not NULL) into *views. */
static int
pending(const struct cli *c, const char *session, json_t **views)
{
    json_t *runs = json_array();
    int rc = waiting_runs(c, session, runs);
    *views = rc == EXIT_OK ? pending_views(runs) : NULL;
    json_decref(runs);
    return rc;
}

int
cmd_approvals_list(const struct cli *c, int argc, char **argv)
{
    const char *session = NULL;
    json_t *views;
    const struct args_opt opts[] = {{.name = "session-id", .str = &session}, {0}};
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    int rc = pending(c, session, &views);
    if (rc == EXIT_OK)
        output_print(c, views, &view_approval_list);
    json_decref(views);
    return rc;
}

int
cmd_approvals_show(const struct cli *c, int argc, char **argv)
{
    const char *id, *session = NULL;
    json_t *views;
    const json_t *view, *found = NULL;
    size_t i;
    const struct args_opt opts[] = {{.name = "session-id", .str = &session}, {0}};
    if (args_parse(argc, argv, opts, &id, 1, 1) != 0)
        return ARGS_USAGE;
    int rc = pending(c, session, &views);
    json_array_foreach(views, i, view) if (!found && is_request(json_object_get(view, "request"),
                                                                id)) found = view;
    if (rc == EXIT_OK && found == NULL) {
        fprintf(stderr, "kheish: unknown approval request %s\n", id);
        rc = EXIT_NOT_FOUND;
    }
    if (found)
        output_print(c, found, &view_approval);
    json_decref(views);
    return rc;
}

/* The flags of the resolving verbs, and what they were given. */
struct resolve_args {
    const char *session; /* --session-id of the -all verbs */
    const char *input_json, *input_file, *justification, *reason, *key;
    int wait;
    int64_t poll;
};

/* Which flags a resolving verb takes besides those of every one
 * (--justification, --idempotency-key, --wait, --poll-interval-ms). */
enum { TAKES_SESSION = 1, TAKES_REASON = 2, TAKES_INPUT = 4 };

static void
resolve_opts(struct args_opt opts[RESOLVE_OPTS_MAX], struct resolve_args *a, unsigned takes)
{
    size_t n = 0;
    memset(opts, 0, RESOLVE_OPTS_MAX * sizeof *opts);
    if (takes & TAKES_SESSION)
        opts[n++] = (struct args_opt){.name = "session-id", .str = &a->session};
    if (takes & TAKES_REASON)
        opts[n++] = (struct args_opt){.name = "reason", .str = &a->reason};
    if (takes & TAKES_INPUT) {
        opts[n++] = (struct args_opt){.name = "updated-input-json", .str = &a->input_json};
        opts[n++] = (struct args_opt){.name = "updated-input-file", .str = &a->input_file};
    }
    opts[n++] = (struct args_opt){.name = "justification", .str = &a->justification};
    opts[n++] = (struct args_opt){.name = "idempotency-key", .str = &a->key};
    opts[n++] = (struct args_opt){.name = "wait", .flag = &a->wait};
    opts[n] = (struct args_opt){.name = "poll-interval-ms",
                                .num = &a->poll,
                                .min = WAIT_POLL_MIN_MS,
                                .max = WAIT_POLL_MAX_MS};
}

/* One resolution of the API's batch: {request_id, behavior, updated_input?,
 * justification?, reason?}; NULL after saying which text is not UTF-8. */
static json_t *
resolution(const char *request_id, const char *behavior, const struct resolve_args *a,
           json_t *input)
{
    json_t *r =
        json_pack("{s:s, s:s}", "request_id", request_id ? request_id : "", "behavior", behavior);
    if (r == NULL) {
        fprintf(stderr, "kheish: the request id is not valid UTF-8\n");
        return NULL;
    }
    if (input)
        json_object_set(r, "updated_input", input);
    if (cmd_body_str(r, "justification", a->justification) != 0 ||
        cmd_body_str(r, "reason", a->reason) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* POSTs {resolutions} to path_fmt (its "%s" is id) under the user's
 * idempotency key or one of the CLI's own, so a lost answer is safe to
 * retry; the RunView answered goes to *run, settled first with --wait. */
static int
send_batch(const struct cli *c, const struct resolve_args *a, const char *path_fmt, const char *id,
           json_t *resolutions, json_t **run)
{
    struct client_url url;
    char own_key[CLIENT_KEY_BYTES];
    json_t *body = json_pack("{s:O}", "resolutions", resolutions), *answer;
    if (a->key == NULL)
        client_new_key(own_key);
    client_url_path(&url, path_fmt, id);
    int rc = client_request(c, &(struct client_req){"POST", &url, body, a->key ? a->key : own_key},
                            &answer, NULL);
    json_decref(body);
    const char *run_id = json_string_value(json_object_get(answer, "run_id"));
    if (rc == EXIT_OK && run_id == NULL) {
        fprintf(stderr, "kheish: the answer has no run_id\n");
        rc = EXIT_SCHEMA;
    }
    *run = NULL;
    if (rc == EXIT_OK && a->wait)
        rc = cmd_run_settle(c, run_id, a->poll, ARGS_UNSET, WAIT_SETTLED, run);
    else if (rc == EXIT_OK)
        *run = json_incref(answer);
    json_decref(answer);
    return rc;
}

/* The waiting run of session that holds request id, or NULL. */
static const char *
holder(const json_t *runs, const char *id)
{
    size_t i, j;
    const json_t *run, *request;
    json_array_foreach(runs, i, run) json_array_foreach(
        json_object_get(run, "pending_approvals"), j,
        request) if (is_request(request, id)) return json_string_value(json_object_get(run,
                                                                                       "run_id"));
    return NULL;
}

/* Resolves one request of a session and prints the run. Sent to the run
 * that holds it; when no waiting run does (resolved already, a replay, or
 * unknown), to the session's waiting run, so the API answers: it replays a
 * repeated idempotency key, or says why the request cannot be resolved. */
static int
resolve_request(const struct cli *c, const struct resolve_args *a, const char *session,
                const char *id, const char *behavior, json_t *input)
{
    json_t *runs = json_array(), *run = NULL, *resolutions = NULL, *r;
    int rc = waiting_runs(c, session, runs);
    if (rc != EXIT_OK)
        goto done;
    if ((r = resolution(id, behavior, a, input)) == NULL) {
        rc = ARGS_USAGE;
        goto done;
    }
    resolutions = json_pack("[o]", r);
    const char *run_id = holder(runs, id);
    rc = run_id ? send_batch(c, a, "/v1/runs/%s/approvals", run_id, resolutions, &run)
                : send_batch(c, a, "/v1/sessions/%s/approval-runs", session, resolutions, &run);
    if (rc == EXIT_OK)
        output_print(c, run, &view_run);
done:
    json_decref(run);
    json_decref(resolutions);
    json_decref(runs);
    return rc;
}

int
cmd_approvals_resolve(const struct cli *c, int argc, char **argv, const char *behavior,
                      int with_flags)
{
    const char *pos[2];
    struct resolve_args a = {.poll = WAIT_POLL_DEFAULT_MS};
    struct args_opt opts[RESOLVE_OPTS_MAX];
    json_t *input = NULL;
    resolve_opts(opts, &a, strcmp(behavior, "allow") ? TAKES_REASON : TAKES_INPUT);
    if (args_parse(argc, argv, with_flags ? opts : NULL, pos, 2, 2) != 0)
        return ARGS_USAGE;
    int rc = cmd_json_object("updated-input", a.input_json, a.input_file, &input);
    if (rc == 0)
        rc = resolve_request(c, &a, pos[0], pos[1], behavior, input);
    json_decref(input);
    return rc;
}

int
cmd_approvals_allow(const struct cli *c, int argc, char **argv)
{
    return cmd_approvals_resolve(c, argc, argv, "allow", 1);
}

int
cmd_approvals_deny(const struct cli *c, int argc, char **argv)
{
    return cmd_approvals_resolve(c, argc, argv, "deny", 1);
}

/* The batch of every pending approval of run, all with behavior. */
static json_t *
run_batch(const json_t *run, const char *behavior, const struct resolve_args *a)
{
    json_t *batch = json_array(), *r;
    size_t i;
    const json_t *request;
    json_array_foreach(json_object_get(run, "pending_approvals"), i, request)
    {
        r = resolution(json_string_value(json_object_get(request, "id")), behavior, a, NULL);
        if (r == NULL) {
            json_decref(batch);
            return NULL;
        }
        json_array_append_new(batch, r);
    }
    return batch;
}

/* Resolves every pending approval (of --session-id's session) the same way:
 * one atomic batch a waiting run, sent in turn; the first refused batch
 * ends the verb with its exit code, the batches before it staying
 * resolved. Prints upstream's {resolved_requests, affected_sessions (the
 * batches sent), runs}. One --idempotency-key serves every batch: keys
 * belong to a session, and a session has one waiting run at most. */
static int
resolve_all(const struct cli *c, int argc, char **argv, const char *behavior, unsigned takes)
{
    struct resolve_args a = {.poll = WAIT_POLL_DEFAULT_MS};
    struct args_opt opts[RESOLVE_OPTS_MAX];
    json_t *runs = json_array(), *views = json_array(), *batch = NULL, *view;
    size_t i, resolved = 0;
    const json_t *run;
    resolve_opts(opts, &a, TAKES_SESSION | takes);
    int rc = args_parse(argc, argv, opts, NULL, 0, 0);
    if (rc == 0)
        rc = waiting_runs(c, a.session, runs);
    json_array_foreach(runs, i, run)
    {
        if (rc != EXIT_OK)
            break;
        if ((batch = run_batch(run, behavior, &a)) == NULL) {
            rc = ARGS_USAGE;
            break;
        }
        rc = send_batch(c, &a, "/v1/runs/%s/approvals",
                        json_string_value(json_object_get(run, "run_id")), batch, &view);
        resolved += rc == EXIT_OK ? json_array_size(batch) : 0;
        if (rc == EXIT_OK)
            json_array_append_new(views, view);
        json_decref(batch);
    }
    if (rc == EXIT_OK) {
        json_t *doc =
            json_pack("{s:I, s:I, s:O}", "resolved_requests", (json_int_t)resolved,
                      "affected_sessions", (json_int_t)json_array_size(views), "runs", views);
        output_print(c, doc, &view_approvals_resolved);
        json_decref(doc);
    }
    json_decref(views);
    json_decref(runs);
    return rc;
}

int
cmd_approvals_allow_all(const struct cli *c, int argc, char **argv)
{
    return resolve_all(c, argc, argv, "allow", 0);
}

int
cmd_approvals_deny_all(const struct cli *c, int argc, char **argv)
{
    return resolve_all(c, argc, argv, "deny", TAKES_REASON);
}
