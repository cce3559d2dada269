/*
 * The runner's file tools (runner/tools.h): each tool's results and
 * refusals as upstream Kheish gives them, their limits, and the workspace
 * confinement against a corpus of hostile paths (.., absolute paths, /proc,
 * symbolic links to / and .., chains, a link planted in a parent, a hard
 * link to a file outside, NUL bytes, long paths) and against a thread that
 * keeps swapping a directory, and a file, with a link to the outside while
 * the tools read and write through them. Sentinel files outside the
 * workspace must be exactly as they were at the end, and nothing may appear
 * next to them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "permissions.h"
#include "tool_fs.h"
#include "tools.h"
#include "util.h"

#define SENTINEL "SENTINEL-OUTSIDE-7f3a"

/* Time and memory bounds hold for the plain build; a sanitized one (make
 * asan, KHEISH_TEST_SANITIZED) runs many times slower and bigger, so there
 * only what the tools answered is checked. */
static int
bounded(void)
{
    return getenv("KHEISH_TEST_SANITIZED") == NULL;
}

static char top[PATH_MAX / 4], wsdir[PATH_MAX / 2], outdir[PATH_MAX / 2];
static int ws = -1;
static int last_rc;

/* ---- helpers ---------------------------------------------------------- */

/* Runs a tool with the input json_pack makes of fmt. */
static json_t *
call(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_error_t e;
    json_t *in = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    if (in == NULL) {
        fprintf(stderr, "bad pack %s: %s\n", fmt, e.text);
        exit(2);
    }
    json_t *out = NULL;
    last_rc = tool_files_run(ws, name, in, &out);
    json_decref(in);
    return out;
}

/* The same with a JSON text as input. */
static json_t *
callt(const char *name, const char *text)
{
    json_t *in = json_loads(text, JSON_ALLOW_NUL, NULL);
    if (in == NULL) {
        fprintf(stderr, "bad json %s\n", text);
        exit(2);
    }
    json_t *out = NULL;
    last_rc = tool_files_run(ws, name, in, &out);
    json_decref(in);
    return out;
}

static const char *
err_of(const json_t *out)
{
    return json_string_value(json_object_get(out, "error"));
}

static const char *
str(const json_t *out, const char *k)
{
    return json_string_value(json_object_get(out, k));
}

static json_int_t
num(const json_t *out, const char *k)
{
    return json_integer_value(json_object_get(out, k));
}

/* A refusal whose message has want in it; reports the call's line. */
#define REFUSED(out, want)                                                                         \
    do {                                                                                           \
        json_t *r_ = (out);                                                                        \
        const char *e_ = err_of(r_);                                                               \
        CHECK(last_rc == -1);                                                                      \
        CHECK(e_ != NULL && strstr(e_, (want)) != NULL);                                           \
        if (e_ == NULL || strstr(e_, (want)) == NULL)                                              \
            fprintf(stderr, "  (%s:%d: got %s, wanted \"%s\")\n", __FILE__, __LINE__,              \
                    e_ ? e_ : "no error", (want));                                                 \
        json_decref(r_);                                                                           \
    } while (0)

#define ACCEPTED(out)                                                                              \
    do {                                                                                           \
        CHECK(last_rc == 0 && (out) != NULL && err_of(out) == NULL);                               \
        if (last_rc != 0)                                                                          \
            fprintf(stderr, "  (%s:%d: %s)\n", __FILE__, __LINE__, err_of(out));                   \
    } while (0)

static void
put_at(const char *dir, const char *rel, const void *data, size_t len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    close(fd);
}

static void
put(const char *rel, const char *text)
{
    put_at(wsdir, rel, text, strlen(text));
}

/* The content of a file of the workspace (NULL when it cannot be read). */
static char *
slurp_at(const char *dir, const char *rel, size_t *len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    char *b = malloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, b, (size_t)st.st_size);
    close(fd);
    b[n < 0 ? 0 : n] = '\0';
    if (len)
        *len = n < 0 ? 0 : (size_t)n;
    return b;
}

static int
same_text(const char *rel, const char *want)
{
    char *got = slurp_at(wsdir, rel, NULL);
    int ok = got && !strcmp(got, want);
    if (!ok)
        fprintf(stderr, "  %s holds \"%s\", wanted \"%s\"\n", rel, got ? got : "(none)", want);
    free(got);
    return ok;
}

static int
exists(const char *dir, const char *rel)
{
    char path[PATH_MAX * 2];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return lstat(path, &st) == 0;
}

static void
link_at(const char *target, const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", wsdir, rel);
    if (symlink(target, path) != 0) {
        fprintf(stderr, "symlink %s: %s\n", path, strerror(errno));
        exit(2);
    }
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every name below dir with its content, in one string: what the outside
 * of the workspace looks like (appended to *out). */
static void
snapshot(const char *dir, const char *rel, char **out, size_t *len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    char *names[256];
    int n = 0;
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        char full[PATH_MAX * 2];
        snprintf(full, sizeof full, "%s/%s", dir, sub);
        struct stat st;
        lstat(full, &st);
        size_t clen = 0;
        char *content = S_ISREG(st.st_mode) ? slurp_at(dir, sub, &clen) : NULL;
        size_t need = strlen(sub) + clen + 64;
        *out = realloc(*out, *len + need);
        *len += (size_t)snprintf(*out + *len, need, "%s:%o:%lu:%s\n", sub, st.st_mode,
                                 (unsigned long)st.st_nlink, content ? content : "");
        free(content);
        if (S_ISDIR(st.st_mode))
            snapshot(dir, sub, out, len);
        free(names[i]);
    }
}

static char *
outside_snapshot(void)
{
    char *s = NULL;
    size_t len = 0;
    snapshot(outdir, "", &s, &len);
    return s ? s : strdup("");
}

/* No temporary file of the tools left anywhere below the workspace. */
static int
no_temp_left(const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s%s%s", wsdir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    int ok = 1;
    if (d == NULL)
        return 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, TOOL_TMP_PREFIX, strlen(TOOL_TMP_PREFIX))) {
            fprintf(stderr, "  temporary file left: %s/%s\n", path, e->d_name);
            ok = 0;
        }
        if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
            ok &= no_temp_left(sub);
        }
    }
    closedir(d);
    return ok;
}

static void
sha_of(const char *text, size_t len, char out[65])
{
    util_sha256_hex(text, len, out);
}

/* ---- the path check ------------------------------------------------------- */

