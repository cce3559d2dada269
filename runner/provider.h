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
 */
#ifndef KHEISH_RUNNER_PROVIDER_H
#define KHEISH_RUNNER_PROVIDER_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "routes.h"

#define PROVIDER_REPLY_MAX_BYTES    (4 * 1024 * 1024) /* of generated text */
#define PROVIDER_ERROR_BODY_MAX     8192              /* kept of an error answer */
#define PROVIDER_CONNECT_TIMEOUT_S  10
#define PROVIDER_IDLE_TIMEOUT_S     300  /* no byte for this long: the call failed */
#define PROVIDER_DEFAULT_MAX_TOKENS 4096 /* Anthropic requires max_tokens */
#define PROVIDER_ANTHROPIC_VERSION  "2023-06-01"

enum provider_rc {
    PROVIDER_OK,      /* the reply is complete */
    PROVIDER_RETRY,   /* 429, 5xx or no connection: worth another attempt */
    PROVIDER_FAILED,  /* anything else: error says what */
    PROVIDER_ABORTED, /* on_delta asked to stop */
};

struct provider_transfer;

struct provider_call {
    const struct route *route;
    const char *model;
    const char *api_key;
    const json_t *messages;    /* [{role: user|assistant, text}], oldest first */
    int64_t max_output_tokens; /* 0: the provider's default (Anthropic: ours) */
    /* Each piece of text as it streams in; nonzero stops the call. */
    int (*on_delta)(void *arg, const char *text, size_t len);
    void *arg;
    /* out */
    char request_digest[72];            /* sha256:<hex> of the body sent (provider_prepare) */
    char response_digest[72];           /* sha256:<hex> of every byte answered (provider_end) */
    long http_status;                   /* 0 when no answer came */
    int64_t retry_after_ms;             /* Retry-After of a 429/5xx answer, -1 when none */
    char error[512];                    /* why it failed or may be retried; never a credential */
    struct provider_transfer *transfer; /* the attempt in flight, or NULL */
};

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

#endif
