/*
 * The supervisor of the embedded stack: `kheish supervise` (a hidden verb,
 * started by `kheish up`, one per state root) is the parent of kheish-fcgi,
 * the relays and the runners, and starts again, within a second, any of them
 * that ends without being asked to: a crash is logged (logs/supervisor.log:
 * the process, its pid, its exit code or signal) and counted. A daemon that
 * keeps dying soon after its start is started again after a backoff that
 * doubles up to STACK_RESTART_BACKOFF_MAX_MS, and the log says so.
 *
 * `kheish up` talks to it over run/supervisor.sock (0600): it sends its
 * environment (which the daemons started from then on inherit: the provider
 * keys that api_key_env names live there and must never be written to disk),
 * the supervisor reloads stack.env and reconciles: it starts what is missing,
 * stops what is no longer wanted (runners beyond --runners), restarts what
 * reads a routes file whose content or path changed, and answers "ok".
 *
 * Its state is run/supervisor.json, rewritten (temp file and rename) after
 * every change: {pid, started_at_ms, restart_count, daemons: [{name,
 * process, pid, restart_count, last_exit, last_restart_at_ms, backoff_ms,
 * routes}]}. kheish-fcgi reads it for /v1/status (a file, not a table: the
 * supervisor must keep restarting while PostgreSQL is down, and counts are
 * per host); `up` reads it to notice a daemon that died while it waited;
 * a supervisor started after one was killed reads it to adopt the daemons
 * still running (it polls them, and how an adopted one ended is unknown).
 * SIGTERM (`kheish down`) ends the supervisor alone: down then stops the
 * daemons through their pid files, in its own order.
 *
 * `kheish serve` runs the same loop in the foreground (st->foreground):
 * the daemons log to its stderr, no up reaches it (serve holds the state
 * root's lock), it also starts nginx again if it dies, it gives up (exit 1)
 * on a daemon that cannot be kept running (STACK_GIVE_UP_DEATHS quick deaths
 * in a row, or a binary that cannot be started), and on SIGTERM, SIGINT or
 * SIGHUP (its terminal closed) it stops everything, as down does.
 */
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "routes.h"
#include "util.h"

#define SUP_TICK_MS         100           /* reap and restart at least this often */
#define SUP_ENV_MAX_BYTES   (1024 * 1024) /* the environment up sends */
#define SUP_IO_TIMEOUT_MS   5000          /* to send or read it */
#define SUP_START_WAIT_MS   5000          /* up waits this long for a new supervisor */
#define SUP_RETRY_SPAWN_MS  1000          /* after a fork or exec failure */
#define SUP_STATE_MAX_BYTES (256 * 1024)  /* run/supervisor.json */
#define SUP_REPLY_MAX       512

static const char sup_usage[] = "usage: kheish supervise [--state-root DIR]\n"
                                "Started by `kheish up`; not for operators.\n";

struct slot {
    pid_t pid;           /* 0: not running */
    int child;           /* ours (waitpid); else adopted, polled through /proc */
    int stopping;        /* asked to stop: its end is no crash */
    int64_t started_ms;  /* monotonic */
    int64_t start_at_ms; /* monotonic: not started again before */
    int quick;           /* deaths in a row, each within STACK_CRASH_WINDOW_MS of its start */
    int64_t backoff_ms;  /* before the next start: from the second quick death on */
    int restarts;        /* crashes seen and restarted */
    char last_exit[32];  /* "exit 1", "signal 9", "unknown" */
    int64_t last_restart_at_ms;
    char routes[STACK_ROUTES_KEY_MAX]; /* stack_routes_key when started */
};

struct sup {
    struct stack st;
    int failed; /* foreground: a daemon could not be kept running */
    char bindir[PATH_MAX];
    struct slot slots[STACK_SLOTS];
    char *route_env[ROUTES_MAX_ROUTES + 1];
    char *env_blob; /* what environ points into after a handover */
    int64_t started_at_ms;
};

static volatile sig_atomic_t sup_quit;

static void
on_quit(int sig)
{
    (void)sig;
    sup_quit = 1;
}

