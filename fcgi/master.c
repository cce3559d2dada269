/*
 * The master process. It never serves a request: it owns the listening
 * socket, keeps N workers alive and turns signals into pool changes.
 *
 *   SIGCHLD       a worker died: start a replacement at once
 *   SIGHUP        start a new generation of workers, then SIGTERM the old one
 *                 (each old worker finishes its current request first)
 *   SIGTERM/INT   drain: /readyz answers 503 for drain_ms while requests are
 *                 still served, then workers finish their current request and
 *                 exit; the master removes the socket and exits
 */
#include "master.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "worker.h"

#define MASTER_STOP_TIMEOUT_MS 30000 /* then remaining workers are killed */
#define MASTER_QUICK_DEATH_MS  1000  /* a worker dying younger than this is crash-looping */
#define MASTER_CRASH_PAUSE_MS  200   /* pause before replacing a crash-looping worker */

struct slot {
    pid_t pid;
    int64_t started_ms;
};

struct pool {
    const struct fcgi_config *cfg;
    int listen_fd;
    struct shared_state *shared;
    struct slot *slots;
    struct gate *gate;
    const char *recorded_by;
};

static pid_t
spawn(struct pool *p)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        _exit(0);
    struct store_host host = {p->cfg->state_root, p->cfg->workspace_root, p->cfg->runtime_routes};
    struct worker_ctx w = {p->cfg, store_open(p->cfg->database_url, &host), p->shared, p->gate,
                           p->recorded_by};
    char err[256];
    if (gate_attach(p->gate, err, sizeof err) != 0) {
        log_msg("error", "worker_start_failed", "%s", err);
        _exit(1);
    }
    if (w.db == NULL)
        _exit(1);
    worker_run(p->listen_fd, &w);
    _exit(0);
}

static void
fill_slot(struct pool *p, int i)
{
    p->slots[i].pid = spawn(p);
    p->slots[i].started_ms = util_now_ms();
    if (p->slots[i].pid < 0)
        log_msg("error", "worker_spawn_failed", "fork: %s", strerror(errno));
}

/* Reaps every exited child; refills its slot unless stopping. */
static void
reap(struct pool *p, int stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < p->cfg->workers; i++) {
            if (p->slots[i].pid != pid)
                continue;
            p->slots[i].pid = 0;
            if (stopping)
                break;
            log_msg("warn", "worker_replaced", "worker %d exited (%s %d); replacing it", pid,
                    WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            if (util_now_ms() - p->slots[i].started_ms < MASTER_QUICK_DEATH_MS)
                nanosleep(&(struct timespec){0, MASTER_CRASH_PAUSE_MS * 1000000L}, NULL);
            fill_slot(p, i);
        }
    }
}

static int
live_workers(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->cfg->workers; i++)
        n += p->slots[i].pid > 0;
    return n;
}

static void
signal_workers(const struct pool *p, int sig)
{
    for (int i = 0; i < p->cfg->workers; i++)
        if (p->slots[i].pid > 0)
            kill(p->slots[i].pid, sig);
}

/* SIGHUP: the new generation starts accepting before the old one is told to
 * finish, so no request finds the socket unserved. Old workers are reaped as
 * strangers (their pids are no longer in a slot). */
static void
reload(struct pool *p)
{
    for (int i = 0; i < p->cfg->workers; i++) {
        pid_t old = p->slots[i].pid;
        fill_slot(p, i);
        if (old > 0)
            kill(old, SIGTERM);
    }
    log_msg("info", "workers_reloaded", "started %d new workers", p->cfg->workers);
}

static int
wait_signal(const sigset_t *set, int64_t timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    siginfo_t info;
    int sig = sigtimedwait(set, &info, &ts);
    return sig < 0 ? 0 : sig;
}

static void
drain_and_stop(struct pool *p, const sigset_t *set)
{
    __atomic_store_n(&p->shared->draining, 1, __ATOMIC_RELAXED);
    log_msg("info", "draining", "draining for %lld ms", (long long)p->cfg->drain_ms);
    int64_t until = util_now_ms() + p->cfg->drain_ms;
    while (util_now_ms() < until) {
        wait_signal(set, until - util_now_ms());
        reap(p, 0);
    }
    signal_workers(p, SIGTERM);
    int64_t deadline = util_now_ms() + MASTER_STOP_TIMEOUT_MS;
    while (live_workers(p) > 0 && util_now_ms() < deadline) {
        wait_signal(set, 100);
        reap(p, 1);
    }
    if (live_workers(p) > 0) {
        log_msg("warn", "workers_killed", "%d workers did not stop in time", live_workers(p));
        signal_workers(p, SIGKILL);
        while (waitpid(-1, NULL, 0) > 0)
            ;
    }
}

/* Refuses to take over a socket another live master is serving:
 * FCGX_OpenSocket would silently unlink it. */
static int
socket_in_use(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return 0;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int used = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return used;
}

static void
write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", getpid());
        fclose(f);
    }
}

int
master_run(const struct fcgi_config *cfg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);

    if (socket_in_use(cfg->socket_path)) {
        fprintf(stderr, "kheish-fcgi: %s is already served by another process\n", cfg->socket_path);
        return 1;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "kheish-fcgi: FCGX_Init failed\n");
        return 1;
    }
    struct gate gate;
    char err[512], host[256] = "", recorded_by[300];
    if (gate_init(&gate, &cfg->gate, err, sizeof err) != 0) {
        fprintf(stderr, "kheish-fcgi: %s\n", err);
        return 2;
    }
    if (!gate.auth.enabled)
        log_msg("warn", "control_plane_auth_disabled",
                "no admin token: the control plane is open to anyone who reaches %s",
                gate.auth.bind);
    gethostname(host, sizeof host - 1);
    snprintf(recorded_by, sizeof recorded_by, "kheish-fcgi@%s", host);
    int lfd = FCGX_OpenSocket(cfg->socket_path, 1024);
    if (lfd < 0 || util_socket_restrict(cfg->socket_path, cfg->socket_group) != 0) {
        fprintf(stderr, "kheish-fcgi: cannot listen on %s: %s\n", cfg->socket_path,
                strerror(errno));
        return 1;
    }
    fcntl(lfd, F_SETFD, fcntl(lfd, F_GETFD) & ~FD_CLOEXEC);
    struct pool p = {cfg,   lfd,        NULL, calloc((size_t)cfg->workers, sizeof(struct slot)),
                     &gate, recorded_by};
    p.shared =
        mmap(NULL, sizeof *p.shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p.slots == NULL || p.shared == MAP_FAILED) {
        fprintf(stderr, "kheish-fcgi: out of memory\n");
        return 1;
    }
    if (cfg->pid_file)
        write_pid_file(cfg->pid_file);
    for (int i = 0; i < cfg->workers; i++)
        fill_slot(&p, i);
    log_msg("info", "started", "listening on %s with %d workers", cfg->socket_path, cfg->workers);
    for (;;) {
        int sig = wait_signal(&set, 1000);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            reload(&p);
        reap(&p, 0);
    }
    drain_and_stop(&p, &set);
    close(lfd);
    unlink(cfg->socket_path);
    if (cfg->pid_file)
        unlink(cfg->pid_file);
    log_msg("info", "stopped", "all workers stopped");
    free(p.slots);
    return 0;
}
