/*
 * The relay's loop. NOTIFY on kheish_events is only a hint: on each one, and
 * at least every RELAY_POLL_MS, the relay reads the events after its
 * high-water mark in id order (the event-id rule makes that gap-free) and
 * queues each on every live stream it matches. A client that connects with a
 * cursor is replayed from the table a page per loop turn, so a long replay
 * never stalls the others, then joins the live streams. The wait of an
 * inline /input is a client too: an event of its run has the run read again,
 * and the SessionView answers it once the run ended or its time is up.
 */
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay_client.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define HEARTBEAT "event: heartbeat\ndata: {\"type\":\"heartbeat\"}\n\n"

struct relay {
    int ep, lfd, sfd;
    struct gate gate;
    struct store *db;
    const char *conninfo;
    struct store_listener *listener;
    int64_t listen_retry_ms;
    int64_t newest; /* high-water mark: every event up to it is queued */
    /* Events came while no stream or wait was open: nobody wanted them, so
     * they were not read, and newest is behind until catch_up(). */
    int behind;
    struct relay_client *clients;
    int nclients, replaying;
    int tail_more;                                /* the last tail page was cut: read on at once */
    int stopping;                                 /* SIGTERM: the streams are being closed */
    int64_t started_ms, lagged_total, gaps_total; /* for relay_stats */
    rlim_t fd_limit;
    char recorded_by[300];
};

static int64_t
now_ms(void)
{
    return util_monotonic_us() / 1000;
}

static void
watch(struct relay *r, int fd, uint32_t events, void *ptr, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    epoll_ctl(r->ep, op, fd, &ev);
}

/* What a client waits for: its request head, a writable socket when bytes
 * are queued, and always the peer closing. epoll is told only of changes. */
static void
rearm(struct relay *r, struct relay_client *c)
{
    uint32_t ev = EPOLLRDHUP | (c->state == CLIENT_HEAD ? EPOLLIN : 0) |
                  (c->out_off < c->out_len ? EPOLLOUT : 0);
    if (ev != c->watching)
        watch(r, c->fd, ev, c, EPOLL_CTL_MOD);
    c->watching = ev;
}

/* Closes a client; a stream logs why: the relay stops, it fell behind
 * (live_lag: only a lagging stream is CLOSING), or its reader left. */
static void
drop(struct relay *r, struct relay_client *c)
{
    relay_client_log_stream(c, "stream_closed",
                            r->stopping                  ? "relay_stopped"
                            : c->state == CLIENT_CLOSING ? "live_lag"
                                                         : "client_closed");
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->prev)
        c->prev->next = c->next;
    else
        r->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->nclients--;
    relay_client_free(c);
}

/* Sends what is queued; drops the client when it is gone, or when it was
 * closing and everything is out. */
static void
flush(struct relay *r, struct relay_client *c)
{
    int done = relay_client_flush(c);
    if (done < 0 || (done == 1 && c->state == CLIENT_CLOSING))
        drop(r, c);
    else
        rearm(r, c);
}

/* Queues a frame on a streaming client, ending it when it is too far
 * behind. Returns 0 when the frame is queued, -1 when the client was ended. */
static int
feed(struct relay *r, struct relay_client *c, const char *data, size_t len, int64_t now)
{
    size_t pending = c->out_len - c->out_off;
    if (pending > RELAY_SOFT_CAP) {
        if (c->over_soft_since_ms == 0)
            c->over_soft_since_ms = now;
    } else {
        c->over_soft_since_ms = 0;
    }
    if ((c->over_soft_since_ms && now - c->over_soft_since_ms > RELAY_SOFT_CAP_MS) ||
        relay_client_queue(c, data, len) != 0) {
        relay_client_lagged(c, now);
        r->lagged_total++;
        r->gaps_total++;
        return -1;
    }
    return 0;
}

/* Answers an input wait with the SessionView, exactly what GET
 * /v1/sessions/{id} answers, or with the problem the read met. */
static void
wait_end(struct relay *r, struct relay_client *c)
{
    json_t *view = NULL;
    enum store_rc rc = store_session_get(r->db, c->session_id, &view);
    if (rc == STORE_OK)
        relay_client_answer(c, 200, c->headers, view);
    else if (rc == STORE_SESSION_NOT_FOUND)
        relay_client_refuse(c, 404, "sessions", "session_not_found", store_strerror(rc),
                            c->headers);
    else
        relay_client_refuse(c, 503, "storage", "database_unavailable", store_strerror(rc),
                            c->headers);
    json_decref(view);
    flush(r, c);
}

