/*
 * The Anthropic Messages API (driver anthropic): POST {base}/messages.
 *
 * Request: {model, max_tokens (required: ours when the run sets none),
 * messages, stream: true, tools, tool_choice}. A user turn is {role: user,
 * content: text}; an assistant turn is {role: assistant, content} whose
 * blocks are its text, then one {type: tool_use, id, name, input} per call;
 * a tool result is a {type: tool_result, tool_use_id, content, is_error}
 * block of a user message. The API wants every result of an assistant
 * message's calls in the one user message after it, results first, so the
 * results of one turn (and a user text right after them) share one user
 * message; a message of one text block is sent as a plain string, as
 * before tools. tools are [{name, description, input_schema}]; tool_choice
 * is {type: auto | any (required) | tool (specific, with name), and
 * disable_parallel_tool_use (--serial-tools)} or {type: none}. Unlike
 * upstream Kheish, tool_choice none still sends the tools: a request whose
 * conversation holds tool_use or tool_result blocks must define tools.
 *
 * Reply: `event:` frames. content_block_start opens block `index`: a text
 * block, or a tool_use block (id, name, input {}); content_block_delta adds
 * to it, text_delta (text) or input_json_delta (partial_json, a piece of
 * the call's input as JSON text); content_block_stop closes it.
 * message_delta says why it stopped (delta.stop_reason: end_turn,
 * stop_sequence, tool_use, max_tokens, refusal, pause_turn); message_stop
 * ends the reply; error fails it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_wire.h"

/* The content blocks of one turn of the conversation (*tooly: it has a
 * tool_use or tool_result block). */
static json_t *
blocks_of(const json_t *m, const char *role, int *tooly)
{
    json_t *blocks = json_array();
    const json_t *text = json_object_get(m, "text"), *calls = json_object_get(m, "tool_calls");
    size_t j;
    const json_t *call;
    *tooly = !strcmp(role, "tool") || json_array_size(calls) > 0;
    if (!strcmp(role, "tool")) {
        json_array_append_new(blocks,
                              json_pack("{s:s, s:O, s:O, s:b}", "type", "tool_result",
                                        "tool_use_id", json_object_get(m, "tool_call_id"),
                                        "content", json_object_get(m, "content"), "is_error",
                                        json_is_true(json_object_get(m, "is_error"))));
        return blocks;
    }
    if (json_string_length(text) > 0)
        json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "text", "text", text));
    json_array_foreach(calls, j, call)
    {
        const json_t *in = json_object_get(call, "input");
        json_array_append_new(
            blocks,
            json_pack("{s:s, s:O, s:O, s:o}", "type", "tool_use", "id", json_object_get(call, "id"),
                      "name", json_object_get(call, "name"), "input",
                      json_is_object(in) ? json_incref((json_t *)in) : json_object()));
    }
    return blocks;
}

/* A message's content: a lone text block as the plain string, no block as "". */
static json_t *
content_of(json_t *blocks)
{
    const json_t *b = json_array_get(blocks, 0);
    if (json_array_size(blocks) == 0)
        return json_string("");
    if (json_array_size(blocks) == 1 &&
        !strcmp(json_string_value(json_object_get(b, "type")), "text"))
        return json_incref(json_object_get(b, "text"));
    return json_incref(blocks);
}

static json_t *
anthropic_messages(const json_t *messages)
{
    json_t *out = json_array(), *prev = NULL;
    int prev_tooly = 0, tooly;
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *as = strcmp(role, "tool") ? role : "user";
        json_t *blocks = blocks_of(m, role, &tooly);
        if (prev && !strcmp(json_string_value(json_object_get(prev, "role")), as) &&
            (tooly || prev_tooly)) {
            json_array_extend(json_object_get(prev, "content"), blocks);
            json_decref(blocks);
            prev_tooly = 1;
            continue;
        }
        prev = json_pack("{s:s, s:o}", "role", as, "content", blocks);
        json_array_append_new(out, prev);
        prev_tooly = tooly;
    }
    for (i = 0; i < json_array_size(out); i++) {
        json_t *msg = json_array_get(out, i);
        json_object_set_new(msg, "content", content_of(json_object_get(msg, "content")));
    }
    return out;
}

static json_t *
tool_choice(const struct provider_call *c)
{
    static const char *const types[] = {"auto", "none", "any", "tool"};
    if (c->tool_choice == PROVIDER_TOOL_CHOICE_NONE)
        return json_pack("{s:s}", "type", "none");
    json_t *tc = json_pack("{s:s}", "type", types[c->tool_choice]);
    if (c->tool_choice == PROVIDER_TOOL_CHOICE_SPECIFIC)
        json_object_set_new(tc, "name", json_string(c->tool_name));
    json_object_set_new(tc, "disable_parallel_tool_use", json_boolean(c->serial_tools));
    return tc;
}

