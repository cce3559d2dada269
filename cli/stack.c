/*
 * kheish up / kheish down: the whole stack on one host, in one state root.
 *
 * up creates what is missing and has the supervisor start what is not
 * running, so running it twice is safe and fast; down stops only what up
 * started (found through the pid files and the cluster in the state root)
 * and removes nothing.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pool.h"
#include "routes.h"
#include "output.h"
#include "stack.h"
#include "util.h"

#define READY_POLL_MS    200
#define READY_REQUEST_MS 2000 /* one /readyz request */
#define LOG_TAIL_LINES   20

static const char up_usage[] =
    "usage: kheish up [--state-root DIR] [--port PORT] [--workers N] [--runners N]\n"
    "                 [--routes-file FILE]\n"
    "Creates the state root (--state-root, KHEISH_STATE_ROOT, default " STACK_DEFAULT_ROOT "),\n"
    "an embedded PostgreSQL cluster (unless KHEISH_DATABASE_URL is set), applies migrations,\n"
    "starts nginx on 127.0.0.1:PORT (default 4000, or the port of the previous up) and a\n"
    "supervisor that starts, and restarts when they die, kheish-fcgi, two kheish-sse-relays\n"
    "and kheish-runners (with a routes file: --routes-file, KHEISH_ROUTES_FILE, or the\n"
    "previous up's; --routes-file '' for none), and waits until all of it is ready.\n"
    "--runners (default 2, or the previous up's) says how many runners.\n";

static const char down_usage[] =
    "usage: kheish down [--state-root DIR]\n"
    "Stops the supervisor, nginx, kheish-fcgi, runners, relays and embedded PostgreSQL that\n"
    "`kheish up` started in the state root. Removes nothing.\n";

/* up's flags and environment, checked before anything is created. */
struct up_flags {
    int64_t port;    /* 0: not given */
    int64_t workers; /* 0: not given */
    int64_t runners; /* 0: not given */
    int64_t drain_ms;
    const char *database_url; /* NULL: embedded cluster */
    const char *routes_file;  /* NULL: not given (keep the previous up's); "": none */
};

/* Makes the stack's routes file absolute (the runners start elsewhere) and
 * parses it now, so a bad or vanished file stops `up` before anything
 * starts; records the digest of its content. Returns 0 or -1 after printing
 * why. */
