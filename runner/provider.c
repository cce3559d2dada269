#include "provider.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "provider_wire.h"
#include "sse.h"
#include "util.h"

#define FRAME_MAX_BYTES (1024 * 1024)
#define HEADER_MAX      (PROVIDER_ERROR_BODY_MAX + 256)

/* The wire formats (routes.h: a driver names its own). */
static const struct provider_wire *const wires[] = {
    [ROUTE_WIRE_NONE] = NULL,
    [ROUTE_WIRE_RESPONSES] = &provider_wire_responses,
    [ROUTE_WIRE_CHAT] = &provider_wire_chat,
    [ROUTE_WIRE_MESSAGES] = &provider_wire_messages,
};

int
provider_fail(struct provider_call *c, const char *fmt, const char *detail)
{
    snprintf(c->error, sizeof c->error, fmt, detail ? detail : "");
    return -1;
}

const char *
provider_error_message(const json_t *data)
{
    const json_t *e = json_object_get(data, "error");
    if (json_is_string(e))
        return json_string_value(e);
    const char *m = json_string_value(json_object_get(e ? e : data, "message"));
    return m ? m : "no message";
}

int
provider_reply_bytes(struct provider_transfer *k, size_t len)
{
    k->reply_len += len;
    if (k->reply_len > PROVIDER_REPLY_MAX_BYTES)
        return provider_fail(k->c, "the reply is longer than the limit%s", "");
    return 0;
}

int
provider_text(struct provider_transfer *k, const char *text, size_t len)
{
    if (provider_reply_bytes(k, len) < 0)
        return -1;
    if (len && k->c->on_delta(k->c->arg, text, len) != 0) {
        k->aborted = 1;
        return -1;
    }
    return 0;
}

void
provider_stop(struct provider_transfer *k, const struct provider_stop_word *words, const char *word)
{
    k->stop = PROVIDER_STOP_UNKNOWN;
    for (; words->word; words++)
        if (!strcmp(words->word, word))
            k->stop = words->stop;
    snprintf(k->stop_detail, sizeof k->stop_detail, "%s", word);
}

/* ---- the transfer ---------------------------------------------------------- */

static int
on_frame(void *arg, const struct sse_frame *f)
{
    struct provider_transfer *k = arg;
    int is_done = !strcmp(f->data, "[DONE]");
    json_t *data = is_done ? NULL : json_loadb(f->data, f->data_len, 0, NULL);
    int r = data == NULL && !is_done
                ? provider_fail(k->c, "malformed stream: a frame is not JSON%s", "")
                : k->w->frame(k, f, data);
    json_decref(data);
    k->failed |= r < 0 && !k->aborted;
    return r < 0;
}

static size_t
on_body(char *s, size_t size, size_t n, void *arg)
{
    struct provider_transfer *k = arg;
    size_t len = size * n;
    crypto_hash_sha256_update(&k->answered, (const unsigned char *)s, len);
    if (k->c->http_status == 0 || k->c->http_status >= 300) {
        size_t room = sizeof k->body - 1 - k->body_len;
        memcpy(k->body + k->body_len, s, len < room ? len : room);
        k->body_len += len < room ? len : room;
        return len;
    }
    int r = sse_feed(&k->sse, s, len);
    if (r == SSE_TOO_BIG || r == SSE_NOMEM) {
        k->failed = 1;
        provider_fail(k->c, "malformed stream: a frame is larger than the limit%s", "");
    }
    return r == 0 ? len : 0;
}

static size_t
on_header(char *s, size_t size, size_t n, void *arg)
{
    struct provider_transfer *k = arg;
    size_t len = size * n;
    char line[HEADER_MAX];
    if (len >= 8 && !strncmp(s, "HTTP/", 5)) {
        /* a new answer (after a 100 Continue, say) */
        k->c->http_status =
            strtol(memchr(s, ' ', len) ? (char *)memchr(s, ' ', len) + 1 : s, NULL, 10);
        k->c->retry_after_ms = -1;
    } else if (len > 12 && len < sizeof line && !strncasecmp(s, "retry-after:", 12)) {
        memcpy(line, s + 12, len - 12);
        line[len - 12] = '\0';
        int64_t secs;
        line[strcspn(line, "\r\n")] = '\0';
        if (util_parse_i64(line + strspn(line, " \t"), 0, 3600, &secs) == 0)
            k->c->retry_after_ms = secs * 1000;
    }
    return len;
}

