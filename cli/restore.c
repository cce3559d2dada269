/*
 * kheish restore: a backup into a new, isolated state root with a new
 * embedded PostgreSQL cluster, left stopped and ready for `kheish up`.
 *
 * Nothing is created before the file is verified, and nothing is written
 * into a directory that holds anything: the target must be absent or
 * empty, its <root>.keys/ too. The keys come from --master-key-file (copied
 * into <root>.keys/) and --audit-key-file (into <root>/audit-signing.key,
 * where the runners look), else from the backup when it was made with
 * --include-keys, else from the environment of the `up` that starts the
 * restored stack. A failed restore removes what it created.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "backup.h"
#include "output.h"
#include "sealed.h"
#include "util.h"

#define RM_FDS       16
#define LINE_MAX_LEN 4096

static const char restore_usage[] =
    "usage: kheish restore FILE --state-root NEW [--port PORT] [--master-key-file F]\n"
    "                      [--audit-key-file F]\n"
    "Verifies FILE (a `kheish backup`), then makes NEW a stopped stack holding it: NEW must\n"
    "be absent or empty; it gets its own PostgreSQL cluster (NEW/pg) with the dump restored,\n"
    "and the backup's files. --port (default: the backed-up stack's) only names the cluster's\n"
    "socket until `kheish up --state-root NEW --port PORT` starts it. The master key that\n"
    "sealed the slots: --master-key-file F copies F into NEW.keys/ (--audit-key-file F, the\n"
    "ledger's signing key, into NEW/audit-signing.key); a backup made with --include-keys\n"
    "brings its own; else give it to `up` as KHEISH_AUTH_STORE_MASTER_KEY_FILE. Token files come "
    "from the backup when it\n"
    "has them, else `up` makes new ones.\n";

struct restore {
    const char *file, *root_arg, *port, *master_key, *audit_key;
    struct stack st;
    struct backup_extract x;
    json_t *manifest;
    int made_root, made_keys; /* what a failure removes */
    int existed;              /* the root was an empty directory */
};

/* 0 when path does not exist or is an empty directory. */
static int
absent_or_empty(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n ? -1 : 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Removes what a failed restore created. */
static void
undo(struct restore *r)
{
    char keys[PATH_MAX];
    if (r->st.root[0] && stack_pg_running(&r->st))
        stack_pg_stop(&r->st);
    stack_key_path(&r->st, NULL, keys);
    if (r->made_keys)
        nftw(keys, rm_entry, RM_FDS, FTW_DEPTH | FTW_PHYS);
    if (r->made_root)
        nftw(r->st.root, rm_entry, RM_FDS, FTW_DEPTH | FTW_PHYS);
    if (r->made_root && r->existed)
        mkdir(r->st.root, 0755); /* it was an empty directory */
    fprintf(stderr, "kheish restore: failed; removed what it had created in %s\n", r->st.root);
}

/* Creates the directories of path below base (0700), for a member file. */
static int
make_parents(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

/* Writes the current member to path (0600, a new file). */
static int
extract_to(struct backup_tar *t, const char *path)
{
    char buf[LINE_MAX_LEN * 16];
    ssize_t n = 0;
    int fd = make_parents(path) == 0
                 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)
                 : -1;
    int ok = fd >= 0;
    while ((n = backup_tar_read(t, buf, sizeof buf)) > 0)
        ok = ok && write(fd, buf, (size_t)n) == n;
    sodium_memzero(buf, sizeof buf);
    ok = ok && n == 0 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "kheish restore: cannot write %s: %s\n", path, strerror(errno));
    return ok ? 0 : -1;
}

/* Where a key goes: the master key in <root>.keys/, the audit signing key
 * in the root, where the runners look for it. */
static void
key_path(const struct restore *r, const char *name, char out[PATH_MAX])
{
    if (!strcmp(name, LEDGER_KEY_FILE))
        stack_path(&r->st, name, out);
    else
        stack_key_path(&r->st, name, out);
}

