/*
 * Running, finding and stopping the processes of the stack. Everything is
 * fork + execvp with an argv array: no shell ever sees a path.
 */
#include "stack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define PROC_POLL_MS 50

/* In a forked child: report on the saved stderr and leave without running
 * the parent's atexit handlers or flushing its stdio buffers. */
static void __attribute__((noreturn, format(printf, 2, 3)))
child_fail(int errfd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0 && write(errfd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
        _exit(127);
    _exit(127);
}

static int
drop_to(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        errno = ENOENT;
        return -1;
    }
    /* Groups first: after setuid we may no longer change them. */
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0)
        return -1;
    return 0;
}

/* In a forked child: an environment of PATH, TZ and the locale alone. */
static void
keep_only_locale_and_path(void)
{
    extern char **environ;
    static char *kept[64];
    size_t n = 0;
    for (char **e = environ; *e && n < sizeof kept / sizeof kept[0] - 1; e++)
        if (!strncmp(*e, "PATH=", 5) || !strncmp(*e, "TZ=", 3) || !strncmp(*e, "LANG=", 5) ||
            !strncmp(*e, "LC_", 3))
            kept[n++] = *e;
    kept[n] = NULL;
    environ = kept;
}

/* The child side of every command. Messages about a failure before exec go
 * to the caller's stderr even when stdout/stderr are redirected to a log. */
static void __attribute__((noreturn)) child_exec(const struct stack_cmd *c, int out_fd, int err_fd)
{
    int errfd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (errfd < 0)
        errfd = STDERR_FILENO;
    if (c->detach) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (setsid() < 0 || null < 0 || dup2(null, STDIN_FILENO) < 0)
            child_fail(errfd, "kheish: cannot detach %s: %s\n", c->argv[0], strerror(errno));
    }
    if (c->clean_env)
        keep_only_locale_and_path();
    for (const char *const *e = c->env; e && *e; e++)
        if (putenv((char *)*e) != 0)
            child_fail(errfd, "kheish: cannot set environment: %s\n", strerror(errno));
    for (const char *const *u = c->unset; u && *u; u++)
        unsetenv(*u);
    if (c->user && geteuid() == 0 && drop_to(c->user) != 0)
        child_fail(errfd, "kheish: cannot switch to user %s: %s\n", c->user, strerror(errno));
    /* "/" is readable by every user (postgres complains about an unreadable
     * cwd) and a daemon must not pin the caller's directory. */
    if (chdir("/") != 0)
        child_fail(errfd, "kheish: chdir /: %s\n", strerror(errno));
    if ((out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0) ||
        (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0))
        child_fail(errfd, "kheish: cannot redirect output: %s\n", strerror(errno));
    execvp(c->argv[0], (char *const *)c->argv);
    child_fail(errfd, "kheish: cannot run %s: %s\n", c->argv[0], strerror(errno));
}

static pid_t
fork_exec(const struct stack_cmd *c, int out_fd, int err_fd)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        fprintf(stderr, "kheish: fork: %s\n", strerror(errno));
    else if (pid == 0)
        child_exec(c, out_fd, err_fd);
    return pid;
}

/* Exit status of pid (0..255), or -1 when it died of a signal. */
static int
wait_exit(pid_t pid, const char *name)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "kheish: waitpid %s: %s\n", name, strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    fprintf(stderr, "kheish: %s was killed by signal %d\n", name, WTERMSIG(status));
    return -1;
}

static int
open_log(const char *path)
{
    if (path == NULL)
        return -1;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        fprintf(stderr, "kheish: cannot open %s: %s\n", path, strerror(errno));
    return fd;
}

/* Runs c to completion. Returns its exit status (127: it could not be
 * started), or -1 when it could not be forked or died of a signal. */
int
stack_cmd_run(const struct stack_cmd *c)
{
    pid_t pid = stack_cmd_spawn(c);
    return pid < 0 ? -1 : wait_exit(pid, c->argv[0]);
}

/* Starts c in its own session and returns its pid without waiting (-1 on
 * failure). The caller may poll it with waitpid(WNOHANG) while it runs;
 * once we exit, init adopts it. */
pid_t
stack_cmd_spawn(const struct stack_cmd *c)
{
    int fd = open_log(c->log_path);
    if (c->log_path && fd < 0)
        return -1;
    pid_t pid = fork_exec(c, fd, fd);
    if (fd >= 0)
        close(fd);
    return pid;
}

/* Runs argv and stores its stdout, trailing whitespace removed. Returns 0
 * when it exited 0 with some output, -1 otherwise. */
int
stack_cmd_capture(const char *const *argv, char *out, size_t outsz)
{
    int p[2];
    size_t len = 0;
    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "kheish: pipe: %s\n", strerror(errno));
        return -1;
    }
    struct stack_cmd c = {.argv = argv};
    pid_t pid = fork_exec(&c, p[1], -1);
    close(p[1]);
    for (ssize_t n; pid > 0 && len + 1 < outsz; len += (size_t)n) {
        n = read(p[0], out + len, outsz - 1 - len);
        if (n < 0 && errno == EINTR)
            n = 0;
        else if (n <= 0)
            break;
    }
    close(p[0]);
    out[len] = '\0';
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    if (pid < 0 || wait_exit(pid, argv[0]) != 0 || len == 0)
        return -1;
    return 0;
}

