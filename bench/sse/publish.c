/*
 * bench-sse-publish: the publisher of the SSE benchmark (bench/sse/run.sh).
 * Publishes RATE events a second for SECONDS seconds, each an event named
 * `bench` with the data
 *     {"type":"bench","seq":N,"t_us":T}
 * where N counts from 1 and T is CLOCK_REALTIME in µs, read just before the
 * event is sent. Two ways to publish, each over one connection:
 *   pg     one autocommit `SELECT kheish_append_events($1::jsonb, '[]')` per
 *          event, a prepared statement through libpq: how real events commit
 *          and NOTIFY the relays;
 *   nchan  one HTTP POST per event to an Nchan publisher location, keep-alive,
 *          the event name in X-EventSource-Event.
 *
 * The schedule is open-loop: event N is sent at start + (N - 1) / RATE
 * whether or not the earlier ones were answered (libpq pipeline mode, one
 * sync per event so each commits on its own; HTTP pipelining), so a slow
 * answer delays no later event and the latency a subscriber measures
 * includes any queueing at the server. At most PUBLISH_INFLIGHT_MAX wait
 * for their answer; past that, events go late and are counted.
 * Prints one JSON line: events published, failed and late, and the time
 * from send to answer (commit, or Nchan's reply).
 */
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "http_client.h"
#include "util.h"

#define PUBLISH_RATE_MAX      100000 /* events/s */
#define PUBLISH_SECONDS_MAX   3600
#define PUBLISH_INFLIGHT_MAX  1024                  /* events sent and not answered yet */
#define PUBLISH_DRAIN_MS      10000                 /* for the last answers, after the last send */
#define PUBLISH_DATA_BYTES    128                   /* one event's data */
#define PUBLISH_REQUEST_BYTES (HTTP_PATH_MAX + 512) /* one POST, head and body */
#define PUBLISH_OUT_MAX       (256 * PUBLISH_REQUEST_BYTES) /* POSTs not sent yet */
#define PUBLISH_IN_MAX        (64 * 1024)                   /* answers not parsed yet */
#define PUBLISH_APPEND_SQL    "SELECT kheish_append_events($1::jsonb, '[]'::jsonb)"

struct publisher;

/* One way to publish. send queues an event (0, or -1: not sent); flush
 * writes what is queued (0 all out, 1 some left, -1 failed); receive reads
 * answers and calls answered() for each (0, or -1: the connection failed).
 * A backend that loses its connection fails what it had in flight. */
struct backend {
    const char *name;
    int (*open)(struct publisher *p, const char *target);
    int (*send)(struct publisher *p, const char *data);
    int (*flush)(struct publisher *p);
    int (*receive)(struct publisher *p);
    int (*fd)(struct publisher *p);
    void (*close)(struct publisher *p);
};

struct publisher {
    const struct backend *be;
    int64_t sent_us[PUBLISH_INFLIGHT_MAX]; /* ring: send time of each unanswered event */
    int head, inflight;
    int64_t failed;
    struct hist *calls;
    char err[256];
    /* pg */
    PGconn *pg;
    int pg_failed; /* the event whose results are being read failed */
    /* nchan */
    struct http_url url;
    int sock;
    char *out, *in;
    size_t out_off, out_len, in_len;
};

static int64_t
clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The oldest unanswered event got its answer. */
static void
answered(struct publisher *p, int ok)
{
    if (p->inflight == 0)
        return;
    hist_add(p->calls, clock_us(CLOCK_MONOTONIC) - p->sent_us[p->head]);
    p->head = (p->head + 1) % PUBLISH_INFLIGHT_MAX;
    p->inflight--;
    if (!ok && p->failed++ == 0)
        fprintf(stderr, "bench-sse-publish: %s\n", p->err);
}

/* ---- pg: libpq pipeline mode --------------------------------------------- */

