/*
 * routes: the routes file's strict TOML subset and the route model (see
 * routes.h for the format). Four layers, in this order below:
 *
 *   lines    the text cut into lines, each checked as bytes (length,
 *            control characters, UTF-8) so the lexer can trust them;
 *   lexer    the tokens of one line: punctuation, words, strings with their
 *            escapes decoded (nothing in the subset spans lines);
 *   parser   the grammar of a line: a [table] header or `key = value`;
 *   model    keys assigned through a table of known keys (type, check,
 *            duplicate), then, when a table ends, what needs several keys:
 *            required keys, exclusive keys, capabilities.
 *
 * Every error stops the parse; messages carry the line (and the column for
 * the lexer's) but never a value, an api_key being one.
 */
#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uri.h"
#include "util.h"

/* ---- errors --------------------------------------------------------------- */

/* Where messages go: the file's name, the line being read, the caller's buffer. */
struct diag {
    const char *name;
    int line;
    char *err;
    size_t errsz;
};

/* Writes "<name>:<line>: <message>" and returns -1, for `return fail...`. */
static int __attribute__((format(printf, 3, 4)))
fail_at(struct diag *d, int line, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(d->err, d->errsz, "%s:%d: %s", d->name, line, msg);
    return -1;
}

#define fail(d, ...) fail_at((d), (d)->line, __VA_ARGS__)

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- lexer: the tokens of one line ---------------------------------------- */

enum tok {
    TOK_END, /* end of the line, or a comment */
    TOK_LBRACKET,
    TOK_RBRACKET,
    TOK_LBRACE,
    TOK_EQUALS,
    TOK_DOT,
    TOK_COMMA,
    TOK_STRING, /* decoded, in the lexer's buffer until the next string */
    TOK_WORD,   /* a bare key, or a bare value such as true or 1 */
};

/* A bare key is [A-Za-z0-9_-]+; a bare value may also hold '+', '.' and ':'
 * so that a float or a date is one word and can be named as unsupported. */
enum lex_mode { LEX_KEY, LEX_VALUE };

struct token {
    enum tok kind;
    const char *text;
    size_t len;
    int col; /* 1-based byte column */
};

struct lexer {
    struct diag *d;
    const char *line, *p, *end;
    char buf[ROUTES_STRING_MAX_BYTES + 1];
    size_t blen;
};

static void
lex_init(struct lexer *lx, const char *line, const char *end)
{
    lx->line = lx->p = line;
    lx->end = end;
}

static int
col_of(const struct lexer *lx, const char *at)
{
    return (int)(at - lx->line) + 1;
}

/* Appends n decoded bytes to the string being read, within its limit. */
static int
lex_put(struct lexer *lx, const char *s, size_t n, int col)
{
    if (lx->blen + n > ROUTES_STRING_MAX_BYTES)
        return fail(lx->d, "the string at column %d is longer than %d bytes", col,
                    ROUTES_STRING_MAX_BYTES);
    memcpy(lx->buf + lx->blen, s, n);
    lx->blen += n;
    return 0;
}

static size_t
utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The Unicode scalar value of exactly n hex digits at s (before end), or -1. */
static int64_t
hex_scalar(const char *s, const char *end, int n)
{
    if (end - s < n)
        return -1;
    int64_t cp = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        int v = is_digit(c)              ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v < 0)
            return -1;
        cp = cp * 16 + v;
    }
    return (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF ? -1 : cp;
}

/* One escape of a basic string, lx->p on its backslash: TOML 1.0's \b \t \n
 * \f \r \" \\ \uXXXX \UXXXXXXXX, nothing else. */
static int
lex_escape(struct lexer *lx)
{
    static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
    int col = col_of(lx, lx->p);
    const char *e = lx->p + 1;
    const char *simple = e < lx->end && *e ? strchr(from, *e) : NULL;
    if (simple) {
        lx->p = e + 1;
        return lex_put(lx, &to[simple - from], 1, col);
    }
    int digits = e < lx->end && *e == 'u' ? 4 : e < lx->end && *e == 'U' ? 8 : 0;
    int64_t cp = digits ? hex_scalar(e + 1, lx->end, digits) : -1;
    if (cp < 0)
        return fail(lx->d, "invalid escape sequence at column %d", col);
    char u[4];
    lx->p = e + 1 + digits;
    return lex_put(lx, u, utf8_encode((uint32_t)cp, u), col);
}

/* A basic ("...") or literal ('...') string, decoded into lx->buf. */
static int
lex_string(struct lexer *lx, struct token *t)
{
    char q = *lx->p;
    if (lx->end - lx->p >= 3 && lx->p[1] == q && lx->p[2] == q)
        return fail(lx->d, "unsupported TOML: multi-line strings (column %d)", t->col);
    lx->p++;
    lx->blen = 0;
    while (lx->p < lx->end && *lx->p != q) {
        int rc = q == '"' && *lx->p == '\\' ? lex_escape(lx) : lex_put(lx, lx->p++, 1, t->col);
        if (rc != 0)
            return -1;
    }
    if (lx->p == lx->end)
        return fail(lx->d, "the string at column %d is not closed on its line", t->col);
    lx->p++;
    lx->buf[lx->blen] = '\0';
    t->kind = TOK_STRING;
    t->text = lx->buf;
    t->len = lx->blen;
    return 0;
}

