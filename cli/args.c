#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "stack.h"
#include "util.h"

#define DEFAULT_BASE_URL "http://127.0.0.1:4000"
#define ARGS_MAX_OPTS    64 /* one bit each in args_parse's "seen" mask */
#define READ_CHUNK_BYTES 65536

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kheish: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return ARGS_USAGE;
}

/* Whether arg is `--name` or `--name=VALUE`; for the second form *inline_value
 * points at VALUE, else it is NULL. */
static int
flag_is(const char *arg, const char *name, const char **inline_value)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) || strncmp(arg + 2, name, n))
        return 0;
    if (arg[2 + n] == '\0') {
        *inline_value = NULL;
        return 1;
    }
    if (arg[2 + n] != '=')
        return 0;
    *inline_value = arg + 3 + n;
    return 1;
}

/* The value of the flag at argv[*i]: inline, or the next word (consumed). */
static int
flag_value(int argc, char **argv, int *i, const char *name, const char *inline_value,
           const char **out)
{
    if (inline_value) {
        *out = inline_value;
        return 0;
    }
    if (*i + 1 >= argc)
        return usage_error("--%s needs a value", name);
    *out = argv[++*i];
    return 0;
}

static const char *
env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A bearer token goes into a header: visible ASCII only, no spaces. */
static int
token_ok(const char *t)
{
    if (*t == '\0')
        return 0;
    for (; *t; t++)
        if (*t < 0x21 || *t > 0x7E)
            return 0;
    return 1;
}

static int
read_token_file(const char *path, struct args_global *g)
{
    size_t len;
    if (args_read_file(path, ARGS_TOKEN_FILE_MAX_BYTES, &g->token_buf, &len) != 0)
        return -1;
    char *s = g->token_buf;
    while (len > 0 && strchr(" \t\r\n", s[len - 1]))
        s[--len] = '\0';
    size_t lead = strspn(s, " \t\r\n");
    memmove(s, s + lead, len - lead + 1);
    g->cli.token = s;
    return 0;
}

/* Resolves the token: flags first, then the environment, never both kinds,
 * then the local stack's admin token file. */
static int
resolve_token(const char *token, const char *token_file, struct args_global *g)
{
    const char *what = "--token and --token-file";
    if (token == NULL && token_file == NULL) {
        token = env("KHEISH_DAEMON_TOKEN");
        token_file = env("KHEISH_DAEMON_TOKEN_FILE");
        what = "KHEISH_DAEMON_TOKEN and KHEISH_DAEMON_TOKEN_FILE";
    }
    if (token && token_file)
        return usage_error("%s cannot be used together", what);
    /* None given: the admin token `kheish up` wrote for the local stack, when
     * this user can read it (as after `make up`). */
    char local[PATH_MAX];
    if (token == NULL && token_file == NULL &&
        snprintf(local, sizeof local, "%s/tokens/admin-token",
                 env("KHEISH_STATE_ROOT") ? env("KHEISH_STATE_ROOT") : STACK_DEFAULT_ROOT) <
            (int)sizeof local &&
        access(local, R_OK) == 0)
        token_file = local;
    g->cli.token = token;
    if (token_file && read_token_file(token_file, g) != 0)
        return ARGS_USAGE;
    if (g->cli.token && !token_ok(g->cli.token))
        return usage_error("the token is empty or holds spaces or control characters");
    return 0;
}

/* The global flags as given on the command line (NULL = absent). */
struct raw_globals {
    const char *base_url, *token, *token_file, *output;
};

/* Moves the global flags out of argv into raw, keeping the other words in
 * order. Words after "--" are never global flags. */
