/*
 * The stack's own daemons, kheish-fcgi, STACK_RELAYS kheish-sse-relays and,
 * with a routes file, st->runners kheish-runners (--runners), one per slot:
 * started detached by the supervisor (stack_supervise.c) with their output
 * in logs/<name>.log, found and stopped through run/<name>.pid (which each
 * writes itself once it listens).
 */
#include "stack.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "routes.h"

#define ENV_ENTRY_MAX (STACK_URL_MAX + PATH_MAX)
#define SLOT_RELAY0   1
#define SLOT_RUNNER0  (1 + STACK_RELAYS)

/* Slot 0 is kheish-fcgi, then the relays, then the runners; instance i
 * (0-based) of a daemon run several times is <name>-<i + 1>. */
void
stack_daemon_of(int slot, struct stack_daemon *d)
{
    if (slot == 0)
        *d = (struct stack_daemon){"kheish-fcgi", "fcgi", 1};
    else if (slot < SLOT_RUNNER0)
        *d = (struct stack_daemon){"kheish-sse-relay", "", 0};
    else
        *d = (struct stack_daemon){"kheish-runner", "", 1};
    if (slot > 0)
        snprintf(d->name, sizeof d->name, "%s-%d", slot < SLOT_RUNNER0 ? "relay" : "runner",
                 slot < SLOT_RUNNER0 ? slot - SLOT_RELAY0 + 1 : slot - SLOT_RUNNER0 + 1);
}

/* 1 when the stack runs slot: fcgi and the relays always, runner i when
 * there is a routes file and i < st->runners. */
int
stack_daemon_wanted(const struct stack *st, int slot)
{
    return slot < SLOT_RUNNER0 || (st->routes_file[0] && slot - SLOT_RUNNER0 < st->runners);
}

static void
rel_path(const struct stack *st, const struct stack_daemon *d, const char *dir, const char *ext,
         char out[PATH_MAX])
{
    char rel[64];
    snprintf(rel, sizeof rel, "%s/%s.%s", dir, d->name, ext);
    stack_path(st, rel, out);
}

/* 1 (and *pid) when slot's pid file names a live process of its binary. */
int
stack_daemon_alive(const struct stack *st, int slot, pid_t *pid)
{
    struct stack_daemon d;
    char pid_file[PATH_MAX];
    stack_daemon_of(slot, &d);
    rel_path(st, &d, "run", "pid", pid_file);
    return stack_pid_alive(pid_file, d.comm, pid);
}

/* The names of the variables the routes file's api_key_env fields name,
 * NULL-terminated, into names (ROUTES_MAX_ROUTES + 1 entries, freed with
 * stack_route_env_free): only the runners may see them. An unreadable file
 * names none (the runners then refuse to start). */
void
stack_route_env(const struct stack *st, char **names)
{
    struct routes r;
    char err[512];
    size_t n = 0;
    if (st->routes_file[0] && routes_load(st->routes_file, &r, err, sizeof err) == 0) {
        for (size_t i = 0; i < r.n; i++)
            if (r.v[i].api_key_env)
                names[n++] = strdup(r.v[i].api_key_env);
        routes_free(&r);
    }
    names[n] = NULL;
}

void
stack_route_env_free(char **names)
{
    for (; *names; names++)
        free(*names);
}

/* The flags of slot after --pid-file, into flags (at most 18 entries plus
 * NULL); buf holds the formatted values. */
static void
daemon_flags(const struct stack *st, int slot, const char **flags, char buf[5][PATH_MAX])
{
    size_t n = 0;
    if (slot >= SLOT_RUNNER0) {
        flags[n++] = "--routes-file";
        flags[n++] = st->routes_file;
        flags[n] = NULL;
        return;
    }
    stack_bind(st, buf[0], PATH_MAX);
    const char *const common[] = {"--state-root", st->root, "--bind", buf[0]};
    memcpy(flags, common, sizeof common);
    n = 4;
    if (geteuid() == 0) { /* nginx's workers are nobody:nogroup then */
        flags[n++] = "--socket-group";
        flags[n++] = STACK_NGINX_GROUP;
    }
    if (slot >= SLOT_RELAY0) {
        stack_relay_socket(st, slot - SLOT_RELAY0, buf[1]);
        flags[n++] = "--listen";
        flags[n++] = buf[1];
        flags[n] = NULL;
        return;
    }
    stack_path(st, "run/api.sock", buf[1]);
    if (st->workspace_root[0])
        snprintf(buf[2], PATH_MAX, "%s", st->workspace_root);
    else
        stack_path(st, "workspace", buf[2]);
    snprintf(buf[3], PATH_MAX, "%d", st->workers);
    snprintf(buf[4], PATH_MAX, "%d", st->drain_ms);
    const char *const fcgi[] = {"--socket",  buf[1], "--workspace-root", buf[2],
                                "--workers", buf[3], "--drain-ms",       buf[4]};
    memcpy(flags + n, fcgi, sizeof fcgi);
    n += sizeof fcgi / sizeof fcgi[0];
    if (st->routes_file[0]) { /* route readiness, the submission guard */
        flags[n++] = "--routes-file";
        flags[n++] = st->routes_file;
    }
    flags[n] = NULL;
}

