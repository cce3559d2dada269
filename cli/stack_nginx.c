/*
 * nginx of the embedded stack: <root>/nginx/nginx.conf rendered from
 * nginx/embedded.conf.in, run with its own prefix so nothing of the system
 * nginx (config, logs, temp dirs, pid file) is used or touched.
 */
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NGINX_TEMPLATE_MAX  (64 * 1024) /* a template larger than this is refused */
#define NGINX_NAME_MAX      32          /* longest @PLACEHOLDER@ name */
#define NGINX_TERM_AFTER_MS 5000        /* SIGTERM wait when QUIT timed out */

struct subst {
    const char *name;
    const char *value;
};

/* Path of template `name`: in KHEISH_NGINX_TEMPLATE_DIR, else in ../nginx
 * next to the binary (bin/kheish -> nginx/ in the source tree). */
static int
template_path(const char *name, char out[PATH_MAX])
{
    char dir[PATH_MAX];
    const char *env = getenv("KHEISH_NGINX_TEMPLATE_DIR");
    if (env && *env)
        return snprintf(out, PATH_MAX, "%s/%s", env, name) < PATH_MAX ? 0 : -1;
    if (stack_self_dir(dir) != 0)
        return -1;
    return snprintf(out, PATH_MAX, "%s/../nginx/%s", dir, name) < PATH_MAX ? 0 : -1;
}

