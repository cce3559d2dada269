/*
 * `kheish runtime permissions ...`: the permission rules (our runtime
 * setting), and the engine's dry runs (contract §8): check and matrix. The
 * documents are nested: shown as JSON in both output modes.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "names.h"

#define MODE_CLI(id, json, cli) cli,
static const char *const modes_cli[] = {NAMES_PERMISSION_MODES(MODE_CLI) NULL};
#undef MODE_CLI

/* POSTs body (stolen) to path and prints the answer. */
static int
post(const struct cli *c, const char *path, json_t *body)
{
    struct client_url url;
    client_url_path(&url, path);
    int rc = cmd_show(c, &(struct client_req){"POST", &url, body, NULL}, NULL);
    json_decref(body);
    return rc;
}

int
cmd_permissions_rules_get(const struct cli *c, int argc, char **argv)
{
    return cmd_get(c, argc, argv, "/v1/runtime/permission-rules", NULL);
}

/* The document is the rules array itself (`rules get | jq .rules`). */
int
cmd_permissions_rules_set(const struct cli *c, int argc, char **argv)
{
    return cmd_set_document(c, argc, argv, "/v1/runtime/permission-rules", "rules", NULL);
}

/* `check <tool> [--input-json J] [--session-id S] [--tool-call-id T]
 * [--mode M]`: M as the CLI spells a mode, sent as mode_override. */
int
cmd_permissions_check(const struct cli *c, int argc, char **argv)
{
    const char *tool, *input_json = NULL, *session = NULL, *call = NULL, *mode = NULL;
    json_t *input = NULL;
    const struct args_opt opts[] = {
        {.name = "input-json", .str = &input_json},
        {.name = "session-id", .str = &session},
        {.name = "tool-call-id", .str = &call},
        {.name = "mode", .str = &mode, .choices = modes_cli},
        {0},
    };
    if (args_parse(argc, argv, opts, &tool, 1, 1) != 0)
        return ARGS_USAGE;
    if (input_json) {
        int rc = cmd_json_input(input_json, NULL, 0, &input);
        if (rc != 0)
            return rc;
    }
    json_t *body = json_object();
    if (input)
        json_object_set_new(body, "input", input);
    for (int i = 0; mode && modes_cli[i]; i++)
        if (!strcmp(mode, modes_cli[i]))
            json_object_set_new(body, "mode_override", json_string(names_permission_modes[i]));
    if (cmd_body_str(body, "tool_name", tool) || cmd_body_str(body, "session_id", session) ||
        cmd_body_str(body, "tool_call_id", call)) {
        json_decref(body);
        return ARGS_USAGE;
    }
    return post(c, "/v1/runtime/permissions/check", body);
}

int
cmd_permissions_matrix(const struct cli *c, int argc, char **argv)
{
    const char *session = NULL;
    const struct args_opt opts[] = {{.name = "session-id", .str = &session}, {0}};
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    json_t *body = json_object();
    if (cmd_body_str(body, "session_id", session)) {
        json_decref(body);
        return ARGS_USAGE;
    }
    return post(c, "/v1/runtime/permissions/matrix", body);
}
