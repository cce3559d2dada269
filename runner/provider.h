/*
 * provider: one model call over HTTP (libcurl), streamed, in the wire format
 * of the route's driver:
 *
 *   openai                 POST {base}/responses          (Responses API)
 *   openrouter, xai        POST {base}/chat/completions   (OpenAI-compatible chat)
 *   anthropic              POST {base}/messages           (Messages API)
 *
 * {base} is the route's base_url (it includes the version path, e.g.
 * https://api.openai.com/v1), or the driver's public endpoint. The google
 * driver has no wire format here: its calls fail with a clear error. One
 * call is one attempt, a transfer on the caller's curl multi handle (whose
 * connection cache keeps provider connections open between runs); the
 * caller drives it, and retries what PROVIDER_RETRY says may be retried.
 *
 * Tools (issue 15). The conversation (provider_call.messages) is
 * provider-neutral, the runner's to store; oldest first, each message is
 *
 *   {"role": "user", "text": "..."}
 *   {"role": "assistant", "text": "...",                    text optional
 *    "tool_calls": [{"id": "...", "name": "...", "input": {...}}]}  optional
 *   {"role": "tool", "tool_call_id": "...", "content": "...",
 *    "is_error": false}                                      is_error optional
 *
 * and every call of an assistant message has exactly one tool message
 * before the next user or assistant message (provider_prepare refuses a
 * conversation that breaks this: every wire format would). A call's input
 * is what goes back to the model; a call without an object input (its
 * arguments were malformed) goes back as {}. Other members are ignored, so
 * the entries of provider_call.tool_calls may be stored as they are.
 * is_error reaches the model only through the Messages API: the OpenAI
 * formats have no such field, so an error result's content should say it is
 * one. The tools offered are [{"name", "description", "input_schema"}]
 * (description and input_schema optional, the schema {"type": "object",
 * "properties": {}} when missing). Each format's shapes are described in
 * its file: provider_responses.c, provider_chat.c, provider_messages.c;
 * provider_tools.c checks the conversation and assembles the reply's calls.
 */
#ifndef KHEISH_RUNNER_PROVIDER_H
#define KHEISH_RUNNER_PROVIDER_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "routes.h"

#define PROVIDER_REPLY_MAX_BYTES    (4 * 1024 * 1024) /* of text and tool call arguments */
#define PROVIDER_ERROR_BODY_MAX     8192              /* kept of an error answer */
#define PROVIDER_CONNECT_TIMEOUT_S  10
#define PROVIDER_IDLE_TIMEOUT_S     300  /* no byte for this long: the call failed */
#define PROVIDER_DEFAULT_MAX_TOKENS 4096 /* Anthropic requires max_tokens */
#define PROVIDER_ANTHROPIC_VERSION  "2023-06-01"
#define PROVIDER_TOOLS_MAX          128 /* tools offered in one call */
#define PROVIDER_TOOL_NAME_MAX      64  /* bytes of a tool name: [A-Za-z0-9_-] */
#define PROVIDER_TOOL_CALLS_MAX     64  /* tool calls in one reply; more fails the attempt */
#define PROVIDER_TOOL_ID_MAX_BYTES  256 /* of a call's id or name; longer fails the attempt */
/* Of one call's arguments: longer ones are dropped, and are that call's error. */
#define PROVIDER_TOOL_ARGS_MAX_BYTES (256 * 1024)

enum provider_rc {
    PROVIDER_OK,      /* the reply is complete */
    PROVIDER_RETRY,   /* 429, 5xx or no connection: worth another attempt */
    PROVIDER_FAILED,  /* anything else: error says what */
    PROVIDER_ABORTED, /* on_delta asked to stop */
};

/* What the model may do with the tools offered (the contract's
 * --tool-choice auto|none|required|specific --tool-name). */
