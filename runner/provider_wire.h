/*
 * provider_wire: what provider.c (the transfer, the conversation's checks,
 * the tool calls' assembly) shares with the three wire formats
 * (provider_responses.c, provider_chat.c, provider_messages.c). Private to
 * the runner's provider: nothing else includes it.
 *
 * A format renders the request body from a checked call (provider_prepare
 * has validated the conversation and the tools) and reads the reply one SSE
 * frame at a time: text goes to provider_text, tool call fragments to a
 * provider_tool found or opened by the format's own handle (the chat
 * delta's index, the Responses item id, the Messages content block index),
 * the end of the reply to k->done and provider_stop.
 */
#ifndef KHEISH_RUNNER_PROVIDER_WIRE_H
#define KHEISH_RUNNER_PROVIDER_WIRE_H

#include <jansson.h>
#include <sodium.h>
#include <stddef.h>

#include "provider.h"
#include "sse.h"

#define PROVIDER_KEY_MAX 64 /* of a tool call's handle in the stream */

/* One tool call being read from the stream. */
struct provider_tool {
    char key[PROVIDER_KEY_MAX]; /* the format's handle of the call */
    long order;                 /* where the model put it (index, output_index) */
    char *id, *name;
    char *args; /* the arguments so far, NUL-terminated */
    size_t len, cap;
    char *final;  /* the arguments a .done event repeated in full (Responses), or NULL */
    int too_long; /* the arguments passed PROVIDER_TOOL_ARGS_MAX_BYTES: dropped */
    int mismatch; /* the repeated arguments differ from the streamed ones */
};

/* One attempt in flight: its curl handle and what it has read. */
struct provider_transfer {
    CURL *h;
    struct curl_slist *hdrs;
    char *request;
    struct provider_call *c;
    const struct provider_wire *w;
    struct sse_parser sse;
    size_t reply_len; /* bytes of text and tool call arguments */
    int done, aborted, failed;
    char body[PROVIDER_ERROR_BODY_MAX + 1]; /* of an error answer */
    size_t body_len;
    crypto_hash_sha256_state answered; /* every byte of the answer, for response_digest */
    int sent;                          /* added to the multi handle */
    struct provider_tool *tools;       /* the reply's tool calls, in the order first seen */
    size_t ntools;
    enum provider_stop stop;
    char stop_detail[48];
};

/* A wire format: where it posts, how it renders the request, how it reads
 * one frame of the reply (data: the frame's JSON, NULL for `[DONE]`). The
 * frame reader returns 0, or -1 with c->error set (provider_fail) or after
 * provider_text or provider_tool_* failed. */
struct provider_wire {
    const char *path;
    json_t *(*body)(const struct provider_call *c);
    int (*frame)(struct provider_transfer *k, const struct sse_frame *f, const json_t *data);
};

extern const struct provider_wire provider_wire_responses, provider_wire_chat,
    provider_wire_messages;

/* Sets c->error from fmt (one %s: detail); returns -1. */
int provider_fail(struct provider_call *c, const char *fmt, const char *detail);

/* The message of a provider's error document, shortened. */
const char *provider_error_message(const json_t *data);

/* Counts len bytes of the reply (text and arguments) against its limit. */
int provider_reply_bytes(struct provider_transfer *k, size_t len);
/* A piece of the reply's text: to on_delta, within the reply's limit. */
int provider_text(struct provider_transfer *k, const char *text, size_t len);

/* The tool call of a handle: the last one opened with it, or NULL. */
struct provider_tool *provider_tool_find(struct provider_transfer *k, const char *key);
/* A new tool call (NULL with c->error past PROVIDER_TOOL_CALLS_MAX). */
struct provider_tool *provider_tool_open(struct provider_transfer *k, const char *key, long order);
/* Sets the call's id or name when the frame gives one (NULL or "": kept). */
int provider_tool_ids(struct provider_transfer *k, struct provider_tool *t, const char *id,
                      const char *name);
/* Appends a fragment of the call's arguments. */
int provider_tool_args(struct provider_transfer *k, struct provider_tool *t, const char *s,
                       size_t len);
/* The call's whole arguments, repeated once it is complete (Responses'
 * .done events): they win over the fragments, which must match them. */
int provider_tool_final(struct provider_transfer *k, struct provider_tool *t, const char *s);

/* A format's words for why a reply ended; a table ends with {NULL}. */
struct provider_stop_word {
    const char *word;
    enum provider_stop stop;
};
/* Why the reply ended: the format's word, and what words says it means
 * (PROVIDER_STOP_UNKNOWN for a word not there). */
void provider_stop(struct provider_transfer *k, const struct provider_stop_word *words,
                   const char *word);

/* provider_tools.c, for provider.c: the conversation's and the tools'
 * checks (-1 with c->error); the reply's calls, in the model's order, into
 * c->tool_calls (-1 with c->error when one has no id or name: nothing could
 * answer it); what the transfer's calls hold, freed. */
int provider_check(struct provider_call *c);
int provider_tools_out(struct provider_transfer *k);
void provider_tools_free(struct provider_transfer *k);

/* Rendering helpers (the call is checked). */
/* A tool call's input as a compact JSON text, "{}" when it has none. */
char *provider_call_arguments(const json_t *call);
/* How many tools are offered. */
size_t provider_tools_count(const struct provider_call *c);
/* An offered tool as {name, description, <schema_key>: its input_schema},
 * what every format's tool holds (a new object). */
json_t *provider_tool_core(const json_t *tool, const char *schema_key);
/* The offered tools, each as tool_of renders it (a new array). */
json_t *provider_tools_map(const struct provider_call *c, json_t *(*tool_of)(const json_t *tool));
/* The OpenAI formats' tool fields into body b: tools, tool_choice ("auto",
 * "none", "required", or the specific tool: {type: function, name} or,
 * nested, {type: function, function: {name}}) and parallel_tool_calls. */
void provider_openai_tools(json_t *b, const struct provider_call *c, json_t *tools, int nested);

#endif
