/*
 * One claimed run, from its route to its outcome: pick the route and model,
 * get the credential (through a broker lease for an auth_ref slot), call the
 * provider (a transfer the loop drives) and retry what may be retried. The
 * loop (loop.c) streams the reply as trace events and commits outcomes; a
 * run someone else ended (a cancel, an interrupt, a lost lease) is only let
 * go of.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

static int
on_delta(void *arg, const char *text, size_t len)
{
    struct job *j = arg;
    if (j->len + len + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (cap < j->len + len + 1)
            cap *= 2;
        char *grown = realloc(j->text, cap);
        if (grown == NULL)
            return -1;
        j->text = grown;
        j->cap = cap;
    }
    memcpy(j->text + j->len, text, len);
    j->len += len;
    j->text[j->len] = '\0';
    return 0;
}

/* The API key inside an opened slot's state: {api_key} or {value}. */
static char *
key_from_state(const char *plain, size_t len)
{
    json_t *st = json_loadb(plain, len, 0, NULL);
    const char *k = json_string_value(json_object_get(st, "api_key"));
    const char *v = json_string_value(json_object_get(st, "value"));
    char *out = strdup(k ? k : v ? v : "");
    json_decref(st);
    return out;
}

/* The credential of an auth_ref route: a broker lease for the session (the
 * job's principal) on the route's slot, resolved, and the slot opened with
 * the master key. The lease is the grant the ledger records. */
static char *
slot_key(struct runner *r, const struct route *rt, struct job *j, char *why, size_t whysz)
{
    char *slot_id = NULL, *key = NULL;
    struct store_lease lease;
    struct store_sealed_slot slot = {0};
    enum store_rc rc = store_lease_issue(r->db, j->principal, rt->id, rt->auth_ref,
                                         RUNNER_CREDENTIAL_TTL_MS, &lease);
    if (rc == STORE_OK) {
        snprintf(j->grant_id, sizeof j->grant_id, "%s", lease.lease_id);
        rc = store_lease_resolve(r->db, lease.token, rt->id, &slot_id);
    }
    sodium_memzero(lease.token, sizeof lease.token);
    if (rc == STORE_OK)
        rc = store_slot_sealed(r->db, slot_id, &slot);
    size_t len = 0;
    char *plain =
        rc == STORE_OK && r->has_key && !strcmp(slot.key_id, r->key.id)
            ? sealed_open(&r->key, slot_id, slot.version, slot.nonce, slot.ct, slot.ct_len, &len)
            : NULL;
    if (plain)
        key = key_from_state(plain, len);
    else
        snprintf(why, whysz, "route %s: %s", rt->id,
                 rc == STORE_SUBJECT_NOT_FOUND  ? "the session's credential subject is revoked"
                 : rc == STORE_SECRET_NOT_FOUND ? "its auth_ref slot is missing"
                 : rc != STORE_OK               ? store_strerror(rc)
                 : !r->has_key                  ? "the runner has no master key"
                                                : "its slot does not open with the runner's key");
    sealed_free(plain, len);
    store_sealed_slot_free(&slot);
    free(slot_id);
    return key;
}

/* The route's API key (malloc'd; wipe it), or NULL with why. */
static char *
route_key(struct runner *r, const struct route *rt, struct job *j, char *why, size_t whysz)
{
    if (rt->api_key)
        return strdup(rt->api_key);
    if (rt->auth_ref)
        return slot_key(r, rt, j, why, whysz);
    const char *v = rt->api_key_env ? getenv(rt->api_key_env) : NULL;
    if (v && *v)
        return strdup(v);
    snprintf(why, whysz,
             rt->api_key_env ? "route %s: %s is not set in the runner's environment"
                             : "route %s has no credential (auth_ref, api_key or api_key_env)%s",
             rt->id, rt->api_key_env ? rt->api_key_env : "");
    return NULL;
}

