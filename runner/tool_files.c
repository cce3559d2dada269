/*
 * tool_files: the file tools' table, their input checks and the tools
 * themselves (tools.h); the confinement is tool_fs.c's, apply_patch is
 * tool_patch.c's.
 *
 * Names, input fields, defaults, results and error messages follow upstream
 * Kheish's crates/kheish-coding-tools (files.rs, editing.rs, search.rs,
 * patching.rs) and its runtime's input check (tools.rs,
 * validate_tool_input). Where this code differs, on purpose:
 *
 * - result paths are relative to the workspace (upstream: absolute host
 *   paths, which would tell the model where the workspace lives);
 * - read_file reads a window of TOOL_READ_WINDOW_BYTES and returns at most
 *   TOOL_READ_CONTENT_BYTES of it, so start_line reaches past the first
 *   128 KiB (upstream reads 128 KiB, then slices); a read cut inside a
 *   UTF-8 character is cut before it, not called binary;
 * - edit_file refuses an empty old_text (upstream inserts new_text at the
 *   start, or between every character with replace_all), as its
 *   apply_patch does;
 * - a write keeps the mode of the file it replaces (upstream: 0600);
 * - list_files, glob_search and grep_search walk the tree themselves, with
 *   ripgrep's defaults (hidden names skipped, symbolic links not followed,
 *   binary files not searched) and without .gitignore; grep_search takes
 *   the pattern as a POSIX extended regular expression (with \d, \D and a
 *   leading (?i) as ripgrep writes them), and falls back to a literal
 *   search when it is no valid one (as upstream falls back when rg refuses
 *   the pattern), and matches it against a line's first
 *   TOOL_GREP_LINE_BYTES only (grep_line); their results carry
 *   "truncated" when a limit cut them.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "tool_fs.h"
#include "util.h"

/* ---- the table ------------------------------------------------------------ */

#define P_PATH                                                                                     \
    "\"path\":{\"type\":\"string\",\"description\":\"Workspace-relative or absolute file path.\"}"
#define P_SHA(what)                                                                                \
    "\"expected_sha256\":{\"type\":\"string\",\"description\":\"Optional SHA-256 digest that the " \
    "existing file must match before " what ".\"}"
#define P_BASE "\"base\":{\"type\":\"string\",\"description\":\"Optional base directory.\"}"
#define P_LIMIT(what)                                                                              \
    "\"limit\":{\"type\":\"number\",\"description\":\"Maximum number of " what " to return.\"}"
#define OBJECT(props, required)                                                                    \
    "{\"type\":\"object\",\"properties\":{" props "},\"additionalProperties\":false,"              \
    "\"required\":[" required "]}"
#define OBJECT_OPT(props)                                                                          \
    "{\"type\":\"object\",\"properties\":{" props "},\"additionalProperties\":false}"

static int read_file(struct tool_ctx *c, const json_t *in, json_t **out);
static int write_file(struct tool_ctx *c, const json_t *in, json_t **out);
static int edit_file(struct tool_ctx *c, const json_t *in, json_t **out);
static int list_files(struct tool_ctx *c, const json_t *in, json_t **out);
static int glob_search(struct tool_ctx *c, const json_t *in, json_t **out);
static int grep_search(struct tool_ctx *c, const json_t *in, json_t **out);

static const struct tool_entry {
    struct tool_spec spec;
    int (*run)(struct tool_ctx *c, const json_t *in, json_t **out);
} tools[] = {
    {{"read_file", "Reads one file from the workspace with optional line slicing.",
      OBJECT(P_PATH ",\"start_line\":{\"type\":\"number\",\"description\":\"Optional 1-based "
                    "start line.\"},\"line_count\":{\"type\":\"number\",\"description\":"
                    "\"Optional number of lines to return.\"},\"include_base64\":{\"type\":"
                    "\"boolean\",\"description\":\"Include base64 content for binary or exact "
                    "byte reads.\"}",
             "\"path\""),
      0},
     read_file},
    {{"write_file",
      "Writes one file inside the workspace, creating parent directories when needed.",
      OBJECT(P_PATH ",\"content\":{\"type\":\"string\",\"description\":\"Full file contents.\"},"
                    "\"content_base64\":{\"type\":\"string\",\"description\":\"Base64-encoded "
                    "bytes to write instead of UTF-8 content.\"}," P_SHA("writing"),
             "\"path\""),
      1},
     write_file},
    {{"edit_file", "Applies an in-place string replacement to an existing file.",
      OBJECT(P_PATH ",\"old_text\":{\"type\":\"string\",\"description\":\"Existing text to "
                    "replace.\"},\"new_text\":{\"type\":\"string\",\"description\":\"Replacement "
                    "text.\"},\"replace_all\":{\"type\":\"boolean\",\"description\":\"Replace "
                    "every occurrence instead of only the first.\"}," P_SHA("editing"),
             "\"path\",\"old_text\",\"new_text\""),
      1},
     edit_file},
    {{"apply_patch",
      "Applies one or more exact text replacement hunks atomically per file after validating "
      "every hunk.",
      OBJECT("\"hunks\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
             "\"new_text\":{\"type\":\"string\"},\"old_text\":{\"type\":\"string\"},\"path\":{"
             "\"type\":\"string\"},\"expected_sha256\":{\"type\":\"string\"},\"replace_all\":{"
             "\"type\":\"boolean\"}},\"required\":[\"new_text\",\"old_text\",\"path\"],"
             "\"additionalProperties\":false},\"description\":\"Ordered hunks with path, "
             "old_text, new_text, and optional replace_all.\"}",
             "\"hunks\""),
      1},
     tool_apply_patch},
    {{"list_files", "Lists files under a workspace directory.",
      OBJECT_OPT(P_BASE "," P_LIMIT("paths")), 0},
     list_files},
    {{"glob_search", "Finds files whose relative paths match a glob pattern.",
      OBJECT("\"pattern\":{\"type\":\"string\",\"description\":\"Glob pattern, for example "
             "`src/**/*.rs`.\"}," P_BASE "," P_LIMIT("paths"),
             "\"pattern\""),
      0},
     glob_search},
    {{"grep_search", "Searches text across workspace files using ripgrep semantics when available.",
      OBJECT("\"pattern\":{\"type\":\"string\",\"description\":\"Search pattern.\"}," P_BASE
             "," P_LIMIT("matches"),
             "\"pattern\""),
      0},
     grep_search},
};