static int64_t
mono_ms(void)
{
    return util_monotonic_us() / 1000;
}

static void
sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

/* "<sha256> <path>" of the stack's routes file, "" without one: a daemon
 * started with another key reads another file than the stack names now. */
void
stack_routes_key(const struct stack *st, char out[STACK_ROUTES_KEY_MAX])
{
    if (st->routes_file[0] == '\0')
        out[0] = '\0';
    else
        snprintf(out, STACK_ROUTES_KEY_MAX, "%.64s %s", st->routes_sha256, st->routes_file);
}

static void
state_write(const struct sup *s)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    json_t *daemons = json_array();
    int total = 0;
    for (int i = 0; i < STACK_SLOTS; i++) {
        const struct slot *sl = &s->slots[i];
        struct stack_daemon d;
        total += sl->restarts;
        if (sl->pid == 0 && !stack_daemon_wanted(&s->st, i))
            continue; /* not part of the stack (any more) */
        stack_daemon_of(i, &d);
        json_array_append_new(
            daemons,
            json_pack("{s:s, s:s, s:o, s:i, s:o, s:o, s:I, s:s}", "name", d.name, "process", d.comm,
                      "pid", sl->pid ? json_integer(sl->pid) : json_null(), "restart_count",
                      sl->restarts, "last_exit",
                      sl->last_exit[0] ? json_string(sl->last_exit) : json_null(),
                      "last_restart_at_ms",
                      sl->restarts ? json_integer(sl->last_restart_at_ms) : json_null(),
                      "backoff_ms", (json_int_t)sl->backoff_ms, "routes", sl->routes));
    }
    json_t *j = json_pack("{s:i, s:I, s:i, s:o}", "pid", (int)getpid(), "started_at_ms",
                          (json_int_t)s->started_at_ms, "restart_count", total, "daemons", daemons);
    stack_path(&s->st, "run/supervisor.json", path);
    stack_path(&s->st, "run/supervisor.json.tmp", tmp);
    if (json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, path) != 0)
        log_msg("error", "state_write_failed", "%s: %s", path, strerror(errno));
    json_decref(j);
}

/* The previous supervisor's state, NULL when there is none. */
static json_t *
state_read(const struct stack *st)
{
    char path[PATH_MAX];
    stack_path(st, "run/supervisor.json", path);
    return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

/* The entry of daemon name in a state document, or NULL. */
static json_t *
state_daemon(json_t *state, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(state, "daemons"), i, d)
    {
        if (json_is_string(json_object_get(d, "name")) &&
            !strcmp(json_string_value(json_object_get(d, "name")), name))
            return d;
    }
    return NULL;
}

/* Daemons alive without a supervisor (the last one was killed) are adopted,
 * with the routes key the last one recorded for that pid. */
static void
adopt(struct sup *s)
{
    json_t *state = state_read(&s->st);
    for (int i = 0; i < STACK_SLOTS; i++) {
        struct stack_daemon d;
        pid_t pid;
        if (!stack_daemon_alive(&s->st, i, &pid))
            continue;
        stack_daemon_of(i, &d);
        json_t *e = state_daemon(state, d.name);
        s->slots[i].pid = pid;
        s->slots[i].started_ms = mono_ms();
        if (e && json_integer_value(json_object_get(e, "pid")) == pid &&
            json_is_string(json_object_get(e, "routes")))
            snprintf(s->slots[i].routes, sizeof s->slots[i].routes, "%s",
                     json_string_value(json_object_get(e, "routes")));
        else
            snprintf(s->slots[i].routes, sizeof s->slots[i].routes, "unknown");
        log_fields("info", json_pack("{s:s, s:s, s:s, s:i}", "event", "adopted", "process", d.comm,
                                     "name", d.name, "daemon_pid", (int)pid));
    }
    json_decref(state);
}

/* In the foreground, ends the loop with a failure: a service manager then
 * sees the stack stop rather than limp. */
