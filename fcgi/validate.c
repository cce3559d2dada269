#include "validate.h"

#include <math.h>
#include <string.h>

#include "names.h"
#include "permissions.h"
#include "util.h"

#define NAME_MAX_BYTES 256
#define TEXT_MAX_BYTES (64 * 1024 * 1024)
#define LIST_MAX_ITEMS 64
#define REVISION_MAX   INT64_MAX / 2

/* Ceilings of the tool runtime limits: far above what a run needs, low
 * enough that a typo cannot disable a limit. */
#define TOOL_BYTES_MAX            (1LL << 30) /* one input, output or envelope: 1 GiB */
#define TOOL_CUMULATIVE_BYTES_MAX (1LL << 32) /* a turn's outputs or envelopes: 4 GiB */
#define TOOL_TIMEOUT_MAX_MS       86400000    /* one tool call: a day */
#define TOOL_PARALLEL_MAX         256
#define TOOL_CALLS_PER_TURN_MAX   4096

static const char *
type_name(enum field_type t)
{
    static const char *const names[] = {"a string", "an id",     "a boolean", "an integer",
                                        "a number", "an object", "an array",  "any value"};
    return names[t];
}

static int check_value(const json_t *v, const struct field *f, const char *path,
                       struct http_resp *resp);

static int
check_array(const json_t *v, const struct field *f, const char *path, struct http_resp *resp)
{
    if ((int64_t)json_array_size(v) > f->max) {
        http_problem(resp, 400, NULL, "bad_request", "field '%s' has more than %lld items", path,
                     (long long)f->max);
        return -1;
    }
    if (f->members == NULL)
        return 0;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        char sub[160];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        if (check_value(item, f->members, sub, resp) != 0)
            return -1;
    }
    return 0;
}

static int
check_value(const json_t *v, const struct field *f, const char *path, struct http_resp *resp)
{
    int ok;
    switch (f->type) {
    case F_STRING:
    case F_ID:
        ok = json_is_string(v);
        break;
    case F_BOOL:
        ok = json_is_boolean(v);
        break;
    case F_INT:
        ok = json_is_integer(v);
        break;
    case F_NUMBER:
        ok = json_is_number(v);
        break;
    case F_OBJECT:
        ok = json_is_object(v);
        break;
    case F_ARRAY:
        ok = json_is_array(v);
        break;
    default:
        ok = 1;
    }
    if (!ok) {
        http_problem(resp, 400, NULL, "bad_request", "field '%s' must be %s", path,
                     type_name(f->type));
        return -1;
    }
    if (f->type == F_STRING || f->type == F_ID) {
        const char *s = json_string_value(v);
        int64_t len = (int64_t)json_string_length(v);
        if (len < f->min || len > f->max)
            return http_problem(resp, 400, NULL, "bad_request",
                                "field '%s' must be %lld to %lld bytes long", path,
                                (long long)f->min, (long long)f->max),
                   -1;
        if (f->type == F_ID && !uri_valid_id(s))
            return http_problem(resp, 400, NULL, "bad_request",
                                "field '%s' must be 1..%d characters of [A-Za-z0-9._:@-] "
                                "starting with a letter, digit or '_'",
                                path, URI_ID_MAX_BYTES),
                   -1;
        if (f->values && !util_in_list(s, f->values))
            return http_problem(resp, 400, NULL, "bad_request", "field '%s' has an unknown value",
                                path),
                   -1;
    }
    if (f->type == F_INT || f->type == F_NUMBER) {
        double d = json_number_value(v);
        if (!isfinite(d) || d < (double)f->min || d > (double)f->max ||
            (f->type == F_INT &&
             (json_integer_value(v) < f->min || json_integer_value(v) > f->max)))
            return http_problem(resp, 400, NULL, "bad_request",
                                "field '%s' must be between %lld and %lld", path, (long long)f->min,
                                (long long)f->max),
                   -1;
    }
    if (f->type == F_OBJECT && f->members)
        return validate_object(v, f->members, resp);
    if (f->type == F_ARRAY)
        return check_array(v, f, path, resp);
    return 0;
}

int
validate_object(const json_t *obj, const struct field *fields, struct http_resp *resp)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const struct field *f = fields;
        while (f->name && strcmp(f->name, key))
            f++;
        if (f->name == NULL) {
            json_t *name = util_json_str(key);
            http_problem(resp, 400, NULL, "bad_request", "unknown field '%.64s'",
                         json_string_value(name));
            json_decref(name);
            return -1;
        }
        if (json_is_null(v))
            continue; /* null means absent, as for an Option in the contract */
        if (check_value(v, f, key, resp) != 0)
            return -1;
    }
    for (const struct field *f = fields; f->name; f++) {
        const json_t *given = json_object_get(obj, f->name);
        if (f->required && (given == NULL || json_is_null(given)))
            return http_problem(resp, 400, NULL, "bad_request", "field '%s' is required", f->name),
                   -1;
    }
    return 0;
}