static int
routes_file_check(struct stack *st)
{
    struct routes r;
    char err[512], abs[PATH_MAX];
    st->routes_sha256[0] = '\0';
    if (st->routes_file[0] == '\0')
        return 0;
    if (realpath(st->routes_file, abs) == NULL) {
        fprintf(stderr, "kheish: routes file %s: %s\n", st->routes_file, strerror(errno));
        return -1;
    }
    /* stack.env is line-based: a path with a newline could forge settings. */
    if (strlen(abs) >= STACK_URL_MAX || !util_utf8_printable(abs, strlen(abs))) {
        fprintf(stderr, "kheish: routes file %s: its path is too long or not printable\n",
                st->routes_file);
        return -1;
    }
    memcpy(st->routes_file, abs, strlen(abs) + 1);
    if (routes_load(abs, &r, err, sizeof err) != 0) {
        fprintf(stderr, "kheish: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < sizeof r.sha256; i++)
        snprintf(st->routes_sha256 + 2 * i, 3, "%02x", r.sha256[i]);
    routes_free(&r);
    return 0;
}

/* Returns 0 or -1 after printing why. */
static int
up_flags_parse(const struct stack_opts *o, struct up_flags *f)
{
    const char *url = getenv("KHEISH_DATABASE_URL");
    *f = (struct up_flags){0};
    if (o->port && util_parse_i64(o->port, 1, STACK_MAX_PORT, &f->port) != 0) {
        fprintf(stderr, "kheish up: --port must be an integer in [1, %d]\n", STACK_MAX_PORT);
        return -1;
    }
    if (o->workers && util_parse_i64(o->workers, 1, POOL_MAX_WORKERS, &f->workers) != 0) {
        fprintf(stderr, "kheish up: --workers must be an integer in [1, %d]\n", POOL_MAX_WORKERS);
        return -1;
    }
    if (o->runners && util_parse_i64(o->runners, 1, STACK_MAX_RUNNERS, &f->runners) != 0) {
        fprintf(stderr, "kheish up: --runners must be an integer in [1, %d]\n", STACK_MAX_RUNNERS);
        return -1;
    }
    if (util_env_i64("KHEISH_DRAIN_MS", 0, 600000, STACK_EMBEDDED_DRAIN_MS, &f->drain_ms) != 0) {
        fprintf(stderr, "kheish up: KHEISH_DRAIN_MS must be an integer in [0, 600000]\n");
        return -1;
    }
    f->routes_file = o->routes_file ? o->routes_file : getenv("KHEISH_ROUTES_FILE");
    if (f->routes_file && strlen(f->routes_file) >= STACK_URL_MAX) {
        fprintf(stderr, "kheish up: the routes file path is longer than %d bytes\n",
                STACK_URL_MAX - 1);
        return -1;
    }
    if (url == NULL || *url == '\0')
        return 0;
    /* stack.env is line-based: a URL with a newline could forge settings. */
    if (strlen(url) >= STACK_URL_MAX || !util_utf8_printable(url, strlen(url))) {
        fprintf(stderr,
                "kheish up: KHEISH_DATABASE_URL must be printable and shorter than %d "
                "bytes\n",
                STACK_URL_MAX);
        return -1;
    }
    f->database_url = url;
    return 0;
}

/* Settings for up: flags, then what the previous up recorded, then
 * defaults. The database is external when KHEISH_DATABASE_URL is set. */
static void
up_settings(const struct up_flags *f, struct stack *st)
{
    st->port = f->port ? (int)f->port : st->loaded ? st->port : STACK_DEFAULT_PORT;
    st->workers = f->workers ? (int)f->workers : st->loaded ? st->workers : STACK_DEFAULT_WORKERS;
    st->runners = f->runners    ? (int)f->runners
                  : st->runners ? st->runners /* an older stack.env has none */
                                : STACK_DEFAULT_RUNNERS;
    st->pg_port = st->port + STACK_PG_PORT_OFFSET;
    st->drain_ms = (int)f->drain_ms;
    if (f->routes_file || !st->loaded)
        snprintf(st->routes_file, sizeof st->routes_file, "%s",
                 f->routes_file ? f->routes_file : "");
    st->embedded_pg = f->database_url == NULL;
    if (st->embedded_pg)
        stack_pg_url(st, STACK_APP_ROLE, st->database_url, sizeof st->database_url);
    else
        snprintf(st->database_url, sizeof st->database_url, "%s", f->database_url);
}

int
stack_db_open(const char *root_arg, int create, struct stack *st, char *url, size_t urlsz,
              int *started)
{
    struct up_flags f;
    char err[1024];
    struct store_migration_report r;
    *started = 0;
    if (up_flags_parse(&(struct stack_opts){0}, &f) != 0)
        return -1;
    if (f.database_url) {
        snprintf(url, urlsz, "%s", f.database_url);
        return 0;
    }
    if (stack_root_resolve(root_arg, create, st) != 0 || stack_env_load(st) != 0)
        return -1;
    if (!st->loaded && !create) {
        fprintf(stderr, "kheish: %s holds no stack; run `kheish up --state-root %s` first\n",
                st->root, st->root);
        return -1;
    }
    if (!st->loaded) {
        up_settings(&f, st);
        if (stack_layout_create(st) != 0 || stack_env_save(st) != 0)
            return -1;
    }
    stack_owner_url(st, url, urlsz);
    if (!st->embedded_pg)
        return 0;
    if (!stack_pg_running(st)) {
        if (stack_pg_ensure(st) != 0)
            return -1;
        *started = 1;
    }
    if (stack_migrate(url, &r, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "kheish: migration failed: %s\n", err);
        stack_db_close(st, *started);
        return -1;
    }
    return 0;
}

void
stack_db_close(const struct stack *st, int started)
{
    if (started)
        stack_pg_stop(st);
}

/* The processes of the stack, in the order down stops them: nginx first so
 * no request reaches a pool that is going away, the database last. */
static const struct component {
    const char *name;
    int (*running)(const struct stack *);
    int (*stop)(const struct stack *);
} components[] = {
    /* first, or it would start again what down stops */
    {"kheish-supervisor", stack_supervisor_running, stack_supervisor_stop},
    {"nginx", stack_nginx_running, stack_nginx_stop},
    {"kheish-fcgi", stack_fcgi_running, stack_fcgi_stop},
    {"kheish-runner", stack_runners_running, stack_runners_stop},
    {"kheish-sse-relay", stack_relays_running, stack_relays_stop},
    {"postgresql", stack_pg_running, stack_pg_stop},
};
#define NCOMPONENTS (sizeof components / sizeof components[0])

/* The name of the first process of st's stack that runs, or NULL. */
static const char *
running_component(const struct stack *st)
{
    for (size_t i = 0; i < NCOMPONENTS; i++)
        if (components[i].running(st))
            return components[i].name;
    return NULL;
}

/* A running stack keeps its port: nginx would go on listening on the old
 * one and PostgreSQL on the old socket name. */
static int
check_port_change(const struct stack *st, int old_port)
{
    const char *up;
    if (!st->loaded || old_port == st->port || (up = running_component(st)) == NULL)
        return 0;
    fprintf(stderr,
            "kheish up: the stack in %s is running on port %d (%s is up); run `kheish down "
            "--state-root %s` first to move it to port %d\n",
            st->root, old_port, up, st->root, st->port);
    return -1;
}

/* The processes that read the routes file at start, kheish-fcgi (readiness)
 * and the runners, are restarted by the supervisor when its content or path
 * changed (stack_routes_key); unchanged content restarts nothing. */
static void
announce_routes_change(const struct stack *st, const char *old_key)
{
    char key[STACK_ROUTES_KEY_MAX];
    stack_routes_key(st, key);
    if (st->loaded && strcmp(old_key, key) && (stack_fcgi_running(st) || stack_runners_running(st)))
        fprintf(stderr, "kheish up: the routes file changed: restarting kheish-fcgi and the "
                        "runners\n");
}

static size_t
discard(char *p, size_t size, size_t n, void *u)
{
    (void)p, (void)u;
    return size * n;
}

/* What is not ready yet besides /readyz, into why; "" when all is. */
static void
daemons_missing(const struct stack *st, char *why, size_t size)
{
    int relays = stack_relays_running(st);
    int runners = st->routes_file[0] ? stack_runners_running(st) : st->runners;
    why[0] = '\0';
    if (relays < STACK_RELAYS)
        snprintf(why, size, "%d of %d kheish-sse-relays listening", relays, STACK_RELAYS);
    else if (runners < st->runners)
        snprintf(why, size, "%d of %d kheish-runners running", runners, st->runners);
}

/* Polls GET /readyz through nginx until it answers 200 and every relay and
 * runner runs. Returns 0 when ready, EXIT_UNAVAILABLE after STACK_READY_MS,
 * EXIT_GENERIC when a daemon died meanwhile (the supervisor counted a
 * restart). */
static int
wait_ready(const struct stack *st)
{
    char url[STACK_HOST_MAX + 32], last[CURL_ERROR_SIZE] = "no answer", died[128];
    long code = 0;
    int rc = EXIT_UNAVAILABLE, restarts = stack_supervisor_restarts(st, died, sizeof died);
    CURL *h = curl_easy_init();
    stack_url(st, url, sizeof url - 7);
    strcat(url, "/readyz");
    if (h == NULL || curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        /* an http_proxy from the environment must not see loopback traffic */
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)READY_REQUEST_MS) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, last) != CURLE_OK) {
        fprintf(stderr, "kheish up: libcurl failed to initialise\n");
        curl_easy_cleanup(h);
        return EXIT_GENERIC;
    }
    int64_t deadline = util_monotonic_us() + (int64_t)STACK_READY_MS * 1000;
    while (util_monotonic_us() < deadline) {
        if (curl_easy_perform(h) == CURLE_OK &&
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200) {
            daemons_missing(st, last, sizeof last);
            if (last[0] == '\0') {
                rc = EXIT_OK;
                break;
            }
        } else if (code != 0) {
            snprintf(last, sizeof last, "HTTP %ld", code);
        }
        if (stack_supervisor_restarts(st, died, sizeof died) > restarts) {
            fprintf(stderr, "kheish up: %s ended before the stack was ready\n", died);
            rc = EXIT_GENERIC;
            break;
        }
        nanosleep(&(struct timespec){0, READY_POLL_MS * 1000000L}, NULL);
    }
    if (rc == EXIT_UNAVAILABLE)
        fprintf(stderr, "kheish up: the stack was not ready within %d s (%s: %s)\n",
                STACK_READY_MS / 1000, url, last);
    curl_easy_cleanup(h);
    return rc;
}

