/* util: small helpers every binary needs (time, strict number parsing, text). */
#ifndef KHEISH_UTIL_H
#define KHEISH_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

int64_t util_now_ms(void);
int64_t util_monotonic_us(void);

/* Parses a whole decimal integer in [min, max]. Returns 0 on success, -1 on
 * empty input, trailing bytes, a sign where none is allowed, or overflow. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Writes the message into err (errsz bytes) and returns -1: a parser's
 * error return in one statement. */
int util_fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Integer from the environment, or def when unset; -1 when set but invalid. */
int util_env_i64(const char *name, int64_t min, int64_t max, int64_t def, int64_t *out);

/* A JSON string from bytes that may not be UTF-8: invalid bytes become '?'. */
json_t *util_json_str(const char *s);

/* A client's header text as a record may keep it: s without its control
 * characters (below 0x20, and 0x7f), cut at max bytes (out holds max + 1),
 * as a JSON string (util_json_str: a character the cut split becomes '?'). */
json_t *util_json_clean(const char *s, char *out, size_t max);

/* 1 when s is valid UTF-8 without control characters (except none). */
int util_utf8_printable(const char *s, size_t len);
/* 1 when s is valid UTF-8 without NUL. */
int util_utf8_valid(const char *s, size_t len);
/* Length of the longest prefix of s that is valid UTF-8 (NUL allowed):
 * len when all of s is. */
size_t util_utf8_prefix(const char *s, size_t len);

/* base64url without padding. encode writes a NUL-terminated string into out
 * (size >= 4*len/3+2); decode returns the decoded length or -1. */
void util_b64url_encode(const void *in, size_t len, char *out, size_t outsz);
int util_b64url_decode(const char *in, void *out, size_t outsz);

/* 1 when the n bytes at word are one of the space-separated words of list
 * (NULL: none). */
int util_has_word(const char *list, const char *word, size_t n);

/* 1 when s equals one of the strings of list (NULL-terminated). */
int util_in_list(const char *s, const char *const *list);

/* Lowercase hex SHA-256 of data into out[65]. */
void util_sha256_hex(const void *data, size_t len, char out[65]);

/* Makes a listening unix socket 0660 for its owner and group (nginx's
 * workers, when group is not NULL): it is the only way past nginx, and a
 * local user who could connect would claim any client address and dodge the
 * auth rate limit. Returns 0, or -1 with errno (ENOENT: no such group). */
int util_socket_restrict(const char *path, const char *group);

#endif