static int
word_char(char c, enum lex_mode mode)
{
    if (is_alnum(c) || c == '_' || c == '-')
        return 1;
    return mode == LEX_VALUE && (c == '+' || c == '.' || c == ':');
}

/* The next token of the line. Returns 0, or -1 with the error written. */
static int
lex_next(struct lexer *lx, enum lex_mode mode, struct token *t)
{
    static const char punct[] = "[]{=.,";
    static const enum tok punct_tok[] = {TOK_LBRACKET, TOK_RBRACKET, TOK_LBRACE,
                                         TOK_EQUALS,   TOK_DOT,      TOK_COMMA};
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
        lx->p++;
    t->text = lx->p;
    t->len = 0;
    t->col = col_of(lx, lx->p);
    if (lx->p == lx->end || *lx->p == '#') {
        lx->p = lx->end;
        t->kind = TOK_END;
        return 0;
    }
    if (*lx->p == '"' || *lx->p == '\'')
        return lex_string(lx, t);
    if (word_char(*lx->p, mode)) {
        while (lx->p < lx->end && word_char(*lx->p, mode))
            lx->p++;
        t->kind = TOK_WORD;
        t->len = (size_t)(lx->p - t->text);
        return 0;
    }
    const char *pc = *lx->p ? strchr(punct, *lx->p) : NULL;
    if (pc == NULL)
        return fail(lx->d, "unexpected character at column %d", t->col);
    lx->p++;
    t->kind = punct_tok[pc - punct];
    t->len = 1;
    return 0;
}

/* ---- values and the known keys -------------------------------------------- */

enum vkind { V_STRING, V_INTEGER, V_BOOL, V_ARRAY };
static const char *const vkind_names[] = {"a string", "an integer", "true or false",
                                          "an array of strings"};

/* A parsed value; assigning a key may take its strings (leaving NULL). */
struct value {
    enum vkind kind;
    char *str;    /* V_STRING */
    char **items; /* V_ARRAY, n of them */
    size_t n;
    int64_t i; /* V_INTEGER */
    int b;     /* V_BOOL */
};

struct parser;

/*
 * A key a table accepts: its type, and how a value of that type is stored.
 * For set_string, off is the char * field (in struct route, or in struct
 * routes at the top level) and check, when set, says what is wrong with a
 * value (completing "`key` ...") or returns NULL.
 */
struct key {
    const char *name;
    enum vkind kind;
    int (*set)(struct parser *p, const struct key *k, struct value *v);
    size_t off;
    const char *(*check)(const char *s);
    unsigned cap; /* set_cap */
};

static int set_version(struct parser *p, const struct key *k, struct value *v);
static int set_string(struct parser *p, const struct key *k, struct value *v);
static int set_driver(struct parser *p, const struct key *k, struct value *v);
static int set_model_support(struct parser *p, const struct key *k, struct value *v);
static int set_beta_headers(struct parser *p, const struct key *k, struct value *v);
static int set_cap(struct parser *p, const struct key *k, struct value *v);

static int
route_id_valid(const char *s)
{
    return strlen(s) <= ROUTES_ID_MAX_BYTES && uri_valid_id(s);
}

static const char *
check_route_id(const char *s)
{
    return route_id_valid(s) ? NULL : "must be a route id (1..64 of [A-Za-z0-9._:@-])";
}

static const char *
check_slot_id(const char *s)
{
    return uri_valid_id(s) ? NULL : "must be a slot id (1..128 of [A-Za-z0-9._:@-])";
}

static const char *
check_env_name(const char *s)
{
    int ok = !is_digit(s[0]);
    for (const char *c = s; *c && ok; c++)
        ok = is_alnum(*c) || *c == '_';
    return ok ? NULL : "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)";
}

static int
visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7F)
            return 0;
    return 1;
}

/* Values sent as HTTP header values: no space, nothing to split a header. */
static const char *
check_header_value(const char *s)
{
    return *s && visible_ascii(s, strlen(s)) ? NULL : "must be non-empty visible ASCII";
}

/* host[:port] of an absolute URL: a DNS name or IPv4 ([A-Za-z0-9._-]), or
 * an IPv6 literal in brackets; the port 1..65535. */