static void
print_failure_logs(const struct stack *st)
{
    char path[PATH_MAX];
    stack_path(st, "logs/supervisor.log", path);
    stack_tail(path, 5);
    stack_path(st, "logs/fcgi.log", path);
    stack_tail(path, LOG_TAIL_LINES);
    stack_path(st, "nginx/logs/error.log", path);
    stack_tail(path, 5);
}

/* How the user would type this binary: relative when it lies under the
 * current directory (bin/kheish), absolute otherwise. */
static void
program_name(const char *bindir, char out[PATH_MAX])
{
    char cwd[PATH_MAX];
    size_t n;
    if (snprintf(out, PATH_MAX, "%s/kheish", bindir) >= PATH_MAX)
        return;
    if (getcwd(cwd, sizeof cwd) && (n = strlen(cwd)) > 1 && !strncmp(out, cwd, n) && out[n] == '/')
        memmove(out, out + n + 1, strlen(out + n + 1) + 1);
}

static int
print_summary(const struct cli *c, const struct stack *st, const struct stack_opts *o,
              const char *bindir)
{
    char url[STACK_HOST_MAX + 32], admin[PATH_MAX], readonly[PATH_MAX], prog[PATH_MAX],
        down[PATH_MAX + 32];
    stack_url(st, url, sizeof url);
    stack_path(st, "tokens/admin-token", admin);
    stack_path(st, "tokens/readonly-token", readonly);
    if (c->json) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "url", url, "state_root", st->root,
                              "admin_token_file", admin, "readonly_token_file", readonly);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (s == NULL)
            return EXIT_GENERIC;
        puts(s);
        free(s);
        return EXIT_OK;
    }
    program_name(bindir, prog);
    snprintf(down, sizeof down, "%s%s", o->state_root ? " --state-root " : "",
             o->state_root ? st->root : "");
    printf("kheish is up at %s\n"
           "  admin token      %s\n"
           "  read-only token  %s\n"
           "  logs             %s/logs, %s/nginx/logs\n\n"
           "Next:\n",
           url, admin, readonly, st->root, st->root);
    if (st->port != STACK_DEFAULT_PORT)
        printf("  export KHEISH_DAEMON_URL=%s\n", url);
    printf("  export KHEISH_DAEMON_TOKEN_FILE=%s\n"
           "  %s status\n"
           "  %s sessions create demo\n"
           "  %s down%s\n",
           admin, prog, prog, prog, down);
    return EXIT_OK;
}