static int
pg_open(struct publisher *p, const char *conninfo)
{
    p->pg = PQconnectdb(conninfo);
    PGresult *r = NULL;
    if (PQstatus(p->pg) == CONNECTION_OK)
        r = PQprepare(p->pg, "append", PUBLISH_APPEND_SQL, 1, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK && PQsetnonblocking(p->pg, 1) == 0 &&
             PQenterPipelineMode(p->pg) == 1;
    if (!ok)
        fprintf(stderr, "bench-sse-publish: %s", PQerrorMessage(p->pg));
    PQclear(r);
    return ok ? 0 : -1;
}

static int
pg_flush(struct publisher *p)
{
    return PQflush(p->pg);
}

/* The statement, then a sync: the sync ends its implicit transaction. */
static int
pg_send(struct publisher *p, const char *data)
{
    char param[PUBLISH_DATA_BYTES + 64];
    snprintf(param, sizeof param, "[{\"name\":\"bench\",\"data\":%s}]", data);
    const char *values[] = {param};
    if (PQsendQueryPrepared(p->pg, "append", 1, values, NULL, NULL, 0) != 1 ||
        PQpipelineSync(p->pg) != 1 || PQflush(p->pg) < 0) {
        snprintf(p->err, sizeof p->err, "%s", PQerrorMessage(p->pg));
        return -1;
    }
    return 0;
}

/* An event is answered by its sync result; an error before it fails it. */
static int
pg_receive(struct publisher *p)
{
    if (PQconsumeInput(p->pg) != 1) {
        snprintf(p->err, sizeof p->err, "%s", PQerrorMessage(p->pg));
        return -1;
    }
    for (int nulls = 0; nulls < 2 && !PQisBusy(p->pg);) {
        PGresult *r = PQgetResult(p->pg);
        if (r == NULL) {
            nulls++; /* the end of one statement's results; two: nothing more */
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            answered(p, !p->pg_failed);
            p->pg_failed = 0;
        } else if (st != PGRES_TUPLES_OK) {
            snprintf(p->err, sizeof p->err, "%s", PQresultErrorMessage(r));
            p->pg_failed = 1;
        }
        PQclear(r);
    }
    return 0;
}

static int
pg_fd(struct publisher *p)
{
    return PQsocket(p->pg);
}

static void
pg_close(struct publisher *p)
{
    PQfinish(p->pg);
}

/* ---- nchan: HTTP/1.1 pipelining on one keep-alive connection ------------- */

static int
nchan_open(struct publisher *p, const char *url)
{
    p->sock = -1;
    p->out = malloc(PUBLISH_OUT_MAX);
    p->in = malloc(PUBLISH_IN_MAX);
    if (http_url_parse(url, &p->url) != 0) {
        fprintf(stderr, "bench-sse-publish: want a URL http://IPv4:PORT/PATH, not %s\n", url);
        return -1;
    }
    return p->out && p->in ? 0 : -1;
}

/* Drops the connection: what it had not answered failed. The next event
 * opens a new one. */
static void
nchan_drop(struct publisher *p)
{
    if (p->sock >= 0)
        close(p->sock);
    p->sock = -1;
    p->out_off = p->out_len = p->in_len = 0;
    while (p->inflight > 0)
        answered(p, 0);
}

static int
nchan_flush(struct publisher *p)
{
    while (p->out_off < p->out_len) {
        ssize_t n = send(p->sock, p->out + p->out_off, p->out_len - p->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n <= 0) {
            snprintf(p->err, sizeof p->err, "send: %s", strerror(errno));
            nchan_drop(p);
            return -1;
        }
        p->out_off += (size_t)n;
    }
    p->out_off = p->out_len = 0;
    return 0;
}

static int
nchan_send(struct publisher *p, const char *data)
{
    if (p->sock < 0) {
        p->sock = http_connect(&p->url, 0, 0);
        if (p->sock < 0 || fcntl(p->sock, F_SETFL, O_NONBLOCK) != 0) {
            snprintf(p->err, sizeof p->err, "connect: %s", strerror(errno));
            nchan_drop(p);
            return -1;
        }
    }
    if (p->out_len + PUBLISH_REQUEST_BYTES > PUBLISH_OUT_MAX) {
        snprintf(p->err, sizeof p->err, "Nchan does not read its requests");
        return -1;
    }
    int n = snprintf(p->out + p->out_len, PUBLISH_REQUEST_BYTES,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "X-EventSource-Event: bench\r\nContent-Length: %zu\r\n\r\n%s",
                     p->url.path, p->url.host, strlen(data), data);
    p->out_len += (size_t)n;
    return nchan_flush(p) < 0 ? -1 : 0;
}

/* Parses the whole answers read so far. Each must carry Content-Length
 * (Nchan's do). Returns 0, or -1 on a malformed answer. */
static int
nchan_answers(struct publisher *p)
{
    size_t off = 0, hlen;
    struct http_head h;
    while ((hlen = http_head_length(p->in + off, p->in_len - off)) > 0) {
        if (http_head_parse(p->in + off, hlen, &h) != 0 || h.content_length < 0) {
            snprintf(p->err, sizeof p->err, "an answer without Content-Length");
            return -1;
        }
        if ((int64_t)(p->in_len - off - hlen) < h.content_length)
            break;
        if (h.status < 200 || h.status > 299)
            snprintf(p->err, sizeof p->err, "POST: status %d", h.status);
        answered(p, h.status >= 200 && h.status <= 299);
        off += hlen + (size_t)h.content_length;
    }
    memmove(p->in, p->in + off, p->in_len - off);
    p->in_len -= off;
    return 0;
}

static int
nchan_receive(struct publisher *p)
{
    for (;;) {
        ssize_t n = recv(p->sock, p->in + p->in_len, PUBLISH_IN_MAX - p->in_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0 || p->in_len + (size_t)n == PUBLISH_IN_MAX) {
            snprintf(p->err, sizeof p->err, "recv: %s",
                     n == 0  ? "closed by Nchan"
                     : n < 0 ? strerror(errno)
                             : "answer too large");
            nchan_drop(p);
            return -1;
        }
        p->in_len += (size_t)n;
        if (nchan_answers(p) != 0) {
            nchan_drop(p);
            return -1;
        }
    }
}

static int
nchan_fd(struct publisher *p)
{
    return p->sock;
}

static void
nchan_close(struct publisher *p)
{
    if (p->sock >= 0)
        close(p->sock);
    free(p->out);
    free(p->in);
}

static const struct backend backends[] = {
    {"pg", pg_open, pg_send, pg_flush, pg_receive, pg_fd, pg_close},
    {"nchan", nchan_open, nchan_send, nchan_flush, nchan_receive, nchan_fd, nchan_close},
};

/* ---- the schedule -------------------------------------------------------- */

static void
send_event(struct publisher *p, int64_t seq)
{
    char data[PUBLISH_DATA_BYTES];
    snprintf(data, sizeof data, "{\"type\":\"bench\",\"seq\":%lld,\"t_us\":%lld}", (long long)seq,
             (long long)clock_us(CLOCK_REALTIME));
    int64_t t = clock_us(CLOCK_MONOTONIC);
    if (p->be->send(p, data) != 0) {
        if (p->failed++ == 0)
            fprintf(stderr, "bench-sse-publish: %s\n", p->err);
        return;
    }
    p->sent_us[(p->head + p->inflight) % PUBLISH_INFLIGHT_MAX] = t;
    p->inflight++;
}

/* Sends each event when due, reading answers in between; then waits up to
 * PUBLISH_DRAIN_MS for the last answers. */
static void
run(struct publisher *p, int64_t rate, int64_t seconds)
{
    int64_t total = rate * seconds, late = 0, seq = 1, pending = 0;
    int64_t start = clock_us(CLOCK_MONOTONIC), slot_us = 1000000 / rate;
    int64_t drain_end = start + seconds * 1000000 + PUBLISH_DRAIN_MS * 1000;
    for (;;) {
        int64_t now = clock_us(CLOCK_MONOTONIC);
        for (; seq <= total && start + (seq - 1) * 1000000 / rate <= now &&
               p->inflight < PUBLISH_INFLIGHT_MAX;
             seq++) {
            late += now - (start + (seq - 1) * 1000000 / rate) > slot_us;
            send_event(p, seq);
            pending = 1;
        }
        if ((seq > total && p->inflight == 0) || now > drain_end)
            break;
        int64_t wait_us = seq <= total && p->inflight < PUBLISH_INFLIGHT_MAX
                              ? start + (seq - 1) * 1000000 / rate - now
                              : 100000;
        struct timespec ts = {0, (wait_us > 0 ? wait_us : 0) * 1000};
        struct pollfd pfd = {p->be->fd(p), POLLIN | (pending ? POLLOUT : 0), 0};
        if (pfd.fd < 0) /* nothing open: the next send reconnects */
            pfd.events = 0;
        if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
            break;
        if (pfd.revents & POLLOUT)
            pending = p->be->flush(p) == 1;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            p->be->receive(p);
    }
    p->failed += p->inflight; /* never answered */
    double elapsed = (double)(clock_us(CLOCK_MONOTONIC) - start) / 1e6;
    printf("{\"mode\":\"%s\",\"rate\":%lld,\"seconds\":%lld,\"published\":%lld,\"failed\":%lld,"
           "\"late\":%lld,\"elapsed_s\":%.3f,",
           p->be->name, (long long)rate, (long long)seconds, (long long)(total - p->failed),
           (long long)p->failed, (long long)late, elapsed);
    hist_print_json(p->calls, "call", stdout);
    printf("}\n");
}

int
main(int argc, char **argv)
{
    static struct publisher p;
    int64_t rate, seconds;
    size_t b = 0, nb = sizeof backends / sizeof backends[0];
    while (argc == 5 && b < nb && strcmp(argv[1], backends[b].name))
        b++;
    if (argc != 5 || b == nb || util_parse_i64(argv[3], 1, PUBLISH_RATE_MAX, &rate) != 0 ||
        util_parse_i64(argv[4], 1, PUBLISH_SECONDS_MAX, &seconds) != 0) {
        fprintf(stderr,
                "usage: bench-sse-publish pg CONNINFO RATE SECONDS\n"
                "       bench-sse-publish nchan http://IPv4:PORT/PATH RATE SECONDS\n"
                "  RATE events/s (1..%d), SECONDS (1..%d)\n",
                PUBLISH_RATE_MAX, PUBLISH_SECONDS_MAX);
        return 2;
    }
    p.be = &backends[b];
    p.calls = hist_new();
    int rc = p.calls && p.be->open(&p, argv[2]) == 0 ? 0 : 1;
    if (rc == 0)
        run(&p, rate, seconds);
    p.be->close(&p);
    hist_free(p.calls);
    return rc;
}