static void
test_path_parse(void)
{
    struct tool_path p;
    char err[TOOL_ERR_MAX];
    static const struct {
        const char *in, *root, *want; /* want NULL: refused */
    } cases[] = {
        {"a/./b//c/", NULL, "a/b/c"},
        {"a/../b", NULL, "b"},
        {"./", NULL, ""},
        {"", NULL, ""},
        {"....", NULL, "...."},
        {"a/b/../../c", NULL, "c"},
        {"../x", NULL, NULL},
        {"a/../../x", NULL, NULL},
        {"..", NULL, NULL},
        {"/etc/passwd", NULL, NULL},
        {"/ws/a/b", "/ws", "a/b"},
        {"/ws", "/ws", ""},
        {"/ws/", "/ws/", ""},
        {"/ws/../ws/a", "/ws", "a"},
        {"/ws/../etc/passwd", "/ws", NULL},
        {"/wsx/a", "/ws", NULL},
        {"/w", "/ws", NULL},
        {"/etc", "/", "etc"},
        {"/..", "/ws", NULL},
        {"//ws//a", "/ws", "a"},
        {"/proc/self/root/etc/passwd", "/ws", NULL},
        {"/proc/self/cwd/..", "/ws", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc =
            tool_path_parse(cases[i].in, strlen(cases[i].in), cases[i].root, &p, err, sizeof err);
        if (cases[i].want) {
            CHECK(rc == 0);
            CHECK(rc == 0 && !strcmp(p.rel, cases[i].want) && p.len == strlen(cases[i].want));
            if (rc != 0 || strcmp(p.rel, cases[i].want))
                fprintf(stderr, "  path %s: %s\n", cases[i].in, rc ? err : p.rel);
        } else {
            CHECK(rc == -1 && err[0]);
        }
    }
    CHECK(tool_path_parse("a\0b", 3, NULL, &p, err, sizeof err) == -1 && strstr(err, "NUL"));
    char longp[TOOL_PATH_MAX + 2];
    memset(longp, 'a', sizeof longp);
    CHECK(tool_path_parse(longp, TOOL_PATH_MAX + 1, NULL, &p, err, sizeof err) == -1 &&
          strstr(err, "longer than"));
    CHECK(tool_path_parse(longp, 256, NULL, &p, err, sizeof err) == -1 &&
          strstr(err, "component longer"));
    CHECK(tool_path_parse(longp, 255, NULL, &p, err, sizeof err) == 0 && p.len == 255);
}

static void
test_glob(void)
{
    static const struct {
        const char *pattern, *path;
        int want;
    } cases[] = {
        {"*.rs", "main.rs", 1},
        {"*.rs", "src/main.rs", 0}, /* glob_search matches such a pattern with the name */
        {"src/*.rs", "src/main.rs", 1},
        {"src/*.rs", "src/a/main.rs", 0},
        {"src/**/*.rs", "src/main.rs", 1},
        {"src/**/*.rs", "src/a/b/main.rs", 1},
        {"src/**/*.rs", "srcx/main.rs", 0},
        {"**/x", "x", 1},
        {"**/x", "a/b/x", 1},
        {"**/x", "ax", 0},
        {"a/**", "a/b/c", 1},
        {"a/**", "b/c", 0},
        {"**", "any/thing", 1},
        {"a**b", "axxb", 1},
        {"a**b", "ax/b", 0},
        {"?.c", "a.c", 1},
        {"?.c", "ab.c", 0},
        {"[ab].c", "b.c", 1},
        {"[!ab].c", "b.c", 0},
        {"[^ab].c", "c.c", 1},
        {"[a-c]x", "bx", 1},
        {"[]]x", "]x", 1},
        {"[a", "[a", 1},
        {"\\*", "*", 1},
        {"\\*", "a", 0},
        {"", "", 1},
        {"a", "", 0},
        {"*", "", 1},
        {"a/*/c", "a//c", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = tool_glob_match(cases[i].pattern, strlen(cases[i].pattern), cases[i].path,
                                  strlen(cases[i].path));
        CHECK(got == cases[i].want);
        if (got != cases[i].want)
            fprintf(stderr, "  glob %s on %s: %d\n", cases[i].pattern, cases[i].path, got);
    }
    /* Linear, not exponential: many stars against a long path that fails. */
    char pat[TOOL_PATTERN_MAX_BYTES], path[4000];
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = i % 2 ? '*' : 'a';
    memset(path, 'a', sizeof path);
    int64_t t0 = util_monotonic_us();
    CHECK(tool_glob_match(pat, sizeof pat - 1, path, sizeof path) == 1);
    path[sizeof path - 1] = 'b';
    CHECK(tool_glob_match(pat, sizeof pat - 1, path, sizeof path) == 0);
    CHECK(tool_glob_match(pat, sizeof pat, path, sizeof path) == 1);
    CHECK(!bounded() || util_monotonic_us() - t0 < 2000000);
}

static void
test_text(void)
{
    char *out;
    size_t len;
    CHECK(tool_text_replace("abab", 4, "ab", 2, "x", 1, 0, 100, &out, &len) == 1);
    CHECK(out && !strcmp(out, "xab") && len == 3);
    free(out);
    CHECK(tool_text_replace("aaaa", 4, "aa", 2, "b", 1, 1, 100, &out, &len) == 2);
    CHECK(out && !strcmp(out, "bb"));
    free(out);
    CHECK(tool_text_replace("abc", 3, "x", 1, "y", 1, 1, 100, &out, &len) == 0 && out == NULL);
    CHECK(tool_text_replace("aaaa", 4, "a", 1, "bbbb", 4, 1, 15, &out, &len) == -1);
    CHECK(tool_text_replace("aaaa", 4, "a", 1, "bbbb", 4, 1, 16, &out, &len) == 4 && len == 16);
    free(out);
    CHECK(tool_text_count("aaa", 3, "aa", 2) == 1);
}

/* ---- the tools --------------------------------------------------------- */

static void
test_table(void)
{
    CHECK(tool_files_count() == 7);
    static const char *const names[] = {"read_file",  "write_file",  "edit_file",  "apply_patch",
                                        "list_files", "glob_search", "grep_search"};
    for (size_t i = 0; i < tool_files_count(); i++) {
        const struct tool_spec *s = tool_files_spec(i);
        CHECK_STR(s->name, names[i]);
        CHECK(tool_files_find(names[i]) == s);
        json_t *schema = json_loads(s->schema_json, 0, NULL);
        CHECK(schema != NULL);
        CHECK_STR(json_string_value(json_object_get(schema, "type")), "object");
        CHECK(json_is_false(json_object_get(schema, "additionalProperties")));
        CHECK(s->description && s->description[0]);
        CHECK(s->mutates == (i >= 1 && i <= 3));
        /* the permission engine's list of the runner's own tools holds it */
        CHECK(util_in_list(s->name, perm_builtin_tools));
        json_decref(schema);
    }
    CHECK(tool_files_spec(7) == NULL);
    CHECK(tool_files_find("bash") == NULL);
    /* upstream's runtime checks before the tool runs */
    REFUSED(call("bash", "{}"), "unknown file tool bash");
    REFUSED(callt("read_file", "[1]"), "tool input must be a JSON object");
    REFUSED(call("read_file", "{}"), "missing required tool input field path");
    REFUSED(call("read_file", "{s:i}", "path", 1), "tool input field path has invalid type");
    REFUSED(call("read_file", "{s:s, s:s}", "path", "a", "mode", "x"),
            "unexpected tool input field mode");
    REFUSED(call("read_file", "{s:s, s:s}", "path", "a", "start_line", "2"),
            "tool input field start_line has invalid type");
    REFUSED(call("apply_patch", "{s:[i]}", "hunks", 1), "tool input field hunks has invalid type");
    REFUSED(call("apply_patch", "{s:[{s:s, s:s}]}", "hunks", "path", "a", "old_text", "x"),
            "missing required tool input field new_text");
    REFUSED(call("apply_patch", "{s:[{s:s, s:s, s:s, s:i}]}", "hunks", "path", "a", "old_text", "x",
                 "new_text", "y", "extra", 1),
            "unexpected tool input field extra");
}

static void
test_read_file(void)
{
    put("src/example.txt", "alpha\nbeta\ngamma\n");
    json_t *r = call("read_file", "{s:s, s:i, s:i}", "path", "src/example.txt", "start_line", 2,
                     "line_count", 1);
    ACCEPTED(r);
    CHECK_STR(str(r, "content"), "beta");
    CHECK_STR(str(r, "path"), "src/example.txt");
    CHECK(num(r, "start_line") == 2 && num(r, "line_count") == 1 && num(r, "bytes_read") == 17);
    CHECK_STR(str(r, "encoding"), "utf-8");
    CHECK(json_is_false(json_object_get(r, "binary")) &&
          json_is_false(json_object_get(r, "truncated")));
    char sha[65];
    sha_of("alpha\nbeta\ngamma\n", 17, sha);
    CHECK_STR(str(r, "sha256"), sha);
    json_decref(r);

    r = call("read_file", "{s:s}", "path", "src/example.txt");
    CHECK_STR(str(r, "content"), "alpha\nbeta\ngamma");
    CHECK(num(r, "line_count") == 3 && num(r, "start_line") == 1);
    json_decref(r);
    r = call("read_file", "{s:s, s:i, s:n}", "path", "./src//example.txt", "start_line", 0,
             "line_count");
    CHECK_STR(str(r, "content"), "alpha\nbeta\ngamma");
    json_decref(r);
    r = call("read_file", "{s:s, s:i}", "path", "src/example.txt", "start_line", 9);
    CHECK_STR(str(r, "content"), "");
    CHECK(num(r, "start_line") == 9 && num(r, "line_count") == 0);
    json_decref(r);
    r = call("read_file", "{s:s, s:i, s:f}", "path", "src/example.txt", "start_line", -3,
             "line_count", 1.5); /* upstream's as_u64: no value */
    CHECK_STR(str(r, "content"), "alpha\nbeta\ngamma");
    json_decref(r);

    put("crlf.txt", "a\r\nb\r\nc\r");
    r = call("read_file", "{s:s}", "path", "crlf.txt");
    CHECK_STR(str(r, "content"), "a\nb\nc\r");
    json_decref(r);
    put("empty.txt", "");
    r = call("read_file", "{s:s}", "path", "empty.txt");
    CHECK_STR(str(r, "content"), "");
    CHECK(num(r, "line_count") == 0);
    json_decref(r);

    /* the absolute path of a file inside */
    char abs[PATH_MAX * 2];
    snprintf(abs, sizeof abs, "%s/src/example.txt", wsdir);
    r = call("read_file", "{s:s}", "path", abs);
    ACCEPTED(r);
    CHECK_STR(str(r, "path"), "src/example.txt");
    json_decref(r);

    /* binary */
    put_at(wsdir, "binary.bin", "\xff\x00\x41", 3);
    r = call("read_file", "{s:s, s:b}", "path", "binary.bin", "include_base64", 1);
    ACCEPTED(r);
    CHECK(json_is_true(json_object_get(r, "binary")));
    CHECK_STR(str(r, "encoding"), "binary");
    CHECK_STR(str(r, "content"), "");
    CHECK(num(r, "bytes_read") == 3 && num(r, "line_count") == 0);
    CHECK_STR(str(r, "content_base64"), "/wBB");
    json_decref(r);
    /* NUL is valid UTF-8, as upstream's from_utf8 has it */
    put_at(wsdir, "nul.txt", "a\0b", 3);
    r = call("read_file", "{s:s}", "path", "nul.txt");
    CHECK(json_is_false(json_object_get(r, "binary")));
    CHECK(json_string_length(json_object_get(r, "content")) == 3);
    json_decref(r);

    /* a large file: content capped, later lines reachable */
    size_t big = 300 * 1024;
    char *text = malloc(big + 64);
    size_t n = 0;
    for (int line = 1; n < big; line++)
        n += (size_t)sprintf(text + n, "line %06d\n", line);
    put_at(wsdir, "big.txt", text, n);
    r = call("read_file", "{s:s}", "path", "big.txt");
    CHECK(json_is_true(json_object_get(r, "truncated")));
    CHECK(json_string_length(json_object_get(r, "content")) <= TOOL_READ_CONTENT_BYTES);
    json_decref(r);
    r = call("read_file", "{s:s, s:i, s:i}", "path", "big.txt", "start_line", 25000, "line_count",
             2);
    CHECK_STR(str(r, "content"), "line 025000\nline 025001");
    CHECK(json_is_false(json_object_get(r, "truncated")));
    json_decref(r);
    free(text);
    /* over the read window: the window, and truncated */
    text = malloc(TOOL_READ_WINDOW_BYTES + 10);
    memset(text, 'x', TOOL_READ_WINDOW_BYTES + 10);
    memcpy(text + TOOL_READ_WINDOW_BYTES - 1, "\xc3\xa9", 2); /* é across the window's end */
    put_at(wsdir, "huge.txt", text, TOOL_READ_WINDOW_BYTES + 10);
    free(text);
    r = call("read_file", "{s:s, s:i}", "path", "huge.txt", "line_count", 0);
    ACCEPTED(r);
    CHECK(json_is_false(json_object_get(r, "binary")));
    CHECK(json_is_true(json_object_get(r, "truncated")));
    CHECK(num(r, "bytes_read") == TOOL_READ_WINDOW_BYTES - 1);
    json_decref(r);

    /* refusals */
    REFUSED(call("read_file", "{s:s}", "path", "src"), "refusing to read directory path src");
    REFUSED(call("read_file", "{s:s}", "path", "."), "refusing to read directory path .");
    REFUSED(call("read_file", "{s:s}", "path", "missing.txt"), "failed to open missing.txt");
    REFUSED(call("read_file", "{s:s}", "path", "src/example.txt/x"), "failed to open");
    char fifo[PATH_MAX * 2];
    snprintf(fifo, sizeof fifo, "%s/fifo", wsdir);
    mkfifo(fifo, 0600);
    REFUSED(call("read_file", "{s:s}", "path", "fifo"), "not a regular file");

    /* links inside the workspace to inside it: followed while relative */
    link_at("src/example.txt", "alias.txt");
    r = call("read_file", "{s:s}", "path", "alias.txt");
    ACCEPTED(r);
    CHECK_STR(str(r, "content"), "alpha\nbeta\ngamma");
    json_decref(r);
    link_at("src", "srclink");
    r = call("read_file", "{s:s}", "path", "srclink/example.txt");
    ACCEPTED(r);
    json_decref(r);
    snprintf(abs, sizeof abs, "%s/src/example.txt", wsdir);
    link_at(abs, "abslink.txt"); /* absolute, even to inside: refused by RESOLVE_BENEATH */
    REFUSED(call("read_file", "{s:s}", "path", "abslink.txt"), "escapes workspace root");
}

static void
test_write_file(void)
{
    json_t *r = call("write_file", "{s:s, s:s}", "path", "new/dir/file.txt", "content", "hello");
    ACCEPTED(r);
    CHECK_STR(str(r, "path"), "new/dir/file.txt");
    CHECK(num(r, "bytes_written") == 5);
    char sha[65];
    sha_of("hello", 5, sha);
    CHECK_STR(str(r, "sha256"), sha);
    json_decref(r);
    CHECK(same_text("new/dir/file.txt", "hello"));

    r = call("write_file", "{s:s, s:s}", "path", "binary2.bin", "content_base64", "AAH+");
    ACCEPTED(r);
    CHECK(num(r, "bytes_written") == 3);
    json_decref(r);
    size_t len;
    char *b = slurp_at(wsdir, "binary2.bin", &len);
    CHECK(len == 3 && !memcmp(b, "\x00\x01\xfe", 3));
    free(b);
    r = call("write_file", "{s:s, s:s, s:n}", "path", "n.txt", "content", "x", "content_base64");
    ACCEPTED(r);
    json_decref(r);

    REFUSED(call("write_file", "{s:s, s:s, s:s}", "path", "x.txt", "content", "a", "content_base64",
                 "YQ=="),
            "provide exactly one of content or content_base64");
    REFUSED(call("write_file", "{s:s}", "path", "x.txt"),
            "missing one of content or content_base64");
    REFUSED(call("write_file", "{s:s, s:s}", "path", "x.txt", "content_base64", "not base64!"),
            "content_base64 is not valid base64");
    CHECK(!exists(wsdir, "x.txt"));

    /* expected_sha256 */
    REFUSED(call("write_file", "{s:s, s:s, s:s}", "path", "binary2.bin", "content", "new",
                 "expected_sha256", "not-the-current-digest"),
            "expected_sha256 mismatch");
    b = slurp_at(wsdir, "binary2.bin", &len);
    CHECK(len == 3 && !memcmp(b, "\x00\x01\xfe", 3));
    free(b);
    sha_of("\x00\x01\xfe", 3, sha);
    r = call("write_file", "{s:s, s:s, s:s}", "path", "binary2.bin", "content", "new",
             "expected_sha256", sha);
    ACCEPTED(r);
    json_decref(r);
    CHECK(same_text("binary2.bin", "new"));
    REFUSED(call("write_file", "{s:s, s:s, s:s}", "path", "nodir/x.txt", "content", "a",
                 "expected_sha256", sha),
            "failed to open");
    CHECK(!exists(wsdir, "nodir"));

    /* the mode of the file replaced is kept */
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/script.sh", wsdir);
    put("script.sh", "#!/bin/sh\n");
    chmod(path, 0750);
    r = call("write_file", "{s:s, s:s}", "path", "script.sh", "content", "#!/bin/sh\necho\n");
    ACCEPTED(r);
    json_decref(r);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0750);

    /* limits and refusals */
    char *huge = malloc(TOOL_WRITE_MAX_BYTES + 2);
    memset(huge, 'a', TOOL_WRITE_MAX_BYTES + 1);
    huge[TOOL_WRITE_MAX_BYTES + 1] = '\0';
    REFUSED(call("write_file", "{s:s, s:s}", "path", "huge-w.txt", "content", huge),
            "content is larger than 4194304 bytes");
    huge[TOOL_WRITE_MAX_BYTES] = '\0';
    r = call("write_file", "{s:s, s:s}", "path", "huge-w.txt", "content", huge);
    ACCEPTED(r);
    json_decref(r);
    free(huge);
    REFUSED(call("write_file", "{s:s, s:s}", "path", "src", "content", "x"),
            "refusing to modify directory path src");
    REFUSED(call("write_file", "{s:s, s:s}", "path", ".", "content", "x"), "path has no file name");
    REFUSED(call("write_file", "{s:s, s:s}", "path", "src/example.txt/x", "content", "x"),
            "Not a directory");
    REFUSED(call("write_file", "{s:s, s:s}", "path", ".kheish-tmp-1-2-3", "content", "x"),
            "temporary file");
    REFUSED(call("write_file", "{s:s, s:s}", "path", "alias.txt", "content", "x"),
            "refusing to modify symlink path alias.txt");
    CHECK(same_text("src/example.txt", "alpha\nbeta\ngamma\n"));
    CHECK(no_temp_left(""));
}

static void
test_edit_file(void)
{
    put("edit.txt", "alpha beta alpha");
    json_t *r = call("edit_file", "{s:s, s:s, s:s}", "path", "edit.txt", "old_text", "alpha",
                     "new_text", "A");
    ACCEPTED(r);
    CHECK(num(r, "replacements") == 1);
    char sha[65];
    sha_of("A beta alpha", 12, sha);
    CHECK_STR(str(r, "sha256"), sha);
    CHECK_STR(str(r, "path"), "edit.txt");
    json_decref(r);
    CHECK(same_text("edit.txt", "A beta alpha"));
    put("edit.txt", "alpha beta alpha");
    r = call("edit_file", "{s:s, s:s, s:s, s:b}", "path", "edit.txt", "old_text", "alpha",
             "new_text", "A", "replace_all", 1);
    CHECK(num(r, "replacements") == 2);
    json_decref(r);
    CHECK(same_text("edit.txt", "A beta A"));

    REFUSED(call("edit_file", "{s:s, s:s, s:s}", "path", "edit.txt", "old_text", "zeta", "new_text",
                 "x"),
            "edit target not found in edit.txt");
    REFUSED(
        call("edit_file", "{s:s, s:s, s:s}", "path", "edit.txt", "old_text", "", "new_text", "x"),
        "old_text must not be empty");
    REFUSED(
        call("edit_file", "{s:s, s:s, s:s}", "path", "none.txt", "old_text", "a", "new_text", "x"),
        "failed to open none.txt");
    REFUSED(call("edit_file", "{s:s, s:s, s:s, s:s}", "path", "edit.txt", "old_text", "A",
                 "new_text", "x", "expected_sha256", "00"),
            "expected_sha256 mismatch for edit.txt");
    REFUSED(call("edit_file", "{s:s, s:s, s:s}", "path", "binary.bin", "old_text", "A", "new_text",
                 "x"),
            "binary.bin is not valid UTF-8");
    REFUSED(call("edit_file", "{s:s, s:s, s:s}", "path", "alias.txt", "old_text", "alpha",
                 "new_text", "x"),
            "refusing to modify symlink path alias.txt");
    REFUSED(
        call("edit_file", "{s:s, s:s, s:s}", "path", "huge.txt", "old_text", "x", "new_text", "y"),
        "refusing to edit huge.txt because it is larger than 4194304 bytes");
    char *aa = malloc(1024 * 1024);
    memset(aa, 'a', 1024 * 1024);
    put_at(wsdir, "aa.txt", aa, 1024 * 1024);
    free(aa);
    REFUSED(call("edit_file", "{s:s, s:s, s:s, s:b}", "path", "aa.txt", "old_text", "a", "new_text",
                 "aaaaa", "replace_all", 1),
            "would be larger than");
    CHECK(same_text("src/example.txt", "alpha\nbeta\ngamma\n"));
    CHECK(same_text("edit.txt", "A beta A"));
    CHECK(no_temp_left(""));
}

static void
test_apply_patch(void)
{
    put("p/a.txt", "alpha\nbeta\n");
    put("p/b.txt", "gamma\n");
    json_t *r = callt("apply_patch", "{\"hunks\":["
                                     "{\"path\":\"p/a.txt\",\"old_text\":\"alpha\",\"new_text\":"
                                     "\"ALPHA\"},"
                                     "{\"path\":\"p/a.txt\",\"old_text\":\"beta\",\"new_text\":"
                                     "\"BETA\"}]}");
    ACCEPTED(r);
    CHECK(num(r, "file_count") == 1);
    json_t *f0 = json_array_get(json_object_get(r, "changed_files"), 0);
    CHECK_STR(str(f0, "path"), "p/a.txt");
    CHECK(num(f0, "hunks") == 2 && num(f0, "replacements") == 2 && num(f0, "bytes_written") == 11);
    json_decref(r);
    CHECK(same_text("p/a.txt", "ALPHA\nBETA\n"));

    /* every hunk is checked before anything is written */
    REFUSED(callt("apply_patch", "{\"hunks\":["
                                 "{\"path\":\"p/a.txt\",\"old_text\":\"ALPHA\",\"new_text\":"
                                 "\"alpha\"},"
                                 "{\"path\":\"p/b.txt\",\"old_text\":\"missing\",\"new_text\":"
                                 "\"delta\"}]}"),
            "patch hunk target not found in p/b.txt after applying previous hunks");
    CHECK(same_text("p/a.txt", "ALPHA\nBETA\n"));
    CHECK(same_text("p/b.txt", "gamma\n"));

    /* a hunk sees the previous ones; two files, in path order; one inode
     * named twice is one file */
    link_at("a.txt", "p/a-alias.txt");
    r = callt("apply_patch", "{\"hunks\":["
                             "{\"path\":\"p/b.txt\",\"old_text\":\"gamma\",\"new_text\":\"g1\"},"
                             "{\"path\":\"p/b.txt\",\"old_text\":\"g1\",\"new_text\":\"g2\"},"
                             "{\"path\":\"./p/x/../a.txt\",\"old_text\":\"A\",\"new_text\":\"a\","
                             "\"replace_all\":true}]}");
    ACCEPTED(r);
    json_t *files = json_object_get(r, "changed_files");
    CHECK(num(r, "file_count") == 2 && json_array_size(files) == 2);
    CHECK_STR(str(json_array_get(files, 0), "path"), "p/a.txt");
    CHECK_STR(str(json_array_get(files, 1), "path"), "p/b.txt");
    CHECK(num(json_array_get(files, 0), "replacements") == 3);
    json_decref(r);
    CHECK(same_text("p/a.txt", "aLPHa\nBETa\n"));
    CHECK(same_text("p/b.txt", "g2\n"));
    /* the hard-link refusal covers a second name made by the test itself,
     * so use the patch's own path normalization for the two-names case */
    r = callt("apply_patch", "{\"hunks\":["
                             "{\"path\":\"p/a.txt\",\"old_text\":\"aLPHa\",\"new_text\":\"one\"},"
                             "{\"path\":\"p//a.txt\",\"old_text\":\"one\",\"new_text\":\"two\"}]}");
    ACCEPTED(r);
    CHECK(num(r, "file_count") == 1);
    json_decref(r);
    CHECK(same_text("p/a.txt", "two\nBETa\n"));

    char sha[65];
    sha_of("g2\n", 3, sha);
    r = call("apply_patch", "{s:[{s:s, s:s, s:s, s:s}]}", "hunks", "path", "p/b.txt", "old_text",
             "g2", "new_text", "g3", "expected_sha256", sha);
    ACCEPTED(r);
    json_decref(r);
    REFUSED(call("apply_patch", "{s:[{s:s, s:s, s:s, s:s}]}", "hunks", "path", "p/b.txt",
                 "old_text", "g3", "new_text", "g4", "expected_sha256", sha),
            "expected_sha256 mismatch for p/b.txt");
    REFUSED(call("apply_patch", "{s:[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]}", "hunks", "path",
                 "p/b.txt", "old_text", "g3", "new_text", "g4", "expected_sha256", "aa", "path",
                 "p/b.txt", "old_text", "g4", "new_text", "g5", "expected_sha256", "bb"),
            "expected_sha256 mismatch");
    REFUSED(call("apply_patch", "{s:[]}", "hunks"), "apply_patch requires at least one hunk");
    REFUSED(call("apply_patch", "{s:[{s:s, s:s, s:s}]}", "hunks", "path", "p/b.txt", "old_text", "",
                 "new_text", "x"),
            "old_text must not be empty for p/b.txt");
    REFUSED(call("apply_patch", "{s:[{s:s, s:s, s:s}]}", "hunks", "path", "p/none.txt", "old_text",
                 "a", "new_text", "x"),
            "failed to prepare p/none.txt");
    REFUSED(call("apply_patch", "{s:[{s:s, s:s, s:s}]}", "hunks", "path", "p/a-alias.txt",
                 "old_text", "two", "new_text", "x"),
            "refusing to modify symlink path");
    json_t *many = json_array();
    for (int i = 0; i <= TOOL_PATCH_MAX_HUNKS; i++)
        json_array_append_new(many, json_pack("{s:s, s:s, s:s}", "path", "p/b.txt", "old_text", "g",
                                              "new_text", "g"));
    REFUSED(call("apply_patch", "{s:o}", "hunks", many), "apply_patch takes at most 256 hunks");
    many = json_array();
    for (int i = 0; i <= TOOL_PATCH_MAX_FILES; i++) {
        char name[64];
        snprintf(name, sizeof name, "p/files/f%02d", i);
        put(name, "x");
        json_array_append_new(
            many, json_pack("{s:s, s:s, s:s}", "path", name, "old_text", "x", "new_text", "y"));
    }
    REFUSED(call("apply_patch", "{s:o}", "hunks", many), "apply_patch changes at most 64 files");
    CHECK(same_text("p/files/f00", "x"));
    many = json_array();
    char *big = malloc(TOOL_EDIT_MAX_BYTES);
    memset(big, 'x', TOOL_EDIT_MAX_BYTES);
    for (int i = 0; i * TOOL_EDIT_MAX_BYTES <= TOOL_PATCH_MAX_TOTAL_BYTES; i++) {
        char name[64];
        snprintf(name, sizeof name, "p/big/f%d", i);
        put_at(wsdir, name, big, TOOL_EDIT_MAX_BYTES);
        json_array_append_new(
            many, json_pack("{s:s, s:s, s:s}", "path", name, "old_text", "x", "new_text", "y"));
    }
    free(big);
    REFUSED(call("apply_patch", "{s:o}", "hunks", many),
            "apply_patch changes at most 16777216 bytes of files together");
    /* replace_all of one byte by another and back, 256 times, over 1 MiB:
     * 256 M replacements (over 4 MiB, a 14 s call). Refused, quickly. */
    size_t alen = 1024 * 1024;
    char *as = malloc(alen);
    memset(as, 'a', alen);
    put_at(wsdir, "p/ab.txt", as, alen);
    free(as);
    many = json_array();
    for (int i = 0; i < TOOL_PATCH_MAX_HUNKS; i++)
        json_array_append_new(many, json_pack("{s:s, s:s, s:s, s:b}", "path", "p/ab.txt",
                                              "old_text", i % 2 ? "b" : "a", "new_text",
                                              i % 2 ? "a" : "b", "replace_all", 1));
    int64_t t0 = util_monotonic_us();
    REFUSED(call("apply_patch", "{s:o}", "hunks", many), "replacements");
    printf("apply_patch of 256 M replacements: %.2f s\n", (double)(util_monotonic_us() - t0) / 1e6);
    CHECK(!bounded() || util_monotonic_us() - t0 < 1000 * 1000);
    CHECK(same_text("p/b.txt", "g3\n"));
    CHECK(no_temp_left(""));
}

static void
test_list_and_glob(void)
{
    put("l/top.txt", "t");
    put("l/src/a.c", "int a;");
    put("l/src/x/y/b.c", "int b;");
    put("l/src/x/y/c.h", "int c;");
    put("l/.hidden", "h");
    put("l/.git/config", "g");
    link_at("top.txt", "l/link.txt");
    json_t *r = call("list_files", "{s:s}", "base", "l");
    ACCEPTED(r);
    CHECK_STR(str(r, "base"), "l");
    json_t *paths = json_object_get(r, "paths");
    CHECK(json_array_size(paths) == 4);
    CHECK_STR(json_string_value(json_array_get(paths, 0)), "src/a.c");
    CHECK_STR(json_string_value(json_array_get(paths, 1)), "src/x/y/b.c");
    CHECK_STR(json_string_value(json_array_get(paths, 2)), "src/x/y/c.h");
    CHECK_STR(json_string_value(json_array_get(paths, 3)), "top.txt");
    CHECK(json_is_false(json_object_get(r, "truncated")));
    json_decref(r);
    r = call("list_files", "{s:s, s:i}", "base", "l", "limit", 2);
    CHECK(json_array_size(json_object_get(r, "paths")) == 2);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    r = call("list_files", "{s:s}", "base", "l/.git"); /* a hidden base is listed */
    CHECK(json_array_size(json_object_get(r, "paths")) == 1);
    json_decref(r);
    for (int i = 0; i < 250; i++) {
        char name[64];
        snprintf(name, sizeof name, "many/f%03d", i);
        put(name, "x");
    }
    r = call("list_files", "{s:s, s:i}", "base", "many", "limit", 1000);
    CHECK(json_array_size(json_object_get(r, "paths")) == TOOL_MAX_RESULTS);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    r = call("list_files", "{}");
    ACCEPTED(r);
    CHECK_STR(str(r, "base"), ".");
    json_decref(r);
    /* depth */
    char deep[TOOL_PATH_MAX];
    size_t n = (size_t)snprintf(deep, sizeof deep, "deep");
    for (int i = 0; i < TOOL_WALK_MAX_DEPTH + 2; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "/d");
    snprintf(deep + n, sizeof deep - n, "/f.txt");
    put(deep, "deep");
    put("deep/shallow.txt", "s");
    r = call("list_files", "{s:s}", "base", "deep");
    CHECK(json_array_size(json_object_get(r, "paths")) == 1);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    REFUSED(call("list_files", "{s:s}", "base", "l/top.txt"), "base l/top.txt is not a directory");
    REFUSED(call("list_files", "{s:s}", "base", "nothere"), "failed to open nothere");

    r = call("glob_search", "{s:s, s:s}", "base", "l", "pattern", "*.c");
    ACCEPTED(r);
    CHECK_STR(str(r, "pattern"), "*.c");
    paths = json_object_get(r, "paths");
    CHECK(json_array_size(paths) == 2);
    CHECK_STR(json_string_value(json_array_get(paths, 1)), "src/x/y/b.c");
    json_decref(r);
    r = call("glob_search", "{s:s, s:s}", "base", "l", "pattern", "src/*.c");
    CHECK(json_array_size(json_object_get(r, "paths")) == 1);
    json_decref(r);
    r = call("glob_search", "{s:s, s:s}", "base", "l", "pattern", "src/**/*.[ch]");
    CHECK(json_array_size(json_object_get(r, "paths")) == 3);
    json_decref(r);
    r = call("glob_search", "{s:s, s:s}", "base", "l", "pattern", "/top.txt");
    CHECK(json_array_size(json_object_get(r, "paths")) == 1);
    json_decref(r);
    r = call("glob_search", "{s:s, s:s}", "base", "l", "pattern", "link.txt");
    CHECK(json_array_size(json_object_get(r, "paths")) == 0);
    json_decref(r);
    char longpat[TOOL_PATTERN_MAX_BYTES + 2];
    memset(longpat, '*', sizeof longpat - 1);
    longpat[sizeof longpat - 1] = '\0';
    REFUSED(call("glob_search", "{s:s}", "pattern", longpat), "pattern is longer than");
    REFUSED(call("glob_search", "{s:s%}", "pattern", "a\0b", (size_t)3), "NUL");

    /* hidden names are read too: they count against the walk's limits (or
     * a directory of millions of them is read to its end, past the
     * deadline) */
    put("hid/seen.txt", "s");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/hid", wsdir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i <= TOOL_WALK_MAX_ENTRIES; i++) {
        char name[32];
        snprintf(name, sizeof name, ".h%06d", i);
        close(openat(dfd, name, O_WRONLY | O_CREAT, 0644));
    }
    r = call("list_files", "{s:s}", "base", "hid");
    ACCEPTED(r);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    for (int i = 0; i <= TOOL_WALK_MAX_ENTRIES; i++) {
        char name[32];
        snprintf(name, sizeof name, ".h%06d", i);
        unlinkat(dfd, name, 0);
    }
    close(dfd);
}