static void
give_up(struct sup *s, const char *name, const char *why)
{
    log_fields("error", json_pack("{s:s, s:s, s:s}", "event", "gave_up", "name", name, "msg", why));
    s->failed = 1;
    sup_quit = 1;
}

/* Slot i's daemon is gone; how says how it ended. Unless we asked for it,
 * that is a crash: counted, logged, and the slot is started again at once,
 * or after the backoff when it is the second quick death in a row or more. */
static void
on_end(struct sup *s, int i, const char *how, const char *field, int value)
{
    struct slot *sl = &s->slots[i];
    struct stack_daemon d;
    stack_daemon_of(i, &d);
    json_t *f = json_pack("{s:s, s:s, s:i, s:s}", "process", d.comm, "name", d.name, "daemon_pid",
                          (int)sl->pid, "ended", how);
    if (field)
        json_object_set_new(f, field, json_integer(value));
    int64_t now = mono_ms(), lived = now - sl->started_ms;
    sl->pid = 0;
    if (sl->stopping) {
        sl->stopping = 0;
        json_object_set_new(f, "event", json_string("stopped"));
        log_fields("info", f);
        return;
    }
    sl->quick = lived >= STACK_CRASH_WINDOW_MS ? 0 : sl->quick + 1;
    sl->backoff_ms = 0;
    for (int k = 2; k <= sl->quick && sl->backoff_ms < STACK_RESTART_BACKOFF_MAX_MS; k++)
        sl->backoff_ms = sl->backoff_ms ? 2 * sl->backoff_ms : STACK_RESTART_BACKOFF_MIN_MS;
    if (sl->backoff_ms > STACK_RESTART_BACKOFF_MAX_MS)
        sl->backoff_ms = STACK_RESTART_BACKOFF_MAX_MS;
    sl->restarts++;
    if (s->st.foreground && sl->quick >= STACK_GIVE_UP_DEATHS)
        give_up(s, d.name, "it keeps dying right after its start");
    sl->start_at_ms = now + sl->backoff_ms;
    sl->last_restart_at_ms = util_now_ms();
    snprintf(sl->last_exit, sizeof sl->last_exit, "%s", how);
    char msg[160];
    if (sl->backoff_ms)
        snprintf(msg, sizeof msg,
                 "%s died %lld ms after its start: crash loop, restarting in %lld ms", d.name,
                 (long long)lived, (long long)sl->backoff_ms);
    else
        snprintf(msg, sizeof msg, "%s died: restarting it", d.name);
    json_t *more = json_pack("{s:s, s:s, s:I, s:I, s:i}", "event", "daemon_died", "msg", msg,
                             "lived_ms", (json_int_t)lived, "backoff_ms",
                             (json_int_t)sl->backoff_ms, "restart_count", sl->restarts);
    json_object_update(f, more);
    json_decref(more);
    log_fields(sl->backoff_ms ? "error" : "warn", f);
}

/* Notices every slot whose daemon ended: children through waitpid, adopted
 * ones through /proc. Returns how many. */
static int
reap(struct sup *s)
{
    int status, n = 0;
    pid_t pid;
    char how[32];
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < STACK_SLOTS; i++) {
            if (s->slots[i].pid != pid || !s->slots[i].child)
                continue;
            int sig = WIFSIGNALED(status);
            int v = sig ? WTERMSIG(status) : WEXITSTATUS(status);
            snprintf(how, sizeof how, "%s %d", sig ? "signal" : "exit", v);
            on_end(s, i, how, sig ? "signal" : "exit_code", v);
            n++;
        }
    }
    for (int i = 0; i < STACK_SLOTS; i++) {
        struct stack_daemon d;
        stack_daemon_of(i, &d);
        if (s->slots[i].pid && !s->slots[i].child && !stack_proc_is(s->slots[i].pid, d.comm)) {
            on_end(s, i, "unknown", NULL, 0);
            n++;
        }
    }
    return n;
}

/* Starts every wanted slot that is not running and whose backoff is over;
 * one that has lived STACK_CRASH_WINDOW_MS is out of its crash loop.
 * Returns how many changed. */
