/* tool_shell: the runner's bash tool, each check a real command, driven as
 * the loop drives it (poll shell_fd until shell_deadline_ms, shell_step).
 * Every check runs without bwrap (KHEISH_SHELL_SANDBOX=off: the user switch,
 * rlimits and the clean environment alone) and, where bwrap works here, in
 * it; as root, commands run as kheish-tool (`make deps` creates it), and a
 * child that drops to nobody checks the non-root runner too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tool_shell.h"

#define FAKE_MASTER   "fake-master-key-7f3a9c1e5b2d4086"
#define FAKE_PROVIDER "sk-fake-provider-key-0b8e6d2a4c9f1357"
#define FAKE_DB       "fake-db-password-5e1c7a3b9d2f8064"
#define FAKE_KEYFILE  "fake-key-file-bytes-3c9e1a7f5b2d6048"

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs command to its end as the loop would. */
static json_t *
run_in(const struct shell_host *h, const struct shell_limits *l, const char *ws,
       const char *command, const char *workdir)
{
    struct shell_input in = {command, workdir};
    char err[512];
    struct shell_proc *p = shell_start(h, l, ws, &in, now_ms(), err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "shell_start(%s): %s\n", command, err);
        return NULL;
    }
    int64_t guard = now_ms() + 120000;
    while (!shell_step(p, now_ms())) {
        int64_t now = now_ms(), d = shell_deadline_ms(p);
        int wait = d == INT64_MAX ? 1000 : d <= now ? 0 : d - now > 1000 ? 1000 : (int)(d - now);
        struct pollfd pfd = {shell_fd(p), POLLIN, 0};
        poll(&pfd, 1, wait);
        if (now > guard) {
            fprintf(stderr, "the command did not end in 120 s: %s\n", command);
            break;
        }
    }
    json_t *r = shell_result(p);
    shell_free(p);
    return r;
}

static const struct shell_limits *
limits(void)
{
    static struct shell_limits l;
    shell_limits_default(&l);
    return &l;
}

static const char *
str(const json_t *r, const char *key)
{
    return json_string_value(json_object_get(r, key));
}

static int
contains(const json_t *r, const char *needle)
{
    char *s = json_dumps(r, JSON_COMPACT);
    int found = s && strstr(s, needle) != NULL;
    free(s);
    return found;
}