static const char *
check_authority(const char *a, size_t n)
{
    size_t hn = 0;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        char ip6[64];
        unsigned char addr[16];
        size_t in = close ? (size_t)(close - a - 1) : sizeof ip6;
        if (in >= sizeof ip6)
            return "has a bad IPv6 host";
        memcpy(ip6, a + 1, in);
        ip6[in] = '\0';
        if (inet_pton(AF_INET6, ip6, addr) != 1)
            return "has a bad IPv6 host";
        hn = in + 2;
    } else {
        while (hn < n && (is_alnum(a[hn]) || strchr("._-", a[hn])))
            hn++;
    }
    if (hn == 0)
        return "has no host";
    if (hn == n)
        return NULL;
    size_t pn = n - hn - 1;
    int64_t port;
    char digits[8];
    if (a[hn] != ':')
        return "has a bad host";
    if (pn == 0 || pn >= sizeof digits)
        return "has a bad port";
    memcpy(digits, a + hn + 1, pn);
    digits[pn] = '\0';
    return util_parse_i64(digits, 1, 65535, &port) == 0 ? NULL : "has a bad port";
}

static const char *
check_base_url(const char *u)
{
    size_t scheme = !strncasecmp(u, "https://", 8) ? 8 : !strncasecmp(u, "http://", 7) ? 7 : 0;
    if (scheme == 0)
        return "must be an absolute http:// or https:// URL";
    if (!visible_ascii(u, strlen(u)))
        return "must be visible ASCII";
    const char *auth = u + scheme;
    size_t an = strcspn(auth, "/?#");
    if (memchr(auth, '@', an))
        return "must not hold userinfo (user:password@)";
    if (strchr(auth + an, '?'))
        return "must not have a query";
    if (strchr(auth + an, '#'))
        return "must not have a fragment";
    return check_authority(auth, an);
}

#define AT(f) offsetof(struct routes, f)
static const struct key top_keys[] = {
    {"version", V_INTEGER, set_version, 0, NULL, 0},
    {"default_route", V_STRING, set_string, AT(default_route), check_route_id, 0},
};

#define RT(f) offsetof(struct route, f)
static const struct key route_keys[] = {
    {"driver", V_STRING, set_driver, 0, NULL, 0},
    {"default_model", V_STRING, set_string, RT(default_model), NULL, 0},
    {"auth_ref", V_STRING, set_string, RT(auth_ref), check_slot_id, 0},
    {"api_key", V_STRING, set_string, RT(api_key), check_header_value, 0},
    {"api_key_env", V_STRING, set_string, RT(api_key_env), check_env_name, 0},
    {"model_support", V_STRING, set_model_support, 0, NULL, 0},
    {"base_url", V_STRING, set_string, RT(base_url), check_base_url, 0},
    {"organization", V_STRING, set_string, RT(organization), check_header_value, 0},
    {"organization_env", V_STRING, set_string, RT(organization_env), check_env_name, 0},
    {"project", V_STRING, set_string, RT(project), check_header_value, 0},
    {"project_env", V_STRING, set_string, RT(project_env), check_env_name, 0},
    {"anthropic_version", V_STRING, set_string, RT(anthropic_version), check_header_value, 0},
    {"anthropic_beta_headers", V_ARRAY, set_beta_headers, 0, check_header_value, 0},
    {"multimodal_input", V_BOOL, set_cap, 0, NULL, ROUTE_CAP_MULTIMODAL_INPUT},
    {"native_web_search", V_BOOL, set_cap, 0, NULL, ROUTE_CAP_NATIVE_WEB_SEARCH},
    {"image_generation", V_BOOL, set_cap, 0, NULL, ROUTE_CAP_IMAGE_GENERATION},
    {"image_edit", V_BOOL, set_cap, 0, NULL, ROUTE_CAP_IMAGE_EDIT},
    {"audio_generation", V_BOOL, set_cap, 0, NULL, ROUTE_CAP_AUDIO_GENERATION},
    {"transcription", V_BOOL, set_cap, 0, NULL, ROUTE_CAP_TRANSCRIPTION},
};

#define NTOP_KEYS   (sizeof top_keys / sizeof top_keys[0])
#define NROUTE_KEYS (sizeof route_keys / sizeof route_keys[0])

/* Upstream's file-based credential sources, which this build has no use for. */
static const char *const unsupported_keys[] = {"openai_auth_source", "openai_auth_file",
                                               "anthropic_auth_source",
                                               "anthropic_credentials_file", NULL};

/* Keys of which a route sets at most one (the first is its credential). */
static const char *const exclusive_keys[][3] = {
    {"api_key", "api_key_env", "auth_ref"},
    {"organization", "organization_env", NULL},
    {"project", "project_env", NULL},
};

