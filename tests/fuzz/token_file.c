/*
 * fuzz-token_file: the content of a token file as auth_parse_token_file reads
 * it (common/auth.c). An accepted file holds one token of visible ASCII,
 * surrounded by whitespace only, and its digest is the token's SHA-256; a
 * refused one says why.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "auth.h"

static int
space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char digest[32], want[32];
    char err[160] = "";
    const char *buf = (const char *)data;
    if (auth_parse_token_file(buf, size, digest, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    size_t a = 0, b = size;
    while (a < b && space(buf[a]))
        a++;
    while (b > a && space(buf[b - 1]))
        b--;
    FUZZ_CHECK(b > a && b - a <= AUTH_TOKEN_MAX_BYTES);
    for (size_t i = a; i < b; i++)
        FUZZ_CHECK(buf[i] >= 0x21 && buf[i] <= 0x7e);
    crypto_hash_sha256(want, data + a, b - a);
    FUZZ_CHECK(memcmp(digest, want, 32) == 0);
    return 0;
}
