/*
 * `kheish audit verify [--run ID | --all]`: checks the signed external-action
 * ledger (contract §9) straight from PostgreSQL, as an offline verb: the
 * database of KHEISH_DATABASE_URL (an auditor's role is enough), else the
 * embedded cluster of the state root. For every bucket it recomputes each
 * record's hash, checks action_id, the chain (each prev_hash is the record
 * before's record_hash), each signature, and the signed checkpoint (as
 * many records as it counts, the last one its last_record_hash), and names
 * the first broken record. Signatures are checked against trusted public
 * keys only: the signing key's (KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY or
 * _FILE, else the state root's audit-signing.key) and those given with
 * --key-id; a record signed with any other key is broken.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "output.h"
#include "ledger.h"
#include "stack.h"

#define AUDIT_PAGE     1000 /* buckets, and records of a bucket, read at once */
#define AUDIT_KEYS_MAX 8

struct verify {
    unsigned char pk[AUDIT_KEYS_MAX][32];
    int nkeys;
    struct store *db;
    int64_t buckets, records;
    json_t *broken; /* the first broken record: {bucket, position, action_id, reason} */
};

static void
broken(struct verify *v, const char *bucket, int64_t position, const char *action_id,
       const char *reason)
{
    v->broken = json_pack("{s:s, s:I, s:s?, s:s}", "bucket", bucket, "position",
                          (json_int_t)position, "action_id", action_id, "reason", reason);
}

/* The trusted key of a record's key_id, or NULL. */
static const unsigned char *
trusted(const struct verify *v, const char *key_id)
{
    unsigned char pk[32];
    if (ledger_public_key_parse(key_id, pk) != 0)
        return NULL;
    for (int i = 0; i < v->nkeys; i++)
        if (!memcmp(v->pk[i], pk, 32))
            return v->pk[i];
    return NULL;
}

/* Checks one bucket against its checkpoint (NULL when it has none).
 * Returns 0, 1 when it is broken (v->broken says where), or an exit code
 * of a failed read. */
static int
verify_bucket(struct verify *v, const char *bucket, const json_t *checkpoint)
{
    char prev[LEDGER_HASH_HEX + 1] = "", why[200];
    int64_t n = 0;
    for (;;) {
        char *text = NULL;
        enum store_rc rc = store_ledger_records(v->db, bucket, n, AUDIT_PAGE, &text);
        if (rc == STORE_RUN_NOT_FOUND && json_is_object(checkpoint))
            break; /* a checkpoint whose records are all gone: truncated, below */
        if (rc != STORE_OK) {
            fprintf(stderr, "kheish: bucket %s: %s\n", bucket,
                    rc == STORE_RUN_NOT_FOUND ? "no such run or bucket" : store_last_error(v->db));
            free(text);
            return rc == STORE_RUN_NOT_FOUND ? EXIT_NOT_FOUND : EXIT_UNAVAILABLE;
        }
        json_t *page = json_loads(text, 0, NULL), *o;
        free(text);
        size_t i, got = json_array_size(page);
        json_array_foreach(page, i, o)
        {
            struct ledger_record r;
            const unsigned char *pk;
            n++;
            const char *p = json_string_value(json_object_get(o, "prev_hash"));
            if (ledger_record_from_json(o, &r, why, sizeof why) != 0)
                ;
            else if (strcmp(p ? p : "", prev))
                snprintf(why, sizeof why,
                         "the chain is broken: prev_hash is not the record before's record_hash "
                         "(a record was removed, inserted or reordered)");
            else if ((pk = trusted(v, r.key_id)) == NULL)
                snprintf(why, sizeof why, "signed with a key that is not trusted (key_id %.64s)",
                         r.key_id);
            else if (ledger_verify(&r, pk, why, sizeof why) == 0) {
                memcpy(prev, r.record_hash, sizeof prev);
                continue;
            }
            broken(v, bucket, n, json_string_value(json_object_get(o, "action_id")), why);
            json_decref(page);
            return 1;
        }
        json_decref(page);
        v->records += (int64_t)got;
        if (got < AUDIT_PAGE)
            break;
    }
    v->buckets++;
    const char *reason = NULL;
    json_int_t count = json_integer_value(json_object_get(checkpoint, "record_count"));
    const char *last = json_string_value(json_object_get(checkpoint, "last_record_hash"));
    const char *alg = json_string_value(json_object_get(checkpoint, "signature_alg"));
    const char *key_id = json_string_value(json_object_get(checkpoint, "key_id"));
    const char *sig = json_string_value(json_object_get(checkpoint, "signature"));
    const unsigned char *pk = key_id ? trusted(v, key_id) : NULL;
    if (checkpoint == NULL || json_is_null(checkpoint))
        reason = "the bucket has no checkpoint";
    else if (!alg || !sig || !pk ||
             ledger_checkpoint_verify(bucket, count, last, alg, key_id, sig, pk) != 0)
        reason = "its checkpoint's signature does not verify with a trusted key";
    else if (count > n)
        reason = "truncated: the checkpoint counts more records than the bucket holds";
    else if (count < n)
        reason = "the bucket holds records after its checkpoint";
    else if (strcmp(last ? last : "", prev))
        reason = "the checkpoint's last_record_hash is not the last record's";
    if (reason == NULL)
        return 0;
    snprintf(why, sizeof why,
             "%s (checkpoint: %" JSON_INTEGER_FORMAT " records, bucket: %" PRId64 ")", reason,
             count, n);
    broken(v, bucket, count, NULL, why);
    return 1;
}