/* Reads the whole template (at most NGINX_TEMPLATE_MAX bytes) into buf. */
static long
read_template(const char *path, char *buf, size_t bufsz)
{
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr,
                "kheish: cannot read nginx template %s: %s; set KHEISH_NGINX_TEMPLATE_DIR to "
                "the nginx/ directory of the source tree\n",
                path, strerror(errno));
        return -1;
    }
    ssize_t n = 0;
    while (len < bufsz && (n = read(fd, buf + len, bufsz - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (n < 0 || len >= bufsz) {
        fprintf(stderr, "kheish: cannot read %s (unreadable or larger than %d bytes)\n", path,
                NGINX_TEMPLATE_MAX - 1);
        return -1;
    }
    return (long)len;
}

/* Writes tmpl to f with each @NAME@ (uppercase letters and '_') replaced.
 * Other '@' (named locations like @payload_too_large) pass through. An
 * unknown name is an error: a template and a binary that disagree must not
 * produce a half-filled config. */
static int
render(const char *tmpl, size_t len, const struct subst *vars, size_t nvars, FILE *f)
{
    for (size_t i = 0; i < len; i++) {
        size_t n = 0;
        if (tmpl[i] == '@')
            n = strspn(tmpl + i + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
        if (n == 0 || i + 1 + n >= len || tmpl[i + 1 + n] != '@' || n > NGINX_NAME_MAX) {
            fputc(tmpl[i], f); /* write errors surface through ferror() */
            continue;
        }
        const struct subst *v = NULL;
        for (size_t k = 0; k < nvars && !v; k++)
            if (strlen(vars[k].name) == n && !strncmp(vars[k].name, tmpl + i + 1, n))
                v = &vars[k];
        if (v == NULL) {
            fprintf(stderr, "kheish: nginx template has unknown placeholder @%.*s@\n", (int)n,
                    tmpl + i + 1);
            return -1;
        }
        fputs(v->value, f);
        i += n + 1;
    }
    return 0;
}

/* Renders template `name` into <root>/<out_rel> through a temporary file
 * and rename. Returns 0 or -1 after printing why. */
static int
render_file(const struct stack *st, const char *name, const char *out_rel, const struct subst *vars,
            size_t nvars)
{
    char tpath[PATH_MAX], out[PATH_MAX], tmp[PATH_MAX];
    char *tmpl = malloc(NGINX_TEMPLATE_MAX);
    FILE *f = NULL;
    int rc = -1;
    stack_path(st, out_rel, out);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out) >= (int)sizeof tmp || tmpl == NULL ||
        template_path(name, tpath) != 0) {
        fprintf(stderr, "kheish: cannot locate the nginx template %s\n", name);
        goto done;
    }
    long len = read_template(tpath, tmpl, NGINX_TEMPLATE_MAX);
    if (len < 0)
        goto done;
    f = fopen(tmp, "we");
    if (f == NULL) {
        fprintf(stderr, "kheish: cannot create %s: %s\n", tmp, strerror(errno));
        goto done;
    }
    if (render(tmpl, (size_t)len, vars, nvars, f) != 0)
        goto done;
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    f = NULL;
    if (failed || rename(tmp, out) != 0) {
        fprintf(stderr, "kheish: cannot write %s: %s\n", out, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (f)
        fclose(f);
    if (rc != 0)
        unlink(tmp);
    free(tmpl);
    return rc;
}

/* Writes <root>/nginx/nginx.conf from embedded.conf.in and the
 * problems.conf it includes; nofile is the descriptor limit nginx inherits
 * (stack_nofile_raise). Returns 0 or -1 after printing why. */
int
stack_nginx_write_conf(const struct stack *st, long nofile)
{
    char sock[PATH_MAX], bind[STACK_HOST_MAX + 16],
        relays[STACK_RELAYS * (PATH_MAX + 16)] = "", path[PATH_MAX];
    char nofile_s[24];
    stack_path(st, "run/api.sock", sock);
    stack_bind(st, bind, sizeof bind);
    for (int i = 0; i < STACK_RELAYS; i++) {
        stack_relay_socket(st, i, path);
        snprintf(relays + strlen(relays), sizeof relays - strlen(relays), "%sserver unix:%s;",
                 i ? " " : "", path);
    }
    /* Started by root, nginx switches its workers to this user and group;
     * otherwise they run as whoever started it and the directive is left out. */
    const char *user = geteuid() == 0 ? "user " STACK_NGINX_USER " " STACK_NGINX_GROUP ";" : "";
    snprintf(nofile_s, sizeof nofile_s, "%ld", nofile);
    const struct subst vars[] = {{"BIND", bind},
                                 {"FCGI_SOCKET", sock},
                                 {"NOFILE", nofile_s},
                                 {"RELAY_SERVERS", relays},
                                 {"USER", user}};
    if (render_file(st, "problems.conf", "nginx/problems.conf", NULL, 0) != 0)
        return -1;
    return render_file(st, "embedded.conf.in", "nginx/nginx.conf", vars,
                       sizeof vars / sizeof vars[0]);
}

/* KHEISH_NGINX, else Debian's /usr/sbin/nginx (not in a non-root PATH),
 * else whatever `nginx` PATH finds. */
static const char *
nginx_bin(void)
{
    const char *env = getenv("KHEISH_NGINX");
    if (env && *env)
        return env;
    return access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : "nginx";
}

/* The workers of a master that was killed (kill -9): they keep its process
 * group, listening on the port, and answer 502 to everything. SIGKILL, and
 * a short wait for the port. Returns how many there were. */
static int
orphans_stop(const struct stack *st)
{
    char pid_file[PATH_MAX];
    stack_path(st, "nginx/nginx.pid", pid_file);
    pid_t master = stack_pid_read(pid_file);
    if (master <= 0 || stack_proc_is(master, "nginx"))
        return 0;
    int n = stack_group_kill(master, "nginx", SIGKILL);
    for (int i = 0; i < 50 && stack_group_kill(master, "nginx", 0) > 0; i++)
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    if (n > 0)
        fprintf(stderr, "kheish: stopped %d nginx workers left by a master that died\n", n);
    return n;
}

/* Starts nginx unless its pid file names a live nginx, in an environment of
 * PATH and the locale (nothing of ours: nginx needs none of it). nginx
 * daemonises itself after binding, so a port in use or a bad config fails
 * here, with its message on our stderr. Returns 0 or -1. */
int
stack_nginx_start(const struct stack *st)
{
    char prefix[PATH_MAX], pid_file[PATH_MAX], err_log[PATH_MAX], run_dir[PATH_MAX];
    pid_t pid;
    stack_path(st, "nginx/", prefix);
    stack_path(st, "nginx/nginx.pid", pid_file);
    stack_path(st, "nginx/logs/error.log", err_log);
    if (stack_pid_alive(pid_file, "nginx", &pid)) {
        fprintf(stderr, "kheish: nginx is already running (pid %d)\n", (int)pid);
        return 0;
    }
    orphans_stop(st);
    /* Workers started by root run as nobody and must reach api.sock; if
     * they cannot, every request would be a 502 until the readiness timeout. */
    stack_path(st, "run", run_dir);
    if (stack_grant_search(STACK_NGINX_USER, run_dir) != 0 ||
        !stack_user_can_access(STACK_NGINX_USER, run_dir, X_OK)) {
        fprintf(stderr,
                "kheish: nginx workers (user %s) cannot reach %s: a parent directory is not "
                "searchable; use a --state-root under /srv, /var/lib or /tmp, or chmod o+x the "
                "parents\n",
                STACK_NGINX_USER, run_dir);
        return -1;
    }
    char bind[STACK_HOST_MAX + 16];
    stack_bind(st, bind, sizeof bind);
    fprintf(stderr, "kheish: starting nginx on %s\n", bind);
    struct stack_cmd c = {
        .argv = (const char *const[]){nginx_bin(), "-p", prefix, "-c", "nginx.conf", NULL},
        .clean_env = 1};
    int rc = stack_cmd_run(&c);
    if (rc == 0)
        return 0;
    /* nginx has printed its reason on our stderr already. */
    fprintf(stderr, "kheish: nginx failed to start (exit %d); see %s\n", rc, err_log);
    return -1;
}

/* Graceful quit (open requests finish), then SIGTERM if that takes longer
 * than STACK_NGINX_STOP_MS. Returns 1 stopped, 0 not running, -1 failed. */
int
stack_nginx_stop(const struct stack *st)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    stack_path(st, "nginx/nginx.pid", pid_file);
    int rc = stack_pid_stop(pid_file, "nginx", SIGQUIT, STACK_NGINX_STOP_MS, &pid);
    if (rc == 0)
        return orphans_stop(st) > 0;
    if (rc > 0)
        return rc;
    fprintf(stderr, "kheish down: nginx (pid %d) did not quit in %d ms; sending SIGTERM\n",
            (int)pid, STACK_NGINX_STOP_MS);
    return stack_pid_stop(pid_file, "nginx", SIGTERM, NGINX_TERM_AFTER_MS, &pid) > 0 ? 1 : -1;
}

/* 1 when the stack's nginx master is alive. */
int
stack_nginx_running(const struct stack *st)
{
    char pid_file[PATH_MAX];
    pid_t pid;
    stack_path(st, "nginx/nginx.pid", pid_file);
    return stack_pid_alive(pid_file, "nginx", &pid);
}