/* What up and serve do before starting the daemons: the state root, the
 * database and its migrations, nginx's configuration. Returns 0, or an exit
 * code after printing why. */
static int
stack_prepare(struct stack *st)
{
    char owner[STACK_URL_MAX], err[1024];
    struct store_migration_report r;
    if (stack_layout_create(st) != 0 || (!st->given_auth && stack_tokens_ensure(st) != 0) ||
        stack_env_save(st) != 0 || stack_logs_protect(st) != 0)
        return EXIT_GENERIC;
    if (st->embedded_pg && stack_pg_ensure(st) != 0)
        return EXIT_GENERIC;
    stack_owner_url(st, owner, sizeof owner);
    if (stack_migrate(owner, &r, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "kheish: migration failed: %s\n", err);
        return EXIT_GENERIC;
    }
    fprintf(stderr, "kheish: applied %d of %d migrations and %d of %d functions files\n", r.applied,
            r.total, r.functions_applied, r.functions_total);
    return stack_nginx_write_conf(st, stack_nofile_raise()) == 0 ? EXIT_OK : EXIT_GENERIC;
}

static int
nginx_start(const struct stack *st)
{
    return stack_nginx_start(st) == 0 ? EXIT_OK : EXIT_GENERIC;
}

/* Everything up does before waiting for readiness. Returns 0, or an exit
 * code after printing why. */
static int
up_start(struct stack *st, const char *bindir)
{
    int rc = stack_prepare(st);
    if (rc == EXIT_OK && stack_supervisor_up(st, bindir) != 0)
        rc = EXIT_GENERIC;
    return rc == EXIT_OK ? nginx_start(st) : rc;
}

