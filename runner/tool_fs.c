/*
 * tool_fs: the file tools' confinement to the workspace (tools.h).
 *
 * Every path the model gives is first checked lexically (tool_path_parse:
 * no NUL, bounded, ".." may not climb above the workspace, an absolute path
 * must name something below the workspace's own path), then opened by the
 * kernel beneath the workspace's directory descriptor with openat2(2):
 *
 *   RESOLVE_BENEATH        nothing that resolves outside ws: no "..", no
 *                          absolute symbolic link, no relative one that climbs
 *                          out (EXDEV), decided atomically by the kernel
 *                          during the lookup, so no rename race can win it
 *   RESOLVE_NO_MAGICLINKS  no /proc/<pid>/fd or /proc/<pid>/root style link
 *   RESOLVE_NO_XDEV        no mount point crossed (a bind mount planted in
 *                          the workspace leads nowhere)
 *
 * Symbolic links that stay beneath the workspace are followed, as upstream
 * follows links whose target is inside the root; walks (list, glob, grep)
 * add RESOLVE_NO_SYMLINKS and never follow one. A write never resolves its
 * last component: the parent is opened as above (made with mkdirat relative
 * to the already opened parent when missing), the name is checked with
 * fstatat(AT_SYMLINK_NOFOLLOW), the bytes go to a new temporary file in that
 * directory (O_CREAT|O_EXCL|O_NOFOLLOW) and renameat puts it in place. What
 * the name pointed to, a symbolic link or a hard link to a file outside,
 * is replaced and never written through. Files with more than one hard link
 * are refused for reading and writing: another name of the same inode may
 * be outside the workspace, and its content is not the workspace's to show.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "tool_fs.h"
#include "util.h"

#define TOOL_RESOLVE      (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define TOOL_RESOLVE_WALK (TOOL_RESOLVE | RESOLVE_NO_SYMLINKS)
#define OPENAT2_TRIES     16 /* EAGAIN: a rename raced a lookup through ".." */
#define TMP_TRIES         8  /* temporary names tried before giving up */

int
tool_fail(struct tool_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

void
tool_show(const char *s, size_t n, char out[TOOL_SHOW_MAX + 8])
{
    size_t k = n < TOOL_SHOW_MAX ? n : TOOL_SHOW_MAX;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (n > k)
        memcpy(out + k, "...", 4);
    else
        out[k] = '\0';
}

/* ---- paths ---------------------------------------------------------------- */

/* Appends the components of s[0..n) to out (*olen bytes so far, no leading
 * '/'), resolving "." and ".." lexically. -1: ".." above the start; -2: a
 * component longer than NAME_MAX. out has room for n more bytes. */
static int
lex(const char *s, size_t n, char *out, size_t *olen)
{
    size_t i = 0, o = *olen;
    while (i < n) {
        while (i < n && s[i] == '/')
            i++;
        size_t start = i;
        while (i < n && s[i] != '/')
            i++;
        size_t clen = i - start;
        if (clen == 0 || (clen == 1 && s[start] == '.'))
            continue;
        if (clen == 2 && s[start] == '.' && s[start + 1] == '.') {
            if (o == 0)
                return -1;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before the removed component */
            continue;
        }
        if (clen > NAME_MAX)
            return -2;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, s + start, clen);
        o += clen;
    }
    out[o] = '\0';
    *olen = o;
    return 0;
}