static void
test_grep(void)
{
    put("g/a.txt", "alpha\nbeta\ndelta 42\nfoo( bar\n");
    put("g/sub/b.txt", "Alpha\r\nno\n");
    put_at(wsdir, "g/bin.dat", "alpha\0alpha", 11);
    json_t *r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "delta");
    ACCEPTED(r);
    json_t *m = json_object_get(r, "matches");
    CHECK(json_array_size(m) == 1);
    CHECK_STR(str(json_array_get(m, 0), "path"), "a.txt");
    CHECK(num(json_array_get(m, 0), "line") == 3);
    CHECK_STR(str(json_array_get(m, 0), "text"), "delta 42");
    json_decref(r);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "^be.a$");
    CHECK(json_array_size(json_object_get(r, "matches")) == 1);
    json_decref(r);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "\\d+$");
    CHECK(json_array_size(json_object_get(r, "matches")) == 1);
    json_decref(r);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "(?i)^ALPHA$");
    m = json_object_get(r, "matches");
    CHECK(json_array_size(m) == 2); /* a.txt and sub/b.txt (its "\r\n"), never bin.dat */
    CHECK_STR(str(json_array_get(m, 1), "text"), "Alpha");
    json_decref(r);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "foo(");
    CHECK(json_array_size(json_object_get(r, "matches")) == 1); /* no regex: a literal */
    json_decref(r);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "(a)\\1");
    CHECK(json_array_size(json_object_get(r, "matches")) == 0);
    json_decref(r);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "(a{99}){99}");
    ACCEPTED(r);
    json_decref(r);
    r = call("grep_search", "{s:s, s:s, s:i}", "base", "g", "pattern", "a", "limit", 2);
    CHECK(json_array_size(json_object_get(r, "matches")) == 2);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    char *line = malloc(5000);
    memset(line, 'z', 4999);
    line[4999] = '\0';
    put("g/long.txt", line);
    free(line);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "zzz");
    m = json_object_get(r, "matches");
    CHECK(json_array_size(m) == 1 && json_string_length(json_object_get(
                                         json_array_get(m, 0), "text")) == TOOL_GREP_TEXT_BYTES);
    json_decref(r);
    put_at(wsdir, "g/latin1.txt", "caf\xe9 needle\n", 12);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", "needle");
    m = json_object_get(r, "matches");
    CHECK(json_array_size(m) == 1);
    CHECK_STR(str(json_array_get(m, 0), "text"), "caf\xef\xbf\xbd needle");
    json_decref(r);
    /* a pattern whose automaton explodes: bounded in time and memory */
    size_t blen = 128 * 1024;
    char *ab = malloc(blen);
    for (size_t i = 0; i < blen; i++)
        ab[i] = i % 21 == 20 ? '\n' : "ab"[randombytes_uniform(2)];
    put_at(wsdir, "g3/ab.txt", ab, blen);
    free(ab);
    char explode[256] = "(a|b)*a";
    for (int i = 0; i < 20; i++)
        strcat(explode, "(a|b)");
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = util_monotonic_us();
    r = call("grep_search", "{s:s, s:s}", "base", "g3", "pattern", explode);
    ACCEPTED(r);
    CHECK(json_array_size(json_object_get(r, "matches")) == 0);
    json_decref(r);
    getrusage(RUSAGE_SELF, &ru1);
    printf("grep %s: %.2f s, peak memory +%ld KiB\n", explode,
           (double)(util_monotonic_us() - t0) / 1e6, ru1.ru_maxrss - ru0.ru_maxrss);
    CHECK(!bounded() || util_monotonic_us() - t0 < (int64_t)(TOOL_WALK_MAX_MS + 2000) * 1000);
    CHECK(!bounded() || ru1.ru_maxrss - ru0.ru_maxrss < 32 * 1024);
    /* repetition counts within bounds, but of a long group: regcomp alone
     * would take 200 MB (a literal search instead) */
    char wide[TOOL_PATTERN_MAX_BYTES + 1] = "(";
    memset(wide + 1, 'a', 1000);
    strcpy(wide + 1001, "){1000}");
    getrusage(RUSAGE_SELF, &ru0);
    r = call("grep_search", "{s:s, s:s}", "base", "g", "pattern", wide);
    ACCEPTED(r);
    CHECK(json_array_size(json_object_get(r, "matches")) == 0);
    json_decref(r);
    getrusage(RUSAGE_SELF, &ru1);
    printf("grep (a{1000 times}){1000}: peak memory +%ld KiB\n", ru1.ru_maxrss - ru0.ru_maxrss);
    CHECK(!bounded() || ru1.ru_maxrss - ru0.ru_maxrss < 32 * 1024);
    /* a file over the per-file budget is searched in part */
    size_t big = TOOL_GREP_FILE_BYTES + 100;
    char *b = malloc(big);
    memset(b, 'x', big);
    for (size_t i = 999; i < big; i += 1000)
        b[i] = '\n';
    memcpy(b + big - 20, "late-needle", 11);
    put_at(wsdir, "g2/big.txt", b, big);
    free(b);
    r = call("grep_search", "{s:s, s:s}", "base", "g2", "pattern", "late-needle");
    CHECK(json_array_size(json_object_get(r, "matches")) == 0);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    /* Long lines: glibc's regexec tries a pattern like "a.*c" from every
     * start of a line that does not match, in time quadratic in the line's
     * length (a 40 KiB line: 2 s; one of 8 MiB: a day). One 128 KiB line,
     * then a thousand 8000-byte lines: bounded by the walk's deadline,
     * checked between lines, and the start of a long line still matches. */
    size_t llen = 128 * 1024, nlines = 1000, lw = 8000;
    char *al = malloc(nlines * (lw + 1));
    memcpy(al, "needle", 6);
    memset(al + 6, 'a', llen - 6);
    put_at(wsdir, "g5/one-line.txt", al, llen);
    memset(al, 'a', nlines * (lw + 1));
    for (size_t i = 0; i < nlines; i++)
        al[i * (lw + 1) + lw] = '\n';
    put_at(wsdir, "g6/many-lines.txt", al, nlines * (lw + 1));
    free(al);
    const char *bases[] = {"g5", "g6"};
    for (size_t i = 0; i < 2; i++) {
        t0 = util_monotonic_us();
        r = call("grep_search", "{s:s, s:s}", "base", bases[i], "pattern", "a.*c");
        ACCEPTED(r);
        CHECK(json_array_size(json_object_get(r, "matches")) == 0);
        json_decref(r);
        printf("grep a.*c in %s: %.2f s\n", bases[i], (double)(util_monotonic_us() - t0) / 1e6);
        CHECK(!bounded() || util_monotonic_us() - t0 < (int64_t)(TOOL_WALK_MAX_MS + 2000) * 1000);
    }
    r = call("grep_search", "{s:s, s:s}", "base", "g5", "pattern", "^ne+dl[e]");
    CHECK(json_array_size(json_object_get(r, "matches")) == 1);
    json_decref(r);
}

