/*
 * tool_patch: apply_patch and the exact-text replacement it shares with
 * edit_file (tools.h).
 *
 * Upstream's apply_patch takes no diff: its input is an ordered list of
 * hunks, each an exact-text replacement in one file ({path, old_text,
 * new_text, replace_all?, expected_sha256?}), not the "*** Begin Patch"
 * envelope nor a unified diff. Every hunk is checked and applied in memory,
 * in order (a hunk sees what the hunks before it in the same file made),
 * before anything is written; then each file changed is staged in a
 * temporary file beside it, with a copy of its original, and the staged
 * files are renamed into place one after the other. When a rename fails,
 * the files already replaced get their originals back: the patch lands
 * whole or not at all, except for a failure during that rollback itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tool_fs.h"
#include "util.h"

size_t
tool_text_count(const char *text, size_t len, const char *old, size_t oldlen)
{
    size_t n = 0;
    const char *p = text, *end = text + len;
    while (oldlen > 0 && (size_t)(end - p) >= oldlen) {
        const char *m = memmem(p, (size_t)(end - p), old, oldlen);
        if (m == NULL)
            break;
        n++;
        p = m + oldlen;
    }
    return n;
}

long
tool_text_replace(const char *text, size_t len, const char *old, size_t oldlen, const char *new,
                  size_t newlen, int all, size_t max, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (oldlen == 0)
        return 0;
    size_t count = all ? tool_text_count(text, len, old, oldlen)
                       : (memmem(text, len, old, oldlen) != NULL ? 1 : 0);
    if (count == 0)
        return 0;
    size_t base = len - count * oldlen; /* count * oldlen <= len: no overflow */
    if (newlen > 0 && count > (max - (base < max ? base : max)) / newlen)
        return -1;
    size_t size = base + count * newlen;
    if (size > max)
        return -1;
    char *r = malloc(size + 1);
    if (r == NULL)
        return -1;
    const char *p = text, *end = text + len;
    size_t o = 0;
    for (size_t i = 0; i < count; i++) {
        const char *m = memmem(p, (size_t)(end - p), old, oldlen);
        memcpy(r + o, p, (size_t)(m - p));
        o += (size_t)(m - p);
        memcpy(r + o, new, newlen);
        o += newlen;
        p = m + oldlen;
    }
    memcpy(r + o, p, (size_t)(end - p));
    o += (size_t)(end - p);
    r[o] = '\0';
    *out = r;
    *outlen = o;
    return (long)count;
}

/* ---- parsing ------------------------------------------------------------- */

static const char *const hunk_fields[] = {"path",        "old_text",        "new_text",
                                          "replace_all", "expected_sha256", NULL};

