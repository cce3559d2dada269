/*
 * The embedded PostgreSQL cluster under <root>/pg: created with initdb, run
 * with pg_ctl, both as the unprivileged `postgres` user when we are root
 * (PostgreSQL refuses root). It listens only on its unix socket in <root>/pg.
 *
 * The settings the stack owns live in data/kheish.conf, included from
 * postgresql.conf and rewritten on every `up`, so a cluster started by hand
 * with pg_ctl behaves the same.
 */
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG_START_TIMEOUT_S "60"
#define PG_INCLUDE_LINE    "include_if_exists = 'kheish.conf'"

/* pg_ctl status exit codes */
#define PG_STATUS_RUNNING 0
#define PG_STATUS_STOPPED 3

/* <bindir>/tool (initdb, pg_ctl, pg_dump, pg_restore, psql). The server binaries are not in PATH on
 * Debian; pg_config (libpq-dev) names the directory of the installed version. */
int
stack_pg_tool(const char *tool, char out[PATH_MAX])
{
    static char bindir[PATH_MAX];
    if (bindir[0] == '\0' && stack_cmd_capture((const char *const[]){"pg_config", "--bindir", NULL},
                                               bindir, sizeof bindir) != 0) {
        fprintf(stderr, "kheish: `pg_config --bindir` failed; install libpq-dev and "
                        "postgresql (make deps), or set KHEISH_DATABASE_URL\n");
        bindir[0] = '\0';
        return -1;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", bindir, tool) >= PATH_MAX)
        return -1;
    if (access(out, X_OK) != 0) {
        fprintf(stderr, "kheish: %s is missing; install postgresql (make deps)\n", out);
        return -1;
    }
    return 0;
}

void
stack_pg_url(const struct stack *st, const char *user, char *out, size_t outsz)
{
    snprintf(out, outsz, "host=%s/pg port=%d dbname=%s user=%s", st->root, st->pg_port, STACK_PG_DB,
             user);
}

/* Runs a PostgreSQL tool as STACK_PG_USER with its output appended to
 * logs/pg.log; returns its exit status or -1. */
static int
pg_run(const struct stack *st, const char *const *argv)
{
    char log[PATH_MAX];
    stack_path(st, "logs/pg.log", log);
    struct stack_cmd c = {.argv = argv, .user = STACK_PG_USER, .log_path = log, .clean_env = 1};
    return stack_cmd_run(&c);
}

/* pg_ctl status: PG_STATUS_RUNNING, PG_STATUS_STOPPED, or another code
 * (4: no usable data directory), -1 when it could not run. */
static int
pg_status(const struct stack *st)
{
    char pg_ctl[PATH_MAX], data[PATH_MAX];
    if (stack_pg_tool("pg_ctl", pg_ctl) != 0)
        return -1;
    stack_path(st, "pg/data", data);
    struct stack_cmd c = {.argv = (const char *const[]){pg_ctl, "status", "-D", data, NULL},
                          .user = STACK_PG_USER,
                          .log_path = "/dev/null"};
    return stack_cmd_run(&c);
}

static int
cluster_exists(const struct stack *st)
{
    char path[PATH_MAX];
    stack_path(st, "pg/data/PG_VERSION", path);
    return access(path, F_OK) == 0;
}

/* <root>/pg: 0700, owned by postgres when we are root, and reachable by it
 * through every parent directory. */
static int
pg_prepare_dir(const struct stack *st)
{
    char dir[PATH_MAX];
    stack_path(st, "pg", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kheish: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(STACK_PG_USER);
        if (pw == NULL) {
            fprintf(stderr,
                    "kheish: there is no `%s` system user; install postgresql "
                    "(make deps) or set KHEISH_DATABASE_URL\n",
                    STACK_PG_USER);
            return -1;
        }
        if (chown(dir, pw->pw_uid, pw->pw_gid) != 0 || chmod(dir, 0700) != 0) {
            fprintf(stderr, "kheish: cannot hand %s to %s: %s\n", dir, STACK_PG_USER,
                    strerror(errno));
            return -1;
        }
    }
    if (stack_grant_search(STACK_PG_USER, st->root) != 0 ||
        !stack_user_can_access(STACK_PG_USER, dir, W_OK | X_OK)) {
        fprintf(stderr,
                "kheish: user %s cannot reach %s: a parent directory is not searchable "
                "(a 0700 home directory, for instance); use a --state-root under /srv, /var/lib "
                "or /tmp, or chmod o+x the parents\n",
                STACK_PG_USER, dir);
        return -1;
    }
    return 0;
}

static int
pg_initdb(const struct stack *st)
{
    char initdb[PATH_MAX], data[PATH_MAX], log[PATH_MAX];
    if (stack_pg_tool("initdb", initdb) != 0)
        return -1;
    stack_path(st, "pg/data", data);
    stack_path(st, "logs/pg.log", log);
    fprintf(stderr, "kheish: creating a PostgreSQL cluster in %s\n", data);
    int rc = pg_run(st, (const char *const[]){initdb, "-D", data, "-U", STACK_PG_USER, "-A",
                                              "trust", "-E", "UTF8", "--locale=C.UTF-8", NULL});
    if (rc == 0)
        return 0;
    fprintf(stderr, "kheish: initdb failed (exit %d)\n", rc);
    stack_tail(log, 15);
    return -1;
}

/* Appends the include line to postgresql.conf unless it is there. Checked
 * on every up, not only after initdb, so an up interrupted in between
 * cannot leave a cluster listening on the system defaults. */
static int
pg_include_conf(const struct stack *st)
{
    char path[PATH_MAX], line[512];
    int found = 0;
    stack_path(st, "pg/data/postgresql.conf", path);
    FILE *f = fopen(path, "a+e");
    if (f == NULL)
        goto fail;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, PG_INCLUDE_LINE, strlen(PG_INCLUDE_LINE)) == 0;
    if (!found && fprintf(f, "\n# Settings owned by `kheish up`\n%s\n", PG_INCLUDE_LINE) < 0) {
        fclose(f);
        goto fail;
    }
    if (fclose(f) == 0)
        return 0;
fail:
    fprintf(stderr, "kheish: cannot update %s: %s\n", path, strerror(errno));
    return -1;
}

