/*
 * The state root on disk: its path, its directories and modes, the token
 * files, stack.env, and the flags of the offline verbs.
 */
#include "stack.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util.h"

#define TOKEN_RAW_BYTES  32
#define ENV_LINE_MAX     (STACK_URL_MAX + 64)
#define ENV_INTS         6                       /* integer settings in stack.env */
#define ENV_STRS         5                       /* and string ones */
#define TAIL_WINDOW_SIZE 8192                    /* stack_tail reads at most this much */
#define SH_QUOTED_MAX    (4 * STACK_URL_MAX + 3) /* every byte a quote, plus the outer pair */
#define COPY_CHUNK_BYTES 65536

/* A POSIX access ACL as Linux stores it in an extended attribute
 * (linux/posix_acl_xattr.h): a version, then entries {tag, perm, id}
 * sorted by tag and id, little-endian. */
#define ACL_XATTR       "system.posix_acl_access"
#define ACL_VERSION     2
#define ACL_MAX_ENTRIES 64
#define ACL_ENTRY_BYTES 8
#define ACL_NO_ID       UINT32_MAX
#define ACL_SEARCH      1 /* the x bit */
enum {
    ACL_USER_OBJ = 1,
    ACL_USER = 2,
    ACL_GROUP_OBJ = 4,
    ACL_GROUP = 8,
    ACL_MASK = 16,
    ACL_OTHER = 32
};

/* Parses `--flag value` and `--flag=value` for the flags in allowed.
 * Returns 0, 1 after printing usage for --help, or -1 after printing why
 * the arguments were refused. */
int
stack_opts_parse(int argc, char **argv, const char *const *allowed, const char *usage,
                 struct stack_opts *o)
{
    struct {
        const char *flag;
        const char **dst;
    } map[] = {
        {"--state-root", &o->state_root},
        {"--database-url", &o->database_url},
        {"--port", &o->port},
        {"--workers", &o->workers},
        {"--runners", &o->runners},
        {"--routes-file", &o->routes_file},
    };
    for (int a = 0; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            fputs(usage, stdout);
            return 1;
        }
        const char **dst = NULL;
        size_t flen = strcspn(argv[a], "=");
        for (const char *const *f = allowed; *f && !dst; f++)
            if (strlen(*f) == flen && !strncmp(argv[a], *f, flen))
                for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
                    if (!strcmp(map[i].flag, *f))
                        dst = map[i].dst;
        if (dst && argv[a][flen] == '=')
            *dst = argv[a] + flen + 1;
        else if (dst && a + 1 < argc)
            *dst = argv[++a];
        else {
            fprintf(stderr, "kheish: unknown or incomplete option %s\n%s", argv[a], usage);
            return -1;
        }
    }
    return 0;
}

/* mkdir -p with mode 0755 for each missing component. */
static int
mkdir_parents(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return errno = ENAMETOOLONG, -1;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        if (c == '\0')
            return 0;
        *p = c;
    }
}

/* The state root's path ends up in nginx.conf, libpq conninfo strings and
 * stack.env, none of which we want to quote: accept a conservative charset. */
static int
root_path_ok(const char *p)
{
    return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/+@,~-") ==
           strlen(p);
}

/* Resolves the state root (arg, else KHEISH_STATE_ROOT, else .kheish) to an
 * absolute path in st->root, creating it when create is set. Returns 0, 1
 * when it does not exist (create unset), or -1 after printing why. */
int
stack_root_resolve(const char *arg, int create, struct stack *st)
{
    const char *env = getenv("KHEISH_STATE_ROOT");
    const char *root = arg ? arg : env && *env ? env : STACK_DEFAULT_ROOT;
    if (create && mkdir_parents(root) != 0) {
        fprintf(stderr, "kheish: cannot create state root %s: %s\n", root, strerror(errno));
        return -1;
    }
    char abs[PATH_MAX];
    if (realpath(root, abs) == NULL) {
        if (errno == ENOENT && !create) {
            snprintf(st->root, sizeof st->root, "%.*s", STACK_ROOT_MAX, root);
            return 1;
        }
        fprintf(stderr, "kheish: cannot resolve state root %s: %s\n", root, strerror(errno));
        return -1;
    }
    if (strlen(abs) > STACK_ROOT_MAX) {
        fprintf(stderr,
                "kheish: state root %s is longer than %d bytes, too long for the unix sockets "
                "inside it; choose a shorter --state-root\n",
                abs, STACK_ROOT_MAX);
        return -1;
    }
    if (!root_path_ok(abs)) {
        fprintf(stderr,
                "kheish: state root %s may contain only letters, digits and ._/+@,~- "
                "(it is written into nginx and PostgreSQL settings); choose another "
                "--state-root\n",
                abs);
        return -1;
    }
    memcpy(st->root, abs, strlen(abs) + 1);
    return 0;
}

