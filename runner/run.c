/*
 * One claimed run, from its route to its outcome: pick the route and model,
 * get the credential (through a broker lease for an auth_ref slot), call the
 * provider with retries, send the reply's text as trace events every
 * RUNNER_TRACE_BATCH_MS, and commit completed or failed. A run stopped by a
 * cancel, an interrupt or a lost lease is left as whoever stopped it wrote
 * it; a runner shutting down interrupts it.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "loop.h"
#include "provider.h"

/* The reply so far, and the part of it not yet sent as a trace event. */
struct reply {
    struct runner *r;
    const struct store_work *w;
    char *text;
    size_t len, cap, sent;
    int64_t next_flush_ms;
};

static void
flush_traces(struct reply *rp)
{
    if (rp->sent == rp->len)
        return;
    json_t *traces = json_pack("[{s:s, s:s%}]", "kind", "assistant_text_delta", "text",
                               rp->text + rp->sent, rp->len - rp->sent);
    if (store_work_trace(rp->r->db, rp->w, traces) != STORE_OK)
        log_msg("warn", "trace_failed", "run %s: trace events not stored: %s", rp->w->run_id,
                store_last_error(rp->r->db));
    json_decref(traces);
    rp->sent = rp->len;
    rp->next_flush_ms = runner_now_ms() + RUNNER_TRACE_BATCH_MS;
}

static int
on_delta(void *arg, const char *text, size_t len)
{
    struct reply *rp = arg;
    if (rp->len + len + 1 > rp->cap) {
        size_t cap = rp->cap ? rp->cap : 4096;
        while (cap < rp->len + len + 1)
            cap *= 2;
        char *grown = realloc(rp->text, cap);
        if (grown == NULL)
            return -1;
        rp->text = grown;
        rp->cap = cap;
    }
    memcpy(rp->text + rp->len, text, len);
    rp->len += len;
    rp->text[rp->len] = '\0';
    if (runner_now_ms() >= rp->next_flush_ms)
        flush_traces(rp);
    return runner_tick(rp->r);
}

static int
on_tick(void *arg)
{
    struct reply *rp = arg;
    if (runner_now_ms() >= rp->next_flush_ms)
        flush_traces(rp);
    return runner_tick(rp->r);
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

/* The credential of an auth_ref route: a broker lease for the session on the
 * route's slot, resolved, and the slot opened with the master key. */
static char *
slot_key(struct runner *r, const struct route *rt, const struct store_work *w, char *why,
         size_t whysz)
{
    char subject[200], *slot_id = NULL, *key = NULL;
    struct store_lease lease;
    struct store_sealed_slot slot = {0};
    snprintf(subject, sizeof subject, "session:%s", w->session_id);
    enum store_rc rc =
        store_lease_issue(r->db, subject, rt->id, rt->auth_ref, RUNNER_CREDENTIAL_TTL_MS, &lease);
    if (rc == STORE_OK)
        rc = store_lease_resolve(r->db, lease.token, rt->id, &slot_id);
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
route_key(struct runner *r, const struct route *rt, const struct store_work *w, char *why,
          size_t whysz)
{
    if (rt->api_key)
        return strdup(rt->api_key);
    if (rt->auth_ref)
        return slot_key(r, rt, w, why, whysz);
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

/* Waits ms between attempts, still answering cancels. Returns nonzero when
 * the run must stop. */
static int
backoff(struct reply *rp, int64_t ms)
{
    int64_t until = runner_now_ms() + ms;
    while (runner_now_ms() < until) {
        if (on_tick(rp))
            return 1;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Calls the provider up to RUNNER_ATTEMPTS times. */
static enum provider_rc
call_with_retries(struct provider_call *pc, struct reply *rp)
{
    enum provider_rc rc = PROVIDER_RETRY;
    int64_t wait = RUNNER_BACKOFF_MS;
    for (int attempt = 1; attempt <= RUNNER_ATTEMPTS && rc == PROVIDER_RETRY; attempt++) {
        rp->len = rp->sent = 0; /* a retry starts the reply over */
        rc = provider_call(pc);
        if (rc != PROVIDER_RETRY || attempt == RUNNER_ATTEMPTS)
            break;
        int64_t ms = pc->retry_after_ms >= 0 ? pc->retry_after_ms : wait;
        log_msg("warn", "provider_retry", "run %s: %s; attempt %d of %d in %lld ms", rp->w->run_id,
                pc->error, attempt + 1, RUNNER_ATTEMPTS, (long long)ms);
        if (backoff(rp, ms < RUNNER_BACKOFF_MAX_MS ? ms : RUNNER_BACKOFF_MAX_MS))
            return PROVIDER_ABORTED;
        wait *= 2;
    }
    return rc;
}

static void
finish(struct runner *r, const struct store_work *w, const char *status, const char *text,
       const char *error)
{
    enum store_rc rc = store_work_finish(r->db, w, r->owner, status, text, error);
    if (rc == STORE_RUN_STATE_CONFLICT)
        log_msg("info", "run_taken", "run %s was ended by someone else first", w->run_id);
    else if (rc != STORE_OK)
        log_msg("error", "finish_failed", "run %s: %s: %s", w->run_id, store_strerror(rc),
                store_last_error(r->db));
    else
        log_msg("info", "run_finished", "run %s %s%s%s", w->run_id, status, error ? ": " : "",
                error ? error : "");
}

void
runner_execute(struct runner *r, const struct store_work *w)
{
    char why[512] = "";
    const char *model = NULL;
    r->current = w;
    r->cancelled = r->lease_lost = 0;
    r->next_renew_ms = runner_now_ms() + r->cfg->lease_ms / 3;
    log_msg("info", "run_claimed", "run %s of session %s", w->run_id, w->session_id);
    const struct route *rt = routes_select(
        &r->routes, json_string_value(json_object_get(w->payload, "provider")),
        json_string_value(json_object_get(json_object_get(w->payload, "generation"), "model")),
        &model, why, sizeof why);
    char *key = rt ? route_key(r, rt, w, why, sizeof why) : NULL;
    if (key == NULL) {
        finish(r, w, "failed", NULL, why);
        r->current = NULL;
        return;
    }
    struct reply rp = {.r = r, .w = w, .next_flush_ms = runner_now_ms() + RUNNER_TRACE_BATCH_MS};
    json_t *messages = conversation(w);
    struct provider_call pc = {
        .route = rt,
        .model = model,
        .api_key = key,
        .messages = messages,
        .max_output_tokens = json_integer_value(
            json_object_get(json_object_get(w->payload, "generation"), "max_output_tokens")),
        .on_delta = on_delta,
        .on_tick = on_tick,
        .arg = &rp,
    };
    enum provider_rc rc = call_with_retries(&pc, &rp);
    sodium_memzero(key, strlen(key));
    free(key);
    if (rc == PROVIDER_OK)
        flush_traces(&rp);
    if (rc == PROVIDER_OK)
        finish(r, w, "completed", rp.text ? rp.text : "", NULL);
    else if (rc == PROVIDER_ABORTED && runner_stopping && !r->cancelled && !r->lease_lost)
        finish(r, w, "interrupted", NULL, "the runner executing it was shut down");
    else if (rc != PROVIDER_ABORTED)
        finish(r, w, "failed", NULL, pc.error);
    else
        log_msg("info", "run_stopped", "run %s stopped: %s", w->run_id,
                r->cancelled ? "cancelled or interrupted" : "lease lost");
    json_decref(messages);
    free(rp.text);
    r->current = NULL;
}