/* ---- confinement --------------------------------------------------------- */

/* Every tool with path (or base) p must refuse, and say nothing of the
 * sentinel. */
static void
hostile(const char *p, size_t plen, int line)
{
    json_t *path = json_stringn(p, plen);
    json_t *outs[7];
    outs[0] = call("read_file", "{s:O}", "path", path);
    outs[1] = call("write_file", "{s:O, s:s}", "path", path, "content", "PWNED");
    outs[2] = call("edit_file", "{s:O, s:s, s:s}", "path", path, "old_text", "SENTINEL", "new_text",
                   "PWNED");
    outs[3] = call("apply_patch", "{s:[{s:O, s:s, s:s}]}", "hunks", "path", path, "old_text",
                   "SENTINEL", "new_text", "PWNED");
    outs[4] = call("list_files", "{s:O}", "base", path);
    outs[5] = call("glob_search", "{s:O, s:s}", "base", path, "pattern", "*");
    outs[6] = call("grep_search", "{s:O, s:s}", "base", path, "pattern", "SENTINEL");
    for (int i = 0; i < 7; i++) {
        char *dump = json_dumps(outs[i], 0);
        int ok = err_of(outs[i]) != NULL && dump && !strstr(dump, "SENTINEL-");
        CHECK(ok);
        if (!ok) {
            char shown[TOOL_SHOW_MAX + 8];
            tool_show(p, plen, shown);
            fprintf(stderr, "  line %d, tool %d, path %s: %s\n", line, i, shown, dump ? dump : "?");
        }
        free(dump);
        json_decref(outs[i]);
    }
    json_decref(path);
}