/* Starts slot's daemon in its own session, as a child of the caller (the
 * supervisor), its output in logs/<name>.log (our stderr in the
 * foreground). The database URL, the token files and the key files
 * travel in the environment, not argv, so nothing secret shows in ps (with
 * given_auth, the gate's variables are the caller's own); the variables in
 * route_env (stack_route_env) reach the runners only. Returns its pid, or -1
 * after printing why. */
pid_t
stack_daemon_spawn(const struct stack *st, int slot, const char *bindir,
                   const char *const *route_env)
{
    struct stack_daemon d;
    char bin[PATH_MAX], pid_file[PATH_MAX], log[PATH_MAX], tok_a[PATH_MAX], tok_r[PATH_MAX];
    char key[PATH_MAX], env_db[ENV_ENTRY_MAX], env_a[ENV_ENTRY_MAX], env_r[ENV_ENTRY_MAX];
    char env_k[ENV_ENTRY_MAX], audit[PATH_MAX], env_s[ENV_ENTRY_MAX], buf[5][PATH_MAX];
    const char *argv[24] = {bin, "--pid-file", pid_file};
    stack_daemon_of(slot, &d);
    if (snprintf(bin, sizeof bin, "%s/%s", bindir, d.comm) >= (int)sizeof bin ||
        access(bin, X_OK) != 0) {
        fprintf(stderr, "kheish: %s is missing (%s); build it with `make`\n", bin, strerror(errno));
        return -1;
    }
    daemon_flags(st, slot, argv + 3, buf);
    rel_path(st, &d, "run", "pid", pid_file);
    rel_path(st, &d, "logs", "log", log);
    stack_path(st, "tokens/admin-token", tok_a);
    stack_path(st, "tokens/readonly-token", tok_r);
    snprintf(env_db, sizeof env_db, "KHEISH_DATABASE_URL=%s", st->database_url);
    snprintf(env_a, sizeof env_a, "KHEISH_DAEMON_ADMIN_TOKEN_FILE=%s", tok_a);
    snprintf(env_r, sizeof env_r, "KHEISH_DAEMON_READONLY_TOKEN_FILE=%s", tok_r);
    /* A key named in our environment is inherited as is; else up's own. */
    int own_key = stack_master_key_file(st, key);
    snprintf(env_k, sizeof env_k, "KHEISH_AUTH_STORE_MASTER_KEY_FILE=%s", key);
    /* The audit signing key: the runners' alone (they sign the ledger). */
    int own_audit = slot >= SLOT_RUNNER0 && stack_audit_key_file(st, audit);
    snprintf(env_s, sizeof env_s, "KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE=%s", audit);
    const char *env[6];
    size_t n = 0;
    env[n++] = env_db;
    if (own_key)
        env[n++] = env_k;
    if (own_audit)
        env[n++] = env_s;
    if (!st->given_auth) {
        env[n++] = env_a;
        env[n++] = env_r;
    }
    env[n] = NULL;
    struct stack_cmd c = {
        .argv = argv,
        .log_path = st->foreground ? NULL : log,
        .env = env,
        .unset = slot >= SLOT_RUNNER0 ? NULL : route_env,
        .detach = 1,
    };
    return stack_cmd_spawn(&c);
}

/* SIGTERM to the slots in [from, to), then wait up to timeout_ms for each.
 * Returns 1 when any was stopped, 0 when none ran, -1 when one is still
 * running. A runner finishes or interrupts its run first; kheish-fcgi drains. */
static int
stop_slots(const struct stack *st, int from, int to, int64_t timeout_ms)
{
    int stopped = 0, stuck = 0;
    for (int slot = from; slot < to; slot++) {
        struct stack_daemon d;
        char pid_file[PATH_MAX];
        pid_t pid;
        stack_daemon_of(slot, &d);
        rel_path(st, &d, "run", "pid", pid_file);
        int r = stack_pid_stop(pid_file, d.comm, SIGTERM, timeout_ms, &pid);
        stopped |= r > 0;
        stuck |= r < 0;
    }
    return stuck ? -1 : stopped;
}

/* How many of the slots in [from, to) run (and listen: each writes its pid
 * file once it does). */
static int
count_alive(const struct stack *st, int from, int to)
{
    int up = 0;
    pid_t pid;
    for (int slot = from; slot < to; slot++)
        up += stack_daemon_alive(st, slot, &pid);
    return up;
}

int
stack_fcgi_running(const struct stack *st)
{
    return count_alive(st, 0, SLOT_RELAY0);
}

/* Waits for the drain and for workers to finish their request. */
int
stack_fcgi_stop(const struct stack *st)
{
    return stop_slots(st, 0, SLOT_RELAY0, (int64_t)st->drain_ms + STACK_STOP_EXTRA_MS);
}

int
stack_relays_running(const struct stack *st)
{
    return count_alive(st, SLOT_RELAY0, SLOT_RUNNER0);
}

int
stack_relays_stop(const struct stack *st)
{
    return stop_slots(st, SLOT_RELAY0, SLOT_RUNNER0, STACK_STOP_EXTRA_MS);
}

int
stack_runners_running(const struct stack *st)
{
    return count_alive(st, SLOT_RUNNER0, STACK_SLOTS);
}

/* Every runner, also those of an earlier up with more. */
int
stack_runners_stop(const struct stack *st)
{
    return stop_slots(st, SLOT_RUNNER0, STACK_SLOTS, STACK_STOP_EXTRA_MS);
}
