/* tool_shell: the bash tool's processes; see tool_shell.h. */
#include "tool_shell.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* What of /etc the sandbox sees (read-only): name resolution, the dynamic
 * linker, time zones, certificates, Debian's alternatives (symlinks that
 * /usr/bin needs), users and groups; entries starting with one of
 * etc_prefixes too (python3.11, perl...). Nothing else: /etc/kheish and
 * other deployment files stay out even for a user that could read them. */
static const char *const etc_allow[] = {
    "passwd",       "group",           "nsswitch.conf",   "host.conf",
    "hosts",        "resolv.conf",     "gai.conf",        "services",
    "protocols",    "networks",        "ld.so.cache",     "ld.so.conf",
    "ld.so.conf.d", "localtime",       "timezone",        "alternatives",
    "ssl/certs",    "ssl/openssl.cnf", "ca-certificates", "ca-certificates.conf",
    "os-release",   "debian_version",  "lsb-release",     "mime.types",
    "magic",        "magic.mime",      "inputrc",         "terminfo",
    "locale.alias", "gitconfig",       "manpath.config",  NULL,
};
static const char *const etc_prefixes[] = {"python", "perl", NULL};
/* The top-level directories of the system beside /usr (symlinks into it on
 * a merged-/usr system, bound read-only otherwise). */
static const char *const top_dirs[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL};

#define SHELL_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum child_step {
    STEP_NONE,
    STEP_SETSID,
    STEP_CHDIR,
    STEP_FDS,
    STEP_RLIMIT,
    STEP_NETNS,
    STEP_GROUPS,
    STEP_GID,
    STEP_UID,
    STEP_VERIFY,
    STEP_PDEATHSIG,
    STEP_NO_NEW_PRIVS,
    STEP_REACH,
    STEP_EXEC,
};
static const char *const step_names[] = {
    "",
    "setsid",
    "entering the working directory",
    "arranging file descriptors",
    "setting resource limits",
    "unsharing the network",
    "dropping supplementary groups",
    "setgid",
    "setuid",
    "checking the user switch",
    "PR_SET_PDEATHSIG",
    "PR_SET_NO_NEW_PRIVS",
    "reaching the workspace as the tool user (a parent directory is not searchable)",
    "exec",
};

/* Everything the child needs, made before fork: between fork and exec the
 * child calls only async-signal-safe functions (the runner has threads:
 * libcurl's resolver). */
struct plan {
    char **argv;
    char **envp;
    int devnull, out_w, err_w;
    int ws_fd;              /* bwrap: passed as fd 3 (--bind-fd 3) */
    int wd_fd;              /* no bwrap: the working directory (fchdir) */
    const char *reach_path; /* bwrap: must be searchable as the tool user */
    const struct shell_host *h;
    const struct shell_limits *l;
    pid_t parent;
};

struct shell_proc {
    pid_t pid;
    int out_fd, pid_fd, ep_fd;
    int exited, done, killed, timed_out, interrupted;
    int status;
    int64_t start_ms, deadline_ms, end_ms, last_ms, timeout_ms;
    /* Output: buf[0..len) while it fits; past the cap, buf[0..cap/2) is the
     * head and buf[cap/2..cap) a ring of the latest bytes (next at ring_pos). */
    char *buf;
    size_t cap, len, ring_pos;
    int wrapped;
    uint64_t total;
    char *command, *workdir;
};

void
shell_limits_default(struct shell_limits *l)
{
    *l = (struct shell_limits){
        .timeout_ms = SHELL_DEFAULT_TIMEOUT_MS,
        .output_cap_bytes = SHELL_DEFAULT_OUTPUT_BYTES,
        .cpu_s = SHELL_DEFAULT_CPU_S,
        .as_bytes = SHELL_DEFAULT_AS_BYTES,
        .nproc = SHELL_DEFAULT_NPROC,
        .fsize_bytes = SHELL_DEFAULT_FSIZE_BYTES,
        .nofile = SHELL_DEFAULT_NOFILE,
        .tmp_bytes = SHELL_DEFAULT_TMP_BYTES,
    };
}

