#include "uri.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *
uri_pct_decode(const char *s, size_t len, int plus_is_space)
{
    char *out = malloc(len + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' && plus_is_space) {
            *o++ = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    if (!util_utf8_printable(out, (size_t)(o - out))) {
        free(out);
        return NULL;
    }
    return out;
}

char *
uri_decode_path(const char *uri)
{
    if (uri == NULL || *uri != '/')
        return NULL;
    size_t len = strcspn(uri, "?");
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (const char *seg = uri + 1; seg <= uri + len;) {
        size_t n = strcspn(seg, "/?");
        char *dec = uri_pct_decode(seg, n, 0);
        if (dec == NULL || strchr(dec, '/')) {
            free(dec);
            free(out);
            return NULL;
        }
        size_t dn = strlen(dec); /* never longer than the segment */
        out[used++] = '/';
        memcpy(out + used, dec, dn);
        used += dn;
        free(dec);
        seg += n + 1;
    }
    out[used] = '\0';
    return out;
}

int
uri_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > URI_ID_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '_' && (i == 0 || !strchr(".:@-", c)))
            return 0;
    }
    return 1;
}
