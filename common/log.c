#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Room kept at the end of every line for "truncated" and the closing "}\n". */
#define LOG_TAIL 24

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

static size_t
room(const struct log_line *l)
{
    return sizeof l->buf - LOG_TAIL - l->len;
}

/* Appends n bytes as they are, or nothing (and marks the line) if they do
 * not fit. */
static void
put(struct log_line *l, const char *s, size_t n)
{
    if (n > room(l)) {
        l->truncated = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Appends s as a JSON string, cut at a character boundary when it does not
 * fit. Keys and values alike: both may come from a client. */
static void
put_string(struct log_line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', (char)c};
        size_t n = 1;
        if (c == '"' || c == '\\')
            n = 2;
        else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (n + 1 > room(l)) { /* + the closing quote */
            while (l->len > 0 && ((unsigned char)l->buf[l->len - 1] & 0xc0) == 0x80)
                l->len--; /* a UTF-8 continuation byte: drop the partial character */
            if (l->len > 0 && ((unsigned char)l->buf[l->len - 1] & 0x80))
                l->len--;
            l->truncated = 1;
            break;
        }
        memcpy(l->buf + l->len, n == 1 ? s : esc, n);
        l->len += n;
    }
    l->buf[l->len++] = '"';
}

/* Appends ,"key": when there is room for it and a short value after it
 * (a number, null, a string's first characters); 0, or -1 when not. */
static int
put_key(struct log_line *l, const char *key)
{
    if (room(l) < 6 * strlen(key) + 32) {
        l->truncated = 1;
        return -1;
    }
    put(l, ",", 1);
    put_string(l, key);
    put(l, ":", 1);
    return 0;
}

void
log_begin(struct log_line *l, const char *level, const char *event)
{
    l->len = 0;
    l->truncated = 0;
    l->buf[l->len++] = '{';
    l->len += (size_t)snprintf(l->buf + l->len, room(l), "\"ts_ms\":%" PRId64, util_now_ms());
    log_str(l, "level", level);
    log_str(l, "component", log_component);
    log_int(l, "pid", log_pid ? log_pid : getpid());
    log_str(l, "event", event);
}

void
log_str(struct log_line *l, const char *key, const char *value)
{
    if (put_key(l, key) != 0)
        return;
    if (value)
        put_string(l, value);
    else
        put(l, "null", 4);
}

void
log_int(struct log_line *l, const char *key, int64_t value)
{
    char v[24];
    if (put_key(l, key) == 0)
        put(l, v, (size_t)snprintf(v, sizeof v, "%" PRId64, value));
}

void
log_ms(struct log_line *l, const char *key, int64_t us)
{
    char v[32];
    if (put_key(l, key) == 0)
        put(l, v, (size_t)snprintf(v, sizeof v, "%" PRId64 ".%03d", us / 1000, (int)(us % 1000)));
}

void
log_end(struct log_line *l)
{
    static const char mark[] = ",\"truncated\":true";
    if (l->truncated) {
        memcpy(l->buf + l->len, mark, sizeof mark - 1);
        l->len += sizeof mark - 1;
    }
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w;
}

void
log_fields(const char *level, json_t *fields)
{
    struct log_line l;
    const char *key;
    json_t *value;
    log_begin(&l, level, json_string_value(json_object_get(fields, "event")));
    json_object_foreach(fields, key, value)
    {
        if (!strcmp(key, "event"))
            continue;
        char *v = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t n = v ? strlen(v) : 0;
        if (put_key(&l, key) == 0) {
            if (v && n <= room(&l)) {
                put(&l, v, n);
            } else {
                put(&l, "null", 4);
                l.truncated = 1;
            }
        }
        free(v);
    }
    json_decref(fields);
    log_end(&l);
}

void
log_msg(const char *level, const char *event, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct log_line l;
    log_begin(&l, level, event);
    log_str(&l, "msg", msg);
    log_end(&l);
}