static json_t *
custom_tool(const json_t *tool)
{
    return provider_tool_core(tool, "input_schema");
}

static json_t *
messages_body(const struct provider_call *c)
{
    json_t *b = json_pack(
        "{s:s, s:I, s:o, s:b}", "model", c->model, "max_tokens",
        (json_int_t)(c->max_output_tokens > 0 ? c->max_output_tokens : PROVIDER_DEFAULT_MAX_TOKENS),
        "messages", anthropic_messages(c->messages), "stream", 1);
    if (b == NULL || provider_tools_count(c) == 0)
        return b;
    json_object_set_new(b, "tools", provider_tools_map(c, custom_tool));
    json_object_set_new(b, "tool_choice", tool_choice(c));
    return b;
}

/* A tool_use block starts: a call, at the block's index. */
static int
tool_use(struct provider_transfer *k, long index, const json_t *block)
{
    char key[PROVIDER_KEY_MAX];
    const json_t *in = json_object_get(block, "input");
    snprintf(key, sizeof key, "%ld", index);
    struct provider_tool *t = provider_tool_open(k, key, index);
    if (t == NULL || provider_tool_ids(k, t, json_string_value(json_object_get(block, "id")),
                                       json_string_value(json_object_get(block, "name"))) < 0)
        return -1;
    if (json_object_size(in) == 0) /* the input streams as input_json_delta */
        return 0;
    char *s = json_dumps(in, JSON_COMPACT);
    int r = s ? provider_tool_args(k, t, s, strlen(s)) : provider_fail(k->c, "out of memory%s", "");
    free(s);
    return r;
}

static int
block_delta(struct provider_transfer *k, long index, const json_t *d)
{
    const char *type = json_string_value(json_object_get(d, "type"));
    const json_t *text = json_object_get(d, "text"), *part = json_object_get(d, "partial_json");
    char key[PROVIDER_KEY_MAX];
    if (type && !strcmp(type, "text_delta") && json_is_string(text))
        return provider_text(k, json_string_value(text), json_string_length(text));
    if (type == NULL || strcmp(type, "input_json_delta"))
        return 0; /* thinking, signatures, citations: not ours */
    snprintf(key, sizeof key, "%ld", index);
    struct provider_tool *t = provider_tool_find(k, key);
    if (t == NULL) /* the input of a server tool's block (server_tool_use): not a call of ours */
        return 0;
    if (!json_is_string(part))
        return provider_fail(k->c, "malformed stream: an input_json_delta without partial_json%s",
                             "");
    return provider_tool_args(k, t, json_string_value(part), json_string_length(part));
}

static const struct provider_stop_word stops[] = {
    {"end_turn", PROVIDER_STOP_END},
    {"stop_sequence", PROVIDER_STOP_END},
    {"tool_use", PROVIDER_STOP_TOOL_CALLS},
    {"max_tokens", PROVIDER_STOP_MAX_TOKENS},
    {"model_context_window_exceeded", PROVIDER_STOP_MAX_TOKENS},
    {"refusal", PROVIDER_STOP_FILTERED},
    {NULL, 0}, /* pause_turn and what comes next: unknown */
};

static int
messages_frame(struct provider_transfer *k, const struct sse_frame *f, const json_t *data)
{
    const char *type = json_string_value(json_object_get(data, "type"));
    const json_t *block = json_object_get(data, "content_block");
    long index = (long)json_integer_value(json_object_get(data, "index"));
    const char *why =
        json_string_value(json_object_get(json_object_get(data, "delta"), "stop_reason"));
    const char *btype = json_string_value(json_object_get(block, "type"));
    const json_t *text = json_object_get(block, "text");
    (void)f;
    if (type == NULL)
        return 0;
    if (!strcmp(type, "content_block_start") && btype && !strcmp(btype, "tool_use"))
        return tool_use(k, index, block);
    if (!strcmp(type, "content_block_start") && json_is_string(text))
        return provider_text(k, json_string_value(text), json_string_length(text));
    if (!strcmp(type, "content_block_delta"))
        return block_delta(k, index, json_object_get(data, "delta"));
    if (!strcmp(type, "message_delta") && why)
        provider_stop(k, stops, why);
    k->done |= !strcmp(type, "message_stop");
    if (!strcmp(type, "error"))
        return provider_fail(k->c, "the provider failed the message: %.300s",
                             provider_error_message(data));
    return 0;
}

const struct provider_wire provider_wire_messages = {
    .path = "/messages",
    .body = messages_body,
    .frame = messages_frame,
};
