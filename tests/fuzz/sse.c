/*
 * fuzz-sse: the SSE frame parser (common/sse.c) that reads model providers'
 * streams in the runner and the control plane's streams in the CLI. The
 * first byte picks the chunk size; the rest is the stream. Fed whole and fed
 * in chunks, the same bytes must give the same frames, and every frame must
 * keep the parser's promises (NUL-terminated data of data_len bytes, bounded
 * id and event name).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sse.h"

#define MAX_BYTES 4096 /* of a frame: small, so the limit is reached too */

struct record {
    unsigned char digest[32]; /* a running digest of every frame */
    size_t frames;
};

static void
mix(struct record *r, const void *p, size_t n)
{
    /* FNV-1a over 32 lanes: enough to tell two frame sequences apart. */
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        unsigned char *d = &r->digest[i % sizeof r->digest];
        *d = (unsigned char)((*d ^ b[i]) * 16777619u);
    }
    r->digest[n % sizeof r->digest] ^= (unsigned char)n;
}

static int
on_frame(void *arg, const struct sse_frame *f)
{
    struct record *r = arg;
    FUZZ_CHECK(f->data[f->data_len] == '\0');
    FUZZ_CHECK(strlen(f->id) <= SSE_ID_MAX && strlen(f->event) <= SSE_EVENT_MAX);
    FUZZ_CHECK(f->event[0] != '\0');
    mix(r, f->id, strlen(f->id) + 1);
    mix(r, f->event, strlen(f->event) + 1);
    mix(r, f->data, f->data_len + 1);
    r->frames++;
    return 0;
}

static int
parse(const char *s, size_t n, size_t chunk, struct record *r)
{
    struct sse_parser p = {.max_bytes = MAX_BYTES, .fn = on_frame, .arg = r};
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += chunk)
        rc = sse_feed(&p, s + off, n - off < chunk ? n - off : chunk);
    sse_free(&p);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] % 17 + 1;
    struct record whole = {{0}, 0}, pieces = {{0}, 0};
    int a = parse((const char *)data + 1, size - 1, size, &whole);
    int b = parse((const char *)data + 1, size - 1, chunk, &pieces);
    FUZZ_CHECK(a == 0 || a == SSE_TOO_BIG);
    FUZZ_CHECK(a == b);
    if (a == 0)
        FUZZ_CHECK(whole.frames == pieces.frames &&
                   !memcmp(whole.digest, pieces.digest, sizeof whole.digest));
    return 0;
}