/* The request headers: content type, and the credential the driver wants. */
static struct curl_slist *
headers(const struct provider_call *c)
{
    const struct route *rt = c->route;
    char h[ROUTES_STRING_MAX_BYTES + 64];
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    l = curl_slist_append(l, "Accept: text/event-stream");
    enum route_auth auth = route_drivers[rt->driver].auth;
    if (auth == ROUTE_AUTH_ANTHROPIC) {
        snprintf(h, sizeof h, "x-api-key: %s", c->api_key);
        l = curl_slist_append(l, h);
        snprintf(h, sizeof h, "anthropic-version: %s",
                 rt->anthropic_version ? rt->anthropic_version : PROVIDER_ANTHROPIC_VERSION);
        l = curl_slist_append(l, h);
        for (size_t i = 0; i < rt->nbeta; i++) {
            snprintf(h, sizeof h, "anthropic-beta: %s", rt->beta_headers[i]);
            l = curl_slist_append(l, h);
        }
    } else {
        snprintf(h, sizeof h, "Authorization: Bearer %s", c->api_key);
        l = curl_slist_append(l, h);
    }
    const char *org = rt->organization       ? rt->organization
                      : rt->organization_env ? getenv(rt->organization_env)
                                             : NULL;
    const char *project = rt->project       ? rt->project
                          : rt->project_env ? getenv(rt->project_env)
                                            : NULL;
    if (org && auth == ROUTE_AUTH_OPENAI) {
        snprintf(h, sizeof h, "OpenAI-Organization: %s", org);
        l = curl_slist_append(l, h);
    }
    if (project && auth == ROUTE_AUTH_OPENAI) {
        snprintf(h, sizeof h, "OpenAI-Project: %s", project);
        l = curl_slist_append(l, h);
    }
    sodium_memzero(h, sizeof h);
    return l;
}

/* The verdict once the transfer is over. */
static enum provider_rc
verdict(struct provider_transfer *k, CURLcode cc)
{
    struct provider_call *c = k->c;
    if (k->aborted)
        return PROVIDER_ABORTED;
    if (k->failed)
        return PROVIDER_FAILED;
    if (c->http_status == 0) {
        provider_fail(c, "no answer from the provider: %s", curl_easy_strerror(cc));
        return PROVIDER_RETRY;
    }
    if (c->http_status == 429 || c->http_status >= 500) {
        snprintf(c->error, sizeof c->error, "the provider answered HTTP %ld", c->http_status);
        return PROVIDER_RETRY;
    }
    if (c->http_status >= 300) {
        json_t *doc = json_loadb(k->body, k->body_len, 0, NULL);
        snprintf(c->error, sizeof c->error, "the provider answered HTTP %ld: %.300s",
                 c->http_status, doc ? provider_error_message(doc) : "no error document");
        json_decref(doc);
        return PROVIDER_FAILED;
    }
    if (!k->done) {
        provider_fail(c, "the provider's stream ended before the reply was complete (%s)",
                      cc == CURLE_OK ? "closed early" : curl_easy_strerror(cc));
        return PROVIDER_FAILED;
    }
    return provider_tools_out(k) < 0 ? PROVIDER_FAILED : PROVIDER_OK;
}

/* "sha256:" and the hex digest of a SHA-256 state, into out[72]. */
static void
digest_final(crypto_hash_sha256_state *st, char out[72])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(st, d);
    memcpy(out, "sha256:", 7);
    sodium_bin2hex(out + 7, 65, d, sizeof d);
}

static void
digest_of(const char *data, size_t len, char out[72])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)data, len);
    digest_final(&st, out);
}

static void
transfer_free(struct provider_transfer *k)
{
    curl_easy_cleanup(k->h);
    curl_slist_free_all(k->hdrs);
    free(k->request);
    sse_free(&k->sse);
    provider_tools_free(k);
    free(k);
}

const char *
provider_stop_name(enum provider_stop stop)
{
    static const char *const names[] = {
        [PROVIDER_STOP_UNKNOWN] = "unknown",       [PROVIDER_STOP_END] = "end",
        [PROVIDER_STOP_TOOL_CALLS] = "tool_calls", [PROVIDER_STOP_MAX_TOKENS] = "max_tokens",
        [PROVIDER_STOP_FILTERED] = "filtered",
    };
    return stop < sizeof names / sizeof names[0] && names[stop] ? names[stop] : "unknown";
}

