/* log: one JSON object per line on stderr. Never log request bodies or secrets. */
#ifndef KHEISH_LOG_H
#define KHEISH_LOG_H

#include <jansson.h>

/* Sets the "component" field of every line (the binary's name). */
void log_init(const char *component);

/* Writes fields (stolen) with "ts_ms", "level" and "component" added. */
void log_fields(const char *level, json_t *fields);

/* Writes {"event": event, "msg": <formatted>}. */
void log_msg(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