int
shell_options_from_env(struct shell_options *o, struct shell_limits *l, char *err, size_t errsz)
{
    *o = (struct shell_options){SHELL_SANDBOX_AUTO, SHELL_DEFAULT_USER, 1};
    shell_limits_default(l);
    const char *s = getenv("KHEISH_SHELL_SANDBOX");
    if (s && *s) {
        if (!strcmp(s, "auto"))
            o->sandbox = SHELL_SANDBOX_AUTO;
        else if (!strcmp(s, "require"))
            o->sandbox = SHELL_SANDBOX_REQUIRE;
        else if (!strcmp(s, "off"))
            o->sandbox = SHELL_SANDBOX_OFF;
        else
            return util_fail(err, errsz, "KHEISH_SHELL_SANDBOX must be auto, require or off"), -1;
    }
    s = getenv("KHEISH_SHELL_USER");
    if (s && *s) {
        if (strlen(s) >= sizeof((struct shell_host *)0)->user)
            return util_fail(err, errsz, "KHEISH_SHELL_USER is too long"), -1;
        o->user = s;
    }
    s = getenv("KHEISH_SHELL_NETWORK");
    if (s && *s) {
        if (strcmp(s, "on") && strcmp(s, "off"))
            return util_fail(err, errsz, "KHEISH_SHELL_NETWORK must be on or off"), -1;
        o->network = !strcmp(s, "on");
    }
    int64_t out;
    if (util_env_i64("KHEISH_SHELL_TIMEOUT_MS", 1000, SHELL_MAX_TIMEOUT_MS,
                     SHELL_DEFAULT_TIMEOUT_MS, &l->timeout_ms) != 0)
        return util_fail(err, errsz, "KHEISH_SHELL_TIMEOUT_MS must be an integer in [1000, %d]",
                         SHELL_MAX_TIMEOUT_MS),
               -1;
    if (util_env_i64("KHEISH_SHELL_OUTPUT_BYTES", 1024, 16 << 20, SHELL_DEFAULT_OUTPUT_BYTES,
                     &out) != 0)
        return util_fail(err, errsz, "KHEISH_SHELL_OUTPUT_BYTES must be an integer in [1024, %d]",
                         16 << 20),
               -1;
    l->output_cap_bytes = (size_t)out;
    return 0;
}

/* ---- argument and environment vectors ----------------------------------- */

struct vec {
    char **v;
    size_t n, cap;
    int failed;
};

static void
vec_add(struct vec *a, const char *s)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if ((a->v[a->n] = strdup(s)) == NULL) {
        a->failed = 1;
        return;
    }
    a->v[++a->n] = NULL;
}

static void vec_addf(struct vec *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
vec_addf(struct vec *a, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        a->failed = 1;
    else
        vec_add(a, buf);
}

static void
vec_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* bwrap's arguments that every command shares (see docs/security.md). */
static int
bwrap_fixed_args(struct shell_host *h)
{
    struct vec a = {0};
    vec_add(&a, SHELL_BWRAP_PATH);
    vec_add(&a, "--unshare-all"); /* user (try), ipc, pid, net, uts, cgroup (try) */
    vec_add(&a, "--unshare-user");
    vec_add(&a, "--disable-userns"); /* no nested user namespace inside */
    if (h->network)
        vec_add(&a, "--share-net");
    vec_add(&a, "--die-with-parent");
    vec_add(&a, "--new-session");
    vec_add(&a, "--ro-bind");
    vec_add(&a, "/usr");
    vec_add(&a, "/usr");
    for (size_t i = 0; top_dirs[i]; i++) {
        char path[64], target[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "/%s", top_dirs[i]);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            vec_add(&a, "--symlink");
            vec_add(&a, target);
            vec_add(&a, path);
        } else if (S_ISDIR(st.st_mode)) {
            vec_add(&a, "--ro-bind");
            vec_add(&a, path);
            vec_add(&a, path);
        }
    }
    for (size_t i = 0; etc_allow[i]; i++) {
        vec_add(&a, "--ro-bind-try");
        vec_addf(&a, "/etc/%s", etc_allow[i]);
        vec_addf(&a, "/etc/%s", etc_allow[i]);
    }
    DIR *d = opendir("/etc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        for (size_t i = 0; etc_prefixes[i]; i++)
            if (!strncmp(e->d_name, etc_prefixes[i], strlen(etc_prefixes[i]))) {
                vec_add(&a, "--ro-bind-try");
                vec_addf(&a, "/etc/%s", e->d_name);
                vec_addf(&a, "/etc/%s", e->d_name);
            }
    }
    if (d)
        closedir(d);
    vec_add(&a, "--proc");
    vec_add(&a, "/proc");
    vec_add(&a, "--dev");
    vec_add(&a, "/dev");
    if (a.failed) {
        vec_free(a.v);
        return -1;
    }
    h->bwrap_fixed = a.v;
    h->nfixed = a.n;
    return 0;
}

/* The command's argv: bwrap's (fixed, then /tmp, the workspace and the
 * working directory) around bash -c, or bash -c alone. ws NULL: the probe. */
static char **
command_argv(const struct shell_host *h, const struct shell_limits *l, const char *ws,
             const char *wd, const char *command)
{
    struct vec a = {0};
    if (h->bwrap) {
        for (size_t i = 0; i < h->nfixed; i++)
            vec_add(&a, h->bwrap_fixed[i]);
        /* The writable tmpfs, each of a bounded size: /tmp, /dev/shm. */
        vec_add(&a, "--size");
        vec_addf(&a, "%lld", (long long)l->tmp_bytes);
        vec_add(&a, "--tmpfs");
        vec_add(&a, "/tmp");
        vec_add(&a, "--size");
        vec_addf(&a, "%lld", (long long)l->tmp_bytes);
        vec_add(&a, "--tmpfs");
        vec_add(&a, "/dev/shm");
        vec_add(&a, "--remount-ro");
        vec_add(&a, "/dev");
        if (ws) {
            vec_add(&a, "--bind-fd");
            vec_add(&a, "3");
            vec_add(&a, ws);
        }
        vec_add(&a, "--remount-ro"); /* the sandbox's own root: only /tmp and ws are writable */
        vec_add(&a, "/");
        vec_add(&a, "--chdir");
        vec_add(&a, wd);
        vec_add(&a, "--");
    }
    vec_add(&a, SHELL_BASH_PATH);
    vec_add(&a, "-c");
    vec_add(&a, command);
    if (a.failed) {
        vec_free(a.v);
        return NULL;
    }
    return a.v;
}