enum provider_rc
provider_prepare(struct provider_call *c)
{
    const struct route *rt = c->route;
    const struct provider_wire *w = wires[route_drivers[rt->driver].wire];
    c->http_status = 0;
    c->retry_after_ms = -1;
    c->error[0] = c->request_digest[0] = c->response_digest[0] = c->stop_detail[0] = '\0';
    c->transfer = NULL;
    c->stop = PROVIDER_STOP_UNKNOWN;
    json_decref(c->tool_calls);
    c->tool_calls = NULL;
    if (w == NULL) {
        provider_fail(c, "the %s driver is not supported by this runner",
                      route_drivers[rt->driver].name);
        return PROVIDER_FAILED;
    }
    if (provider_check(c) < 0)
        return PROVIDER_FAILED;
    char url[ROUTES_STRING_MAX_BYTES + 64];
    const char *base = rt->base_url ? rt->base_url : route_drivers[rt->driver].default_base_url;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof url, "%.*s%s", (int)blen, base, w->path);
    struct provider_transfer *k = calloc(1, sizeof *k);
    json_t *body = k ? w->body(c) : NULL;
    if (k) {
        *k = (struct provider_transfer){
            .h = curl_easy_init(),
            .hdrs = headers(c),
            .request = body ? json_dumps(body, JSON_COMPACT) : NULL,
            .c = c,
            .w = w,
            .sse = {.max_bytes = FRAME_MAX_BYTES, .fn = on_frame, .arg = k},
        };
    }
    json_decref(body);
    if (k == NULL || k->h == NULL || k->hdrs == NULL || k->request == NULL) {
        if (k)
            transfer_free(k);
        provider_fail(c, "out of memory%s", "");
        return PROVIDER_FAILED;
    }
    CURL *h = k->h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->request);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, k->hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)PROVIDER_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)PROVIDER_IDLE_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "kheish-runner/0.1");
    crypto_hash_sha256_init(&k->answered);
    digest_of(k->request, strlen(k->request), c->request_digest);
    c->transfer = k;
    return PROVIDER_OK;
}

enum provider_rc
provider_start(struct provider_call *c, CURLM *multi)
{
    if (curl_multi_add_handle(multi, c->transfer->h) != CURLM_OK) {
        provider_fail(c, "could not start the transfer%s", "");
        return PROVIDER_FAILED;
    }
    c->transfer->sent = 1;
    return PROVIDER_OK;
}

int
provider_in_flight(const struct provider_call *c)
{
    return c->transfer && c->transfer->sent;
}

struct provider_call *
provider_of(CURL *easy)
{
    struct provider_call *c = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    return c;
}

enum provider_rc
provider_end(struct provider_call *c, CURLM *multi, CURLcode cc)
{
    struct provider_transfer *k = c->transfer;
    json_decref(c->tool_calls);
    c->tool_calls = json_array();
    enum provider_rc rc = c->tool_calls ? verdict(k, cc) : PROVIDER_FAILED;
    if (c->tool_calls == NULL)
        provider_fail(c, "out of memory%s", "");
    else if (rc != PROVIDER_OK)
        json_array_clear(c->tool_calls);
    else {
        /* calls waiting for results are why the turn ended, whatever the
         * format said (some chat providers say "stop") */
        c->stop = k->ntools && (k->stop == PROVIDER_STOP_END || k->stop == PROVIDER_STOP_UNKNOWN)
                      ? PROVIDER_STOP_TOOL_CALLS
                      : k->stop;
        memcpy(c->stop_detail, k->stop_detail, sizeof c->stop_detail);
    }
    digest_final(&k->answered, c->response_digest);
    curl_multi_remove_handle(multi, k->h);
    transfer_free(k);
    c->transfer = NULL;
    return rc;
}

void
provider_abort(struct provider_call *c, CURLM *multi)
{
    if (c->transfer == NULL)
        return;
    if (c->transfer->sent)
        curl_multi_remove_handle(multi, c->transfer->h);
    transfer_free(c->transfer);
    c->transfer = NULL;
}

void
provider_release(struct provider_call *c)
{
    json_decref(c->tool_calls);
    c->tool_calls = NULL;
}
