/*
 * The routes module of common/ (contract §6), without a database: a full
 * file and its model, every error with its line, line ends and comments,
 * the limits, the inventory, and an api_key that never shows in a message
 * or the inventory.
 */
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "routes.h"
#include "util.h"

/* Most cases add a line to a one-route file: line 5 is the first added. */
#define HEAD "version = 1\n"
#define MAIN "[routes.main]\ndriver = \"anthropic\"\ndefault_model = \"claude-sonnet-4-5\"\n"
#define ONE  HEAD MAIN

static char err[512];
static struct routes rs;

static int
parse_n(const char *text, size_t len)
{
    routes_free(&rs);
    err[0] = '\0';
    return routes_parse(text, len, "r.toml", &rs, err, sizeof err);
}

static int
parse(const char *text)
{
    return parse_n(text, strlen(text));
}

/* text is refused, the message at `line` and holding `what`; reported at the
 * caller's line. */
#define REFUSED(text, line, what) refused(__LINE__, text, strlen(text), line, what)

static void
refused(int at, const char *text, size_t len, int line, const char *what)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "r.toml:%d: ", line);
    check_count++;
    if (parse_n(text, len) == 0 || strncmp(err, prefix, strlen(prefix)) || !strstr(err, what) ||
        rs.n != 0 || rs.v != NULL) {
        check_failures++;
        fprintf(stderr, "%s:%d: expected \"%s...%s\", got \"%s\"\n", __FILE__, at, prefix, what,
                err);
    }
}

static const char full[] = "# Kheish routes\n"
                           "version = 1 # the only version\n"
                           "default_route = \"fast:v1.0@eu\"\n"
                           "\n"
                           "[routes.main]\n"
                           "driver = \"anthropic\"\n"
                           "default_model = \"claude-sonnet-4-5\"\n"
                           "auth_ref = \"anthropic-main\"\n"
                           "model_support = \"any\"\n"
                           "base_url = \"https://api.anthropic.com/v1\"\n"
                           "anthropic_version = '2023-06-01'\n"
                           "anthropic_beta_headers = [\"prompt-caching-2024-07-31\", 'b\\2',]\n"
                           "native_web_search = false\n"
                           "image_generation = true\n"
                           "\n"
                           "  [ routes . \"fast:v1.0@eu\" ]  # quoted id\n"
                           "\tdriver = \"openai\"\n"
                           "default_model = \"gpt-\\u00e9\\U0001F600 \\\"4\\\\\"\n"
                           "api_key_env = \"OPENAI_API_KEY\"\n"
                           "organization = \"org-1\"\n"
                           "project_env = \"OPENAI_PROJECT\"\n"
                           "base_url = \"http://[::1]:8080\"\n"
                           "transcription = false\n"
                           "\n"
                           "[routes.local]\n"
                           "driver = \"openrouter\"\n"
                           "default_model = \"x/y\"\n"
                           "api_key = \"sk-or-1234\"\n"
                           "base_url = \"HTTP://127.0.0.1:9\"\n";

static void
full_file(void)
{
    CHECK(parse(full) == 0);
    CHECK(rs.n == 3);
    CHECK_STR(rs.default_route, "fast:v1.0@eu");
    const struct route *m = routes_find(&rs, "main");
    CHECK(m != NULL && m == &rs.v[0] && m->line == 5);
    CHECK(m->driver == ROUTE_DRIVER_ANTHROPIC && m->model_support_any);
    CHECK_STR(m->default_model, "claude-sonnet-4-5");
    CHECK_STR(m->auth_ref, "anthropic-main");
    CHECK(m->api_key == NULL && m->api_key_env == NULL && m->organization == NULL);
    CHECK_STR(m->base_url, "https://api.anthropic.com/v1");
    CHECK_STR(m->anthropic_version, "2023-06-01");
    CHECK(m->nbeta == 2);
    CHECK_STR(m->beta_headers[0], "prompt-caching-2024-07-31");
    CHECK_STR(m->beta_headers[1], "b\\2"); /* a literal string keeps its backslash */
    CHECK(m->caps == (ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAP_IMAGE_GENERATION));

    const struct route *f = routes_find(&rs, "fast:v1.0@eu");
    CHECK(f != NULL && f->driver == ROUTE_DRIVER_OPENAI && !f->model_support_any);
    CHECK(f->line == 16);
    CHECK_STR(f->default_model, "gpt-\xC3\xA9\xF0\x9F\x98\x80 \"4\\");
    CHECK_STR(f->api_key_env, "OPENAI_API_KEY");
    CHECK_STR(f->organization, "org-1");
    CHECK_STR(f->project_env, "OPENAI_PROJECT");
    CHECK(f->beta_headers == NULL && f->nbeta == 0);
    CHECK(f->caps == 0x1f); /* all six but transcription */

    const struct route *l = routes_find(&rs, "local");
    CHECK(l != NULL && l->driver == ROUTE_DRIVER_OPENROUTER);
    CHECK_STR(l->api_key, "sk-or-1234");
    CHECK(l->caps == (ROUTE_CAP_MULTIMODAL_INPUT | ROUTE_CAP_IMAGE_GENERATION |
                      ROUTE_CAP_IMAGE_EDIT | ROUTE_CAP_AUDIO_GENERATION | ROUTE_CAP_TRANSCRIPTION));
    CHECK(routes_find(&rs, "MAIN") == NULL);

    unsigned char want[32];
    crypto_hash_sha256(want, (const unsigned char *)full, strlen(full));
    CHECK(memcmp(rs.sha256, want, 32) == 0);
}

