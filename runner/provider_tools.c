/*
 * The tool calls' side of a provider call (provider_wire.h): the
 * conversation and the offered tools checked before anything is sent, and
 * the reply's tool calls assembled from the fragments each wire format
 * reads, then parsed into provider_call.tool_calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_wire.h"

/* ---- tool calls, as the reply streams them ------------------------------- */

struct provider_tool *
provider_tool_find(struct provider_transfer *k, const char *key)
{
    for (size_t i = k->ntools; i-- > 0;)
        if (!strcmp(k->tools[i].key, key))
            return &k->tools[i];
    return NULL;
}

struct provider_tool *
provider_tool_open(struct provider_transfer *k, const char *key, long order)
{
    if (k->ntools == PROVIDER_TOOL_CALLS_MAX) {
        snprintf(k->c->error, sizeof k->c->error, "the reply has more than %d tool calls",
                 PROVIDER_TOOL_CALLS_MAX);
        return NULL;
    }
    if (k->tools == NULL &&
        (k->tools = calloc(PROVIDER_TOOL_CALLS_MAX, sizeof *k->tools)) == NULL) {
        provider_fail(k->c, "out of memory%s", "");
        return NULL;
    }
    struct provider_tool *t = &k->tools[k->ntools++];
    snprintf(t->key, sizeof t->key, "%s", key);
    t->order = order;
    return t;
}

/* Sets *field to s unless s is empty or *field is set. */
static int
tool_field(struct provider_transfer *k, char **field, const char *s, const char *what)
{
    if (s == NULL || *s == '\0' || *field != NULL)
        return 0;
    if (strlen(s) > PROVIDER_TOOL_ID_MAX_BYTES)
        return provider_fail(k->c, "malformed stream: a tool call's %s is longer than the limit",
                             what);
    if ((*field = strdup(s)) == NULL)
        return provider_fail(k->c, "out of memory%s", "");
    return 0;
}

int
provider_tool_ids(struct provider_transfer *k, struct provider_tool *t, const char *id,
                  const char *name)
{
    return tool_field(k, &t->id, id, "id") < 0 || tool_field(k, &t->name, name, "name") < 0 ? -1
                                                                                            : 0;
}

/* Forgets the arguments of a call that passed the limit. */
static void
tool_drop(struct provider_tool *t)
{
    t->too_long = 1;
    free(t->args);
    t->args = NULL;
    t->len = t->cap = 0;
}

int
provider_tool_args(struct provider_transfer *k, struct provider_tool *t, const char *s, size_t len)
{
    if (provider_reply_bytes(k, len) < 0)
        return -1;
    if (t->too_long || len == 0)
        return 0;
    if (t->len + len > PROVIDER_TOOL_ARGS_MAX_BYTES) {
        tool_drop(t);
        return 0;
    }
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *grown = realloc(t->args, cap);
        if (grown == NULL)
            return provider_fail(k->c, "out of memory%s", "");
        t->args = grown;
        t->cap = cap;
    }
    memcpy(t->args + t->len, s, len);
    t->len += len;
    t->args[t->len] = '\0';
    return 0;
}

int
provider_tool_final(struct provider_transfer *k, struct provider_tool *t, const char *s)
{
    size_t n = strlen(s);
    if (t->too_long || (t->len == 0 && n == 0))
        return 0;
    if (t->len == 0)
        return provider_tool_args(k, t, s, n);
    if (t->len == n && !memcmp(t->args, s, n))
        return 0;
    /* the stream contradicts itself: the whole arguments win, and the call
     * says so (an assembly bug would show here, not as a wrong call) */
    t->mismatch = 1;
    t->len = 0;
    return provider_tool_args(k, t, s, n);
}

void
provider_tools_free(struct provider_transfer *k)
{
    for (size_t i = 0; i < k->ntools; i++) {
        free(k->tools[i].id);
        free(k->tools[i].name);
        free(k->tools[i].args);
    }
    free(k->tools);
    k->tools = NULL;
    k->ntools = 0;
}

static int
blank(const char *s, size_t len)
{
    return strspn(s, " \t\r\n") == len;
}

/* One call as provider_call.tool_calls has it: its arguments parsed, or
 * why they cannot be. */