#define NTOOLS (sizeof tools / sizeof tools[0])

size_t
tool_files_count(void)
{
    return NTOOLS;
}

const struct tool_spec *
tool_files_spec(size_t i)
{
    return i < NTOOLS ? &tools[i].spec : NULL;
}

static const struct tool_entry *
find(const char *name)
{
    for (size_t i = 0; name && i < NTOOLS; i++)
        if (!strcmp(tools[i].spec.name, name))
            return &tools[i];
    return NULL;
}

const struct tool_spec *
tool_files_find(const char *name)
{
    const struct tool_entry *e = find(name);
    return e ? &e->spec : NULL;
}

int
tool_files_open_workspace(const char *path)
{
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* ---- input checks (upstream's validate_tool_input) ------------------------ */

static int check_object(const json_t *schema, const json_t *obj, const char *where, char *err,
                        size_t errlen);

/* 1 when v is of the schema's type (and, for arrays and objects, so is all
 * inside it); why says what inside was not. */
static int
matches(const json_t *schema, const json_t *v, const char *where, char *why, size_t whylen)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (type == NULL)
        return 1;
    if (!strcmp(type, "string"))
        return json_is_string(v);
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(type, "object"))
        return json_is_object(v) && check_object(schema, v, where, why, whylen) == 0;
    if (!strcmp(type, "array")) {
        if (!json_is_array(v))
            return 0;
        const json_t *items = json_object_get(schema, "items");
        for (size_t i = 0; items && i < json_array_size(v); i++) {
            char at[64];
            snprintf(at, sizeof at, "%s[%zu]", where, i);
            if (!matches(items, json_array_get(v, i), at, why, whylen)) {
                if (why[0] == '\0')
                    snprintf(why, whylen, "%s has invalid type", at);
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

/* Every property of the schema present in obj has its type (null: absent,
 * for an optional one), the required ones are there, no other key is. */
static int
check_object(const json_t *schema, const json_t *obj, const char *where, char *err, size_t errlen)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *required = json_object_get(schema, "required");
    const char *key;
    json_t *prop;
    json_object_foreach((json_t *)props, key, prop)
    {
        const json_t *v = json_object_get(obj, key);
        int req = 0;
        for (size_t i = 0; i < json_array_size(required); i++)
            req |= !strcmp(json_string_value(json_array_get(required, i)), key);
        if (v == NULL && req) {
            snprintf(err, errlen, "%s%smissing required tool input field %s", where,
                     *where ? ": " : "", key);
            return -1;
        }
        if (v == NULL || (!req && json_is_null(v)))
            continue;
        char why[512] = "";
        if (!matches(prop, v, key, why, sizeof why)) {
            snprintf(err, errlen, "%s%stool input field %s has invalid type%s%s", where,
                     *where ? ": " : "", key, why[0] ? ": " : "", why);
            return -1;
        }
    }
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (json_object_get(props, key) == NULL) {
            char shown[TOOL_SHOW_MAX + 8];
            tool_show(key, strlen(key), shown);
            snprintf(err, errlen, "%s%sunexpected tool input field %s", where, *where ? ": " : "",
                     shown);
            return -1;
        }
    }
    return 0;
}

static int
check_input(const char *schema_json, const json_t *input, char *err, size_t errlen)
{
    if (!json_is_object(input)) {
        snprintf(err, errlen, "tool input must be a JSON object");
        return -1;
    }
    json_t *schema = json_loads(schema_json, 0, NULL);
    if (schema == NULL) {
        snprintf(err, errlen, "internal error: a tool schema does not parse");
        return -1;
    }
    int rc = check_object(schema, input, "", err, errlen);
    json_decref(schema);
    return rc;
}

int
tool_files_run(int ws, const char *name, const json_t *input, json_t **out)
{
    struct tool_ctx c;
    memset(&c, 0, sizeof c);
    c.ws = ws;
    *out = NULL;
    const struct tool_entry *e = find(name);
    int rc;
    if (e == NULL) {
        char shown[TOOL_SHOW_MAX + 8];
        tool_show(name ? name : "", name ? strlen(name) : 0, shown);
        rc = tool_fail(&c, "unknown file tool %s", shown);
    } else if (check_input(e->spec.schema_json, input, c.err, sizeof c.err) != 0) {
        rc = -1;
    } else {
        rc = e->run(&c, input, out);
    }
    if (rc == 0 && *out == NULL)
        rc = tool_fail(&c, "out of memory");
    if (rc != 0) {
        json_decref(*out);
        *out = json_pack("{s:o}", "error", util_json_str(c.err));
    }
    return rc == 0 ? 0 : -1;
}

/* ---- shared helpers ------------------------------------------------------- */

/* Field k of the input, NULL when absent or null (upstream's optional
 * fields). */
static const json_t *
field(const json_t *in, const char *k)
{
    const json_t *v = json_object_get(in, k);
    return json_is_null(v) ? NULL : v;
}

/* A non-negative integer field, else def (upstream's as_u64: a negative,
 * fractional or absent number is no value). */
static size_t
field_count(const json_t *in, const char *k, size_t def)
{
    const json_t *v = field(in, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return def;
    json_int_t n = json_integer_value(v);
    return (uint64_t)n > (uint64_t)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)n;
}

/* The path of field k (absent, null or "": the workspace itself). */
static int
field_path(struct tool_ctx *c, const json_t *in, const char *k, struct tool_path *p)
{
    const json_t *v = field(in, k);
    return tool_path_get(c, v ? json_string_value(v) : "", v ? json_string_length(v) : 0, p);
}

/* n bytes of UTF-8 text with invalid bytes replaced by U+FFFD. */
static json_t *
json_lossy(const char *s, size_t n)
{
    size_t valid = util_utf8_prefix(s, n);
    if (valid == n)
        return json_stringn(s, n);
    char *b = malloc(n * 3 + 1);
    if (b == NULL)
        return NULL;
    size_t o = 0, i = 0;
    while (i < n) {
        size_t k = util_utf8_prefix(s + i, n - i);
        memcpy(b + o, s + i, k);
        o += k, i += k;
        if (i < n) {
            memcpy(b + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    json_t *j = json_stringn(b, o);
    free(b);
    return j;
}

/* The longest prefix of s[0..n) of at most max bytes that does not split a
 * UTF-8 character (s is valid UTF-8). */
static size_t
utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

static json_t *
base64(const char *s, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    sodium_bin2base64(b, cap, (const unsigned char *)s, n, sodium_base64_VARIANT_ORIGINAL);
    json_t *j = json_string(b);
    free(b);
    return j;
}

/* Refuses when the file's bytes do not have the expected digest (NULL:
 * nothing expected). */
static int
check_sha(struct tool_ctx *c, const char *expected, const char *data, size_t len, const char *shown)
{
    if (expected == NULL)
        return 0;
    char actual[65], e[TOOL_SHOW_MAX + 8];
    util_sha256_hex(data, len, actual);
    if (strcasecmp(expected, actual) == 0)
        return 0;
    tool_show(expected, strlen(expected), e);
    return tool_fail(c, "expected_sha256 mismatch for %s: expected %s, actual %s", shown, e,
                     actual);
}

/* Writes data over the target (staged, then renamed into place). */
static int
replace(struct tool_ctx *c, struct tool_target *t, const char *data, size_t len)
{
    struct tool_stage s;
    if (tool_fs_stage(c, t, data, len, &s) != 0)
        return -1;
    return tool_fs_commit(c, t, &s);
}

/* ---- read_file ------------------------------------------------------------ */

/* The text of lines [first, first + count) of s (upstream's str::lines:
 * "\n" or "\r\n" ends a line, a last empty line is none), joined by "\n", at
 * most TOOL_READ_CONTENT_BYTES of it in b. Returns the number of lines in
 * the text; *cut = 1 when b could not hold it all. */
static size_t
slice_lines(const char *s, size_t n, size_t first, size_t count, char *b, size_t *blen, int *cut)
{
    size_t idx = 0, o = 0, taken = 0;
    const char *p = s, *end = s + n;
    *cut = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (nl && le > p && le[-1] == '\r')
            le--;
        if (idx >= first && idx - first < count) {
            size_t need = (taken ? 1 : 0) + (size_t)(le - p);
            if (!*cut && o + need <= TOOL_READ_CONTENT_BYTES) {
                if (taken)
                    b[o++] = '\n';
                memcpy(b + o, p, (size_t)(le - p));
                o += (size_t)(le - p);
            } else if (!*cut) {
                /* as much of this line as fits, whole characters only */
                char *tail = b + o;
                size_t room = TOOL_READ_CONTENT_BYTES - o;
                if (taken && room > 0)
                    *tail++ = '\n', room--, o++;
                size_t k = utf8_cut(p, (size_t)(le - p), room);
                memcpy(tail, p, k);
                o += k;
                *cut = 1;
            }
            taken++;
        }
        idx++;
        p = nl ? nl + 1 : end;
    }
    *blen = o;
    return taken;
}

static int
read_file(struct tool_ctx *c, const json_t *in, json_t **out)
{
    struct tool_path p;
    struct stat st;
    char *buf = NULL, *text = NULL;
    size_t len = 0;
    int over = 0, rc = -1;
    if (field_path(c, in, "path", &p) != 0)
        return -1;
    int fd = tool_fs_open_read(c, &p, &st);
    if (fd < 0)
        return -1;
    rc = tool_fs_read_fd(c, fd, TOOL_READ_WINDOW_BYTES, p.shown, &buf, &len, &over);
    close(fd);
    if (rc != 0)
        return -1;
    size_t valid = util_utf8_prefix(buf, len);
    if (over && valid + 4 > len)
        len = valid; /* the window's end split a character */
    char sha[65];
    util_sha256_hex(buf, len, sha);
    int include64 = json_is_true(field(in, "include_base64"));
    size_t raw64 = len < TOOL_READ_CONTENT_BYTES ? len : TOOL_READ_CONTENT_BYTES;
    if (util_utf8_prefix(buf, len) != len) {
        *out = json_pack("{s:o, s:i, s:i, s:s, s:I, s:s, s:s, s:b, s:b}", "path",
                         util_json_str(p.len ? p.rel : "."), "start_line", 1, "line_count", 0,
                         "content", "", "bytes_read", (json_int_t)len, "sha256", sha, "encoding",
                         "binary", "binary", 1, "truncated", over || (include64 && raw64 < len));
    } else {
        size_t first = field_count(in, "start_line", 1);
        first = first > 0 ? first - 1 : 0;
        size_t count = field_count(in, "line_count", SIZE_MAX);
        text = malloc(TOOL_READ_CONTENT_BYTES + 1);
        if (text == NULL) {
            rc = tool_fail(c, "out of memory");
            goto done;
        }
        size_t tlen;
        int cut;
        size_t lines = slice_lines(buf, len, first, count, text, &tlen, &cut);
        *out = json_pack("{s:o, s:I, s:I, s:o, s:I, s:s, s:s, s:b, s:b}", "path",
                         util_json_str(p.len ? p.rel : "."), "start_line", (json_int_t)first + 1,
                         "line_count", (json_int_t)lines, "content", json_stringn(text, tlen),
                         "bytes_read", (json_int_t)len, "sha256", sha, "encoding", "utf-8",
                         "binary", 0, "truncated", over || cut || (include64 && raw64 < len));
    }
    if (*out && include64)
        json_object_set_new(*out, "content_base64", base64(buf, raw64));
    rc = 0;
done:
    free(text);
    free(buf);
    return rc;
}

/* ---- write_file ----------------------------------------------------------- */

/* The bytes write_file is asked to write: *data points into the input or to
 * *owned (decoded base64). */
static int
write_content(struct tool_ctx *c, const json_t *in, const char **data, size_t *len, char **owned)
{
    const json_t *text = field(in, "content"), *b64 = field(in, "content_base64");
    *owned = NULL;
    if (text && b64)
        return tool_fail(c, "provide exactly one of content or content_base64");
    if (!text && !b64)
        return tool_fail(c, "missing one of content or content_base64");
    if (text) {
        *data = json_string_value(text);
        *len = json_string_length(text);
    } else {
        size_t n = json_string_length(b64);
        if (n > (size_t)TOOL_WRITE_MAX_BYTES / 3 * 4 + 4)
            return tool_fail(c, "content_base64 decodes to more than %d bytes",
                             TOOL_WRITE_MAX_BYTES);
        *owned = malloc(n / 4 * 3 + 3);
        if (*owned == NULL)
            return tool_fail(c, "out of memory");
        if (sodium_base642bin((unsigned char *)*owned, n / 4 * 3 + 3, json_string_value(b64), n,
                              NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
            free(*owned);
            *owned = NULL;
            return tool_fail(c, "content_base64 is not valid base64");
        }
        *data = *owned;
    }
    if (*len > TOOL_WRITE_MAX_BYTES) {
        free(*owned);
        *owned = NULL;
        return tool_fail(c, "content is larger than %d bytes", TOOL_WRITE_MAX_BYTES);
    }
    return 0;
}

static int
write_file(struct tool_ctx *c, const json_t *in, json_t **out)
{
    struct tool_path p;
    struct tool_target t = {.dirfd = -1};
    const char *data = NULL, *expected = json_string_value(field(in, "expected_sha256"));
    char *owned = NULL, *cur = NULL;
    size_t len = 0, curlen;
    int rc = -1;
    if (field_path(c, in, "path", &p) != 0 || write_content(c, in, &data, &len, &owned) != 0)
        return -1;
    /* With a digest to check, the file must exist: no directory is made. */
    if (tool_fs_target(c, &p, expected == NULL, &t) != 0)
        goto done;
    if (expected) {
        if (!t.exists) {
            tool_fail(c, "failed to open %s: %s", p.shown, strerror(ENOENT));
            goto done;
        }
        if (tool_fs_target_read(c, &t, TOOL_READ_WINDOW_BYTES, "check expected_sha256 of", &cur,
                                &curlen) != 0 ||
            check_sha(c, expected, cur, curlen, p.shown) != 0)
            goto done;
    }
    if (replace(c, &t, data, len) != 0)
        goto done;
    char sha[65];
    util_sha256_hex(data, len, sha);
    *out = json_pack("{s:o, s:I, s:s}", "path", util_json_str(p.rel), "bytes_written",
                     (json_int_t)len, "sha256", sha);
    rc = 0;
done:
    tool_fs_target_close(&t);
    free(cur);
    free(owned);
    return rc;
}

/* ---- edit_file ------------------------------------------------------------ */

static int
edit_file(struct tool_ctx *c, const json_t *in, json_t **out)
{
    struct tool_path p;
    struct tool_target t = {.dirfd = -1};
    const json_t *old = field(in, "old_text"), *new = field(in, "new_text");
    const char *expected = json_string_value(field(in, "expected_sha256"));
    int all = json_is_true(field(in, "replace_all"));
    char *orig = NULL, *updated = NULL;
    size_t olen, ulen;
    int rc = -1;
    if (field_path(c, in, "path", &p) != 0)
        return -1;
    if (json_string_length(old) == 0)
        return tool_fail(c, "old_text must not be empty for %s", p.shown);
    if (tool_fs_target(c, &p, 0, &t) != 0)
        goto done;
    if (!t.exists) {
        tool_fail(c, "failed to open %s: %s", p.shown, strerror(ENOENT));
        goto done;
    }
    if (tool_fs_target_read(c, &t, TOOL_EDIT_MAX_BYTES, "edit", &orig, &olen) != 0 ||
        check_sha(c, expected, orig, olen, p.shown) != 0)
        goto done;
    if (util_utf8_prefix(orig, olen) != olen) {
        tool_fail(c, "%s is not valid UTF-8", p.shown);
        goto done;
    }
    size_t occurrences =
        tool_text_count(orig, olen, json_string_value(old), json_string_length(old));
    long n = tool_text_replace(orig, olen, json_string_value(old), json_string_length(old),
                               json_string_value(new), json_string_length(new), all,
                               TOOL_EDIT_MAX_BYTES, &updated, &ulen);
    if (n == 0) {
        tool_fail(c, "edit target not found in %s", p.shown);
        goto done;
    }
    if (n < 0) {
        tool_fail(c, "the edited %s would be larger than %d bytes", p.shown, TOOL_EDIT_MAX_BYTES);
        goto done;
    }
    if (replace(c, &t, updated, ulen) != 0)
        goto done;
    char sha[65];
    util_sha256_hex(updated, ulen, sha);
    *out = json_pack("{s:o, s:I, s:s}", "path", util_json_str(p.rel), "replacements",
                     (json_int_t)(all ? occurrences : 1), "sha256", sha);
    rc = 0;
done:
    tool_fs_target_close(&t);
    free(updated);
    free(orig);
    return rc;
}

/* ---- walks: list_files, glob_search, grep_search -------------------------- */

struct found {
    char **v;
    size_t n, cap;
    size_t bytes;        /* of the paths kept */
    const char *pattern; /* glob_search: what a path must match */
    size_t plen;
    int basename; /* the pattern has no '/': it matches a file's name */
};

static int
collect(struct tool_walk *w, const char *rel, size_t len)
{
    struct found *f = w->arg;
    if (f->pattern) {
        const char *name = rel;
        if (f->basename && strrchr(rel, '/'))
            name = strrchr(rel, '/') + 1;
        if (!tool_glob_match(f->pattern, f->plen, name, len - (size_t)(name - rel)))
            return 0;
    }
    if (f->bytes + len + 1 > TOOL_WALK_MAX_BYTES) {
        w->truncated = 1;
        return 1;
    }
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 256;
        char **nv = realloc(f->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        f->v = nv, f->cap = ncap;
    }
    if ((f->v[f->n] = strndup(rel, len)) == NULL)
        return -1;
    f->n++;
    f->bytes += len + 1;
    return 0;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
found_free(struct found *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
}

/* The base directory of a walk (field "base"), opened, and the sorted
 * paths of its files that match f's pattern (none: all). *truncated when a
 * walk limit cut the list. Returns the base's descriptor, or -1. */
static int
walk_base(struct tool_ctx *c, const json_t *in, struct tool_path *base, struct found *f,
          int *truncated)
{
    if (field_path(c, in, "base", base) != 0)
        return -1;
    int fd = tool_fs_open_dir(c, base);
    if (fd < 0)
        return -1;
    struct tool_walk w = {.visit = collect, .arg = f};
    w.deadline_us = util_monotonic_us() + (int64_t)TOOL_WALK_MAX_MS * 1000;
    if (tool_fs_walk(&w, fd) != 0) {
        close(fd);
        return tool_fail(c, "out of memory listing %s", base->shown);
    }
    if (f->n > 1)
        qsort(f->v, f->n, sizeof *f->v, by_name);
    *truncated = w.truncated;
    return fd;
}

static json_t *
path_list(const struct found *f, size_t limit)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < f->n && i < limit; i++)
        json_array_append_new(a, util_json_str(f->v[i]));
    return a;
}

static size_t
field_limit(const json_t *in)
{
    size_t n = field_count(in, "limit", TOOL_MAX_RESULTS);
    return n < TOOL_MAX_RESULTS ? n : TOOL_MAX_RESULTS;
}

static int
list_files(struct tool_ctx *c, const json_t *in, json_t **out)
{
    struct tool_path base;
    struct found f = {0};
    int truncated = 0;
    size_t limit = field_limit(in);
    int fd = walk_base(c, in, &base, &f, &truncated);
    if (fd >= 0) {
        close(fd);
        *out = json_pack("{s:o, s:o, s:b}", "base", util_json_str(base.shown), "paths",
                         path_list(&f, limit), "truncated", truncated || f.n > limit);
    }
    found_free(&f);
    return fd >= 0 ? 0 : -1;
}

/* A pattern of the input: present, bounded, no NUL. */
static const char *
field_pattern(struct tool_ctx *c, const json_t *in, size_t *len)
{
    const json_t *v = field(in, "pattern");
    *len = json_string_length(v);
    if (*len > TOOL_PATTERN_MAX_BYTES) {
        tool_fail(c, "pattern is longer than %d bytes", TOOL_PATTERN_MAX_BYTES);
        return NULL;
    }
    if (memchr(json_string_value(v), '\0', *len)) {
        tool_fail(c, "pattern contains a NUL byte");
        return NULL;
    }
    return json_string_value(v);
}

static int
glob_search(struct tool_ctx *c, const json_t *in, json_t **out)
{
    struct tool_path base;
    struct found f = {0};
    int truncated = 0;
    size_t limit = field_limit(in);
    if ((f.pattern = field_pattern(c, in, &f.plen)) == NULL)
        return -1;
    /* ripgrep's globs: a leading '/' anchors at the base; without any
     * other '/', the glob matches a file's name at any depth. */
    f.basename = memchr(f.pattern, '/', f.plen) == NULL;
    while (f.plen > 0 && f.pattern[0] == '/')
        f.pattern++, f.plen--;
    int fd = walk_base(c, in, &base, &f, &truncated);
    if (fd >= 0) {
        close(fd);
        *out = json_pack("{s:o, s:O, s:o, s:b}", "base", util_json_str(base.shown), "pattern",
                         json_object_get(in, "pattern"), "paths", path_list(&f, limit), "truncated",
                         truncated || f.n > limit);
    }
    found_free(&f);
    return fd >= 0 ? 0 : -1;
}

/* ---- grep_search ---------------------------------------------------------- */

/* glibc's regexec keeps the automaton states it builds in the regex_t: a
 * pattern whose automaton has very many states (say (a|b)*a(a|b){20}) grows
 * it by the megabyte. Compiled again after this much text, it stays small
 * (and, measured, gets faster). */
#define GREP_RECOMPILE_BYTES (16 * 1024)
/* A pattern's length times the product of its repetition counts: about the
 * size of what regcomp builds ("(a...a){1000}", a group of 1000 bytes
 * repeated 1000 times, takes it 200 MB and half a second, and grep_line
 * compiles it again every GREP_RECOMPILE_BYTES). */
#define GREP_EXPANDED_BYTES (64 * 1024)

struct grep {
    const char *pat;
    size_t plen;
    int literal;
    int flags;
    char *ere;    /* the pattern in POSIX syntax, kept to compile it again */
    size_t since; /* bytes matched since it was compiled */
    regex_t re;
};

/* Copies the pattern in ripgrep's syntax into POSIX extended syntax: \d and
 * \D outside brackets become classes. 0, or -1 when the pattern is not
 * worth compiling (a back-reference, which ripgrep refuses too, or
 * repetition counts whose product, or its product with the pattern's
 * length, could make regcomp build a huge automaton). */
static int
grep_translate(const char *s, size_t n, char *out)
{
    size_t o = 0, product = 1;
    int bracket = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char e = s[++i];
            if (e >= '1' && e <= '9')
                return -1;
            if (!bracket && (e == 'd' || e == 'D')) {
                const char *cls = e == 'd' ? "[0-9]" : "[^0-9]";
                memcpy(out + o, cls, strlen(cls));
                o += strlen(cls);
            } else {
                out[o++] = '\\';
                out[o++] = e;
            }
            continue;
        }
        if (!bracket && s[i] == '[') {
            bracket = 1;
            out[o++] = s[i];
            if (i + 1 < n && (s[i + 1] == '^' || s[i + 1] == '!'))
                out[o++] = s[++i];
            if (i + 1 < n && s[i + 1] == ']')
                out[o++] = s[++i];
            continue;
        }
        if (bracket && s[i] == ']')
            bracket = 0;
        if (!bracket && s[i] == '{') {
            size_t v = 0, top = 0;
            for (size_t j = i + 1; j < n && s[j] != '}'; j++) {
                if (s[j] >= '0' && s[j] <= '9')
                    v = v > 100000 ? v : v * 10 + (size_t)(s[j] - '0');
                else
                    v = 0;
                top = v > top ? v : top;
            }
            product *= top > 1 ? top : 1;
            if (product > 1000 || product * n > GREP_EXPANDED_BYTES)
                return -1;
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
    return 0;
}

static void
grep_compile(struct grep *g, const char *pat, size_t plen)
{
    memset(g, 0, sizeof *g);
    g->pat = pat;
    g->plen = plen;
    g->literal = 1;
    g->flags = REG_EXTENDED | REG_NOSUB;
    const char *s = pat;
    size_t n = plen;
    if (n >= 4 && !memcmp(s, "(?i)", 4))
        s += 4, n -= 4, g->flags |= REG_ICASE;
    g->ere = malloc(n * 6 + 1);
    if (g->ere && grep_translate(s, n, g->ere) == 0 && regcomp(&g->re, g->ere, g->flags) == 0)
        g->literal = 0;
}

static void
grep_free(struct grep *g)
{
    if (!g->literal)
        regfree(&g->re);
    free(g->ere);
}

/* 1 when line[0..n) matches; line[n] is the caller's, set to NUL for the
 * time of regexec (a sanitizer's regexec reads to the NUL, REG_STARTEND or
 * not). A regular expression sees the first TOOL_GREP_LINE_BYTES of a
 * line, without its end ($ fails there): glibc's regexec tries every start
 * of a line, in time quadratic in its length for patterns as plain as
 * "a.*c", and cannot be interrupted. */
static int
grep_line(struct grep *g, char *line, size_t n)
{
    if (g->literal)
        return g->plen == 0 || memmem(line, n, g->pat, g->plen) != NULL;
    int eflags = 0;
    if (n > TOOL_GREP_LINE_BYTES)
        n = TOOL_GREP_LINE_BYTES, eflags = REG_NOTEOL;
    g->since += n + 1;
    if (g->since > GREP_RECOMPILE_BYTES) {
        g->since = 0;
        regfree(&g->re);
        if (regcomp(&g->re, g->ere, g->flags) != 0) {
            g->literal = 1; /* it compiled once: not expected */
            return grep_line(g, line, n);
        }
    }
    char save = line[n];
    line[n] = '\0';
    int hit = regexec(&g->re, line, 0, NULL, eflags) == 0;
    line[n] = save;
    return hit;
}

/* Adds the matching lines of one file (buf[0..len), buf[len] writable) to
 * matches, up to limit. Returns 1 when the limit or the time is reached,
 * else 0. The time is looked at before every line: one regexec may take a
 * good part of a second (grep_line). */
static int
grep_file(struct grep *g, const char *rel, char *buf, size_t len, json_t *matches, size_t limit,
          int64_t deadline_us)
{
    char *p = buf, *end = buf + len;
    size_t line = 0;
    while (p < end) {
        line++;
        if (util_monotonic_us() > deadline_us)
            return 1;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        if (le > p && le[-1] == '\r')
            le--;
        size_t n = (size_t)(le - p);
        if (grep_line(g, p, n)) {
            if (json_array_size(matches) >= limit)
                return 1;
            size_t k = n > TOOL_GREP_TEXT_BYTES ? TOOL_GREP_TEXT_BYTES : n;
            while (k < n && k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
                k--;
            json_array_append_new(matches,
                                  json_pack("{s:o, s:I, s:o}", "path", util_json_str(rel), "line",
                                            (json_int_t)line, "text", json_lossy(p, k)));
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static int
grep_search(struct tool_ctx *c, const json_t *in, json_t **out)
{
    struct tool_path base;
    struct found f = {0};
    struct grep g;
    int truncated = 0, stop = 0;
    size_t limit = field_limit(in), plen, scanned = 0;
    const char *pat = field_pattern(c, in, &plen);
    if (pat == NULL)
        return -1;
    int64_t deadline = util_monotonic_us() + (int64_t)TOOL_WALK_MAX_MS * 1000;
    int fd = walk_base(c, in, &base, &f, &truncated);
    if (fd < 0) {
        found_free(&f);
        return -1;
    }
    grep_compile(&g, pat, plen);
    json_t *matches = json_array();
    for (size_t i = 0; matches && i < f.n && !stop; i++) {
        if (util_monotonic_us() > deadline || scanned >= TOOL_GREP_SCAN_BYTES) {
            truncated = 1;
            break;
        }
        struct stat st;
        int ffd = tool_fs_open_below(fd, f.v[i]);
        if (ffd < 0)
            continue; /* gone, or swapped for a link, since the walk */
        char *buf = NULL;
        size_t len = 0;
        int over = 0;
        size_t room = TOOL_GREP_SCAN_BYTES - scanned;
        if (fstat(ffd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
            tool_fs_read_fd(c, ffd, room < TOOL_GREP_FILE_BYTES ? room : TOOL_GREP_FILE_BYTES,
                            f.v[i], &buf, &len, &over) == 0) {
            scanned += len;
            truncated |= over;
            if (memchr(buf, '\0', len) == NULL) /* binary files are not searched */
                stop = grep_file(&g, f.v[i], buf, len, matches, limit, deadline);
        }
        free(buf);
        close(ffd);
    }
    truncated |= stop;
    close(fd);
    grep_free(&g);
    found_free(&f);
    json_t *pattern = json_object_get(in, "pattern");
    *out = json_pack("{s:o, s:O, s:o, s:b}", "base", util_json_str(base.shown), "pattern", pattern,
                     "matches", matches, "truncated", truncated);
    return 0;
}

/* ---- glob matching -------------------------------------------------------- */

enum { G_LIT, G_ONE, G_STAR, G_ALL, G_DIRS, G_CLASS };

struct gtok {
    unsigned char kind, ch;
    const char *cls; /* G_CLASS: the body between '[' and ']' */
    size_t clen;
};

static int
class_match(const struct gtok *t, unsigned char ch)
{
    const char *s = t->cls;
    size_t n = t->clen, i = 0;
    int neg = n > 0 && (s[0] == '!' || s[0] == '^');
    int hit = 0;
    for (i = neg; i < n; i++) {
        unsigned char lo = (unsigned char)s[i];
        if (lo == '\\' && i + 1 < n)
            lo = (unsigned char)s[++i];
        if (i + 2 < n && s[i + 1] == '-') {
            unsigned char hi = (unsigned char)s[i + 2];
            i += 2;
            hit |= ch >= lo && ch <= hi;
        } else {
            hit |= ch == lo;
        }
    }
    return hit != neg;
}

/* The pattern as tokens; returns their number. */
static size_t
glob_tokens(const char *p, size_t n, struct gtok *t)
{
    size_t k = 0, i = 0;
    while (i < n) {
        struct gtok *g = &t[k++];
        memset(g, 0, sizeof *g);
        char ch = p[i];
        if (ch == '*') {
            size_t j = i;
            while (j < n && p[j] == '*')
                j++;
            int whole = j - i == 2 && (i == 0 || p[i - 1] == '/') && (j == n || p[j] == '/');
            if (whole && j < n) {
                g->kind = G_DIRS; /* "**" then '/': any number of whole components */
                j++;
            } else {
                g->kind = whole ? G_ALL : G_STAR;
            }
            i = j;
        } else if (ch == '?') {
            g->kind = G_ONE;
            i++;
        } else if (ch == '[') {
            size_t j = i + 1;
            if (j < n && (p[j] == '!' || p[j] == '^'))
                j++;
            if (j < n && p[j] == ']')
                j++;
            while (j < n && p[j] != ']')
                j += (p[j] == '\\' && j + 1 < n) ? 2 : 1;
            if (j < n) {
                g->kind = G_CLASS;
                g->cls = p + i + 1;
                g->clen = j - i - 1;
                i = j + 1;
            } else {
                g->kind = G_LIT;
                g->ch = '[';
                i++;
            }
        } else {
            if (ch == '\\' && i + 1 < n)
                ch = p[++i];
            g->kind = G_LIT;
            g->ch = (unsigned char)ch;
            i++;
        }
    }
    return k;
}

int
tool_glob_match(const char *pattern, size_t plen, const char *path, size_t len)
{
    if (plen > TOOL_PATTERN_MAX_BYTES)
        return 0;
    struct gtok t[TOOL_PATTERN_MAX_BYTES];
    size_t T = glob_tokens(pattern, plen, t);
    /* m[i]: tokens i.. match path[j..); d[i] (for G_DIRS): some '/' at or
     * after j ends a run that tokens i+1.. continue. Columns j+1 (prev) and
     * j (cur), from the path's end back to its start. */
    unsigned char m0[TOOL_PATTERN_MAX_BYTES + 1], m1[TOOL_PATTERN_MAX_BYTES + 1];
    unsigned char d0[TOOL_PATTERN_MAX_BYTES + 1], d1[TOOL_PATTERN_MAX_BYTES + 1];
    unsigned char *prev = m0, *cur = m1, *dprev = d0, *dcur = d1;
    memset(prev, 0, T + 1);
    memset(dprev, 0, T + 1);
    for (size_t jj = len + 1; jj-- > 0;) {
        int has = jj < len;
        unsigned char ch = has ? (unsigned char)path[jj] : 0;
        cur[T] = !has;
        dcur[T] = 0;
        for (size_t i = T; i-- > 0;) {
            const struct gtok *g = &t[i];
            dcur[i] = 0;
            switch (g->kind) {
            case G_LIT:
                cur[i] = has && ch == g->ch && prev[i + 1];
                break;
            case G_ONE:
                cur[i] = has && ch != '/' && prev[i + 1];
                break;
            case G_CLASS:
                cur[i] = has && ch != '/' && class_match(g, ch) && prev[i + 1];
                break;
            case G_STAR:
                cur[i] = cur[i + 1] || (has && ch != '/' && prev[i]);
                break;
            case G_ALL:
                cur[i] = cur[i + 1] || (has && prev[i]);
                break;
            default: /* G_DIRS */
                dcur[i] = (has && ch == '/' && prev[i + 1]) || dprev[i];
                cur[i] = cur[i + 1] || dcur[i];
                break;
            }
        }
        unsigned char *x = prev;
        prev = cur, cur = x;
        x = dprev, dprev = dcur, dcur = x;
    }
    return prev[0];
}