/* One route needs no default_route; each driver has its capabilities. */
static void
defaults(void)
{
    static const struct {
        const char *driver;
        unsigned caps;
    } drivers[] = {
        {"anthropic", 0x03},  {"google", 0x0d}, {"openai", 0x3f},
        {"openrouter", 0x3d}, {"xai", 0x0f},
    };
    for (size_t i = 0; i < 5; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "version = 1\n[routes.r]\ndriver = \"%s\"\ndefault_model = \"m\"\n",
                 drivers[i].driver);
        CHECK(parse(text) == 0 && rs.v[0].caps == drivers[i].caps);
        CHECK(rs.v[0].driver == (enum route_driver)i);
        CHECK_STR(route_drivers[rs.v[0].driver].name, drivers[i].driver);
        CHECK_STR(rs.default_route, "r");
    }
    CHECK(parse(ONE "transcription = true\n") == -1); /* anthropic */
    CHECK(parse(HEAD "[routes.o]\ndriver = \"openai\"\ndefault_model = \"m\"\n"
                     "transcription = true\naudio_generation = true\n") == 0);
    CHECK(parse(HEAD "[routes.g]\ndriver = \"google\"\ndefault_model = \"m\"\n"
                     "native_web_search = true\nmultimodal_input = false\n") == 0);
    CHECK(rs.v[0].caps ==
          (ROUTE_CAP_NATIVE_WEB_SEARCH | ROUTE_CAP_IMAGE_GENERATION | ROUTE_CAP_IMAGE_EDIT));
    CHECK(parse(ONE "audio_generation = false\n") == 0); /* turning off is always fine */
}

static void
structure_errors(void)
{
    REFUSED(HEAD "colour = 1\n" MAIN, 2, "unknown top-level key `colour`");
    REFUSED(HEAD "driver = \"xai\"\n" MAIN, 2, "route keys go in a [routes.<route_id>] table");
    REFUSED(ONE "colour = \"blue\"\n", 5, "unknown key `colour` in [routes.main]");
    REFUSED(ONE "default_route = \"main\"\n", 5, "top-level keys go before the first table");
    REFUSED(ONE "openai_auth_source = \"codex\"\n", 5,
            "`openai_auth_source` is not supported by this build");
    REFUSED(ONE "anthropic_credentials_file = 1\n", 5, "not supported");
    REFUSED(ONE "[foo]\n", 5, "the only tables are [routes.<route_id>]");
    REFUSED(ONE "[routes]\n", 5, "the only tables are");
    REFUSED(ONE "[routes.a.b]\n", 5, "the only tables are");
    REFUSED(ONE "[\"routes\".main]\n", 5, "duplicate table [routes.main] (first on line 2)");
    REFUSED(ONE "[routes.\"main\"]\n", 5, "duplicate table");
    REFUSED(ONE "[routes.b] x\n", 5, "unexpected text at column 12 after the table header");
    REFUSED(ONE "[routes.b\n", 5, "expected `.` or `]`");
    REFUSED(ONE "driver = \"xai\"\n", 5, "duplicate key `driver` (first set on line 3)");
    REFUSED(HEAD "version = 1\n", 2, "duplicate key `version`");
    REFUSED(ONE "\"driver\" = \"xai\"\n", 5, "duplicate key `driver`"); /* quoted key */
    REFUSED(ONE "driver \"xai\"\n", 5, "expected `=` after `driver`");
    REFUSED(ONE "= \"xai\"\n", 5, "expected a key at column 1");
    REFUSED(ONE "base_url =\n", 5, "expected a value at column 11");
    REFUSED(ONE "base_url = \"a\" \"b\"\n", 5, "unexpected text at column 16 after the value");
    REFUSED(ONE "model_support = \"any\n", 5, "not closed on its line");
    REFUSED(ONE "\"\" = 1\n", 5, "the key at column 1 is not 1..64 printable bytes");
    REFUSED(ONE "x = 1 ; y = 2\n", 5, "unexpected character at column 7");
}

