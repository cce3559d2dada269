/*
 * The archive of `kheish backup`: a plain POSIX ustar file (so `tar -tvf`
 * lists it), written and read here rather than by tar(1), so that members
 * are hashed while they are copied, no secret is staged in a temporary
 * directory, and a reader never writes outside the names it checked.
 * Regular files only; names are short and portable (BACKUP_NAME_MAX).
 */
#include "backup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TAR_BLOCK          512
#define TAR_OCTAL_SIZE_MAX 077777777777ULL /* 11 octal digits; more in base-256 */
#define COPY_CHUNK         65536

/* The ustar header's fields: offset and length. */
enum {
    H_NAME = 0,
    H_NAME_LEN = 100,
    H_MODE = 100,
    H_UID = 108,
    H_GID = 116,
    H_NUM_LEN = 8,
    H_SIZE = 124,
    H_MTIME = 136,
    H_TIME_LEN = 12,
    H_CHKSUM = 148,
    H_TYPE = 156,
    H_MAGIC = 257,
    H_VERSION = 263,
};

static int
write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; 0, or -1 (errno 0 at end of file). */
static int
read_all(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = 0;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int
backup_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BACKUP_NAME_MAX || name[0] == '/' || name[n - 1] == '/' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+@,~-/") != n)
        return 0;
    for (const char *p = name; p; p = strchr(p, '/')) { /* no "", "." or ".." component */
        p += *p == '/';
        size_t c = strcspn(p, "/");
        if (c == 0 || (c == 1 && p[0] == '.') || (c == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
    }
    return 1;
}

/* v in len - 1 octal digits and a NUL (callers keep v in range). */
static void
octal(unsigned char *field, size_t len, uint64_t v)
{
    field[len - 1] = '\0';
    for (size_t i = len - 1; i > 0; i--, v >>= 3)
        field[i - 1] = (unsigned char)('0' + (v & 7));
}

static int
put_header(int fd, const char *name, uint64_t size, mode_t mode, time_t mtime)
{
    unsigned char h[TAR_BLOCK] = {0};
    unsigned sum = 0;
    memcpy(h + H_NAME, name, strlen(name));
    octal(h + H_MODE, H_NUM_LEN, mode & 07777);
    octal(h + H_UID, H_NUM_LEN, 0);
    octal(h + H_GID, H_NUM_LEN, 0);
    if (size <= TAR_OCTAL_SIZE_MAX) {
        octal(h + H_SIZE, H_TIME_LEN, size);
    } else { /* GNU's base-256: the high bit set, the number big-endian */
        h[H_SIZE] = 0x80;
        for (int i = H_TIME_LEN - 1; i > 0; i--, size >>= 8)
            h[H_SIZE + i] = (unsigned char)(size & 0xff);
    }
    octal(h + H_MTIME, H_TIME_LEN, mtime > 0 ? (uint64_t)mtime : 0);
    h[H_TYPE] = '0';
    memcpy(h + H_MAGIC, "ustar", 6);
    memcpy(h + H_VERSION, "00", 2);
    memset(h + H_CHKSUM, ' ', H_NUM_LEN);
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + H_CHKSUM, 7, "%06o", sum);
    return write_all(fd, h, TAR_BLOCK);
}

static int
put_padding(int fd, uint64_t size)
{
    static const unsigned char zero[TAR_BLOCK];
    size_t pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
    return pad ? write_all(fd, zero, pad) : 0;
}

static void
digest_hex(crypto_hash_sha256_state *h, char hex[BACKUP_SHA256_HEX])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(h, d);
    sodium_bin2hex(hex, BACKUP_SHA256_HEX, d, sizeof d);
}