/* The string field name of hunk i, or NULL with err set. */
static const char *
hunk_string(const json_t *h, size_t i, const char *name, size_t *len, char *err, size_t errlen)
{
    const json_t *v = json_object_get(h, name);
    if (!json_is_string(v)) {
        snprintf(err, errlen, "hunks[%zu]: missing string field `%s`", i, name);
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

int
tool_patch_parse(const json_t *input, const char *root, struct tool_patch *p, char *err,
                 size_t errlen)
{
    p->hunks = NULL;
    p->n = 0;
    const json_t *hunks = json_object_get(input, "hunks");
    if (!json_is_array(hunks)) {
        snprintf(err, errlen, "missing array field `hunks`");
        return -1;
    }
    size_t n = json_array_size(hunks);
    if (n == 0) {
        snprintf(err, errlen, "apply_patch requires at least one hunk");
        return -1;
    }
    if (n > TOOL_PATCH_MAX_HUNKS) {
        snprintf(err, errlen, "apply_patch takes at most %d hunks, not %zu", TOOL_PATCH_MAX_HUNKS,
                 n);
        return -1;
    }
    p->hunks = calloc(n, sizeof *p->hunks);
    if (p->hunks == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *h = json_array_get(hunks, i);
        struct tool_hunk *k = &p->hunks[i];
        if (!json_is_object(h)) {
            snprintf(err, errlen, "hunks[%zu] must be an object", i);
            goto fail;
        }
        const char *key;
        json_t *v;
        json_object_foreach(h, key, v)
        {
            if (!util_in_list(key, hunk_fields)) {
                char shown[TOOL_SHOW_MAX + 8];
                tool_show(key, strlen(key), shown);
                snprintf(err, errlen, "hunks[%zu]: unexpected tool input field %s", i, shown);
                goto fail;
            }
        }
        if ((k->raw_path = hunk_string(h, i, "path", &k->raw_len, err, errlen)) == NULL ||
            (k->old_text = hunk_string(h, i, "old_text", &k->old_len, err, errlen)) == NULL ||
            (k->new_text = hunk_string(h, i, "new_text", &k->new_len, err, errlen)) == NULL)
            goto fail;
        const json_t *all = json_object_get(h, "replace_all");
        if (all != NULL && !json_is_null(all) && !json_is_boolean(all)) {
            snprintf(err, errlen, "hunks[%zu]: replace_all must be a boolean", i);
            goto fail;
        }
        k->replace_all = json_is_true(all);
        const json_t *sha = json_object_get(h, "expected_sha256");
        if (sha != NULL && !json_is_null(sha) && !json_is_string(sha)) {
            snprintf(err, errlen, "hunks[%zu]: expected_sha256 must be a string", i);
            goto fail;
        }
        k->expected_sha256 = json_string_value(sha);
        if (k->old_len == 0) {
            char shown[TOOL_SHOW_MAX + 8];
            tool_show(k->raw_path, k->raw_len, shown);
            snprintf(err, errlen, "old_text must not be empty for %s", shown);
            goto fail;
        }
        if (k->new_len > TOOL_EDIT_MAX_BYTES) {
            snprintf(err, errlen, "hunks[%zu]: new_text is longer than %d bytes", i,
                     TOOL_EDIT_MAX_BYTES);
            goto fail;
        }
        char why[TOOL_ERR_MAX - 32];
        if (tool_path_parse(k->raw_path, k->raw_len, root, &k->path, why, sizeof why) != 0) {
            snprintf(err, errlen, "hunks[%zu]: %s", i, why);
            goto fail;
        }
        p->n = i + 1;
    }
    return 0;
fail:
    tool_patch_free(p);
    return -1;
}

void
tool_patch_free(struct tool_patch *p)
{
    free(p->hunks);
    p->hunks = NULL;
    p->n = 0;
}

/* ---- the tool ------------------------------------------------------------ */

/* One file the patch changes. */
struct pfile {
    struct tool_target t;
    char *orig, *cur;
    size_t olen, clen;
    size_t hunks, replacements;
    const char *expected;
    struct tool_stage up, back; /* the new content, the original for a rollback */
    char sha[65];
};

struct pstate {
    struct pfile *files;
    size_t n;
    size_t total;        /* bytes of the originals read */
    size_t replacements; /* made by the hunks so far */
};

/* Paths in upstream's order (a BTreeMap of paths): component by component. */
static int
path_cmp(const void *a, const void *b)
{
    const unsigned char *x = (const unsigned char *)((const struct pfile *)a)->t.path->rel;
    const unsigned char *y = (const unsigned char *)((const struct pfile *)b)->t.path->rel;
    for (; *x && *x == *y; x++, y++)
        ;
    int cx = *x == '/' ? 1 : *x ? *x + 1 : 0, cy = *y == '/' ? 1 : *y ? *y + 1 : 0;
    return cx - cy;
}

/* The file hunk h changes: one already read (the same inode, whatever path
 * named it), or read now. */
static struct pfile *
pfile_for(struct tool_ctx *c, struct pstate *s, const struct tool_hunk *h)
{
    struct tool_target t;
    char why[TOOL_ERR_MAX];
    if (tool_fs_target(c, &h->path, 0, &t) != 0)
        goto fail;
    if (!t.exists) {
        tool_fail(c, "failed to open %s: %s", h->path.shown, strerror(ENOENT));
        goto fail;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->files[i].t.dev == t.dev && s->files[i].t.ino == t.ino) {
            tool_fs_target_close(&t);
            return &s->files[i];
        }
    }
    if (s->n == TOOL_PATCH_MAX_FILES) {
        tool_fs_target_close(&t);
        tool_fail(c, "apply_patch changes at most %d files", TOOL_PATCH_MAX_FILES);
        return NULL;
    }
    struct pfile *f = &s->files[s->n];
    memset(f, 0, sizeof *f);
    if (tool_fs_target_read(c, &t, TOOL_EDIT_MAX_BYTES, "edit", &f->orig, &f->olen) != 0)
        goto fail;
    if (util_utf8_prefix(f->orig, f->olen) != f->olen) {
        free(f->orig);
        f->orig = NULL;
        tool_fail(c, "%s is not valid UTF-8", h->path.shown);
        goto fail;
    }
    s->total += f->olen;
    if (s->total > TOOL_PATCH_MAX_TOTAL_BYTES) {
        free(f->orig);
        f->orig = NULL;
        tool_fs_target_close(&t);
        tool_fail(c, "apply_patch changes at most %d bytes of files together",
                  TOOL_PATCH_MAX_TOTAL_BYTES);
        return NULL;
    }
    f->t = t;
    f->cur = f->orig;
    f->clen = f->olen;
    util_sha256_hex(f->orig, f->olen, f->sha);
    s->n++;
    return f;
fail:
    tool_fs_target_close(&t);
    snprintf(why, sizeof why, "%s", c->err);
    tool_fail(c, "failed to prepare %s: %s", h->path.shown, why);
    return NULL;
}

/* Applies hunk h to its file's current text. The replacements are
 * bounded: each costs a memmem call, and 256 replace_all hunks of one byte
 * over a 4 MiB file would make a billion of them (about 15 s). */
static int
apply_hunk(struct tool_ctx *c, struct pstate *s, const struct tool_hunk *h)
{
    if (s->replacements > TOOL_PATCH_MAX_REPLACED)
        return tool_fail(c, "apply_patch makes at most %d replacements", TOOL_PATCH_MAX_REPLACED);
    struct pfile *f = pfile_for(c, s, h);
    if (f == NULL)
        return -1;
    if (h->expected_sha256) {
        if (f->expected && strcasecmp(f->expected, h->expected_sha256))
            return tool_fail(c, "conflicting expected_sha256 values for %s", h->path.shown);
        if (strcasecmp(f->sha, h->expected_sha256)) {
            char shown[TOOL_SHOW_MAX + 8];
            tool_show(h->expected_sha256, strlen(h->expected_sha256), shown);
            return tool_fail(c, "expected_sha256 mismatch for %s: expected %s, actual %s",
                             h->path.shown, shown, f->sha);
        }
        f->expected = h->expected_sha256;
    }
    char *r;
    size_t rlen;
    long n = tool_text_replace(f->cur, f->clen, h->old_text, h->old_len, h->new_text, h->new_len,
                               h->replace_all, TOOL_EDIT_MAX_BYTES, &r, &rlen);
    if (n == 0)
        return tool_fail(c, "patch hunk target not found in %s after applying previous hunks",
                         h->path.shown);
    if (n < 0)
        return tool_fail(c, "the patched %s would be larger than %d bytes", h->path.shown,
                         TOOL_EDIT_MAX_BYTES);
    if (f->cur != f->orig)
        free(f->cur);
    f->cur = r;
    f->clen = rlen;
    f->hunks++;
    f->replacements += (size_t)n;
    s->replacements += (size_t)n;
    return 0;
}

/* Stages every file's new content and original, then renames the new ones
 * into place; on a failed rename, the originals go back over the files
 * already replaced. */
static int
write_all(struct tool_ctx *c, struct pstate *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct pfile *f = &s->files[i];
        if (tool_fs_stage(c, &f->t, f->cur, f->clen, &f->up) != 0 ||
            tool_fs_stage(c, &f->t, f->orig, f->olen, &f->back) != 0)
            return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (tool_fs_commit(c, &s->files[i].t, &s->files[i].up) == 0)
            continue;
        char why[TOOL_ERR_MAX];
        snprintf(why, sizeof why, "%s", c->err);
        for (size_t j = 0; j < i; j++) {
            struct tool_ctx ignored = {.ws = -1};
            tool_fs_commit(&ignored, &s->files[j].t, &s->files[j].back);
        }
        return tool_fail(c, "failed to write %s: %s", s->files[i].t.path->shown, why);
    }
    return 0;
}