static void
route_errors(void)
{
    REFUSED(HEAD "[routes.\"a/b\"]\n", 2, "route id `a/b` is not 1..64 of [A-Za-z0-9._:@-]");
    REFUSED(HEAD "[routes.\"a b\"]\n", 2, "route id `a b`");
    REFUSED(HEAD "[routes.\"..\"]\n", 2, "route id `..`");
    REFUSED(HEAD "[routes.-x]\n", 2, "route id `-x`");
    REFUSED(HEAD "[routes.\"\xC3\xA9\"]\n", 2, "route id");
    REFUSED(HEAD "[routes.a1234567890123456789012345678901234567890123456789012345678901234]\n", 2,
            "the key at column 9 is not 1..64 printable bytes"); /* 65 bytes */
    CHECK(parse(HEAD "[routes.a123456789012345678901234567890123456789012345678901234567890123]\n"
                     "driver = \"xai\"\ndefault_model = \"m\"\n") == 0); /* 64 bytes */
    REFUSED(HEAD "[routes.main]\ndefault_model = \"m\"\n", 2, "[routes.main] has no `driver`");
    REFUSED(HEAD "[routes.main]\ndriver = \"xai\"\n[routes.b]\n", 2,
            "[routes.main] has no `default_model`");
    REFUSED(HEAD "[routes.main]\ndriver = \"mistral\"\n", 3,
            "`driver` must be anthropic, google, openai, openrouter or xai");
    REFUSED(HEAD "[routes.main]\ndriver = \"Anthropic\"\n", 3, "`driver` must be");
    REFUSED(ONE "model_support = \"all\"\n", 5, "`model_support` must be family or any");
    REFUSED(HEAD "[routes.main]\ndriver = \"xai\"\ndefault_model = \"\"\n", 4,
            "`default_model` must not be empty");
    REFUSED(ONE "auth_ref = \"a b\"\n", 5, "`auth_ref` must be a slot id");
    REFUSED(ONE "api_key_env = \"1KEY\"\n", 5, "`api_key_env` must be an environment variable");
    REFUSED(ONE "organization_env = \"A-B\"\n", 5, "`organization_env` must be an environment");
    REFUSED(ONE "anthropic_version = \"2023 06\"\n", 5, "must be non-empty visible ASCII");
    REFUSED(ONE "anthropic_beta_headers = [\"a\", \"\"]\n", 5,
            "`anthropic_beta_headers` item 2 must be non-empty visible ASCII");
    REFUSED(ONE "driver = 1\n", 5, "duplicate key");
    REFUSED(HEAD "[routes.main]\ndriver = 1\n", 3, "`driver` must be a string");
    REFUSED(ONE "image_edit = \"yes\"\n", 5, "`image_edit` must be true or false");
    REFUSED(ONE "anthropic_beta_headers = \"a\"\n", 5, "must be an array of strings");
    REFUSED("version = \"1\"\n" MAIN, 1, "`version` must be an integer");
    REFUSED("version = 2\n" MAIN, 1, "`version` must be 1");
    REFUSED("version = 1_0\n" MAIN, 1, "`version` must be 1");
    REFUSED("version = 01\n" MAIN, 1, "invalid value at column 11");
    REFUSED("version = 99999999999999999999\n" MAIN, 1, "invalid value");
    REFUSED("version = _1\n" MAIN, 1, "invalid value");
    CHECK(parse("version = +1\n" MAIN) == 0);
    REFUSED(MAIN, 1, "missing `version = 1`");
    REFUSED(HEAD, 1, "no routes");
    REFUSED("", 1, "missing `version = 1`");
    REFUSED(ONE "[routes.b]\ndriver = \"xai\"\ndefault_model = \"m\"\n", 5,
            "a second route needs a top-level `default_route`");
    REFUSED(HEAD "default_route = \"nope\"\n" MAIN, 2,
            "`default_route` names `nope`, which has no table");
    REFUSED(HEAD "default_route = \"a/b\"\n" MAIN, 2, "`default_route` must be a route id");
}

