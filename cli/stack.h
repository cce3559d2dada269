/*
 * stack: the single-host deployment behind `kheish up`, `kheish down` and
 * `kheish migrate` (ARCHITECTURE.md, "One host, and many").
 *
 * State root layout (every path below is relative to the absolute root):
 *
 *   ./                 0711  nginx workers (nobody) and postgres traverse it
 *   stack.env          0600  settings chosen by `up`, read by `down`/`migrate`
 *   daemon.lock        0600  flock held by the up or serve at work (stack_lock)
 *   tokens/            0700  admin-token, readonly-token (0600, created once)
 *   workspace/         0711  the agents' workspace root: one directory per session, owned by
 *                            the bash tool's user (kheish-tool) when the runner is root
 *   run/               0755  api.sock and relay-N.sock (0660, nginx's group only),
 *                            fcgi.pid, relay-N.pid, runner-N.pid; supervisor.pid,
 *                            supervisor.sock (0600), supervisor.json (restarts)
 *   logs/              0755  (files 0640) supervisor.log, fcgi.log, relay-N.log,
 *                            runner-N.log; pg.log (initdb, pg_ctl, createdb)
 *   nginx/             0755  nginx prefix: nginx.conf, nginx.pid, logs/, tmp/
 *   pg/                0700  embedded PostgreSQL (owner postgres when run as
 *                            root): data/, server.log and the unix socket
 *
 * Beside it, <root>.keys/ (0700): auth-store-master.key, the auth store's
 * master key `up` makes when the environment names none (0600, created
 * once, never removed by `down` nor with the root; an older up kept it in
 * tokens/auth-store-master-key and the next up moves it). Outside the root,
 * so that a copy of the root (or `kheish backup`) opens no secret. The
 * runners make the external-action ledger's signing key as upstream does,
 * <root>/audit-signing.key, unless KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY
 * [_FILE] names one; `kheish backup` leaves it out unless asked.
 *
 * Files: stack.c (the verbs), stack_files.c (layout, tokens, stack.env,
 * options), stack_proc.c (running and stopping processes), stack_pg.c,
 * stack_daemons.c (what each daemon is started with), stack_supervise.c (the
 * supervisor that starts and restarts them), stack_nginx.c, migrate.c.
 */
#ifndef KHEISH_CLI_STACK_H
#define KHEISH_CLI_STACK_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ledger.h"
#include "store.h"

#define STACK_DEFAULT_ROOT    ".kheish"
#define STACK_DEFAULT_PORT    4000
#define STACK_DEFAULT_WORKERS 4
#define STACK_MAX_PORT        64535 /* PostgreSQL's socket is named after port + 1000 */
/* The embedded cluster listens only on a unix socket, so its "port" only names
 * the socket file (.s.PGSQL.<port>) inside <root>/pg: it cannot clash with
 * anything outside the state root. Derived, not chosen, so `down` and
 * `migrate` find it again (it is also written to stack.env). */
#define STACK_PG_PORT_OFFSET 1000
/* Relays behind nginx's upstream, on run/relay-1.sock, run/relay-2.sock...:
 * any of them serves any stream, so one can die or restart while the other
 * serves. */
#define STACK_RELAYS 2
/* Runners started when the stack has a routes file (--runners). */
#define STACK_DEFAULT_RUNNERS 2
#define STACK_MAX_RUNNERS     64
/* The supervisor's slots: kheish-fcgi, the relays, the runners. */
#define STACK_SLOTS (1 + STACK_RELAYS + STACK_MAX_RUNNERS)
/* A daemon that dies sooner than this after its start, twice in a row or
 * more, is restarted after a backoff, from the minimum doubling to the
 * maximum; else at once. */