/* data/kheish.conf: no TCP listener at all, the socket in <root>/pg, and
 * the port that names it. */
static int
pg_write_conf(const struct stack *st)
{
    char path[PATH_MAX];
    stack_path(st, "pg/data/kheish.conf", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    int ok = fd >= 0 && dprintf(fd,
                                "# Written by `kheish up` on every start (cli/stack_pg.c).\n"
                                "listen_addresses = ''\n"
                                "port = %d\n"
                                "unix_socket_directories = '%s/pg'\n",
                                st->pg_port, st->root) > 0;
    if (ok && geteuid() == 0) {
        struct passwd *pw = getpwnam(STACK_PG_USER);
        ok = pw && fchown(fd, pw->pw_uid, pw->pw_gid) == 0;
    }
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok)
        return pg_include_conf(st);
    fprintf(stderr, "kheish: cannot write %s: %s\n", path, strerror(errno));
    return -1;
}

static int
pg_start(const struct stack *st)
{
    char pg_ctl[PATH_MAX], data[PATH_MAX], server_log[PATH_MAX];
    if (stack_pg_tool("pg_ctl", pg_ctl) != 0)
        return -1;
    stack_path(st, "pg/data", data);
    stack_path(st, "pg/server.log", server_log);
    fprintf(stderr, "kheish: starting PostgreSQL (socket %s/pg, port %d)\n", st->root, st->pg_port);
    int rc = pg_run(st, (const char *const[]){pg_ctl, "start", "-D", data, "-l", server_log, "-w",
                                              "-t", PG_START_TIMEOUT_S, NULL});
    if (rc == 0)
        return 0;
    fprintf(stderr, "kheish: pg_ctl start failed (exit %d)\n", rc);
    stack_tail(server_log, 15);
    return -1;
}

/* Creates database kheish unless a connection to it succeeds. A plain
 * connection attempt, not a catalog query: SQL belongs to store/. */
static int
pg_ensure_db(const struct stack *st)
{
    char url[STACK_URL_MAX], createdb[PATH_MAX], sock[PATH_MAX], port[16], log[PATH_MAX];
    stack_pg_url(st, STACK_PG_USER, url, sizeof url);
    PGconn *conn = PQconnectdb(url);
    int exists = PQstatus(conn) == CONNECTION_OK;
    PQfinish(conn);
    if (exists)
        return 0;
    if (stack_pg_tool("createdb", createdb) != 0)
        return -1;
    stack_path(st, "pg", sock);
    stack_path(st, "logs/pg.log", log);
    snprintf(port, sizeof port, "%d", st->pg_port);
    int rc = pg_run(st, (const char *const[]){createdb, "-h", sock, "-p", port, "-U", STACK_PG_USER,
                                              STACK_PG_DB, NULL});
    if (rc == 0)
        return 0;
    fprintf(stderr, "kheish: createdb %s failed (exit %d)\n", STACK_PG_DB, rc);
    stack_tail(log, 5);
    return -1;
}

/* Makes the embedded cluster exist, run and hold database kheish. Leaves a
 * running cluster alone. Returns 0 or -1 after printing why. */
int
stack_pg_ensure(const struct stack *st)
{
    if (pg_prepare_dir(st) != 0)
        return -1;
    if (!cluster_exists(st) && pg_initdb(st) != 0)
        return -1;
    int status = pg_status(st);
    if (status == PG_STATUS_RUNNING) {
        fprintf(stderr, "kheish: PostgreSQL is already running\n");
    } else if (status == PG_STATUS_STOPPED) {
        if (pg_write_conf(st) != 0 || pg_start(st) != 0)
            return -1;
    } else {
        fprintf(stderr, "kheish: pg_ctl status failed (exit %d) for %s/pg/data\n", status,
                st->root);
        return -1;
    }
    return pg_ensure_db(st);
}

/* Stops the embedded cluster (fast: open sessions are disconnected).
 * Returns 1 when it stopped, 0 when there was nothing to stop, -1 when
 * pg_ctl failed. */
int
stack_pg_stop(const struct stack *st)
{
    char pg_ctl[PATH_MAX], data[PATH_MAX];
    if (!cluster_exists(st))
        return 0;
    int status = pg_status(st);
    if (status == PG_STATUS_STOPPED)
        return 0;
    if (status != PG_STATUS_RUNNING || stack_pg_tool("pg_ctl", pg_ctl) != 0)
        return -1;
    stack_path(st, "pg/data", data);
    return pg_run(st, (const char *const[]){pg_ctl, "stop", "-D", data, "-m", "fast", "-w", "-t",
                                            PG_START_TIMEOUT_S, NULL}) == 0
               ? 1
               : -1;
}

/* 1 when the embedded cluster is running. */
int
stack_pg_running(const struct stack *st)
{
    return cluster_exists(st) && pg_status(st) == PG_STATUS_RUNNING;
}