static void
credential_and_capability_errors(void)
{
    REFUSED(ONE "api_key = \"sk-1\"\nauth_ref = \"slot\"\n", 6,
            "`api_key` and `auth_ref` are both set: give one of them");
    REFUSED(ONE "auth_ref = \"slot\"\napi_key_env = \"K\"\n", 6,
            "`api_key_env` and `auth_ref` are both set");
    REFUSED(ONE "organization_env = \"O\"\norganization = \"org\"\n", 6,
            "`organization` and `organization_env` are both set");
    REFUSED(ONE "project = \"p\"\nproject_env = \"P\"\n", 6, "`project` and `project_env`");
    REFUSED(ONE "transcription = true\n", 5,
            "`transcription` cannot be enabled: the anthropic driver does not support it");
    REFUSED(HEAD "[routes.x]\naudio_generation = true\ndriver = \"xai\"\ndefault_model = \"m\"\n",
            3, "`audio_generation` cannot be enabled: the xai driver");
    REFUSED(HEAD "[routes.g]\ndriver = \"google\"\ndefault_model = \"m\"\ntranscription = true\n",
            5, "the google driver");
}

static void
url_errors(void)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"/v1", "must be an absolute http:// or https:// URL"},
        {"api.example.com/v1", "must be an absolute"},
        {"ftp://example.com", "must be an absolute"},
        {"https:/example.com", "must be an absolute"},
        {"https://user:pw@example.com", "must not hold userinfo"},
        {"https://example.com/v1?x=1", "must not have a query"},
        {"https://example.com?", "must not have a query"},
        {"https://example.com/#top", "must not have a fragment"},
        {"https://", "has no host"},
        {"https:///v1", "has no host"},
        {"https://:443/v1", "has no host"},
        {"https://example.com:/", "has a bad port"},
        {"https://example.com:0", "has a bad port"},
        {"https://example.com:65536", "has a bad port"},
        {"https://example.com:-1", "has a bad port"},
        {"https://exa%6dple.com", "has a bad host"},
        {"https://[::1", "has a bad IPv6 host"},
        {"https://[nope]:80", "has a bad IPv6 host"},
        {"https://example.com/a b", "must be visible ASCII"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], what[128];
        snprintf(text, sizeof text, ONE "\nbase_url = \"%s\"\n", bad[i].url);
        snprintf(what, sizeof what, "`base_url` %s", bad[i].why);
        refused(__LINE__, text, strlen(text), 6, what);
    }
    static const char *const good[] = {"https://api.openai.com/v1", "http://127.0.0.1:11434",
                                       "https://[2001:db8::1]:443/v1/", "https://my_host.internal",
                                       "https://example.com"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, ONE "base_url = \"%s\"\n", good[i]);
        CHECK(parse(text) == 0);
        CHECK_STR(rs.v[0].base_url, good[i]);
    }
}