int
validate_object_as(const json_t *obj, const struct field *fields, const char *what,
                   const char *domain, const char *code, struct http_resp *resp)
{
    if (validate_object(obj, fields, resp) == 0)
        return 0;
    char detail[512];
    snprintf(detail, sizeof detail, "%s: %s", what,
             json_string_value(json_object_get(resp->json, "detail")));
    http_problem(resp, 400, domain, code, "%s", detail);
    return -1;
}

int
validate_body(const struct http_req *req, const struct field *fields, json_t **out,
              struct http_resp *resp)
{
    if (http_body_object(req, 1, out, resp) != 0)
        return -1;
    if (validate_object(*out, fields, resp) != 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static const char *const tool_choices[] = {"auto", "none", "required", "specific", NULL};
static const char *const tool_choice_types[] = {"auto",     "none",     "required", "tool",
                                                "function", "specific", NULL};
static const char *const item_types[] = {"text", "asset_reference", "board_reference",
                                         "inline_asset", NULL};
static const char *const debug_levels[] = {"off", "on", "redacted", "full", NULL};

static const struct field tool_choice_object[] = {
    {"type", F_STRING, 0, 64, tool_choice_types, NULL, OPTIONAL},
    {"name", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

static const struct field generation[] = {
    {"model", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"fallback_model", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"temperature", F_NUMBER, 0, 2, NULL, NULL, OPTIONAL},
    {"max_output_tokens", F_INT, 1, 10000000, NULL, NULL, OPTIONAL},
    {"tool_choice", F_ANY, 0, 0, NULL, NULL, OPTIONAL},
    {"allow_parallel_tool_calls", F_BOOL, 0, 0, NULL, NULL, OPTIONAL},
    {"response_format", F_ANY, 0, 0, NULL, NULL, OPTIONAL},
    {"reasoning", F_OBJECT, 0, 0, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

static const struct field input_item[] = {
    {"type", F_STRING, 0, 32, item_types, NULL, OPTIONAL},
    {"text", F_STRING, 0, TEXT_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"asset_id", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"board_id", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"revision_id", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"file_name", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"media_type", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"content_base64", F_STRING, 0, TEXT_MAX_BYTES, NULL, NULL, OPTIONAL},
    FIELDS_END,
};
static const struct field input_item_value = {NULL, F_OBJECT, 0, 0, NULL, input_item, OPTIONAL};

static const struct field requirement[] = {
    {"type", F_STRING, 0, 32, (const char *const[]){"workspace_file", NULL}, NULL, OPTIONAL},
    {"path", F_STRING, 0, 4096, NULL, NULL, OPTIONAL},
    FIELDS_END,
};
static const struct field requirement_value = {NULL, F_OBJECT, 0, 0, NULL, requirement, OPTIONAL};
static const struct field binding_key_value = {NULL, F_STRING, 0,       NAME_MAX_BYTES,
                                               NULL, NULL,     OPTIONAL};
static const struct field object_value = {NULL, F_OBJECT, 0, 0, NULL, NULL, OPTIONAL};

const struct field validate_submit_input[] = {
    {"provider", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"source_plugin", F_STRING, 0, 64, NULL, NULL, OPTIONAL},
    {"source_kind", F_STRING, 0, 64, NULL, NULL, OPTIONAL},
    {"actor_id", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"content", F_STRING, 0, TEXT_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"input_items", F_ARRAY, 0, LIST_MAX_ITEMS, NULL, &input_item_value, OPTIONAL},
    {"attachments", F_ARRAY, 0, LIST_MAX_ITEMS, NULL, &object_value, OPTIONAL},
    {"generation", F_OBJECT, 0, 0, NULL, generation, OPTIONAL},
    {"completion_requirements", F_ARRAY, 0, LIST_MAX_ITEMS, NULL, &requirement_value, OPTIONAL},
    {"metadata", F_OBJECT, 0, 0, NULL, NULL, OPTIONAL},
    {"binding_keys", F_ARRAY, 0, LIST_MAX_ITEMS, NULL, &binding_key_value, OPTIONAL},
    {"reply_targets", F_ARRAY, 0, 16, NULL, &object_value, OPTIONAL},
    {"reply_plugin", F_STRING, 0, 64, NULL, NULL, OPTIONAL},
    {"reply_address", F_STRING, 0, 2048, NULL, NULL, OPTIONAL},
    {"idempotency_key", F_STRING, 1, 255, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

int
validate_submit_rules(const json_t *obj, struct http_resp *resp)
{
    const json_t *items = json_object_get(obj, "input_items");
    int text = json_string_length(json_object_get(obj, "content")) > 0 ||
               json_array_size(json_object_get(obj, "attachments")) > 0;
    if (json_array_size(items) > 0 && text) {
        http_problem(resp, 400, NULL, "input_contract_violated",
                     "input_items cannot be combined with content or attachments");
        return -1;
    }
    if (json_array_size(items) == 0 && !text) {
        http_problem(resp, 400, NULL, "input_contract_violated",
                     "a run needs content, attachments or input_items");
        return -1;
    }
    const json_t *tc = json_object_get(json_object_get(obj, "generation"), "tool_choice");
    if (tc && !json_is_null(tc)) {
        static const struct field as_string = {
            "generation.tool_choice", F_STRING, 0, 64, tool_choices, NULL, OPTIONAL};
        static const struct field as_object = {"generation.tool_choice", F_OBJECT, 0, 0, NULL,
                                               tool_choice_object,       OPTIONAL};
        return check_value(tc, json_is_object(tc) ? &as_object : &as_string,
                           "generation.tool_choice", resp);
    }
    return 0;
}

const struct field validate_session_create[] = {
    {"session_id", F_ID, 0, URI_ID_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"thread_id", F_STRING, 0, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"persona_id", F_ID, 0, URI_ID_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"capability_scope", F_OBJECT, 0, 0, NULL, NULL, OPTIONAL},
    {"credential_scope", F_OBJECT, 0, 0, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

const struct field validate_session_end[] = {
    {"reason", F_STRING, 0, 1024, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

const struct field validate_empty[] = {FIELDS_END};

const struct field validate_permission_mode[] = {
    {"mode", F_STRING, 0, 32, names_permission_modes, NULL, REQUIRED},
    {"expected_revision", F_INT, 1, REVISION_MAX, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

const struct field validate_debug_level[] = {
    {"level", F_STRING, 0, 32, debug_levels, NULL, REQUIRED},
    {"expected_revision", F_INT, 1, REVISION_MAX, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

const struct field validate_rollback[] = {
    {"target_revision", F_INT, 1, REVISION_MAX, NULL, NULL, OPTIONAL},
    {"expected_revision", F_INT, 1, REVISION_MAX, NULL, NULL, OPTIONAL},
    {"skip_hooks", F_BOOL, 0, 0, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

const struct field validate_tool_limits_request[] = {
    {"limits", F_ANY, 0, 0, NULL, NULL, OPTIONAL}, /* checked by the handler */
    {"expected_revision", F_INT, 1, REVISION_MAX, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

/* Upstream's SandboxProfile, narrowest first. */
static const char *const sandbox_profiles[] = {"inherited", "read_only", "workspace_write",
                                               "network_enabled", NULL};

const struct field validate_tool_limits[] = {
    {"max_input_bytes", F_INT, 1, TOOL_BYTES_MAX, NULL, NULL, REQUIRED},
    {"max_output_bytes", F_INT, 1, TOOL_BYTES_MAX, NULL, NULL, REQUIRED},
    {"max_result_envelope_bytes", F_INT, 1, TOOL_BYTES_MAX, NULL, NULL, REQUIRED},
    {"max_timeout_ms", F_INT, 1, TOOL_TIMEOUT_MAX_MS, NULL, NULL, REQUIRED},
    {"max_parallel_tools", F_INT, 1, TOOL_PARALLEL_MAX, NULL, NULL, REQUIRED},
    {"max_calls_per_turn", F_INT, 1, TOOL_CALLS_PER_TURN_MAX, NULL, NULL, REQUIRED},
    {"max_cumulative_output_bytes", F_INT, 1, TOOL_CUMULATIVE_BYTES_MAX, NULL, NULL, REQUIRED},
    {"max_cumulative_result_envelope_bytes", F_INT, 1, TOOL_CUMULATIVE_BYTES_MAX, NULL, NULL,
     REQUIRED},
    {"max_sandbox", F_STRING, 0, 32, sandbox_profiles, NULL, REQUIRED},
    FIELDS_END,
};

const struct field validate_permission_rules[] = {
    {"rules", F_ANY, 0, 0, NULL, NULL, REQUIRED}, /* perm_rules_parse checks it */
    {"expected_revision", F_INT, 1, REVISION_MAX, NULL, NULL, OPTIONAL},
    FIELDS_END,
};

const struct field validate_permission_check[] = {
    {"tool_name", F_STRING, 1, PERM_NAME_MAX_BYTES, NULL, NULL, REQUIRED},
    {"tool_call_id", F_STRING, 1, NAME_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"session_id", F_ID, 0, URI_ID_MAX_BYTES, NULL, NULL, OPTIONAL},
    {"mode_override", F_STRING, 0, 32, names_permission_modes, NULL, OPTIONAL},
    {"input", F_ANY, 0, 0, NULL, NULL, OPTIONAL}, /* rules never read a tool's input */
    FIELDS_END,
};

const struct field validate_permission_matrix[] = {
    {"session_id", F_ID, 0, URI_ID_MAX_BYTES, NULL, NULL, OPTIONAL},
    FIELDS_END,
};