/* out = <root>/<rel>. Roots are at most STACK_ROOT_MAX bytes and rel is one
 * of our short constants, so this never truncates. */
void
stack_path(const struct stack *st, const char *rel, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s", st->root, rel);
}

static const char *
host_of(const struct stack *st)
{
    return st->host[0] ? st->host : STACK_HOST;
}

/* host:port of the public listener: nginx's `listen`, kheish-fcgi's --bind. */
void
stack_bind(const struct stack *st, char *out, size_t size)
{
    snprintf(out, size, "%s:%d", host_of(st), st->port);
}

void
stack_url(const struct stack *st, char *out, size_t size)
{
    const char *h = host_of(st);
    if (!strcmp(h, "0.0.0.0") || !strcmp(h, "*"))
        h = STACK_HOST;
    else if (!strcmp(h, "[::]"))
        h = "[::1]";
    snprintf(out, size, "http://%s:%d", h, st->port);
}

void
stack_relay_socket(const struct stack *st, int i, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/run/relay-%d.sock", st->root, i + 1);
}

struct env_int {
    const char *key;
    int *dst;
    int min, max;
};

/* The integer settings of stack.env, shared by load and save. */
static void
env_ints(struct stack *st, struct env_int out[ENV_INTS])
{
    struct env_int v[ENV_INTS] = {
        {"KHEISH_PORT", &st->port, 1, STACK_MAX_PORT},
        {"KHEISH_PG_PORT", &st->pg_port, 1, 65535},
        {"KHEISH_WORKERS", &st->workers, 1, 65535},
        {"KHEISH_RUNNERS", &st->runners, 1, STACK_MAX_RUNNERS},
        {"KHEISH_EMBEDDED_PG", &st->embedded_pg, 0, 1},
        {"KHEISH_DRAIN_MS", &st->drain_ms, 0, 600000},
    };
    memcpy(out, v, sizeof v);
}

/* value as one shell word: 'a'\''b' for a'b. out holds SH_QUOTED_MAX. */
static void
sh_quote(const char *value, char out[SH_QUOTED_MAX])
{
    *out++ = '\'';
    for (; *value; value++) {
        if (*value == '\'') {
            memcpy(out, "'\\''", 4);
            out += 4;
        } else {
            *out++ = *value;
        }
    }
    *out++ = '\'';
    *out = '\0';
}

/* Inverse of sh_quote, in place. Returns 0, or -1 for anything sh_quote
 * would not have written. */
static int
sh_unquote(char *s)
{
    char *out = s;
    while (*s) {
        if (s[0] == '\\' && s[1] == '\'') {
            *out++ = '\'';
            s += 2;
            continue;
        }
        char *end = s[0] == '\'' ? strchr(s + 1, '\'') : NULL;
        if (end == NULL)
            return -1;
        memmove(out, s + 1, (size_t)(end - s - 1));
        out += end - s - 1;
        s = end + 1;
    }
    *out = '\0';
    return 0;
}

struct env_str {
    const char *key;
    char *dst; /* STACK_URL_MAX bytes */
};

/* The string settings of stack.env (single-quoted), shared by load and save. */
static void
env_strs(struct stack *st, struct env_str out[ENV_STRS])
{
    out[0] = (struct env_str){"KHEISH_DATABASE_URL", st->database_url};
    out[1] = (struct env_str){"KHEISH_ROUTES_FILE", st->routes_file};
    out[2] = (struct env_str){"KHEISH_ROUTES_SHA256", st->routes_sha256};
    /* Not the daemons' variables: tests/run.sh exports stack.env whole. */
    out[3] = (struct env_str){"KHEISH_STACK_MASTER_KEY_FILE", st->master_key_file};
    out[4] = (struct env_str){"KHEISH_STACK_AUDIT_SIGNING_KEY_FILE", st->audit_key_file};
}

