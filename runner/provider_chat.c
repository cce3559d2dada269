/*
 * OpenAI-compatible chat completions (drivers openrouter and xai): POST
 * {base}/chat/completions.
 *
 * Request: {model, messages, stream: true, max_tokens, tools, tool_choice,
 * parallel_tool_calls}. messages has a user turn as {role: user, content};
 * an assistant turn as {role: assistant, content} and, when it made calls,
 * content (null without text) and tool_calls [{id, type: function,
 * function: {name, arguments}}]; a tool result as {role: tool,
 * tool_call_id, content}. tools are [{type: function, function: {name,
 * description, parameters}}]; tool_choice is "auto", "none", "required" or
 * {type: function, function: {name}}; parallel_tool_calls is false with
 * --serial-tools. The API refuses tool_choice and parallel_tool_calls
 * without tools, so none of the three is sent without tools.
 *
 * Reply: `data:` chunks, then `data: [DONE]`. choices[0].delta.content
 * carries text; choices[0].delta.tool_calls[] carries fragments of calls,
 * each with the call's index (the first fragment of a call also has its id
 * and function.name; function.arguments comes in pieces). Fragments of
 * parallel calls are told apart by index; a provider that gives several
 * calls one index tells them apart by a new id, and one that gives no index
 * by the id or, without one, the call before. choices[0].finish_reason
 * says why it stopped: stop, tool_calls, length, content_filter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_wire.h"

static json_t *
tool_calls_of(const json_t *calls)
{
    json_t *out = json_array();
    size_t j;
    const json_t *call;
    json_array_foreach(calls, j, call)
    {
        char *args = provider_call_arguments(call);
        json_array_append_new(out, json_pack("{s:O, s:s, s:{s:O, s:s}}", "id",
                                             json_object_get(call, "id"), "type", "function",
                                             "function", "name", json_object_get(call, "name"),
                                             "arguments", args ? args : "{}"));
        free(args);
    }
    return out;
}

static json_t *
chat_messages(const json_t *messages)
{
    json_t *out = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *text = json_object_get(m, "text"), *calls = json_object_get(m, "tool_calls");
        json_t *e;
        if (!strcmp(role, "tool"))
            e = json_pack("{s:s, s:O, s:O}", "role", "tool", "tool_call_id",
                          json_object_get(m, "tool_call_id"), "content",
                          json_object_get(m, "content"));
        else if (json_array_size(calls) > 0)
            e = json_pack("{s:s, s:O, s:o}", "role", role, "content",
                          json_string_length(text) > 0 ? text : json_null(), "tool_calls",
                          tool_calls_of(calls));
        else
            e = json_pack("{s:s, s:s}", "role", role, "content",
                          text ? json_string_value(text) : "");
        json_array_append_new(out, e);
    }
    return out;
}

static json_t *
function_tool(const json_t *tool)
{
    return json_pack("{s:s, s:o}", "type", "function", "function",
                     provider_tool_core(tool, "parameters"));
}

static json_t *
chat_body(const struct provider_call *c)
{
    json_t *b = json_pack("{s:s, s:o, s:b}", "model", c->model, "messages",
                          chat_messages(c->messages), "stream", 1);
    if (b && c->max_output_tokens > 0)
        json_object_set_new(b, "max_tokens", json_integer(c->max_output_tokens));
    if (b && provider_tools_count(c) > 0)
        provider_openai_tools(b, c, provider_tools_map(c, function_tool), 1);
    return b;
}

/* The call a fragment belongs to, opened when it starts one. */
static struct provider_tool *
fragment_call(struct provider_transfer *k, const json_t *frag, const char *id)
{
    const json_t *index = json_object_get(frag, "index");
    char key[PROVIDER_KEY_MAX] = "";
    struct provider_tool *t = NULL;
    if (json_is_integer(index)) {
        snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(index));
        t = provider_tool_find(k, key);
        if (t && id && t->id && strcmp(t->id, id)) /* another call at the same index */
            t = NULL;
        return t ? t : provider_tool_open(k, key, (long)json_integer_value(index));
    }
    for (size_t i = k->ntools; id && i-- > 0;)
        if (k->tools[i].id && !strcmp(k->tools[i].id, id))
            return &k->tools[i];
    if (id)
        return provider_tool_open(k, "", (long)k->ntools);
    if (k->ntools == 0)
        provider_fail(k->c, "malformed stream: a tool call fragment of no call%s", "");
    return k->ntools ? &k->tools[k->ntools - 1] : NULL;
}

static int
tool_fragment(struct provider_transfer *k, const json_t *frag)
{
    const json_t *fn = json_object_get(frag, "function");
    const json_t *args = json_object_get(fn, "arguments");
    const char *id = json_string_value(json_object_get(frag, "id"));
    struct provider_tool *t = fragment_call(k, frag, id && *id ? id : NULL);
    if (t == NULL ||
        provider_tool_ids(k, t, id, json_string_value(json_object_get(fn, "name"))) < 0)
        return -1;
    if (json_is_string(args))
        return provider_tool_args(k, t, json_string_value(args), json_string_length(args));
    if (json_is_object(args)) { /* some compatible providers send the object itself */
        char *s = json_dumps(args, JSON_COMPACT);
        int r =
            s ? provider_tool_args(k, t, s, strlen(s)) : provider_fail(k->c, "out of memory%s", "");
        free(s);
        return r;
    }
    return 0;
}

static const struct provider_stop_word stops[] = {
    {"stop", PROVIDER_STOP_END},
    {"tool_calls", PROVIDER_STOP_TOOL_CALLS},
    {"function_call", PROVIDER_STOP_TOOL_CALLS}, /* the functions API's, before tools */
    {"length", PROVIDER_STOP_MAX_TOKENS},
    {"content_filter", PROVIDER_STOP_FILTERED},
    {NULL, 0},
};

static int
chat_frame(struct provider_transfer *k, const struct sse_frame *f, const json_t *data)
{
    if (!strcmp(f->data, "[DONE]")) {
        k->done = 1;
        return 0;
    }
    if (json_object_get(data, "error"))
        return provider_fail(k->c, "the provider failed the completion: %.300s",
                             provider_error_message(data));
    const json_t *choice = json_array_get(json_object_get(data, "choices"), 0);
    const json_t *delta = json_object_get(choice, "delta");
    const json_t *text = json_object_get(delta, "content");
    const char *why = json_string_value(json_object_get(choice, "finish_reason"));
    size_t i;
    const json_t *frag;
    if (json_is_string(text) &&
        provider_text(k, json_string_value(text), json_string_length(text)) < 0)
        return -1;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, frag)
    {
        if (tool_fragment(k, frag) < 0)
            return -1;
    }
    if (why)
        provider_stop(k, stops, why);
    return 0;
}

const struct provider_wire provider_wire_chat = {
    .path = "/chat/completions",
    .body = chat_body,
    .frame = chat_frame,
};