static int
start_due(struct sup *s)
{
    int n = 0;
    int64_t now = mono_ms();
    for (int i = 0; i < STACK_SLOTS; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->pid && sl->quick && now - sl->started_ms >= STACK_CRASH_WINDOW_MS) {
            sl->quick = 0;
            sl->backoff_ms = 0;
            n++;
        }
        if (sl->pid || now < sl->start_at_ms || !stack_daemon_wanted(&s->st, i))
            continue;
        pid_t pid = stack_daemon_spawn(&s->st, i, s->bindir, (const char *const *)s->route_env);
        n++;
        struct stack_daemon d;
        stack_daemon_of(i, &d);
        if (pid < 0 && s->st.foreground)
            give_up(s, d.name, "it cannot be started");
        if (pid < 0) {
            sl->start_at_ms = now + SUP_RETRY_SPAWN_MS;
            continue;
        }
        sl->pid = pid;
        sl->child = 1;
        sl->started_ms = now;
        stack_routes_key(&s->st, sl->routes);
        log_fields("info", json_pack("{s:s, s:s, s:s, s:i}", "event", "started", "process", d.comm,
                                     "name", d.name, "daemon_pid", (int)pid));
    }
    return n;
}

/* Stops slot i's daemon and waits for it (kheish-fcgi drains; a runner
 * finishes or interrupts its runs), reaping whatever else ends meanwhile.
 * SIGKILL after the timeout. */
static void
stop_slot(struct sup *s, int i)
{
    struct slot *sl = &s->slots[i];
    int64_t deadline = mono_ms() + STACK_STOP_EXTRA_MS + (i == 0 ? s->st.drain_ms : 0);
    sl->stopping = 1;
    kill(sl->pid, SIGTERM);
    while (sl->pid) {
        if (reap(s))
            continue;
        if (mono_ms() > deadline && kill(sl->pid, SIGKILL) == 0) {
            log_msg("error", "stop_timeout", "pid %d ignored SIGTERM: killed", (int)sl->pid);
            deadline = INT64_MAX;
        }
        sleep_ms(20);
    }
}

/* Brings the daemons in line with stack.env (see the top of the file). A
 * daemon in a crash loop starts afresh, now and with up's environment: the
 * operator may just have fixed what made it die (a missing secret). */
static void
reconcile(struct sup *s)
{
    char key[STACK_ROUTES_KEY_MAX];
    if (stack_env_load(&s->st) != 0)
        log_msg("error", "stack_env_unreadable", "keeping the previous settings");
    stack_route_env_free(s->route_env);
    stack_route_env(&s->st, s->route_env);
    stack_routes_key(&s->st, key);
    for (int i = 0; i < STACK_SLOTS; i++) {
        struct slot *sl = &s->slots[i];
        struct stack_daemon d;
        stack_daemon_of(i, &d);
        if (sl->pid && (!stack_daemon_wanted(&s->st, i) || sl->backoff_ms ||
                        (d.reads_routes && strcmp(sl->routes, key))))
            stop_slot(s, i);
        sl->start_at_ms = 0;
        sl->quick = 0;
        sl->backoff_ms = 0;
    }
    start_due(s);
    state_write(s);
}

/* Reads up's environment (NUL-separated entries) from fd and makes it ours:
 * the daemons started from now on inherit it. Returns 0 or -1. */
static int
take_env(struct sup *s, int fd)
{
    size_t len = 0, cap = 64 * 1024;
    char *blob = malloc(cap);
    ssize_t n = 1;
    while (blob && n > 0) {
        if (len + 1 == cap) {
            char *more = cap >= SUP_ENV_MAX_BYTES ? NULL : realloc(blob, cap * 2);
            if (more == NULL)
                break;
            blob = more;
            cap *= 2;
        }
        n = read(fd, blob + len, cap - 1 - len);
        if (n > 0)
            len += (size_t)n;
    }
    if (blob == NULL || n != 0) {
        free(blob);
        return -1;
    }
    blob[len] = '\0';
    clearenv();
    for (char *e = blob; e < blob + len; e += strlen(e) + 1)
        if (strchr(e, '=') && putenv(e) != 0)
            break;
    free(s->env_blob);
    s->env_blob = blob;
    return 0;
}