#define HOSTILE(p) hostile((p), strlen(p), __LINE__)

static void
test_hostile_paths(void)
{
    char buf[PATH_MAX * 2];
    /* the outside: <top>/outside, next to the workspace <top>/ws */
    put_at(outdir, "secret.txt", SENTINEL "\n", strlen(SENTINEL) + 1);
    put_at(outdir, "sub/secret2.txt", SENTINEL "-2\n", strlen(SENTINEL) + 3);
    put_at(outdir, "hard-target.txt", SENTINEL "-hard\n", strlen(SENTINEL) + 6);
    char hard[PATH_MAX * 2], target[PATH_MAX * 2];
    snprintf(target, sizeof target, "%s/hard-target.txt", outdir);
    snprintf(hard, sizeof hard, "%s/hard.txt", wsdir);
    CHECK(link(target, hard) == 0); /* a hard link in the workspace to a file outside */
    char *before = outside_snapshot();

    link_at("/", "rootlink");
    link_at("..", "up");
    link_at("c2", "c1");
    link_at("c3", "c2");
    link_at("../outside", "c3");
    snprintf(buf, sizeof buf, "%s/secret.txt", outdir);
    link_at(buf, "direct.txt");
    link_at("../outside/secret.txt", "direct-rel.txt");
    link_at(outdir, "outlink");
    put("sub/inner.txt", "inner");
    link_at("../../outside", "sub/planted");
    link_at("/proc/self/root", "magic");
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", ws);
    link_at(buf, "fdlink");
    link_at("sub/../../outside", "dotted");
    link_at("loop2", "loop1");
    link_at("loop1", "loop2");

    HOSTILE("../outside/secret.txt");
    HOSTILE("a/../../outside/secret.txt");
    HOSTILE("sub/../../outside/secret.txt");
    HOSTILE("..");
    HOSTILE("../");
    HOSTILE("/etc/passwd");
    HOSTILE("/proc/self/root/etc/passwd");
    HOSTILE("/proc/self/cwd/..");
    HOSTILE("/proc/self/cwd");
    snprintf(buf, sizeof buf, "/proc/self/fd/%d/../outside/secret.txt", ws);
    HOSTILE(buf);
    snprintf(buf, sizeof buf, "%s/secret.txt", outdir);
    HOSTILE(buf);
    snprintf(buf, sizeof buf, "%s/../outside/secret.txt", wsdir);
    HOSTILE(buf);
    snprintf(buf, sizeof buf, "%s/rootlink%s/secret.txt", wsdir, outdir);
    HOSTILE(buf);
    snprintf(buf, sizeof buf, "rootlink%s/secret.txt", outdir);
    HOSTILE(buf);
    snprintf(buf, sizeof buf, "rootlink%s", outdir);
    HOSTILE(buf);
    HOSTILE("rootlink/etc/passwd");
    HOSTILE("rootlink");
    HOSTILE("up/outside/secret.txt");
    HOSTILE("up/outside");
    HOSTILE("up");
    HOSTILE("c1/secret.txt");
    HOSTILE("c1");
    HOSTILE("direct.txt");
    HOSTILE("direct-rel.txt");
    HOSTILE("outlink/secret.txt");
    HOSTILE("outlink/sub/secret2.txt");
    HOSTILE("outlink");
    HOSTILE("sub/planted/secret.txt");
    HOSTILE("sub/planted/new/x.txt");
    HOSTILE("sub/planted");
    HOSTILE("magic/etc/passwd");
    snprintf(buf, sizeof buf, "magic%s/secret.txt", outdir);
    HOSTILE(buf);
    HOSTILE("fdlink/direct.txt");
    HOSTILE("dotted/secret.txt");
    HOSTILE("loop1");
    HOSTILE("loop1/x");
    HOSTILE("hard.txt");
    hostile("secret.txt\0../../outside/secret.txt", 35, __LINE__);
    hostile("\0", 1, __LINE__);
    char longp[6000];
    memset(longp, 'a', sizeof longp);
    hostile(longp, sizeof longp, __LINE__);
    hostile(longp, 300, __LINE__); /* one component over NAME_MAX */
    size_t n = 0;
    while (n + 3 < TOOL_PATH_MAX - 30)
        n += (size_t)snprintf(longp + n, sizeof longp - n, "../");
    n += (size_t)snprintf(longp + n, sizeof longp - n, "outside/secret.txt");
    hostile(longp, n, __LINE__);

    /* grep and list over the whole workspace never follow a link out, nor
     * read the hard link */
    json_t *r = call("grep_search", "{s:s}", "pattern", "SENTINEL");
    ACCEPTED(r);
    CHECK(json_array_size(json_object_get(r, "matches")) == 0);
    json_decref(r);
    r = call("list_files", "{}");
    char *dump = json_dumps(r, 0);
    CHECK(dump && !strstr(dump, "secret"));
    free(dump);
    json_decref(r);

    char *after = outside_snapshot();
    CHECK(!strcmp(before, after));
    if (strcmp(before, after))
        fprintf(stderr, "  the outside changed:\n%s---\n%s", before, after);
    free(before);
    free(after);
    /* ".." is resolved lexically before the kernel sees the path: through a
     * link, it names the workspace's own entry, never the link's parent */
    r = call("write_file", "{s:s, s:s}", "path", "fdlink/../lexical.txt", "content", "in");
    ACCEPTED(r);
    CHECK_STR(str(r, "path"), "lexical.txt");
    json_decref(r);
    CHECK(same_text("lexical.txt", "in"));
}