/* Reads an input wait's run and answers the wait once it ended. A read that
 * fails leaves recheck set: the next tail (within RELAY_POLL_MS) retries. */
static void
wait_check(struct relay *r, struct relay_client *c)
{
    int ended;
    enum store_rc rc = store_run_ended(r->db, c->run_id, &ended);
    c->recheck = rc != STORE_OK && rc != STORE_RUN_NOT_FOUND;
    if (ended || rc == STORE_RUN_NOT_FOUND)
        wait_end(r, c);
    else
        rearm(r, c);
}

/* Moves the high-water mark to the newest event when the relay is behind
 * (tail), before a new stream takes it as its start; what it skips went to
 * nobody. When the database does not answer, the stream starts from the old
 * mark and is sent the events after it. */
static void
catch_up(struct relay *r)
{
    int64_t newest;
    if (r->behind && store_stream_newest(r->db, &newest) == STORE_OK) {
        if (newest > r->newest)
            r->newest = newest;
        r->behind = 0;
    }
}

/* Reads a page of events after the high-water mark and queues each on the
 * live streams that want it (none is read while no stream or wait is open). Sets r->tail_more when
 * the page was cut: the loop then comes back without sleeping, after the sockets had their turn. */
static void
tail(struct relay *r)
{
    int64_t now = now_ms();
    struct store_frame *f;
    int n;
    if (r->clients == NULL) {
        r->behind = 1;
        r->tail_more = 0;
        return;
    }
    if (store_stream_frames(r->db, r->newest, NULL, NULL, RELAY_TAIL_PAGE, RELAY_PAGE_BYTES, &f, &n,
                            &r->tail_more) != STORE_OK) {
        r->tail_more = 0;
        return; /* the database is away: the next poll retries */
    }
    /* Ids are dense: a jump means retention pruned events the tail never
     * read (it was away that long). The live streams go back to replay from
     * the old mark, which reports the gap. */
    if (n > 0 && f[0].id > r->newest + 1) {
        for (struct relay_client *c = r->clients; c; c = c->next)
            if (c->state == CLIENT_LIVE) {
                c->state = CLIENT_REPLAY;
                c->cursor = r->newest;
                r->replaying = 1;
            }
    }
    for (int i = 0; i < n; i++) {
        for (struct relay_client *c = r->clients; c; c = c->next)
            if (c->state == CLIENT_LIVE && f[i].id > c->cursor &&
                relay_client_wants(c, f[i].session_id, f[i].run_id)) {
                c->events_sent += feed(r, c, f[i].text, f[i].len, now) == 0;
                c->cursor = f[i].id;
            } else if (c->state == CLIENT_WAIT && f[i].run_id && !strcmp(f[i].run_id, c->run_id)) {
                c->recheck = 1;
            }
        r->newest = f[i].id;
    }
    store_frames_free(f, n);
    for (struct relay_client *c = r->clients, *next; c; c = next) {
        next = c->next;
        if (c->state == CLIENT_WAIT && c->recheck)
            wait_check(r, c);
        else if (c->out_off < c->out_len)
            flush(r, c);
    }
}

/* Queues a stream_gap for what retention took after the client's cursor,
 * if anything, and drops the page's frames it covers (the page was read
 * first: a prune in between is then reported, never skipped silently).
 * Returns the index of the first frame to send, or -1 to retry later. */
static int
replay_gap(struct relay *r, struct relay_client *c, const struct store_frame *f, int n)
{
    struct store_gap g;
    int found, i = 0;
    if (store_stream_gap(r->db, c->cursor, c->session_id, c->run_id, &g, &found) != STORE_OK)
        return -1;
    if (!found)
        return 0;
    if (relay_client_gap(c, &g) != 0)
        return -1;
    r->gaps_total++;
    log_msg("info", "stream_gap", "client %s: %lld events before %lld were pruned", c->peer,
            (long long)g.skipped, (long long)g.resume_after);
    while (i < n && f[i].id <= g.resume_after)
        i++;
    return i;
}

/* One page of history for each replaying client whose queue has room; a
 * short page means it has caught up and goes live. */