/* One handover from up: its environment, a reconcile, the answer. */
static void
handover(struct sup *s, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct timeval tv = {SUP_IO_TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const char *reply = "ok\n";
    if (take_env(s, fd) != 0)
        reply = "the environment could not be read\n";
    else
        reconcile(s);
    if (write(fd, reply, strlen(reply)) < 0)
        log_msg("warn", "reply_failed", "up left before the answer: %s", strerror(errno));
    close(fd);
}

static int
listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return errno = ENAMETOOLONG, -1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(077); /* 0600: only up, as the same user, may hand over */
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 8) == 0;
    umask(old);
    if (!ok && fd >= 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Foreground only: nginx is not our child (it daemonizes), so it is polled;
 * one that died is started again, or the loop gives up. */
static void
watch_nginx(struct sup *s)
{
    if (stack_nginx_running(&s->st))
        return;
    log_msg("error", "nginx_died", "nginx is not running: starting it again");
    if (stack_nginx_start(&s->st) != 0)
        give_up(s, "nginx", "it cannot be started again");
}

static void
stop_slots(struct sup *s, int from, int to)
{
    for (int i = from; i < to; i++)
        if (s->slots[i].pid)
            stop_slot(s, i);
}

/* Foreground only: what down stops, in its order: nginx first so no request
 * reaches a daemon that is going away, then kheish-fcgi, the runners, the
 * relays, the database last. */
static void
stop_all(struct sup *s)
{
    stack_nginx_stop(&s->st);
    stop_slots(s, 0, 1);
    stop_slots(s, 1 + STACK_RELAYS, STACK_SLOTS);
    stop_slots(s, 1, 1 + STACK_RELAYS);
    state_write(s);
    if (s->st.embedded_pg)
        stack_pg_stop(&s->st);
}

int
stack_supervise(const struct stack *st, const char *bindir)
{
    static struct sup s; /* large: not on the stack */
    char sock[PATH_MAX], pid_file[PATH_MAX];
    s.st = *st;
    snprintf(s.bindir, sizeof s.bindir, "%s", bindir);
    stack_path(&s.st, "run/supervisor.sock", sock);
    stack_path(&s.st, "run/supervisor.pid", pid_file);
    int lfd = listen_unix(sock);
    if (lfd < 0) {
        fprintf(stderr, "kheish: cannot listen on %s: %s\n", sock, strerror(errno));
        return EXIT_GENERIC;
    }
    struct sigaction sa = {.sa_handler = on_quit};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.started_at_ms = util_now_ms();
    s.route_env[0] = NULL;
    FILE *pf = fopen(pid_file, "we");
    if (pf) {
        fprintf(pf, "%d\n", getpid());
        fclose(pf);
    }
    log_msg("info", "started", "supervising the daemons of %s", s.st.root);
    adopt(&s);
    reconcile(&s);
    while (!sup_quit) {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, SUP_TICK_MS) > 0)
            handover(&s, lfd);
        if (reap(&s) + start_due(&s) > 0)
            state_write(&s);
        if (s.st.foreground && !sup_quit)
            watch_nginx(&s);
    }
    if (s.st.foreground) {
        log_msg("info", "stopping", "stopping nginx, the daemons and the database");
        stop_all(&s);
    } else {
        log_msg("info", "stopped", "leaving the daemons to `kheish down`");
    }
    close(lfd);
    unlink(sock);
    unlink(pid_file);
    return s.failed ? EXIT_GENERIC : EXIT_OK;
}