static void
unsupported_toml(void)
{
    REFUSED(ONE "base_url = \"\"\"https://a\"\"\"\n", 5, "unsupported TOML: multi-line strings");
    REFUSED(ONE "base_url = '''x'''\n", 5, "unsupported TOML: multi-line strings");
    REFUSED(ONE "base_url = { a = 1 }\n", 5, "unsupported TOML: inline tables");
    REFUSED(ONE "base_url.x = \"a\"\n", 5, "unsupported TOML: dotted keys");
    REFUSED(HEAD "routes.main.driver = \"xai\"\n", 2, "unsupported TOML: dotted keys");
    REFUSED("version = 1.0\n" MAIN, 1, "unsupported TOML: floats");
    REFUSED("version = 1e0\n" MAIN, 1, "unsupported TOML: floats");
    REFUSED("version = -inf\n" MAIN, 1, "unsupported TOML: floats");
    REFUSED("version = 0x1\n" MAIN, 1, "unsupported TOML: hexadecimal");
    REFUSED("version = 1979-05-27\n" MAIN, 1, "unsupported TOML: dates and times");
    REFUSED("version = 07:32:00\n" MAIN, 1, "unsupported TOML: dates and times");
    REFUSED(HEAD "[[routes]]\n", 2, "unsupported TOML: arrays of tables");
    REFUSED(ONE "anthropic_beta_headers = [\"a\",\n\"b\"]\n", 5,
            "unsupported TOML: multi-line arrays");
    REFUSED(ONE "anthropic_beta_headers = [\n", 5, "unsupported TOML: multi-line arrays");
    REFUSED(ONE "anthropic_beta_headers = [[\"a\"]]\n", 5, "arrays hold only strings");
    REFUSED(ONE "anthropic_beta_headers = [1]\n", 5, "expected a string or `]` at column 27");
    REFUSED(ONE "anthropic_beta_headers = [\"a\" \"b\"]\n", 5, "expected `,` or `]`");
    REFUSED(ONE "anthropic_beta_headers = [\"a\",,]\n", 5, "expected a string or `]`");
    REFUSED(ONE "api_key = sk-live\n", 5, "invalid value at column 11 (a string needs quotes)");
    CHECK(parse(ONE "anthropic_beta_headers = []\n") == 0 && rs.v[0].nbeta == 0);
}

static void
string_errors(void)
{
    REFUSED(ONE "default_model = \"a\\x41\"\n", 5, "invalid escape sequence at column 19");
    REFUSED(ONE "default_model = \"a\\u12\"\n", 5, "invalid escape sequence");
    REFUSED(ONE "default_model = \"a\\u12G4\"\n", 5, "invalid escape sequence");
    REFUSED(ONE "default_model = \"\\uD800\"\n", 5, "invalid escape sequence");
    REFUSED(ONE "default_model = \"\\U00110000\"\n", 5, "invalid escape sequence");
    REFUSED(ONE "default_model = \"\\e\"\n", 5, "invalid escape sequence");
    REFUSED(ONE "default_model = \"a\\\"\n", 5, "not closed on its line");
    REFUSED(ONE "default_model = \"a\\n\"\n", 5, "holds a control character");
    REFUSED(ONE "default_model = \"\\u0000\"\n", 5, "holds a control character");
    REFUSED(ONE "default_model = 'a\tb'\n", 5, "holds a control character");
    REFUSED(ONE "default_model = \"\\u007f\"\n", 5, "holds a control character");
    REFUSED(ONE "default_model = \"a\x01\"\n", 5, "control character 0x01 at column 19");
    REFUSED(ONE "# bell \x07\n", 5, "control character 0x07");
    REFUSED(ONE "x = 1\rdriver = \"a\"\n", 5, "control character 0x0d at column 6");
    REFUSED(ONE "default_model = \"\xC3\x28\"\n", 5, "invalid UTF-8");
    REFUSED(ONE "# \xC0\xAF overlong\n", 5, "invalid UTF-8");
    REFUSED(ONE "# \xED\xA0\x80 surrogate\n", 5, "invalid UTF-8");
    REFUSED(ONE "\t# tab\t\xFF\n", 5, "invalid UTF-8");
    static const char nul[] = ONE "# a\0b\n";
    refused(__LINE__, nul, sizeof nul - 1, 5, "control character 0x00 at column 4");
    CHECK(parse(ONE "# caf\xC3\xA9 \t is fine\n") == 0);
}

static void
line_ends_and_comments(void)
{
    const char *crlf = "version = 1\r\n\r\n# c\r\n[routes.main] # t\r\ndriver = \"xai\"\r\n"
                       "default_model = 'm' # trailing\r\nanthropic_beta_headers = [] # none\r\n";
    CHECK(parse(crlf) == 0 && rs.n == 1);
    CHECK_STR(rs.v[0].default_model, "m");
    CHECK(rs.v[0].line == 4);
    CHECK(parse("version = 1\r\n[routes.main]\r\ndriver = \"xai\"\r\ndefault_model = \"m\"") == 0);
    REFUSED("version = 1\r\n[routes.main]\r\ndriver = \"xai\"\r\ndefault_model = \"m\"\r", 4,
            "control character 0x0d");     /* a CR without its LF */
    CHECK(parse("\xEF\xBB\xBF" ONE) == 0); /* byte-order mark */
    CHECK(parse(" # only\n\t\n" ONE "#\n#version = 2\n   \n") == 0);
    CHECK(parse("version=1\n[routes.main]\ndriver=\"xai\"#c\ndefault_model=\"#not a comment\"") ==
          0);
    CHECK_STR(rs.v[0].default_model, "#not a comment");
}