int
tool_path_parse(const char *raw, size_t len, const char *root, struct tool_path *out, char *err,
                size_t errlen)
{
    char shown[TOOL_SHOW_MAX + 8];
    tool_show(raw, len, shown);
    if (memchr(raw, '\0', len)) {
        snprintf(err, errlen, "path contains a NUL byte");
        return -1;
    }
    if (len > TOOL_PATH_MAX) {
        snprintf(err, errlen, "path is longer than %d bytes", TOOL_PATH_MAX);
        return -1;
    }
    out->len = 0;
    int rc;
    if (len > 0 && raw[0] == '/') {
        if (root == NULL) {
            snprintf(err, errlen,
                     "absolute path %s: the workspace's own path is unknown here, give a path "
                     "relative to the workspace",
                     shown);
            return -1;
        }
        char abs[TOOL_PATH_MAX + 1];
        size_t alen = 0;
        rc = lex(raw, len, abs, &alen);
        if (rc == -1) {
            snprintf(err, errlen, "path escapes filesystem root: %s", shown);
            return -1;
        }
        /* root is absolute and canonical (a kernel answer): compare it by
         * whole components with the normalized path. This only chooses the
         * relative path to open; openat2 still confines the open. */
        size_t rlen = strlen(root);
        while (rlen > 0 && root[rlen - 1] == '/')
            rlen--;
        const char *r = root;
        while (rlen > 0 && *r == '/')
            r++, rlen--;
        if (rc == 0 && rlen > 0 &&
            (alen < rlen || memcmp(abs, r, rlen) || (alen > rlen && abs[rlen] != '/'))) {
            snprintf(err, errlen, "path %s escapes workspace root", shown);
            return -1;
        }
        if (rc == 0) {
            size_t skip = rlen == 0 ? 0 : (alen > rlen ? rlen + 1 : rlen);
            memcpy(out->rel, abs + skip, alen - skip + 1);
            out->len = alen - skip;
        }
    } else {
        rc = lex(raw, len, out->rel, &out->len);
        if (rc == -1) {
            snprintf(err, errlen, "path escapes workspace root: %s", shown);
            return -1;
        }
    }
    if (rc == -2) {
        snprintf(err, errlen, "path %s has a component longer than %d bytes", shown, NAME_MAX);
        return -1;
    }
    out->rel[out->len] = '\0';
    if (out->len == 0)
        memcpy(out->shown, ".", 2);
    else
        tool_show(out->rel, out->len, out->shown);
    return 0;
}

const char *
tool_ctx_root(struct tool_ctx *c)
{
    if (c->root_state == 0) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", c->ws);
        ssize_t n = readlink(link, c->root, sizeof c->root - 1);
        c->root_state = (n > 0 && n < (ssize_t)sizeof c->root - 1 && c->root[0] == '/') ? 1 : -1;
        if (c->root_state == 1) {
            c->root[n] = '\0';
            if (n > 10 && !strcmp(c->root + n - 10, " (deleted)"))
                c->root_state = -1;
        }
    }
    return c->root_state == 1 ? c->root : NULL;
}

int
tool_path_get(struct tool_ctx *c, const char *raw, size_t len, struct tool_path *out)
{
    const char *root = (len > 0 && raw[0] == '/') ? tool_ctx_root(c) : NULL;
    return tool_path_parse(raw, len, root, out, c->err, sizeof c->err);
}

/* ---- opens ---------------------------------------------------------------- */

/* What a tool creates in the workspace is the workspace's owner's: when
 * the runner is root and the workspace belongs to the bash tool's user, a
 * file write_file made stays writable by the commands of the session. */
static void
give_to_workspace_owner(const struct tool_ctx *c, int fd)
{
    struct stat ws;
    if (geteuid() == 0 && fstat(c->ws, &ws) == 0 && ws.st_uid != 0)
        (void)fchown(fd, ws.st_uid, ws.st_gid);
}

static int
openat2_fd(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.mode = mode;
    how.resolve = resolve;
    for (int i = 0; i < OPENAT2_TRIES; i++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN && errno != EINTR)
            break;
    }
    return -1;
}

/* The refusal of a failed open or lookup of what (the path as shown). */
static int
fail_errno(struct tool_ctx *c, const char *verb, const char *what, int e)
{
    switch (e) {
    case EXDEV:
        return tool_fail(c, "path %s escapes workspace root (or crosses a mount point)", what);
    case ELOOP:
        return tool_fail(c,
                         "path %s: a symbolic link this tool does not follow (a /proc link, a "
                         "link where a file is written, or too many links)",
                         what);
    case ENOSYS:
        return tool_fail(c, "the file tools need openat2 (Linux 5.6 or later)");
    default:
        return tool_fail(c, "failed to %s %s: %s", verb, what, strerror(e));
    }
}

