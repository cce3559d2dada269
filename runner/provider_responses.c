/*
 * The OpenAI Responses API (driver openai): POST {base}/responses.
 *
 * Request: {model, input, stream: true, max_output_tokens, tools,
 * tool_choice, parallel_tool_calls}. input has a user turn as {role: user,
 * content: text}; an assistant turn as {role: assistant, content: text}
 * (unless it has calls and no text), then one {type: function_call, call_id,
 * name, arguments} item per call; a tool result as {type:
 * function_call_output, call_id, output}. tools are [{type: function, name,
 * description, parameters, strict: false}]: strict is true when left out,
 * and strict mode refuses any schema outside its subset (every property
 * required, additionalProperties false), so the runner sends the tools'
 * schemas as they are, unenforced. tool_choice is "auto", "none",
 * "required" or {type: function, name}; parallel_tool_calls is false with
 * --serial-tools.
 *
 * Reply: response.output_text.delta carries text. A call is an output item
 * of type function_call: response.output_item.added (item: id, call_id,
 * name), response.function_call_arguments.delta (item_id, delta), then
 * response.function_call_arguments.done and response.output_item.done, each
 * with the whole arguments. response.completed ends the reply, and so does
 * response.incomplete (incomplete_details.reason: max_output_tokens,
 * content_filter); response.failed and error fail it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_wire.h"

static json_t *
input_items(const json_t *messages)
{
    json_t *out = json_array();
    size_t i, j;
    const json_t *m, *call;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *text = json_object_get(m, "text"), *calls = json_object_get(m, "tool_calls");
        if (!strcmp(role, "tool")) {
            json_array_append_new(out, json_pack("{s:s, s:O, s:O}", "type", "function_call_output",
                                                 "call_id", json_object_get(m, "tool_call_id"),
                                                 "output", json_object_get(m, "content")));
            continue;
        }
        if (json_string_length(text) > 0 || json_array_size(calls) == 0)
            json_array_append_new(out, json_pack("{s:s, s:s}", "role", role, "content",
                                                 text ? json_string_value(text) : ""));
        json_array_foreach(calls, j, call)
        {
            char *args = provider_call_arguments(call);
            json_array_append_new(out, json_pack("{s:s, s:O, s:O, s:s}", "type", "function_call",
                                                 "call_id", json_object_get(call, "id"), "name",
                                                 json_object_get(call, "name"), "arguments",
                                                 args ? args : "{}"));
            free(args);
        }
    }
    return out;
}

static json_t *
function_tool(const json_t *tool)
{
    json_t *e = json_pack("{s:s}", "type", "function");
    json_object_update_new(e, provider_tool_core(tool, "parameters"));
    json_object_set_new(e, "strict", json_false());
    return e;
}

static json_t *
responses_body(const struct provider_call *c)
{
    json_t *b = json_pack("{s:s, s:o, s:b}", "model", c->model, "input", input_items(c->messages),
                          "stream", 1);
    if (b && c->max_output_tokens > 0)
        json_object_set_new(b, "max_output_tokens", json_integer(c->max_output_tokens));
    if (b && provider_tools_count(c) > 0)
        provider_openai_tools(b, c, provider_tools_map(c, function_tool), 0);
    return b;
}

/* An output item's handle: its id, or its place when it has none. */
static const char *
item_key(const json_t *item_id, long index, char out[PROVIDER_KEY_MAX])
{
    if (json_is_string(item_id))
        snprintf(out, PROVIDER_KEY_MAX, "%s", json_string_value(item_id));
    else
        snprintf(out, PROVIDER_KEY_MAX, "#%ld", index);
    return out;
}

/* The events of function_call items: output_item.added (call id, name),
 * function_call_arguments.delta (a piece of the arguments), then
 * function_call_arguments.done and output_item.done (the whole arguments,
 * which must match the pieces). Other items (messages, reasoning) are not
 * calls. */
static int
function_call(struct provider_transfer *k, const char *type, const json_t *data)
{
    int whole = !strncmp(type, "response.output_item.", 21); /* the item itself */
    const json_t *src = whole ? json_object_get(data, "item") : data;
    const char *item_type = json_string_value(json_object_get(src, "type"));
    const json_t *args = json_object_get(src, "arguments");
    long index = (long)json_integer_value(json_object_get(data, "output_index"));
    char key[PROVIDER_KEY_MAX];
    if (whole && (item_type == NULL || strcmp(item_type, "function_call")))
        return 0;
    item_key(json_object_get(src, whole ? "id" : "item_id"), index, key);
    struct provider_tool *t = provider_tool_find(k, key);
    if (t == NULL && (t = provider_tool_open(k, key, index)) == NULL)
        return -1;
    if (whole && provider_tool_ids(k, t, json_string_value(json_object_get(src, "call_id")),
                                   json_string_value(json_object_get(src, "name"))) < 0)
        return -1;
    if (!strcmp(type, "response.function_call_arguments.delta")) {
        const json_t *d = json_object_get(data, "delta");
        if (!json_is_string(d))
            return provider_fail(k->c, "malformed stream: an arguments delta without text%s", "");
        return provider_tool_args(k, t, json_string_value(d), json_string_length(d));
    }
    if (strcmp(type, "response.output_item.added") && json_is_string(args))
        return provider_tool_final(k, t, json_string_value(args));
    return 0;
}

/* response.completed, and the reasons of response.incomplete. */
static const struct provider_stop_word stops[] = {
    {"completed", PROVIDER_STOP_END},
    {"max_output_tokens", PROVIDER_STOP_MAX_TOKENS},
    {"content_filter", PROVIDER_STOP_FILTERED},
    {NULL, 0},
};

static int
responses_frame(struct provider_transfer *k, const struct sse_frame *f, const json_t *data)
{
    const char *type = json_string_value(json_object_get(data, "type"));
    const json_t *response = json_object_get(data, "response");
    (void)f;
    if (type == NULL)
        return 0;
    if (!strcmp(type, "response.output_text.delta")) {
        const json_t *d = json_object_get(data, "delta");
        if (!json_is_string(d))
            return provider_fail(k->c, "malformed stream: a text delta without text%s", "");
        return provider_text(k, json_string_value(d), json_string_length(d));
    }
    if (!strncmp(type, "response.output_item.", 21) ||
        !strncmp(type, "response.function_call_arguments.", 33))
        return function_call(k, type, data);
    int completed = !strcmp(type, "response.completed");
    if (completed || !strcmp(type, "response.incomplete")) {
        const char *why = json_string_value(
            json_object_get(json_object_get(response, "incomplete_details"), "reason"));
        k->done = 1;
        provider_stop(k, stops, completed ? "completed" : why ? why : "incomplete");
    } else if (!strcmp(type, "response.failed") || !strcmp(type, "error")) {
        return provider_fail(k->c, "the provider failed the response: %.300s",
                             provider_error_message(response ? response : data));
    }
    return 0;
}

const struct provider_wire provider_wire_responses = {
    .path = "/responses",
    .body = responses_body,
    .frame = responses_frame,
};
