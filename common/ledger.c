#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define ENV_KEY      "KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY"
#define ENV_KEY_FILE "KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE"

const char *const ledger_field_names[LEDGER_NFIELDS] = {
    "session_id",          "agent_id",        "run_id",  "tool_call_id", "principal_id",
    "parent_principal_id", "grant_id",        "phase",   "kind",         "target",
    "request_digest",      "response_digest", "outcome", "prev_hash",
};

/* A growing string; a failed allocation poisons it (s == NULL). */
struct buf {
    char *s;
    size_t len, cap;
    int oom;
};

static void
put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (grown == NULL) {
            b->oom = 1;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string as serde_json writes it. */
static void
put_str(struct buf *b, const char *s)
{
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *e = *p == '"'    ? "\\\""
                        : *p == '\\' ? "\\\\"
                        : *p == '\b' ? "\\b"
                        : *p == '\f' ? "\\f"
                        : *p == '\n' ? "\\n"
                        : *p == '\r' ? "\\r"
                        : *p == '\t' ? "\\t"
                                     : NULL;
        if (e == NULL && *p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            e = esc;
        }
        if (e)
            puts_(b, e);
        else
            put(b, (const char *)p, 1);
    }
    put(b, "\"", 1);
}

static void
put_member(struct buf *b, const char *name, const char *value, int first)
{
    if (!first)
        put(b, ",", 1);
    put_str(b, name);
    put(b, ":", 1);
    if (value)
        put_str(b, value);
    else
        puts_(b, "null");
}

/* The unsigned record's members after its opening brace, and the brace
 * that closes it. */
static void
put_unsigned(struct buf *b, const struct ledger_record *r, int first)
{
    char ts[24];
    snprintf(ts, sizeof ts, "%" PRId64, r->timestamp_ms);
    if (!first)
        put(b, ",", 1);
    puts_(b, "\"timestamp_ms\":");
    puts_(b, ts);
    for (int i = 0; i < LEDGER_NFIELDS; i++)
        if (i != LEDGER_GRANT_ID || r->f[i])
            put_member(b, ledger_field_names[i], r->f[i], 0);
    put(b, "}", 1);
}

static int
fields_ok(const struct ledger_record *r)
{
    if (r->timestamp_ms < 0 || !r->f[LEDGER_PHASE] || !r->f[LEDGER_KIND] || !r->f[LEDGER_TARGET])
        return 0;
    for (int i = 0; i < LEDGER_NFIELDS; i++)
        if (r->f[i] && !util_utf8_valid(r->f[i], strlen(r->f[i])))
            return 0;
    return 1;
}

