/*
 * client: one connection to the relay, from its request head to its stream.
 * Output goes through a bounded queue (relay.h's caps); a client that cannot
 * keep up is ended with a stream_gap frame, never allowed to grow it.
 */
#ifndef KHEISH_RELAY_CLIENT_H
#define KHEISH_RELAY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "gate.h"
#include "relay.h"
#include "store.h"

enum client_state {
    CLIENT_HEAD,    /* reading the request head */
    CLIENT_WAIT,    /* an inline /input's wait: answered when its run ends or at close_at_ms */
    CLIENT_REPLAY,  /* streaming, catching up from its cursor page by page */
    CLIENT_LIVE,    /* streaming, fed by the tail */
    CLIENT_CLOSING, /* flushing a last answer, then closed */
};

struct relay_client {
    int fd;
    enum client_state state;
    char peer[64]; /* address:port of the connection (nginx) */
    char *head;    /* RELAY_HEAD_MAX_BYTES while the request head is read, then NULL */
    size_t head_len;
    char *headers;     /* WAIT: the answer's extra header lines (CORS, X-Request-Id) */
    int recheck;       /* WAIT: an event of its run came, or a check failed: read the run */
    uint32_t watching; /* the epoll events registered for fd */
    char *session_id;  /* stream filters, NULL for none; WAIT: the session and run */
    char *run_id;
    int64_t cursor; /* newest event id queued for this client */
    char *out;      /* queued bytes [out_off, out_len) */
    size_t out_off, out_len, out_cap;
    int64_t over_soft_since_ms; /* 0 while under the soft cap */
    int64_t close_at_ms;        /* HEAD, CLOSING: closed by then; WAIT: answered then */
    int64_t beat_at_ms;         /* REPLAY, LIVE: next heartbeat; 0 until the first is set */
    int refuse_full;            /* accepted near the descriptor limit: 503 once the head is in */
    /* A stream's open and close log lines (relay_client_log_stream). */
    char request_id[RELAY_REQUEST_ID_MAX + 1]; /* nginx's X-Request-Id, "" when none */
    const char *role;                          /* the gate's principal (auth.h) */
    char remote_addr[GATE_ADDR_MAX];           /* as the gate checked it */
    int64_t opened_us;                         /* when it began streaming; 0: it never did */
    int64_t opened_cursor;                     /* its cursor then */
    int64_t events_sent;                       /* event frames queued, less those a lag dropped */
    struct relay_client *prev, *next;
};

/* A request head, parsed in place (the strings point into client.head). */
struct relay_request {
    char *method, *target;
    const char *authorization, *origin, *last_event_id, *real_ip, *real_port, *request_id;
    int duplicate_origin, duplicate_cursor; /* header or query parameter given twice */
    char *path; /* target's path, decoded (uri_decode_path); NULL when invalid */
    /* 0: a stream (filters set on the client), 1: an input wait (its session
     * and run set on the client), -1: nothing there, -2: a bad id */
    int route;
    int64_t wait_ms; /* of an input wait: its wait_ms query parameter, -1 when invalid */
    int cursor_ok;   /* cursor= and Last-Event-ID are absent or decimal, and not repeated */
    int query_ok;    /* the query names only parameters its route reads */
    int64_t cursor;  /* the larger of the two, -1 for none */
};

/* Parses c->head (complete: head_len bytes, then a NUL) without side
 * effects beyond c's filters. Returns -1 when it is not an HTTP/1.x request
 * head (a NUL byte in it included); free rq->path after either. */
int relay_client_parse(struct relay_client *c, struct relay_request *rq);

/* What handling a complete request head needs from the relay. */
struct relay_client_env {
    struct gate *gate;
    struct store *db;
    const char *recorded_by; /* for audit rows */
    int64_t newest;          /* the relay's tail position */
};

/* Parses the head, runs the gate, answers a refusal or a preflight (the
 * client goes to CLOSING), starts the stream (REPLAY or LIVE) or the input
 * wait (WAIT: the relay checks its run and answers with client_answer). */
void relay_client_start(struct relay_client *c, const struct relay_client_env *env);

/* Answers a JSON document (extra header lines in headers) and moves the
 * client to CLOSING. */
void relay_client_answer(struct relay_client *c, int status, const char *headers,
                         const json_t *doc);

/* Answers a problem+json document (extra header lines in headers, "" for
 * none) and moves the client to CLOSING. */
void relay_client_refuse(struct relay_client *c, int status, const char *domain, const char *code,
                         const char *detail, const char *headers);

/* Sends bytes, or queues what the socket does not take at once (an empty
 * queue writes through: an idle stream holds no buffer). Returns -1 when
 * queueing would pass the hard cap (nothing is queued then); an empty queue
 * takes one frame of any size. A broken connection is left to epoll. */
int relay_client_queue(struct relay_client *c, const char *data, size_t len);

/* Sends what is queued. Returns 1 when all is sent, 0 when some is left
 * (wait for EPOLLOUT), -1 when the connection is gone. */
int relay_client_flush(struct relay_client *c);

/* Queues a stream_gap replay_window frame for what retention took after
 * the client's cursor, and moves the cursor past it. Returns -1 (nothing
 * queued) when the queue is full. */
int relay_client_gap(struct relay_client *c, const struct store_gap *g);

/* Ends a client that fell behind: drops what it has not started to
 * receive, queues a stream_gap live_lag frame and moves it to CLOSING. */
void relay_client_lagged(struct relay_client *c, int64_t now_ms);

/* Logs a stream's open (event "stream_opened") or close ("stream_closed",
 * with reason, events sent and duration): request id, role, client address,
 * scope and filters, cursor. Nothing for a client that never streamed. */
void relay_client_log_stream(const struct relay_client *c, const char *event, const char *reason);

/* 1 when an event of this session and run belongs on the client's stream. */
int relay_client_wants(const struct relay_client *c, const char *session_id, const char *run_id);

void relay_client_free(struct relay_client *c);

#endif
