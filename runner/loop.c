/*
 * The runner's loop: claim runs while there are any, wait for a NOTIFY on
 * kheish_runs (or RUNNER_POLL_MS), and, when this runner holds the
 * maintenance lock, recover the runs whose lease expired.
 */
#include "loop.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

volatile sig_atomic_t runner_stopping;

static void
on_signal(int sig)
{
    (void)sig;
    runner_stopping = 1;
}

int64_t
runner_now_ms(void)
{
    return util_monotonic_us() / 1000;
}

static void
on_notify(void *arg, const char *channel, const char *payload)
{
    struct runner *r = arg;
    if (r->current && !strcmp(channel, "kheish_control") && !strcmp(payload, r->current->run_id))
        r->cancelled = 1;
}

static void
listen_again(struct runner *r)
{
    char err[256];
    if (r->listener || runner_now_ms() < r->listen_retry_ms)
        return;
    r->listener =
        store_listen(r->cfg->database_url,
                     (const char *const[]){"kheish_runs", "kheish_control", NULL}, err, sizeof err);
    if (r->listener == NULL) {
        r->listen_retry_ms = runner_now_ms() + RUNNER_LISTEN_RETRY_MS;
        log_msg("warn", "listen_failed", "LISTEN connection: %s", err);
    }
}

/* Drains the LISTEN connection; a lost one is closed and retried. */
static void
drain(struct runner *r)
{
    if (r->listener && store_listener_drain(r->listener, on_notify, r) < 0) {
        store_listener_close(r->listener);
        r->listener = NULL;
        r->listen_retry_ms = runner_now_ms() + RUNNER_LISTEN_RETRY_MS;
        log_msg("warn", "listen_lost", "LISTEN connection lost; reconnecting");
    }
}

int
runner_tick(struct runner *r)
{
    drain(r);
    listen_again(r);
    int64_t now = runner_now_ms();
    if (r->current && !r->lease_lost && now >= r->next_renew_ms) {
        enum store_rc rc = store_work_renew(r->db, r->current, r->owner, r->cfg->lease_ms);
        r->lease_lost = rc == STORE_RUN_STATE_CONFLICT;
        /* A database hiccup is retried soon; the lease has time to spare. */
        r->next_renew_ms = now + (rc == STORE_OK ? r->cfg->lease_ms / 3 : 200);
    }
    return runner_stopping || r->cancelled || r->lease_lost;
}

/* Waits for a NOTIFY or the poll interval. */
static void
wait_for_work(struct runner *r)
{
    struct pollfd p = {r->listener ? store_listener_fd(r->listener) : -1, POLLIN, 0};
    if (poll(&p, 1, RUNNER_POLL_MS) < 0 && errno != EINTR)
        usleep(RUNNER_POLL_MS * 1000);
    drain(r);
    listen_again(r);
}

static void
maintain(struct runner *r)
{
    int held = 0, requeued = 0, interrupted = 0;
    if (store_maintenance_lock(r->db, &held) != STORE_OK || !held)
        return;
    if (store_work_recover(r->db, &requeued, &interrupted) != STORE_OK)
        log_msg("warn", "recovery_failed", "lease recovery: %s", store_last_error(r->db));
    else if (requeued || interrupted)
        log_msg("warn", "runs_recovered", "runs whose runner stopped: %d interrupted, %d requeued",
                interrupted, requeued);
}

/* Checks the settings a run would fail on anyway, so a runner with a
 * missing slot or a wrong key refuses to start (contract §5). */
static int
check_routes(struct runner *r)
{
    for (size_t i = 0; i < r->routes.n; i++) {
        const struct route *rt = &r->routes.v[i];
        if (rt->auth_ref == NULL)
            continue;
        struct store_sealed_slot slot;
        enum store_rc rc = store_slot_sealed(r->db, rt->auth_ref, &slot);
        const char *why = rc == STORE_SECRET_NOT_FOUND ? "its auth_ref slot is missing"
                          : rc != STORE_OK             ? store_strerror(rc)
                          : !r->has_key ? "no master key (KHEISH_AUTH_STORE_MASTER_KEY)"
                          : strcmp(slot.key_id, r->key.id)
                              ? "its slot is sealed with a different master key"
                              : NULL;
        store_sealed_slot_free(&slot);
        if (why) {
            fprintf(stderr, "kheish-runner: route %s (auth_ref %s): %s\n", rt->id, rt->auth_ref,
                    why);
            return -1;
        }
    }
    return 0;
}

static int
setup(struct runner *r)
{
    char err[512], host[256] = "";
    if (routes_load(r->cfg->routes_file, &r->routes, err, sizeof err) != 0) {
        fprintf(stderr, "kheish-runner: %s\n", err);
        return 2;
    }
    if (r->cfg->default_route) {
        if (routes_find(&r->routes, r->cfg->default_route) == NULL) {
            fprintf(stderr, "kheish-runner: --default-route %s is not a route of %s\n",
                    r->cfg->default_route, r->cfg->routes_file);
            return 2;
        }
        free(r->routes.default_route);
        r->routes.default_route = strdup(r->cfg->default_route);
    }
    if ((r->has_key = sealed_key_from_env(&r->key, err, sizeof err)) < 0) {
        fprintf(stderr, "kheish-runner: %s\n", err);
        return 2;
    }
    gethostname(host, sizeof host - 1);
    snprintf(r->owner, sizeof r->owner, "kheish-runner@%s:%d", host, (int)getpid());
    setenv("PGAPPNAME", r->owner, 1); /* who holds the maintenance lock, for /v1/status */
    r->db = store_open(r->cfg->database_url, NULL);
    if (r->db == NULL || store_ping(r->db) != STORE_OK) {
        fprintf(stderr, "kheish-runner: cannot reach the database: %s\n",
                r->db ? store_last_error(r->db) : "out of memory");
        return 1;
    }
    return check_routes(r) == 0 ? 0 : 2;
}

int
runner_run(const struct runner_config *cfg)
{
    struct runner r = {.cfg = cfg};
    int rc = setup(&r);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        rc = 1;
    if (rc == 0) {
        FILE *pf = cfg->pid_file ? fopen(cfg->pid_file, "we") : NULL;
        if (pf) {
            fprintf(pf, "%d\n", getpid());
            fclose(pf);
        }
        log_msg("info", "started", "%zu routes (default %s), lease %lld ms", r.routes.n,
                r.routes.default_route, (long long)cfg->lease_ms);
    }
    int64_t next_maintenance = 0;
    while (rc == 0 && !runner_stopping) {
        listen_again(&r);
        if (runner_now_ms() >= next_maintenance) {
            maintain(&r);
            next_maintenance = runner_now_ms() + RUNNER_MAINTENANCE_MS;
        }
        struct store_work w;
        int found = 0;
        if (store_work_claim(r.db, r.owner, cfg->lease_ms, &w, &found) == STORE_OK && found)
            runner_execute(&r, &w);
        else
            wait_for_work(&r);
        store_work_free(&w);
    }
    if (rc == 0) {
        log_msg("info", "stopped", "runner stopped");
        if (cfg->pid_file)
            unlink(cfg->pid_file);
        curl_global_cleanup();
    }
    store_listener_close(r.listener);
    store_close(r.db);
    routes_free(&r.routes);
    sealed_key_wipe(&r.key);
    return rc;
}
