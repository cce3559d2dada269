/*
 * audit: the signed external-action ledger of the provider calls (contract
 * §9). Each attempt is two records in the run's bucket: `request` before the
 * call is sent and `response` after it ended (its outcome, the digests of
 * what was sent and answered; never a body or a key). A request record that
 * cannot be appended stops the call: nothing is sent that the ledger does
 * not hold (fail closed).
 *
 * Records wait in their job until the loop's next turn statement
 * (kheish_work) appends those of every job, signed here with the runner's
 * key: a response record commits with its run's outcome. The runner knows
 * where its runs' buckets stand; when another writer moved one (a run
 * recovered from a runner that died), the answer says where it stands and
 * the record is signed again after it, next turn.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"

#define AUDIT_MAX_FAILURES 5 /* turns that did not append a record before its job gives up */

/* The key; with none configured and no records yet, the state root's own,
 * made now. Records but no key: refused, as upstream does. */
int
audit_setup(struct runner *r)
{
    char why[512], path[PATH_MAX];
    int made = 0, rc = 0;
    const char *root = r->cfg->state_root;
    json_t *ids = NULL; /* the keys the ledger's records are signed with */
    if (store_ledger_key_ids(r->db, &ids) != STORE_OK) {
        fprintf(stderr, "kheish-runner: cannot read the external-action ledger: %s\n",
                store_last_error(r->db));
        return 1;
    }
    int k = ledger_key_load(&r->audit_key, root, 0, &made, path, sizeof path, why, sizeof why);
    if (k == 0 && json_array_size(ids) > 0) {
        fprintf(stderr,
                "kheish-runner: external-action audit records exist but no signing key is "
                "configured: restore %s%s" LEDGER_KEY_FILE
                " or set KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY or ..._FILE\n",
                root ? root : "<state root>", "/");
        rc = 2;
    }
    if (rc == 0 && k == 0)
        k = ledger_key_load(&r->audit_key, root, 1, &made, path, sizeof path, why, sizeof why);
    if (rc == 0 && k == 0)
        snprintf(why, sizeof why,
                 "no external-action audit signing key: set "
                 "KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY or ..._FILE, or --state-root DIR "
                 "(where " LEDGER_KEY_FILE " is made)");
    if (rc == 0 && k != 1) {
        fprintf(stderr, "kheish-runner: %s\n", why);
        rc = 2;
    }
    if (rc == 0) {
        size_t rlen = root ? strlen(root) : 0, i, others = 0;
        json_t *id;
        if (rlen && !strncmp(path, root, rlen) && path[rlen] == '/')
            log_msg("warn", "audit_key_in_state_root",
                    "the external-action audit signing key %s %s inside the state root: whoever "
                    "can write the state root can forge the ledger; keep it elsewhere "
                    "(KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE)",
                    path, made ? "was made" : "is");
        json_array_foreach(ids, i, id) others +=
            strcmp(json_string_value(id), r->audit_key.id) != 0;
        if (others)
            log_msg("warn", "audit_other_keys",
                    "%zu other keys than this runner's (%s) signed ledger records: "
                    "`kheish audit verify` needs their public keys (--key-id)",
                    others, r->audit_key.id);
        log_msg("info", "audit_key", "external-action records are signed with key %s",
                r->audit_key.id);
    }
    json_decref(ids);
    return rc;
}

void
audit_queue(struct runner *r, struct job *j, enum audit_wait w, const char *outcome)
{
    struct ledger_record *a = &j->audit;
    *a = (struct ledger_record){.timestamp_ms = runner_db_now_ms(r)};
    a->f[LEDGER_SESSION_ID] = j->w.session_id;
    a->f[LEDGER_AGENT_ID] = j->w.agent_id[0] ? j->w.agent_id : NULL;
    a->f[LEDGER_RUN_ID] = j->w.run_id;
    a->f[LEDGER_PRINCIPAL_ID] = j->principal;
    a->f[LEDGER_GRANT_ID] = j->grant_id[0] ? j->grant_id : NULL;
    a->f[LEDGER_PHASE] = w == AUDIT_REQUEST ? "request" : "response";
    a->f[LEDGER_KIND] = "provider";
    a->f[LEDGER_TARGET] = j->target;
    a->f[LEDGER_REQUEST_DIGEST] = j->pc.request_digest[0] ? j->pc.request_digest : NULL;
    a->f[LEDGER_RESPONSE_DIGEST] = j->pc.response_digest[0] ? j->pc.response_digest : NULL;
    snprintf(j->outcome, sizeof j->outcome, "%s", outcome ? outcome : "");
    a->f[LEDGER_OUTCOME] = outcome ? j->outcome : NULL;
    j->audit_waits = w;
    j->audit_failures = 0;
}

/* The record is in (ok) or given up (why): its job goes on. */
static void
settle(struct runner *r, struct job *j, int ok, const char *why)
{
    enum audit_wait w = j->audit_waits;
    j->audit_waits = AUDIT_NONE;
    job_audited(r, j, w, ok, why);
}

json_t *
audit_batch(struct runner *r, size_t *n)
{
    json_t *batch = json_array();
    *n = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        struct job *j = r->jobs[i];
        char sig[LEDGER_SIG_HEX + 1];
        if (j->audit_waits == AUDIT_NONE)
            continue;
        j->audit.f[LEDGER_PREV_HASH] = j->audit_count ? j->audit_head : NULL;
        if (ledger_sign(&j->audit, &r->audit_key) != 0 ||
            ledger_checkpoint_sign(j->w.run_id, j->audit_count + 1, j->audit.record_hash,
                                   &r->audit_key, sig) != 0) {
            settle(r, j, 0, "its record could not be signed");
            continue;
        }
        json_array_append_new(batch, json_pack("{s:s, s:I, s:o, s:s}", "bucket", j->w.run_id, "seq",
                                               (json_int_t)(j->audit_count + 1), "record",
                                               ledger_record_json(&j->audit),
                                               "checkpoint_signature", sig));
        r->audit_jobs[(*n)++] = j;
    }
    return batch;
}

/* A record that was not appended this turn: after AUDIT_MAX_FAILURES
 * turns, its job gives up. */
static void
not_appended(struct runner *r, struct job *j, const char *why)
{
    if (++j->audit_failures >= AUDIT_MAX_FAILURES)
        settle(r, j, 0, why);
}

void
audit_answered(struct runner *r, size_t n, const json_t *answers)
{
    for (size_t i = 0; i < n; i++) {
        struct job *j = r->audit_jobs[i];
        const json_t *a = json_array_get(answers, i);
        if (json_is_true(json_object_get(a, "appended"))) {
            j->audit_count++;
            memcpy(j->audit_head, j->audit.record_hash, sizeof j->audit_head);
            settle(r, j, 1, NULL);
        } else if (json_is_false(json_object_get(a, "appended"))) {
            const char *head = json_string_value(json_object_get(a, "last_record_hash"));
            j->audit_count = json_integer_value(json_object_get(a, "record_count"));
            snprintf(j->audit_head, sizeof j->audit_head, "%s", head ? head : "");
            not_appended(r, j, "its run's ledger bucket kept moving under this runner");
        } else {
            not_appended(r, j, "the database's answer did not say");
        }
    }
}

void
audit_failed(struct runner *r, size_t n, const char *why)
{
    for (size_t i = 0; i < n; i++)
        not_appended(r, r->audit_jobs[i], why);
}
