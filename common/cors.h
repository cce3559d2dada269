/*
 * cors: the control plane's CORS policy (contract §4). By default any
 * loopback origin (http or https, host localhost, 127.0.0.1 or [::1], any
 * port) is allowed; an explicit list switches to exact matching, and every
 * listed origin must itself be a loopback origin.
 */
#ifndef KHEISH_CORS_H
#define KHEISH_CORS_H

#include <jansson.h>
#include <stddef.h>

#define CORS_MAX_ORIGINS    32
#define CORS_ORIGIN_MAX_LEN 255

struct cors {
    int exact; /* 0: the loopback policy */
    int count;
    char origins[CORS_MAX_ORIGINS][CORS_ORIGIN_MAX_LEN + 1];
};

/* list: comma-separated origins, or NULL/"" for the loopback policy. Returns
 * 0, or -1 with the reason in err. */
int cors_init(struct cors *c, const char *list, char *err, size_t errsz);

/* 1 when a request carrying this Origin header value may proceed. */
int cors_allowed(const struct cors *c, const char *origin);

/* scheme://host[:port] with a loopback host and nothing after. */
int cors_is_loopback_origin(const char *origin);

/* The response headers for an allowed origin, as "Name: value\r\n" lines.
 * Returns the length written, or -1 when buf is too small. */
int cors_headers(const char *origin, char *buf, size_t size);

/* cors_policy and cors_allowed_origin_count of the control_plane block. */
void cors_status(const struct cors *c, json_t *block);

#endif