/* Every bucket, in name order, up to the first broken one. */
static int
verify_all(struct verify *v)
{
    char after[1024] = "";
    for (;;) {
        json_t *page = NULL, *b;
        size_t i;
        if (store_ledger_buckets(v->db, after, AUDIT_PAGE, &page) != STORE_OK) {
            fprintf(stderr, "kheish: cannot list the ledger's buckets: %s\n",
                    store_last_error(v->db));
            return EXIT_UNAVAILABLE;
        }
        json_array_foreach(page, i, b)
        {
            const char *name = json_string_value(json_object_get(b, "bucket"));
            int rc = verify_bucket(v, name, json_object_get(b, "checkpoint"));
            if (rc != 0) {
                json_decref(page);
                return rc;
            }
            snprintf(after, sizeof after, "%s", name);
        }
        size_t got = json_array_size(page);
        json_decref(page);
        if (got < AUDIT_PAGE)
            return 0;
    }
}

/* The bucket of one run, with its checkpoint. */
static int
verify_run(struct verify *v, const char *run)
{
    json_t *cp = NULL;
    if (store_ledger_checkpoint(v->db, run, &cp) != STORE_OK) {
        fprintf(stderr, "kheish: cannot read the ledger: %s\n", store_last_error(v->db));
        return EXIT_UNAVAILABLE;
    }
    int rc = verify_bucket(v, run, cp);
    json_decref(cp);
    return rc;
}

/* No trusted key: fine for a ledger without records, else refused. */
static int
no_key(struct verify *v)
{
    json_t *ids = NULL;
    if (store_ledger_key_ids(v->db, &ids) != STORE_OK) {
        fprintf(stderr, "kheish: cannot read the ledger: %s\n", store_last_error(v->db));
        return EXIT_UNAVAILABLE;
    }
    size_t signers = json_array_size(ids);
    json_decref(ids);
    if (signers == 0)
        return 0;
    fprintf(stderr, "kheish: no key to verify against: give --key-id HEX (the key_id of "
                    "the signing key), or set KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE, "
                    "or --state-root DIR holding " LEDGER_KEY_FILE "\n");
    return EXIT_BAD_REQUEST;
}

/* The trusted public keys: the signing key's, and --key-id; none is needed
 * while the ledger holds no record. */
static int
trusted_keys(struct verify *v, const char *state_root, const char *key_id)
{
    struct ledger_key k;
    char why[512];
    int made;
    int rc = ledger_key_load(&k, state_root, 0, &made, NULL, 0, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "kheish: %s\n", why);
        return EXIT_BAD_REQUEST;
    }
    if (rc == 1)
        memcpy(v->pk[v->nkeys++], k.pk, 32);
    ledger_key_wipe(&k);
    if (key_id && ledger_public_key_parse(key_id, v->pk[v->nkeys++]) != 0) {
        fprintf(stderr, "kheish: --key-id must be a public key as 64 hex characters\n");
        return EXIT_BAD_REQUEST;
    }
    return v->nkeys > 0 ? 0 : no_key(v);
}

int
cmd_audit_verify(const struct cli *c, int argc, char **argv)
{
    const char *run = NULL, *root = NULL, *key_id = NULL;
    int all = 0;
    struct args_opt opts[] = {
        {.name = "run", .str = &run},
        {.name = "all", .flag = &all},
        {.name = "key-id", .str = &key_id},
        {.name = "state-root", .str = &root},
        {0},
    };
    if (args_parse(argc, argv, opts, NULL, 0, 0) != 0)
        return ARGS_USAGE;
    if (!!run == all) {
        fprintf(stderr, "kheish: audit verify takes --run ID or --all\n");
        return ARGS_USAGE;
    }
    struct verify v = {0};
    struct stack st = {0};
    char url[STACK_URL_MAX];
    int started = 0;
    if (stack_db_open(root, 0, &st, url, sizeof url, &started) != 0)
        return EXIT_UNREACHABLE;
    const char *key_root = root ? root : st.root[0] ? st.root : getenv("KHEISH_STATE_ROOT");
    int rc =
        (v.db = store_open(url, NULL)) == NULL ? EXIT_GENERIC : trusted_keys(&v, key_root, key_id);
    if (rc == 0)
        rc = run ? verify_run(&v, run) : verify_all(&v);
    store_close(v.db);
    stack_db_close(&st, started);
    if (rc > 1)
        return rc;
    json_t *doc =
        json_pack("{s:b, s:I, s:I, s:o}", "ok", rc == 0, "buckets", (json_int_t)v.buckets,
                  "records", (json_int_t)v.records, "broken", v.broken ? v.broken : json_null());
    if (c->json)
        output_json(stdout, doc);
    else if (rc == 0)
        printf("ok: %" PRId64 " buckets, %" PRId64 " records: hashes, chains, signatures and "
               "checkpoints verify\n",
               v.buckets, v.records);
    else {
        const char *action_id = json_string_value(json_object_get(v.broken, "action_id"));
        printf("BROKEN: bucket %s, record %" JSON_INTEGER_FORMAT "%s%s%s: %s\n",
               json_string_value(json_object_get(v.broken, "bucket")),
               json_integer_value(json_object_get(v.broken, "position")),
               action_id ? " (action_id " : "", action_id ? action_id : "", action_id ? ")" : "",
               json_string_value(json_object_get(v.broken, "reason")));
    }
    json_decref(doc);
    return rc == 0 ? EXIT_OK : EXIT_GENERIC;
}