/* A text of n bytes: prefix, then fill bytes, then suffix. */
static char *
sized(const char *prefix, char fill, size_t n, const char *suffix)
{
    char *s = malloc(n + 1);
    size_t a = strlen(prefix), b = strlen(suffix);
    memcpy(s, prefix, a);
    memset(s + a, fill, n - a - b);
    memcpy(s + n - b, suffix, b);
    s[n] = '\0';
    return s;
}

static void
limits(void)
{
    /* A line of exactly the limit, then one byte more (each with its LF). */
    char *s = sized(ONE "#", 'c', strlen(ONE) + 8192 + 1, "\n");
    CHECK(parse(s) == 0);
    free(s);
    s = sized(ONE "#", 'c', strlen(ONE) + 8193 + 1, "\n");
    REFUSED(s, 5, "the line is longer than 8192 bytes");
    free(s);
    const char *pre = HEAD "[routes.main]\ndriver = \"xai\"\ndefault_model = \"";
    s = sized(pre, 'm', strlen(pre) + 4096 + 2, "\"\n");
    CHECK(parse(s) == 0 && strlen(rs.v[0].default_model) == 4096);
    free(s);
    s = sized(pre, 'm', strlen(pre) + 4097 + 2, "\"\n");
    REFUSED(s, 4, "the string at column 17 is longer than 4096 bytes");
    free(s);
    s = sized(ONE "#", '#', ROUTES_FILE_MAX_BYTES + 1, "\n");
    REFUSED(s, 1, "the file is larger than 1048576 bytes");
    free(s);

    char items[512] = ONE "anthropic_beta_headers = [";
    for (int i = 0; i < 33; i++)
        strcat(items, "\"b\",");
    strcat(items, "]\n");
    REFUSED(items, 5, "an array holds more than 32 items");

    size_t cap = 65 * 80 + 64, len = 0;
    char *many = malloc(cap);
    len += (size_t)snprintf(many, cap, "version = 1\ndefault_route = \"r0\"\n");
    for (int i = 0; i < 65; i++)
        len += (size_t)snprintf(many + len, cap - len,
                                "[routes.r%d]\ndriver = \"xai\"\ndefault_model = \"m\"\n", i);
    REFUSED(many, 2 + 64 * 3 + 1, "more than 64 routes");
    many[strstr(many, "[routes.r64]") - many] = '\0';
    CHECK(parse(many) == 0 && rs.n == 64);
    free(many);
}

static void
inventory(void)
{
    CHECK(parse(full) == 0);
    json_t *inv = routes_inventory(&rs);
    CHECK(inv != NULL);
    char hex[65];
    util_sha256_hex(full, strlen(full), hex);
    CHECK_STR(json_string_value(json_object_get(inv, "sha256")), hex);
    CHECK_STR(json_string_value(json_object_get(inv, "default_route")), "fast:v1.0@eu");
    CHECK(json_integer_value(json_object_get(inv, "route_count")) == 3);
    json_t *list = json_object_get(inv, "routes");
    CHECK(json_array_size(list) == 3);
    json_t *m = json_array_get(list, 0), *f = json_array_get(list, 1), *l = json_array_get(list, 2);
    CHECK(json_object_size(m) == 7);
    CHECK_STR(json_string_value(json_object_get(m, "route_id")), "main");
    CHECK_STR(json_string_value(json_object_get(m, "provider")), "anthropic");
    CHECK_STR(json_string_value(json_object_get(m, "model")), "claude-sonnet-4-5");
    CHECK_STR(json_string_value(json_object_get(m, "auth_ref")), "anthropic-main");
    CHECK_STR(json_string_value(json_object_get(m, "auth_kind")), "auth_ref");
    CHECK_STR(json_string_value(json_object_get(m, "model_support")), "any");
    json_t *caps = json_object_get(m, "capabilities");
    CHECK(json_object_size(caps) == 7);
    CHECK(json_integer_value(json_object_get(caps, "matrix_version")) ==
          ROUTE_CAPABILITY_MATRIX_VERSION);
    CHECK(json_is_true(json_object_get(caps, "multimodal_input")));
    CHECK(json_is_false(json_object_get(caps, "native_web_search")));
    CHECK(json_is_true(json_object_get(caps, "image_generation")));
    CHECK(json_is_false(json_object_get(caps, "image_edit")));
    CHECK(json_is_false(json_object_get(caps, "audio_generation")));
    CHECK(json_is_false(json_object_get(caps, "transcription")));
    CHECK_STR(json_string_value(json_object_get(f, "auth_kind")), "api_key_env");
    CHECK(json_is_null(json_object_get(f, "auth_ref")));
    CHECK_STR(json_string_value(json_object_get(f, "model_support")), "family");
    CHECK_STR(json_string_value(json_object_get(l, "auth_kind")), "api_key");
    char *dump = json_dumps(inv, 0);
    CHECK(dump != NULL && strstr(dump, "sk-or-1234") == NULL);
    free(dump);
    json_decref(inv);

    CHECK(parse(ONE) == 0);
    inv = routes_inventory(&rs);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(inv, "routes"), 0), "auth_kind")),
              "none");
    json_decref(inv);
}

