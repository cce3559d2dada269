/* `kheish sessions ...` (alias `session`). */
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "views.h"

#define CONTENT_MAX_BYTES (2 * 1024 * 1024) /* the control plane's default body limit */

int
cmd_sessions_create(const struct cli *c, int argc, char **argv)
{
    const char *id = NULL, *thread = NULL, *persona = NULL;
    const char *cap_json = NULL, *cap_file = NULL, *cred_json = NULL, *cred_file = NULL;
    json_t *cap = NULL, *cred = NULL, *body = NULL;
    struct client_url url;
    const struct args_opt opts[] = {
        {.name = "thread-id", .str = &thread},
        {.name = "persona-id", .str = &persona},
        {.name = "capability-scope-json", .str = &cap_json},
        {.name = "capability-scope-file", .str = &cap_file},
        {.name = "credential-scope-json", .str = &cred_json},
        {.name = "credential-scope-file", .str = &cred_file},
        {0},
    };
    int rc = args_parse(argc, argv, opts, &id, 0, 1);
    if (rc == 0)
        rc = cmd_json_object("capability-scope", cap_json, cap_file, &cap);
    if (rc == 0)
        rc = cmd_json_object("credential-scope", cred_json, cred_file, &cred);
    if (rc != 0)
        goto done;
    body = json_object();
    if ((rc = cmd_body_str(body, "session_id", id)) != 0 ||
        (rc = cmd_body_str(body, "thread_id", thread)) != 0 ||
        (rc = cmd_body_str(body, "persona_id", persona)) != 0)
        goto done;
    if (cap)
        json_object_set(body, "capability_scope", cap);
    if (cred)
        json_object_set(body, "credential_scope", cred);
    client_url_path(&url, "/v1/sessions");
    rc = cmd_show(c, &(struct client_req){"POST", &url, body, NULL}, &view_session);
done:
    json_decref(body);
    json_decref(cred);
    json_decref(cap);
    return rc;
}

int
cmd_sessions_list(const struct cli *c, int argc, char **argv)
{
    const char *cursor = NULL;
    int64_t limit = ARGS_UNSET;
    int page = 0;
    struct client_url url;
    const struct args_opt opts[] = {
        {.name = "page", .flag = &page},
        {.name = "limit", .num = &limit, .min = 1, .max = INT32_MAX},
        {.name = "cursor", .str = &cursor},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    client_url_path(&url, "/v1/sessions");
    cmd_page_query(&url, page, limit, cursor);
    return cmd_show(c, &(struct client_req){"GET", &url, NULL, NULL}, &view_session_list);
}

int
cmd_sessions_get(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "GET", "/v1/sessions/%s", &view_session);
}

int
cmd_sessions_events(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "GET", "/v1/sessions/%s/events", &view_session_events);
}

int
cmd_sessions_interrupt(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "POST", "/v1/sessions/%s/interrupt", &view_interrupt);
}

int
cmd_sessions_end(const struct cli *c, int argc, char **argv)
{
    const char *id, *reason = NULL;
    struct client_url url;
    const struct args_opt opts[] = {{.name = "reason", .str = &reason}, {0}};
    if (args_parse(argc, argv, opts, &id, 1, 1) != 0)
        return ARGS_USAGE;
    json_t *body = json_object();
    int rc = cmd_body_str(body, "reason", reason);
    client_url_path(&url, "/v1/sessions/%s/end", id);
    if (rc == 0)
        rc = cmd_show(c, &(struct client_req){"POST", &url, body, NULL}, &view_session);
    json_decref(body);
    return rc;
}

int
cmd_sessions_approve(const struct cli *c, int argc, char **argv)
{
    return cmd_approvals_resolve(c, argc, argv, "allow", 0);
}

int
cmd_sessions_deny(const struct cli *c, int argc, char **argv)
{
    return cmd_approvals_resolve(c, argc, argv, "deny", 0);
}

/* The generation settings of `sessions input`, as the API takes them. */
static json_t *
generation(const char *model, int64_t max_tokens, const char *tool_choice)
{
    json_t *g = json_object();
    if (model)
        json_object_set_new(g, "model", json_string(model));
    cmd_body_int(g, "max_output_tokens", max_tokens);
    if (tool_choice)
        json_object_set_new(g, "tool_choice", json_string(tool_choice));
    return g;
}

/* Queues a run (POST /v1/sessions/{id}/runs) and prints the 202 RunView;
 * with --wait, waits for the run to end and prints its terminal RunView.
 * The content comes from the argument or, with --stdin, verbatim from
 * standard input. */
int
cmd_sessions_input(const struct cli *c, int argc, char **argv)
{
    static const char *const tool_choices[] = {"auto", "none", "required", "specific", NULL};
    const char *pos[2] = {NULL, NULL}, *key = NULL, *provider = NULL, *model = NULL;
    const char *tool_choice = NULL;
    int from_stdin = 0, wait = 0, rc;
    int64_t max_tokens = ARGS_UNSET, poll = WAIT_POLL_DEFAULT_MS;
    char *text = NULL;
    size_t len = 0;
    json_t *body = NULL, *content, *view = NULL;
    struct client_url url;
    const struct args_opt opts[] = {
        {.name = "stdin", .flag = &from_stdin},
        {.name = "idempotency-key", .str = &key},
        {.name = "provider", .str = &provider},
        {.name = "model", .str = &model},
        {.name = "max-output-tokens", .num = &max_tokens, .min = 1, .max = 10000000},
        {.name = "tool-choice", .str = &tool_choice, .choices = tool_choices},
        {.name = "wait", .flag = &wait},
        {.name = "poll-interval-ms",
         .num = &poll,
         .min = WAIT_POLL_MIN_MS,
         .max = WAIT_POLL_MAX_MS},
        {0},
    };
    if (args_parse(argc, argv, opts, pos, 1, 2) != 0)
        return ARGS_USAGE;
    if ((pos[1] != NULL) == from_stdin) {
        fprintf(stderr, "kheish: give the content as an argument or with --stdin (not both)\n");
        return ARGS_USAGE;
    }
    if (from_stdin && args_read_file("-", CONTENT_MAX_BYTES, &text, &len) != 0)
        return EXIT_BAD_REQUEST;
    content = from_stdin ? json_stringn(text, len) : json_string(pos[1]);
    if (content == NULL) {
        fprintf(stderr, "kheish: the content is not valid UTF-8\n");
        rc = ARGS_USAGE;
        goto done;
    }
    body = json_pack("{s:o, s:o}", "content", content, "generation",
                     generation(model, max_tokens, tool_choice));
    if ((rc = cmd_body_str(body, "provider", provider)) != 0)
        goto done;
    char own_key[CLIENT_KEY_BYTES];
    if (key == NULL) {
        client_new_key(own_key);
        key = own_key;
    }
    client_url_path(&url, "/v1/sessions/%s/runs", pos[0]);
    if (!wait) {
        rc = cmd_show(c, &(struct client_req){"POST", &url, body, key}, &view_run);
        goto done;
    }
    rc = client_request(c, &(struct client_req){"POST", &url, body, key}, &view, NULL);
    const char *run = json_string_value(json_object_get(view, "run_id"));
    if (rc == EXIT_OK && run == NULL) {
        fprintf(stderr, "kheish: the answer has no run_id\n");
        rc = EXIT_SCHEMA;
    }
    if (rc == EXIT_OK)
        rc = cmd_wait_run(c, run, poll, ARGS_UNSET, WAIT_TERMINAL);
done:
    json_decref(view);
    json_decref(body);
    free(text);
    return rc;
}
