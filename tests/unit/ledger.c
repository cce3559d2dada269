/*
 * test-ledger: the signed external-action records (common/ledger.c) against
 * a vector made independently (Node's crypto over the contract's payloads,
 * tests/ledger/verify.mjs): the RFC 8032 test key, one record whose digest
 * holds characters JSON must escape. Hash, signature and checkpoint
 * signature must match byte for byte; any change of a field breaks them;
 * keys parse in every encoding the contract accepts.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ledger.h"

#define SEED_HEX "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define PK_HEX   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define HASH     "ab20564746b9dfeff6472dc85acd4cc8272fa89845b936525195aa2577f8940e"
#define SIG                                                                                        \
    "7ccc1620761169741268c5154dda662a0b968d8966a51084054758d90d5b54f8"                             \
    "2eb6fee6291b1afda7941407ecf185e3ad3783d3a757de494aa98ecf0a46cf0e"
#define CHECKPOINT_SIG                                                                             \
    "1835e13a424f9607abc8d09953b261f75353516d58e53236fb2f8249c7b66a15"                             \
    "e27abf5cf8b1f40d94d2f7b27f83beab84d7407cee5442de482908bb1a73600e"

static void
vector(void)
{
    struct ledger_key k;
    char why[256], sig[LEDGER_SIG_HEX + 1];
    CHECK(ledger_key_parse((const unsigned char *)SEED_HEX, strlen(SEED_HEX), &k, why,
                           sizeof why) == 0);
    CHECK_STR(k.id, PK_HEX);
    struct ledger_record r = {.timestamp_ms = 1700000000000};
    r.f[LEDGER_SESSION_ID] = "s1";
    r.f[LEDGER_RUN_ID] = "run_1";
    r.f[LEDGER_PHASE] = "request";
    r.f[LEDGER_KIND] = "provider";
    r.f[LEDGER_TARGET] = "provider:openai:gpt-4o";
    r.f[LEDGER_REQUEST_DIGEST] = "sha256:ab\"c\\\n\001\xc3\xa9";
    char *u = ledger_unsigned_json(&r);
    CHECK_STR(u, "{\"timestamp_ms\":1700000000000,\"session_id\":\"s1\",\"agent_id\":null,"
                 "\"run_id\":\"run_1\",\"tool_call_id\":null,\"principal_id\":null,"
                 "\"parent_principal_id\":null,\"phase\":\"request\",\"kind\":\"provider\","
                 "\"target\":\"provider:openai:gpt-4o\","
                 "\"request_digest\":\"sha256:ab\\\"c\\\\\\n\\u0001\xc3\xa9\","
                 "\"response_digest\":null,\"outcome\":null,\"prev_hash\":null}");
    free(u);
    CHECK(ledger_sign(&r, &k) == 0);
    CHECK_STR(r.record_hash, HASH);
    CHECK_STR(r.signature, SIG);
    CHECK_STR(r.key_id, PK_HEX);
    CHECK(ledger_verify(&r, k.pk, why, sizeof why) == 0);
    CHECK(ledger_checkpoint_sign("run_1", 1, HASH, &k, sig) == 0);
    CHECK_STR(sig, CHECKPOINT_SIG);
    CHECK(ledger_checkpoint_verify("run_1", 1, HASH, "ed25519", PK_HEX, sig, k.pk) == 0);
    CHECK(ledger_checkpoint_verify("run_1", 2, HASH, "ed25519", PK_HEX, sig, k.pk) != 0);
    CHECK(ledger_checkpoint_verify("run_2", 1, HASH, "ed25519", PK_HEX, sig, k.pk) != 0);

    /* Through the API's shape and back: still verifies. */
    json_t *o = ledger_record_json(&r);
    CHECK(json_object_get(o, "agent_id") == NULL && json_object_get(o, "grant_id") == NULL);
    struct ledger_record back;
    CHECK(ledger_record_from_json(o, &back, why, sizeof why) == 0);
    CHECK(ledger_verify(&back, k.pk, why, sizeof why) == 0);

    /* Any change is seen, and named. */
    back.f[LEDGER_TARGET] = "provider:openai:gpt-5";
    CHECK(ledger_verify(&back, k.pk, why, sizeof why) != 0);
    CHECK(strstr(why, "record_hash") != NULL);
    back.f[LEDGER_TARGET] = r.f[LEDGER_TARGET];
    back.signature[0] = back.signature[0] == '0' ? '1' : '0';
    CHECK(ledger_verify(&back, k.pk, why, sizeof why) != 0);
    CHECK(strstr(why, "signature") != NULL);
    json_decref(o);

    /* A grant id is part of the hash only when present. */
    r.f[LEDGER_GRANT_ID] = "lease_1";
    CHECK(ledger_sign(&r, &k) == 0);
    CHECK(strcmp(r.record_hash, HASH) != 0);
    u = ledger_unsigned_json(&r);
    CHECK(strstr(u, "\"parent_principal_id\":null,\"grant_id\":\"lease_1\",\"phase\"") != NULL);
    free(u);

    /* Another key's signature: refused as such. */
    struct ledger_key other;
    unsigned char seed[32] = {7};
    CHECK(ledger_key_parse(seed, 32, &other, why, sizeof why) == 0);
    CHECK(ledger_verify(&r, other.pk, why, sizeof why) != 0);
    CHECK(strstr(why, "another key") != NULL);
    r.f[LEDGER_PHASE] = NULL;
    CHECK(ledger_sign(&r, &k) != 0);
    r.f[LEDGER_PHASE] = "request";
    r.f[LEDGER_OUTCOME] = "\xff";
    CHECK(ledger_sign(&r, &k) != 0);
}

