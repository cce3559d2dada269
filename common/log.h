/*
 * log: one JSON object per line on stderr, {"ts_ms", "level", "component",
 * "pid", "event", then the line's own fields}, written with one write() so that
 * processes sharing the file never interleave inside a line. Never log
 * request bodies or secrets.
 *
 * A hot path (one line per request) builds its line in a struct log_line on
 * the stack, without allocating:
 *
 *     struct log_line l;
 *     log_begin(&l, "info", "request");
 *     log_str(&l, "path", path);
 *     log_int(&l, "status", 200);
 *     log_end(&l);
 *
 * A value that does not fit is cut at a character boundary and the line gets
 * "truncated": true.
 */
#ifndef KHEISH_LOG_H
#define KHEISH_LOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LINE_MAX 4096

struct log_line {
    char buf[LOG_LINE_MAX];
    size_t len;
    int truncated;
};

/* Sets the "component" field of every line (the binary's name). */
void log_init(const char *component);

void log_begin(struct log_line *l, const char *level, const char *event);
/* A string field; NULL is written as null. */
void log_str(struct log_line *l, const char *key, const char *value);
void log_int(struct log_line *l, const char *key, int64_t value);
/* A duration given in microseconds, written in milliseconds (0.001 ms steps). */
void log_ms(struct log_line *l, const char *key, int64_t us);
/* Closes the line and writes it. */
void log_end(struct log_line *l);

/* Writes the fields of an object (stolen): the cold paths' way. Its "event"
 * goes in the envelope; its other keys must not repeat the envelope's. */
void log_fields(const char *level, json_t *fields);

/* Writes {"event": event, "msg": <formatted>}. */
void log_msg(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