const struct route_driver_info route_drivers[ROUTE_DRIVER_COUNT] = {
#define ROUTE_DRIVER_INFO(id, name, wire, auth, base, caps, slot)                                  \
    [ROUTE_DRIVER_##id] = {name, wire, auth, base, caps, slot},
    ROUTE_DRIVERS(ROUTE_DRIVER_INFO)
#undef ROUTE_DRIVER_INFO
};

static const struct key *
find_key(const struct key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

/* ---- parser: the grammar of one line -------------------------------------- */

#define KEY_BUF (ROUTES_ID_MAX_BYTES + 1)

struct parser {
    struct diag d;
    struct lexer lx;
    struct routes *out;
    struct route *cur; /* the [routes.X] being filled; NULL at the top level */
    int top_line[NTOP_KEYS];
    /* Of the current route: the line each key was set on (0: not set), and
     * the capabilities turned on and off. */
    int route_line[NROUTE_KEYS];
    unsigned cap_on, cap_off;
};

static int assign(struct parser *p, const char *name, struct value *v);
static int open_route(struct parser *p, const char *id);

static void
wipe_free(char *s)
{
    if (s != NULL)
        sodium_memzero(s, strlen(s));
    free(s);
}

/* Any string may be a secret: wiped before it is freed. */
static void
value_free(struct value *v)
{
    wipe_free(v->str);
    for (size_t i = 0; i < v->n; i++)
        wipe_free(v->items[i]);
    free(v->items);
}

/* A string token as a value: printable, so no escape smuggles a control
 * character (or a NUL) into a header, a log or a C string. */
static int
string_value(struct parser *p, const struct token *t, char **out)
{
    if (!util_utf8_printable(t->text, t->len))
        return fail(&p->d, "the string at column %d holds a control character", t->col);
    if ((*out = strndup(t->text, t->len)) == NULL)
        return fail(&p->d, "out of memory");
    return 0;
}

/* A key (bare or quoted) copied out of the token: 1..ROUTES_ID_MAX_BYTES of
 * printable text, so messages may quote it. */
static int
take_key(struct parser *p, const struct token *t, char key[KEY_BUF])
{
    if (t->kind != TOK_WORD && t->kind != TOK_STRING)
        return fail(&p->d, "expected a key at column %d", t->col);
    if (t->len == 0 || t->len > ROUTES_ID_MAX_BYTES || !util_utf8_printable(t->text, t->len))
        return fail(&p->d, "the key at column %d is not 1..%d printable bytes", t->col,
                    ROUTES_ID_MAX_BYTES);
    memcpy(key, t->text, t->len);
    key[t->len] = '\0';
    return 0;
}

static int
expect_end(struct parser *p, const char *after)
{
    struct token t;
    if (lex_next(&p->lx, LEX_VALUE, &t) != 0)
        return -1;
    if (t.kind != TOK_END)
        return fail(&p->d, "unexpected text at column %d after %s", t.col, after);
    return 0;
}

/* A decimal TOML integer: optional sign, no leading zero, '_' only between
 * digits. Returns 0 with *out, or -1. */
static int
parse_decimal(const char *s, size_t n, int64_t *out)
{
    size_t i = n > 0 && (s[0] == '+' || s[0] == '-');
    int64_t v = 0;
    if (i == n || (s[i] == '0' && n - i > 1))
        return -1;
    for (; i < n; i++) {
        if (s[i] == '_' && i > 0 && i + 1 < n && is_digit(s[i - 1]) && is_digit(s[i + 1]))
            continue;
        if (!is_digit(s[i]) || v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = s[0] == '-' ? -v : v;
    return 0;
}

/* What kind of TOML a bare value is that the subset refuses, or NULL. */
static const char *
unsupported_word(const char *s, size_t n)
{
    const char *digits = s + (n > 0 && (s[0] == '+' || s[0] == '-'));
    size_t dn = n - (size_t)(digits - s);
    if (memchr(s, ':', n) || (n >= 5 && is_digit(s[0]) && s[4] == '-'))
        return "dates and times";
    if (dn >= 2 && digits[0] == '0' && strchr("xob", digits[1]))
        return "hexadecimal, octal and binary integers";
    if ((dn == 3 && (!strncmp(digits, "inf", 3) || !strncmp(digits, "nan", 3))) ||
        (dn > 0 && is_digit(digits[0]) &&
         (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))))
        return "floats";
    return NULL;
}

static int
parse_word(struct parser *p, const struct token *t, struct value *v)
{
    if ((t->len == 4 && !strncmp(t->text, "true", 4)) ||
        (t->len == 5 && !strncmp(t->text, "false", 5))) {
        v->kind = V_BOOL;
        v->b = t->text[0] == 't';
        return 0;
    }
    const char *what = unsupported_word(t->text, t->len);
    if (what)
        return fail(&p->d, "unsupported TOML: %s (column %d)", what, t->col);
    if (parse_decimal(t->text, t->len, &v->i) == 0) {
        v->kind = V_INTEGER;
        return 0;
    }
    return fail(&p->d, "invalid value at column %d (a string needs quotes)", t->col);
}

static int
array_error(struct parser *p, const struct token *t, const char *expected)
{
    if (t->kind == TOK_END)
        return fail(&p->d, "unsupported TOML: multi-line arrays (close the array on its line)");
    return fail(&p->d, "expected %s at column %d (arrays hold only strings)", expected, t->col);
}

/* A single-line array of strings, after its '['; a trailing comma is fine. */
static int
parse_array(struct parser *p, struct value *v)
{
    struct token t;
    v->kind = V_ARRAY;
    if ((v->items = calloc(ROUTES_ARRAY_MAX_ITEMS, sizeof *v->items)) == NULL)
        return fail(&p->d, "out of memory");
    for (;;) {
        if (lex_next(&p->lx, LEX_VALUE, &t) != 0)
            return -1;
        if (t.kind == TOK_RBRACKET)
            return 0;
        if (t.kind != TOK_STRING)
            return array_error(p, &t, "a string or `]`");
        if (v->n == ROUTES_ARRAY_MAX_ITEMS)
            return fail(&p->d, "an array holds more than %d items", ROUTES_ARRAY_MAX_ITEMS);
        if (string_value(p, &t, &v->items[v->n]) != 0)
            return -1;
        v->n++;
        if (lex_next(&p->lx, LEX_VALUE, &t) != 0)
            return -1;
        if (t.kind == TOK_RBRACKET)
            return 0;
        if (t.kind != TOK_COMMA)
            return array_error(p, &t, "`,` or `]`");
    }
}

static int
parse_value(struct parser *p, struct value *v)
{
    struct token t;
    if (lex_next(&p->lx, LEX_VALUE, &t) != 0)
        return -1;
    switch (t.kind) {
    case TOK_STRING:
        v->kind = V_STRING;
        return string_value(p, &t, &v->str);
    case TOK_WORD:
        return parse_word(p, &t, v);
    case TOK_LBRACKET:
        return parse_array(p, v);
    case TOK_LBRACE:
        return fail(&p->d, "unsupported TOML: inline tables (column %d)", t.col);
    default:
        return fail(&p->d, "expected a value at column %d", t.col);
    }
}

/* `key = value`, first being the key's token. */
static int
parse_keyval(struct parser *p, const struct token *first)
{
    char key[KEY_BUF];
    struct token t;
    struct value v = {0};
    if (take_key(p, first, key) != 0 || lex_next(&p->lx, LEX_KEY, &t) != 0)
        return -1;
    if (t.kind == TOK_DOT)
        return fail(&p->d, "unsupported TOML: dotted keys (column %d)", t.col);
    if (t.kind != TOK_EQUALS)
        return fail(&p->d, "expected `=` after `%s`", key);
    int rc = parse_value(p, &v);
    if (rc == 0)
        rc = expect_end(p, "the value");
    if (rc == 0)
        rc = assign(p, key, &v);
    value_free(&v);
    return rc;
}

static int
table_error(struct parser *p)
{
    return fail(&p->d, "unknown table: the only tables are [routes.<route_id>]");
}

/* A table header, after its '[': [routes.<id>], the id bare or quoted. */
static int
parse_header(struct parser *p)
{
    char part[2][KEY_BUF];
    size_t n = 0;
    struct token t;
    if (lex_next(&p->lx, LEX_KEY, &t) != 0)
        return -1;
    if (t.kind == TOK_LBRACKET)
        return fail(&p->d, "unsupported TOML: arrays of tables ([[...]])");
    for (;;) {
        if (n == 2)
            return table_error(p);
        if (take_key(p, &t, part[n++]) != 0 || lex_next(&p->lx, LEX_KEY, &t) != 0)
            return -1;
        if (t.kind == TOK_RBRACKET)
            break;
        if (t.kind != TOK_DOT)
            return fail(&p->d, "expected `.` or `]` at column %d", t.col);
        if (lex_next(&p->lx, LEX_KEY, &t) != 0)
            return -1;
    }
    if (expect_end(p, "the table header") != 0)
        return -1;
    if (n != 2 || strcmp(part[0], "routes"))
        return table_error(p);
    return open_route(p, part[1]);
}

static int
parse_line(struct parser *p)
{
    struct token t;
    if (lex_next(&p->lx, LEX_KEY, &t) != 0)
        return -1;
    if (t.kind == TOK_END)
        return 0;
    if (t.kind == TOK_LBRACKET)
        return parse_header(p);
    return parse_keyval(p, &t);
}

/* The bytes of one line, before the lexer sees them: its length, no control
 * character but tab (a lone CR is one), valid UTF-8. */
static int
check_line(struct parser *p, const char *s, size_t n)
{
    if (n > ROUTES_LINE_MAX_BYTES)
        return fail(&p->d, "the line is longer than %d bytes", ROUTES_LINE_MAX_BYTES);
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7F)
            return fail(&p->d, "control character 0x%02x at column %zu", (unsigned char)s[i],
                        i + 1);
    /* util_utf8_printable refuses tabs: check the pieces between them. */
    for (size_t i = 0, j = 0; i <= n; i = j + 1) {
        for (j = i; j < n && s[j] != '\t'; j++)
            ;
        if (!util_utf8_printable(s + i, j - i))
            return fail(&p->d, "invalid UTF-8");
    }
    return 0;
}

/* Every line of the text, LF or CRLF ended, through the checks and the
 * grammar; a UTF-8 byte-order mark may start the file. */
static int
parse_lines(struct parser *p, const char *text, size_t len)
{
    const char *s = text, *end = text + len;
    if (len > ROUTES_FILE_MAX_BYTES)
        return fail_at(&p->d, 1, "the file is larger than %d bytes", ROUTES_FILE_MAX_BYTES);
    if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
        s += 3;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        if (nl && e > s && e[-1] == '\r')
            e--;
        p->d.line++;
        if (check_line(p, s, (size_t)(e - s)) != 0)
            return -1;
        lex_init(&p->lx, s, e);
        if (parse_line(p) != 0)
            return -1;
        s = nl ? nl + 1 : end;
    }
    return 0;
}

/* ---- model: keys into routes ---------------------------------------------- */

/* A key the current table does not know; the message says where it would
 * belong when it is a key of the other kind of table. */
static int
unknown_key(struct parser *p, const char *name)
{
    if (util_in_list(name, unsupported_keys))
        return fail(&p->d,
                    "`%s` is not supported by this build (use auth_ref, api_key or "
                    "api_key_env)",
                    name);
    if (p->cur == NULL)
        return fail(&p->d, "unknown top-level key `%s`%s", name,
                    find_key(route_keys, NROUTE_KEYS, name)
                        ? ": route keys go in a [routes.<route_id>] table"
                        : "");
    return fail(&p->d, "unknown key `%s` in [routes.%s]%s", name, p->cur->id,
                find_key(top_keys, NTOP_KEYS, name) ? ": top-level keys go before the first table"
                                                    : "");
}

/* Sets key name of the current table (the top level or a route) to v:
 * known, not set before, of its type, then as its key stores it. */
static int
assign(struct parser *p, const char *name, struct value *v)
{
    const struct key *keys = p->cur ? route_keys : top_keys;
    int *lines = p->cur ? p->route_line : p->top_line;
    const struct key *k = find_key(keys, p->cur ? NROUTE_KEYS : NTOP_KEYS, name);
    if (k == NULL)
        return unknown_key(p, name);
    int *seen = &lines[k - keys];
    if (*seen)
        return fail(&p->d, "duplicate key `%s` (first set on line %d)", name, *seen);
    if (v->kind != k->kind)
        return fail(&p->d, "`%s` must be %s", name, vkind_names[k->kind]);
    *seen = p->d.line;
    return k->set(p, k, v);
}

static int
set_version(struct parser *p, const struct key *k, struct value *v)
{
    return v->i == 1 ? 0 : fail(&p->d, "`%s` must be 1", k->name);
}

static int
set_string(struct parser *p, const struct key *k, struct value *v)
{
    const char *why = *v->str ? (k->check ? k->check(v->str) : NULL) : "must not be empty";
    if (why)
        return fail(&p->d, "`%s` %s", k->name, why);
    char *base = p->cur ? (char *)p->cur : (char *)p->out;
    *(char **)(base + k->off) = v->str;
    v->str = NULL;
    return 0;
}

/* The index of s in a list of n names, or -1. */
static int
name_index(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i]))
            return (int)i;
    return -1;
}