/* Built from scratch: nothing of the runner's environment. */
static char **
command_envp(const struct shell_host *h, const char *home)
{
    struct vec a = {0};
    vec_add(&a, SHELL_PATH_ENV);
    vec_addf(&a, "HOME=%s", home);
    vec_add(&a, "LANG=C.UTF-8");
    vec_add(&a, "TERM=dumb");
    vec_addf(&a, "USER=%s", h->user);
    vec_addf(&a, "LOGNAME=%s", h->user);
    vec_add(&a, "SHELL=" SHELL_BASH_PATH);
    vec_add(&a, "TMPDIR=/tmp");
    if (a.failed) {
        vec_free(a.v);
        return NULL;
    }
    return a.v;
}

/* ---- the child ------------------------------------------------------------ */

static void __attribute__((noreturn)) child_fail(int fd, enum child_step step)
{
    int msg[2] = {(int)step, errno};
    ssize_t rc = write(fd, msg, sizeof msg);
    (void)rc;
    _exit(127);
}

static int
child_limit(int resource, int64_t soft, int64_t hard)
{
    struct rlimit cur, want = {(rlim_t)soft, (rlim_t)hard};
    if (getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY && geteuid() != 0) {
        if (want.rlim_max > cur.rlim_max)
            want.rlim_max = cur.rlim_max; /* a user cannot raise its hard limit */
        if (want.rlim_cur > want.rlim_max)
            want.rlim_cur = want.rlim_max;
    }
    return setrlimit(resource, &want);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) child_run(const struct plan *pl)
{
    const struct shell_host *h = pl->h;
    const struct shell_limits *l = pl->l;
    int errfd = pl->err_w;
    /* The runner ignores SIGPIPE (an ignored signal stays ignored across
     * exec) and may block signals: the command gets the defaults. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    if (setsid() < 0)
        child_fail(errfd, STEP_SETSID);
    if (pl->wd_fd >= 0 && fchdir(pl->wd_fd) != 0)
        child_fail(errfd, STEP_CHDIR);
    /* Out of the way first (a target may be one of the sources), then into
     * place: 0 /dev/null, 1 and 2 the pipe, 3 the workspace (bwrap), then
     * the error pipe (close-on-exec); every other fd closed. */
    int dn = fcntl(pl->devnull, F_DUPFD_CLOEXEC, 16);
    int out = fcntl(pl->out_w, F_DUPFD_CLOEXEC, 16);
    int ws = pl->ws_fd >= 0 ? fcntl(pl->ws_fd, F_DUPFD_CLOEXEC, 16) : -1;
    int er = fcntl(errfd, F_DUPFD_CLOEXEC, 16);
    if (dn < 0 || out < 0 || er < 0 || (pl->ws_fd >= 0 && ws < 0))
        child_fail(errfd, STEP_FDS);
    errfd = er;
    int slot = ws >= 0 ? 4 : 3;
    if (dup2(dn, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 || (ws >= 0 && dup2(ws, 3) < 0))
        child_fail(errfd, STEP_FDS);
    if (dup2(er, slot) < 0 || fcntl(slot, F_SETFD, FD_CLOEXEC) < 0)
        child_fail(errfd, STEP_FDS);
    errfd = slot;
    if (close_range((unsigned)slot + 1, ~0U, 0) != 0) {
        int max = (int)sysconf(_SC_OPEN_MAX);
        for (int fd = slot + 1; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            close(fd);
    }
    /* As root still: the tool user cannot raise them again. */
    if (child_limit(RLIMIT_CPU, l->cpu_s, l->cpu_s + 5) != 0 ||
        child_limit(RLIMIT_AS, l->as_bytes, l->as_bytes) != 0 ||
        child_limit(RLIMIT_NPROC, l->nproc, l->nproc) != 0 ||
        child_limit(RLIMIT_FSIZE, l->fsize_bytes, l->fsize_bytes) != 0 ||
        child_limit(RLIMIT_NOFILE, l->nofile, l->nofile) != 0 ||
        child_limit(RLIMIT_CORE, 0, 0) != 0)
        child_fail(errfd, STEP_RLIMIT);
    if (!h->network && !h->bwrap && unshare(CLONE_NEWNET) != 0)
        child_fail(errfd, STEP_NETNS);
    if (h->switch_user) {
        if (setgroups(0, NULL) != 0)
            child_fail(errfd, STEP_GROUPS);
        if (setgid(h->gid) != 0)
            child_fail(errfd, STEP_GID);
        if (setuid(h->uid) != 0)
            child_fail(errfd, STEP_UID);
        errno = EPERM;
        if (getuid() != h->uid || geteuid() != h->uid || getgid() != h->gid ||
            getegid() != h->gid || getgroups(0, NULL) != 0 || setuid(0) == 0)
            child_fail(errfd, STEP_VERIFY);
    }
    /* After the user switch, which clears it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        child_fail(errfd, STEP_PDEATHSIG);
    if (getppid() != pl->parent)
        _exit(127); /* the runner is gone already */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(errfd, STEP_NO_NEW_PRIVS);
    /* A runner given ambient capabilities (systemd) would pass them on. */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (pl->reach_path && access(pl->reach_path, X_OK) != 0)
        child_fail(errfd, STEP_REACH);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(pl->argv[0], pl->argv, pl->envp);
    child_fail(errfd, STEP_EXEC);
}

/* Forks and execs pl. *out_r: the output pipe's read end (non-blocking).
 * Returns the pid, or -1 with err. */
static pid_t
spawn(struct plan *pl, int *out_r, char *err, size_t errsz)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    pid_t pid = -1;
    pl->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (pl->devnull < 0 || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        fcntl(outp[0], F_SETFL, O_NONBLOCK) != 0) {
        util_fail(err, errsz, "cannot start the command: %s", strerror(errno));
        goto out;
    }
    pl->out_w = outp[1];
    pl->err_w = errp[1];
    pl->parent = getpid();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* no runner handler runs in the child */
    pid = fork();
    if (pid == 0)
        child_run(pl);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        util_fail(err, errsz, "cannot start the command: fork: %s", strerror(fork_errno));
        goto out;
    }
    close(errp[1]);
    errp[1] = -1;
    int msg[2];
    size_t got = 0;
    while (got < sizeof msg) {
        ssize_t n = read(errp[0], (char *)msg + got, sizeof msg - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    if (got > 0) { /* the child failed before exec, and has exited */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (got == sizeof msg && msg[0] > STEP_NONE && msg[0] <= STEP_EXEC)
            util_fail(err, errsz, "cannot start the command: %s: %s", step_names[msg[0]],
                      strerror(msg[1]));
        else
            util_fail(err, errsz, "cannot start the command");
        pid = -1;
        goto out;
    }
    *out_r = outp[0];
    outp[0] = -1;
out:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (pl->devnull >= 0)
        close(pl->devnull);
    pl->devnull = -1;
    return pid;
}

/* ---- the host --------------------------------------------------------------- */

/* Runs `true` in the sandbox as commands will run, with what bwrap printed
 * into why on failure. Returns 0 when it works. */
static int
bwrap_probe(struct shell_host *h, char *why, size_t whysz)
{
    struct shell_limits l;
    shell_limits_default(&l);
    char **argv = command_argv(h, &l, NULL, "/", "true");
    char **envp = command_envp(h, "/");
    int out_r = -1, rc = -1, status = 0;
    char text[512];
    size_t len = 0;
    struct plan pl = {.argv = argv, .envp = envp, .ws_fd = -1, .wd_fd = -1, .h = h, .l = &l};
    pid_t pid = argv && envp ? spawn(&pl, &out_r, why, whysz) : -1;
    if (argv == NULL || envp == NULL)
        snprintf(why, whysz, "out of memory");
    for (int i = 0; pid > 0 && i < 1000; i++) { /* up to 5 s */
        ssize_t n = read(out_r, text + len, sizeof text - 1 - len);
        if (n > 0)
            len += (size_t)n;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            pid = 0;
            break;
        }
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    if (pid > 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(why, whysz, "bwrap did not finish a probe in 5 s");
    } else if (pid == 0) {
        ssize_t n = out_r >= 0 ? read(out_r, text + len, sizeof text - 1 - len) : 0;
        if (n > 0)
            len += (size_t)n;
        text[len] = '\0';
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
            text[--len] = '\0';
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            rc = 0;
        else
            snprintf(why, whysz, "bwrap cannot run here (%s %d): %s",
                     WIFEXITED(status) ? "exit" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                     len ? text : "no message");
    }
    if (out_r >= 0)
        close(out_r);
    vec_free(argv);
    vec_free(envp);
    return rc;
}

int
shell_host_init(struct shell_host *h, const struct shell_options *o, char *err, size_t errsz)
{
    memset(h, 0, sizeof *h);
    h->network = o->network;
    if (geteuid() == 0) {
        const char *name = o->user && *o->user ? o->user : SHELL_DEFAULT_USER;
        struct passwd *pw = getpwnam(name);
        if (pw == NULL) {
            util_fail(err, errsz,
                      "the bash tool's user %s does not exist, and commands never run as root "
                      "(`make deps` creates it: useradd --system --user-group --no-create-home "
                      "--shell /usr/sbin/nologin %s)",
                      name, name);
            return -1;
        }
        if (pw->pw_uid == 0 || pw->pw_gid == 0) {
            util_fail(err, errsz, "the bash tool's user %s is root or in group root", name);
            return -1;
        }
        h->switch_user = 1;
        h->uid = pw->pw_uid;
        h->gid = pw->pw_gid;
        snprintf(h->user, sizeof h->user, "%s", name);
    } else {
        struct passwd *pw = getpwuid(getuid());
        h->uid = getuid();
        h->gid = getgid();
        if (pw)
            snprintf(h->user, sizeof h->user, "%s", pw->pw_name);
        else
            snprintf(h->user, sizeof h->user, "%lu", (unsigned long)h->uid);
    }
    char why[400] = "KHEISH_SHELL_SANDBOX=off";
    if (o->sandbox != SHELL_SANDBOX_OFF) {
        if (access(SHELL_BWRAP_PATH, X_OK) != 0) {
            snprintf(why, sizeof why, "%s is missing (Debian package bubblewrap)",
                     SHELL_BWRAP_PATH);
        } else if (bwrap_fixed_args(h) != 0) {
            snprintf(why, sizeof why, "out of memory");
        } else {
            h->bwrap = 1;
            if (bwrap_probe(h, why, sizeof why) != 0) {
                h->bwrap = 0;
                vec_free(h->bwrap_fixed);
                h->bwrap_fixed = NULL;
                h->nfixed = 0;
            }
        }
    }
    if (!h->bwrap && o->sandbox == SHELL_SANDBOX_REQUIRE) {
        util_fail(err, errsz, "KHEISH_SHELL_SANDBOX=require, but %s", why);
        return -1;
    }
    if (!h->bwrap && !h->network && !h->switch_user) {
        util_fail(err, errsz,
                  "KHEISH_SHELL_NETWORK=off needs bwrap or a runner started as root (%s)", why);
        return -1;
    }
    /* Commands as the runner's own user, outside a pid namespace: they could
     * read /proc/<runner>/environ (the provider keys) and its memory. A
     * non-dumpable process's /proc files belong to root. */
    if (!h->bwrap && !h->switch_user)
        prctl(PR_SET_DUMPABLE, 0);
    if (h->bwrap)
        snprintf(h->summary, sizeof h->summary,
                 "bash commands run in bubblewrap as %s (uid %lu), network %s, with rlimits "
                 "and a clean environment",
                 h->user, (unsigned long)h->uid, h->network ? "shared" : "off");
    else
        snprintf(h->summary, sizeof h->summary,
                 "the bash sandbox is OFF (%s): commands run as %s (uid %lu)%s, network %s, "
                 "with rlimits and a clean environment only",
                 why, h->user, (unsigned long)h->uid,
                 h->switch_user ? "" : ", the runner's own user: they can read every file it can",
                 h->network ? "shared" : "off");
    log_msg(h->bwrap ? "info" : "warn", h->bwrap ? "shell_sandbox" : "shell_sandbox_off", "%s",
            h->summary);
    return 0;
}

void
shell_host_free(struct shell_host *h)
{
    vec_free(h->bwrap_fixed);
    h->bwrap_fixed = NULL;
    h->nfixed = 0;
}

int
shell_workspace_prepare(const struct shell_host *h, const char *path, char *err, size_t errsz)
{
    if (path == NULL || path[0] != '/')
        return util_fail(err, errsz, "the workspace must be an absolute path"), -1;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return util_fail(err, errsz, "cannot create the workspace: %s", strerror(errno)), -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return util_fail(err, errsz, "cannot open the workspace: %s", strerror(errno)), -1;
    int rc = 0;
    if (h->switch_user && fchown(fd, h->uid, h->gid) != 0)
        rc = -1,
        util_fail(err, errsz, "cannot give the workspace to %s: %s", h->user, strerror(errno));
    close(fd);
    return rc;
}

/* ---- input ---------------------------------------------------------------- */

const char *
shell_tool_description(void)
{
    return "Executes one shell command (bash -c) inside the workspace root, in a sandbox, with "
           "a timeout; stdout and stderr are returned together in stdout.";
}

json_t *
shell_tool_schema(void)
{
    return json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}", "type",
        "object", "properties", "command", "type", "string", "description",
        "Shell command to execute.", "workdir", "type", "string", "description",
        "Optional working directory inside the workspace.", "run_in_background", "type", "boolean",
        "description", "Not available yet: background tasks are refused; leave it out or false.",
        "description", "type", "string", "description",
        "Optional short description of what the command does.", "required", "command",
        "additionalProperties", 0);
}