/* Refuses what a file tool must not read or replace (verb: "read",
 * "modify"). */
static int
check_regular(struct tool_ctx *c, const struct stat *st, const char *verb, const char *what)
{
    if (S_ISDIR(st->st_mode))
        return tool_fail(c, "refusing to %s directory path %s", verb, what);
    if (S_ISLNK(st->st_mode))
        return tool_fail(c, "refusing to %s symlink path %s", verb, what);
    if (!S_ISREG(st->st_mode))
        return tool_fail(c, "refusing to %s %s: not a regular file", verb, what);
    if (st->st_nlink > 1)
        return tool_fail(c,
                         "refusing to %s %s: it has %lu hard links, and another one may be "
                         "outside the workspace",
                         verb, what, (unsigned long)st->st_nlink);
    return 0;
}

int
tool_fs_open_read(struct tool_ctx *c, const struct tool_path *p, struct stat *st)
{
    int fd =
        openat2_fd(c->ws, p->len ? p->rel : ".", O_RDONLY | O_NOCTTY | O_NONBLOCK, 0, TOOL_RESOLVE);
    if (fd < 0)
        return fail_errno(c, "open", p->shown, errno);
    if (fstat(fd, st) != 0) {
        fail_errno(c, "stat", p->shown, errno);
        close(fd);
        return -1;
    }
    if (check_regular(c, st, "read", p->shown) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
tool_fs_open_dir(struct tool_ctx *c, const struct tool_path *p)
{
    int fd = openat2_fd(c->ws, p->len ? p->rel : ".", O_RDONLY | O_DIRECTORY, 0, TOOL_RESOLVE);
    if (fd < 0 && errno == ENOTDIR)
        return tool_fail(c, "base %s is not a directory", p->shown);
    if (fd < 0)
        return fail_errno(c, "open", p->shown, errno);
    return fd;
}

int
tool_fs_open_below(int basefd, const char *rel)
{
    return openat2_fd(basefd, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, 0,
                      TOOL_RESOLVE_WALK);
}

int
tool_fs_read_fd(struct tool_ctx *c, int fd, size_t max, const char *what, char **buf, size_t *len,
                int *over)
{
    struct stat st;
    size_t cap = 64 * 1024;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        cap = (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
    if (cap > max + 1)
        cap = max + 1;
    char *b = malloc(cap + 1);
    size_t n = 0;
    *over = 0;
    if (b == NULL)
        return tool_fail(c, "out of memory reading %s", what);
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                *over = 1;
                break;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(b, ncap + 1);
            if (nb == NULL) {
                free(b);
                return tool_fail(c, "out of memory reading %s", what);
            }
            b = nb, cap = ncap;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            return tool_fail(c, "failed to read %s: %s", what, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        *over = 1;
        n = max;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* ---- writes --------------------------------------------------------------- */

/* The directory p->rel[0..plen) opened beneath the workspace, made (with
 * every missing directory above it) when create. Each missing component is
 * made by mkdirat in the directory opened just before, and the result is
 * opened again beneath the workspace: a component swapped for a link
 * meanwhile still resolves inside, or fails. */
static int
open_parent(struct tool_ctx *c, const struct tool_path *p, size_t plen, int create)
{
    char dir[TOOL_PATH_MAX + 1];
    memcpy(dir, p->rel, plen);
    dir[plen] = '\0';
    int fd = openat2_fd(c->ws, plen ? dir : ".", O_RDONLY | O_DIRECTORY, 0, TOOL_RESOLVE);
    if (fd >= 0 || errno != ENOENT || !create)
        return fd >= 0 ? fd : fail_errno(c, "open the directory of", p->shown, errno);

    int cur = openat2_fd(c->ws, ".", O_RDONLY | O_DIRECTORY, 0, TOOL_RESOLVE);
    if (cur < 0)
        return fail_errno(c, "open the workspace for", p->shown, errno);
    size_t i = 0;
    while (i < plen) {
        size_t start = i;
        while (i < plen && dir[i] != '/')
            i++;
        char save = dir[i];
        dir[i] = '\0';
        int next = openat2_fd(c->ws, dir, O_RDONLY | O_DIRECTORY, 0, TOOL_RESOLVE);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(cur, dir + start, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                close(cur);
                return tool_fail(c, "failed to create directory component %s of %s: %s",
                                 dir + start, p->shown, strerror(e));
            }
            next = openat2_fd(c->ws, dir, O_RDONLY | O_DIRECTORY, 0, TOOL_RESOLVE);
            if (next >= 0)
                give_to_workspace_owner(c, next);
        }
        int e = errno;
        close(cur);
        if (next < 0)
            return fail_errno(c, "open the directory of", p->shown, e);
        cur = next;
        dir[i] = save;
        if (i < plen)
            i++;
    }
    return cur;
}

int
tool_fs_target(struct tool_ctx *c, const struct tool_path *p, int create, struct tool_target *t)
{
    memset(t, 0, sizeof *t);
    t->dirfd = -1;
    t->path = p;
    if (p->len == 0)
        return tool_fail(c, "path has no file name: %s", p->shown);
    const char *slash = strrchr(p->rel, '/');
    size_t plen = slash ? (size_t)(slash - p->rel) : 0;
    const char *leaf = slash ? slash + 1 : p->rel;
    size_t llen = p->len - (size_t)(leaf - p->rel); /* <= NAME_MAX: tool_path_parse */
    memcpy(t->leaf, leaf, llen);
    t->leaf[llen] = '\0';
    if (strncmp(t->leaf, TOOL_TMP_PREFIX, strlen(TOOL_TMP_PREFIX)) == 0)
        return tool_fail(c, "refusing to modify %s: the name of a temporary file of these tools",
                         p->shown);
    t->dirfd = open_parent(c, p, plen, create);
    if (t->dirfd < 0)
        return -1;
    struct stat st;
    if (fstatat(t->dirfd, t->leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        return fail_errno(c, "stat", p->shown, errno);
    }
    if (check_regular(c, &st, "modify", p->shown) != 0)
        return -1;
    t->exists = 1;
    t->mode = st.st_mode & 0777;
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    return 0;
}

int
tool_fs_target_read(struct tool_ctx *c, struct tool_target *t, size_t max, const char *verb,
                    char **buf, size_t *len)
{
    const char *what = t->path->shown;
    int fd = openat2_fd(t->dirfd, t->leaf, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, 0,
                        TOOL_RESOLVE_WALK);
    if (fd < 0 && errno == ELOOP)
        return tool_fail(c, "refusing to modify symlink path %s", what);
    if (fd < 0)
        return fail_errno(c, "open", what, errno);
    struct stat st;
    int over = 0, rc = -1;
    if (fstat(fd, &st) != 0)
        fail_errno(c, "stat", what, errno);
    else if (check_regular(c, &st, "modify", what) == 0) {
        t->exists = 1;
        t->mode = st.st_mode & 0777;
        t->dev = st.st_dev;
        t->ino = st.st_ino;
        if ((size_t)st.st_size > max)
            tool_fail(c, "refusing to %s %s because it is larger than %zu bytes", verb, what, max);
        else if (tool_fs_read_fd(c, fd, max, what, buf, len, &over) == 0) {
            if (over) {
                free(*buf);
                *buf = NULL;
                tool_fail(c, "refusing to %s %s because it is larger than %zu bytes", verb, what,
                          max);
            } else {
                rc = 0;
            }
        }
    }
    close(fd);
    return rc;
}

void
tool_fs_target_close(struct tool_target *t)
{
    if (t->dirfd >= 0)
        close(t->dirfd);
    t->dirfd = -1;
}

int
tool_fs_stage(struct tool_ctx *c, const struct tool_target *t, const void *data, size_t len,
              struct tool_stage *s)
{
    static unsigned counter;
    const char *what = t->path->shown;
    int fd = -1;
    s->made = 0;
    for (int i = 0; i < TMP_TRIES && fd < 0; i++) {
        unsigned char rnd[8];
        char hex[sizeof rnd * 2 + 1];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
        snprintf(s->tmp, sizeof s->tmp, TOOL_TMP_PREFIX "%d-%u-%s", (int)getpid(),
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), hex);
        fd = openat(t->dirfd, s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    t->exists ? 0600 : 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return tool_fail(c, "failed to create temporary file for %s: %s", what, strerror(errno));
    s->made = 1;
    give_to_workspace_owner(c, fd);
    const char *p = data;
    size_t off = 0;
    int e = 0;
    if (t->exists && fchmod(fd, t->mode) != 0)
        e = errno;
    while (e == 0 && off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            e = errno;
        else
            off += (size_t)w;
    }
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e != 0) {
        tool_fs_unstage(t, s);
        return tool_fail(c, "failed to write temporary file for %s: %s", what, strerror(e));
    }
    return 0;
}

int
tool_fs_commit(struct tool_ctx *c, const struct tool_target *t, struct tool_stage *s)
{
    if (renameat(t->dirfd, s->tmp, t->dirfd, t->leaf) != 0) {
        int e = errno;
        tool_fs_unstage(t, s);
        return tool_fail(c, "failed to atomically replace %s: %s", t->path->shown, strerror(e));
    }
    s->made = 0;
    if (fsync(t->dirfd) != 0)
        return tool_fail(c, "failed to sync parent directory for %s: %s", t->path->shown,
                         strerror(errno));
    return 0;
}

void
tool_fs_unstage(const struct tool_target *t, struct tool_stage *s)
{
    if (s->made)
        unlinkat(t->dirfd, s->tmp, 0);
    s->made = 0;
}

/* ---- walks ---------------------------------------------------------------- */

/* Walks the directory fd (closed here) whose path below the base is
 * w->rel[0..rlen). 0: go on; 1: stop (a limit, or visit said so); -1: visit
 * failed. */
static int
walk_dir(struct tool_walk *w, int fd, size_t rlen, int depth)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return 0;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        /* Every name counts, hidden ones too: a directory of millions of
         * them is read no further than any other. */
        if (++w->entries > TOOL_WALK_MAX_ENTRIES || util_monotonic_us() > w->deadline_us) {
            w->truncated = 1;
            rc = 1;
            break;
        }
        if (name[0] == '.') /* ".", "..", hidden names, our temporary files */
            continue;
        size_t nlen = strlen(name), len = rlen + (rlen ? 1 : 0) + nlen;
        if (len > TOOL_PATH_MAX) {
            w->truncated = 1;
            continue;
        }
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
        }
        if (type != DT_DIR && type != DT_REG)
            continue; /* symbolic links, devices, sockets, FIFOs */
        if (rlen)
            w->rel[rlen] = '/';
        memcpy(w->rel + len - nlen, name, nlen + 1);
        if (type == DT_REG) {
            rc = w->visit(w, w->rel, len);
        } else if (depth >= TOOL_WALK_MAX_DEPTH) {
            w->truncated = 1;
        } else {
            /* A directory swapped for a link since readdir: not opened. */
            int cfd = openat2_fd(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0,
                                 TOOL_RESOLVE_WALK);
            if (cfd >= 0)
                rc = walk_dir(w, cfd, len, depth + 1);
        }
        w->rel[rlen] = '\0';
    }
    closedir(d);
    return rc;
}

int
tool_fs_walk(struct tool_walk *w, int basefd)
{
    w->entries = 0;
    w->truncated = 0;
    w->rel[0] = '\0';
    int fd = openat2_fd(basefd, ".", O_RDONLY | O_DIRECTORY, 0, TOOL_RESOLVE_WALK);
    if (fd < 0)
        return 0;
    return walk_dir(w, fd, 0, 0) < 0 ? -1 : 0;
}