#define STACK_CRASH_WINDOW_MS        5000
#define STACK_RESTART_BACKOFF_MIN_MS 250
#define STACK_RESTART_BACKOFF_MAX_MS 30000
/* `kheish serve` gives up after this many quick deaths in a row of one daemon. */
#define STACK_GIVE_UP_DEATHS 5
#define STACK_ROUTES_KEY_MAX (66 + STACK_URL_MAX) /* "<sha256> <path>" */
/* Unix socket paths are limited to 107 bytes; the longest one we create is
 * <root>/pg/.s.PGSQL.NNNNN (root + 18). */
#define STACK_ROOT_MAX      88
#define STACK_URL_MAX       1024
#define STACK_READY_MS      30000 /* up waits this long for /readyz */
#define STACK_STOP_EXTRA_MS 30000 /* down waits drain + this for kheish-fcgi */
#define STACK_NGINX_STOP_MS 10000 /* graceful nginx quit, then SIGTERM */
/* The descriptor limit up gives the daemons it starts: an nginx worker
 * holds two per stream (worker_connections in nginx/embedded.conf.in), a
 * relay one per stream it serves. */
#define STACK_NOFILE 65536
/* Nothing balances load in front of the embedded stack, so draining (readyz
 * 503 while still serving) would only delay `down`; KHEISH_DRAIN_MS overrides. */
#define STACK_EMBEDDED_DRAIN_MS 0

#define STACK_KEYS_SUFFIX     ".keys" /* <root>.keys/ */
#define STACK_MASTER_KEY_NAME "auth-store-master.key"
#define STACK_OLD_MASTER_KEY  "tokens/auth-store-master-key" /* where an older up kept it */

#define STACK_PG_USER     "postgres" /* owner role and, as root, the system user */
#define STACK_PG_DB       "kheish"
#define STACK_APP_ROLE    "kheish_app"
#define STACK_NGINX_USER  "nobody"    /* nginx's workers when started by root */
#define STACK_NGINX_GROUP "nogroup"   /* their group: the only one given the API socket */
#define STACK_HOST        "127.0.0.1" /* up listens on loopback only; serve --bind may differ */
#define STACK_HOST_MAX    255

/* Settings of one state root. */
struct stack {
    char root[STACK_ROOT_MAX + 1]; /* absolute, validated by stack_root_resolve */
    int port;                      /* nginx on 127.0.0.1 */
    int pg_port;                   /* embedded cluster, port + STACK_PG_PORT_OFFSET */
    int workers;
    int runners;     /* with a routes file */
    int embedded_pg; /* 1: cluster under pg/; 0: external KHEISH_DATABASE_URL */
    int drain_ms;
    char database_url[STACK_URL_MAX];  /* what kheish-fcgi connects with */
    char routes_file[STACK_URL_MAX];   /* absolute; "" when runs have no route (no runner) */
    char routes_sha256[STACK_URL_MAX]; /* of its content when up last read it (hex) */
    /* The key files: the master key the daemons get (<root>.keys/ or the
     * environment's _FILE) and the runners' audit signing key (<root>/ or
     * the environment's _FILE); "" when a key is given by value. */
    char master_key_file[STACK_URL_MAX];
    char audit_key_file[STACK_URL_MAX];
    int loaded; /* stack.env existed */
    /* Set by `kheish serve` only (not in stack.env; up keeps the defaults). */
    char host[STACK_HOST_MAX + 1];      /* nginx's listen host; "" = STACK_HOST */
    char workspace_root[STACK_URL_MAX]; /* "" = <root>/workspace */
    int given_auth;                     /* the gate's settings are the environment's,
                                         * not tokens/ (serve's token flags) */
    int foreground;                     /* daemons log to our stderr */
};

/* Command-line flags of the offline verbs (raw; validated by the verb). */
struct stack_opts {
    const char *state_root;
    const char *database_url;
    const char *port;
    const char *workers;
    const char *runners;
    const char *routes_file;
};

/* stack_files.c */
int stack_opts_parse(int argc, char **argv, const char *const *allowed, const char *usage,
                     struct stack_opts *o);