char *
ledger_unsigned_json(const struct ledger_record *r)
{
    struct buf b = {0};
    put(&b, "{", 1);
    put_unsigned(&b, r, 1);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* The signature payload of a record. */
static char *
signable(const struct ledger_record *r, const char *action_id)
{
    struct buf b = {0};
    put(&b, "{", 1);
    put_member(&b, "action_id", action_id, 1);
    put_member(&b, "signature_alg", r->signature_alg, 0);
    put_member(&b, "key_id", r->key_id, 0);
    put_member(&b, "record_hash", r->record_hash, 0);
    put_unsigned(&b, r, 0);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static char *
checkpoint_payload(const char *bucket, int64_t count, const char *last_hash, const char *alg,
                   const char *key_id)
{
    struct buf b = {0};
    char n[24];
    snprintf(n, sizeof n, "%" PRId64, count);
    put(&b, "{", 1);
    put_member(&b, "bucket", bucket, 1);
    puts_(&b, ",\"record_count\":");
    puts_(&b, n);
    if (last_hash)
        put_member(&b, "last_record_hash", last_hash, 0);
    put_member(&b, "signature_alg", alg, 0);
    put_member(&b, "key_id", key_id, 0);
    put(&b, "}", 1);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static int
sign_hex(const char *msg, const struct ledger_key *k, char sig[LEDGER_SIG_HEX + 1])
{
    unsigned char s[crypto_sign_BYTES];
    if (msg == NULL)
        return -1;
    crypto_sign_detached(s, NULL, (const unsigned char *)msg, strlen(msg), k->sk);
    sodium_bin2hex(sig, LEDGER_SIG_HEX + 1, s, sizeof s);
    return 0;
}

static int
verify_hex(const char *msg, const char *sig_hex, const unsigned char pk[32])
{
    unsigned char s[crypto_sign_BYTES];
    size_t n = 0;
    const char *end;
    if (msg == NULL || sig_hex == NULL || strlen(sig_hex) != LEDGER_SIG_HEX ||
        sodium_hex2bin(s, sizeof s, sig_hex, LEDGER_SIG_HEX, NULL, &n, &end) != 0 || n != sizeof s)
        return -1;
    return crypto_sign_verify_detached(s, (const unsigned char *)msg, strlen(msg), pk);
}

static void
hash_hex(const struct ledger_record *r, char out[LEDGER_HASH_HEX + 1])
{
    char *u = ledger_unsigned_json(r);
    if (u == NULL) {
        out[0] = '\0';
        return;
    }
    util_sha256_hex(u, strlen(u), out);
    free(u);
}

int
ledger_sign(struct ledger_record *r, const struct ledger_key *k)
{
    if (!fields_ok(r))
        return -1;
    hash_hex(r, r->record_hash);
    if (r->record_hash[0] == '\0')
        return -1;
    snprintf(r->signature_alg, sizeof r->signature_alg, "%s", LEDGER_ALG);
    memcpy(r->key_id, k->id, sizeof r->key_id);
    char *msg = signable(r, r->record_hash);
    int rc = sign_hex(msg, k, r->signature);
    free(msg);
    return rc;
}

int
ledger_verify(const struct ledger_record *r, const unsigned char pk[32], char *why, size_t whysz)
{
    char h[LEDGER_HASH_HEX + 1], id[LEDGER_HASH_HEX + 1];
    const char *action_id = r->action_id ? r->action_id : r->record_hash;
    sodium_bin2hex(id, sizeof id, pk, 32);
    const char *bad = NULL;
    if (!fields_ok(r))
        bad = "a required field is missing, or a field is not UTF-8";
    else if (hash_hex(r, h), strcmp(h, r->record_hash))
        bad = "record_hash does not match the record's fields";
    else if (strcmp(action_id, r->record_hash))
        bad = "action_id differs from record_hash";
    else if (strcmp(r->signature_alg, LEDGER_ALG))
        bad = "signature_alg is not ed25519";
    else if (strcmp(r->key_id, id))
        bad = "signed with another key (key_id)";
    else {
        char *msg = signable(r, action_id);
        if (verify_hex(msg, r->signature, pk) != 0)
            bad = "the signature does not verify";
        free(msg);
    }
    if (bad)
        snprintf(why, whysz, "%s", bad);
    return bad ? -1 : 0;
}

int
ledger_checkpoint_sign(const char *bucket, int64_t count, const char *last_hash,
                       const struct ledger_key *k, char sig[LEDGER_SIG_HEX + 1])
{
    char *msg = checkpoint_payload(bucket, count, last_hash, LEDGER_ALG, k->id);
    int rc = sign_hex(msg, k, sig);
    free(msg);
    return rc;
}

int
ledger_checkpoint_verify(const char *bucket, int64_t count, const char *last_hash, const char *alg,
                         const char *key_id, const char *sig, const unsigned char pk[32])
{
    char id[LEDGER_HASH_HEX + 1];
    sodium_bin2hex(id, sizeof id, pk, 32);
    if (strcmp(alg, LEDGER_ALG) || strcmp(key_id, id))
        return -1;
    char *msg = checkpoint_payload(bucket, count, last_hash, alg, key_id);
    int rc = verify_hex(msg, sig, pk);
    free(msg);
    return rc;
}

json_t *
ledger_record_json(const struct ledger_record *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "action_id", json_string(r->action_id ? r->action_id : r->record_hash));
    json_object_set_new(o, "timestamp_ms", json_integer(r->timestamp_ms));
    for (int i = 0; i < LEDGER_NFIELDS; i++)
        if (r->f[i])
            json_object_set_new(o, ledger_field_names[i], json_string(r->f[i]));
    json_object_set_new(o, "record_hash", json_string(r->record_hash));
    json_object_set_new(o, "signature_alg", json_string(r->signature_alg));
    json_object_set_new(o, "key_id", json_string(r->key_id));
    json_object_set_new(o, "signature", json_string(r->signature));
    return o;
}

/* Copies a string member into a fixed buffer; -1 when absent or too long. */
static int
copy_member(const json_t *o, const char *name, char *dst, size_t dstsz)
{
    const char *v = json_string_value(json_object_get(o, name));
    if (v == NULL || strlen(v) >= dstsz)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int
ledger_record_from_json(const json_t *o, struct ledger_record *r, char *why, size_t whysz)
{
    memset(r, 0, sizeof *r);
    json_t *ts = json_object_get(o, "timestamp_ms");
    const char *bad = !json_is_object(o)           ? "not a JSON object"
                      : !json_is_integer(ts)       ? "timestamp_ms is not an integer"
                      : json_integer_value(ts) < 0 ? "timestamp_ms is negative"
                                                   : NULL;
    for (int i = 0; bad == NULL && i < LEDGER_NFIELDS; i++) {
        json_t *v = json_object_get(o, ledger_field_names[i]);
        if (v && !json_is_null(v) && !json_is_string(v))
            bad = "a field is not a string";
        r->f[i] = json_string_value(v);
    }
    r->action_id = json_string_value(json_object_get(o, "action_id"));
    if (bad == NULL && r->action_id == NULL)
        bad = "action_id is missing";
    if (bad == NULL &&
        (copy_member(o, "record_hash", r->record_hash, sizeof r->record_hash) ||
         copy_member(o, "signature_alg", r->signature_alg, sizeof r->signature_alg) ||
         copy_member(o, "key_id", r->key_id, sizeof r->key_id) ||
         copy_member(o, "signature", r->signature, sizeof r->signature)))
        bad = "record_hash, signature_alg, key_id or signature is missing or too long";
    if (bad) {
        snprintf(why, whysz, "%s", bad);
        return -1;
    }
    r->timestamp_ms = json_integer_value(ts);
    return 0;
}

/* ---- keys ---- */

static int
key_from_seed(const unsigned char seed[32], struct ledger_key *k)
{
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    sodium_bin2hex(k->id, sizeof k->id, k->pk, sizeof k->pk);
    return 0;
}

/* text as exactly 32 bytes in one encoding: 1, 0 when it is not that
 * encoding, -1 when it is but not of 32 bytes. */
static int
decode_seed(const char *text, size_t len, int variant, unsigned char seed[32])
{
    unsigned char out[96];
    size_t n = 0;
    const char *end = NULL;
    int rc = variant < 0 ? sodium_hex2bin(out, sizeof out, text, len, NULL, &n, &end)
                         : sodium_base642bin(out, sizeof out, text, len, NULL, &n, &end, variant);
    if (rc != 0 || end != text + len) {
        sodium_memzero(out, sizeof out);
        return 0;
    }
    if (n == 32)
        memcpy(seed, out, 32);
    sodium_memzero(out, sizeof out);
    return n == 32 ? 1 : -1;
}

/* The key document: {"algorithm": "ed25519", "secret_key_hex": ...}. 1, 0
 * when buf is not such a document, -1 with why. */
static int
key_document(const unsigned char *buf, size_t len, unsigned char seed[32], char *why, size_t whysz)
{
    json_t *doc = json_loadb((const char *)buf, len, 0, NULL);
    const char *alg = json_string_value(json_object_get(doc, "algorithm"));
    const char *hex = json_string_value(json_object_get(doc, "secret_key_hex"));
    int rc = 0;
    if (alg && hex) {
        rc = strcmp(alg, LEDGER_ALG) ? -1 : decode_seed(hex, strlen(hex), -1, seed) == 1 ? 1 : -1;
        if (rc < 0)
            snprintf(why, whysz,
                     strcmp(alg, LEDGER_ALG)
                         ? "the key document's algorithm is not ed25519"
                         : "the key document's secret_key_hex is not 64 hex characters");
    }
    json_decref(doc);
    return rc;
}

int
ledger_key_parse(const unsigned char *buf, size_t len, struct ledger_key *k, char *why,
                 size_t whysz)
{
    unsigned char seed[32];
    int rc = key_document(buf, len, seed, why, whysz);
    if (rc < 0)
        return -1;
    const char *t = (const char *)buf;
    size_t n = len;
    while (n > 0 && strchr(" \t\r\n", t[0]))
        t++, n--;
    while (n > 0 && strchr(" \t\r\n", t[n - 1]))
        n--;
    static const int variants[] = {-1, sodium_base64_VARIANT_URLSAFE_NO_PADDING,
                                   sodium_base64_VARIANT_ORIGINAL};
    for (size_t i = 0; rc == 0 && n > 0 && i < sizeof variants / sizeof variants[0]; i++)
        rc = decode_seed(t, n, variants[i], seed);
    if (rc == 0 && len == 32) {
        memcpy(seed, buf, 32);
        rc = 1;
    }
    if (rc != 1) {
        snprintf(why, whysz,
                 "the signing key must be a JSON key document, or a 32-byte Ed25519 seed as "
                 "hex, base64url, base64 or raw bytes");
        return -1;
    }
    key_from_seed(seed, k);
    sodium_memzero(seed, sizeof seed);
    return 0;
}

static int
key_file_read(const char *path, struct ledger_key *k, char *why, size_t whysz)
{
    unsigned char buf[LEDGER_KEY_FILE_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    int rc = -1;
    if (n < 0)
        snprintf(why, whysz, "cannot read the audit signing key %s: %s", path, strerror(saved));
    else if ((size_t)n > LEDGER_KEY_FILE_MAX)
        snprintf(why, whysz, "the audit signing key %s is larger than %d bytes", path,
                 LEDGER_KEY_FILE_MAX);
    else if ((rc = ledger_key_parse(buf, (size_t)n, k, why, whysz)) != 0) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", why);
        snprintf(why, whysz, "%s: %s", path, inner);
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* Makes path once, as upstream does: the JSON document, 0600, written to a
 * temporary file that is linked into place (so a reader never sees half a
 * key, and of two makers the second finds the first's). 1 made, 0 it
 * existed, -1 with why. */
static int
key_file_make(const char *path, char *why, size_t whysz)
{
    unsigned char seed[32];
    char hex[65], doc[160], tmp[4200];
    randombytes_buf(seed, sizeof seed);
    sodium_bin2hex(hex, sizeof hex, seed, sizeof seed);
    sodium_memzero(seed, sizeof seed);
    int len =
        snprintf(doc, sizeof doc,
                 "{\n  \"algorithm\": \"" LEDGER_ALG "\",\n  \"secret_key_hex\": \"%s\"\n}", hex);
    sodium_memzero(hex, sizeof hex);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, doc, (size_t)len) == len && fsync(fd) == 0;
    int saved = errno;
    sodium_memzero(doc, sizeof doc);
    if (fd >= 0)
        close(fd);
    int rc = ok ? link(tmp, path) : -1;
    if (ok && rc != 0)
        saved = errno;
    unlink(tmp);
    if (rc == 0)
        return 1;
    if (ok && saved == EEXIST)
        return 0;
    snprintf(why, whysz, "cannot make the audit signing key %s: %s", path, strerror(saved));
    return -1;
}

int
ledger_key_load(struct ledger_key *k, const char *state_root, int create, int *made, char *path,
                size_t pathsz, char *why, size_t whysz)
{
    const char *value = getenv(ENV_KEY), *file = getenv(ENV_KEY_FILE);
    char own[4096];
    *made = 0;
    if (path)
        path[0] = '\0';
    if (value && *value && file && *file) {
        snprintf(why, whysz, ENV_KEY " and " ENV_KEY_FILE " cannot both be set");
        return -1;
    }
    if (value && *value) {
        if (ledger_key_parse((const unsigned char *)value, strlen(value), k, why, whysz) != 0) {
            snprintf(why, whysz, ENV_KEY " is not a valid Ed25519 signing key");
            return -1;
        }
        return 1;
    }
    if (!(file && *file) && (state_root == NULL || *state_root == '\0'))
        return 0;
    if (!(file && *file)) {
        snprintf(own, sizeof own, "%s/" LEDGER_KEY_FILE, state_root);
        file = own;
        if (access(file, F_OK) != 0) {
            if (!create)
                return 0;
            int r = key_file_make(file, why, whysz);
            if (r < 0)
                return -1;
            *made = r;
        }
    }
    if (path)
        snprintf(path, pathsz, "%s", file);
    return key_file_read(file, k, why, whysz) == 0 ? 1 : -1;
}

int
ledger_public_key_parse(const char *hex, unsigned char pk[32])
{
    return hex && strlen(hex) == LEDGER_HASH_HEX && decode_seed(hex, LEDGER_HASH_HEX, -1, pk) == 1
               ? 0
               : -1;
}

void
ledger_key_wipe(struct ledger_key *k)
{
    sodium_memzero(k, sizeof *k);
}