/* Wherever an api_key value breaks a rule, the message does not quote it. */
static void
secret_never_shown(void)
{
    static const char *const lines[] = {
        "api_key = \"sk-SECRET-1\"\nauth_ref = \"slot\"\n",
        "auth_ref = \"slot\"\napi_key = \"sk-SECRET-1\"\n",
        "api_key = \"sk SECRET 1\"\n",
        "api_key = \"sk-SECRET-1\\n\"\n",
        "api_key = \"sk-SECRET\\q1\"\n",
        "api_key = \"sk-SECRET-1\n",
        "api_key = sk-SECRET-1\n",
        "api_key = sk-SECRET-1.5\n",
        "api_key = \"sk-SECRET-1\" extra\n",
        "api_key = [\"sk-SECRET-1\"]\n",
        "api_key = \"sk-SECRET-1\"\napi_key = \"sk-SECRET-2\"\n",
        "api_key = \"sk-SECRET-\xFF\"\n",
        "api_key = \"sk-SECRET-1\"\ndriver = \"xai\"\n",
        "api_key = \"sk-SECRET-1\"\ntranscription = true\n",
        "api_key = { v = \"sk-SECRET-1\" }\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, ONE "%s", lines[i]);
        CHECK(parse(text) == -1 && err[0] != '\0');
        if (strstr(err, "SECRET"))
            fprintf(stderr, "case %zu leaks: %s\n", i, err);
        CHECK(strstr(err, "SECRET") == NULL);
    }
}

static int
load_file(const char *path)
{
    routes_free(&rs);
    return routes_load(path, &rs, err, sizeof err);
}

static void
load(void)
{
    char dir[] = "/tmp/kheish-routes-test.XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/routes.toml", dir);
    FILE *f = fopen(path, "w");
    fputs(full, f);
    fclose(f);
    CHECK(load_file(path) == 0 && rs.n == 3);
    unsigned char want[32];
    crypto_hash_sha256(want, (const unsigned char *)full, strlen(full));
    CHECK(memcmp(rs.sha256, want, 32) == 0);

    f = fopen(path, "w");
    fputs(ONE "colour = 1\n", f);
    fclose(f);
    CHECK(load_file(path) == -1 && rs.n == 0);
    CHECK(!strncmp(err, path, strlen(path)) && !strncmp(err + strlen(path), ":5: unknown key", 15));

    f = fopen(path, "w");
    for (int i = 0; i < ROUTES_FILE_MAX_BYTES / 8 + 1; i++)
        fputs("#######\n", f);
    fclose(f);
    CHECK(load_file(path) == -1 && strstr(err, ":1: the file is larger"));
    CHECK(load_file(dir) == -1 && strstr(err, ": not a regular file"));
    unlink(path);
    CHECK(load_file(path) == -1 && strstr(err, "No such file"));
    rmdir(dir);

    routes_free(&rs);
    CHECK(routes_parse("", 0, NULL, &rs, err, sizeof err) == -1);
    CHECK_STR(err, "routes file:1: missing `version = 1`");
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    full_file();
    defaults();
    structure_errors();
    route_errors();
    credential_and_capability_errors();
    url_errors();
    unsupported_toml();
    string_errors();
    line_ends_and_comments();
    limits();
    inventory();
    secret_never_shown();
    load();
    routes_free(&rs);
    return check_report("routes");
}