int stack_root_resolve(const char *arg, int create, struct stack *st);
void stack_path(const struct stack *st, const char *rel, char out[PATH_MAX]);
/* "<host>:<port>": what nginx listens on and kheish-fcgi's --bind. */
void stack_bind(const struct stack *st, char *out, size_t size);
/* "http://<host>:<port>", the address clients use (loopback for a wildcard host). */
void stack_url(const struct stack *st, char *out, size_t size);
/* <root>/run/relay-<i + 1>.sock: relay i's --listen, a server of nginx's upstream. */
void stack_relay_socket(const struct stack *st, int i, char out[PATH_MAX]);
int stack_env_load(struct stack *st);
int stack_env_save(const struct stack *st);
/* Takes <root>/daemon.lock (an exclusive flock, "pid=<pid>" inside) for the
 * rest of our life, so that two up or serve never set up one state root at
 * once (upstream's state-root lock; the daemons we start do not inherit it).
 * Returns 0, or -1 after printing who holds it. */
int stack_lock(const struct stack *st);
/* The directories of the layout alone (restore brings its own keys). */
int stack_dirs_create(const struct stack *st);
/* The directories and the keys; records the key files in st. */
int stack_layout_create(struct stack *st);
/* As root, when user (postgres, nginx's workers) cannot reach path: adds an
 * ACL entry letting it search each directory in the way that we own (a
 * 0700 `mktemp -d` above the state root), and says so. Returns 0 (also
 * when nothing was needed or when not root) or -1. */
int stack_grant_search(const char *user, const char *path);
/* Creates tokens/admin-token and tokens/readonly-token (0600) unless they
 * exist: the bearer tokens of a stack `up` started. Returns 0 or -1. */
int stack_tokens_ensure(const struct stack *st);
/* <root>.keys/<name> (name NULL: the directory). */
void stack_key_path(const struct stack *st, const char *name, char out[PATH_MAX]);
/* The master key file `up` makes, when the environment names no key: its
 * path into out and 1; 0 when the environment names one. */
int stack_master_key_file(const struct stack *st, char out[PATH_MAX]);
/* The audit signing key's file: the environment's _FILE, else
 * <root>/audit-signing.key (which the runners make); "" when the
 * environment gives the key by value. */
void stack_audit_key_file(const struct stack *st, char out[PATH_MAX]);
/* Copies from into a new file to (O_EXCL, mode), fsyncs it and its
 * directory. Returns 0 or -1 after printing why (no partial file left). */
int stack_file_copy(const char *from, const char *to, mode_t mode);
void stack_tail(const char *path, int lines);
/* Makes every file in logs/ and nginx/logs/ 0640 at most, and creates
 * nginx's error log so (nginx would make it 0644). Returns 0 or -1. */
int stack_logs_protect(const struct stack *st);

/* stack_proc.c */
struct stack_cmd {
    const char *const *argv;  /* argv[0] is looked up in PATH unless it has a '/' */
    const char *user;         /* as root, run as this user; NULL: as we are */
    const char *log_path;     /* append stdout and stderr here; NULL: inherit */
    const char *const *env;   /* extra NAME=VALUE entries; NULL-terminated or NULL */
    const char *const *unset; /* names removed from its environment; NULL-terminated or NULL */
    int detach;               /* new session, stdin from /dev/null; do not wait */
    int clean_env;            /* start from PATH, TZ and the locale alone: what is not
                               * ours to read (keys, tokens) stays out of it */
};
int stack_cmd_run(const struct stack_cmd *c);
pid_t stack_cmd_spawn(const struct stack_cmd *c);
int stack_cmd_capture(const char *const *argv, char *out, size_t outsz);
int stack_user_can_access(const char *user, const char *path, int mode);
int stack_proc_is(pid_t pid, const char *comm);
/* Sends sig to every live process named comm in process group pgrp (the
 * workers a killed nginx master leaves behind keep its group); returns how
 * many got it. */