/* 1 when user may access(path, mode). As root this asks a child that has
 * become user: nginx workers and postgres must reach their sockets through
 * every parent directory, and a 0700 home directory is the usual trap. */
int
stack_user_can_access(const char *user, const char *path, int mode)
{
    if (geteuid() != 0)
        return access(path, mode) == 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "kheish: fork: %s\n", strerror(errno));
        return 0;
    }
    if (pid == 0)
        _exit(drop_to(user) == 0 && access(path, mode) == 0 ? 0 : 1);
    return wait_exit(pid, "access check") == 0;
}

/* Reads at most size-1 bytes of a small file into buf, NUL-terminated.
 * Returns the byte count, or -1 when it cannot be read. */
static ssize_t
read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/* 0 when missing or not a positive number. */
static pid_t
read_pid(const char *path)
{
    char buf[32];
    int64_t v;
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    buf[strcspn(buf, "\r\n ")] = '\0';
    return util_parse_i64(buf, 1, INT32_MAX, &v) == 0 ? (pid_t)v : 0;
}

/* 1 when pid is a live (not zombie) process named comm, and then its
 * process group in *pgrp (may be NULL). */
static int
proc_stat(pid_t pid, const char *comm, pid_t *pgrp)
{
    char path[64], buf[512];
    int ppid, group;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren[1] != ' ')
        return 0;
    *close_paren = '\0';
    char state = close_paren[2];
    if (pgrp && sscanf(close_paren + 3, "%d %d", &ppid, &group) == 2)
        *pgrp = group;
    /* The kernel keeps the first 15 bytes of a name (TASK_COMM_LEN - 1). */
    return strncmp(open_paren + 1, comm, 15) == 0 && state != 'Z' && state != 'X';
}

/* 1 when pid is a live (not zombie) process named comm. A pid file can
 * outlive its process and the pid be reused, hence the name check; our pid 1
 * reaps orphans late, hence the zombie check. */
int
stack_proc_is(pid_t pid, const char *comm)
{
    return proc_stat(pid, comm, NULL);
}

int
stack_group_kill(pid_t pgrp, const char *comm, int sig)
{
    DIR *d = opendir("/proc");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        int64_t pid;
        pid_t group = 0;
        if (util_parse_i64(e->d_name, 1, INT32_MAX, &pid) == 0 &&
            proc_stat((pid_t)pid, comm, &group) && group == pgrp && kill((pid_t)pid, sig) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

pid_t
stack_pid_read(const char *pid_file)
{
    return read_pid(pid_file);
}

/* 1 (and *pid) when pid_file names a live process called comm, else 0. */
int
stack_pid_alive(const char *pid_file, const char *comm, pid_t *pid)
{
    pid_t p = read_pid(pid_file);
    if (p <= 0 || !stack_proc_is(p, comm))
        return 0;
    *pid = p;
    return 1;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends sig to the process of pid_file and waits up to timeout_ms for it to
 * go. Returns 1 when it stopped, 0 when it was not running, -1 when it is
 * still there (or could not be signalled). */
int
stack_pid_stop(const char *pid_file, const char *comm, int sig, int64_t timeout_ms, pid_t *pid)
{
    if (!stack_pid_alive(pid_file, comm, pid))
        return 0;
    if (kill(*pid, sig) != 0) {
        if (errno == ESRCH)
            return 1;
        fprintf(stderr, "kheish: cannot signal %s (pid %d): %s\n", comm, (int)*pid,
                strerror(errno));
        return -1;
    }
    int64_t deadline = util_monotonic_us() + timeout_ms * 1000;
    while (stack_proc_is(*pid, comm)) {
        if (util_monotonic_us() > deadline)
            return -1;
        sleep_ms(PROC_POLL_MS);
    }
    return 1;
}

/* Directory of the running binary: kheish-fcgi is its sibling and the nginx
 * templates live in ../nginx, wherever the tree was built or installed. */
int
stack_self_dir(char out[PATH_MAX])
{
    ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
    if (n <= 0) {
        fprintf(stderr, "kheish: cannot read /proc/self/exe: %s\n", strerror(errno));
        return -1;
    }
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (slash == NULL || slash == out)
        return -1;
    *slash = '\0';
    return 0;
}

/* Raises RLIMIT_NOFILE to STACK_NOFILE before up starts the daemons, which
 * inherit it: the hard limit too when we may (root with CAP_SYS_RESOURCE,
 * which containers often drop), else the soft limit up to the hard one,
 * with a warning. Returns the soft limit now in force. */
long
stack_nofile_raise(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= STACK_NOFILE)
        return STACK_NOFILE;
    struct rlimit want = {STACK_NOFILE, rl.rlim_max > STACK_NOFILE ? rl.rlim_max : STACK_NOFILE};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        return STACK_NOFILE;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    fprintf(stderr,
            "kheish: the descriptor limit is %llu, not %d, and cannot be raised here: nginx "
            "and the relays may hold fewer streams (raise it with ulimit -Hn as root, "
            "LimitNOFILE= or docker --ulimit nofile=)\n",
            (unsigned long long)rl.rlim_max, STACK_NOFILE);
    return (long)rl.rlim_max;
}