static void
replay(struct relay *r)
{
    r->replaying = 0;
    for (struct relay_client *c = r->clients, *next; c; c = next) {
        next = c->next;
        /* A client that reads slowly waits for EPOLLOUT: history is paced
         * by the reader, never dropped. */
        if (c->state != CLIENT_REPLAY || c->out_len - c->out_off > RELAY_SOFT_CAP)
            continue;
        struct store_frame *f;
        int n, more;
        if (store_stream_frames(r->db, c->cursor, c->session_id, c->run_id, RELAY_REPLAY_PAGE,
                                RELAY_PAGE_BYTES, &f, &n, &more) != STORE_OK)
            return;
        int queued = replay_gap(r, c, f, n);
        while (queued >= 0 && queued < n &&
               relay_client_queue(c, f[queued].text, f[queued].len) == 0) {
            c->cursor = f[queued++].id;
            c->events_sent++;
        }
        store_frames_free(f, n);
        if (!more && queued == n)
            c->state = CLIENT_LIVE;
        else
            r->replaying = 1; /* more to read: come back without sleeping */
        flush(r, c);
    }
}

/* What /v1/status shows of this relay (table relay_stats). */
static void
report(struct relay *r)
{
    int streams = 0, replaying = 0;
    for (struct relay_client *c = r->clients; c; c = c->next) {
        streams += c->state == CLIENT_REPLAY || c->state == CLIENT_LIVE;
        replaying += c->state == CLIENT_REPLAY;
    }
    struct store_relay_stats st = {r->recorded_by, r->started_ms,   streams,      replaying,
                                   r->newest,      r->lagged_total, r->gaps_total};
    if (store_relay_report(r->db, &st) != STORE_OK)
        log_msg("warn", "report_failed", "relay_stats not updated: %s", store_last_error(r->db));
}

/* Every RELAY_BEAT_TICK_MS: a heartbeat to each stream whose
 * RELAY_HEARTBEAT_MS are up. A new stream's first one comes after a part of
 * the period taken from its descriptor, so streams opened together (10,000
 * followers, a reconnect storm) beat spread over the period: all at once,
 * the burst held nginx, and every API request behind it, for hundreds of ms. */
static void
heartbeat(struct relay *r)
{
    int64_t now = now_ms(), slots = RELAY_HEARTBEAT_MS / RELAY_BEAT_TICK_MS;
    for (struct relay_client *c = r->clients, *next; c; c = next) {
        next = c->next;
        if (c->state != CLIENT_REPLAY && c->state != CLIENT_LIVE)
            continue;
        if (c->beat_at_ms == 0)
            c->beat_at_ms = now + (1 + c->fd % slots) * RELAY_BEAT_TICK_MS;
        if (now < c->beat_at_ms)
            continue;
        c->beat_at_ms = now + RELAY_HEARTBEAT_MS; /* before feed, which may drop c */
        feed(r, c, HEARTBEAT, sizeof HEARTBEAT - 1, now);
        flush(r, c);
    }
}

/* Closes clients whose last answer did not get out in time and clients
 * stuck in their request head; answers input waits whose time is up. */
static void
sweep(struct relay *r)
{
    int64_t now = now_ms();
    for (struct relay_client *c = r->clients, *next; c; c = next) {
        next = c->next;
        if (now < c->close_at_ms)
            continue;
        if (c->state == CLIENT_WAIT)
            wait_end(r, c);
        else if (c->state == CLIENT_CLOSING || c->state == CLIENT_HEAD)
            drop(r, c);
    }
}

/* (Re)connects the LISTEN connection, then catches up from the high-water
 * mark: what committed while it was away was never signalled. */
static void
listen_again(struct relay *r)
{
    char err[256];
    r->listener =
        store_listen(r->conninfo, (const char *const[]){"kheish_events", NULL}, err, sizeof err);
    if (r->listener == NULL) {
        r->listen_retry_ms = now_ms() + RELAY_LISTEN_RETRY_MS;
        log_msg("warn", "listen_failed", "LISTEN connection: %s", err);
        return;
    }
    watch(r, store_listener_fd(r->listener), EPOLLIN, &r->listener, EPOLL_CTL_ADD);
    log_msg("info", "listening", "LISTEN kheish_events from event %lld", (long long)r->newest);
    tail(r);
}

static void
on_notify(struct relay *r)
{
    if (store_listener_drain(r->listener, NULL, NULL) < 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, store_listener_fd(r->listener), NULL);
        store_listener_close(r->listener);
        r->listener = NULL;
        r->listen_retry_ms = now_ms() + RELAY_LISTEN_RETRY_MS;
        log_msg("warn", "listen_lost", "LISTEN connection lost; reconnecting");
        return;
    }
    tail(r);
}

