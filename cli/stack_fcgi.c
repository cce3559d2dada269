/*
 * kheish-fcgi of the embedded stack: started detached with its output in
 * logs/fcgi.log, found and stopped through run/fcgi.pid (which it writes
 * itself once it listens).
 */
#include "stack.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FCGI_COMM     "kheish-fcgi"
#define ENV_ENTRY_MAX (STACK_URL_MAX + PATH_MAX)

static void
fcgi_pid_file(const struct stack *st, char out[PATH_MAX])
{
    stack_path(st, "run/fcgi.pid", out);
}

int
stack_fcgi_running(const struct stack *st)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    fcgi_pid_file(st, pid_file);
    return stack_pid_alive(pid_file, FCGI_COMM, &pid);
}

/* SIGTERM, then wait for the drain and for workers to finish their
 * request. Returns 1 stopped, 0 not running, -1 still running. */
int
stack_fcgi_stop(const struct stack *st)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    fcgi_pid_file(st, pid_file);
    return stack_pid_stop(pid_file, FCGI_COMM, SIGTERM, (int64_t)st->drain_ms + STACK_STOP_EXTRA_MS,
                          &pid);
}

/* Starts kheish-fcgi in its own session with output appended to
 * logs/fcgi.log, unless its pid file names a live one. Returns its pid, 0
 * when it was already running, -1 on failure. The database URL travels in
 * the environment, not argv, so a password never shows in ps. */
pid_t
stack_fcgi_start(const struct stack *st, const char *bindir)
{
    char bin[PATH_MAX], sock[PATH_MAX], pid_file[PATH_MAX], ws[PATH_MAX], log[PATH_MAX];
    char workers[16], drain[16], tok_a[PATH_MAX], tok_r[PATH_MAX], bind[64];
    char env_db[ENV_ENTRY_MAX], env_a[ENV_ENTRY_MAX], env_r[ENV_ENTRY_MAX];
    pid_t pid;
    fcgi_pid_file(st, pid_file);
    if (stack_pid_alive(pid_file, FCGI_COMM, &pid)) {
        fprintf(stderr, "kheish up: kheish-fcgi is already running (pid %d)\n", (int)pid);
        return 0;
    }
    if (snprintf(bin, sizeof bin, "%s/%s", bindir, FCGI_COMM) >= (int)sizeof bin ||
        access(bin, X_OK) != 0) {
        fprintf(stderr, "kheish up: %s is missing (%s); build it with `make`\n", bin,
                strerror(errno));
        return -1;
    }
    stack_path(st, "run/api.sock", sock);
    stack_path(st, "workspace", ws);
    stack_path(st, "logs/fcgi.log", log);
    stack_path(st, "tokens/admin-token", tok_a);
    stack_path(st, "tokens/readonly-token", tok_r);
    snprintf(workers, sizeof workers, "%d", st->workers);
    snprintf(drain, sizeof drain, "%d", st->drain_ms);
    stack_bind(st, bind, sizeof bind);
    snprintf(env_db, sizeof env_db, "KHEISH_DATABASE_URL=%s", st->database_url);
    snprintf(env_a, sizeof env_a, "KHEISH_DAEMON_ADMIN_TOKEN_FILE=%s", tok_a);
    snprintf(env_r, sizeof env_r, "KHEISH_DAEMON_READONLY_TOKEN_FILE=%s", tok_r);
    fprintf(stderr, "kheish up: starting kheish-fcgi with %d workers\n", st->workers);
    struct stack_cmd c = {
        .argv = (const char *const[]){bin, "--socket", sock, "--pid-file", pid_file, "--state-root",
                                      st->root, "--workspace-root", ws, "--workers", workers,
                                      "--drain-ms", drain, "--bind", bind,
                                      /* as root, nginx workers are nobody:nogroup; else the
                                       * list ends here */
                                      geteuid() == 0 ? "--socket-group" : NULL, STACK_NGINX_GROUP,
                                      NULL},
        .log_path = log,
        .env = (const char *const[]){env_db, env_a, env_r, NULL},
        .detach = 1,
    };
    return stack_cmd_spawn(&c);
}
