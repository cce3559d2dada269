/*
 * bench-sse-load: the load client of the SSE benchmark (bench/sse/run.sh).
 * Opens N event streams to one URL and measures what arrives on them: one
 * thread, one epoll loop, non-blocking sockets.
 *
 * Streams connect LOAD_CONNECTING_MAX at a time, from 127.0.0.1..127.0.0.K
 * when the server is on loopback, so 10k+ streams never run out of
 * ephemeral ports. Once every stream has its response head (or failed) the
 * client is ready: it writes --ready-file, and the publisher may start.
 *
 * Each body (close-delimited, or chunked as nginx sends a proxied stream)
 * goes through the project's SSE parser (common/sse.c). An event named
 * --event (default bench) is a delivery; a delivery whose data holds
 * "t_us":<int> (CLOCK_REALTIME µs, taken by the publisher just before it
 * sent the event) adds arrival - t_us to the latency histogram, and
 * "seq":<int> (1, 2, ... per run) finds frames lost or repeated on a
 * stream. Events named --heartbeat-event are counted per stream.
 *
 * At the end (every stream got --expect deliveries or closed, --hold
 * seconds after ready, or SIGINT/SIGTERM) it prints one JSON line on stdout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "http_client.h"
#include "sse.h"
#include "util.h"

#define LOAD_STREAMS_MAX        100000
#define LOAD_STREAMS_PER_SOURCE 10000 /* default spread over loopback source addresses */
#define LOAD_SOURCES_MAX        250   /* 127.0.0.1 .. 127.0.0.250 */
#define LOAD_CONNECTING_MAX     256   /* streams between connect() and their response head */
#define LOAD_CONNECT_TIMEOUT_MS 15000 /* from connect() to the response head */
#define LOAD_FRAME_MAX          65536 /* bytes of one SSE frame */
#define LOAD_TOKEN_MAX          1024  /* bytes of the bearer token */
#define LOAD_NAME_MAX           31    /* bytes of an event name kept */
#define LOAD_NAMES_MAX          16    /* distinct event names counted; the rest are "(other)" */
#define LOAD_RECV_BYTES         65536 /* one recv */
#define LOAD_RECVS_PER_WAKE     4     /* recvs per stream per wake-up, for fairness */
#define LOAD_FD_RESERVE         16    /* descriptors besides the streams */
#define LOAD_TICK_MS            100   /* connect timeouts and end conditions, checked this often */
#define LOAD_HOLD_MAX_S         86400
#define LOAD_WARMUP_US          1000000 /* --measure starts this long after the first publish */

/* Why a stream failed or ended; the names are the keys of "errors". */
enum load_error {
    LOAD_OK,
    ERR_CONNECT,
    ERR_TIMEOUT,
    ERR_HTTP_STATUS,
    ERR_NOT_EVENT_STREAM,
    ERR_BAD_HEAD,
    ERR_HEAD_TOO_LARGE,
    ERR_CLOSED,
    ERR_RECV,
    ERR_BAD_CHUNK,
    ERR_FRAME_TOO_LARGE,
    ERR_NOMEM,
    NERRORS
};
static const char *const error_name[NERRORS] = {
    "",
    "connect",
    "connect_timeout",
    "http_status",
    "not_event_stream",
    "bad_head",
    "head_too_large",
    "closed",
    "recv",
    "bad_chunk",
    "frame_too_large",
    "out_of_memory",
};

enum stream_state { ST_NEW, ST_CONNECTING, ST_HEAD, ST_STREAMING, ST_CLOSED };

struct load;

struct stream {
    struct load *load;
    int fd;
    enum stream_state state;
    int connected; /* got a 200 event-stream head */
    int done;      /* counted in load.done: got --expect deliveries, or closed */
    int chunked;
    struct http_chunked ck;
    struct sse_parser sse;
    char *buf; /* the response head, until it is whole */
    size_t len, cap;
    int64_t deadline_ms;
    /* this stream's totals */
    int64_t delivered, heartbeats, last_seq;
};

