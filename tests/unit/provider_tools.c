/*
 * The runner's provider calls with tools (runner/provider*.c), against the
 * mock provider (tests/mock-provider/, started here on a free port) over
 * HTTP on a curl multi handle, as the runner drives them, in every wire
 * format: Responses (openai), chat completions (xai at /v1, openrouter at
 * /api/v1) and Messages (anthropic). The mock refuses a tools, tool_choice
 * or tool turn shape that is wrong for its dialect with a 400, so a call
 * that succeeds has sent the right shapes; the recorded request bodies are
 * checked too. Cases: one call, parallel calls interleaved, arguments split
 * at every character and at awkward bytes, malformed arguments, a
 * conversation with results round-tripped over three turns, tool_choice and
 * --serial-tools, no tools at all, the limits, and what provider_prepare
 * refuses before sending anything. Streams the mock does not write (other
 * providers' quirks) are fed to the frame readers directly.
 *
 * Needs node; run from the repository root (tests/run.sh does), or set
 * KHEISH_MOCK_PROVIDER to server.mjs.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "provider.h"
#include "provider_wire.h"
#include "routes.h"

#define KEY "sk-provider-tools-test"

enum fmt { RESPONSES, CHAT, OPENROUTER, MESSAGES, NFMTS };
static const struct {
    const char *name;
    enum route_driver driver;
    const char *path; /* of the base URL */
} fmts[NFMTS] = {
    [RESPONSES] = {"responses", ROUTE_DRIVER_OPENAI, "/v1"},
    [CHAT] = {"chat", ROUTE_DRIVER_XAI, "/v1"},
    [OPENROUTER] = {"openrouter", ROUTE_DRIVER_OPENROUTER, "/api/v1"},
    [MESSAGES] = {"messages", ROUTE_DRIVER_ANTHROPIC, "/v1"},
};

static pid_t mock_pid;
static int expect_failure; /* a call that fails is the case: no message */
static char mock_url[64];
static struct route routes[NFMTS];
static char bases[NFMTS][96];
static CURLM *multi;

static const char TOOLS[] =
    "[{\"name\": \"get_weather\", \"description\": \"The weather in a city\","
    "  \"input_schema\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
    "                    \"required\": [\"city\"]}},"
    " {\"name\": \"get_time\"}]";

/* ---- the mock ------------------------------------------------------------ */

static void
mock_stop(void)
{
    if (mock_pid > 0) {
        kill(mock_pid, SIGTERM);
        waitpid(mock_pid, NULL, 0);
        mock_pid = 0;
    }
}

/* Starts node server.mjs --port 0 and reads the port it chose. */
static int
mock_start(void)
{
    const char *server = getenv("KHEISH_MOCK_PROVIDER");
    char ready[] = "/tmp/provider-tools.XXXXXX", file[64];
    if (mkdtemp(ready) == NULL)
        return -1;
    snprintf(file, sizeof file, "%s/port", ready);
    if ((mock_pid = fork()) == 0) {
        int null = open("/dev/null", O_WRONLY);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* this test killed: the mock too */
        dup2(null, STDERR_FILENO);
        execlp("node", "node", server ? server : "tests/mock-provider/server.mjs", "--port", "0",
               "--ready-file", file, "--api-key", KEY, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(file, "r");
        int port = 0;
        if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
            fclose(f);
            unlink(file);
            rmdir(ready);
            snprintf(mock_url, sizeof mock_url, "http://127.0.0.1:%d", port);
            return 0;
        }
        if (f)
            fclose(f);
        usleep(50 * 1000);
    }
    fprintf(stderr, "the mock provider did not start (node, and the repository root as cwd?)\n");
    return -1;
}

struct buf {
    char *s;
    size_t len;
};

static size_t
collect(char *s, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    char *grown = realloc(b->s, b->len + size * n + 1);
    if (grown == NULL)
        return 0;
    b->s = grown;
    memcpy(b->s + b->len, s, size * n);
    b->len += size * n;
    b->s[b->len] = '\0';
    return size * n;
}

