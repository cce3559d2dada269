#include "json_exact.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t
digits(const char *text, size_t len, size_t j)
{
    while (j < len && text[j] >= '0' && text[j] <= '9')
        j++;
    return j;
}

/* The length of the number token at text[i] (a '-' or a digit outside a
 * string), read as JSON's grammar and jansson's lexer read it, and whether it
 * has a fraction or an exponent. */
static size_t
number_len(const char *text, size_t len, size_t i, int *real)
{
    size_t j = digits(text, len, i + (text[i] == '-'));
    *real = 0;
    if (j < len && text[j] == '.') {
        *real = 1;
        j = digits(text, len, j + 1);
    }
    if (j < len && (text[j] == 'e' || text[j] == 'E')) {
        *real = 1;
        j++;
        j = digits(text, len, j + (j < len && (text[j] == '+' || text[j] == '-')));
    }
    return j - i;
}

/* Calls fn for each number token outside strings, in order; stops at the first
 * nonzero return, which it returns. Tracks nesting for json_exact_check. */
typedef int (*number_fn)(const char *tok, size_t n, int real, size_t at, void *arg);

static int
each_number(const char *text, size_t len, number_fn fn, void *arg, struct json_exact_err *err)
{
    int in_string = 0, depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > JSON_EXACT_MAX_DEPTH && err) {
                *err = (struct json_exact_err){"nested deeper than 64 levels", i};
                return -1;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int real;
            size_t n = number_len(text, len, i, &real);
            int rc = fn(text + i, n, real, i, arg);
            if (rc != 0)
                return rc;
            i += n - 1;
        }
    }
    return 0;
}

/* The token as a NUL-terminated copy in buf (tokens longer than buf are
 * clipped, which only makes them fail: no exact number is that long). */
static const char *
token(const char *tok, size_t n, char *buf, size_t size)
{
    size_t k = n < size - 1 ? n : size - 1;
    memcpy(buf, tok, k);
    buf[k] = '\0';
    return buf;
}

/* 1 when the integer token is beyond int64 (jansson refuses it). */
static int
beyond_int64(const char *tok, size_t n)
{
    char buf[512];
    errno = 0;
    (void)strtoll(token(tok, n, buf, sizeof buf), NULL, 10);
    return errno == ERANGE;
}

static int
check_number(const char *tok, size_t n, int real, size_t at, void *arg)
{
    struct json_exact_err *err = arg;
    if (!real) {
        if (!beyond_int64(tok, n))
            return 0;
        *err = (struct json_exact_err){"integer outside the 64-bit range", at};
        return -1;
    }
    char buf[512];
    errno = 0;
    double d = strtod(token(tok, n, buf, sizeof buf), NULL);
    if (errno == ERANGE || !isfinite(d)) {
        *err = (struct json_exact_err){"number too large or too small to store exactly", at};
        return -1;
    }
    if (fabs(d) >= JSON_EXACT_REAL_LIMIT) {
        *err = (struct json_exact_err){
            "number with a fraction or exponent of 2^53 or more (whole numbers up to 2^63-1 "
            "are kept exactly when written as integers)",
            at};
        return -1;
    }
    return 0;
}

int
json_exact_check(const char *text, size_t len, struct json_exact_err *err)
{
    return each_number(text, len, check_number, err, err);
}

/* json_exact_load's rewrite: the text with ".0" after each integer beyond
 * int64, which jansson then reads as a double. */
struct widen {
    char *out;
    size_t used;
    const char *text; /* where the next copy starts */
};

static int
widen_number(const char *tok, size_t n, int real, size_t at, void *arg)
{
    struct widen *w = arg;
    (void)at;
    if (real || !beyond_int64(tok, n))
        return 0;
    size_t k = (size_t)(tok + n - w->text);
    memcpy(w->out + w->used, w->text, k);
    memcpy(w->out + w->used + k, ".0", 2);
    w->used += k + 2;
    w->text = tok + n;
    return 0;
}

json_t *
json_exact_load(const char *text, size_t len, size_t flags, json_error_t *err)
{
    json_error_t e;
    json_error_t *ep = err ? err : &e;
    json_t *v = json_loadb(text, len, flags, ep);
    if (v != NULL || json_error_code(ep) != json_error_numeric_overflow)
        return v;
    /* Each widened integer has at least 19 digits, so the text at most grows
     * by 2 bytes in 20. */
    struct widen w = {malloc(len + len / 10 + 3), 0, text};
    if (w.out == NULL)
        return NULL;
    each_number(text, len, widen_number, &w, NULL);
    size_t rest = (size_t)(text + len - w.text);
    memcpy(w.out + w.used, w.text, rest);
    v = json_loadb(w.out, w.used + rest, flags, ep);
    free(w.out);
    return v;
}