int
cmd_up(const struct cli *c, int argc, char **argv)
{
    static const char *const allowed[] = {"--state-root", "--port",        "--workers",
                                          "--runners",    "--routes-file", NULL};
    struct stack_opts o = {0};
    struct up_flags f;
    struct stack st = {0};
    char bindir[PATH_MAX];
    int rc = stack_opts_parse(argc, argv, allowed, up_usage, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_BAD_REQUEST;
    if (up_flags_parse(&o, &f) != 0)
        return EXIT_BAD_REQUEST;
    if (stack_self_dir(bindir) != 0 || stack_root_resolve(o.state_root, 1, &st) != 0 ||
        stack_lock(&st) != 0 || stack_env_load(&st) != 0)
        return EXIT_GENERIC;
    int old_port = st.port;
    char old_routes[STACK_ROUTES_KEY_MAX];
    stack_routes_key(&st, old_routes);
    up_settings(&f, &st);
    if (routes_file_check(&st) != 0)
        return EXIT_BAD_REQUEST;
    if (check_port_change(&st, old_port) != 0)
        return EXIT_GENERIC;
    announce_routes_change(&st, old_routes);
    rc = up_start(&st, bindir);
    if (rc == EXIT_OK && (rc = wait_ready(&st)) != EXIT_OK)
        print_failure_logs(&st);
    if (rc == EXIT_OK)
        return print_summary(c, &st, &o, bindir);
    fprintf(stderr, "kheish up: failed; `kheish down --state-root %s` stops what was started\n",
            st.root);
    return rc;
}

int
stack_serve(const struct stack_opts *o, const char *host, const char *workspace_root)
{
    struct up_flags f;
    struct stack st = {.given_auth = 1, .foreground = 1};
    char bindir[PATH_MAX], url[STACK_HOST_MAX + 32];
    const char *busy;
    if (up_flags_parse(o, &f) != 0)
        return EXIT_BAD_REQUEST;
    if (stack_self_dir(bindir) != 0 || stack_root_resolve(o->state_root, 1, &st) != 0 ||
        stack_lock(&st) != 0 || stack_env_load(&st) != 0)
        return EXIT_GENERIC;
    if ((busy = running_component(&st)) != NULL) {
        fprintf(stderr,
                "kheish serve: a stack runs in %s already (%s is up); `kheish down --state-root "
                "%s` stops it\n",
                st.root, busy, st.root);
        return EXIT_GENERIC;
    }
    up_settings(&f, &st);
    snprintf(st.host, sizeof st.host, "%s", host);
    snprintf(st.workspace_root, sizeof st.workspace_root, "%s", workspace_root);
    if (routes_file_check(&st) != 0)
        return EXIT_BAD_REQUEST;
    int rc = stack_prepare(&st);
    if (rc == EXIT_OK)
        rc = nginx_start(&st);
    if (rc != EXIT_OK) {
        stack_nginx_stop(&st);
        if (st.embedded_pg)
            stack_pg_stop(&st);
        return rc;
    }
    stack_url(&st, url, sizeof url);
    fprintf(stderr, "kheish serve: serving %s from %s; SIGTERM or Ctrl-C stops it\n", url, st.root);
    return stack_supervise(&st, bindir);
}

int
cmd_down(const struct cli *c, int argc, char **argv)
{
    static const char *const allowed[] = {"--state-root", NULL};
    struct stack_opts o = {0};
    struct stack st = {.drain_ms = POOL_DEFAULT_DRAIN_MS}; /* stack.env may lower it */
    int rc = stack_opts_parse(argc, argv, allowed, down_usage, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_BAD_REQUEST;
    rc = stack_root_resolve(o.state_root, 0, &st);
    if (rc == 0)
        rc = stack_env_load(&st);
    if (rc < 0)
        return EXIT_GENERIC;
    json_t *stopped = json_array();
    int failed = 0;
    for (size_t i = 0; rc == 0 && i < NCOMPONENTS; i++) {
        int r = components[i].stop(&st);
        if (r > 0)
            json_array_append_new(stopped, json_string(components[i].name));
        if (r < 0)
            fprintf(stderr, "kheish down: could not stop %s; see %s/logs\n", components[i].name,
                    st.root);
        failed |= r < 0;
        if (r > 0 && !c->json)
            printf("stopped %s\n", components[i].name);
    }
    if (c->json) {
        output_json_line(json_pack("{s:s,s:o}", "state_root", st.root, "stopped", stopped));
    } else {
        if (json_array_size(stopped) == 0)
            printf("nothing was running in %s\n", st.root);
        json_decref(stopped);
    }
    return failed ? EXIT_GENERIC : EXIT_OK;
}
