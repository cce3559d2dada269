/*
 * `kheish events stream` (aliases watch, follow), `kheish sessions stream`
 * and `kheish runs stream`: follow an SSE stream of contract §2 until
 * interrupted. A small parser turns the bytes libcurl hands over into frames
 * as they arrive; the follow loop prints each event at once and, when the
 * connection drops, reconnects with Last-Event-ID = the newest id printed, so
 * no event is printed twice. Without --cursor the stream starts live, and a
 * drop before the first event resumes live again.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd.h"
#include "sse.h"
#include "util.h"

#define FRAME_MAX_BYTES   (1024 * 1024) /* contract §7: a larger frame aborts the stream */
#define RETRY_DEFAULT_MS  1000
#define RETRY_MIN_MS      100   /* a server's `retry: 0` must not make a busy loop */
#define BACKOFF_MAX_MS    10000 /* the doubling wait between failed attempts stops here */
#define PAUSE_SLICE_US    100000
#define IDLE_LIMIT_S      30   /* no byte, not even a heartbeat (every 10 s): the link is dead */
#define REFUSAL_MAX       8192 /* bytes kept of the body of a refused request */
#define TIMEOUT_MAX_MS    (INT64_MAX / 2000) /* now + timeout, in microseconds, stays in range */
#define DEADLINE_SLACK_MS 10
#define USER_AGENT        "kheish-cli/0.1"
#define FOLLOW_AGAIN      (-2) /* follow_connect: the connection ended, reconnect */

/* Why a connection stopped before its end; STOP_NONE while it lasts. */
enum stop {
    STOP_NONE,
    STOP_DONE,    /* --max-events were printed */
    STOP_TOO_BIG, /* a frame over FRAME_MAX_BYTES */
    STOP_OUTPUT,  /* standard output failed */
    STOP_NOT_SSE, /* a 200 answer that is not an event stream */
    STOP_NOMEM,
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* SIGINT and SIGTERM end the follow with exit 0; a second one kills. */
static void
catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- printing ------------------------------------------------------------ */

/* One follow: its options, what it printed, its current connection. */
struct follow {
    const struct cli *c;
    char *url;
    int64_t max_events, deadline_us; /* ARGS_UNSET / 0: none */
    int64_t printed, last_id;        /* last_id: the newest id printed, -1 none yet */
    struct sse_parser parser;
    CURL *h;
    long status;       /* of the current connection, 0 until answered */
    int answered;      /* the current connection is a 200 event stream */
    int ever_answered; /* one connection was */
    enum stop stop;
    char refusal[REFUSAL_MAX]; /* the body of a refused request */
    size_t refusal_len;
    char why[CURL_ERROR_SIZE + 64]; /* why the last connection ended */
};

/* Writes s with the bytes a terminal could take as commands (DEL, and the C1
 * controls U+0080..U+009F) made '?'. s is jansson's output: valid UTF-8,
 * with the C0 controls escaped already. */
static void
put_clean(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
            putchar('?'), p++;
        else
            putchar(*p == 0x7F ? '?' : *p);
    }
}

/* Pretty: `<id> <event> <compact data>`, `-` for a frame without an id. */
static void
print_pretty(const struct sse_frame *fr, const json_t *data)
{
    output_text(stdout, fr->id[0] ? fr->id : "-", fr->id[0] ? strlen(fr->id) : 1, SSE_ID_MAX);
    putchar(' ');
    output_text(stdout, fr->event, strlen(fr->event), SSE_EVENT_MAX);
    putchar(' ');
    char *dump = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (dump)
        put_clean(dump);
    else
        output_text(stdout, fr->data, fr->data_len, OUTPUT_CELL_MAX_BYTES);
    free(dump);
    putchar('\n');
}

/* JSON: one object per line, {"id":"N","event":"name","data":...}; data that
 * is not JSON is given as a string. */
static void
print_json(const struct sse_frame *fr, json_t *data)
{
    json_t *o = json_object();
    if (fr->id[0])
        json_object_set_new(o, "id", util_json_str(fr->id));
    json_object_set_new(o, "event", util_json_str(fr->event));
    json_object_set_new(o, "data", data ? json_incref(data) : util_json_str(fr->data));
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(o);
}

