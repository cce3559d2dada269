/*
 * The log line builder (common/log.c): whatever a client puts in a path or a
 * header, each line is one valid JSON object on one line, with the envelope
 * first; a value too long for the line is cut at a character boundary and the
 * line says "truncated".
 */
#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static FILE *captured;
static int saved_stderr;
static long captured_at;

/* Lines logged between capture() and lines() go to the capture file; the
 * checks' own messages go to the real stderr. */
static void
capture(void)
{
    fflush(stderr);
    dup2(fileno(captured), STDERR_FILENO);
}

/* Runs the lines captured since the last call through jansson: returns the
 * last one parsed (NULL when one is not a JSON object on its own line). */
static json_t *
lines(int *count)
{
    char buf[2 * LOG_LINE_MAX];
    json_t *last = NULL;
    *count = 0;
    dup2(saved_stderr, STDERR_FILENO);
    fseek(captured, captured_at, SEEK_SET);
    while (fgets(buf, sizeof buf, captured)) {
        json_decref(last);
        last = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(last) || buf[strlen(buf) - 1] != '\n') {
            json_decref(last);
            return NULL;
        }
        ++*count;
    }
    captured_at = ftell(captured);
    return last;
}

int
main(void)
{
    captured = tmpfile();
    saved_stderr = dup(STDERR_FILENO);
    log_init("test-log");

    struct log_line l;
    capture();
    log_begin(&l, "info", "request");
    log_str(&l, "path", "/v1/\"runs\"\\\n\t\x01/é");
    log_str(&l, "problem", NULL);
    log_int(&l, "status", -42);
    log_ms(&l, "duration_ms", 1234567);
    log_end(&l);
    int n;
    json_t *o = lines(&n);
    CHECK(o != NULL && n == 1);
    CHECK_STR(json_string_value(json_object_get(o, "path")), "/v1/\"runs\"\\\n\t\x01/é");
    CHECK(json_is_null(json_object_get(o, "problem")));
    CHECK(json_integer_value(json_object_get(o, "status")) == -42);
    CHECK(json_real_value(json_object_get(o, "duration_ms")) == 1234.567);
    CHECK_STR(json_string_value(json_object_get(o, "level")), "info");
    CHECK_STR(json_string_value(json_object_get(o, "component")), "test-log");
    CHECK_STR(json_string_value(json_object_get(o, "event")), "request");
    CHECK(json_object_get(o, "truncated") == NULL);
    json_decref(o);

    /* A path longer than a line, of two-byte characters: cut between two. */
    static char big[3 * LOG_LINE_MAX];
    for (size_t i = 0; i + 2 < sizeof big; i += 2)
        memcpy(big + i, "é", 2);
    capture();
    log_begin(&l, "warn", "request");
    log_str(&l, "path", big);
    log_int(&l, "status", 200);
    log_str(&l, "after", big);
    log_end(&l);
    o = lines(&n);
    CHECK(o != NULL && n == 1);
    const char *cut = json_string_value(json_object_get(o, "path"));
    CHECK(cut != NULL && strlen(cut) > LOG_LINE_MAX / 2 && strlen(cut) % 2 == 0 &&
          !strncmp(cut, big, strlen(cut)));
    CHECK(json_object_get(o, "truncated") == json_true());
    CHECK_STR(json_string_value(json_object_get(o, "level")), "warn");
    json_decref(o);

    /* Control characters escaped as \u00XX take six bytes each: the cut
     * never splits an escape. */
    static char ctl[LOG_LINE_MAX];
    memset(ctl, '\x1f', sizeof ctl - 1);
    capture();
    log_msg("error", "x", "%s", ctl);
    log_fields("info",
               json_pack("{s:s, s:s, s:i}", "event", "adopted", "process", ctl, "daemon_pid", 7));
    o = lines(&n);
    CHECK(o != NULL && n == 2);
    CHECK_STR(json_string_value(json_object_get(o, "event")), "adopted");
    json_decref(o);

    return check_report("log");
}
