/* `kheish runtime ...`: runtime settings, their revisions and rollback, tool
 * limits, and the credential broker. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "names.h"
#include "views.h"

/* A value as the CLI spells it and as the API does. */
struct choice {
    const char *cli;
    const char *api;
};

#define MODE_CHOICE(id, json, cli) {cli, json},
static const struct choice permission_modes[] = {NAMES_PERMISSION_MODES(MODE_CHOICE){NULL, NULL}};
#undef MODE_CHOICE

static const struct choice debug_levels[] = {
    {"off", "off"}, {"on", "on"}, {"redacted", "redacted"}, {"full", "full"}, {NULL, NULL},
};

/* Sends body (stolen) to path and prints the runtime view it answers. */
static int
post(const struct cli *c, const char *path, json_t *body)
{
    struct client_url url;
    client_url_path(&url, path);
    int rc = cmd_show(c, &(struct client_req){"POST", &url, body, NULL}, &view_runtime);
    json_decref(body);
    return rc;
}

/* `set-<setting> <value> [--expected-revision N]`: one setting from a closed
 * list of values, posted as {field: <API spelling>}. */
static int
set_one(const struct cli *c, int argc, char **argv, const char *path, const char *field,
        const struct choice *choices)
{
    const char *value;
    int64_t expected = ARGS_UNSET;
    const struct args_opt opts[] = {
        {.name = "expected-revision", .num = &expected, .min = 1, .max = INT64_MAX},
        {0},
    };
    if (args_parse(argc, argv, opts, &value, 1, 1) != 0)
        return ARGS_USAGE;
    const struct choice *ch = choices;
    while (ch->cli && strcmp(ch->cli, value))
        ch++;
    if (ch->cli == NULL) {
        fprintf(stderr, "kheish: '%s' is not a %s; one of:", value, field);
        for (ch = choices; ch->cli; ch++)
            fprintf(stderr, " %s", ch->cli);
        fputc('\n', stderr);
        return ARGS_USAGE;
    }
    json_t *body = json_pack("{s:s}", field, ch->api);
    cmd_body_int(body, "expected_revision", expected);
    return post(c, path, body);
}

int
cmd_runtime_get(const struct cli *c, int argc, char **argv)
{
    return cmd_get(c, argc, argv, "/v1/runtime", &view_runtime);
}

int
cmd_runtime_revisions(const struct cli *c, int argc, char **argv)
{
    return cmd_get(c, argc, argv, "/v1/runtime/revisions", &view_revisions);
}

int
cmd_runtime_set_permission_mode(const struct cli *c, int argc, char **argv)
{
    return set_one(c, argc, argv, "/v1/runtime/permission-mode", "mode", permission_modes);
}

int
cmd_runtime_set_debug_level(const struct cli *c, int argc, char **argv)
{
    return set_one(c, argc, argv, "/v1/runtime/debug-level", "level", debug_levels);
}

int
cmd_runtime_rollback(const struct cli *c, int argc, char **argv)
{
    int64_t target = ARGS_UNSET, expected = ARGS_UNSET;
    int skip_hooks = 0;
    const struct args_opt opts[] = {
        {.name = "target-revision", .num = &target, .min = 1, .max = INT64_MAX},
        {.name = "expected-revision", .num = &expected, .min = 1, .max = INT64_MAX},
        {.name = "skip-hooks", .flag = &skip_hooks},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    json_t *body = json_object();
    cmd_body_int(body, "target_revision", target);
    cmd_body_int(body, "expected_revision", expected);
    if (skip_hooks)
        json_object_set_new(body, "skip_hooks", json_true());
    return post(c, "/v1/runtime/rollback", body);
}

/* `runtime tool-limits get|set`: the ToolRuntimeLimits, shown as JSON; set
 * takes the whole object and answers the runtime view. */
int
cmd_runtime_tool_limits_get(const struct cli *c, int argc, char **argv)
{
    return cmd_get(c, argc, argv, "/v1/runtime/tool-limits", NULL);
}

int
cmd_runtime_tool_limits_set(const struct cli *c, int argc, char **argv)
{
    return cmd_set_document(c, argc, argv, "/v1/runtime/tool-limits", "limits", &view_runtime);
}

/* `runtime auth <verb> <id>`: the credential broker (contract §5). The
 * documents are small and nested: shown as JSON in both modes. */
int
cmd_runtime_auth_subject(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "GET", "/v1/runtime/auth/subjects/%s", NULL);
}

int
cmd_runtime_auth_revoke_subject(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "POST", "/v1/runtime/auth/subjects/%s/revoke", NULL);
}

int
cmd_runtime_auth_lease(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "GET", "/v1/runtime/auth/leases/%s", NULL);
}

int
cmd_runtime_auth_revoke_lease(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "POST", "/v1/runtime/auth/leases/%s/revoke", NULL);
}

int
cmd_runtime_auth_revoke_slot(const struct cli *c, int argc, char **argv)
{
    return cmd_id_verb(c, argc, argv, "POST", "/v1/runtime/auth/slots/%s/revoke", NULL);
}