/* Where member name goes: <root>/<path> for state/, the key's place for
 * keys/ (unless that key was given by option); "" for none. */
static void
member_target(const struct restore *r, const char *name, char out[PATH_MAX])
{
    size_t sp = strlen(BACKUP_STATE_PREFIX), kp = strlen(BACKUP_KEYS_PREFIX);
    const char *key = name + kp;
    out[0] = '\0';
    if (!strncmp(name, BACKUP_STATE_PREFIX, sp))
        stack_path(&r->st, name + sp, out);
    else if (!strncmp(name, BACKUP_KEYS_PREFIX, kp) && strchr(key, '/') == NULL &&
             !(r->master_key && !strcmp(key, STACK_MASTER_KEY_NAME)) &&
             !(r->audit_key && !strcmp(key, LEDGER_KEY_FILE)))
        key_path(r, key, out);
}

/* The second pass over the (verified) file: the state files and keys. */
static int
extract_files(struct restore *r)
{
    char err[512], path[PATH_MAX];
    struct backup_tar t = {.fd = open(r->file, O_RDONLY | O_CLOEXEC)};
    int rc = t.fd < 0 ? -1 : 0, more;
    unsigned char sink[LINE_MAX_LEN];
    while (rc == 0 && (more = backup_tar_next(&t, err, sizeof err)) == 1) {
        member_target(r, t.name, path);
        if (path[0])
            rc = extract_to(&t, path);
        else
            while (backup_tar_read(&t, sink, sizeof sink) > 0)
                ;
    }
    if (t.fd >= 0)
        close(t.fd);
    else
        fprintf(stderr, "kheish restore: cannot open %s: %s\n", r->file, strerror(errno));
    return rc;
}

/* Copies the key files given by option to their places (key_path). */
static int
install_keys(struct restore *r)
{
    const char *from[] = {r->master_key, r->audit_key};
    const char *name[] = {STACK_MASTER_KEY_NAME, LEDGER_KEY_FILE};
    char dir[PATH_MAX], to[PATH_MAX];
    stack_key_path(&r->st, NULL, dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kheish restore: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    r->made_keys = 1; /* it was absent or empty */
    for (size_t i = 0; i < 2; i++) {
        key_path(r, name[i], to);
        if (from[i] && stack_file_copy(from[i], to, 0600) != 0)
            return -1;
    }
    return 0;
}

/* dst (a stack.env path) = the key's place when that file exists; roots
 * are short (STACK_ROOT_MAX), so it fits. */
static void
record_key(const struct restore *r, const char *name, char dst[STACK_URL_MAX])
{
    char path[PATH_MAX];
    key_path(r, name, path);
    if (access(path, F_OK) != 0 || snprintf(dst, STACK_URL_MAX, "%s", path) >= STACK_URL_MAX)
        dst[0] = '\0';
}

static int
int_of(json_t *o, const char *key, int min, int max, int dflt)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v >= min && v <= max ? (int)v : dflt;
}

/* stack.env's settings: the backed-up stack's, on the new root. */
static int
settle(struct restore *r)
{
    json_t *src = json_object_get(r->manifest, "source");
    const char *routes = json_string_value(json_object_get(src, "routes_member"));
    int64_t port;
    struct stack *st = &r->st;
    st->port = int_of(src, "port", 1, STACK_MAX_PORT, STACK_DEFAULT_PORT);
    if (r->port && util_parse_i64(r->port, 1, STACK_MAX_PORT, &port) != 0) {
        fprintf(stderr, "kheish restore: --port must be an integer in [1, %d]\n", STACK_MAX_PORT);
        return -1;
    }
    if (r->port)
        st->port = (int)port;
    st->pg_port = st->port + STACK_PG_PORT_OFFSET;
    st->workers = int_of(src, "workers", 1, 65535, STACK_DEFAULT_WORKERS);
    st->runners = int_of(src, "runners", 1, STACK_MAX_RUNNERS, STACK_DEFAULT_RUNNERS);
    st->embedded_pg = 1;
    stack_pg_url(st, STACK_APP_ROLE, st->database_url, sizeof st->database_url);
    char path[PATH_MAX];
    st->routes_file[0] = '\0';
    if (routes && !strncmp(routes, BACKUP_STATE_PREFIX, strlen(BACKUP_STATE_PREFIX)) &&
        backup_name_ok(routes)) {
        stack_path(st, routes + strlen(BACKUP_STATE_PREFIX), path);
        if (snprintf(st->routes_file, sizeof st->routes_file, "%s", path) >= STACK_URL_MAX)
            st->routes_file[0] = '\0'; /* a short root and a member name: never */
    }
    return 0;
}

