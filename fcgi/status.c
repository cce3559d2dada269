/*
 * GET /v1/status and GET /v1/capabilities: the operator's snapshot. Blocks
 * appear here as their features land (see docs/api.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readiness.h"
#include "router.h"
#include "util.h"

#define CONTROL_PLANE_VERSION "0.1.0"
#define STATUS_RELAY_STALE_MS 30000 /* a relay silent this long is not counted */
#define STATUS_NO_RUNNER_ACTION                                                                    \
    "start a runner: kheish up --routes-file FILE, or the kheish-runner service"

/* The flags of DaemonCapabilities (contract §1.2), in upstream's order. */
const char *const status_capability_flags[] = {"approvals",
                                               "sidechains",
                                               "mailboxes",
                                               "session_events",
                                               "restart_restore",
                                               "live_events",
                                               "session_run_idempotency",
                                               "playbooks",
                                               "flows",
                                               "problem_details",
                                               "openapi",
                                               "cursor_pagination",
                                               "paginated_lists",
                                               "domain_errors",
                                               "sse_replay",
                                               "typed_sse_heartbeat",
                                               "agent_supervisor_audit",
                                               "spawn_policies",
                                               NULL};

/* Each flag is true only when this build serves it: a route declares it
 * (router.h), or the router does (ROUTER_CAPABILITIES). */
static json_t *
capabilities(void)
{
    json_t *c =
        json_pack("{s:s, s:i, s:i}", "control_plane_version", CONTROL_PLANE_VERSION, "api_revision",
                  3, "route_capability_matrix_version", ROUTE_CAPABILITY_MATRIX_VERSION);
    for (const char *const *f = status_capability_flags; *f; f++) {
        size_t len = strlen(*f);
        int served = util_has_word(ROUTER_CAPABILITIES, *f, len);
        for (const struct http_route *const *t = router_tables; *t && !served; t++)
            for (const struct http_route *r = *t; r->method && !served; r++)
                served = util_has_word(r->capabilities, *f, len);
        json_object_set_new(c, *f, json_boolean(served));
    }
    return c;
}

static int
status_capabilities(struct http_req *req, struct http_resp *resp)
{
    (void)req;
    return http_json(resp, 200, capabilities());
}

static json_t *
probe(const char *name, const char *path, int ok, int64_t started_us, const char *message,
      const char *action)
{
    json_t *p =
        json_pack("{s:s, s:o, s:s, s:b, s:f, s:s, s:o}", "name", name, "path", util_json_str(path),
                  "state", ok ? "ok" : "error", "writable", ok, "latency_ms",
                  (double)(util_monotonic_us() - started_us) / 1000.0, "code",
                  ok ? "write_probe_ok" : "write_probe_failed", "message", util_json_str(message));
    if (!ok && action)
        json_object_set_new(p, "action", json_string(action));
    return p;
}

/* Creates, writes, fsyncs and removes a uniquely named file in dir. */
static json_t *
file_probe(const char *name, const char *dir, const char *flag)
{
    static unsigned counter;
    char path[4096], msg[512], action[128];
    int64_t t0 = util_monotonic_us();
    snprintf(path, sizeof path, "%s/.kheish-status-write-check-%d-%lld-%u", dir, getpid(),
             (long long)util_now_ms(), counter++);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, "ok\n", 3) == 3 && fsync(fd) == 0;
    int err = errno;
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    snprintf(msg, sizeof msg, ok ? "%s is writable" : "%s is not writable: %s", dir, strerror(err));
    snprintf(action, sizeof action, "make the directory writable or point %s elsewhere", flag);
    return probe(name, dir, ok, t0, msg, action);
}

json_t *
status_warn(json_t *warnings, const char *severity, const char *code, const char *message,
            const json_t *related_id)
{
    json_t *w =
        json_pack("{s:s, s:s, s:s}", "severity", severity, "code", code, "message", message);
    if (related_id && !json_is_null(related_id))
        json_object_set(w, "related_id", (json_t *)related_id);
    json_array_append_new(warnings, w);
    return w;
}

