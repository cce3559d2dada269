#include "client.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"

#define USER_AGENT         "kheish-cli/0.1"
#define HEADER_MAX_BYTES   512 /* one request header line we build */
#define RAW_DETAIL_CHARS   200 /* of an error body that is not a problem document */
#define RESPONSE_MIN_ALLOC 4096

static void
url_append(struct client_url *u, const char *s, size_t n)
{
    if (u->overflow || u->len + n >= sizeof u->buf) {
        u->overflow = 1;
        return;
    }
    memcpy(u->buf + u->len, s, n);
    u->len += n;
    u->buf[u->len] = '\0';
}

/* RFC 3986 percent-encoding: everything but the unreserved characters, so
 * '/', '?', '&', '=' and '#' in user input stay data. */
static void
url_encode(struct client_url *u, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            url_append(u, (const char *)p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            url_append(u, esc, 3);
        }
    }
}

void
client_url_path(struct client_url *u, const char *fmt, ...)
{
    va_list ap;
    u->len = 0;
    u->overflow = u->has_query = 0;
    u->buf[0] = '\0';
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            url_encode(u, va_arg(ap, const char *));
            p++;
        } else {
            url_append(u, p, 1);
        }
    }
    va_end(ap);
}

void
client_url_query(struct client_url *u, const char *name, const char *value)
{
    if (value == NULL)
        return;
    url_append(u, u->has_query ? "&" : "?", 1);
    u->has_query = 1;
    url_encode(u, name);
    url_append(u, "=", 1);
    url_encode(u, value);
}

int
client_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
client_cleanup(void)
{
    curl_global_cleanup();
}

/* The response body, refused past CLIENT_RESPONSE_MAX_BYTES. */
struct body {
    char *data;
    size_t len, cap;
    int too_big;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    if (b->len + add > CLIENT_RESPONSE_MAX_BYTES) {
        b->too_big = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : RESPONSE_MIN_ALLOC;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

int
client_exit_for_status(long status)
{
    switch (status) {
    case 400:
    case 413:
        return EXIT_BAD_REQUEST;
    case 401:
    case 403:
        return EXIT_AUTH;
    case 404:
        return EXIT_NOT_FOUND;
    case 409:
        return EXIT_CONFLICT;
    case 502: /* nginx found no FastCGI process: the daemon is unreachable behind it */
        return EXIT_UNREACHABLE;
    case 429:
    case 503:
    case 504: /* the gateway timed out: a timeout like our own */
        return EXIT_UNAVAILABLE;
    default:
        return EXIT_GENERIC;
    }
}

void
client_report_refusal(const struct cli *c, long status, const char *body, size_t len)
{
    json_t *doc = len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *domain = json_string_value(json_object_get(doc, "domain"));
    const char *code = json_string_value(json_object_get(doc, "code"));
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    char head[256];
    if (code || detail) {
        snprintf(head, sizeof head, "%s%s%s", domain ? domain : "", domain ? "/" : "",
                 code ? code : "error");
        fprintf(stderr, "kheish: %ld ", status);
        output_text(stderr, head, strlen(head), sizeof head);
        fputs(": ", stderr);
        output_text(stderr, detail ? detail : "", detail ? strlen(detail) : 0,
                    OUTPUT_CELL_MAX_BYTES);
    } else {
        const char *raw = len ? body : "(empty body)";
        fprintf(stderr, "kheish: HTTP %ld: ", status);
        output_text(stderr, raw, len ? len : strlen(raw), RAW_DETAIL_CHARS);
    }
    fputc('\n', stderr);
    if (c->json && json_is_object(doc))
        output_json(stdout, doc);
    json_decref(doc);
}

/* Maps a transport failure to its exit code, after saying what happened. */
static int
report_curl_error(const struct cli *c, CURL *h, CURLcode cc, const char *errbuf,
                  const struct body *b)
{
    curl_off_t connect_us = 0;
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (b->too_big) {
        fprintf(stderr, "kheish: the daemon's response exceeds %d bytes\n",
                CLIENT_RESPONSE_MAX_BYTES);
        return EXIT_GENERIC;
    }
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    if (cc == CURLE_OPERATION_TIMEDOUT && connect_us > 0) {
        fprintf(stderr, "kheish: the daemon at %s did not answer within %d ms\n", c->base_url,
                CLIENT_TOTAL_TIMEOUT_MS);
        return EXIT_UNAVAILABLE;
    }
    fprintf(stderr, "kheish: cannot reach the daemon at %s: %s\n", c->base_url, why);
    return EXIT_UNREACHABLE;
}

/* Adds "Name: value" unless value is NULL; a value with control characters
 * could split the header and is refused. */
static int
add_header(struct curl_slist **list, const char *name, const char *prefix, const char *value)
{
    char line[HEADER_MAX_BYTES];
    if (value == NULL)
        return 0;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            return -1;
    if ((size_t)snprintf(line, sizeof line, "%s: %s%s", name, prefix, value) >= sizeof line)
        return -1;
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL)
        return -1;
    *list = l;
    return 0;
}

static struct curl_slist *
build_headers(const struct cli *c, const struct client_req *req)
{
    struct curl_slist *h = NULL;
    if (add_header(&h, "Accept", "", "application/json") != 0 ||
        add_header(&h, "Content-Type", "",
                   strcmp(req->method, "GET") ? "application/json" : NULL) != 0 ||
        add_header(&h, "Authorization", "Bearer ", c->token) != 0 ||
        add_header(&h, "Idempotency-Key", "", req->idempotency_key) != 0) {
        curl_slist_free_all(h);
        return NULL;
    }
    return h;
}

/* Decodes the answer of a finished transfer into *out or an error report. */
static int
decode(const struct cli *c, const struct client_req *req, long status, const struct body *b,
       json_t **out)
{
    json_error_t err;
    json_t *doc = b->len ? json_loadb(b->data, b->len, 0, &err) : NULL;
    if (status < 200 || status > 299) {
        client_report_refusal(c, status, b->data, b->len);
        json_decref(doc);
        return client_exit_for_status(status);
    }
    if (doc == NULL) {
        fprintf(stderr, "kheish: %s %s: the response is not valid JSON (%s)\n", req->method,
                req->url->buf, b->len ? err.text : "empty body");
        return EXIT_SCHEMA;
    }
    *out = doc;
    return EXIT_OK;
}

static int
out_of_memory(void)
{
    fprintf(stderr, "kheish: out of memory\n");
    return EXIT_GENERIC;
}

void
client_new_key(char out[CLIENT_KEY_BYTES])
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, "cli-", 4);
    sodium_bin2hex(out + 4, CLIENT_KEY_BYTES - 4, raw, sizeof raw);
}

