#include "cors.h"

#include <stdio.h>
#include <string.h>

int
cors_is_loopback_origin(const char *origin)
{
    static const char *const schemes[] = {"http://", "https://"};
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    const char *p = NULL;
    for (size_t i = 0; i < 2 && p == NULL; i++)
        if (!strncmp(origin, schemes[i], strlen(schemes[i])))
            p = origin + strlen(schemes[i]);
    if (p == NULL)
        return 0;
    size_t h = 0;
    while (h < 3 && strncmp(p, hosts[h], strlen(hosts[h])))
        h++;
    if (h == 3)
        return 0;
    p += strlen(hosts[h]);
    if (*p == '\0')
        return 1;
    if (*p++ != ':')
        return 0;
    long port = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
        port = port * 10 + (*p - '0');
    return *p == '\0' && digits >= 1 && digits <= 5 && port <= 65535;
}

int
cors_init(struct cors *c, const char *list, char *err, size_t errsz)
{
    memset(c, 0, sizeof *c);
    if (list == NULL || *list == '\0')
        return 0;
    c->exact = 1;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n == 0 || n > CORS_ORIGIN_MAX_LEN || c->count == CORS_MAX_ORIGINS) {
            snprintf(err, errsz,
                     "--http-cors-allow-origin: empty, too long, or more than %d origins",
                     CORS_MAX_ORIGINS);
            return -1;
        }
        memcpy(c->origins[c->count], p, n);
        c->origins[c->count][n] = '\0';
        if (!cors_is_loopback_origin(c->origins[c->count])) {
            snprintf(err, errsz,
                     "--http-cors-allow-origin '%s' is not a loopback origin "
                     "(http[s]://localhost|127.0.0.1|[::1][:port], no path, no wildcard)",
                     c->origins[c->count]);
            return -1;
        }
        c->count++;
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

int
cors_allowed(const struct cors *c, const char *origin)
{
    if (!c->exact)
        return cors_is_loopback_origin(origin);
    for (int i = 0; i < c->count; i++)
        if (!strcmp(c->origins[i], origin))
            return 1;
    return 0;
}

int
cors_headers(const char *origin, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     "Access-Control-Allow-Origin: %s\r\n"
                     "Access-Control-Allow-Methods: GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS\r\n"
                     "Access-Control-Allow-Headers: "
                     "authorization,content-type,x-kheish-daemon-token,x-kheish-daemon-url\r\n"
                     "Access-Control-Max-Age: 600\r\n"
                     "Vary: origin, access-control-request-method, "
                     "access-control-request-headers\r\n",
                     origin);
    return n < 0 || (size_t)n >= size ? -1 : n;
}

void
cors_status(const struct cors *c, json_t *block)
{
    json_object_set_new(block, "cors_policy", json_string(c->exact ? "exact" : "loopback"));
    json_object_set_new(block, "cors_allowed_origin_count", json_integer(c->count));
}