int
route_driver_named(const char *name)
{
    for (int d = 0; name && d < ROUTE_DRIVER_COUNT; d++)
        if (!strcmp(name, route_drivers[d].name))
            return d;
    return -1;
}

static int
set_driver(struct parser *p, const struct key *k, struct value *v)
{
    int d = route_driver_named(v->str);
    if (d < 0)
        return fail(&p->d, "`%s` must be anthropic, google, openai, openrouter or xai", k->name);
    p->cur->driver = (enum route_driver)d;
    return 0;
}

static int
set_model_support(struct parser *p, const struct key *k, struct value *v)
{
    static const char *const names[] = {"family", "any"};
    int m = name_index(v->str, names, 2);
    if (m < 0)
        return fail(&p->d, "`%s` must be family or any", k->name);
    p->cur->model_support_any = m;
    return 0;
}

static int
set_beta_headers(struct parser *p, const struct key *k, struct value *v)
{
    for (size_t i = 0; i < v->n; i++) {
        const char *why = k->check(v->items[i]);
        if (why)
            return fail(&p->d, "`%s` item %zu %s", k->name, i + 1, why);
    }
    p->cur->beta_headers = v->items;
    p->cur->nbeta = v->n;
    v->items = NULL;
    v->n = 0;
    return 0;
}