/* roles.sql without the line that creates the owner role: the new
 * cluster's initdb made it. Written next to it as roles-new.sql. */
static int
roles_filter(const struct backup_extract *x, char out[PATH_MAX])
{
    char line[LINE_MAX_LEN];
    if (snprintf(out, PATH_MAX, "%s/roles-new.sql", x->dir) >= PATH_MAX)
        return -1;
    FILE *in = fopen(x->roles, "re"), *o = fopen(out, "wxe");
    int ok = in && o;
    while (ok && fgets(line, sizeof line, in))
        if (strcmp(line, "CREATE ROLE " STACK_PG_USER ";\n"))
            ok = fputs(line, o) >= 0;
    if (in)
        fclose(in);
    if (o && fclose(o) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* The cluster: created and started, the roles, the dump, the migrations
 * this binary adds; then stopped. */
static int
load_database(struct restore *r)
{
    char psql[PATH_MAX], pg_restore[PATH_MAX], url[STACK_URL_MAX], roles[PATH_MAX], err[1024];
    struct store_migration_report rep;
    stack_owner_url(&r->st, url, sizeof url);
    if (stack_pg_ensure(&r->st) != 0 || stack_pg_tool("psql", psql) != 0 ||
        stack_pg_tool("pg_restore", pg_restore) != 0 || roles_filter(&r->x, roles) != 0)
        return -1;
    fprintf(stderr, "kheish restore: creating the roles, then restoring the dump (pg_restore)\n");
    const char *const psql_argv[] = {psql, "-X",  "-q", "-v", "ON_ERROR_STOP=1",
                                     "-f", roles, "-d", url,  NULL};
    const char *const restore_argv[] = {pg_restore, "--exit-on-error", "--dbname",
                                        url,        r->x.dump,         NULL};
    int failed = stack_cmd_run(&(struct stack_cmd){.argv = psql_argv, .clean_env = 1}) != 0 ||
                 stack_cmd_run(&(struct stack_cmd){.argv = restore_argv, .clean_env = 1}) != 0;
    unlink(roles);
    if (failed) {
        fprintf(stderr, "kheish restore: loading the database failed (see above)\n");
        return -1;
    }
    if (stack_migrate(url, &rep, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "kheish restore: migration failed: %s\n", err);
        return -1;
    }
    if (rep.applied)
        fprintf(stderr, "kheish restore: applied %d newer migrations\n", rep.applied);
    return stack_pg_stop(&r->st) < 0 ? -1 : 0;
}

static void
print_next(const struct cli *c, const struct restore *r)
{
    const struct stack *st = &r->st;
    int key = st->master_key_file[0] != '\0';
    if (c->json) {
        output_json_line(json_pack("{s:s, s:i, s:b, s:s?}", "state_root", st->root, "port",
                                   st->port, "master_key_installed", key, "routes_file",
                                   st->routes_file[0] ? st->routes_file : NULL));
        return;
    }
    printf("restored %s into %s (stopped)\n\nNext:\n", r->file, st->root);
    if (key)
        printf("  kheish up --state-root %s --port %d\n", st->root, st->port);
    else
        printf("  KHEISH_AUTH_STORE_MASTER_KEY_FILE=<the original master key> kheish up "
               "--state-root %s --port %d\n"
               "  (without it, up makes a new key, which opens none of the restored slots)\n",
               st->root, st->port);
    if (!json_is_true(json_object_get(json_object_get(r->manifest, "includes"), "tokens")))
        printf("  the backup has no token files: up makes new ones in %s/tokens/\n", st->root);
    if (st->routes_file[0] == '\0' &&
        json_is_string(json_object_get(json_object_get(r->manifest, "source"), "routes_file")))
        printf("  the routes file was outside the state root, so not in the backup: give it "
               "with --routes-file\n");
}

/* Everything after the checks; returns 0 or -1 (undo removes the rest). */
static int
restore_into(struct restore *r)
{
    char keys[PATH_MAX];
    if (stack_root_resolve(r->root_arg, 1, &r->st) != 0)
        return -1;
    r->made_root = 1; /* absent or empty before */
    stack_key_path(&r->st, NULL, keys);
    if (absent_or_empty(keys) != 0) {
        fprintf(stderr, "kheish restore: %s holds files already; move them away first\n", keys);
        return -1;
    }
    if (stack_lock(&r->st) != 0 || settle(r) != 0 || stack_dirs_create(&r->st) != 0 ||
        install_keys(r) != 0 || extract_files(r) != 0)
        return -1;
    record_key(r, STACK_MASTER_KEY_NAME, r->st.master_key_file);
    record_key(r, LEDGER_KEY_FILE, r->st.audit_key_file);
    return stack_env_save(&r->st) == 0 && load_database(r) == 0 ? 0 : -1;
}

int
cmd_restore(const struct cli *c, int argc, char **argv)
{
    struct restore r = {0};
    struct sealed_key key;
    char err[256];
    const struct args_opt opts[] = {
        {.name = "state-root", .str = &r.root_arg},
        {.name = "port", .str = &r.port},
        {.name = "master-key-file", .str = &r.master_key},
        {.name = "audit-key-file", .str = &r.audit_key},
        {0},
    };
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(restore_usage, stdout);
            return EXIT_OK;
        }
    if (args_parse(argc, argv, opts, &r.file, 1, 1) != 0)
        return ARGS_USAGE;
    if (r.root_arg == NULL || *r.root_arg == '\0') {
        fprintf(stderr, "kheish restore: --state-root NEW is required (a new, empty state "
                        "root)\n");
        return ARGS_USAGE;
    }
    const char *url = getenv("KHEISH_DATABASE_URL");
    if (url && *url) {
        fprintf(stderr, "kheish restore: KHEISH_DATABASE_URL is set; restore makes its own "
                        "embedded cluster: unset it\n");
        return EXIT_BAD_REQUEST;
    }
    if (r.master_key && sealed_key_from_file(r.master_key, &key, err, sizeof err) != 0) {
        fprintf(stderr, "kheish restore: --master-key-file: %s\n", err);
        return EXIT_BAD_REQUEST;
    }
    if (r.master_key)
        sealed_key_wipe(&key);
    if (absent_or_empty(r.root_arg) != 0) {
        fprintf(stderr,
                "kheish restore: %s exists and is not empty; restore only into a new state "
                "root\n",
                r.root_arg);
        return EXIT_CONFLICT;
    }
    r.existed = access(r.root_arg, F_OK) == 0;
    fprintf(stderr, "kheish restore: verifying %s\n", r.file);
    int rc = backup_check(r.file, &r.x, &r.manifest);
    if (rc == EXIT_OK && restore_into(&r) != 0) {
        undo(&r);
        rc = EXIT_GENERIC;
    }
    if (rc == EXIT_OK)
        print_next(c, &r);
    backup_extract_free(&r.x);
    json_decref(r.manifest);
    return rc;
}