static int
optional_string(const json_t *input, const char *key, const char **out, char *err, size_t errsz)
{
    const json_t *v = json_object_get(input, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return util_fail(err, errsz, "`%s` must be a string", key), -1;
    if (strlen(json_string_value(v)) != json_string_length(v))
        return util_fail(err, errsz, "`%s` contains a NUL character", key), -1;
    *out = json_string_value(v);
    return 0;
}

int
shell_parse_input(const json_t *input, struct shell_input *in, char *err, size_t errsz)
{
    const char *description;
    memset(in, 0, sizeof *in);
    if (!json_is_object(input))
        return util_fail(err, errsz, "the bash tool's input must be an object"), -1;
    const json_t *bg = json_object_get(input, "run_in_background");
    if (bg && !json_is_null(bg) && !json_is_boolean(bg))
        return util_fail(err, errsz, "`run_in_background` must be a boolean"), -1;
    if (json_is_true(bg))
        return util_fail(
                   err, errsz,
                   "run_in_background is not supported yet: background tasks are not available "
                   "in this runner. The command was not run; run it in the foreground (it is "
                   "stopped after the tool's timeout)"),
               -1;
    if (optional_string(input, "command", &in->command, err, errsz) != 0 ||
        optional_string(input, "workdir", &in->workdir, err, errsz) != 0 ||
        optional_string(input, "description", &description, err, errsz) != 0)
        return -1;
    if (in->command == NULL)
        return util_fail(err, errsz, "missing string field `command`"), -1;
    if (in->command[strspn(in->command, " \t\r\n")] == '\0')
        return util_fail(err, errsz, "`command` is empty"), -1;
    if (strlen(in->command) > SHELL_COMMAND_MAX_BYTES)
        return util_fail(err, errsz,
                         "`command` is longer than %d bytes (write a script file instead)",
                         SHELL_COMMAND_MAX_BYTES),
               -1;
    if (in->workdir && in->workdir[0] == '\0')
        in->workdir = NULL;
    return 0;
}

/* The working directory: workdir under the workspace (ws, canonical), each
 * component opened without following a symlink. Returns an O_PATH fd and
 * its path in out, or -1 with err. */
static int
open_workdir(int ws_fd, const char *ws, const char *workdir, char *out, size_t outsz, char *err,
             size_t errsz)
{
    size_t wslen = strlen(ws);
    const char *rel = workdir ? workdir : "";
    if (rel[0] == '/') {
        if (strncmp(rel, ws, wslen) || (rel[wslen] != '/' && rel[wslen] != '\0'))
            return util_fail(err, errsz, "workdir %s is outside the workspace %s", workdir, ws), -1;
        rel += wslen;
    }
    int fd = fcntl(ws_fd, F_DUPFD_CLOEXEC, 0);
    size_t len = (size_t)snprintf(out, outsz, "%s", ws);
    while (fd >= 0 && *rel) {
        size_t n = strcspn(rel, "/");
        char name[NAME_MAX + 1];
        if (n > NAME_MAX) {
            close(fd);
            return util_fail(err, errsz, "workdir has a component longer than %d bytes", NAME_MAX),
                   -1;
        }
        memcpy(name, rel, n);
        name[n] = '\0';
        rel += n + (rel[n] == '/');
        if (n == 0 || !strcmp(name, "."))
            continue;
        if (!strcmp(name, "..")) {
            close(fd);
            return util_fail(err, errsz, "workdir %s leaves the workspace (..)", workdir), -1;
        }
        int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        fd = next;
        if (fd < 0) {
            util_fail(err, errsz, "workdir %s: %s", workdir,
                      e == ENOENT                  ? "no such directory in the workspace"
                      : e == ENOTDIR || e == ELOOP ? "not a directory (symlinks are not followed)"
                                                   : strerror(e));
            return -1;
        }
        if (len + n + 2 > outsz) {
            close(fd);
            return util_fail(err, errsz, "workdir is too long"), -1;
        }
        out[len++] = '/';
        memcpy(out + len, name, n + 1);
        len += n;
    }
    if (fd < 0)
        util_fail(err, errsz, "cannot open the workspace: %s", strerror(errno));
    return fd;
}

/* ---- running -------------------------------------------------------------- */

struct shell_proc *
shell_start(const struct shell_host *h, const struct shell_limits *l, const char *workspace,
            const struct shell_input *in, int64_t now_ms, char *err, size_t errsz)
{
    char ws[PATH_MAX], wd[PATH_MAX];
    struct shell_proc *p = NULL;
    char **argv = NULL, **envp = NULL;
    int ws_fd = -1, wd_fd = -1;
    if (in == NULL || in->command == NULL) {
        util_fail(err, errsz, "no command");
        return NULL;
    }
    if (l->output_cap_bytes < 16 || l->timeout_ms <= 0) {
        util_fail(err, errsz, "the bash tool's limits are not valid");
        return NULL;
    }
    if (workspace == NULL || workspace[0] != '/' || realpath(workspace, ws) == NULL) {
        util_fail(err, errsz, "the workspace %s cannot be used: %s",
                  workspace ? workspace : "(none)",
                  workspace && workspace[0] == '/' ? strerror(errno) : "not an absolute path");
        return NULL;
    }
    if ((ws_fd = open(ws, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        util_fail(err, errsz, "the workspace %s cannot be used: %s", ws, strerror(errno));
        goto fail;
    }
    /* A command may take its owner's rights on the workspace away (chmod
     * 000 ., chmod -R 644 .): every later one would fail to reach it. Its
     * own directory is given them back (its parents are not the tool's). */
    struct stat st;
    if (fstat(ws_fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
        chmod(ws, (st.st_mode & 07777) | S_IRWXU);
    if ((wd_fd = open_workdir(ws_fd, ws, in->workdir, wd, sizeof wd, err, errsz)) < 0)
        goto fail;
    argv = command_argv(h, l, ws, wd, in->command);
    envp = command_envp(h, ws);
    p = calloc(1, sizeof *p);
    if (argv == NULL || envp == NULL || p == NULL ||
        (p->buf = malloc(l->output_cap_bytes)) == NULL ||
        (p->command = strdup(in->command)) == NULL || (p->workdir = strdup(wd)) == NULL) {
        util_fail(err, errsz, "out of memory");
        goto fail;
    }
    p->out_fd = p->pid_fd = p->ep_fd = -1;
    p->cap = l->output_cap_bytes;
    p->start_ms = p->last_ms = now_ms;
    p->timeout_ms = l->timeout_ms;
    p->deadline_ms = now_ms + l->timeout_ms;
    struct plan pl = {
        .argv = argv,
        .envp = envp,
        .ws_fd = h->bwrap ? ws_fd : -1,
        .wd_fd = h->bwrap ? -1 : wd_fd,
        .reach_path = h->bwrap && h->switch_user ? ws : NULL,
        .h = h,
        .l = l,
    };
    p->pid = spawn(&pl, &p->out_fd, err, errsz);
    if (p->pid < 0)
        goto fail;
    close(ws_fd);
    close(wd_fd);
    vec_free(argv);
    vec_free(envp);
    ws_fd = wd_fd = -1;
    argv = envp = NULL;
    /* One fd for the loop: the output, and the end of the process (pidfd;
     * without one, shell_deadline_ms asks to be polled). */
    p->pid_fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    p->ep_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (p->ep_fd < 0 || epoll_ctl(p->ep_fd, EPOLL_CTL_ADD, p->out_fd, &ev) != 0 ||
        (p->pid_fd >= 0 && epoll_ctl(p->ep_fd, EPOLL_CTL_ADD, p->pid_fd, &ev) != 0)) {
        util_fail(err, errsz, "cannot watch the command: %s", strerror(errno));
        shell_free(p);
        return NULL;
    }
    return p;
fail:
    if (ws_fd >= 0)
        close(ws_fd);
    if (wd_fd >= 0)
        close(wd_fd);
    vec_free(argv);
    vec_free(envp);
    if (p) {
        free(p->buf);
        free(p->command);
        free(p->workdir);
        free(p);
    }
    return NULL;
}

static void
append(struct shell_proc *p, const char *data, size_t n)
{
    p->total += n;
    if (!p->wrapped) {
        size_t k = p->cap - p->len < n ? p->cap - p->len : n;
        memcpy(p->buf + p->len, data, k);
        p->len += k;
        data += k;
        n -= k;
        if (n == 0)
            return;
        p->wrapped = 1; /* buf[cap/2..cap) becomes the ring, full, oldest first */
        p->ring_pos = 0;
    }
    size_t head = p->cap / 2, r = p->cap - head;
    char *ring = p->buf + head;
    if (n >= r) {
        memcpy(ring, data + n - r, r);
        p->ring_pos = 0;
        return;
    }
    size_t k = r - p->ring_pos < n ? r - p->ring_pos : n;
    memcpy(ring + p->ring_pos, data, k);
    memcpy(ring, data + k, n - k);
    p->ring_pos = (p->ring_pos + n) % r;
}

static void
close_out(struct shell_proc *p)
{
    if (p->out_fd < 0)
        return;
    if (p->ep_fd >= 0)
        epoll_ctl(p->ep_fd, EPOLL_CTL_DEL, p->out_fd, NULL);
    close(p->out_fd);
    p->out_fd = -1;
}

/* Reads up to budget bytes of what is ready. */
static void
drain(struct shell_proc *p, size_t budget)
{
    char buf[65536];
    while (p->out_fd >= 0 && budget > 0) {
        ssize_t n = read(p->out_fd, buf, budget < sizeof buf ? budget : sizeof buf);
        if (n > 0) {
            append(p, buf, (size_t)n);
            budget -= (size_t)n;
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close_out(p);
        } else if (errno == EAGAIN) {
            break;
        }
    }
}

/* The command ended (its process is a zombie, so its group id is still its
 * own): kill what it left in its group, reap it, read what is left. */
static void
finish(struct shell_proc *p, int64_t now_ms)
{
    kill(-p->pid, SIGKILL);
    while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
        ;
    drain(p, 4 * SHELL_STEP_READ_MAX);
    close_out(p);
    if (p->pid_fd >= 0)
        close(p->pid_fd);
    if (p->ep_fd >= 0)
        close(p->ep_fd);
    p->pid_fd = p->ep_fd = -1;
    p->exited = p->done = 1;
    p->end_ms = now_ms;
}

int
shell_fd(const struct shell_proc *p)
{
    return p->done ? -1 : p->ep_fd;
}

pid_t
shell_pid(const struct shell_proc *p)
{
    return p->pid;
}

int
shell_step(struct shell_proc *p, int64_t now_ms)
{
    if (p->done)
        return 1;
    p->last_ms = now_ms;
    drain(p, SHELL_STEP_READ_MAX);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == p->pid) {
        finish(p, now_ms);
        return 1;
    }
    if (now_ms >= p->deadline_ms && !p->killed) {
        kill(-p->pid, SIGKILL); /* the whole group; with bwrap, its pid namespace dies with it */
        kill(p->pid, SIGKILL);
        p->killed = p->timed_out = 1;
    }
    return 0;
}

int64_t
shell_deadline_ms(const struct shell_proc *p)
{
    if (p->done)
        return INT64_MAX;
    if (p->pid_fd >= 0) /* the pidfd says when it ends */
        return p->killed ? INT64_MAX : p->deadline_ms;
    int64_t poll = p->last_ms + (p->killed ? 10 : 50); /* nothing does: poll */
    return p->killed || poll < p->deadline_ms ? poll : p->deadline_ms;
}

void
shell_kill(struct shell_proc *p)
{
    if (p->done)
        return;
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    p->killed = p->interrupted = 1;
    finish(p, p->last_ms);
}

void
shell_free(struct shell_proc *p)
{
    if (p == NULL)
        return;
    if (!p->done && p->pid > 0)
        shell_kill(p);
    close_out(p);
    if (p->pid_fd >= 0)
        close(p->pid_fd);
    if (p->ep_fd >= 0)
        close(p->ep_fd);
    free(p->buf);
    free(p->command);
    free(p->workdir);
    free(p);
}

/* ---- the result ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Appends src to dst as valid UTF-8: each invalid byte becomes U+FFFD. */
static size_t
utf8_lossy(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) {
            memcpy(dst + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(dst + o, s + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

/* The output as the model sees it: all of it, or the head, a line saying
 * how much was left out, and the tail, cut at character boundaries. */
static json_t *
output_text(const struct shell_proc *p)
{
    if (!p->wrapped) {
        char *out = malloc(p->len * 3 + 1);
        json_t *v = out ? json_stringn(out, utf8_lossy(out, p->buf, p->len)) : NULL;
        free(out);
        return v;
    }
    size_t head = p->cap / 2, r = p->cap - head;
    char *tail = malloc(r), *out = malloc(p->cap * 3 + 128);
    json_t *v = NULL;
    if (tail && out) {
        memcpy(tail, p->buf + head + p->ring_pos, r - p->ring_pos);
        memcpy(tail + r - p->ring_pos, p->buf + head, p->ring_pos);
        size_t h = head, t = 0;
        /* No sequence cut in two: back the head up to a lead byte whose
         * sequence is whole; skip the tail's leading continuation bytes. */
        for (size_t back = 1; back <= 3 && back <= h; back++) {
            unsigned char c = (unsigned char)p->buf[h - back];
            if ((c & 0xc0) != 0x80) {
                if (c >= 0xc0 && utf8_seq((const unsigned char *)p->buf + h - back, back) == 0)
                    h -= back;
                break;
            }
        }
        while (t < 3 && t < r && ((unsigned char)tail[t] & 0xc0) == 0x80)
            t++;
        size_t o = utf8_lossy(out, p->buf, h);
        o += (size_t)sprintf(out + o, "\n[... %llu bytes of output omitted ...]\n",
                             (unsigned long long)(p->total - h - (r - t)));
        o += utf8_lossy(out + o, tail + t, r - t);
        v = json_stringn(out, o);
    }
    free(tail);
    free(out);
    return v;
}

int
shell_result_is_error(const struct shell_proc *p)
{
    return p->done && (p->timed_out || p->interrupted);
}

json_t *
shell_result(const struct shell_proc *p)
{
    if (!p->done)
        return NULL;
    int exited = WIFEXITED(p->status);
    int code = exited ? WEXITSTATUS(p->status) : -1;
    json_t *r = json_pack(
        "{s:s, s:s, s:o, s:b, s:o*, s:s, s:b, s:b, s:I, s:I}", "command", p->command, "workdir",
        p->workdir, "exit_code", exited ? json_integer(code) : json_null(), "success",
        exited && code == 0 && !p->timed_out && !p->interrupted, "stdout", output_text(p), "stderr",
        "", "output_truncated", p->wrapped, "timed_out", p->timed_out, "output_bytes",
        (json_int_t)p->total, "duration_ms", (json_int_t)(p->end_ms - p->start_ms));
    if (r == NULL)
        return NULL;
    if (!exited && WIFSIGNALED(p->status))
        json_object_set_new(r, "signal", json_integer(WTERMSIG(p->status)));
    if (!json_object_get(r, "stdout"))
        json_object_set_new(r, "stdout", json_string(""));
    if (p->timed_out) {
        json_object_set_new(r, "error", json_string("tool execution timed out"));
        json_object_set_new(r, "timeout_ms", json_integer(p->timeout_ms));
    } else if (p->interrupted) {
        json_object_set_new(r, "error", json_string("run interrupted"));
        json_object_set_new(r, "interrupted", json_true());
    }
    return r;
}
