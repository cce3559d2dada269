#include "output.h"

#include <string.h>
#include <time.h>

#define PATH_KEY_MAX_BYTES 64
#define TABLE_MAX_COLS     16
#define COLUMN_GAP         "  "
#define ELLIPSIS           "..."

/* One rendered value: escaped, valid UTF-8, at most max_chars characters. */
struct cell {
    char s[OUTPUT_CELL_MAX_BYTES];
    size_t len, chars, max_chars;
    int cut;
};

static void
cell_init(struct cell *c, size_t max_chars)
{
    c->s[0] = '\0';
    c->len = c->chars = 0;
    c->max_chars = max_chars < sizeof ELLIPSIS ? sizeof ELLIPSIS : max_chars;
    c->cut = 0;
}

/* Length of the UTF-8 sequence at p (n bytes available), 0 when invalid. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80                             ? 1
                 : (p[0] & 0xE0) == 0xC0 && p[0] >= 0xC2 ? 2
                 : (p[0] & 0xF0) == 0xE0                 ? 3
                 : (p[0] & 0xF8) == 0xF0 && p[0] <= 0xF4 ? 4
                                                         : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Ends the cell with "..." in place of its last characters. */
static void
cell_cut(struct cell *c)
{
    for (size_t k = 0; k < sizeof ELLIPSIS - 1 && c->chars > 0; k++) {
        do
            c->len--;
        while (c->len > 0 && ((unsigned char)c->s[c->len] & 0xC0) == 0x80);
        c->chars--;
    }
    memcpy(c->s + c->len, ELLIPSIS, sizeof ELLIPSIS);
    c->len += sizeof ELLIPSIS - 1;
    c->chars += sizeof ELLIPSIS - 1;
    c->cut = 1;
}

/* Appends s[0..n), replacing control characters by spaces and bytes that
 * are not UTF-8 by '?'; cuts the cell when it is full. */
static void
cell_put(struct cell *c, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && !c->cut) {
        size_t k = utf8_len(p + i, n - i);
        const char *src = s + i;
        size_t srclen = k;
        if (k == 0)
            src = "?", srclen = k = 1;
        else if (k == 1 && (p[i] < 0x20 || p[i] == 0x7F))
            src = " ";
        if (c->chars == c->max_chars || c->len + srclen + sizeof ELLIPSIS > sizeof c->s) {
            cell_cut(c);
            break;
        }
        memcpy(c->s + c->len, src, srclen);
        c->len += srclen;
        c->chars++;
        i += k;
    }
    c->s[c->len] = '\0';
}

static void
cell_puts(struct cell *c, const char *s)
{
    cell_put(c, s, strlen(s));
}

static int
is_scalar_array(const json_t *v)
{
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (json_is_object(item) || json_is_array(item))
            return 0;
    }
    return 1;
}