struct load {
    /* settings */
    struct http_url url;
    const char *url_text, *event, *heartbeat, *ready_file;
    int64_t nstreams, sources, expect, hold_s, measure_s;
    char request[HTTP_PATH_MAX + LOAD_TOKEN_MAX + 256];
    size_t request_len;
    /* state */
    struct stream *streams;
    int ep, sfd;
    int64_t next, connecting, connected, failed, closed, done;
    int64_t start_ms, ready_ms, end_ms;
    int64_t arrival_us; /* CLOCK_REALTIME of the last recv */
    int last_status;    /* the last status other than 200 */
    char rbuf[LOAD_RECV_BYTES];
    /* results */
    int64_t errors[NERRORS];
    struct {
        char name[LOAD_NAME_MAX + 1];
        int64_t count;
    } names[LOAD_NAMES_MAX];
    int nnames;
    int64_t other_names, deliveries, heartbeats, gaps, repeats, untimed;
    int64_t reads; /* recvs that returned bytes: deliveries / reads shows batching */
    int64_t first_t_us, last_arrival_us;
    int64_t measured; /* deliveries that arrived inside the --measure window */
    struct hist *latency;
};

static int64_t
clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
mono_ms(void)
{
    return clock_us(CLOCK_MONOTONIC) / 1000;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: bench-sse-load [options] http://IPv4:PORT/PATH\n"
            "  --streams N          streams to open (1..%d, default 1)\n"
            "  --token-file FILE    send Authorization: Bearer <first line of FILE>\n"
            "  --sources K          spread over 127.0.0.1..127.0.0.K (default: one per %d\n"
            "                       streams on a loopback URL, none otherwise)\n"
            "  --expect N           end once every stream got N deliveries (or closed)\n"
            "  --hold S             end S seconds after ready (0: no limit, the default)\n"
            "  --measure S          deliveries/s over the S seconds starting 1 s after the\n"
            "                       first publish (default: first publish to last arrival)\n"
            "  --ready-file FILE    written once every stream is open or failed\n"
            "  --event NAME         the delivery event (default bench)\n"
            "  --heartbeat-event NAME  (default heartbeat)\n"
            "Prints one JSON line on stdout; exit 0 when it ran, 1 when no stream opened,\n"
            "2 on bad usage.\n",
            LOAD_STREAMS_MAX, LOAD_STREAMS_PER_SOURCE);
}

/* Reads the token: the first line of the file, printable ASCII. */
static int
read_token(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "re");
    int rc = -1;
    if (f == NULL) {
        fprintf(stderr, "bench-sse-load: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)size, f) == NULL)
        goto out;
    out[strcspn(out, "\r\n")] = '\0';
    size_t n = strlen(out);
    for (size_t i = 0; i < n; i++)
        if (out[i] <= ' ' || out[i] > '~')
            goto out;
    rc = n > 0 && n < size - 1 ? 0 : -1;
out:
    if (rc != 0)
        fprintf(stderr, "bench-sse-load: %s: not one line of printable ASCII under %zu bytes\n",
                path, size - 1);
    fclose(f);
    return rc;
}

/* Fills the settings from argv. Returns 0, or -1 after printing why. */
static int
parse_args(struct load *l, int argc, char **argv)
{
    const char *token_file = NULL;
    struct {
        const char *flag;
        int64_t min, max, *num;
        const char **str;
    } opts[] = {
        {"--streams", 1, LOAD_STREAMS_MAX, &l->nstreams, NULL},
        {"--sources", 1, LOAD_SOURCES_MAX, &l->sources, NULL},
        {"--expect", 1, INT32_MAX, &l->expect, NULL},
        {"--hold", 0, LOAD_HOLD_MAX_S, &l->hold_s, NULL},
        {"--measure", 1, LOAD_HOLD_MAX_S, &l->measure_s, NULL},
        {"--token-file", 0, 0, NULL, &token_file},
        {"--ready-file", 0, 0, NULL, &l->ready_file},
        {"--event", 0, 0, NULL, &l->event},
        {"--heartbeat-event", 0, 0, NULL, &l->heartbeat},
    };
    size_t nopts = sizeof opts / sizeof opts[0];
    l->nstreams = 1;
    l->event = "bench";
    l->heartbeat = "heartbeat";
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            usage(stdout);
            exit(0);
        }
        size_t i = 0;
        while (i < nopts && strcmp(argv[a], opts[i].flag))
            i++;
        if (i == nopts && argv[a][0] != '-' && l->url_text == NULL) {
            l->url_text = argv[a];
            continue;
        }
        if (i == nopts || a + 1 >= argc) {
            fprintf(stderr, "bench-sse-load: unknown or incomplete option %s\n", argv[a]);
            return -1;
        }
        a++;
        if (opts[i].str) {
            *opts[i].str = argv[a];
        } else if (util_parse_i64(argv[a], opts[i].min, opts[i].max, opts[i].num) != 0) {
            fprintf(stderr, "bench-sse-load: %s wants an integer in [%lld, %lld]\n", opts[i].flag,
                    (long long)opts[i].min, (long long)opts[i].max);
            return -1;
        }
    }
    if (l->url_text == NULL || http_url_parse(l->url_text, &l->url) != 0) {
        fprintf(stderr, "bench-sse-load: want one URL http://IPv4:PORT/PATH (path < %d bytes)\n",
                HTTP_PATH_MAX);
        return -1;
    }
    if (strlen(l->event) > LOAD_NAME_MAX || strlen(l->heartbeat) > LOAD_NAME_MAX) {
        fprintf(stderr, "bench-sse-load: event names are at most %d bytes\n", LOAD_NAME_MAX);
        return -1;
    }
    char token[LOAD_TOKEN_MAX + 2], auth[LOAD_TOKEN_MAX + 32] = "";
    if (token_file) {
        if (read_token(token_file, token, sizeof token) != 0)
            return -1;
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    }
    int n = snprintf(l->request, sizeof l->request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n%s\r\n",
                     l->url.path, l->url.host, auth);
    l->request_len = (size_t)n;
    int loopback = (ntohl(l->url.addr.sin_addr.s_addr) >> 24) == 127;
    if (l->sources && !loopback) {
        fprintf(stderr, "bench-sse-load: --sources needs a 127.x.x.x URL\n");
        return -1;
    }
    if (l->sources == 0 && loopback)
        l->sources = (l->nstreams + LOAD_STREAMS_PER_SOURCE - 1) / LOAD_STREAMS_PER_SOURCE;
    return 0;
}