/* Processes whose command line is exactly "sleep <arg>". */
static int
count_sleepers(const char *arg)
{
    char want[64];
    int wlen = snprintf(want, sizeof want, "sleep%c%s", 0, arg) + 1, n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], buf[64];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf);
        close(fd);
        if (len == wlen && memcmp(buf, want, (size_t)wlen) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* 0 once no such sleeper is left (SIGKILL lands asynchronously: 2 s). */
static int
sleepers_after_kill(const char *arg)
{
    int n = 0;
    for (int i = 0; i < 200 && (n = count_sleepers(arg)) > 0; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    return n;
}

static char *
make_dir(const char *prefix, mode_t mode)
{
    char *path = malloc(128);
    snprintf(path, 128, "/tmp/%s.XXXXXX", prefix);
    if (mkdtemp(path) == NULL || chmod(path, mode) != 0) {
        perror(path);
        exit(1);
    }
    return path;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fchmod(fd, mode)) {
        perror(path);
        exit(1);
    }
    close(fd);
}

static void
rm_rf(const char *path)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

static void
test_input(void)
{
    struct shell_input in;
    char err[512];
    json_t *v =
        json_pack("{s:s, s:s, s:s}", "command", "ls", "workdir", "sub", "description", "list");
    CHECK(shell_parse_input(v, &in, err, sizeof err) == 0);
    CHECK_STR(in.command, "ls");
    CHECK_STR(in.workdir, "sub");
    json_decref(v);
    v = json_pack("{s:s, s:b}", "command", "sleep 600", "run_in_background", 1);
    CHECK(shell_parse_input(v, &in, err, sizeof err) == -1);
    CHECK(strstr(err, "run_in_background is not supported yet") != NULL);
    json_decref(v);
    v = json_pack("{s:s, s:b}", "command", "true", "run_in_background", 0);
    CHECK(shell_parse_input(v, &in, err, sizeof err) == 0);
    json_decref(v);
    const char *bad[] = {"{}",
                         "{\"command\": 7}",
                         "{\"command\": \"  \"}",
                         "{\"command\": \"a\\u0000b\"}",
                         "{\"command\": \"ls\", \"workdir\": 1}",
                         "{\"command\": \"ls\", \"run_in_background\": \"yes\"}",
                         "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
        CHECK(v != NULL && shell_parse_input(v, &in, err, sizeof err) == -1);
        json_decref(v);
    }
    char *big = malloc(SHELL_COMMAND_MAX_BYTES + 2);
    memset(big, 'x', SHELL_COMMAND_MAX_BYTES + 1);
    big[SHELL_COMMAND_MAX_BYTES + 1] = '\0';
    v = json_pack("{s:s}", "command", big);
    CHECK(shell_parse_input(v, &in, err, sizeof err) == -1);
    json_decref(v);
    free(big);
    json_t *schema = shell_tool_schema();
    CHECK(schema != NULL);
    CHECK(json_object_get(json_object_get(schema, "properties"), "command") != NULL);
    CHECK(json_object_get(json_object_get(schema, "properties"), "workdir") != NULL);
    CHECK_STR(json_string_value(json_array_get(json_object_get(schema, "required"), 0)), "command");
    json_decref(schema);
}

/* Output, exit code, the result's shape, the working directory. */
static void
test_basics(const struct shell_host *h, const char *ws)
{
    json_t *r = run_in(h, limits(), ws, "echo hello; echo oops >&2; exit 3", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "hello\noops\n");
    CHECK_STR(str(r, "stderr"), "");
    CHECK(json_integer_value(json_object_get(r, "exit_code")) == 3);
    CHECK(json_is_false(json_object_get(r, "success")));
    CHECK(json_is_false(json_object_get(r, "output_truncated")));
    CHECK(json_is_false(json_object_get(r, "timed_out")));
    CHECK(json_object_get(r, "error") == NULL);
    CHECK_STR(str(r, "command"), "echo hello; echo oops >&2; exit 3");
    CHECK_STR(str(r, "workdir"), ws);
    json_decref(r);

    char sub[300], expect[400];
    snprintf(sub, sizeof sub, "%s/sub", ws);
    r = run_in(h, limits(), ws, "mkdir -p sub/deeper && ln -s /etc sub/link && id -un && pwd",
               NULL);
    CHECK(r && json_is_true(json_object_get(r, "success")));
    snprintf(expect, sizeof expect, "%s\n%s\n", h->user, ws);
    CHECK_STR(str(r, "stdout"), expect);
    json_decref(r);
    r = run_in(h, limits(), ws, "pwd; echo $HOME", "sub/deeper");
    snprintf(expect, sizeof expect, "%s/deeper\n%s\n", sub, ws);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), expect);
    snprintf(expect, sizeof expect, "%s/deeper", sub);
    CHECK_STR(str(r, "workdir"), expect);
    json_decref(r);
    r = run_in(h, limits(), ws, "pwd", sub); /* absolute, inside */
    CHECK(r != NULL && !strncmp(str(r, "stdout"), sub, strlen(sub)));
    json_decref(r);
    struct shell_input in = {"pwd", "sub/../.."};
    char err[512];
    CHECK(shell_start(h, limits(), ws, &in, now_ms(), err, sizeof err) == NULL);
    CHECK(strstr(err, "leaves the workspace") != NULL);
    in.workdir = "sub/link";
    CHECK(shell_start(h, limits(), ws, &in, now_ms(), err, sizeof err) == NULL);
    CHECK(strstr(err, "symlinks are not followed") != NULL);
    in.workdir = "/etc";
    CHECK(shell_start(h, limits(), ws, &in, now_ms(), err, sizeof err) == NULL);
    in.workdir = "missing";
    CHECK(shell_start(h, limits(), ws, &in, now_ms(), err, sizeof err) == NULL);

    /* Bytes that are not UTF-8 become U+FFFD; NUL stays. */
    r = run_in(h, limits(), ws, "printf '\\377\\376abc\\303\\251'; printf 'x\\000y'", NULL);
    CHECK(r != NULL);
    CHECK(json_string_length(json_object_get(r, "stdout")) == 3 + 3 + 3 + 2 + 3);
    CHECK(!memcmp(str(r, "stdout"),
                  "\xef\xbf\xbd\xef\xbf\xbd"
                  "abc\xc3\xa9x\0y",
                  14));
    json_decref(r);

    /* Signals back to their defaults (the runner ignores SIGPIPE): yes dies
     * of it quietly, as in a terminal. */
    r = run_in(h, limits(), ws, "yes | head -c 4; echo \" ${PIPESTATUS[0]}\"", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "y\ny\n 141\n");
    json_decref(r);
}