static int
extract_globals(int *argc, char **argv, struct raw_globals *raw, int *help)
{
    const struct {
        const char *name;
        const char **dest;
    } flags[] = {{"base-url", &raw->base_url},
                 {"token", &raw->token},
                 {"token-file", &raw->token_file},
                 {"output", &raw->output}};
    const size_t nflags = sizeof flags / sizeof flags[0];
    int out = 1, rest = 0;
    for (int i = 1; i < *argc; i++) {
        const char *arg = argv[i], *inline_value = NULL, *value = NULL;
        size_t k = 0;
        if (!rest && (!strcmp(arg, "-h") || !strcmp(arg, "--help"))) {
            *help = 1;
            continue;
        }
        rest = rest || !strcmp(arg, "--"); /* kept: verbs see "--" too */
        while (!rest && k < nflags && !flag_is(arg, flags[k].name, &inline_value))
            k++;
        if (rest || k == nflags) {
            argv[out++] = argv[i];
            continue;
        }
        if (flag_value(*argc, argv, &i, flags[k].name, inline_value, &value) != 0)
            return ARGS_USAGE;
        if (*flags[k].dest)
            return usage_error("--%s given more than once", flags[k].name);
        *flags[k].dest = value;
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

static int
resolve_globals(const struct raw_globals *raw, struct args_global *g)
{
    g->cli.base_url = raw->base_url ? raw->base_url : env("KHEISH_DAEMON_URL");
    if (g->cli.base_url == NULL)
        g->cli.base_url = DEFAULT_BASE_URL;
    if (strncmp(g->cli.base_url, "http://", 7) && strncmp(g->cli.base_url, "https://", 8))
        return usage_error("base URL '%s' must start with http:// or https://", g->cli.base_url);
    if (raw->output && strcmp(raw->output, "pretty") && strcmp(raw->output, "json"))
        return usage_error("--output must be pretty or json");
    g->cli.json = raw->output && !strcmp(raw->output, "json");
    return resolve_token(raw->token, raw->token_file, g);
}

int
args_global_parse(int *argc, char **argv, struct args_global *g)
{
    struct raw_globals raw = {0};
    memset(g, 0, sizeof *g);
    if (extract_globals(argc, argv, &raw, &g->help) != 0 || resolve_globals(&raw, g) != 0)
        return EXIT_BAD_REQUEST;
    return EXIT_OK;
}

void
args_global_free(struct args_global *g)
{
    if (g->token_buf)
        memset(g->token_buf, 0, strlen(g->token_buf));
    free(g->token_buf);
    g->token_buf = NULL;
}

/* Stores the value of one flag that takes a value. */
static int
set_value(const struct args_opt *o, const char *value)
{
    if (o->num) {
        if (util_parse_i64(value, o->min, o->max, o->num) != 0)
            return usage_error("--%s must be an integer between %lld and %lld", o->name,
                               (long long)o->min, (long long)o->max);
        return 0;
    }
    if (o->choices && !util_in_list(value, o->choices)) {
        char list[256] = "";
        for (const char *const *c = o->choices; *c; c++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     c == o->choices ? "" : "|", *c);
        return usage_error("--%s must be one of %s", o->name, list);
    }
    *o->str = value;
    return 0;
}

int
args_parse(int argc, char **argv, const struct args_opt *opts, const char **pos, int min_pos,
           int max_pos)
{
    uint64_t seen = 0;
    int npos = 0, rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *inline_value = NULL, *value = NULL;
        if (!rest && !strcmp(arg, "--")) {
            rest = 1;
            continue;
        }
        if (rest || arg[0] != '-' || arg[1] == '\0') {
            if (npos == max_pos)
                return usage_error("unexpected argument '%s'", arg);
            pos[npos++] = arg;
            continue;
        }
        int k = 0;
        while (opts && opts[k].name && !flag_is(arg, opts[k].name, &inline_value))
            k++;
        if (opts == NULL || opts[k].name == NULL || k >= ARGS_MAX_OPTS)
            return usage_error("unknown flag '%s'", arg);
        if (seen & (UINT64_C(1) << k))
            return usage_error("--%s given more than once", opts[k].name);
        seen |= UINT64_C(1) << k;
        if (opts[k].flag) {
            if (inline_value)
                return usage_error("--%s takes no value", opts[k].name);
            *opts[k].flag = 1;
            continue;
        }
        if (flag_value(argc, argv, &i, opts[k].name, inline_value, &value) != 0 ||
            set_value(&opts[k], value) != 0)
            return ARGS_USAGE;
    }
    if (npos < min_pos)
        return usage_error("missing argument");
    return 0;
}

int
args_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    int rc = -1;
    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "kheish: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        char *grown = realloc(buf, n + READ_CHUNK_BYTES + 1);
        if (grown == NULL) {
            fprintf(stderr, "kheish: out of memory reading %s\n", path);
            goto done;
        }
        buf = grown;
        size_t got = fread(buf + n, 1, READ_CHUNK_BYTES, f);
        n += got;
        if (n > max) {
            fprintf(stderr, "kheish: %s is larger than %zu bytes\n", is_stdin ? "stdin" : path,
                    max);
            goto done;
        }
        if (got < READ_CHUNK_BYTES)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "kheish: cannot read %s: %s\n", path, strerror(errno));
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    if (!is_stdin)
        fclose(f);
    return rc;
}