static int
set_cap(struct parser *p, const struct key *k, struct value *v)
{
    if (v->b)
        p->cap_on |= k->cap;
    else
        p->cap_off |= k->cap;
    return 0;
}

/* The line the current route set a key on, 0 when it did not. */
static int
route_line_of(const struct parser *p, const char *name)
{
    return p->route_line[find_key(route_keys, NROUTE_KEYS, name) - route_keys];
}

/* A route's exclusive keys: the second one set is the error. */
static int
check_exclusive(struct parser *p)
{
    for (size_t g = 0; g < sizeof exclusive_keys / sizeof exclusive_keys[0]; g++) {
        const char *first = NULL;
        int first_line = 0;
        for (size_t i = 0; i < 3 && exclusive_keys[g][i]; i++) {
            const char *name = exclusive_keys[g][i];
            int line = route_line_of(p, name);
            if (line && first)
                return fail_at(&p->d, line > first_line ? line : first_line,
                               "`%s` and `%s` are both set: give one of them", first, name);
            if (line)
                first = name, first_line = line;
        }
    }
    return 0;
}

/* The driver's capabilities with the overrides; audio generation and
 * transcription cannot be turned on where the driver has none. */
static int
resolve_caps(struct parser *p)
{
    struct route *r = p->cur;
    unsigned def = route_drivers[r->driver].caps;
    r->caps = (def | p->cap_on) & ~p->cap_off;
    for (size_t i = 0; i < NROUTE_KEYS; i++) {
        const struct key *k = &route_keys[i];
        if (k->set == set_cap && (k->cap & p->cap_on & ROUTE_CAPS_AUDIO & ~def))
            return fail_at(&p->d, p->route_line[i],
                           "`%s` cannot be enabled: the %s driver does not support it", k->name,
                           route_drivers[r->driver].name);
    }
    return 0;
}