/* Raises the descriptor limit to its hard limit; fails when that does not
 * cover the streams. */
static int
raise_fd_limit(int64_t streams)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((int64_t)rl.rlim_cur >= streams + LOAD_FD_RESERVE)
        return 0;
    fprintf(stderr,
            "bench-sse-load: %lld streams need %lld descriptors, the hard limit is %llu "
            "(raise it: ulimit -Hn)\n",
            (long long)streams, (long long)(streams + LOAD_FD_RESERVE),
            (unsigned long long)rl.rlim_max);
    return -1;
}

/* Appends response head bytes to the stream's buffer, which grows up to
 * HTTP_HEAD_MAX (the caller passes no more). Returns 0, or -1 when out of
 * memory. */
static int
head_append(struct stream *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 512;
        while (cap < s->len + n)
            cap *= 2;
        cap = cap < HTTP_HEAD_MAX ? cap : HTTP_HEAD_MAX;
        char *b = realloc(s->buf, cap);
        if (b == NULL)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static void
mark_done(struct load *l, struct stream *s)
{
    if (!s->done) {
        s->done = 1;
        l->done++;
    }
}

/* Ends a stream for a reason: a failure to open, or the end of an open one. */
static void
end_stream(struct load *l, struct stream *s, enum load_error why)
{
    l->errors[why]++;
    if (s->state == ST_STREAMING) {
        l->closed++;
        mark_done(l, s);
    } else {
        l->failed++;
        l->connecting--;
    }
    if (s->fd >= 0) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
    s->state = ST_CLOSED;
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    sse_free(&s->sse);
}

/* Counts an event under its name, in LOAD_NAMES_MAX slots. The names are
 * printed in the report: they are cut to LOAD_NAME_MAX bytes and kept to
 * printable ASCII without quotes or backslashes. */
static void
count_name(struct load *l, const char *event)
{
    char name[LOAD_NAME_MAX + 1];
    size_t n = strnlen(event, LOAD_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        name[i] = event[i] > ' ' && event[i] <= '~' && event[i] != '"' && event[i] != '\\'
                      ? event[i]
                      : '?';
    name[n] = '\0';
    int i = 0;
    while (i < l->nnames && strcmp(l->names[i].name, name))
        i++;
    if (i == l->nnames && i == LOAD_NAMES_MAX) {
        l->other_names++;
        return;
    }
    if (i == l->nnames)
        memcpy(l->names[l->nnames++].name, name, n + 1);
    l->names[i].count++;
}

/* Finds "key" in v and reads the integer after its colon. Returns 0, or -1
 * when the key is absent or not followed by a non-negative integer. */
static int
json_int(const char *v, size_t len, const char *key, int64_t *out)
{
    const char *p = memmem(v, len, key, strlen(key)), *end = v + len;
    if (p == NULL)
        return -1;
    for (p += strlen(key); p < end && (*p == ' ' || *p == ':'); p++)
        ;
    int64_t n = 0;
    int digits = 0;
    for (; p < end && *p >= '0' && *p <= '9' && digits < 18; p++, digits++)
        n = n * 10 + (*p - '0');
    if (digits == 0)
        return -1;
    *out = n;
    return 0;
}

/* A delivery: sequence check and latency. */
static void
delivered(struct load *l, struct stream *s, const struct sse_frame *f)
{
    int64_t seq, t_us;
    l->deliveries++;
    s->delivered++;
    if (json_int(f->data, f->data_len, "\"seq\"", &seq) == 0) {
        if (seq > s->last_seq + 1)
            l->gaps += seq - s->last_seq - 1;
        else if (seq <= s->last_seq)
            l->repeats++;
        s->last_seq = seq;
    }
    if (json_int(f->data, f->data_len, "\"t_us\"", &t_us) == 0) {
        hist_add(l->latency, l->arrival_us - t_us);
        if (l->first_t_us == 0 || t_us < l->first_t_us)
            l->first_t_us = t_us;
        l->last_arrival_us = l->arrival_us;
        int64_t from = l->first_t_us + LOAD_WARMUP_US;
        l->measured += l->arrival_us >= from && l->arrival_us < from + l->measure_s * 1000000;
    } else {
        l->untimed++;
    }
    if (l->expect && s->delivered == l->expect)
        mark_done(l, s);
}

/* The SSE parser's callback: one event with data. */
static int
on_frame(void *arg, const struct sse_frame *f)
{
    struct stream *s = arg;
    struct load *l = s->load;
    count_name(l, f->event);
    if (!strcmp(f->event, l->event)) {
        delivered(l, s, f);
    } else if (!strcmp(f->event, l->heartbeat)) {
        l->heartbeats++;
        s->heartbeats++;
    }
    return 0;
}

/* Body bytes as read: removes the chunked framing, then parses. Returns
 * LOAD_OK, or the reason to end the stream. */
static int
body(struct stream *s, char *p, size_t n)
{
    if (s->chunked) {
        ssize_t m = http_chunked_decode(&s->ck, p, n);
        if (m < 0)
            return ERR_BAD_CHUNK;
        n = (size_t)m;
    }
    int rc = sse_feed(&s->sse, p, n);
    if (rc != 0)
        return rc == SSE_TOO_BIG ? ERR_FRAME_TOO_LARGE : ERR_NOMEM;
    return s->chunked && http_chunked_done(&s->ck) ? ERR_CLOSED : LOAD_OK;
}

/* Response head bytes: once the head is whole, the stream opens (or
 * fails) and the bytes after the head go to body(). The head ends in this
 * read, so they are the last bytes of p. Returns LOAD_OK, or the reason to
 * end the stream. */
static int
head(struct load *l, struct stream *s, char *p, size_t n)
{
    size_t before = s->len, room = HTTP_HEAD_MAX - s->len, hlen;
    struct http_head h;
    if (head_append(s, p, n < room ? n : room) != 0)
        return ERR_NOMEM;
    hlen = http_head_length(s->buf, s->len);
    if (hlen == 0)
        return s->len < HTTP_HEAD_MAX ? LOAD_OK : ERR_HEAD_TOO_LARGE;
    if (http_head_parse(s->buf, hlen, &h) != 0)
        return ERR_BAD_HEAD;
    if (h.status != 200) {
        l->last_status = h.status;
        return ERR_HTTP_STATUS;
    }
    if (!h.event_stream)
        return ERR_NOT_EVENT_STREAM;
    s->state = ST_STREAMING;
    s->connected = 1;
    s->chunked = h.chunked;
    s->sse = (struct sse_parser){.max_bytes = LOAD_FRAME_MAX, .fn = on_frame, .arg = s};
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    l->connecting--;
    l->connected++;
    size_t used = hlen - before;
    return body(s, p + used, n - used);
}

/* Reads what a stream has, a few recvs at most. */
static void
on_readable(struct load *l, struct stream *s)
{
    for (int i = 0; i < LOAD_RECVS_PER_WAKE; i++) {
        ssize_t n = recv(s->fd, l->rbuf, sizeof l->rbuf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            end_stream(l, s, n == 0 ? ERR_CLOSED : ERR_RECV);
            return;
        }
        l->arrival_us = clock_us(CLOCK_REALTIME);
        l->reads++;
        int rc = s->state == ST_HEAD ? head(l, s, l->rbuf, (size_t)n) : body(s, l->rbuf, (size_t)n);
        if (rc != LOAD_OK) {
            end_stream(l, s, (enum load_error)rc);
            return;
        }
        if ((size_t)n < sizeof l->rbuf)
            return;
    }
}

/* The connect finished: send the request (it fits any socket buffer). */
static void
on_connected(struct load *l, struct stream *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err || send(s->fd, l->request, l->request_len, MSG_NOSIGNAL) != (ssize_t)l->request_len) {
        end_stream(l, s, ERR_CONNECT);
        return;
    }
    s->state = ST_HEAD;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    epoll_ctl(l->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Starts connects until LOAD_CONNECTING_MAX are in flight. */
static void
open_more(struct load *l)
{
    while (l->connecting < LOAD_CONNECTING_MAX && l->next < l->nstreams) {
        struct stream *s = &l->streams[l->next];
        uint32_t src = l->sources ? (127u << 24) + 1 + (uint32_t)(l->next % l->sources) : 0;
        l->next++;
        l->connecting++;
        s->load = l;
        s->state = ST_CONNECTING;
        s->deadline_ms = mono_ms() + LOAD_CONNECT_TIMEOUT_MS;
        s->fd = http_connect(&l->url, src, 1);
        struct epoll_event ev = {.events = EPOLLOUT | EPOLLRDHUP, .data.ptr = s};
        if (s->fd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
            end_stream(l, s, ERR_CONNECT);
    }
}

/* Ends the opening streams whose head is late. */
static void
sweep_opening(struct load *l, int64_t now)
{
    for (int64_t i = 0; i < l->next; i++) {
        struct stream *s = &l->streams[i];
        if ((s->state == ST_CONNECTING || s->state == ST_HEAD) && now >= s->deadline_ms)
            end_stream(l, s, ERR_TIMEOUT);
    }
}

static void
became_ready(struct load *l, int64_t now)
{
    l->ready_ms = now;
    fprintf(stderr, "bench-sse-load: %lld of %lld streams open (%lld failed) in %.2f s\n",
            (long long)l->connected, (long long)l->nstreams, (long long)l->failed,
            (double)(now - l->start_ms) / 1000);
    FILE *f = l->ready_file ? fopen(l->ready_file, "we") : NULL;
    if (f) {
        fprintf(f, "%lld %lld\n", (long long)l->connected, (long long)l->failed);
        fclose(f);
    } else if (l->ready_file) {
        fprintf(stderr, "bench-sse-load: %s: %s\n", l->ready_file, strerror(errno));
    }
}

/* 1 when the run is over: nothing opened, every stream got what it
 * expected, or the hold time passed. */
static int
finished(const struct load *l, int64_t now)
{
    if (l->ready_ms == 0)
        return 0;
    return l->connected == 0 || (l->expect && l->done >= l->connected) ||
           (l->hold_s && now - l->ready_ms >= l->hold_s * 1000);
}

/* Writes s as a JSON string: the URL is the only text from the command
 * line, event names are already filtered. */
static void
print_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s >= ' ')
            fputc(*s, f);
    fputc('"', f);
}

static void
report(const struct load *l, int interrupted)
{
    int64_t beats_min = -1, beats_max = 0, lost = 0;
    for (int64_t i = 0; i < l->nstreams; i++) {
        const struct stream *s = &l->streams[i];
        if (!s->connected)
            continue;
        if (beats_min < 0 || s->heartbeats < beats_min)
            beats_min = s->heartbeats;
        if (s->heartbeats > beats_max)
            beats_max = s->heartbeats;
        if (l->expect && s->delivered < l->expect)
            lost += l->expect - s->delivered;
    }
    /* Steady state: what arrived in the --measure window, which does not
     * depend on latency when the server keeps up, and is its capacity when
     * it does not. Without it: from the first publish to the last arrival. */
    double window =
        l->measure_s ? (double)l->measure_s : (double)(l->last_arrival_us - l->first_t_us) / 1e6;
    int64_t counted = l->measure_s ? l->measured : (int64_t)l->latency->n;
    FILE *f = stdout;
    fprintf(f, "{\"url\":");
    print_str(f, l->url_text);
    fprintf(f,
            ",\"streams\":%lld,\"sources\":%lld,\"connected\":%lld,\"failed\":%lld,"
            "\"connect_s\":%.3f,\"held_s\":%.3f,\"closed\":%lld,\"interrupted\":%d,"
            "\"deliveries\":%lld,",
            (long long)l->nstreams, (long long)l->sources, (long long)l->connected,
            (long long)l->failed, l->ready_ms ? (double)(l->ready_ms - l->start_ms) / 1000 : 0.0,
            l->ready_ms ? (double)(l->end_ms - l->ready_ms) / 1000 : 0.0, (long long)l->closed,
            interrupted, (long long)l->deliveries);
    if (l->expect)
        fprintf(f, "\"expected\":%lld,\"lost\":%lld,", (long long)(l->expect * l->connected),
                (long long)lost);
    else
        fprintf(f, "\"expected\":null,\"lost\":null,");
    fprintf(f, "\"gaps\":%lld,\"repeats\":%lld,\"untimed\":%lld,", (long long)l->gaps,
            (long long)l->repeats, (long long)l->untimed);
    if (window > 0)
        fprintf(f, "\"window_s\":%.3f,\"deliveries_per_s\":%.1f,", window,
                (double)counted / window);
    else
        fprintf(f, "\"window_s\":null,\"deliveries_per_s\":null,");
    hist_print_json(l->latency, "latency", f);
    fprintf(f,
            ",\"heartbeats\":%lld,\"heartbeats_per_stream_min\":%lld,"
            "\"heartbeats_per_stream_max\":%lld,\"reads\":%lld,"
            "\"last_status\":%d,\"events\":{",
            (long long)l->heartbeats, (long long)(beats_min < 0 ? 0 : beats_min),
            (long long)beats_max, (long long)l->reads, l->last_status);
    for (int i = 0; i < l->nnames; i++) {
        print_str(f, l->names[i].name);
        fprintf(f, ":%lld,", (long long)l->names[i].count);
    }
    /* Its own CPU time, to tell a saturated client from a slow server. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(f, "\"(other)\":%lld},\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"errors\":{",
            (long long)l->other_names, (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    for (int i = ERR_CONNECT; i < NERRORS; i++)
        fprintf(f, "%s\"%s\":%lld", i > ERR_CONNECT ? "," : "", error_name[i],
                (long long)l->errors[i]);
    fprintf(f, "}}\n");
    fflush(f);
}

/* The loop: open, wait until ready, measure until finished. Returns 1
 * when a signal ended it. */
static int
run(struct load *l)
{
    struct epoll_event evs[512];
    int64_t next_tick = 0;
    for (;;) {
        open_more(l);
        int n = epoll_wait(l->ep, evs, 512, LOAD_TICK_MS);
        for (int i = 0; i < n; i++) {
            struct stream *s = evs[i].data.ptr;
            if (s == NULL)
                return 1; /* the signalfd */
            if (s->state == ST_CONNECTING)
                on_connected(l, s);
            else if (s->state == ST_HEAD || s->state == ST_STREAMING)
                on_readable(l, s);
        }
        int64_t now = mono_ms();
        if (now < next_tick)
            continue;
        next_tick = now + LOAD_TICK_MS;
        if (l->ready_ms == 0) {
            sweep_opening(l, now);
            if (l->next == l->nstreams && l->connecting == 0)
                became_ready(l, now);
        }
        if (finished(l, now))
            return 0;
    }
}

int
main(int argc, char **argv)
{
    static struct load l;
    int rc = 2;
    if (parse_args(&l, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    if (raise_fd_limit(l.nstreams) != 0)
        return 2;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    l.streams = calloc((size_t)l.nstreams, sizeof *l.streams);
    l.latency = hist_new();
    l.ep = epoll_create1(EPOLL_CLOEXEC);
    l.sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (l.streams == NULL || l.latency == NULL || l.ep < 0 || l.sfd < 0 ||
        epoll_ctl(l.ep, EPOLL_CTL_ADD, l.sfd, &ev) != 0) {
        fprintf(stderr, "bench-sse-load: setup failed: %s\n", strerror(errno));
        goto out;
    }
    l.start_ms = mono_ms();
    int interrupted = run(&l);
    l.end_ms = mono_ms();
    report(&l, interrupted);
    rc = l.connected > 0 ? 0 : 1;
out:
    for (int64_t i = 0; l.streams && i < l.nstreams; i++)
        if (l.streams[i].state != ST_NEW && l.streams[i].state != ST_CLOSED) {
            close(l.streams[i].fd);
            free(l.streams[i].buf);
            sse_free(&l.streams[i].sse);
        }
    free(l.streams);
    hist_free(l.latency);
    return rc;
}