enum provider_tool_choice {
    PROVIDER_TOOL_CHOICE_AUTO,     /* call tools or not (the default) */
    PROVIDER_TOOL_CHOICE_NONE,     /* call none (the tools are still described) */
    PROVIDER_TOOL_CHOICE_REQUIRED, /* call at least one */
    PROVIDER_TOOL_CHOICE_SPECIFIC, /* call tool_name */
};

/* Why the reply ended, whatever the format said (stop_detail keeps its word). */
enum provider_stop {
    PROVIDER_STOP_UNKNOWN,    /* no reason given, or one this runner does not know */
    PROVIDER_STOP_END,        /* the model ended its turn */
    PROVIDER_STOP_TOOL_CALLS, /* it waits for the results of tool_calls */
    PROVIDER_STOP_MAX_TOKENS, /* cut at the output token limit */
    PROVIDER_STOP_FILTERED,   /* a content filter or a refusal */
};

struct provider_transfer;

struct provider_call {
    const struct route *route;
    const char *model;
    const char *api_key;
    const json_t *messages;    /* the conversation, oldest first (see above) */
    int64_t max_output_tokens; /* 0: the provider's default (Anthropic: ours) */
    const json_t *tools;       /* [{name, description, input_schema}]; NULL or []: none */
    enum provider_tool_choice tool_choice;
    const char *tool_name; /* the tool of PROVIDER_TOOL_CHOICE_SPECIFIC */
    int serial_tools;      /* 1: at most one call per reply (--serial-tools) */
    /* Each piece of text as it streams in; nonzero stops the call. */
    int (*on_delta)(void *arg, const char *text, size_t len);
    void *arg;
    /* out */
    char request_digest[72];  /* sha256:<hex> of the body sent (provider_prepare) */
    char response_digest[72]; /* sha256:<hex> of every byte answered (provider_end) */
    long http_status;         /* 0 when no answer came */
    int64_t retry_after_ms;   /* Retry-After of a 429/5xx answer, -1 when none */
    char error[512];          /* why it failed or may be retried; never a credential */
    /* After provider_end, the reply's tool calls in the model's order:
     * [{id, name, arguments (the raw string), input (the parsed object, or
     * absent), error (absent, or why the arguments are malformed: not JSON,
     * not an object, too long)}]; [] when it made none or the attempt did not
     * succeed. The call's own: provider_prepare and provider_release free it
     * (json_incref to keep it). A malformed call is not a failed attempt: the
     * caller answers it with an error result. */
    json_t *tool_calls;
    enum provider_stop stop;            /* after a successful provider_end */
    char stop_detail[48];               /* the format's own word, e.g. "tool_use", "length" */
    struct provider_transfer *transfer; /* the attempt in flight, or NULL */
};

/* The name of a stop reason as the database records it: unknown, end,
 * tool_calls, max_tokens, filtered. */
const char *provider_stop_name(enum provider_stop stop);

/* Prepares an attempt (its request, and request_digest) without sending
 * it: PROVIDER_OK, else PROVIDER_FAILED with error. */
enum provider_rc provider_prepare(struct provider_call *c);
/* Sends the prepared attempt on multi: PROVIDER_OK when it is in flight,
 * else PROVIDER_FAILED with error. */
enum provider_rc provider_start(struct provider_call *c, CURLM *multi);
/* 1 while an attempt is in flight: sent and not yet ended or stopped. */
int provider_in_flight(const struct provider_call *c);
/* The call a finished transfer (CURLMSG_DONE's easy handle) belongs to. */
struct provider_call *provider_of(CURL *easy);
/* Ends the attempt curl reported done with cc: its verdict. */
enum provider_rc provider_end(struct provider_call *c, CURLM *multi, CURLcode cc);
/* Stops the attempt in flight, if any; its connection is closed. */
void provider_abort(struct provider_call *c, CURLM *multi);
/* Frees what the call holds once it is over (tool_calls); the attempt in
 * flight, if any, must be ended or aborted first. */
void provider_release(struct provider_call *c);

#endif