static json_t *
tool_out(const struct provider_tool *t)
{
    const char *raw = t->args ? t->args : "";
    char why[200] = "";
    json_t *input = NULL;
    json_error_t je;
    if (t->too_long)
        snprintf(why, sizeof why, "the arguments are longer than the limit (%d bytes)",
                 PROVIDER_TOOL_ARGS_MAX_BYTES);
    else if (t->mismatch)
        snprintf(why, sizeof why, "the streamed arguments differ from the final ones");
    else if (blank(raw, t->len))
        input = json_object(); /* no arguments: a tool without parameters */
    else if ((input = json_loadb(raw, t->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je)) ==
             NULL)
        snprintf(why, sizeof why, "the arguments are not JSON: %.120s (at byte %d)", je.text,
                 je.position);
    else if (!json_is_object(input)) {
        snprintf(why, sizeof why, "the arguments are JSON but not an object");
        json_decref(input);
        input = NULL;
    }
    json_t *e =
        json_pack("{s:s, s:s, s:s%}", "id", t->id, "name", t->name, "arguments", raw, t->len);
    if (e && input)
        json_object_set_new(e, "input", input);
    else if (e)
        json_object_set_new(e, "error", json_string(why));
    else
        json_decref(input);
    return e;
}

static int
by_order(const void *a, const void *b)
{
    const struct provider_tool *x = *(const struct provider_tool *const *)a;
    const struct provider_tool *y = *(const struct provider_tool *const *)b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x < y ? -1 : x > y; /* first seen first */
}

int
provider_tools_out(struct provider_transfer *k)
{
    struct provider_call *c = k->c;
    struct provider_tool *sorted[PROVIDER_TOOL_CALLS_MAX];
    for (size_t i = 0; i < k->ntools; i++) {
        sorted[i] = &k->tools[i];
        if (k->tools[i].id == NULL || k->tools[i].name == NULL)
            return provider_fail(c, "malformed stream: a tool call without %s",
                                 k->tools[i].id ? "a name" : "an id");
    }
    qsort(sorted, k->ntools, sizeof *sorted, by_order);
    for (size_t i = 0; i < k->ntools; i++) {
        json_t *e = tool_out(sorted[i]);
        if (e == NULL || json_array_append_new(c->tool_calls, e) < 0)
            return provider_fail(c, "malformed stream: a tool call is not UTF-8%s", "");
    }
    return 0;
}

/* ---- the conversation and the tools, checked before anything is sent ----- */

static int
bad(struct provider_call *c, size_t i, const char *what)
{
    snprintf(c->error, sizeof c->error, "the conversation's message %zu %s", i, what);
    return -1;
}

static int
short_string(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0 &&
           json_string_length(v) <= PROVIDER_TOOL_ID_MAX_BYTES;
}

/* An assistant message's calls: the ids now waiting for a result. */
static int
check_calls(struct provider_call *c, size_t i, const json_t *calls, json_t *pending)
{
    size_t j;
    const json_t *call;
    if (calls && !json_is_array(calls))
        return bad(c, i, "has tool_calls that are not an array");
    json_array_foreach(calls, j, call)
    {
        const char *id = json_string_value(json_object_get(call, "id"));
        if (!short_string(json_object_get(call, "id")) ||
            !short_string(json_object_get(call, "name")))
            return bad(c, i, "has a tool call without a valid id and name");
        if (json_object_get(pending, id))
            return bad(c, i, "has two tool calls with the same id");
        json_object_set_new(pending, id, json_true());
    }
    return 0;
}

/* Every message's shape, and every call answered once, before the next turn. */
static int
check_messages(struct provider_call *c)
{
    size_t i;
    const json_t *m;
    int rc = 0;
    if (!json_is_array(c->messages))
        return provider_fail(c, "the conversation is not an array%s", "");
    json_t *pending = json_object();
    json_array_foreach(c->messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *text = json_object_get(m, "text");
        if (role == NULL)
            rc = bad(c, i, "has no role");
        else if (!strcmp(role, "tool")) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            if (id == NULL || !json_is_string(json_object_get(m, "content")) ||
                (json_object_get(m, "is_error") &&
                 !json_is_boolean(json_object_get(m, "is_error"))))
                rc = bad(c, i, "is a tool result without tool_call_id, content and is_error");
            else if (json_object_del(pending, id) < 0)
                rc = bad(c, i, "answers a tool call the assistant message before it did not make");
        } else if (json_object_size(pending) > 0)
            rc = bad(c, i, "follows tool calls that have no result");
        else if (!strcmp(role, "user") && !json_is_string(text))
            rc = bad(c, i, "is a user message without text");
        else if (!strcmp(role, "assistant") && text && !json_is_string(text))
            rc = bad(c, i, "is an assistant message whose text is not a string");
        else if (!strcmp(role, "assistant"))
            rc = check_calls(c, i, json_object_get(m, "tool_calls"), pending);
        else if (strcmp(role, "user"))
            rc = bad(c, i, "has a role other than user, assistant and tool");
        if (rc < 0)
            break;
    }
    if (rc == 0 && json_object_size(pending) > 0)
        rc = provider_fail(c, "the conversation ends with tool calls that have no result%s", "");
    json_decref(pending);
    return rc;
}