static int
env_line(struct stack *st, char *line)
{
    struct env_int ints[ENV_INTS];
    struct env_str strs[ENV_STRS];
    char *eq = strchr(line, '=');
    int64_t v;
    if (line[0] == '#' || line[0] == '\0' || eq == NULL)
        return 0;
    *eq = '\0';
    env_strs(st, strs);
    for (size_t i = 0; i < ENV_STRS; i++) {
        if (strcmp(line, strs[i].key))
            continue;
        if (sh_unquote(eq + 1) != 0)
            return -1;
        snprintf(strs[i].dst, STACK_URL_MAX, "%s", eq + 1);
        return 0;
    }
    env_ints(st, ints);
    for (size_t i = 0; i < ENV_INTS; i++) {
        if (strcmp(line, ints[i].key))
            continue;
        if (util_parse_i64(eq + 1, ints[i].min, ints[i].max, &v) != 0)
            return -1;
        *ints[i].dst = (int)v;
    }
    return 0; /* keys of later versions are ignored */
}

/* Reads <root>/stack.env: KEY=VALUE lines that sh can source (tests do),
 * numbers bare and the URL single-quoted. A missing file is not an error:
 * st->loaded stays 0. Returns 0 or -1 after printing why. */
int
stack_env_load(struct stack *st)
{
    char path[PATH_MAX], line[ENV_LINE_MAX];
    int rc = 0, lineno = 0;
    stack_path(st, "stack.env", path);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "kheish: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(f))
            rc = -1; /* longer than any line we write */
        if (rc == 0)
            rc = env_line(st, line);
        if (rc != 0)
            fprintf(stderr, "kheish: %s:%d is not a valid setting; fix or remove the file\n", path,
                    lineno);
    }
    fclose(f);
    st->loaded = rc == 0;
    return rc;
}

/* Writes <root>/stack.env (0600: it may hold a database password) through a
 * temporary file and rename, so a reader never sees half of it. */