/* A frame arrived: prints it unless it was printed before (an id not above
 * the newest printed) or is a heartbeat in pretty mode. */
static int
on_frame(void *arg, const struct sse_frame *fr)
{
    struct follow *f = arg;
    int64_t id = -1;
    int heartbeat = !strcmp(fr->event, "heartbeat");
    if (fr->id[0] && util_parse_i64(fr->id, 0, INT64_MAX, &id) == 0 && id <= f->last_id)
        return STOP_NONE;
    if (heartbeat && !f->c->json)
        return STOP_NONE;
    json_t *data = json_loadb(fr->data, fr->data_len, JSON_DECODE_ANY, NULL);
    if (f->c->json)
        print_json(fr, data);
    else
        print_pretty(fr, data);
    json_decref(data);
    if (fflush(stdout) != 0 || ferror(stdout))
        return STOP_OUTPUT;
    f->last_id = id > f->last_id ? id : f->last_id;
    if (!heartbeat && ++f->printed == f->max_events)
        return STOP_DONE;
    return STOP_NONE;
}

/* ---- one connection ------------------------------------------------------ */

static int
deadline_passed(const struct follow *f)
{
    return f->deadline_us && util_monotonic_us() >= f->deadline_us;
}

/* The answer's head is in: a 200 must be an event stream to be parsed. */
static void
check_answer(struct follow *f)
{
    char *type = NULL;
    curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_getinfo(f->h, CURLINFO_CONTENT_TYPE, &type);
    if (f->status != 200)
        return;
    if (type == NULL || strncasecmp(type, "text/event-stream", 17)) {
        f->stop = STOP_NOT_SSE;
        return;
    }
    f->answered = f->ever_answered = 1;
}

static size_t
on_data(char *s, size_t size, size_t n, void *arg)
{
    struct follow *f = arg;
    size_t len = size * n;
    if (f->status == 0)
        check_answer(f);
    if (f->stop != STOP_NONE)
        return 0; /* makes curl end the transfer */
    if (!f->answered) {
        size_t room = sizeof f->refusal - 1 - f->refusal_len;
        memcpy(f->refusal + f->refusal_len, s, len < room ? len : room);
        f->refusal_len += len < room ? len : room;
        f->refusal[f->refusal_len] = '\0';
        return len;
    }
    int r = sse_feed(&f->parser, s, len);
    f->stop = r == SSE_TOO_BIG ? STOP_TOO_BIG : r == SSE_NOMEM ? STOP_NOMEM : (enum stop)r;
    return f->stop == STOP_NONE ? len : 0;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)arg, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return interrupted; /* non-zero aborts the transfer */
}

static int
add_header(struct curl_slist **list, const char *fmt, ...)
{
    va_list ap;
    char *line;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    struct curl_slist *l = n < 0 ? NULL : curl_slist_append(*list, line);
    if (n >= 0)
        free(line);
    if (l == NULL)
        return -1;
    *list = l;
    return 0;
}

/* The token was checked by args.c (visible ASCII only): it cannot split a
 * header line. */
static struct curl_slist *
stream_headers(const struct follow *f)
{
    struct curl_slist *h = NULL;
    if (add_header(&h, "Accept: text/event-stream") != 0 ||
        (f->c->token && add_header(&h, "Authorization: Bearer %s", f->c->token) != 0) ||
        (f->last_id >= 0 && add_header(&h, "Last-Event-ID: %lld", (long long)f->last_id) != 0)) {
        curl_slist_free_all(h);
        return NULL;
    }
    return h;
}

static void
set_options(struct follow *f, struct curl_slist *headers, char *errbuf)
{
    CURL *h = f->h;
    curl_easy_setopt(h, CURLOPT_URL, f->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CLIENT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)IDLE_LIMIT_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    if (f->deadline_us) {
        /* Rounded up, plus a margin: curl's timer may fire a little before
         * its time, and a timeout before the deadline reads as a dropped
         * stream (a "reconnecting" note, then a wait). */
        int64_t left_ms = (f->deadline_us - util_monotonic_us() + 999) / 1000 + DEADLINE_SLACK_MS;
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left_ms > 0 ? left_ms : 1));
    }
}

