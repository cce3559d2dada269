/*
 * The stack's own daemons, kheish-fcgi, STACK_RELAYS kheish-sse-relays and,
 * with a routes file, st->runners kheish-runners (--runners):
 * started detached with their output in logs/<name>.log, found and stopped
 * through run/<name>.pid (which each writes itself once it listens).
 */
#include "stack.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ENV_ENTRY_MAX (STACK_URL_MAX + PATH_MAX)

struct daemon {
    const char *comm; /* binary, and process name in /proc */
    char pid_rel[32], log_rel[32];
};
static const struct daemon fcgi = {"kheish-fcgi", "run/fcgi.pid", "logs/fcgi.log"};

/* Instance i (0-based) of a daemon run several times is <name>-<i + 1>. */
static struct daemon
instance(const char *comm, const char *name, int i)
{
    struct daemon d = {comm, "", ""};
    snprintf(d.pid_rel, sizeof d.pid_rel, "run/%s-%d.pid", name, i + 1);
    snprintf(d.log_rel, sizeof d.log_rel, "logs/%s-%d.log", name, i + 1);
    return d;
}

static struct daemon
relay(int i)
{
    return instance("kheish-sse-relay", "relay", i);
}

static struct daemon
runner(int i)
{
    return instance("kheish-runner", "runner", i);
}

static int
running(const struct stack *st, const struct daemon *d)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    stack_path(st, d->pid_rel, pid_file);
    return stack_pid_alive(pid_file, d->comm, &pid);
}

/* SIGTERM, then wait up to timeout_ms. Returns 1 stopped, 0 not running,
 * -1 still running. */
static int
stop(const struct stack *st, const struct daemon *d, int64_t timeout_ms)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    stack_path(st, d->pid_rel, pid_file);
    return stack_pid_stop(pid_file, d->comm, SIGTERM, timeout_ms, &pid);
}

/* Starts d in its own session with flags (after --pid-file), unless its pid
 * file names a live one. The database URL, the token files and the master
 * key file travel in the environment, not argv, so nothing secret shows in
 * ps. Returns its
 * pid, 0 when it was already running, -1 on failure. */
static pid_t
start(const struct stack *st, const struct daemon *d, const char *bindir, const char *const *flags)
{
    char bin[PATH_MAX], pid_file[PATH_MAX], log[PATH_MAX], tok_a[PATH_MAX], tok_r[PATH_MAX];
    char key[PATH_MAX], env_db[ENV_ENTRY_MAX], env_a[ENV_ENTRY_MAX], env_r[ENV_ENTRY_MAX];
    char env_k[ENV_ENTRY_MAX];
    const char *argv[32] = {bin, "--pid-file", pid_file};
    size_t n = 3;
    pid_t pid;
    stack_path(st, d->pid_rel, pid_file);
    if (stack_pid_alive(pid_file, d->comm, &pid)) {
        fprintf(stderr, "kheish up: %s is already running (pid %d)\n", d->comm, (int)pid);
        return 0;
    }
    if (snprintf(bin, sizeof bin, "%s/%s", bindir, d->comm) >= (int)sizeof bin ||
        access(bin, X_OK) != 0) {
        fprintf(stderr, "kheish up: %s is missing (%s); build it with `make`\n", bin,
                strerror(errno));
        return -1;
    }
    while (*flags && n < sizeof argv / sizeof argv[0] - 1)
        argv[n++] = *flags++;
    argv[n] = NULL;
    stack_path(st, d->log_rel, log);
    stack_path(st, "tokens/admin-token", tok_a);
    stack_path(st, "tokens/readonly-token", tok_r);
    snprintf(env_db, sizeof env_db, "KHEISH_DATABASE_URL=%s", st->database_url);
    snprintf(env_a, sizeof env_a, "KHEISH_DAEMON_ADMIN_TOKEN_FILE=%s", tok_a);
    snprintf(env_r, sizeof env_r, "KHEISH_DAEMON_READONLY_TOKEN_FILE=%s", tok_r);
    /* A key named in our environment is inherited as is; else up's own. */
    int own_key = stack_master_key_file(st, key);
    snprintf(env_k, sizeof env_k, "KHEISH_AUTH_STORE_MASTER_KEY_FILE=%s", key);
    struct stack_cmd c = {
        .argv = argv,
        .log_path = log,
        .env = (const char *const[]){env_db, env_a, env_r, own_key ? env_k : NULL, NULL},
        .detach = 1,
    };
    return stack_cmd_spawn(&c);
}

int
stack_fcgi_running(const struct stack *st)
{
    return running(st, &fcgi);
}

