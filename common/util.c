#include "util.h"

#include <errno.h>
#include <grp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t
util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    for (const char *p = (*s == '-') ? s + 1 : s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    if (*s == '-' && s[1] == '\0')
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int
util_env_i64(const char *name, int64_t min, int64_t max, int64_t def, int64_t *out)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        *out = def;
        return 0;
    }
    return util_parse_i64(v, min, max, out);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xE0) == 0xC0)
        len = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0)
        len = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int
utf8_check(const char *s, size_t len, int controls)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (!controls && (p[i] < 0x20 || p[i] == 0x7F))
            return 0;
        size_t n = p[i] ? utf8_seq(p + i, len - i) : 0;
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

int
util_utf8_printable(const char *s, size_t len)
{
    return utf8_check(s, len, 0);
}

int
util_utf8_valid(const char *s, size_t len)
{
    return utf8_check(s, len, 1);
}

size_t
util_utf8_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            break;
        i += n;
    }
    return i;
}

json_t *
util_json_str(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            copy[i++] = '?';
            continue;
        }
        memcpy(copy + i, s + i, n);
        i += n;
    }
    copy[len] = '\0';
    json_t *v = json_string(copy);
    free(copy);
    return v;
}

json_t *
util_json_clean(const char *s, char *out, size_t max)
{
    size_t n = 0;
    for (const char *p = s; *p && n < max; p++)
        if ((unsigned char)*p >= 0x20 && *p != 0x7f)
            out[n++] = *p;
    out[n] = '\0';
    return util_json_str(out);
}

void
util_b64url_encode(const void *in, size_t len, char *out, size_t outsz)
{
    sodium_bin2base64(out, outsz, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int
util_b64url_decode(const char *in, void *out, size_t outsz)
{
    size_t n;
    if (sodium_base642bin(out, outsz, in, strlen(in), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return (int)n;
}

void
util_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(out, 65, h, sizeof h);
}

int
util_in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

int
util_socket_restrict(const char *path, const char *group)
{
    gid_t gid = (gid_t)-1;
    if (group) {
        struct group *g = getgrnam(group);
        if (g == NULL) {
            errno = ENOENT;
            return -1;
        }
        gid = g->gr_gid;
    }
    return chown(path, (uid_t)-1, gid) == 0 && chmod(path, 0660) == 0 ? 0 : -1;
}

int
util_has_word(const char *list, const char *word, size_t n)
{
    for (const char *p = list; p && *p; p += strcspn(p, " "), p += *p == ' ')
        if (strcspn(p, " ") == n && !strncmp(p, word, n))
            return 1;
    return 0;
}

int
util_fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}