static void
keys(void)
{
    struct ledger_key a, b;
    char why[256];
    unsigned char seed[32];
    sodium_hex2bin(seed, sizeof seed, SEED_HEX, 64, NULL, NULL, NULL);
    CHECK(ledger_key_parse(seed, 32, &a, why, sizeof why) == 0);
    CHECK_STR(a.id, PK_HEX);
    char b64[64], url[64];
    sodium_bin2base64(b64, sizeof b64, seed, 32, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(url, sizeof url, seed, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    const char *const good[] = {
        SEED_HEX "\n",
        "  9D61B19DEFFD5A60BA844AF492EC2CC44449C5697B326919703BAC031CAE7F60 ",
        b64,
        url,
        "{\"algorithm\":\"ed25519\",\"secret_key_hex\":\"" SEED_HEX "\"}",
        "{\n  \"algorithm\": \"ed25519\",\n  \"secret_key_hex\": \"" SEED_HEX "\"\n}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        memset(&b, 0, sizeof b);
        CHECK(ledger_key_parse((const unsigned char *)good[i], strlen(good[i]), &b, why,
                               sizeof why) == 0);
        CHECK_STR(b.id, PK_HEX);
    }
    const char *const bad[] = {
        "",
        "9d61",
        SEED_HEX "00",
        "{\"algorithm\":\"hmac-sha256\",\"secret_key_hex\":\"" SEED_HEX "\"}",
        "{\"algorithm\":\"ed25519\",\"secret_key_hex\":\"zz\"}",
        "not a key at all, not a key at all",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(ledger_key_parse((const unsigned char *)bad[i], strlen(bad[i]), &b, why,
                               sizeof why) == -1);

    /* Made once in the state root, 0600, as the JSON document; the same key
     * on the next load. */
    char dir[] = "/tmp/test-ledger.XXXXXX", path[4096], file[4096];
    int made;
    CHECK(mkdtemp(dir) != NULL);
    unsetenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY");
    unsetenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE");
    CHECK(ledger_key_load(&a, dir, 0, &made, path, sizeof path, why, sizeof why) == 0);
    CHECK(ledger_key_load(&a, dir, 1, &made, path, sizeof path, why, sizeof why) == 1 && made);
    CHECK(ledger_key_load(&b, dir, 1, &made, path, sizeof path, why, sizeof why) == 1 && !made);
    CHECK_STR(a.id, b.id);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    snprintf(file, sizeof file, "%s", path);
    setenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY", SEED_HEX, 1);
    CHECK(ledger_key_load(&b, dir, 1, &made, path, sizeof path, why, sizeof why) == 1);
    CHECK_STR(b.id, PK_HEX);
    setenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE", file, 1);
    CHECK(ledger_key_load(&b, dir, 1, &made, path, sizeof path, why, sizeof why) == -1);
    CHECK(strstr(why, "cannot both be set") != NULL);
    unsetenv("KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY");
    CHECK(ledger_key_load(&b, NULL, 0, &made, NULL, 0, why, sizeof why) == 1);
    CHECK_STR(a.id, b.id);
    unlink(file);
    rmdir(dir);
}

int
main(void)
{
    if (sodium_init() < 0)
        return 1;
    vector();
    keys();
    return check_report("test-ledger");
}