static void
on_accept(struct relay *r)
{
    for (;;) {
        struct sockaddr_in6 sa;
        socklen_t len = sizeof sa;
        int fd = accept4(r->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct relay_client *c = calloc(1, sizeof *c);
        if (c == NULL || (c->head = malloc(RELAY_HEAD_MAX_BYTES)) == NULL) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->close_at_ms = now_ms() + RELAY_HEAD_TIMEOUT_MS;
        /* A unix socket buffers wmem_default (208 KiB) where loopback TCP
         * grows to megabytes: a stream of large events would sit in our
         * queue and be cut as a slow reader although nginx keeps up. */
        if (sa.sin6_family == AF_UNIX)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){RELAY_SOCKET_SNDBUF}, sizeof(int));
        char ip[INET6_ADDRSTRLEN] = "unknown";
        int port = 0;
        if (sa.sin6_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            port = ntohs(in->sin_port);
        } else if (sa.sin6_family == AF_INET6) {
            inet_ntop(AF_INET6, &sa.sin6_addr, ip, sizeof ip);
            port = ntohs(sa.sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
        c->next = r->clients;
        if (r->clients)
            r->clients->prev = c;
        r->clients = c;
        r->nclients++;
        c->watching = EPOLLIN | EPOLLRDHUP;
        watch(r, fd, c->watching, c, EPOLL_CTL_ADD);
        /* Near the descriptor limit a newcomer is refused, never a stream:
         * once its head is read, since closing a unix socket that holds
         * unread bytes resets it and the client would see no answer. */
        c->refuse_full = (rlim_t)fd + RELAY_FD_RESERVE >= r->fd_limit;
    }
}

static void
on_client(struct relay *r, struct relay_client *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        drop(r, c);
        return;
    }
    if ((events & EPOLLIN) && c->state == CLIENT_HEAD) {
        ssize_t n = recv(c->fd, c->head + c->head_len, RELAY_HEAD_MAX_BYTES - 1 - c->head_len, 0);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                drop(r, c);
            return;
        }
        c->head_len += (size_t)n;
        c->head[c->head_len] = '\0';
        /* memmem: a NUL in the head must not hide its end (client_parse
         * refuses it). */
        if (memmem(c->head, c->head_len, "\r\n\r\n", 4)) {
            catch_up(r);
            struct relay_client_env env = {&r->gate, r->db, r->recorded_by, r->newest};
            if (c->refuse_full)
                relay_client_refuse(c, 503, "events", NULL, "the relay is at its connection limit",
                                    "");
            else
                relay_client_start(c, &env);
            r->replaying |= c->state == CLIENT_REPLAY;
        } else if (c->head_len == RELAY_HEAD_MAX_BYTES - 1) {
            relay_client_refuse(c, 431, NULL, "bad_request", "the request head is too large", "");
        }
        if (c->state != CLIENT_HEAD) { /* the head is read: 8 KiB less per stream */
            free(c->head);
            c->head = NULL;
        }
        /* The run may have ended before the wait came: read it once now;
         * anything later is an event the tail has not read yet. */
        if (c->state == CLIENT_WAIT) {
            wait_check(r, c);
            return;
        }
    }
    flush(r, c);
}

/* The listening socket: a unix socket when spec is a path (an old one left
 * by a killed relay is replaced; 0660, so only nginx's workers may connect
 * and X-Real-IP can be trusted), else a TCP host:port, for relays on other
 * hosts than nginx. Returns the descriptor, or -1 with errno. */
static int
open_listener(const char *spec, const char *group)
{
    union {
        struct sockaddr sa;
        struct sockaddr_un un;
        struct sockaddr_in in;
    } a = {0};
    socklen_t len;
    int64_t port;
    if (spec[0] == '/') {
        if (strlen(spec) >= sizeof a.un.sun_path)
            return errno = ENAMETOOLONG, -1;
        a.un.sun_family = AF_UNIX;
        strcpy(a.un.sun_path, spec);
        len = sizeof a.un;
        unlink(spec);
    } else {
        char host[64];
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
            return errno = EINVAL, -1;
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
        a.in.sin_family = AF_INET;
        if (util_parse_i64(colon + 1, 1, 65535, &port) != 0 ||
            inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
            return errno = EINVAL, -1;
        a.in.sin_port = htons((uint16_t)port);
        len = sizeof a.in;
    }
    int fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0 && a.sa.sa_family == AF_INET)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, &a.sa, len) != 0 || listen(fd, 4096) != 0 ||
        (a.sa.sa_family == AF_UNIX && util_socket_restrict(spec, group) != 0)) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return errno = err, -1;
    }
    return fd;
}

