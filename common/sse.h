/*
 * sse: an incremental parser of text/event-stream, by the WHATWG rules:
 * lines end in \n, \r\n or \r (also split across chunks), a blank line
 * ends a frame, `data:` lines join with '\n', one leading space of a value
 * is dropped, comments and unknown fields are ignored, a frame without data
 * is not dispatched. Used by the CLI's stream follower and by the runner for
 * model providers' streams.
 */
#ifndef KHEISH_SSE_H
#define KHEISH_SSE_H

#include <stddef.h>
#include <stdint.h>

#define SSE_ID_MAX    32  /* longer ids are ignored (ours are decimal u64) */
#define SSE_EVENT_MAX 128 /* longer event names are cut */

/* What sse_feed returns besides the callback's own stop values. */
#define SSE_TOO_BIG (-1) /* a frame passed max_bytes */
#define SSE_NOMEM   (-2)

/* One dispatched frame, valid during the callback only. */
struct sse_frame {
    char id[SSE_ID_MAX + 1];       /* "" when the frame has no id: line */
    char event[SSE_EVENT_MAX + 1]; /* "message" when it has no event: line */
    const char *data;              /* its data: lines joined by '\n', NUL-terminated */
    size_t data_len;
};

/* Returns 0 to go on, anything else to stop: sse_feed returns it. */
typedef int (*sse_frame_fn)(void *arg, const struct sse_frame *f);

struct sse_parser {
    size_t max_bytes; /* of one frame's lines */
    int64_t retry_ms; /* the server's last retry: field (set the default before use) */
    sse_frame_fn fn;
    void *arg;
    /* the frame being read: its lines so far, each ended by '\n' */
    char *buf;
    size_t len, cap, line_start;
    int after_cr; /* the last line ended with '\r': a '\n' next belongs to it */
};

/* Feeds the bytes of a chunk; frames may span chunks. Returns 0, a stop
 * value of the callback, SSE_TOO_BIG or SSE_NOMEM. */
int sse_feed(struct sse_parser *p, const char *s, size_t n);

/* Forgets a partly read frame (a new connection starts clean). */
void sse_reset(struct sse_parser *p);

void sse_free(struct sse_parser *p);

#endif