/* "sleep <marker>": a sleep this run alone starts (k: which test). */
static const char *
marker(int k)
{
    static char m[4][32];
    snprintf(m[k], sizeof m[k], "98765%d.%d", k, (int)getpid());
    return m[k];
}

/* A deadline kills the whole group: the children it backgrounded too. */
static void
test_timeout(const struct shell_host *h, const char *ws)
{
    struct shell_limits l = *limits();
    char cmd[512];
    const char *m = marker(0);
    l.timeout_ms = 1000;
    /* setsid leaves the group: only a pid namespace (bwrap) catches it. */
    snprintf(cmd, sizeof cmd, "sleep %s & sleep %s & (sleep %s &); %s echo started; sleep %s", m, m,
             m, h->bwrap ? "setsid sleep 987650 &" : "", m);
    int64_t t0 = now_ms();
    json_t *r = run_in(h, &l, ws, cmd, NULL);
    int64_t took = now_ms() - t0;
    CHECK(r != NULL);
    CHECK(json_is_true(json_object_get(r, "timed_out")));
    CHECK_STR(str(r, "error"), "tool execution timed out");
    CHECK(json_is_null(json_object_get(r, "exit_code")));
    CHECK(json_is_false(json_object_get(r, "success")));
    CHECK_STR(str(r, "stdout"), "started\n");
    CHECK(took >= 1000 && took < 5000);
    CHECK(sleepers_after_kill(m) == 0);
    if (h->bwrap)
        CHECK(sleepers_after_kill("987650") == 0);
    json_decref(r);

    /* Ending kills what it left behind, at once. */
    m = marker(1);
    snprintf(cmd, sizeof cmd, "sleep %s & sleep %s & echo done", m, m);
    t0 = now_ms();
    r = run_in(h, limits(), ws, cmd, NULL);
    CHECK(r != NULL && now_ms() - t0 < 5000);
    CHECK_STR(str(r, "stdout"), "done\n");
    CHECK(json_integer_value(json_object_get(r, "exit_code")) == 0);
    CHECK(sleepers_after_kill(m) == 0);
    json_decref(r);

    /* A cancel: SIGKILL to the group, reaped at once. */
    m = marker(2);
    snprintf(cmd, sizeof cmd, "sleep %s & echo x; sleep %s", m, m);
    struct shell_input in = {cmd, NULL};
    char err[512];
    struct shell_proc *p = shell_start(h, limits(), ws, &in, now_ms(), err, sizeof err);
    CHECK(p != NULL);
    if (p) {
        for (int i = 0; i < 100 && count_sleepers(m) < 2; i++) {
            shell_step(p, now_ms());
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
        CHECK(count_sleepers(m) == 2);
        CHECK(shell_result(p) == NULL);
        shell_kill(p);
        CHECK(shell_step(p, now_ms()) == 1 && shell_fd(p) == -1);
        r = shell_result(p);
        CHECK(r != NULL && shell_result_is_error(p));
        CHECK_STR(str(r, "error"), "run interrupted");
        CHECK(json_is_true(json_object_get(r, "interrupted")));
        CHECK(sleepers_after_kill(m) == 0);
        json_decref(r);
        shell_free(p);
    }
}

/* Past the cap the output is read and dropped: the command is never
 * blocked; the head and the tail are kept. */
static void
test_output_cap(const struct shell_host *h, const char *ws)
{
    int64_t t0 = now_ms();
    json_t *r = run_in(h, limits(), ws, "yes | head -c 10M", NULL);
    CHECK(r != NULL && now_ms() - t0 < 30000);
    CHECK(json_integer_value(json_object_get(r, "exit_code")) == 0);
    CHECK(json_is_true(json_object_get(r, "output_truncated")));
    CHECK(json_integer_value(json_object_get(r, "output_bytes")) == 10 << 20);
    const char *out = str(r, "stdout");
    CHECK(out && strlen(out) < SHELL_DEFAULT_OUTPUT_BYTES + 100);
    CHECK(out && !strncmp(out, "y\ny\n", 4) && !strcmp(out + strlen(out) - 4, "y\ny\n"));
    CHECK(out && strstr(out, "bytes of output omitted") != NULL);
    json_decref(r);

    /* The head, the count, the tail, exactly. */
    struct shell_limits l = *limits();
    l.output_cap_bytes = 1000;
    r = run_in(h, &l, ws, "seq 1 10000", NULL);
    out = r ? str(r, "stdout") : NULL;
    CHECK(out && !strncmp(out, "1\n2\n3\n", 6));
    CHECK(out && strlen(out) > 12 && !strcmp(out + strlen(out) - 12, "\n9999\n10000\n"));
    /* seq 1 10000 is 48894 bytes: 500 kept of the head, 500 of the tail. */
    CHECK(out && strstr(out, "\n[... 47894 bytes of output omitted ...]\n") != NULL);
    json_decref(r);

    /* Endless output: the deadline still holds. */
    l = *limits();
    l.timeout_ms = 1000;
    r = run_in(h, &l, ws, "yes", NULL);
    CHECK(r && json_is_true(json_object_get(r, "timed_out")));
    CHECK(r && json_is_true(json_object_get(r, "output_truncated")));
    CHECK(r && json_integer_value(json_object_get(r, "output_bytes")) > 1000000);
    json_decref(r);
}

/* Nothing of the runner's environment reaches the command, nor can it read
 * the runner's (this process's) /proc/PID/environ, nor init's. */
static void
test_environment(const struct shell_host *h, const char *ws)
{
    json_t *r = run_in(h, limits(), ws,
                       "env; echo ---; cat /proc/$PPID/environ; echo; cat /proc/1/environ; echo; "
                       "for f in /proc/[0-9]*/environ; do cat $f; echo; done 2>/dev/null; "
                       "cat /proc/1/cmdline; echo",
                       NULL);
    CHECK(r != NULL);
    CHECK(!contains(r, FAKE_MASTER));
    CHECK(!contains(r, FAKE_PROVIDER));
    CHECK(!contains(r, FAKE_DB));
    CHECK(!contains(r, "KHEISH_"));
    char home[400];
    snprintf(home, sizeof home, "HOME=%s\n", ws);
    CHECK(r && strstr(str(r, "stdout"), home) != NULL);
    CHECK(r && strstr(str(r, "stdout"), "LANG=C.UTF-8\n") != NULL);
    CHECK(r && strstr(str(r, "stdout"), "TERM=dumb\n") != NULL);
    json_decref(r);
}

/* A key file outside the workspace: 0600 root's in a searchable directory
 * (the user switch stops it), or any file at all under bwrap (not there). */
static void
test_key_file(const struct shell_host *h, const char *ws)
{
    char *dir = make_dir("kheish-test-keys", 0755), key[300], open_file[300], cmd[800];
    snprintf(key, sizeof key, "%s/auth-store-master.key", dir);
    snprintf(open_file, sizeof open_file, "%s/readable.key", dir);
    write_file(key, FAKE_KEYFILE, 0600);
    write_file(open_file, FAKE_KEYFILE "-open", 0644);
    snprintf(cmd, sizeof cmd, "cat %s; cat %s/*; ls -la %s", key, dir, dir);
    json_t *r = run_in(h, limits(), ws, cmd, NULL);
    CHECK(r != NULL);
    if (h->switch_user || h->bwrap)
        CHECK(!contains(r, FAKE_KEYFILE "\""));
    else
        printf(
            "  (not root, no bwrap: a 0600 file of the runner's user is readable: documented)\n");
    if (h->bwrap)
        CHECK(!contains(r, FAKE_KEYFILE)); /* not even the 0644 one: not in the sandbox */
    json_decref(r);
    rm_rf(dir);
    free(dir);
}

/* Writes land in the workspace only (bwrap); /usr and /etc are read-only. */
static void
test_writes(const struct shell_host *h, const char *ws)
{
    char *dir = make_dir("kheish-test-out", 0777), cmd[800], outside[300], inside[300];
    snprintf(outside, sizeof outside, "%s/escaped", dir);
    snprintf(inside, sizeof inside, "%s/written", ws);
    snprintf(cmd, sizeof cmd,
             "touch %s; echo x >/usr/kheish-escaped; echo x >/etc/kheish-escaped; touch written; "
             "echo tmp >/tmp/t && cat /tmp/t",
             outside);
    json_t *r = run_in(h, limits(), ws, cmd, NULL);
    CHECK(r && strstr(str(r, "stdout"), "tmp\n") != NULL);
    CHECK(access(inside, F_OK) == 0);
    CHECK(access("/usr/kheish-escaped", F_OK) != 0 && access("/etc/kheish-escaped", F_OK) != 0);
    if (h->bwrap) {
        CHECK(access(outside, F_OK) != 0);
    } else {
        printf("  (no bwrap: a world-writable directory outside the workspace was %s: "
               "documented)\n",
               access(outside, F_OK) == 0 ? "written" : "not written");
    }
    unlink("/usr/kheish-escaped");
    unlink("/etc/kheish-escaped");
    json_decref(r);
    rm_rf(dir);
    free(dir);
}

/* No fd of the runner reaches the command: only 0, 1 and 2. */
static void
test_fds(const struct shell_host *h, const char *ws)
{
    int leak1 = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    int pfd[2], sv[2];
    CHECK(pipe(pfd) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    /* No pipeline: bash would hold its pipe's fds while ls looks. */
    json_t *r = run_in(h, limits(), ws, "ls /proc/$$/fd; readlink /proc/$$/fd/0", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "0\n1\n2\n/dev/null\n");
    json_decref(r);
    close(leak1);
    close(pfd[0]);
    close(pfd[1]);
    close(sv[0]);
    close(sv[1]);
}

/* A command that takes its own rights on the workspace away (chmod 000 .,
 * or chmod -R 644 .) does not lock every later command out of it. */
static void
test_lockout(const struct shell_host *h, const char *ws)
{
    json_t *r = run_in(h, limits(), ws, "chmod 000 . && echo locked", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "locked\n");
    json_decref(r);
    r = run_in(h, limits(), ws, "ls -a . >/dev/null && echo open", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "open\n");
    json_decref(r);
}

/* Resource limits as set. */
static void
test_rlimits(const struct shell_host *h, const char *ws)
{
    json_t *r = run_in(h, limits(), ws,
                       "ulimit -c; ulimit -n; ulimit -u; ulimit -t; ulimit -v; "
                       "grep -E 'NoNewPrivs|CapEff|CapAmb' /proc/self/status",
                       NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "0\n1024\n512\n600\n4194304\nCapEff:\t0000000000000000\n"
                                "CapAmb:\t0000000000000000\nNoNewPrivs:\t1\n");
    json_decref(r);
    struct shell_limits l = *limits();
    l.fsize_bytes = 1 << 20;
    r = run_in(h, &l, ws, "head -c 2M /dev/zero >big; echo $?; stat -c %s big", NULL);
    CHECK(r != NULL);
    CHECK(r && strstr(str(r, "stdout"), "1048576\n") != NULL);
    json_decref(r);
}

static void
run_all(const struct shell_host *h, const char *label)
{
    char err[512];
    char *ws = make_dir("kheish-shell-ws", 0700);
    CHECK(shell_workspace_prepare(h, ws, err, sizeof err) == 0);
    printf("%s: %s\n", label, h->summary);
    test_basics(h, ws);
    test_timeout(h, ws);
    test_output_cap(h, ws);
    test_environment(h, ws);
    test_key_file(h, ws);
    test_writes(h, ws);
    test_fds(h, ws);
    test_rlimits(h, ws);
    test_lockout(h, ws);
    if (h->bwrap && h->switch_user) {
        /* bwrap binds the workspace as the tool user: its parents must be
         * searchable, and shell_start says so when they are not. */
        char *closed = make_dir("kheish-shell-closed", 0700), inner[300];
        snprintf(inner, sizeof inner, "%s/ws", closed);
        CHECK(shell_workspace_prepare(h, inner, err, sizeof err) == 0);
        struct shell_input in = {"true", NULL};
        CHECK(shell_start(h, limits(), inner, &in, now_ms(), err, sizeof err) == NULL);
        CHECK(strstr(err, "a parent directory is not searchable") != NULL);
        rm_rf(closed);
        free(closed);
    }
    rm_rf(ws);
    free(ws);
}

/* As root: a child that drops to nobody runs the tool as a non-root runner
 * would (no user switch), without bwrap and with it. */
static void
test_not_root(void)
{
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL) {
        printf("not root: no user nobody, skipped\n");
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char err[512];
        char *ws = make_dir("kheish-shell-ws-nobody", 0700);
        if (chown(ws, pw->pw_uid, pw->pw_gid) != 0 || setgroups(0, NULL) != 0 ||
            setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
            _exit(100);
        struct shell_options o = {SHELL_SANDBOX_OFF, NULL, 1};
        struct shell_host h;
        CHECK(shell_host_init(&h, &o, err, sizeof err) == 0);
        CHECK(!h.switch_user && !h.bwrap);
        /* It made itself non-dumpable: /proc/self/environ is root's now. */
        CHECK(prctl(PR_GET_DUMPABLE) == 0);
        printf("not root, off: %s\n", h.summary);
        json_t *r = run_in(&h, limits(), ws,
                           "id -u; cat /proc/$PPID/environ; for f in /proc/[0-9]*/environ; do "
                           "cat $f; done 2>/dev/null; env",
                           NULL);
        CHECK(r && !contains(r, FAKE_MASTER) && !contains(r, FAKE_PROVIDER));
        json_decref(r);
        test_fds(&h, ws);
        test_lockout(&h, ws);
        shell_host_free(&h);
        o.sandbox = SHELL_SANDBOX_AUTO;
        if (shell_host_init(&h, &o, err, sizeof err) == 0 && h.bwrap) {
            printf("not root, bwrap: %s\n", h.summary);
            test_environment(&h, ws);
            test_key_file(&h, ws);
            test_writes(&h, ws);
        } else {
            printf("not root: bwrap unavailable (%s)\n", h.summary);
        }
        shell_host_free(&h);
        rm_rf(ws);
        fflush(stdout);
        _exit(check_failures > 100 ? 100 : check_failures);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char ws_glob[] = "rm -rf /tmp/kheish-shell-ws-nobody.*";
    if (system(ws_glob) != 0)
        fprintf(stderr, "cannot clean up\n");
}

int
main(void)
{
    char err[512];
    /* Secrets in the runner's environment, as kheish up gives them. */
    setenv("KHEISH_AUTH_STORE_MASTER_KEY", FAKE_MASTER, 1);
    setenv("OPENAI_API_KEY", FAKE_PROVIDER, 1);
    setenv("KHEISH_DATABASE_URL", "host=/x user=app password=" FAKE_DB, 1);
    signal(SIGPIPE, SIG_IGN); /* as the runner does */
    test_input();

    struct shell_options o = {SHELL_SANDBOX_OFF, SHELL_DEFAULT_USER, 1};
    struct shell_host plain, boxed;
    if (shell_host_init(&plain, &o, err, sizeof err) != 0) {
        fprintf(stderr, "shell_host_init: %s\n", err);
        CHECK(!"the plain host starts");
        return check_report("tool_shell");
    }
    CHECK(!plain.bwrap && plain.switch_user == (geteuid() == 0));
    run_all(&plain, "off");

    o.sandbox = SHELL_SANDBOX_REQUIRE;
    if (shell_host_init(&boxed, &o, err, sizeof err) == 0) {
        CHECK(boxed.bwrap);
        run_all(&boxed, "bwrap");
        /* Network off: only the sandbox's own loopback. */
        struct shell_host nonet;
        o.network = 0;
        CHECK(shell_host_init(&nonet, &o, err, sizeof err) == 0);
        char *ws = make_dir("kheish-shell-ws", 0700);
        CHECK(shell_workspace_prepare(&nonet, ws, err, sizeof err) == 0);
        json_t *r = run_in(&nonet, limits(), ws,
                           "ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut "
                           "-d: -f1 | tr -d ' '",
                           NULL);
        CHECK(r && !strcmp(str(r, "stdout"), "lo\n"));
        json_decref(r);
        rm_rf(ws);
        free(ws);
        shell_host_free(&nonet);
        shell_host_free(&boxed);
    } else {
        printf("bwrap: SKIPPED, %s\n", err);
    }
    if (geteuid() == 0)
        test_not_root();
    shell_host_free(&plain);
    return check_report("tool_shell");
}
