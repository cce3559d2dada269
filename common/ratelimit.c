#include "ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RATELIMIT_MAGIC "khrl0001" /* bump when the layout changes */
#define RATELIMIT_PROBE 16         /* slots looked at per key */

/* The newest RATELIMIT_MAX_FAILURES failure times of one bucket: it is over
 * the limit when all of them lie inside the window. */
struct bucket {
    char key[RATELIMIT_KEY_MAX + 1];
    int64_t last_ms;
    int64_t audited_ms; /* when the current limited stretch was audited */
    uint32_t head;      /* next sample to overwrite: the oldest once full */
    uint32_t count;
    int64_t samples[RATELIMIT_MAX_FAILURES];
};

struct table {
    char magic[8];
    struct bucket buckets[RATELIMIT_BUCKETS];
};

struct ratelimit {
    int fd;
    struct table *t;
};

struct ratelimit *
ratelimit_open(const char *path, char *err, size_t errsz)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    struct stat st;
    if (rl == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    rl->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (rl->fd < 0 || flock(rl->fd, LOCK_EX) != 0 || fstat(rl->fd, &st) != 0)
        goto fail;
    /* A new file, or one of another layout: start from zeroes. */
    if (st.st_size != (off_t)sizeof(struct table)) {
        if (ftruncate(rl->fd, 0) != 0 || ftruncate(rl->fd, sizeof(struct table)) != 0 ||
            pwrite(rl->fd, RATELIMIT_MAGIC, 8, 0) != 8)
            goto fail;
    }
    rl->t = mmap(NULL, sizeof(struct table), PROT_READ | PROT_WRITE, MAP_SHARED, rl->fd, 0);
    if (rl->t == MAP_FAILED)
        goto fail;
    if (memcmp(rl->t->magic, RATELIMIT_MAGIC, 8) != 0) {
        memset(rl->t, 0, sizeof(struct table));
        memcpy(rl->t->magic, RATELIMIT_MAGIC, 8);
    }
    flock(rl->fd, LOCK_UN);
    return rl;
fail:
    snprintf(err, errsz, "rate-limit table %s: %s", path, strerror(errno));
    if (rl->t && rl->t != MAP_FAILED)
        munmap(rl->t, sizeof(struct table));
    if (rl->fd >= 0)
        close(rl->fd);
    free(rl);
    return NULL;
}

void
ratelimit_close(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    munmap(rl->t, sizeof(struct table));
    close(rl->fd);
    free(rl);
}

static uint32_t
hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The key's bucket; else a free or expired slot; else the least recently
 * used one of the probe range, which is reset for the key. */
static struct bucket *
find(struct table *t, const char *key, int64_t now_ms)
{
    uint32_t h = hash(key);
    struct bucket *reuse = NULL;
    int64_t best = 0;
    for (uint32_t i = 0; i < RATELIMIT_PROBE; i++) {
        struct bucket *b = &t->buckets[(h + i) % RATELIMIT_BUCKETS];
        if (!strcmp(b->key, key))
            return b;
        int idle = b->key[0] == '\0' || now_ms - b->last_ms > RATELIMIT_WINDOW_MS;
        int64_t score = idle ? INT64_MIN : b->last_ms;
        if (reuse == NULL || score < best)
            reuse = b, best = score;
    }
    memset(reuse, 0, sizeof *reuse);
    snprintf(reuse->key, sizeof reuse->key, "%s", key);
    return reuse;
}

enum ratelimit_verdict
ratelimit_note(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    if (flock(rl->fd, LOCK_EX) != 0)
        return RATELIMIT_ALLOWED;
    struct bucket *b = find(rl->t, key, now_ms);
    int limited =
        b->count == RATELIMIT_MAX_FAILURES && now_ms - b->samples[b->head] <= RATELIMIT_WINDOW_MS;
    b->samples[b->head] = now_ms;
    b->head = (b->head + 1) % RATELIMIT_MAX_FAILURES;
    if (b->count < RATELIMIT_MAX_FAILURES)
        b->count++;
    b->last_ms = now_ms;
    enum ratelimit_verdict v = RATELIMIT_ALLOWED;
    if (limited) {
        v = RATELIMIT_LIMITED;
        if (b->audited_ms == 0 || now_ms - b->audited_ms > RATELIMIT_WINDOW_MS) {
            b->audited_ms = now_ms;
            v = RATELIMIT_LIMITED_FIRST;
        }
    }
    flock(rl->fd, LOCK_UN);
    return v;
}