static int
stop_exit(const struct follow *f)
{
    switch (f->stop) {
    case STOP_TOO_BIG:
        fprintf(stderr, "kheish: an event frame is larger than %d bytes; stream aborted\n",
                FRAME_MAX_BYTES);
        return EXIT_GENERIC;
    case STOP_OUTPUT:
        fprintf(stderr, "kheish: cannot write to standard output\n");
        return EXIT_GENERIC;
    case STOP_NOT_SSE:
        fprintf(stderr, "kheish: %s answered 200 without an event stream\n", f->url);
        return EXIT_SCHEMA;
    case STOP_NOMEM:
        fprintf(stderr, "kheish: out of memory\n");
        return EXIT_GENERIC;
    default:
        return EXIT_OK;
    }
}

/*
 * How a connection ended: an exit code, or FOLLOW_AGAIN (with f->why set)
 * when it is worth reconnecting. Once a stream has been answered, drops,
 * network errors and 429/500/502/503/504 are retried; any other refusal
 * (400, 401, 403, 404...) ends the follow with its exit code, and so does
 * everything on the first connection.
 */
static int
follow_outcome(struct follow *f, CURLcode cc, const char *errbuf)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    long s = f->status;
    if (f->stop != STOP_NONE)
        return stop_exit(f);
    if (interrupted || deadline_passed(f))
        return EXIT_OK;
    if (f->answered) {
        snprintf(f->why, sizeof f->why, "the stream ended (%s)",
                 cc == CURLE_OK ? "closed by the server" : why);
        return FOLLOW_AGAIN;
    }
    if (s != 0 && f->ever_answered && (s == 429 || s == 500 || (s >= 502 && s <= 504))) {
        snprintf(f->why, sizeof f->why, "the daemon answered HTTP %ld", s);
        return FOLLOW_AGAIN;
    }
    if (s != 0) {
        client_report_refusal(f->c, f->status, f->refusal, f->refusal_len);
        return client_exit_for_status(s);
    }
    if (f->ever_answered) {
        snprintf(f->why, sizeof f->why, "cannot reconnect (%s)", why);
        return FOLLOW_AGAIN;
    }
    fprintf(stderr, "kheish: cannot reach the daemon at %s: %s\n", f->c->base_url, why);
    return EXIT_UNREACHABLE;
}

/* One connection, read until it ends. */
static int
follow_connect(struct follow *f)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = stream_headers(f);
    int rc = EXIT_GENERIC;
    f->status = 0;
    f->answered = 0;
    f->stop = STOP_NONE;
    f->refusal_len = 0;
    f->refusal[0] = '\0';
    sse_reset(&f->parser);
    if (headers == NULL || (f->h = curl_easy_init()) == NULL) {
        fprintf(stderr, "kheish: out of memory\n");
        goto done;
    }
    set_options(f, headers, errbuf);
    CURLcode cc = curl_easy_perform(f->h);
    if (f->status == 0 && f->stop == STOP_NONE)
        check_answer(f); /* an answer without a body never reached on_data */
    rc = follow_outcome(f, cc, errbuf);
done:
    curl_easy_cleanup(f->h);
    f->h = NULL;
    curl_slist_free_all(headers);
    return rc;
}

/* ---- the follow loop ----------------------------------------------------- */