/* The body of the last request the mock recorded (a new reference). */
static json_t *
last_body(void)
{
    char url[128];
    struct buf b = {0};
    CURL *h = curl_easy_init();
    snprintf(url, sizeof url, "%s/_mock/requests", mock_url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_perform(h);
    curl_easy_cleanup(h);
    json_t *all = b.s ? json_loads(b.s, 0, NULL) : NULL;
    json_t *body =
        json_incref(json_object_get(json_array_get(all, json_array_size(all) - 1), "body"));
    json_decref(all);
    free(b.s);
    return body;
}

/* ---- a call, driven to its end --------------------------------------------- */

struct reply {
    char text[8192];
    size_t len;
};

static int
on_delta(void *arg, const char *text, size_t len)
{
    struct reply *r = arg;
    if (r->len + len >= sizeof r->text)
        return -1;
    memcpy(r->text + r->len, text, len);
    r->len += len;
    r->text[r->len] = '\0';
    return 0;
}

/* One attempt on multi, to its verdict (30 s at most). */
static enum provider_rc
drive(struct provider_call *c)
{
    enum provider_rc rc = provider_prepare(c);
    if (rc != PROVIDER_OK || (rc = provider_start(c, multi)) != PROVIDER_OK)
        return rc;
    time_t until = time(NULL) + 30;
    while (time(NULL) < until) {
        int running, left;
        CURLMsg *m;
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE)
                return provider_end(provider_of(m->easy_handle), multi, m->data.result);
        curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    provider_abort(c, multi);
    snprintf(c->error, sizeof c->error, "the test gave up waiting");
    return PROVIDER_FAILED;
}

struct opts {
    const char *tools; /* JSON, or NULL: none */
    enum provider_tool_choice choice;
    const char *tool_name;
    int serial;
};

/* A call of format f with the conversation msgs (stolen) and o's tools. The
 * caller releases c (provider_release). */
static enum provider_rc
call(enum fmt f, json_t *msgs, const struct opts *o, struct provider_call *c, struct reply *r)
{
    json_t *tools = o && o->tools ? json_loads(o->tools, 0, NULL) : NULL;
    memset(r, 0, sizeof *r);
    *c = (struct provider_call){
        .route = &routes[f],
        .model = "mock-model",
        .api_key = KEY,
        .messages = msgs,
        .tools = tools,
        .tool_choice = o ? o->choice : PROVIDER_TOOL_CHOICE_AUTO,
        .tool_name = o ? o->tool_name : NULL,
        .serial_tools = o ? o->serial : 0,
        .on_delta = on_delta,
        .arg = r,
    };
    enum provider_rc rc = drive(c);
    if (rc != PROVIDER_OK && !expect_failure)
        fprintf(stderr, "  %s: %s\n", fmts[f].name, c->error);
    c->messages = c->tools = NULL;
    json_decref(msgs);
    json_decref(tools);
    return rc;
}

static json_t *
user(const char *text)
{
    return json_pack("{s:s, s:s}", "role", "user", "text", text);
}

static json_t *
result(const char *id, const char *content, int is_error)
{
    return json_pack("{s:s, s:s, s:s, s:b}", "role", "tool", "tool_call_id", id, "content", content,
                     "is_error", is_error);
}

/* The value at a dotted path ("tools.0.function.name"), or NULL. */
static const json_t *
at(const json_t *v, const char *path)
{
    char part[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        v = json_is_array(v) ? json_array_get(v, strtoul(part, NULL, 10))
                             : json_object_get(v, part);
        path += n + (path[n] == '.');
    }
    return v;
}

/* v at path is the JSON text want. */
#define CHECK_JSON(v, path, want) check_json(__LINE__, v, path, want)

static void
check_json(int line, const json_t *v, const char *path, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    const json_t *got = at(v, path);
    check_count++;
    if (w == NULL || !json_equal(got, w)) {
        char *s = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        check_failures++;
        fprintf(stderr, "%s:%d: %s is %s, expected %s\n", __FILE__, line, path, s ? s : "(none)",
                want);
        free(s);
    }
    json_decref(w);
}

static const char *
str(const json_t *v, const char *path)
{
    return json_string_value(at(v, path));
}

/* ---- the cases --------------------------------------------------------------- */

static const struct opts with_tools = {.tools = TOOLS};

static void
one_call(enum fmt f)
{
    struct provider_call c;
    struct reply r;
    CHECK(call(f, json_pack("[o]", user("weather? [[mock:call=get_weather:{\"city\":\"Paris\"}]]")),
               &with_tools, &c, &r) == PROVIDER_OK);
    CHECK(json_array_size(c.tool_calls) == 1);
    CHECK_STR(str(c.tool_calls, "0.name"), "get_weather");
    CHECK_STR(str(c.tool_calls, "0.arguments"), "{\"city\":\"Paris\"}");
    CHECK_JSON(c.tool_calls, "0.input", "{\"city\": \"Paris\"}");
    CHECK(at(c.tool_calls, "0.error") == NULL);
    CHECK(str(c.tool_calls, "0.id") && strlen(str(c.tool_calls, "0.id")) > 5);
    CHECK(c.stop == PROVIDER_STOP_TOOL_CALLS);
    CHECK(r.len == 0);
    CHECK(!strncmp(c.request_digest, "sha256:", 7) && strlen(c.request_digest) == 71);
    CHECK(!strncmp(c.response_digest, "sha256:", 7) && strlen(c.response_digest) == 71);
    json_t *b = last_body();
    const char *schema =
        "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
        " \"required\": [\"city\"]}";
    const char *none = "{\"type\": \"object\", \"properties\": {}}";
    if (f == RESPONSES) {
        CHECK_JSON(b, "tools.0.type", "\"function\"");
        CHECK_JSON(b, "tools.0.name", "\"get_weather\"");
        CHECK_JSON(b, "tools.0.description", "\"The weather in a city\"");
        CHECK_JSON(b, "tools.0.parameters", schema);
        CHECK_JSON(b, "tools.0.strict", "false");
        CHECK_JSON(b, "tools.1.parameters", none);
        CHECK(at(b, "tools.1.description") == NULL);
    } else if (f == MESSAGES) {
        CHECK_JSON(b, "tools.0",
                   "{\"name\": \"get_weather\", \"description\": \"The weather in a "
                   "city\", \"input_schema\": {\"type\": \"object\", \"properties\": "
                   "{\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}");
        CHECK_JSON(b, "tools.1.input_schema", none);
        CHECK_JSON(b, "tool_choice", "{\"type\": \"auto\", \"disable_parallel_tool_use\": false}");
        CHECK(at(b, "parallel_tool_calls") == NULL);
    } else {
        CHECK_JSON(b, "tools.0.type", "\"function\"");
        CHECK_JSON(b, "tools.0.function.name", "\"get_weather\"");
        CHECK_JSON(b, "tools.0.function.parameters", schema);
        CHECK(at(b, "tools.0.name") == NULL);
        CHECK_JSON(b, "tools.1.function.parameters", none);
    }
    if (f != MESSAGES) {
        CHECK_JSON(b, "tool_choice", "\"auto\"");
        CHECK_JSON(b, "parallel_tool_calls", "true");
    }
    json_decref(b);
    provider_release(&c);
}

static void
parallel_calls(enum fmt f)
{
    struct provider_call c;
    struct reply r;
    CHECK(call(f,
               json_pack("[o]", user("three [[mock:text=Let me look.]] "
                                     "[[mock:call=get_weather:{\"city\":\"Oslo\"}]] "
                                     "[[mock:call=get_time:{\"zone\":[\"UTC\",\"CET\"]}]] "
                                     "[[mock:call=get_weather:{\"city\":\"Lima\"}]] "
                                     "[[mock:args_chunk=2,interleave]]")),
               &with_tools, &c, &r) == PROVIDER_OK);
    CHECK_STR(r.text, "Let me look.");
    CHECK(json_array_size(c.tool_calls) == 3);
    CHECK_JSON(c.tool_calls, "0.input", "{\"city\": \"Oslo\"}");
    CHECK_JSON(c.tool_calls, "1.name", "\"get_time\"");
    CHECK_JSON(c.tool_calls, "1.input", "{\"zone\": [\"UTC\", \"CET\"]}");
    CHECK_JSON(c.tool_calls, "2.input", "{\"city\": \"Lima\"}");
    const char *a = str(c.tool_calls, "0.id"), *b = str(c.tool_calls, "1.id"),
               *d = str(c.tool_calls, "2.id");
    CHECK(a && b && d && strcmp(a, b) && strcmp(b, d) && strcmp(a, d));
    CHECK(c.stop == PROVIDER_STOP_TOOL_CALLS);
    provider_release(&c);
}

/* Arguments with quotes, backslashes, escapes and 2-, 3- and 4-byte UTF-8,
 * one character a fragment, then in pieces written a few bytes at a time
 * (frames, escapes and characters cut anywhere). */
#define AWKWARD                                                                                    \
    "{\"s\":\"q \\\" b \\\\ e \\u00e9 \\ud83d\\ude00 é ✓ 😀 \\n\",\"n\":[1,2.5,-3e2],"        \
    "\"o\":{\"k\":null,\"t\":true}}"

static void
split_arguments(enum fmt f)
{
    static const char *const how[] = {"args_chunk=1", "args_chunk=4,write_bytes=13"};
    json_t *want = json_loads(AWKWARD, 0, NULL);
    CHECK(want != NULL);
    for (size_t i = 0; i < 2; i++) {
        struct provider_call c;
        struct reply r;
        char text[512];
        snprintf(text, sizeof text, "split [[mock:%s]] [[mock:call=get_weather:" AWKWARD "]]",
                 how[i]);
        CHECK(call(f, json_pack("[o]", user(text)), &with_tools, &c, &r) == PROVIDER_OK);
        CHECK_STR(str(c.tool_calls, "0.arguments"), AWKWARD);
        CHECK(json_equal(at(c.tool_calls, "0.input"), want));
        CHECK_STR(str(c.tool_calls, "0.input.s"), "q \" b \\ e é 😀 é ✓ 😀 \n");
        provider_release(&c);
    }
    json_decref(want);
}

static void
malformed_arguments(enum fmt f)
{
    struct provider_call c;
    struct reply r;
    CHECK(call(f,
               json_pack("[o]", user("bad [[mock:call=get_weather:{\"city\":]] "
                                     "[[mock:call=get_weather:[1,2] ]] "
                                     "[[mock:call=get_time:\"now\"]] "
                                     "[[mock:call=get_time:]] "
                                     "[[mock:call=get_weather:{\"city\":\"Rome\"}]]")),
               &with_tools, &c, &r) == PROVIDER_OK);
    CHECK(json_array_size(c.tool_calls) == 5);
    CHECK(at(c.tool_calls, "0.input") == NULL);
    CHECK(str(c.tool_calls, "0.error") && strstr(str(c.tool_calls, "0.error"), "not JSON"));
    CHECK_STR(str(c.tool_calls, "0.arguments"), "{\"city\":");
    CHECK(str(c.tool_calls, "1.error") && strstr(str(c.tool_calls, "1.error"), "not an object"));
    CHECK(str(c.tool_calls, "2.error") && strstr(str(c.tool_calls, "2.error"), "not an object"));
    CHECK_JSON(c.tool_calls, "3.input", "{}"); /* no arguments: none needed */
    CHECK(at(c.tool_calls, "3.error") == NULL);
    CHECK_JSON(c.tool_calls, "4.input", "{\"city\": \"Rome\"}");
    CHECK(at(c.tool_calls, "4.error") == NULL);
    CHECK(c.stop == PROVIDER_STOP_TOOL_CALLS);
    provider_release(&c);
}

/* The assistant turn of a reply, its calls stored as provider_end gave them. */
static json_t *
assistant(const struct provider_call *c, const char *text)
{
    return json_pack("{s:s, s:s, s:O}", "role", "assistant", "text", text, "tool_calls",
                     c->tool_calls);
}

static void
round_trip(enum fmt f)
{
    const char *u = "plan [[mock:call=get_weather:{\"city\":\"Nice\"}]] [[mock:call=get_time:{}]] "
                    "[[mock@2:call=get_time:{\"zone\":\"UTC\"}]]";
    struct provider_call c1, c2, c3;
    struct reply r;
    json_t *conv = json_pack("[o]", user(u));
    /* turn 1: two calls */
    CHECK(call(f, json_deep_copy(conv), &with_tools, &c1, &r) == PROVIDER_OK);
    CHECK(json_array_size(c1.tool_calls) == 2);
    json_array_append_new(conv, assistant(&c1, ""));
    json_array_append_new(conv, result(str(c1.tool_calls, "0.id"), "sunny, 24°C", 0));
    json_array_append_new(conv, result(str(c1.tool_calls, "1.id"), "clock broken", 1));
    /* turn 2, after the results: the call scripted for it */
    CHECK(call(f, json_deep_copy(conv), &with_tools, &c2, &r) == PROVIDER_OK);
    CHECK(json_array_size(c2.tool_calls) == 1);
    CHECK_JSON(c2.tool_calls, "0.input", "{\"zone\": \"UTC\"}");
    json_t *b = last_body();
    const char *id0 = str(c1.tool_calls, "0.id"), *id1 = str(c1.tool_calls, "1.id");
    if (f == RESPONSES) {
        CHECK_JSON(b, "input.0",
                   "{\"role\": \"user\", \"content\": \"plan [[mock:call=get_weather:"
                   "{\\\"city\\\":\\\"Nice\\\"}]] [[mock:call=get_time:{}]] "
                   "[[mock@2:call=get_time:{\\\"zone\\\":\\\"UTC\\\"}]]\"}");
        CHECK_JSON(b, "input.1.type", "\"function_call\"");
        CHECK_STR(str(b, "input.1.call_id"), id0);
        CHECK_JSON(b, "input.1.name", "\"get_weather\"");
        CHECK_JSON(b, "input.1.arguments", "\"{\\\"city\\\":\\\"Nice\\\"}\"");
        CHECK_JSON(b, "input.2.arguments", "\"{}\"");
        CHECK_JSON(b, "input.3.type", "\"function_call_output\"");
        CHECK_STR(str(b, "input.3.call_id"), id0);
        CHECK_JSON(b, "input.3.output", "\"sunny, 24°C\"");
        CHECK_STR(str(b, "input.4.call_id"), id1);
        CHECK(json_array_size(at(b, "input")) == 5);
    } else if (f == MESSAGES) {
        CHECK(json_array_size(at(b, "messages")) == 3);
        CHECK_JSON(b, "messages.1.role", "\"assistant\"");
        CHECK_JSON(b, "messages.1.content.0.type", "\"tool_use\"");
        CHECK_STR(str(b, "messages.1.content.0.id"), id0);
        CHECK_JSON(b, "messages.1.content.0.input", "{\"city\": \"Nice\"}");
        CHECK_JSON(b, "messages.1.content.1.input", "{}");
        CHECK_JSON(b, "messages.2.role", "\"user\"");
        CHECK_JSON(b, "messages.2.content.0.type", "\"tool_result\"");
        CHECK_STR(str(b, "messages.2.content.0.tool_use_id"), id0);
        CHECK_JSON(b, "messages.2.content.0.content", "\"sunny, 24°C\"");
        CHECK_JSON(b, "messages.2.content.0.is_error", "false");
        CHECK_JSON(b, "messages.2.content.1.is_error", "true");
    } else {
        CHECK(json_array_size(at(b, "messages")) == 4);
        CHECK_JSON(b, "messages.1.content", "null");
        CHECK_STR(str(b, "messages.1.tool_calls.0.id"), id0);
        CHECK_JSON(b, "messages.1.tool_calls.0.type", "\"function\"");
        CHECK_JSON(b, "messages.1.tool_calls.0.function",
                   "{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\":\\\"Nice\\\"}\"}");
        CHECK_JSON(b, "messages.2.role", "\"tool\"");
        CHECK_STR(str(b, "messages.2.tool_call_id"), id0);
        CHECK_JSON(b, "messages.2.content", "\"sunny, 24°C\"");
        CHECK_STR(str(b, "messages.3.tool_call_id"), id1);
    }
    json_decref(b);
    /* turn 3, after that result: no directive left, the mock says what it got */
    json_array_append_new(conv, assistant(&c2, "One more."));
    json_array_append_new(conv, result(str(c2.tool_calls, "0.id"), "12:00", 1));
    CHECK(call(f, json_deep_copy(conv), &with_tools, &c3, &r) == PROVIDER_OK);
    CHECK_STR(r.text, f == MESSAGES ? "got: [error] 12:00" : "got: 12:00");
    CHECK(json_array_size(c3.tool_calls) == 0);
    CHECK(c3.stop == PROVIDER_STOP_END);
    b = last_body();
    if (f == MESSAGES) /* the assistant's text, then its call */
        CHECK_JSON(b, "messages.3.content.0", "{\"type\": \"text\", \"text\": \"One more.\"}");
    else if (f == RESPONSES)
        CHECK_JSON(b, "input.5", "{\"role\": \"assistant\", \"content\": \"One more.\"}");
    else
        CHECK_JSON(b, "messages.4.content", "\"One more.\"");
    json_decref(b);
    json_decref(conv);
    provider_release(&c1);
    provider_release(&c2);
    provider_release(&c3);
}

/* tool_choice and --serial-tools, as each format spells them. */
static void
choices(enum fmt f)
{
    static const struct {
        enum provider_tool_choice choice;
        int serial;
        const char *want[2]; /* OpenAI formats' tool_choice, the Messages API's */
    } cases[] = {
        {PROVIDER_TOOL_CHOICE_NONE, 0, {"\"none\"", "{\"type\": \"none\"}"}},
        {PROVIDER_TOOL_CHOICE_REQUIRED,
         0,
         {"\"required\"", "{\"type\": \"any\", \"disable_parallel_tool_use\": false}"}},
        {PROVIDER_TOOL_CHOICE_SPECIFIC,
         1,
         {NULL,
          "{\"type\": \"tool\", \"name\": \"get_time\", \"disable_parallel_tool_use\": true}"}},
        {PROVIDER_TOOL_CHOICE_AUTO,
         1,
         {"\"auto\"", "{\"type\": \"auto\", \"disable_parallel_tool_use\": true}"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct opts o = {TOOLS, cases[i].choice, "get_time", cases[i].serial};
        struct provider_call c;
        struct reply r;
        CHECK(call(f, json_pack("[o]", user("pick [[mock:text=ok]]")), &o, &c, &r) == PROVIDER_OK);
        CHECK_STR(r.text, "ok");
        json_t *b = last_body();
        const char *specific =
            f == RESPONSES ? "{\"type\": \"function\", \"name\": \"get_time\"}"
                           : "{\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}";
        CHECK_JSON(b, "tool_choice",
                   f == MESSAGES      ? cases[i].want[1]
                   : cases[i].want[0] ? cases[i].want[0]
                                      : specific);
        if (f != MESSAGES)
            CHECK_JSON(b, "parallel_tool_calls", cases[i].serial ? "false" : "true");
        CHECK(json_array_size(at(b, "tools")) == 2); /* offered even with none */
        json_decref(b);
        provider_release(&c);
    }
}

/* Without tools: no tool field at all, and the text-only request as before. */
static void
no_tools(enum fmt f)
{
    static const char *const stop[] = {"completed", "stop", "stop", "end_turn"};
    struct provider_call c;
    struct reply r;
    CHECK(call(f, json_pack("[o]", user("hello [[mock:text=hi there]]")), NULL, &c, &r) ==
          PROVIDER_OK);
    CHECK_STR(r.text, "hi there");
    CHECK(json_is_array(c.tool_calls) && json_array_size(c.tool_calls) == 0);
    CHECK(c.stop == PROVIDER_STOP_END);
    CHECK_STR(c.stop_detail, stop[f]);
    json_t *b = last_body();
    CHECK(at(b, "tools") == NULL && at(b, "tool_choice") == NULL &&
          at(b, "parallel_tool_calls") == NULL);
    CHECK_JSON(b, f == RESPONSES ? "input.0" : "messages.0",
               "{\"role\": \"user\", \"content\": \"hello [[mock:text=hi there]]\"}");
    json_decref(b);
    provider_release(&c);
    /* tool_choice none, without tools, is simply no tools */
    struct opts none = {.choice = PROVIDER_TOOL_CHOICE_NONE};
    CHECK(call(f, json_pack("[o]", user("[[mock:text=ok]]")), &none, &c, &r) == PROVIDER_OK);
    b = last_body();
    CHECK(at(b, "tools") == NULL && at(b, "tool_choice") == NULL);
    json_decref(b);
    provider_release(&c);
}

/* More calls than PROVIDER_TOOL_CALLS_MAX fail the attempt; arguments
 * longer than PROVIDER_TOOL_ARGS_MAX_BYTES are that call's error only. */
static void
limits(enum fmt f)
{
    struct provider_call c;
    struct reply r;
    size_t big = PROVIDER_TOOL_ARGS_MAX_BYTES + 100, n = 0;
    char *text = malloc(big + 4096);
    n += sprintf(text + n, "many ");
    for (int i = 0; i <= PROVIDER_TOOL_CALLS_MAX; i++)
        n += sprintf(text + n, "[[mock:call=get_time:{}]]");
    expect_failure = 1;
    CHECK(call(f, json_pack("[o]", user(text)), &with_tools, &c, &r) == PROVIDER_FAILED);
    expect_failure = 0;
    CHECK(strstr(c.error, "more than 64 tool calls") != NULL);
    CHECK(json_array_size(c.tool_calls) == 0);
    provider_release(&c);

    n = (size_t)sprintf(text, "long [[mock:args_chunk=100000,call=get_weather:{\"city\":\"");
    memset(text + n, 'x', big);
    n += big;
    n += sprintf(text + n, "\"}]] [[mock:call=get_time:{\"zone\":\"UTC\"}]]");
    CHECK(call(f, json_pack("[o]", user(text)), &with_tools, &c, &r) == PROVIDER_OK);
    CHECK(json_array_size(c.tool_calls) == 2);
    CHECK(str(c.tool_calls, "0.error") && strstr(str(c.tool_calls, "0.error"), "longer than"));
    CHECK_STR(str(c.tool_calls, "0.arguments"), "");
    CHECK(at(c.tool_calls, "0.input") == NULL);
    CHECK_JSON(c.tool_calls, "1.input", "{\"zone\": \"UTC\"}");
    provider_release(&c);
    free(text);
}

/* What provider_prepare refuses before a byte is sent. */
static void
refused(const char *why, json_t *msgs, const char *tools, enum provider_tool_choice choice,
        const char *name)
{
    json_t *t = tools ? json_loads(tools, 0, NULL) : NULL;
    struct provider_call c = {.route = &routes[RESPONSES],
                              .model = "m",
                              .api_key = KEY,
                              .messages = msgs,
                              .tools = t,
                              .tool_choice = choice,
                              .tool_name = name};
    check_count++;
    if (provider_prepare(&c) != PROVIDER_FAILED || !strstr(c.error, why) || c.transfer) {
        check_failures++;
        fprintf(stderr, "%s: expected a refusal with \"%s\", got \"%s\"\n", __FILE__, why, c.error);
        provider_abort(&c, multi);
    }
    provider_release(&c);
    json_decref(msgs);
    json_decref(t);
}

static void
refusals(void)
{
    json_t *call_x = json_pack("{s:s, s:[{s:s, s:s, s:{}}]}", "role", "assistant", "tool_calls",
                               "id", "x", "name", "get_time", "input");
    refused("not offered", json_pack("[o]", user("hi")), TOOLS, PROVIDER_TOOL_CHOICE_SPECIFIC,
            "nope");
    refused("no tool is offered", json_pack("[o]", user("hi")), NULL, PROVIDER_TOOL_CHOICE_REQUIRED,
            NULL);
    refused("not {name", json_pack("[o]", user("hi")), "[{\"name\": \"two words\"}]",
            PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused("two tools are named", json_pack("[o]", user("hi")),
            "[{\"name\": \"a\"}, {\"name\": \"a\"}]", PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused("unknown tool_choice", json_pack("[o]", user("hi")), TOOLS, 7, NULL);
    refused("message 2 follows tool calls that have no result",
            json_pack("[o, O, o]", user("hi"), call_x, user("again")), TOOLS,
            PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused("ends with tool calls", json_pack("[o, O]", user("hi"), call_x), TOOLS,
            PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused("message 1 answers a tool call", json_pack("[o, o]", user("hi"), result("x", "r", 0)),
            TOOLS, PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused("message 3 answers a tool call",
            json_pack("[o, O, o, o]", user("hi"), call_x, result("x", "r", 0), result("x", "r", 0)),
            TOOLS, PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused("message 0 is a user message without text", json_pack("[{s:s}]", "role", "user"), NULL,
            PROVIDER_TOOL_CHOICE_AUTO, NULL);
    refused(
        "without tool_call_id",
        json_pack("[o, O, {s:s, s:s}]", user("hi"), call_x, "role", "tool", "tool_call_id", "x"),
        TOOLS, PROVIDER_TOOL_CHOICE_AUTO, NULL);
    json_decref(call_x);
}

/* Feeds frames (JSON texts, or [DONE]) to a format's reader as a transfer
 * would, then puts the calls together: 0, or -1 with c->error. */
static int
feed(const struct provider_wire *w, const char *const *frames, struct provider_call *c,
     struct reply *r)
{
    struct provider_transfer k = {.c = c};
    int rc = 0;
    memset(r, 0, sizeof *r);
    *c = (struct provider_call){.on_delta = on_delta, .arg = r, .tool_calls = json_array()};
    for (; *frames && rc == 0; frames++) {
        struct sse_frame f = {.data = *frames, .data_len = strlen(*frames)};
        json_t *data = strcmp(*frames, "[DONE]") ? json_loads(*frames, 0, NULL) : NULL;
        rc = w->frame(&k, &f, data);
        json_decref(data);
    }
    if (rc == 0)
        rc = provider_tools_out(&k);
    provider_tools_free(&k);
    return rc;
}

#define CHAT_CALL(fields)                                                                          \
    "{\"choices\": [{\"index\": 0, \"delta\": {\"tool_calls\": [" fields "]}}]}"

static void
quirks(void)
{
    struct provider_call c;
    struct reply r;
    /* several calls at index 0, told apart by their ids (a compatible API) */
    const char *const same_index[] = {
        CHAT_CALL("{\"index\": 0, \"id\": \"a\", \"function\": {\"name\": \"get_time\", "
                  "\"arguments\": \"{\\\"z\\\":\"}}"),
        CHAT_CALL("{\"index\": 0, \"function\": {\"arguments\": \"1}\"}}"),
        CHAT_CALL("{\"index\": 0, \"id\": \"b\", \"function\": {\"name\": \"get_weather\"}}"),
        "[DONE]", NULL};
    CHECK(feed(&provider_wire_chat, same_index, &c, &r) == 0);
    CHECK(json_array_size(c.tool_calls) == 2);
    CHECK_JSON(c.tool_calls, "0",
               "{\"id\": \"a\", \"name\": \"get_time\", \"arguments\": "
               "\"{\\\"z\\\":1}\", \"input\": {\"z\": 1}}");
    CHECK_JSON(c.tool_calls, "1",
               "{\"id\": \"b\", \"name\": \"get_weather\", \"arguments\": "
               "\"\", \"input\": {}}");
    json_decref(c.tool_calls);
    /* no index: by id, a fragment without one to the call before; the
     * arguments as an object */
    const char *const no_index[] = {
        CHAT_CALL("{\"id\": \"a\", \"function\": {\"name\": \"get_time\", \"arguments\": "
                  "{\"z\": 1}}}"),
        CHAT_CALL("{\"id\": \"b\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
                  "\"{\\\"c\"}}"),
        CHAT_CALL("{\"function\": {\"arguments\": \"\\\":1}\"}}"), "[DONE]", NULL};
    CHECK(feed(&provider_wire_chat, no_index, &c, &r) == 0);
    CHECK_JSON(c.tool_calls, "0.input", "{\"z\": 1}");
    CHECK_JSON(c.tool_calls, "1.input", "{\"c\": 1}");
    json_decref(c.tool_calls);
    const char *const orphan[] = {CHAT_CALL("{\"function\": {\"arguments\": \"{}\"}}"), NULL};
    CHECK(feed(&provider_wire_chat, orphan, &c, &r) < 0 && strstr(c.error, "of no call"));
    json_decref(c.tool_calls);
    const char *const no_id[] = {
        CHAT_CALL("{\"index\": 0, \"function\": {\"name\": \"get_time\", \"arguments\": "
                  "\"{}\"}}"),
        "[DONE]", NULL};
    CHECK(feed(&provider_wire_chat, no_id, &c, &r) < 0 && strstr(c.error, "without an id"));
    json_decref(c.tool_calls);
    char long_id[400];
    snprintf(long_id, sizeof long_id, CHAT_CALL("{\"index\": 0, \"id\": \"%0300d\"}"), 7);
    const char *const too_long[] = {long_id, NULL};
    CHECK(feed(&provider_wire_chat, too_long, &c, &r) < 0 && strstr(c.error, "longer than"));
    json_decref(c.tool_calls);
    /* Responses: the whole arguments win over pieces that disagree, and
     * the call says so; without pieces, the whole arguments are the call's */
    const char *const responses[] = {
        "{\"type\": \"response.output_item.added\", \"output_index\": 0, \"item\": {\"id\": "
        "\"fc_1\", \"type\": \"function_call\", \"call_id\": \"c1\", \"name\": \"get_time\", "
        "\"arguments\": \"\"}}",
        "{\"type\": \"response.function_call_arguments.delta\", \"item_id\": \"fc_1\", "
        "\"output_index\": 0, \"delta\": \"{\\\"a\\\":1}\"}",
        "{\"type\": \"response.function_call_arguments.done\", \"item_id\": \"fc_1\", "
        "\"output_index\": 0, \"arguments\": \"{\\\"a\\\":2}\"}",
        "{\"type\": \"response.output_item.done\", \"output_index\": 1, \"item\": {\"id\": "
        "\"fc_2\", \"type\": \"function_call\", \"call_id\": \"c2\", \"name\": \"get_time\", "
        "\"arguments\": \"{\\\"a\\\":3}\"}}",
        "{\"type\": \"response.completed\", \"response\": {}}",
        NULL};
    CHECK(feed(&provider_wire_responses, responses, &c, &r) == 0);
    CHECK(str(c.tool_calls, "0.error") && strstr(str(c.tool_calls, "0.error"), "differ"));
    CHECK_STR(str(c.tool_calls, "0.arguments"), "{\"a\":2}");
    CHECK_JSON(c.tool_calls, "1.input", "{\"a\": 3}");
    json_decref(c.tool_calls);
    /* Messages: a server tool's block and its input are not calls */
    const char *const server_tool[] = {
        "{\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": "
        "\"server_tool_use\", \"id\": \"srvtoolu_1\", \"name\": \"web_search\", \"input\": {}}}",
        "{\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": "
        "\"input_json_delta\", \"partial_json\": \"{\\\"query\\\": \\\"x\\\"}\"}}",
        "{\"type\": \"content_block_start\", \"index\": 1, \"content_block\": {\"type\": "
        "\"tool_use\", \"id\": \"toolu_1\", \"name\": \"get_time\", \"input\": {}}}",
        "{\"type\": \"message_stop\"}", NULL};
    CHECK(feed(&provider_wire_messages, server_tool, &c, &r) == 0);
    CHECK(json_array_size(c.tool_calls) == 1);
    CHECK_JSON(c.tool_calls, "0.id", "\"toolu_1\"");
    json_decref(c.tool_calls);
}

int
main(void)
{
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || mock_start() < 0)
        return 1;
    atexit(mock_stop);
    multi = curl_multi_init();
    for (int f = 0; f < NFMTS; f++) {
        snprintf(bases[f], sizeof bases[f], "%s%s", mock_url, fmts[f].path);
        routes[f] = (struct route){
            .id = (char *)fmts[f].name, .driver = fmts[f].driver, .base_url = bases[f]};
    }
    refusals();
    quirks();
    for (int f = 0; f < NFMTS; f++) {
        int before = check_failures;
        one_call(f);
        parallel_calls(f);
        split_arguments(f);
        malformed_arguments(f);
        round_trip(f);
        choices(f);
        no_tools(f);
        limits(f);
        printf("%s: %s\n", fmts[f].name, check_failures == before ? "ok" : "FAILED");
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return check_report("provider_tools");
}