static json_t *
storage(struct http_req *req, json_t *warnings, int *db_ok)
{
    json_t *probes = json_array();
    int64_t t0 = util_monotonic_us();
    *db_ok = store_write_probe(req->db, "kheish-fcgi") == STORE_OK;
    json_array_append_new(probes, probe("database", "postgresql", *db_ok, t0,
                                        *db_ok ? "the database accepted a write"
                                               : "the database refused a write or is down",
                                        "check KHEISH_DATABASE_URL and the PostgreSQL server"));
    json_array_append_new(probes, file_probe("state_root", req->cfg->state_root, "--state-root"));
    if (req->cfg->workspace_root)
        json_array_append_new(
            probes, file_probe("workspace_root", req->cfg->workspace_root, "--workspace-root"));
    const struct fcgi_config *cfg = req->cfg;
    if (cfg->master_key_in_state_root && !cfg->database_embedded) {
        json_t *path = json_string(cfg->master_key_file);
        status_warn(warnings, "error", "master_key_inside_state_root",
                    "the master key file lies inside the state root and the database is "
                    "elsewhere: move it out (KHEISH_AUTH_STORE_MASTER_KEY_FILE), or a copy of "
                    "the state root carries the key to every secret",
                    path);
        json_decref(path);
    }
    json_t *key =
        json_pack("{s:s, s:s?, s:b}", "source",
                  cfg->master_key_file  ? "file"
                  : cfg->has_master_key ? "environment"
                                        : "none",
                  "path", cfg->master_key_file, "inside_state_root", cfg->master_key_in_state_root);
    int errors = 0;
    size_t i;
    json_t *p;
    json_array_foreach(probes, i, p)
    {
        if (json_is_true(json_object_get(p, "writable")))
            continue;
        errors++;
        status_warn(warnings, "error", "storage_write_probe_failed",
                    json_string_value(json_object_get(p, "message")), json_object_get(p, "name"));
    }
    return json_pack("{s:I, s:b, s:i, s:o, s:s, s:o}", "checked_at_ms", (json_int_t)util_now_ms(),
                     "ok", errors == 0, "write_error_count", errors, "probes", probes, "database",
                     cfg->database_embedded ? "embedded" : "external", "master_key", key);
}

static json_int_t
num(const json_t *o, const char *name)
{
    return json_integer_value(json_object_get(o, name));
}

/* The runners' side of a queue that does not move, said after what the
 * queued_run_lag warning says. */
static void
runners_state(const json_t *runners, char *buf, size_t size)
{
    json_int_t live = num(runners, "live_count"), held = num(runners, "runs_held_total");
    if (live == 0)
        snprintf(buf, size, "no runner is alive");
    else
        snprintf(buf, size, "%lld live runners hold %lld runs of their %lld slots", (long long)live,
                 (long long)held, (long long)num(runners, "slots_total"));
}

/* The runs block's warnings; those about the queue also read the runners
 * block (NULL when it could not be read). */
static void
run_warnings(const json_t *runs, const json_t *runners, json_t *warnings)
{
    char msg[384], why[160] = "";
    json_int_t failed = num(runs, "failed"), queued = num(runs, "queued");
    json_int_t stale = num(runs, "stale_non_terminal_run_count");
    const json_t *age = json_object_get(runs, "oldest_queued_run_age_ms");
    const json_t *oldest = json_object_get(runs, "oldest_queued_run_id");
    json_int_t lag = num(runs, "queued_run_lag_threshold_ms");
    if (runners)
        runners_state(runners, why, sizeof why);
    if (failed > 0) {
        snprintf(msg, sizeof msg, "%lld runs have failed", (long long)failed);
        status_warn(warnings, "warning", "failed_runs", msg, NULL);
    }
    if (queued > 0 && runners && num(runners, "live_count") == 0) {
        snprintf(msg, sizeof msg, "%lld run%s queued and no runner is alive to claim %s",
                 (long long)queued, queued == 1 ? " is" : "s are", queued == 1 ? "it" : "them");
        json_object_set_new(status_warn(warnings, "error", "no_live_runner", msg, oldest), "action",
                            json_string(STATUS_NO_RUNNER_ACTION));
    }
    if (json_is_integer(age) && json_integer_value(age) > lag) {
        snprintf(msg, sizeof msg,
                 "the oldest queued run has waited %lld ms (threshold %lld ms)%s%s",
                 (long long)json_integer_value(age), (long long)lag, *why ? "; " : "", why);
        status_warn(warnings, "warning", "queued_run_lag", msg, oldest);
    }
    if (stale > 0) {
        snprintf(msg, sizeof msg, "%lld non-terminal runs have not changed for over %lld ms",
                 (long long)stale, (long long)num(runs, "stale_non_terminal_run_threshold_ms"));
        status_warn(warnings, "warning", "stale_non_terminal_runs", msg,
                    json_object_get(runs, "oldest_idle_non_terminal_run_id"));
    }
}

