/*
 * audit: the signed external-action ledger of the provider and tool calls
 * (contract §9). Each provider attempt and each tool call is two records in
 * the run's bucket: `request` before the call is made and `response` after
 * it ended (its outcome, the digests of what was sent and answered; never a
 * body or a key). A request record that cannot be appended stops the call:
 * nothing is done that the ledger does not hold (fail closed).
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

/* A new record at the end of the job's queue, or NULL when memory ran
 * out. */
static struct audit_entry *
push(struct runner *r, struct job *j, enum audit_wait w, const char *kind, const char *target,
     const char *grant_id)
{
    if (j->naudit == j->audit_cap) {
        size_t cap = j->audit_cap ? j->audit_cap * 2 : 4;
        struct audit_entry *grown = realloc(j->audit, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        j->audit = grown;
        j->audit_cap = cap;
    }
    if (j->naudit == 0)
        j->audit_failures = 0;
    struct audit_entry *e = &j->audit[j->naudit++];
    *e = (struct audit_entry){.wait = w,
                              .timestamp_ms = runner_db_now_ms(r),
                              .kind = kind,
                              .target = target,
                              .grant_id = grant_id};
    return e;
}

int
audit_queue(struct runner *r, struct job *j, enum audit_wait w, const char *outcome)
{
    struct audit_entry *e =
        push(r, j, w, "provider", j->target, j->grant_id[0] ? j->grant_id : NULL);
    if (e == NULL)
        return -1;
    snprintf(e->request_digest, sizeof e->request_digest, "%s", j->pc.request_digest);
    snprintf(e->response_digest, sizeof e->response_digest, "%s", j->pc.response_digest);
    snprintf(e->outcome, sizeof e->outcome, "%s", outcome ? outcome : "");
    return 0;
}

int
audit_queue_tool(struct runner *r, struct job *j, enum audit_wait w, const struct tool_run *t,
                 const char *outcome, const char *response_digest)
{
    struct audit_entry *e = push(r, j, w, "tool", t->target, t->grant);
    if (e == NULL)
        return -1;
    e->tool_call_id = t->id;
    snprintf(e->request_digest, sizeof e->request_digest, "%s", t->input_digest);
    snprintf(e->response_digest, sizeof e->response_digest, "%s",
             response_digest ? response_digest : "");
    snprintf(e->outcome, sizeof e->outcome, "%s", outcome ? outcome : "");
    return 0;
}

void
audit_drop(struct job *j, enum audit_wait w)
{
    size_t kept = 0;
    for (size_t i = 0; i < j->naudit; i++)
        if (j->audit[i].wait != w)
            j->audit[kept++] = j->audit[i];
    j->naudit = kept;
}

/* The signed record of e, the job's record at seq (after prev_hash, NULL
 * for the bucket's first); e->record_hash is set. */
static json_t *
signed_record(struct runner *r, struct job *j, struct audit_entry *e, const char *prev_hash)
{
    struct ledger_record rec = {.timestamp_ms = e->timestamp_ms};
    rec.f[LEDGER_SESSION_ID] = j->w.session_id;
    rec.f[LEDGER_AGENT_ID] = j->w.agent_id[0] ? j->w.agent_id : NULL;
    rec.f[LEDGER_RUN_ID] = j->w.run_id;
    rec.f[LEDGER_TOOL_CALL_ID] = e->tool_call_id;
    rec.f[LEDGER_PRINCIPAL_ID] = j->principal;
    rec.f[LEDGER_GRANT_ID] = e->grant_id;
    rec.f[LEDGER_PHASE] = e->wait == AUDIT_REQUEST ? "request" : "response";
    rec.f[LEDGER_KIND] = e->kind;
    rec.f[LEDGER_TARGET] = e->target;
    rec.f[LEDGER_REQUEST_DIGEST] = e->request_digest[0] ? e->request_digest : NULL;
    rec.f[LEDGER_RESPONSE_DIGEST] = e->response_digest[0] ? e->response_digest : NULL;
    rec.f[LEDGER_OUTCOME] = e->outcome[0] ? e->outcome : NULL;
    rec.f[LEDGER_PREV_HASH] = prev_hash;
    if (ledger_sign(&rec, &r->audit_key) != 0)
        return NULL;
    memcpy(e->record_hash, rec.record_hash, sizeof e->record_hash);
    return ledger_record_json(&rec);
}

/* The records of one job into batch, each after the one before; the last
 * carries the checkpoint's signature. -1 when one could not be signed. */
static int
batch_job(struct runner *r, struct job *j, json_t *batch)
{
    const char *prev = j->audit_count ? j->audit_head : NULL;
    for (size_t k = 0; k < j->naudit; k++) {
        struct audit_entry *e = &j->audit[k];
        int64_t seq = j->audit_count + (int64_t)k + 1;
        json_t *rec = signed_record(r, j, e, prev);
        char sig[LEDGER_SIG_HEX + 1];
        if (rec == NULL ||
            (k + 1 == j->naudit &&
             ledger_checkpoint_sign(j->w.run_id, seq, e->record_hash, &r->audit_key, sig) != 0)) {
            json_decref(rec);
            return -1;
        }
        json_t *item = json_pack("{s:s, s:I, s:o}", "bucket", j->w.run_id, "seq", (json_int_t)seq,
                                 "record", rec);
        if (k + 1 == j->naudit)
            json_object_set_new(item, "checkpoint_signature", json_string(sig));
        json_array_append_new(batch, item);
        prev = e->record_hash;
    }
    return 0;
}

/* Every record of the job is in (ok) or given up (why): each goes on, in
 * order. What they let go on may queue new records. */
static void
settle(struct runner *r, struct job *j, int ok, const char *why)
{
    size_t n = j->naudit;
    struct audit_entry done[n ? n : 1];
    memcpy(done, j->audit, n * sizeof *done);
    j->naudit = 0;
    if (ok && n) {
        j->audit_count += (int64_t)n;
        memcpy(j->audit_head, done[n - 1].record_hash, sizeof j->audit_head);
    }
    for (size_t i = 0; i < n; i++)
        job_audited(r, j, &done[i], ok, why);
}

json_t *
audit_batch(struct runner *r, size_t *n)
{
    json_t *batch = json_array();
    *n = 0;
    for (size_t i = 0; i < r->njobs; i++) {
        struct job *j = r->jobs[i];
        size_t mark = json_array_size(batch);
        if (j->naudit == 0)
            continue;
        if (batch_job(r, j, batch) != 0) {
            while (json_array_size(batch) > mark)
                json_array_remove(batch, mark);
            settle(r, j, 0, "its record could not be signed");
            continue;
        }
        r->audit_jobs[(*n)++] = j;
    }
    return batch;
}

/* The job's records were not appended this turn: after AUDIT_MAX_FAILURES
 * turns, the job gives up on them. */
static void
not_appended(struct runner *r, struct job *j, const char *why)
{
    if (++j->audit_failures >= AUDIT_MAX_FAILURES)
        settle(r, j, 0, why);
}

void
audit_answered(struct runner *r, size_t n, const json_t *answers)
{
    size_t at = 0; /* the answer of each job's first record */
    for (size_t i = 0; i < n; i++) {
        struct job *j = r->audit_jobs[i];
        const json_t *a = json_array_get(answers, at);
        at += j->naudit;
        if (json_is_true(json_object_get(a, "appended"))) {
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