static json_t *
result(struct pstate *s)
{
    json_t *changed = json_array();
    for (size_t i = 0; i < s->n; i++) {
        struct pfile *f = &s->files[i];
        char sha[65];
        util_sha256_hex(f->cur, f->clen, sha);
        json_array_append_new(changed, json_pack("{s:o, s:I, s:I, s:I, s:s}", "path",
                                                 util_json_str(f->t.path->rel), "hunks",
                                                 (json_int_t)f->hunks, "replacements",
                                                 (json_int_t)f->replacements, "bytes_written",
                                                 (json_int_t)f->clen, "sha256", sha));
    }
    return json_pack("{s:o, s:I}", "changed_files", changed, "file_count", (json_int_t)s->n);
}

int
tool_apply_patch(struct tool_ctx *c, const json_t *input, json_t **out)
{
    struct tool_patch p;
    struct pstate s = {0};
    int rc = -1;
    const char *root = tool_ctx_root(c);
    if (tool_patch_parse(input, root, &p, c->err, sizeof c->err) != 0)
        return -1;
    s.files = calloc(TOOL_PATCH_MAX_FILES, sizeof *s.files);
    if (s.files == NULL) {
        tool_fail(c, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p.n; i++)
        if (apply_hunk(c, &s, &p.hunks[i]) != 0)
            goto done;
    qsort(s.files, s.n, sizeof *s.files, path_cmp);
    if (write_all(c, &s) != 0)
        goto done;
    *out = result(&s);
    rc = *out ? 0 : tool_fail(c, "out of memory");
done:
    for (size_t i = 0; s.files && i < s.n; i++) {
        struct pfile *f = &s.files[i];
        tool_fs_unstage(&f->t, &f->up);
        tool_fs_unstage(&f->t, &f->back);
        tool_fs_target_close(&f->t);
        if (f->cur != f->orig)
            free(f->cur);
        free(f->orig);
    }
    free(s.files);
    tool_patch_free(&p);
    return rc;
}
