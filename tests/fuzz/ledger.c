/*
 * fuzz-ledger: the two inputs of common/ledger.c that come from outside: a
 * signing key file (every encoding the contract accepts) and a record read
 * back from the database or an API answer. A key that parses signs a record
 * that then verifies, through the API's JSON and back, and fails to verify
 * once a field changes; a record parsed from any JSON is checked without a
 * crash and, signed with the fuzzer's key or not, verifies only if intact.
 */
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "ledger.h"

static void
as_key(const uint8_t *data, size_t size)
{
    struct ledger_key k;
    struct ledger_record r = {.timestamp_ms = 1}, back;
    char why[256];
    if (ledger_key_parse(data, size, &k, why, sizeof why) != 0) {
        FUZZ_CHECK(why[0] != '\0');
        return;
    }
    FUZZ_CHECK(strlen(k.id) == LEDGER_HASH_HEX);
    r.f[LEDGER_PHASE] = "request";
    r.f[LEDGER_KIND] = "provider";
    r.f[LEDGER_TARGET] = "provider:r:m";
    FUZZ_CHECK(ledger_sign(&r, &k) == 0);
    json_t *o = ledger_record_json(&r);
    FUZZ_CHECK(ledger_record_from_json(o, &back, why, sizeof why) == 0);
    FUZZ_CHECK(ledger_verify(&back, k.pk, why, sizeof why) == 0);
    back.timestamp_ms = 2;
    FUZZ_CHECK(ledger_verify(&back, k.pk, why, sizeof why) != 0);
    json_decref(o);
}

static void
as_record(const uint8_t *data, size_t size)
{
    static struct ledger_key k;
    static int have;
    char why[256];
    struct ledger_record r;
    if (!have) {
        unsigned char seed[32] = {1};
        FUZZ_CHECK(ledger_key_parse(seed, sizeof seed, &k, why, sizeof why) == 0);
        have = 1;
    }
    json_t *o = json_loadb((const char *)data, size, 0, NULL);
    if (o && ledger_record_from_json(o, &r, why, sizeof why) == 0 &&
        ledger_verify(&r, k.pk, why, sizeof why) != 0 && ledger_sign(&r, &k) == 0) {
        r.action_id = NULL; /* a record signed here verifies */
        FUZZ_CHECK(ledger_verify(&r, k.pk, why, sizeof why) == 0);
    }
    json_decref(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        return 0;
    as_key(data, size);
    as_record(data, size);
    return 0;
}