/* ---- races ------------------------------------------------------------------ */

struct swapper {
    char a[PATH_MAX * 2], b[PATH_MAX * 2];
    int paced;
    atomic_int stop;
    atomic_long swaps;
};

static void *
swap_loop(void *arg)
{
    struct swapper *s = arg;
    while (!atomic_load(&s->stop)) {
        if (renameat2(AT_FDCWD, s->a, AT_FDCWD, s->b, RENAME_EXCHANGE) == 0)
            atomic_fetch_add(&s->swaps, 1);
        if (s->paced) /* stable moments between the swaps, too */
            usleep((useconds_t)randombytes_uniform(200));
    }
    return NULL;
}

/* While a thread exchanges the names a and b (of the workspace), one a
 * directory or file and the other a link to the outside, as fast as it can
 * (or paced: with pauses of up to 200 us), the tools read and write through
 * a for ms milliseconds. Returns the number of calls that succeeded. */
static long
race(const char *a, const char *b, int ms, int paced, const char *file, int *leaked)
{
    struct swapper s = {.paced = paced};
    snprintf(s.a, sizeof s.a, "%s/%s", wsdir, a);
    snprintf(s.b, sizeof s.b, "%s/%s", wsdir, b);
    pthread_t th;
    pthread_create(&th, NULL, swap_loop, &s);
    long ok = 0, calls = 0;
    char deeper[256];
    snprintf(deeper, sizeof deeper, "%s/new/deeper/g.txt", a);
    int64_t end = util_monotonic_us() + (int64_t)ms * 1000;
    while (util_monotonic_us() < end) {
        json_t *outs[8];
        outs[0] = call("write_file", "{s:s, s:s}", "path", file, "content", "INSIDE\n");
        outs[1] = call("read_file", "{s:s}", "path", file);
        outs[2] = call("edit_file", "{s:s, s:s, s:s}", "path", file, "old_text", "INSIDE",
                       "new_text", "INSIDE");
        outs[3] = call("write_file", "{s:s, s:s}", "path", deeper, "content", "deeper");
        outs[4] = call("apply_patch", "{s:[{s:s, s:s, s:s}]}", "hunks", "path", file, "old_text",
                       "SENTINEL", "new_text", "PWNED");
        outs[5] = call("list_files", "{s:s}", "base", a);
        outs[6] = call("grep_search", "{s:s, s:s}", "base", a, "pattern", "SENTINEL");
        outs[7] = call("read_file", "{s:s}", "path", "fdlink/direct.txt");
        for (int i = 0; i < 8; i++) {
            char *dump = json_dumps(outs[i], 0);
            if (dump == NULL || strstr(dump, "SENTINEL-") || strstr(dump, "secret"))
                (*leaked)++, fprintf(stderr, "  leaked: %s\n", dump ? dump : "?");
            ok += err_of(outs[i]) == NULL;
            calls++;
            free(dump);
            json_decref(outs[i]);
        }
    }
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    printf("race %s <-> %s%s: %ld swaps, %ld of %ld calls succeeded\n", a, b,
           paced ? " (paced)" : "", (long)atomic_load(&s.swaps), ok, calls);
    CHECK(atomic_load(&s.swaps) > 100);
    CHECK(!paced || ok > 0); /* the real directory was reached too */
    return ok;
}