/* An outcome after which a request may or may not have been executed: the
 * connection failed or broke, or nginx found no worker or database. */
static int
unknown_outcome(CURLcode cc, long code)
{
    switch (cc) {
    case CURLE_OK:
        return code == 502 || code == 503 || code == 504;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return 1;
    default:
        return 0;
    }
}

/* curl_easy_perform, again with the same Idempotency-Key while the outcome
 * is unknown (the server replays what it did, or does it now): the worker
 * may have died after its commit, or PostgreSQL restarted. A request without
 * a key is sent once. */
static CURLcode
perform(CURL *h, const struct client_req *req, struct body *b, long *code)
{
    static const int pause_ms[] = {250, 500, 1000, 2000, 4000, 4000};
    const int retries = (int)(sizeof pause_ms / sizeof pause_ms[0]);
    for (int i = 0;; i++) {
        *code = 0;
        CURLcode cc = curl_easy_perform(h);
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
        if (req->idempotency_key == NULL || i == retries || b->too_big ||
            !unknown_outcome(cc, *code))
            return cc;
        char what[64];
        if (cc == CURLE_OK)
            snprintf(what, sizeof what, "HTTP %ld", *code);
        else
            snprintf(what, sizeof what, "%s", curl_easy_strerror(cc));
        fprintf(stderr,
                "kheish: %s; sending it again with the same Idempotency-Key in %d ms (%d of %d)\n",
                what, pause_ms[i], i + 1, retries);
        free(b->data);
        *b = (struct body){0};
        struct timespec ts = {pause_ms[i] / 1000, (pause_ms[i] % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int
client_request(const struct cli *c, const struct client_req *req, json_t **out, long *status)
{
    char errbuf[CURL_ERROR_SIZE] = "", *url = NULL, *payload = NULL;
    struct body b = {0};
    struct curl_slist *headers = NULL;
    CURL *h = NULL;
    long code = 0;
    int rc = EXIT_GENERIC;
    size_t base_len = strlen(c->base_url);
    *out = NULL;
    while (base_len > 0 && c->base_url[base_len - 1] == '/')
        base_len--;
    if (req->url->overflow) {
        fprintf(stderr, "kheish: the request URL would exceed %d bytes\n", CLIENT_URL_MAX_BYTES);
        rc = EXIT_BAD_REQUEST;
        goto done;
    }
    if (asprintf(&url, "%.*s%s", (int)base_len, c->base_url, req->url->buf) < 0) {
        url = NULL;
        rc = out_of_memory();
        goto done;
    }
    if (req->body && (payload = json_dumps(req->body, JSON_COMPACT)) == NULL) {
        rc = out_of_memory();
        goto done;
    }
    if ((headers = build_headers(c, req)) == NULL) {
        fprintf(stderr, "kheish: a request header is too long or holds control characters\n");
        rc = EXIT_BAD_REQUEST;
        goto done;
    }
    if ((h = curl_easy_init()) == NULL) {
        rc = out_of_memory();
        goto done;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CLIENT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CLIENT_TOTAL_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (strcmp(req->method, "GET")) {
        /* Any method but GET may carry a body; an empty one is sent as such. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(payload ? strlen(payload) : 0));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
    CURLcode cc = perform(h, req, &b, &code);
    if (cc != CURLE_OK) {
        rc = report_curl_error(c, h, cc, errbuf, &b);
        goto done;
    }
    rc = decode(c, req, code, &b, out);
done:
    if (status)
        *status = code;
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    free(payload);
    free(url);
    free(b.data);
    return rc;
}