int
backup_tar_put_fd(int out, const char *name, int in, uint64_t size, mode_t mode, time_t mtime,
                  char sha256[BACKUP_SHA256_HEX])
{
    unsigned char buf[COPY_CHUNK];
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    if (put_header(out, name, size, mode, mtime) != 0)
        return -1;
    for (uint64_t left = size; left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        if (read_all(in, buf, n) != 0) {
            if (errno == 0)
                errno = EIO; /* it shrank while we copied it */
            sodium_memzero(buf, sizeof buf);
            return -1;
        }
        crypto_hash_sha256_update(&h, buf, n);
        if (write_all(out, buf, n) != 0) {
            sodium_memzero(buf, sizeof buf);
            return -1;
        }
        left -= n;
    }
    sodium_memzero(buf, sizeof buf); /* tokens and keys pass through it */
    digest_hex(&h, sha256);
    return put_padding(out, size);
}

int
backup_tar_put_mem(int out, const char *name, const void *data, size_t len, time_t mtime,
                   char sha256[BACKUP_SHA256_HEX])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, data, len);
    if (sha256)
        digest_hex(&h, sha256);
    return put_header(out, name, len, 0600, mtime) == 0 && write_all(out, data, len) == 0 &&
                   put_padding(out, len) == 0
               ? 0
               : -1;
}

int
backup_tar_finish(int out)
{
    static const unsigned char zero[2 * TAR_BLOCK];
    return write_all(out, zero, sizeof zero);
}

static uint64_t
parse_size(const unsigned char *f)
{
    uint64_t v = 0;
    if (f[0] & 0x80) {
        for (int i = 1; i < H_TIME_LEN; i++)
            v = v << 8 | f[i];
        return v;
    }
    for (int i = 0; i < H_TIME_LEN && f[i] >= '0' && f[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(f[i] - '0');
    return v;
}

/* 1 when every byte of the block is zero. */
static int
zero_block(const unsigned char *b)
{
    for (size_t i = 0; i < TAR_BLOCK; i++)
        if (b[i])
            return 0;
    return 1;
}

int
backup_tar_next(struct backup_tar *t, char *err, size_t errsz)
{
    unsigned char h[TAR_BLOCK];
    unsigned sum = 0, want = 0;
    if (read_all(t->fd, h, TAR_BLOCK) != 0) {
        snprintf(err, errsz, "the file is truncated after %s (no end-of-archive marker)",
                 t->name[0] ? t->name : "its start");
        return -1;
    }
    if (zero_block(h)) {
        if (read_all(t->fd, h, TAR_BLOCK) == 0 && zero_block(h))
            return 0;
        snprintf(err, errsz, "the end-of-archive marker after %s is damaged", t->name);
        return -1;
    }
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += i >= H_CHKSUM && i < H_CHKSUM + H_NUM_LEN ? ' ' : h[i];
    for (int i = 0; i < 6 && h[H_CHKSUM + i] >= '0' && h[H_CHKSUM + i] <= '7'; i++)
        want = want * 8 + (unsigned)(h[H_CHKSUM + i] - '0');
    char name[H_NAME_LEN + 1];
    memcpy(name, h + H_NAME, H_NAME_LEN);
    name[H_NAME_LEN] = '\0';
    if (sum != want || memcmp(h + H_MAGIC, "ustar", 5) != 0) {
        snprintf(err, errsz, "the header of the member after %s is damaged",
                 t->name[0] ? t->name : "the start");
        return -1;
    }
    if (h[H_TYPE] != '0' || !backup_name_ok(name)) {
        snprintf(err, errsz, "member %.*s is not a plain file with a portable name", 100, name);
        return -1;
    }
    memcpy(t->name, name, sizeof name);
    t->size = parse_size(h + H_SIZE);
    t->left = t->size;
    return 1;
}

ssize_t
backup_tar_read(struct backup_tar *t, void *buf, size_t n)
{
    if (n > t->left)
        n = (size_t)t->left;
    if (n == 0)
        return 0;
    if (read_all(t->fd, buf, n) != 0)
        return -1;
    t->left -= n;
    if (t->left == 0) { /* skip the padding */
        unsigned char pad[TAR_BLOCK];
        size_t p = (TAR_BLOCK - t->size % TAR_BLOCK) % TAR_BLOCK;
        if (p && read_all(t->fd, pad, p) != 0)
            return -1;
    }
    return (ssize_t)n;
}
