#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static const char *log_component = "kheish";
static pid_t log_pid; /* cached: getpid() is a system call on every line otherwise */

static void
log_forked(void)
{
    log_pid = getpid();
}

void
log_init(const char *component)
{
    log_component = component;
    log_pid = getpid();
    pthread_atfork(NULL, NULL, log_forked);
}

void
log_fields(const char *level, json_t *fields)
{
    json_object_set_new(fields, "ts_ms", json_integer(util_now_ms()));
    json_object_set_new(fields, "level", json_string(level));
    json_object_set_new(fields, "component", json_string(log_component));
    json_object_set_new(fields, "pid", json_integer(log_pid ? log_pid : getpid()));
    char *line = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(fields);
    if (line == NULL)
        return;
    /* One write per line so concurrent workers never interleave inside a line. */
    size_t n = strlen(line);
    line[n] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n + 1);
    (void)w;
    free(line);
}

void
log_msg(const char *level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "msg", json_string(msg));
    log_fields(level, o);
}
