/*
 * kheish backup / kheish backup verify: a consistent snapshot of a running
 * stack in one file (see backup.h for what is in it), and the check that a
 * file is one, member by member.
 *
 * The database is dumped with pg_dump, which reads one snapshot while the
 * stack runs. Custom format, because pg_restore can then list it (verify)
 * and restore it selectively; uncompressed, so that an operator can grep
 * the backup for a value that must not be there (compress the whole file
 * afterwards if its size matters). The files of the state root are copied
 * after the dump; the only one that changes meanwhile, the JSONL audit, is
 * append-only, so the copy is a prefix of it.
 */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "output.h"
#include "migrations.h"
#include "store.h"

#define WALK_DEPTH_MAX 32
#define CHUNK_BYTES    65536

static const char backup_usage[] =
    "usage: kheish backup [--state-root DIR] --out FILE [--include-tokens] [--include-keys] "
    "[--force]\n"
    "Writes a consistent snapshot of the running stack of the state root (--state-root,\n"
    "KHEISH_STATE_ROOT, default " STACK_DEFAULT_ROOT ") to FILE (0600, a tar file): a pg_dump of\n"
    "its database, the database roles, the state root's files (not logs, pid files, sockets,\n"
    "nginx's files or the cluster's own directory) and manifest.json with the SHA-256 of each.\n"
    "The token files only with --include-tokens; the master key (in <state root>.keys/) and the\n"
    "audit signing key (audit-signing.key) only with --include-keys: without them the file\n"
    "opens no secret and signs nothing.\n"
    "Refuses an existing FILE unless --force. `kheish backup verify FILE` checks one.\n";

static const char verify_usage[] =
    "usage: kheish backup verify FILE\n"
    "Checks a file `kheish backup` wrote: every member against the SHA-256 and size of its\n"
    "manifest, no member missing or unlisted, the database dump readable by pg_restore.\n"
    "Exits 1 naming the first bad member.\n";

/* 1 after printing usage when argv asks for help. */
static int
help_asked(int argc, char **argv, const char *usage)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 1;
        }
    return 0;
}

/* What one backup is writing. */
struct writer {
    int out;
    const struct stack *st;
    int include_tokens;
    json_t *members; /* [{name, size, sha256}] */
    json_t *skipped; /* [{path, reason}] */
};

/* Appends the file at path as member name, and lists it. Returns 0 or -1
 * after printing why. */
