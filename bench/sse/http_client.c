#include "http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

enum {
    CK_SIZE,    /* hex digits of a chunk size */
    CK_EXT,     /* a chunk extension, up to CR */
    CK_SIZE_LF, /* the LF of the size line */
    CK_DATA,    /* left payload bytes */
    CK_DATA_CR, /* the CRLF after a chunk's payload */
    CK_DATA_LF,
    CK_DONE, /* after the last chunk */
};

int
http_url_parse(const char *url, struct http_url *u)
{
    static const char scheme[] = "http://";
    char host[INET_ADDRSTRLEN], port[8];
    memset(u, 0, sizeof *u);
    if (strncmp(url, scheme, sizeof scheme - 1))
        return -1;
    const char *h = url + sizeof scheme - 1, *colon = strchr(h, ':');
    const char *slash = colon ? strchr(colon, '/') : NULL;
    int64_t p;
    if (slash == NULL || (size_t)(colon - h) >= sizeof host ||
        (size_t)(slash - colon - 1) >= sizeof port || strlen(slash) >= sizeof u->path)
        return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - h), h);
    snprintf(port, sizeof port, "%.*s", (int)(slash - colon - 1), colon + 1);
    if (inet_pton(AF_INET, host, &u->addr.sin_addr) != 1 || util_parse_i64(port, 1, 65535, &p))
        return -1;
    u->addr.sin_family = AF_INET;
    u->addr.sin_port = htons((uint16_t)p);
    snprintf(u->host, sizeof u->host, "%s:%d", host, (int)p);
    snprintf(u->path, sizeof u->path, "%s", slash);
    return 0;
}

int
http_connect(const struct http_url *u, uint32_t src, int nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int one = 1, saved;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src) {
        /* The port is picked at connect time, per destination: each source
         * address then has the whole ephemeral range for every server. */
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            goto fail;
    }
    if (connect(fd, (const struct sockaddr *)&u->addr, sizeof u->addr) == 0 ||
        (nonblock && errno == EINPROGRESS))
        return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

size_t
http_head_length(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    return end ? (size_t)(end - buf) + 4 : 0;
}

/* 1 when the header line (NUL-terminated, no CRLF) is "name:" followed by
 * a value; *value then points past the colon and leading blanks. */
static int
header_is(const char *line, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) || line[n] != ':')
        return 0;
    for (*value = line + n + 1; **value == ' ' || **value == '\t'; (*value)++)
        ;
    return 1;
}

int
http_head_parse(const char *buf, size_t len, struct http_head *h)
{
    char copy[HTTP_HEAD_MAX + 1], *save = NULL;
    const char *v;
    int64_t n;
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    if (len > HTTP_HEAD_MAX)
        return -1;
    memcpy(copy, buf, len);
    copy[len] = '\0';
    char *line = strtok_r(copy, "\r\n", &save);
    if (line == NULL || strncmp(line, "HTTP/1.", 7) || strlen(line) < 12 || line[8] != ' ' ||
        sscanf(line + 9, "%3d", &h->status) != 1 || h->status < 100)
        return -1;
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        if (header_is(line, "transfer-encoding", &v))
            h->chunked = strcasestr(v, "chunked") != NULL;
        else if (header_is(line, "content-length", &v)) {
            if (util_parse_i64(v, 0, INT64_MAX, &n) != 0)
                return -1;
            h->content_length = n;
        } else if (header_is(line, "content-type", &v))
            h->event_stream = strncasecmp(v, "text/event-stream", 17) == 0;
    }
    return 0;
}

static int
hex_value(char ch)
{
    return isdigit((unsigned char)ch) ? ch - '0' : tolower((unsigned char)ch) - 'a' + 10;
}

ssize_t
http_chunked_decode(struct http_chunked *c, char *buf, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        char ch = buf[i];
        switch (c->state) {
        case CK_SIZE:
            if (isxdigit((unsigned char)ch)) {
                if (++c->digits > HTTP_CHUNK_HEX_MAX)
                    return -1;
                c->left = c->left * 16 + (uint64_t)hex_value(ch);
            } else if (c->digits == 0) {
                return -1;
            } else {
                c->state = ch == '\r' ? CK_SIZE_LF : CK_EXT;
                c->digits = 0;
            }
            i++;
            break;
        case CK_EXT:
            if (++c->digits > HTTP_CHUNK_EXT_MAX)
                return -1;
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            i++;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return -1;
            c->digits = 0;
            c->state = c->left ? CK_DATA : CK_DONE;
            i++;
            break;
        case CK_DATA: {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            memmove(buf + out, buf + i, n);
            out += n;
            i += n;
            c->left -= n;
            if (c->left == 0)
                c->state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
        case CK_DATA_LF:
            if (ch != (c->state == CK_DATA_CR ? '\r' : '\n'))
                return -1;
            c->state = c->state == CK_DATA_CR ? CK_DATA_LF : CK_SIZE;
            i++;
            break;
        default: /* CK_DONE: trailers and whatever follows are not read */
            i = len;
        }
    }
    return (ssize_t)out;
}

int
http_chunked_done(const struct http_chunked *c)
{
    return c->state == CK_DONE;
}