int
relay_run(const struct relay_config *cfg)
{
    struct relay r = {.conninfo = cfg->database_url};
    char err[512], host[256] = "";
    if (gate_init(&r.gate, &cfg->gate, err, sizeof err) != 0 ||
        gate_attach(&r.gate, err, sizeof err) != 0) {
        fprintf(stderr, "kheish-sse-relay: %s\n", err);
        return 2;
    }
    gethostname(host, sizeof host - 1);
    snprintf(r.recorded_by, sizeof r.recorded_by, "kheish-sse-relay@%s:%d", host, (int)getpid());
    r.started_ms = util_now_ms();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    r.fd_limit = rl.rlim_cur;

    r.lfd = open_listener(cfg->listen, cfg->socket_group);
    if (r.lfd < 0) {
        fprintf(stderr, "kheish-sse-relay: cannot listen on %s: %s\n", cfg->listen,
                strerror(errno));
        return 1;
    }
    struct store_host sh = {.state_root = cfg->state_root};
    r.db = store_open(cfg->database_url, &sh);
    if (r.db == NULL || store_stream_newest(r.db, &r.newest) != STORE_OK) {
        fprintf(stderr, "kheish-sse-relay: cannot read the events table: %s\n",
                r.db ? store_last_error(r.db) : "out of memory");
        return 1;
    }
    /* A reconnect inside one loop turn must not hold every stream for long. */
    store_set_connect_budget(r.db, 100);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    r.sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    watch(&r, r.lfd, EPOLLIN, &r.lfd, EPOLL_CTL_ADD);
    watch(&r, r.sfd, EPOLLIN, &r.sfd, EPOLL_CTL_ADD);
    listen_again(&r);
    FILE *pf = cfg->pid_file ? fopen(cfg->pid_file, "we") : NULL;
    if (pf) {
        fprintf(pf, "%d\n", getpid());
        fclose(pf);
    }
    log_msg("info", "started", "serving streams on %s from event %lld", cfg->listen,
            (long long)r.newest);

    int64_t next_poll = now_ms() + RELAY_POLL_MS, next_beat = now_ms() + RELAY_BEAT_TICK_MS;
    int64_t next_sweep = next_poll, next_report = now_ms();
    for (int running = 1; running;) {
        int64_t now = now_ms();
        int64_t wake = next_poll < next_beat ? next_poll : next_beat;
        if (r.listener == NULL && r.listen_retry_ms < wake)
            wake = r.listen_retry_ms;
        struct epoll_event evs[256];
        int busy = r.replaying || r.tail_more;
        int n = epoll_wait(r.ep, evs, 256, busy ? 0 : (int)(wake > now ? wake - now : 0));
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &r.sfd)
                running = 0;
            else if (p == &r.lfd)
                on_accept(&r);
            else if (p == &r.listener)
                on_notify(&r);
            else
                on_client(&r, p, evs[i].events);
        }
        now = now_ms();
        if (r.listener == NULL && now >= r.listen_retry_ms)
            listen_again(&r);
        if (now >= next_poll || r.tail_more) {
            tail(&r);
            next_poll = now + RELAY_POLL_MS;
        }
        if (now >= next_report) {
            report(&r);
            next_report = now + RELAY_REPORT_MS;
        }
        if (now >= next_sweep) {
            sweep(&r);
            next_sweep = now + RELAY_POLL_MS;
        }
        if (now >= next_beat) {
            heartbeat(&r);
            next_beat = now + RELAY_BEAT_TICK_MS;
        }
        replay(&r);
    }
    log_msg("info", "stopped", "closing %d streams", r.nclients);
    r.stopping = 1;
    while (r.clients)
        drop(&r, r.clients);
    store_relay_forget(r.db, r.recorded_by);
    store_listener_close(r.listener);
    store_close(r.db);
    gate_detach(&r.gate);
    if (cfg->listen[0] == '/')
        unlink(cfg->listen);
    if (cfg->pid_file)
        unlink(cfg->pid_file);
    return 0;
}
