/*
 * http: the little HTTP/1.1 the SSE bench clients speak. A URL of the form
 * http://IPv4:PORT/PATH, a response head, and the chunked transfer coding
 * (nginx uses it for a proxied stream with no length, and for Nchan's).
 */
#ifndef KHEISH_BENCH_SSE_HTTP_H
#define KHEISH_BENCH_SSE_HTTP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_PATH_MAX      1024 /* bytes of a URL's path and query */
#define HTTP_HEAD_MAX      8192 /* bytes of a response head, status line included */
#define HTTP_CHUNK_HEX_MAX 8    /* hex digits of a chunk size: chunks stay below 4 GiB */
#define HTTP_CHUNK_EXT_MAX 256  /* bytes of a chunk extension */

struct http_url {
    struct sockaddr_in addr;
    char host[INET_ADDRSTRLEN + 6]; /* "a.b.c.d:port", for the Host header */
    char path[HTTP_PATH_MAX];
};

struct http_head {
    int status;
    int chunked;            /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 when absent */
    int event_stream;       /* Content-Type: text/event-stream */
};

struct http_chunked {
    int state;
    int digits; /* of the size line being read, or bytes of its extension */
    uint64_t left;
};

/* Fills u from "http://IPv4:PORT/PATH". Returns 0, or -1 when the URL has
 * another shape or is too long. */
int http_url_parse(const char *url, struct http_url *u);

/* A TCP socket to u, bound first to src (host order, port chosen at
 * connect time), non-blocking when nonblock is set. Returns the fd, or -1
 * with errno set; a non-blocking connect in progress is a success. */
int http_connect(const struct http_url *u, uint32_t src, int nonblock);

/* The length of the head at the start of buf (through its blank line), or
 * 0 when buf does not hold a whole head yet. */
size_t http_head_length(const char *buf, size_t len);

/* Parses a whole head (http_head_length bytes). Returns 0, or -1 when it is
 * not an HTTP/1.x response head. */
int http_head_parse(const char *buf, size_t len, struct http_head *h);

/* Removes the chunked framing from buf in place: the payload bytes move to
 * its front. Returns their count, or -1 when the framing is malformed.
 * Bytes after the last chunk are ignored. */
ssize_t http_chunked_decode(struct http_chunked *c, char *buf, size_t len);

/* 1 once the last (empty) chunk has been read. */
int http_chunked_done(const struct http_chunked *c);

#endif