int
cmd_supervise(const struct cli *c, int argc, char **argv)
{
    static const char *const allowed[] = {"--state-root", NULL};
    struct stack_opts o = {0};
    struct stack st = {0};
    char bindir[PATH_MAX];
    (void)c;
    int rc = stack_opts_parse(argc, argv, allowed, sup_usage, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_BAD_REQUEST;
    log_init("kheish-supervisor");
    if (stack_self_dir(bindir) != 0 || stack_root_resolve(o.state_root, 0, &st) != 0 ||
        stack_env_load(&st) != 0 || !st.loaded) {
        fprintf(stderr, "kheish supervise: no stack in %s\n", st.root);
        return EXIT_GENERIC;
    }
    return stack_supervise(&st, bindir);
}

/* The supervisor of st: 1 (and *pid) when alive. */
static int
supervisor_alive(const struct stack *st, pid_t *pid)
{
    char pid_file[PATH_MAX];
    stack_path(st, "run/supervisor.pid", pid_file);
    return stack_pid_alive(pid_file, "kheish", pid);
}

int
stack_supervisor_running(const struct stack *st)
{
    pid_t pid;
    return supervisor_alive(st, &pid);
}

/* SIGTERM: the supervisor ends and leaves its daemons to the caller. */
int
stack_supervisor_stop(const struct stack *st)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    stack_path(st, "run/supervisor.pid", pid_file);
    return stack_pid_stop(pid_file, "kheish", SIGTERM, STACK_STOP_EXTRA_MS, &pid);
}

static int
connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -1;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Starts the supervisor unless it runs, hands it our environment and waits
 * for its reconcile (which may stop daemons: up to their drain). Returns 0
 * or -1 after printing why. */
int
stack_supervisor_up(const struct stack *st, const char *bindir)
{
    char sock[PATH_MAX], log[PATH_MAX], bin[PATH_MAX], reply[SUP_REPLY_MAX];
    pid_t pid = 0;
    stack_path(st, "run/supervisor.sock", sock);
    if (!supervisor_alive(st, &pid)) {
        stack_path(st, "logs/supervisor.log", log);
        snprintf(bin, sizeof bin, "%s/kheish", bindir);
        struct stack_cmd c = {
            .argv = (const char *const[]){bin, "supervise", "--state-root", st->root, NULL},
            .log_path = log,
            .detach = 1,
        };
        unlink(sock);
        if ((pid = stack_cmd_spawn(&c)) < 0)
            return -1;
    }
    int fd = -1, status;
    for (int64_t end = mono_ms() + SUP_START_WAIT_MS; fd < 0 && mono_ms() < end; sleep_ms(20)) {
        if ((fd = connect_unix(sock)) < 0 && waitpid(pid, &status, WNOHANG) == pid)
            break;
    }
    if (fd < 0) {
        fprintf(stderr, "kheish up: the supervisor did not start; see %s/logs/supervisor.log\n",
                st->root);
        return -1;
    }
    extern char **environ;
    int ok = 1;
    for (char **e = environ; ok && *e; e++)
        ok = write(fd, *e, strlen(*e) + 1) == (ssize_t)(strlen(*e) + 1);
    shutdown(fd, SHUT_WR);
    ssize_t n = ok ? read(fd, reply, sizeof reply - 1) : -1;
    close(fd);
    if (n > 0 && (reply[n] = '\0', !strcmp(reply, "ok\n")))
        return 0;
    fprintf(stderr, "kheish up: the supervisor refused the handover: %s\n",
            n > 0 ? reply : "no answer");
    return -1;
}

/* The supervisor's total restart count, and in last (when non-zero) the
 * newest restart as "<name> (<how>)". 0 when there is no supervisor state. */
int
stack_supervisor_restarts(const struct stack *st, char *last, size_t size)
{
    json_t *state = state_read(st), *d;
    size_t i;
    int64_t newest = -1;
    json_array_foreach(json_object_get(state, "daemons"), i, d)
    {
        int64_t at = json_integer_value(json_object_get(d, "last_restart_at_ms"));
        if (json_integer_value(json_object_get(d, "restart_count")) > 0 && at > newest) {
            newest = at;
            snprintf(last, size, "%s (%s)", json_string_value(json_object_get(d, "name")),
                     json_string_value(json_object_get(d, "last_exit")));
        }
    }
    int total = (int)json_integer_value(json_object_get(state, "restart_count"));
    json_decref(state);
    return total;
}