/* What needs the whole table, when a route's table ends. */
static int
finish_route(struct parser *p)
{
    static const char *const required[] = {"driver", "default_model"};
    struct route *r = p->cur;
    if (r == NULL)
        return 0;
    for (size_t i = 0; i < 2; i++)
        if (!route_line_of(p, required[i]))
            return fail_at(&p->d, r->line, "[routes.%s] has no `%s`", r->id, required[i]);
    if (check_exclusive(p) != 0 || resolve_caps(p) != 0)
        return -1;
    p->cur = NULL;
    return 0;
}

/* A [routes.<id>] header: ends the route before, starts a new one. */
static int
open_route(struct parser *p, const char *id)
{
    struct routes *out = p->out;
    if (finish_route(p) != 0)
        return -1;
    if (!route_id_valid(id))
        return fail(&p->d,
                    "route id `%s` is not 1..64 of [A-Za-z0-9._:@-] starting with a letter, "
                    "a digit or `_`",
                    id);
    const struct route *dup = routes_find(out, id);
    if (dup)
        return fail(&p->d, "duplicate table [routes.%s] (first on line %d)", id, dup->line);
    if (out->n == ROUTES_MAX_ROUTES)
        return fail(&p->d, "more than %d routes", ROUTES_MAX_ROUTES);
    struct route *r = &out->v[out->n];
    if ((r->id = strdup(id)) == NULL)
        return fail(&p->d, "out of memory");
    r->line = p->d.line;
    out->n++;
    p->cur = r;
    memset(p->route_line, 0, sizeof p->route_line);
    p->cap_on = p->cap_off = 0;
    return 0;
}

/* What needs the whole file, at its end. */
static int
finish_file(struct parser *p)
{
    struct routes *out = p->out;
    if (finish_route(p) != 0)
        return -1;
    if (!p->top_line[0])
        return fail_at(&p->d, 1, "missing `version = 1`");
    if (out->n == 0)
        return fail_at(&p->d, 1, "no routes: add a [routes.<route_id>] table");
    if (out->default_route && !routes_find(out, out->default_route))
        return fail_at(&p->d, p->top_line[1], "`default_route` names `%s`, which has no table",
                       out->default_route);
    if (out->default_route == NULL && out->n > 1)
        return fail_at(&p->d, out->v[1].line,
                       "a second route needs a top-level `default_route` to say which is the "
                       "default");
    if (out->default_route == NULL && (out->default_route = strdup(out->v[0].id)) == NULL)
        return fail_at(&p->d, 1, "out of memory");
    return 0;
}

/* ---- public API ----------------------------------------------------------- */

int
routes_parse(const char *text, size_t len, const char *name, struct routes *out, char *err,
             size_t errsz)
{
    struct parser p = {.d = {name ? name : "routes file", 0, err, errsz}, .out = out};
    p.lx.d = &p.d;
    memset(out, 0, sizeof *out);
    int rc = (out->v = calloc(ROUTES_MAX_ROUTES, sizeof *out->v)) == NULL
                 ? fail_at(&p.d, 1, "out of memory")
                 : parse_lines(&p, text, len);
    if (rc == 0)
        rc = finish_file(&p);
    if (rc == 0)
        crypto_hash_sha256(out->sha256, (const unsigned char *)text, len);
    else
        routes_free(out);
    sodium_memzero(p.lx.buf, sizeof p.lx.buf);
    return rc;
}

/* Reads fd into buf up to its end or ROUTES_FILE_MAX_BYTES + 1 bytes (one
 * too many, for routes_parse to refuse). Returns NULL, or why it failed. */