static int
add_file(struct writer *w, const char *name, const char *path)
{
    char sha[BACKUP_SHA256_HEX];
    struct stat sb;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int ok = fd >= 0 && fstat(fd, &sb) == 0 &&
             backup_tar_put_fd(w->out, name, fd, (uint64_t)sb.st_size, sb.st_mode, sb.st_mtime,
                               sha) == 0;
    if (ok)
        json_array_append_new(w->members, json_pack("{s:s, s:I, s:s}", "name", name, "size",
                                                    (json_int_t)sb.st_size, "sha256", sha));
    else
        fprintf(stderr, "kheish backup: cannot add %s: %s\n", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

static void
skip(struct writer *w, const char *rel, const char *reason)
{
    fprintf(stderr, "kheish backup: warning: %s/%s is left out: %s\n", w->st->root, rel, reason);
    json_array_append_new(w->skipped, json_pack("{s:s, s:s}", "path", rel, "reason", reason));
}

/* Paths of the state root a backup never holds: what up rebuilds, what
 * runs (pg_dump has the database), a transient table, an old key. */
static int
excluded(const struct writer *w, const char *rel)
{
    static const char *const never[] = {
        "pg",
        "logs",
        "run",
        "nginx",
        "daemon.lock",
        "stack.env",
        "stack.env.tmp",
        "workspace",
        STACK_OLD_MASTER_KEY,
        LEDGER_KEY_FILE, /* under keys/, with --include-keys */
        "control-plane-auth/rate-limit",
    };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (!strcmp(rel, never[i]))
            return 1;
    return !w->include_tokens && !strcmp(rel, "tokens");
}

/* Adds every regular file under <root>/<rel> (rel "" for the root), in
 * name order; symbolic links and special files are left out, and said so. */
static int
walk(struct writer *w, const char *rel, int depth)
{
    char dir[PATH_MAX], child[PATH_MAX], name[PATH_MAX];
    struct dirent **list;
    struct stat sb;
    int rc = 0;
    stack_path(w->st, rel, dir);
    int n = scandir(dir, &list, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "kheish backup: cannot read %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *e = list[i]->d_name;
        if (rc != 0 || !strcmp(e, ".") || !strcmp(e, "..") ||
            snprintf(child, sizeof child, "%s%s%s", rel, rel[0] ? "/" : "", e) >= PATH_MAX ||
            excluded(w, child))
            continue;
        stack_path(w->st, child, name);
        if (lstat(name, &sb) != 0)
            continue; /* gone meanwhile */
        if (S_ISDIR(sb.st_mode) && depth < WALK_DEPTH_MAX)
            rc = walk(w, child, depth + 1);
        else if (!S_ISREG(sb.st_mode))
            skip(w, child, S_ISLNK(sb.st_mode) ? "a symbolic link" : "not a regular file");
        else if (snprintf(dir, sizeof dir, BACKUP_STATE_PREFIX "%s", child) > BACKUP_NAME_MAX ||
                 !backup_name_ok(dir))
            skip(w, child, "its name is longer than the archive holds or not portable");
        else
            rc = add_file(w, dir, name);
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

/* The key files of the stack (stack.env records them) as keys/<name>. */
static int
add_keys(struct writer *w)
{
    const char *files[] = {w->st->master_key_file, w->st->audit_key_file};
    const char *names[] = {BACKUP_KEYS_PREFIX STACK_MASTER_KEY_NAME,
                           BACKUP_KEYS_PREFIX LEDGER_KEY_FILE};
    for (size_t i = 0; i < 2; i++) {
        if (files[i][0] == '\0' || access(files[i], F_OK) != 0) {
            fprintf(stderr,
                    "kheish backup: warning: no %s file is recorded for this stack (given by "
                    "value?): it is not in the backup\n",
                    names[i] + strlen(BACKUP_KEYS_PREFIX));
            continue;
        }
        if (add_file(w, names[i], files[i]) != 0)
            return -1;
    }
    return 0;
}

/* Runs a PostgreSQL tool with a clean environment, its messages on our
 * stderr. Returns 0 or -1 after printing why. */
static int
pg_tool_run(const char *tool, const char *const *args)
{
    char bin[PATH_MAX];
    const char *argv[16] = {bin};
    size_t n = 1;
    if (stack_pg_tool(tool, bin) != 0)
        return -1;
    while (*args && n < sizeof argv / sizeof argv[0] - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    int rc = stack_cmd_run(&(struct stack_cmd){.argv = argv, .clean_env = 1});
    if (rc == 0)
        return 0;
    fprintf(stderr, "kheish: %s failed (exit %d)\n", tool, rc);
    return -1;
}

/* The schema level of the database and of this binary, for the manifest. */
static json_t *
schema_level(const char *url)
{
    char name[256] = "";
    int version = 0;
    struct store *s = store_open(url, NULL);
    enum store_rc rc = s ? store_schema_level(s, &version, name, sizeof name) : STORE_ERROR;
    store_close(s);
    if (rc != STORE_OK)
        return NULL;
    return json_pack("{s:i, s:s, s:s}", "database_version", version, "database_migration", name,
                     "binary_migration",
                     store_migrations_count ? store_migrations[store_migrations_count - 1].name
                                            : "");
}

static void
utc_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The routes file's member when it lies inside the state root (the walk
 * took it), else NULL: it is then the operator's to keep. */
static const char *
routes_member(const struct stack *st, char out[PATH_MAX])
{
    size_t n = strlen(st->root);
    if (!st->routes_file[0] || strncmp(st->routes_file, st->root, n) || st->routes_file[n] != '/')
        return NULL;
    snprintf(out, PATH_MAX, BACKUP_STATE_PREFIX "%s", st->routes_file + n + 1);
    return out;
}

static json_t *
manifest_of(const struct writer *w, json_t *schema, int include_keys)
{
    char created[32], routes[PATH_MAX];
    utc_now(created);
    return json_pack("{s:s, s:i, s:s, s:o, s:{s:s, s:i, s:i, s:i, s:s, s:s?, s:s?}, "
                     "s:{s:b, s:b, s:b}, s:O, s:O}",
                     "format", BACKUP_FORMAT, "format_version", BACKUP_FORMAT_VERSION, "created_at",
                     created, "schema", schema, "source", "state_root", w->st->root, "port",
                     w->st->port, "workers", w->st->workers, "runners", w->st->runners, "database",
                     w->st->embedded_pg ? "embedded" : "external", "routes_file",
                     w->st->routes_file[0] ? w->st->routes_file : NULL, "routes_member",
                     routes_member(w->st, routes), "includes", "database", 1, "tokens",
                     w->include_tokens, "keys", include_keys, "members", w->members, "skipped",
                     w->skipped);
}

/* 0 when path's directory exists and lies outside the state root; its
 * absolute form into dir. */
static int
out_dir(const struct stack *st, const char *path, char dir[PATH_MAX])
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    if (realpath(dirname(copy), dir) == NULL) {
        fprintf(stderr, "kheish backup: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(st->root);
    if (!strncmp(dir, st->root, n) && (dir[n] == '/' || dir[n] == '\0')) {
        fprintf(stderr,
                "kheish backup: %s lies inside the state root; write the backup "
                "elsewhere\n",
                path);
        return -1;
    }
    return 0;
}

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The dump, the roles, the files, the keys and the manifest into w->out.
 * tmp names the temporary files of the dumps (their suffix is changed). */
static int
write_members(struct writer *w, int include_keys, char *tmp, size_t tmplen)
{
    char url[STACK_URL_MAX], dump[PATH_MAX], roles[PATH_MAX];
    stack_owner_url(w->st, url, sizeof url);
    snprintf(dump, sizeof dump, "%.*s.dump", (int)tmplen, tmp);
    snprintf(roles, sizeof roles, "%.*s.roles", (int)tmplen, tmp);
    fprintf(stderr, "kheish backup: dumping the database (pg_dump)\n");
    int rc = pg_tool_run("pg_dump", (const char *const[]){"--format=custom", "--compress=0",
                                                          "--file", dump, "--dbname", url, NULL});
    if (rc == 0)
        rc = pg_tool_run("pg_dumpall",
                         (const char *const[]){"--roles-only", "--no-role-passwords", "--file",
                                               roles, "--dbname", url, NULL});
    if (rc == 0)
        rc = add_file(w, BACKUP_DUMP, dump);
    if (rc == 0)
        rc = add_file(w, BACKUP_ROLES, roles);
    unlink(dump);
    unlink(roles);
    json_t *schema = rc == 0 ? schema_level(url) : NULL;
    if (rc == 0 && schema == NULL) {
        fprintf(stderr, "kheish backup: cannot read the schema level of the database\n");
        rc = -1;
    }
    if (rc == 0) {
        fprintf(stderr, "kheish backup: copying the state root's files\n");
        rc = walk(w, "", 0);
    }
    if (rc == 0 && include_keys)
        rc = add_keys(w);
    json_t *m = rc == 0 ? manifest_of(w, schema, include_keys) : (json_decref(schema), NULL);
    char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
    if (m &&
        (text == NULL ||
         backup_tar_put_mem(w->out, BACKUP_MANIFEST, text, strlen(text), time(NULL), NULL) != 0 ||
         backup_tar_finish(w->out) != 0)) {
        fprintf(stderr, "kheish backup: cannot write the manifest: %s\n", strerror(errno));
        rc = -1;
    }
    free(text);
    json_decref(m);
    return rc;
}

/* 0 when st names a running stack; else an exit code after saying why. */
static int
stack_running(const char *root_arg, struct stack *st)
{
    int r = stack_root_resolve(root_arg, 0, st);
    if (r < 0 || (r == 0 && stack_env_load(st) != 0))
        return EXIT_GENERIC;
    if (r == 1 || !st->loaded) {
        fprintf(stderr, "kheish backup: %s holds no stack\n", st->root);
        return EXIT_UNREACHABLE;
    }
    if (!stack_fcgi_running(st) || (st->embedded_pg && !stack_pg_running(st))) {
        fprintf(stderr,
                "kheish backup: the stack in %s is not running; a backup is taken from a "
                "running stack: `kheish up --state-root %s` first\n",
                st->root, st->root);
        return EXIT_UNREACHABLE;
    }
    return 0;
}

static void
print_written(const struct cli *c, const char *out, const struct writer *w, int keys)
{
    struct stat sb;
    long long bytes = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
    size_t n = json_array_size(w->members) + 1;
    if (c->json) {
        output_json_line(json_pack("{s:s, s:I, s:I, s:{s:b, s:b}}", "out", out, "members",
                                   (json_int_t)n, "bytes", (json_int_t)bytes, "includes", "tokens",
                                   w->include_tokens, "keys", keys));
        return;
    }
    printf("backup written to %s: %zu members, %lld bytes; tokens %s, keys %s\n", out, n, bytes,
           w->include_tokens ? "included" : "not included", keys ? "INCLUDED" : "not included");
}

int
cmd_backup(const struct cli *c, int argc, char **argv)
{
    const char *root = NULL, *out = NULL;
    int tokens = 0, keys = 0, force = 0;
    struct stack st = {0};
    char dir[PATH_MAX], tmp[PATH_MAX];
    const struct args_opt opts[] = {
        {.name = "state-root", .str = &root},        {.name = "out", .str = &out},
        {.name = "include-tokens", .flag = &tokens}, {.name = "include-keys", .flag = &keys},
        {.name = "force", .flag = &force},           {0},
    };
    if (help_asked(argc, argv, backup_usage))
        return EXIT_OK;
    umask(077); /* the dumps pg_dump writes before they join the archive */
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    if (out == NULL || *out == '\0') {
        fprintf(stderr, "kheish backup: --out FILE is required\n");
        return ARGS_USAGE;
    }
    int rc = stack_running(root, &st);
    if (rc != 0)
        return rc;
    if (out_dir(&st, out, dir) != 0)
        return EXIT_BAD_REQUEST;
    if (!force && access(out, F_OK) == 0) {
        fprintf(stderr,
                "kheish backup: %s exists; choose another --out, or --force to replace it\n", out);
        return EXIT_CONFLICT;
    }
    if (keys)
        fprintf(stderr,
                "kheish backup: WARNING: --include-keys puts the master key and the audit signing "
                "key in %s: whoever reads it can open every secret slot and sign audit records. "
                "Keep it apart from backups without keys, encrypted, and for as short as you "
                "can.\n",
                out);
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out) >= (int)sizeof tmp)
        return EXIT_BAD_REQUEST;
    struct writer w = {mkstemp(tmp), &st, tokens, json_array(), json_array()};
    if (w.out < 0 || fchmod(w.out, 0600) != 0) {
        fprintf(stderr, "kheish backup: cannot create %s: %s\n", tmp, strerror(errno));
        rc = EXIT_GENERIC;
    } else {
        rc = write_members(&w, keys, tmp, strlen(tmp)) == 0 ? EXIT_OK : EXIT_GENERIC;
    }
    if (rc == EXIT_OK && (fsync(w.out) != 0 || rename(tmp, out) != 0 || fsync_dir(dir) != 0)) {
        fprintf(stderr, "kheish backup: cannot write %s: %s\n", out, strerror(errno));
        rc = EXIT_GENERIC;
    }
    if (w.out >= 0)
        close(w.out);
    if (rc != EXIT_OK)
        unlink(tmp);
    else
        print_written(c, out, &w, keys);
    json_decref(w.members);
    json_decref(w.skipped);
    return rc;
}

/* ---- verify ------------------------------------------------------------ */

/* What the archive holds, member by member, as read. */
struct seen {
    json_t *members; /* [{name, size, sha256}] in archive order */
    char *manifest;  /* its text */
};

/* Reads the current member: hashes it, keeps the manifest's text, writes
 * it to keep when keep is not NULL. Returns 0 or -1 with err set. */
static int
read_member(struct backup_tar *t, struct seen *s, const char *keep, char *err, size_t errsz)
{
    unsigned char buf[CHUNK_BYTES];
    char sha[BACKUP_SHA256_HEX];
    crypto_hash_sha256_state h;
    int is_manifest = !strcmp(t->name, BACKUP_MANIFEST), ok = 1;
    if (is_manifest && t->size > BACKUP_MANIFEST_MAX) {
        snprintf(err, errsz, "its manifest is larger than %d bytes", BACKUP_MANIFEST_MAX);
        return -1;
    }
    char *text = is_manifest ? calloc(1, (size_t)t->size + 1) : NULL;
    int fd = keep ? open(keep, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    crypto_hash_sha256_init(&h);
    ssize_t n;
    size_t at = 0;
    while ((n = backup_tar_read(t, buf, sizeof buf)) > 0) {
        crypto_hash_sha256_update(&h, buf, (size_t)n);
        if (text)
            memcpy(text + at, buf, (size_t)n);
        at += (size_t)n;
        if (fd >= 0 && write(fd, buf, (size_t)n) != n)
            ok = 0;
    }
    if ((keep && fd < 0) || (is_manifest && !text) || (fd >= 0 && close(fd) != 0) || !ok) {
        snprintf(err, errsz, "cannot keep member %s: %s", t->name, strerror(errno));
        n = -1;
    } else if (n < 0) {
        snprintf(err, errsz, "the file is truncated inside member %s", t->name);
    }
    if (n < 0) {
        free(text);
        return -1;
    }
    if (is_manifest) {
        s->manifest = text;
        return 0;
    }
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, d);
    sodium_bin2hex(sha, sizeof sha, d, sizeof d);
    json_array_append_new(s->members, json_pack("{s:s, s:I, s:s}", "name", t->name, "size",
                                                (json_int_t)t->size, "sha256", sha));
    return 0;
}

/* The member of list named name, or NULL. */
static json_t *
member_named(json_t *list, const char *name)
{
    size_t i;
    json_t *m;
    json_array_foreach(
        list, i, m) if (!strcmp(json_string_value(json_object_get(m, "name")), name)) return m;
    return NULL;
}

/* Reads the whole archive into s, keeping the database members in x.
 * Returns 0 or -1 with err set. */
static int
read_archive(int fd, struct seen *s, const struct backup_extract *x, char *err, size_t errsz)
{
    struct backup_tar t = {.fd = fd};
    int r;
    while ((r = backup_tar_next(&t, err, errsz)) == 1) {
        if (s->manifest) {
            snprintf(err, errsz, "member %s follows the manifest, which must come last", t.name);
            return -1;
        }
        if (member_named(s->members, t.name)) {
            snprintf(err, errsz, "member %s appears twice", t.name);
            return -1;
        }
        if (json_array_size(s->members) >= BACKUP_MEMBERS_MAX) {
            snprintf(err, errsz, "more than %d members", BACKUP_MEMBERS_MAX);
            return -1;
        }
        const char *keep = !strcmp(t.name, BACKUP_DUMP)    ? x->dump
                           : !strcmp(t.name, BACKUP_ROLES) ? x->roles
                                                           : NULL;
        if (read_member(&t, s, keep, err, errsz) != 0)
            return -1;
    }
    if (r == 0 && s->manifest == NULL)
        snprintf(err, errsz, "it has no %s: not a kheish backup", BACKUP_MANIFEST);
    return r == 0 && s->manifest ? 0 : -1;
}

/* Holds the members read against the manifest, in archive order, then
 * the manifest's against the members. Returns 0 or -1 with err set. */
static int
check_members(json_t *manifest, const struct seen *s, char *err, size_t errsz)
{
    json_t *listed = json_object_get(manifest, "members"), *m;
    size_t i;
    if (!json_is_array(listed)) {
        snprintf(err, errsz, "its manifest lists no members");
        return -1;
    }
    json_array_foreach(s->members, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        json_t *want = member_named(listed, name);
        if (want == NULL) {
            snprintf(err, errsz, "member %s is not listed in the manifest", name);
            return -1;
        }
        if (!json_equal(json_object_get(want, "size"), json_object_get(m, "size")) ||
            !json_equal(json_object_get(want, "sha256"), json_object_get(m, "sha256"))) {
            snprintf(err, errsz,
                     "member %s is damaged: its size or SHA-256 differs from the "
                     "manifest's",
                     name);
            return -1;
        }
    }
    json_array_foreach(listed, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (name == NULL || member_named(s->members, name) == NULL) {
            snprintf(err, errsz, "member %s of the manifest is missing", name ? name : "(unnamed)");
            return -1;
        }
    }
    if (!member_named(s->members, BACKUP_DUMP) || !member_named(s->members, BACKUP_ROLES)) {
        snprintf(err, errsz, "it holds no database (%s, %s)", BACKUP_DUMP, BACKUP_ROLES);
        return -1;
    }
    return 0;
}

void
backup_extract_free(struct backup_extract *x)
{
    if (x->dir[0] == '\0')
        return;
    unlink(x->dump);
    unlink(x->roles);
    rmdir(x->dir);
    x->dir[0] = '\0';
}

static int
extract_dir(struct backup_extract *x)
{
    const char *tmpdir = getenv("TMPDIR");
    snprintf(x->dir, sizeof x->dir, "%s/kheish-backup-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (mkdtemp(x->dir) == NULL) {
        fprintf(stderr, "kheish: cannot create a temporary directory %s: %s\n", x->dir,
                strerror(errno));
        x->dir[0] = '\0';
        return -1;
    }
    /* mkdtemp's name is short: these fit */
    return snprintf(x->dump, sizeof x->dump, "%s/kheish.dump", x->dir) < (int)sizeof x->dump &&
                   snprintf(x->roles, sizeof x->roles, "%s/roles.sql", x->dir) <
                       (int)sizeof x->roles
               ? 0
               : -1;
}

int
backup_check(const char *path, struct backup_extract *keep, json_t **manifest)
{
    struct backup_extract local = {0}, *x = keep ? keep : &local;
    struct seen s = {json_array(), NULL};
    json_t *m = NULL;
    char err[512] = "";
    int rc = -1, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        snprintf(err, sizeof err, "%s", strerror(errno));
    else if (extract_dir(x) == 0 && read_archive(fd, &s, x, err, sizeof err) == 0 &&
             (m = json_loads(s.manifest, 0, NULL)) == NULL)
        snprintf(err, sizeof err, "its manifest is not JSON");
    else if (m &&
             (!json_is_string(json_object_get(m, "format")) ||
              strcmp(json_string_value(json_object_get(m, "format")), BACKUP_FORMAT) ||
              json_integer_value(json_object_get(m, "format_version")) != BACKUP_FORMAT_VERSION))
        snprintf(err, sizeof err, "its manifest is not a %s version %d manifest", BACKUP_FORMAT,
                 BACKUP_FORMAT_VERSION);
    else if (m && check_members(m, &s, err, sizeof err) == 0)
        rc = pg_tool_run("pg_restore",
                         (const char *const[]){"--list", "--file", "/dev/null", x->dump, NULL});
    if (rc != 0 && err[0] == '\0' && x->dir[0])
        snprintf(err, sizeof err, "member %s is not a dump pg_restore can read", BACKUP_DUMP);
    if (fd >= 0)
        close(fd);
    if (rc != 0 && err[0])
        fprintf(stderr, "kheish: backup %s is not sound: %s\n", path, err);
    if (rc != 0 || keep == NULL)
        backup_extract_free(x);
    if (rc == 0 && manifest)
        *manifest = json_incref(m);
    json_decref(m);
    json_decref(s.members);
    free(s.manifest);
    return rc == 0 ? EXIT_OK : EXIT_GENERIC;
}

int
cmd_backup_verify(const struct cli *c, int argc, char **argv)
{
    const char *path;
    json_t *m = NULL;
    if (help_asked(argc, argv, verify_usage))
        return EXIT_OK;
    if (args_parse(argc, argv, NULL, &path, 1, 1) != 0)
        return ARGS_USAGE;
    int rc = backup_check(path, NULL, &m);
    if (rc != EXIT_OK)
        return rc;
    json_t *inc = json_object_get(m, "includes");
    if (c->json) {
        output_json_line(json_pack("{s:b, s:s, s:I, s:O?, s:O?, s:O?}", "ok", 1, "file", path,
                                   "members",
                                   (json_int_t)json_array_size(json_object_get(m, "members")) + 1,
                                   "created_at", json_object_get(m, "created_at"), "schema",
                                   json_object_get(m, "schema"), "includes", inc));
    } else {
        printf("backup %s is sound: %zu members and the manifest, every SHA-256 matches, the "
               "dump reads; created %s; tokens %s, keys %s\n",
               path, json_array_size(json_object_get(m, "members")),
               json_string_value(json_object_get(m, "created_at")),
               json_is_true(json_object_get(inc, "tokens")) ? "included" : "not included",
               json_is_true(json_object_get(inc, "keys")) ? "INCLUDED" : "not included");
    }
    json_decref(m);
    return EXIT_OK;
}