static int
is_true(const json_t *o, const char *name)
{
    return json_is_true(json_object_get(o, name));
}

/* The auth health warnings of contract §1.2, from the control_plane block. */
static void
control_plane_warnings(const json_t *cp, json_t *warnings)
{
    char msg[512];
    if (!is_true(cp, "auth_enabled") && !is_true(cp, "bind_is_loopback"))
        status_warn(warnings, "error", "control_plane_auth_disabled_off_loopback",
                    "auth is disabled and the public bind is not loopback", NULL);
    if (is_true(cp, "auth_enabled") && !is_true(cp, "auth_effective_admin_token_available"))
        status_warn(warnings, "error", "control_plane_admin_auth_unavailable",
                    "no admin token is in force: every admin request is refused", NULL);
    if (is_true(cp, "auth_duplicate_token"))
        status_warn(warnings, "error", "control_plane_auth_duplicate_token",
                    "the admin and read-only tokens are identical: every bearer token is refused",
                    NULL);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(cp, "auth_token_files"), i, f)
    {
        if (json_is_true(json_object_get(f, "token_loaded")))
            continue;
        snprintf(msg, sizeof msg, "the %s token file %s gives no token: %s",
                 json_string_value(json_object_get(f, "role")),
                 json_string_value(json_object_get(f, "path")),
                 json_string_value(json_object_get(f, "error")));
        status_warn(warnings, "warning", "control_plane_auth_token_file_unavailable", msg,
                    json_object_get(f, "path"));
    }
}

/* The events block's health warnings (contract §1.2). */
static void
event_warnings(const json_t *events, json_t *warnings)
{
    char msg[256];
    json_int_t lagged = json_integer_value(json_object_get(events, "stream_lagged_event_count"));
    json_int_t gaps = json_integer_value(json_object_get(events, "replay_gap_count"));
    if (lagged > 0) {
        snprintf(msg, sizeof msg, "%lld stream clients fell behind and were cut (live_lag)",
                 (long long)lagged);
        status_warn(warnings, "warning", "event_stream_lagged", msg, NULL);
    }
    if (gaps > 0) {
        snprintf(msg, sizeof msg, "%lld stream_gap frames were sent", (long long)gaps);
        status_warn(warnings, "info", "event_replay_cursor_gaps", msg, NULL);
    }
}

/* 1 when pid is a process that has not ended (a zombie has: the supervisor's
 * parent may be a pid 1 that reaps late). */
static int
pid_alive(pid_t pid)
{
    char path[64], buf[256];
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return kill(pid, 0) == 0 || errno == EPERM; /* no /proc: ask the kernel */
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* The supervisor's state (kheish up's embedded stack: <state_root>/run/
 * supervisor.json, see cli/stack_supervise.c), or null when nothing
 * supervises this host's daemons (systemd does in production). A daemon that
 * is down right now (waiting out its restart backoff) is an error warning. */
static json_t *
supervisor(const char *state_root, json_t *warnings)
{
    char path[4096], msg[256];
    snprintf(path, sizeof path, "%s/run/supervisor.json", state_root);
    json_t *sup = json_load_file(path, JSON_REJECT_DUPLICATES, NULL), *d;
    if (!json_is_object(sup)) {
        json_decref(sup);
        return json_null();
    }
    /* A supervisor killed (or a serve whose terminal went) leaves its
     * daemons running and nobody to restart them. */
    int alive = pid_alive((pid_t)json_integer_value(json_object_get(sup, "pid")));
    json_object_set_new(sup, "running", json_boolean(alive));
    if (!alive)
        status_warn(warnings, "error", "supervisor_not_running",
                    "the supervisor is gone: a daemon that dies now stays down (kheish up "
                    "starts one again, and it adopts the daemons)",
                    NULL);
    size_t i;
    json_array_foreach(json_object_get(sup, "daemons"), i, d)
    {
        if (!json_is_null(json_object_get(d, "pid")))
            continue;
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *how = json_string_value(json_object_get(d, "last_exit"));
        snprintf(msg, sizeof msg, "%s is down (last exit: %s); restarting in %lld ms",
                 name ? name : "?", how ? how : "none",
                 (long long)json_integer_value(json_object_get(d, "backoff_ms")));
        status_warn(warnings, "error", "daemon_restarting", msg, json_object_get(d, "name"));
    }
    return sup;
}

