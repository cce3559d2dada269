/*
 * json_exact: JSON whose numbers survive PostgreSQL. jsonb keeps a number as
 * an exact decimal and prints 1e19 back as 10000000000000000000, which jansson
 * refuses (beyond int64); 1e-400 reads as 0. So a client's JSON text is
 * checked before it is parsed (json_exact_check): every number must come back
 * as the same number, and nesting is bounded. Text read from the database goes
 * through json_exact_load, which never fails on a number, so a row written
 * before the check (or by hand) cannot stop a reader.
 */
#ifndef KHEISH_JSON_EXACT_H
#define KHEISH_JSON_EXACT_H

#include <jansson.h>
#include <stddef.h>

#define JSON_EXACT_MAX_DEPTH 64
/* Numbers written with a fraction or an exponent must be below this in
 * magnitude: above it, jsonb prints them as integers that need not equal the
 * double they came from. */
#define JSON_EXACT_REAL_LIMIT 9007199254740992.0 /* 2^53 */

struct json_exact_err {
    const char *reason; /* fixed text, never the input's */
    size_t offset;      /* byte offset of the fault in the text */
};

/* 0 when the text's nesting is at most JSON_EXACT_MAX_DEPTH and each number
 * round-trips exactly: an integer within int64, or a number with a fraction or
 * exponent that is finite, not rounded to zero or a subnormal, and below
 * JSON_EXACT_REAL_LIMIT. Otherwise -1 and *err. Syntax is jansson's business:
 * this only looks at numbers and brackets outside strings. */
int json_exact_check(const char *text, size_t len, struct json_exact_err *err);

/* json_loadb for text the database returned (flags as json_loadb's): an
 * integer beyond int64 is read as the nearest double instead of failing the
 * whole document. NULL only for text that is not JSON, with *err set. */
json_t *json_exact_load(const char *text, size_t len, size_t flags, json_error_t *err);

#endif