/* The conversation: the session's earlier turns, then this run's input. */
static json_t *
conversation(const struct store_work *w)
{
    json_t *m = json_deep_copy(w->history);
    const char *content = json_string_value(json_object_get(w->payload, "content"));
    json_array_append_new(m,
                          json_pack("{s:s, s:s}", "role", "user", "text", content ? content : ""));
    return m;
}

/* Starts an attempt: its request is prepared and recorded in the ledger;
 * job_audited sends it once the record is appended (the next turn). */
static void
attempt(struct runner *r, struct job *j)
{
    j->attempt++;
    j->retry_at_ms = 0;
    if (provider_prepare(&j->pc) != PROVIDER_OK)
        job_end(r, j, "failed", j->pc.error);
    else if (audit_queue(r, j, AUDIT_REQUEST, NULL) != 0)
        job_end(r, j, "failed", "out of memory for the provider request's ledger record");
}

/* Sends the recorded request: the reply starts over. */
static void
call(struct runner *r, struct job *j)
{
    j->len = j->turn_start; /* a retried attempt's text starts over */
    if (j->sent > j->len)
        j->sent = j->len;
    j->next_trace_ms = runner_now_ms() + RUNNER_TRACE_BATCH_MS;
    if (provider_start(&j->pc, r->multi) == PROVIDER_OK)
        return;
    audit_queue(r, j, AUDIT_RESPONSE, "not_sent"); /* nothing was sent: the record may be lost */
    job_end(r, j, "failed", j->pc.error);
}

struct job *
job_start(struct runner *r, const struct store_work *w)
{
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->w = *w;
    j->backoff_ms = RUNNER_BACKOFF_MS;
    j->ws = -1;
    log_msg("info", "run_claimed", "run %s of session %s", w->run_id, w->session_id);
    const json_t *generation = json_object_get(w->payload, "generation");
    const char *model = NULL;
    const struct route *rt = routes_select(
        &r->routes, json_string_value(json_object_get(w->payload, "provider")),
        json_string_value(json_object_get(generation, "model")), &model, j->error, sizeof j->error);
    snprintf(j->principal, sizeof j->principal, "session:%s", w->session_id);
    j->key = rt ? route_key(r, rt, j, j->error, sizeof j->error) : NULL;
    if (j->key == NULL) {
        j->status = "failed";
        return j;
    }
    j->messages = conversation(w);
    snprintf(j->target, sizeof j->target, "provider:%s:%s", rt->id, model);
    j->pc = (struct provider_call){
        .route = rt,
        .model = model,
        .api_key = j->key,
        .messages = j->messages,
        .max_output_tokens = json_integer_value(json_object_get(generation, "max_output_tokens")),
        .tools = r->tools,
        .on_delta = on_delta,
        .arg = j,
    };
    if (!agent_resume(r, j))
        attempt(r, j);
    return j;
}

/* What a finished attempt's response record says of it. */
static const char *
outcome(const struct job *j, enum provider_rc rc, char *buf, size_t size)
{
    if (rc == PROVIDER_OK)
        return "ok";
    if (rc == PROVIDER_ABORTED)
        return "aborted";
    if (j->pc.http_status == 0)
        return "no_response";
    snprintf(buf, size, "http_%ld", j->pc.http_status);
    return buf;
}

/* Acts on an attempt's verdict: an outcome, or a retry scheduled. */
static void
verdict(struct runner *r, struct job *j, enum provider_rc rc)
{
    if (rc == PROVIDER_OK) {
        if (!agent_turn(r, j))
            job_end(r, j, "completed", NULL);
    } else if (rc == PROVIDER_ABORTED) {
        job_end(r, j, "failed", "out of memory while reading the reply");
    } else if (rc == PROVIDER_RETRY && j->attempt < RUNNER_ATTEMPTS) {
        int64_t ms = j->pc.retry_after_ms >= 0 ? j->pc.retry_after_ms : j->backoff_ms;
        ms = ms < RUNNER_BACKOFF_MAX_MS ? ms : RUNNER_BACKOFF_MAX_MS;
        j->backoff_ms *= 2;
        j->retry_at_ms = runner_now_ms() + ms;
        log_msg("warn", "provider_retry", "run %s: %s; attempt %d of %d in %lld ms", j->w.run_id,
                j->pc.error, j->attempt + 1, RUNNER_ATTEMPTS, (long long)ms);
    } else {
        job_end(r, j, "failed", j->pc.error);
    }
}