static int
health_ok(const json_t *warnings)
{
    size_t i;
    json_t *w;
    json_array_foreach(warnings, i, w)
    {
        if (strcmp(json_string_value(json_object_get(w, "severity")), "info"))
            return 0;
    }
    return 1;
}

static int
status_get(struct http_req *req, struct http_resp *resp)
{
    int64_t t0 = util_monotonic_us();
    json_t *warnings = json_array(), *runs = NULL, *runtime = NULL;
    int64_t sessions = 0;
    int db_ok;
    struct store_status_thresholds th = {req->cfg->queued_run_lag_threshold_ms,
                                         req->cfg->stale_non_terminal_run_threshold_ms};
    if (req->draining)
        status_warn(warnings, "error", "daemon_draining", "the control plane is draining", NULL);
    json_t *control_plane = gate_status(req->gate);
    control_plane_warnings(control_plane, warnings);
    json_t *store = storage(req, warnings, &db_ok);
    json_t *runners = NULL;
    if (db_ok && store_runners_status(req->db, &runners) != STORE_OK)
        runners = NULL;
    if (db_ok && store_status_counts(req->db, &th, &runs, &sessions) == STORE_OK)
        run_warnings(runs, runners, warnings);
    if (db_ok && store_runtime_get(req->db, &runtime) == STORE_OK) {
        const char *level = json_string_value(json_object_get(runtime, "debug_level"));
        if (level && !strcmp(level, "full"))
            status_warn(warnings, "warning", "debug_capture_full",
                        "the debug level is full: captures keep prompts and outputs unredacted",
                        NULL);
    }
    json_t *events = NULL;
    if (db_ok && store_events_status(req->db, STATUS_RELAY_STALE_MS, &events) == STORE_OK)
        event_warnings(events, warnings);
    int route_errors = 0, route_warnings = 0;
    json_t *readiness = db_ok && req->cfg->has_routes
                            ? readiness_block(req, warnings, &route_errors, &route_warnings)
                            : NULL;
    int ready = !req->draining && db_ok;
    json_t *doc = json_pack("{s:I, s:i, s:s, s:b, s:o, s:o, s:o, s:o, s:o}", "snapshot_at_ms",
                            (json_int_t)util_now_ms(), "process_id", (int)getpid(), "status",
                            req->draining ? "draining" : "ready", "ready", ready, "capabilities",
                            capabilities(), "runtime", runtime ? runtime : json_null(), "sessions",
                            runs ? json_pack("{s:I}", "total", (json_int_t)sessions) : json_null(),
                            "runs", runs ? runs : json_null(), "storage", store);
    json_object_set_new(doc, "control_plane", control_plane);
    json_object_set_new(doc, "events", events ? events : json_null());
    json_object_set_new(doc, "provider_readiness", readiness ? readiness : json_null());
    json_object_set_new(doc, "runners",
                        runners ? runners : json_pack("{s:n}", "maintenance_lock_holder"));
    json_object_set_new(doc, "supervisor", supervisor(req->cfg->state_root, warnings));
    json_object_set_new(doc, "health",
                        json_pack("{s:I, s:f, s:b, s:i, s:i, s:o}", "generated_at_ms",
                                  (json_int_t)util_now_ms(), "snapshot_duration_ms",
                                  (double)(util_monotonic_us() - t0) / 1000.0, "ok",
                                  health_ok(warnings), "route_error_count", route_errors,
                                  "route_warning_count", route_warnings, "warnings", warnings));
    return http_json(resp, 200, doc);
}

const struct http_route status_routes[] = {
    {"GET", "/v1/status", AUTH_ACCESS_READ_ONLY, status_get, NULL, NULL, NULL},
    {"GET", "/v1/capabilities", AUTH_ACCESS_READ_ONLY, status_capabilities, NULL, NULL, NULL},
    ROUTES_END,
};