/* Waits for the drain and for workers to finish their request. */
int
stack_fcgi_stop(const struct stack *st)
{
    return stop(st, &fcgi, (int64_t)st->drain_ms + STACK_STOP_EXTRA_MS);
}

pid_t
stack_fcgi_start(const struct stack *st, const char *bindir)
{
    char sock[PATH_MAX], ws[PATH_MAX], workers[16], drain[16], bind[64];
    stack_path(st, "run/api.sock", sock);
    stack_path(st, "workspace", ws);
    snprintf(workers, sizeof workers, "%d", st->workers);
    snprintf(drain, sizeof drain, "%d", st->drain_ms);
    stack_bind(st, bind, sizeof bind);
    const char *flags[20] = {"--state-root",     st->root, "--socket",  sock,
                             "--workspace-root", ws,       "--workers", workers,
                             "--drain-ms",       drain,    "--bind",    bind};
    size_t n = 12;
    if (geteuid() == 0) { /* nginx's workers are nobody:nogroup then */
        flags[n++] = "--socket-group";
        flags[n++] = STACK_NGINX_GROUP;
    }
    if (st->routes_file[0]) { /* route readiness, the submission guard */
        flags[n++] = "--routes-file";
        flags[n++] = st->routes_file;
    }
    fprintf(stderr, "kheish up: starting kheish-fcgi with %d workers\n", st->workers);
    return start(st, &fcgi, bindir, flags);
}

/* How many of the n instances run (and listen: each writes its pid file
 * once it does). */
static int
count_running(const struct stack *st, struct daemon (*make)(int), int n)
{
    int up = 0;
    for (int i = 0; i < n; i++) {
        struct daemon d = make(i);
        up += running(st, &d);
    }
    return up;
}

/* Stops the n instances: 1 when any was stopped, 0 when none ran, -1 when
 * one is still running. A runner finishes or interrupts its run first. */
static int
stop_all(const struct stack *st, struct daemon (*make)(int), int n)
{
    int stopped = 0, stuck = 0;
    for (int i = 0; i < n; i++) {
        struct daemon d = make(i);
        int r = stop(st, &d, STACK_STOP_EXTRA_MS);
        stopped |= r > 0;
        stuck |= r < 0;
    }
    return stuck ? -1 : stopped;
}

int
stack_relays_running(const struct stack *st)
{
    return count_running(st, relay, STACK_RELAYS);
}

int
stack_relays_stop(const struct stack *st)
{
    return stop_all(st, relay, STACK_RELAYS);
}

int
stack_runners_running(const struct stack *st)
{
    return count_running(st, runner, STACK_MAX_RUNNERS);
}

/* Every runner, also those of an earlier up with more. */
int
stack_runners_stop(const struct stack *st)
{
    return stop_all(st, runner, STACK_MAX_RUNNERS);
}

/* Starts the relays that are not running. Returns 0 or -1. */
int
stack_relays_start(const struct stack *st, const char *bindir)
{
    char listen[64], bind[64];
    stack_bind(st, bind, sizeof bind);
    for (int i = 0; i < STACK_RELAYS; i++) {
        struct daemon d = relay(i);
        stack_relay_addr(st, i, listen, sizeof listen);
        if (!running(st, &d))
            fprintf(stderr, "kheish up: starting kheish-sse-relay on %s\n", listen);
        if (start(st, &d, bindir,
                  (const char *const[]){"--state-root", st->root, "--listen", listen, "--bind",
                                        bind, NULL}) < 0)
            return -1;
    }
    return 0;
}

/* Starts the runners that are not running, when the stack has a routes
 * file, recording the pids of those started now. Returns 0 or -1. */
int
stack_runners_start(const struct stack *st, const char *bindir, struct started *started)
{
    if (st->routes_file[0] == '\0') {
        fprintf(stderr, "kheish up: no routes file: runs stay queued until `kheish up "
                        "--routes-file FILE` starts the runners\n");
        return 0;
    }
    /* Fewer than an earlier up: the extra ones stop, finishing or
     * interrupting their runs. */
    for (int i = st->runners; i < STACK_MAX_RUNNERS; i++) {
        struct daemon d = runner(i);
        if (stop(st, &d, STACK_STOP_EXTRA_MS) < 0)
            return -1;
    }
    for (int i = 0; i < st->runners; i++) {
        struct daemon d = runner(i);
        if (!running(st, &d))
            fprintf(stderr, "kheish up: starting kheish-runner with %s\n", st->routes_file);
        started[i].name = d.comm;
        started[i].pid =
            start(st, &d, bindir, (const char *const[]){"--routes-file", st->routes_file, NULL});
        if (started[i].pid < 0)
            return -1;
    }
    return 0;
}