static void
render(const json_t *v, enum output_fmt fmt, struct cell *c)
{
    char num[64];
    if (fmt == OUT_COUNT && json_is_array(v)) {
        snprintf(num, sizeof num, "%zu", json_array_size(v));
        return cell_puts(c, num);
    }
    if (fmt == OUT_TIME && json_is_integer(v)) {
        json_int_t ms = json_integer_value(v);
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        if (gmtime_r(&sec, &tm) && strftime(num, sizeof num, "%Y-%m-%dT%H:%M:%SZ", &tm))
            return cell_puts(c, num);
    }
    if (v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
        return cell_puts(c, "-");
    if (json_is_string(v))
        return cell_put(c, json_string_value(v), json_string_length(v));
    if (json_is_integer(v))
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(num, sizeof num, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(num, sizeof num, "%s", json_is_true(v) ? "true" : "false");
    if (!json_is_object(v) && !json_is_array(v))
        return cell_puts(c, num);
    if (json_is_array(v) && is_scalar_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (i > 0)
                cell_puts(c, ", ");
            render(item, OUT_TEXT, c);
        }
        return;
    }
    char *dump = json_dumps(v, JSON_COMPACT);
    cell_puts(c, dump ? dump : "?");
    free(dump);
}

const json_t *
output_lookup(const json_t *doc, const char *path)
{
    char key[PATH_KEY_MAX_BYTES];
    while (doc && path && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        doc = json_object_get(doc, key);
        path = dot ? dot + 1 : NULL;
    }
    return doc;
}

static void
cell_of(const json_t *item, const struct output_col *col, size_t default_max, struct cell *c)
{
    cell_init(c, col->max_chars > 0 ? (size_t)col->max_chars : default_max);
    render(output_lookup(item, col->path), col->fmt, c);
    while (c->len > 0 && c->s[c->len - 1] == ' ') /* a trailing newline, made a space */
        c->s[--c->len] = '\0', c->chars--;
}

static void
print_padded(const char *s, size_t chars, size_t width, int last)
{
    fputs(s, stdout);
    if (last)
        return;
    for (; chars < width; chars++)
        putchar(' ');
    fputs(COLUMN_GAP, stdout);
}

/* Column-aligned table: widths are measured in a first pass over the rows,
 * so nothing is kept in memory beyond one cell. */
static void
print_table(const json_t *items, const struct output_section *s)
{
    size_t width[TABLE_MAX_COLS], ncols = s->ncols < TABLE_MAX_COLS ? s->ncols : TABLE_MAX_COLS;
    size_t i;
    json_t *item;
    static struct cell c; /* 4 KiB: kept off the stack */
    for (size_t k = 0; k < ncols; k++)
        width[k] = strlen(s->cols[k].title);
    json_array_foreach(items, i, item)
    {
        for (size_t k = 0; k < ncols; k++) {
            cell_of(item, &s->cols[k], OUTPUT_TABLE_CELL_CHARS, &c);
            width[k] = c.chars > width[k] ? c.chars : width[k];
        }
    }
    for (size_t k = 0; k < ncols; k++)
        print_padded(s->cols[k].title, strlen(s->cols[k].title), width[k], k + 1 == ncols);
    putchar('\n');
    json_array_foreach(items, i, item)
    {
        for (size_t k = 0; k < ncols; k++) {
            cell_of(item, &s->cols[k], OUTPUT_TABLE_CELL_CHARS, &c);
            print_padded(c.s, c.chars, width[k], k + 1 == ncols);
        }
        putchar('\n');
    }
}

static void
print_fields(const json_t *obj, const struct output_section *s)
{
    static struct cell c;
    size_t width = 0;
    for (size_t k = 0; k < s->ncols; k++)
        width = strlen(s->cols[k].title) > width ? strlen(s->cols[k].title) : width;
    for (size_t k = 0; k < s->ncols; k++) {
        cell_of(obj, &s->cols[k], OUTPUT_CELL_MAX_BYTES, &c);
        print_padded(s->cols[k].title, strlen(s->cols[k].title), width, 0);
        printf("%s\n", c.s);
    }
}

static void
print_pagination(const json_t *p, size_t shown)
{
    const char *next = json_string_value(json_object_get(p, "next_cursor"));
    printf("(%zu of %lld", shown, (long long)json_integer_value(json_object_get(p, "total_count")));
    if (json_is_true(json_object_get(p, "has_more")) && next) {
        fputs("; next page: --cursor ", stdout);
        output_text(stdout, next, strlen(next), OUTPUT_CELL_MAX_BYTES);
    }
    puts(")");
}

void
output_print(const struct cli *c, const json_t *doc, const struct output_view *view)
{
    int printed = 0;
    if (c->json || view == NULL) {
        output_json(stdout, doc);
        return;
    }
    for (size_t i = 0; i < view->nsections; i++) {
        const struct output_section *s = &view->sections[i];
        const json_t *target = output_lookup(doc, s->path), *pagination = NULL;
        int table = s->kind == OUTPUT_TABLE;
        if (table && s->path == NULL && json_is_object(doc)) {
            target = json_object_get(doc, "items");
            pagination = json_object_get(doc, "pagination");
        }
        if (table ? !json_is_array(target) : !json_is_object(target))
            continue;
        if (printed++)
            putchar('\n');
        if (s->heading && table && json_array_size(target) == 0) {
            printf("%s: none\n", s->heading);
            continue;
        }
        if (s->heading)
            printf("%s:\n", s->heading);
        if (table)
            print_table(target, s);
        else
            print_fields(target, s);
        if (json_is_object(pagination))
            print_pagination(pagination, json_array_size(target));
    }
    /* A document of an unexpected shape is shown whole rather than not at all. */
    if (!printed)
        output_json(stdout, doc);
}

void
output_json(FILE *f, const json_t *doc)
{
    json_dumpf(doc, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', f);
}

void
output_json_line(json_t *doc)
{
    if (doc && json_dumpf(doc, stdout, JSON_COMPACT | JSON_ENCODE_ANY) == 0)
        fputc('\n', stdout);
    json_decref(doc);
}

void
output_text(FILE *f, const char *s, size_t len, size_t max_chars)
{
    static struct cell c;
    cell_init(&c, max_chars);
    cell_put(&c, s, len);
    fputs(c.s, f);
}