int
stack_env_save(const struct stack *st)
{
    char path[PATH_MAX], tmp[PATH_MAX], quoted[SH_QUOTED_MAX];
    struct env_int ints[ENV_INTS];
    struct env_str strs[ENV_STRS];
    env_ints((struct stack *)st, ints);
    env_strs((struct stack *)st, strs);
    stack_path(st, "stack.env", path);
    stack_path(st, "stack.env.tmp", tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    int ok = fd >= 0 && fchmod(fd, 0600) == 0;
    if (ok)
        ok = dprintf(fd,
                     "# Written by `kheish up`; read by `kheish down` and `kheish migrate`.\n") > 0;
    for (size_t i = 0; ok && i < ENV_INTS; i++)
        ok = dprintf(fd, "%s=%d\n", ints[i].key, *ints[i].dst) > 0;
    for (size_t i = 0; ok && i < ENV_STRS; i++) {
        sh_quote(strs[i].dst, quoted);
        ok = dprintf(fd, "%s=%s\n", strs[i].key, quoted) > 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (ok && rename(tmp, path) == 0)
        return 0;
    fprintf(stderr, "kheish: cannot write %s: %s\n", path, strerror(errno));
    unlink(tmp);
    return -1;
}

/* Creates dir if missing and sets its mode (also when it existed: a mode
 * loosened by hand is tightened again). Refuses symlinks and non-dirs. */
static int
ensure_dir(const char *path, mode_t mode)
{
    struct stat sb;
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        goto fail;
    if (lstat(path, &sb) != 0)
        goto fail;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        goto fail;
    }
    if (chmod(path, mode) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "kheish: cannot create directory %s: %s\n", path, strerror(errno));
    return -1;
}

struct acl_entry {
    uint16_t tag, perm;
    uint32_t id;
};

static int
acl_entry_cmp(const void *a, const void *b)
{
    const struct acl_entry *x = a, *y = b;
    return x->tag != y->tag ? x->tag - y->tag : (x->id > y->id) - (x->id < y->id);
}

/* Adds search permission for uid to dir's access ACL (a named-user entry;
 * the mask lets it through). A directory without an ACL gets one equal to
 * its mode plus that entry. Returns 0 or -1 with errno set. */
static int
acl_add_search(const char *dir, uid_t uid)
{
    unsigned char buf[4 + (ACL_MAX_ENTRIES + 2) * ACL_ENTRY_BYTES];
    struct acl_entry e[ACL_MAX_ENTRIES + 2];
    struct stat sb;
    size_t n = 0;
    ssize_t len = getxattr(dir, ACL_XATTR, buf, sizeof buf);
    if (len < 0 && errno != ENODATA)
        return -1;
    if (len < 0 && stat(dir, &sb) != 0)
        return -1;
    if (len < 0) {
        e[n++] = (struct acl_entry){ACL_USER_OBJ, (sb.st_mode >> 6) & 7, ACL_NO_ID};
        e[n++] = (struct acl_entry){ACL_GROUP_OBJ, (sb.st_mode >> 3) & 7, ACL_NO_ID};
        e[n++] = (struct acl_entry){ACL_OTHER, sb.st_mode & 7, ACL_NO_ID};
    } else {
        uint32_t version;
        memcpy(&version, buf, 4);
        if (len < 4 || (len - 4) % ACL_ENTRY_BYTES || le32toh(version) != ACL_VERSION ||
            (size_t)(len - 4) / ACL_ENTRY_BYTES > ACL_MAX_ENTRIES)
            return errno = EINVAL, -1;
        for (const unsigned char *p = buf + 4; p < buf + len; p += ACL_ENTRY_BYTES, n++) {
            uint16_t tag, perm;
            uint32_t id;
            memcpy(&tag, p, 2), memcpy(&perm, p + 2, 2), memcpy(&id, p + 4, 4);
            e[n] = (struct acl_entry){le16toh(tag), le16toh(perm), le32toh(id)};
        }
    }
    size_t user = n, mask = n;
    for (size_t i = 0; i < n; i++) {
        if (e[i].tag == ACL_USER && e[i].id == uid)
            user = i;
        if (e[i].tag == ACL_MASK)
            mask = i;
    }
    if (user == n) {
        e[n++] = (struct acl_entry){ACL_USER, 0, uid};
        mask += mask == user; /* no mask: it goes after the new entry */
    }
    e[user].perm |= ACL_SEARCH;
    uint16_t group_class = 0;
    for (size_t i = 0; i < n; i++)
        if (e[i].tag == ACL_USER || e[i].tag == ACL_GROUP_OBJ || e[i].tag == ACL_GROUP)
            group_class |= e[i].perm;
    if (mask == n)
        e[n++] = (struct acl_entry){ACL_MASK, group_class, ACL_NO_ID};
    e[mask].perm |= ACL_SEARCH;
    qsort(e, n, sizeof e[0], acl_entry_cmp);
    uint32_t version = htole32(ACL_VERSION);
    memcpy(buf, &version, 4);
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = buf + 4 + i * ACL_ENTRY_BYTES;
        uint16_t tag = htole16(e[i].tag), perm = htole16(e[i].perm);
        uint32_t id = htole32(e[i].id);
        memcpy(p, &tag, 2), memcpy(p + 2, &perm, 2), memcpy(p + 4, &id, 4);
    }
    return setxattr(dir, ACL_XATTR, buf, 4 + n * ACL_ENTRY_BYTES, 0);
}

int
stack_grant_search(const char *user, const char *path)
{
    char prefix[PATH_MAX];
    struct passwd *pw;
    struct stat sb;
    if (geteuid() != 0 || stack_user_can_access(user, path, X_OK))
        return 0;
    if ((pw = getpwnam(user)) == NULL || snprintf(prefix, sizeof prefix, "%s", path) >= PATH_MAX)
        return -1;
    /* From the top: the first directory user cannot search is the blocking one. */
    for (char *p = prefix + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (!stack_user_can_access(user, prefix, X_OK)) {
            /* Only directories we own (a `mktemp -d`): never another user's home. */
            if (stat(prefix, &sb) != 0 || sb.st_uid != geteuid() ||
                acl_add_search(prefix, pw->pw_uid) != 0)
                return -1;
            fprintf(stderr, "kheish: let user %s search %s (ACL u:%s:--x), to reach %s\n", user,
                    prefix, user, path);
        }
        if (c == '\0')
            return 0;
        *p = c;
    }
}

int
stack_lock(const struct stack *st)
{
    char path[PATH_MAX], holder[64] = "";
    stack_path(st, "daemon.lock", path);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "kheish: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        fprintf(stderr,
                "kheish: state root %s is already locked by another kheish (%s); stop it first "
                "(kheish down --state-root %s)\n",
                st->root, holder[0] ? holder : "pid unknown", st->root);
        close(fd);
        return -1;
    }
    if (ftruncate(fd, 0) != 0 || dprintf(fd, "pid=%d\nmechanism=flock\n", (int)getpid()) < 0)
        fprintf(stderr, "kheish: cannot write %s: %s\n", path, strerror(errno));
    return 0; /* fd stays open: the lock lasts as long as we do */
}