size_t
provider_tools_count(const struct provider_call *c)
{
    return json_array_size(c->tools);
}

json_t *
provider_tool_core(const json_t *tool, const char *schema_key)
{
    json_t *e = json_pack("{s:O}", "name", json_object_get(tool, "name"));
    json_t *schema = json_object_get(tool, "input_schema");
    if (json_object_get(tool, "description"))
        json_object_set(e, "description", json_object_get(tool, "description"));
    json_object_set_new(e, schema_key,
                        schema ? json_incref(schema)
                               : json_pack("{s:s, s:{}}", "type", "object", "properties"));
    return e;
}

json_t *
provider_tools_map(const struct provider_call *c, json_t *(*tool_of)(const json_t *tool))
{
    json_t *out = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(c->tools, i, t)
    {
        json_array_append_new(out, tool_of(t));
    }
    return out;
}

void
provider_openai_tools(json_t *b, const struct provider_call *c, json_t *tools, int nested)
{
    static const char *const words[] = {"auto", "none", "required"};
    json_t *choice;
    if (c->tool_choice != PROVIDER_TOOL_CHOICE_SPECIFIC)
        choice = json_string(words[c->tool_choice]);
    else if (nested)
        choice = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", c->tool_name);
    else
        choice = json_pack("{s:s, s:s}", "type", "function", "name", c->tool_name);
    json_object_set_new(b, "tools", tools);
    json_object_set_new(b, "tool_choice", choice);
    json_object_set_new(b, "parallel_tool_calls", json_boolean(!c->serial_tools));
}

/* A tool's name as both formats allow it: 1..64 of [A-Za-z0-9_-]. */
static int
tool_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= PROVIDER_TOOL_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* The tools offered and what the model may do with them. */
static int
check_tools(struct provider_call *c)
{
    size_t i, j, n = provider_tools_count(c);
    const json_t *t;
    int named = 0;
    if (c->tools && !json_is_array(c->tools))
        return provider_fail(c, "the tools are not an array%s", "");
    if (n > PROVIDER_TOOLS_MAX)
        return provider_fail(c, "more tools than the limit%s", "");
    json_array_foreach(c->tools, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const json_t *d = json_object_get(t, "description"),
                     *s = json_object_get(t, "input_schema");
        if (!tool_name_ok(name) || (d && !json_is_string(d)) || (s && !json_is_object(s))) {
            snprintf(c->error, sizeof c->error,
                     "tool %zu is not {name (1-64 of A-Za-z0-9_-), description, input_schema "
                     "(an object)}",
                     i);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (!strcmp(name,
                        json_string_value(json_object_get(json_array_get(c->tools, j), "name"))))
                return provider_fail(c, "two tools are named %s", name);
        named |= c->tool_name && !strcmp(name, c->tool_name);
    }
    switch (c->tool_choice) {
    case PROVIDER_TOOL_CHOICE_AUTO:
    case PROVIDER_TOOL_CHOICE_NONE:
        return 0;
    case PROVIDER_TOOL_CHOICE_REQUIRED:
        return n ? 0 : provider_fail(c, "tool_choice required, but no tool is offered%s", "");
    case PROVIDER_TOOL_CHOICE_SPECIFIC:
        return named ? 0 : provider_fail(c, "tool_choice names a tool that is not offered%s", "");
    }
    return provider_fail(c, "unknown tool_choice%s", "");
}

char *
provider_call_arguments(const json_t *call)
{
    const json_t *in = json_object_get(call, "input");
    return json_is_object(in) ? json_dumps(in, JSON_COMPACT) : strdup("{}");
}

int
provider_check(struct provider_call *c)
{
    return check_messages(c) < 0 || check_tools(c) < 0 ? -1 : 0;
}
