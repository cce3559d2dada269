/*
 * ratelimit: auth failures per (reason, client address) in a sliding window,
 * shared by every process of a host through one memory-mapped file (workers,
 * relays), so a client cannot spread its attempts across processes. Each
 * process opens the file itself; updates hold an flock on it, which the
 * kernel releases if the holder dies.
 */
#ifndef KHEISH_RATELIMIT_H
#define KHEISH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_FAILURES 60    /* per bucket and window; the next is limited */
#define RATELIMIT_WINDOW_MS    60000 /* sliding window */
#define RATELIMIT_RETRY_AFTER  60    /* seconds, the Retry-After of a limited answer */
#define RATELIMIT_BUCKETS      1024  /* (reason, address) pairs tracked at once */
#define RATELIMIT_KEY_MAX      95

enum ratelimit_verdict {
    RATELIMIT_ALLOWED,
    RATELIMIT_LIMITED_FIRST, /* the bucket's first limited failure this window: audit it */
    RATELIMIT_LIMITED,
};

struct ratelimit;

/* Opens (creating and initialising when needed) the shared table at path.
 * Returns NULL with the reason in err. */
struct ratelimit *ratelimit_open(const char *path, char *err, size_t errsz);
void ratelimit_close(struct ratelimit *rl);

/* Records one failure for key at now_ms (a monotonic clock shared by the
 * host's processes) and says whether it is over the limit. */
enum ratelimit_verdict ratelimit_note(struct ratelimit *rl, const char *key, int64_t now_ms);

#endif