/* Writes content into a new file (0600, O_EXCL: never over an existing
 * one) and fsyncs it. Returns 0, 1 when path exists (nothing written), or -1
 * after printing why (a partial file is removed). */
static int
secret_file_create(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return 1;
    if (fd < 0) {
        fprintf(stderr, "kheish: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = dprintf(fd, "%s", content) == (int)strlen(content) && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (ok)
        return 0;
    fprintf(stderr, "kheish: cannot write %s: %s\n", path, strerror(errno));
    unlink(path);
    return -1;
}

/* Creates a secret file (base64 of TOKEN_RAW_BYTES random bytes in the
 * given libsodium variant, 0600) unless it exists: it survives every later
 * `up`. */
static int
secret_file_ensure(const char *path, int variant)
{
    unsigned char raw[TOKEN_RAW_BYTES];
    char tok[sodium_base64_ENCODED_LEN(TOKEN_RAW_BYTES, sodium_base64_VARIANT_ORIGINAL) + 1];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(tok, sizeof tok - 1, raw, sizeof raw, variant);
    sodium_memzero(raw, sizeof raw);
    strcat(tok, "\n");
    int rc = secret_file_create(path, tok);
    sodium_memzero(tok, sizeof tok);
    return rc < 0 ? -1 : 0;
}

void
stack_key_path(const struct stack *st, const char *name, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s%s/%s", st->root, STACK_KEYS_SUFFIX, name ? name : "");
}

/* <root>.keys/<name> into out and 1 when the environment names neither
 * env (a value) nor env_file (a file): the key is then the stack's own. */
static int
own_key(const struct stack *st, const char *env, const char *env_file, const char *name,
        char out[PATH_MAX])
{
    const char *v = getenv(env), *f = getenv(env_file);
    if ((v && *v) || (f && *f))
        return 0;
    stack_key_path(st, name, out);
    return 1;
}

int
stack_master_key_file(const struct stack *st, char out[PATH_MAX])
{
    return own_key(st, "KHEISH_AUTH_STORE_MASTER_KEY", "KHEISH_AUTH_STORE_MASTER_KEY_FILE",
                   STACK_MASTER_KEY_NAME, out);
}

void
stack_audit_key_file(const struct stack *st, char out[PATH_MAX])
{
    const char *v = getenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY"),
               *f = getenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE");
    if (f && *f)
        snprintf(out, PATH_MAX, "%s", f);
    else if (v && *v)
        out[0] = '\0';
    else
        stack_path(st, LEDGER_KEY_FILE, out);
}

/* fsyncs the directory that holds path, so a rename or unlink in it lasts. */
static int
dir_sync(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

int
stack_file_copy(const char *from, const char *to, mode_t mode)
{
    char buf[COPY_CHUNK_BYTES];
    ssize_t n = 0;
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    int ok = out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    ok = ok && n == 0 && fchmod(out, mode) == 0 && fsync(out) == 0;
    sodium_memzero(buf, sizeof buf); /* it copies keys */
    if (out >= 0 && close(out) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "kheish: cannot copy %s to %s: %s\n", from, to, strerror(errno));
    if (!ok && out >= 0)
        unlink(to);
    if (in >= 0)
        close(in);
    return ok && dir_sync(to) == 0 ? 0 : -1;
}

/* An older `up` kept the master key in the state root (tokens/), where a
 * copy of the root carried it to every slot: moves it to to, once. */
static int
master_key_move(const struct stack *st, const char *to)
{
    char from[PATH_MAX];
    struct stat sb;
    stack_path(st, STACK_OLD_MASTER_KEY, from);
    if (lstat(from, &sb) != 0)
        return 0;
    if (access(to, F_OK) == 0) {
        fprintf(stderr,
                "kheish: warning: %s is an old master key; the stack uses %s: remove the old one "
                "once you know no slot needs it\n",
                from, to);
        return 0;
    }
    if (rename(from, to) != 0 &&
        (errno != EXDEV || stack_file_copy(from, to, 0600) != 0 || unlink(from) != 0)) {
        fprintf(stderr, "kheish: cannot move the master key %s to %s: %s\n", from, to,
                strerror(errno));
        return -1;
    }
    dir_sync(from);
    dir_sync(to);
    fprintf(stderr, "kheish: moved the master key from %s to %s, outside the state root\n", from,
            to);
    return 0;
}

/* dst = path for stack.env, which is line-based: "" for none, or for a path
 * it could not hold as one printable line. */
static void
record_path(char dst[STACK_URL_MAX], const char *path)
{
    size_t len = path ? strlen(path) : 0;
    if (len >= STACK_URL_MAX || !util_utf8_printable(path, len))
        len = 0;
    if (len)
        memcpy(dst, path, len);
    dst[len] = '\0';
}

/* The master key the stack makes when the environment names none, in
 * <root>.keys (0700), moved there from an older up's tokens/; records in st
 * the key files (the audit signing key's too: the runners make it). */
static int
keys_ensure(struct stack *st)
{
    char dir[PATH_MAX], master[PATH_MAX], audit[PATH_MAX];
    int own_master = stack_master_key_file(st, master);
    stack_key_path(st, NULL, dir);
    if (own_master && (ensure_dir(dir, 0700) != 0 || master_key_move(st, master) != 0 ||
                       secret_file_ensure(master, sodium_base64_VARIANT_ORIGINAL) != 0))
        return -1;
    record_path(st->master_key_file,
                own_master ? master : getenv("KHEISH_AUTH_STORE_MASTER_KEY_FILE"));
    stack_audit_key_file(st, audit);
    record_path(st->audit_key_file, audit);
    return 0;
}

/* Creates the state root's directories (see stack.h for the layout). The
 * pg/ directory belongs to stack_pg.c. */
int
stack_dirs_create(const struct stack *st)
{
    static const struct {
        const char *rel;
        mode_t mode;
    } dirs[] = {
        {"", 0711},     {"tokens", 0700}, {"workspace", 0711},  {"run", 0755},
        {"logs", 0755}, {"nginx", 0755},  {"nginx/logs", 0755}, {"nginx/tmp", 0755},
    };
    char path[PATH_MAX];
    if (sodium_init() < 0) {
        fprintf(stderr, "kheish: libsodium failed to initialise\n");
        return -1;
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        stack_path(st, dirs[i].rel, path);
        if (ensure_dir(path, dirs[i].mode) != 0)
            return -1;
    }
    return 0;
}

int
stack_layout_create(struct stack *st)
{
    return stack_dirs_create(st) == 0 && keys_ensure(st) == 0 ? 0 : -1;
}

int
stack_tokens_ensure(const struct stack *st)
{
    static const char *const files[] = {"tokens/admin-token", "tokens/readonly-token"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        stack_path(st, files[i], path);
        if (secret_file_ensure(path, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
            return -1;
    }
    return 0;
}

/* Prints the last lines of a log file to stderr, for failures whose reason
 * is in a log rather than in our hands. */
void
stack_tail(const char *path, int lines)
{
    char buf[TAIL_WINDOW_SIZE + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    ssize_t n = end < 0 ? -1
                        : pread(fd, buf, TAIL_WINDOW_SIZE,
                                end > TAIL_WINDOW_SIZE ? end - TAIL_WINDOW_SIZE : 0);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *p = buf + n;
    if (p > buf && p[-1] == '\n')
        p--;
    for (int seen = 0; p > buf; p--)
        if (p[-1] == '\n' && ++seen == lines)
            break;
    fprintf(stderr, "--- last lines of %s ---\n%s%s", path, p, buf[n - 1] == '\n' ? "" : "\n");
}

/* Log files hold request paths, client addresses and reasons: not for every
 * local user. */
int
stack_logs_protect(const struct stack *st)
{
    static const char *const dirs[] = {"logs", "nginx/logs"};
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat sb;
    stack_path(st, "nginx/logs/error.log", path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "kheish: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    close(fd);
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        stack_path(st, dirs[i], dir);
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(sb.st_mode) || (sb.st_mode & 0137) == 0)
                continue;
            if (fchmodat(dirfd(d), e->d_name, sb.st_mode & 0640, 0) != 0) {
                fprintf(stderr, "kheish: cannot chmod %s/%s: %s\n", dir, e->d_name,
                        strerror(errno));
                closedir(d);
                return -1;
            }
        }
        if (d)
            closedir(d);
    }
    return 0;
}