int stack_group_kill(pid_t pgrp, const char *comm, int sig);
/* The pid a pid file names, 0 when none. */
pid_t stack_pid_read(const char *pid_file);
int stack_pid_alive(const char *pid_file, const char *comm, pid_t *pid);
int stack_pid_stop(const char *pid_file, const char *comm, int sig, int64_t timeout_ms, pid_t *pid);
int stack_self_dir(char out[PATH_MAX]);
long stack_nofile_raise(void);

/* stack.c: the database of a state root for offline verbs. With
 * KHEISH_DATABASE_URL set, that one. Else the embedded cluster, started if
 * it is down (*started = 1: stop it with stack_db_close) and migrated; with
 * create, a state root that holds no stack yet is set up as `up` would
 * (so `secrets set --offline` works before the first `up`). url receives
 * the owner's connection string. Returns 0 or -1 after printing why. */
int stack_db_open(const char *root_arg, int create, struct stack *st, char *url, size_t urlsz,
                  int *started);
void stack_db_close(const struct stack *st, int started);

/* kheish serve's stack (cmd_serve.c parses upstream's flags into o, host
 * and workspace_root, "" for <root>/workspace): what up starts, with the
 * supervisor in the foreground. Returns an exit code. */
int stack_serve(const struct stack_opts *o, const char *host, const char *workspace_root);

/* stack_pg.c */
/* <pg_config --bindir>/tool into out: the PostgreSQL tools of the version
 * installed, the server's. Returns 0 or -1 after printing why. */
int stack_pg_tool(const char *tool, char out[PATH_MAX]);
void stack_pg_url(const struct stack *st, const char *user, char *out, size_t outsz);
int stack_pg_ensure(const struct stack *st);
int stack_pg_stop(const struct stack *st);
int stack_pg_running(const struct stack *st);

/* stack_daemons.c */
struct stack_daemon {
    const char *comm; /* binary, and process name in /proc */
    char name[24];    /* fcgi, relay-N, runner-N: run/<name>.pid, logs/<name>.log */
    int reads_routes; /* restarted when the routes file changes */
};
void stack_daemon_of(int slot, struct stack_daemon *d);
int stack_daemon_wanted(const struct stack *st, int slot);
int stack_daemon_alive(const struct stack *st, int slot, pid_t *pid);
pid_t stack_daemon_spawn(const struct stack *st, int slot, const char *bindir,
                         const char *const *route_env);
void stack_route_env(const struct stack *st, char **names);
void stack_route_env_free(char **names);
int stack_fcgi_stop(const struct stack *st);
int stack_fcgi_running(const struct stack *st);
int stack_relays_stop(const struct stack *st);
int stack_relays_running(const struct stack *st); /* how many */
int stack_runners_stop(const struct stack *st);
int stack_runners_running(const struct stack *st); /* how many */

/* stack_supervise.c */
/* The supervisor's loop (see stack_supervise.c) until SIGTERM or SIGINT, or
 * in the foreground until a daemon cannot be kept running. Returns an exit
 * code. */
int stack_supervise(const struct stack *st, const char *bindir);
void stack_routes_key(const struct stack *st, char out[STACK_ROUTES_KEY_MAX]);
int stack_supervisor_up(const struct stack *st, const char *bindir);
int stack_supervisor_running(const struct stack *st);
int stack_supervisor_stop(const struct stack *st);
int stack_supervisor_restarts(const struct stack *st, char *last, size_t size);

/* stack_nginx.c */
int stack_nginx_write_conf(const struct stack *st, long nofile);
int stack_nginx_start(const struct stack *st);
int stack_nginx_stop(const struct stack *st);
int stack_nginx_running(const struct stack *st);

/* migrate.c */
void stack_owner_url(const struct stack *st, char *out, size_t outsz);
enum store_rc stack_migrate(const char *conninfo, struct store_migration_report *report, char *err,
                            size_t errsz);

#endif