/* The server's retry: value, doubled for each failed attempt in a row. */
static int64_t
backoff_ms(int64_t retry_ms, int failures)
{
    int64_t d = retry_ms < RETRY_MIN_MS ? RETRY_MIN_MS : retry_ms;
    for (int i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

/* Waits ms, in slices so that a signal is seen at once. Returns 1 when the
 * follow is over (interrupted, or out of time), else 0. */
static int
pause_ms(const struct follow *f, int64_t ms)
{
    int64_t end = util_monotonic_us() + ms * 1000, left;
    while (!interrupted && !deadline_passed(f) && (left = end - util_monotonic_us()) > 0) {
        left = left < PAUSE_SLICE_US ? left : PAUSE_SLICE_US;
        nanosleep(&(struct timespec){0, (long)left * 1000}, NULL);
    }
    return interrupted || deadline_passed(f);
}

static int
follow_run(struct follow *f)
{
    int failures = 0;
    for (;;) {
        int rc = follow_connect(f);
        if (rc != FOLLOW_AGAIN)
            return rc;
        failures = f->answered ? 1 : failures + 1;
        int64_t wait = backoff_ms(f->parser.retry_ms, failures);
        fprintf(stderr, "kheish: %s; reconnecting in %lld ms\n", f->why, (long long)wait);
        if (pause_ms(f, wait))
            return EXIT_OK;
    }
}

/* Follows base URL + url until interrupted, out of events or out of time. */
static int
follow_url(const struct cli *c, const struct client_url *url, int64_t max_events,
           int64_t timeout_ms)
{
    struct follow *f = calloc(1, sizeof *f);
    size_t base_len = strlen(c->base_url);
    int rc;
    while (base_len > 0 && c->base_url[base_len - 1] == '/')
        base_len--;
    if (url->overflow) {
        fprintf(stderr, "kheish: the request URL would exceed %d bytes\n", CLIENT_URL_MAX_BYTES);
        free(f);
        return EXIT_BAD_REQUEST;
    }
    if (f == NULL || asprintf(&f->url, "%.*s%s", (int)base_len, c->base_url, url->buf) < 0) {
        fprintf(stderr, "kheish: out of memory\n");
        free(f);
        return EXIT_GENERIC;
    }
    f->c = c;
    f->max_events = max_events;
    f->deadline_us = timeout_ms != ARGS_UNSET ? util_monotonic_us() + timeout_ms * 1000 : 0;
    f->last_id = -1;
    f->parser = (struct sse_parser){
        .max_bytes = FRAME_MAX_BYTES, .retry_ms = RETRY_DEFAULT_MS, .fn = on_frame, .arg = f};
    catch_signals();
    rc = follow_run(f);
    fflush(stdout);
    sse_free(&f->parser);
    free(f->url);
    free(f);
    return rc;
}

/* ---- the verbs ----------------------------------------------------------- */

/* `events stream` when path_fmt is NULL (with its filters), else the stream
 * of the one id in path_fmt. */
static int
stream_verb(const struct cli *c, int argc, char **argv, const char *path_fmt)
{
    const char *id = NULL, *session = NULL, *run = NULL;
    int64_t cursor = ARGS_UNSET, max_events = ARGS_UNSET, timeout = ARGS_UNSET;
    char n[24];
    struct client_url url;
    struct args_opt opts[] = {
        {.name = "cursor", .num = &cursor, .min = 0, .max = INT64_MAX},
        {.name = "max-events", .num = &max_events, .min = 1, .max = INT64_MAX},
        {.name = "timeout-ms", .num = &timeout, .min = 1, .max = TIMEOUT_MAX_MS},
        {.name = "session-id", .str = &session},
        {.name = "run-id", .str = &run},
        {0},
    };
    if (path_fmt)
        opts[3] = (struct args_opt){0}; /* the filters are the global stream's */
    if (args_parse(argc, argv, opts, &id, path_fmt ? 1 : 0, path_fmt ? 1 : 0) != 0)
        return ARGS_USAGE;
    client_url_path(&url, path_fmt ? path_fmt : "/v1/events/stream", id);
    client_url_query(&url, "session_id", session);
    client_url_query(&url, "run_id", run);
    snprintf(n, sizeof n, "%lld", (long long)cursor);
    client_url_query(&url, "cursor", cursor != ARGS_UNSET ? n : NULL);
    return follow_url(c, &url, max_events, timeout);
}

int
cmd_events_stream(const struct cli *c, int argc, char **argv)
{
    return stream_verb(c, argc, argv, NULL);
}

int
cmd_sessions_stream(const struct cli *c, int argc, char **argv)
{
    return stream_verb(c, argc, argv, "/v1/sessions/%s/stream");
}

int
cmd_runs_stream(const struct cli *c, int argc, char **argv)
{
    return stream_verb(c, argc, argv, "/v1/runs/%s/stream");
}