/* The attempt's response record goes with the verdict's outcome, in the
 * same statement (a retry waits for it). */
void
job_attempt_done(struct runner *r, struct job *j, CURLcode cc)
{
    char buf[32];
    enum provider_rc rc = provider_end(&j->pc, r->multi, cc);
    if (audit_queue(r, j, AUDIT_RESPONSE, outcome(j, rc, buf, sizeof buf)) != 0)
        job_end(r, j, "failed", "out of memory for the provider answer's ledger record");
    else
        verdict(r, j, rc);
}

void
job_audited(struct runner *r, struct job *j, const struct audit_entry *e, int ok, const char *why)
{
    char error[sizeof j->error];
    if (j->stop || (j->status && strcmp(j->status, "completed")))
        return; /* ended by someone else, or without an answer to hand out */
    int tool = e->tool_call_id != NULL;
    if (ok) {
        if (e->wait == AUDIT_REQUEST && j->status == NULL && tool)
            agent_tool_recorded(r, j, e->tool_call_id);
        else if (e->wait == AUDIT_REQUEST && j->status == NULL)
            call(r, j);
        return;
    }
    snprintf(error, sizeof error, "the external-action audit could not record the %s: %s",
             e->wait == AUDIT_REQUEST
                 ? (tool ? "tool call, which was not made" : "provider request, which was not sent")
                 : (tool ? "tool call's result" : "provider's answer"),
             why);
    job_end(r, j, "failed", error);
}

int
job_retry_due(const struct job *j)
{
    return j->retry_at_ms > 0 && j->naudit == 0 && j->status == NULL && j->stop == NULL;
}

void
job_next_turn(struct runner *r, struct job *j)
{
    j->turn_start = j->len;
    j->attempt = 0;
    j->backoff_ms = RUNNER_BACKOFF_MS;
    attempt(r, j);
}

void
job_retry_if_due(struct runner *r, struct job *j, int64_t now)
{
    if (job_retry_due(j) && now >= j->retry_at_ms)
        attempt(r, j);
}

/* Stops the attempt of a job that ends: a call in flight gets its response
 * record (aborted), a request not yet recorded is not sent. */
static void
stop_attempt(struct runner *r, struct job *j)
{
    if (provider_in_flight(&j->pc))
        audit_queue(r, j, AUDIT_RESPONSE, "aborted"); /* out of memory: the record is lost */
    agent_stop(r, j);
    provider_abort(&j->pc, r->multi);
}

void
job_stop(struct runner *r, struct job *j, const char *why)
{
    stop_attempt(r, j);
    j->retry_at_ms = 0;
    j->stop = why;
    log_msg("info", "run_stopped", "run %s stopped: %s", j->w.run_id, why);
}

void
job_end(struct runner *r, struct job *j, const char *status, const char *error)
{
    stop_attempt(r, j);
    j->retry_at_ms = 0;
    j->status = status;
    if (error && error != j->error)
        snprintf(j->error, sizeof j->error, "%s", error);
}

void
job_free(struct job *j)
{
    if (j->key) {
        sodium_memzero(j->key, strlen(j->key));
        free(j->key);
    }
    json_decref(j->messages);
    provider_release(&j->pc);
    agent_free(j);
    if (j->ws >= 0)
        close(j->ws);
    json_decref(j->steps);
    free(j->audit);
    free(j->text);
    store_work_free(&j->w);
    free(j);
}
