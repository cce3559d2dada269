/*
 * tool_fs: what the file tools (tools.h) share, private to them and to their
 * tests: the lexical check of a path the model gives, the confined opens,
 * writes and walks beneath the workspace's descriptor (tool_fs.c), and the
 * text work of edit_file and apply_patch (tool_patch.c).
 */
#ifndef KHEISH_RUNNER_TOOL_FS_H
#define KHEISH_RUNNER_TOOL_FS_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tools.h"

#define TOOL_ERR_MAX  1024 /* an error message for the model */
#define TOOL_SHOW_MAX 200  /* of a path quoted in a message */

/* One call's state: the workspace, and why the call failed. */
struct tool_ctx {
    int ws;
    char err[TOOL_ERR_MAX];
    int root_state; /* 0: not asked yet, 1: root holds the workspace's path, -1: unknown */
    char root[PATH_MAX];
};

/* A path checked and normalized: rel is "" for the workspace itself, else
 * its components joined by '/', none of them empty, "." or "..", none over
 * NAME_MAX bytes; shown is rel for messages ("." for ""), cut and cleaned. */
struct tool_path {
    char rel[TOOL_PATH_MAX + 1];
    size_t len;
    char shown[TOOL_SHOW_MAX + 8];
};

/* Records a message (printf-style) in c->err; returns -1. */
int tool_fail(struct tool_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s[0..n) fit to quote in a message: control bytes become '?', cut at
 * TOOL_SHOW_MAX bytes with "..." after. */
void tool_show(const char *s, size_t n, char out[TOOL_SHOW_MAX + 8]);

/* Checks the model's path raw[0..len) and normalizes it lexically, upstream's
 * way: "." and empty components are dropped, ".." removes the component
 * before it and refuses to climb above the workspace. An absolute path is
 * accepted when it names the workspace (root: its absolute path, no trailing
 * '/') or something below it, and refused when root is NULL. NUL bytes and
 * paths over TOOL_PATH_MAX bytes are refused. Nothing is looked up: the
 * confinement itself is the kernel's, at open time. 0, or -1 and why in err. */
int tool_path_parse(const char *raw, size_t len, const char *root, struct tool_path *out, char *err,
                    size_t errlen);
/* The same for a tool call: root is found on first need. */
int tool_path_get(struct tool_ctx *c, const char *raw, size_t len, struct tool_path *out);
/* The workspace's absolute path (the kernel's, /proc/self/fd/<ws>), or NULL
 * when it cannot say (no /proc, the directory removed). */
const char *tool_ctx_root(struct tool_ctx *c);

/* A regular file opened for reading beneath the workspace, following
 * symbolic links only while they stay beneath it: a descriptor with its
 * stat, or -1. Directories, other non-regular files and files with more
 * than one hard link are refused. */
int tool_fs_open_read(struct tool_ctx *c, const struct tool_path *p, struct stat *st);
/* A directory beneath the workspace (the base of a walk): a descriptor, or -1. */
int tool_fs_open_dir(struct tool_ctx *c, const struct tool_path *p);
/* Reads fd to its end, at most max bytes: *buf (malloc'd, one spare byte),
 * *len, *over = 1 when there was more. 0, or -1 with c->err (what: the path
 * as shown). */
int tool_fs_read_fd(struct tool_ctx *c, int fd, size_t max, const char *what, char **buf,
                    size_t *len, int *over);

/* A file to be written: its parent directory (opened beneath the
 * workspace; made when create and missing, by mkdirat relative to an opened
 * parent) and its name there. The name itself is never followed: an existing
 * symbolic link, directory, non-regular file or file with more than one hard
 * link is refused. */
struct tool_target {
    int dirfd;
    char leaf[NAME_MAX + 1];
    const struct tool_path *path;
    int exists;
    mode_t mode; /* of the existing file, kept by the write */
    dev_t dev;   /* and its identity (apply_patch: two paths, one file) */
    ino_t ino;
};
int tool_fs_target(struct tool_ctx *c, const struct tool_path *p, int create,
                   struct tool_target *t);
/* The target's current content (it must exist), at most max bytes; verb
 * says what for in the refusal of a larger file ("edit"). */
int tool_fs_target_read(struct tool_ctx *c, struct tool_target *t, size_t max, const char *verb,
                        char **buf, size_t *len);
void tool_fs_target_close(struct tool_target *t);

/* A write in two steps: stage puts the bytes into a new temporary file in
 * the target's directory (synced); commit renames it over the target's name
 * and syncs the directory. A reader sees the old file or the new one, never
 * a part; a hard link or symbolic link swapped in under the name is
 * replaced, never written through. unstage removes a staged file. */
struct tool_stage {
    char tmp[80];
    int made;
};
int tool_fs_stage(struct tool_ctx *c, const struct tool_target *t, const void *data, size_t len,
                  struct tool_stage *s);
int tool_fs_commit(struct tool_ctx *c, const struct tool_target *t, struct tool_stage *s);
void tool_fs_unstage(const struct tool_target *t, struct tool_stage *s);

/* A walk of the regular files below a base directory: symbolic links are
 * never followed (nor listed), hidden names (a leading '.') are skipped as
 * ripgrep does, mount points are not crossed. visit is called with each
 * file's path relative to the base; it returns 0 to go on, 1 to stop, -1
 * on error. truncated is set when the walk stopped or skipped part of the
 * tree at a limit (entries, depth, time, path length). */
struct tool_walk {
    int (*visit)(struct tool_walk *w, const char *rel, size_t len);
    void *arg;
    int64_t deadline_us;
    size_t entries;
    int truncated;
    char rel[TOOL_PATH_MAX + 1];
};
/* Walks the directory basefd (not closed). 0, or -1 when visit failed. */
int tool_fs_walk(struct tool_walk *w, int basefd);
/* A file the walk listed, opened beneath basefd without following any
 * symbolic link: a descriptor or -1 (errno). */
int tool_fs_open_below(int basefd, const char *rel);

/* The temporary files' name prefix: hidden, so walks never list them. */
#define TOOL_TMP_PREFIX ".kheish-tmp-"

/* ---- text (tool_patch.c) ---- */

/* Replaces in text[0..len) the first non-overlapping occurrence of old
 * (oldlen > 0), or every one when all, by new: *out (malloc'd, NUL after)
 * and *outlen. Returns the number of occurrences replaced (0: none, *out
 * NULL), or -1 when the result would exceed max bytes or memory ran out. */
long tool_text_replace(const char *text, size_t len, const char *old, size_t oldlen,
                       const char *new, size_t newlen, int all, size_t max, char **out,
                       size_t *outlen);
/* Non-overlapping occurrences of old (oldlen > 0) in text, left to right. */
size_t tool_text_count(const char *text, size_t len, const char *old, size_t oldlen);

/* One apply_patch hunk as parsed: its strings point into the input. */
struct tool_hunk {
    const char *raw_path;
    size_t raw_len;
    struct tool_path path;
    const char *old_text, *new_text;
    size_t old_len, new_len;
    int replace_all;
    const char *expected_sha256; /* NULL when not given */
};
struct tool_patch {
    struct tool_hunk *hunks;
    size_t n;
};
/* Parses apply_patch's input {hunks: [...]}: at least one hunk and at most
 * TOOL_PATCH_MAX_HUNKS, each an object with string path, old_text (not
 * empty) and new_text, optional boolean replace_all and string
 * expected_sha256 (null: not given), no other field; each path as
 * tool_path_parse checks it (root as there). 0, or -1 and why in err. */
int tool_patch_parse(const json_t *input, const char *root, struct tool_patch *p, char *err,
                     size_t errlen);
void tool_patch_free(struct tool_patch *p);
/* The apply_patch tool (tool_files.c dispatches to it). */
int tool_apply_patch(struct tool_ctx *c, const json_t *input, json_t **out);

/* ---- glob (tool_files.c) ---- */

/* 1 when path matches the glob pattern, gitignore's way: '*' matches any
 * run of characters but '/', '?' one character but '/', [...] a class
 * ([!...] or [^...] negated), '\\' quotes the next character; "**" standing
 * as a whole component matches any number of whole components (none
 * included), any other "**" is '*'. Time linear in pattern times path. */
int tool_glob_match(const char *pattern, size_t plen, const char *path, size_t len);

#endif
