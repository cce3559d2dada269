#include "sse.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SSE_MIN_ALLOC 4096

void
sse_reset(struct sse_parser *p)
{
    p->len = p->line_start = 0;
    p->after_cr = 0;
}

static int
parser_append(struct sse_parser *p, const char *s, size_t n)
{
    if (p->len + n > p->max_bytes)
        return SSE_TOO_BIG;
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : SSE_MIN_ALLOC;
        while (cap < p->len + n + 1)
            cap *= 2;
        char *grown = realloc(p->buf, cap);
        if (grown == NULL)
            return SSE_NOMEM;
        p->buf = grown;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return 0;
}

/* Copies a field value into dst; one that does not fit is ignored, or cut
 * when cut is set. */
static void
copy_value(char *dst, size_t size, const char *v, size_t n, int cut)
{
    if (n >= size && !cut)
        return;
    n = n < size ? n : size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* Applies one field other than data:. Unknown fields and comments (an
 * empty name) are ignored, as the SSE rules say. */
static void
parser_field(struct sse_parser *p, struct sse_frame *f, const char *name, size_t nlen,
             const char *v, size_t vlen)
{
    char digits[16] = "";
    int64_t ms;
    if (nlen == 2 && !memcmp(name, "id", 2) && !memchr(v, '\0', vlen)) {
        copy_value(f->id, sizeof f->id, v, vlen, 0);
    } else if (nlen == 5 && !memcmp(name, "event", 5)) {
        copy_value(f->event, sizeof f->event, v, vlen, 1);
    } else if (nlen == 5 && !memcmp(name, "retry", 5)) {
        copy_value(digits, sizeof digits, v, vlen, 0);
        if (util_parse_i64(digits, 0, INT64_MAX, &ms) == 0)
            p->retry_ms = ms;
    }
}

/* A blank line ended the frame: splits its lines into fields, joins the
 * data lines in place and hands the frame over when it has data. */
static int
parser_dispatch(struct sse_parser *p)
{
    struct sse_frame f = {.id = "", .event = "message"};
    size_t w = 0, r = 0;
    int has_data = 0;
    while (r < p->len) {
        char *line = p->buf + r;
        size_t n = (size_t)((char *)memchr(line, '\n', p->len - r) - line);
        const char *colon = memchr(line, ':', n);
        size_t nlen = colon ? (size_t)(colon - line) : n;
        const char *v = colon ? colon + 1 : line + n;
        size_t vlen = (size_t)(line + n - v);
        if (vlen > 0 && *v == ' ')
            v++, vlen--;
        r += n + 1;
        if (nlen != 4 || memcmp(line, "data", 4)) {
            parser_field(p, &f, line, nlen, v, vlen);
            continue;
        }
        /* w never passes the start of this line: each line is longer than
         * the value it adds. */
        if (has_data)
            p->buf[w++] = '\n';
        memmove(p->buf + w, v, vlen);
        w += vlen;
        has_data = 1;
    }
    sse_reset(p);
    if (!has_data)
        return 0;
    if (f.event[0] == '\0') /* `event:` with no value: the default type */
        strcpy(f.event, "message");
    p->buf[w] = '\0';
    f.data = p->buf;
    f.data_len = w;
    return p->fn(p->arg, &f);
}

static int
parser_end_line(struct sse_parser *p)
{
    if (p->len == p->line_start)
        return p->len ? parser_dispatch(p) : 0;
    int s = parser_append(p, "\n", 1);
    p->line_start = p->len;
    return s;
}

int
sse_feed(struct sse_parser *p, const char *s, size_t n)
{
    int st = 0;
    for (size_t i = 0; i < n && st == 0;) {
        if (p->after_cr && s[i] == '\n') {
            p->after_cr = 0;
            i++;
            continue;
        }
        size_t k = i;
        while (k < n && s[k] != '\n' && s[k] != '\r')
            k++;
        p->after_cr = 0;
        if ((st = parser_append(p, s + i, k - i)) != 0 || k == n)
            break;
        p->after_cr = s[k] == '\r';
        i = k + 1;
        st = parser_end_line(p);
    }
    return st;
}

void
sse_free(struct sse_parser *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = p->line_start = 0;
}
