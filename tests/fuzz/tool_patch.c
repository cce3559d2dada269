/*
 * fuzz-tool_patch: what the model sends the file tools (runner/tool_*.c),
 * parsed without a filesystem. The first byte picks what the rest is:
 *
 *   0  apply_patch's input JSON: tool_patch_parse, then each hunk applied
 *      in memory by tool_text_replace to a made-up file per path (the
 *      old_text of its hunks, joined), checked against a plain
 *      re-computation of the replacement
 *   1  a path: tool_path_parse with the workspace "/ws", "/" or no known
 *      root (the byte's high bits); an accepted path is normalized (no
 *      empty, "." or ".." component, none over NAME_MAX, no NUL, no leading
 *      '/'), no longer than the input, and parses again to itself
 *   2  a glob pattern, '\n', a path: tool_glob_match, and for short inputs
 *      the same answer from a backtracking matcher written from the rules
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "tool_fs.h"

/* ---- 0: apply_patch ---- */

#define OUT_MAX (64 * 1024) /* the made-up files' limit (the tool's is TOOL_EDIT_MAX_BYTES) */

struct vfile {
    const char *path;
    char *text;
    size_t len;
};

static void
fuzz_patch(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (in == NULL)
        return;
    struct tool_patch p;
    char err[TOOL_ERR_MAX];
    err[0] = '\0';
    if (tool_patch_parse(in, "/ws", &p, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0' && p.hunks == NULL && p.n == 0);
        json_decref(in);
        return;
    }
    FUZZ_CHECK(p.n >= 1 && p.n <= TOOL_PATCH_MAX_HUNKS);
    struct vfile files[TOOL_PATCH_MAX_HUNKS];
    size_t nf = 0;
    for (size_t i = 0; i < p.n; i++) {
        const struct tool_hunk *h = &p.hunks[i];
        FUZZ_CHECK(h->old_len > 0 && h->path.len <= h->raw_len);
        FUZZ_CHECK(h->path.rel[0] != '/' && strlen(h->path.rel) == h->path.len);
        size_t f = 0;
        while (f < nf && strcmp(files[f].path, h->path.rel))
            f++;
        if (f == nf) { /* the file: every old_text of its hunks, joined by "\n" */
            files[nf].path = h->path.rel;
            size_t len = 0;
            for (size_t j = i; j < p.n; j++)
                if (!strcmp(p.hunks[j].path.rel, h->path.rel))
                    len += p.hunks[j].old_len + 1;
            files[nf].text = malloc(len + 1);
            files[nf].len = 0;
            for (size_t j = i; j < p.n; j++) {
                if (strcmp(p.hunks[j].path.rel, h->path.rel))
                    continue;
                memcpy(files[nf].text + files[nf].len, p.hunks[j].old_text, p.hunks[j].old_len);
                files[nf].len += p.hunks[j].old_len;
                files[nf].text[files[nf].len++] = '\n';
            }
            nf++;
        }
        struct vfile *v = &files[f];
        size_t count = tool_text_count(v->text, v->len, h->old_text, h->old_len);
        const char *first = memmem(v->text, v->len, h->old_text, h->old_len);
        char *out;
        size_t outlen;
        long n = tool_text_replace(v->text, v->len, h->old_text, h->old_len, h->new_text,
                                   h->new_len, h->replace_all, OUT_MAX, &out, &outlen);
        if (first == NULL) {
            FUZZ_CHECK(n == 0 && count == 0 && out == NULL);
            continue;
        }
        size_t k = h->replace_all ? count : 1;
        size_t want = v->len - k * h->old_len + k * h->new_len;
        if (want > OUT_MAX) {
            FUZZ_CHECK(n == -1 && out == NULL);
            continue;
        }
        FUZZ_CHECK(n == (long)k && outlen == want && out[outlen] == '\0');
        if (!h->replace_all) {
            size_t at = (size_t)(first - v->text);
            FUZZ_CHECK(!memcmp(out, v->text, at));
            FUZZ_CHECK(!memcmp(out + at, h->new_text, h->new_len));
            FUZZ_CHECK(
                !memcmp(out + at + h->new_len, first + h->old_len, v->len - at - h->old_len));
        }
        free(v->text);
        v->text = out;
        v->len = outlen;
    }
    for (size_t f = 0; f < nf; f++)
        free(files[f].text);
    tool_patch_free(&p);
    json_decref(in);
}

/* ---- 1: paths ---- */

static void
fuzz_path(uint8_t flags, const uint8_t *data, size_t size)
{
    static const char *const roots[] = {"/ws", "/", NULL, "/a/b/"};
    const char *root = roots[flags & 3];
    struct tool_path p, again;
    char err[TOOL_ERR_MAX];
    if (tool_path_parse((const char *)data, size, root, &p, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(size <= TOOL_PATH_MAX && !memchr(data, '\0', size));
    FUZZ_CHECK(p.len <= size && strlen(p.rel) == p.len);
    FUZZ_CHECK(p.len == 0 || (p.rel[0] != '/' && p.rel[p.len - 1] != '/'));
    for (size_t i = 0; i < p.len;) {
        size_t j = i;
        while (j < p.len && p.rel[j] != '/')
            j++;
        size_t c = j - i;
        FUZZ_CHECK(c > 0 && c <= NAME_MAX);
        FUZZ_CHECK(!(c == 1 && p.rel[i] == '.') && !(c == 2 && !memcmp(p.rel + i, "..", 2)));
        i = j + 1;
    }
    FUZZ_CHECK(tool_path_parse(p.rel, p.len, NULL, &again, err, sizeof err) == 0);
    FUZZ_CHECK(again.len == p.len && !memcmp(again.rel, p.rel, p.len));
    if (size > 0 && data[0] != '/')
        FUZZ_CHECK(tool_path_parse((const char *)data, size, NULL, &again, err, sizeof err) == 0 &&
                   !strcmp(again.rel, p.rel));
}

/* ---- 2: globs, against a backtracking matcher of the same rules ---- */

static int
ref_class(const char *s, size_t n, unsigned char ch)
{
    int neg = n > 0 && (s[0] == '!' || s[0] == '^'), hit = 0;
    for (size_t i = (size_t)neg; i < n; i++) {
        unsigned char lo = (unsigned char)s[i];
        if (lo == '\\' && i + 1 < n)
            lo = (unsigned char)s[++i];
        if (i + 2 < n && s[i + 1] == '-') {
            hit |= ch >= lo && ch <= (unsigned char)s[i + 2];
            i += 2;
        } else {
            hit |= ch == lo;
        }
    }
    return hit != neg;
}

static int
ref(const char *p, size_t pn, size_t pi, const char *s, size_t sn, size_t si)
{
    if (pi == pn)
        return si == sn;
    if (p[pi] == '*') {
        size_t j = pi;
        while (j < pn && p[j] == '*')
            j++;
        int whole = j - pi == 2 && (pi == 0 || p[pi - 1] == '/') && (j == pn || p[j] == '/');
        if (whole && j < pn) { /* zero or more whole components, each with its '/' */
            if (ref(p, pn, j + 1, s, sn, si))
                return 1;
            for (size_t k = si; k < sn; k++)
                if (s[k] == '/' && ref(p, pn, j + 1, s, sn, k + 1))
                    return 1;
            return 0;
        }
        for (size_t k = si; k <= sn; k++) {
            if (ref(p, pn, j, s, sn, k))
                return 1;
            if (!whole && k < sn && s[k] == '/')
                break;
        }
        return 0;
    }
    if (p[pi] == '[') {
        size_t j = pi + 1;
        if (j < pn && (p[j] == '!' || p[j] == '^'))
            j++;
        if (j < pn && p[j] == ']')
            j++;
        while (j < pn && p[j] != ']')
            j += (p[j] == '\\' && j + 1 < pn) ? 2 : 1;
        if (j < pn)
            return si < sn && s[si] != '/' &&
                   ref_class(p + pi + 1, j - pi - 1, (unsigned char)s[si]) &&
                   ref(p, pn, j + 1, s, sn, si + 1);
    }
    if (si == sn)
        return 0;
    if (p[pi] == '?')
        return s[si] != '/' && ref(p, pn, pi + 1, s, sn, si + 1);
    if (p[pi] == '\\' && pi + 1 < pn)
        return s[si] == p[pi + 1] && ref(p, pn, pi + 2, s, sn, si + 1);
    return s[si] == p[pi] && ref(p, pn, pi + 1, s, sn, si + 1);
}

static void
fuzz_glob(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t pn = nl ? (size_t)(nl - s) : size;
    const char *path = nl ? nl + 1 : "";
    size_t sn = nl ? size - pn - 1 : 0;
    int got = tool_glob_match(s, pn, path, sn);
    FUZZ_CHECK(got == 0 || got == 1);
    if (pn <= 12 && sn <= 24)
        FUZZ_CHECK(got == ref(s, pn, 0, path, sn, 0));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_patch(data + 1, size - 1);
        break;
    case 1:
        fuzz_path(data[0] >> 2, data + 1, size - 1);
        break;
    default:
        fuzz_glob(data + 1, size - 1);
        break;
    }
    return 0;
}