static const char *
read_all(int fd, char *buf, size_t *len)
{
    while (*len <= ROUTES_FILE_MAX_BYTES) {
        ssize_t n = read(fd, buf + *len, ROUTES_FILE_MAX_BYTES + 1 - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? strerror(errno) : NULL;
        *len += (size_t)n;
    }
    return NULL;
}

/* The bytes of a regular file into *buf (caller frees, even on failure).
 * Returns 0, or -1 with "<path>: reason". */
static int
read_file(const char *path, char **buf, size_t *len, char *err, size_t errsz)
{
    const char *why;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if ((*buf = malloc(ROUTES_FILE_MAX_BYTES + 1)) == NULL)
        why = "out of memory";
    else
        why = read_all(fd, *buf, len);
    if (fd >= 0)
        close(fd);
    if (why == NULL)
        return 0;
    snprintf(err, errsz, "%s: %s", path, why);
    return -1;
}

int
routes_load(const char *path, struct routes *out, char *err, size_t errsz)
{
    char *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = read_file(path, &buf, &len, err, errsz);
    if (rc == 0)
        rc = routes_parse(buf, len, path, out, err, errsz);
    if (buf != NULL)
        sodium_memzero(buf, len);
    free(buf);
    return rc;
}

const struct route *
routes_find(const struct routes *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].id, id))
            return &r->v[i];
    return NULL;
}

const struct route *
routes_select(const struct routes *r, const char *provider, const char *model,
              const char **model_out, char *why, size_t whysz)
{
    const struct route *rt = provider ? routes_find(r, provider) : NULL;
    const char *slash = model ? strchr(model, '/') : NULL;
    if (rt == NULL && provider) {
        snprintf(why, whysz, "the run asks for route '%.64s', which the routes file does not have",
                 provider);
        return NULL;
    }
    if (rt == NULL && slash) {
        char id[ROUTES_ID_MAX_BYTES + 1];
        snprintf(id, sizeof id, "%.*s", (int)(slash - model), model);
        if ((rt = routes_find(r, id)) != NULL)
            model = slash + 1;
    }
    if (rt == NULL)
        rt = routes_find(r, r->default_route);
    *model_out = model && *model ? model : rt->default_model;
    return rt;
}

static const char *
auth_kind(const struct route *rt)
{
    return rt->auth_ref      ? "auth_ref"
           : rt->api_key     ? "api_key"
           : rt->api_key_env ? "api_key_env"
                             : "none";
}

static json_t *
route_inventory(const struct route *rt)
{
    json_t *caps = json_pack("{s:i}", "matrix_version", ROUTE_CAPABILITY_MATRIX_VERSION);
    for (size_t i = 0; caps && i < NROUTE_KEYS; i++)
        if (route_keys[i].set == set_cap &&
            json_object_set_new(caps, route_keys[i].name,
                                json_boolean(rt->caps & route_keys[i].cap)) != 0) {
            json_decref(caps);
            caps = NULL;
        }
    return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:o}", "route_id", rt->id, "provider",
                     route_drivers[rt->driver].name, "model", rt->default_model, "auth_ref",
                     rt->auth_ref, "auth_kind", auth_kind(rt), "model_support",
                     rt->model_support_any ? "any" : "family", "capabilities", caps);
}

json_t *
routes_inventory(const struct routes *r)
{
    char hex[2 * sizeof r->sha256 + 1];
    sodium_bin2hex(hex, sizeof hex, r->sha256, sizeof r->sha256);
    json_t *list = json_array();
    for (size_t i = 0; list && i < r->n; i++)
        if (json_array_append_new(list, route_inventory(&r->v[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    return json_pack("{s:s?, s:I, s:s, s:o}", "default_route", r->default_route, "route_count",
                     (json_int_t)r->n, "sha256", hex, "routes", list);
}

json_t *
routes_runtime(const struct routes *r)
{
    if (r == NULL)
        return json_object();
    json_t *inv = routes_inventory(r), *list = json_object_get(inv, "routes"), *rt, *dflt = NULL;
    size_t i;
    json_array_foreach(list, i, rt)
    {
        if (!strcmp(r->v[i].id, r->default_route))
            dflt = rt;
    }
    json_t *out = json_pack("{s:O?, s:O}", "default_route", dflt, "routes", list);
    json_decref(inv);
    return out;
}

static void
route_free(struct route *rt)
{
    char *strings[] = {rt->id,           rt->default_model,    rt->auth_ref,
                       rt->api_key,      rt->api_key_env,      rt->base_url,
                       rt->organization, rt->organization_env, rt->project,
                       rt->project_env,  rt->anthropic_version};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        wipe_free(strings[i]);
    for (size_t i = 0; i < rt->nbeta; i++)
        wipe_free(rt->beta_headers[i]);
    free(rt->beta_headers);
}

void
routes_free(struct routes *r)
{
    for (size_t i = 0; r->v && i < r->n; i++)
        route_free(&r->v[i]);
    free(r->v);
    wipe_free(r->default_route);
    memset(r, 0, sizeof *r);
}
