/*
 * fuzz-json_stored: text as the database might hand it back (jsonb prints
 * numbers as exact decimals of any length). json_exact_load reads whatever
 * json_loadb reads, the same way, and more: integers beyond int64 as
 * doubles, never failing on a number. Whatever it reads dumps to text that
 * reads back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json_exact.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_error_t err;
    json_t *plain = json_loadb(text, size, JSON_DECODE_ANY, NULL);
    json_t *v = json_exact_load(text, size, JSON_DECODE_ANY, &err);
    if (plain != NULL)
        FUZZ_CHECK(v != NULL && json_equal(plain, v));
    if (v == NULL)
        FUZZ_CHECK(json_error_code(&err) != json_error_numeric_overflow ||
                   strstr(err.text, "real") != NULL); /* beyond a double's range */
    char *dumped = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    if (v != NULL && dumped != NULL) {
        json_t *again = json_loads(dumped, JSON_DECODE_ANY, NULL);
        FUZZ_CHECK(again != NULL);
        json_decref(again);
    }
    free(dumped);
    json_decref(v);
    json_decref(plain);
    return 0;
}
