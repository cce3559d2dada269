/*
 * uri: what the client-facing binaries parse out of a request target:
 * percent-decoding, the path (segment by segment), ids in paths.
 */
#ifndef KHEISH_URI_H
#define KHEISH_URI_H

#include <stddef.h>

#define URI_ID_MAX_BYTES 128

/* nginx's internal location for the wait of an inline POST
 * /v1/sessions/{id}/input: kheish-fcgi redirects there (X-Accel-Redirect) as
 * PREFIX<session_id>/<run_id>?wait_ms=N, N up to the MAX (its
 * KHEISH_INPUT_WAIT_MS), and kheish-sse-relay serves it. */
#define URI_INPUT_WAIT_PREFIX "/_kheish/input-wait/"
#define URI_INPUT_WAIT_MAX_MS 3600000

/* Percent-decodes s[0..len) into a new string ('+' is a space when
 * plus_is_space, as in a query; itself in a path). Caller frees; NULL when
 * malformed or not printable UTF-8. */
char *uri_pct_decode(const char *s, size_t len, int plus_is_space);

/* The path of a request URI (up to '?'), each segment percent-decoded on
 * its own: an encoded '/' is refused rather than decoded, so "%2F..%2F" can
 * never move a request to another route. Caller frees; NULL when malformed,
 * not printable UTF-8, or not starting with '/'. */
char *uri_decode_path(const char *uri);

/* A session or run id: 1..URI_ID_MAX_BYTES of [A-Za-z0-9._:@-] starting with
 * a letter, digit or '_', so "." / ".." and traversal never reach the store
 * (the sessions table has the same CHECK). */
int uri_valid_id(const char *id);

#endif