static void
test_races(void)
{
    char *before = outside_snapshot();
    int leaked = 0;
    put("race/f.txt", "INSIDE\n");
    link_at(outdir, "race-abs");
    link_at("../outside", "race-rel");
    put("leaf.txt", "INSIDE\n");
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/secret.txt", outdir);
    link_at(p, "leaf-link");
    static const char *const pairs[][3] = {
        {"race", "race-abs", "race/f.txt"},
        {"race", "race-rel", "race/f.txt"},
        {"leaf.txt", "leaf-link", "leaf.txt"},
    };
    for (size_t i = 0; i < 3; i++) {
        for (int paced = 0; paced < 2; paced++) {
            race(pairs[i][0], pairs[i][1], 400, paced, pairs[i][2], &leaked);
            /* the directory (or file) back under its own name */
            struct stat st;
            char x[PATH_MAX * 2], y[PATH_MAX * 2];
            snprintf(x, sizeof x, "%s/%s", wsdir, pairs[i][0]);
            snprintf(y, sizeof y, "%s/%s", wsdir, pairs[i][1]);
            if (lstat(x, &st) == 0 && S_ISLNK(st.st_mode))
                renameat2(AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE);
        }
    }
    CHECK(leaked == 0);
    char *after = outside_snapshot();
    CHECK(!strcmp(before, after));
    if (strcmp(before, after))
        fprintf(stderr, "  the outside changed:\n%s---\n%s", before, after);
    free(before);
    free(after);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    json_object_seed(1);
    const char *tmp = getenv("TMPDIR");
    snprintf(top, sizeof top, "%s/kheish-tool-files.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(top) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(wsdir, sizeof wsdir, "%s/ws", top);
    snprintf(outdir, sizeof outdir, "%s/outside", top);
    mkdir(wsdir, 0755);
    mkdir(outdir, 0755);
    ws = tool_files_open_workspace(wsdir);
    if (ws < 0) {
        perror(wsdir);
        return 1;
    }

    test_path_parse();
    test_glob();
    test_text();
    test_table();
    test_read_file();
    test_write_file();
    test_edit_file();
    test_apply_patch();
    test_list_and_glob();
    test_grep();
    test_hostile_paths();
    test_races();

    close(ws);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", top);
    else if (check_failures)
        fprintf(stderr, "kept %s\n", top);
    return check_report("tool_files");
}
